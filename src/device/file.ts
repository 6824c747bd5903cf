/**
 * FileDevice (Node only): an image file or a block device, through positional
 * reads and writes on one fs/promises FileHandle (pread/pwrite). Nothing is buffered
 * here; caching is the buffer cache's job. e2fsprogs counterpart: lib/ext2fs/unix_io.c.
 *
 * Size: a regular file's size comes from fstat, or from the `size` option, which
 * extends a shorter file sparsely (ftruncate) and limits a longer one (the tail is
 * left alone, as `mke2fs img 64M` does). A block device's size cannot be read through
 * Node's API (no BLKGETSIZE64 ioctl), so it comes from sysfs on Linux
 * (/sys/dev/block/MAJ:MIN/size) and elsewhere from a binary search with 1-byte reads,
 * which return 0 bytes past the end; `size` overrides both.
 *
 * This is the only file in src/ that imports node:*.
 */

import { constants, readSync, writeSync } from "node:fs";
import { type FileHandle, open, readFile } from "node:fs/promises";
import type { Errno } from "../errors.js";
import { FsError } from "../errors.js";
import { type BlockDevice, checkAccess, checkOpen } from "./block_device.js";

export interface FileDeviceOptions {
  /** Open O_RDONLY; writes fail with EROFS. */
  readOnly?: boolean;
  /** Create the file if missing (never truncates an existing one). */
  create?: boolean;
  /** Device size in bytes; see the file header. */
  size?: number;
  /**
   * Do each pread/pwrite synchronously (still behind the async interface). A thread-pool
   * round trip costs tens of microseconds per request; a command-line tool that does
   * nothing else while it waits (as e2fsprogs tools do) is several times faster this way.
   * Servers and anything else sharing the event loop should leave it off.
   */
  syncIO?: boolean;
}

// Host errors passed through with their own code; anything else becomes EIO.
const PASS_THROUGH = new Set<string>([
  "ENOENT", "EACCES", "EPERM", "EROFS", "EISDIR", "ENOTDIR", "EBUSY", "ENOSPC", "EDQUOT",
  "ELOOP", "ENAMETOOLONG", "EFBIG", "EINVAL", "EEXIST",
] satisfies Errno[]);

function hostCode(e: unknown): string | undefined {
  if (typeof e === "object" && e !== null && "code" in e && typeof e.code === "string") return e.code;
  return undefined;
}

function toFsError(e: unknown, message: string, passThrough: ReadonlySet<string>, syscall: string, path: string): FsError {
  const code = hostCode(e);
  const errno = code !== undefined && passThrough.has(code) ? (code as Errno) : "EIO";
  const why = e instanceof Error ? e.message : String(e);
  return new FsError(errno, `${message}: ${why}`, { syscall, path, cause: e });
}

const IO_PASS_THROUGH = new Set<string>(["ENOSPC", "EDQUOT", "EFBIG"]);

export class FileDevice implements BlockDevice {
  readonly path: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly description: string;
  readonly #handle: FileHandle;
  readonly #syncIO: boolean;
  #closed = false;

  private constructor(handle: FileHandle, path: string, size: number, readOnly: boolean, syncIO: boolean) {
    this.#handle = handle;
    this.#syncIO = syncIO;
    this.path = path;
    this.size = size;
    this.readOnly = readOnly;
    this.description = `file '${path}'`;
  }

  /**
   * Opens `path`. Throws FsError: the host's code for open failures (ENOENT, EACCES,
   * EROFS, ...), EINVAL for contradictory options, a file that is neither regular nor
   * a block device, or a read-only file shorter than `size`.
   */
  static async open(path: string, options: FileDeviceOptions = {}): Promise<FileDevice> {
    const readOnly = options.readOnly ?? false;
    const create = options.create ?? false;
    const want = options.size;
    if (readOnly && create) throw new FsError("EINVAL", `Cannot open file '${path}': create and readOnly both set`, { path });
    if (want !== undefined && !(Number.isSafeInteger(want) && want >= 0)) {
      throw new FsError("EINVAL", `Cannot open file '${path}': invalid size ${want}`, { path });
    }
    const flags = readOnly ? constants.O_RDONLY : constants.O_RDWR | (create ? constants.O_CREAT : 0);
    let handle: FileHandle;
    try {
      handle = await open(path, flags, 0o644);
    } catch (e) {
      throw toFsError(e, `Cannot open file '${path}'`, PASS_THROUGH, "open", path);
    }
    try {
      const size = await deviceSize(handle, path, readOnly, want);
      return new FileDevice(handle, path, size, readOnly, options.syncIO ?? false);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(offset, out);
    return out;
  }

  async readInto(offset: number, dest: Uint8Array): Promise<void> {
    checkAccess(this, "read", offset, dest.length, this.#closed);
    let done = 0;
    while (done < dest.length) {
      let n: number;
      try {
        n = this.#syncIO
          ? readSync(this.#handle.fd, dest, done, dest.length - done, offset + done)
          : (await this.#handle.read(dest, done, dest.length - done, offset + done)).bytesRead;
      } catch (e) {
        throw this.#ioError(e, "read", offset, dest.length);
      }
      if (n === 0) {
        // The file shrank under us, or a block device is smaller than the size given.
        throw new FsError("EIO", `Cannot read ${dest.length} bytes at offset ${offset} of ${this.description}: unexpected end of file at offset ${offset + done}`, { path: this.path });
      }
      done += n;
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    checkAccess(this, "write", offset, data.length, this.#closed);
    let done = 0;
    while (done < data.length) {
      try {
        done += this.#syncIO
          ? writeSync(this.#handle.fd, data, done, data.length - done, offset + done)
          : (await this.#handle.write(data, done, data.length - done, offset + done)).bytesWritten;
      } catch (e) {
        throw this.#ioError(e, "write", offset, data.length);
      }
    }
  }

  /** fdatasync; a no-op on a read-only device. */
  async flush(): Promise<void> {
    checkOpen(this, "flush", this.#closed);
    if (this.readOnly) return;
    try {
      await this.#handle.datasync();
    } catch (e) {
      throw toFsError(e, `Cannot flush ${this.description}`, IO_PASS_THROUGH, "fdatasync", this.path);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#handle.close();
    } catch (e) {
      throw toFsError(e, `Cannot close ${this.description}`, IO_PASS_THROUGH, "close", this.path);
    }
  }

  #ioError(e: unknown, op: "read" | "write", offset: number, length: number): FsError {
    const syscall = op === "read" ? "pread" : "pwrite";
    return toFsError(e, `Cannot ${op} ${length} bytes at offset ${offset} of ${this.description}`, IO_PASS_THROUGH, syscall, this.path);
  }
}

async function deviceSize(handle: FileHandle, path: string, readOnly: boolean, want: number | undefined): Promise<number> {
  const st = await handle.stat();
  if (st.isBlockDevice()) {
    const actual = (await sysfsBlockDeviceSize(st.rdev)) ?? (await probeDeviceSize(handle));
    if (want === undefined) return actual;
    if (want > actual) throw new FsError("EINVAL", `Cannot open file '${path}': size ${want} exceeds the device's ${actual} bytes`, { path });
    return want;
  }
  if (!st.isFile()) throw new FsError("EINVAL", `Cannot open file '${path}': not a regular file or block device`, { path });
  if (want === undefined || want <= st.size) return want ?? st.size;
  if (readOnly) throw new FsError("EINVAL", `Cannot open file '${path}': file has ${st.size} bytes, fewer than size ${want}, and is read-only`, { path });
  try {
    await handle.truncate(want);
  } catch (e) {
    throw toFsError(e, `Cannot extend file '${path}' to ${want} bytes`, PASS_THROUGH, "ftruncate", path);
  }
  return want;
}

/** Linux: the size in 512-byte sectors from /sys/dev/block/MAJ:MIN/size; undefined elsewhere. */
async function sysfsBlockDeviceSize(rdev: number): Promise<number | undefined> {
  // glibc gnu_dev_major / gnu_dev_minor.
  const dev = BigInt(rdev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  try {
    const text = await readFile(`/sys/dev/block/${major}:${minor}/size`, "utf8");
    const sectors = Number(text.trim());
    return Number.isSafeInteger(sectors * 512) ? sectors * 512 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The size of whatever `handle` reads from, found by binary search: a 1-byte positional
 * read returns 0 bytes at or past the end. About 2·log2(size) reads.
 * @internal exported for tests
 */
export async function probeDeviceSize(handle: FileHandle): Promise<number> {
  const one = new Uint8Array(1);
  const readable = async (pos: number): Promise<boolean> => (await handle.read(one, 0, 1, pos)).bytesRead === 1;
  if (!(await readable(0))) return 0;
  let lo = 0; // readable
  let hi = 512; // first candidate that might not be
  while (await readable(hi)) {
    lo = hi;
    hi *= 2;
    if (hi > Number.MAX_SAFE_INTEGER) throw new FsError("EIO", "Cannot determine device size: no end found below 2^53");
  }
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (await readable(mid)) lo = mid;
    else hi = mid;
  }
  return lo + 1;
}
