/**
 * Reading inodes from the inode table into checked in-core records
 * (@kernel __ext4_iget, fs/ext4/inode.c).
 *
 * An Inode is only handed out after the checks the kernel makes before trusting one:
 * number in range, i_extra_isize sane, checksum right, known file type, xattr block
 * inside the volume, and a block map or extent root that parses. Later walks can then
 * rely on the record without re-checking. Records are immutable snapshots; a small
 * bounded cache per volume keeps hot ones (directories on a path walk).
 */

import type { FsError } from "../errors.js";
import { inodeChecksumSeed, verifyInodeChecksum } from "../format/checksum.js";
import { decodeExtentNode } from "../format/extent.js";
import {
  EXT4_EA_INODE_FL,
  EXT4_EXTENTS_FL,
  EXT4_GOOD_OLD_INODE_SIZE,
  EXT4_INLINE_DATA_FL,
  EXT4_N_BLOCKS,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  decodeInode,
  inodeBlocks,
  inodeFileAcl,
  inodeSize64,
  type RawInode,
} from "../format/inode.js";
import { inodeTable } from "../format/group_desc.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";

/** What block mapping needs of an inode: read snapshots and writable InodeInfo both qualify. */
export interface MappedInode {
  readonly ino: number;
  readonly raw: RawInode;
  readonly csumSeed: number;
}

export interface Inode {
  readonly ino: number;
  readonly raw: RawInode;
  /** The on-disk bytes (inode size), for the in-inode xattr area. */
  readonly bytes: Uint8Array;
  /** i_mode including the S_IFMT type bits. */
  readonly mode: number;
  readonly size: number;
  readonly flags: number;
  /** i_blocks in 512-byte units. */
  readonly blocks: number;
  /** External xattr block, 0 if none. */
  readonly fileAcl: number;
  /** Seed for this inode's metadata checksums (0 without metadata_csum). */
  readonly csumSeed: number;
}

const CACHE_LIMIT = 4096;
const inodeCaches = new WeakMap<Ext4Fs, Map<number, Inode>>();

export function isDir(i: Inode): boolean {
  return (i.mode & S_IFMT) === S_IFDIR;
}
export function isSymlink(i: Inode): boolean {
  return (i.mode & S_IFMT) === S_IFLNK;
}
export function hasInlineData(i: Inode): boolean {
  return (i.flags & EXT4_INLINE_DATA_FL) !== 0;
}

const KNOWN_TYPES = new Set([S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO]);

/** Drop a cached snapshot after the inode was written (inode_write.ts). */
export function forgetInode(fs: Ext4Fs, ino: number): void {
  inodeCaches.get(fs)?.delete(ino);
}

/** Where inode `ino` lives: block and byte offset within it. @kernel __ext4_get_inode_loc */
export function inodeLocation(fs: Ext4Fs, ino: number): { block: number; offset: number } {
  const group = Math.floor((ino - 1) / fs.inodesPerGroup);
  const index = (ino - 1) % fs.inodesPerGroup;
  const byte = index * fs.inodeSize;
  return {
    block: inodeTable(fs.group(group), fs.descSize) + Math.floor(byte / fs.blockSize),
    offset: byte % fs.blockSize,
  };
}

/**
 * Read and check inode `ino`. Throws EFSCORRUPTED / EFSBADCRC naming the inode; an
 * unallocated inode (links 0) reached through a directory is EFSCORRUPTED too, where
 * the kernel says ESTALE.
 * @kernel __ext4_iget
 */
export async function iget(fs: Ext4Fs, ino: number, opts: { allowUnlinked?: boolean } = {}): Promise<Inode> {
  let cache = inodeCaches.get(fs);
  if (cache === undefined) {
    cache = new Map();
    inodeCaches.set(fs, cache);
  }
  const hit = cache.get(ino);
  if (hit !== undefined && (hit.raw.i_links_count > 0 || opts.allowUnlinked === true)) {
    cache.delete(ino); // re-insert: Map order is our LRU order
    cache.set(ino, hit);
    return hit;
  }
  if (!Number.isInteger(ino) || ino < 1 || ino > fs.inodesCount) {
    throw fsCorrupted(fs, { ino, what: `Inode number ${ino} out of range 1..${fs.inodesCount}` });
  }
  const loc = inodeLocation(fs, ino);
  if (!fs.cache.has(loc.block)) await readaheadInodeTable(fs, ino, loc.block);
  const blk = await fs.cache.get(loc.block);
  const bytes = blk.slice(loc.offset, loc.offset + fs.inodeSize);
  const inode = checkInode(fs, ino, bytes, loc.block, opts.allowUnlinked === true);
  cache.set(ino, inode);
  if (cache.size > CACHE_LIMIT) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  return inode;
}

/**
 * A symlink whose target lives in i_block: no blocks but (maybe) its xattr block.
 * @kernel ext4_inode_is_fast_symlink
 */
export function isFastSymlinkRaw(flags: number, size: number, blocks: number, fileAcl: number, clusterSize: number): boolean {
  if (flags & EXT4_EA_INODE_FL) return size > 0 && size < EXT4_N_BLOCKS * 4;
  if (flags & EXT4_INLINE_DATA_FL) return false;
  return blocks - (fileAcl !== 0 ? clusterSize >> 9 : 0) === 0;
}

export function isFastSymlink(fs: Ext4Fs, inode: Inode): boolean {
  return isSymlink(inode) && isFastSymlinkRaw(inode.flags, inode.size, inode.blocks, inode.fileAcl, fs.blockSize);
}

/** Inode table blocks read at once on a miss. @kernel inode_readahead_blks (default 32) */
const INODE_READAHEAD_BLKS = 32;

/**
 * Read the inode table from `block` on, up to the end of the group's table, in one
 * request: neighbouring inodes are usually wanted next (a directory's files).
 * @kernel __ext4_get_inode_loc (readahead part)
 */
async function readaheadInodeTable(fs: Ext4Fs, ino: number, block: number): Promise<void> {
  const group = Math.floor((ino - 1) / fs.inodesPerGroup);
  const tableEnd = inodeTable(fs.group(group), fs.descSize) + Math.ceil((fs.inodesPerGroup * fs.inodeSize) / fs.blockSize);
  await fs.cache.getMany(block, Math.max(1, Math.min(INODE_READAHEAD_BLKS, tableEnd - block)));
}

function checkInode(fs: Ext4Fs, ino: number, bytes: Uint8Array, block: number, allowUnlinked: boolean): Inode {
  const bad = (what: string, crc = false): FsError => fsCorrupted(fs, { ino, block, what, crc });
  if (fs.inodeSize > EXT4_GOOD_OLD_INODE_SIZE) {
    const extra = bytes[0x80]! | (bytes[0x81]! << 8);
    if (EXT4_GOOD_OLD_INODE_SIZE + extra > fs.inodeSize || extra & 3) {
      throw bad(`Bad i_extra_isize ${extra} (inode size ${fs.inodeSize})`);
    }
  }
  const raw = decodeInode(bytes, 0, fs.inodeSize);
  let csumSeed = 0;
  if (fs.features.metadataCsum) {
    csumSeed = inodeChecksumSeed(fs.csumSeed, ino, raw.i_generation);
    // An all-zero inode has no checksum to check; it fails below as unallocated.
    if (!bytes.every((b) => b === 0) && !verifyInodeChecksum(bytes, 0, fs.inodeSize, csumSeed)) {
      throw bad("Inode checksum does not match", true);
    }
  }
  // An unlinked inode is still valid for whoever holds it open (allowUnlinked); its i_dtime
  // may link the orphan list, so only the mode tells it from a never-used inode.
  if (raw.i_links_count === 0 && !(allowUnlinked && raw.i_mode !== 0)) {
    throw bad(raw.i_mode === 0 ? "Inode is not in use (mode 0, no links)" : "Inode is deleted (links count 0)");
  }
  const type = raw.i_mode & S_IFMT;
  if (!KNOWN_TYPES.has(type)) throw bad(`Bogus i_mode 0${raw.i_mode.toString(8)}`);
  // i_size_high is checked before joining: sizes past 2^53 cannot be files ext4 made
  // (s_maxbytes is below 2^44), and the kernel rejects negative ones ("bad i_size value").
  const sizeHigh = type === S_IFREG || fs.features.largedir ? raw.i_size_high : 0;
  if (sizeHigh >= 2 ** 21) throw bad(`Bad i_size value: i_size_high is 0x${sizeHigh.toString(16)}`);
  const size = inodeSize64(raw, fs.features.largedir);
  const fileAcl = inodeFileAcl(raw, fs.features.is64bit);
  if (fileAcl !== 0 && !fs.blockRangeValid(fileAcl, 1)) throw bad(`Bad extended attribute block ${fileAcl}`);
  const flags = raw.i_flags;
  const inline = (flags & EXT4_INLINE_DATA_FL) !== 0;
  if (inline && !fs.features.inlineData) throw bad("Inline data flag set but inline_data feature is off");
  const blocks = inodeBlocks(raw, fs.features.hugeFile, fs.blockSize);
  const fast = type === S_IFLNK && isFastSymlinkRaw(flags, size, blocks, fileAcl, fs.blockSize);
  if (fast) {
    // @kernel __ext4_iget: the target must fill exactly i_size bytes of i_block, NUL-terminated.
    const nul = raw.i_block.indexOf(0);
    if (size === 0 || size >= raw.i_block.length || nul !== size) throw bad(`Invalid fast symlink length ${size}`);
  } else if ((type === S_IFREG || type === S_IFDIR || type === S_IFLNK) && !inline && flags & EXT4_EXTENTS_FL) {
    decodeExtentNode(raw.i_block, 60, { isRoot: true, blocksCount: fs.blocksCount, firstDataBlock: fs.sb.s_first_data_block, ctx: { ino } });
  }
  return {
    ino,
    raw,
    bytes,
    mode: raw.i_mode,
    size,
    flags,
    blocks,
    fileAcl,
    csumSeed,
  };
}
