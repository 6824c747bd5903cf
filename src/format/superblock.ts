/**
 * struct ext4_super_block (fs/ext4/ext4.h; Documentation/filesystems/ext4/super.rst):
 * the table, its constants, accessors that join split fields, the kernel's mount-time
 * sanity checks, and a `dumpe2fs -h` style dump.
 *
 * The primary superblock is the 1024 bytes at byte offset 1024 of the device whatever
 * the block size. `_hi` halves count only when the feature that introduced them is
 * set (64bit for block counts), so accessors check it rather than trusting the bytes.
 * Feature bits and names live in features.ts and are re-exported here. Checksums are
 * format/checksum.ts's business.
 */

import { assert } from "../debug/assert.js";
import {
  EXT4_FEATURE_COMPAT_DIR_INDEX, EXT4_FEATURE_COMPAT_ORPHAN_FILE, EXT4_FEATURE_INCOMPAT_64BIT,
  EXT4_FEATURE_INCOMPAT_CASEFOLD, EXT4_FEATURE_INCOMPAT_CSUM_SEED, EXT4_FEATURE_INCOMPAT_EA_INODE,
  EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_INCOMPAT_META_BG, EXT4_FEATURE_INCOMPAT_MMP,
  EXT4_FEATURE_RO_COMPAT_BIGALLOC, EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM,
  featureNames, hasCompat, hasIncompat, hasRoCompat,
} from "./features.js";
import {
  array, bytes, cString, defineStruct, join64, split64, u16le, u32le, u64le, u8, uuidToString, type FieldsOf,
} from "./struct.js";

import { EXT2_FLAGS_SIGNED_HASH, EXT2_FLAGS_UNSIGNED_HASH } from "./dirhash.js";
import { EXT4_GOOD_OLD_FIRST_INO, EXT4_GOOD_OLD_INODE_SIZE } from "./inode.js";
export * from "./features.js";

export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
export const EXT4_SUPER_MAGIC = 0xef53;

export const superblock = defineStruct("ext4_super_block", SUPERBLOCK_SIZE, {
  s_inodes_count: [0x0, u32le],
  s_blocks_count_lo: [0x4, u32le],
  s_r_blocks_count_lo: [0x8, u32le], // reserved for root (s_def_resuid/gid)
  s_free_blocks_count_lo: [0xc, u32le],
  s_free_inodes_count: [0x10, u32le],
  s_first_data_block: [0x14, u32le], // block holding the superblock: 1 for 1 KiB blocks, else 0
  s_log_block_size: [0x18, u32le], // block size = 1024 << this
  s_log_cluster_size: [0x1c, u32le], // was s_log_frag_size; == s_log_block_size without bigalloc
  s_blocks_per_group: [0x20, u32le],
  s_clusters_per_group: [0x24, u32le],
  s_inodes_per_group: [0x28, u32le],
  s_mtime: [0x2c, u32le],
  s_wtime: [0x30, u32le],
  s_mnt_count: [0x34, u16le],
  s_max_mnt_count: [0x36, u16le], // e2fsprogs reads it signed: 0xffff means -1, no limit
  s_magic: [0x38, u16le],
  s_state: [0x3a, u16le],
  s_errors: [0x3c, u16le],
  s_minor_rev_level: [0x3e, u16le],
  s_lastcheck: [0x40, u32le],
  s_checkinterval: [0x44, u32le],
  s_creator_os: [0x48, u32le],
  s_rev_level: [0x4c, u32le],
  s_def_resuid: [0x50, u16le],
  s_def_resgid: [0x52, u16le],
  // EXT4_DYNAMIC_REV only from here on
  s_first_ino: [0x54, u32le],
  s_inode_size: [0x58, u16le],
  s_block_group_nr: [0x5a, u16le], // group this copy lives in
  s_feature_compat: [0x5c, u32le],
  s_feature_incompat: [0x60, u32le],
  s_feature_ro_compat: [0x64, u32le],
  s_uuid: [0x68, bytes(16)],
  s_volume_name: [0x78, bytes(16)],
  s_last_mounted: [0x88, bytes(64)],
  s_algorithm_usage_bitmap: [0xc8, u32le],
  s_prealloc_blocks: [0xcc, u8],
  s_prealloc_dir_blocks: [0xcd, u8],
  s_reserved_gdt_blocks: [0xce, u16le], // per group, for online growth (resize_inode)
  s_journal_uuid: [0xd0, bytes(16)],
  s_journal_inum: [0xe0, u32le],
  s_journal_dev: [0xe4, u32le],
  s_last_orphan: [0xe8, u32le], // head of the orphan inode list
  s_hash_seed: [0xec, array(u32le, 4)],
  s_def_hash_version: [0xfc, u8],
  s_jnl_backup_type: [0xfd, u8],
  s_desc_size: [0xfe, u16le], // meaningful only with 64bit
  s_default_mount_opts: [0x100, u32le],
  s_first_meta_bg: [0x104, u32le],
  s_mkfs_time: [0x108, u32le],
  s_jnl_blocks: [0x10c, array(u32le, 17)], // i_block[15], i_size_high, i_size of the journal inode
  // 64bit only
  s_blocks_count_hi: [0x150, u32le],
  s_r_blocks_count_hi: [0x154, u32le],
  s_free_blocks_count_hi: [0x158, u32le],
  s_min_extra_isize: [0x15c, u16le],
  s_want_extra_isize: [0x15e, u16le],
  s_flags: [0x160, u32le],
  s_raid_stride: [0x164, u16le],
  s_mmp_update_interval: [0x166, u16le],
  s_mmp_block: [0x168, u64le],
  s_raid_stripe_width: [0x170, u32le],
  s_log_groups_per_flex: [0x174, u8],
  s_checksum_type: [0x175, u8],
  s_encryption_level: [0x176, u8],
  s_reserved_pad: [0x177, u8],
  s_kbytes_written: [0x178, u64le],
  s_snapshot_inum: [0x180, u32le],
  s_snapshot_id: [0x184, u32le],
  s_snapshot_r_blocks_count: [0x188, u64le],
  s_snapshot_list: [0x190, u32le],
  s_error_count: [0x194, u32le],
  s_first_error_time: [0x198, u32le],
  s_first_error_ino: [0x19c, u32le],
  s_first_error_block: [0x1a0, u64le],
  s_first_error_func: [0x1a8, bytes(32)],
  s_first_error_line: [0x1c8, u32le],
  s_last_error_time: [0x1cc, u32le],
  s_last_error_ino: [0x1d0, u32le],
  s_last_error_line: [0x1d4, u32le],
  s_last_error_block: [0x1d8, u64le],
  s_last_error_func: [0x1e0, bytes(32)],
  s_mount_opts: [0x200, bytes(64)],
  s_usr_quota_inum: [0x240, u32le],
  s_grp_quota_inum: [0x244, u32le],
  s_overhead_clusters: [0x248, u32le],
  s_backup_bgs: [0x24c, array(u32le, 2)], // sparse_super2 backup groups
  s_encrypt_algos: [0x254, bytes(4)],
  s_encrypt_pw_salt: [0x258, bytes(16)],
  s_lpf_ino: [0x268, u32le],
  s_prj_quota_inum: [0x26c, u32le],
  s_checksum_seed: [0x270, u32le], // crc32c(~0, s_uuid) if csum_seed
  s_wtime_hi: [0x274, u8],
  s_mtime_hi: [0x275, u8],
  s_mkfs_time_hi: [0x276, u8],
  s_lastcheck_hi: [0x277, u8],
  s_first_error_time_hi: [0x278, u8],
  s_last_error_time_hi: [0x279, u8],
  s_first_error_errcode: [0x27a, u8],
  s_last_error_errcode: [0x27b, u8],
  s_encoding: [0x27c, u16le],
  s_encoding_flags: [0x27e, u16le],
  s_orphan_file_inum: [0x280, u32le],
  s_def_resuid_hi: [0x284, u16le], // Linux 6.18; e2fsprogs 1.47.0 does not know them
  s_def_resgid_hi: [0x286, u16le],
  s_reserved: [0x288, array(u32le, 93)],
  s_checksum: [0x3fc, u32le], // crc32c of bytes 0..0x3fb
});
export type Superblock = FieldsOf<typeof superblock>;

// s_state
export const EXT4_VALID_FS = 0x0001; // unmounted cleanly
export const EXT4_ERROR_FS = 0x0002;
export const EXT4_ORPHAN_FS = 0x0004; // orphans being cleaned up
export const EXT4_FC_REPLAY = 0x0020; // fast-commit replay in progress

// s_errors
export const EXT4_ERRORS_CONTINUE = 1;
export const EXT4_ERRORS_RO = 2;
export const EXT4_ERRORS_PANIC = 3;
export const EXT4_ERRORS_DEFAULT = EXT4_ERRORS_CONTINUE;

// s_creator_os
export const EXT4_OS_LINUX = 0;
export const EXT4_OS_HURD = 1;
export const EXT4_OS_MASIX = 2;
export const EXT4_OS_FREEBSD = 3;
export const EXT4_OS_LITES = 4;

// s_rev_level
export const EXT4_GOOD_OLD_REV = 0; // fixed 128-byte inodes, first inode 11, no features
export const EXT4_DYNAMIC_REV = 1;
export const EXT4_MAX_SUPP_REV = EXT4_DYNAMIC_REV;
// s_def_hash_version values (DX_HASH_*) and the s_flags hash signedness bits live with
// the hash in dirhash.ts; the first-inode and inode-size defaults with the inode in inode.ts.
export const EXT2_FLAGS_TEST_FILESYS = 0x0004; // ext4dev testing; no longer checked

// s_default_mount_opts
export const EXT4_DEFM_DEBUG = 0x0001;
export const EXT4_DEFM_BSDGROUPS = 0x0002;
export const EXT4_DEFM_XATTR_USER = 0x0004;
export const EXT4_DEFM_ACL = 0x0008;
export const EXT4_DEFM_UID16 = 0x0010;
export const EXT4_DEFM_JMODE = 0x0060; // a 2-bit field, not flags
export const EXT4_DEFM_JMODE_DATA = 0x0020;
export const EXT4_DEFM_JMODE_ORDERED = 0x0040;
export const EXT4_DEFM_JMODE_WBACK = 0x0060;
export const EXT4_DEFM_NOBARRIER = 0x0100;
export const EXT4_DEFM_BLOCK_VALIDITY = 0x0200;
export const EXT4_DEFM_DISCARD = 0x0400;
export const EXT4_DEFM_NODELALLOC = 0x0800;

// s_checksum_type, s_jnl_backup_type, s_encoding, s_encoding_flags
export const EXT4_CRC32C_CHKSUM = 1;
export const EXT3_JNL_BACKUP_BLOCKS = 1;
export const EXT4_ENC_UTF8_12_1 = 1;
export const EXT4_ENC_STRICT_MODE_FL = 0x0001;

// Geometry limits (ext4.h)
export const EXT4_MIN_BLOCK_SIZE = 1024;
export const EXT4_MAX_BLOCK_SIZE = 65536;
export const EXT4_MIN_BLOCK_LOG_SIZE = 10;
export const EXT4_MAX_BLOCK_LOG_SIZE = 16;
export const EXT4_MAX_CLUSTER_LOG_SIZE = 30;
export const EXT4_MIN_DESC_SIZE = 32;
export const EXT4_MIN_DESC_SIZE_64BIT = 64;
export const EXT4_MAX_DESC_SIZE = EXT4_MIN_BLOCK_SIZE;

/** Decode the superblock from a buffer holding it at `offset` (default: a whole-device prefix). */
export function decodeSuperblock(buf: Uint8Array, offset = SUPERBLOCK_OFFSET): Superblock {
  return superblock.decode(buf, offset);
}

/** Total blocks. @kernel ext4_blocks_count */
export function blocksCount(sb: Superblock): number {
  return join64(sb.s_blocks_count_lo, hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT) ? sb.s_blocks_count_hi : 0);
}

/** Blocks reserved for s_def_resuid/s_def_resgid. @kernel ext4_r_blocks_count */
export function rBlocksCount(sb: Superblock): number {
  return join64(sb.s_r_blocks_count_lo, hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT) ? sb.s_r_blocks_count_hi : 0);
}

/** Free blocks as last written (the kernel keeps the live count in memory). @kernel ext4_free_blocks_count */
export function freeBlocksCount(sb: Superblock): number {
  return join64(sb.s_free_blocks_count_lo, hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT) ? sb.s_free_blocks_count_hi : 0);
}

/** Split a block count into a lo/hi pair; without 64bit it must fit in 32 bits. */
function splitCount(sb: Superblock, n: number, what: string): { lo: number; hi: number } {
  const { lo, hi } = split64(n);
  assert(hi === 0 || hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT), () => `${what} ${n} needs the 64bit feature`);
  return { lo, hi };
}

/** @kernel ext4_blocks_count_set */
export function setBlocksCount(sb: Superblock, n: number): void {
  ({ lo: sb.s_blocks_count_lo, hi: sb.s_blocks_count_hi } = splitCount(sb, n, "Block count"));
}

/** @kernel ext4_r_blocks_count_set */
export function setRBlocksCount(sb: Superblock, n: number): void {
  ({ lo: sb.s_r_blocks_count_lo, hi: sb.s_r_blocks_count_hi } = splitCount(sb, n, "Reserved block count"));
}

/** @kernel ext4_free_blocks_count_set */
export function setFreeBlocksCount(sb: Superblock, n: number): void {
  ({ lo: sb.s_free_blocks_count_lo, hi: sb.s_free_blocks_count_hi } = splitCount(sb, n, "Free block count"));
}

/** Block size in bytes (only meaningful once validateSuperblock accepted s_log_block_size). @kernel EXT4_BLOCK_SIZE */
export function blockSize(sb: Superblock): number {
  return EXT4_MIN_BLOCK_SIZE * 2 ** sb.s_log_block_size;
}

/** Allocation unit in bytes: the block size unless bigalloc. @kernel EXT4_CLUSTER_SIZE */
export function clusterSize(sb: Superblock): number {
  return hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_BIGALLOC) ? EXT4_MIN_BLOCK_SIZE * 2 ** sb.s_log_cluster_size : blockSize(sb);
}

/** @kernel EXT4_BLOCKS_PER_GROUP */
export function blocksPerGroup(sb: Superblock): number {
  return sb.s_blocks_per_group;
}

/** Clusters per group: the blocks per group unless bigalloc. @kernel EXT4_CLUSTERS_PER_GROUP */
export function clustersPerGroup(sb: Superblock): number {
  return hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_BIGALLOC) ? sb.s_clusters_per_group : sb.s_blocks_per_group;
}

/** @kernel EXT4_INODES_PER_GROUP */
export function inodesPerGroup(sb: Superblock): number {
  return sb.s_inodes_per_group;
}

/**
 * Number of block groups: the groups needed to cover the blocks after
 * s_first_data_block. @kernel ext4_get_groups_count (computed in ext4_check_geometry)
 */
export function groupCount(sb: Superblock): number {
  assert(sb.s_blocks_per_group > 0, "groupCount: s_blocks_per_group is 0 (validate the superblock first)");
  return Math.ceil((blocksCount(sb) - sb.s_first_data_block) / sb.s_blocks_per_group);
}

/** On-disk inode size: 128 on revision 0. @kernel EXT4_INODE_SIZE */
export function inodeSize(sb: Superblock): number {
  return sb.s_rev_level === EXT4_GOOD_OLD_REV ? EXT4_GOOD_OLD_INODE_SIZE : sb.s_inode_size;
}

/** First inode number ordinary files may use: 11 on revision 0. @kernel EXT4_FIRST_INO */
export function firstIno(sb: Superblock): number {
  return sb.s_rev_level === EXT4_GOOD_OLD_REV ? EXT4_GOOD_OLD_FIRST_INO : sb.s_first_ino;
}

/** Group descriptor size: 32 unless 64bit, then s_desc_size. @kernel EXT4_DESC_SIZE */
export function descSize(sb: Superblock): number {
  return hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT) ? sb.s_desc_size : EXT4_MIN_DESC_SIZE;
}

/** @kernel EXT4_DESC_PER_BLOCK */
export function descPerBlock(sb: Superblock): number {
  return Math.floor(blockSize(sb) / descSize(sb));
}

/** Blocks holding the whole group descriptor table. @kernel s_gdb_count (ext4_fill_super) */
export function groupDescBlockCount(sb: Superblock): number {
  return Math.ceil(groupCount(sb) / descPerBlock(sb));
}

/** Blocks one group's inode table takes, rounded up as e2fsprogs does. @kernel s_itb_per_group */
export function inodeTableBlocks(sb: Superblock): number {
  return Math.ceil((sb.s_inodes_per_group * inodeSize(sb)) / blockSize(sb));
}

/** First block of a group. @kernel ext4_group_first_block_no */
export function groupFirstBlock(sb: Superblock, group: number): number {
  return group * sb.s_blocks_per_group + sb.s_first_data_block;
}

/** Block number of the primary superblock (1 with 1 KiB blocks, else 0, even under bigalloc). */
export function superblockBlock(sb: Superblock): number {
  return Math.floor(SUPERBLOCK_OFFSET / blockSize(sb));
}

/** The MMP block as a number. */
export function mmpBlock(sb: Superblock): number {
  const b = Number(sb.s_mmp_block);
  assert(Number.isSafeInteger(b), () => `s_mmp_block ${sb.s_mmp_block} exceeds 2^53`);
  return b;
}

/** Reserved-blocks owner, 32 bits when s_def_resuid_hi is in use. @kernel ext4_get_resuid */
export function resuid(sb: Superblock): number {
  return sb.s_def_resuid + sb.s_def_resuid_hi * 0x10000;
}

/** @kernel ext4_get_resgid */
export function resgid(sb: Superblock): number {
  return sb.s_def_resgid + sb.s_def_resgid_hi * 0x10000;
}

export type SuperTimeField = "s_wtime" | "s_mtime" | "s_mkfs_time" | "s_lastcheck" | "s_first_error_time" | "s_last_error_time";

/** A superblock time in seconds since the epoch, with its `_hi` byte. @kernel ext4_get_tstamp */
export function superTime(sb: Superblock, field: SuperTimeField): number {
  return sb[field] + sb[`${field}_hi` as const] * 2 ** 32;
}

/** The filesystem UUID, e.g. "c7f040dd-3c54-43d1-8548-00fd1af8aaa1". */
export function uuidString(sb: Superblock): string {
  return uuidToString(sb.s_uuid);
}

/** Volume label ("" if none). */
export function volumeName(sb: Superblock): string {
  return cString(sb.s_volume_name);
}

/**
 * Problems the kernel would refuse to mount over, in the order ext4_fill_super finds
 * them; empty when the superblock is usable. Checks the fields alone (plus the device
 * size when given), never checksums. Stops early when later checks would divide by a
 * broken value.
 * @kernel ext4_load_super, ext4_inode_info_init, ext4_handle_clustersize,
 *   ext4_block_group_meta_init, ext4_check_geometry, ext4_group_desc_init (fs/ext4/super.c)
 */
export function validateSuperblock(sb: Superblock, deviceBytes?: number): string[] {
  const problems: string[] = [];
  const hex = (n: number): string => `0x${n.toString(16).padStart(4, "0")}`;
  if (sb.s_magic !== EXT4_SUPER_MAGIC) {
    return [`Bad magic number ${hex(sb.s_magic)}, expected ${hex(EXT4_SUPER_MAGIC)}`];
  }
  if (sb.s_rev_level > EXT4_MAX_SUPP_REV) {
    problems.push(`Revision level ${sb.s_rev_level} is too high, expected at most ${EXT4_MAX_SUPP_REV}`);
  }
  const maxLogBlock = EXT4_MAX_BLOCK_LOG_SIZE - EXT4_MIN_BLOCK_LOG_SIZE;
  if (sb.s_log_block_size > maxLogBlock) {
    problems.push(`Invalid log block size ${sb.s_log_block_size}, expected at most ${maxLogBlock} (64 KiB blocks)`);
    return problems; // every later check depends on the block size
  }
  const maxLogCluster = EXT4_MAX_CLUSTER_LOG_SIZE - EXT4_MIN_BLOCK_LOG_SIZE;
  if (sb.s_log_cluster_size > maxLogCluster) {
    problems.push(`Invalid log cluster size ${sb.s_log_cluster_size}, expected at most ${maxLogCluster}`);
    return problems;
  }
  const bs = blockSize(sb);

  if (hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM) && sb.s_checksum_type !== EXT4_CRC32C_CHKSUM) {
    problems.push(`Unknown checksum type ${sb.s_checksum_type}, expected ${EXT4_CRC32C_CHKSUM} (crc32c)`);
  }
  if (hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_BIGALLOC) && !hasIncompat(sb, EXT4_FEATURE_INCOMPAT_EXTENTS)) {
    problems.push("Feature bigalloc requires the extent feature");
  }
  if (sb.s_creator_os === EXT4_OS_HURD && hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT)) {
    problems.push("Feature 64bit is not supported on a Hurd filesystem");
  }
  if (sb.s_creator_os === EXT4_OS_HURD && hasIncompat(sb, EXT4_FEATURE_INCOMPAT_EA_INODE)) {
    problems.push("Feature ea_inode is not supported on a Hurd filesystem");
  }

  // ext4_inode_info_init
  const isz = inodeSize(sb);
  if (sb.s_rev_level !== EXT4_GOOD_OLD_REV) {
    if (sb.s_first_ino < EXT4_GOOD_OLD_FIRST_INO) {
      problems.push(`Invalid first inode ${sb.s_first_ino}, expected at least ${EXT4_GOOD_OLD_FIRST_INO}`);
    }
    if (isz < EXT4_GOOD_OLD_INODE_SIZE || !isPowerOf2(isz) || isz > bs) {
      problems.push(`Unsupported inode size ${isz}, expected a power of two from 128 to the block size ${bs}`);
      return problems;
    }
  }
  if (isz > EXT4_GOOD_OLD_INODE_SIZE && hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE)) {
    const max = isz - EXT4_GOOD_OLD_INODE_SIZE;
    if (sb.s_want_extra_isize > max) problems.push(`Bad s_want_extra_isize ${sb.s_want_extra_isize}, expected at most ${max}`);
    if (sb.s_min_extra_isize > max) problems.push(`Bad s_min_extra_isize ${sb.s_min_extra_isize}, expected at most ${max}`);
  }

  // ext4_handle_clustersize
  const clusterBytes = EXT4_MIN_BLOCK_SIZE * 2 ** sb.s_log_cluster_size;
  const bpg = sb.s_blocks_per_group;
  if (bpg === 0) {
    problems.push("Invalid blocks per group 0");
    return problems;
  }
  if (hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_BIGALLOC)) {
    if (clusterBytes < bs) {
      problems.push(`Cluster size ${clusterBytes} is smaller than block size ${bs}`);
    } else {
      if (sb.s_clusters_per_group > bs * 8) {
        problems.push(`Clusters per group ${sb.s_clusters_per_group} is too big, expected at most ${bs * 8}`);
      }
      if (bpg !== sb.s_clusters_per_group * (clusterBytes / bs)) {
        problems.push(`Blocks per group ${bpg} and clusters per group ${sb.s_clusters_per_group} are inconsistent`);
      }
    }
  } else {
    if (clusterBytes !== bs) problems.push(`Fragment/cluster size ${clusterBytes} differs from block size ${bs}`);
    if (bpg > bs * 8) problems.push(`Blocks per group ${bpg} is too big, expected at most ${bs * 8}`);
  }

  // ext4_block_group_meta_init
  if (hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT)) {
    const ds = sb.s_desc_size;
    if (ds < EXT4_MIN_DESC_SIZE_64BIT || ds > EXT4_MAX_DESC_SIZE || !isPowerOf2(ds)) {
      problems.push(`Unsupported descriptor size ${ds}, expected a power of two from 64 to 1024 with 64bit`);
      return problems;
    }
  }
  const ipb = Math.floor(bs / isz);
  const ipg = sb.s_inodes_per_group;
  if (ipg < ipb || ipg > bs * 8) {
    problems.push(`Invalid inodes per group ${ipg}, expected ${ipb} to ${bs * 8}`);
  }

  // ext4_check_geometry
  if (sb.s_reserved_gdt_blocks > bs / 4) {
    problems.push(`Reserved GDT blocks ${sb.s_reserved_gdt_blocks} is too large, expected at most ${bs / 4}`);
  }
  if (hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT) && sb.s_blocks_count_hi >= 2 ** 21) {
    problems.push(`Block count ${count64(sb.s_blocks_count_lo, sb.s_blocks_count_hi)} is too large to address`);
    return problems; // past 2^53 blocks: nothing below can be computed (generic_check_addressable)
  }
  const blocks = blocksCount(sb);
  if (deviceBytes !== undefined) {
    const deviceBlocks = Math.floor(deviceBytes / bs);
    if (blocks > deviceBlocks) problems.push(`Block count ${blocks} exceeds the device size of ${deviceBlocks} blocks`);
  }
  if (sb.s_first_data_block >= blocks) {
    problems.push(`First data block ${sb.s_first_data_block} is beyond the end of the filesystem (${blocks} blocks)`);
    return problems;
  }
  if (sb.s_first_data_block === 0 && sb.s_log_block_size === 0 && clusterBytes === bs) {
    problems.push("First data block is 0 with 1 KiB blocks and clusters, expected 1");
  }
  const groups = groupCount(sb);
  const dpb = Math.floor(bs / descSize(sb));
  if (groups > 2 ** 32 - dpb) problems.push(`Group count ${groups} is too large`);
  if (groups * ipg !== sb.s_inodes_count) {
    problems.push(`Inode count ${sb.s_inodes_count} does not match ${groups} groups of ${ipg} inodes (${groups * ipg})`);
  }

  // ext4_group_desc_init
  const gdbCount = Math.ceil(groups / dpb);
  if (hasIncompat(sb, EXT4_FEATURE_INCOMPAT_META_BG) && sb.s_first_meta_bg > gdbCount) {
    problems.push(`First meta block group ${sb.s_first_meta_bg} is beyond the ${gdbCount} group descriptor blocks`);
  }
  return problems;
}

/** A lo/hi pair as an exact bigint, for messages and dumps of values that may be corrupt. */
function count64(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function isPowerOf2(n: number): boolean {
  return n > 0 && Number.isInteger(Math.log2(n));
}

// ---- dumpe2fs -h ----------------------------------------------------------------

/** How describeSuperblock names uids and gids; dumpe2fs asks the passwd and group databases. */
export interface DescribeOptions {
  userName?: (uid: number) => string | undefined;
  groupName?: (gid: number) => string | undefined;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"] as const;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"] as const;

/** ctime(3) format without the newline, in UTC: "Mon Nov  3 20:38:00 2026". */
export function ctimeUtc(seconds: number): string {
  const d = new Date(seconds * 1000);
  const two = (n: number): string => String(n).padStart(2, "0");
  return `${DAYS[d.getUTCDay()] ?? "???"} ${MONTHS[d.getUTCMonth()] ?? "???"} ${String(d.getUTCDate()).padStart(2, " ")} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** e2fsprogs interval_string: "<none>" or e.g. "1 month, 2 weeks, 3 days, 4:05:06". */
function intervalString(secs: number): string {
  if (secs === 0) return "<none>";
  const parts: string[] = [];
  const unit = (size: number, name: string): void => {
    if (secs < size) return;
    const n = Math.floor(secs / size);
    secs -= n * size;
    parts.push(`${n} ${name}${n > 1 ? "s" : ""}`);
  };
  unit(86400 * 30, "month");
  unit(86400 * 7, "week");
  unit(86400, "day");
  if (secs > 0) {
    const hr = Math.floor(secs / 3600);
    const min = Math.floor((secs % 3600) / 60);
    parts.push(`${hr}:${String(min).padStart(2, "0")}:${String(secs % 60).padStart(2, "0")}`);
  }
  return parts.join(", ");
}

function lifetimeWrites(kb: bigint): string {
  const p2 = (x: number): bigint => 1n << BigInt(x);
  if (kb < p2(13)) return `${kb} kB`;
  if (kb < p2(23)) return `${(kb + p2(9)) >> 10n} MB`;
  if (kb < p2(33)) return `${(kb + p2(19)) >> 20n} GB`;
  if (kb < p2(43)) return `${(kb + p2(29)) >> 30n} TB`;
  return `${(kb + p2(39)) >> 40n} PB`;
}

const MNTOPT_NAMES: Readonly<Record<number, string>> = {
  [EXT4_DEFM_DEBUG]: "debug", [EXT4_DEFM_BSDGROUPS]: "bsdgroups", [EXT4_DEFM_XATTR_USER]: "user_xattr",
  [EXT4_DEFM_ACL]: "acl", [EXT4_DEFM_UID16]: "uid16", [EXT4_DEFM_JMODE_DATA]: "journal_data",
  [EXT4_DEFM_JMODE_ORDERED]: "journal_data_ordered", [EXT4_DEFM_JMODE_WBACK]: "journal_data_writeback",
  [EXT4_DEFM_NOBARRIER]: "nobarrier", [EXT4_DEFM_BLOCK_VALIDITY]: "block_validity",
  [EXT4_DEFM_DISCARD]: "discard", [EXT4_DEFM_NODELALLOC]: "nodelalloc",
};
const mntoptName = (m: number): string => MNTOPT_NAMES[m] ?? `MNTOPT_${31 - Math.clz32(m)}`;

/** Default mount options as e2fsprogs print_mntopts lists them: the journal mode first. */
export function mountOptNames(opts: number): string[] {
  const out: string[] = [];
  if (opts & EXT4_DEFM_JMODE) out.push(mntoptName(opts & EXT4_DEFM_JMODE));
  for (let bit = 0; bit < 32; bit++) {
    const m = 2 ** bit;
    if (m & EXT4_DEFM_JMODE) continue;
    if (((opts >>> bit) & 1) === 1) out.push(mntoptName(m));
  }
  return out;
}

const OS_NAMES = ["Linux", "Hurd", "Masix", "FreeBSD", "Lites"] as const;
const HASH_NAMES = ["legacy", "half_md4", "tea"] as const; // e2fsprogs 1.47.0 names no others
const ERRCODES = ["", "UNKNOWN", "EIO", "ENOMEM", "EFSBADCRC", "EFSCORRUPTED", "ENOSPC", "ENOKEY", "EROFS", "EFBIG",
  "EEXIST", "ERANGE", "EOVERFLOW", "EBUSY", "ENOTDIR", "ENOTEMPTY", "ESHUTDOWN", "EFAULT"] as const;

const isNullUuid = (b: Uint8Array): boolean => b.every((x) => x === 0);
const uuidOrNone = (b: Uint8Array): string => (isNullUuid(b) ? "<none>" : uuidToString(b));

/**
 * The superblock as `dumpe2fs -h` (e2fsprogs 1.47.0) prints it, one line per entry,
 * "\n"-terminated; the journal superblock lines dumpe2fs adds after it are not ours.
 * Times print in UTC where dumpe2fs uses the local time zone, so the two agree under
 * TZ=UTC. uid/gid names come from `opts` (default: 0 is root, others unknown).
 * @kernel list_super2 (e2fsprogs lib/e2p/ls.c)
 */
export function describeSuperblock(sb: Superblock, opts: DescribeOptions = {}): string {
  const lines: string[] = [];
  const line = (label: string, value: string | number | bigint): void => {
    lines.push(`${label}${" ".repeat(Math.max(1, 26 - label.length))}${String(value)}`);
  };
  const text = (b: Uint8Array): string => cString(b);
  const has64 = hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT);
  const bigalloc = hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_BIGALLOC);
  const bs = EXT4_MIN_BLOCK_SIZE * 2 ** sb.s_log_block_size;
  const isz = inodeSize(sb);
  const ctime = (f: SuperTimeField): string => ctimeUtc(superTime(sb, f));

  line("Filesystem volume name:", sb.s_volume_name[0] ? text(sb.s_volume_name) : "<none>");
  line("Last mounted on:", sb.s_last_mounted[0] ? text(sb.s_last_mounted) : "<not available>");
  line("Filesystem UUID:", uuidOrNone(sb.s_uuid));
  line("Filesystem magic number:", `0x${sb.s_magic.toString(16).toUpperCase().padStart(4, "0")}`);
  const rev = sb.s_rev_level === EXT4_GOOD_OLD_REV ? "original" : sb.s_rev_level === EXT4_DYNAMIC_REV ? "dynamic" : "unknown";
  line("Filesystem revision #:", `${sb.s_rev_level} (${rev})`);
  const features = featureNames(sb);
  lines.push(`Filesystem features:      ${features.length > 0 ? features.join(" ") : "(none)"}`);
  if (sb.s_flags !== 0) {
    let flags = "";
    if (sb.s_flags & EXT2_FLAGS_SIGNED_HASH) flags += "signed_directory_hash ";
    if (sb.s_flags & EXT2_FLAGS_UNSIGNED_HASH) flags += "unsigned_directory_hash ";
    if (sb.s_flags & EXT2_FLAGS_TEST_FILESYS) flags += "test_filesystem ";
    line("Filesystem flags:", flags === "" ? "(none)" : flags);
  }
  const mntopts = mountOptNames(sb.s_default_mount_opts);
  lines.push(`Default mount options:    ${mntopts.length > 0 ? mntopts.join(" ") : "(none)"}`);
  if (sb.s_mount_opts[0]) line("Mount options:", text(sb.s_mount_opts));
  const state = (sb.s_state & EXT4_VALID_FS ? " clean" : " not clean") + (sb.s_state & EXT4_ERROR_FS ? " with errors" : "");
  lines.push(`Filesystem state:        ${state}`);
  const errors = ["Continue", "Remount read-only", "Panic"][sb.s_errors - 1] ?? "Unknown (continue)";
  line("Errors behavior:", errors);
  line("Filesystem OS type:", OS_NAMES[sb.s_creator_os] ?? "(unknown os)");
  line("Inode count:", sb.s_inodes_count);
  // Exact even when a corrupt _hi pushes them past 2^53, like dumpe2fs' %llu.
  line("Block count:", count64(sb.s_blocks_count_lo, has64 ? sb.s_blocks_count_hi : 0));
  line("Reserved block count:", count64(sb.s_r_blocks_count_lo, has64 ? sb.s_r_blocks_count_hi : 0));
  if (sb.s_overhead_clusters) line("Overhead clusters:", sb.s_overhead_clusters);
  line("Free blocks:", count64(sb.s_free_blocks_count_lo, has64 ? sb.s_free_blocks_count_hi : 0));
  line("Free inodes:", sb.s_free_inodes_count);
  line("First block:", sb.s_first_data_block);
  line("Block size:", bs);
  line(bigalloc ? "Cluster size:" : "Fragment size:", EXT4_MIN_BLOCK_SIZE * 2 ** sb.s_log_cluster_size);
  if (has64) line("Group descriptor size:", sb.s_desc_size);
  if (sb.s_reserved_gdt_blocks) line("Reserved GDT blocks:", sb.s_reserved_gdt_blocks);
  line("Blocks per group:", sb.s_blocks_per_group);
  line(bigalloc ? "Clusters per group:" : "Fragments per group:", sb.s_clusters_per_group);
  line("Inodes per group:", sb.s_inodes_per_group);
  line("Inode blocks per group:", Math.ceil((sb.s_inodes_per_group * isz) / bs));
  if (sb.s_raid_stride) line("RAID stride:", sb.s_raid_stride);
  if (sb.s_raid_stripe_width) line("RAID stripe width:", sb.s_raid_stripe_width);
  if (sb.s_first_meta_bg) line("First meta block group:", sb.s_first_meta_bg);
  if (sb.s_log_groups_per_flex) line("Flex block group size:", 2 ** sb.s_log_groups_per_flex);
  if (superTime(sb, "s_mkfs_time")) line("Filesystem created:", ctime("s_mkfs_time"));
  line("Last mount time:", superTime(sb, "s_mtime") ? ctime("s_mtime") : "n/a");
  line("Last write time:", ctime("s_wtime"));
  line("Mount count:", sb.s_mnt_count);
  line("Maximum mount count:", (sb.s_max_mnt_count << 16) >> 16); // __s16 in e2fsprogs
  line("Last checked:", ctime("s_lastcheck"));
  line("Check interval:", `${sb.s_checkinterval} (${intervalString(sb.s_checkinterval)})`);
  if (sb.s_checkinterval) line("Next check after:", ctimeUtc(superTime(sb, "s_lastcheck") + sb.s_checkinterval));
  if (sb.s_kbytes_written) line("Lifetime writes:", lifetimeWrites(sb.s_kbytes_written));
  const user = opts.userName ?? ((uid: number) => (uid === 0 ? "root" : undefined));
  const group = opts.groupName ?? ((gid: number) => (gid === 0 ? "root" : undefined));
  const uname = user(sb.s_def_resuid);
  const gname = group(sb.s_def_resgid);
  line("Reserved blocks uid:", `${sb.s_def_resuid} ${uname === undefined ? "(user unknown)" : `(user ${uname})`}`);
  line("Reserved blocks gid:", `${sb.s_def_resgid} ${gname === undefined ? "(group unknown)" : `(group ${gname})`}`);
  if (sb.s_rev_level >= EXT4_DYNAMIC_REV) {
    line("First inode:", sb.s_first_ino);
    lines.push(`Inode size:\t          ${sb.s_inode_size}`); // the tab is in e2fsprogs' format string
    if (sb.s_min_extra_isize) line("Required extra isize:", sb.s_min_extra_isize);
    if (sb.s_want_extra_isize) line("Desired extra isize:", sb.s_want_extra_isize);
  }
  if (!isNullUuid(sb.s_journal_uuid)) line("Journal UUID:", uuidToString(sb.s_journal_uuid));
  if (sb.s_journal_inum) line("Journal inode:", sb.s_journal_inum);
  if (sb.s_journal_dev) lines.push(`Journal device:\t          0x${sb.s_journal_dev.toString(16).padStart(4, "0")}`);
  if (sb.s_last_orphan) line("First orphan inode:", sb.s_last_orphan);
  if (hasCompat(sb, EXT4_FEATURE_COMPAT_DIR_INDEX) || sb.s_def_hash_version) {
    line("Default directory hash:", HASH_NAMES[sb.s_def_hash_version] ?? `HASHALG_${sb.s_def_hash_version}`);
  }
  const seed = hashSeedBytes(sb);
  if (!isNullUuid(seed)) line("Directory Hash Seed:", uuidToString(seed));
  if (sb.s_jnl_backup_type) {
    line("Journal backup:", sb.s_jnl_backup_type === EXT3_JNL_BACKUP_BLOCKS ? "inode blocks" : `type ${sb.s_jnl_backup_type}`);
  }
  const [bg0 = 0, bg1 = 0] = sb.s_backup_bgs;
  if (bg0 || bg1) line("Backup block groups:", (bg0 ? `${bg0} ` : "") + (bg1 ? `${bg1} ` : ""));
  if (sb.s_snapshot_inum) {
    line("Snapshot inode:", sb.s_snapshot_inum);
    line("Snapshot ID:", sb.s_snapshot_id);
    line("Snapshot reserved blocks:", sb.s_snapshot_r_blocks_count);
  }
  if (sb.s_snapshot_list) line("Snapshot list head:", sb.s_snapshot_list);
  if (sb.s_error_count) line("FS Error count:", sb.s_error_count);
  for (const which of ["First", "Last"] as const) {
    const p = which === "First" ? "s_first_error" : "s_last_error";
    if (!superTime(sb, `${p}_time`)) continue;
    line(`${which} error time:`, ctime(`${p}_time`));
    line(`${which} error function:`, text(sb[`${p}_func` as const]));
    line(`${which} error line #:`, sb[`${p}_line` as const]);
    const ino = sb[`${p}_ino` as const];
    if (ino) line(`${which} error inode #:`, ino);
    const block = sb[`${p}_block` as const];
    if (block) line(`${which} error block #:`, block);
    const code = sb[`${p}_errcode` as const];
    if (code) line(`${which} error err:`, ERRCODES[code] ?? `UNKNOWN_ERRCODE_${code}`);
  }
  if (hasIncompat(sb, EXT4_FEATURE_INCOMPAT_MMP)) {
    line("MMP block number:", sb.s_mmp_block);
    line("MMP update interval:", sb.s_mmp_update_interval);
  }
  if (sb.s_usr_quota_inum) line("User quota inode:", sb.s_usr_quota_inum);
  if (sb.s_grp_quota_inum) line("Group quota inode:", sb.s_grp_quota_inum);
  if (sb.s_prj_quota_inum) line("Project quota inode:", sb.s_prj_quota_inum);
  if (hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) {
    line("Checksum type:", sb.s_checksum_type === EXT4_CRC32C_CHKSUM ? "crc32c" : "unknown");
    line("Checksum:", `0x${sb.s_checksum.toString(16).padStart(8, "0")}`);
  }
  if (!isNullUuid(sb.s_encrypt_pw_salt)) line("Encryption PW Salt:", uuidToString(sb.s_encrypt_pw_salt));
  if (hasIncompat(sb, EXT4_FEATURE_INCOMPAT_CSUM_SEED)) {
    line("Checksum seed:", `0x${sb.s_checksum_seed.toString(16).padStart(8, "0")}`);
  }
  if (hasIncompat(sb, EXT4_FEATURE_INCOMPAT_CASEFOLD)) {
    line("Character encoding:", sb.s_encoding === EXT4_ENC_UTF8_12_1 ? "utf8-12.1" : `UNKNOWN_ENCODING_${sb.s_encoding}`);
  }
  if (hasCompat(sb, EXT4_FEATURE_COMPAT_ORPHAN_FILE)) line("Orphan file inode:", sb.s_orphan_file_inum);
  return lines.map((l) => `${l}\n`).join("");
}

/** s_hash_seed as the 16 bytes on disk (dumpe2fs prints them as a UUID). */
export function hashSeedBytes(sb: Superblock): Uint8Array {
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  sb.s_hash_seed.forEach((w, i) => dv.setUint32(i * 4, w, true));
  return out;
}
