/**
 * Superblock feature flags: the kernel's EXT4_FEATURE_{COMPAT,INCOMPAT,RO_COMPAT}_*
 * bits (fs/ext4/ext4.h), the names e2fsprogs prints and parses for them
 * (lib/e2p/feature.c), and the policy for opening an image read-only.
 *
 * Rules the three words follow (ext4.h, "Feature set definitions"): an unknown
 * COMPAT bit is harmless; an unknown RO_COMPAT bit still allows reading but forbids
 * writing; an unknown INCOMPAT bit means the image cannot be interpreted at all.
 *
 * Functions here take only the three feature words, so `Superblock` (superblock.ts)
 * and anything else carrying them can be passed without an import cycle.
 */

// COMPAT: an implementation that does not know them may still read and write.
export const EXT4_FEATURE_COMPAT_DIR_PREALLOC = 0x0001;
export const EXT4_FEATURE_COMPAT_IMAGIC_INODES = 0x0002;
export const EXT4_FEATURE_COMPAT_HAS_JOURNAL = 0x0004;
export const EXT4_FEATURE_COMPAT_EXT_ATTR = 0x0008;
export const EXT4_FEATURE_COMPAT_RESIZE_INODE = 0x0010;
export const EXT4_FEATURE_COMPAT_DIR_INDEX = 0x0020;
export const EXT2_FEATURE_COMPAT_LAZY_BG = 0x0040; // e2fsprogs only, obsolete
export const EXT2_FEATURE_COMPAT_EXCLUDE_BITMAP = 0x0100; // e2fsprogs only (snapshots)
export const EXT4_FEATURE_COMPAT_SPARSE_SUPER2 = 0x0200;
export const EXT4_FEATURE_COMPAT_FAST_COMMIT = 0x0400;
export const EXT4_FEATURE_COMPAT_STABLE_INODES = 0x0800;
export const EXT4_FEATURE_COMPAT_ORPHAN_FILE = 0x1000;

// RO_COMPAT: an implementation that does not know them may only read.
export const EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER = 0x0001;
export const EXT4_FEATURE_RO_COMPAT_LARGE_FILE = 0x0002;
export const EXT4_FEATURE_RO_COMPAT_BTREE_DIR = 0x0004; // never used
export const EXT4_FEATURE_RO_COMPAT_HUGE_FILE = 0x0008;
export const EXT4_FEATURE_RO_COMPAT_GDT_CSUM = 0x0010;
export const EXT4_FEATURE_RO_COMPAT_DIR_NLINK = 0x0020;
export const EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE = 0x0040;
export const EXT4_FEATURE_RO_COMPAT_HAS_SNAPSHOT = 0x0080; // e2fsprogs only
export const EXT4_FEATURE_RO_COMPAT_QUOTA = 0x0100;
export const EXT4_FEATURE_RO_COMPAT_BIGALLOC = 0x0200;
export const EXT4_FEATURE_RO_COMPAT_METADATA_CSUM = 0x0400; // excludes GDT_CSUM
export const EXT4_FEATURE_RO_COMPAT_REPLICA = 0x0800; // e2fsprogs only
export const EXT4_FEATURE_RO_COMPAT_READONLY = 0x1000;
export const EXT4_FEATURE_RO_COMPAT_PROJECT = 0x2000;
export const EXT4_FEATURE_RO_COMPAT_SHARED_BLOCKS = 0x4000; // e2fsprogs only
export const EXT4_FEATURE_RO_COMPAT_VERITY = 0x8000;
export const EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT = 0x10000;

// INCOMPAT: an implementation that does not know them must not touch the image.
export const EXT4_FEATURE_INCOMPAT_COMPRESSION = 0x0001;
export const EXT4_FEATURE_INCOMPAT_FILETYPE = 0x0002;
export const EXT4_FEATURE_INCOMPAT_RECOVER = 0x0004; // journal needs recovery
export const EXT4_FEATURE_INCOMPAT_JOURNAL_DEV = 0x0008; // this is an external journal
export const EXT4_FEATURE_INCOMPAT_META_BG = 0x0010;
export const EXT4_FEATURE_INCOMPAT_EXTENTS = 0x0040;
export const EXT4_FEATURE_INCOMPAT_64BIT = 0x0080;
export const EXT4_FEATURE_INCOMPAT_MMP = 0x0100;
export const EXT4_FEATURE_INCOMPAT_FLEX_BG = 0x0200;
export const EXT4_FEATURE_INCOMPAT_EA_INODE = 0x0400;
export const EXT4_FEATURE_INCOMPAT_DIRDATA = 0x1000;
export const EXT4_FEATURE_INCOMPAT_CSUM_SEED = 0x2000;
export const EXT4_FEATURE_INCOMPAT_LARGEDIR = 0x4000;
export const EXT4_FEATURE_INCOMPAT_INLINE_DATA = 0x8000;
export const EXT4_FEATURE_INCOMPAT_ENCRYPT = 0x10000;
export const EXT4_FEATURE_INCOMPAT_CASEFOLD = 0x20000;

/** Every INCOMPAT bit the kernel defines; anything else is unknown. */
export const EXT4_FEATURE_INCOMPAT_KNOWN =
  EXT4_FEATURE_INCOMPAT_COMPRESSION | EXT4_FEATURE_INCOMPAT_FILETYPE | EXT4_FEATURE_INCOMPAT_RECOVER |
  EXT4_FEATURE_INCOMPAT_JOURNAL_DEV | EXT4_FEATURE_INCOMPAT_META_BG | EXT4_FEATURE_INCOMPAT_EXTENTS |
  EXT4_FEATURE_INCOMPAT_64BIT | EXT4_FEATURE_INCOMPAT_MMP | EXT4_FEATURE_INCOMPAT_FLEX_BG |
  EXT4_FEATURE_INCOMPAT_EA_INODE | EXT4_FEATURE_INCOMPAT_DIRDATA | EXT4_FEATURE_INCOMPAT_CSUM_SEED |
  EXT4_FEATURE_INCOMPAT_LARGEDIR | EXT4_FEATURE_INCOMPAT_INLINE_DATA | EXT4_FEATURE_INCOMPAT_ENCRYPT |
  EXT4_FEATURE_INCOMPAT_CASEFOLD;

/**
 * INCOMPAT bits ext4ts can read. RECOVER is included because whether to replay or
 * refuse is the caller's decision. Not yet: compression, journal_dev (an external
 * journal is not a filesystem), ea_inode, dirdata, encrypt, casefold.
 */
export const EXT4TS_INCOMPAT_READ_SUPP =
  EXT4_FEATURE_INCOMPAT_FILETYPE | EXT4_FEATURE_INCOMPAT_RECOVER | EXT4_FEATURE_INCOMPAT_META_BG |
  EXT4_FEATURE_INCOMPAT_EXTENTS | EXT4_FEATURE_INCOMPAT_64BIT | EXT4_FEATURE_INCOMPAT_MMP |
  EXT4_FEATURE_INCOMPAT_FLEX_BG | EXT4_FEATURE_INCOMPAT_CSUM_SEED | EXT4_FEATURE_INCOMPAT_LARGEDIR |
  EXT4_FEATURE_INCOMPAT_INLINE_DATA;

/**
 * RO_COMPAT bits the kernel supports (EXT4_FEATURE_RO_COMPAT_SUPP). READONLY is
 * deliberately absent: like the bits only e2fsprogs knows, it forbids writing.
 */
export const EXT4_FEATURE_RO_COMPAT_SUPP =
  EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT4_FEATURE_RO_COMPAT_LARGE_FILE | EXT4_FEATURE_RO_COMPAT_GDT_CSUM |
  EXT4_FEATURE_RO_COMPAT_DIR_NLINK | EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE | EXT4_FEATURE_RO_COMPAT_BTREE_DIR |
  EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_BIGALLOC | EXT4_FEATURE_RO_COMPAT_METADATA_CSUM |
  EXT4_FEATURE_RO_COMPAT_QUOTA | EXT4_FEATURE_RO_COMPAT_PROJECT | EXT4_FEATURE_RO_COMPAT_VERITY |
  EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT;

/** The three feature words of a superblock (a `Superblock` satisfies this). */
export interface FeatureWords {
  s_feature_compat: number;
  s_feature_incompat: number;
  s_feature_ro_compat: number;
}

export type FeatureKind = "compat" | "incompat" | "ro_compat";

/** A feature as e2fsprogs names it: which word, and the single-bit mask in it. */
export interface FeatureRef {
  kind: FeatureKind;
  mask: number;
}

/**
 * e2fsprogs' feature_list in its order. Printing uses the first name for a mask, so
 * the aliases (uninit_groups, extents, fname_encoding) come after the printed name.
 */
const FEATURE_LIST: readonly (readonly [FeatureKind, number, string])[] = [
  ["compat", EXT4_FEATURE_COMPAT_DIR_PREALLOC, "dir_prealloc"],
  ["compat", EXT4_FEATURE_COMPAT_HAS_JOURNAL, "has_journal"],
  ["compat", EXT4_FEATURE_COMPAT_IMAGIC_INODES, "imagic_inodes"],
  ["compat", EXT4_FEATURE_COMPAT_EXT_ATTR, "ext_attr"],
  ["compat", EXT4_FEATURE_COMPAT_DIR_INDEX, "dir_index"],
  ["compat", EXT4_FEATURE_COMPAT_RESIZE_INODE, "resize_inode"],
  ["compat", EXT2_FEATURE_COMPAT_LAZY_BG, "lazy_bg"],
  ["compat", EXT2_FEATURE_COMPAT_EXCLUDE_BITMAP, "snapshot_bitmap"],
  ["compat", EXT4_FEATURE_COMPAT_SPARSE_SUPER2, "sparse_super2"],
  ["compat", EXT4_FEATURE_COMPAT_FAST_COMMIT, "fast_commit"],
  ["compat", EXT4_FEATURE_COMPAT_STABLE_INODES, "stable_inodes"],
  ["compat", EXT4_FEATURE_COMPAT_ORPHAN_FILE, "orphan_file"],

  ["ro_compat", EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER, "sparse_super"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_LARGE_FILE, "large_file"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_HUGE_FILE, "huge_file"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_GDT_CSUM, "uninit_bg"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_GDT_CSUM, "uninit_groups"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_DIR_NLINK, "dir_nlink"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE, "extra_isize"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_QUOTA, "quota"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_BIGALLOC, "bigalloc"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_METADATA_CSUM, "metadata_csum"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_REPLICA, "replica"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_READONLY, "read-only"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_PROJECT, "project"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_SHARED_BLOCKS, "shared_blocks"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_VERITY, "verity"],
  ["ro_compat", EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT, "orphan_present"],

  ["incompat", EXT4_FEATURE_INCOMPAT_COMPRESSION, "compression"],
  ["incompat", EXT4_FEATURE_INCOMPAT_FILETYPE, "filetype"],
  ["incompat", EXT4_FEATURE_INCOMPAT_RECOVER, "needs_recovery"],
  ["incompat", EXT4_FEATURE_INCOMPAT_JOURNAL_DEV, "journal_dev"],
  ["incompat", EXT4_FEATURE_INCOMPAT_EXTENTS, "extent"],
  ["incompat", EXT4_FEATURE_INCOMPAT_EXTENTS, "extents"],
  ["incompat", EXT4_FEATURE_INCOMPAT_META_BG, "meta_bg"],
  ["incompat", EXT4_FEATURE_INCOMPAT_64BIT, "64bit"],
  ["incompat", EXT4_FEATURE_INCOMPAT_MMP, "mmp"],
  ["incompat", EXT4_FEATURE_INCOMPAT_FLEX_BG, "flex_bg"],
  ["incompat", EXT4_FEATURE_INCOMPAT_EA_INODE, "ea_inode"],
  ["incompat", EXT4_FEATURE_INCOMPAT_DIRDATA, "dirdata"],
  ["incompat", EXT4_FEATURE_INCOMPAT_CSUM_SEED, "metadata_csum_seed"],
  ["incompat", EXT4_FEATURE_INCOMPAT_LARGEDIR, "large_dir"],
  ["incompat", EXT4_FEATURE_INCOMPAT_INLINE_DATA, "inline_data"],
  ["incompat", EXT4_FEATURE_INCOMPAT_ENCRYPT, "encrypt"],
  ["incompat", EXT4_FEATURE_INCOMPAT_CASEFOLD, "casefold"],
  ["incompat", EXT4_FEATURE_INCOMPAT_CASEFOLD, "fname_encoding"],
];

const KIND_LETTER: Readonly<Record<FeatureKind, string>> = { compat: "C", incompat: "I", ro_compat: "R" };

/** Is `mask` set in the COMPAT word? @kernel ext4_has_feature_* (EXT4_FEATURE_COMPAT_FUNCS) */
export function hasCompat(sb: FeatureWords, mask: number): boolean {
  return (sb.s_feature_compat & mask) !== 0;
}

/** Is `mask` set in the INCOMPAT word? @kernel ext4_has_feature_* (EXT4_FEATURE_INCOMPAT_FUNCS) */
export function hasIncompat(sb: FeatureWords, mask: number): boolean {
  return (sb.s_feature_incompat & mask) !== 0;
}

/** Is `mask` set in the RO_COMPAT word? @kernel ext4_has_feature_* (EXT4_FEATURE_RO_COMPAT_FUNCS) */
export function hasRoCompat(sb: FeatureWords, mask: number): boolean {
  return (sb.s_feature_ro_compat & mask) !== 0;
}

/**
 * The e2fsprogs name of one feature bit; bits it has no name for print as
 * `FEATURE_<C|I|R><bit>` (e.g. "FEATURE_I31"). `mask` must have exactly one bit set.
 * @kernel e2p_feature2string (e2fsprogs lib/e2p/feature.c)
 */
export function featureName(kind: FeatureKind, mask: number): string {
  for (const [k, m, name] of FEATURE_LIST) if (k === kind && m === mask) return name;
  return `FEATURE_${KIND_LETTER[kind]}${31 - Math.clz32(mask)}`;
}

/** Names of every bit set in one feature word, lowest bit first. */
function wordNames(kind: FeatureKind, word: number): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    if (((word >>> bit) & 1) === 1) out.push(featureName(kind, 2 ** bit)); // 2 ** 31, not the negative 1 << 31
  }
  return out;
}

/**
 * Every feature set, named as `dumpe2fs` prints its "Filesystem features:" line:
 * COMPAT, then INCOMPAT, then RO_COMPAT, each from its lowest bit.
 * @kernel print_features (e2fsprogs lib/e2p/ls.c)
 */
export function featureNames(sb: FeatureWords): string[] {
  return [
    ...wordNames("compat", sb.s_feature_compat),
    ...wordNames("incompat", sb.s_feature_incompat),
    ...wordNames("ro_compat", sb.s_feature_ro_compat),
  ];
}

/**
 * Map a feature name as accepted by `mke2fs -O` / `tune2fs -O` (case-insensitive,
 * aliases such as "extents", or `FEATURE_<C|I|R><0..31>`) to its word and mask.
 * Returns undefined for names e2fsprogs would reject.
 * @kernel e2p_string2feature (e2fsprogs lib/e2p/feature.c)
 */
export function parseFeatureName(name: string): FeatureRef | undefined {
  const lower = name.toLowerCase();
  for (const [kind, mask, n] of FEATURE_LIST) if (n === lower) return { kind, mask };
  const m = /^feature_([cir])([0-9]+)$/.exec(lower);
  if (m === null) return undefined;
  const bit = Number(m[2]);
  if (bit > 31) return undefined;
  const kind: FeatureKind = m[1] === "c" ? "compat" : m[1] === "i" ? "incompat" : "ro_compat";
  return { kind, mask: 2 ** bit };
}

/** What stands in the way of opening an image read-only; all empty means go ahead. */
export interface FeatureCheck {
  /** INCOMPAT bits no kernel defines: the image cannot be interpreted. */
  unknownIncompat: string[];
  /** INCOMPAT bits the kernel knows but ext4ts cannot read yet. */
  unsupportedIncompat: string[];
  /** RO_COMPAT bits outside EXT4_FEATURE_RO_COMPAT_SUPP: reading is fine, writing is not. */
  unknownRoCompat: string[];
}

/**
 * Feature policy for a read-only open. Reading requires `unknownIncompat` and
 * `unsupportedIncompat` to be empty; a later read-write open also requires
 * `unknownRoCompat` to be empty. needs_recovery is left to the caller.
 * @kernel ext4_feature_set_ok (fs/ext4/super.c)
 */
export function checkFeatures(sb: FeatureWords): FeatureCheck {
  const incompat = sb.s_feature_incompat >>> 0;
  const unknownIncompat = wordNames("incompat", incompat & ~EXT4_FEATURE_INCOMPAT_KNOWN);
  const unsupportedIncompat = wordNames("incompat", incompat & EXT4_FEATURE_INCOMPAT_KNOWN & ~EXT4TS_INCOMPAT_READ_SUPP);
  const unknownRoCompat = wordNames("ro_compat", sb.s_feature_ro_compat & ~EXT4_FEATURE_RO_COMPAT_SUPP);
  return { unknownIncompat, unsupportedIncompat, unknownRoCompat };
}
