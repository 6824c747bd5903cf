/**
 * jbd2 recovery (recovery.ts) on hand-built journals: volumes made by ext4ts mkfs in a
 * MemoryDevice (ext4 with 4 KiB blocks and an extent-mapped journal; ext3 with 1 KiB blocks
 * and a block-mapped one), whose log this file writes block by block as jbd2's commit code
 * lays it out (descriptor tags, escapes, revoke blocks, commit blocks, checksums v1/v2/v3),
 * so each case is exactly the log the test names. test/oracle/recovery.test.ts compares the
 * same engine with e2fsck on logs written by debugfs and the kernel.
 */

import { describe, expect, it } from "vitest";
import { mkfsDevice } from "../../tools/mkfs/mkfs.js";
import { Ext4Fs } from "../fs/super.js";
import { MemoryDevice } from "../device/memory.js";
import { FsError } from "../errors.js";
import {
  journalBlockTagChecksum, journalBlockTailChecksum, journalChecksumSeed, journalCommitBlockChecksum, journalCrc32Be,
  journalSuperblockChecksum, superblockChecksum,
} from "../format/checksum.js";
import {
  JBD2_COMMIT_BLOCK, JBD2_CRC32_CHKSUM, JBD2_CRC32_CHKSUM_SIZE, JBD2_CRC32C_CHKSUM, JBD2_DESCRIPTOR_BLOCK,
  JBD2_FEATURE_COMPAT_CHECKSUM, JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_CSUM_V2, JBD2_FEATURE_INCOMPAT_CSUM_V3,
  JBD2_FEATURE_INCOMPAT_FAST_COMMIT, JBD2_FEATURE_INCOMPAT_REVOKE, JBD2_FLAG_ESCAPE, JBD2_FLAG_LAST_TAG, JBD2_FLAG_SAME_UUID, JBD2_MAGIC_NUMBER,
  JBD2_REVOKE_BLOCK, blockTag, blockTag3, commitHeader, journalBlockTail, journalHeader, journalSuperblock,
  journalTagBytes, revokeHeader, type JournalSuperblock,
} from "../format/jbd2.js";
import { EXT4_FEATURE_COMPAT_FAST_COMMIT, EXT4_FEATURE_INCOMPAT_RECOVER, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM, SUPERBLOCK_OFFSET, hasRoCompat, superblock } from "../format/superblock.js";
import { readJournalLayout, recoverJournal, type JournalLayout } from "./recovery.js";

type Csum = "none" | "v1" | "v2" | "v3";

interface LogOptions {
  csum: Csum;
  is64bit: boolean;
  /** s_sequence: the first transaction of the log. */
  sequence?: number;
  /** s_start: where the log begins (default s_first). */
  start?: number;
  /** Fast-commit blocks at the end of the journal (JBD2_FEATURE_INCOMPAT_FAST_COMMIT), 0 for none. */
  fcBlocks?: number;
}

interface TxBlock {
  nr: number;
  data: Uint8Array;
}

interface Tx {
  blocks?: TxBlock[];
  revokes?: number[];
  /** false: no commit block (an interrupted transaction). */
  commit?: boolean;
  /** h_commit_sec (default: the transaction ID). */
  commitTime?: number;
  /** Corrupt the commit block's checksum (or, for v1, the transactional one). */
  badCommit?: boolean;
  /** Corrupt the tag checksum of block i. */
  badTag?: number;
  /** Corrupt the descriptor block's tail checksum. */
  badDescriptor?: boolean;
}

const UUID = Uint8Array.from({ length: 16 }, (_, i) => 0x30 + i);

/** Writes a jbd2 log into the journal of `dev`, transaction by transaction, as jbd2_journal_commit_transaction lays it out. */
class LogWriter {
  readonly #dev: MemoryDevice;
  readonly #layout: JournalLayout;
  readonly #o: Required<LogOptions>;
  readonly #bs: number;
  readonly #seed = journalChecksumSeed(UUID);
  readonly #incompat: number;
  #pos: number;

  private constructor(dev: MemoryDevice, layout: JournalLayout, o: Required<LogOptions>) {
    this.#dev = dev;
    this.#layout = layout;
    this.#o = o;
    this.#bs = layout.blockSize;
    this.#pos = o.start;
    this.#incompat = JBD2_FEATURE_INCOMPAT_REVOKE | (o.is64bit ? JBD2_FEATURE_INCOMPAT_64BIT : 0) |
      (o.csum === "v2" ? JBD2_FEATURE_INCOMPAT_CSUM_V2 : 0) | (o.csum === "v3" ? JBD2_FEATURE_INCOMPAT_CSUM_V3 : 0) |
      (o.fcBlocks > 0 ? JBD2_FEATURE_INCOMPAT_FAST_COMMIT : 0);
  }

  /** Sets up the journal superblock (features, s_sequence, s_start) and needs_recovery in the volume. */
  static async open(dev: MemoryDevice, o: LogOptions): Promise<LogWriter> {
    const layout = await readJournalLayout(dev);
    const w = new LogWriter(dev, layout, { sequence: 1, start: layout.first, fcBlocks: 0, ...o });
    const jsb = await w.#readLog(0);
    const fields: Partial<JournalSuperblock> = {
      s_sequence: w.#o.sequence, s_start: w.#o.start, s_feature_incompat: w.#incompat,
      s_feature_compat: o.csum === "v1" ? JBD2_FEATURE_COMPAT_CHECKSUM : 0, s_uuid: UUID,
      s_checksum_type: o.csum === "v2" || o.csum === "v3" ? JBD2_CRC32C_CHKSUM : 0, s_num_fc_blks: w.#o.fcBlocks,
    };
    journalSuperblock.encode(fields, jsb);
    if (o.csum === "v2" || o.csum === "v3") journalSuperblock.encode({ s_checksum: journalSuperblockChecksum(jsb) }, jsb);
    await w.#writeLog(0, jsb);
    await setRecover(dev, true);
    return w;
  }

  get position(): number {
    return this.#pos;
  }

  async transaction(tid: number, tx: Tx): Promise<void> {
    const blocks = tx.blocks ?? [];
    if (blocks.length > 0) await this.#descriptor(tid, blocks, tx);
    if ((tx.revokes ?? []).length > 0) await this.#revoke(tid, tx.revokes ?? []);
    if (tx.commit !== false) await this.#commit(tid, blocks, tx);
  }

  /** A descriptor block and its data blocks (one descriptor: tests stay small). */
  async #descriptor(tid: number, blocks: TxBlock[], tx: Tx): Promise<void> {
    const bs = this.#bs;
    const tagBytes = journalTagBytes({ s_feature_incompat: this.#incompat });
    const d = new Uint8Array(bs);
    journalHeader.encode({ h_magic: JBD2_MAGIC_NUMBER, h_blocktype: JBD2_DESCRIPTOR_BLOCK, h_sequence: tid }, d);
    let tagp = journalHeader.size;
    const logged: Uint8Array[] = [];
    blocks.forEach((b, i) => {
      const copy = b.data.slice();
      let flags = i === 0 ? 0 : JBD2_FLAG_SAME_UUID;
      if (i === blocks.length - 1) flags |= JBD2_FLAG_LAST_TAG;
      // jbd2_journal_write_metadata_buffer: a block starting with the magic is logged with it zeroed.
      if (new DataView(copy.buffer).getUint32(0) === JBD2_MAGIC_NUMBER) {
        copy.fill(0, 0, 4);
        flags |= JBD2_FLAG_ESCAPE;
      }
      let csum = journalBlockTagChecksum(copy, bs, this.#seed, tid);
      if (tx.badTag === i) csum = (csum ^ 1) >>> 0;
      const hi = Math.floor(b.nr / 2 ** 32);
      if (this.#o.csum === "v3") blockTag3.encode({ t_blocknr: b.nr >>> 0, t_flags: flags, t_blocknr_high: hi, t_checksum: csum }, d, tagp);
      else blockTag.encode({ t_blocknr: b.nr >>> 0, t_flags: flags, t_blocknr_high: hi, t_checksum: this.#o.csum === "v2" ? csum & 0xffff : 0 }, d, tagp, tagBytes);
      tagp += tagBytes;
      if (i === 0) {
        d.set(UUID, tagp);
        tagp += 16;
      }
      logged.push(copy);
    });
    this.#tail(d, tx.badDescriptor === true);
    await this.#append(d);
    for (const b of logged) await this.#append(b);
    if (this.#o.csum === "v1") {
      let sum = journalCrc32Be(0xffffffff, d);
      for (const b of logged) sum = journalCrc32Be(sum, b);
      this.#v1sum = sum;
    }
  }

  #v1sum = 0xffffffff;

  async #revoke(tid: number, revokes: number[]): Promise<void> {
    const r = new Uint8Array(this.#bs);
    const len = this.#o.is64bit ? 8 : 4;
    revokeHeader.encode({ h_magic: JBD2_MAGIC_NUMBER, h_blocktype: JBD2_REVOKE_BLOCK, h_sequence: tid, r_count: revokeHeader.size + revokes.length * len }, r);
    const dv = new DataView(r.buffer);
    revokes.forEach((nr, i) => {
      const at = revokeHeader.size + i * len;
      if (len === 8) {
        dv.setUint32(at, Math.floor(nr / 2 ** 32));
        dv.setUint32(at + 4, nr >>> 0);
      } else dv.setUint32(at, nr);
    });
    this.#tail(r, false);
    await this.#append(r);
  }

  async #commit(tid: number, blocks: TxBlock[], tx: Tx): Promise<void> {
    const c = new Uint8Array(this.#bs);
    commitHeader.encode({ h_magic: JBD2_MAGIC_NUMBER, h_blocktype: JBD2_COMMIT_BLOCK, h_sequence: tid, h_commit_sec: BigInt(tx.commitTime ?? tid) }, c);
    if (this.#o.csum === "v1") {
      const sum = blocks.length > 0 ? this.#v1sum : 0xffffffff;
      commitHeader.encode({ h_chksum_type: JBD2_CRC32_CHKSUM, h_chksum_size: JBD2_CRC32_CHKSUM_SIZE, h_chksum: [tx.badCommit === true ? (sum ^ 1) >>> 0 : sum, 0, 0, 0, 0, 0, 0, 0] }, c);
      this.#v1sum = 0xffffffff;
    } else if (this.#o.csum !== "none") {
      const sum = journalCommitBlockChecksum(c, this.#bs, this.#seed);
      commitHeader.encode({ h_chksum: [tx.badCommit === true ? (sum ^ 1) >>> 0 : sum, 0, 0, 0, 0, 0, 0, 0] }, c);
    }
    await this.#append(c);
  }

  #tail(b: Uint8Array, corrupt: boolean): void {
    if (this.#o.csum !== "v2" && this.#o.csum !== "v3") return;
    const sum = journalBlockTailChecksum(b, this.#bs, this.#seed);
    journalBlockTail.encode({ t_checksum: corrupt ? (sum ^ 1) >>> 0 : sum }, b, this.#bs - journalBlockTail.size);
  }

  async #append(b: Uint8Array): Promise<void> {
    await this.#writeLog(this.#pos, b);
    this.#pos = this.#pos + 1 >= this.#layout.last ? this.#layout.first : this.#pos + 1;
  }

  async #readLog(lblk: number): Promise<Uint8Array> {
    return this.#dev.read(this.#layout.bmap(lblk) * this.#bs, this.#bs);
  }

  async #writeLog(lblk: number, b: Uint8Array): Promise<void> {
    await this.#dev.write(this.#layout.bmap(lblk) * this.#bs, b);
  }
}

async function setRecover(dev: MemoryDevice, on: boolean): Promise<void> {
  const raw = await dev.read(SUPERBLOCK_OFFSET, superblock.size);
  const sb = superblock.decode(raw);
  superblock.encode({ s_feature_incompat: on ? sb.s_feature_incompat | EXT4_FEATURE_INCOMPAT_RECOVER : sb.s_feature_incompat & ~EXT4_FEATURE_INCOMPAT_RECOVER }, raw);
  if (hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) superblock.encode({ s_checksum: superblockChecksum(raw) }, raw);
  await dev.write(SUPERBLOCK_OFFSET, raw);
}

const IMAGES = new Map<string, Uint8Array>();

/** A fresh ext4 (4 KiB, metadata_csum, extents) or ext3 (1 KiB, block-mapped journal) volume. */
async function volume(kind: "ext4" | "ext3"): Promise<MemoryDevice> {
  let bytes = IMAGES.get(kind);
  if (bytes === undefined) {
    const size = kind === "ext4" ? 16 << 20 : 8 << 20;
    const dev = new MemoryDevice(size);
    await mkfsDevice(dev, {
      fsType: kind, blockSize: kind === "ext4" ? "4096" : "1024", quiet: true, knownZero: true,
      uuid: "6b1f7a54-0f4b-4a5e-9a8e-3c2d1e0f9a8b", extended: ["hash_seed=0b7c4f1e-2d3a-4b5c-8d9e-0f1a2b3c4d5e"], now: 1_700_000_000,
    });
    bytes = dev.toBytes();
    IMAGES.set(kind, bytes);
  }
  return MemoryDevice.from(bytes);
}

/** A block of `fill` bytes, with its number in the first bytes so misplaced writes show. */
function block(bs: number, fill: number, tag = 0): Uint8Array {
  const b = new Uint8Array(bs).fill(fill);
  new DataView(b.buffer).setUint32(0, tag);
  return b;
}

/** Byte equality, reported as the first difference (a diff of 4096-element arrays is unreadable). */
function expectBytes(got: Uint8Array, want: Uint8Array): void {
  expect(got.length).toBe(want.length);
  const at = got.findIndex((b, i) => b !== want[i]);
  expect(at === -1 ? "equal" : `differ at byte ${at}: ${got[at]} vs ${want[at]}`).toBe("equal");
}

async function readBlock(dev: MemoryDevice, bs: number, nr: number): Promise<Uint8Array> {
  return dev.read(nr * bs, bs);
}

async function journalSb(dev: MemoryDevice): Promise<JournalSuperblock> {
  const l = await readJournalLayout(dev);
  return l.superblock;
}

async function needsRecovery(dev: MemoryDevice): Promise<boolean> {
  const raw = await dev.read(SUPERBLOCK_OFFSET, superblock.size);
  const sb = superblock.decode(raw);
  if (hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) expect(superblockChecksum(raw)).toBe(sb.s_checksum);
  return (sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_RECOVER) !== 0;
}

/** Free data blocks near the end of each test volume. */
const TARGET = { ext4: 4000, ext3: 8000 };

describe("recoverJournal() on hand-built logs", () => {
  it("replays a committed transaction (descriptor, data blocks, commit) and releases the journal", async () => {
    const dev = await volume("ext4");
    const w = await LogWriter.open(dev, { csum: "v3", is64bit: true, sequence: 7 });
    const t = TARGET.ext4;
    await w.transaction(7, { blocks: [0, 1, 2].map((i) => ({ nr: t + i, data: block(4096, 0xa0 + i, t + i) })) });
    const r = await recoverJournal(dev);
    expect(r).toMatchObject({ transactions: 1, blocksReplayed: 3, revoked: 0, firstTid: 7, lastTid: 7, sequence: 9, notes: [] });
    expect(r.error).toBeUndefined();
    for (const i of [0, 1, 2]) expectBytes(await readBlock(dev, 4096, t + i), block(4096, 0xa0 + i, t + i));
    // e2fsck_journal_release: empty journal, s_sequence past the log plus the skipped ID, valid checksum.
    const jsb = await journalSb(dev);
    expect(jsb.s_start).toBe(0);
    expect(jsb.s_sequence).toBe(9);
    expect(await needsRecovery(dev)).toBe(false);
    const fs = await Ext4Fs.mount(dev);
    await fs.unmount();
  });

  it("does not replay an uncommitted trailing transaction", async () => {
    const dev = await volume("ext4");
    const w = await LogWriter.open(dev, { csum: "v3", is64bit: true });
    const t = TARGET.ext4;
    await w.transaction(1, { blocks: [{ nr: t, data: block(4096, 0x11) }] });
    await w.transaction(2, { blocks: [{ nr: t + 1, data: block(4096, 0x22) }, { nr: t, data: block(4096, 0x23) }], commit: false });
    const r = await recoverJournal(dev);
    expect(r).toMatchObject({ transactions: 1, blocksReplayed: 1, firstTid: 1, lastTid: 1, sequence: 3 });
    expectBytes(await readBlock(dev, 4096, t), block(4096, 0x11));
    expectBytes(await readBlock(dev, 4096, t + 1), new Uint8Array(4096));
  });

  it("applies revoke records of the same or a later transaction only", async () => {
    const dev = await volume("ext4");
    const w = await LogWriter.open(dev, { csum: "v3", is64bit: true });
    const t = TARGET.ext4;
    await w.transaction(1, { blocks: [{ nr: t, data: block(4096, 0x11) }, { nr: t + 1, data: block(4096, 0x12) }, { nr: t + 2, data: block(4096, 0x13) }] });
    await w.transaction(2, { revokes: [t, t + 1] });
    // Logged again after the revoke: this copy must be replayed.
    await w.transaction(3, { blocks: [{ nr: t + 1, data: block(4096, 0x31) }] });
    const r = await recoverJournal(dev);
    expect(r).toMatchObject({ transactions: 3, blocksReplayed: 2, revoked: 2, revokeRecords: 2, lastTid: 3 });
    expectBytes(await readBlock(dev, 4096, t), new Uint8Array(4096));
    expectBytes(await readBlock(dev, 4096, t + 1), block(4096, 0x31));
    expectBytes(await readBlock(dev, 4096, t + 2), block(4096, 0x13));
  });

  it("a revoke block in the same transaction suppresses that transaction's copy", async () => {
    const dev = await volume("ext4");
    const w = await LogWriter.open(dev, { csum: "v3", is64bit: true });
    const t = TARGET.ext4;
    await w.transaction(1, { blocks: [{ nr: t, data: block(4096, 0x11) }], revokes: [t] });
    const r = await recoverJournal(dev);
    expect(r).toMatchObject({ transactions: 1, blocksReplayed: 0, revoked: 1 });
    expectBytes(await readBlock(dev, 4096, t), new Uint8Array(4096));
  });

  it("restores the magic number of an escaped block", async () => {
    const dev = await volume("ext4");
    const w = await LogWriter.open(dev, { csum: "v3", is64bit: true });
    const t = TARGET.ext4;
    const withMagic = block(4096, 0x5a, JBD2_MAGIC_NUMBER);
    await w.transaction(1, { blocks: [{ nr: t, data: withMagic }, { nr: t + 1, data: block(4096, 0x66) }] });
    // The logged copy really is escaped.
    const logged = await dev.read((await readJournalLayout(dev)).bmap(2) * 4096, 4096);
    expect(new DataView(logged.buffer).getUint32(0)).toBe(0);
    const r = await recoverJournal(dev);
    expect(r.blocksReplayed).toBe(2);
    expectBytes(await readBlock(dev, 4096, t), withMagic);
    expectBytes(await readBlock(dev, 4096, t + 1), block(4096, 0x66));
  });

  it("csum v3: a block failing its tag checksum is not written, and recovery reports EFSBADCRC", async () => {
    const dev = await volume("ext4");
    const w = await LogWriter.open(dev, { csum: "v3", is64bit: true, sequence: 40 });
    const t = TARGET.ext4;
    await w.transaction(40, { blocks: [{ nr: t, data: block(4096, 0x11) }, { nr: t + 1, data: block(4096, 0x12) }], badTag: 0 });
    await w.transaction(41, { blocks: [{ nr: t + 2, data: block(4096, 0x21) }] });
    const before = dev.toBytes();

    // "kernel": jbd2_journal_load fails the mount; what replayed stays, the journal is kept.
    const k = MemoryDevice.from(before);
    await expect(recoverJournal(k, { policy: "kernel" })).rejects.toMatchObject({ code: "EFSBADCRC" });
    expect(await needsRecovery(k)).toBe(true);
    expect((await journalSb(k)).s_start).not.toBe(0);

    // "e2fsck": everything else replayed, journal released with s_sequence unchanged.
    const r = await recoverJournal(dev);
    expect(r.error).toBeInstanceOf(FsError);
    expect(r.error?.code).toBe("EFSBADCRC");
    expect(r.blocksReplayed).toBe(2);
    expect(r.notes.join("\n")).toMatch(/Invalid checksum recovering data block 4000/);
    expectBytes(await readBlock(dev, 4096, t), new Uint8Array(4096));
    expectBytes(await readBlock(dev, 4096, t + 1), block(4096, 0x12));
    expectBytes(await readBlock(dev, 4096, t + 2), block(4096, 0x21));
    const jsb = await journalSb(dev);
    expect([jsb.s_start, jsb.s_sequence]).toEqual([0, 40]);
    expect(await needsRecovery(dev)).toBe(false);
  });

  it("csum v3: a bad commit checksum ends the log there and names the failed commit", async () => {
    const dev = await volume("ext4");
    const w = await LogWriter.open(dev, { csum: "v3", is64bit: true });
    const t = TARGET.ext4;
    await w.transaction(1, { blocks: [{ nr: t, data: block(4096, 0x11) }] });
    await w.transaction(2, { blocks: [{ nr: t + 1, data: block(4096, 0x21) }], badCommit: true });
    await w.transaction(3, { blocks: [{ nr: t + 2, data: block(4096, 0x31) }] });
    const r = await recoverJournal(dev);
    expect(r).toMatchObject({ transactions: 1, blocksReplayed: 1, failedCommit: 2, sequence: 3 });
    expect(r.notes).toContain("Journal transaction 2 was corrupt, replay was aborted");
    expectBytes(await readBlock(dev, 4096, t + 1), new Uint8Array(4096));
    expectBytes(await readBlock(dev, 4096, t + 2), new Uint8Array(4096));
  });

  it("csum v3: a bad descriptor checksum under an older commit time is stale data that ends the log quietly", async () => {
    const dev = await volume("ext4");
    const w = await LogWriter.open(dev, { csum: "v3", is64bit: true });
    const t = TARGET.ext4;
    await w.transaction(1, { blocks: [{ nr: t, data: block(4096, 0x11) }], commitTime: 100 });
    await w.transaction(2, { blocks: [{ nr: t + 1, data: block(4096, 0x21) }], commitTime: 50, badDescriptor: true });
    const r = await recoverJournal(dev);
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ transactions: 1, blocksReplayed: 1 });
    expect(r.notes.join("\n")).toMatch(/likely stale data/);

    // The same block with a newer commit time is corruption: nothing is replayed (PASS_SCAN failed).
    const dev2 = await volume("ext4");
    const w2 = await LogWriter.open(dev2, { csum: "v3", is64bit: true });
    await w2.transaction(1, { blocks: [{ nr: t, data: block(4096, 0x11) }], commitTime: 100 });
    await w2.transaction(2, { blocks: [{ nr: t + 1, data: block(4096, 0x21) }], commitTime: 200, badDescriptor: true });
    const r2 = await recoverJournal(dev2);
    expect(r2.error?.code).toBe("EFSBADCRC");
    expect(r2.blocksReplayed).toBe(0);
    expectBytes(await readBlock(dev2, 4096, t), new Uint8Array(4096));
  });

  it("follows the log around the end of the ring", async () => {
    const dev = await volume("ext4");
    const layout = await readJournalLayout(dev);
    const start = layout.last - 3;
    const w = await LogWriter.open(dev, { csum: "v3", is64bit: true, start, sequence: 0xfffffffe });
    const t = TARGET.ext4;
    // tid 0xfffffffe: descriptor, 2 blocks at the end of the ring; the commit wraps to s_first.
    await w.transaction(0xfffffffe, { blocks: [{ nr: t, data: block(4096, 0x11) }, { nr: t + 1, data: block(4096, 0x12) }] });
    expect(w.position).toBe(layout.first + 1);
    // IDs wrap too: 0xffffffff, then 0.
    await w.transaction(0xffffffff, { blocks: [{ nr: t + 2, data: block(4096, 0x21) }] });
    await w.transaction(0, { revokes: [t] });
    const r = await recoverJournal(dev);
    expect(r).toMatchObject({ transactions: 3, blocksReplayed: 2, revoked: 1, firstTid: 0xfffffffe, lastTid: 0, sequence: 2 });
    expectBytes(await readBlock(dev, 4096, t), new Uint8Array(4096));
    expectBytes(await readBlock(dev, 4096, t + 1), block(4096, 0x12));
    expectBytes(await readBlock(dev, 4096, t + 2), block(4096, 0x21));
  });

  it("ext3, 1 KiB blocks: maps a block-mapped journal through its indirect blocks, 32-bit tags, no checksums", async () => {
    const dev = await volume("ext3");
    const layout = await readJournalLayout(dev);
    expect(layout.totalLen).toBeGreaterThan(12 + 256); // past the single indirect block
    const w = await LogWriter.open(dev, { csum: "none", is64bit: false, start: 12 + 256 + 5 });
    const t = TARGET.ext3;
    await w.transaction(1, { blocks: [0, 1, 2, 3].map((i) => ({ nr: t + i, data: block(1024, 0x40 + i, t + i) })) });
    await w.transaction(2, { revokes: [t + 3] });
    const r = await recoverJournal(dev);
    expect(r).toMatchObject({ transactions: 2, blocksReplayed: 3, revoked: 1, sequence: 4 });
    for (const i of [0, 1, 2]) expectBytes(await readBlock(dev, 1024, t + i), block(1024, 0x40 + i, t + i));
    expectBytes(await readBlock(dev, 1024, t + 3), new Uint8Array(1024));
    expect(await needsRecovery(dev)).toBe(false);
  });

  it("csum v2: checks the 16-bit tag checksums", async () => {
    const dev = await volume("ext3");
    const w = await LogWriter.open(dev, { csum: "v2", is64bit: false });
    const t = TARGET.ext3;
    await w.transaction(1, { blocks: [{ nr: t, data: block(1024, 0x11) }, { nr: t + 1, data: block(1024, 0x12) }], badTag: 1 });
    const r = await recoverJournal(dev);
    expect(r.error?.code).toBe("EFSBADCRC");
    expect(r.blocksReplayed).toBe(1);
    expectBytes(await readBlock(dev, 1024, t), block(1024, 0x11));
    expectBytes(await readBlock(dev, 1024, t + 1), new Uint8Array(1024));
  });

  it("csum v1 (journal_checksum): the crc32_be transactional checksum decides where the log ends", async () => {
    expect(journalCrc32Be(0xffffffff, new TextEncoder().encode("123456789"))).toBe(0x0376e6e7); // CRC-32/MPEG-2
    const dev = await volume("ext3");
    const w = await LogWriter.open(dev, { csum: "v1", is64bit: false });
    const t = TARGET.ext3;
    await w.transaction(1, { blocks: [{ nr: t, data: block(1024, 0x11) }] });
    await w.transaction(2, { blocks: [{ nr: t + 1, data: block(1024, 0x21) }], badCommit: true });
    const r = await recoverJournal(dev);
    expect(r).toMatchObject({ transactions: 1, blocksReplayed: 1, failedCommit: 2 });
    expectBytes(await readBlock(dev, 1024, t), block(1024, 0x11));
    expectBytes(await readBlock(dev, 1024, t + 1), new Uint8Array(1024));
  });

  it("releases a journal that is already empty (s_start 0) and clears needs_recovery", async () => {
    const dev = await volume("ext4");
    await LogWriter.open(dev, { csum: "v3", is64bit: true, sequence: 12, start: 0 });
    const r = await recoverJournal(dev);
    expect(r).toMatchObject({ transactions: 0, blocksReplayed: 0, firstTid: 12, lastTid: 11, sequence: 13 });
    expect((await journalSb(dev)).s_sequence).toBe(13);
    expect(await needsRecovery(dev)).toBe(false);
  });

  it("streams a log far larger than its cache", async () => {
    const dev = await volume("ext4");
    const w = await LogWriter.open(dev, { csum: "v3", is64bit: true });
    const t = TARGET.ext4;
    // 200 transactions of 5 log blocks fill most of the 1024-block ring.
    for (let tid = 1; tid <= 200; tid++) {
      await w.transaction(tid, { blocks: [0, 1, 2].map((i) => ({ nr: t + ((tid + i) % 7), data: block(4096, tid & 0xff, tid) })) });
    }
    const r = await recoverJournal(dev, { cacheBytes: 4 * 4096 });
    expect(r).toMatchObject({ transactions: 200, blocksReplayed: 600 });
    // Each of the 7 blocks holds the last transaction that logged it.
    for (let k = 0; k < 7; k++) {
      let last = 0;
      for (let tid = 1; tid <= 200; tid++) if ([0, 1, 2].some((i) => (tid + i) % 7 === k)) last = tid;
      expectBytes(await readBlock(dev, 4096, t + k), block(4096, last & 0xff, last));
    }
  });

  it("refuses a journal whose superblock is not one: EFSCORRUPTED naming the block, nothing written", async () => {
    const dev = await volume("ext4");
    const layout = await readJournalLayout(dev);
    await LogWriter.open(dev, { csum: "v3", is64bit: true });
    await dev.write(layout.bmap(0) * 4096, new Uint8Array(4));
    const before = dev.toBytes();
    const e = await recoverJournal(dev).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FsError);
    expect(e).toMatchObject({ code: "EFSCORRUPTED", detail: { block: layout.bmap(0) } });
    expectBytes(dev.toBytes(), before);
  });

  it("refuses (before writing) a log whose end the fast-commit area continues, and ignores a stale one", async () => {
    const make = async (): Promise<MemoryDevice> => {
      const dev = new MemoryDevice(32 << 20);
      await mkfsDevice(dev, { blockSize: "4096", journalOptions: ["size=8"], quiet: true, knownZero: true, uuid: "6b1f7a54-0f4b-4a5e-9a8e-3c2d1e0f9a8b", now: 1_700_000_000 });
      // ext4ts mkfs has no -O fast_commit: set the feature as tune2fs would.
      const raw = await dev.read(SUPERBLOCK_OFFSET, superblock.size);
      superblock.encode({ s_feature_compat: superblock.decode(raw).s_feature_compat | EXT4_FEATURE_COMPAT_FAST_COMMIT }, raw);
      superblock.encode({ s_checksum: superblockChecksum(raw) }, raw);
      await dev.write(SUPERBLOCK_OFFSET, raw);
      const w = await LogWriter.open(dev, { csum: "v3", is64bit: true, fcBlocks: 64 });
      await w.transaction(1, { blocks: [{ nr: 7000, data: block(4096, 0x11) }] });
      return dev;
    };
    const head = async (dev: MemoryDevice, tid: number): Promise<void> => {
      const l = await readJournalLayout(dev);
      expect(l.last).toBe(l.totalLen - 64);
      const b = new Uint8Array(4096);
      const dv = new DataView(b.buffer);
      dv.setUint16(0, 0x0009, true); // EXT4_FC_TAG_HEAD
      dv.setUint16(2, 8, true);
      dv.setUint32(8, tid, true); // fc_tid
      await dev.write(l.bmap(l.last + 1) * 4096, b);
    };
    const dev = await make();
    await head(dev, 2); // the commit right after the log: replaying without it would lose it
    const before = dev.toBytes();
    await expect(recoverJournal(dev)).rejects.toMatchObject({ code: "EOPNOTSUPP" });
    expectBytes(dev.toBytes(), before);

    const stale = await make();
    await head(stale, 1);
    const r = await recoverJournal(stale);
    expect(r).toMatchObject({ transactions: 1, blocksReplayed: 1 });
    expectBytes(await readBlock(stale, 4096, 7000), block(4096, 0x11));
  });

  it("refuses a read-only device", async () => {
    const dev = await volume("ext4");
    await LogWriter.open(dev, { csum: "v3", is64bit: true });
    const ro = MemoryDevice.from(dev.toBytes(), { readOnly: true });
    await expect(recoverJournal(ro)).rejects.toMatchObject({ code: "EROFS" });
  });
});

describe("mounting a volume that needs recovery", () => {
  async function needing(): Promise<MemoryDevice> {
    const dev = await volume("ext4");
    const w = await LogWriter.open(dev, { csum: "v3", is64bit: true });
    await w.transaction(1, { blocks: [{ nr: TARGET.ext4, data: block(4096, 0x77) }] });
    return dev;
  }

  it("a writable mount replays the journal first", async () => {
    const dev = await needing();
    const fs = await Ext4Fs.mount(dev, { readOnly: false });
    expect(fs.warnings.join("\n")).toMatch(/Journal recovered: 1 transaction \(1\.\.1\), 1 block replayed/);
    await fs.unmount();
    const after = MemoryDevice.from(dev.toBytes()); // unmount closed `dev`
    expectBytes(await readBlock(after, 4096, TARGET.ext4), block(4096, 0x77));
    expect(await needsRecovery(after)).toBe(false);
  });

  it("a read-only mount refuses (EOPNOTSUPP) unless noload, which reads the old state", async () => {
    const dev = await needing();
    await expect(Ext4Fs.mount(dev)).rejects.toMatchObject({ code: "EOPNOTSUPP", message: expect.stringMatching(/needs recovery/) as unknown });
    await expect(Ext4Fs.mount(dev, { readOnly: false, noload: true })).rejects.toMatchObject({ code: "EINVAL" });
    const fs = await Ext4Fs.mount(dev, { noload: true });
    await fs.unmount();
    const after = MemoryDevice.from(dev.toBytes());
    expect(await needsRecovery(after)).toBe(true);
    expectBytes(await readBlock(after, 4096, TARGET.ext4), new Uint8Array(4096));
  });

  it("a corrupt log refuses the writable mount and is left for e2fsck", async () => {
    const dev = await volume("ext4");
    const w = await LogWriter.open(dev, { csum: "v3", is64bit: true });
    await w.transaction(1, { blocks: [{ nr: TARGET.ext4, data: block(4096, 0x77) }], badTag: 0 });
    await expect(Ext4Fs.mount(dev, { readOnly: false })).rejects.toMatchObject({ code: "EFSBADCRC" });
    expect(await needsRecovery(dev)).toBe(true);
    expect((await journalSb(dev)).s_start).not.toBe(0);
  });
});
