import { describe, expect, it } from "vitest";
import { autoSize, type TreeNeeds } from "./auto_size.js";
import { planMkfs } from "./mkfs.js";
import { resolveParams } from "./options.js";

/** A tree needing `bytes` of 4 KiB-block data (scaled for other block sizes) and `inodes` inodes. */
const needs = (bytes: number, inodes: number, minBlockSize = 1024): TreeNeeds => ({
  inodes, minBlockSize, blocks: (bs) => Math.ceil(bytes / bs),
});

/** Free blocks beyond the reserve, and free inodes, of a size as mkfs would lay it out. */
function room(size: string, extra: { inodeCount?: string; blockSize?: string } = {}): { blocks: number; inodes: number; bs: number } {
  const p = resolveParams({ size, ...extra }, { bytes: undefined, isDevice: false, name: "x.img" });
  const { plan } = planMkfs(p, "x.img");
  return { blocks: plan.totalFreeBlocks - p.rBlocksCount, inodes: plan.totalFreeInodes, bs: p.blockSize };
}

describe("autoSize", () => {
  it("picks the smallest MiB count with 10% more free blocks than the tree needs", () => {
    const n = needs(300 * 2 ** 20, 1000);
    const a = autoSize(n, {}, "x.img");
    const fit = room(a.size);
    expect(fit.blocks).toBeGreaterThanOrEqual(Math.ceil(n.blocks(fit.bs, 256) * 1.1));
    const smaller = room(`${a.mib - 1}M`);
    expect(smaller.blocks).toBeLessThan(Math.ceil(n.blocks(smaller.bs, 256) * 1.1));
    expect(a.inodeCount).toBeUndefined();
  });

  it("raises -N instead of the size for a tree of many small files", () => {
    const a = autoSize(needs(40 * 2 ** 20, 200_000), { blockSize: "4096" }, "x.img");
    expect(a.inodeCount).toBeDefined();
    expect(a.mib).toBeLessThan(400); // at one inode per 16 KiB it would be over 3 GiB
    expect(room(a.size, { inodeCount: a.inodeCount!, blockSize: "4096" }).inodes).toBeGreaterThanOrEqual(220_000);
  });

  it("keeps a given -N and says so when it is too small", () => {
    expect(() => autoSize(needs(2 ** 20, 5000), { inodeCount: "1000" }, "x.img")).toThrow(/-N 1000/);
  });

  it("gives 4 KiB blocks when the small size class's 1 KiB blocks cannot hold the tree's symlinks or xattrs", () => {
    expect(autoSize(needs(2 ** 20, 100), {}, "x.img").blockSize).toBe(1024);
    const a = autoSize(needs(2 ** 20, 100, 4096), {}, "x.img");
    expect(a.blockSize).toBe(4096);
    expect(a.blockSizeOption).toBe("4096");
    expect(autoSize(needs(2 ** 20, 100, 4096), { blockSize: "1024" }, "x.img").blockSize).toBe(1024); // -b given wins
  });
});
