/**
 * Robustness over the e2fsprogs regression images (an external corpus nobody here wrote).
 *
 * For every `<test>/image.gz` we decompress a private copy and run
 * `node bin/ext4ts.js manifest <copy>` under a hard time limit and a bounded heap. Each image
 * must end one of two ways:
 *   - exit 0, stdout is one JSON object per line and the first line's `path` is "/"; or
 *   - a non-zero exit (not a signal) whose stderr ends with one clear line
 *     `ext4ts: ... <ERRNO> ...` and holds no JS stack trace or engine crash text.
 * Hangs, crashes, runaway memory or output, and any change to the image bytes are failures.
 * Env: EXT4TS_CORPUS (corpus folder), EXT4TS_REQUIRE_CORPUS=1 (fail if absent),
 * EXT4TS_CORPUS_TIMEOUT_MS (per-image limit, default 30000), EXT4TS_CLI (another CLI script).
 *
 * The corpus lives outside the repo (GPL-2 test data, see its README): EXT4TS_CORPUS, or
 * `<repo>/../shared/corpus/e2fsprogs`. Absent, the suite is skipped with a printed reason,
 * unless EXT4TS_REQUIRE_CORPUS=1. EXT4TS_REQUIRE_ORACLES does not force it: the corpus is data,
 * not an oracle tool.
 *
 * A second, informational suite puts each image's outcome beside `e2fsck -fn` and upstream's
 * expected exit status. It asserts nothing.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { createGunzip } from "node:zlib";
import { afterAll, beforeAll, describe, it } from "vitest";
import { corpusMissing } from "../oracle/oracle_env.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CORPUS = path.resolve(process.env.EXT4TS_CORPUS ?? path.join(REPO, "../shared/corpus/e2fsprogs"));
/** The CLI under test; EXT4TS_CLI points the suite at another build. */
const CLI = path.resolve(process.env.EXT4TS_CLI ?? path.join(REPO, "bin/ext4ts.js"));

/** Hard wall-clock limit per image (EXT4TS_CORPUS_TIMEOUT_MS, default 30 s: the largest image reads in ~5 s alone, 10+ s on a loaded CI machine); the child is SIGKILLed past it. */
const TIME_LIMIT_MS = Number(process.env.EXT4TS_CORPUS_TIMEOUT_MS ?? "") || 30_000;
/** V8 old-space cap for the child, so runaway allocation ends as "heap out of memory". */
const HEAP_LIMIT_MB = 512;
/** Peak RSS above this counts as runaway memory (buffers live outside the V8 heap). */
const RSS_LIMIT_KB = 1024 * 1024;
/** More manifest than this from a corpus image (all under 100 MB) is runaway output. */
const STDOUT_LIMIT = 64 * 1024 * 1024;
/** Images checked at once. */
const POOL = 2;

/** The engine's errno codes (src/errors.ts), copied so this test does not depend on src/. */
const ERRNO_CODES = [
  "ENOENT", "EEXIST", "ENOTDIR", "EISDIR", "ENOTEMPTY", "ENAMETOOLONG", "ENOSPC", "EDQUOT", "EFBIG",
  "EMLINK", "EROFS", "EINVAL", "EBADF", "EACCES", "EPERM", "EXDEV", "ELOOP", "ENODATA", "ERANGE",
  "EBUSY", "EOPNOTSUPP", "EIO", "EFSCORRUPTED", "EFSBADCRC", "E2BIG", "ENOMEM",
] as const;
const ERRNO_RE = new RegExp(`\\b(${ERRNO_CODES.join("|")})\\b`);
/** Text that means the engine crashed instead of failing cleanly. */
const CRASH_RE = /TypeError|RangeError|ReferenceError|SyntaxError|at .*\.js:\d+|^\s+at |Maximum call stack|heap out of memory|FATAL ERROR/m;

/**
 * Preloaded into the child: on exit, write peak RSS (KiB) to $EXT4TS_RSS_FILE. Cheap and needs no
 * /usr/bin/time; it does not run when the child dies from a signal, which fails the image anyway.
 */
const RSS_PRELOAD =
  "data:text/javascript," +
  encodeURIComponent(
    'import { writeFileSync } from "node:fs";' +
      'process.on("exit", () => { const f = process.env.EXT4TS_RSS_FILE;' +
      " if (f) writeFileSync(f, String(process.resourceUsage().maxRSS)); });",
  );

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
  outputCapped: boolean;
  maxRssKb: number | undefined;
}

type Verdict =
  | { kind: "ok"; inodes: number }
  | { kind: "error"; code: string; line: string }
  | { kind: "fail"; why: string };

interface ImageOutcome {
  verdict: Verdict;
  exit: string;
  ms: number;
  maxRssKb: number | undefined;
}

interface IndexRow {
  expect1Exit: string;
  harness: string;
}

function listImages(): string[] {
  return readdirSync(CORPUS, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(CORPUS, d.name, "image.gz")))
    .map((d) => d.name)
    .sort();
}

function readIndex(): Map<string, IndexRow> {
  const rows = new Map<string, IndexRow>();
  const file = path.join(CORPUS, "INDEX.tsv");
  if (!existsSync(file)) return rows;
  const lines = readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
  const header = (lines[0] ?? "").split("\t");
  const col = (name: string): number => header.indexOf(name);
  const [iName, iExit, iHarness] = [col("name"), col("expect1_exit"), col("harness")];
  for (const line of lines.slice(1)) {
    const f = line.split("\t");
    const name = f[iName];
    if (name !== undefined) rows.set(name, { expect1Exit: f[iExit] ?? "?", harness: f[iHarness] ?? "?" });
  }
  return rows;
}

/** A counting semaphore, so concurrent tests start at most `n` children at once. */
class Pool {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly n: number) {}
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await job();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

async function gunzipTo(src: string, dst: string): Promise<void> {
  await pipeline(createReadStream(src), createGunzip(), createWriteStream(dst));
}

async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest("hex");
}

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_OPTIONS; // measure the CLI as a user runs it, not under the test runner's flags
  return env;
}

function runManifest(image: string, rssFile: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      [`--max-old-space-size=${HEAP_LIMIT_MB}`, "--import", RSS_PRELOAD, CLI, "manifest", image],
      { cwd: REPO, env: childEnv({ EXT4TS_RSS_FILE: rssFile }), stdio: ["ignore", "pipe", "pipe"] },
    );
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let timedOut = false;
    let outputCapped = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, TIME_LIMIT_MS);
    child.stdout.on("data", (b: Buffer) => {
      outBytes += b.length;
      if (outBytes > STDOUT_LIMIT) {
        outputCapped = true;
        child.kill("SIGKILL");
      } else out.push(b);
    });
    child.stderr.on("data", (b: Buffer) => {
      errBytes += b.length;
      if (errBytes <= 1024 * 1024) err.push(b);
    });
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      let maxRssKb: number | undefined;
      try {
        const n = Number(readFileSync(rssFile, "utf8"));
        if (Number.isFinite(n) && n > 0) maxRssKb = n;
      } catch {
        maxRssKb = undefined;
      }
      resolve({
        code, signal, timedOut, outputCapped, maxRssKb,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        ms: performance.now() - t0,
      });
    };
    child.on("error", (e) => {
      err.push(Buffer.from(`spawn failed: ${e.message}\n`));
      finish(null, null);
    });
    child.on("close", finish);
  });
}

function firstLine(s: string, max = 200): string {
  const line = s.split("\n").find((l) => l.trim() !== "") ?? "";
  return line.length > max ? `${line.slice(0, max)}...` : line;
}

function classify(r: RunResult): Verdict {
  if (r.timedOut) return { kind: "fail", why: `hang (or too slow): killed after ${TIME_LIMIT_MS / 1000} s` };
  if (r.outputCapped) return { kind: "fail", why: `runaway output: more than ${STDOUT_LIMIT} bytes on stdout` };
  const crash = CRASH_RE.exec(r.stderr);
  if (crash !== null) {
    // Name the error line ("TypeError: ...") rather than the source excerpt Node prints above it.
    const errorLine = r.stderr.split("\n").find((l) => /^(\w*Error\b|FATAL ERROR|Uncaught)/.test(l));
    const at = r.stderr.slice(0, crash.index).lastIndexOf("\n") + 1;
    return { kind: "fail", why: `crash: ${firstLine(errorLine ?? r.stderr.slice(at))}` };
  }
  if (r.signal !== null) return { kind: "fail", why: `killed by ${r.signal}; stderr: ${firstLine(r.stderr)}` };
  if (r.code === null) return { kind: "fail", why: `no exit status; stderr: ${firstLine(r.stderr)}` };
  if (r.maxRssKb !== undefined && r.maxRssKb > RSS_LIMIT_KB) {
    return { kind: "fail", why: `runaway memory: peak RSS ${Math.round(r.maxRssKb / 1024)} MB` };
  }
  if (r.code === 0) {
    const lines = r.stdout.split("\n").filter((l) => l.trim() !== "");
    if (lines.length === 0) return { kind: "fail", why: "exit 0 but the manifest is empty" };
    for (const [i, line] of lines.entries()) {
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch {
        return { kind: "fail", why: `exit 0 but manifest line ${i + 1} is not JSON: ${firstLine(line)}` };
      }
      if (typeof rec !== "object" || rec === null || Array.isArray(rec)) {
        return { kind: "fail", why: `exit 0 but manifest line ${i + 1} is not a JSON object: ${firstLine(line)}` };
      }
      if (i === 0 && (rec as Record<string, unknown>).path !== "/") {
        return { kind: "fail", why: `exit 0 but the first manifest line is not path "/": ${firstLine(line)}` };
      }
    }
    return { kind: "ok", inodes: lines.length };
  }
  const errLines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  const last = errLines.at(-1);
  if (last === undefined) return { kind: "fail", why: `exit ${r.code} with nothing on stderr` };
  const code = ERRNO_RE.exec(last)?.[1];
  if (!last.startsWith("ext4ts: ") || code === undefined) {
    return { kind: "fail", why: `exit ${r.code} without a clear "ext4ts: <ERRNO> ..." line; stderr ends: ${firstLine(last)}` };
  }
  return { kind: "error", code, line: last };
}

function describeExit(r: RunResult): string {
  if (r.timedOut) return "hang";
  if (r.signal !== null) return r.signal;
  return String(r.code);
}

const corpusPresent = existsSync(CORPUS);
const images = corpusPresent ? listImages() : [];
const outcomes = new Map<string, ImageOutcome>();
let workDir = "";

describe("e2fsprogs corpus: `ext4ts manifest` succeeds or fails cleanly", () => {
  if (!corpusPresent || images.length === 0) {
    const why = `no e2fsprogs corpus images at ${CORPUS} (set EXT4TS_CORPUS)`;
    corpusMissing(why);
    return;
  }
  // bin/ext4ts.js runs dist/tools/cli/main.js; say once that it is missing rather than 162 times.
  const built = process.env.EXT4TS_CLI !== undefined || existsSync(path.join(REPO, "dist/tools/cli/main.js"));
  if (!existsSync(CLI) || !built) {
    it("the CLI is built (bin/ext4ts.js and dist/tools/cli/main.js)", () => {
      throw new Error(`the corpus suite runs ${CLI}, which is missing or not built: run \`npm run build\` first`);
    });
    return;
  }

  const pool = new Pool(POOL);
  beforeAll(() => {
    workDir = mkdtempSync(path.join(tmpdir(), "ext4ts-corpus-"));
  });
  afterAll(() => {
    if (workDir !== "") rmSync(workDir, { recursive: true, force: true });
    printSummary();
  });

  for (const name of images) {
    // At most POOL children run at once and vitest starts at most 5 concurrent tests, so a test
    // waits for at most a few others: 3 time limits plus decompression is plenty.
    it.concurrent(name, { timeout: 3 * TIME_LIMIT_MS + 60_000 }, async ({ expect }) => {
      const outcome = await pool.run(async (): Promise<ImageOutcome> => {
        const img = path.join(workDir, `${name}.img`);
        const rssFile = path.join(workDir, `${name}.rss`);
        try {
          await gunzipTo(path.join(CORPUS, name, "image.gz"), img);
          const before = await sha256File(img);
          const r = await runManifest(img, rssFile);
          let verdict = classify(r);
          if (verdict.kind !== "fail" && (await sha256File(img)) !== before) {
            verdict = { kind: "fail", why: "the image bytes changed (manifest must be read-only)" };
          }
          return { verdict, exit: describeExit(r), ms: r.ms, maxRssKb: r.maxRssKb };
        } finally {
          rmSync(img, { force: true });
          rmSync(rssFile, { force: true });
        }
      });
      outcomes.set(name, outcome);
      const v = outcome.verdict;
      if (v.kind === "fail") throw new Error(`${name} (exit ${outcome.exit}): ${v.why}`);
      expect(["ok", "error"]).toContain(v.kind);
    });
  }
});

function printSummary(): void {
  const done = images.filter((n) => outcomes.has(n));
  if (done.length === 0) return;
  let ok = 0;
  const byCode = new Map<string, string[]>();
  const fails: string[] = [];
  let slowest = { name: "", ms: 0 };
  let fattest = { name: "", kb: 0 };
  for (const name of done) {
    const o = outcomes.get(name)!;
    if (o.ms > slowest.ms) slowest = { name, ms: o.ms };
    if ((o.maxRssKb ?? 0) > fattest.kb) fattest = { name, kb: o.maxRssKb ?? 0 };
    const v = o.verdict;
    if (v.kind === "ok") ok++;
    else if (v.kind === "error") byCode.set(v.code, [...(byCode.get(v.code) ?? []), name]);
    else fails.push(`  ${name} (exit ${o.exit}): ${v.why}`);
  }
  const clean = [...byCode.entries()].sort((a, b) => b[1].length - a[1].length);
  const lines = [
    `e2fsprogs corpus summary: ${done.length} images, ${ok} ok, ` +
      `${clean.reduce((n, [, v]) => n + v.length, 0)} clean errors, ${fails.length} failures`,
    ...clean.map(([code, names]) => `  clean ${code}: ${names.length}`),
    `  slowest: ${slowest.name} ${slowest.ms.toFixed(0)} ms` +
      (fattest.kb > 0 ? `; peak RSS: ${fattest.name} ${(fattest.kb / 1024).toFixed(0)} MB` : ""),
    ...(fails.length > 0 ? ["failures:", ...fails] : []),
  ];
  console.log(lines.join("\n"));
}

function findE2fsck(): string | undefined {
  for (const cand of ["e2fsck", "/usr/sbin/e2fsck", "/sbin/e2fsck"]) {
    const r = spawnSync(cand, ["-V"], { stdio: "ignore" });
    if (r.error === undefined) return cand;
  }
  return undefined;
}

function runE2fsck(e2fsck: string, image: string): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(e2fsck, ["-fn", image], {
      stdio: "ignore",
      env: { ...process.env, E2FSCK_CONFIG: "/dev/null", LC_ALL: "C", TZ: "GMT0" },
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", () => {
      clearTimeout(timer);
      resolve("spawn-error");
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve(signal !== null ? signal : String(code));
    });
  });
}

describe("e2fsprogs corpus: our verdict beside e2fsck -fn (informational)", () => {
  const e2fsck = corpusPresent && images.length > 0 ? findE2fsck() : undefined;
  if (e2fsck === undefined) {
    if (corpusPresent && images.length > 0) console.warn("E2FSCK TABLE SKIPPED: e2fsck not found");
    it.skip("e2fsck -fn table (needs the corpus and e2fsck)", () => undefined);
    return;
  }
  it("prints image, ext4ts exit / first error, e2fsck -fn exit, upstream expect.1 exit", { timeout: 600_000 }, async () => {
    const index = readIndex();
    const dir = mkdtempSync(path.join(tmpdir(), "ext4ts-corpus-fsck-"));
    const pool = new Pool(POOL);
    try {
      const rows = await Promise.all(
        images.map((name) =>
          pool.run(async () => {
            const img = path.join(dir, `${name}.img`);
            try {
              await gunzipTo(path.join(CORPUS, name, "image.gz"), img);
              return { name, fsck: await runE2fsck(e2fsck, img) };
            } finally {
              rmSync(img, { force: true });
            }
          }),
        ),
      );
      const width = Math.max(...images.map((n) => n.length));
      const out = [
        `${"image".padEnd(width)}  ${"ext4ts".padEnd(40)}  e2fsck-fn  expect.1`,
      ];
      for (const { name, fsck } of rows) {
        const o = outcomes.get(name);
        let ours = "-";
        if (o !== undefined) {
          const v = o.verdict;
          ours = v.kind === "ok" ? `0 ok (${v.inodes} inodes)` : v.kind === "error" ? `${o.exit} ${v.code}` : `${o.exit} FAIL`;
        }
        const row = index.get(name);
        const upstream = row === undefined ? "?" : row.harness === "custom" ? "custom" : row.expect1Exit;
        out.push(`${name.padEnd(width)}  ${ours.padEnd(40)}  ${fsck.padEnd(9)}  ${upstream}`);
      }
      console.log(out.join("\n"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
