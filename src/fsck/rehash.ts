/**
 * Pass 3A's rebuild of one directory (e2fsck rehash.c): the entries, already sorted, are
 * packed into new leaf blocks as copy_dir_entries packs them, an htree root (and a level of
 * index nodes when one root cannot index every leaf) is built over them as calculate_tree
 * builds it, and the directory is written back over its own blocks, grown or cut to the
 * blocks used (write_directory). A compressed directory (no dir_index, or too small to
 * index) gets the same leaf packing with no index.
 */

import { dirBlockChecksum, dxBlockChecksum, inodeChecksumSeed } from "../format/checksum.js";
import { EXT4_FT_DIR, EXT4_FT_DIR_CSUM, dirRecLen, recLenToDisk } from "../format/dirent.js";
import { EXT_INIT_MAX_LEN } from "../format/extent.js";
import { dxNodeLimit, dxRootLimit } from "../format/htree.js";
import { EXT4_EXTENTS_FL, EXT4_HUGE_FILE_FL, EXT4_INDEX_FL, type RawInode } from "../format/inode.js";
import { put16, put32, u16, u32 } from "./bytes.js";
import { DIR_HTREE, type CheckContext } from "./context.js";
import { allocateDirBlock, emptyDirBlock } from "./lost_found.js";
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

/** Seal a rebuilt block: a leaf's dirent tail, or an index block's dx_tail. @e2fsprogs ext2fs_dir_block_csum_set */
function sealBlock(c: CheckContext, b: Uint8Array, seed: number, kind: "leaf" | "root" | "node"): void {
  const bs = c.v.blockSize;
  if (kind === "leaf") {
    put32(b, bs - 4, dirBlockChecksum(b, bs, seed));
    return;
  }
  const entries = kind === "node" ? 8 : 32; // after a node's empty entry, or the root's '.', '..' and info
  const limit = u16(b, entries);
  const tail = entries + limit * 8;
  put32(b, tail + 4, dxBlockChecksum(b, entries, u16(b, entries + 2), tail, seed));
}

/** Whether `punch` can cut this map: an in-inode extent leaf, or no double or triple indirect block; not bigalloc. */
function punchable(c: CheckContext, raw: RawInode): boolean {
  const ib = raw.i_block;
  if (c.v.clusterRatio !== 1) return false;
  if ((raw.i_flags & EXT4_EXTENTS_FL) !== 0) return u16(ib, 0) === 0xf30a && u16(ib, 6) === 0;
  return u32(ib, 13 * 4) === 0 && u32(ib, 14 * 4) === 0;
}

/**
 * Free the directory's blocks from logical block `keep` on, as ext2fs_punch does, when its
 * map allows: an in-inode extent leaf, or direct blocks and one indirect block. Returns the
 * new i_block and the blocks freed, or null (nothing changed) for any other map.
 * @e2fsprogs ext2fs_punch
 */
async function punch(c: CheckContext, raw: RawInode, keep: number): Promise<{ iblock: Uint8Array; freed: number } | null> {
  const v = c.v;
  const ib = raw.i_block.slice();
  const toFree: number[] = [];
  let indBody: Uint8Array | null = null;
  let ind = 0;
  if (!punchable(c, raw)) return null;
  if ((raw.i_flags & EXT4_EXTENTS_FL) !== 0) {
    let entries = u16(ib, 2);
    // Trailing extents go (their slots keep their bytes, as ext2fs_extent_delete leaves them); one across `keep` is cut.
    for (let i = entries - 1; i >= 0; i--) {
      const at = 12 + i * 12;
      const lblk = u32(ib, at);
      const rl = u16(ib, at + 4);
      const uninit = rl > EXT_INIT_MAX_LEN;
      const len = uninit ? rl - EXT_INIT_MAX_LEN : rl;
      const pblk = u32(ib, at + 8) + u16(ib, at + 6) * 2 ** 32;
      if (lblk + len <= keep) break;
      const from = Math.max(keep, lblk);
      for (let k = from - lblk; k < len; k++) toFree.push(pblk + k);
      if (from === lblk) entries = i;
      else put16(ib, at + 4, from - lblk + (uninit ? EXT_INIT_MAX_LEN : 0));
    }
    put16(ib, 2, entries);
  } else {
    const perBlock = v.blockSize / 4;
    for (let i = keep; i < 12; i++) {
      const b = u32(ib, i * 4);
      if (b !== 0) toFree.push(b);
      put32(ib, i * 4, 0);
    }
    ind = u32(ib, 12 * 4);
    if (ind !== 0) {
      if (!v.blockValid(ind)) return null;
      indBody = (await v.readBlock(ind)).slice();
      for (let k = Math.max(0, keep - 12); k < perBlock; k++) {
        const b = u32(indBody, k * 4);
        if (b !== 0) toFree.push(b);
        put32(indBody, k * 4, 0);
      }
      if (keep <= 12) {
        toFree.push(ind);
        put32(ib, 12 * 4, 0);
        indBody = null;
      }
    }
  }
  if (toFree.some((b) => !v.blockValid(b))) return null;
  if (indBody !== null) await c.out.writeBlock(ind, indBody);
  for (const b of toFree) await blockAllocStats(c, b, -1);
  return { iblock: ib, freed: toFree.length };
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
  const leavesEnd = blocks.length;
  if (!compress && !calculateTree(c, blocks, hashes, dir, parent)) return false;
  const nodesEnd = blocks.length;
  let got = await readInode(c, dir);
  if (got === null) return false;
  const count = Math.floor((got.raw.i_size_lo + got.raw.i_size_high * 2 ** 32) / bs);
  const lostAndFound = dir === c.lostAndFound;
  let have = (await dirBlocks(c, got.raw, Math.max(count, blocks.length))).slice(0, count);
  if (have.includes(0) || have.length !== count) return false;
  // An index must not be left over blocks it does not name: only cut-able maps are indexed.
  if (!compress && !lostAndFound && !punchable(c, got.raw)) return false;
  for (let cnt = count; cnt < blocks.length; cnt++) {
    const blk = await allocateDirBlock(c, dir, cnt, false, true);
    if (blk === 0) return false;
    have.push(blk);
  }
  got = await readInode(c, dir);
  if (got === null) return false;
  const raw = got.raw;
  // The checker's quota usage follows the blocks added and freed. @e2fsprogs e2fsck_expand_directory, quota_data_add/sub
  if (blocks.length > count) c.quota.addSpace(raw, (blocks.length - count) * bs * v.clusterRatio);
  const fields: Partial<RawInode> = {};
  let num = blocks.length;
  if (lostAndFound) {
    while (blocks.length < have.length) blocks.push(emptyDirBlock(c));
    num = blocks.length;
  } else {
    const cut = await punch(c, raw, num);
    if (cut === null) {
      // Keep the blocks past the new end as empty ones when the map cannot be cut here.
      if (!compress) return false;
      while (blocks.length < have.length) blocks.push(emptyDirBlock(c));
      num = blocks.length;
    } else if (cut.freed > 0) {
      c.quota.addSpace(raw, -cut.freed * bs);
      fields.i_block = cut.iblock;
      let sectors = raw.i_blocks_lo + (v.f.hugeFile ? raw.l_i_blocks_high * 2 ** 32 : 0);
      sectors -= cut.freed * (!v.f.hugeFile || (raw.i_flags & EXT4_HUGE_FILE_FL) === 0 ? bs / 512 : 1);
      fields.i_blocks_lo = sectors % 2 ** 32;
      if (v.f.hugeFile) fields.l_i_blocks_high = Math.floor(sectors / 2 ** 32);
    }
  }
  have = have.slice(0, num);
  const seed = inodeChecksumSeed(v.csumSeed, dir, raw.i_generation);
  for (let i = 0; i < num; i++) {
    const b = blocks[i]!;
    if (v.f.metadataCsum) sealBlock(c, b, seed, compress ? "leaf" : i === 0 ? "root" : i >= leavesEnd && i < nodesEnd ? "node" : "leaf");
    await c.out.writeBlock(have[i]!, b);
  }
  fields.i_flags = (compress ? raw.i_flags & ~EXT4_INDEX_FL : raw.i_flags | EXT4_INDEX_FL) >>> 0;
  fields.i_size_lo = (num * bs) % 2 ** 32;
  fields.i_size_high = Math.floor((num * bs) / 2 ** 32);
  await c.out.writeInode(dir, fields);
  const idx = c.dirs.find(dir);
  if (idx >= 0) c.dirs.flags.set(idx, compress ? c.dirs.flags.get(idx) & ~DIR_HTREE : c.dirs.flags.get(idx) | DIR_HTREE);
  return true;
}

