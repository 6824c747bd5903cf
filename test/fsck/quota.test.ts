/**
 * The checker's quota comparison (src/fsck/quota_check.ts): usage counted in pass 1 against
 * the quota files, e2fsck's "Update quota info for quota type N" and its "[QUOTA WARNING]"
 * lines on stderr.
 *  - A volume ext4ts wrote (owners, xattr blocks, project ids, a chown, a delete) is clean.
 *  - Against e2fsck: files written by debugfs (which does not charge quota), then a uid changed
 *    with debugfs sif (no transfer): the same problems, exit status and stderr lines.
 */

import { copyFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import { FileDevice } from "../../src/device/file.js";
import { MemoryDevice } from "../../src/device/memory.js";
import { check, type FsckReport } from "../../src/fsck/check.js";
import { mkfsDevice } from "../../tools/mkfs/mkfs.js";
import { DEBUGFS_ENV } from "../oracle/base_image.js";
import { runDir, scratchImage } from "../oracle/images.js";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "../oracle/oracle_env.js";

const E2FSCK_ENV = { ...process.env, E2FSCK_CONFIG: "/dev/null", LC_ALL: "C", TZ: "GMT0" };

async function checkFile(img: string): Promise<FsckReport> {
  const dev = await FileDevice.open(img, { readOnly: true });
  try {
    return await check(dev, { force: true, name: img });
  } finally {
    await dev.close();
  }
}

describe("fsck: quota usage against the quota files", () => {
  it("a volume ext4ts wrote with quota on is clean: owners, xattr blocks, project ids, chown, unlink", async () => {
    const dev = new MemoryDevice(32 << 20);
    await mkfsDevice(dev, { quiet: true, knownZero: true, fsType: "ext4", blockSize: "1024", inodeSize: "256", features: ["quota", "project"] });
    const vol = await Volume.mount(dev, { readOnly: false, uid: 1000, gid: 100 });
    await vol.mkdir("/p");
    await vol.setProjectId("/p", 42, { inherit: true });
    for (let i = 0; i < 20; i++) {
      await vol.writeFile(`/p/f${i}`, new Uint8Array(3000 * (i + 1)).fill(i));
      await vol.setxattr(`/p/f${i}`, "user.big", new Uint8Array(600).fill(1)); // external block (1 KiB blocks)
    }
    await vol.lchown("/p/f3", 2000, 200);
    await vol.unlink("/p/f7");
    await vol.sync();
    const report = await check(vol, { force: true }); // through the mounted volume's cache
    await vol.unmount();
    expect(report.problems.map((p) => p.name)).toEqual([]);
    expect(report.stderr).toEqual([]);
    expect(report.clean).toBe(true);
  });

  describe("against e2fsck -fn", () => {
    const oracle = oracleAvailability(["mke2fs", "debugfs", "e2fsck"]);
    oracleGate(oracle);

    it.skipIf(!oracle.ok)("files written without charging, then an owner changed without a transfer: the same problems, exit and warnings", async () => {
      const img = scratchImage("fsck-quota", ["-t", "ext4", "-b", "4096", "-I", "256", "-O", "quota,project", "-E", "quotatype=usrquota:grpquota:prjquota"], "32M");
      const data = path.join(runDir(), "fsck-quota-data");
      writeFileSync(data, new Uint8Array(20000).fill(7));
      const steps: { name: string; commands: string[] }[] = [
        { name: "written by debugfs", commands: [`write ${data} f`, `write ${data} g`] },
        { name: "uid changed by sif", commands: ["sif f uid 5", "sif g gid 6"] },
      ];
      for (const step of steps) {
        run(tool("debugfs"), ["-w", "-f", "-", img], { input: `${step.commands.join("\n")}\n`, env: DEBUGFS_ENV });
        const copy = `${img}.${step.name.replace(/\W+/g, "_")}`;
        copyFileSync(img, copy);
        const ours = await checkFile(copy);
        const e = runUnchecked(tool("e2fsck"), ["-fn", copy], { env: E2FSCK_ENV });
        expect(ours.exitCode, step.name).toBe(e.status);
        const want = [...e.stdout.matchAll(/Update quota info for quota type (\d)/g)].map((m) => Number(m[1]));
        expect(want.length, e.stdout).toBeGreaterThan(0);
        expect(ours.problems.filter((p) => p.name === "PR_6_UPDATE_QUOTAS").map((p) => p.message), step.name).toEqual(want.map((t) => `Update quota info for quota type ${t}`));
        expect(ours.stderr, step.name).toEqual(e.stderr.split("\n").filter((l) => l.startsWith("[QUOTA WARNING]")));
      }
    });
  });
});
