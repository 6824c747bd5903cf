/**
 * The streamtest on a kernel mount (dir_runner.py through runStreamtestOnDir) and on an ext4ts
 * Volume, from one plan on two copies of one mke2fs image: each run leaves the plan's final
 * state (checked by its own side and, across, by the other: ext4ts reads the kernel's image,
 * the kernel reads ext4ts's), so the two trees are the same; both images pass e2fsck -fn.
 */

import { copyFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import { FileDevice } from "../../src/device/file.js";
import { openImage } from "../../src/node.js";
import { cleanupImages, e2fsckClean, scratchImage, withLoopMount } from "../../test/oracle/images.js";
import { oracleAvailability, oracleGate } from "../../test/oracle/oracle_env.js";
import { runStreamtestOnDir, verifyStreamtestOnDir, type DirRunResult } from "./dir_target.js";
import { planStreamtest, runStreamtest, verifyStreamtest, type StreamtestResult } from "./streamtest.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck", "python3"], { loop: true });

// As on Ceph's OSDs: 256-byte inodes, so the 2,000-3,500-byte spill attribute needs the external
// block. No quota feature: a kernel built without CONFIG_QUOTA (this project's machine) refuses it.
const MKFS = ["-t", "ext4", "-b", "4096", "-I", "256"];

const plan = planStreamtest({ workers: 3, flushers: 2, objects: 40, objectBytes: 16384, updates: 2, syncs: 1, seed: 5 });

afterAll(() => {
  if (oracle.ok) cleanupImages();
});

oracleGate(oracle);

describe.skipIf(!oracle.ok)("streamtest on a kernel mount and on ext4ts", () => {
  let kernelImg = "";
  let oursImg = "";
  let kernel: DirRunResult | undefined;
  let ours: StreamtestResult | undefined;

  it("runs on a kernel loop mount and leaves the plan's final state; e2fsck -fn clean", async () => {
    kernelImg = scratchImage("streamtest", MKFS, "64M");
    oursImg = path.join(path.dirname(kernelImg), "ours.img");
    copyFileSync(kernelImg, oursImg); // the same empty filesystem for both
    kernel = await withLoopMount(kernelImg, { readOnly: false }, (mnt) => runStreamtestOnDir(mnt, plan, { verify: true }));
    expect(kernel.verify).toEqual({ badObjects: 0, problems: [] });
    expect(kernel.objects).toBe(40);
    expect(kernel.latencies.get("setxattr")?.n).toBeGreaterThanOrEqual(120);
    e2fsckClean(kernelImg);
  });

  it("runs on an ext4ts Volume: the same operations, the plan's final state; e2fsck -fn clean", async () => {
    const vol = await Volume.mount(await FileDevice.open(oursImg), { readOnly: false });
    try {
      ours = await runStreamtest(vol, plan);
      expect(await verifyStreamtest(vol, plan)).toEqual([]);
    } finally {
      await vol.unmount();
    }
    expect(kernel).toBeDefined();
    // Same plan, same semantics: the same calls timed and the same bytes written.
    expect(ours.operations).toBe(kernel?.operations);
    expect(ours.bytesWritten).toBe(kernel?.bytesWritten);
    e2fsckClean(oursImg);
  });

  it("each side reads the other's tree as the plan's final state", async () => {
    expect(ours).toBeDefined();
    const vol = await openImage(kernelImg);
    try {
      expect(await verifyStreamtest(vol, plan)).toEqual([]);
    } finally {
      await vol.unmount();
    }
    const check = await withLoopMount(oursImg, { readOnly: true }, (mnt) => verifyStreamtestOnDir(mnt, plan));
    expect(check).toEqual({ badObjects: 0, problems: [] });
  });
});
