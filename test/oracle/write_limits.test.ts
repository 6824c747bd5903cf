/**
 * The format's limits, hit for real: EMLINK at 65,000 links (EXT4_LINK_MAX) for files and,
 * without dir_nlink, for subdirectories; with dir_nlink a directory past the limit has
 * i_links_count 1 ("many"); EFBIG at s_maxbytes (ext4_max_size) for writes and truncates,
 * with a short write across the limit. After each, `e2fsck -fn` is clean and the kernel
 * agrees on the link counts.
 */

import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import { FileDevice } from "../../src/device/file.js";
import { cleanupImages, scratchImage, withLoopMount } from "./images.js";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck", "stat"], { loop: true, root: true });

async function writable(img: string): Promise<Volume> {
  return Volume.mount(await FileDevice.open(img), { readOnly: false });
}

function expectClean(img: string): void {
  const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
  expect(r.status, r.stdout + r.stderr).toBe(0);
}

const EXT4_LINK_MAX = 65000;

describe("format limits: EMLINK and EFBIG as Linux gives them", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });

  it.skipIf(!oracle.ok)("a file takes 65,000 links and the next is EMLINK", async () => {
    const img = scratchImage("limits-links", ["-t", "ext4", "-N", "1024"], "64M");
    const vol = await writable(img);
    await vol.writeFile("/f", "x");
    await vol.mkdir("/l");
    const t0 = Date.now();
    for (let i = 1; i < EXT4_LINK_MAX; i++) await vol.link("/f", `/l/${i}`);
    console.info(`65,000 links in ${Date.now() - t0} ms`);
    expect((await vol.lstat("/f")).nlink).toBe(EXT4_LINK_MAX);
    await expect(vol.link("/f", "/l/one-too-many")).rejects.toMatchObject({ code: "EMLINK" });
    await vol.unmount();
    expectClean(img);
    await withLoopMount(img, { readOnly: true }, (dir) => {
      expect(run(tool("stat"), ["-c", "%h", path.join(dir, "f")]).stdout.trim()).toBe(String(EXT4_LINK_MAX));
      return Promise.resolve();
    });
  }, 300_000);

  it.skipIf(!oracle.ok)("without dir_nlink a directory holds 64,998 subdirectories, then EMLINK; with it, the count becomes 1", async () => {
    const subdirs = EXT4_LINK_MAX - 2; // "." and the parent's entry make 65,000
    for (const dirNlink of [false, true]) {
      const img = scratchImage(dirNlink ? "dirnlink" : "nodirnlink", ["-t", "ext4", "-b", "1024", "-N", "70000", ...(dirNlink ? [] : ["-O", "^dir_nlink"])], "192M");
      const vol = await writable(img);
      await vol.mkdir("/d");
      const t0 = Date.now();
      for (let i = 0; i < subdirs; i++) await vol.mkdir(`/d/${i}`);
      console.info(`${subdirs} subdirectories in ${Date.now() - t0} ms`);
      expect((await vol.lstat("/d")).nlink).toBe(EXT4_LINK_MAX);
      if (!dirNlink) {
        await expect(vol.mkdir("/d/one-too-many")).rejects.toMatchObject({ code: "EMLINK" });
        // Files are not subdirectories: still fine.
        await vol.writeFile("/d/file", "x");
      } else {
        await vol.mkdir("/d/more");
        await vol.mkdir("/d/andmore");
        expect((await vol.lstat("/d")).nlink).toBe(1);
        await vol.rmdir("/d/more");
        expect((await vol.lstat("/d")).nlink).toBe(1); // "many" stays many (ext4_dec_count)
      }
      await vol.unmount();
      expectClean(img);
      await withLoopMount(img, { readOnly: true }, (dir) => {
        expect(run(tool("stat"), ["-c", "%h", path.join(dir, "d")]).stdout.trim()).toBe(dirNlink ? "1" : String(EXT4_LINK_MAX));
        return Promise.resolve();
      });
    }
  }, 600_000);

  it.skipIf(!oracle.ok)("writes and truncates stop at s_maxbytes with EFBIG; a write across it is short", async () => {
    for (const [name, args, max] of [
      ["huge", ["-t", "ext4", "-b", "1024"], (2 ** 32 - 1) * 1024],
      // Without huge_file, i_blocks counts at most 2^32 - 1 sectors.
      ["nohuge", ["-t", "ext4", "-b", "4096", "-O", "^huge_file"], (2 ** 29 - 1) * 4096],
    ] as const) {
      const img = scratchImage(`limits-${name}`, [...args], "32M");
      const vol = await writable(img);
      const fh = await vol.open("/f", "w");
      const r = await fh.write(new Uint8Array(100).fill(7), 0, 100, max - 10);
      expect(r.bytesWritten).toBe(10);
      await expect(fh.write(new Uint8Array(1), 0, 1, max)).rejects.toMatchObject({ code: "EFBIG" });
      expect((await vol.lstat("/f")).size).toBe(max);
      await expect(vol.truncate("/f", max + 1)).rejects.toMatchObject({ code: "EFBIG" });
      await vol.truncate("/f", max - 1);
      await fh.close();
      await vol.unmount();
      expectClean(img);
      await withLoopMount(img, { readOnly: false }, (dir) => {
        const f = path.join(dir, "f");
        expect(run(tool("stat"), ["-c", "%s", f]).stdout.trim()).toBe(String(max - 1));
        // The kernel's own limit is the same: one byte more is EFBIG (dd reports "File too large").
        const dd = runUnchecked("dd", ["if=/dev/zero", `of=${f}`, "bs=1", "count=2", `seek=${max - 1}`, "conv=notrunc"]);
        expect(dd.stderr).toMatch(/File too large/);
        expect(run(tool("stat"), ["-c", "%s", f]).stdout.trim()).toBe(String(max));
        return Promise.resolve();
      });
      expectClean(img);
    }
  }, 120_000);

  it.skipIf(!oracle.ok)("a write that fills the volume part-way is short, the next one is ENOSPC, and the short count is what the kernel sees", async () => {
    const img = scratchImage("limits-full", ["-t", "ext4", "-b", "1024", "-m", "0"], "8M");
    const vol = await writable(img);
    const fh = await vol.open("/f", "w");
    const big = new Uint8Array(16 << 20).fill(0x5a);
    const { bytesWritten } = await fh.write(big, 0, big.length);
    expect(bytesWritten).toBeGreaterThan(1 << 20);
    expect(bytesWritten).toBeLessThan(big.length);
    await expect(fh.write(big, bytesWritten, big.length - bytesWritten)).rejects.toMatchObject({ code: "ENOSPC" });
    await fh.close();
    await expect(vol.writeFile("/g", big)).rejects.toMatchObject({ code: "ENOSPC" });
    await vol.unmount();
    expectClean(img);
    await withLoopMount(img, { readOnly: true }, (dir) => {
      expect(run(tool("stat"), ["-c", "%s", path.join(dir, "f")]).stdout.trim()).toBe(String(bytesWritten));
      return Promise.resolve();
    });
  });
});
