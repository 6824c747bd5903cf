/**
 * mke2fs.conf as e2fsprogs 1.47.0 installs it (misc/mke2fs.conf.in, Debian's
 * /etc/mke2fs.conf), built in so `ext4ts mkfs` makes the same filesystem on every
 * machine, plus the profile look-ups of misc/mke2fs.c: which [fs_types] sections apply
 * (parse_fs_type) and how a relation is resolved over them (get_int_from_profile,
 * get_string_from_profile).
 */

export interface ProfileSection {
  readonly base_features?: string;
  readonly default_features?: string;
  readonly features?: string;
  readonly default_mntopts?: string;
  readonly enable_periodic_fsck?: boolean;
  readonly blocksize?: number;
  readonly inode_size?: number;
  readonly inode_ratio?: number;
  readonly reserved_ratio?: number;
  readonly flex_bg_size?: number;
  readonly hash_alg?: string;
  readonly lazy_itable_init?: boolean;
  readonly lazy_journal_init?: boolean;
  readonly errors?: string;
  readonly warn_y2038_dates?: boolean;
}

export interface Profile {
  readonly defaults: ProfileSection;
  readonly fs_types: Readonly<Record<string, ProfileSection>>;
}

/** /etc/mke2fs.conf of e2fsprogs 1.47.0. */
export const MKE2FS_CONF_1_47_0: Profile = {
  defaults: {
    base_features: "sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr",
    default_mntopts: "acl,user_xattr",
    enable_periodic_fsck: false,
    blocksize: 4096,
    inode_size: 256,
    inode_ratio: 16384,
  },
  fs_types: {
    ext3: { features: "has_journal" },
    ext4: { features: "has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize" },
    small: { blocksize: 1024, inode_ratio: 4096 },
    floppy: { blocksize: 1024, inode_ratio: 8192 },
    big: { inode_ratio: 32768 },
    huge: { inode_ratio: 65536 },
    news: { inode_ratio: 4096 },
    largefile: { inode_ratio: 1048576, blocksize: -1 },
    largefile4: { inode_ratio: 4194304, blocksize: -1 },
    hurd: { blocksize: 4096, inode_size: 128, warn_y2038_dates: false },
  },
};

type NumKey = "blocksize" | "inode_size" | "inode_ratio" | "reserved_ratio" | "flex_bg_size";
type StrKey = "base_features" | "default_features" | "default_mntopts" | "hash_alg" | "errors";
type BoolKey = "enable_periodic_fsck" | "lazy_itable_init" | "lazy_journal_init" | "warn_y2038_dates";

/**
 * The size class mke2fs picks when -T is not given, from the size in 1 KiB blocks
 * (mke2fs counts in the -b block size, 1 KiB when -b is absent).
 * @kernel parse_fs_type (e2fsprogs misc/mke2fs.c)
 */
export function sizeType(blocks: number, blockSize: number): string {
  const meg = (1024 * 1024) / blockSize;
  if (blocks < 3 * meg) return "floppy";
  if (blocks < 512 * meg) return "small";
  if (blocks < 4 * 1024 * 1024 * meg) return "default";
  if (blocks < 16 * 1024 * 1024 * meg) return "big";
  return "huge";
}

export interface FsTypes {
  /** Sections that apply, in order: the filesystem type, then each usage type. */
  readonly types: readonly string[];
  /** Usage types named with -T that mke2fs.conf does not define (mke2fs warns). */
  readonly unknown: readonly string[];
}

/** @kernel parse_fs_type (e2fsprogs misc/mke2fs.c) */
export function resolveFsTypes(profile: Profile, fsType: string, usageTypes: string): FsTypes {
  const types = [fsType];
  const unknown: string[] = [];
  for (const t of usageTypes.split(",")) {
    if (t === "") continue;
    if (Object.hasOwn(profile.fs_types, t)) types.push(t);
    else if (t !== "default") unknown.push(t);
  }
  return { types, unknown };
}

function section(profile: Profile, name: string): ProfileSection | undefined {
  return Object.hasOwn(profile.fs_types, name) ? profile.fs_types[name] : undefined;
}

/** Defaults first, then each type in order overrides. @kernel get_int_from_profile */
export function profileInt(profile: Profile, types: readonly string[], key: NumKey, def: number): number {
  let v = profile.defaults[key] ?? def;
  for (const t of types) v = section(profile, t)?.[key] ?? v;
  return v;
}

/** The last type that sets it wins, else defaults. @kernel get_string_from_profile */
export function profileString(profile: Profile, types: readonly string[], key: StrKey, def: string): string {
  for (let i = types.length - 1; i >= 0; i--) {
    const v = section(profile, types[i] ?? "")?.[key];
    if (v !== undefined) return v;
  }
  return profile.defaults[key] ?? def;
}

/** @kernel get_bool_from_profile */
export function profileBool(profile: Profile, types: readonly string[], key: BoolKey, def: boolean): boolean {
  let v = profile.defaults[key] ?? def;
  for (const t of types) v = section(profile, t)?.[key] ?? v;
  return v;
}

/** Each type's own "features" relation, in order. */
export function profileTypeFeatures(profile: Profile, types: readonly string[]): string[] {
  const out: string[] = [];
  for (const t of types) {
    const f = section(profile, t)?.features;
    if (f !== undefined && f !== "") out.push(f);
  }
  return out;
}
