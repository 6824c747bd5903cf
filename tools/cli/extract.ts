/**
 * `ext4ts extract IMAGE DIR`: copy the whole tree out of an image, like debugfs `rdump`,
 * but keeping what the host allows: modes, owners (as root), nanosecond-ish times
 * (Node's utimes takes doubles: ~100 ns precision), xattrs (through `setfattr --restore`,
 * one process for the whole tree), symlinks, hard links, devices and fifos (`mknod`).
 * Sockets cannot be recreated meaningfully and are skipped with a note.
 */

import { spawnSync } from "node:child_process";
import { chmodSync, closeSync, constants, ftruncateSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, promises as fsp, rmSync, symlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Volume, WalkEntry } from "../../src/node.js";
import type { Timespec } from "../../src/format/inode.js";

export interface ExtractOptions {
  /** Subtree of the image to extract (default "/"); its contents land directly in `dest`. */
  root?: string;
  /** Apply owners (default: when running as root). */
  owners?: boolean;
  /** Restore xattrs (default true; needs `setfattr`). */
  xattrs?: boolean;
  onProgress?: (files: number, bytes: number) => void;
  warn?: (msg: string) => void;
}

export interface ExtractSummary {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  special: number;
  skipped: number;
  bytes: number;
}

interface Meta {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  atime: Timespec;
  mtime: Timespec;
  isLink: boolean;
}

const CHUNK = 4 * 1024 * 1024;

export async function extract(vol: Volume, dest: string, opts: ExtractOptions = {}): Promise<ExtractSummary> {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`ext4ts: extract: ${m}\n`));
  const owners = opts.owners ?? process.getuid?.() === 0;
  const wantXattrs = opts.xattrs ?? true;
  const sum: ExtractSummary = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, special: 0, skipped: 0, bytes: 0 };
  const linked = new Map<number, string>(); // ino -> first host path, for nlink > 1
  // Directories get their mode, owner and times last, deepest first, so that creating
  // their contents cannot change them. Other entries get them as soon as their xattrs are
  // on (xattrs first: without root, a read-only mode would forbid setting them), in
  // batches of XATTR_BATCH so memory stays bounded on any tree.
  const dirMetas: Meta[] = [];
  let xattrDump: string[] = [];
  let xattrMetas: Meta[] = [];
  const flushXattrs = async (): Promise<void> => {
    if (xattrDump.length > 0) await restoreXattrs(xattrDump.join("\n"), warn);
    for (const m of xattrMetas) applyMeta(m, owners, warn);
    xattrDump = [];
    xattrMetas = [];
  };
  await fsp.mkdir(dest, { recursive: true });

  // Disk order: reads the image roughly sequentially, as debugfs rdump does.
  const root = (opts.root ?? "/").replace(/\/+$/, "");
  for await (const e of vol.walk(root === "" ? "/" : root, { order: "disk" })) {
    const rel = e.path.slice(root.length);
    const host = rel === "" || rel === "/" ? dest : join(dest, rel);
    const s = e.stats;
    if (s.type !== "dir" && s.nlink > 1) {
      const first = linked.get(s.ino);
      if (first !== undefined) {
        rmSync(host, { force: true });
        linkSync(first, host);
        sum.hardlinks++;
        continue;
      }
      linked.set(s.ino, host);
    }
    switch (s.type) {
      case "dir":
        if (host !== dest) mkdirSync(host, { mode: 0o700 });
        sum.dirs++;
        break;
      case "file":
        sum.bytes += await copyFile(vol, e, host);
        sum.files++;
        opts.onProgress?.(sum.files, sum.bytes);
        break;
      case "symlink":
        symlinkSync(await vol.readlinkEntry(e), host);
        sum.symlinks++;
        break;
      case "chr":
      case "blk":
      case "fifo": {
        const args = s.type === "fifo" ? [host, "p"] : [host, s.type === "chr" ? "c" : "b", String(s.rdevMajor), String(s.rdevMinor)];
        const r = spawnSync("mknod", args, { stdio: ["ignore", "ignore", "pipe"] });
        if (r.status !== 0) {
          warn(`cannot create ${s.type} '${e.path}': ${r.stderr.toString().trim() || r.error?.message || "mknod failed"}`);
          sum.skipped++;
          continue;
        }
        sum.special++;
        break;
      }
      case "sock":
        warn(`skipping socket '${e.path}'`);
        sum.skipped++;
        continue;
    }
    const meta: Meta = {
      path: host,
      mode: s.mode & 0o7777,
      uid: s.uid,
      gid: s.gid,
      atime: s.atime,
      mtime: s.mtime,
      isLink: s.type === "symlink",
    };
    const xs = wantXattrs ? await vol.xattrsOf(e.inode) : [];
    if (xs.length > 0) {
      xattrDump.push(`# file: ${dumpQuote(host)}`);
      // An empty value must be written as "" (setfattr rejects an empty 0s encoding).
      for (const [name, value] of xs) xattrDump.push(`${dumpQuote(name)}=${value.length === 0 ? '""' : `0s${Buffer.from(value).toString("base64")}`}`);
      xattrDump.push("");
    }
    if (s.type === "dir") dirMetas.push(meta);
    else if (xs.length > 0) xattrMetas.push(meta);
    else applyMeta(meta, owners, warn);
    if (xattrDump.length > XATTR_BATCH) await flushXattrs();
  }

  await flushXattrs();
  for (let i = dirMetas.length - 1; i >= 0; i--) applyMeta(dirMetas[i]!, owners, warn);
  return sum;
}

const XATTR_BATCH = 4096; // dump lines per setfattr run

function applyMeta(m: Meta, owners: boolean, warn: (msg: string) => void): void {
  if (owners) {
    try {
      lchownSync(m.path, m.uid, m.gid);
    } catch (err) {
      warn(`chown '${m.path}': ${String(err)}`);
    }
  }
  if (!m.isLink) chmodSync(m.path, m.mode);
  setTimes(m, warn);
}

/**
 * Node's lutimes takes seconds as a double (about 100 ns precision near 2026) and turns a
 * negative time into "now", so times before 1970 go through touch(1) instead.
 */
function setTimes(m: Meta, warn: (msg: string) => void): void {
  if (m.atime.sec >= 0 && m.mtime.sec >= 0) {
    lutimesSync(m.path, m.atime.sec + m.atime.nsec / 1e9, m.mtime.sec + m.mtime.nsec / 1e9);
    return;
  }
  for (const [flag, t] of [["-a", m.atime], ["-m", m.mtime]] as const) {
    // ext4 stores floor seconds plus non-negative nanoseconds; touch wants a signed decimal.
    const total = BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);
    const abs = total < 0n ? -total : total;
    const when = `@${total < 0n ? "-" : ""}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, "0")}`;
    const r = spawnSync("touch", ["-h", flag, "-d", when, m.path], { stdio: ["ignore", "ignore", "pipe"] });
    if (r.status !== 0) warn(`cannot set time of '${m.path}': ${r.stderr.toString().trim() || r.error?.message || "touch failed"}`);
  }
}

/** One read buffer for every file copied: extract allocates nothing per file. */
const copyBuffer = new Uint8Array(CHUNK);

async function copyFile(vol: Volume, e: WalkEntry, host: string): Promise<number> {
  const fh = vol.openEntry(e);
  // Host writes are synchronous on purpose: a CLI gains nothing from a thread-pool round
  // trip per write, and debugfs-level speed needs them cheap.
  const fd = openSync(host, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  let pos = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(copyBuffer, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      const chunk = copyBuffer.subarray(0, bytesRead);
      // Keep holes: skip all-zero chunks and set the size at the end (sparse output).
      if (!isZero(chunk)) writeAll(fd, chunk, pos);
      pos += bytesRead;
    }
    ftruncateSync(fd, pos);
  } finally {
    closeSync(fd);
    await fh.close();
  }
  return pos;
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done, position + done);
}

function isZero(b: Uint8Array): boolean {
  // Word-wise scan; chunks are block-multiples except the last.
  const words = Math.floor(b.length / 4);
  const v = new Uint32Array(b.buffer, b.byteOffset, b.byteOffset % 4 === 0 ? words : 0);
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) return false;
  for (let i = v.length * 4; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Quote a path or name for a getfattr dump as attr's quote() does: octal escapes for
 * bytes that are not printable ASCII, whitespace, backslash and "=" (setfattr unquotes).
 */
function dumpQuote(s: string): string {
  let out = "";
  for (const c of Buffer.from(s)) {
    out += c > 0x20 && c < 0x7f && c !== 0x5c && c !== 0x3d ? String.fromCharCode(c) : `\\${c.toString(8).padStart(3, "0")}`;
  }
  return out;
}

async function restoreXattrs(dump: string, warn: (m: string) => void): Promise<void> {
  const file = join(await fsp.mkdtemp(join(tmpdir(), "ext4ts-xattr-")), "dump");
  try {
    await fsp.writeFile(file, `${dump}\n`);
    const r = spawnSync("setfattr", ["-h", `--restore=${file}`], { stdio: ["ignore", "ignore", "pipe"] });
    if (r.error !== undefined) warn(`xattrs not restored: setfattr not available (${r.error.message})`);
    else if (r.status !== 0) warn(`some xattrs not restored: ${r.stderr.toString().trim()}`);
  } finally {
    await fsp.rm(join(file, ".."), { recursive: true, force: true });
  }
}
