/**
 * The v2 quota file's radix tree ("qtree") over an abstract store of 1 KiB blocks:
 * find, iterate, insert or update, and delete an id's record, allocating and freeing tree
 * and data blocks through the file's free lists exactly as the kernel and e2fsprogs do, so
 * a file we change is the file they would have written.
 *
 * Counterparts: Linux fs/quota/quota_tree.c (qtree_write_dquot, qtree_read_dquot,
 * qtree_delete_dquot, qtree_get_next_id), e2fsprogs lib/support/quotaio_tree.c (the same
 * algorithm, plus qtree_scan_dquots) and quotaio_v2.c (v2_new_io, v2_init_io).
 *
 * Structure (format/quota.ts): block 0 holds the header and info; the root tree block is
 * block 1 (QT_TREEOFF) and is never freed; four levels of tree blocks index the id one byte
 * per level; the last level points at data blocks of 14 records. Two lists thread through
 * the file: dqi_free_blk (whole free blocks, singly linked by dqdh_next_free) and
 * dqi_free_entry (data blocks with a free slot, doubly linked). New blocks come from the
 * free-block list first, else the file grows by one block at dqi_blocks.
 *
 * The I/O order of every operation is the reference's (read_blk / write_blk call for call):
 * mkfs relies on it to reproduce where mke2fs places the file's blocks.
 *
 * Not thread-safe by itself: callers serialize operations on one file (fs/quota.ts holds
 * one lock per quota file).
 */

import { FsError } from "../errors.js";
import {
  MAX_DQ_TIME,
  MAX_IQ_TIME,
  QT_BLKSIZE,
  QT_BLKSIZE_BITS,
  QT_DQSTR_IN_BLK,
  QT_REFS_PER_BLOCK,
  QT_TREEDEPTH,
  QT_TREEOFF,
  V2_DQINFOOFF,
  decodeDqblk,
  decodeHeaderBlock,
  encodeDqblk,
  encodeHeaderBlock,
  qtDiskDqdbheader,
  qtreeEntryUnused,
  qtreeIndex,
  v2DiskDqinfo,
  v2r1DiskDqblk,
  type DiskDquot,
  type QuotaInfo,
  type QuotaTypeIndex,
} from "../format/quota.js";

/** A quota file as 1 KiB blocks. Blocks past the end read as zeros; writing past the end grows the file. */
export interface QuotaFileIO {
  /** A copy of block `n` (zeros past the end); the caller may change it. */
  readBlock(n: number): Promise<Uint8Array>;
  writeBlock(n: number, data: Uint8Array): Promise<void>;
  /** Blocks the file holds now (its size in 1 KiB blocks, rounded up). */
  blockCount(): number;
}

/** A quota file in memory (tests, mkfs). `onAccess` sees every block read and write, in order. */
export class MemoryQuotaFile implements QuotaFileIO {
  #blocks: Uint8Array[] = [];
  readonly #onAccess: ((kind: "read" | "write", n: number) => void) | undefined;

  constructor(bytes?: Uint8Array, opts: { onAccess?: (kind: "read" | "write", n: number) => void } = {}) {
    this.#onAccess = opts.onAccess;
    if (bytes !== undefined) {
      for (let off = 0; off < bytes.length; off += QT_BLKSIZE) {
        const b = new Uint8Array(QT_BLKSIZE);
        b.set(bytes.subarray(off, Math.min(bytes.length, off + QT_BLKSIZE)));
        this.#blocks.push(b);
      }
    }
  }

  readBlock(n: number): Promise<Uint8Array> {
    this.#onAccess?.("read", n);
    return Promise.resolve(this.#blocks[n]?.slice() ?? new Uint8Array(QT_BLKSIZE));
  }

  writeBlock(n: number, data: Uint8Array): Promise<void> {
    this.#onAccess?.("write", n);
    while (this.#blocks.length <= n) this.#blocks.push(new Uint8Array(QT_BLKSIZE));
    this.#blocks[n] = data.slice(0, QT_BLKSIZE);
    return Promise.resolve();
  }

  blockCount(): number {
    return this.#blocks.length;
  }

  /** The whole file. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#blocks.length * QT_BLKSIZE);
    this.#blocks.forEach((b, i) => out.set(b, i * QT_BLKSIZE));
    return out;
  }
}

/** A record and where it lives (byte offset in the file: the kernel's dq_off). */
export interface FoundDquot {
  readonly rec: DiskDquot;
  readonly off: number;
}

const u32 = (buf: Uint8Array, i: number): number => new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(i * 4, true);
const setU32 = (buf: Uint8Array, i: number, v: number): void => {
  new DataView(buf.buffer, buf.byteOffset, buf.byteLength).setUint32(i * 4, v, true);
};

export class QuotaTree {
  readonly io: QuotaFileIO;
  readonly type: QuotaTypeIndex;
  /** The info block in memory; written by writeInfo (the caller does it when infoDirty). */
  readonly info: QuotaInfo;
  /** The info changed since it was read or last written. @kernel DQF_INFO_DIRTY / IOFL_INFODIRTY */
  infoDirty = false;

  private constructor(io: QuotaFileIO, type: QuotaTypeIndex, info: QuotaInfo) {
    this.io = io;
    this.type = type;
    this.info = info;
  }

  /**
   * Open an existing file: header magic and version checked, info sanity-checked as
   * e2fsprogs does (dqi_blocks within the file, list heads below dqi_blocks). EFSCORRUPTED
   * otherwise. @kernel v2_read_file_info, e2fsprogs v2_init_io
   */
  static async open(io: QuotaFileIO, type: QuotaTypeIndex): Promise<QuotaTree> {
    if (io.blockCount() === 0) throw new FsError("EFSCORRUPTED", "Quota file is empty");
    const info = decodeHeaderBlock(type, await io.readBlock(0));
    const bad = (what: string): FsError => new FsError("EFSCORRUPTED", `Quota file corrupted: ${what}`);
    if (info.dqi_blocks > io.blockCount()) throw bad(`dqi_blocks ${info.dqi_blocks} but the file has ${io.blockCount()} blocks`);
    if (info.dqi_blocks < QT_TREEOFF + 1) throw bad(`dqi_blocks ${info.dqi_blocks} leaves no room for the tree root`);
    if (info.dqi_free_blk >= info.dqi_blocks) throw bad(`dqi_free_blk ${info.dqi_free_blk}, dqi_blocks ${info.dqi_blocks}`);
    if (info.dqi_free_entry >= info.dqi_blocks) throw bad(`dqi_free_entry ${info.dqi_free_entry}, dqi_blocks ${info.dqi_blocks}`);
    return new QuotaTree(io, type, info);
  }

  /**
   * Start a new, empty file: header and info (grace times default to 7 days), the root
   * block implied (dqi_blocks = 2). @kernel e2fsprogs v2_new_io
   */
  static async create(io: QuotaFileIO, type: QuotaTypeIndex, grace: { bgrace?: number; igrace?: number } = {}): Promise<QuotaTree> {
    const info: QuotaInfo = {
      dqi_bgrace: grace.bgrace ?? MAX_DQ_TIME,
      dqi_igrace: grace.igrace ?? MAX_IQ_TIME,
      dqi_flags: 0,
      dqi_blocks: QT_TREEOFF + 1,
      dqi_free_blk: 0,
      dqi_free_entry: 0,
    };
    await io.writeBlock(0, encodeHeaderBlock(type, info));
    return new QuotaTree(io, type, info);
  }

  /** Write the info block (grace times and list heads). @kernel v2_write_file_info */
  async writeInfo(): Promise<void> {
    const b = await this.io.readBlock(0);
    v2DiskDqinfo.encode(this.info, b, V2_DQINFOOFF);
    await this.io.writeBlock(0, b);
    this.infoDirty = false;
  }

  #corrupt(what: string): FsError {
    return new FsError("EFSCORRUPTED", `Quota file corrupted: ${what}`);
  }

  /** A reference read from the tree, checked to lie inside the file. @kernel do_check_range */
  #checkRef(blk: number, from: number): number {
    if (blk !== 0 && (blk < QT_TREEOFF || blk >= this.info.dqi_blocks)) {
      throw this.#corrupt(`block ${from} references block ${blk}, outside 1..${this.info.dqi_blocks - 1}`);
    }
    return blk;
  }

  // ----- free lists -----

  /** A free block: from the free-block list, else appended (written as zeros first). @kernel get_free_dqblk */
  async #getFreeDqblk(): Promise<number> {
    let blk: number;
    if (this.info.dqi_free_blk !== 0) {
      blk = this.info.dqi_free_blk;
      const buf = await this.io.readBlock(blk);
      this.info.dqi_free_blk = this.#checkRef(qtDiskDqdbheader.decode(buf).dqdh_next_free, blk);
    } else {
      // Make sure the block exists before handing it out (the write is what grows the file).
      await this.io.writeBlock(this.info.dqi_blocks, new Uint8Array(QT_BLKSIZE));
      blk = this.info.dqi_blocks++;
    }
    this.infoDirty = true;
    return blk;
  }

  /** Put `blk` on the free-block list (its buffer is `buf`). @kernel put_free_dqblk */
  async #putFreeDqblk(buf: Uint8Array, blk: number): Promise<void> {
    qtDiskDqdbheader.encode({ dqdh_next_free: this.info.dqi_free_blk, dqdh_prev_free: 0, dqdh_entries: 0 }, buf);
    this.info.dqi_free_blk = blk;
    this.infoDirty = true;
    await this.io.writeBlock(blk, buf);
  }

  /** Take data block `blk` off the free-entry list. @kernel remove_free_dqentry */
  async #removeFreeDqentry(buf: Uint8Array, blk: number): Promise<void> {
    const dh = qtDiskDqdbheader.decode(buf);
    const nextblk = this.#checkRef(dh.dqdh_next_free, blk);
    const prevblk = this.#checkRef(dh.dqdh_prev_free, blk);
    if (nextblk !== 0) {
      const tmp = await this.io.readBlock(nextblk);
      qtDiskDqdbheader.encode({ dqdh_prev_free: dh.dqdh_prev_free }, tmp);
      await this.io.writeBlock(nextblk, tmp);
    }
    if (prevblk !== 0) {
      const tmp = await this.io.readBlock(prevblk);
      qtDiskDqdbheader.encode({ dqdh_next_free: dh.dqdh_next_free }, tmp);
      await this.io.writeBlock(prevblk, tmp);
    } else {
      this.info.dqi_free_entry = nextblk;
      this.infoDirty = true;
    }
    qtDiskDqdbheader.encode({ dqdh_next_free: 0, dqdh_prev_free: 0 }, buf);
    await this.io.writeBlock(blk, buf); // out of the list whether or not this write succeeds
  }

  /** Put data block `blk` at the head of the free-entry list. @kernel insert_free_dqentry */
  async #insertFreeDqentry(buf: Uint8Array, blk: number): Promise<void> {
    qtDiskDqdbheader.encode({ dqdh_next_free: this.info.dqi_free_entry, dqdh_prev_free: 0 }, buf);
    await this.io.writeBlock(blk, buf);
    if (this.info.dqi_free_entry !== 0) {
      const tmp = await this.io.readBlock(this.info.dqi_free_entry);
      qtDiskDqdbheader.encode({ dqdh_prev_free: blk }, tmp);
      await this.io.writeBlock(this.info.dqi_free_entry, tmp);
    }
    this.info.dqi_free_entry = blk;
    this.infoDirty = true;
  }

  /** A free slot for a new record: returns its data block and byte offset. @kernel find_free_dqentry */
  async #findFreeDqentry(): Promise<{ blk: number; off: number }> {
    let blk: number;
    let buf: Uint8Array;
    if (this.info.dqi_free_entry !== 0) {
      blk = this.info.dqi_free_entry;
      buf = await this.io.readBlock(blk);
    } else {
      blk = await this.#getFreeDqblk();
      buf = new Uint8Array(QT_BLKSIZE);
      this.info.dqi_free_entry = blk;
      this.infoDirty = true;
    }
    const entries = qtDiskDqdbheader.decode(buf).dqdh_entries;
    if (entries >= QT_DQSTR_IN_BLK) throw this.#corrupt(`data block ${blk} on the free-entry list has ${entries} entries`);
    // Block will be full?
    if (entries + 1 >= QT_DQSTR_IN_BLK) await this.#removeFreeDqentry(buf, blk);
    qtDiskDqdbheader.encode({ dqdh_entries: entries + 1 }, buf);
    let i = 0;
    while (i < QT_DQSTR_IN_BLK && !qtreeEntryUnused(buf, slotOffset(i))) i++;
    if (i === QT_DQSTR_IN_BLK) throw this.#corrupt(`data block ${blk} is full, though its header counts ${entries} entries`);
    await this.io.writeBlock(blk, buf);
    return { blk, off: (blk << QT_BLKSIZE_BITS) + slotOffset(i) };
  }

  // ----- insert -----

  /**
   * Insert a reference to `id`'s new record under tree block `treeblk` (0: allocate it).
   * Returns the block now at this level and the record's offset. @kernel do_insert_tree
   */
  async #doInsertTree(id: number, treeblk: number, depth: number): Promise<{ blk: number; off: number }> {
    let buf: Uint8Array;
    let newact = false;
    if (treeblk === 0) {
      treeblk = await this.#getFreeDqblk();
      buf = new Uint8Array(QT_BLKSIZE);
      newact = true;
    } else {
      buf = await this.io.readBlock(treeblk);
    }
    const idx = qtreeIndex(id, depth);
    let newblk = this.#checkRef(u32(buf, idx), treeblk);
    const newson = newblk === 0;
    let off: number;
    try {
      if (depth === QT_TREEDEPTH - 1) {
        if (newblk !== 0) throw this.#corrupt(`inserting id ${id}, already referenced from block ${treeblk}`);
        const r = await this.#findFreeDqentry();
        newblk = r.blk;
        off = r.off;
      } else {
        const r = await this.#doInsertTree(id, newblk, depth + 1);
        newblk = r.blk;
        off = r.off;
      }
    } catch (e) {
      if (newact) await this.#putFreeDqblk(buf, treeblk);
      throw e;
    }
    if (newson) {
      setU32(buf, idx, newblk);
      await this.io.writeBlock(treeblk, buf);
    }
    return { blk: treeblk, off };
  }

  // ----- lookup -----

  /** Byte offset of `id`'s record, or 0 when the file has none. @kernel find_dqentry */
  async findOffset(id: number): Promise<number> {
    let blk = QT_TREEOFF;
    for (let depth = 0; depth < QT_TREEDEPTH; depth++) {
      const buf = await this.io.readBlock(blk);
      const next = this.#checkRef(u32(buf, qtreeIndex(id, depth)), blk);
      if (next === 0) return 0;
      blk = next;
    }
    // find_block_dqentry
    const buf = await this.io.readBlock(blk);
    for (let i = 0; i < QT_DQSTR_IN_BLK; i++) {
      const o = slotOffset(i);
      if (!qtreeEntryUnused(buf, o) && v2r1DiskDqblk.decode(buf, o).dqb_id === id) return (blk << QT_BLKSIZE_BITS) + o;
    }
    throw this.#corrupt(`quota for id ${id} referenced but not present (data block ${blk})`);
  }

  /** `id`'s record, or null. @kernel qtree_read_dquot */
  async find(id: number): Promise<FoundDquot | null> {
    const off = await this.findOffset(id);
    if (off === 0) return null;
    const buf = await this.io.readBlock(off >> QT_BLKSIZE_BITS);
    return { rec: decodeDqblk(buf, off & (QT_BLKSIZE - 1)), off };
  }

  /**
   * Write `rec` (inserting it when the file has no record for its id). `off` is where the
   * caller knows it lives (from find), to skip the walk. Returns the offset.
   * @kernel qtree_write_dquot
   */
  async put(rec: DiskDquot, off = 0): Promise<number> {
    if (off === 0) off = await this.findOffset(rec.id);
    if (off === 0) off = (await this.#doInsertTree(rec.id, QT_TREEOFF, 0)).off;
    const blk = off >> QT_BLKSIZE_BITS;
    const buf = await this.io.readBlock(blk);
    encodeDqblk(rec, buf, off & (QT_BLKSIZE - 1));
    await this.io.writeBlock(blk, buf);
    return off;
  }

  // ----- delete -----

  /** Free the record at `off` in data block `blk`. Returns true when the block was freed. @kernel free_dqentry */
  async #freeDqentry(off: number, blk: number): Promise<boolean> {
    if (off >> QT_BLKSIZE_BITS !== blk) throw this.#corrupt(`quota structure at offset ${off} is not in block ${blk}`);
    const buf = await this.io.readBlock(blk);
    const entries = qtDiskDqdbheader.decode(buf).dqdh_entries;
    if (entries === 0) throw this.#corrupt(`data block ${blk} counts no entries but holds one`);
    qtDiskDqdbheader.encode({ dqdh_entries: entries - 1 }, buf);
    if (entries - 1 === 0) {
      await this.#removeFreeDqentry(buf, blk);
      await this.#putFreeDqblk(buf, blk);
      return true;
    }
    buf.fill(0, off & (QT_BLKSIZE - 1), (off & (QT_BLKSIZE - 1)) + v2r1DiskDqblk.size);
    // First free entry?
    if (entries - 1 === QT_DQSTR_IN_BLK - 1) await this.#insertFreeDqentry(buf, blk);
    else await this.io.writeBlock(blk, buf);
    return false;
  }

  /** Remove `id`'s reference below tree block `blk`; returns the block's new number (0: freed). @kernel remove_tree */
  async #removeTree(id: number, off: number, blk: number, depth: number): Promise<number> {
    const buf = await this.io.readBlock(blk);
    const idx = qtreeIndex(id, depth);
    let newblk = this.#checkRef(u32(buf, idx), blk);
    if (newblk === 0) throw this.#corrupt(`removing id ${id}: no reference at depth ${depth} in block ${blk}`);
    if (depth === QT_TREEDEPTH - 1) {
      await this.#freeDqentry(off, newblk);
      newblk = 0;
    } else {
      newblk = await this.#removeTree(id, off, newblk, depth + 1);
    }
    if (newblk === 0) {
      setU32(buf, idx, 0);
      // Block got empty? The root stays even when empty.
      if (blk !== QT_TREEOFF && buf.every((b) => b === 0)) {
        await this.#putFreeDqblk(buf, blk);
        return 0;
      }
      await this.io.writeBlock(blk, buf);
    }
    return blk;
  }

  /** Delete `id`'s record; false when the file has none. @kernel qtree_delete_dquot */
  async remove(id: number, off = 0): Promise<boolean> {
    if (off === 0) off = await this.findOffset(id);
    if (off === 0) return false;
    await this.#removeTree(id, off, QT_TREEOFF, 0);
    return true;
  }

  // ----- scan -----

  /**
   * Every record, in tree order (ascending id bytes), each data block once even when
   * several tree entries share it. @kernel e2fsprogs qtree_scan_dquots / report_tree
   */
  async *records(): AsyncGenerator<FoundDquot> {
    const seen = new Set<number>();
    yield* this.#reportTree(QT_TREEOFF, 0, seen);
  }

  async *#reportTree(blk: number, depth: number, seen: Set<number>): AsyncGenerator<FoundDquot> {
    const buf = await this.io.readBlock(blk);
    for (let i = 0; i < QT_REFS_PER_BLOCK; i++) {
      const ref = this.#checkRef(u32(buf, i), blk);
      if (ref === 0) continue;
      if (depth < QT_TREEDEPTH - 1) {
        yield* this.#reportTree(ref, depth + 1, seen);
        continue;
      }
      if (seen.has(ref)) continue;
      seen.add(ref);
      const data = await this.io.readBlock(ref);
      for (let s = 0; s < QT_DQSTR_IN_BLK; s++) {
        const o = slotOffset(s);
        if (!qtreeEntryUnused(data, o)) yield { rec: decodeDqblk(data, o), off: (ref << QT_BLKSIZE_BITS) + o };
      }
    }
  }
}

/** Byte offset of slot `i` in a data block. */
function slotOffset(i: number): number {
  return qtDiskDqdbheader.size + i * v2r1DiskDqblk.size;
}

/** Is this record worth keeping in the file (any usage or limit)? @kernel v2_commit_dquot / qtree_release_dquot */
export function dquotIsEmpty(r: DiskDquot): boolean {
  return r.curspace === 0 && r.curinodes === 0 && r.bsoftlimit === 0 && r.isoftlimit === 0 && r.bhardlimit === 0 && r.ihardlimit === 0;
}

/**
 * A whole quota file for a fresh volume, as mke2fs 1.47.0 writes it: create (header, info
 * with the given grace times), then each record in ascending id order through
 * update_grace_times and commit_dquot (records with no usage and no limits are left out),
 * then the info. Returns the file's bytes (dqi_blocks blocks). `io` lets mkfs watch the
 * access order (to place the file's blocks as libext2fs would).
 * @kernel e2fsprogs quota_write_inode / write_dquots (lib/support/mkquota.c)
 */
export async function buildQuotaFile(
  type: QuotaTypeIndex,
  records: readonly DiskDquot[],
  info: { bgrace?: number; igrace?: number; now?: number } = {},
  io: MemoryQuotaFile = new MemoryQuotaFile(),
): Promise<Uint8Array> {
  const grace = { bgrace: info.bgrace ?? MAX_DQ_TIME, igrace: info.igrace ?? MAX_IQ_TIME };
  const tree = await QuotaTree.create(io, type, grace);
  const now = info.now ?? Math.floor(Date.now() / 1000);
  const sorted = [...records].sort((a, b) => (a.id >>> 0) - (b.id >>> 0));
  for (const r0 of sorted) {
    const r = { ...r0 };
    updateGraceTimes(r, grace, now);
    if (dquotIsEmpty(r)) continue; // qtree_delete_dquot of a record never written: nothing
    await tree.put(r);
  }
  if (tree.infoDirty) await tree.writeInfo();
  return io.bytes();
}

/**
 * Start or stop the grace clocks from the limits (limits in 1 KiB units, as in the file).
 * @kernel e2fsprogs update_grace_times (lib/support/quotaio.c)
 */
export function updateGraceTimes(r: DiskDquot, grace: { bgrace: number; igrace: number }, now: number): void {
  if (r.bsoftlimit !== 0 && Math.ceil(r.curspace / 1024) > r.bsoftlimit) {
    if (r.btime === 0) r.btime = now + grace.bgrace;
  } else {
    r.btime = 0;
  }
  if (r.isoftlimit !== 0 && r.curinodes > r.isoftlimit) {
    if (r.itime === 0) r.itime = now + grace.igrace;
  } else {
    r.itime = 0;
  }
}
