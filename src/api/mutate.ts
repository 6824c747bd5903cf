/**
 * Path-level write operations behind Volume's fs.promises-like methods: resolve parents,
 * check names and types as Linux does, and run the engine operation in one handle.
 *
 * Concurrency: any mix of operations may run at once. Each is a Task that takes the
 * kernel's locks in a fixed order (see Writer below for the list and what each protects;
 * the order is checked by src/sync/lock_order.ts). Readers take no namespace lock: a
 * lookup running during a rename may see either name, as on Linux without the dcache's
 * seqlocks; file data reads see dirty pages first (page_cache.ts).
 */

import { FsError, type Errno } from "../errors.js";
import type { Mutex as SyncMutex, RwLock, SyncDomain } from "../sync/rwlock.js";
import { Task } from "../sync/task.js";
import { EXT4_NAME_LEN } from "../format/dirent.js";
import { EXT4_INLINE_DATA_FL, S_IFDIR, S_IFMT, S_IFREG, setInodeTime, type Timespec } from "../format/inode.js";
import { withHandle, type Handle } from "../fs/handle.js";
import { iget, isDir } from "../fs/inode.js";
import { getSize, type InodeInfo, igetWritable, igetWritableRaw, markInodeDirty, setSize } from "../fs/inode_write.js";
import { lookup, resolvePath } from "../fs/namei.js";
import { createNode, evictInode, linkNode, renameNode, rmdirNode, unlinkNode, type NameiDeps, type NewInodeAttrs } from "../fs/namei_write.js";
import { maxFileBytes, punchHole, truncateData, writeData } from "../fs/file_write.js";
import { convertInlineFile } from "../fs/inline_write.js";
import { inodeTable } from "../fs/inode_core.js";
import { daWrite, usesPageCache } from "../fs/page_cache.js";
import { writebackAll, writebackInode } from "../fs/writeback.js";
import { aclChmod } from "../fs/xattr_write.js";
import { chownInode } from "../fs/quota_charge.js";
import { checkXattrArgs, vfsRemovexattr, vfsSetxattr } from "../fs/xattr_write.js";
import { orphanList, usesOrphanList } from "../fs/orphan.js";
import { noteFsError, type Ext4Fs } from "../fs/super.js";

const utf8 = new TextEncoder();

/** Longest stretch of engine work between yields to the event loop (ms). */
const YIELD_EVERY_MS = 50;

/**
 * Yields to the event loop (a macrotask) when operations have kept the engine busy for
 * YIELD_EVERY_MS: operations served from the buffer cache resolve as microtasks only, and a
 * long run of them would starve timers and I/O callbacks of the embedding program (the
 * kernel's cond_resched, for an async engine). Time comes from the volume's clock, so under a
 * simulated clock it yields only when the simulation says time has passed.
 */
export class Yielder {
  readonly #domain: SyncDomain;
  #lastYield: number;
  constructor(domain: SyncDomain) {
    this.#domain = domain;
    this.#lastYield = domain.clock.now();
  }
  async maybeYield(): Promise<void> {
    const clock = this.#domain.clock;
    if (clock.now() - this.#lastYield <= YIELD_EVERY_MS) return;
    await clock.yieldToEventLoop();
    this.#lastYield = clock.now();
  }
}

/**
 * The periodic flusher: dirty data older than `expireMs` is written back every
 * `intervalMs`, so data does not sit in memory indefinitely between syncs. The timer is
 * unref'd where the platform allows (it never keeps a Node process alive) and runs only
 * while there are dirty pages. @kernel wb_workfn with dirty_writeback_centisecs (5 s) and
 * dirty_expire_centisecs (30 s)
 */
export class Flusher {
  readonly #w: Writer;
  readonly #intervalMs: number;
  readonly #expireMs: number;
  #timer: unknown = null;
  #stopped = false;

  constructor(w: Writer, intervalMs: number, expireMs: number) {
    this.#w = w;
    this.#intervalMs = intervalMs;
    this.#expireMs = expireMs;
  }

  /** Make sure a flush is scheduled (called after writes). */
  kick(): void {
    if (this.#stopped || this.#intervalMs <= 0 || this.#timer !== null) return;
    this.#timer = this.#w.fs.syncDomain.clock.setTimer(this.#intervalMs, () => {
      this.#timer = null;
      void this.#run();
    });
  }

  async #run(): Promise<void> {
    const now = this.#w.fs.syncDomain.clock.now();
    for (const core of inodeTable(this.#w.fs).dirty()) {
      if (this.#stopped || now - core.dirtiedAt < this.#expireMs) break; // oldest first
      try {
        await writebackFile(this.#w, core.ino);
      } catch (e) {
        noteFsError(this.#w.fs, e); // nobody to report to; the next sync or fsync sees it again
        break;
      }
    }
    if (inodeTable(this.#w.fs).dirtyPages > 0) this.kick();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) this.#w.fs.syncDomain.clock.clearTimer(this.#timer);
    this.#timer = null;
  }
}

/** Locks taken by one operation, released in reverse order however it ends. */
export class HeldLocks {
  readonly task: Task;
  readonly #held: (() => void)[] = [];
  constructor(task: Task) {
    this.task = task;
  }
  async write(lock: RwLock | SyncMutex, subclass = 0): Promise<void> {
    await lock.lock(this.task, subclass);
    this.#held.push(() => {
      lock.unlock(this.task);
    });
  }
  async read(lock: RwLock, subclass = 0): Promise<void> {
    await lock.readLock(this.task, subclass);
    this.#held.push(() => {
      lock.readUnlock(this.task);
    });
  }
  releaseAll(): void {
    while (this.#held.length > 0) this.#held.pop()!();
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

/**
 * The writing side of a mounted volume. Locking (what the kernel's locks become here;
 * code between two awaits runs alone, so spinlocks become synchronous sections):
 *
 *   nsLock -> i_rwsem (inodes in ascending number) -> xattr_sem -> i_data_sem -> xattrBlockLock -> quotaLock
 *
 * - nsLock (class "rename"): every namespace change (create, link, unlink, rmdir, rename,
 *   last-close eviction), so the directory tree, the inode allocator and the orphan list
 *   change one operation at a time. A deliberate coarsening of the kernel's per-directory
 *   i_rwsem plus s_vfs_rename_mutex; namespace operations also take i_rwsem of every inode
 *   they change, so they exclude writes, truncates and setxattr on those inodes.
 * - i_rwsem (per inode): write, truncate, setattr, setxattr/removexattr.
 * - xattr_sem (per inode): xattr changes, inline-data conversion.
 * - i_data_sem (per inode): block mapping: writeback (write), truncate (write), write()'s
 *   reservation and page creation (write), reads of file data (read).
 *   Writeback takes ONLY this lock: it runs beside a setxattr of the same inode, as the
 *   kernel's does (the seed's interleaving), which is safe because how each block is
 *   charged travels with its allocation request (alloc_request.ts).
 * - xattrBlockLock (volume): xattr block sharing and refcounts; a coarsening of the
 *   kernel's per-buffer locks on xattr blocks.
 * - quotaLock (volume): writing quota records into the quota files (dqio_sem).
 * - Block and inode allocation take no lock: each group change is one synchronous commit
 *   (balloc.ts), which is what the kernel's group spinlock makes it.
 */
export interface Writer {
  fs: Ext4Fs;
  deps: NameiDeps;
  nsLock: SyncMutex;
  xattrBlockLock: SyncMutex;
  quotaLock: SyncMutex;
  yielder: Yielder;
  /** Set once the Writer exists (it needs the Writer). */
  flusher: Flusher | null;
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

/**
 * Resolve the directory holding the last component of `path` (@kernel filename_parentat);
 * no lookup of the name yet. Namespace operations only: they hold the namespace lock.
 */
async function resolveParent(w: Writer, path: string): Promise<Parent> {
  const { parent, name, trailingSlash } = splitParent(path);
  if (name === "." || name === "..") throw new FsError(name === "." ? "EINVAL" : "ENOTEMPTY", "Invalid argument", { path });
  const dir = await resolvePath(w.fs, parent, { followLast: true, nsHeld: true });
  if (!isDir(dir)) throw new FsError("ENOTDIR", "Not a directory", { path });
  return { dir, name, path, trailingSlash };
}

/** Look the last component up in its resolved parent; ENAMETOOLONG comes here, as from ext4_lookup. */
async function lookupIn(w: Writer, p: Parent): Promise<{ dirIno: number; name: Uint8Array; existing: number | null; trailingSlash: boolean }> {
  const nb = checkName(p.name, p.path);
  return { dirIno: p.dir.ino, name: nb, existing: await lookup(w.fs, p.dir, nb, { nsHeld: true }), trailingSlash: p.trailingSlash };
}

async function parentDir(w: Writer, path: string): Promise<{ dirIno: number; name: Uint8Array; existing: number | null; trailingSlash: boolean }> {
  return lookupIn(w, await resolveParent(w, path));
}

/** In-core inodes kept when no operation runs; idle ones past this are dropped. */
const INODE_CORE_LIMIT = 8192;

/**
 * Run `fn` as one operation (a Task) with errors carrying syscall and path. `ns`: take the
 * namespace lock first. The locks `fn` takes through HeldLocks are released at the end.
 * When it fails and nothing else runs, the in-core inode fields are dropped so a half-done
 * change is not written later by another operation (they are reloaded from the inode
 * table, which holds every change that was completed).
 */
export async function op<T>(w: Writer, syscall: string, path: string, fn: (l: HeldLocks) => Promise<T>, opts: { ns?: boolean; check?: boolean } = {}): Promise<T> {
  if (opts.check !== false) requireWritable(w.fs, syscall, path);
  await w.yielder.maybeYield();
  const table = inodeTable(w.fs);
  const l = new HeldLocks(new Task(`${syscall} ${path}`, w.fs.syncDomain.tasks));
  table.active++;
  try {
    if (opts.ns === true) await l.write(w.nsLock);
    return await fn(l);
  } catch (e) {
    if (table.active === 1) table.forgetFields();
    noteFsError(w.fs, e);
    if (e instanceof FsError) throw e.with({ syscall, path });
    throw e;
  } finally {
    l.releaseAll();
    l.task.finish();
    table.active--;
    table.prune(INODE_CORE_LIMIT);
  }
}

/**
 * Lock the inodes a namespace operation changes: i_rwsem of each in ascending number, then
 * for `evict` (inodes that may be freed here) xattr_sem and i_data_sem, then the xattr
 * block lock (freeing an inode releases its xattr block; a new inode may get inherited ACLs).
 */
async function lockInodes(w: Writer, l: HeldLocks, inos: readonly number[], evict: readonly number[] = []): Promise<void> {
  const table = inodeTable(w.fs);
  const sorted = [...new Set(inos)].sort((a, b) => a - b);
  for (const [i, ino] of sorted.entries()) await l.write(table.getOrCreate(ino).iRwsem, i);
  const victims = [...new Set(evict)].sort((a, b) => a - b);
  for (const [i, ino] of victims.entries()) await l.write(table.getOrCreate(ino).xattrSem, i);
  for (const [i, ino] of victims.entries()) await l.write(table.getOrCreate(ino).dataSem, i);
  await l.write(w.xattrBlockLock);
}

/**
 * i_rwsem, xattr_sem and i_data_sem of one inode, for changes of its size, mapping or ids
 * (truncate, punch, project id): nothing else may change the inode, its xattr area
 * (inline data, i_extra_isize) or its block mapping meanwhile, and no writeback allocates
 * for it with the ids it had.
 */
export async function lockWholeInode(w: Writer, l: HeldLocks, ino: number): Promise<void> {
  const core = inodeTable(w.fs).getOrCreate(ino);
  await l.write(core.iRwsem);
  await l.write(core.xattrSem);
  await l.write(core.dataSem);
}

/** Write back one inode's pages under its i_data_sem (the caller holds no lock of that inode, or only i_rwsem). */
async function writebackLocked(w: Writer, task: Task, ino: number, range?: { first: number; last: number }): Promise<void> {
  const core = inodeTable(w.fs).get(ino);
  if (core === undefined || core.pages.size === 0) return;
  await core.dataSem.write(task, () => writebackInode(w.fs, w.deps, ino, range, task));
}

/** mknod/mkdir/symlink/create: a new inode at `path`. EEXIST if the name is taken. */
export function createAt(w: Writer, syscall: string, path: string, attrs: Omit<NewInodeAttrs, "uid" | "gid">): Promise<number> {
  return op(
    w,
    syscall,
    path,
    async (l) => {
      const p = await parentDir(w, path);
      if (p.existing !== null) throw new FsError("EEXIST", "File exists");
      if (p.trailingSlash && (attrs.mode & S_IFMT) !== S_IFDIR) throw new FsError("ENOENT", "No such file or directory");
      await lockInodes(w, l, [p.dirIno]);
      return withHandle(
        w.fs,
        async (h) => {
          const dir = await igetWritable(w.fs, p.dirIno);
          const inode = await createNode(h, w.deps, dir, p.name, { ...attrs, uid: w.uid, gid: w.gid });
          return inode.ino;
        },
        l.task,
      );
    },
    { ns: true },
  );
}

/** Write `data` at `pos` of the regular file at `path` (it must exist). */
/** Returns the bytes written: fewer than asked when the write crosses the file size limit. */
export function writeAt(w: Writer, path: string, ino: number, pos: number, data: Uint8Array): Promise<number> {
  return op(w, "write", path, async (l) => {
    const core = inodeTable(w.fs).getOrCreate(ino);
    await l.write(core.iRwsem);
    const written = await withHandle(
      w.fs,
      async (h) => {
        const inode = await igetWritable(w.fs, ino, { allowUnlinked: true });
        if ((inode.raw.i_mode & S_IFMT) !== S_IFREG) throw new FsError("EISDIR", "Is a directory");
        if (data.length === 0) return 0; // Linux changes nothing, not even mtime
        // Past the size limit nothing changes; across it, writeData makes a short write (generic_write_check_limits).
        if (pos >= maxFileBytes(w.fs, inode)) throw new FsError("EFBIG", "File too large");
        let written = 0;
        try {
          // Inline data moves to a block first (xattr_sem: the data lives in system.data).
          if (inode.raw.i_flags & EXT4_INLINE_DATA_FL) await l.write(core.xattrSem);
          // Reserving for holes and creating pages must not interleave with writeback of this inode.
          await l.write(core.dataSem);
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
      },
      l.task,
    );
    l.releaseAll(); // balance_dirty_pages runs without this inode's locks
    await balanceDirtyPages(w, l.task);
    w.flusher?.kick();
    return written;
  });
}

/**
 * Past the dirty limit, write back the oldest dirty inodes until half of it is left, so
 * the page cache stays bounded however much is written. @kernel balance_dirty_pages
 */
async function balanceDirtyPages(w: Writer, task: Task): Promise<void> {
  const t = inodeTable(w.fs);
  const bs = w.fs.blockSize;
  if (t.dirtyPages * bs <= w.dirtyLimitBytes) return;
  for (const core of t.dirty()) {
    await writebackLocked(w, task, core.ino);
    if (t.dirtyPages * bs <= w.dirtyLimitBytes / 2) return;
  }
}

/**
 * Write back one file's dirty pages in blocks [first, last] (fsync, fdatasync,
 * sync_file_range, close with auto_da_alloc): data on the device, metadata in the buffer
 * cache until the caller flushes it. @kernel filemap_write_and_wait_range
 */
export function writebackFile(w: Writer, ino: number, range?: { first: number; last: number }): Promise<void> {
  return op(w, "fsync", `inode ${ino}`, (l) => writebackLocked(w, l.task, ino, range), { check: false });
}

/** Write the dirty quota records into the quota files (sync, unmount, setquota). @kernel dquot_writeback_dquots */
export function flushQuotaFiles(w: Writer, flush: (h: Handle) => Promise<void>): Promise<void> {
  return op(w, "sync", "quota", async (l) => {
    await l.write(w.quotaLock);
    await withHandle(w.fs, flush, l.task);
  }, { check: false });
}

/** Write back every dirty page of the volume (sync, unmount). @kernel sync_inodes_sb */
export function writebackVolume(w: Writer): Promise<void> {
  return op(w, "sync", "/", (l) => writebackAll(w.fs, w.deps, (ino) => writebackLocked(w, l.task, ino)), { check: false });
}

/**
 * A size or mapping change of a regular file (truncate, punch): argument checks, then
 * i_rwsem, xattr_sem (inline data may move to a block) and i_data_sem, then `change` in one
 * handle, then mtime/ctime. A directory is EISDIR; another type `notRegular`.
 */
function fileRangeOp(
  w: Writer,
  syscall: string,
  path: string,
  ino: number,
  o: { valid: boolean; notRegular: Errno },
  change: (h: Handle, inode: InodeInfo) => Promise<void>,
): Promise<void> {
  return op(w, syscall, path, async (l) => {
    if (!o.valid) throw new FsError("EINVAL", "Invalid argument");
    await lockWholeInode(w, l, ino);
    await withHandle(
      w.fs,
      async (h) => {
        const inode = await igetWritable(w.fs, ino, { allowUnlinked: true });
        if ((inode.raw.i_mode & S_IFMT) === S_IFDIR) throw new FsError("EISDIR", "Is a directory");
        if ((inode.raw.i_mode & S_IFMT) !== S_IFREG) throw new FsError(o.notRegular, o.notRegular === "ENODEV" ? "No such device" : "Invalid argument");
        await change(h, inode);
        const now = w.deps.now();
        setInodeTime(inode.raw, w.fs.inodeSize, "i_mtime", now);
        setInodeTime(inode.raw, w.fs.inodeSize, "i_ctime", now);
        await markInodeDirty(h, inode);
      },
      l.task,
    );
  });
}

/** Set the size of a regular file (shrinking frees blocks; growing leaves a hole). */
export function truncateAt(w: Writer, path: string, ino: number, size: number): Promise<void> {
  return fileRangeOp(w, "truncate", path, ino, { valid: Number.isSafeInteger(size) && size >= 0, notRegular: "EINVAL" }, async (h, inode) => {
    if (size > maxFileBytes(w.fs, inode)) throw new FsError("EFBIG", "File too large");
    await convertInlineFile(h, w.deps, inode, { discard: size === 0 });
    const oldSize = getSize(w.fs, inode);
    await truncateData(h, w.deps, inode, oldSize, size);
    // auto_da_alloc: a file truncated to zero and rewritten gets its new data written back
    // at close, so "truncate, write, close" does not leave a zero-length file after a crash.
    if (size === 0 && oldSize > 0) inodeTable(w.fs).getOrCreate(ino).daAllocClose = true;
    setSize(inode, size);
  });
}

/** fallocate(PUNCH_HOLE | KEEP_SIZE) on a regular file. @kernel ext4_fallocate -> ext4_punch_hole */
export function punchAt(w: Writer, path: string, ino: number, offset: number, len: number): Promise<void> {
  const valid = Number.isSafeInteger(offset) && Number.isSafeInteger(len) && offset >= 0 && len > 0;
  return fileRangeOp(w, "fallocate", path, ino, { valid, notRegular: "ENODEV" }, async (h, inode) => {
    await convertInlineFile(h, w.deps, inode);
    await punchHole(h, w.deps, inode, offset, len);
  });
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

/**
 * unlink and rmdir: look the entry up, lock the directory and the victim (which may be freed
 * here), and let `remove` take the entry out in one handle.
 */
function removeEntry(w: Writer, syscall: string, path: string, remove: (h: Handle, dir: InodeInfo, name: Uint8Array, victim: InodeInfo) => Promise<void>): Promise<void> {
  return op(
    w,
    syscall,
    path,
    async (l) => {
      if (syscall === "rmdir" && path.replace(/\/+$/, "") === "") throw new FsError("EBUSY", "Device or resource busy");
      const p = await parentDir(w, path);
      if (p.existing === null) throw new FsError("ENOENT", "No such file or directory");
      const victimIno = p.existing;
      await lockInodes(w, l, [p.dirIno, victimIno], [victimIno]);
      await withHandle(
        w.fs,
        async (h) => {
          await remove(h, await igetWritable(w.fs, p.dirIno), p.name, await igetWritable(w.fs, victimIno));
        },
        l.task,
      );
    },
    { ns: true },
  );
}

export function unlinkAt(w: Writer, path: string, freeIfUnused: (ino: number) => boolean): Promise<void> {
  return removeEntry(w, "unlink", path, (h, dir, name, victim) => unlinkNode(h, w.deps, dir, name, victim, { freeIfUnused: freeIfUnused(victim.ino) }));
}

/** At the last close: free an inode whose links are all gone. @kernel ext4_evict_inode (via iput) */
export function evictIfUnlinked(w: Writer, ino: number): Promise<void> {
  return op(
    w,
    "close",
    `inode ${ino}`,
    async (l) => {
      await lockInodes(w, l, [ino], [ino]);
      const snap = await igetOrNull(w.fs, ino);
      if (snap === null) return;
      await withHandle(
        w.fs,
        async (h) => {
          await evictInode(h, w.deps, await igetWritableRaw(w.fs, ino));
        },
        l.task,
      );
    },
    { ns: true, check: false },
  );
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
  return removeEntry(w, "rmdir", path, (h, dir, name, victim) => rmdirNode(h, w.deps, dir, name, victim));
}

export function linkAt(w: Writer, existing: string, path: string): Promise<void> {
  return op(
    w,
    "link",
    path,
    async (l) => {
      const target = await resolvePath(w.fs, existing, { followLast: false, nsHeld: true });
      const p = await parentDir(w, path);
      if (p.existing !== null) throw new FsError("EEXIST", "File exists");
      await lockInodes(w, l, [p.dirIno, target.ino]);
      await withHandle(
        w.fs,
        async (h) => {
          const dir = await igetWritable(w.fs, p.dirIno);
          await linkNode(h, w.deps, dir, p.name, await igetWritable(w.fs, target.ino));
        },
        l.task,
      );
    },
    { ns: true },
  );
}

/** Is directory `ancestor` on the path from the root to `ino`? (rename's EINVAL check) */
async function isAncestor(w: Writer, ancestor: number, dirIno: number): Promise<boolean> {
  const dotdot = utf8.encode("..");
  let cur = dirIno;
  for (let depth = 0; depth < 4096; depth++) {
    if (cur === ancestor) return true;
    if (cur === 2) return false;
    const parent = await lookup(w.fs, await iget(w.fs, cur), dotdot, { nsHeld: true });
    if (parent === null || parent === cur) return false;
    cur = parent;
  }
  throw new FsError("EFSCORRUPTED", "Directory tree too deep or looped while checking rename");
}

export function renameAt(w: Writer, from: string, to: string, freeIfUnused: (ino: number) => boolean = () => true): Promise<void> {
  return op(w, "rename", from, async (l) => {
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
    const sourceIno = a.existing;
    if (b.existing !== null) await writebackLocked(w, l.task, sourceIno);
    await lockInodes(w, l, [a.dirIno, b.dirIno, sourceIno, ...(b.existing === null ? [] : [b.existing])], b.existing === null ? [] : [b.existing]);
    await withHandle(
      w.fs,
      async (h) => {
        const source = await igetWritable(w.fs, sourceIno);
        if ((source.raw.i_mode & S_IFMT) === S_IFDIR && (await isAncestor(w, source.ino, b.dirIno))) {
          throw new FsError("EINVAL", "Invalid argument");
        }
        const oldDir = await igetWritable(w.fs, a.dirIno);
        const newDir = a.dirIno === b.dirIno ? oldDir : await igetWritable(w.fs, b.dirIno);
        const target = b.existing === null ? null : await igetWritable(w.fs, b.existing);
        await renameNode(h, w.deps, oldDir, a.name, source, newDir, b.name, target, { freeTargetIfUnused: target === null || freeIfUnused(target.ino) });
      },
      l.task,
    );
  }, { ns: true });
}

export type AttrChange =
  | { kind: "mode"; mode: number }
  | { kind: "owner"; uid: number; gid: number }
  | { kind: "times"; atime: Timespec; mtime: Timespec };

/** chmod / chown / utimes on an inode. @kernel ext4_setattr (attribute part) */
export function setAttr(w: Writer, syscall: string, path: string, follow: boolean, change: AttrChange): Promise<void> {
  return op(w, syscall, path, async (l) => {
    const snap = await resolvePath(w.fs, path, { followLast: follow });
    const core = inodeTable(w.fs).getOrCreate(snap.ino);
    await l.write(core.iRwsem);
    await l.write(core.xattrSem); // chmod rewrites a stored access ACL
    if (change.kind === "owner") await l.write(core.dataSem); // quota moves with the ids: no writeback allocating meanwhile
    await l.write(w.xattrBlockLock);
    await withHandle(
      w.fs,
      async (h) => {
        const inode = await igetWritable(w.fs, snap.ino);
        const r = inode.raw;
        switch (change.kind) {
          case "mode":
            r.i_mode = (r.i_mode & S_IFMT) | (change.mode & 0o7777);
            await aclChmod(h, w.deps, inode); // a stored access ACL follows the mode
            break;
          case "owner":
            await chownInode(w.fs, inode, change.uid, change.gid); // ids and quota usage together (EDQUOT: nothing changed)
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
      },
      l.task,
    );
  });
}

/**
 * Lock an inode for an xattr change: i_rwsem (as the VFS takes it for setxattr), xattr_sem,
 * then the xattr block lock. Not i_data_sem: writeback of the same inode may run meanwhile.
 */
async function lockForXattr(w: Writer, l: HeldLocks, ino: number): Promise<void> {
  const core = inodeTable(w.fs).getOrCreate(ino);
  await l.write(core.iRwsem);
  await l.write(core.xattrSem);
  await l.write(w.xattrBlockLock);
}

/**
 * setxattr / lsetxattr: the argument checks (EINVAL, ERANGE, E2BIG) come before the path
 * is looked up, as in Linux; then the engine, in one handle. @kernel path_setxattr
 */
export function setXattrAt(w: Writer, syscall: string, path: string, follow: boolean, name: string, value: Uint8Array, flags: number): Promise<void> {
  return op(w, syscall, path, async (l) => {
    checkXattrArgs(name, value, flags);
    const snap = await resolvePath(w.fs, path, { followLast: follow });
    await lockForXattr(w, l, snap.ino);
    await withHandle(
      w.fs,
      async (h) => {
        const inode = await igetWritable(w.fs, snap.ino);
        await vfsSetxattr(h, w.deps, inode, name, value, flags, { uid: w.uid, gid: w.gid });
      },
      l.task,
    );
  });
}

/** removexattr / lremovexattr. @kernel path_removexattr */
export function removeXattrAt(w: Writer, syscall: string, path: string, follow: boolean, name: string): Promise<void> {
  return op(w, syscall, path, async (l) => {
    checkXattrArgs(name, null, 0);
    const snap = await resolvePath(w.fs, path, { followLast: follow });
    await lockForXattr(w, l, snap.ino);
    await withHandle(
      w.fs,
      async (h) => {
        const inode = await igetWritable(w.fs, snap.ino);
        await vfsRemovexattr(h, w.deps, inode, name, { uid: w.uid, gid: w.gid });
      },
      l.task,
    );
  });
}
