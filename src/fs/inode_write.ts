/**
 * Writable in-core inodes and their write-back (@kernel struct ext4_inode_info,
 * ext4_mark_inode_dirty / ext4_do_update_inode, fs/ext4/inode.c).
 *
 * Readers get immutable `Inode` snapshots from `iget`; a writer takes an `InodeInfo`
 * (a private, mutable copy of the raw fields), changes it, and writes it back in a
 * handle with `markInodeDirty`, which encodes the fields over the on-disk bytes (unnamed
 * bytes survive), recomputes the checksum and refreshes the snapshot cache.
 */

import { FsError } from "../errors.js";
import { inodeChecksum, inodeChecksumSeed, inodeHasChecksumHi, verifyInodeChecksum } from "../format/checksum.js";
import { EXT4_GOOD_OLD_INODE_SIZE, EXT4_HUGE_FILE_FL, decodeInode, inodeLimit, inodeSize64, inodeStruct, type RawInode } from "../format/inode.js";
import { split64 } from "../format/struct.js";
import { assert } from "../debug/assert.js";
import type { Handle } from "./handle.js";
import { inodeTable } from "./inode_core.js";
import { forgetInode, iget, inodeLocation } from "./inode.js";
import type { Ext4Fs } from "./super.js";

export interface InodeInfo {
  readonly ino: number;
  /** Decoded fields; edit freely, then markInodeDirty. */
  raw: RawInode;
  /** The on-disk bytes as last read or written (inode size), for fields raw does not name. */
  readonly bytes: Uint8Array;
  readonly csumSeed: number;
}

/**
 * The writable in-core fields of an existing, checked inode: one object per inode shared
 * by every operation (inode_core.ts says why), loaded from the inode table on first use.
 */
export async function igetWritable(fs: Ext4Fs, ino: number, opts: { allowUnlinked?: boolean } = {}): Promise<InodeInfo> {
  const snap = await iget(fs, ino, opts);
  const core = inodeTable(fs).getOrCreate(ino);
  if (core.info !== null) return core.info; // loaded by another operation during the await
  const bytes = snap.bytes.slice();
  core.info = { ino, raw: decodeInode(bytes, 0, fs.inodeSize), bytes, csumSeed: snap.csumSeed };
  return core.info;
}

/**
 * A writable copy read straight from the inode table, without iget's "is it in use"
 * checks (for an unlinked inode being freed at last close). Checksum still verified.
 */
export async function igetWritableRaw(fs: Ext4Fs, ino: number): Promise<InodeInfo> {
  const shared = inodeTable(fs).get(ino)?.info;
  if (shared != null) return shared;
  const loc = inodeLocation(fs, ino);
  const block = await fs.cache.get(loc.block);
  const bytes = block.slice(loc.offset, loc.offset + fs.inodeSize);
  const raw = decodeInode(bytes, 0, fs.inodeSize);
  const csumSeed = fs.features.metadataCsum ? inodeChecksumSeed(fs.csumSeed, ino, raw.i_generation) : 0;
  if (fs.features.metadataCsum && !verifyInodeChecksum(bytes, 0, fs.inodeSize, csumSeed)) {
    throw new FsError("EFSBADCRC", "Inode checksum does not match", { ino, block: loc.block });
  }
  const core = inodeTable(fs).getOrCreate(ino);
  core.info ??= { ino, raw, bytes, csumSeed };
  return core.info;
}

/** A writable inode for a freshly allocated number: all zero but i_extra_isize and generation. */
export function newInodeInfo(fs: Ext4Fs, ino: number, generation: number): InodeInfo {
  const bytes = new Uint8Array(fs.inodeSize);
  const raw = decodeInode(bytes, 0, fs.inodeSize);
  raw.i_generation = generation >>> 0;
  if (fs.inodeSize > EXT4_GOOD_OLD_INODE_SIZE) {
    // What the kernel sets for new inodes: room for every extra field it knows (32 bytes).
    raw.i_extra_isize = Math.min(inodeStruct.size - EXT4_GOOD_OLD_INODE_SIZE, fs.inodeSize - EXT4_GOOD_OLD_INODE_SIZE);
  }
  const csumSeed = fs.features.metadataCsum ? inodeChecksumSeed(fs.csumSeed, ino, raw.i_generation) : 0;
  // A new life for this number: whatever was in core for the freed inode is gone.
  const core = inodeTable(fs).getOrCreate(ino);
  assert(core.pages.size === 0 && core.reservedDataBlocks === 0, () => `New inode ${ino} still has pages or reserved blocks from a freed one`);
  core.info = { ino, raw, bytes, csumSeed };
  return core.info;
}

/** i_size of a writable inode (64-bit for regular files and, with largedir, directories). */
export function getSize(fs: Ext4Fs, inode: InodeInfo): number {
  return inodeSize64(inode.raw, fs.features.largedir);
}

/** Set i_size, both halves. @kernel ext4_isize_set */
export function setSize(inode: InodeInfo, size: number): void {
  const { lo, hi } = split64(size);
  inode.raw.i_size_lo = lo;
  inode.raw.i_size_high = hi;
}

/** Set i_blocks from a count of 512-byte sectors. @kernel ext4_inode_blocks_set */
export function setInodeBlocks(fs: Ext4Fs, inode: InodeInfo, sectors: number): void {
  if (sectors < 2 ** 32) {
    inode.raw.i_blocks_lo = sectors;
    inode.raw.l_i_blocks_high = 0;
    inode.raw.i_flags &= ~EXT4_HUGE_FILE_FL;
    return;
  }
  if (!fs.features.hugeFile || sectors >= 2 ** 48) {
    // s_maxbytes keeps files below this; reaching it is a bug, not an errno.
    throw new FsError("EFBIG", `i_blocks of ${sectors} sectors does not fit the volume's format`, { ino: inode.ino });
  }
  const { lo, hi } = split64(sectors);
  inode.raw.i_blocks_lo = lo;
  inode.raw.l_i_blocks_high = hi;
  inode.raw.i_flags &= ~EXT4_HUGE_FILE_FL;
}

/**
 * Write the inode into its inode-table block in handle `h`: encode, checksum, dirty.
 * Synchronous after the block is held, so readers never see half an inode.
 * @kernel ext4_mark_inode_dirty -> ext4_do_update_inode
 */
export async function markInodeDirty(h: Handle, inode: InodeInfo): Promise<void> {
  const fs = h.fs;
  const loc = inodeLocation(fs, inode.ino);
  const block = await h.getWriteAccess(loc.block);
  const limit = fs.inodeSize > EXT4_GOOD_OLD_INODE_SIZE ? Math.min(fs.inodeSize, inodeLimit(fs.inodeSize, inode.raw.i_extra_isize)) : EXT4_GOOD_OLD_INODE_SIZE;
  inodeStruct.encode(inode.raw, inode.bytes, 0, limit);
  if (fs.features.metadataCsum) {
    const c = inodeChecksum(inode.bytes, 0, fs.inodeSize, inode.csumSeed);
    inode.raw.l_i_checksum_lo = c & 0xffff;
    const fields: Partial<RawInode> = { l_i_checksum_lo: c & 0xffff };
    if (inodeHasChecksumHi(inode.bytes, 0, fs.inodeSize)) {
      inode.raw.i_checksum_hi = c >>> 16;
      fields.i_checksum_hi = c >>> 16;
    }
    inodeStruct.encode(fields, inode.bytes, 0, limit);
  }
  block.set(inode.bytes, loc.offset);
  h.dirtyMetadata(loc.block);
  forgetInode(fs, inode.ino);
}
