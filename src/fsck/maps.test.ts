import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ChunkedBitmap, FileTypes, GrowF64, GrowU32, InodeCounts, NameSet } from "./maps.js";

describe("ChunkedBitmap", () => {
  it("sets, tests and clears bits across chunk boundaries, allocating only touched chunks", () => {
    const bm = new ChunkedBitmap(10_000_000);
    expect(bm.bytes).toBeLessThan(512); // the two shared chunks (of 64 bytes here) and room for two more
    for (const i of [0, 1, 65_535, 65_536, 9_999_999]) {
      expect(bm.set(i)).toBe(false);
      expect(bm.set(i)).toBe(true); // set returns the previous state
      expect(bm.test(i)).toBe(true);
    }
    expect(bm.test(2)).toBe(false);
    expect(bm.bytes).toBeLessThan(64 * 1024);
    bm.clear(65_536);
    expect(bm.test(65_536)).toBe(false);
    expect(bm.count).toBe(4);
  });

  it("tells whether a range is all clear", () => {
    const bm = new ChunkedBitmap(1 << 20);
    for (let i = 100; i < 200; i++) bm.set(i);
    expect(bm.rangeClear(0, 100)).toBe(true);
    expect(bm.rangeClear(150, 10)).toBe(false);
    expect(bm.rangeClear(199, 1)).toBe(false);
    expect(bm.rangeClear(200, 200_000)).toBe(true);
  });

  it("extracts bits as an on-disk bitmap (bit i of byte i/8)", () => {
    const bm = new ChunkedBitmap(1 << 18);
    bm.set(65_530);
    bm.set(65_540);
    const dst = new Uint8Array(4);
    bm.extract(65_528, 32, dst);
    expect([...dst]).toEqual([0b100, 0b10000, 0, 0]);
  });

  it("extracts any range at any alignment as test() sees it, across chunks and holes", () => {
    let x = 7;
    const rnd = (n: number): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return (x >>> 8) % n;
    };
    const bm = new ChunkedBitmap(1 << 20);
    for (let i = 0; i < 3000; i++) bm.set(rnd(3 * 65_536)); // chunks 0..2 in use, 3.. absent
    bm.setRange(65_530, 40);
    for (let t = 0; t < 300; t++) {
      const start = rnd(4 * 65_536);
      const n = 1 + rnd(70_000);
      const dst = new Uint8Array(Math.ceil(n / 8)).fill(0xa5); // overwritten, padding bits zeroed
      bm.extract(start, n, dst);
      for (let j = 0; j < dst.length * 8; j++) {
        const want = j < n && bm.test(start + j);
        if (((dst[j >>> 3]! >>> (j & 7)) & 1) !== (want ? 1 : 0)) expect({ start, n, j, bit: !want }).toEqual({ start, n, j, bit: want });
      }
    }
  });
});

describe("ChunkedBitmap as shared and own chunks", () => {
  type Op = { kind: "set" | "clear" | "test"; i: number } | { kind: "range"; i: number; n: number } | { kind: "extract" | "clearRange" | "findClear"; i: number; n: number };
  const SIZE = 3_000; // 24 chunks of 128 bits
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constantFrom("set" as const, "clear" as const, "test" as const), i: fc.nat(SIZE - 1) }),
    // runs in order, as pass 1 fills the maps, and runs covering whole chunks
    fc.record({ kind: fc.constant("range" as const), i: fc.nat(SIZE - 1), n: fc.nat(400) }),
    fc.record({ kind: fc.constantFrom("extract" as const, "clearRange" as const, "findClear" as const), i: fc.nat(SIZE - 1), n: fc.nat(600) }),
  );

  it("answers every query as a plain array of bits does, whatever the order of writes", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const bm = new ChunkedBitmap(SIZE);
        const model = new Uint8Array(SIZE);
        for (const o of ops) {
          const n = "n" in o ? Math.min(o.n, SIZE - o.i) : 1;
          if (o.kind === "set") expect(bm.set(o.i)).toBe(model[o.i] === 1);
          if (o.kind === "set" || o.kind === "range") model.fill(1, o.i, o.i + n);
          if (o.kind === "range") bm.setRange(o.i, n);
          if (o.kind === "clear") {
            bm.clear(o.i);
            model[o.i] = 0;
          }
          if (o.kind === "test") expect(bm.test(o.i)).toBe(model[o.i] === 1);
          if (o.kind === "clearRange") expect(bm.rangeClear(o.i, n)).toBe(!model.subarray(o.i, o.i + n).includes(1));
          if (o.kind === "findClear") {
            const k = model.subarray(o.i, o.i + n).indexOf(0);
            expect(bm.findFirstClear(o.i, o.i + n)).toBe(k === -1 ? -1 : o.i + k);
          }
          if (o.kind === "extract" && n > 0) {
            const dst = new Uint8Array(Math.ceil(n / 8)).fill(0x5a);
            bm.extract(o.i, n, dst);
            const got = [...Array(n).keys()].map((j) => (dst[j >>> 3]! >>> (j & 7)) & 1);
            expect(got).toEqual([...model.subarray(o.i, o.i + n)]);
          }
          expect(bm.count).toBe(model.reduce((a, b) => a + b, 0));
        }
        for (let i = 0; i < SIZE; i++) if (bm.test(i) !== (model[i] === 1)) expect({ i, set: bm.test(i) }).toEqual({ i, set: model[i] === 1 });
      }),
      { numRuns: 300 },
    );
  });

  it("holds only the chunks that mix set and clear bits", () => {
    const inodes = 1_100_000;
    const full = new ChunkedBitmap(inodes);
    const dirs = new ChunkedBitmap(inodes);
    for (let i = 1; i < 1_000_000; i++) {
      full.set(i); // in order: each chunk handed back as its last bit is set
      if (i % 1000 === 0) dirs.set(i);
    }
    full.set(0);
    expect(full.count).toBe(1_000_000);
    // the index (8,594 chunks of 128 bits, two bytes each) and the chunk at the end of the run
    expect(full.bytes).toBeLessThan(18 * 1024);
    // the index and one 16-byte chunk a directory, not a bit an inode (134 KiB)
    expect(dirs.bytes).toBeLessThan(18 * 1024 + 1000 * 16 * 2 + 4096);
    const unordered = new ChunkedBitmap(inodes);
    for (let i = 999_999; i >= 0; i--) unordered.set(i); // no chunk filled in order: the sweeps hand them back
    expect(unordered.count).toBe(1_000_000);
    expect(unordered.test(1_000_000)).toBe(false);
    unordered.set(1_000_000); // a write after the sweeps
    expect(unordered.findFirstClear(0, inodes)).toBe(1_000_001);
  });

  it("keeps bits past 2^32 (block numbers of 64bit volumes)", () => {
    const bm = new ChunkedBitmap(2 ** 34);
    for (const i of [0, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 5, 2 ** 34 - 1]) {
      expect(bm.set(i)).toBe(false);
      expect(bm.test(i)).toBe(true);
      expect(bm.test(i + 1)).toBe(false);
    }
    bm.setRange(2 ** 33 - 3, 10);
    expect(bm.findFirstClear(2 ** 33 - 3, 2 ** 34)).toBe(2 ** 33 + 7);
    expect(bm.rangeClear(2 ** 33 + 7, 1000)).toBe(true);
    // bits outside the map are not kept (a damaged volume's block numbers reach it)
    expect(bm.set(2 ** 34)).toBe(false);
    expect(bm.test(2 ** 34)).toBe(false);
    bm.setRange(2 ** 34 - 2, 10);
    expect(bm.test(2 ** 34 - 2)).toBe(true);
    expect(bm.set(-1)).toBe(false);
    expect(bm.count).toBe(5 + 10 + 1);
  });
});

describe("ChunkedBitmap.findFirstClear", () => {
  it("finds what a bit-by-bit scan finds, across full bytes, chunks and unwritten chunks", () => {
    const bm = new ChunkedBitmap(1 << 20);
    bm.setRange(0, 200_000); // chunks 0-2 full up to 200,000, chunk 3 partly, the rest unwritten
    for (const i of [70_000, 150_001, 199_999]) bm.clear(i);
    const naive = (a: number, b: number): number => {
      for (let i = a; i < b; i++) if (!bm.test(i)) return i;
      return -1;
    };
    for (const [a, b] of [[0, 1 << 20], [5, 70_000], [5, 70_001], [70_001, 150_001], [150_002, 199_999], [150_002, 200_000], [199_999, 200_000], [200_000, 300_000], [65_531, 65_541]] as const) {
      expect(bm.findFirstClear(a, b)).toBe(naive(a, b));
    }
  });
});

describe("ChunkedBitmap.setRange", () => {
  it("sets every bit of the range across bytes and chunks, counting only new bits", () => {
    const b = new ChunkedBitmap(1 << 20);
    b.set(65_540);
    b.set(70_000);
    b.setRange(65_530, 20); // across a chunk boundary (65,536), over one bit already set
    expect(b.count).toBe(20 + 1);
    for (let i = 65_530; i < 65_550; i++) expect(b.test(i)).toBe(true);
    expect(b.test(65_529)).toBe(false);
    expect(b.test(65_550)).toBe(false);
    b.setRange(65_532, 4);
    expect(b.count).toBe(21);
    expect(b.rangeClear(65_550, 100)).toBe(true);
  });
});

describe("FileTypes", () => {
  it("keeps each inode's type 0..7 and extracts the directories", () => {
    const t = new FileTypes(200_000);
    expect(t.get(123_456)).toBe(0);
    expect(t.bytes).toBeLessThan(3 * 128);
    for (let i = 1; i < 200_000; i++) t.set(i, i % 8);
    t.set(16, 1); // changed
    for (let i = 1; i < 200_000; i++) expect(t.get(i)).toBe(i === 16 ? 1 : i % 8);
    const dirs = new Uint8Array(4);
    t.extractDirs(9, 32, dirs); // inodes 9..40: directories are those = 2 mod 8, except 16 (was 0 anyway)
    const want = [...Array(32).keys()].map((j) => ((9 + j) % 8 === 2 ? 1 : 0));
    expect([...Array(32).keys()].map((j) => (dirs[j >>> 3]! >>> (j & 7)) & 1)).toEqual(want);
  });
});

describe("InodeCounts", () => {
  it("keeps 0 and 1 as a bit and larger counts apart, saturating at max", () => {
    const c = new InodeCounts(2_000_000, 0xffff);
    expect(c.get(1_999_999)).toBe(0);
    expect(c.inc(5)).toBe(1);
    expect(c.inc(5)).toBe(2);
    expect(c.inc(5)).toBe(3);
    expect(c.get(5)).toBe(3);
    c.set(5, 1);
    expect(c.get(5)).toBe(1);
    expect(c.inc(5)).toBe(2);
    c.set(5, 0);
    expect(c.get(5)).toBe(0);
    expect(c.inc(5)).toBe(1);
    c.set(6, 70_000);
    expect(c.get(6)).toBe(0xffff);
    expect(c.inc(6)).toBe(0xffff);
  });
});

describe("InodeCounts against a plain array", () => {
  it("keeps any sequence of sets and increments, its counts above one in a typed hash", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ i: fc.nat(300), v: fc.option(fc.nat(5), { nil: undefined }) }), { maxLength: 500 }), (ops) => {
        const c = new InodeCounts(301, 4);
        const model = new Array<number>(301).fill(0);
        for (const { i, v } of ops) {
          if (v === undefined) expect(c.inc(i)).toBe((model[i] = Math.min(model[i]! + 1, 4)));
          else {
            c.set(i, v);
            model[i] = Math.min(v, 4);
          }
        }
        for (let i = 0; i <= 300; i++) if (c.get(i) !== model[i]) expect({ i, count: c.get(i) }).toEqual({ i, count: model[i] });
      }),
      { numRuns: 300 },
    );
  });
});

describe("NameSet", () => {
  it("finds a name again, by bytes, across hash chains and growth, until cleared", () => {
    const s = new NameSet();
    const enc = new TextEncoder();
    const names = Array.from({ length: 3000 }, (_, i) => enc.encode(`name-${i}`));
    for (const n of names) expect(s.insert(n, 0, n.length)).toBe(false);
    for (const n of names) expect(s.insert(n, 0, n.length)).toBe(true);
    // Same bytes at another offset of another buffer; a prefix is another name.
    const buf = new Uint8Array([0, 0, ...enc.encode("name-7")]);
    expect(s.insert(buf, 2, 6)).toBe(true);
    expect(s.insert(buf, 2, 5)).toBe(false);
    s.clear();
    expect(s.insert(names[0]!, 0, names[0]!.length)).toBe(false);
  });
});

describe("growable arrays", () => {
  it("GrowU32 and GrowF64 keep pushed values in order", () => {
    const a = new GrowU32();
    const b = new GrowF64();
    for (let i = 0; i < 5000; i++) {
      a.push(i * 3);
      b.push(i * 2 ** 40);
    }
    expect(a.get(4999)).toBe(4999 * 3);
    expect(b.get(4999)).toBe(4999 * 2 ** 40);
    expect(a.view().length).toBe(5000);
    a.set(0, 9);
    expect(a.view()[0]).toBe(9);
  });
});
