/**
 * Extent tree lookups (@kernel ext4_ext_map_blocks lookup path, ext4_find_extent;
 * fs/ext4/extents.c).
 *
 * Every node read from disk is checked (magic, counts, depth, ordering, ranges) and,
 * with metadata_csum, its tail checksum verified before use. Depth strictly decreases
 * on the way down, so a corrupt tree cannot make a walk loop.
 */

import { decodeExtentNode, extentTail, extentTailOffset, type ExtentNode } from "../format/extent.js";
import { extentBlockChecksum } from "../format/checksum.js";
import type { MappedInode } from "./inode.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";

/** A mapped or unmapped run of logical blocks. pblk 0 means a hole. */
export interface BlockRun {
  lblk: number;
  len: number;
  pblk: number;
  unwritten: boolean;
}

const LBLK_LIMIT = 2 ** 32;

/** Read and check a non-root node at `pblk`. @kernel read_extent_tree_block */
async function readExtentNode(fs: Ext4Fs, inode: MappedInode, pblk: number, depth: number, firstKey: number): Promise<ExtentNode> {
  const block = await fs.cache.get(pblk);
  // __ext4_ext_check order: structure first, the checksum last.
  const node = decodeExtentNode(block, fs.blockSize, {
    expectedDepth: depth,
    blocksCount: fs.blocksCount,
    firstDataBlock: fs.sb.s_first_data_block,
    isRoot: false,
    firstKey,
    ctx: { ino: inode.ino, block: pblk },
  });
  if (fs.features.metadataCsum) {
    const at = extentTailOffset(node.header);
    if (at + extentTail.size > fs.blockSize) {
      throw fsCorrupted(fs, { ino: inode.ino, block: pblk, what: "Extent block has no room for its checksum", crc: true });
    }
    const stored = extentTail.decode(block, at).et_checksum;
    if (stored !== extentBlockChecksum(block, at, inode.csumSeed)) {
      throw fsCorrupted(fs, { ino: inode.ino, block: pblk, what: "Extent block checksum does not match", crc: true });
    }
  }
  return node;
}

/**
 * Map up to `maxLen` blocks starting at logical block `lblk`. Returns the run that
 * starts there: mapped (possibly unwritten), or a hole reaching the next mapped block.
 * @kernel ext4_ext_map_blocks (without EXT4_GET_BLOCKS_CREATE)
 */
export async function extMapBlocks(fs: Ext4Fs, inode: MappedInode, lblk: number, maxLen: number): Promise<BlockRun> {
  let node = rootNode(fs, inode);
  let nextStart = LBLK_LIMIT; // first mapped block after lblk seen at upper levels
  while (node.depth > 0) {
    if (!("indexes" in node)) break;
    const idx = node.indexes;
    if (idx.length === 0) return hole(lblk, nextStart, maxLen);
    // Last index whose start <= lblk, or the first one (it covers everything before it too).
    let lo = 1;
    let hi = idx.length - 1;
    while (lo <= hi) {
      const m = (lo + hi) >> 1;
      if (idx[m]!.lblk > lblk) hi = m - 1;
      else lo = m + 1;
    }
    const at = lo - 1;
    const next = idx[at + 1];
    if (next !== undefined) nextStart = Math.min(nextStart, next.lblk);
    node = await readExtentNode(fs, inode, idx[at]!.pblk, node.depth - 1, idx[at]!.lblk);
  }
  if (!("extents" in node)) throw fsCorrupted(fs, { ino: inode.ino, what: "Extent tree leaf missing" });
  for (const e of node.extents) {
    if (lblk < e.lblk) return hole(lblk, Math.min(e.lblk, nextStart), maxLen);
    if (lblk < e.lblk + e.len) {
      const off = lblk - e.lblk;
      return { lblk, len: Math.min(e.len - off, maxLen), pblk: e.pblk + off, unwritten: e.unwritten };
    }
  }
  return hole(lblk, nextStart, maxLen);
}

/** The tree root in i_block[]. */
export function rootNode(fs: Ext4Fs, inode: MappedInode): ExtentNode {
  return decodeExtentNode(inode.raw.i_block, 60, {
    isRoot: true,
    blocksCount: fs.blocksCount,
    firstDataBlock: fs.sb.s_first_data_block,
    ctx: { ino: inode.ino },
  });
}

function hole(lblk: number, next: number, maxLen: number): BlockRun {
  return { lblk, len: Math.max(1, Math.min(next - lblk, maxLen)), pblk: 0, unwritten: false };
}
