/**
 * Bit operations on ext4 block and inode bitmaps (@kernel ext4_set_bit, ext4_clear_bit,
 * ext4_test_bit, ext4_find_next_zero_bit, ext4_find_next_bit, ext4_count_free and
 * ext4_mark_bitmap_end; fs/ext4/ext4.h, bitmap.c, ialloc.c).
 *
 * Bitmaps are little-endian bit strings: bit i is bit (i & 7) of byte i >> 3 (the
 * kernel's __set_bit_le). Every function works on the half-open bit range
 * [from, to) and never reads or writes a byte outside it beyond the bytes that hold
 * its end bits. Searches skip whole bytes (0xff when looking for a clear bit, 0x00 when
 * looking for a set one), so a scan costs one comparison per 8 uninteresting bits.
 *
 * Pure: no I/O, no state, no async. Out-of-range arguments are bugs (AssertionError).
 */

import { assert } from "../debug/assert.js";

/** A run of bits [start, start + length). */
export interface BitRun {
  readonly start: number;
  readonly length: number;
}

/** Number of zero bits in each byte value. */
const ZEROS_IN_BYTE: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) {
    let z = 0;
    for (let i = 0; i < 8; i++) if ((b & (1 << i)) === 0) z++;
    t[b] = z;
  }
  return t;
})();

/** Lowest clear bit of each byte value (8 for 0xff). */
const FIRST_ZERO_IN_BYTE: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) {
    let i = 0;
    while (i < 8 && (b & (1 << i)) !== 0) i++;
    t[b] = i;
  }
  return t;
})();

function checkRange(bitmap: Uint8Array, from: number, to: number): void {
  assert(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from <= to && to <= bitmap.length * 8, () => `Bit range [${from}, ${to}) outside a ${bitmap.length * 8}-bit bitmap`);
}

function checkBit(bitmap: Uint8Array, bit: number): void {
  assert(Number.isInteger(bit) && bit >= 0 && bit < bitmap.length * 8, () => `Bit ${bit} outside a ${bitmap.length * 8}-bit bitmap`);
}

/** @kernel ext4_test_bit */
export function testBit(bitmap: Uint8Array, bit: number): boolean {
  checkBit(bitmap, bit);
  return (bitmap[bit >>> 3]! & (1 << (bit & 7))) !== 0;
}

/** @kernel ext4_set_bit */
export function setBit(bitmap: Uint8Array, bit: number): void {
  checkBit(bitmap, bit);
  bitmap[bit >>> 3] = bitmap[bit >>> 3]! | (1 << (bit & 7));
}

/** @kernel ext4_clear_bit */
export function clearBit(bitmap: Uint8Array, bit: number): void {
  checkBit(bitmap, bit);
  bitmap[bit >>> 3] = bitmap[bit >>> 3]! & ~(1 << (bit & 7));
}

/** Mask of bits lo..hi-1 within one byte (0 <= lo <= hi <= 8). */
const byteMask = (lo: number, hi: number): number => ((0xff << lo) & (0xff >>> (8 - hi))) & 0xff;

/** Set every bit of [from, to). @kernel ext4_set_bits (mballoc.c) */
export function setBits(bitmap: Uint8Array, from: number, to: number): void {
  checkRange(bitmap, from, to);
  fillBits(bitmap, from, to, true);
}

/** Clear every bit of [from, to). */
export function clearBits(bitmap: Uint8Array, from: number, to: number): void {
  checkRange(bitmap, from, to);
  fillBits(bitmap, from, to, false);
}

function fillBits(bitmap: Uint8Array, from: number, to: number, value: boolean): void {
  let i = from;
  while (i < to && (i & 7) !== 0) {
    const hi = Math.min(8, (i & 7) + (to - i));
    const m = byteMask(i & 7, hi);
    const k = i >>> 3;
    bitmap[k] = value ? bitmap[k]! | m : bitmap[k]! & ~m;
    i += hi - (i & 7);
  }
  const fullEnd = to - (to & 7);
  if (i < fullEnd) {
    bitmap.fill(value ? 0xff : 0, i >>> 3, fullEnd >>> 3);
    i = fullEnd;
  }
  if (i < to) {
    const m = byteMask(0, to - i);
    const k = i >>> 3;
    bitmap[k] = value ? bitmap[k]! | m : bitmap[k]! & ~m;
  }
}

/**
 * Set the bits from `from` to the end of the bitmap's `endBits` (the padding past the
 * last valid bit of a group). @kernel ext4_mark_bitmap_end
 */
export function markBitmapEnd(bitmap: Uint8Array, from: number, endBits: number): void {
  if (from >= endBits) return;
  setBits(bitmap, from, endBits);
}

/** First clear bit in [from, to), or -1. @kernel ext4_find_next_zero_bit */
export function findNextZero(bitmap: Uint8Array, from: number, to: number): number {
  checkRange(bitmap, from, to);
  let i = from;
  // Head: bits of a partial first byte.
  while (i < to && (i & 7) !== 0) {
    if ((bitmap[i >>> 3]! & (1 << (i & 7))) === 0) return i;
    i++;
  }
  // Whole bytes: skip 0xff.
  const lastByte = to >>> 3;
  let k = i >>> 3;
  while (k < lastByte && bitmap[k] === 0xff) k++;
  if (k < lastByte) return k * 8 + FIRST_ZERO_IN_BYTE[bitmap[k]!]!;
  // Tail.
  for (i = Math.max(i, k * 8); i < to; i++) {
    if ((bitmap[i >>> 3]! & (1 << (i & 7))) === 0) return i;
  }
  return -1;
}

/** First set bit in [from, to), or -1. @kernel ext4_find_next_bit */
export function findNextSet(bitmap: Uint8Array, from: number, to: number): number {
  checkRange(bitmap, from, to);
  let i = from;
  while (i < to && (i & 7) !== 0) {
    if ((bitmap[i >>> 3]! & (1 << (i & 7))) !== 0) return i;
    i++;
  }
  const lastByte = to >>> 3;
  let k = i >>> 3;
  while (k < lastByte && bitmap[k] === 0) k++;
  if (k < lastByte) return k * 8 + FIRST_ZERO_IN_BYTE[~bitmap[k]! & 0xff]!;
  for (i = Math.max(i, k * 8); i < to; i++) {
    if ((bitmap[i >>> 3]! & (1 << (i & 7))) !== 0) return i;
  }
  return -1;
}

/** Number of clear bits in [from, to). @kernel ext4_count_free */
export function countZeros(bitmap: Uint8Array, from: number, to: number): number {
  checkRange(bitmap, from, to);
  let n = 0;
  let i = from;
  while (i < to && (i & 7) !== 0) {
    if ((bitmap[i >>> 3]! & (1 << (i & 7))) === 0) n++;
    i++;
  }
  const lastByte = to >>> 3;
  let k = i >>> 3;
  for (; k < lastByte; k++) n += ZEROS_IN_BYTE[bitmap[k]!]!;
  for (i = Math.max(i, k * 8); i < to; i++) {
    if ((bitmap[i >>> 3]! & (1 << (i & 7))) === 0) n++;
  }
  return n;
}

/** Are all bits of [from, to) clear? */
export function allClear(bitmap: Uint8Array, from: number, to: number): boolean {
  return from === to || findNextSet(bitmap, from, to) === -1;
}

/** Are all bits of [from, to) set? */
export function allSet(bitmap: Uint8Array, from: number, to: number): boolean {
  return from === to || findNextZero(bitmap, from, to) === -1;
}

/** Length of the run of clear bits starting at `at`, counting at most `max` bits and never past `to`. */
export function zeroRunLength(bitmap: Uint8Array, at: number, to: number, max: number = to - at): number {
  checkRange(bitmap, at, to);
  const end = Math.min(to, at + max);
  const set = findNextSet(bitmap, at, end);
  return (set === -1 ? end : set) - at;
}

/**
 * A run of clear bits in [from, to): the first run at least `len` long (reported as
 * exactly `len` bits from its start), or, when there is none, the longest shorter run
 * (the first of equally long ones). Null when every bit is set.
 */
export function findZeroRun(bitmap: Uint8Array, from: number, to: number, len: number): BitRun | null {
  checkRange(bitmap, from, to);
  assert(Number.isInteger(len) && len >= 1, () => `Invalid run length ${len}`);
  let best: BitRun | null = null;
  let i = from;
  while (i < to) {
    const start = findNextZero(bitmap, i, to);
    if (start === -1) break;
    const set = findNextSet(bitmap, start, Math.min(to, start + len));
    const end = set === -1 ? Math.min(to, start + len) : set;
    const length = end - start;
    if (length >= len) return { start, length: len };
    if (best === null || length > best.length) best = { start, length };
    if (set === -1) break; // reached `to` inside a run
    i = set + 1;
  }
  return best;
}
