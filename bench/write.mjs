#!/usr/bin/env node
// W-write benchmark (issue 5): sequential, random and small-file write throughput of ext4ts,
// in memory and on a file image, against the Linux kernel (loop device on a tmpfs file) and
// fuse2fs, in one run.
//
//   node bench/write.mjs [--runs 3] [--keep] [--work DIR] [--dist DIR]
//                        [--workloads seq,rand,small]
//                        [--tools mem,file,file-sync,kernel,fuse2fs,floor]
//                        [--image-size 1G] [--seq-size 256M] [--seq-chunk 1M]
//                        [--rand-size 128M] [--rand-ops 20000] [--rand-bs 4K]
//                        [--small-files 5000] [--small-size 4K] [--seed 42]
//
// 1. Make one empty image with ext4ts's programmatic mkfs (ext4, `-T default`: 4 KiB blocks;
//    `-E assume_storage_prezeroed=1`, so the kernel starts no lazy inode-table zeroing), and
//    from it the W-rand image: the same plus a --rand-size file written through a kernel loop
//    mount (untimed), so every tool starts W-rand from the same layout. Both pass e2fsck -fn.
// 2. Per workload, per run (tool order rotated each run), per tool: copy the template image
//    (cp --sparse=always, untimed) into the work dir (tmpfs by default), then time
//      mem      ext4ts in a child process: the image read into a MemoryDevice (untimed),
//               Volume.mount(dev, { readOnly: false }), the workload, vol.unmount()
//      file     the same on FileDevice.open(IMG, { readOnly: false, syncIO: false }): each
//               pread/pwrite a thread-pool round trip, what openImage() gives by default
//      file-sync  the same with syncIO: true (synchronous pread/pwrite, as the CLI uses)
//      kernel   mount -o loop IMG MNT; the writer child on MNT; umount MNT
//      fuse2fs  fuse2fs IMG MNT -f -o fakeroot; the writer child on MNT; umount MNT and wait
//               for the fuse2fs process to exit (it writes the volume out as it exits)
//      floor    the writer child on a plain tmpfs directory: no ext4 at all, the cost of the
//               writer program itself
//    The writer child is this script (`--child`) doing the very same fs.promises-shaped calls
//    the ext4ts child makes on a Volume: same buffers, same sizes, same order.
//    The time counted is write + sync + unmount (the mount is reported, not counted).
// 3. Every image is checked with `e2fsck -fn` after every timed step; after the first run
//    each tool's files are also read back through a kernel read-only loop mount (the
//    MemoryDevice is dumped to the image file first) and their sha256 compared with what was
//    written. A mismatch is printed loudly, that tool's times are not counted, exit 1.
// 4. Print medians, MB/s, ops/s, peak RSS and the ratios ext4ts/kernel and ext4ts/fuse2fs as
//    Markdown on stdout (progress goes to stderr).
//
// Workloads (same content for every tool, from --seed):
//   seq    open('/seq.bin', 'w'), --seq-size bytes in --seq-chunk write() calls, fsync, close
//   rand   open('/rand.bin', 'r+') on the prefilled file, --rand-ops write() calls of --rand-bs
//          bytes at --rand-bs-aligned random offsets, fsync, close
//   small  mkdir('/small'), --small-files writeFile() calls of --small-size bytes; no fsync,
//          the unmount writes them out

/* global console, process, performance */
import { spawnSync } from 'node:child_process';
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  IMAGE_BENCH_OPTIONS, brief, childMode, count, dumpMemory, exitText, failed, findTool, firstLines, fsType, fsckProblem, hostInfo, log, median,
  ratio, rotated, run, runChild, scratchArea, secs, size, usage, vmHwm,
} from './lib.mjs';

const SELF = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------------------------
// the parts of ext4ts's public API used here (dist/src/node.js, dist/tools/mkfs/mkfs.js), typed
// structurally so the bench type-checks without a build

/**
 * @typedef {object} Fh an open file: ext4ts's FileHandle, or node:fs/promises' wrapped
 * @property {(buf: Uint8Array, offset: number, length: number, position: number | null) => Promise<{ bytesWritten: number }>} write
 * @property {() => Promise<void>} sync
 * @property {() => Promise<void>} close
 */
/**
 * @typedef {object} Vol
 * @property {(path: string, flags: 'w' | 'r+') => Promise<Fh>} open
 * @property {(path: string, data: Uint8Array) => Promise<void>} writeFile
 * @property {(path: string) => Promise<void>} mkdir
 * @property {() => Promise<void>} unmount
 */
/**
 * @typedef {object} Dev
 * @property {number} size
 * @property {(offset: number, data: Uint8Array) => Promise<void>} write
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
 * @typedef {object} Ext4tsMkfs
 * @property {(image: string, o: { size: string, usageTypes: string, extended: string[], quiet: boolean, force: boolean }) => Promise<unknown>} mkfs
 */

/** @param {string} dist */
async function loadApi(dist) {
  /** @type {unknown} */
  const mod = await import(pathToFileURL(path.join(dist, 'src/node.js')).href);
  return /** @type {Ext4tsNode} */ (mod);
}

// ---------------------------------------------------------------------------------------------
// workload content: deterministic, never all-zero (a MemoryDevice stores no zero chunks)

/**
 * @typedef {object} Params
 * @property {number} seed
 * @property {number} seqSize
 * @property {number} seqChunk
 * @property {number} randSize
 * @property {number} randOps
 * @property {number} randBs
 * @property {number} smallFiles
 * @property {number} smallSize
 */
/** @typedef {'seq' | 'rand' | 'small'} WorkloadId */

const TAG = { seq: 0x53455131, pre: 0x50524531, rand: 0x52414e31, small: 0x534d4c31 };
const PIECES = 64; // distinct payloads per workload, before the stamp

/** @param {number} seed */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Pseudo-random bytes. @param {number} seed @param {number} len */
function pattern(seed, len) {
  const rng = mulberry32(seed);
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  let i = 0;
  for (; i + 4 <= len; i += 4) dv.setUint32(i, rng());
  for (; i < len; i++) out[i] = rng() & 0xff;
  return out;
}

/** Stamp the first 8 bytes with a tag and an index (so misplaced data shows). @param {Uint8Array} buf @param {number} tag @param {number} k */
function stamp(buf, tag, k) {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length >= 4) dv.setUint32(0, tag);
  if (buf.length >= 8) dv.setUint32(4, k);
}

/**
 * A file written sequentially: the chunks of `size` bytes, one reused buffer.
 * @param {number} seed @param {number} tag @param {number} size @param {number} chunk
 * @returns {Generator<Uint8Array>}
 */
function* seqChunks(seed, tag, size, chunk) {
  const buf = pattern(seed, chunk);
  for (let k = 0, off = 0; off < size; k++, off += chunk) {
    stamp(buf, tag, k);
    yield buf.subarray(0, Math.min(chunk, size - off));
  }
}
/** @param {Params} P */
const seqData = (P) => seqChunks(P.seed, TAG.seq, P.seqSize, P.seqChunk);
/** The W-rand file before the random writes. @param {Params} P */
const prefillData = (P) => seqChunks(P.seed + 1, TAG.pre, P.randSize, P.seqChunk);

/**
 * The random writes: [position, data], one reused buffer.
 * @param {Params} P
 * @returns {Generator<[number, Uint8Array]>}
 */
function* randWrites(P) {
  const rng = mulberry32(P.seed + 2);
  const base = pattern(P.seed + 3, P.randBs * PIECES);
  const buf = new Uint8Array(P.randBs);
  const nblk = Math.floor(P.randSize / P.randBs);
  for (let j = 0; j < P.randOps; j++) {
    const blk = rng() % nblk;
    buf.set(base.subarray((j % PIECES) * P.randBs, (j % PIECES + 1) * P.randBs));
    stamp(buf, TAG.rand, j);
    yield [blk * P.randBs, buf];
  }
}

/**
 * The small files: [name, data], one reused buffer.
 * @param {Params} P
 * @returns {Generator<[string, Uint8Array]>}
 */
function* smallFiles(P) {
  const base = pattern(P.seed + 4, P.smallSize * PIECES);
  const buf = new Uint8Array(P.smallSize);
  for (let i = 0; i < P.smallFiles; i++) {
    buf.set(base.subarray((i % PIECES) * P.smallSize, (i % PIECES + 1) * P.smallSize));
    stamp(buf, TAG.small, i);
    yield [`f${String(i).padStart(6, '0')}`, buf];
  }
}

/** Bytes written and calls made by a workload's timed part. @param {WorkloadId} id @param {Params} P */
function volume(id, P) {
  if (id === 'seq') return { bytes: P.seqSize, ops: Math.ceil(P.seqSize / P.seqChunk) };
  if (id === 'rand') return { bytes: P.randOps * P.randBs, ops: P.randOps };
  return { bytes: P.smallFiles * P.smallSize, ops: P.smallFiles };
}

/**
 * What the files must hold afterwards: relative path -> size and sha256.
 * @param {WorkloadId} id @param {Params} P
 * @returns {Map<string, { size: number, sha256: string }>}
 */
function expected(id, P) {
  /** @type {Map<string, { size: number, sha256: string }>} */
  const want = new Map();
  if (id === 'seq') {
    const h = createHash('sha256');
    for (const b of seqData(P)) h.update(b);
    want.set('seq.bin', { size: P.seqSize, sha256: h.digest('hex') });
  } else if (id === 'rand') {
    const model = new Uint8Array(P.randSize);
    let off = 0;
    for (const b of prefillData(P)) {
      model.set(b, off);
      off += b.length;
    }
    for (const [pos, b] of randWrites(P)) model.set(b, pos);
    want.set('rand.bin', { size: P.randSize, sha256: createHash('sha256').update(model).digest('hex') });
  } else {
    for (const [name, b] of smallFiles(P)) want.set(`small/${name}`, { size: b.length, sha256: createHash('sha256').update(b).digest('hex') });
  }
  return want;
}

// ---------------------------------------------------------------------------------------------
// the child: one workload on one target, timed from inside

/**
 * @typedef {object} Target where a workload writes: an ext4ts Volume, or a host directory
 * through node:fs/promises; both with the same calls
 * @property {(p: string, flags: 'w' | 'r+') => Promise<Fh>} open
 * @property {(p: string, data: Uint8Array) => Promise<void>} writeFile
 * @property {(p: string) => Promise<void>} mkdir
 */

/** @param {Vol} vol @returns {Target} */
function volTarget(vol) {
  return {
    open: async (p, flags) => {
      const fh = await vol.open(p, flags);
      return { write: (b, o, l, pos) => fh.write(b, o, l, pos), sync: () => fh.sync(), close: () => fh.close() };
    },
    writeFile: (p, data) => vol.writeFile(p, data),
    mkdir: (p) => vol.mkdir(p),
  };
}

/** @param {string} dir @returns {Target} */
function dirTarget(dir) {
  const at = (/** @type {string} */ p) => path.join(dir, p);
  return {
    open: async (p, flags) => {
      const fh = await fs.promises.open(at(p), flags);
      return { write: (b, o, l, pos) => fh.write(b, o, l, pos), sync: () => fh.sync(), close: () => fh.close() };
    },
    writeFile: (p, data) => fs.promises.writeFile(at(p), data),
    mkdir: (p) => fs.promises.mkdir(at(p)),
  };
}

/**
 * Run the timed part of a workload.
 * @param {Target} t @param {WorkloadId} id @param {Params} P
 * @returns {Promise<{ writeMs: number, syncMs: number }>}
 */
async function runWorkload(t, id, P) {
  /** @param {Fh} fh @param {Uint8Array} b @param {number | null} pos */
  const writeAll = async (fh, b, pos) => {
    const { bytesWritten } = await fh.write(b, 0, b.length, pos);
    if (bytesWritten !== b.length) throw new Error(`short write: ${bytesWritten} of ${b.length} bytes${pos !== null ? ` at ${pos}` : ''}`);
  };
  const t0 = performance.now();
  if (id === 'small') {
    await t.mkdir('/small');
    for (const [name, b] of smallFiles(P)) await t.writeFile(`/small/${name}`, b);
    return { writeMs: performance.now() - t0, syncMs: 0 };
  }
  const fh = id === 'seq' ? await t.open('/seq.bin', 'w') : await t.open('/rand.bin', 'r+');
  if (id === 'seq') for (const b of seqData(P)) await writeAll(fh, b, null);
  else for (const [pos, b] of randWrites(P)) await writeAll(fh, b, pos);
  const t1 = performance.now();
  await fh.sync();
  await fh.close();
  return { writeMs: t1 - t0, syncMs: performance.now() - t1 };
}

/**
 * @typedef {object} ChildSpec
 * @property {'mem' | 'file' | 'dir'} target
 * @property {string} img image file (mem, file)
 * @property {string} dir host directory (dir)
 * @property {string} dist ext4ts build
 * @property {boolean} syncIO FileDevice syncIO (file)
 * @property {boolean} dump mem: after the unmount, write the device back to img (for the check)
 * @property {WorkloadId} id
 * @property {Params} P
 */
/**
 * @typedef {object} ChildResult
 * @property {number} loadMs mem: reading the image into memory (not counted)
 * @property {number} mountMs
 * @property {number} writeMs
 * @property {number} syncMs fsync + close
 * @property {number} unmountMs
 * @property {number} rssKb peak RSS of the child (VmHWM), before any dump
 */

/** Read an image file into a MemoryDevice (all-zero 64 KiB pieces skipped). @param {Ext4tsNode} api @param {string} img */
async function loadMemory(api, img) {
  const size = fs.statSync(img).size;
  const dev = new api.MemoryDevice(size);
  const fd = fs.openSync(img, 'r');
  const buf = Buffer.alloc(1 << 20);
  const zero = Buffer.alloc(1 << 16);
  try {
    for (let off = 0; off < size; off += buf.length) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - off), off);
      for (let p = 0; p < n; p += zero.length) {
        const piece = buf.subarray(p, Math.min(n, p + zero.length));
        if (!piece.equals(zero.subarray(0, piece.length))) await dev.write(off + p, new Uint8Array(piece));
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return dev;
}

/**
 * This process's peak RSS in KiB: VmHWM, the high-water mark of its own address space.
 * getrusage's maxRSS is no good in a child: Linux carries the parent's RSS at fork into it
 * across exec (signal->maxrss), and the parent may hold a 128 MiB model of the W-rand file.
 */
function peakRssKb() {
  return vmHwm(process.pid) ?? process.resourceUsage().maxRSS;
}

/** @param {ChildSpec} spec */
async function childMain(spec) {
  /** @type {ChildResult} */
  const res = { loadMs: 0, mountMs: 0, writeMs: 0, syncMs: 0, unmountMs: 0, rssKb: 0 };
  if (spec.target === 'dir') {
    Object.assign(res, await runWorkload(dirTarget(spec.dir), spec.id, spec.P));
    res.rssKb = peakRssKb();
  } else {
    const api = await loadApi(spec.dist);
    const t0 = performance.now();
    /** @type {MemDev | undefined} */
    let mem;
    /** @type {Dev} */
    let dev;
    if (spec.target === 'mem') dev = mem = await loadMemory(api, spec.img);
    else dev = await api.FileDevice.open(spec.img, { readOnly: false, syncIO: spec.syncIO });
    const t1 = performance.now();
    const vol = await api.Volume.mount(dev, { readOnly: false });
    const t2 = performance.now();
    Object.assign(res, await runWorkload(volTarget(vol), spec.id, spec.P));
    const t3 = performance.now();
    await vol.unmount();
    const t4 = performance.now();
    Object.assign(res, { loadMs: t1 - t0, mountMs: t2 - t1, unmountMs: t4 - t3, rssKb: peakRssKb() });
    if (mem !== undefined && spec.dump) dumpMemory(mem, spec.img);
  }
  process.stdout.write(`${JSON.stringify(res)}\n`);
}

// ---------------------------------------------------------------------------------------------
// options

const { values: opt } = parseArgs({
  options: {
    ...IMAGE_BENCH_OPTIONS,
    workloads: { type: 'string', default: 'seq,rand,small' },
    tools: { type: 'string', default: 'mem,file,file-sync,kernel,fuse2fs,floor' },
    'image-size': { type: 'string', default: '1G' },
    'seq-size': { type: 'string', default: '256M' },
    'seq-chunk': { type: 'string', default: '1M' },
    'rand-size': { type: 'string', default: '128M' },
    'rand-ops': { type: 'string', default: '20000' },
    'rand-bs': { type: 'string', default: '4K' },
    'small-files': { type: 'string', default: '5000' },
    'small-size': { type: 'string', default: '4K' },
  },
});

await childMode(opt.child, childMain);

if (opt.help) {
  console.log('usage: node bench/write.mjs [--runs 3] [--keep] [--work DIR] [--dist DIR] [--workloads seq,rand,small] ' +
    '[--tools mem,file,file-sync,kernel,fuse2fs,floor] [--image-size 1G] [--seq-size 256M] [--seq-chunk 1M] [--rand-size 128M] ' +
    '[--rand-ops 20000] [--rand-bs 4K] [--small-files 5000] [--small-size 4K] [--seed 42]');
  process.exit(0);
}

const RUNS = count('runs', opt.runs);
const DIST = path.resolve(opt.dist);
const IMAGE_SIZE = opt['image-size'];
/** @type {Params} */
const P = {
  seed: count('seed', opt.seed),
  seqSize: size('seq-size', opt['seq-size']),
  seqChunk: size('seq-chunk', opt['seq-chunk']),
  randSize: size('rand-size', opt['rand-size']),
  randOps: count('rand-ops', opt['rand-ops']),
  randBs: size('rand-bs', opt['rand-bs']),
  smallFiles: count('small-files', opt['small-files']),
  smallSize: size('small-size', opt['small-size']),
};
if (P.seqChunk < 8 || P.randBs < 8 || P.smallSize < 8) usage('--seq-chunk, --rand-bs and --small-size must be at least 8 bytes');
if (P.randSize % P.randBs !== 0 || P.randSize < P.randBs) usage('--rand-size must be a multiple of --rand-bs');
if (P.seqSize < 1 || P.randSize < 1) usage('--seq-size and --rand-size must be positive');
if (Math.max(P.seqSize, P.randSize, P.smallFiles * Math.max(P.smallSize, 4096)) > size('image-size', IMAGE_SIZE) * 0.8) {
  usage(`--image-size ${IMAGE_SIZE} is too small for the workloads`);
}
/** @type {WorkloadId[]} */
const WORKLOADS = [];
for (const w of opt.workloads.split(',').filter((x) => x !== '')) {
  if (w !== 'seq' && w !== 'rand' && w !== 'small') usage(`--workloads: unknown workload ${w}`);
  WORKLOADS.push(w);
}
/** @typedef {'mem' | 'file' | 'file-sync' | 'kernel' | 'fuse2fs' | 'floor'} ToolId */
/** @type {ToolId[]} */
const TOOL_ORDER = ['mem', 'file', 'file-sync', 'kernel', 'fuse2fs', 'floor'];
/** @param {ToolId} t */
const isExt4ts = (t) => t === 'mem' || t === 'file' || t === 'file-sync';
const wantTools = new Set(opt.tools.split(',').filter((x) => x !== ''));
for (const t of wantTools) if (!TOOL_ORDER.includes(/** @type {ToolId} */ (t))) usage(`--tools: unknown tool ${t}`);

// ---------------------------------------------------------------------------------------------
// work dir, mounts and cleanup

const scratch = scratchArea({ name: 'write', work: opt.work, keep: opt.keep });
const { work, mnt } = scratch;
// annotated here: TypeScript narrows after a `never` call only through a declared type
/** @type {(msg: string) => never} */
const fatal = scratch.fatal;
const floorDir = scratch.dir('floor');

const banner = '!'.repeat(78);

// ---------------------------------------------------------------------------------------------
// steps

/**
 * @typedef {object} Step one timed workload on one tool
 * @property {string | undefined} failure
 * @property {number} mountMs
 * @property {number} writeMs
 * @property {number} syncMs
 * @property {number} unmountMs
 * @property {number} totalMs write + sync + unmount
 * @property {number | undefined} rssKb ext4ts: the child; fuse2fs: the fuse2fs process; others: the writer child
 */

/**
 * Run this script as a child; its JSON result.
 * @param {Omit<ChildSpec, 'dist' | 'P'>} spec
 */
async function child(spec) {
  const c = await runChild(SELF, { ...spec, dist: DIST, P });
  return { failure: c.failure, res: /** @type {ChildResult | undefined} */ (c.res) };
}

/**
 * The timed part of one step.
 * @param {ToolId} tool @param {WorkloadId} id @param {string} img @param {boolean} dump @param {string} fuse2fs
 * @returns {Promise<Step>}
 */
async function exec(tool, id, img, dump, fuse2fs) {
  /** @type {Step} */
  const step = { failure: undefined, mountMs: 0, writeMs: 0, syncMs: 0, unmountMs: 0, totalMs: NaN, rssKb: undefined };
  /** @param {ChildResult} c */
  const take = (c) => Object.assign(step, { writeMs: c.writeMs, syncMs: c.syncMs, rssKb: c.rssKb });
  if (isExt4ts(tool)) {
    const c = await child({ target: tool === 'mem' ? 'mem' : 'file', img, dir: '', syncIO: tool === 'file-sync', dump, id });
    if (c.res === undefined) return { ...step, failure: c.failure };
    take(c.res);
    Object.assign(step, { mountMs: c.res.mountMs, unmountMs: c.res.unmountMs });
  } else if (tool === 'floor') {
    const c = await child({ target: 'dir', img: '', dir: floorDir, syncIO: false, dump: false, id });
    if (c.res === undefined) return { ...step, failure: c.failure };
    take(c.res);
  } else {
    const m = tool === 'kernel' ? await scratch.mountLoop(img) : await scratch.mountFuse2fs(fuse2fs, img);
    if (m.failure !== undefined) return { ...step, failure: m.failure };
    const c = await child({ target: 'dir', img: '', dir: mnt, syncIO: false, dump: false, id });
    const daemonRssKb = vmHwm(m.pid);
    const u = await m.unmount();
    if (c.res === undefined) return { ...step, failure: c.failure };
    if (u.failure !== undefined) return { ...step, failure: u.failure };
    take(c.res);
    Object.assign(step, { mountMs: m.mountMs, unmountMs: u.unmountMs });
    // fuse2fs does the filesystem's work in its own process: that RSS, not the writer's
    if (tool === 'fuse2fs') step.rssKb = daemonRssKb;
  }
  step.totalMs = step.writeMs + step.syncMs + step.unmountMs;
  return step;
}

/** sha256 of a file, read in pieces (bounded memory). @param {string} file @returns {Promise<string>} */
async function sha256Stream(file) {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    /** @type {unknown} */
    const c = chunk;
    h.update(/** @type {Buffer} */ (c));
  }
  return h.digest('hex');
}

/**
 * Compare the files under root with what was written; the list of mismatches.
 * @param {string} root @param {WorkloadId} id @param {Map<string, { size: number, sha256: string }>} want
 */
async function verify(root, id, want) {
  /** @type {string[]} */
  const errors = [];
  for (const [rel, w] of want) {
    const abs = path.join(root, rel);
    /** @type {fs.Stats} */
    let st;
    try {
      st = fs.statSync(abs);
    } catch {
      errors.push(`missing: ${rel}`);
      continue;
    }
    if (st.size !== w.size) errors.push(`size: ${rel}: ${st.size}, want ${w.size}`);
    else if ((await sha256Stream(abs)) !== w.sha256) errors.push(`data: ${rel}: sha256 differs`);
  }
  if (id === 'small' && fs.existsSync(path.join(root, 'small'))) {
    const extra = fs.readdirSync(path.join(root, 'small')).filter((n) => !want.has(`small/${n}`));
    for (const n of extra) errors.push(`extra: small/${n}`);
  }
  return errors;
}

// ---------------------------------------------------------------------------------------------
// main

/**
 * @typedef {object} Case one tool on one workload
 * @property {ToolId} tool
 * @property {Step[]} steps the timed steps that count
 * @property {string | undefined} broken why its times do not count
 * @property {string | undefined} skipped why it did not run
 * @property {string} check the read-back check
 * @property {string} fsck e2fsck -fn over all its images
 */

const LABEL = {
  mem: 'ext4ts, MemoryDevice',
  file: 'ext4ts, FileDevice on tmpfs',
  'file-sync': 'ext4ts, FileDevice syncIO on tmpfs',
  kernel: 'kernel ext4, loop on tmpfs file',
  fuse2fs: 'fuse2fs, tmpfs file',
  floor: 'writer alone, tmpfs dir (no ext4)',
};
const TITLE = {
  seq: () => `W-seq: one ${fmtBytes(P.seqSize)} file, ${fmtBytes(P.seqChunk)} write() calls, then fsync`,
  rand: () => `W-rand: ${P.randOps} random ${fmtBytes(P.randBs)} write() calls at ${fmtBytes(P.randBs)}-aligned offsets in a ${fmtBytes(P.randSize)} file, then fsync`,
  small: () => `W-small: ${P.smallFiles} files of ${fmtBytes(P.smallSize)} (writeFile) in one new directory; written out by the unmount`,
};
/** @param {number} n */
function fmtBytes(n) {
  for (const [u, f] of /** @type {const} */ ([['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]])) if (n >= f && n % f === 0) return `${n / f} ${u}`;
  return `${n} B`;
}
/** @param {number | undefined} kb */
const mb = (kb) => (kb === undefined ? 'n/a' : `${(kb / 1024).toFixed(0)} MB`);

async function main() {
  const e2fsck = findTool('e2fsck');
  if (e2fsck === undefined) fatal('e2fsck not found (apt install e2fsprogs): the images cannot be checked');
  if (process.getuid?.() !== 0) fatal('needs root: the images are checked through kernel loop mounts');
  const fuse2fs = findTool('fuse2fs');
  if (!fs.existsSync(path.join(DIST, 'src/node.js')) || !fs.existsSync(path.join(DIST, 'tools/mkfs/mkfs.js'))) {
    fatal(`no ext4ts build in ${DIST} (run \`npm run build\`, or pass --dist DIR from \`npx tsc -p tsconfig.build.json --outDir DIR\`)`);
  }
  /** @type {unknown} */
  const mkfsMod = await import(pathToFileURL(path.join(DIST, 'tools/mkfs/mkfs.js')).href);
  const { mkfs } = /** @type {Ext4tsMkfs} */ (mkfsMod);
  /** @param {string} img */
  const fsck = (img) => fsckProblem(e2fsck, img);

  // 1. templates
  const tmplEmpty = scratch.image('template-empty.img');
  const tmplRand = scratch.image('template-rand.img');
  log(`making the ${IMAGE_SIZE} template image with ext4ts mkfs in ${work}`);
  try {
    await mkfs(tmplEmpty, { size: IMAGE_SIZE, usageTypes: 'default', extended: ['assume_storage_prezeroed=1'], quiet: true, force: true });
  } catch (e) {
    fatal(`ext4ts mkfs failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  const badTmpl = await fsck(tmplEmpty);
  if (badTmpl !== undefined) fatal(`the mkfs'd template is not clean: ${badTmpl}`);
  if (WORKLOADS.includes('rand')) {
    log(`prefilling the ${fmtBytes(P.randSize)} W-rand file through a kernel loop mount`);
    const cp = spawnSync('cp', ['--sparse=always', tmplEmpty, tmplRand]);
    if (cp.status !== 0) fatal(`cp failed: ${cp.stderr.toString()}`);
    const m = await run('mount', ['-o', 'loop', tmplRand, mnt]);
    if (failed(m)) fatal(`loop mount failed (${exitText(m)}): ${brief(m.stderr)}; run as root on a machine that allows loop devices`);
    try {
      const fd = fs.openSync(path.join(mnt, 'rand.bin'), 'w');
      for (const b of prefillData(P)) fs.writeSync(fd, b);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    } finally {
      await run('umount', [mnt]);
    }
    const bad = await fsck(tmplRand);
    if (bad !== undefined) fatal(`the W-rand template is not clean: ${bad}`);
  }

  // 2. what runs
  /** @type {Partial<Record<ToolId, string>>} */
  const skip = {};
  if (fuse2fs === undefined) skip.fuse2fs = 'fuse2fs not found (apt install fuse2fs)';
  else if (!fs.existsSync('/dev/fuse')) skip.fuse2fs = 'no /dev/fuse';
  const tools = TOOL_ORDER.filter((t) => wantTools.has(t));
  const loads = [os.loadavg()];
  /** @type {Map<WorkloadId, Case[]>} */
  const results = new Map();
  let mismatch = false;

  for (const id of WORKLOADS) {
    log(`${id}: computing the expected contents`);
    const want = expected(id, P);
    const tmpl = id === 'rand' ? tmplRand : tmplEmpty;
    /** @type {Case[]} */
    const cases = tools.map((tool) => ({ tool, steps: [], broken: undefined, skipped: skip[tool], check: 'not run', fsck: 'n/a' }));
    results.set(id, cases);
    for (let r = 0; r < RUNS; r++) {
      for (const c of rotated(cases, r)) {
        if (c.broken !== undefined || c.skipped !== undefined) continue;
        const first = c.steps.length === 0;
        // prepare (untimed)
        const img = c.tool === 'floor' ? '' : scratch.image(`${id}-${c.tool}.img`);
        if (c.tool === 'floor') {
          fs.rmSync(floorDir, { recursive: true, force: true });
          fs.mkdirSync(floorDir);
          if (id === 'rand') {
            const fd = fs.openSync(path.join(floorDir, 'rand.bin'), 'w');
            for (const b of prefillData(P)) fs.writeSync(fd, b);
            fs.closeSync(fd);
          }
        } else {
          const cp = spawnSync('cp', ['--sparse=always', tmpl, img]);
          if (cp.status !== 0) fatal(`cp failed: ${cp.stderr.toString()}`);
        }
        spawnSync('sync');
        // time
        const step = await exec(c.tool, id, img, first, fuse2fs ?? 'fuse2fs');
        if (step.failure !== undefined) {
          scratch.unmountLeftover();
          c.broken = `failed${first ? '' : ` in run ${r + 1}`}: ${step.failure}`;
          console.error(`${banner}\n!!! ${id} ${c.tool}: ${c.broken}\n${banner}`);
          continue;
        }
        // check (untimed): e2fsck every image; read back the first run's files
        if (c.tool !== 'floor') {
          const bad = await fsck(img);
          if (bad !== undefined) {
            c.broken = `image NOT CLEAN (run ${r + 1}): ${bad}`;
            c.fsck = `**NOT CLEAN** (run ${r + 1})`;
            const fk = await run(e2fsck, ['-fn', img]);
            console.error(`${banner}\n!!! ${id} ${c.tool}: the image FAILS e2fsck -fn; its times are not counted\n${banner}\n    ${firstLines(fk.stdout + fk.stderr, 25)}`);
            mismatch = true;
            continue;
          }
          c.fsck = `clean (${c.steps.length + 1})`;
        }
        if (first) {
          /** @type {string[]} */
          let errors = [];
          if (c.tool === 'floor') errors = await verify(floorDir, id, want);
          else {
            const m = await run('mount', ['-o', 'ro,loop', img, mnt]);
            if (failed(m)) errors = [`the kernel cannot mount the image: ${brief(m.stderr)}`];
            else {
              try {
                errors = await verify(mnt, id, want);
              } finally {
                await run('umount', [mnt]);
              }
            }
          }
          if (errors.length > 0) {
            mismatch = true;
            c.check = `**WRONG: ${errors.length} mismatches**`;
            c.broken = `WRONG CONTENTS: ${errors.slice(0, 3).join('; ')}`;
            console.error(`${banner}\n!!! ${id} ${c.tool}: FILE CONTENTS DO NOT MATCH WHAT WAS WRITTEN (${errors.length} mismatches); its times are not counted\n${banner}`);
            for (const e of errors.slice(0, 25)) console.error(`    ${e}`);
            continue;
          }
          c.check = c.tool === 'floor' ? 'ok (read directly)' : 'ok';
        }
        c.steps.push(step);
        log(`${id} run ${r + 1}/${RUNS} ${c.tool}: ${secs(step.totalMs)} s (write ${secs(step.writeMs)} + sync ${secs(step.syncMs)} + unmount ${secs(step.unmountMs)}; mount ${secs(step.mountMs)})` +
          (step.rssKb !== undefined ? `, ${mb(step.rssKb)} RSS` : ''));
      }
      loads.push(os.loadavg());
    }
  }

  // 3. report
  /** @param {Case | undefined} c @param {(s: Step) => number} f */
  const med = (c, f = (s) => s.totalMs) => (c === undefined || c.broken !== undefined || c.steps.length === 0 ? NaN : median(c.steps.map(f)));
  const host = hostInfo(e2fsck, fuse2fs);
  const maxLoad = Math.max(...loads.map((l) => l[0] ?? 0));
  const cpus = host.cpus;
  const lines = [
    '## W-write: write throughput, ext4ts vs the kernel and fuse2fs',
    '',
    `Image: ${IMAGE_SIZE} ext4 from ext4ts mkfs (\`-T default -E assume_storage_prezeroed=1\`: 4 KiB blocks, journal), ` +
      `a fresh copy per step in ${work} (${fsType(work)}). ${RUNS} run(s) per tool, order rotated each run; medians. ` +
      'Time = write + sync + unmount (mount not counted). ' +
      `Node ${process.version}, kernel ${host.kernel}, ${host.e2fsprogs}, ${host.fuse}, ${cpus} CPUs; load average (1 min) ${loads.map((l) => (l[0] ?? 0).toFixed(2)).join(' / ')} before and after each run.` +
      (maxLoad > cpus * 0.5 ? ` **The machine was shared with other jobs (load up to ${maxLoad.toFixed(1)} on ${cpus} CPUs): absolute times are noisy, quote the ratios.**` : ''),
    '',
  ];
  // summary
  lines.push('| tool | ' + WORKLOADS.map((id) => `${id} MB/s | ${id} ops/s`).join(' | ') + ' |', '|---|' + WORKLOADS.map(() => '---|---|').join(''));
  for (const tool of tools) {
    const cells = WORKLOADS.map((id) => {
      const c = results.get(id)?.find((x) => x.tool === tool);
      const m = med(c);
      const v = volume(id, P);
      if (c?.skipped !== undefined) return 'skipped | ';
      if (Number.isNaN(m)) return `${c?.broken !== undefined ? '**failed**' : 'n/a'} | `;
      return `${(v.bytes / 1e6 / (m / 1000)).toFixed(0)} | ${(v.ops / (m / 1000)).toFixed(0)}`;
    });
    lines.push(`| ${LABEL[tool]} | ${cells.join(' | ')} |`);
  }
  const peers = tools.filter((t) => t === 'kernel' || t === 'fuse2fs');
  if (peers.length > 0 && tools.some(isExt4ts)) {
    lines.push('', '| time ratio (above 1.00x: ext4ts slower) | ' + WORKLOADS.flatMap((id) => peers.map((p) => `${id} / ${p}`)).join(' | ') + ' |',
      '|---|' + WORKLOADS.flatMap(() => peers.map(() => '---|')).join(''));
    for (const tool of tools.filter(isExt4ts)) {
      const cells = WORKLOADS.flatMap((id) => {
        const cs = results.get(id) ?? [];
        const m = med(cs.find((x) => x.tool === tool));
        return peers.map((p) => ratio(m, med(cs.find((x) => x.tool === p))));
      });
      lines.push(`| ${LABEL[tool]} | ${cells.join(' | ')} |`);
    }
  }
  // per workload
  for (const id of WORKLOADS) {
    const v = volume(id, P);
    lines.push('', `### ${TITLE[id]()}`, '', `${(v.bytes / 1e6).toFixed(1)} MB in ${v.ops} calls.`, '',
      '| tool | median (s) | MB/s | ops/s | write (s) | sync (s) | unmount (s) | mount (s) | peak RSS | runs | read-back | e2fsck -fn | notes |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const c of results.get(id) ?? []) {
      const m = med(c);
      const rss = c.steps.length > 0 ? Math.max(...c.steps.map((s) => s.rssKb ?? 0)) : undefined;
      const note = c.skipped ?? c.broken ?? {
        mem: 'ext4ts child process; RSS includes the image held in memory',
        file: 'ext4ts child process; async pread/pwrite (thread pool)',
        'file-sync': 'ext4ts child process; synchronous pread/pwrite',
        kernel: 'writer child on the mount; RSS is the writer\'s, kernel memory not counted',
        fuse2fs: 'writer child on the mount; RSS is the fuse2fs process\'s; unmount = umount until fuse2fs exits',
        floor: 'writer child on tmpfs; RSS is the writer\'s',
      }[c.tool];
      const rssText = rss === undefined || rss === 0 ? 'n/a' : c.tool === 'kernel' || c.tool === 'floor' ? `(${mb(rss)})` : mb(rss);
      const tput = Number.isNaN(m) ? 'n/a' : (v.bytes / 1e6 / (m / 1000)).toFixed(0);
      const ops = Number.isNaN(m) ? 'n/a' : (v.ops / (m / 1000)).toFixed(0);
      lines.push(`| ${LABEL[c.tool]} | ${secs(m)} | ${tput} | ${ops} | ${secs(med(c, (s) => s.writeMs))} | ${secs(med(c, (s) => s.syncMs))} | ` +
        `${secs(med(c, (s) => s.unmountMs))} | ${secs(med(c, (s) => s.mountMs))} | ${rssText} | ${c.steps.length} | ${c.check} | ${c.fsck} | ${note.replaceAll('|', '\\|')} |`);
    }
  }
  lines.push('', 'Raw times (s), write + sync + unmount:');
  for (const id of WORKLOADS) {
    for (const c of results.get(id) ?? []) {
      if (c.steps.length > 0) lines.push(`- ${id} ${c.tool}: ${c.steps.map((s) => `${secs(s.totalMs)} (${secs(s.writeMs)} + ${secs(s.syncMs)} + ${secs(s.unmountMs)})`).join(', ')}`);
    }
  }
  console.log(lines.join('\n'));

  let status = mismatch ? 1 : 0;
  for (const id of WORKLOADS) {
    for (const c of results.get(id) ?? []) {
      if (c.broken === undefined) continue;
      console.error(`bench: ${id} ${c.tool}: ${c.broken}`);
      if (isExt4ts(c.tool)) status = 1;
    }
  }
  scratch.cleanup();
  process.exit(status);
}

main().catch((/** @type {unknown} */ err) => fatal(`unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
