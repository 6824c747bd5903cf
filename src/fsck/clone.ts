/**
 * Cloning multiply-claimed blocks (e2fsck pass1b.c clone_file): each block an inode shares
 * with another inode or with the volume's metadata is copied to a block nobody claims and
 * the inode's pointer moved to the copy, so every claimant keeps its data.
 *
 * Block-mapped inodes have the pointer changed in place (in i_block or an indirect block);
 * extent-mapped ones have their tree edited as libext2fs's ext2fs_extent_set_bmap edits it
 * (extent_edit.ts), extents split and tree nodes added as e2fsck's clone leaves them. With
 * bigalloc a whole logical cluster moves to one new cluster. A shared attribute block needs
 * every inode naming it updated: for that `canClone` says no and the caller reports the
 * problem as one ext4ts cannot repair yet.
 */

import { EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL, type RawInode } from "../format/inode.js";
import type { CheckContext } from "./context.js";
import { BLOCK_ALLOC_FAIL, ExtentEditError, ExtentTree, type XNode } from "./extent_edit.js";
import { newBlock } from "./lost_found.js";
import { readInode } from "./paths.js";
import { blockAllocStats, markBlockBitmapOnly } from "./repair.js";
import { put32, u32 } from "./bytes.js";

/**
 * Is block `b`'s cluster multiply-claimed? e2fsck's block_dup_map is a cluster bitmap; ours
 * marks the blocks claimed twice, so with bigalloc any of the cluster's blocks counts.
 */
export function dupTest(c: CheckContext, b: number): boolean {
  const dup = c.blockDup;
  const r = c.v.clusterRatio;
  if (dup === null || b < 0 || b >= c.v.blocksCount) return false;
  return r === 1 ? dup.test(b) : !dup.rangeClear(b - (b % r), Math.min(r, c.v.blocksCount - (b - (b % r))));
}

/** Block `b`'s cluster is no longer multiply-claimed (ext2fs_unmark_block_bitmap2 on block_dup_map). */
export function dupClear(c: CheckContext, b: number): void {
  const r = c.v.clusterRatio;
  const first = b - (b % r);
  for (let k = 0; k < r && first + k < c.v.blocksCount; k++) c.blockDup?.clear(first + k);
}

/** Whether `clone` can handle inode `raw`: not inline, no shared attribute block. */
export function canClone(c: CheckContext, raw: RawInode): boolean {
  const v = c.v;
  if ((raw.i_flags & EXT4_INLINE_DATA_FL) !== 0) return false;
  const acl = raw.i_file_acl_lo + (v.f.is64bit ? raw.l_i_file_acl_high * 2 ** 32 : 0);
  return acl === 0 || !dupTest(c, acl);
}

/**
 * Copy every multiply-claimed block of inode `ino` and point the inode at the copies.
 * `release(cluster)` is told of each claim given up (e2fsck's decrement_badcount), so later
 * inodes see the block as no longer shared. The copies are marked in the found map and in the
 * on-disk bitmap, not in the free counts: pass 5 puts those right, as after e2fsck's clone.
 * Returns why the clone failed (libext2fs's message: no block left, a tree that cannot be
 * read), the blocks cloned before that staying cloned, or undefined.
 * @e2fsprogs clone_file, clone_file_block
 */
export async function clone(c: CheckContext, ino: number, release: (cluster: number) => void): Promise<string | undefined> {
  try {
    await cloneFile(c, ino, release);
    return undefined;
  } catch (e) {
    if (e instanceof ExtentEditError) return e.message;
    throw e;
  }
}

async function cloneFile(c: CheckContext, ino: number, release: (cluster: number) => void): Promise<void> {
  const v = c.v;
  const got = await readInode(c, ino);
  if (got === null || c.blockDup === null || !canClone(c, got.raw)) return;
  const isDir = c.isDir(ino);
  const ratio = v.clusterRatio;
  const mask = ratio - 1;

  // e2fsck's clone_struct dup_cluster/alloc_block: the logical cluster of the last shared
  // block cloned and where it went. A later block of that same logical cluster goes to that
  // same cluster, its bytes copied there whether it was shared or not (bigalloc's implied
  // cluster; but a file's indirect or extent tree blocks all share one counter, -1, -2 or -3,
  // so they share the rule too).
  let dupCluster: number | undefined;
  let allocBlock = 0;

  /** Clone block `b` (counter `cnt`) if it is shared; returns the block the pointer should hold. */
  const cloneOne = async (b: number, cnt: number): Promise<number> => {
    const lc = Math.floor(cnt / ratio);
    let shared = false;
    if (lc !== dupCluster || allocBlock === 0) {
      if (!dupTest(c, b)) return b;
      dupCluster = lc;
      allocBlock = newBlock(c, 0);
      if (allocBlock === 0) throw new ExtentEditError(BLOCK_ALLOC_FAIL);
      shared = true;
    }
    // The block keeps its offset in the cluster (EXT2FS_CLUSTER_MASK & blockcnt).
    const nb = allocBlock - (allocBlock % ratio) + (cnt & mask);
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
    // A block taken over by the cluster rule gives up no claim (e2fsck's p is NULL there).
    if (shared) release(b);
    return nb;
  };

  if ((got.raw.i_flags & EXT4_EXTENTS_FL) !== 0) {
    await cloneExtents(c, ino, got.raw, cloneOne);
    return;
  }

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
}

/**
 * clone_file_block over an extent tree in ext2fs_block_iterate3's order: each tree node
 * (counter -1) before the nodes and extents below it, then every block of each leaf extent.
 * A node cloned is read from its copy from then on; a data block cloned is remapped with
 * ext2fs_extent_set_bmap. The walk goes over the extents as they were read, as libext2fs's
 * iterator goes over its copy of each extent while set_bmap reshapes the tree. Nodes a split
 * adds are allocated and counted in i_blocks as ext2fs_extent_node_split does.
 */
async function cloneExtents(c: CheckContext, ino: number, raw: RawInode, cloneOne: (b: number, cnt: number) => Promise<number>): Promise<void> {
  const tree = await ExtentTree.load(c, ino, raw, async (goal) => {
    const b = newBlock(c, goal);
    if (b !== 0) await blockAllocStats(c, b, 1);
    return b;
  });
  if (typeof tree === "string") throw new ExtentEditError(tree);
  type Visit = { node: XNode } | { lblk: number; len: number; pblk: number; uninit: boolean };
  const visits: Visit[] = [];
  let blockcnt = 0;
  const walk = (n: XNode): void => {
    for (const e of n.ents) {
      if (e.child !== null) {
        visits.push({ node: e.child });
        walk(e.child);
        continue;
      }
      // libext2fs's running counter: an extent ending at or before it is skipped, one
      // starting inside it is offset (as blockmap.ts iterateExtentBlocks walks).
      if (e.lblk + e.len <= blockcnt) continue;
      if (e.lblk > blockcnt) blockcnt = e.lblk;
      visits.push({ lblk: e.lblk, len: e.len, pblk: e.pblk + (blockcnt - e.lblk), uninit: e.uninit });
      blockcnt = e.lblk + e.len;
    }
  };
  walk(tree.root);
  for (const x of visits) {
    if ("node" in x) {
      const nb = await cloneOne(x.node.blk, -1);
      if (nb !== x.node.blk) tree.moveNode(x.node, nb);
    } else {
      for (let j = 0; j < x.len; j++) {
        const nb = await cloneOne(x.pblk + j, x.lblk + j);
        if (nb === x.pblk + j) continue;
        await tree.setBmap(x.lblk + j, nb, x.uninit);
        await tree.flush();
      }
    }
    await tree.flush();
  }
}
