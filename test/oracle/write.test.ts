/**
 * The write engine against the real oracles: operations through the Volume API on an
 * image made by mke2fs, then `e2fsck -fn` must be clean and a kernel mount must see
 * exactly what we meant (manifest of the kernel mount == our manifest == the script's
 * expectations).
 */

import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Rng } from "./trees.js";
import { FileDevice } from "../../src/device/file.js";
import { Volume } from "../../src/api/promises.js";
import { S_IFCHR, S_IFIFO } from "../../src/format/inode.js";
import { runCli } from "../cli.js";
import { cleanupImages, kernelImage, kernelManifestOfImage, runDir, scratchImage, withLoopMount } from "./images.js";
import { oracleAvailability, oracleGate, runUnchecked, tool } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck", "getfattr"], { loop: true, root: true });

const FIXED = { sec: 1_700_000_000, nsec: 123_456_789 };

function fresh(name: string, mkfsArgs: string[], sizeMiB: number): string {
  return scratchImage(`w-${name}`, mkfsArgs, `${sizeMiB}M`);
}

async function writable(img: string): Promise<Volume> {
  return Volume.mount(await FileDevice.open(img), { readOnly: false, now: () => FIXED });
}

function e2fsck(img: string): { status: number; out: string } {
  const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
  return { status: r.status, out: r.stdout + r.stderr };
}

/** Deterministic test bytes. */
const bytes = (n: number, seed: number): Uint8Array => new Rng(seed).bytes(n);

const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

async function script(vol: Volume): Promise<Map<string, string>> {
  const want = new Map<string, string>(); // path -> sha256 of contents
  await vol.mkdir("/d");
  await vol.mkdir("/d/e/f", { recursive: true });
  const small = bytes(100, 1);
  await vol.writeFile("/d/small", small);
  want.set("/d/small", sha(small));
  const big = bytes(5 * 1024 * 1024 + 123, 2); // many blocks, partial tail
  await vol.writeFile("/big", big);
  want.set("/big", sha(big));
  const sparse = await vol.open("/sparse", "w");
  await sparse.write(bytes(10, 3), 0, 10, 1 << 20); // a hole before the data
  await sparse.close();
  const sp = new Uint8Array((1 << 20) + 10);
  sp.set(bytes(10, 3), 1 << 20);
  want.set("/sparse", sha(sp));
  await vol.symlink("small", "/d/fast-link");
  await vol.symlink("x".repeat(300), "/d/slow-link");
  await vol.mknod("/d/null", S_IFCHR | 0o666, { major: 1, minor: 3 });
  await vol.mknod("/d/fifo", S_IFIFO | 0o644);
  await vol.link("/d/small", "/d/e/hard");
  want.set("/d/e/hard", sha(small));
  // A directory big enough to become an htree, then shrunk again.
  await vol.mkdir("/many");
  for (let i = 0; i < 600; i++) await vol.writeFile(`/many/file-with-a-longish-name-${i}`, bytes(i % 7, i));
  for (let i = 0; i < 600; i += 3) await vol.unlink(`/many/file-with-a-longish-name-${i}`);
  for (let i = 1; i < 600; i++) if (i % 3 !== 0) want.set(`/many/file-with-a-longish-name-${i}`, sha(bytes(i % 7, i)));
  // Renames: within a dir, across dirs, over a file, a directory across parents.
  await vol.writeFile("/d/e/f/victim", bytes(50, 4));
  await vol.rename("/d/small", "/d/renamed");
  want.delete("/d/small");
  want.set("/d/renamed", sha(small));
  await vol.rename("/d/renamed", "/d/e/f/victim"); // replaces victim
  want.delete("/d/renamed");
  want.set("/d/e/f/victim", sha(small));
  await vol.rename("/d/e/f", "/moved");
  want.set("/moved/victim", want.get("/d/e/f/victim")!);
  want.delete("/d/e/f/victim");
  // Truncate down and up.
  await vol.truncate("/big", 4096 * 3 + 7);
  want.set("/big", sha(big.subarray(0, 4096 * 3 + 7)));
  await vol.truncate("/big", 4096 * 5);
  const grown = new Uint8Array(4096 * 5);
  grown.set(big.subarray(0, 4096 * 3 + 7));
  want.set("/big", sha(grown));
  await vol.chmod("/d", 0o750);
  await vol.chown("/big", 1000, 100);
  await expect(vol.rmdir("/d/e")).rejects.toMatchObject({ code: "ENOTEMPTY" }); // still holds "hard"
  await vol.mkdir("/gone");
  await vol.rmdir("/gone");
  await expect(vol.mkdir("/d")).rejects.toMatchObject({ code: "EEXIST" });
  await expect(vol.rename("/", "/d/x")).rejects.toMatchObject({ code: "EEXIST" });
  await expect(vol.rename("/d", "/d/e/inside")).rejects.toMatchObject({ code: "EINVAL" });
  await expect(vol.writeFile(`/${"n".repeat(256)}`, "x")).rejects.toMatchObject({ code: "ENAMETOOLONG" });
  return want;
}

describe("write engine: operations through the API leave an image e2fsck and the kernel agree with", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });
  const configs: [string, string[]][] = [
    ["ext4-4k", ["-t", "ext4", "-b", "4096"]],
    ["ext4-1k", ["-t", "ext4", "-b", "1024"]],
    ["ext4-nocsum", ["-t", "ext4", "-O", "^metadata_csum,^64bit"]],
  ];
  for (const [name, args] of configs) {
    it.skipIf(!oracle.ok)(`on ${name}`, async () => {
      const img = fresh(name, args, 64);
      const vol = await writable(img);
      const want = await script(vol);
      await vol.unmount();
      const fsck = e2fsck(img);
      expect(fsck.out).not.toMatch(/Fix\?|Clear\?|Salvage\?|Relocate\?/);
      expect(fsck.status, fsck.out).toBe(0);
      const kernel = await kernelManifestOfImage(img);
      const ours = await runCli(["manifest", img]);
      expect(ours.code, ours.stderr).toBe(0);
      expect(ours.stdout).toBe(kernel);
      const lines = new Map(kernel.trim().split("\n").map((l) => { const o = JSON.parse(l) as { path: string; sha256?: string }; return [o.path, o]; }));
      for (const [p, h] of want) expect(lines.get(p)?.sha256, p).toBe(h);
      expect(lines.has("/d/e/f")).toBe(false);
      expect(lines.get("/d/null")).toMatchObject({ type: "chr", rdev: "1:3" });
      expect(lines.get("/d/slow-link")).toMatchObject({ type: "symlink", target: "x".repeat(300) });
      expect(lines.get("/moved")).toMatchObject({ type: "dir", nlink: 2 });
      expect(lines.get("/d")).toMatchObject({ mode: "0750", nlink: 3 });
      expect(lines.get("/big")).toMatchObject({ uid: 1000, gid: 100, size: 4096 * 5, mtime: "1700000000.123456789" });
      // Round trip: the kernel writes to what we wrote, e2fsck stays clean, we read the kernel's change.
      await withLoopMount(img, { readOnly: false }, (mnt) => {
        writeFileSync(path.join(mnt, "moved", "from-kernel"), "kernel was here\n");
        rmSync(path.join(mnt, "sparse"));
        return Promise.resolve();
      });
      expect(e2fsck(img).status).toBe(0);
      const again = await Volume.mount(await FileDevice.open(img, { readOnly: true }));
      expect(new TextDecoder().decode(await again.readFile("/moved/from-kernel"))).toBe("kernel was here\n");
      await expect(again.stat("/sparse")).rejects.toMatchObject({ code: "ENOENT" });
      await again.unmount();
    }, 300_000);
  }
});

describe("unlink of an open file", () => {
  it.skipIf(!oracle.ok)("keeps the data readable until the last close, then frees the inode (e2fsck clean)", async () => {
    const img = fresh("openunlink", ["-t", "ext4"], 32);
    const vol = await writable(img);
    await vol.writeFile("/f", bytes(70_000, 9));
    const free0 = (await vol.statfs()).ffree;
    const fh = await vol.open("/f", "r");
    await vol.unlink("/f");
    await expect(vol.stat("/f")).rejects.toMatchObject({ code: "ENOENT" });
    const buf = new Uint8Array(70_000);
    expect((await fh.read(buf, 0, buf.length, 0)).bytesRead).toBe(70_000);
    expect(sha(buf)).toBe(sha(bytes(70_000, 9)));
    await fh.close();
    await vol.unmount();
    expect(e2fsck(img).status).toBe(0);
    const again = await Volume.mount(await FileDevice.open(img, { readOnly: true }));
    expect((await again.statfs()).ffree).toBe(free0 + 1);
    await again.unmount();
  }, 60_000);

  it.skipIf(!oracle.ok)("is freed at unmount when the handle is never closed", async () => {
    const img = fresh("openunlink2", ["-t", "ext4"], 32);
    const vol = await writable(img);
    await vol.writeFile("/f", bytes(10_000, 5));
    await vol.open("/f", "r");
    await vol.unlink("/f");
    await vol.unmount();
    const fsck = e2fsck(img);
    expect(fsck.status, fsck.out).toBe(0);
  }, 60_000);
});

describe("running out of space leaves a consistent image", () => {
  it.skipIf(!oracle.ok)("ENOSPC for data: a short write keeps what fit, later writes fail, e2fsck stays clean", async () => {
    const img = fresh("enospc", ["-t", "ext4", "-b", "1024", "-m", "0"], 8);
    const vol = await writable(img);
    const chunk = bytes(256 * 1024, 7);
    let written = 0;
    let err: unknown = null;
    for (let i = 0; i < 100 && err === null; i++) {
      try {
        await vol.writeFile(`/fill-${i}`, chunk);
        written++;
      } catch (e) {
        err = e;
      }
    }
    expect(err).toMatchObject({ code: "ENOSPC" });
    expect(written).toBeGreaterThan(5);
    // Directory entries can still fail too, and must not leak inodes.
    await expect(vol.mkdir("/one-more-dir")).rejects.toMatchObject({ code: "ENOSPC" });
    await vol.unmount();
    const fsck = e2fsck(img);
    expect(fsck.status, fsck.out).toBe(0);
    const again = await Volume.mount(await FileDevice.open(img, { readOnly: true }));
    expect(sha(await again.readFile("/fill-0"))).toBe(sha(chunk));
    await again.unmount();
  }, 120_000);

  it.skipIf(!oracle.ok)("ENOSPC for inodes: creation fails cleanly when every inode is used", async () => {
    const img = fresh("enospc-ino", ["-t", "ext4", "-N", "64"], 16);
    const vol = await writable(img);
    let err: unknown = null;
    for (let i = 0; i < 200 && err === null; i++) {
      try {
        await vol.writeFile(`/f${i}`, "x");
      } catch (e) {
        err = e;
      }
    }
    expect(err).toMatchObject({ code: "ENOSPC" });
    await vol.unlink("/f0");
    await vol.writeFile("/after", "y"); // the freed inode is reusable
    await vol.unmount();
    const fsck = e2fsck(img);
    expect(fsck.status, fsck.out).toBe(0);
  }, 120_000);
});

describe("round trip: the kernel writes, ext4ts modifies, the kernel reads", () => {
  it.skipIf(!oracle.ok)("changes to a kernel-written image (2-level htree, depth-2 extents, shared xattr blocks) pass e2fsck and match the kernel's view", async () => {
    const src = await kernelImage("k-ext4-4k");
    const img = path.join(mkdtempSync(path.join(runDir(), "rt-")), "k.img");
    copyFileSync(src, img);
    const vol = await writable(img);
    const names = await vol.readdir("/big-dir");
    expect(names.length).toBeGreaterThanOrEqual(10_000);
    for (let i = 0; i < 500; i++) await vol.writeFile(`/big-dir/added-by-ext4ts-${i}`, bytes(i, i));
    // /big-dir also holds a few subdirectories (every 1000th name): unlink files only.
    const files: string[] = [];
    for (const n of names) if (files.length < 300 && (await vol.lstat(`/big-dir/${n}`)).isFile()) files.push(n);
    for (const n of files) await vol.unlink(`/big-dir/${n}`);
    await vol.rename(`/big-dir/${names[400]!}`, "/renamed-out-of-big-dir");
    const deep = await vol.stat("/extents/deep");
    await vol.truncate("/extents/deep", Math.floor(deep.size / 3));
    await vol.mkdir("/new/nested/dirs", { recursive: true });
    await vol.writeFile("/new/nested/dirs/data", bytes(300_000, 11));
    await vol.unlink("/xattr/shared-1"); // drops one reference of a shared xattr block
    await vol.unmount();
    const fsck = e2fsck(img);
    expect(fsck.status, fsck.out).toBe(0);
    const kernel = await kernelManifestOfImage(img);
    const ours = await runCli(["manifest", img]);
    expect(ours.code, ours.stderr).toBe(0);
    expect(ours.stdout).toBe(kernel);
    expect(kernel).toContain('"path":"/big-dir/added-by-ext4ts-499"');
    expect(kernel).not.toContain(`"path":"/big-dir/${files[0]!}"`);
    expect(kernel).toContain(`"path":"/renamed-out-of-big-dir"`);
  }, 600_000);
});
