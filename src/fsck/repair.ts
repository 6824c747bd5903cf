/**
 * Repairs shared by the passes (e2fsck's e2fsck_clear_inode, ext2fs_inode_alloc_stats2,
 * ext2fs_block_alloc_stats2 with e2fsck's found-map callback). Each keeps the checker's maps
 * and the on-disk bitmaps and counts in step, as e2fsck's do, so pass 5 finds nothing left
 * to say about a repair an earlier pass made.
 */

import { bitmapChecksum } from "../format/checksum.js";
import {
  EXT4_BG_BLOCK_BITMAP_CSUM_HI_END, EXT4_BG_BLOCK_UNINIT, EXT4_BG_INODE_BITMAP_CSUM_HI_END, EXT4_BG_INODE_UNINIT,
  freeBlocksCount as gdFreeBlocks, freeInodesCount as gdFreeInodes, setFreeBlocksCount as setGdFreeBlocks,
  setFreeInodesCount as setGdFreeInodes, setUsedDirsCount, usedDirsCount,
} from "../format/group_desc.js";
import { EXT4_FT_UNKNOWN } from "../format/dirent.js";
import { freeBlocksCount as sbFreeBlocks, setFreeBlocksCount as setSbFreeBlocks } from "../format/superblock.js";
import type { RawInode } from "../format/inode.js";
import type { CheckContext } from "./context.js";

/**
 * Mark inode `ino` free (delta -1) or in use (+1) in its group's bitmap and counts.
 * @e2fsprogs ext2fs_inode_alloc_stats2
 */
export async function inodeAllocStats(c: CheckContext, ino: number, delta: 1 | -1, isDir: boolean): Promise<void> {
  const v = c.v;
  const w = c.out;
  const g = v.groupOfIno(ino);
  const gd = v.group(g);
  const i = (ino - 1) % v.inodesPerGroup;
  const loc = v.inodeBitmapLoc(g);
  const uninit = v.f.groupDescCsum && (gd.bg_flags & EXT4_BG_INODE_UNINIT) !== 0;
  if (!uninit && loc !== 0 && loc < v.blocksCount) {
    await w.updateBlock(loc, (bm) => {
      if (delta > 0) bm[i >>> 3] = bm[i >>> 3]! | (1 << (i & 7));
      else bm[i >>> 3] = bm[i >>> 3]! & ~(1 << (i & 7));
      if (v.f.metadataCsum) {
        const full = bitmapChecksum(bm, v.inodesPerGroup >>> 3, v.csumSeed) >>> 0;
        gd.bg_inode_bitmap_csum_lo = full & 0xffff;
        if (v.descSize >= EXT4_BG_INODE_BITMAP_CSUM_HI_END) gd.bg_inode_bitmap_csum_hi = full >>> 16;
      }
    });
  }
  setGdFreeInodes(gd, gdFreeInodes(gd, v.descSize) - delta, v.descSize);
  if (isDir) setUsedDirsCount(gd, usedDirsCount(gd, v.descSize) + delta, v.descSize);
  w.markGroupDirty(g);
  v.sb.s_free_inodes_count = (v.sb.s_free_inodes_count - delta) >>> 0;
  w.markSuperDirty();
}

/**
 * Mark block `blk`'s cluster free (delta -1) or in use (+1): the checker's found map (e2fsck's
 * alloc-stats callback), the group's bitmap and the free counts.
 * @e2fsprogs ext2fs_block_alloc_stats2 + e2fsck_block_alloc_stats
 */
export async function blockAllocStats(c: CheckContext, blk: number, delta: 1 | -1): Promise<void> {
  const v = c.v;
  const w = c.out;
  if (blk < v.firstDataBlock || blk >= v.blocksCount) return;
  if (delta > 0) c.blockFound.set(blk);
  else c.blockFound.clear(blk);
  const g = v.groupOfBlock(blk);
  const gd = v.group(g);
  const i = Math.floor((blk - v.groupFirstBlock(g)) / v.clusterRatio);
  const loc = v.blockBitmapLoc(g);
  const uninit = v.f.groupDescCsum && (gd.bg_flags & EXT4_BG_BLOCK_UNINIT) !== 0;
  // A BLOCK_UNINIT group has no bitmap on disk yet; pass 5 writes one if it needs it.
  if (!uninit && loc !== 0 && loc < v.blocksCount) {
    await w.updateBlock(loc, (bm) => {
      if (delta > 0) bm[i >>> 3] = bm[i >>> 3]! | (1 << (i & 7));
      else bm[i >>> 3] = bm[i >>> 3]! & ~(1 << (i & 7));
      if (v.f.metadataCsum) {
        const full = bitmapChecksum(bm, (v.blocksPerGroup / v.clusterRatio) >>> 3, v.csumSeed) >>> 0;
        gd.bg_block_bitmap_csum_lo = full & 0xffff;
        if (v.descSize >= EXT4_BG_BLOCK_BITMAP_CSUM_HI_END) gd.bg_block_bitmap_csum_hi = full >>> 16;
      }
    });
  }
  setGdFreeBlocks(gd, gdFreeBlocks(gd, v.descSize) - delta, v.descSize);
  w.markGroupDirty(g);
  setSbFreeBlocks(v.sb, sbFreeBlocks(v.sb) - delta * v.clusterRatio);
  w.markSuperDirty();
}

/**
 * Clear inode `ino`: no links, deleted now, and gone from the checker's maps (its blocks are
 * the caller's business). @e2fsprogs e2fsck_clear_inode
 */
export async function clearInode(c: CheckContext, ino: number, raw: RawInode): Promise<void> {
  const fields: Partial<RawInode> = { i_links_count: 0, i_dtime: c.now >>> 0 };
  // A reserved inode with rotten mappings must not be walked again.
  if (ino < c.v.firstIno) fields.i_block = new Uint8Array(60);
  Object.assign(raw, fields);
  c.linkInfo.set(ino, 0);
  c.inodeUsed.clear(ino);
  c.inodeBad.clear(ino);
  c.ftype.set(ino, EXT4_FT_UNKNOWN);
  await c.out.writeInode(ino, fields);
}
