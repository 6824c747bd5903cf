/**
 * Linear directory blocks (fs/ext4/ext4.h struct ext4_dir_entry_2, dir.c, namei.c;
 * Documentation/filesystems/ext4/directory.rst).
 *
 * A block is a chain of variable-length entries whose rec_len values add up to the
 * block size; a deleted entry is absorbed into its predecessor's rec_len or has inode 0.
 * With metadata_csum the last 12 bytes are a fake entry (the tail) holding the checksum.
 */

import { FsError, type FsErrorDetail } from "../errors.js";
import { defineStruct, u16le, u32le, u8 } from "./struct.js";

export const dirEntry = defineStruct("ext4_dir_entry_2", 8, {
  inode: [0x0, u32le], // 0: unused entry
  rec_len: [0x4, u16le], // distance to the next entry (see recLenFromDisk)
  name_len: [0x6, u8],
  file_type: [0x7, u8], // EXT4_FT_*, only meaningful with the filetype feature
});

export const dirEntryTail = defineStruct("ext4_dir_entry_tail", 12, {
  det_reserved_zero1: [0x0, u32le], // looks like inode 0
  det_rec_len: [0x4, u16le], // 12
  det_reserved_zero2: [0x6, u8], // name_len 0
  det_reserved_ft: [0x7, u8], // EXT4_FT_DIR_CSUM
  det_checksum: [0x8, u32le],
});

export const EXT4_NAME_LEN = 255;

export const EXT4_FT_UNKNOWN = 0;
export const EXT4_FT_REG_FILE = 1;
export const EXT4_FT_DIR = 2;
export const EXT4_FT_CHRDEV = 3;
export const EXT4_FT_BLKDEV = 4;
export const EXT4_FT_FIFO = 5;
export const EXT4_FT_SOCK = 6;
export const EXT4_FT_SYMLINK = 7;
export const EXT4_FT_DIR_CSUM = 0xde;

/** Bytes an entry with a name of `nameLen` bytes needs. @kernel EXT4_DIR_REC_LEN (ext4_dir_rec_len) */
export function dirRecLen(nameLen: number): number {
  return (nameLen + 8 + 3) & ~3;
}

/** @kernel ext4_rec_len_from_disk: 64 KiB blocks store 65536 as 65535 (or 0) and use the low bits. */
export function recLenFromDisk(dlen: number, blockSize: number): number {
  if (blockSize < 65536) return dlen;
  if (dlen === 65535 || dlen === 0) return blockSize;
  return (dlen & 65532) | ((dlen & 3) << 16);
}

/** @kernel ext4_rec_len_to_disk */
export function recLenToDisk(len: number, blockSize: number): number {
  if (blockSize < 65536) return len;
  if (len === blockSize) return blockSize === 65536 ? 65535 : 0;
  return (len & 65532) | ((len >> 16) & 3);
}

export interface DirEntry {
  /** Byte offset of the entry in the block (or inline area). */
  offset: number;
  inode: number;
  recLen: number;
  fileType: number;
  name: Uint8Array;
}

/** Is there a valid checksum tail at the end of this block? @kernel get_dirent_tail */
export function hasDirTail(block: Uint8Array, blockSize: number): boolean {
  if (blockSize < dirEntryTail.size) return false;
  const t = dirEntryTail.decode(block, blockSize - dirEntryTail.size);
  return (
    t.det_reserved_zero1 === 0 &&
    recLenFromDisk(t.det_rec_len, blockSize) === dirEntryTail.size &&
    t.det_reserved_zero2 === 0 &&
    t.det_reserved_ft === EXT4_FT_DIR_CSUM
  );
}

/**
 * Walk the entries in buf[start, end), checking each as the kernel does before use;
 * yields used entries (inode != 0). `maxIno` is s_inodes_count.
 * @kernel ext4_check_dir_entry (fs/ext4/dir.c)
 */
export function* iterateDirEntries(
  buf: Uint8Array,
  start: number,
  end: number,
  blockSize: number,
  maxIno: number,
  ctx: FsErrorDetail = {},
): Generator<DirEntry> {
  let off = start;
  while (off < end) {
    const bad = (what: string): FsError =>
      new FsError("EFSCORRUPTED", `Bad directory entry at offset ${off}: ${what}`, ctx);
    if (off + dirEntry.size > end) throw bad("entry header runs past the end of the block");
    const e = dirEntry.decode(buf, off);
    const recLen = recLenFromDisk(e.rec_len, blockSize);
    if (recLen < dirRecLen(1)) throw bad(`rec_len ${recLen} is smaller than minimal`);
    if (recLen % 4 !== 0) throw bad(`rec_len ${recLen} is not a multiple of 4`);
    if (recLen < dirRecLen(e.name_len)) throw bad(`rec_len ${recLen} is too small for name_len ${e.name_len}`);
    if (off + recLen > end) throw bad(`rec_len ${recLen} overruns the block`);
    if (e.inode > maxIno) throw bad(`inode ${e.inode} out of bounds`);
    if (e.inode !== 0) {
      if (e.name_len === 0) throw bad("empty name");
      yield { offset: off, inode: e.inode, recLen, fileType: e.file_type, name: buf.slice(off + 8, off + 8 + e.name_len) };
    }
    off += recLen;
  }
}
