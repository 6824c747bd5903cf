/**
 * The jbd2 journal's on-disk structures (include/linux/jbd2.h; e2fsprogs
 * lib/ext2fs/kernel-jbd.h; Documentation/filesystems/ext4/journal.rst): the journal
 * superblock, the common block header, commit blocks, descriptor block tags, block
 * tails and revoke headers. Unlike the rest of ext4 every multi-byte field is
 * big-endian, which the tables say with u32be/u16be/u64be.
 *
 * A journal is a ring of `s_maxlen` blocks of `s_blocksize` bytes; block 0 holds the
 * superblock, the log lives in blocks s_first..s_maxlen-1. `s_start == 0` means the
 * journal is empty (clean): nothing to replay. The superblock checksum rule lives in
 * checksum.ts (journalSuperblockChecksum), like every other checksum.
 */

import { array, bytes, defineStruct, u16be, u32be, u64be, u8, type FieldsOf } from "./struct.js";

export const JBD2_MAGIC_NUMBER = 0xc03b3998;

// h_blocktype
export const JBD2_DESCRIPTOR_BLOCK = 1;
export const JBD2_COMMIT_BLOCK = 2;
export const JBD2_SUPERBLOCK_V1 = 3;
export const JBD2_SUPERBLOCK_V2 = 4;
export const JBD2_REVOKE_BLOCK = 5;

// s_checksum_type and h_chksum_type
export const JBD2_CRC32_CHKSUM = 1;
export const JBD2_MD5_CHKSUM = 2;
export const JBD2_SHA1_CHKSUM = 3;
export const JBD2_CRC32C_CHKSUM = 4;
export const JBD2_CRC32_CHKSUM_SIZE = 4;
export const JBD2_CHECKSUM_BYTES = 32 / 4;

// s_feature_compat
export const JBD2_FEATURE_COMPAT_CHECKSUM = 0x1;
// s_feature_incompat
export const JBD2_FEATURE_INCOMPAT_REVOKE = 0x1;
export const JBD2_FEATURE_INCOMPAT_64BIT = 0x2;
export const JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT = 0x4;
export const JBD2_FEATURE_INCOMPAT_CSUM_V2 = 0x8;
export const JBD2_FEATURE_INCOMPAT_CSUM_V3 = 0x10;
export const JBD2_FEATURE_INCOMPAT_FAST_COMMIT = 0x20;
/** Incompat bits the kernel knows. @kernel JBD2_KNOWN_INCOMPAT_FEATURES */
export const JBD2_KNOWN_INCOMPAT_FEATURES =
  JBD2_FEATURE_INCOMPAT_REVOKE | JBD2_FEATURE_INCOMPAT_64BIT | JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT |
  JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3 | JBD2_FEATURE_INCOMPAT_FAST_COMMIT;

// t_flags of a descriptor tag
export const JBD2_FLAG_ESCAPE = 1; // the block's first 4 bytes were the magic and are stored zeroed
export const JBD2_FLAG_SAME_UUID = 2; // no 16-byte UUID follows this tag
export const JBD2_FLAG_DELETED = 4;
export const JBD2_FLAG_LAST_TAG = 8;

/** Smallest journal the kernel accepts, in blocks. */
export const JBD2_MIN_JOURNAL_BLOCKS = 1024;
export const JBD2_MIN_FC_BLOCKS = 256;
/** Filesystems one (external) journal can serve. */
export const JBD2_USERS_MAX = 48;
export const JBD2_SUPERBLOCK_SIZE = 0x400;

/** journal_header_t: the 12 bytes every metadata block of the log starts with. */
export const journalHeader = defineStruct("journal_header_t", 0xc, {
  h_magic: [0x0, u32be],
  h_blocktype: [0x4, u32be],
  h_sequence: [0x8, u32be], // transaction ID
});
export type JournalHeader = FieldsOf<typeof journalHeader>;

/** journal_superblock_t, in block 0 of the journal. Fields after s_errno are v2 only. */
export const journalSuperblock = defineStruct("journal_superblock_t", JBD2_SUPERBLOCK_SIZE, {
  h_magic: [0x0, u32be], // s_header
  h_blocktype: [0x4, u32be],
  h_sequence: [0x8, u32be],
  s_blocksize: [0xc, u32be],
  s_maxlen: [0x10, u32be], // total blocks in the journal
  s_first: [0x14, u32be], // first block of log information
  s_sequence: [0x18, u32be], // first commit ID expected in the log
  s_start: [0x1c, u32be], // block of the start of the log; 0: the journal is empty
  s_errno: [0x20, u32be], // as set by jbd2_journal_abort()
  s_feature_compat: [0x24, u32be],
  s_feature_incompat: [0x28, u32be],
  s_feature_ro_compat: [0x2c, u32be],
  s_uuid: [0x30, bytes(16)],
  s_nr_users: [0x40, u32be], // filesystems sharing the log
  s_dynsuper: [0x44, u32be], // unused
  s_max_transaction: [0x48, u32be], // limit of journal blocks per transaction
  s_max_trans_data: [0x4c, u32be], // limit of data blocks per transaction
  s_checksum_type: [0x50, u8],
  s_padding2: [0x51, bytes(3)],
  s_num_fc_blks: [0x54, u32be], // fast commit blocks
  s_head: [0x58, u32be], // head of the log, only while the filesystem is clean
  s_padding: [0x5c, array(u32be, 40)],
  s_checksum: [0xfc, u32be], // crc32c of the superblock with this field zero (csum v2/v3)
  s_users: [0x100, bytes(16 * JBD2_USERS_MAX)], // UUIDs of the filesystems sharing an external journal
});
export type JournalSuperblock = FieldsOf<typeof journalSuperblock>;

/** struct commit_header: the block that ends a transaction. */
export const commitHeader = defineStruct("commit_header", 0x3c, {
  h_magic: [0x0, u32be],
  h_blocktype: [0x4, u32be],
  h_sequence: [0x8, u32be],
  h_chksum_type: [0xc, u8],
  h_chksum_size: [0xd, u8],
  h_padding: [0xe, bytes(2)],
  h_chksum: [0x10, array(u32be, JBD2_CHECKSUM_BYTES)], // h_chksum[0]: crc32c of the commit block (csum v2/v3)
  h_commit_sec: [0x30, u64be],
  h_commit_nsec: [0x38, u32be],
});
export type CommitHeader = FieldsOf<typeof commitHeader>;

/** journal_block_tag3_t: a descriptor tag when the journal has CSUM_V3. */
export const blockTag3 = defineStruct("journal_block_tag3_t", 0x10, {
  t_blocknr: [0x0, u32be], // filesystem block the logged copy belongs to
  t_flags: [0x4, u32be],
  t_blocknr_high: [0x8, u32be], // with JBD2_FEATURE_INCOMPAT_64BIT
  t_checksum: [0xc, u32be], // crc32c(j_csum_seed, sequence, block)
});
export type BlockTag3 = FieldsOf<typeof blockTag3>;

/**
 * journal_block_tag_t: a descriptor tag without CSUM_V3. It is 12 bytes with 64BIT
 * and 8 without (the high half is absent); `journalTagBytes` gives the stride.
 */
export const blockTag = defineStruct("journal_block_tag_t", 0xc, {
  t_blocknr: [0x0, u32be],
  t_checksum: [0x4, u16be], // low 16 bits of the crc32c (csum v2)
  t_flags: [0x6, u16be],
  t_blocknr_high: [0x8, u32be],
});
export type BlockTag = FieldsOf<typeof blockTag>;

/** struct jbd2_journal_block_tail: the last 4 bytes of a descriptor or revoke block with csum v2/v3. */
export const journalBlockTail = defineStruct("jbd2_journal_block_tail", 0x4, {
  t_checksum: [0x0, u32be],
});

/** jbd2_journal_revoke_header_t: a revoke block's header; r_count counts bytes used, header included. */
export const revokeHeader = defineStruct("jbd2_journal_revoke_header_t", 0x10, {
  h_magic: [0x0, u32be],
  h_blocktype: [0x4, u32be],
  h_sequence: [0x8, u32be],
  r_count: [0xc, u32be],
});
export type RevokeHeader = FieldsOf<typeof revokeHeader>;

/** Does the journal checksum its blocks (csum v2 or v3)? @kernel jbd2_journal_has_csum_v2or3 */
export function journalHasCsumV2or3(jsb: Pick<JournalSuperblock, "s_feature_incompat">): boolean {
  return (jsb.s_feature_incompat & (JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3)) !== 0;
}

/** Bytes one descriptor tag takes (without the optional UUID). @kernel journal_tag_bytes */
export function journalTagBytes(jsb: Pick<JournalSuperblock, "s_feature_incompat">): number {
  if ((jsb.s_feature_incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3) !== 0) return blockTag3.size;
  // The kernel's quirk, kept: csum v2 adds two bytes to a struct that already holds t_checksum.
  const sz = blockTag.size + ((jsb.s_feature_incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2) !== 0 ? 2 : 0);
  return (jsb.s_feature_incompat & JBD2_FEATURE_INCOMPAT_64BIT) !== 0 ? sz : sz - 4;
}

/** Decode a journal superblock from the start of `buf` (block 0 of the journal). */
export function decodeJournalSuperblock(buf: Uint8Array, offset = 0): JournalSuperblock {
  return journalSuperblock.decode(buf, offset);
}

export interface NewJournalSuperblock {
  blockSize: number;
  /** Blocks in the journal, superblock included (s_maxlen). */
  maxLen: number;
  /** The filesystem UUID (s_uuid of an internal journal). */
  uuid: Uint8Array;
  /** Fast commit blocks, when the filesystem has fast_commit. */
  fastCommitBlocks?: number;
}

/**
 * Journal blocks for a filesystem of `blocks` blocks, or -1 when it is too small for one
 * (under 2048 blocks): what mke2fs makes and e2fsck makes again.
 * @e2fsprogs ext2fs_default_journal_size (lib/ext2fs/mkjournal.c)
 */
export function defaultJournalSize(blocks: number): number {
  if (blocks < 2048) return -1;
  if (blocks < 32768) return 1024;
  if (blocks < 256 * 1024) return 4096;
  if (blocks < 512 * 1024) return 8192;
  if (blocks < 4096 * 1024) return 16384;
  if (blocks < 8192 * 1024) return 32768;
  if (blocks < 16384 * 1024) return 65536;
  if (blocks < 32768 * 1024) return 131072;
  return 262144;
}

/**
 * The superblock of a new, empty internal journal, encoded into a zeroed block: v2,
 * s_first 1, s_sequence 1, s_start 0 (nothing to replay), one user. Like mke2fs
 * 1.47 it sets no feature bits and no checksum (the kernel adds CSUM_V3 at mount when
 * the filesystem has metadata_csum) and leaves s_users empty, which only an external
 * journal uses.
 * @kernel ext2fs_create_journal_superblock2 (e2fsprogs lib/ext2fs/mkjournal.c)
 */
export function newJournalSuperblock(o: NewJournalSuperblock): Uint8Array {
  const block = new Uint8Array(o.blockSize);
  journalSuperblock.encode(
    {
      h_magic: JBD2_MAGIC_NUMBER,
      h_blocktype: JBD2_SUPERBLOCK_V2,
      s_blocksize: o.blockSize,
      s_maxlen: o.maxLen,
      s_first: 1,
      s_sequence: 1,
      s_start: 0,
      s_nr_users: 1,
      s_num_fc_blks: o.fastCommitBlocks ?? 0,
      s_uuid: o.uuid,
    },
    block,
  );
  return block;
}
