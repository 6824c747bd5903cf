/**
 * Block allocator tests on mke2fs-made volumes (skipped visibly without e2fsprogs;
 * required under EXT4TS_REQUIRE_ORACLES=1): random allocate/free sequences keep the
 * allocation invariants and, once everything is freed, give back the original counts
 * with e2fsck -fn clean; BLOCK_UNINIT groups; ENOSPC; the seed rule (funding comes from
 * the request, whatever the interleaving); corruption is reported, not obeyed.
 */

import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "../../test/oracle/oracle_env.js";
import { AssertionError } from "../debug/assert.js";
import { MemoryDevice } from "../device/memory.js";
import { isFsError } from "../errors.js";
import { EXT4_BG_BLOCK_UNINIT, freeBlocksCount as gdFreeBlocks } from "../format/group_desc.js";
import { freeBlocksCount as sbFreeBlocks, groupFirstBlock, rBlocksCount } from "../format/superblock.js";
import { allocRequest, type AllocRequest, type Funding } from "./alloc_request.js";
import { blockBitmapUninit, blocksInGroup, checkAllocationInvariants, ext4FreeBlocks, ext4NewBlocks, groupOfBlock, overlapsSystemZone, type BlockExtent } from "./balloc.js";
import { withHandle } from "./handle.js";
import { Ext4Fs } from "./super.js";

const ENFORCE: Funding = { kind: "chargeNow", quota: "enforce" };
const NOFAIL: Funding = { kind: "chargeNow", quota: "nofail", pool: "emergency" };

const oracle = oracleAvailability(["mke2fs", "e2fsck", "dumpe2fs"]);

interface Variant {
  readonly name: string;
  readonly args: readonly string[];
  readonly size: string;
}

const VARIANTS: readonly Variant[] = [
  { name: "ext4 4k", args: ["-t", "ext4", "-b", "4096", "-g", "2048"], size: "64M" },
  { name: "ext4 1k", args: ["-t", "ext4", "-b", "1024"], size: "32M" },
  { name: "ext4 1k ^metadata_csum,^64bit,uninit_bg", args: ["-t", "ext4", "-b", "1024", "-O", "^metadata_csum,^64bit,uninit_bg"], size: "32M" },
  { name: "ext2 1k", args: ["-t", "ext2", "-b", "1024"], size: "16M" },
];

let work = "";
const images = new Map<string, Uint8Array>();

beforeAll(() => {
  if (!oracle.ok) return;
  work = mkdtempSync(path.join(tmpdir(), "ext4ts-balloc-"));
  for (const v of VARIANTS) {
    const img = path.join(work, "mkfs.img");
    run(tool("mke2fs"), ["-q", "-F", ...v.args, img, v.size]);
    images.set(v.name, new Uint8Array(readFileSync(img)));
  }
}, 60_000);

afterAll(() => {
  if (work !== "") rmSync(work, { recursive: true, force: true });
});

async function mountWritable(v: Variant): Promise<{ fs: Ext4Fs; dev: MemoryDevice }> {
  const bytes = images.get(v.name);
  if (bytes === undefined) throw new Error(`no image for ${v.name}`);
  const dev = MemoryDevice.from(bytes);
  return { fs: await Ext4Fs.mount(dev, { readOnly: false }), dev };
}

/** Unmount cleanly and write the image where e2fsprogs can read it. */
async function unmountToFile(fs: Ext4Fs, dev: MemoryDevice, name: string): Promise<string> {
  await fs.unmount();
  const file = path.join(work, name);
  writeFileSync(file, dev.toBytes());
  return file;
}

function e2fsckClean(file: string): void {
  const r = runUnchecked(tool("e2fsck"), ["-fn", file]);
  expect(r.status, `e2fsck -fn exited ${r.status}:\n${r.stdout}\n${r.stderr}`).toBe(0);
}

/** Free counts as dumpe2fs prints them: the header totals, then each group's. */
function dumpedCounts(file: string): string[] {
  const out = run(tool("dumpe2fs"), [file]).stdout;
  const lines: string[] = [];
  for (const l of out.split("\n")) {
    const h = /^(Free blocks|Free inodes):\s+(\d+)$/.exec(l);
    if (h !== null) lines.push(`${h[1]!}=${h[2]!}`);
    const g = /(\d+) free (?:blocks|clusters), (\d+) free inodes, (\d+) directories/.exec(l);
    if (g !== null) lines.push(`${g[1]!}/${g[2]!}/${g[3]!}`);
  }
  return lines;
}

function groupFrees(fs: Ext4Fs): number[] {
  return Array.from({ length: fs.groupCount }, (_, g) => gdFreeBlocks(fs.group(g), fs.descSize));
}

function alloc(fs: Ext4Fs, r: Omit<AllocRequest, "minLen" | "dquots"> & { minLen?: number; dquots?: AllocRequest["dquots"] }): Promise<BlockExtent> {
  return withHandle(fs, (h) => ext4NewBlocks(h, allocRequest({ dquots: null, ...r })));
}

async function free(fs: Ext4Fs, e: BlockExtent): Promise<void> {
  await withHandle(fs, (h) => ext4FreeBlocks(h, 0, e.pblk, e.len));
}

async function expectInvariants(fs: Ext4Fs): Promise<void> {
  expect(await checkAllocationInvariants(fs)).toEqual([]);
}

type Op =
  | { readonly kind: "alloc"; readonly len: number; readonly minSeed: number; readonly goalSeed: number; readonly inoSeed: number; readonly nofail: boolean; readonly concurrent: number }
  | { readonly kind: "free"; readonly pick: number; readonly part: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("alloc" as const),
      len: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 3000 })),
      minSeed: fc.nat(),
      goalSeed: fc.oneof(fc.constant(0), fc.nat()),
      inoSeed: fc.nat(),
      nofail: fc.boolean(),
      concurrent: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("free" as const), pick: fc.nat(), part: fc.nat() }) },
);

/**
 * Runs `ops`, checking every grant against a model of owned blocks (disjoint, outside
 * metadata, charged exactly its length). Allocations with concurrent > 1 run that many
 * requests at once, each in its own handle. Returns what is still owned.
 */
async function runOps(fs: Ext4Fs, ops: readonly Op[]): Promise<BlockExtent[]> {
  const owned: BlockExtent[] = [];
  const model = new Uint8Array(fs.blocksCount);
  for (const op of ops) {
    if (op.kind === "alloc") {
      const reqs = Array.from({ length: op.concurrent }, (_, k) => {
        const len = op.len;
        const minLen = 1 + ((op.minSeed + k) % len);
        const goal = op.goalSeed === 0 ? 0 : (op.goalSeed + k * 977) % fs.blocksCount;
        const ino = op.inoSeed % (fs.inodesCount + 1);
        return allocRequest({ dquots: null, ino, purpose: k % 2 === 0 ? "data" : "xattrBlock", goal, len, minLen, funding: op.nofail ? NOFAIL : ENFORCE });
      });
      const before = sbFreeBlocks(fs.sb);
      const results = await Promise.allSettled(reqs.map((r) => withHandle(fs, (h) => ext4NewBlocks(h, r))));
      let taken = 0;
      results.forEach((res, k) => {
        const r = reqs[k]!;
        if (res.status === "rejected") {
          expect(isFsError(res.reason, "ENOSPC"), String(res.reason)).toBe(true);
          return;
        }
        const e = res.value;
        expect(e.len).toBeGreaterThanOrEqual(r.minLen);
        expect(e.len).toBeLessThanOrEqual(r.len);
        expect(overlapsSystemZone(fs, e.pblk, e.len)).toBe(false);
        for (let b = e.pblk; b < e.pblk + e.len; b++) {
          expect(model[b], `block ${b} handed out twice`).toBe(0);
          model[b] = 1;
        }
        taken += e.len;
        owned.push(e);
      });
      expect(sbFreeBlocks(fs.sb)).toBe(before - taken);
    } else if (owned.length > 0) {
      const i = op.pick % owned.length;
      const e = owned[i]!;
      const n = 1 + (op.part % e.len);
      const before = sbFreeBlocks(fs.sb);
      await free(fs, { pblk: e.pblk, len: n });
      expect(sbFreeBlocks(fs.sb)).toBe(before + n);
      model.fill(0, e.pblk, e.pblk + n);
      if (n === e.len) owned.splice(i, 1);
      else owned[i] = { pblk: e.pblk + n, len: e.len - n };
    }
  }
  return owned;
}

describe.skipIf(!oracle.ok && !oracle.required)("block allocator on mke2fs volumes", () => {
  oracleGate(oracle);

  for (const v of VARIANTS) {
    describe(v.name, () => {
      it("random allocate/free sequences keep the invariants and freeing everything restores every count", async () => {
        await fc.assert(
          fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
            const { fs } = await mountWritable(v);
            const origFree = sbFreeBlocks(fs.sb);
            const origGroups = groupFrees(fs);
            const left = await runOps(fs, ops);
            await expectInvariants(fs);
            for (const e of left) await free(fs, e);
            await expectInvariants(fs);
            expect(sbFreeBlocks(fs.sb)).toBe(origFree);
            expect(groupFrees(fs)).toEqual(origGroups);
          }),
          { numRuns: 15, seed: 0x5eed },
        );
      });

      it("after a workload and freeing everything, e2fsck -fn is clean and dumpe2fs counts equal the original", async () => {
        const ops = fc.sample(fc.array(opArb, { minLength: 60, maxLength: 60 }), { seed: 7, numRuns: 1 })[0]!;
        const { fs, dev } = await mountWritable(v);
        const left = await runOps(fs, ops);
        for (const e of left) await free(fs, e);
        await expectInvariants(fs);
        const file = await unmountToFile(fs, dev, "after.img");
        e2fsckClean(file);
        const orig = path.join(work, "orig.img");
        writeFileSync(orig, images.get(v.name)!);
        expect(dumpedCounts(file)).toEqual(dumpedCounts(orig));
      });

      it("fills the volume, then ENOSPC for one more block whatever the funding; freeing leaves it e2fsck-clean", async () => {
        const { fs, dev } = await mountWritable(v);
        const got: BlockExtent[] = [];
        while (sbFreeBlocks(fs.sb) > 0) got.push(await alloc(fs, { ino: 12, purpose: "data", goal: 0, len: 4096, minLen: 1, funding: NOFAIL }));
        expect(groupFrees(fs).every((n) => n === 0)).toBe(true);
        await expectInvariants(fs);
        for (const funding of [NOFAIL, ENFORCE]) {
          const e = await alloc(fs, { ino: 12, purpose: "data", goal: 0, len: 1, funding }).then(
            () => null,
            (err: unknown) => err,
          );
          expect(isFsError(e, "ENOSPC"), String(e)).toBe(true);
        }
        for (const e of got) await free(fs, e);
        await expectInvariants(fs);
        e2fsckClean(await unmountToFile(fs, dev, "full.img"));
      });
    });
  }

  it("takes the run that starts exactly at the goal when it is free", async () => {
    const { fs } = await mountWritable(VARIANTS[1]!);
    const first = await alloc(fs, { ino: 12, purpose: "data", goal: 0, len: 8, funding: ENFORCE });
    const goal = first.pblk + 100;
    const e = await alloc(fs, { ino: 12, purpose: "data", goal, len: 5, funding: ENFORCE });
    expect(e).toEqual({ pblk: goal, len: 5 });
    // Occupied goal: the next free run of full length follows it.
    const again = await alloc(fs, { ino: 12, purpose: "data", goal, len: 5, funding: ENFORCE });
    expect(again.pblk).toBeGreaterThanOrEqual(goal + 5);
    await expectInvariants(fs);
  });

  it("takes fewer blocks (down to minLen) only when no full-length run exists", async () => {
    const { fs } = await mountWritable(VARIANTS[1]!);
    const all: BlockExtent[] = [];
    while (sbFreeBlocks(fs.sb) > 0) all.push(await alloc(fs, { ino: 0, purpose: "data", goal: 0, len: 8192, minLen: 1, funding: NOFAIL }));
    // Free every other block of one extent: the longest free run is 1.
    const big = all.find((e) => e.len >= 20)!;
    for (let i = 0; i < 20; i += 2) await free(fs, { pblk: big.pblk + i, len: 1 });
    const e = await alloc(fs, { ino: 0, purpose: "data", goal: 0, len: 4, minLen: 1, funding: NOFAIL });
    expect(e.len).toBe(1);
    const err = await alloc(fs, { ino: 0, purpose: "data", goal: 0, len: 4, minLen: 2, funding: NOFAIL }).catch((x: unknown) => x);
    expect(isFsError(err, "ENOSPC")).toBe(true);
    await expectInvariants(fs);
  });

  for (const v of VARIANTS.slice(0, 3)) {
    it(`${v.name}: allocating in a BLOCK_UNINIT group builds its bitmap and clears the flag; freeing leaves e2fsck clean`, async () => {
      const { fs, dev } = await mountWritable(v);
      const g = Array.from({ length: fs.groupCount }, (_, i) => i).find((i) => blockBitmapUninit(fs, fs.group(i)));
      expect(g, "mke2fs left no BLOCK_UNINIT group to test").toBeDefined();
      const group = g!;
      const freeBefore = gdFreeBlocks(fs.group(group), fs.descSize);
      const goal = groupFirstBlock(fs.sb, group) + blocksInGroup(fs, group) - 10;
      const e = await alloc(fs, { ino: 12, purpose: "data", goal, len: 3, funding: ENFORCE });
      expect(e).toEqual({ pblk: goal, len: 3 });
      expect(groupOfBlock(fs, e.pblk)).toBe(group);
      expect(fs.group(group).bg_flags & EXT4_BG_BLOCK_UNINIT).toBe(0);
      expect(gdFreeBlocks(fs.group(group), fs.descSize)).toBe(freeBefore - 3);
      await expectInvariants(fs);
      await free(fs, e);
      await expectInvariants(fs);
      const file = await unmountToFile(fs, dev, "uninit.img");
      e2fsckClean(file);
      const line = run(tool("dumpe2fs"), [file]).stdout.split("\n").find((l) => l.startsWith(`Group ${group}:`));
      expect(line).toBeDefined();
      expect(line).not.toMatch(/BLOCK_UNINIT/);
    });
  }

  it("seed rule: near the root-reserve watermark an enforce request fails and a nofail one succeeds, in either order, on the same inode", async () => {
    const { fs, dev } = await mountWritable(VARIANTS[1]!);
    // What an enforce request must leave free: the root reserve and the emergency pool.
    const reserve = rBlocksCount(fs.sb) + fs.resvClusters;
    expect(rBlocksCount(fs.sb)).toBeGreaterThan(0);
    expect(fs.resvClusters).toBeGreaterThan(0);
    const filler: BlockExtent[] = [];
    while (sbFreeBlocks(fs.sb) > reserve) {
      filler.push(await alloc(fs, { ino: 0, purpose: "data", goal: 0, len: Math.min(4096, sbFreeBlocks(fs.sb) - reserve), funding: NOFAIL }));
    }
    expect(sbFreeBlocks(fs.sb)).toBe(reserve);
    for (const order of [["enforce", "nofail"], ["nofail", "enforce"]] as const) {
      const reqs = order.map((k) => allocRequest({ dquots: null, ino: 12, purpose: k === "enforce" ? "xattrBlock" : "extentNode", goal: 0, len: 1, funding: k === "enforce" ? ENFORCE : NOFAIL }));
      const before = sbFreeBlocks(fs.sb);
      const [a, b] = await Promise.allSettled(reqs.map((r) => withHandle(fs, (h) => ext4NewBlocks(h, r))));
      const byKind = order[0] === "enforce" ? { enforce: a!, nofail: b! } : { enforce: b!, nofail: a! };
      expect(byKind.enforce.status).toBe("rejected");
      if (byKind.enforce.status === "rejected") expect(isFsError(byKind.enforce.reason, "ENOSPC")).toBe(true);
      expect(byKind.nofail.status).toBe("fulfilled");
      if (byKind.nofail.status === "fulfilled") {
        expect(byKind.nofail.value.len).toBe(1);
        expect(sbFreeBlocks(fs.sb)).toBe(before - 1); // charged exactly once, for the nofail grant
        await free(fs, byKind.nofail.value);
      }
    }
    // One block above the watermark, enforce is admitted.
    await free(fs, { pblk: filler[0]!.pblk, len: 1 });
    const ok = await alloc(fs, { ino: 12, purpose: "xattrBlock", goal: 0, len: 1, funding: ENFORCE });
    expect(ok.len).toBe(1);
    await free(fs, ok);
    filler[0] = { pblk: filler[0]!.pblk + 1, len: filler[0]!.len - 1 };
    for (const e of filler) if (e.len > 0) await free(fs, e);
    await expectInvariants(fs);
    e2fsckClean(await unmountToFile(fs, dev, "seed.img"));
  });

  it("an enforce request shrinks to what is above the root reserve and the pool; nofail may take them", async () => {
    const { fs } = await mountWritable(VARIANTS[1]!);
    const reserve = rBlocksCount(fs.sb) + fs.resvClusters;
    while (sbFreeBlocks(fs.sb) > reserve + 5) {
      await alloc(fs, { ino: 0, purpose: "data", goal: 0, len: Math.min(4096, sbFreeBlocks(fs.sb) - reserve - 5), funding: NOFAIL });
    }
    const e = await alloc(fs, { ino: 12, purpose: "data", goal: 0, len: 50, minLen: 1, funding: ENFORCE });
    expect(e.len).toBeLessThanOrEqual(5);
    while (sbFreeBlocks(fs.sb) > reserve) await alloc(fs, { ino: 12, purpose: "data", goal: 0, len: 5, minLen: 1, funding: ENFORCE });
    expect(sbFreeBlocks(fs.sb)).toBe(reserve);
    const refused = await alloc(fs, { ino: 12, purpose: "data", goal: 0, len: 1, funding: ENFORCE }).catch((x: unknown) => x);
    expect(isFsError(refused, "ENOSPC")).toBe(true);
    const n = await alloc(fs, { ino: 12, purpose: "data", goal: 0, len: 1, funding: NOFAIL });
    expect(n.len).toBe(1);
    expect(sbFreeBlocks(fs.sb)).toBe(reserve - 1);
    await expectInvariants(fs);
  });

  it("write()'s reservations (dirtyClusters) are off limits to chargeNow requests; delalloc requests draw on them without a second admission", async () => {
    const { fs } = await mountWritable(VARIANTS[1]!);
    const kept = rBlocksCount(fs.sb) + fs.resvClusters;
    while (sbFreeBlocks(fs.sb) > kept + 10) {
      await alloc(fs, { ino: 0, purpose: "data", goal: 0, len: Math.min(4096, sbFreeBlocks(fs.sb) - kept - 10), funding: NOFAIL });
    }
    fs.dirtyClusters = 10; // as if write() had reserved the last 10 admissible clusters
    const refused = await alloc(fs, { ino: 12, purpose: "xattrBlock", goal: 0, len: 1, funding: ENFORCE }).catch((x: unknown) => x);
    expect(isFsError(refused, "ENOSPC")).toBe(true);
    // nofail leaves the reservations alone but may use the pool and the root reserve.
    const n = await alloc(fs, { ino: 12, purpose: "extentNode", goal: 0, len: 1, funding: NOFAIL });
    expect(n.len).toBe(1);
    // The reserved data itself is allocated at writeback with no admission test at all.
    const d = await alloc(fs, { ino: 12, purpose: "data", goal: 0, len: 10, funding: { kind: "delalloc", reservation: 10 } });
    expect(d.len).toBe(10);
    // A delalloc request larger than its reservation is a bug, not an errno.
    const bad = await alloc(fs, { ino: 12, purpose: "data", goal: 0, len: 2, funding: { kind: "delalloc", reservation: 1 } }).catch((x: unknown) => x);
    expect(bad).toBeInstanceOf(AssertionError);
    fs.dirtyClusters = 0;
    await expectInvariants(fs);
  });

  it("many concurrent requests in separate handles get disjoint blocks and exact charges", async () => {
    const { fs, dev } = await mountWritable(VARIANTS[0]!);
    const before = sbFreeBlocks(fs.sb);
    const got = await Promise.all(
      Array.from({ length: 40 }, (_, i) => alloc(fs, { ino: 12 + (i % 3), purpose: "data", goal: 0, len: 1 + (i % 7) * 50, minLen: 1, funding: i % 2 === 0 ? ENFORCE : NOFAIL })),
    );
    const seen = new Set<number>();
    for (const e of got) {
      for (let b = e.pblk; b < e.pblk + e.len; b++) {
        expect(seen.has(b)).toBe(false);
        seen.add(b);
      }
    }
    expect(sbFreeBlocks(fs.sb)).toBe(before - seen.size);
    await expectInvariants(fs);
    await Promise.all(got.map((e) => free(fs, e)));
    expect(sbFreeBlocks(fs.sb)).toBe(before);
    await expectInvariants(fs);
    e2fsckClean(await unmountToFile(fs, dev, "concurrent.img"));
  });

  it("freeing a free block or volume metadata is corruption (EFSCORRUPTED) and changes nothing", async () => {
    const { fs } = await mountWritable(VARIANTS[1]!);
    const e = await alloc(fs, { ino: 12, purpose: "data", goal: 0, len: 4, funding: ENFORCE });
    await free(fs, { pblk: e.pblk, len: 2 });
    const before = sbFreeBlocks(fs.sb);
    const err1 = await free(fs, { pblk: e.pblk + 1, len: 2 }).catch((x: unknown) => x);
    expect(isFsError(err1, "EFSCORRUPTED"), String(err1)).toBe(true);
    const err2 = await free(fs, { pblk: fs.sb.s_first_data_block, len: 1 }).catch((x: unknown) => x);
    expect(isFsError(err2, "EFSCORRUPTED"), String(err2)).toBe(true);
    const err3 = await free(fs, { pblk: fs.blocksCount - 1, len: 2 }).catch((x: unknown) => x);
    expect(isFsError(err3, "EFSCORRUPTED"), String(err3)).toBe(true);
    expect(sbFreeBlocks(fs.sb)).toBe(before);
    await free(fs, { pblk: e.pblk + 2, len: 2 });
    await expectInvariants(fs);
  });

  it("a block bitmap with a bad checksum is skipped for allocation and refused for freeing (EFSBADCRC)", async () => {
    const { fs } = await mountWritable(VARIANTS[1]!);
    // Group 0 is initialised; spoil its stored bitmap checksum in core before first use.
    fs.group(0).bg_block_bitmap_csum_lo ^= 0xffff;
    const start = groupFirstBlock(fs.sb, 0);
    let data = start + 1;
    while (overlapsSystemZone(fs, data, 1)) data++;
    const e = await alloc(fs, { ino: 12, purpose: "data", goal: data, len: 2, funding: ENFORCE });
    expect(groupOfBlock(fs, e.pblk)).not.toBe(0);
    expect(fs.errorCount).toBeGreaterThan(0);
    const err = await free(fs, { pblk: data, len: 1 }).catch((x: unknown) => x);
    expect(isFsError(err, "EFSBADCRC"), String(err)).toBe(true);
  });
});
