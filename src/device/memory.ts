/**
 * MemoryDevice: a sparse in-memory BlockDevice (e2fsprogs' inode_io/undo tests use the
 * same trick). Storage is a Map of fixed-size chunks created on the first write of a
 * non-zero byte into them; everything else reads as zeros. Memory use is therefore
 * bounded by what was written (`bytesAllocated`), not by `size`, so a 16 TiB test
 * image costs only its metadata.
 *
 * Invariant: every chunk in the map lies inside [0, size) and is chunkSize long except
 * the last chunk of the device, which ends at `size`.
 */

import { assert } from "../debug/assert.js";
import { type BlockDevice, checkAccess, checkOpen, settle } from "./block_device.js";

export interface MemoryDeviceOptions {
  readOnly?: boolean;
  /** Allocation granule in bytes, a power of two; 64 KiB by default. */
  chunkSize?: number;
  description?: string;
}

const DEFAULT_CHUNK = 64 * 1024;

function isZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

export class MemoryDevice implements BlockDevice {
  readonly size: number;
  readonly readOnly: boolean;
  readonly description: string;
  readonly #chunkSize: number;
  readonly #chunks = new Map<number, Uint8Array>();
  #closed = false;

  constructor(size: number, options: MemoryDeviceOptions = {}) {
    const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
    assert(Number.isSafeInteger(size) && size >= 0, () => `Invalid memory device size ${size}`);
    assert(Number.isSafeInteger(chunkSize) && chunkSize > 0 && (chunkSize & (chunkSize - 1)) === 0, () => `Invalid chunk size ${chunkSize}`);
    this.size = size;
    this.readOnly = options.readOnly ?? false;
    this.description = options.description ?? "memory device";
    this.#chunkSize = chunkSize;
  }

  /**
   * A device holding a copy of `bytes` (all-zero chunks are not stored), `size` bytes
   * long (default `bytes.length`; larger sizes read as zeros past the copy).
   */
  static from(bytes: Uint8Array, options: MemoryDeviceOptions & { size?: number } = {}): MemoryDevice {
    const size = options.size ?? bytes.length;
    assert(size >= bytes.length, () => `MemoryDevice.from: ${bytes.length} bytes do not fit in size ${size}`);
    const dev = new MemoryDevice(size, options);
    dev.#writeSync(0, bytes);
    return dev;
  }

  /** Bytes of chunk storage in use: grows with written data only. */
  get bytesAllocated(): number {
    let n = 0;
    for (const c of this.#chunks.values()) n += c.length;
    return n;
  }

  /** A full copy of the contents (allocates `size` bytes). Works after close too. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    for (const [i, c] of this.#chunks) out.set(c, i * this.#chunkSize);
    return out;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return settle(() => {
      checkAccess(this, "read", offset, length, this.#closed);
      const out = new Uint8Array(length);
      this.#readSync(offset, out);
      return out;
    });
  }

  readInto(offset: number, dest: Uint8Array): Promise<void> {
    return settle(() => {
      checkAccess(this, "read", offset, dest.length, this.#closed);
      this.#readSync(offset, dest);
    });
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return settle(() => {
      checkAccess(this, "write", offset, data.length, this.#closed);
      this.#writeSync(offset, data);
    });
  }

  flush(): Promise<void> {
    return settle(() => {
      checkOpen(this, "flush", this.#closed);
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  #readSync(offset: number, dest: Uint8Array): void {
    const cs = this.#chunkSize;
    let done = 0;
    while (done < dest.length) {
      const pos = offset + done;
      const index = Math.floor(pos / cs);
      const within = pos - index * cs;
      const n = Math.min(cs - within, dest.length - done);
      const chunk = this.#chunks.get(index);
      if (chunk === undefined) dest.fill(0, done, done + n);
      else dest.set(chunk.subarray(within, within + n), done);
      done += n;
    }
  }

  #writeSync(offset: number, data: Uint8Array): void {
    const cs = this.#chunkSize;
    let done = 0;
    while (done < data.length) {
      const pos = offset + done;
      const index = Math.floor(pos / cs);
      const within = pos - index * cs;
      const n = Math.min(cs - within, data.length - done);
      const piece = data.subarray(done, done + n);
      let chunk = this.#chunks.get(index);
      if (chunk === undefined && !isZero(piece)) {
        chunk = new Uint8Array(Math.min(cs, this.size - index * cs));
        this.#chunks.set(index, chunk);
      }
      chunk?.set(piece, within);
      done += n;
    }
  }
}
