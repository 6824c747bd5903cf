/**
 * The public, fs.promises-like surface over a mounted volume. Paths are absolute within
 * the volume ("/etc/passwd"). Errors are FsError with Node-style codes, the syscall and
 * the path, e.g. `ENOENT: No such file or directory, stat '/nope'`.
 *
 * This layer adds what Linux's VFS adds on top of ext4: which xattr names listxattr
 * shows and in what format (ACLs converted from ext4's on-disk form), and path
 * resolution with symlinks.
 */

import type { BlockDevice } from "../device/block_device.js";
import { FsError } from "../errors.js";
import { ext4AclToVfs } from "../format/acl.js";
import {
  EXT4_XATTR_INDEX_HURD,
  EXT4_XATTR_INDEX_POSIX_ACL_ACCESS,
  EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT,
  EXT4_XATTR_INDEX_SECURITY,
  EXT4_XATTR_INDEX_TRUSTED,
  EXT4_XATTR_INDEX_USER,
  xattrFullName,
  type XattrEntry,
} from "../format/xattr.js";
import { EXT4_FT_DIR, EXT4_FT_UNKNOWN } from "../format/dirent.js";
import { readDirEntries, type DirRecord } from "../fs/dir.js";
import { iget, isDir, isSymlink, type Inode } from "../fs/inode.js";
import { MAXSYMLINKS, checkEntryIno, lookup, resolvePath } from "../fs/namei.js";
import { readChunks, readInto, readRange } from "../fs/read.js";
import { Ext4Fs, noteFsError, type MountOptions } from "../fs/super.js";
import { freeBlocksCount, rBlocksCount } from "../format/superblock.js";
import { readLink } from "../fs/symlink.js";
import { allXattrs } from "../fs/xattr.js";
import { XATTR_CREATE, XATTR_REPLACE, checkXattrArgs, noteXattrBlockRead, resolveXattrName } from "../fs/xattr_write.js";
import { removeXattrAt, setXattrAt } from "./mutate.js";
import { getProjectAt, setProjectAt } from "./project.js";
import { Stats, fileTypeOf, type FileType } from "./stats.js";
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, type Timespec } from "../format/inode.js";
import { engineDeps } from "../fs/engine_deps.js";
import { withHandle } from "../fs/handle.js";
import { orphanCleanup, type NameiDeps } from "../fs/namei_write.js";
import { QuotaSet, type DquotInfo, type DquotLimits, type QuotaType } from "../fs/quota.js";
import { inodeCore, inodeTable } from "../fs/inode_core.js";
import { Task } from "../sync/task.js";
import { Mutex as SyncMutex } from "../sync/rwlock.js";
import type { Clock, Scheduler } from "../sync/scheduler.js";
import { Flusher, Yielder, flushQuotaFiles, punchAt, writebackFile, writebackVolume, splitParent, createAt, evictIfUnlinked, linkAt, renameAt, rmdirAt, setAttr, truncateAt, unlinkAt, writeAt, type Writer } from "./mutate.js";

export { Stats, type FileType, type MountOptions };

/** Name indexes Linux listxattr shows on ext4 (ext4_xattr_handler_map, with user_xattr and acl on). */
const LISTED_INDEXES = new Set([
  EXT4_XATTR_INDEX_USER,
  EXT4_XATTR_INDEX_POSIX_ACL_ACCESS,
  EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT,
  EXT4_XATTR_INDEX_TRUSTED,
  EXT4_XATTR_INDEX_SECURITY,
  EXT4_XATTR_INDEX_HURD,
]);

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

export { XATTR_CREATE, XATTR_REPLACE };

export interface Dirent {
  name: string;
  nameBytes: Uint8Array;
  ino: number;
  /** From the directory entry (filetype feature); "unknown" without it. */
  type: FileType | "unknown";
}

const FT_TYPES: readonly (FileType | "unknown")[] = ["unknown", "file", "dir", "chr", "blk", "fifo", "sock", "symlink"];

export interface XattrOptions {
  /** Follow a final symlink (getxattr) or not (lgetxattr, the default). */
  follow?: boolean;
}

export interface StatFs {
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namelen: number;
}

/** One entry of a sorted tree walk. */
export interface WalkEntry {
  path: string;
  inode: Inode;
  stats: Stats;
}

export interface VolumeOptions extends MountOptions {
  /** Owner of files this volume creates (the caller's fsuid/fsgid); root by default. */
  uid?: number;
  gid?: number;
  /** Permission bits cleared from new files' modes, like a process umask; 0o022 by default. */
  umask?: number;
  /** Clock for timestamps (reproducible images); the system clock by default. */
  now?: () => Timespec;
  /**
   * Dirty file data kept in memory before writers start writing it back, in bytes
   * (default 64 MiB). Data written with write() is allocated and written at writeback
   * (delayed allocation): on sync(), fsync, close after truncate-to-zero, unmount, or when
   * this limit is passed.
   */
  dirtyLimitBytes?: number;
  /**
   * @internal Tests only: wrap the engine's allocators (e.g. the seed test's deliberately
   * wrong allocator that reads shared inode state). Not part of the API.
   */
  engineDeps?: (deps: NameiDeps) => NameiDeps;
  /**
   * Write back dirty data older than `dirtyExpireMs` (default 30 s) every
   * `writebackIntervalMs` (default 5 s; 0 turns the periodic flusher off), like the
   * kernel's flusher threads.
   */
  writebackIntervalMs?: number;
  dirtyExpireMs?: number;
  /**
   * @internal The schedule explorer: a scheduler for every scheduling point and a clock for
   * timers and ages (sync/sim_scheduler.ts), installed before anything reads the clock.
   */
  sim?: { scheduler: Scheduler; clock: Clock };
}

export class Volume {
  readonly fs: Ext4Fs;
  readonly #writer: Writer | null;
  readonly #umask: number;
  /** Open handles per inode: an unlinked inode is freed at its last close. */
  readonly #open = new Map<number, number>();
  /** In-core quota, loaded at mount (null without the quota feature). */
  #quota: QuotaSet | null = null;

  private constructor(fs: Ext4Fs, opts: VolumeOptions) {
    this.fs = fs;
    if (opts.sim !== undefined) {
      fs.syncDomain.scheduler = opts.sim.scheduler;
      fs.syncDomain.clock = opts.sim.clock;
    }
    this.#umask = opts.umask ?? 0o022;
    this.#writer = fs.readOnly
      ? null
      : {
          fs,
          deps: (opts.engineDeps ?? ((d: NameiDeps): NameiDeps => d))(engineDeps(fs, opts.now ?? systemNow)),
          nsLock: new SyncMutex("rename", { name: "namespace", domain: fs.syncDomain }),
          xattrBlockLock: new SyncMutex("xattr_block", { name: "xattr blocks", domain: fs.syncDomain }),
          quotaLock: new SyncMutex("quota", { name: "quota files", domain: fs.syncDomain }),
          yielder: new Yielder(fs.syncDomain),
          flusher: null,
          uid: opts.uid ?? 0,
          gid: opts.gid ?? 0,
          dirtyLimitBytes: opts.dirtyLimitBytes ?? 64 * 1024 * 1024,
        };
    if (this.#writer !== null) this.#writer.flusher = new Flusher(this.#writer, opts.writebackIntervalMs ?? 5000, opts.dirtyExpireMs ?? 30_000);
  }

  /** Mount the ext2/3/4 volume on `dev`: read-only unless `readOnly: false`. */
  static async mount(dev: BlockDevice, opts: VolumeOptions = {}): Promise<Volume> {
    const vol = new Volume(await Ext4Fs.mount(dev, opts), opts);
    try {
      // Before orphan cleanup, as ext4_fill_super enables quota before ext4_orphan_cleanup.
      vol.#quota = await QuotaSet.load(vol.fs, vol.#writer !== null ? { deps: vol.#writer.deps } : {});
    } catch (e) {
      if (vol.#writer !== null) {
        await vol.fs.dev.close(); // a writable mount must keep quota exact: refuse it
        throw e;
      }
      vol.fs.warnings.push(`Quota files not loaded: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (vol.#writer !== null) {
      // Before anything else, as ext4_fill_super does: free what a crash left open-unlinked.
      const w = vol.#writer;
      let done: { freed: number; truncated: number };
      try {
        done = await withHandle(w.fs, (h) => orphanCleanup(h, w.deps));
      } catch (e) {
        // A bad orphan list: refuse the writable mount and leave the image untouched.
        await vol.fs.dev.close();
        throw e;
      }
      if (done.freed + done.truncated > 0) vol.fs.warnings.push(`Orphan cleanup: ${done.freed} inodes freed, ${done.truncated} truncated`);
    }
    return vol;
  }

  #w(syscall: string, path: string): Writer {
    if (this.#writer === null) throw new FsError("EROFS", "Read-only file system", { syscall, path });
    return this.#writer;
  }

  // ----- writing (fs.promises-like) -----

  /** Create a directory; `recursive` creates missing parents and ignores an existing directory. */
  async mkdir(path: string, opts: { mode?: number; recursive?: boolean } = {}): Promise<void> {
    // Linux mkdir keeps permission and sticky bits only (setgid comes from the parent).
    const mode = S_IFDIR | ((opts.mode ?? 0o777) & 0o1777);
    if (opts.recursive !== true) {
      await createAt(this.#w("mkdir", path), "mkdir", path, { mode, umask: this.#umask });
      return;
    }
    const parts = path.split("/").filter((p) => p.length > 0);
    for (let i = 1; i <= parts.length; i++) {
      const sub = `/${parts.slice(0, i).join("/")}`;
      try {
        await createAt(this.#w("mkdir", sub), "mkdir", sub, { mode, umask: this.#umask });
      } catch (e) {
        if (!(e instanceof FsError && e.code === "EEXIST")) throw e;
        // Node: an existing non-directory at the last component is EEXIST, earlier ones ENOTDIR.
        if (!(await this.stat(sub)).isDirectory()) throw i === parts.length ? e : new FsError("ENOTDIR", "Not a directory", { syscall: "mkdir", path: sub });
      }
    }
  }

  /** Open a file; flags as Node's ("r", "r+", "w", "wx", "w+", "a", "a+", ...). */
  async open(path: string, flags: OpenFlags = "r", mode = 0o666): Promise<FileHandle> {
    const f = parseFlags(flags);
    let ino: number;
    try {
      const inode = await resolvePath(this.fs, path, { followLast: true });
      if (f.create && f.excl) throw new FsError("EEXIST", "File exists", { syscall: "open", path });
      if (isDir(inode) && f.write) throw new FsError("EISDIR", "Is a directory", { syscall: "open", path });
      ino = inode.ino;
    } catch (e) {
      if (!(e instanceof FsError && e.code === "ENOENT" && f.create)) {
        noteFsError(this.fs, e);
        throw e instanceof FsError ? e.with({ syscall: "open", path }) : e;
      }
      const at = await this.#creationPath(path, f.excl);
      ino = await createAt(this.#w("open", path), "open", at, { mode: S_IFREG | (mode & 0o7777), umask: this.#umask });
    }
    if (f.trunc) await truncateAt(this.#w("open", path), path, ino, 0);
    this.#open.set(ino, (this.#open.get(ino) ?? 0) + 1);
    return new FileHandle(this.fs, await iget(this.fs, ino), path, { volume: this, writer: f.write ? this.#w("open", path) : null, append: f.append });
  }

  /**
   * Where open(O_CREAT) creates: `path` itself, or, when its last component is a dangling
   * symlink, the link's target (followed through further links), as Linux does; with O_EXCL
   * a symlink is EEXIST. @kernel open_last_lookups / trailing symlink handling in path_openat
   */
  async #creationPath(path: string, excl: boolean): Promise<string> {
    let at = path;
    for (let links = 0; ; links++) {
      const { parent, name } = splitParent(at);
      const dir = await resolvePath(this.fs, parent, { followLast: true }).catch((e: unknown) => {
        throw e instanceof FsError ? e.with({ syscall: "open", path }) : e;
      });
      const ino = isDir(dir) && name !== "." && name !== ".." ? await lookup(this.fs, dir, new TextEncoder().encode(name)) : null;
      if (ino === null) return at;
      const inode = await iget(this.fs, ino);
      if (!isSymlink(inode)) return at;
      if (excl) throw new FsError("EEXIST", "File exists", { syscall: "open", path });
      if (links >= MAXSYMLINKS) throw new FsError("ELOOP", "Too many levels of symbolic links", { syscall: "open", path });
      const target = new TextDecoder().decode(await readLink(this.fs, inode));
      at = target.startsWith("/") ? target : `${parent === "/" ? "" : parent}/${target}`;
    }
  }

  /** Replace a file's contents (created with `mode` if missing). */
  async writeFile(path: string, data: Uint8Array | string, opts: { mode?: number } = {}): Promise<void> {
    const fh = await this.open(path, "w", opts.mode ?? 0o666);
    try {
      await fh.writeAll(typeof data === "string" ? new TextEncoder().encode(data) : data);
    } finally {
      await fh.close();
    }
  }

  /** Append to a file (created with `mode` if missing). */
  async appendFile(path: string, data: Uint8Array | string, opts: { mode?: number } = {}): Promise<void> {
    const fh = await this.open(path, "a", opts.mode ?? 0o666);
    try {
      await fh.writeAll(typeof data === "string" ? new TextEncoder().encode(data) : data);
    } finally {
      await fh.close();
    }
  }

  async truncate(path: string, len = 0): Promise<void> {
    const inode = await this.inode(path, { follow: true });
    await truncateAt(this.#w("truncate", path), path, inode.ino, len);
  }

  unlink(path: string): Promise<void> {
    return unlinkAt(this.#w("unlink", path), path, (ino) => (this.#open.get(ino) ?? 0) === 0);
  }

  rmdir(path: string): Promise<void> {
    return rmdirAt(this.#w("rmdir", path), path);
  }

  rename(from: string, to: string): Promise<void> {
    return renameAt(this.#w("rename", from), from, to, (ino) => (this.#open.get(ino) ?? 0) === 0);
  }

  link(existing: string, path: string): Promise<void> {
    return linkAt(this.#w("link", path), existing, path);
  }

  async symlink(target: string, path: string): Promise<void> {
    // The target is copied in before any lookup: PATH_MAX (4096 with its NUL) or more is ENAMETOOLONG. @kernel getname
    if (utf8Encoder.encode(target).length >= 4096) throw new FsError("ENAMETOOLONG", "File name too long", { syscall: "symlink", path });
    await createAt(this.#w("symlink", path), "symlink", path, { mode: S_IFLNK | 0o777, target: new TextEncoder().encode(target) });
  }

  /** Create a device, fifo or socket node (`mode` includes the S_IF* type). */
  async mknod(path: string, mode: number, rdev: { major: number; minor: number } = { major: 0, minor: 0 }): Promise<void> {
    const type = mode & S_IFMT;
    if (![S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK, S_IFREG].includes(type)) throw new FsError("EINVAL", "Invalid argument", { syscall: "mknod", path });
    await createAt(this.#w("mknod", path), "mknod", path, { mode: type | (mode & 0o7777), rdev, umask: this.#umask });
  }

  chmod(path: string, mode: number): Promise<void> {
    return setAttr(this.#w("chmod", path), "chmod", path, true, { kind: "mode", mode });
  }

  chown(path: string, uid: number, gid: number): Promise<void> {
    return setAttr(this.#w("chown", path), "chown", path, true, { kind: "owner", uid, gid });
  }

  lchown(path: string, uid: number, gid: number): Promise<void> {
    return setAttr(this.#w("lchown", path), "lchown", path, false, { kind: "owner", uid, gid });
  }

  /** Set access and modification times (nanoseconds kept). */
  utimes(path: string, atime: Timespec, mtime: Timespec): Promise<void> {
    return setAttr(this.#w("utimes", path), "utimes", path, true, { kind: "times", atime, mtime });
  }

  lutimes(path: string, atime: Timespec, mtime: Timespec): Promise<void> {
    return setAttr(this.#w("lutimes", path), "lutimes", path, false, { kind: "times", atime, mtime });
  }

  /**
   * Set the project id of `path` (`chattr -p ID`; with `inherit`, also `chattr +P`/`-P` on a
   * directory: new inodes under it take its project, and links/renames into it from another
   * project fail with EXDEV). Usage moves to the new project's quota (EDQUOT at its limits).
   * EOPNOTSUPP without the project feature (for ids other than 0) or with 128-byte inodes.
   * @kernel FS_IOC_FSSETXATTR (ext4_fileattr_set, ext4_ioctl_setproject)
   */
  setProjectId(path: string, projid: number, opts: { inherit?: boolean } = {}): Promise<void> {
    return setProjectAt(this.#w("ioctl", path), path, projid, opts);
  }

  /** The project id of `path` (0 without the project feature). @kernel FS_IOC_FSGETXATTR */
  async getProjectId(path: string): Promise<number> {
    return (await getProjectAt(this.fs, path)).projid;
  }

  /** Write back every dirty page, then every dirty metadata block and the superblock. @kernel sync_filesystem */
  async sync(): Promise<void> {
    if (this.#writer !== null) await writebackVolume(this.#writer);
    await this.#flushQuota();
    await this.fs.sync();
  }

  // ----- quota (setquota, repquota) -----

  /** The in-core quota state (null without the quota feature). */
  get quota(): QuotaSet | null {
    return this.#quota;
  }

  #q(): QuotaSet {
    if (this.#quota === null) throw new FsError("EOPNOTSUPP", "The volume has no quota feature");
    return this.#quota;
  }

  /** Usage and limits of one id (bytes, inodes): an id without a record reads as zeros. @kernel Q_GETQUOTA */
  getQuota(type: QuotaType, id: number): Promise<DquotInfo> {
    return this.#call("quotactl", undefined, async () => (await this.#q().dquot(type, id)).snapshot());
  }

  /**
   * Set an id's limits (bytes, rounded up to 1 KiB; inodes; 0 = none) and/or the type's grace
   * periods (`bgrace`/`igrace`, seconds), written to the quota file at once.
   * @kernel Q_SETQUOTA / Q_SETINFO
   */
  setQuota(type: QuotaType, id: number, limits: Partial<DquotLimits> & { bgrace?: number; igrace?: number }): Promise<void> {
    return this.#call("quotactl", undefined, async () => {
      this.#w("quotactl", "");
      await this.#q().setLimits(type, id, limits);
      await this.#flushQuota();
    });
  }

  /** Every id of a quota type with a record or in use, by id. @kernel Q_GETNEXTQUOTA loop */
  quotaReport(type: QuotaType): Promise<DquotInfo[]> {
    return this.#call("quotactl", undefined, async () => (await this.#q().report(type)).map((d) => d.snapshot()));
  }

  /** Write dirty quota records in a handle of their own, under the quota I/O lock (dqio_sem). */
  async #flushQuota(): Promise<void> {
    const q = this.#quota;
    const w = this.#writer;
    if (q === null || w === null || !q.isDirty()) return;
    await flushQuotaFiles(w, (h) => q.flush(h));
  }

  /** @internal FileHandle's close: the last close of an unlinked inode frees it. */
  async _release(ino: number, writer: Writer | null): Promise<void> {
    const n = (this.#open.get(ino) ?? 1) - 1;
    if (n > 0) {
      this.#open.set(ino, n);
      return;
    }
    this.#open.delete(ino);
    const w = writer ?? this.#writer;
    if (w === null) return;
    const core = inodeCore(this.fs, ino);
    if (core?.daAllocClose === true) {
      core.daAllocClose = false;
      await writebackFile(w, ino);
    }
    await evictIfUnlinked(w, ino);
  }

  async #call<T>(syscall: string, path: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      noteFsError(this.fs, e);
      if (e instanceof FsError) throw e.with(path === undefined ? { syscall } : { syscall, path });
      throw e;
    }
  }

  /** The inode at `path`. */
  inode(path: string, opts: { follow: boolean }): Promise<Inode> {
    return this.#call(opts.follow ? "stat" : "lstat", path, () => resolvePath(this.fs, path, { followLast: opts.follow }));
  }

  stat(path: string): Promise<Stats> {
    return this.#call("stat", path, async () => new Stats(this.fs, await resolvePath(this.fs, path, { followLast: true })));
  }

  lstat(path: string): Promise<Stats> {
    return this.#call("lstat", path, async () => new Stats(this.fs, await resolvePath(this.fs, path, { followLast: false })));
  }

  /** Names in a directory, without "." and "..", in on-disk order. */
  async readdir(path: string): Promise<string[]> {
    return (await this.readdirEntries(path)).map((d) => d.name);
  }

  readdirEntries(path: string): Promise<Dirent[]> {
    return this.#call("scandir", path, async () => {
      const dir = await resolvePath(this.fs, path, { followLast: true });
      // One consistent listing, as one getdents: the directory is re-read under its lock.
      return readLocked(this.fs, dir.ino, async () => {
        const out: Dirent[] = [];
        for await (const e of readDirEntries(this.fs, await iget(this.fs, dir.ino))) if (!isDot(e)) out.push(toDirent(e));
        return out;
      }, "iRwsem");
    });
  }

  readFile(path: string): Promise<Uint8Array> {
    return this.#call("open", path, async () => {
      const inode = await resolvePath(this.fs, path, { followLast: true });
      if (isDir(inode)) throw new FsError("EISDIR", "Illegal operation on a directory");
      return readLocked(this.fs, inode.ino, () => readRange(this.fs, inode, 0, inode.size));
    });
  }

  readlink(path: string): Promise<string> {
    return this.#call("readlink", path, async () => utf8.decode(await readLink(this.fs, await resolvePath(this.fs, path, { followLast: false }))));
  }


  /** Open an inode already in hand (from `walk`), without resolving its path again. */
  openEntry(e: WalkEntry): FileHandle {
    return new FileHandle(this.fs, e.inode, e.path);
  }

  /** The target of a symlink already in hand (from `walk`). */
  readlinkEntry(e: WalkEntry): Promise<string> {
    return this.#call("readlink", e.path, async () => utf8.decode(await readLink(this.fs, e.inode)));
  }

  /** Names as Linux listxattr shows them (system.data and unlisted namespaces omitted). */
  listxattr(path: string, opts: XattrOptions = {}): Promise<string[]> {
    return this.#call(opts.follow === true ? "listxattr" : "llistxattr", path, async () => {
      const inode = await resolvePath(this.fs, path, { followLast: opts.follow === true });
      return (await this.xattrsOf(inode)).map(([name]) => name);
    });
  }

  /** A value as Linux getxattr returns it (ACLs in the VFS format). ENODATA when absent. */
  getxattr(path: string, name: string, opts: XattrOptions = {}): Promise<Uint8Array> {
    return this.#call(opts.follow === true ? "getxattr" : "lgetxattr", path, async () => {
      checkXattrArgs(name, null, 0); // ERANGE before the path walk, as import_xattr_name
      const inode = await resolvePath(this.fs, path, { followLast: opts.follow === true });
      // user.* exists only on regular files and directories: reading it elsewhere is ENODATA,
      // checked before the handler (xattr_permission, then xattr_resolve_name's EOPNOTSUPP/EINVAL).
      if (name.startsWith("user.") && !isDir(inode) && (inode.mode & S_IFMT) !== S_IFREG) throw new FsError("ENODATA", "No data available");
      resolveXattrName(name);
      // Symlinks have no ACL handler in Linux (ext4_symlink_inode_operations has no get_acl).
      if ((name === "system.posix_acl_access" || name === "system.posix_acl_default") && isSymlink(inode)) {
        throw new FsError("EOPNOTSUPP", "Operation not supported");
      }
      const hit = (await this.xattrsOf(inode)).find(([n]) => n === name);
      if (hit === undefined) throw new FsError("ENODATA", "No data available");
      return hit[1];
    });
  }

  /**
   * Set an extended attribute, following a final symlink. `flags`: XATTR_CREATE (EEXIST if
   * it exists) and/or XATTR_REPLACE (ENODATA if it does not). Names: user., trusted.,
   * security., gnu., and system.posix_acl_access / system.posix_acl_default with a value in
   * the VFS ACL format (stored in ext4's; an access ACL the mode bits express changes the
   * mode instead; flags do not apply to ACLs, as on Linux). Errors as Linux's: ERANGE
   * (name not 1..255 bytes), E2BIG (value over 64 KiB), ENOSPC (does not fit in the inode
   * and one block), EOPNOTSUPP (unknown namespace), EPERM (user.* on a special file).
   */
  setxattr(path: string, name: string, value: Uint8Array | string, flags = 0): Promise<void> {
    return setXattrAt(this.#w("setxattr", path), "setxattr", path, true, name, typeof value === "string" ? utf8Encoder.encode(value) : value, flags);
  }

  /** setxattr on a symlink itself rather than its target. */
  lsetxattr(path: string, name: string, value: Uint8Array | string, flags = 0): Promise<void> {
    return setXattrAt(this.#w("lsetxattr", path), "lsetxattr", path, false, name, typeof value === "string" ? utf8Encoder.encode(value) : value, flags);
  }

  /** Remove an extended attribute, following a final symlink: ENODATA when absent (removing an absent ACL succeeds, as on Linux). */
  removexattr(path: string, name: string): Promise<void> {
    return removeXattrAt(this.#w("removexattr", path), "removexattr", path, true, name);
  }

  /** removexattr on a symlink itself. */
  lremovexattr(path: string, name: string): Promise<void> {
    return removeXattrAt(this.#w("lremovexattr", path), "lremovexattr", path, false, name);
  }

  /** Every listed xattr of an inode as [full name, VFS value]. */
  async xattrsOf(inode: Inode): Promise<[string, Uint8Array][]> {
    const out: [string, Uint8Array][] = [];
    const all = await allXattrs(this.fs, inode);
    await noteXattrBlockRead(this.fs, inode.fileAcl); // index the block for sharing, as the kernel's readers do
    for (const e of all) {
      if (!LISTED_INDEXES.has(e.e_name_index)) continue;
      const name = xattrFullName(e.e_name_index, e.name);
      if (name !== null) out.push([name, vfsValue(e, inode)]);
    }
    return out;
  }

  statfs(): Promise<StatFs> {
    const sb = this.fs.sb;
    // Space reserved for delayed data is not free; bavail also leaves the root reserve and
    // the emergency pool, as ext4_statfs reports them.
    const free = Math.max(0, freeBlocksCount(sb) - this.fs.dirtyClusters);
    const reserved = rBlocksCount(sb) + this.fs.resvClusters;
    return Promise.resolve({
      type: 0xef53,
      bsize: this.fs.blockSize,
      blocks: this.fs.blocksCount,
      bfree: free,
      bavail: Math.max(0, free - reserved),
      files: this.fs.inodesCount,
      ffree: sb.s_free_inodes_count,
      namelen: 255,
    });
  }

  /**
   * Every inode reachable from `root`. `order: "path"` (the default) yields plain JS
   * string order of the paths, with memory proportional to depth x directory width;
   * `order: "disk"` yields each directory's entries in on-disk order, pre-order, with
   * memory proportional to depth only, and reads the volume roughly sequentially (what
   * extraction wants on a cold cache).
   */
  async *walk(root = "/", opts: { order?: "path" | "disk" } = {}): AsyncGenerator<WalkEntry> {
    const start = await this.inode(root, { follow: true });
    const base = root === "/" ? "" : root.replace(/\/+$/, "");
    yield { path: base === "" ? "/" : base, inode: start, stats: new Stats(this.fs, start) };
    if (!isDir(start)) return;
    if (opts.order === "disk") yield* this.#walkDisk(base, start, new Set([start.ino]));
    else yield* this.#walkDir(base, start, new Set([start.ino]));
  }

  async *#walkDisk(path: string, dir: Inode, visited: Set<number>): AsyncGenerator<WalkEntry> {
    const entries = readDirEntries(this.fs, dir);
    for (;;) {
      const next = await this.#call("scandir", path === "" ? "/" : path, () => entries.next());
      if (next.done === true) return;
      const e = next.value;
      if (isDot(e)) continue;
      const name = utf8.decode(e.name);
      const p = `${path}/${name}`;
      const inode = await this.#call("lstat", p, () => {
        checkEntryIno(this.fs, dir, e.ino, e.name);
        return iget(this.fs, e.ino);
      });
      yield { path: p, inode, stats: new Stats(this.fs, inode) };
      if (isDir(inode)) {
        if (visited.has(inode.ino)) throw new FsError("EFSCORRUPTED", `Directory inode ${inode.ino} is reachable by more than one path`, { ino: inode.ino, path: p });
        visited.add(inode.ino);
        yield* this.#walkDisk(p, inode, visited);
      }
    }
  }

  async *#walkDir(path: string, dir: Inode, visited: Set<number>): AsyncGenerator<WalkEntry> {
    // A directory's own line sorts at "name", its subtree at "name/": sorting siblings by
    // those keys emits paths in global string order ("/a" < "/a-b" < "/a/c").
    type Item = { key: string; ino: number; name: string; fileType: number; subtree: boolean };
    const items: Item[] = [];
    await this.#call("scandir", path === "" ? "/" : path, async () => {
      for await (const e of readDirEntries(this.fs, dir)) {
        if (isDot(e)) continue;
        const name = utf8.decode(e.name);
        items.push({ key: name, ino: e.ino, name, fileType: e.fileType, subtree: false });
        // Only directory entries typed as directories (or untyped) can have a subtree.
        if (e.fileType === EXT4_FT_DIR || e.fileType === EXT4_FT_UNKNOWN) items.push({ key: `${name}/`, ino: e.ino, name, fileType: e.fileType, subtree: true });
      }
    });
    items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const it of items) {
      const p = `${path}/${it.name}`;
      const inode = await this.#call("lstat", p, () => {
        checkEntryIno(this.fs, dir, it.ino, new TextEncoder().encode(it.name)); // what a lookup of this name checks
        return iget(this.fs, it.ino);
      });
      if (!it.subtree) {
        if (isDir(inode) && it.fileType !== EXT4_FT_DIR && it.fileType !== EXT4_FT_UNKNOWN) {
          throw new FsError("EFSCORRUPTED", `Directory entry has file type ${it.fileType} but inode ${inode.ino} is a directory`, { ino: dir.ino, path: p });
        }
        yield { path: p, inode, stats: new Stats(this.fs, inode) };
      } else if (isDir(inode)) {
        // A directory has one parent; a second one (a loop, or a hard-linked directory that
        // could make the walk exponential) is corruption, as Linux's dcache also refuses it.
        if (visited.has(inode.ino)) throw new FsError("EFSCORRUPTED", `Directory inode ${inode.ino} is reachable by more than one path`, { ino: inode.ino, path: p });
        visited.add(inode.ino);
        yield* this.#walkDir(p, inode, visited);
      }
    }
  }

  /**
   * Unmount: handles still open are closed first, so an unlinked file that was still
   * open is freed now (there is no on-disk orphan list yet to finish that after a crash).
   */
  async unmount(): Promise<void> {
    if (this.#writer !== null) {
      this.#writer.flusher?.stop();
      for (const ino of [...this.#open.keys()]) {
        this.#open.set(ino, 1);
        await this._release(ino, this.#writer);
      }
      await writebackVolume(this.#writer);
      await this.#flushQuota();
    }
    await this.fs.unmount();
  }
}

export class FileHandle {
  readonly #fs: Ext4Fs;
  #inode: Inode;
  readonly path: string;
  readonly #volume: Volume | null;
  readonly #writer: Writer | null;
  readonly #append: boolean;
  #pos = 0;
  #closed = false;

  constructor(fs: Ext4Fs, inode: Inode, path: string, opts: { volume?: Volume; writer?: Writer | null; append?: boolean } = {}) {
    this.#fs = fs;
    this.#inode = inode;
    this.path = path;
    this.#volume = opts.volume ?? null;
    this.#writer = opts.writer ?? null;
    this.#append = opts.append ?? false;
  }

  #check(): void {
    if (this.#closed) throw new FsError("EBADF", "Bad file descriptor", { path: this.path });
  }

  /** The current snapshot (refreshed after this volume's writes). */
  async #current(): Promise<Inode> {
    // Open handles keep working after unlink (the inode lives until the last close).
    if (this.#writer !== null || this.#volume !== null) this.#inode = await iget(this.#fs, this.#inode.ino, { allowUnlinked: true });
    return this.#inode;
  }

  /** Read into `buffer` at `offset`, `length` bytes from file `position`. */
  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number; buffer: Uint8Array }> {
    this.#check();
    const inode = await this.#current();
    if (isDir(inode)) throw new FsError("EISDIR", "Illegal operation on a directory", { syscall: "read", path: this.path });
    const n = await readLocked(this.#fs, inode.ino, () => readInto(this.#fs, inode, position, buffer.subarray(offset, offset + Math.min(length, buffer.length - offset))));
    return { bytesRead: n, buffer };
  }

  /**
   * Write `length` bytes of `buffer` from `offset` at file `position` (or at the
   * handle's position; at the end for "a" flags). EBADF on a read-only handle.
   */
  async write(buffer: Uint8Array, offset = 0, length?: number, position?: number | null): Promise<{ bytesWritten: number; buffer: Uint8Array }> {
    this.#check();
    if (this.#writer === null) throw new FsError("EBADF", "Bad file descriptor", { syscall: "write", path: this.path });
    const data = buffer.subarray(offset, offset + (length ?? buffer.length - offset));
    const pos = this.#append ? (await this.#current()).size : position ?? this.#pos;
    const written = await writeAt(this.#writer, this.path, this.#inode.ino, pos, data);
    if (position === undefined || position === null || this.#append) this.#pos = pos + written;
    return { bytesWritten: written, buffer };
  }

  /**
   * Write all of `data` at the current position, as fs.promises.writeFile does: after a
   * short write (the volume filled up part-way) the next write reports ENOSPC.
   */
  async writeAll(data: Uint8Array): Promise<void> {
    for (let off = 0; off < data.length; ) {
      const { bytesWritten } = await this.write(data, off, data.length - off);
      if (bytesWritten === 0) throw new FsError("EIO", "Write made no progress", { syscall: "write", path: this.path });
      off += bytesWritten;
    }
  }

  /**
   * Make this file's data and metadata durable: its dirty pages are allocated and written,
   * then the metadata. Without a journal one file's metadata cannot be flushed alone
   * consistently, so every dirty metadata block is written (as sync does for metadata).
   * @kernel ext4_sync_file
   */
  async sync(): Promise<void> {
    this.#check();
    if (this.#writer !== null) await writebackFile(this.#writer, this.#inode.ino);
    await this.#fs.sync();
  }

  /** As sync: every metadata change is flushed anyway (fdatasync). */
  datasync(): Promise<void> {
    return this.sync();
  }

  /**
   * Start and wait for writeback of the dirty pages overlapping [offset, offset+length)
   * (length 0: to the end of the file). Data reaches the device; metadata (the new
   * extents, i_blocks) stays in the buffer cache until a sync, as sync_file_range leaves
   * it unflushed. The flags of sync_file_range(2) are accepted for compatibility: every
   * combination writes and waits. @kernel sync_file_range
   */
  async syncRange(offset: number, length: number, flags = SYNC_FILE_RANGE_WRITE): Promise<void> {
    this.#check();
    const valid = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || (flags & ~valid) !== 0) {
      throw new FsError("EINVAL", "Invalid argument", { syscall: "sync_file_range", path: this.path });
    }
    if (this.#writer === null) return;
    const bs = this.#fs.blockSize;
    const last = length === 0 ? Infinity : Math.floor((offset + length - 1) / bs);
    await writebackFile(this.#writer, this.#inode.ino, { first: Math.floor(offset / bs), last });
  }

  async truncate(len = 0): Promise<void> {
    this.#check();
    if (this.#writer === null) throw new FsError("EBADF", "Bad file descriptor", { syscall: "ftruncate", path: this.path });
    await truncateAt(this.#writer, this.path, this.#inode.ino, len);
  }

  /**
   * Deallocate [offset, offset+length): the range reads as zeros afterwards and its whole
   * blocks are freed; the file size does not change (fallocate with FALLOC_FL_PUNCH_HOLE |
   * FALLOC_FL_KEEP_SIZE). Extent-mapped files only (EOPNOTSUPP for block-mapped ones).
   */
  async punchHole(offset: number, length: number): Promise<void> {
    this.#check();
    if (this.#writer === null) throw new FsError("EBADF", "Bad file descriptor", { syscall: "fallocate", path: this.path });
    await punchAt(this.#writer, this.path, this.#inode.ino, offset, length);
  }

  /** The whole file as a stream of chunks. */
  chunks(chunkBytes?: number): AsyncGenerator<Uint8Array> {
    this.#check();
    return readChunks(this.#fs, this.#inode, chunkBytes);
  }

  async stat(): Promise<Stats> {
    this.#check();
    return new Stats(this.#fs, await this.#current());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#volume !== null) await this.#volume._release(this.#inode.ino, this.#writer);
  }
}

/** sync_file_range(2) flags. */
export const SYNC_FILE_RANGE_WAIT_BEFORE = 1;
export const SYNC_FILE_RANGE_WRITE = 2;
export const SYNC_FILE_RANGE_WAIT_AFTER = 4;

export type OpenFlags = "r" | "r+" | "rs+" | "w" | "wx" | "w+" | "wx+" | "a" | "ax" | "a+" | "ax+";

function parseFlags(f: OpenFlags): { write: boolean; create: boolean; excl: boolean; trunc: boolean; append: boolean } {
  const base = f.replace("s", "");
  return {
    write: base !== "r",
    create: base.startsWith("w") || base.startsWith("a"),
    excl: base.includes("x"),
    trunc: base.startsWith("w"),
    append: base.startsWith("a"),
  };
}

/**
 * Run a reader under one of the inode's locks, shared, on a writable volume (read-only
 * volumes have no writers and skip it): file data under i_data_sem, so a read never walks an
 * extent tree that writeback or truncate is half-way through changing (@kernel
 * ext4_map_blocks's down_read(i_data_sem)); a directory listing under i_rwsem, which every
 * change to the directory holds exclusively (@kernel iterate_dir's inode_lock_shared).
 */
async function readLocked<T>(fs: Ext4Fs, ino: number, fn: () => Promise<T>, lock: "dataSem" | "iRwsem" = "dataSem"): Promise<T> {
  if (fs.readOnly) return fn();
  const task = new Task(`${lock === "dataSem" ? "read" : "readdir"} ino ${ino}`, fs.syncDomain.tasks);
  try {
    return await inodeTable(fs).getOrCreate(ino)[lock].read(task, fn);
  } finally {
    task.finish();
  }
}

const systemNow = (): Timespec => {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
};

function isDot(e: DirRecord): boolean {
  return (e.name.length === 1 && e.name[0] === 0x2e) || (e.name.length === 2 && e.name[0] === 0x2e && e.name[1] === 0x2e);
}

function toDirent(e: DirRecord): Dirent {
  return { name: utf8.decode(e.name), nameBytes: e.name, ino: e.ino, type: FT_TYPES[e.fileType] ?? "unknown" };
}

function vfsValue(e: XattrEntry, inode: Inode): Uint8Array {
  if (e.e_name_index === EXT4_XATTR_INDEX_POSIX_ACL_ACCESS || e.e_name_index === EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT) {
    return ext4AclToVfs(e.value, { ino: inode.ino });
  }
  return e.value;
}

export { fileTypeOf };
