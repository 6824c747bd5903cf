/**
 * The multi-mount protection block (incompat feature `mmp`): a block named by s_mmp_block
 * that a mounting node rewrites every s_mmp_update_interval seconds, so a second node sees
 * the sequence change and refuses to mount. ext4ts reads it only (the checker).
 * @kernel fs/ext4/mmp.c, struct mmp_struct (fs/ext4/ext4.h); e2fsprogs lib/ext2fs/mmp.c
 */

import { bytes, defineStruct, u16le, u32le, u64le, type FieldsOf } from "./struct.js";

/** mmp_magic. */
export const EXT4_MMP_MAGIC = 0x004d4d50;
/** mmp_seq of a cleanly unmounted filesystem. */
export const EXT4_MMP_SEQ_CLEAN = 0xff4d4d50;
/** mmp_seq while e2fsck runs. */
export const EXT4_MMP_SEQ_FSCK = 0xe24d4d50;
/** Highest sequence a mounting node writes. */
export const EXT4_MMP_SEQ_MAX = 0xe24d4d4f;

/** struct mmp_struct: the first 1 KiB of the MMP block. */
export const mmpStruct = defineStruct("mmp_struct", 0x400, {
  mmp_magic: [0x0, u32le], // EXT4_MMP_MAGIC
  mmp_seq: [0x4, u32le], // a counter, or SEQ_CLEAN / SEQ_FSCK
  mmp_time: [0x8, u64le], // last update, seconds since the epoch
  mmp_nodename: [0x10, bytes(64)], // host of the last update
  mmp_bdevname: [0x50, bytes(32)], // its device name
  mmp_check_interval: [0x70, u16le], // seconds between updates
  mmp_pad1: [0x72, u16le],
  mmp_checksum: [0x3fc, u32le], // crc32c(fs seed, bytes 0..0x3fb), with metadata_csum
});
export type MmpStruct = FieldsOf<typeof mmpStruct>;
