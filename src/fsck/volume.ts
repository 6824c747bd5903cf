/**
 * Opening a volume for checking (e2fsck unix.c + libext2fs openfs.c, check_desc.c): the
 * superblock, with a backup when the primary is unusable, the group descriptors, with the
 * backup copy when the primary table fails e2fsck's ext2fs_check_desc, and the geometry
 * every pass derives from.
 *
 * Unlike a mount (src/fs/super.ts), opening for a check tolerates what it can report:
 * bad checksums, descriptors pointing outside their group, features the engine cannot
 * read yet. It refuses only what e2fsck refuses: no usable superblock, unknown INCOMPAT
 * features, an external journal device.
 */

import type { BufferCache } from "../cache/buffer_cache.js";
import type { BlockDevice } from "../device/block_device.js";
import { FsError } from "../errors.js";
import { fsChecksumSeed, groupDescChecksum, superblockChecksum } from "../format/checksum.js";
import {
  EXT4_BG_BLOCK_UNINIT, EXT4_BG_INODE_UNINIT, blockBitmap, descriptorLoc, groupDesc, groupHasSuperblock, inodeBitmap, inodeTable,
  setItableUnused, type GroupDesc,
} from "../format/group_desc.js";
import {
  EXT4_FEATURE_COMPAT_DIR_INDEX, EXT4_FEATURE_COMPAT_EXT_ATTR, EXT4_FEATURE_COMPAT_HAS_JOURNAL,
  EXT4_FEATURE_COMPAT_ORPHAN_FILE, EXT4_FEATURE_COMPAT_RESIZE_INODE, EXT4_FEATURE_COMPAT_SPARSE_SUPER2,
  EXT4_FEATURE_INCOMPAT_64BIT, EXT4_FEATURE_INCOMPAT_CASEFOLD, EXT4_FEATURE_INCOMPAT_COMPRESSION,
  EXT4_FEATURE_INCOMPAT_CSUM_SEED, EXT4_FEATURE_INCOMPAT_DIRDATA, EXT4_FEATURE_INCOMPAT_EA_INODE,
  EXT4_FEATURE_INCOMPAT_ENCRYPT, EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_INCOMPAT_FILETYPE,
  EXT4_FEATURE_INCOMPAT_FLEX_BG, EXT4_FEATURE_INCOMPAT_INLINE_DATA, EXT4_FEATURE_INCOMPAT_JOURNAL_DEV,
  EXT4_FEATURE_INCOMPAT_KNOWN, EXT4_FEATURE_INCOMPAT_LARGEDIR, EXT4_FEATURE_INCOMPAT_META_BG,
  EXT4_FEATURE_INCOMPAT_MMP, EXT4_FEATURE_INCOMPAT_RECOVER, EXT4_FEATURE_RO_COMPAT_BIGALLOC,
  EXT4_FEATURE_RO_COMPAT_DIR_NLINK, EXT4_FEATURE_RO_COMPAT_GDT_CSUM, EXT4_FEATURE_RO_COMPAT_HUGE_FILE,
  EXT4_FEATURE_RO_COMPAT_LARGE_FILE, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM, EXT4_FEATURE_RO_COMPAT_PROJECT,
  EXT4_FEATURE_RO_COMPAT_QUOTA, EXT4_FEATURE_RO_COMPAT_SHARED_BLOCKS, EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER,
  EXT4_FEATURE_RO_COMPAT_VERITY, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE,
  blockSize as sbBlockSize, blocksCount as sbBlocksCount, descSize as sbDescSize, featureNames, firstIno as sbFirstIno,
  hasCompat, hasIncompat, hasRoCompat, inodeSize as sbInodeSize, superblock, volumeName as sbVolumeName, type Superblock,
} from "../format/superblock.js";
import { ChunkedBitmap } from "./maps.js";
import { PR_0_CHECK_DESC_FAILED, PR_0_OPEN_FAILED, PR_0_SB_CORRUPT, PR_0_SB_CSUM_INVALID, PR_0_UNSUPPORTED_FEATURES, PR_0_USING_BACKUP } from "./problem.js";
import type { Reporter } from "./report.js";

/** Volume features the checker branches on. */
export interface CheckFeatures {
  readonly metadataCsum: boolean;
  readonly gdtCsum: boolean;
  /** metadata_csum or gdt_csum: BLOCK_UNINIT, INODE_UNINIT and bg_itable_unused mean something. */
  readonly groupDescCsum: boolean;
  readonly is64bit: boolean;
  readonly extents: boolean;
  readonly inlineData: boolean;
  readonly dirIndex: boolean;
  readonly filetype: boolean;
  readonly hugeFile: boolean;
  readonly largeFile: boolean;
  readonly largedir: boolean;
  readonly dirNlink: boolean;
  readonly metaBg: boolean;
  readonly flexBg: boolean;
  readonly xattr: boolean;
  readonly hasJournal: boolean;
  readonly needsRecovery: boolean;
  readonly resizeInode: boolean;
  readonly sparseSuper: boolean;
  readonly sparseSuper2: boolean;
  readonly bigalloc: boolean;
  readonly mmp: boolean;
  readonly encrypt: boolean;
  readonly casefold: boolean;
  readonly eaInode: boolean;
  readonly quota: boolean;
  readonly project: boolean;
  readonly sharedBlocks: boolean;
  readonly verity: boolean;
  readonly orphanFile: boolean;
}

export interface SuperAndBgd {
  /** Superblock copy of the group, 0 if none (group 0: always its block). */
  superBlk: number;
  /** First block of the classic descriptor table copy (and reserved GDT blocks), 0 if none. */
  oldDescBlk: number;
  oldDescBlocks: number;
  /** meta_bg descriptor block in this group, 0 if none. */
  newDescBlk: number;
}

/** The geometry and descriptors of the volume being checked. */
export class FsckVolume {
  readonly dev: BlockDevice;
  readonly cache: BufferCache;
  readonly name: string;
  readonly sb: Superblock;
  /** The superblock's 1024 bytes as read. */
  readonly sbRaw: Uint8Array;
  /** Block number the superblock was read from when a backup was used, else 0. */
  readonly backupSuperblock: number;
  readonly f: CheckFeatures;
  readonly blockSize: number;
  readonly log2BlockSize: number;
  readonly inodeSize: number;
  readonly inodesPerGroup: number;
  readonly blocksPerGroup: number;
  readonly inodesCount: number;
  readonly blocksCount: number;
  readonly groupCount: number;
  readonly descSize: number;
  readonly descPerBlock: number;
  /** Blocks of the classic descriptor table (e2fsck's fs->desc_blocks). */
  readonly descBlocks: number;
  readonly firstDataBlock: number;
  readonly firstIno: number;
  /** Blocks one group's inode table takes. */
  readonly itableBlocks: number;
  readonly inodesPerBlock: number;
  /** Blocks per allocation cluster (1 without bigalloc). */
  readonly clusterRatio: number;
  readonly csumSeed: number;
  readonly groups: readonly GroupDesc[];
  /** Per group: 1 when the descriptor checksum verifies (or the volume has none). */
  readonly gdCsumOk: Uint8Array;
  /** Per group: the descriptor checksum the bytes call for. */
  readonly gdCsumWant: Uint16Array;

  constructor(p: {
    dev: BlockDevice; cache: BufferCache; name: string; sb: Superblock; sbRaw: Uint8Array; backupSuperblock: number;
    groups: GroupDesc[]; gdCsumOk: Uint8Array; gdCsumWant: Uint16Array;
  }) {
    this.dev = p.dev;
    this.cache = p.cache;
    this.name = p.name;
    this.sb = p.sb;
    this.sbRaw = p.sbRaw;
    this.backupSuperblock = p.backupSuperblock;
    this.groups = p.groups;
    this.gdCsumOk = p.gdCsumOk;
    this.gdCsumWant = p.gdCsumWant;
    const sb = p.sb;
    this.f = featuresOf(sb);
    this.blockSize = sbBlockSize(sb);
    this.log2BlockSize = 10 + sb.s_log_block_size;
    this.inodeSize = sbInodeSize(sb);
    this.inodesPerGroup = sb.s_inodes_per_group;
    this.blocksPerGroup = sb.s_blocks_per_group;
    this.inodesCount = sb.s_inodes_count;
    this.blocksCount = sbBlocksCount(sb);
    this.groupCount = groupCountOf(sb);
    this.descSize = sbDescSize(sb);
    this.descPerBlock = Math.floor(this.blockSize / this.descSize);
    this.descBlocks = Math.ceil(this.groupCount / this.descPerBlock);
    this.firstDataBlock = sb.s_first_data_block;
    this.firstIno = sbFirstIno(sb);
    this.itableBlocks = Math.ceil((this.inodesPerGroup * this.inodeSize) / this.blockSize);
    this.inodesPerBlock = Math.floor(this.blockSize / this.inodeSize);
    this.clusterRatio = this.f.bigalloc ? 2 ** Math.max(0, sb.s_log_cluster_size - sb.s_log_block_size) : 1;
    this.csumSeed = fsChecksumSeed(sb.s_uuid, hasIncompat(sb, EXT4_FEATURE_INCOMPAT_CSUM_SEED), sb.s_checksum_seed);
  }

  /**
   * Turn a feature on in the superblock, as a repair's ext2fs_set_feature_* does; `f` follows
   * (the same object, updated), as e2fsck's later tests read fs->super. The caller marks the
   * superblock dirty.
   */
  setFeature(field: "s_feature_compat" | "s_feature_incompat" | "s_feature_ro_compat", bit: number): void {
    this.sb[field] = (this.sb[field] | bit) >>> 0;
    Object.assign(this.f, featuresOf(this.sb));
  }

  group(g: number): GroupDesc {
    return this.groups[g]!; // callers iterate 0..groupCount-1
  }

  blockBitmapLoc(g: number): number {
    return blockBitmap(this.group(g), this.descSize);
  }

  inodeBitmapLoc(g: number): number {
    return inodeBitmap(this.group(g), this.descSize);
  }

  inodeTableLoc(g: number): number {
    return inodeTable(this.group(g), this.descSize);
  }

  groupFirstBlock(g: number): number {
    return this.firstDataBlock + g * this.blocksPerGroup;
  }

  groupLastBlock(g: number): number {
    return g === this.groupCount - 1 ? this.blocksCount - 1 : this.groupFirstBlock(g) + this.blocksPerGroup - 1;
  }

  groupOfBlock(b: number): number {
    return Math.floor((b - this.firstDataBlock) / this.blocksPerGroup);
  }

  groupOfIno(ino: number): number {
    return Math.floor((ino - 1) / this.inodesPerGroup);
  }

  /** Is `b` a block number inside the volume (e2fsck: >= s_first_data_block, < s_blocks_count)? */
  blockValid(b: number): boolean {
    return b >= this.firstDataBlock && b < this.blocksCount;
  }

  /** Where group `g` keeps superblock and descriptor copies. @e2fsprogs ext2fs_super_and_bgd_loc2 */
  superAndBgd(g: number): SuperAndBgd {
    let groupBlock = this.groupFirstBlock(g);
    if (groupBlock === 0 && this.blockSize === 1024) groupBlock = 1; // 1 KiB blocks with bigalloc
    const oldDescBlocks = this.f.metaBg ? this.sb.s_first_meta_bg : this.descBlocks + this.sb.s_reserved_gdt_blocks;
    const hasSuper = groupHasSuperblock(this.sb, g);
    const out: SuperAndBgd = { superBlk: hasSuper ? groupBlock : 0, oldDescBlk: 0, oldDescBlocks, newDescBlk: 0 };
    const metaBg = Math.floor(g / this.descPerBlock);
    if (!this.f.metaBg || metaBg < this.sb.s_first_meta_bg) {
      if (hasSuper) out.oldDescBlk = groupBlock + 1;
    } else {
      const r = g % this.descPerBlock;
      if (r === 0 || r === 1 || r === this.descPerBlock - 1) out.newDescBlk = groupBlock + (hasSuper ? 1 : 0);
    }
    return out;
  }

  /** Calls fn for each block of group `g`'s superblock and descriptor copies. @e2fsprogs ext2fs_reserve_super_and_bgd */
  forEachSuperAndBgdBlock(g: number, fn: (b: number) => void): void {
    const s = this.superAndBgd(g);
    if (s.superBlk !== 0 || g === 0) fn(s.superBlk !== 0 ? s.superBlk : this.firstDataBlock);
    if (s.oldDescBlk !== 0) {
      let num = s.oldDescBlocks;
      if (s.oldDescBlk + num >= this.blocksCount) num = this.blocksCount - s.oldDescBlk;
      for (let i = 0; i < num; i++) fn(s.oldDescBlk + i);
    }
    if (s.newDescBlk !== 0) fn(s.newDescBlk);
  }

  /** The checksum descriptor `g` calls for as it stands in memory. @e2fsprogs ext2fs_group_desc_csum */
  descChecksum(g: number): number {
    const raw = new Uint8Array(this.descSize);
    groupDesc.encode(this.group(g), raw, 0, this.descSize);
    return groupDescChecksum(raw, g, {
      csumSeed: this.csumSeed, uuid: this.sb.s_uuid, metadataCsum: this.f.metadataCsum, gdtCsum: this.f.gdtCsum,
      descSize: this.descSize, is64bit: this.f.is64bit,
    });
  }

  /** Verify descriptor `g`'s checksum again after an in-memory change. @e2fsprogs ext2fs_group_desc_csum_verify */
  recheckDesc(g: number): void {
    if (!this.f.groupDescCsum) return;
    this.gdCsumWant[g] = this.descChecksum(g);
    this.gdCsumOk[g] = this.gdCsumWant[g] === this.group(g).bg_checksum ? 1 : 0;
  }

  /** Read one block through the cache (a copy-free view valid until the next await). */
  readBlock(b: number): Promise<Uint8Array> {
    return this.cache.get(b);
  }
}

function featuresOf(sb: Superblock): CheckFeatures {
  const metadataCsum = hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM);
  const gdtCsum = hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_GDT_CSUM);
  return {
    metadataCsum,
    gdtCsum,
    groupDescCsum: metadataCsum || gdtCsum,
    is64bit: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT),
    extents: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_EXTENTS),
    inlineData: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_INLINE_DATA),
    dirIndex: hasCompat(sb, EXT4_FEATURE_COMPAT_DIR_INDEX),
    filetype: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_FILETYPE),
    hugeFile: hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_HUGE_FILE),
    largeFile: hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_LARGE_FILE),
    largedir: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_LARGEDIR),
    dirNlink: hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_DIR_NLINK),
    metaBg: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_META_BG),
    flexBg: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_FLEX_BG),
    xattr: hasCompat(sb, EXT4_FEATURE_COMPAT_EXT_ATTR),
    hasJournal: hasCompat(sb, EXT4_FEATURE_COMPAT_HAS_JOURNAL),
    needsRecovery: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_RECOVER),
    resizeInode: hasCompat(sb, EXT4_FEATURE_COMPAT_RESIZE_INODE),
    sparseSuper: hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER),
    sparseSuper2: hasCompat(sb, EXT4_FEATURE_COMPAT_SPARSE_SUPER2),
    bigalloc: hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_BIGALLOC),
    mmp: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_MMP),
    encrypt: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_ENCRYPT),
    casefold: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_CASEFOLD),
    eaInode: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_EA_INODE),
    quota: hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_QUOTA),
    project: hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_PROJECT),
    sharedBlocks: hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_SHARED_BLOCKS),
    verity: hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_VERITY),
    orphanFile: hasCompat(sb, EXT4_FEATURE_COMPAT_ORPHAN_FILE),
  };
}

function groupCountOf(sb: Superblock): number {
  return Math.ceil((sbBlocksCount(sb) - sb.s_first_data_block) / sb.s_blocks_per_group);
}

/** INCOMPAT bits e2fsck 1.47 cannot check (EXT2_LIB_FEATURE_INCOMPAT_SUPP lacks them). */
const E2FSCK_UNSUPPORTED_INCOMPAT = EXT4_FEATURE_INCOMPAT_COMPRESSION | EXT4_FEATURE_INCOMPAT_DIRDATA;

/**
 * Why a superblock cannot be used, or null: the checks libext2fs ext2fs_open2 makes
 * before it trusts one (e2fsck opens with EXT2_FLAG_IGNORE_SB_ERRORS, so the milder
 * problems are left to check_super_block). Checksums are checked apart.
 */
function superblockProblem(sb: Superblock): string | null {
  if (sb.s_magic !== 0xef53) return "Bad magic number in super-block";
  if (sb.s_rev_level > 1) return "Filesystem revision too high";
  const corrupt = "The ext2 superblock is corrupt";
  if (sb.s_log_block_size > 6) return corrupt;
  const bigalloc = hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_BIGALLOC);
  if (bigalloc ? sb.s_log_block_size > sb.s_log_cluster_size || sb.s_log_cluster_size > 29 - 10 : sb.s_log_cluster_size !== sb.s_log_block_size) return corrupt;
  const bs = sbBlockSize(sb);
  const isz = sbInodeSize(sb);
  if (isz < 128 || isz > bs || (isz & (isz - 1)) !== 0) return corrupt;
  const ratio = 2 ** (sb.s_log_cluster_size - sb.s_log_block_size);
  const ipb = Math.floor(bs / isz);
  if (sb.s_blocks_per_group === 0 || sb.s_inodes_per_group === 0 || sb.s_blocks_per_group > (65536 - 8) * ratio
    || sb.s_inodes_per_group > 65536 - ipb) return corrupt;
  if (bigalloc && sb.s_clusters_per_group > 65536 - 8) return corrupt;
  if (hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT)) {
    const ds = sb.s_desc_size;
    if (ds < 64 || ds > 1024 || (ds & (ds - 1)) !== 0) return "Block group descriptor size incorrect";
  }
  const total = sbBlocksCount(sb);
  if (sb.s_first_data_block >= total) return corrupt;
  if (groupCountOf(sb) * sb.s_inodes_per_group > 2 ** 32 - 1) return corrupt;
  return null;
}

async function readSuperAt(dev: BlockDevice, byteOffset: number): Promise<{ sb: Superblock; raw: Uint8Array } | null> {
  if (byteOffset + SUPERBLOCK_SIZE > dev.size) return null;
  try {
    const raw = await dev.read(byteOffset, SUPERBLOCK_SIZE);
    return { sb: superblock.decode(raw), raw };
  } catch (e) {
    if (e instanceof FsError && e.code === "EIO") return null;
    throw e;
  }
}

function sbChecksumOk(sb: Superblock, raw: Uint8Array): boolean {
  return !hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM) || superblockChecksum(raw) === sb.s_checksum;
}

/**
 * Find a backup superblock as e2fsck does (get_backup_sb): with a readable primary, the
 * copy at the start of group 1; otherwise probe group 1 for every block size.
 */
async function findBackup(dev: BlockDevice, primary: Superblock | null): Promise<{ sb: Superblock; raw: Uint8Array; block: number } | null> {
  const candidates: { block: number; bs: number }[] = [];
  if (primary !== null && primary.s_magic === 0xef53 && primary.s_log_block_size <= 6 && primary.s_blocks_per_group > 0) {
    const bs = sbBlockSize(primary);
    candidates.push({ block: primary.s_blocks_per_group + primary.s_first_data_block, bs });
  }
  for (let bs = 1024; bs <= 65536; bs *= 2) candidates.push({ block: bs * 8 + (bs === 1024 ? 1 : 0), bs });
  for (const c of candidates) {
    const got = await readSuperAt(dev, c.block * c.bs);
    if (got === null || got.sb.s_magic !== 0xef53 || sbBlockSize(got.sb) !== c.bs) continue;
    if (superblockProblem(got.sb) !== null || !sbChecksumOk(got.sb, got.raw)) continue;
    return { ...got, block: c.block };
  }
  return null;
}

/** Read the descriptor table; `backupBlock` (> 0) reads the copy after a backup superblock. */
async function loadDescriptors(
  dev: BlockDevice, cache: BufferCache, sb: Superblock, backupBlock: number,
): Promise<{ groups: GroupDesc[]; ok: Uint8Array; want: Uint16Array }> {
  const bs = sbBlockSize(sb);
  const ds = sbDescSize(sb);
  const dpb = Math.floor(bs / ds);
  const n = groupCountOf(sb);
  const total = sbBlocksCount(sb);
  const metaBg = hasIncompat(sb, EXT4_FEATURE_INCOMPAT_META_BG);
  const metadataCsum = hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM);
  const gdtCsum = hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_GDT_CSUM);
  const seed = fsChecksumSeed(sb.s_uuid, hasIncompat(sb, EXT4_FEATURE_INCOMPAT_CSUM_SEED), sb.s_checksum_seed);
  const is64bit = hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT);
  const groups: GroupDesc[] = new Array<GroupDesc>(n);
  const ok = new Uint8Array(n);
  const want = new Uint16Array(n);
  const nblocks = Math.ceil(n / dpb);
  const zero = new Uint8Array(bs);
  for (let i = 0; i < nblocks; i++) {
    let loc: number;
    if (backupBlock > 0 && (!metaBg || i < sb.s_first_meta_bg)) loc = backupBlock + 1 + i;
    else loc = descriptorLoc(sb, i);
    let block: Uint8Array = zero;
    if (loc < total && (loc + 1) * bs <= dev.size) {
      try {
        block = await cache.get(loc);
      } catch (e) {
        if (!(e instanceof FsError && e.code === "EIO")) throw e;
      }
    }
    for (let j = 0; j < dpb; j++) {
      const g = i * dpb + j;
      if (g >= n) break;
      const raw = block.subarray(j * ds, (j + 1) * ds);
      const gd = groupDesc.decode(raw, 0, ds);
      groups[g] = gd;
      if (!metadataCsum && !gdtCsum) ok[g] = 1;
      else {
        want[g] = groupDescChecksum(raw, g, { csumSeed: seed, uuid: sb.s_uuid, metadataCsum, gdtCsum, descSize: ds, is64bit });
        ok[g] = want[g] === gd.bg_checksum ? 1 : 0;
      }
    }
  }
  return { groups, ok, want };
}

/**
 * e2fsprogs ext2fs_check_desc: every bitmap and inode table inside its group (anywhere in
 * the volume with flex_bg), none overlapping another or the superblock and descriptor
 * copies. Returns the first failure as e2fsck words it, or null.
 */
export function checkDesc(v: FsckVolume): string | null {
  if (v.descSize & (v.descSize - 1)) return "Block group descriptor size incorrect";
  const seen = new ChunkedBitmap(v.blocksCount);
  for (let g = 0; g < v.groupCount; g++) v.forEachSuperAndBgdBlock(g, (b) => seen.set(b));
  const mark = (b: number): boolean => !seen.set(b);
  for (let g = 0; g < v.groupCount; g++) {
    const first = v.f.flexBg ? v.firstDataBlock : v.groupFirstBlock(g);
    const last = v.f.flexBg ? v.blocksCount - 1 : v.groupLastBlock(g);
    const bb = v.blockBitmapLoc(g);
    if (bb < first || bb > last || !mark(bb)) return "Corrupt group descriptor: bad block for block bitmap";
    const ib = v.inodeBitmapLoc(g);
    if (ib < first || ib > last || !mark(ib)) return "Corrupt group descriptor: bad block for inode bitmap";
    const it = v.inodeTableLoc(g);
    if (it < first || it + v.itableBlocks - 1 > last) return "Corrupt group descriptor: bad block for inode table";
    for (let b = it; b < it + v.itableBlocks; b++) if (!mark(b)) return "Corrupt group descriptor: bad block for inode table";
  }
  return null;
}

/**
 * A volume opened through a backup superblock trusts none of the uninit hints: every group's
 * BLOCK_UNINIT and INODE_UNINIT are dropped, bg_itable_unused zeroed and the checksums made
 * to match (in memory; written when the repairs write the descriptors). @e2fsprogs ext2fs_open2
 */
function resetBackupDescriptors(v: FsckVolume): void {
  if (!v.f.groupDescCsum) return;
  for (let g = 0; g < v.groupCount; g++) {
    const gd = v.group(g);
    gd.bg_flags &= ~(EXT4_BG_BLOCK_UNINIT | EXT4_BG_INODE_UNINIT) & 0xffff;
    setItableUnused(gd, 0, v.descSize);
    gd.bg_checksum = v.descChecksum(g);
    v.gdCsumWant[g] = gd.bg_checksum;
    v.gdCsumOk[g] = 1;
  }
}

export interface OpenOptions {
  name: string;
  makeCache: (blockSize: number) => BufferCache;
}

/**
 * Open `dev` for checking. Reports what e2fsck reports while opening (problems before
 * pass 1) and throws FsckAbort (through the reporter) when nothing usable is found.
 */
export async function openVolume(dev: BlockDevice, r: Reporter, o: OpenOptions): Promise<FsckVolume> {
  const primary = await readSuperAt(dev, SUPERBLOCK_OFFSET);
  let chosen: { sb: Superblock; raw: Uint8Array; block: number } | null = null;
  const why = primary === null ? "Attempt to read block from filesystem resulted in short read" : superblockProblem(primary.sb);
  if (primary !== null && why === null) {
    if (sbChecksumOk(primary.sb, primary.raw)) chosen = { ...primary, block: 0 };
    else {
      r.fix(PR_0_SB_CSUM_INVALID);
      const b = await findBackup(dev, primary.sb);
      chosen = b ?? { ...primary, block: 0 };
      if (b !== null) r.fix(PR_0_USING_BACKUP, { str: "Superblock invalid,", blk: b.block });
    }
  } else {
    const b = await findBackup(dev, primary?.sb ?? null);
    if (b === null) r.fix(PR_0_SB_CORRUPT, { str: why ?? "no superblock" });
    else {
      chosen = b;
      r.fix(PR_0_OPEN_FAILED, { str: why ?? "Superblock invalid" });
      r.fix(PR_0_USING_BACKUP, { str: "Superblock invalid,", blk: b.block });
    }
  }
  if (chosen === null) throw new Error("unreachable: PR_0_SB_CORRUPT is fatal");
  const sb = chosen.sb;

  const incompat = sb.s_feature_incompat >>> 0;
  const unknown = incompat & (~EXT4_FEATURE_INCOMPAT_KNOWN | E2FSCK_UNSUPPORTED_INCOMPAT);
  if (unknown !== 0) {
    r.fix(PR_0_UNSUPPORTED_FEATURES, { str: featureNames({ s_feature_compat: 0, s_feature_incompat: unknown, s_feature_ro_compat: 0 }).join(" ") || `0x${unknown.toString(16)}` });
  }
  if (incompat & EXT4_FEATURE_INCOMPAT_JOURNAL_DEV) {
    r.fix(PR_0_UNSUPPORTED_FEATURES, { str: "journal_dev (this is an external journal device, not a filesystem)" });
  }

  const cache = o.makeCache(sbBlockSize(sb));
  const { groups, ok, want } = await loadDescriptors(dev, cache, sb, chosen.block);
  // e2fsck names the volume by its label when it has one (ctx->device_name).
  const display = sbVolumeName(sb) || o.name;
  let v = new FsckVolume({ dev, cache, name: display, sb, sbRaw: chosen.raw, backupSuperblock: chosen.block, groups, gdCsumOk: ok, gdCsumWant: want });
  // e2fsck checks the descriptors only of a primary it opened itself, and not when preening.
  const bad = chosen.block === 0 && r.mode !== "preen" ? checkDesc(v) : null;
  if (bad !== null) {
    r.fix(PR_0_CHECK_DESC_FAILED, { str: bad });
    if (v.groupCount > 1) {
      // e2fsck: "Group descriptors look bad... trying backup blocks...", then opens the backup
      // superblock and its descriptor copy, whatever they hold (ext2fs_open2 does not check them).
      r.fix(PR_0_USING_BACKUP, { str: "Group descriptors look bad..." });
      const b = await findBackup(dev, sb);
      if (b !== null) {
        const alt = await loadDescriptors(dev, cache, b.sb, b.block);
        v = new FsckVolume({ dev, cache, name: display, sb: b.sb, sbRaw: b.raw, backupSuperblock: b.block, groups: alt.groups, gdCsumOk: alt.ok, gdCsumWant: alt.want });
      }
    }
  }
  if (v.backupSuperblock !== 0) resetBackupDescriptors(v);
  return v;
}
