/**
 * ext4ts mkfs against mke2fs 1.47.0 and the kernel: for each configuration the image
 * passes `e2fsck -fn`, `dumpe2fs -h` shows the features asked for, `dumpe2fs` (every
 * superblock and group line) equals mke2fs' for the same options, UUID, hash seed and
 * time, and the kernel mounts it read-write, takes files, and leaves it clean.
 *
 * Known difference (documented in tools/mkfs/README.md): "Lifetime writes"
 * (s_kbytes_written) counts what each tool wrote through its own I/O path, and with it
 * the superblock checksum differs; both lines are left out of the comparison.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isFsError } from "../../src/errors.js";
import { mkfs, type MkfsOptions } from "../../tools/mkfs/mkfs.js";
import { runCli } from "../cli.js";
import { cleanupImages, runDir, withLoopMount } from "./images.js";
import { oracleAvailability, oracleGate, requireOrSkip, run, runAsync, runUnchecked, tool } from "./oracle_env.js";

const tools = oracleAvailability(["mke2fs", "e2fsck", "dumpe2fs", "du"]);
const loop = oracleAvailability(["mke2fs", "e2fsck", "mount", "umount", "sync"], { loop: true, root: true });

/**
 * Where the 16 TiB images go: ext4 caps files at 16 TiB - 4 KiB, so they need another
 * filesystem (tmpfs holds sparse files of any size): EXT4TS_BIG_DIR, else /dev/shm.
 */
function bigDir(): string | undefined {
  const base = process.env.EXT4TS_BIG_DIR ?? "/dev/shm";
  try {
    const dir = mkdtempSync(path.join(base, "ext4ts-mkfs-"));
    const probe = path.join(dir, "probe");
    writeFileSync(probe, "");
    truncateSync(probe, 16 * 2 ** 40);
    rmSync(probe);
    return dir;
  } catch {
    return undefined;
  }
}
const BIG_DIR = bigDir();

afterAll(() => {
  cleanupImages();
  if (BIG_DIR !== undefined) rmSync(BIG_DIR, { recursive: true, force: true });
});

const UUID = "3c6cbe56-1f1b-4e1a-9d55-0c2b6a0f7a11";
const SEED = "8f3e2d1c-0b4a-4c5d-8e6f-7a8b9c0d1e2f";
const NOW = 1_700_000_000;

interface Case {
  name: string;
  size: string;
  /** mke2fs arguments, before -U/-E/IMAGE/SIZE. */
  mke2fs: string[];
  ours: MkfsOptions;
  want: string[];
  absent: string[];
  big?: boolean;
}

const EXT4 = ["has_journal", "ext_attr", "resize_inode", "dir_index", "filetype", "extent", "64bit", "flex_bg", "sparse_super", "large_file", "huge_file", "dir_nlink", "extra_isize", "metadata_csum"];

const CASES: Case[] = [
  { name: "ext2", size: "256M", mke2fs: ["-t", "ext2"], ours: { fsType: "ext2" }, want: ["ext_attr", "resize_inode", "dir_index", "filetype", "sparse_super", "large_file"], absent: ["has_journal", "extent", "metadata_csum"] },
  { name: "ext3", size: "256M", mke2fs: ["-t", "ext3"], ours: { fsType: "ext3" }, want: ["has_journal", "ext_attr", "resize_inode", "dir_index", "filetype", "sparse_super", "large_file"], absent: ["extent", "metadata_csum"] },
  { name: "ext4", size: "256M", mke2fs: ["-t", "ext4"], ours: {}, want: EXT4, absent: ["uninit_bg"] },
  { name: "ext4-1k", size: "256M", mke2fs: ["-t", "ext4", "-b", "1024"], ours: { blockSize: "1024" }, want: EXT4, absent: [] },
  { name: "ext4-nocsum", size: "256M", mke2fs: ["-t", "ext4", "-O", "^metadata_csum,^64bit"], ours: { features: ["^metadata_csum,^64bit"] }, want: ["has_journal", "extent", "flex_bg", "huge_file"], absent: ["metadata_csum", "64bit", "uninit_bg"] },
  { name: "ext4-nojournal", size: "256M", mke2fs: ["-t", "ext4", "-O", "^has_journal"], ours: { features: ["^has_journal"] }, want: ["extent", "metadata_csum", "64bit"], absent: ["has_journal"] },
  { name: "ext4-16T", size: "16T", mke2fs: ["-t", "ext4"], ours: {}, want: ["has_journal", "extent", "64bit", "flex_bg", "metadata_csum"], absent: ["resize_inode"], big: true },
];

/** dumpe2fs output without the lines that legitimately differ (see the file header). */
function comparable(dump: string): string {
  const lines = dump.split("\n");
  const firstGroup = lines.findIndex((l) => l.startsWith("Group 0:"));
  return lines
    .filter((l, i) => !l.startsWith("Lifetime writes:") && !(l.startsWith("Checksum:") && (firstGroup < 0 || i < firstGroup)))
    .join("\n");
}

const env = { ...process.env, E2FSPROGS_FAKE_TIME: String(NOW), TZ: "UTC" };

describe("ext4ts mkfs: oracle prerequisites", () => {
  oracleGate(tools, "e2fsprogs (mke2fs, e2fsck, dumpe2fs) is available");
  oracleGate(loop, "loop mounts are available");
});

describe("ext4ts mkfs: a place for 16 TiB sparse images", () => {
  it("has a filesystem that holds a 16 TiB sparse file", (ctx) => {
    if (BIG_DIR !== undefined) return;
    requireOrSkip("no filesystem at EXT4TS_BIG_DIR or /dev/shm holds a 16 TiB sparse file");
    ctx.skip();
  });
});

for (const c of CASES) {
  describe.skipIf(!tools.ok || (c.big === true && BIG_DIR === undefined))(`mkfs ${c.name} (${c.size})`, () => {
    const dir = c.big === true && BIG_DIR !== undefined ? BIG_DIR : path.join(runDir(), "mkfs");
    mkdirSync(dir, { recursive: true });
    const ours = path.join(dir, `ours-${c.name}.img`);
    const theirs = path.join(dir, `mke2fs-${c.name}.img`);
    const timeout = c.big === true ? 900_000 : 120_000;
    let made: Promise<{ ms: number }> | undefined;
    const make = (): Promise<{ ms: number }> => {
      made ??= (async () => {
        rmSync(ours, { force: true });
        rmSync(theirs, { force: true });
        const t0 = performance.now();
        const ext = [...(c.ours.extended ?? []), `hash_seed=${SEED}`].join(","); // mke2fs keeps only the last -E
        await mkfs(ours, { ...c.ours, size: c.size, uuid: UUID, extended: [ext], now: NOW, quiet: true });
        const ms = performance.now() - t0;
        await runAsync(tool("mke2fs"), ["-q", "-F", ...c.mke2fs, "-U", UUID, "-E", ext, theirs, c.size], { env });
        return { ms };
      })();
      return made;
    };

    it("passes e2fsck -fn", { timeout }, async () => {
      await make();
      const r = await runAsync(tool("e2fsck"), ["-fn", ours], { okCodes: [0, 1, 2, 4, 8] });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    });

    it("shows the requested features in dumpe2fs -h", { timeout }, async () => {
      await make();
      const h = run(tool("dumpe2fs"), ["-h", ours], { env }).stdout;
      const features = (/^Filesystem features:\s+(.*)$/m.exec(h)?.[1] ?? "").split(" ");
      for (const f of c.want) expect(features).toContain(f);
      for (const f of c.absent) expect(features).not.toContain(f);
      expect(h).toMatch(new RegExp(`Filesystem UUID:\\s+${UUID}`));
    });

    it("dumps like mke2fs in dumpe2fs, superblock and every group", { timeout }, async () => {
      await make();
      const a = (await runAsync(tool("dumpe2fs"), [ours], { env })).stdout;
      const b = (await runAsync(tool("dumpe2fs"), [theirs], { env })).stdout;
      const la = comparable(a).split("\n");
      const lb = comparable(b).split("\n");
      const firstDiff = la.findIndex((l, i) => l !== lb[i]);
      expect(firstDiff === -1 ? "" : `line ${firstDiff}: ours ${JSON.stringify(la[firstDiff])} mke2fs ${JSON.stringify(lb[firstDiff])}`).toBe("");
      expect(la.length).toBe(lb.length);
    });

    if (c.big === true) {
      it("stays sparse and is made quickly", { timeout }, async () => {
        const { ms } = await make();
        const du = Number(run(tool("du"), ["-k", ours]).stdout.split("\t")[0]) * 1024;
        const duTheirs = Number(run(tool("du"), ["-k", theirs]).stdout.split("\t")[0]) * 1024;
        console.log(`mkfs 16 TiB: ${ms.toFixed(0)} ms, ${(du / 2 ** 20).toFixed(1)} MiB allocated (mke2fs: ${(duTheirs / 2 ** 20).toFixed(1)} MiB)`);
        expect(statSync(ours).size).toBe(16 * 2 ** 40);
        expect(du).toBeLessThan(512 * 2 ** 20);
        expect(ms).toBeLessThan(120_000);
      });
    }

    it.skipIf(!loop.ok)("mounts read-write under Linux, takes files, and stays clean", { timeout }, async () => {
      await make();
      await withLoopMount(ours, { readOnly: false }, async (mnt) => {
        mkdirSync(path.join(mnt, "many"));
        for (let i = 0; i < 100; i++) writeFileSync(path.join(mnt, "many", `file-${i}`), `file ${i}\n`);
        writeFileSync(path.join(mnt, "big.bin"), randomBytes(5 * 1024 * 1024));
        writeFileSync(path.join(mnt, "a.txt"), "a\n");
        mkdirSync(path.join(mnt, "sub", "deeper"), { recursive: true });
        writeFileSync(path.join(mnt, "sub", "deeper", "b.txt"), "b\n");
        await runAsync(tool("sync"), ["-f", mnt]);
      });
      const r = await runAsync(tool("e2fsck"), ["-fn", ours], { okCodes: [0, 1, 2, 4, 8] });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    });
  });
}

describe.skipIf(!tools.ok)("mkfs over an existing image", () => {
  it("discards old contents like mke2fs (inode tables then count as zeroed) and dumps the same", { timeout: 120_000 }, async () => {
    const dir = path.join(runDir(), "mkfs-existing");
    mkdirSync(dir, { recursive: true });
    const ours = path.join(dir, "ours.img");
    const theirs = path.join(dir, "theirs.img");
    const junk = Buffer.alloc(64 * 2 ** 20, 0xa5);
    writeFileSync(ours, junk);
    writeFileSync(theirs, junk);
    await mkfs(ours, { uuid: UUID, extended: [`hash_seed=${SEED}`], now: NOW, quiet: true });
    await runAsync(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-U", UUID, "-E", `hash_seed=${SEED}`, theirs], { env });
    const a = comparable((await runAsync(tool("dumpe2fs"), [ours], { env })).stdout);
    expect(a).toMatch(/Group 1: .*ITABLE_ZEROED/);
    expect(a).toBe(comparable((await runAsync(tool("dumpe2fs"), [theirs], { env })).stdout));
    expect(runUnchecked(tool("e2fsck"), ["-fn", ours]).status).toBe(0);
    expect(Number(run(tool("du"), ["-k", ours]).stdout.split("\t")[0])).toBeLessThan(4096);
  });

  it("keeps a filesystem without -E discard valid over old data", { timeout: 120_000 }, async () => {
    const img = path.join(runDir(), "mkfs-existing", "nodiscard.img");
    mkdirSync(path.dirname(img), { recursive: true });
    writeFileSync(img, randomBytes(32 * 2 ** 20));
    await mkfs(img, { fsType: "ext2", extended: ["nodiscard"], quiet: true });
    const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
    expect(r.status, r.stdout).toBe(0);
  });
});

describe("mkfs refuses what mke2fs refuses", () => {
  const dir = path.join(runDir(), "mkfs-errors");
  mkdirSync(dir, { recursive: true });
  const expectEinval = async (p: Promise<unknown>, msg: RegExp): Promise<void> => {
    const e: unknown = await p.then(() => undefined, (x: unknown) => x);
    expect(isFsError(e, "EINVAL"), String(e)).toBe(true);
    expect(String(e)).toMatch(msg);
  };

  it("rejects a size too small for a filesystem", async () => {
    await expectEinval(mkfs(path.join(dir, "tiny.img"), { size: "8", quiet: true }), /Not enough space to build proposed filesystem|too small/);
  });
  it("rejects an unknown feature, naming it", async () => {
    await expectEinval(mkfs(path.join(dir, "feat.img"), { size: "8M", features: ["has_journal,frobnicate"], quiet: true }), /frobnicate/);
  });
  it("rejects a bad block size", async () => {
    await expectEinval(mkfs(path.join(dir, "bs.img"), { size: "8M", blockSize: "3000", quiet: true }), /invalid block size - 3000/);
  });
  it("refuses unknown quota types (quota itself: mkfs_quota.test.ts)", async () => {
    await expectEinval(mkfs(path.join(dir, "quota.img"), { size: "8M", extended: ["quotatype=usrquota:bogus"], quiet: true }), /Failed to parse quota type at bogus/);
  });
  it("refuses to overwrite an existing filesystem without force, and overwrites it with force", async () => {
    const img = path.join(dir, "existing.img");
    rmSync(img, { force: true });
    await mkfs(img, { size: "8M", quiet: true });
    await expectEinval(mkfs(img, { quiet: true }), /contains an ext2\/ext3\/ext4 file system; use -F/);
    await mkfs(img, { quiet: true, force: true, fsType: "ext2" });
    const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(statSync(img).size).toBe(8 * 2 ** 20);
  });
});

describe("ext4ts mkfs on the command line", () => {
  it("makes a filesystem and exits 0, refuses an unknown feature with exit 1", async () => {
    const help = await runCli(["mkfs", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: ext4ts mkfs/);
    const img = path.join(runDir(), "cli-mkfs.img");
    rmSync(img, { force: true });
    const r = await runCli(["mkfs", "-t", "ext4", "-L", "cli", img, "32M"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Creating filesystem with 32768 1k blocks and 8192 inodes/);
    expect(r.stdout).toMatch(/Writing superblocks and filesystem accounting information: done/);
    const bad = await runCli(["mkfs", "-O", "frobnicate", img]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/frobnicate/);
    if (tools.ok) expect(runUnchecked(tool("e2fsck"), ["-fn", img]).status).toBe(0);
  });
});
