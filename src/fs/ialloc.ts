/**
 * Inode allocation and freeing on the inode bitmaps (@kernel __ext4_new_inode (its bitmap
 * part), find_group_orlov, find_group_other, ext4_free_inode, ext4_read_inode_bitmap;
 * fs/ext4/ialloc.c).
 *
 * Placement follows the kernel: directories are spread with the Orlov allocator
 * (top-level directories start from the name's hash, or a seeded pseudo-random group,
 * and go to flex groups with above-average free inodes and blocks and the fewest
 * directories; deeper directories stay near their parent unless it is crowded); other
 * inodes go to the parent's (flex) group, then quadratic-hash probing, then a linear scan.
 * The in-core i_last_alloc_group hint and the no-journal "recently deleted" check are not
 * modelled.
 *
 * As in balloc.ts, each allocation has a load phase (awaits: pin the descriptor block and
 * the bitmaps) and a synchronous commit phase (`commit*`) that searches and applies every
 * change at once: the inode bitmap bit, INODE_UNINIT / BLOCK_UNINIT initialisation,
 * bg_free_inodes_count, bg_used_dirs_count, bg_itable_unused, the bitmap and descriptor
 * checksums, and the in-core s_free_inodes_count (written by commitSuper at sync).
 *
 * Invariants: inodes below s_first_ino are never handed out (the root directory is made by
 * mkfs, never here); bg_itable_unused only shrinks, and never past an inode in use.
 */

import { assert } from "../debug/assert.js";
import { FsError } from "../errors.js";
import { DX_HASH_HALF_MD4, dirhash } from "../format/dirhash.js";
import {
  EXT4_BG_INODE_UNINIT,
  EXT4_BG_INODE_ZEROED,
  freeBlocksCount as gdFreeBlocks,
  freeInodesCount as gdFreeInodes,
  inodeBitmap,
  inodeBitmapCsum,
  itableUnused,
  setFreeInodesCount,
  setItableUnused,
  setUsedDirsCount,
  usedDirsCount,
} from "../format/group_desc.js";
import { EXT4_ROOT_INO, EXT4_TOPDIR_FL, S_IFDIR, S_IFMT } from "../format/inode.js";
import { firstIno, freeBlocksCount as sbFreeBlocks } from "../format/superblock.js";
import {
  blockBitmapUninit,
  commitInitBlockBitmap,
  expectedInodeBitmapCsum,
  flexSize,
  hasGroupDescCsum,
  inodeBitmapUninit,
  loadBlockGroup,
  reconcileFreeCounts,
  setInodeBitmapCsum,
  type GroupBuffers,
} from "./balloc.js";
import { clearBit, findNextZero, markBitmapEnd, setBit, testBit } from "./bitmap.js";
import type { Handle } from "./handle.js";
import type { InodeDquots } from "./quota.js";
import { chargeInode, unchargeInode } from "./quota_charge.js";
import { iget, inodeLocation } from "./inode.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";
import { commitGroupDesc, loadGroupDescBlock } from "./group.js";

export interface NewInodeOptions {
  /**
   * The new entry's name: a top-level directory starts its search at the name's
   * half-MD4 hash, as the kernel does with the dentry name.
   */
  readonly name?: Uint8Array;
  /** Seed for the start group of a top-level directory made without a name (deterministic tests). */
  readonly seed?: number;
  /**
   * Whom the new inode is charged to (its owner's dquots, loaded by the caller from the ids
   * it will give the inode); null or absent: nobody (no quota). Charged in the commit that
   * takes the bit; EDQUOT there changes nothing.
   */
  readonly dquots?: InodeDquots | null;
}

// ---------------------------------------------------------------------------------------
// Placement (synchronous: reads in-core descriptors and counters only)

/** mulberry32: a small deterministic generator; one draw in [0, 1). */
function draw(seed: number): number {
  let t = (seed + 0x6d2b79f5) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
}

/** Per-volume generator state for unnamed top-level directories without a seed. */
const rngState = new WeakMap<Ext4Fs, number>();

function nextRandom(fs: Ext4Fs): number {
  const s = rngState.get(fs) ?? (fs.hashSeed[0] ?? 0) >>> 0;
  rngState.set(fs, (s + 0x9e3779b9) >>> 0);
  return draw(s);
}

interface OrlovStats {
  freeInodes: number;
  freeBlocks: number;
  usedDirs: number;
}

/** Totals over flex group `fg` (a single group when flex = 1). @kernel get_orlov_stats */
function orlovStats(fs: Ext4Fs, fg: number, flex: number): OrlovStats {
  const s: OrlovStats = { freeInodes: 0, freeBlocks: 0, usedDirs: 0 };
  for (let g = fg * flex; g < Math.min(fs.groupCount, (fg + 1) * flex); g++) {
    const gd = fs.group(g);
    s.freeInodes += gdFreeInodes(gd, fs.descSize);
    s.freeBlocks += gdFreeBlocks(gd, fs.descSize);
    s.usedDirs += usedDirsCount(gd, fs.descSize);
  }
  return s;
}

function hasFreeInodes(fs: Ext4Fs, g: number): boolean {
  return gdFreeInodes(fs.group(g), fs.descSize) > 0;
}

/** The first group of flex group `fg` with a free inode, or -1. */
function firstGroupWithInodes(fs: Ext4Fs, fg: number, flex: number): number {
  for (let g = fg * flex; g < Math.min(fs.groupCount, (fg + 1) * flex); g++) if (hasFreeInodes(fs, g)) return g;
  return -1;
}

/**
 * The group to start a directory's (or, from findGroupOther, a crowded flex group's)
 * inode search in; -1 when no group has a free inode.
 * @kernel find_group_orlov
 */
function findGroupOrlov(fs: Ext4Fs, parentIno: number, topDir: boolean, start: () => number): number {
  const flex = flexSize(fs);
  const ngroups = Math.ceil(fs.groupCount / flex);
  const parentGroup = Math.floor((parentIno - 1) / fs.inodesPerGroup);
  const freei = fs.sb.s_free_inodes_count;
  const freec = sbFreeBlocks(fs.sb);
  const avefreei = Math.floor(freei / ngroups);
  const avefreec = Math.floor(freec / ngroups);
  if (topDir) {
    const first = start() % ngroups;
    let best = -1;
    let bestDirs = fs.inodesPerGroup;
    for (let i = 0; i < ngroups; i++) {
      const fg = (first + i) % ngroups;
      const st = orlovStats(fs, fg, flex);
      if (st.freeInodes === 0 || st.usedDirs >= bestDirs || st.freeInodes < avefreei || st.freeBlocks < avefreec) continue;
      best = fg;
      bestDirs = st.usedDirs;
    }
    if (best >= 0) {
      const g = firstGroupWithInodes(fs, best, flex);
      if (g >= 0) return g;
    }
  } else {
    let ndirs = 0;
    for (let g = 0; g < fs.groupCount; g++) ndirs += usedDirsCount(fs.group(g), fs.descSize);
    const maxDirs = Math.floor(ndirs / ngroups) + Math.floor((fs.inodesPerGroup * flex) / 16);
    const minInodes = Math.max(1, avefreei - Math.floor((fs.inodesPerGroup * flex) / 4));
    const minBlocks = Math.max(0, avefreec - Math.floor((fs.blocksPerGroup * flex) / 4));
    const pfg = Math.floor(parentGroup / flex);
    for (let i = 0; i < ngroups; i++) {
      const fg = (pfg + i) % ngroups;
      const st = orlovStats(fs, fg, flex);
      if (st.usedDirs >= maxDirs || st.freeInodes < minInodes || st.freeBlocks < minBlocks) continue;
      const g = firstGroupWithInodes(fs, fg, flex);
      if (g >= 0) return g;
      break; // the kernel falls back here too
    }
  }
  // Fallback: any group with at least the average free inodes, then any with one.
  const avg = Math.floor(freei / fs.groupCount);
  for (const threshold of avg > 0 ? [avg, 1] : [1]) {
    for (let i = 0; i < fs.groupCount; i++) {
      const g = (parentGroup + i) % fs.groupCount;
      const free = gdFreeInodes(fs.group(g), fs.descSize);
      if (free > 0 && free >= threshold) return g;
    }
  }
  return -1;
}

/**
 * The group to start a non-directory's inode search in; -1 when none has a free inode.
 * @kernel find_group_other
 */
function findGroupOther(fs: Ext4Fs, parentIno: number): number {
  const ngroups = fs.groupCount;
  const parentGroup = Math.floor((parentIno - 1) / fs.inodesPerGroup);
  const flex = flexSize(fs);
  if (flex > 1) {
    const g = firstGroupWithInodes(fs, Math.floor(parentGroup / flex), flex);
    if (g >= 0) return g;
    return findGroupOrlov(fs, parentIno, false, () => 0);
  }
  const usable = (g: number): boolean => {
    const gd = fs.group(g);
    return gdFreeInodes(gd, fs.descSize) > 0 && gdFreeBlocks(gd, fs.descSize) > 0;
  };
  if (usable(parentGroup)) return parentGroup;
  // Files of one directory land together; directories sharing a group spread apart.
  let g = (parentGroup + parentIno) % ngroups;
  for (let i = 1; i < ngroups; i <<= 1) {
    g += i;
    if (g >= ngroups) g -= ngroups;
    if (usable(g)) return g;
  }
  g = parentGroup;
  for (let i = 0; i < ngroups; i++) {
    if (++g >= ngroups) g = 0;
    if (hasFreeInodes(fs, g)) return g;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------
// Inode bitmaps

const verifiedInodeBitmaps = new WeakMap<Ext4Fs, Set<number>>();

/**
 * Commit-section helper: make group `g`'s held inode bitmap valid. INODE_UNINIT: all
 * free, padding set (the caller clears the flag when it takes an inode). Otherwise its
 * checksum is verified once per mount. @kernel ext4_read_inode_bitmap
 */
function prepareInodeBitmap(fs: Ext4Fs, g: number, bitmap: Uint8Array, block: number): void {
  if (inodeBitmapUninit(fs, fs.group(g))) {
    bitmap.fill(0, 0, fs.blockSize);
    markBitmapEnd(bitmap, fs.inodesPerGroup, fs.blockSize * 8);
    return;
  }
  let done = verifiedInodeBitmaps.get(fs);
  if (done === undefined) {
    done = new Set();
    verifiedInodeBitmaps.set(fs, done);
  }
  if (done.has(g)) return;
  if (fs.features.metadataCsum) {
    const gd = fs.group(g);
    const want = expectedInodeBitmapCsum(fs, bitmap);
    const have = inodeBitmapCsum(gd, fs.descSize);
    if (want !== have) throw fsCorrupted(fs, { block, crc: true, what: `Inode bitmap of group ${g} checksum is 0x${have.toString(16)}, expected 0x${want.toString(16)}` });
  }
  done.add(g);
}

interface InodeGroupBuffers {
  readonly g: number;
  readonly descBlock: Uint8Array;
  readonly bitmap: Uint8Array;
  readonly bitmapBlock: number;
  /** The block bitmap too, when it is still BLOCK_UNINIT (initialised with the first inode). */
  readonly blocks: GroupBuffers | null;
}

/** Load phase: pin what an inode allocation or free in group `g` may change. */
async function loadInodeGroup(h: Handle, g: number, withBlockBitmap: boolean): Promise<InodeGroupBuffers> {
  const fs = h.fs;
  const descBlock = await loadGroupDescBlock(h, g);
  const bitmapBlock = inodeBitmap(fs.group(g), fs.descSize);
  const bitmap = await h.getWriteAccess(bitmapBlock);
  const blocks = withBlockBitmap && blockBitmapUninit(fs, fs.group(g)) ? await loadBlockGroup(h, g) : null;
  return { g, descBlock, bitmap, bitmapBlock, blocks };
}

/** What the commit decided: the inode and whether its table slot was never initialised. */
interface Taken {
  readonly ino: number;
  readonly zeroSlot: boolean;
}

/**
 * COMMIT (synchronous): take the first free inode of the group (at or after s_first_ino),
 * or return null. @kernel __ext4_new_inode (from find_inode_bit to ext4_group_desc_csum_set)
 */
function commitNewInode(h: Handle, b: InodeGroupBuffers, isDir: boolean, dquots: InodeDquots | null): Taken | null {
  const fs = h.fs;
  const g = b.g;
  const ipg = fs.inodesPerGroup;
  reconcileFreeCounts(fs);
  prepareInodeBitmap(fs, g, b.bitmap, b.bitmapBlock);
  const gd = fs.group(g);
  const from = Math.max(0, firstIno(fs.sb) - 1 - g * ipg);
  if (from >= ipg || gdFreeInodes(gd, fs.descSize) === 0) return null;
  const bit = findNextZero(b.bitmap, from, ipg);
  if (bit === -1) return null;
  const groupFree = gdFreeInodes(gd, fs.descSize);
  const sbFree = fs.sb.s_free_inodes_count;
  if (sbFree === 0) throw fsCorrupted(fs, { what: `s_free_inodes_count is 0 but group ${g} has ${groupFree} free inodes` });
  // The quota charge is the last check (EDQUOT: nothing changed) and the first change.
  // @kernel __ext4_new_inode: dquot_alloc_inode (the kernel takes the bit first and frees
  // the inode again on EDQUOT; the outcome is the same)
  chargeInode(fs, dquots);
  // Decisions are made; from here on every change happens together.
  if (b.blocks !== null) commitInitBlockBitmap(h, b.blocks);
  assert(!testBit(b.bitmap, bit), () => `Inode bit ${bit} of group ${g} was set`);
  setBit(b.bitmap, bit);
  let zeroSlot = false;
  if (hasGroupDescCsum(fs)) {
    let used = ipg - itableUnused(gd, fs.descSize);
    if ((gd.bg_flags & EXT4_BG_INODE_UNINIT) !== 0) {
      gd.bg_flags &= ~EXT4_BG_INODE_UNINIT;
      used = 0;
    }
    if (bit + 1 > used) {
      setItableUnused(gd, ipg - (bit + 1), fs.descSize);
      zeroSlot = (gd.bg_flags & EXT4_BG_INODE_ZEROED) === 0;
    }
  }
  setFreeInodesCount(gd, groupFree - 1, fs.descSize);
  if (isDir) setUsedDirsCount(gd, usedDirsCount(gd, fs.descSize) + 1, fs.descSize);
  fs.sb.s_free_inodes_count = sbFree - 1;
  setInodeBitmapCsum(fs, gd, b.bitmap);
  h.dirtyMetadata(b.bitmapBlock);
  commitGroupDesc(h, g, b.descBlock);
  return { ino: g * ipg + bit + 1, zeroSlot };
}

/**
 * Allocate an inode number for a new inode of type `mode` (S_IFMT bits) in directory
 * `dirIno`, and mark it in use. The caller writes the inode. When the inode's table slot
 * lies in a never-used part of a table that was not zeroed (no EXT4_BG_INODE_ZEROED,
 * beyond the old bg_itable_unused mark), the slot is zeroed here, in the same handle, so
 * the caller always starts from zeros whatever mke2fs left there.
 * Throws ENOSPC when no group has a free inode, EDQUOT when `opts.dquots` refuse one more
 * inode (nothing changed either way).
 * @kernel __ext4_new_inode (inode bitmap and group descriptor part)
 */
export async function ext4NewInode(h: Handle, dirIno: number, mode: number, opts: NewInodeOptions = {}): Promise<number> {
  const fs = h.fs;
  assert(Number.isInteger(dirIno) && dirIno >= 1 && dirIno <= fs.inodesCount, () => `Parent inode ${dirIno} out of range`);
  reconcileFreeCounts(fs);
  const isDir = (mode & S_IFMT) === S_IFDIR;
  let start: number;
  if (isDir) {
    const topDir = dirIno === EXT4_ROOT_INO || ((await iget(fs, dirIno)).flags & EXT4_TOPDIR_FL) !== 0;
    const first = (): number => {
      if (opts.name !== undefined) return dirhash(opts.name, DX_HASH_HALF_MD4, fs.hashSeed).hash >>> 0;
      const r = opts.seed !== undefined ? draw(opts.seed >>> 0) : nextRandom(fs);
      return Math.floor(r * 2 ** 32);
    };
    start = findGroupOrlov(fs, dirIno, topDir, first);
  } else {
    start = findGroupOther(fs, dirIno);
  }
  if (start < 0) throw new FsError("ENOSPC", `Cannot allocate an inode in directory ${dirIno}: no free inodes`);
  for (let i = 0; i < fs.groupCount; i++) {
    const g = (start + i) % fs.groupCount;
    if (!hasFreeInodes(fs, g)) continue;
    const b = await loadInodeGroup(h, g, hasGroupDescCsum(fs));
    const taken = commitNewInode(h, b, isDir, opts.dquots ?? null);
    if (taken === null) continue;
    if (taken.zeroSlot) {
      // The number is ours now; nobody else reads or writes this slot meanwhile.
      const loc = inodeLocation(fs, taken.ino);
      const block = await h.getWriteAccess(loc.block);
      block.fill(0, loc.offset, loc.offset + fs.inodeSize);
      h.dirtyMetadata(loc.block);
    }
    return taken.ino;
  }
  throw new FsError("ENOSPC", `Cannot allocate an inode in directory ${dirIno}: no free inodes`);
}

/**
 * COMMIT (synchronous): clear the inode's bit after checking it was set; raise the free
 * count, lower the directory count, fix checksums. @kernel ext4_free_inode
 */
function commitFreeInode(h: Handle, b: InodeGroupBuffers, ino: number, isDir: boolean, dquots: InodeDquots | null): void {
  const fs = h.fs;
  const g = b.g;
  const bit = (ino - 1) % fs.inodesPerGroup;
  reconcileFreeCounts(fs);
  const gd = fs.group(g);
  if (inodeBitmapUninit(fs, gd)) throw fsCorrupted(fs, { ino, what: `Freeing inode ${ino} in group ${g}, whose inodes are all unused (INODE_UNINIT)` });
  prepareInodeBitmap(fs, g, b.bitmap, b.bitmapBlock);
  if (!testBit(b.bitmap, bit)) throw fsCorrupted(fs, { ino, block: b.bitmapBlock, what: `Bit already cleared for inode ${ino}` });
  const groupFree = gdFreeInodes(gd, fs.descSize) + 1;
  if (groupFree > fs.inodesPerGroup) throw fsCorrupted(fs, { ino, what: `Group ${g} would have ${groupFree} free inodes, more than it holds` });
  const dirs = usedDirsCount(gd, fs.descSize);
  if (isDir && dirs === 0) throw fsCorrupted(fs, { ino, what: `Freeing directory inode ${ino}, but group ${g} counts no directories` });
  assert(fs.sb.s_free_inodes_count < fs.inodesCount, "s_free_inodes_count would exceed the inode count");
  clearBit(b.bitmap, bit);
  setFreeInodesCount(gd, groupFree, fs.descSize);
  if (isDir) setUsedDirsCount(gd, dirs - 1, fs.descSize);
  fs.sb.s_free_inodes_count += 1;
  unchargeInode(fs, dquots);
  setInodeBitmapCsum(fs, gd, b.bitmap);
  h.dirtyMetadata(b.bitmapBlock);
  commitGroupDesc(h, g, b.descBlock);
}

/**
 * Release inode number `ino` (a directory when `isDir`, which lowers bg_used_dirs_count).
 * The caller has already cleared or will write the inode itself (i_dtime, links 0).
 * A reserved or out-of-range number, or an inode already free, is reported as
 * corruption (EFSCORRUPTED) and changes nothing. bg_itable_unused is left as it is, as
 * the kernel leaves it. `dquots` (the owner's, loaded by the caller; null: not charged) is
 * uncharged one inode in the commit that clears the bit. @kernel dquot_free_inode
 * @kernel ext4_free_inode
 */
export async function ext4FreeInode(h: Handle, ino: number, isDir: boolean, dquots: InodeDquots | null = null): Promise<void> {
  const fs = h.fs;
  if (!Number.isInteger(ino) || ino < firstIno(fs.sb) || ino > fs.inodesCount) {
    throw fsCorrupted(fs, { ino, what: `Freeing reserved or nonexistent inode ${ino}` });
  }
  const g = Math.floor((ino - 1) / fs.inodesPerGroup);
  const b = await loadInodeGroup(h, g, false);
  commitFreeInode(h, b, ino, isDir, dquots);
}
