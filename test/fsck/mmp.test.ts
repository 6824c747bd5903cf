/**
 * The MMP block (incompat `mmp`) against e2fsck -fn: a fresh mke2fs -O mmp image is clean; a
 * zeroed magic, a damaged checksum (metadata_csum) and an MMP block number outside the
 * filesystem each stop the check with e2fsck's message and exit status (12), line for line.
 */

import { copyFileSync, openSync, writeSync, closeSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FileDevice } from "../../src/device/file.js";
import { check, formatProblem } from "../../src/fsck/check.js";
import { DEBUGFS_ENV } from "../oracle/base_image.js";
import { scratchImage } from "../oracle/images.js";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "../oracle/oracle_env.js";

const E2FSCK_ENV = { ...process.env, E2FSCK_CONFIG: "/dev/null", LC_ALL: "C", TZ: "GMT0" };

/** Our exit status and the stdout the CLI prints (without the pass headers: e2fsck prints none when it stops first). */
async function ours(img: string): Promise<{ exit: number; out: string }> {
  const dev = await FileDevice.open(img, { readOnly: true });
  try {
    let out = "";
    const report = await check(dev, { force: true, name: img, onProblem: (p) => (out += formatProblem(p)) });
    if (!report.clean) out += `\n${report.device}: ********** WARNING: Filesystem still has errors **********\n\n`;
    if (report.aborted === undefined) out += `${report.summaryLine}\n`;
    return { exit: report.exitCode, out };
  } finally {
    await dev.close();
  }
}

function poke(img: string, offset: number, data: Uint8Array): void {
  const fd = openSync(img, "r+");
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

describe("fsck: the MMP block, beside e2fsck -fn", () => {
  const oracle = oracleAvailability(["mke2fs", "debugfs", "dumpe2fs", "e2fsck"]);
  oracleGate(oracle);

  it.skipIf(!oracle.ok)("clean, bad magic, bad checksum, block out of range: e2fsck's verdict and words", async () => {
    const base = scratchImage("mmp", ["-t", "ext4", "-b", "1024", "-O", "mmp"], "16M");
    const h = run(tool("dumpe2fs"), ["-h", base]).stdout;
    const blk = Number(/MMP block number:\s+(\d+)/.exec(h)?.[1]);
    expect(blk).toBeGreaterThan(0);
    const cases: { name: string; damage: (img: string) => void; exit: number }[] = [
      { name: "clean", damage: () => undefined, exit: 0 },
      { name: "magic", damage: (img) => poke(img, blk * 1024, new Uint8Array(4)), exit: 12 },
      { name: "checksum", damage: (img) => poke(img, blk * 1024 + 20, new Uint8Array([0x7e])), exit: 12 },
      { name: "block", damage: (img) => run(tool("debugfs"), ["-w", "-R", "ssv mmp_block 0", img], { env: DEBUGFS_ENV }), exit: 12 },
    ];
    for (const k of cases) {
      const img = `${base}.${k.name}`;
      copyFileSync(base, img);
      k.damage(img);
      const e = runUnchecked(tool("e2fsck"), ["-fn", img], { env: E2FSCK_ENV });
      const o = await ours(img);
      expect(e.status, `${k.name}: ${e.stdout}`).toBe(k.exit);
      expect(o.exit, k.name).toBe(e.status);
      const findings = (s: string): string => s.split("\n").filter((l) => !/^(e2fsck \d|Pass \d)/.test(l)).join("\n").trim();
      expect(findings(o.out), k.name).toBe(findings(e.stdout));
    }
  });
});
