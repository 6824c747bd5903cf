/**
 * The kernel side of the manifest oracle: the listing of a mounted (or any) directory tree in the
 * exact format `ext4ts manifest IMAGE` prints, so the two can be compared byte for byte.
 *
 * Format: one `JSON.stringify` object per line, for every inode reachable by path from the root
 * ("/" included), sorted by path in plain JS string order; every line ends in "\n". Keys, in this
 * order, absent when not applicable:
 *   path    absolute: "/", "/a/b"
 *   type    "file" | "dir" | "symlink" | "chr" | "blk" | "fifo" | "sock"
 *   mode    permission bits incl. setuid/setgid/sticky, 4 octal digits ("0755")
 *   uid, gid, nlink, size (st_size)
 *   mtime   "SECONDS.NNNNNNNNN": seconds = floor, nanoseconds = the non-negative remainder
 *           (-1.5 s prints "-2.500000000")
 *   rdev    "MAJOR:MINOR", chr and blk only
 *   target  symlinks only
 *   sha256  lowercase hex of the contents, regular files only
 *   xattrs  { full name: base64 value }, names sorted, as listxattr shows them (user.*, trusted.*,
 *           security.*, system.posix_acl_access/default in the VFS ACL format); absent when none
 *
 * This file is the independent oracle: it must not import from src/. The walk uses lstat (never
 * follows symlinks) with bigint times; xattrs come from `getfattr -h` (lgetxattr), many paths per
 * invocation.
 */
import { createHash } from "node:crypto";
import { createReadStream, lstatSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import type { BigIntStats } from "node:fs";
import path from "node:path";
import { runAsync, tool } from "./oracle_env.js";

/** Inode types as the manifest names them. */
export type ManifestType = "file" | "dir" | "symlink" | "chr" | "blk" | "fifo" | "sock";

/** One manifest line before formatting. Optional keys are omitted when undefined. */
export interface ManifestEntry {
  path: string;
  type: ManifestType;
  mode: string;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  mtime: string;
  rdev?: string | undefined;
  target?: string | undefined;
  sha256?: string | undefined;
  xattrs?: Readonly<Record<string, string>> | undefined;
}

/** Formats one entry with the exact key order; undefined keys are left out, xattr names sorted. */
export function manifestLine(e: ManifestEntry): string {
  const o: Record<string, unknown> = {
    path: e.path,
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    nlink: e.nlink,
    size: e.size,
    mtime: e.mtime,
  };
  if (e.rdev !== undefined) o.rdev = e.rdev;
  if (e.target !== undefined) o.target = e.target;
  if (e.sha256 !== undefined) o.sha256 = e.sha256;
  if (e.xattrs !== undefined) {
    const names = Object.keys(e.xattrs).sort(compareStrings);
    if (names.length > 0) {
      const x: Record<string, string> = {};
      for (const n of names) x[n] = e.xattrs[n]!;
      o.xattrs = x;
    }
  }
  return JSON.stringify(o);
}

/** Sorts entries by path (plain string order) and joins their lines, each ending in "\n". */
export function formatManifest(entries: readonly ManifestEntry[]): string {
  const sorted = [...entries].sort((a, b) => compareStrings(a.path, b.path));
  return sorted.map((e) => manifestLine(e) + "\n").join("");
}

/** Plain JS string order (UTF-16 code units), what `a < b` does. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Formats nanoseconds since the epoch as "SECONDS.NNNNNNNNN" (floor seconds, remainder >= 0). */
export function formatTimeNs(ns: bigint): string {
  let sec = ns / 1_000_000_000n;
  let rem = ns % 1_000_000_000n;
  if (rem < 0n) {
    sec -= 1n;
    rem += 1_000_000_000n;
  }
  return `${sec.toString()}.${rem.toString().padStart(9, "0")}`;
}

/** Formats permission bits (incl. setuid/setgid/sticky) as 4 octal digits. */
export function formatMode(mode: number | bigint): string {
  return (Number(mode) & 0o7777).toString(8).padStart(4, "0");
}

/** Major number of a Linux (glibc) dev_t. @kernel MAJOR / gnu_dev_major */
export function devMajor(dev: bigint): number {
  return Number(((dev & 0x00000000000fff00n) >> 8n) | ((dev & 0xfffff00000000000n) >> 32n));
}

/** Minor number of a Linux (glibc) dev_t. @kernel MINOR / gnu_dev_minor */
export function devMinor(dev: bigint): number {
  return Number((dev & 0x00000000000000ffn) | ((dev & 0x00000ffffff00000n) >> 12n));
}

const S_IFMT = 0o170000;

/** The manifest type of an st_mode. */
export function typeOfMode(mode: number): ManifestType {
  switch (mode & S_IFMT) {
    case 0o100000:
      return "file";
    case 0o040000:
      return "dir";
    case 0o120000:
      return "symlink";
    case 0o020000:
      return "chr";
    case 0o060000:
      return "blk";
    case 0o010000:
      return "fifo";
    case 0o140000:
      return "sock";
    default:
      throw new Error(`Unknown file type in mode 0o${mode.toString(8)}`);
  }
}

/** Lowercase hex SHA-256 of a file's contents; read whole when small, streamed when large. */
export async function sha256File(file: string, size?: number): Promise<string> {
  const h = createHash("sha256");
  if (size !== undefined && size <= 4 << 20) {
    h.update(readFileSync(file));
    return h.digest("hex");
  }
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

/**
 * The manifest of the tree rooted at `rootDir` (a mount point or any directory), as a string of
 * lines. Paths are relative to rootDir, which is "/".
 */
export async function kernelManifest(rootDir: string): Promise<string> {
  return formatManifest(await kernelManifestEntries(rootDir));
}

/**
 * The entries behind kernelManifest, unsorted. Metadata calls are synchronous on purpose: for
 * tens of thousands of small inodes they are several times faster than the thread-pool round trip.
 */
export async function kernelManifestEntries(rootDir: string): Promise<ManifestEntry[]> {
  const root = path.resolve(rootDir);
  const found: { rel: string; abs: string; st: BigIntStats }[] = [{ rel: "/", abs: root, st: lstatSync(root, { bigint: true }) }];
  for (let i = 0; i < found.length; i++) {
    const dir = found[i]!;
    if (!dir.st.isDirectory()) continue;
    for (const n of readdirSync(dir.abs)) {
      const abs = path.join(dir.abs, n);
      found.push({ rel: dir.rel === "/" ? `/${n}` : `${dir.rel}/${n}`, abs, st: lstatSync(abs, { bigint: true }) });
    }
  }
  const xattrs = await readXattrs(found.map((f) => f.abs));
  const entries: ManifestEntry[] = [];
  for (const f of found) entries.push(await entryOf(f.rel, f.abs, f.st, xattrs.get(f.abs)));
  return entries;
}

async function entryOf(rel: string, abs: string, st: BigIntStats, xattrs: Record<string, string> | undefined): Promise<ManifestEntry> {
  const mode = Number(st.mode);
  const type = typeOfMode(mode);
  const e: ManifestEntry = {
    path: rel,
    type,
    mode: formatMode(mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    nlink: Number(st.nlink),
    size: Number(st.size),
    mtime: formatTimeNs(st.mtimeNs),
  };
  if (type === "chr" || type === "blk") e.rdev = `${devMajor(st.rdev)}:${devMinor(st.rdev)}`;
  if (type === "symlink") e.target = readlinkSync(abs);
  if (type === "file") e.sha256 = await sha256File(abs, e.size);
  if (xattrs !== undefined && Object.keys(xattrs).length > 0) e.xattrs = xattrs;
  return e;
}

/** Names listxattr may show that the manifest leaves out (the inline-data pseudo attribute). */
const HIDDEN_XATTRS = new Set(["system.data"]);

/**
 * Extended attributes of many paths, not following symlinks: abs path -> { name: base64 }.
 * Paths without attributes are absent. Runs `getfattr -h -d -m - -e base64` on batches.
 */
export async function readXattrs(paths: readonly string[]): Promise<Map<string, Record<string, string>>> {
  const getfattr = tool("getfattr");
  const out = new Map<string, Record<string, string>>();
  const BATCH_CHARS = 96 * 1024;
  let batch: string[] = [];
  let chars = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const args = ["--absolute-names", "-h", "-d", "-m", "-", "-e", "base64", "--", ...batch];
    batch = [];
    chars = 0;
    const r = await runAsync(getfattr, args);
    for (const [p, attrs] of parseGetfattrDump(r.stdout)) {
      const prev = out.get(p);
      out.set(p, prev === undefined ? attrs : { ...prev, ...attrs });
    }
  };
  for (const p of paths) {
    if (chars + p.length > BATCH_CHARS) await flush();
    batch.push(p);
    chars += p.length + 1;
  }
  await flush();
  return out;
}

/**
 * Parses `getfattr -d -e base64` output: blocks of "# file: PATH" then "name=value" lines. Path and
 * name are quoted by getfattr (backslash, newline, CR, and "=" in names become \ooo octal); values
 * are "0s<base64>", "0x<hex>", "\"text\"", empty or missing (an empty value). Returns path ->
 * { name: base64 }, hidden names (system.data) dropped.
 */
export function parseGetfattrDump(text: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("# file: ")) {
      const p = unquoteGetfattr(line.slice("# file: ".length));
      current = out.get(p) ?? {};
      out.set(p, current);
      continue;
    }
    if (line.startsWith("#")) continue;
    if (current === undefined) throw new Error(`getfattr output: attribute line before "# file:": ${line}`);
    const eq = line.indexOf("=");
    const name = unquoteGetfattr(eq < 0 ? line : line.slice(0, eq));
    const value = eq < 0 ? "" : line.slice(eq + 1);
    if (HIDDEN_XATTRS.has(name)) continue;
    current[name] = decodeGetfattrValue(value).toString("base64");
  }
  for (const [p, attrs] of out) if (Object.keys(attrs).length === 0) out.delete(p);
  return out;
}

/** Decodes getfattr's \ooo octal escapes; the bytes are then read as UTF-8. */
export function unquoteGetfattr(s: string): string {
  if (!s.includes("\\")) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, "utf8");
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === 0x5c && i + 3 < raw.length && isOctal(raw[i + 1]) && isOctal(raw[i + 2]) && isOctal(raw[i + 3])) {
      bytes.push(((raw[i + 1]! - 0x30) << 6) | ((raw[i + 2]! - 0x30) << 3) | (raw[i + 3]! - 0x30));
      i += 3;
    } else {
      bytes.push(c);
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

function isOctal(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x37;
}

function decodeGetfattrValue(v: string): Buffer {
  if (v === "" || v === '""') return Buffer.alloc(0);
  if (v.startsWith("0s")) return Buffer.from(v.slice(2), "base64");
  if (v.startsWith("0x")) return Buffer.from(v.slice(2), "hex");
  if (v.startsWith('"') && v.endsWith('"')) return Buffer.from(unquoteGetfattr(v.slice(1, -1)), "utf8");
  throw new Error(`getfattr output: cannot decode value ${JSON.stringify(v)}`);
}
