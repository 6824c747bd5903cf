/**
 * The block bitmap of a filesystem being made, and e2fsprogs' block allocators over
 * it (ext2fs_get_free_blocks2, ext2fs_new_block2, ext2fs_new_range in
 * lib/ext2fs/alloc.c), so that tables, directories and the journal land exactly where
 * mke2fs puts them.
 *
 * Memory stays proportional to what is allocated, not to the volume: a group's bitmap
 * is materialized on its first allocation; until then its only used blocks are the
 * superblock/descriptor/reserved-GDT prefix (ext2fs_reserve_super_and_bgd), known
 * from the geometry. A 16 TiB volume with flex_bg materializes one group in sixteen.
 */

import { FsError } from "../../src/errors.js";
import { groupBlockCount, groupFirstBlock, groupLastBlock, groupOfBlock, superAndBgdBlocks, type Geometry } from "./geometry.js";

/** Index of the first bit equal to `want` in bits [lo, hi] of `bm`, or -1. */
function findBit(bm: Uint8Array, lo: number, hi: number, want: 0 | 1): number {
  let i = lo;
  const skip = want === 1 ? 0x00 : 0xff;
  while (i <= hi) {
    if ((i & 7) === 0 && i + 7 <= hi && bm[i >> 3] === skip) {
      i += 8;
      continue;
    }
    if (((bm[i >> 3]! >> (i & 7)) & 1) === want) return i;
    i++;
  }
  return -1;
}

function popcount8(x: number): number {
  x = x - ((x >> 1) & 0x55);
  x = (x & 0x33) + ((x >> 2) & 0x33);
  return (x + (x >> 4)) & 0x0f;
}

export class BlockMap {
  readonly geo: Geometry;
  readonly #groups: (Uint8Array | undefined)[];

  constructor(geo: Geometry) {
    this.geo = geo;
    this.#groups = new Array<Uint8Array | undefined>(geo.groupCount);
  }

  /** Bitmap bytes per group (clusters per group / 8, rounded up). */
  get bytesPerGroup(): number {
    return Math.ceil(this.geo.blocksPerGroup / 8);
  }

  #bits(group: number): Uint8Array {
    let bm = this.#groups[group];
    if (bm === undefined) {
      bm = new Uint8Array(this.bytesPerGroup);
      const n = superAndBgdBlocks(this.geo, group);
      for (let i = 0; i < n; i++) bm[i >> 3]! |= 1 << (i & 7);
      this.#groups[group] = bm;
    }
    return bm;
  }

  /** Is the group's bitmap materialized (anything allocated in it besides the superblock prefix)? */
  isMaterialized(group: number): boolean {
    return this.#groups[group] !== undefined;
  }

  test(blk: number): boolean {
    return this.findFirstSet(blk, blk) !== -1;
  }

  mark(blk: number): void {
    this.markRange(blk, 1);
  }

  /** Mark [blk, blk + n) used. */
  markRange(blk: number, n: number): void {
    let b = blk;
    const end = blk + n;
    if (b < this.geo.firstDataBlock || end > this.geo.blocksCount) {
      throw new FsError("EINVAL", `Cannot mark blocks ${blk}..${end - 1}: outside the filesystem`);
    }
    while (b < end) {
      const g = groupOfBlock(this.geo, b);
      const first = groupFirstBlock(this.geo, g);
      const stop = Math.min(end, groupLastBlock(this.geo, g) + 1);
      const bm = this.#bits(g);
      for (let i = b - first; i < stop - first; i++) bm[i >> 3]! |= 1 << (i & 7);
      b = stop;
    }
  }

  /** First block in [lo, hi] (inclusive) whose bit is `want`, or -1. */
  #find(lo: number, hi: number, want: 0 | 1): number {
    let b = Math.max(lo, this.geo.firstDataBlock);
    const last = Math.min(hi, this.geo.blocksCount - 1);
    while (b <= last) {
      const g = groupOfBlock(this.geo, b);
      const first = groupFirstBlock(this.geo, g);
      const stop = Math.min(last, groupLastBlock(this.geo, g));
      const bm = this.#groups[g];
      if (bm === undefined) {
        const prefixEnd = first + superAndBgdBlocks(this.geo, g); // used: [first, prefixEnd)
        if (want === 1 && b < prefixEnd) return b;
        if (want === 0) {
          const z = Math.max(b, prefixEnd);
          if (z <= stop) return z;
        }
      } else {
        const i = findBit(bm, b - first, stop - first, want);
        if (i >= 0) return first + i;
      }
      b = stop + 1;
    }
    return -1;
  }

  /** @kernel ext2fs_find_first_set_block_bitmap2 */
  findFirstSet(lo: number, hi: number): number {
    return this.#find(lo, hi, 1);
  }

  /** @kernel ext2fs_find_first_zero_block_bitmap2 */
  findFirstZero(lo: number, hi: number): number {
    return this.#find(lo, hi, 0);
  }

  /** Used blocks in the group. */
  usedInGroup(group: number): number {
    const bm = this.#groups[group];
    if (bm === undefined) return superAndBgdBlocks(this.geo, group);
    const n = groupBlockCount(this.geo, group);
    let used = 0;
    const full = n >> 3;
    for (let i = 0; i < full; i++) used += popcount8(bm[i]!);
    for (let i = full * 8; i < n; i++) used += (bm[i >> 3]! >> (i & 7)) & 1;
    return used;
  }

  /** Free blocks in the group. */
  freeInGroup(group: number): number {
    return groupBlockCount(this.geo, group) - this.usedInGroup(group);
  }

  /**
   * The group's bitmap as written to disk: one block, bits past the group's last block
   * set (ext2fs_write_bitmaps pads the last group and fills the block with 0xff).
   */
  diskBitmap(group: number): Uint8Array {
    const out = new Uint8Array(this.geo.blockSize).fill(0xff);
    const n = groupBlockCount(this.geo, group);
    const bm = this.#groups[group];
    const src = bm ?? this.#bits(group);
    out.set(src.subarray(0, this.bytesPerGroup));
    for (let i = n; i < this.geo.blockSize * 8; i++) out[i >> 3]! |= 1 << (i & 7);
    if (bm === undefined) this.#groups[group] = undefined; // do not keep the materialization
    return out;
  }

  /**
   * First b in [start, finish) (wrapping past the end when finish <= start) such that
   * [b, b + num) is free; undefined if none. start 0 means s_first_data_block; finish
   * 0 means start (search everything).
   * @kernel ext2fs_get_free_blocks2
   */
  getFreeBlocks(start: number, finish: number, num: number): number | undefined {
    const { firstDataBlock, blocksCount } = this.geo;
    let b = start === 0 ? firstDataBlock : start;
    const fin = finish === 0 ? start : finish;
    const n = num === 0 ? 1 : num;
    const wrapAt = blocksCount - n + 1; // the first b for which b + n - 1 >= blocksCount
    let wraps = 0;
    for (;;) {
      if (b >= wrapAt) {
        if (fin > start || ++wraps > 1) return undefined;
        b = firstDataBlock;
      }
      const s = this.findFirstSet(b, b + n - 1);
      if (s === -1) return b;
      // C steps b by one; every b up to s fails, and the loop ends when b reaches fin.
      const next = Math.min(s + 1, wrapAt);
      if (fin > b && fin <= next) return undefined;
      b = next;
    }
  }

  /**
   * The first free block at or after `goal`, wrapping to the start. Throws ENOSPC.
   * @kernel ext2fs_new_block2
   */
  newBlock(goal: number): number {
    const { firstDataBlock, blocksCount } = this.geo;
    const g = goal === 0 || goal >= blocksCount ? firstDataBlock : goal;
    let b = this.findFirstZero(g, blocksCount - 1);
    if (b === -1 && g !== firstDataBlock) b = this.findFirstZero(firstDataBlock, g - 1);
    if (b === -1) throw new FsError("ENOSPC", "Could not allocate block in ext2 filesystem");
    return b;
  }

  /**
   * The first run of free blocks at or after `goal` (wrapping once), at most `len`
   * long. Throws ENOSPC.
   * @kernel ext2fs_new_range (without EXT2_NEWRANGE_MIN_LENGTH)
   */
  newRange(goal: number, len: number): { start: number; len: number } {
    const { firstDataBlock, blocksCount } = this.geo;
    const g = goal === 0 || goal >= blocksCount ? firstDataBlock : goal;
    let start = this.findFirstZero(g, blocksCount - 1);
    if (start === -1 && g !== firstDataBlock) start = this.findFirstZero(firstDataBlock, blocksCount - 1);
    if (start === -1) throw new FsError("ENOSPC", "Could not allocate block in ext2 filesystem");
    const stop = Math.min(start + len - 1, blocksCount - 1);
    const set = this.findFirstSet(start, stop);
    return { start, len: (set === -1 ? stop + 1 : set) - start };
  }
}
