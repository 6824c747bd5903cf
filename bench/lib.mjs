// Helpers shared by the benchmark scripts: running tools with timing and peak RSS, dropping the
// page cache, hashing, formatting results; and, for the benches that compare ext4ts with the
// kernel and fuse2fs on images (write.mjs, streamtest.mjs), their options, their `--child`
// mode, and a scratch area whose mounts, loop devices and fuse2fs are undone however they end.
/* global console, process, performance, setTimeout, clearTimeout */
import { spawn, spawnSync } from 'node:child_process';
import { Buffer } from 'node:buffer';
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

// ---------------------------------------------------------------------------------------------
// options and the --child mode of the image benches (write.mjs, streamtest.mjs)

/**
 * The parseArgs options every image bench has; spread into its own. `child` is internal: the
 * bench runs itself with `--child JSON` for the parts timed in a process of their own.
 */
export const IMAGE_BENCH_OPTIONS = /** @type {const} */ ({
  runs: { type: 'string', default: '3' },
  keep: { type: 'boolean', default: false },
  work: { type: 'string' },
  dist: { type: 'string', default: path.join(REPO, 'dist') },
  seed: { type: 'string', default: '42' },
  child: { type: 'string' },
  help: { type: 'boolean', default: false },
});

/**
 * A bad command line: say so and exit 2.
 * @param {string} what
 * @returns {never}
 */
export function usage(what) {
  console.error(`bench: ${what} (see --help)`);
  process.exit(2);
}

/** "256M" -> bytes (K, M, G: powers of 1024). @param {string} name @param {string} s */
export function size(name, s) {
  const m = /^(\d+)([KMG]?)$/i.exec(s.trim());
  if (m === null) usage(`--${name} ${s}: want a number with an optional K, M or G suffix`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? '').toUpperCase()] ?? 1;
  return Number(m[1]) * mult;
}

/** A whole-number option of at least `min`. @param {string} name @param {string} s @param {number} [min] */
export function count(name, s, min = 1) {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min) usage(`--${name} ${s}: want ${min === 1 ? 'a positive integer' : `an integer of at least ${min}`}`);
  return n;
}

/**
 * In `--child JSON` mode, run `main` on the parsed spec and exit (0, or 1 with the error on
 * stderr, which the parent quotes); otherwise return at once.
 * @template T
 * @param {string | undefined} json
 * @param {(spec: T) => Promise<void>} main
 */
export async function childMode(json, main) {
  if (json === undefined) return;
  try {
    /** @type {unknown} */
    const spec = JSON.parse(json);
    await main(/** @type {T} */ (spec));
    process.exit(0);
  } catch (e) {
    process.stderr.write(`child failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  }
}

/**
 * Run `script --child JSON(spec)` and take its result, the JSON on the last line of its
 * stdout; or why there is none.
 * @param {string} script
 * @param {object} spec
 * @returns {Promise<{ failure: string | undefined, res: unknown }>}
 */
export async function runChild(script, spec) {
  const r = await run(process.execPath, [script, '--child', JSON.stringify(spec)]);
  if (failed(r)) return { failure: `child ${exitText(r)}: ${brief(r.stderr)}`, res: undefined };
  try {
    /** @type {unknown} */
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '');
    return { failure: undefined, res };
  } catch {
    return { failure: `child printed no result: ${brief(r.stdout + r.stderr)}`, res: undefined };
  }
}

/** Peak RSS (VmHWM) of a live process, in KiB. @param {number | undefined} pid */
export function vmHwm(pid) {
  if (pid === undefined) return undefined;
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] !== undefined ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Write a (closed) ext4ts MemoryDevice to a new sparse image file: all-zero 64 KiB pieces are
 * left as holes, so the copy costs what the filesystem holds, not the device size.
 * @param {{ toBytes(): Uint8Array }} dev
 * @param {string} img
 */
export function dumpMemory(dev, img) {
  const bytes = dev.toBytes();
  fs.rmSync(img, { force: true });
  const fd = fs.openSync(img, 'w');
  const zero = Buffer.alloc(1 << 16);
  try {
    fs.ftruncateSync(fd, bytes.length);
    for (let off = 0; off < bytes.length; off += zero.length) {
      const piece = bytes.subarray(off, Math.min(bytes.length, off + zero.length));
      if (!Buffer.from(piece.buffer, piece.byteOffset, piece.length).equals(zero.subarray(0, piece.length))) fs.writeSync(fd, piece, 0, piece.length, off);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * `e2fsck -fn IMG`: why the image is not clean, or undefined when it is.
 * @param {string} e2fsck
 * @param {string} img
 */
export async function fsckProblem(e2fsck, img) {
  const fk = await run(e2fsck, ['-fn', img]);
  return failed(fk) ? `e2fsck -fn: ${exitText(fk)}: ${brief(fk.stdout + fk.stderr)}` : undefined;
}

/**
 * `xs` rotated left by `r`: run r starts with the r-th entry, so that no peer is always the
 * first (cold machine) or the last.
 * @template T
 * @param {T[]} xs
 * @param {number} r
 * @returns {T[]}
 */
export const rotated = (xs, r) => xs.map((_, i) => xs[(i + r) % xs.length]).filter((x) => x !== undefined);

/**
 * What the report says the results ran on, besides Node: kernel release, e2fsprogs and
 * fuse2fs/FUSE versions, CPU count.
 * @param {string} e2fsck
 * @param {string | undefined} fuse2fs
 */
export function hostInfo(e2fsck, fuse2fs) {
  const fv = fuse2fs === undefined ? undefined : spawnSync(fuse2fs, ['-V'], { encoding: 'utf8' });
  return {
    kernel: spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim(),
    e2fsprogs: (spawnSync(e2fsck, ['-V'], { encoding: 'utf8' }).stderr.split('\n')[0] ?? '').trim(),
    fuse: fv === undefined ? 'no fuse2fs' : `${fv.stdout}${fv.stderr}`.split('\n').map((l) => l.trim()).filter((l) => /^(fuse2fs|FUSE library)/.test(l)).join(', '),
    cpus: os.cpus().length,
  };
}

// ---------------------------------------------------------------------------------------------
// scratch area: the work dir, the images in it and the one mount point, for the image benches

/** The filesystem type of the one holding `dir` (stat -f: tmpfs, ext2/ext3, ...). @param {string} dir */
export const fsType = (dir) => spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).stdout.trim();

/**
 * Whether something is mounted on `dir`, from the kernel's mount table: a FUSE mount whose
 * daemon died (Ctrl-C reaches fuse2fs too) fails every stat, so `mountpoint` would say no.
 * @param {string} dir
 */
function isMounted(dir) {
  let at;
  try {
    at = path.join(fs.realpathSync(path.dirname(dir)), path.basename(dir));
  } catch {
    return false;
  }
  // field 5 of a mountinfo line is the mount point, with space, tab, newline and \ as octal escapes
  const decode = (/** @type {string} */ s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(String(o), 8)));
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => decode(l.split(' ')[4] ?? '') === at);
}

/** Whether a mount on `dir` answers (mountpoint stats it): for fuse2fs, that it serves. @param {string} dir */
const answers = (dir) => spawnSync('mountpoint', ['-q', dir]).status === 0;

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * @typedef {object} Mounted an image mounted on the scratch area's mnt
 * @property {undefined} failure
 * @property {number} mountMs
 * @property {number | undefined} pid fuse2fs: its process, whose peak RSS is the peer's; kernel: none
 * @property {() => Promise<{ unmountMs: number, failure: string | undefined }>} unmount
 *   umount mnt and, for fuse2fs, wait for its exit: it writes the volume out as it exits, so
 *   that is part of the unmount's time
 */
/** @typedef {Mounted | { failure: string }} MountResult a mount, or why there is none (nothing to undo) */

/**
 * @typedef {object} ScratchArea
 * @property {string} work the work dir: --work, else a new one on tmpfs (/dev/shm) if there is one
 * @property {string} mnt the mount point, work/mnt
 * @property {(name: string) => string} dir work/NAME, a directory that cleanup removes
 * @property {(name: string) => string} image work/NAME, an image file: any stale copy removed;
 *   cleanup detaches loop devices still on it and removes it
 * @property {(img: string) => Promise<MountResult>} mountLoop mount -o loop IMG MNT
 * @property {(bin: string, img: string) => Promise<MountResult>} mountFuse2fs fuse2fs IMG MNT -f -o fakeroot, until MNT is mounted
 * @property {() => void} unmountLeftover undo what a failed step left: the mount, our fuse2fs, loop devices on our images
 * @property {() => void} cleanup unmountLeftover, then remove the images, the dirs and (when made here) the work dir, unless --keep
 * @property {(msg: string) => never} fatal print "bench: MSG", clean up, exit 2
 */

/**
 * Make the scratch area of an image bench, and clean it up on SIGINT/SIGTERM (exit 130) and
 * on `fatal`. Its default place is tmpfs so that the images' I/O costs no disk time in any peer.
 * @param {{ name: string, work: string | undefined, keep: boolean }} o
 *   name: the new work dir is ext4ts-bench-NAME-XXXXXX; work, keep: the --work and --keep options
 * @returns {ScratchArea}
 */
export function scratchArea(o) {
  const shm = fs.existsSync('/dev/shm') && fsType('/dev/shm') === 'tmpfs' ? '/dev/shm' : os.tmpdir();
  const work = o.work !== undefined ? path.resolve(o.work) : fs.mkdtempSync(path.join(shm, `ext4ts-bench-${o.name}-`));
  fs.mkdirSync(work, { recursive: true });
  const mnt = path.join(work, 'mnt');
  /** @type {Set<string>} */
  const images = new Set();
  /** @type {string[]} */
  const dirs = [mnt];
  /** @type {import('node:child_process').ChildProcess | undefined} */
  let fuseDaemon;

  function unmountLeftover() {
    if (isMounted(mnt)) {
      if (spawnSync('umount', [mnt], { stdio: 'ignore' }).status !== 0) spawnSync('umount', ['-l', mnt], { stdio: 'ignore' });
    }
    if (fuseDaemon !== undefined && fuseDaemon.exitCode === null && fuseDaemon.signalCode === null) fuseDaemon.kill('SIGTERM');
    for (const img of images) {
      if (!fs.existsSync(img)) continue;
      const r = spawnSync('losetup', ['-j', img], { encoding: 'utf8' });
      for (const line of r.stdout.split('\n')) {
        const dev = /^(\/dev\/loop\d+):/.exec(line)?.[1];
        if (dev !== undefined) spawnSync('losetup', ['-d', dev], { stdio: 'ignore' });
      }
    }
  }

  function cleanup() {
    unmountLeftover();
    if (o.keep) {
      log(`kept ${work}`);
      return;
    }
    // a mount unmountLeftover could not undo: removing below it would remove what it holds
    if (isMounted(mnt)) {
      log(`${mnt} is still mounted: not removing ${work}`);
      return;
    }
    for (const img of images) fs.rmSync(img, { force: true });
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    if (o.work === undefined) fs.rmSync(work, { recursive: true, force: true });
  }
  const fatal = cleanupOnExit(cleanup);

  /** @param {string} name */
  function dir(name) {
    const d = path.join(work, name);
    dirs.push(d);
    return d;
  }

  /** @param {string} name */
  function image(name) {
    const img = path.join(work, name);
    images.add(img);
    fs.rmSync(img, { force: true });
    return img;
  }

  /** @param {RunResult} u */
  const umountFailure = (u) => (failed(u) ? `umount failed (${exitText(u)}): ${brief(u.stderr)}` : undefined);

  /** @param {string} img @returns {Promise<MountResult>} */
  async function mountLoop(img) {
    const m = await run('mount', ['-o', 'loop', img, mnt]);
    if (failed(m)) return { failure: `mount -o loop failed (${exitText(m)}): ${brief(m.stderr)}` };
    return {
      failure: undefined,
      mountMs: m.ms,
      pid: undefined,
      unmount: async () => {
        const u = await run('umount', [mnt]);
        return { unmountMs: u.ms, failure: umountFailure(u) };
      },
    };
  }

  /** @param {string} bin @param {string} img @returns {Promise<MountResult>} */
  async function mountFuse2fs(bin, img) {
    // in the foreground, so that its exit (after it has written the volume out) is seen
    const t0 = performance.now();
    const d = spawn(bin, [img, mnt, '-f', '-o', 'fakeroot'], { stdio: ['ignore', 'ignore', 'pipe'] });
    fuseDaemon = d;
    let stderr = '';
    d.stderr.setEncoding('utf8');
    d.stderr.on('data', (/** @type {string} */ s) => {
      if (stderr.length < 1 << 16) stderr += s;
    });
    /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} */
    const exited = new Promise((resolve) => {
      d.on('close', (code, signal) => resolve({ code, signal }));
      d.on('error', (e) => {
        stderr += `spawn failed: ${e.message}\n`;
        resolve({ code: null, signal: null });
      });
    });
    let up = false;
    while (!up && d.exitCode === null && d.signalCode === null && performance.now() - t0 < 20_000) {
      up = answers(mnt);
      if (!up) await sleep(5);
    }
    if (!up) {
      unmountLeftover();
      await exited;
      return { failure: `fuse2fs did not mount: ${brief(stderr)}` };
    }
    return {
      failure: undefined,
      mountMs: performance.now() - t0,
      pid: d.pid,
      unmount: async () => {
        const t1 = performance.now();
        const u = await run('umount', [mnt]);
        if (failed(u)) unmountLeftover(); // umount -l and SIGTERM, or the wait below never ends
        const e = await exited;
        const unmountMs = performance.now() - t1;
        const failure = umountFailure(u) ?? (e.code !== 0 ? `fuse2fs exited with ${e.signal ?? String(e.code)}: ${brief(stderr)}` : undefined);
        return { unmountMs, failure };
      },
    };
  }

  // a --work DIR may hold the mount of an earlier, killed run: undo it before mkdir meets it
  unmountLeftover();
  fs.mkdirSync(mnt, { recursive: true });
  return { work, mnt, dir, image, mountLoop, mountFuse2fs, unmountLeftover, cleanup, fatal };
}
