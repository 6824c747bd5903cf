/**
 * What the passes share (e2fsck's e2fsck_t): the volume, the reporter, and the facts pass 1
 * gathers for the later passes, kept in compact chunked bitmaps and counter arrays:
 *
 * - inodeUsed / inodeBad / inodeBb / inodeImagic: e2fsck's inode_used_map, inode_bad_map,
 *   inode_bb_map, inode_imagic_map; `ftype` holds the directory-entry file type each scanned
 *   inode's mode implies (so pass 2 need not re-read inodes to check entry types; it also
 *   tells directories and regular files, e2fsck's inode_dir_map and inode_reg_map).
 * - linkInfo (i_links_count as read) and linkCount (references found in pass 2), as
 *   e2fsck's icounts: a bit for a count of 1, a map entry for more.
 * - blockFound (every block something claims), blockDup (claimed twice), blockMeta (the
 *   fixed metadata), blockEa (extended attribute blocks seen) and the EA refcounts.
 * - dirs: e2fsck's dir_info (inode, '..' found in the directory, parent found by pass 2),
 *   sorted by inode as pass 1 finds them; dblist: every directory block.
 */

import { QuotaUsage } from "./quota_check.js";
import { EXT4_FT_BLKDEV, EXT4_FT_CHRDEV, EXT4_FT_DIR, EXT4_FT_FIFO, EXT4_FT_REG_FILE, EXT4_FT_SOCK, EXT4_FT_SYMLINK, EXT4_FT_UNKNOWN } from "../format/dirent.js";
import { EXT4_INDEX_FL, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from "../format/inode.js";
import { ChunkedBitmap, FileTypes, GrowF64, GrowU32, InodeCounts } from "./maps.js";
import type { Reporter } from "./report.js";
import type { FsckWriter } from "./writer.js";
import type { FsckVolume } from "./volume.js";

/** Per-directory flags kept in DirInfo.flags. */
export const DIR_INLINE = 1;
export const DIR_ENCRYPTED = 2;
export const DIR_CASEFOLD = 4;
export const DIR_HTREE = 8;

/** e2fsck's dir_info list: directories in inode order. */
export class DirInfo {
  readonly ino = new GrowU32();
  readonly dotdot = new GrowU32();
  readonly parent = new GrowU32();
  readonly generation = new GrowU32();
  readonly flags = new GrowU32();
  readonly size = new GrowF64();

  add(ino: number, generation: number, flags: number, size: number): void {
    this.ino.push(ino);
    this.dotdot.push(0);
    this.parent.push(0);
    this.generation.push(generation);
    this.flags.push(flags);
    this.size.push(size);
  }

  get count(): number {
    return this.ino.length;
  }

  /** Add a directory found after pass 1 (a new /lost+found), keeping the list in inode order. */
  insert(ino: number, generation: number, flags: number, size: number): void {
    this.add(ino, generation, flags, size);
    const cols = [this.ino, this.dotdot, this.parent, this.generation, this.flags] as const;
    for (let i = this.count - 1; i > 0 && this.ino.get(i - 1) > ino; i--) {
      for (const col of cols) {
        const t = col.get(i);
        col.set(i, col.get(i - 1));
        col.set(i - 1, t);
      }
      const t = this.size.get(i);
      this.size.set(i, this.size.get(i - 1));
      this.size.set(i - 1, t);
    }
  }

  /** Index of directory `ino`, or -1. */
  find(ino: number): number {
    const a = this.ino.view();
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const m = (lo + hi) >>> 1;
      const v = a[m]!;
      if (v === ino) return m;
      if (v < ino) lo = m + 1;
      else hi = m - 1;
    }
    return -1;
  }
}

/** e2fsck's dblist: (directory, physical block, logical block); physical 0 is a hole. */
export class DbList {
  readonly ino = new GrowU32();
  readonly blk = new GrowF64();
  readonly cnt = new GrowU32();

  add(ino: number, blk: number, cnt: number): void {
    this.ino.push(ino);
    this.blk.push(blk);
    this.cnt.push(cnt);
  }

  get count(): number {
    return this.ino.length;
  }
}

/** Per-block state of an htree directory (e2fsck's dx_dirblock_info), one slot per logical block. */
export class DxDir {
  readonly type: Uint8Array;
  readonly flags: Uint8Array;
  readonly parent: Int32Array;
  readonly previous: Int32Array;
  readonly minHash: Uint32Array;
  readonly maxHash: Uint32Array;
  readonly nodeMinHash: Uint32Array;
  readonly nodeMaxHash: Uint32Array;
  hashVersion = 0;
  depth = 0;
  /** 0 once the index was found unusable (e2fsck clears numblocks). */
  numBlocks: number;

  constructor(readonly ino: number, numBlocks: number) {
    this.numBlocks = numBlocks;
    this.type = new Uint8Array(numBlocks);
    this.flags = new Uint8Array(numBlocks);
    this.parent = new Int32Array(numBlocks);
    this.previous = new Int32Array(numBlocks);
    this.minHash = new Uint32Array(numBlocks);
    this.maxHash = new Uint32Array(numBlocks);
    this.nodeMinHash = new Uint32Array(numBlocks);
    this.nodeMaxHash = new Uint32Array(numBlocks);
  }

  /** Bytes allocated (for memory accounting). */
  get bytes(): number {
    const cols = [this.type, this.flags, this.parent, this.previous, this.minHash, this.maxHash, this.nodeMinHash, this.nodeMaxHash];
    return cols.reduce((n, a) => n + a.byteLength, 0);
  }
}

export const DX_DIRBLOCK_ROOT = 1;
export const DX_DIRBLOCK_LEAF = 2;
export const DX_DIRBLOCK_NODE = 3;
export const DX_FLAG_REFERENCED = 1;
export const DX_FLAG_DUP_REF = 2;
export const DX_FLAG_FIRST = 4;
export const DX_FLAG_LAST = 8;

/** The file type a directory entry should carry for an inode of this mode. @e2fsprogs ext2_file_type */
export function fileTypeOfMode(mode: number): number {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return EXT4_FT_REG_FILE;
    case S_IFDIR:
      return EXT4_FT_DIR;
    case S_IFCHR:
      return EXT4_FT_CHRDEV;
    case S_IFBLK:
      return EXT4_FT_BLKDEV;
    case S_IFLNK:
      return EXT4_FT_SYMLINK;
    case S_IFIFO:
      return EXT4_FT_FIFO;
    case S_IFSOCK:
      return EXT4_FT_SOCK;
    default:
      return EXT4_FT_UNKNOWN;
  }
}

export interface CheckCounters {
  directories: number;
  regular: number;
  symlinks: number;
  fastSymlinks: number;
  chardev: number;
  blockdev: number;
  fifo: number;
  sockets: number;
  fragmented: number;
  fragmentedDir: number;
  /** Directories needing LARGE_DIR (a deep htree, or a size past 2 GiB). */
  largeDirs: number;
  largeFiles: number;
  badBlocks: number;
  links: number;
  total: number;
}

/** e2fsck's special policy ids (encrypted_files.c). */
export const NO_ENCRYPTION_POLICY = 0xffffffff;
export const CORRUPT_ENCRYPTION_POLICY = 0xfffffffe;
export const UNRECOGNIZED_ENCRYPTION_POLICY = 0xfffffffd;

/**
 * The encryption policy of every encrypted inode (e2fsck encrypted_files.c): inodes arrive in
 * increasing order during pass 1 and are kept as runs of consecutive inodes sharing a policy
 * id, so a volume where everything is encrypted alike costs a few words. Policies themselves
 * (the encryption context without its nonce) are numbered in order of first sight.
 */
export class EncryptionPolicies {
  readonly #first = new GrowU32();
  readonly #last = new GrowU32();
  readonly #id = new GrowU32();
  readonly #ids = new Map<string, number>();

  /** The policy id of an encryption context (xattr "c"), or CORRUPT/UNRECOGNIZED. */
  idOf(ctx: Uint8Array): number {
    if (ctx.length < 1) return CORRUPT_ENCRYPTION_POLICY;
    const version = ctx[0]!;
    let policyLen: number;
    if (version === 1) {
      if (ctx.length !== 28) return CORRUPT_ENCRYPTION_POLICY;
      policyLen = 12; // version, modes, flags, 8-byte key descriptor
    } else if (version === 2) {
      if (ctx.length !== 40) return CORRUPT_ENCRYPTION_POLICY;
      policyLen = 24; // version, modes, flags, 4 reserved, 16-byte key identifier
    } else if (version === 0) {
      return CORRUPT_ENCRYPTION_POLICY;
    } else {
      return UNRECOGNIZED_ENCRYPTION_POLICY;
    }
    const key = Array.from(ctx.subarray(0, policyLen), (b) => b.toString(16).padStart(2, "0")).join("");
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.#ids.size;
      this.#ids.set(key, id);
    }
    return id;
  }

  /** Record inode `ino`'s policy; inodes must come in increasing order. */
  add(ino: number, id: number): void {
    const n = this.#first.length;
    if (n > 0 && this.#last.get(n - 1) + 1 === ino && this.#id.get(n - 1) === id) {
      this.#last.set(n - 1, ino);
      return;
    }
    this.#first.push(ino);
    this.#last.push(ino);
    this.#id.push(id);
  }

  /** The policy id of `ino`, or NO_ENCRYPTION_POLICY when it is not (validly) encrypted. */
  find(ino: number): number {
    let l = 0;
    let r = this.#first.length;
    while (l < r) {
      const m = (l + r) >>> 1;
      if (ino < this.#first.get(m)) r = m;
      else if (ino > this.#last.get(m)) l = m + 1;
      else return this.#id.get(m);
    }
    return NO_ENCRYPTION_POLICY;
  }
}

/** Everything the passes share: the volume, the reporter, and e2fsck's maps and counts. */
export class CheckContext {
  readonly v: FsckVolume;
  readonly r: Reporter;
  /** Seconds since the epoch, for time checks. */
  readonly now: number;

  readonly inodeUsed: ChunkedBitmap;
  readonly inodeBad: ChunkedBitmap;
  readonly inodeBb: ChunkedBitmap;
  readonly inodeImagic: ChunkedBitmap;
  /** EXT4_FT_* of each scanned inode's mode, 0 when unknown or not scanned. */
  readonly ftype: FileTypes;
  readonly linkInfo: InodeCounts;
  readonly linkCount: InodeCounts;

  readonly blockFound: ChunkedBitmap;
  blockDup: ChunkedBitmap | null = null;
  readonly blockMeta: ChunkedBitmap;
  readonly blockEa: ChunkedBitmap;
  /** EA block -> references still expected (h_refcount less those found). */
  readonly eaRefcount = new Map<number, number>();
  /** References to each EA inode from attribute entries (e2fsck's ea_inode_refs). */
  readonly eaInodeRefs = new Map<number, number>();
  /** EA block -> blocks it charges each owner, when not one cluster (values in EA inodes). */
  readonly eaBlockQuota = new Map<number, number>();
  /** EA block -> why libext2fs could not read it back (bad header or checksum), for pass 1's refcount fix-up. */
  readonly eaBlockReadError = new Map<number, string>();
  /** EA block -> its h_refcount as read. */
  readonly eaHeaderRefcount = new Map<number, number>();
  /** EA block -> references found beyond h_refcount. */
  readonly eaRefcountExtra = new Map<number, number>();
  /** The bad blocks list (inode 1, read before the inode scan as libext2fs does), usually empty. */
  readonly badBlocks = new Set<number>();
  /**
   * A repairing run found something it leaves for a later check (e2fsck's
   * E2F_FLAG_RESTART_LATER): pass 2 restarts the check after its directory blocks.
   */
  restartLater = false;
  /**
   * A repair cut a directory from the tree (e2fsck's E2F_FLAG_RESTART, set by
   * e2fsck_get_lost_and_found): pass 3 finishes the directory in hand, then the check restarts.
   */
  restart = false;
  /**
   * Inodes pass 1B found with multiply-claimed blocks, in this run and the runs before its
   * restarts: e2fsck keeps the count in a static that nothing resets, so "(There are N inodes
   * containing multiply-claimed blocks.)" counts them all.
   */
  dupInodes = 0;

  readonly dirs = new DirInfo();
  readonly dblist = new DbList();
  readonly dxDirs = new Map<number, DxDir>();
  /**
   * Directories pass 3A rebuilds (e2fsck's dirs_to_hash): those pass 2 found duplicate names
   * or bad checksums in, and the big linear ones pass 1 schedules (see `rehashBigDirs`).
   */
  readonly dirsToRehash = new Set<number>();
  /**
   * Pass 1 schedules every linear directory of 3 blocks or more for pass 3A: e2fsck makes
   * dirs_to_hash when repairing a dir_index volume. @e2fsprogs e2fsck_pass1 (dirs_to_hash)
   */
  rehashBigDirs = false;
  /** /lost+found as pass 1 looked it up, kept out of that scheduling (its blocks are reserved). */
  lostAndFoundPass1 = 0;
  readonly encryption = new EncryptionPolicies();
  /** Casefolded inodes (e2fsck's inode_casefold_map). */
  readonly inodeCasefold: ChunkedBitmap;
  /** Inode tables groups whose location is unusable (e2fsck's invalid_inode_table_flag). */
  readonly invalidInodeTable: Uint8Array;
  readonly invalidBlockBitmap: Uint8Array;
  readonly invalidInodeBitmap: Uint8Array;

  /** Quota usage counted in pass 1, compared with the quota files at the end. */
  readonly quota: QuotaUsage;

  readonly counters: CheckCounters = {
    directories: 0, regular: 0, symlinks: 0, fastSymlinks: 0, chardev: 0, blockdev: 0, fifo: 0, sockets: 0,
    fragmented: 0, fragmentedDir: 0, largeDirs: 0, largeFiles: 0, badBlocks: 0, links: 0, total: 0,
  };

  /** Lines e2fsck prints outside its problems ("*** journal has been deleted ***"). */
  warn: (line: string) => void = () => undefined;
  /** The journal was deleted by a repair and is to be made again after pass 5 (E2F_FLAG_JOURNAL_INODE). */
  journalDeleted = false;
  /** A repair wrote a new, empty journal superblock: the log holds nothing to replay. */
  journalReset = false;
  /**
   * A repair that e2fsck counts as fixed without a question (E2F_FLAG_PROBLEMS_FIXED set by
   * hand, as clear_v2_journal_fields does): the run exits 1 if it also changed the volume.
   */
  problemsFixedQuietly = false;
  /**
   * A block or inode bitmap was changed by a repair (libext2fs's ext2fs_mark_bb_dirty and
   * ext2fs_mark_ib_dirty): pass 5 then does not check that bitmap's checksums, which the
   * bitmaps written at the end correct (e2fsck's check_*_bitmap_checksum).
   */
  blockBitmapDirty = false;
  inodeBitmapDirty = false;
  /**
   * Pass 1's end of check_blocks for directory `ino`: a linear directory whose i_size (its low
   * 32 bits, as e2fsck reads it) spans 3 blocks or more is rebuilt in pass 3A, /lost+found
   * aside. @e2fsprogs check_blocks (e2fsck_rehash_dir_later)
   */
  rehashIfBig(ino: number, iFlags: number, iSizeLo: number): void {
    if (this.rehashBigDirs && ino !== this.lostAndFoundPass1 && (iFlags & EXT4_INDEX_FL) === 0
      && Math.floor(iSizeLo / this.v.blockSize) >= 3) this.dirsToRehash.add(ino);
  }

  /** /lost+found once pass 3 found or made it (e2fsck's ctx->lost_and_found), else 0. */
  lostAndFound = 0;
  /** /lost+found could not be found or made: reconnecting is given up. */
  badLostAndFound = false;
  /**
   * Blocks pass 1 set aside for pass 3 to make the root directory and /lost+found with, when
   * it found them missing, so nothing allocated in between takes them (0: none). @e2fsprogs
   * ctx->root_repair_block, ctx->lnf_repair_block
   */
  rootRepairBlock = 0;
  lnfRepairBlock = 0;

  /** The write side of a repairing run (-y, -p); null for -n, which never writes. */
  readonly w: FsckWriter | null;

  /** The writer, for a call site that got a yes (only a repairing run answers yes). */
  get out(): FsckWriter {
    if (this.w === null) throw new Error("internal error: a repair was answered yes in a run that does not write");
    return this.w;
  }

  constructor(v: FsckVolume, r: Reporter, now: number, w: FsckWriter | null = null) {
    this.w = w;
    this.v = v;
    this.r = r;
    this.now = now;
    const ni = v.inodesCount + 1;
    this.inodeUsed = new ChunkedBitmap(ni);
    this.ftype = new FileTypes(ni);
    this.linkInfo = new InodeCounts(ni, 0xffff);
    this.linkCount = new InodeCounts(ni, 0xffffffff);
    this.inodeBad = new ChunkedBitmap(ni);
    this.inodeBb = new ChunkedBitmap(ni);
    this.inodeImagic = new ChunkedBitmap(ni);
    this.inodeCasefold = new ChunkedBitmap(ni);
    this.blockFound = new ChunkedBitmap(v.blocksCount);
    this.blockMeta = new ChunkedBitmap(v.blocksCount);
    this.blockEa = new ChunkedBitmap(v.blocksCount);
    this.invalidInodeTable = new Uint8Array(v.groupCount);
    this.invalidBlockBitmap = new Uint8Array(v.groupCount);
    this.invalidInodeBitmap = new Uint8Array(v.groupCount);
    this.quota = new QuotaUsage(v);
  }

  /**
   * Bytes held by the per-inode and per-block maps and lists (typed arrays, link counts
   * above one included; the JS Maps kept for rarer things, such as extended attribute
   * blocks and encryption policies, are not counted). What e2fsck's -t "Memory used" mostly
   * measures: its bitmaps, icounts and lists.
   */
  structureBytes(): number {
    let n = this.ftype.bytes + this.linkInfo.bytes + this.linkCount.bytes + (this.blockDup?.bytes ?? 0);
    for (const bm of [this.inodeUsed, this.inodeBad, this.inodeBb, this.inodeImagic, this.inodeCasefold, this.blockFound, this.blockMeta, this.blockEa]) n += bm.bytes;
    const d = this.dirs;
    for (const col of [d.ino, d.dotdot, d.parent, d.generation, d.flags, d.size, this.dblist.ino, this.dblist.blk, this.dblist.cnt]) n += col.bytes;
    for (const dx of this.dxDirs.values()) n += dx.bytes;
    return n;
  }

  isDir(ino: number): boolean {
    return this.inodeUsed.test(ino) && this.ftype.get(ino) === EXT4_FT_DIR;
  }

  isReg(ino: number): boolean {
    return this.inodeUsed.test(ino) && this.ftype.get(ino) === EXT4_FT_REG_FILE;
  }

  /** Claim a block; a second claim marks it multiply-claimed. @e2fsprogs mark_block_used */
  markBlockUsed(b: number): void {
    if (b < 0 || b >= this.v.blocksCount) return;
    if (this.blockFound.set(b)) {
      if (this.v.f.sharedBlocks) return;
      this.blockDup ??= new ChunkedBitmap(this.v.blocksCount);
      this.blockDup.set(b);
    }
  }

  /** Claim a run of blocks. @e2fsprogs mark_blocks_used */
  markBlocksUsed(b: number, n: number): void {
    for (let i = 0; i < n; i++) this.markBlockUsed(b + i);
  }
}
