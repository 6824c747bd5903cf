import { describe, expect, it } from "vitest";
import { array, bytes, defineStruct, join64, split64, u16le, u32be, u32le, u64le, u8 } from "./struct.js";

const demo = defineStruct("demo", 0x20, {
  d_a: [0x0, u32le],
  d_b: [0x4, u16le],
  d_c: [0x6, u8],
  d_big: [0x8, u32be],
  d_arr: [0xc, array(u16le, 2)],
  d_raw: [0x10, bytes(4)],
  d_wide: [0x18, u64le],
});

describe("defineStruct", () => {
  it("decodes every field at its offset and endianness", () => {
    const b = new Uint8Array(0x20);
    b.set([1, 0, 0, 0, 2, 0, 3, 0xff, 0, 0, 0, 4, 5, 0, 6, 0, 9, 8, 7, 6], 0);
    b[0x18] = 0x10;
    const r = demo.decode(b);
    expect(r).toEqual({ d_a: 1, d_b: 2, d_c: 3, d_big: 4, d_arr: [5, 6], d_raw: new Uint8Array([9, 8, 7, 6]), d_wide: 16n });
  });

  it("encode of decode leaves unnamed bytes untouched", () => {
    const b = new Uint8Array(0x20).map((_, i) => (i * 37 + 11) & 0xff);
    const before = b.slice();
    demo.encode(demo.decode(b), b);
    expect(b).toEqual(before);
  });

  it("fields past the limit read as zero and are not written", () => {
    const b = new Uint8Array(0x20).fill(0xaa);
    const r = demo.decode(b, 0, 0x8);
    expect(r.d_big).toBe(0);
    expect(r.d_a).toBe(0xaaaaaaaa);
    demo.encode({ d_big: 7 }, b, 0, 0x8);
    expect(b[0xb]).toBe(0xaa);
  });

  it("rejects overlapping and oversized tables at definition", () => {
    expect(() => defineStruct("bad", 8, { a: [0, u32le], b: [2, u32le] })).toThrow(/overlaps/);
    expect(() => defineStruct("bad", 4, { a: [2, u32le] })).toThrow(/past size/);
  });

  it("join64 and split64 are inverse above 2^32", () => {
    const v = 2 ** 40 + 12345;
    const { lo, hi } = split64(v);
    expect(join64(lo, hi)).toBe(v);
  });
});
