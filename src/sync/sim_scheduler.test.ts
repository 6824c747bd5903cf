import { describe, expect, it } from "vitest";
import { createSyncDomain, Mutex } from "./rwlock.js";
import { SimScheduler, type SimRun, type Strategy } from "./sim_scheduler.js";
import { Task, TaskRegistry } from "./task.js";

const immediate = (): Promise<void> => new Promise<void>((r) => setImmediate(r));

/**
 * Three tasks, each appending its name at every step (a point between steps), and one
 * mutex-protected critical section each: the order of `log` is the interleaving.
 */
async function workload(sim: SimScheduler, log: string[]): Promise<void> {
  const reg = new TaskRegistry();
  const domain = createSyncDomain({ scheduler: sim, clock: sim, tasks: reg });
  const m = new Mutex("rename", { domain });
  const one = async (name: string): Promise<void> => {
    const t = new Task(name, reg);
    for (let i = 0; i < 4; i++) {
      await sim.point(t, `step ${i}`);
      log.push(`${name}${i}`);
    }
    await m.run(t, () => {
      log.push(`${name}:locked`);
    });
    t.finish();
  };
  await Promise.all(["a", "b", "c"].map(one));
}

async function runWith(strategy: Strategy, seed: number): Promise<{ run: SimRun; log: string[] }> {
  const sim = new SimScheduler({ strategy, seed, macrotask: immediate, keepDecisions: true });
  const log: string[] = [];
  const run = await sim.run(() => workload(sim, log));
  return { run, log };
}

describe("SimScheduler", () => {
  it("one seed gives one interleaving, every time; other seeds give others", async () => {
    const first = await runWith({ kind: "random" }, 7);
    const again = await runWith({ kind: "random" }, 7);
    expect(first.run.outcome).toBe("done");
    expect(again.log).toEqual(first.log);
    expect(again.run.decisions).toEqual(first.run.decisions);
    const logs = new Set<string>();
    for (let seed = 1; seed <= 10; seed++) logs.add((await runWith({ kind: "random" }, seed)).log.join(" "));
    expect(logs.size).toBeGreaterThan(5);
  });

  it("replaying the deviations of a run reproduces it exactly", async () => {
    for (const strategy of [{ kind: "random" }, { kind: "pct", depth: 3, expectedSteps: 20 }] as const) {
      const orig = await runWith(strategy, 3);
      expect(orig.run.deviations.length).toBeGreaterThan(0);
      const replay = await runWith({ kind: "replay", deviations: orig.run.deviations }, 999);
      expect(replay.log).toEqual(orig.log);
      expect(replay.run.deviations).toEqual(orig.run.deviations);
    }
  });

  it("the default order is non-preemptive: each task runs until it blocks, oldest first", async () => {
    const { run, log } = await runWith({ kind: "replay", deviations: [] }, 1);
    expect(run.deviations).toEqual([]);
    // All three start synchronously and stop at their first point; then a runs to its end, b, c.
    expect(log).toEqual(["a0", "a1", "a2", "a3", "a:locked", "b0", "b1", "b2", "b3", "b:locked", "c0", "c1", "c2", "c3", "c:locked"]);
  });

  it("PCT with depth 1 runs threads in priority order without preemption", async () => {
    const { log } = await runWith({ kind: "pct", depth: 1, expectedSteps: 100 }, 5);
    const order = log.filter((s) => s.endsWith(":locked")).map((s) => s[0]);
    // Each thread's steps are contiguous: no change point, so a thread runs until it finishes.
    const firsts = log.map((s) => s[0]!);
    const runs = firsts.filter((x, i) => i === 0 || firsts[i - 1] !== x);
    expect(runs).toEqual(order);
  });

  it("reports a deadlock instead of hanging", async () => {
    // t1 takes x; then (the one context switch) t2 takes y; each then wants the other's lock.
    const sim = new SimScheduler({ strategy: { kind: "replay", deviations: [{ step: 1, thread: 2, nth: 0 }] }, seed: 1, macrotask: immediate });
    const reg = new TaskRegistry();
    const domain = createSyncDomain({ scheduler: sim, clock: sim, tasks: reg, lockdep: false });
    const x = new Mutex("rename", { domain, name: "x" });
    const y = new Mutex("quota", { domain, name: "y" });
    const t1 = new Task("t1", reg);
    const t2 = new Task("t2", reg);
    const run = await sim.run(async () => {
      const a = (async (): Promise<void> => {
        await x.lock(t1);
        await sim.point(t1, "between");
        await y.lock(t1);
      })();
      const b = (async (): Promise<void> => {
        await y.lock(t2);
        await sim.point(t2, "between");
        await x.lock(t2);
      })();
      await Promise.all([a, b]);
    });
    expect(run.outcome).toBe("deadlock");
    expect(reg.describe()).toMatch(/task 1 "t1": holds x \(write\); waits for y/);
  });

  it("timers fire when nothing else can run, and advance the virtual clock", async () => {
    const sim = new SimScheduler({ strategy: { kind: "replay", deviations: [] }, seed: 1, macrotask: immediate });
    const t = new Task("t", new TaskRegistry());
    const log: string[] = [];
    const t0 = sim.now();
    const run = await sim.run(async () => {
      await new Promise<void>((resolve) => {
        sim.setTimer(5000, () => {
          log.push(`timer at +${sim.now() - t0}`);
          resolve();
        });
        void (async (): Promise<void> => {
          for (let i = 0; i < 3; i++) {
            await sim.point(t, "work");
            log.push(`work ${i} at +${sim.now() - t0}`);
          }
        })();
      });
    });
    expect(run.outcome).toBe("done");
    expect(log).toEqual(["work 0 at +0", "work 1 at +0", "work 2 at +0", "timer at +5000"]);
    expect(run.elapsedMs).toBe(5000);
  });

  it("points pass straight through outside run()", () => {
    const sim = new SimScheduler({ strategy: { kind: "random" }, seed: 1 });
    expect(sim.point(null, "io:read")).toBeUndefined();
  });
});
