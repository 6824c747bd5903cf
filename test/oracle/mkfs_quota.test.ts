/**
 * ext4ts mkfs -O quota[,project] -E quotatype=... against mke2fs 1.47.0: for each case the
 * image passes `e2fsck -fn` (which recomputes quota usage and compares it with the files),
 * `dumpe2fs` equals mke2fs' (quota inode numbers, group counts, free ranges: where the quota
 * files' blocks went), and `debugfs` shows the same quota inodes (`stat`, block map) holding
 * the same bytes (`dump`). Same known difference as mkfs.test.ts: "Lifetime writes" and the
 * superblock checksum.
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isFsError } from "../../src/errors.js";
import { mkfs, type MkfsOptions } from "../../tools/mkfs/mkfs.js";
import { resolveParams } from "../../tools/mkfs/options.js";
import { runDir } from "./images.js";
import { oracleAvailability, oracleGate, run, runAsync, runUnchecked, tool } from "./oracle_env.js";

const tools = oracleAvailability(["mke2fs", "e2fsck", "dumpe2fs", "debugfs"]);

const UUID = "3c6cbe56-1f1b-4e1a-9d55-0c2b6a0f7a11";
const SEED = "8f3e2d1c-0b4a-4c5d-8e6f-7a8b9c0d1e2f";
const NOW = 1_700_000_000;
const env = { ...process.env, E2FSPROGS_FAKE_TIME: String(NOW), TZ: "UTC" };

interface Case {
  name: string;
  size: string;
  /** -t, -b, -I, -O as both take them. */
  args: { fsType?: string; blockSize?: string; inodeSize?: string; features?: string };
  /** -E besides hash_seed. */
  ext: string[];
  /** Quota inodes expected: user, group, project (0: none). */
  inums: [number, number, number];
}

const CASES: Case[] = [
  { name: "quota-4k", size: "64M", args: { features: "quota" }, ext: [], inums: [3, 4, 0] },
  { name: "quota-project-1k", size: "32M", args: { blockSize: "1024", features: "quota,project" }, ext: ["quotatype=usrquota:grpquota:prjquota"], inums: [3, 4, 12] },
  { name: "prjquota-only", size: "64M", args: { features: "quota" }, ext: ["quotatype=prjquota"], inums: [0, 0, 12] },
  { name: "root-owner", size: "64M", args: { features: "quota,project" }, ext: ["root_owner=1000:300"], inums: [3, 4, 12] },
  { name: "ext2-quota", size: "32M", args: { fsType: "ext2", blockSize: "1024", features: "quota" }, ext: ["quotatype=usr:grp"], inums: [3, 4, 0] },
  { name: "nocsum-64k-groups", size: "256M", args: { features: "quota,project,^metadata_csum,^64bit" }, ext: [], inums: [3, 4, 12] },
];

function comparable(dump: string): string {
  const lines = dump.split("\n");
  const firstGroup = lines.findIndex((l) => l.startsWith("Group 0:"));
  return lines.filter((l, i) => !l.startsWith("Lifetime writes:") && !(l.startsWith("Checksum:") && (firstGroup < 0 || i < firstGroup))).join("\n");
}

describe("ext4ts mkfs with quota: oracle prerequisites", () => {
  oracleGate(tools, "e2fsprogs (mke2fs, e2fsck, dumpe2fs, debugfs) is available");
});

for (const c of CASES) {
  describe.skipIf(!tools.ok)(`mkfs ${c.name}`, () => {
    const dir = path.join(runDir(), "mkfs-quota");
    mkdirSync(dir, { recursive: true });
    const ours = path.join(dir, `ours-${c.name}.img`);
    const theirs = path.join(dir, `mke2fs-${c.name}.img`);
    let made: Promise<void> | undefined;
    const make = (): Promise<void> => {
      made ??= (async () => {
        rmSync(ours, { force: true });
        rmSync(theirs, { force: true });
        const ext = [...c.ext, `hash_seed=${SEED}`].join(",");
        const opts: MkfsOptions = { size: c.size, uuid: UUID, extended: [ext], now: NOW, quiet: true };
        if (c.args.fsType !== undefined) opts.fsType = c.args.fsType;
        if (c.args.blockSize !== undefined) opts.blockSize = c.args.blockSize;
        if (c.args.features !== undefined) opts.features = [c.args.features];
        await mkfs(ours, opts);
        const margs = ["-t", c.args.fsType ?? "ext4", ...(c.args.blockSize !== undefined ? ["-b", c.args.blockSize] : []), ...(c.args.features !== undefined ? ["-O", c.args.features] : [])];
        await runAsync(tool("mke2fs"), ["-q", "-F", ...margs, "-U", UUID, "-E", ext, theirs, c.size], { env });
      })();
      return made;
    };

    it("passes e2fsck -fn (quota usage included)", async () => {
      await make();
      const r = await runAsync(tool("e2fsck"), ["-fn", ours], { okCodes: [0, 1, 2, 4, 8] });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    });

    it("dumps like mke2fs in dumpe2fs", async () => {
      await make();
      const la = comparable((await runAsync(tool("dumpe2fs"), [ours], { env })).stdout).split("\n");
      const lb = comparable((await runAsync(tool("dumpe2fs"), [theirs], { env })).stdout).split("\n");
      const firstDiff = la.findIndex((l, i) => l !== lb[i]);
      expect(firstDiff === -1 ? "" : `line ${firstDiff}: ours ${JSON.stringify(la[firstDiff])} mke2fs ${JSON.stringify(lb[firstDiff])}`).toBe("");
      expect(la.length).toBe(lb.length);
      const h = la.join("\n");
      const [u, g, p] = c.inums;
      expect(/User quota inode:\s+(\d+)/.exec(h)?.[1] ?? "0").toBe(String(u));
      expect(/Group quota inode:\s+(\d+)/.exec(h)?.[1] ?? "0").toBe(String(g));
      expect(/Project quota inode:\s+(\d+)/.exec(h)?.[1] ?? "0").toBe(String(p));
    });

    it("has mke2fs' quota inodes, block for block and byte for byte", async () => {
      await make();
      for (const ino of c.inums.filter((i) => i !== 0)) {
        const stat = (img: string): string => run(tool("debugfs"), ["-R", `stat <${ino}>`, img], { env }).stdout;
        expect(stat(ours)).toBe(stat(theirs));
        const a = path.join(dir, `${c.name}-${ino}.ours`);
        const b = path.join(dir, `${c.name}-${ino}.theirs`);
        run(tool("debugfs"), ["-R", `dump <${ino}> ${a}`, ours]);
        run(tool("debugfs"), ["-R", `dump <${ino}> ${b}`, theirs]);
        expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
      }
    });
  });
}

describe("mkfs quota options, as mke2fs parses them", () => {
  const dev = { bytes: undefined, isDevice: false, name: "x.img" };
  it("defaults to user and group quota, adds project with the feature, and refuses 128-byte inodes for it", () => {
    expect(resolveParams({ size: "64M", features: ["quota"] }, dev).quotaTypes).toBe(3);
    expect(resolveParams({ size: "64M", features: ["quota,project"] }, dev).quotaTypes).toBe(7);
    const prj = resolveParams({ size: "64M", features: ["quota"], extended: ["quotatype=prjquota"] }, dev);
    expect(prj.quotaTypes).toBe(4);
    expect(prj.features.s_feature_ro_compat & 0x2000).toBe(0x2000); // project
    expect(resolveParams({ size: "64M", extended: ["quotatype=usrquota"] }, dev).quotaTypes).toBe(0); // no quota feature: no files
    expect(resolveParams({ size: "1M", features: ["quota,project"] }, dev).inodeSize).toBe(256); // the "small" type's 128 raised
    let err: unknown;
    try {
      resolveParams({ size: "64M", features: ["quota,project"], inodeSize: "128" }, dev);
    } catch (e) {
      err = e;
    }
    expect(isFsError(err) && err.code === "EINVAL" && /too small for project quota/.test(err.message)).toBe(true);
    expect(() => resolveParams({ size: "64M", extended: ["quotatype=bogus"] }, dev)).toThrow(/Failed to parse quota type at bogus/);
  });

  it("matches mke2fs on the same refusal", () => {
    if (!tools.ok) return;
    const img = path.join(runDir(), "mkfs-quota", "refuse.img");
    mkdirSync(path.dirname(img), { recursive: true });
    const r = runUnchecked(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-I", "128", "-O", "quota,project", img, "16M"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/128 byte inodes are too small for project quota/);
  });
});
