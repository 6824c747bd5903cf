import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bgHasSuper, calcReservedGdtBlocks, groupBlockCount, groupFirstBlock, superAndBgdBlocks } from "./geometry.js";
import { defaultJournalSize } from "./journal.js";
import { lostFoundBlocks, type FileLayout, type Plan } from "./layout.js";
import { planMkfs } from "./mkfs.js";
import { resolveParams, type MkfsOptions } from "./options.js";
import { backupGroups } from "./resize_inode.js";

function plan(opts: MkfsOptions): ReturnType<typeof planMkfs> {
  const params = resolveParams(opts, { bytes: undefined, isDevice: false, name: "test.img" });
  return planMkfs(params, "test.img");
}

/** [start, length] of every block mkfs puts metadata or data in. */
function usedIntervals(p: Plan): [number, number][] {
  const { geo } = p;
  const out: [number, number][] = [];
  for (let g = 0; g < geo.groupCount; g++) {
    const n = superAndBgdBlocks(geo, g);
    if (n > 0) out.push([groupFirstBlock(geo, g), n]);
    out.push([p.blockBitmap[g]!, 1], [p.inodeBitmap[g]!, 1], [p.inodeTable[g]!, geo.inodeTableBlocks]);
  }
  const file = (f: FileLayout): void => {
    if (f.map.kind === "extents") {
      for (const r of f.map.runs) out.push([r.pblk, r.len]);
      if (f.map.leaf !== undefined) out.push([f.map.leaf, 1]);
    } else {
      for (const b of f.map.iBlock) if (b !== 0) out.push([b, 1]);
      for (const t of f.map.indirect.values()) for (const b of t) if (b !== 0) out.push([b, 1]);
    }
  };
  file(p.root);
  file(p.lostFound);
  if (p.resizeDind !== undefined) out.push([p.resizeDind, 1]);
  if (p.journal !== undefined) file(p.journal);
  return out; // a block map's indirect blocks appear once, as the pointer that leads to them
}

function popcountRange(bm: Uint8Array, n: number): number {
  let c = 0;
  for (let i = 0; i < n; i++) c += (bm[i >> 3]! >> (i & 7)) & 1;
  return c;
}

const fsArb = fc.record({
  fsType: fc.constantFrom("ext2", "ext3", "ext4"),
  blockSize: fc.constantFrom(1024, 2048, 4096),
  sizeKiB: fc.integer({ min: 4096, max: 600 * 1024 }),
  nocsum: fc.boolean(),
  flex: fc.constantFrom(undefined, "1", "4", "16"),
  ratio: fc.constantFrom(undefined, "4096", "8192", "65536"),
});

describe("planLayout() properties", () => {
  it("keeps every group's metadata inside the volume, allocates no block twice and counts free blocks from the bitmap", () => {
    fc.assert(
      fc.property(fsArb, (a) => {
        const opts: MkfsOptions = {
          fsType: a.fsType,
          blockSize: String(a.blockSize),
          size: `${a.sizeKiB}K`,
          ...(a.ratio !== undefined ? { bytesPerInode: a.ratio } : {}),
          ...(a.fsType === "ext4" && a.nocsum ? { features: ["^metadata_csum,^64bit"] } : {}),
          ...(a.fsType === "ext4" && a.flex !== undefined ? { flexBgSize: a.flex } : {}),
        };
        let p: ReturnType<typeof planMkfs>;
        try {
          p = plan(opts);
        } catch {
          return; // too small for the options: mke2fs refuses too
        }
        const { geo } = p.plan;
        const iv = usedIntervals(p.plan).sort((x, y) => x[0] - y[0]);
        for (const [s, n] of iv) {
          expect(s).toBeGreaterThanOrEqual(geo.firstDataBlock);
          expect(s + n).toBeLessThanOrEqual(geo.blocksCount);
        }
        for (let i = 1; i < iv.length; i++) expect(iv[i]![0]).toBeGreaterThanOrEqual(iv[i - 1]![0] + iv[i - 1]![1]);
        const used = iv.reduce((t, [, n]) => t + n, 0);
        let free = 0;
        for (let g = 0; g < geo.groupCount; g++) {
          const n = groupBlockCount(geo, g);
          const zeros = n - popcountRange(p.plan.map.diskBitmap(g), n);
          expect(p.plan.freeBlocks[g]).toBe(zeros);
          free += zeros;
        }
        expect(p.plan.totalFreeBlocks).toBe(free);
        expect(free + used).toBe(geo.blocksCount - geo.firstDataBlock);
        expect(p.plan.totalFreeInodes).toBe(geo.inodesCount - p.plan.usedInodes.length);
      }),
      { numRuns: 60 },
    );
  });
});

describe("geometry and layout match mke2fs 1.47.0", () => {
  it("lays out a 64 MiB ext4 (1 KiB blocks by the small profile) as mke2fs does", () => {
    const p = plan({ size: "64M" });
    const { geo } = p;
    expect([geo.blockSize, geo.blocksCount, geo.inodesCount, geo.groupCount, geo.reservedGdtBlocks]).toEqual([1024, 65536, 16384, 8, 256]);
    expect(Array.from(p.plan.blockBitmap)).toEqual([259, 260, 261, 262, 263, 264, 265, 266]);
    expect(p.plan.inodeBitmap[0]).toBe(267);
    expect(p.plan.inodeTable[1]).toBe(787);
    expect(p.plan.root.first).toBe(4371);
    expect(p.plan.lostFound.first).toBe(4372);
    expect(p.plan.lostFound.dataBlocks).toBe(12);
    expect(p.plan.resizeDind).toBe(4384);
    expect(p.plan.journal?.first).toBe(16385);
    expect(p.journalBlocks).toBe(4096);
    expect(p.plan.overhead).toBe(9499);
    expect(p.plan.totalFreeBlocks).toBe(56023);
    expect(p.plan.freeBlocks[0]).toBe(3808);
    expect(Array.from(p.plan.itableUnused.subarray(0, 2))).toEqual([2037, 2048]);
  });

  it("lays out a 600 MiB ext4 with 4 KiB blocks as mke2fs does", () => {
    const p = plan({ size: "600M" });
    expect(p.geo.reservedGdtBlocks).toBe(74);
    expect(Array.from(p.plan.blockBitmap)).toEqual([76, 77, 78, 79, 80]);
    expect(Array.from(p.plan.inodeTable)).toEqual([86, 566, 1046, 1526, 2006]);
    expect(p.plan.root.first).toBe(2486);
    expect(p.plan.resizeDind).toBe(2491);
    expect(p.plan.journal?.first).toBe(65536);
    expect([p.plan.overhead, p.plan.totalFreeBlocks, p.plan.freeBlocks[0]]).toEqual([6734, 146860, 30276]);
  });
});

describe("mke2fs formulas", () => {
  it("reserves GDT blocks for 1024 times growth, capped at one block of pointers", () => {
    expect(calcReservedGdtBlocks(153600, 0, 32768, 64, 1, 4096)).toBe(74);
    expect(calcReservedGdtBlocks(65536, 1, 8192, 16, 1, 1024)).toBe(256);
    expect(calcReservedGdtBlocks(2 ** 32 - 1, 0, 32768, 64, 2048, 4096)).toBe(0);
  });
  it("sizes the journal by filesystem size", () => {
    expect([2047, 2048, 32767, 32768, 262144, 4194304, 2 ** 32].map(defaultJournalSize)).toEqual([-1, 1024, 1024, 4096, 8192, 32768, 262144]);
  });
  it("grows lost+found to 16 KiB and at least two blocks", () => {
    expect([1024, 2048, 4096, 65536].map(lostFoundBlocks)).toEqual([12, 8, 4, 2]);
  });
  it("lists backup groups as powers of 3, 5 and 7", () => {
    const p = plan({ size: "8G", blockSize: "1024", features: ["^resize_inode"] });
    expect(backupGroups(p.geo).slice(0, 10)).toEqual([1, 3, 5, 7, 9, 25, 27, 49, 81, 125]);
    expect(bgHasSuper(p.geo, 243)).toBe(true);
    expect(bgHasSuper(p.geo, 245)).toBe(false);
  });
});
