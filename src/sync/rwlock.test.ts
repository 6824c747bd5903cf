import { describe, expect, it } from "vitest";
import { AssertionError } from "../debug/assert.js";
import { I_MUTEX_PARENT, I_MUTEX_PARENT2 } from "./lock_order.js";
import { Mutex, RwLock, createSyncDomain } from "./rwlock.js";
import { Task } from "./task.js";

/** Lets every pending microtask (and the ones they queue) run. */
const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** An already-resolved promise: awaiting it costs exactly one microtask. */
const tick = (): Promise<void> => Promise.resolve();

const tasks = (n: number): Task[] => Array.from({ length: n }, (_, i) => new Task(`t${i}`));

describe("Mutex", { timeout: 5000 }, () => {
  it("serves waiters in arrival order", async () => {
    const m = new Mutex("orphan");
    const [t0, t1, t2, t3] = tasks(4) as [Task, Task, Task, Task];
    const order: string[] = [];
    await m.lock(t0);
    const waits = [t1, t2, t3].map(async (t) => {
      await m.lock(t);
      order.push(t.label);
      await drain(); // hold it across a macrotask, so the next one really waits
      m.unlock(t);
    });
    await drain();
    expect(m.waiters).toEqual([t1, t2, t3]);
    m.unlock(t0);
    await Promise.all(waits);
    expect(order).toEqual(["t1", "t2", "t3"]);
    expect(m.locked).toBe(false);
  });

  it("hands the lock to the next waiter at unlock, so a newcomer cannot barge in", async () => {
    const m = new Mutex("orphan");
    const [a, b, c] = tasks(3) as [Task, Task, Task];
    await m.lock(a);
    const bGot = m.lock(b);
    m.unlock(a);
    // b has not resumed yet, but it owns the lock already
    expect(m.holders).toEqual([b]);
    expect(m.tryLock(c)).toBe(false);
    const cGot = m.lock(c);
    await bGot;
    expect(m.waiters).toEqual([c]);
    m.unlock(b);
    await cGot;
    expect(m.holders).toEqual([c]);
    m.unlock(c);
  });

  it("run() releases the lock when fn throws, and passes the error on", async () => {
    const m = new Mutex("orphan");
    const t = new Task("t");
    await expect(
      m.run(t, () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(m.locked).toBe(false);
    expect(t.held).toEqual([]);
    await expect(m.run(t, () => Promise.resolve(42))).resolves.toBe(42);
  });

  it("tryLock() succeeds only when free with nobody waiting", async () => {
    const m = new Mutex("orphan");
    const [a, b, c] = tasks(3) as [Task, Task, Task];
    expect(m.tryLock(a)).toBe(true);
    expect(m.tryLock(b)).toBe(false);
    const bGot = m.lock(b);
    m.unlock(a);
    expect(m.tryLock(c)).toBe(false); // handed to b
    await bGot;
    m.unlock(b);
    expect(m.tryLock(c)).toBe(true);
    m.unlock(c);
  });

  it("re-acquiring a held lock is an AssertionError, not a deadlock", async () => {
    const m = new Mutex("orphan", { name: "orphan list" });
    const t = new Task("unlink ino 12");
    await m.lock(t);
    expect(() => m.lock(t)).toThrow(AssertionError);
    expect(() => m.lock(t)).toThrow(/task \d+ "unlink ino 12".*cannot acquire orphan list.*not reentrant/);
    expect(() => m.tryLock(t)).toThrow(AssertionError);
    expect(() => m.run(t, () => 1)).toThrow(AssertionError); // thrown at the call, with its stack
    m.unlock(t);
  });

  it("unlock by a task that does not hold it is an AssertionError", async () => {
    const m = new Mutex("orphan");
    const [a, b] = tasks(2) as [Task, Task];
    expect(() => m.unlock(a)).toThrow(AssertionError);
    await m.lock(a);
    expect(() => m.unlock(b)).toThrow(/unlocks orphan \(write\), which it does not hold/);
    m.unlock(a);
  });

  it("a task that is already acquiring a lock cannot start acquiring another (one task = one sequential operation)", async () => {
    const m1 = new Mutex("orphan");
    const m2 = new Mutex("group");
    const [a, b] = tasks(2) as [Task, Task];
    await m1.lock(a);
    const bGot = m1.lock(b);
    expect(() => m2.lock(b)).toThrow(/already acquiring orphan/);
    m1.unlock(a);
    await bGot;
    m1.unlock(b);
  });

  it("records held locks on the task, and Task.finish() catches a leaked lock", async () => {
    const m = new Mutex("orphan");
    const t = new Task("leaky");
    await m.lock(t);
    expect(t.held.map((h) => [h.lock, h.mode])).toEqual([[m, "write"]]);
    expect(() => t.finish()).toThrow(/leaky.*holds orphan \(write\).*release every lock/);
    m.unlock(t);
    t.finish();
    expect(() => m.lock(t)).toThrow(/task has finished/);
  });
});

describe("RwLock", { timeout: 5000 }, () => {
  it("admits readers that arrive together at once, and one writer at a time", async () => {
    const l = new RwLock("i_data_sem");
    const [r1, r2, w] = tasks(3) as [Task, Task, Task];
    await Promise.all([l.readLock(r1), l.readLock(r2)]);
    expect(l.holders).toEqual([r1, r2]);
    const wGot = l.lock(w);
    await drain();
    expect(l.holders).toEqual([r1, r2]);
    l.readUnlock(r1);
    await drain();
    expect(l.waiters).toEqual([w]); // one reader left
    l.readUnlock(r2);
    await wGot;
    expect(l.holders).toEqual([w]);
    l.unlock(w);
  });

  it("a waiting writer blocks readers that arrive after it (no writer starvation)", async () => {
    const l = new RwLock("i_data_sem");
    const [r1, w, r2, r3] = tasks(4) as [Task, Task, Task, Task];
    await l.readLock(r1);
    const order: string[] = [];
    const wDone = l.write(w, () => order.push("w"));
    const r2Done = l.read(r2, () => order.push("r2"));
    await drain();
    expect(l.holders).toEqual([r1]); // r2 did not join r1
    expect(l.waiters).toEqual([w, r2]);
    expect(l.tryRead(r3)).toBe(false);
    l.readUnlock(r1);
    await Promise.all([wDone, r2Done]);
    expect(order).toEqual(["w", "r2"]);
  });

  it("batches the readers queued between two writers, and only those", async () => {
    const l = new RwLock("i_rwsem");
    const [w1, r1, r2, w2, r3] = tasks(5) as [Task, Task, Task, Task, Task];
    await l.lock(w1);
    const got = new Map<string, Promise<void>>();
    got.set("r1", l.readLock(r1));
    got.set("r2", l.readLock(r2));
    got.set("w2", l.lock(w2));
    got.set("r3", l.readLock(r3));
    l.unlock(w1);
    await Promise.all([got.get("r1"), got.get("r2")]);
    expect(l.holders).toEqual([r1, r2]);
    expect(l.waiters).toEqual([w2, r3]);
    l.readUnlock(r2);
    l.readUnlock(r1);
    await got.get("w2");
    expect(l.holders).toEqual([w2]);
    expect(l.waiters).toEqual([r3]);
    l.unlock(w2);
    await got.get("r3");
    expect(l.holders).toEqual([r3]);
    l.readUnlock(r3);
    expect(l.locked).toBe(false);
  });

  it("tryRead()/tryWrite() outcomes", async () => {
    const l = new RwLock("xattr_sem");
    const [a, b, c] = tasks(3) as [Task, Task, Task];
    expect(l.tryRead(a)).toBe(true);
    expect(l.tryRead(b)).toBe(true); // readers share
    expect(l.tryWrite(c)).toBe(false);
    l.readUnlock(a);
    l.readUnlock(b);
    expect(l.tryWrite(c)).toBe(true);
    expect(l.tryRead(a)).toBe(false);
    expect(l.tryLock(a)).toBe(false);
    const aGot = l.readLock(a);
    l.unlock(c);
    await aGot;
    l.readUnlock(a);
    expect(l.locked).toBe(false);
  });

  it("is not reentrant in either mode", async () => {
    const l = new RwLock("i_data_sem", { name: "i_data_sem ino 12" });
    const t = new Task("map ino 12");
    await l.readLock(t);
    expect(() => l.readLock(t)).toThrow(/cannot acquire i_data_sem ino 12 \(read\).*not reentrant/);
    expect(() => l.lock(t)).toThrow(AssertionError);
    expect(() => l.tryRead(t)).toThrow(AssertionError);
    l.readUnlock(t);
    await l.lock(t);
    expect(() => l.readLock(t)).toThrow(AssertionError);
    expect(() => l.tryWrite(t)).toThrow(AssertionError);
    l.unlock(t);
  });

  it("unlock in the wrong mode or by a non-holder is an AssertionError", async () => {
    const l = new RwLock("i_data_sem");
    const [a, b] = tasks(2) as [Task, Task];
    await l.readLock(a);
    expect(() => l.unlock(a)).toThrow(/unlocks i_data_sem \(write\)/);
    expect(() => l.readUnlock(b)).toThrow(/unlocks i_data_sem \(read\)/);
    l.readUnlock(a);
    expect(() => l.readUnlock(a)).toThrow(AssertionError);
  });

  it("assertHeld() checks the mode, like lockdep_assert_held_write", async () => {
    const l = new RwLock("i_data_sem");
    const t = new Task("t");
    expect(() => l.assertHeld(t)).toThrow(/expected to hold i_data_sem/);
    await l.readLock(t);
    l.assertHeld(t);
    l.assertHeld(t, "read");
    expect(() => l.assertHeld(t, "write")).toThrow(/for write/);
    l.readUnlock(t);
  });

  it("describe() names holders and waiters", async () => {
    const l = new RwLock("i_rwsem", { name: "i_rwsem ino 12" });
    const [a, b] = [new Task("write ino 12"), new Task("truncate ino 12")];
    await l.readLock(a);
    const bGot = l.lock(b);
    expect(l.describe()).toBe(`i_rwsem ino 12: read-held by ${a.name()}; waiting: ${b.name()} (write)`);
    expect(b.describe()).toBe(`${b.name()}: holds nothing; waits for i_rwsem ino 12 (write) behind ${a.name()}`);
    l.readUnlock(a);
    await bGot;
    expect(l.describe()).toBe(`i_rwsem ino 12: write-held by ${b.name()}`);
    l.unlock(b);
    expect(l.describe()).toBe("i_rwsem ino 12: free");
  });
});

describe("uncontended cost", { timeout: 5000 }, () => {
  it("await lock() on a free lock resumes after one microtask", async () => {
    const m = new Mutex("orphan");
    const l = new RwLock("i_data_sem");
    const t = new Task("t");
    const steps: string[] = [];
    const op = (async () => {
      await m.lock(t);
      steps.push("mutex");
      await l.readLock(t);
      steps.push("read");
      l.readUnlock(t);
      await l.lock(t);
      steps.push("write");
    })();
    // Each `await tick()` below is one microtask; the op must keep pace, one lock per tick.
    await tick();
    expect(steps).toEqual(["mutex"]);
    await tick();
    expect(steps).toEqual(["mutex", "read"]);
    await tick();
    expect(steps).toEqual(["mutex", "read", "write"]);
    await op;
    l.unlock(t);
    m.unlock(t);
  });

  it("run()/read()/write() call fn synchronously when the lock is free", async () => {
    const m = new Mutex("orphan");
    const l = new RwLock("i_data_sem");
    const t = new Task("t");
    let calls = 0;
    const p1 = m.run(t, () => ++calls);
    expect(calls).toBe(1);
    await p1;
    const p2 = l.read(t, () => ++calls);
    const u = new Task("u");
    const p3 = l.read(u, () => ++calls); // readers share: also synchronous
    expect(calls).toBe(3);
    await Promise.all([p2, p3]);
    const p4 = l.write(t, () => ++calls);
    expect(calls).toBe(4);
    await p4;
    expect(l.locked || m.locked).toBe(false);
  });

  it("a contended lock is handed over without polling: the waiter resumes within a few microtasks of unlock", async () => {
    const m = new Mutex("orphan");
    const [a, b] = tasks(2) as [Task, Task];
    await m.lock(a);
    let got = false;
    const bDone = m.lock(b).then(() => {
      got = true;
    });
    await drain();
    expect(got).toBe(false);
    m.unlock(a);
    await tick();
    await tick();
    expect(got).toBe(true);
    await bDone;
    m.unlock(b);
  });
});

describe("deadlock detection", { timeout: 5000 }, () => {
  it("the task that would close a cycle of waits gets an AssertionError naming the cycle", async () => {
    const domain = createSyncDomain();
    const x = new RwLock("i_rwsem", { name: "i_rwsem ino 5", domain });
    const y = new RwLock("i_rwsem", { name: "i_rwsem ino 7", domain });
    const a = new Task("rename a");
    const b = new Task("rename b");
    // Subclasses are consistent, so the order checker cannot see this (ino order is the caller's job).
    await x.lock(a, I_MUTEX_PARENT);
    await y.lock(b, I_MUTEX_PARENT);
    const aGot = y.lock(a, I_MUTEX_PARENT2);
    let err: unknown;
    try {
      await x.lock(b, I_MUTEX_PARENT2);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AssertionError);
    expect(String(err)).toMatch(/Deadlock: task \d+ "rename b" would wait for i_rwsem ino 5 \(write\), but task \d+ "rename a" waits for task \d+ "rename b"/);
    expect(String(err)).toContain(`${a.name()}: holds i_rwsem ino 5 (write); waits for i_rwsem ino 7 (write) behind ${b.name()}`);
    // b backs off; a proceeds
    expect(b.waiting).toBeNull();
    y.unlock(b);
    await aGot;
    y.unlock(a);
    x.unlock(a);
  });

  it("is off with lockdep off (the waiter then just waits)", async () => {
    const domain = createSyncDomain({ lockdep: false });
    const x = new Mutex("orphan", { domain });
    const y = new Mutex("group", { domain });
    const [a, b] = tasks(2) as [Task, Task];
    await x.lock(a);
    await y.lock(b);
    void y.lock(a);
    let settled = false;
    void x.lock(b).then(() => (settled = true));
    await drain();
    expect(settled).toBe(false);
    expect(x.waiters).toEqual([b]);
  });
});
