#!/usr/bin/env node
// W-populate benchmark: build a fresh ext4 image holding a host tree, ext4ts against
// mke2fs -d and the kernel, in one run.
//
//   node bench/populate.mjs [--files 20000] [--seed 42] [--runs 3] [--keep]
//                           [--work DIR] [--tree DIR] [--size 2G] [--cli bin/ext4ts.js]
//
// 1. Generate the W1 tree with bench/gen-tree.mjs (defaults: W1, 20,000 files, seed 42;
//    --files shrinks it for quick runs), or reuse --tree DIR (never deleted).
// 2. Per tool, once and untimed: build the image, `e2fsck -fn` it, mount it read-only through
//    the kernel and compare it with the source tree (paths, types, sizes, sha256, modes,
//    symlink targets; xattrs, hard links, mtimes to the second and to the nanosecond, owners
//    and the root directory are reported, not required). An ext4ts image that fails e2fsck or
//    holds wrong data is reported loudly, its times are not counted, and the exit status is 1.
// 3. Time, per run, with the tool order rotated each run and the page cache dropped (sync +
//    drop_caches, when root) before every step, from a fresh (deleted) image file:
//      ext4ts-d node bin/ext4ts.js mkfs -q -F -t ext4 -d TREE IMG 2G
//      ext4ts   node bin/ext4ts.js mkfs -q -F -t ext4 IMG 2G
//               + node bin/ext4ts.js cp -a TREE/. IMG:/
//      mke2fs   mke2fs -q -F -t ext4 -d TREE IMG 2G
//      kernel   mke2fs -q -F -t ext4 IMG 2G; mount -o loop IMG MNT; cp -a TREE/. MNT/; umount MNT
//    Every timed image is checked again with `e2fsck -fn` (untimed).
// 4. Print medians, MB/s, peak RSS and the ratios of both ext4ts rows to mke2fs -d and to the
//    kernel as Markdown on stdout (progress goes to stderr).
//
// Both ext4ts rows copy with the same code (tools/cli/populate.ts); `cp -a TREE/. IMG:/`, like
// the kernel run's `cp -a TREE/. MNT/`, also gives the image root the tree root's metadata, and
// so does mkfs -d. --cp-tops copies every top-level entry of TREE as a source instead (what this
// benchmark did before `cp -a TREE/.` worked): the root then keeps what mkfs gave it.

/* global console, process */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TIME_BIN, brief, dropCaches, exitText, failed, findTool, firstLines, log, mbps, median, ratio, run, secs, sha256File, cleanupOnExit } from './lib.mjs';
/** @typedef {import('./lib.mjs').RunResult} RunResult */

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');

const { values: opt } = parseArgs({
  options: {
    files: { type: 'string', default: '20000' },
    seed: { type: 'string', default: '42' },
    runs: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
    work: { type: 'string' },
    tree: { type: 'string' },
    size: { type: 'string', default: '2G' },
    cli: { type: 'string', default: path.join(REPO, 'bin/ext4ts.js') },
    'cp-tops': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  console.log('usage: node bench/populate.mjs [--files N] [--seed 42] [--runs 3] [--keep] [--work DIR] [--tree DIR] [--size 2G] [--cli PATH] [--cp-tops]');
  process.exit(0);
}
const FILES = Number(opt.files);
const SEED = Number(opt.seed);
const RUNS = Math.max(1, Number(opt.runs));
const SIZE = opt.size;
const CLI = path.resolve(opt.cli);


// ---------------------------------------------------------------------------------------------
// tree walk and comparison

/**
 * @typedef {object} Entry
 * @property {'f' | 'd' | 'l' | 'o'} type
 * @property {number} mode permission bits (& 0o7777)
 * @property {number} size
 * @property {number} uid
 * @property {number} gid
 * @property {bigint} mtimeNs
 * @property {number} ino
 * @property {number} nlink
 * @property {string} [sha256]
 * @property {string} [target]
 */


/**
 * The metadata of one path (no data).
 * @param {string} abs
 * @returns {Promise<Entry>}
 */
async function stat(abs) {
  const st = await fs.promises.lstat(abs, { bigint: true });
  return {
    type: st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'o',
    mode: Number(st.mode & 0o7777n), size: Number(st.size), uid: Number(st.uid), gid: Number(st.gid),
    mtimeNs: st.mtimeNs, ino: Number(st.ino), nlink: Number(st.nlink),
  };
}

/**
 * Every entry below root (root itself excluded), keyed by its path relative to root.
 * @param {string} root
 * @returns {Promise<Map<string, Entry>>}
 */
async function walk(root) {
  /** @type {Map<string, Entry>} */
  const entries = new Map();
  /** @param {string} rel */
  const visit = async (rel) => {
    const names = (await fs.promises.readdir(path.join(root, rel))).sort();
    for (const name of names) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const abs = path.join(root, r);
      const e = await stat(abs);
      if (e.type === 'f') e.sha256 = await sha256File(abs);
      if (e.type === 'l') e.target = await fs.promises.readlink(abs);
      entries.set(r, e);
      if (e.type === 'd') await visit(r);
    }
  };
  await visit('');
  return entries;
}

/**
 * user.* xattrs of every file below root, by relative path (getfattr from the attr package).
 * @param {string} root
 * @returns {Map<string, Map<string, string>> | undefined} undefined when getfattr is missing
 */
function readXattrs(root) {
  const r = spawnSync('getfattr', ['-R', '-P', '-d', '-m', '^user\\.', '-e', 'hex', '.'], {
    cwd: root, encoding: 'utf8', maxBuffer: 1 << 30,
  });
  if (r.error !== undefined) return undefined;
  /** @type {Map<string, Map<string, string>>} */
  const all = new Map();
  /** @type {Map<string, string> | undefined} */
  let cur;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      cur = new Map();
      all.set(line.slice('# file: ./'.length), cur);
    } else if (cur !== undefined && line.includes('=')) {
      const eq = line.indexOf('=');
      cur.set(line.slice(0, eq), line.slice(eq + 1));
    }
  }
  return all;
}

/**
 * @typedef {object} Fidelity
 * @property {string[]} errors wrong data, missing or extra entries, wrong types or modes
 * @property {string} xattrs
 * @property {string} hardlinks
 * @property {string} mtimeS mtimes equal to the second
 * @property {string} mtimeNs mtimes equal to the nanosecond
 * @property {string} owners
 * @property {string} root the image's root directory against the tree's
 * @property {number} inodes inodes in use below the root (lost+found aside)
 */

/** @param {number} a @param {number} b */
const frac = (a, b) => (a === b ? `all ${b}` : `${a}/${b}`);

/**
 * "all N" when every entry matched, else the count per type.
 * @param {Record<'f' | 'd' | 'l', [number, number]>} c [matched, total] per type
 */
function perType(c) {
  const ok = c.f[0] + c.d[0] + c.l[0];
  const n = c.f[1] + c.d[1] + c.l[1];
  if (ok === n) return `all ${n}`;
  return `files ${c.f[0]}/${c.f[1]}, dirs ${c.d[0]}/${c.d[1]}, symlinks ${c.l[0]}/${c.l[1]}`;
}

/**
 * Compare a mounted image with the source tree.
 * @param {string} tree
 * @param {Map<string, Entry>} src
 * @param {Map<string, Map<string, string>> | undefined} srcX
 * @param {string} root
 * @returns {Promise<Fidelity>}
 */
async function compare(tree, src, srcX, root) {
  const got = await walk(root);
  /** @type {string[]} */
  const errors = [];
  let owners = 0, ownersOk = 0;
  /** @type {Record<'f' | 'd' | 'l', [number, number]>} */
  const mtS = { f: [0, 0], d: [0, 0], l: [0, 0] };
  /** @type {Record<'f' | 'd' | 'l', [number, number]>} */
  const mtNs = { f: [0, 0], d: [0, 0], l: [0, 0] };
  for (const [p, s] of src) {
    const g = got.get(p);
    if (g === undefined) {
      errors.push(`missing: ${p}`);
      continue;
    }
    if (g.type !== s.type) {
      errors.push(`type: ${p}: ${g.type}, want ${s.type}`);
      continue;
    }
    if (s.type !== 'l' && g.mode !== s.mode) errors.push(`mode: ${p}: ${g.mode.toString(8)}, want ${s.mode.toString(8)}`);
    if (s.type === 'f') {
      if (g.size !== s.size) errors.push(`size: ${p}: ${g.size}, want ${s.size}`);
      else if (g.sha256 !== s.sha256) errors.push(`data: ${p}: sha256 differs`);
    }
    if (s.type === 'l' && g.target !== s.target) errors.push(`symlink: ${p}: -> ${String(g.target)}, want -> ${String(s.target)}`);
    if (s.type !== 'o') {
      mtS[s.type][1]++;
      mtNs[s.type][1]++;
      if (g.mtimeNs / 1_000_000_000n === s.mtimeNs / 1_000_000_000n) mtS[s.type][0]++;
      if (g.mtimeNs === s.mtimeNs) mtNs[s.type][0]++;
    }
    owners++;
    if (g.uid === s.uid && g.gid === s.gid) ownersOk++;
  }
  for (const p of got.keys()) {
    if (!src.has(p) && p !== 'lost+found' && !p.startsWith('lost+found/')) errors.push(`extra: ${p}`);
  }
  // hard links: every source group of paths sharing an inode should share one in the image
  /** @type {Map<number, string[]>} */
  const groups = new Map();
  for (const [p, s] of src) if (s.type === 'f' && s.nlink > 1) groups.set(s.ino, [...(groups.get(s.ino) ?? []), p]);
  let linked = 0;
  for (const paths of groups.values()) {
    const inos = new Set(paths.map((p) => got.get(p)?.ino));
    if (inos.size === 1 && !inos.has(undefined)) linked++;
  }
  const inodes = new Set([...got].filter(([p]) => p !== 'lost+found' && !p.startsWith('lost+found/')).map(([, e]) => e.ino)).size;
  let xattrs = 'not checked (getfattr missing)';
  if (srcX !== undefined) {
    /** @type {Map<string, Map<string, string>>} */
    const none = new Map();
    const gotX = readXattrs(root) ?? none;
    let want = 0, ok = 0;
    for (const [p, attrs] of srcX) {
      for (const [name, value] of attrs) {
        want++;
        if (gotX.get(p)?.get(name) === value) ok++;
      }
    }
    xattrs = frac(ok, want);
  }
  // the root directory itself (cp -a TREE/. sets it; copying the entries one by one does not)
  const sr = await stat(tree);
  const gr = await stat(root);
  /** @type {string[]} */
  const rootDiffs = [];
  if (gr.mode !== sr.mode) rootDiffs.push(`mode ${gr.mode.toString(8)} (tree ${sr.mode.toString(8)})`);
  if (gr.uid !== sr.uid || gr.gid !== sr.gid) rootDiffs.push(`owner ${gr.uid}:${gr.gid} (tree ${sr.uid}:${sr.gid})`);
  if (gr.mtimeNs !== sr.mtimeNs) rootDiffs.push(gr.mtimeNs / 1_000_000_000n === sr.mtimeNs / 1_000_000_000n ? 'mtime ns differ' : 'mtime differs');
  return {
    errors, xattrs, hardlinks: `${frac(linked, groups.size)} groups`,
    mtimeS: perType(mtS), mtimeNs: perType(mtNs), owners: frac(ownersOk, owners),
    root: rootDiffs.length === 0 ? 'same' : rootDiffs.join(', '), inodes,
  };
}

// ---------------------------------------------------------------------------------------------
// statistics and formatting

/** @param {number} kb */
const mb = (kb) => `${(kb / 1024).toFixed(0)} MB`;

// ---------------------------------------------------------------------------------------------
// main

/**
 * @typedef {object} Step one timed build of an image
 * @property {string | undefined} failure why it failed
 * @property {number} ms
 * @property {number | undefined} rssKb
 * @property {string} parts the time per process, when there are several
 */

/**
 * @typedef {object} Tool
 * @property {'ext4ts-d' | 'ext4ts' | 'mke2fs' | 'kernel'} id
 * @property {string} label
 * @property {string} img
 * @property {() => Promise<Step>} exec builds img from nothing
 * @property {number[]} times
 * @property {string[]} parts
 * @property {number[]} rss
 * @property {string | undefined} broken why its times do not count
 * @property {string} fsck e2fsck -fn of the checked and the timed images
 * @property {Fidelity | undefined} fidelity
 */

const work = opt.work !== undefined ? path.resolve(opt.work) : fs.mkdtempSync(path.join(os.tmpdir(), 'ext4ts-bench-'));
fs.mkdirSync(work, { recursive: true });
const tree = opt.tree !== undefined ? path.resolve(opt.tree) : path.join(work, 'tree');
const mnt = path.join(work, 'mnt');
/** @type {string[]} */
const images = [];

/** Unmount MNT if something is mounted there (a step or check was interrupted). */
function unmountLeftover() {
  if (fs.existsSync(mnt) && spawnSync('mountpoint', ['-q', mnt]).status === 0) spawnSync('umount', [mnt], { stdio: 'ignore' });
}

function cleanup() {
  unmountLeftover();
  if (opt.keep) {
    log(`kept ${work}`);
    return;
  }
  fs.rmSync(mnt, { recursive: true, force: true });
  for (const img of images) fs.rmSync(img, { force: true });
  if (opt.tree === undefined) {
    fs.rmSync(tree, { recursive: true, force: true });
    fs.rmSync(`${tree}.manifest.tsv`, { force: true });
    fs.rmSync(`${tree}.summary.json`, { force: true });
  }
  if (opt.work === undefined) fs.rmSync(work, { recursive: true, force: true });
}
/** @type {(msg: string) => never} */
const fatal = cleanupOnExit(cleanup);

async function main() {
  const mke2fs = findTool('mke2fs');
  const e2fsck = findTool('e2fsck');
  if (mke2fs === undefined) fatal('mke2fs not found (apt install e2fsprogs)');
  if (e2fsck === undefined) fatal('e2fsck not found (apt install e2fsprogs): the images cannot be checked');
  if (work.includes(':')) fatal(`--work ${work} contains ':', which ext4ts cp would read as IMAGE:PATH`);

  // 1. tree
  if (opt.tree === undefined) {
    log(`generating the W1 tree (--files ${FILES} --seed ${SEED}) in ${tree}`);
    const g = spawnSync(process.execPath, [path.join(HERE, 'gen-tree.mjs'), '--out', tree, '--seed', String(SEED), '--files', String(FILES)], {
      stdio: ['ignore', 2, 2],
    });
    if (g.status !== 0) fatal(`gen-tree.mjs failed (exit ${String(g.status)})`);
  } else if (!fs.existsSync(tree)) fatal(`--tree ${tree} does not exist`);
  log('hashing the source tree');
  const src = await walk(tree);
  const srcX = readXattrs(tree);
  const seen = new Set();
  let bytes = 0;
  for (const e of src.values()) {
    if (e.type === 'f' && !seen.has(e.ino)) {
      seen.add(e.ino);
      bytes += e.size;
    }
  }
  const nFiles = [...src.values()].filter((e) => e.type === 'f').length;
  const nDirs = [...src.values()].filter((e) => e.type === 'd').length;
  const nLinks = [...src.values()].filter((e) => e.type === 'l').length;
  const nOther = [...src.values()].filter((e) => e.type === 'o').length;
  const tops = (await fs.promises.readdir(tree)).sort().map((n) => path.join(tree, n));
  if (tops.length === 0) fatal(`--tree ${tree} is empty`);

  // 2. what this machine allows
  const dropWhy = dropCaches();
  const cold = dropWhy === undefined;
  log(cold ? 'page cache can be dropped: timing cold' : `cannot drop the page cache (${dropWhy}): timing without dropping it`);
  fs.mkdirSync(mnt, { recursive: true });
  unmountLeftover();
  /** @type {string | undefined} */
  let mountWhy;
  {
    const probeImg = path.join(work, 'probe.img');
    images.push(probeImg);
    fs.rmSync(probeImg, { force: true });
    const mk = await run(mke2fs, ['-q', '-F', '-t', 'ext4', probeImg, '64M']);
    if (failed(mk)) fatal(`mke2fs failed (${exitText(mk)}):\n    ${firstLines(mk.stderr)}`);
    const probe = await run('mount', ['-o', 'ro,loop', probeImg, mnt]);
    if (failed(probe)) mountWhy = `loop mount failed: ${brief(probe.stderr)}`;
    else await run('umount', [mnt]);
    fs.rmSync(probeImg, { force: true });
  }
  if (mountWhy !== undefined) {
    fatal(`${mountWhy}; the images are checked through a kernel mount, so nothing can be verified (run as root)`);
  }

  const imgOf = (/** @type {string} */ id) => {
    const p = path.join(work, `populate-${id}.img`);
    images.push(p);
    return p;
  };
  const extDImg = imgOf('ext4ts-d');
  const extImg = imgOf('ext4ts');
  const cpSources = opt['cp-tops'] ? tops : [`${tree}/.`];
  const mkImg = imgOf('mke2fs');
  const kImg = imgOf('kernel');

  /** @type {Tool[]} */
  const tools = [
    {
      id: 'ext4ts-d', img: extDImg, times: [], parts: [], rss: [], broken: undefined, fsck: '', fidelity: undefined,
      label: '`ext4ts mkfs -t ext4 -d TREE`',
      exec: async () => {
        const r = await run(process.execPath, [CLI, 'mkfs', '-q', '-F', '-t', 'ext4', '-d', tree, extDImg, SIZE], { rss: true });
        return { failure: failed(r) ? `ext4ts mkfs -d failed (${exitText(r)}): ${brief(r.stderr)}` : undefined, ms: r.ms, rssKb: r.rssKb, parts: '' };
      },
    },
    {
      id: 'ext4ts', img: extImg, times: [], parts: [], rss: [], broken: undefined, fsck: '', fidelity: undefined,
      label: opt['cp-tops'] ? `\`ext4ts mkfs\` + \`ext4ts cp -a\` (${tops.length} top-level entries)` : '`ext4ts mkfs` + `ext4ts cp -a TREE/. IMG:/`',
      exec: async () => {
        const a = await run(process.execPath, [CLI, 'mkfs', '-q', '-F', '-t', 'ext4', extImg, SIZE], { rss: true });
        if (failed(a)) return { failure: `ext4ts mkfs failed (${exitText(a)}): ${brief(a.stderr)}`, ms: a.ms, rssKb: a.rssKb, parts: '' };
        const b = await run(process.execPath, [CLI, 'cp', '-a', ...cpSources, `${extImg}:/`], { rss: true });
        const rssKb = a.rssKb === undefined || b.rssKb === undefined ? (a.rssKb ?? b.rssKb) : Math.max(a.rssKb, b.rssKb);
        const part = (/** @type {string} */ name, /** @type {RunResult} */ x) => `${name} ${secs(x.ms)}${x.rssKb !== undefined ? ` [${mb(x.rssKb)}]` : ''}`;
        const parts = `${part('mkfs', a)} + ${part('cp', b)}`;
        if (failed(b)) return { failure: `ext4ts cp -a failed (${exitText(b)}): ${brief(b.stderr)}`, ms: a.ms + b.ms, rssKb, parts };
        return { failure: undefined, ms: a.ms + b.ms, rssKb, parts };
      },
    },
    {
      id: 'mke2fs', img: mkImg, times: [], parts: [], rss: [], broken: undefined, fsck: '', fidelity: undefined,
      label: '`mke2fs -t ext4 -d TREE`',
      exec: async () => {
        const r = await run(mke2fs, ['-q', '-F', '-t', 'ext4', '-d', tree, mkImg, SIZE], { rss: true });
        return { failure: failed(r) ? `mke2fs -d failed (${exitText(r)}): ${brief(r.stderr)}` : undefined, ms: r.ms, rssKb: r.rssKb, parts: '' };
      },
    },
    {
      id: 'kernel', img: kImg, times: [], parts: [], rss: [], broken: undefined, fsck: '', fidelity: undefined,
      label: 'kernel: `mke2fs` + loop mount + `cp -a TREE/. MNT/` + umount',
      exec: async () => {
        const script = [
          'mke2fs -q -F -t ext4 "$1" "$2" || exit 97',
          'mount -o loop "$1" "$3" || exit 99',
          'cp -a "$4/." "$3/"; rc=$?',
          'umount "$3" || exit 98',
          'exit $rc',
        ].join('\n');
        const r = await run('bash', ['-c', script, 'bash', kImg, SIZE, mnt, tree], { rss: true });
        if (failed(r)) unmountLeftover();
        return { failure: failed(r) ? `kernel populate failed (${exitText(r)}): ${brief(r.stderr)}` : undefined, ms: r.ms, rssKb: r.rssKb, parts: '' };
      },
    },
  ];

  /**
   * e2fsck -fn; returns undefined when clean, else what it said.
   * @param {string} img
   */
  const fsck = async (img) => {
    const fk = await run(e2fsck, ['-fn', img]);
    return failed(fk) ? `e2fsck -fn: ${exitText(fk)}: ${brief(fk.stdout + fk.stderr)}` : undefined;
  };
  const banner = '!'.repeat(78);

  // 3. correctness, once per tool, before any timing counts
  for (const t of tools) {
    fs.rmSync(t.img, { force: true });
    log(`building the ${t.id} image for the check`);
    const r = await t.exec();
    if (r.failure !== undefined) {
      t.broken = r.failure;
      t.fsck = 'not run';
      console.error(`${banner}\n!!! ${t.id}: ${r.failure}\n${banner}`);
      continue;
    }
    const bad = await fsck(t.img);
    t.fsck = bad === undefined ? 'clean' : `**NOT CLEAN** (${bad})`;
    if (bad !== undefined) {
      t.broken = `IMAGE NOT CLEAN: ${bad}`;
      const fk = await run(e2fsck, ['-fn', t.img]);
      console.error(`${banner}\n!!! ${t.id}: the image FAILS e2fsck -fn; its times are not counted\n${banner}\n    ${firstLines(fk.stdout + fk.stderr, 25)}`);
    }
    log(`checking the ${t.id} image against the source tree (kernel ro mount)`);
    const m = await run('mount', ['-o', 'ro,loop', t.img, mnt]);
    if (failed(m)) {
      t.broken = `${t.broken !== undefined ? `${t.broken}; ` : ''}kernel cannot mount the image: ${brief(m.stderr)}`;
      console.error(`${banner}\n!!! ${t.id}: the kernel cannot mount the image: ${brief(m.stderr)}\n${banner}`);
      continue;
    }
    try {
      t.fidelity = await compare(tree, src, srcX, mnt);
    } finally {
      await run('umount', [mnt]);
    }
    const errs = t.fidelity.errors;
    if (errs.length > 0) {
      t.broken = `${t.broken !== undefined ? `${t.broken}; ` : ''}WRONG CONTENTS: ${errs.length} mismatches`;
      console.error(`${banner}\n!!! ${t.id}: IMAGE CONTENTS DO NOT MATCH THE SOURCE TREE (${errs.length} mismatches); its times are not counted\n${banner}`);
      for (const e of errs.slice(0, 25)) console.error(`    ${e}`);
      if (errs.length > 25) console.error(`    ... and ${errs.length - 25} more`);
    }
  }

  // 4. timing
  const loadBefore = os.loadavg();
  /** @type {number[][]} */
  const loads = [loadBefore];
  const active = tools.filter((t) => t.broken === undefined);
  for (let runNo = 0; runNo < RUNS; runNo++) {
    const order = active.map((_, i) => active[(i + runNo) % active.length]).filter((t) => t !== undefined);
    for (const t of order) {
      if (t.broken !== undefined) continue;
      fs.rmSync(t.img, { force: true });
      if (cold) dropCaches();
      else spawnSync('sync');
      const r = await t.exec();
      if (r.failure !== undefined) {
        t.broken = `failed during timing: ${r.failure}`;
        console.error(`${banner}\n!!! ${t.id}: ${t.broken}\n${banner}`);
        continue;
      }
      const bad = await fsck(t.img);
      if (bad !== undefined) {
        t.broken = `timed image NOT CLEAN (run ${runNo + 1}): ${bad}`;
        t.fsck = `**NOT CLEAN** in run ${runNo + 1}`;
        console.error(`${banner}\n!!! ${t.id}: ${t.broken}; its times are not counted\n${banner}`);
        continue;
      }
      t.times.push(r.ms);
      t.parts.push(r.parts);
      if (r.rssKb !== undefined) t.rss.push(r.rssKb);
      log(`run ${runNo + 1}/${RUNS} ${t.id}: ${secs(r.ms)} s${r.parts !== '' ? ` (${r.parts})` : ''}${r.rssKb !== undefined ? `, ${mb(r.rssKb)} RSS` : ''}`);
    }
    loads.push(os.loadavg());
  }
  for (const t of tools) if (t.broken === undefined && t.times.length > 0) t.fsck = `clean (${t.times.length + 1} images)`;

  // 5. report
  const byId = (/** @type {Tool['id']} */ id) => tools.find((t) => t.id === id);
  const med = (/** @type {Tool | undefined} */ t) => (t === undefined || t.broken !== undefined ? NaN : median(t.times));
  const unameR = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim();
  const e2v = (spawnSync(mke2fs, ['-V'], { encoding: 'utf8' }).stderr.split('\n')[0] ?? '').trim();
  const maxLoad = Math.max(...loads.map((l) => l[0] ?? 0));
  const loadText = `load average (1 min) ${loads.map((l) => (l[0] ?? 0).toFixed(2)).join(' / ')} before and after each run`;
  const lines = [
    `## W-populate: ext4ts vs peers`,
    '',
    `Tree: ${nFiles} regular files (${(bytes / 1e6).toFixed(1)} MB), ${nDirs} directories, ${nLinks} symlinks${nOther > 0 ? `, ${nOther} other` : ''}, ` +
      `seed ${SEED}${opt.tree !== undefined ? `, from ${tree}` : ''}; fresh ${SIZE} image per step. ` +
      `${RUNS} run(s), order rotated each run; ${cold ? 'sync + drop_caches before every step' : `page cache NOT dropped (${dropWhy})`}. ` +
      `Node ${process.version}, kernel ${unameR}, ${e2v}, ${os.cpus().length} CPUs; ${loadText}.` +
      (maxLoad > os.cpus().length * 0.5 ? ` **The machine was shared with other jobs (load up to ${maxLoad.toFixed(1)} on ${os.cpus().length} CPUs): absolute times are noisy, quote the ratios.**` : ''),
    '',
    '| tool | median (s) | MB/s | peak RSS | runs | e2fsck -fn | notes |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const t of tools) {
    const m = med(t);
    const rss = t.rss.length > 0 ? mb(Math.max(...t.rss)) : TIME_BIN === undefined ? 'n/a (no /usr/bin/time)' : 'n/a';
    const note = t.broken ?? {
      'ext4ts-d': 'one process',
      ext4ts: 'mkfs then cp, two processes; RSS is the larger',
      mke2fs: 'one process',
      kernel: 'timed mkfs to umount; RSS is of mke2fs/cp only, kernel memory not counted',
    }[t.id];
    lines.push(`| ${t.label} | ${secs(m)} | ${mbps(bytes, m)} | ${t.id === 'kernel' && rss !== 'n/a' ? `(${rss})` : rss} | ${t.times.length} | ${t.fsck} | ${note} |`);
  }
  const e = byId('ext4ts');
  const ed = byId('ext4ts-d');
  lines.push('', '| ratio (lower is better for ext4ts) | median |', '|---|---|');
  lines.push(`| ext4ts mkfs -d / mke2fs -d | ${ratio(med(ed), med(byId('mke2fs')))} |`);
  lines.push(`| ext4ts mkfs -d / kernel | ${ratio(med(ed), med(byId('kernel')))} |`);
  lines.push(`| ext4ts mkfs + cp -a / mke2fs -d | ${ratio(med(e), med(byId('mke2fs')))} |`);
  lines.push(`| ext4ts mkfs + cp -a / kernel | ${ratio(med(e), med(byId('kernel')))} |`);
  lines.push('', '| image check (kernel ro mount) | data, modes, symlinks | user xattrs | hard links | mtimes (s) | mtimes (ns) | owners | inodes | root dir |',
    '|---|---|---|---|---|---|---|---|---|');
  const srcInodes = new Set([...src.values()].map((x) => x.ino)).size;
  for (const t of tools) {
    const f = t.fidelity;
    if (f === undefined) lines.push(`| ${t.id} | not checked: ${t.broken ?? '?'} | | | | | | | |`);
    else {
      lines.push(`| ${t.id} | ${f.errors.length === 0 ? 'ok' : `**WRONG: ${f.errors.length} mismatches**`} | ${f.xattrs} | ${f.hardlinks} | ` +
        `${f.mtimeS} | ${f.mtimeNs} | ${f.owners} | ${f.inodes} (tree ${srcInodes}) | ${f.root} |`);
    }
  }
  lines.push('', 'Raw times (s):');
  for (const t of tools) {
    if (t.times.length > 0) {
      const withParts = t.times.map((ms, i) => (t.parts[i] !== undefined && t.parts[i] !== '' ? `${secs(ms)} (${t.parts[i]})` : secs(ms)));
      lines.push(`- ${t.id}: ${withParts.join(', ')}`);
    }
  }
  console.log(lines.join('\n'));

  let status = 0;
  for (const ext of tools.filter((t) => t.id === 'ext4ts' || t.id === 'ext4ts-d')) {
    if (ext.broken === undefined) continue;
    console.error(ext.fidelity !== undefined && ext.fidelity.errors.length > 0
      ? `bench: ${ext.id} produced an image with WRONG CONTENTS (${ext.fidelity.errors.length} mismatches); see above`
      : `bench: ${ext.id}: ${ext.broken}`);
    status = 1;
  }
  cleanup();
  process.exit(status);
}

main().catch((/** @type {unknown} */ err) => fatal(`unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
