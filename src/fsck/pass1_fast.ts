/**
 * Pass 1's fast path: the inode that needs nothing said, decided from its bytes alone.
 *
 * Most inodes of a healthy volume are unused, or plain files and directories whose blocks
 * sit in the inode itself. For those, the full path (`Pass1.inode`, e2fsck_pass1's loop
 * body) builds a record, awaits a dozen helpers and walks a generic block iterator only to
 * find nothing. `fastInode` takes such an inode in one synchronous look at the table bytes:
 *
 * - never used or deleted (no links), its checksum good: the file type is noted;
 * - a regular file or directory in use whose every field and block passes the full path's
 *   checks, with nothing that asks for another read or a question: no inline data, htree,
 *   encryption, casefold, verity, huge-file or EA-inode flag, no xattr block, no in-inode
 *   xattrs, extents in the inode (depth 0) or direct block pointers only, not bigalloc.
 *
 * For those it does exactly the full path's bookkeeping and returns true. For any other
 * inode it returns false having changed nothing, and the caller takes the full path, which
 * reports what is wrong. So each test below is the negation of a problem the full path
 * would raise (or of a branch it would take), checked before anything is recorded.
 * `CheckOptions.fastPath: false` turns this off; the tests compare both ways.
 */

import { EXT_INIT_MAX_LEN, extentHeader, extentLeaf } from "../format/extent.js";
import { extentHeaderOk, maxBlockMapSize } from "./blockmap.js";
import type { CheckContext } from "./context.js";
import type { FsckVolume } from "./volume.js";
import { fileTypeOfMode } from "./context.js";
import {
  EXT4_CASEFOLD_FL, EXT4_EA_INODE_FL, EXT4_ENCRYPT_FL, EXT4_EXTENTS_FL, EXT4_GOOD_OLD_INODE_SIZE, EXT4_HUGE_FILE_FL, EXT4_IMAGIC_FL,
  EXT4_INDEX_FL, EXT4_INLINE_DATA_FL, EXT4_VERITY_FL, S_IFDIR, S_IFMT, S_IFREG, inodeStruct,
} from "../format/inode.js";
import { EXT4_XATTR_MAGIC } from "../format/xattr.js";

const o = (f: Parameters<typeof inodeStruct.offsetOf>[0]): number => inodeStruct.offsetOf(f);
const I_MODE = o("i_mode");
const I_UID = o("i_uid");
const I_SIZE_LO = o("i_size_lo");
const I_DTIME = o("i_dtime");
const I_GID = o("i_gid");
const I_LINKS = o("i_links_count");
const I_BLOCKS_LO = o("i_blocks_lo");
const I_FLAGS = o("i_flags");
const I_BLOCK = o("i_block");
const I_GENERATION = o("i_generation");
const I_FILE_ACL_LO = o("i_file_acl_lo");
const I_SIZE_HIGH = o("i_size_high");
const I_FADDR = o("i_obso_faddr");
const I_BLOCKS_HIGH = o("l_i_blocks_high");
const I_FILE_ACL_HIGH = o("l_i_file_acl_high");
const I_UID_HIGH = o("l_i_uid_high");
const I_GID_HIGH = o("l_i_gid_high");
const I_EXTRA = o("i_extra_isize");
const I_PROJID = o("i_projid");
const PROJID_END = inodeStruct.endOf("i_projid");

const EH_ENTRIES = extentHeader.offsetOf("eh_entries");
const EH_DEPTH = extentHeader.offsetOf("eh_depth");
const EXTENT_SIZE = extentLeaf.size;
const EE_BLOCK = extentLeaf.offsetOf("ee_block");
const EE_LEN = extentLeaf.offsetOf("ee_len");
const EE_START_HI = extentLeaf.offsetOf("ee_start_hi");
const EE_START_LO = extentLeaf.offsetOf("ee_start_lo");
/** Leaf entries an i_block root holds. */
const ROOT_ENTRIES_MAX = (60 - extentHeader.size) / extentLeaf.size;

const EXT2_NDIR_BLOCKS = 12;

/** Pass 1's latch keys (one latch instance per inode, like e2fsck's per-check_blocks latches; check_blocks ends the first two). */
export const LATCH_BLOCK = 1;
export const LATCH_TOOBIG = 2;
export const LATCH_BBLOCK = 3;
export const LATCH_LOW_DTIME = 4;

/** Flags that send an inode down the full path (each is a branch or a problem there). */
const SLOW_FLAGS = EXT4_CASEFOLD_FL | EXT4_INLINE_DATA_FL | EXT4_IMAGIC_FL | EXT4_ENCRYPT_FL | EXT4_INDEX_FL | EXT4_VERITY_FL
  | EXT4_HUGE_FILE_FL | EXT4_EA_INODE_FL;


/** The volume's limits fastInode compares against, worked out once per volume rather than per inode. */
interface Limits {
  readonly v: FsckVolume;
  /** A directory's blocks end below this logical block (e2fsck's check on lblk + len, no largedir). */
  readonly dirLimit: number;
  /** The largest i_size of an extent-mapped file. */
  readonly maxExtentSize: number;
  /** The largest i_size of a block-mapped file. */
  readonly maxMapSize: number;
}
let limits: Limits | undefined;

function limitsOf(v: FsckVolume): Limits {
  if (limits?.v !== v) {
    limits = { v, dirLimit: 2 ** (21 - v.sb.s_log_block_size), maxExtentSize: 2 ** (32 + v.log2BlockSize) - 1, maxMapSize: maxBlockMapSize(v.log2BlockSize) };
  }
  return limits;
}

/** Scratch for one inode's extents or direct blocks, validated before any is recorded. */
const runStart = new Float64Array(EXT2_NDIR_BLOCKS);
const runLblk = new Float64Array(EXT2_NDIR_BLOCKS);
const runLen = new Float64Array(EXT2_NDIR_BLOCKS);

/**
 * The inode `ino` at `buf[at..]`: true when it was taken whole (see the module comment).
 * `d` is a DataView of the same bytes as `buf` (fields are read through it: V8 compiles its
 * little-endian loads to single instructions). `csumOk` is the inode's checksum verdict
 * (true on volumes without metadata_csum); `lowDtimeCheck` is pass 1's flag of that name.
 */
export function fastInode(c: CheckContext, ino: number, buf: Uint8Array, d: DataView, at: number, csumOk: boolean, lowDtimeCheck: boolean): boolean {
  const v = c.v;
  if (!csumOk || ino < v.firstIno) return false;
  const mode = d.getUint16(at + I_MODE, true);
  const links = d.getUint16(at + I_LINKS, true);
  const dtime = d.getUint32(at + I_DTIME, true);
  if (links === 0) {
    // Unused: the full path only asks about a missing or low dtime.
    if (mode !== 0 && dtime === 0) return false;
    if (dtime !== 0 && lowDtimeCheck && dtime < v.inodesCount) return false;
    if (mode !== 0) c.ftype.set(ino, fileTypeOfMode(mode));
    return true;
  }
  const type = mode & S_IFMT;
  const flags = d.getUint32(at + I_FLAGS, true);
  if (dtime !== 0 || (type !== S_IFREG && type !== S_IFDIR) || (flags & SLOW_FLAGS) !== 0) return false;
  const isDir = type === S_IFDIR;
  const extents = (flags & EXT4_EXTENTS_FL) !== 0;
  const f = v.f;
  if (extents ? !f.extents : f.extents && extentHeaderOk(buf, 60, at + I_BLOCK)) return false;
  if (d.getUint32(at + I_FILE_ACL_LO, true) !== 0 || d.getUint16(at + I_FILE_ACL_HIGH, true) !== 0 || d.getUint32(at + I_FADDR, true) !== 0) return false;
  const sizeHigh = d.getUint32(at + I_SIZE_HIGH, true);
  if ((isDir && sizeHigh !== 0 && !f.largedir) || (!f.hugeFile && d.getUint16(at + I_BLOCKS_HIGH, true) !== 0)) return false;
  // checkInodeExtraSpace: a valid i_extra_isize and no in-inode attributes.
  const isz = v.inodeSize;
  let extra = 0;
  if (isz > EXT4_GOOD_OLD_INODE_SIZE) {
    extra = d.getUint16(at + I_EXTRA, true);
    const max = isz - EXT4_GOOD_OLD_INODE_SIZE;
    if (extra !== 0 && (extra < 4 || extra > max || (extra & 3) !== 0)) return false;
    if (extra < max - 4 && d.getUint32(at + EXT4_GOOD_OLD_INODE_SIZE + extra, true) === EXT4_XATTR_MAGIC) return false;
  }
  if (v.clusterRatio !== 1) return false;

  // The blocks (check_blocks_extents over a depth-0 root, or ext2fs_block_iterate3 over direct pointers).
  const size = d.getUint32(at + I_SIZE_LO, true) + sizeHigh * 2 ** 32;
  const lim = limitsOf(v);
  const first = v.firstDataBlock;
  const total = v.blocksCount;
  const ib = at + I_BLOCK;
  let runs = 0;
  let numBlocks = 0;
  let lastBlock = -1;
  let fragmented = false;
  let previous = 0;
  if (extents) {
    if (!extentHeaderOk(buf, 60, ib) || d.getUint16(ib + EH_DEPTH, true) !== 0) return false;
    const entries = d.getUint16(ib + EH_ENTRIES, true);
    if (entries > ROOT_ENTRIES_MAX) return false;
    let next = 0;
    for (let i = 0; i < entries; i++) {
      const e = ib + extentHeader.size + i * EXTENT_SIZE;
      const lblk = d.getUint32(e + EE_BLOCK, true);
      const rawLen = d.getUint16(e + EE_LEN, true);
      const uninit = rawLen > EXT_INIT_MAX_LEN;
      const len = uninit ? rawLen - EXT_INIT_MAX_LEN : rawLen;
      const pblk = d.getUint32(e + EE_START_LO, true) + d.getUint16(e + EE_START_HI, true) * 2 ** 32;
      // scan_extent_node's problems, in its order: bad start, out of order, zero length, beyond the end,
      // a directory too big, a collision; then a directory's uninitialized extent or gap (questions).
      if (pblk === 0 || pblk < first || pblk >= total || lblk < lastBlock || len === 0 || pblk + len > total) return false;
      if (isDir && (uninit || (sizeHigh === 0 && !f.largedir && lblk + len > lim.dirLimit) || lastBlock + 1 < lblk)) return false;
      if (lblk < next) return false;
      next = lblk + len;
      if (previous !== 0 && previous + 1 !== pblk) fragmented = true;
      runStart[runs] = pblk;
      runLblk[runs] = lblk;
      runLen[runs++] = len;
      numBlocks += len;
      previous = pblk + len - 1;
      lastBlock = lblk + len - 1;
    }
    // i_size below the last initialized block (uninit extents of regular files do not count).
    if (!isDir) {
      let lastInit = -1;
      for (let i = 0; i < entries; i++) {
        if (d.getUint16(ib + extentHeader.size + i * EXTENT_SIZE + EE_LEN, true) <= EXT_INIT_MAX_LEN) lastInit = runLblk[i]! + runLen[i]! - 1;
      }
      if ((lastInit >= 0 && size < lastInit * v.blockSize) || size > lim.maxExtentSize) return false;
    }
  } else {
    for (let i = EXT2_NDIR_BLOCKS; i < 15; i++) if (d.getUint32(ib + i * 4, true) !== 0) return false;
    for (let i = 0; i < EXT2_NDIR_BLOCKS; i++) {
      const blk = d.getUint32(ib + i * 4, true);
      if (blk === 0) {
        if (isDir) break; // a directory hole: the full path lists it for pass 2
        continue;
      }
      if (blk < first || blk >= total) return false;
      if (previous !== 0 && previous + 1 !== blk) fragmented = true;
      runStart[runs] = blk;
      runLblk[runs] = i;
      runLen[runs++] = 1;
      numBlocks++;
      previous = blk;
      lastBlock = i;
    }
    // Pointers after a directory's first hole.
    if (isDir) for (let i = lastBlock + 1; i < EXT2_NDIR_BLOCKS; i++) if (d.getUint32(ib + i * 4, true) !== 0) return false;
    if (!isDir && ((lastBlock >= 0 && size < lastBlock * v.blockSize) || size > lim.maxMapSize)) return false;
  }
  // check_blocks after the walk: an empty or mis-sized directory, i_blocks.
  if (isDir) {
    if (numBlocks === 0 || size % v.blockSize !== 0) return false;
    const nblock = Math.floor(size / v.blockSize) % 2 ** 32;
    if (nblock > lastBlock + 1 || (nblock < lastBlock + 1 && lastBlock + 1 - nblock > v.sb.s_prealloc_dir_blocks)) return false;
  }
  const iBlocks = d.getUint32(at + I_BLOCKS_LO, true) + (f.hugeFile ? d.getUint16(at + I_BLOCKS_HIGH, true) * 2 ** 32 : 0);
  if (v.sb.s_creator_os !== 1 && numBlocks * (v.blockSize / 512) !== iBlocks) return false;

  // Taken: the full path's bookkeeping, in its order.
  c.ftype.set(ino, fileTypeOfMode(mode));
  c.linkInfo.set(ino, links);
  c.inodeUsed.set(ino);
  if (isDir) {
    c.dirs.add(ino, d.getUint32(at + I_GENERATION, true), 0, size);
    c.counters.directories++;
    c.rehashIfBig(ino, flags, d.getUint32(at + I_SIZE_LO, true));
  } else c.counters.regular++;
  for (let i = 0; i < runs; i++) {
    const pblk = runStart[i]!;
    const len = runLen[i]!;
    c.markBlocksUsed(pblk, len);
    if (isDir) {
      const lblk = runLblk[i]!;
      for (let k = 0; k < len; k++) c.dblist.add(ino, pblk + k, lblk + k);
    }
  }
  c.r.endLatch(LATCH_BLOCK);
  c.r.endLatch(LATCH_TOOBIG);
  if (fragmented && numBlocks < v.blocksPerGroup) {
    if (isDir) c.counters.fragmentedDir++;
    else c.counters.fragmented++;
  }
  const uid = (d.getUint16(at + I_UID, true) | (d.getUint16(at + I_UID_HIGH, true) << 16)) >>> 0;
  const gid = (d.getUint16(at + I_GID, true) | (d.getUint16(at + I_GID_HIGH, true) << 16)) >>> 0;
  const projid = isz > EXT4_GOOD_OLD_INODE_SIZE && PROJID_END <= EXT4_GOOD_OLD_INODE_SIZE + extra ? d.getUint32(at + I_PROJID, true) : 0;
  c.quota.charge(ino, uid, gid, projid, numBlocks);
  if (!isDir && size >= 2 ** 31) c.counters.largeFiles++;
  return true;
}
