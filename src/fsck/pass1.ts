/**
 * Pass 1: every inode, its blocks and sizes (e2fsck pass1.c).
 *
 * The inode table is streamed group by group in large uncached reads; each inode in use
 * is checked (mode, flags, dtime, checksum, extra size, in-inode and block attributes,
 * inline data, symlinks) and its block map or extent tree walked: every block claimed is
 * marked in blockFound (a second claim goes to blockDup for pass 1B), directory blocks are
 * listed for pass 2, and i_size and i_blocks are compared with what the walk found.
 *
 * Every question is answered no, so the walk goes on where e2fsck -n goes on and stops
 * where it stops; what is reported is what `e2fsck -fn` reports.
 */

import { decodeInodeFast } from "./inode_fast.js";
import { blockAllocStats, clearInode } from "./repair.js";
import { freeBlocks, lookupLostAndFound, reserveRepairBlocks } from "./lost_found.js";
import { readInode } from "./paths.js";
import { FsckRestart } from "./report.js";
import { recLenFromDisk } from "../format/dirent.js";
import { extentBlockChecksum, inodeChecksumSeed } from "../format/checksum.js";
import { EXT_INIT_MAX_LEN, extentHeader, extentIdx, extentLeaf, extentTail } from "../format/extent.js";
import { EXT4_BG_INODE_UNINIT, itableUnused, setBlockBitmap, setInodeBitmap, setInodeTable } from "../format/group_desc.js";
import { dxRoot } from "../format/htree.js";
import {
  EXT4_APPEND_FL, EXT4_BAD_INO, EXT4_CASEFOLD_FL, EXT4_ENCRYPT_FL, EXT4_EXTENTS_FL, EXT4_GOOD_OLD_INODE_SIZE, EXT4_HUGE_FILE_FL,
  EXT4_IMAGIC_FL, EXT4_IMMUTABLE_FL, EXT4_INDEX_FL, EXT4_INLINE_DATA_FL, EXT4_JOURNAL_INO, EXT4_RESIZE_INO, EXT4_ROOT_INO,
  EXT4_VERITY_FL, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, inodeStruct, type RawInode,
} from "../format/inode.js";
import { EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_INCOMPAT_INLINE_DATA } from "../format/features.js";
import { mmpBlock } from "../format/superblock.js";
import type {
  CheckContext} from "./context.js";
import { CORRUPT_ENCRYPTION_POLICY, NO_ENCRYPTION_POLICY, DIR_CASEFOLD, DIR_ENCRYPTED, DIR_HTREE, DIR_INLINE, DxDir, fileTypeOfMode,
} from "./context.js";
import {
  PR_1E_CAN_COLLAPSE_EXTENT_TREE, PR_1E_CAN_NARROW_EXTENT_TREE, PR_1_BAD_I_BLOCKS, PR_1_BAD_I_SIZE, PR_1_BAD_PRIMARY_GROUP_DESCRIPTOR, PR_1_BAD_PRIMARY_SUPERBLOCK, PR_1_BAD_GROUP_DESCRIPTORS,
  PR_1_BAD_SUPERBLOCK, PR_1_RELOC_BLOCK_ALLOCATE, PR_1_RELOC_FROM_TO, PR_1_RELOC_TO, PR_1_BB_BAD_BLOCK, PR_1_BB_CONFLICT, PR_1_BB_ILLEGAL_BLOCK_NUM, PR_1_BADBLOCKS_IN_BADBLOCKS, PR_1_BLOCK_ITERATE, PR_1_CASEFOLD_FEATURE,
  PR_1_CASEFOLD_NONDIR, PR_1_CLEAR_EXTENT_FOR_INLINE_DATA, PR_1_CLEAR_EXTENT_INLINE_DATA_FLAGS, PR_1_CLEAR_EXTENT_INLINE_DATA_INODE,
  PR_1_CLEAR_INLINE_DATA_FOR_EXTENT, PR_1_COLLAPSE_DBLOCK, PR_1_CRITICAL_METADATA_COLLISION, PR_1_EXTATTR_REFCOUNT,
  PR_1_EXTENTS_SET, PR_1_EXTENT_BAD_START_BLK, PR_1_EXTENT_COLLISION, PR_1_EXTENT_ENDS_BEYOND, PR_1_EXTENT_END_OUT_OF_BOUNDS,
  PR_1_EXTENT_FEATURE, PR_1_EXTENT_HEADER_INVALID, PR_1_EXTENT_INDEX_START_INVALID, PR_1_EXTENT_LENGTH_ZERO,
  PR_1_EXTENT_ONLY_CSUM_INVALID, PR_1_FAST_SYMLINK_EXTENT_FL, PR_1_HTREE_BADROOT, PR_1_HTREE_DEPTH, PR_2_FEATURE_LARGE_DIRS, PR_1_MISSING_ENCRYPTION_XATTR, PR_1_CORRUPT_ENCRYPTION_XATTR, PR_1_HTREE_HASHV,
  PR_1_HTREE_INCOMPAT, PR_1_HTREE_NODIR, PR_1_HTREE_SET, PR_1_IB_BAD_BLOCK, PR_1_IB_CONFLICT, PR_1_ILLEGAL_BLOCK_NUM,
  PR_1_INLINE_DATA_FEATURE, PR_1_INLINE_DATA_NO_ATTR, PR_1_INLINE_DATA_SET, PR_1_INODE_BBLOCK_LATCH, PR_1_INODE_BLOCK_LATCH,
  PR_1_INODE_IS_GARBAGE, PR_1_INODE_ONLY_CSUM_INVALID, PR_1_INODE_TOOBIG, PR_1_INVALID_BAD_INODE, PR_1_ITABLE_CONFLICT,
  PR_1_JOURNAL_BAD_MODE, PR_1_JOURNAL_INODE_NOT_CLEAR, PR_1_LOW_DTIME, PR_1_MISSING_EXTENT_HEADER, PR_1_NO_BIGALLOC_BLOCKMAP_FILES,
  PR_1_ORPHAN_LIST_REFUGEES, PR_1_OUT_OF_ORDER_EXTENTS, PR_1_QUOTA_BAD_MODE, PR_1_QUOTA_INODE_NOT_CLEAR, PR_1_RESERVED_BAD_MODE,
  PR_1_ROOT_DTIME, PR_1_ROOT_NO_DIR, PR_1_SET_DTIME, PR_1_SET_IMAGIC, PR_1_SET_IMMUTABLE, PR_1_SET_NONZSIZE,
  PR_1_SPECIAL_EXTENTS_IDATA, PR_1_TOOBIG_DIR, PR_1_TOOBIG_REG, PR_1_TOOBIG_SYMLINK, PR_1_TOO_MANY_BAD_BLOCKS, PR_1_SUPPRESS_MESSAGES,
  PR_1_TREAT_AS_DIRECTORY, PR_1_UNINIT_DBLOCK, PR_1_UNSET_EXTENT_FL, PR_1_ZERO_DTIME, PR_1_ZERO_LENGTH_DIR,
  PR_1_ISCAN_ERROR, PR_1_PROGERR_CLAIMED_BLOCK, PR_1_BB_FS_BLOCK, PR_1_BBINODE_BAD_METABLOCK_PROMPT, PR_1_EXTATTR_READ_ABORT, type ProblemDef,
} from "./problem.js";
import { extentHeaderOk, iterateBlocks, mapLogical, maxBlockMapSize } from "./blockmap.js";
import { countExtentLevel, extentTreeSlack, writeExtentBlock, type ExtentLevel } from "./extent_edit.js";
import { LATCH_BBLOCK, LATCH_BLOCK, LATCH_LOW_DTIME, LATCH_TOOBIG, fastInode } from "./pass1_fast.js";
import { inodeCsumOk, SanityRing, type SanityGeometry, type SanityHelperFactory } from "./sanity.js";
import { checkExtAttr, checkInodeExtraSpace, readXattrs } from "./xattr_check.js";
import { u16, u32 } from "./bytes.js";

// Field offsets for the fast path over unused inodes (from the inode table, not literals).
const OFF_MODE = inodeStruct.offsetOf("i_mode");
const OFF_LINKS = inodeStruct.offsetOf("i_links_count");
const OFF_DTIME = inodeStruct.offsetOf("i_dtime");
const OFF_EXTRA = inodeStruct.offsetOf("i_extra_isize");
const EH_ENTRIES = extentHeader.offsetOf("eh_entries");
const EH_DEPTH = extentHeader.offsetOf("eh_depth");
const EH_MAX = extentHeader.offsetOf("eh_max");
const EE_BLOCK = extentLeaf.offsetOf("ee_block");
const EE_LEN = extentLeaf.offsetOf("ee_len");
const EE_START_LO = extentLeaf.offsetOf("ee_start_lo");
const EE_START_HI = extentLeaf.offsetOf("ee_start_hi");
const EI_BLOCK = extentIdx.offsetOf("ei_block");
const EI_LEAF_LO = extentIdx.offsetOf("ei_leaf_lo");
const EI_LEAF_HI = extentIdx.offsetOf("ei_leaf_hi");

const EXT2_N_BLOCKS = 15;
/**
 * Inode table bytes read per request: large enough that the reads cost little more than
 * the copying (1 MiB was no faster on the 1M-inode bench), small enough that the ring of
 * a scan with a helper holds 1 MiB.
 */
const ITABLE_READ_BYTES = 256 * 1024;
/** Chunks in the scan's ring when a helper thread judges along: three read ahead, one checked. */
const RING_SLOTS = 4;
/** A slice the helper holds this long is taken back: the helper is taken for dead. */
const HELPER_STALL_MS = 1000;

/** A block-map pointer a walk cleared: the block holding it (0: i_block), its value and slot (-1: unknown). */
interface ClearedPointer { ref: number; blk: number; slot: number }

/** i_block word `i` of an inode. */
const iblock = (raw: RawInode, i: number): number => u32(raw.i_block, i * 4);

/** Size of the inode (e2fsck's EXT2_I_SIZE: both halves, whatever the type). */
function iSize(raw: RawInode): number {
  return raw.i_size_lo + raw.i_size_high * 2 ** 32;
}

export function isQuotaReserved(ino: number): boolean {
  return ino === 3 || ino === 4;
}

/** ext2fs_inode_has_valid_blocks2. */
export function hasValidBlocks(raw: RawInode, fileAcl: number): boolean {
  const type = raw.i_mode & S_IFMT;
  if (type !== S_IFDIR && type !== S_IFREG && type !== S_IFLNK) return false;
  if (type === S_IFLNK) {
    if (fileAcl === 0) {
      if (raw.i_blocks_lo === 0) return false;
    } else {
      if (raw.i_size_lo >= EXT2_N_BLOCKS * 4) return true;
      if (raw.i_size_lo > 4 && iblock(raw, 1) === 0) return true;
      return false;
    }
  }
  return (raw.i_flags & EXT4_INLINE_DATA_FL) === 0;
}

/** ext2fs_is_fast_symlink (e2fsprogs 1.47): a symlink whose size fits i_block. */
function isFastSymlink(raw: RawInode): boolean {
  const size = iSize(raw);
  return (raw.i_mode & S_IFMT) === S_IFLNK && size !== 0 && size < EXT2_N_BLOCKS * 4;
}

/** e2fsck_pass1_check_device_inode. */
export function checkDeviceInode(raw: RawInode): boolean {
  if (raw.i_flags & (EXT4_INDEX_FL | EXT4_EXTENTS_FL)) return false;
  if (raw.i_flags & (EXT4_IMMUTABLE_FL | EXT4_APPEND_FL)) {
    for (let i = 4; i < EXT2_N_BLOCKS; i++) if (iblock(raw, i) !== 0) return false;
  }
  return true;
}

/** The file's size in bytes of inline data, or an error (libext2fs ext2fs_inline_data_size). */
async function inlineDataSize(c: CheckContext, bytes: Uint8Array, raw: RawInode, fileAcl: number): Promise<{ size: number; error?: string }> {
  const x = await readXattrs(c, bytes, raw.i_extra_isize, fileAcl, true);
  if (x.error !== undefined) return { size: 0, error: x.error };
  return { size: 60 + Math.max(0, x.systemDataLen) };
}

/** e2fsck_pass1_check_symlink. */
export async function checkSymlink(c: CheckContext, _ino: number, raw: RawInode, bytes: Uint8Array, fileAcl: number): Promise<boolean> {
  const v = c.v;
  if (raw.i_size_high !== 0 || raw.i_size_lo === 0 || (raw.i_flags & EXT4_INDEX_FL) !== 0) return false;
  if (raw.i_flags & EXT4_INLINE_DATA_FL) {
    if (raw.i_flags & EXT4_EXTENTS_FL) return false;
    const s = await inlineDataSize(c, bytes, raw, fileAcl);
    if (s.error !== undefined) return false;
    return raw.i_size_lo === s.size;
  }
  let buf: Uint8Array;
  if (isFastSymlink(raw)) {
    if (raw.i_flags & EXT4_EXTENTS_FL) return false;
    buf = raw.i_block;
  } else {
    let blk: number;
    if (raw.i_flags & EXT4_EXTENTS_FL) {
      const root = raw.i_block;
      if (!extentHeaderOk(root, 60)) return false;
      if (u16(root, EH_ENTRIES) !== 1 || u16(root, EH_DEPTH) !== 0) return false;
      const at = extentHeader.size;
      const lblk = u32(root, at + EE_BLOCK);
      const len = u16(root, at + EE_LEN);
      if (lblk !== 0 || len !== 1) return false;
      blk = u32(root, at + EE_START_LO) + u16(root, at + EE_START_HI) * 2 ** 32;
    } else {
      blk = iblock(raw, 0);
      for (let i = 1; i < EXT2_N_BLOCKS; i++) if (iblock(raw, i) !== 0) return false;
    }
    if (blk < v.firstDataBlock || blk >= v.blocksCount) return false;
    try {
      buf = await v.readBlock(blk);
    } catch {
      return false;
    }
  }
  let len: number;
  if (raw.i_flags & EXT4_ENCRYPT_FL) len = u16(buf, 0) + 2;
  else {
    const nul = buf.indexOf(0);
    len = nul < 0 ? buf.length : nul;
  }
  if (len >= buf.length) return false;
  return len === raw.i_size_lo;
}

/** Per-inode block walk state (e2fsck's process_block_struct). */
interface BlockWalk {
  ino: number;
  raw: RawInode;
  isDir: boolean;
  isReg: boolean;
  numBlocks: number;
  maxBlocks: number;
  /** Last logical block found; -1 stands for e2fsck's ~0 (so lastBlock + 1 is 0). */
  lastBlock: number;
  lastInitLblock: number;
  lastDbBlock: number;
  numIllegal: number;
  previousBlock: number;
  fragmented: boolean;
  nextLblock: number;
  /** The extent seen last anywhere in the tree (e2fsck's shared problem context at the end of a node). */
  lastExtent: { blk: number; blk2: number; num: number } | undefined;
  /** An iterate error (e2fsck's BLOCK_ERROR), fatal at the end of check_blocks. */
  iterateError: string | undefined;
}

/** One read of the inode scan: `nb` blocks of group `g`'s table from its block `b0`, holding `count` inodes from `firstIno`. */
interface ScanChunk { g: number; first: boolean; it: number; b0: number; nb: number; firstIno: number; count: number }

interface Deferred {
  ino: number;
  raw: RawInode;
  bytes: Uint8Array;
  eaIbodyQuota: number;
}

/** Inodes whose blocks e2fsck walks in a batch sorted by block (e2fsck's process_inode_size). */
const PROCESS_INODE_SIZE = 256;

export class Pass1 {
  readonly c: CheckContext;
  lowDtimeCheck = true;
  /** Block-mapped inodes with indirect blocks or an EA block, walked later in block order (e2fsck's inodes_to_process). */
  #queue: Deferred[] = [];
  readonly #inodeSize: number;
  /** Whether scanInodes tries pass1_fast.ts's fastInode before the full path. */
  readonly #fast: boolean;
  /** A thread that may judge the inode table's blocks alongside the scan (CheckOptions.sanityHelper). */
  readonly #sanityHelper: SanityHelperFactory | undefined;
  readonly #geometry: SanityGeometry;

  constructor(c: CheckContext, fast = true, sanityHelper?: SanityHelperFactory) {
    this.c = c;
    const v = c.v;
    this.#inodeSize = v.inodeSize;
    this.#fast = fast;
    this.#sanityHelper = sanityHelper;
    this.#geometry = {
      inodeSize: v.inodeSize, blockSize: v.blockSize, metadataCsum: v.f.metadataCsum, csumSeed: v.csumSeed,
      firstDataBlock: v.firstDataBlock, blocksCount: v.blocksCount,
    };
  }

  async run(): Promise<void> {
    const c = this.c;
    const v = c.v;
    const sb = v.sb;
    const plan = this.scanPlan();
    this.markTableBlocks();
    if ((sb.s_wtime !== 0 && sb.s_wtime < sb.s_inodes_count) || (sb.s_mtime !== 0 && sb.s_mtime < sb.s_inodes_count)
      || (sb.s_mkfs_time !== 0 && sb.s_mkfs_time < sb.s_inodes_count)) this.lowDtimeCheck = false;
    if (v.f.mmp) {
      const m = mmpBlock(sb);
      if (m > v.firstDataBlock && m < v.blocksCount) c.blockFound.set(m);
    }
    await this.readBadBlocksList();
    // @e2fsprogs e2fsck_pass1: dirs_to_hash when repairing dir_index, and /lost+found looked up first.
    if (v.f.dirIndex && c.r.repairing) {
      c.rehashBigDirs = true;
      c.lostAndFoundPass1 = await lookupLostAndFound(c);
    }
    await this.scanInodes(plan, this.#sanityHelper);
    await this.processQueue();
    await reserveRepairBlocks(c);
    this.adjustEaRefcounts();
    // A new inode table invalidates all the pass has learned: the check starts again.
    if (c.r.repairing && (await this.relocateBitmaps())) throw new FsckRestart();
    if (c.counters.largeDirs > 0 && !v.f.largedir) c.r.fix(PR_2_FEATURE_LARGE_DIRS);
  }

  /**
   * Bitmaps and inode tables found bad or outside their group get new blocks in the group
   * (or its flex group, then anywhere), holding the old blocks' bytes if there were any, else
   * zeroes; pass 5 then writes the bitmaps. Returns true when an inode table was placed:
   * the inodes it held are lost (read as zeroes) and the check must start again.
   * @e2fsprogs handle_fs_bad_blocks, new_table_block
   */
  async relocateBitmaps(): Promise<boolean> {
    const c = this.c;
    const v = c.v;
    let restart = false;
    for (let g = 0; g < v.groupCount; g++) {
      for (const [bad, name, loc, num, set] of [
        [c.invalidBlockBitmap, "block bitmap", v.blockBitmapLoc(g), 1, setBlockBitmap],
        [c.invalidInodeBitmap, "inode bitmap", v.inodeBitmapLoc(g), 1, setInodeBitmap],
        [c.invalidInodeTable, "inode table", v.inodeTableLoc(g), v.itableBlocks, setInodeTable],
      ] as const) {
        if (bad[g] === 0) continue;
        bad[g] = 0;
        let first = v.groupFirstBlock(g);
        let last = v.groupLastBlock(g);
        if (v.f.flexBg) {
          const size = 2 ** v.sb.s_log_groups_per_flex;
          first = v.groupFirstBlock(Math.floor(g / size) * size);
          last = v.groupLastBlock(Math.min(v.groupCount - 1, g | (size - 1)));
        }
        let nb = freeBlocks(c, first, last, num);
        if (nb === 0 && v.f.flexBg) nb = freeBlocks(c, v.firstDataBlock, v.blocksCount, num);
        if (nb === 0) {
          c.r.fix(PR_1_RELOC_BLOCK_ALLOCATE, { group: g, num, str: name, err: "Could not allocate block in ext2 filesystem" });
          c.r.unmarkValid();
          continue;
        }
        if (set === setInodeTable) restart = true;
        c.r.fix(loc !== 0 ? PR_1_RELOC_FROM_TO : PR_1_RELOC_TO, { group: g, str: name, blk: loc, blk2: nb });
        for (let i = 0; i < num; i++) {
          c.blockFound.set(nb + i);
          c.blockMeta.set(nb + i);
          let body = new Uint8Array(v.blockSize);
          if (loc !== 0 && loc + i < v.blocksCount) {
            try {
              body = (await v.readBlock(loc + i)).slice();
            } catch {
              body = new Uint8Array(v.blockSize);
            }
          }
          await c.out.writeBlock(nb + i, body);
        }
        set(v.group(g), nb, v.descSize);
        c.out.markGroupDirty(g, false);
        c.out.writeAllCopies();
      }
    }
    return restart;
  }

  /** e2fsck mark_table_blocks: superblock and descriptor copies, bitmaps, inode tables. */
  markTableBlocks(): void {
    const c = this.c;
    const v = c.v;
    for (let g = 0; g < v.groupCount; g++) {
      v.forEachSuperAndBgdBlock(g, (b) => {
        if (b < v.blocksCount) {
          c.blockFound.set(b);
          c.blockMeta.set(b);
        }
      });
      const it = v.inodeTableLoc(g);
      const inRange = it === 0 ? 0 : Math.min(v.itableBlocks, v.blocksCount - it);
      if (inRange > 0 && c.blockFound.rangeClear(it, inRange)) {
        // The usual case, claimed at once: no block of the table is claimed yet.
        c.blockFound.setRange(it, inRange);
        c.blockMeta.setRange(it, inRange);
      } else if (it !== 0) {
        for (let j = 0; j < v.itableBlocks; j++) {
          const b = it + j;
          if (b >= v.blocksCount) break;
          if (c.blockFound.test(b)) {
            // Asked again for each such block while the answer is no, as e2fsck does.
            if (c.invalidInodeTable[g] === 0 && c.r.ask(PR_1_ITABLE_CONFLICT, { group: g, blk: b })) c.invalidInodeTable[g] = 1;
          } else {
            c.blockFound.set(b);
            c.blockMeta.set(b);
          }
        }
      }
      const bb = v.blockBitmapLoc(g);
      if (bb !== 0 && bb < v.blocksCount) {
        if (c.blockFound.test(bb)) {
          if (c.r.ask(PR_1_BB_CONFLICT, { group: g, blk: bb })) c.invalidBlockBitmap[g] = 1;
        } else {
          c.blockFound.set(bb);
          c.blockMeta.set(bb);
        }
      }
      const ib = v.inodeBitmapLoc(g);
      if (ib !== 0 && ib < v.blocksCount) {
        if (c.blockFound.test(ib)) {
          if (c.r.ask(PR_1_IB_CONFLICT, { group: g, blk: ib })) c.invalidInodeBitmap[g] = 1;
        } else {
          c.blockFound.set(ib);
          c.blockMeta.set(ib);
        }
      }
    }
  }

  /** The reads of the inode scan, in order: each group's used part of the inode table, in large chunks. */
  scanPlan(): ScanChunk[] {
    const v = this.c.v;
    const isz = v.inodeSize;
    const chunkBlocks = Math.max(1, Math.floor(ITABLE_READ_BYTES / v.blockSize));
    const plan: ScanChunk[] = [];
    for (let g = 0; g < v.groupCount; g++) {
      const gd = v.group(g);
      if (v.f.groupDescCsum && (gd.bg_flags & EXT4_BG_INODE_UNINIT) !== 0) continue;
      let toScan = v.inodesPerGroup;
      if (v.f.groupDescCsum) {
        const unused = itableUnused(gd, v.descSize);
        toScan = unused >= toScan ? 0 : toScan - unused;
      }
      const it = v.inodeTableLoc(g);
      if (toScan === 0 || it === 0) continue;
      const blocks = Math.ceil((toScan * isz) / v.blockSize);
      const groupFirstIno = g * v.inodesPerGroup + 1;
      for (let b0 = 0; b0 < blocks; b0 += chunkBlocks) {
        const nb = Math.min(chunkBlocks, blocks - b0);
        const count = Math.min((nb * v.blockSize) / isz, toScan - (b0 * v.blockSize) / isz);
        plan.push({ g, first: b0 === 0, it, b0, nb, firstIno: groupFirstIno + (b0 * v.blockSize) / isz, count });
      }
    }
    return plan;
  }

  /**
   * Stream every group's inode table (e2fsck's inode scan with DO_LAZY and garbage
   * detection) through a ring of chunk buffers. With a sanity helper thread (the CLI starts
   * its thread before opening the volume, so its start-up is hidden), the ring is shared and
   * RING_SLOTS - 1 chunks are read ahead for it to judge while one is checked here; the scan
   * judges whatever slices of its next chunk the helper has not reached. Alone, a chunk is
   * read, judged and checked in turn.
   */
  async scanInodes(plan: readonly ScanChunk[], helperFactory: SanityHelperFactory | undefined): Promise<void> {
    const c = this.c;
    const v = c.v;
    const isz = v.inodeSize;
    const fast = this.#fast;
    const most = plan.reduce((m, ch) => Math.max(m, ch.nb), 0) * v.blockSize;
    if (plan.length === 0) return;
    const shared = helperFactory !== undefined && typeof SharedArrayBuffer === "function";
    const slots = shared ? RING_SLOTS : 1;
    let ring = SanityRing.create(slots, most, this.#geometry, shared);
    let helper = shared ? helperFactory(plan.reduce((n, ch) => n + ch.count, 0), ring) : undefined;
    // Per slot: the ring its chunk was read into (a lost helper leaves the shared one behind), and the read's error.
    const rings: SanityRing[] = new Array<SanityRing>(slots).fill(ring);
    const failed: ({ error: unknown } | undefined)[] = new Array<{ error: unknown } | undefined>(slots).fill(undefined);
    let loaded = 0;
    const load = async (i: number): Promise<void> => {
      const ch = plan[i]!;
      const slot = i % slots;
      const bytes = ch.nb * v.blockSize;
      rings[slot] = ring;
      failed[slot] = undefined;
      try {
        await c.v.cache.readUncachedInto(ch.it + ch.b0, ring.slots[slot]!.data.subarray(0, bytes));
      } catch (error) {
        failed[slot] = { error };
        return;
      }
      ring.load(slot, ch.firstIno, ch.count, bytes);
      helper?.post(slot);
    };
    try {
      for (let i = 0; i < plan.length; i++) {
        const ch = plan[i]!;
        if (ch.first) {
          await this.processQueue(); // e2fsck's scan_callback at the end of each group
          if (ch.it < v.firstDataBlock || ch.it + v.itableBlocks - 1 >= v.blocksCount) {
            c.r.fix(PR_1_ISCAN_ERROR, { ino: ch.g * v.inodesPerGroup, str: "Corrupt group descriptor: bad block for inode table" });
          }
        }
        while (loaded < plan.length && loaded < i + slots) await load(loaded++);
        const slot = i % slots;
        const f = failed[slot];
        if (f !== undefined) {
          const e = f.error;
          c.r.fix(PR_1_ISCAN_ERROR, { ino: 0, str: e instanceof Error ? e.message : String(e) });
          throw e; // not reached: PR_1_ISCAN_ERROR is fatal
        }
        const from = rings[slot]!;
        if (!from.finish(slot, HELPER_STALL_MS) && helper !== undefined) {
          // The helper died or hangs: go on alone, in buffers it does not know.
          void helper.close().catch(() => undefined);
          helper = undefined;
          ring = SanityRing.create(slots, most, this.#geometry, false);
        }
        const { data, csums, insane } = from.slots[slot]!;
        const buf = data.subarray(0, ch.nb * v.blockSize);
        const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
        for (let k = 0; k < ch.count; k++) {
          const ino = ch.firstIno + k;
          const off = k * isz;
          const blkInBuf = Math.floor(off / v.blockSize);
          if (c.badBlocks.size > 0 && c.badBlocks.has(ch.it + ch.b0 + blkInBuf)) {
            if (ino === EXT4_BAD_INO) await this.badBlocksInBadBlocks();
            c.inodeBb.set(ino);
            c.inodeUsed.set(ino);
            continue;
          }
          const garbage = insane[blkInBuf] === 1;
          if (fast && !garbage && fastInode(c, ino, buf, view, off, csums[k] !== 2, this.lowDtimeCheck)) continue;
          // Deferred inodes are copied: nothing keeps a view of a slot past its chunk's turn.
          await this.inode(ino, buf.subarray(off, off + isz), garbage, csums[k]);
        }
      }
    } finally {
      await helper?.close();
    }
  }

  /**
   * The bad-blocks list the inode scan skips inode table blocks by, read from the bad
   * blocks inode before the scan: its data blocks within the volume; none if the walk fails.
   * @e2fsprogs ext2fs_open_inode_scan → ext2fs_read_bb_inode (mark_bad_block)
   */
  async readBadBlocksList(): Promise<void> {
    const c = this.c;
    const v = c.v;
    const got = await readInode(c, EXT4_BAD_INO);
    if (got === null || (got.raw.i_flags & EXT4_INLINE_DATA_FL) !== 0) return;
    const list: number[] = [];
    const err = await iterateBlocks(v, got.raw, false, (blk, cnt) => {
      if (cnt >= 0 && blk >= v.firstDataBlock && blk < v.blocksCount) list.push(blk);
      return true;
    });
    if (err === undefined) for (const b of list) c.badBlocks.add(b);
  }

  /**
   * The bad-blocks inode sits in a block its own list calls bad: cleared (the scan read the
   * block as zeros), and the check starts again with an empty list.
   * @e2fsprogs e2fsck_pass1 (EXT2_ET_BAD_BLOCK_IN_INODE_TABLE for EXT2_BAD_INO), e2fsck_clear_inode
   */
  async badBlocksInBadBlocks(): Promise<void> {
    const c = this.c;
    if (!c.r.ask(PR_1_BADBLOCKS_IN_BADBLOCKS, { ino: EXT4_BAD_INO })) return;
    // e2fsck_write_inode of the zeroed struct ext2_inode: the first 128 bytes.
    await c.out.editInodeBytes(EXT4_BAD_INO, (slot) => slot.fill(0, 0, EXT4_GOOD_OLD_INODE_SIZE));
    throw new FsckRestart();
  }

  /**
   * One inode of the scan (the body of e2fsck_pass1's loop). `csumKnown` is its checksum
   * verdict when the block sanity check already computed it (1 good, 2 bad, 0 not yet).
   */
  async inode(ino: number, bytes: Uint8Array, garbageBlock: boolean, csumKnown = 0): Promise<void> {
    const c = this.c;
    const v = c.v;
    const r = c.r;
    const csumOk = (): boolean => (csumKnown !== 0 ? csumKnown === 1 : inodeCsumOk(bytes, 0, ino, this.#geometry));
    const links0 = u16(bytes, OFF_LINKS);
    const mode0 = u16(bytes, OFF_MODE);
    const dtime0 = u32(bytes, OFF_DTIME);
    // Fast path: an ordinary never-used or deleted inode with nothing to say.
    if (ino >= v.firstIno && links0 === 0 && (mode0 === 0 || dtime0 !== 0) && !(dtime0 !== 0 && this.lowDtimeCheck && dtime0 < v.inodesCount)) {
      if (!v.f.metadataCsum || (!garbageBlock && csumOk())) {
        if (mode0 !== 0) c.ftype.set(ino, fileTypeOfMode(mode0));
        return;
      }
    }
    const raw = decodeInodeFast(bytes, 0, this.#inodeSize);
    const csumBad = v.f.metadataCsum && !csumOk();
    let failedCsum = csumBad;
    if (garbageBlock) {
      if (raw.i_links_count > 0) r.fix(PR_1_INODE_IS_GARBAGE, { ino });
      failedCsum = true;
    }
    if (raw.i_mode !== 0) c.ftype.set(ino, fileTypeOfMode(raw.i_mode));
    /** e2fsck_write_inode of the fields changed; the write reseals the checksum (failed_csum = 0). */
    const write = async (fields: Partial<RawInode>): Promise<void> => {
      Object.assign(raw, fields);
      await c.out.writeInode(ino, fields);
      failedCsum = false;
    };
    /** @e2fsprogs FINISH_INODE_LOOP: an inode whose only fault is its checksum is rewritten. */
    const finish = async (): Promise<void> => {
      if (failedCsum && csumBad && r.ask(PR_1_INODE_ONLY_CSUM_INVALID, { ino })) await write({});
    };

    if (raw.i_dtime !== 0 && this.lowDtimeCheck && raw.i_dtime < v.inodesCount) {
      const yes = r.latch(LATCH_LOW_DTIME, PR_1_ORPHAN_LIST_REFUGEES, {}, true);
      if (r.ask(PR_1_LOW_DTIME, { ino }, {}, yes)) await write({ i_dtime: raw.i_links_count !== 0 ? 0 : c.now >>> 0 });
    }
    if (raw.i_links_count !== 0) {
      c.linkInfo.set(ino, raw.i_links_count);
    } else if (ino >= v.firstIno && !isQuotaReserved(ino)) {
      if (raw.i_dtime === 0 && raw.i_mode !== 0 && r.ask(PR_1_ZERO_DTIME, { ino })) await write({ i_dtime: c.now >>> 0 });
      await finish();
      return;
    }
    let type = raw.i_mode & S_IFMT;
    const flags = raw.i_flags;
    if (flags & EXT4_CASEFOLD_FL) {
      if (type !== S_IFDIR) r.fix(PR_1_CASEFOLD_NONDIR, { ino });
      if (!v.f.casefold) r.fix(PR_1_CASEFOLD_FEATURE, { ino });
    }
    const fileAcl = raw.i_file_acl_lo + (v.f.is64bit ? raw.l_i_file_acl_high * 2 ** 32 : 0);
    if ((flags & EXT4_INLINE_DATA_FL) && (flags & EXT4_EXTENTS_FL)) this.inlineAndExtents(ino, raw);
    if ((flags & EXT4_INLINE_DATA_FL) && !v.f.inlineData && ino >= v.firstIno) {
      const x = await readXattrs(c, bytes, raw.i_extra_isize, fileAcl, false);
      if (x.error === undefined && x.systemDataLen >= 0 && r.ask(PR_1_INLINE_DATA_FEATURE, { ino })) {
        v.setFeature("s_feature_incompat", EXT4_FEATURE_INCOMPAT_INLINE_DATA);
        c.out.markSuperDirty();
      } else if (r.ask(PR_1_INLINE_DATA_SET, { ino })) {
        await clearInode(c, ino, raw);
        return; // e2fsck skips FINISH_INODE_LOOP
      }
    }
    if ((flags & EXT4_INLINE_DATA_FL) && v.f.inlineData && ino >= v.firstIno) {
      const x = await readXattrs(c, bytes, raw.i_extra_isize, fileAcl, failedCsum);
      // A broken or missing system.data: e2fsck truncates the file to an empty plain one.
      if ((x.error !== undefined || x.systemDataLen < 0) && r.ask(PR_1_INLINE_DATA_NO_ATTR, { ino })) {
        await write({ i_size_lo: 0, i_size_high: 0, i_flags: (raw.i_flags & ~EXT4_INLINE_DATA_FL) >>> 0, i_block: new Uint8Array(60) });
      }
    }
    const special = ino === EXT4_BAD_INO || ino === EXT4_ROOT_INO || ino === EXT4_JOURNAL_INO;
    if ((flags & EXT4_EXTENTS_FL) && !v.f.extents && (raw.i_links_count !== 0 || special)) {
      if (extentHeaderOk(raw.i_block, 60) && r.ask(PR_1_EXTENT_FEATURE, { ino })) {
        v.setFeature("s_feature_incompat", EXT4_FEATURE_INCOMPAT_EXTENTS);
        c.out.markSuperDirty();
      } else if (r.ask(PR_1_EXTENTS_SET, { ino })) {
        await clearInode(c, ino, raw);
        if (ino === EXT4_BAD_INO) c.inodeUsed.set(ino);
        return; // e2fsck skips FINISH_INODE_LOOP
      }
    }
    if (v.f.extents && !(flags & EXT4_EXTENTS_FL) && (raw.i_links_count !== 0 || special) && (type === S_IFREG || type === S_IFDIR)
      && extentHeaderOk(raw.i_block, 60) && r.ask(PR_1_UNSET_EXTENT_FL, { ino })) {
      await write({ i_flags: (raw.i_flags | EXT4_EXTENTS_FL) >>> 0 });
    }

    if (ino === EXT4_BAD_INO) {
      if ((failedCsum || raw.i_mode !== 0 || raw.i_uid !== 0 || raw.i_gid !== 0 || raw.i_links_count !== 0
        || (flags & EXT4_INLINE_DATA_FL) !== 0 || fileAcl !== 0) && r.ask(PR_1_INVALID_BAD_INODE, { ino })) {
        // @e2fsprogs: memset(inode, 0, sizeof(struct ext2_inode)), then written.
        await c.out.editInodeBytes(ino, (slot) => slot.fill(0, 0, EXT4_GOOD_OLD_INODE_SIZE));
        bytes.fill(0, 0, EXT4_GOOD_OLD_INODE_SIZE);
        Object.assign(raw, decodeInodeFast(bytes, 0, this.#inodeSize));
        failedCsum = false;
      }
      await this.badBlocksInode(raw);
      c.inodeUsed.set(ino);
      await finish();
      return;
    } else if (ino === EXT4_ROOT_INO) {
      // A root that is not a directory is cleared; pass 3 makes a new one.
      if (type !== S_IFDIR && r.ask(PR_1_ROOT_NO_DIR, { ino })) {
        await clearInode(c, ino, raw);
        return;
      }
      if (raw.i_dtime !== 0 && raw.i_links_count !== 0 && r.ask(PR_1_ROOT_DTIME, { ino })) await write({ i_dtime: 0 });
    } else if (ino === EXT4_JOURNAL_INO) {
      c.inodeUsed.set(ino);
      if (v.sb.s_journal_inum === EXT4_JOURNAL_INO) {
        if (type !== S_IFREG) r.fix(PR_1_JOURNAL_BAD_MODE, { ino });
        await this.checkBlocks(ino, raw, bytes);
        await finish();
        return;
      }
      if ((raw.i_links_count !== 0 || raw.i_blocks_lo !== 0 || iblock(raw, 0) !== 0) && r.ask(PR_1_JOURNAL_INODE_NOT_CLEAR, { ino })) {
        // @e2fsprogs: memset(inode, 0, inode_size); its blocks go free in pass 5.
        await c.out.zeroInode(ino);
        bytes.fill(0);
        Object.assign(raw, decodeInodeFast(bytes, 0, this.#inodeSize));
        c.linkInfo.set(ino, 0);
        failedCsum = false;
      }
    } else if (isQuotaReserved(ino)) {
      c.inodeUsed.set(ino);
      const sb = v.sb;
      if (v.f.quota && (sb.s_usr_quota_inum === ino || sb.s_grp_quota_inum === ino || sb.s_prj_quota_inum === ino)) {
        if (type !== S_IFREG) r.fix(PR_1_QUOTA_BAD_MODE, { ino });
        await this.checkBlocks(ino, raw, bytes);
        await finish();
        return;
      }
      if ((raw.i_links_count !== 0 || raw.i_blocks_lo !== 0 || iblock(raw, 0) !== 0) && r.ask(PR_1_QUOTA_INODE_NOT_CLEAR, { ino })) {
        // memset(inode, 0, inode_size), written whole; pass 5 frees its blocks.
        await c.out.editInodeBytes(ino, (slot) => slot.fill(0));
        bytes.fill(0, 0, this.#inodeSize);
        Object.assign(raw, decodeInodeFast(bytes, 0, this.#inodeSize));
        c.linkInfo.set(ino, 0);
        failedCsum = false;
      }
    } else if (ino < v.firstIno) {
      c.inodeUsed.set(ino);
      let bad = false;
      if (ino === 5) bad = type === S_IFDIR;
      else if (ino === EXT4_RESIZE_INO) bad = raw.i_mode !== 0 && type !== S_IFREG;
      else bad = raw.i_mode !== 0;
      if (bad) r.fix(PR_1_RESERVED_BAD_MODE, { ino });
      await this.checkBlocks(ino, raw, bytes);
      await finish();
      return;
    }

    if (raw.i_links_count === 0) {
      await finish();
      return;
    }
    if (raw.i_dtime !== 0 && r.ask(PR_1_SET_DTIME, { ino })) await write({ i_dtime: 0 });
    c.inodeUsed.set(ino);
    if (raw.i_obso_faddr !== 0 || (!v.f.largedir && type === S_IFDIR && raw.i_size_high !== 0)) c.inodeBad.set(ino);
    if (!v.f.is64bit && raw.l_i_file_acl_high !== 0) c.inodeBad.set(ino);
    if (!v.f.hugeFile && raw.l_i_blocks_high !== 0) c.inodeBad.set(ino);
    if (flags & EXT4_IMAGIC_FL) {
      if (v.sb.s_feature_compat & 0x0002) c.inodeImagic.set(ino);
      else if (r.ask(PR_1_SET_IMAGIC, { ino })) await write({ i_flags: (raw.i_flags & ~EXT4_IMAGIC_FL) >>> 0 });
    }
    const eaIbodyQuota = await checkInodeExtraSpace(c, ino, bytes, v.inodeSize > EXT4_GOOD_OLD_INODE_SIZE ? u16(bytes, OFF_EXTRA) : 0, raw.i_generation);
    if (v.inodeSize > EXT4_GOOD_OLD_INODE_SIZE) raw.i_extra_isize = u16(bytes, OFF_EXTRA); // a repair may have changed it
    await this.checkIsReallyDir(ino, raw, bytes, fileAcl);
    type = raw.i_mode & S_IFMT; // a repair may have made it a directory
    if (v.f.extents && (flags & EXT4_EXTENTS_FL) && type === S_IFLNK && !hasValidBlocks(raw, fileAcl)) {
      r.fix(PR_1_FAST_SYMLINK_EXTENT_FL, { ino });
    }
    if (flags & EXT4_ENCRYPT_FL) {
      // @e2fsprogs add_encrypted_file: the policy in the "c" attribute, kept for pass 2.
      const x = await readXattrs(c, bytes, raw.i_extra_isize, fileAcl, true);
      const id = x.error !== undefined || x.encryptionContext === undefined ? NO_ENCRYPTION_POLICY : c.encryption.idOf(x.encryptionContext);
      if (id === NO_ENCRYPTION_POLICY) {
        // The flag alone goes; pass 2 then sees an unencrypted file.
        if (r.ask(PR_1_MISSING_ENCRYPTION_XATTR, { ino })) await write({ i_flags: (raw.i_flags & ~EXT4_ENCRYPT_FL) >>> 0 });
      } else if (id === CORRUPT_ENCRYPTION_POLICY) {
        if (r.ask(PR_1_CORRUPT_ENCRYPTION_XATTR, { ino })) {
          // Its blocks are never marked in use: pass 5 frees them.
          await clearInode(c, ino, raw);
          return; // e2fsck skips FINISH_INODE_LOOP
        }
      } else {
        c.encryption.add(ino, id);
      }
    }
    if (v.f.casefold && (flags & EXT4_CASEFOLD_FL)) c.inodeCasefold.set(ino);

    if (type === S_IFDIR) {
      let dflags = 0;
      if (flags & EXT4_INLINE_DATA_FL) dflags |= DIR_INLINE;
      if (raw.i_flags & EXT4_ENCRYPT_FL) dflags |= DIR_ENCRYPTED;
      if (flags & EXT4_CASEFOLD_FL) dflags |= DIR_CASEFOLD;
      if (flags & EXT4_INDEX_FL) dflags |= DIR_HTREE;
      c.dirs.add(ino, raw.i_generation, dflags, iSize(raw));
      c.counters.directories++;
    } else if (type === S_IFREG) {
      c.counters.regular++;
    } else if ((type === S_IFCHR || type === S_IFBLK || type === S_IFIFO || type === S_IFSOCK) && checkDeviceInode(raw)) {
      // @e2fsprogs check_extents_inlinedata, check_immutable, check_size
      if ((raw.i_flags & (EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL)) !== 0 && r.ask(PR_1_SPECIAL_EXTENTS_IDATA, { ino })) {
        await write({ i_flags: (raw.i_flags & ~(EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL)) >>> 0 });
      }
      if ((raw.i_flags & (EXT4_IMMUTABLE_FL | EXT4_APPEND_FL)) !== 0 && r.ask(PR_1_SET_IMMUTABLE, { ino })) {
        await write({ i_flags: (raw.i_flags & ~(EXT4_IMMUTABLE_FL | EXT4_APPEND_FL)) >>> 0 });
      }
      if (iSize(raw) !== 0 && r.ask(PR_1_SET_NONZSIZE, { ino })) await write({ i_size_lo: 0, i_size_high: 0 });
      if (type === S_IFCHR) c.counters.chardev++;
      else if (type === S_IFBLK) c.counters.blockdev++;
      else if (type === S_IFIFO) c.counters.fifo++;
      else c.counters.sockets++;
    } else if (type === S_IFLNK && (await checkSymlink(c, ino, raw, bytes, fileAcl))) {
      if ((raw.i_flags & (EXT4_IMMUTABLE_FL | EXT4_APPEND_FL)) !== 0 && r.ask(PR_1_SET_IMMUTABLE, { ino })) {
        await write({ i_flags: (raw.i_flags & ~(EXT4_IMMUTABLE_FL | EXT4_APPEND_FL)) >>> 0 });
      }
      c.counters.symlinks++;
      if (raw.i_flags & EXT4_INLINE_DATA_FL) {
        await finish();
        return;
      }
      if (isFastSymlink(raw)) {
        c.counters.fastSymlinks++;
        await this.checkBlocks(ino, raw, bytes, eaIbodyQuota);
        await finish();
        return;
      }
    } else {
      c.inodeBad.set(ino);
    }
    if (!(raw.i_flags & EXT4_EXTENTS_FL) && !(raw.i_flags & EXT4_INLINE_DATA_FL) && (iblock(raw, 12) !== 0 || iblock(raw, 13) !== 0 || iblock(raw, 14) !== 0 || fileAcl !== 0)) {
      this.#queue.push({ ino, raw, bytes: bytes.slice(), eaIbodyQuota });
      await finish();
      if (this.#queue.length >= PROCESS_INODE_SIZE) await this.processQueue();
      return;
    }
    await this.checkBlocks(ino, raw, bytes, eaIbodyQuota);
    await finish();
  }

  /** e2fsck process_inodes: the deferred inodes, by indirect block, then EA block, then number. */
  async processQueue(): Promise<void> {
    const q = this.#queue;
    if (q.length === 0) return;
    this.#queue = [];
    const acl = (d: Deferred): number => d.raw.i_file_acl_lo + (this.c.v.f.is64bit ? d.raw.l_i_file_acl_high * 2 ** 32 : 0);
    q.sort((a, b) => ((iblock(a.raw, 12) - iblock(b.raw, 12)) | 0) || ((acl(a) - acl(b)) | 0) || a.ino - b.ino);
    for (const d of q) await this.checkBlocks(d.ino, d.raw, d.bytes, d.eaIbodyQuota);
  }

  /** e2fsck fix_inline_data_extents_file, every question declined. */
  inlineAndExtents(ino: number, raw: RawInode): void {
    const v = this.c.v;
    const r = this.c.r;
    if (!v.f.extents && !v.f.inlineData) return;
    const type = raw.i_mode & S_IFMT;
    if (type === S_IFCHR || type === S_IFBLK || type === S_IFIFO || type === S_IFSOCK) {
      r.fix(PR_1_SPECIAL_EXTENTS_IDATA, { ino });
      return;
    }
    if (extentHeaderOk(raw.i_block, 60)) r.fix(PR_1_CLEAR_INLINE_DATA_FOR_EXTENT, { ino });
    const maxInlineEa = v.inodeSize > EXT4_GOOD_OLD_INODE_SIZE ? v.inodeSize - (EXT4_GOOD_OLD_INODE_SIZE + raw.i_extra_isize) : 0;
    if (iSize(raw) < 60 + maxInlineEa) r.fix(PR_1_CLEAR_EXTENT_FOR_INLINE_DATA, { ino });
    let couldBeMap = true;
    for (let i = 0; i < EXT2_N_BLOCKS; i++) if (iblock(raw, i) >= v.blocksCount) couldBeMap = false;
    if (couldBeMap) r.fix(PR_1_CLEAR_EXTENT_INLINE_DATA_FLAGS, { ino });
    r.fix(PR_1_CLEAR_EXTENT_INLINE_DATA_INODE, { ino });
  }

  /** e2fsck check_is_really_dir: a special file whose first block looks like a directory. */
  async checkIsReallyDir(ino: number, raw: RawInode, bytes: Uint8Array, fileAcl: number): Promise<void> {
    const c = this.c;
    const v = c.v;
    const type = raw.i_mode & S_IFMT;
    if (type === S_IFDIR || type === S_IFREG || type === S_IFLNK || iblock(raw, 0) === 0) return;
    let notDevice = 0;
    let blk: number;
    const names: Record<number, string> = { [S_IFCHR]: "character device", [S_IFBLK]: "block device", [S_IFIFO]: "named pipe", [S_IFSOCK]: "socket" };
    /** The inode becomes a directory (its permission bits kept). */
    const treatAsDir = async (): Promise<void> => {
      if (!c.r.ask(PR_1_TREAT_AS_DIRECTORY, { ino, str: names[type] ?? `unknown file type with mode 0${raw.i_mode.toString(8)}` })) return;
      raw.i_mode = (raw.i_mode & 0o7777) | S_IFDIR;
      c.ftype.set(ino, fileTypeOfMode(raw.i_mode));
      await c.out.writeInode(ino, { i_mode: raw.i_mode });
    };
    if (v.f.inlineData && (raw.i_flags & EXT4_INLINE_DATA_FL)) {
      // Inline: the size must be a multiple of 4 and the first bytes must look like "..", then an entry.
      const s = await inlineDataSize(c, bytes, raw, fileAcl);
      if (s.error !== undefined || (s.size & 3) !== 0) return;
      const dotdot = u32(raw.i_block, 0);
      const deIno = u32(raw.i_block, 4);
      const deRecLen = recLenFromDisk(u16(raw.i_block, 8), v.blockSize);
      const first = v.firstIno;
      if (dotdot >= v.inodesCount || (dotdot < first && dotdot !== EXT4_ROOT_INO) || deIno >= v.inodesCount
        || (deIno < first && deIno !== 0) || deRecLen > 60 - 4) return;
      await treatAsDir();
      return;
    } else if (v.f.extents && (raw.i_flags & EXT4_EXTENTS_FL)) {
      if (!extentHeaderOk(raw.i_block, 60)) return;
      if (u16(raw.i_block, EH_DEPTH) !== 0 || u16(raw.i_block, EH_ENTRIES) === 0) return;
      const at = extentHeader.size;
      if (u32(raw.i_block, at) !== 0) return;
      blk = u32(raw.i_block, at + EE_START_LO) + u16(raw.i_block, at + EE_START_HI) * 2 ** 32;
      notDevice++;
    } else {
      for (let i = 0; i < EXT2_N_BLOCKS; i++) {
        const b = iblock(raw, i);
        if (b === 0) continue;
        if (i >= 4) notDevice++;
        if (b < v.firstDataBlock || b >= v.blocksCount || c.blockFound.test(b)) return;
      }
      blk = iblock(raw, 0);
    }
    if ((type === S_IFCHR || type === S_IFBLK) && raw.i_links_count === 1 && notDevice === 0) return;
    if (blk < v.firstDataBlock || blk >= v.blocksCount) return;
    let buf: Uint8Array;
    try {
      buf = await v.readBlock(blk);
    } catch {
      return;
    }
    let recLen = u16(buf, 4);
    if (buf[6] !== 1 || buf[8] !== 0x2e || u32(buf, 0) !== ino || recLen < 12 || recLen % 4 !== 0 || recLen >= v.blockSize - 12) return;
    const o = recLen;
    recLen = u16(buf, o + 4);
    if (buf[o + 6] !== 2 || buf[o + 8] !== 0x2e || buf[o + 9] !== 0x2e || recLen < 12 || recLen % 4 !== 0) return;
    await treatAsDir();
  }

  /** The bad blocks inode: mark its blocks, check them against the metadata (e2fsck process_bad_block). */
  async badBlocksInode(raw: RawInode): Promise<void> {
    const c = this.c;
    const v = c.v;
    const ino = EXT4_BAD_INO;
    // Blocks claimed before any inode: the fixed metadata (e2fsck's fs_meta_blocks copy).
    const isMeta = (b: number): boolean => c.blockMeta.test(b);
    const st = { bbcheck: false };
    const cleared: ClearedPointer[] = [];
    const err = await iterateBlocks(v, raw, false, (blk, cnt, ref, slot) => {
      if (blk === 0) return true;
      if (blk < v.firstDataBlock || blk >= v.blocksCount) {
        // @e2fsprogs process_bad_block: an illegal pointer is zeroed (BLOCK_CHANGED).
        const yes = c.r.latch(LATCH_BBLOCK, PR_1_INODE_BBLOCK_LATCH, {}, true);
        if (!c.r.ask(PR_1_BB_ILLEGAL_BLOCK_NUM, { ino, blk, blkcount: cnt }, {}, yes)) return true;
        cleared.push({ ref, blk, slot });
        return false;
      }
      if (cnt < 0) {
        if (isMeta(blk)) {
          st.bbcheck = true;
          c.r.latch(LATCH_BBLOCK, PR_1_INODE_BBLOCK_LATCH);
          c.r.fix(PR_1_BB_FS_BLOCK, { ino, blk }, {}, false, true);
        } else c.markBlockUsed(blk);
        return true;
      }
      c.counters.badBlocks++;
      if (!c.blockFound.test(blk)) {
        c.blockFound.set(blk);
        return true;
      }
      for (let g = 0; g < v.groupCount; g++) {
        const s = v.superAndBgd(g);
        if (blk === s.superBlk || (g === 0 && blk === v.firstDataBlock)) {
          if (g === 0) c.r.fix(PR_1_BAD_PRIMARY_SUPERBLOCK, { blk });
          else c.r.fix(PR_1_BAD_SUPERBLOCK, { blk, group: g });
          return true;
        }
        if (s.oldDescBlk !== 0 && blk >= s.oldDescBlk && blk < s.oldDescBlk + v.descBlocks) {
          if (g === 0) c.r.fix(PR_1_BAD_PRIMARY_GROUP_DESCRIPTOR, { blk });
          else c.r.fix(PR_1_BAD_GROUP_DESCRIPTORS, { blk, group: g });
          return true;
        }
        if (blk === v.blockBitmapLoc(g)) {
          if (c.r.ask(PR_1_BB_BAD_BLOCK, { blk, group: g })) c.invalidBlockBitmap[g] = 1;
          return true;
        }
        if (blk === v.inodeBitmapLoc(g)) {
          if (c.r.ask(PR_1_IB_BAD_BLOCK, { blk, group: g })) c.invalidInodeBitmap[g] = 1;
          return true;
        }
        const it = v.inodeTableLoc(g);
        if (blk >= it && blk < it + v.itableBlocks) return true;
      }
      c.r.fix(PR_1_PROGERR_CLAIMED_BLOCK, { blk });
      return true;
    });
    c.r.endLatch(LATCH_BBLOCK);
    if (cleared.length > 0) await this.zeroPointers(ino, raw, cleared);
    if (err !== undefined) c.r.fix(PR_1_BLOCK_ITERATE, { ino, str: err });
    if (st.bbcheck) c.r.fix(PR_1_BBINODE_BAD_METABLOCK_PROMPT);
  }

  /** e2fsck check_blocks: walk the blocks, then compare i_size and i_blocks. */
  async checkBlocks(ino: number, raw: RawInode, bytes: Uint8Array, eaIbodyQuota = 0): Promise<void> {
    const c = this.c;
    const v = c.v;
    const r = c.r;
    const type = raw.i_mode & S_IFMT;
    const pb: BlockWalk = {
      ino, raw, isDir: type === S_IFDIR, isReg: type === S_IFREG, numBlocks: Math.floor(eaIbodyQuota / v.clusterRatio),
      maxBlocks: 2 ** (31 - v.sb.s_log_block_size), lastBlock: -1, lastInitLblock: -1, lastDbBlock: -1, numIllegal: 0,
      previousBlock: 0, fragmented: false, nextLblock: 0, lastExtent: undefined, iterateError: undefined,
    };
    pb.numBlocks += Math.floor((await checkExtAttr(c, ino, raw.i_file_acl_lo + (v.f.is64bit ? raw.l_i_file_acl_high * 2 ** 32 : 0), raw)) / v.clusterRatio);
    // A repair may have let go of the attribute block.
    const fileAcl = raw.i_file_acl_lo + (v.f.is64bit ? raw.l_i_file_acl_high * 2 ** 32 : 0);
    const inline = (raw.i_flags & EXT4_INLINE_DATA_FL) !== 0;
    if (v.f.inlineData && inline) {
      if (pb.isDir) {
        c.dblist.add(ino, 0, 0);
        const s = await inlineDataSize(c, bytes, raw, fileAcl);
        if (s.error === undefined && s.size > 60) c.dblist.add(ino, 0, 1);
      }
    } else if (hasValidBlocks(raw, fileAcl)) {
      if (v.f.extents && (raw.i_flags & EXT4_EXTENTS_FL)) await this.checkBlocksExtents(pb);
      else await this.checkBlockMap(pb);
    }
    r.endLatch(LATCH_BLOCK);
    r.endLatch(LATCH_TOOBIG);
    if (pb.iterateError !== undefined) r.fix(PR_1_BLOCK_ITERATE, { ino, str: pb.iterateError });
    if (pb.fragmented && pb.numBlocks < v.blocksPerGroup) {
      if (pb.isDir) c.counters.fragmentedDir++;
      else c.counters.fragmented++;
    }
    const htreeCleared = (raw.i_flags & EXT4_INDEX_FL) !== 0 && (await this.handleHtree(ino, raw, pb));
    if (pb.numBlocks === 0 && pb.isDir && !inline && r.ask(PR_1_ZERO_LENGTH_DIR, { ino })) {
      await clearInode(c, ino, raw);
      c.counters.directories--;
      return;
    }
    c.quota.add(ino, raw, pb.numBlocks);

    let numBlocks = pb.numBlocks * v.clusterRatio;
    if (!v.f.hugeFile || (raw.i_flags & EXT4_HUGE_FILE_FL) === 0) numBlocks *= v.blockSize / 512;
    let badSize = 0;
    let should = 0;
    if (pb.isDir) {
      const dirSize = iSize(raw);
      // e2fsck keeps the block count in an unsigned int.
      const nblock = Math.floor(dirSize / v.blockSize) % 2 ** 32;
      if (inline) {
        const s = await inlineDataSize(c, bytes, raw, fileAcl);
        if (s.error !== undefined || s.size !== dirSize) {
          badSize = 7;
          should = s.size;
        }
      } else if (dirSize % v.blockSize !== 0) badSize = 5;
      else if (nblock > pb.lastBlock + 1) badSize = 1;
      else if (nblock < pb.lastBlock + 1 && pb.lastBlock + 1 - nblock > v.sb.s_prealloc_dir_blocks) badSize = 2;
    } else {
      const size = iSize(raw);
      const extentFile = v.f.extents && (raw.i_flags & EXT4_EXTENTS_FL) !== 0;
      if (pb.lastInitLblock >= 0 && size < pb.lastInitLblock * v.blockSize && (raw.i_flags & EXT4_VERITY_FL) === 0) badSize = 3;
      else if (!extentFile && size > maxBlockMapSize(v.log2BlockSize)) badSize = 4;
      else if (extentFile && size > 2 ** (32 + v.log2BlockSize) - 1) badSize = 6;
    }
    const dirty: Partial<RawInode> = {};
    if (htreeCleared) {
      raw.i_flags = dirty.i_flags = (raw.i_flags & ~EXT4_INDEX_FL) >>> 0;
      const idx = c.dirs.find(ino);
      if (idx >= 0) c.dirs.flags.set(idx, c.dirs.flags.get(idx) & ~DIR_HTREE);
    }
    if (badSize !== 0 && type !== S_IFLNK) {
      if (badSize !== 7) should = (pb.lastBlock + 1) * v.blockSize;
      if (r.ask(PR_1_BAD_I_SIZE, { ino, size: iSize(raw), num: should, group: badSize })) {
        raw.i_size_lo = dirty.i_size_lo = should % 2 ** 32;
        raw.i_size_high = dirty.i_size_high = Math.floor(should / 2 ** 32);
        if (should === 0 && inline) {
          // @e2fsprogs check_blocks: an empty inline file becomes an empty plain one.
          raw.i_block = dirty.i_block = new Uint8Array(60);
          raw.i_flags = dirty.i_flags = (raw.i_flags & ~EXT4_INLINE_DATA_FL) >>> 0;
        }
      }
    }
    if (type === S_IFREG && iSize(raw) >= 2 ** 31) c.counters.largeFiles++;
    const iBlocks = raw.i_blocks_lo + (v.f.hugeFile ? raw.l_i_blocks_high * 2 ** 32 : 0);
    if (v.sb.s_creator_os !== 1 && (numBlocks !== iBlocks || (v.f.hugeFile && (raw.i_flags & EXT4_HUGE_FILE_FL) !== 0 && raw.l_i_blocks_high !== 0))) {
      if (r.ask(PR_1_BAD_I_BLOCKS, { ino, iblocks: iBlocks, num: numBlocks })) {
        raw.i_blocks_lo = dirty.i_blocks_lo = numBlocks % 2 ** 32;
        raw.l_i_blocks_high = dirty.l_i_blocks_high = Math.floor(numBlocks / 2 ** 32);
      }
    }
    if (pb.isDir) c.rehashIfBig(ino, raw.i_flags, raw.i_size_lo);
    if (Object.keys(dirty).length > 0) await c.out.writeInode(ino, dirty);
    if (v.f.bigalloc && (type === S_IFREG || type === S_IFDIR) && (ino === EXT4_ROOT_INO || ino >= v.firstIno)
      && (raw.i_flags & (EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL)) === 0 && iBlocks - (fileAcl !== 0 ? v.blockSize / 512 : 0) > 0) {
      r.fix(PR_1_NO_BIGALLOC_BLOCKMAP_FILES, { ino });
    }
  }

  /** e2fsck handle_htree: sanity of the root, then register the directory for pass 2. */
  /**
   * e2fsck handle_htree: sanity of the root, then register the directory for pass 2. Returns
   * true when a problem's "Clear HTree index" was answered yes: the caller clears the flag
   * and the directory is read as a linear one from then on.
   */
  async handleHtree(ino: number, raw: RawInode, pb: BlockWalk): Promise<boolean> {
    const c = this.c;
    const v = c.v;
    const r = c.r;
    if (((raw.i_mode & S_IFMT) !== S_IFDIR && r.ask(PR_1_HTREE_NODIR, { ino })) || (!v.f.dirIndex && r.ask(PR_1_HTREE_SET, { ino }))) return true;
    const blk = await mapLogical(v, raw, 0);
    let buf: Uint8Array | undefined;
    if (blk !== 0 && blk >= v.firstDataBlock && blk < v.blocksCount) {
      try {
        buf = await v.readBlock(blk);
      } catch {
        buf = undefined;
      }
    }
    if (buf === undefined) {
      if (r.ask(PR_1_HTREE_BADROOT, { ino })) return true;
      c.dxDirs.set(ino, new DxDir(ino, pb.lastBlock + 1));
      return false;
    }
    const reservedZero = u32(buf, dxRoot.offsetOf("reserved_zero"));
    const infoLength = buf[dxRoot.offsetOf("info_length")]!;
    const hashVersion = buf[dxRoot.offsetOf("hash_version")]!;
    const unusedFlags = buf[dxRoot.offsetOf("unused_flags")]!;
    const levels = buf[dxRoot.offsetOf("indirect_levels")]!;
    if ((reservedZero !== 0 || infoLength < 8) && r.ask(PR_1_HTREE_BADROOT, { ino })) return true;
    if (hashVersion !== 0 && hashVersion !== 1 && hashVersion !== 2 && r.ask(PR_1_HTREE_HASHV, { ino, num: hashVersion })) return true;
    if ((unusedFlags & 1) !== 0 && r.ask(PR_1_HTREE_INCOMPAT, { ino })) return true;
    // Clearly too deep; then deeper than this filesystem allows, unless the directory is
    // big enough that only LARGE_DIR can explain it (e2fsck's size test, kept as it is).
    if (levels > 3 && r.ask(PR_1_HTREE_DEPTH, { ino, num: levels })) return true;
    if (levels > 2 && !v.f.largedir) {
      const blockbits = v.sb.s_log_block_size + 10 + 10;
      const idxPb = 2 ** (blockbits - 3);
      const lim = (idxPb - 1) * (idxPb - 2);
      if (iSize(pb.raw) < lim * 2 ** blockbits && pb.raw.i_blocks_lo < lim * 2 ** (blockbits - 9) && r.ask(PR_1_HTREE_DEPTH, { ino, num: levels })) return true;
    }
    if (levels > 2 || iSize(pb.raw) >= 0x80000000) c.counters.largeDirs++;
    c.dxDirs.set(ino, new DxDir(ino, pb.lastBlock + 1));
    return false;
  }

  /** e2fsck check_blocks_extents + scan_extent_node. */
  async checkBlocksExtents(pb: BlockWalk): Promise<void> {
    const c = this.c;
    const v = c.v;
    const raw = pb.raw;
    if (!extentHeaderOk(raw.i_block, 60)) {
      if (c.r.ask(PR_1_MISSING_EXTENT_HEADER, { ino: pb.ino })) {
        // e2fsck's check_blocks goes on with the cleared inode: its i_size and i_blocks are
        // judged against no blocks at all.
        await clearInode(c, pb.ino, raw);
      }
      return;
    }
    const eof = Math.floor((iSize(raw) + v.blockSize - 1) / v.blockSize) - 1;
    const rootEnd = Math.floor((iSize(raw) + v.blockSize - 1) / v.blockSize);
    const root = raw.i_block.slice();
    this.#extentLevels = [];
    const out = await this.scanExtentNode(pb, root, 0, 0, 0, eof, rootEnd, true, false, 0);
    if (out.changed) {
      // An emptied root is a leaf again. @e2fsprogs ext2fs_extent_delete
      if (u16(root, EH_ENTRIES) === 0) root.fill(0, EH_DEPTH, EH_DEPTH + 2);
      raw.i_block = root;
      await c.out.writeInode(pb.ino, { i_block: root });
    }
    // A tree with room to spare is offered shorter or narrower (not a directory pass 3A
    // rebuilds). ext4ts does not rebuild trees in pass 1E yet, so only a read-only run asks,
    // and answers no as e2fsck -n does. @e2fsprogs check_blocks_extents, e2fsck_should_rebuild_extents
    if (!c.r.repairing && !(pb.isDir && c.dirsToRehash.has(pb.ino))) {
      const slack = extentTreeSlack(this.#extentLevels, v.blockSize);
      if (slack !== null) c.r.ask(slack.shorter ? PR_1E_CAN_COLLAPSE_EXTENT_TREE : PR_1E_CAN_NARROW_EXTENT_TREE, { ino: pb.ino, blk: slack.level });
    }
  }

  /** Entries and room per level of the extent tree being scanned (e2fsck's pb->eti). */
  #extentLevels: ExtentLevel[] = [];

  /**
   * Delete entry `i` of an extent node in place (e2fsck's ext2fs_extent_delete of a bad
   * extent). The caller writes the node.
   */
  deleteExtentEntry(node: Uint8Array, i: number): void {
    const entries = u16(node, EH_ENTRIES);
    const at = extentHeader.size + i * extentLeaf.size;
    const end = extentHeader.size + entries * extentLeaf.size;
    node.copyWithin(at, at + extentLeaf.size, end);
    node.fill(0, end - extentLeaf.size, end);
    node[EH_ENTRIES] = (entries - 1) & 0xff;
    node[EH_ENTRIES + 1] = ((entries - 1) >>> 8) & 0xff;
  }

  /**
   * One node of the tree: its entries, in order, with e2fsck's checks; index entries
   * descend. `endBlk` is the logical end the parent gives this node (libext2fs
   * path->end_blk), used to size the last index entry.
   */
  async scanExtentNode(
    pb: BlockWalk, node: Uint8Array, nodeBlk: number, startBlockIn: number, endBlock: number, eofBlock: number, endBlk: number,
    tryRepairs: boolean, failedCsumIn: boolean, level: number,
  ): Promise<{ changed: boolean }> {
    const c = this.c;
    const v = c.v;
    const r = c.r;
    const ino = pb.ino;
    let startBlock = startBlockIn;
    let failedCsum = failedCsumIn;
    let entries = u16(node, EH_ENTRIES);
    const depth = u16(node, EH_DEPTH);
    const isLeaf = depth === 0;
    countExtentLevel(this.#extentLevels, level, entries, u16(node, EH_MAX));
    const isDir = pb.isDir;
    // Entries deleted by repairs: the node is written by its parent (or as i_block).
    let changed = false;
    const remove = (i: number): void => {
      this.deleteExtentEntry(node, i);
      entries--;
      changed = true;
      failedCsum = false;
    };
    for (let i = 0; i < entries; i++) {
      const at = extentHeader.size + i * extentLeaf.size;
      let pblk: number;
      let lblk: number;
      let len: number;
      let uninit = false;
      if (isLeaf) {
        lblk = u32(node, at + EE_BLOCK);
        const rawLen = u16(node, at + EE_LEN);
        uninit = rawLen > EXT_INIT_MAX_LEN;
        len = uninit ? rawLen - EXT_INIT_MAX_LEN : rawLen;
        pblk = u32(node, at + EE_START_LO) + u16(node, at + EE_START_HI) * 2 ** 32;
      } else {
        lblk = u32(node, at + EI_BLOCK);
        pblk = u32(node, at + EI_LEAF_LO) + u16(node, at + EI_LEAF_HI) * 2 ** 32;
        const nextStart = i + 1 < entries ? u32(node, at + extentIdx.size + EI_BLOCK) : endBlk;
        len = ((nextStart - lblk) % 2 ** 32 + 2 ** 32) % 2 ** 32;
      }
      let lastLblk = lblk + len - 1;
      const a = { ino, blk: pblk, blk2: lblk, num: len };
      pb.lastExtent = a;
      let problem: ProblemDef | undefined;
      if (pblk === 0 || pblk < v.firstDataBlock || pblk >= v.blocksCount) problem = PR_1_EXTENT_BAD_START_BLK;
      else if (lblk < startBlock) problem = PR_1_OUT_OF_ORDER_EXTENTS;
      else if (endBlock !== 0 && lastLblk > endBlock && !(lastLblk > eofBlock && (uninit || (pb.raw.i_flags & EXT4_VERITY_FL) !== 0))) {
        problem = PR_1_EXTENT_END_OUT_OF_BOUNDS;
      } else if (isLeaf && len === 0) problem = PR_1_EXTENT_LENGTH_ZERO;
      else if (isLeaf && pblk + len > v.blocksCount) problem = PR_1_EXTENT_ENDS_BEYOND;
      else if (isLeaf && isDir && pb.raw.i_size_high === 0 && !v.f.largedir && lblk + len > 2 ** (21 - v.sb.s_log_block_size)) problem = PR_1_TOOBIG_DIR;
      if (isLeaf && problem === undefined && len > 0) {
        if (lblk < pb.nextLblock) problem = PR_1_EXTENT_COLLISION;
        else if (lblk + len > pb.nextLblock) pb.nextLblock = lblk + len;
      }
      // A directory extent marked uninitialized: the mark is cleared in place.
      if (tryRepairs && isDir && problem === undefined && uninit && r.ask(PR_1_UNINIT_DBLOCK, a)) {
        node.set([len & 0xff, (len >>> 8) & 0xff], at + EE_LEN);
        uninit = false;
        changed = true;
        failedCsum = false;
      }
      if (problem !== undefined) {
        if (tryRepairs) {
          const yes = problem === PR_1_TOOBIG_DIR
            ? r.ask(problem, { ino, blk: pblk, blkcount: lblk + len }, {}, r.latch(LATCH_TOOBIG, PR_1_INODE_TOOBIG, { ino }, true))
            : r.ask(problem, a);
          // @e2fsprogs scan_extent_node: the bad extent is deleted and the next one takes its place.
          if (yes) {
            remove(i--);
            continue;
          }
        }
        continue;
      }
      if (!isLeaf) {
        let nextTry = true;
        if (ino !== EXT4_RESIZE_INO && c.blockMeta.test(pblk)) {
          nextTry = false;
          r.fix(PR_1_CRITICAL_METADATA_COLLISION, { ino, blk: pblk });
          // Pass 1B moves the block; the check then starts again (E2F_FLAG_RESTART_LATER).
          if (r.repairing) c.restartLater = true;
        }
        let child: Uint8Array;
        try {
          child = (await v.readBlock(pblk)).slice();
        } catch {
          pb.iterateError = "Attempt to read block from filesystem resulted in short read";
          return { changed };
        }
        if (!extentHeaderOk(child, v.blockSize) || level >= 5) {
          if (!nextTry) return { changed };
          if (r.ask(PR_1_EXTENT_HEADER_INVALID, a)) remove(i--);
          continue;
        }
        let childCsumBad = false;
        if (v.f.metadataCsum) {
          const max = u16(child, EH_MAX);
          const tail = extentHeader.size + max * extentLeaf.size;
          const seed = inodeChecksumSeed(v.csumSeed, ino, pb.raw.i_generation);
          childCsumBad = tail + extentTail.size > v.blockSize || u32(child, tail) !== extentBlockChecksum(child, tail, seed);
        }
        // The first entry must start where the index says (libext2fs reads slot 0 even of an empty node).
        const firstLblk = u32(child, extentHeader.size);
        if (firstLblk !== lblk) r.fix(PR_1_EXTENT_INDEX_START_INVALID, { ino, blk: lblk, blk2: firstLblk, num: level });
        const sub = await this.scanExtentNode(pb, child, pblk, firstLblk, lastLblk, eofBlock, lblk + len, nextTry, childCsumBad, level + 1);
        if (pb.iterateError !== undefined) return { changed };
        if (sub.changed) {
          if (u16(child, EH_ENTRIES) === 0) {
            // An emptied node goes too: its index entry, its block, its share of i_blocks.
            remove(i--);
            await blockAllocStats(c, pblk, -1);
            const sectors = (v.blockSize * v.clusterRatio) / 512;
            const iBlocks = pb.raw.i_blocks_lo + pb.raw.l_i_blocks_high * 2 ** 32 - sectors;
            pb.raw.i_blocks_lo = iBlocks % 2 ** 32;
            pb.raw.l_i_blocks_high = Math.floor(iBlocks / 2 ** 32);
            await c.out.writeInode(ino, { i_blocks_lo: pb.raw.i_blocks_lo, l_i_blocks_high: pb.raw.l_i_blocks_high });
            continue;
          }
          await writeExtentBlock(c, ino, pb.raw.i_generation, pblk, child);
          // @e2fsprogs ext2fs_extent_fix_parents: the index starts where its node now does.
          const first = u32(child, extentHeader.size);
          if (first !== lblk) {
            node.set([first & 0xff, (first >>> 8) & 0xff, (first >>> 16) & 0xff, first >>> 24], at + EI_BLOCK);
            changed = true;
          }
        }
        c.markBlockUsed(pblk);
        pb.numBlocks++;
        continue;
      }
      if (pb.previousBlock !== 0 && pb.previousBlock + 1 !== pblk) pb.fragmented = true;
      if (tryRepairs && isDir && pb.lastBlock + 1 < lblk) {
        const ratio = v.clusterRatio;
        let newLblk = pb.lastBlock + 1;
        if (ratio > 1) newLblk = Math.floor((newLblk + ratio - 1) / ratio) * ratio + (pblk % ratio);
        // The directory's blocks close up: this extent moves down to follow the last one.
        if (r.ask(PR_1_COLLAPSE_DBLOCK, { ino, blk: lblk, blk2: newLblk })) {
          node.set([newLblk & 0xff, (newLblk >>> 8) & 0xff, (newLblk >>> 16) & 0xff, newLblk >>> 24], at + EE_BLOCK);
          lblk = newLblk;
          lastLblk = lblk + len - 1;
          changed = true;
          failedCsum = false;
        }
      }
      if (isDir) {
        while (++pb.lastDbBlock < lblk) c.dblist.add(ino, 0, pb.lastDbBlock);
        for (let k = 0; k < len; k++) c.dblist.add(ino, pblk + k, lblk + k);
        if (len > 0) pb.lastDbBlock = lblk + len - 1;
      }
      const ratio = v.clusterRatio;
      // bigalloc: a cluster already counted for the previous extent is not counted again.
      let from = Math.floor(pblk / ratio) * ratio;
      if (ratio > 1 && pb.previousBlock !== 0 && Math.floor(pblk / ratio) === Math.floor(pb.previousBlock / ratio)) from += ratio;
      if (from < pblk + len) {
        c.markBlocksUsed(Math.max(from, pblk), pblk + len - Math.max(from, pblk));
        pb.numBlocks += Math.ceil((pblk + len - from) / ratio);
      }
      pb.previousBlock = pblk + len - 1;
      pb.lastBlock = lastLblk;
      startBlock = lastLblk;
      if (!isDir && !uninit) pb.lastInitLblock = lastLblk;
    }
    if (failedCsum && tryRepairs) {
      const last = pb.lastExtent ?? { blk: nodeBlk, blk2: 0, num: 0 };
      // Only the checksum is wrong: the node is written again, resealed.
      if (r.ask(PR_1_EXTENT_ONLY_CSUM_INVALID, { ino, blk: last.blk, blk2: last.blk2, num: last.num }) && nodeBlk !== 0) {
        await writeExtentBlock(c, ino, pb.raw.i_generation, nodeBlk, node);
      }
    }
    return { changed };
  }

  /** e2fsck's ext2fs_block_iterate3 with process_block. */
  async checkBlockMap(pb: BlockWalk): Promise<void> {
    const c = this.c;
    const v = c.v;
    const r = c.r;
    const ino = pb.ino;
    // Extent-mapped inodes land here too when the filesystem lacks the extents feature:
    // libext2fs walks their tree all the same.
    const cleared: ClearedPointer[] = [];
    const walk = { clearing: false };
    const err = await iterateBlocks(v, pb.raw, pb.isDir, (blk, cnt, ref, slot) => {
      if (walk.clearing) return false;
      if (pb.isDir && cnt === 0 && blk === 0) {
        c.dblist.add(ino, 0, 0);
        pb.lastDbBlock++;
      }
      if (blk === 0) return true;
      if (pb.previousBlock !== 0 && ino !== EXT4_RESIZE_INO && pb.previousBlock + 1 !== blk) pb.fragmented = true;
      let problem: ProblemDef | undefined;
      if (pb.isDir && !v.f.largedir && cnt > 2 ** (21 - v.sb.s_log_block_size)) problem = PR_1_TOOBIG_DIR;
      if (pb.isDir && pb.numBlocks + 1 >= pb.maxBlocks) problem = PR_1_TOOBIG_DIR;
      if (pb.isReg && pb.numBlocks + 1 >= pb.maxBlocks) problem = PR_1_TOOBIG_REG;
      if (!pb.isDir && !pb.isReg && cnt > 0) problem = PR_1_TOOBIG_SYMLINK;
      if (blk < v.firstDataBlock || blk >= v.blocksCount) problem = PR_1_ILLEGAL_BLOCK_NUM;
      if (cnt < 0 && ino !== EXT4_RESIZE_INO && blk < v.blocksCount && c.blockMeta.test(blk)) {
        r.fix(PR_1_CRITICAL_METADATA_COLLISION, { ino, blk });
        // Pass 1B moves the block; the check then starts again (E2F_FLAG_RESTART_LATER).
        if (r.repairing) c.restartLater = true;
      }
      if (problem !== undefined) {
        pb.numIllegal++;
        // Under an indirect block that is itself critical metadata, e2fsck drops the pointer
        // in memory without a word (pass 1B deals with the collision).
        if (ino !== EXT4_RESIZE_INO && ref !== 0 && c.blockMeta.test(ref)) return false;
        if (pb.numIllegal % 12 === 0) {
          // @e2fsprogs process_block: clearing the inode ends the walk (BLOCK_ABORT) and restarts the check.
          if (r.ask(PR_1_TOO_MANY_BAD_BLOCKS, { ino })) {
            walk.clearing = true;
            return false;
          }
          r.fix(PR_1_SUPPRESS_MESSAGES, { ino });
        }
        const latched = problem === PR_1_ILLEGAL_BLOCK_NUM
          ? r.latch(LATCH_BLOCK, PR_1_INODE_BLOCK_LATCH, { ino }, true)
          : r.latch(LATCH_TOOBIG, PR_1_INODE_TOOBIG, { ino }, true);
        // Declined: the pointer stays, so an illegal indirect block then fails the walk.
        if (!r.ask(problem, { ino, blk, blkcount: cnt }, {}, latched)) return true;
        // Cleared: the pointer is zeroed (written after the walk); a directory keeps a hole there.
        cleared.push({ ref, blk, slot });
        if (problem !== PR_1_TOOBIG_DIR && pb.isDir && cnt >= 0) {
          while (++pb.lastDbBlock < cnt) c.dblist.add(ino, 0, pb.lastDbBlock);
          c.dblist.add(ino, 0, cnt);
        }
        return false;
      }
      const ratio = v.clusterRatio;
      if (ino === EXT4_RESIZE_INO) {
        if (cnt === -2) c.markBlockUsed(blk);
        pb.numBlocks++;
      } else if (!(ratio > 1 && pb.previousBlock !== 0 && Math.floor(blk / ratio) === Math.floor(pb.previousBlock / ratio)
        && blk % ratio === ((cnt % ratio) + ratio) % ratio)) {
        c.markBlockUsed(blk);
        pb.numBlocks++;
      }
      if (cnt >= 0) pb.lastBlock = cnt;
      pb.previousBlock = blk;
      if (pb.isDir && cnt >= 0) {
        while (++pb.lastDbBlock < cnt) c.dblist.add(ino, 0, pb.lastDbBlock);
        c.dblist.add(ino, blk, cnt);
      }
      return true;
    });
    if (walk.clearing) {
      // The pointers cleared before the walk stopped are written all the same (libext2fs writes
      // a changed indirect block, and the inode, on BLOCK_ABORT too).
      if (cleared.length > 0) await this.zeroPointers(ino, pb.raw, cleared);
      await clearInode(c, ino, pb.raw);
      throw new FsckRestart();
    }
    if (err !== undefined) pb.iterateError = err;
    pb.lastInitLblock = pb.lastBlock;
    if (cleared.length > 0) await this.zeroPointers(ino, pb.raw, cleared);
  }

  /**
   * Write out the block-map pointers the walk cleared (e2fsck's BLOCK_CHANGED): in i_block,
   * or in the indirect block that holds them; the slot the walk saw, or (an extent tree
   * walked as a block map, with no slots) every slot holding that illegal value.
   */
  async zeroPointers(ino: number, raw: RawInode, cleared: readonly ClearedPointer[]): Promise<void> {
    const w = this.c.out;
    const byRef = new Map<number, ClearedPointer[]>();
    for (const p of cleared) {
      let list = byRef.get(p.ref);
      if (list === undefined) byRef.set(p.ref, (list = []));
      list.push(p);
    }
    const zero = (b: Uint8Array, list: readonly ClearedPointer[]): void => {
      for (const { blk, slot } of list) {
        if (slot >= 0) {
          if (slot * 4 + 4 <= b.length && u32(b, slot * 4) === blk) b.fill(0, slot * 4, slot * 4 + 4);
        } else {
          for (let o = 0; o + 4 <= b.length; o += 4) if (u32(b, o) === blk) b.fill(0, o, o + 4);
        }
      }
    };
    // An indirect block written back by the walk (ext2fs_block_iterate's write of a changed
    // block) is not what libext2fs counts as changing the volume; the inode written is.
    for (const [ref, list] of byRef) {
      if (ref !== 0) await w.updateBlock(ref, (b) => zero(b, list), false);
    }
    const own = byRef.get(0);
    if (own !== undefined) {
      const ib = raw.i_block.slice();
      zero(ib, own);
      raw.i_block = ib;
      await w.writeInode(ino, { i_block: ib });
    }
  }

  /**
   * After the scan: EA blocks referenced fewer times than h_refcount says (references
   * still expected) or more (extra references). @e2fsprogs adjust_extattr_refcount
   */
  adjustEaRefcounts(): void {
    const c = this.c;
    const report = (blk: number, delta: number): void => {
      const h = c.eaHeaderRefcount.get(blk) ?? 0;
      c.r.fix(PR_1_EXTATTR_REFCOUNT, { blk, blkcount: h, num: (h + delta) >>> 0 });
    };
    const visit = (m: Map<number, number>, sign: number): void => {
      for (const blk of [...m.keys()].sort((a, b) => a - b)) {
        const n = m.get(blk)!;
        if (n === 0) continue;
        const bad = c.eaBlockReadError.get(blk);
        if (bad !== undefined) c.r.fix(PR_1_EXTATTR_READ_ABORT, { blk, str: bad });
        report(blk, sign * n);
      }
    };
    visit(c.eaRefcount, -1);
    visit(c.eaRefcountExtra, 1);
  }
}

