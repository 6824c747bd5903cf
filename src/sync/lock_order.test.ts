import { describe, expect, it } from "vitest";
import { AssertionError } from "../debug/assert.js";
import { I_MUTEX_CHILD, I_MUTEX_NONDIR2, I_MUTEX_PARENT, I_MUTEX_PARENT2, LOCK_ORDER, lockRank, type LockClass } from "./lock_order.js";
import { Mutex, RwLock, createSyncDomain } from "./rwlock.js";
import { Task } from "./task.js";

describe("LOCK_ORDER", { timeout: 5000 }, () => {
  it("lists each class once, each with its kernel counterpart and a reason", () => {
    const names = LOCK_ORDER.map((c) => c.cls);
    expect(new Set(names).size).toBe(names.length);
    for (const c of LOCK_ORDER) {
      expect(c.kernel.length).toBeGreaterThan(0);
      expect(c.why.length).toBeGreaterThan(0);
    }
  });

  it("keeps the kernel's documented chains (fs/ext4/super.c, Lock ordering)", () => {
    const chains: LockClass[][] = [
      ["s_umount", "i_rwsem", "jbd2_handle", "page", "i_data_sem"], // buffered write
      ["s_umount", "i_rwsem", "invalidate_lock", "jbd2_handle", "i_data_sem"], // truncate
      ["invalidate_lock", "jbd2_handle", "page", "i_data_sem"], // page fault
      ["writepages", "jbd2_handle", "page", "i_data_sem"], // writepages
      ["rename", "i_rwsem"], // lock_rename
      ["page", "xattr_sem", "i_data_sem"], // inline-data conversion
      ["jbd2_handle", "xattr_sem", "xattr_block"], // ext4_xattr_set
      ["jbd2_handle", "orphan"], // ext4_orphan_add runs in a handle
      ["i_data_sem", "quota", "group", "buffer"], // allocation charges quota, quota I/O allocates
    ];
    for (const chain of chains) {
      const ranks = chain.map(lockRank);
      expect(ranks, chain.join(" -> ")).toEqual([...ranks].sort((a, b) => a - b));
    }
  });
});

describe("lock-order checker", { timeout: 5000 }, () => {
  const inode = (ino: number, domain = createSyncDomain()) => ({
    i_rwsem: new RwLock("i_rwsem", { name: `i_rwsem ino ${ino}`, domain }),
    xattr_sem: new RwLock("xattr_sem", { name: `xattr_sem ino ${ino}`, domain }),
    i_data_sem: new RwLock("i_data_sem", { name: `i_data_sem ino ${ino}`, domain }),
  });

  it("accepts the documented order", async () => {
    const i = inode(12);
    const t = new Task("write ino 12");
    await i.i_rwsem.lock(t);
    await i.xattr_sem.readLock(t);
    await i.i_data_sem.lock(t);
    i.i_data_sem.unlock(t);
    i.xattr_sem.readUnlock(t);
    i.i_rwsem.unlock(t);
  });

  it("an inversion is an AssertionError naming both locks and the task", async () => {
    const i = inode(12);
    const t = new Task("writeback ino 12");
    await i.i_data_sem.lock(t);
    let err: unknown;
    try {
      await i.i_rwsem.lock(t);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AssertionError);
    expect(String(err)).toMatch(/Lock order violation: task \d+ "writeback ino 12".* acquires i_rwsem ino 12 .* while holding i_data_sem ino 12 .*i_rwsem must be taken before i_data_sem/);
    // nothing was taken or queued
    expect(i.i_rwsem.locked).toBe(false);
    expect(t.waiting).toBeNull();
    i.i_data_sem.unlock(t);
  });

  it("checks read acquisitions too (a held rwsem still blocks a writer elsewhere)", async () => {
    const i = inode(12);
    const t = new Task("t");
    await i.i_data_sem.readLock(t);
    expect(() => i.xattr_sem.readLock(t)).toThrow(/xattr_sem must be taken before i_data_sem/);
    expect(() => i.i_rwsem.read(t, () => 0)).toThrow(AssertionError);
    i.i_data_sem.readUnlock(t);
  });

  it("exempts trylock: under i_data_sem, xattr_sem may only be try-locked (ext4_try_to_expand_extra_isize)", async () => {
    const i = inode(12);
    const t = new Task("mark_inode_dirty ino 12");
    await i.i_data_sem.lock(t);
    expect(() => i.xattr_sem.lock(t)).toThrow(AssertionError);
    expect(i.xattr_sem.tryWrite(t)).toBe(true);
    i.xattr_sem.unlock(t);
    i.i_data_sem.unlock(t);
  });

  it("counts a try-locked lock as held for later blocking acquires", () => {
    const i = inode(12);
    const t = new Task("t");
    expect(i.i_data_sem.tryWrite(t)).toBe(true);
    expect(() => i.i_rwsem.lock(t)).toThrow(/while holding i_data_sem ino 12/);
    i.i_data_sem.unlock(t);
  });

  it("two locks of one class nest only with a rising subclass", async () => {
    const dir = inode(2);
    const child = inode(12);
    const t = new Task("unlink /a");
    await dir.i_rwsem.lock(t);
    expect(() => child.i_rwsem.lock(t)).toThrow(/two i_rwsem locks nest only with a higher subclass/);
    dir.i_rwsem.unlock(t);

    await dir.i_rwsem.lock(t, I_MUTEX_PARENT);
    await child.i_rwsem.lock(t, I_MUTEX_CHILD);
    child.i_rwsem.unlock(t);
    dir.i_rwsem.unlock(t);

    await child.i_rwsem.lock(t, I_MUTEX_CHILD);
    expect(() => dir.i_rwsem.lock(t, I_MUTEX_PARENT)).toThrow(/subclass 1\) while holding i_rwsem ino 12 \(class i_rwsem, subclass 3\)/);
    child.i_rwsem.unlock(t);
  });

  it("allows rename's four i_rwsem locks in subclass order after the rename mutex", async () => {
    const domain = createSyncDomain();
    const renameMutex = new Mutex("rename", { domain });
    const [p1, p2, src, dst] = [inode(2, domain), inode(11, domain), inode(12, domain), inode(13, domain)];
    const t = new Task("rename /a/x /b/y");
    await renameMutex.lock(t);
    await p1.i_rwsem.lock(t, I_MUTEX_PARENT);
    await p2.i_rwsem.lock(t, I_MUTEX_PARENT2);
    await src.i_rwsem.lock(t, I_MUTEX_CHILD);
    await dst.i_rwsem.lock(t, I_MUTEX_NONDIR2);
    await src.i_data_sem.lock(t); // then the per-inode inner locks
    expect(t.held).toHaveLength(6);
    for (const l of [src.i_data_sem, dst.i_rwsem, src.i_rwsem, p2.i_rwsem, p1.i_rwsem, renameMutex]) l.unlock(t);
    expect(t.held).toEqual([]);
  });

  it("unlocking out of order is fine, and the order is checked against what is still held", async () => {
    const i = inode(12);
    const t = new Task("t");
    await i.i_rwsem.lock(t);
    await i.i_data_sem.lock(t);
    i.i_rwsem.unlock(t);
    expect(() => i.xattr_sem.lock(t)).toThrow(AssertionError); // i_data_sem still held
    i.i_data_sem.unlock(t);
    await i.xattr_sem.lock(t);
    i.xattr_sem.unlock(t);
  });

  it("can be turned off per volume (benchmarks); reentrancy is still caught", async () => {
    const domain = createSyncDomain({ lockdep: false });
    const i = inode(12, domain);
    const t = new Task("t");
    await i.i_data_sem.lock(t);
    await i.i_rwsem.lock(t);
    expect(() => i.i_rwsem.lock(t)).toThrow(/not reentrant/);
    i.i_rwsem.unlock(t);
    i.i_data_sem.unlock(t);
    domain.lockdep = true; // the flag is read at each acquire
    await i.i_data_sem.lock(t);
    expect(() => i.i_rwsem.lock(t)).toThrow(/Lock order violation/);
    i.i_data_sem.unlock(t);
  });
});
