#!/usr/bin/env node
// W-fsck benchmark: `ext4ts fsck -fn` against `e2fsck -fn` on the same populated images, in
// one run.
//
//   node bench/fsck.mjs [--runs 3] [--keep] [--work DIR] [--cli bin/ext4ts.js] [--dist dist]
//                       [--images small,mid,many] [--seed 42]
//                       [--small-files 20000] [--small-dirs 200] [--small-large 20] [--tree DIR]
//                       [--many-files 1000000] [--many-dirs 1000] [--many-inodes N]
//                       [--mid-files 200000] [--mid-dirs 200]
//                       [--skip-passes]
//
// 1. Per image, once per bench run, in the scratch dir (default a new dir on tmpfs, /dev/shm):
//      small  a seeded tree of --small-files regular files (log-uniform 200 B .. 8 KiB, and
//             --small-large of them 256 KiB .. 8 MiB) spread over --small-dirs leaf directories
//             (groups of 10 below d00..dNN), plus --small-files/100 symlinks (half fast, half
//             slow); or --tree DIR, an existing tree (e.g. the W1 tree of gen-tree.mjs)
//      many   --many-files files in --many-dirs directories, every 16th holding 1..100 bytes,
//             the rest empty; mke2fs -N --many-inodes (default 1.1 x --many-files)
//      mid    the same shape with --mid-files files in --mid-dirs directories (-N 1.1 x
//             --mid-files): large enough for the CLI's helper thread (64k+ inodes in use) as
//             many is, so the memory growth from mid to many is per inode, not that thread
//    written into an image by `mke2fs -q -F -t ext4 -T default [-N N] -d TREE IMG SIZE`. Tree
//    generation and mke2fs are timed and reported; the generated tree is then deleted.
// 2. Per image, each tool once, untimed (warms the page cache, which tmpfs images are in
//    anyway, and Node's/the CLI's files): both must exit 0 (clean). A tool that does not is
//    reported loudly between !!! banners and is not timed on that image, and the bench exits 1.
//    ext4ts's stdout is compared with e2fsck's (they should print the same five pass lines and
//    summary line); a difference is reported, not fatal.
// 3. Per image, --runs runs, the tool order rotated each run, each run under /usr/bin/time for
//    peak RSS:
//      e2fsck   E2FSCK_CONFIG=/dev/null LC_ALL=C e2fsck -fn IMG
//      ext4ts   node bin/ext4ts.js fsck -fn IMG
//    Every timed run must exit 0 as well (else loud, not counted, exit 1).
// 4. Unless --skip-passes: one more ext4ts run per image, through the library (this script as a
//    child: FileDevice.open(IMG, { readOnly: true, syncIO: true }) and check(dev, { force: true }) from
//    --dist, as the CLI calls them), for FsckReport.passMs, the time per pass: the CLI's
//    --json does not print it. Reported apart; not part of the medians.
// 5. Print Markdown on stdout (progress goes to stderr): medians, peak RSS, ratios
//    ext4ts/e2fsck, the image details, the per-pass split, the raw times, the command.
//
// Exit status: 0 when both tools checked every image clean and were timed; 1 when a tool
// failed or did not find an image clean; 2 for a setup error (no e2fsprogs, no build, not
// enough scratch space, mke2fs failed).

/* global console, process, performance, Buffer */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  IMAGE_BENCH_OPTIONS, REPO, TIME_BIN, brief, childMode, count, exitText, failed, findTool, firstLines, fsType, log, median, ratio, rotated,
  run, scratchArea, usage,
} from './lib.mjs';
/** @typedef {import('./lib.mjs').RunResult} RunResult */

const SELF = fileURLToPath(import.meta.url);
const T_START = performance.now();

// e2fsck reads no /etc/e2fsck.conf and speaks C; set for every child (ext4ts ignores both)
process.env.E2FSCK_CONFIG = '/dev/null';
process.env.LC_ALL = 'C';

// ---------------------------------------------------------------------------------------------
// the child: one ext4ts check through the library, for the time per pass

/**
 * @typedef {object} ChildSpec
 * @property {string} dist
 * @property {string} img
 */
/**
 * @typedef {object} PassResult what the child prints
 * @property {number} importMs loading the ext4ts modules
 * @property {number} checkMs FileDevice.open + check + close
 * @property {number[] | null} passMs FsckReport.passMs (null when this build has none)
 * @property {number} exitCode
 * @property {boolean} clean
 * @property {string} summaryLine
 * @property {number} rssKb the child's own peak RSS
 * @property {number | null} structureBytes FsckReport.structureBytes (null when this build has none)
 */
/** @typedef {{ readOnly: boolean, syncIO: boolean }} DevOpts */
/** @typedef {{ close(): Promise<void> }} Dev */
/**
 * @typedef {object} Report the parts of FsckReport used here
 * @property {readonly number[] | undefined} passMs
 * @property {number | undefined} structureBytes
 * @property {number} exitCode
 * @property {boolean} clean
 * @property {string} summaryLine
 */

/** @param {ChildSpec} spec */
async function childMain(spec) {
  const t0 = performance.now();
  /** @type {unknown} */
  const nodeAny = await import(pathToFileURL(path.join(spec.dist, 'src/node.js')).href);
  /** @type {unknown} */
  const checkAny = await import(pathToFileURL(path.join(spec.dist, 'src/fsck/check.js')).href);
  const nodeMod = /** @type {{ FileDevice: { open(p: string, o: DevOpts): Promise<Dev> } }} */ (nodeAny);
  const checkMod = /** @type {{ check(d: Dev, o: { force: boolean, name: string }): Promise<Report> }} */ (checkAny);
  const t1 = performance.now();
  const dev = await nodeMod.FileDevice.open(spec.img, { readOnly: true, syncIO: true });
  /** @type {Report} */
  let rep;
  try {
    rep = await checkMod.check(dev, { force: true, name: spec.img });
  } finally {
    await dev.close();
  }
  const t2 = performance.now();
  /** @type {PassResult} */
  const res = {
    importMs: t1 - t0, checkMs: t2 - t1, passMs: rep.passMs === undefined ? null : [...rep.passMs],
    exitCode: rep.exitCode, clean: rep.clean, summaryLine: rep.summaryLine, rssKb: process.resourceUsage().maxRSS,
    structureBytes: rep.structureBytes ?? null,
  };
  process.stdout.write(`${JSON.stringify(res)}\n`);
}

// ---------------------------------------------------------------------------------------------
// options

const { values: opt } = parseArgs({
  options: {
    ...IMAGE_BENCH_OPTIONS,
    cli: { type: 'string', default: path.join(REPO, 'bin/ext4ts.js') },
    images: { type: 'string', default: 'small,mid,many' },
    'small-files': { type: 'string', default: '20000' },
    'small-dirs': { type: 'string', default: '200' },
    'small-large': { type: 'string', default: '20' },
    tree: { type: 'string' },
    'many-files': { type: 'string', default: '1000000' },
    'many-dirs': { type: 'string', default: '1000' },
    'many-inodes': { type: 'string' },
    'mid-files': { type: 'string', default: '200000' },
    'mid-dirs': { type: 'string', default: '200' },
    'skip-passes': { type: 'boolean', default: false },
  },
});

await childMode(opt.child, childMain);

if (opt.help) {
  console.log('usage: node bench/fsck.mjs [--runs 3] [--keep] [--work DIR] [--cli PATH] [--dist DIR] [--images small,many] [--seed 42] ' +
    '[--small-files 20000] [--small-dirs 200] [--small-large 20] [--tree DIR] [--many-files 1000000] [--many-dirs 1000] ' +
    '[--many-inodes N] [--mid-files 200000] [--mid-dirs 200] [--skip-passes]');
  process.exit(0);
}

const RUNS = count('runs', opt.runs);
const SEED = count('seed', opt.seed, 0);
const CLI = path.resolve(opt.cli);
const DIST = path.resolve(opt.dist);
const SMALL = { files: count('small-files', opt['small-files']), dirs: count('small-dirs', opt['small-dirs']), large: count('small-large', opt['small-large'], 0) };
const MANY_INODES = opt['many-inodes'] !== undefined ? count('many-inodes', opt['many-inodes']) : Math.ceil(count('many-files', opt['many-files']) * 1.1);
/** The many-shaped trees: files, directories, and the image's inode count. */
const MANY = { files: count('many-files', opt['many-files']), dirs: count('many-dirs', opt['many-dirs']), inodes: MANY_INODES };
const MID = { files: count('mid-files', opt['mid-files']), dirs: count('mid-dirs', opt['mid-dirs']), inodes: Math.ceil(count('mid-files', opt['mid-files']) * 1.1) };
if (SMALL.large > SMALL.files) usage('--small-large must not exceed --small-files');
if (MANY_INODES < MANY.files + MANY.dirs + 11) usage(`--many-inodes ${MANY_INODES} cannot hold --many-files + --many-dirs + 11 reserved inodes`);
/** @typedef {'small' | 'mid' | 'many'} ImageId */
/** @type {ImageId[]} */
const IMAGES = [];
for (const w of opt.images.split(',').filter((x) => x !== '')) {
  if (w !== 'small' && w !== 'mid' && w !== 'many') usage(`--images: unknown image ${w} (want small, mid, many)`);
  if (!IMAGES.includes(w)) IMAGES.push(w);
}
if (IMAGES.length === 0) usage('--images: nothing to do');
const TREE = opt.tree !== undefined ? path.resolve(opt.tree) : undefined;
if (TREE !== undefined && !fs.statSync(TREE, { throwIfNoEntry: false })?.isDirectory()) usage(`--tree ${TREE} is not a directory`);

const scratch = scratchArea({ name: 'fsck', work: opt.work, keep: opt.keep });
const { work } = scratch;
/** @type {(msg: string) => never} */
const fatal = scratch.fatal;
const banner = '!'.repeat(78);
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// trees

/** mulberry32: a float in [0, 1). @param {number} seed */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * @typedef {object} TreeStats
 * @property {number} files regular files
 * @property {number} dirs directories below the root
 * @property {number} symlinks
 * @property {number} bytes regular-file bytes
 * @property {number} ms generation time
 */

/** @param {number} n @param {number} w */
const pad = (n, w) => String(n).padStart(w, '0');

/**
 * The small tree: see the header. Deterministic for a seed.
 * @param {string} root
 * @returns {TreeStats}
 */
function genSmallTree(root) {
  const t0 = performance.now();
  const R = rng(SEED);
  /** log-uniform integer in [lo, hi) @type {(lo: number, hi: number) => number} */
  const logUniform = (lo, hi) => Math.min(hi - 1, Math.floor(Math.exp(Math.log(lo) + R() * (Math.log(hi) - Math.log(lo)))));
  const pool = Buffer.allocUnsafe(9 * MiB);
  {
    const r2 = rng(SEED ^ 0x9e3779b9);
    for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE(Math.floor(r2() * 4294967296) >>> 0, i);
  }
  const groups = Math.ceil(SMALL.dirs / 10);
  const gw = Math.max(2, String(groups - 1).length);
  /** @type {string[]} */
  const leaves = [];
  for (let i = 0; i < SMALL.dirs; i++) {
    const d = `d${pad(Math.floor(i / 10), gw)}/s${i % 10}`;
    fs.mkdirSync(path.join(root, d), { recursive: true });
    leaves.push(d);
  }
  // the large files: every (files / large)-th file
  const every = SMALL.large > 0 ? Math.floor(SMALL.files / SMALL.large) : Infinity;
  let bytes = 0;
  /** @type {string[]} */
  const names = [];
  for (let i = 0; i < SMALL.files; i++) {
    const dir = leaves[Math.floor(R() * leaves.length)] ?? '';
    const large = i % every === every - 1;
    const size = large ? logUniform(256 * 1024, 8 * MiB) : logUniform(200, 8192);
    const off = Math.floor(R() * (pool.length - size));
    const rel = `${dir}/f${i}.dat`;
    fs.writeFileSync(path.join(root, rel), pool.subarray(off, off + size), { mode: 0o644 });
    names.push(rel);
    bytes += size;
  }
  const nsym = Math.floor(SMALL.files / 100);
  for (let i = 0; i < nsym; i++) {
    const dir = leaves[Math.floor(R() * leaves.length)] ?? '';
    const to = names[Math.floor(R() * names.length)] ?? 'x';
    // even: fast (the target in the inode, < 60 bytes); odd: slow (a data block)
    const target = i % 2 === 0 ? `../../${to}`.slice(0, 59) : `../../${to}/${'y'.repeat(60 + Math.floor(R() * 60))}`;
    fs.symlinkSync(target, path.join(root, dir, `sym${i}`));
  }
  return { files: SMALL.files, dirs: SMALL.dirs + groups, symlinks: nsym, bytes, ms: performance.now() - t0 };
}

/**
 * A many-inode tree (many, mid): `shape.files` files over `shape.dirs` directories below the
 * root, every 16th holding 1..100 bytes, the rest empty.
 * @param {string} root
 * @param {{ files: number, dirs: number }} shape
 * @returns {TreeStats}
 */
function genManyTree(root, shape) {
  const t0 = performance.now();
  const per = Math.ceil(shape.files / shape.dirs);
  const dw = Math.max(4, String(shape.dirs - 1).length);
  const fw = Math.max(7, String(shape.files - 1).length);
  const tiny = Buffer.alloc(100, 'x');
  let bytes = 0;
  let i = 0;
  for (let d = 0; d < shape.dirs; d++) {
    const dir = path.join(root, `d${pad(d, dw)}`);
    fs.mkdirSync(dir);
    for (let k = 0; k < per && i < shape.files; k++, i++) {
      const fd = fs.openSync(path.join(dir, `f${pad(i, fw)}`), 'w', 0o644);
      if (i % 16 === 0) {
        const n = 1 + ((i >>> 4) % 100);
        fs.writeSync(fd, tiny, 0, n);
        bytes += n;
      }
      fs.closeSync(fd);
    }
    if ((d + 1) % Math.max(1, Math.floor(shape.dirs / 10)) === 0) log(`  ${i} files (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  return { files: shape.files, dirs: shape.dirs, symlinks: 0, bytes, ms: performance.now() - t0 };
}

// ---------------------------------------------------------------------------------------------
// images and tools

/**
 * @typedef {object} Sample one timed run
 * @property {number} ms
 * @property {number | undefined} rssKb
 */
/**
 * @typedef {object} ToolState one tool on one image
 * @property {'e2fsck' | 'ext4ts'} id
 * @property {string} cmd
 * @property {string[]} args
 * @property {Sample[]} samples
 * @property {string | undefined} broken why its times do not count
 * @property {number[]} codes exit codes of every run, the warm-up first
 */
/**
 * @typedef {object} Image
 * @property {ImageId} id
 * @property {string} label
 * @property {string} img
 * @property {TreeStats | undefined} tree undefined for --tree
 * @property {string} mkfsArgs
 * @property {number} mkfsMs
 * @property {number} rmMs removing the generated tree
 * @property {number} imageBytes on the scratch fs (allocated, not apparent)
 * @property {string} sizeText
 * @property {string} summary e2fsck's summary line
 * @property {number} inodesUsed
 * @property {number} inodesTotal
 * @property {string} blocks used/total
 * @property {string} stdoutSame ext4ts's stdout against e2fsck's
 * @property {ToolState[]} tools
 * @property {PassResult | undefined} passes
 * @property {number | undefined} passesRssKb
 * @property {string | undefined} passesWhy why there is no per-pass split
 * @property {number | undefined} e2fsckMemKb e2fsck -tt's last "Memory used" (its heap in use)
 */

/** The last non-empty line. @param {string} s */
const lastLine = (s) => s.split('\n').filter((l) => l.trim() !== '').at(-1) ?? '';

/** "  N/M files ..., U/T blocks" of an e2fsck summary line. @param {string} line */
function parseSummary(line) {
  const m = /: (\d+)\/(\d+) files .*, (\d+)\/(\d+) blocks/.exec(line);
  return m === null ? undefined : { used: Number(m[1]), total: Number(m[2]), blocks: `${String(m[3])}/${String(m[4])}` };
}

/**
 * Where two outputs first differ, or 'same'.
 * @param {string} a e2fsck's
 * @param {string} b ext4ts's
 */
function compareOut(a, b) {
  if (a === b) return 'same';
  const la = a.split('\n');
  const lb = b.split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return `differs at line ${i + 1}: e2fsck ${JSON.stringify(la[i] ?? '(end)')}, ext4ts ${JSON.stringify(lb[i] ?? '(end)')}`;
  }
  return 'differs';
}

/** Bytes the file takes on its fs. @param {string} p */
const allocated = (p) => fs.statSync(p).blocks * 512;

/**
 * Build one image: tree, mke2fs -d, tree removed.
 * @param {ImageId} id
 * @param {string} mke2fs
 * @returns {Promise<Image>}
 */
async function buildImage(id, mke2fs) {
  const img = scratch.image(`${id}.img`);
  /** @type {TreeStats | undefined} */
  let tree;
  let treeDir;
  /** @type {string[]} */
  let mk;
  let sizeText;
  let label;
  if (id === 'small') {
    if (TREE !== undefined) {
      treeDir = TREE;
      log(`small: using the tree ${TREE}`);
      const du = spawnSync('du', ['-sb', TREE], { encoding: 'utf8' });
      const bytes = Number(du.stdout.split('\t')[0] ?? 0);
      const fc = spawnSync('find', [TREE], { encoding: 'utf8', maxBuffer: 1 << 30 });
      const entries = fc.stdout.split('\n').filter((l) => l !== '').length;
      const mib = Math.max(1024, Math.ceil((2.5 * bytes) / MiB));
      sizeText = `${mib}M`;
      mk = ['-q', '-F', '-t', 'ext4', '-T', 'default', ...(entries * 1.25 > (mib * MiB) / 16384 ? ['-N', String(Math.ceil(entries * 1.25))] : []), '-d', TREE, img, sizeText];
      label = `--tree ${path.basename(TREE)}`;
    } else {
      treeDir = scratch.dir('tree-small');
      fs.rmSync(treeDir, { recursive: true, force: true });
      fs.mkdirSync(treeDir);
      log(`small: generating ${SMALL.files} files in ${SMALL.dirs} directories (seed ${SEED}) in ${treeDir}`);
      tree = genSmallTree(treeDir);
      const entries = tree.files + tree.dirs + tree.symlinks;
      const mib = Math.max(1024, Math.ceil((2.5 * tree.bytes) / MiB));
      sizeText = `${mib}M`;
      mk = ['-q', '-F', '-t', 'ext4', '-T', 'default', ...(entries * 1.25 > (mib * MiB) / 16384 ? ['-N', String(Math.ceil(entries * 1.25))] : []), '-d', treeDir, img, sizeText];
      label = `small (${tree.files.toLocaleString('en-US')} files)`;
    }
  } else {
    const shape = id === 'mid' ? MID : MANY;
    treeDir = scratch.dir(`tree-${id}`);
    fs.rmSync(treeDir, { recursive: true, force: true });
    fs.mkdirSync(treeDir);
    log(`${id}: generating ${shape.files} files in ${shape.dirs} directories in ${treeDir}`);
    tree = genManyTree(treeDir, shape);
    // at most 16,384 inodes per group (half the 32,768 a 4 KiB-block group can hold), 128 MiB a group
    const groups = Math.max(8, Math.ceil(shape.inodes / 16384));
    sizeText = `${groups * 128}M`;
    mk = ['-q', '-F', '-t', 'ext4', '-T', 'default', '-N', String(shape.inodes), '-d', treeDir, img, sizeText];
    label = `${id} (${tree.files.toLocaleString('en-US')} files)`;
  }
  if (tree !== undefined) log(`${id}: tree generated in ${(tree.ms / 1000).toFixed(1)} s (${tree.files} files, ${tree.dirs} dirs, ${tree.symlinks} symlinks, ${(tree.bytes / 1e6).toFixed(1)} MB)`);
  log(`${id}: mke2fs ${mk.join(' ')}`);
  const r = await run(mke2fs, mk);
  if (failed(r)) fatal(`${id}: mke2fs -d failed (${exitText(r)}): ${firstLines(r.stderr + r.stdout)}`);
  log(`${id}: mke2fs -d took ${(r.ms / 1000).toFixed(1)} s`);
  let rmMs = 0;
  if (tree !== undefined && !opt.keep) {
    const t0 = performance.now();
    fs.rmSync(treeDir, { recursive: true, force: true });
    rmMs = performance.now() - t0;
    log(`${id}: tree removed in ${(rmMs / 1000).toFixed(1)} s`);
  }
  return {
    id, label, img, tree, mkfsArgs: `mke2fs ${mk.join(' ').replaceAll(work, '$WORK')}`, mkfsMs: r.ms, rmMs,
    imageBytes: allocated(img), sizeText, summary: '', inodesUsed: NaN, inodesTotal: NaN, blocks: '?', stdoutSame: 'not compared',
    tools: [
      { id: 'e2fsck', cmd: E2FSCK, args: ['-fn', img], samples: [], broken: undefined, codes: [] },
      { id: 'ext4ts', cmd: process.execPath, args: [CLI, 'fsck', '-fn', img], samples: [], broken: undefined, codes: [] },
    ],
    passes: undefined, passesRssKb: undefined, passesWhy: undefined,
  };
}

/**
 * One run of a tool on an image; why it does not count, or undefined.
 * @param {ToolState} t
 * @returns {Promise<{ r: RunResult, why: string | undefined }>}
 */
async function runTool(t) {
  const r = await run(t.cmd, t.args, { rss: true });
  t.codes.push(r.signal !== null ? -1 : (r.code ?? -1));
  if (!failed(r)) return { r, why: undefined };
  const what = r.code === 4 ? 'NOT CLEAN (exit 4: errors left uncorrected)' : r.code === 8 ? 'operational error (exit 8)' : `failed (${exitText(r)})`;
  return { r, why: `${what}: ${brief(r.stdout.split('\n').filter((l) => !/^Pass \d/.test(l)).join('\n') + r.stderr)}` };
}

/**
 * Say loudly that a tool's result on an image does not count.
 * @param {Image} im @param {ToolState} t @param {string} why @param {RunResult} r
 */
function shout(im, t, why, r) {
  t.broken = why;
  console.error(`${banner}\n!!! ${t.id} on the ${im.id} image: ${why}\n!!! its times are not counted; the bench will exit 1\n    ${firstLines(r.stdout + r.stderr, 15)}\n${banner}`);
}

// ---------------------------------------------------------------------------------------------
// main

const found = findTool('e2fsck');
const mke2fsFound = findTool('mke2fs');
if (found === undefined || mke2fsFound === undefined) fatal('e2fsck/mke2fs not found (apt install e2fsprogs)');
const E2FSCK = found;
const MKE2FS = mke2fsFound;
if (!fs.existsSync(CLI)) fatal(`--cli ${CLI} does not exist`);
if (!fs.existsSync(path.join(DIST, 'src/fsck/check.js')) && !opt['skip-passes']) fatal(`--dist ${DIST} has no src/fsck/check.js: npm run build (or --skip-passes)`);
{
  const v = spawnSync(process.execPath, [CLI, 'fsck', '--help'], { encoding: 'utf8' });
  if (v.status !== 0) fatal(`${CLI} fsck --help failed: ${firstLines(v.stderr + v.stdout)} (npm run build?)`);
}

// scratch space: trees and images live there together
const st = fs.statfsSync(work);
const freeBytes = st.bavail * st.bsize;
const freeInodes = st.ffree;
const scratchFs = fsType(work);
{
  let needBytes = 0;
  let needInodes = 0;
  if (IMAGES.includes('small') && TREE === undefined) {
    // tree (log-uniform means: ~2.1 KB small, ~2.3 MB large, plus a page each on tmpfs) twice, and slack
    needBytes += 2 * (SMALL.files * 6144 + SMALL.large * 2.5 * MiB) + 256 * MiB;
    needInodes += SMALL.files * 1.02 + SMALL.dirs * 1.2;
  }
  for (const [id, shape] of /** @type {const} */ ([['mid', MID], ['many', MANY]])) {
    if (!IMAGES.includes(id)) continue;
    // the tiny files' pages in the tree and blocks in the image, the inode tables, the journal, slack
    needBytes += 2 * (shape.files / 16) * 4096 + shape.inodes * 256 + 512 * MiB;
    needInodes = Math.max(needInodes, shape.files + shape.dirs);
  }
  log(`scratch: ${work} (${scratchFs}), ${(freeBytes / 2 ** 30).toFixed(1)} GiB and ${freeInodes} inodes free; ` +
    `need about ${(needBytes / 2 ** 30).toFixed(1)} GiB and ${Math.ceil(needInodes)} inodes`);
  if (freeBytes < needBytes) fatal(`not enough space in ${work}: ${(freeBytes / 2 ** 30).toFixed(1)} GiB free, need about ${(needBytes / 2 ** 30).toFixed(1)} GiB (--work DIR, or smaller --many-files)`);
  if (freeInodes > 0 && freeInodes < needInodes) fatal(`not enough inodes in ${work}: ${freeInodes} free, need about ${Math.ceil(needInodes)} (--work DIR on a fs with more, or smaller --many-files)`);
}
const scratchText = `${work} (${scratchFs}; ${(freeBytes / 2 ** 30).toFixed(1)} GiB, ${freeInodes.toLocaleString('en-US')} inodes free at start)`;

// the floor under every ext4ts figure: Node start-up and loading the CLI
/** @type {Sample[]} */
const floor = [];
for (let i = 0; i < RUNS + 1; i++) {
  const r = await run(process.execPath, [CLI, '--version'], { rss: true });
  if (failed(r)) fatal(`${CLI} --version failed (${exitText(r)}): ${brief(r.stderr)}`);
  if (i > 0) floor.push({ ms: r.ms, rssKb: r.rssKb }); // the first warms up
}

/** @type {Image[]} */
const images = [];
/** @type {number[]} */
const loads = [os.loadavg()[0] ?? 0];
for (const id of IMAGES) {
  const im = await buildImage(id, MKE2FS);
  images.push(im);
  const [e2, ext] = im.tools;
  if (e2 === undefined || ext === undefined) fatal('internal: tools missing');

  // warm-up: both once, untimed; both must say clean
  log(`${id}: warm-up (untimed): e2fsck -fn, ext4ts fsck -fn`);
  const w1 = await runTool(e2);
  if (w1.why !== undefined) {
    shout(im, e2, `warm-up ${w1.why}`, w1.r);
    ext.broken = 'not run: e2fsck does not find the image clean';
  } else {
    im.summary = lastLine(w1.r.stdout);
    const s = parseSummary(im.summary);
    if (s !== undefined) Object.assign(im, { inodesUsed: s.used, inodesTotal: s.total, blocks: s.blocks });
    const w2 = await runTool(ext);
    if (w2.why !== undefined) shout(im, ext, `warm-up ${w2.why}`, w2.r);
    im.stdoutSame = compareOut(w1.r.stdout, w2.r.stdout);
    if (im.stdoutSame !== 'same') console.error(`${banner}\n!!! ${id}: ext4ts fsck -fn stdout ${im.stdoutSame}\n${banner}`);
    log(`${id}: e2fsck ${w1.r.ms.toFixed(0)} ms, ext4ts ${w2.r.ms.toFixed(0)} ms; ${im.summary}`);
  }

  // timed runs, order rotated each run
  for (let runNo = 0; runNo < RUNS; runNo++) {
    for (const t of rotated(im.tools, runNo)) {
      if (t.broken !== undefined) continue;
      const { r, why } = await runTool(t);
      if (why !== undefined) {
        shout(im, t, `run ${runNo + 1}: ${why}`, r);
        continue;
      }
      t.samples.push({ ms: r.ms, rssKb: r.rssKb });
      log(`${id} run ${runNo + 1}/${RUNS} ${t.id}: ${r.ms.toFixed(0)} ms${r.rssKb !== undefined ? `, ${(r.rssKb / 1024).toFixed(0)} MB RSS` : ''}`);
    }
    loads.push(os.loadavg()[0] ?? 0);
  }

  // the time per pass, through the library
  if (opt['skip-passes']) im.passesWhy = '--skip-passes';
  else if (ext.broken !== undefined) im.passesWhy = 'ext4ts did not check the image clean';
  else {
    log(`${id}: one more ext4ts check through the library, for the time per pass`);
    /** @type {ChildSpec} */
    const spec = { dist: DIST, img: im.img };
    const r = await run(process.execPath, [SELF, '--child', JSON.stringify(spec)], { rss: true });
    if (failed(r)) im.passesWhy = `child ${exitText(r)}: ${brief(r.stderr)}`;
    else {
      try {
        /** @type {unknown} */
        const res = JSON.parse(lastLine(r.stdout));
        im.passes = /** @type {PassResult} */ (res);
        im.passesRssKb = r.rssKb;
        if (im.passes.passMs === null) im.passesWhy = 'this build\'s FsckReport has no passMs';
        if (!im.passes.clean) im.passesWhy = `the library check was not clean (exit ${im.passes.exitCode})`;
      } catch {
        im.passesWhy = `child printed no result: ${brief(r.stdout + r.stderr)}`;
      }
    }
  }
  // e2fsck's own account of its memory (-tt: "Memory used: 688k/0k ..." after each pass and at the end)
  const tt = await run(E2FSCK, ['-fn', '-tt', im.img], {});
  const used = [...`${tt.stdout}\n${tt.stderr}`.matchAll(/Memory used: (\d+)k/g)].map((m) => Number(m[1]));
  if (used.length > 0) im.e2fsckMemKb = Math.max(...used);
}

// ---------------------------------------------------------------------------------------------
// report

/** @param {number} ms */
const msText = (ms) => (Number.isNaN(ms) ? 'n/a' : ms.toFixed(0));
/** @param {number} kb */
const mbText = (kb) => (Number.isNaN(kb) ? 'n/a' : (kb / 1024).toFixed(0));
/** @param {ToolState | undefined} t */
const med = (t) => (t === undefined || t.broken !== undefined ? NaN : median(t.samples.map((s) => s.ms)));
/** The counted runs' peak RSS (KiB). @param {ToolState | undefined} t @returns {number[]} */
const rssKbs = (t) => (t?.broken !== undefined ? [] : (t?.samples ?? [])).map((s) => s.rssKb).filter((x) => x !== undefined);
/** @param {ToolState | undefined} t */
const peak = (t) => {
  const xs = rssKbs(t);
  return xs.length === 0 ? NaN : Math.max(...xs);
};
/** @param {ToolState | undefined} t */
const medRss = (t) => median(rssKbs(t));
/** @param {number} n */
const n0 = (n) => (Number.isNaN(n) ? '?' : n.toLocaleString('en-US'));

const totalS = (performance.now() - T_START) / 1000;
const unameR = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim();
const e2v = (spawnSync(E2FSCK, ['-V'], { encoding: 'utf8' }).stderr.split('\n')[0] ?? '').trim();
const maxLoad = Math.max(...loads);
const cpus = os.cpus().length;
const argv = process.argv.slice(2).map((a) => (/^[\w./,:=@%+-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`));
const lines = [
  '## W-fsck: ext4ts fsck -fn vs e2fsck -fn',
  '',
  `Node ${process.version}, kernel ${unameR}, ${e2v}, ${cpus} CPUs. Images on ${scratchText}. ` +
    `${RUNS} timed run(s) per tool and image after one untimed warm-up each, tool order rotated each run. ` +
    `1-min load average ${loads.map((l) => l.toFixed(2)).join(' / ')} (start, then after each run).` +
    (maxLoad > cpus * 0.5 ? ` **The machine was shared with other jobs (load up to ${maxLoad.toFixed(1)} on ${cpus} CPUs): absolute times are noisy, quote the ratios.**` : ''),
  '',
  '| image | inodes used | e2fsck median (ms) | e2fsck peak RSS (MB) | ext4ts median (ms) | ext4ts peak RSS (MB) | ext4ts/e2fsck time | ext4ts/e2fsck RSS | runs | verdict |',
  '|---|---|---|---|---|---|---|---|---|---|',
];
for (const im of images) {
  const [e2, ext] = im.tools;
  const verdict = im.tools.map((t) => `${t.id} ${t.broken !== undefined ? `**${t.broken}**` : `clean (exit ${[...new Set(t.codes)].join(',')} x${t.codes.length})`}`).join('; ');
  lines.push(`| ${im.label} | ${n0(im.inodesUsed)} | ${msText(med(e2))} | ${mbText(peak(e2))} | ${msText(med(ext))} | ${mbText(peak(ext))} | ` +
    `${ratio(med(ext), med(e2))} | ${ratio(peak(ext), peak(e2))} | ${e2?.samples.length ?? 0}/${ext?.samples.length ?? 0} | ${verdict} |`);
}
{
  const rss = floor.map((x) => x.rssKb).filter((x) => x !== undefined);
  lines.push('', `Floor under the ext4ts column: \`node bin/ext4ts.js --version\` (Node start-up and loading the CLI) takes ` +
    `${msText(median(floor.map((x) => x.ms)))} ms median and ${rss.length > 0 ? mbText(Math.max(...rss)) : 'n/a'} MB peak RSS here.`);
}
if (TIME_BIN === undefined) lines.push('', 'No /usr/bin/time (apt install time): no peak RSS.');

lines.push('', '| image | tree | built by | image (allocated) | e2fsck summary | tree gen (s) | mke2fs -d (s) | ext4ts stdout vs e2fsck |', '|---|---|---|---|---|---|---|---|');
for (const im of images) {
  const t = im.tree;
  const treeText = t === undefined ? `${TREE ?? '?'} (given)` : `${n0(t.files)} files, ${n0(t.dirs)} dirs, ${n0(t.symlinks)} symlinks, ${(t.bytes / 1e6).toFixed(1)} MB`;
  lines.push(`| ${im.id} | ${treeText} | \`${im.mkfsArgs}\` | ${im.sizeText} (${(im.imageBytes / 1e6).toFixed(0)} MB) | \`${im.summary.replace(work, '$WORK')}\` | ` +
    `${t === undefined ? '-' : (t.ms / 1000).toFixed(1)} | ${(im.mkfsMs / 1000).toFixed(1)} | ${im.stdoutSame} |`);
}

lines.push('', 'ext4ts time per pass (`FsckReport.passMs`, one extra run through the library: `FileDevice.open(IMG, { readOnly: true, syncIO: true })` + ' +
  '`check(dev, { force: true })` from the same build, in a process of its own; not part of the medians above):', '',
  '| image | check (ms) | 0: open, superblock | 1: inodes, blocks | 2: directories | 3: connectivity | 4: ref counts | 5: group summaries | peak RSS (MB) |',
  '|---|---|---|---|---|---|---|---|---|');
for (const im of images) {
  const p = im.passes;
  if (p === undefined || p.passMs === null || im.passesWhy !== undefined) {
    lines.push(`| ${im.id} | n/a: ${im.passesWhy ?? '?'} | | | | | | | |`);
    continue;
  }
  const sum = p.passMs.reduce((a, b) => a + b, 0);
  const cells = [0, 1, 2, 3, 4, 5].map((i) => {
    const ms = p.passMs?.[i] ?? NaN;
    return `${msText(ms)} (${((100 * ms) / sum).toFixed(0)}%)`;
  });
  lines.push(`| ${im.id} | ${msText(p.checkMs)} | ${cells.join(' | ')} | ${mbText(im.passesRssKb ?? NaN)} |`);
}

lines.push('', 'Memory that grows with the volume: e2fsck\'s own account (`e2fsck -fn -tt`, the largest "Memory used", its heap in use: ' +
  'bitmaps, icounts, lists) and ext4ts\'s (`FsckReport.structureBytes` of the per-pass run: its per-inode and per-block maps and lists), ' +
  'beside both tools\' peak RSS (as above); then the growth from each image to the next (RSS: the change in the runs\' median peak RSS):', '',
  '| image | inodes used | e2fsck "Memory used" (KiB) | ext4ts structureBytes (KiB) | e2fsck peak RSS (MB) | ext4ts peak RSS (MB) |',
  '|---|---|---|---|---|---|');
for (const im of images) {
  const sb = im.passes?.structureBytes;
  const rssOf = (/** @type {string} */ id) => mbText(peak(im.tools.find((x) => x.id === id)));
  lines.push(`| ${im.id} | ${n0(im.inodesUsed)} | ${im.e2fsckMemKb === undefined ? 'n/a' : n0(im.e2fsckMemKb)} | ` +
    `${sb === undefined || sb === null ? 'n/a' : n0(Math.round(sb / 1024))} | ${rssOf('e2fsck')} | ${rssOf('ext4ts')} |`);
}
// The growth between images, in the same columns: "grows no faster than e2fsck" read as a slope.
const signed = (/** @type {number} */ x, /** @type {(x: number) => string} */ f) =>
  (Number.isFinite(x) ? `${x >= 0 || f(-x) === f(0) ? '+' : '-'}${f(Math.abs(x))}` : 'n/a');
for (let i = 1; i < images.length; i++) {
  const a = images[i - 1];
  const b = images[i];
  const kib = (/** @type {Image} */ im) => (im.passes?.structureBytes ?? NaN) / 1024;
  // medians of the runs' peak RSS: the largest of seven picks up a stray run
  const rss = (/** @type {Image} */ im, /** @type {string} */ id) => medRss(im.tools.find((x) => x.id === id));
  const mb1 = (/** @type {number} */ kb) => (kb / 1024).toFixed(1);
  lines.push(`| ${a.id} to ${b.id} | ${signed(b.inodesUsed - a.inodesUsed, n0)} | ${signed((b.e2fsckMemKb ?? NaN) - (a.e2fsckMemKb ?? NaN), n0)} | ` +
    `${signed(kib(b) - kib(a), (x) => n0(Math.round(x)))} | ${signed(rss(b, 'e2fsck') - rss(a, 'e2fsck'), mb1)} | ${signed(rss(b, 'ext4ts') - rss(a, 'ext4ts'), mb1)} |`);
}

lines.push('', 'Raw times (ms) [peak RSS MB]:');
for (const im of images) {
  for (const t of im.tools) {
    lines.push(`- ${im.id} ${t.id}: ${t.samples.length === 0 ? 'none' : t.samples.map((s) => `${s.ms.toFixed(0)} [${mbText(s.rssKb ?? NaN)}]`).join(', ')}`);
  }
}
lines.push('', 'Commands timed: `E2FSCK_CONFIG=/dev/null LC_ALL=C e2fsck -fn IMG` and `node bin/ext4ts.js fsck -fn IMG` ' +
  `(each under \`/usr/bin/time -f %M\`).`, '',
  `Reproduce: \`node bench/fsck.mjs${argv.length > 0 ? ` ${argv.join(' ')}` : ''}\` (from the repo root, after \`npm run build\`). ` +
  `Whole bench: ${totalS.toFixed(0)} s (trees, mke2fs, warm-ups, ${RUNS} timed run(s) of each tool, per-pass runs).`);
console.log(lines.join('\n'));

scratch.cleanup();
const bad = images.flatMap((im) => im.tools.filter((t) => t.broken !== undefined).map((t) => `${t.id} on ${im.id}: ${t.broken ?? ''}`));
if (bad.length > 0) {
  console.error(`${banner}\nbench: FAILED, not every image was checked clean:\n${bad.map((b) => `  ${b}`).join('\n')}\n${banner}`);
  process.exit(1);
}
process.exit(0);
