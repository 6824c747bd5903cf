/**
 * struct ext4_inode (fs/ext4/ext4.h; Documentation/filesystems/ext4/inodes.rst).
 *
 * The first 128 bytes are the "good old" inode every revision has. Fields from 0x80 on
 * exist only when the inode size is larger and `i_extra_isize` covers them; decode with
 * `limit = inodeLimit(...)` so a field the inode does not have reads as zero.
 */

import { bytes, defineStruct, join64, u16le, u32le, type FieldsOf } from "./struct.js";

export const EXT4_GOOD_OLD_INODE_SIZE = 128;
export const EXT4_N_BLOCKS = 15;

export const inodeStruct = defineStruct("ext4_inode", 0xa0, {
  i_mode: [0x0, u16le],
  i_uid: [0x2, u16le], // low 16 bits of owner uid
  i_size_lo: [0x4, u32le],
  i_atime: [0x8, u32le], // seconds, signed; epoch bits in i_atime_extra
  i_ctime: [0xc, u32le],
  i_mtime: [0x10, u32le],
  i_dtime: [0x14, u32le], // deletion time, or next inode on the orphan list
  i_gid: [0x18, u16le],
  i_links_count: [0x1a, u16le],
  i_blocks_lo: [0x1c, u32le],
  i_flags: [0x20, u32le],
  l_i_version: [0x24, u32le], // osd1 (Linux)
  i_block: [0x28, bytes(60)], // extent root, block map, fast symlink or inline data
  i_generation: [0x64, u32le],
  i_file_acl_lo: [0x68, u32le],
  i_size_high: [0x6c, u32le],
  i_obso_faddr: [0x70, u32le],
  l_i_blocks_high: [0x74, u16le], // osd2 (Linux) from here to 0x80
  l_i_file_acl_high: [0x76, u16le],
  l_i_uid_high: [0x78, u16le],
  l_i_gid_high: [0x7a, u16le],
  l_i_checksum_lo: [0x7c, u16le],
  l_i_reserved: [0x7e, u16le],
  i_extra_isize: [0x80, u16le],
  i_checksum_hi: [0x82, u16le],
  i_ctime_extra: [0x84, u32le], // (nsec << 2) | epoch bits
  i_mtime_extra: [0x88, u32le],
  i_atime_extra: [0x8c, u32le],
  i_crtime: [0x90, u32le],
  i_crtime_extra: [0x94, u32le],
  i_version_hi: [0x98, u32le],
  i_projid: [0x9c, u32le],
});
export type RawInode = FieldsOf<typeof inodeStruct>;

// i_mode file types (S_IF*, include/uapi/linux/stat.h)
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

// i_flags (EXT4_*_FL)
export const EXT4_SECRM_FL = 0x1;
export const EXT4_UNRM_FL = 0x2;
export const EXT4_COMPR_FL = 0x4;
export const EXT4_SYNC_FL = 0x8;
export const EXT4_IMMUTABLE_FL = 0x10;
export const EXT4_APPEND_FL = 0x20;
export const EXT4_NODUMP_FL = 0x40;
export const EXT4_NOATIME_FL = 0x80;
export const EXT4_ENCRYPT_FL = 0x800;
export const EXT4_INDEX_FL = 0x1000;
export const EXT4_IMAGIC_FL = 0x2000;
export const EXT4_JOURNAL_DATA_FL = 0x4000;
export const EXT4_NOTAIL_FL = 0x8000;
export const EXT4_DIRSYNC_FL = 0x10000;
export const EXT4_TOPDIR_FL = 0x20000;
export const EXT4_HUGE_FILE_FL = 0x40000;
export const EXT4_EXTENTS_FL = 0x80000;
export const EXT4_VERITY_FL = 0x100000;
export const EXT4_EA_INODE_FL = 0x200000;
export const EXT4_DAX_FL = 0x2000000;
export const EXT4_INLINE_DATA_FL = 0x10000000;
export const EXT4_PROJINHERIT_FL = 0x20000000;
export const EXT4_CASEFOLD_FL = 0x40000000;

const INODE_FLAG_NAMES: readonly (readonly [number, string])[] = [
  [EXT4_SECRM_FL, "SECRM"], [EXT4_UNRM_FL, "UNRM"], [EXT4_COMPR_FL, "COMPR"], [EXT4_SYNC_FL, "SYNC"],
  [EXT4_IMMUTABLE_FL, "IMMUTABLE"], [EXT4_APPEND_FL, "APPEND"], [EXT4_NODUMP_FL, "NODUMP"],
  [EXT4_NOATIME_FL, "NOATIME"], [EXT4_ENCRYPT_FL, "ENCRYPT"], [EXT4_INDEX_FL, "INDEX"],
  [EXT4_IMAGIC_FL, "IMAGIC"], [EXT4_JOURNAL_DATA_FL, "JOURNAL_DATA"], [EXT4_NOTAIL_FL, "NOTAIL"],
  [EXT4_DIRSYNC_FL, "DIRSYNC"], [EXT4_TOPDIR_FL, "TOPDIR"], [EXT4_HUGE_FILE_FL, "HUGE_FILE"],
  [EXT4_EXTENTS_FL, "EXTENTS"], [EXT4_VERITY_FL, "VERITY"], [EXT4_EA_INODE_FL, "EA_INODE"],
  [EXT4_DAX_FL, "DAX"], [EXT4_INLINE_DATA_FL, "INLINE_DATA"], [EXT4_PROJINHERIT_FL, "PROJINHERIT"],
  [EXT4_CASEFOLD_FL, "CASEFOLD"],
];

/** Flag names for dumps, e.g. "EXTENTS|HUGE_FILE"; unknown bits in hex. */
export function describeInodeFlags(flags: number): string {
  const out: string[] = [];
  let rest = flags >>> 0;
  for (const [bit, name] of INODE_FLAG_NAMES) {
    if (rest & bit) {
      out.push(name);
      rest = (rest & ~bit) >>> 0;
    }
  }
  if (rest) out.push(`0x${rest.toString(16)}`);
  return out.join("|");
}

// Reserved inode numbers (EXT4_*_INO)
export const EXT4_BAD_INO = 1;
export const EXT4_ROOT_INO = 2;
export const EXT4_USR_QUOTA_INO = 3;
export const EXT4_GRP_QUOTA_INO = 4;
export const EXT4_BOOT_LOADER_INO = 5;
export const EXT4_UNDEL_DIR_INO = 6;
export const EXT4_RESIZE_INO = 7;
export const EXT4_JOURNAL_INO = 8;
export const EXT4_GOOD_OLD_FIRST_INO = 11;

/** How many bytes of the on-disk inode are valid: 128, or 128 + i_extra_isize. */
export function inodeLimit(inodeSize: number, extraIsize: number): number {
  return inodeSize > EXT4_GOOD_OLD_INODE_SIZE ? EXT4_GOOD_OLD_INODE_SIZE + extraIsize : EXT4_GOOD_OLD_INODE_SIZE;
}

/** Decode an inode of `inodeSize` bytes at `offset`, honouring i_extra_isize. */
export function decodeInode(buf: Uint8Array, offset: number, inodeSize: number): RawInode {
  const base = inodeStruct.decode(buf, offset, EXT4_GOOD_OLD_INODE_SIZE);
  if (inodeSize <= EXT4_GOOD_OLD_INODE_SIZE) return base;
  const extra = buf[offset + 0x80]! | (buf[offset + 0x81]! << 8); // i_extra_isize, read before the full decode
  return inodeStruct.decode(buf, offset, Math.min(inodeSize, inodeLimit(inodeSize, extra)));
}

/** Does `field` lie inside the inode's valid bytes? @kernel EXT4_FITS_IN_INODE */
export function fitsInInode(raw: RawInode, inodeSize: number, field: keyof RawInode): boolean {
  return inodeStruct.endOf(field) <= inodeLimit(inodeSize, raw.i_extra_isize);
}

export interface Timespec {
  sec: number;
  nsec: number;
}

const EXT4_EPOCH_MASK = 3;

/**
 * Decode a timestamp: signed 32-bit seconds, extended by two epoch bits and carrying
 * nanoseconds in the `_extra` word when the inode has it.
 * @kernel ext4_decode_extra_time / EXT4_INODE_GET_XTIME
 */
export function decodeTime(base: number, extra: number, hasExtra: boolean): Timespec {
  const sec = base | 0; // signed
  if (!hasExtra) return { sec, nsec: 0 };
  return { sec: sec + (extra & EXT4_EPOCH_MASK) * 2 ** 32, nsec: extra >>> 2 };
}

export type TimeField = "i_atime" | "i_mtime" | "i_ctime" | "i_crtime";

/**
 * Encode a timestamp into (base, extra): low 32 bits of the seconds, and the epoch
 * bits plus nanoseconds. @kernel ext4_encode_extra_time / EXT4_INODE_SET_XTIME
 */
export function encodeTime(t: Timespec): { base: number; extra: number } {
  const base = t.sec | 0; // low 32 bits, as signed
  const epoch = ((t.sec - base) / 2 ** 32) & EXT4_EPOCH_MASK;
  return { base: base >>> 0, extra: ((t.nsec << 2) | epoch) >>> 0 };
}

/** Set one of the inode's times (the _extra word only where the inode has it). */
export function setInodeTime(raw: RawInode, inodeSize: number, which: TimeField, t: Timespec): void {
  const { base, extra } = encodeTime(t);
  raw[which] = base;
  const extraField = `${which}_extra` as const;
  if (fitsInInode(raw, inodeSize, extraField)) raw[extraField] = extra;
}

export function inodeTime(raw: RawInode, inodeSize: number, which: TimeField): Timespec {
  const extraField = `${which}_extra` as const;
  return decodeTime(raw[which], raw[extraField], fitsInInode(raw, inodeSize, extraField));
}

/** File size in bytes. @kernel ext4_isize */
export function inodeSize64(raw: RawInode, largedir: boolean): number {
  if ((raw.i_mode & S_IFMT) === S_IFREG || largedir) return join64(raw.i_size_lo, raw.i_size_high);
  return raw.i_size_lo;
}

export function inodeUid(raw: RawInode): number {
  return (raw.i_uid | (raw.l_i_uid_high << 16)) >>> 0;
}

export function inodeGid(raw: RawInode): number {
  return (raw.i_gid | (raw.l_i_gid_high << 16)) >>> 0;
}

export function inodeFileAcl(raw: RawInode, is64bit: boolean): number {
  return join64(raw.i_file_acl_lo, is64bit ? raw.l_i_file_acl_high : 0);
}

/**
 * i_blocks in 512-byte sectors. With huge_file the high 16 bits count, and an inode
 * flagged EXT4_HUGE_FILE_FL counts filesystem blocks instead of sectors.
 * @kernel ext4_inode_blocks
 */
export function inodeBlocks(raw: RawInode, hugeFile: boolean, blockSize: number): number {
  if (!hugeFile) return raw.i_blocks_lo;
  const n = join64(raw.i_blocks_lo, raw.l_i_blocks_high);
  return raw.i_flags & EXT4_HUGE_FILE_FL ? n * (blockSize / 512) : n;
}

/** Device number of a character or block special file as (major, minor). @kernel ext4_iget (old/new_decode_dev) */
export function inodeRdev(raw: RawInode): { major: number; minor: number } {
  const dv = new DataView(raw.i_block.buffer, raw.i_block.byteOffset, raw.i_block.byteLength);
  const old = dv.getUint32(0, true);
  if (old !== 0) return { major: (old >>> 8) & 0xff, minor: old & 0xff };
  const dev = dv.getUint32(4, true);
  return { major: (dev & 0xfff00) >>> 8, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
}

/** Little-endian u32 word `i` of i_block[] (block map pointers). */
export function iBlockWord(raw: RawInode, i: number): number {
  const b = raw.i_block;
  const o = i * 4;
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}
