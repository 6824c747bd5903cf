#!/usr/bin/env node
// Deterministic W1 source-tree generator for the ext4 peer benchmarks.
//
//   node gen-tree.mjs [--out DIR] [--seed 42] [--files 20000]
//                           [--max-size 1048576] [--big-max-size 65536]
//
// Layout (all choices come from one seeded PRNG, so the same seed gives a
// byte-identical tree, including xattr values and mtimes):
//   big0/, big1/       5,000 regular files each (forces htree directories);
//                      sizes log-uniform in [0, --big-max-size)
//   t/dNN/dNN/dNN/dNN  nested directories, depth 1..4 below t/
//                      (10 x 5 x 3 x 2 = 510 directories)
//                      remaining files, sizes log-uniform in [0, --max-size)
//   ~1% of files are 0 bytes; ~20% of files carry one user.* xattr of
//   100..3000 bytes (random bytes, so no two xattr blocks can be shared);
//   250 symlinks (half "fast" < 60 bytes, half slow > 60 bytes);
//   200 extra hard links to existing regular files.
// A manifest (TSV: type, path, size, sha1 | link target | link source) is
// written next to the tree as <out>.manifest.tsv.
//
// Why two size ranges: a log-uniform distribution over [1 B, 1 MiB) has mean
// 1 MiB / ln(2^20) ~ 75 KB, so 20,000 such files would be ~1.5 GB, not "a few
// hundred MB". The 10,000 files in the two htree directories are therefore
// small-object files (log-uniform up to 64 KiB, mean ~6 KB), and the nested
// tree keeps the full 0..1 MiB range.
//
// ext4ts copy (bench/gen-tree.mjs) of the shared reference generator. Changes, none of which
// alter the tree for the W1 parameters (same seed and --files 20000 give the same bytes, the
// PRNG is drawn in the same order):
//   - JSDoc types, so the repo's strict type-checked lint accepts the file;
//   - --big-per-dir defaults to min(5000, floor(--files / 4)), so a shrunken run
//     (--files 2000) still has --files regular files, half of them in big0/ and big1/
//     (the original kept 10,000 there whatever --files said).

/* global console, process, Buffer */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

/** @type {Record<string, string | undefined>} */
const args = {};
{
  const argv = process.argv.slice(2);
  argv.forEach((a, i) => {
    if (a.startsWith('--')) args[a.slice(2)] = argv[i + 1];
  });
}
const OUT = path.resolve(args.out ?? '/tmp/pp-tree');
const SEED = Number(args.seed ?? 42);
const NFILES = Number(args.files ?? 20000);
const MAX = Number(args['max-size'] ?? 1048576);
const BIGMAX = Number(args['big-max-size'] ?? 65536);
const BIG_PER_DIR = Number(args['big-per-dir'] ?? Math.min(5000, Math.floor(NFILES / 4)));
const NSYM = Number(args.symlinks ?? 250);
const NHARD = Number(args.hardlinks ?? 200);
const XATTR_FRAC = Number(args['xattr-frac'] ?? 0.2);

/**
 * mulberry32: tiny, fast, deterministic
 * @param {number} seed
 * @returns {() => number}
 */
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
const R = rng(SEED);
/** @type {(lo: number, hi: number) => number} */
const randInt = (lo, hi) => lo + Math.floor(R() * (hi - lo + 1)); // inclusive
// log-uniform in [0, max): 1% zero-length, otherwise floor(max^u)
/** @type {(max: number) => number} */
const logUniform = (max) => (R() < 0.01 ? 0 : Math.min(max - 1, Math.floor(Math.exp(R() * Math.log(max)))));
/**
 * One uniformly chosen element (one randInt draw, as the original's arr[randInt(0, n - 1)]).
 * @template T
 * @param {readonly T[]} arr
 * @returns {T}
 */
const pick = (arr) => {
  const v = arr[randInt(0, arr.length - 1)];
  if (v === undefined) throw new Error('pick from an empty list');
  return v;
};

// 32 MiB pool of seeded pseudo-random bytes; file contents are slices of it.
const POOL = 32 * 1024 * 1024;
const pool = Buffer.allocUnsafe(POOL + 1048576);
{
  const r2 = rng(SEED ^ 0x9e3779b9);
  for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE(Math.floor(r2() * 4294967296) >>> 0, i);
}
/** @type {(n: number) => Buffer} */
const bytes = (n) => {
  const off = randInt(0, POOL - 1) & ~7;
  return pool.subarray(off, off + n);
};

if (fs.existsSync(OUT)) {
  console.error(`refusing to overwrite existing ${OUT}; remove it first`);
  process.exit(2);
}
fs.mkdirSync(OUT, { recursive: true });

// directories
/** @type {string[]} */
const nested = [];
const fan = [10, 5, 3, 2];
/**
 * @param {string} rel
 * @param {number} depth
 */
function mk(rel, depth) {
  if (depth === fan.length) return;
  const n = fan[depth] ?? 0;
  for (let i = 0; i < n; i++) {
    const d = path.join(rel, `d${String(i).padStart(2, '0')}`);
    fs.mkdirSync(path.join(OUT, d));
    nested.push(d);
    mk(d, depth + 1);
  }
}
fs.mkdirSync(path.join(OUT, 't'));
mk('t', 0);
fs.mkdirSync(path.join(OUT, 'big0'));
fs.mkdirSync(path.join(OUT, 'big1'));

/** @type {string[]} */
const manifest = [];
/** @type {string[]} */
const regular = [];
let total = 0;
let nx = 0;
let xattrBytes = 0;
const T0 = 1700000000; // fixed mtimes
/** @type {[string, string, Buffer][]} */
const xattrJobs = [];

/**
 * @param {string} rel
 * @param {number} size
 */
function writeFile(rel, size) {
  const data = bytes(size);
  const p = path.join(OUT, rel);
  fs.writeFileSync(p, data, { mode: 0o644 });
  const sha = crypto.createHash('sha1').update(data).digest('hex');
  let xattr = '';
  if (R() < XATTR_FRAC) {
    const vlen = randInt(100, 3000);
    const v = bytes(vlen);
    // Node has no setxattr; batch them for a helper (see below)
    xattrJobs.push([p, `user.pp${randInt(0, 9)}`, Buffer.from(v)]);
    xattr = `${vlen}`;
    nx++;
    xattrBytes += vlen;
  }
  const mt = T0 + randInt(0, 86400 * 365);
  fs.utimesSync(p, mt, mt);
  manifest.push(['f', rel, size, sha, xattr].join('\t'));
  regular.push(rel);
  total += size;
}

for (let b = 0; b < 2; b++) {
  for (let i = 0; i < BIG_PER_DIR; i++) {
    writeFile(path.join(`big${b}`, `obj_${String(i).padStart(5, '0')}_${randInt(0, 0xffffff).toString(16)}`), logUniform(BIGMAX));
  }
}
const rest = NFILES - 2 * BIG_PER_DIR;
for (let i = 0; i < rest; i++) {
  const dir = pick(nested);
  writeFile(path.join(dir, `f${i}.dat`), logUniform(MAX));
}

// symlinks
for (let i = 0; i < NSYM; i++) {
  const dir = pick(nested);
  let target;
  if (i % 2 === 0) target = `../x${i}`; // fast symlink (< 60 bytes)
  else target = '../'.repeat(randInt(0, 3)) + pick(regular) + '/' + 'y'.repeat(randInt(40, 120)); // > 60 bytes
  const rel = path.join(dir, `sym${i}`);
  fs.symlinkSync(target, path.join(OUT, rel));
  manifest.push(['l', rel, target.length, target, ''].join('\t'));
}
// hard links
for (let i = 0; i < NHARD; i++) {
  const src = pick(regular);
  const dir = pick(nested);
  const rel = path.join(dir, `hl${i}`);
  fs.linkSync(path.join(OUT, src), path.join(OUT, rel));
  manifest.push(['h', rel, 0, src, ''].join('\t'));
}

// xattrs: Node.js has no setxattr, so hand a batch to python3 (os.setxattr).
{
  const { execFileSync } = await import('node:child_process');
  const batch = path.join(path.dirname(OUT), path.basename(OUT) + '.xattrs.bin');
  /** @type {Buffer[]} */
  const parts = [];
  for (const [p, name, v] of xattrJobs) {
    const pb = Buffer.from(p), nb = Buffer.from(name);
    const h = Buffer.alloc(12);
    h.writeUInt32LE(pb.length, 0); h.writeUInt32LE(nb.length, 4); h.writeUInt32LE(v.length, 8);
    parts.push(h, pb, nb, v);
  }
  fs.writeFileSync(batch, Buffer.concat(parts));
  execFileSync('python3', ['-c', `
import os, struct, sys
d = open(sys.argv[1], 'rb').read(); i = 0
while i < len(d):
    a, b, c = struct.unpack_from('<III', d, i); i += 12
    p = d[i:i+a]; i += a; n = d[i:i+b]; i += b; v = d[i:i+c]; i += c
    st = os.stat(p)
    os.setxattr(p, n, v)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
`, batch], { stdio: 'inherit' });
  fs.unlinkSync(batch);
}
// fixed directory mtimes (deepest first)
for (const d of [...nested].reverse().concat(['t', 'big0', 'big1'])) fs.utimesSync(path.join(OUT, d), T0, T0);

fs.writeFileSync(OUT + '.manifest.tsv', manifest.join('\n') + '\n');
const summary = {
  out: OUT, seed: SEED, files: regular.length, dirs: nested.length + 3, symlinks: NSYM, hardlinks: NHARD,
  bytes: total, MB: +(total / 1e6).toFixed(1), xattrFiles: nx, xattrBytes,
};
fs.writeFileSync(OUT + '.summary.json', JSON.stringify(summary, null, 1) + '\n');
console.log(JSON.stringify(summary));
