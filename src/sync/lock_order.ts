/**
 * The lock order, written once: every async lock in the engine has a class, and a task may
 * block on a lock only if its class ranks after every class the task already holds (a small
 * lockdep). The table below is the order; `checkLockOrder` is the checker that rwlock.ts runs
 * on each blocking acquire.
 *
 * What is atomic in this engine: nothing runs in parallel, and code between two `await`s runs
 * alone. So the kernel's spinlocks, percpu counters and `i_lock` become synchronous sections
 * (no lock object at all); only the kernel's sleeping locks, whose protected state must stay
 * stable across an `await` (I/O, journal credits, another lock), become async locks here.
 * Those can deadlock exactly as in the kernel, hence this table.
 *
 * Rules (as the kernel's lockdep):
 * - Blocking acquires (`lock`, `readLock`) are checked: the new class must rank after every
 *   held class. Read and write count alike (an rwsem held for read still blocks a writer).
 * - Two locks of one class (two inodes' i_rwsem in rename, parent and child) nest only with
 *   an explicit subclass (`lock(task, I_MUTEX_CHILD)`, the kernel's lock_nested), and the
 *   inner one must have the higher subclass. Without one (subclass 0) the nesting is an error.
 * - `tryLock`/`tryRead`/`tryWrite` are exempt: a trylock cannot wait, so it cannot deadlock
 *   (the kernel's rule: code holding i_data_sem may only trylock xattr_sem). The lock it
 *   takes still counts as held for later blocking acquires.
 * - Re-acquiring a lock the task holds is always an error (locks are not reentrant), checker
 *   on or off: see rwlock.ts.
 *
 * The checker is cheap (a task holds a handful of locks); a volume can turn it off for
 * benchmarks (`SyncDomain.lockdep = false`, rwlock.ts).
 *
 * Sources: the "Lock ordering" comment in fs/ext4/super.c (page fault: mmap_lock →
 * sb_start_pagefault → invalidate_lock (r) → transaction start → page lock → i_data_sem;
 * buffered write: sb_start_write → i_rwsem → transaction start → page lock → i_data_sem;
 * truncate: sb_start_write → i_rwsem → invalidate_lock (w) → transaction start → i_data_sem;
 * writepages: transaction start → page lock(s) → i_data_sem), the inode_i_mutex_lock_class
 * enum in include/linux/fs.h, and §3.1 of shared/docs/ext4-allocation-and-concurrency.md.
 */

import { AssertionError } from "../debug/assert.js";

/** One row of the lock order: the class name, its kernel counterpart, and why it sits there. */
export interface LockClassInfo {
  readonly cls: string;
  readonly kernel: string;
  readonly why: string;
}

/**
 * Every lock class, outermost first. A new lock gets a row here before its first use.
 * Spinlock-protected kernel state (i_es_lock, i_block_reservation_lock, i_lock, dq_dqb_lock,
 * percpu counters) has no row: here it is a synchronous section, never held across an await.
 */
export const LOCK_ORDER = [
  {
    cls: "s_umount",
    kernel: "sb->s_umount + sb_start_write freeze protection (fs/super.c)",
    why: "mount state: every modifying operation holds it shared, unmount/remount/freeze exclusive; outermost so freeze can drain all writers",
  },
  {
    cls: "rename",
    kernel: "sb->s_vfs_rename_mutex (fs/namei.c lock_rename)",
    why: "a cross-directory rename takes it before any directory's i_rwsem, so ancestry checks stay valid while the parents are locked",
  },
  {
    cls: "i_rwsem",
    kernel: "inode->i_rwsem (inode_lock, inode_lock_nested)",
    why: "size, namespace membership, xattr ops: taken first by write/truncate/setattr/setxattr/unlink/rename; several inodes nest by I_MUTEX_* subclass",
  },
  {
    cls: "invalidate_lock",
    kernel: "mapping->invalidate_lock (filemap_invalidate_lock)",
    why: "page cache vs block mapping: truncate/punch take it (write) after i_rwsem and before the transaction; faults/readahead (read)",
  },
  {
    cls: "writepages",
    kernel: "sbi->s_writepages_rwsem (ext4_writepages_down_read)",
    why: "writeback (read) vs journal-mode/extent-format changes (write); writeback takes it before starting a transaction",
  },
  {
    cls: "jbd2_handle",
    kernel: "journal_start / jbd2_handle lockdep map (fs/jbd2/transaction.c)",
    why: "transaction start nests inside the VFS locks and outside page and block-map locks (super.c order); waiting for credits or a commit is a sleep",
  },
  {
    cls: "orphan",
    kernel: "sbi->s_orphan_lock (fs/ext4/orphan.c)",
    why: "the on-disk orphan list; ext4_orphan_add/del run inside a handle, with i_rwsem held or on eviction, and never under a page lock or i_data_sem",
  },
  {
    cls: "page",
    kernel: "folio lock (folio_lock)",
    why: "one page (or page range) in write_begin, writeback and truncate; after transaction start, before i_data_sem (super.c order)",
  },
  {
    cls: "xattr_sem",
    kernel: "ei->xattr_sem (ext4_write_lock_xattr)",
    why: "i_file_acl, in-inode xattr area, extra_isize growth; before i_data_sem (inline-data conversion maps blocks under it); holders of i_data_sem may only trylock it",
  },
  {
    cls: "i_data_sem",
    kernel: "ei->i_data_sem (fs/ext4/ext4.h)",
    why: "extent tree / block map and i_disksize; the innermost per-inode lock: allocation, mapping and truncate run under it",
  },
  {
    cls: "xattr_block",
    kernel: "lock_buffer on the xattr block (fs/ext4/xattr.c ext4_xattr_block_set)",
    why: "a shared xattr block's refcount, hash and contents; no per-inode lock may be taken under it (2024 fix: do not create an EA inode under the buffer lock)",
  },
  {
    cls: "quota",
    kernel: "dquot->dq_lock, dqopt->dqio_sem (fs/quota/dquot.c)",
    why: "loading or writing a quota record: called under a handle, i_data_sem or the xattr block lock, and it may allocate for the quota file, so it sits above group",
  },
  {
    cls: "group",
    kernel: "ext4_lock_group (bit spinlock) over a group's bitmap and counters",
    why: "one group's bitmap, buddy and free counts; an async lock only where the update waits for a bitmap read; takes no other lock but buffer",
  },
  {
    cls: "buffer",
    kernel: "lock_buffer (include/linux/buffer_head.h)",
    why: "one metadata buffer being read or written back; innermost, held across the I/O only",
  },
] as const satisfies readonly LockClassInfo[];

/** A lock class name, from LOCK_ORDER. */
export type LockClass = (typeof LOCK_ORDER)[number]["cls"];

const RANK = new Map<string, number>(LOCK_ORDER.map((c, i) => [c.cls, i]));

/** Position of a class in LOCK_ORDER: lower is outer (taken first). */
export function lockRank(cls: LockClass): number {
  const r = RANK.get(cls);
  if (r === undefined) throw new AssertionError(`Unknown lock class '${cls}'`);
  return r;
}

/**
 * i_rwsem subclasses, in the order they nest (the kernel's enum inode_i_mutex_lock_class
 * names, renumbered so that inner means higher; lockdep itself does not order them):
 * a parent directory, then a second parent (rename: lock_rename), then the child or victim,
 * then a second non-directory (lock_two_nondirectories). One inode alone: I_MUTEX_NORMAL.
 */
export const I_MUTEX_NORMAL = 0;
export const I_MUTEX_PARENT = 1;
export const I_MUTEX_PARENT2 = 2;
export const I_MUTEX_CHILD = 3;
export const I_MUTEX_NONDIR2 = 4;

/**
 * i_data_sem subclasses (fs/ext4/ext4.h): OTHER is the second of two normal inodes
 * (move_extent, higher inode number second). The kernel's I_DATA_SEM_QUOTA (the quota
 * file's i_data_sem, taken under dq_lock while another inode's i_data_sem is held) must
 * rank after "quota": give the quota inode's lock its own class when quota lands.
 */
export const I_DATA_SEM_NORMAL = 0;
export const I_DATA_SEM_OTHER = 1;

/** The kernel's SINGLE_DEPTH_NESTING: a second lock of a class, inside the first. */
export const SINGLE_DEPTH_NESTING = 1;

/** What the checker needs of a held lock. */
export interface HeldLockInfo {
  readonly lock: { readonly cls: LockClass; readonly name: string };
  readonly subclass: number;
}

/**
 * Throws AssertionError if blocking on a lock of class `cls` (subclass `subclass`) while
 * holding `held` inverts LOCK_ORDER. `who` names the task for the message.
 * @kernel check_prev_add (kernel/locking/lockdep.c), much simplified: a fixed total order
 */
export function checkLockOrder(held: readonly HeldLockInfo[], cls: LockClass, name: string, subclass: number, who: () => string): void {
  if (held.length === 0) return;
  const rank = lockRank(cls);
  for (const h of held) {
    const hr = lockRank(h.lock.cls);
    if (hr < rank || (hr === rank && h.subclass < subclass)) continue;
    const what = `${who()} acquires ${name} (class ${cls}, subclass ${subclass}) while holding ${h.lock.name} (class ${h.lock.cls}, subclass ${h.subclass})`;
    if (hr === rank) {
      throw new AssertionError(
        `Lock order violation: ${what}: two ${cls} locks nest only with a higher subclass for the inner one (lock(task, subclass), as the kernel's lock_nested)`,
      );
    }
    throw new AssertionError(`Lock order violation: ${what}: ${cls} must be taken before ${h.lock.cls} (LOCK_ORDER in src/sync/lock_order.ts)`);
  }
}
