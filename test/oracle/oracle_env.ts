/**
 * Oracle environment: which external oracles (e2fsprogs, attr, acl, a loop-mounting kernel)
 * this machine offers, and how a test reacts when one is missing.
 *
 * Policy (docs/style.md §7): without a tool the oracle suite is skipped with a printed reason,
 * a line starting "ORACLE SKIPPED:" on stderr. With EXT4TS_REQUIRE_ORACLES=1 (CI) a missing
 * tool is a test failure instead.
 *
 *   const oracle = oracleAvailability(["mke2fs", "debugfs"], { loop: true });
 *   oracleGate(oracle);                       // one test: fails under REQUIRE, else skips visibly
 *   describe.skipIf(!oracle.ok)("...", () => { ... });
 *
 * Detection is synchronous (spawnSync) so it can run while vitest collects tests, and cached per
 * process. `run`/`runAsync` wrap child processes: output captured, failures thrown with stderr.
 */
import { execFile, spawnSync } from "node:child_process";
import type { SpawnSyncOptions } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { it } from "vitest";

/** True when EXT4TS_REQUIRE_ORACLES=1: a missing oracle fails instead of skipping. */
export const REQUIRE_ORACLES = process.env.EXT4TS_REQUIRE_ORACLES === "1";

/** Directories searched for tools besides $PATH (sbin is often missing from a user's PATH). */
const EXTRA_TOOL_DIRS = ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"];

const toolCache = new Map<string, string | undefined>();

/** Absolute path of an executable named `name`, or undefined. Cached. */
export function findTool(name: string): string | undefined {
  if (toolCache.has(name)) return toolCache.get(name);
  let found: string | undefined;
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter).filter((d) => d !== ""), ...EXTRA_TOOL_DIRS];
  for (const dir of dirs) {
    const p = path.join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      found = p;
      break;
    } catch {
      // not here
    }
  }
  toolCache.set(name, found);
  return found;
}

/** True when an executable `name` is on $PATH or in an sbin directory. */
export function haveTool(name: string): boolean {
  return findTool(name) !== undefined;
}

/** True when this process runs as root (uid 0). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

let loopCache: { ok: boolean; reason: string } | undefined;

/**
 * Whether this machine can loop-mount an ext4 image: root, /dev/loop-control, mke2fs, and a real
 * trial (mkfs a 4 MiB image, `mount -o loop`, `umount`). Cached per process.
 */
export function loopMountStatus(): { ok: boolean; reason: string } {
  if (loopCache !== undefined) return loopCache;
  loopCache = probeLoopMount();
  return loopCache;
}

/** True when loop mounting works here; see loopMountStatus. */
export function canLoopMount(): boolean {
  return loopMountStatus().ok;
}

function probeLoopMount(): { ok: boolean; reason: string } {
  if (process.platform !== "linux") return { ok: false, reason: `loop mounts need Linux, this is ${process.platform}` };
  if (!isRoot()) return { ok: false, reason: "loop mounts need root" };
  if (!existsSync("/dev/loop-control")) return { ok: false, reason: "/dev/loop-control is missing" };
  for (const t of ["mke2fs", "mount", "umount"]) {
    if (!haveTool(t)) return { ok: false, reason: `${t} not found` };
  }
  const dir = mkdtempSync(path.join(tmpdir(), "ext4ts-oracle-probe-"));
  const img = path.join(dir, "probe.img");
  const mnt = path.join(dir, "mnt");
  let mounted = false;
  try {
    run("mkdir", [mnt]);
    run(findTool("mke2fs")!, ["-q", "-F", "-t", "ext4", img, "4M"]);
    const m = runUnchecked(findTool("mount")!, ["-o", "loop,ro", img, mnt]);
    if (m.status !== 0) return { ok: false, reason: `trial loop mount failed: ${m.stderr.trim()}` };
    mounted = true;
    return { ok: true, reason: "" };
  } catch (e) {
    return { ok: false, reason: `trial loop mount failed: ${e instanceof Error ? e.message : String(e)}` };
  } finally {
    if (mounted) runUnchecked(findTool("umount")!, [mnt]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What an oracle suite needs and whether this machine has it. */
export interface OracleAvailability {
  /** Every listed tool exists (and loop mounting works, when asked). */
  readonly ok: boolean;
  /** Why not, for the skip line or failure message; "" when ok. */
  readonly reason: string;
  /** EXT4TS_REQUIRE_ORACLES=1: unavailability must fail, not skip. */
  readonly required: boolean;
}

/**
 * Checks tools (names looked up like `haveTool`) and, with `loop: true`, loop mounting.
 * When unavailable and not required, prints "ORACLE SKIPPED: <reason>" once per call.
 */
export function oracleAvailability(tools: readonly string[], opts: { loop?: boolean; root?: boolean } = {}): OracleAvailability {
  const missing = tools.filter((t) => !haveTool(t));
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`missing tools: ${missing.join(", ")}`);
  if (opts.root === true && !isRoot()) problems.push("needs root");
  if (opts.loop === true) {
    const l = loopMountStatus();
    if (!l.ok) problems.push(l.reason);
  }
  const ok = problems.length === 0;
  const reason = problems.join("; ");
  if (!ok && !REQUIRE_ORACLES) console.warn(`ORACLE SKIPPED: ${reason}`);
  return { ok, reason, required: REQUIRE_ORACLES };
}

/**
 * Reacts to a missing oracle from inside a test: under EXT4TS_REQUIRE_ORACLES=1 (or `required`)
 * throws (the test fails); otherwise prints "ORACLE SKIPPED: <reason>" and returns, and the caller
 * skips.
 */
export function requireOrSkip(reason: string, required: boolean = REQUIRE_ORACLES): void {
  if (required) throw new Error(`Oracle required (EXT4TS_REQUIRE_ORACLES=1) but unavailable: ${reason}`);
  console.warn(`ORACLE SKIPPED: ${reason}`);
}

/**
 * Registers one test that reports the availability: it passes when the oracle is there, fails
 * under EXT4TS_REQUIRE_ORACLES=1 when it is not, and is skipped (reason printed) otherwise.
 */
export function oracleGate(oracle: OracleAvailability, what = "oracle prerequisites are available"): void {
  it(what, (ctx) => {
    if (oracle.ok) return;
    requireOrSkip(oracle.reason, oracle.required);
    ctx.skip();
  });
}

/** A finished child process. */
export interface RunResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options for run / runAsync. */
export interface RunOptions {
  readonly cwd?: string;
  /** Bytes or text for stdin. */
  readonly input?: string | Uint8Array;
  readonly env?: NodeJS.ProcessEnv;
  /** Exit codes that count as success; default [0]. */
  readonly okCodes?: readonly number[];
  /** Kill after this many ms; default 10 minutes. */
  readonly timeoutMs?: number;
}

const MAX_BUFFER = 512 * 1024 * 1024;

function describeCmd(cmd: string, args: readonly string[]): string {
  const shown = args.length > 12 ? [...args.slice(0, 12), `... (${args.length - 12} more)`] : args;
  return [cmd, ...shown].join(" ");
}

function commandError(cmd: string, args: readonly string[], r: { status: number | null; signal: string | null; stdout: string; stderr: string; error?: Error }): Error {
  const how = r.error !== undefined ? r.error.message : r.signal !== null ? `signal ${r.signal}` : `exit ${r.status ?? "?"}`;
  const out = (r.stderr.trim() !== "" ? r.stderr : r.stdout).trim().slice(-4000);
  return new Error(`Command failed (${how}): ${describeCmd(cmd, args)}${out !== "" ? `\n${out}` : ""}`);
}

/** Runs a command synchronously; returns the result whatever the exit status (spawn errors throw). */
export function runUnchecked(cmd: string, args: readonly string[], opts: RunOptions = {}): RunResult {
  const o: SpawnSyncOptions = {
    encoding: "utf8",
    maxBuffer: MAX_BUFFER,
    timeout: opts.timeoutMs ?? 600_000,
    stdio: ["pipe", "pipe", "pipe"],
  };
  if (opts.cwd !== undefined) o.cwd = opts.cwd;
  if (opts.env !== undefined) o.env = opts.env;
  if (opts.input !== undefined) o.input = opts.input;
  const r = spawnSync(cmd, args, o);
  const stdout = typeof r.stdout === "string" ? r.stdout : "";
  const stderr = typeof r.stderr === "string" ? r.stderr : "";
  if (r.error !== undefined || r.status === null) {
    throw commandError(cmd, args, { status: r.status, signal: r.signal, stdout, stderr, ...(r.error !== undefined ? { error: r.error } : {}) });
  }
  return { status: r.status, stdout, stderr };
}

/** Runs a command synchronously; throws (with its stderr) unless it exits with an ok code. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): RunResult {
  const r = runUnchecked(cmd, args, opts);
  if (!(opts.okCodes ?? [0]).includes(r.status)) throw commandError(cmd, args, { ...r, signal: null });
  return r;
}

/** Runs a command without blocking the event loop; throws unless it exits with an ok code. */
export function runAsync(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      [...args],
      { encoding: "utf8", maxBuffer: MAX_BUFFER, timeout: opts.timeoutMs ?? 600_000, ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}), ...(opts.env !== undefined ? { env: opts.env } : {}) },
      (error, stdout, stderr) => {
        const status = error === null ? 0 : typeof error.code === "number" ? error.code : null;
        if (status === null) {
          reject(commandError(cmd, args, { status: null, signal: error?.signal ?? null, stdout, stderr, ...(error !== null ? { error } : {}) }));
          return;
        }
        if (!(opts.okCodes ?? [0]).includes(status)) {
          reject(commandError(cmd, args, { status, signal: null, stdout, stderr }));
          return;
        }
        resolve({ status, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Resolves a tool name to its absolute path, throwing a clear error when absent. */
export function tool(name: string): string {
  const p = findTool(name);
  if (p === undefined) throw new Error(`Tool not found: ${name}`);
  return p;
}

/**
 * Registers the test that stands for an absent e2fsprogs corpus: it fails under
 * EXT4TS_REQUIRE_CORPUS=1, else it is skipped with the reason printed ("CORPUS SKIPPED").
 * The corpus is test data outside the repository, so EXT4TS_REQUIRE_ORACLES does not force it.
 */
export function corpusMissing(why: string): void {
  if (process.env.EXT4TS_REQUIRE_CORPUS === "1") {
    it("the corpus is present (EXT4TS_REQUIRE_CORPUS=1)", () => {
      throw new Error(why);
    });
  } else {
    console.warn(`CORPUS SKIPPED: ${why}`);
    it.skip(`CORPUS SKIPPED: ${why}`, () => undefined);
  }
}
