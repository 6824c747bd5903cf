/**
 * `ext4ts mkfs` options, parsed and defaulted the way mke2fs 1.47.0 does it (PRS() in
 * e2fsprogs misc/mke2fs.c, parse_num_blocks2 in lib/e2p/parse_num.c, e2p_edit_feature2
 * in lib/e2p/feature.c, parse_journal_opts in misc/util.c): from the command-line
 * options and the device size to the parameters ext2fs_initialize starts from.
 *
 * Everything here is pure. Errors are FsError("EINVAL") with mke2fs-like messages; the
 * command line turns them into exit status 1, as mke2fs exits 1.
 */

import { FsError } from "../../src/errors.js";
import {
  EXT4_DEFM_ACL, EXT4_DEFM_BLOCK_VALIDITY, EXT4_DEFM_BSDGROUPS, EXT4_DEFM_DEBUG, EXT4_DEFM_DISCARD,
  EXT4_DEFM_JMODE, EXT4_DEFM_JMODE_DATA, EXT4_DEFM_JMODE_ORDERED, EXT4_DEFM_JMODE_WBACK, EXT4_DEFM_NOBARRIER,
  EXT4_DEFM_NODELALLOC, EXT4_DEFM_UID16, EXT4_DEFM_XATTR_USER, EXT4_ERRORS_CONTINUE, EXT4_ERRORS_PANIC, EXT4_ERRORS_RO,
} from "../../src/format/superblock.js";
import {
  EXT4_FEATURE_COMPAT_DIR_INDEX, EXT4_FEATURE_COMPAT_EXT_ATTR, EXT4_FEATURE_COMPAT_FAST_COMMIT,
  EXT4_FEATURE_COMPAT_HAS_JOURNAL, EXT4_FEATURE_COMPAT_ORPHAN_FILE, EXT4_FEATURE_COMPAT_RESIZE_INODE,
  EXT4_FEATURE_COMPAT_SPARSE_SUPER2, EXT4_FEATURE_COMPAT_STABLE_INODES, EXT4_FEATURE_INCOMPAT_64BIT,
  EXT4_FEATURE_INCOMPAT_CASEFOLD, EXT4_FEATURE_INCOMPAT_CSUM_SEED, EXT4_FEATURE_INCOMPAT_EA_INODE,
  EXT4_FEATURE_INCOMPAT_ENCRYPT, EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_INCOMPAT_FILETYPE,
  EXT4_FEATURE_INCOMPAT_FLEX_BG, EXT4_FEATURE_INCOMPAT_INLINE_DATA, EXT4_FEATURE_INCOMPAT_JOURNAL_DEV,
  EXT4_FEATURE_INCOMPAT_LARGEDIR, EXT4_FEATURE_INCOMPAT_META_BG, EXT4_FEATURE_INCOMPAT_MMP,
  EXT4_FEATURE_RO_COMPAT_BIGALLOC, EXT4_FEATURE_RO_COMPAT_DIR_NLINK, EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE,
  EXT4_FEATURE_RO_COMPAT_GDT_CSUM, EXT4_FEATURE_RO_COMPAT_HUGE_FILE, EXT4_FEATURE_RO_COMPAT_LARGE_FILE,
  EXT4_FEATURE_RO_COMPAT_METADATA_CSUM, EXT4_FEATURE_RO_COMPAT_PROJECT, EXT4_FEATURE_RO_COMPAT_QUOTA,
  EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER, EXT4_FEATURE_RO_COMPAT_VERITY, featureName, parseFeatureName,
  type FeatureKind, type FeatureWords,
} from "../../src/format/features.js";
import {
  MKE2FS_CONF_1_47_0, profileBool, profileInt, profileString, profileTypeFeatures, resolveFsTypes, sizeType,
  type Profile,
} from "./profile.js";

/** What the user asked for; every field is optional and defaults as in mke2fs. */
export interface MkfsOptions {
  /** -t: ext2, ext3 or ext4 (default ext4). */
  fsType?: string;
  /** -T: comma-separated usage types (default: by size, as mke2fs). */
  usageTypes?: string;
  /** -b, as given ("4096", "4k"). */
  blockSize?: string;
  /** -I */
  inodeSize?: string;
  /** -i, bytes per inode ("16384", "16k"). */
  bytesPerInode?: string;
  /** -N */
  inodeCount?: string;
  /** -m, percent (0..50). */
  reservedPercent?: string;
  /** -L */
  label?: string;
  /** -U: a UUID, or "random", "time", "clear"/"null". */
  uuid?: string;
  /** -O, each occurrence. */
  features?: readonly string[];
  /** -E, each occurrence; as in mke2fs only the last one counts (put several options in one, comma-separated). */
  extended?: readonly string[];
  /** -j */
  journal?: boolean;
  /** -J, each occurrence. */
  journalOptions?: readonly string[];
  /** -e: continue, remount-ro or panic. */
  errorsBehavior?: string;
  /** -G */
  flexBgSize?: string;
  /** -g */
  blocksPerGroup?: string;
  /** -M */
  lastMounted?: string;
  /** -F: overwrite an existing filesystem, accept oversized blocks. */
  force?: boolean;
  /** -q */
  quiet?: boolean;
  /** -n: compute and print, write nothing. */
  noAction?: boolean;
  /** SIZE: blocks of -b (1 KiB without -b) or with a K/M/G/T suffix. */
  size?: string;
  /** Creation time in seconds (default: E2FSPROGS_FAKE_TIME / SOURCE_DATE_EPOCH handling is the caller's). */
  now?: number;
  /** mke2fs.conf to use; the built-in 1.47.0 one by default. */
  profile?: Profile;
}

/** Extended (-E) options that shape the filesystem. */
export interface ExtendedOptions {
  rootUid: number;
  rootGid: number;
  rootPerms: number | undefined;
  lazyItableInit: boolean | undefined;
  lazyJournalInit: boolean | undefined;
  assumeStoragePrezeroed: boolean;
  hashSeed: Uint8Array | undefined;
  descSize: number;
  stride: number;
  stripeWidth: number;
  resize: number;
  testFs: boolean;
  discard: boolean;
  /** no_copy_xattrs: -d copies no extended attributes. */
  noCopyXattrs: boolean;
  /** quotatype=: QUOTA_*_BIT mask as given (undefined: not given). */
  quotaTypes: number | undefined;
}

/** The filesystem parameters mke2fs hands to ext2fs_initialize, plus what main() needs later. */
export interface MkfsParams {
  fsTypes: readonly string[];
  blockSize: number;
  /** log2(blockSize) - 10 */
  logBlockSize: number;
  /** Requested size in blocks (ext2fs_initialize may trim the last group). */
  blocksCount: number;
  features: FeatureWords;
  inodeSize: number;
  /** Requested inode count (ext2fs_initialize rounds it to whole groups). */
  inodesCount: number;
  rBlocksCount: number;
  logGroupsPerFlex: number;
  /** -g, 0 for the default (8 * block size). */
  blocksPerGroup: number;
  /** s_desc_size (0 without 64bit). */
  descSize: number;
  /** -E resize: reserved GDT blocks wanted, 0 to compute. */
  reservedGdtBlocks: number;
  defaultMountOpts: number;
  errors: number;
  hashAlg: number;
  periodicFsck: boolean;
  /** 0: no journal; -1: default size; > 0: megabytes. */
  journalSize: number;
  journalLocation: number | undefined;
  ext: ExtendedOptions;
  /** Quota files to create (QUOTA_*_BIT mask; 0 without the quota feature). */
  quotaTypes: number;
  label: string | undefined;
  lastMounted: string | undefined;
  uuid: string | undefined;
  /** Lines mke2fs prints on stdout while parsing (e.g. the 128-byte inode notice). */
  notices: string[];
  /** Lines mke2fs prints on stderr while parsing. */
  warnings: string[];
}

const MAX_32_NUM = 2 ** 32 - 1;
const EXT2_MIN_BLOCK_SIZE = 1024;
const EXT2_MAX_BLOCK_SIZE = 65536;
const SYS_PAGE_SIZE = 4096;

export function fail(message: string): FsError {
  return new FsError("EINVAL", message);
}

/**
 * A size or count with an optional unit: K, M, G, T (powers of 1024) or s (512-byte
 * sectors). A plain number is in blocks. With logBlockSize >= 0 the result is in
 * blocks of 1024 << logBlockSize; with logBlockSize < 0 in bytes. 0 means invalid.
 * Numbers follow strtoull base 0 (0x.. hex, 0.. octal).
 * @kernel parse_num_blocks2 (e2fsprogs lib/e2p/parse_num.c)
 */
export function parseNumBlocks2(arg: string, logBlockSize: number): number {
  const m = /^\s*(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)(.?)$/.exec(arg);
  if (m === null) return 0;
  const digits = m[1] ?? "0";
  let num = Number(digits.startsWith("0") && !/^0[xX]/.test(digits) && digits.length > 1 ? parseInt(digits, 8) : digits);
  const unit = m[2] ?? "";
  const shift = (n: number, bits: number): number => n * 2 ** bits;
  const toBlocks = (n: number): number => (logBlockSize < 0 ? shift(n, 10) : Math.floor(n / 2 ** logBlockSize));
  switch (unit) {
    case "T": case "t": num = toBlocks(shift(num, 30)); break;
    case "G": case "g": num = toBlocks(shift(num, 20)); break;
    case "M": case "m": num = toBlocks(shift(num, 10)); break;
    case "K": case "k": num = toBlocks(num); break;
    case "s": num = logBlockSize < 0 ? shift(num, 9) : Math.floor(num / 2 ** (1 + logBlockSize)); break;
    case "": break;
    default: return 0;
  }
  return Number.isSafeInteger(num) ? num : 0;
}

/** strtoul(s, &p, 0) with *p required to be the end. */
function parseUlong(s: string): number | undefined {
  if (!/^\s*(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(s)) return undefined;
  const t = s.trim();
  const n = /^0[xX]/.test(t) ? parseInt(t, 16) : t.length > 1 && t.startsWith("0") ? parseInt(t, 8) : Number(t);
  return Number.isSafeInteger(n) ? n : undefined;
}

function log2(n: number): number {
  return 31 - Math.clz32(n);
}

function isPowerOf2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** Features mke2fs 1.47.0 accepts at all (ok_features in misc/mke2fs.c). */
const OK_FEATURES: Readonly<Record<FeatureKind, number>> = {
  compat: EXT4_FEATURE_COMPAT_HAS_JOURNAL | EXT4_FEATURE_COMPAT_RESIZE_INODE | EXT4_FEATURE_COMPAT_DIR_INDEX |
    EXT4_FEATURE_COMPAT_EXT_ATTR | EXT4_FEATURE_COMPAT_SPARSE_SUPER2 | EXT4_FEATURE_COMPAT_FAST_COMMIT |
    EXT4_FEATURE_COMPAT_STABLE_INODES | EXT4_FEATURE_COMPAT_ORPHAN_FILE,
  incompat: EXT4_FEATURE_INCOMPAT_FILETYPE | EXT4_FEATURE_INCOMPAT_EXTENTS | EXT4_FEATURE_INCOMPAT_JOURNAL_DEV |
    EXT4_FEATURE_INCOMPAT_META_BG | EXT4_FEATURE_INCOMPAT_FLEX_BG | EXT4_FEATURE_INCOMPAT_EA_INODE |
    EXT4_FEATURE_INCOMPAT_MMP | EXT4_FEATURE_INCOMPAT_64BIT | EXT4_FEATURE_INCOMPAT_INLINE_DATA |
    EXT4_FEATURE_INCOMPAT_ENCRYPT | EXT4_FEATURE_INCOMPAT_CASEFOLD | EXT4_FEATURE_INCOMPAT_CSUM_SEED |
    EXT4_FEATURE_INCOMPAT_LARGEDIR,
  ro_compat: EXT4_FEATURE_RO_COMPAT_LARGE_FILE | EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_DIR_NLINK |
    EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE | EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT4_FEATURE_RO_COMPAT_GDT_CSUM |
    EXT4_FEATURE_RO_COMPAT_BIGALLOC | EXT4_FEATURE_RO_COMPAT_QUOTA | EXT4_FEATURE_RO_COMPAT_METADATA_CSUM |
    EXT4_FEATURE_RO_COMPAT_PROJECT | EXT4_FEATURE_RO_COMPAT_VERITY,
};

/** Of OK_FEATURES, those ext4ts mkfs can build; the rest are refused as not yet supported. */
const BUILDABLE: Readonly<Record<FeatureKind, number>> = {
  compat: EXT4_FEATURE_COMPAT_HAS_JOURNAL | EXT4_FEATURE_COMPAT_RESIZE_INODE | EXT4_FEATURE_COMPAT_DIR_INDEX |
    EXT4_FEATURE_COMPAT_EXT_ATTR | EXT4_FEATURE_COMPAT_STABLE_INODES,
  incompat: EXT4_FEATURE_INCOMPAT_FILETYPE | EXT4_FEATURE_INCOMPAT_EXTENTS | EXT4_FEATURE_INCOMPAT_FLEX_BG |
    EXT4_FEATURE_INCOMPAT_64BIT | EXT4_FEATURE_INCOMPAT_CSUM_SEED | EXT4_FEATURE_INCOMPAT_LARGEDIR,
  ro_compat: EXT4_FEATURE_RO_COMPAT_LARGE_FILE | EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_DIR_NLINK |
    EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE | EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT4_FEATURE_RO_COMPAT_GDT_CSUM |
    EXT4_FEATURE_RO_COMPAT_METADATA_CSUM | EXT4_FEATURE_RO_COMPAT_VERITY | EXT4_FEATURE_RO_COMPAT_QUOTA |
    EXT4_FEATURE_RO_COMPAT_PROJECT,
};

const WORD: Readonly<Record<FeatureKind, keyof FeatureWords>> = {
  compat: "s_feature_compat", incompat: "s_feature_incompat", ro_compat: "s_feature_ro_compat",
};

/**
 * Apply a feature list ("has_journal,^resize_inode", "none") to `words`. Words are
 * separated by commas or blanks; "^" or "-" clears, "+" or nothing sets; "none" or
 * "clear" clears everything. Throws naming the first unknown or unsupported name.
 * @kernel e2p_edit_feature2 (e2fsprogs lib/e2p/feature.c)
 */
export function editFeatures(words: FeatureWords, list: string): void {
  for (const raw of list.split(/[\s,]+/)) {
    if (raw === "") continue;
    let name = raw;
    let neg = false;
    if (name.startsWith("-") || name.startsWith("^")) {
      neg = true;
      name = name.slice(1);
    } else if (name.startsWith("+")) {
      name = name.slice(1);
    }
    if (name.toLowerCase() === "none" || name.toLowerCase() === "clear") {
      words.s_feature_compat = 0;
      words.s_feature_incompat = 0;
      words.s_feature_ro_compat = 0;
      continue;
    }
    const f = parseFeatureName(name);
    if (f === undefined) throw fail(`Invalid filesystem option set: ${list}: unknown feature "${name}"`);
    if (!neg && (OK_FEATURES[f.kind] & f.mask) === 0) {
      throw fail(`Invalid filesystem option set: ${list}: feature "${name}" cannot be set by mkfs`);
    }
    const w = WORD[f.kind];
    words[w] = neg ? (words[w] & ~f.mask) >>> 0 : (words[w] | f.mask) >>> 0;
  }
}

const MNTOPTS: readonly (readonly [string, number])[] = [
  ["debug", EXT4_DEFM_DEBUG], ["bsdgroups", EXT4_DEFM_BSDGROUPS], ["user_xattr", EXT4_DEFM_XATTR_USER],
  ["acl", EXT4_DEFM_ACL], ["uid16", EXT4_DEFM_UID16], ["journal_data", EXT4_DEFM_JMODE_DATA],
  ["journal_data_ordered", EXT4_DEFM_JMODE_ORDERED], ["journal_data_writeback", EXT4_DEFM_JMODE_WBACK],
  ["nobarrier", EXT4_DEFM_NOBARRIER], ["block_validity", EXT4_DEFM_BLOCK_VALIDITY], ["discard", EXT4_DEFM_DISCARD],
  ["nodelalloc", EXT4_DEFM_NODELALLOC],
];

/** @kernel e2p_edit_mntopts (e2fsprogs lib/e2p/mntopts.c) */
export function editMountOpts(opts: number, list: string): number {
  for (const raw of list.split(/[\s,]+/)) {
    if (raw === "") continue;
    const neg = raw.startsWith("^");
    const name = neg ? raw.slice(1) : raw;
    const m = MNTOPTS.find(([n]) => n === name.toLowerCase());
    if (m === undefined) throw fail(`Invalid mount option set: ${list}`);
    const bit = m[1];
    if (bit & EXT4_DEFM_JMODE) opts &= ~EXT4_DEFM_JMODE;
    opts = neg ? opts & ~bit : opts | bit;
  }
  return opts >>> 0;
}

/** A canonical UUID string as 16 bytes, or undefined. @kernel uuid_parse */
export function parseUuid(s: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s)) return undefined;
  const hex = s.replaceAll("-", "");
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

const ERRORS_BEHAVIOR: Readonly<Partial<Record<string, number>>> = {
  continue: EXT4_ERRORS_CONTINUE, "remount-ro": EXT4_ERRORS_RO, panic: EXT4_ERRORS_PANIC,
};
/** e2p_string2hash names (DX_HASH_*). */
const HASH_ALGS: Readonly<Partial<Record<string, number>>> = { legacy: 0, half_md4: 1, tea: 2 };

/** Quota type bits (QUOTA_USR_BIT ... in lib/support/quotaio.h) and their -E quotatype names. */
export const QUOTA_USR_BIT = 1;
export const QUOTA_GRP_BIT = 2;
export const QUOTA_PRJ_BIT = 4;
const QUOTA_TYPES: Readonly<Record<string, number>> = {
  usr: QUOTA_USR_BIT, usrquota: QUOTA_USR_BIT, grp: QUOTA_GRP_BIT, grpquota: QUOTA_GRP_BIT, prj: QUOTA_PRJ_BIT, prjquota: QUOTA_PRJ_BIT,
};

/** -E, as parse_extended_opts in misc/mke2fs.c; quota, offsets, encodings and the like are refused. */
export function parseExtendedOptions(lists: readonly string[], o: { is64bit: boolean; logBlockSize: number; blocksCount: number; blockSize: number; uid: number; gid: number }): ExtendedOptions {
  const ext: ExtendedOptions = {
    rootUid: 0, rootGid: 0, rootPerms: undefined, lazyItableInit: undefined, lazyJournalInit: undefined,
    assumeStoragePrezeroed: false, hashSeed: undefined, descSize: 0, stride: 0, stripeWidth: 0, resize: 0,
    testFs: false, discard: true, noCopyXattrs: false, quotaTypes: undefined,
  };
  const bad: string[] = [];
  const bool01 = (arg: string | undefined, token: string): boolean => {
    if (arg === undefined) return true;
    const n = parseUlong(arg);
    if (n === undefined) bad.push(token);
    return n !== 0;
  };
  for (const list of lists) {
    for (const item of list.split(",")) {
      if (item === "") continue;
      const eq = item.indexOf("=");
      const token = eq < 0 ? item : item.slice(0, eq);
      const arg = eq < 0 ? undefined : item.slice(eq + 1);
      const need = (): string => {
        if (arg === undefined) {
          bad.push(token);
          return "";
        }
        return arg;
      };
      switch (token) {
        case "root_owner": {
          if (arg === undefined) {
            ext.rootUid = o.uid;
            ext.rootGid = o.gid;
            break;
          }
          const m = /^([0-9]+):([0-9]+)$/.exec(arg);
          if (m === null) throw fail(`Invalid root_owner: '${arg}'`);
          ext.rootUid = Number(m[1]);
          ext.rootGid = Number(m[2]);
          if (ext.rootUid > MAX_32_NUM || ext.rootGid > MAX_32_NUM) throw fail(`Invalid root_owner: '${arg}'`);
          break;
        }
        case "root_perms": {
          const a = need();
          if (a !== "" && !/^[0-7]+$/.test(a)) throw fail(`Invalid root_perms: '${a}'`);
          if (a !== "") ext.rootPerms = parseInt(a, 8) & 0o7777;
          break;
        }
        case "lazy_itable_init": ext.lazyItableInit = bool01(arg, token); break;
        case "lazy_journal_init": ext.lazyJournalInit = bool01(arg, token); break;
        case "assume_storage_prezeroed": ext.assumeStoragePrezeroed = bool01(arg, token); break;
        case "hash_seed": {
          const a = need();
          if (a === "") break;
          const u = parseUuid(a);
          if (u === undefined) throw fail(`Invalid hash seed: ${a}`);
          ext.hashSeed = u;
          break;
        }
        case "desc_size": case "desc-size": {
          if (!o.is64bit) throw fail(`${token} requires '-O 64bit'`);
          const a = need();
          const n = parseUlong(a);
          if (n === undefined || n < 64 || n > 1024 || !isPowerOf2(n)) throw fail(`Invalid desc_size: '${a}'`);
          ext.descSize = n;
          break;
        }
        case "stride": {
          const n = parseUlong(need());
          if (n === undefined) throw fail(`Invalid stride parameter: ${arg ?? ""}`);
          ext.stride = n;
          break;
        }
        case "stripe_width": case "stripe-width": {
          const n = parseUlong(need());
          if (n === undefined) throw fail(`Invalid stripe-width parameter: ${arg ?? ""}`);
          ext.stripeWidth = n;
          break;
        }
        case "resize": {
          const a = need();
          const resize = parseNumBlocks2(a, o.logBlockSize);
          if (resize === 0) throw fail(`Invalid resize parameter: ${a}`);
          if (resize <= o.blocksCount) throw fail("The resize maximum must be greater than the filesystem size.");
          const bpg = o.blockSize * 8;
          const gdpb = o.blockSize / (o.is64bit ? 64 : 32);
          const descBlocks = Math.ceil(Math.ceil(o.blocksCount / bpg) / gdpb);
          const rsv = Math.min(Math.ceil(Math.ceil(resize / bpg) / gdpb) - descBlocks, o.blockSize / 4);
          if (rsv > 0) ext.resize = rsv;
          break;
        }
        case "test_fs": ext.testFs = true; break;
        case "discard": ext.discard = true; break;
        case "nodiscard": ext.discard = false; break;
        case "no_copy_xattrs": ext.noCopyXattrs = true; break;
        case "quotatype": {
          // @kernel parse_quota_types (lib/support/parse_qtype.c): replaces the default set
          let bits = 0;
          for (const q of need().split(":")) {
            const b = QUOTA_TYPES[q];
            if (b === undefined) throw fail(`Failed to parse quota type at ${q}`);
            bits |= b;
          }
          ext.quotaTypes = bits;
          break;
        }
        case "offset": case "mmp_update_interval": case "num_backup_sb": case "packed_meta_blocks":
        case "revision": case "encoding": case "encoding_flags": case "orphan_file_size": case "android_sparse":
          throw fail(`Extended option ${token} is not yet supported`);
        default:
          bad.push(token);
      }
    }
  }
  if (bad.length > 0) {
    throw fail(`Bad option(s) specified: ${bad.join(",")}; extended options are separated by commas and may take an argument set off by '=' (root_owner, root_perms, lazy_itable_init, lazy_journal_init, assume_storage_prezeroed, hash_seed, desc_size, stride, stripe_width, resize, test_fs, discard, nodiscard, no_copy_xattrs, quotatype)`);
  }
  return ext;
}

/** -J: size=MB and location=BLOCK. @kernel parse_journal_opts (e2fsprogs misc/util.c) */
export function parseJournalOptions(lists: readonly string[]): { size: number; location: string | undefined } {
  let size = 0;
  let location: string | undefined;
  for (const list of lists) {
    for (const item of list.split(",")) {
      if (item === "") continue;
      const eq = item.indexOf("=");
      const token = eq < 0 ? item : item.slice(0, eq);
      const arg = eq < 0 ? undefined : item.slice(eq + 1);
      if (token === "size" && arg !== undefined && parseUlong(arg) !== undefined) size = parseUlong(arg) ?? 0;
      else if (token === "location" && arg !== undefined) location = arg;
      else if (token === "device" || token === "fast_commit_size") throw fail(`Journal option ${token} is not yet supported`);
      else throw fail(`Bad journal options specified: ${item}; journal options are size=<journal size in megabytes> and location=<journal location>`);
    }
  }
  return { size, location };
}

/** Refuse what mkfs cannot build yet, naming the feature. */
export function checkBuildable(words: FeatureWords): void {
  for (const kind of ["compat", "incompat", "ro_compat"] as const) {
    const extra = words[WORD[kind]] & ~BUILDABLE[kind];
    for (let bit = 0; bit < 32; bit++) {
      const mask = 2 ** bit;
      if (((extra >>> bit) & 1) === 1) throw fail(`Feature ${featureName(kind, mask)} is not yet supported by ext4ts mkfs`);
    }
  }
}

export interface DeviceInfo {
  /** Size of the existing file or device in bytes; undefined if the file does not exist. */
  bytes: number | undefined;
  /** A block device rather than a regular file. */
  isDevice: boolean;
  /** For messages. */
  name: string;
}

const has = (w: FeatureWords, kind: FeatureKind, mask: number): boolean => (w[WORD[kind]] & mask) !== 0;
const clear = (w: FeatureWords, kind: FeatureKind, mask: number): void => {
  w[WORD[kind]] = (w[WORD[kind]] & ~mask) >>> 0;
};
const set = (w: FeatureWords, kind: FeatureKind, mask: number): void => {
  w[WORD[kind]] = (w[WORD[kind]] | mask) >>> 0;
};

/**
 * From options and device size to MkfsParams, with every check and default of mke2fs'
 * PRS(). Throws FsError("EINVAL") where mke2fs exits 1.
 * @kernel PRS (e2fsprogs misc/mke2fs.c)
 */
export function resolveParams(opts: MkfsOptions, dev: DeviceInfo, ids: { uid: number; gid: number } = { uid: 0, gid: 0 }): MkfsParams {
  const profile = opts.profile ?? MKE2FS_CONF_1_47_0;
  const notices: string[] = [];
  const warnings: string[] = [];

  let blocksize = 0;
  if (opts.blockSize !== undefined) {
    blocksize = parseNumBlocks2(opts.blockSize, -1);
    if (blocksize < EXT2_MIN_BLOCK_SIZE || blocksize > EXT2_MAX_BLOCK_SIZE || !isPowerOf2(blocksize)) {
      throw fail(`invalid block size - ${opts.blockSize}`);
    }
    if (blocksize > SYS_PAGE_SIZE) warnings.push(`Warning: blocksize ${blocksize} not usable on most systems.`);
  }
  let logBlockSize = blocksize > 0 ? log2(blocksize >> 10) : 0;

  let blocks = 0;
  if (opts.size !== undefined) {
    blocks = parseNumBlocks2(opts.size, logBlockSize);
    if (blocks === 0) throw fail(`invalid blocks '${opts.size}' on device '${dev.name}'`);
  } else {
    if (dev.bytes === undefined) throw fail(`The file ${dev.name} does not exist and no size was specified.`);
    const unit = 1024 << logBlockSize;
    blocks = Math.floor(dev.bytes / unit);
    if (blocks === 0) throw fail(`Device size reported to be zero: ${dev.name} holds less than one ${unit}-byte block`);
    if (SYS_PAGE_SIZE > unit) blocks -= blocks % (SYS_PAGE_SIZE / unit);
  }

  const fsType = opts.fsType ?? "ext4";
  if (!["ext2", "ext3", "ext4"].includes(fsType)) throw fail(`Unsupported filesystem type ${fsType}: use ext2, ext3 or ext4`);
  const { types, unknown } = resolveFsTypes(profile, fsType, opts.usageTypes ?? sizeType(blocks, 1024 << logBlockSize));
  for (const t of unknown) warnings.push(`Warning: the fs_type ${t} is not defined in mke2fs.conf`);

  // Features: base, each type's, default_features unless -O, then -O.
  const features: FeatureWords = { s_feature_compat: 0, s_feature_incompat: 0, s_feature_ro_compat: 0 };
  editFeatures(features, profileString(profile, types, "base_features", "sparse_super,large_file,filetype,resize_inode,dir_index"));
  const mntopts = editMountOpts(0, profileString(profile, types, "default_mntopts", "acl,user_xattr"));
  for (const f of profileTypeFeatures(profile, types)) editFeatures(features, f);
  const userFeatures = (opts.features ?? []).join(",");
  if (userFeatures === "") editFeatures(features, profileString(profile, types, "default_features", ""));
  const defaultCsumSeed = has(features, "incompat", EXT4_FEATURE_INCOMPAT_CSUM_SEED);
  if (userFeatures !== "") editFeatures(features, userFeatures);
  if (defaultCsumSeed && !has(features, "ro_compat", EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) {
    clear(features, "incompat", EXT4_FEATURE_INCOMPAT_CSUM_SEED);
  }

  if (blocksize <= 0) {
    let use = profileInt(profile, types, "blocksize", 4096);
    if (use === -1) use = SYS_PAGE_SIZE;
    blocksize = use;
    blocks = Math.floor(blocks / (blocksize / 1024));
  }
  logBlockSize = log2(blocksize >> 10);

  if (blocks > MAX_32_NUM && has(features, "incompat", EXT4_FEATURE_INCOMPAT_64BIT)) {
    clear(features, "compat", EXT4_FEATURE_COMPAT_RESIZE_INODE);
  }
  if (blocks > MAX_32_NUM && !has(features, "incompat", EXT4_FEATURE_INCOMPAT_64BIT)) {
    throw fail(`Size of device (0x${blocks.toString(16)} blocks) ${dev.name} too big to be expressed in 32 bits using a blocksize of ${blocksize}.`);
  }
  if (blocks > 2 ** (logBlockSize + 10 + 3 + 32) - 1) {
    throw fail(`Size of device (0x${blocks.toString(16)} blocks) ${dev.name} too big to create a filesystem using a blocksize of ${blocksize}.`);
  }

  const jopts = parseJournalOptions(opts.journalOptions ?? []);
  let journalSize = opts.journal === true ? -1 : 0;
  if (jopts.size > 0) journalSize = jopts.size;
  else if ((opts.journalOptions ?? []).length > 0 && journalSize === 0) journalSize = -1;
  if (journalSize !== 0) set(features, "compat", EXT4_FEATURE_COMPAT_HAS_JOURNAL);

  let reservedRatio: number;
  if (opts.reservedPercent !== undefined) {
    reservedRatio = Number(opts.reservedPercent);
    if (opts.reservedPercent.trim() === "" || !Number.isFinite(reservedRatio) || reservedRatio > 50 || reservedRatio < 0) {
      throw fail(`invalid reserved blocks percent - ${opts.reservedPercent}`);
    }
  } else {
    reservedRatio = profileInt(profile, types, "reserved_ratio", 5);
  }

  if (has(features, "incompat", EXT4_FEATURE_INCOMPAT_64BIT) && !has(features, "incompat", EXT4_FEATURE_INCOMPAT_EXTENTS)) {
    throw fail("Extents MUST be enabled for a 64-bit filesystem.  Pass -O extents to rectify.");
  }
  if (has(features, "ro_compat", EXT4_FEATURE_RO_COMPAT_VERITY) && !has(features, "incompat", EXT4_FEATURE_INCOMPAT_EXTENTS)) {
    throw fail("Extents MUST be enabled for fs-verity support.  Pass -O extents to rectify.");
  }

  let inodeRatio: number;
  if (opts.bytesPerInode !== undefined) {
    inodeRatio = parseNumBlocks2(opts.bytesPerInode, -1);
    if (inodeRatio < EXT2_MIN_BLOCK_SIZE || inodeRatio > EXT2_MAX_BLOCK_SIZE * 1024) {
      throw fail(`invalid inode ratio ${opts.bytesPerInode} (min ${EXT2_MIN_BLOCK_SIZE}/max ${EXT2_MAX_BLOCK_SIZE * 1024})`);
    }
  } else {
    inodeRatio = Math.max(profileInt(profile, types, "inode_ratio", 8192), blocksize);
  }

  const is64 = has(features, "incompat", EXT4_FEATURE_INCOMPAT_64BIT);
  if (blocksize > SYS_PAGE_SIZE) {
    if (opts.force !== true) throw fail(`${blocksize}-byte blocks too big for system (max ${SYS_PAGE_SIZE}); use -F to force`);
    warnings.push(`Warning: ${blocksize}-byte blocks too big for system (max ${SYS_PAGE_SIZE}), forced to continue`);
  }

  const lastExtended = opts.extended?.[opts.extended.length - 1];
  const ext = parseExtendedOptions(lastExtended === undefined ? [] : [lastExtended], { is64bit: is64, logBlockSize, blocksCount: blocks, blockSize: blocksize, ...ids });
  if (ext.resize > 0) set(features, "compat", EXT4_FEATURE_COMPAT_RESIZE_INODE);
  if (ext.stride > 0 && ext.stripeWidth % ext.stride !== 0) {
    warnings.push(`Warning: RAID stripe-width ${ext.stripeWidth} not an even multiple of stride ${ext.stride}.`);
  }

  if (has(features, "ro_compat", EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) clear(features, "ro_compat", EXT4_FEATURE_RO_COMPAT_GDT_CSUM);
  if (has(features, "ro_compat", EXT4_FEATURE_RO_COMPAT_BIGALLOC) && !has(features, "incompat", EXT4_FEATURE_INCOMPAT_EXTENTS)) {
    throw fail("Can't support bigalloc feature without extents feature");
  }
  if (has(features, "incompat", EXT4_FEATURE_INCOMPAT_META_BG) && has(features, "compat", EXT4_FEATURE_COMPAT_RESIZE_INODE)) {
    throw fail("The resize_inode and meta_bg features are not compatible. They can not be both enabled simultaneously.");
  }
  if (has(features, "compat", EXT4_FEATURE_COMPAT_RESIZE_INODE) && !has(features, "ro_compat", EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER)) {
    throw fail("reserved online resize blocks not supported on non-sparse filesystem");
  }
  if (has(features, "incompat", EXT4_FEATURE_INCOMPAT_CSUM_SEED) && !has(features, "ro_compat", EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) {
    throw fail("The metadata_csum_seed feature requires the metadata_csum feature.");
  }

  let bpg = 0;
  if (opts.blocksPerGroup !== undefined) {
    const n = parseUlong(opts.blocksPerGroup);
    if (n === undefined) throw fail("Illegal number for blocks per group");
    if (n % 8 !== 0) throw fail("blocks per group must be multiple of 8");
    if (n < 256 || n > 8 * blocksize) throw fail("blocks per group count out of range");
    bpg = n;
  }

  let inodeSize = 0;
  if (opts.inodeSize !== undefined) {
    const n = parseUlong(opts.inodeSize);
    if (n === undefined) throw fail(`invalid inode size - ${opts.inodeSize}`);
    inodeSize = n;
  }
  // Project quota: -E quotatype=prjquota turns the feature on; the feature needs i_projid,
  // so inodes of at least 256 bytes, and adds the project quota file. @kernel PRS (misc/mke2fs.c)
  let quotaTypes = ext.quotaTypes ?? QUOTA_USR_BIT | QUOTA_GRP_BIT;
  if (quotaTypes & QUOTA_PRJ_BIT) set(features, "ro_compat", EXT4_FEATURE_RO_COMPAT_PROJECT);
  if (has(features, "ro_compat", EXT4_FEATURE_RO_COMPAT_PROJECT)) {
    quotaTypes |= QUOTA_PRJ_BIT;
    if (inodeSize === 128) throw fail("128 byte inodes are too small for project quota");
    if (inodeSize === 0) inodeSize = Math.max(profileInt(profile, types, "inode_size", 0), 256);
  }
  if (!has(features, "ro_compat", EXT4_FEATURE_RO_COMPAT_QUOTA)) quotaTypes = 0;
  if (inodeSize === 0) inodeSize = profileInt(profile, types, "inode_size", 0);

  let logGroupsPerFlex = 0;
  let flexSize = 0;
  if (opts.flexBgSize !== undefined) {
    const n = parseUlong(opts.flexBgSize);
    if (n === undefined) throw fail("Illegal number for flex_bg size");
    if (n < 1 || !isPowerOf2(n)) throw fail("flex_bg size must be a power of 2");
    flexSize = n;
  }
  if (flexSize === 0 && has(features, "incompat", EXT4_FEATURE_INCOMPAT_FLEX_BG)) flexSize = profileInt(profile, types, "flex_bg_size", 16);
  if (flexSize > 0) {
    if (!has(features, "incompat", EXT4_FEATURE_INCOMPAT_FLEX_BG)) throw fail("Flex_bg feature not enabled, so flex_bg size may not be specified");
    logGroupsPerFlex = log2(flexSize);
  }

  if (inodeSize !== 0 && (inodeSize < 128 || inodeSize > blocksize || !isPowerOf2(inodeSize))) {
    throw fail(`invalid inode size ${inodeSize} (min 128/max ${blocksize})`);
  }
  if (inodeSize === 0) inodeSize = 128;
  if (inodeSize === 128 && profileBool(profile, types, "warn_y2038_dates", true)) {
    notices.push("128-byte inodes cannot handle dates beyond 2038 and are deprecated");
  }

  let numInodes = 0;
  if (opts.inodeCount !== undefined) {
    const n = parseUlong(opts.inodeCount);
    if (n === undefined) throw fail(`bad num inodes - ${opts.inodeCount}`);
    if (n > MAX_32_NUM) throw fail(`too many inodes (${n}), specify < 2^32 inodes`);
    numInodes = n;
  } else {
    const n = Math.floor((blocks * blocksize) / inodeRatio);
    if (n > MAX_32_NUM) {
      if (!is64) throw fail(`too many inodes (${n}), raise inode ratio?`);
      numInodes = MAX_32_NUM;
    }
  }
  const inodesCount = numInodes !== 0 ? numInodes : Math.floor((blocks * blocksize) / inodeRatio);
  if (inodesCount * inodeSize >= blocks * blocksize) {
    throw fail(`inode_size (${inodeSize}) * inodes_count (${inodesCount}) too big for a filesystem with ${blocks} blocks, specify higher inode_ratio (-i) or lower inode count (-N).`);
  }
  const rBlocksCount = Math.floor((reservedRatio * blocks) / 100.0);

  let errors = EXT4_ERRORS_CONTINUE;
  const profErrors = profileString(profile, types, "errors", "");
  const behavior = opts.errorsBehavior ?? (profErrors === "" ? undefined : profErrors);
  if (behavior !== undefined) {
    const e = ERRORS_BEHAVIOR[behavior];
    if (e === undefined) throw fail(`bad error behavior - ${behavior}`);
    errors = e;
  }

  const hashName = profileString(profile, types, "hash_alg", "half_md4");
  const hashAlg = HASH_ALGS[hashName] ?? 1;

  if (opts.label !== undefined && new TextEncoder().encode(opts.label).length > 16) {
    warnings.push(`Warning: label too long; will be truncated to '${truncateUtf8(opts.label, 16)}'`);
  }

  const lazyItable = ext.lazyItableInit ?? profileBool(profile, types, "lazy_itable_init", true);
  const lazyJournal = ext.lazyJournalInit ?? profileBool(profile, types, "lazy_journal_init", false);
  ext.lazyItableInit = lazyItable;
  ext.lazyJournalInit = lazyJournal;

  checkBuildable(features);

  return {
    fsTypes: types,
    blockSize: blocksize,
    logBlockSize,
    blocksCount: blocks,
    features,
    inodeSize,
    inodesCount,
    rBlocksCount,
    logGroupsPerFlex,
    blocksPerGroup: bpg,
    descSize: is64 ? (ext.descSize || 64) : 0,
    reservedGdtBlocks: ext.resize,
    defaultMountOpts: mntopts,
    errors,
    hashAlg,
    periodicFsck: profileBool(profile, types, "enable_periodic_fsck", false),
    journalSize,
    journalLocation: jopts.location === undefined ? undefined : parseNumBlocks2(jopts.location, logBlockSize),
    ext,
    quotaTypes,
    label: opts.label,
    lastMounted: opts.lastMounted,
    uuid: opts.uuid,
    notices,
    warnings,
  };
}

/** The longest prefix of `s` whose UTF-8 encoding fits `max` bytes (mke2fs cuts bytes). */
export function truncateUtf8(s: string, max: number): string {
  const b = new TextEncoder().encode(s);
  if (b.length <= max) return s;
  return new TextDecoder().decode(b.subarray(0, max)).replace(/\uFFFD$/, "");
}
