import { describe, expect, it } from "vitest";
import { Mutex, RwLock, createSyncDomain } from "./rwlock.js";
import { ControlledScheduler, noScheduler, type Scheduler } from "./scheduler.js";
import { Task } from "./task.js";

const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A read-modify-write with a scheduling point between the read and the write, as engine code has. */
async function increment(sched: Scheduler, task: Task, state: { value: number; log: string[] }): Promise<void> {
  const before = state.value;
  const p = sched.point(task, "between read and write");
  if (p) await p;
  state.value = before + 1;
  state.log.push(`${task.label} wrote ${state.value}`);
}

describe("noScheduler", { timeout: 5000 }, () => {
  it("returns undefined, so call sites pay no await", () => {
    expect(noScheduler.point(new Task("t"), "x")).toBeUndefined();
    expect(noScheduler.point(null, "x")).toBeUndefined();
  });
});

describe("ControlledScheduler", { timeout: 5000 }, () => {
  it("lets unmatched points pass straight through", () => {
    const s = new ControlledScheduler();
    s.pauseAt("elsewhere");
    expect(s.point(new Task("t"), "here")).toBeUndefined();
  });

  it("holds one task at a point while another runs to completion and observes the half-done state", async () => {
    const s = new ControlledScheduler();
    const state = { value: 0, log: [] as string[] };
    const [a, b] = [new Task("A"), new Task("B")];
    const gate = s.pauseAt("between read and write", (t) => t === a);
    const aDone = increment(s, a, state);
    expect(await gate.reached).toBe(a);
    expect(a.pausedAt).toBe("between read and write");
    expect(a.describe()).toContain("paused at between read and write");
    await increment(s, b, state); // B is not matched by the filter: runs through
    expect(state.log).toEqual(["B wrote 1"]);
    gate.release();
    await aDone;
    // Without a lock, the pause exposes the lost update: A wrote from its stale read.
    expect(state.log).toEqual(["B wrote 1", "A wrote 1"]);
    expect(a.pausedAt).toBeNull();
  });

  it("with a lock around the section, the other task waits and no update is lost", async () => {
    const s = new ControlledScheduler();
    const domain = createSyncDomain({ scheduler: s });
    const m = new Mutex("i_data_sem", { domain });
    const state = { value: 0, log: [] as string[] };
    const [a, b] = [new Task("A"), new Task("B")];
    const gate = s.pauseAt("between read and write");
    const aDone = m.run(a, () => increment(s, a, state));
    await gate.reached;
    const bDone = m.run(b, () => increment(s, b, state));
    await drain();
    expect(state.log).toEqual([]); // B is queued behind A, which is paused holding the lock
    expect(m.waiters).toEqual([b]);
    gate.release();
    await Promise.all([aDone, bDone]);
    expect(state.log).toEqual(["A wrote 1", "B wrote 2"]);
  });

  it("locks call the point lock:<class> before acquiring, so a task can be paused just before it gets a lock", async () => {
    const s = new ControlledScheduler();
    const domain = createSyncDomain({ scheduler: s });
    const l = new RwLock("i_data_sem", { name: "i_data_sem ino 12", domain });
    const [a, b] = [new Task("A"), new Task("B")];
    const gate = s.pauseAt("lock:i_data_sem", (t) => t === a);
    const events: string[] = [];
    const aDone = l.write(a, () => {
      events.push("A in");
    });
    expect(await gate.reached).toBe(a);
    expect(l.locked).toBe(false); // paused before acquiring: the lock stays free
    expect(a.describe()).toContain("waits for i_data_sem ino 12 (write); paused at lock:i_data_sem");
    await l.write(b, () => {
      events.push("B in");
    });
    expect(events).toEqual(["B in"]);
    gate.release();
    await aDone;
    expect(events).toEqual(["B in", "A in"]);
  });

  it("matches labels by RegExp, and holds only the first arrival", async () => {
    const s = new ControlledScheduler();
    const [a, b] = [new Task("A"), new Task("B")];
    const gate = s.pauseAt(/^io:/);
    const pa = s.point(a, "io:read block 5");
    expect(pa).toBeInstanceOf(Promise);
    expect(s.point(b, "io:read block 6")).toBeUndefined(); // one-shot
    expect(gate.holding).toBe(a);
    let resumed = false;
    void pa?.then(() => (resumed = true));
    await drain();
    expect(resumed).toBe(false);
    gate.release();
    await drain();
    expect(resumed).toBe(true);
    expect(gate.holding).toBeNull();
  });

  it("a gate released before anyone reaches it is disarmed", () => {
    const s = new ControlledScheduler();
    const gate = s.pauseAt("x");
    gate.release();
    expect(s.point(new Task("t"), "x")).toBeUndefined();
  });

  it("points with no task never match a gate", () => {
    const s = new ControlledScheduler();
    s.pauseAt("flush");
    expect(s.point(null, "flush")).toBeUndefined();
  });

  it("yieldEvery turns every point into a microtask, which shakes out the unlocked race", async () => {
    const run = async (yieldEvery: boolean): Promise<number> => {
      const s = new ControlledScheduler({ yieldEvery });
      const state = { value: 0, log: [] as string[] };
      await Promise.all([increment(s, new Task("A"), state), increment(s, new Task("B"), state)]);
      return state.value;
    };
    expect(await run(false)).toBe(2); // each increment runs start to end
    expect(await run(true)).toBe(1); // interleaved at the point: a lost update
  });

  it("records a trace of the points passed", async () => {
    const s = new ControlledScheduler({ trace: true });
    const domain = createSyncDomain({ scheduler: s });
    const m = new Mutex("orphan", { domain });
    const t = new Task("unlink ino 12");
    await m.run(t, () => s.point(t, "orphan:add"));
    void s.point(null, "flush");
    expect(s.trace).toEqual([`${t.name()} @ lock:orphan`, `${t.name()} @ orphan:add`, "no task @ flush"]);
  });

  it("with yieldEvery, FIFO order still holds among tasks contending for a lock", async () => {
    const s = new ControlledScheduler({ yieldEvery: true });
    const m = new Mutex("orphan", { domain: createSyncDomain({ scheduler: s }) });
    const order: string[] = [];
    const ts = ["A", "B", "C", "D"].map((l) => new Task(l));
    await Promise.all(
      ts.map((t) =>
        m.run(t, async () => {
          order.push(`${t.label} in`);
          const p = s.point(t, "work");
          if (p) await p;
          order.push(`${t.label} out`);
        }),
      ),
    );
    expect(order).toEqual(["A in", "A out", "B in", "B out", "C in", "C out", "D in", "D out"]);
  });
});
