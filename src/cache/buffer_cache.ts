/**
 * BufferCache: fixed-size blocks of one BlockDevice, cached in memory with LRU
 * eviction, pinning and dirty write-back. Kernel counterpart: fs/buffer.c
 * (sb_bread, get_bh/brelse, mark_buffer_dirty, sync_dirty_buffer, bforget);
 * e2fsprogs': the unix_io block cache.
 *
 * Design note.
 * - Entries live in a Map by block number and on an intrusive LRU list (a hit moves
 *   the entry to the most recent end; eviction scans from the other). Each entry owns a fresh Uint8Array that is never reused, so a buffer handed out and
 *   later evicted still holds the block's contents as of its last use. Blocks of a
 *   multi-block read are copied out rather than kept as views of one buffer, so one
 *   hot block cannot keep a whole run's memory alive unaccounted.
 * - Buffers are shared. `get` returns the cached buffer for reading; it is current
 *   until the caller's next await. To modify a block, or keep it current across
 *   awaits, pin it (`pin`/`unpin`, or `withBlock`); `markDirty` requires a pin, as
 *   mark_buffer_dirty requires a reference. Pinned blocks are never evicted.
 * - Eviction keeps bytesCached <= maxBytes in LRU order, skipping pinned blocks and
 *   blocks being written. Clean blocks at the LRU end are dropped at once (before an
 *   insert, so a clean workload never exceeds the limit). A dirty block there is
 *   written back first: the dirty blocks among the oldest down to a low watermark
 *   (maxBytes less an eighth) go out in one coalesced pass, then are dropped. If pinned
 *   blocks keep the cache over the limit it overshoots, counted in `stats.overshoots`.
 *   A failed write-back keeps its blocks dirty and cached, and the error is reported
 *   by the next `flush`; until a flush succeeds, eviction skips dirty blocks instead of
 *   retrying them.
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

class Entry {
  pins = 0;
  /** Part of a write-back in progress: not evictable. */
  writeback = false;
  /** LRU list links; an entry not on the list links to itself. */
  older: Entry = this;
  newer: Entry = this;
  constructor(
    readonly blockNo: number,
    readonly data: Uint8Array,
  ) {}
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
  readonly #entries = new Map<number, Entry>();
  /**
   * Sentinel of the circular LRU list of cached entries: `.newer` is the least
   * recently used. (A Map's insertion order would do, but V8 leaves deleted slots in
   * place until a rehash, making each scan from the oldest end O(capacity).)
   */
  readonly #lru: Entry = new Entry(-1, new Uint8Array(0));
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
   * The cached buffer of block `blockNo`, read from the device on a miss. It is the
   * shared copy: read it, never write it (pin for that). It is the block's current
   * contents until the caller's next await; across awaits it may be changed by a
   * pinned writer, or stop being the cached copy. Throws the device's FsError (EIO
   * past its end). @kernel __bread
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

  /** Whether block `blockNo` is cached (or being read); no LRU effect. For readahead decisions. */
  has(blockNo: number): boolean {
    return this.#entries.has(blockNo) || this.#loading.has(blockNo);
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
   * Drops every clean block that is not pinned or being written (dirty blocks stay): a
   * phase that has flushed what it wrote gives the memory back before the next one starts.
   * @kernel invalidate_bdev (clean, unmapped pages only)
   */
  dropClean(): void {
    for (let e = this.#lru.newer, next = e.newer; e !== this.#lru; e = next, next = e.newer) {
      if (e.pins > 0 || e.writeback || this.#dirty.has(e)) continue;
      this.#remove(e);
    }
  }

  /**
   * Writes every dirty block (ascending, coalesced), then flushes the device. If a
   * write fails, its blocks stay dirty, the others are still written, and the first
   * error is thrown. @kernel sync_blockdev
   */
  flush(): Promise<void> {
    return this.#serialize(async () => {
      await this.#writeBack(this.#dirty);
      this.#writebackFailed = false;
      await this.device.flush();
    });
  }

  /**
   * `count` blocks from `first` straight from the device in one read, without
   * caching them (streaming file data must not push metadata out). Cached copies,
   * being newer, are laid over the result. Costs a map lookup per block (or a scan of
   * the cache, whichever is smaller) besides the read.
   */
  async readUncached(first: number, count: number): Promise<Uint8Array> {
    const buf = new Uint8Array(count * this.blockSize);
    await this.readUncachedInto(first, buf);
    return buf;
  }

  /** readUncached into `dest` (a whole number of blocks), so streaming callers can reuse one buffer. */
  async readUncachedInto(first: number, dest: Uint8Array): Promise<void> {
    checkBlock(first);
    const bs = this.blockSize;
    assert(dest.length % bs === 0, () => `Buffer of ${dest.length} bytes is not a whole number of ${bs}-byte blocks`);
    const count = dest.length / bs;
    if (this.#overlapsPendingWrite(first, count)) await this.#writeTail;
    // Blocks cached now may be written back and evicted before the read returns, and
    // the read may predate that write: lay over the copies cached at either moment.
    const before = this.#cachedIn(first, count);
    this.#stats.deviceReads++;
    await this.device.readInto(first * bs, dest);
    for (const [n, e] of before) dest.set(e.data, (n - first) * bs);
    for (const [n, e] of this.#cachedIn(first, count)) dest.set(e.data, (n - first) * bs);
  }

  /** Cached entries of blocks first..first+count-1. */
  #cachedIn(first: number, count: number): Map<number, Entry> {
    const out = new Map<number, Entry>();
    if (count <= this.#entries.size) {
      for (let n = first; n < first + count; n++) {
        const e = this.#entries.get(n);
        if (e !== undefined) out.set(n, e);
      }
    } else {
      for (const e of this.#entries.values()) if (e.blockNo >= first && e.blockNo < first + count) out.set(e.blockNo, e);
    }
    return out;
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
    unlink(e);
    this.#append(e);
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
          const data = count === 1 ? buf : buf.slice(i * bs, (i + 1) * bs); // own copy: see the header
          if (this.#loading.get(n) !== p) return new Entry(n, data); // detached
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

  /** Makes `e` the most recently used. */
  #append(e: Entry): void {
    const last = this.#lru.older;
    e.older = last;
    e.newer = this.#lru;
    last.newer = e;
    this.#lru.older = e;
  }

  /** Adds block `blockNo` unless cached; returns the cached entry. */
  #insert(blockNo: number, data: Uint8Array): Entry {
    const cur = this.#entries.get(blockNo);
    if (cur !== undefined) return cur;
    this.#evictHead(this.maxBytes - this.blockSize); // make room now if that needs no write
    const e = new Entry(blockNo, data);
    this.#entries.set(blockNo, e);
    this.#append(e);
    this.#bytes += this.blockSize;
    this.#stats.peakBytesCached = Math.max(this.#stats.peakBytesCached, this.#bytes);
    return e;
  }

  #remove(e: Entry): void {
    this.#entries.delete(e.blockNo);
    unlink(e);
    this.#dirty.delete(e);
    this.#bytes -= this.blockSize;
  }

  /**
   * Evicts from the LRU end until bytesCached <= target, skipping pinned blocks and
   * blocks being written. At a dirty block it stops (LRU order: it must be written
   * first), or, after a failed write-back, skips it.
   */
  #evictHead(target: number): void {
    for (let e = this.#lru.newer, next = e.newer; e !== this.#lru; e = next, next = e.newer) {
      if (this.#bytes <= target) return;
      if (e.pins > 0 || e.writeback) continue;
      if (this.#dirty.has(e)) {
        if (this.#writebackFailed) continue;
        return;
      }
      this.#remove(e);
      this.#stats.evictions++;
    }
  }

  /**
   * Brings the cache back to maxBytes. When the LRU end holds dirty blocks, writes
   * back the dirty ones among the oldest evictable blocks down to a low watermark
   * (maxBytes less an eighth), so pressure writes in batches, then evicts them.
   */
  async #shrink(): Promise<void> {
    if (this.#bytes <= this.maxBytes) return;
    this.#evictHead(this.maxBytes);
    if (this.#bytes > this.maxBytes && !this.#writebackFailed) {
      const bs = this.blockSize;
      const low = this.maxBytes - Math.floor(this.maxBytes / 8 / bs) * bs;
      const victims: Entry[] = [];
      let bytes = this.#bytes;
      for (let e = this.#lru.newer; e !== this.#lru; e = e.newer) {
        if (bytes <= low) break;
        if (e.pins > 0 || e.writeback) continue;
        if (this.#dirty.has(e)) victims.push(e);
        bytes -= bs;
      }
      try {
        await this.#serialize(() => this.#writeBack(victims));
      } catch {
        this.#writebackFailed = true; // reported by the next flush, which retries
      }
      this.#evictHead(low);
    }
    if (this.#bytes > this.maxBytes) this.#stats.overshoots++;
  }

  /**
   * Writes those of `entries` still cached and dirty, in ascending order, adjacent
   * ones coalesced. Contents are captured before the first write; a block modified
   * and re-dirtied meanwhile stays dirty. If writes fail, their blocks stay dirty, the
   * rest are still written, and the first error is thrown. Runs inside #serialize.
   */
  async #writeBack(entries: Iterable<Entry>): Promise<void> {
    const bs = this.blockSize;
    const todo = [...entries]
      .filter((e) => this.#dirty.has(e) && this.#entries.get(e.blockNo) === e)
      .sort((a, b) => a.blockNo - b.blockNo);
    const runs: { range: BlockRange; entries: Entry[]; buf: Uint8Array }[] = [];
    for (let i = 0; i < todo.length; ) {
      let j = i + 1;
      while (j < todo.length && j - i < this.#maxIoBlocks && todo[j]!.blockNo === todo[j - 1]!.blockNo + 1) j++;
      const run = todo.slice(i, j);
      const buf = new Uint8Array(run.length * bs);
      run.forEach((e, k) => {
        buf.set(e.data, k * bs);
        this.#dirty.delete(e);
        e.writeback = true;
      });
      const first = run[0]!.blockNo; // j > i
      const range: BlockRange = { first, end: first + run.length };
      this.#pendingWrites.add(range);
      runs.push({ range, entries: run, buf });
      i = j;
    }
    let firstError: Error | undefined;
    for (const { range, entries: run, buf } of runs) {
      try {
        this.#stats.deviceWrites++;
        await this.device.write(range.first * bs, buf);
        this.#stats.blocksWritten += run.length;
      } catch (err) {
        this.#stats.writeErrors++;
        firstError ??= err instanceof Error ? err : new FsError("EIO", `Cannot write back ${this.device.description}`, { cause: err });
        for (const e of run) if (this.#entries.get(e.blockNo) === e) this.#dirty.add(e);
      } finally {
        for (const e of run) e.writeback = false;
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

function unlink(e: Entry): void {
  e.older.newer = e.newer;
  e.newer.older = e.older;
  e.older = e;
  e.newer = e;
}

function checkBlock(blockNo: number): void {
  assert(Number.isSafeInteger(blockNo) && blockNo >= 0, () => `Invalid block number ${blockNo}`);
}
