/**
 * `ext4ts repquota` / `ext4ts setquota` as users meet them, on images made by `ext4ts mkfs -O
 * quota,project`; then against quota-tools: the real setquota and repquota (quotas off, on
 * the same quota files copied to a plain loop-mounted ext4 as aquota.user/aquota.group) give
 * the same file bytes and print the same report. `e2fsck -fn` checks every image we changed.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, type CliResult } from "./cli.js";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "./oracle/oracle_env.js";
import { formatReport, time2strRound } from "../tools/cli/quota_cmds.js";

const dir = mkdtempSync(path.join(tmpdir(), "ext4ts-quota-cli-"));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
let n = 0;

function cli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, timedOut: r.error !== undefined };
}

function ok(...args: string[]): string {
  const r = cli(...args);
  expect(r.code, `ext4ts ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

function freshImage(features = "quota,project", size = "8M"): string {
  const img = `q${n++}.img`;
  ok("mkfs", "-q", "-O", features, "-U", "11111111-2222-3333-4444-555555555555", img, size);
  return img;
}

const e2fsck = oracleAvailability(["e2fsck"]);
function fsckClean(img: string): void {
  if (!e2fsck.ok) return;
  const r = runUnchecked(tool("e2fsck"), ["-fn", path.join(dir, img)]);
  expect(r.status, r.stdout + r.stderr).toBe(0);
}

const HEADER = (type: string, img: string, grace = "7days; Inode grace time: 7days", unit = "Block"): string =>
  `*** Report for ${type.toLowerCase()} quotas on device ${img}\nBlock grace time: ${grace}\n                        ${unit} limits                File limits\n${type.padEnd(9)}       used    soft    hard  grace    used  soft  hard  grace\n----------------------------------------------------------------------\n`;

describe("ext4ts repquota / setquota", () => {
  it("report what mkfs charged: root and lost+found (13 KiB, 2 files) for id 0", () => {
    const img = freshImage();
    expect(ok("repquota", img)).toBe(`${HEADER("User", img)}#0        --      13       0       0              2     0     0       \n\n\n`);
    expect(ok("repquota", "-g", "-P", "-s", img)).toBe(
      `${HEADER("Group", img, undefined, "Space")}#0        --     13K      0K      0K              2     0     0       \n\n\n` +
        `${HEADER("Project", img, undefined, "Space")}#0        --     13K      0K      0K              2     0     0       \n\n\n`,
    );
  });

  it("set limits (1 KiB units, suffixes) and grace periods, shown by -v and kept across mounts", () => {
    const img = freshImage();
    ok("setquota", "-u", "1000", "100", "2M", "3", "4k", img);
    ok("setquota", "-P", "#7", "10", "20", "0", "0", img);
    ok("setquota", "-u", "-t", "3600", "60", img);
    expect(ok("repquota", img)).not.toContain("#1000"); // no usage: only with -v
    const v = ok("repquota", "-v", img);
    expect(v).toContain("Block grace time: 01:00; Inode grace time: 00:01\n");
    expect(v).toContain("#1000     --       0     100    2048              0     3  4000       \n");
    expect(ok("repquota", "-v", "-P", img)).toContain("#7        --       0      10      20              0     0     0       \n");
    ok("setquota", "-u", "1000", "0", "0", "0", "0", img); // cleared: the record goes away
    expect(ok("repquota", "-v", img)).not.toContain("#1000");
    fsckClean(img);
  });

  it("refuse names, malformed limits, missing quota types and images without quota", () => {
    const img = freshImage("quota");
    expect(cli("setquota", "-u", "alice", "1", "2", "3", "4", img).stderr).toMatch(/not a numeric id/);
    expect(cli("setquota", "-u", "5", "1x", "2", "3", "4", img).code).toBe(1);
    expect(cli("setquota", "-u", "5", "1", "2", img).code).toBe(1);
    const noPrj = cli("repquota", "-P", img);
    expect([noPrj.code, noPrj.stderr]).toEqual([1, `ext4ts: repquota: ${img} has no project quota\n`]);
    const plain = `p${n++}.img`;
    ok("mkfs", "-q", plain, "8M");
    const r = cli("repquota", plain);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/has no quota feature/);
  });

  it("mkfs -d with quota: the files count what was copied (e2fsck compares)", () => {
    const tree = path.join(dir, `tree${n++}`);
    run("mkdir", ["-p", path.join(tree, "a", "b")]);
    writeFileSync(path.join(tree, "a", "f1"), new Uint8Array(100_000).fill(7));
    writeFileSync(path.join(tree, "a", "b", "f2"), "hi\n");
    if (process.getuid?.() === 0) run("chown", ["-R", "1000:300", path.join(tree, "a")]);
    const img = `d${n++}.img`;
    ok("mkfs", "-q", "-O", "quota,project", "-d", tree, img, "16M");
    fsckClean(img);
    const rep = ok("repquota", "-P", img);
    expect(rep).toContain("#0        --     114       0       0              6     0     0       \n"); // 13 + 101 KiB, 2 + 4 inodes
  });

  it("format times and short numbers as quota-tools does", () => {
    expect([time2strRound(604800), time2strRound(86400 * 2 - 31), time2strRound(3599), time2strRound(29)]).toEqual(["7days", "47:59", "01:00", "00:00"]);
    const rep = formatReport("usr", "x", { bgrace: 60, igrace: 60 }, [
      { type: "usr", id: 5, curspace: 300 * 1024 * 1024, rsvspace: 0, curinodes: 150_000, limits: { bsoftlimit: 1024 * 1024, bhardlimit: 0, isoftlimit: 100, ihardlimit: 0 }, btime: 1000 + 3 * 86400, itime: 900 },
    ], { short: true, verbose: false, now: 1000 });
    expect(rep.split("\n")[5]).toBe("#5        ++    300M   1024K      0K  3days    150k   100     0   none");
  });
});

// ---------------------------------------------------------------------------------------
// quota-tools

const qt = oracleAvailability(["repquota", "setquota", "debugfs", "mke2fs", "mount", "umount"], { loop: true });

describe.skipIf(!qt.ok)("ext4ts repquota/setquota against quota-tools", () => {
  oracleGate(qt);

  it("give the same quota file bytes and the same report", () => {
    const img = freshImage("quota", "16M");
    const dump = (ino: number, to: string): void => {
      run(tool("debugfs"), ["-R", `dump <${ino}> ${to}`, path.join(dir, img)]);
    };
    const before = path.join(dir, "before.user");
    dump(3, before);
    const ops: string[][] = [["1000", "100", "200", "3", "4"], ["5", "1", "1", "1", "1"], ["70000", "0", "4096", "0", "10"], ["5", "0", "0", "0", "0"]];
    for (const o of ops) ok("setquota", "-u", ...o, img);
    ok("setquota", "-u", "-t", "7200", "86400", img);
    const ours = path.join(dir, "ours.user");
    dump(3, ours);
    fsckClean(img);

    const plain = path.join(dir, "plain.img");
    const mnt = path.join(dir, "mnt");
    run("mkdir", ["-p", mnt]);
    run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", plain, "16M"]);
    run(tool("mount"), ["-o", "loop,usrquota", plain, mnt]);
    try {
      const file = path.join(mnt, "aquota.user");
      copyFileSync(before, file);
      for (const o of ops) run(tool("setquota"), ["-u", "-F", "vfsv1", ...o, mnt]);
      run(tool("setquota"), ["-u", "-F", "vfsv1", "-t", "7200", "86400", mnt]);
      expect(readFileSync(file).equals(readFileSync(ours))).toBe(true);
      for (const flags of [["-v"], ["-v", "-s"], []]) {
        const theirs = run(tool("repquota"), ["-n", "-u", "-F", "vfsv1", ...flags, mnt]).stdout;
        const mine = ok("repquota", "-u", ...flags, img);
        const strip = (s: string): string => s.replace(/^\*\*\* Report for user quotas on device .*\n/, "").replace(/\nStatistics:[\s\S]*$/, "\n\n");
        expect(strip(mine)).toBe(strip(theirs));
      }
    } finally {
      runUnchecked(tool("umount"), [mnt]);
    }
  });
});
