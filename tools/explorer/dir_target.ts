/**
 * The streamtest on a host directory (a kernel or FUSE mount): the same plan that
 * runStreamtest runs on a Volume, run by dir_runner.py with threads, because Node has neither
 * setxattr nor sync_file_range. The plan goes to the runner as JSON plus its pool as raw bytes,
 * in a temporary directory removed afterwards.
 */

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { percentile, type OpKind, type Plan } from "./streamtest.js";

/** One kind of operation's latencies, in ms (nearest rank). */
export interface LatencySummary {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export interface DirRunResult {
  readonly objects: number;
  readonly operations: number;
  /** From before the mkdirs to after the final syncfs, as runStreamtest's elapsedMs. */
  readonly elapsedMs: number;
  readonly objectsPerS: number;
  /** Data written with pwrite (create and overwrite), bytes. */
  readonly bytesWritten: number;
  readonly latencies: ReadonlyMap<OpKind, LatencySummary>;
  /** With opts.verify: the final state checked against the plan, after the timed run. */
  readonly verify: DirVerifyResult | undefined;
}

export interface DirVerifyResult {
  /** Objects (and stray directory entries) not as the plan's final state says. */
  readonly badObjects: number;
  /** The first 20 differences. */
  readonly problems: readonly string[];
}

export interface DirRunOptions {
  /** The Python 3 interpreter (default "python3" on $PATH). */
  readonly python?: string;
  /** dir_runner.py (default: found next to this module, or from dist/ in the source tree). */
  readonly runner?: string;
  /** Check the final state against the plan afterwards (untimed). */
  readonly verify?: boolean;
}

/** Summaries of runStreamtest's latencies, in the shape dir_runner.py prints. */
export function summarizeLatencies(latencies: ReadonlyMap<OpKind, readonly number[]>): Map<OpKind, LatencySummary> {
  const out = new Map<OpKind, LatencySummary>();
  for (const [kind, xs] of latencies) {
    if (xs.length === 0) continue;
    out.set(kind, { n: xs.length, p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99), max: Math.max(...xs) });
  }
  return out;
}

/** Where dir_runner.py is: beside this file under vitest; tsc does not copy it to dist/. */
export function dirRunnerPath(): string {
  const candidates = [
    new URL("./dir_runner.py", import.meta.url),
    new URL("../../../tools/explorer/dir_runner.py", import.meta.url), // dist/tools/explorer -> the source tree
  ].map((u) => fileURLToPath(u));
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) throw new Error(`dir_runner.py not found (looked at ${candidates.join(", ")})`);
  return found;
}

/**
 * Runs `plan` in `dir` (which must exist; the plan's directories are made in it). Throws when
 * Python cannot be run or the run reports errors.
 */
export async function runStreamtestOnDir(dir: string, plan: Plan, opts: DirRunOptions = {}): Promise<DirRunResult> {
  const out = await runner(dir, plan, opts.verify === true ? ["--verify"] : [], opts);
  return { ...runResult(out), verify: opts.verify === true ? verifyResult(out) : undefined };
}

/** Checks the final state of a run of `plan` in `dir` (by any implementation) against the plan. */
export async function verifyStreamtestOnDir(dir: string, plan: Plan, opts: DirRunOptions = {}): Promise<DirVerifyResult> {
  return verifyResult(await runner(dir, plan, ["--verify-only"], opts));
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function num(o: Json, key: string): number {
  const v = o[key];
  if (typeof v !== "number") throw new Error(`dir_runner.py: "${key}" is not a number in its output`);
  return v;
}

function strings(o: Json, key: string): string[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new Error(`dir_runner.py: "${key}" is not a list in its output`);
  return v.map((x) => String(x));
}

function runResult(o: Json): Omit<DirRunResult, "verify"> {
  const lat = o.latencies;
  if (!isObject(lat)) throw new Error('dir_runner.py: no "latencies" in its output');
  const latencies = new Map<OpKind, LatencySummary>();
  for (const [kind, s] of Object.entries(lat)) {
    if (!isObject(s)) throw new Error(`dir_runner.py: latencies of ${kind} are not an object`);
    latencies.set(kind as OpKind, { n: num(s, "n"), p50: num(s, "p50"), p90: num(s, "p90"), p99: num(s, "p99"), max: num(s, "max") });
  }
  return {
    objects: num(o, "objects"),
    operations: num(o, "operations"),
    elapsedMs: num(o, "elapsed_ms"),
    objectsPerS: num(o, "objects_per_s"),
    bytesWritten: num(o, "bytes_written"),
    latencies,
  };
}

function verifyResult(o: Json): DirVerifyResult {
  return { badObjects: num(o, "verify_bad_objects"), problems: strings(o, "verify_problems") };
}

/** Runs dir_runner.py on the plan; its JSON output, once it reports no run errors. */
async function runner(dir: string, plan: Plan, flags: readonly string[], opts: DirRunOptions): Promise<Json> {
  const python = opts.python ?? "python3";
  const script = opts.runner ?? dirRunnerPath();
  const tmp = mkdtempSync(path.join(tmpdir(), "ext4ts-streamtest-plan-"));
  try {
    const planFile = path.join(tmp, "plan.json");
    const poolFile = path.join(tmp, "pool.bin");
    writeFileSync(planFile, JSON.stringify({ opts: plan.opts, dirs: plan.dirs, objects: plan.objects }));
    writeFileSync(poolFile, plan.pool);
    const args = [script, planFile, poolFile, dir, ...flags];
    const r = await spawnCollect(python, args);
    const cmd = `${python} ${args.join(" ")}`;
    if (r.spawnError !== undefined) {
      throw new Error(r.spawnError.code === "ENOENT"
        ? `${python} not found: running a streamtest plan on a directory needs Python 3 (give opts.python)`
        : `cannot run ${cmd}: ${r.spawnError.message}`);
    }
    const last = r.stdout.trim().split("\n").at(-1) ?? "";
    let parsed: unknown;
    try {
      parsed = JSON.parse(last);
    } catch {
      parsed = undefined;
    }
    // Exit 1 still prints the JSON (run errors, or the check's findings); 2 and crashes do not.
    if (!isObject(parsed)) throw new Error(`${cmd} failed (${r.status}): ${(r.stderr.trim() || r.stdout.trim()).slice(-2000)}`);
    const errors = strings(parsed, "errors");
    if (num(parsed, "n_errors") > 0) {
      throw new Error(`streamtest in ${dir}: ${num(parsed, "n_errors")} operation(s) failed, first: ${errors.join("; ")}`);
    }
    return parsed;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface Collected {
  readonly status: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly spawnError: NodeJS.ErrnoException | undefined;
}

function spawnCollect(cmd: string, args: readonly string[]): Promise<Collected> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    const out: string[] = [];
    const err: string[] = [];
    child.stdout.setEncoding("utf8").on("data", (s: string) => out.push(s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => err.push(s));
    // A failed spawn emits "error" (and maybe "close" after it): the first to come settles.
    child.on("error", (e) => {
      resolve({ status: "not started", stdout: out.join(""), stderr: err.join(""), spawnError: e });
    });
    child.on("close", (code, signal) => {
      resolve({ status: signal !== null ? `signal ${signal}` : `exit ${String(code)}`, stdout: out.join(""), stderr: err.join(""), spawnError: undefined });
    });
  });
}
