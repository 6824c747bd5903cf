/**
 * Deterministic source trees for `mke2fs -d` (and for the kernel populations in images.ts).
 *
 * `makeTree(dir, { seed, files, ... })` builds the same tree for the same options on every run:
 * all choices come from a seeded PRNG (no Math.random). What a tree can hold:
 *   - nested directories (depth up to 8) with varied, sometimes odd names (spaces, "=", "\\",
 *     newline, UTF-8, 255 bytes);
 *   - regular files of sizes 0..maxSize: tiny (< 60 bytes), exactly N blocks, block +/- 1,
 *     log-uniform medium and large sizes, random or all-zero content;
 *   - sparse files (withSparse): holes at start, middle and end, an all-hole file;
 *   - fast (< 60 bytes) and slow symlinks, relative, absolute and dangling (withSymlinks);
 *   - hard links across directories (withHardlinks);
 *   - fifos, sockets, character and block devices (withSpecial; devices need root);
 *   - modes incl. setuid/setgid/sticky, uids/gids incl. > 65535 (chown needs root);
 *   - user.* xattrs of varied sizes, trusted.* and security.* (root), POSIX ACLs (withXattrs);
 *   - mtimes with nanoseconds, negative, and past 2038 (nsTimes), else whole seconds.
 * Times are set last, children before parents, so later steps don't disturb them.
 */
import { linkSync, lchownSync, chmodSync, closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { isRoot, run, tool } from "./oracle_env.js";

/** Seeded PRNG (xoshiro128**, seeded with splitmix32). Deterministic across runs and platforms. */
export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  constructor(seed: number) {
    let x = seed >>> 0;
    const split = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s0 = split();
    this.#s1 = split();
    this.#s2 = split();
    this.#s3 = split();
  }

  /** Next 32-bit unsigned integer. */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("Rng.pick: empty list");
    return items[this.int(items.length)]!;
  }

  /** n random bytes. */
  bytes(n: number): Uint8Array {
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < words.length; i++) words[i] = this.u32();
    return new Uint8Array(words.buffer, 0, n);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** What makeTree builds. Defaults: maxSize 1 MiB, blockSize 4096, every with* false. */
export interface TreeOptions {
  readonly seed: number;
  /** Regular files (hard links and special files come on top). */
  readonly files: number;
  /** Largest regular file; default 1 MiB. Sizes are mostly small (mean about 2% of this plus ~10 KiB). */
  readonly maxSize?: number;
  /** Directories besides the root; default about files / 8. */
  readonly dirs?: number;
  /** Block size of the target filesystem: picks exactly-block-sized files, symlink and xattr limits. */
  readonly blockSize?: 1024 | 2048 | 4096;
  readonly withXattrs?: boolean;
  readonly withSymlinks?: boolean;
  readonly withHardlinks?: boolean;
  readonly withSpecial?: boolean;
  readonly withSparse?: boolean;
  /** Nanosecond, negative and post-2038 mtimes; otherwise whole seconds in 2001..2021. */
  readonly nsTimes?: boolean;
}

/** Counts of what a tree holds. */
export interface TreeSummary {
  readonly root: string;
  readonly dirs: number;
  readonly files: number;
  readonly bytes: number;
  readonly symlinks: number;
  readonly hardlinks: number;
  readonly special: number;
}

/** Odd names every tree gets (in /names), to exercise quoting in every tool. */
export const ODD_NAMES: readonly string[] = [
  "with space",
  "new\nline",
  "back\\slash",
  "eq=sign",
  "tab\there",
  "#hash",
  "-dash",
  "ünïcødé",
  "日本語のファイル",
  "emoji-😀",
  "n".repeat(255),
  "é".repeat(127), // 254 bytes
];

const FILE_MODES = [0o644, 0o644, 0o600, 0o755, 0o444, 0o000, 0o4755, 0o2755, 0o6755, 0o640, 0o1755, 0o517, 0o7777];
const DIR_MODES = [0o755, 0o755, 0o700, 0o1777, 0o2775, 0o555, 0o3770];
const IDS = [0, 0, 1, 1000, 1000, 65534, 65535, 65536, 100000, 4294967294];

/** Builds a tree in `dir` (created if missing; must be empty). Needs root for chown and devices. */
export async function makeTree(dir: string, opts: TreeOptions): Promise<TreeSummary> {
  const rng = new Rng(opts.seed);
  const maxSize = opts.maxSize ?? 1 << 20;
  const bs = opts.blockSize ?? 4096;
  const root = isRoot();
  if (opts.withSpecial === true && !root) throw new Error("makeTree: withSpecial needs root (mknod)");
  mkdirSync(dir, { recursive: true });

  const dirs: string[] = [""]; // relative, "" = root
  const depth = new Map<string, number>([["", 0]]);
  const fileList: string[] = [];
  const allPaths: string[] = [];
  let seq = 0;
  const abs = (rel: string): string => path.join(dir, rel);
  const uniqueName = (): string => {
    const id = (seq++).toString(36);
    const len = rng.chance(0.05) ? rng.range(100, 250) : rng.range(1, 24);
    let stem = "";
    const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,+@ ";
    for (let i = 0; i < len; i++) stem += alphabet.charAt(rng.int(alphabet.length));
    if (rng.chance(0.03)) stem = rng.pick(["ü", "日本", "Ω", "ß", "😀"]) + stem;
    const name = `${stem}~${id}`;
    const bytes = Buffer.from(name, "utf8");
    return bytes.length <= 255 ? name : `x~${id}`;
  };

  // Directories.
  const nDirs = opts.dirs ?? Math.max(1, Math.floor(opts.files / 8));
  for (let i = 0; i < nDirs; i++) {
    let parent = rng.pick(dirs);
    if ((depth.get(parent) ?? 0) >= 8) parent = "";
    const rel = path.join(parent, uniqueName());
    mkdirSync(abs(rel));
    dirs.push(rel);
    depth.set(rel, (depth.get(parent) ?? 0) + 1);
    allPaths.push(rel);
  }
  mkdirSync(abs("names"));
  dirs.push("names");
  depth.set("names", 1);
  allPaths.push("names");

  // Regular files.
  let bytes = 0;
  const writeFile = (rel: string, data: Uint8Array): void => {
    writeFileSync(abs(rel), data);
    fileList.push(rel);
    allPaths.push(rel);
    bytes += data.length;
  };
  for (const n of ODD_NAMES) writeFile(path.join("names", n), new TextEncoder().encode(`${n}\n`));
  for (let i = 0; i < opts.files; i++) {
    const size = i === 0 ? maxSize : pickSize(rng, maxSize, bs);
    const data = rng.chance(0.05) ? new Uint8Array(size) : rng.bytes(size);
    writeFile(path.join(rng.pick(dirs), uniqueName()), data);
  }

  // Sparse files.
  let sparse = 0;
  if (opts.withSparse === true) {
    const mk = (name: string, size: number, pieces: readonly [number, number][]): void => {
      const rel = path.join(rng.pick(dirs), name);
      const fd = openSync(abs(rel), "w");
      try {
        for (const [off, len] of pieces) writeSync(fd, rng.bytes(len), 0, len, off);
        ftruncateSync(fd, size);
      } finally {
        closeSync(fd);
      }
      fileList.push(rel);
      allPaths.push(rel);
      sparse++;
    };
    const big = Math.max(maxSize, 64 * bs);
    mk(`sparse-start~${seq++}`, big, [[big - bs - 100, bs + 100]]);
    mk(`sparse-middle~${seq++}`, big, [[0, bs], [big - bs, bs]]);
    mk(`sparse-end~${seq++}`, big * 2, [[0, 3 * bs + 7]]);
    mk(`sparse-all~${seq++}`, big, []);
    mk(`sparse-many~${seq++}`, 40 * bs, Array.from({ length: 10 }, (_, k): [number, number] => [k * 4 * bs + rng.int(bs), rng.range(1, 2 * bs)]));
  }

  // Hard links.
  let hardlinks = 0;
  if (opts.withHardlinks === true && fileList.length > 0) {
    const n = Math.max(2, Math.floor(opts.files / 20));
    const linkable = fileList.slice(0, opts.files + ODD_NAMES.length);
    for (let i = 0; i < n; i++) {
      const target = rng.pick(linkable);
      const rel = path.join(rng.pick(dirs), uniqueName());
      linkSync(abs(target), abs(rel));
      allPaths.push(rel);
      hardlinks++;
    }
  }

  // Symlinks.
  let symlinks = 0;
  const symlinkSet = new Set<string>();
  if (opts.withSymlinks === true) {
    const maxTarget = Math.min(bs - 1, 4095);
    const lengths = [1, 10, 58, 59, 60, 61, 100, 500, maxTarget];
    const n = Math.max(lengths.length, Math.floor(opts.files / 10));
    for (let i = 0; i < n; i++) {
      const parent = rng.pick(dirs);
      let target: string;
      if (i < lengths.length) target = filler(rng, lengths[i]!);
      else if (rng.chance(0.5) && fileList.length > 0) target = path.relative(abs(parent), abs(rng.pick(fileList)));
      else if (rng.chance(0.5)) target = `/${rng.pick(["etc/passwd", "nonexistent", "dev/null"])}`;
      else target = filler(rng, rng.range(1, 300));
      if (target === "") target = ".";
      const rel = path.join(parent, uniqueName());
      symlinkSync(target, abs(rel));
      allPaths.push(rel);
      symlinkSet.add(rel);
      symlinks++;
    }
  }

  // Special files.
  let special = 0;
  if (opts.withSpecial === true) {
    const fifos: string[] = [];
    for (let i = 0; i < 3; i++) fifos.push(path.join(rng.pick(dirs), `fifo~${seq++}`));
    run(tool("mkfifo"), ["--", ...fifos.map(abs)]);
    const devs: [string, "c" | "b", number, number][] = [
      [`null~${seq++}`, "c", 1, 3],
      [`loop~${seq++}`, "b", 7, 0],
      [`bigdev~${seq++}`, "c", 300, 70000], // needs the "new" dev_t encoding on disk
      [`zero-dev~${seq++}`, "b", 0, 0],
    ];
    const devPaths: string[] = [];
    for (const [name, kind, major, minor] of devs) {
      const rel = path.join(rng.pick(dirs), name);
      run(tool("mknod"), [abs(rel), kind, String(major), String(minor)]);
      devPaths.push(rel);
    }
    const sockRel = path.join(rng.pick(dirs), `sock~${seq++}`);
    await makeSocket(abs(sockRel));
    allPaths.push(...fifos, ...devPaths, sockRel);
    special = fifos.length + devPaths.length + 1;
  }

  // Owners and modes (chown first: it clears setuid/setgid).
  if (root) {
    for (const rel of allPaths) lchownSync(abs(rel), rng.pick(IDS), rng.pick(IDS));
  }
  for (const rel of allPaths) {
    if (symlinkSet.has(rel)) continue;
    chmodSync(abs(rel), depth.has(rel) ? rng.pick(DIR_MODES) : rng.pick(FILE_MODES));
  }

  // Extended attributes and ACLs.
  if (opts.withXattrs === true) applyXattrs(rng, dir, fileList, dirs, bs, root);

  // Times, children before parents.
  const all = [...allPaths, ""];
  const times = timePool(rng, opts.nsTimes === true);
  const byTime = new Map<string, string[]>();
  const dirsDeepFirst = new Set(dirs);
  for (const rel of all) {
    if (dirsDeepFirst.has(rel)) continue;
    addTo(byTime, rng.pick(times), abs(rel));
  }
  touchGroups(byTime);
  const sortedDirs = [...dirs].sort((a, b) => (depth.get(b) ?? 0) - (depth.get(a) ?? 0));
  let level = -1;
  let group = new Map<string, string[]>();
  for (const rel of sortedDirs) {
    const d = depth.get(rel) ?? 0;
    if (d !== level) {
      touchGroups(group);
      group = new Map();
      level = d;
    }
    addTo(group, rng.pick(times), abs(rel));
  }
  touchGroups(group);

  return { root: dir, dirs: dirs.length - 1, files: fileList.length - sparse, bytes, symlinks, hardlinks, special };
}

/** File sizes: mostly small, some exactly block-sized, a few large. */
function pickSize(rng: Rng, maxSize: number, bs: number): number {
  const r = rng.u32() / 0x1_0000_0000;
  let size: number;
  if (r < 0.08) size = 0;
  else if (r < 0.2) size = rng.range(1, 59);
  else if (r < 0.5) size = rng.range(60, 4095);
  else if (r < 0.65) size = bs * rng.range(1, 16) + rng.pick([0, 0, 0, -1, 1]);
  else if (r < 0.95) size = Math.floor(4096 * Math.pow(16, rng.u32() / 0x1_0000_0000)); // 4 KiB .. 64 KiB
  else size = Math.floor(65536 * Math.pow(Math.max(1, maxSize / 65536), rng.u32() / 0x1_0000_0000));
  return Math.max(0, Math.min(size, maxSize));
}

/** A printable string of exactly n bytes that looks like a path. */
function filler(rng: Rng, n: number): string {
  let s = "";
  while (s.length < n) s += rng.chance(0.15) ? "/" : "abcdefghijklmnopqrstuvwxyz0123456789._-".charAt(rng.int(39));
  return s;
}

/** A pool of mtimes as "SEC.NSEC" strings for `touch -d @...`. */
function timePool(rng: Rng, ns: boolean): string[] {
  if (!ns) return Array.from({ length: 16 }, () => `${rng.range(978_307_200, 1_609_459_200)}.000000000`);
  const fixed = ["-1.500000000", "0.000000000", "0.000000001", "-2000000000.999999999", "2147483647.999999999", "2147483648.000000000", "4102444800.123456789", "1234567890.123456789"];
  const random = Array.from({ length: 24 }, () => `${rng.range(0, 1_800_000_000)}.${String(rng.int(1_000_000_000)).padStart(9, "0")}`);
  return [...fixed, ...random];
}

/** Appends value to the list under key. */
export function addTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

/** Sets atime and mtime of each group of paths with `touch -h -d @SEC.NSEC` (no following, no create). */
export function touchGroups(groups: ReadonlyMap<string, readonly string[]>): void {
  for (const [t, paths] of groups) {
    for (let i = 0; i < paths.length; i += 2000) run(tool("touch"), ["-h", "-d", `@${t}`, "--", ...paths.slice(i, i + 2000)]);
  }
}

/** Quotes a path or xattr name the way getfattr does (\ooo octal), for `setfattr --restore`. */
function quoteForRestore(s: string, extra: string): string {
  const out: number[] = [];
  for (const b of Buffer.from(s, "utf8")) {
    if (b === 0x5c || b === 0x0a || b === 0x0d || extra.includes(String.fromCharCode(b))) {
      for (const c of `\\${b.toString(8).padStart(3, "0")}`) out.push(c.charCodeAt(0));
    } else {
      out.push(b);
    }
  }
  return Buffer.from(out).toString("utf8");
}

/** Writes xattrs with one `setfattr --restore` run and a few ACLs with setfacl. */
function applyXattrs(rng: Rng, dir: string, files: readonly string[], dirs: readonly string[], bs: number, root: boolean): void {
  const budget = bs <= 1024 ? 600 : bs <= 2048 ? 1400 : 3000;
  const sizes = [0, 1, 7, 32, 100, 255, 500, 1000, 2000];
  let dump = "";
  const targets = [...files.filter(() => rng.chance(0.3)), ...dirs.filter(() => rng.chance(0.2))];
  const names = ["user.a", "user.comment", "user.mime_type", "user.with space", "user.eq=sign", "user.ünï", `user.${"l".repeat(100)}`];
  for (const rel of targets) {
    let used = 0;
    const lines: string[] = [];
    const n = rng.range(1, 4);
    const chosen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const name = rng.chance(0.5) ? rng.pick(names) : `user.k${rng.int(50)}`;
      if (chosen.has(name)) continue;
      const size = rng.pick(sizes);
      if (used + size + name.length + 20 > budget) continue;
      chosen.add(name);
      used += size + name.length + 20;
      lines.push(`${quoteForRestore(name, "=")}=0s${Buffer.from(rng.bytes(size)).toString("base64")}`);
    }
    if (root && rng.chance(0.2)) lines.push(`trusted.t${rng.int(3)}=0s${Buffer.from(rng.bytes(rng.range(1, 40))).toString("base64")}`);
    if (root && rng.chance(0.1)) lines.push(`security.s${rng.int(3)}=0s${Buffer.from(rng.bytes(rng.range(1, 40))).toString("base64")}`);
    if (lines.length === 0) continue;
    dump += `# file: ${quoteForRestore(path.join(dir, rel), "")}\n${lines.join("\n")}\n\n`;
  }
  if (dump !== "") run(tool("setfattr"), ["--restore=-"], { input: dump });

  // POSIX ACLs: a few access ACLs on files, an access + default ACL on a directory.
  const aclFiles = files.filter(() => rng.chance(0.05)).slice(0, 20);
  if (aclFiles.length > 0) run(tool("setfacl"), ["-m", "u:1000:rw,g:100:r,u:65536:r", "--", ...aclFiles.map((f) => path.join(dir, f))]);
  const aclDirs = dirs.filter((d) => d !== "").slice(0, 2);
  if (aclDirs.length > 0) {
    run(tool("setfacl"), ["-m", "u:1000:rwx,g:100:rx", "--", ...aclDirs.map((d) => path.join(dir, d))]);
    run(tool("setfacl"), ["-d", "-m", "u:1000:rx,g:100:r,o::-", "--", ...aclDirs.map((d) => path.join(dir, d))]);
  }
}

/**
 * Creates a Unix socket file at `file` that stays after the server closes: Node (libuv) unlinks a
 * listening socket's path on close, so bind elsewhere on the same filesystem and rename.
 */
export async function makeSocket(file: string): Promise<void> {
  const shortDir = mkdtempSync(path.join(path.dirname(file).length < 80 ? path.dirname(file) : tmpdir(), ".s"));
  const bound = path.join(shortDir, "s");
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(bound, () => {
      resolve();
    });
  });
  try {
    renameSync(bound, file);
  } finally {
    await new Promise<void>((resolve) => server.close(() => {
      resolve();
    }));
    rmSync(shortDir, { recursive: true, force: true });
  }
}
