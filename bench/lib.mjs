// Helpers shared by the benchmark scripts (extract.mjs, populate.mjs): running tools with
// timing and peak RSS, dropping the page cache, hashing, and formatting results.
/* global process, performance, setTimeout, clearTimeout */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOOL_TIMEOUT_MS = 30 * 60 * 1000;
/** @param {string} msg */
export const log = (msg) => {
  process.stderr.write(`[bench] ${msg}\n`);
};

// ---------------------------------------------------------------------------------------------
// processes

/**
 * @typedef {object} RunResult
 * @property {number | null} code
 * @property {NodeJS.Signals | null} signal
 * @property {string} stdout
 * @property {string} stderr
 * @property {number} ms wall time from spawn to exit
 * @property {number | undefined} rssKb peak RSS from /usr/bin/time, when wrapped
 */

/** @returns {string | undefined} */
export function findTimeBin() {
  const r = spawnSync('/usr/bin/time', ['-f', '%M', 'true'], { stdio: 'ignore' });
  return r.error === undefined && r.status === 0 ? '/usr/bin/time' : undefined;
}
export const TIME_BIN = findTimeBin();

/**
 * @param {string} name
 * @returns {string | undefined}
 */
export function findTool(name) {
  for (const cand of [name, `/usr/sbin/${name}`, `/sbin/${name}`]) {
    const r = spawnSync(cand, ['-V'], { stdio: 'ignore' });
    if (r.error === undefined) return cand;
  }
  return undefined;
}

/**
 * Run a command, timing it from spawn to exit.
 * @param {string} cmd
 * @param {string[]} argv
 * @param {{ rss?: boolean, cwd?: string }} [o]
 * @returns {Promise<RunResult>}
 */
export function run(cmd, argv, o = {}) {
  let file = cmd;
  let args = argv;
  /** @type {string | undefined} */
  let rssFile;
  if (o.rss === true && TIME_BIN !== undefined) {
    rssFile = path.join(os.tmpdir(), `ext4ts-bench-rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
    file = TIME_BIN;
    args = ['-f', '%M', '-o', rssFile, cmd, ...argv];
  }
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(file, args, { cwd: o.cwd ?? REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    /** @type {string[]} */
    const out = [];
    /** @type {string[]} */
    const err = [];
    let outLen = 0;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (/** @type {string} */ s) => {
      if ((outLen += s.length) < 1 << 20) out.push(s);
    });
    child.stderr.on('data', (/** @type {string} */ s) => {
      if (err.join('').length < 1 << 16) err.push(s);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), TOOL_TIMEOUT_MS);
    /**
     * @param {number | null} code
     * @param {NodeJS.Signals | null} signal
     */
    const done = (code, signal) => {
      const ms = performance.now() - t0;
      clearTimeout(timer);
      /** @type {number | undefined} */
      let rssKb;
      if (rssFile !== undefined) {
        try {
          const last = fs.readFileSync(rssFile, 'utf8').trim().split('\n').at(-1) ?? '';
          const n = Number(last);
          if (Number.isFinite(n) && n > 0) rssKb = n;
        } catch {
          rssKb = undefined;
        }
        fs.rmSync(rssFile, { force: true });
      }
      resolve({ code, signal, stdout: out.join(''), stderr: err.join(''), ms, rssKb });
    };
    child.on('error', (e) => {
      err.push(`spawn ${file} failed: ${e.message}\n`);
      done(null, null);
    });
    child.on('close', done);
  });
}

/** @param {RunResult} r */
export const failed = (r) => r.code !== 0 || r.signal !== null;
/** @param {RunResult} r */
export const exitText = (r) => (r.signal !== null ? `signal ${r.signal}` : `exit ${String(r.code)}`);
/** @param {string} s @param {number} [n] */
export const firstLines = (s, n = 5) => s.split('\n').filter((l) => l.trim() !== '').slice(0, n).join('\n    ');
/**
 * The one stderr line worth quoting: the CLI's last `ext4ts: ...` line, else the first line
 * naming an error, else the first line; fit for a Markdown table cell.
 * @param {string} s
 */
export function brief(s) {
  const lines = s.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const line = lines.filter((l) => l.startsWith('ext4ts: ')).at(-1) ?? lines.find((l) => /Error\b|ERROR/.test(l)) ?? lines[0] ?? '(no stderr)';
  return (line.length > 200 ? `${line.slice(0, 200)}...` : line).replaceAll('|', '\\|');
}

/** sync, then drop the page cache; returns why it failed, or undefined when done. */
export function dropCaches() {
  spawnSync('sync');
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** @param {string} file @returns {Promise<string>} */
export async function sha256File(file) {
  return createHash('sha256').update(await fs.promises.readFile(file)).digest('hex');
}

/** @param {number[]} xs */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  if (s.length === 0) return NaN;
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}
/** @param {number} ms */
export const secs = (ms) => (Number.isNaN(ms) ? 'n/a' : ms < 1000 ? (ms / 1000).toFixed(3) : (ms / 1000).toFixed(2));
/** @param {number} bytes @param {number} ms */
export const mbps = (bytes, ms) => (Number.isNaN(ms) ? 'n/a' : (bytes / 1e6 / (ms / 1000)).toFixed(0));
/** @param {number} a @param {number} b */
export const ratio = (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? 'n/a' : `${(a / b).toFixed(2)}x`);

/**
 * Run `cleanup` when the bench is interrupted (SIGINT/SIGTERM, exit 130), and return the
 * bench's `fatal`: print "bench: MSG", clean up, exit 2 (a setup error).
 * @param {() => void} cleanup
 * @returns {(msg: string) => never}
 */
export function cleanupOnExit(cleanup) {
  for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
    process.on(sig, () => {
      log(`${sig}: cleaning up`);
      cleanup();
      process.exit(130);
    });
  }
  return (msg) => {
    process.stderr.write(`bench: ${msg}\n`);
    cleanup();
    process.exit(2);
  };
}
