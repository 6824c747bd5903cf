/**
 * Writing file data and changing file size, for extent-mapped and block-mapped inodes
 * (@kernel ext4_map_blocks with EXT4_GET_BLOCKS_CREATE, ext4_ext_find_goal,
 * ext4_truncate / ext4_ext_truncate / ext4_ind_truncate; fs/ext4/inode.c, extents.c,
 * indirect.c). Block-mapped (ext2/ext3-style) inodes go to indirect_write.ts; inline-data
 * inodes are not written yet (EOPNOTSUPP).
 *
 * Two ways data gets here: writeback of the page cache (page_cache.ts, writeback.ts) maps
 * delayed pages with delalloc funding; block-mapped files, which are written without
 * delayed allocation, come through writeData and allocate at write time. Data goes
 * straight to the device, around the metadata cache; metadata rides the caller's handle.
 */

import { FsError } from "../errors.js";
import { EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL } from "../format/inode.js";
import { groupFirstBlock } from "../format/superblock.js";
import { assert } from "../debug/assert.js";
import { allocRequest, type AllocPurpose, type AllocRequest, type BlockAllocator, type Funding } from "./alloc_request.js";
import { claimDelayed, dropPages, inodeCore } from "./inode_core.js";
import { extMapBlocks } from "./extents.js";
import type { Handle } from "./handle.js";
import { indFindGoal, indGetBlock, indMapForWrite, indMaxBlocks, indTruncate } from "./indirect_write.js";
import { getSize, setInodeBlocks, setSize, type InodeInfo } from "./inode_write.js";
import { inodeBlocks } from "../format/inode.js";
import type { Ext4Fs } from "./super.js";
import type { InodeDquots } from "./quota.js";
import { inodeDquots } from "./quota_charge.js";

/** The extent-tree operations this file needs (extents_write.ts provides them). */
export interface ExtentWriter {
  insert(h: Handle, alloc: BlockAllocator, inode: InodeInfo, ext: { lblk: number; len: number; pblk: number; unwritten: boolean }, parent: AllocRequest): Promise<void>;
  /** Unmap [from, to] (inclusive), freeing data and emptied tree blocks; returns data blocks freed. */
  removeSpace(h: Handle, alloc: BlockAllocator, inode: InodeInfo, from: number, to: number): Promise<number>;
  /** Mark [lblk, lblk+len), inside one unwritten extent, written (tree blocks funded from `parent`). */
  convertUnwritten(h: Handle, alloc: BlockAllocator, inode: InodeInfo, lblk: number, len: number, parent: AllocRequest): Promise<void>;
}

export interface WriteDeps {
  alloc: BlockAllocator;
  extents: ExtentWriter;
}

/** Largest file in blocks an extent tree can map: logical blocks are 32-bit. */
const EXT4_MAX_LOGICAL_BLOCK = 2 ** 32 - 1;

/** i_blocks in 512-byte sectors. */
export function sectorsOf(fs: Ext4Fs, inode: InodeInfo): number {
  return inodeBlocks(inode.raw, fs.features.hugeFile, fs.blockSize);
}

/** Add (or remove, negative) `blocks` data blocks to i_blocks. */
export function chargeBlocks(fs: Ext4Fs, inode: InodeInfo, blocks: number): void {
  setInodeBlocks(fs, inode, sectorsOf(fs, inode) + blocks * (fs.blockSize / 512));
}

/** Inline data is neither an extent tree nor a block map: not written yet. */
function refuseInline(inode: InodeInfo, what: string): void {
  if (inode.raw.i_flags & EXT4_INLINE_DATA_FL) throw new FsError("EOPNOTSUPP", `${what} inline-data files is not supported yet`, { ino: inode.ino });
}

/**
 * The largest size a file may reach (EFBIG past it): s_maxbytes for extent files, 2^32 - 1
 * blocks (ee_block is 32-bit; one block less so an extent can cover the last) and, without
 * huge_file, no more than i_blocks's 2^32 - 1 sectors; s_bitmap_maxbytes for block maps.
 * @kernel ext4_max_size, ext4_max_bitmap_size
 */
export function maxFileBytes(fs: Ext4Fs, inode: Pick<InodeInfo, "raw">): number {
  if (!(inode.raw.i_flags & EXT4_EXTENTS_FL)) return indMaxBlocks(fs) * fs.blockSize;
  const res = (2 ** 32 - 1) * fs.blockSize;
  if (fs.features.hugeFile) return res;
  return Math.min(res, Math.floor((2 ** 32 - 1) / (fs.blockSize / 512)) * fs.blockSize);
}

/**
 * Where to look for blocks for logical block `lblk`: right after the block mapped just
 * before it, else the start of the inode's group; for block maps, the nearest pointer
 * before it in its pointer array. @kernel ext4_ext_find_goal / ext4_find_goal / ext4_inode_to_goal_block
 */
export async function findGoal(fs: Ext4Fs, inode: InodeInfo, lblk: number): Promise<number> {
  if (!(inode.raw.i_flags & EXT4_EXTENTS_FL)) return indFindGoal(fs, inode, lblk);
  if (lblk > 0) {
    const prev = await extMapBlocks(fs, inode, lblk - 1, 1);
    if (prev.pblk !== 0) return prev.pblk + 1;
  }
  const group = Math.floor((inode.ino - 1) / fs.inodesPerGroup);
  return groupFirstBlock(fs.sb, group);
}

/** A run mapped for writing; `fresh` runs were allocated (or converted from unwritten) by this call. */
export interface MappedRun {
  lblk: number;
  pblk: number;
  len: number;
  fresh: boolean;
}

export interface MapForWriteOptions {
  /** Stop after this many runs (the caller writes each before mapping more). */
  maxRuns?: number;
  /**
   * How the data blocks are paid for (default chargeNow/enforce: allocate at write time).
   * Writeback of delayed pages passes {delalloc}: the allocator skips admission and the
   * claim retires write()'s reservation instead of charging anew.
   */
  funding?: Funding;
  /**
   * Called for each fresh or converted run after its blocks are allocated and BEFORE the
   * extent that maps them is inserted (or converted): the caller writes the data there, so
   * no reader can map the blocks while they still hold a deleted file's bytes (ordered
   * data, without a journal). Extent-mapped inodes only.
   */
  fill?: (run: MappedRun) => Promise<void>;
  /** Whom the blocks are charged to; loaded from the inode's ids when absent (quota_charge.ts inodeDquots). */
  dquots?: InodeDquots | null;
}

/**
 * Account for `len` blocks just mapped into `inode` for request `req`, by the request's
 * funding (never by inode state): chargeNow blocks were charged to quota by the allocator
 * and now count in i_blocks; delalloc blocks retire write()'s reservation for pages
 * [lblk, lblk+len) and count in i_blocks, in the same synchronous section.
 */
function chargeGrant(fs: Ext4Fs, inode: InodeInfo, req: AllocRequest, lblk: number, len: number): void {
  switch (req.funding.kind) {
    case "chargeNow":
      chargeBlocks(fs, inode, len);
      return;
    case "delalloc": {
      const core = inodeCore(fs, inode.ino);
      assert(core !== undefined, () => `Delalloc claim for inode ${inode.ino}, which has no in-core pages`);
      claimDelayed(fs, core, lblk, len, req.dquots);
      chargeBlocks(fs, inode, len);
      return;
    }
  }
}

/**
 * Map [lblk, lblk+len), allocating the holes as written extents (contiguous where the
 * allocator can), or for block-mapped inodes as block-map entries with the indirect blocks
 * they need (indMapForWrite; EFBIG past the block-map limit). Returns the mapped runs in
 * order; `fresh` runs were allocated (or, in fallocated space, converted from unwritten)
 * by this call: their old bytes are not the file's.
 * @kernel ext4_map_blocks with EXT4_GET_BLOCKS_CREATE (DELALLOC_RESERVE from writeback)
 */
export async function mapForWrite(
  h: Handle,
  deps: WriteDeps,
  inode: InodeInfo,
  lblk: number,
  len: number,
  purpose: AllocPurpose = "data",
  opts: MapForWriteOptions = {},
): Promise<MappedRun[]> {
  const fs = h.fs;
  const funding: Funding = opts.funding ?? { kind: "chargeNow", quota: "enforce" };
  // Loaded before any request is built: every request carries its owner's dquots.
  const dquots = opts.dquots !== undefined ? opts.dquots : await inodeDquots(fs, inode);
  if (!(inode.raw.i_flags & EXT4_EXTENTS_FL)) {
    refuseInline(inode, "Writing");
    assert(funding.kind === "chargeNow" && opts.fill === undefined, "Block-mapped files are written without delayed allocation");
    return indMapForWrite(h, deps.alloc, inode, lblk, len, {
      purpose,
      funding,
      dquots,
      ...(opts.maxRuns !== undefined ? { maxRuns: opts.maxRuns } : {}),
      charge: (blocks) => {
        chargeBlocks(fs, inode, blocks);
      },
    });
  }
  if (lblk + len - 1 > EXT4_MAX_LOGICAL_BLOCK) throw new FsError("EFBIG", "File too large", { ino: inode.ino });
  const runs: MappedRun[] = [];
  let at = lblk;
  const end = lblk + len;
  while (at < end && runs.length < (opts.maxRuns ?? Infinity)) {
    const run = await extMapBlocks(fs, inode, at, end - at);
    const n = Math.min(run.len, end - at);
    if (run.pblk !== 0 && run.unwritten) {
      // Fallocated space: its blocks become written; their old bytes were never the file's,
      // so the caller treats them as fresh (zero-filled around the data). Tree blocks a
      // split needs are funded like the data: nofail when writeback converts.
      // @kernel ext4_ext_handle_unwritten_extents -> ext4_ext_convert_to_initialized
      const m: MappedRun = { lblk: at, pblk: run.pblk, len: n, fresh: true };
      if (opts.fill) await opts.fill(m);
      const convFunding: Funding = funding.kind === "delalloc" ? { kind: "chargeNow", quota: "nofail", pool: "emergency" } : funding;
      const req = allocRequest({ ino: inode.ino, purpose: "extentNode", goal: run.pblk, len: 1, funding: convFunding, dquots });
      await deps.extents.convertUnwritten(h, deps.alloc, inode, at, n, req);
      runs.push(m);
      at += n;
      continue;
    }
    if (run.pblk !== 0) {
      runs.push({ lblk: at, pblk: run.pblk, len: n, fresh: false });
      at += n;
      continue;
    }
    // A hole of n blocks: allocate it, possibly in several pieces.
    const want = funding.kind === "delalloc" ? { kind: "delalloc" as const, reservation: n } : funding;
    const req = allocRequest({ ino: inode.ino, purpose, goal: await findGoal(fs, inode, at), len: n, funding: want, dquots });
    const got = await deps.alloc.alloc(h, req);
    const m: MappedRun = { lblk: at, pblk: got.pblk, len: got.len, fresh: true };
    if (opts.fill) await opts.fill(m);
    await deps.extents.insert(h, deps.alloc, inode, { lblk: at, len: got.len, pblk: got.pblk, unwritten: false }, req);
    chargeGrant(fs, inode, req, at, got.len);
    runs.push(m);
    at += got.len;
  }
  return runs;
}

/**
 * Write `data` at byte `pos`: allocate what is missing, read-modify-write partial blocks,
 * raise i_size. Returns the bytes written, which is fewer than asked when space runs out
 * part-way (ENOSPC/EDQUOT after some progress: a short write, as on Linux; with no progress
 * the error is thrown) or the write crosses the file size limit. Works run by run, so every
 * block mapped holds written data and i_size covers it. The caller writes the inode back in
 * either case (markInodeDirty).
 * @kernel ext4_buffered_write_iter / generic_perform_write (short count), ext4_write_checks
 */
export async function writeData(h: Handle, deps: WriteDeps, inode: InodeInfo, pos: number, data: Uint8Array): Promise<number> {
  const fs = h.fs;
  const bs = fs.blockSize;
  const limit = maxFileBytes(fs, inode);
  if (data.length === 0) return 0;
  if (pos >= limit) throw new FsError("EFBIG", "File too large", { ino: inode.ino });
  if (pos + data.length > limit) data = data.subarray(0, limit - pos);
  const last = Math.floor((pos + data.length - 1) / bs);
  let lblk = Math.floor(pos / bs);
  let done = 0;
  while (lblk <= last) {
    let r: MappedRun | undefined;
    try {
      [r] = await mapForWrite(h, deps, inode, lblk, last - lblk + 1, "data", { maxRuns: 1 });
    } catch (e) {
      if (done > 0 && e instanceof FsError && (e.code === "ENOSPC" || e.code === "EDQUOT")) return done;
      throw e;
    }
    if (r === undefined) break;
    await writeRun(fs, r, pos, data);
    const end = Math.min(pos + data.length, (r.lblk + r.len) * bs);
    if (end > getSize(fs, inode)) setSize(inode, end);
    done = end - pos;
    lblk = r.lblk + r.len;
  }
  return done;
}

async function writeRun(fs: Ext4Fs, r: MappedRun, pos: number, data: Uint8Array): Promise<void> {
  const bs = fs.blockSize;
  const runStart = r.lblk * bs;
  const from = Math.max(pos, runStart);
  const to = Math.min(pos + data.length, (r.lblk + r.len) * bs);
  if (from % bs === 0 && to % bs === 0) {
    await fs.cache.writeUncached(r.pblk + (from - runStart) / bs, data.subarray(from - pos, to - pos));
    return;
  }
  // Only the first and last blocks can be partial. A block just allocated holds whatever
  // a deleted file left there: start from zeros, never from its old bytes. A block
  // already in the file is read, patched and written back.
  const b0 = Math.floor((from - runStart) / bs);
  const b1 = Math.floor((to - 1 - runStart) / bs);
  const buf = r.fresh ? new Uint8Array((b1 - b0 + 1) * bs) : await fs.cache.readUncached(r.pblk + b0, b1 - b0 + 1);
  buf.set(data.subarray(from - pos, to - pos), from - runStart - b0 * bs);
  await fs.cache.writeUncached(r.pblk + b0, buf);
}

/**
 * Cut or extend the file to `newSize`: blocks past the new end are freed (tree or indirect
 * blocks too), the tail of the new last block is zeroed so a later extension reads zeros.
 * A block-mapped file cannot grow past indMaxBlocks (EFBIG, as ext4_setattr refuses).
 * @kernel ext4_truncate / ext4_ext_truncate / ext4_ind_truncate
 */
export async function truncateData(h: Handle, deps: WriteDeps, inode: InodeInfo, oldSize: number, newSize: number): Promise<void> {
  const fs = h.fs;
  const bs = fs.blockSize;
  const blockMapped = !(inode.raw.i_flags & EXT4_EXTENTS_FL);
  if (blockMapped && newSize > indMaxBlocks(fs) * bs) throw new FsError("EFBIG", "File too large", { ino: inode.ino });
  if (newSize >= oldSize) return; // growing leaves a hole; nothing to free or zero
  truncatePages(fs, inode.ino, newSize);
  if (blockMapped) {
    refuseInline(inode, "Truncating");
    await indTruncate(h, deps.alloc, inode, Math.ceil(newSize / bs), (blocks) => {
      chargeBlocks(fs, inode, blocks);
    }, await inodeDquots(fs, inode));
    if (newSize % bs !== 0) {
      const pblk = await indGetBlock(fs, inode, Math.floor(newSize / bs));
      if (pblk !== 0) await zeroTail(fs, pblk, newSize % bs);
    }
    return;
  }
  const firstGone = Math.ceil(newSize / bs);
  const freed = await deps.extents.removeSpace(h, deps.alloc, inode, firstGone, EXT4_MAX_LOGICAL_BLOCK);
  chargeBlocks(fs, inode, -freed);
  if (newSize % bs !== 0) {
    const run = await extMapBlocks(fs, inode, Math.floor(newSize / bs), 1);
    if (run.pblk !== 0 && !run.unwritten) {
      const blk = await fs.cache.readUncached(run.pblk, 1);
      blk.fill(0, newSize % bs);
      await fs.cache.writeUncached(run.pblk, blk);
    }
  }
}

/**
 * Punch a hole over [offset, offset+len) of an extent-mapped file, keeping its size: whole
 * blocks inside are unmapped and freed (emptied tree blocks too), delayed pages there give
 * their reservation back, and the partial blocks at either edge are zeroed in their page
 * or on disk. The caller holds i_rwsem and i_data_sem (write). Returns the data blocks freed.
 * @kernel ext4_punch_hole (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
 */
export async function punchHole(h: Handle, deps: WriteDeps, inode: InodeInfo, offset: number, len: number): Promise<number> {
  const fs = h.fs;
  const bs = fs.blockSize;
  if (!(inode.raw.i_flags & EXT4_EXTENTS_FL)) throw new FsError("EOPNOTSUPP", "Punching holes in block-mapped files is not supported", { ino: inode.ino });
  const end = Math.min(offset + len, getSize(fs, inode));
  if (end <= offset) return 0;
  const first = Math.ceil(offset / bs); // first whole block inside
  const stop = Math.floor(end / bs); // one past the last whole block
  if (first > stop) {
    await zeroInBlock(fs, inode, Math.floor(offset / bs), offset % bs, end - Math.floor(offset / bs) * bs);
    return 0;
  }
  if (offset % bs !== 0) await zeroInBlock(fs, inode, first - 1, offset % bs, bs);
  if (end % bs !== 0) await zeroInBlock(fs, inode, stop, 0, end % bs);
  if (stop === first) return 0;
  const core = inodeCore(fs, inode.ino);
  if (core !== undefined) dropPages(fs, core, first, stop - 1);
  const freed = await deps.extents.removeSpace(h, deps.alloc, inode, first, stop - 1);
  chargeBlocks(fs, inode, -freed);
  return freed;
}

/** Zero bytes [from, to) of logical block `lblk`: in its dirty page if it has one (the page is what will be written), and on disk if written there. @kernel ext4_zero_partial_blocks */
async function zeroInBlock(fs: Ext4Fs, inode: InodeInfo, lblk: number, from: number, to: number): Promise<void> {
  const page = inodeCore(fs, inode.ino)?.pages.get(lblk);
  if (page !== undefined) {
    page.data.fill(0, from, to);
    page.version++;
    return;
  }
  const run = await extMapBlocks(fs, inode, lblk, 1);
  if (run.pblk === 0 || run.unwritten) return; // reads as zeros already
  const blk = await fs.cache.readUncached(run.pblk, 1);
  blk.fill(0, from, to);
  await fs.cache.writeUncached(run.pblk, blk);
}

/**
 * Drop the dirty pages past `newSize` (releasing the reservations of delayed ones) and zero
 * the tail of the page holding the new end. Synchronous. @kernel truncate_pagecache + ext4_es_remove_extent's release
 */
function truncatePages(fs: Ext4Fs, ino: number, newSize: number): void {
  const core = inodeCore(fs, ino);
  if (core === undefined || core.pages.size === 0) return;
  const bs = fs.blockSize;
  dropPages(fs, core, Math.ceil(newSize / bs));
  if (newSize % bs !== 0) {
    const p = core.pages.get(Math.floor(newSize / bs));
    if (p !== undefined) {
      p.data.fill(0, newSize % bs);
      p.version++;
    }
  }
}

/** Zero block `pblk` from byte `from` on (the tail past a new i_size). @kernel ext4_block_truncate_page */
async function zeroTail(fs: Ext4Fs, pblk: number, from: number): Promise<void> {
  const blk = await fs.cache.readUncached(pblk, 1);
  blk.fill(0, from);
  await fs.cache.writeUncached(pblk, blk);
}
