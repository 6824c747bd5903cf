/**
 * Namespace changes: create, mkdir, symlink, mknod, link, unlink, rmdir, rename
 * (@kernel ext4_create, ext4_mkdir, ext4_symlink, ext4_mknod, ext4_link, ext4_unlink,
 * ext4_rmdir, ext4_rename; fs/ext4/namei.c, ialloc.c __ext4_new_inode, inode.c
 * ext4_evict_inode).
 *
 * Each function works inside the caller's handle on writable inodes the caller holds,
 * and writes back every inode it changed. Link counting follows the kernel, including
 * dir_nlink's "1 means too many to count" for indexed directories.
 */

import { FsError } from "../errors.js";
import { EXT4_FT_BLKDEV, EXT4_FT_CHRDEV, EXT4_FT_DIR, EXT4_FT_FIFO, EXT4_FT_REG_FILE, EXT4_FT_SOCK, EXT4_FT_SYMLINK } from "../format/dirent.js";
import { EXT4_EXT_MAGIC, extentHeader } from "../format/extent.js";
import {
  EXT4_EXTENTS_FL,
  EXT4_INDEX_FL,
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
  setInodeTime,
  type Timespec,
} from "../format/inode.js";
import { inodeFileAcl } from "../format/inode.js";
import { mapBlocks } from "./read.js";
import { addDirEntry, initDirBlock, isEmptyDir, removeDirEntry, sealDirBlock, setDirEntry, type DirBlocks } from "./dir_write.js";
import { mapForWrite, sectorsOf, truncateData, writeData, type WriteDeps } from "./file_write.js";
import type { Handle } from "./handle.js";
import { getSize, igetWritable, igetWritableRaw, markInodeDirty, newInodeInfo, setSize, type InodeInfo } from "./inode_write.js";
import { isFastSymlinkRaw } from "./inode.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";
import { dcacheDropDir } from "./dcache.js";
import { aclsForNewInode, initAcls, releaseXattrBlock } from "./xattr_write.js"; // also keeps the xattr block index in step
import type { AclEntry } from "../format/acl.js";
import { orphanAdd, orphanDel, orphanList } from "./orphan.js";
import { EXT4_ERROR_FS, firstIno } from "../format/superblock.js";
import { EXT4_PROJINHERIT_FL } from "../format/inode.js";
import type { InodeDquots } from "./quota.js";
import { dquotsForIds, hasProjectFeature, inodeDquots, projectIdOf } from "./quota_charge.js";

/** The inode allocator as namespace code sees it (ialloc.ts implements it). */
export interface InodeAllocator {
  /** `name` lets top-level directories spread by name hash (Orlov). */
  /** `dquots`: whom the inode is charged to (EDQUOT before anything changes); null: nobody. */
  newInode(h: Handle, dirIno: number, mode: number, name: Uint8Array, dquots: InodeDquots | null): Promise<number>;
  /** `dquots`: whom the inode was charged to, uncharged with the bit; null: nobody. */
  freeInode(h: Handle, ino: number, isDir: boolean, dquots: InodeDquots | null): Promise<void>;
}

export interface NameiDeps extends WriteDeps {
  inodes: InodeAllocator;
  /** Current time (injectable for reproducible images). */
  now(): Timespec;
}

/** The kernel's cap on links (and on subdirectories without dir_nlink). */
export const EXT4_LINK_MAX = 65000;

export interface NewInodeAttrs {
  /** Full mode with the S_IFMT type. */
  mode: number;
  uid: number;
  gid: number;
  /** Character/block devices. */
  rdev?: { major: number; minor: number };
  /** Symlinks. */
  target?: Uint8Array;
  /**
   * The caller's umask: cleared from `mode` unless the directory has a default ACL, which
   * decides the permissions instead (the VFS leaves the umask to posix_acl_create).
   */
  umask?: number;
}

export function fileTypeOfMode(mode: number): number {
  switch (mode & S_IFMT) {
    case S_IFREG: return EXT4_FT_REG_FILE;
    case S_IFDIR: return EXT4_FT_DIR;
    case S_IFLNK: return EXT4_FT_SYMLINK;
    case S_IFCHR: return EXT4_FT_CHRDEV;
    case S_IFBLK: return EXT4_FT_BLKDEV;
    case S_IFIFO: return EXT4_FT_FIFO;
    case S_IFSOCK: return EXT4_FT_SOCK;
    default: throw new FsError("EINVAL", `Invalid file type in mode 0${mode.toString(8)}`);
  }
}

/** Directory blocks of an extent- or block-mapped directory, read and grown through the handle. */
export function dirBlocksOf(fs: Ext4Fs, deps: WriteDeps): DirBlocks {
  return {
    count: (dir) => Math.ceil(getSize(fs, dir) / fs.blockSize),
    async get(h, dir, lblk) {
      const run = await mapBlocks(fs, dir, lblk, 1);
      if (run.pblk === 0 || run.unwritten) throw new FsError("EFSCORRUPTED", `Directory has a hole at block ${lblk}`, { ino: dir.ino });
      return { pblk: run.pblk, data: await h.getWriteAccess(run.pblk) };
    },
    async append(h, dir) {
      const lblk = Math.ceil(getSize(fs, dir) / fs.blockSize);
      const [run] = await mapForWrite(h, deps, dir, lblk, 1, "dirBlock");
      if (run === undefined) throw new FsError("EFSCORRUPTED", "Directory block allocation returned nothing", { ino: dir.ino });
      setSize(dir, (lblk + 1) * fs.blockSize);
      return { lblk, pblk: run.pblk, data: await h.getCreateAccess(run.pblk) };
    },
  };
}

const generations = new WeakMap<Ext4Fs, number>();

/** i_generation for a new inode: a per-volume xorshift seeded from the UUID (deterministic, distinct). */
function nextGeneration(fs: Ext4Fs): number {
  let x = generations.get(fs) ?? (fs.sb.s_uuid.reduce((a, b, i) => (a ^ (b << ((i % 4) * 8))) >>> 0, 0x9e3779b9) || 1);
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  x >>>= 0;
  generations.set(fs, x);
  return x;
}

function touch(fs: Ext4Fs, inode: InodeInfo, t: Timespec, fields: readonly ("i_atime" | "i_mtime" | "i_ctime" | "i_crtime")[]): void {
  for (const f of fields) setInodeTime(inode.raw, fs.inodeSize, f, t);
}

/** Kernel link counting for directories. @kernel ext4_inc_count / ext4_dec_count */
function incLinks(fs: Ext4Fs, dir: InodeInfo): void {
  const isDx = fs.features.dirIndex && (dir.raw.i_flags & EXT4_INDEX_FL) !== 0;
  const n = dir.raw.i_links_count + 1;
  dir.raw.i_links_count = isDx && (n > EXT4_LINK_MAX || n === 2) ? 1 : n;
}
function decLinks(dir: InodeInfo): void {
  if ((dir.raw.i_mode & S_IFMT) !== S_IFDIR || dir.raw.i_links_count > 2) dir.raw.i_links_count--;
}

/** Would one more subdirectory exceed the link limit? @kernel EXT4_DIR_LINK_MAX */
function dirLinkMax(fs: Ext4Fs, dir: InodeInfo): boolean {
  const isDx = fs.features.dirIndex && (dir.raw.i_flags & EXT4_INDEX_FL) !== 0;
  return dir.raw.i_links_count >= EXT4_LINK_MAX && !(fs.features.dirNlink && isDx);
}

/**
 * Create an inode of any type under `dir` as `name`, with its first contents (a
 * directory's "." and "..", a symlink's target, a device number).
 * @kernel ext4_create / ext4_mkdir / ext4_symlink / ext4_mknod
 */
export async function createNode(h: Handle, deps: NameiDeps, dir: InodeInfo, name: Uint8Array, attrs: NewInodeAttrs): Promise<InodeInfo> {
  const fs = h.fs;
  const type = attrs.mode & S_IFMT;
  const ft = fileTypeOfMode(attrs.mode);
  if (type === S_IFDIR && dirLinkMax(fs, dir)) throw new FsError("EMLINK", "Too many links");
  if (type === S_IFLNK && (attrs.target === undefined || attrs.target.length === 0 || attrs.target.length >= fs.blockSize)) {
    throw new FsError(attrs.target !== undefined && attrs.target.length >= fs.blockSize ? "ENAMETOOLONG" : "ENOENT", "Bad symlink target length");
  }
  // A setgid directory hands its group down, and its setgid bit to new directories. @kernel inode_init_owner
  if (dir.raw.i_mode & 0o2000) {
    attrs = { ...attrs, gid: (dir.raw.i_gid | (dir.raw.l_i_gid_high << 16)) >>> 0 };
    if (type === S_IFDIR) attrs = { ...attrs, mode: attrs.mode | 0o2000 };
  }
  const acls = await aclsForNewInode(fs, dir, attrs.mode);
  attrs = { ...attrs, mode: acls === null ? attrs.mode & ~((attrs.umask ?? 0) & 0o777) : acls.mode };
  // A directory with PROJINHERIT hands its project down. @kernel __ext4_new_inode
  const projid = hasProjectFeature(fs) && (dir.raw.i_flags & EXT4_PROJINHERIT_FL) !== 0 ? projectIdOf(fs, dir.raw) : 0;
  // The owner's quota records are loaded before the inode is taken (dquot_initialize).
  const dquots = await dquotsForIds(fs, { uid: attrs.uid >>> 0, gid: attrs.gid >>> 0, projid });
  const ino = await deps.inodes.newInode(h, dir.ino, attrs.mode, name, dquots);
  const inode = newInodeInfo(fs, ino, nextGeneration(fs));
  try {
    await initNewInode(h, deps, dir, inode, { ...attrs, projid }, name, ft, acls);
  } catch (e) {
    // No entry, no inode: give back what was allocated (e.g. ENOSPC for the directory's
    // first block, or growing the parent directory).
    inode.raw.i_links_count = 0;
    await evictInode(h, deps, inode);
    await markInodeDirty(h, dir); // the parent may have grown before the failure
    throw e;
  }
  if (type === S_IFDIR) incLinks(fs, dir);
  touch(fs, dir, deps.now(), ["i_mtime", "i_ctime"]);
  await markInodeDirty(h, dir);
  return inode;
}

/** Everything createNode does between allocating the inode number and linking it in. */
async function initNewInode(
  h: Handle,
  deps: NameiDeps,
  dir: InodeInfo,
  inode: InodeInfo,
  attrs: NewInodeAttrs & { projid: number },
  name: Uint8Array,
  ft: number,
  acls: { access: AclEntry[] | null; dflt: AclEntry[] | null } | null,
): Promise<void> {
  const fs = h.fs;
  const ino = inode.ino;
  const type = attrs.mode & S_IFMT;
  const r = inode.raw;
  r.i_mode = attrs.mode;
  r.i_uid = attrs.uid & 0xffff;
  r.l_i_uid_high = attrs.uid >>> 16;
  r.i_gid = attrs.gid & 0xffff;
  r.l_i_gid_high = attrs.gid >>> 16;
  // The ids the inode was charged to are all set before anything else can fail, so an
  // eviction on failure uncharges the same dquots. PROJINHERIT stays on directories only
  // (ext4_mask_flags). @kernel __ext4_new_inode
  if (attrs.projid !== 0) r.i_projid = attrs.projid;
  if (type === S_IFDIR && hasProjectFeature(fs) && (dir.raw.i_flags & EXT4_PROJINHERIT_FL) !== 0) r.i_flags |= EXT4_PROJINHERIT_FL;
  r.i_links_count = type === S_IFDIR ? 2 : 1;
  const now = deps.now();
  touch(fs, inode, now, ["i_atime", "i_mtime", "i_ctime", "i_crtime"]);
  const fastLink = type === S_IFLNK && attrs.target!.length < EXT4_N_BLOCKS * 4; // checked above
  if (fs.features.extents && (type === S_IFREG || type === S_IFDIR || (type === S_IFLNK && !fastLink))) {
    r.i_flags |= EXT4_EXTENTS_FL;
    const root = new Uint8Array(60);
    extentHeader.encode({ eh_magic: EXT4_EXT_MAGIC, eh_entries: 0, eh_max: 4, eh_depth: 0, eh_generation: 0 }, root, 0);
    r.i_block = root; // @kernel ext4_ext_tree_init
  }
  if (type === S_IFCHR || type === S_IFBLK) r.i_block = encodeRdev(attrs.rdev ?? { major: 0, minor: 0 });
  if (type === S_IFDIR) {
    const [run] = await mapForWrite(h, deps, inode, 0, 1, "dirBlock");
    if (run === undefined) throw new FsError("EFSCORRUPTED", "Directory block allocation returned nothing");
    const data = await h.getCreateAccess(run.pblk);
    initDirBlock(fs, data, ino, dir.ino);
    sealDirBlock(fs, data, inode.csumSeed);
    h.dirtyMetadata(run.pblk);
    setSize(inode, fs.blockSize);
  } else if (type === S_IFLNK) {
    const target = attrs.target!;
    if (fastLink) {
      const b = new Uint8Array(60);
      b.set(target);
      r.i_block = b;
    } else {
      await writeData(h, deps, inode, 0, target);
    }
    setSize(inode, target.length);
  }
  if (acls !== null) await initAcls(h, deps, inode, acls);
  await markInodeDirty(h, inode);
  await addDirEntry(fs, h, dirBlocksOf(fs, deps), dir, name, ino, ft);
}

function encodeRdev(d: { major: number; minor: number }): Uint8Array {
  const b = new Uint8Array(60);
  const dv = new DataView(b.buffer);
  if (d.major < 256 && d.minor < 256) dv.setUint32(0, (d.major << 8) | d.minor, true); // old_encode_dev
  else dv.setUint32(4, ((d.minor & 0xff) | (d.major << 8) | ((d.minor & ~0xff) << 12)) >>> 0, true); // new_encode_dev
  return b;
}

/**
 * A directory with PROJINHERIT takes only inodes of its own project (link, rename into it):
 * EXDEV otherwise, so quota trees stay closed. @kernel ext4_link / ext4_rename
 */
function checkProjectMove(fs: Ext4Fs, dir: InodeInfo, inode: InodeInfo): void {
  if (!hasProjectFeature(fs) || (dir.raw.i_flags & EXT4_PROJINHERIT_FL) === 0) return;
  if (projectIdOf(fs, dir.raw) !== projectIdOf(fs, inode.raw)) throw new FsError("EXDEV", "Invalid cross-device link");
}

/** Add a hard link to `target` as `name` in `dir`. @kernel ext4_link */
export async function linkNode(h: Handle, deps: NameiDeps, dir: InodeInfo, name: Uint8Array, target: InodeInfo): Promise<void> {
  const fs = h.fs;
  if ((target.raw.i_mode & S_IFMT) === S_IFDIR) throw new FsError("EPERM", "Operation not permitted");
  if (target.raw.i_links_count >= EXT4_LINK_MAX) throw new FsError("EMLINK", "Too many links");
  checkProjectMove(fs, dir, target);
  await addDirEntry(fs, h, dirBlocksOf(fs, deps), dir, name, target.ino, fileTypeOfMode(target.raw.i_mode));
  target.raw.i_links_count++;
  const now = deps.now();
  touch(fs, target, now, ["i_ctime"]);
  touch(fs, dir, now, ["i_mtime", "i_ctime"]);
  await markInodeDirty(h, target);
  await markInodeDirty(h, dir);
}

/**
 * Remove `name` (not a directory) from `dir`; when its last link goes, free it.
 * Files still open are the API layer's business (it defers the free to the last close).
 * @kernel ext4_unlink
 */
export async function unlinkNode(h: Handle, deps: NameiDeps, dir: InodeInfo, name: Uint8Array, victim: InodeInfo, opts: { freeIfUnused: boolean }): Promise<void> {
  const fs = h.fs;
  if ((victim.raw.i_mode & S_IFMT) === S_IFDIR) throw new FsError("EISDIR", "Is a directory");
  await removeDirEntry(fs, h, dirBlocksOf(fs, deps), dir, name);
  const now = deps.now();
  touch(fs, dir, now, ["i_mtime", "i_ctime"]);
  await markInodeDirty(h, dir);
  victim.raw.i_links_count--;
  touch(fs, victim, now, ["i_ctime"]);
  await dropLastLink(h, deps, victim, opts.freeIfUnused);
}

/** After a link count change: free an inode left with none, or (still open) put it on the orphan list. */
async function dropLastLink(h: Handle, deps: NameiDeps, inode: InodeInfo, freeIfUnused: boolean): Promise<void> {
  if (inode.raw.i_links_count !== 0) await markInodeDirty(h, inode);
  else if (freeIfUnused) await evictInode(h, deps, inode);
  else await orphanAdd(h, inode); // freed at the last close
}

/** Remove the empty directory `name` from `dir`. @kernel ext4_rmdir */
export async function rmdirNode(h: Handle, deps: NameiDeps, dir: InodeInfo, name: Uint8Array, victim: InodeInfo): Promise<void> {
  const fs = h.fs;
  if ((victim.raw.i_mode & S_IFMT) !== S_IFDIR) throw new FsError("ENOTDIR", "Not a directory");
  if (!(await isEmptyDir(fs, h, dirBlocksOf(fs, deps), victim))) throw new FsError("ENOTEMPTY", "Directory not empty");
  await removeDirEntry(fs, h, dirBlocksOf(fs, deps), dir, name);
  decLinks(dir);
  const now = deps.now();
  touch(fs, dir, now, ["i_mtime", "i_ctime"]);
  await markInodeDirty(h, dir);
  victim.raw.i_links_count = 0;
  await evictInode(h, deps, victim);
}

/**
 * Free an inode whose last link is gone: its blocks, its xattr block reference, its
 * bitmap bit; i_dtime records the deletion. @kernel ext4_evict_inode + ext4_free_inode
 */
export async function evictInode(h: Handle, deps: NameiDeps, inode: InodeInfo): Promise<void> {
  const fs = h.fs;
  const dquots = await inodeDquots(fs, inode); // the ids are intact until the inode is freed
  const type = inode.raw.i_mode & S_IFMT;
  const size = getSize(fs, inode);
  await orphanDel(h, inode);
  // A block map in i_block: regular files, directories and slow symlinks without inline
  // data (a fast symlink's i_block holds its target, a device's its number).
  const flags = inode.raw.i_flags;
  const blockMap =
    !(flags & (EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL)) &&
    (type === S_IFREG || type === S_IFDIR || (type === S_IFLNK && !isFastSymlinkRaw(flags, size, sectorsOf(fs, inode), inodeFileAcl(inode.raw, fs.features.is64bit), fs.blockSize)));
  if (flags & EXT4_EXTENTS_FL || blockMap) await truncateData(h, deps, inode, size, 0);
  setSize(inode, 0);
  const acl = inodeFileAcl(inode.raw, fs.features.is64bit);
  if (acl !== 0) {
    await releaseXattrBlock(h, deps, inode, acl);
    inode.raw.i_file_acl_lo = 0;
    inode.raw.l_i_file_acl_high = 0;
  }
  inode.raw.i_dtime = Math.max(0, deps.now().sec) >>> 0;
  await markInodeDirty(h, inode);
  if (type === S_IFDIR) dcacheDropDir(fs, inode.ino);
  await deps.inodes.freeInode(h, inode.ino, type === S_IFDIR, dquots);
}

/**
 * Free the inodes a crash left on the orphan list (or, for ones that still have links,
 * cut them to i_size: an interrupted truncate), as a writable mount does before anything
 * else. The whole chain is validated first. On a volume with errors recorded the list is
 * only cleared, as Linux does, for e2fsck to sort out. @kernel ext4_orphan_cleanup
 */
export async function orphanCleanup(h: Handle, deps: NameiDeps): Promise<{ freed: number; truncated: number }> {
  const fs = h.fs;
  const done = { freed: 0, truncated: 0 };
  if (fs.sb.s_last_orphan === 0) return done;
  if (fs.sb.s_state & EXT4_ERROR_FS) {
    fs.sb.s_last_orphan = 0;
    await fs.commitSuper();
    return done;
  }
  for (const ino of await orphanList(fs)) {
    const inode = await igetWritableRaw(fs, ino);
    if (ino < firstIno(fs.sb) || inode.raw.i_mode === 0) throw fsCorrupted(fs, { ino, what: `Bad orphan inode ${ino} (reserved or not in use)` });
    if (inode.raw.i_links_count === 0) {
      await evictInode(h, deps, inode);
      done.freed++;
    } else {
      await orphanDel(h, inode);
      if ((inode.raw.i_mode & S_IFMT) === S_IFREG) await truncateData(h, deps, inode, Number.MAX_SAFE_INTEGER, getSize(fs, inode));
      await markInodeDirty(h, inode);
      done.truncated++;
    }
  }
  return done;
}

/**
 * Rename `oldName` in `oldDir` to `newName` in `newDir`, replacing a target of a
 * compatible type. Directories moving to another parent get ".." rewritten and both
 * parents' link counts adjusted. The caller has checked that a directory is not moved
 * under itself (EINVAL). @kernel ext4_rename
 */
export async function renameNode(
  h: Handle,
  deps: NameiDeps,
  oldDir: InodeInfo,
  oldName: Uint8Array,
  source: InodeInfo,
  newDir: InodeInfo,
  newName: Uint8Array,
  target: InodeInfo | null,
  opts: { freeTargetIfUnused: boolean } = { freeTargetIfUnused: true },
): Promise<void> {
  const fs = h.fs;
  const blocks = dirBlocksOf(fs, deps);
  const isDir = (source.raw.i_mode & S_IFMT) === S_IFDIR;
  const sameDir = oldDir.ino === newDir.ino;
  const now = deps.now();
  if (target !== null) {
    const targetIsDir = (target.raw.i_mode & S_IFMT) === S_IFDIR;
    if (isDir && !targetIsDir) throw new FsError("ENOTDIR", "Not a directory");
    if (!isDir && targetIsDir) throw new FsError("EISDIR", "Is a directory");
    checkProjectMove(fs, newDir, source);
    if (targetIsDir && !(await isEmptyDir(fs, h, blocks, target))) throw new FsError("ENOTEMPTY", "Directory not empty");
    await setDirEntry(fs, h, blocks, newDir, newName, source.ino, fileTypeOfMode(source.raw.i_mode));
  } else {
    if (isDir && !sameDir && dirLinkMax(fs, newDir)) throw new FsError("EMLINK", "Too many links");
    checkProjectMove(fs, newDir, source);
    await addDirEntry(fs, h, blocks, newDir, newName, source.ino, fileTypeOfMode(source.raw.i_mode));
  }
  // The same directory object may be both parents: edit through one reference.
  const od = sameDir ? newDir : oldDir;
  await removeDirEntry(fs, h, blocks, od, oldName);
  if (isDir) {
    // @kernel ext4_rename: ".." follows the move; the old parent loses a subdirectory,
    // the new one gains it unless it replaced a directory (whose own link goes with it).
    if (!sameDir) await setDirEntry(fs, h, blocks, source, new Uint8Array([0x2e, 0x2e]), newDir.ino, EXT4_FT_DIR);
    decLinks(od);
    if (target === null) incLinks(fs, newDir);
  }
  touch(fs, source, now, ["i_ctime"]);
  await markInodeDirty(h, source);
  touch(fs, newDir, now, ["i_mtime", "i_ctime"]);
  if (!sameDir) {
    touch(fs, od, now, ["i_mtime", "i_ctime"]);
    await markInodeDirty(h, od);
  }
  if (target !== null) {
    touch(fs, target, now, ["i_ctime"]);
    if ((target.raw.i_mode & S_IFMT) === S_IFDIR) target.raw.i_links_count = 0; // clear_nlink
    else target.raw.i_links_count--;
    await dropLastLink(h, deps, target, opts.freeTargetIfUnused);
  }
  await markInodeDirty(h, newDir);
}

export { igetWritable };
