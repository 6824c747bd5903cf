/**
 * The foundation's acceptance oracle: for images written by mke2fs -d and by the Linux
 * kernel, `ext4ts manifest IMAGE` equals, byte for byte, the same listing computed from a
 * read-only kernel loop mount of the image.
 */

import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../cli.js";
import { cleanupImages, kernelImage, kernelManifestOfImage, mke2fsPreset, MKE2FS_PRESETS, KERNEL_IMAGES, type KernelImageName, type Mke2fsPresetName } from "./images.js";
import { oracleAvailability, oracleGate } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck", "debugfs", "getfattr", "setfattr", "setfacl"], { loop: true, root: true });

/** Compare two manifests; on mismatch show the first differing lines, not 10k lines of diff. */
function expectSameManifest(ours: string, kernel: string): void {
  if (ours === kernel) return;
  const a = ours.split("\n");
  const b = kernel.split("\n");
  const diffs: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length) && diffs.length < 6; i++) {
    if (a[i] !== b[i]) diffs.push(`line ${i + 1}\n  ext4ts: ${a[i] ?? "<none>"}\n  kernel: ${b[i] ?? "<none>"}`);
  }
  expect.fail(`manifest differs from the kernel mount (${a.length} vs ${b.length} lines):\n${diffs.join("\n")}`);
}

async function ourManifest(image: string): Promise<string> {
  const r = await runCli(["manifest", image], { timeoutMs: 120_000 });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return r.stdout;
}

describe("manifest equals the kernel-mount listing", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });

  const presets = (Object.keys(MKE2FS_PRESETS) as Mke2fsPresetName[]).filter((n) => !MKE2FS_PRESETS[n].large || process.env.EXT4TS_LARGE_ORACLES === "1");
  for (const name of presets) {
    it.skipIf(!oracle.ok)(`on mke2fs -d image ${name}: ${MKE2FS_PRESETS[name].description}`, async () => {
      const image = await mke2fsPreset(name);
      const [ours, kernel] = [await ourManifest(image), await kernelManifestOfImage(image)];
      expect(kernel.split("\n").length).toBeGreaterThan(100); // the tree really is populated
      expectSameManifest(ours, kernel);
    }, 300_000);
  }

  for (const name of Object.keys(KERNEL_IMAGES) as KernelImageName[]) {
    it.skipIf(!oracle.ok)(`on kernel-written image ${name}`, async () => {
      const image = await kernelImage(name);
      const [ours, kernel] = [await ourManifest(image), await kernelManifestOfImage(image)];
      expect(kernel.split("\n").length).toBeGreaterThan(1000);
      expectSameManifest(ours, kernel);
    }, 600_000);
  }
});
