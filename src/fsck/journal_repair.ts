/**
 * Making the internal journal again after a check that had to delete it (e2fsck unix.c
 * "Recreate journal", ext2fs_add_journal_inode): inode 8 with ext2fs_default_journal_size
 * blocks from the first free run at libext2fs's goal, an empty jbd2 superblock in its first
 * block and zeros in the rest, has_journal and the s_jnl_blocks backup in the superblock.
 * Extent-mapped (one extent per 32768 blocks, in the inode) when the volume has extents,
 * else block-mapped with its indirect blocks laid out as libext2fs's iterate allocates them.
 */

import { defaultJournalSize, newJournalSuperblock } from "../format/jbd2.js";
import { EXT4_EXTENTS_FL, EXT4_GOOD_OLD_INODE_SIZE, EXT4_JOURNAL_INO, S_IFREG } from "../format/inode.js";
import { EXT4_FEATURE_COMPAT_HAS_JOURNAL } from "../format/superblock.js";
import type { CheckContext } from "./context.js";
import { newBlock } from "./lost_found.js";
import { blockAllocStats, inodeAllocStats } from "./repair.js";
import { put16, put32 } from "./bytes.js";

const EXT3_JNL_BACKUP_BLOCKS = 1;
const EXT_INIT_MAX_LEN = 32768;

/**
 * Create the journal; returns its size in blocks, or a reason it could not be made (then
 * nothing was written).
 */
export async function recreateJournal(c: CheckContext): Promise<number | string> {
  const v = c.v;
  const n = defaultJournalSize(v.blocksCount);
  if (n < 0) return "Filesystem too small for a journal";
  const extents = v.f.extents;
  const perBlock = v.blockSize / 4;
  // Block-mapped: the indirect blocks the data needs (single, then double indirect).
  let meta = 0;
  if (!extents) {
    const rest = Math.max(0, n - 12);
    if (rest > 0) meta++;
    const afterInd = Math.max(0, rest - perBlock);
    if (afterInd > 0) meta += 1 + Math.ceil(afterInd / perBlock);
    if (afterInd > perBlock * perBlock) return "journal too large for a block-mapped inode";
  }
  // @e2fsprogs ext2fs_add_journal_inode: the goal is the first block of the middle group.
  let g = v.groupOfBlock(Math.floor((v.blocksCount - v.firstDataBlock) / 2) + v.firstDataBlock);
  if (v.f.flexBg && v.sb.s_log_groups_per_flex > 0) g &= ~((1 << v.sb.s_log_groups_per_flex) - 1);
  const blocks: number[] = [];
  let goal = v.groupFirstBlock(g);
  for (let i = 0; i < n + meta; i++) {
    const b = newBlock(c, goal);
    if (b === 0) {
      for (const x of blocks) c.blockFound.clear(x);
      return "Could not allocate block in ext2 filesystem";
    }
    blocks.push(b);
    c.blockFound.set(b);
    goal = b + 1;
  }
  for (const b of blocks) {
    c.blockFound.clear(b);
    await blockAllocStats(c, b, 1);
  }
  const iblock = new Uint8Array(60);
  const data: number[] = [];
  if (extents) {
    data.push(...blocks);
    const runs: { lblk: number; pblk: number; len: number }[] = [];
    for (let l = 0; l < n; l++) {
      const last = runs[runs.length - 1];
      if (last !== undefined && last.pblk + last.len === data[l] && last.len < EXT_INIT_MAX_LEN) last.len++;
      else runs.push({ lblk: l, pblk: data[l]!, len: 1 });
    }
    if (runs.length > 4) return "journal too fragmented for the inode's extent root";
    put16(iblock, 0, 0xf30a);
    put16(iblock, 2, runs.length);
    put16(iblock, 4, 4);
    runs.forEach((r, i) => {
      const at = 12 + i * 12;
      put32(iblock, at, r.lblk);
      put16(iblock, at + 4, r.len);
      put16(iblock, at + 6, Math.floor(r.pblk / 2 ** 32));
      put32(iblock, at + 8, r.pblk % 2 ** 32);
    });
  } else {
    // libext2fs's order: 12 direct, IND, its data, DIND, (IND, its data)...
    let k = 0;
    const next = (): number => blocks[k++]!;
    for (let i = 0; i < Math.min(12, n); i++) {
      const b = next();
      data.push(b);
      put32(iblock, i * 4, b);
    }
    let left = n - data.length;
    const fill = async (): Promise<number> => {
      const ind = next();
      const body = new Uint8Array(v.blockSize);
      for (let i = 0; i < perBlock && left > 0; i++, left--) {
        const b = next();
        data.push(b);
        put32(body, i * 4, b);
      }
      await c.out.writeBlock(ind, body);
      return ind;
    };
    if (left > 0) put32(iblock, 12 * 4, await fill());
    if (left > 0) {
      const dind = next();
      const body = new Uint8Array(v.blockSize);
      for (let i = 0; i < perBlock && left > 0; i++) put32(body, i * 4, await fill());
      await c.out.writeBlock(dind, body);
      put32(iblock, 13 * 4, dind);
    }
  }
  const zero = new Uint8Array(v.blockSize);
  await c.out.writeBlock(data[0]!, newJournalSuperblock({ blockSize: v.blockSize, maxLen: n, uuid: v.sb.s_uuid }));
  for (let i = 1; i < n; i++) await c.out.writeBlock(data[i]!, zero);
  const size = n * v.blockSize;
  const sectors = ((n + meta) * v.blockSize) / 512;
  await c.out.zeroInode(EXT4_JOURNAL_INO);
  await c.out.writeInode(EXT4_JOURNAL_INO, {
    i_mode: S_IFREG | 0o600, i_links_count: 1, i_size_lo: size % 2 ** 32, i_size_high: Math.floor(size / 2 ** 32),
    i_blocks_lo: sectors % 2 ** 32, l_i_blocks_high: Math.floor(sectors / 2 ** 32), i_flags: extents ? EXT4_EXTENTS_FL : 0,
    i_block: iblock, i_atime: c.now >>> 0, i_ctime: c.now >>> 0, i_mtime: c.now >>> 0,
    ...(v.inodeSize > EXT4_GOOD_OLD_INODE_SIZE ? { i_extra_isize: 32 } : {}),
  });
  if (!c.inodeUsed.test(EXT4_JOURNAL_INO)) {
    c.inodeUsed.set(EXT4_JOURNAL_INO);
    await inodeAllocStats(c, EXT4_JOURNAL_INO, 1, false);
  }
  const sb = v.sb;
  sb.s_journal_inum = EXT4_JOURNAL_INO;
  sb.s_feature_compat = (sb.s_feature_compat | EXT4_FEATURE_COMPAT_HAS_JOURNAL) >>> 0;
  const backup: number[] = [];
  for (let i = 0; i < 15; i++) backup.push((iblock[i * 4]! | (iblock[i * 4 + 1]! << 8) | (iblock[i * 4 + 2]! << 16) | (iblock[i * 4 + 3]! << 24)) >>> 0);
  backup.push(Math.floor(size / 2 ** 32), size % 2 ** 32);
  sb.s_jnl_blocks = backup;
  sb.s_jnl_backup_type = EXT3_JNL_BACKUP_BLOCKS;
  c.out.markSuperDirty();
  return n;
}
