/**
 * Cloning multiply-claimed blocks (e2fsck pass1b.c clone_file): each block an inode shares
 * with another inode or with the volume's metadata is copied to a block nobody claims and
 * the inode's pointer moved to the copy, so every claimant keeps its data.
 *
 * Implemented for block-mapped inodes (a pointer in i_block or an indirect block changes in
 * place). Moving part of an extent needs the extent tree split, and a shared attribute block
 * needs every inode naming it updated; for those `canClone` says no and the caller reports
 * the problem as one ext4ts cannot repair yet.
 */

import { EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL, type RawInode } from "../format/inode.js";
import type { CheckContext } from "./context.js";
import { newBlock } from "./lost_found.js";
import { readInode } from "./paths.js";
import { markBlockBitmapOnly } from "./repair.js";
import { put32, u32 } from "./bytes.js";


/** Whether `clone` can handle inode `raw`: block-mapped, no shared attribute block, no bigalloc. */
export function canClone(c: CheckContext, raw: RawInode): boolean {
  const v = c.v;
  if ((raw.i_flags & (EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL)) !== 0 || v.clusterRatio !== 1) return false;
  const acl = raw.i_file_acl_lo + (v.f.is64bit ? raw.l_i_file_acl_high * 2 ** 32 : 0);
  return acl === 0 || acl >= v.blocksCount || c.blockDup === null || !c.blockDup.test(acl);
}

/**
 * Copy every multiply-claimed block of inode `ino` and point the inode at the copies.
 * `release(cluster)` is told of each claim given up (e2fsck's decrement_badcount), so later
 * inodes see the block as no longer shared. The copies are marked in the found map and in the
 * on-disk bitmap, not in the free counts: pass 5 puts those right, as after e2fsck's clone.
 * @e2fsprogs clone_file, clone_file_block
 */
export async function clone(c: CheckContext, ino: number, release: (cluster: number) => void): Promise<boolean> {
  const v = c.v;
  const dup = c.blockDup;
  const got = await readInode(c, ino);
  if (got === null || dup === null || !canClone(c, got.raw)) return false;
  const isDir = c.isDir(ino);

  // e2fsck's clone_struct dup_cluster/alloc_block: the counter of the last shared block cloned
  // and where it went. A later pointer with that same counter goes to that same block, its
  // bytes copied there whether it was shared or not (the rule is bigalloc's implied cluster,
  // but a file's indirect blocks all share one counter: -1, -2 or -3).
  let dupCnt: number | undefined;
  let allocBlock = 0;

  /** Clone block `b` (counter `cnt`) if it is shared; returns the block the pointer should hold. */
  const cloneOne = async (b: number, cnt: number): Promise<number> => {
    let nb: number;
    let shared = false;
    if (cnt === dupCnt && allocBlock !== 0) nb = allocBlock;
    else if (b < v.blocksCount && dup.test(b)) {
      dupCnt = cnt;
      nb = newBlock(c, 0);
      if (nb === 0) throw new Error("no free block to clone into");
      allocBlock = nb;
      shared = true;
    } else return b;
    let body: Uint8Array;
    try {
      body = (await v.readBlock(b)).slice();
    } catch {
      body = new Uint8Array(v.blockSize); // e2fsck -y ignores the read error: the buffer is zeroed
    }
    await c.out.writeBlock(nb, body);
    c.blockFound.set(nb);
    await markBlockBitmapOnly(c, nb);
    // @e2fsprogs ext2fs_set_dir_block2: the entry for this logical block.
    if (isDir && cnt >= 0) {
      for (let i = 0; i < c.dblist.count; i++) {
        if (c.dblist.ino.get(i) === ino && c.dblist.cnt.get(i) === cnt) {
          c.dblist.blk.set(i, nb);
          break;
        }
      }
    }
    // A block taken over by the counter rule gives up no claim (e2fsck's p is NULL there).
    if (shared) release(b);
    return nb;
  };

  /**
   * Walk an indirect block of `depth` levels (1 = its entries are data) as
   * ext2fs_block_iterate3 does for clone_file_block: the block itself first, then its entries
   * from the (new) copy. An illegal or unreadable indirect block fails the walk, which stops
   * every enclosing indirect block's loop (blocks already changed are still written).
   */
  let lblk = 12;
  const per = v.blockSize / 4;
  const walkInd = async (blk: number, depth: number): Promise<{ blk: number; failed: boolean }> => {
    const nb = await cloneOne(blk, -depth);
    if (nb < v.firstDataBlock || nb >= v.blocksCount) return { blk: nb, failed: true };
    let data: Uint8Array;
    try {
      data = (await v.readBlock(nb)).slice();
    } catch {
      return { blk: nb, failed: true };
    }
    let changed = false;
    let failed = false;
    for (let i = 0; i < per && !failed; i++) {
      const child = u32(data, i * 4);
      if (child === 0) {
        lblk += per ** (depth - 1);
        continue;
      }
      let next: number;
      if (depth === 1) next = await cloneOne(child, lblk++);
      else ({ blk: next, failed } = await walkInd(child, depth - 1));
      if (next !== child) {
        put32(data, i * 4, next);
        changed = true;
      }
    }
    if (changed) await c.out.writeBlock(nb, data);
    return { blk: nb, failed };
  };

  const iblock = got.raw.i_block.slice();
  let changed = false;
  for (let i = 0; i < 15; i++) {
    const b = u32(iblock, i * 4);
    if (b === 0) {
      if (i >= 12) lblk += per ** (i - 11);
      continue;
    }
    // A failed indirect tree does not stop the walk over the inode's own pointers.
    const nb = i < 12 ? await cloneOne(b, i) : (await walkInd(b, i - 11)).blk;
    if (nb !== b) {
      put32(iblock, i * 4, nb);
      changed = true;
    }
  }
  if (changed) await c.out.writeInode(ino, { i_block: iblock });
  return true;
}
