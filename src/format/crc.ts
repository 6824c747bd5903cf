/**
 * The two checksum primitives ext4 uses: CRC-32C for metadata_csum and CRC-16 for the
 * older uninit_bg group descriptor checksum. Pure functions over byte ranges; the rules
 * saying which bytes of which structure are summed live in format/checksum.ts.
 *
 * Both are "raw" updates, the convention of the kernel's crc32c()/crc16() and
 * e2fsprogs' ext2fs_crc32c_le()/ext2fs_crc16(): no inversion on entry or exit. ext4
 * seeds with ~0 and stores the raw result, so the textbook check value of CRC-32C is
 * `~crc32c(0xffffffff, "123456789") >>> 0 === 0xe3069283`. Every result is an unsigned
 * 32-bit number (`>>> 0`), so it compares equal to a `u32le` field as decoded.
 *
 * CRC-32C is on every metadata read and write, so it uses slicing-by-16: sixteen
 * 256-entry tables, built once at module load, let one step fold 16 input bytes with 16
 * independent table look-ups. On little-endian hosts the aligned middle of a range is
 * read through an Int32Array view (four bytes per load); the unaligned head and the
 * tail go a byte at a time.
 *
 * Counterparts: Linux lib/crc32.c (crc32c_le_base), lib/crc16.c; e2fsprogs
 * lib/ext2fs/crc32c.c, lib/ext2fs/crc16.c.
 */

import { assert } from "../debug/assert.js";

/** CRC-32C (Castagnoli) polynomial 0x1EDC6F41, bit-reflected. */
const CRC32C_POLY_LE = 0x82f63b78;
/** CRC-16 (ANSI/IBM, "CRC-16/ARC") polynomial 0x8005, bit-reflected. */
const CRC16_POLY_LE = 0xa001;

const SLICES = 16;

/**
 * Table k maps a byte b to the CRC of b followed by k zero bytes, so table 0 is the
 * classic byte-at-a-time table. Int32Array, and one binding per table, because V8
 * keeps those loads as small integers with no offset arithmetic: about twice as fast
 * as one flat Uint32Array indexed by k*256 + b.
 */
const CRC32C_TABLES: readonly Int32Array[] = (() => {
  const all = new Int32Array(256 * SLICES);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLY_LE : c >>> 1;
    all[n] = c;
  }
  for (let k = 1; k < SLICES; k++) {
    for (let n = 0; n < 256; n++) {
      const prev = all[(k - 1) * 256 + n]!; // n < 256 and k-1 < SLICES: inside the table
      all[k * 256 + n] = (prev >>> 8) ^ all[prev & 0xff]!;
    }
  }
  return Array.from({ length: SLICES }, (_, k) => all.subarray(k * 256, (k + 1) * 256));
})();
// Sixteen tables, so this destructuring cannot come up short.
const [t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15] = CRC32C_TABLES as [
  Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array,
  Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array,
];

const CRC16_TABLE: Uint16Array = (() => {
  const t = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC16_POLY_LE : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** Uint32Array views read host byte order; the word path is only right on little-endian hosts. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Below this many bytes the byte path is as fast as the word path. */
const WORD_PATH_MIN = 16;

/** A range outside the buffer is a caller bug, not corrupt input: AssertionError. */
function checkRange(data: Uint8Array, start: number, end: number): void {
  // Tested before assert() is called: this runs for every inode, and the message closure would cost an allocation.
  if (Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= data.length) return;
  assert(false, `Cannot checksum bytes [${start}, ${end}): buffer has ${data.length} bytes`);
}

/**
 * The word view of the last buffer checksummed. Callers sum many small ranges of one
 * buffer in a row (each inode of an inode table read, each block of a large read), and a
 * fresh Int32Array per range would cost more than the range's table look-ups.
 */
let viewBuffer: ArrayBufferLike | undefined;
let viewWords: Int32Array = new Int32Array(0);

function wordsOf(buffer: ArrayBufferLike): Int32Array {
  // A detached or shrunk buffer has a shorter byteLength than its old view covers.
  if (buffer !== viewBuffer || viewWords.length !== buffer.byteLength >>> 2) {
    viewBuffer = buffer;
    viewWords = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
  }
  return viewWords;
}

/**
 * CRC-32C of `data[start..end)` continuing from `crc`, with no pre- or post-inversion
 * (ext4 passes ~0 as the first seed, then chains results). Returns an unsigned 32-bit
 * value. Throws AssertionError if the range lies outside `data`.
 * @kernel crc32c (lib/crc32.c crc32c_le), e2fsprogs ext2fs_crc32c_le
 */
export function crc32c(crc: number, data: Uint8Array, start = 0, end: number = data.length): number {
  return crc32cBits(crc, data, start, end) >>> 0;
}

/**
 * crc32c() as a signed 32-bit number (the same bits). For chains of steps on hot paths:
 * an unsigned result of 2^30 or more is a heap number in V8, a small integer is not.
 */
export function crc32cBits(crc: number, data: Uint8Array, start: number, end: number): number {
  checkRange(data, start, end);
  let c = crc | 0;
  let i = start;

  // Table lookups below index 0..255 by construction (& 0xff, >>> 24, a byte), hence the `!`s.
  if (HOST_LITTLE_ENDIAN && end - start >= WORD_PATH_MIN) {
    // Byte steps up to a 4-byte boundary of the underlying buffer, then 16-byte steps, then 4-byte steps.
    for (; ((data.byteOffset + i) & 3) !== 0; i++) c = t0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
    const words = ((end - i) >>> 4) << 2;
    const w = wordsOf(data.buffer);
    const w0 = (data.byteOffset + i) >>> 2;
    for (let j = w0; j < w0 + words; j += 4) {
      const a = c ^ w[j]!;
      const b = w[j + 1]!;
      const d = w[j + 2]!;
      const e = w[j + 3]!;
      c =
        t15[a & 0xff]! ^ t14[(a >>> 8) & 0xff]! ^ t13[(a >>> 16) & 0xff]! ^ t12[a >>> 24]! ^
        t11[b & 0xff]! ^ t10[(b >>> 8) & 0xff]! ^ t9[(b >>> 16) & 0xff]! ^ t8[b >>> 24]! ^
        t7[d & 0xff]! ^ t6[(d >>> 8) & 0xff]! ^ t5[(d >>> 16) & 0xff]! ^ t4[d >>> 24]! ^
        t3[e & 0xff]! ^ t2[(e >>> 8) & 0xff]! ^ t1[(e >>> 16) & 0xff]! ^ t0[e >>> 24]!;
    }
    i += words * 4;
    // Whole words left (0..3), four table look-ups each, before the byte tail.
    for (let j = (data.byteOffset + i) >>> 2; i + 4 <= end; i += 4, j++) {
      const a = c ^ w[j]!;
      c = t3[a & 0xff]! ^ t2[(a >>> 8) & 0xff]! ^ t1[(a >>> 16) & 0xff]! ^ t0[a >>> 24]!;
    }
  } else {
    const end16 = i + ((end - i) & ~15);
    for (; i < end16; i += 16) {
      const a = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
      c =
        t15[a & 0xff]! ^ t14[(a >>> 8) & 0xff]! ^ t13[(a >>> 16) & 0xff]! ^ t12[a >>> 24]! ^
        t11[data[i + 4]!]! ^ t10[data[i + 5]!]! ^ t9[data[i + 6]!]! ^ t8[data[i + 7]!]! ^
        t7[data[i + 8]!]! ^ t6[data[i + 9]!]! ^ t5[data[i + 10]!]! ^ t4[data[i + 11]!]! ^
        t3[data[i + 12]!]! ^ t2[data[i + 13]!]! ^ t1[data[i + 14]!]! ^ t0[data[i + 15]!]!;
    }
  }
  for (; i < end; i++) c = t0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return c;
}

/**
 * crc32cBits over `data[start..end)`, a whole number of 16-byte steps starting on a
 * 4-byte boundary of the underlying buffer, with two of its 32-bit
 * little-endian words ANDed with a mask first: word `maskAt` (counted from `start`) with
 * `mask`, and word `maskAt + 1` with `mask2`. One loop of 16-byte steps with no byte or
 * word tails: how an inode is summed with its checksum halves read as zero. Returns
 * undefined where that loop cannot run (a big-endian host, an unaligned or odd range),
 * and the caller takes the general path.
 */
export function crc32cMaskedWords(
  crc: number, data: Uint8Array, start: number, end: number, maskAt: number, mask: number, mask2: number,
): number | undefined {
  checkRange(data, start, end);
  if (!HOST_LITTLE_ENDIAN || ((data.byteOffset + start) & 3) !== 0 || ((end - start) & 15) !== 0) return undefined;
  const w = wordsOf(data.buffer);
  const w0 = (data.byteOffset + start) >>> 2;
  const m0 = w0 + maskAt;
  let c = crc | 0;
  for (let j = w0; j < w0 + ((end - start) >>> 2); j += 4) {
    let a = w[j]!;
    let b = w[j + 1]!;
    let d = w[j + 2]!;
    let e = w[j + 3]!;
    if (j + 4 > m0 && j <= m0 + 1) {
      // This step holds a masked word (or both): rare, one or two steps of a range.
      const k = m0 - j;
      if (k === 0) a &= mask;
      else if (k === 1) b &= mask;
      else if (k === 2) d &= mask;
      else if (k === 3) e &= mask;
      if (k + 1 === 0) a &= mask2;
      else if (k + 1 === 1) b &= mask2;
      else if (k + 1 === 2) d &= mask2;
      else if (k + 1 === 3) e &= mask2;
    }
    a ^= c;
    c =
      t15[a & 0xff]! ^ t14[(a >>> 8) & 0xff]! ^ t13[(a >>> 16) & 0xff]! ^ t12[a >>> 24]! ^
      t11[b & 0xff]! ^ t10[(b >>> 8) & 0xff]! ^ t9[(b >>> 16) & 0xff]! ^ t8[b >>> 24]! ^
      t7[d & 0xff]! ^ t6[(d >>> 8) & 0xff]! ^ t5[(d >>> 16) & 0xff]! ^ t4[d >>> 24]! ^
      t3[e & 0xff]! ^ t2[(e >>> 8) & 0xff]! ^ t1[(e >>> 16) & 0xff]! ^ t0[e >>> 24]!;
  }
  return c;
}

/**
 * crc32c() over the four little-endian bytes of `value` (inode numbers, i_generation,
 * group numbers), without building a buffer. `value` is taken modulo 2^32.
 */
export function crc32cLe32(crc: number, value: number): number {
  return crc32cLe32Bits(crc, value) >>> 0;
}

/** crc32cLe32() as a signed 32-bit number (see crc32cBits). */
export function crc32cLe32Bits(crc: number, value: number): number {
  const a = crc ^ value;
  return t3[a & 0xff]! ^ t2[(a >>> 8) & 0xff]! ^ t1[(a >>> 16) & 0xff]! ^ t0[a >>> 24]!;
}

/**
 * crc32c() over the eight little-endian bytes of `value` (a 64-bit block number, as
 * the xattr block checksum feeds it), without building a buffer. Throws
 * AssertionError unless `value` is a non-negative safe integer.
 */
export function crc32cLe64(crc: number, value: number): number {
  assert(Number.isSafeInteger(value) && value >= 0, () => `Cannot checksum ${value} as a u64: not a non-negative safe integer`);
  const lo = value % 0x1_0000_0000;
  const hi = (value - lo) / 0x1_0000_0000;
  return crc32cLe32(crc32cLe32(crc, lo), hi);
}

/**
 * CRC-16 (poly 0xA001 reflected) of `data[start..end)` continuing from `crc`, no
 * inversion; returns a value in 0..0xffff. ext4's gdt_csum seeds it with ~0 (0xffff).
 * Throws AssertionError if the range lies outside `data`.
 * @kernel crc16 (lib/crc16.c), e2fsprogs ext2fs_crc16
 */
export function crc16(crc: number, data: Uint8Array, start = 0, end: number = data.length): number {
  checkRange(data, start, end);
  const t = CRC16_TABLE;
  let c = crc & 0xffff;
  for (let i = start; i < end; i++) c = (c >>> 8) ^ t[(c ^ data[i]!) & 0xff]!;
  return c;
}
