/**
 * Inode allocator tests on mke2fs-made volumes (skipped visibly without e2fsprogs;
 * required under EXT4TS_REQUIRE_ORACLES=1): random allocate/free sequences keep the
 * invariants and restore every count; INODE_UNINIT groups and never-zeroed inode tables;
 * Orlov spreading is deterministic; ENOSPC; double frees are corruption.
 */

import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "../../test/oracle/oracle_env.js";
import { MemoryDevice } from "../device/memory.js";
import { isFsError } from "../errors.js";
import {
  EXT4_BG_BLOCK_UNINIT,
  EXT4_BG_INODE_UNINIT,
  EXT4_BG_INODE_ZEROED,
  freeInodesCount,
  itableUnused,
  usedDirsCount,
} from "../format/group_desc.js";
import { S_IFDIR, S_IFREG } from "../format/inode.js";
import { firstIno } from "../format/superblock.js";
import { checkAllocationInvariants, inodeBitmapUninit } from "./balloc.js";
import { withHandle } from "./handle.js";
import { ext4FreeInode, ext4NewInode, type NewInodeOptions } from "./ialloc.js";
import { inodeLocation } from "./inode.js";
import { Ext4Fs } from "./super.js";

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
/** No flex_bg: placement is per group, so the Orlov spreading and parent groups show. */
const NOFLEX: Variant = { name: "ext4 1k ^flex_bg", args: ["-t", "ext4", "-b", "1024", "-O", "^flex_bg"], size: "32M" };

let work = "";
const images = new Map<string, Uint8Array>();

beforeAll(() => {
  if (!oracle.ok) return;
  work = mkdtempSync(path.join(tmpdir(), "ext4ts-ialloc-"));
  for (const v of [...VARIANTS, NOFLEX]) {
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

async function expectInvariants(fs: Ext4Fs): Promise<void> {
  expect(await checkAllocationInvariants(fs)).toEqual([]);
}

function newInode(fs: Ext4Fs, dir: number, mode: number, opts: NewInodeOptions = {}): Promise<number> {
  return withHandle(fs, (h) => ext4NewInode(h, dir, mode, opts));
}

async function freeInode(fs: Ext4Fs, ino: number, isDir: boolean): Promise<void> {
  await withHandle(fs, (h) => ext4FreeInode(h, ino, isDir));
}

const groupOf = (fs: Ext4Fs, ino: number): number => Math.floor((ino - 1) / fs.inodesPerGroup);

function counts(fs: Ext4Fs): { free: number[]; dirs: number[]; total: number } {
  const gs = Array.from({ length: fs.groupCount }, (_, g) => fs.group(g));
  return { free: gs.map((gd) => freeInodesCount(gd, fs.descSize)), dirs: gs.map((gd) => usedDirsCount(gd, fs.descSize)), total: fs.sb.s_free_inodes_count };
}

type Op =
  | { readonly kind: "new"; readonly dir: boolean; readonly parentSeed: number; readonly seed: number; readonly concurrent: number }
  | { readonly kind: "free"; readonly pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("new" as const), dir: fc.boolean(), parentSeed: fc.nat(), seed: fc.nat(), concurrent: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("free" as const), pick: fc.nat() }) },
);

/** Runs `ops` against a model (numbers unique, >= s_first_ino, exact counts); returns what is still allocated. */
async function runOps(fs: Ext4Fs, ops: readonly Op[]): Promise<{ ino: number; dir: boolean }[]> {
  const live: { ino: number; dir: boolean }[] = [];
  const used = new Set<number>();
  for (const op of ops) {
    if (op.kind === "new") {
      const before = fs.sb.s_free_inodes_count;
      const jobs = Array.from({ length: op.concurrent }, (_, k) => {
        // Directories under the root (top-level, Orlov) or lost+found (11); files anywhere.
        const parent = op.dir ? ((op.parentSeed + k) % 2 === 0 ? 2 : 11) : 1 + ((op.parentSeed + k * 131) % fs.inodesCount);
        return newInode(fs, parent, op.dir ? S_IFDIR | 0o755 : S_IFREG | 0o644, { seed: op.seed + k });
      });
      const results = await Promise.allSettled(jobs);
      let n = 0;
      for (const r of results) {
        if (r.status === "rejected") {
          expect(isFsError(r.reason, "ENOSPC"), String(r.reason)).toBe(true);
          continue;
        }
        const ino = r.value;
        expect(ino).toBeGreaterThanOrEqual(firstIno(fs.sb));
        expect(ino).toBeLessThanOrEqual(fs.inodesCount);
        expect(used.has(ino), `inode ${ino} handed out twice`).toBe(false);
        used.add(ino);
        live.push({ ino, dir: op.dir });
        n++;
      }
      expect(fs.sb.s_free_inodes_count).toBe(before - n);
    } else if (live.length > 0) {
      const [x] = live.splice(op.pick % live.length, 1);
      await freeInode(fs, x!.ino, x!.dir);
      used.delete(x!.ino);
    }
  }
  return live;
}

describe.skipIf(!oracle.ok && !oracle.required)("inode allocator on mke2fs volumes", () => {
  oracleGate(oracle);

  for (const v of [...VARIANTS, NOFLEX]) {
    describe(v.name, () => {
      it("random allocate/free sequences keep the invariants and freeing everything restores every count", async () => {
        await fc.assert(
          fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
            const { fs } = await mountWritable(v);
            const orig = counts(fs);
            const live = await runOps(fs, ops);
            await expectInvariants(fs);
            for (const x of live) await freeInode(fs, x.ino, x.dir);
            await expectInvariants(fs);
            expect(counts(fs)).toEqual(orig);
          }),
          { numRuns: 15, seed: 0x1a11c },
        );
      });

      it("after a workload and freeing everything, e2fsck -fn is clean and dumpe2fs counts equal the original", async () => {
        const ops = fc.sample(fc.array(opArb, { minLength: 80, maxLength: 80 }), { seed: 11, numRuns: 1 })[0]!;
        const { fs, dev } = await mountWritable(v);
        const live = await runOps(fs, ops);
        for (const x of live) await freeInode(fs, x.ino, x.dir);
        await expectInvariants(fs);
        const file = await unmountToFile(fs, dev, "after.img");
        e2fsckClean(file);
        const orig = path.join(work, "orig.img");
        writeFileSync(orig, images.get(v.name)!);
        expect(dumpedCounts(file)).toEqual(dumpedCounts(orig));
      });
    });
  }

  it("a file goes to its parent's group; in an INODE_UNINIT group it takes the first inode, clears the flag, lowers bg_itable_unused and zeroes a never-zeroed slot", async () => {
    const { fs, dev } = await mountWritable(NOFLEX);
    const ipg = fs.inodesPerGroup;
    const g = Array.from({ length: fs.groupCount }, (_, i) => i).find((i) => i > 0 && inodeBitmapUninit(fs, fs.group(i)));
    expect(g, "mke2fs left no INODE_UNINIT group to test").toBeDefined();
    const group = g!;
    const gd = fs.group(group);
    // Pretend the table was never zeroed and leave garbage where the first inode goes.
    gd.bg_flags &= ~EXT4_BG_INODE_ZEROED;
    const expected = group * ipg + 1;
    const loc = inodeLocation(fs, expected);
    await withHandle(fs, async (h) => {
      const b = await h.getWriteAccess(loc.block);
      b.fill(0xaa, loc.offset, loc.offset + fs.inodeSize);
      h.dirtyMetadata(loc.block);
    });
    const ino = await newInode(fs, group * ipg + 7, S_IFREG | 0o644);
    expect(ino).toBe(expected);
    expect(gd.bg_flags & EXT4_BG_INODE_UNINIT).toBe(0);
    expect(gd.bg_flags & EXT4_BG_BLOCK_UNINIT).toBe(0); // initialised with the first inode, as the kernel does
    expect(itableUnused(gd, fs.descSize)).toBe(ipg - 1);
    expect(freeInodesCount(gd, fs.descSize)).toBe(ipg - 1);
    const slot = (await fs.cache.get(loc.block)).subarray(loc.offset, loc.offset + fs.inodeSize);
    expect(slot.every((x) => x === 0)).toBe(true);
    await expectInvariants(fs);
    await freeInode(fs, ino, false);
    await expectInvariants(fs);
    e2fsckClean(await unmountToFile(fs, dev, "uninit.img"));
  });

  it("top-level directories: the same seed or name picks the same group, different seeds spread, and bg_used_dirs_count follows", async () => {
    const groupsFor = async (opts: NewInodeOptions): Promise<number> => {
      const { fs } = await mountWritable(NOFLEX);
      const ino = await newInode(fs, 2, S_IFDIR | 0o755, opts);
      const g = groupOf(fs, ino);
      expect(usedDirsCount(fs.group(g), fs.descSize)).toBe(g === 0 ? 3 : 1); // group 0 holds / and lost+found
      await expectInvariants(fs);
      return g;
    };
    expect(await groupsFor({ seed: 5 })).toBe(await groupsFor({ seed: 5 }));
    const name = new TextEncoder().encode("home");
    expect(await groupsFor({ name })).toBe(await groupsFor({ name }));
    const spread = new Set<number>();
    for (let seed = 0; seed < 12; seed++) spread.add(await groupsFor({ seed }));
    expect(spread.size).toBeGreaterThan(1);
  });

  it("fills every inode, then ENOSPC; freeing them all leaves the volume e2fsck-clean", async () => {
    const v = VARIANTS[3]!;
    const { fs, dev } = await mountWritable(v);
    const got: number[] = [];
    while (fs.sb.s_free_inodes_count > 0) got.push(await newInode(fs, 2, S_IFREG | 0o600));
    expect(new Set(got).size).toBe(got.length);
    const err = await newInode(fs, 2, S_IFREG | 0o600).catch((x: unknown) => x);
    expect(isFsError(err, "ENOSPC"), String(err)).toBe(true);
    await expectInvariants(fs);
    for (const ino of got) await freeInode(fs, ino, false);
    await expectInvariants(fs);
    const file = await unmountToFile(fs, dev, "full.img");
    e2fsckClean(file);
  });

  it("concurrent allocations in separate handles get distinct numbers", async () => {
    const { fs } = await mountWritable(VARIANTS[1]!);
    const before = fs.sb.s_free_inodes_count;
    const inos = await Promise.all(Array.from({ length: 64 }, (_, i) => newInode(fs, i % 4 === 0 ? 2 : 11, (i % 4 === 0 ? S_IFDIR : S_IFREG) | 0o755, { seed: i })));
    expect(new Set(inos).size).toBe(64);
    expect(fs.sb.s_free_inodes_count).toBe(before - 64);
    await expectInvariants(fs);
  });

  it("freeing a free, reserved or nonexistent inode is corruption (EFSCORRUPTED) and changes nothing", async () => {
    const { fs } = await mountWritable(VARIANTS[1]!);
    const ino = await newInode(fs, 2, S_IFREG | 0o644);
    await freeInode(fs, ino, false);
    const before = counts(fs);
    for (const [bad, dir] of [[ino, false], [2, true], [7, false], [fs.inodesCount + 1, false]] as const) {
      const err = await freeInode(fs, bad, dir).catch((x: unknown) => x);
      expect(isFsError(err, "EFSCORRUPTED"), `${bad}: ${String(err)}`).toBe(true);
    }
    expect(counts(fs)).toEqual(before);
    await expectInvariants(fs);
  });
});
