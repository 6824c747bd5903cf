/**
 * The checker on test/images/f_engine_small (a small mke2fs image with metadata_csum, an
 * htree directory, a depth-1 extent tree, an xattr block, symlinks and a fifo): clean as
 * made, then with one thing damaged at a time (checksums fixed up where the damage is not
 * about them), each found with e2fsck's problem code and message.
 */
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { Volume } from "../api/promises.js";
import { MemoryDevice } from "../device/memory.js";
import {
  bitmapChecksum, groupDescChecksum, inodeChecksum, inodeChecksumSeed, inodeHasChecksumHi, superblockChecksum,
} from "../format/checksum.js";
import { blockBitmap, groupDescLocation, groupDesc, inodeBitmap } from "../format/group_desc.js";
import { decodeInode, inodeStruct } from "../format/inode.js";
import { SUPERBLOCK_OFFSET, superblock } from "../format/superblock.js";
import { inodeLocation } from "../fs/inode.js";
import { mapBlocks } from "../fs/read.js";
import { iget } from "../fs/inode.js";
import { check, formatProblem, type FsckReport, type Problem } from "./check.js";
import { mutateName } from "./pass345.js";
import { asctimeUtc } from "./pass1b.js";

// A plain Uint8Array: Buffer#slice would share memory between the tests.
const FIXTURE = new Uint8Array(gunzipSync(readFileSync(new URL("../../test/images/f_engine_small/image.gz", import.meta.url))));

interface Layout {
  bs: number;
  isz: number;
  descSize: number;
  csumSeed: number;
  ino: Map<string, number>;
  inodeAt: Map<number, number>;
  firstBlock: Map<string, number>;
  blockBitmap: number;
  inodeBitmap: number;
  groupDescAt: number;
}

let L: Layout;

beforeAll(async () => {
  const vol = await Volume.mount(MemoryDevice.from(FIXTURE.slice()));
  try {
    const fs = vol.fs;
    const ino = new Map<string, number>();
    const inodeAt = new Map<number, number>();
    const firstBlock = new Map<string, number>();
    for (const p of ["/", "/hello.txt", "/dir", "/dir/a.txt", "/htree", "/xattr", "/big"]) {
      const i = (await vol.lstat(p)).ino;
      ino.set(p, i);
      const loc = inodeLocation(fs, i);
      inodeAt.set(i, loc.block * fs.blockSize + loc.offset);
      if (p !== "/") firstBlock.set(p, (await mapBlocks(fs, await iget(fs, i), 0, 1)).pblk);
    }
    const gd = fs.group(0);
    const at = groupDescLocation(fs.sb, 0);
    L = {
      bs: fs.blockSize, isz: fs.inodeSize, descSize: fs.descSize, csumSeed: fs.csumSeed, ino, inodeAt, firstBlock,
      blockBitmap: blockBitmap(gd, fs.descSize), inodeBitmap: inodeBitmap(gd, fs.descSize), groupDescAt: at.block * fs.blockSize + at.offset,
    };
  } finally {
    await vol.unmount();
  }
});

const img = (): Uint8Array => FIXTURE.slice();
const run = (bytes: Uint8Array): Promise<FsckReport> => check(MemoryDevice.from(bytes), { force: true, name: "test.img" });
const codes = (r: FsckReport): string[] => r.problems.map((p) => p.name);
const find = (r: FsckReport, name: string): Problem | undefined => r.problems.find((p) => p.name === name);

/** Edit inode `ino`'s raw fields and fix its checksum. */
function editInode(b: Uint8Array, ino: number, fields: Parameters<typeof inodeStruct.encode>[0]): void {
  const at = L.inodeAt.get(ino)!;
  inodeStruct.encode(fields, b, at, L.isz);
  const raw = decodeInode(b, at, L.isz);
  const c = inodeChecksum(b, at, L.isz, inodeChecksumSeed(L.csumSeed, ino, raw.i_generation));
  inodeStruct.encode({ l_i_checksum_lo: c & 0xffff }, b, at);
  if (inodeHasChecksumHi(b, at, L.isz)) inodeStruct.encode({ i_checksum_hi: c >>> 16 }, b, at, L.isz);
}

function rawInode(b: Uint8Array, ino: number): ReturnType<typeof decodeInode> {
  return decodeInode(b, L.inodeAt.get(ino)!, L.isz);
}

/** Flip bit `i` of the bitmap in block `blk` and fix the group's bitmap and descriptor checksums. */
function flipBitmapBit(b: Uint8Array, blk: number, i: number, kind: "block" | "inode"): void {
  const at = blk * L.bs;
  b[at + (i >>> 3)] = b[at + (i >>> 3)]! ^ (1 << (i & 7));
  const sb = superblock.decode(b, SUPERBLOCK_OFFSET);
  const nbytes = kind === "block" ? sb.s_clusters_per_group / 8 : sb.s_inodes_per_group / 8;
  const c = bitmapChecksum(b.subarray(at, at + L.bs), nbytes, L.csumSeed) >>> 0;
  const field = kind === "block" ? { bg_block_bitmap_csum_lo: c & 0xffff, bg_block_bitmap_csum_hi: c >>> 16 } : { bg_inode_bitmap_csum_lo: c & 0xffff, bg_inode_bitmap_csum_hi: c >>> 16 };
  groupDesc.encode(field, b, L.groupDescAt, L.descSize);
  fixGroupDesc(b);
}

function fixGroupDesc(b: Uint8Array): void {
  const sb = superblock.decode(b, SUPERBLOCK_OFFSET);
  const c = groupDescChecksum(b.subarray(L.groupDescAt, L.groupDescAt + L.descSize), 0, {
    csumSeed: L.csumSeed, uuid: sb.s_uuid, metadataCsum: true, gdtCsum: false, descSize: L.descSize, is64bit: L.descSize >= 64,
  });
  groupDesc.encode({ bg_checksum: c }, b, L.groupDescAt, L.descSize);
}

describe("check(): a clean volume", () => {
  it("finds nothing on the fixture and prints e2fsck's summary, named by the volume label", async () => {
    const r = await run(img());
    expect(r.problems).toEqual([]);
    expect(r.clean).toBe(true);
    expect(r.exitCode).toBe(0);
    expect(r.skipped).toBe(false);
    expect(r.device).toBe("f_engine_small");
    expect(r.summaryLine).toMatch(/^f_engine_small: \d+\/256 files \(\d+\.\d% non-contiguous\), \d+\/4096 blocks$/);
    expect(r.summary.inodesCount).toBe(256);
    expect(r.summary.directories).toBeGreaterThan(3);
  });

  it("without force, says 'clean' from the superblock counts and checks nothing, as e2fsck does", async () => {
    const r = await check(MemoryDevice.from(img()), { name: "x" });
    expect(r.skipped).toBe(true);
    expect(r.exitCode).toBe(0);
    expect(r.summaryLine).toMatch(/^f_engine_small: clean, \d+\/256 files, \d+\/4096 blocks$/);
  });

  it("checks a mounted engine's device through its own cache", async () => {
    const vol = await Volume.mount(MemoryDevice.from(img()));
    try {
      const r = await check(vol.fs, { force: true });
      expect(r.clean).toBe(true);
      const r2 = await check({ fs: vol.fs }, { force: true });
      expect(r2.problems).toEqual([]);
    } finally {
      await vol.unmount();
    }
  });
});

describe("check(): one damage at a time", () => {
  it("i_blocks too high: PR_1_BAD_I_BLOCKS with e2fsck's message", async () => {
    const b = img();
    const ino = L.ino.get("/hello.txt")!;
    const was = rawInode(b, ino).i_blocks_lo;
    editInode(b, ino, { i_blocks_lo: was + 8 });
    const r = await run(b);
    const p = find(r, "PR_1_BAD_I_BLOCKS");
    expect(p?.message).toBe(`Inode ${ino}, i_blocks is ${was + 8}, should be ${was}.`);
    expect(p).toMatchObject({ code: 0x01000d, pass: 1, cls: "i_blocks", ino, prompt: "Fix", error: true });
    expect(formatProblem(p!)).toBe(`Inode ${ino}, i_blocks is ${was + 8}, should be ${was}.  Fix? no\n\n`);
    expect(r.clean).toBe(false);
    expect(r.exitCode).toBe(4);
  });

  it("link count wrong: PR_4_BAD_REF_COUNT", async () => {
    const b = img();
    const ino = L.ino.get("/hello.txt")!;
    editInode(b, ino, { i_links_count: 3 });
    const r = await run(b);
    expect(find(r, "PR_4_BAD_REF_COUNT")?.message).toBe(`Inode ${ino} ref count is 3, should be 1.`);
    expect(r.exitCode).toBe(4);
  });

  it("directory size not a block multiple: PR_1_BAD_I_SIZE", async () => {
    const b = img();
    const ino = L.ino.get("/dir")!;
    const was = rawInode(b, ino).i_size_lo;
    editInode(b, ino, { i_size_lo: was + 100 });
    const r = await run(b);
    expect(find(r, "PR_1_BAD_I_SIZE")?.message).toBe(`Inode ${ino}, i_size is ${was + 100}, should be ${was}.`);
  });

  it("a regular file made a socket: an illegal socket (it has blocks) and a wrong entry file type", async () => {
    const b = img();
    const ino = L.ino.get("/hello.txt")!;
    editInode(b, ino, { i_mode: 0o140644 });
    const r = await run(b);
    expect(find(r, "PR_2_BAD_SOCKET")?.message).toBe(`Inode ${ino} (/hello.txt) is an illegal socket.`);
    expect(find(r, "PR_2_BAD_FILETYPE")?.message).toBe("Entry 'hello.txt' in / (2) has an incorrect filetype (was 1, should be 0).");
    expect(r.clean).toBe(false);
  });

  it("a used block marked free: PR_5_BLOCK_BITMAP_HEADER '+N' and the group's free count", async () => {
    const b = img();
    const blk = L.firstBlock.get("/big")!;
    flipBitmapBit(b, L.blockBitmap, blk - 1, "block"); // 1 KiB blocks: bit 0 is block 1
    const r = await run(b);
    expect(find(r, "PR_5_BLOCK_BITMAP_HEADER")?.message).toBe(`Block bitmap differences:  +${blk}`);
    expect(find(r, "PR_5_BLOCK_BITMAP_CSUM_INVALID")).toBeUndefined();
    expect(r.exitCode).toBe(4);
  });

  it("a free inode marked used: PR_5_INODE_BITMAP_HEADER '-N'", async () => {
    const b = img();
    flipBitmapBit(b, L.inodeBitmap, 199, "inode");
    const r = await run(b);
    expect(find(r, "PR_5_INODE_BITMAP_HEADER")?.message).toBe("Inode bitmap differences:  -200");
    expect(r.exitCode).toBe(4);
  });

  it("superblock free counts off: reported (no question counts: e2fsck -n exits 0)", async () => {
    const b = img();
    const sb = superblock.decode(b, SUPERBLOCK_OFFSET);
    superblock.encode({ s_free_inodes_count: sb.s_free_inodes_count + 5 }, b, SUPERBLOCK_OFFSET);
    const c = superblockChecksum(b.subarray(SUPERBLOCK_OFFSET, SUPERBLOCK_OFFSET + 1024));
    superblock.encode({ s_checksum: c }, b, SUPERBLOCK_OFFSET);
    const r = await run(b);
    const p = find(r, "PR_5_FREE_INODE_COUNT");
    expect(p?.message).toBe(`Free inodes count wrong (${sb.s_free_inodes_count + 5}, counted=${sb.s_free_inodes_count}).`);
    expect(p?.error).toBe(false);
    expect(r.exitCode).toBe(0);
  });

  it("a group's free block count off: PR_5_FREE_BLOCK_COUNT_GROUP", async () => {
    const b = img();
    const gd = groupDesc.decode(b, L.groupDescAt, L.descSize);
    groupDesc.encode({ bg_free_blocks_count_lo: gd.bg_free_blocks_count_lo - 3 }, b, L.groupDescAt, L.descSize);
    fixGroupDesc(b);
    const r = await run(b);
    expect(find(r, "PR_5_FREE_BLOCK_COUNT_GROUP")?.message).toBe(
      `Free blocks count wrong for group #0 (${gd.bg_free_blocks_count_lo - 3}, counted=${gd.bg_free_blocks_count_lo}).`,
    );
    expect(r.exitCode).toBe(4);
  });

  it("a cleared inode still named by a directory: pass 2 and pass 5 both see it", async () => {
    const b = img();
    const ino = L.ino.get("/dir/a.txt")!;
    const at = L.inodeAt.get(ino) ?? 0;
    b.fill(0, at, at + L.isz);
    const r = await run(b);
    expect(find(r, "PR_2_UNUSED_INODE")?.message).toBe(`Entry 'a.txt' in /dir (${L.ino.get("/dir")!}) has deleted/unused inode ${ino}.`);
    expect(r.exitCode).toBe(4);
  });

  it("a damaged directory block: PR_2_DIR_CORRUPTED, then e2fsck -n gives up", async () => {
    const b = img();
    const blk = L.firstBlock.get("/dir")!;
    // The first entry's rec_len made to run past the block.
    new DataView(b.buffer, b.byteOffset).setUint16(blk * L.bs + 4, 2000, true);
    const r = await run(b);
    const p = find(r, "PR_2_DIR_CORRUPTED");
    expect(p?.message).toMatch(new RegExp(`^Directory inode ${L.ino.get("/dir")!}, block #0, offset 0: directory corrupted$`));
    expect(r.clean).toBe(false);
    expect(r.exitCode).toBeGreaterThanOrEqual(4);
  });

  it("stops keeping records past maxProblems but still counts them, and calls onProblem for each", async () => {
    const b = img();
    for (let i = 0; i < 40; i++) flipBitmapBit(b, L.inodeBitmap, 150 + i, "inode");
    for (const p of ["/hello.txt", "/big", "/xattr"]) editInode(b, L.ino.get(p)!, { i_links_count: 7 });
    const seen: string[] = [];
    const r = await check(MemoryDevice.from(b), { force: true, maxProblems: 2, onProblem: (p) => seen.push(p.name) });
    expect(r.problems.length).toBe(2);
    expect(r.problemsDropped).toBeGreaterThan(0);
    expect(seen.length).toBe(r.problems.length + r.problemsDropped);
    expect(r.counts.get(0x040003) ?? 0).toBeGreaterThanOrEqual(3);
    expect(codes(r)).toHaveLength(2);
  });
});

describe("helpers", () => {
  it("mutateName gives e2fsck's new names for duplicate entries", () => {
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
    const dec = (u: Uint8Array): string => new TextDecoder().decode(u);
    // From e2fsck -n on the corpus image f_dup_de.
    expect(dec(mutateName(enc("fstab")))).toBe("fstab~0");
    expect(dec(mutateName(enc("localtime")))).toBe("localtime~0");
    expect(dec(mutateName(enc("resolv.conf")))).toBe("resolv.con~0");
    expect(dec(mutateName(enc("mailcap.dpkg-old")))).toBe("mailcap.dpkg-o~0");
  });

  it("asctimeUtc formats like asctime()", () => {
    expect(asctimeUtc(Date.UTC(2006, 6, 5, 21, 55, 26) / 1000)).toBe("Wed Jul  5 21:55:26 2006");
    expect(asctimeUtc(0)).toBe("Thu Jan  1 00:00:00 1970");
  });
});
