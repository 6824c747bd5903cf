import { describe, expect, it } from "vitest";
import {
  allProblemDefs, latchInfo, problemDef, PR_LATCH_INFO, PR_LATCH_MASK,
  PR_LATCH_BBITMAP, PR_LATCH_BG_CHECKSUM, PR_LATCH_BLOCK, PR_LATCH_DBLOCK, PR_LATCH_IBITMAP, PR_LATCH_LOW_DTIME,
  PR_LATCH_OPTIMIZE_DIR, PR_LATCH_OPTIMIZE_EXT, PR_LATCH_TOOBIG,
  PR_0_FREE_BLOCK_COUNT, PR_0_GDT_CSUM, PR_0_GDT_CSUM_LATCH, PR_0_JOURNAL_RUN, PR_0_JOURNAL_RUN_DEFAULT, PR_0_JOURNAL_UNSUPP_SUPER,
  PR_0_JOURNAL_BAD_SUPER, PR_0_META_AND_GDT_CSUM_SET, PR_0_MISC_CORRUPT_SUPER, PR_0_ORPHAN_CLEAR_INODE, PR_0_ORPHAN_ILLEGAL_BLOCK_NUM,
  PR_0_SB_CORRUPT, PR_0_USING_BACKUP,
  PR_1_ATTR_SET_EA_INODE_FL, PR_1_BAD_I_BLOCKS, PR_1_BAD_PRIMARY_BLOCK, PR_1_BAD_PRIMARY_BLOCK_PROMPT, PR_1_BLOCK_OVERLAPS_METADATA,
  PR_1_ILLEGAL_BLOCK_NUM, PR_1_INODE_BLOCK_LATCH, PR_1_LOW_DTIME, PR_1_ORPHAN_LIST_REFUGEES, PR_1_SET_IMMUTABLE, PR_1_TOOBIG_DIR,
  PR_1_INODE_TOOBIG,
  PR_1B_DUP_BLOCK, PR_1B_DUP_BLOCK_END, PR_1B_DUP_BLOCK_HEADER, PR_1D_NUM_DUP_INODES, PR_1D_PASS_HEADER,
  PR_1E_CAN_COLLAPSE_EXTENT_TREE,
  PR_2_ABORT, PR_2_DIR_CORRUPTED, PR_2_SET_FILETYPE,
  PR_3_EXPAND_LF_DIR, PR_3_NO_LF_DIR, PR_3_LPF_NO_SPACE,
  PR_3A_OPTIMIZE_DIR, PR_3A_OPTIMIZE_DIR_END, PR_3A_OPTIMIZE_DIR_HEADER, PR_3A_PASS_HEADER,
  PR_4_BAD_REF_COUNT, PR_4_EA_INODE_REF_COUNT, PR_4_UNATTACHED_INODE,
  PR_5_BLOCK_BITMAP_END, PR_5_BLOCK_BITMAP_HEADER, PR_5_BLOCK_RANGE_UNUSED, PR_5_BLOCK_USED, PR_5_FREE_BLOCK_COUNT,
  PR_5_INODE_BITMAP_END, PR_5_INODE_BITMAP_HEADER, PR_5_INODE_USED,
  PR_6_RECREATE_JOURNAL,
  type ProblemDef,
} from "./problem.js";

const FLAG_NAMES = ["preenOk", "preenNoMsg", "noNoMsg", "preenNo", "noDefault", "msgOnly", "notAFix", "forceNo", "preenNoHdr"] as const;
type FlagName = (typeof FLAG_NAMES)[number];

/** The boolean flags of a definition that are set. */
function flagsOf(d: ProblemDef): FlagName[] {
  return FLAG_NAMES.filter((k) => d[k]);
}

describe("problem definitions carry e2fsck's flags (problem.c)", () => {
  // [definition, flags set, afterCode, latch, prompt, args, message, separator before the prompt]
  const cases: [ProblemDef, FlagName[], number | undefined, number | undefined, string, Parameters<ProblemDef["format"]>[0], string, string][] = [
    [PR_1_BAD_I_BLOCKS, ["preenOk"], undefined, undefined, "Fix", { ino: 12, iblocks: 24, num: 16 }, "Inode 12, i_blocks is 24, should be 16.", "  "],
    [PR_5_FREE_BLOCK_COUNT, ["preenOk", "preenNoMsg"], undefined, undefined, "Fix", { blk: 100, blk2: 90 }, "Free blocks count wrong (100, counted=90).", "\n"],
    [PR_4_UNATTACHED_INODE, [], undefined, undefined, "Connect to /lost+found", { ino: 12 }, "Unattached inode 12", "\n"],
    [PR_4_BAD_REF_COUNT, ["preenOk"], undefined, undefined, "Fix", { ino: 12, links: 2, num: 1 }, "Inode 12 ref count is 2, should be 1.", "  "],
    [PR_4_EA_INODE_REF_COUNT, ["preenOk"], undefined, undefined, "Fix", { ino: 12, num: 2, num2: 1 }, "Extended attribute inode 12 ref count is 2, should be 1.", " "],
    [PR_2_DIR_CORRUPTED, [], undefined, undefined, "Salvage", { ino: 12, blkcount: 0, num: 24 }, "Directory inode 12, block #0, offset 24: directory corrupted", "\n"],
    [PR_2_SET_FILETYPE, ["preenOk", "noNoMsg"], undefined, undefined, "", { entry: "Entry 'foo' in /d (12)", num: 1 }, "Setting filetype for entry 'foo' in /d (12) to 1.", "\n"],
    [PR_3_NO_LF_DIR, ["preenOk"], undefined, undefined, "Create", {}, "/lost+found not found.", "  "],
    [PR_3_EXPAND_LF_DIR, [], undefined, undefined, "Expand", {}, "No room in lost+found directory.", "  "],
    [PR_1_ORPHAN_LIST_REFUGEES, [], undefined, undefined, "Fix", {}, "Inodes that were part of a corrupted orphan linked list found.", "  "],
    [PR_1_LOW_DTIME, [], undefined, PR_LATCH_LOW_DTIME, "Fix", { ino: 14 }, "Inode 14 was part of the orphaned inode list.", "  "],
    [PR_1_ILLEGAL_BLOCK_NUM, [], undefined, PR_LATCH_BLOCK, "Clear", { ino: 12, blkcount: -1, blk: 99999 }, "Illegal indirect block (99999) in inode 12.", "  "],
    [PR_1_BLOCK_OVERLAPS_METADATA, [], undefined, PR_LATCH_BLOCK, "Clear", { ino: 12, blkcount: 3, blk: 5 }, "Block #3 (5) overlaps filesystem metadata in inode 12.", "  "],
    [PR_1_TOOBIG_DIR, [], undefined, PR_LATCH_TOOBIG, "Clear", { blkcount: 7, blk: 500 }, "Block #7 (500) causes directory to be too big.", "  "],
    [PR_1_SET_IMMUTABLE, ["preenOk", "preenNo"], undefined, undefined, "Clear", { ino: 13 }, "Special (device/socket/fifo/symlink) file (inode 13) has immutable\nor append-only flag set.", "  "],
    [PR_1_ATTR_SET_EA_INODE_FL, ["preenOk"], undefined, undefined, "Fix", { ino: 12, num: 20 }, "EA inode 20 for parent inode 12 missing EA_INODE flag.", "\n "],
    [PR_1_BAD_PRIMARY_BLOCK, [], PR_1_BAD_PRIMARY_BLOCK_PROMPT.code, undefined, "", {}, "\nIf the block is really bad, the filesystem can not be fixed.", "\n"],
    [PR_1E_CAN_COLLAPSE_EXTENT_TREE, ["preenOk", "preenNo", "notAFix"], undefined, undefined, "Optimize", { ino: 12, blk: 1 }, "Inode 12 extent tree (at level 1) could be shorter.", "  "],
    [PR_0_JOURNAL_RUN, [], undefined, undefined, "", {}, "Run journal anyway", "\n"],
    [PR_0_JOURNAL_RUN_DEFAULT, [], undefined, undefined, "", {}, "Recovery flag not set in backup superblock, so running journal anyway.", "\n"],
    [PR_0_ORPHAN_CLEAR_INODE, [], undefined, undefined, "", { str: "Clearing", ino: 15, uid: 0, gid: 0, mode: 0o100644, size: 0 }, "Clearing orphaned inode 15 (uid=0, gid=0, mode=0100644, size=0)", "\n"],
    [PR_0_ORPHAN_ILLEGAL_BLOCK_NUM, [], undefined, undefined, "", { blkcount: 2, blk: 123456, ino: 15 }, "Illegal block #2 (123456) found in orphaned inode 15.", "\n"],
    [PR_0_FREE_BLOCK_COUNT, ["preenNoMsg"], undefined, undefined, "", { blk: 100, blk2: 90 }, "Setting free blocks count to 90 (was 100)", "\n"],
    [PR_0_MISC_CORRUPT_SUPER, [], PR_0_SB_CORRUPT.code, undefined, "", { str: "s_inodes_count" }, "Corruption found in superblock.  (s_inodes_count)", "\n"],
    [PR_0_JOURNAL_UNSUPP_SUPER, [], PR_0_JOURNAL_BAD_SUPER.code, undefined, "Abort", { num: 7 }, "Filesystem journal superblock is unknown type 7 (unsupported).", "\n"],
    [PR_0_GDT_CSUM, ["preenOk"], undefined, PR_LATCH_BG_CHECKSUM, "Fix", { group: 2, num: 0x1234, num2: 0xbeef }, "Group descriptor 2 checksum is 0x1234, should be 0xbeef.", "  "],
    [PR_0_META_AND_GDT_CSUM_SET, ["preenOk"], undefined, undefined, "Fix", {}, "Superblock metadata_csum supersedes uninit_bg; both feature bits cannot be set simultaneously.", ""],
    [PR_3A_PASS_HEADER, ["preenNoMsg"], undefined, undefined, "", {}, "Pass 3A: Optimizing directories", "\n"],
    [PR_3A_OPTIMIZE_DIR_HEADER, ["msgOnly"], undefined, undefined, "", {}, "Optimizing directories: ", ""],
    [PR_3A_OPTIMIZE_DIR, ["preenNoHdr"], undefined, PR_LATCH_OPTIMIZE_DIR, "", { dir: 12 }, " 12", ""],
    [PR_3A_OPTIMIZE_DIR_END, ["preenNoHdr"], undefined, undefined, "", {}, "", "\n"],
    [PR_5_BLOCK_USED, ["preenOk", "preenNoMsg"], undefined, PR_LATCH_BBITMAP, "", { blk: 1234 }, " +1234", ""],
    [PR_5_BLOCK_RANGE_UNUSED, ["preenOk", "preenNoMsg"], undefined, PR_LATCH_BBITMAP, "", { blk: 100, blk2: 200 }, " -(100--200)", ""],
    [PR_5_INODE_USED, ["preenOk", "preenNoMsg"], undefined, PR_LATCH_IBITMAP, "", { ino: 13 }, " +13", ""],
    [PR_5_BLOCK_BITMAP_END, ["preenOk", "preenNoMsg"], undefined, undefined, "Fix", {}, "", "\n"],
    [PR_1B_DUP_BLOCK, ["preenNoHdr"], undefined, PR_LATCH_DBLOCK, "", { blk: 77 }, " 77", ""],
  ];
  for (const [d, flags, afterCode, latch, prompt, args, message, sep] of cases) {
    it(`${d.name}: flags, prompt and message`, () => {
      expect(flagsOf(d)).toEqual(flags);
      expect(d.afterCode).toBe(afterCode);
      expect(d.latch).toBe(latch);
      expect(d.prompt).toBe(prompt);
      expect(d.format(args)).toBe(message);
      expect(d.sep).toBe(sep);
    });
  }

  it("keeps the existing noOk / fatal / nullPrompt / sameLine semantics", () => {
    expect(PR_5_FREE_BLOCK_COUNT.noOk).toBe(true);
    expect(PR_1_BAD_I_BLOCKS.sameLine).toBe(true);
    expect(PR_3_NO_LF_DIR.sameLine).toBe(true);
    expect(PR_4_EA_INODE_REF_COUNT.sameLine).toBe(true);
    expect(PR_4_UNATTACHED_INODE.sameLine).toBe(false);
    expect(PR_1E_CAN_COLLAPSE_EXTENT_TREE.noOk).toBe(true);
    expect(PR_2_SET_FILETYPE.noOk).toBe(true);
    expect(PR_1_SET_IMMUTABLE.noOk).toBe(true);
    expect(PR_0_JOURNAL_RUN.nullPrompt).toBe(true);
    expect(PR_3_LPF_NO_SPACE.nullPrompt).toBe(true);
    expect(PR_6_RECREATE_JOURNAL).toMatchObject({ nullPrompt: true, noOk: true, preenOk: true, pass: 5 });
    expect(PR_6_RECREATE_JOURNAL.format({})).toBe("Recreate journal");
    // The bitmap-differences headers keep rendering the whole latch line.
    expect(PR_5_BLOCK_BITMAP_HEADER).toMatchObject({ prompt: "Fix", preenOk: true, preenNoMsg: true, latch: undefined });
    expect(PR_5_BLOCK_BITMAP_HEADER.format({ str: "+1234 -(100--200)" })).toBe("Block bitmap differences: +1234 -(100--200)");
    expect(PR_5_INODE_BITMAP_HEADER.format({ str: "-13" })).toBe("Inode bitmap differences: -13");
  });

  it("uses e2fsck's codes for pass 1D", () => {
    expect(PR_1D_PASS_HEADER.code).toBe(0x013000);
    expect(PR_1D_NUM_DUP_INODES.code).toBe(0x013004);
    expect(PR_1D_NUM_DUP_INODES.format({ num: 3 })).toBe("(There are 3 inodes containing multiply-claimed blocks.)\n");
    expect(problemDef(0x013004)).toBe(PR_1D_NUM_DUP_INODES);
  });

  it("gives ext4ts's own codes no e2fsck flags", () => {
    for (const d of [PR_0_USING_BACKUP, PR_2_ABORT]) {
      expect(d.name.startsWith("EXT4TS_")).toBe(true);
      expect(flagsOf(d)).toEqual([]);
      expect(d.afterCode).toBeUndefined();
      expect(d.latch).toBeUndefined();
    }
  });
});

describe("problem table", () => {
  const defs = allProblemDefs();

  it("has one definition per code, each typed as declared", () => {
    expect(defs.length).toBeGreaterThan(400);
    expect(new Set(defs.map((d) => d.code)).size).toBe(defs.length);
    expect(new Set(defs.map((d) => d.name)).size).toBe(defs.length);
    for (const d of defs) {
      expect(problemDef(d.code)).toBe(d);
      for (const k of [...FLAG_NAMES, "noOk", "fatal", "nullPrompt", "sameLine"] as const) expect(typeof d[k], `${d.name}.${k}`).toBe("boolean");
      expect(d.afterCode === undefined || typeof d.afterCode === "number", d.name).toBe(true);
      expect(d.latch === undefined || (typeof d.latch === "number" && (d.latch & ~PR_LATCH_MASK) === 0 && d.latch !== 0), d.name).toBe(true);
      expect(typeof d.format({})).toBe("string");
      expect(typeof d.sep).toBe("string");
      expect(/^(PR_\d[A-E]?_|EXT4TS_\d_)/.test(d.name), d.name).toBe(true);
      const own = d.name.startsWith("EXT4TS_");
      expect(own, d.name).toBe(((d.code >>> 12) & 0xf) === 0xf);
      if (own) expect(flagsOf(d), d.name).toEqual([]);
      if (d.sameLine) expect(["  ", " ", ""], d.name).toContain(d.sep);
    }
  });

  it("chains and latches only to defined problems", () => {
    for (const d of defs) {
      if (d.afterCode !== undefined) expect(problemDef(d.afterCode), d.name).toBeDefined();
      if (d.latch !== undefined) expect(latchInfo(d.latch), d.name).toBeDefined();
    }
    for (const l of PR_LATCH_INFO) {
      expect(problemDef(l.question), `latch ${l.latch}`).toBeDefined();
      if (l.end !== undefined) expect(problemDef(l.end), `latch ${l.latch}`).toBeDefined();
    }
  });

  it("describes e2fsck's latch groups", () => {
    expect(latchInfo(PR_LATCH_BLOCK)).toEqual({ latch: 0x0010, question: PR_1_INODE_BLOCK_LATCH.code, end: undefined });
    expect(latchInfo(PR_LATCH_LOW_DTIME)?.question).toBe(PR_1_ORPHAN_LIST_REFUGEES.code);
    expect(latchInfo(PR_LATCH_TOOBIG)?.question).toBe(PR_1_INODE_TOOBIG.code);
    expect(latchInfo(PR_LATCH_BBITMAP)).toEqual({ latch: 0x0040, question: PR_5_BLOCK_BITMAP_HEADER.code, end: PR_5_BLOCK_BITMAP_END.code });
    expect(latchInfo(PR_LATCH_IBITMAP)).toEqual({ latch: 0x0030, question: PR_5_INODE_BITMAP_HEADER.code, end: PR_5_INODE_BITMAP_END.code });
    expect(latchInfo(PR_LATCH_DBLOCK)).toEqual({ latch: 0x0060, question: PR_1B_DUP_BLOCK_HEADER.code, end: PR_1B_DUP_BLOCK_END.code });
    expect(latchInfo(PR_LATCH_OPTIMIZE_DIR)).toEqual({ latch: 0x0090, question: PR_3A_OPTIMIZE_DIR_HEADER.code, end: PR_3A_OPTIMIZE_DIR_END.code });
    expect(latchInfo(PR_LATCH_BG_CHECKSUM)?.question).toBe(PR_0_GDT_CSUM_LATCH.code);
    expect(latchInfo(PR_LATCH_OPTIMIZE_EXT)?.end).toBe(0x014004);
    expect(latchInfo(0x0ff0)).toBeUndefined();
    expect(PR_LATCH_INFO).toHaveLength(11);
  });
});
