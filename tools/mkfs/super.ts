/**
 * The superblock and group descriptor table of a new filesystem, as mke2fs 1.47 and
 * ext2fs_initialize fill them in and ext2fs_flush writes them: every copy of the
 * superblock carries its group number (s_block_group_nr, 16 bits), the descriptor
 * table is the same in every copy. Checksums come from format/checksum.ts.
 */

import { fsChecksumSeed, groupDescChecksum, superblockChecksum } from "../../src/format/checksum.js";
import { EXT2_FLAGS_SIGNED_HASH } from "../../src/format/dirhash.js";
import {
  EXT4_FEATURE_COMPAT_HAS_JOURNAL, EXT4_FEATURE_INCOMPAT_64BIT, EXT4_FEATURE_INCOMPAT_CSUM_SEED,
  EXT4_FEATURE_RO_COMPAT_GDT_CSUM, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM, type FeatureWords,
} from "../../src/format/features.js";
import {
  EXT4_BG_BLOCK_BITMAP_CSUM_HI_END, EXT4_BG_INODE_BITMAP_CSUM_HI_END, encodeGroupDesc, groupDesc, setBlockBitmap,
  setFreeBlocksCount, setFreeInodesCount, setInodeBitmap, setInodeTable, setItableUnused, setUsedDirsCount, type GroupDesc,
} from "../../src/format/group_desc.js";
import { EXT4_JOURNAL_INO } from "../../src/format/inode.js";
import { split64 } from "../../src/format/struct.js";
import {
  EXT2_FLAGS_TEST_FILESYS, EXT3_JNL_BACKUP_BLOCKS, EXT4_CRC32C_CHKSUM, EXT4_DYNAMIC_REV, EXT4_OS_LINUX,
  EXT4_SUPER_MAGIC, EXT4_VALID_FS, SUPERBLOCK_SIZE, superblock, type Superblock,
} from "../../src/format/superblock.js";
import type { Geometry } from "./geometry.js";
import type { Plan } from "./layout.js";

export interface SuperInput {
  geo: Geometry;
  plan: Plan;
  features: FeatureWords;
  uuid: Uint8Array;
  hashSeed: Uint8Array;
  hashAlg: number;
  label: Uint8Array;
  lastMounted: Uint8Array;
  now: number;
  errors: number;
  defaultMountOpts: number;
  periodicFsck: boolean;
  raidStride: number;
  raidStripeWidth: number;
  testFs: boolean;
  /** s_jnl_blocks: i_block words, i_size_high, i_size of the journal inode. */
  jnlBlocks: number[] | undefined;
  kbytesWritten: bigint;
}

const has = (w: number, m: number): boolean => (w & m) !== 0;

/** Bytes as four little-endian u32 words (s_hash_seed is memcpy'd). */
function words32(b: Uint8Array): number[] {
  const dv = new DataView(b.buffer, b.byteOffset, 16);
  return [0, 1, 2, 3].map((i) => dv.getUint32(i * 4, true));
}

function fixed(b: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  out.set(b.subarray(0, n));
  return out;
}

/** The superblock record (s_block_group_nr 0, no checksum yet). */
export function buildSuperblock(s: SuperInput): Superblock {
  const { geo, plan } = s;
  const sb = superblock.decode(new Uint8Array(SUPERBLOCK_SIZE), 0);
  const blocks = split64(geo.blocksCount);
  const rblocks = split64(geo.rBlocksCount);
  const free = split64(plan.totalFreeBlocks);
  const is64 = has(s.features.s_feature_incompat, EXT4_FEATURE_INCOMPAT_64BIT);
  const large = geo.inodeSize >= 160;
  Object.assign<Superblock, Partial<Superblock>>(sb, {
    s_inodes_count: geo.inodesCount,
    s_blocks_count_lo: blocks.lo,
    s_blocks_count_hi: is64 ? blocks.hi : 0,
    s_r_blocks_count_lo: rblocks.lo,
    s_r_blocks_count_hi: is64 ? rblocks.hi : 0,
    s_free_blocks_count_lo: free.lo,
    s_free_blocks_count_hi: is64 ? free.hi : 0,
    s_free_inodes_count: plan.totalFreeInodes,
    s_first_data_block: geo.firstDataBlock,
    s_log_block_size: geo.logBlockSize,
    s_log_cluster_size: geo.logBlockSize,
    s_blocks_per_group: geo.blocksPerGroup,
    s_clusters_per_group: geo.blocksPerGroup,
    s_inodes_per_group: geo.inodesPerGroup,
    s_mtime: 0,
    s_wtime: s.now,
    s_mnt_count: 0,
    s_max_mnt_count: s.periodicFsck ? 20 + (s.uuid.reduce((a, b) => a + b, 0) % 20) : 0xffff,
    s_magic: EXT4_SUPER_MAGIC,
    s_state: EXT4_VALID_FS,
    s_errors: s.errors,
    s_minor_rev_level: 0,
    s_lastcheck: s.now,
    s_checkinterval: s.periodicFsck ? 86400 * 180 : 0,
    s_creator_os: EXT4_OS_LINUX,
    s_rev_level: EXT4_DYNAMIC_REV,
    s_def_resuid: 0,
    s_def_resgid: 0,
    s_first_ino: geo.firstIno,
    s_inode_size: geo.inodeSize,
    s_block_group_nr: 0,
    s_feature_compat: s.features.s_feature_compat,
    s_feature_incompat: s.features.s_feature_incompat,
    s_feature_ro_compat: s.features.s_feature_ro_compat,
    s_uuid: s.uuid,
    s_volume_name: fixed(s.label, 16),
    s_last_mounted: fixed(s.lastMounted, 64),
    s_reserved_gdt_blocks: geo.reservedGdtBlocks,
    s_journal_inum: has(s.features.s_feature_compat, EXT4_FEATURE_COMPAT_HAS_JOURNAL) ? EXT4_JOURNAL_INO : 0,
    s_hash_seed: words32(s.hashSeed),
    s_def_hash_version: s.hashAlg,
    s_jnl_backup_type: s.jnlBlocks === undefined ? 0 : EXT3_JNL_BACKUP_BLOCKS,
    s_desc_size: is64 ? geo.descSize : 0,
    s_default_mount_opts: s.defaultMountOpts,
    s_first_meta_bg: 0,
    s_mkfs_time: s.now,
    s_jnl_blocks: s.jnlBlocks ?? new Array<number>(17).fill(0),
    s_min_extra_isize: large ? 32 : 0,
    s_want_extra_isize: large ? 32 : 0,
    s_flags: EXT2_FLAGS_SIGNED_HASH | (s.testFs ? EXT2_FLAGS_TEST_FILESYS : 0),
    s_raid_stride: s.raidStride,
    s_raid_stripe_width: s.raidStripeWidth,
    s_log_groups_per_flex: geo.logGroupsPerFlex,
    s_checksum_type: has(s.features.s_feature_ro_compat, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM) ? EXT4_CRC32C_CHKSUM : 0,
    s_kbytes_written: s.kbytesWritten,
    s_overhead_clusters: plan.overhead,
    s_checksum_seed: has(s.features.s_feature_incompat, EXT4_FEATURE_INCOMPAT_CSUM_SEED) ? fsChecksumSeed(s.uuid, false, 0) : 0,
  });
  return sb;
}

/** One superblock copy, 1024 bytes, for group `group`, checksummed when metadata_csum. */
export function encodeSuperblockCopy(sb: Superblock, group: number): Uint8Array {
  const buf = new Uint8Array(SUPERBLOCK_SIZE);
  // ext2fs_flush writes the backups with EXT2_VALID_FS clear; only the primary says clean.
  const state = group === 0 ? sb.s_state : sb.s_state & ~EXT4_VALID_FS;
  superblock.encode({ ...sb, s_block_group_nr: group & 0xffff, s_state: state, s_checksum: 0 }, buf, 0);
  if (has(sb.s_feature_ro_compat, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) {
    superblock.encode({ s_checksum: superblockChecksum(buf) }, buf, 0);
  }
  return buf;
}

export interface BitmapChecksums {
  block: Uint32Array;
  inode: Uint32Array;
}

/** The whole descriptor table (geo.descBlocks blocks), every descriptor checksummed. */
export function buildGroupDescTable(geo: Geometry, plan: Plan, features: FeatureWords, uuid: Uint8Array, csums: BitmapChecksums): Uint8Array {
  const ds = geo.descSize;
  const table = new Uint8Array(geo.descBlocks * geo.blockSize);
  const metadataCsum = has(features.s_feature_ro_compat, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM);
  const gdtCsum = has(features.s_feature_ro_compat, EXT4_FEATURE_RO_COMPAT_GDT_CSUM);
  const csumSeed = fsChecksumSeed(uuid, has(features.s_feature_incompat, EXT4_FEATURE_INCOMPAT_CSUM_SEED), fsChecksumSeed(uuid, false, 0));
  const is64bit = has(features.s_feature_incompat, EXT4_FEATURE_INCOMPAT_64BIT);
  const csumOpts = { csumSeed, uuid, metadataCsum, gdtCsum, descSize: ds, is64bit };
  const gd: GroupDesc = groupDesc.decode(new Uint8Array(groupDesc.size), 0); // reused: every field is set below
  const limit = Math.min(ds, groupDesc.size);
  for (let g = 0; g < geo.groupCount; g++) {
    setBlockBitmap(gd, plan.blockBitmap[g]!, ds);
    setInodeBitmap(gd, plan.inodeBitmap[g]!, ds);
    setInodeTable(gd, plan.inodeTable[g]!, ds);
    setFreeBlocksCount(gd, plan.freeBlocks[g]!, ds);
    setFreeInodesCount(gd, plan.freeInodes[g]!, ds);
    setUsedDirsCount(gd, plan.usedDirs[g]!, ds);
    gd.bg_flags = plan.flags[g]!;
    setItableUnused(gd, plan.itableUnused[g]!, ds);
    const bc = csums.block[g]!;
    const ic = csums.inode[g]!;
    gd.bg_block_bitmap_csum_lo = bc & 0xffff;
    gd.bg_inode_bitmap_csum_lo = ic & 0xffff;
    if (ds >= EXT4_BG_BLOCK_BITMAP_CSUM_HI_END) gd.bg_block_bitmap_csum_hi = bc >>> 16;
    if (ds >= EXT4_BG_INODE_BITMAP_CSUM_HI_END) gd.bg_inode_bitmap_csum_hi = ic >>> 16;
    gd.bg_checksum = 0;
    const off = g * ds;
    encodeGroupDesc(gd, table, off, limit);
    const c = groupDescChecksum(table.subarray(off, off + ds), g, csumOpts);
    groupDesc.encode({ bg_checksum: c }, table, off, limit);
  }
  return table;
}
