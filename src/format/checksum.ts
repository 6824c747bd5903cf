/**
 * Every metadata checksum rule of ext4, one function per structure. Nothing else in the
 * project computes a checksum. Each function takes the encoded bytes (with whatever is
 * currently in the checksum field) and returns the value that belongs there; a verifier
 * compares. metadata_csum uses crc32c; the older gdt_csum (uninit_bg) feature uses crc16
 * for group descriptors only.
 *
 * Kernel counterparts: ext4_superblock_csum, ext4_group_desc_csum, ext4_inode_csum,
 * ext4_extent_block_csum, ext4_dirblock_csum, ext4_dx_csum, ext4_xattr_block_csum,
 * ext4_inode_bitmap_csum / ext4_block_bitmap_csum (fs/ext4/*.c); jbd2's superblock,
 * descriptor/revoke tail, commit and block tag checksums (fs/jbd2/).
 */

import { crc16, crc32c, crc32cBits, crc32cLe32, crc32cLe32Bits, crc32cLe64, crc32cMaskedWords } from "./crc.js";
import { assert } from "../debug/assert.js";
import { dxTail } from "./htree.js";
import { EXT4_GOOD_OLD_INODE_SIZE, inodeLimit, inodeStruct } from "./inode.js";
import { commitHeader, journalBlockTail, journalSuperblock } from "./jbd2.js";
import { mmpStruct } from "./mmp.js";

const SB_CHECKSUM_OFFSET = 0x3fc;
const GD_CHECKSUM_OFFSET = 0x1e; // bg_checksum
const XATTR_CHECKSUM_OFFSET = 0x10; // h_checksum
const ZERO4 = new Uint8Array(4);

/** The seed all per-object checksums start from. @kernel ext4 s_csum_seed (ext4_fill_super) */
export function fsChecksumSeed(uuid: Uint8Array, csumSeedFeature: boolean, sChecksumSeed: number): number {
  return csumSeedFeature ? sChecksumSeed >>> 0 : crc32c(0xffffffff, uuid);
}

/** crc32c over the first 1020 bytes of the superblock. @kernel ext4_superblock_csum */
export function superblockChecksum(sb: Uint8Array): number {
  return crc32c(0xffffffff, sb, 0, SB_CHECKSUM_OFFSET);
}

/**
 * Group descriptor checksum (16 bits), metadata_csum or gdt_csum flavour; 0 when the
 * volume has neither. `desc` is `descSize` bytes.
 * @kernel ext4_group_desc_csum
 */
export function groupDescChecksum(
  desc: Uint8Array,
  group: number,
  o: { csumSeed: number; uuid: Uint8Array; metadataCsum: boolean; gdtCsum: boolean; descSize: number; is64bit: boolean },
): number {
  const after = GD_CHECKSUM_OFFSET + 2;
  if (o.metadataCsum) {
    let c = crc32cLe32(o.csumSeed, group);
    c = crc32c(c, desc, 0, GD_CHECKSUM_OFFSET);
    c = crc32c(c, ZERO4, 0, 2);
    if (after < o.descSize) c = crc32c(c, desc, after, o.descSize);
    return c & 0xffff;
  }
  if (!o.gdtCsum) return 0;
  const le = new Uint8Array([group & 0xff, (group >>> 8) & 0xff, (group >>> 16) & 0xff, group >>> 24]);
  let c = crc16(0xffff, o.uuid);
  c = crc16(c, le);
  c = crc16(c, desc, 0, GD_CHECKSUM_OFFSET);
  if (o.is64bit && after < o.descSize) c = crc16(c, desc, after, o.descSize);
  return c;
}

const CSUM_LO = inodeStruct.offsetOf("l_i_checksum_lo");
const CSUM_HI = inodeStruct.offsetOf("i_checksum_hi");
// inodeChecksum's word steps rely on this layout: [l_i_checksum_lo, l_i_reserved] end the
// 128-byte base inode, [i_extra_isize, i_checksum_hi] start the extra part.
assert(CSUM_LO + 4 === EXT4_GOOD_OLD_INODE_SIZE && CSUM_HI === EXT4_GOOD_OLD_INODE_SIZE + 2, "inode checksum fields moved");

/** A little-endian word as a signed 32-bit number (crc32cLe32Bits takes it modulo 2^32). */
const le32 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);

/** Per-inode seed: fs seed, then inode number and generation. @kernel ext4_iget (i_csum_seed) */
export function inodeChecksumSeed(fsSeed: number, ino: number, generation: number): number {
  return inodeChecksumSeedBits(fsSeed, ino, generation) >>> 0;
}

/** inodeChecksumSeed as a signed 32-bit number, for the inode scan (see crc32cBits). */
export function inodeChecksumSeedBits(fsSeed: number, ino: number, generation: number): number {
  return crc32cLe32Bits(crc32cLe32Bits(fsSeed, ino), generation);
}

/**
 * Full 32-bit inode checksum over `inodeSize` bytes, both checksum halves read as zero.
 * Only the low 16 bits are stored unless the inode has room for i_checksum_hi.
 * @kernel ext4_inode_csum
 */
export function inodeChecksum(raw: Uint8Array, offset: number, inodeSize: number, inodeSeed: number): number {
  return inodeChecksumBits(raw, offset, inodeSize, inodeSeed) >>> 0;
}

/** inodeChecksum as a signed 32-bit number, the steps chained without heap numbers (see crc32cBits). */
function inodeChecksumBits(raw: Uint8Array, offset: number, inodeSize: number, inodeSeed: number): number {
  // The usual inode (a multiple of 16 bytes, word-aligned): one pass over its words, the two
  // words holding checksum halves masked (l_i_checksum_lo's, and i_checksum_hi's when present).
  const loWord = CSUM_LO >>> 2;
  let mask2 = -1;
  if (inodeSize > EXT4_GOOD_OLD_INODE_SIZE) {
    const extra = raw[offset + EXT4_GOOD_OLD_INODE_SIZE]! | (raw[offset + EXT4_GOOD_OLD_INODE_SIZE + 1]! << 8);
    if (CSUM_HI + 2 <= inodeLimit(inodeSize, extra)) mask2 = 0xffff;
  }
  const whole = crc32cMaskedWords(inodeSeed, raw, offset, offset + inodeSize, loWord, 0xffff0000 | 0, mask2);
  if (whole !== undefined) return whole;
  // Each checksum half shares a 4-byte word with a field that is summed (l_i_reserved, i_extra_isize): the
  // word goes in with the half masked to zero, which keeps the word-aligned fast path of crc32c.
  let c = crc32cBits(inodeSeed, raw, offset, offset + CSUM_LO);
  c = crc32cLe32Bits(c, le32(raw, offset + CSUM_LO) & 0xffff0000);
  if (inodeSize > EXT4_GOOD_OLD_INODE_SIZE) {
    const word = le32(raw, offset + EXT4_GOOD_OLD_INODE_SIZE);
    const hasHi = CSUM_HI + 2 <= inodeLimit(inodeSize, word & 0xffff);
    c = crc32cLe32Bits(c, hasHi ? word & 0xffff : word);
    c = crc32cBits(c, raw, offset + EXT4_GOOD_OLD_INODE_SIZE + 4, offset + inodeSize);
  }
  return c;
}

/** Does the inode store the high checksum half? */
export function inodeHasChecksumHi(raw: Uint8Array, offset: number, inodeSize: number): boolean {
  if (inodeSize <= EXT4_GOOD_OLD_INODE_SIZE) return false;
  const extra = raw[offset + 0x80]! | (raw[offset + 0x81]! << 8);
  return CSUM_HI + 2 <= inodeLimit(inodeSize, extra);
}

/** The checksum stored in an inode (16 or 32 bits). */
export function storedInodeChecksum(raw: Uint8Array, offset: number, inodeSize: number): number {
  const lo = raw[offset + CSUM_LO]! | (raw[offset + CSUM_LO + 1]! << 8);
  if (!inodeHasChecksumHi(raw, offset, inodeSize)) return lo;
  return (lo | (raw[offset + CSUM_HI]! << 16) | (raw[offset + CSUM_HI + 1]! << 24)) >>> 0;
}

/** Verify an inode's checksum as the kernel does. @kernel ext4_inode_csum_verify */
export function verifyInodeChecksum(raw: Uint8Array, offset: number, inodeSize: number, inodeSeed: number): boolean {
  // Compared as signed 32-bit numbers: the same bits, no heap numbers.
  const want = inodeChecksumBits(raw, offset, inodeSize, inodeSeed);
  const lo = raw[offset + CSUM_LO]! | (raw[offset + CSUM_LO + 1]! << 8);
  if (!inodeHasChecksumHi(raw, offset, inodeSize)) return lo === (want & 0xffff);
  return (lo | (raw[offset + CSUM_HI]! << 16) | (raw[offset + CSUM_HI + 1]! << 24)) === want;
}

/** Extent block checksum over header and eh_max slots. @kernel ext4_extent_block_csum */
export function extentBlockChecksum(block: Uint8Array, tailOffset: number, inodeSeed: number): number {
  return crc32c(inodeSeed, block, 0, tailOffset);
}

/** Linear directory leaf checksum, over everything before the 12-byte tail. @kernel ext4_dirblock_csum */
export function dirBlockChecksum(block: Uint8Array, blockSize: number, inodeSeed: number): number {
  return crc32c(inodeSeed, block, 0, blockSize - 12);
}

/**
 * htree index block checksum: the used entries, then the dx_tail with its checksum
 * read as zero. @kernel ext4_dx_csum
 */
export function dxBlockChecksum(block: Uint8Array, entriesOffset: number, count: number, tailOffset: number, inodeSeed: number): number {
  let c = crc32c(inodeSeed, block, 0, entriesOffset + count * 8);
  c = crc32c(c, block, tailOffset, tailOffset + dxTail.offsetOf("dt_checksum"));
  return crc32c(c, ZERO4, 0, 4);
}

/** External xattr block checksum, seeded with its block number (shared blocks have no single owner). @kernel ext4_xattr_block_csum */
export function xattrBlockChecksum(block: Uint8Array, blockNr: number, blockSize: number, fsSeed: number): number {
  let c = crc32cLe64(fsSeed, blockNr);
  c = crc32c(c, block, 0, XATTR_CHECKSUM_OFFSET);
  c = crc32c(c, ZERO4, 0, 4);
  return crc32c(c, block, XATTR_CHECKSUM_OFFSET + 4, blockSize);
}

/** Block or inode bitmap checksum over `sizeBytes` (clusters or inodes per group / 8). @kernel ext4_block_bitmap_csum_set */
export function bitmapChecksum(bitmap: Uint8Array, sizeBytes: number, fsSeed: number): number {
  return crc32c(fsSeed, bitmap, 0, sizeBytes);
}

/**
 * Journal superblock checksum (csum v2/v3): crc32c from ~0 over the 1024-byte
 * journal_superblock_t with s_checksum (offset 0xfc) read as zero. Stored big-endian.
 * @kernel jbd2_superblock_csum (fs/jbd2/journal.c)
 */
export function journalSuperblockChecksum(jsb: Uint8Array): number {
  let c = crc32c(0xffffffff, jsb, 0, JBD2_SB_CHECKSUM_OFFSET);
  c = crc32c(c, ZERO4, 0, 4);
  return crc32c(c, jsb, JBD2_SB_CHECKSUM_OFFSET + 4, JBD2_SB_SIZE);
}

/** Seed of every journal block checksum: crc32c(~0, s_uuid). @kernel j_csum_seed (jbd2_journal_load) */
export function journalChecksumSeed(journalUuid: Uint8Array): number {
  return crc32c(0xffffffff, journalUuid);
}

const JBD2_SB_CHECKSUM_OFFSET = journalSuperblock.offsetOf("s_checksum");
const JBD2_SB_SIZE = journalSuperblock.size;
const JBD2_COMMIT_CHECKSUM_OFFSET = commitHeader.offsetOf("h_chksum"); // h_chksum[0]

/**
 * Descriptor or revoke block checksum (csum v2/v3): crc32c(j_csum_seed) over the whole
 * block with the tail's t_checksum (its last 4 bytes) read as zero. Stored big-endian.
 * @kernel jbd2_descriptor_block_csum_set, jbd2_revoke_csum_set (fs/jbd2/commit.c, revoke.c)
 */
export function journalBlockTailChecksum(block: Uint8Array, blockSize: number, journalSeed: number): number {
  const tail = blockSize - journalBlockTail.size;
  return crc32c(crc32c(journalSeed, block, 0, tail), ZERO4, 0, 4);
}

/**
 * Commit block checksum (csum v2/v3): crc32c(j_csum_seed) over the whole block with
 * h_chksum[0] read as zero. Stored big-endian in h_chksum[0].
 * @kernel jbd2_commit_block_csum_set (fs/jbd2/commit.c)
 */
export function journalCommitBlockChecksum(block: Uint8Array, blockSize: number, journalSeed: number): number {
  let c = crc32c(journalSeed, block, 0, JBD2_COMMIT_CHECKSUM_OFFSET);
  c = crc32c(c, ZERO4, 0, 4);
  return crc32c(c, block, JBD2_COMMIT_CHECKSUM_OFFSET + 4, blockSize);
}

/**
 * Checksum of one logged block, as its descriptor tag carries it: crc32c(j_csum_seed)
 * over the transaction ID (big-endian) and then the block as stored in the log (escaped).
 * csum v3 stores all 32 bits (t_checksum of journal_block_tag3_t), csum v2 the low 16.
 * @kernel jbd2_block_tag_csum_set (fs/jbd2/commit.c), jbd2_block_tag_csum_verify (recovery.c)
 */
export function journalBlockTagChecksum(data: Uint8Array, blockSize: number, journalSeed: number, sequence: number): number {
  const seq = new Uint8Array([sequence >>> 24, (sequence >>> 16) & 0xff, (sequence >>> 8) & 0xff, sequence & 0xff]);
  return crc32c(crc32c(journalSeed, seq), data, 0, blockSize);
}

/** MSB-first CRC-32 table (poly 0x04C11DB7) for the v1 transactional checksum. */
const CRC32_BE_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * The v1 transactional checksum (JBD2_FEATURE_COMPAT_CHECKSUM, before csum v2/v3): a
 * big-endian CRC-32 (crc32_be, no inversion) chained from ~0 over the descriptor block
 * and every data block it describes, checked against h_chksum[0] of the commit block.
 * Used only by journals written without metadata_csum and with `journal_checksum`.
 * @kernel crc32_be (lib/crc32.c), as calc_chksums (fs/jbd2/recovery.c) chains it
 */
export function journalCrc32Be(crc: number, data: Uint8Array, start = 0, end: number = data.length): number {
  const t = CRC32_BE_TABLE;
  let c = crc >>> 0;
  for (let i = start; i < end; i++) c = ((c << 8) ^ t[((c >>> 24) ^ data[i]!) & 0xff]!) >>> 0;
  return c;
}

/** MMP block: crc32c(fs seed) over the mmp_struct up to mmp_checksum. @e2fsprogs ext2fs_mmp_csum */
export function mmpChecksum(block: Uint8Array, fsSeed: number): number {
  return crc32c(fsSeed, block, 0, mmpStruct.offsetOf("mmp_checksum"));
}
