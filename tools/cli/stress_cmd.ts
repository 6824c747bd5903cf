/**
 * `ext4ts stress`: the streamtest workload (tools/explorer/streamtest.ts), three ways.
 *
 *   ext4ts stress [--memory]                 one timed run on an in-memory image with quota
 *   ext4ts stress IMAGE                      one timed run on an image file (changed in place)
 *   ext4ts stress --dir DIR                  the same plan on a kernel or FUSE mount, to compare
 *   ext4ts stress --explore N [--seed S]     N schedules, each a different interleaving on a
 *                                            simulated device, invariants checked after each
 *   ext4ts stress --schedule I --replay DEVS replay one (shortened) schedule and explain it
 *
 * A timed run prints objects and operations per second, latency percentiles per kind of
 * operation and the invariant checker's verdict; exploration prints progress and either
 * "no invariant broken" or the failing schedule, shortened, with the command that replays
 * it. Exit 0 clean, 1 on any inconsistency, 2 usage.
 */

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Option, type Command } from "commander";
import { Volume } from "../../src/api/promises.js";
import { FileDevice } from "../../src/node.js";
import { QUOTA_TYPES } from "../../src/fs/quota.js";
import { DEFAULT_SCHEDULES, explore, parseDeviations, runSchedule, type ExploreOptions, type StrategyName } from "../explorer/explore.js";
import { checkInvariants } from "../explorer/invariants.js";
import { imageBytesFor, streamImage } from "../explorer/memory_image.js";
import { STREAM_DIRS, planStreamtest, runStreamtest, verifyStreamtest, type OpKind, type StreamtestOptions } from "../explorer/streamtest.js";
import { runStreamtestOnDir, summarizeLatencies, type LatencySummary } from "../explorer/dir_target.js";
import { CommandFailure } from "./errors.js";

interface StressCliOptions {
  memory?: boolean;
  dir?: string;
  workers?: string;
  flushers?: string;
  objects?: string;
  size?: string;
  updates?: string;
  syncs?: string;
  dirs?: string;
  seed: string;
  explore?: string | true;
  strategy: string;
  depth: string;
  schedule?: string;
  replay?: string;
  e2fsckEvery: string;
  uid: string;
  gid: string;
  json?: boolean;
}

/** Workload defaults: a timed run is FileStore-sized; explored schedules are small, so hundreds run in seconds. */
const TIMED: Omit<StreamtestOptions, "seed"> = { workers: 8, flushers: 1, objects: 1000, objectBytes: 65536, updates: 1, syncs: 2 };
const EXPLORED: Omit<StreamtestOptions, "seed"> = { workers: 3, flushers: 2, objects: 6, objectBytes: 16384, updates: 2, syncs: 1 };
/**
 * Every fourth explored schedule without workload flags: one directory that grows past a
 * block, so lookups and listings meet its conversion to an htree and leaf splits.
 */
const EXPLORED_BIG_DIR: Omit<StreamtestOptions, "seed"> = { workers: 4, flushers: 2, objects: 90, objectBytes: 4096, updates: 1, syncs: 1, dirs: 1 };
const WORKLOAD_FLAGS = ["workers", "flushers", "objects", "size", "updates", "syncs", "dirs"] as const;

function out(s: string): void {
  process.stdout.write(s);
}

function int(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new CommandFailure(`stress: ${name} must be an integer ≥ ${min}, not "${v}"`);
  return n;
}

function workload(o: StressCliOptions, base: Omit<StreamtestOptions, "seed">): Omit<StreamtestOptions, "seed"> {
  return {
    workers: o.workers !== undefined ? int("--workers", o.workers, 1) : base.workers,
    flushers: o.flushers !== undefined ? int("--flushers", o.flushers, 1) : base.flushers,
    objects: o.objects !== undefined ? int("--objects", o.objects, 1) : base.objects,
    objectBytes: o.size !== undefined ? int("--size", o.size, 1) : base.objectBytes,
    updates: o.updates !== undefined ? int("--updates", o.updates, 0) : base.updates,
    syncs: o.syncs !== undefined ? int("--syncs", o.syncs, 0) : base.syncs,
    ...(o.dirs !== undefined ? { dirs: int("--dirs", o.dirs, 1) } : base.dirs !== undefined ? { dirs: base.dirs } : {}),
  };
}

/** The workload flags that differ from `base`, for a replay command line. */
function workloadFlags(w: Omit<StreamtestOptions, "seed">, base: Omit<StreamtestOptions, "seed">): string {
  const flags: [keyof typeof w, string][] = [["workers", "--workers"], ["flushers", "--flushers"], ["objects", "--objects"], ["objectBytes", "--size"], ["updates", "--updates"], ["syncs", "--syncs"], ["dirs", "--dirs"]];
  return flags.filter(([k]) => w[k] !== base[k]).map(([k, f]) => ` ${f} ${w[k]}`).join("");
}

function describeWorkload(w: Omit<StreamtestOptions, "seed">, seed: number): string {
  const kib = w.objectBytes % 1024 === 0 ? `${w.objectBytes / 1024} KiB` : `${w.objectBytes} bytes`;
  return `${w.workers} writers, ${w.flushers} flusher${w.flushers === 1 ? "" : "s"}, ${w.objects} objects of ${kib} + 3 xattrs in ${w.dirs ?? STREAM_DIRS} director${(w.dirs ?? STREAM_DIRS) === 1 ? "y" : "ies"}, ${w.updates} update${w.updates === 1 ? "" : "s"} per object on average, ${w.syncs} syncfs during the run; seed ${seed}`;
}

const group = (n: number): string => Math.round(n).toLocaleString("en-US");
const ms = (n: number): string => (Number.isNaN(n) ? "-" : n < 10 ? n.toFixed(2) : n.toFixed(1));

function latencyTable(lat: ReadonlyMap<OpKind, LatencySummary>): string {
  const rows = [`  ${"latency (ms)".padEnd(16)}${"n".padStart(7)}${"p50".padStart(9)}${"p90".padStart(9)}${"p99".padStart(9)}${"max".padStart(9)}`];
  for (const [kind, l] of [...lat].sort((a, b) => a[0].localeCompare(b[0]))) {
    rows.push(`  ${kind.padEnd(16)}${String(l.n).padStart(7)}${ms(l.p50).padStart(9)}${ms(l.p90).padStart(9)}${ms(l.p99).padStart(9)}${ms(l.max).padStart(9)}`);
  }
  return rows.join("\n");
}

/** The figures of a timed run, whoever ran it. */
interface Timed {
  readonly objects: number;
  readonly operations: number;
  readonly elapsedMs: number;
  readonly bytesWritten: number;
  readonly latencies: ReadonlyMap<OpKind, LatencySummary>;
}

function report(r: Timed, problems: readonly string[], checked: string, json: boolean): void {
  const s = r.elapsedMs / 1000;
  if (json) {
    out(`${JSON.stringify({ objects: r.objects, operations: r.operations, elapsed_ms: r.elapsedMs, objects_per_s: r.objects / s, ops_per_s: r.operations / s, MB_per_s: r.bytesWritten / 1e6 / s, latencies: Object.fromEntries(r.latencies), clean: problems.length === 0, problems })}\n`);
    return;
  }
  out(`  ${group(r.objects)} objects, ${group(r.operations)} operations in ${s.toFixed(2)} s: ${group(r.objects / s)} objects/s, ${group(r.operations / s)} ops/s, ${(r.bytesWritten / 1e6 / s).toFixed(1)} MB/s written\n`);
  out(`${latencyTable(r.latencies)}\n`);
  out(problems.length === 0
    ? `  check: clean (${checked})\n`
    : `  check: ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n${problems.map((p) => `    ${p}`).join("\n")}\n`);
}

/** The same plan on a host directory (a kernel or FUSE mount), through dir_runner.py. */
async function dirRun(dir: string, o: StressCliOptions): Promise<void> {
  const w = workload(o, TIMED);
  const seed = int("--seed", o.seed, 0);
  if (o.json !== true) out(`ext4ts stress: streamtest on the directory '${dir}' (python3 tools/explorer/dir_runner.py)\n  ${describeWorkload(w, seed)}\n`);
  const r = await runStreamtestOnDir(dir, planStreamtest({ ...w, seed }), { verify: true });
  const problems = r.verify === undefined ? [] : [...r.verify.problems];
  if (r.verify !== undefined && r.verify.badObjects > problems.length) problems.push(`... ${r.verify.badObjects} objects differ in all`);
  report(r, problems, "every object's data and xattrs as the plan says", o.json === true);
  if (problems.length > 0) throw new CommandFailure("");
}

/** One timed run on a real (memory or file) device, then the invariant check. */
async function timedRun(image: string | undefined, o: StressCliOptions): Promise<void> {
  const w = workload(o, TIMED);
  const seed = int("--seed", o.seed, 0);
  const uid = int("--uid", o.uid, 0);
  const gid = int("--gid", o.gid, 0);
  const bytes = imageBytesFor(w);
  const dev = image === undefined ? await streamImage(bytes) : await FileDevice.open(image);
  const where = image === undefined ? `an in-memory ${Math.round(bytes / (1 << 20))} MiB ext4 image` : `'${image}'`;
  const vol = await Volume.mount(dev, { readOnly: false, uid, gid });
  let closed = false;
  try {
    const quota = vol.quota === null ? "off" : QUOTA_TYPES.filter((t) => vol.quota?.types().includes(t)).join(", ");
    if (o.json !== true) out(`ext4ts stress: streamtest on ${where} (quota: ${quota})\n  ${describeWorkload(w, seed)}\n`);
    const plan = planStreamtest({ ...w, seed });
    const r = await runStreamtest(vol, plan);
    const t0 = performance.now();
    const inv = await checkInvariants(vol);
    const problems = [...inv.problems, ...(await verifyStreamtest(vol, plan))];
    const checkMs = performance.now() - t0;
    await vol.unmount();
    closed = true;
    report({ ...r, latencies: summarizeLatencies(r.latencies) }, problems, `reservations, i_blocks, quota, fsck, every object's data and xattrs; ${(checkMs / 1000).toFixed(2)} s`, o.json === true);
    if (problems.length > 0) throw new CommandFailure("");
  } finally {
    if (!closed) await vol.unmount().catch(() => undefined);
  }
}

/** e2fsck -fn on an explored image, when e2fsck is installed; null when it is not. */
function e2fsckOracle(): ((image: Uint8Array) => Promise<string[]>) | null {
  const probe = spawnSync("e2fsck", ["-V"], { encoding: "utf8" });
  if (probe.error !== undefined) return null;
  return (image: Uint8Array): Promise<string[]> => {
    const dir = mkdtempSync(path.join(tmpdir(), "ext4ts-stress-"));
    try {
      const img = path.join(dir, "img");
      writeFileSync(img, image);
      const r = spawnSync("e2fsck", ["-fn", img], { encoding: "utf8" });
      return Promise.resolve(r.status === 0 ? [] : [`Q7: e2fsck -fn exit ${r.status ?? "signal"}: ${(r.stdout + r.stderr).trim().split("\n").slice(0, 12).join(" | ")}`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

async function exploreRun(o: StressCliOptions): Promise<void> {
  const w = workload(o, EXPLORED);
  // Without workload flags, a mix of shapes; with any, exactly the shape asked for.
  const workloads = WORKLOAD_FLAGS.some((f) => o[f] !== undefined) ? [w] : [EXPLORED, EXPLORED, EXPLORED, EXPLORED_BIG_DIR];
  const seed = int("--seed", o.seed, 0);
  const strategy = o.strategy as StrategyName;
  const dev = await streamImage(imageBytesFor(...workloads));
  const image = await dev.read(0, dev.size);
  const e2fsckEvery = int("--e2fsck-every", o.e2fsckEvery, 0);
  const oracle = e2fsckEvery > 0 ? e2fsckOracle() : null;
  const opts: ExploreOptions = {
    schedules: typeof o.explore === "string" ? int("--explore", o.explore, 1) : DEFAULT_SCHEDULES,
    seed, strategy, depth: int("--depth", o.depth, 1), workloads, image,
    uid: int("--uid", o.uid, 0), gid: int("--gid", o.gid, 0),
    ...(oracle !== null ? { oracle: { every: e2fsckEvery, check: oracle } } : {}),
  };
  const flags = `${workloadFlags(w, EXPLORED)}${strategy !== "mixed" ? ` --strategy ${strategy}` : ""}${opts.depth !== 3 ? ` --depth ${opts.depth}` : ""}`;

  if (o.replay !== undefined || o.schedule !== undefined) {
    const index = int("--schedule", o.schedule ?? "0", 0);
    const devs = parseDeviations(o.replay ?? "");
    const r = await runSchedule(opts, index, { kind: "replay", deviations: devs }, { fsck: true, oracle: oracle !== null });
    out(`ext4ts stress: schedule ${index} of seed ${seed}, replayed with ${devs.length} context switch${devs.length === 1 ? "" : "es"}: ${r.run.steps} steps\n  ${describeWorkload(workloads[index % workloads.length]!, seed)}\n`);
    for (const d of r.run.decisions) out(`  step ${d.step}: ran ${d.who} at ${d.label}, instead of ${d.defaultWho}\n`);
    out(r.problems.length === 0 ? "  verdict: clean\n" : `  verdict: ${r.problems.length} problem${r.problems.length === 1 ? "" : "s"}:\n${r.problems.map((p) => `    ${p}`).join("\n")}\n`);
    if (r.problems.length > 0) throw new CommandFailure("");
    return;
  }

  out(`ext4ts stress: exploring ${opts.schedules} schedule${opts.schedules === 1 ? "" : "s"} of the streamtest on a simulated device (strategy ${strategy}${strategy === "random" ? "" : `, PCT depth ${opts.depth}`}), seed ${seed}\n`);
  if (workloads.length === 1) out(`  ${describeWorkload(w, seed)}\n`);
  else out(`  3 in 4: ${describeWorkload(EXPLORED, seed)}\n  1 in 4: ${describeWorkload(EXPLORED_BIG_DIR, seed)}\n`);
  out(`  after each: reservations, counters, i_blocks, quota, the project's fsck and the model${oracle !== null ? `; e2fsck -fn every ${e2fsckEvery} schedules` : e2fsckEvery > 0 ? "; e2fsck not installed: not run" : ""}\n`);
  const tty = process.stderr.isTTY;
  let last = 0;
  const rep = await explore({
    ...opts,
    onSchedule: (s) => {
      const now = performance.now();
      if (tty && (now - last > 200 || s.index + 1 === opts.schedules)) {
        last = now;
        process.stderr.write(`\r  schedule ${s.index + 1}/${opts.schedules}: ${s.steps} steps, ${s.deviations} context switches${s.problems.length > 0 ? ", FAILED" : ""}   `);
      }
    },
  });
  if (tty) process.stderr.write("\n");
  const perS = rep.schedules / (rep.elapsedMs / 1000);
  out(`  ${group(rep.schedules)} schedules, ${group(rep.steps)} steps in ${(rep.elapsedMs / 1000).toFixed(1)} s (${perS.toFixed(1)} schedules/s)${rep.oracleRuns > 0 ? `, ${rep.oracleRuns} checked by e2fsck` : ""}\n`);
  if (rep.failures.length === 0) {
    out("  verdict: no invariant broken\n");
    return;
  }
  for (const f of rep.failures) {
    out(`  verdict: schedule ${f.index} FAILED after ${f.steps} steps:\n${f.problems.map((p) => `    ${p}`).join("\n")}\n`);
    out(`  shortened from ${f.deviations} to ${f.shortened.length} context switch${f.shortened.length === 1 ? "" : "es"} (${f.shrinkRuns} replays):\n`);
    for (const d of f.shortened) out(`    step ${d.step}: ran ${d.who} at ${d.label}, instead of ${d.defaultWho}\n`);
    out(`  replay: ext4ts stress ${f.replay}${flags}\n`);
  }
  throw new CommandFailure("");
}

/** Adds the `stress` subcommand. */
export function registerStress(program: Command): void {
  program
    .command("stress")
    .description("run the streamtest workload (Ceph FileStore-like: writers, xattrs, flushers) and check every invariant; --explore N tries N interleavings deterministically; exit 1 on any inconsistency")
    .argument("[image]", "image file to run on (changed in place); default: an in-memory image with quota")
    .option("--memory", "run on an in-memory image made for the workload (the default without IMAGE)")
    .option("--dir <path>", "run the same plan on a host directory (a kernel or FUSE mount) through python3, to compare")
    .option("--workers <n>", `writer tasks (default ${TIMED.workers}; exploring ${EXPLORED.workers})`)
    .option("--flushers <n>", `flusher tasks (default ${TIMED.flushers}; exploring ${EXPLORED.flushers})`)
    .option("--objects <n>", `objects (default ${TIMED.objects}; exploring ${EXPLORED.objects})`)
    .option("--size <bytes>", `bytes of each object's first write (default ${TIMED.objectBytes}; exploring ${EXPLORED.objectBytes})`)
    .option("--updates <n>", `overwrites, xattr changes, truncates, renames, unlinks per object on average (default ${TIMED.updates}; exploring ${EXPLORED.updates})`)
    .option("--syncs <n>", `syncfs calls during the run (default ${TIMED.syncs}; exploring ${EXPLORED.syncs})`)
    .option("--dirs <n>", `hashed directories the objects live in (default ${STREAM_DIRS}; few make big, indexed directories)`)
    .option("--seed <s>", "workload (and schedule) seed", "1")
    .option("--explore [n]", `explore N schedules (default ${DEFAULT_SCHEDULES}) on a simulated device instead of one timed run`)
    .addOption(new Option("--strategy <name>", "scheduling strategy when exploring").choices(["random", "pct", "mixed"]).default("mixed"))
    .option("--depth <d>", "PCT bug depth (ordering constraints a bug may need)", "3")
    .option("--schedule <i>", "replay schedule I of the seed (with --replay)")
    .option("--replay <devs>", "the context switches to replay, as printed for a failing schedule (STEP:THREAD[.NTH],...)")
    .option("--e2fsck-every <n>", "when exploring, also run e2fsck -fn on every N-th clean schedule's image (0: never)", "100")
    .option("--uid <uid>", "owner of the files the workload creates", "1000")
    .option("--gid <gid>", "group of the files the workload creates", "1000")
    .option("--json", "timed run: print one JSON object")
    .action(async (image: string | undefined, o: StressCliOptions) => {
      if ([image !== undefined, o.memory === true, o.dir !== undefined].filter(Boolean).length > 1) throw new CommandFailure("stress: give one of IMAGE, --memory and --dir");
      const exploring = o.explore !== undefined || o.replay !== undefined || o.schedule !== undefined;
      if (exploring && image !== undefined) throw new CommandFailure("stress: --explore runs on an in-memory image (a replayable schedule needs the simulated device); drop IMAGE");
      if (exploring && o.dir !== undefined) throw new CommandFailure("stress: --explore runs on an in-memory image, not on --dir");
      if (exploring) await exploreRun(o);
      else if (o.dir !== undefined) await dirRun(o.dir, o);
      else await timedRun(image, o);
    });
}
