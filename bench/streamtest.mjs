#!/usr/bin/env node
// W4 streamtest benchmark: Ceph FileStore's object write path (tools/explorer/streamtest.ts:
// writer tasks create objects, write their data, hand the open file to a flusher that calls
// sync_file_range / fdatasync / fsync, set three xattrs, one needing the external block; a
// final syncfs) on ext4ts, in memory and on a file image, against the Linux kernel (loop
// mount of a tmpfs file) and fuse2fs, in one run. Objects per second, from the same plan.
//
//   node bench/streamtest.mjs [--runs 3] [--keep] [--work DIR] [--dist DIR] [--python python3]
//                             [--tools mem,mem-quota,file,kernel,fuse2fs] [--image-size 1G] [--quota]
//                             [--workers 8] [--flushers 1] [--objects 4000] [--object-bytes 65536]
//                             [--updates 0] [--syncs 0] [--seed 42]
//
// 1. One plan from planStreamtest (dist/tools/explorer/streamtest.js) with the options above:
//    every peer runs the very same operations, data and names.
// 2. One empty template image made by mke2fs: `-t ext4 -b 4096 -I 256 -E
//    assume_storage_prezeroed=1` (256-byte inodes, as on Ceph's OSDs, so the spill attribute
//    needs the external block; prezeroed, so the kernel starts no lazy inode-table zeroing),
//    plus `-O quota,project` with --quota. Without --quota because a kernel built without
//    CONFIG_QUOTA (this project's machine) refuses to mount a quota filesystem.
// 3. Per run (peer order rotated each run), per peer, on a fresh copy of the template in the
//    work dir (tmpfs by default; untimed):
//      mem        ext4ts in a child process: the same filesystem made by ext4ts mkfsDevice on a
//                 MemoryDevice (untimed), Volume.mount, runStreamtest, vol.unmount(); the device
//                 is then dumped to an image file for the checks
//      mem-quota  the same with -O quota,project (always: ext4ts's own setting for the W4 image)
//      file       ext4ts in a child process on FileDevice.open(IMG) (thread-pool pread/pwrite,
//                 as openImage() gives), Volume.mount, runStreamtest, unmount
//      kernel     mount -o loop IMG MNT; tools/explorer/dir_runner.py on MNT (runStreamtestOnDir:
//                 Python threads, setxattr, sync_file_range); umount MNT
//      fuse2fs    fuse2fs IMG MNT -f -o fakeroot; the same runner on MNT; umount MNT and wait for
//                 fuse2fs to exit
//    The time counted is runStreamtest's: from the first mkdir to after the final syncfs (the
//    peers' reference driver counts the same span); mount and unmount are reported, not counted.
// 4. Every image is checked with `e2fsck -fn` after every run. After the first run every
//    peer's final tree is checked against the plan: ext4ts in-process (verifyStreamtest) and,
//    but for quota images, through a kernel read-only loop mount (dir_runner.py --verify-only);
//    the kernel and fuse2fs through their own mount (--verify). A mismatch or an unclean image is
//    printed loudly, that peer's times are not counted, exit 1.
// 5. Print medians (objects/s, MB/s, p99 latencies of setxattr and sync_file_range) and the
//    ratios ext4ts/kernel and ext4ts/fuse2fs as Markdown on stdout; progress goes to stderr.

/* global console, process, performance */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  IMAGE_BENCH_OPTIONS, REPO, brief, childMode, count, dumpMemory, exitText, failed, findTool, firstLines, fsType, fsckProblem, hostInfo, log, median,
  ratio, rotated, run, runChild, scratchArea, size, usage, vmHwm,
} from './lib.mjs';

const SELF = fileURLToPath(import.meta.url);
const RUNNER = path.join(REPO, 'tools/explorer/dir_runner.py');

// ---------------------------------------------------------------------------------------------
// the parts of ext4ts's build used here, typed structurally so the bench type-checks without one

/**
 * @typedef {object} StreamOpts
 * @property {number} workers
 * @property {number} flushers
 * @property {number} objects
 * @property {number} objectBytes
 * @property {number} updates
 * @property {number} syncs
 * @property {number} seed
 */
/** @typedef {{ readonly opts: StreamOpts }} Plan */
/** @typedef {{ n: number, p50: number, p90: number, p99: number, max: number }} LatSum */
/**
 * @typedef {object} Vol
 * @property {() => Promise<void>} unmount
 */
/**
 * @typedef {object} Dev
 * @property {number} size
 * @property {() => Promise<void>} close
 */
/** @typedef {Dev & { toBytes(): Uint8Array }} MemDev */
/**
 * @typedef {object} Ext4tsNode
 * @property {{ mount(dev: Dev, opts: { readOnly: boolean }): Promise<Vol> }} Volume
 * @property {new (size: number) => MemDev} MemoryDevice
 * @property {{ open(path: string, o: { readOnly: boolean, syncIO: boolean }): Promise<Dev> }} FileDevice
 */
/**
 * @typedef {object} StreamtestMod
 * @property {(o: StreamOpts) => Plan} planStreamtest
 * @property {(vol: Vol, plan: Plan) => Promise<{ objects: number, operations: number, elapsedMs: number, bytesWritten: number, latencies: Map<string, number[]> }>} runStreamtest
 * @property {(vol: Vol, plan: Plan) => Promise<string[]>} verifyStreamtest
 */
/**
 * @typedef {object} DirTargetMod
 * @property {(dir: string, plan: Plan, o: { python: string, runner: string, verify: boolean }) =>
 *   Promise<{ objects: number, operations: number, elapsedMs: number, bytesWritten: number, latencies: Map<string, LatSum>, verify: { badObjects: number, problems: string[] } | undefined }>} runStreamtestOnDir
 * @property {(dir: string, plan: Plan, o: { python: string, runner: string }) => Promise<{ badObjects: number, problems: string[] }>} verifyStreamtestOnDir
 * @property {(l: Map<string, number[]>) => Map<string, LatSum>} summarizeLatencies
 */
/**
 * @typedef {object} MkfsMod
 * @property {((dev: Dev, o: object) => Promise<unknown>) | undefined} mkfsDevice
 */

/** @param {string} dist @param {string} rel @returns {Promise<unknown>} */
async function load(dist, rel) {
  /** @type {unknown} */
  const mod = await import(pathToFileURL(path.join(dist, rel)).href);
  return mod;
}

/** The filesystem every peer starts from, as mke2fs arguments. @param {boolean} quota */
const mkfsArgs = (quota) => ['-t', 'ext4', '-b', '4096', '-I', '256', ...(quota ? ['-O', 'quota,project'] : []),
  '-E', `${quota ? 'quotatype=usrquota:grpquota:prjquota,' : ''}assume_storage_prezeroed=1`];
/** The same for ext4ts mkfsDevice (onto a zeroed MemoryDevice). @param {boolean} quota */
const mkfsDeviceOpts = (quota) => ({
  quiet: true, knownZero: true, fsType: 'ext4', blockSize: '4096', inodeSize: '256', features: quota ? ['quota,project'] : [],
  extended: [`${quota ? 'quotatype=usrquota:grpquota:prjquota,' : ''}assume_storage_prezeroed=1`],
});

// ---------------------------------------------------------------------------------------------
// the child: ext4ts runs the plan on a MemoryDevice or a FileDevice, timed from inside

/**
 * @typedef {object} ChildSpec
 * @property {'mem' | 'file'} target
 * @property {string} img file: the image; mem: where the device is dumped afterwards
 * @property {string} template mem: an mke2fs image of the same options, used only when the build has no mkfsDevice
 * @property {boolean} quota mem: -O quota,project
 * @property {number} imageBytes mem: device size
 * @property {boolean} verify check the tree against the plan after the timed part
 * @property {string} dist
 * @property {StreamOpts} W
 */
/**
 * @typedef {object} ChildResult
 * @property {number} mountMs
 * @property {number} elapsedMs first mkdir to after the final syncfs
 * @property {number} unmountMs
 * @property {number} operations
 * @property {number} bytesWritten
 * @property {Record<string, LatSum>} latencies
 * @property {string[] | null} problems what verifyStreamtest found (null: not asked)
 * @property {number} rssKb peak RSS (VmHWM), before the dump
 */

/** @param {ChildSpec} spec */
async function childMain(spec) {
  const api = /** @type {Ext4tsNode} */ (await load(spec.dist, 'src/node.js'));
  const st = /** @type {StreamtestMod} */ (await load(spec.dist, 'tools/explorer/streamtest.js'));
  const dt = /** @type {DirTargetMod} */ (await load(spec.dist, 'tools/explorer/dir_target.js'));
  const plan = st.planStreamtest(spec.W);
  /** @type {MemDev | undefined} */
  let mem;
  /** @type {Dev} */
  let dev;
  if (spec.target === 'mem') {
    const { mkfsDevice } = /** @type {MkfsMod} */ (await load(spec.dist, 'tools/mkfs/mkfs.js'));
    if (mkfsDevice !== undefined) {
      dev = mem = new api.MemoryDevice(spec.imageBytes);
      await mkfsDevice(dev, mkfsDeviceOpts(spec.quota));
    } else {
      const from = /** @type {{ from(b: Uint8Array): MemDev }} */ (/** @type {unknown} */ (api.MemoryDevice));
      dev = mem = from.from(new Uint8Array(fs.readFileSync(spec.template)));
    }
  } else {
    dev = await api.FileDevice.open(spec.img, { readOnly: false, syncIO: false });
  }
  const t0 = performance.now();
  const vol = await api.Volume.mount(dev, { readOnly: false });
  const mountMs = performance.now() - t0;
  const r = await st.runStreamtest(vol, plan);
  const problems = spec.verify ? await st.verifyStreamtest(vol, plan) : null;
  const t1 = performance.now();
  await vol.unmount();
  const unmountMs = performance.now() - t1;
  /** @type {ChildResult} */
  const res = {
    mountMs, elapsedMs: r.elapsedMs, unmountMs, operations: r.operations, bytesWritten: r.bytesWritten,
    latencies: Object.fromEntries(dt.summarizeLatencies(r.latencies)), problems, rssKb: vmHwm(process.pid) ?? 0,
  };
  if (mem !== undefined) dumpMemory(mem, spec.img);
  process.stdout.write(`${JSON.stringify(res)}\n`);
}

// ---------------------------------------------------------------------------------------------
// options

const { values: opt } = parseArgs({
  options: {
    ...IMAGE_BENCH_OPTIONS,
    python: { type: 'string', default: 'python3' },
    tools: { type: 'string', default: 'mem,mem-quota,file,kernel,fuse2fs' },
    'image-size': { type: 'string', default: '1G' },
    quota: { type: 'boolean', default: false },
    workers: { type: 'string', default: '8' },
    flushers: { type: 'string', default: '1' },
    objects: { type: 'string', default: '4000' },
    'object-bytes': { type: 'string', default: '65536' },
    updates: { type: 'string', default: '0' },
    syncs: { type: 'string', default: '0' },
  },
});

await childMode(opt.child, childMain);

if (opt.help) {
  console.log('usage: node bench/streamtest.mjs [--runs 3] [--keep] [--work DIR] [--dist DIR] [--python python3] ' +
    '[--tools mem,mem-quota,file,kernel,fuse2fs] [--image-size 1G] [--quota] [--workers 8] [--flushers 1] [--objects 4000] ' +
    '[--object-bytes 65536] [--updates 0] [--syncs 0] [--seed 42]');
  process.exit(0);
}

const RUNS = count('runs', opt.runs);
const DIST = path.resolve(opt.dist);
const IMAGE_SIZE = opt['image-size'];
const IMAGE_BYTES = size('image-size', IMAGE_SIZE);
const QUOTA = opt.quota;
/** @type {StreamOpts} */
const W = {
  workers: count('workers', opt.workers),
  flushers: count('flushers', opt.flushers),
  objects: count('objects', opt.objects),
  objectBytes: count('object-bytes', opt['object-bytes']),
  updates: count('updates', opt.updates, 0),
  syncs: count('syncs', opt.syncs, 0),
  seed: count('seed', opt.seed, 0),
};
// Data, overwrites past EOF, the xattr block and a share of the directories, with slack.
if (W.objects * (W.objectBytes * (1 + W.updates) + 3 * 4096) * 1.5 > IMAGE_BYTES) usage(`--image-size ${IMAGE_SIZE} is too small for the workload`);
/** @typedef {'mem' | 'mem-quota' | 'file' | 'kernel' | 'fuse2fs'} PeerId */
/** @type {PeerId[]} */
const PEER_ORDER = ['mem', 'mem-quota', 'file', 'kernel', 'fuse2fs'];
/** @param {PeerId} p */
const isExt4ts = (p) => p === 'mem' || p === 'mem-quota' || p === 'file';
/** @param {PeerId} p */
const quotaOf = (p) => p === 'mem-quota' || QUOTA;
const wantPeers = new Set(opt.tools.split(',').filter((x) => x !== ''));
for (const t of wantPeers) if (!PEER_ORDER.includes(/** @type {PeerId} */ (t))) usage(`--tools: unknown peer ${t}`);

// ---------------------------------------------------------------------------------------------
// work dir, mounts and cleanup

const scratch = scratchArea({ name: 'streamtest', work: opt.work, keep: opt.keep });
const { work, mnt } = scratch;
// annotated here: TypeScript narrows after a `never` call only through a declared type
/** @type {(msg: string) => never} */
const fatal = scratch.fatal;

const banner = '!'.repeat(78);

// ---------------------------------------------------------------------------------------------
// steps

/**
 * @typedef {object} Step one timed run of one peer
 * @property {string | undefined} failure
 * @property {number} mountMs
 * @property {number} elapsedMs first mkdir to after the final syncfs: the time counted
 * @property {number} unmountMs
 * @property {number} operations
 * @property {number} bytesWritten
 * @property {Record<string, LatSum>} latencies
 * @property {string[] | null} problems the peer's own check of its tree (null: not asked)
 * @property {number | undefined} rssKb ext4ts: the child; fuse2fs: the fuse2fs process
 */

/**
 * Run this script as an ext4ts child; its JSON result.
 * @param {Omit<ChildSpec, 'dist' | 'W'>} spec
 */
async function child(spec) {
  const c = await runChild(SELF, { ...spec, dist: DIST, W });
  return { failure: c.failure, res: /** @type {ChildResult | undefined} */ (c.res) };
}

/** @param {unknown} e */
const message = (e) => (e instanceof Error ? e.message : String(e));

/**
 * The runner on a mounted directory.
 * @param {DirTargetMod} dt @param {Plan} plan @param {boolean} verify
 * @returns {Promise<Partial<Step>>}
 */
async function onDir(dt, plan, verify) {
  try {
    const r = await dt.runStreamtestOnDir(mnt, plan, { python: opt.python, runner: RUNNER, verify });
    const problems = r.verify === undefined ? null : r.verify.badObjects === 0 ? [] : [`${r.verify.badObjects} bad object(s)`, ...r.verify.problems];
    return { elapsedMs: r.elapsedMs, operations: r.operations, bytesWritten: r.bytesWritten, latencies: Object.fromEntries(r.latencies), problems };
  } catch (e) {
    return { failure: message(e) };
  }
}

/**
 * The timed part of one step.
 * @param {PeerId} peer @param {string} img @param {string} template @param {boolean} first
 * @param {DirTargetMod} dt @param {Plan} plan @param {string} fuse2fs
 * @returns {Promise<Step>}
 */
async function exec(peer, img, template, first, dt, plan, fuse2fs) {
  /** @type {Step} */
  const step = { failure: undefined, mountMs: 0, elapsedMs: NaN, unmountMs: 0, operations: 0, bytesWritten: 0, latencies: {}, problems: null, rssKb: undefined };
  if (isExt4ts(peer)) {
    const c = await child({ target: peer === 'file' ? 'file' : 'mem', img, template, quota: quotaOf(peer), imageBytes: IMAGE_BYTES, verify: first });
    if (c.res === undefined) return { ...step, failure: c.failure };
    const { mountMs, elapsedMs, unmountMs, operations, bytesWritten, latencies, problems, rssKb } = c.res;
    return { ...step, mountMs, elapsedMs, unmountMs, operations, bytesWritten, latencies, problems, rssKb };
  }
  const m = peer === 'kernel' ? await scratch.mountLoop(img) : await scratch.mountFuse2fs(fuse2fs, img);
  if (m.failure !== undefined) return { ...step, failure: m.failure };
  const r = await onDir(dt, plan, first);
  const rssKb = vmHwm(m.pid); // fuse2fs: its process's; kernel: none to count
  const u = await m.unmount();
  if (r.failure !== undefined) return { ...step, failure: r.failure };
  if (u.failure !== undefined) return { ...step, failure: u.failure };
  return { ...step, ...r, mountMs: m.mountMs, unmountMs: u.unmountMs, rssKb };
}

// ---------------------------------------------------------------------------------------------
// main

/**
 * @typedef {object} Case one peer
 * @property {PeerId} peer
 * @property {Step[]} steps the timed steps that count
 * @property {string | undefined} broken why its times do not count
 * @property {string | undefined} skipped why it did not run
 * @property {string} check the tree check after the first run
 * @property {string} fsck e2fsck -fn over all its images
 */

const LABEL = {
  mem: 'ext4ts, MemoryDevice',
  'mem-quota': 'ext4ts, MemoryDevice, quota,project',
  file: 'ext4ts, FileDevice on tmpfs',
  kernel: 'kernel ext4, loop on tmpfs file',
  fuse2fs: 'fuse2fs, tmpfs file',
};

/** @param {number} ms */
const s3 = (ms) => (Number.isNaN(ms) ? 'n/a' : (ms / 1000).toFixed(2));
/** @param {number} x @param {number} [d] */
const fix = (x, d = 0) => (Number.isNaN(x) ? 'n/a' : x.toFixed(d));

async function main() {
  const e2fsck = findTool('e2fsck');
  const mke2fs = findTool('mke2fs');
  if (e2fsck === undefined || mke2fs === undefined) fatal('e2fsck or mke2fs not found (apt install e2fsprogs): the images cannot be made and checked');
  if (!fs.existsSync(path.join(DIST, 'src/node.js')) || !fs.existsSync(path.join(DIST, 'tools/explorer/dir_target.js'))) {
    fatal(`no ext4ts build in ${DIST} (run \`npm run build\`, or pass --dist DIR from \`npx tsc -p tsconfig.build.json --outDir DIR\`)`);
  }
  if (!fs.existsSync(RUNNER)) fatal(`${RUNNER} is missing`);
  const st = /** @type {StreamtestMod} */ (await load(DIST, 'tools/explorer/streamtest.js'));
  const dt = /** @type {DirTargetMod} */ (await load(DIST, 'tools/explorer/dir_target.js'));
  const plan = st.planStreamtest(W);
  const root = process.getuid?.() === 0;
  const python = spawnSync(opt.python, ['--version'], { encoding: 'utf8' });
  const pythonV = python.error === undefined && python.status === 0 ? `${python.stdout}${python.stderr}`.trim() : undefined;
  const fuse2fs = findTool('fuse2fs');
  /** @param {string} img */
  const fsck = (img) => fsckProblem(e2fsck, img);

  // 1. template images (mke2fs), one per quota setting in use
  /** @type {Map<boolean, string>} */
  const templates = new Map();
  /** @param {boolean} quota */
  const template = async (quota) => {
    const have = templates.get(quota);
    if (have !== undefined) return have;
    const img = scratch.image(`template${quota ? '-quota' : ''}.img`);
    const m = await run(mke2fs, ['-q', '-F', ...mkfsArgs(quota), img, IMAGE_SIZE]);
    if (failed(m)) fatal(`mke2fs failed (${exitText(m)}): ${brief(m.stderr)}`);
    const bad = await fsck(img);
    if (bad !== undefined) fatal(`the template is not clean: ${bad}`);
    templates.set(quota, img);
    return img;
  };

  // 2. what runs
  /** @type {Partial<Record<PeerId, string>>} */
  const skip = {};
  if (!root) skip.kernel = 'needs root (loop mount)';
  else if (!fs.existsSync('/dev/loop-control')) skip.kernel = 'no /dev/loop-control';
  if (fuse2fs === undefined) skip.fuse2fs = 'fuse2fs not found (apt install fuse2fs)';
  else if (!fs.existsSync('/dev/fuse')) skip.fuse2fs = 'no /dev/fuse';
  else if (!root) skip.fuse2fs = 'needs root (the tree check and cleanup use loop mounts; fuse2fs -o fakeroot)';
  if (pythonV === undefined) skip.kernel = skip.fuse2fs = `${opt.python} not found: the runner on a mount is Python`;
  const peers = PEER_ORDER.filter((p) => wantPeers.has(p));
  const uptimeBefore = spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();
  const loads = [os.loadavg()];
  /** @type {Case[]} */
  const cases = peers.map((peer) => ({ peer, steps: [], broken: undefined, skipped: skip[peer], check: 'not run', fsck: 'n/a' }));
  let bad = false;
  const mb = (W.objects * W.objectBytes) / 1e6;
  log(`plan: ${W.objects} objects of ${W.objectBytes} bytes (${mb.toFixed(0)} MB), ${W.workers} writers, ${W.flushers} flusher(s), ` +
    `${W.updates} updates, ${W.syncs} syncs, seed ${W.seed}; work dir ${work} (${fsType(work)})`);

  for (let r = 0; r < RUNS; r++) {
    for (const c of rotated(cases, r)) {
      if (c.broken !== undefined || c.skipped !== undefined) continue;
      const first = c.steps.length === 0;
      const quota = quotaOf(c.peer);
      // prepare (untimed): a fresh copy of the template; mem makes its own and dumps it here
      const img = scratch.image(`${c.peer}.img`);
      const tmpl = await template(quota);
      if (c.peer === 'file' || c.peer === 'kernel' || c.peer === 'fuse2fs') {
        const cp = spawnSync('cp', ['--sparse=always', tmpl, img]);
        if (cp.status !== 0) fatal(`cp failed: ${cp.stderr.toString()}`);
      }
      spawnSync('sync');
      // time
      const step = await exec(c.peer, img, tmpl, first, dt, plan, fuse2fs ?? 'fuse2fs');
      if (step.failure !== undefined) {
        scratch.unmountLeftover();
        c.broken = `failed${first ? '' : ` in run ${r + 1}`}: ${step.failure}`;
        console.error(`${banner}\n!!! ${c.peer}: ${c.broken}\n${banner}`);
        if (isExt4ts(c.peer)) bad = true;
        continue;
      }
      // check (untimed): e2fsck every image; the first run's tree against the plan
      const unclean = await fsck(img);
      if (unclean !== undefined) {
        c.broken = `image NOT CLEAN (run ${r + 1}): ${unclean}`;
        c.fsck = `**NOT CLEAN** (run ${r + 1})`;
        const fk = await run(e2fsck, ['-fn', img]);
        console.error(`${banner}\n!!! ${c.peer}: the image FAILS e2fsck -fn; its times are not counted\n${banner}\n    ${firstLines(fk.stdout + fk.stderr, 25)}`);
        bad = true;
        continue;
      }
      c.fsck = `clean (${c.steps.length + 1})`;
      if (first) {
        const problems = [...(step.problems ?? [])];
        const how = [c.peer === 'kernel' ? 'own mount' : c.peer === 'fuse2fs' ? 'through fuse2fs' : 'ext4ts'];
        if (c.peer !== 'kernel' && !quota && root) {
          // the kernel reads the tree the peer left
          const m = await run('mount', ['-o', 'ro,loop', img, mnt]);
          if (failed(m)) problems.push(`the kernel cannot mount the image: ${brief(m.stderr)}`);
          else {
            try {
              const v = await dt.verifyStreamtestOnDir(mnt, plan, { python: opt.python, runner: RUNNER });
              if (v.badObjects > 0) problems.push(`kernel read-back: ${v.badObjects} bad object(s)`, ...v.problems);
            } catch (e) {
              problems.push(`kernel read-back failed: ${message(e)}`);
            } finally {
              await run('umount', [mnt]);
            }
          }
          how.push('kernel read-back');
        }
        if (problems.length > 0) {
          c.check = `**WRONG: ${problems.length} problem(s)**`;
          c.broken = `WRONG TREE: ${problems.slice(0, 3).join('; ')}`;
          console.error(`${banner}\n!!! ${c.peer}: THE TREE IS NOT THE PLAN'S FINAL STATE; its times are not counted\n${banner}`);
          for (const p of problems.slice(0, 25)) console.error(`    ${p}`);
          bad = true;
          continue;
        }
        c.check = `ok (${how.join(' + ')})`;
      }
      c.steps.push(step);
      const lat = (/** @type {string} */ k) => step.latencies[k]?.p99 ?? NaN;
      log(`run ${r + 1}/${RUNS} ${c.peer}: ${s3(step.elapsedMs)} s, ${fix(W.objects / (step.elapsedMs / 1000))} objects/s ` +
        `(p99 setxattr ${fix(lat('setxattr'), 2)} ms, sync_file_range ${fix(lat('sync_file_range'), 2)} ms; mount ${s3(step.mountMs)} s, unmount ${s3(step.unmountMs)} s)`);
    }
    loads.push(os.loadavg());
  }
  const uptimeAfter = spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();

  // 3. report
  /** @param {Case | undefined} c @param {(s: Step) => number} f */
  const med = (c, f) => (c === undefined || c.broken !== undefined || c.steps.length === 0 ? NaN : median(c.steps.map(f)));
  /** @param {Case | undefined} c */
  const medTime = (c) => med(c, (s) => s.elapsedMs);
  /** @param {Case | undefined} c */
  const medRate = (c) => med(c, (s) => W.objects / (s.elapsedMs / 1000));
  /** @param {Case} c @param {string} k */
  const medP99 = (c, k) => med(c, (s) => s.latencies[k]?.p99 ?? NaN);
  const host = hostInfo(e2fsck, fuse2fs);
  const maxLoad = Math.max(...loads.map((l) => l[0] ?? 0));
  const cpus = host.cpus;
  const cmdline = ['node', path.relative(process.cwd(), SELF) || SELF, ...process.argv.slice(2)].join(' ');
  const mkfsText = (/** @type {boolean} */ q) => `mke2fs -q -F ${mkfsArgs(q).join(' ')} IMG ${IMAGE_SIZE}`;
  const runnerText = `${opt.python} tools/explorer/dir_runner.py PLAN.json POOL.bin MNT`;
  const HOW = {
    mem: `ext4ts mkfsDevice (the same options) onto MemoryDevice(${IMAGE_SIZE}); Volume.mount; runStreamtest; unmount`,
    'mem-quota': 'as mem, with -O quota,project -E quotatype=usrquota:grpquota:prjquota',
    file: 'FileDevice.open(IMG) (thread-pool I/O); Volume.mount; runStreamtest; unmount',
    kernel: `mount -o loop IMG MNT; ${runnerText}; umount MNT`,
    fuse2fs: `fuse2fs IMG MNT -f -o fakeroot; ${runnerText}; umount MNT (until fuse2fs exits)`,
  };
  const lines = [
    '## W4 streamtest: objects/s, ext4ts vs the kernel and fuse2fs',
    '',
    `Command: \`${cmdline}\`.`,
    '',
    `Plan (planStreamtest): ${W.objects} objects of ${W.objectBytes} bytes (${mb.toFixed(0)} MB), ${W.workers} writers, ${W.flushers} flusher(s), ` +
      `${W.updates} updates per object, ${W.syncs} syncfs besides the final one, seed ${W.seed}; the same plan on every peer. ` +
      `Images: \`${mkfsText(QUOTA)}\` (ext4ts mem: the same options through mkfsDevice), a fresh one per step in ${work} (${fsType(work)}). ` +
      `${RUNS} run(s) per peer, order rotated each run; medians. Time = first mkdir to after the final syncfs (mount and unmount not counted); MB/s = object data written (decimal MB) / time. ` +
      `Node ${process.version}, ${pythonV ?? 'no python'}, kernel ${host.kernel}, ${host.e2fsprogs}, ${host.fuse}, ${cpus} CPUs. ` +
      `Load average (1 min) ${loads.map((l) => (l[0] ?? 0).toFixed(2)).join(' / ')} before and after each run; uptime before: \`${uptimeBefore}\`, after: \`${uptimeAfter}\`.` +
      (maxLoad > cpus * 0.5 ? ` **The machine was shared with other jobs (load up to ${maxLoad.toFixed(1)} on ${cpus} CPUs): absolute figures are noisy, quote the ratios.**` : ''),
    '',
    '| peer | objects/s | MB/s | time (s) | p99 setxattr (ms) | p99 sync_file_range (ms) | mount (s) | unmount (s) | runs | tree check | e2fsck -fn | what runs |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const c of cases) {
    const t = medTime(c);
    const how = (c.skipped !== undefined ? `**skipped: ${c.skipped}**` : c.broken !== undefined ? `**${c.broken}**` : HOW[c.peer]).replaceAll('|', '\\|');
    lines.push(`| ${LABEL[c.peer]} | ${fix(medRate(c))} | ${fix(med(c, (s) => s.bytesWritten / 1e6 / (s.elapsedMs / 1000)))} | ${s3(t)} | ` +
      `${fix(medP99(c, 'setxattr'), 2)} | ${fix(medP99(c, 'sync_file_range'), 2)} | ${s3(med(c, (s) => s.mountMs))} | ${s3(med(c, (s) => s.unmountMs))} | ` +
      `${c.steps.length} | ${c.check} | ${c.fsck} | ${how} |`);
  }
  const refs = cases.filter((c) => !isExt4ts(c.peer));
  const ours = cases.filter((c) => isExt4ts(c.peer));
  if (refs.length > 0 && ours.length > 0) {
    lines.push('', '| ext4ts / peer | ' + refs.flatMap((p) => [`time ratio vs ${p.peer} (above 1.00x: ext4ts slower)`, `objects/s ratio vs ${p.peer} (below 1.00x: ext4ts slower)`]).join(' | ') + ' |',
      '|---|' + refs.map(() => '---|---|').join(''));
    for (const c of ours) {
      lines.push(`| ${LABEL[c.peer]} | ${refs.flatMap((p) => [ratio(medTime(c), medTime(p)), ratio(medRate(c), medRate(p))]).join(' | ')} |`);
    }
  }
  lines.push('', 'Raw objects/s per run (time in s):');
  for (const c of cases) {
    if (c.steps.length > 0) lines.push(`- ${c.peer}: ${c.steps.map((s) => `${fix(W.objects / (s.elapsedMs / 1000))} (${s3(s.elapsedMs)})`).join(', ')}`);
  }
  console.log(lines.join('\n'));
  scratch.cleanup();
  process.exit(bad ? 1 : 0);
}

main().catch((/** @type {unknown} */ err) => fatal(`unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
