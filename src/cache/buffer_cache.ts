/**
 * BufferCache: fixed-size blocks of one BlockDevice, cached in memory with LRU
 * eviction, pinning and dirty write-back. Kernel counterpart: fs/buffer.c
 * (sb_bread, get_bh/brelse, mark_buffer_dirty, sync_dirty_buffer, bforget);
 * e2fsprogs': the unix_io block cache.
 *
 * Design note.
 * - Entries live in a Map in LRU order (oldest first; a hit moves the entry to the end).
 *   Each entry owns a fresh Uint8Array that is never reused, so a buffer handed out and
 *   later evicted still holds the block's contents as of its last use.
 * - Buffers are shared. `get` returns the cached buffer for reading; it stays valid
 *   until the caller's next await. To modify a block, or keep it across awaits, pin it
 *   (`pin`/`unpin`, or `withBlock`); `markDirty` requires a pin, as mark_buffer_dirty
 *   requires a reference.
 * - Eviction keeps bytesCached <= maxBytes, oldest first, never touching pinned blocks
 *   or blocks being written. Clean blocks go first; when only dirty ones remain, all
 *   unpinned dirty blocks are written back in one coalesced pass and then evicted as
 *   needed. If pinned or failing blocks keep the cache over the limit, it overshoots
 *   and `stats.overshoots` counts it. A failed write-back during eviction keeps its
 *   blocks dirty and cached; the error is reported by the next `flush`, and eviction
 *   stops writing until a flush succeeds.
 * - One device read per missing block: concurrent requests share the in-flight read
 *   (`#loading`); `getMany` fetches all its missing blocks with one read.
 * - Writes (write-back, flush, writeUncached) run one at a time through `#serialize`,
 *   in ascending block order, adjacent blocks coalesced into one device write of at
 *   most maxIoBytes. A read of a block with a queued or running write waits for the
 *   write queue to drain, so it can never cache stale data.
 */

import { assert } from "../debug/assert.js";
import { FsError } from "../errors.js";
import type { BlockDevice } from "../device/block_device.js";

export interface BufferCacheOptions {
  /** Upper bound on cached block bytes; 32 MiB by default. At least one block. */
  maxBytes?: number;
  /** Largest single device write when coalescing; 1 MiB by default. */
  maxIoBytes?: number;
}

export interface BufferCacheStats {
  /** Requests served from the cache or by joining an in-flight read. */
  hits: number;
  /** Blocks read from the device into the cache. */
  misses: number;
  /** Blocks dropped to stay under maxBytes (not counting invalidate). */
  evictions: number;
  bytesCached: number;
  peakBytesCached: number;
  /** Times eviction could not get back under maxBytes (all pinned, dirty or failing). */
  overshoots: number;
  deviceReads: number;
  deviceWrites: number;
  blocksWritten: number;
  writeErrors: number;
}

interface Entry {
  readonly blockNo: number;
  readonly data: Uint8Array;
  pins: number;
  /** Part of a write-back in progress: not evictable. */
  writeback: boolean;
}

interface BlockRange {
  readonly first: number;
  readonly end: number;
}

const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;
const DEFAULT_MAX_IO_BYTES = 1024 * 1024;

export class BufferCache {
  readonly device: BlockDevice;
  readonly blockSize: number;
  readonly maxBytes: number;
  readonly #maxIoBlocks: number;
  /** LRU order: first = least recently used. */
  readonly #entries = new Map<number, Entry>();
  readonly #dirty = new Set<Entry>();
  readonly #loading = new Map<number, Promise<Entry>>();
  /** Block ranges with a write queued or running. */
  readonly #pendingWrites = new Set<BlockRange>();
  #writeTail: Promise<void> = Promise.resolve();
  #writebackFailed = false;
  #bytes = 0;
  readonly #stats: BufferCacheStats = {
    hits: 0, misses: 0, evictions: 0, bytesCached: 0, peakBytesCached: 0, overshoots: 0,
    deviceReads: 0, deviceWrites: 0, blocksWritten: 0, writeErrors: 0,
  };

  constructor(device: BlockDevice, blockSize: number, options: BufferCacheOptions = {}) {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    const maxIoBytes = options.maxIoBytes ?? DEFAULT_MAX_IO_BYTES;
    assert(Number.isSafeInteger(blockSize) && blockSize > 0, () => `Invalid block size ${blockSize}`);
    assert(Number.isSafeInteger(maxBytes) && maxBytes >= blockSize, () => `Cache size ${maxBytes} is below one block of ${blockSize}`);
    assert(Number.isSafeInteger(maxIoBytes) && maxIoBytes > 0, () => `Invalid maxIoBytes ${maxIoBytes}`);
    this.device = device;
    this.blockSize = blockSize;
    this.maxBytes = maxBytes;
    this.#maxIoBlocks = Math.max(1, Math.floor(maxIoBytes / blockSize));
  }

  /** A snapshot of the counters. */
  get stats(): BufferCacheStats {
    return { ...this.#stats, bytesCached: this.#bytes };
  }

  /**
   * The cached buffer of block `blockNo`, read from the device on a miss. Valid for
   * reading until the caller's next await; pin to modify or to keep it longer.
   * Throws the device's FsError (EIO past its end). @kernel __bread
   */
  async get(blockNo: number): Promise<Uint8Array> {
    return (await this.#acquire(blockNo, false)).data;
  }

  /**
   * Blocks first..first+count-1, reading all missing ones with a single device read
   * (spanning any cached blocks between them, whose cached copies win). Same validity
   * rules as `get`. @kernel ll_rw_block (readahead of a run)
   */
  async getMany(first: number, count: number): Promise<Uint8Array[]> {
    checkBlock(first);
    assert(Number.isSafeInteger(count) && count >= 0, () => `Invalid block count ${count}`);
    const slots: (Promise<Entry> | undefined)[] = [];
    let lo = -1;
    let hi = -1;
    for (let i = 0; i < count; i++) {
      const n = first + i;
      const e = this.#lookup(n);
      const p = e === undefined ? this.#loading.get(n) : undefined;
      if (p !== undefined) this.#stats.hits++;
      else if (e === undefined) {
        if (lo < 0) lo = n;
        hi = n;
      }
      slots.push(e === undefined ? p : Promise.resolve(e));
    }
    if (lo >= 0) this.#startLoad(lo, hi - lo + 1);
    const entries = await Promise.all(
      slots.map((s, i) => {
        const r = s ?? this.#loading.get(first + i); // #startLoad registered every missing block
        assert(r !== undefined, () => `getMany: block ${first + i} was not scheduled`);
        return r;
      }),
    );
    await this.#shrink();
    return entries.map((e) => e.data);
  }

  /** Like `get`, and pins the block until `unpin`. @kernel __bread + get_bh */
  async pin(blockNo: number): Promise<Uint8Array> {
    return (await this.#acquire(blockNo, true)).data;
  }

  /**
   * Pins block `blockNo` for overwriting without reading it (a newly allocated
   * block): the buffer is the cached copy if there is one, else zeros, and is marked
   * dirty. Throws EROFS on a read-only device. @kernel sb_getblk
   */
  async pinNew(blockNo: number): Promise<Uint8Array> {
    checkBlock(blockNo);
    this.#checkWritable(blockNo);
    const e = this.#lookup(blockNo) ?? this.#insert(blockNo, new Uint8Array(this.blockSize));
    e.pins++;
    this.#dirty.add(e);
    await this.#shrink();
    return e.data;
  }

  /** Drops one pin taken by `pin` or `pinNew`. @kernel brelse */
  unpin(blockNo: number): void {
    const e = this.#entries.get(blockNo);
    assert(e !== undefined && e.pins > 0, () => `unpin(${blockNo}): block is not pinned`);
    e.pins--;
  }

  /** Runs `fn` with block `blockNo` pinned, unpinning however it ends. */
  async withBlock<T>(blockNo: number, fn: (data: Uint8Array) => T | Promise<T>): Promise<T> {
    const data = await this.pin(blockNo);
    try {
      return await fn(data);
    } finally {
      this.unpin(blockNo);
    }
  }

  /**
   * Records that the pinned block's buffer was modified; it reaches the device on
   * `flush` or before eviction. Throws EROFS on a read-only device. @kernel mark_buffer_dirty
   */
  markDirty(blockNo: number): void {
    const e = this.#entries.get(blockNo);
    assert(e !== undefined && e.pins > 0, () => `markDirty(${blockNo}): block is not pinned`);
    this.#checkWritable(blockNo);
    this.#dirty.add(e);
  }

  /** Whether block `blockNo` is cached and dirty. */
  isDirty(blockNo: number): boolean {
    const e = this.#entries.get(blockNo);
    return e !== undefined && this.#dirty.has(e);
  }

  /**
   * Forgets the cached copy of block `blockNo`, discarding unwritten changes (for a
   * freed block, or after the device was changed behind the cache's back). A read in
   * flight is detached: it will not populate the cache. The block must not be pinned.
   * @kernel bforget
   */
  invalidate(blockNo: number): void {
    const e = this.#entries.get(blockNo);
    if (e !== undefined) {
      assert(e.pins === 0, () => `invalidate(${blockNo}): block is pinned`);
      this.#remove(e);
    }
    this.#loading.delete(blockNo);
  }

  /**
   * Writes every dirty block (ascending, coalesced), then flushes the device. If a
   * write fails, its blocks stay dirty, the others are still written, and the first
   * error is thrown. @kernel sync_blockdev
   */
  flush(): Promise<void> {
    return this.#serialize(async () => {
      await this.#writeDirty(false);
      this.#writebackFailed = false;
      await this.device.flush();
    });
  }

  /**
   * `count` blocks from `first` straight from the device in one read, without
   * caching them (streaming file data must not push metadata out). Cached copies,
   * being newer, are laid over the result.
   */
  async readUncached(first: number, count: number): Promise<Uint8Array> {
    checkBlock(first);
    assert(Number.isSafeInteger(count) && count >= 0, () => `Invalid block count ${count}`);
    const bs = this.blockSize;
    if (this.#overlapsPendingWrite(first, count)) await this.#writeTail;
    this.#stats.deviceReads++;
    const buf = await this.device.read(first * bs, count * bs);
    if (count <= this.#entries.size) {
      for (let i = 0; i < count; i++) {
        const e = this.#entries.get(first + i);
        if (e !== undefined) buf.set(e.data, i * bs);
      }
    } else {
      for (const e of this.#entries.values()) {
        if (e.blockNo >= first && e.blockNo < first + count) buf.set(e.data, (e.blockNo - first) * bs);
      }
    }
    return buf;
  }

  /**
   * Writes whole blocks from `first` straight to the device, ordered after earlier
   * write-backs. Cached copies of those blocks are updated in place and become clean;
   * uncached blocks stay uncached. Throws EROFS on a read-only device.
   */
  async writeUncached(first: number, data: Uint8Array): Promise<void> {
    // Everything up to the first await runs synchronously, before any later call.
    checkBlock(first);
    assert(data.length % this.blockSize === 0, () => `Cannot write ${data.length} bytes as whole blocks of ${this.blockSize}`);
    this.#checkWritable(first);
    const bs = this.blockSize;
    const count = data.length / bs;
    const updated: Entry[] = [];
    for (let i = 0; i < count; i++) {
      const n = first + i;
      this.#loading.delete(n); // a read in flight may return the old contents
      const e = this.#entries.get(n);
      if (e !== undefined) {
        e.data.set(data.subarray(i * bs, (i + 1) * bs));
        this.#dirty.delete(e);
        updated.push(e);
      }
    }
    const range: BlockRange = { first, end: first + count };
    this.#pendingWrites.add(range);
    const copy = data.slice(); // the caller may reuse `data` once we return
    await this.#serialize(async () => {
      try {
        this.#stats.deviceWrites++;
        await this.device.write(first * bs, copy);
        this.#stats.blocksWritten += count;
      } catch (err) {
        this.#stats.writeErrors++;
        for (const e of updated) if (this.#entries.get(e.blockNo) === e) this.#dirty.add(e);
        throw err;
      } finally {
        this.#pendingWrites.delete(range);
      }
    });
  }

  async #acquire(blockNo: number, pin: boolean): Promise<Entry> {
    checkBlock(blockNo);
    const hit = this.#lookup(blockNo);
    if (hit !== undefined) {
      if (pin) hit.pins++;
      return hit;
    }
    for (;;) {
      let p = this.#loading.get(blockNo);
      if (p !== undefined) this.#stats.hits++;
      else {
        this.#startLoad(blockNo, 1);
        p = this.#loading.get(blockNo)!; // #startLoad registers every missing block
      }
      const loaded = await p;
      // Other continuations ran since the read completed: the entry may be gone.
      const e = this.#entries.get(blockNo);
      if (e !== undefined) {
        if (pin) e.pins++;
        await this.#shrink();
        return e;
      }
      if (!pin) return loaded; // its bytes are still the block's as of the read
    }
  }

  /** A cached entry, counted as a hit and moved to the LRU end. */
  #lookup(blockNo: number): Entry | undefined {
    const e = this.#entries.get(blockNo);
    if (e === undefined) return undefined;
    this.#stats.hits++;
    this.#entries.delete(blockNo);
    this.#entries.set(blockNo, e);
    return e;
  }

  /**
   * Starts one device read of blocks first..first+count-1 and registers in #loading a
   * promise for each of them that is neither cached nor already loading.
   */
  #startLoad(first: number, count: number): void {
    const bs = this.blockSize;
    const span = (async () => {
      if (this.#overlapsPendingWrite(first, count)) await this.#writeTail;
      this.#stats.deviceReads++;
      return this.device.read(first * bs, count * bs);
    })();
    let registered = 0;
    for (let i = 0; i < count; i++) {
      const n = first + i;
      if (this.#entries.has(n) || this.#loading.has(n)) continue;
      this.#stats.misses++;
      registered++;
      const p: Promise<Entry> = span.then(
        (buf) => {
          const data = buf.slice(i * bs, (i + 1) * bs);
          if (this.#loading.get(n) !== p) return { blockNo: n, data, pins: 0, writeback: false }; // detached
          this.#loading.delete(n);
          return this.#insert(n, data);
        },
        (err: unknown) => {
          if (this.#loading.get(n) === p) this.#loading.delete(n);
          throw err;
        },
      );
      this.#loading.set(n, p);
    }
    assert(registered > 0, "#startLoad found nothing to read");
  }

  /** Adds block `blockNo` unless cached; returns the cached entry. */
  #insert(blockNo: number, data: Uint8Array): Entry {
    const cur = this.#entries.get(blockNo);
    if (cur !== undefined) return cur;
    const e: Entry = { blockNo, data, pins: 0, writeback: false };
    this.#entries.set(blockNo, e);
    this.#bytes += this.blockSize;
    this.#stats.peakBytesCached = Math.max(this.#stats.peakBytesCached, this.#bytes);
    return e;
  }

  #remove(e: Entry): void {
    this.#entries.delete(e.blockNo);
    this.#dirty.delete(e);
    this.#bytes -= this.blockSize;
  }

  /** Evicts clean, unpinned, idle blocks, oldest first, until under maxBytes. */
  #evictClean(): void {
    for (const e of this.#entries.values()) {
      if (this.#bytes <= this.maxBytes) return;
      if (e.pins > 0 || e.writeback || this.#dirty.has(e)) continue;
      this.#remove(e);
      this.#stats.evictions++;
    }
  }

  async #shrink(): Promise<void> {
    if (this.#bytes <= this.maxBytes) return;
    this.#evictClean();
    if (this.#bytes > this.maxBytes && !this.#writebackFailed && [...this.#dirty].some((e) => e.pins === 0)) {
      try {
        await this.#serialize(() => this.#writeDirty(true));
      } catch {
        this.#writebackFailed = true; // reported by the next flush, which retries
      }
      this.#evictClean();
    }
    if (this.#bytes > this.maxBytes) this.#stats.overshoots++;
  }

  /**
   * Writes dirty blocks (only unpinned ones if asked) in ascending order, adjacent
   * ones coalesced. Contents are captured before the first write; a block modified
   * and re-dirtied meanwhile stays dirty. Runs inside #serialize.
   */
  async #writeDirty(unpinnedOnly: boolean): Promise<void> {
    const bs = this.blockSize;
    const todo = [...this.#dirty].filter((e) => !unpinnedOnly || e.pins === 0).sort((a, b) => a.blockNo - b.blockNo);
    const runs: { range: BlockRange; entries: Entry[]; buf: Uint8Array }[] = [];
    for (let i = 0; i < todo.length; ) {
      let j = i + 1;
      while (j < todo.length && j - i < this.#maxIoBlocks && todo[j]!.blockNo === todo[j - 1]!.blockNo + 1) j++;
      const entries = todo.slice(i, j);
      const buf = new Uint8Array(entries.length * bs);
      entries.forEach((e, k) => {
        buf.set(e.data, k * bs);
        this.#dirty.delete(e);
        e.writeback = true;
      });
      const first = entries[0]!.blockNo; // j > i
      const range: BlockRange = { first, end: first + entries.length };
      this.#pendingWrites.add(range);
      runs.push({ range, entries, buf });
      i = j;
    }
    let firstError: Error | undefined;
    for (const { range, entries, buf } of runs) {
      try {
        this.#stats.deviceWrites++;
        await this.device.write(range.first * bs, buf);
        this.#stats.blocksWritten += entries.length;
      } catch (err) {
        this.#stats.writeErrors++;
        firstError ??= err instanceof Error ? err : new FsError("EIO", `Cannot write back ${this.device.description}`, { cause: err });
        for (const e of entries) if (this.#entries.get(e.blockNo) === e) this.#dirty.add(e);
      } finally {
        for (const e of entries) e.writeback = false;
        this.#pendingWrites.delete(range);
      }
    }
    if (firstError !== undefined) throw firstError;
  }

  #overlapsPendingWrite(first: number, count: number): boolean {
    for (const r of this.#pendingWrites) if (r.first < first + count && first < r.end) return true;
    return false;
  }

  /** Runs `fn` after every write queued before it. */
  #serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#writeTail.then(fn);
    this.#writeTail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  #checkWritable(blockNo: number): void {
    if (this.device.readOnly) {
      throw new FsError("EROFS", `Cannot modify block ${blockNo} of ${this.device.description}: device is read-only`, { block: blockNo });
    }
  }
}

function checkBlock(blockNo: number): void {
  assert(Number.isSafeInteger(blockNo) && blockNo >= 0, () => `Invalid block number ${blockNo}`);
}
