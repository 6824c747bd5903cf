/**
 * The BlockDevice interface: the one seam between the engine and storage (a memory
 * buffer, an image file, a Blob in a browser). The kernel counterpart is the block
 * layer under fs/buffer.c; e2fsprogs' is io_manager (lib/ext2fs/unix_io.c).
 *
 * Devices are byte-addressed and fixed-size. Every implementation keeps the same
 * rules, which test/conformance/block_device_suite.ts checks:
 *
 * - An access must lie entirely inside [0, size). Anything else, short reads at the
 *   end included, fails with FsError("EIO") naming the offset, as the kernel's
 *   "attempt to access beyond end of device" does. Writes past the end are EIO too,
 *   not ENOSPC: the device does not grow, and the engine never means to write there.
 * - Writes to a read-only device fail with FsError("EROFS"), before the range check.
 * - `read` returns a fresh buffer the caller owns; no device keeps a reference to it
 *   or to the `data` given to `write` once the returned promise settles.
 * - After `close`, every operation but `close` fails with FsError("EBADF").
 * - Negative or non-integer offsets and lengths are bugs in the caller
 *   (AssertionError), not errors.
 */

import { assert } from "../debug/assert.js";
import { FsError } from "../errors.js";

export interface BlockDevice {
  /** For messages: "memory device", "file 'disk.img'", ... */
  readonly description: string;
  /** Size in bytes; fixed for the device's lifetime. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Reads exactly `length` bytes at `offset` into a new buffer. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Reads exactly `dest.length` bytes at `offset` into `dest`. */
  readInto(offset: number, dest: Uint8Array): Promise<void>;
  /** Writes all of `data` at `offset`. Durable only after `flush`. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Makes completed writes durable (fdatasync for files; a no-op in memory). */
  flush(): Promise<void>;
  /** Releases the device; idempotent. Does not flush. */
  close(): Promise<void>;
}

/**
 * Checks an access against the rules above; implementations call it first.
 * Throws EBADF when closed, EROFS for a write to a read-only device, EIO past the end.
 */
export function checkAccess(
  dev: BlockDevice,
  op: "read" | "write",
  offset: number,
  length: number,
  closed = false,
): void {
  assert(Number.isSafeInteger(offset) && offset >= 0, () => `Invalid ${op} offset ${offset} on ${dev.description}`);
  assert(Number.isSafeInteger(length) && length >= 0, () => `Invalid ${op} length ${length} on ${dev.description}`);
  if (closed) throw new FsError("EBADF", `Cannot ${op} ${dev.description}: device is closed`);
  if (op === "write" && dev.readOnly) {
    throw new FsError("EROFS", `Cannot write ${dev.description} at offset ${offset}: device is read-only`);
  }
  if (offset + length > dev.size) {
    throw new FsError(
      "EIO",
      `Cannot ${op} ${length} bytes at offset ${offset} of ${dev.description}: past the end of the device (size ${dev.size})`,
    );
  }
}

/** Throws EBADF for flush on a closed device. */
export function checkOpen(dev: BlockDevice, op: string, closed: boolean): void {
  if (closed) throw new FsError("EBADF", `Cannot ${op} ${dev.description}: device is closed`);
}

/**
 * Runs `fn` and returns its result as a promise, a throw becoming a rejection, so
 * synchronous devices keep the "errors reject, never throw" contract of async methods.
 */
export function settle<T>(fn: () => T): Promise<T> {
  return new Promise<T>((resolve) => {
    resolve(fn());
  });
}

function blockOffset(blockSize: number, blockNo: number): number {
  assert(Number.isSafeInteger(blockSize) && blockSize > 0, () => `Invalid block size ${blockSize}`);
  assert(Number.isSafeInteger(blockNo) && blockNo >= 0, () => `Invalid block number ${blockNo}`);
  const offset = blockNo * blockSize;
  assert(Number.isSafeInteger(offset), () => `Block ${blockNo} of size ${blockSize} is beyond 2^53 bytes`);
  return offset;
}

/** Reads block `blockNo` (of `blockSize` bytes) into a new buffer. @kernel sb_bread (uncached) */
export function readBlock(dev: BlockDevice, blockSize: number, blockNo: number): Promise<Uint8Array> {
  return settle(() => blockOffset(blockSize, blockNo)).then((offset) => dev.read(offset, blockSize));
}

/** Reads `count` consecutive blocks from `first` in one device read. */
export function readBlocks(dev: BlockDevice, blockSize: number, first: number, count: number): Promise<Uint8Array> {
  return settle(() => {
    assert(Number.isSafeInteger(count) && count >= 0, () => `Invalid block count ${count}`);
    return blockOffset(blockSize, first);
  }).then((offset) => dev.read(offset, count * blockSize));
}

/** Writes `data`, one or more whole blocks, starting at block `blockNo`. */
export function writeBlock(dev: BlockDevice, blockSize: number, blockNo: number, data: Uint8Array): Promise<void> {
  return settle(() => {
    assert(data.length % blockSize === 0, () => `Cannot write ${data.length} bytes as whole blocks of ${blockSize}`);
    return blockOffset(blockSize, blockNo);
  }).then((offset) => dev.write(offset, data));
}
