/**
 * Encoding a planned file map (layout.ts FileMap) into i_block and the blocks that go
 * with it: an extent tree of depth 0 (up to four extents in the inode) or 1 (one index
 * entry in the inode, the extents in a leaf block with its checksum tail), or a
 * classic block map with its indirect blocks.
 */

import { extentBlockChecksum } from "../../src/format/checksum.js";
import { EXT4_EXT_MAGIC, extentHeader, extentIdx, extentLeaf, extentTail, extentTailOffset } from "../../src/format/extent.js";
import { EXT4_N_BLOCKS } from "../../src/format/inode.js";
import { split64 } from "../../src/format/struct.js";
import type { FileMap, Run } from "./layout.js";

const I_BLOCK_BYTES = EXT4_N_BLOCKS * 4;
const ROOT_MAX = (I_BLOCK_BYTES - extentHeader.size) / extentLeaf.size; // 4

function putExtents(buf: Uint8Array, runs: readonly Run[], max: number): void {
  extentHeader.encode({ eh_magic: EXT4_EXT_MAGIC, eh_entries: runs.length, eh_max: max, eh_depth: 0, eh_generation: 0 }, buf, 0);
  runs.forEach((r, i) => {
    const p = split64(r.pblk);
    extentLeaf.encode({ ee_block: r.lblk, ee_len: r.len, ee_start_hi: p.hi, ee_start_lo: p.lo }, buf, extentHeader.size + i * extentLeaf.size);
  });
}

export interface EncodedFileMap {
  /** The 60 bytes of i_block. */
  iBlock: Uint8Array;
  /** Blocks to write besides the data: an extent leaf or indirect blocks. */
  metaBlocks: Map<number, Uint8Array>;
}

/**
 * i_block and metadata blocks for a file map. `inodeSeed` is the inode's checksum
 * seed under metadata_csum (for the leaf's tail), undefined otherwise.
 */
export function encodeFileMap(map: FileMap, blockSize: number, inodeSeed: number | undefined): EncodedFileMap {
  const iBlock = new Uint8Array(I_BLOCK_BYTES);
  const metaBlocks = new Map<number, Uint8Array>();
  if (map.kind === "blockmap") {
    const dv = new DataView(iBlock.buffer);
    map.iBlock.forEach((b, i) => dv.setUint32(i * 4, b, true));
    for (const [blk, ptrs] of map.indirect) {
      const out = new Uint8Array(blockSize);
      const odv = new DataView(out.buffer);
      ptrs.forEach((p, i) => odv.setUint32(i * 4, p, true));
      metaBlocks.set(blk, out);
    }
    return { iBlock, metaBlocks };
  }
  if (map.leaf === undefined) {
    if (map.runs.length > ROOT_MAX) throw new RangeError(`${map.runs.length} extents do not fit in the inode`);
    putExtents(iBlock, map.runs, ROOT_MAX);
    return { iBlock, metaBlocks };
  }
  const leafMax = Math.floor((blockSize - extentHeader.size) / extentLeaf.size);
  const leaf = new Uint8Array(blockSize);
  putExtents(leaf, map.runs, leafMax);
  if (inodeSeed !== undefined) {
    const tail = extentTailOffset(extentHeader.decode(leaf));
    extentTail.encode({ et_checksum: extentBlockChecksum(leaf, tail, inodeSeed) }, leaf, tail);
  }
  metaBlocks.set(map.leaf, leaf);
  // extent_node_split moves the root's entries to the leaf without clearing them: slots
  // 1..3 keep extents 2..4, as mke2fs leaves them.
  putExtents(iBlock, map.runs.slice(0, ROOT_MAX), ROOT_MAX);
  extentHeader.encode({ eh_magic: EXT4_EXT_MAGIC, eh_entries: 1, eh_max: ROOT_MAX, eh_depth: 1, eh_generation: 0 }, iBlock, 0);
  const p = split64(map.leaf);
  extentIdx.encode({ ei_block: 0, ei_leaf_lo: p.lo, ei_leaf_hi: p.hi, ei_unused: 0 }, iBlock, extentHeader.size);
  return { iBlock, metaBlocks };
}
