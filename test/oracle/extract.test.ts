/**
 * `ext4ts extract IMAGE DIR` keeps what debugfs rdump drops: extract an image into a fresh
 * ext4 loop mount, list the result with the independent kernel-manifest walker, and compare
 * with the kernel-mount listing of the image itself. Known, documented differences:
 * sockets are skipped; directory sizes belong to the destination filesystem; Node's
 * lutimes takes a double, so mtimes agree to within a microsecond, not a nanosecond.
 */

import { mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../cli.js";
import { cleanupImages, kernelImage, kernelManifestOfImage, mke2fsPreset, runDir, withLoopMount } from "./images.js";
import { kernelManifest } from "./kernel_manifest.js";
import { oracleAvailability, oracleGate, run, tool } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "getfattr", "setfattr", "setfacl", "mknod"], { loop: true, root: true });

type Row = Record<string, unknown> & { path: string; type: string; mtime: string };

function rows(manifest: string): Row[] {
  return manifest.trim().split("\n").map((l) => JSON.parse(l) as Row);
}

function ns(t: string): bigint {
  const [s, f] = t.split(".");
  return BigInt(s!) * 1_000_000_000n + BigInt(f!);
}

function compare(image: string, extracted: string): void {
  const want = rows(image).filter((r) => r.type !== "sock");
  const got = rows(extracted);
  expect(got.map((r) => r.path)).toEqual(want.map((r) => r.path));
  for (let i = 0; i < want.length; i++) {
    const w = { ...want[i]! };
    const g = { ...got[i]! };
    const dt = ns(g.mtime) - ns(w.mtime);
    expect(dt < 1000n && dt > -1000n, `${w.path}: mtime ${g.mtime} vs ${w.mtime}`).toBe(true);
    for (const r of [w, g]) {
      delete (r as Partial<Row>).mtime;
      if (r.type === "dir") delete r.size;
    }
    expect(g, w.path).toEqual(w);
  }
}

async function extractAndCompare(image: string): Promise<void> {
  const kernel = await kernelManifestOfImage(image);
  const dest = path.join(mkdtempSync(path.join(runDir(), "extract-")), "dest.img");
  run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-I", "256", dest, "1G"]);
  try {
    await withLoopMount(dest, { readOnly: false }, async (mnt) => {
      const out = path.join(mnt, "out");
      const r = await runCli(["extract", image, out], { timeoutMs: 300_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^ext4ts: extracted \d+ files/m);
      compare(kernel, await kernelManifest(out));
    });
  } finally {
    rmSync(path.dirname(dest), { recursive: true, force: true });
  }
}

describe("extract keeps modes, owners, times, xattrs, ACLs, symlinks, hard links and devices", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });
  it.skipIf(!oracle.ok)("on an mke2fs -d image (ext4, 4 KiB)", async () => {
    await extractAndCompare(await mke2fsPreset("m-ext4-4k"));
  }, 300_000);
  it.skipIf(!oracle.ok)("on a kernel-written image with ACLs, shared xattr blocks and special files", async () => {
    await extractAndCompare(await kernelImage("k-ext4-1k"));
  }, 600_000);
});
