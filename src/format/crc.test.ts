import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AssertionError } from "../debug/assert.js";
import { crc16, crc32c, crc32cLe32, crc32cLe64 } from "./crc.js";

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Bit-at-a-time references, straight from the polynomial definitions. */
function crc32cBitwise(crc: number, data: Uint8Array): number {
  let c = crc >>> 0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return c >>> 0;
}
function crc16Bitwise(crc: number, data: Uint8Array): number {
  let c = crc & 0xffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
  }
  return c;
}

/** The value CRC catalogues list: ~0 seed, final inversion. */
const crc32cFinal = (data: Uint8Array): number => ~crc32c(0xffffffff, data) >>> 0;

describe("crc32c", () => {
  it("gives the CRC-32C check value 0xe3069283 for '123456789'", () => {
    expect(crc32cFinal(ascii("123456789"))).toBe(0xe3069283);
  });

  it("is the raw update ext4 uses: no inversion inside", () => {
    expect(crc32c(0xffffffff, ascii("123456789"))).toBe(0x1cf96d7c);
    expect(crc32c(0, new Uint8Array(0))).toBe(0);
    expect(crc32c(0x12345678, new Uint8Array(0))).toBe(0x12345678);
    expect(crc32c(-1, new Uint8Array(0))).toBe(0xffffffff);
  });

  // RFC 3720 (iSCSI) appendix B.4; values as the CRC field reads little-endian.
  it("matches the RFC 3720 B.4 test vectors", () => {
    expect(crc32cFinal(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32cFinal(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32cFinal(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32cFinal(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
    const scsiRead = new Uint8Array(48);
    scsiRead.set([0x01, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, 0, 0, 0x04, 0]);
    scsiRead.set([0, 0, 0, 0x14, 0, 0, 0, 0x18, 0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0], 24);
    expect(crc32cFinal(scsiRead)).toBe(0xd9963a56); // the iSCSI SCSI Read (10) command PDU
  });

  it("equals the bitwise reference on any range of any buffer, aligned or not", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 600 }),
        fc.nat(7),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: -0x80000000, max: 0xffffffff }),
        (bytes, shift, a, b, seed) => {
          // Copy at an odd offset inside a bigger buffer so byteOffset alignment varies.
          const backing = new Uint8Array(bytes.length + 8);
          backing.set(bytes, shift);
          const data = backing.subarray(shift, shift + bytes.length);
          const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
          const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
          expect(crc32c(seed, data, start, end)).toBe(crc32cBitwise(seed, data.subarray(start, end)));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("chains: crc of a then b equals crc of a+b", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
        const ab = new Uint8Array(a.length + b.length);
        ab.set(a);
        ab.set(b, a.length);
        expect(crc32c(crc32c(0xffffffff, a), b)).toBe(crc32c(0xffffffff, ab));
      }),
    );
  });

  it("crc32cLe32 and crc32cLe64 equal crc32c over the little-endian bytes", () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.maxSafeNat(), (seed, v32, v64) => {
        const b4 = new Uint8Array(4);
        new DataView(b4.buffer).setUint32(0, v32, true);
        expect(crc32cLe32(seed, v32)).toBe(crc32c(seed, b4));
        const b8 = new Uint8Array(8);
        new DataView(b8.buffer).setBigUint64(0, BigInt(v64), true);
        expect(crc32cLe64(seed, v64)).toBe(crc32c(seed, b8));
      }),
    );
    expect(crc32cLe64(0xffffffff, 2 ** 40 + 7)).toBe(crc32c(0xffffffff, new Uint8Array([7, 0, 0, 0, 0, 1, 0, 0])));
  });

  it("crc32cLe64 rejects values that are not u64-safe integers", () => {
    expect(() => crc32cLe64(0, -1)).toThrow(AssertionError);
    expect(() => crc32cLe64(0, 1.5)).toThrow(AssertionError);
    expect(() => crc32cLe64(0, 2 ** 53)).toThrow(AssertionError);
  });

  it("rejects ranges outside the buffer", () => {
    const d = new Uint8Array(10);
    expect(() => crc32c(0, d, 0, 11)).toThrow(AssertionError);
    expect(() => crc32c(0, d, -1, 5)).toThrow(AssertionError);
    expect(() => crc32c(0, d, 6, 5)).toThrow(AssertionError);
    expect(() => crc16(0, d, 0, 11)).toThrow(AssertionError);
  });

  it("reports throughput on a 16 MiB buffer (informational)", () => {
    const big = new Uint8Array(16 << 20);
    for (let i = 0; i < big.length; i++) big[i] = Math.imul(i, 0x9e3779b1) >>> 24;
    crc32c(0xffffffff, big); // warm up
    const runs = 5;
    let r = 0;
    const t0 = performance.now();
    for (let k = 0; k < runs; k++) r ^= crc32c(0xffffffff, big);
    const whole = performance.now() - t0;
    const t1 = performance.now();
    for (let k = 0; k < runs; k++) for (let o = 0; o < big.length; o += 4096) r ^= crc32c(0xffffffff, big, o, o + 4096);
    const blocks = performance.now() - t1;
    const mbps = (ms: number): string => ((runs * big.length) / 1e6 / (ms / 1000)).toFixed(0);
    console.log(`crc32c throughput: ${mbps(whole)} MB/s whole buffer, ${mbps(blocks)} MB/s per 4 KiB block (${r})`);
    expect(Number.isInteger(r)).toBe(true);
  });
});

describe("crc16", () => {
  it("gives the CRC-16/ARC check value 0xbb3d for '123456789' (init 0)", () => {
    expect(crc16(0, ascii("123456789"))).toBe(0xbb3d);
  });

  it("gives the CRC-16/MODBUS check value 0x4b37 for '123456789' (init 0xffff, as ext4 seeds)", () => {
    expect(crc16(0xffff, ascii("123456789"))).toBe(0x4b37);
    expect(crc16(~0, ascii("123456789"))).toBe(0x4b37);
  });

  it("equals the bitwise reference on any range", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(0xffff), fc.nat(), (bytes, seed, a) => {
        const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
        expect(crc16(seed, bytes, start)).toBe(crc16Bitwise(seed, bytes.subarray(start)));
      }),
    );
  });
});

/** Checks against real mke2fs output: the superblock crc32c and the uninit_bg descriptor crc16. */
describe("crc against mke2fs images", () => {
  const mke2fs = spawnSync("mke2fs", ["-V"], { encoding: "utf8" });
  const have = mke2fs.error === undefined && mke2fs.status === 0;
  if (!have) {
    if (process.env.EXT4TS_REQUIRE_ORACLES === "1") {
      it("mke2fs is required (EXT4TS_REQUIRE_ORACLES=1)", () => {
        expect.fail("mke2fs not found");
      });
    } else {
      console.log("ORACLE SKIPPED: mke2fs not found");
      it.skip("mke2fs oracle (mke2fs not found)", () => undefined);
    }
    return;
  }

  function makeImage(features: string): Uint8Array {
    const dir = mkdtempSync(join(tmpdir(), "ext4ts-crc-"));
    try {
      const img = join(dir, "img");
      const r = spawnSync("mke2fs", ["-q", "-F", "-t", "ext4", "-b", "1024", "-O", features, img, "20000"], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      return new Uint8Array(readFileSync(img));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it("the metadata_csum superblock checksum is crc32c(~0, sb[0..0x3fc))", () => {
    const img = makeImage("metadata_csum");
    const sb = img.subarray(1024, 2048);
    const stored = new DataView(sb.buffer, sb.byteOffset).getUint32(0x3fc, true);
    expect(crc32c(0xffffffff, sb, 0, 0x3fc)).toBe(stored);
  });

  it("the uninit_bg descriptor checksum is crc16 over uuid, le32 group, descriptor", () => {
    const img = makeImage("^metadata_csum,^64bit,uninit_bg");
    const uuid = img.subarray(1024 + 0x68, 1024 + 0x78);
    const gdt = img.subarray(2048, 3072); // 1 KiB blocks: descriptors start in block 2
    const sbv = new DataView(img.buffer, img.byteOffset + 1024, 1024);
    const groups = Math.ceil((sbv.getUint32(0x4, true) - sbv.getUint32(0x14, true)) / sbv.getUint32(0x20, true));
    expect(groups).toBeGreaterThan(1);
    for (let g = 0; g < groups; g++) {
      const desc = gdt.subarray(g * 32, g * 32 + 32);
      let c = crc16(0xffff, uuid);
      c = crc16(c, new Uint8Array([g & 0xff, (g >>> 8) & 0xff, (g >>> 16) & 0xff, g >>> 24]));
      c = crc16(c, desc, 0, 0x1e);
      expect(c).toBe(desc[0x1e]! | (desc[0x1f]! << 8));
    }
  });
});
