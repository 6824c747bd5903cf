/**
 * SanityRing: a chunk judged by slices, in any split between the scan and a helper, gives
 * exactly inodeBlockSanity's verdicts; a helper that dies holding a slice is noticed and
 * the verdicts are still right; a slot reused for a shorter chunk keeps no stale verdict.
 */
import { describe, expect, it } from "vitest";
import { inodeChecksum, inodeChecksumSeed } from "../format/checksum.js";
import { inodeStruct } from "../format/inode.js";
import { SANITY_SLICE_BLOCKS, SanityRing, inodeBlockSanity, type SanityGeometry } from "./sanity.js";

const g: SanityGeometry = { inodeSize: 256, blockSize: 1024, metadataCsum: true, csumSeed: 0x1234abcd, firstDataBlock: 1, blocksCount: 1 << 20 };
const IPB = g.blockSize / g.inodeSize;
const CSUM_LO = inodeStruct.offsetOf("l_i_checksum_lo");
const CSUM_HI = inodeStruct.offsetOf("i_checksum_hi");
const EXTRA = inodeStruct.offsetOf("i_extra_isize");
const GENERATION = inodeStruct.offsetOf("i_generation");

/**
 * A chunk of `blocks` blocks from inode `firstIno`: per block, all zero, all valid
 * (checksums right), mixed (some checksums wrong), or garbage (random bytes).
 */
function chunk(blocks: number, firstIno: number, seed: number): Uint8Array {
  let x = seed;
  const rnd = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x >>> 24;
  };
  const buf = new Uint8Array(blocks * g.blockSize);
  for (let b = 0; b < blocks; b++) {
    const kind = rnd() % 4;
    for (let k = 0; k < IPB; k++) {
      const off = (b * IPB + k) * g.inodeSize;
      if (kind === 0) continue;
      for (let i = 0; i < g.inodeSize; i++) buf[off + i] = rnd();
      if (kind === 3) continue;
      buf[off + EXTRA] = 32;
      buf[off + EXTRA + 1] = 0;
      const ino = firstIno + b * IPB + k;
      const gen = new DataView(buf.buffer).getUint32(off + GENERATION, true);
      const c = inodeChecksum(buf, off, g.inodeSize, inodeChecksumSeed(g.csumSeed, ino, gen));
      const wrong = kind === 2 && rnd() < 160 ? 1 : 0;
      buf[off + CSUM_LO] = (c & 0xff) ^ wrong;
      buf[off + CSUM_LO + 1] = (c >>> 8) & 0xff;
      buf[off + CSUM_HI] = (c >>> 16) & 0xff;
      buf[off + CSUM_HI + 1] = c >>> 24;
    }
  }
  return buf;
}

function load(ring: SanityRing, slot: number, bytes: Uint8Array, firstIno: number, count: number): void {
  ring.slots[slot]!.data.set(bytes);
  ring.load(slot, firstIno, count, bytes.length);
}

function verdicts(ring: SanityRing, slot: number, count: number, blocks: number): { csums: number[]; insane: number[] } {
  const s = ring.slots[slot]!;
  return { csums: [...s.csums.subarray(0, count)], insane: [...s.insane.subarray(0, blocks)] };
}

function reference(bytes: Uint8Array, firstIno: number, count: number): { csums: number[]; insane: number[] } {
  const r = inodeBlockSanity(bytes, firstIno, count, g);
  return { csums: [...r.csums], insane: [...r.insane] };
}

const BLOCKS = SANITY_SLICE_BLOCKS * 4 + 5; // four whole slices and a short one
const FIRST = 1 + 7 * 4096;

describe("SanityRing", () => {
  it("gives inodeBlockSanity's verdicts however the slices are split", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const bytes = chunk(BLOCKS, FIRST, seed);
      const count = BLOCKS * IPB - (seed % 3); // a short last block now and then
      const want = reference(bytes, FIRST, count);
      expect(want.insane).toContain(1); // the garbage blocks are found
      expect(want.csums).toContain(2); // and the wrong checksums

      // The scan alone.
      const ring = SanityRing.create(2, BLOCKS * g.blockSize, g, true);
      load(ring, 0, bytes, FIRST, count);
      expect(ring.finish(0, 1000)).toBe(true);
      expect(verdicts(ring, 0, count, BLOCKS)).toEqual(want);

      // A helper (another view of the same slots) took every slice first.
      load(ring, 1, bytes, FIRST, count);
      new SanityRing(ring.slots, g).judgeFree(1);
      expect(ring.finish(1, 1000)).toBe(true);
      expect(verdicts(ring, 1, count, BLOCKS)).toEqual(want);
    }
  });

  it("judges a slice a helper holds and never finishes, and says the helper is lost", () => {
    const bytes = chunk(BLOCKS, FIRST, 99);
    const count = BLOCKS * IPB;
    const ring = SanityRing.create(1, BLOCKS * g.blockSize, g, true);
    load(ring, 0, bytes, FIRST, count);
    expect(new SanityRing(ring.slots, g).claimSlice(0, 2)).toBe(true); // and then the helper dies
    expect(ring.finish(0, 20)).toBe(false);
    expect(verdicts(ring, 0, count, BLOCKS)).toEqual(reference(bytes, FIRST, count));
  });

  it("leaves no verdict of a slot's previous chunk behind", () => {
    const ring = SanityRing.create(1, BLOCKS * g.blockSize, g, false); // plain buffers work the same
    const a = chunk(BLOCKS, FIRST, 5);
    load(ring, 0, a, FIRST, BLOCKS * IPB);
    ring.finish(0, 1000);
    const b = chunk(SANITY_SLICE_BLOCKS + 3, FIRST + 4096, 6);
    const count = (SANITY_SLICE_BLOCKS + 3) * IPB;
    load(ring, 0, b, FIRST + 4096, count);
    expect(ring.finish(0, 1000)).toBe(true);
    expect(verdicts(ring, 0, count, SANITY_SLICE_BLOCKS + 3)).toEqual(reference(b, FIRST + 4096, count));
  });
});
