/**
 * struct ext4_group_desc (fs/ext4/ext4.h; Documentation/filesystems/ext4/group_descr.rst)
 * and where each group's descriptor and superblock copy live.
 *
 * Descriptors are 32 bytes without the 64bit feature and s_desc_size (>= 64) with it.
 * Decode with `limit = descSize` so the `_hi` halves of a 32-byte descriptor read as
 * zero and are never written; the accessors also join a `_hi` half only when
 * descSize >= 64, as the kernel does.
 *
 * Layout (blockgroup.rst): classically the table follows the superblock's block in
 * group 0, with backups after each backup superblock. With meta_bg, groups from
 * s_first_meta_bg * descPerBlock on are split into meta groups of descPerBlock groups;
 * each meta group's single descriptor block sits in its first group (after the
 * superblock copy, if any), with backups in its second and last groups.
 */

import { assert } from "../debug/assert.js";
import { EXT4_FEATURE_COMPAT_SPARSE_SUPER2, EXT4_FEATURE_INCOMPAT_META_BG, EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER } from "./features.js";
import { defineStruct, split64, u16le, u32le, type FieldsOf } from "./struct.js";
import {
  EXT4_MIN_DESC_SIZE_64BIT, blockSize, descPerBlock, descSize, groupCount, groupDescBlockCount, groupFirstBlock,
  hasCompat, hasIncompat, hasRoCompat, superblockBlock, type Superblock,
} from "./superblock.js";

export const groupDesc = defineStruct("ext4_group_desc", 64, {
  bg_block_bitmap_lo: [0x0, u32le],
  bg_inode_bitmap_lo: [0x4, u32le],
  bg_inode_table_lo: [0x8, u32le],
  bg_free_blocks_count_lo: [0xc, u16le], // in clusters under bigalloc
  bg_free_inodes_count_lo: [0xe, u16le],
  bg_used_dirs_count_lo: [0x10, u16le],
  bg_flags: [0x12, u16le],
  bg_exclude_bitmap_lo: [0x14, u32le], // snapshots (e2fsprogs), unused by the kernel
  bg_block_bitmap_csum_lo: [0x18, u16le],
  bg_inode_bitmap_csum_lo: [0x1a, u16le],
  bg_itable_unused_lo: [0x1c, u16le], // never-used inodes at the end of the table
  bg_checksum: [0x1e, u16le], // crc16 (gdt_csum) or low 16 bits of crc32c (metadata_csum)
  // 64-byte descriptors only
  bg_block_bitmap_hi: [0x20, u32le],
  bg_inode_bitmap_hi: [0x24, u32le],
  bg_inode_table_hi: [0x28, u32le],
  bg_free_blocks_count_hi: [0x2c, u16le],
  bg_free_inodes_count_hi: [0x2e, u16le],
  bg_used_dirs_count_hi: [0x30, u16le],
  bg_itable_unused_hi: [0x32, u16le],
  bg_exclude_bitmap_hi: [0x34, u32le],
  bg_block_bitmap_csum_hi: [0x38, u16le],
  bg_inode_bitmap_csum_hi: [0x3a, u16le],
  bg_reserved: [0x3c, u32le],
});
export type GroupDesc = FieldsOf<typeof groupDesc>;

// bg_flags
export const EXT4_BG_INODE_UNINIT = 0x0001; // inode bitmap and table not initialized
export const EXT4_BG_BLOCK_UNINIT = 0x0002; // block bitmap not initialized
export const EXT4_BG_INODE_ZEROED = 0x0004; // inode table zeroed

/** Ends of the bitmap checksum halves: a descriptor shorter than these lacks the _hi half. */
export const EXT4_BG_BLOCK_BITMAP_CSUM_HI_END = 0x3a;
export const EXT4_BG_INODE_BITMAP_CSUM_HI_END = 0x3c;

/** bg_flags names as dumpe2fs prints them. */
export function describeBgFlags(flags: number): string[] {
  const out: string[] = [];
  if (flags & EXT4_BG_INODE_UNINIT) out.push("INODE_UNINIT");
  if (flags & EXT4_BG_BLOCK_UNINIT) out.push("BLOCK_UNINIT");
  if (flags & EXT4_BG_INODE_ZEROED) out.push("ITABLE_ZEROED");
  return out;
}

/** Decode one descriptor of `descSize` bytes at `offset`. */
export function decodeGroupDesc(buf: Uint8Array, offset: number, descSize: number): GroupDesc {
  return groupDesc.decode(buf, offset, descSize);
}

/** Patch one descriptor back; fields past `descSize` are left alone. */
export function encodeGroupDesc(gd: GroupDesc, buf: Uint8Array, offset: number, descSize: number): void {
  groupDesc.encode(gd, buf, offset, descSize);
}

const wide = (descSize: number): boolean => descSize >= EXT4_MIN_DESC_SIZE_64BIT;

/**
 * Join a block number. Unlike join64 this does not assert: a corrupt _hi can push the
 * value past 2^53, where it is imprecise but still beyond any valid block, so the
 * caller's range check reports corruption instead of this throwing an AssertionError.
 */
const joinBlock = (lo: number, hi: number, descSize: number): number => lo + (wide(descSize) ? hi * 2 ** 32 : 0);

/** @kernel ext4_block_bitmap */
export function blockBitmap(gd: GroupDesc, descSize: number): number {
  return joinBlock(gd.bg_block_bitmap_lo, gd.bg_block_bitmap_hi, descSize);
}

/** @kernel ext4_inode_bitmap */
export function inodeBitmap(gd: GroupDesc, descSize: number): number {
  return joinBlock(gd.bg_inode_bitmap_lo, gd.bg_inode_bitmap_hi, descSize);
}

/** First block of the group's inode table. @kernel ext4_inode_table */
export function inodeTable(gd: GroupDesc, descSize: number): number {
  return joinBlock(gd.bg_inode_table_lo, gd.bg_inode_table_hi, descSize);
}

const join16 = (lo: number, hi: number, descSize: number): number => lo + (wide(descSize) ? hi * 0x10000 : 0);

/** Free blocks, or free clusters under bigalloc. @kernel ext4_free_group_clusters */
export function freeBlocksCount(gd: GroupDesc, descSize: number): number {
  return join16(gd.bg_free_blocks_count_lo, gd.bg_free_blocks_count_hi, descSize);
}

/** @kernel ext4_free_inodes_count */
export function freeInodesCount(gd: GroupDesc, descSize: number): number {
  return join16(gd.bg_free_inodes_count_lo, gd.bg_free_inodes_count_hi, descSize);
}

/** @kernel ext4_used_dirs_count */
export function usedDirsCount(gd: GroupDesc, descSize: number): number {
  return join16(gd.bg_used_dirs_count_lo, gd.bg_used_dirs_count_hi, descSize);
}

/** @kernel ext4_itable_unused_count */
export function itableUnused(gd: GroupDesc, descSize: number): number {
  return join16(gd.bg_itable_unused_lo, gd.bg_itable_unused_hi, descSize);
}

/** crc32c of the block bitmap as stored (16 or 32 bits). */
export function blockBitmapCsum(gd: GroupDesc, descSize: number): number {
  const hi = descSize >= EXT4_BG_BLOCK_BITMAP_CSUM_HI_END ? gd.bg_block_bitmap_csum_hi : 0;
  return gd.bg_block_bitmap_csum_lo + hi * 0x10000;
}

/** crc32c of the inode bitmap as stored (16 or 32 bits). */
export function inodeBitmapCsum(gd: GroupDesc, descSize: number): number {
  const hi = descSize >= EXT4_BG_INODE_BITMAP_CSUM_HI_END ? gd.bg_inode_bitmap_csum_hi : 0;
  return gd.bg_inode_bitmap_csum_lo + hi * 0x10000;
}

function split32(n: number, descSize: number, what: string): { lo: number; hi: number } {
  const { lo, hi } = split64(n);
  assert(hi === 0 || wide(descSize), () => `${what} ${n} does not fit a ${descSize}-byte group descriptor`);
  return { lo, hi };
}

function split16(n: number, descSize: number, what: string): { lo: number; hi: number } {
  assert(Number.isInteger(n) && n >= 0 && n <= 0xffffffff, () => `${what} ${n} is not a u32`);
  const lo = n & 0xffff;
  const hi = Math.floor(n / 0x10000);
  assert(hi === 0 || wide(descSize), () => `${what} ${n} does not fit a ${descSize}-byte group descriptor`);
  return { lo, hi };
}

// Setters write the _hi half only for 64-byte descriptors, like the kernel's *_set.

/** @kernel ext4_block_bitmap_set */
export function setBlockBitmap(gd: GroupDesc, blk: number, descSize: number): void {
  const { lo, hi } = split32(blk, descSize, "Block bitmap");
  gd.bg_block_bitmap_lo = lo;
  if (wide(descSize)) gd.bg_block_bitmap_hi = hi;
}

/** @kernel ext4_inode_bitmap_set */
export function setInodeBitmap(gd: GroupDesc, blk: number, descSize: number): void {
  const { lo, hi } = split32(blk, descSize, "Inode bitmap");
  gd.bg_inode_bitmap_lo = lo;
  if (wide(descSize)) gd.bg_inode_bitmap_hi = hi;
}

/** @kernel ext4_inode_table_set */
export function setInodeTable(gd: GroupDesc, blk: number, descSize: number): void {
  const { lo, hi } = split32(blk, descSize, "Inode table");
  gd.bg_inode_table_lo = lo;
  if (wide(descSize)) gd.bg_inode_table_hi = hi;
}

/** @kernel ext4_free_group_clusters_set */
export function setFreeBlocksCount(gd: GroupDesc, n: number, descSize: number): void {
  const { lo, hi } = split16(n, descSize, "Free blocks count");
  gd.bg_free_blocks_count_lo = lo;
  if (wide(descSize)) gd.bg_free_blocks_count_hi = hi;
}

/** @kernel ext4_free_inodes_set */
export function setFreeInodesCount(gd: GroupDesc, n: number, descSize: number): void {
  const { lo, hi } = split16(n, descSize, "Free inodes count");
  gd.bg_free_inodes_count_lo = lo;
  if (wide(descSize)) gd.bg_free_inodes_count_hi = hi;
}

/** @kernel ext4_used_dirs_set */
export function setUsedDirsCount(gd: GroupDesc, n: number, descSize: number): void {
  const { lo, hi } = split16(n, descSize, "Used dirs count");
  gd.bg_used_dirs_count_lo = lo;
  if (wide(descSize)) gd.bg_used_dirs_count_hi = hi;
}

/** @kernel ext4_itable_unused_set */
export function setItableUnused(gd: GroupDesc, n: number, descSize: number): void {
  const { lo, hi } = split16(n, descSize, "Unused inodes count");
  gd.bg_itable_unused_lo = lo;
  if (wide(descSize)) gd.bg_itable_unused_hi = hi;
}

/** Is n a power of `base`? (test_root in fs/ext4/balloc.c) */
function isPowerOf(n: number, base: number): boolean {
  let x = base;
  while (x < n) x *= base;
  return x === n;
}

/**
 * Does the group hold a superblock copy? Without sparse_super every group does; with
 * it groups 0, 1 and powers of 3, 5 and 7; with sparse_super2 group 0 and the (up to
 * two) groups in s_backup_bgs.
 * @kernel ext4_bg_has_super (fs/ext4/balloc.c)
 */
export function groupHasSuperblock(sb: Superblock, group: number): boolean {
  if (group === 0) return true;
  if (hasCompat(sb, EXT4_FEATURE_COMPAT_SPARSE_SUPER2)) return sb.s_backup_bgs.includes(group);
  if (group <= 1 || !hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER)) return true;
  if (group % 2 === 0) return false;
  return isPowerOf(group, 3) || isPowerOf(group, 5) || isPowerOf(group, 7);
}

/**
 * Block holding descriptor block `nr` of the table (the primary copy).
 * @kernel descriptor_loc (fs/ext4/super.c)
 */
export function descriptorLoc(sb: Superblock, nr: number): number {
  const sbBlock = superblockBlock(sb);
  if (!hasIncompat(sb, EXT4_FEATURE_INCOMPAT_META_BG) || nr < sb.s_first_meta_bg) return sbBlock + nr + 1;
  const bg = descPerBlock(sb) * nr;
  let hasSuper = groupHasSuperblock(sb, bg) ? 1 : 0;
  // 1 KiB blocks with s_first_data_block 0 (bigalloc): the superblock is block 1, not 0.
  if (blockSize(sb) === 1024 && nr === 0 && sb.s_first_data_block === 0) hasSuper++;
  return groupFirstBlock(sb, bg) + hasSuper;
}

/** Where the primary copy of a group's descriptor is: block number and byte offset in it. */
export function groupDescLocation(sb: Superblock, group: number): { block: number; offset: number } {
  const dpb = descPerBlock(sb);
  return { block: descriptorLoc(sb, Math.floor(group / dpb)), offset: (group % dpb) * descSize(sb) };
}

/**
 * The groups holding the copies of meta group `metaGroup`'s descriptor block: its
 * first (primary), second and last group, as far as they exist.
 * @kernel ext4_bg_num_gdb_meta (fs/ext4/balloc.c)
 */
export function metaBgDescGroups(sb: Superblock, metaGroup: number): number[] {
  const dpb = descPerBlock(sb);
  const groups = groupCount(sb);
  const first = metaGroup * dpb;
  return [first, first + 1, first + dpb - 1].filter((g, i, a) => g < groups && a.indexOf(g) === i);
}

/**
 * How many group descriptor blocks (primary or backup) the group holds, not counting
 * reserved GDT blocks.
 * @kernel ext4_bg_num_gdb (fs/ext4/balloc.c)
 */
export function groupDescBlocksInGroup(sb: Superblock, group: number): number {
  const dpb = descPerBlock(sb);
  const metaGroup = Math.floor(group / dpb);
  const metaBg = hasIncompat(sb, EXT4_FEATURE_INCOMPAT_META_BG);
  if (!metaBg || metaGroup < sb.s_first_meta_bg) {
    if (!groupHasSuperblock(sb, group)) return 0;
    return metaBg ? sb.s_first_meta_bg : groupDescBlockCount(sb);
  }
  const first = metaGroup * dpb;
  return group === first || group === first + 1 || group === first + dpb - 1 ? 1 : 0;
}
