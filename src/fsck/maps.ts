/**
 * Compact per-block and per-inode state for the checker (e2fsck keeps the same facts in
 * ext2fs bitmaps and icount structures): bitmaps split into fixed-size chunks allocated on
 * first write, so memory follows the parts of the volume in use, counts kept as a bit for
 * the usual value, and growable typed arrays for lists (directory blocks, directories).
 *
 * Indexes are plain numbers up to 2^53 (block numbers of 64bit volumes).
 */

/** Set bits of each byte value. */
export const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let n = 0;
  for (let x = b; x !== 0; x &= x - 1) n++;
  return n;
});

/** The fewest bits a chunk holds (16 bytes), and the most chunks one bitmap is cut into. */
const MIN_CHUNK_SHIFT = 7;
const MAX_CHUNKS = 1 << 15;
/** The shared slots: a chunk never written (or cleared again) and a chunk whose bits are all set. */
const CLEAR = 0;
const FULL = 1;
const FIRST_OWN = 2;
const NO_CHUNK = 0xffff;
const EMPTY_INDEX = new Uint16Array(0);

/** i >> shift for any index up to 2^53 (a shift alone only below 2^31, where it is the fast case). */
function chunkOf(i: number, shift: number): number {
  return i < 0x80000000 ? i >>> shift : Math.floor(i / 2 ** shift);
}

/**
 * A bitmap over [0, size), cut into at most 32,768 chunks of 128 bits or more. An index
 * gives each chunk a slot in one pool of bytes; slot 0 (all clear) and slot 1 (all set) are
 * shared by every chunk in that state, and a chunk gets a slot of its own only while it
 * holds both set and clear bits. A chunk is copied out on the write that first makes it
 * mixed and handed back when it is uniform again: at once when a fill sets its last bit,
 * and by a sweep whenever the chunks held have doubled since the last one. So a map costs
 * its index plus its mixed chunks, where e2fsck's rb-tree bitmaps store runs: a volume of
 * files numbered in runs with a directory every thousand inodes costs some 30 KiB a million
 * inodes per map, not 128. A test is still two loads, an index entry and a byte of the pool.
 *
 * Indexes are plain numbers up to 2^53 (block numbers of 64bit volumes).
 */
export class ChunkedBitmap {
  /** log2 of the bits a chunk holds. */
  readonly #shift: number;
  /** log2 of the bytes a chunk holds: a slot's first byte is slot << #slotShift. */
  readonly #slotShift: number;
  readonly #chunkBits: number;
  /** Bytes of a chunk - 1: the byte of bit i (below 2^31) in its chunk is (i >>> 3) & #byteMask. */
  readonly #byteMask: number;
  readonly #chunkCount: number;
  /** Bits below this are in the bitmap and below 2^31, where shifts and masks work. */
  readonly #fastEnd: number;
  /** The slot of each chunk; empty until the first write (an entry past the end reads as undefined, which << makes 0: CLEAR). */
  #index = EMPTY_INDEX;
  #pool: Uint8Array;
  /** The chunk each own slot holds, NO_CHUNK when the slot is free. */
  #owner: Uint16Array;
  /** Free own slots below #top, as a stack. */
  #free: Uint16Array;
  #freeCount = 0;
  /** Own slots ever handed out (the pool's high-water mark). */
  #top = FIRST_OWN;
  /** Own slots in use, and how many there may be before the next sweep. */
  #held = 0;
  #sweepAt = 64;
  /** Bits set (maintained by set/clear). */
  count = 0;

  constructor(readonly size: number) {
    let shift = MIN_CHUNK_SHIFT;
    while (shift < 53 && size / 2 ** shift > MAX_CHUNKS) shift++;
    this.#shift = shift;
    this.#slotShift = shift - 3;
    this.#chunkBits = 2 ** shift;
    this.#byteMask = (this.#chunkBits >>> 3) - 1;
    this.#chunkCount = Math.ceil(size / this.#chunkBits);
    this.#fastEnd = Math.min(size, 0x80000000);
    this.#pool = new Uint8Array(4 << this.#slotShift);
    this.#pool.fill(0xff, FULL << this.#slotShift, FIRST_OWN << this.#slotShift);
    this.#owner = new Uint16Array(4).fill(NO_CHUNK);
    this.#free = new Uint16Array(4);
  }

  test(i: number): boolean {
    if (i < this.#fastEnd) {
      const c = i >>> this.#shift; // past the index (negative i, or no write yet): clear
      return c < this.#index.length && (this.#pool[(this.#index[c]! << this.#slotShift) + ((i >>> 3) & this.#byteMask)]! & (1 << (i & 7))) !== 0;
    }
    return this.#testFar(i);
  }

  /** Set bit i; returns whether it was already set. */
  set(i: number): boolean {
    // The usual case inline: a bit below 2^31 whose chunk has a slot of its own.
    if (i < this.#fastEnd) {
      const c = i >>> this.#shift;
      const s = c < this.#index.length ? this.#index[c]! : CLEAR;
      if (s >= FIRST_OWN) {
        const at = (s << this.#slotShift) + ((i >>> 3) & this.#byteMask);
        const m = 1 << (i & 7);
        const old = this.#pool[at]!;
        if ((old & m) !== 0) return true;
        this.#pool[at] = old | m;
        this.count++;
        // A fill in order ends a chunk on its last bit: give the chunk back if it is full.
        if ((i & (this.#chunkBits - 1)) === this.#chunkBits - 1) this.#releaseIfFull(c, s);
        return false;
      }
    }
    return this.#setSlow(i);
  }

  clear(i: number): void {
    if (i < this.#fastEnd) {
      const c = i >>> this.#shift;
      if (!(c < this.#index.length)) return;
      const s = this.#index[c]!;
      if (s === CLEAR) return;
      if (s >= FIRST_OWN) {
        const at = (s << this.#slotShift) + ((i >>> 3) & this.#byteMask);
        const m = 1 << (i & 7);
        const old = this.#pool[at]!;
        if ((old & m) !== 0) {
          this.#pool[at] = old & ~m;
          this.count--;
        }
        return;
      }
    }
    this.#clearSlow(i);
  }

  #testFar(i: number): boolean {
    if (!(i >= 0 && i < this.size)) return false;
    const c = chunkOf(i, this.#shift);
    const b = i - c * this.#chunkBits;
    return (this.#pool[((this.#index[c] ?? CLEAR) << this.#slotShift) + (b >>> 3)]! & (1 << (b & 7))) !== 0;
  }

  #setSlow(i: number): boolean {
    if (!(i >= 0 && i < this.size)) return false; // see #chunk
    const c = this.#chunk(i);
    const b = i - c * this.#chunkBits;
    let s = this.#index[c]!;
    const m = 1 << (b & 7);
    if ((this.#pool[(s << this.#slotShift) + (b >>> 3)]! & m) !== 0) return true;
    if (s === CLEAR) s = this.#own(c, CLEAR);
    const at = (s << this.#slotShift) + (b >>> 3);
    this.#pool[at] = this.#pool[at]! | m;
    this.count++;
    if (b === this.#chunkBits - 1) this.#releaseIfFull(c, s);
    return false;
  }

  #clearSlow(i: number): void {
    if (!(i >= 0 && i < this.size)) return;
    const c = chunkOf(i, this.#shift);
    const b = i - c * this.#chunkBits;
    let s = this.#index[c];
    if (s === undefined) return;
    const m = 1 << (b & 7);
    if ((this.#pool[(s << this.#slotShift) + (b >>> 3)]! & m) === 0) return;
    if (s === FULL) s = this.#own(c, FULL);
    const at = (s << this.#slotShift) + (b >>> 3);
    this.#pool[at] = this.#pool[at]! & ~m;
    this.count--;
  }

  #releaseIfFull(c: number, s: number): void {
    if (this.#uniform(s) === FULL) this.#release(c, FULL);
  }

  /** Set bits [start, start + len): whole chunks by the shared full slot, whole bytes where the range covers them. */
  setRange(start: number, len: number): void {
    const end = Math.min(start + len, this.size);
    for (let i = Math.max(start, 0); i < end; ) {
      const c = this.#chunk(i);
      const base = c * this.#chunkBits;
      const stop = Math.min(end, base + this.#chunkBits);
      let s = this.#index[c]!;
      if (s === FULL) {
        i = stop;
        continue;
      }
      if (i === base && stop === base + this.#chunkBits) {
        this.count += this.#chunkBits - this.#bitsSet(s);
        if (s === CLEAR) this.#index[c] = FULL;
        else this.#release(c, FULL);
        i = stop;
        continue;
      }
      if (s === CLEAR) s = this.#own(c, CLEAR);
      const pool = this.#pool;
      const o = s << this.#slotShift;
      for (; i < stop; ) {
        const b = i - base;
        if ((b & 7) === 0 && i + 8 <= stop) {
          this.count += 8 - POPCOUNT[pool[o + (b >>> 3)]!]!;
          pool[o + (b >>> 3)] = 0xff;
          i += 8;
          continue;
        }
        const m = 1 << (b & 7);
        if ((pool[o + (b >>> 3)]! & m) === 0) {
          pool[o + (b >>> 3)] = pool[o + (b >>> 3)]! | m;
          this.count++;
        }
        i++;
      }
      if (this.#uniform(s) === FULL) this.#release(c, FULL);
    }
  }

  /** The first clear bit in [start, end), or -1: full chunks and whole bytes of set bits skipped at a time. */
  findFirstClear(start: number, end: number): number {
    const pool = this.#pool;
    for (let i = start; i < end; ) {
      const c = chunkOf(i, this.#shift);
      const base = c * this.#chunkBits;
      const stop = Math.min(end, base + this.#chunkBits) - base;
      const s = this.#index[c] ?? CLEAR;
      if (s === CLEAR) return i;
      if (s !== FULL) {
        const o = s << this.#slotShift;
        let b = i - base;
        for (; b < stop && (b & 7) !== 0; b++) if ((pool[o + (b >>> 3)]! & (1 << (b & 7))) === 0) return base + b;
        while (b + 8 <= stop && pool[o + (b >>> 3)] === 0xff) b += 8;
        for (; b < stop; b++) if ((pool[o + (b >>> 3)]! & (1 << (b & 7))) === 0) return base + b;
      }
      i = base + stop;
    }
    return -1;
  }

  /** Are all bits of [start, start + len) clear? */
  rangeClear(start: number, len: number): boolean {
    const pool = this.#pool;
    const end = start + len;
    for (let i = start; i < end; ) {
      const c = chunkOf(i, this.#shift);
      const base = c * this.#chunkBits;
      const stop = Math.min(end, base + this.#chunkBits);
      const s = this.#index[c] ?? CLEAR;
      if (s === FULL) return false;
      if (s !== CLEAR) {
        const o = s << this.#slotShift;
        for (let j = i - base; j < stop - base; j++) {
          if ((j & 7) === 0 && j + 8 <= stop - base) {
            if (pool[o + (j >>> 3)] !== 0) return false;
            j += 7;
            continue;
          }
          if ((pool[o + (j >>> 3)]! & (1 << (j & 7))) !== 0) return false;
        }
      }
      i = stop;
    }
    return true;
  }

  /**
   * Copy bits [start, start + n) into `dst` starting at bit 0: the first ceil(n / 8) bytes
   * of `dst` are overwritten, bits past n zero. A byte at a time at any alignment (inode
   * bitmaps start at inode 1, so their groups' bits rarely start a byte here).
   */
  extract(start: number, n: number, dst: Uint8Array): void {
    const bytes = Math.ceil(n / 8);
    const chunkBytes = this.#chunkBits >>> 3;
    const pool = this.#pool;
    const index = this.#index;
    for (let j = 0; j < bytes; ) {
      // The run of dst bytes whose first bit lies in one chunk.
      const abs = start + j * 8;
      const c = chunkOf(abs, this.#shift);
      const b = abs - c * this.#chunkBits;
      const q = b >>> 3;
      const r = b & 7;
      const s = index[c] ?? CLEAR;
      if (s < FIRST_OWN) {
        // Shared chunks in a row (the runs that make up most maps): one fill. Unaligned, the
        // run's last byte also takes bits from the chunk after it, so it stops a byte short.
        let e = c + 1;
        while (e < index.length && index[e] === s) e++;
        if (e >= index.length && s === CLEAR) e = Infinity; // chunks past the index are clear
        const fit = Math.min(bytes - j, (e - c) * chunkBytes - q - (r === 0 ? 0 : 1));
        if (fit > 0) {
          dst.fill(s === FULL ? 0xff : 0, j, j + fit);
          j += fit;
          continue;
        }
      }
      const fit = Math.min(bytes - j, chunkBytes - q);
      const o = s << this.#slotShift;
      if (r === 0) for (let k = 0; k < fit; k++) dst[j + k] = pool[o + q + k]!;
      else {
        // Each byte takes its high bits from the next byte, the last one from the next chunk.
        const next = (index[c + 1] ?? CLEAR) << this.#slotShift;
        for (let k = 0; k < fit; k++) {
          const qq = q + k;
          const hi = qq + 1 < chunkBytes ? pool[o + qq + 1]! : pool[next]!;
          dst[j + k] = ((pool[o + qq]! >>> r) | (hi << (8 - r))) & 0xff;
        }
      }
      j += fit;
    }
    if ((n & 7) !== 0) dst[bytes - 1] = dst[bytes - 1]! & ((1 << (n & 7)) - 1);
  }

  /** Bytes allocated (for memory accounting): the index, the pool and its slot lists. */
  get bytes(): number {
    return this.#index.byteLength + this.#pool.byteLength + this.#owner.byteLength + this.#free.byteLength;
  }

  /**
   * The chunk of bit i, for a write: the index made on the first one. Bits outside [0, size)
   * are not kept (set is a no-op that returns false, test says clear): block numbers from a
   * damaged volume reach the maps, and the range checks that matter are the callers'.
   */
  #chunk(i: number): number {
    if (this.#index.length === 0) this.#index = new Uint16Array(this.#chunkCount);
    return chunkOf(i, this.#shift);
  }

  /** Give chunk c a slot of its own holding the bytes of shared slot `from`; returns the slot. */
  #own(c: number, from: number): number {
    if (this.#held >= this.#sweepAt) {
      this.#sweep();
      // Chunks held at most twice what is mixed, and a sweep's pass over the slots paid for
      // by as many new chunks as half the slots.
      this.#sweepAt = Math.max(64, 2 * this.#held, this.#held + (this.#top >>> 1));
    }
    let s: number;
    if (this.#freeCount > 0) s = this.#free[--this.#freeCount]!;
    else {
      s = this.#top++;
      if (s === this.#owner.length) this.#grow();
    }
    const bytes = this.#chunkBits >>> 3;
    this.#pool.fill(from === FULL ? 0xff : 0, s << this.#slotShift, (s << this.#slotShift) + bytes);
    this.#owner[s] = c;
    this.#index[c] = s;
    this.#held++;
    return s;
  }

  /** Point chunk c at shared slot `to` and free the slot it held. */
  #release(c: number, to: number): void {
    const s = this.#index[c]!;
    this.#index[c] = to;
    this.#owner[s] = NO_CHUNK;
    this.#free[this.#freeCount++] = s;
    this.#held--;
  }

  /** Hand back every held chunk that is uniform again (cleared, or filled out of order). */
  #sweep(): void {
    for (let s = FIRST_OWN; s < this.#top; s++) {
      const c = this.#owner[s]!;
      if (c === NO_CHUNK) continue;
      const u = this.#uniform(s);
      if (u !== -1) this.#release(c, u);
    }
  }

  /** CLEAR or FULL when slot s is uniform, else -1. */
  #uniform(s: number): number {
    const pool = this.#pool;
    const o = s << this.#slotShift;
    const first = pool[o]!;
    if (first !== 0 && first !== 0xff) return -1;
    const end = o + (this.#chunkBits >>> 3);
    for (let k = o + 1; k < end; k++) if (pool[k] !== first) return -1;
    return first === 0 ? CLEAR : FULL;
  }

  #bitsSet(s: number): number {
    if (s === CLEAR) return 0;
    const o = s << this.#slotShift;
    let n = 0;
    for (let k = o; k < o + (this.#chunkBits >>> 3); k++) n += POPCOUNT[this.#pool[k]!]!;
    return n;
  }

  /** Double the slots (the pool, owners and free stack), up to one per chunk beside the shared two. */
  #grow(): void {
    const slots = Math.min(this.#owner.length * 2, this.#chunkCount + FIRST_OWN);
    const pool = new Uint8Array(slots << this.#slotShift);
    pool.set(this.#pool);
    this.#pool = pool;
    const owner = new Uint16Array(slots).fill(NO_CHUNK);
    owner.set(this.#owner);
    this.#owner = owner;
    const free = new Uint16Array(slots);
    free.set(this.#free);
    this.#free = free;
  }
}

/**
 * The EXT4_FT_* file type (0..7) of each inode, 0 when unknown, as three bit planes: a
 * volume of files and directories costs two bits an inode where a byte each would cost
 * eight, and directories can be taken a byte (eight inodes) at a time. e2fsck keeps
 * inode_dir_map and inode_reg_map and reads the inode for the other types.
 */
export class FileTypes {
  readonly #planes: readonly [ChunkedBitmap, ChunkedBitmap, ChunkedBitmap];
  #scratch = new Uint8Array(0);

  /** Types of inodes [0, size). */
  constructor(size: number) {
    this.#planes = [new ChunkedBitmap(size), new ChunkedBitmap(size), new ChunkedBitmap(size)];
  }

  get(i: number): number {
    const [p0, p1, p2] = this.#planes;
    return (p0.test(i) ? 1 : 0) | (p1.test(i) ? 2 : 0) | (p2.test(i) ? 4 : 0);
  }

  set(i: number, type: number): void {
    const [p0, p1, p2] = this.#planes;
    if ((type & 1) !== 0) p0.set(i);
    else p0.clear(i);
    if ((type & 2) !== 0) p1.set(i);
    else p1.clear(i);
    if ((type & 4) !== 0) p2.set(i);
    else p2.clear(i);
  }

  /** Which of [start, start + n) are directories (type 2), as ChunkedBitmap.extract writes bits. */
  extractDirs(start: number, n: number, dst: Uint8Array): void {
    const [p0, p1, p2] = this.#planes;
    const bytes = Math.ceil(n / 8);
    if (this.#scratch.length < bytes) this.#scratch = new Uint8Array(bytes);
    const other = this.#scratch;
    p1.extract(start, n, dst);
    p0.extract(start, n, other);
    for (let j = 0; j < bytes; j++) dst[j] = dst[j]! & ~other[j]!;
    p2.extract(start, n, other);
    for (let j = 0; j < bytes; j++) dst[j] = dst[j]! & ~other[j]!;
  }

  /** Bytes allocated (for memory accounting). */
  get bytes(): number {
    return this.#planes.reduce((n, p) => n + p.bytes, 0);
  }
}

/** A growable array of u32 values. */
export class GrowU32 {
  #a = new Uint32Array(64);
  length = 0;

  push(v: number): void {
    if (this.length === this.#a.length) {
      const b = new Uint32Array(this.#a.length * 2);
      b.set(this.#a);
      this.#a = b;
    }
    this.#a[this.length++] = v;
  }

  get(i: number): number {
    return this.#a[i]!;
  }

  set(i: number, v: number): void {
    this.#a[i] = v;
  }

  /** The live prefix as a view (invalidated by the next push). */
  view(): Uint32Array {
    return this.#a.subarray(0, this.length);
  }

  /** Bytes allocated (for memory accounting). */
  get bytes(): number {
    return this.#a.byteLength;
  }
}

/** A growable array of numbers up to 2^53 (block numbers). */
export class GrowF64 {
  #a = new Float64Array(64);
  length = 0;

  push(v: number): void {
    if (this.length === this.#a.length) {
      const b = new Float64Array(this.#a.length * 2);
      b.set(this.#a);
      this.#a = b;
    }
    this.#a[this.length++] = v;
  }

  get(i: number): number {
    return this.#a[i]!;
  }

  set(i: number, v: number): void {
    this.#a[i] = v;
  }

  view(): Float64Array {
    return this.#a.subarray(0, this.length);
  }

  /** Bytes allocated (for memory accounting). */
  get bytes(): number {
    return this.#a.byteLength;
  }
}

/**
 * The names seen so far in one directory block, for duplicate detection (e2fsck's de_dict,
 * made per block in check_dir_block). Names are copied into one arena and found through a
 * hash chain, so an entry costs no allocation.
 */
export class NameSet {
  static readonly #BUCKETS = 1024;
  readonly #heads = new Int32Array(NameSet.#BUCKETS).fill(-1);
  #next = new Int32Array(256);
  #start = new Int32Array(256);
  #len = new Uint8Array(256);
  #arena = new Uint8Array(4096);
  #count = 0;
  #used = 0;

  /** Forget every name (a new block). */
  clear(): void {
    if (this.#count === 0) return;
    this.#heads.fill(-1);
    this.#count = 0;
    this.#used = 0;
  }

  /**
   * Add the name `buf[at, at + len)` unless it is there already: returns true when it was
   * (and then adds nothing).
   */
  insert(buf: Uint8Array, at: number, len: number): boolean {
    // FNV-1a over the bytes.
    let h = 0x811c9dc5;
    for (let i = 0; i < len; i++) h = Math.imul(h ^ buf[at + i]!, 0x01000193);
    const bucket = (h ^ (h >>> 16)) & (NameSet.#BUCKETS - 1);
    const arena = this.#arena;
    for (let e = this.#heads[bucket]!; e >= 0; e = this.#next[e]!) {
      if (this.#len[e] !== len) continue;
      const s = this.#start[e]!;
      let same = true;
      for (let i = 0; i < len && same; i++) same = arena[s + i] === buf[at + i];
      if (same) return true;
    }
    const n = this.#count++;
    if (n === this.#next.length) {
      this.#next = grow32(this.#next);
      this.#start = grow32(this.#start);
      const l = new Uint8Array(n * 2);
      l.set(this.#len);
      this.#len = l;
    }
    if (this.#used + len > this.#arena.length) {
      const a = new Uint8Array(Math.max(this.#arena.length * 2, this.#used + len));
      a.set(this.#arena);
      this.#arena = a;
    }
    const to = this.#arena;
    for (let i = 0; i < len; i++) to[this.#used + i] = buf[at + i]!;
    this.#start[n] = this.#used;
    this.#len[n] = len;
    this.#used += len;
    this.#next[n] = this.#heads[bucket]!;
    this.#heads[bucket] = n;
    return false;
  }
}

function grow32(a: Int32Array): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

/**
 * Counts up to 2^32 - 1 keyed by number (InodeCounts' counts above one): open addressing with
 * linear probing over typed arrays, so it costs 12 bytes a slot, at most half the slots in
 * use, and its memory can be counted. Keys are stored plus one (0 marks a free slot).
 */
class CountMap {
  #keys = new Float64Array(16);
  #vals = new Uint32Array(16);
  size = 0;

  #slot(k: number): number {
    const mask = this.#keys.length - 1;
    let i = this.#home(k, mask);
    const want = k + 1;
    for (;;) {
      const at = this.#keys[i]!;
      if (at === want || at === 0) return i;
      i = (i + 1) & mask;
    }
  }

  /** The count of k, or 0 when it has none. */
  get(k: number): number {
    const i = this.#slot(k);
    return this.#keys[i] === 0 ? 0 : this.#vals[i]!;
  }

  set(k: number, v: number): void {
    let i = this.#slot(k);
    if (this.#keys[i] === 0) {
      if (2 * (this.size + 1) > this.#keys.length) {
        this.#rehash(this.#keys.length * 2);
        i = this.#slot(k);
      }
      this.#keys[i] = k + 1;
      this.size++;
    }
    this.#vals[i] = v;
  }

  delete(k: number): void {
    let i = this.#slot(k);
    if (this.#keys[i] === 0) return;
    // Backward-shift deletion (Knuth 6.4 algorithm R): later entries of the probe run move
    // up into the gap when their home slot allows, so no tombstones are needed.
    const keys = this.#keys;
    const vals = this.#vals;
    const mask = keys.length - 1;
    keys[i] = 0;
    this.size--;
    for (let j = (i + 1) & mask; keys[j] !== 0; j = (j + 1) & mask) {
      const kk = keys[j]! - 1;
      const home = this.#home(kk, mask);
      // Leave j where it is when its home lies cyclically in (i, j].
      if (i <= j ? i < home && home <= j : i < home || home <= j) continue;
      keys[i] = keys[j]!;
      vals[i] = vals[j]!;
      keys[j] = 0;
      i = j;
    }
  }

  #home(k: number, mask: number): number {
    const h = Math.imul((k % 0x100000000) ^ Math.floor(k / 0x100000000), 0x9e3779b1);
    return (h ^ (h >>> 15)) & mask;
  }

  #rehash(slots: number): void {
    const keys = this.#keys;
    const vals = this.#vals;
    this.#keys = new Float64Array(slots);
    this.#vals = new Uint32Array(slots);
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] === 0) continue;
      const j = this.#slot(keys[i]! - 1);
      this.#keys[j] = keys[i]!;
      this.#vals[j] = vals[i]!;
    }
  }

  /** Bytes allocated (for memory accounting). */
  get bytes(): number {
    return this.#keys.byteLength + this.#vals.byteLength;
  }
}

/**
 * A count per inode, stored as e2fsck's icount stores it: most inodes have a count of 0 or
 * 1 (a file with one name), kept as one bit; the others (directories, hard links) in a map.
 * So memory follows the inodes with more than one link, not the inode count. Counts stop
 * at `max`.
 */
export class InodeCounts {
  readonly #one: ChunkedBitmap;
  /** The inodes the map holds, so that the common miss costs a bit test, not a map look-up. */
  readonly #inMany: ChunkedBitmap;
  readonly #many = new CountMap();

  constructor(size: number, readonly max: number) {
    this.#one = new ChunkedBitmap(size);
    this.#inMany = new ChunkedBitmap(size);
  }

  get(i: number): number {
    if (this.#one.test(i)) return 1; // the bit and the map never both hold an inode
    return this.#inMany.test(i) ? this.#many.get(i) : 0;
  }

  /** get(i) === 1, without a map look-up. */
  isOne(i: number): boolean {
    return this.#one.test(i);
  }

  /** Bytes allocated (for memory accounting). */
  get bytes(): number {
    return this.#one.bytes + this.#inMany.bytes + this.#many.bytes;
  }

  /** Which of [start, start + n) have a count of exactly 1, as ChunkedBitmap.extract writes bits. */
  extractOnes(start: number, n: number, dst: Uint8Array): void {
    this.#one.extract(start, n, dst);
  }

  set(i: number, value: number): void {
    const v = Math.min(value, this.max);
    if (v <= 1) {
      if (this.#inMany.test(i)) {
        this.#inMany.clear(i);
        this.#many.delete(i);
      }
      if (v === 1) this.#one.set(i);
      else this.#one.clear(i);
      return;
    }
    this.#one.clear(i);
    this.#inMany.set(i);
    this.#many.set(i, v);
  }

  /** Add one; returns the new value. */
  inc(i: number): number {
    if (this.#one.test(i)) {
      this.#one.clear(i);
      this.#inMany.set(i);
      this.#many.set(i, 2);
      return 2;
    }
    if (this.#inMany.test(i)) {
      const v = Math.min(this.#many.get(i) + 1, this.max);
      this.#many.set(i, v);
      return v;
    }
    this.#one.set(i);
    return 1;
  }
}
