/**
 * Pass 3A's rebuild of big linear directories (e2fsprogs is the oracle). Repairing a dir_index
 * volume, e2fsck's pass 1 schedules every linear directory of 3 blocks or more but
 * /lost+found (check_blocks), and pass 3A indexes it: leaves packed with 20% slack, an htree
 * root (and a level of index nodes for the biggest), the directory grown or cut to the
 * blocks used (e2fsck_rehash_dir). `mke2fs -d` writes such directories linear, so a fresh
 * image shows it: each one is repaired by e2fsck -fy and by ours, and asserted the same text
 * and exit status, e2fsck -fn clean after ours, and the same bytes (the primary superblock,
 * with its times, aside). One directory is made by debugfs with its blocks between files',
 * so that its extents need a tree block.
 */

import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DEBUGFS_ENV } from "../oracle/base_image.js";
import { runDir } from "../oracle/images.js";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "../oracle/oracle_env.js";

const E2FSCK_ENV = { ...process.env, E2FSCK_CONFIG: "/dev/null", LC_ALL: "C", TZ: "GMT0" };
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The built CLI: its stdout is the text compared. */
const CLI = path.join(REPO, "bin/ext4ts.js");

/** Directories of 300, 3000 (some 200 leaves: a level of index nodes at 1 KiB) and 700 names (one with a small subdirectory), and /lost+found. */
function makeTree(dir: string): void {
  const files = (sub: string, n: number, name: (i: number) => string): void => {
    mkdirSync(path.join(dir, sub), { recursive: true });
    for (let i = 0; i < n; i++) writeFileSync(path.join(dir, sub, name(i)), "");
  };
  files("a", 300, (i) => `file_${i}`);
  files("b", 3000, (i) => `a_somewhat_longer_name_${"x".repeat(i % 40)}_${i}`);
  files("c", 700, (i) => `f${i}`);
  files("c/d", 60, (i) => `x${i}`);
  mkdirSync(path.join(dir, "lost+found"));
}

/**
 * debugfs commands making /frag: a linear directory of `names` names whose blocks alternate
 * with 1 KiB files (one every `every` names), so that its extents outgrow the inode (a tree
 * of depth 1), then the first `removed` names removed.
 */
function fragmentedDir(oneK: string, names: number, every: number, removed: number): string {
  const lines = ["mkdir frag"];
  for (let i = 1; i <= names; i++) {
    lines.push(`write /dev/null frag/name_long_enough_to_fill_blocks_${i}`);
    if (i % every === 0) lines.push(`write ${oneK} x${i}`);
  }
  for (let i = 1; i <= removed; i++) lines.push(`rm frag/name_long_enough_to_fill_blocks_${i}`);
  return `${lines.join("\n")}\n`;
}

const CASES: readonly { name: string; mkfs: readonly string[]; fragmented?: readonly [number, number, number] }[] = [
  { name: "4 KiB blocks, metadata_csum", mkfs: ["-t", "ext4", "-b", "4096"] },
  { name: "1 KiB blocks, metadata_csum", mkfs: ["-t", "ext4", "-b", "1024"] },
  { name: "1 KiB blocks without metadata_csum", mkfs: ["-t", "ext4", "-b", "1024", "-O", "^metadata_csum"] },
  { name: "block-mapped directories (ext3)", mkfs: ["-t", "ext3", "-b", "1024"] },
  { name: "a directory whose extent tree has a leaf block, grown", mkfs: ["-t", "ext4", "-b", "1024"], fragmented: [1500, 10, 0] },
  {
    // Compressed to one block: the tree is then offered to be shorter (PR_1E_CAN_COLLAPSE_EXTENT_TREE) and goes back into the inode.
    name: "a directory whose extent tree has a leaf block, mostly emptied",
    mkfs: ["-t", "ext4", "-b", "1024"],
    fragmented: [400, 60, 380],
  },
];

/** The image with its primary superblock (write time, checksum) zeroed. */
function masked(img: string): Buffer {
  const b = readFileSync(img);
  b.fill(0, 1024, 2048);
  return b;
}

describe("fsck: pass 3A indexes big linear directories as e2fsck -fy does", () => {
  const oracle = oracleAvailability(["mke2fs", "debugfs", "e2fsck"]);
  oracleGate(oracle, "e2fsprogs (mke2fs, debugfs, e2fsck) is available");
  if (!oracle.ok) return;

  for (const k of CASES) {
    it(k.name, () => {
      if (!existsSync(path.join(REPO, "dist/tools/cli/fsck_main.js"))) throw new Error("this suite runs bin/ext4ts.js: run `npm run build` first");
      const dir = mkdtempSync(path.join(runDir(), "fsck-rehash-"));
      makeTree(path.join(dir, "tree"));
      const base = path.join(dir, "base.img");
      run(tool("mke2fs"), ["-q", "-F", ...k.mkfs, "-E", "root_owner=0:0", "-d", path.join(dir, "tree"), base, "32M"], {
        env: { ...process.env, E2FSPROGS_FAKE_TIME: "1700000000" },
      });
      if (k.fragmented !== undefined) {
        const oneK = path.join(dir, "onek");
        writeFileSync(oneK, Buffer.alloc(1024, 0x61));
        run(tool("debugfs"), ["-w", "-f", "-", base], { input: fragmentedDir(oneK, ...k.fragmented), env: DEBUGFS_ENV });
      }
      const theirs = path.join(dir, "e2fsck.img");
      const mine = path.join(dir, "ext4ts.img");
      copyFileSync(base, theirs);
      copyFileSync(base, mine);
      const ey = runUnchecked(tool("e2fsck"), ["-fy", theirs], { env: E2FSCK_ENV });
      const oy = runUnchecked(process.execPath, [CLI, "fsck", "-fy", mine], { env: E2FSCK_ENV });
      expect(ey.stdout).toContain("Pass 3A: Optimizing directories");
      const text = (out: string, img: string): string => out.split("\n").filter((l) => !l.startsWith("e2fsck 1.")).join("\n").replaceAll(img, "IMG").trim();
      expect(text(oy.stdout, mine)).toBe(text(ey.stdout, theirs));
      expect(oy.status).toBe(ey.status);
      const after = runUnchecked(tool("e2fsck"), ["-fn", mine], { env: E2FSCK_ENV });
      expect(after.status, after.stdout).toBe(0);
      expect(masked(mine).equals(masked(theirs))).toBe(true);
    }, 60_000);
  }
});
