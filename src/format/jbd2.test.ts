import { describe, expect, it } from "vitest";
import { journalSuperblockChecksum } from "./checksum.js";
import {
  JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_CSUM_V2, JBD2_FEATURE_INCOMPAT_CSUM_V3, JBD2_MAGIC_NUMBER,
  JBD2_SUPERBLOCK_V2, blockTag, blockTag3, commitHeader, decodeJournalSuperblock, journalBlockTail, journalHeader,
  journalSuperblock, journalTagBytes, newJournalSuperblock, revokeHeader,
} from "./jbd2.js";

const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, "").match(/../g) ?? [], (h) => parseInt(h, 16));

describe("jbd2 tables (include/linux/jbd2.h)", () => {
  it("journal_superblock_t is 1024 bytes with s_checksum at 0xfc and s_users at 0x100", () => {
    expect(journalSuperblock.size).toBe(0x400);
    expect(journalSuperblock.offsetOf("s_uuid")).toBe(0x30);
    expect(journalSuperblock.offsetOf("s_nr_users")).toBe(0x40);
    expect(journalSuperblock.offsetOf("s_checksum_type")).toBe(0x50);
    expect(journalSuperblock.offsetOf("s_num_fc_blks")).toBe(0x54);
    expect(journalSuperblock.offsetOf("s_head")).toBe(0x58);
    expect(journalSuperblock.offsetOf("s_checksum")).toBe(0xfc);
    expect(journalSuperblock.offsetOf("s_users")).toBe(0x100);
  });

  it("block headers, commit blocks, tags, tails and revoke headers have the kernel's sizes", () => {
    expect(journalHeader.size).toBe(12);
    expect(commitHeader.size).toBe(0x3c);
    expect(commitHeader.offsetOf("h_commit_sec")).toBe(0x30);
    expect(blockTag3.size).toBe(16);
    expect(blockTag.size).toBe(12);
    expect(journalBlockTail.size).toBe(4);
    expect(revokeHeader.size).toBe(16);
  });

  it("journalTagBytes() follows journal_tag_bytes, including csum v2's two extra bytes", () => {
    expect(journalTagBytes({ s_feature_incompat: 0 })).toBe(8);
    expect(journalTagBytes({ s_feature_incompat: JBD2_FEATURE_INCOMPAT_64BIT })).toBe(12);
    expect(journalTagBytes({ s_feature_incompat: JBD2_FEATURE_INCOMPAT_CSUM_V2 })).toBe(10);
    expect(journalTagBytes({ s_feature_incompat: JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_64BIT })).toBe(14);
    expect(journalTagBytes({ s_feature_incompat: JBD2_FEATURE_INCOMPAT_CSUM_V3 })).toBe(16);
  });

  it("fields are big-endian", () => {
    const b = new Uint8Array(0x400);
    journalSuperblock.encode({ h_magic: JBD2_MAGIC_NUMBER, s_maxlen: 0x1000 }, b);
    expect(Array.from(b.subarray(0, 4))).toEqual([0xc0, 0x3b, 0x39, 0x98]);
    expect(Array.from(b.subarray(0x10, 0x14))).toEqual([0, 0, 0x10, 0]);
  });
});

describe("newJournalSuperblock()", () => {
  it("writes the bytes mke2fs 1.47.0 writes for an empty internal journal", () => {
    const uuid = hex("11111111222233334444555555555555");
    const b = newJournalSuperblock({ blockSize: 1024, maxLen: 4096, uuid });
    // od of block 0 of the journal of `mke2fs -t ext4 -U 11111111-2222-3333-4444-555555555555 a.img 64M`
    const want = new Uint8Array(1024);
    want.set(hex(`c03b3998 00000004 00000000 00000400 00001000 00000001 00000001 00000000
      00000000 00000000 00000000 00000000 11111111 22223333 44445555 55555555 00000001`));
    expect(b).toEqual(want);
    const sb = decodeJournalSuperblock(b);
    expect([sb.h_blocktype, sb.s_first, sb.s_sequence, sb.s_start, sb.s_nr_users]).toEqual([JBD2_SUPERBLOCK_V2, 1, 1, 0, 1]);
  });
});

describe("journalSuperblockChecksum()", () => {
  it("matches the checksum Linux 6.18 stored after mounting a metadata_csum filesystem", () => {
    // Block 0 of the journal of `mke2fs -t ext4 -U 11111111-2222-3333-4444-555555555555 j.img 64M`
    // after `mount; echo hi > x; umount`: the kernel turned on 64BIT|CSUM_V3 (0x12),
    // s_checksum_type 4 (crc32c), s_head 10, and stored the checksum at 0xfc.
    const b = new Uint8Array(1024);
    b.set(hex(`c03b3998 00000004 00000000 00000400 00001000 00000001 00000004 00000000
      00000000 00000000 00000012 00000000 11111111 22223333 44445555 55555555 00000001 00000000 00000000 00000000
      04000000 00000000 0000000a`));
    b.set(hex("e20410d0"), 0xfc);
    const sb = decodeJournalSuperblock(b);
    expect([sb.s_feature_incompat, sb.s_checksum_type, sb.s_head]).toEqual([0x12, 4, 10]);
    expect(journalSuperblockChecksum(b)).toBe(sb.s_checksum);
  });

  it("reads the stored checksum as zero, so storing it keeps it valid", () => {
    const b = newJournalSuperblock({ blockSize: 4096, maxLen: 1024, uuid: new Uint8Array(16).fill(7) });
    const c = journalSuperblockChecksum(b);
    journalSuperblock.encode({ s_checksum: c }, b);
    expect(journalSuperblockChecksum(b)).toBe(c);
  });
});
