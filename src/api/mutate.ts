/**
 * Path-level write operations behind Volume's fs.promises-like methods: resolve parents,
 * check names and types as Linux does, and run the engine operation in one handle.
 *
 * Concurrency: every mutating operation runs under one volume-wide lock, so writers are
 * serialized and never see each other's half-done changes. Readers do not take the lock:
 * a read running during a write may see an intermediate state (a new directory entry
 * before its parent's link count or times are updated). Fine-grained locks (i_rwsem,
 * i_data_sem, xattr_sem) that close that window come with delayed allocation.
 */

import { FsError } from "../errors.js";
import { EXT4_NAME_LEN } from "../format/dirent.js";
import { S_IFDIR, S_IFMT, S_IFREG, setInodeTime, type Timespec } from "../format/inode.js";
import { withHandle } from "../fs/handle.js";
import { iget, isDir } from "../fs/inode.js";
import { getSize, igetWritable, igetWritableRaw, markInodeDirty, setSize } from "../fs/inode_write.js";
import { lookup, resolvePath } from "../fs/namei.js";
import { createNode, evictInode, linkNode, renameNode, rmdirNode, unlinkNode, type NameiDeps, type NewInodeAttrs } from "../fs/namei_write.js";
import { maxFileBytes, truncateData, writeData } from "../fs/file_write.js";
import { convertInlineFile } from "../fs/inline_write.js";
import { inodeTable } from "../fs/inode_core.js";
import { daWrite, usesPageCache } from "../fs/page_cache.js";
import { writebackAll, writebackInode } from "../fs/writeback.js";
import { aclChmod } from "../fs/xattr_write.js";
import { checkXattrArgs, vfsRemovexattr, vfsSetxattr } from "../fs/xattr_write.js";
import { orphanList, usesOrphanList } from "../fs/orphan.js";
import { noteFsError, type Ext4Fs } from "../fs/super.js";

const utf8 = new TextEncoder();

/** Longest stretch of engine work between yields to the event loop (ms). */
const YIELD_EVERY_MS = 50;

/**
 * A FIFO mutex: one writer at a time. It also yields to the event loop (a macrotask) when
 * operations have kept it busy for YIELD_EVERY_MS: operations served from the buffer cache
 * resolve as microtasks only, and a long run of them would starve timers and I/O callbacks
 * of the embedding program (the kernel's cond_resched, for an async engine).
 */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();
  #lastYield = Date.now();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.#tail;
    let release!: () => void; // assigned synchronously by the Promise constructor
    this.#tail = new Promise<void>((r) => {
      release = r;
    });
    await prev;
    if (Date.now() - this.#lastYield > YIELD_EVERY_MS) {
      await new Promise<void>((r) => setTimeout(r, 0));
      this.#lastYield = Date.now();
    }
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** Split "/a/b/c" into ("/a/b", "c"); trailing slashes allowed only for directories (checked by callers). */
export function splitParent(path: string): { parent: string; name: string; trailingSlash: boolean } {
  const trailingSlash = /[^/]\/+$/.test(path);
  const clean = path.replace(/\/+$/, "");
  const at = clean.lastIndexOf("/");
  const name = clean.slice(at + 1);
  const parent = at <= 0 ? "/" : clean.slice(0, at);
  if (name === "") throw new FsError("EEXIST", "File exists", { path }); // "/" itself
  return { parent, name, trailingSlash };
}

function checkName(name: string, path: string): Uint8Array {
  const b = utf8.encode(name);
  if (b.length > EXT4_NAME_LEN) throw new FsError("ENAMETOOLONG", "File name too long", { path });
  return b;
}

export interface Writer {
  fs: Ext4Fs;
  deps: NameiDeps;
  lock: Mutex;
  /** Owner of new inodes (the caller's fsuid/fsgid; root by default). */
  uid: number;
  gid: number;
  /** Dirty page-cache bytes above which writers start writeback (balance_dirty_pages). */
  dirtyLimitBytes: number;
}

function requireWritable(fs: Ext4Fs, syscall: string, path: string): void {
  if (fs.readOnly) throw new FsError("EROFS", "Read-only file system", { syscall, path });
  if (fs.writeError !== null) {
    throw new FsError("EROFS", `Read-only file system: writes stopped after corruption was found (${fs.writeError.message}); run e2fsck`, { syscall, path });
  }
}

interface Parent {
  dir: Awaited<ReturnType<typeof resolvePath>>;
  name: string;
  path: string;
  trailingSlash: boolean;
}

/** Resolve the directory holding the last component of `path` (@kernel filename_parentat); no lookup of the name yet. */
async function resolveParent(w: Writer, path: string): Promise<Parent> {
  const { parent, name, trailingSlash } = splitParent(path);
  if (name === "." || name === "..") throw new FsError(name === "." ? "EINVAL" : "ENOTEMPTY", "Invalid argument", { path });
  const dir = await resolvePath(w.fs, parent, { followLast: true });
  if (!isDir(dir)) throw new FsError("ENOTDIR", "Not a directory", { path });
  return { dir, name, path, trailingSlash };
}

/** Look the last component up in its resolved parent; ENAMETOOLONG comes here, as from ext4_lookup. */
async function lookupIn(w: Writer, p: Parent): Promise<{ dirIno: number; name: Uint8Array; existing: number | null; trailingSlash: boolean }> {
  const nb = checkName(p.name, p.path);
  return { dirIno: p.dir.ino, name: nb, existing: await lookup(w.fs, p.dir, nb), trailingSlash: p.trailingSlash };
}

async function parentDir(w: Writer, path: string): Promise<{ dirIno: number; name: Uint8Array; existing: number | null; trailingSlash: boolean }> {
  return lookupIn(w, await resolveParent(w, path));
}

/** Run `fn` as one locked, handled operation with errors carrying syscall and path. */
async function op<T>(w: Writer, syscall: string, path: string, fn: () => Promise<T>): Promise<T> {
  requireWritable(w.fs, syscall, path);
  try {
    return await w.lock.run(fn);
  } catch (e) {
    noteFsError(w.fs, e);
    if (e instanceof FsError) throw e.with({ syscall, path });
    throw e;
  }
}

/** mknod/mkdir/symlink/create: a new inode at `path`. EEXIST if the name is taken. */
export function createAt(w: Writer, syscall: string, path: string, attrs: Omit<NewInodeAttrs, "uid" | "gid">): Promise<number> {
  return op(w, syscall, path, async () => {
    const p = await parentDir(w, path);
    if (p.existing !== null) throw new FsError("EEXIST", "File exists");
    if (p.trailingSlash && (attrs.mode & S_IFMT) !== S_IFDIR) throw new FsError("ENOENT", "No such file or directory");
    return withHandle(w.fs, async (h) => {
      const dir = await igetWritable(w.fs, p.dirIno);
      const inode = await createNode(h, w.deps, dir, p.name, { ...attrs, uid: w.uid, gid: w.gid });
      return inode.ino;
    });
  });
}

/** Write `data` at `pos` of the regular file at `path` (it must exist). */
/** Returns the bytes written: fewer than asked when the write crosses the file size limit. */
export function writeAt(w: Writer, path: string, ino: number, pos: number, data: Uint8Array): Promise<number> {
  return op(w, "write", path, () =>
    withHandle(w.fs, async (h) => {
      const inode = await igetWritable(w.fs, ino, { allowUnlinked: true });
      if ((inode.raw.i_mode & S_IFMT) !== S_IFREG) throw new FsError("EISDIR", "Is a directory");
      if (data.length === 0) return 0; // Linux changes nothing, not even mtime
      // Past the size limit nothing changes; across it, writeData makes a short write (generic_write_check_limits).
      if (pos >= maxFileBytes(w.fs, inode)) throw new FsError("EFBIG", "File too large");
      let written = 0;
      try {
        await convertInlineFile(h, w.deps, inode);
        written = usesPageCache(inode) ? await daWrite(w.fs, inode, pos, data) : await writeData(h, w.deps, inode, pos, data);
      } finally {
        // Whatever was mapped and written (all of it, or up to an ENOSPC) is recorded.
        const now = w.deps.now();
        setInodeTime(inode.raw, w.fs.inodeSize, "i_mtime", now);
        setInodeTime(inode.raw, w.fs.inodeSize, "i_ctime", now);
        await markInodeDirty(h, inode);
      }
      return written;
    }).then(async (written) => {
      await balanceDirtyPages(w);
      return written;
    }),
  );
}

/**
 * Past the dirty limit, write back the oldest dirty inodes until half of it is left, so
 * the page cache stays bounded however much is written. @kernel balance_dirty_pages
 */
async function balanceDirtyPages(w: Writer): Promise<void> {
  const t = inodeTable(w.fs);
  const bs = w.fs.blockSize;
  if (t.dirtyPages * bs <= w.dirtyLimitBytes) return;
  for (const core of t.dirty()) {
    await writebackInode(w.fs, w.deps, core.ino);
    if (t.dirtyPages * bs <= w.dirtyLimitBytes / 2) return;
  }
}

/**
 * Write back one file's dirty pages in blocks [first, last] (fsync, fdatasync,
 * sync_file_range, close with auto_da_alloc): data on the device, metadata in the buffer
 * cache until the caller flushes it. @kernel filemap_write_and_wait_range
 */
export function writebackFile(w: Writer, ino: number, range?: { first: number; last: number }): Promise<void> {
  return w.lock.run(async () => {
    await writebackInode(w.fs, w.deps, ino, range);
  });
}

/** Write back every dirty page of the volume (sync, unmount). @kernel sync_inodes_sb */
export function writebackVolume(w: Writer): Promise<void> {
  return w.lock.run(() => writebackAll(w.fs, w.deps));
}

/** Set the size of a regular file (shrinking frees blocks; growing leaves a hole). */
export function truncateAt(w: Writer, path: string, ino: number, size: number): Promise<void> {
  return op(w, "truncate", path, () =>
    withHandle(w.fs, async (h) => {
      if (!Number.isSafeInteger(size) || size < 0) throw new FsError("EINVAL", "Invalid argument");
      const inode = await igetWritable(w.fs, ino, { allowUnlinked: true });
      if ((inode.raw.i_mode & S_IFMT) === S_IFDIR) throw new FsError("EISDIR", "Is a directory");
      if ((inode.raw.i_mode & S_IFMT) !== S_IFREG) throw new FsError("EINVAL", "Invalid argument");
      if (size > maxFileBytes(w.fs, inode)) throw new FsError("EFBIG", "File too large");
      await convertInlineFile(h, w.deps, inode, { discard: size === 0 });
      const oldSize = getSize(w.fs, inode);
      await truncateData(h, w.deps, inode, oldSize, size);
      // auto_da_alloc: a file truncated to zero and rewritten gets its new data written back
      // at close, so "truncate, write, close" does not leave a zero-length file after a crash.
      if (size === 0 && oldSize > 0) inodeTable(w.fs).getOrCreate(ino).daAllocClose = true;
      setSize(inode, size);
      const now = w.deps.now();
      setInodeTime(inode.raw, w.fs.inodeSize, "i_mtime", now);
      setInodeTime(inode.raw, w.fs.inodeSize, "i_ctime", now);
      await markInodeDirty(h, inode);
    }),
  );
}

/**
 * Times outside what the inode can hold are clamped, with nanoseconds dropped, as Linux
 * does: [-2^31, 3 * 2^32 + 2^31 - 1] with extra fields, 32-bit signed seconds without.
 * @kernel timestamp_truncate / s_time_min, s_time_max
 */
function clampTime(fs: Ext4Fs, t: Timespec): Timespec {
  const extra = fs.inodeSize > 128;
  const min = -(2 ** 31);
  const max = extra ? 3 * 2 ** 32 + 2 ** 31 - 1 : 2 ** 31 - 1; // 15032385535: two epoch bits
  if (t.sec < min) return { sec: min, nsec: 0 };
  if (t.sec > max) return { sec: max, nsec: 0 };
  return extra ? t : { sec: t.sec, nsec: 0 };
}

/** Largest file an extent-mapped inode can have: 2^32 blocks. @kernel ext4_max_size */
export function unlinkAt(w: Writer, path: string, freeIfUnused: (ino: number) => boolean): Promise<void> {
  return op(w, "unlink", path, async () => {
    const p = await parentDir(w, path);
    if (p.existing === null) throw new FsError("ENOENT", "No such file or directory");
    await withHandle(w.fs, async (h) => {
      const dir = await igetWritable(w.fs, p.dirIno);
      const victim = await igetWritable(w.fs, p.existing!); // checked just above
      await unlinkNode(h, w.deps, dir, p.name, victim, { freeIfUnused: freeIfUnused(victim.ino) });
    });
  });
}

/** At the last close: free an inode whose links are all gone. @kernel ext4_evict_inode (via iput) */
export function evictIfUnlinked(w: Writer, ino: number): Promise<void> {
  return w.lock.run(async () => {
    const snap = await igetOrNull(w.fs, ino);
    if (snap === null) return;
    await withHandle(w.fs, async (h) => {
      await evictInode(h, w.deps, await igetWritableRaw(w.fs, ino));
    });
  });
}

async function igetOrNull(fs: Ext4Fs, ino: number): Promise<{ ino: number } | null> {
  // iget refuses inodes with no links, exactly the ones to free: read the raw count instead.
  // An open unlinked inode is on the orphan list (its i_dtime links the list), or, on a
  // volume without one, still has i_dtime 0; a freed one has its deletion time.
  const writable = await igetWritableRaw(fs, ino);
  if (writable.raw.i_links_count !== 0 || writable.raw.i_mode === 0) return null;
  const pending = usesOrphanList(fs) ? (await orphanList(fs)).includes(ino) : writable.raw.i_dtime === 0;
  return pending ? { ino } : null;
}

export function rmdirAt(w: Writer, path: string): Promise<void> {
  return op(w, "rmdir", path, async () => {
    if (path.replace(/\/+$/, "") === "") throw new FsError("EBUSY", "Device or resource busy");
    const p = await parentDir(w, path);
    if (p.existing === null) throw new FsError("ENOENT", "No such file or directory");
    await withHandle(w.fs, async (h) => {
      const dir = await igetWritable(w.fs, p.dirIno);
      const victim = await igetWritable(w.fs, p.existing!); // checked just above
      await rmdirNode(h, w.deps, dir, p.name, victim);
    });
  });
}

export function linkAt(w: Writer, existing: string, path: string): Promise<void> {
  return op(w, "link", path, async () => {
    const target = await resolvePath(w.fs, existing, { followLast: false });
    const p = await parentDir(w, path);
    if (p.existing !== null) throw new FsError("EEXIST", "File exists");
    await withHandle(w.fs, async (h) => {
      const dir = await igetWritable(w.fs, p.dirIno);
      await linkNode(h, w.deps, dir, p.name, await igetWritable(w.fs, target.ino));
    });
  });
}

/** Is directory `ancestor` on the path from the root to `ino`? (rename's EINVAL check) */
async function isAncestor(w: Writer, ancestor: number, dirIno: number): Promise<boolean> {
  const dotdot = utf8.encode("..");
  let cur = dirIno;
  for (let depth = 0; depth < 4096; depth++) {
    if (cur === ancestor) return true;
    if (cur === 2) return false;
    const parent = await lookup(w.fs, await iget(w.fs, cur), dotdot);
    if (parent === null || parent === cur) return false;
    cur = parent;
  }
  throw new FsError("EFSCORRUPTED", "Directory tree too deep or looped while checking rename");
}

export function renameAt(w: Writer, from: string, to: string, freeIfUnused: (ino: number) => boolean = () => true): Promise<void> {
  return op(w, "rename", from, async () => {
    // Linux's order (do_renameat2): both parents, then the source lookup, then the target's.
    const pa = await resolveParent(w, from);
    const pb = await resolveParent(w, to);
    const a = await lookupIn(w, pa);
    if (a.existing === null) throw new FsError("ENOENT", "No such file or directory");
    const b = await lookupIn(w, pb);
    if ((a.trailingSlash || b.trailingSlash) && !isDir(await iget(w.fs, a.existing))) throw new FsError("ENOTDIR", "Not a directory");
    if (a.dirIno === b.dirIno && a.name.every((c, i) => c === b.name[i]) && a.name.length === b.name.length) return; // same entry
    if (b.existing === a.existing) return; // two names of one inode: POSIX says do nothing
    // A target directory that contains the source is lock_rename's trap: ENOTEMPTY before any type check.
    if (b.existing !== null && isDir(await iget(w.fs, b.existing)) && (await isAncestor(w, b.existing, a.dirIno))) {
      throw new FsError("ENOTEMPTY", "Directory not empty");
    }
    // auto_da_alloc: replacing a file by rename writes the new file's data first, so the
    // rename never exposes a name whose data is still only in memory. @kernel ext4_rename -> ext4_alloc_da_blocks
    if (b.existing !== null) await writebackInode(w.fs, w.deps, a.existing);
    await withHandle(w.fs, async (h) => {
      const source = await igetWritable(w.fs, a.existing!); // checked above
      if ((source.raw.i_mode & S_IFMT) === S_IFDIR && (await isAncestor(w, source.ino, b.dirIno))) {
        throw new FsError("EINVAL", "Invalid argument");
      }
      const oldDir = await igetWritable(w.fs, a.dirIno);
      const newDir = a.dirIno === b.dirIno ? oldDir : await igetWritable(w.fs, b.dirIno);
      const target = b.existing === null ? null : await igetWritable(w.fs, b.existing);
      await renameNode(h, w.deps, oldDir, a.name, source, newDir, b.name, target, { freeTargetIfUnused: target === null || freeIfUnused(target.ino) });
    });
  });
}

export type AttrChange =
  | { kind: "mode"; mode: number }
  | { kind: "owner"; uid: number; gid: number }
  | { kind: "times"; atime: Timespec; mtime: Timespec };

/** chmod / chown / utimes on an inode. @kernel ext4_setattr (attribute part) */
export function setAttr(w: Writer, syscall: string, path: string, follow: boolean, change: AttrChange): Promise<void> {
  return op(w, syscall, path, async () => {
    const snap = await resolvePath(w.fs, path, { followLast: follow });
    await withHandle(w.fs, async (h) => {
      const inode = await igetWritable(w.fs, snap.ino);
      const r = inode.raw;
      switch (change.kind) {
        case "mode":
          r.i_mode = (r.i_mode & S_IFMT) | (change.mode & 0o7777);
          await aclChmod(h, w.deps, inode); // a stored access ACL follows the mode
          break;
        case "owner":
          if (change.uid !== -1) {
            r.i_uid = change.uid & 0xffff;
            r.l_i_uid_high = change.uid >>> 16;
          }
          if (change.gid !== -1) {
            r.i_gid = change.gid & 0xffff;
            r.l_i_gid_high = change.gid >>> 16;
          }
          // Linux drops setuid, and setgid when group-exec is set, from non-directories (even for root).
          if ((r.i_mode & S_IFMT) !== S_IFDIR) {
            r.i_mode &= ~0o4000;
            if (r.i_mode & 0o010) r.i_mode &= ~0o2000;
          }
          break;
        case "times":
          setInodeTime(r, w.fs.inodeSize, "i_atime", clampTime(w.fs, change.atime));
          setInodeTime(r, w.fs.inodeSize, "i_mtime", clampTime(w.fs, change.mtime));
          break;
      }
      setInodeTime(r, w.fs.inodeSize, "i_ctime", w.deps.now());
      await markInodeDirty(h, inode);
    });
  });
}

/**
 * setxattr / lsetxattr: the argument checks (EINVAL, ERANGE, E2BIG) come before the path
 * is looked up, as in Linux; then the engine, in one handle. @kernel path_setxattr
 */
export function setXattrAt(w: Writer, syscall: string, path: string, follow: boolean, name: string, value: Uint8Array, flags: number): Promise<void> {
  return op(w, syscall, path, async () => {
    checkXattrArgs(name, value, flags);
    const snap = await resolvePath(w.fs, path, { followLast: follow });
    await withHandle(w.fs, async (h) => {
      const inode = await igetWritable(w.fs, snap.ino);
      await vfsSetxattr(h, w.deps, inode, name, value, flags, { uid: w.uid, gid: w.gid });
    });
  });
}

/** removexattr / lremovexattr. @kernel path_removexattr */
export function removeXattrAt(w: Writer, syscall: string, path: string, follow: boolean, name: string): Promise<void> {
  return op(w, syscall, path, async () => {
    checkXattrArgs(name, null, 0);
    const snap = await resolvePath(w.fs, path, { followLast: follow });
    await withHandle(w.fs, async (h) => {
      const inode = await igetWritable(w.fs, snap.ino);
      await vfsRemovexattr(h, w.deps, inode, name, { uid: w.uid, gid: w.gid });
    });
  });
}
