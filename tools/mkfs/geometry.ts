/**
 * Filesystem geometry for a new filesystem: group count and size, inodes per group,
 * descriptor and reserved GDT blocks, the last group trimmed when too small to hold
 * its metadata. A port of ext2fs_initialize and calc_reserved_gdt_blocks (e2fsprogs
 * lib/ext2fs/initialize.c, 1.47) without the I/O, plus the group arithmetic the rest
 * of mkfs uses (ext2fs_group_first_block2, ext2fs_bg_has_super, ...).
 */

import {
  EXT4_FEATURE_COMPAT_RESIZE_INODE, EXT4_FEATURE_INCOMPAT_64BIT, EXT4_FEATURE_INCOMPAT_FLEX_BG,
  EXT4_FEATURE_RO_COMPAT_GDT_CSUM, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM, EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER,
  type FeatureWords,
} from "../../src/format/features.js";
import { EXT4_GOOD_OLD_FIRST_INO } from "../../src/format/inode.js";
import { fail } from "./options.js";

export interface GeometryInput {
  blockSize: number;
  logBlockSize: number;
  blocksCount: number;
  rBlocksCount: number;
  features: FeatureWords;
  inodeSize: number;
  inodesCount: number;
  /** 0 for 8 * block size. */
  blocksPerGroup: number;
  /** s_desc_size with 64bit (>= 64), else 0. */
  descSize: number;
  /** Reserved GDT blocks asked for with -E resize, 0 to compute. */
  reservedGdtBlocks: number;
  logGroupsPerFlex: number;
  /** For messages. */
  deviceName: string;
}

export interface Geometry {
  readonly blockSize: number;
  readonly logBlockSize: number;
  readonly firstDataBlock: number;
  readonly blocksCount: number;
  readonly rBlocksCount: number;
  readonly blocksPerGroup: number;
  readonly groupCount: number;
  /** Bytes per group descriptor: 32, or s_desc_size with 64bit. */
  readonly descSize: number;
  readonly descPerBlock: number;
  readonly descBlocks: number;
  readonly inodeSize: number;
  readonly inodesPerGroup: number;
  /** Inode table blocks per group (fs->inode_blocks_per_group). */
  readonly inodeTableBlocks: number;
  readonly inodesCount: number;
  readonly reservedGdtBlocks: number;
  readonly features: FeatureWords;
  readonly logGroupsPerFlex: number;
  readonly sparseSuper: boolean;
  /** uninit_bg or metadata_csum: groups may be BLOCK_UNINIT / INODE_UNINIT. */
  readonly groupDescCsum: boolean;
  readonly flexBg: boolean;
  readonly firstIno: number;
}

/** Is n a power of `base`? (test_root in lib/ext2fs/closefs.c) */
function testRoot(n: number, base: number): boolean {
  let x = base;
  while (x < n) x *= base;
  return x === n;
}

/** Does the group hold a superblock backup? @kernel ext2fs_bg_has_super */
export function bgHasSuper(geo: Pick<Geometry, "sparseSuper">, group: number): boolean {
  if (group === 0) return true;
  if (group <= 1 || !geo.sparseSuper) return true;
  if ((group & 1) === 0) return false;
  return testRoot(group, 3) || testRoot(group, 5) || testRoot(group, 7);
}

/** @kernel ext2fs_group_first_block2 */
export function groupFirstBlock(geo: Geometry, group: number): number {
  return geo.firstDataBlock + group * geo.blocksPerGroup;
}

/** @kernel ext2fs_group_last_block2 */
export function groupLastBlock(geo: Geometry, group: number): number {
  return group === geo.groupCount - 1 ? geo.blocksCount - 1 : groupFirstBlock(geo, group) + geo.blocksPerGroup - 1;
}

/** Blocks in the group (the last one may be short). @kernel ext2fs_group_blocks_count */
export function groupBlockCount(geo: Geometry, group: number): number {
  return groupLastBlock(geo, group) - groupFirstBlock(geo, group) + 1;
}

/** @kernel ext2fs_group_of_blk2 */
export function groupOfBlock(geo: Geometry, blk: number): number {
  return Math.floor((blk - geo.firstDataBlock) / geo.blocksPerGroup);
}

/** @kernel ext2fs_group_of_ino */
export function groupOfIno(geo: Geometry, ino: number): number {
  return Math.floor((ino - 1) / geo.inodesPerGroup);
}

/** Blocks at the start of the group taken by the superblock copy, descriptors and reserved GDT blocks. */
export function superAndBgdBlocks(geo: Geometry, group: number): number {
  return bgHasSuper(geo, group) ? 1 + geo.descBlocks + geo.reservedGdtBlocks : 0;
}

/**
 * Reserved GDT blocks for growing to 1024 times the size (or 2^32 blocks),
 * at most one block of pointers.
 * @kernel calc_reserved_gdt_blocks (lib/ext2fs/initialize.c)
 */
export function calcReservedGdtBlocks(blocksCount: number, firstDataBlock: number, bpg: number, descPerBlock: number, descBlocks: number, blockSize: number): number {
  let maxBlocks = 0xffffffff;
  if (blocksCount < Math.floor(maxBlocks / 1024)) maxBlocks = blocksCount * 1024;
  const rsvGroups = Math.ceil((maxBlocks - firstDataBlock) / bpg);
  const rsv = Math.ceil(rsvGroups / descPerBlock) - descBlocks;
  const apb = blockSize / 4;
  return rsv < 0 || rsv > apb ? apb : rsv; // unsigned in C: a negative result wraps and is capped
}

const has = (w: number, m: number): boolean => (w & m) !== 0;

/**
 * The geometry ext2fs_initialize settles on: it lowers blocks per group while a group
 * would need more inodes than one bitmap block holds, rounds inodes per group to fill
 * whole inode table blocks (a multiple of 8), and drops a last group too small for its
 * own metadata plus 50 blocks (recomputing the reserved blocks at the same ratio).
 * Throws FsError with mke2fs' messages when no filesystem fits.
 * @kernel ext2fs_initialize (lib/ext2fs/initialize.c)
 */
export function initializeGeometry(p: GeometryInput): Geometry {
  const bs = p.blockSize;
  const features = { ...p.features };
  const firstDataBlock = p.logBlockSize === 0 ? 1 : 0;
  let bpg = p.blocksPerGroup || bs * 8;
  if (bpg > 65536 - 8) bpg = 65536 - 8; // EXT2_MAX_BLOCKS_PER_GROUP
  let blocks = p.blocksCount;
  let rBlocks = p.rBlocksCount;
  const setup = (what: string): Error => fail(`${p.deviceName}: ${what} while setting up superblock`);
  if (rBlocks >= blocks) throw setup("Invalid argument passed to ext2 library");
  const is64 = has(features.s_feature_incompat, EXT4_FEATURE_INCOMPAT_64BIT);
  const descSize = is64 ? p.descSize || 64 : 32;
  const dpb = bs / descSize;
  const sparseSuper = has(features.s_feature_ro_compat, EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER);
  const firstIno = EXT4_GOOD_OLD_FIRST_INO;

  for (;;) {
    const groups = Math.ceil((blocks - firstDataBlock) / bpg);
    if (groups === 0) throw setup("Not enough space to build proposed filesystem");
    const descBlocks = Math.ceil(groups / dpb);
    const i = bs >= 4096 ? 1 : 4096 / bs;
    let inodes = p.inodesCount;
    if (inodes === 0) inodes = is64 && Math.floor(blocks / i) >= 2 ** 32 ? 0xffffffff : Math.floor(blocks / i);

    let ipg = Math.ceil(inodes / groups);
    if (ipg > bs * 8) {
      if (bpg >= 256) {
        bpg -= 8;
        blocks = p.blocksCount;
        continue;
      }
      throw setup("Cannot create filesystem with requested number of inodes");
    }
    const maxIpg = 65536 - bs / p.inodeSize; // EXT2_MAX_INODES_PER_GROUP
    if (ipg > maxIpg) ipg = maxIpg;

    let sIpg: number;
    let itb: number;
    for (;;) {
      itb = Math.ceil((ipg * p.inodeSize) / bs);
      sIpg = Math.floor((itb * bs) / p.inodeSize);
      if (sIpg < 8) sIpg = 8;
      sIpg &= ~7;
      itb = Math.ceil((sIpg * p.inodeSize) / bs);
      if (sIpg * groups > 0xffffffff) {
        ipg--;
        continue;
      }
      if (sIpg * groups < firstIno + 1) {
        ipg += 8;
        continue;
      }
      break;
    }
    inodes = sIpg * groups;

    let rsv = 0;
    if (has(features.s_feature_compat, EXT4_FEATURE_COMPAT_RESIZE_INODE)) {
      rsv = p.reservedGdtBlocks || calcReservedGdtBlocks(blocks, firstDataBlock, bpg, dpb, descBlocks, bs);
    }
    if (rsv > bs / 4) throw setup("Too many reserved group descriptor blocks");
    if (rsv + descBlocks > Math.floor((bpg * 3) / 4)) {
      // ext2fs_initialize would switch to meta_bg here.
      throw fail(`Filesystem of ${blocks} blocks needs meta_bg (group descriptors fill most of a group), which ext4ts mkfs does not support yet`);
    }
    if (3 + itb + rsv + descBlocks > bpg) throw setup("Cannot create filesystem with requested number of inodes");

    const geoSoFar = { sparseSuper };
    let overhead = 2 + itb;
    if (bgHasSuper(geoSoFar, groups - 1)) overhead += 1 + descBlocks + rsv;
    const rem = (blocks - firstDataBlock) % bpg;
    if (groups === 1 && rem !== 0 && rem < overhead) throw setup("Not enough space to build proposed filesystem");
    if (rem !== 0 && rem < overhead + 50) {
      blocks -= rem;
      const ratio = (100.0 * p.rBlocksCount) / p.blocksCount;
      rBlocks = Math.floor((ratio * blocks) / 100.0);
      continue;
    }

    return {
      blockSize: bs,
      logBlockSize: p.logBlockSize,
      firstDataBlock,
      blocksCount: blocks,
      rBlocksCount: rBlocks,
      blocksPerGroup: bpg,
      groupCount: groups,
      descSize,
      descPerBlock: dpb,
      descBlocks,
      inodeSize: p.inodeSize,
      inodesPerGroup: sIpg,
      inodeTableBlocks: itb,
      inodesCount: inodes,
      reservedGdtBlocks: rsv,
      features,
      logGroupsPerFlex: has(features.s_feature_incompat, EXT4_FEATURE_INCOMPAT_FLEX_BG) ? p.logGroupsPerFlex : 0,
      sparseSuper,
      groupDescCsum: has(features.s_feature_ro_compat, EXT4_FEATURE_RO_COMPAT_GDT_CSUM | EXT4_FEATURE_RO_COMPAT_METADATA_CSUM),
      flexBg: has(features.s_feature_incompat, EXT4_FEATURE_INCOMPAT_FLEX_BG) && p.logGroupsPerFlex > 0,
      firstIno,
    };
  }
}
