/**
 * Walking an inode's blocks the way libext2fs does for e2fsck: ext2fs_block_iterate3 over
 * block maps (metadata blocks reported before their children, with the negative counters
 * e2fsck prints) and over extent trees, and ext2fs_bmap2 for a single logical block.
 * Nothing here reports problems: callers decide what a bad pointer means.
 */

import { EXT4_EXT_MAGIC, EXT_INIT_MAX_LEN, extentHeader, extentIdx, extentLeaf } from "../format/extent.js";
import { EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL, type RawInode } from "../format/inode.js";
import type { FsckVolume } from "./volume.js";
import { u16, u32 } from "./bytes.js";

const EXT2_NDIR_BLOCKS = 12;

const iblock = (raw: RawInode, i: number): number => u32(raw.i_block, i * 4);

const EH_MAGIC = extentHeader.offsetOf("eh_magic");
const EH_ENTRIES = extentHeader.offsetOf("eh_entries");
const EH_MAX = extentHeader.offsetOf("eh_max");

/** ext2fs_extent_header_verify of the `size`-byte node at `buf[at..]`. */
export function extentHeaderOk(buf: Uint8Array, size: number, at = 0): boolean {
  if (u16(buf, at + EH_MAGIC) !== EXT4_EXT_MAGIC) return false;
  const entries = u16(buf, at + EH_ENTRIES);
  const max = u16(buf, at + EH_MAX);
  if (entries > max) return false;
  const room = Math.floor((size - extentHeader.size) / extentLeaf.size);
  return max <= room && max >= room - 2;
}

/**
 * ext2fs_block_iterate3 over a block-mapped inode: direct blocks, then each indirect tree
 * (its block reported before its children, with e2fsck's negative counters). `holes`
 * reports zero pointers too (BLOCK_FLAG_HOLE, used for directories). The callback also
 * gets the block holding the pointer (0 for the inode's own i_block) and the pointer's slot
 * there (its index; -1 for extent trees, whose pointers are not single words). Its returning false
 * means "treat this pointer as 0 from now on" (e2fsck zeroing it in memory only): an
 * indirect block so answered is not descended into and is no error. Returning true for an
 * out-of-range indirect block makes the walk fail with libext2fs's error, which is returned.
 */
export type BlockCallback = (blk: number, cnt: number, ref: number, slot: number) => boolean;

export async function iterateBlockMap(v: FsckVolume, raw: RawInode, holes: boolean, cb: BlockCallback): Promise<string | undefined> {
  const limit = v.blockSize / 4;
  let bcount = 0;
  let error: string | undefined;
  for (let i = 0; i < EXT2_NDIR_BLOCKS; i++, bcount++) {
    const b = iblock(raw, i);
    if (b !== 0 || holes) cb(b, bcount, 0, i);
  }
  // One buffer per level, read past the cache: the resize inode alone has a thousand
  // indirect blocks, read once each.
  const levelBufs: (Uint8Array | undefined)[] = [];
  // Returns true when the subtree failed: libext2fs then stops the enclosing loop (but not
  // the walk over the inode's own pointers), and its last error is the one reported.
  const ind = async (pointer: number, level: number, ref: number, slot: number): Promise<boolean> => {
    // level 1: single indirect (counter -1), 2: double (-2), 3: triple (-3)
    const blk = cb(pointer, -level, ref, slot) ? pointer : 0;
    const span = limit ** (level - 1);
    if (blk === 0) {
      bcount += limit * span;
      return false;
    }
    if (blk >= v.blocksCount || blk < v.firstDataBlock) {
      error = level === 1 ? "Illegal indirect block found" : level === 2 ? "Illegal doubly indirect block found" : "Illegal triply indirect block found";
      return true;
    }
    const block = (levelBufs[level] ??= new Uint8Array(v.blockSize));
    try {
      await v.cache.readUncachedInto(blk, block);
    } catch {
      error = "Attempt to read block from filesystem resulted in short read";
      return true;
    }
    const words = new DataView(block.buffer, block.byteOffset, block.byteLength);
    if (level === 1) {
      bcount = leafPointers(words, limit, holes, bcount, blk, cb);
      return false;
    }
    for (let k = 0; k < limit; k++) {
      const p = words.getUint32(k * 4, true);
      if (p === 0 && !holes) bcount += span;
      else if (await ind(p, level - 1, blk, k)) return true;
    }
    return false;
  };
  for (let level = 1; level <= 3; level++) {
    const b = iblock(raw, EXT2_NDIR_BLOCKS + level - 1);
    if (b !== 0 || holes) await ind(b, level, 0, EXT2_NDIR_BLOCKS + level - 1);
    else bcount += limit ** level;
  }
  return error;
}

/**
 * The data block pointers of one single indirect block `blk`, numbered from `bcount`:
 * reported (all, or the non-zero ones); returns the next number. A synchronous loop, apart
 * from the walk's awaits: the resize inode alone has a thousand such blocks, mostly zeros.
 */
function leafPointers(words: DataView, limit: number, holes: boolean, bcount: number, blk: number, cb: BlockCallback): number {
  for (let k = 0; k < limit; k++) {
    const p = words.getUint32(k * 4, true);
    if (p !== 0 || holes) cb(p, bcount + k, blk, k);
  }
  return bcount + limit;
}

/** Physical block of logical block `lblk` (0 when unmapped), for the htree root. */
export async function mapLogical(v: FsckVolume, raw: RawInode, lblk: number): Promise<number> {
  if (raw.i_flags & EXT4_EXTENTS_FL) {
    let node = raw.i_block;
    for (let depthGuard = 0; depthGuard < 8; depthGuard++) {
      if (u16(node, 0) !== EXT4_EXT_MAGIC) return 0;
      const entries = u16(node, extentHeader.offsetOf("eh_entries"));
      const depth = u16(node, extentHeader.offsetOf("eh_depth"));
      if (depth === 0) {
        for (let i = 0; i < entries; i++) {
          const at = extentHeader.size + i * 12;
          const s = u32(node, at);
          const rl = u16(node, at + 4);
          const len = rl > EXT_INIT_MAX_LEN ? rl - EXT_INIT_MAX_LEN : rl;
          if (lblk >= s && lblk < s + len) return u32(node, at + 8) + u16(node, at + 6) * 2 ** 32 + (lblk - s);
        }
        return 0;
      }
      let pick = -1;
      for (let i = 0; i < entries; i++) if (u32(node, extentHeader.size + i * 12) <= lblk) pick = i;
      if (pick < 0) pick = 0;
      if (entries === 0) return 0;
      const at = extentHeader.size + pick * 12;
      const child = u32(node, at + 4) + u16(node, at + 8) * 2 ** 32;
      if (child < v.firstDataBlock || child >= v.blocksCount) return 0;
      node = (await v.readBlock(child)).slice();
    }
    return 0;
  }
  if (raw.i_flags & EXT4_INLINE_DATA_FL) return 0;
  if (lblk < EXT2_NDIR_BLOCKS) return iblock(raw, lblk);
  const limit = v.blockSize / 4;
  let rel = lblk - EXT2_NDIR_BLOCKS;
  if (rel < limit) {
    const ind = iblock(raw, 12);
    if (ind === 0 || ind >= v.blocksCount) return 0;
    return u32(await v.readBlock(ind), rel * 4);
  }
  rel -= limit;
  if (rel < limit * limit) {
    const d = iblock(raw, 13);
    if (d === 0 || d >= v.blocksCount) return 0;
    const ind = u32(await v.readBlock(d), Math.floor(rel / limit) * 4);
    if (ind === 0 || ind >= v.blocksCount) return 0;
    return u32(await v.readBlock(ind), (rel % limit) * 4);
  }
  return 0;
}

/**
 * ext2fs_block_iterate3 over an extent tree, as libext2fs walks it with its extent handle:
 * each index entry's block (counter -1) before its subtree, then every leaf block with its
 * logical number. Leafness comes from the level (the root's depth), not from the node. A
 * child that cannot be read or does not verify ends the whole walk with an error, as the
 * handle's failed step does. Leaf extents keep libext2fs's running counter: an extent that
 * ends at or before it is skipped, and one that starts inside it is offset (its physical
 * start advances while its logical numbers restart at the extent's own start).
 */
export async function iterateExtentBlocks(v: FsckVolume, raw: RawInode, cb: BlockCallback): Promise<string | undefined> {
  // ext2fs_extent_open2 reads an all-zero i_block as an empty tree; when it fails on a bad
  // root, ext2fs_block_iterate3 returns without walking and without an error.
  if (!extentHeaderOk(raw.i_block, 60)) return undefined;
  const maxDepth = u16(raw.i_block, extentHeader.offsetOf("eh_depth"));
  let blockcnt = 0;
  let error: string | undefined;
  const walk = async (node: Uint8Array, level: number): Promise<void> => {
    const entries = u16(node, extentHeader.offsetOf("eh_entries"));
    for (let i = 0; i < entries && error === undefined; i++) {
      const at = extentHeader.size + i * extentLeaf.size;
      if (level < maxDepth) {
        const pblk = u32(node, at + extentIdx.offsetOf("ei_leaf_lo")) + u16(node, at + extentIdx.offsetOf("ei_leaf_hi")) * 2 ** 32;
        cb(pblk, -1, 0, -1);
        let child: Uint8Array;
        try {
          child = (await v.readBlock(pblk)).slice();
        } catch {
          error = "Attempt to read block from filesystem resulted in short read";
          return;
        }
        if (!extentHeaderOk(child, v.blockSize)) {
          error = "Corrupt extent header";
          return;
        }
        await walk(child, level + 1);
      } else {
        const lblk = u32(node, at + extentLeaf.offsetOf("ee_block"));
        const rl = u16(node, at + extentLeaf.offsetOf("ee_len"));
        const len = rl > EXT_INIT_MAX_LEN ? rl - EXT_INIT_MAX_LEN : rl;
        let pblk = u32(node, at + extentLeaf.offsetOf("ee_start_lo")) + u16(node, at + extentLeaf.offsetOf("ee_start_hi")) * 2 ** 32;
        if (lblk + len <= blockcnt) continue;
        if (lblk > blockcnt) blockcnt = lblk;
        pblk += blockcnt - lblk;
        blockcnt = lblk;
        for (let j = 0; j < len; j++, pblk++, blockcnt++) cb(pblk, blockcnt, 0, -1);
      }
    }
  };
  await walk(raw.i_block, 0);
  return error;
}

/** ext2fs_block_iterate3, whichever mapping the inode uses. */
export function iterateBlocks(v: FsckVolume, raw: RawInode, holes: boolean, cb: BlockCallback): Promise<string | undefined> {
  if (raw.i_flags & EXT4_EXTENTS_FL) return iterateExtentBlocks(v, raw, cb);
  return iterateBlockMap(v, raw, holes, cb);
}

/** e2fsprogs ext2_max_sizes: the largest file a block map can address. */
export function maxBlockMapSize(log2bs: number): number {
  const bpp = 2 ** (log2bs - 2);
  return (12 + bpp + bpp * bpp + bpp * bpp * bpp) * 2 ** log2bs;
}
