/**
 * What a repairing check does before pass 1 besides the superblock checks (e2fsck's
 * check_super_block and e2fsck_check_ext3_journal): the orphan list released, a V2 journal
 * superblock with fields only a V1 one or an external journal may have cleared. On
 * test/images/f_engine_small (orphans) and on volumes made by ext4ts mkfs (journals).
 */
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { mkfsDevice } from "../../tools/mkfs/mkfs.js";
import { Volume } from "../api/promises.js";
import { MemoryDevice } from "../device/memory.js";
import { inodeChecksum, inodeChecksumSeed, inodeHasChecksumHi, journalSuperblockChecksum, superblockChecksum } from "../format/checksum.js";
import { decodeInode, inodeStruct } from "../format/inode.js";
import { JBD2_SUPERBLOCK_V2, journalHasCsumV2or3, journalSuperblock } from "../format/jbd2.js";
import { SUPERBLOCK_OFFSET, freeBlocksCount, superblock } from "../format/superblock.js";
import { inodeLocation } from "../fs/inode.js";
import { readJournalLayout } from "../journal/recovery.js";
import { check, type FsckReport } from "./check.js";

const FIXTURE = new Uint8Array(gunzipSync(readFileSync(new URL("../../test/images/f_engine_small/image.gz", import.meta.url))));

interface Where {
  ino: number;
  at: number;
  isz: number;
  csumSeed: number;
}

/** Inode `path` of the fixture: its number and byte offset. */
async function locate(bytes: Uint8Array, path: string): Promise<Where> {
  const vol = await Volume.mount(MemoryDevice.from(bytes.slice()));
  try {
    const ino = (await vol.lstat(path)).ino;
    const loc = inodeLocation(vol.fs, ino);
    return { ino, at: loc.block * vol.fs.blockSize + loc.offset, isz: vol.fs.inodeSize, csumSeed: vol.fs.csumSeed };
  } finally {
    await vol.unmount();
  }
}

function editInode(b: Uint8Array, w: Where, fields: Parameters<typeof inodeStruct.encode>[0]): void {
  inodeStruct.encode(fields, b, w.at, w.isz);
  const raw = decodeInode(b, w.at, w.isz);
  const c = inodeChecksum(b, w.at, w.isz, inodeChecksumSeed(w.csumSeed, w.ino, raw.i_generation));
  inodeStruct.encode({ l_i_checksum_lo: c & 0xffff }, b, w.at);
  if (inodeHasChecksumHi(b, w.at, w.isz)) inodeStruct.encode({ i_checksum_hi: c >>> 16 }, b, w.at, w.isz);
}

function editSuper(b: Uint8Array, fields: Parameters<typeof superblock.encode>[0]): void {
  const raw = b.subarray(SUPERBLOCK_OFFSET, SUPERBLOCK_OFFSET + superblock.size);
  superblock.encode(fields, raw);
  superblock.encode({ s_checksum: superblockChecksum(raw) }, raw);
}

const sbOf = (b: Uint8Array): ReturnType<typeof superblock.decode> => superblock.decode(b, SUPERBLOCK_OFFSET);
const repair = (dev: MemoryDevice): Promise<FsckReport> => check(dev, { force: true, name: "test.img", repair: "yes", now: 1_800_000_000 });
const readOnly = (dev: MemoryDevice): Promise<FsckReport> => check(dev, { force: true, name: "test.img" });

describe("fsck -y: the orphan list (release_orphan_inodes)", () => {
  it("truncates an orphan that still has links to its i_size, freeing the blocks past it, and exits 0 as e2fsck does", async () => {
    const b = FIXTURE.slice();
    const big = await locate(b, "/big");
    const before = decodeInode(b, big.at, big.isz);
    expect(before.i_blocks_lo).toBe(80); // 40 blocks of 1 KiB
    editInode(b, big, { i_size_lo: 5 * 1024, i_size_high: 0 });
    editSuper(b, { s_last_orphan: big.ino });
    const freeBefore = freeBlocksCount(sbOf(b));
    const dev = MemoryDevice.from(b);
    const r = await repair(dev);
    const msg = r.problems.find((p) => p.name === "PR_0_ORPHAN_CLEAR_INODE")?.message;
    expect(msg).toBe(`Truncating orphaned inode ${big.ino} (uid=0, gid=0, mode=0${before.i_mode.toString(8)}, size=5120)`);
    expect(r.problems.filter((p) => p.pass > 0)).toEqual([]);
    expect(r.exitCode).toBe(0);
    expect(r.modified).toBe(true);
    const after = dev.toBytes();
    const raw = decodeInode(after, big.at, big.isz);
    expect(raw.i_blocks_lo).toBe(10);
    expect(raw.i_dtime).toBe(0);
    expect(sbOf(after).s_last_orphan).toBe(0);
    expect(freeBlocksCount(sbOf(after))).toBe(freeBefore + 35);
    expect((await readOnly(MemoryDevice.from(after))).clean).toBe(true);
  });

  it("clears an orphan without links (blocks and inode freed, dtime now); its stale entry goes in pass 2", async () => {
    const b = FIXTURE.slice();
    const big = await locate(b, "/big");
    editInode(b, big, { i_links_count: 0 });
    editSuper(b, { s_last_orphan: big.ino });
    const sb0 = sbOf(b);
    const dev = MemoryDevice.from(b);
    const r = await repair(dev);
    expect(r.problems.map((p) => p.name)).toEqual(["PR_0_ORPHAN_CLEAR_INODE", "PR_2_UNUSED_INODE"]);
    expect(r.problems[0]!.message).toMatch(new RegExp(`^Clearing orphaned inode ${big.ino} \\(uid=0, gid=0, mode=0100\\d+, size=\\d+\\)$`));
    expect(r.exitCode).toBe(1);
    const after = dev.toBytes();
    const raw = decodeInode(after, big.at, big.isz);
    expect(raw.i_dtime).toBe(1_800_000_000);
    expect(sbOf(after).s_free_inodes_count).toBe(sb0.s_free_inodes_count + 1);
    expect(freeBlocksCount(sbOf(after))).toBe(freeBlocksCount(sb0) + 40);
    expect((await readOnly(MemoryDevice.from(after))).clean).toBe(true);
  });

  it("stops at an orphan whose next link is not an inode, and leaves the volume to the passes", async () => {
    const b = FIXTURE.slice();
    const big = await locate(b, "/big");
    editInode(b, big, { i_links_count: 0, i_dtime: 5 });
    editSuper(b, { s_last_orphan: big.ino });
    const dev = MemoryDevice.from(b);
    const r = await repair(dev);
    expect(r.problems.slice(0, 2).map((p) => p.message)).toEqual([
      expect.stringMatching(/^Clearing orphaned inode/) as string,
      "Illegal inode 5 in orphaned inode list.",
    ]);
    expect((await readOnly(MemoryDevice.from(dev.toBytes()))).clean).toBe(true);
  });

  it("leaves the list alone in a read-only check", async () => {
    const b = FIXTURE.slice();
    const big = await locate(b, "/big");
    editInode(b, big, { i_size_lo: 5 * 1024 });
    editSuper(b, { s_last_orphan: big.ino });
    const r = await readOnly(MemoryDevice.from(b.slice()));
    expect(r.problems.some((p) => p.name === "PR_0_ORPHAN_CLEAR_INODE")).toBe(false);
  });
});

describe("fsck: a journal superblock with V2 fields it may not have (clear_v2_journal_fields)", () => {
  async function volumeWithUsers(users: number): Promise<{ dev: MemoryDevice; jsbAt: number; bs: number }> {
    const dev = new MemoryDevice(16 << 20);
    await mkfsDevice(dev, { fsType: "ext4", blockSize: "4096", quiet: true, knownZero: true, uuid: "6b1f7a54-0f4b-4a5e-9a8e-3c2d1e0f9a8b", now: 1_700_000_000 });
    const layout = await readJournalLayout(dev);
    const jsbAt = layout.bmap(0) * layout.blockSize;
    const raw = await dev.read(jsbAt, layout.blockSize);
    expect(journalSuperblock.decode(raw).h_blocktype).toBe(JBD2_SUPERBLOCK_V2);
    journalSuperblock.encode({ s_nr_users: users }, raw);
    const jsb = journalSuperblock.decode(raw);
    if (journalHasCsumV2or3(jsb)) journalSuperblock.encode({ s_checksum: journalSuperblockChecksum(raw) }, raw);
    await dev.write(jsbAt, raw);
    return { dev, jsbAt, bs: layout.blockSize };
  }

  it("-n says so and then gives up on an internal journal that claims several filesystems, as e2fsck -n does", async () => {
    const { dev } = await volumeWithUsers(9999);
    const r = await readOnly(dev);
    expect(r.problems.map((p) => p.name)).toEqual(["PR_0_CLEAR_V2_JOURNAL", "PR_0_JOURNAL_UNSUPP_MULTIFS"]);
    expect(r.problems[0]!.message).toBe("Found invalid V2 journal superblock fields (from V1 journal).\nClearing fields beyond the V1 journal superblock...\n");
    expect(r.exitCode).toBe(12);
  });

  it("-y zeroes the superblock past its V1 part, without counting it as a change (exit 0), and the volume checks clean", async () => {
    const { dev, jsbAt, bs } = await volumeWithUsers(9999);
    const r = await repair(dev);
    expect(r.problems.map((p) => p.name)).toEqual(["PR_0_CLEAR_V2_JOURNAL"]);
    expect(r.exitCode).toBe(0);
    const jsb = await dev.read(jsbAt, bs);
    expect(jsb.subarray(0x24).every((x) => x === 0)).toBe(true);
    expect(journalSuperblock.decode(jsb).s_nr_users).toBe(0);
    expect((await readOnly(dev)).clean).toBe(true);
  });
});
