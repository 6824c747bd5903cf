/**
 * Writes to block-mapped (ext2/ext3-style, non-extent) files against the real oracles:
 * operations through the Volume API on images made by `mke2fs -t ext2` / `-t ext3`, then
 * `e2fsck -fn` must be clean and a kernel mount must see exactly what we meant (manifest
 * of the kernel mount == our manifest == the script's expectations), with the contents
 * read back through the kernel.
 *
 * Covered: files of sizes around every map boundary (direct / indirect / double / triple
 * indirect), sparse writes deep in the double- and triple-indirect ranges (100 MiB and
 * 10 GiB offsets), overwrite, append, truncate down in steps (each step must give back
 * exactly the data and pointer blocks a dense file of that size no longer needs) and up,
 * unlink of big files (every block back), a directory grown to thousands of entries,
 * slow and fast symlinks, rename and rmdir; ENOSPC part-way through a large write on a
 * small volume; EFBIG at the block-map limit, checked against the kernel's own limit.
 */

import { createHash } from "node:crypto";
import { closeSync, lstatSync, openSync, readFileSync, readSync, truncateSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Rng } from "./trees.js";
import { FileDevice } from "../../src/device/file.js";
import { Volume } from "../../src/api/promises.js";
import { runCli } from "../cli.js";
import { cleanupImages, kernelManifestOfImage, scratchImage, withLoopMount } from "./images.js";
import { oracleAvailability, oracleGate, runUnchecked, tool } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck"], { loop: true, root: true });

const FIXED = { sec: 1_700_000_000, nsec: 123_456_789 };
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

function fresh(name: string, mkfsArgs: string[], sizeMiB: number): string {
  return scratchImage(`wb-${name}`, mkfsArgs, `${sizeMiB}M`);
}

async function writable(img: string): Promise<Volume> {
  return Volume.mount(await FileDevice.open(img), { readOnly: false, now: () => FIXED });
}

function e2fsck(img: string): { status: number; out: string } {
  const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
  return { status: r.status, out: r.stdout + r.stderr };
}

function expectClean(img: string, when: string): void {
  const fsck = e2fsck(img);
  expect(fsck.out, when).not.toMatch(/Fix\?|Clear\?|Salvage\?|Relocate\?/);
  expect(fsck.status, `${when}:\n${fsck.out}`).toBe(0);
}

/** Deterministic test bytes. */
const bytes = (n: number, seed: number): Uint8Array => new Rng(seed).bytes(n);

const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** Blocks a dense block-mapped file of `n` data blocks holds: data plus pointer blocks. */
function denseBlocks(n: number, apb: number): number {
  let ptr = 0;
  let left = n - 12;
  if (left > 0) {
    ptr += 1; // IND
    left -= apb;
  }
  if (left > 0) {
    const inds = Math.ceil(Math.min(left, apb * apb) / apb);
    ptr += 1 + inds; // DIND + its INDs
    left -= apb * apb;
  }
  if (left > 0) ptr += 1 + Math.ceil(left / (apb * apb)) + Math.ceil(left / apb); // TIND + DINDs + INDs
  return n + ptr;
}

/** Read `len` bytes at `pos` of a file through the kernel (pread). */
function kernelPread(file: string, pos: number, len: number): Uint8Array {
  const fd = openSync(file, "r");
  try {
    const buf = new Uint8Array(len);
    const n = readSync(fd, buf, 0, len, pos);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

interface Config {
  readonly name: string;
  readonly mkfs: string[];
  readonly sizeMiB: number;
  readonly bs: number;
}

const CONFIGS: Config[] = [
  { name: "ext2-1k", mkfs: ["-t", "ext2", "-b", "1024"], sizeMiB: 256, bs: 1024 },
  { name: "ext2-4k", mkfs: ["-t", "ext2", "-b", "4096"], sizeMiB: 256, bs: 4096 },
  // mke2fs.conf defaults for ext3 at this size: 4 KiB blocks, a journal, no extents.
  { name: "ext3", mkfs: ["-t", "ext3"], sizeMiB: 600, bs: 4096 },
];

/** Entries of 48 bytes filling 16 directory blocks: past the 12 direct pointers. */
const tmpdirEntries = (bs: number): number => Math.ceil((16 * bs) / 48);

/** Phase one: everything that grows. Returns path -> sha256 of what must be there. */
async function growScript(vol: Volume, c: Config): Promise<Map<string, string>> {
  const want = new Map<string, string>();
  const bs = c.bs;
  const apb = bs / 4;
  const put = async (p: string, data: Uint8Array): Promise<void> => {
    await vol.writeFile(p, data);
    want.set(p, sha(data));
  };
  // Sizes around every boundary of the map.
  await vol.mkdir("/sizes");
  const edges = [12 * bs, (12 + apb) * bs];
  const sizes = [0, 1, 100, bs - 1, bs, bs + 1, 3 * bs + 7, ...edges.flatMap((e) => [e - 1, e, e + 1]), (12 + apb + 3 * apb) * bs + 5];
  for (const [i, n] of sizes.entries()) await put(`/sizes/f-${n}`, bytes(n, 100 + i));
  // A dense file reaching the triple-indirect range on 1 KiB blocks (the double on 4 KiB),
  // written in unaligned chunks through one handle (appends).
  const denseLen = bs === 1024 ? 70 * MiB + 333 : 24 * MiB + 333;
  const dense = bytes(denseLen, 7);
  const fh = await vol.open("/dense", "w");
  for (let at = 0; at < denseLen; at += 777 * KiB + 1) {
    const n = Math.min(777 * KiB + 1, denseLen - at);
    await fh.write(dense, at, n);
  }
  await fh.close();
  // Overwrite across block boundaries, in the indirect and double-indirect ranges.
  const patch = bytes(3 * bs + 123, 8);
  for (const at of [5 * bs + 17, (12 + apb) * bs - 50, (12 + apb + 2 * apb) * bs + 1]) {
    const h = await vol.open("/dense", "r+");
    await h.write(patch, 0, patch.length, at);
    await h.close();
    dense.set(patch, at);
  }
  want.set("/dense", sha(dense));
  // Append ("a") past the end of a mid-size file.
  const mid = bytes(40 * bs + 11, 9);
  await put("/mid", mid);
  const tail = bytes(5 * bs, 10);
  const ah = await vol.open("/mid", "a");
  await ah.write(tail);
  await ah.close();
  const midAll = new Uint8Array(mid.length + tail.length);
  midAll.set(mid);
  midAll.set(tail, mid.length);
  want.set("/mid", sha(midAll));
  // Sparse: bytes at 0, at 100 MiB (double indirect on 4 KiB, triple on 1 KiB), at 10 GiB (triple).
  const sp = await vol.open("/sparse", "w");
  await sp.write(bytes(5, 11), 0, 5, 0);
  await sp.write(bytes(3 * KiB, 12), 0, 3 * KiB, 100 * MiB + 100);
  await sp.write(bytes(3 * KiB, 13), 0, 3 * KiB, 10 * GiB + 5);
  await sp.close();
  // A big file to unlink later, with a sparse far part.
  const big2 = await vol.open("/big2", "w");
  await big2.write(bytes(5 * MiB, 14), 0, 5 * MiB, 0);
  await big2.write(bytes(10 * KiB, 15), 0, 10 * KiB, GiB + 3);
  await big2.close();
  // A directory of thousands of entries (an htree with dir_index), its blocks past the direct pointers.
  await vol.mkdir("/many");
  for (let i = 0; i < 3000; i++) await vol.writeFile(`/many/entry-with-a-fairly-long-name-${i}`, i % 10 === 0 ? bytes(i % 3000, i) : new Uint8Array(0));
  for (let i = 0; i < 3000; i++) if (i % 10 === 0) want.set(`/many/entry-with-a-fairly-long-name-${i}`, sha(bytes(i % 3000, i)));
  else want.set(`/many/entry-with-a-fairly-long-name-${i}`, sha(new Uint8Array(0)));
  // Another one grown past 12 blocks, to be emptied and removed.
  await vol.mkdir("/tmpdir");
  for (let i = 0; i < tmpdirEntries(bs); i++) await vol.writeFile(`/tmpdir/some-rather-long-file-name-number-${i}`, "");
  // Symlinks: fast (< 60 bytes) and slow, up to a block's worth.
  for (const n of [1, 59, 60, 100, 500, bs - 1]) await vol.symlink("t".repeat(n), `/link-${n}`);
  return want;
}

describe("block-mapped writes through the API leave images e2fsck and the kernel agree with", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });

  for (const c of CONFIGS) {
    it.skipIf(!oracle.ok)(`on ${c.name}`, async () => {
      const img = fresh(c.name, c.mkfs, c.sizeMiB);
      const bs = c.bs;
      const apb = bs / 4;
      let vol = await writable(img);
      expect(vol.fs.features.extents).toBe(false);
      expect(vol.fs.blockSize).toBe(bs);
      const want = await growScript(vol, c);
      const ours = new Map<string, number>();
      for (const p of ["/dense", "/mid", "/sparse", "/big2", "/many", "/link-100", `/sizes/f-${(12 + apb) * bs + 1}`]) ours.set(p, (await vol.lstat(p)).blocks);
      // Nothing else is mapped than what the dense file needs: data plus pointer blocks.
      expect(ours.get("/dense")).toBe(denseBlocks(Math.ceil((await vol.stat("/dense")).size / bs), apb) * (bs / 512));
      await vol.unmount();
      expectClean(img, "after the writes");

      // The kernel sees the same sizes, block counts and bytes (the 10 GiB file read where it has data).
      await withLoopMount(img, { readOnly: true }, (mnt) => {
        for (const [p, blocks] of ours) expect(lstatSync(path.join(mnt, p)).blocks, `st_blocks of ${p}`).toBe(blocks);
        const s = path.join(mnt, "sparse");
        expect(lstatSync(s).size).toBe(10 * GiB + 5 + 3 * KiB);
        expect(kernelPread(s, 0, 10)).toEqual(Uint8Array.from([...bytes(5, 11), 0, 0, 0, 0, 0]));
        expect(kernelPread(s, 100 * MiB, 100 + 3 * KiB + 10)).toEqual(Uint8Array.from([...new Uint8Array(100), ...bytes(3 * KiB, 12), ...new Uint8Array(10)]));
        expect(kernelPread(s, 10 * GiB, 5 + 3 * KiB)).toEqual(Uint8Array.from([...new Uint8Array(5), ...bytes(3 * KiB, 13)]));
        expect(sha(readFileSync(path.join(mnt, "dense")))).toBe(want.get("/dense"));
        return Promise.resolve();
      });

      // Phase two: shrink. Each truncation of the dense file gives back exactly what a dense
      // file of the new size no longer needs, pointer blocks included.
      vol = await writable(img);
      let dense = new Uint8Array(await vol.readFile("/dense"));
      expect(sha(dense)).toBe(want.get("/dense"));
      const steps =
        bs === 1024
          ? [66 * MiB + 5, 64 * MiB, 300 * KiB, 200 * KiB + 1, 13 * KiB + 5, 10 * KiB]
          : [10 * MiB + 5, 4 * MiB + 200 * KiB, 4 * MiB, 100 * KiB + 1, 40 * KiB];
      for (const size of steps) {
        const before = (await vol.statfs()).bfree;
        const oldBlocks = Math.ceil((await vol.stat("/dense")).size / bs);
        await vol.truncate("/dense", size);
        const freed = (await vol.statfs()).bfree - before;
        expect(freed, `truncate to ${size}`).toBe(denseBlocks(oldBlocks, apb) - denseBlocks(Math.ceil(size / bs), apb));
        expect((await vol.stat("/dense")).blocks).toBe(denseBlocks(Math.ceil(size / bs), apb) * (bs / 512));
        dense = dense.subarray(0, size);
        await vol.unmount();
        expectClean(img, `after truncating /dense to ${size}`);
        vol = await writable(img);
      }
      // Grow again: a hole, the old tail reads as zeros.
      await vol.truncate("/dense", 50 * KiB + 3);
      const grown = new Uint8Array(50 * KiB + 3);
      grown.set(dense);
      want.set("/dense", sha(grown));
      expect(sha(await vol.readFile("/dense"))).toBe(sha(grown));
      // Shrink the 10 GiB sparse file in steps back to its 100 MiB part, then a little more.
      await vol.truncate("/sparse", 5 * GiB);
      await vol.truncate("/sparse", 100 * MiB + 100 + 3 * KiB);
      const spWant = new Uint8Array(100 * MiB + 100 + 3 * KiB);
      spWant.set(bytes(5, 11));
      spWant.set(bytes(3 * KiB, 12), 100 * MiB + 100);
      want.set("/sparse", sha(spWant));
      // Left: block 0; the 100 MiB bytes (4 blocks under TIND/DIND/IND on 1 KiB, 1 block under DIND/IND on 4 KiB).
      expect((await vol.stat("/sparse")).blocks).toBe((bs === 1024 ? 1 + 4 + 3 : 1 + 1 + 2) * (bs / 512));
      // Unlink big files: every block back.
      const beforeUnlink = (await vol.statfs()).bfree;
      const big2Blocks = (await vol.stat("/big2")).blocks / (bs / 512);
      await vol.unlink("/big2");
      expect((await vol.statfs()).bfree - beforeUnlink).toBe(big2Blocks);
      // Empty a directory grown past the direct pointers and remove it; rename around.
      for (let i = 0; i < tmpdirEntries(bs); i++) await vol.unlink(`/tmpdir/some-rather-long-file-name-number-${i}`);
      const dirBlocks = (await vol.stat("/tmpdir")).blocks / (bs / 512);
      expect(dirBlocks).toBeGreaterThan(12);
      const beforeRmdir = (await vol.statfs()).bfree;
      await vol.rmdir("/tmpdir");
      expect((await vol.statfs()).bfree - beforeRmdir).toBe(dirBlocks);
      for (let i = 0; i < 3000; i += 3) {
        await vol.unlink(`/many/entry-with-a-fairly-long-name-${i}`);
        want.delete(`/many/entry-with-a-fairly-long-name-${i}`);
      }
      await vol.mkdir("/sub");
      await vol.rename("/mid", "/sub/mid-renamed");
      want.set("/sub/mid-renamed", want.get("/mid")!);
      want.delete("/mid");
      await vol.rename("/sizes", "/sub/sizes");
      for (const [p, h] of [...want]) {
        if (p.startsWith("/sizes/")) {
          want.delete(p);
          want.set(`/sub${p}`, h);
        }
      }
      await vol.rename("/link-500", "/sub/link-500");
      await vol.rename(`/sub/sizes/f-${bs}`, `/sub/sizes/f-1`); // replaces a file
      want.set("/sub/sizes/f-1", want.get(`/sub/sizes/f-${bs}`)!);
      want.delete(`/sub/sizes/f-${bs}`);
      await vol.unmount();

      expectClean(img, "at the end");
      const kernel = await kernelManifestOfImage(img);
      const cli = await runCli(["manifest", img]);
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.stdout).toBe(kernel);
      const lines = new Map(
        kernel
          .trim()
          .split("\n")
          .map((l) => {
            const o = JSON.parse(l) as { path: string; sha256?: string; type: string; target?: string; size: number };
            return [o.path, o];
          }),
      );
      for (const [p, h] of want) expect(lines.get(p)?.sha256, p).toBe(h);
      for (const n of [1, 59, 60, 100, bs - 1]) expect(lines.get(`/link-${n}`)).toMatchObject({ type: "symlink", target: "t".repeat(n) });
      expect(lines.get("/sub/link-500")).toMatchObject({ type: "symlink", target: "t".repeat(500) });
      expect(lines.has("/tmpdir")).toBe(false);
      expect(lines.has("/big2")).toBe(false);
      expect([...lines.keys()].filter((p) => p.startsWith("/many/"))).toHaveLength(2000);

      // Round trip: the kernel changes what we wrote; e2fsck stays clean; we read its changes.
      await withLoopMount(img, { readOnly: false }, (mnt) => {
        writeFileSync(path.join(mnt, "sub", "from-kernel"), bytes(20 * KiB, 99));
        truncateSync(path.join(mnt, "dense"), 13 * KiB);
        return Promise.resolve();
      });
      expectClean(img, "after the kernel's changes");
      const again = await Volume.mount(await FileDevice.open(img, { readOnly: true }));
      expect(sha(await again.readFile("/sub/from-kernel"))).toBe(sha(bytes(20 * KiB, 99)));
      expect(sha(await again.readFile("/dense"))).toBe(sha(grown.subarray(0, 13 * KiB)));
      await again.unmount();
      // Unlinking files the kernel wrote or changed gives back every block they held.
      vol = await writable(img);
      for (const p of ["/dense", "/sparse", "/sub/from-kernel"]) {
        const before = (await vol.statfs()).bfree;
        const held = (await vol.stat(p)).blocks / (bs / 512);
        await vol.unlink(p);
        expect((await vol.statfs()).bfree - before, p).toBe(held);
      }
      await vol.unmount();
      expectClean(img, "after the final unlinks");
    }, 600_000);
  }
});

describe("block-mapped writes at the limits", () => {
  it.skipIf(!oracle.ok)("ENOSPC part-way through a large write keeps what fit, leaks nothing, and leaves e2fsck clean", async () => {
    const img = fresh("bm-enospc", ["-t", "ext2", "-b", "1024", "-m", "0"], 8);
    let vol = await writable(img);
    const free0 = (await vol.statfs()).bfree;
    const data = bytes(16 * MiB, 21);
    const err = await vol.writeFile("/big", data).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ENOSPC" });
    const st = await vol.stat("/big");
    expect(st.size).toBeGreaterThan(4 * MiB);
    expect(st.size).toBeLessThan(8 * MiB);
    // What fit is there, in full blocks, with the pointer blocks it needs.
    expect(st.blocks / 2).toBe(denseBlocks(Math.ceil(st.size / 1024), 256));
    expect(free0 - (await vol.statfs()).bfree).toBe(st.blocks / 2);
    await vol.unmount();
    expectClean(img, "after ENOSPC");
    vol = await writable(img);
    expect(sha(await vol.readFile("/big"))).toBe(sha(data.subarray(0, st.size)));
    // A sparse write needing three new pointer blocks cannot fit in two free blocks: nothing leaks.
    await vol.truncate("/big", st.size - 2 * 1024 - (st.size % 1024 === 0 ? 0 : st.size % 1024));
    const free1 = (await vol.statfs()).bfree;
    expect(free1).toBeGreaterThanOrEqual(2);
    expect(free1).toBeLessThan(4);
    const far = await vol.open("/far", "w");
    await expect(far.write(bytes(10, 22), 0, 10, 100 * MiB)).rejects.toMatchObject({ code: "ENOSPC" });
    await far.close();
    expect((await vol.statfs()).bfree).toBe(free1);
    expect((await vol.stat("/far")).blocks).toBe(0);
    await vol.unlink("/far");
    await vol.unlink("/big");
    expect((await vol.statfs()).bfree).toBe(free0);
    await vol.unmount();
    expectClean(img, "after unlinking");
  }, 120_000);

  it.skipIf(!oracle.ok)("EFBIG past the block-map limit, the same limit the kernel enforces (ext2 1 KiB and 4 KiB)", async () => {
    for (const [bs, limit] of [[1024, 16843020 * 1024], [4096, 536346110 * 4096]] as const) {
      const img = fresh(`bm-efbig-${bs}`, ["-t", "ext2", "-b", String(bs)], 32);
      // The kernel's limit on this very image: truncate to it works, one byte more is EFBIG.
      await withLoopMount(img, { readOnly: false }, (mnt) => {
        const f = path.join(mnt, "k");
        writeFileSync(f, "");
        truncateSync(f, limit);
        let code: string | undefined;
        try {
          truncateSync(f, limit + 1);
        } catch (e) {
          code = (e as NodeJS.ErrnoException).code;
        }
        expect(code).toBe("EFBIG");
        truncateSync(f, 0);
        return Promise.resolve();
      });
      const vol = await writable(img);
      await vol.writeFile("/f", "");
      const fh = await vol.open("/f", "r+");
      await expect(fh.write(bytes(10, 1), 0, 10, limit)).rejects.toMatchObject({ code: "EFBIG" });
      // Crossing the limit: a short write of what fits, as Linux returns.
      expect((await fh.write(bytes(300, 2), 0, 300, limit - 100)).bytesWritten).toBe(100);
      await fh.close();
      expect((await vol.stat("/f")).size).toBe(limit);
      await expect(vol.truncate("/f", limit + 1)).rejects.toMatchObject({ code: "EFBIG" });
      await vol.truncate("/f", limit);
      await vol.unmount();
      expectClean(img, `EFBIG on ${bs}`);
      await withLoopMount(img, { readOnly: true }, (mnt) => {
        const f = path.join(mnt, "f");
        expect(lstatSync(f).size).toBe(limit);
        expect(kernelPread(f, limit - 100, 200)).toEqual(bytes(300, 2).subarray(0, 100));
        return Promise.resolve();
      });
    }
  }, 120_000);
});
