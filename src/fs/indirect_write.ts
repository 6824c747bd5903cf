/**
 * Block-map writes for ext2/ext3-style (non-extent) inodes: map a range for writing,
 * allocating the missing indirect blocks and data, and free everything from a logical
 * block on (@kernel fs/ext4/indirect.c: ext4_ind_map_blocks with EXT4_GET_BLOCKS_CREATE,
 * ext4_block_to_path, ext4_get_branch, ext4_find_goal, ext4_find_near,
 * ext4_blks_to_allocate, ext4_alloc_branch, ext4_splice_branch; ext4_ind_truncate,
 * ext4_find_shared, ext4_free_branches, ext4_free_data; ext4_max_bitmap_size in super.c).
 *
 * Design note.
 * - The map: i_block[0..11] point at data blocks, i_block[12] at an indirect block of
 *   apb = blocksize / 4 pointers to data, [13] at a double-indirect block (pointers to
 *   indirect blocks), [14] at a triple-indirect block. A zero pointer is a hole. Pointers
 *   are 32-bit: block-mapped files live in the first 2^32 blocks.
 * - Map for write (ext4_ind_map_blocks): walk from i_block towards the logical block
 *   (ext4_get_branch). All there: the run of physically contiguous pointers that follow in
 *   the same pointer array. Else the first zero pointer ("partial") decides: every pointer
 *   block below it is new (ext4_alloc_branch), and the data run is as long as asked but
 *   stays inside one pointer array: up to its end when new pointer blocks are made, else
 *   as far as the following pointers are zero too (ext4_blks_to_allocate). The goal is the
 *   nearest non-zero pointer before the missing one in its array, else that array's block,
 *   else the start of the inode's group (ext4_find_near).
 * - Allocation follows the seed rule (DEVELOPERS.md): the data request carries the
 *   caller's funding; each new pointer block is its own request with purpose "indirect"
 *   and funding childFunding(data request), never read from inode state. As in the kernel
 *   the pointer blocks are allocated first (each aimed at the previous one) and the data
 *   last; the kernel moves ar->goal to the last pointer block, and the data request here
 *   keeps its goal, which a first-fit allocator turns into the same placement (the pointer
 *   blocks took the first free blocks from that goal).
 * - New pointer blocks are zeroed through the handle (getCreateAccess), filled and dirtied
 *   before anything points at them; the splice (one pointer into i_block or a pointer block
 *   held for write, plus the further data pointers when no pointer block was new) comes
 *   last and has no await. A failed allocation (ENOSPC) gives back what was granted and
 *   leaves the map as it was.
 * - Truncate (ext4_ind_truncate): everything at or after `from` goes. Planned first: every
 *   pointer block involved is read and every pointer checked, nothing changed, so a corrupt
 *   pointer anywhere is an EFSCORRUPTED error before any change. Then applied: pointers
 *   zeroed in the surviving boundary blocks (through the handle) and in i_block, i_blocks
 *   lowered, the inode written, and only then the data runs and pointer blocks freed. A
 *   pointer block on the boundary path left without any pointer is freed too and unlinked
 *   from its parent, up to i_block (ext4_find_shared's all_zeroes).
 * - Accounting: data and pointer blocks both count in i_blocks; the caller's `charge`
 *   (file_write's chargeBlocks) is told as blocks are spliced in or unlinked.
 * - Checks: a pointer is followed, written through or freed only when it lies inside the
 *   volume's data area and clear of its fixed metadata (@kernel ext4_inode_block_valid).
 *   The walk depth comes from the logical block, so a corrupt map cannot loop.
 * - Limits: ext4_max_bitmap_size. Without huge_file, i_blocks counts 512-byte sectors in 32
 *   bits, which caps a dense file with its pointer blocks below 2^32 sectors: 16843020
 *   blocks (the full map) on 1 KiB blocks, 536346110 on 4 KiB blocks (~2 TiB).
 *
 * Caller holds the inode's i_data_sem for write and runs in handle `h`. Not supported:
 * bigalloc (the kernel refuses block-mapped allocation there too).
 */

import { assert } from "../debug/assert.js";
import { FsError } from "../errors.js";
import { inodeBlocks } from "../format/inode.js";
import { groupFirstBlock } from "../format/superblock.js";
import { allocRequest, childFunding, type AllocPurpose, type BlockAllocator, type Funding } from "./alloc_request.js";
import { overlapsSystemZone } from "./balloc.js";
import type { Handle } from "./handle.js";
import type { InodeDquots } from "./quota.js";
import { markInodeDirty, type InodeInfo } from "./inode_write.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";

/** Direct pointers in i_block. @kernel EXT4_NDIR_BLOCKS */
export const EXT4_NDIR_BLOCKS = 12;
const EXT4_IND_BLOCK = 12;
const EXT4_DIND_BLOCK = 13;
const EXT4_TIND_BLOCK = 14;

/** Logical blocks are 32-bit and s_maxbytes stops one block short. @kernel ext4_max_size */
const MAX_LOGICAL_BLOCKS = 2 ** 32 - 1;

/** Block pointers are 32-bit: block-mapped files live below this physical block. @kernel EXT4_MAX_BLOCK_FILE_PHYS + 1 */
const POINTER_LIMIT = 2 ** 32;

/**
 * The kernel keeps block-mapped files in the groups below 2^32 (s_blockfile_groups); the
 * allocation request has no such limit yet, so a grant above it is given back as ENOSPC.
 */
function beyondPointers(inode: BlockMapInode): FsError {
  return new FsError("ENOSPC", "No space below block 2^32 for a block-mapped file", { ino: inode.ino });
}

/** The fields the block-map code reads and writes on an inode. */
export type BlockMapInode = Pick<InodeInfo, "ino" | "raw">;

/** A mapped run handed to the writer; `fresh`: allocated just now, so it holds no file data. */
export interface WriteRun {
  lblk: number;
  pblk: number;
  len: number;
  fresh: boolean;
}

/**
 * Blocks a block-mapped file may span: the map's reach, cut so a dense file's data and
 * pointer blocks fit i_blocks (32-bit sectors without huge_file, 48-bit with it), and at
 * most the 2^32 - 1 logical blocks ext4 allows any file.
 * @kernel ext4_max_bitmap_size (in blocks)
 */
export function bitmapMaxBlocks(blockSize: number, hugeFile: boolean): number {
  const bits = Math.log2(blockSize);
  const ppb = blockSize / 4;
  let upper = hugeFile ? 2 ** 48 - 1 : Math.floor((2 ** 32 - 1) / 2 ** (bits - 9));
  let res = EXT4_NDIR_BLOCKS + ppb + ppb * ppb + ppb * ppb * ppb;
  let meta = 1 + (1 + ppb) + (1 + ppb + ppb * ppb);
  if (res + meta > upper) {
    // How many pointer blocks addressing `upper` blocks needs, and what is left for data.
    res = upper;
    upper -= EXT4_NDIR_BLOCKS + ppb;
    meta = 1;
    if (upper < ppb * ppb) {
      meta += 1 + Math.ceil(upper / ppb);
    } else {
      meta += 1 + ppb;
      upper -= ppb * ppb;
      meta += 1 + Math.ceil(upper / ppb) + Math.ceil(upper / (ppb * ppb));
    }
    res -= meta;
  }
  return Math.min(res, MAX_LOGICAL_BLOCKS);
}

/** bitmapMaxBlocks for this volume; files past it are EFBIG. @kernel s_bitmap_maxbytes */
export function indMaxBlocks(fs: Ext4Fs): number {
  return bitmapMaxBlocks(fs.blockSize, fs.features.hugeFile);
}

// ---------------------------------------------------------------------------------------------
// Pointers

function getPtr(buf: Uint8Array, i: number): number {
  const o = i * 4;
  return (buf[o]! | (buf[o + 1]! << 8) | (buf[o + 2]! << 16) | (buf[o + 3]! << 24)) >>> 0;
}

function setPtr(buf: Uint8Array, i: number, v: number): void {
  const o = i * 4;
  buf[o] = v & 0xff;
  buf[o + 1] = (v >>> 8) & 0xff;
  buf[o + 2] = (v >>> 16) & 0xff;
  buf[o + 3] = (v >>> 24) & 0xff;
}

/** Path of array indexes from i_block to the pointer of `lblk`; `boundary`: pointers after it in its array. @kernel ext4_block_to_path */
export function blockToPath(lblk: number, apb: number): { offsets: number[]; boundary: number } | null {
  if (lblk < EXT4_NDIR_BLOCKS) return { offsets: [lblk], boundary: EXT4_NDIR_BLOCKS - 1 - lblk };
  let b = lblk - EXT4_NDIR_BLOCKS;
  if (b < apb) return { offsets: [EXT4_IND_BLOCK, b], boundary: apb - 1 - b };
  b -= apb;
  if (b < apb * apb) return { offsets: [EXT4_DIND_BLOCK, Math.floor(b / apb), b % apb], boundary: apb - 1 - (b % apb) };
  b -= apb * apb;
  if (b < apb * apb * apb) return { offsets: [EXT4_TIND_BLOCK, Math.floor(b / (apb * apb)), Math.floor(b / apb) % apb, b % apb], boundary: apb - 1 - (b % apb) };
  return null;
}

/**
 * Throw EFSCORRUPTED unless blocks [p, p + count) are inside the data area and clear of
 * the volume's fixed metadata. `holder`: the pointer block holding p (0 for i_block).
 * @kernel ext4_inode_block_valid
 */
function checkPtr(fs: Ext4Fs, inode: BlockMapInode, p: number, count: number, holder: number, lblk: number): void {
  if (fs.blockRangeValid(p, count) && !overlapsSystemZone(fs, p, count)) return;
  const what =
    count === 1
      ? `Block map pointer ${p} (logical block ${lblk}) is outside the volume or overlaps filesystem metadata`
      : `Block map run ${p}..${p + count - 1} (logical block ${lblk}) is outside the volume or overlaps filesystem metadata`;
  throw fsCorrupted(fs, { ino: inode.ino, ...(holder !== 0 ? { block: holder } : {}), what });
}

/** Default goal: the start of the inode's group, as findGoal does for extents. */
function inodeGoal(fs: Ext4Fs, inode: BlockMapInode): number {
  return groupFirstBlock(fs.sb, Math.floor((inode.ino - 1) / fs.inodesPerGroup));
}

/** Nearest non-zero pointer before `slot` in its array, else the array's block, else the inode's group. @kernel ext4_find_near */
function findNear(fs: Ext4Fs, inode: BlockMapInode, arr: Uint8Array, holder: number, slot: number): number {
  for (let p = slot - 1; p >= 0; p--) {
    const w = getPtr(arr, p);
    if (w !== 0) return w;
  }
  return holder !== 0 ? holder : inodeGoal(fs, inode);
}

/**
 * Where blocks for `lblk` should go: next to the nearest block mapped before it in the
 * same pointer array (a hint: corrupt pointers end the walk, they are not reported here).
 * @kernel ext4_find_goal
 */
export async function indFindGoal(fs: Ext4Fs, inode: BlockMapInode, lblk: number): Promise<number> {
  const path = blockToPath(lblk, fs.blockSize / 4);
  if (path === null) return inodeGoal(fs, inode);
  let arr = inode.raw.i_block;
  let holder = 0;
  for (let level = 0; ; level++) {
    const slot = path.offsets[level]!;
    const key = getPtr(arr, slot);
    if (key === 0 || level === path.offsets.length - 1 || !fs.blockRangeValid(key, 1) || overlapsSystemZone(fs, key, 1)) {
      return findNear(fs, inode, arr, holder, slot);
    }
    arr = await fs.cache.get(key);
    holder = key;
  }
}

/**
 * The physical block of `lblk`, 0 for a hole; every pointer on the way checked (a block
 * about to be written in place must not be metadata).
 */
export async function indGetBlock(fs: Ext4Fs, inode: BlockMapInode, lblk: number): Promise<number> {
  const path = blockToPath(lblk, fs.blockSize / 4);
  if (path === null) return 0;
  let arr = inode.raw.i_block;
  let holder = 0;
  for (let level = 0; ; level++) {
    const key = getPtr(arr, path.offsets[level]!);
    if (key === 0) return 0;
    checkPtr(fs, inode, key, 1, holder, lblk);
    if (level === path.offsets.length - 1) return key;
    arr = await fs.cache.get(key);
    holder = key;
  }
}

// ---------------------------------------------------------------------------------------------
// Map for write

export interface IndWriteOptions {
  /** What the data blocks are for ("data", "dirBlock"). */
  readonly purpose: AllocPurpose;
  /** How the data is paid for; pointer blocks get childFunding of the data request. */
  readonly funding: Funding;
  /** Whom data and pointer blocks are charged to (the inode's dquots, loaded by the caller). */
  readonly dquots: InodeDquots | null;
  /** Stop after this many runs (default: the whole range). */
  readonly maxRuns?: number;
  /** Add `blocks` (negative: remove) to i_blocks: the caller's accounting (chargeBlocks). */
  readonly charge: (blocks: number) => void;
}

/**
 * Map [lblk, lblk + len) for writing, allocating holes (with the pointer blocks they need).
 * Returns the runs in order, at most `maxRuns`; fresh runs were allocated by this call.
 * Throws EFBIG past indMaxBlocks, EFSCORRUPTED for a bad pointer, and what the allocator
 * throws (ENOSPC, EDQUOT), with the runs mapped before the failure in place (as the
 * kernel's ext4_map_blocks loop leaves them). Writes the inode back when it allocated.
 * @kernel ext4_ind_map_blocks with EXT4_GET_BLOCKS_CREATE
 */
export async function indMapForWrite(h: Handle, alloc: BlockAllocator, inode: InodeInfo, lblk: number, len: number, opts: IndWriteOptions): Promise<WriteRun[]> {
  const fs = h.fs;
  assert(Number.isSafeInteger(lblk) && lblk >= 0 && Number.isSafeInteger(len) && len >= 0, () => `Invalid range ${lblk}+${len}`);
  if (lblk + len > indMaxBlocks(fs)) throw new FsError("EFBIG", "File too large", { ino: inode.ino });
  const runs: WriteRun[] = [];
  const max = opts.maxRuns ?? Infinity;
  let at = lblk;
  const end = lblk + len;
  while (at < end && runs.length < max) {
    const run = await mapOne(h, alloc, inode, at, end - at, opts);
    runs.push(run);
    at += run.len;
  }
  return runs;
}

/** One step of ext4_ind_map_blocks: the mapped run at `lblk`, or a fresh one. */
async function mapOne(h: Handle, alloc: BlockAllocator, inode: InodeInfo, lblk: number, maxLen: number, opts: IndWriteOptions): Promise<WriteRun> {
  const fs = h.fs;
  const path = blockToPath(lblk, fs.blockSize / 4);
  if (path === null) throw new FsError("EFBIG", "File too large", { ino: inode.ino });
  const { offsets, boundary } = path;
  const depth = offsets.length;
  // ext4_get_branch: follow the pointers while they are there.
  let arr = inode.raw.i_block;
  let holder = 0;
  let level = 0;
  for (;;) {
    const slot = offsets[level]!;
    const key = getPtr(arr, slot);
    if (key === 0) break;
    if (level === depth - 1) {
      let count = 1;
      while (count < maxLen && count <= boundary && getPtr(arr, slot + count) === key + count) count++;
      checkPtr(fs, inode, key, count, holder, lblk);
      return { lblk, pblk: key, len: count, fresh: false };
    }
    checkPtr(fs, inode, key, 1, holder, lblk);
    arr = await fs.cache.get(key);
    holder = key;
    level++;
  }
  // From here `arr` is read without an await in between (the cache may drop it later).
  const slot = offsets[level]!;
  const newPtrBlocks = depth - 1 - level;
  let count: number; // @kernel ext4_blks_to_allocate
  if (newPtrBlocks > 0) {
    count = Math.min(maxLen, boundary + 1);
  } else {
    count = 1;
    while (count < maxLen && count <= boundary && getPtr(arr, slot + count) === 0) count++;
  }
  const goal = findNear(fs, inode, arr, holder, slot);

  const dataReq = allocRequest({ ino: inode.ino, purpose: opts.purpose, goal, len: count, funding: opts.funding, dquots: opts.dquots });
  const ptrFunding = childFunding(dataReq);
  const granted: number[] = [];
  let data: { pblk: number; len: number } | undefined;
  let target: Uint8Array;
  try {
    // @kernel ext4_alloc_branch: pointer blocks first, each aimed at the one before.
    let g = goal;
    for (let i = 0; i < newPtrBlocks; i++) {
      const r = await alloc.alloc(h, allocRequest({ ino: inode.ino, purpose: "indirect", goal: g, len: 1, funding: ptrFunding, dquots: dataReq.dquots }));
      assert(r.len === 1 && fs.blockRangeValid(r.pblk, 1), () => `Allocator returned ${r.len} blocks at ${r.pblk} for one pointer block`);
      granted.push(r.pblk);
      g = r.pblk;
      if (r.pblk >= POINTER_LIMIT) throw beyondPointers(inode);
    }
    data = await alloc.alloc(h, dataReq);
    const d = data;
    assert(d.len >= 1 && d.len <= count && fs.blockRangeValid(d.pblk, d.len), () => `Allocator returned blocks ${d.pblk}+${d.len} for a request of ${count}`);
    if (d.pblk + d.len > POINTER_LIMIT) throw beyondPointers(inode);
    for (let i = 0; i < newPtrBlocks; i++) {
      const b = await h.getCreateAccess(granted[i]!); // zeroed
      const s = offsets[level + 1 + i]!;
      if (i < newPtrBlocks - 1) setPtr(b, s, granted[i + 1]!);
      else for (let j = 0; j < d.len; j++) setPtr(b, s + j, d.pblk + j);
      h.dirtyMetadata(granted[i]!);
    }
    target = holder === 0 ? inode.raw.i_block : await h.getWriteAccess(holder);
  } catch (err) {
    // Block-mapped data is never delalloc: every grant was charged with the request's dquots.
    if (data !== undefined) await alloc.free(h, inode.ino, data.pblk, data.len, dataReq.dquots);
    for (let i = granted.length - 1; i >= 0; i--) await alloc.free(h, inode.ino, granted[i]!, 1, dataReq.dquots);
    throw err;
  }
  // @kernel ext4_splice_branch: no await from here to the charge.
  assert(getPtr(target, slot) === 0, () => `Inode ${inode.ino}: pointer for logical block ${lblk} changed during allocation`);
  setPtr(target, slot, newPtrBlocks > 0 ? granted[0]! : data.pblk);
  if (newPtrBlocks === 0) {
    for (let j = 1; j < data.len; j++) {
      assert(getPtr(target, slot + j) === 0, () => `Inode ${inode.ino}: logical block ${lblk + j} is already mapped`);
      setPtr(target, slot + j, data.pblk + j);
    }
  }
  if (holder !== 0) h.dirtyMetadata(holder);
  opts.charge(newPtrBlocks + data.len);
  await markInodeDirty(h, inode);
  return { lblk, pblk: data.pblk, len: data.len, fresh: true };
}

// ---------------------------------------------------------------------------------------------
// Truncate

interface TruncPlan {
  /** Data runs to free, coalesced in logical order. */
  readonly data: { pblk: number; count: number }[];
  dataBlocks: number;
  /** Pointer blocks to free. */
  readonly ptrBlocks: number[];
  /** Surviving pointer blocks and the slots to zero in them. */
  readonly edits: { block: number; from: number; to: number }[];
  /** i_block slots to zero. */
  readonly top: number[];
}

interface TruncCtx {
  readonly fs: Ext4Fs;
  readonly inode: BlockMapInode;
  readonly apb: number;
  readonly plan: TruncPlan;
}

function addData(c: TruncCtx, pblk: number): void {
  const runs = c.plan.data;
  const last = runs[runs.length - 1];
  if (last !== undefined && last.pblk + last.count === pblk) last.count++;
  else runs.push({ pblk, count: 1 });
  c.plan.dataBlocks++;
}

/** A copy of the pointers in block `pblk` (read through the cache; not held). */
async function readPtrs(c: TruncCtx, pblk: number): Promise<Uint32Array> {
  const b = await c.fs.cache.get(pblk);
  const out = new Uint32Array(c.apb);
  for (let i = 0; i < c.apb; i++) out[i] = getPtr(b, i);
  return out;
}

/** Plan freeing the whole subtree of pointer block `pblk` (`depth` levels of pointer blocks, 1 = indirect), the block included. @kernel ext4_free_branches */
async function planWhole(c: TruncCtx, pblk: number, depth: number, firstLblk: number): Promise<void> {
  const ptrs = await readPtrs(c, pblk);
  const span = c.apb ** (depth - 1);
  for (let i = 0; i < c.apb; i++) {
    const q = ptrs[i]!;
    if (q === 0) continue;
    checkPtr(c.fs, c.inode, q, 1, pblk, firstLblk + i * span);
    if (depth === 1) addData(c, q);
    else await planWhole(c, q, depth - 1, firstLblk + i * span);
  }
  c.plan.ptrBlocks.push(pblk);
}

/**
 * Plan freeing everything from offset `off` (0 < off < apb^depth) of the subtree of pointer
 * block `pblk`. Returns true when nothing before `off` is mapped either: the block itself
 * goes (the caller frees it and zeroes its pointer). @kernel ext4_find_shared + ext4_free_branches
 */
async function planPartial(c: TruncCtx, pblk: number, depth: number, off: number, firstLblk: number): Promise<boolean> {
  const ptrs = await readPtrs(c, pblk);
  const span = c.apb ** (depth - 1);
  const k = Math.floor(off / span);
  const rem = off % span;
  let cut = rem === 0 ? k : k + 1; // slots [cut, apb) go whole
  for (let i = cut; i < c.apb; i++) {
    const q = ptrs[i]!;
    if (q === 0) continue;
    checkPtr(c.fs, c.inode, q, 1, pblk, firstLblk + i * span);
    if (depth === 1) addData(c, q);
    else await planWhole(c, q, depth - 1, firstLblk + i * span);
  }
  const q = ptrs[k]!;
  if (rem !== 0 && q !== 0) {
    checkPtr(c.fs, c.inode, q, 1, pblk, firstLblk + k * span);
    if (await planPartial(c, q, depth - 1, rem, firstLblk + k * span)) {
      c.plan.ptrBlocks.push(q);
      cut = k;
    }
  }
  let survives = false;
  for (let i = 0; i < cut && !survives; i++) survives = ptrs[i] !== 0;
  if (!survives) return true;
  let changed = false;
  for (let i = cut; i < c.apb && !changed; i++) changed = ptrs[i] !== 0;
  if (changed) c.plan.edits.push({ block: pblk, from: cut, to: c.apb });
  return false;
}

/**
 * Unmap every logical block at or after `from`: free the data blocks, the pointer blocks
 * wholly past `from`, and the boundary pointer blocks left empty; i_blocks goes down by all
 * of them (through `charge`) and the inode is written back. Returns the blocks freed. A
 * corrupt pointer is EFSCORRUPTED before anything changes.
 * @kernel ext4_ind_truncate
 */
export async function indTruncate(h: Handle, alloc: BlockAllocator, inode: InodeInfo, from: number, charge: (blocks: number) => void, dquots: InodeDquots | null): Promise<{ data: number; ptrBlocks: number }> {
  const fs = h.fs;
  assert(Number.isSafeInteger(from) && from >= 0, () => `Invalid truncation point ${from}`);
  const apb = fs.blockSize / 4;
  const plan: TruncPlan = { data: [], dataBlocks: 0, ptrBlocks: [], edits: [], top: [] };
  const c: TruncCtx = { fs, inode, apb, plan };
  const iblock = inode.raw.i_block;
  for (let s = Math.min(from, EXT4_NDIR_BLOCKS); s < EXT4_NDIR_BLOCKS; s++) {
    const p = getPtr(iblock, s);
    if (p === 0) continue;
    checkPtr(fs, inode, p, 1, 0, s);
    addData(c, p);
    plan.top.push(s);
  }
  let start = EXT4_NDIR_BLOCKS;
  for (const [slot, depth] of [[EXT4_IND_BLOCK, 1], [EXT4_DIND_BLOCK, 2], [EXT4_TIND_BLOCK, 3]] as const) {
    const span = apb ** depth;
    const p = getPtr(iblock, slot);
    if (p !== 0 && from < start + span) {
      checkPtr(fs, inode, p, 1, 0, start);
      if (from <= start) {
        await planWhole(c, p, depth, start);
        plan.top.push(slot);
      } else if (await planPartial(c, p, depth, from - start, start)) {
        plan.ptrBlocks.push(p);
        plan.top.push(slot);
      }
    }
    start += span;
  }
  if (plan.top.length === 0 && plan.edits.length === 0) return { data: 0, ptrBlocks: 0 };

  // Apply: unlink, account, write the inode; then free.
  for (const e of plan.edits) {
    const b = await h.getWriteAccess(e.block);
    b.fill(0, e.from * 4, e.to * 4);
    h.dirtyMetadata(e.block);
  }
  for (const s of plan.top) setPtr(iblock, s, 0);
  const freed = plan.dataBlocks + plan.ptrBlocks.length;
  // i_blocks cannot go below zero, even when a corrupt map pointed at more than it counted.
  const held = Math.floor(inodeBlocks(inode.raw, fs.features.hugeFile, fs.blockSize) / (fs.blockSize / 512));
  charge(-Math.min(freed, held));
  await markInodeDirty(h, inode);
  for (const r of plan.data) await alloc.free(h, inode.ino, r.pblk, r.count, dquots);
  for (const b of plan.ptrBlocks) await alloc.free(h, inode.ino, b, 1, dquots);
  return { data: plan.dataBlocks, ptrBlocks: plan.ptrBlocks.length };
}
