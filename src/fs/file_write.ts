/**
 * Writing file data and changing file size, for extent-mapped and block-mapped inodes
 * (@kernel ext4_map_blocks with EXT4_GET_BLOCKS_CREATE, ext4_ext_find_goal,
 * ext4_truncate / ext4_ext_truncate / ext4_ind_truncate; fs/ext4/inode.c, extents.c,
 * indirect.c). Block-mapped (ext2/ext3-style) inodes go to indirect_write.ts; inline-data
 * inodes are not written yet (EOPNOTSUPP).
 *
 * No delayed allocation yet: blocks are allocated when written (a later milestone adds
 * the page cache and writeback). Data goes straight to the device, around the metadata
 * cache; metadata changes ride the caller's handle.
 */

import { FsError } from "../errors.js";
import { EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL } from "../format/inode.js";
import { groupFirstBlock } from "../format/superblock.js";
import { allocRequest, type AllocPurpose, type AllocRequest, type BlockAllocator } from "./alloc_request.js";
import { extMapBlocks } from "./extents.js";
import type { Handle } from "./handle.js";
import { indFindGoal, indGetBlock, indMapForWrite, indMaxBlocks, indTruncate } from "./indirect_write.js";
import { getSize, setInodeBlocks, setSize, type InodeInfo } from "./inode_write.js";
import { inodeBlocks } from "../format/inode.js";
import type { Ext4Fs } from "./super.js";

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

/**
 * Map [lblk, lblk+len), allocating the holes as written extents (contiguous where the
 * allocator can), or for block-mapped inodes as block-map entries with the indirect blocks
 * they need (indMapForWrite; EFBIG past the block-map limit). Returns the mapped runs in
 * order; `fresh` runs were allocated (or, in fallocated space, converted from unwritten)
 * by this call: their old bytes are not the file's.
 */
export async function mapForWrite(
  h: Handle,
  deps: WriteDeps,
  inode: InodeInfo,
  lblk: number,
  len: number,
  purpose: AllocPurpose = "data",
  opts: { maxRuns?: number } = {},
): Promise<{ lblk: number; pblk: number; len: number; fresh: boolean }[]> {
  const fs = h.fs;
  if (!(inode.raw.i_flags & EXT4_EXTENTS_FL)) {
    refuseInline(inode, "Writing");
    return indMapForWrite(h, deps.alloc, inode, lblk, len, {
      purpose,
      funding: { kind: "chargeNow", quota: "enforce" },
      ...(opts.maxRuns !== undefined ? { maxRuns: opts.maxRuns } : {}),
      charge: (blocks) => {
        chargeBlocks(fs, inode, blocks);
      },
    });
  }
  if (lblk + len - 1 > EXT4_MAX_LOGICAL_BLOCK) throw new FsError("EFBIG", "File too large", { ino: inode.ino });
  const runs: { lblk: number; pblk: number; len: number; fresh: boolean }[] = [];
  let at = lblk;
  const end = lblk + len;
  while (at < end && runs.length < (opts.maxRuns ?? Infinity)) {
    const run = await extMapBlocks(fs, inode, at, end - at);
    const n = Math.min(run.len, end - at);
    if (run.pblk !== 0 && run.unwritten) {
      // Fallocated space: its blocks become written; their old bytes were never the file's,
      // so the caller treats them as fresh (zero-filled around the data).
      // @kernel ext4_ext_handle_unwritten_extents -> ext4_ext_convert_to_initialized
      const req = allocRequest({ ino: inode.ino, purpose: "extentNode", goal: run.pblk, len: 1, funding: { kind: "chargeNow", quota: "enforce" } });
      await deps.extents.convertUnwritten(h, deps.alloc, inode, at, n, req);
      runs.push({ lblk: at, pblk: run.pblk, len: n, fresh: true });
      at += n;
      continue;
    }
    if (run.pblk !== 0) {
      runs.push({ lblk: at, pblk: run.pblk, len: n, fresh: false });
      at += n;
      continue;
    }
    // A hole of n blocks: allocate it, possibly in several pieces.
    const req = allocRequest({ ino: inode.ino, purpose, goal: await findGoal(fs, inode, at), len: n, funding: { kind: "chargeNow", quota: "enforce" } });
    const got = await deps.alloc.alloc(h, req);
    await deps.extents.insert(h, deps.alloc, inode, { lblk: at, len: got.len, pblk: got.pblk, unwritten: false }, req);
    chargeBlocks(fs, inode, got.len);
    runs.push({ lblk: at, pblk: got.pblk, len: got.len, fresh: true });
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
    let r: { lblk: number; pblk: number; len: number; fresh: boolean } | undefined;
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

async function writeRun(fs: Ext4Fs, r: { lblk: number; pblk: number; len: number; fresh: boolean }, pos: number, data: Uint8Array): Promise<void> {
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
  if (blockMapped) {
    refuseInline(inode, "Truncating");
    await indTruncate(h, deps.alloc, inode, Math.ceil(newSize / bs), (blocks) => {
      chargeBlocks(fs, inode, blocks);
    });
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

/** Zero block `pblk` from byte `from` on (the tail past a new i_size). @kernel ext4_block_truncate_page */
async function zeroTail(fs: Ext4Fs, pblk: number, from: number): Promise<void> {
  const blk = await fs.cache.readUncached(pblk, 1);
  blk.fill(0, from);
  await fs.cache.writeUncached(pblk, blk);
}
