/**
 * Block allocation and freeing on the on-disk bitmaps (@kernel ext4_mb_new_blocks,
 * ext4_mb_mark_diskspace_used, ext4_free_blocks in fs/ext4/mballoc.c;
 * ext4_init_block_bitmap, ext4_read_block_bitmap, ext4_has_free_clusters in balloc.c).
 *
 * Design note. This is a deliberately simple allocator (no buddy cache, no
 * preallocation, no delalloc) with the kernel's accounting rules:
 *
 * - Every operation has a LOAD phase and a COMMIT phase. The load phase awaits: it pins,
 *   through the handle, the group descriptor block and the bitmap it may change. The
 *   commit phase (the `commit*` functions, which are not async) then re-reads every
 *   decision input it needs (admission, search, bitmap verification) and applies the
 *   whole change: bitmap bits, bg_free_blocks_count, bitmap and descriptor checksums,
 *   the in-core s_free_blocks_count, BLOCK_UNINIT initialisation. No await separates a
 *   decision from its effect, so concurrent operations (any await lets one run)
 *   serialize at the commit, exactly as the kernel's group lock makes them
 *   (design note §3.2, §5 A1/A2).
 * - Funding comes only from the request (§0, the seed rule; reserveFor below): what
 *   free space it may use and how quota is charged. Nothing on the inode or volume
 *   decides it. The requester of an "enforce" request is treated as unprivileged: root,
 *   s_resuid, s_resgid and CAP_SYS_RESOURCE are not modelled.
 * - Cluster = block: bigalloc volumes are refused here by assertion (mount refuses them
 *   for writing elsewhere).
 * - Freed blocks are immediately allocatable again. With a journal they must not be
 *   reused before the freeing transaction commits (ext4_mb_free_metadata); that rule
 *   arrives with the journal.
 *
 * Invariants kept (checked by checkAllocationInvariants): per group, bg_free_blocks_count
 * equals the clear bits of an initialised bitmap and the bitmap checksum matches it;
 * s_free_blocks_count is the sum of the groups' counts; no allocated block overlaps the
 * volume's metadata (superblock copies, GDT, reserved GDT, bitmaps, inode tables).
 */

import { assert } from "../debug/assert.js";
import { FsError } from "../errors.js";
import { bitmapChecksum, groupDescChecksum } from "../format/checksum.js";
import {
  EXT4_BG_BLOCK_BITMAP_CSUM_HI_END,
  EXT4_BG_BLOCK_UNINIT,
  EXT4_BG_INODE_BITMAP_CSUM_HI_END,
  EXT4_BG_INODE_UNINIT,
  blockBitmap,
  blockBitmapCsum,
  freeBlocksCount as gdFreeBlocks,
  freeInodesCount as gdFreeInodes,
  groupDesc,
  groupDescBlocksInGroup,
  groupHasSuperblock,
  inodeBitmap,
  inodeBitmapCsum,
  inodeTable,
  itableUnused,
  setFreeBlocksCount as setGdFreeBlocks,
  type GroupDesc,
} from "../format/group_desc.js";
import {
  EXT4_FEATURE_INCOMPAT_META_BG,
  EXT4_FEATURE_RO_COMPAT_BIGALLOC,
  descPerBlock,
  firstIno,
  freeBlocksCount as sbFreeBlocks,
  groupFirstBlock,
  hasIncompat,
  hasRoCompat,
  inodeTableBlocks,
  rBlocksCount,
  setFreeBlocksCount as setSbFreeBlocks,
} from "../format/superblock.js";
import type { AllocRequest } from "./alloc_request.js";
import { allClear, allSet, clearBits, countZeros, findNextZero, findZeroRun, markBitmapEnd, setBits, zeroRunLength, type BitRun } from "./bitmap.js";
import type { Handle } from "./handle.js";
import type { InodeDquots } from "./quota.js";
import { chargeGrantedBlocks, quotaGrantCap, unchargeFreedBlocks } from "./quota_charge.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";
import { commitGroupDesc, loadGroupDescBlock } from "./group.js";

/** A run of physical blocks handed out by ext4NewBlocks. */
export interface BlockExtent {
  readonly pblk: number;
  readonly len: number;
}

// ---------------------------------------------------------------------------------------
// Geometry shared with ialloc.ts and the checker

/** Bigalloc would make bitmap bits clusters; this allocator assumes cluster = block. */
export function assertNoBigalloc(fs: Ext4Fs): void {
  assert(!hasRoCompat(fs.sb, EXT4_FEATURE_RO_COMPAT_BIGALLOC), "The block allocator does not support bigalloc volumes");
}

/** Do BLOCK_UNINIT / INODE_UNINIT / bg_itable_unused mean anything? @kernel ext4_has_group_desc_csum */
export function hasGroupDescCsum(fs: Ext4Fs): boolean {
  return fs.features.metadataCsum || fs.features.gdtCsum;
}

/** Blocks in group `g`: s_blocks_per_group except for a shorter last group. @kernel ext4_blocks_in_group */
export function blocksInGroup(fs: Ext4Fs, g: number): number {
  if (g < fs.groupCount - 1) return fs.blocksPerGroup;
  return fs.blocksCount - groupFirstBlock(fs.sb, g);
}

/** @kernel ext4_get_group_number */
export function groupOfBlock(fs: Ext4Fs, pblk: number): number {
  return Math.floor((pblk - fs.sb.s_first_data_block) / fs.blocksPerGroup);
}

/** Is the group's block bitmap still virtual (never written)? */
export function blockBitmapUninit(fs: Ext4Fs, gd: GroupDesc): boolean {
  return hasGroupDescCsum(fs) && (gd.bg_flags & EXT4_BG_BLOCK_UNINIT) !== 0;
}

/** Is the group's inode bitmap still virtual (all free)? */
export function inodeBitmapUninit(fs: Ext4Fs, gd: GroupDesc): boolean {
  return hasGroupDescCsum(fs) && (gd.bg_flags & EXT4_BG_INODE_UNINIT) !== 0;
}

/**
 * Superblock copy, group descriptor blocks and reserved GDT blocks at the start of the
 * group. @kernel ext4_num_base_meta_clusters
 */
export function baseMetaBlocks(fs: Ext4Fs, g: number): number {
  const sb = fs.sb;
  const hasSuper = groupHasSuperblock(sb, g) ? 1 : 0;
  let n = hasSuper + groupDescBlocksInGroup(sb, g);
  const classic = !hasIncompat(sb, EXT4_FEATURE_INCOMPAT_META_BG) || g < sb.s_first_meta_bg * descPerBlock(sb);
  if (classic && hasSuper === 1) n += sb.s_reserved_gdt_blocks;
  return n;
}

/** A block range [start, end). */
interface Zone {
  readonly start: number;
  readonly end: number;
}

const zoneCache = new WeakMap<Ext4Fs, readonly Zone[]>();

/**
 * The volume's fixed metadata, sorted and merged: every group's superblock copy, GDT and
 * reserved GDT blocks, block and inode bitmaps and inode table, wherever flex_bg put them.
 * Computed once per mount (nothing here moves without resize). The journal's blocks are
 * not included (they belong to inode 8, whose blocks the bitmaps mark).
 * @kernel ext4_setup_system_zone (fs/ext4/block_validity.c)
 */
export function systemZones(fs: Ext4Fs): readonly Zone[] {
  const cached = zoneCache.get(fs);
  if (cached !== undefined) return cached;
  const raw: Zone[] = [];
  const itb = inodeTableBlocks(fs.sb);
  for (let g = 0; g < fs.groupCount; g++) {
    const base = baseMetaBlocks(fs, g);
    const first = groupFirstBlock(fs.sb, g);
    if (base > 0) raw.push({ start: first, end: first + base });
    const gd = fs.group(g);
    const bb = blockBitmap(gd, fs.descSize);
    const ib = inodeBitmap(gd, fs.descSize);
    const it = inodeTable(gd, fs.descSize);
    raw.push({ start: bb, end: bb + 1 }, { start: ib, end: ib + 1 }, { start: it, end: it + itb });
  }
  raw.sort((a, b) => a.start - b.start);
  const merged: Zone[] = [];
  for (const z of raw) {
    const last = merged[merged.length - 1];
    if (last !== undefined && z.start <= last.end) merged[merged.length - 1] = { start: last.start, end: Math.max(last.end, z.end) };
    else merged.push(z);
  }
  zoneCache.set(fs, merged);
  return merged;
}

/** Index of the first zone ending after `block`. */
function firstZoneAfter(zones: readonly Zone[], block: number): number {
  let lo = 0;
  let hi = zones.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (zones[mid]!.end > block) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Does [start, start + len) overlap the volume's fixed metadata? @kernel ext4_sb_block_valid (negated) */
export function overlapsSystemZone(fs: Ext4Fs, start: number, len: number): boolean {
  const zones = systemZones(fs);
  const z = zones[firstZoneAfter(zones, start)];
  return z !== undefined && z.start < start + len;
}

/** Calls `fn(fromBit, toBit)` for each piece of metadata inside group `g`. */
function forEachZoneInGroup(fs: Ext4Fs, g: number, fn: (from: number, to: number) => void): void {
  const first = groupFirstBlock(fs.sb, g);
  const end = first + blocksInGroup(fs, g);
  const zones = systemZones(fs);
  for (let i = firstZoneAfter(zones, first); i < zones.length && zones[i]!.start < end; i++) {
    const z = zones[i]!;
    fn(Math.max(z.start, first) - first, Math.min(z.end, end) - first);
  }
}

/** Bytes of the block bitmap the checksum covers. @kernel EXT4_CLUSTERS_PER_GROUP / 8 */
function blockBitmapCsumBytes(fs: Ext4Fs): number {
  return fs.blocksPerGroup >>> 3;
}

/** The block bitmap checksum as the descriptor stores it (16 bits with 32-byte descriptors). */
export function expectedBlockBitmapCsum(fs: Ext4Fs, bitmap: Uint8Array): number {
  const c = bitmapChecksum(bitmap, blockBitmapCsumBytes(fs), fs.csumSeed) >>> 0;
  return fs.descSize >= EXT4_BG_BLOCK_BITMAP_CSUM_HI_END ? c : c & 0xffff;
}

/** The inode bitmap checksum as the descriptor stores it. */
export function expectedInodeBitmapCsum(fs: Ext4Fs, bitmap: Uint8Array): number {
  const c = bitmapChecksum(bitmap, fs.inodesPerGroup >>> 3, fs.csumSeed) >>> 0;
  return fs.descSize >= EXT4_BG_INODE_BITMAP_CSUM_HI_END ? c : c & 0xffff;
}

/** @kernel ext4_block_bitmap_csum_set */
export function setBlockBitmapCsum(fs: Ext4Fs, gd: GroupDesc, bitmap: Uint8Array): void {
  if (!fs.features.metadataCsum) return;
  const c = expectedBlockBitmapCsum(fs, bitmap);
  gd.bg_block_bitmap_csum_lo = c & 0xffff;
  if (fs.descSize >= EXT4_BG_BLOCK_BITMAP_CSUM_HI_END) gd.bg_block_bitmap_csum_hi = c >>> 16;
}

/** @kernel ext4_inode_bitmap_csum_set */
export function setInodeBitmapCsum(fs: Ext4Fs, gd: GroupDesc, bitmap: Uint8Array): void {
  if (!fs.features.metadataCsum) return;
  const c = expectedInodeBitmapCsum(fs, bitmap);
  gd.bg_inode_bitmap_csum_lo = c & 0xffff;
  if (fs.descSize >= EXT4_BG_INODE_BITMAP_CSUM_HI_END) gd.bg_inode_bitmap_csum_hi = c >>> 16;
}

const reconciled = new WeakSet<Ext4Fs>();

/**
 * The kernel never trusts s_free_blocks_count / s_free_inodes_count: at mount it sums
 * the group descriptors into its percpu counters (ext4_fill_super). We do the same the
 * first time an allocator runs on a volume (synchronous, idempotent).
 * @kernel ext4_count_free_clusters, ext4_count_free_inodes
 */
export function reconcileFreeCounts(fs: Ext4Fs): void {
  if (reconciled.has(fs)) return;
  let blocks = 0;
  let inodes = 0;
  for (let g = 0; g < fs.groupCount; g++) {
    const gd = fs.group(g);
    blocks += gdFreeBlocks(gd, fs.descSize);
    inodes += gdFreeInodes(gd, fs.descSize);
  }
  setSbFreeBlocks(fs.sb, blocks);
  fs.sb.s_free_inodes_count = inodes;
  reconciled.add(fs);
}

// ---------------------------------------------------------------------------------------
// Block bitmaps

/**
 * Build the bitmap of a BLOCK_UNINIT group in `bitmap`: the metadata the group holds
 * (superblock copy, GDT, reserved GDT, and the bitmaps and inode tables of any group that
 * lie here), plus the padding past the group's last block. Returns the free blocks.
 * @kernel ext4_init_block_bitmap
 */
export function initBlockBitmap(fs: Ext4Fs, g: number, bitmap: Uint8Array): number {
  bitmap.fill(0, 0, fs.blockSize);
  forEachZoneInGroup(fs, g, (from, to) => {
    setBits(bitmap, from, to);
  });
  const n = blocksInGroup(fs, g);
  markBitmapEnd(bitmap, n, fs.blockSize * 8);
  return countZeros(bitmap, 0, n);
}

const verifiedBlockBitmaps = new WeakMap<Ext4Fs, Set<number>>();

function groupSet(map: WeakMap<Ext4Fs, Set<number>>, fs: Ext4Fs): Set<number> {
  let s = map.get(fs);
  if (s === undefined) {
    s = new Set();
    map.set(fs, s);
  }
  return s;
}

/**
 * Check a block bitmap read from disk, once per mount: checksum (metadata_csum) and the
 * group's own metadata marked in use. Synchronous; call in a commit section.
 * @kernel ext4_validate_block_bitmap
 */
function verifyBlockBitmap(fs: Ext4Fs, g: number, bitmap: Uint8Array): void {
  const done = groupSet(verifiedBlockBitmaps, fs);
  if (done.has(g)) return;
  const gd = fs.group(g);
  const blk = blockBitmap(gd, fs.descSize);
  if (fs.features.metadataCsum) {
    const want = expectedBlockBitmapCsum(fs, bitmap);
    const have = blockBitmapCsum(gd, fs.descSize);
    if (want !== have) {
      throw fsCorrupted(fs, { block: blk, crc: true, what: `Block bitmap of group ${g} checksum is 0x${have.toString(16)}, expected 0x${want.toString(16)}` });
    }
  }
  forEachZoneInGroup(fs, g, (from, to) => {
    if (!allSet(bitmap, from, to)) {
      throw fsCorrupted(fs, { block: blk, what: `Block bitmap of group ${g} marks metadata blocks ${from}..${to - 1} of the group free` });
    }
  });
  done.add(g);
}

/**
 * Commit-section helper: make `bitmap` (the group's held bitmap buffer) valid. A
 * BLOCK_UNINIT group gets its bitmap built and the flag cleared (the caller dirties the
 * bitmap and descriptor); any other group's bitmap is verified. Returns true if it built.
 */
function prepareBlockBitmap(fs: Ext4Fs, g: number, bitmap: Uint8Array): boolean {
  const gd = fs.group(g);
  if (!blockBitmapUninit(fs, gd)) {
    verifyBlockBitmap(fs, g, bitmap);
    return false;
  }
  const free = initBlockBitmap(fs, g, bitmap);
  const counted = gdFreeBlocks(gd, fs.descSize);
  if (free !== counted) {
    throw fsCorrupted(fs, { block: blockBitmap(gd, fs.descSize), what: `Group ${g} is BLOCK_UNINIT with ${counted} free blocks, but its metadata leaves ${free}` });
  }
  gd.bg_flags &= ~EXT4_BG_BLOCK_UNINIT;
  setBlockBitmapCsum(fs, gd, bitmap);
  groupSet(verifiedBlockBitmaps, fs).add(g);
  return true;
}

/** Held buffers of one group for a commit section. */
export interface GroupBuffers {
  readonly g: number;
  readonly descBlock: Uint8Array;
  readonly bitmap: Uint8Array;
  readonly bitmapBlock: number;
}

/** Load phase: pin group `g`'s descriptor block and block bitmap through `h`. */
export async function loadBlockGroup(h: Handle, g: number): Promise<GroupBuffers> {
  const descBlock = await loadGroupDescBlock(h, g);
  const bitmapBlock = blockBitmap(h.fs.group(g), h.fs.descSize);
  const bitmap = await h.getWriteAccess(bitmapBlock);
  return { g, descBlock, bitmap, bitmapBlock };
}

/**
 * Commit-section helper: make the held bitmap valid; a BLOCK_UNINIT group's bitmap is
 * built, the flag cleared and both blocks dirtied at once, so a later failure in the
 * same commit cannot leave the in-core descriptor ahead of its buffers. Also used by
 * ialloc, as __ext4_new_inode initialises the block bitmap of the group it puts an
 * inode in. Synchronous.
 */
export function commitInitBlockBitmap(h: Handle, b: GroupBuffers): void {
  if (prepareBlockBitmap(h.fs, b.g, b.bitmap)) {
    h.dirtyMetadata(b.bitmapBlock);
    commitGroupDesc(h, b.g, b.descBlock);
  }
}

// ---------------------------------------------------------------------------------------
// Allocation

/**
 * Clusters the request must leave free, from its funding alone (the seed rule: nothing on
 * the inode or volume decides it). @kernel ext4_has_free_clusters, ext4_claim_free_clusters
 * - chargeNow/enforce (xattr blocks, directory blocks, nodelalloc data): every delalloc
 *   reservation (dirtyClusters), the root reserve and the emergency pool;
 * - chargeNow/nofail (tree blocks while writeback maps reserved data): the reservations
 *   only; it may dip into the root reserve and the pool (EXT4_MB_USE_RESERVED);
 * - delalloc: nothing. write() already took these clusters out of the free count by
 *   raising dirtyClusters; the kernel skips the test for EXT4_MB_DELALLOC_RESERVED.
 */
function reserveFor(fs: Ext4Fs, req: AllocRequest): number {
  const f = req.funding;
  switch (f.kind) {
    case "chargeNow":
      return f.quota === "enforce" ? fs.dirtyClusters + rBlocksCount(fs.sb) + fs.resvClusters : fs.dirtyClusters;
    case "delalloc":
      assert(req.len <= f.reservation, () => `Delalloc request for ${req.len} blocks draws on a reservation of ${f.reservation}`);
      return 0;
  }
}

/**
 * Admission (synchronous): how many blocks the request may take now, at most req.len.
 * Throws ENOSPC when fewer than req.minLen are available to this funding.
 * @kernel ext4_has_free_clusters
 */
function admit(fs: Ext4Fs, req: AllocRequest): number {
  reconcileFreeCounts(fs);
  const avail = sbFreeBlocks(fs.sb) - reserveFor(fs, req);
  if (avail < req.minLen) throw enospc(fs, req);
  return Math.min(req.len, avail);
}

function enospc(fs: Ext4Fs, req: AllocRequest): FsError {
  const free = sbFreeBlocks(fs.sb);
  return new FsError("ENOSPC", `Cannot allocate ${req.minLen === req.len ? req.len : `${req.minLen}..${req.len}`} block(s) for ${req.purpose}: ${free} free, ${reserveFor(fs, req)} reserved`, req.ino > 0 ? { ino: req.ino } : {});
}

/** Groups per flex group (1 without flex_bg). @kernel ext4_flex_bg_size */
export function flexSize(fs: Ext4Fs): number {
  return fs.features.flexBg ? 2 ** fs.sb.s_log_groups_per_flex : 1;
}

/**
 * The block to search from: the request's goal if it is inside the volume, else the
 * start of the owner's group. With flex groups of 4 or more, data starts in the flex
 * group's second group and everything else in its first.
 * @kernel ext4_inode_to_goal_block, goal check in ext4_mb_new_blocks
 */
function goalBlock(fs: Ext4Fs, req: AllocRequest): number {
  const first = fs.sb.s_first_data_block;
  if (req.goal > first && req.goal < fs.blocksCount) return req.goal;
  if (req.ino < 1 || req.ino > fs.inodesCount) return first;
  let g = Math.floor((req.ino - 1) / fs.inodesPerGroup);
  const flex = flexSize(fs);
  if (flex >= 4 && req.purpose !== "xattrBlock") {
    g -= g % flex;
    if (req.purpose === "data" && g + 1 < fs.groupCount) g++;
  }
  return groupFirstBlock(fs.sb, g);
}

/**
 * The run to take in one group, given `maxLen` (admitted) and `need` (the shortest
 * acceptable): the run exactly at `goalBit` if it is full length, else the first
 * full-length run at or after it, else the first in the group, else the longest.
 */
function searchGroup(bitmap: Uint8Array, n: number, goalBit: number, maxLen: number, need: number): BitRun | null {
  const candidates: (BitRun | null)[] = [];
  if (goalBit > 0 && goalBit < n) {
    const atGoal = zeroRunLength(bitmap, goalBit, n, maxLen);
    if (atGoal >= maxLen) return { start: goalBit, length: maxLen };
    candidates.push({ start: goalBit, length: atGoal });
    const after = findZeroRun(bitmap, goalBit, n, maxLen);
    if (after !== null && after.length >= maxLen) return after;
    candidates.push(after);
  }
  candidates.push(findZeroRun(bitmap, 0, n, maxLen));
  let best: BitRun | null = null;
  for (const c of candidates) if (c !== null && (best === null || c.length > best.length)) best = c;
  return best !== null && best.length > 0 && best.length >= need ? best : null;
}

/**
 * COMMIT (synchronous): admission, search, mark, count, checksum. Returns null when the
 * group has no acceptable run (a BLOCK_UNINIT group is still initialised and committed).
 * @kernel ext4_mb_mark_diskspace_used
 */
function commitNewBlocks(h: Handle, b: GroupBuffers, req: AllocRequest, goalBit: number, wantFull: boolean): BlockExtent | null {
  const fs = h.fs;
  // Free space first (ENOSPC), then quota (EDQUOT, or the grant shrinks to the room left),
  // in ext4_mb_new_blocks's order; both from the request alone.
  const maxLen = Math.min(admit(fs, req), quotaGrantCap(fs, req));
  commitInitBlockBitmap(h, b);
  const gd = fs.group(b.g);
  const n = blocksInGroup(fs, b.g);
  const run = searchGroup(b.bitmap, n, goalBit, maxLen, wantFull ? maxLen : req.minLen);
  if (run === null) return null;
  const first = groupFirstBlock(fs.sb, b.g);
  const pblk = first + run.start;
  const len = run.length;
  // Boundary checks: what the search found must be free data space.
  assert(len >= req.minLen && len <= req.len, () => `Allocated ${len} blocks for a request of ${req.minLen}..${req.len}`);
  assert(pblk >= fs.sb.s_first_data_block && pblk + len <= fs.blocksCount && run.start + len <= n, () => `Allocated blocks ${pblk}+${len} outside group ${b.g} or the volume`);
  assert(allClear(b.bitmap, run.start, run.start + len), () => `Allocated blocks ${pblk}+${len} were not all free`);
  if (overlapsSystemZone(fs, pblk, len)) {
    throw fsCorrupted(fs, { block: pblk, what: `Block bitmap of group ${b.g} marks metadata free: allocating ${pblk}..${pblk + len - 1} would overlap it` });
  }
  const groupFree = gdFreeBlocks(gd, fs.descSize);
  if (groupFree < len) {
    throw fsCorrupted(fs, { block: b.bitmapBlock, what: `Group ${b.g} has ${groupFree} free blocks in its descriptor but more clear bits in its bitmap` });
  }
  const sbFree = sbFreeBlocks(fs.sb);
  assert(sbFree >= len, () => `s_free_blocks_count ${sbFree} would go negative allocating ${len}`); // admit() guaranteed it
  chargeGrantedBlocks(fs, req, len); // by req.funding; cannot fail (capped above)
  setBits(b.bitmap, run.start, run.start + len);
  setGdFreeBlocks(gd, groupFree - len, fs.descSize);
  setSbFreeBlocks(fs.sb, sbFree - len);
  setBlockBitmapCsum(fs, gd, b.bitmap);
  h.dirtyMetadata(b.bitmapBlock);
  commitGroupDesc(h, b.g, b.descBlock);
  return { pblk, len };
}

const corruptGroups = new WeakMap<Ext4Fs, Set<number>>();

/** Is `e` a corruption report (already counted by fsCorrupted)? */
function isCorruption(e: unknown): e is FsError {
  return e instanceof FsError && (e.code === "EFSCORRUPTED" || e.code === "EFSBADCRC");
}

/**
 * Allocate between req.minLen and req.len contiguous blocks for `req`, near its goal.
 * Search order: the goal group (a run starting exactly at the goal first), then the
 * following groups, wrapping; first for a full-length run, then for any run of at least
 * minLen. Groups whose bitmap is corrupt are skipped for the rest of the mount, as the
 * kernel marks them.
 *
 * Funding (req.funding only): see reserveFor. Throws ENOSPC when no run fits. The handle ends up holding the bitmap and descriptor
 * blocks it changed. Quota: the grant is charged to req.dquots in the commit that marks it
 * (chargeNow/enforce: EDQUOT, or fewer blocks down to req.minLen; nofail: never refused;
 * delalloc: not here, writeback's claim converts write()'s reservation).
 * @kernel ext4_mb_new_blocks (simplified: no buddy, no preallocation)
 */
export async function ext4NewBlocks(h: Handle, req: AllocRequest): Promise<BlockExtent> {
  const fs = h.fs;
  assertNoBigalloc(fs);
  admit(fs, req); // fail fast; the authoritative test is repeated in each commit
  quotaGrantCap(fs, req); // EDQUOT fast too
  const goal = goalBlock(fs, req);
  const goalGroup = Math.min(groupOfBlock(fs, goal), fs.groupCount - 1);
  const goalBit = goal - groupFirstBlock(fs.sb, goalGroup);
  const bad = groupSet(corruptGroups, fs);
  const passes = req.minLen < req.len ? [true, false] : [true];
  for (const wantFull of passes) {
    for (let i = 0; i < fs.groupCount; i++) {
      const g = (goalGroup + i) % fs.groupCount;
      const gd = fs.group(g);
      if (bad.has(g) || gdFreeBlocks(gd, fs.descSize) < (wantFull ? req.len : req.minLen)) continue;
      if (wantFull && !blockBitmapUninit(fs, gd) && !(await mayHoldRun(fs, g, req.len))) continue;
      let got: BlockExtent | null;
      try {
        const b = await loadBlockGroup(h, g);
        // Between loading and committing, other operations may run (the seed's window):
        // the commit decides everything again from the request alone.
        const p = h.point(`alloc:${req.purpose}`);
        if (p !== undefined) await p;
        got = commitNewBlocks(h, b, req, g === goalGroup ? goalBit : 0, wantFull);
      } catch (e) {
        if (!(isCorruption(e) && isBitmapProblem(fs, g, e))) throw e;
        bad.add(g); // reported (and counted) by fsCorrupted; the kernel also skips the group
        continue;
      }
      if (got !== null) return got;
    }
  }
  admit(fs, req); // report the reserve-aware reason if admission is what fails now
  throw new FsError("ENOSPC", `Cannot allocate ${req.minLen} contiguous block(s) for ${req.purpose}: free space is fragmented or taken`, req.ino > 0 ? { ino: req.ino } : {});
}

/** Did this corruption report come from group g's block bitmap (skip the group) rather than elsewhere? */
function isBitmapProblem(fs: Ext4Fs, g: number, e: FsError): boolean {
  return e.detail.block === blockBitmap(fs.group(g), fs.descSize);
}

/**
 * A peek without pinning, for the full-length pass: does the group's bitmap (as cached
 * now) hold a clear run of `len`? Advisory only; the commit searches again.
 */
async function mayHoldRun(fs: Ext4Fs, g: number, len: number): Promise<boolean> {
  const data = await fs.cache.get(blockBitmap(fs.group(g), fs.descSize));
  const r = findZeroRun(data, 0, blocksInGroup(fs, g), len);
  return r !== null && r.length >= len;
}

// ---------------------------------------------------------------------------------------
// Freeing

/**
 * COMMIT (synchronous): clear [bit, bit + count) in one group after checking every bit
 * was set, then raise the counts and fix the checksums.
 */
function commitFreeBlocks(h: Handle, b: GroupBuffers, ino: number, bit: number, count: number, dquots: InodeDquots | null): void {
  const fs = h.fs;
  reconcileFreeCounts(fs);
  commitInitBlockBitmap(h, b);
  const gd = fs.group(b.g);
  const pblk = groupFirstBlock(fs.sb, b.g) + bit;
  const clear = findNextZero(b.bitmap, bit, bit + count);
  if (clear !== -1) {
    const at = pblk + clear - bit;
    throw fsCorrupted(fs, { ino, block: at, what: `Freeing already free block ${at} (group ${b.g}); block bitmap corrupt` });
  }
  const groupFree = gdFreeBlocks(gd, fs.descSize) + count;
  if (groupFree > blocksInGroup(fs, b.g)) {
    throw fsCorrupted(fs, { ino, block: b.bitmapBlock, what: `Group ${b.g} would have ${groupFree} free blocks, more than it holds` });
  }
  const sbFree = sbFreeBlocks(fs.sb) + count;
  assert(sbFree <= fs.blocksCount, () => `s_free_blocks_count ${sbFree} would exceed the block count`);
  clearBits(b.bitmap, bit, bit + count);
  setGdFreeBlocks(gd, groupFree, fs.descSize);
  setSbFreeBlocks(fs.sb, sbFree);
  unchargeFreedBlocks(fs, dquots, count);
  setBlockBitmapCsum(fs, gd, b.bitmap);
  h.dirtyMetadata(b.bitmapBlock);
  commitGroupDesc(h, b.g, b.descBlock);
}

/**
 * Free `count` blocks from `pblk`, owned by inode `ino` (0: no owner). The range may
 * span groups; each group's part is one commit. A range outside the data area or
 * overlapping volume metadata, or a block already free, is reported as corruption
 * (EFSCORRUPTED) before that group changes. Blocks are reusable at once (no journal
 * yet: with one, only after the freeing transaction commits). `dquots` (null: the blocks
 * were never charged) is uncharged in each group's commit, with the bitmap change.
 * @kernel ext4_free_blocks (mballoc.c)
 */
export async function ext4FreeBlocks(h: Handle, ino: number, pblk: number, count: number, dquots: InodeDquots | null = null): Promise<void> {
  const fs = h.fs;
  assertNoBigalloc(fs);
  assert(Number.isSafeInteger(count) && count >= 1, () => `Invalid block count ${count} to free`);
  if (!Number.isSafeInteger(pblk) || pblk < fs.sb.s_first_data_block || pblk + count > fs.blocksCount) {
    throw fsCorrupted(fs, { ino, block: pblk, what: `Freeing blocks ${pblk}..${pblk + count - 1} outside the data area (volume of ${fs.blocksCount} blocks)` });
  }
  if (overlapsSystemZone(fs, pblk, count)) {
    throw fsCorrupted(fs, { ino, block: pblk, what: `Freeing blocks ${pblk}..${pblk + count - 1} that overlap filesystem metadata` });
  }
  let at = pblk;
  let left = count;
  while (left > 0) {
    const g = groupOfBlock(fs, at);
    const bit = at - groupFirstBlock(fs.sb, g);
    const n = Math.min(left, blocksInGroup(fs, g) - bit);
    const b = await loadBlockGroup(h, g);
    commitFreeBlocks(h, b, ino, bit, n, dquots);
    at += n;
    left -= n;
  }
}

// ---------------------------------------------------------------------------------------
// The invariant checker (debug level 2; call only when no operation is in flight)

/**
 * Check the allocation invariants of design note §5 Q2 on a quiescent volume: per group,
 * bg_free_blocks_count = clear bits of the block bitmap (built for BLOCK_UNINIT groups),
 * metadata marked in use, bitmap checksums right; bg_free_inodes_count = clear bits of
 * the inode bitmap (all free for INODE_UNINIT), no inode in use inside the
 * bg_itable_unused tail, bg_itable_unused <= bg_free_inodes_count, reserved inodes in
 * use; each descriptor block holds its in-core descriptor with a right checksum; the
 * superblock's free counts are the sums. Returns one line per violation (empty: all hold).
 */
export async function checkAllocationInvariants(fs: Ext4Fs): Promise<string[]> {
  const out: string[] = [];
  const ds = fs.descSize;
  const csum = hasGroupDescCsum(fs);
  const scratch = new Uint8Array(fs.blockSize);
  let sumBlocks = 0;
  let sumInodes = 0;
  for (let g = 0; g < fs.groupCount; g++) {
    const gd = fs.group(g);
    const n = blocksInGroup(fs, g);
    const freeB = gdFreeBlocks(gd, ds);
    const freeI = gdFreeInodes(gd, ds);
    sumBlocks += freeB;
    sumInodes += freeI;
    // Block bitmap.
    if (blockBitmapUninit(fs, gd)) {
      const built = initBlockBitmap(fs, g, scratch);
      if (built !== freeB) out.push(`group ${g}: BLOCK_UNINIT with bg_free_blocks_count ${freeB}, but its metadata leaves ${built}`);
    } else {
      const bm = await fs.cache.get(blockBitmap(gd, ds));
      const zeros = countZeros(bm, 0, n);
      if (zeros !== freeB) out.push(`group ${g}: bg_free_blocks_count ${freeB}, block bitmap has ${zeros} free`);
      if (fs.features.metadataCsum) {
        const want = expectedBlockBitmapCsum(fs, bm);
        const have = blockBitmapCsum(gd, ds);
        if (want !== have) out.push(`group ${g}: block bitmap checksum 0x${have.toString(16)}, expected 0x${want.toString(16)}`);
      }
      forEachZoneInGroup(fs, g, (from, to) => {
        if (!allSet(bm, from, to)) out.push(`group ${g}: metadata blocks ${from}..${to - 1} (group-relative) marked free`);
      });
    }
    // Inode bitmap.
    const ipg = fs.inodesPerGroup;
    const unused = csum ? itableUnused(gd, ds) : 0;
    if (csum && unused > freeI) out.push(`group ${g}: bg_itable_unused ${unused} > bg_free_inodes_count ${freeI}`);
    if (inodeBitmapUninit(fs, gd)) {
      if (freeI !== ipg) out.push(`group ${g}: INODE_UNINIT with bg_free_inodes_count ${freeI}, expected ${ipg}`);
    } else {
      const ib = await fs.cache.get(inodeBitmap(gd, ds));
      const zeros = countZeros(ib, 0, ipg);
      if (zeros !== freeI) out.push(`group ${g}: bg_free_inodes_count ${freeI}, inode bitmap has ${zeros} free`);
      if (unused > 0 && !allClear(ib, ipg - unused, ipg)) out.push(`group ${g}: inode in use inside the bg_itable_unused tail (${unused})`);
      if (fs.features.metadataCsum) {
        const want = expectedInodeBitmapCsum(fs, ib);
        const have = inodeBitmapCsum(gd, ds);
        if (want !== have) out.push(`group ${g}: inode bitmap checksum 0x${have.toString(16)}, expected 0x${want.toString(16)}`);
      }
      const reservedEnd = Math.min(ipg, Math.max(0, firstIno(fs.sb) - 1 - g * ipg));
      if (reservedEnd > 0 && !allSet(ib, 0, reservedEnd)) out.push(`group ${g}: a reserved inode below s_first_ino is marked free`);
    }
    // Descriptor bytes agree with the in-core record and carry a right checksum.
    const { block, offset } = fs.groupDescPlace(g);
    const raw = (await fs.cache.get(block)).subarray(offset, offset + ds);
    const onDisk = groupDesc.decode(raw, 0, ds);
    if (gdFreeBlocks(onDisk, ds) !== freeB || gdFreeInodes(onDisk, ds) !== freeI || onDisk.bg_flags !== gd.bg_flags) {
      out.push(`group ${g}: descriptor block differs from the in-core descriptor`);
    }
    if (csum) {
      const want = groupDescChecksum(raw, g, { csumSeed: fs.csumSeed, uuid: fs.sb.s_uuid, metadataCsum: fs.features.metadataCsum, gdtCsum: fs.features.gdtCsum, descSize: ds, is64bit: fs.features.is64bit });
      if (want !== onDisk.bg_checksum) out.push(`group ${g}: descriptor checksum 0x${onDisk.bg_checksum.toString(16)}, expected 0x${want.toString(16)}`);
    }
  }
  const sbB = sbFreeBlocks(fs.sb);
  if (sbB !== sumBlocks) out.push(`s_free_blocks_count ${sbB}, groups sum to ${sumBlocks}`);
  if (fs.sb.s_free_inodes_count !== sumInodes) out.push(`s_free_inodes_count ${fs.sb.s_free_inodes_count}, groups sum to ${sumInodes}`);
  return out;
}
