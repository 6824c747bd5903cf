/**
 * The inodes mke2fs writes (1..first_ino-1 and lost+found), encoded into the inode
 * table blocks that hold them. New inodes get what ext2fs_write_new_inode gives them:
 * all three times (and i_crtime) set to the creation time, i_extra_isize 32 when the
 * inode is large; the bad-blocks inode only its times (ext2fs_update_bb_inode writes
 * 128 bytes); the other reserved inodes are zero, checksummed with metadata_csum
 * (write_reserved_inodes). Checksums go through format/checksum.ts.
 */

import { inodeChecksum, inodeChecksumSeed, inodeHasChecksumHi } from "../../src/format/checksum.js";
import { EXT4_GOOD_OLD_INODE_SIZE, inodeStruct, type RawInode } from "../../src/format/inode.js";
import { split64 } from "../../src/format/struct.js";
import { groupOfIno, type Geometry } from "./geometry.js";

/** sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE */
export const EXT2_INODE_EXTRA_ISIZE = 32;

export interface NewInode {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  links: number;
  /** File system blocks used (data and metadata). */
  blocks: number;
  flags: number;
  /** The 60 bytes of i_block. */
  iBlock: Uint8Array;
}

export interface InodeWriter {
  /** Inode table blocks touched, by block number. */
  readonly blocks: Map<number, Uint8Array>;
  /** A new inode, as ext2fs_write_new_inode writes it. */
  putNew(ino: number, inode: NewInode): void;
  /** A zero inode with only its times set (the bad blocks inode). */
  putTimesOnly(ino: number): void;
  /** A zero inode (with a checksum when metadata_csum). */
  putZero(ino: number): void;
}

export interface InodeWriterOptions {
  geo: Geometry;
  inodeTable: Float64Array;
  now: number;
  /** The filesystem checksum seed when metadata_csum is on. */
  csumSeed: number | undefined;
  hugeFile: boolean;
}

export function inodeWriter(o: InodeWriterOptions): InodeWriter {
  const { geo } = o;
  const isz = geo.inodeSize;
  const blocks = new Map<number, Uint8Array>();

  const slot = (ino: number): { buf: Uint8Array; off: number } => {
    const g = groupOfIno(geo, ino);
    const idx = (ino - 1) % geo.inodesPerGroup;
    const byteOff = idx * isz;
    const blk = o.inodeTable[g]! + Math.floor(byteOff / geo.blockSize);
    let buf = blocks.get(blk);
    if (buf === undefined) {
      buf = new Uint8Array(geo.blockSize);
      blocks.set(blk, buf);
    }
    return { buf, off: byteOff % geo.blockSize };
  };

  const seal = (ino: number, buf: Uint8Array, off: number): void => {
    if (o.csumSeed === undefined) return;
    const c = inodeChecksum(buf, off, isz, inodeChecksumSeed(o.csumSeed, ino, 0));
    const rec: Partial<RawInode> = { l_i_checksum_lo: c & 0xffff };
    if (inodeHasChecksumHi(buf, off, isz)) rec.i_checksum_hi = c >>> 16;
    inodeStruct.encode(rec, buf, off, Math.min(isz, inodeStruct.size));
  };

  return {
    blocks,
    putNew(ino, n) {
      const { buf, off } = slot(ino);
      buf.fill(0, off, off + isz);
      const size = split64(n.size);
      const iblocks = split64(n.blocks * (geo.blockSize / 512));
      const rec: Partial<RawInode> = {
        i_mode: n.mode,
        i_uid: n.uid & 0xffff,
        l_i_uid_high: n.uid >>> 16,
        i_gid: n.gid & 0xffff,
        l_i_gid_high: n.gid >>> 16,
        i_size_lo: size.lo,
        i_size_high: size.hi,
        i_atime: o.now,
        i_ctime: o.now,
        i_mtime: o.now,
        i_links_count: n.links,
        i_blocks_lo: iblocks.lo,
        l_i_blocks_high: o.hugeFile ? iblocks.hi : 0,
        i_flags: n.flags,
        i_block: n.iBlock,
      };
      let limit = EXT4_GOOD_OLD_INODE_SIZE;
      if (isz > EXT4_GOOD_OLD_INODE_SIZE) {
        rec.i_extra_isize = EXT2_INODE_EXTRA_ISIZE;
        rec.i_crtime = o.now;
        limit = Math.min(isz, EXT4_GOOD_OLD_INODE_SIZE + EXT2_INODE_EXTRA_ISIZE);
      }
      inodeStruct.encode(rec, buf, off, limit);
      seal(ino, buf, off);
    },
    putTimesOnly(ino) {
      const { buf, off } = slot(ino);
      buf.fill(0, off, off + isz);
      inodeStruct.encode({ i_atime: o.now, i_ctime: o.now, i_mtime: o.now }, buf, off, EXT4_GOOD_OLD_INODE_SIZE);
      seal(ino, buf, off);
    },
    putZero(ino) {
      const { buf, off } = slot(ino);
      buf.fill(0, off, off + isz);
      seal(ino, buf, off);
    },
  };
}
