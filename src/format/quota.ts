/**
 * The v2 quota file format ("vfsv1", QFMT_VFS_V1) that ext4's hidden quota inodes hold:
 * pure codecs, no I/O. The radix tree over these blocks is in fs/quota_tree.ts.
 *
 * Counterparts: Linux fs/quota/quotaio_v2.h, include/linux/dqblk_qtree.h, quota_tree.h;
 * e2fsprogs lib/support/quotaio_v2.h, quotaio_tree.h.
 *
 *   block 0:    v2_disk_dqheader (magic, version) at 0, v2_disk_dqinfo at 8
 *   block 1:    the tree root (QT_TREEOFF); every tree block is 256 little-endian
 *               __le32 block numbers, indexed by one byte of the id per level
 *   depth 0..3: tree blocks; the references of depth 3 point to data blocks
 *   data block: qt_disk_dqdbheader (16 bytes), then 14 v2r1_disk_dqblk records of 72 bytes
 *
 * All blocks are QT_BLKSIZE (1 KiB) whatever the filesystem block size. An entry of all
 * zero bytes is free; a real record that would encode as all zeros (id 0, nothing used, no
 * limits) is written with dqb_itime = 1 instead and read back with itime 0
 * (v2r1_mem2diskdqblk / v2r1_disk2memdqblk).
 *
 * 64-bit fields decode to `number`: usage is bounded by the volume (ext4ts keeps volumes
 * below 2^48 blocks, and curspace is checked against 2^53 bytes = 8 PiB per id), and
 * limits or times past 2^53 are not values anyone sets. A field that does not fit is
 * reported as EFSCORRUPTED by the decoder rather than silently rounded.
 */

import { FsError } from "../errors.js";
import { defineStruct, u16le, u32le, type FieldType, type FieldsOf } from "./struct.js";

/** The three quota types, in the kernel's order (USRQUOTA, GRPQUOTA, PRJQUOTA). */
export const USRQUOTA = 0;
export const GRPQUOTA = 1;
export const PRJQUOTA = 2;
export type QuotaTypeIndex = typeof USRQUOTA | typeof GRPQUOTA | typeof PRJQUOTA;

/** dqh_magic per type (V2_INITQMAGICS). */
export const V2_INITQMAGICS: readonly [number, number, number] = [0xd9c01f11, 0xd9c01927, 0xd9c03f14];
/** dqh_version of the 64-bit record format (v2r1); 0 is the old 32-bit v2r0, which ext4 never writes. */
export const V2_VERSION_R1 = 1;
export const V2_VERSION_R0 = 0;

/** Tree and data blocks are 1 KiB in every quota file. */
export const QT_BLKSIZE_BITS = 10;
export const QT_BLKSIZE = 1 << QT_BLKSIZE_BITS;
/** Levels of tree blocks above the data blocks; one id byte per level, most significant first. */
export const QT_TREEDEPTH = 4;
/** The root tree block. */
export const QT_TREEOFF = 1;
/** References per tree block. */
export const QT_REFS_PER_BLOCK = QT_BLKSIZE / 4;
/** Where v2_disk_dqinfo starts in block 0 (just after the header). */
export const V2_DQINFOOFF = 8;
/** Limits in the file count 1 KiB quota blocks (QUOTABLOCK_SIZE), usage counts bytes. */
export const QIF_DQBLKSIZE_BITS = 10;
export const QIF_DQBLKSIZE = 1 << QIF_DQBLKSIZE_BITS;

/** Default grace periods of a new file: 7 days (MAX_DQ_TIME, MAX_IQ_TIME). */
export const MAX_DQ_TIME = 604800;
export const MAX_IQ_TIME = 604800;

/** A little-endian 64-bit field decoded as a safe integer (see the file comment). */
const u64num: FieldType<number> = {
  kind: "u64le",
  size: 8,
  read: (dv, off) => {
    const v = dv.getBigUint64(off, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FsError("EFSCORRUPTED", `Quota record field of ${v} exceeds what ext4ts handles (2^53 - 1)`);
    return Number(v);
  },
  write: (dv, off, v) => {
    dv.setBigUint64(off, BigInt(v), true);
  },
  zero: () => 0,
};

/** Signed 64-bit time (dqb_btime, dqb_itime are __le64 seconds; the kernel reads them as time64_t). */
const s64num: FieldType<number> = {
  kind: "s64le",
  size: 8,
  read: (dv, off) => {
    const v = dv.getBigInt64(off, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new FsError("EFSCORRUPTED", `Quota grace time ${v} exceeds what ext4ts handles`);
    }
    return Number(v);
  },
  write: (dv, off, v) => {
    dv.setBigInt64(off, BigInt(v), true);
  },
  zero: () => 0,
};

/** struct v2_disk_dqheader: block 0, offset 0. */
export const v2DiskDqheader = defineStruct("v2_disk_dqheader", 0x8, {
  dqh_magic: [0x0, u32le], // V2_INITQMAGICS[type]
  dqh_version: [0x4, u32le], // V2_VERSION_R1
});
export type V2DiskDqheader = FieldsOf<typeof v2DiskDqheader>;

/** struct v2_disk_dqinfo: block 0, offset V2_DQINFOOFF. */
export const v2DiskDqinfo = defineStruct("v2_disk_dqinfo", 0x18, {
  dqi_bgrace: [0x0, u32le], // seconds a block soft limit may be exceeded
  dqi_igrace: [0x4, u32le], // seconds an inode soft limit may be exceeded
  dqi_flags: [0x8, u32le], // V2_DQF_*; ext4 writes 0
  dqi_blocks: [0xc, u32le], // blocks in the file (next block to append)
  dqi_free_blk: [0x10, u32le], // first block of the free-block list (0: none)
  dqi_free_entry: [0x14, u32le], // first data block with a free entry (0: none)
});
export type V2DiskDqinfo = FieldsOf<typeof v2DiskDqinfo>;

/** struct qt_disk_dqdbheader: the start of every data block (and of every free block). */
export const qtDiskDqdbheader = defineStruct("qt_disk_dqdbheader", 0x10, {
  dqdh_next_free: [0x0, u32le], // next block in the free-block or free-entry list
  dqdh_prev_free: [0x4, u32le], // previous block in the free-entry list
  dqdh_entries: [0x8, u16le], // records in use
  dqdh_pad1: [0xa, u16le],
  dqdh_pad2: [0xc, u32le],
});
export type QtDiskDqdbheader = FieldsOf<typeof qtDiskDqdbheader>;

/** struct v2r1_disk_dqblk: one id's record. Limits in 1 KiB blocks / inodes; curspace in bytes. */
export const v2r1DiskDqblk = defineStruct("v2r1_disk_dqblk", 0x48, {
  dqb_id: [0x0, u32le],
  dqb_pad: [0x4, u32le],
  dqb_ihardlimit: [0x8, u64num], // absolute inode limit (0: none)
  dqb_isoftlimit: [0x10, u64num], // preferred inode limit
  dqb_curinodes: [0x18, u64num], // inodes in use
  dqb_bhardlimit: [0x20, u64num], // absolute limit, QIF_DQBLKSIZE units
  dqb_bsoftlimit: [0x28, u64num], // preferred limit, QIF_DQBLKSIZE units
  dqb_curspace: [0x30, u64num], // bytes in use
  dqb_btime: [0x38, s64num], // when the block soft limit turns hard (0: not over it)
  dqb_itime: [0x40, s64num], // when the inode soft limit turns hard
});
export type V2r1DiskDqblk = FieldsOf<typeof v2r1DiskDqblk>;

/** Records per data block: (1024 - 16) / 72 = 14. @kernel qtree_dqstr_in_blk */
export const QT_DQSTR_IN_BLK = Math.floor((QT_BLKSIZE - qtDiskDqdbheader.size) / v2r1DiskDqblk.size);

/** One id's record as the tree stores it (the dquot's on-disk part). */
export interface DiskDquot {
  id: number;
  /** Inode limits and usage. */
  ihardlimit: number;
  isoftlimit: number;
  curinodes: number;
  /** Block limits in QIF_DQBLKSIZE (1 KiB) units, as in the file. */
  bhardlimit: number;
  bsoftlimit: number;
  /** Bytes in use. */
  curspace: number;
  btime: number;
  itime: number;
}

/** The quota file's info block, decoded. */
export interface QuotaInfo {
  dqi_bgrace: number;
  dqi_igrace: number;
  dqi_flags: number;
  dqi_blocks: number;
  dqi_free_blk: number;
  dqi_free_entry: number;
}

/** Is the entry at `off` unused (all zero bytes)? @kernel qtree_entry_unused */
export function qtreeEntryUnused(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < v2r1DiskDqblk.size; i++) if (buf[off + i] !== 0) return false;
  return true;
}

/**
 * Decode the record at `off`: an all-zero record with dqb_itime = 1 is the escaped form of
 * an empty id-0 record and reads with itime 0. @kernel v2r1_disk2memdqblk
 */
export function decodeDqblk(buf: Uint8Array, off: number): DiskDquot {
  const d = v2r1DiskDqblk.decode(buf, off);
  const escaped =
    d.dqb_id === 0 && d.dqb_pad === 0 && d.dqb_ihardlimit === 0 && d.dqb_isoftlimit === 0 && d.dqb_curinodes === 0 &&
    d.dqb_bhardlimit === 0 && d.dqb_bsoftlimit === 0 && d.dqb_curspace === 0 && d.dqb_btime === 0 && d.dqb_itime === 1;
  return {
    id: d.dqb_id,
    ihardlimit: d.dqb_ihardlimit,
    isoftlimit: d.dqb_isoftlimit,
    curinodes: d.dqb_curinodes,
    bhardlimit: d.dqb_bhardlimit,
    bsoftlimit: d.dqb_bsoftlimit,
    curspace: d.dqb_curspace,
    btime: d.dqb_btime,
    itime: escaped ? 0 : d.dqb_itime,
  };
}

/**
 * Encode a record at `off` (72 bytes, pad zeroed). A record that would be all zeros gets
 * dqb_itime = 1 so it does not read as a free entry. @kernel v2r1_mem2diskdqblk
 */
export function encodeDqblk(q: DiskDquot, buf: Uint8Array, off: number): void {
  v2r1DiskDqblk.encode(
    {
      dqb_id: q.id,
      dqb_pad: 0,
      dqb_ihardlimit: q.ihardlimit,
      dqb_isoftlimit: q.isoftlimit,
      dqb_curinodes: q.curinodes,
      dqb_bhardlimit: q.bhardlimit,
      dqb_bsoftlimit: q.bsoftlimit,
      dqb_curspace: q.curspace,
      dqb_btime: q.btime,
      dqb_itime: q.itime,
    },
    buf,
    off,
  );
  if (qtreeEntryUnused(buf, off)) v2r1DiskDqblk.encode({ dqb_itime: 1 }, buf, off);
}

/** An empty record for `id` (what the kernel reads for an id the file does not hold). */
export function emptyDqblk(id: number): DiskDquot {
  return { id, ihardlimit: 0, isoftlimit: 0, curinodes: 0, bhardlimit: 0, bsoftlimit: 0, curspace: 0, btime: 0, itime: 0 };
}

/** The tree index of `id` at `depth` (0 = root): one byte, most significant first. @kernel get_index */
export function qtreeIndex(id: number, depth: number): number {
  return (id >>> ((QT_TREEDEPTH - depth - 1) * 8)) & 0xff;
}

/**
 * Block 0 of a new quota file: header and info. @kernel v2_new_io (e2fsprogs), v2_write_file_info
 */
export function encodeHeaderBlock(type: QuotaTypeIndex, info: QuotaInfo, block: Uint8Array = new Uint8Array(QT_BLKSIZE)): Uint8Array {
  v2DiskDqheader.encode({ dqh_magic: V2_INITQMAGICS[type], dqh_version: V2_VERSION_R1 }, block, 0);
  v2DiskDqinfo.encode(info, block, V2_DQINFOOFF);
  return block;
}

/**
 * Check and decode block 0: the magic must be this type's (EFSCORRUPTED otherwise, with
 * the byte-swapped magic named as the wrong-endianness file it is), version 1.
 * @kernel v2_check_quota_file, v2_read_file_info
 */
export function decodeHeaderBlock(type: QuotaTypeIndex, block: Uint8Array): QuotaInfo {
  const h = v2DiskDqheader.decode(block, 0);
  const want = V2_INITQMAGICS[type];
  if (h.dqh_magic !== want) {
    const swapped = ((h.dqh_magic & 0xff) << 24 | (h.dqh_magic & 0xff00) << 8 | (h.dqh_magic >>> 8) & 0xff00 | h.dqh_magic >>> 24) >>> 0;
    const why = swapped === want ? " (a big-endian quota file)" : "";
    throw new FsError("EFSCORRUPTED", `Quota file magic is 0x${hex(h.dqh_magic)}, expected 0x${hex(want)}${why}`);
  }
  if (h.dqh_version !== V2_VERSION_R1) {
    throw new FsError("EFSCORRUPTED", `Quota file version is ${h.dqh_version}, expected ${V2_VERSION_R1} (only the 64-bit v2r1 format is supported)`);
  }
  const i = v2DiskDqinfo.decode(block, V2_DQINFOOFF);
  return { ...i };
}

function hex(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

/** Bytes for a limit given in QIF_DQBLKSIZE units. @kernel v2_qbtos */
export function qbToBytes(qb: number): number {
  return qb * QIF_DQBLKSIZE;
}

/** QIF_DQBLKSIZE units for a byte limit, rounded up. @kernel v2_stoqb */
export function bytesToQb(bytes: number): number {
  return Math.ceil(bytes / QIF_DQBLKSIZE);
}

/** The superblock fields naming the quota inodes (a Superblock qualifies). */
export interface QuotaInums {
  s_usr_quota_inum: number;
  s_grp_quota_inum: number;
  s_prj_quota_inum: number;
}

/** The quota inode of each type (0: that type is off). @kernel ext4_quota_enable's qf_inums */
export function quotaInums(sb: QuotaInums): [number, number, number] {
  return [sb.s_usr_quota_inum, sb.s_grp_quota_inum, sb.s_prj_quota_inum];
}

/**
 * Is `ino` one of the volume's quota files? They are S_NOQUOTA: their own blocks are never
 * charged to any quota, and they are not counted as anyone's inode.
 * @kernel dquot_load_quota_inode (S_NOQUOTA), e2fsprogs quota_compute_usage exclusions
 */
export function isQuotaInode(sb: QuotaInums, ino: number): boolean {
  return ino !== 0 && (ino === sb.s_usr_quota_inum || ino === sb.s_grp_quota_inum || ino === sb.s_prj_quota_inum);
}
