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

  /** Clone block `b` (counter `cnt`) if it is shared; returns the block the pointer should hold. */
  const cloneOne = async (b: number, cnt: number): Promise<number> => {
    if (b === 0 || b >= v.blocksCount || !dup.test(b)) return b;
    const nb = newBlock(c, 0);
    if (nb === 0) throw new Error("no free block to clone into");
    await c.out.writeBlock(nb, (await v.readBlock(b)).slice());
    c.blockFound.set(nb);
    await markBlockBitmapOnly(c, nb);
    if (isDir && cnt >= 0) {
      for (let i = 0; i < c.dblist.count; i++) {
        if (c.dblist.ino.get(i) === ino && c.dblist.blk.get(i) === b) c.dblist.blk.set(i, nb);
      }
    }
    release(b);
    return nb;
  };

  /** Walk an indirect block of `depth` levels (1 = its entries are data), cloning as e2fsck's pre-order iterate does. */
  let lblk = 12;
  const per = v.blockSize / 4;
  const walkInd = async (blk: number, depth: number, cnt: number): Promise<number> => {
    const nb = await cloneOne(blk, cnt);
    if (nb === 0 || nb >= v.blocksCount) return nb;
    const data = (await v.readBlock(nb)).slice();
    let changed = false;
    for (let i = 0; i < per; i++) {
      const child = u32(data, i * 4);
      if (child === 0) {
        lblk += depth === 1 ? 1 : per ** (depth - 1);
        continue;
      }
      const next = depth === 1 ? await cloneOne(child, lblk++) : await walkInd(child, depth - 1, -depth + 1);
      if (next !== child) {
        put32(data, i * 4, next);
        changed = true;
      }
    }
    if (changed) await c.out.writeBlock(nb, data);
    return nb;
  };

  const iblock = got.raw.i_block.slice();
  let changed = false;
  for (let i = 0; i < 15; i++) {
    const b = u32(iblock, i * 4);
    if (b === 0) {
      if (i >= 12) lblk += per ** (i - 11);
      continue;
    }
    const nb = i < 12 ? await cloneOne(b, i) : await walkInd(b, i - 11, -(i - 11));
    if (nb !== b) {
      put32(iblock, i * 4, nb);
      changed = true;
    }
  }
  if (changed) await c.out.writeInode(ino, { i_block: iblock });
  return true;
}
