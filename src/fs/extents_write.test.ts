/**
 * Extent tree writes (extents_write.ts) on real mke2fs volumes held in a MemoryDevice.
 *
 * Setup: `mke2fs -t ext4` images made at test time (4 KiB blocks with metadata_csum, 256 MiB;
 * 1 KiB blocks with metadata_csum, 128 MiB, so trees get deep sooner: 84 slots a block), each
 * with an empty extent-mapped regular file `f` made by `debugfs -w -R "write /dev/null f"`.
 * On the 1 KiB image debugfs also fallocates and removes a large file first, so the block
 * groups mke2fs left BLOCK_UNINIT get real bitmaps.
 *
 * Allocation: BitmapTestAllocator (test_volume.ts) sets and clears bits in the real block
 * bitmaps and keeps the group and volume free counts and checksums in step, so when a test
 * writes the image back, `e2fsck -fn` must be clean: every problem it reports (extent tree,
 * i_blocks, bitmap differences, free counts) is a bug. The tests play the caller's part for
 * data: they allocate data blocks, add them to i_blocks and i_size, and subtract what
 * extRemoveSpace returns.
 *
 * Checks after each scenario: walkExtentTree finds no problem and i_blocks = data + tree
 * blocks; the read path (extMapBlocks on a fresh iget) maps every logical block as a plain
 * sorted-interval model says; at oracle points, e2fsck -fn exits 0 and `debugfs -R "ex f"`
 * lists the model's mappings (both sides coalesced, since merge policy may differ). e2fsck's
 * offers to make a tree narrower or shorter (exit status 0) are allowed: the kernel does not
 * rebalance on removal either.
 */
import path from "node:path";
import fc from "fast-check";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEBUGFS_ENV, makeBaseImage, saveAndFsck, type BaseImage } from "../../test/oracle/base_image.js";
import { runDir } from "../../test/oracle/images.js";
import { oracleAvailability, oracleGate, run, tool } from "../../test/oracle/oracle_env.js";
import { Rng } from "../../test/oracle/trees.js";
import { AssertionError, debugLevel, setDebugLevel } from "../debug/assert.js";
import { MemoryDevice } from "../device/memory.js";
import { FsError } from "../errors.js";
import { extentHeader } from "../format/extent.js";
import { inodeBlocks, inodeSize64 } from "../format/inode.js";
import { split64 } from "../format/struct.js";
import { freeBlocksCount } from "../format/superblock.js";
import { allocRequest, childFunding, type AllocRequest, type Funding } from "./alloc_request.js";
import { extMapBlocks } from "./extents.js";
import { EXT_MAX_BLOCKS, extConvertUnwritten, extInsertExtent, extRemoveSpace, walkExtentTree, type BlockAllocator, type ExtentTreeReport } from "./extents_write.js";
import { withHandle } from "./handle.js";
import { iget } from "./inode.js";
import { igetWritable, markInodeDirty, setInodeBlocks, type InodeInfo } from "./inode_write.js";
import { Ext4Fs } from "./super.js";
import { BitmapTestAllocator } from "./test_volume.js";

const oracle = oracleAvailability(["mke2fs", "debugfs", "e2fsck"]);
const ENFORCE: Funding = { kind: "chargeNow", quota: "enforce" };

// ---------------------------------------------------------------------------------------------
// The model: sorted, disjoint runs

interface Run {
  lblk: number;
  len: number;
  pblk: number;
  unwritten: boolean;
}

function coalesce(runs: readonly Run[]): Run[] {
  const out: Run[] = [];
  for (const r of runs) {
    const last = out[out.length - 1];
    if (last !== undefined && last.unwritten === r.unwritten && last.lblk + last.len === r.lblk && last.pblk + last.len === r.pblk) last.len += r.len;
    else out.push({ ...r });
  }
  return out;
}

class Model {
  runs: Run[] = [];

  get blocks(): number {
    return this.runs.reduce((s, r) => s + r.len, 0);
  }

  get maxEnd(): number {
    const last = this.runs[this.runs.length - 1];
    return last === undefined ? 0 : last.lblk + last.len;
  }

  /** Index of the first run ending after lblk. */
  #firstAfter(lblk: number): number {
    let lo = 0;
    let hi = this.runs.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      const r = this.runs[m]!;
      if (r.lblk + r.len <= lblk) lo = m + 1;
      else hi = m;
    }
    return lo;
  }

  /** The mapping at lblk, and how far it runs unchanged (a hole runs to the next run). */
  at(lblk: number): { pblk: number; unwritten: boolean; len: number } {
    const r = this.runs[this.#firstAfter(lblk)];
    if (r === undefined) return { pblk: 0, unwritten: false, len: 2 ** 32 - lblk };
    if (r.lblk > lblk) return { pblk: 0, unwritten: false, len: r.lblk - lblk };
    return { pblk: r.pblk + (lblk - r.lblk), unwritten: r.unwritten, len: r.lblk + r.len - lblk };
  }

  /** The run ending exactly at lblk (a left neighbour), if any. */
  endingAt(lblk: number): Run | undefined {
    const i = this.#firstAfter(lblk - 1);
    const r = this.runs[i];
    return r !== undefined && r.lblk + r.len === lblk ? r : undefined;
  }

  /** The first hole at or after lblk: its start and length. */
  holeFrom(lblk: number): { start: number; len: number } {
    let start = lblk;
    for (let i = this.#firstAfter(lblk); i < this.runs.length; i++) {
      const r = this.runs[i]!;
      if (r.lblk > start) return { start, len: r.lblk - start };
      start = r.lblk + r.len;
    }
    return { start, len: EXT_MAX_BLOCKS - start };
  }

  insert(run: Run): void {
    const i = this.#firstAfter(run.lblk);
    const next = this.runs[i];
    if (next !== undefined && next.lblk < run.lblk + run.len) throw new Error(`Model: ${run.lblk}+${run.len} is not a hole`);
    this.runs.splice(i, 0, { ...run });
  }

  /** Mark [lblk, lblk + len) written; every run it touches must be unwritten, and it must be mapped. */
  setWritten(lblk: number, len: number): void {
    const end = lblk + len;
    const out: Run[] = [];
    let covered = 0;
    for (const r of this.runs) {
      const rEnd = r.lblk + r.len;
      if (rEnd <= lblk || r.lblk >= end) {
        out.push(r);
        continue;
      }
      if (!r.unwritten) throw new Error(`Model: ${lblk}+${len} touches the written run ${r.lblk}+${r.len}`);
      const s = Math.max(r.lblk, lblk);
      const t = Math.min(rEnd, end);
      if (s > r.lblk) out.push({ ...r, len: s - r.lblk });
      out.push({ lblk: s, len: t - s, pblk: r.pblk + (s - r.lblk), unwritten: false });
      if (t < rEnd) out.push({ lblk: t, len: rEnd - t, pblk: r.pblk + (t - r.lblk), unwritten: true });
      covered += t - s;
    }
    if (covered !== len) throw new Error(`Model: ${lblk}+${len} is not fully mapped`);
    this.runs = out;
  }

  /** Unmap [from, end]; returns the physical runs freed. */
  remove(from: number, end: number): { pblk: number; count: number }[] {
    const freed: { pblk: number; count: number }[] = [];
    const kept: Run[] = [];
    for (const r of this.runs) {
      const rEnd = r.lblk + r.len - 1;
      if (rEnd < from || r.lblk > end) {
        kept.push(r);
        continue;
      }
      const s = Math.max(r.lblk, from);
      const t = Math.min(rEnd, end);
      if (s > r.lblk) kept.push({ ...r, len: s - r.lblk });
      freed.push({ pblk: r.pblk + (s - r.lblk), count: t - s + 1 });
      if (t < rEnd) kept.push({ lblk: t + 1, len: rEnd - t, pblk: r.pblk + (t + 1 - r.lblk), unwritten: r.unwritten });
    }
    this.runs = kept;
    return freed;
  }
}

// ---------------------------------------------------------------------------------------------
// A volume under test, playing the caller's part

interface Vol {
  readonly dev: MemoryDevice;
  readonly fs: Ext4Fs;
  readonly alloc: BitmapTestAllocator;
  readonly inode: InodeInfo;
  readonly model: Model;
  readonly freeAtStart: number;
  readonly name: string;
}

async function openVol(base: BaseImage): Promise<Vol> {
  const dev = new MemoryDevice(base.size);
  for (const p of base.pieces) await dev.write(p.offset, p.data);
  const fs = await Ext4Fs.mount(dev, { readOnly: false });
  const inode = await igetWritable(fs, base.ino);
  expect(extentHeader.decode(inode.raw.i_block, 0)).toMatchObject({ eh_magic: 0xf30a, eh_entries: 0, eh_depth: 0, eh_max: 4 });
  return { dev, fs, alloc: new BitmapTestAllocator(), inode, model: new Model(), freeAtStart: freeBlocksCount(fs.sb), name: base.name };
}

/** The caller's share of accounting: data blocks in i_blocks, i_size covering the last mapped block. */
function accountData(v: Vol, delta: number): void {
  const { fs, inode } = v;
  setInodeBlocks(fs, inode, inodeBlocks(inode.raw, fs.features.hugeFile, fs.blockSize) + delta * (fs.blockSize / 512));
  const size = Math.max(inodeSize64(inode.raw, fs.features.largedir), v.model.maxEnd * fs.blockSize);
  const { lo, hi } = split64(size);
  inode.raw.i_size_lo = lo;
  inode.raw.i_size_high = hi;
}

/** Allocate up to `len` data blocks near `goal` and map them at lblk (one handle, like a write). */
async function mapNew(v: Vol, lblk: number, len: number, opts: { goal?: number; unwritten?: boolean; funding?: Funding } = {}): Promise<{ run: Run; req: AllocRequest }> {
  return withHandle(v.fs, async (h) => {
    const req = allocRequest({ dquots: null, ino: v.inode.ino, purpose: "data", goal: opts.goal ?? 0, len, funding: opts.funding ?? ENFORCE });
    const got = await v.alloc.alloc(h, req);
    const run = { lblk, len: got.len, pblk: got.pblk, unwritten: opts.unwritten ?? false };
    await extInsertExtent(h, v.alloc, v.inode, run, req);
    v.model.insert(run);
    accountData(v, got.len);
    await markInodeDirty(h, v.inode);
    return { run, req };
  });
}

/** Unmap [from, to] and check the freed count and the blocks given back against the model. */
async function unmap(v: Vol, from: number, to: number): Promise<number> {
  const treeBefore = new Set((await walkExtentTree(v.fs, v.inode)).treeBlocks);
  const freesBefore = v.alloc.frees.length;
  const freed = await withHandle(v.fs, async (h) => {
    const n = await extRemoveSpace(h, v.alloc, v.inode, from, to);
    accountData(v, -n);
    await markInodeDirty(h, v.inode);
    return n;
  });
  const want = v.model.remove(from, Math.min(to, EXT_MAX_BLOCKS - 1));
  expect(freed).toBe(want.reduce((s, f) => s + f.count, 0));
  const report = await walkExtentTree(v.fs, v.inode);
  const treeAfter = new Set(report.treeBlocks);
  const got = new Set<number>();
  for (const f of v.alloc.frees.slice(freesBefore)) for (let i = 0; i < f.count; i++) got.add(f.pblk + i);
  const expected = new Set<number>();
  for (const f of want) for (let i = 0; i < f.count; i++) expected.add(f.pblk + i);
  for (const b of treeBefore) if (!treeAfter.has(b)) expected.add(b);
  // A punch may have allocated a tree block; none of the blocks given back may still be in use.
  expect([...got].sort((a, b) => a - b)).toEqual([...expected].sort((a, b) => a - b));
  return freed;
}

/** Tree checker, i_blocks, inode write-back and the read path against the model. */
async function verify(v: Vol): Promise<ExtentTreeReport> {
  const report = await walkExtentTree(v.fs, v.inode, { expectedDataBlocks: v.model.blocks });
  expect(report.problems).toEqual([]);
  expect(coalesce(report.extents)).toEqual(coalesce(v.model.runs));
  const snap = await iget(v.fs, v.inode.ino);
  expect(snap.raw.i_block).toEqual(v.inode.raw.i_block);
  expect(snap.blocks).toBe(inodeBlocks(v.inode.raw, v.fs.features.hugeFile, v.fs.blockSize));
  const mismatches: string[] = [];
  const limit = v.model.maxEnd + 3;
  let lblk = 0;
  while (lblk < limit && mismatches.length < 5) {
    const got = await extMapBlocks(v.fs, snap, lblk, limit - lblk);
    const want = v.model.at(lblk);
    if (got.pblk !== want.pblk || (want.pblk !== 0 && got.unwritten !== want.unwritten) || got.len < 1) {
      mismatches.push(`block ${lblk}: read path ${got.pblk}${got.unwritten ? "u" : ""}+${got.len}, model ${want.pblk}${want.unwritten ? "u" : ""}`);
    }
    lblk += Math.max(1, Math.min(got.len, want.len));
  }
  expect(mismatches).toEqual([]);
  return report;
}

/** Parse the leaf lines of `debugfs -R "ex f"`. */
function debugfsExtents(out: string): Run[] {
  const runs: Run[] = [];
  const leaf = /^\s*(\d+)\/\s*(\d+)\s+\d+\/\s*\d+\s+(\d+)\s+-\s+\d+\s+(\d+)\s+-\s+\d+\s+(\d+)\s*(Uninit)?\s*$/;
  for (const line of out.split("\n")) {
    const m = leaf.exec(line);
    if (m === null || m[1] !== m[2]) continue;
    runs.push({ lblk: Number(m[3]), pblk: Number(m[4]), len: Number(m[5]), unwritten: m[6] !== undefined });
  }
  return runs;
}

/** Write the image out; e2fsck -fn must be clean and debugfs must list the model's mappings. */
async function oracleCheck(v: Vol, tag: string): Promise<void> {
  const file = path.join(runDir(), `extw-${v.name}-${tag}.img`);
  const fsckOut = await saveAndFsck(v.fs, v.dev, file);
  // e2fsck may offer to rebalance (PR_1E_CAN_NARROW/COLLAPSE_EXTENT_TREE, exit status 0): the
  // kernel never rebalances either, so those optimisation offers are not errors. Anything else is.
  const problems = fsckOut.split("\n").filter((l) => !/^Inode \d+ extent tree \(at level \d+\) could be (narrower|shorter)\.\s+Optimize\? no$/.test(l));
  expect(problems.join("\n")).not.toMatch(/extent|i_blocks|bitmap|count wrong|Inode \d+/i);
  const ex = run(tool("debugfs"), ["-R", "ex f", file], { env: DEBUGFS_ENV }).stdout;
  expect(coalesce(debugfsExtents(ex))).toEqual(coalesce(v.model.runs));
}

function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Convert [lblk, lblk + len) to written in one handle; the caller charges nothing (unwritten blocks are counted already). */
async function convert(v: Vol, lblk: number, len: number, opts: { funding?: Funding; alloc?: BlockAllocator } = {}): Promise<AllocRequest> {
  const parent = allocRequest({ dquots: null, ino: v.inode.ino, purpose: "data", goal: 0, len, funding: opts.funding ?? ENFORCE });
  await withHandle(v.fs, async (h) => {
    await extConvertUnwritten(h, opts.alloc ?? v.alloc, v.inode, lblk, len, parent);
    await markInodeDirty(h, v.inode);
  });
  v.model.setWritten(lblk, len);
  return parent;
}

/** Map [lblk, lblk + len) at pblk (already allocated, or not when the volume is never written back). */
async function place(v: Vol, lblk: number, len: number, pblk: number, unwritten: boolean): Promise<void> {
  const parent = allocRequest({ dquots: null, ino: v.inode.ino, purpose: "data", goal: pblk, len, funding: ENFORCE });
  await withHandle(v.fs, async (h) => {
    const run = { lblk, len, pblk, unwritten };
    await extInsertExtent(h, v.alloc, v.inode, run, parent);
    v.model.insert(run);
    accountData(v, len);
    await markInodeDirty(h, v.inode);
  });
}

/** Reserve `len` contiguous blocks in the bitmaps (mapped later by `place`). */
async function reserve(v: Vol, len: number): Promise<number> {
  const got = await withHandle(v.fs, (h) => v.alloc.alloc(h, allocRequest({ dquots: null, ino: v.inode.ino, purpose: "data", goal: 0, len, minLen: len, funding: ENFORCE })));
  return got.pblk;
}

/** The leaf extents as "lblk+len" with w (written) or u (unwritten). */
const shape = (r: ExtentTreeReport): string[] => r.extents.map((e) => `${e.lblk}+${e.len}${e.unwritten ? "u" : "w"}`);

const treeGrants = (v: Vol): BitmapTestAllocator["grants"] => v.alloc.grants.filter((g) => g.req.purpose === "extentNode");

// ---------------------------------------------------------------------------------------------

describe("extent tree writes (extents_write.ts)", () => {
  oracleGate(oracle, "e2fsprogs (mke2fs, debugfs, e2fsck) are available for the extent write tests");

  describe.skipIf(!oracle.ok)("on mke2fs volumes", () => {
    let base4k: BaseImage;
    let base1k: BaseImage;
    // Tests on a MemoryDevice run as one long chain of microtasks; yield to the event loop between
    // tests so vitest's worker RPC is answered (its 60 s timeout fired once the file ran longer).
    beforeEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
    beforeAll(() => {
      base4k = makeBaseImage("extw-4k", ["-t", "ext4", "-b", "4096"], 256, ["write /dev/null f"]);
      base1k = makeBaseImage("extw-1k", ["-t", "ext4", "-b", "1024"], 128, ["write /dev/null big", "fallocate big 0 110000", "rm big", "write /dev/null f"]);
    });

    it("the base images are clean and f is an empty extent-mapped file", async () => {
      for (const base of [base4k, base1k]) {
        const v = await openVol(base);
        await oracleCheck(v, "base");
        expect(v.inode.raw.i_flags & 0x80000).toBe(0x80000);
      }
    });

    it("extInsertExtent() maps holes in the root and merges logically and physically contiguous neighbours", async () => {
      const v = await openVol(base4k);
      // Reserve 11 contiguous blocks, then map them piecewise out of order.
      const p = await withHandle(v.fs, (h) => v.alloc.alloc(h, allocRequest({ dquots: null, ino: v.inode.ino, purpose: "data", goal: 0, len: 11, minLen: 11, funding: ENFORCE })));
      const parent = allocRequest({ dquots: null, ino: v.inode.ino, purpose: "data", goal: p.pblk, len: 11, funding: ENFORCE });
      const insert = async (lblk: number, len: number, off: number, unwritten = false): Promise<void> => {
        await withHandle(v.fs, async (h) => {
          const run = { lblk, len, pblk: p.pblk + off, unwritten };
          await extInsertExtent(h, v.alloc, v.inode, run, parent);
          v.model.insert(run);
          accountData(v, len);
          await markInodeDirty(h, v.inode);
        });
      };
      await insert(0, 3, 0);
      await insert(5, 3, 5);
      expect((await verify(v)).extents).toHaveLength(2);
      await insert(3, 2, 3); // fills the gap: left, new and right become one extent
      expect((await verify(v)).extents).toEqual([{ lblk: 0, len: 8, pblk: p.pblk, unwritten: false }]);
      await insert(8, 2, 8, true); // contiguous but unwritten: no merge
      expect((await verify(v)).extents).toHaveLength(2);
      await insert(20, 1, 10, true); // physically next, but a logical gap: no merge
      // Not a hole: a bug in the caller, reported as an AssertionError.
      await expect(withHandle(v.fs, (h) => extInsertExtent(h, v.alloc, v.inode, { lblk: 7, len: 2, pblk: p.pblk, unwritten: false }, parent))).rejects.toThrow(AssertionError);
      expect((await verify(v)).extents).toHaveLength(3);
      expect(treeGrants(v)).toEqual([]);
      await oracleCheck(v, "merge");
    });

    it("extInsertExtent() merges only up to EXT_INIT_MAX_LEN (written) and EXT_UNWRITTEN_MAX_LEN (unwritten) blocks", async () => {
      // Physical blocks are not allocated here: these volumes are never written back.
      const P = 20000;
      for (const unwritten of [false, true]) {
        const v = await openVol(base4k);
        const parent = allocRequest({ dquots: null, ino: v.inode.ino, purpose: "data", goal: 0, len: 1, funding: ENFORCE });
        const put = (lblk: number, len: number): Promise<void> =>
          withHandle(v.fs, (h) => extInsertExtent(h, v.alloc, v.inode, { lblk, len, pblk: P + lblk, unwritten }, parent));
        const max = unwritten ? 32767 : 32768;
        await put(0, max - 1);
        await put(max - 1, 1);
        let r = await walkExtentTree(v.fs, v.inode);
        expect(r.extents).toEqual([{ lblk: 0, len: max, pblk: P, unwritten }]);
        await put(max, 1);
        r = await walkExtentTree(v.fs, v.inode);
        expect(r.extents.map((e) => e.len)).toEqual([max, 1]);
        expect(r.problems).toEqual([]);
      }
    });

    it("a full root grows the tree by a level; tree blocks are funded by childFunding(parent), never by inode state", async () => {
      const v = await openVol(base4k);
      const delalloc: Funding = { kind: "delalloc", reservation: 7 };
      // Descending logical order: every insert lands in slot 0 and moves the index key.
      for (let i = 0; i < 4; i++) await mapNew(v, 1000 - 10 * i, 2, { funding: delalloc });
      expect((await verify(v)).depth).toBe(0);
      const { run, req } = await mapNew(v, 900, 3, { funding: delalloc });
      const r = await verify(v);
      expect(r.depth).toBe(1);
      expect(r.treeBlocks).toHaveLength(1);
      expect(v.inode.raw.i_block.subarray(12, 16)).toEqual(new Uint8Array([900 & 0xff, 900 >> 8, 0, 0])); // root index key = first extent
      const tg = treeGrants(v);
      expect(tg).toHaveLength(1);
      expect(tg[0]!.req).toMatchObject({ purpose: "extentNode", ino: v.inode.ino, goal: run.pblk, len: 1, funding: childFunding(req) });
      expect(tg[0]!.req.funding).toEqual({ kind: "chargeNow", quota: "nofail", pool: "emergency" });
      // A chargeNow parent passes its own funding down.
      for (let i = 0; i < 400; i++) await mapNew(v, 2000 + 2 * i, 1, { funding: ENFORCE });
      const later = treeGrants(v).slice(1);
      expect(later.length).toBeGreaterThan(0);
      for (const g of later) expect(g.req.funding).toEqual(ENFORCE);
      await verify(v);
      await oracleCheck(v, "grow");
    });

    it("a failed tree-block allocation leaves the tree, i_blocks and the free count as they were", async () => {
      const v = await openVol(base1k);
      for (let i = 0; i < 4; i++) await mapNew(v, 2 * i, 1);
      const before = await verify(v);
      const iBlocks = v.inode.raw.i_blocks_lo;
      const free = freeBlocksCount(v.fs.sb);
      // Grow needs one block.
      v.alloc.failNext = 1;
      const parent = allocRequest({ dquots: null, ino: v.inode.ino, purpose: "data", goal: 0, len: 1, funding: ENFORCE });
      const err = await withHandle(v.fs, (h) => extInsertExtent(h, v.alloc, v.inode, { lblk: 100, len: 1, pblk: before.extents[0]!.pblk + 50, unwritten: false }, parent)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FsError);
      expect((err as FsError).code).toBe("ENOSPC");
      expect(v.inode.raw.i_blocks_lo).toBe(iBlocks);
      expect(freeBlocksCount(v.fs.sb)).toBe(free);
      expect((await verify(v)).depth).toBe(0);
      // Depth 2 on 1 KiB blocks (> 4 * 84 extents), then a split that needs two blocks fails on the second.
      for (let i = 4; i < 4 * 84 + 1; i++) await mapNew(v, 2 * i, 1);
      const deep = await verify(v);
      expect(deep.depth).toBe(2);
      // Appends fill every node: at 84 * 84 extents the index block under the root holds 84
      // full leaves, so the next append splits at the root and needs two blocks.
      for (let i = 4 * 84 + 1; i < 84 * 84; i++) await mapNew(v, 2 * i, 1);
      const full = await verify(v);
      expect(full.treeBlocks).toHaveLength(1 + 84);
      const lblk = 2 * 84 * 84;
      const free2 = freeBlocksCount(v.fs.sb);
      const iBlocks2 = v.inode.raw.i_blocks_lo;
      v.alloc.failNext = 0;
      const grantsBefore = v.alloc.grants.length;
      const failing = new BitmapTestAllocator();
      let calls = 0;
      const flaky: BlockAllocator = {
        alloc: (h, req) => (++calls === 2 ? Promise.reject(new FsError("ENOSPC", "injected on the second tree block")) : failing.alloc(h, req)),
        free: (h, ino, pblk, count) => failing.free(h, ino, pblk, count),
      };
      const err2 = await withHandle(v.fs, (h) => extInsertExtent(h, flaky, v.inode, { lblk, len: 1, pblk: full.extents[0]!.pblk + 1, unwritten: false }, parent)).catch((e: unknown) => e);
      expect(err2).toBeInstanceOf(FsError);
      expect(failing.grants).toHaveLength(1);
      expect(failing.frees).toEqual([{ ino: v.inode.ino, pblk: failing.grants[0]!.pblk, count: 1 }]);
      expect(v.alloc.grants.length).toBe(grantsBefore);
      expect(freeBlocksCount(v.fs.sb)).toBe(free2);
      expect(v.inode.raw.i_blocks_lo).toBe(iBlocks2);
      const after = await verify(v);
      expect(after.treeBlocks).toEqual(full.treeBlocks);
      await oracleCheck(v, "rollback");
    }, 120_000);

    it("a tree block freed and handed straight back in the same handle is reused (merge-up, then grow)", async () => {
      const v = await openVol(base4k);
      for (let i = 0; i < 5; i++) await mapNew(v, 10 * i, 2);
      await unmap(v, 30, EXT_MAX_BLOCKS); // depth 1, one leaf of three extents
      const before = await verify(v);
      expect(before.depth).toBe(1);
      const leafBlock = before.treeBlocks[0]!;
      // An allocator that hands out the last freed block first (balloc may do the same).
      let lastFreed: number | undefined;
      const lifo: BlockAllocator = {
        alloc: (h, req) => {
          const goal = req.purpose === "extentNode" ? lastFreed : undefined;
          lastFreed = undefined;
          return v.alloc.alloc(h, goal === undefined ? req : allocRequest({ ...req, goal }));
        },
        free: async (h, ino, pblk, count) => {
          await v.alloc.free(h, ino, pblk, count);
          lastFreed = pblk;
        },
      };
      await withHandle(v.fs, async (h) => {
        const put = async (lblk: number, len: number, goal: number): Promise<void> => {
          const req = allocRequest({ dquots: null, ino: v.inode.ino, purpose: "data", goal, len, minLen: len, funding: ENFORCE });
          const got = await v.alloc.alloc(h, req);
          const run = { lblk, len: got.len, pblk: got.pblk, unwritten: false };
          await extInsertExtent(h, lifo, v.inode, run, req);
          v.model.insert(run);
          accountData(v, got.len);
        };
        const last = v.model.runs[2]!;
        await put(22, 1, last.pblk + last.len); // merges, and the 3-extent leaf moves back into the root
        expect(extentHeader.decode(v.inode.raw.i_block, 0).eh_depth).toBe(0);
        await put(100, 1, 0);
        await put(200, 1, 0); // root full again, next insert grows and gets the old leaf back
        await put(300, 1, 0);
        await markInodeDirty(h, v.inode);
      });
      const after = await verify(v);
      expect(after.depth).toBe(1);
      expect(after.treeBlocks).toEqual([leafBlock]);
      await oracleCheck(v, "reuse");
    });

    it("extRemoveSpace() trims heads and tails, punches inside one extent, and resets an emptied tree to depth 0", async () => {
      const v = await openVol(base4k);
      const { run } = await mapNew(v, 0, 100);
      expect(run.len).toBe(100);
      expect(await unmap(v, 10, 19)).toBe(10); // punch: one extent becomes two
      expect((await verify(v)).extents.map((e) => [e.lblk, e.len])).toEqual([[0, 10], [20, 80]]);
      expect(await unmap(v, 0, 4)).toBe(5); // head trim
      expect(await unmap(v, 90, 120)).toBe(10); // tail trim past the end
      expect(await unmap(v, 200, 300)).toBe(0); // a hole
      expect((await verify(v)).extents.map((e) => [e.lblk, e.len])).toEqual([[5, 5], [20, 70]]);
      await oracleCheck(v, "trim");
      expect(await unmap(v, 7, EXT_MAX_BLOCKS)).toBe(3 + 70);
      expect(await unmap(v, 0, EXT_MAX_BLOCKS)).toBe(2);
      const r = await verify(v);
      expect(r.extents).toEqual([]);
      expect(v.inode.raw.i_blocks_lo).toBe(0);
      expect(freeBlocksCount(v.fs.sb)).toBe(v.freeAtStart);
      await oracleCheck(v, "trim-empty");
    });

    it("punching inside an extent of a full leaf splits the leaf (the punch allocates a tree block)", async () => {
      const v = await openVol(base1k);
      for (let i = 0; i < 84; i++) await mapNew(v, 10 * i, 5, { goal: 0 });
      const r0 = await verify(v);
      expect(r0.depth).toBe(1);
      expect(r0.treeBlocks).toHaveLength(1);
      const grants = treeGrants(v).length;
      expect(await unmap(v, 401, 402)).toBe(2);
      const r1 = await verify(v);
      expect(r1.treeBlocks).toHaveLength(2);
      const split = treeGrants(v).slice(grants);
      expect(split).toHaveLength(1);
      expect(split[0]!.req.funding).toEqual({ kind: "chargeNow", quota: "nofail", pool: "emergency" });
      await oracleCheck(v, "punch-split");
    });

    it("matches a sorted-interval model under random inserts and removes (fast-check, debug level 2)", async () => {
      type Op =
        | { kind: "insert"; at: number; len: number; unwritten: boolean; adjacent: boolean; scatter: number }
        | { kind: "remove"; at: number; len: number; toEnd: boolean };
      const SPACE = 3000;
      const op: fc.Arbitrary<Op> = fc.oneof(
        { weight: 4, arbitrary: fc.record({ kind: fc.constant("insert" as const), at: fc.nat(SPACE - 1), len: fc.integer({ min: 1, max: 24 }), unwritten: fc.boolean(), adjacent: fc.boolean(), scatter: fc.nat(4000) }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant("remove" as const), at: fc.nat(SPACE - 1), len: fc.integer({ min: 1, max: 300 }), toEnd: fc.integer({ min: 0, max: 15 }).map((n) => n === 0) }) },
      );
      const level = debugLevel;
      setDebugLevel(2);
      try {
        await fc.assert(
          fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 120 }), async (ops) => {
            const v = await openVol(base1k);
            for (const o of ops) {
              if (o.kind === "remove") {
                await unmap(v, o.at, o.toEnd ? EXT_MAX_BLOCKS : o.at + o.len - 1);
                continue;
              }
              const hole = v.model.holeFrom(o.at);
              const start = o.adjacent ? hole.start : hole.start + Math.min(hole.len - 1, o.len);
              const room = hole.start + hole.len - start;
              const left = v.model.endingAt(start);
              const goal = o.adjacent && left !== undefined ? left.pblk + left.len : 2000 + o.scatter * 7;
              const unwritten = o.adjacent && left !== undefined ? left.unwritten : o.unwritten;
              await mapNew(v, start, Math.min(o.len, room), { goal, unwritten });
            }
            await verify(v);
          }),
          { numRuns: 40 },
        );
      } finally {
        setDebugLevel(level === 2 ? 2 : level === 0 ? 0 : 1);
      }
    }, 300_000);

    it("a long seeded random run reaches depth 2 on 1 KiB blocks and stays consistent (e2fsck, debugfs)", async () => {
      const v = await openVol(base1k);
      const rng = new Rng(20261123);
      let maxDepth = 0;
      for (let step = 1; step <= 3000; step++) {
        if (rng.chance(0.15)) {
          const at = rng.int(40000);
          await unmap(v, at, at + rng.range(0, 400));
        } else {
          const hole = v.model.holeFrom(rng.int(40000));
          const left = v.model.endingAt(hole.start);
          const adjacent = rng.chance(0.3);
          const start = adjacent ? hole.start : hole.start + Math.min(hole.len - 1, rng.int(8));
          const len = Math.min(rng.range(1, 12), hole.start + hole.len - start);
          const goal = adjacent && left !== undefined ? left.pblk + left.len : rng.range(2000, 100000);
          await mapNew(v, start, len, { goal, unwritten: adjacent && left !== undefined ? left.unwritten : rng.chance(0.2) });
        }
        if (step % 500 === 0) maxDepth = Math.max(maxDepth, (await verify(v)).depth);
      }
      expect(maxDepth).toBeGreaterThanOrEqual(2);
      await oracleCheck(v, "random");
      await unmap(v, 0, EXT_MAX_BLOCKS);
      expect((await verify(v)).depth).toBe(0);
      expect(freeBlocksCount(v.fs.sb)).toBe(v.freeAtStart);
      await oracleCheck(v, "random-empty");
    }, 600_000);

    it("2000 single-block extents in random order build a depth-2 tree (4 KiB), removed again in steps", async () => {
      const v = await openVol(base4k);
      const rng = new Rng(4096);
      const N = 2000;
      for (const i of shuffle([...Array(N).keys()], rng)) await mapNew(v, 2 * i, 1, { goal: 3000 });
      const full = await verify(v);
      expect(full.depth).toBeGreaterThanOrEqual(2);
      expect(full.extents).toHaveLength(N);
      for (const g of treeGrants(v)) expect(g.req.funding).toEqual(ENFORCE);
      await oracleCheck(v, "deep4k");
      // Remove in random chunks, the last one to the end of the file.
      const cuts = shuffle([...Array(7).keys()].map((k) => k * 600), rng);
      for (const c of cuts) {
        await unmap(v, c, c + 299);
        await verify(v);
      }
      await unmap(v, 0, EXT_MAX_BLOCKS);
      const r = await verify(v);
      expect(r.depth).toBe(0);
      expect(r.treeBlocks).toEqual([]);
      expect(extentHeader.decode(v.inode.raw.i_block, 0)).toMatchObject({ eh_depth: 0, eh_entries: 0, eh_max: 4 });
      expect(v.inode.raw.i_blocks_lo).toBe(0);
      expect(freeBlocksCount(v.fs.sb)).toBe(v.freeAtStart);
      const treeFreed = new Set(v.alloc.frees.filter((f) => f.count === 1).map((f) => f.pblk));
      for (const b of full.treeBlocks) expect(treeFreed.has(b)).toBe(true);
      await oracleCheck(v, "deep4k-empty");
    }, 300_000);

    it("28300 appended single-block extents build a depth-3 tree (1 KiB), removed again in steps", async () => {
      const v = await openVol(base1k);
      const N = 4 * 84 * 84 + 76; // one more leaf than depth 2 can hold
      let goal = 2000;
      for (let i = 0; i < N; i++) {
        const { run } = await mapNew(v, 2 * i, 1, { goal });
        goal = run.pblk + 1;
      }
      const full = await verify(v);
      expect(full.depth).toBe(3);
      expect(full.extents).toHaveLength(N);
      await oracleCheck(v, "deep1k");
      await unmap(v, 20000, 30000); // a middle range: leaves and index entries go
      await verify(v);
      await unmap(v, 0, 9999);
      await verify(v);
      await unmap(v, 40001, 50000); // starts inside a hole between extents
      await verify(v);
      await oracleCheck(v, "deep1k-half");
      await unmap(v, 30000, EXT_MAX_BLOCKS);
      await unmap(v, 0, EXT_MAX_BLOCKS);
      const r = await verify(v);
      expect(r.depth).toBe(0);
      expect(v.inode.raw.i_blocks_lo).toBe(0);
      expect(freeBlocksCount(v.fs.sb)).toBe(v.freeAtStart);
      await oracleCheck(v, "deep1k-empty");
    }, 600_000);

    it("walkExtentTree() reports a wrong index key, a bad tail checksum and a wrong i_blocks", async () => {
      const v = await openVol(base4k);
      for (let i = 0; i < 5; i++) await mapNew(v, 3 * i, 1);
      const good = await verify(v);
      expect(good.depth).toBe(1);
      expect(await walkExtentTree(v.fs, v.inode, { expectedDataBlocks: 4 })).toMatchObject({ problems: [expect.stringMatching(/extents map 5 blocks, expected 4/), expect.stringMatching(/i_blocks is \d+, expected/)] });
      const raw = { ...v.inode.raw, i_block: v.inode.raw.i_block.slice() };
      raw.i_block[12] = 1; // root index key 0 -> 1
      const r1 = await walkExtentTree(v.fs, { ino: v.inode.ino, raw, csumSeed: v.inode.csumSeed });
      expect(r1.problems.join("\n")).toMatch(/first key differs from its index key 1/);
      // Corrupt eh_generation on the device (structure intact, checksum wrong) and drop the
      // cached copy, so the next read sees it.
      await v.fs.sync();
      const blk = good.treeBlocks[0]!;
      const bs = v.fs.blockSize;
      const bytes = await v.dev.read(blk * bs, bs);
      bytes[8] = bytes[8]! ^ 0xff;
      await v.dev.write(blk * bs, bytes);
      v.fs.cache.invalidate(blk);
      const r2 = await walkExtentTree(v.fs, v.inode);
      expect(r2.problems.join("\n")).toMatch(/tail checksum does not match/);
      await expect(withHandle(v.fs, (h) => extRemoveSpace(h, v.alloc, v.inode, 0, 0))).rejects.toMatchObject({ code: "EFSBADCRC" });
    });

    // -------------------------------------------------------------------------------------------
    // extConvertUnwritten

    it("extConvertUnwritten() converts the head, a middle range, the tail or all of an unwritten extent", async () => {
      const cases: [number, number, string[]][] = [
        [40, 10, ["0+40u", "40+10w", "50+50u"]],
        [0, 10, ["0+10w", "10+90u"]],
        [90, 10, ["0+90u", "90+10w"]],
        [0, 100, ["0+100w"]],
      ];
      for (const [lblk, len, want] of cases) {
        const v = await openVol(base4k);
        const { run } = await mapNew(v, 0, 100, { unwritten: true });
        expect(run.len).toBe(100);
        await convert(v, lblk, len);
        const r = await verify(v);
        expect(shape(r)).toEqual(want);
        expect(r.extents.find((e) => !e.unwritten)?.pblk).toBe(run.pblk + lblk);
        expect(r.depth).toBe(0);
        expect(treeGrants(v)).toEqual([]);
        await oracleCheck(v, `conv-${lblk}-${len}`);
      }
    });

    it("converted blocks move into a contiguous written neighbour (the kernel's fast path), and a whole extent joins both neighbours", async () => {
      const v = await openVol(base4k);
      const P = await reserve(v, 100);
      await place(v, 0, 10, P, false);
      await place(v, 10, 80, P + 10, true);
      await place(v, 90, 10, P + 90, false);
      await place(v, 200, 1, await reserve(v, 1), true); // the root is full
      expect(shape(await verify(v))).toEqual(["0+10w", "10+80u", "90+10w", "200+1u"]);
      await convert(v, 10, 5); // head, left neighbour written and contiguous
      expect(shape(await verify(v))).toEqual(["0+15w", "15+75u", "90+10w", "200+1u"]);
      await convert(v, 80, 10); // tail, right neighbour written and contiguous
      expect(shape(await verify(v))).toEqual(["0+15w", "15+65u", "80+20w", "200+1u"]);
      expect(treeGrants(v)).toEqual([]); // no split in the full root: nothing allocated
      expect((await verify(v)).depth).toBe(0);
      await convert(v, 40, 5); // middle: six extents, the root grows
      let r = await verify(v);
      expect(shape(r)).toEqual(["0+15w", "15+25u", "40+5w", "45+35u", "80+20w", "200+1u"]);
      expect(r.depth).toBe(1);
      expect(treeGrants(v)).toHaveLength(1);
      await convert(v, 15, 25); // whole extent: merges left, then right; the leaf moves back into the root
      r = await verify(v);
      expect(shape(r)).toEqual(["0+45w", "45+35u", "80+20w", "200+1u"]);
      expect(r.depth).toBe(0);
      expect(r.treeBlocks).toEqual([]);
      expect(v.alloc.frees.map((f) => f.pblk)).toEqual([treeGrants(v)[0]!.pblk]);
      await oracleCheck(v, "conv-merge");
      await convert(v, 45, 35);
      expect(shape(await verify(v))).toEqual(["0+100w", "200+1u"]);
      await oracleCheck(v, "conv-merge-all");
    });

    it("only logically and physically contiguous written neighbours take converted blocks; written and unwritten extents never merge", async () => {
      const v = await openVol(base4k);
      const P = await reserve(v, 50);
      await place(v, 0, 10, P + 40, false); // written, but not physically before [10, 30)
      await place(v, 10, 20, P, true);
      await place(v, 30, 10, P + 20, false); // written, contiguous after [10, 30)
      await place(v, 40, 10, P + 30, true); // unwritten, contiguous after [30, 40)
      expect(shape(await verify(v))).toEqual(["0+10w", "10+20u", "30+10w", "40+10u"]);
      await convert(v, 10, 3); // left neighbour not physically contiguous: no merge
      expect(shape(await verify(v))).toEqual(["0+10w", "10+3w", "13+17u", "30+10w", "40+10u"]);
      await convert(v, 40, 2); // head of [40, 50): left neighbour [30, 40) written and contiguous
      expect(shape(await verify(v))).toEqual(["0+10w", "10+3w", "13+17u", "30+12w", "42+8u"]);
      // Inserting between extents of the other kind never merges either.
      const Q = await reserve(v, 3);
      await place(v, 60, 1, Q, true);
      await place(v, 61, 1, Q + 1, false);
      await place(v, 62, 1, Q + 2, true);
      const r = await verify(v);
      expect(shape(r).slice(-3)).toEqual(["60+1u", "61+1w", "62+1u"]);
      await oracleCheck(v, "conv-kinds");
    });

    it("extConvertUnwritten() respects EXT_INIT_MAX_LEN (32768) and EXT_UNWRITTEN_MAX_LEN (32767) when merging", async () => {
      // Physical blocks are not allocated here: these volumes are never written back.
      const P = 1000;
      const fresh = async (runs: [number, number, boolean][]): Promise<Vol> => {
        const v = await openVol(base4k);
        for (const [lblk, len, unwritten] of runs) await place(v, lblk, len, P + lblk, unwritten);
        return v;
      };
      const look = async (v: Vol): Promise<string[]> => {
        const r = await walkExtentTree(v.fs, v.inode);
        expect(r.problems).toEqual([]);
        return shape(r);
      };
      // A written left neighbour of 32767 takes one more block (32768), not two.
      let v = await fresh([[0, 32767, false], [32767, 10, true]]);
      await convert(v, 32767, 1);
      expect(await look(v)).toEqual(["0+32768w", "32768+9u"]);
      await convert(v, 32768, 1); // the neighbour is full
      expect(await look(v)).toEqual(["0+32768w", "32768+1w", "32769+8u"]);
      await convert(v, 32769, 1); // the one-block extent takes it
      expect(await look(v)).toEqual(["0+32768w", "32768+2w", "32770+7u"]);
      v = await fresh([[0, 32766, false], [32766, 10, true]]);
      await convert(v, 32766, 3); // 32769 would be too long
      expect(await look(v)).toEqual(["0+32766w", "32766+3w", "32769+7u"]);
      // The right neighbour: 32767 + 1 merges, 32768 + 1 does not.
      v = await fresh([[0, 10, true], [10, 32767, false]]);
      await convert(v, 9, 1);
      expect(await look(v)).toEqual(["0+9u", "9+32768w"]);
      await convert(v, 8, 1);
      expect(await look(v)).toEqual(["0+8u", "8+1w", "9+32768w"]);
      // A whole unwritten extent of the maximum 32767 blocks becomes written and merges up to 32768.
      v = await fresh([[0, 32767, true], [32767, 1, false]]);
      await convert(v, 0, 32767);
      expect(await look(v)).toEqual(["0+32768w"]);
      v = await fresh([[0, 32767, true], [32767, 2, false]]);
      await convert(v, 0, 32767);
      expect(await look(v)).toEqual(["0+32767w", "32767+2w"]);
    });

    it("a conversion in a full root grows the tree; its tree block is funded by childFunding(parent)", async () => {
      const v = await openVol(base4k);
      const runs: Run[] = [];
      for (let i = 0; i < 4; i++) runs.push((await mapNew(v, 20 * i, 10, { unwritten: true })).run);
      expect((await verify(v)).depth).toBe(0);
      const delalloc: Funding = { kind: "delalloc", reservation: 3 };
      const parent = await convert(v, 45, 2, { funding: delalloc });
      const r = await verify(v);
      expect(r.depth).toBe(1);
      expect(shape(r)).toEqual(["0+10u", "20+10u", "40+5u", "45+2w", "47+3u", "60+10u"]);
      const tg = treeGrants(v);
      expect(tg).toHaveLength(1);
      // The first insert (the unwritten tail) grows the tree; its first block is the goal.
      expect(tg[0]!.req).toMatchObject({ purpose: "extentNode", ino: v.inode.ino, goal: runs[2]!.pblk + 7, len: 1, funding: childFunding(parent) });
      expect(tg[0]!.req.funding).toEqual({ kind: "chargeNow", quota: "nofail", pool: "emergency" });
      await oracleCheck(v, "conv-grow");
    });

    it("conversions in full leaves use the next leaf's free slots, split the leaf, or grow the tree a level (1 KiB blocks)", async () => {
      // Appending fills every leaf (84 slots): a split moves nothing and leaves the old leaf full.
      const build = async (n: number): Promise<Vol> => {
        const v = await openVol(base1k);
        for (let i = 0; i < n; i++) await mapNew(v, 10 * i, 5, { unwritten: true, goal: 0 });
        return v;
      };
      const leafSizes = async (v: Vol): Promise<number[]> => {
        const r = await walkExtentTree(v.fs, v.inode);
        const sizes: number[] = [];
        for (const b of r.treeBlocks) {
          const hd = extentHeader.decode(await v.fs.cache.get(b), 0);
          if (hd.eh_depth === 0) sizes.push(hd.eh_entries);
        }
        return sizes;
      };
      const v = await build(2 * 84 + 10);
      expect(await leafSizes(v)).toEqual([84, 84, 10]);
      let grants = treeGrants(v).length;
      // The last extent of the full second leaf: both new extents go to the third leaf's free slots.
      await convert(v, 10 * 167 + 1, 2);
      let r = await verify(v);
      expect(await leafSizes(v)).toEqual([84, 84, 12]);
      expect(treeGrants(v).length).toBe(grants);
      expect(shape(r).slice(166, 171)).toEqual(["1660+5u", "1670+1u", "1671+2w", "1673+2u", "1680+5u"]);
      // The middle of an extent in the full first leaf: the leaf splits after it.
      await convert(v, 10 * 40 + 2, 1);
      r = await verify(v);
      expect(await leafSizes(v)).toEqual([43, 43, 84, 12]);
      expect(treeGrants(v).length).toBe(grants + 1);
      for (const g of treeGrants(v).slice(grants)) expect(g.req.funding).toEqual(ENFORCE);
      await oracleCheck(v, "conv-split");
      // Four full leaves under a full root: the tree grows to depth 2, then the leaf splits.
      const w = await build(4 * 84);
      let rw = await verify(w);
      expect(rw.depth).toBe(1);
      expect(await leafSizes(w)).toEqual([84, 84, 84, 84]);
      grants = treeGrants(w).length;
      await convert(w, 10 * 200 + 1, 3);
      rw = await verify(w);
      expect(rw.depth).toBe(2);
      expect(treeGrants(w).length).toBe(grants + 2);
      expect(await leafSizes(w)).toEqual([84, 84, 35, 51, 84]);
      expect(shape(rw).slice(199, 204)).toEqual(["1990+5u", "2000+1u", "2001+3w", "2004+1u", "2010+5u"]);
      await oracleCheck(w, "conv-grow2");
    }, 120_000);

    it("a failed tree-block allocation leaves the range unwritten, the tree valid and i_blocks unchanged", async () => {
      const v = await openVol(base4k);
      for (let i = 0; i < 4; i++) await mapNew(v, 20 * i, 10, { unwritten: true });
      const before = await verify(v);
      const iBlocks = v.inode.raw.i_blocks_lo;
      const free = freeBlocksCount(v.fs.sb);
      v.alloc.failNext = 1; // splitting off the tail needs the root to grow
      await expect(convert(v, 45, 2)).rejects.toMatchObject({ code: "ENOSPC" });
      let r = await verify(v);
      expect(r.extents).toEqual(before.extents);
      expect(v.inode.raw.i_blocks_lo).toBe(iBlocks);
      expect(freeBlocksCount(v.fs.sb)).toBe(free);
      // Three extents: the tail fits the root, the written middle does not. The tail stays split
      // off (a valid tree, as in the kernel); the range stays unwritten.
      const w = await openVol(base4k);
      for (let i = 0; i < 3; i++) await mapNew(w, 20 * i, 10, { unwritten: true });
      w.alloc.failNext = 1;
      await expect(convert(w, 25, 2)).rejects.toMatchObject({ code: "ENOSPC" });
      r = await verify(w);
      expect(shape(r)).toEqual(["0+10u", "20+7u", "27+3u", "40+10u"]);
      await oracleCheck(w, "conv-fail");
      await convert(w, 25, 2); // and it works once there is space
      expect(shape(await verify(w))).toEqual(["0+10u", "20+5u", "25+2w", "27+3u", "40+10u"]);
    });

    it("a range that is not inside one unwritten extent is a caller bug (AssertionError) and changes nothing", async () => {
      const v = await openVol(base4k);
      const P = await reserve(v, 30);
      await place(v, 0, 10, P, false);
      await place(v, 10, 10, P + 10, true);
      await place(v, 20, 5, P + 25, true); // not physically after [10, 20): a separate extent
      const before = await verify(v);
      const parent = allocRequest({ dquots: null, ino: v.inode.ino, purpose: "data", goal: 0, len: 1, funding: ENFORCE });
      // Written, written + unwritten, two unwritten extents, past an extent's end, a hole, empty.
      for (const [lblk, len] of [[2, 3], [9, 2], [18, 4], [22, 4], [30, 1], [10, 0]] as const) {
        await expect(withHandle(v.fs, (h) => extConvertUnwritten(h, v.alloc, v.inode, lblk, len, parent))).rejects.toThrow(AssertionError);
      }
      expect((await verify(v)).extents).toEqual(before.extents);
    });

    it("extRemoveSpace() keeps the surviving pieces of unwritten extents unwritten", async () => {
      const v = await openVol(base4k);
      await mapNew(v, 0, 100, { unwritten: true });
      await convert(v, 60, 20);
      expect(await unmap(v, 40, 49)).toBe(10); // punch inside an unwritten extent
      expect(shape(await verify(v))).toEqual(["0+40u", "50+10u", "60+20w", "80+20u"]);
      expect(await unmap(v, 0, 4)).toBe(5); // head trim
      expect(await unmap(v, 55, 64)).toBe(10); // across unwritten and written
      expect(await unmap(v, 95, 200)).toBe(5); // tail trim past the end
      expect(shape(await verify(v))).toEqual(["5+35u", "50+5u", "65+15w", "80+15u"]);
      await oracleCheck(v, "rm-unwritten");
    });

    it("matches the model under random unwritten inserts, conversions and removes (seeded, debug level 2)", async () => {
      const level = debugLevel;
      setDebugLevel(2);
      try {
        const v = await openVol(base1k);
        const rng = new Rng(7331);
        let conversions = 0;
        let maxDepth = 0;
        for (let step = 1; step <= 1500; step++) {
          const roll = rng.int(10);
          if (roll < 4) {
            const hole = v.model.holeFrom(rng.int(20000));
            const left = v.model.endingAt(hole.start);
            const adjacent = rng.chance(0.5);
            const start = adjacent ? hole.start : hole.start + Math.min(hole.len - 1, rng.int(4));
            const len = Math.min(rng.range(1, 40), hole.start + hole.len - start);
            const goal = adjacent && left !== undefined ? left.pblk + left.len : rng.range(2000, 100000);
            await mapNew(v, start, len, { goal, unwritten: rng.chance(0.7) });
          } else if (roll < 9) {
            const unwritten = (await walkExtentTree(v.fs, v.inode)).extents.filter((e) => e.unwritten);
            if (unwritten.length === 0) continue;
            const e = unwritten[rng.int(unwritten.length)]!;
            const kind = rng.int(4); // head, tail, middle, whole
            const len = kind === 3 ? e.len : Math.max(1, Math.min(e.len, rng.range(1, e.len)));
            const lblk = kind === 0 ? e.lblk : kind === 1 ? e.lblk + e.len - len : e.lblk + rng.int(e.len - len + 1);
            await convert(v, lblk, len);
            conversions++;
          } else {
            const at = rng.int(20000);
            await unmap(v, at, at + rng.range(0, 200));
          }
          if (step % 250 === 0) maxDepth = Math.max(maxDepth, (await verify(v)).depth);
        }
        expect(conversions).toBeGreaterThan(500);
        expect(maxDepth).toBeGreaterThanOrEqual(1);
        await oracleCheck(v, "conv-random");
      } finally {
        setDebugLevel(level === 2 ? 2 : level === 0 ? 0 : 1);
      }
    }, 300_000);
  });
});
