/**
 * The explorer's power, measured: the seed's bug (an allocator that decides how to charge a
 * block from shared per-inode state, test/shared_state_alloc.ts) must be caught within the
 * default budget for every seed tried, and the real engine must pass the same budget. The
 * number of schedules each seed needed is printed, for the README and the issue's note.
 */

import { afterAll, describe, expect, it } from "vitest";
import { sharedStateDeps } from "../../test/shared_state_alloc.js";
import { DEFAULT_SCHEDULES, explore, runSchedule, type ExploreOptions } from "./explore.js";
import { imageBytesFor, streamImage } from "./memory_image.js";
import { expectedState, planStreamtest } from "./streamtest.js";

const WORKLOAD = { workers: 3, flushers: 2, objects: 6, objectBytes: 16384, updates: 2, syncs: 1 };
const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];

let image: Uint8Array | null = null;
async function base(): Promise<Omit<ExploreOptions, "seed" | "schedules">> {
  if (image === null) {
    const dev = await streamImage(imageBytesFor(WORKLOAD));
    image = await dev.read(0, dev.size);
  }
  return { strategy: "mixed", depth: 3, workloads: [WORKLOAD], image, uid: 1000, gid: 1000 };
}

const found: string[] = [];
afterAll(() => {
  if (found.length > 0) console.log(`schedules to catch the shared-state allocator (budget ${DEFAULT_SCHEDULES}):\n${found.join("\n")}`);
});

describe("the plan is a function of the seed; the final state does not depend on the interleaving", () => {
  it("same seed, same plan and model; another seed, another plan", () => {
    const a = planStreamtest({ ...WORKLOAD, seed: 9 });
    const b = planStreamtest({ ...WORKLOAD, seed: 9 });
    expect(JSON.stringify(a.objects)).toBe(JSON.stringify(b.objects));
    expect(expectedState(a).map((s) => s?.path ?? null)).toEqual(expectedState(b).map((s) => s?.path ?? null));
    expect(JSON.stringify(planStreamtest({ ...WORKLOAD, seed: 10 }).objects)).not.toBe(JSON.stringify(a.objects));
    // Every kind of update appears in a few plans' worth of objects.
    const kinds = new Set<string>();
    for (let s = 0; s < 5; s++) for (const o of planStreamtest({ ...WORKLOAD, seed: s }).objects) for (const op of o.ops) kinds.add(op.kind);
    expect([...kinds].sort()).toEqual(["create", "overwrite", "removexattr", "rename", "setxattr", "truncate", "unlink"]);
  });
});

describe("schedule explorer", () => {
  it("a schedule replays exactly: same steps, same context switches, same verdict", async () => {
    const opts = { ...(await base()), seed: 11, schedules: 1 };
    const a = await runSchedule(opts, 4, { kind: "random" }, { fsck: true, oracle: false });
    const b = await runSchedule(opts, 4, { kind: "random" }, { fsck: true, oracle: false });
    expect(a.problems).toEqual([]);
    expect(b.run.steps).toBe(a.run.steps);
    expect(b.run.deviations).toEqual(a.run.deviations);
    const r = await runSchedule(opts, 4, { kind: "replay", deviations: a.run.deviations }, { fsck: true, oracle: false });
    expect(r.run.steps).toBe(a.run.steps);
    expect(r.run.deviations).toEqual(a.run.deviations);
  });

  it.each(SEEDS)(`catches the seed's shared-state allocator within ${DEFAULT_SCHEDULES} schedules (seed %i)`, async (seed) => {
    const rep = await explore({ ...(await base()), seed, schedules: DEFAULT_SCHEDULES, engineDeps: sharedStateDeps, shrinkBudget: seed === 1 ? 400 : 0 });
    expect(rep.failures).toHaveLength(1);
    const f = rep.failures[0]!;
    // The double charge: in-core i_blocks above what the inode references, or (when that
    // inode was truncated or unlinked since) the quota usage above the inodes' sum. Nothing else.
    expect(f.problems.some((p) => /^Q1: inode \d+: i_blocks \d+, references/.test(p) || /^Q5: usr 1000: quota says/.test(p))).toBe(true);
    expect(f.problems.filter((p) => !/^(Q1|Q5|Q7): /.test(p))).toEqual([]);
    found.push(`  seed ${seed}: schedule ${f.index} (${f.index + 1} run), ${f.steps} steps, ${f.deviations} context switches${seed === 1 ? `; shortened to ${f.shortened.length} in ${f.shrinkRuns} replays:\n${f.shortened.map((d) => `    step ${d.step}: ran ${d.who} at ${d.label}, instead of ${d.defaultWho}`).join("\n")}` : ""}`);
    if (seed === 1) {
      // The shortened schedule still fails the same way, and is short.
      expect(f.shortened.length).toBeLessThan(f.deviations);
      expect(f.shortened.length).toBeLessThanOrEqual(12);
      expect(f.shortened.some((d) => /setxattr/.test(d.who) || /setxattr/.test(d.defaultWho))).toBe(true);
      const again = await runSchedule({ ...(await base()), seed, schedules: 1, engineDeps: sharedStateDeps }, f.index, { kind: "replay", deviations: f.shortenedDeviations }, { fsck: true, oracle: false });
      expect(again.problems.some((p) => p.startsWith("Q1:") || p.startsWith("Q5:"))).toBe(true);
    }
  });

  it(`the real engine passes the same budget (${DEFAULT_SCHEDULES} schedules, seed 1)`, async () => {
    const rep = await explore({ ...(await base()), seed: 1, schedules: DEFAULT_SCHEDULES });
    expect(rep.failures.map((f) => f.problems)).toEqual([]);
    expect(rep.schedules).toBe(DEFAULT_SCHEDULES);
    expect(rep.steps).toBeGreaterThan(DEFAULT_SCHEDULES * 100); // the workload really ran
    console.log(`real engine: ${rep.schedules} schedules, ${rep.steps} steps, ${(rep.elapsedMs / 1000).toFixed(1)} s, clean`);
  });
});
