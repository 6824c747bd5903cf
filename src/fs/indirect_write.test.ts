/**
 * Block-map writes (indirect_write.ts) on real mke2fs ext2 volumes held in a MemoryDevice.
 *
 * Setup: `mke2fs -t ext2` images made at test time (1 KiB blocks, 64 MiB: 256 pointers a
 * block, triple indirect from logical block 65804; 4 KiB blocks, 64 MiB: triple indirect
 * from block 1049612), each with an empty block-mapped regular file `f` made by debugfs.
 *
 * Allocation: BitmapTestAllocator (test_volume.ts) sets and clears bits in the real block
 * bitmaps and keeps the free counts in step, so `e2fsck -fn` on the written-back image must
 * be clean: any problem it reports (block map, i_blocks, bitmap differences, counts) is a bug.
 *
 * Checks: an independent walker (below, not the engine's) lists the map's data and pointer
 * blocks; a model of logical -> physical says what must be mapped; i_blocks must equal data
 * plus pointer blocks; blocks freed must be exactly the data at or past the cut plus the
 * pointer blocks no longer in the map; at oracle points e2fsck -fn exits 0 and
 * `debugfs -R "stat f"` lists the same data runs and (IND)/(DIND)/(TIND) blocks.
 */
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DEBUGFS_ENV, makeBaseImage, saveAndFsck, type BaseImage } from "../../test/oracle/base_image.js";
import { runDir } from "../../test/oracle/images.js";
import { oracleAvailability, oracleGate, run, tool } from "../../test/oracle/oracle_env.js";
import { Rng } from "../../test/oracle/trees.js";
import { MemoryDevice } from "../device/memory.js";
import { FsError } from "../errors.js";
import { EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL, inodeBlocks, inodeSize64 } from "../format/inode.js";
import { freeBlocksCount } from "../format/superblock.js";
import { inodeTable } from "../format/group_desc.js";
import { childFunding, type BlockAllocator, type Funding } from "./alloc_request.js";
import { findGoal, mapForWrite, truncateData, writeData, type WriteDeps } from "./file_write.js";
import { withHandle } from "./handle.js";
import { bitmapMaxBlocks, blockToPath, indMapForWrite, indMaxBlocks, indTruncate, type WriteRun } from "./indirect_write.js";
import { iget } from "./inode.js";
import { getSize, igetWritable, markInodeDirty, setInodeBlocks, setSize, type InodeInfo } from "./inode_write.js";
import { readRange } from "./read.js";
import { Ext4Fs } from "./super.js";
import { BitmapTestAllocator } from "./test_volume.js";

const oracle = oracleAvailability(["mke2fs", "debugfs", "e2fsck"]);
const ENFORCE: Funding = { kind: "chargeNow", quota: "enforce" };

// ---------------------------------------------------------------------------------------------
// An independent walker of the block map (the test's own, not the engine's)

interface MapReport {
  /** Data pointers: logical block -> physical block. */
  readonly data: Map<number, number>;
  /** Pointer blocks, with their kind as debugfs names them. */
  readonly ptrs: { kind: "IND" | "DIND" | "TIND"; pblk: number }[];
}

async function walkMap(fs: Ext4Fs, raw: { i_block: Uint8Array }): Promise<MapReport> {
  const apb = fs.blockSize / 4;
  const word = (b: Uint8Array, i: number): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(i * 4, true);
  const data = new Map<number, number>();
  const ptrs: MapReport["ptrs"] = [];
  const kinds = ["IND", "DIND", "TIND"] as const;
  async function walk(pblk: number, depth: number, first: number): Promise<void> {
    ptrs.push({ kind: kinds[depth - 1]!, pblk });
    const b = (await fs.cache.get(pblk)).slice();
    const span = apb ** (depth - 1);
    for (let i = 0; i < apb; i++) {
      const q = word(b, i);
      if (q === 0) continue;
      if (depth === 1) data.set(first + i, q);
      else await walk(q, depth - 1, first + i * span);
    }
  }
  for (let i = 0; i < 12; i++) {
    const q = word(raw.i_block, i);
    if (q !== 0) data.set(i, q);
  }
  let start = 12;
  for (let d = 1; d <= 3; d++) {
    const q = word(raw.i_block, 11 + d);
    if (q !== 0) await walk(q, d, start);
    start += apb ** d;
  }
  return { data, ptrs };
}

/** Coalesced data runs of a map, in logical order. */
function runsOf(data: Map<number, number>): { lblk: number; pblk: number; len: number }[] {
  const out: { lblk: number; pblk: number; len: number }[] = [];
  for (const [l, p] of [...data].sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last !== undefined && last.lblk + last.len === l && last.pblk + last.len === p) last.len++;
    else out.push({ lblk: l, pblk: p, len: 1 });
  }
  return out;
}

/** Parse debugfs `stat`'s BLOCKS section. */
function debugfsBlocks(out: string): { runs: { lblk: number; pblk: number; len: number }[]; ptrs: { kind: string; pblk: number }[] } {
  const at = out.indexOf("BLOCKS:");
  const text = at < 0 ? "" : out.slice(at + 7, out.indexOf("TOTAL", at) < 0 ? undefined : out.indexOf("TOTAL", at));
  const runs: { lblk: number; pblk: number; len: number }[] = [];
  const ptrs: { kind: string; pblk: number }[] = [];
  for (const m of text.matchAll(/\((\d+)(?:-(\d+))?\):(\d+)(?:-(\d+))?|\((IND|DIND|TIND)\):(\d+)/g)) {
    if (m[5] !== undefined) {
      ptrs.push({ kind: m[5], pblk: Number(m[6]) });
      continue;
    }
    const l0 = Number(m[1]);
    const l1 = m[2] !== undefined ? Number(m[2]) : l0;
    runs.push({ lblk: l0, pblk: Number(m[3]), len: l1 - l0 + 1 });
  }
  const merged: typeof runs = [];
  for (const r of runs) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last.lblk + last.len === r.lblk && last.pblk + last.len === r.pblk) last.len += r.len;
    else merged.push({ ...r });
  }
  return { runs: merged, ptrs };
}

// ---------------------------------------------------------------------------------------------
// A volume under test

interface Vol {
  readonly dev: MemoryDevice;
  readonly fs: Ext4Fs;
  readonly alloc: BitmapTestAllocator;
  readonly inode: InodeInfo;
  /** What must be mapped: logical -> physical. */
  readonly model: Map<number, number>;
  readonly freeAtStart: number;
  readonly name: string;
}

async function openVol(base: BaseImage): Promise<Vol> {
  const dev = new MemoryDevice(base.size);
  for (const p of base.pieces) await dev.write(p.offset, p.data);
  const fs = await Ext4Fs.mount(dev, { readOnly: false });
  const inode = await igetWritable(fs, base.ino);
  expect(inode.raw.i_flags & EXT4_EXTENTS_FL).toBe(0);
  expect(inode.raw.i_block.every((b) => b === 0)).toBe(true);
  return { dev, fs, alloc: new BitmapTestAllocator(), inode, model: new Map(), freeAtStart: freeBlocksCount(fs.sb), name: base.name };
}

const charge = (v: Vol) => (blocks: number): void => {
  const { fs, inode } = v;
  setInodeBlocks(fs, inode, inodeBlocks(inode.raw, fs.features.hugeFile, fs.blockSize) + blocks * (fs.blockSize / 512));
};

/** Map [lblk, lblk + len) in one handle, recording the runs in the model. */
async function mapW(v: Vol, lblk: number, len: number, opts: { funding?: Funding; alloc?: BlockAllocator; maxRuns?: number } = {}): Promise<WriteRun[]> {
  const runs = await withHandle(v.fs, async (h) => {
    const r = await indMapForWrite(h, opts.alloc ?? v.alloc, v.inode, lblk, len, {
      purpose: "data",
      dquots: null,
      funding: opts.funding ?? ENFORCE,
      charge: charge(v),
      ...(opts.maxRuns !== undefined ? { maxRuns: opts.maxRuns } : {}),
    });
    // The caller's part: i_size covers what was mapped.
    const end = r.reduce((e, run) => Math.max(e, run.lblk + run.len), 0);
    if (end * v.fs.blockSize > getSize(v.fs, v.inode)) setSize(v.inode, end * v.fs.blockSize);
    await markInodeDirty(h, v.inode);
    return r;
  });
  for (const r of runs) {
    for (let i = 0; i < r.len; i++) {
      const had = v.model.get(r.lblk + i);
      if (r.fresh) expect(had, `block ${r.lblk + i} was mapped before but came back fresh`).toBeUndefined();
      else expect(had).toBe(r.pblk + i);
      v.model.set(r.lblk + i, r.pblk + i);
    }
  }
  return runs;
}

/** Truncate at `from` and check exactly the right blocks were given back. */
async function cut(v: Vol, from: number): Promise<void> {
  const before = await walkMap(v.fs, v.inode.raw);
  const freesBefore = v.alloc.frees.length;
  const freeBefore = freeBlocksCount(v.fs.sb);
  const res = await withHandle(v.fs, async (h) => {
    const r = await indTruncate(h, v.alloc, v.inode, from, charge(v), null);
    setSize(v.inode, Math.min(getSize(v.fs, v.inode), from * v.fs.blockSize));
    await markInodeDirty(h, v.inode);
    return r;
  });
  for (const l of [...v.model.keys()]) if (l >= from) v.model.delete(l);
  const after = await walkMap(v.fs, v.inode.raw);
  const expected = new Set<number>();
  for (const [l, p] of before.data) if (l >= from) expected.add(p);
  const ptrsAfter = new Set(after.ptrs.map((x) => x.pblk));
  for (const x of before.ptrs) if (!ptrsAfter.has(x.pblk)) expected.add(x.pblk);
  const got = new Set<number>();
  for (const f of v.alloc.frees.slice(freesBefore)) for (let i = 0; i < f.count; i++) got.add(f.pblk + i);
  expect([...got].sort((a, b) => a - b)).toEqual([...expected].sort((a, b) => a - b));
  expect(res.data + res.ptrBlocks).toBe(expected.size);
  expect(freeBlocksCount(v.fs.sb)).toBe(freeBefore + expected.size);
}

/** The map against the model; i_blocks; the inode as written back; the free count. */
async function verify(v: Vol): Promise<MapReport> {
  const snap = await iget(v.fs, v.inode.ino);
  expect(snap.raw.i_block).toEqual(v.inode.raw.i_block);
  const report = await walkMap(v.fs, v.inode.raw);
  expect(runsOf(report.data)).toEqual(runsOf(v.model));
  const used = report.data.size + report.ptrs.length;
  expect(snap.blocks).toBe(used * (v.fs.blockSize / 512));
  expect(freeBlocksCount(v.fs.sb)).toBe(v.freeAtStart - used);
  return report;
}

async function oracleCheck(v: Vol, tag: string): Promise<void> {
  const file = path.join(runDir(), `indw-${v.name}-${tag}.img`);
  await saveAndFsck(v.fs, v.dev, file);
  const stat = run(tool("debugfs"), ["-R", "stat f", file], { env: DEBUGFS_ENV }).stdout;
  const d = debugfsBlocks(stat);
  const ours = await walkMap(v.fs, v.inode.raw);
  expect(d.runs).toEqual(runsOf(ours.data));
  const key = (x: { kind: string; pblk: number }): string => `${x.kind}:${x.pblk}`;
  expect(d.ptrs.map(key).sort()).toEqual(ours.ptrs.map(key).sort());
}

const ptrGrants = (v: Vol, from = 0): BitmapTestAllocator["grants"] => v.alloc.grants.slice(from).filter((g) => g.req.purpose === "indirect");

/** Fails the n-th allocation call (1-based) with ENOSPC; the rest go to `inner`. */
function failingAt(inner: BlockAllocator, n: number): BlockAllocator & { calls: number } {
  const a = {
    calls: 0,
    alloc: (h: Parameters<BlockAllocator["alloc"]>[0], req: Parameters<BlockAllocator["alloc"]>[1]) =>
      ++a.calls === n ? Promise.reject(new FsError("ENOSPC", "injected")) : inner.alloc(h, req),
    free: (h: Parameters<BlockAllocator["free"]>[0], ino: number, pblk: number, count: number) => inner.free(h, ino, pblk, count, null),
  };
  return a;
}

// ---------------------------------------------------------------------------------------------

describe("block-map limits (indirect_write.ts)", () => {
  it("bitmapMaxBlocks() follows ext4_max_bitmap_size: the full map unless i_blocks (32-bit sectors without huge_file) cuts it", () => {
    // 1 KiB: 12 + 256 + 256^2 + 256^3 blocks; data and pointer blocks fit 2^32 sectors.
    expect(bitmapMaxBlocks(1024, false)).toBe(12 + 256 + 256 ** 2 + 256 ** 3);
    expect(bitmapMaxBlocks(1024, true)).toBe(16843020);
    expect(bitmapMaxBlocks(2048, false)).toBe(12 + 512 + 512 ** 2 + 512 ** 3);
    // 4 KiB without huge_file: (2^32 - 1) >> 3 blocks less the pointer blocks they need.
    expect(bitmapMaxBlocks(4096, false)).toBe(536346110);
    expect(bitmapMaxBlocks(4096, true)).toBe(12 + 1024 + 1024 ** 2 + 1024 ** 3);
    // 64 KiB: cut to (2^32 - 1) >> 7 blocks less pointers, or to 2^32 - 1 logical blocks.
    expect(bitmapMaxBlocks(65536, false)).toBe(33554431 - (1 + 1 + Math.ceil((33554431 - 12 - 16384) / 16384)));
    expect(bitmapMaxBlocks(65536, true)).toBe(2 ** 32 - 1);
  });

  it("blockToPath() gives the pointer path and the pointers left in its array at every boundary", () => {
    const apb = 256;
    expect(blockToPath(0, apb)).toEqual({ offsets: [0], boundary: 11 });
    expect(blockToPath(11, apb)).toEqual({ offsets: [11], boundary: 0 });
    expect(blockToPath(12, apb)).toEqual({ offsets: [12, 0], boundary: 255 });
    expect(blockToPath(12 + 255, apb)).toEqual({ offsets: [12, 255], boundary: 0 });
    expect(blockToPath(12 + 256, apb)).toEqual({ offsets: [13, 0, 0], boundary: 255 });
    expect(blockToPath(12 + 256 + 256 * 256 - 1, apb)).toEqual({ offsets: [13, 255, 255], boundary: 0 });
    expect(blockToPath(12 + 256 + 256 * 256, apb)).toEqual({ offsets: [14, 0, 0, 0], boundary: 255 });
    expect(blockToPath(12 + 256 + 256 * 256 + 256 ** 3 - 1, apb)).toEqual({ offsets: [14, 255, 255, 255], boundary: 0 });
    expect(blockToPath(12 + 256 + 256 * 256 + 256 ** 3, apb)).toBeNull();
  });
});

describe("block-map writes (indirect_write.ts)", () => {
  oracleGate(oracle, "e2fsprogs (mke2fs, debugfs, e2fsck) are available for the block-map write tests");

  describe.skipIf(!oracle.ok)("on mke2fs ext2 volumes", () => {
    let base1k: BaseImage;
    let base4k: BaseImage;
    beforeAll(() => {
      base1k = makeBaseImage("indw-1k", ["-t", "ext2", "-b", "1024"], 64, ["write /dev/null f"]);
      base4k = makeBaseImage("indw-4k", ["-t", "ext2", "-b", "4096"], 64, ["write /dev/null f"]);
    });

    it("indMapForWrite() fills direct pointers, then one indirect block with the data under it; mapped runs come back not fresh", async () => {
      const v = await openVol(base1k);
      const runs = await mapW(v, 0, 20);
      // ext4_blks_to_allocate: the direct run stops at i_block[11]; the rest sits under one new indirect block.
      expect(runs.map((r) => [r.lblk, r.len, r.fresh])).toEqual([[0, 12, true], [12, 8, true]]);
      const pg = ptrGrants(v);
      expect(pg).toHaveLength(1);
      // The data request of the second run is the pointer block's parent: same funding, goal = last direct block.
      const dataReqs = v.alloc.grants.filter((g) => g.req.purpose === "data");
      expect(pg[0]!.req).toMatchObject({ ino: v.inode.ino, len: 1, goal: runs[0]!.pblk + 11, funding: childFunding(dataReqs[1]!.req) });
      expect(dataReqs[1]!.req.goal).toBe(runs[0]!.pblk + 11);
      // Placed like the kernel: the indirect block first, its data right after it.
      expect(runs[1]!.pblk).toBe(pg[0]!.pblk + 1);
      const report = await verify(v);
      expect(report.ptrs.map((p) => p.kind)).toEqual(["IND"]);
      // Mapping again allocates nothing; runs stop at pointer-array ends and physical discontinuities.
      const grants = v.alloc.grants.length;
      const again = await mapW(v, 5, 15);
      expect(again.every((r) => !r.fresh)).toBe(true);
      expect(again.map((r) => [r.lblk, r.len])).toEqual([[5, 7], [12, 8]]);
      expect(v.alloc.grants.length).toBe(grants);
      // A range over mapped and unmapped blocks: the hole is filled, the rest reported as it is.
      const mixed = await mapW(v, 18, 6);
      expect(mixed.map((r) => [r.lblk, r.len, r.fresh])).toEqual([[18, 2, false], [20, 4, true]]);
      expect(ptrGrants(v)).toHaveLength(1);
      await verify(v);
      await oracleCheck(v, "direct-ind");
    });

    it("maps sparse blocks in the double- and triple-indirect ranges with exactly the pointer blocks they need, funded by childFunding(data request)", async () => {
      for (const base of [base1k, base4k]) {
        const v = await openVol(base);
        const apb = v.fs.blockSize / 4;
        const dind = 12 + apb;
        const tind = 12 + apb + apb * apb;
        const delalloc: Funding = { kind: "delalloc", reservation: 3 };
        const step = async (lblk: number, len: number, newPtrs: number, funding: Funding = ENFORCE): Promise<void> => {
          const g0 = v.alloc.grants.length;
          const runs = await mapW(v, lblk, len, { funding });
          expect(runs.every((r) => r.fresh)).toBe(true);
          const grants = v.alloc.grants.slice(g0);
          expect(grants.filter((g) => g.req.purpose === "indirect"), `pointer blocks for ${lblk}+${len}`).toHaveLength(newPtrs);
          // Each run: its pointer blocks, then its data request, which is their parent.
          let pending: BitmapTestAllocator["grants"] = [];
          for (const g of grants) {
            if (g.req.purpose === "indirect") {
              pending.push(g);
              continue;
            }
            expect(g.req.funding).toEqual(funding);
            pending.forEach((p, i) => {
              expect(p.req.funding).toEqual(childFunding(g.req));
              expect(p.req.goal).toBe(i === 0 ? g.req.goal : pending[i - 1]!.pblk);
            });
            pending = [];
          }
          expect(pending).toEqual([]);
        };
        await step(dind + 5, 3, 2); // DIND + IND
        await step(dind + apb - 1, 1, 0); // same IND
        await step(dind + apb, 2, 1); // next IND under the same DIND
        await step(tind + 7, 1, 3, delalloc); // TIND + DIND + IND
        const tg = ptrGrants(v).slice(-3);
        for (const g of tg) expect(g.req.funding).toEqual({ kind: "chargeNow", quota: "nofail", pool: "emergency" });
        await step(tind + apb * apb + 1, 1, 2); // a second DIND under the TIND
        await step(indMaxBlocks(v.fs) - 1, 1, 2); // the last block allowed: under a new DIND of the TIND
        const report = await verify(v);
        expect(report.ptrs.filter((p) => p.kind === "TIND")).toHaveLength(1);
        await oracleCheck(v, "sparse");
        // Reading through the engine's own read path sees the same map.
        const snap = await iget(v.fs, v.inode.ino);
        expect(snap.blocks).toBe((report.data.size + report.ptrs.length) * (v.fs.blockSize / 512));
      }
    });

    it("a write past the block-map limit is EFBIG and allocates nothing", async () => {
      const v = await openVol(base1k);
      const max = indMaxBlocks(v.fs);
      const grants = v.alloc.grants.length;
      await expect(mapW(v, max, 1)).rejects.toMatchObject({ code: "EFBIG" });
      await expect(mapW(v, max - 1, 2)).rejects.toMatchObject({ code: "EFBIG" });
      expect(v.alloc.grants.length).toBe(grants);
      await verify(v);
    });

    it("ENOSPC for a pointer block or for the data gives back what was granted and leaves the map, i_blocks and free count unchanged", async () => {
      const v = await openVol(base1k);
      const apb = 256;
      await mapW(v, 0, 3);
      const tind = 12 + apb + apb * apb;
      const before = await verify(v);
      const iBlocks = v.inode.raw.i_blocks_lo;
      // TIND + DIND + IND + data: fail each of the four requests in turn.
      for (const n of [1, 2, 3, 4]) {
        const flaky = failingAt(v.alloc, n);
        const err = await mapW(v, tind + 1, 4, { alloc: flaky }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(FsError);
        expect((err as FsError).code).toBe("ENOSPC");
        expect(flaky.calls).toBe(n);
        expect(v.inode.raw.i_blocks_lo).toBe(iBlocks);
        const after = await verify(v);
        expect(after).toEqual(before);
      }
      // A multi-run mapping that fails part-way keeps the runs mapped before the failure.
      const flaky = failingAt(v.alloc, 3); // run 1 (direct data), run 2: IND ok, its data fails
      await expect(mapW(v, 3, 30, { alloc: flaky })).rejects.toMatchObject({ code: "ENOSPC" });
      for (let l = 3; l < 12; l++) expect(v.model.has(l)).toBe(false);
      const report = await walkMap(v.fs, v.inode.raw);
      for (let l = 3; l < 12; l++) v.model.set(l, report.data.get(l)!);
      await withHandle(v.fs, async (h) => {
        setSize(v.inode, 12 * v.fs.blockSize); // the writer's part, as writeData does run by run
        await markInodeDirty(h, v.inode);
      });
      await verify(v);
      expect(report.ptrs).toEqual([]);
      await oracleCheck(v, "enospc");
    });

    it("indTruncate() frees data and pointer blocks from any cut, including boundary blocks left empty, up to i_block", async () => {
      for (const base of [base1k, base4k]) {
        const v = await openVol(base);
        const apb = v.fs.blockSize / 4;
        const dind = 12 + apb;
        const tind = dind + apb * apb;
        // Only lblk dind+apb+3 in the second IND under DIND, and dind+5 in the first.
        await mapW(v, dind + 5, 1);
        await mapW(v, dind + apb + 3, 1);
        let r = await verify(v);
        expect(r.ptrs.map((p) => p.kind)).toEqual(["DIND", "IND", "IND"]);
        // Cut inside the second IND before its only pointer: that IND is left empty and goes.
        await cut(v, dind + apb + 1);
        r = await verify(v);
        expect(r.ptrs.map((p) => p.kind)).toEqual(["DIND", "IND"]);
        // Cut inside the first IND before its only pointer: IND and then DIND go, i_block[13] too.
        await cut(v, dind + 1);
        r = await verify(v);
        expect(r.ptrs).toEqual([]);
        expect(v.inode.raw.i_block.every((b) => b === 0)).toBe(true);
        // A cut that keeps part of a boundary block zeroes only the pointers past it.
        await mapW(v, tind + apb * apb + 2 * apb + 10, 5);
        await mapW(v, tind + 1, 2);
        await cut(v, tind + apb * apb + 2 * apb + 12);
        r = await verify(v);
        expect(r.ptrs.map((p) => p.kind).sort()).toEqual(["DIND", "DIND", "IND", "IND", "TIND"]);
        await oracleCheck(v, "boundary");
        await cut(v, tind + 2);
        r = await verify(v);
        expect(r.ptrs.map((p) => p.kind)).toEqual(["TIND", "DIND", "IND"]);
        await cut(v, 0);
        r = await verify(v);
        expect(r.ptrs).toEqual([]);
        expect(v.inode.raw.i_block.every((b) => b === 0)).toBe(true);
        expect(freeBlocksCount(v.fs.sb)).toBe(v.freeAtStart);
        await oracleCheck(v, "empty");
      }
    });

    it("random maps and descending cuts keep the map, i_blocks and the bitmaps exact (e2fsck and debugfs agree)", async () => {
      for (const [base, seed] of [[base1k, 1], [base4k, 2], [base1k, 3]] as const) {
        const v = await openVol(base);
        const rng = new Rng(seed);
        const apb = v.fs.blockSize / 4;
        const dind = 12 + apb;
        const tind = dind + apb * apb;
        const max = indMaxBlocks(v.fs);
        // Dense start, then islands around every boundary.
        await mapW(v, 0, rng.range(12, 3 * apb));
        const points = [dind - 2, dind + apb - 1, tind - 3, tind + apb * apb - 1, tind + 5 * apb * apb + 7, Math.min(max - 20, tind + 200 * apb * apb)];
        for (const p of points) await mapW(v, p, rng.range(1, 2 * apb));
        for (let i = 0; i < 30; i++) {
          const at = rng.int(Math.min(max, tind + 300 * apb * apb) - 600);
          await mapW(v, at, rng.range(1, 600));
        }
        await verify(v);
        await oracleCheck(v, `rand${seed}-full`);
        const cuts = [...points.map((p) => p + 1), tind, dind, 12, ...Array.from({ length: 8 }, () => rng.int(tind + 300 * apb * apb))].sort((a, b) => b - a);
        for (const [i, c] of cuts.entries()) {
          await cut(v, c);
          await verify(v);
          if (i % 5 === 0) await oracleCheck(v, `rand${seed}-cut${i}`);
        }
        await cut(v, 0);
        await verify(v);
        expect(freeBlocksCount(v.fs.sb)).toBe(v.freeAtStart);
        await oracleCheck(v, `rand${seed}-empty`);
      }
    }, 300_000);

    it("corrupt pointers are EFSCORRUPTED naming the inode and block, before anything changes", async () => {
      const word = (b: Uint8Array, i: number, x: number): void => {
        new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(i * 4, x, true);
      };
      // Outside the volume, in i_block: mapping and truncating both refuse.
      {
        const v = await openVol(base1k);
        await mapW(v, 0, 40);
        const snapshot = v.inode.raw.i_block.slice();
        word(v.inode.raw.i_block, 13, v.fs.blocksCount + 5);
        const free = freeBlocksCount(v.fs.sb);
        const e1 = await mapW(v, 12 + 256 + 1, 1).catch((e: unknown) => e);
        expect(e1).toBeInstanceOf(FsError);
        expect((e1 as FsError).code).toBe("EFSCORRUPTED");
        expect((e1 as FsError).detail.ino).toBe(v.inode.ino);
        const e2 = await withHandle(v.fs, (h) => indTruncate(h, v.alloc, v.inode, 5, charge(v), null)).catch((e: unknown) => e);
        expect((e2 as FsError).code).toBe("EFSCORRUPTED");
        // Nothing was freed or unlinked: the direct and indirect blocks before the bad pointer stay.
        expect(freeBlocksCount(v.fs.sb)).toBe(free);
        word(v.inode.raw.i_block, 13, 0);
        expect(v.inode.raw.i_block).toEqual(snapshot);
      }
      // Pointing into the inode table, from inside an indirect block: the block is named.
      {
        const v = await openVol(base1k);
        await mapW(v, 12, 10);
        const ind = new DataView(v.inode.raw.i_block.buffer, v.inode.raw.i_block.byteOffset, 60).getUint32(48, true);
        const itable = inodeTable(v.fs.group(0), v.fs.descSize);
        await withHandle(v.fs, async (h) => {
          const b = await h.getWriteAccess(ind);
          word(b, 3, itable);
          h.dirtyMetadata(ind);
        });
        const e1 = await mapW(v, 15, 1).catch((e: unknown) => e);
        expect((e1 as FsError).code).toBe("EFSCORRUPTED");
        expect((e1 as FsError).detail.block).toBe(ind);
        const free = freeBlocksCount(v.fs.sb);
        const e2 = await withHandle(v.fs, (h) => indTruncate(h, v.alloc, v.inode, 12, charge(v), null)).catch((e: unknown) => e);
        expect((e2 as FsError).code).toBe("EFSCORRUPTED");
        expect(freeBlocksCount(v.fs.sb)).toBe(free);
        expect((await walkMap(v.fs, v.inode.raw)).ptrs).toHaveLength(1);
      }
    });
  });
});

describe("file_write.ts on block-mapped inodes", () => {
  describe.skipIf(!oracle.ok)("on an mke2fs ext2 volume", () => {
    let base1k: BaseImage;
    beforeAll(() => {
      base1k = makeBaseImage("indw-fw1k", ["-t", "ext2", "-b", "1024"], 64, ["write /dev/null f"]);
    });

    const depsOf = (v: Vol): WriteDeps => ({
      alloc: v.alloc,
      extents: {
        insert: () => Promise.reject(new Error("extent path used for a block-mapped inode")),
        removeSpace: () => Promise.reject(new Error("extent path used for a block-mapped inode")),
        convertUnwritten: () => Promise.reject(new Error("extent path used for a block-mapped inode")),
      },
    });

    it("writeData / truncateData dispatch to the block map: fresh partial blocks start from zeros, cut tails read back as zeros, i_blocks counts pointer blocks", async () => {
      const v = await openVol(base1k);
      const deps = depsOf(v);
      const bs = 1024;
      const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
      const write = (pos: number, data: Uint8Array): Promise<void> =>
        withHandle(v.fs, async (h) => {
          await writeData(h, deps, v.inode, pos, data);
          await markInodeDirty(h, v.inode);
        });
      const truncate = (size: number): Promise<void> =>
        withHandle(v.fs, async (h) => {
          const old = inodeSize64(v.inode.raw, false);
          await truncateData(h, deps, v.inode, old, size);
          v.inode.raw.i_size_lo = size % 2 ** 32;
          v.inode.raw.i_size_high = Math.floor(size / 2 ** 32);
          await markInodeDirty(h, v.inode);
        });
      const a = bytes(20 * bs + 100, 1);
      await write(0, a);
      const far = bytes(300, 2);
      const farPos = (12 + 256 + 256 * 256 + 5) * bs + 17; // triple indirect, mid-block
      await write(farPos, far);
      let snap = await iget(v.fs, v.inode.ino);
      expect(snap.size).toBe(farPos + 300);
      expect(await readRange(v.fs, snap, 0, a.length)).toEqual(a);
      const back = await readRange(v.fs, snap, farPos - 17, 17 + 300 + 10);
      expect(back.subarray(0, 17).every((b) => b === 0)).toBe(true);
      expect(back.subarray(17)).toEqual(far);
      // 21 data blocks + IND, then TIND + DIND + IND + 1 data block.
      expect(snap.blocks).toBe((21 + 1 + 4) * 2);
      // findGoal: the block before in the same pointer array.
      const r5 = (await walkMap(v.fs, v.inode.raw)).data.get(5)!;
      expect(await findGoal(v.fs, v.inode, 6)).toBe(r5);
      // Cut mid-block inside the IND range, then grow again: the cut tail reads as zeros.
      await truncate(13 * bs + 10);
      snap = await iget(v.fs, v.inode.ino);
      expect(snap.blocks).toBe((14 + 1) * 2);
      await truncate(16 * bs);
      snap = await iget(v.fs, v.inode.ino);
      const grown = await readRange(v.fs, snap, 0, 16 * bs);
      expect(grown.subarray(0, 13 * bs + 10)).toEqual(a.subarray(0, 13 * bs + 10));
      expect(grown.subarray(13 * bs + 10).every((b) => b === 0)).toBe(true);
      // mapForWrite on a block map returns fresh runs for the hole it fills.
      const runs = await withHandle(v.fs, (h) => mapForWrite(h, deps, v.inode, 14, 2, "data"));
      expect(runs.map((r) => [r.lblk, r.len, r.fresh])).toEqual([[14, 2, true]]);
      await truncate(0);
      snap = await iget(v.fs, v.inode.ino);
      expect(snap.blocks).toBe(0);
      expect(freeBlocksCount(v.fs.sb)).toBe(v.freeAtStart);
      v.model.clear();
      await oracleCheck(v, "fw");
    });

    it("EFBIG: a write starting at the limit fails, one crossing it is short (writes what fits), truncate past it fails", async () => {
      const v = await openVol(base1k);
      const deps = depsOf(v);
      const limit = indMaxBlocks(v.fs) * v.fs.blockSize;
      expect(limit).toBe(17247252480); // what Linux enforces on ext2 1 KiB (s_bitmap_maxbytes)
      await expect(withHandle(v.fs, (h) => writeData(h, deps, v.inode, limit, new Uint8Array(1).fill(7)))).rejects.toMatchObject({ code: "EFBIG" });
      const written = await withHandle(v.fs, async (h) => {
        try {
          return await writeData(h, deps, v.inode, limit - 100, new Uint8Array(300).fill(9));
        } finally {
          await markInodeDirty(h, v.inode);
        }
      });
      expect(written).toBe(100);
      const snap = await iget(v.fs, v.inode.ino);
      expect(snap.size).toBe(limit);
      expect(await readRange(v.fs, snap, limit - 100, 100)).toEqual(new Uint8Array(100).fill(9));
      await expect(withHandle(v.fs, (h) => truncateData(h, deps, v.inode, limit, limit + 1))).rejects.toMatchObject({ code: "EFBIG" });
      await withHandle(v.fs, (h) => truncateData(h, deps, v.inode, limit, limit));
      await withHandle(v.fs, async (h) => {
        await truncateData(h, deps, v.inode, limit, 0);
        v.inode.raw.i_size_lo = 0;
        v.inode.raw.i_size_high = 0;
        await markInodeDirty(h, v.inode);
      });
      expect(freeBlocksCount(v.fs.sb)).toBe(v.freeAtStart);
      await oracleCheck(v, "efbig");
    });

    it("inline-data inodes are still refused (EOPNOTSUPP), never read as a block map", async () => {
      const v = await openVol(base1k);
      const deps = depsOf(v);
      v.inode.raw.i_flags |= EXT4_INLINE_DATA_FL;
      await expect(withHandle(v.fs, (h) => writeData(h, deps, v.inode, 0, new Uint8Array(10)))).rejects.toMatchObject({ code: "EOPNOTSUPP" });
      await expect(withHandle(v.fs, (h) => truncateData(h, deps, v.inode, 10, 0))).rejects.toMatchObject({ code: "EOPNOTSUPP" });
      expect(v.alloc.grants).toEqual([]);
    });
  });
});
