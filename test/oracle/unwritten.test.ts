/**
 * Unwritten-extent conversion (extConvertUnwritten, src/fs/extents_write.ts) against the kernel.
 *
 * The kernel makes the files with fallocate(1): one plain unwritten extent, space preallocated
 * past EOF (--keep-size), unwritten space with written neighbours, punched holes, and a file of
 * many small fallocates whose tree has a full root over full leaves. Two copies of the image:
 *
 *   A  ext4ts converts chosen ranges and writes data into their blocks, as the write path will
 *      (extConvertUnwritten, then whole blocks through fs.cache.writeUncached; i_size raised to
 *      the end of a write past EOF, as write(2) does);
 *   B  the kernel writes the same bytes at the same offsets (pwrite + fsync per range, so the
 *      conversions happen in the same order), mounted dioread_lock with extent_max_zeroout_kb = 0,
 *      so writeback converts through ext4_ext_convert_to_initialized without its zero-out shortcut.
 *
 * Then: `e2fsck -fn` is clean on A (and B); a kernel mount of A reads exactly the bytes expected
 * (data where converted or written by the population, zeros elsewhere, the expected size); and
 * `debugfs -R "ex FILE"` lists the same tree for A and B: depth, entries per node, every leaf
 * extent with its physical blocks and Uninit flag (only where index blocks themselves were
 * allocated may differ).
 */

import { copyFileSync, fsyncSync, closeSync, mkdtempSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FileDevice } from "../../src/device/file.js";
import { allocRequest } from "../../src/fs/alloc_request.js";
import { engineDeps } from "../../src/fs/engine_deps.js";
import { extMapBlocks } from "../../src/fs/extents.js";
import { extConvertUnwritten, walkExtentTree } from "../../src/fs/extents_write.js";
import { withHandle } from "../../src/fs/handle.js";
import { getSize, igetWritable, markInodeDirty, setSize } from "../../src/fs/inode_write.js";
import { resolvePath } from "../../src/fs/namei.js";
import { Ext4Fs } from "../../src/fs/super.js";
import { cleanupImages, kernelImage, runDir, withLoopMount } from "./images.js";
import { oracleAvailability, oracleGate, run, runAsync, runUnchecked, tool } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck", "debugfs", "fallocate", "sh"], { loop: true, root: true });
const DEBUGFS_ENV = { ...process.env, PAGER: "__none__", DEBUGFS_PAGER: "__none__" };
const FIXED = { sec: 1_700_000_000, nsec: 0 };

/** Entries per leaf block: (block size - 12) / 12. */
const leafSlots = (bs: number): number => Math.floor((bs - 12) / 12);

/** The deterministic contents of `count` blocks of `file` from logical block `lblk`. */
function blockData(file: string, lblk: number, count: number, bs: number): Uint8Array {
  const out = new Uint8Array(count * bs);
  let seed = 2166136261;
  for (const c of file) seed = Math.imul(seed ^ c.charCodeAt(0), 16777619) >>> 0;
  for (let b = 0; b < count; b++) {
    let x = (seed ^ Math.imul(lblk + b + 1, 0x9e3779b1)) >>> 0 || 1;
    for (let i = b * bs; i < (b + 1) * bs; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
  }
  return out;
}

/** A file the kernel makes, the ranges then converted and written, and its expected final size. */
interface FileSpec {
  readonly name: string;
  /** Shell commands run in the mount directory (fallocate, ...). */
  readonly make: (bs: number) => string;
  /** Blocks the population writes through the kernel: [lblk, count]. */
  readonly prewritten?: readonly (readonly [number, number])[];
  /** Ranges converted and written, in order: [lblk, count]. */
  readonly ranges: (bs: number) => readonly (readonly [number, number])[];
  /** Size in blocks after the population. */
  readonly sizeBlocks: (bs: number) => number;
}

/** Many small fallocates: extents of 3 blocks every 4 blocks, filling the root and 4 leaves. */
const manyCount = (bs: number): number => 4 * leafSlots(bs);

const FILES: readonly FileSpec[] = [
  {
    name: "plain",
    make: () => "fallocate -l 256b plain",
    // middle, head, tail (5 extents: the root grows), fast path left, whole (merges; back to the root)
    ranges: () => [[100, 10], [0, 5], [250, 6], [5, 3], [110, 140]],
    sizeBlocks: () => 256,
  },
  {
    name: "keep",
    make: () => ": > keep && fallocate --keep-size -l 256b keep", // --keep-size does not create the file
    ranges: () => [[0, 16], [32, 8], [200, 1]],
    sizeBlocks: () => 0,
  },
  {
    name: "mixed",
    make: () => "fallocate -l 256b mixed",
    prewritten: [[0, 16], [240, 16]],
    // fast path into the written head, fast path into the written tail, a middle block
    ranges: () => [[16, 16], [224, 16], [100, 1]],
    sizeBlocks: () => 256,
  },
  {
    name: "holes",
    make: () => "fallocate -l 512b holes && fallocate -p -o 64b -l 16b holes && fallocate -p -o 256b -l 1b holes",
    // the tail before a hole, the head after a hole, a whole extent
    ranges: () => [[56, 8], [80, 8], [257, 255]],
    sizeBlocks: () => 512,
  },
  {
    name: "many",
    make: (bs) => `i=0; while [ $i -lt ${manyCount(bs)} ]; do fallocate -o $((i * 4))b -l 3b many || exit 1; i=$((i + 1)); done`,
    // A middle block under a full root over full leaves: the tree grows, then the leaf splits.
    // Then a middle in another full leaf, a head, a tail, a whole extent.
    ranges: (bs) => {
      const n = manyCount(bs);
      const ext = (i: number): number => 4 * i;
      return [[ext(Math.floor(n * 0.4)) + 1, 1], [ext(Math.floor(n * 0.1)) + 1, 1], [ext(Math.floor(n * 0.7)), 1], [ext(Math.floor(n * 0.55)) + 2, 1], [ext(n - 1), 3]];
    },
    sizeBlocks: (bs) => 4 * manyCount(bs) - 1,
  },
];

/** `fallocate -o/-l` take sizes with a "b" suffix here: blocks of the image, turned into bytes. */
function shellFor(spec: FileSpec, bs: number): string {
  return spec.make(bs).replace(/\$\(\(i \* 4\)\)b/g, `$((i * ${4 * bs}))`).replace(/(\d+)b\b/g, (_m, n: string) => String(Number(n) * bs));
}

/** The kernel population: every file of FILES, then the pre-written blocks (pwrite + fsync). */
async function populate(dir: string, bs: number): Promise<void> {
  for (const spec of FILES) await runAsync(tool("sh"), ["-c", shellFor(spec, bs)], { cwd: dir });
  for (const spec of FILES) {
    for (const [lblk, count] of spec.prewritten ?? []) pwrite(path.join(dir, spec.name), lblk * bs, blockData(spec.name, lblk, count, bs));
  }
}

function pwrite(file: string, pos: number, data: Uint8Array): void {
  const fd = openSync(file, "r+");
  try {
    writeSync(fd, data, 0, data.length, pos);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Expected contents of each file after the ranges are written. */
function expectedContents(spec: FileSpec, bs: number): Uint8Array {
  let size = spec.sizeBlocks(bs) * bs;
  const writes: (readonly [number, number])[] = [...(spec.prewritten ?? []), ...spec.ranges(bs)];
  for (const [lblk, count] of writes) size = Math.max(size, (lblk + count) * bs);
  const out = new Uint8Array(size);
  for (const [lblk, count] of writes) out.set(blockData(spec.name, lblk, count, bs), lblk * bs);
  return out;
}

// ---------------------------------------------------------------------------------------------
// debugfs extent listings

interface ExLine {
  readonly level: number;
  readonly maxLevel: number;
  readonly entry: number;
  readonly entries: number;
  readonly from: number;
  readonly to: number;
  /** Leaf lines: first physical block; index lines: undefined (where the kernel put a tree block may differ). */
  readonly pblk: number | undefined;
  readonly len: number;
  readonly uninit: boolean;
}

/** `debugfs -R "ex FILE"`, parsed. */
function extentListing(img: string, file: string): ExLine[] {
  const out = run(tool("debugfs"), ["-R", `ex ${file}`, img], { env: DEBUGFS_ENV }).stdout;
  const lines: ExLine[] = [];
  const re = /^\s*(\d+)\/\s*(\d+)\s+(\d+)\/\s*(\d+)\s+(\d+)\s+-\s+(\d+)\s+(\d+)(?:\s+-\s+(\d+))?\s+(\d+)\s*(Uninit)?\s*$/;
  for (const l of out.split("\n")) {
    const m = re.exec(l);
    if (m === null) continue;
    const level = Number(m[1]);
    const maxLevel = Number(m[2]);
    const leaf = level === maxLevel;
    lines.push({ level, maxLevel, entry: Number(m[3]), entries: Number(m[4]), from: Number(m[5]), to: Number(m[6]), pblk: leaf ? Number(m[7]) : undefined, len: Number(m[9]), uninit: m[10] !== undefined });
  }
  return lines;
}

/** Leaf extents of a listing as "lblk+len@pblk" with u (unwritten) or w. */
const leafRuns = (ls: readonly ExLine[]): string[] => ls.filter((l) => l.level === l.maxLevel).map((l) => `${l.from}+${l.len}@${l.pblk}${l.uninit ? "u" : "w"}`);

/** Entries of each leaf node, in order. */
function leafSizes(ls: readonly ExLine[]): number[] {
  return ls.filter((l) => l.level === l.maxLevel && l.entry === 1).map((l) => l.entries);
}

// ---------------------------------------------------------------------------------------------

function e2fsck(img: string): { status: number; out: string } {
  const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
  return { status: r.status, out: r.stdout + r.stderr };
}

/** The loop device under a mount point, from /proc/self/mounts. */
function mountSource(dir: string): string {
  for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
    const [source, target] = line.split(" ");
    if (target === dir && source !== undefined) return source;
  }
  throw new Error(`${dir} is not mounted`);
}

/** ext4ts on copy A: convert and write every range of every file, as the write path will. */
async function convertWithEngine(img: string, bs: number): Promise<void> {
  const fs = await Ext4Fs.mount(await FileDevice.open(img), { readOnly: false });
  const { alloc } = engineDeps(fs, () => FIXED);
  for (const spec of FILES) {
    const ino = (await resolvePath(fs, `/${spec.name}`, { followLast: true })).ino;
    for (const [lblk, count] of spec.ranges(bs)) {
      await withHandle(fs, async (h) => {
        const inode = await igetWritable(fs, ino);
        const run = await extMapBlocks(fs, inode, lblk, count);
        expect(run, `${spec.name} ${lblk}+${count} must be unwritten`).toMatchObject({ lblk, unwritten: true });
        expect(run.len).toBe(count);
        const parent = allocRequest({ dquots: null, ino, purpose: "data", goal: run.pblk, len: count, funding: { kind: "chargeNow", quota: "enforce" } });
        await extConvertUnwritten(h, alloc, inode, lblk, count, parent);
        await fs.cache.writeUncached(run.pblk, blockData(spec.name, lblk, count, bs));
        if ((lblk + count) * bs > getSize(fs, inode)) setSize(inode, (lblk + count) * bs);
        await markInodeDirty(h, inode);
      });
    }
    const inode = await igetWritable(fs, ino);
    const report = await walkExtentTree(fs, inode);
    expect(report.problems, spec.name).toEqual([]);
  }
  await fs.unmount();
}

/** The kernel on copy B: the same bytes at the same offsets, one pwrite + fsync per range. */
async function writeWithKernel(img: string, bs: number): Promise<void> {
  await withLoopMount(img, { readOnly: false, options: "dioread_lock" }, (mnt) => {
    const dev = path.basename(mountSource(mnt));
    writeFileSync(`/sys/fs/ext4/${dev}/extent_max_zeroout_kb`, "0");
    expect(readFileSync(`/sys/fs/ext4/${dev}/extent_max_zeroout_kb`, "utf8").trim()).toBe("0");
    for (const spec of FILES) {
      for (const [lblk, count] of spec.ranges(bs)) pwrite(path.join(mnt, spec.name), lblk * bs, blockData(spec.name, lblk, count, bs));
    }
    return Promise.resolve();
  });
}

describe("converting unwritten extents: ext4ts against the kernel", () => {
  oracleGate(oracle, "e2fsprogs, fallocate and loop mounts are available for the unwritten-extent oracle");
  afterAll(() => {
    if (process.env.EXT4TS_ORACLE_KEEP !== "1") cleanupImages(); // keep the images to inspect them
  });

  for (const bs of [4096, 1024] as const) {
    it.skipIf(!oracle.ok)(`on ${bs / 1024} KiB blocks: e2fsck is clean, the kernel reads the expected bytes, and the extent trees match the kernel's`, async () => {
      const src = await kernelImage(`k-unwritten-${bs}`, {
        mkfsArgs: ["-t", "ext4", "-b", String(bs)],
        sizeMiB: 64,
        populate: (dir) => populate(dir, bs),
        mountOptions: "dioread_lock",
      });
      // The population is what the test expects: check the starting shapes.
      const slots = leafSlots(bs);
      const start = (f: string): string[] => leafRuns(extentListing(src, f)).map((r) => r.replace(/@\d+/, ""));
      expect(start("plain")).toEqual(["0+256u"]);
      expect(start("keep")).toEqual(["0+256u"]);
      expect(start("mixed")).toEqual(["0+16w", "16+224u", "240+16w"]);
      expect(start("holes")).toEqual(["0+64u", "80+176u", "257+255u"]);
      const many = extentListing(src, "many");
      expect(many[0]).toMatchObject({ level: 0, maxLevel: 1, entries: 4 });
      expect(leafSizes(many)).toEqual([slots, slots, slots, slots]);
      expect(statSync(src).size).toBe(64 << 20);

      const dir = mkdtempSync(path.join(runDir(), `unwritten-${bs}-`));
      const ours = path.join(dir, "ours.img");
      const theirs = path.join(dir, "kernel.img");
      copyFileSync(src, ours);
      copyFileSync(src, theirs);
      await convertWithEngine(ours, bs);
      await writeWithKernel(theirs, bs);

      const fsck = e2fsck(ours);
      expect(fsck.status, fsck.out).toBe(0);
      expect(fsck.out).not.toMatch(/Fix\?|Clear\?|Salvage\?|Relocate\?/);
      const fsckKernel = e2fsck(theirs);
      expect(fsckKernel.status, fsckKernel.out).toBe(0);

      // What the kernel reads from our image, and from its own, is what we meant.
      for (const img of [ours, theirs]) {
        await withLoopMount(img, { readOnly: true }, (mnt) => {
          for (const spec of FILES) {
            const want = expectedContents(spec, bs);
            const got = readFileSync(path.join(mnt, spec.name));
            expect(got.length, `${img} ${spec.name} size`).toBe(want.length);
            const firstDiff = got.findIndex((b, i) => b !== want[i]);
            expect(firstDiff, `${img} ${spec.name}: first differing byte`).toBe(-1);
          }
          return Promise.resolve();
        });
      }

      // The same splits and merges as the kernel.
      for (const spec of FILES) {
        const a = extentListing(ours, spec.name);
        const b = extentListing(theirs, spec.name);
        expect(leafRuns(a), spec.name).toEqual(leafRuns(b));
        expect(a.map((l) => ({ ...l, pblk: undefined })), spec.name).toEqual(b.map((l) => ({ ...l, pblk: undefined })));
      }
      // Spot checks of the shapes the ranges were chosen for.
      expect(leafRuns(extentListing(ours, "plain")).map((r) => r.replace(/@\d+/, ""))).toEqual(["0+8w", "8+92u", "100+156w"]);
      expect(extentListing(ours, "plain")[0]).toMatchObject({ maxLevel: 0 });
      expect(leafRuns(extentListing(ours, "mixed")).map((r) => r.replace(/@\d+/, ""))).toEqual(["0+32w", "32+68u", "100+1w", "101+123u", "224+32w"]);
      const manyAfter = extentListing(ours, "many");
      expect(manyAfter[0]).toMatchObject({ level: 0, maxLevel: 2, entries: 1 });
      expect(leafSizes(manyAfter).length).toBeGreaterThan(4);
    }, 600_000);
  }
});

describe("writing into fallocated space through the Volume API", () => {
  oracleGate(oracle);

  it.skipIf(!oracle.ok)("unaligned writes into unwritten extents read back with zeros around them, as the kernel's writes do", async () => {
    const { Volume } = await import("../../src/api/promises.js");
    const dir = mkdtempSync(path.join(runDir(), "unwritten-api-"));
    const base = path.join(dir, "base.img");
    run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-b", "1024", base, "32M"]);
    await withLoopMount(base, { readOnly: false }, (m) => {
      run("sh", ["-c", "fallocate -l 307200 a && touch b && fallocate -l 204800 --keep-size b && head -c 5000 /dev/urandom > c && fallocate -o 5000 -l 102400 c"], { cwd: m });
      return Promise.resolve();
    });
    const ours = path.join(dir, "ours.img");
    const theirs = path.join(dir, "theirs.img");
    copyFileSync(base, ours);
    copyFileSync(base, theirs);
    // offset, length per file: inside one block, across blocks, at an extent's start and end, past EOF (keep-size).
    const writes: readonly (readonly [string, number, number])[] = [
      ["a", 10, 20], ["a", 4000, 10_000], ["a", 0, 1], ["a", 300 * 1024 - 7, 7], ["a", 150_000, 3],
      ["b", 100, 50], ["b", 190 * 1024, 12_000],
      ["c", 5000, 100], ["c", 70_000, 2],
    ];
    const payload = (i: number, n: number): Uint8Array => Uint8Array.from({ length: n }, (_, k) => (i * 31 + k * 7 + 1) & 0xff);
    const vol = await Volume.mount(await FileDevice.open(ours), { readOnly: false });
    for (const [i, [f, pos, n]] of writes.entries()) {
      const fh = await vol.open(`/${f}`, "r+");
      await fh.write(payload(i, n), 0, n, pos);
      await fh.close();
    }
    await vol.unmount();
    await withLoopMount(theirs, { readOnly: false }, (m) => {
      for (const [i, [f, pos, n]] of writes.entries()) {
        const fd = openSync(path.join(m, f), "r+");
        writeSync(fd, payload(i, n), 0, n, pos);
        closeSync(fd);
      }
      return Promise.resolve();
    });
    for (const img of [ours, theirs]) {
      const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
      expect(r.status, r.stdout).toBe(0);
    }
    const contents = (img: string): Promise<Record<string, string>> =>
      withLoopMount(img, { readOnly: true }, (m) => {
        const out: Record<string, string> = {};
        for (const f of ["a", "b", "c"]) out[f] = `${statSync(path.join(m, f)).size}:${readFileSync(path.join(m, f)).toString("base64")}`;
        return Promise.resolve(out);
      });
    const got = await contents(ours);
    expect(got).toEqual(await contents(theirs));
    // Not trivially equal: the writes are there and the rest of the fallocated space reads as zeros.
    const a = Buffer.from(got.a!.split(":")[1]!, "base64");
    expect(a.length).toBe(300 * 1024);
    expect([...a.subarray(10, 30)]).toEqual([...payload(0, 20)]);
    expect(a.subarray(30, 4000).every((b) => b === 0)).toBe(true);
  }, 120_000);
});
