/**
 * Crafted stress for the structure code (issue 3): a directory grown to 100,000 entries
 * then shrunk, and a 4 GiB sparse file written in a fragmenting pattern (extent depth
 * >= 3 on 1 KiB blocks) then truncated in steps; e2fsck -fn clean after each phase.
 */

import { mkdtempSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import { FileDevice } from "../../src/device/file.js";
import { extMapBlocks } from "../../src/fs/extents.js";
import { iget } from "../../src/fs/inode.js";
import { rootNode } from "../../src/fs/extents.js";
import { cleanupImages, runDir } from "./images.js";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck"], {});

function e2fsckClean(img: string): void {
  const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
  expect(r.status, r.stdout + r.stderr).toBe(0);
}

async function mountRw(img: string): Promise<Volume> {
  return Volume.mount(await FileDevice.open(img, { syncIO: true }), { readOnly: false });
}

describe("structure stress", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });

  it.skipIf(!oracle.ok)("a directory grown to 100,000 entries and shrunk again stays e2fsck-clean", async () => {
    const img = path.join(mkdtempSync(path.join(runDir(), "bigdir-")), "d.img");
    run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-b", "4096", "-N", "120000", img, "512M"]);
    let vol = await mountRw(img);
    await vol.mkdir("/d");
    const N = 100_000;
    for (let i = 0; i < N; i++) await vol.mknod(`/d/entry-${i.toString(36)}-${"x".repeat(i % 23)}`, 0o010644);
    expect((await vol.readdir("/d")).length).toBe(N);
    await vol.unmount();
    e2fsckClean(img);
    vol = await mountRw(img);
    for (let i = 0; i < N; i++) if (i % 10 !== 0) await vol.unlink(`/d/entry-${i.toString(36)}-${"x".repeat(i % 23)}`);
    expect((await vol.readdir("/d")).length).toBe(N / 10);
    // Lookups through the (now sparse) index still find every survivor.
    for (let i = 0; i < N; i += 997) {
      if (i % 10 === 0) await vol.lstat(`/d/entry-${i.toString(36)}-${"x".repeat(i % 23)}`);
    }
    await vol.unmount();
    e2fsckClean(img);
  }, 900_000);

  it.skipIf(!oracle.ok)("a 4 GiB sparse file in a fragmenting pattern reaches extent depth >= 3, then truncates cleanly in steps", async () => {
    const img = path.join(mkdtempSync(path.join(runDir(), "deep-")), "f.img");
    run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-b", "1024", img, "256M"]);
    let vol = await mountRw(img);
    const fh = await vol.open("/sparse", "w");
    const one = new Uint8Array(1024).fill(0x5a);
    const STRIDE = 128 * 1024; // one block every 128 blocks: no two extents can merge
    const SIZE = 4 * 1024 ** 3;
    for (let pos = 0; pos < SIZE; pos += STRIDE) await fh.write(one, 0, 1024, pos);
    await fh.sync(); // delayed allocation: the tree is built at writeback
    await fh.close();
    const st = await vol.stat("/sparse");
    const depth = rootNode(vol.fs, await iget(vol.fs, st.ino)).header.eh_depth;
    expect(depth).toBeGreaterThanOrEqual(3);
    await vol.unmount();
    e2fsckClean(img);
    for (const size of [3 * 1024 ** 3 + 5, 1024 ** 3, 10 * STRIDE + 100, 0]) {
      vol = await mountRw(img);
      await vol.truncate("/sparse", size);
      const inode = await iget(vol.fs, (await vol.stat("/sparse")).ino);
      expect(inode.size).toBe(size);
      if (size > 0) expect((await extMapBlocks(vol.fs, inode, Math.floor((size - 1) / 1024 / 128) * 128, 1)).pblk).not.toBe(0);
      await vol.unmount();
      e2fsckClean(img);
    }
  }, 900_000);
});
