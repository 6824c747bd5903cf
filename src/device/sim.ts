/**
 * SimDevice: the schedule explorer's block device. Storage is a copy-on-write overlay on an
 * image held in memory (one formatted image serves hundreds of explored schedules; each
 * keeps only the 4 KiB chunks it wrote), and every request passes a scheduling point before
 * it completes ("io:read", "io:write", "io:flush"), so the explorer chooses the order in
 * which I/O completes relative to everything else. Nothing real is awaited: with a
 * simulated scheduler the run is deterministic.
 */

import { type BlockDevice, checkAccess, checkOpen } from "./block_device.js";

/** Where a request waits its turn (a SimScheduler, structurally; device/ does not import sync/). */
export interface IoGate {
  point(task: null, label: string): Promise<void> | undefined;
}

const CHUNK = 4096;

/** Calls `fn(chunk, offsetInChunk, doneSoFar, bytes)` for each chunk-sized piece of [offset, offset + length). */
function eachChunk(offset: number, length: number, fn: (c: number, at: number, done: number, n: number) => void): void {
  for (let done = 0; done < length; ) {
    const pos = offset + done;
    const c = Math.floor(pos / CHUNK);
    const at = pos - c * CHUNK;
    const n = Math.min(CHUNK - at, length - done);
    fn(c, at, done, n);
    done += n;
  }
}

export class SimDevice implements BlockDevice {
  readonly size: number;
  readonly readOnly: boolean;
  readonly description: string;
  readonly #base: Uint8Array;
  readonly #overlay = new Map<number, Uint8Array>();
  readonly #gate: IoGate;
  #closed = false;
  /** Requests served, by kind (for reports). */
  readonly stats = { reads: 0, writes: 0, flushes: 0 };

  /** `base` is read, never written; `size` defaults to its length (more reads as zeros). */
  constructor(base: Uint8Array, gate: IoGate, opts: { size?: number; description?: string; readOnly?: boolean } = {}) {
    this.#base = base;
    this.#gate = gate;
    this.size = opts.size ?? base.length;
    this.readOnly = opts.readOnly ?? false;
    this.description = opts.description ?? "simulated device";
  }

  /** Bytes held by the overlay. */
  get bytesWritten(): number {
    return this.#overlay.size * CHUNK;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(offset, out);
    return out;
  }

  async readInto(offset: number, dest: Uint8Array): Promise<void> {
    checkAccess(this, "read", offset, dest.length, this.#closed);
    await this.#turn("io:read");
    this.stats.reads++;
    eachChunk(offset, dest.length, (c, at, done, n) => {
      const chunk = this.#overlay.get(c);
      const pos = offset + done;
      if (chunk !== undefined) dest.set(chunk.subarray(at, at + n), done);
      else if (pos < this.#base.length) dest.set(this.#base.subarray(pos, Math.min(pos + n, this.#base.length)), done);
      else dest.fill(0, done, done + n);
    });
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    checkAccess(this, "write", offset, data.length, this.#closed);
    // Copy before the turn: the caller may reuse its buffer once write() has been called.
    const copy = data.slice();
    await this.#turn("io:write");
    this.stats.writes++;
    eachChunk(offset, copy.length, (c, at, done, n) => {
      let chunk = this.#overlay.get(c);
      if (chunk === undefined) {
        chunk = new Uint8Array(CHUNK);
        const b = c * CHUNK;
        if (b < this.#base.length) chunk.set(this.#base.subarray(b, Math.min(b + CHUNK, this.#base.length)));
        this.#overlay.set(c, chunk);
      }
      chunk.set(copy.subarray(done, done + n), at);
    });
  }

  async flush(): Promise<void> {
    checkOpen(this, "flush", this.#closed);
    await this.#turn("io:flush");
    this.stats.flushes++;
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /** The whole device as one buffer (for handing an explored image to e2fsck). */
  snapshot(): Uint8Array {
    const out = new Uint8Array(this.size);
    out.set(this.#base.subarray(0, Math.min(this.#base.length, this.size)));
    for (const [c, chunk] of this.#overlay) out.set(chunk.subarray(0, Math.min(CHUNK, this.size - c * CHUNK)), c * CHUNK);
    return out;
  }

  async #turn(label: string): Promise<void> {
    const p = this.#gate.point(null, label);
    if (p !== undefined) await p;
  }
}
