/**
 * Block maps of ext2/ext3-style (non-extent) files: 12 direct pointers, then single,
 * double and triple indirect blocks (@kernel ext4_ind_map_blocks, fs/ext4/indirect.c).
 *
 * Every pointer read is checked against the volume before it is followed
 * (@kernel __ext4_check_blockref), and the walk depth is fixed by the logical block,
 * so corrupt maps cannot loop.
 */

import { iBlockWord } from "../format/inode.js";
import type { BlockRun } from "./extents.js";
import type { MappedInode } from "./inode.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";

const EXT4_NDIR_BLOCKS = 12;

/** Path of array indexes from i_block to the pointer for `lblk`. @kernel ext4_block_to_path */
function blockToPath(lblk: number, apb: number): number[] | null {
  if (lblk < EXT4_NDIR_BLOCKS) return [lblk];
  let b = lblk - EXT4_NDIR_BLOCKS;
  if (b < apb) return [12, b];
  b -= apb;
  if (b < apb * apb) return [13, Math.floor(b / apb), b % apb];
  b -= apb * apb;
  if (b < apb * apb * apb) return [14, Math.floor(b / (apb * apb)), Math.floor(b / apb) % apb, b % apb];
  return null;
}

/** Blocks covered by one pointer at depth `d` below i_block (d = path length - 1 - level). */
function span(apb: number, levelsBelow: number): number {
  return apb ** levelsBelow;
}

/** @kernel ext4_ind_map_blocks (lookup only) */
export async function indMapBlocks(fs: Ext4Fs, inode: MappedInode, lblk: number, maxLen: number): Promise<BlockRun> {
  const apb = fs.blockSize / 4;
  const path = blockToPath(lblk, apb);
  if (path === null) return { lblk, len: Math.max(1, maxLen), pblk: 0, unwritten: false };
  let ptrs: { words: (i: number) => number; count: number; block?: number } = {
    words: (i) => iBlockWord(inode.raw, i),
    count: 15,
  };
  for (let level = 0; level < path.length; level++) {
    const slot = path[level]!;
    const p = ptrs.words(slot);
    const below = path.length - 1 - level;
    if (p === 0) {
      // A hole: covers the rest of this pointer's subtree, then any following null pointers.
      let len = span(apb, below) - offsetInSubtree(path, level, apb);
      const limit = level === 0 ? (slot < EXT4_NDIR_BLOCKS ? EXT4_NDIR_BLOCKS : slot + 1) : ptrs.count;
      for (let s = slot + 1; s < limit && len < maxLen && ptrs.words(s) === 0; s++) len += span(apb, below);
      return { lblk, len: Math.max(1, Math.min(len, maxLen)), pblk: 0, unwritten: false };
    }
    if (!fs.blockRangeValid(p, 1)) {
      const at = ptrs.block === undefined ? {} : { block: ptrs.block };
      throw fsCorrupted(fs, { ino: inode.ino, ...at, what: `Block map pointer ${p} at logical block ${lblk} is outside the volume` });
    }
    if (below === 0) {
      // Data pointer: extend the run while the following pointers are physically contiguous.
      let len = 1;
      const limit = level === 0 ? EXT4_NDIR_BLOCKS : ptrs.count;
      for (let s = slot + 1; s < limit && len < maxLen && ptrs.words(s) === p + len && p + len < fs.blocksCount; s++) len++;
      return { lblk, len, pblk: p, unwritten: false };
    }
    const block = await fs.cache.get(p);
    const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
    ptrs = { words: (i) => dv.getUint32(i * 4, true), count: apb, block: p };
  }
  throw fsCorrupted(fs, { ino: inode.ino, what: `Block map walk for logical block ${lblk} did not end` });
}

/** How far `lblk` lies into the subtree of the pointer at `level` (0 at a subtree's first block). */
function offsetInSubtree(path: number[], level: number, apb: number): number {
  let off = 0;
  for (let l = level + 1; l < path.length; l++) off = off * apb + path[l]!;
  return off;
}
