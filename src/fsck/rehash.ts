/**
 * Pass 3A's rebuild of one directory (e2fsck rehash.c): the entries, already sorted, are
 * packed into new leaf blocks as copy_dir_entries packs them, an htree root (and a level of
 * index nodes when one root cannot index every leaf) is built over them as calculate_tree
 * builds it, and the directory is written back over its own blocks, grown or cut to the
 * blocks used (write_directory). A compressed directory (no dir_index, or too small to
 * index) gets the same leaf packing with no index.
 */

import { assert } from "../debug/assert.js";
import { inodeChecksumSeed } from "../format/checksum.js";
import { EXT4_FT_DIR, EXT4_FT_DIR_CSUM, dirRecLen, recLenToDisk } from "../format/dirent.js";
import { EXT4_EXT_MAGIC, EXT_INIT_MAX_LEN, extentHeader, extentLeaf } from "../format/extent.js";
import { dxNodeLimit, dxRootLimit } from "../format/htree.js";
import { EXT4_EXTENTS_FL, EXT4_HUGE_FILE_FL, EXT4_INDEX_FL, type RawInode } from "../format/inode.js";
import { put16, put32, u32 } from "./bytes.js";
import { DIR_HTREE, type CheckContext } from "./context.js";
import { ExtentTree, countExtentLevel, extentTreeSlack, type ExtentLevel, type XNode } from "./extent_edit.js";
import { PR_1E_CAN_COLLAPSE_EXTENT_TREE, PR_1E_CAN_NARROW_EXTENT_TREE } from "./problem.js";
import { allocateDirBlock, emptyDirBlock, newBlock } from "./lost_found.js";
import { sealDirBlock } from "./pass2.js";
import { dirBlocks, readInode } from "./paths.js";
import { blockAllocStats } from "./repair.js";

/** One entry to write: e2fsck's struct hash_entry with the name and file type it points at. */
export interface RehashEntry {
  ino: number;
  name: Uint8Array;
  ftype: number;
  hash: number;
  minor: number;
}

const DIRENT_TAIL = 12;
/** e2fsck's default indexed_dir_slack_percentage (no e2fsck.conf is read). */
const HTREE_SLACK_PERCENTAGE = 20;

/**
 * Pack `entries` (ino 0 skipped) into leaf blocks. Not compressing, block 0 is left for the
 * root and each block's first hash is kept for the index (with the low bit set when the
 * block continues the hash of the one before); each block is filled until less than the
 * slack (20% of it) is left. @e2fsprogs copy_dir_entries
 */
function copyDirEntries(c: CheckContext, entries: readonly RehashEntry[], compress: boolean): { blocks: Uint8Array[]; hashes: number[] } {
  const v = c.v;
  const bs = v.blockSize;
  const csumSize = v.f.metadataCsum ? DIRENT_TAIL : 0;
  const minRec = dirRecLen(1);
  const blocks: Uint8Array[] = compress ? [] : [new Uint8Array(bs)];
  const hashes: number[] = [0];
  const initTail = (b: Uint8Array): void => {
    if (csumSize === 0) return;
    put16(b, bs - DIRENT_TAIL + 4, DIRENT_TAIL);
    b[bs - DIRENT_TAIL + 7] = EXT4_FT_DIR_CSUM;
  };
  const nextBlock = (): Uint8Array => {
    const b = new Uint8Array(bs);
    blocks.push(b);
    return b;
  };
  let block = nextBlock();
  let dirent = 0;
  let offset = 0;
  let prevHash = 1;
  let prevRecLen = 0;
  let recLen = 0;
  let left = bs - csumSize;
  let slack = compress ? minRec : Math.floor(((bs - csumSize) * HTREE_SLACK_PERCENTAGE) / 100);
  if (slack < minRec) slack = minRec;
  for (const ent of entries) {
    if (ent.ino === 0) continue;
    recLen = dirRecLen(ent.name.length);
    if (recLen > left) {
      if (left !== 0) {
        left += prevRecLen;
        put16(block, dirent + 4, recLenToDisk(left, bs));
      }
      initTail(block);
      block = nextBlock();
      offset = 0;
    }
    left = bs - csumSize - offset;
    dirent = offset;
    if (offset === 0) hashes[blocks.length - 1] = ent.hash === prevHash ? (ent.hash | 1) >>> 0 : ent.hash;
    put32(block, dirent, ent.ino);
    put16(block, dirent + 4, recLenToDisk(recLen, bs));
    block[dirent + 6] = ent.name.length;
    block[dirent + 7] = ent.ftype;
    block.set(ent.name, dirent + 8);
    prevRecLen = recLen;
    offset += recLen;
    left -= recLen;
    if (left < slack) {
      prevRecLen += left;
      put16(block, dirent + 4, recLenToDisk(prevRecLen, bs));
      offset += left;
      left = 0;
    }
    prevHash = ent.hash;
  }
  if (left !== 0) put16(block, dirent + 4, recLenToDisk(recLen + left, bs));
  initTail(block);
  return { blocks, hashes };
}

/**
 * Fill block 0 with the htree root over leaves 1.. and, when the root's slots are too few,
 * add one level of index nodes after the leaves. Returns false when two levels would be
 * needed (e2fsck builds those; ext4ts does not). @e2fsprogs calculate_tree, set_root_node, set_int_node
 */
function calculateTree(c: CheckContext, blocks: Uint8Array[], hashes: readonly number[], ino: number, parent: number): boolean {
  const v = c.v;
  const bs = v.blockSize;
  const csum = v.f.metadataCsum;
  const root = blocks[0]!;
  const ft = v.f.filetype ? EXT4_FT_DIR : 0;
  put32(root, 0, ino);
  put16(root, 4, 12);
  root[6] = 1;
  root[7] = ft;
  root[8] = 0x2e;
  put32(root, 12, parent);
  put16(root, 16, bs - 12);
  root[18] = 2;
  root[19] = ft;
  root[20] = root[21] = 0x2e;
  root[28] = v.sb.s_def_hash_version;
  root[29] = 8; // info_length
  const rootLimit = dxRootLimit(bs, 8, csum);
  const nodeLimit = dxNodeLimit(bs, csum);
  put16(root, 32, rootLimit);
  const nblks = blocks.length;
  // A dx_entry: the first slot of a node has no hash (its place holds the count and limit).
  const putEntry = (b: Uint8Array, at: number, blk: number, hash: number | null): void => {
    if (hash !== null) put32(b, at, hash);
    put32(b, at + 4, blk);
  };
  if (nblks - 1 <= rootLimit) {
    for (let i = 1; i < nblks; i++) putEntry(root, 32 + (i - 1) * 8, i, i === 1 ? null : hashes[i]!);
    put16(root, 34, nblks - 1);
    return true;
  }
  if (nblks - 1 > rootLimit * nodeLimit) return false;
  root[30] = 1; // indirect_levels
  let rootSlots = 0;
  let node: Uint8Array | null = null;
  let used = 0;
  for (let i = 1; i < nblks; i++) {
    if (node === null || used === nodeLimit) {
      if (node !== null) put16(node, 10, used);
      putEntry(root, 32 + rootSlots * 8, blocks.length, i === 1 ? null : hashes[i]!);
      rootSlots++;
      node = new Uint8Array(bs);
      put16(node, 4, recLenToDisk(bs, bs));
      put16(node, 8, nodeLimit);
      blocks.push(node);
      used = 0;
    }
    putEntry(node, 8 + used * 8, i, used === 0 ? null : hashes[i]!);
    used++;
  }
  if (node !== null) put16(node, 10, used);
  put16(root, 34, rootSlots);
  return true;
}

/** Whether ext4ts can cut this map: any extent tree, or a block map without double or triple indirect blocks; not bigalloc. */
function punchable(c: CheckContext, raw: RawInode): boolean {
  if (c.v.clusterRatio !== 1) return false;
  if ((raw.i_flags & EXT4_EXTENTS_FL) !== 0) return true;
  return u32(raw.i_block, 13 * 4) === 0 && u32(raw.i_block, 14 * 4) === 0;
}

/**
 * Unmap a block-mapped directory's blocks from logical block `keep` on (direct slots, then
 * the single indirect block's, the indirect block itself when left empty). Returns the new
 * i_block and the blocks to free. @e2fsprogs ext2fs_punch_ind
 */
async function punchBlockMap(c: CheckContext, raw: RawInode, keep: number): Promise<{ iblock: Uint8Array; freed: number[] }> {
  const v = c.v;
  const ib = raw.i_block.slice();
  const freed: number[] = [];
  for (let i = keep; i < 12; i++) {
    const b = u32(ib, i * 4);
    if (b !== 0) freed.push(b);
    put32(ib, i * 4, 0);
  }
  const ind = u32(ib, 12 * 4);
  if (ind !== 0 && v.blockValid(ind)) {
    const body = (await v.readBlock(ind)).slice();
    for (let k = Math.max(0, keep - 12); k < v.blockSize / 4; k++) {
      const b = u32(body, k * 4);
      if (b !== 0) freed.push(b);
      put32(body, k * 4, 0);
    }
    if (keep <= 12) {
      freed.push(ind);
      put32(ib, 12 * 4, 0);
    } else await c.out.writeBlock(ind, body);
  }
  return { iblock: ib, freed };
}

/**
 * Write directory `dir` anew from `entries` (sorted as e2fsck_rehash_dir sorts them; in a
 * compressed directory the first two are '.' and '..'), with `parent` for the root's '..'.
 * The directory first grows to the blocks needed (e2fsck_expand_directory), then the blocks
 * are written, and those past them are freed, except /lost+found's, which hold empty
 * blocks. Returns false, having written nothing of the directory's entries, when ext4ts
 * cannot build its map (a hole, a deeper extent tree, a second level of index).
 * @e2fsprogs e2fsck_rehash_dir, write_directory
 */
export async function rehashDir(c: CheckContext, dir: number, entries: readonly RehashEntry[], compress: boolean, parent: number): Promise<boolean> {
  const v = c.v;
  const bs = v.blockSize;
  const { blocks, hashes } = copyDirEntries(c, entries, compress);
  if (!compress && !calculateTree(c, blocks, hashes, dir, parent)) return false;
  let got = await readInode(c, dir);
  if (got === null) return false;
  const count = Math.floor((got.raw.i_size_lo + got.raw.i_size_high * 2 ** 32) / bs);
  const lostAndFound = dir === c.lostAndFound;
  let have = (await dirBlocks(c, got.raw, Math.max(count, blocks.length))).slice(0, count);
  if (have.includes(0) || have.length !== count) return false;
  // An index must not be left over blocks it does not name: only cut-able maps are indexed.
  if (!compress && !lostAndFound && !punchable(c, got.raw)) return false;
  let raw = got.raw;
  let tree: ExtentTree | null = null;
  if ((raw.i_flags & EXT4_EXTENTS_FL) !== 0) {
    const t = await ExtentTree.load(c, dir, raw, async (goal) => {
      const b = newBlock(c, goal);
      if (b !== 0) await blockAllocStats(c, b, 1);
      return b;
    });
    if (typeof t === "string") return false;
    tree = t;
  }
  // Grown first, each new block near the last one walked (expand_dir_proc's last_blk).
  let grown = 0;
  const goal = have[have.length - 1] ?? 0;
  for (let cnt = count; cnt < blocks.length; cnt++) {
    let blk: number;
    if (tree !== null) {
      blk = newBlock(c, goal);
      if (blk === 0) return false;
      await blockAllocStats(c, blk, 1);
      await tree.appendBlock(cnt, blk);
      grown++;
    } else {
      blk = await allocateDirBlock(c, dir, cnt, false, true);
      if (blk === 0) return false;
    }
    have.push(blk);
  }
  if (tree === null) {
    got = await readInode(c, dir);
    if (got === null) return false;
    raw = got.raw;
  }
  // The checker's quota usage follows the blocks added and freed. @e2fsprogs e2fsck_expand_directory, quota_data_add/sub
  if (blocks.length > count) c.quota.addSpace(raw, (blocks.length - count) * bs * v.clusterRatio);
  const fields: Partial<RawInode> = {};
  let num = blocks.length;
  let freed: number[] = [];
  if (lostAndFound || !punchable(c, raw)) {
    // /lost+found keeps its blocks, as empty ones; so does a map ext4ts cannot cut (compressed only).
    while (blocks.length < have.length) blocks.push(emptyDirBlock(c));
    num = blocks.length;
  } else if (tree !== null) freed = tree.punchFrom(num);
  else {
    const cut = await punchBlockMap(c, raw, num);
    freed = cut.freed;
    if (freed.length > 0) fields.i_block = cut.iblock;
  }
  for (const b of freed) await blockAllocStats(c, b, -1);
  if (tree !== null) await tree.flush();
  if (freed.length > 0) c.quota.addSpace(raw, -freed.length * bs);
  if (grown > 0 || freed.length > 0) {
    let sectors = raw.i_blocks_lo + (v.f.hugeFile ? raw.l_i_blocks_high * 2 ** 32 : 0);
    sectors += (grown - freed.length) * (!v.f.hugeFile || (raw.i_flags & EXT4_HUGE_FILE_FL) === 0 ? bs / 512 : 1);
    fields.i_blocks_lo = sectors % 2 ** 32;
    if (v.f.hugeFile) fields.l_i_blocks_high = Math.floor(sectors / 2 ** 32);
  }
  have = have.slice(0, num);
  const seed = inodeChecksumSeed(v.csumSeed, dir, raw.i_generation);
  for (let i = 0; i < num; i++) {
    const b = blocks[i]!;
    // Every block built above has its leaf tail or dx_tail: sealing it cannot fail.
    if (v.f.metadataCsum) assert(sealDirBlock(b, bs, seed), () => `pass 3A built directory ${dir}'s block ${i} without a checksum tail`);
    await c.out.writeBlock(have[i]!, b);
  }
  fields.i_flags = (compress ? raw.i_flags & ~EXT4_INDEX_FL : raw.i_flags | EXT4_INDEX_FL) >>> 0;
  fields.i_size_lo = (num * bs) % 2 ** 32;
  fields.i_size_high = Math.floor((num * bs) / 2 ** 32);
  await c.out.writeInode(dir, fields);
  const idx = c.dirs.find(dir);
  if (idx >= 0) c.dirs.flags.set(idx, compress ? c.dirs.flags.get(idx) & ~DIR_HTREE : c.dirs.flags.get(idx) | DIR_HTREE);
  if (tree !== null && tree.root.depth > 0) await checkRebuildExtents(c, dir);
  return true;
}

/**
 * After the rebuild, a tree left with room to spare is offered to be made shorter or
 * narrower, as e2fsck scores every extent tree: per level, the slots in use and the slots
 * there are (one fewer in a non-root node that is not full). ext4ts rebuilds it only when
 * its extents then fit in the inode; a rebuild that needs tree blocks is not done.
 * @e2fsprogs e2fsck_check_rebuild_extents, e2fsck_should_rebuild_extents, rebuild_extent_tree
 */
async function checkRebuildExtents(c: CheckContext, ino: number): Promise<void> {
  const v = c.v;
  const got = await readInode(c, ino);
  if (got === null) return;
  const raw = got.raw;
  const tree = await ExtentTree.load(c, ino, raw, () => Promise.resolve(0));
  if (typeof tree === "string") return;
  const levels: ExtentLevel[] = [];
  const walk = (n: XNode, level: number): void => {
    countExtentLevel(levels, level, n.ents.length, n.max);
    for (const e of n.ents) if (e.child !== null) walk(e.child, level + 1);
  };
  walk(tree.root, 0);
  const slack = extentTreeSlack(levels, v.blockSize);
  const problem = slack === null ? null : slack.shorter ? PR_1E_CAN_COLLAPSE_EXTENT_TREE : PR_1E_CAN_NARROW_EXTENT_TREE;
  const at = slack?.level ?? 0;
  const leaves = tree.leaves();
  const rootMax = (60 - extentHeader.size) / extentLeaf.size;
  if (problem === null || leaves.length > rootMax || !c.r.ask(problem, { ino, blk: at })) return;
  // The extents go back into the inode, in a fresh header; the tree blocks are freed.
  const ib = new Uint8Array(60);
  put16(ib, extentHeader.offsetOf("eh_magic"), EXT4_EXT_MAGIC);
  put16(ib, extentHeader.offsetOf("eh_entries"), leaves.length);
  put16(ib, extentHeader.offsetOf("eh_max"), rootMax);
  leaves.forEach((e, i) => {
    const o = extentHeader.size + i * extentLeaf.size;
    put32(ib, o + extentLeaf.offsetOf("ee_block"), e.lblk);
    put16(ib, o + extentLeaf.offsetOf("ee_len"), e.len + (e.uninit ? EXT_INIT_MAX_LEN : 0));
    put16(ib, o + extentLeaf.offsetOf("ee_start_hi"), Math.floor(e.pblk / 2 ** 32));
    put32(ib, o + extentLeaf.offsetOf("ee_start_lo"), e.pblk % 2 ** 32);
  });
  const nodes = tree.nodes().map((n) => n.blk);
  for (const b of nodes) await blockAllocStats(c, b, -1);
  c.quota.addSpace(raw, -nodes.length * v.blockSize);
  let sectors = raw.i_blocks_lo + (v.f.hugeFile ? raw.l_i_blocks_high * 2 ** 32 : 0);
  sectors -= nodes.length * (!v.f.hugeFile || (raw.i_flags & EXT4_HUGE_FILE_FL) === 0 ? v.blockSize / 512 : 1);
  await c.out.writeInode(ino, { i_block: ib, i_blocks_lo: sectors % 2 ** 32, ...(v.f.hugeFile ? { l_i_blocks_high: Math.floor(sectors / 2 ** 32) } : {}) });
}

