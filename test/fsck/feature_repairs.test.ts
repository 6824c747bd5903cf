/**
 * Repairs that change what the superblock says (e2fsprogs is the oracle): an inode flag whose
 * feature is off, where e2fsck either turns the feature on (the inode is well formed) or
 * clears the inode; a quota inode number that cannot name a quota file.
 *  - PR_1_INLINE_DATA_FEATURE / PR_1_INLINE_DATA_SET (pass1.c): an inline inode on a volume
 *    without inline_data. Once the feature is set, the next inline inodes are not asked about
 *    again: the checker's feature view follows the superblock, as e2fsck's does.
 *  - PR_1_EXTENT_FEATURE / PR_1_EXTENTS_SET, and PR_1_UNSET_EXTENT_FL.
 *  - PR_0_INVALID_QUOTA_INO (quota.c e2fsck_validate_quota_inodes): the number is zeroed and
 *    the type is then neither counted nor compared (no "Update quota info"); a reserved quota
 *    inode no longer named but holding data is then wiped (PR_1_QUOTA_INODE_NOT_CLEAR).
 * Beside them, damage to what the encrypt feature and /lost+found rest on:
 *  - PR_1_MISSING_ENCRYPTION_XATTR / PR_1_CORRUPT_ENCRYPTION_XATTR (encrypted_files.c
 *    add_encrypted_file): the flag is cleared, or the inode.
 *  - PR_3_LPF_NOTDIR / PR_3_LPF_ENCRYPTED (pass3.c e2fsck_get_lost_and_found): the old one is
 *    unlinked and a new one made; an old directory restarts the check.
 * And two things check_super_block and pass 5 do on their own:
 *  - PR_5_BLOCK_BITMAP_CSUM_INVALID is asked by -n but not by -y once the bitmap was rewritten
 *    (check_block_bitmap_checksum skips a dirty bitmap: its checksums are written anew).
 *  - PR_0_ADD_UUID: a repairing run gives a volume without a UUID one, without calling the
 *    volume modified; -n leaves it.
 * Each damaged image is repaired by e2fsck -fy and by ours: the same text and exit status,
 * and e2fsck -fn clean after ours; the -fn run gives e2fsck -fn's text.
 */

import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { CheckOptions } from "../../src/fsck/check.js";
import { DEBUGFS_ENV } from "../oracle/base_image.js";
import { runDir } from "../oracle/images.js";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "../oracle/oracle_env.js";
import { checkWithText } from "./fsck_text.js";

const E2FSCK_ENV = { ...process.env, E2FSCK_CONFIG: "/dev/null", LC_ALL: "C", TZ: "GMT0" };

/** Our check with the text the CLI prints on stdout, and its exit status. */
async function ours(img: string, repair: CheckOptions["repair"] | undefined): Promise<{ out: string; exitCode: number; names: string[] }> {
  const { report, out } = await checkWithText(img, repair);
  return { out, exitCode: report.exitCode, names: report.problems.map((p) => p.name) };
}

/** A small tree: a directory with a file, a one-line file, a file of 20 blocks (1 KiB). */
function makeTree(dir: string): void {
  mkdirSync(path.join(dir, "d"), { recursive: true });
  writeFileSync(path.join(dir, "d", "f"), "x\n");
  writeFileSync(path.join(dir, "small"), "hello\n");
  writeFileSync(path.join(dir, "big"), Buffer.alloc(20000, 0x61));
}

interface Case {
  readonly name: string;
  readonly mkfs: readonly string[];
  /** mke2fs -E options besides root_owner. */
  readonly extended?: string;
  readonly debugfs: readonly string[];
  /** A second debugfs session (what the first changed is written, checksums and all, at its close). */
  readonly debugfsAfter?: readonly string[];
  /** Problems our repair must report, in this order (others may come between). */
  readonly expect: readonly string[];
}

const CASES: readonly Case[] = [
  {
    name: "a block marked in use that is not, and a bad block bitmap checksum (asked by -n; not by -y, which rewrites the bitmap)",
    mkfs: ["-t", "ext4"],
    debugfs: ["setb 7000"],
    debugfsAfter: ["set_bg 0 block_bitmap_csum 0"],
    expect: ["PR_0_GDT_CSUM", "PR_5_BLOCK_BITMAP_HEADER"],
  },
  {
    name: "inline files and a directory, the inline_data feature turned off",
    mkfs: ["-t", "ext4", "-O", "inline_data"],
    debugfs: ["feature -inline_data"],
    expect: ["PR_1_INLINE_DATA_FEATURE"],
  },
  {
    name: "INLINE_DATA_FL on a file without system.data, without the feature",
    mkfs: ["-t", "ext4"],
    debugfs: ["sif /small flags 0x10000000"],
    expect: ["PR_1_INLINE_DATA_SET", "PR_2_UNUSED_INODE"],
  },
  {
    name: "extent files, the extent feature turned off",
    mkfs: ["-t", "ext4", "-O", "^64bit"],
    debugfs: ["feature -extent"],
    expect: ["PR_1_EXTENT_FEATURE"],
  },
  {
    name: "EXTENTS_FL on a block-mapped file, without the feature",
    mkfs: ["-t", "ext2"],
    debugfs: ["sif /big flags 0x80000"],
    expect: ["PR_1_EXTENTS_SET", "PR_2_UNUSED_INODE"],
  },
  {
    name: "an extent file without EXTENTS_FL",
    // No resize inode: read as a block map, i_block names a descriptor block, which the -n
    // run's pass 1D would list as shared with inode 7 too (not yet told apart there).
    mkfs: ["-t", "ext4", "-O", "^resize_inode"],
    debugfs: ["sif /small flags 0"],
    expect: ["PR_1_UNSET_EXTENT_FL"],
  },
  {
    name: "user and group quota inode numbers past the inode count and reserved (project quota kept)",
    mkfs: ["-t", "ext4", "-O", "quota,project"],
    extended: "quotatype=prjquota",
    debugfs: ["ssv usr_quota_inum 808464432", "ssv grp_quota_inum 7"],
    expect: ["PR_0_INVALID_QUOTA_INO", "PR_0_INVALID_QUOTA_INO"],
  },
  {
    name: "user and group quota inode numbers made invalid while inodes 3 and 4 still hold their files",
    mkfs: ["-t", "ext4", "-O", "quota,project"],
    debugfs: ["ssv usr_quota_inum 808464432", "ssv grp_quota_inum 7"],
    expect: ["PR_0_INVALID_QUOTA_INO", "PR_0_INVALID_QUOTA_INO", "PR_1_QUOTA_INODE_NOT_CLEAR", "PR_1_QUOTA_INODE_NOT_CLEAR", "PR_5_BLOCK_BITMAP_HEADER"],
  },
  {
    name: "encrypt flags on files of a plain directory, one without a policy, one with a policy too short",
    mkfs: ["-t", "ext4", "-O", "encrypt"],
    debugfs: ["sif /small flags 0x80800", "sif /big flags 0x80800", "ea_set /big c \\x01\\x01"],
    expect: ["PR_1_CORRUPT_ENCRYPTION_XATTR", "PR_1_MISSING_ENCRYPTION_XATTR", "PR_2_UNUSED_INODE"],
  },
  {
    name: "/lost+found a FIFO, and a directory cut off from the root",
    mkfs: ["-t", "ext4"],
    debugfs: ["rmdir /lost+found", "mknod lost+found p", "unlink /d"],
    expect: ["PR_3_UNCONNECTED_DIR", "PR_3_LPF_NOTDIR", "PR_3_NO_LF_DIR", "PR_4_UNATTACHED_INODE"],
  },
  {
    // A one-block /lost+found: e2fsck would rebuild the old 12-block one in pass 3A after the restart.
    name: "an encrypted /lost+found, and a directory cut off from the root",
    mkfs: ["-t", "ext4", "-O", "encrypt"],
    debugfs: [
      "rmdir /lost+found", "mkdir /lost+found", "sif /lost+found flags 0x80800",
      "ea_set /lost+found c \\x01\\x01\\x04\\x00\\x73\\xec\\xaa\\xb7\\x33\\xf2\\x05\\xad\\x42\\x45\\xf2\\x11\\xe6\\x87\\x9e\\x68\\xe9\\xba\\x87\\x6f\\xb2\\xde\\xc0\\xb0",
      "unlink /d",
    ],
    expect: ["PR_3_UNCONNECTED_DIR", "PR_3_LPF_ENCRYPTED", "PR_3_NO_LF_DIR", "PR_3_UNCONNECTED_DIR"],
  },
];

/**
 * e2fsck -fy on one copy of `base`, ours on another: the same stdout and exit status asserted.
 * Returns our report's problem names and the two copies.
 */
async function repairBoth(dir: string, base: string): Promise<{ names: string[]; out: string; theirs: string; mine: string }> {
  const theirs = path.join(dir, "e2fsck.img");
  const mine = path.join(dir, "ext4ts.img");
  copyFileSync(base, theirs);
  copyFileSync(base, mine);
  const ey = runUnchecked(tool("e2fsck"), ["-fy", theirs], { env: E2FSCK_ENV });
  const oy = await ours(mine, "yes");
  expect(oy.out.replaceAll(mine, "IMG").trim()).toBe(ey.stdout.replaceAll(theirs, "IMG").trim());
  expect(oy.exitCode).toBe(ey.status);
  return { names: oy.names, out: oy.out, theirs, mine };
}

function subsequence(names: readonly string[], want: readonly string[]): boolean {
  let i = 0;
  for (const n of names) if (i < want.length && n === want[i]) i++;
  return i === want.length;
}

describe("fsck: a feature flag or quota inode number in the superblock, encryption flags, a bad /lost+found, repaired as e2fsck does", () => {
  const oracle = oracleAvailability(["mke2fs", "debugfs", "e2fsck", "dumpe2fs"]);
  oracleGate(oracle, "e2fsprogs (mke2fs, debugfs, e2fsck, dumpe2fs) is available");
  if (!oracle.ok) return;

  for (const k of CASES) {
    it(k.name, async () => {
      const dir = mkdtempSync(path.join(runDir(), "fsck-feature-"));
      makeTree(path.join(dir, "tree"));
      const base = path.join(dir, "base.img");
      run(tool("mke2fs"), ["-q", "-F", ...k.mkfs, "-b", "1024", "-I", "256", "-E", ["root_owner=0:0", ...(k.extended !== undefined ? [k.extended] : [])].join(","), "-d", path.join(dir, "tree"), base, "8M"], {
        env: { ...process.env, E2FSPROGS_FAKE_TIME: "1700000000" },
      });
      run(tool("debugfs"), ["-w", "-f", "-", base], { input: `${k.debugfs.join("\n")}\n`, env: DEBUGFS_ENV });
      if (k.debugfsAfter !== undefined) run(tool("debugfs"), ["-w", "-f", "-", base], { input: `${k.debugfsAfter.join("\n")}\n`, env: DEBUGFS_ENV });

      // -n: the same questions, answered no.
      const en = runUnchecked(tool("e2fsck"), ["-fn", base], { env: E2FSCK_ENV });
      const on = await ours(base, undefined);
      expect(en.status).toBe(4);
      expect(on.exitCode).toBe(en.status);
      expect(on.out.replaceAll(base, "IMG").trim()).toBe(en.stdout.replaceAll(base, "IMG").trim());

      // -y: the same repairs, leaving a volume e2fsck finds clean.
      const { names, theirs, mine } = await repairBoth(dir, base);
      expect(subsequence(names, k.expect), `expected ${k.expect.join(", ")} in ${names.join(", ")}`).toBe(true);
      const after = runUnchecked(tool("e2fsck"), ["-fn", mine], { env: E2FSCK_ENV });
      expect(after.status, after.stdout).toBe(0);
      const dump = (img: string): string => run(tool("dumpe2fs"), ["-h", img], { env: E2FSCK_ENV }).stdout
        .split("\n").filter((l) => /^(Filesystem features|User quota inode|Group quota inode|Project quota inode):/.test(l)).join("\n");
      expect(dump(mine)).toBe(dump(theirs));
    });
  }

  it("a volume without a UUID: -y gives it one, as e2fsck does, and calls nothing modified; -n leaves it", async () => {
    const dir = mkdtempSync(path.join(runDir(), "fsck-uuid-"));
    makeTree(path.join(dir, "tree"));
    const base = path.join(dir, "base.img");
    run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-O", "^metadata_csum", "-U", "clear", "-b", "1024", "-d", path.join(dir, "tree"), base, "8M"]);
    const uuid = (img: string): string => /^Filesystem UUID:\s*(\S+)/m.exec(run(tool("dumpe2fs"), ["-h", img], { env: E2FSCK_ENV }).stdout)?.[1] ?? "?";
    expect(uuid(base)).toBe("<none>");
    const en = runUnchecked(tool("e2fsck"), ["-fn", base], { env: E2FSCK_ENV });
    const on = await ours(base, undefined);
    expect([on.exitCode, on.out.replaceAll(base, "IMG").trim()]).toEqual([en.status, en.stdout.replaceAll(base, "IMG").trim()]);
    expect(uuid(base)).toBe("<none>");
    const { names, out, mine } = await repairBoth(dir, base);
    expect(names).toEqual(["PR_0_ADD_UUID"]);
    expect(out).toContain("Filesystem did not have a UUID; generating one.\n\n");
    expect(uuid(mine)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(runUnchecked(tool("e2fsck"), ["-fn", mine], { env: E2FSCK_ENV }).status).toBe(0);
  });
});
