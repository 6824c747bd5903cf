import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AssertionError } from "../debug/assert.js";
import type { BlockDevice } from "../device/block_device.js";
import { MemoryDevice } from "../device/memory.js";
import { FsError, isFsError } from "../errors.js";
import { BufferCache } from "./buffer_cache.js";

const BS = 1024;

/** Wraps a MemoryDevice, logging I/O; reads can be held at a gate, writes made to fail. */
class TestDevice implements BlockDevice {
  readonly inner: MemoryDevice;
  readonly reads: { block: number; count: number }[] = [];
  readonly writes: { block: number; count: number }[] = [];
  flushes = 0;
  failWrites = false;
  gate: Promise<void> | undefined;

  constructor(blocks: number, options: { readOnly?: boolean } = {}) {
    this.inner = new MemoryDevice(blocks * BS, { chunkSize: 4096, ...options });
  }
  get description(): string {
    return "test device";
  }
  get size(): number {
    return this.inner.size;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  /** Captures the data when called and delivers it when the gate opens (a slow read). */
  async read(offset: number, length: number): Promise<Uint8Array> {
    this.reads.push({ block: offset / BS, count: length / BS });
    const data = await this.inner.read(offset, length);
    await this.gate;
    return data;
  }
  async readInto(offset: number, dest: Uint8Array): Promise<void> {
    dest.set(await this.read(offset, dest.length));
  }
  /** Holds writes (after `onWrite` is called) until it resolves. */
  writeGate: Promise<void> | undefined;
  onWrite: (() => void) | undefined;
  async write(offset: number, data: Uint8Array): Promise<void> {
    const copy = data.slice();
    this.onWrite?.();
    await this.writeGate;
    if (this.failWrites) throw new FsError("EIO", `Cannot write at offset ${offset}: test failure`);
    this.writes.push({ block: offset / BS, count: copy.length / BS });
    await this.inner.write(offset, copy);
  }
  flush(): Promise<void> {
    this.flushes++;
    return Promise.resolve();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  async block(n: number): Promise<Uint8Array> {
    return this.inner.read(n * BS, BS);
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

async function fill(dev: TestDevice, n: number, value: number): Promise<void> {
  await dev.inner.write(n * BS, new Uint8Array(BS).fill(value));
}

async function modify(cache: BufferCache, n: number, value: number): Promise<void> {
  await cache.withBlock(n, (b) => {
    b.fill(value);
    cache.markDirty(n);
  });
}

describe("BufferCache", () => {
  it("get() counts a miss, then serves hits without device reads", async () => {
    const dev = new TestDevice(16);
    await fill(dev, 3, 7);
    const cache = new BufferCache(dev, BS);
    expect((await cache.get(3))[0]).toBe(7);
    expect(await cache.get(3)).toBe(await cache.get(3));
    expect(dev.reads).toEqual([{ block: 3, count: 1 }]);
    expect(cache.stats).toMatchObject({ hits: 2, misses: 1, deviceReads: 1, bytesCached: BS });
  });

  it("stays within maxBytes under a sequential scan of ten times its size", async () => {
    const dev = new TestDevice(160);
    const cache = new BufferCache(dev, BS, { maxBytes: 16 * BS });
    for (let n = 0; n < 160; n++) {
      await cache.get(n);
      expect(cache.stats.bytesCached).toBeLessThanOrEqual(16 * BS);
    }
    expect(cache.stats).toMatchObject({ misses: 160, evictions: 144, overshoots: 0, peakBytesCached: 16 * BS });
    dev.reads.length = 0;
    for (let n = 144; n < 160; n++) await cache.get(n); // the last 16 are cached
    expect(dev.reads).toEqual([]);
    await cache.get(0);
    expect(dev.reads).toEqual([{ block: 0, count: 1 }]);
  });

  it("evicts the least recently used block, not the oldest loaded", async () => {
    const dev = new TestDevice(8);
    const cache = new BufferCache(dev, BS, { maxBytes: 3 * BS });
    await cache.get(0);
    await cache.get(1);
    await cache.get(2);
    await cache.get(0); // 1 is now least recent
    await cache.get(3);
    dev.reads.length = 0;
    await cache.get(0);
    await cache.get(2);
    expect(dev.reads).toEqual([]);
    await cache.get(1);
    expect(dev.reads).toEqual([{ block: 1, count: 1 }]);
  });

  it("getMany() reads all missing blocks with one device read, keeping cached copies", async () => {
    const dev = new TestDevice(64);
    for (let n = 0; n < 64; n++) await fill(dev, n, n);
    const cache = new BufferCache(dev, BS);
    await modify(cache, 12, 200); // dirty and cached, between missing blocks
    dev.reads.length = 0;
    const blocks = await cache.getMany(10, 8);
    expect(dev.reads).toEqual([{ block: 10, count: 8 }]);
    expect(blocks.map((b) => b[0])).toEqual([10, 11, 200, 13, 14, 15, 16, 17]);
    expect(blocks[3]).toBe(await cache.get(13));
    expect(cache.stats.misses).toBe(1 + 7);
    dev.reads.length = 0;
    await cache.getMany(10, 8);
    expect(dev.reads).toEqual([]);
  });

  it("getMany() reads only the missing middle of a partly cached run", async () => {
    const dev = new TestDevice(64);
    const cache = new BufferCache(dev, BS);
    await cache.get(0);
    await cache.get(5);
    dev.reads.length = 0;
    await cache.getMany(0, 6);
    expect(dev.reads).toEqual([{ block: 1, count: 4 }]);
  });

  it("issues one device read for concurrent gets of the same missing block", async () => {
    const dev = new TestDevice(16);
    await fill(dev, 4, 9);
    const cache = new BufferCache(dev, BS);
    const g = gate();
    dev.gate = g.promise;
    const pending = [cache.get(4), cache.get(4), cache.pin(4), cache.getMany(3, 3), cache.get(4)];
    g.open();
    const [a, b, c, many, e] = await Promise.all(pending);
    expect(dev.reads).toEqual([
      { block: 4, count: 1 },
      { block: 3, count: 3 }, // getMany's span covers the in-flight block 4 but does not re-install it
    ]);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(e).toBe(a);
    expect((many as Uint8Array[])[1]).toBe(a);
    expect((a as Uint8Array)[0]).toBe(9);
    expect(cache.stats.misses).toBe(3);
    cache.unpin(4);
  });

  it("writes the oldest dirty blocks back, coalesced, before evicting them", async () => {
    const dev = new TestDevice(64);
    const cache = new BufferCache(dev, BS, { maxBytes: 16 * BS });
    for (let n = 0; n < 16; n++) await modify(cache, n, n + 1);
    expect(dev.writes).toEqual([]);
    await cache.get(20);
    // Down to the low watermark (16 - 16/8 = 14 blocks): the three oldest, in one write.
    expect(dev.writes).toEqual([{ block: 0, count: 3 }]);
    for (let n = 0; n < 3; n++) expect((await dev.block(n))[0]).toBe(n + 1);
    expect(cache.stats).toMatchObject({ evictions: 3, bytesCached: 14 * BS, blocksWritten: 3, overshoots: 0 });
    expect(cache.isDirty(3)).toBe(true);
    dev.reads.length = 0;
    await cache.get(20); // the new clean block was not sacrificed for the older dirty ones
    await cache.get(3);
    expect(dev.reads).toEqual([]);
  });

  it("drops clean blocks at the LRU end without writing", async () => {
    const dev = new TestDevice(64);
    const cache = new BufferCache(dev, BS, { maxBytes: 4 * BS });
    await cache.get(0);
    await modify(cache, 1, 1);
    await cache.get(2);
    await cache.get(3);
    await cache.get(4); // evicts 0 (clean)
    expect(dev.writes).toEqual([]);
    expect(cache.stats.peakBytesCached).toBe(4 * BS);
    await cache.get(5); // 1 is dirty at the LRU end: written, then evicted
    expect(dev.writes).toEqual([{ block: 1, count: 1 }]);
    expect(cache.stats.bytesCached).toBeLessThanOrEqual(4 * BS);
  });

  it("flush() writes dirty blocks in ascending order, adjacent ones in one write, then flushes the device", async () => {
    const dev = new TestDevice(64);
    const cache = new BufferCache(dev, BS, { maxIoBytes: 4 * BS });
    for (const n of [13, 7, 5, 6, 10, 12, 30, 31, 32, 33, 34, 35]) await modify(cache, n, n);
    await cache.flush();
    expect(dev.writes).toEqual([
      { block: 5, count: 3 },
      { block: 10, count: 1 },
      { block: 12, count: 2 },
      { block: 30, count: 4 }, // split at maxIoBytes
      { block: 34, count: 2 },
    ]);
    expect(dev.flushes).toBe(1);
    for (const n of [5, 6, 7, 10, 12, 13, 35]) expect((await dev.block(n))[BS - 1]).toBe(n);
    dev.writes.length = 0;
    await cache.flush();
    expect(dev.writes).toEqual([]);
  });

  it("flush() captures contents at the start; a block re-dirtied meanwhile is written next time", async () => {
    const dev = new TestDevice(8);
    const cache = new BufferCache(dev, BS);
    await modify(cache, 1, 1);
    const flushing = cache.flush();
    await modify(cache, 1, 2);
    await flushing;
    expect((await dev.block(1))[0]).toBe(1);
    expect(cache.isDirty(1)).toBe(true);
    await cache.flush();
    expect((await dev.block(1))[0]).toBe(2);
  });

  it("keeps pinned blocks through eviction and records the overshoot", async () => {
    const dev = new TestDevice(64);
    const cache = new BufferCache(dev, BS, { maxBytes: 2 * BS });
    const pinned = await cache.pin(0);
    pinned[0] = 77;
    for (let n = 1; n < 40; n++) await cache.get(n);
    expect(await cache.get(0)).toBe(pinned);
    expect(cache.stats.overshoots).toBe(0);
    await cache.pin(1);
    await cache.pin(2);
    expect(cache.stats.bytesCached).toBe(3 * BS);
    expect(cache.stats.overshoots).toBeGreaterThan(0);
    cache.unpin(0);
    cache.unpin(1);
    cache.unpin(2);
    await cache.get(3);
    expect(cache.stats.bytesCached).toBeLessThanOrEqual(2 * BS);
  });

  it("markDirty() requires a pin, and a writable device", async () => {
    const cache = new BufferCache(new TestDevice(8), BS);
    await cache.get(1);
    expect(() => {
      cache.markDirty(1);
    }).toThrow(AssertionError);
    expect(() => {
      cache.unpin(1);
    }).toThrow(AssertionError);
    const ro = new BufferCache(new TestDevice(8, { readOnly: true }), BS);
    await ro.pin(1);
    expect(() => {
      ro.markDirty(1);
    }).toThrow(/EROFS/);
    await expect(ro.pinNew(2)).rejects.toSatisfy((e) => isFsError(e, "EROFS"));
  });

  it("withBlock() unpins when the callback throws", async () => {
    const cache = new BufferCache(new TestDevice(8), BS);
    await expect(
      cache.withBlock(2, () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    cache.invalidate(2); // would assert if still pinned
  });

  it("pinNew() hands out a zeroed dirty block without reading the device", async () => {
    const dev = new TestDevice(8);
    await fill(dev, 5, 9);
    const cache = new BufferCache(dev, BS);
    const b = await cache.pinNew(5);
    expect(b).toEqual(new Uint8Array(BS));
    expect(dev.reads).toEqual([]);
    expect(cache.isDirty(5)).toBe(true);
    b[0] = 1;
    cache.unpin(5);
    await cache.flush();
    expect((await dev.block(5))[0]).toBe(1);
    expect((await dev.block(5))[1]).toBe(0);
  });

  it("keeps blocks dirty when their write fails; flush reports it and retries", async () => {
    const dev = new TestDevice(8);
    const cache = new BufferCache(dev, BS);
    await modify(cache, 1, 5);
    await modify(cache, 3, 6);
    dev.failWrites = true;
    await expect(cache.flush()).rejects.toSatisfy((e) => isFsError(e, "EIO"));
    expect(cache.isDirty(1) && cache.isDirty(3)).toBe(true);
    expect(cache.stats.writeErrors).toBe(2);
    dev.failWrites = false;
    await cache.flush();
    expect((await dev.block(3))[0]).toBe(6);
  });

  it("keeps dirty blocks whose eviction write-back failed, and stops retrying until a flush", async () => {
    const dev = new TestDevice(16);
    const cache = new BufferCache(dev, BS, { maxBytes: 2 * BS });
    await modify(cache, 0, 1);
    await modify(cache, 1, 2);
    dev.failWrites = true;
    expect((await cache.get(5))[0]).toBe(0); // the read itself succeeds
    expect(cache.stats.writeErrors).toBe(1);
    expect(cache.isDirty(0) && cache.isDirty(1)).toBe(true);
    expect(cache.stats.bytesCached).toBe(2 * BS); // block 5 made way: dirty blocks are skipped now
    await cache.get(6);
    expect(cache.stats.writeErrors).toBe(1);
    await expect(cache.flush()).rejects.toSatisfy((e) => isFsError(e, "EIO"));
    dev.failWrites = false;
    await cache.flush();
    expect((await dev.block(1))[0]).toBe(2);
    await cache.get(7);
    expect(cache.stats.bytesCached).toBe(2 * BS);
  });

  it("overshoots, and records it, when pinned blocks fill the cache", async () => {
    const dev = new TestDevice(16);
    const cache = new BufferCache(dev, BS, { maxBytes: 2 * BS });
    await modify(cache, 0, 1);
    const pinned = [await cache.pin(1), await cache.pin(2), await cache.pin(3)];
    expect(pinned.length).toBe(3);
    expect(cache.stats.bytesCached).toBe(3 * BS);
    expect(cache.stats.overshoots).toBeGreaterThan(0);
    expect(await dev.block(0)).toEqual(new Uint8Array(BS).fill(1)); // written back on the way
  });

  it("invalidate() discards the cached copy, dirty changes included", async () => {
    const dev = new TestDevice(8);
    await fill(dev, 2, 4);
    const cache = new BufferCache(dev, BS);
    await modify(cache, 2, 8);
    cache.invalidate(2);
    expect(cache.stats.bytesCached).toBe(0);
    expect((await cache.get(2))[0]).toBe(4);
    await cache.pin(2);
    expect(() => {
      cache.invalidate(2);
    }).toThrow(AssertionError);
  });

  it("dropClean() drops clean blocks only: dirty and pinned ones stay, nothing is written", async () => {
    const dev = new TestDevice(8);
    await fill(dev, 1, 7);
    const cache = new BufferCache(dev, BS);
    for (const b of [0, 1, 2, 3]) await cache.get(b);
    await modify(cache, 1, 9); // dirty
    await cache.pin(2);
    cache.dropClean();
    expect(dev.writes).toEqual([]);
    expect(cache.stats.bytesCached).toBe(2 * BS);
    expect(cache.has(0) || cache.has(3)).toBe(false);
    expect(cache.isDirty(1)).toBe(true);
    expect(cache.has(2)).toBe(true);
    cache.unpin(2);
    await cache.flush();
    expect((await dev.block(1))[0]).toBe(9);
  });

  it("invalidate() detaches a read in flight so it cannot install old data", async () => {
    const dev = new TestDevice(8);
    await fill(dev, 2, 1);
    const cache = new BufferCache(dev, BS);
    const g = gate();
    dev.gate = g.promise;
    const reading = cache.get(2);
    cache.invalidate(2);
    await fill(dev, 2, 2);
    g.open();
    expect((await reading)[0]).toBe(1); // the caller still gets what it read
    dev.gate = undefined;
    expect((await cache.get(2))[0]).toBe(2);
  });

  it("makes reads of a block invalidated during its write-back wait for the write", async () => {
    const dev = new TestDevice(8);
    const cache = new BufferCache(dev, BS);
    await modify(cache, 2, 5);
    const g = gate();
    dev.writeGate = g.promise;
    const started = new Promise<void>((resolve) => {
      dev.onWrite = resolve;
    });
    const flushing = cache.flush();
    await started;
    expect(cache.isDirty(2)).toBe(false); // captured for the write in flight
    cache.invalidate(2);
    const reading = cache.readUncached(2, 1);
    const getting = cache.get(2);
    g.open();
    expect((await reading)[0]).toBe(5);
    expect((await getting)[0]).toBe(5);
    await flushing;
  });

  it("does not evict a block while its write-back is in flight, so a failed write keeps it", async () => {
    const dev = new TestDevice(8);
    const cache = new BufferCache(dev, BS, { maxBytes: 2 * BS });
    await modify(cache, 0, 5);
    const g = gate();
    dev.writeGate = g.promise;
    const started = new Promise<void>((resolve) => {
      dev.onWrite = resolve;
    });
    const flushing = cache.flush();
    await started;
    for (const n of [1, 2, 3]) await cache.get(n);
    dev.failWrites = true;
    g.open();
    await expect(flushing).rejects.toSatisfy((e) => isFsError(e, "EIO"));
    expect(cache.isDirty(0)).toBe(true);
    expect((await cache.get(0))[0]).toBe(5);
  });

  it("readUncached() bypasses the cache but sees cached changes", async () => {
    const dev = new TestDevice(32);
    for (let n = 0; n < 32; n++) await fill(dev, n, n);
    const cache = new BufferCache(dev, BS, { maxBytes: 4 * BS });
    await modify(cache, 3, 99);
    dev.reads.length = 0;
    const data = await cache.readUncached(0, 32);
    expect(Array.from({ length: 32 }, (_, i) => data[i * BS])).toEqual(Array.from({ length: 32 }, (_, i) => (i === 3 ? 99 : i)));
    expect(cache.stats).toMatchObject({ bytesCached: BS, misses: 1 }); // only the modify's
    expect(dev.reads).toEqual([{ block: 0, count: 32 }]);
  });

  it("writeUncached() writes through, updating and cleaning cached copies", async () => {
    const dev = new TestDevice(16);
    const cache = new BufferCache(dev, BS);
    await modify(cache, 5, 1);
    const data = new Uint8Array(4 * BS).fill(3);
    await cache.writeUncached(4, data);
    expect(dev.writes).toEqual([{ block: 4, count: 4 }]);
    expect(cache.isDirty(5)).toBe(false);
    expect((await cache.get(5))[0]).toBe(3);
    expect(cache.stats.bytesCached).toBe(BS);
    await cache.flush();
    expect(dev.writes.length).toBe(1);
  });

  it("writeUncached() keeps a read in flight from caching the old contents", async () => {
    const dev = new TestDevice(16);
    const cache = new BufferCache(dev, BS);
    const g = gate();
    dev.gate = g.promise;
    const reading = cache.get(6);
    const writing = cache.writeUncached(6, new Uint8Array(BS).fill(8));
    await writing;
    g.open();
    await reading;
    dev.gate = undefined;
    expect((await cache.get(6))[0]).toBe(8);
  });
});

type Op =
  | { kind: "get"; n: number }
  | { kind: "getMany"; n: number; count: number }
  | { kind: "add"; n: number; at: number; value: number }
  | { kind: "flush" }
  | { kind: "readUncached"; n: number; count: number }
  | { kind: "writeUncached"; n: number; value: number }
  | { kind: "invalidate"; n: number };

describe("BufferCache against a Map model", () => {
  const BLOCKS = 8;
  const SMALL = 16; // block size: small enough to compare whole devices cheaply
  const block = fc.integer({ min: 0, max: BLOCKS - 1 });
  const count = fc.integer({ min: 1, max: 4 });
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant("get" as const), n: block }),
    fc.record({ kind: fc.constant("getMany" as const), n: block, count }),
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("add" as const), n: block, at: fc.integer({ min: 0, max: SMALL - 1 }), value: fc.integer({ min: 1, max: 255 }) }) },
    fc.record({ kind: fc.constant("flush" as const) }),
    fc.record({ kind: fc.constant("readUncached" as const), n: block, count }),
    fc.record({ kind: fc.constant("writeUncached" as const), n: block, value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant("invalidate" as const), n: block }),
  );

  /**
   * Keeps a batch's outcome independent of the interleaving: byte additions commute,
   * so any number of "add"s may share a block, but a block written uncached gets no
   * other writer, and only blocks nobody modifies in the batch are invalidated.
   */
  function commuting(ops: Op[]): { ops: Op[]; touched: Set<number> } {
    const added = new Set<number>();
    const written = new Set<number>();
    const kept = ops.filter((o) => {
      if (o.kind === "add") {
        if (written.has(o.n)) return false;
        added.add(o.n);
      } else if (o.kind === "writeUncached") {
        if (written.has(o.n) || added.has(o.n)) return false;
        written.add(o.n);
      }
      return true;
    });
    const touched = new Set([...added, ...written]);
    return { ops: kept.filter((o) => o.kind !== "invalidate" || !touched.has(o.n)), touched };
  }

  it("after flush, the device holds exactly the model's contents under any interleaving", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.array(op, { minLength: 1, maxLength: 6 }), { maxLength: 15 }),
        fc.integer({ min: 1, max: 4 }),
        async (s, batches, cacheBlocks) => {
          const mem = new MemoryDevice(BLOCKS * SMALL, { chunkSize: 32 });
          const io: BlockDevice = {
            description: "scheduled device",
            size: mem.size,
            readOnly: false,
            read: (o, l) => s.schedule(mem.read(o, l), `read ${o / SMALL}+${l / SMALL}`), // data as of the call
            readInto: (o, d) => mem.readInto(o, d),
            write: async (o, d) => {
              const copy = d.slice();
              await s.schedule(Promise.resolve(), `write ${o / SMALL}+${d.length / SMALL}`);
              await mem.write(o, copy);
            },
            flush: async () => {
              await s.schedule(Promise.resolve(), "flush");
            },
            close: () => mem.close(),
          };
          const cache = new BufferCache(io, SMALL, { maxBytes: cacheBlocks * SMALL, maxIoBytes: 2 * SMALL });
          const model = new Map<number, Uint8Array>();
          const expected = (n: number): Uint8Array => model.get(n) ?? new Uint8Array(SMALL);
          for (const batch of batches) {
            const { ops, touched } = commuting(batch);
            // The model jumps to the batch's outcome; blocks it leaves alone must read the same throughout.
            for (const o of ops) {
              if (o.kind === "add") {
                const m = expected(o.n).slice();
                m[o.at] = (m[o.at]! + o.value) & 0xff;
                model.set(o.n, m);
              } else if (o.kind === "writeUncached") {
                model.set(o.n, new Uint8Array(SMALL).fill(o.value));
              }
            }
            const checkRun = (first: number, blocks: Uint8Array[]): void => {
              blocks.forEach((b, i) => {
                if (!touched.has(first + i)) expect(b).toEqual(expected(first + i));
              });
            };
            const split = (run: Uint8Array): Uint8Array[] =>
              Array.from({ length: run.length / SMALL }, (_, i) => run.subarray(i * SMALL, (i + 1) * SMALL));
            const runOp = async (o: Op): Promise<void> => {
              await s.schedule(Promise.resolve(), `start ${o.kind}`); // ops start in any order, between I/Os
              switch (o.kind) {
                case "get":
                  checkRun(o.n, [await cache.get(o.n)]);
                  return;
                case "getMany":
                  checkRun(o.n, await cache.getMany(o.n, Math.min(o.count, BLOCKS - o.n)));
                  return;
                case "add":
                  await cache.withBlock(o.n, (b) => {
                    b[o.at] = (b[o.at]! + o.value) & 0xff;
                    cache.markDirty(o.n);
                  });
                  return;
                case "flush":
                  await cache.flush();
                  return;
                case "readUncached":
                  checkRun(o.n, split(await cache.readUncached(o.n, Math.min(o.count, BLOCKS - o.n))));
                  return;
                case "writeUncached":
                  await cache.writeUncached(o.n, new Uint8Array(SMALL).fill(o.value));
                  return;
                case "invalidate":
                  if (!cache.isDirty(o.n)) cache.invalidate(o.n); // clean: the device has (or is getting) its contents
                  return;
              }
            };
            await s.waitFor(Promise.all(ops.map(runOp)));
            // Every block, touched or not, now reads as the model says (without filling the cache).
            split(await s.waitFor(cache.readUncached(0, BLOCKS))).forEach((b, n) => {
              expect(b).toEqual(expected(n));
            });
          }
          await s.waitFor(cache.flush());
          for (let n = 0; n < BLOCKS; n++) {
            expect(cache.isDirty(n)).toBe(false);
            expect(await mem.read(n * SMALL, SMALL)).toEqual(expected(n));
          }
        },
      ),
      { numRuns: Number(process.env.CACHE_MODEL_RUNS ?? 300) },
    );
  });
});
