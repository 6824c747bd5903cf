/**
 * Host -> image copying, shared by `ext4ts cp` (into an image) and `ext4ts mkfs -d`: one
 * implementation on the public Volume API (mkdir, open/write, symlink, mknod, link,
 * lchown, chmod, lutimes, lsetxattr).
 *
 * It streams. The host tree is walked depth first, one directory listing at a time,
 * each sorted by the bytes of its names (so the same tree always gives the same image:
 * mke2fs -d sorts too, with alphasort, which is byte order in the C locale). Memory holds
 * the listings of the directories on the current path, the hard-link map (only inodes with
 * nlink > 1 whose links are not all copied yet), one data buffer, and one batch of pending
 * xattrs; never the whole tree.
 *
 * In archive mode (cp -a, mkfs -d) an entry gets, after its contents: owner (lchown), mode
 * (chmod, when creation and chown did not already leave it right), xattrs, then atime and
 * mtime with nanoseconds (lutimes), in that order because chown clears setuid/setgid and
 * every change but utimes moves ctime only. ctime itself is the volume's clock (the
 * kernel's cp -a cannot set it either; mke2fs -d copies st_ctime).
 *
 * Xattrs (incl. POSIX ACLs, which getfattr shows in the VFS format the Volume API takes)
 * come from the attr package's `getfattr -h -d -m - -e base64`, run on batches of paths as
 * they are created, one process per batch and the next batch's process running while the
 * previous batch is applied. A directory's batch entry is queued after its contents, so a
 * default ACL is set only once everything under it exists. Names are applied in byte order
 * (the host's listxattr order does not leak into the image).
 */

import { spawn } from "node:child_process";
import { closeSync, constants, promises as fsp, lstatSync, openSync, readSync, readdirSync, readlinkSync, realpathSync, type BigIntStats } from "node:fs";
import { join } from "node:path";
import { FsError, type Volume } from "../../src/node.js";
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, type Timespec } from "../../src/format/inode.js";
import { CommandFailure } from "./errors.js";

/** What has been copied so far. */
export interface CopyCounts {
  /** Regular files (each inode once). */
  files: number;
  dirs: number;
  symlinks: number;
  /** Devices, fifos and sockets. */
  special: number;
  /** Extra names of inodes already copied. */
  hardlinks: number;
  /** Bytes of regular-file contents read from the host (holes included). */
  bytes: number;
  /** Extended attributes set. */
  xattrs: number;
  /** Host entries left out (with a warning). */
  skipped: number;
}

export interface CopyInOptions {
  /** Copy directories (cp -r). */
  recursive: boolean;
  /** Keep owners, modes, times, symlinks, special files, hard links and xattrs (cp -a, mkfs -d). */
  archive: boolean;
  /** Copy xattrs and ACLs (default: with archive). Needs `getfattr`. */
  xattrs?: boolean;
  /** The Volume's umask (0o022 unless it was opened with another): decides when chmod is needed. */
  umask?: number;
  /** Host read size; default 1 MiB. Non-zero runs are written whole, so the allocator sees long requests. */
  chunkBytes?: number;
  /** Command name for messages ("cp", "mkfs"). */
  cmd?: string;
  /**
   * Give every inode its mtime as atime instead of the host's atime. Reading a tree moves
   * its atimes (relatime: files and directories read for the first time since their last
   * change, symlinks, and anything with an mtime in the future), so copied atimes differ
   * from run to run: mkfs -d sets this when asked for a reproducible image.
   */
  atimeFromMtime?: boolean;
  /** Host inodes never copied (the image being written, when it lies inside the tree). */
  exclude?: readonly { dev: bigint; ino: bigint }[];
  onProgress?: (counts: Readonly<CopyCounts>) => void;
  warn?: (msg: string) => void;
}

/** A failure of the image side while copying, naming the image path that failed. */
export class CopyError extends Error {
  readonly dest: string;
  readonly fsError: FsError;
  constructor(dest: string, fsError: FsError) {
    super(fsError.message);
    this.dest = dest;
    this.fsError = fsError;
  }
}

const HOST_WORDS: Partial<Record<string, string>> = {
  ENOENT: "No such file or directory", EACCES: "Permission denied", ENOTDIR: "Not a directory", ELOOP: "Too many levels of symbolic links",
  EIO: "Input/output error", ENAMETOOLONG: "File name too long", EPERM: "Operation not permitted", EISDIR: "Is a directory",
};

/** A host-side failure (lstat, readdir, open, read) as a one-line message. */
function hostFailure(cmd: string, verb: string, path: string, e: unknown): CommandFailure {
  const code = typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : "";
  const words = HOST_WORDS[code] ?? (e instanceof Error ? e.message : String(e));
  return new CommandFailure(`${cmd}: cannot ${verb} '${path}': ${words}`);
}

/**
 * The names in a host directory, sorted by their bytes. Names that are not valid UTF-8
 * cannot be written through the (string) Volume API: refused with a clear message.
 */
export function sortedNames(dir: string, cmd = "ext4ts"): string[] {
  let raw: Buffer[];
  try {
    raw = readdirSync(dir, { encoding: "buffer" });
  } catch (e) {
    throw hostFailure(cmd, "read directory", dir, e);
  }
  raw.sort((a, b) => Buffer.compare(a, b));
  return raw.map((b) => {
    const s = b.toString("utf8");
    if (!Buffer.from(s, "utf8").equals(b)) {
      throw new CommandFailure(`${cmd}: cannot copy '${join(dir, b.toString("latin1"))}': the name is not valid UTF-8 (ext4ts writes UTF-8 names only)`);
    }
    return s;
  });
}

/** A bigint nanosecond time as a Timespec (floor seconds, non-negative nanoseconds). */
function timespec(ns: bigint): Timespec {
  const sec = ns / 1_000_000_000n - (ns % 1_000_000_000n < 0n ? 1n : 0n);
  return { sec: Number(sec), nsec: Number(ns - sec * 1_000_000_000n) };
}

/** Major and minor of a Linux (glibc) dev_t. */
function devNumbers(rdev: bigint): { major: number; minor: number } {
  return {
    major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

/** Entries looked at ahead of the copy in each directory (at most this many small files' contents in memory). */
const PREFETCH = 8;

/** A host entry looked at ahead: its lstat, and a small regular file's whole contents. */
type Prefetched = { ok: true; st: BigIntStats; data: Buffer | undefined } | { ok: false; error: unknown; verb: string };

/**
 * lstat `path` and, for a regular file of at most `max` bytes, read it whole, on the
 * thread pool. A file found longer than its lstat size (still being written) is left to
 * the synchronous path, which reads to the end as cp does.
 */
async function prefetch(path: string, max: number): Promise<Prefetched> {
  let st: BigIntStats;
  try {
    st = await fsp.lstat(path, { bigint: true });
  } catch (error) {
    return { ok: false, error, verb: "stat" };
  }
  const size = Number(st.size);
  if ((Number(st.mode) & S_IFMT) !== S_IFREG || size === 0 || size > max) return { ok: true, st, data: undefined };
  try {
    const fh = await fsp.open(path, constants.O_RDONLY | noAtime).catch(() => fsp.open(path, constants.O_RDONLY));
    try {
      const buf = Buffer.allocUnsafe(size + 1);
      let got = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
        if (got === buf.length) return { ok: true, st, data: undefined }; // grew since lstat
      }
      return { ok: true, st, data: buf.subarray(0, got) };
    } finally {
      await fh.close();
    }
  } catch (error) {
    return { ok: false, error, verb: "open" };
  }
}

/** Mode bits and owner of an image inode as the copy made it (uid -1: unknown). */
interface Made {
  mode: number;
  uid: number;
  gid: number;
}

const childPath = (dir: string, name: string): string => `${dir.replace(/\/+$/, "")}/${name}`;

/** O_NOATIME where the kernel allows it (the owner, or root): copying leaves the host's atimes alone. */
let noAtime = (constants as Partial<typeof constants>).O_NOATIME ?? 0; // Linux only

function openHost(src: string): number {
  if (noAtime !== 0) {
    try {
      return openSync(src, constants.O_RDONLY | noAtime);
    } catch (e) {
      if (!(typeof e === "object" && e !== null && "code" in e && e.code === "EPERM")) throw e;
      if (process.getuid?.() === 0) noAtime = 0; // root is never refused: the flag itself is not supported here
    }
  }
  return openSync(src, constants.O_RDONLY);
}

/**
 * Copies host files and trees into a mounted, writable Volume. Call `copy` (or
 * `copyContents`) as often as needed, then `finish` (it applies the last xattrs).
 */
export class HostCopier {
  readonly counts: CopyCounts = { files: 0, dirs: 0, symlinks: 0, special: 0, hardlinks: 0, bytes: 0, xattrs: 0, skipped: 0 };
  readonly #vol: Volume;
  readonly #o: CopyInOptions;
  readonly #cmd: string;
  readonly #umask: number;
  readonly #warn: (msg: string) => void;
  readonly #buf: Buffer;
  readonly #zero: Buffer;
  readonly #bs: number;
  /** Host dev:ino of multiply-linked inodes copied -> first image path and links still to come. */
  readonly #links = new Map<string, { dest: string; left: number }>();
  readonly #xattrs: XattrQueue | null;

  constructor(vol: Volume, o: CopyInOptions) {
    this.#vol = vol;
    this.#o = o;
    this.#cmd = o.cmd ?? "cp";
    this.#umask = o.umask ?? 0o022;
    this.#warn = o.warn ?? ((m: string) => process.stderr.write(`ext4ts: ${this.#cmd}: ${m}\n`));
    this.#bs = vol.fs.blockSize;
    const chunk = Math.max(this.#bs, Math.floor((o.chunkBytes ?? 1 << 20) / this.#bs) * this.#bs);
    this.#buf = Buffer.allocUnsafe(chunk);
    this.#zero = Buffer.alloc(this.#bs);
    this.#xattrs = o.archive && (o.xattrs ?? true)
      ? new XattrQueue(this.#cmd, this.#warn, (dest, name, value) => this.#setXattr(dest, name, value))
      : null;
  }

  /** Copy host `src` (any type) to image path `dest`; a directory merges into an existing one. */
  async copy(src: string, dest: string): Promise<void> {
    const st = this.#lstat(src);
    const parent = dest.replace(/\/+$/, "").replace(/\/[^/]*$/, "") || "/";
    await this.#entry(src, dest, st, await this.#existingDir(parent));
  }

  /**
   * Copy the entries of host directory `src` into the existing image directory `dest`,
   * then (archive) give `dest` the owner, mode, xattrs and times of `src`: what
   * `cp -a SRC/. DEST` does, and what mkfs -d does to the root.
   */
  async copyContents(src: string, dest: string): Promise<void> {
    const st = this.#lstat(src);
    if ((Number(st.mode) & S_IFMT) !== S_IFDIR) throw new CommandFailure(`${this.#cmd}: '${src}': Not a directory`);
    const here = await this.#guard(dest, () => this.#statDir(dest));
    await this.#children(src, dest, here);
    if (this.#o.archive) await this.#guard(dest, () => this.#meta(src, dest, st, S_IFDIR, here));
  }

  /** Apply the xattrs still pending; returns the counts. */
  async finish(): Promise<CopyCounts> {
    if (this.#xattrs !== null) await this.#xattrs.drain();
    this.#o.onProgress?.(this.counts);
    return this.counts;
  }

  #lstat(src: string): BigIntStats {
    try {
      return lstatSync(src, { bigint: true });
    } catch (e) {
      throw hostFailure(this.#cmd, "stat", src, e);
    }
  }

  /** Run image operations for `dest`, naming it in any FsError. */
  async #guard<T>(dest: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof FsError) throw new CopyError(dest, e);
      throw e;
    }
  }

  /** An image directory as it is now (ENOTDIR/ENOENT as FsError). */
  async #statDir(path: string): Promise<Made> {
    const s = await this.#vol.stat(path);
    if (!s.isDirectory()) throw new FsError("ENOTDIR", "Not a directory", { syscall: "stat", path });
    return { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid };
  }

  /** The parent an entry is created in; a missing one fails later, at the creation, with its own error. */
  async #existingDir(path: string): Promise<Made> {
    try {
      return await this.#statDir(path);
    } catch (e) {
      if (e instanceof FsError) return { mode: 0, uid: 0, gid: 0 };
      throw e;
    }
  }

  /**
   * The entries of one directory, in order. The next PREFETCH entries are looked at ahead
   * on libuv's thread pool (lstat, and the contents of small regular files), so a cold
   * host tree's reads overlap the engine's work instead of stalling it; what they return is
   * used exactly as the synchronous path would, so the image is the same either way.
   */
  async #children(src: string, dest: string, here: Made): Promise<void> {
    const names = sortedNames(src, this.#cmd);
    const ahead = new Map<number, Promise<Prefetched>>();
    for (let i = 0; i < names.length; i++) {
      for (let k = i; k < Math.min(names.length, i + PREFETCH); k++) if (!ahead.has(k)) ahead.set(k, prefetch(join(src, names[k]!), this.#buf.length));
      const pre = await ahead.get(i)!;
      ahead.delete(i);
      const from = join(src, names[i]!);
      if (!pre.ok) throw hostFailure(this.#cmd, pre.verb, from, pre.error);
      await this.#entry(from, childPath(dest, names[i]!), pre.st, here, pre.data);
    }
  }

  /**
   * Owner and mode a new inode gets in `parent` (inode_init_owner, as the engine does
   * it): the writer's (root's) uid and gid, but a setgid directory's group, and for a
   * directory its setgid bit; permission bits less the umask (mkdir keeps only 01777).
   */
  #made(type: number, mode: number, parent: Made): Made {
    const setgid = (parent.mode & 0o2000) !== 0;
    let m = mode & ~this.#umask & (type === S_IFDIR ? 0o1777 : 0o7777);
    if (type === S_IFDIR && setgid) m |= 0o2000;
    if (type === S_IFLNK) m = 0o777;
    return { mode: m, uid: 0, gid: setgid ? parent.gid : 0 };
  }

  async #entry(src: string, dest: string, st: BigIntStats, parent: Made, data?: Buffer): Promise<void> {
    const o = this.#o;
    const vol = this.#vol;
    if (o.exclude?.some((x) => x.dev === st.dev && x.ino === st.ino) === true) {
      this.#warn(`skipping '${src}': it is the image being written`);
      this.counts.skipped++;
      return;
    }
    const type = Number(st.mode) & S_IFMT;
    const mode = Number(st.mode) & 0o7777;
    if (o.archive && type !== S_IFDIR && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.#links.get(key);
      if (first !== undefined) {
        await this.#guard(dest, () => vol.link(first.dest, dest));
        this.counts.hardlinks++;
        if (--first.left <= 0) this.#links.delete(key);
        o.onProgress?.(this.counts);
        return;
      }
      this.#links.set(key, { dest, left: Number(st.nlink) - 1 });
    }
    let made = this.#made(type, mode, parent);
    switch (type) {
      case S_IFDIR: {
        if (!o.recursive) throw new CommandFailure(`${this.#cmd}: -r not specified; omitting directory '${src}'`);
        const existing = await this.#guard(dest, () => this.#mkdir(dest, mode));
        if (existing !== null) made = existing;
        this.counts.dirs++;
        await this.#children(src, dest, made);
        break;
      }
      case S_IFREG: {
        const r = await this.#file(src, dest, mode, st, data);
        if (r.existing) made = { mode: -1, uid: -1, gid: -1 }; // an existing file, overwritten: set everything
        this.counts.bytes += r.size;
        this.counts.files++;
        break;
      }
      case S_IFLNK: {
        if (!o.archive) {
          let real: string;
          try {
            real = realpathSync(src);
          } catch (e) {
            throw hostFailure(this.#cmd, "stat", src, e);
          }
          return this.#entry(real, dest, this.#lstat(real), parent);
        }
        let target: Buffer;
        try {
          target = readlinkSync(src, { encoding: "buffer" });
        } catch (e) {
          throw hostFailure(this.#cmd, "read link", src, e);
        }
        const text = target.toString("utf8");
        if (!Buffer.from(text, "utf8").equals(target)) throw new CommandFailure(`${this.#cmd}: cannot copy symlink '${src}': its target is not valid UTF-8`);
        await this.#guard(dest, () => vol.symlink(text, dest));
        this.counts.symlinks++;
        break;
      }
      case S_IFCHR:
      case S_IFBLK:
      case S_IFIFO:
      case S_IFSOCK: {
        if (!o.archive) throw new CommandFailure(`${this.#cmd}: cannot copy special file '${src}' without -a`);
        const dev = type === S_IFCHR || type === S_IFBLK ? devNumbers(st.rdev) : { major: 0, minor: 0 };
        await this.#guard(dest, () => vol.mknod(dest, type | mode, dev));
        this.counts.special++;
        break;
      }
      default:
        this.#warn(`skipping '${src}': unsupported file type 0o${type.toString(8)}`);
        this.counts.skipped++;
        return;
    }
    if (o.archive) await this.#guard(dest, () => this.#meta(src, dest, st, type, made));
    o.onProgress?.(this.counts);
  }

  /**
   * mkdir; an existing directory is merged into (cp's behaviour; also the root and
   * lost+found) and returned as it is, null when a new one was made.
   */
  async #mkdir(dest: string, mode: number): Promise<Made | null> {
    if (dest.replace(/\/+$/, "") !== "") {
      try {
        await this.#vol.mkdir(dest, { mode });
        return null;
      } catch (e) {
        if (!(e instanceof FsError && e.code === "EEXIST")) throw e;
      }
    }
    try {
      return await this.#statDir(dest);
    } catch (e) {
      if (e instanceof FsError && e.code === "ENOTDIR") throw new FsError("EEXIST", "File exists", { syscall: "mkdir", path: dest });
      throw e;
    }
  }

  /**
   * Owner, mode, xattrs, times, each only where `made` (what the inode has now) differs:
   * chown clears setuid, and setgid with group-exec, from non-directories (as Linux does,
   * even for root), so it goes first; every change but utimes moves only ctime.
   */
  async #meta(src: string, dest: string, st: BigIntStats, type: number, made: Made): Promise<void> {
    const vol = this.#vol;
    const mode = Number(st.mode) & 0o7777;
    const uid = Number(st.uid);
    const gid = Number(st.gid);
    let now = made.mode;
    if (uid !== made.uid || gid !== made.gid) {
      await vol.lchown(dest, uid, gid);
      if (type !== S_IFDIR) now &= ~(0o4000 | (now & 0o010 ? 0o2000 : 0));
    }
    if (type !== S_IFLNK && now !== mode) await vol.chmod(dest, mode);
    if (this.#xattrs !== null) await this.#xattrs.add(src, dest);
    await vol.lutimes(dest, timespec(this.#o.atimeFromMtime === true ? st.mtimeNs : st.atimeNs), timespec(st.mtimeNs));
  }

  /**
   * Copy a regular file: created with mknod (no failed lookup first), or, when `dest`
   * exists, opened with O_TRUNC as cp does. The contents skip all-zero blocks, so they
   * stay holes. Node has no SEEK_DATA/SEEK_HOLE, so every byte is read; skipping zero
   * blocks is also what mke2fs's own copy loop does whatever the source (copy_file_chunk
   * in e2fsprogs misc/create_inode.c memcmps each block of its buffer with a zero block
   * and writes only the others; SEEK_DATA/FIEMAP there only avoid reading holes). The
   * non-zero runs of each chunk are written whole. An empty file is not read (mke2fs
   * copies st_size bytes too).
   */
  async #file(src: string, dest: string, mode: number, st: BigIntStats, data?: Buffer): Promise<{ size: number; existing: boolean }> {
    let fd = -1;
    if (data === undefined) {
      try {
        fd = openHost(src);
      } catch (e) {
        throw hostFailure(this.#cmd, "open", src, e);
      }
    }
    try {
      const existing = await this.#guard(dest, async () => {
        try {
          await this.#vol.mknod(dest, S_IFREG | mode);
          return false;
        } catch (e) {
          if (!(e instanceof FsError && e.code === "EEXIST")) throw e;
          return true;
        }
      });
      if (st.size === 0n && !existing) return { size: 0, existing };
      const fh = await this.#guard(dest, () => this.#vol.open(dest, existing ? "w" : "r+"));
      try {
        const bs = this.#bs;
        let pos = 0;
        let end = 0; // end of the last write
        const write = (buf: Buffer, from: number, to: number): Promise<void> =>
          this.#guard(dest, async () => {
            // A short write (the volume filled up) is retried, so the error surfaces here.
            for (let at = from; at < to; ) {
              const { bytesWritten } = await fh.write(buf, at, to - at, pos + at);
              if (bytesWritten === 0) throw new FsError("ENOSPC", "No space left on device");
              at += bytesWritten;
            }
            end = pos + to;
          });
        for (;;) {
          let buf: Buffer;
          let n: number;
          if (data !== undefined) {
            buf = data.subarray(pos, pos + this.#buf.length);
            n = buf.length;
          } else {
            buf = this.#buf;
            try {
              n = readSync(fd, buf, 0, buf.length, pos);
            } catch (e) {
              throw hostFailure(this.#cmd, "read", src, e);
            }
          }
          if (n === 0) break;
          let run = -1;
          for (let off = 0; off < n; off += bs) {
            const stop = Math.min(off + bs, n);
            if (buf.compare(this.#zero, 0, stop - off, off, stop) === 0) {
              if (run >= 0) await write(buf, run, off);
              run = -1;
            } else if (run < 0) {
              run = off;
            }
          }
          if (run >= 0) await write(buf, run, n);
          pos += n;
        }
        if (pos > end) await this.#guard(dest, () => fh.truncate(pos)); // a trailing hole
        return { size: pos, existing };
      } finally {
        await fh.close();
      }
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }

  /** One xattr onto the image: names the engine cannot store are warned about and left out. */
  async #setXattr(dest: string, name: string, value: Uint8Array): Promise<void> {
    try {
      await this.#vol.lsetxattr(dest, name, value);
      this.counts.xattrs++;
    } catch (e) {
      if (e instanceof FsError && e.code === "EOPNOTSUPP") {
        this.#warn(`cannot copy extended attribute '${name}' of '${dest}': Operation not supported`);
        this.counts.skipped++;
        return;
      }
      if (e instanceof FsError) throw new CopyError(dest, e);
      throw e;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Reading host xattrs with getfattr

/** Paths (all characters together) and count of one getfattr batch: far below ARG_MAX. */
const XATTR_BATCH_CHARS = 256 * 1024;
const XATTR_BATCH_PATHS = 2048;

/** Is the attr package's getfattr on PATH? */
export function haveGetfattr(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn("getfattr", ["--version"], { stdio: "ignore" });
    child.on("error", () => {
      resolve(false);
    });
    child.on("close", (code) => {
      resolve(code === 0);
    });
  });
}

interface GetfattrRun {
  readonly batch: readonly { host: string; dest: string }[];
  readonly result: Promise<{ stdout: Buffer; stderr: string }>;
}

/** Host paths waiting for their xattrs to be read and applied, one batch at a time. */
class XattrQueue {
  #batch: { host: string; dest: string }[] = [];
  #chars = 0;
  #running: GetfattrRun | null = null;
  readonly #cmd: string;
  readonly #warn: (msg: string) => void;
  readonly #apply: (dest: string, name: string, value: Uint8Array) => Promise<void>;

  constructor(cmd: string, warn: (msg: string) => void, apply: (dest: string, name: string, value: Uint8Array) => Promise<void>) {
    this.#cmd = cmd;
    this.#warn = warn;
    this.#apply = apply;
  }

  async add(host: string, dest: string): Promise<void> {
    this.#batch.push({ host, dest });
    this.#chars += host.length + 1;
    if (this.#batch.length >= XATTR_BATCH_PATHS || this.#chars >= XATTR_BATCH_CHARS) await this.#flush();
  }

  /** Start reading the current batch, then apply the previous one (its reader ran meanwhile). */
  async #flush(): Promise<void> {
    const prev = this.#running;
    this.#running = null;
    if (this.#batch.length > 0) {
      const batch = this.#batch;
      this.#batch = [];
      this.#chars = 0;
      const result = readXattrs(batch.map((b) => b.host), this.#cmd);
      result.catch(() => undefined); // awaited in #applyRun; never an unhandled rejection meanwhile
      this.#running = { batch, result };
    }
    if (prev !== null) await this.#applyRun(prev);
  }

  async drain(): Promise<void> {
    await this.#flush();
    const last = this.#running;
    this.#running = null;
    if (last !== null) await this.#applyRun(last);
  }

  async #applyRun(run: GetfattrRun): Promise<void> {
    const { stdout, stderr } = await run.result;
    for (const line of stderr.split("\n")) if (line.trim() !== "") this.#warn(line.trim());
    const wanted = new Set(run.batch.map((b) => b.host));
    const found = parseGetfattr(stdout);
    for (const p of found.keys()) if (!wanted.has(p)) this.#warn(`getfattr reported an unexpected path: ${JSON.stringify(p)}`);
    for (const { host, dest } of run.batch) {
      const attrs = found.get(host);
      if (attrs === undefined) continue;
      attrs.sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
      for (const [name, value] of attrs) await this.#apply(dest, name, value);
    }
  }
}

/** `getfattr --absolute-names -h -d -m - -e base64 -- PATHS`: the raw dump. */
function readXattrs(paths: readonly string[], cmd: string): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("getfattr", ["--absolute-names", "-h", "-d", "-m", "-", "-e", "base64", "--", ...paths], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => {
      reject(new CommandFailure(`${cmd}: cannot read extended attributes: getfattr (package attr) failed to start: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      const stderr = Buffer.concat(err).toString("utf8");
      // getfattr exits 1 when some path failed (it says which on stderr) and still dumps the rest.
      if (signal !== null || (code !== 0 && code !== 1)) {
        reject(new CommandFailure(`${cmd}: getfattr failed (${signal ?? `exit ${String(code)}`}): ${stderr.trim()}`));
        return;
      }
      resolve({ stdout: Buffer.concat(out), stderr });
    });
  });
}

/** Undo attr's quote(): `\ooo` octal escapes back to bytes (backslash, "=", control characters). */
function unquote(b: Buffer): Buffer {
  if (!b.includes(0x5c)) return b;
  const out = Buffer.allocUnsafe(b.length);
  let n = 0;
  const oct = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x37;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0x5c && oct(b[i + 1]) && oct(b[i + 2]) && oct(b[i + 3])) {
      out[n++] = ((b[i + 1]! - 0x30) << 6) | ((b[i + 2]! - 0x30) << 3) | (b[i + 3]! - 0x30);
      i += 3;
    } else {
      out[n++] = c;
    }
  }
  return out.subarray(0, n);
}

/** A getfattr value: 0s base64, 0x hex, "quoted text", or empty. */
function decodeValue(v: Buffer): Buffer {
  const s = v.toString("latin1");
  if (s === "" || s === '""') return Buffer.alloc(0);
  if (s.startsWith("0s")) return Buffer.from(s.slice(2), "base64");
  if (s.startsWith("0x")) return Buffer.from(s.slice(2), "hex");
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) return unquote(v.subarray(1, v.length - 1));
  throw new CommandFailure(`cannot decode getfattr value ${JSON.stringify(s)}`);
}

/**
 * Parses a `getfattr -d -e base64` dump: "# file: PATH" then "name=value" lines, blank
 * line between files; PATH and names quoted by attr's quote(). Returns path -> [name, value].
 */
export function parseGetfattr(dump: Buffer): Map<string, [string, Uint8Array][]> {
  const out = new Map<string, [string, Uint8Array][]>();
  let current: [string, Uint8Array][] | undefined;
  const FILE = Buffer.from("# file: ");
  for (let start = 0; start < dump.length; ) {
    let nl = dump.indexOf(0x0a, start);
    if (nl < 0) nl = dump.length;
    const line = dump.subarray(start, nl);
    start = nl + 1;
    if (line.length === 0) continue;
    if (line.subarray(0, FILE.length).equals(FILE)) {
      const p = unquote(line.subarray(FILE.length)).toString("utf8");
      current = out.get(p) ?? [];
      out.set(p, current);
      continue;
    }
    if (line[0] === 0x23) continue; // other comments
    if (current === undefined) throw new CommandFailure(`getfattr output: an attribute before "# file:": ${line.toString("utf8")}`);
    const eq = line.indexOf(0x3d);
    const name = unquote(eq < 0 ? line : line.subarray(0, eq)).toString("utf8");
    current.push([name, decodeValue(eq < 0 ? Buffer.alloc(0) : line.subarray(eq + 1))]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Sizing a host tree (mkfs -d without SIZE, and progress totals)

/** Block sizes an ext4 volume can have. */
const BLOCK_SIZES = [1024, 2048, 4096, 8192, 16384, 32768, 65536] as const;
/** In-inode xattr space per inode size: i_extra_isize 32, the 4-byte ibody header, the end marker. */
const INODE_SIZES = [128, 256, 512, 1024] as const;
const inodeXattrRoom = (inodeSize: number): number => (inodeSize <= 128 ? 0 : inodeSize - 128 - 32 - 4 - 4);

/** What a host tree needs from a new filesystem. */
export interface HostTreeTotals {
  /** Paths below the root. */
  readonly entries: number;
  /** Distinct inodes below the root (hard links once). */
  readonly inodes: number;
  readonly files: number;
  readonly dirs: number;
  readonly symlinks: number;
  readonly special: number;
  readonly hardlinks: number;
  /** Regular-file bytes, each inode once. */
  readonly bytes: number;
  /**
   * The smallest block size that holds every symlink target (shorter than a block) and
   * every inode's xattrs in one xattr block (with its 32-byte header): 1024 at least.
   */
  readonly minBlockSize: number;
  /** Data, directory, symlink, extent-index and xattr blocks for this block and inode size. */
  blocks(blockSize: number, inodeSize: number): number;
}

/**
 * Walks a host tree (streaming, like the copy) and adds up what it needs: inodes, and
 * blocks per block size. A regular file counts min(size, allocated) rounded up to blocks
 * (allocated = st_blocks * 512: a sparse file counts its data, not its holes; a file with
 * no blocks at all and more than 4 KiB is taken as all hole); directories count their
 * entries at 60% fill plus one block; symlinks of 60 bytes or more one block. With
 * `xattrs`, one `getfattr -R` run counts the files whose xattrs do not fit in the inode.
 */
export async function scanHostTree(root: string, o: { xattrs: boolean; cmd?: string; exclude?: readonly { dev: bigint; ino: bigint }[] }): Promise<HostTreeTotals> {
  const cmd = o.cmd ?? "mkfs";
  const xattrOver = new Map<number, number>(INODE_SIZES.map((s) => [s, 0]));
  let minBlockSize = 1024;
  const atLeast = (bytes: number): void => {
    while (minBlockSize < bytes && minBlockSize < 65536) minBlockSize *= 2;
  };
  const reading = o.xattrs ? scanXattrSizes(root, cmd, (total) => {
    for (const s of INODE_SIZES) if (total > 0 && total + 4 > inodeXattrRoom(s)) xattrOver.set(s, (xattrOver.get(s) ?? 0) + 1);
    atLeast(32 + total + 4); // block header, entries and values, end marker
  }) : Promise.resolve();
  reading.catch(() => undefined); // awaited below
  const perBs = new Float64Array(BLOCK_SIZES.length);
  const seen = new Set<string>();
  const t = { entries: 0, inodes: 0, files: 0, dirs: 0, symlinks: 0, special: 0, hardlinks: 0, bytes: 0 };
  const addBlocks = (f: (bs: number) => number): void => {
    for (let i = 0; i < BLOCK_SIZES.length; i++) perBs[i]! += f(BLOCK_SIZES[i]!);
  };
  const fileBlocks = (bytes: number) => (bs: number): number => {
    const n = Math.ceil(bytes / bs);
    const extents = Math.ceil(n / 32768);
    return n + (extents > 4 ? Math.ceil(extents / Math.floor((bs - 12) / 12)) : 0);
  };
  const stack: { names: string[]; next: number }[] = [];
  const dirs: string[] = [root];
  let steps = 0;
  const visitDir = (dir: string): string[] => {
    const names = sortedNames(dir, cmd);
    let bytes = 24; // "." and ".."
    for (const n of names) bytes += (8 + Buffer.byteLength(n) + 3) & ~3;
    addBlocks((bs) => (bytes <= bs - 12 ? 1 : Math.ceil(bytes / ((bs - 12) * 0.6)) + 1));
    return names;
  };
  stack.push({ names: visitDir(root), next: 0 });
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const name = top.names[top.next++];
    if (name === undefined) {
      stack.pop();
      dirs.pop();
      continue;
    }
    if (++steps % 512 === 0) await new Promise((r) => setImmediate(r)); // let getfattr's output drain
    const p = join(dirs[dirs.length - 1]!, name);
    let st: BigIntStats;
    try {
      st = lstatSync(p, { bigint: true });
    } catch (e) {
      throw hostFailure(cmd, "stat", p, e);
    }
    if (o.exclude?.some((x) => x.dev === st.dev && x.ino === st.ino) === true) continue;
    t.entries++;
    const type = Number(st.mode) & S_IFMT;
    if (type !== S_IFDIR && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) {
        t.hardlinks++;
        continue;
      }
      seen.add(key);
    }
    t.inodes++;
    switch (type) {
      case S_IFDIR:
        t.dirs++;
        stack.push({ names: visitDir(p), next: 0 });
        dirs.push(p);
        break;
      case S_IFREG: {
        t.files++;
        const size = Number(st.size);
        t.bytes += size;
        const allocated = Number(st.blocks) * 512;
        const data = allocated === 0 && size > 4096 ? 0 : allocated === 0 ? size : Math.min(size, allocated);
        addBlocks(fileBlocks(data));
        break;
      }
      case S_IFLNK:
        t.symlinks++;
        if (st.size >= 60n) addBlocks(() => 1);
        atLeast(Number(st.size) + 1);
        break;
      default:
        t.special++;
    }
  }
  await reading;
  const over = xattrOver;
  return {
    ...t,
    minBlockSize,
    blocks(blockSize: number, inodeSize: number): number {
      const i = BLOCK_SIZES.indexOf(blockSize as (typeof BLOCK_SIZES)[number]);
      const data = i >= 0 ? perBs[i]! : perBs[2]! * (4096 / blockSize);
      const room = INODE_SIZES.filter((s) => s <= inodeSize).at(-1) ?? 128;
      return Math.ceil(data) + (over.get(room) ?? 0);
    },
  };
}

/**
 * One `getfattr -R -P -h -d -m - -e base64` over the tree, parsed as it streams; calls
 * `perFile` with each file's xattr bytes as ext4 stores them (entry headers, names
 * without their prefix, values, each padded to 4 bytes). Nothing is kept.
 */
function scanXattrSizes(root: string, cmd: string, perFile: (bytes: number) => void): Promise<void> {
  const prefixes = ["system.posix_acl_access", "system.posix_acl_default", "security.", "trusted.", "user.", "system."];
  return new Promise((resolve, reject) => {
    const child = spawn("getfattr", ["-R", "-P", "-h", "-d", "-m", "-", "-e", "base64", "--absolute-names", "--", root], { stdio: ["ignore", "pipe", "ignore"] });
    let rest = Buffer.alloc(0);
    let total = 0;
    const line = (l: Buffer): void => {
      if (l.length === 0 || l[0] === 0x23) {
        if (total > 0) perFile(total);
        total = 0;
        return;
      }
      const eq = l.indexOf(0x3d);
      const name = unquote(eq < 0 ? l : l.subarray(0, eq)).toString("utf8");
      const prefix = prefixes.find((p) => name.startsWith(p)) ?? "";
      const value = eq < 0 ? 0 : decodeValue(l.subarray(eq + 1)).length;
      total += ((16 + Buffer.byteLength(name) - prefix.length + 3) & ~3) + ((value + 3) & ~3);
    };
    child.stdout.on("data", (b: Buffer) => {
      const buf = rest.length > 0 ? Buffer.concat([rest, b]) : b;
      let start = 0;
      for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
        line(buf.subarray(start, nl));
        start = nl + 1;
      }
      rest = Buffer.from(buf.subarray(start));
    });
    child.on("error", (e) => {
      reject(new CommandFailure(`${cmd}: cannot read extended attributes: getfattr (package attr) failed to start: ${e.message}`));
    });
    child.on("close", () => {
      line(rest);
      line(Buffer.alloc(0));
      resolve();
    });
  });
}
