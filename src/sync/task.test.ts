import { describe, expect, it } from "vitest";
import { AssertionError } from "../debug/assert.js";
import { Mutex, RwLock } from "./rwlock.js";
import { Task, TaskRegistry } from "./task.js";

describe("Task", { timeout: 5000 }, () => {
  it("numbers tasks from 1 per registry and leaves the registry at finish", () => {
    const reg = new TaskRegistry();
    const a = new Task("write ino 12", reg);
    const b = new Task("stat /a", reg);
    expect([a.id, b.id]).toEqual([1, 2]);
    expect([...reg.live]).toEqual([a, b]);
    a.finish();
    expect([...reg.live]).toEqual([b]);
    expect(a.finished).toBe(true);
    b.finish();
    expect(reg.describe()).toBe("no tasks");
  });

  it("tasks without a registry get distinct ids", () => {
    const a = new Task("a");
    const b = new Task("b");
    expect(a.id).not.toBe(b.id);
  });

  it("holds() and held follow acquisitions and releases in any order", async () => {
    const m = new Mutex("orphan");
    const l = new RwLock("i_data_sem");
    const t = new Task("t");
    await m.lock(t);
    await l.readLock(t);
    expect(t.holds(m)).toBe(true);
    expect(t.holds(l, "read")).toBe(true);
    expect(t.holds(l, "write")).toBe(false);
    m.unlock(t); // not LIFO
    expect(t.held.map((h) => h.lock)).toEqual([l]);
    l.readUnlock(t);
    expect(t.held).toEqual([]);
  });

  it("a registry describes who holds what and who waits behind whom", async () => {
    const reg = new TaskRegistry();
    const i_rwsem = new RwLock("i_rwsem", { name: "i_rwsem ino 12" });
    const i_data_sem = new RwLock("i_data_sem", { name: "i_data_sem ino 12" });
    const writer = new Task("write ino 12", reg);
    const wb = new Task("writeback ino 12", reg);
    const trunc = new Task("truncate ino 12", reg);
    await i_rwsem.lock(writer);
    await i_data_sem.readLock(writer);
    const wbGot = i_data_sem.lock(wb);
    const truncGot = i_rwsem.lock(trunc);
    expect(reg.describe().split("\n")).toEqual([
      'task 1 "write ino 12": holds i_rwsem ino 12 (write), i_data_sem ino 12 (read)',
      'task 2 "writeback ino 12": holds nothing; waits for i_data_sem ino 12 (write) behind task 1 "write ino 12"',
      'task 3 "truncate ino 12": holds nothing; waits for i_rwsem ino 12 (write) behind task 1 "write ino 12"',
    ]);
    i_data_sem.readUnlock(writer);
    i_rwsem.unlock(writer);
    writer.finish();
    await Promise.all([wbGot, truncGot]);
    expect(reg.describe().split("\n")).toEqual([
      'task 2 "writeback ino 12": holds i_data_sem ino 12 (write)',
      'task 3 "truncate ino 12": holds i_rwsem ino 12 (write)',
    ]);
    i_data_sem.unlock(wb);
    i_rwsem.unlock(trunc);
  });

  it("finish() while waiting for a lock is an AssertionError", async () => {
    const m = new Mutex("orphan");
    const [a, b] = [new Task("a"), new Task("b")];
    await m.lock(a);
    const bGot = m.lock(b);
    expect(() => b.finish()).toThrow(AssertionError);
    m.unlock(a);
    await bGot;
    m.unlock(b);
    b.finish();
  });
});
