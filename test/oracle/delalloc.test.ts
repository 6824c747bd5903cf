/**
 * Delayed allocation through the public API: write() reserves instead of allocating,
 * writeback turns reservations into blocks exactly once, truncate and unlink release what
 * was never written, the page cache stays within its limit, and concurrent writers that
 * fill the volume see ENOSPC without losing accepted data. Oracles: e2fsck -fn on every
 * image, and the kernel reading back what was written.
 */

import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import { FileDevice } from "../../src/device/file.js";
import { isFsError } from "../../src/errors.js";
import { freeBlocksCount } from "../../src/format/superblock.js";
import { iget } from "../../src/fs/inode.js";
import { inodeCore, inodeTable } from "../../src/fs/inode_core.js";
import { cleanupImages, scratchImage, withLoopMount } from "./images.js";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck", "fallocate", "stat"], { loop: true, root: true });

function expectClean(img: string): void {
  const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
  expect(r.status, r.stdout + r.stderr).toBe(0);
}

async function writable(img: string, opts: { dirtyLimitBytes?: number } = {}): Promise<Volume> {
  return Volume.mount(await FileDevice.open(img), { readOnly: false, writebackIntervalMs: 0, ...opts });
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe("delayed allocation, writeback and reservations", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });

  it.skipIf(!oracle.ok)("write() reserves, sync allocates exactly the reserved blocks once, truncate and unlink release never-written ones", async () => {
    const img = scratchImage("da-basic", ["-t", "ext4", "-b", "1024"], "32M");
    const vol = await writable(img);
    const fs = vol.fs;
    const free0 = freeBlocksCount(fs.sb);
    const fh = await vol.open("/a", "w");
    await fh.write(pattern(10 * 1024, 1), 0, 10 * 1024, 0); // 10 blocks
    await fh.write(pattern(100, 2), 0, 100, 50 * 1024 + 10); // a partial block far out: 1 more
    const ino = (await fh.stat()).ino;
    expect(inodeCore(fs, ino)?.reservedDataBlocks).toBe(11);
    expect(fs.dirtyClusters).toBe(11);
    expect(freeBlocksCount(fs.sb)).toBe(free0); // nothing allocated yet
    expect((await iget(fs, ino)).blocks).toBe(0);
    expect((await fh.stat()).blocks).toBe(11 * 2); // st_blocks counts the reservation, as ext4_getattr
    expect((await vol.statfs()).bfree).toBe(free0 - 11);
    // Rewriting a delayed page reserves nothing more.
    await fh.write(pattern(1024, 3), 0, 1024, 2048);
    expect(inodeCore(fs, ino)?.reservedDataBlocks).toBe(11);
    // Reads see the dirty pages.
    const back = new Uint8Array(3 * 1024);
    await fh.read(back, 0, back.length, 1024);
    expect(back.subarray(1024, 2048)).toEqual(pattern(1024, 3));
    expect(back.subarray(0, 1024)).toEqual(pattern(10 * 1024, 1).subarray(1024, 2048));
    // Truncate releases the delayed block past the new end.
    await fh.truncate(20 * 1024);
    expect(inodeCore(fs, ino)?.reservedDataBlocks).toBe(10);
    expect(fs.dirtyClusters).toBe(10);
    await fh.sync();
    expect(inodeCore(fs, ino)?.reservedDataBlocks).toBe(0);
    expect(fs.dirtyClusters).toBe(0);
    expect(free0 - freeBlocksCount(fs.sb)).toBe(10); // one extent in the inode: no tree block
    expect((await iget(fs, ino)).blocks).toBe(20);
    // A file written and unlinked before any writeback gives everything back.
    await vol.writeFile("/b", pattern(5000, 4));
    expect(fs.dirtyClusters).toBe(5);
    await vol.unlink("/b");
    expect(fs.dirtyClusters).toBe(0);
    expect(free0 - freeBlocksCount(fs.sb)).toBe(10);
    await fh.close();
    await vol.unmount();
    expectClean(img);
    await withLoopMount(img, { readOnly: true }, (dir) => {
      const got = readFileSync(path.join(dir, "a"));
      const want = new Uint8Array(20 * 1024);
      want.set(pattern(10 * 1024, 1));
      want.set(pattern(1024, 3), 2048);
      expect(new Uint8Array(got)).toEqual(want);
      return Promise.resolve();
    });
  });

  it.skipIf(!oracle.ok)("the page cache stays under its limit: writers trigger writeback (balance_dirty_pages)", async () => {
    const img = scratchImage("da-limit", ["-t", "ext4"], "128M");
    const limit = 1024 * 1024;
    const vol = await writable(img, { dirtyLimitBytes: limit });
    let peak = 0;
    const fh = await vol.open("/big", "w");
    const chunk = pattern(256 * 1024, 5);
    for (let i = 0; i < 64; i++) {
      await fh.write(chunk, 0, chunk.length, i * chunk.length);
      peak = Math.max(peak, inodeTable(vol.fs).dirtyPages * vol.fs.blockSize);
    }
    expect(peak).toBeLessThanOrEqual(limit + chunk.length);
    await fh.close();
    await vol.unmount();
    expectClean(img);
  });

  it.skipIf(!oracle.ok)("concurrent writers filling the volume: accepted bytes all reach disk, refused writes change nothing, image clean", async () => {
    const img = scratchImage("da-enospc", ["-t", "ext4", "-b", "1024", "-m", "0"], "16M");
    const vol = await writable(img);
    const names = ["w0", "w1", "w2", "w3"];
    const accepted = new Map<string, number>();
    const refusals: string[] = [];
    const chunk = 64 * 1024;
    await Promise.all(
      names.map(async (name, k) => {
        const fh = await vol.open(`/${name}`, "w");
        let at = 0;
        for (;;) {
          try {
            const { bytesWritten } = await fh.write(pattern(chunk, k + 10), 0, chunk, at);
            at += bytesWritten;
            if (bytesWritten < chunk) break; // short: the volume is full
          } catch (e) {
            if (!isFsError(e, "ENOSPC")) throw e;
            refusals.push(name);
            break;
          }
        }
        accepted.set(name, at);
        await fh.close();
      }),
    );
    // Every writer stopped because the space ran out (a short write or ENOSPC), and the volume is full to the pool.
    expect((await vol.statfs()).bavail).toBe(0);
    expect(refusals.length).toBeGreaterThan(0);
    const total = [...accepted.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(10 * 1024 * 1024);
    // A refused write changed nothing: the sizes are exactly what was accepted.
    for (const [name, n] of accepted) expect((await vol.stat(`/${name}`)).size).toBe(n);
    await vol.sync();
    expect(vol.fs.dirtyClusters).toBe(0);
    await vol.unmount();
    expectClean(img);
    await withLoopMount(img, { readOnly: true }, (dir) => {
      for (const [k, name] of names.entries()) {
        const got = new Uint8Array(readFileSync(path.join(dir, name)));
        const n = accepted.get(name)!;
        expect(got.length).toBe(n);
        const want = pattern(chunk, k + 10);
        for (let at = 0; at < n; at += chunk) {
          const part = got.subarray(at, Math.min(n, at + chunk));
          expect(Buffer.compare(part, want.subarray(0, part.length)), `${name} at ${at}`).toBe(0);
        }
      }
      return Promise.resolve();
    });
  });

  it.skipIf(!oracle.ok)("punching holes over written and delayed data frees and releases what the kernel frees (fallocate -p on a kernel mount)", async () => {
    const img = scratchImage("da-punch", ["-t", "ext4"], "32M");
    const forKernel = img.replace(/\.img$/, "-kernel.img");
    copyFileSync(img, forKernel);
    const a = pattern(64 * 1024, 11);
    const b = pattern(64 * 1024, 12);
    const punches: [number, number][] = [
      [10_000, 50_000], // across written blocks, partial at both ends
      [100_000, 20_000], // inside delayed pages
      [126_000, 100_000], // past the end: clipped to the size
      [5, 3], // inside one block
    ];
    const vol = await writable(img);
    const fh = await vol.open("/f", "w");
    await fh.write(a, 0, a.length, 0);
    await fh.sync(); // the first half written, the second half delayed
    await fh.write(b, 0, b.length, a.length);
    const ino = (await fh.stat()).ino;
    const reservedBefore = inodeCore(vol.fs, ino)?.reservedDataBlocks ?? 0;
    for (const [off, len] of punches) await fh.punchHole(off, len);
    expect(reservedBefore - (inodeCore(vol.fs, ino)?.reservedDataBlocks ?? 0)).toBeGreaterThan(0); // delayed pages released
    await fh.close();
    await vol.unmount();
    expectClean(img);
    let kernel: { data: Uint8Array; blocks: string } | null = null;
    await withLoopMount(forKernel, { readOnly: false }, (dir) => {
      const f = path.join(dir, "f");
      writeFileSync(f, Buffer.concat([a, b]));
      for (const [off, len] of punches) run("fallocate", ["-p", "-o", String(off), "-l", String(len), f]);
      kernel = { data: new Uint8Array(readFileSync(f)), blocks: run(tool("stat"), ["-c", "%b", f]).stdout.trim() };
      return Promise.resolve();
    });
    await withLoopMount(img, { readOnly: true }, (dir) => {
      const f = path.join(dir, "f");
      const ours = new Uint8Array(readFileSync(f));
      expect(Buffer.compare(ours, kernel!.data)).toBe(0);
      expect(run(tool("stat"), ["-c", "%b", f]).stdout.trim()).toBe(kernel!.blocks);
      return Promise.resolve();
    });
  });

  it.skipIf(!oracle.ok)("auto_da_alloc: close after truncate-to-zero and replace-by-rename write the new data back", async () => {
    const img = scratchImage("da-auto", ["-t", "ext4"], "32M");
    const vol = await writable(img);
    await vol.writeFile("/conf", pattern(9000, 6));
    await vol.sync();
    const fh = await vol.open("/conf", "w"); // O_TRUNC
    await fh.write(pattern(7000, 7));
    const ino = (await fh.stat()).ino;
    expect(inodeCore(vol.fs, ino)?.pages.size).toBeGreaterThan(0);
    await fh.close();
    expect(inodeCore(vol.fs, ino)?.pages.size ?? 0).toBe(0);
    await vol.writeFile("/conf.new", pattern(5000, 8));
    const newIno = (await vol.stat("/conf.new")).ino;
    await vol.rename("/conf.new", "/conf");
    expect(inodeCore(vol.fs, newIno)?.pages.size ?? 0).toBe(0);
    await vol.unmount();
    expectClean(img);
  });
});
