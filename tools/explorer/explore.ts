/**
 * The schedule explorer: runs the streamtest workload again and again on a simulated device
 * (src/device/sim.ts) under a seeded scheduler (src/sync/sim_scheduler.ts), each time in a
 * different interleaving, and checks the invariants after every schedule (invariants.ts:
 * reservations, i_blocks, quota, the project's fsck; the plan's model of every object; on a
 * sample, e2fsck). A failing schedule is replayed with ever fewer deviations from the default
 * (non-preemptive) order (delta debugging), so the report names the few context switches
 * that matter, and a command line that replays it.
 *
 * Schedule i of seed S is fully determined by (S, i): its workload shape (the i-th of
 * `workloads`, cyclically), its plan, its strategy (random walk on even i, PCT on odd i
 * with "mixed") and its scheduler seed.
 */

import { Volume, type VolumeOptions } from "../../src/api/promises.js";
import { SimDevice } from "../../src/device/sim.js";
import { FsError } from "../../src/errors.js";
import { freeBlocksCount } from "../../src/format/superblock.js";
import { inodeTable } from "../../src/fs/inode_core.js";
import type { NameiDeps } from "../../src/fs/namei_write.js";
import type { Ext4Fs } from "../../src/fs/super.js";
import { SimScheduler, type Decision, type Deviation, type SimRun, type Strategy } from "../../src/sync/sim_scheduler.js";
import { checkInvariants } from "./invariants.js";
import { planStreamtest, runStreamtest, verifyStreamtest, type StreamtestOptions } from "./streamtest.js";

export type StrategyName = "random" | "pct" | "mixed";

/**
 * The default budget (`ext4ts stress --explore` without N, and the test suite): enough that
 * the seed's shared-state allocator is caught for every seed tried (explore.test.ts reports
 * how many schedules each took), small enough for CI.
 */
export const DEFAULT_SCHEDULES = 200;

export interface ExploreOptions {
  /** Schedules to run. */
  readonly schedules: number;
  readonly seed: number;
  readonly strategy: StrategyName;
  /** PCT bug depth: ordering constraints a bug may need (default 3). */
  readonly depth: number;
  /** Workload shapes, used in turn; the seed is replaced per schedule. */
  readonly workloads: readonly Omit<StreamtestOptions, "seed">[];
  /** A formatted image; every schedule starts from it (copy-on-write). */
  readonly image: Uint8Array;
  /** Owner of the files the workload creates. */
  readonly uid: number;
  readonly gid: number;
  /** @internal tests: wrap the engine's allocators (the shared-state allocator of the seed). */
  readonly engineDeps?: (deps: NameiDeps) => NameiDeps;
  /**
   * Buffer cache of each explored volume, in bytes (default 256 KiB): small, so blocks are
   * evicted and read again, and every read is a scheduling point.
   */
  readonly cacheBytes?: number;
  /** Run the project's fsck in the invariant check of every n-th schedule (default 1: all). */
  readonly fsckEvery?: number;
  /** An external oracle run on the image of every n-th clean schedule (e2fsck -fn); returns problems. */
  readonly oracle?: { readonly every: number; readonly check: (image: Uint8Array) => Promise<string[]> };
  /** Shorten a failing schedule (default true); at most this many replays (default 400). */
  readonly shrinkBudget?: number;
  /** Stop at the first failing schedule (default true). */
  readonly stopAtFirst?: boolean;
  /** Called after each schedule. */
  readonly onSchedule?: (r: ScheduleResult) => void;
}

export interface ScheduleResult {
  readonly index: number;
  readonly strategy: Strategy["kind"];
  readonly steps: number;
  readonly problems: readonly string[];
  /** Context switches away from the default order. */
  readonly deviations: number;
  readonly oracleRun: boolean;
}

export interface Failure {
  readonly index: number;
  readonly problems: readonly string[];
  readonly steps: number;
  readonly deviations: number;
  /** The shortened schedule: the context switches that remain, with who ran and where. */
  readonly shortened: readonly Decision[];
  /** The same, as the scheduler replays it. */
  readonly shortenedDeviations: readonly Deviation[];
  /** Replays of the shortened schedule that were tried. */
  readonly shrinkRuns: number;
  /** Arguments for `ext4ts stress` that replay the shortened schedule. */
  readonly replay: string;
}

export interface ExploreReport {
  readonly schedules: number;
  readonly steps: number;
  readonly elapsedMs: number;
  readonly failures: readonly Failure[];
  /** Schedules whose image also went through the external oracle. */
  readonly oracleRuns: number;
}

const immediate = (): Promise<void> => new Promise<void>((r) => setImmediate(r));

/** A 32-bit mix of (seed, index, salt): neighbouring schedules get unrelated seeds. */
function mix(seed: number, index: number, salt: number): number {
  let h = (Math.imul(seed ^ 0x2545f491, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77) ^ salt) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39);
  return (h ^ (h >>> 15)) >>> 0;
}

export function strategyOf(opts: Pick<ExploreOptions, "strategy" | "depth">, index: number, expectedSteps: number): Strategy {
  const pct = opts.strategy === "pct" || (opts.strategy === "mixed" && index % 2 === 1);
  return pct ? { kind: "pct", depth: opts.depth, expectedSteps } : { kind: "random" };
}

function describe(e: unknown): string {
  if (e instanceof FsError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return `${e.name}: ${e.message}${e.stack !== undefined ? `\n${e.stack.split("\n").slice(1, 6).join("\n")}` : ""}`;
  return String(e);
}

interface Outcome {
  readonly run: SimRun;
  readonly problems: string[];
  readonly oracleRun: boolean;
}

/** Runs schedule `index` with `strategy` and checks it. */
export async function runSchedule(opts: ExploreOptions, index: number, strategy: Strategy, check: { fsck: boolean; oracle: boolean }): Promise<Outcome> {
  let vol: Volume | null = null;
  const always: { first: string | null } = { first: null }; // the first "always" violation, with its step
  const sim = new SimScheduler({
    strategy,
    seed: mix(opts.seed, index, 0x5eed),
    macrotask: immediate,
    onStep: (step) => {
      if (always.first === null && vol !== null) {
        const bad = alwaysProblems(vol.fs);
        if (bad.length > 0) always.first = `A1: at step ${step}: ${bad.join("; ")}`;
      }
    },
  });
  const dev = new SimDevice(opts.image, sim);
  const volOpts: VolumeOptions = {
    readOnly: false,
    cacheBytes: opts.cacheBytes ?? 256 * 1024,
    uid: opts.uid,
    gid: opts.gid,
    sim: { scheduler: sim, clock: sim },
    now: () => ({ sec: 1_700_000_000 + Math.floor(sim.now() / 1000), nsec: 0 }),
    ...(opts.engineDeps !== undefined ? { engineDeps: opts.engineDeps } : {}),
  };
  const mounted = await Volume.mount(dev, volOpts);
  vol = mounted;
  const plan = planStreamtest({ ...opts.workloads[index % opts.workloads.length]!, seed: mix(opts.seed, index, 0x91a7) });
  const run = await sim.run(async () => {
    await runStreamtest(mounted, plan, () => sim.now());
  });
  const problems: string[] = always.first === null ? [] : [always.first];
  if (run.outcome === "deadlock") {
    problems.push(`deadlock: after ${run.steps} steps: no task can run\n${mounted.fs.syncDomain.tasks.describe()}`);
    return { run, problems, oracleRun: false }; // tasks hold locks: nothing more can be checked
  }
  if (run.outcome === "step-limit") {
    problems.push(`livelock: no end after ${run.steps} steps\n${sim.describePending()}`);
    return { run, problems, oracleRun: false };
  }
  if (run.error !== undefined) problems.push(`error: an operation failed: ${describe(run.error)}`);
  let oracleRun = false;
  try {
    problems.push(...(await checkInvariants(mounted, { fsck: check.fsck })).problems);
    problems.push(...(await verifyStreamtest(mounted, plan)));
    await mounted.unmount();
    if (check.oracle && opts.oracle !== undefined && problems.length === 0) {
      oracleRun = true;
      problems.push(...(await opts.oracle.check(dev.snapshot())));
    }
  } catch (e) {
    problems.push(`error: checking failed: ${describe(e)}`);
  }
  return { run, problems, oracleRun };
}

/**
 * A1 at a scheduling point: the counters another operation could read now are in range
 * (the free count may dip only as far as zero; reservations never below zero).
 */
function alwaysProblems(fs: Ext4Fs): string[] {
  const out: string[] = [];
  if (fs.dirtyClusters < 0) out.push(`dirtyClusters ${fs.dirtyClusters}`);
  const free = freeBlocksCount(fs.sb);
  if (free < 0 || free > fs.blocksCount) out.push(`s_free_blocks_count ${free}`);
  if (fs.dirtyClusters > free) out.push(`dirtyClusters ${fs.dirtyClusters} above the ${free} free`);
  for (const c of inodeTable(fs).all()) if (c.reservedDataBlocks < 0) out.push(`inode ${c.ino}: reservedDataBlocks ${c.reservedDataBlocks}`);
  return out;
}

/** Delta debugging (ddmin) over the deviations: the smallest set found that still fails. */
async function shrink(devs: readonly Deviation[], fails: (d: readonly Deviation[]) => Promise<boolean>, budget: number): Promise<{ devs: readonly Deviation[]; runs: number }> {
  let cur = devs;
  let runs = 0;
  const attempt = async (d: readonly Deviation[]): Promise<boolean> => {
    runs++;
    return fails(d);
  };
  if (cur.length > 0 && (await attempt([]))) return { devs: [], runs };
  let n = 2;
  while (cur.length >= 2 && runs < budget) {
    const size = Math.ceil(cur.length / n);
    let reduced = false;
    for (let i = 0; i < n && runs < budget; i++) {
      const without = [...cur.slice(0, i * size), ...cur.slice((i + 1) * size)];
      if (without.length < cur.length && (await attempt(without))) {
        cur = without;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= cur.length) break;
      n = Math.min(cur.length, n * 2);
    }
  }
  return { devs: cur, runs };
}

/** `STEP:THREAD[.NTH],...`, as `ext4ts stress --replay` takes it. */
export function formatDeviations(devs: readonly Deviation[]): string {
  return devs.map((d) => `${d.step}:${d.thread}${d.nth === 0 ? "" : `.${d.nth}`}`).join(",");
}

export function parseDeviations(s: string): Deviation[] {
  if (s.trim() === "") return [];
  return s.split(",").map((part) => {
    const m = /^(\d+):(-?\d+)(?:\.(\d+))?$/.exec(part.trim());
    if (m === null) throw new Error(`bad deviation "${part}": expected STEP:THREAD[.NTH]`);
    return { step: Number(m[1]), thread: Number(m[2]), nth: m[3] === undefined ? 0 : Number(m[3]) };
  });
}

/** Runs `opts.schedules` schedules; failing ones are shortened and reported. */
export async function explore(opts: ExploreOptions): Promise<ExploreReport> {
  const t0 = performance.now();
  const failures: Failure[] = [];
  let steps = 0;
  let expected = 1000;
  let oracleRuns = 0;
  let ran = 0;
  for (let i = 0; i < opts.schedules; i++) {
    const strategy = strategyOf(opts, i, expected);
    const fsck = i % (opts.fsckEvery ?? 1) === 0;
    const oracle = opts.oracle !== undefined && i % opts.oracle.every === 0;
    const out = await runSchedule(opts, i, strategy, { fsck, oracle });
    ran++;
    steps += out.run.steps;
    expected = Math.max(100, out.run.steps);
    if (out.oracleRun) oracleRuns++;
    opts.onSchedule?.({ index: i, strategy: strategy.kind, steps: out.run.steps, problems: out.problems, deviations: out.run.deviations.length, oracleRun: out.oracleRun });
    if (out.problems.length === 0) continue;
    failures.push(await shorten(opts, i, out));
    if (opts.stopAtFirst ?? true) break;
  }
  return { schedules: ran, steps, elapsedMs: performance.now() - t0, failures, oracleRuns };
}

/** A problem's kind: its invariant id ("Q1", "S1", ...), "error", "deadlock", "livelock" or "fsck". */
function kindOf(problem: string): string {
  return /^[A-Za-z0-9]+/.exec(problem)?.[0] ?? problem;
}

/**
 * Shrink the failing schedule `index` and describe what is left. A shorter schedule counts
 * as still failing when it breaks an invariant the original broke: consequences (an
 * operation's error, the model disagreeing) count only when the original had nothing else.
 */
async function shorten(opts: ExploreOptions, index: number, out: Outcome): Promise<Failure> {
  const replay = (devs: readonly Deviation[]): Promise<Outcome> => runSchedule(opts, index, { kind: "replay", deviations: devs }, { fsck: true, oracle: false });
  const kinds = new Set(out.problems.map(kindOf));
  const primary = new Set([...kinds].filter((k) => k !== "error" && k !== "Q6"));
  const target = primary.size > 0 ? primary : kinds;
  const budget = opts.shrinkBudget ?? 400;
  let devs = out.run.deviations;
  let runs = 0;
  if (budget > 0) {
    const s = await shrink(devs, async (d) => (await replay(d)).problems.some((p) => target.has(kindOf(p))), budget);
    devs = s.devs;
    runs = s.runs;
  }
  // The replay's own deviations are the effective ones (a listed switch to a thread that had
  // nothing to run is a no-op) and carry who ran and where.
  const last = await replay(devs);
  const effective = last.problems.some((p) => target.has(kindOf(p))) ? last : out;
  return {
    index,
    problems: effective.problems,
    steps: out.run.steps,
    deviations: out.run.deviations.length,
    shortened: effective.run.decisions,
    shortenedDeviations: effective.run.deviations,
    shrinkRuns: runs,
    replay: `--seed ${opts.seed} --schedule ${index} --replay ${formatDeviations(effective.run.deviations) || '""'}`,
  };
}
