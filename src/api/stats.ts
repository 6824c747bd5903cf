/**
 * Stats, shaped like Node's fs.BigIntStats plus plain-number conveniences: nanosecond
 * times are exact bigints (`mtimeNs`), and the ext4 (seconds, nanoseconds) pairs are
 * kept as numbers (`mtimeSec`, `mtimeNsec`) for formats that print them.
 */

import { reservedBlocks } from "../fs/inode_core.js";
import {
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  inodeGid,
  inodeRdev,
  inodeTime,
  inodeUid,
  type Timespec,
} from "../format/inode.js";
import type { Inode } from "../fs/inode.js";
import type { Ext4Fs } from "../fs/super.js";

export type FileType = "file" | "dir" | "symlink" | "chr" | "blk" | "fifo" | "sock";

export function fileTypeOf(mode: number): FileType {
  switch (mode & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "dir";
    case S_IFLNK: return "symlink";
    case S_IFCHR: return "chr";
    case S_IFBLK: return "blk";
    case S_IFIFO: return "fifo";
    default: return "sock"; // iget admits only the seven known types
  }
}

function ns(t: Timespec): bigint {
  return BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);
}

export class Stats {
  readonly ino: number;
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  /** Linux dev_t encoding of (rdevMajor, rdevMinor); 0 unless a device. */
  readonly rdev: number;
  readonly rdevMajor: number;
  readonly rdevMinor: number;
  readonly size: number;
  readonly blksize: number;
  /** 512-byte units, like st_blocks: i_blocks plus blocks reserved for data not yet written back. */
  readonly blocks: number;
  readonly flags: number;
  readonly generation: number;
  readonly atime: Timespec;
  readonly mtime: Timespec;
  readonly ctime: Timespec;
  /** i_crtime; zero when the inode has no room for it. */
  readonly birthtime: Timespec;

  constructor(fs: Ext4Fs, inode: Inode) {
    const raw = inode.raw;
    this.ino = inode.ino;
    this.mode = inode.mode;
    this.nlink = raw.i_links_count;
    this.uid = inodeUid(raw);
    this.gid = inodeGid(raw);
    const type = inode.mode & S_IFMT;
    const dev = type === S_IFCHR || type === S_IFBLK ? inodeRdev(raw) : { major: 0, minor: 0 };
    this.rdevMajor = dev.major;
    this.rdevMinor = dev.minor;
    this.rdev = ((dev.minor & 0xff) | (dev.major << 8) | ((dev.minor & ~0xff) << 12)) >>> 0; // new_encode_dev
    this.size = inode.size;
    this.blksize = fs.blockSize;
    // Delayed data counts as if allocated, as ext4_getattr reports it (du sees it).
    this.blocks = inode.blocks + reservedBlocks(fs, inode.ino) * (fs.blockSize / 512);
    this.flags = inode.flags;
    this.generation = raw.i_generation;
    this.atime = inodeTime(raw, fs.inodeSize, "i_atime");
    this.mtime = inodeTime(raw, fs.inodeSize, "i_mtime");
    this.ctime = inodeTime(raw, fs.inodeSize, "i_ctime");
    this.birthtime = inodeTime(raw, fs.inodeSize, "i_crtime");
  }

  get type(): FileType {
    return fileTypeOf(this.mode);
  }
  get atimeNs(): bigint {
    return ns(this.atime);
  }
  get mtimeNs(): bigint {
    return ns(this.mtime);
  }
  get ctimeNs(): bigint {
    return ns(this.ctime);
  }
  get birthtimeNs(): bigint {
    return ns(this.birthtime);
  }
  get mtimeMs(): number {
    return this.mtime.sec * 1000 + this.mtime.nsec / 1e6;
  }
  isFile(): boolean {
    return (this.mode & S_IFMT) === S_IFREG;
  }
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === S_IFDIR;
  }
  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === S_IFLNK;
  }
  isCharacterDevice(): boolean {
    return (this.mode & S_IFMT) === S_IFCHR;
  }
  isBlockDevice(): boolean {
    return (this.mode & S_IFMT) === S_IFBLK;
  }
  isFIFO(): boolean {
    return (this.mode & S_IFMT) === S_IFIFO;
  }
  isSocket(): boolean {
    return (this.mode & S_IFMT) === S_IFSOCK;
  }
}
