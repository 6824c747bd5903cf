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
 * Repairs (next round) will answer yes; the `prompt` is the question they answer.
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
]);
/** Of those, the ones whose message ends in a single space. */
const ONE_SPACE = new Set([0x050001, 0x050002]);

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
}

const table = new Map<number, ProblemDef>();

function def(
  code: number, name: string, cls: ProblemClass, prompt: Prompt, format: (a: ProblemArgs) => string, o: DefOpts = {},
): ProblemDef {
  const pass = Math.min(5, code >>> 16) as ProblemDef["pass"];
  const d: ProblemDef = { code, name, pass, cls, prompt, noOk: o.noOk ?? false, fatal: o.fatal ?? false, format, sameLine: SAME_LINE.has(code), sep: SAME_LINE.has(code) ? (ONE_SPACE.has(code) ? " " : "  ") : "\n", nullPrompt: o.nullPrompt ?? false };
  table.set(code, d);
  return d;
}

/** The definition of a code (for tests and tools). */
export function problemDef(code: number): ProblemDef | undefined {
  return table.get(code);
}

// ---------------------------------------------------------------------------------------
// Before pass 1: superblock, group descriptors, journal (e2fsck super.c, journal.c, unix.c)

export const PR_0_BB_NOT_GROUP = def(0x000001, "PR_0_BB_NOT_GROUP", "group_desc", "Relocate", (a) => `Block bitmap for group ${n(a.group)} is not in group.  (block ${n(a.blk)})`);
export const PR_0_IB_NOT_GROUP = def(0x000002, "PR_0_IB_NOT_GROUP", "group_desc", "Relocate", (a) => `Inode bitmap for group ${n(a.group)} is not in group.  (block ${n(a.blk)})`);
export const PR_0_ITABLE_NOT_GROUP = def(0x000003, "PR_0_ITABLE_NOT_GROUP", "group_desc", "Relocate", (a) => `Inode table for group ${n(a.group)} is not in group.  (block ${n(a.blk)})\nWARNING: SEVERE DATA LOSS POSSIBLE.`);
export const PR_0_SB_CORRUPT = def(0x000004, "PR_0_SB_CORRUPT", "superblock", "", (a) =>
  `The superblock could not be read or does not describe a valid ext2/ext3/ext4 filesystem${a.str === undefined ? "" : ` (${a.str})`}.`, { fatal: true });
export const PR_0_FS_SIZE_WRONG = def(0x000005, "PR_0_FS_SIZE_WRONG", "superblock", "Abort", (a) =>
  `The filesystem size (according to the superblock) is ${n(a.blk)} blocks\nThe physical size of the device is ${n(a.blk2)} blocks\nEither the superblock or the partition table is likely to be corrupt!`, { noOk: true });
export const PR_0_MISC_CORRUPT_SUPER = def(0x00000b, "PR_0_MISC_CORRUPT_SUPER", "superblock", "", (a) => `Corruption found in superblock.  (${a.str ?? ""})`);
export const PR_0_INODE_COUNT_WRONG = def(0x00000d, "PR_0_INODE_COUNT_WRONG", "superblock", "Fix", (a) => `Inode count in superblock is ${n(a.ino)}, should be ${n(a.ino2)}.`);
export const PR_0_JOURNAL_BAD_INODE = def(0x00000f, "PR_0_JOURNAL_BAD_INODE", "journal", "Clear", (a) => `Superblock has an invalid journal (inode ${n(a.ino)}).`);
export const PR_0_JOURNAL_UNSUPP_MULTIFS = def(0x000010, "PR_0_JOURNAL_UNSUPP_MULTIFS", "journal", "", () => "External journal has multiple filesystem users (unsupported).", { fatal: true });
export const PR_0_CANT_FIND_JOURNAL = def(0x000011, "PR_0_CANT_FIND_JOURNAL", "journal", "", () => "Can't find external journal", { fatal: true });
export const PR_0_JOURNAL_UNSUPP_SUPER = def(0x000014, "PR_0_JOURNAL_UNSUPP_SUPER", "journal", "Abort", (a) => `Filesystem journal superblock is unknown type ${n(a.num)} (unsupported).`, { noOk: true });
export const PR_0_JOURNAL_BAD_SUPER = def(0x000015, "PR_0_JOURNAL_BAD_SUPER", "journal", "Fix", () => "Journal superblock is corrupt.");
export const PR_0_JOURNAL_HAS_JOURNAL = def(0x000016, "PR_0_JOURNAL_HAS_JOURNAL", "journal", "Clear", () => "Superblock has_journal flag is clear, but a journal is present.");
export const PR_0_JOURNAL_RECOVER_SET = def(0x000017, "PR_0_JOURNAL_RECOVER_SET", "journal", "Clear", () => "Superblock needs_recovery flag is set, but no journal is present.");
export const PR_0_JOURNAL_RECOVERY_CLEAR = def(0x000018, "PR_0_JOURNAL_RECOVERY_CLEAR", "journal", "", () => "Superblock needs_recovery flag is clear, but journal has data.");
export const PR_0_JOURNAL_UNSUPP_ROCOMPAT = def(0x000025, "PR_0_JOURNAL_UNSUPP_ROCOMPAT", "journal", "Abort", () => "Journal superblock has an unknown read-only feature flag set.", { noOk: true });
export const PR_0_JOURNAL_UNSUPP_INCOMPAT = def(0x000026, "PR_0_JOURNAL_UNSUPP_INCOMPAT", "journal", "Abort", () => "Journal superblock has an unknown incompatible feature flag set.", { noOk: true });
export const PR_0_JOURNAL_UNSUPP_VERSION = def(0x000027, "PR_0_JOURNAL_UNSUPP_VERSION", "journal", "Abort", () => "Journal version not supported by this e2fsck.", { noOk: true });
export const PR_0_NONZERO_RESERVED_GDT_BLOCKS = def(0x00002e, "PR_0_NONZERO_RESERVED_GDT_BLOCKS", "superblock", "Fix", (a) => `Filesystem does not have resize_inode enabled, but s_reserved_gdt_blocks\nis ${n(a.num)}; should be zero.`);
export const PR_0_CLEAR_RESIZE_INODE = def(0x00002f, "PR_0_CLEAR_RESIZE_INODE", "superblock", "Clear", () => "Resize_inode not enabled, but the resize inode is non-zero.");
export const PR_0_RESIZE_INODE_INVALID = def(0x000030, "PR_0_RESIZE_INODE_INVALID", "superblock", "Recreate", () => "Resize inode not valid.");
export const PR_0_GDT_CSUM = def(0x000035, "PR_0_GDT_CSUM", "group_desc", "Fix", (a) =>
  `Group descriptor ${n(a.group)} checksum is ${hex4(a.num)}, should be ${hex4(a.num2)}.`);
export const PR_0_GDT_UNINIT = def(0x000036, "PR_0_GDT_UNINIT", "group_desc", "Fix", (a) => `Group descriptor ${n(a.group)} marked uninitialized without feature set.`);
export const PR_0_GDT_ITABLE_UNUSED = def(0x000038, "PR_0_GDT_ITABLE_UNUSED", "group_desc", "Fix", (a) => `Group descriptor ${n(a.group)} has invalid unused inodes count ${n(a.blk)}.`);
export const PR_0_BB_UNINIT_LAST = def(0x000039, "PR_0_BB_UNINIT_LAST", "group_desc", "Fix", () => "Last group block bitmap uninitialized.");
export const PR_0_GDT_CSUM_LATCH = def(0x00003e, "PR_0_GDT_CSUM_LATCH", "group_desc", "Fix", () => "One or more block group descriptor checksums are invalid.");
export const PR_0_MMP_INVALID_BLK = def(0x000042, "PR_0_MMP_INVALID_BLK", "superblock", "Clear", () => "Superblock has invalid MMP block.", { fatal: true });
export const PR_0_MMP_INVALID_MAGIC = def(0x000043, "PR_0_MMP_INVALID_MAGIC", "superblock", "Fix", () => "Superblock has invalid MMP magic.", { fatal: true });
export const PR_0_OPEN_FAILED = def(0x000044, "PR_0_OPEN_FAILED", "superblock", "", (a) => `ext2fs_open2: ${a.str ?? "Superblock invalid"}`);
export const PR_0_CHECK_DESC_FAILED = def(0x000045, "PR_0_CHECK_DESC_FAILED", "group_desc", "", (a) => `ext2fs_check_desc: ${a.str ?? "Corrupt group descriptor"}`);
export const PR_0_MMP_CSUM_INVALID = def(0x000047, "PR_0_MMP_CSUM_INVALID", "superblock", "Fix", () => "Superblock MMP block checksum does not match.", { fatal: true });
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

// ---------------------------------------------------------------------------------------
// Pass 1: inodes, blocks and sizes (e2fsck pass1.c)

export const PR_1_ROOT_NO_DIR = def(0x010001, "PR_1_ROOT_NO_DIR", "inode", "Clear", () => "Root inode is not a directory.");
export const PR_1_ROOT_DTIME = def(0x010002, "PR_1_ROOT_DTIME", "inode", "Fix", () => "Root inode has dtime set (probably due to old mke2fs).");
export const PR_1_RESERVED_BAD_MODE = def(0x010003, "PR_1_RESERVED_BAD_MODE", "inode", "Clear", (a) => `Reserved inode ${n(a.ino)} (${a.path ?? `<${n(a.ino)}>`}) has invalid mode.`);
export const PR_1_ZERO_DTIME = def(0x010004, "PR_1_ZERO_DTIME", "orphan", "Fix", (a) => `Deleted inode ${n(a.ino)} has zero dtime.`);
export const PR_1_SET_DTIME = def(0x010005, "PR_1_SET_DTIME", "inode", "Fix", (a) => `Inode ${n(a.ino)} is in use, but has dtime set.`);
export const PR_1_ZERO_LENGTH_DIR = def(0x010006, "PR_1_ZERO_LENGTH_DIR", "directory", "Clear", (a) => `Inode ${n(a.ino)} is a zero-length directory.`);
export const PR_1_BB_CONFLICT = def(0x010007, "PR_1_BB_CONFLICT", "group_desc", "Relocate", (a) => `Group ${n(a.group)}'s block bitmap at ${n(a.blk)} conflicts with some other fs block.`);
export const PR_1_IB_CONFLICT = def(0x010008, "PR_1_IB_CONFLICT", "group_desc", "Relocate", (a) => `Group ${n(a.group)}'s inode bitmap at ${n(a.blk)} conflicts with some other fs block.`);
export const PR_1_ITABLE_CONFLICT = def(0x010009, "PR_1_ITABLE_CONFLICT", "group_desc", "Relocate", (a) => `Group ${n(a.group)}'s inode table at ${n(a.blk)} conflicts with some other fs block.`);
export const PR_1_BB_BAD_BLOCK = def(0x01000a, "PR_1_BB_BAD_BLOCK", "blocks", "Relocate", (a) => `Group ${n(a.group)}'s block bitmap (${n(a.blk)}) is bad.`);
export const PR_1_IB_BAD_BLOCK = def(0x01000b, "PR_1_IB_BAD_BLOCK", "blocks", "Relocate", (a) => `Group ${n(a.group)}'s inode bitmap (${n(a.blk)}) is bad.`);
export const PR_1_BAD_I_SIZE = def(0x01000c, "PR_1_BAD_I_SIZE", "i_size", "Fix", (a) => `Inode ${n(a.ino)}, i_size is ${n(a.size)}, should be ${n(a.num)}.`);
export const PR_1_BAD_I_BLOCKS = def(0x01000d, "PR_1_BAD_I_BLOCKS", "i_blocks", "Fix", (a) => `Inode ${n(a.ino)}, i_blocks is ${n(a.iblocks)}, should be ${n(a.num)}.`);
export const PR_1_ILLEGAL_BLOCK_NUM = def(0x01000e, "PR_1_ILLEGAL_BLOCK_NUM", "blocks", "Clear", (a) => `Illegal ${describeBlock(a.blkcount)} (${n(a.blk)}) in inode ${n(a.ino)}.`);
export const PR_1_INODE_BLOCK_LATCH = def(0x010010, "PR_1_INODE_BLOCK_LATCH", "blocks", "Clear", (a) => `Inode ${n(a.ino)} has illegal block(s).`);
export const PR_1_TOO_MANY_BAD_BLOCKS = def(0x010011, "PR_1_TOO_MANY_BAD_BLOCKS", "blocks", "Clear inode", (a) => `Too many illegal blocks in inode ${n(a.ino)}.`, { noOk: true });
export const PR_1_SUPPRESS_MESSAGES = def(0x01002d, "PR_1_SUPPRESS_MESSAGES", "blocks", "Suppress messages", () => "", { noOk: true });
export const PR_1_BB_ILLEGAL_BLOCK_NUM = def(0x010012, "PR_1_BB_ILLEGAL_BLOCK_NUM", "blocks", "Clear", (a) => `Illegal ${describeBlock(a.blkcount)} (${n(a.blk)}) in bad block inode.`);
export const PR_1_INODE_BBLOCK_LATCH = def(0x010013, "PR_1_INODE_BBLOCK_LATCH", "blocks", "Clear", () => "Bad block inode has illegal block(s).");
export const PR_1_BAD_PRIMARY_SUPERBLOCK = def(0x010019, "PR_1_BAD_PRIMARY_SUPERBLOCK", "blocks", "Clear", (a) => `The primary superblock (${n(a.blk)}) is on the bad block list.`);
export const PR_1_BAD_PRIMARY_GROUP_DESCRIPTOR = def(0x01001a, "PR_1_BAD_PRIMARY_GROUP_DESCRIPTOR", "blocks", "Clear", (a) => `Block ${n(a.blk)} in the primary group descriptors is on the bad block list`);
export const PR_1_BAD_SUPERBLOCK = def(0x01001b, "PR_1_BAD_SUPERBLOCK", "blocks", "", (a) => `Warning: Group ${n(a.group)}'s superblock (${n(a.blk)}) is bad.`);
export const PR_1_BAD_GROUP_DESCRIPTORS = def(0x01001c, "PR_1_BAD_GROUP_DESCRIPTORS", "blocks", "", (a) => `Warning: Group ${n(a.group)}'s copy of the group descriptors has a bad block (${n(a.blk)}).`);
export const PR_1_BBINODE_BAD_METABLOCK_PROMPT = def(0x010016, "PR_1_BBINODE_BAD_METABLOCK_PROMPT", "blocks", "Continue", () =>
  "\nThe bad block inode has probably been corrupted.  You probably\nshould stop now and run e2fsck -c to scan for bad blocks\nin the filesystem.", { fatal: true });
export const PR_1_PROGERR_CLAIMED_BLOCK = def(0x01001d, "PR_1_PROGERR_CLAIMED_BLOCK", "blocks", "", (a) => `Programming error?  block #${n(a.blk)} claimed for no reason in process_bad_block.`);
export const PR_1_ISCAN_ERROR = def(0x010028, "PR_1_ISCAN_ERROR", "inode", "", (a) => `Error while scanning inodes (${n(a.ino)}): ${a.str ?? ""}`, { fatal: true });
export const PR_1_BLOCK_ITERATE = def(0x010029, "PR_1_BLOCK_ITERATE", "blocks", "", (a) => `Error while iterating over blocks in inode ${n(a.ino)}: ${a.str ?? ""}`, { fatal: true });
export const PR_1_SET_IMAGIC = def(0x01002f, "PR_1_SET_IMAGIC", "inode", "Clear", (a) => `Inode ${n(a.ino)} has imagic flag set.`);
export const PR_1_SET_IMMUTABLE = def(0x010030, "PR_1_SET_IMMUTABLE", "inode", "Clear", (a) => `Special (device/socket/fifo/symlink) file (inode ${n(a.ino)}) has immutable\nor append-only flag set.`, { noOk: true });
export const PR_1_SET_NONZSIZE = def(0x010032, "PR_1_SET_NONZSIZE", "inode", "Fix", (a) => `Special (device/socket/fifo) inode ${n(a.ino)} has non-zero size.`);
export const PR_1_JOURNAL_INODE_NOT_CLEAR = def(0x010034, "PR_1_JOURNAL_INODE_NOT_CLEAR", "journal", "Clear", () => "Journal inode is not in use, but contains data.");
export const PR_1_JOURNAL_BAD_MODE = def(0x010035, "PR_1_JOURNAL_BAD_MODE", "journal", "Fix", () => "Journal is not regular file.");
export const PR_1_LOW_DTIME = def(0x010036, "PR_1_LOW_DTIME", "orphan", "Fix", (a) => `Inode ${n(a.ino)} was part of the orphaned inode list.`);
export const PR_1_ORPHAN_LIST_REFUGEES = def(0x010037, "PR_1_ORPHAN_LIST_REFUGEES", "orphan", "Fix", () => "Inodes that were part of a corrupted orphan linked list found.");
export const PR_1_READ_EA_BLOCK = def(0x010039, "PR_1_READ_EA_BLOCK", "xattr", "Clear", (a) => `Error reading extended attribute block ${n(a.blk)} for inode ${n(a.ino)}.`);
export const PR_1_BAD_EA_BLOCK = def(0x01003a, "PR_1_BAD_EA_BLOCK", "xattr", "Clear", (a) => `Inode ${n(a.ino)} has a bad extended attribute block ${n(a.blk)}.`);
export const PR_1_EXTATTR_REFCOUNT = def(0x01003c, "PR_1_EXTATTR_REFCOUNT", "xattr", "Fix", (a) => `Extended attribute block ${n(a.blk)} has reference count ${n(a.blkcount)}, should be ${n(a.num)}.`);
export const PR_1_EA_MULTI_BLOCK = def(0x01003e, "PR_1_EA_MULTI_BLOCK", "xattr", "Clear", (a) => `Extended attribute block ${n(a.blk)} has h_blocks > 1.`);
export const PR_1_EA_ALLOC_COLLISION = def(0x010040, "PR_1_EA_ALLOC_COLLISION", "xattr", "Clear", (a) => `Extended attribute block ${n(a.blk)} is corrupt (allocation collision).`);
export const PR_1_EA_BAD_NAME = def(0x010041, "PR_1_EA_BAD_NAME", "xattr", "Clear", (a) => `Extended attribute block ${n(a.blk)} is corrupt (invalid name).`);
export const PR_1_EA_BAD_VALUE = def(0x010042, "PR_1_EA_BAD_VALUE", "xattr", "Clear", (a) => `Extended attribute block ${n(a.blk)} is corrupt (invalid value).`);
export const PR_1_INODE_TOOBIG = def(0x010043, "PR_1_INODE_TOOBIG", "blocks", "Truncate", (a) => `Inode ${n(a.ino)} is too big.`);
export const PR_1_TOOBIG_DIR = def(0x010044, "PR_1_TOOBIG_DIR", "blocks", "Clear", (a) => `${upper(describeBlock(a.blkcount))} (${n(a.blk)}) causes directory to be too big.`);
export const PR_1_TOOBIG_REG = def(0x010045, "PR_1_TOOBIG_REG", "blocks", "Clear", (a) => `${upper(describeBlock(a.blkcount))} (${n(a.blk)}) causes file to be too big.`);
export const PR_1_TOOBIG_SYMLINK = def(0x010046, "PR_1_TOOBIG_SYMLINK", "blocks", "Clear", (a) => `${upper(describeBlock(a.blkcount))} (${n(a.blk)}) causes symlink to be too big.`);
export const PR_1_HTREE_SET = def(0x010047, "PR_1_HTREE_SET", "htree", "Clear HTree index", (a) => `Inode ${n(a.ino)} has INDEX_FL flag set on filesystem without htree support.`);
export const PR_1_HTREE_NODIR = def(0x010048, "PR_1_HTREE_NODIR", "htree", "Clear HTree index", (a) => `Inode ${n(a.ino)} has INDEX_FL flag set but is not a directory.`);
export const PR_1_HTREE_BADROOT = def(0x010049, "PR_1_HTREE_BADROOT", "htree", "Clear HTree index", (a) => `HTREE directory inode ${n(a.ino)} has an invalid root node.`);
export const PR_1_HTREE_HASHV = def(0x01004a, "PR_1_HTREE_HASHV", "htree", "Clear HTree index", (a) => `HTREE directory inode ${n(a.ino)} has an unsupported hash version (${n(a.num)})`);
export const PR_1_HTREE_INCOMPAT = def(0x01004b, "PR_1_HTREE_INCOMPAT", "htree", "Clear HTree index", (a) => `HTREE directory inode ${n(a.ino)} uses an incompatible htree root node flag.`);
export const PR_2_FEATURE_LARGE_DIRS = def(0x020039, "PR_2_FEATURE_LARGE_DIRS", "htree", "Fix", () => "Filesystem has large directories, but lacks LARGE_DIR flag in superblock.");
export const PR_1_HTREE_DEPTH = def(0x01004c, "PR_1_HTREE_DEPTH", "htree", "Clear HTree index", (a) => `HTREE directory inode ${n(a.ino)} has a tree depth (${n(a.num)}) which is too big`);
export const PR_1_BB_FS_BLOCK = def(0x01004d, "PR_1_BB_FS_BLOCK", "blocks", "Clear", (a) => `Bad block inode has an indirect block (${n(a.blk)}) that conflicts with\nfilesystem metadata.`);
export const PR_1_EXTATTR_READ_ABORT = def(0x01003b, "PR_1_EXTATTR_READ_ABORT", "xattr", "", (a) => `Error reading extended attribute block ${n(a.blk)} (${a.str ?? ""}).`, { fatal: true });
export const PR_1_EXTRA_ISIZE = def(0x01004f, "PR_1_EXTRA_ISIZE", "inode", "Fix", (a) => `Inode ${n(a.ino)} has a extra size (${n(a.extraIsize)}) which is invalid`);
export const PR_1_ATTR_NAME_LEN = def(0x010050, "PR_1_ATTR_NAME_LEN", "xattr", "Clear", (a) => `Extended attribute in inode ${n(a.ino)} has a namelen (${n(a.num)}) which is invalid`);
export const PR_1_ATTR_VALUE_OFFSET = def(0x010051, "PR_1_ATTR_VALUE_OFFSET", "xattr", "Clear", (a) => `Extended attribute in inode ${n(a.ino)} has a value offset (${n(a.num)}) which is invalid`);
export const PR_1_ATTR_VALUE_BLOCK = def(0x010052, "PR_1_ATTR_VALUE_BLOCK", "xattr", "Clear", (a) => `Extended attribute in inode ${n(a.ino)} has a value block (${n(a.num)}) which is invalid (must be 0)`);
export const PR_1_ATTR_VALUE_SIZE = def(0x010053, "PR_1_ATTR_VALUE_SIZE", "xattr", "Clear", (a) => `Extended attribute in inode ${n(a.ino)} has a value size (${n(a.num)}) which is invalid`);
export const PR_1_ATTR_HASH = def(0x010054, "PR_1_ATTR_HASH", "xattr", "Clear", (a) => `Extended attribute in inode ${n(a.ino)} has a hash (${n(a.num)}) which is invalid`);
export const PR_1_TREAT_AS_DIRECTORY = def(0x010055, "PR_1_TREAT_AS_DIRECTORY", "inode", "Fix", (a) => `Inode ${n(a.ino)} is a ${a.str ?? "file"} but it looks like it is really a directory.`);
export const PR_1_READ_EXTENT = def(0x010056, "PR_1_READ_EXTENT", "extent", "Clear inode", (a) => `Error while reading over extent tree in inode ${n(a.ino)}: ${a.str ?? ""}`);
export const PR_1_EXTENT_BAD_START_BLK = def(0x010058, "PR_1_EXTENT_BAD_START_BLK", "extent", "Clear", (a) => `Inode ${n(a.ino)} has an invalid extent\n\t(logical block ${n(a.blk2)}, invalid physical block ${n(a.blk)}, len ${n(a.num)})`);
export const PR_1_EXTENT_ENDS_BEYOND = def(0x010059, "PR_1_EXTENT_ENDS_BEYOND", "extent", "Clear", (a) => `Inode ${n(a.ino)} has an invalid extent\n\t(logical block ${n(a.blk2)}, physical block ${n(a.blk)}, invalid len ${n(a.num)})`);
export const PR_1_EXTENTS_SET = def(0x01005a, "PR_1_EXTENTS_SET", "extent", "Clear", (a) => `Inode ${n(a.ino)} has EXTENTS_FL flag set on filesystem without extents support.`);
export const PR_1_EXTENT_FEATURE = def(0x01005b, "PR_1_EXTENT_FEATURE", "extent", "Fix", (a) => `Inode ${n(a.ino)} is in extent format, but superblock is missing EXTENTS feature`);
export const PR_1_UNSET_EXTENT_FL = def(0x01005c, "PR_1_UNSET_EXTENT_FL", "extent", "Fix", (a) => `Inode ${n(a.ino)} missing EXTENT_FL, but is in extents format`);
export const PR_1_FAST_SYMLINK_EXTENT_FL = def(0x01005d, "PR_1_FAST_SYMLINK_EXTENT_FL", "symlink", "Clear", (a) => `Fast symlink ${n(a.ino)} has EXTENT_FL set.`);
export const PR_1_OUT_OF_ORDER_EXTENTS = def(0x01005e, "PR_1_OUT_OF_ORDER_EXTENTS", "extent", "Clear", (a) => `Inode ${n(a.ino)} has out of order extents\n\t(invalid logical block ${n(a.blk2)}, physical block ${n(a.blk)}, len ${n(a.num)})`);
export const PR_1_EXTENT_HEADER_INVALID = def(0x01005f, "PR_1_EXTENT_HEADER_INVALID", "extent", "Clear", (a) => `Inode ${n(a.ino)} has an invalid extent node (blk ${n(a.blk)}, lblk ${n(a.blk2)})`);
export const PR_1_QUOTA_BAD_MODE = def(0x010062, "PR_1_QUOTA_BAD_MODE", "quota", "Clear", () => "Quota inode is not a regular file.");
export const PR_1_QUOTA_INODE_NOT_CLEAR = def(0x010063, "PR_1_QUOTA_INODE_NOT_CLEAR", "quota", "Clear", () => "Quota inode is not in use, but contains data.");
export const PR_1_INVALID_BAD_INODE = def(0x010065, "PR_1_INVALID_BAD_INODE", "inode", "Clear", () => "The bad block inode looks invalid.");
export const PR_1_EXTENT_LENGTH_ZERO = def(0x010066, "PR_1_EXTENT_LENGTH_ZERO", "extent", "Clear", (a) => `Inode ${n(a.ino)} has zero length extent\n\t(invalid logical block ${n(a.blk2)}, physical block ${n(a.blk)})`);
export const PR_1_INODE_IS_GARBAGE = def(0x010067, "PR_1_INODE_IS_GARBAGE", "checksum", "Clear", (a) => `Inode ${n(a.ino)} seems to contain garbage.`);
export const PR_1_INODE_ONLY_CSUM_INVALID = def(0x010068, "PR_1_INODE_ONLY_CSUM_INVALID", "checksum", "Fix", (a) => `Inode ${n(a.ino)} passes checks, but checksum does not match inode.`);
export const PR_1_INODE_EA_ALLOC_COLLISION = def(0x010069, "PR_1_INODE_EA_ALLOC_COLLISION", "xattr", "Clear", (a) => `Inode ${n(a.ino)} extended attribute is corrupt (allocation collision).`);
export const PR_1_EXTENT_ONLY_CSUM_INVALID = def(0x01006a, "PR_1_EXTENT_ONLY_CSUM_INVALID", "checksum", "Fix", (a) => `Inode ${n(a.ino)} extent block passes checks, but checksum does not match extent\n\t(logical block ${n(a.blk2)}, physical block ${n(a.blk)}, len ${n(a.num)})`);
export const PR_1_EA_BLOCK_ONLY_CSUM_INVALID = def(0x01006c, "PR_1_EA_BLOCK_ONLY_CSUM_INVALID", "checksum", "Fix", (a) => `Inode ${n(a.ino)} extended attribute block ${n(a.blk)} passes checks, but checksum does not match block.`);
export const PR_1_EXTENT_INDEX_START_INVALID = def(0x01006d, "PR_1_EXTENT_INDEX_START_INVALID", "extent", "Fix", (a) => `Interior extent node level ${n(a.num)} of inode ${n(a.ino)}:\nLogical start ${n(a.blk)} does not match logical start ${n(a.blk2)} at next level.`);
export const PR_1_EXTENT_END_OUT_OF_BOUNDS = def(0x01006e, "PR_1_EXTENT_END_OUT_OF_BOUNDS", "extent", "Clear", (a) => `Inode ${n(a.ino)}, end of extent exceeds allowed value\n\t(logical block ${n(a.blk2)}, physical block ${n(a.blk)}, len ${n(a.num)})`);
export const PR_1_INLINE_DATA_FEATURE = def(0x01006f, "PR_1_INLINE_DATA_FEATURE", "inline", "Fix", (a) => `Inode ${n(a.ino)} has inline data, but superblock is missing INLINE_DATA feature`);
export const PR_1_INLINE_DATA_SET = def(0x010070, "PR_1_INLINE_DATA_SET", "inline", "Clear", (a) => `Inode ${n(a.ino)} has INLINE_DATA_FL flag on filesystem without inline data support.`);
export const PR_1_CRITICAL_METADATA_COLLISION = def(0x010071, "PR_1_CRITICAL_METADATA_COLLISION", "blocks", "", (a) => `Inode ${n(a.ino)} block ${n(a.blk)} conflicts with critical metadata, skipping block checks.`);
export const PR_1_COLLAPSE_DBLOCK = def(0x010072, "PR_1_COLLAPSE_DBLOCK", "directory", "Fix", (a) => `Directory inode ${n(a.ino)} block ${n(a.blk)} should be at block ${n(a.blk2)}.`);
export const PR_1_UNINIT_DBLOCK = def(0x010073, "PR_1_UNINIT_DBLOCK", "directory", "Fix", (a) => `Directory inode ${n(a.ino)} has extent marked uninitialized at block ${n(a.blk2)}.`);
export const PR_1_MISALIGNED_CLUSTER = def(0x010074, "PR_1_MISALIGNED_CLUSTER", "blocks", "", (a) => `Inode ${n(a.ino)} logical block ${n(a.blk)} (physical block ${n(a.blk2)}) violates cluster allocation rules.\nWill fix in pass 1B.`);
export const PR_1_INLINE_DATA_NO_ATTR = def(0x010075, "PR_1_INLINE_DATA_NO_ATTR", "inline", "Truncate", (a) => `Inode ${n(a.ino)} has INLINE_DATA_FL flag but extended attribute not found.`);
export const PR_1_SPECIAL_EXTENTS_IDATA = def(0x010076, "PR_1_SPECIAL_EXTENTS_IDATA", "inode", "Clear", (a) => `Special (device/socket/fifo) file (inode ${n(a.ino)}) has extents\nor inline-data flag set.`, { noOk: true });
export const PR_1_CLEAR_INLINE_DATA_FOR_EXTENT = def(0x010077, "PR_1_CLEAR_INLINE_DATA_FOR_EXTENT", "inline", "Fix", (a) => `Inode ${n(a.ino)} has extent header but inline data flag is set.`);
export const PR_1_CLEAR_EXTENT_FOR_INLINE_DATA = def(0x010078, "PR_1_CLEAR_EXTENT_FOR_INLINE_DATA", "inline", "Fix", (a) => `Inode ${n(a.ino)} seems to have inline data but extent flag is set.`);
export const PR_1_CLEAR_EXTENT_INLINE_DATA_FLAGS = def(0x010079, "PR_1_CLEAR_EXTENT_INLINE_DATA_FLAGS", "inline", "Fix", (a) => `Inode ${n(a.ino)} seems to have block map but inline data and extent flags set.`);
export const PR_1_CLEAR_EXTENT_INLINE_DATA_INODE = def(0x01007a, "PR_1_CLEAR_EXTENT_INLINE_DATA_INODE", "inline", "Clear inode", (a) => `Inode ${n(a.ino)} has inline data and extent flags set but i_block contains junk.`);
export const PR_1_EXTENT_COLLISION = def(0x01007d, "PR_1_EXTENT_COLLISION", "extent", "Clear", (a) => `Inode ${n(a.ino)} has a duplicate extent mapping\n\t(logical block ${n(a.blk2)}, invalid physical block ${n(a.blk)}, len ${n(a.num)})`);
export const PR_1_NO_BIGALLOC_BLOCKMAP_FILES = def(0x010080, "PR_1_NO_BIGALLOC_BLOCKMAP_FILES", "blocks", "Fix", (a) => `Inode ${n(a.ino)} on bigalloc filesystem cannot be block mapped.`);
export const PR_1_MISSING_EXTENT_HEADER = def(0x010081, "PR_1_MISSING_EXTENT_HEADER", "extent", "Clear inode", (a) => `Inode ${n(a.ino)} has corrupt extent header.`);
export const PR_1_EA_TIME_OUT_OF_RANGE = def(0x010082, "PR_1_EA_TIME_OUT_OF_RANGE", "inode", "Fix", (a) => `Timestamp(s) on inode ${n(a.ino)} beyond 2310-04-04 are likely pre-1970.`, { noOk: true });
export const PR_1_ATTR_VALUE_EA_INODE = def(0x010083, "PR_1_ATTR_VALUE_EA_INODE", "xattr", "Clear", (a) => `Inode ${n(a.ino)} has illegal extended attribute value inode ${n(a.num)}.`);
export const PR_1_ATTR_NO_EA_INODE_FL = def(0x010085, "PR_1_ATTR_NO_EA_INODE_FL", "xattr", "Clear", (a) => `Inode ${n(a.ino)} has invalid extended attribute. EA inode ${n(a.num)} missing EA_INODE flag.`);
export const PR_1_MISSING_ENCRYPTION_XATTR = def(0x01008a, "PR_1_MISSING_ENCRYPTION_XATTR", "xattr", "Clear flag", (a) => `Inode ${n(a.ino)} has encrypt flag but no encryption extended attribute.`);
export const PR_1_CORRUPT_ENCRYPTION_XATTR = def(0x01008b, "PR_1_CORRUPT_ENCRYPTION_XATTR", "xattr", "Clear inode", (a) => `Encrypted inode ${n(a.ino)} has corrupt encryption extended attribute.`);
export const PR_1_CASEFOLD_NONDIR = def(0x010088, "PR_1_CASEFOLD_NONDIR", "inode", "Clear flag", (a) => `Inode ${n(a.ino)} has the casefold flag set but is not a directory.`);
export const PR_1_CASEFOLD_FEATURE = def(0x010089, "PR_1_CASEFOLD_FEATURE", "inode", "Clear flag", (a) => `Directory ${a.path ?? `<${n(a.ino)}>`} has the casefold flag, but the\ncasefold feature is not enabled.`);

// Pass 1B-1D: blocks claimed more than once (pass1b.c)
export const PR_1B_DUP_BLOCK_HEADER = def(0x011001, "PR_1B_DUP_BLOCK_HEADER", "dup_blocks", "", (a) => `Multiply-claimed block(s) in inode ${n(a.ino)}:${a.str ?? ""}`);
export const PR_1B_BLOCK_ITERATE = def(0x011006, "PR_1B_BLOCK_ITERATE", "dup_blocks", "", (a) => `Error while iterating over blocks in inode ${n(a.ino)} (pass1b): ${a.str ?? ""}`);
export const PR_1D_NUM_DUP_INODES = def(0x013000, "PR_1D_NUM_DUP_INODES", "dup_blocks", "", (a) => `(There are ${n(a.num)} inodes containing multiply-claimed blocks.)\n`);
export const PR_1D_DUP_FILE = def(0x013001, "PR_1D_DUP_FILE", "dup_blocks", "", (a) =>
  `File ${a.path ?? `<${n(a.ino)}>`} (inode #${n(a.ino)}, mod time ${a.str ?? ""}) \n  has ${n(a.blkcount)} multiply-claimed block(s), shared with ${n(a.num)} file(s):`);
export const PR_1D_DUP_FILE_LIST = def(0x013002, "PR_1D_DUP_FILE_LIST", "dup_blocks", "", (a) => `\t${a.path ?? `<${n(a.ino)}>`} (inode #${n(a.ino)}, mod time ${a.str ?? ""})`);
export const PR_1D_SHARE_METADATA = def(0x013003, "PR_1D_SHARE_METADATA", "dup_blocks", "", () => "\t<filesystem metadata>");
export const PR_1D_DUP_BLOCKS_DEALT = def(0x013005, "PR_1D_DUP_BLOCKS_DEALT", "dup_blocks", "", () => "Multiply-claimed blocks already reassigned or cloned.\n");
export const PR_1D_CLONE_QUESTION = def(0x013006, "PR_1D_CLONE_QUESTION", "dup_blocks", "Clone multiply-claimed blocks", () => "", { noOk: true });
export const PR_1D_DELETE_QUESTION = def(0x013007, "PR_1D_DELETE_QUESTION", "dup_blocks", "Delete file", () => "");

// ---------------------------------------------------------------------------------------
// Pass 2: directory structure (pass2.c)

export const PR_2_BAD_INODE_DOT = def(0x020001, "PR_2_BAD_INODE_DOT", "directory", "Fix", (a) => `Invalid inode number for '.' in directory inode ${n(a.ino)}.`);
export const PR_2_BAD_INO = def(0x020002, "PR_2_BAD_INO", "directory", "Clear", (a) => `${a.entry ?? ""} has bad inode #: ${n(a.ino2)}.`);
export const PR_2_UNUSED_INODE = def(0x020003, "PR_2_UNUSED_INODE", "directory", "Clear", (a) => `${a.entry ?? ""} has deleted/unused inode ${n(a.ino2)}.`);
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
export const PR_2_CLEAR_FILETYPE = def(0x020029, "PR_2_CLEAR_FILETYPE", "directory", "Clear", (a) => `${a.entry ?? ""} has filetype set.`);
export const PR_2_NULL_NAME = def(0x020030, "PR_2_NULL_NAME", "directory", "Clear", (a) => `${a.entry ?? ""} has a zero-length name.`);
export const PR_2_INVALID_SYMLINK = def(0x020031, "PR_2_INVALID_SYMLINK", "symlink", "Clear", (a) => `Symlink ${a.path ?? ""} (inode #${n(a.ino)}) is invalid.`);
export const PR_2_FILE_ACL_BAD = def(0x020032, "PR_2_FILE_ACL_BAD", "xattr", "Clear", (a) => `Extended attribute block for inode ${n(a.ino)} (${a.path ?? ""}) is invalid (${n(a.num)}).`);
export const PR_2_FEATURE_LARGE_FILES = def(0x020033, "PR_2_FEATURE_LARGE_FILES", "superblock", "Fix", () => "Filesystem contains large files, but lacks LARGE_FILE flag in superblock.");
export const PR_2_HTREE_NOTREF = def(0x020034, "PR_2_HTREE_NOTREF", "htree", "", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} not referenced`);
export const PR_2_HTREE_DUPREF = def(0x020035, "PR_2_HTREE_DUPREF", "htree", "", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} referenced twice`);
export const PR_2_HTREE_MIN_HASH = def(0x020036, "PR_2_HTREE_MIN_HASH", "htree", "", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} has bad min hash`);
export const PR_2_HTREE_MAX_HASH = def(0x020037, "PR_2_HTREE_MAX_HASH", "htree", "", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} has bad max hash`);
export const PR_2_HTREE_CLEAR = def(0x020038, "PR_2_HTREE_CLEAR", "htree", "Clear HTree index", (a) => `Invalid HTREE directory inode ${n(a.dir)} (${a.path ?? ""}).`);
export const PR_2_HTREE_BADBLK = def(0x02003a, "PR_2_HTREE_BADBLK", "htree", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.dir)} (${a.path ?? ""}): bad block number ${n(a.blk)}.`);
export const PR_2_HTREE_BAD_ROOT = def(0x02003c, "PR_2_HTREE_BAD_ROOT", "htree", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.dir)}: root node is invalid`);
export const PR_2_HTREE_BAD_LIMIT = def(0x02003d, "PR_2_HTREE_BAD_LIMIT", "htree", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} has invalid limit (${n(a.num)})`);
export const PR_2_HTREE_BAD_COUNT = def(0x02003e, "PR_2_HTREE_BAD_COUNT", "htree", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} has invalid count (${n(a.num)})`);
export const PR_2_HTREE_HASH_ORDER = def(0x02003f, "PR_2_HTREE_HASH_ORDER", "htree", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} has an unordered hash table`);
export const PR_2_HTREE_BAD_DEPTH = def(0x020040, "PR_2_HTREE_BAD_DEPTH", "htree", "", (a) => `Problem in HTREE directory inode ${n(a.dir)}: ${describeBlock(a.blkcount)} has invalid depth (${n(a.num)})`);
export const PR_2_DUPLICATE_DIRENT = def(0x020041, "PR_2_DUPLICATE_DIRENT", "directory", "Clear", (a) => `Duplicate ${lower(a.entry ?? "")} found.`);
export const PR_2_NON_UNIQUE_FILE_NO_RENAME = def(0x020054, "PR_2_NON_UNIQUE_FILE_NO_RENAME", "directory", "Clear", (a) => `Duplicate filename ${lower(a.entry ?? "")} found.`);
export const PR_2_NON_UNIQUE_FILE = def(0x020042, "PR_2_NON_UNIQUE_FILE", "directory", "", (a) => `${a.entry ?? ""} has a non-unique filename.\nRename to ${a.str ?? ""}`, { nullPrompt: true });
export const PR_2_REPORT_DUP_DIRENT = def(0x020043, "PR_2_REPORT_DUP_DIRENT", "directory", "", (a) => `Duplicate entry '${a.str ?? ""}' found.\n\tMarking ${a.path ?? ""} (${n(a.ino)}) to be rebuilt.\n`);
export const PR_2_BLOCKS_HI_ZERO = def(0x020044, "PR_2_BLOCKS_HI_ZERO", "i_blocks", "Clear", (a) => `i_blocks_hi for inode ${n(a.ino)} (${a.path ?? ""}) is ${n(a.num)}, should be zero.`);
export const PR_2_UNEXPECTED_HTREE_BLOCK = def(0x020045, "PR_2_UNEXPECTED_HTREE_BLOCK", "htree", "Clear HTree index", (a) => `Unexpected block in HTREE directory inode ${n(a.dir)} (${a.path ?? ""}).`);
export const PR_2_INOREF_BG_INO_UNINIT = def(0x020046, "PR_2_INOREF_BG_INO_UNINIT", "group_desc", "Fix", (a) => `${a.entry ?? ""} references inode ${n(a.ino2)} in group ${n(a.group)} where _INODE_UNINIT is set.`);
export const PR_2_INOREF_IN_UNUSED = def(0x020047, "PR_2_INOREF_IN_UNUSED", "group_desc", "Fix", (a) => `${a.entry ?? ""} references inode ${n(a.ino2)} found in group ${n(a.group)}'s unused inodes area.`);
export const PR_2_I_FILE_ACL_HI_ZERO = def(0x020048, "PR_2_I_FILE_ACL_HI_ZERO", "xattr", "Clear", (a) => `i_file_acl_hi for inode ${n(a.ino)} (${a.path ?? ""}) is ${n(a.num)}, should be zero.`);
export const PR_2_HTREE_ROOT_CSUM_INVALID = def(0x020049, "PR_2_HTREE_ROOT_CSUM_INVALID", "checksum", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.ino)}: root node fails checksum.`);
export const PR_2_HTREE_NODE_CSUM_INVALID = def(0x02004a, "PR_2_HTREE_NODE_CSUM_INVALID", "checksum", "Clear HTree index", (a) => `Problem in HTREE directory inode ${n(a.ino)}: internal node fails checksum.`);
export const PR_2_LEAF_NODE_MISSING_CSUM = def(0x02004c, "PR_2_LEAF_NODE_MISSING_CSUM", "checksum", "Fix", (a) => `Directory inode ${n(a.ino)}, ${describeBlock(a.blkcount)}, offset ${n(a.num)}: directory has no checksum.`);
export const PR_2_LEAF_NODE_ONLY_CSUM_INVALID = def(0x02004d, "PR_2_LEAF_NODE_ONLY_CSUM_INVALID", "checksum", "Fix", (a) => `Directory inode ${n(a.ino)}, ${describeBlock(a.blkcount)}: directory passes checks but fails checksum.`);
export const PR_2_BAD_INLINE_DIR_SIZE = def(0x02004e, "PR_2_BAD_INLINE_DIR_SIZE", "inline", "Fix", (a) => `Inline directory inode ${n(a.ino)} size (${n(a.num)}) must be a multiple of 4.`);
export const PR_2_UNENCRYPTED_FILE = def(0x020051, "PR_2_UNENCRYPTED_FILE", "directory", "Clear", (a) => `Encrypted ${lower(a.entry ?? "")} references unencrypted inode ${n(a.ino2)}.`);
export const PR_2_INCONSISTENT_ENCRYPTION_POLICY = def(0x020052, "PR_2_INCONSISTENT_ENCRYPTION_POLICY", "directory", "Clear", (a) => `Encrypted ${lower(a.entry ?? "")} references inode ${n(a.ino2)}, which has a different encryption policy.`);
export const PR_2_BAD_ENCODED_NAME = def(0x020053, "PR_2_BAD_ENCODED_NAME", "directory", "Fix", (a) => `${a.entry ?? ""} has illegal UTF-8 characters in its name.`);
export const PR_2_BAD_ENCRYPTED_NAME = def(0x020050, "PR_2_BAD_ENCRYPTED_NAME", "directory", "Clear", (a) => `Encrypted ${lower(a.entry ?? "")} is too short.`);

/** Not an e2fsck problem code: e2fsck -n gives up here (E2F_FLAG_ABORT, "e2fsck: aborted"). */
export const PR_2_ABORT = def(0x02f001, "EXT4TS_2_ABORT", "directory", "", (a) => a.str ?? "e2fsck: aborted", { fatal: true });

// ---------------------------------------------------------------------------------------
// Pass 3: connectivity (pass3.c)

export const PR_3_NO_ROOT_INODE = def(0x030001, "PR_3_NO_ROOT_INODE", "connectivity", "Allocate", () => "Root inode not allocated.");
export const PR_3_UNCONNECTED_DIR = def(0x030003, "PR_3_UNCONNECTED_DIR", "connectivity", "Connect to /lost+found", (a) => `Unconnected directory inode ${n(a.ino)} (was in ${a.path ?? `<${n(a.dir)}>`})`);
export const PR_3_BAD_DOT_DOT = def(0x030005, "PR_3_BAD_DOT_DOT", "connectivity", "Fix", (a) =>
  `'..' in ${a.path ?? `<${n(a.ino)}>`} (${n(a.ino)}) is ${a.path2 ?? `<${n(a.ino2)}>`} (${n(a.ino2)}), should be ${a.str ?? `<${n(a.dir)}>`} (${n(a.dir)}).`);
export const PR_3_ROOT_NOT_DIR_ABORT = def(0x030014, "PR_3_ROOT_NOT_DIR_ABORT", "connectivity", "", () => "Root inode is not a directory; aborting.", { fatal: true });
export const PR_3_NO_ROOT_INODE_ABORT = def(0x030015, "PR_3_NO_ROOT_INODE_ABORT", "connectivity", "", () => "Cannot proceed without a root inode.", { fatal: true });

// ---------------------------------------------------------------------------------------
// Pass 4: reference counts (pass4.c)

export const PR_4_ZERO_LEN_INODE = def(0x040001, "PR_4_ZERO_LEN_INODE", "connectivity", "Clear", (a) => `Unattached zero-length inode ${n(a.ino)}.`, { noOk: true });
export const PR_4_UNATTACHED_INODE = def(0x040002, "PR_4_UNATTACHED_INODE", "connectivity", "Connect to /lost+found", (a) => `Unattached inode ${n(a.ino)}`);
export const PR_4_BAD_REF_COUNT = def(0x040003, "PR_4_BAD_REF_COUNT", "links", "Fix", (a) => `Inode ${n(a.ino)} ref count is ${n(a.links)}, should be ${n(a.num)}.`);
export const PR_4_INCONSISTENT_COUNT = def(0x040004, "PR_4_INCONSISTENT_COUNT", "links", "", (a) =>
  `WARNING: PROGRAMMING BUG IN E2FSCK!\n\tOR SOME BONEHEAD (YOU) IS CHECKING A MOUNTED (LIVE) FILESYSTEM.\ninode_link_info[${n(a.ino)}] is ${n(a.num)}, inode.i_links_count is ${n(a.links)}.  They should be the same!`);
export const PR_4_DIR_NLINK_FEATURE = def(0x040006, "PR_4_DIR_NLINK_FEATURE", "links", "Fix", () => "Directory exceeds max links, but no DIR_NLINK feature in superblock.");

// ---------------------------------------------------------------------------------------
// Pass 5: group summaries (pass5.c)

export const PR_5_INODE_BMAP_PADDING = def(0x050001, "PR_5_INODE_BMAP_PADDING", "bitmap", "Fix", () => "Padding at end of inode bitmap is not set.");
export const PR_5_BLOCK_BMAP_PADDING = def(0x050002, "PR_5_BLOCK_BMAP_PADDING", "bitmap", "Fix", () => "Padding at end of block bitmap is not set.");
/** The whole latch (header, differences, end), as e2fsck prints it on one line. */
export const PR_5_BLOCK_BITMAP_HEADER = def(0x050003, "PR_5_BLOCK_BITMAP_HEADER", "bitmap", "Fix", (a) => `Block bitmap differences: ${a.str ?? ""}`);
export const PR_5_INODE_BITMAP_HEADER = def(0x050007, "PR_5_INODE_BITMAP_HEADER", "bitmap", "Fix", (a) => `Inode bitmap differences: ${a.str ?? ""}`);
export const PR_5_FREE_INODE_COUNT_GROUP = def(0x05000b, "PR_5_FREE_INODE_COUNT_GROUP", "counts", "Fix", (a) => `Free inodes count wrong for group #${n(a.group)} (${n(a.ino)}, counted=${n(a.ino2)}).`);
export const PR_5_FREE_DIR_COUNT_GROUP = def(0x05000c, "PR_5_FREE_DIR_COUNT_GROUP", "counts", "Fix", (a) => `Directories count wrong for group #${n(a.group)} (${n(a.ino)}, counted=${n(a.ino2)}).`);
export const PR_5_FREE_INODE_COUNT = def(0x05000d, "PR_5_FREE_INODE_COUNT", "counts", "Fix", (a) => `Free inodes count wrong (${n(a.ino)}, counted=${n(a.ino2)}).`, { noOk: true });
export const PR_5_FREE_BLOCK_COUNT_GROUP = def(0x05000e, "PR_5_FREE_BLOCK_COUNT_GROUP", "counts", "Fix", (a) => `Free blocks count wrong for group #${n(a.group)} (${n(a.blk)}, counted=${n(a.blk2)}).`);
export const PR_5_FREE_BLOCK_COUNT = def(0x05000f, "PR_5_FREE_BLOCK_COUNT", "counts", "Fix", (a) => `Free blocks count wrong (${n(a.blk)}, counted=${n(a.blk2)}).`, { noOk: true });
export const PR_5_INODE_BITMAP_CSUM_INVALID = def(0x05001a, "PR_5_INODE_BITMAP_CSUM_INVALID", "checksum", "Fix", (a) => `${a.str ?? ""}Group ${n(a.group)} inode bitmap does not match checksum.`);
export const PR_5_BLOCK_BITMAP_CSUM_INVALID = def(0x05001b, "PR_5_BLOCK_BITMAP_CSUM_INVALID", "checksum", "Fix", (a) => `${a.str ?? ""}Group ${n(a.group)} block bitmap does not match checksum.`);

// ---------------------------------------------------------------------------------------
// After pass 5 (e2fsck.c, quota.c)

export const PR_6_UPDATE_QUOTAS = def(0x060002, "PR_6_UPDATE_QUOTAS", "quota", "", (a) => `Update quota info for quota type ${n(a.num)}`, { nullPrompt: true });
