/**
 * Block writes for mkfs: adjacent blocks are coalesced into one device write (up to
 * 1 MiB), and on a device known to read as zeros an all-zero buffer is not written at
 * all, so a new image stays sparse. Counts what it writes (s_kbytes_written).
 */

import type { BlockDevice } from "../../src/device/block_device.js";

const MAX_COALESCE = 1 << 20;
const ZERO_CHECK_LIMIT = 64 * 1024;

function isZero(b: Uint8Array): boolean {
  const words = b.byteOffset % 4 === 0 && b.length % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, b.length / 4) : undefined;
  if (words !== undefined) {
    for (const w of words) if (w !== 0) return false;
    return true;
  }
  for (const x of b) if (x !== 0) return false;
  return true;
}

export class BlockWriter {
  readonly #dev: BlockDevice;
  readonly #bs: number;
  readonly #knownZero: boolean;
  #start = -1;
  #chunks: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Bytes handed to the device so far. */
  bytesWritten = 0;

  constructor(dev: BlockDevice, blockSize: number, knownZero: boolean) {
    this.#dev = dev;
    this.#bs = blockSize;
    this.#knownZero = knownZero;
  }

  /** Queue `data` (whole blocks, or less at byte offsets via writeAt) at block `blk`. */
  async write(blk: number, data: Uint8Array): Promise<void> {
    await this.writeAt(blk * this.#bs, data);
  }

  /** Queue `data` at byte `offset`. */
  async writeAt(offset: number, data: Uint8Array): Promise<void> {
    if (this.#knownZero && data.length <= ZERO_CHECK_LIMIT && isZero(data)) return;
    const end = this.#start + this.#pendingBytes;
    if (this.#pendingBytes > 0 && offset === end && this.#pendingBytes + data.length <= MAX_COALESCE) {
      this.#chunks.push(data);
      this.#pendingBytes += data.length;
      return;
    }
    await this.flush();
    if (data.length >= MAX_COALESCE) {
      await this.#dev.write(offset, data);
      this.bytesWritten += data.length;
      return;
    }
    this.#start = offset;
    this.#chunks = [data];
    this.#pendingBytes = data.length;
  }

  /** Write zeros over [blk, blk + count) unless the device already reads as zeros. */
  async zero(blk: number, count: number): Promise<void> {
    if (this.#knownZero || count === 0) return;
    const step = Math.max(1, Math.floor(MAX_COALESCE / this.#bs));
    const buf = new Uint8Array(Math.min(count, step) * this.#bs);
    for (let b = blk; b < blk + count; b += step) {
      const n = Math.min(step, blk + count - b);
      await this.flush();
      await this.#dev.write(b * this.#bs, n * this.#bs === buf.length ? buf : buf.subarray(0, n * this.#bs));
      this.bytesWritten += n * this.#bs;
    }
  }

  /** Send what is queued to the device. */
  async flush(): Promise<void> {
    if (this.#pendingBytes === 0) return;
    let data: Uint8Array;
    if (this.#chunks.length === 1) data = this.#chunks[0]!; // length checked above
    else {
      data = new Uint8Array(this.#pendingBytes);
      let o = 0;
      for (const c of this.#chunks) {
        data.set(c, o);
        o += c.length;
      }
    }
    const start = this.#start;
    this.#chunks = [];
    this.#pendingBytes = 0;
    this.#start = -1;
    await this.#dev.write(start, data);
    this.bytesWritten += data.length;
  }
}
