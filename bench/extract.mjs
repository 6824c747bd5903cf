#!/usr/bin/env node
// W3 "extract every file" benchmark: ext4ts against debugfs and the kernel, in one run.
//
//   node bench/extract.mjs [--files 20000] [--seed 42] [--runs 3] [--keep]
//                          [--work DIR] [--tree DIR] [--cli bin/ext4ts.js]
//
// 1. Generate the W1 tree with bench/gen-tree.mjs (defaults: W1, 20,000 files, seed 42;
//    --files shrinks it for quick runs), or reuse --tree DIR.
// 2. mke2fs -q -F -t ext4 -T default -d TREE img SIZE, SIZE = max(64 MiB, 2.5 x file bytes).
// 3. Check each tool's output once against the source tree (sizes, sha256, symlink targets,
//    modes; xattrs, hard links, mtimes and owners are reported, not required). A wrong
//    ext4ts output is reported loudly, its times are not counted, and the exit status is 1.
// 4. Time, per run, with the tool order rotated each run, cold (sync + drop_caches before
//    every step, when root) and warm (image already in the page cache):
//      ext4ts   node bin/ext4ts.js extract IMG OUT
//      debugfs  debugfs -R "rdump / OUT" IMG
//      kernel   mount -o ro,loop IMG MNT; tar cf - . | cat > /dev/null; umount MNT
// 5. Print medians, MB/s and the ratios ext4ts/debugfs and ext4ts/kernel as Markdown on
//    stdout (progress goes to stderr).

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
    cli: { type: 'string', default: path.join(REPO, 'bin/ext4ts.js') },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  console.log('usage: node bench/extract.mjs [--files N] [--seed 42] [--runs 3] [--keep] [--work DIR] [--tree DIR] [--cli PATH]');
  process.exit(0);
}
const FILES = Number(opt.files);
const SEED = Number(opt.seed);
const RUNS = Math.max(1, Number(opt.runs));
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
 * @property {number} mtime seconds
 * @property {number} ino
 * @property {number} nlink
 * @property {string} [sha256]
 * @property {string} [target]
 */


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
      const st = await fs.promises.lstat(abs);
      /** @type {Entry} */
      const e = {
        type: st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'o',
        mode: st.mode & 0o7777, size: st.size, uid: st.uid, gid: st.gid,
        mtime: Math.floor(st.mtimeMs / 1000), ino: st.ino, nlink: st.nlink,
      };
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
 * @property {string} mtimes
 * @property {string} owners
 */

/** @param {number} a @param {number} b */
const frac = (a, b) => (a === b ? `all ${b}` : `${a}/${b}`);

/**
 * Compare an extracted (or mounted) tree with the source tree.
 * @param {Map<string, Entry>} src
 * @param {Map<string, Map<string, string>> | undefined} srcX
 * @param {string} root
 * @returns {Promise<Fidelity>}
 */
async function compare(src, srcX, root) {
  const got = await walk(root);
  /** @type {string[]} */
  const errors = [];
  let filesMt = 0, filesMtOk = 0, owners = 0, ownersOk = 0;
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
      filesMt++;
      if (g.mtime === s.mtime) filesMtOk++;
    }
    if (s.type === 'l' && g.target !== s.target) errors.push(`symlink: ${p}: -> ${String(g.target)}, want -> ${String(s.target)}`);
    owners++;
    if (g.uid === s.uid && g.gid === s.gid) ownersOk++;
  }
  for (const p of got.keys()) {
    if (!src.has(p) && p !== 'lost+found' && !p.startsWith('lost+found/')) errors.push(`extra: ${p}`);
  }
  // hard links: every source group of paths sharing an inode should share one in the output
  /** @type {Map<number, string[]>} */
  const groups = new Map();
  for (const [p, s] of src) if (s.type === 'f' && s.nlink > 1) groups.set(s.ino, [...(groups.get(s.ino) ?? []), p]);
  let linked = 0;
  for (const paths of groups.values()) {
    const inos = new Set(paths.map((p) => got.get(p)?.ino));
    if (inos.size === 1 && !inos.has(undefined)) linked++;
  }
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
  return {
    errors, xattrs, hardlinks: `${frac(linked, groups.size)} groups`,
    mtimes: `files ${frac(filesMtOk, filesMt)}`, owners: frac(ownersOk, owners),
  };
}

// ---------------------------------------------------------------------------------------------
// statistics and formatting


// ---------------------------------------------------------------------------------------------
// main

/**
 * @typedef {object} Tool
 * @property {'ext4ts' | 'debugfs' | 'kernel'} id
 * @property {string} label
 * @property {(out: string) => Promise<RunResult>} exec
 * @property {boolean} extracts writes into an output directory
 * @property {number[]} cold
 * @property {number[]} warm
 * @property {number[]} rss
 * @property {string | undefined} broken why its times do not count
 * @property {Fidelity | undefined} fidelity
 */

const work = opt.work !== undefined ? path.resolve(opt.work) : fs.mkdtempSync(path.join(os.tmpdir(), 'ext4ts-bench-'));
fs.mkdirSync(work, { recursive: true });
const tree = opt.tree !== undefined ? path.resolve(opt.tree) : path.join(work, 'tree');
const img = path.join(work, 'w1.img');
const out = path.join(work, 'out');
const mnt = path.join(work, 'mnt');
let mounted = false;

function cleanup() {
  if (mounted) spawnSync('umount', [mnt], { stdio: 'ignore' });
  mounted = false;
  if (opt.keep) {
    log(`kept ${work}`);
    return;
  }
  fs.rmSync(out, { recursive: true, force: true });
  fs.rmSync(mnt, { recursive: true, force: true });
  fs.rmSync(img, { force: true });
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
  const debugfs = findTool('debugfs');
  const e2fsck = findTool('e2fsck');
  if (mke2fs === undefined) fatal('mke2fs not found (apt install e2fsprogs)');

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

  // 2. image
  const MiB = 1024 * 1024;
  const sizeMiB = Math.max(64, Math.ceil((2.5 * bytes) / MiB));
  log(`mke2fs: ${(bytes / 1e6).toFixed(1)} MB of file data -> ${sizeMiB} MiB image`);
  fs.rmSync(img, { force: true });
  const mk = await run(mke2fs, ['-q', '-F', '-t', 'ext4', '-T', 'default', '-d', tree, img, `${sizeMiB}M`]);
  if (failed(mk)) fatal(`mke2fs failed (${exitText(mk)}):\n    ${firstLines(mk.stderr)}`);
  let fsckNote = 'e2fsck not found';
  if (e2fsck !== undefined) {
    const fk = await run(e2fsck, ['-fn', img]);
    fsckNote = failed(fk) ? `e2fsck -fn: ${exitText(fk)} (image NOT clean)` : 'e2fsck -fn clean';
  }
  log(fsckNote);

  // 3. what this machine allows
  const dropWhy = dropCaches();
  const cold = dropWhy === undefined;
  log(cold ? 'page cache can be dropped: timing cold and warm' : `cannot drop the page cache (${dropWhy}): warm only`);
  fs.mkdirSync(mnt, { recursive: true });
  let kernelWhy;
  const probe = await run('mount', ['-o', 'ro,loop', img, mnt]);
  if (failed(probe)) kernelWhy = `loop mount failed: ${brief(probe.stderr)}`;
  else await run('umount', [mnt]);

  /** @type {Tool[]} */
  const tools = [
    {
      id: 'ext4ts', label: '`ext4ts extract`', extracts: true, cold: [], warm: [], rss: [], broken: undefined, fidelity: undefined,
      exec: (o) => run(process.execPath, [CLI, 'extract', img, o], { rss: true }),
    },
    {
      id: 'debugfs', label: '`debugfs -R "rdump / OUT"`', extracts: true, cold: [], warm: [], rss: [],
      broken: debugfs === undefined ? 'debugfs not found' : undefined, fidelity: undefined,
      exec: (o) => run(debugfs ?? 'debugfs', ['-R', `rdump / ${o}`, img], { rss: true }),
    },
    {
      id: 'kernel', label: 'kernel ro loop mount + `tar cf - . \\| cat >/dev/null`', extracts: false, cold: [], warm: [], rss: [],
      broken: kernelWhy, fidelity: undefined,
      exec: () => run('bash', ['-c', 'set -o pipefail; mount -o ro,loop "$1" "$2" || exit 99; (cd "$2" && tar cf - . | cat > /dev/null); rc=$?; umount "$2" || exit 98; exit $rc', 'bash', img, mnt]),
    },
  ];

  // 4. correctness, once per tool, before any timing counts
  for (const t of tools) {
    if (t.broken !== undefined) continue;
    fs.rmSync(out, { recursive: true, force: true });
    fs.mkdirSync(out);
    log(`checking ${t.id} output against the source tree`);
    let root = out;
    let r;
    if (t.extracts) r = await t.exec(out);
    else {
      r = await run('mount', ['-o', 'ro,loop', img, mnt]);
      mounted = !failed(r);
      root = mnt;
    }
    if (failed(r)) {
      t.broken = `${t.id} ${t.id === 'ext4ts' ? 'extract' : 'run'} failed (${exitText(r)}): ${brief(r.stderr)}`;
      log(`${t.broken}\n    ${firstLines(r.stderr)}`);
      continue;
    }
    try {
      t.fidelity = await compare(src, srcX, root);
    } finally {
      if (mounted) {
        await run('umount', [mnt]);
        mounted = false;
      }
    }
    const errs = t.fidelity.errors;
    if (errs.length > 0) {
      t.broken = `WRONG OUTPUT: ${errs.length} mismatches`;
      const banner = '!'.repeat(78);
      console.error(`${banner}\n!!! ${t.id}: OUTPUT DOES NOT MATCH THE SOURCE TREE (${errs.length} mismatches); its times are not counted\n${banner}`);
      for (const e of errs.slice(0, 25)) console.error(`    ${e}`);
      if (errs.length > 25) console.error(`    ... and ${errs.length - 25} more`);
    }
  }
  fs.rmSync(out, { recursive: true, force: true });

  // 5. timing
  const active = tools.filter((t) => t.broken === undefined);
  const modes = cold ? /** @type {const} */ (['cold', 'warm']) : /** @type {const} */ (['warm']);
  for (let runNo = 0; runNo < RUNS; runNo++) {
    const order = active.map((_, i) => active[(i + runNo) % active.length]).filter((t) => t !== undefined);
    for (const mode of modes) {
      if (mode === 'warm') {
        // pull the whole image into the page cache, untimed
        spawnSync('cat', [img], { stdio: 'ignore' });
      }
      for (const t of order) {
        if (t.broken !== undefined) continue;
        fs.rmSync(out, { recursive: true, force: true });
        fs.mkdirSync(out);
        if (mode === 'cold') dropCaches();
        else spawnSync('sync');
        const r = await t.exec(out);
        if (failed(r)) {
          t.broken = `${t.id} failed during timing (${exitText(r)}): ${brief(r.stderr)}`;
          log(`${t.broken}\n    ${firstLines(r.stderr)}`);
          continue;
        }
        t[mode].push(r.ms);
        if (r.rssKb !== undefined) t.rss.push(r.rssKb);
        log(`run ${runNo + 1}/${RUNS} ${mode} ${t.id}: ${secs(r.ms)} s${r.rssKb !== undefined ? `, ${(r.rssKb / 1024).toFixed(0)} MB RSS` : ''}`);
      }
    }
  }
  fs.rmSync(out, { recursive: true, force: true });

  // 6. report
  const byId = (/** @type {Tool['id']} */ id) => tools.find((t) => t.id === id);
  const med = (/** @type {Tool | undefined} */ t, /** @type {'cold' | 'warm'} */ m) =>
    t === undefined || t.broken !== undefined ? NaN : median(t[m]);
  const unameR = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim();
  const e2v = (spawnSync(debugfs ?? 'debugfs', ['-V'], { encoding: 'utf8' }).stderr.split('\n')[0] ?? '').trim();
  const lines = [
    `## W3 extract: ext4ts vs peers`,
    '',
    `Tree: ${nFiles} regular files (${(bytes / 1e6).toFixed(1)} MB), seed ${SEED}${opt.tree !== undefined ? `, from ${tree}` : ''}; ` +
      `image ${sizeMiB} MiB (mke2fs -t ext4 -T default -d), ${fsckNote}. ` +
      `${RUNS} run(s), order rotated each run; cold = ${cold ? 'sync + drop_caches before every step' : `not measured (${dropWhy})`}. ` +
      `Node ${process.version}, kernel ${unameR}, ${e2v}, ${os.cpus().length} CPUs.`,
    '',
    '| tool | cold median (s) | cold MB/s | warm median (s) | warm MB/s | peak RSS | runs (cold/warm) | notes |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const t of tools) {
    const c = med(t, 'cold');
    const w = med(t, 'warm');
    const rss = t.id === 'kernel' ? '-' : t.rss.length > 0 ? `${(Math.max(...t.rss) / 1024).toFixed(0)} MB` : TIME_BIN === undefined ? 'n/a (no /usr/bin/time)' : 'n/a';
    const note = t.broken ?? (t.id === 'kernel' ? 'mount to umount; reads data, writes nothing' : 'writes into OUT on the work disk');
    lines.push(`| ${t.label} | ${secs(c)} | ${mbps(bytes, c)} | ${secs(w)} | ${mbps(bytes, w)} | ${rss} | ${t.cold.length}/${t.warm.length} | ${note} |`);
  }
  const e = byId('ext4ts');
  lines.push('', '| ratio (lower is better for ext4ts) | cold | warm |', '|---|---|---|');
  for (const peer of /** @type {const} */ (['debugfs', 'kernel'])) {
    const p = byId(peer);
    lines.push(`| ext4ts / ${peer} | ${ratio(med(e, 'cold'), med(p, 'cold'))} | ${ratio(med(e, 'warm'), med(p, 'warm'))} |`);
  }
  lines.push('', '| output check | data, modes, symlinks | user xattrs | hard links | mtimes | owners |', '|---|---|---|---|---|---|');
  for (const t of tools) {
    const f = t.fidelity;
    if (f === undefined) lines.push(`| ${t.id} | not checked: ${t.broken ?? '?'} | | | | |`);
    else lines.push(`| ${t.id} | ${f.errors.length === 0 ? 'ok' : `**WRONG: ${f.errors.length} mismatches**`} | ${f.xattrs} | ${f.hardlinks} | ${f.mtimes} | ${f.owners} |`);
  }
  lines.push('', 'Raw times (s):');
  for (const t of tools) {
    if (t.cold.length + t.warm.length > 0) lines.push(`- ${t.id}: cold ${t.cold.map(secs).join(', ') || '-'}; warm ${t.warm.map(secs).join(', ') || '-'}`);
  }
  console.log(lines.join('\n'));

  const ext = tools[0];
  let status = 0;
  if (ext !== undefined && ext.broken !== undefined) {
    console.error(ext.fidelity !== undefined && ext.fidelity.errors.length > 0
      ? `bench: ext4ts extract produced WRONG OUTPUT (${ext.fidelity.errors.length} mismatches); see above`
      : `bench: ${ext.broken}`);
    status = 1;
  }
  cleanup();
  process.exit(status);
}

main().catch((/** @type {unknown} */ err) => fatal(`unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
