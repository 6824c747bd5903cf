/**
 * Read-only devices for browsers (and anywhere else with a Blob): BlobDevice reads a
 * Blob or File lazily, one slice per read, so a multi-GiB image picked in a file input
 * is never loaded whole; ArrayBufferDevice serves bytes already in memory.
 *
 * Both are always read-only: writes fail with FsError("EROFS"). To modify an image in
 * memory, copy it into a MemoryDevice (MemoryDevice.from).
 */

import { FsError } from "../errors.js";
import { type BlockDevice, checkAccess, checkOpen, settle } from "./block_device.js";

/** What BlobDevice needs of a Blob or File (a real one always fits). */
export interface BlobLike {
  readonly size: number;
  slice(start?: number, end?: number): { arrayBuffer(): Promise<ArrayBuffer> };
}

export interface BlobDeviceOptions {
  description?: string;
}

export class BlobDevice implements BlockDevice {
  readonly size: number;
  readonly readOnly = true;
  readonly description: string;
  readonly #blob: BlobLike;
  #closed = false;

  constructor(blob: BlobLike, options: BlobDeviceOptions = {}) {
    this.#blob = blob;
    this.size = blob.size;
    this.description = options.description ?? "blob device";
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkAccess(this, "read", offset, length, this.#closed);
    let buf: ArrayBuffer;
    try {
      buf = await this.#blob.slice(offset, offset + length).arrayBuffer();
    } catch (e) {
      // A File changed or removed since it was picked rejects with NotReadableError.
      throw new FsError("EIO", `Cannot read ${length} bytes at offset ${offset} of ${this.description}`, { cause: e });
    }
    if (buf.byteLength !== length) {
      throw new FsError(
        "EIO",
        `Cannot read ${length} bytes at offset ${offset} of ${this.description}: got ${buf.byteLength} bytes`,
      );
    }
    return new Uint8Array(buf);
  }

  async readInto(offset: number, dest: Uint8Array): Promise<void> {
    dest.set(await this.read(offset, dest.length));
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return settle(() => {
      checkAccess(this, "write", offset, data.length, this.#closed);
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
}

export interface ArrayBufferDeviceOptions {
  description?: string;
}

/**
 * A read-only device over bytes in memory. The bytes are not copied, so later changes
 * by the owner show through; reads return copies, like every other device.
 */
export class ArrayBufferDevice implements BlockDevice {
  readonly size: number;
  readonly readOnly = true;
  readonly description: string;
  readonly #bytes: Uint8Array;
  #closed = false;

  constructor(bytes: ArrayBufferLike | Uint8Array, options: ArrayBufferDeviceOptions = {}) {
    this.#bytes = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    this.size = this.#bytes.length;
    this.description = options.description ?? "array buffer device";
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return settle(() => {
      checkAccess(this, "read", offset, length, this.#closed);
      return this.#bytes.slice(offset, offset + length);
    });
  }

  readInto(offset: number, dest: Uint8Array): Promise<void> {
    return settle(() => {
      checkAccess(this, "read", offset, dest.length, this.#closed);
      dest.set(this.#bytes.subarray(offset, offset + dest.length));
    });
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return settle(() => {
      checkAccess(this, "write", offset, data.length, this.#closed);
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
}
