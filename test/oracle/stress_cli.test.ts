/**
 * `ext4ts stress` as users run it: a timed streamtest on an in-memory image with quota (the
 * README's main job), an exploration of schedules (a hundred, with e2fsck on a sample), the
 * replay of one schedule, and a run on an image made by mke2fs -O quota,project that e2fsck
 * must find clean afterwards.
 */

import { afterAll, describe, expect, it } from "vitest";
import { runCli, type CliResult } from "../cli.js";
import { cleanupImages, scratchImage, withLoopMount } from "./images.js";
import { oracleAvailability, oracleGate, runUnchecked, tool } from "./oracle_env.js";

/** Asynchronously: a long exploration must not block the test worker's event loop. */
function cli(...args: string[]): Promise<CliResult> {
  return runCli(args, { timeoutMs: 300_000 });
}

const oracle = oracleAvailability(["mke2fs", "e2fsck"]);
const kernel = oracleAvailability(["mke2fs", "e2fsck", "mount", "umount", "python3"], { loop: true });

describe("ext4ts stress", () => {
  afterAll(() => {
    cleanupImages();
  });

  it("a timed run on an in-memory image with quota: throughput, latencies, a clean verdict (JSON)", async () => {
    const r = await cli("stress", "--memory", "--objects", "80", "--size", "8192", "--updates", "2", "--json");
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { objects: number; operations: number; objects_per_s: number; clean: boolean; problems: string[]; latencies: Record<string, { n: number; p99: number }> };
    expect(j.clean).toBe(true);
    expect(j.problems).toEqual([]);
    expect(j.objects).toBe(80);
    expect(j.objects_per_s).toBeGreaterThan(0);
    // 80 creates; three xattrs per object; one flush per handed-over file.
    expect(j.latencies.setxattr!.n).toBeGreaterThanOrEqual(240);
    const flushes = (j.latencies.sync_file_range?.n ?? 0) + (j.latencies.fdatasync?.n ?? 0) + (j.latencies.fsync?.n ?? 0);
    expect(flushes).toBeGreaterThanOrEqual(80);
  });

  it("the human-readable report names the image, the workload and the verdict", async () => {
    const r = await cli("stress", "--objects", "40", "--size", "4096");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/streamtest on an in-memory \d+ MiB ext4 image \(quota: usr, grp, prj\)/);
    expect(r.stdout).toMatch(/8 writers, 1 flusher, 40 objects of 4 KiB \+ 3 xattrs in 16 directories/);
    expect(r.stdout).toMatch(/40 objects, [\d,]+ operations in [\d.]+ s: [\d,]+ objects\/s/);
    expect(r.stdout).toMatch(/^ {2}setxattr +\d+ /m);
    expect(r.stdout).toMatch(/check: clean/);
  });

  it("explores 100 schedules of seed 2 and finds nothing; e2fsck checks a sample", async () => {
    const r = await cli("stress", "--memory", "--explore", "100", "--seed", "2", "--e2fsck-every", "25");
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/100 schedules, [\d,]+ steps in/);
    expect(r.stdout).toMatch(/verdict: no invariant broken/);
    if (oracle.ok) expect(r.stdout).toMatch(/, 4 checked by e2fsck/);
  });

  it("replays one schedule and lists its context switches", async () => {
    const r = await cli("stress", "--schedule", "3", "--seed", "2", "--replay", "5:1,9:2");
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/schedule 3 of seed 2, replayed with 2 context switches: \d+ steps/);
    expect(r.stdout).toMatch(/verdict: clean/);
  });

  it("refuses to explore an image file, and bad options, with a clear message", async () => {
    const a = await cli("stress", "some.img", "--explore", "5");
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/--explore runs on an in-memory image/);
    const b = await cli("stress", "--strategy", "dfs");
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/Allowed choices are random, pct, mixed/);
    const c = await cli("stress", "--workers", "0");
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/--workers must be an integer ≥ 1/);
  });

  describe("on a kernel mount (--dir), the same plan through python3", () => {
    oracleGate(kernel);
    it.skipIf(!kernel.ok)("reports objects/s and latencies and finds every object as planned; e2fsck agrees", async () => {
      const img = scratchImage("stress-dir", ["-t", "ext4", "-b", "4096", "-I", "256"], "96M");
      await withLoopMount(img, { readOnly: false }, async (mnt) => {
        const r = await cli("stress", "--dir", mnt, "--objects", "60", "--size", "8192", "--updates", "2", "--syncs", "1");
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect(r.stdout).toMatch(/streamtest on the directory/);
        expect(r.stdout).toMatch(/60 objects, [\d,]+ operations in [\d.]+ s/);
        expect(r.stdout).toMatch(/^ {2}sync_file_range +\d+ /m);
        expect(r.stdout).toMatch(/check: clean/);
      });
      const f = runUnchecked(tool("e2fsck"), ["-fn", img]);
      expect(f.status, f.stdout + f.stderr).toBe(0);
    });
  });

  describe("on an image made by mke2fs -O quota,project", () => {
    oracleGate(oracle);
    it.skipIf(!oracle.ok)("leaves it clean under e2fsck -fn", async () => {
      const img = scratchImage("stress-quota", ["-t", "ext4", "-b", "4096", "-I", "256", "-O", "quota,project", "-E", "quotatype=usrquota:grpquota:prjquota"], "160M");
      const r = await cli("stress", img, "--objects", "300", "--size", "16384", "--updates", "3", "--syncs", "3", "--workers", "6", "--flushers", "2");
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/quota: usr, grp, prj/);
      expect(r.stdout).toMatch(/check: clean/);
      const f = runUnchecked(tool("e2fsck"), ["-fn", img]);
      expect(f.status, f.stdout + f.stderr).toBe(0);
    });
  });
});
