/**
 * The problems the checker reports: e2fsck's problem codes (e2fsprogs e2fsck/problem.h),
 * each with the prompt e2fsck would ask, whether declining the fix leaves the volume in
 * error, and a message in e2fsck's words with the abbreviations expanded
 * ("Inode 12, i_blocks is 24, should be 16.").
 *
 * Declining is what this round's checker always does (it is e2fsck -n): a problem with a
 * prompt and without e2fsck's PR_NO_OK flag makes the volume "not clean" (exit 4), exactly
 * as e2fsck's fix_problem unmarks the filesystem valid. Problems found before pass 1
 * (superblock and group descriptor notes) never count, because e2fsck marks the volume
 * valid again after check_super_block; those that make e2fsck give up (a corrupt journal
 * superblock, an unusable superblock) are `fatal`.
 *
 * Repairs answer yes; the `prompt` is the question they answer. Each definition also carries
 * e2fsck's per-problem flags from problem.c's problem_table (as e2fsprogs 1.47.0 builds it):
 * whether preening (-p) may fix it without stopping (`preenOk`), which messages a -p or -n run
 * keeps quiet, the latch group that asks one question for a set of problems (`latch`, see
 * PR_LATCH_INFO), and the problem e2fsck asks about next (`afterCode`). Codes 0x?f0?? with
 * names starting EXT4TS_ are ext4ts's own and carry no e2fsck flags.
 */

/** What kind of damage a problem is about; the agreement tables group by it. */
export type ProblemClass =
  | "superblock" | "group_desc" | "journal" | "orphan" | "inode" | "checksum" | "blocks" | "extent"
  | "i_blocks" | "i_size" | "xattr" | "inline" | "symlink" | "directory" | "htree" | "connectivity"
  | "links" | "bitmap" | "counts" | "dup_blocks" | "quota";

/** e2fsck's prompts (problem.c prompt[]). */
export type Prompt =
  | "" | "Fix" | "Clear" | "Relocate" | "Allocate" | "Expand" | "Connect to /lost+found" | "Create" | "Salvage"
  | "Truncate" | "Clear inode" | "Abort" | "Split" | "Continue" | "Clone multiply-claimed blocks"
  | "Delete file" | "Suppress messages" | "Unlink" | "Clear HTree index" | "Recreate" | "Optimize" | "Clear flag";

/** Values a message may name (e2fsck's problem_context, with strings already rendered). */
export interface ProblemArgs {
  ino?: number;
  ino2?: number;
  dir?: number;
  blk?: number;
  blk2?: number;
  /** Logical block or e2fsck's negative block-map counters (-1 indirect, -2 double, -3 triple). */
  blkcount?: number;
  group?: number;
  num?: number;
  num2?: number;
  str?: string;
  /** "Entry 'name' in /path (12)" for directory-entry problems (e2fsck's @E). */
  entry?: string;
  /** A pathname (e2fsck's %p / %P / %q / %Q). */
  path?: string;
  path2?: string;
  /** Inode fields some messages print. */
  size?: number;
  iblocks?: number;
  links?: number;
  mode?: number;
  extraIsize?: number;
  /** e2fsck's %m (an error message) in a message that also names a %s string. */
  err?: string;
  /** e2fsck's %t (a time) and %T (now), already rendered. */
  time?: string;
  now?: string;
  /** e2fsck's %Iu and %Ig: the inode's owner. */
  uid?: number;
  gid?: number;
}

export interface ProblemDef {
  readonly code: number;
  readonly name: string;
  readonly pass: 0 | 1 | 2 | 3 | 4 | 5;
  readonly cls: ProblemClass;
  readonly prompt: Prompt;
  /** e2fsck's PR_NO_OK: declining leaves the volume valid. */
  readonly noOk: boolean;
  /** e2fsck's PR_FATAL or an abort: checking stops here. */
  readonly fatal: boolean;
  readonly format: (a: ProblemArgs) => string;
  /** e2fsck asks on the message's line ("...should be 16.  Fix?") rather than the next. */
  readonly sameLine: boolean;
  /** What separates the message from its prompt: "\n", or e2fsck's one or two spaces on the same line. */
  readonly sep: string;
  /** e2fsck's PROMPT_NULL: the message ends in the question itself ("Rename to foo~0? no"). */
  readonly nullPrompt: boolean;
  /** PR_PREEN_OK: a preening run (-p) may fix it (yes) without stopping; without it a prompted problem halts -p. */
  readonly preenOk: boolean;
  /** PR_PREEN_NOMSG: a preening run prints neither the message nor its answer. */
  readonly preenNoMsg: boolean;
  /** PR_NO_NOMSG: an e2fsck -n run does not print the message. */
  readonly noNoMsg: boolean;
  /** PR_PREEN_NO: a preening run answers no. */
  readonly preenNo: boolean;
  /** PR_NO_DEFAULT: the default answer is no. */
  readonly noDefault: boolean;
  /** PR_MSG_ONLY: print the message only (no question, no answer). */
  readonly msgOnly: boolean;
  /** PR_AFTER_CODE: the problem e2fsck raises right after this one (its answer is the answer). */
  readonly afterCode: number | undefined;
  /** PR_NOT_A_FIX: answering yes does not count as having fixed the filesystem. */
  readonly notAFix: boolean;
  /** PR_FORCE_NO: the answer is always no. */
  readonly forceNo: boolean;
  /** PR_PREEN_NOHDR: a preening run does not put the "device: " header before the message. */
  readonly preenNoHdr: boolean;
  /** The PR_LATCH_* group (flags & PR_LATCH_MASK) whose one question answers this problem. */
  readonly latch: number | undefined;
}

/** Problems whose e2fsck message ends in ".  " (the prompt follows on the same line). */
const SAME_LINE = new Set([
  0x00002e, 0x00002f, 0x000030, 0x000035, 0x000038, 0x000039, 0x00003e, 0x000042, 0x000043, 0x000047, 0x000049, 0x00004d,
  0x00004e, 0x00004f, 0x000051, 0x010001, 0x010002, 0x010003, 0x010004, 0x010005, 0x010006, 0x01000a, 0x01000b, 0x01000c,
  0x01000d, 0x01000e, 0x010010, 0x010012, 0x010013, 0x01002f, 0x010030, 0x010032, 0x010034, 0x010035, 0x010036, 0x010037,
  0x010039, 0x01003a, 0x01003c, 0x01003e, 0x010040, 0x010041, 0x010042, 0x010043, 0x010044, 0x010045, 0x010046, 0x01005d,
  0x010062, 0x010063, 0x010065, 0x010067, 0x010068, 0x010069, 0x01006c, 0x01006d, 0x010072, 0x010073, 0x010075, 0x010076,
  0x010080, 0x010081, 0x010088, 0x010089, 0x020003, 0x020004, 0x020015, 0x020038, 0x020041, 0x020054, 0x030001, 0x040001, 0x040003, 0x050001,
  0x050002,
  0x00001a, 0x000033, 0x00003b, 0x000046, 0x000048, 0x00004a, 0x00004b, 0x01000f, 0x010015, 0x010033, 0x01004e, 0x010064, 0x01007b,
  0x010087, 0x01008e, 0x01008f, 0x010090, 0x014006, 0x014007, 0x030002, 0x030004, 0x040005, 0x040007,
]);
/** Of those, the ones whose message ends in a single space. */
const ONE_SPACE = new Set([0x050001, 0x050002, 0x040005]);
/**
 * Messages that end in neither a newline nor spaces (or in both): what e2fsck prints between
 * them and the prompt, or, for those without one, nothing (the latch pieces " +%b", " %d" and
 * headers like "Optimizing directories: " continue on the same line).
 */
const SEP = new Map<number, string>([
  [0x000046, ""], [0x00004b, ""], [0x01004e, ""], [0x010086, "\n "],
  [0x011002, ""], [0x011008, ""], [0x014002, ""], [0x014003, ""], [0x031003, ""], [0x031004, ""],
  [0x050004, ""], [0x050005, ""], [0x050008, ""], [0x050009, ""], [0x050014, ""], [0x050015, ""], [0x050016, ""], [0x050017, ""],
]);

/** e2fsck's latch groups (problem.h PR_LATCH_*): a flags value masked with PR_LATCH_MASK. */
export const PR_LATCH_MASK = 0x0ff0;
export const PR_LATCH_BLOCK = 0x0010;
export const PR_LATCH_BBLOCK = 0x0020;
export const PR_LATCH_IBITMAP = 0x0030;
export const PR_LATCH_BBITMAP = 0x0040;
export const PR_LATCH_RELOC = 0x0050;
export const PR_LATCH_DBLOCK = 0x0060;
export const PR_LATCH_LOW_DTIME = 0x0070;
export const PR_LATCH_TOOBIG = 0x0080;
export const PR_LATCH_OPTIMIZE_DIR = 0x0090;
export const PR_LATCH_BG_CHECKSUM = 0x00a0;
export const PR_LATCH_OPTIMIZE_EXT = 0x00b0;

const n = (v: number | undefined): string => String(v ?? 0);
const hex4 = (v: number | undefined): string => `0x${(v ?? 0).toString(16).padStart(4, "0")}`;

/** e2fsck's %B: which block of an inode. */
export function describeBlock(blkcount: number | undefined): string {
  switch (blkcount ?? 0) {
    case -1:
      return "indirect block";
    case -2:
      return "double indirect block";
    case -3:
      return "triple indirect block";
    case -4:
      return "translator block";
    default:
      return `block #${blkcount ?? 0}`;
  }
}

const upper = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
const lower = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);

interface DefOpts {
  noOk?: boolean;
  fatal?: boolean;
  nullPrompt?: boolean;
  preenOk?: boolean;
  preenNoMsg?: boolean;
  noNoMsg?: boolean;
  preenNo?: boolean;
  noDefault?: boolean;
  msgOnly?: boolean;
  afterCode?: number;
  notAFix?: boolean;
  forceNo?: boolean;
  preenNoHdr?: boolean;
  latch?: number;
}

const table = new Map<number, ProblemDef>();

function def(
  code: number, name: string, cls: ProblemClass, prompt: Prompt, format: (a: ProblemArgs) => string, o: DefOpts = {},
): ProblemDef {
  const pass = Math.min(5, code >>> 16) as ProblemDef["pass"];
  const sameLine = SAME_LINE.has(code);
  const sep = SEP.get(code) ?? (sameLine ? (ONE_SPACE.has(code) ? " " : "  ") : "\n");
  const d: ProblemDef = {
    code, name, pass, cls, prompt, noOk: o.noOk ?? false, fatal: o.fatal ?? false, format, sameLine, sep, nullPrompt: o.nullPrompt ?? false,
    preenOk: o.preenOk ?? false, preenNoMsg: o.preenNoMsg ?? false, noNoMsg: o.noNoMsg ?? false, preenNo: o.preenNo ?? false,
    noDefault: o.noDefault ?? false, msgOnly: o.msgOnly ?? false, afterCode: o.afterCode, notAFix: o.notAFix ?? false,
    forceNo: o.forceNo ?? false, preenNoHdr: o.preenNoHdr ?? false, latch: o.latch,
  };
  table.set(code, d);
  return d;
}

/** The definition of a code (for tests and tools). */
export function problemDef(code: number): ProblemDef | undefined {
  return table.get(code);
}

/** Every definition, in the order defined (for tests and tools). */
export function allProblemDefs(): ProblemDef[] {
  return [...table.values()];
}

// ---------------------------------------------------------------------------------------
// Before pass 1: superblock, group descriptors, journal (e2fsck super.c, journal.c, unix.c)

export const PR_0_BB_NOT_GROUP = def(0x000001, "PR_0_BB_NOT_GROUP", "group_desc", "Relocate", (a) => `Block bitmap for group ${n(a.group)} is not in group.  (block ${n(a.blk)})`, { latch: PR_LATCH_RELOC });
export const PR_0_IB_NOT_GROUP = def(0x000002, "PR_0_IB_NOT_GROUP", "group_desc", "Relocate", (a) => `Inode bitmap for group ${n(a.group)} is not in group.  (block ${n(a.blk)})`, { latch: PR_LATCH_RELOC });
export const PR_0_ITABLE_NOT_GROUP = def(0x000003, "PR_0_ITABLE_NOT_GROUP", "group_desc", "Relocate", (a) => `Inode table for group ${n(a.group)} is not in group.  (block ${n(a.blk)})\nWARNING: SEVERE DATA LOSS POSSIBLE.`, { latch: PR_LATCH_RELOC });
export const PR_0_SB_CORRUPT = def(0x000004, "PR_0_SB_CORRUPT", "superblock", "", (a) =>
  `The superblock could not be read or does not describe a valid ext2/ext3/ext4 filesystem${a.str === undefined ? "" : ` (${a.str})`}.`, { fatal: true });
export const PR_0_FS_SIZE_WRONG = def(0x000005, "PR_0_FS_SIZE_WRONG", "superblock", "Abort", (a) =>
  `The filesystem size (according to the superblock) is ${n(a.blk)} blocks\nThe physical size of the device is ${n(a.blk2)} blocks\nEither the superblock or the partition table is likely to be corrupt!`, { noOk: true });
export const PR_0_MISC_CORRUPT_SUPER = def(0x00000b, "PR_0_MISC_CORRUPT_SUPER", "superblock", "", (a) => `Corruption found in superblock.  (${a.str ?? ""})`, { afterCode: 0x000004 });
export const PR_0_INODE_COUNT_WRONG = def(0x00000d, "PR_0_INODE_COUNT_WRONG", "superblock", "Fix", (a) => `Inode count in superblock is ${n(a.ino)}, should be ${n(a.ino2)}.`);
export const PR_0_JOURNAL_BAD_INODE = def(0x00000f, "PR_0_JOURNAL_BAD_INODE", "journal", "Clear", (a) => `Superblock has an invalid journal (inode ${n(a.ino)}).`, { preenOk: true });
export const PR_0_JOURNAL_UNSUPP_MULTIFS = def(0x000010, "PR_0_JOURNAL_UNSUPP_MULTIFS", "journal", "", () => "External journal has multiple filesystem users (unsupported).", { fatal: true });
export const PR_0_CANT_FIND_JOURNAL = def(0x000011, "PR_0_CANT_FIND_JOURNAL", "journal", "", () => "Can't find external journal", { fatal: true });
export const PR_0_JOURNAL_UNSUPP_SUPER = def(0x000014, "PR_0_JOURNAL_UNSUPP_SUPER", "journal", "Abort", (a) => `Filesystem journal superblock is unknown type ${n(a.num)} (unsupported).`, { noOk: true, afterCode: 0x000015 });
export const PR_0_JOURNAL_BAD_SUPER = def(0x000015, "PR_0_JOURNAL_BAD_SUPER", "journal", "Fix", () => "Journal superblock is corrupt.", { preenOk: true });
export const PR_0_JOURNAL_HAS_JOURNAL = def(0x000016, "PR_0_JOURNAL_HAS_JOURNAL", "journal", "Clear", () => "Superblock has_journal flag is clear, but a journal is present.", { preenOk: true });
export const PR_0_JOURNAL_RECOVER_SET = def(0x000017, "PR_0_JOURNAL_RECOVER_SET", "journal", "Clear", () => "Superblock needs_recovery flag is set, but no journal is present.", { preenOk: true });
export const PR_0_JOURNAL_RECOVERY_CLEAR = def(0x000018, "PR_0_JOURNAL_RECOVERY_CLEAR", "journal", "", () => "Superblock needs_recovery flag is clear, but journal has data.");
export const PR_0_JOURNAL_UNSUPP_ROCOMPAT = def(0x000025, "PR_0_JOURNAL_UNSUPP_ROCOMPAT", "journal", "Abort", () => "Journal superblock has an unknown read-only feature flag set.", { noOk: true });
export const PR_0_JOURNAL_UNSUPP_INCOMPAT = def(0x000026, "PR_0_JOURNAL_UNSUPP_INCOMPAT", "journal", "Abort", () => "Journal superblock has an unknown incompatible feature flag set.", { noOk: true });
export const PR_0_JOURNAL_UNSUPP_VERSION = def(0x000027, "PR_0_JOURNAL_UNSUPP_VERSION", "journal", "Abort", () => "Journal version not supported by this e2fsck.", { noOk: true });
export const PR_0_NONZERO_RESERVED_GDT_BLOCKS = def(0x00002e, "PR_0_NONZERO_RESERVED_GDT_BLOCKS", "superblock", "Fix", (a) => `Filesystem does not have resize_inode enabled, but s_reserved_gdt_blocks\nis ${n(a.num)}; should be zero.`);
export const PR_0_CLEAR_RESIZE_INODE = def(0x00002f, "PR_0_CLEAR_RESIZE_INODE", "superblock", "Clear", () => "Resize_inode not enabled, but the resize inode is non-zero.");
export const PR_0_RESIZE_INODE_INVALID = def(0x000030, "PR_0_RESIZE_INODE_INVALID", "superblock", "Recreate", () => "Resize inode not valid.");
export const PR_0_GDT_CSUM = def(0x000035, "PR_0_GDT_CSUM", "group_desc", "Fix", (a) =>
  `Group descriptor ${n(a.group)} checksum is ${hex4(a.num)}, should be ${hex4(a.num2)}.`, { preenOk: true, latch: PR_LATCH_BG_CHECKSUM });
export const PR_0_GDT_UNINIT = def(0x000036, "PR_0_GDT_UNINIT", "group_desc", "Fix", (a) => `Group descriptor ${n(a.group)} marked uninitialized without feature set.`, { preenOk: true });
export const PR_0_GDT_ITABLE_UNUSED = def(0x000038, "PR_0_GDT_ITABLE_UNUSED", "group_desc", "Fix", (a) => `Group descriptor ${n(a.group)} has invalid unused inodes count ${n(a.blk)}.`, { preenOk: true });
export const PR_0_BB_UNINIT_LAST = def(0x000039, "PR_0_BB_UNINIT_LAST", "group_desc", "Fix", () => "Last group block bitmap uninitialized.", { preenOk: true });
export const PR_0_GDT_CSUM_LATCH = def(0x00003e, "PR_0_GDT_CSUM_LATCH", "group_desc", "Fix", () => "One or more block group descriptor checksums are invalid.", { preenOk: true });
export const PR_0_MMP_INVALID_BLK = def(0x000042, "PR_0_MMP_INVALID_BLK", "superblock", "Clear", () => "Superblock has invalid MMP block.", { fatal: true, preenOk: true });
export const PR_0_MMP_INVALID_MAGIC = def(0x000043, "PR_0_MMP_INVALID_MAGIC", "superblock", "Fix", () => "Superblock has invalid MMP magic.", { fatal: true, preenOk: true });
export const PR_0_OPEN_FAILED = def(0x000044, "PR_0_OPEN_FAILED", "superblock", "", (a) => `ext2fs_open2: ${a.str ?? "Superblock invalid"}`);
export const PR_0_CHECK_DESC_FAILED = def(0x000045, "PR_0_CHECK_DESC_FAILED", "group_desc", "", (a) => `ext2fs_check_desc: ${a.str ?? "Corrupt group descriptor"}`);
export const PR_0_MMP_CSUM_INVALID = def(0x000047, "PR_0_MMP_CSUM_INVALID", "superblock", "Fix", () => "Superblock MMP block checksum does not match.", { fatal: true, preenOk: true });
export const PR_0_FIRST_META_BG_TOO_BIG = def(0x000049, "PR_0_FIRST_META_BG_TOO_BIG", "superblock", "Clear", (a) => `First_meta_bg is too big.  (${n(a.num)}, max value ${n(a.group)}).`);
export const PR_0_BAD_MIN_EXTRA_ISIZE = def(0x00004d, "PR_0_BAD_MIN_EXTRA_ISIZE", "superblock", "Fix", (a) => `Bad required extra isize in superblock (${n(a.num)}).`);
export const PR_0_BAD_WANT_EXTRA_ISIZE = def(0x00004e, "PR_0_BAD_WANT_EXTRA_ISIZE", "superblock", "Fix", (a) => `Bad desired extra isize in superblock (${n(a.num)}).`);
export const PR_0_INVALID_QUOTA_INO = def(0x00004f, "PR_0_INVALID_QUOTA_INO", "quota", "Fix", (a) => `Invalid ${a.str ?? "user"} quota inode ${n(a.ino)}.`);
export const PR_0_DISABLE_RESIZE_INODE = def(0x000051, "PR_0_DISABLE_RESIZE_INODE", "superblock", "Fix", () => "Resize_inode and meta_bg features are enabled. Those features are\nnot compatible. Resize inode should be disabled.");
/** Not an e2fsck problem code: the primary superblock was unusable and a backup was used (e2fsck: "Superblock invalid, trying backup blocks..."). */
export const PR_0_USING_BACKUP = def(0x00f001, "EXT4TS_0_USING_BACKUP", "superblock", "", (a) => `e2fsck: ${a.str ?? "Superblock invalid,"} trying backup blocks...`);
/** Not an e2fsck problem code: e2fsck refuses the features (exit 8). */
export const PR_0_UNSUPPORTED_FEATURES = def(0x00f002, "EXT4TS_0_UNSUPPORTED_FEATURES", "superblock", "", (a) => `Filesystem has unsupported feature(s): ${a.str ?? ""}`, { fatal: true });
/** Not an e2fsck problem code: the superblock checksum is wrong (e2fsck: ext2fs_open2: Superblock checksum does not match superblock). */
export const PR_0_SB_CSUM_INVALID = def(0x00f003, "EXT4TS_0_SB_CSUM_INVALID", "checksum", "", () => "ext2fs_open2: Superblock checksum does not match superblock");
/** Not an e2fsck problem code: e2fsck cannot use the journal and stops ("Cannot proceed with file system check"). */
export const PR_0_JOURNAL_ABORT = def(0x00f005, "EXT4TS_0_JOURNAL_ABORT", "journal", "", (a) => `e2fsck: ${a.str ?? "journal error"}\ne2fsck: Cannot proceed with file system check`, { fatal: true });
/** Not an e2fsck problem code: a device read failed. */
export const PR_0_READ_ERROR = def(0x00f004, "EXT4TS_0_READ_ERROR", "superblock", "", (a) => `Error reading block ${n(a.blk)} (${a.str ?? "read error"})`, { fatal: true });

export const PR_0_NO_FRAGMENTS = def(0x000006, "PR_0_NO_FRAGMENTS", "superblock", "", (a) => `Superblock block_size = ${n(a.blk)}, fragsize = ${n(a.blk2)}.\nThis version of e2fsck does not support fragment sizes different\nfrom the block size.`, { fatal: true });
export const PR_0_BLOCKS_PER_GROUP = def(0x000007, "PR_0_BLOCKS_PER_GROUP", "superblock", "", (a) => `Superblock blocks_per_group = ${n(a.blk)}, should have been ${n(a.blk2)}`, { afterCode: 0x000004 });
export const PR_0_FIRST_DATA_BLOCK = def(0x000008, "PR_0_FIRST_DATA_BLOCK", "superblock", "", (a) => `Superblock first_data_block = ${n(a.blk)}, should have been ${n(a.blk2)}`, { afterCode: 0x000004 });
export const PR_0_ADD_UUID = def(0x000009, "PR_0_ADD_UUID", "superblock", "", () => "Filesystem did not have a UUID; generating one.\n");
/** `num` is the backup superblock e2fsck names (its %S). */
export const PR_0_RELOCATE_HINT = def(0x00000a, "PR_0_RELOCATE_HINT", "group_desc", "", (a) => `Note: if several inode or block bitmap blocks or part\nof the inode table require relocation, you may wish to try\nrunning e2fsck with the '-b ${n(a.num)}' option first.  The problem\nmay lie only with the primary block group descriptors, and\nthe backup block group descriptors may be OK.\n`, { preenOk: true });
export const PR_0_GETSIZE_ERROR = def(0x00000c, "PR_0_GETSIZE_ERROR", "superblock", "", (a) => `Error determining size of the physical device: ${a.str ?? ""}`, { fatal: true });
export const PR_0_HURD_CLEAR_FILETYPE = def(0x00000e, "PR_0_HURD_CLEAR_FILETYPE", "superblock", "Clear", () => "The Hurd does not support the filetype feature.");
export const PR_0_EXT_JOURNAL_BAD_SUPER = def(0x000012, "PR_0_EXT_JOURNAL_BAD_SUPER", "journal", "", () => "External journal has bad superblock", { fatal: true });
export const PR_0_JOURNAL_BAD_UUID = def(0x000013, "PR_0_JOURNAL_BAD_UUID", "journal", "", () => "External journal does not support this filesystem", { fatal: true });
export const PR_0_JOURNAL_RESET_JOURNAL = def(0x000019, "PR_0_JOURNAL_RESET_JOURNAL", "journal", "", () => "Clear journal", { nullPrompt: true, preenNoMsg: true });
export const PR_0_FS_REV_LEVEL = def(0x00001a, "PR_0_FS_REV_LEVEL", "superblock", "Fix", () => "Filesystem has feature flag(s) set, but is a revision 0 filesystem.", { noOk: true, preenOk: true });
export const PR_0_ORPHAN_CLEAR_INODE = def(0x000020, "PR_0_ORPHAN_CLEAR_INODE", "orphan", "", (a) => `${a.str ?? ""} orphaned inode ${n(a.ino)} (uid=${n(a.uid)}, gid=${n(a.gid)}, mode=0${(a.mode ?? 0).toString(8)}, size=${n(a.size)})`);
export const PR_0_ORPHAN_ILLEGAL_BLOCK_NUM = def(0x000021, "PR_0_ORPHAN_ILLEGAL_BLOCK_NUM", "orphan", "", (a) => `Illegal ${describeBlock(a.blkcount)} (${n(a.blk)}) found in orphaned inode ${n(a.ino)}.`);
export const PR_0_ORPHAN_ALREADY_CLEARED_BLOCK = def(0x000022, "PR_0_ORPHAN_ALREADY_CLEARED_BLOCK", "orphan", "", (a) => `Already cleared ${describeBlock(a.blkcount)} (${n(a.blk)}) found in orphaned inode ${n(a.ino)}.`);
export const PR_0_ORPHAN_ILLEGAL_HEAD_INODE = def(0x000023, "PR_0_ORPHAN_ILLEGAL_HEAD_INODE", "orphan", "", (a) => `Illegal orphaned inode ${n(a.ino)} in superblock.`);
export const PR_0_ORPHAN_ILLEGAL_INODE = def(0x000024, "PR_0_ORPHAN_ILLEGAL_INODE", "orphan", "", (a) => `Illegal inode ${n(a.ino)} in orphaned inode list.`);
export const PR_0_MOVE_JOURNAL = def(0x000028, "PR_0_MOVE_JOURNAL", "journal", "", (a) => `Moving journal from /${a.str ?? ""} to hidden inode.\n`);
export const PR_0_ERR_MOVE_JOURNAL = def(0x000029, "PR_0_ERR_MOVE_JOURNAL", "journal", "", (a) => `Error moving journal: ${a.str ?? ""}\n`);
export const PR_0_CLEAR_V2_JOURNAL = def(0x00002a, "PR_0_CLEAR_V2_JOURNAL", "journal", "", () => "Found invalid V2 journal superblock fields (from V1 journal).\nClearing fields beyond the V1 journal superblock...\n");
export const PR_0_JOURNAL_RUN = def(0x00002b, "PR_0_JOURNAL_RUN", "journal", "", () => "Run journal anyway", { nullPrompt: true });
export const PR_0_JOURNAL_RUN_DEFAULT = def(0x00002c, "PR_0_JOURNAL_RUN_DEFAULT", "journal", "", () => "Recovery flag not set in backup superblock, so running journal anyway.");
export const PR_0_BACKUP_JNL = def(0x00002d, "PR_0_BACKUP_JNL", "journal", "", () => "Backing up journal inode block information.\n");
export const PR_0_FUTURE_SB_LAST_MOUNT = def(0x000031, "PR_0_FUTURE_SB_LAST_MOUNT", "superblock", "Fix", (a) => `Superblock last mount time (${a.time ?? ""},\n\tnow = ${a.now ?? ""}) is in the future.`, { noOk: true, preenOk: true });
export const PR_0_FUTURE_SB_LAST_WRITE = def(0x000032, "PR_0_FUTURE_SB_LAST_WRITE", "superblock", "Fix", (a) => `Superblock last write time (${a.time ?? ""},\n\tnow = ${a.now ?? ""}) is in the future.`, { noOk: true, preenOk: true });
export const PR_0_EXTERNAL_JOURNAL_HINT = def(0x000033, "PR_0_EXTERNAL_JOURNAL_HINT", "journal", "Fix", (a) => `Superblock hint for external superblock should be 0x${(a.num ?? 0).toString(16)}.`, { preenOk: true });
export const PR_0_DIRHASH_HINT = def(0x000034, "PR_0_DIRHASH_HINT", "superblock", "", () => "Adding dirhash hint to filesystem.\n");
export const PR_0_JNL_TXN_CORRUPT = def(0x00003a, "PR_0_JNL_TXN_CORRUPT", "journal", "", (a) => `Journal transaction ${n(a.ino)} was corrupt, replay was aborted.`);
export const PR_0_CLEAR_TESTFS_FLAG = def(0x00003b, "PR_0_CLEAR_TESTFS_FLAG", "superblock", "Clear", () => "The test_fs flag is set (and ext4 is available).", { preenOk: true });
export const PR_0_FUTURE_SB_LAST_MOUNT_FUDGED = def(0x00003c, "PR_0_FUTURE_SB_LAST_MOUNT_FUDGED", "superblock", "", () => "Superblock last mount time is in the future.\n\t(by less than a day, probably due to the hardware clock being incorrectly set)", { noOk: true, preenOk: true });
export const PR_0_FUTURE_SB_LAST_WRITE_FUDGED = def(0x00003d, "PR_0_FUTURE_SB_LAST_WRITE_FUDGED", "superblock", "", () => "Superblock last write time is in the future.\n\t(by less than a day, probably due to the hardware clock being incorrectly set)", { noOk: true, preenOk: true });
export const PR_0_FREE_INODE_COUNT = def(0x00003f, "PR_0_FREE_INODE_COUNT", "counts", "", (a) => `Setting free inodes count to ${n(a.ino2)} (was ${n(a.ino)})`, { preenNoMsg: true });
export const PR_0_FREE_BLOCK_COUNT = def(0x000040, "PR_0_FREE_BLOCK_COUNT", "counts", "", (a) => `Setting free blocks count to ${n(a.blk2)} (was ${n(a.blk)})`, { preenNoMsg: true });
export const PR_0_HIDE_QUOTA = def(0x000041, "PR_0_HIDE_QUOTA", "quota", "", (a) => `Hiding ${a.str ?? "user"} quota inode ${n(a.ino)} (${a.path ?? "???"}).`, { preenOk: true });
export const PR_0_META_AND_GDT_CSUM_SET = def(0x000046, "PR_0_META_AND_GDT_CSUM_SET", "superblock", "Fix", () => "Superblock metadata_csum supersedes uninit_bg; both feature bits cannot be set simultaneously.", { noOk: true, preenOk: true });
export const PR_0_64BIT_WITHOUT_EXTENTS = def(0x000048, "PR_0_64BIT_WITHOUT_EXTENTS", "superblock", "Fix", () => "Superblock 64bit filesystem needs extents to access the whole disk.", { noOk: true, preenOk: true });
export const PR_0_EXT_JOURNAL_SUPER_CSUM_INVALID = def(0x00004a, "PR_0_EXT_JOURNAL_SUPER_CSUM_INVALID", "journal", "Fix", () => "External journal superblock checksum does not match superblock.", { preenOk: true });
export const PR_0_CSUM_SEED_WITHOUT_META_CSUM = def(0x00004b, "PR_0_CSUM_SEED_WITHOUT_META_CSUM", "superblock", "Fix", () => "Superblock metadata_csum_seed is not necessary without metadata_csum.", { noOk: true, preenOk: true });
export const PR_0_QUOTA_INIT_CTX = def(0x00004c, "PR_0_QUOTA_INIT_CTX", "quota", "", (a) => `Error initializing quota context in support library: ${a.str ?? ""}`, { fatal: true, nullPrompt: true });
export const PR_0_INODE_COUNT_BIG = def(0x000050, "PR_0_INODE_COUNT_BIG", "superblock", "", (a) => `Superblock would have too many inodes (${n(a.num)}).`, { afterCode: 0x000004 });
export const PR_0_ORPHAN_FILE_HOLE = def(0x000052, "PR_0_ORPHAN_FILE_HOLE", "orphan", "", (a) => `Orphan file (inode ${n(a.ino)}) contains hole at block ${n(a.blk)}. Terminating orphan file recovery.`);
export const PR_0_ORPHAN_FILE_BAD_MAGIC = def(0x000053, "PR_0_ORPHAN_FILE_BAD_MAGIC", "orphan", "", (a) => `Orphan file (inode ${n(a.ino)}) block ${n(a.blk)} contains wrong magic. Terminating orphan file recovery.`);
export const PR_0_ORPHAN_FILE_BAD_CHECKSUM = def(0x000054, "PR_0_ORPHAN_FILE_BAD_CHECKSUM", "orphan", "", (a) => `Orphan file (inode ${n(a.ino)}) block ${n(a.blk)} contains wrong checksum. Terminating orphan file recovery.`);
export const PR_0_ORPHAN_FILE_WRONG_SIZE = def(0x000055, "PR_0_ORPHAN_FILE_WRONG_SIZE", "orphan", "", (a) => `Orphan file (inode ${n(a.ino)}) size is not multiple of block size. Terminating orphan file recovery.`);
// ---------------------------------------------------------------------------------------
// Pass 1: inodes, blocks and sizes (e2fsck pass1.c)

export const PR_1_ROOT_NO_DIR = def(0x010001, "PR_1_ROOT_NO_DIR", "inode", "Clear", () => "Root inode is not a directory.");
export const PR_1_ROOT_DTIME = def(0x010002, "PR_1_ROOT_DTIME", "inode", "Fix", () => "Root inode has dtime set (probably due to old mke2fs).", { preenOk: true });
export const PR_1_RESERVED_BAD_MODE = def(0x010003, "PR_1_RESERVED_BAD_MODE", "inode", "Clear", (a) => `Reserved inode ${n(a.ino)} (${a.path ?? `<${n(a.ino)}>`}) has invalid mode.`, { preenOk: true });
export const PR_1_ZERO_DTIME = def(0x010004, "PR_1_ZERO_DTIME", "orphan", "Fix", (a) => `Deleted inode ${n(a.ino)} has zero dtime.`, { preenOk: true });
export const PR_1_SET_DTIME = def(0x010005, "PR_1_SET_DTIME", "inode", "Fix", (a) => `Inode ${n(a.ino)} is in use, but has dtime set.`, { preenOk: true });
export const PR_1_ZERO_LENGTH_DIR = def(0x010006, "PR_1_ZERO_LENGTH_DIR", "directory", "Clear", (a) => `Inode ${n(a.ino)} is a zero-length directory.`, { preenOk: true });
export const PR_1_BB_CONFLICT = def(0x010007, "PR_1_BB_CONFLICT", "group_desc", "Relocate", (a) => `Group ${n(a.group)}'s block bitmap at ${n(a.blk)} conflicts with some other fs block.`);
export const PR_1_IB_CONFLICT = def(0x010008, "PR_1_IB_CONFLICT", "group_desc", "Relocate", (a) => `Group ${n(a.group)}'s inode bitmap at ${n(a.blk)} conflicts with some other fs block.`);
export const PR_1_ITABLE_CONFLICT = def(0x010009, "PR_1_ITABLE_CONFLICT", "group_desc", "Relocate", (a) => `Group ${n(a.group)}'s inode table at ${n(a.blk)} conflicts with some other fs block.`);
export const PR_1_BB_BAD_BLOCK = def(0x01000a, "PR_1_BB_BAD_BLOCK", "blocks", "Relocate", (a) => `Group ${n(a.group)}'s block bitmap (${n(a.blk)}) is bad.`);
export const PR_1_IB_BAD_BLOCK = def(0x01000b, "PR_1_IB_BAD_BLOCK", "blocks", "Relocate", (a) => `Group ${n(a.group)}'s inode bitmap (${n(a.blk)}) is bad.`);
export const PR_1_BAD_I_SIZE = def(0x01000c, "PR_1_BAD_I_SIZE", "i_size", "Fix", (a) => `Inode ${n(a.ino)}, i_size is ${n(a.size)}, should be ${n(a.num)}.`, { preenOk: true });
export const PR_1_BAD_I_BLOCKS = def(0x01000d, "PR_1_BAD_I_BLOCKS", "i_blocks", "Fix", (a) => `Inode ${n(a.ino)}, i_blocks is ${n(a.iblocks)}, should be ${n(a.num)}.`, { preenOk: true });
export const PR_1_ILLEGAL_BLOCK_NUM = def(0x01000e, "PR_1_ILLEGAL_BLOCK_NUM", "blocks", "Clear", (a) => `Illegal ${describeBlock(a.blkcount)} (${n(a.blk)}) in inode ${n(a.ino)}.`, { latch: PR_LATCH_BLOCK });
export const PR_1_INODE_BLOCK_LATCH = def(0x010010, "PR_1_INODE_BLOCK_LATCH", "blocks", "Clear", (a) => `Inode ${n(a.ino)} has illegal block(s).`);
export const PR_1_TOO_MANY_BAD_BLOCKS = def(0x010011, "PR_1_TOO_MANY_BAD_BLOCKS", "blocks", "Clear inode", (a) => `Too many illegal blocks in inode ${n(a.ino)}.`, { noOk: true });
export const PR_1_SUPPRESS_MESSAGES = def(0x01002d, "PR_1_SUPPRESS_MESSAGES", "blocks", "Suppress messages", () => "", { noOk: true });
export const PR_1_BB_ILLEGAL_BLOCK_NUM = def(0x010012, "PR_1_BB_ILLEGAL_BLOCK_NUM", "blocks", "Clear", (a) => `Illegal ${describeBlock(a.blkcount)} (${n(a.blk)}) in bad block inode.`, { latch: PR_LATCH_BBLOCK });
export const PR_1_INODE_BBLOCK_LATCH = def(0x010013, "PR_1_INODE_BBLOCK_LATCH", "blocks", "Clear", () => "Bad block inode has illegal block(s).");
export const PR_1_BAD_PRIMARY_SUPERBLOCK = def(0x010019, "PR_1_BAD_PRIMARY_SUPERBLOCK", "blocks", "Clear", (a) => `The primary superblock (${n(a.blk)}) is on the bad block list.`, { afterCode: 0x010017 });
export const PR_1_BAD_PRIMARY_GROUP_DESCRIPTOR = def(0x01001a, "PR_1_BAD_PRIMARY_GROUP_DESCRIPTOR", "blocks", "Clear", (a) => `Block ${n(a.blk)} in the primary group descriptors is on the bad block list`, { afterCode: 0x010017 });
export const PR_1_BAD_SUPERBLOCK = def(0x01001b, "PR_1_BAD_SUPERBLOCK", "blocks", "", (a) => `Warning: Group ${n(a.group)}'s superblock (${n(a.blk)}) is bad.`, { preenOk: true, preenNoMsg: true });
export const PR_1_BAD_GROUP_DESCRIPTORS = def(0x01001c, "PR_1_BAD_GROUP_DESCRIPTORS", "blocks", "", (a) => `Warning: Group ${n(a.group)}'s copy of the group descriptors has a bad block (${n(a.blk)}).`, { preenOk: true, preenNoMsg: true });
export const PR_1_BBINODE_BAD_METABLOCK_PROMPT = def(0x010016, "PR_1_BBINODE_BAD_METABLOCK_PROMPT", "blocks", "Continue", () =>
  "\nThe bad block inode has probably been corrupted.  You probably\nshould stop now and run e2fsck -c to scan for bad blocks\nin the filesystem.", { fatal: true, preenNoMsg: true });
export const PR_1_PROGERR_CLAIMED_BLOCK = def(0x01001d, "PR_1_PROGERR_CLAIMED_BLOCK", "blocks", "", (a) => `Programming error?  block #${n(a.blk)} claimed for no reason in process_bad_block.`, { preenOk: true });
export const PR_1_ISCAN_ERROR = def(0x010028, "PR_1_ISCAN_ERROR", "inode", "", (a) => `Error while scanning inodes (${n(a.ino)}): ${a.str ?? ""}`, { fatal: true });
export const PR_1_BLOCK_ITERATE = def(0x010029, "PR_1_BLOCK_ITERATE", "blocks", "", (a) => `Error while iterating over blocks in inode ${n(a.ino)}: ${a.str ?? ""}`, { fatal: true });
export const PR_1_SET_IMAGIC = def(0x01002f, "PR_1_SET_IMAGIC", "inode", "Clear", (a) => `Inode ${n(a.ino)} has imagic flag set.`);
export const PR_1_SET_IMMUTABLE = def(0x010030, "PR_1_SET_IMMUTABLE", "inode", "Clear", (a) => `Special (device/socket/fifo/symlink) file (inode ${n(a.ino)}) has immutable\nor append-only flag set.`, { noOk: true, preenOk: true, preenNo: true });
export const PR_1_SET_NONZSIZE = def(0x010032, "PR_1_SET_NONZSIZE", "inode", "Fix", (a) => `Special (device/socket/fifo) inode ${n(a.ino)} has non-zero size.`, { preenOk: true });
export const PR_1_JOURNAL_INODE_NOT_CLEAR = def(0x010034, "PR_1_JOURNAL_INODE_NOT_CLEAR", "journal", "Clear", () => "Journal inode is not in use, but contains data.", { preenOk: true });
export const PR_1_JOURNAL_BAD_MODE = def(0x010035, "PR_1_JOURNAL_BAD_MODE", "journal", "Fix", () => "Journal is not regular file.", { preenOk: true });
export const PR_1_LOW_DTIME = def(0x010036, "PR_1_LOW_DTIME", "orphan", "Fix", (a) => `Inode ${n(a.ino)} was part of the orphaned inode list.`, { latch: PR_LATCH_LOW_DTIME });
export const PR_1_ORPHAN_LIST_REFUGEES = def(0x010037, "PR_1_ORPHAN_LIST_REFUGEES", "orphan", "Fix", () => "Inodes that were part of a corrupted orphan linked list found.");
export const PR_1_READ_EA_BLOCK = def(0x010039, "PR_1_READ_EA_BLOCK", "xattr", "Clear", (a) => `Error reading extended attribute block ${n(a.blk)} for inode ${n(a.ino)}.`);
export const PR_1_BAD_EA_BLOCK = def(0x01003a, "PR_1_BAD_EA_BLOCK", "xattr", "Clear", (a) => `Inode ${n(a.ino)} has a bad extended attribute block ${n(a.blk)}.`);
export const PR_1_EXTATTR_REFCOUNT = def(0x01003c, "PR_1_EXTATTR_REFCOUNT", "xattr", "Fix", (a) => `Extended attribute block ${n(a.blk)} has reference count ${n(a.blkcount)}, should be ${n(a.num)}.`);
export const PR_1_EA_MULTI_BLOCK = def(0x01003e, "PR_1_EA_MULTI_BLOCK", "xattr", "Clear", (a) => `Extended attribute block ${n(a.blk)} has h_blocks > 1.`);
export const PR_1_EA_ALLOC_COLLISION = def(0x010040, "PR_1_EA_ALLOC_COLLISION", "xattr", "Clear", (a) => `Extended attribute block ${n(a.blk)} is corrupt (allocation collision).`);
export const PR_1_EA_BAD_NAME = def(0x010041, "PR_1_EA_BAD_NAME", "xattr", "Clear", (a) => `Extended attribute block ${n(a.blk)} is corrupt (invalid name).`);
export const PR_1_EA_BAD_VALUE = def(0x010042, "PR_1_EA_BAD_VALUE", "xattr", "Clear", (a) => `Extended attribute block ${n(a.blk)} is corrupt (invalid value).`);
export const PR_1_INODE_TOOBIG = def(0x010043, "PR_1_INODE_TOOBIG", "blocks", "Truncate", (a) => `Inode ${n(a.ino)} is too big.`);
export const PR_1_TOOBIG_DIR = def(0x010044, "PR_1_TOOBIG_DIR", "blocks", "Clear", (a) => `${upper(describeBlock(a.blkcount))} (${n(a.blk)}) causes directory to be too big.`, { latch: PR_LATCH_TOOBIG });
export const PR_1_TOOBIG_REG = def(0x010045, "PR_1_TOOBIG_REG", "blocks", "Clear", (a) => `${upper(describeBlock(a.blkcount))} (${n(a.blk)}) causes file to be too big.`, { latch: PR_LATCH_TOOBIG });
export const PR_1_TOOBIG_SYMLINK = def(0x010046, "PR_1_TOOBIG_SYMLINK", "blocks", "Clear", (a) => `${upper(describeBlock(a.blkcount))} (${n(a.blk)}) causes symlink to be too big.`, { latch: PR_LATCH_TOOBIG });
export const PR_1_HTREE_SET = def(0x010047, "PR_1_HTREE_SET", "htree", "Clear HTree index", (a) => `Inode ${n(a.ino)} has INDEX_FL flag set on filesystem without htree support.`, { preenOk: true });
export const PR_1_HTREE_NODIR = def(0x010048, "PR_1_HTREE_NODIR", "htree", "Clear HTree index", (a) => `Inode ${n(a.ino)} has INDEX_FL flag set but is not a directory.`, { preenOk: true });
export const PR_1_HTREE_BADROOT = def(0x010049, "PR_1_HTREE_BADROOT", "htree", "Clear HTree index", (a) => `HTREE directory inode ${n(a.ino)} has an invalid root node.`, { preenOk: true });
export const PR_1_HTREE_HASHV = def(0x01004a, "PR_1_HTREE_HASHV", "htree", "Clear HTree index", (a) => `HTREE directory inode ${n(a.ino)} has an unsupported hash version (${n(a.num)})`, { preenOk: true });
export const PR_1_HTREE_INCOMPAT = def(0x01004b, "PR_1_HTREE_INCOMPAT", "htree", "Clear HTree index", (a) => `HTREE directory inode ${n(a.ino)} uses an incompatible htree root node flag.`, { preenOk: true });
export const PR_2_FEATURE_LARGE_DIRS = def(0x020039, "PR_2_FEATURE_LARGE_DIRS", "htree", "Fix", () => "Filesystem has large directories, but lacks LARGE_DIR flag in superblock.", { preenOk: true });
export const PR_1_HTREE_DEPTH = def(0x01004c, "PR_1_HTREE_DEPTH", "htree", "Clear HTree index", (a) => `HTREE directory inode ${n(a.ino)} has a tree depth (${n(a.num)}) which is too big`, { preenOk: true });
export const PR_1_BB_FS_BLOCK = def(0x01004d, "PR_1_BB_FS_BLOCK", "blocks", "Clear", (a) => `Bad block inode has an indirect block (${n(a.blk)}) that conflicts with\nfilesystem metadata.`, { latch: PR_LATCH_BBLOCK });
export const PR_1_EXTATTR_READ_ABORT = def(0x01003b, "PR_1_EXTATTR_READ_ABORT", "xattr", "", (a) => `Error reading extended attribute block ${n(a.blk)} (${a.str ?? ""}).`, { fatal: true });
export const PR_1_EXTRA_ISIZE = def(0x01004f, "PR_1_EXTRA_ISIZE", "inode", "Fix", (a) => `Inode ${n(a.ino)} has a extra size (${n(a.extraIsize)}) which is invalid`, { preenOk: true });
export const PR_1_ATTR_NAME_LEN = def(0x010050, "PR_1_ATTR_NAME_LEN", "xattr", "Clear", (a) => `Extended attribute in inode ${n(a.ino)} has a namelen (${n(a.num)}) which is invalid`, { preenOk: true });
export const PR_1_ATTR_VALUE_OFFSET = def(0x010051, "PR_1_ATTR_VALUE_OFFSET", "xattr", "Clear", (a) => `Extended attribute in inode ${n(a.ino)} has a value offset (${n(a.num)}) which is invalid`, { preenOk: true });
export const PR_1_ATTR_VALUE_BLOCK = def(0x010052, "PR_1_ATTR_VALUE_BLOCK", "xattr", "Clear", (a) => `Extended attribute in inode ${n(a.ino)} has a value block (${n(a.num)}) which is invalid (must be 0)`, { preenOk: true });
export const PR_1_ATTR_VALUE_SIZE = def(0x010053, "PR_1_ATTR_VALUE_SIZE", "xattr", "Clear", (a) => `Extended attribute in inode ${n(a.ino)} has a value size (${n(a.num)}) which is invalid`, { preenOk: true });
export const PR_1_ATTR_HASH = def(0x010054, "PR_1_ATTR_HASH", "xattr", "Clear", (a) => `Extended attribute in inode ${n(a.ino)} has a hash (${n(a.num)}) which is invalid`, { preenOk: true });
export const PR_1_TREAT_AS_DIRECTORY = def(0x010055, "PR_1_TREAT_AS_DIRECTORY", "inode", "Fix", (a) => `Inode ${n(a.ino)} is a ${a.str ?? "file"} but it looks like it is really a directory.`);
export const PR_1_READ_EXTENT = def(0x010056, "PR_1_READ_EXTENT", "extent", "Clear inode", (a) => `Error while reading over extent tree in inode ${n(a.ino)}: ${a.str ?? ""}`);
export const PR_1_EXTENT_BAD_START_BLK = def(0x010058, "PR_1_EXTENT_BAD_START_BLK", "extent", "Clear", (a) => `Inode ${n(a.ino)} has an invalid extent\n\t(logical block ${n(a.blk2)}, invalid physical block ${n(a.blk)}, len ${n(a.num)})`);
export const PR_1_EXTENT_ENDS_BEYOND = def(0x010059, "PR_1_EXTENT_ENDS_BEYOND", "extent", "Clear", (a) => `Inode ${n(a.ino)} has an invalid extent\n\t(logical block ${n(a.blk2)}, physical block ${n(a.blk)}, invalid len ${n(a.num)})`);
export const PR_1_EXTENTS_SET = def(0x01005a, "PR_1_EXTENTS_SET", "extent", "Clear", (a) => `Inode ${n(a.ino)} has EXTENTS_FL flag set on filesystem without extents support.`);
export const PR_1_EXTENT_FEATURE = def(0x01005b, "PR_1_EXTENT_FEATURE", "extent", "Fix", (a) => `Inode ${n(a.ino)} is in extent format, but superblock is missing EXTENTS feature`);
export const PR_1_UNSET_EXTENT_FL = def(0x01005c, "PR_1_UNSET_EXTENT_FL", "extent", "Fix", (a) => `Inode ${n(a.ino)} missing EXTENT_FL, but is in extents format`, { preenOk: true });
export const PR_1_FAST_SYMLINK_EXTENT_FL = def(0x01005d, "PR_1_FAST_SYMLINK_EXTENT_FL", "symlink", "Clear", (a) => `Fast symlink ${n(a.ino)} has EXTENT_FL set.`);
export const PR_1_OUT_OF_ORDER_EXTENTS = def(0x01005e, "PR_1_OUT_OF_ORDER_EXTENTS", "extent", "Clear", (a) => `Inode ${n(a.ino)} has out of order extents\n\t(invalid logical block ${n(a.blk2)}, physical block ${n(a.blk)}, len ${n(a.num)})`);
export const PR_1_EXTENT_HEADER_INVALID = def(0x01005f, "PR_1_EXTENT_HEADER_INVALID", "extent", "Clear", (a) => `Inode ${n(a.ino)} has an invalid extent node (blk ${n(a.blk)}, lblk ${n(a.blk2)})`);
export const PR_1_QUOTA_BAD_MODE = def(0x010062, "PR_1_QUOTA_BAD_MODE", "quota", "Clear", () => "Quota inode is not a regular file.", { preenOk: true });
export const PR_1_QUOTA_INODE_NOT_CLEAR = def(0x010063, "PR_1_QUOTA_INODE_NOT_CLEAR", "quota", "Clear", () => "Quota inode is not in use, but contains data.", { preenOk: true });
export const PR_1_INVALID_BAD_INODE = def(0x010065, "PR_1_INVALID_BAD_INODE", "inode", "Clear", () => "The bad block inode looks invalid.");
export const PR_1_EXTENT_LENGTH_ZERO = def(0x010066, "PR_1_EXTENT_LENGTH_ZERO", "extent", "Clear", (a) => `Inode ${n(a.ino)} has zero length extent\n\t(invalid logical block ${n(a.blk2)}, physical block ${n(a.blk)})`);
export const PR_1_INODE_IS_GARBAGE = def(0x010067, "PR_1_INODE_IS_GARBAGE", "checksum", "Clear", (a) => `Inode ${n(a.ino)} seems to contain garbage.`);
export const PR_1_INODE_ONLY_CSUM_INVALID = def(0x010068, "PR_1_INODE_ONLY_CSUM_INVALID", "checksum", "Fix", (a) => `Inode ${n(a.ino)} passes checks, but checksum does not match inode.`, { preenOk: true });
export const PR_1_INODE_EA_ALLOC_COLLISION = def(0x010069, "PR_1_INODE_EA_ALLOC_COLLISION", "xattr", "Clear", (a) => `Inode ${n(a.ino)} extended attribute is corrupt (allocation collision).`);
export const PR_1_EXTENT_ONLY_CSUM_INVALID = def(0x01006a, "PR_1_EXTENT_ONLY_CSUM_INVALID", "checksum", "Fix", (a) => `Inode ${n(a.ino)} extent block passes checks, but checksum does not match extent\n\t(logical block ${n(a.blk2)}, physical block ${n(a.blk)}, len ${n(a.num)})`);
export const PR_1_EA_BLOCK_ONLY_CSUM_INVALID = def(0x01006c, "PR_1_EA_BLOCK_ONLY_CSUM_INVALID", "checksum", "Fix", (a) => `Inode ${n(a.ino)} extended attribute block ${n(a.blk)} passes checks, but checksum does not match block.`);
export const PR_1_EXTENT_INDEX_START_INVALID = def(0x01006d, "PR_1_EXTENT_INDEX_START_INVALID", "extent", "Fix", (a) => `Interior extent node level ${n(a.num)} of inode ${n(a.ino)}:\nLogical start ${n(a.blk)} does not match logical start ${n(a.blk2)} at next level.`);
export const PR_1_EXTENT_END_OUT_OF_BOUNDS = def(0x01006e, "PR_1_EXTENT_END_OUT_OF_BOUNDS", "extent", "Clear", (a) => `Inode ${n(a.ino)}, end of extent exceeds allowed value\n\t(logical block ${n(a.blk2)}, physical block ${n(a.blk)}, len ${n(a.num)})`);
export const PR_1_INLINE_DATA_FEATURE = def(0x01006f, "PR_1_INLINE_DATA_FEATURE", "inline", "Fix", (a) => `Inode ${n(a.ino)} has inline data, but superblock is missing INLINE_DATA feature`, { preenOk: true });
export const PR_1_INLINE_DATA_SET = def(0x010070, "PR_1_INLINE_DATA_SET", "inline", "Clear", (a) => `Inode ${n(a.ino)} has INLINE_DATA_FL flag on filesystem without inline data support.`);
export const PR_1_CRITICAL_METADATA_COLLISION = def(0x010071, "PR_1_CRITICAL_METADATA_COLLISION", "blocks", "", (a) => `Inode ${n(a.ino)} block ${n(a.blk)} conflicts with critical metadata, skipping block checks.`);
export const PR_1_COLLAPSE_DBLOCK = def(0x010072, "PR_1_COLLAPSE_DBLOCK", "directory", "Fix", (a) => `Directory inode ${n(a.ino)} block ${n(a.blk)} should be at block ${n(a.blk2)}.`);
export const PR_1_UNINIT_DBLOCK = def(0x010073, "PR_1_UNINIT_DBLOCK", "directory", "Fix", (a) => `Directory inode ${n(a.ino)} has extent marked uninitialized at block ${n(a.blk2)}.`, { preenOk: true });
export const PR_1_MISALIGNED_CLUSTER = def(0x010074, "PR_1_MISALIGNED_CLUSTER", "blocks", "", (a) => `Inode ${n(a.ino)} logical block ${n(a.blk)} (physical block ${n(a.blk2)}) violates cluster allocation rules.\nWill fix in pass 1B.`);
export const PR_1_INLINE_DATA_NO_ATTR = def(0x010075, "PR_1_INLINE_DATA_NO_ATTR", "inline", "Truncate", (a) => `Inode ${n(a.ino)} has INLINE_DATA_FL flag but extended attribute not found.`);
export const PR_1_SPECIAL_EXTENTS_IDATA = def(0x010076, "PR_1_SPECIAL_EXTENTS_IDATA", "inode", "Clear", (a) => `Special (device/socket/fifo) file (inode ${n(a.ino)}) has extents\nor inline-data flag set.`, { noOk: true, preenOk: true, preenNo: true });
export const PR_1_CLEAR_INLINE_DATA_FOR_EXTENT = def(0x010077, "PR_1_CLEAR_INLINE_DATA_FOR_EXTENT", "inline", "Fix", (a) => `Inode ${n(a.ino)} has extent header but inline data flag is set.`);
export const PR_1_CLEAR_EXTENT_FOR_INLINE_DATA = def(0x010078, "PR_1_CLEAR_EXTENT_FOR_INLINE_DATA", "inline", "Fix", (a) => `Inode ${n(a.ino)} seems to have inline data but extent flag is set.`);
export const PR_1_CLEAR_EXTENT_INLINE_DATA_FLAGS = def(0x010079, "PR_1_CLEAR_EXTENT_INLINE_DATA_FLAGS", "inline", "Fix", (a) => `Inode ${n(a.ino)} seems to have block map but inline data and extent flags set.`);
export const PR_1_CLEAR_EXTENT_INLINE_DATA_INODE = def(0x01007a, "PR_1_CLEAR_EXTENT_INLINE_DATA_INODE", "inline", "Clear inode", (a) => `Inode ${n(a.ino)} has inline data and extent flags set but i_block contains junk.`);
export const PR_1_EXTENT_COLLISION = def(0x01007d, "PR_1_EXTENT_COLLISION", "extent", "Clear", (a) => `Inode ${n(a.ino)} has a duplicate extent mapping\n\t(logical block ${n(a.blk2)}, invalid physical block ${n(a.blk)}, len ${n(a.num)})`);
export const PR_1_NO_BIGALLOC_BLOCKMAP_FILES = def(0x010080, "PR_1_NO_BIGALLOC_BLOCKMAP_FILES", "blocks", "Fix", (a) => `Inode ${n(a.ino)} on bigalloc filesystem cannot be block mapped.`);
export const PR_1_MISSING_EXTENT_HEADER = def(0x010081, "PR_1_MISSING_EXTENT_HEADER", "extent", "Clear inode", (a) => `Inode ${n(a.ino)} has corrupt extent header.`);
export const PR_1_EA_TIME_OUT_OF_RANGE = def(0x010082, "PR_1_EA_TIME_OUT_OF_RANGE", "inode", "Fix", (a) => `Timestamp(s) on inode ${n(a.ino)} beyond 2310-04-04 are likely pre-1970.`, { noOk: true, preenOk: true });
export const PR_1_ATTR_VALUE_EA_INODE = def(0x010083, "PR_1_ATTR_VALUE_EA_INODE", "xattr", "Clear", (a) => `Inode ${n(a.ino)} has illegal extended attribute value inode ${n(a.num)}.`, { preenOk: true });
export const PR_1_ATTR_NO_EA_INODE_FL = def(0x010085, "PR_1_ATTR_NO_EA_INODE_FL", "xattr", "Clear", (a) => `Inode ${n(a.ino)} has invalid extended attribute. EA inode ${n(a.num)} missing EA_INODE flag.`, { preenOk: true });
export const PR_1_MISSING_ENCRYPTION_XATTR = def(0x01008a, "PR_1_MISSING_ENCRYPTION_XATTR", "xattr", "Clear flag", (a) => `Inode ${n(a.ino)} has encrypt flag but no encryption extended attribute.`);
export const PR_1_CORRUPT_ENCRYPTION_XATTR = def(0x01008b, "PR_1_CORRUPT_ENCRYPTION_XATTR", "xattr", "Clear inode", (a) => `Encrypted inode ${n(a.ino)} has corrupt encryption extended attribute.`);
export const PR_1_CASEFOLD_NONDIR = def(0x010088, "PR_1_CASEFOLD_NONDIR", "inode", "Clear flag", (a) => `Inode ${n(a.ino)} has the casefold flag set but is not a directory.`);
export const PR_1_CASEFOLD_FEATURE = def(0x010089, "PR_1_CASEFOLD_FEATURE", "inode", "Clear flag", (a) => `Directory ${a.path ?? `<${n(a.ino)}>`} has the casefold flag, but the\ncasefold feature is not enabled.`);
export const PR_1_PASS_HEADER = def(0x010000, "PR_1_PASS_HEADER", "inode", "", () => "Pass 1: Checking inodes, blocks, and sizes");
export const PR_1_BLOCK_OVERLAPS_METADATA = def(0x01000f, "PR_1_BLOCK_OVERLAPS_METADATA", "blocks", "Clear", (a) => `${upper(describeBlock(a.blkcount))} (${n(a.blk)}) overlaps filesystem metadata in inode ${n(a.ino)}.`, { latch: PR_LATCH_BLOCK });
export const PR_1_DUP_BLOCKS_PREENSTOP = def(0x010014, "PR_1_DUP_BLOCKS_PREENSTOP", "dup_blocks", "", () => "Duplicate or bad block in use!");
export const PR_1_BBINODE_BAD_METABLOCK = def(0x010015, "PR_1_BBINODE_BAD_METABLOCK", "blocks", "Clear", (a) => `Bad block ${n(a.blk)} used as bad block inode indirect block.`, { latch: PR_LATCH_BBLOCK });
export const PR_1_BAD_PRIMARY_BLOCK = def(0x010017, "PR_1_BAD_PRIMARY_BLOCK", "blocks", "", () => "\nIf the block is really bad, the filesystem can not be fixed.", { afterCode: 0x010018 });
export const PR_1_BAD_PRIMARY_BLOCK_PROMPT = def(0x010018, "PR_1_BAD_PRIMARY_BLOCK_PROMPT", "blocks", "Clear", () => "You can remove this block from the bad block list and hope\nthat the block is really OK.  But there are no guarantees.\n", { preenNoMsg: true });
export const PR_1_RELOC_BLOCK_ALLOCATE = def(0x01001e, "PR_1_RELOC_BLOCK_ALLOCATE", "group_desc", "", (a) => `Error allocating ${n(a.num)} contiguous block(s) in block group ${n(a.group)} for ${a.str ?? ""}: ${a.err ?? ""}`, { preenOk: true });
export const PR_1_RELOC_MEMORY_ALLOCATE = def(0x01001f, "PR_1_RELOC_MEMORY_ALLOCATE", "group_desc", "", (a) => `Error allocating block buffer for relocating ${a.str ?? ""}`, { preenOk: true });
export const PR_1_RELOC_FROM_TO = def(0x010020, "PR_1_RELOC_FROM_TO", "group_desc", "", (a) => `Relocating group ${n(a.group)}'s ${a.str ?? ""} from ${n(a.blk)} to ${n(a.blk2)}...`, { preenOk: true });
export const PR_1_RELOC_TO = def(0x010021, "PR_1_RELOC_TO", "group_desc", "", (a) => `Relocating group ${n(a.group)}'s ${a.str ?? ""} to ${n(a.blk2)}...`, { preenOk: true });
export const PR_1_RELOC_READ_ERR = def(0x010022, "PR_1_RELOC_READ_ERR", "group_desc", "", (a) => `Warning: could not read block ${n(a.blk)} of ${a.str ?? ""}: ${a.err ?? ""}`, { preenOk: true });
export const PR_1_RELOC_WRITE_ERR = def(0x010023, "PR_1_RELOC_WRITE_ERR", "group_desc", "", (a) => `Warning: could not write block ${n(a.blk)} for ${a.str ?? ""}: ${a.err ?? ""}`, { preenOk: true });
export const PR_1_ALLOCATE_IBITMAP_ERROR = def(0x010024, "PR_1_ALLOCATE_IBITMAP_ERROR", "inode", "", (a) => `Error allocating inode bitmap (${n(a.num)}): ${a.str ?? ""}`, { fatal: true });
export const PR_1_ALLOCATE_BBITMAP_ERROR = def(0x010025, "PR_1_ALLOCATE_BBITMAP_ERROR", "blocks", "", (a) => `Error allocating block bitmap (${n(a.num)}): ${a.str ?? ""}`, { fatal: true });
export const PR_1_ALLOCATE_ICOUNT = def(0x010026, "PR_1_ALLOCATE_ICOUNT", "links", "", (a) => `Error allocating icount link information: ${a.str ?? ""}`, { fatal: true });
export const PR_1_ALLOCATE_DBCOUNT = def(0x010027, "PR_1_ALLOCATE_DBCOUNT", "directory", "", (a) => `Error allocating directory block array: ${a.str ?? ""}`, { fatal: true });
export const PR_1_ICOUNT_STORE = def(0x01002a, "PR_1_ICOUNT_STORE", "links", "", (a) => `Error storing inode count information (inode=${n(a.ino)}, count=${n(a.num)}): ${a.str ?? ""}`, { fatal: true });
export const PR_1_ADD_DBLOCK = def(0x01002b, "PR_1_ADD_DBLOCK", "directory", "", (a) => `Error storing directory block information (inode=${n(a.ino)}, block=${n(a.blk)}, num=${n(a.num)}): ${a.str ?? ""}`, { fatal: true });
export const PR_1_READ_INODE = def(0x01002c, "PR_1_READ_INODE", "inode", "", (a) => `Error reading inode ${n(a.ino)}: ${a.str ?? ""}`, { fatal: true });
export const PR_1_FS_REV_LEVEL = def(0x010033, "PR_1_FS_REV_LEVEL", "superblock", "Fix", () => "Filesystem has feature flag(s) set, but is a revision 0 filesystem.", { noOk: true, preenOk: true });
export const PR_1_ALLOCATE_REFCOUNT = def(0x010038, "PR_1_ALLOCATE_REFCOUNT", "xattr", "", (a) => `Error allocating refcount structure (${n(a.num)}): ${a.str ?? ""}`, { fatal: true });
export const PR_1_EXTATTR_WRITE_ABORT = def(0x01003d, "PR_1_EXTATTR_WRITE_ABORT", "xattr", "", (a) => `Error writing extended attribute block ${n(a.blk)} (${a.str ?? ""}).`, { fatal: true });
export const PR_1_EA_ALLOC_REGION_ABORT = def(0x01003f, "PR_1_EA_ALLOC_REGION_ABORT", "xattr", "", () => "Error allocating extended attribute region allocation structure.", { fatal: true });
export const PR_1_RESIZE_INODE_CREATE = def(0x01004e, "PR_1_RESIZE_INODE_CREATE", "superblock", "Continue", (a) => `Resize inode (re)creation failed: ${a.str ?? ""}.`);
export const PR_1_EXTENT_ITERATE_FAILURE = def(0x010057, "PR_1_EXTENT_ITERATE_FAILURE", "extent", "Clear inode", (a) => `Failed to iterate extents in inode ${n(a.ino)}\n\t(op ${a.str ?? ""}, blk ${n(a.blk)}, lblk ${n(a.blk2)}): ${a.err ?? ""}`);
export const PR_1_CONVERT_SUBCLUSTER = def(0x010061, "PR_1_CONVERT_SUBCLUSTER", "blocks", "", (a) => `Error converting subcluster block bitmap: ${a.str ?? ""}`, { fatal: true });
export const PR_1_QUOTA_INODE_NOT_HIDDEN = def(0x010064, "PR_1_QUOTA_INODE_NOT_HIDDEN", "quota", "Clear", () => "Quota inode is visible to the user.", { preenOk: true });
export const PR_1_BADBLOCKS_IN_BADBLOCKS = def(0x01007b, "PR_1_BADBLOCKS_IN_BADBLOCKS", "blocks", "Clear inode", () => "Bad block list says the bad block list inode is bad.");
export const PR_1_EXTENT_ALLOC_REGION_ABORT = def(0x01007c, "PR_1_EXTENT_ALLOC_REGION_ABORT", "extent", "", () => "Error allocating extent region allocation structure.", { fatal: true });
export const PR_1_ALLOCATE_ENCRYPTED_INODE_LIST = def(0x01007e, "PR_1_ALLOCATE_ENCRYPTED_INODE_LIST", "inode", "", (a) => `Error allocating ${n(a.num)} bytes of memory for encrypted inode list`, { fatal: true });
export const PR_1_EXTENT_BAD_MAX_DEPTH = def(0x01007f, "PR_1_EXTENT_BAD_MAX_DEPTH", "extent", "Fix", (a) => `Inode ${n(a.ino)} extent tree could be more shallow (${n(a.blk)}; could be <= ${n(a.blk2)})`, { noOk: true, preenOk: true, preenNo: true });
export const PR_1_ATTR_SET_EA_INODE_FL = def(0x010086, "PR_1_ATTR_SET_EA_INODE_FL", "xattr", "Fix", (a) => `EA inode ${n(a.num)} for parent inode ${n(a.ino)} missing EA_INODE flag.`, { preenOk: true });
export const PR_1_CLEAR_UNINIT_EXTENT = def(0x010087, "PR_1_CLEAR_UNINIT_EXTENT", "extent", "Clear", (a) => `Inode ${n(a.ino)} has extent marked uninitialized at block ${n(a.blk2)} (len ${n(a.num)}).`, { preenOk: true });
export const PR_1_HTREE_NEEDS_SIPHASH = def(0x01008d, "PR_1_HTREE_NEEDS_SIPHASH", "htree", "Clear HTree index", (a) => `HTREE directory inode ${n(a.ino)} uses hash version (${n(a.num)}), but should use SipHash (6) `, { preenOk: true });
export const PR_1_HTREE_CANNOT_SIPHASH = def(0x01008e, "PR_1_HTREE_CANNOT_SIPHASH", "htree", "Clear HTree index", (a) => `HTREE directory inode ${n(a.ino)} uses SipHash, but should not.`, { preenOk: true });
export const PR_1_ORPHAN_FILE_BAD_MODE = def(0x01008f, "PR_1_ORPHAN_FILE_BAD_MODE", "orphan", "Clear", (a) => `Orphan file inode ${n(a.ino)} is not regular file.`, { preenOk: true });
export const PR_1_ORPHAN_FILE_NOT_CLEAR = def(0x010090, "PR_1_ORPHAN_FILE_NOT_CLEAR", "orphan", "Clear", (a) => `Orphan file inode ${n(a.ino)} is not in use, but contains data.`, { preenOk: true });

// Pass 1B-1D: blocks claimed more than once (pass1b.c); pass 1E: extent trees rebuilt (extents.c)
export const PR_1B_DUP_BLOCK_HEADER = def(0x011001, "PR_1B_DUP_BLOCK_HEADER", "dup_blocks", "", (a) => `Multiply-claimed block(s) in inode ${n(a.ino)}:${a.str ?? ""}`);
export const PR_1B_BLOCK_ITERATE = def(0x011006, "PR_1B_BLOCK_ITERATE", "dup_blocks", "", (a) => `Error while iterating over blocks in inode ${n(a.ino)} (pass1b): ${a.str ?? ""}`);
/** e2fsck's code 0x013004 (0x013000 is PR_1D_PASS_HEADER). */
export const PR_1D_NUM_DUP_INODES = def(0x013004, "PR_1D_NUM_DUP_INODES", "dup_blocks", "", (a) => `(There are ${n(a.num)} inodes containing multiply-claimed blocks.)\n`);
export const PR_1D_DUP_FILE = def(0x013001, "PR_1D_DUP_FILE", "dup_blocks", "", (a) =>
  `File ${a.path ?? `<${n(a.ino)}>`} (inode #${n(a.ino)}, mod time ${a.str ?? ""}) \n  has ${n(a.blkcount)} multiply-claimed block(s), shared with ${n(a.num)} file(s):`);
export const PR_1D_DUP_FILE_LIST = def(0x013002, "PR_1D_DUP_FILE_LIST", "dup_blocks", "", (a) => `\t${a.path ?? `<${n(a.ino)}>`} (inode #${n(a.ino)}, mod time ${a.str ?? ""})`);
export const PR_1D_SHARE_METADATA = def(0x013003, "PR_1D_SHARE_METADATA", "dup_blocks", "", () => "\t<filesystem metadata>");
export const PR_1D_DUP_BLOCKS_DEALT = def(0x013005, "PR_1D_DUP_BLOCKS_DEALT", "dup_blocks", "", () => "Multiply-claimed blocks already reassigned or cloned.\n");
export const PR_1D_CLONE_QUESTION = def(0x013006, "PR_1D_CLONE_QUESTION", "dup_blocks", "Clone multiply-claimed blocks", () => "", { noOk: true });
export const PR_1D_DELETE_QUESTION = def(0x013007, "PR_1D_DELETE_QUESTION", "dup_blocks", "Delete file", () => "");

export const PR_1B_PASS_HEADER = def(0x011000, "PR_1B_PASS_HEADER", "dup_blocks", "", () => "\nRunning additional passes to resolve blocks claimed by more than one inode...\nPass 1B: Rescanning for multiply-claimed blocks");
export const PR_1B_DUP_BLOCK = def(0x011002, "PR_1B_DUP_BLOCK", "dup_blocks", "", (a) => ` ${n(a.blk)}`, { preenNoHdr: true, latch: PR_LATCH_DBLOCK });
export const PR_1B_DUP_BLOCK_END = def(0x011003, "PR_1B_DUP_BLOCK_END", "dup_blocks", "", () => "", { preenNoHdr: true });
export const PR_1B_ISCAN_ERROR = def(0x011004, "PR_1B_ISCAN_ERROR", "dup_blocks", "", (a) => `Error while scanning inodes (${n(a.ino)}): ${a.str ?? ""}`, { fatal: true });
export const PR_1B_ALLOCATE_IBITMAP_ERROR = def(0x011005, "PR_1B_ALLOCATE_IBITMAP_ERROR", "dup_blocks", "", (a) => `Error allocating inode bitmap (inode_dup_map): ${a.str ?? ""}`, { fatal: true });
export const PR_1B_ADJ_EA_REFCOUNT = def(0x011007, "PR_1B_ADJ_EA_REFCOUNT", "dup_blocks", "", (a) => `Error adjusting refcount for extended attribute block ${n(a.blk)} (inode ${n(a.ino)}): ${a.str ?? ""}`);
export const PR_1B_DUP_RANGE = def(0x011008, "PR_1B_DUP_RANGE", "dup_blocks", "", (a) => ` ${n(a.blk)}--${n(a.blk2)}`, { preenNoHdr: true, latch: PR_LATCH_DBLOCK });
export const PR_1C_PASS_HEADER = def(0x012000, "PR_1C_PASS_HEADER", "dup_blocks", "", () => "Pass 1C: Scanning directories for inodes with multiply-claimed blocks");
export const PR_1D_PASS_HEADER = def(0x013000, "PR_1D_PASS_HEADER", "dup_blocks", "", () => "Pass 1D: Reconciling multiply-claimed blocks");
export const PR_1D_CLONE_ERROR = def(0x013008, "PR_1D_CLONE_ERROR", "dup_blocks", "", (a) => `Couldn't clone file: ${a.str ?? ""}`);
export const PR_1E_PASS_HEADER = def(0x014000, "PR_1E_PASS_HEADER", "extent", "", () => "Pass 1E: Optimizing extent trees", { preenNoMsg: true });
export const PR_1E_OPTIMIZE_EXT_ERR = def(0x014001, "PR_1E_OPTIMIZE_EXT_ERR", "extent", "", (a) => `Failed to optimize extent tree ${a.path ?? "???"} (${n(a.ino)}): ${a.str ?? ""}`);
export const PR_1E_OPTIMIZE_EXT_HEADER = def(0x014002, "PR_1E_OPTIMIZE_EXT_HEADER", "extent", "", () => "Optimizing extent trees: ", { msgOnly: true });
export const PR_1E_OPTIMIZE_EXT = def(0x014003, "PR_1E_OPTIMIZE_EXT", "extent", "", (a) => ` ${n(a.ino)}`, { preenNoHdr: true, latch: PR_LATCH_OPTIMIZE_EXT });
export const PR_1E_OPTIMIZE_EXT_END = def(0x014004, "PR_1E_OPTIMIZE_EXT_END", "extent", "", () => "", { preenNoHdr: true });
export const PR_1E_MAX_EXTENT_TREE_DEPTH = def(0x014005, "PR_1E_MAX_EXTENT_TREE_DEPTH", "extent", "", (a) => `Internal error: max extent tree depth too large (${n(a.blk)}; expected=${n(a.blk2)}).`, { fatal: true });
export const PR_1E_CAN_COLLAPSE_EXTENT_TREE = def(0x014006, "PR_1E_CAN_COLLAPSE_EXTENT_TREE", "extent", "Optimize", (a) => `Inode ${n(a.ino)} extent tree (at level ${n(a.blk)}) could be shorter.`, { noOk: true, preenOk: true, preenNo: true, notAFix: true });
export const PR_1E_CAN_NARROW_EXTENT_TREE = def(0x014007, "PR_1E_CAN_NARROW_EXTENT_TREE", "extent", "Optimize", (a) => `Inode ${n(a.ino)} extent tree (at level ${n(a.blk)}) could be narrower.`, { noOk: true, preenOk: true, preenNo: true, notAFix: true });
// ---------------------------------------------------------------------------------------
// Pass 2: directory structure (pass2.c)

export const PR_2_BAD_INODE_DOT = def(0x020001, "PR_2_BAD_INODE_DOT", "directory", "Fix", (a) => `Invalid inode number for '.' in directory inode ${n(a.ino)}.`);
export const PR_2_BAD_INO = def(0x020002, "PR_2_BAD_INO", "directory", "Clear", (a) => `${a.entry ?? ""} has invalid inode #: ${n(a.ino2)}.`);
export const PR_2_UNUSED_INODE = def(0x020003, "PR_2_UNUSED_INODE", "directory", "Clear", (a) => `${a.entry ?? ""} has deleted/unused inode ${n(a.ino2)}.`, { preenOk: true });
export const PR_2_LINK_DOT = def(0x020004, "PR_2_LINK_DOT", "directory", "Clear", (a) => `${a.entry ?? ""} is a link to '.'`);
export const PR_2_BB_INODE = def(0x020005, "PR_2_BB_INODE", "directory", "Clear", (a) => `${a.entry ?? ""} points to inode (${n(a.ino2)}) located in a bad block.`);
export const PR_2_LINK_DIR = def(0x020006, "PR_2_LINK_DIR", "directory", "Clear", (a) => `${a.entry ?? ""} is a link to directory ${a.path2 ?? `<${n(a.ino2)}>`} (${n(a.ino2)}).`);
export const PR_2_LINK_ROOT = def(0x020007, "PR_2_LINK_ROOT", "directory", "Clear", (a) => `${a.entry ?? ""} is a link to the root inode.`);
export const PR_2_BAD_NAME = def(0x020008, "PR_2_BAD_NAME", "directory", "Fix", (a) => `${a.entry ?? ""} has illegal characters in its name.`);
export const PR_2_MISSING_DOT = def(0x020009, "PR_2_MISSING_DOT", "directory", "Fix", (a) => `Missing '.' in directory inode ${n(a.ino)}.`);
export const PR_2_MISSING_DOT_DOT = def(0x02000a, "PR_2_MISSING_DOT_DOT", "directory", "Fix", (a) => `Missing '..' in directory inode ${n(a.ino)}.`);
export const PR_2_1ST_NOT_DOT = def(0x02000b, "PR_2_1ST_NOT_DOT", "directory", "Fix", (a) => `First entry '${a.str ?? ""}' (inode=${n(a.ino2)}) in directory inode ${n(a.ino)} (${a.path ?? ""}) should be '.'`);
export const PR_2_2ND_NOT_DOT_DOT = def(0x02000c, "PR_2_2ND_NOT_DOT_DOT", "directory", "Fix", (a) => `Second entry '${a.str ?? ""}' (inode=${n(a.ino2)}) in directory inode ${n(a.ino)} should be '..'`);
export const PR_2_FADDR_ZERO = def(0x02000d, "PR_2_FADDR_ZERO", "inode", "Clear", (a) => `i_faddr for inode ${n(a.ino)} (${a.path ?? ""}) is ${n(a.num)}, should be zero.`);
export const PR_2_FILE_ACL_ZERO = def(0x02000e, "PR_2_FILE_ACL_ZERO", "xattr", "Clear", (a) => `i_file_acl for inode ${n(a.ino)} (${a.path ?? ""}) is ${n(a.num)}, should be zero.`);
export const PR_2_DIR_SIZE_HIGH_ZERO = def(0x02000f, "PR_2_DIR_SIZE_HIGH_ZERO", "i_size", "Clear", (a) => `i_size_high for inode ${n(a.ino)} (${a.path ?? ""}) is ${n(a.num)}, should be zero.`);
export const PR_2_BAD_MODE = def(0x020012, "PR_2_BAD_MODE", "inode", "Clear", (a) => `Inode ${n(a.ino)} (${a.path ?? ""}) has invalid mode (0${(a.mode ?? 0).toString(8)}).`);
export const PR_2_DIR_CORRUPTED = def(0x020013, "PR_2_DIR_CORRUPTED", "directory", "Salvage", (a) => `Directory inode ${n(a.ino)}, ${describeBlock(a.blkcount)}, offset ${n(a.num)}: directory corrupted`);
export const PR_2_FILENAME_LONG = def(0x020014, "PR_2_FILENAME_LONG", "directory", "Truncate", (a) => `Directory inode ${n(a.ino)}, ${describeBlock(a.blkcount)}, offset ${n(a.num)}: filename too long`);
export const PR_2_DIRECTORY_HOLE = def(0x020015, "PR_2_DIRECTORY_HOLE", "directory", "Allocate", (a) => `Directory inode ${n(a.ino)} has an unallocated ${describeBlock(a.blkcount)}.`);
export const PR_2_DOT_NULL_TERM = def(0x020016, "PR_2_DOT_NULL_TERM", "directory", "Fix", (a) => `'.' directory entry in directory inode ${n(a.ino)} is not NULL terminated`);
export const PR_2_DOT_DOT_NULL_TERM = def(0x020017, "PR_2_DOT_DOT_NULL_TERM", "directory", "Fix", (a) => `'..' directory entry in directory inode ${n(a.ino)} is not NULL terminated`);
export const PR_2_BAD_CHAR_DEV = def(0x020018, "PR_2_BAD_CHAR_DEV", "inode", "Clear", (a) => `Inode ${n(a.ino)} (${a.path ?? ""}) is an illegal character device.`);
export const PR_2_BAD_BLOCK_DEV = def(0x020019, "PR_2_BAD_BLOCK_DEV", "inode", "Clear", (a) => `Inode ${n(a.ino)} (${a.path ?? ""}) is an illegal block device.`);
export const PR_2_DUP_DOT = def(0x02001a, "PR_2_DUP_DOT", "directory", "Fix", (a) => `${a.entry ?? ""} is duplicate '.' entry.`);
export const PR_2_DUP_DOT_DOT = def(0x02001b, "PR_2_DUP_DOT_DOT", "directory", "Fix", (a) => `${a.entry ?? ""} is duplicate '..' entry.`);
export const PR_2_FINAL_RECLEN = def(0x02001d, "PR_2_FINAL_RECLEN", "directory", "Fix", (a) => `${a.entry ?? ""} has rec_len of ${n(a.num2)}, should be ${n(a.num)}.`);
export const PR_2_SPLIT_DOT = def(0x020024, "PR_2_SPLIT_DOT", "directory", "Split", (a) => `Directory entry for '.' in ${a.path ?? ""} (${n(a.ino)}) is big.`, { noOk: true });
export const PR_2_BAD_FIFO = def(0x020025, "PR_2_BAD_FIFO", "inode", "Clear", (a) => `Inode ${n(a.ino)} (${a.path ?? ""}) is an illegal FIFO.`);
export const PR_2_BAD_SOCKET = def(0x020026, "PR_2_BAD_SOCKET", "inode", "Clear", (a) => `Inode ${n(a.ino)} (${a.path ?? ""}) is an illegal socket.`);
export const PR_2_BAD_FILETYPE = def(0x020028, "PR_2_BAD_FILETYPE", "directory", "Fix", (a) => `${a.entry ?? ""} has an incorrect filetype (was ${n(a.num2)}, should be ${n(a.num)}).`);
export const PR_2_CLEAR_FILETYPE = def(0x020029, "PR_2_CLEAR_FILETYPE", "directory", "Clear", (a) => `${a.entry ?? ""} has filetype set.`, { preenOk: true });
export const PR_2_NULL_NAME = def(0x020030, "PR_2_NULL_NAME", "directory", "Clear", (a) => `${a.entry ?? ""} has a zero-length name.`);
export const PR_2_INVALID_SYMLINK = def(0x020031, "PR_2_INVALID_SYMLINK", "symlink", "Clear", (a) => `Symlink ${a.path ?? ""} (inode #${n(a.ino)}) is invalid.`);
export const PR_2_FILE_ACL_BAD = def(0x020032, "PR_2_FILE_ACL_BAD", "xattr", "Clear", (a) => `Extended attribute block for inode ${n(a.ino)} (${a.path ?? ""}) is invalid (${n(a.num)}).`);
export const PR_2_FEATURE_LARGE_FILES = def(0x020033, "PR_2_FEATURE_LARGE_FILES", "superblock", "Fix", () => "Filesystem contains large files, but lacks LARGE_FILE flag in superblock.", { preenOk: true });
export const PR_2_HTREE_NOTREF = def(0x020034, "PR_2_HTREE_NOTREF", "htree", "", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} not referenced`);
export const PR_2_HTREE_DUPREF = def(0x020035, "PR_2_HTREE_DUPREF", "htree", "", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} referenced twice`);
export const PR_2_HTREE_MIN_HASH = def(0x020036, "PR_2_HTREE_MIN_HASH", "htree", "", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} has bad min hash`);
export const PR_2_HTREE_MAX_HASH = def(0x020037, "PR_2_HTREE_MAX_HASH", "htree", "", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} has bad max hash`);
export const PR_2_HTREE_CLEAR = def(0x020038, "PR_2_HTREE_CLEAR", "htree", "Clear HTree index", (a) => `Invalid HTREE directory inode ${n(a.dir)} (${a.path ?? ""}).`);
export const PR_2_HTREE_BADBLK = def(0x02003a, "PR_2_HTREE_BADBLK", "htree", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.dir)} (${a.path ?? ""}): bad block number ${n(a.blk)}.`);
export const PR_2_HTREE_BAD_ROOT = def(0x02003c, "PR_2_HTREE_BAD_ROOT", "htree", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.dir)}: root node is invalid`, { preenOk: true });
export const PR_2_HTREE_BAD_LIMIT = def(0x02003d, "PR_2_HTREE_BAD_LIMIT", "htree", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} has invalid limit (${n(a.num)})`, { preenOk: true });
export const PR_2_HTREE_BAD_COUNT = def(0x02003e, "PR_2_HTREE_BAD_COUNT", "htree", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} has invalid count (${n(a.num)})`, { preenOk: true });
export const PR_2_HTREE_HASH_ORDER = def(0x02003f, "PR_2_HTREE_HASH_ORDER", "htree", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} has an unordered hash table`, { preenOk: true });
export const PR_2_HTREE_BAD_DEPTH = def(0x020040, "PR_2_HTREE_BAD_DEPTH", "htree", "", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} has invalid depth (${n(a.num)})`);
export const PR_2_DUPLICATE_DIRENT = def(0x020041, "PR_2_DUPLICATE_DIRENT", "directory", "Clear", (a) => `Duplicate ${lower(a.entry ?? "")} found.`);
export const PR_2_NON_UNIQUE_FILE_NO_RENAME = def(0x020054, "PR_2_NON_UNIQUE_FILE_NO_RENAME", "directory", "Clear", (a) => `Duplicate filename ${lower(a.entry ?? "")} found.`);
export const PR_2_NON_UNIQUE_FILE = def(0x020042, "PR_2_NON_UNIQUE_FILE", "directory", "", (a) => `${a.entry ?? ""} has a non-unique filename.\nRename to ${a.str ?? ""}`, { nullPrompt: true });
export const PR_2_REPORT_DUP_DIRENT = def(0x020043, "PR_2_REPORT_DUP_DIRENT", "directory", "", (a) => `Duplicate entry '${a.str ?? ""}' found.\n\tMarking ${a.path ?? ""} (${n(a.ino)}) to be rebuilt.\n`);
export const PR_2_BLOCKS_HI_ZERO = def(0x020044, "PR_2_BLOCKS_HI_ZERO", "i_blocks", "Clear", (a) => `i_blocks_hi for inode ${n(a.ino)} (${a.path ?? ""}) is ${n(a.num)}, should be zero.`);
export const PR_2_UNEXPECTED_HTREE_BLOCK = def(0x020045, "PR_2_UNEXPECTED_HTREE_BLOCK", "htree", "Clear HTree index", (a) => `Unexpected block in HTREE directory inode ${n(a.dir)} (${a.path ?? ""}).`);
export const PR_2_INOREF_BG_INO_UNINIT = def(0x020046, "PR_2_INOREF_BG_INO_UNINIT", "group_desc", "Fix", (a) => `${a.entry ?? ""} references inode ${n(a.ino2)} in group ${n(a.group)} where _INODE_UNINIT is set.`, { preenOk: true });
export const PR_2_INOREF_IN_UNUSED = def(0x020047, "PR_2_INOREF_IN_UNUSED", "group_desc", "Fix", (a) => `${a.entry ?? ""} references inode ${n(a.ino2)} found in group ${n(a.group)}'s unused inodes area.`, { preenOk: true });
export const PR_2_I_FILE_ACL_HI_ZERO = def(0x020048, "PR_2_I_FILE_ACL_HI_ZERO", "xattr", "Clear", (a) => `i_file_acl_hi for inode ${n(a.ino)} (${a.path ?? ""}) is ${n(a.num)}, should be zero.`, { preenOk: true });
export const PR_2_HTREE_ROOT_CSUM_INVALID = def(0x020049, "PR_2_HTREE_ROOT_CSUM_INVALID", "checksum", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.ino)}: root node fails checksum.`, { preenOk: true });
export const PR_2_HTREE_NODE_CSUM_INVALID = def(0x02004a, "PR_2_HTREE_NODE_CSUM_INVALID", "checksum", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.ino)}: internal node fails checksum.`, { preenOk: true });
export const PR_2_LEAF_NODE_MISSING_CSUM = def(0x02004c, "PR_2_LEAF_NODE_MISSING_CSUM", "checksum", "Fix", (a) => `Directory inode ${n(a.ino)}, ${describeBlock(a.blkcount)}, offset ${n(a.num)}: directory has no checksum.`, { preenOk: true });
export const PR_2_LEAF_NODE_ONLY_CSUM_INVALID = def(0x02004d, "PR_2_LEAF_NODE_ONLY_CSUM_INVALID", "checksum", "Fix", (a) => `Directory inode ${n(a.ino)}, ${describeBlock(a.blkcount)}: directory passes checks but fails checksum.`, { preenOk: true });
export const PR_2_BAD_INLINE_DIR_SIZE = def(0x02004e, "PR_2_BAD_INLINE_DIR_SIZE", "inline", "Fix", (a) => `Inline directory inode ${n(a.ino)} size (${n(a.num)}) must be a multiple of 4.`);
export const PR_2_UNENCRYPTED_FILE = def(0x020051, "PR_2_UNENCRYPTED_FILE", "directory", "Clear", (a) => `Encrypted ${lower(a.entry ?? "")} references unencrypted inode ${n(a.ino2)}.`);
export const PR_2_INCONSISTENT_ENCRYPTION_POLICY = def(0x020052, "PR_2_INCONSISTENT_ENCRYPTION_POLICY", "directory", "Clear", (a) => `Encrypted ${lower(a.entry ?? "")} references inode ${n(a.ino2)}, which has a different encryption policy.`);
export const PR_2_BAD_ENCODED_NAME = def(0x020053, "PR_2_BAD_ENCODED_NAME", "directory", "Fix", (a) => `${a.entry ?? ""} has illegal UTF-8 characters in its name.`);
export const PR_2_BAD_ENCRYPTED_NAME = def(0x020050, "PR_2_BAD_ENCRYPTED_NAME", "directory", "Clear", (a) => `Encrypted ${lower(a.entry ?? "")} is too short.`);
export const PR_2_PASS_HEADER = def(0x020000, "PR_2_PASS_HEADER", "directory", "", () => "Pass 2: Checking directory structure");
export const PR_2_FRAG_ZERO = def(0x020010, "PR_2_FRAG_ZERO", "inode", "Clear", (a) => `i_frag for inode ${n(a.ino)} (${a.path ?? "???"}) is ${n(a.num)}, should be zero.`);
export const PR_2_FSIZE_ZERO = def(0x020011, "PR_2_FSIZE_ZERO", "inode", "Clear", (a) => `i_fsize for inode ${n(a.ino)} (${a.path ?? "???"}) is ${n(a.num)}, should be zero.`);
export const PR_2_NO_DIRINFO = def(0x02001c, "PR_2_NO_DIRINFO", "directory", "", (a) => `Internal error: couldn't find dir_info for ${n(a.ino)}.`, { fatal: true });
export const PR_2_ALLOCATE_ICOUNT = def(0x02001e, "PR_2_ALLOCATE_ICOUNT", "links", "", (a) => `Error allocating icount structure: ${a.str ?? ""}`, { fatal: true });
export const PR_2_DBLIST_ITERATE = def(0x02001f, "PR_2_DBLIST_ITERATE", "directory", "", (a) => `Error iterating over directory blocks: ${a.str ?? ""}`, { fatal: true });
export const PR_2_READ_DIRBLOCK = def(0x020020, "PR_2_READ_DIRBLOCK", "directory", "Continue", (a) => `Error reading directory block ${n(a.blk)} (inode ${n(a.ino)}): ${a.str ?? ""}`);
export const PR_2_WRITE_DIRBLOCK = def(0x020021, "PR_2_WRITE_DIRBLOCK", "directory", "Continue", (a) => `Error writing directory block ${n(a.blk)} (inode ${n(a.ino)}): ${a.str ?? ""}`);
export const PR_2_ALLOC_DIRBOCK = def(0x020022, "PR_2_ALLOC_DIRBOCK", "directory", "", (a) => `Error allocating new directory block for inode ${n(a.ino)} (${a.str ?? ""}): ${a.err ?? ""}`);
export const PR_2_DEALLOC_INODE = def(0x020023, "PR_2_DEALLOC_INODE", "inode", "", (a) => `Error deallocating inode ${n(a.ino)}: ${a.str ?? ""}`, { fatal: true });
export const PR_2_SET_FILETYPE = def(0x020027, "PR_2_SET_FILETYPE", "directory", "", (a) => `Setting filetype for ${lower(a.entry ?? "")} to ${n(a.num)}.`, { noOk: true, preenOk: true, noNoMsg: true });
export const PR_2_ADJ_EA_REFCOUNT = def(0x02003b, "PR_2_ADJ_EA_REFCOUNT", "xattr", "", (a) => `Error adjusting refcount for extended attribute block ${n(a.blk)} (inode ${n(a.ino)}): ${a.str ?? ""}`, { fatal: true });
export const PR_2_FIX_INLINE_DIR_FAILED = def(0x02004f, "PR_2_FIX_INLINE_DIR_FAILED", "inline", "Truncate", (a) => `Fixing size of inline directory inode ${n(a.ino)} failed.`);

/** Not an e2fsck problem code: e2fsck -n gives up here (E2F_FLAG_ABORT, "e2fsck: aborted"). */
export const PR_2_ABORT = def(0x02f001, "EXT4TS_2_ABORT", "directory", "", (a) => a.str ?? "e2fsck: aborted", { fatal: true });

// ---------------------------------------------------------------------------------------
// Pass 3: connectivity (pass3.c); pass 3A: directories rehashed (rehash.c)

export const PR_3_NO_ROOT_INODE = def(0x030001, "PR_3_NO_ROOT_INODE", "connectivity", "Allocate", () => "Root inode not allocated.");
export const PR_3_UNCONNECTED_DIR = def(0x030003, "PR_3_UNCONNECTED_DIR", "connectivity", "Connect to /lost+found", (a) => `Unconnected directory inode ${n(a.ino)} (was in ${a.path ?? `<${n(a.dir)}>`})`);
export const PR_3_BAD_DOT_DOT = def(0x030005, "PR_3_BAD_DOT_DOT", "connectivity", "Fix", (a) =>
  `'..' in ${a.path ?? `<${n(a.ino)}>`} (${n(a.ino)}) is ${a.path2 ?? `<${n(a.ino2)}>`} (${n(a.ino2)}), should be ${a.str ?? `<${n(a.dir)}>`} (${n(a.dir)}).`);
export const PR_3_ROOT_NOT_DIR_ABORT = def(0x030014, "PR_3_ROOT_NOT_DIR_ABORT", "connectivity", "", () => "Root inode is not a directory; aborting.", { fatal: true });
export const PR_3_NO_ROOT_INODE_ABORT = def(0x030015, "PR_3_NO_ROOT_INODE_ABORT", "connectivity", "", () => "Cannot proceed without a root inode.", { fatal: true });

export const PR_3_PASS_HEADER = def(0x030000, "PR_3_PASS_HEADER", "connectivity", "", () => "Pass 3: Checking directory connectivity");
export const PR_3_EXPAND_LF_DIR = def(0x030002, "PR_3_EXPAND_LF_DIR", "connectivity", "Expand", () => "No room in lost+found directory.");
export const PR_3_NO_LF_DIR = def(0x030004, "PR_3_NO_LF_DIR", "connectivity", "Create", () => "/lost+found not found.", { preenOk: true });
export const PR_3_NO_LPF = def(0x030006, "PR_3_NO_LPF", "connectivity", "", () => "Bad or non-existent /lost+found.  Cannot reconnect.");
export const PR_3_CANT_EXPAND_LPF = def(0x030007, "PR_3_CANT_EXPAND_LPF", "connectivity", "", (a) => `Could not expand /lost+found: ${a.str ?? ""}`);
export const PR_3_CANT_RECONNECT = def(0x030008, "PR_3_CANT_RECONNECT", "connectivity", "", (a) => `Could not reconnect ${n(a.ino)}: ${a.str ?? ""}`);
export const PR_3_ERR_FIND_LPF = def(0x030009, "PR_3_ERR_FIND_LPF", "connectivity", "", (a) => `Error while trying to find /lost+found: ${a.str ?? ""}`);
export const PR_3_ERR_LPF_NEW_BLOCK = def(0x03000a, "PR_3_ERR_LPF_NEW_BLOCK", "connectivity", "", (a) => `ext2fs_new_block: ${a.str ?? ""} while trying to create /lost+found directory`);
export const PR_3_ERR_LPF_NEW_INODE = def(0x03000b, "PR_3_ERR_LPF_NEW_INODE", "connectivity", "", (a) => `ext2fs_new_inode: ${a.str ?? ""} while trying to create /lost+found directory`);
export const PR_3_ERR_LPF_NEW_DIR_BLOCK = def(0x03000c, "PR_3_ERR_LPF_NEW_DIR_BLOCK", "connectivity", "", (a) => `ext2fs_new_dir_block: ${a.str ?? ""} while creating new directory block`);
export const PR_3_ERR_LPF_WRITE_BLOCK = def(0x03000d, "PR_3_ERR_LPF_WRITE_BLOCK", "connectivity", "", (a) => `ext2fs_write_dir_block: ${a.str ?? ""} while writing the directory block for /lost+found`);
export const PR_3_ADJUST_INODE = def(0x03000e, "PR_3_ADJUST_INODE", "connectivity", "", (a) => `Error while adjusting inode count on inode ${n(a.ino)}`);
export const PR_3_FIX_PARENT_ERR = def(0x03000f, "PR_3_FIX_PARENT_ERR", "connectivity", "", (a) => `Couldn't fix parent of inode ${n(a.ino)}: ${a.str ?? ""}\n`);
export const PR_3_FIX_PARENT_NOFIND = def(0x030010, "PR_3_FIX_PARENT_NOFIND", "connectivity", "", (a) => `Couldn't fix parent of inode ${n(a.ino)}: Couldn't find parent directory entry\n`);
export const PR_3_ALLOCATE_IBITMAP_ERROR = def(0x030011, "PR_3_ALLOCATE_IBITMAP_ERROR", "connectivity", "", (a) => `Error allocating inode bitmap (${n(a.num)}): ${a.str ?? ""}`, { fatal: true });
export const PR_3_CREATE_ROOT_ERROR = def(0x030012, "PR_3_CREATE_ROOT_ERROR", "connectivity", "", (a) => `Error creating root directory (${a.str ?? ""}): ${a.err ?? ""}`, { fatal: true });
export const PR_3_CREATE_LPF_ERROR = def(0x030013, "PR_3_CREATE_LPF_ERROR", "connectivity", "", (a) => `Error creating /lost+found directory (${a.str ?? ""}): ${a.err ?? ""}`);
export const PR_3_NO_DIRINFO = def(0x030016, "PR_3_NO_DIRINFO", "connectivity", "", (a) => `Internal error: couldn't find dir_info for ${n(a.ino)}.`, { fatal: true });
export const PR_3_LPF_NOTDIR = def(0x030017, "PR_3_LPF_NOTDIR", "connectivity", "Unlink", (a) => `/lost+found is not a directory (ino=${n(a.ino)})`);
export const PR_3_LPF_INLINE_DATA = def(0x030018, "PR_3_LPF_INLINE_DATA", "connectivity", "Clear", () => "/lost+found has inline data");
export const PR_3_LPF_NO_SPACE = def(0x030019, "PR_3_LPF_NO_SPACE", "connectivity", "", () => "Cannot allocate space for /lost+found.\nPlace lost files in root directory instead", { nullPrompt: true });
export const PR_3_NO_SPACE_TO_RECOVER = def(0x03001a, "PR_3_NO_SPACE_TO_RECOVER", "connectivity", "", () => "Insufficient space to recover lost files!\nMove data off the filesystem and re-run e2fsck.\n");
export const PR_3_LPF_ENCRYPTED = def(0x03001b, "PR_3_LPF_ENCRYPTED", "connectivity", "Clear", () => "/lost+found is encrypted");
export const PR_3_LOOPED_DIR = def(0x03001d, "PR_3_LOOPED_DIR", "connectivity", "Connect to /lost+found", (a) => `Recursively looped directory inode ${n(a.ino)} (${a.path ?? "???"})`);
export const PR_3A_PASS_HEADER = def(0x031000, "PR_3A_PASS_HEADER", "htree", "", () => "Pass 3A: Optimizing directories", { preenNoMsg: true });
export const PR_3A_OPTIMIZE_ITER = def(0x031001, "PR_3A_OPTIMIZE_ITER", "htree", "", (a) => `Failed to create dirs_to_hash iterator: ${a.str ?? ""}`);
export const PR_3A_OPTIMIZE_DIR_ERR = def(0x031002, "PR_3A_OPTIMIZE_DIR_ERR", "htree", "", (a) => `Failed to optimize directory ${a.path ?? "???"} (${n(a.dir)}): ${a.str ?? ""}`);
export const PR_3A_OPTIMIZE_DIR_HEADER = def(0x031003, "PR_3A_OPTIMIZE_DIR_HEADER", "htree", "", () => "Optimizing directories: ", { msgOnly: true });
export const PR_3A_OPTIMIZE_DIR = def(0x031004, "PR_3A_OPTIMIZE_DIR", "htree", "", (a) => ` ${n(a.dir)}`, { preenNoHdr: true, latch: PR_LATCH_OPTIMIZE_DIR });
export const PR_3A_OPTIMIZE_DIR_END = def(0x031005, "PR_3A_OPTIMIZE_DIR_END", "htree", "", () => "", { preenNoHdr: true });
// ---------------------------------------------------------------------------------------
// Pass 4: reference counts (pass4.c)

export const PR_4_ZERO_LEN_INODE = def(0x040001, "PR_4_ZERO_LEN_INODE", "connectivity", "Clear", (a) => `Unattached zero-length inode ${n(a.ino)}.`, { noOk: true, preenOk: true });
export const PR_4_UNATTACHED_INODE = def(0x040002, "PR_4_UNATTACHED_INODE", "connectivity", "Connect to /lost+found", (a) => `Unattached inode ${n(a.ino)}`);
export const PR_4_BAD_REF_COUNT = def(0x040003, "PR_4_BAD_REF_COUNT", "links", "Fix", (a) => `Inode ${n(a.ino)} ref count is ${n(a.links)}, should be ${n(a.num)}.`, { preenOk: true });
export const PR_4_INCONSISTENT_COUNT = def(0x040004, "PR_4_INCONSISTENT_COUNT", "links", "", (a) =>
  `WARNING: PROGRAMMING BUG IN E2FSCK!\n\tOR SOME BONEHEAD (YOU) IS CHECKING A MOUNTED (LIVE) FILESYSTEM.\ninode_link_info[${n(a.ino)}] is ${n(a.num)}, inode.i_links_count is ${n(a.links)}.  They should be the same!`);
export const PR_4_DIR_NLINK_FEATURE = def(0x040006, "PR_4_DIR_NLINK_FEATURE", "links", "Fix", () => "Directory exceeds max links, but no DIR_NLINK feature in superblock.");

export const PR_4_PASS_HEADER = def(0x040000, "PR_4_PASS_HEADER", "links", "", () => "Pass 4: Checking reference counts");
export const PR_4_EA_INODE_REF_COUNT = def(0x040005, "PR_4_EA_INODE_REF_COUNT", "links", "Fix", (a) => `Extended attribute inode ${n(a.ino)} ref count is ${n(a.num)}, should be ${n(a.num2)}.`, { preenOk: true });
export const PR_4_DIR_OVERFLOW_REF_COUNT = def(0x040007, "PR_4_DIR_OVERFLOW_REF_COUNT", "links", "Fix", (a) => `Directory inode ${n(a.ino)} ref count set to overflow but could be exact value ${n(a.num)}.`, { preenOk: true });
// ---------------------------------------------------------------------------------------
// Pass 5: group summaries (pass5.c)

export const PR_5_INODE_BMAP_PADDING = def(0x050001, "PR_5_INODE_BMAP_PADDING", "bitmap", "Fix", () => "Padding at end of inode bitmap is not set.", { preenOk: true });
export const PR_5_BLOCK_BMAP_PADDING = def(0x050002, "PR_5_BLOCK_BMAP_PADDING", "bitmap", "Fix", () => "Padding at end of block bitmap is not set.", { preenOk: true });
/** The whole latch (header, differences, end), as e2fsck prints it on one line. */
export const PR_5_BLOCK_BITMAP_HEADER = def(0x050003, "PR_5_BLOCK_BITMAP_HEADER", "bitmap", "Fix", (a) => `Block bitmap differences: ${a.str ?? ""}`, { preenOk: true, preenNoMsg: true });
export const PR_5_INODE_BITMAP_HEADER = def(0x050007, "PR_5_INODE_BITMAP_HEADER", "bitmap", "Fix", (a) => `Inode bitmap differences: ${a.str ?? ""}`, { preenOk: true, preenNoMsg: true });
export const PR_5_FREE_INODE_COUNT_GROUP = def(0x05000b, "PR_5_FREE_INODE_COUNT_GROUP", "counts", "Fix", (a) => `Free inodes count wrong for group #${n(a.group)} (${n(a.ino)}, counted=${n(a.ino2)}).`, { preenOk: true, preenNoMsg: true });
export const PR_5_FREE_DIR_COUNT_GROUP = def(0x05000c, "PR_5_FREE_DIR_COUNT_GROUP", "counts", "Fix", (a) => `Directories count wrong for group #${n(a.group)} (${n(a.ino)}, counted=${n(a.ino2)}).`, { preenOk: true, preenNoMsg: true });
export const PR_5_FREE_INODE_COUNT = def(0x05000d, "PR_5_FREE_INODE_COUNT", "counts", "Fix", (a) => `Free inodes count wrong (${n(a.ino)}, counted=${n(a.ino2)}).`, { noOk: true, preenOk: true, preenNoMsg: true });
export const PR_5_FREE_BLOCK_COUNT_GROUP = def(0x05000e, "PR_5_FREE_BLOCK_COUNT_GROUP", "counts", "Fix", (a) => `Free blocks count wrong for group #${n(a.group)} (${n(a.blk)}, counted=${n(a.blk2)}).`, { preenOk: true, preenNoMsg: true });
export const PR_5_FREE_BLOCK_COUNT = def(0x05000f, "PR_5_FREE_BLOCK_COUNT", "counts", "Fix", (a) => `Free blocks count wrong (${n(a.blk)}, counted=${n(a.blk2)}).`, { noOk: true, preenOk: true, preenNoMsg: true });
export const PR_5_INODE_BITMAP_CSUM_INVALID = def(0x05001a, "PR_5_INODE_BITMAP_CSUM_INVALID", "checksum", "Fix", (a) => `${a.str ?? ""}Group ${n(a.group)} inode bitmap does not match checksum.`, { preenOk: true, latch: PR_LATCH_IBITMAP });
export const PR_5_BLOCK_BITMAP_CSUM_INVALID = def(0x05001b, "PR_5_BLOCK_BITMAP_CSUM_INVALID", "checksum", "Fix", (a) => `${a.str ?? ""}Group ${n(a.group)} block bitmap does not match checksum.`, { preenOk: true, latch: PR_LATCH_BBITMAP });

export const PR_5_PASS_HEADER = def(0x050000, "PR_5_PASS_HEADER", "bitmap", "", () => "Pass 5: Checking group summary information");
export const PR_5_BLOCK_UNUSED = def(0x050004, "PR_5_BLOCK_UNUSED", "bitmap", "", (a) => ` -${n(a.blk)}`, { preenOk: true, preenNoMsg: true, latch: PR_LATCH_BBITMAP });
export const PR_5_BLOCK_USED = def(0x050005, "PR_5_BLOCK_USED", "bitmap", "", (a) => ` +${n(a.blk)}`, { preenOk: true, preenNoMsg: true, latch: PR_LATCH_BBITMAP });
export const PR_5_BLOCK_BITMAP_END = def(0x050006, "PR_5_BLOCK_BITMAP_END", "bitmap", "Fix", () => "", { preenOk: true, preenNoMsg: true });
export const PR_5_INODE_UNUSED = def(0x050008, "PR_5_INODE_UNUSED", "bitmap", "", (a) => ` -${n(a.ino)}`, { preenOk: true, preenNoMsg: true, latch: PR_LATCH_IBITMAP });
export const PR_5_INODE_USED = def(0x050009, "PR_5_INODE_USED", "bitmap", "", (a) => ` +${n(a.ino)}`, { preenOk: true, preenNoMsg: true, latch: PR_LATCH_IBITMAP });
export const PR_5_INODE_BITMAP_END = def(0x05000a, "PR_5_INODE_BITMAP_END", "bitmap", "Fix", () => "", { preenOk: true, preenNoMsg: true });
export const PR_5_BMAP_ENDPOINTS = def(0x050010, "PR_5_BMAP_ENDPOINTS", "bitmap", "", (a) => `PROGRAMMING ERROR: filesystem (#${n(a.num)}) bitmap endpoints (${n(a.blk)}, ${n(a.blk2)}) don't match calculated bitmap endpoints (${n(a.ino)}, ${n(a.ino2)})`, { fatal: true });
export const PR_5_FUDGE_BITMAP_ERROR = def(0x050011, "PR_5_FUDGE_BITMAP_ERROR", "bitmap", "", (a) => `Internal error: fudging end of bitmap (${n(a.num)})`, { fatal: true });
export const PR_5_COPY_IBITMAP_ERROR = def(0x050012, "PR_5_COPY_IBITMAP_ERROR", "bitmap", "", (a) => `Error copying in replacement inode bitmap: ${a.str ?? ""}`, { fatal: true });
export const PR_5_COPY_BBITMAP_ERROR = def(0x050013, "PR_5_COPY_BBITMAP_ERROR", "bitmap", "", (a) => `Error copying in replacement block bitmap: ${a.str ?? ""}`, { fatal: true });
export const PR_5_BLOCK_RANGE_UNUSED = def(0x050014, "PR_5_BLOCK_RANGE_UNUSED", "bitmap", "", (a) => ` -(${n(a.blk)}--${n(a.blk2)})`, { preenOk: true, preenNoMsg: true, latch: PR_LATCH_BBITMAP });
export const PR_5_BLOCK_RANGE_USED = def(0x050015, "PR_5_BLOCK_RANGE_USED", "bitmap", "", (a) => ` +(${n(a.blk)}--${n(a.blk2)})`, { preenOk: true, preenNoMsg: true, latch: PR_LATCH_BBITMAP });
export const PR_5_INODE_RANGE_UNUSED = def(0x050016, "PR_5_INODE_RANGE_UNUSED", "bitmap", "", (a) => ` -(${n(a.ino)}--${n(a.ino2)})`, { preenOk: true, preenNoMsg: true, latch: PR_LATCH_IBITMAP });
export const PR_5_INODE_RANGE_USED = def(0x050017, "PR_5_INODE_RANGE_USED", "bitmap", "", (a) => ` +(${n(a.ino)}--${n(a.ino2)})`, { preenOk: true, preenNoMsg: true, latch: PR_LATCH_IBITMAP });
export const PR_5_BLOCK_UNINIT = def(0x050018, "PR_5_BLOCK_UNINIT", "group_desc", "Fix", (a) => `Group ${n(a.group)} block(s) in use but group is marked BLOCK_UNINIT`, { preenOk: true });
export const PR_5_INODE_UNINIT = def(0x050019, "PR_5_INODE_UNINIT", "group_desc", "Fix", (a) => `Group ${n(a.group)} inode(s) in use but group is marked INODE_UNINIT`, { preenOk: true });
// ---------------------------------------------------------------------------------------
// After pass 5 (e2fsck.c, quota.c, unix.c, super.c's orphan file)

export const PR_6_UPDATE_QUOTAS = def(0x060002, "PR_6_UPDATE_QUOTAS", "quota", "", (a) => `Update quota info for quota type ${n(a.num)}`, { nullPrompt: true, preenOk: true });
export const PR_6_RECREATE_JOURNAL = def(0x060001, "PR_6_RECREATE_JOURNAL", "journal", "", () => "Recreate journal", { noOk: true, nullPrompt: true, preenOk: true });
export const PR_6_SET_BG_CHECKSUM = def(0x060003, "PR_6_SET_BG_CHECKSUM", "group_desc", "", (a) => `Error setting block group checksum info: ${a.str ?? ""}`, { fatal: true, nullPrompt: true });
export const PR_6_FLUSH_FILESYSTEM = def(0x060004, "PR_6_FLUSH_FILESYSTEM", "superblock", "", (a) => `Error writing file system info: ${a.str ?? ""}`, { fatal: true, nullPrompt: true });
export const PR_6_IO_FLUSH = def(0x060005, "PR_6_IO_FLUSH", "superblock", "", (a) => `Error flushing writes to storage device: ${a.str ?? ""}`, { fatal: true, nullPrompt: true });
export const PR_6_WRITE_QUOTAS = def(0x060006, "PR_6_WRITE_QUOTAS", "quota", "", (a) => `Error writing quota info for quota type ${n(a.num)}: ${a.str ?? ""}`, { nullPrompt: true });
export const PR_6_ORPHAN_FILE_WITHOUT_JOURNAL = def(0x060007, "PR_6_ORPHAN_FILE_WITHOUT_JOURNAL", "orphan", "Clear", () => "Superblock has orphan file without journal.", { preenOk: true });
export const PR_6_ORPHAN_FILE_TRUNC_FAILED = def(0x060008, "PR_6_ORPHAN_FILE_TRUNC_FAILED", "orphan", "", () => "Failed to truncate orphan file.");
export const PR_6_ORPHAN_FILE_CORRUPTED = def(0x060009, "PR_6_ORPHAN_FILE_CORRUPTED", "orphan", "Recreate", () => "Failed to initialize orphan file.", { preenOk: true });
export const PR_6_ORPHAN_FILE_BITMAP_INVALID = def(0x06000a, "PR_6_ORPHAN_FILE_BITMAP_INVALID", "orphan", "", () => "Cannot fix corrupted orphan file with invalid bitmaps.");
export const PR_6_ORPHAN_FILE_CREATE_FAILED = def(0x06000b, "PR_6_ORPHAN_FILE_CREATE_FAILED", "orphan", "", (a) => `Failed to truncate orphan file (inode ${n(a.ino)}).`);
export const PR_6_ORPHAN_BLOCK_DIRTY = def(0x06000c, "PR_6_ORPHAN_BLOCK_DIRTY", "orphan", "Clear", (a) => `Orphan file (inode ${n(a.ino)}) block ${n(a.blk)} is not clean.`, { preenOk: true });
export const PR_6_ORPHAN_PRESENT_CLEAN_FILE = def(0x06000d, "PR_6_ORPHAN_PRESENT_CLEAN_FILE", "orphan", "Clear", () => "Feature orphan_present is set but orphan file is clean.", { preenOk: true });
export const PR_6_ORPHAN_PRESENT_NO_FILE = def(0x06000e, "PR_6_ORPHAN_PRESENT_NO_FILE", "orphan", "Clear", () => "Feature orphan_present is set but feature orphan_file is not.", { preenOk: true });
export const PR_6_ORPHAN_FILE_WRONG_SIZE = def(0x06000f, "PR_6_ORPHAN_FILE_WRONG_SIZE", "orphan", "", (a) => `Orphan file (inode ${n(a.ino)}) size is not multiple of block size.`);
export const PR_6_ORPHAN_FILE_HOLE = def(0x060010, "PR_6_ORPHAN_FILE_HOLE", "orphan", "", (a) => `Orphan file (inode ${n(a.ino)}) contains hole at block ${n(a.blk)}.`);

// ---------------------------------------------------------------------------------------
// Latch groups (problem.c pr_latch_info)

/** A latch group: the question asked once for the whole group, and the problem that ends it (if any). */
export interface LatchDescr {
  readonly latch: number;
  readonly question: number;
  readonly end: number | undefined;
}

/** e2fsck's pr_latch_info: each PR_LATCH_* group's question and end message. */
export const PR_LATCH_INFO: readonly LatchDescr[] = [
  { latch: PR_LATCH_BLOCK, question: PR_1_INODE_BLOCK_LATCH.code, end: undefined },
  { latch: PR_LATCH_BBLOCK, question: PR_1_INODE_BBLOCK_LATCH.code, end: undefined },
  { latch: PR_LATCH_IBITMAP, question: PR_5_INODE_BITMAP_HEADER.code, end: PR_5_INODE_BITMAP_END.code },
  { latch: PR_LATCH_BBITMAP, question: PR_5_BLOCK_BITMAP_HEADER.code, end: PR_5_BLOCK_BITMAP_END.code },
  { latch: PR_LATCH_RELOC, question: PR_0_RELOCATE_HINT.code, end: undefined },
  { latch: PR_LATCH_DBLOCK, question: PR_1B_DUP_BLOCK_HEADER.code, end: PR_1B_DUP_BLOCK_END.code },
  { latch: PR_LATCH_LOW_DTIME, question: PR_1_ORPHAN_LIST_REFUGEES.code, end: undefined },
  { latch: PR_LATCH_TOOBIG, question: PR_1_INODE_TOOBIG.code, end: undefined },
  { latch: PR_LATCH_OPTIMIZE_DIR, question: PR_3A_OPTIMIZE_DIR_HEADER.code, end: PR_3A_OPTIMIZE_DIR_END.code },
  { latch: PR_LATCH_BG_CHECKSUM, question: PR_0_GDT_CSUM_LATCH.code, end: undefined },
  { latch: PR_LATCH_OPTIMIZE_EXT, question: PR_1E_OPTIMIZE_EXT_HEADER.code, end: PR_1E_OPTIMIZE_EXT_END.code },
];

/** The latch group `latch` (a PR_LATCH_* value), or undefined. */
export function latchInfo(latch: number): LatchDescr | undefined {
  return PR_LATCH_INFO.find((l) => l.latch === latch);
}
