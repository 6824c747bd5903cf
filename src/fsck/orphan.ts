/**
 * The orphan inode list, released before pass 1 by a repairing run, as e2fsck's
 * check_super_block does (release_orphan_inodes): every inode on the list that starts at
 * s_last_orphan and goes on through i_dtime is either deleted (no links: its blocks and
 * attribute block freed, the inode freed with dtime now) or truncated (links left: the
 * blocks past i_size freed, dtime 0). A read-only check leaves the list to pass 1.
 *
 * What the list walk frees goes through the same bitmaps and counts as the passes' repairs
 * (repair.ts), so pass 5 has nothing to say about it. The block walk is libext2fs's
 * ext2fs_block_iterate3 with BLOCK_FLAG_DEPTH_TRAVERSE: a mapping block is seen after the
 * blocks it maps, so truncation can free it once it maps nothing.
 *
 * Not done as e2fsck does: the quota files are not adjusted for what is released (e2fsck
 * reads and rewrites them around the walk); pass 1 then counts usage afresh and the usual
 * comparison rewrites them. A truncation that would have to split a full extent node is
 * refused (the walk stops with an error), where libext2fs splits the node.
 */

import { extentBlockChecksum, inodeChecksumSeed } from "../format/checksum.js";
import { EXT4_BG_BLOCK_UNINIT } from "../format/group_desc.js";
import { EXT_INIT_MAX_LEN, extentHeader, extentLeaf } from "../format/extent.js";
import { EXT4_EXTENTS_FL, S_IFDIR, S_IFMT, inodeGid, inodeUid, type RawInode } from "../format/inode.js";
import { EXT4_ERROR_FS } from "../format/superblock.js";
import { put16, put32, u16, u32 } from "./bytes.js";
import type { CheckContext } from "./context.js";
import { hasValidBlocks } from "./pass1.js";
import { readInode } from "./paths.js";
import {
  PR_0_ORPHAN_ALREADY_CLEARED_BLOCK, PR_0_ORPHAN_CLEAR_INODE, PR_0_ORPHAN_ILLEGAL_BLOCK_NUM, PR_0_ORPHAN_ILLEGAL_HEAD_INODE,
  PR_0_ORPHAN_ILLEGAL_INODE,
} from "./problem.js";
import { adjustEaRefcount, blockAllocStats, inodeAllocStats } from "./repair.js";

/** ext2fs_block_iterate3's callback flags. */
const BLOCK_CHANGED = 1;
const BLOCK_ABORT = 2;
const BLOCK_ERROR = 4;

const EXT4_HUGE_FILE_FL = 0x40000;
const EXT2_NDIR_BLOCKS = 12;

/**
 * Release the orphan list (a repairing run only). Returns true when the walk met something
 * it could not trust (e2fsck then leaves the volume marked not valid); the head of the list
 * is forgotten either way. @e2fsprogs release_orphan_inodes
 */
export async function releaseOrphanInodes(c: CheckContext): Promise<boolean> {
  const v = c.v;
  const sb = v.sb;
  let ino = sb.s_last_orphan;
  if (ino === 0) return false;
  // Win or lose, the head of the list is not used again.
  sb.s_last_orphan = 0;
  c.out.markSuperDirty();
  // A volume with errors gets a full check anyway, and its list cannot be trusted.
  if ((sb.s_state & EXT4_ERROR_FS) !== 0) return false;
  if (ino < v.firstIno || ino > sb.s_inodes_count) {
    c.r.ask(PR_0_ORPHAN_ILLEGAL_HEAD_INODE, { ino });
    return true;
  }
  // Not in e2fsck: a list that runs in a circle through truncated inodes would never end.
  for (let guard = 0; ino !== 0; guard++) {
    if (guard > v.inodesCount) return true;
    const next = await releaseOrphanInode(c, ino);
    if (next === null) return true;
    ino = next;
  }
  return false;
}

/** One inode of the list; returns the next one (0 at the end), or null on an error. @e2fsprogs release_orphan_inode */
async function releaseOrphanInode(c: CheckContext, ino: number): Promise<number | null> {
  const v = c.v;
  const got = await readInode(c, ino);
  if (got === null) return null;
  const raw = got.raw;
  c.r.ask(PR_0_ORPHAN_CLEAR_INODE, {
    str: raw.i_links_count !== 0 ? "Truncating" : "Clearing", ino, uid: inodeUid(raw), gid: inodeGid(raw), mode: raw.i_mode,
    size: raw.i_size_lo + raw.i_size_high * 2 ** 32,
  });
  const next = raw.i_dtime;
  if (next !== 0 && (next < v.firstIno || next > v.sb.s_inodes_count)) {
    c.r.ask(PR_0_ORPHAN_ILLEGAL_INODE, { ino: next });
    return null;
  }
  const released = await releaseInodeBlocks(c, ino, raw);
  if (released === null) return null;
  const fields: Partial<RawInode> = { ...released };
  if (raw.i_links_count === 0) {
    await inodeAllocStats(c, ino, -1, (raw.i_mode & S_IFMT) === S_IFDIR);
    fields.i_dtime = c.now >>> 0;
  } else {
    fields.i_dtime = 0;
  }
  await c.out.writeInode(ino, fields);
  return next;
}

interface ReleaseState {
  truncating: boolean;
  /** First logical block past i_size (e2fsck's truncate_block). */
  truncateBlock: number;
  truncateOffset: number;
  truncatedBlocks: number;
  lastCluster: number;
  abort: boolean;
}

/**
 * Free what the inode maps: everything when it is deleted, what lies past i_size when it is
 * truncated; then its attribute block's reference. Returns the inode fields that changed
 * (i_blocks, the attribute block), or null when the walk met a block it must not free or
 * could not walk the map. @e2fsprogs release_inode_blocks
 */
async function releaseInodeBlocks(c: CheckContext, ino: number, raw: RawInode): Promise<Partial<RawInode> | null> {
  const v = c.v;
  const bs = v.blockSize;
  let fileAcl = raw.i_file_acl_lo + (v.f.is64bit ? raw.l_i_file_acl_high * 2 ** 32 : 0);
  if (!hasValidBlocks(raw, fileAcl)) return {};
  const size = raw.i_size_lo + raw.i_size_high * 2 ** 32;
  const st: ReleaseState = {
    truncating: raw.i_links_count !== 0,
    truncateBlock: raw.i_links_count !== 0 ? Math.ceil(size / bs) : 0,
    truncateOffset: raw.i_links_count !== 0 ? raw.i_size_lo % bs : 0,
    truncatedBlocks: 0,
    lastCluster: 0,
    abort: false,
  };
  const cb = (blk: number, blockcnt: number): Promise<number> => releaseInodeBlock(c, ino, st, blk, blockcnt);
  const walked = (raw.i_flags & EXT4_EXTENTS_FL) !== 0 ? await iterateExtentsReleasing(c, ino, raw, cb) : await iterateBlockMapReleasing(c, ino, raw, cb);
  if (walked.error !== undefined) {
    c.warn(`release_inode_blocks: ${walked.error} while calling ext2fs_block_iterate for inode ${ino}`);
    return null;
  }
  if (st.abort) return null;
  // The inode as the walk left it (its map and, for extents, i_blocks may have changed).
  const now = (await readInode(c, ino))?.raw ?? raw;
  const out: Partial<RawInode> = {};
  if (st.truncatedBlocks > 0) {
    const blocks = iblkSubBlocks(c, now, st.truncatedBlocks);
    if (blocks !== null) Object.assign(out, blocks);
  }
  fileAcl = now.i_file_acl_lo + (v.f.is64bit ? now.l_i_file_acl_high * 2 ** 32 : 0);
  if (fileAcl !== 0) {
    const adj = await adjustEaRefcount(c, fileAcl, -1);
    let count: number;
    if ("count" in adj) count = adj.count;
    else if (adj.error === "bad-block-num") count = 1;
    else {
      c.warn(`release_inode_blocks: ${adj.error === "csum" ? "Extended attribute block checksum does not match block" : "Extended attribute block has a bad header"} while calling ext2fs_adjust_ea_refcount2 for inode ${ino}`);
      return null;
    }
    if (count === 0) await blockAllocStats(c, fileAcl, -1);
    out.i_file_acl_lo = 0;
    if (v.f.is64bit) out.l_i_file_acl_high = 0;
  }
  return out;
}

/** i_blocks less `n` filesystem blocks, or null when it holds fewer (EOVERFLOW: left alone). @e2fsprogs ext2fs_iblk_sub_blocks */
function iblkSubBlocks(c: CheckContext, raw: RawInode, n: number): Partial<RawInode> | null {
  const v = c.v;
  let units = n;
  if (!(v.f.hugeFile && (raw.i_flags & EXT4_HUGE_FILE_FL) !== 0)) units *= v.blockSize / 512;
  units *= v.clusterRatio;
  let b = raw.i_blocks_lo + (v.f.hugeFile ? raw.l_i_blocks_high * 2 ** 32 : 0);
  if (units > b) return null;
  b -= units;
  const out: Partial<RawInode> = { i_blocks_lo: b % 2 ** 32 };
  if (v.f.hugeFile) out.l_i_blocks_high = Math.floor(b / 2 ** 32);
  return out;
}

/** One block of an orphan. @e2fsprogs release_inode_block */
async function releaseInodeBlock(c: CheckContext, ino: number, st: ReleaseState, blk: number, blockcnt: number): Promise<number> {
  const v = c.v;
  if (blk === 0) return 0;
  const cluster = Math.floor(blk / v.clusterRatio);
  if (st.lastCluster === cluster) return 0;
  st.lastCluster = cluster;
  if (blk < v.firstDataBlock || blk >= v.blocksCount) {
    c.r.ask(PR_0_ORPHAN_ILLEGAL_BLOCK_NUM, { blk, blkcount: blockcnt, ino });
    st.abort = true;
    return BLOCK_ABORT;
  }
  if (!(await blockMarkedInUse(c, blk))) {
    c.r.ask(PR_0_ORPHAN_ALREADY_CLEARED_BLOCK, { blk, blkcount: blockcnt, ino });
    st.abort = true;
    return BLOCK_ABORT;
  }
  let ret = 0;
  if (st.truncating) {
    // A mapping block goes only once it maps nothing.
    if (blockcnt < 0) {
      let buf: Uint8Array;
      try {
        buf = await v.readBlock(blk);
      } catch {
        st.abort = true;
        return BLOCK_ABORT;
      }
      for (let i = 0; i < v.blockSize; i += 4) if (u32(buf, i) !== 0) return 0;
    }
    // Blocks before the truncation point stay.
    if (blockcnt >= 0 && blockcnt < st.truncateBlock) return 0;
    // e2fsck zeroes the tail of the block at the truncation point (the first one past
    // i_size, which it then frees), as it has since the list was first released.
    if (blockcnt === st.truncateBlock && st.truncateOffset !== 0) {
      const off = st.truncateOffset;
      try {
        await c.out.updateBlock(blk, (b) => b.fill(0, off));
      } catch {
        st.abort = true;
        return BLOCK_ABORT;
      }
    }
    st.truncatedBlocks++;
    ret |= BLOCK_CHANGED;
  }
  await blockAllocStats(c, blk, -1);
  return ret;
}

/** Block `blk`'s bit in its group's block bitmap on disk (e2fsck_read_bitmaps' fs->block_map). */
async function blockMarkedInUse(c: CheckContext, blk: number): Promise<boolean> {
  const v = c.v;
  const g = v.groupOfBlock(blk);
  // An uninitialised group's bitmap holds only its own metadata, which no file maps.
  if (v.f.groupDescCsum && (v.group(g).bg_flags & EXT4_BG_BLOCK_UNINIT) !== 0) return false;
  const loc = v.blockBitmapLoc(g);
  if (loc === 0 || loc >= v.blocksCount) return true;
  const bit = Math.floor((blk - v.groupFirstBlock(g)) / v.clusterRatio);
  try {
    const bm = await v.readBlock(loc);
    return (bm[bit >>> 3]! & (1 << (bit & 7))) !== 0;
  } catch {
    return true;
  }
}

type ReleaseCallback = (blk: number, blockcnt: number) => Promise<number>;

/**
 * ext2fs_block_iterate3 over a block map with BLOCK_FLAG_DEPTH_TRAVERSE: a pointer the
 * callback answers BLOCK_CHANGED is zeroed (the mapping block, or the inode, written back).
 * A mapping block outside the volume is an error that ends its subtree but not the walk.
 */
async function iterateBlockMapReleasing(c: CheckContext, ino: number, raw: RawInode, cb: ReleaseCallback): Promise<{ error?: string }> {
  const v = c.v;
  const limit = v.blockSize / 4;
  const iblock = raw.i_block.slice();
  let bcount = 0;
  let error: string | undefined;
  const names = ["", "Illegal indirect block found", "Illegal doubly indirect block found", "Illegal triply indirect block found"];
  /** block_iterate_ind / _dind / _tind: returns the flags and the (possibly zeroed) pointer. */
  const ind = async (ptr: number, level: number): Promise<{ ret: number; ptr: number }> => {
    let ret = 0;
    if (ptr >= v.blocksCount || ptr < v.firstDataBlock) {
      error = names[level];
      return { ret: BLOCK_ERROR, ptr };
    }
    let buf: Uint8Array;
    try {
      buf = (await v.readBlock(ptr)).slice();
    } catch {
      error = "Attempt to read block from filesystem resulted in short read";
      return { ret: BLOCK_ERROR, ptr };
    }
    let changed = 0;
    for (let i = 0; i < limit; i++) {
      const p = u32(buf, i * 4);
      if (level === 1) {
        if (p !== 0) {
          const flags = await cb(p, bcount);
          if (flags & BLOCK_CHANGED) put32(buf, i * 4, 0);
          changed |= flags;
          if (flags & BLOCK_ABORT) {
            ret |= BLOCK_ABORT;
            break;
          }
        }
        bcount++;
        continue;
      }
      if (p === 0) {
        bcount += limit ** (level - 1);
        continue;
      }
      const child = await ind(p, level - 1);
      put32(buf, i * 4, child.ptr);
      changed |= child.ret;
      if (child.ret & (BLOCK_ABORT | BLOCK_ERROR)) {
        ret |= child.ret & (BLOCK_ABORT | BLOCK_ERROR);
        break;
      }
    }
    if (changed & BLOCK_CHANGED) await c.out.writeBlock(ptr, buf);
    if (!(ret & BLOCK_ABORT)) {
      const flags = await cb(ptr, -level);
      ret |= flags;
      if (flags & BLOCK_CHANGED) ptr = 0;
    }
    return { ret, ptr };
  };
  let ret = 0;
  walk: {
    for (let i = 0; i < EXT2_NDIR_BLOCKS; i++, bcount++) {
      const p = u32(iblock, i * 4);
      if (p === 0) continue;
      const flags = await cb(p, bcount);
      if (flags & BLOCK_CHANGED) put32(iblock, i * 4, 0);
      ret |= flags;
      if (flags & BLOCK_ABORT) break walk;
    }
    for (let level = 1; level <= 3; level++) {
      const at = (EXT2_NDIR_BLOCKS + level - 1) * 4;
      const p = u32(iblock, at);
      if (p === 0) {
        bcount += limit ** level;
        continue;
      }
      const r = await ind(p, level);
      put32(iblock, at, r.ptr);
      ret |= r.ret;
      if (r.ret & BLOCK_ABORT) break walk;
    }
  }
  if (ret & BLOCK_CHANGED) await c.out.writeInode(ino, { i_block: iblock });
  return (ret & BLOCK_ERROR) !== 0 ? { error: error ?? "Illegal indirect block found" } : {};
}

interface TreeNode {
  /** 0 for the root in i_block. */
  blk: number;
  data: Uint8Array;
  depth: number;
  dirty: boolean;
}

/**
 * ext2fs_block_iterate3 over an extent tree with BLOCK_FLAG_DEPTH_TRAVERSE: every leaf
 * block in order, each index node's block after its subtree. Blocks the callback answers
 * BLOCK_CHANGED (truncation) are unmapped afterwards: extents shortened or split, leaves
 * left empty freed and dropped from their parent, i_blocks less one block for each, as
 * ext2fs_extent_set_bmap and ext2fs_extent_delete leave them.
 */
async function iterateExtentsReleasing(c: CheckContext, ino: number, raw: RawInode, cb: ReleaseCallback): Promise<{ error?: string }> {
  const v = c.v;
  const root: TreeNode = { blk: 0, data: raw.i_block.slice(), depth: u16(raw.i_block, 6), dirty: false };
  if (u16(root.data, 0) !== 0xf30a) return {};
  const punched: number[] = [];
  /** Returns an error, null when the callback aborted the walk, or undefined. */
  const walk = async (node: TreeNode): Promise<string | null | undefined> => {
    const entries = u16(node.data, 2);
    for (let i = 0; i < entries; i++) {
      const at = extentHeader.size + i * extentLeaf.size;
      if (node.depth === 0) {
        const lblk = u32(node.data, at);
        const rl = u16(node.data, at + 4);
        const len = rl > EXT_INIT_MAX_LEN ? rl - EXT_INIT_MAX_LEN : rl;
        const pblk = u32(node.data, at + 8) + u16(node.data, at + 6) * 2 ** 32;
        for (let j = 0; j < len; j++) {
          const flags = await cb(pblk + j, lblk + j);
          if (flags & BLOCK_CHANGED) punched.push(lblk + j);
          if (flags & BLOCK_ABORT) return null;
        }
        continue;
      }
      const child = u32(node.data, at + 4) + u16(node.data, at + 8) * 2 ** 32;
      if (child < v.firstDataBlock || child >= v.blocksCount) return "Corrupt extent index";
      let data: Uint8Array;
      try {
        data = (await v.readBlock(child)).slice();
      } catch {
        return "Attempt to read block from filesystem resulted in short read";
      }
      if (u16(data, 0) !== 0xf30a) return "Corrupt extent header";
      const e = await walk({ blk: child, data, depth: u16(data, 6), dirty: false });
      if (e !== undefined) return e;
      if (await cb(child, -1) & BLOCK_ABORT) return null;
    }
    return undefined;
  };
  // Blocks unmapped before an abort stay unmapped, as ext2fs_extent_set_bmap left them.
  const error = await walk(root);
  if (typeof error === "string") return { error };
  if (punched.length === 0) return {};
  return punchExtents(c, ino, raw, root, new Set(punched));
}

/** Unmap logical blocks `gone` from the tree rooted in i_block (see iterateExtentsReleasing). */
async function punchExtents(c: CheckContext, ino: number, raw: RawInode, root: TreeNode, gone: Set<number>): Promise<{ error?: string }> {
  const v = c.v;
  const seed = inodeChecksumSeed(v.csumSeed, ino, raw.i_generation);
  let freedNodes = 0;
  /** Returns false when the node is left empty (and is not the root). */
  const punch = async (node: TreeNode): Promise<boolean | string> => {
    const entries = u16(node.data, 2);
    const max = u16(node.data, 4);
    const kept: Uint8Array[] = [];
    for (let i = 0; i < entries; i++) {
      const at = extentHeader.size + i * extentLeaf.size;
      const entry = node.data.slice(at, at + extentLeaf.size);
      if (node.depth === 0) {
        const lblk = u32(entry, 0);
        const rl = u16(entry, 4);
        const uninit = rl > EXT_INIT_MAX_LEN;
        const len = uninit ? rl - EXT_INIT_MAX_LEN : rl;
        const pblk = u32(entry, 8) + u16(entry, 6) * 2 ** 32;
        // The runs of the extent that stay mapped.
        const pieces: Uint8Array[] = [];
        let runStart = -1;
        for (let j = 0; j <= len; j++) {
          const keep = j < len && !gone.has(lblk + j);
          if (keep && runStart < 0) runStart = j;
          if (keep || runStart < 0) continue;
          const piece = new Uint8Array(extentLeaf.size);
          const p = pblk + runStart;
          put32(piece, 0, lblk + runStart);
          put16(piece, 4, j - runStart + (uninit ? EXT_INIT_MAX_LEN : 0));
          put16(piece, 6, Math.floor(p / 2 ** 32));
          put32(piece, 8, p % 2 ** 32);
          pieces.push(piece);
          runStart = -1;
        }
        if (pieces.length === 1 && u16(pieces[0]!, 4) === rl) kept.push(entry);
        else if (len === 0) kept.push(entry);
        else {
          kept.push(...pieces);
          node.dirty = true;
        }
        continue;
      }
      const childBlk = u32(entry, 4) + u16(entry, 8) * 2 ** 32;
      const data = (await v.readBlock(childBlk)).slice();
      const child: TreeNode = { blk: childBlk, data, depth: u16(data, 6), dirty: false };
      const left = await punch(child);
      if (typeof left === "string") return left;
      if (left) {
        kept.push(entry);
        continue;
      }
      // ext2fs_extent_delete: an emptied node is freed and leaves its parent.
      await blockAllocStats(c, childBlk, -1);
      freedNodes++;
      node.dirty = true;
    }
    if (kept.length > max) return "extent node full (ext4ts cannot split it)";
    if (!node.dirty) return kept.length > 0 || node.blk === 0;
    if (kept.length === 0 && node.blk !== 0) return false;
    const end = extentHeader.size + max * extentLeaf.size;
    node.data.fill(0, extentHeader.size, Math.min(end, node.data.length));
    kept.forEach((k, i) => node.data.set(k, extentHeader.size + i * extentLeaf.size));
    put16(node.data, 2, kept.length);
    if (node.blk === 0) return true;
    if (v.f.metadataCsum && end + 4 <= v.blockSize) put32(node.data, end, extentBlockChecksum(node.data, end, seed));
    await c.out.writeBlock(node.blk, node.data);
    return true;
  };
  const r = await punch(root);
  if (typeof r === "string") return { error: r };
  const fields: Partial<RawInode> = {};
  if (root.dirty) fields.i_block = root.data;
  if (freedNodes > 0) {
    const less = iblkSubBlocks(c, raw, freedNodes);
    if (less !== null) Object.assign(fields, less);
  }
  if (Object.keys(fields).length > 0) await c.out.writeInode(ino, fields);
  return {};
}
