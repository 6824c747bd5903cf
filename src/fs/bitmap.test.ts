import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AssertionError } from "../debug/assert.js";
import {
  allClear,
  allSet,
  clearBit,
  clearBits,
  countZeros,
  findNextSet,
  findNextZero,
  findZeroRun,
  markBitmapEnd,
  setBit,
  setBits,
  testBit,
  zeroRunLength,
} from "./bitmap.js";

// A naive model: one boolean per bit.
const bitsOf = (b: Uint8Array): boolean[] => Array.from({ length: b.length * 8 }, (_, i) => ((b[i >> 3]! >> (i & 7)) & 1) === 1);

function naiveNext(bits: boolean[], from: number, to: number, want: boolean): number {
  for (let i = from; i < to; i++) if (bits[i] === want) return i;
  return -1;
}

function naiveRun(bits: boolean[], from: number, to: number, len: number): { start: number; length: number } | null {
  let best: { start: number; length: number } | null = null;
  let i = from;
  while (i < to) {
    if (bits[i]!) {
      i++;
      continue;
    }
    let j = i;
    while (j < to && !bits[j]! && j - i < len) j++;
    if (j - i >= len) return { start: i, length: len };
    if (best === null || j - i > best.length) best = { start: i, length: j - i };
    while (j < to && !bits[j]!) j++;
    i = j;
  }
  return best;
}

/** Bitmaps biased towards long runs of 0x00 and 0xff bytes, so the byte skipping is exercised. */
const bitmapArb = fc
  .array(fc.oneof(fc.constant(0), fc.constant(0xff), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 48 })
  .map((a) => Uint8Array.from(a));

const withRange = bitmapArb.chain((b) =>
  fc.tuple(fc.constant(b), fc.integer({ min: 0, max: b.length * 8 }), fc.integer({ min: 0, max: b.length * 8 })).map(([bm, x, y]) => ({ bm, from: Math.min(x, y), to: Math.max(x, y) })),
);

describe("bitmap helpers", () => {
  it("testBit/setBit/clearBit address bit i as bit i&7 of byte i>>3 (little-endian, like ext4_set_bit)", () => {
    const b = new Uint8Array(2);
    setBit(b, 0);
    setBit(b, 9);
    expect(Array.from(b)).toEqual([0x01, 0x02]);
    expect(testBit(b, 9)).toBe(true);
    expect(testBit(b, 8)).toBe(false);
    clearBit(b, 0);
    expect(b[0]).toBe(0);
    expect(() => setBit(b, 16)).toThrow(AssertionError);
  });

  it("findNextZero and findNextSet agree with a naive scan", () => {
    fc.assert(
      fc.property(withRange, ({ bm, from, to }) => {
        const bits = bitsOf(bm);
        expect(findNextZero(bm, from, to)).toBe(naiveNext(bits, from, to, false));
        expect(findNextSet(bm, from, to)).toBe(naiveNext(bits, from, to, true));
      }),
      { numRuns: 2000 },
    );
  });

  it("countZeros, allClear and allSet agree with a naive count", () => {
    fc.assert(
      fc.property(withRange, ({ bm, from, to }) => {
        const zeros = bitsOf(bm).slice(from, to).filter((x) => !x).length;
        expect(countZeros(bm, from, to)).toBe(zeros);
        expect(allClear(bm, from, to)).toBe(zeros === to - from);
        expect(allSet(bm, from, to)).toBe(zeros === 0);
      }),
      { numRuns: 2000 },
    );
  });

  it("findZeroRun returns the first run of len clear bits, else the first longest shorter one", () => {
    fc.assert(
      fc.property(withRange, fc.integer({ min: 1, max: 70 }), ({ bm, from, to }, len) => {
        expect(findZeroRun(bm, from, to, len)).toEqual(naiveRun(bitsOf(bm), from, to, len));
      }),
      { numRuns: 2000 },
    );
  });

  it("zeroRunLength counts clear bits from a position, capped", () => {
    fc.assert(
      fc.property(withRange, fc.integer({ min: 0, max: 70 }), ({ bm, from, to }, max) => {
        const bits = bitsOf(bm);
        let n = 0;
        while (from + n < to && n < max && !bits[from + n]!) n++;
        expect(zeroRunLength(bm, from, to, max)).toBe(n);
      }),
      { numRuns: 1000 },
    );
  });

  it("setBits and clearBits change exactly [from, to)", () => {
    fc.assert(
      fc.property(withRange, fc.boolean(), ({ bm, from, to }, value) => {
        const before = bitsOf(bm);
        const b = bm.slice();
        if (value) setBits(b, from, to);
        else clearBits(b, from, to);
        const after = bitsOf(b);
        for (let i = 0; i < after.length; i++) expect(after[i]).toBe(i >= from && i < to ? value : before[i]);
      }),
      { numRuns: 2000 },
    );
  });

  it("markBitmapEnd sets the padding after the last valid bit (ext4_mark_bitmap_end)", () => {
    const b = new Uint8Array(4);
    markBitmapEnd(b, 13, 32);
    expect(Array.from(b)).toEqual([0x00, 0xe0, 0xff, 0xff]);
    markBitmapEnd(b, 32, 32);
    expect(countZeros(b, 0, 32)).toBe(13);
  });

  it("rejects ranges outside the bitmap as bugs", () => {
    const b = new Uint8Array(1);
    expect(() => findNextZero(b, 0, 9)).toThrow(AssertionError);
    expect(() => countZeros(b, 5, 4)).toThrow(AssertionError);
    expect(() => findZeroRun(b, 0, 8, 0)).toThrow(AssertionError);
  });
});
