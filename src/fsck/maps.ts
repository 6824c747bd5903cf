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

const BITMAP_CHUNK_SHIFT = 16;
const BITMAP_CHUNK_BITS = 1 << BITMAP_CHUNK_SHIFT; // 8 KiB of bits per chunk

/** i >> shift for any index up to 2^53 (a shift alone only below 2^31, where it is the fast case). */
function chunkOf(i: number, shift: number): number {
  return i < 0x80000000 ? i >>> shift : Math.floor(i / 2 ** shift);
}

/** A bitmap over [0, size). */
export class ChunkedBitmap {
  readonly #chunks: (Uint8Array | undefined)[] = [];
  /** Bits set (maintained by set/clear). */
  count = 0;

  constructor(readonly size: number) {}

  test(i: number): boolean {
    const c = chunkOf(i, BITMAP_CHUNK_SHIFT);
    const ch = this.#chunks[c];
    if (ch === undefined) return false;
    const b = i - c * BITMAP_CHUNK_BITS;
    return (ch[b >>> 3]! & (1 << (b & 7))) !== 0;
  }

  /** Set bit i; returns whether it was already set. */
  set(i: number): boolean {
    const c = chunkOf(i, BITMAP_CHUNK_SHIFT);
    let ch = this.#chunks[c];
    if (ch === undefined) {
      ch = new Uint8Array(BITMAP_CHUNK_BITS >>> 3);
      this.#chunks[c] = ch;
    }
    const b = i - c * BITMAP_CHUNK_BITS;
    const k = b >>> 3;
    const m = 1 << (b & 7);
    const was = (ch[k]! & m) !== 0;
    if (!was) {
      ch[k] = ch[k]! | m;
      this.count++;
    }
    return was;
  }

  clear(i: number): void {
    const c = chunkOf(i, BITMAP_CHUNK_SHIFT);
    const ch = this.#chunks[c];
    if (ch === undefined) return;
    const b = i - c * BITMAP_CHUNK_BITS;
    const k = b >>> 3;
    const m = 1 << (b & 7);
    if ((ch[k]! & m) !== 0) {
      ch[k] = ch[k]! & ~m;
      this.count--;
    }
  }

  /** Set bits [start, start + len): whole bytes at a time where the range covers them. */
  setRange(start: number, len: number): void {
    const end = start + len;
    for (let i = start; i < end; ) {
      const c = chunkOf(i, BITMAP_CHUNK_SHIFT);
      const stop = Math.min(end, (c + 1) * BITMAP_CHUNK_BITS);
      let ch = this.#chunks[c];
      if (ch === undefined) {
        ch = new Uint8Array(BITMAP_CHUNK_BITS >>> 3);
        this.#chunks[c] = ch;
      }
      for (; i < stop; ) {
        const b = i - c * BITMAP_CHUNK_BITS;
        if ((b & 7) === 0 && i + 8 <= stop) {
          this.count += 8 - POPCOUNT[ch[b >>> 3]!]!;
          ch[b >>> 3] = 0xff;
          i += 8;
          continue;
        }
        const m = 1 << (b & 7);
        if ((ch[b >>> 3]! & m) === 0) {
          ch[b >>> 3] = ch[b >>> 3]! | m;
          this.count++;
        }
        i++;
      }
    }
  }

  /** The first clear bit in [start, end), or -1: whole bytes of set bits skipped at a time. */
  findFirstClear(start: number, end: number): number {
    for (let i = start; i < end; ) {
      const c = chunkOf(i, BITMAP_CHUNK_SHIFT);
      const base = c * BITMAP_CHUNK_BITS;
      const stop = Math.min(end, base + BITMAP_CHUNK_BITS) - base;
      const ch = this.#chunks[c];
      if (ch === undefined) return i; // a chunk never written is all clear
      let b = i - base;
      for (; b < stop && (b & 7) !== 0; b++) if ((ch[b >>> 3]! & (1 << (b & 7))) === 0) return base + b;
      while (b + 8 <= stop && ch[b >>> 3] === 0xff) b += 8;
      for (; b < stop; b++) if ((ch[b >>> 3]! & (1 << (b & 7))) === 0) return base + b;
      i = base + stop;
    }
    return -1;
  }

  /** Are all bits of [start, start + len) clear? */
  rangeClear(start: number, len: number): boolean {
    for (let i = start; i < start + len; ) {
      const c = chunkOf(i, BITMAP_CHUNK_SHIFT);
      const chunkEnd = (c + 1) * BITMAP_CHUNK_BITS;
      const stop = Math.min(start + len, chunkEnd);
      const ch = this.#chunks[c];
      if (ch !== undefined) {
        for (let j = i; j < stop; j++) {
          const b = j - c * BITMAP_CHUNK_BITS;
          if ((b & 7) === 0 && j + 8 <= stop) {
            if (ch[b >>> 3] !== 0) return false;
            j += 7;
            continue;
          }
          if ((ch[b >>> 3]! & (1 << (b & 7))) !== 0) return false;
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
    const chunkBytes = BITMAP_CHUNK_BITS >>> 3;
    for (let j = 0; j < bytes; ) {
      // The run of dst bytes whose first bit lies in one chunk.
      const abs = start + j * 8;
      const c = chunkOf(abs, BITMAP_CHUNK_SHIFT);
      const b = abs - c * BITMAP_CHUNK_BITS;
      const q = b >>> 3;
      const r = b & 7;
      const fit = Math.min(bytes - j, chunkBytes - q);
      const ch = this.#chunks[c];
      if (r === 0) {
        if (ch === undefined) dst.fill(0, j, j + fit);
        else dst.set(ch.subarray(q, q + fit), j);
      } else {
        // Each byte takes its high bits from the next byte, the last one perhaps from the next chunk.
        const next = this.#chunks[c + 1];
        for (let k = 0; k < fit; k++) {
          const qq = q + k;
          const lo = ch === undefined ? 0 : ch[qq]!;
          const hi = qq + 1 < chunkBytes ? (ch === undefined ? 0 : ch[qq + 1]!) : next === undefined ? 0 : next[0]!;
          dst[j + k] = ((lo >>> r) | (hi << (8 - r))) & 0xff;
        }
      }
      j += fit;
    }
    if ((n & 7) !== 0) dst[bytes - 1] = dst[bytes - 1]! & ((1 << (n & 7)) - 1);
  }

  /** Bytes allocated (for memory accounting). */
  get bytes(): number {
    let n = 0;
    for (const ch of this.#chunks) if (ch !== undefined) n += ch.length;
    return n;
  }
}

/**
 * The EXT4_FT_* file type (0..7) of each inode, 0 when unknown, as three bit planes: a
 * volume of files and directories costs two bits an inode where a byte each would cost
 * eight, and directories can be taken a byte (eight inodes) at a time. e2fsck keeps
 * inode_dir_map and inode_reg_map and reads the inode for the other types.
 */
export class FileTypes {
  readonly #planes = [new ChunkedBitmap(Number.MAX_SAFE_INTEGER), new ChunkedBitmap(Number.MAX_SAFE_INTEGER), new ChunkedBitmap(Number.MAX_SAFE_INTEGER)] as const;
  #scratch = new Uint8Array(0);

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
 * A count per inode, stored as e2fsck's icount stores it: most inodes have a count of 0 or
 * 1 (a file with one name), kept as one bit; the others (directories, hard links) in a map.
 * So memory follows the inodes with more than one link, not the inode count. Counts stop
 * at `max`.
 */
export class InodeCounts {
  readonly #one: ChunkedBitmap;
  /** The inodes the map holds, so that the common miss costs a bit test, not a map look-up. */
  readonly #inMany: ChunkedBitmap;
  readonly #many = new Map<number, number>();

  constructor(size: number, readonly max: number) {
    this.#one = new ChunkedBitmap(size);
    this.#inMany = new ChunkedBitmap(size);
  }

  get(i: number): number {
    if (this.#one.test(i)) return 1; // the bit and the map never both hold an inode
    return this.#inMany.test(i) ? this.#many.get(i)! : 0;
  }

  /** get(i) === 1, without a map look-up. */
  isOne(i: number): boolean {
    return this.#one.test(i);
  }

  /** Bytes allocated by the bits (for memory accounting; the map of larger counts is not counted). */
  get bytes(): number {
    return this.#one.bytes + this.#inMany.bytes;
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
      const v = Math.min(this.#many.get(i)! + 1, this.max);
      this.#many.set(i, v);
      return v;
    }
    this.#one.set(i);
    return 1;
  }
}
