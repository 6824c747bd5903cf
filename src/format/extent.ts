/**
 * Extent tree nodes (fs/ext4/ext4_extents.h; Documentation/filesystems/ext4/ifork.rst).
 *
 * A node is a header followed by `eh_max` 12-byte slots: index entries when
 * `eh_depth > 0`, leaf extents when it is 0. The root node lives in the inode's
 * i_block[] (60 bytes: header + 4 slots); other nodes fill a block and, with
 * metadata_csum, end with a 4-byte tail right after the last slot.
 */

import { FsError, type FsErrorDetail } from "../errors.js";
import { defineStruct, join64, u16le, u32le, type FieldsOf } from "./struct.js";

export const EXT4_EXT_MAGIC = 0xf30a;
/** Longest initialized extent; an ee_len above this marks an unwritten extent. */
export const EXT_INIT_MAX_LEN = 1 << 15;
export const EXT_UNWRITTEN_MAX_LEN = EXT_INIT_MAX_LEN - 1;
/** The kernel refuses deeper trees. @kernel EXT4_MAX_EXTENT_DEPTH */
export const EXT4_MAX_EXTENT_DEPTH = 5;

export const extentHeader = defineStruct("ext4_extent_header", 12, {
  eh_magic: [0x0, u16le],
  eh_entries: [0x2, u16le], // slots in use
  eh_max: [0x4, u16le], // capacity in slots
  eh_depth: [0x6, u16le], // 0: slots are leaves
  eh_generation: [0x8, u32le],
});
export type ExtentHeader = FieldsOf<typeof extentHeader>;

export const extentIdx = defineStruct("ext4_extent_idx", 12, {
  ei_block: [0x0, u32le], // first logical block covered
  ei_leaf_lo: [0x4, u32le], // child node's physical block
  ei_leaf_hi: [0x8, u16le],
  ei_unused: [0xa, u16le],
});

export const extentLeaf = defineStruct("ext4_extent", 12, {
  ee_block: [0x0, u32le], // first logical block
  ee_len: [0x4, u16le], // > EXT_INIT_MAX_LEN: unwritten, length ee_len - EXT_INIT_MAX_LEN
  ee_start_hi: [0x6, u16le],
  ee_start_lo: [0x8, u32le],
});

export const extentTail = defineStruct("ext4_extent_tail", 4, {
  et_checksum: [0x0, u32le],
});

/** One mapped run of a leaf, lengths already decoded. */
export interface Extent {
  lblk: number;
  len: number;
  pblk: number;
  unwritten: boolean;
}

export interface ExtentIndex {
  lblk: number;
  pblk: number;
}

export type ExtentNode =
  | { header: ExtentHeader; depth: 0; extents: Extent[] }
  | { header: ExtentHeader; depth: number; indexes: ExtentIndex[] };

/** Byte offset of the checksum tail in a non-root node. @kernel EXT4_EXTENT_TAIL_OFFSET */
export function extentTailOffset(h: ExtentHeader): number {
  return extentHeader.size + h.eh_max * extentLeaf.size;
}

/**
 * Decode and check one node. `size` is 60 for the root in i_block, else the block
 * size. Checks what the kernel checks before trusting a node (magic, entries <= max,
 * max consistent with the space, expected depth, entries sorted, extents within the
 * volume), so every later walk can rely on it.
 * @kernel __ext4_ext_check / ext4_valid_extent_entries
 */
export function decodeExtentNode(
  buf: Uint8Array,
  size: number,
  opts: {
    expectedDepth?: number;
    blocksCount: number;
    /** s_first_data_block: nothing may map it or anything before it (the superblock). */
    firstDataBlock: number;
    isRoot: boolean;
    /** The key of the index entry that led here: the node's first entry must carry it. */
    firstKey?: number;
    ctx?: FsErrorDetail;
  },
): ExtentNode {
  const bad = (what: string): FsError => new FsError("EFSCORRUPTED", `Bad extent ${opts.isRoot ? "root" : "node"}: ${what}`, opts.ctx ?? {});
  const h = extentHeader.decode(buf, 0);
  if (h.eh_magic !== EXT4_EXT_MAGIC) throw bad(`magic is 0x${h.eh_magic.toString(16).padStart(4, "0")}, expected 0xf30a`);
  const room = Math.floor((size - extentHeader.size) / extentLeaf.size);
  if (h.eh_max === 0 || h.eh_max > room) {
    throw bad(`eh_max ${h.eh_max} does not fit a ${size}-byte node`);
  }
  if (h.eh_entries > h.eh_max) throw bad(`eh_entries ${h.eh_entries} exceeds eh_max ${h.eh_max}`);
  if (h.eh_depth > EXT4_MAX_EXTENT_DEPTH) throw bad(`depth ${h.eh_depth} exceeds ${EXT4_MAX_EXTENT_DEPTH}`);
  if (opts.expectedDepth !== undefined && h.eh_depth !== opts.expectedDepth) {
    throw bad(`depth ${h.eh_depth}, expected ${opts.expectedDepth}`);
  }
  if (h.eh_depth > 0 && h.eh_entries === 0) throw bad("eh_entries is 0 but eh_depth is > 0");
  // @kernel ext4_sb_block_valid: past s_first_data_block, inside the volume.
  const inRange = (pblk: number, len: number): boolean => pblk > opts.firstDataBlock && pblk + len <= opts.blocksCount;
  const firstKeyOk = (key: number): boolean => opts.firstKey === undefined || key === opts.firstKey;
  if (h.eh_depth === 0) {
    const extents: Extent[] = [];
    let nextFree = 0;
    for (let i = 0; i < h.eh_entries; i++) {
      const e = extentLeaf.decode(buf, extentHeader.size + i * extentLeaf.size);
      const unwritten = e.ee_len > EXT_INIT_MAX_LEN;
      const len = unwritten ? e.ee_len - EXT_INIT_MAX_LEN : e.ee_len;
      const pblk = join64(e.ee_start_lo, e.ee_start_hi);
      if (len === 0) throw bad(`extent ${i} has length 0`);
      if (e.ee_block < nextFree) throw bad(`extent ${i} at logical block ${e.ee_block} overlaps the previous one`);
      if (e.ee_block + len >= 2 ** 32) throw bad(`extent ${i} runs past logical block 2^32 - 1`);
      if (i === 0 && !firstKeyOk(e.ee_block)) throw bad(`first extent starts at ${e.ee_block}, but the index says ${opts.firstKey}`);
      if (!inRange(pblk, len)) throw bad(`extent ${i} maps blocks ${pblk}..${pblk + len - 1}, outside the volume`);
      nextFree = e.ee_block + len;
      extents.push({ lblk: e.ee_block, len, pblk, unwritten });
    }
    return { header: h, depth: 0, extents };
  }
  const indexes: ExtentIndex[] = [];
  let prev = -1;
  for (let i = 0; i < h.eh_entries; i++) {
    const x = extentIdx.decode(buf, extentHeader.size + i * extentIdx.size);
    const pblk = join64(x.ei_leaf_lo, x.ei_leaf_hi);
    if (x.ei_block <= prev) throw bad(`index ${i} at logical block ${x.ei_block} is out of order`);
    if (i === 0 && !firstKeyOk(x.ei_block)) throw bad(`first index starts at ${x.ei_block}, but the parent index says ${opts.firstKey}`);
    if (!inRange(pblk, 1)) throw bad(`index ${i} points at block ${pblk}, outside the volume`);
    prev = x.ei_block;
    indexes.push({ lblk: x.ei_block, pblk });
  }
  return { header: h, depth: h.eh_depth, indexes };
}
