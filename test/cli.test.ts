/**
 * The command line as users meet it: every read command on a mke2fs-made image, checked
 * against debugfs/dumpe2fs, plus exit codes and error messages.
 */

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "./cli.js";
import { cleanupImages, mke2fsPreset, runDir, withLoopMount } from "./oracle/images.js";
import { debugfs } from "./oracle/inspect.js";
import { oracleAvailability, oracleGate, run, tool } from "./oracle/oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "debugfs", "dumpe2fs", "getfattr"], { loop: true, root: true });

describe("ext4ts without an image", () => {
  it("prints help with --help and exits 0", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    for (const cmd of ["info", "ls", "cat", "stat", "getfattr", "extract", "manifest", "demo"]) expect(r.stdout).toContain(cmd);
  });
  it("exits 2 on a usage error", async () => {
    const r = await runCli(["ls"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing required argument/);
  });
  it("exits 1 with a clear message for a missing image", async () => {
    const r = await runCli(["ls", "/nonexistent.img"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ext4ts: ls: ENOENT: .*nonexistent\.img/);
  });
  it("runs the demo on the embedded image", async () => {
    const r = await runCli(["demo"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Hello from ext4ts.");
    expect(r.stdout).toMatch(/\.\.\. 309 inodes in/);
  });
});

describe("ext4ts read commands agree with debugfs", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });

  it.skipIf(!oracle.ok)("info prints the dumpe2fs -h superblock lines", async () => {
    const image = await mke2fsPreset("m-ext4-4k");
    const r = await runCli(["info", image]);
    expect(r.code, r.stderr).toBe(0);
    const dump = run(tool("dumpe2fs"), ["-h", image], { env: { ...process.env, TZ: "UTC" } }).stdout;
    const ours = r.stdout.trim().split("\n");
    expect(ours.length).toBeGreaterThan(40);
    for (const line of ours) expect(dump).toContain(line);
  });

  it.skipIf(!oracle.ok)("ls lists the names debugfs lists", async () => {
    const image = await mke2fsPreset("m-ext4-1k");
    const r = await runCli(["ls", image, "/"]);
    expect(r.code, r.stderr).toBe(0);
    const names = debugfs(image, "ls -p /").split("\n").filter((l) => l.startsWith("/")).map((l) => l.split("/")[5]!).filter((n) => n !== "." && n !== "..");
    expect(r.stdout.trim().split("\n").sort()).toEqual(names.sort());
  });

  it.skipIf(!oracle.ok)("stat --json agrees with debugfs on inode number and size for the files of a directory", async () => {
    const image = await mke2fsPreset("m-ext2-1k");
    const ls = await runCli(["ls", "-l", image, "/"]);
    const files = ls.stdout.trim().split("\n").filter((l) => l.startsWith("-")).map((l) => l.split(/\s+/).slice(7).join(" "));
    expect(files.length).toBeGreaterThan(0);
    const tmp = mkdtempSync(path.join(runDir(), "cat-"));
    try {
      for (const f of files.slice(0, 20)) {
        debugfs(image, `dump "/${f}" ${tmp}/x`);
        const st = JSON.parse((await runCli(["stat", "--json", image, `/${f}`])).stdout) as { ino: number; size: number };
        expect(st.size).toBe(readFileSync(`${tmp}/x`).length);
        expect(debugfs(image, `stat "/${f}"`)).toContain(`Inode: ${st.ino} `);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it.skipIf(!oracle.ok)("cat writes the exact bytes of a large file", async () => {
    const image = await mke2fsPreset("m-ext4-4k");
    const man = (await runCli(["manifest", image])).stdout.trim().split("\n").map((l) => JSON.parse(l) as { path: string; type: string; size: number; sha256?: string });
    const big = man.filter((e) => e.type === "file").sort((a, b) => b.size - a.size)[0]!;
    expect(big.size).toBeGreaterThan(1 << 20);
    const tmp = mkdtempSync(path.join(runDir(), "catbig-"));
    try {
      run("sh", ["-c", `node ${JSON.stringify(path.resolve("bin/ext4ts.js"))} cat ${JSON.stringify(image)} ${JSON.stringify(big.path)} > ${tmp}/ours`]);
      debugfs(image, `dump "${big.path}" ${tmp}/theirs`);
      expect(readFileSync(`${tmp}/ours`).equals(readFileSync(`${tmp}/theirs`))).toBe(true);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it.skipIf(!oracle.ok)("getfattr shows what getfattr shows on a kernel mount", async () => {
    const image = await mke2fsPreset("m-ext4-4k");
    const man = (await runCli(["manifest", image])).stdout.trim().split("\n").map((l) => JSON.parse(l) as { path: string; xattrs?: Record<string, string> });
    const withX = man.find((e) => e.xattrs !== undefined && Object.keys(e.xattrs).length > 1)!;
    const ours = await runCli(["getfattr", "-e", "base64", image, withX.path]);
    expect(ours.code, ours.stderr).toBe(0);
    const kernel = await withLoopMount(image, { readOnly: true }, (mnt) =>
      Promise.resolve(run(tool("getfattr"), ["-h", "-d", "-m", "-", "-e", "base64", "--absolute-names", path.join(mnt, withX.path)]).stdout));
    const pairs = (s: string): string[] => s.split("\n").filter((l) => l.includes("=") && !l.startsWith("#")).sort();
    expect(pairs(ours.stdout)).toEqual(pairs(kernel));
  });

  it.skipIf(!oracle.ok)("reports missing paths like coreutils, with the syscall and path", async () => {
    const image = await mke2fsPreset("m-ext4-1k");
    const r = await runCli(["cat", image, "/no/such/file"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("ext4ts: cat: ENOENT: No such file or directory, open '/no/such/file'\n");
    const ls = await runCli(["ls", image, "/lost+found/x"]);
    expect(ls.code).toBe(1);
    expect(ls.stderr).toMatch(/ENOENT/);
  });
});
