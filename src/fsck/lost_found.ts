/**
 * /lost+found and reconnecting (e2fsck pass3.c): finding or creating the directory,
 * linking an unattached inode into it as "#ino", pointing a directory's '..' at a new
 * parent, and the link-count bookkeeping that goes with each (e2fsck_adjust_inode_count).
 *
 * New allocations come from the checker's found maps, as e2fsck allocates from
 * block_found_map and inode_used_map, so nothing in use is handed out twice.
 *
 * Linking writes into linear directory blocks only; an indexed (htree) directory, or one
 * with no room left that cannot grow in place, is reported as a repair ext4ts cannot make.
 */

import { dirBlockChecksum, inodeChecksumSeed } from "../format/checksum.js";
import { EXT4_FT_DIR, EXT4_FT_DIR_CSUM, dirRecLen, hasDirTail, recLenFromDisk, recLenToDisk } from "../format/dirent.js";
import {
  EXT4_ENCRYPT_FL, EXT4_EXTENTS_FL, EXT4_GOOD_OLD_INODE_SIZE, EXT4_INDEX_FL, EXT4_INLINE_DATA_FL, EXT4_ROOT_INO, S_IFDIR, S_IFMT, type RawInode,
} from "../format/inode.js";
import { DIR_HTREE, fileTypeOfMode, type CheckContext } from "./context.js";
import { dirBlocks, listDir, listDirDetailed, readInode } from "./paths.js";
import { PR_3_CREATE_LPF_ERROR, PR_3_EXPAND_LF_DIR, PR_3_LPF_ENCRYPTED, PR_3_LPF_INLINE_DATA, PR_3_LPF_NOTDIR, PR_3_NO_LF_DIR, PR_3_NO_LPF } from "./problem.js";
import { blockAllocStats, inodeAllocStats, markBlockBitmapOnly, markInodeBitmapOnly } from "./repair.js";
import { put16, put32, u16, u32 } from "./bytes.js";

const LPF_NAME = "lost+found";
const DIR_TAIL = 12;

/** Write one directory entry header and name at `off`. */
function putEntry(c: CheckContext, b: Uint8Array, off: number, ino: number, recLen: number, name: Uint8Array, ftype: number): void {
  put32(b, off, ino);
  put16(b, off + 4, recLenToDisk(recLen, c.v.blockSize));
  b[off + 6] = name.length;
  b[off + 7] = c.v.f.filetype ? ftype : 0;
  b.set(name, off + 8);
}

/** Seal a linear directory block's checksum tail (metadata_csum). @e2fsprogs ext2fs_dir_block_csum_set */
async function sealDirBlock(c: CheckContext, dir: number, b: Uint8Array): Promise<void> {
  const v = c.v;
  if (!v.f.metadataCsum) return;
  const got = await readInode(c, dir);
  const seed = inodeChecksumSeed(v.csumSeed, dir, got?.raw.i_generation ?? 0);
  put32(b, v.blockSize - 4, dirBlockChecksum(b, v.blockSize, seed));
}

/** A fresh directory block: '.', '..' and the checksum tail. @e2fsprogs ext2fs_new_dir_block */
function newDirBlock(c: CheckContext, ino: number, parent: number): Uint8Array {
  const bs = c.v.blockSize;
  const b = new Uint8Array(bs);
  const end = c.v.f.metadataCsum ? bs - DIR_TAIL : bs;
  putEntry(c, b, 0, ino, dirRecLen(1), new Uint8Array([0x2e]), EXT4_FT_DIR);
  putEntry(c, b, dirRecLen(1), parent, end - dirRecLen(1), new Uint8Array([0x2e, 0x2e]), EXT4_FT_DIR);
  if (c.v.f.metadataCsum) {
    put16(b, end + 4, DIR_TAIL);
    b[end + 7] = EXT4_FT_DIR_CSUM;
  }
  return b;
}

/** A directory block holding one empty entry (and the checksum tail). @e2fsprogs ext2fs_new_dir_block (dir_ino 0) */
export function emptyDirBlock(c: CheckContext): Uint8Array {
  const bs = c.v.blockSize;
  const block = new Uint8Array(bs);
  const end = c.v.f.metadataCsum ? bs - DIR_TAIL : bs;
  put16(block, 4, recLenToDisk(end, bs));
  if (c.v.f.metadataCsum) {
    put16(block, end + 4, DIR_TAIL);
    block[end + 7] = EXT4_FT_DIR_CSUM;
  }
  return block;
}

/** First cluster the found map leaves free, from `goal` on, wrapping once. @e2fsprogs ext2fs_new_block2 */
export function newBlock(c: CheckContext, goal: number): number {
  const v = c.v;
  const start = goal >= v.firstDataBlock && goal < v.blocksCount ? goal : v.firstDataBlock;
  if (v.clusterRatio === 1) {
    const b = c.blockFound.findFirstClear(start, v.blocksCount);
    if (b >= 0) return b;
    return Math.max(0, c.blockFound.findFirstClear(v.firstDataBlock, start));
  }
  for (const [from, to] of [[start, v.blocksCount], [v.firstDataBlock, start]] as const) {
    for (let b = from - ((from - v.firstDataBlock) % v.clusterRatio); b < to; b += v.clusterRatio) {
      if (b < v.firstDataBlock) continue;
      let used = false;
      for (let k = 0; !used && k < v.clusterRatio; k++) used = c.blockFound.test(b + k);
      if (!used) return b;
    }
  }
  return 0;
}

/**
 * The first run of `num` blocks the found map leaves free, starting at `start` and trying each
 * start before `finish` (wrapping to the first data block at the end of the volume when
 * `finish` lies before `start`); 0 when none. @e2fsprogs ext2fs_get_free_blocks2
 */
export function freeBlocks(c: CheckContext, start: number, finish: number, num: number): number {
  const v = c.v;
  const ratio = v.clusterRatio;
  let b = start === 0 ? v.firstDataBlock : start;
  let end = finish === 0 ? b : finish;
  if (num === 0) num = 1;
  b -= b % ratio;
  end -= end % ratio;
  for (let tries = 0; tries <= v.blocksCount; tries++) {
    if (b + num - 1 >= v.blocksCount) {
      if (end > start) return 0;
      b = v.firstDataBlock;
    }
    let free = true;
    for (let k = 0; free && k < num; k++) free = !c.blockFound.test(b + k);
    if (free) return b;
    b += ratio;
    if (b === end) return 0;
  }
  return 0;
}

/** Is "lost+found" found in the root directory, as libext2fs looks a name up? @e2fsprogs ext2fs_lookup */
async function rootHasLostAndFound(c: CheckContext): Promise<boolean> {
  const got = await readInode(c, EXT4_ROOT_INO);
  if (got === null || (got.raw.i_mode & 0xf000) !== 0x4000) return false; // EXT2_ET_NO_DIRECTORY
  const name = new TextEncoder().encode(LPF_NAME);
  const same = (n: Uint8Array): boolean => n.length === name.length && name.every((x, i) => n[i] === x);
  if (got.raw.i_flags & EXT4_INLINE_DATA_FL) {
    const d = await listDirDetailed(c, EXT4_ROOT_INO, got.raw, got.bytes);
    return !d.corrupt && d.entries.some((e) => same(e.name));
  }
  const bs = c.v.blockSize;
  for (const pblk of await dirBlocks(c, got.raw)) {
    if (pblk === 0) continue;
    let buf: Uint8Array;
    try {
      buf = (await c.v.readBlock(pblk)).slice();
    } catch {
      return false;
    }
    // Entries in order until the name, or a record that breaks the block (EXT2_ET_DIR_CORRUPTED).
    for (let off = 0; off + 8 <= bs; ) {
      const rl = recLenFromDisk(u16(buf, off + 4), bs);
      const nl = buf[off + 6]!;
      if (rl < 8 || rl % 4 !== 0 || off + rl > bs || nl + 8 > rl) return false;
      if (u32(buf, off) !== 0 && same(buf.subarray(off + 8, off + 8 + nl))) return true;
      off += rl;
    }
  }
  return false;
}

/**
 * At the end of pass 1, set a block aside for pass 3 to make the root directory with when the
 * root is not in use, and one for /lost+found when the root does not list it.
 * @e2fsprogs reserve_block_for_root_repair, reserve_block_for_lnf_repair
 */
export async function reserveRepairBlocks(c: CheckContext): Promise<void> {
  c.rootRepairBlock = 0;
  if (!c.inodeUsed.test(EXT4_ROOT_INO)) {
    const b = newBlock(c, 0);
    if (b !== 0) {
      c.blockFound.set(b);
      c.rootRepairBlock = b;
    }
  }
  c.lnfRepairBlock = 0;
  if (!(await rootHasLostAndFound(c))) {
    const b = newBlock(c, 0);
    if (b !== 0) {
      c.blockFound.set(b);
      c.lnfRepairBlock = b;
    }
  }
}

/** The end of pass 3: blocks set aside and not used are free again. @e2fsprogs e2fsck_pass3 */
export function releaseRepairBlocks(c: CheckContext): void {
  for (const b of [c.lnfRepairBlock, c.rootRepairBlock]) if (b !== 0) c.blockFound.clear(b);
  c.lnfRepairBlock = 0;
  c.rootRepairBlock = 0;
}

/** The block set aside in pass 1 (taken once), else the first free one. */
function takeReserved(c: CheckContext, which: "rootRepairBlock" | "lnfRepairBlock"): number {
  const b = c[which];
  if (b === 0) return newBlock(c, 0);
  c[which] = 0;
  return b;
}

/** First inode the used map leaves free, from the parent's group on. @e2fsprogs ext2fs_new_inode */
function newInode(c: CheckContext, parent: number): number {
  const v = c.v;
  const start = Math.max(v.firstIno, v.groupOfIno(parent) * v.inodesPerGroup + 1);
  for (const [from, to] of [[start, v.inodesCount + 1], [v.firstIno, start]] as const) {
    for (let ino = from; ino < to; ino++) if (!c.inodeUsed.test(ino)) return ino;
  }
  return 0;
}

/**
 * Add "name -> ino" to linear directory `dir`: into a free entry that is big enough or the
 * slack after one. Returns false when no block has room (e2fsck's EXT2_ET_DIR_NO_SPACE) or the
 * directory is not one ext4ts can link into. @e2fsprogs ext2fs_link (link_proc)
 */
async function link(c: CheckContext, dir: number, name: Uint8Array, ino: number, ftype: number): Promise<boolean> {
  const v = c.v;
  const got = await readInode(c, dir);
  if (got === null || (got.raw.i_flags & (EXT4_INDEX_FL | EXT4_INLINE_DATA_FL)) !== 0) return false;
  const need = dirRecLen(name.length);
  const end = v.f.metadataCsum ? v.blockSize - DIR_TAIL : v.blockSize;
  for (const pblk of await dirBlocks(c, got.raw)) {
    if (pblk === 0) continue;
    const b = (await v.readBlock(pblk)).slice();
    for (let off = 0; off + 8 <= end; ) {
      const rl = recLenFromDisk(u16(b, off + 4), v.blockSize);
      if (rl < 8 || off + rl > end) break;
      const used = u32(b, off) !== 0;
      const size = used ? dirRecLen(b[off + 6]!) : 0;
      if (!used && rl >= need) {
        putEntry(c, b, off, ino, rl, name, ftype);
      } else if (used && rl >= size + need) {
        put16(b, off + 4, recLenToDisk(size, v.blockSize));
        putEntry(c, b, off + size, ino, rl - size, name, ftype);
      } else {
        off += rl;
        continue;
      }
      await sealDirBlock(c, dir, b);
      await c.out.writeBlock(pblk, b);
      return true;
    }
  }
  return false;
}

/**
 * Remove the entry `name` -> `ino` from the root directory: merged into the entry before
 * it, or, first in its block, its inode zeroed. Returns false when no such entry was
 * found. @e2fsprogs ext2fs_unlink (unlink_proc)
 */
export async function unlinkFromRoot(c: CheckContext, name: Uint8Array, ino: number): Promise<boolean> {
  const v = c.v;
  const bs = v.blockSize;
  const root = await readInode(c, EXT4_ROOT_INO);
  if (root === null) return false;
  for (const blk of await dirBlocks(c, root.raw)) {
    if (blk === 0) continue;
    const b = (await v.readBlock(blk)).slice();
    let prev = -1;
    for (let off = 0; off + 8 <= bs; ) {
      const rl = recLenFromDisk(u16(b, off + 4), bs);
      const nl = b[off + 6]!;
      if (rl < 8 || off + rl > bs) break;
      if (u32(b, off) === ino && nl === name.length && name.every((x, i) => b[off + 8 + i] === x)) {
        if (off > 0) put16(b, prev + 4, recLenToDisk(recLenFromDisk(u16(b, prev + 4), bs) + rl, bs));
        else put32(b, off, 0);
        // A block without a checksum tail is written as it is.
        if (hasDirTail(b, bs)) await sealDirBlock(c, EXT4_ROOT_INO, b);
        await c.out.writeBlock(blk, b);
        return true;
      }
      prev = off;
      off += rl;
    }
  }
  return false;
}

/**
 * Change inode `ino`'s link count by `adj`, in its inode and in the checker's counts (the
 * references found and i_links_count as read). @e2fsprogs e2fsck_adjust_inode_count
 */
export async function adjustInodeCount(c: CheckContext, ino: number, adj: 1 | -1): Promise<void> {
  if (ino === 0) return;
  const got = await readInode(c, ino);
  if (got === null) return;
  const links = got.raw.i_links_count;
  if (adj === 1) {
    c.linkCount.set(ino, c.linkCount.get(ino) + 1);
    if (links === 0xffff) return;
    c.linkInfo.set(ino, c.linkInfo.get(ino) + 1);
  } else {
    c.linkCount.set(ino, Math.max(0, c.linkCount.get(ino) - 1));
    if (links === 0) return;
    c.linkInfo.set(ino, Math.max(0, c.linkInfo.get(ino) - 1));
  }
  await c.out.writeInode(ino, { i_links_count: links + adj });
}

/**
 * /lost+found as pass 1 looks it up before its scan: the inode the root names so, when that
 * inode is a directory; 0 otherwise. Reads only. @e2fsprogs e2fsck_pass1 (e2fsck_get_lost_and_found(ctx, 0))
 */
export async function lookupLostAndFound(c: CheckContext): Promise<number> {
  const name = new TextEncoder().encode(LPF_NAME);
  const hit = (await listDir(c, EXT4_ROOT_INO))?.find((e) => e.name.length === name.length && e.name.every((x, i) => x === name[i]));
  if (hit === undefined) return 0;
  const got = await readInode(c, hit.ino);
  return got !== null && (got.raw.i_mode & S_IFMT) === S_IFDIR ? hit.ino : 0;
}

/**
 * The /lost+found directory, created when missing and `fix` (with e2fsck's question).
 * Returns its inode, or 0. @e2fsprogs e2fsck_get_lost_and_found
 */
export async function getLostAndFound(c: CheckContext, fix: boolean): Promise<number> {
  if (c.lostAndFound !== 0) return c.lostAndFound;
  const v = c.v;
  const name = new TextEncoder().encode(LPF_NAME);
  const entries = await listDir(c, EXT4_ROOT_INO);
  const hit = entries?.find((e) => e.name.length === name.length && e.name.every((x, i) => x === name[i]));
  if (hit !== undefined) {
    // e2fsck reads the inode itself: only a repairing lookup minds inline data or encryption.
    const got = await readInode(c, hit.ino);
    if (fix && got === null) return 0;
    const iflags = got?.raw.i_flags ?? 0;
    let problem;
    if (fix && (iflags & EXT4_INLINE_DATA_FL)) problem = PR_3_LPF_INLINE_DATA;
    else if (fix && (iflags & EXT4_ENCRYPT_FL)) problem = PR_3_LPF_ENCRYPTED;
    else if (c.isDir(hit.ino)) {
      c.lostAndFound = hit.ino;
      return hit.ino;
    } else if (!fix) return 0;
    else problem = PR_3_LPF_NOTDIR;
    if (!c.r.ask(problem, { ino: hit.ino })) return 0;
    // The old one is unlinked and left to the checks that follow: a file goes to pass 4 as
    // unattached; a directory cut from the tree means pass 3 must start over (E2F_FLAG_RESTART).
    if (!(await unlinkFromRoot(c, name, hit.ino))) {
      c.r.fix(PR_3_CREATE_LPF_ERROR, { str: "ext2fs_unlink", err: "No free space in the directory" });
      return 0;
    }
    const idx = c.dirs.find(hit.ino);
    if (idx >= 0) c.dirs.parent.set(idx, 0);
    await adjustInodeCount(c, hit.ino, -1);
    if (got !== null && (got.raw.i_mode & S_IFMT) === S_IFDIR) c.restart = true;
  }
  if (!fix || !c.r.ask(PR_3_NO_LF_DIR)) return 0;
  const blk = takeReserved(c, "lnfRepairBlock");
  const ino = blk === 0 ? 0 : newInode(c, EXT4_ROOT_INO);
  if (blk === 0 || ino === 0) return 0;
  await blockAllocStats(c, blk, 1);
  c.inodeUsed.set(ino);
  c.ftype.set(ino, EXT4_FT_DIR);
  await inodeAllocStats(c, ino, 1, true);
  // @e2fsprogs ext2fs_write_new_inode: a zeroed inode, the large part sized to struct ext2_inode_large.
  const iblock = new Uint8Array(60);
  put32(iblock, 0, blk);
  const fields: Partial<RawInode> = {
    i_mode: 0o40700, i_size_lo: v.blockSize, i_atime: c.now >>> 0, i_ctime: c.now >>> 0, i_mtime: c.now >>> 0,
    i_links_count: 2, i_blocks_lo: v.blockSize / 512, i_block: iblock,
    ...(v.inodeSize > EXT4_GOOD_OLD_INODE_SIZE ? { i_extra_isize: 32 } : {}),
  };
  await c.out.zeroInode(ino);
  await c.out.writeInode(ino, fields);
  const block = newDirBlock(c, ino, EXT4_ROOT_INO);
  await sealDirBlock(c, ino, block);
  await c.out.writeBlock(blk, block);
  if (!(await link(c, EXT4_ROOT_INO, name, ino, EXT4_FT_DIR))) return 0;
  c.dirs.insert(ino, 0, 0, v.blockSize);
  const idx = c.dirs.find(ino);
  c.dirs.parent.set(idx, EXT4_ROOT_INO);
  c.dirs.dotdot.set(idx, EXT4_ROOT_INO);
  await adjustInodeCount(c, EXT4_ROOT_INO, 1);
  c.linkCount.set(ino, 2);
  c.linkInfo.set(ino, 2);
  c.lostAndFound = ino;
  const raw = (await readInode(c, ino))?.raw;
  if (raw !== undefined) c.quota.add(ino, raw, 1);
  return ino;
}

/**
 * Link inode `ino` into /lost+found as "#ino" and count the new link. Returns false when it
 * could not be done. @e2fsprogs e2fsck_reconnect_file
 */
export async function reconnectFile(c: CheckContext, ino: number): Promise<boolean> {
  if (!c.badLostAndFound && c.lostAndFound === 0 && (await getLostAndFound(c, true)) === 0) c.badLostAndFound = true;
  if (c.badLostAndFound) {
    c.r.fix(PR_3_NO_LPF, { ino });
    return false;
  }
  const got = await readInode(c, ino);
  const ftype = got === null ? 0 : fileTypeOfMode(got.raw.i_mode);
  const name = new TextEncoder().encode(`#${ino}`);
  if (!(await link(c, c.lostAndFound, name, ino, ftype))) {
    // /lost+found is full: it grows by a block (e2fsck_expand_directory), where ext4ts can map one.
    const lf = c.lostAndFound;
    const got2 = await readInode(c, lf);
    const next = got2 === null ? 0 : Math.ceil((got2.raw.i_size_lo + got2.raw.i_size_high * 2 ** 32) / c.v.blockSize);
    if (got2 === null || !(await canAllocateDirBlock(c, lf, next))) {
      c.r.fix(PR_3_EXPAND_LF_DIR, { ino });
      return false;
    }
    if (!c.r.ask(PR_3_EXPAND_LF_DIR, { ino })) return false;
    if ((await allocateDirBlock(c, lf, next, false, true)) === 0 || !(await link(c, lf, name, ino, ftype))) return false;
    c.quota.addSpace(got2.raw, c.v.blockSize * c.v.clusterRatio);
  }
  await adjustInodeCount(c, ino, 1);
  return true;
}

/** Point directory `ino`'s '..' at `parent`, moving the link it counted. @e2fsprogs fix_dotdot */
export async function fixDotdot(c: CheckContext, ino: number, parent: number): Promise<boolean> {
  const v = c.v;
  const got = await readInode(c, ino);
  if (got === null || (got.raw.i_flags & EXT4_INLINE_DATA_FL) !== 0) return false;
  const first = (await dirBlocks(c, got.raw, 1))[0] ?? 0;
  if (first === 0) return false;
  const b = (await v.readBlock(first)).slice();
  const rl0 = recLenFromDisk(u16(b, 4), v.blockSize);
  if (rl0 < 12 || rl0 + 12 > v.blockSize || b[rl0 + 6] !== 2 || b[rl0 + 8] !== 0x2e || b[rl0 + 9] !== 0x2e) return false;
  const idx = c.dirs.find(ino);
  // An htree root's checksum covers its '..' (dx_root): resealing it is not implemented.
  const dx = idx >= 0 && (c.dirs.flags.get(idx) & DIR_HTREE) !== 0;
  if (dx && v.f.metadataCsum) return false;
  await adjustInodeCount(c, u32(b, rl0), -1);
  await adjustInodeCount(c, parent, 1);
  put32(b, rl0, parent);
  b[rl0 + 7] = v.f.filetype ? EXT4_FT_DIR : 0;
  if (!dx) await sealDirBlock(c, ino, b);
  await c.out.writeBlock(first, b);
  if (idx >= 0) {
    c.dirs.dotdot.set(idx, parent);
    // e2fsck records /lost+found as the parent whatever `parent` was (its messages show it).
    c.dirs.parent.set(idx, c.lostAndFound);
  }
  return true;
}

/**
 * Make a new root directory in inode 2 (pass 3, when pass 1 found none or cleared it):
 * a fresh block with '.' and '..', in the bitmaps but not yet the free counts, which pass 5
 * puts right, as e2fsck's check_root leaves them. Returns false when no block is free.
 * @e2fsprogs check_root
 */
export async function createRoot(c: CheckContext): Promise<boolean> {
  const v = c.v;
  const blk = takeReserved(c, "rootRepairBlock");
  if (blk === 0) return false;
  c.blockFound.set(blk);
  await markBlockBitmapOnly(c, blk);
  const iblock = new Uint8Array(60);
  put32(iblock, 0, blk);
  await c.out.zeroInode(EXT4_ROOT_INO);
  await c.out.writeInode(EXT4_ROOT_INO, {
    i_mode: 0o40755, i_size_lo: v.blockSize, i_atime: c.now >>> 0, i_ctime: c.now >>> 0, i_mtime: c.now >>> 0,
    i_links_count: 2, i_blocks_lo: (v.blockSize * v.clusterRatio) / 512, i_block: iblock,
    ...(v.inodeSize > EXT4_GOOD_OLD_INODE_SIZE ? { i_extra_isize: 32 } : {}),
  });
  const block = newDirBlock(c, EXT4_ROOT_INO, EXT4_ROOT_INO);
  await sealDirBlock(c, EXT4_ROOT_INO, block);
  await c.out.writeBlock(blk, block);
  if (c.dirs.find(EXT4_ROOT_INO) < 0) c.dirs.insert(EXT4_ROOT_INO, 0, 0, v.blockSize);
  const idx = c.dirs.find(EXT4_ROOT_INO);
  c.dirs.parent.set(idx, EXT4_ROOT_INO);
  c.dirs.dotdot.set(idx, EXT4_ROOT_INO);
  c.dirs.flags.set(idx, 0);
  c.linkCount.set(EXT4_ROOT_INO, 2);
  c.linkInfo.set(EXT4_ROOT_INO, 2);
  c.inodeUsed.set(EXT4_ROOT_INO);
  c.ftype.set(EXT4_ROOT_INO, EXT4_FT_DIR);
  await markInodeBitmapOnly(c, EXT4_ROOT_INO);
  const raw = (await readInode(c, EXT4_ROOT_INO))?.raw;
  if (raw !== undefined) c.quota.add(EXT4_ROOT_INO, raw, 1);
  return true;
}

/**
 * Give directory `ino` a block at logical `cnt`, where it has a hole: a fresh directory
 * block ('.' and '..' for block 0, else one empty entry), mapped by extending the extent
 * that ends there or adding one to an in-inode extent leaf, or in a direct block-map slot.
 * Returns the new block, or 0 when ext4ts cannot map it (a deeper extent tree, an indirect
 * slot). The block is marked in the bitmap, not the counts, as e2fsck leaves them for pass 5.
 * @e2fsprogs allocate_dir_block
 */
export async function allocateDirBlock(c: CheckContext, ino: number, cnt: number, dryRun = false, stats = false): Promise<number> {
  const got = await readInode(c, ino);
  if (got === null) return 0;
  const raw = got.raw;
  const ib = raw.i_block.slice();
  let plan: (blk: number) => void;
  let goal = 0;
  if ((raw.i_flags & EXT4_EXTENTS_FL) !== 0) {
    if (u16(ib, 0) !== 0xf30a || u16(ib, 6) !== 0) return 0;
    const entries = u16(ib, 2);
    const max = u16(ib, 4);
    let before = -1;
    for (let i = 0; i < entries; i++) if (u32(ib, 12 + i * 12) < cnt) before = i;
    const at = 12 + before * 12;
    const prevLen = before >= 0 ? u16(ib, at + 4) : 0;
    const prevEnd = before >= 0 ? u32(ib, at) + prevLen : -1;
    const prevPblk = before >= 0 ? u32(ib, at + 8) + u16(ib, at + 6) * 2 ** 32 : 0;
    if (before >= 0) goal = prevPblk + prevLen;
    plan = (blk) => {
      if (before >= 0 && prevEnd === cnt && prevPblk + prevLen === blk && prevLen < 32768) {
        put16(ib, at + 4, prevLen + 1);
        return;
      }
      const slot = 12 + (before + 1) * 12;
      ib.copyWithin(slot + 12, slot, 12 + entries * 12);
      put32(ib, slot, cnt);
      put16(ib, slot + 4, 1);
      put16(ib, slot + 6, Math.floor(blk / 2 ** 32));
      put32(ib, slot + 8, blk % 2 ** 32);
      put16(ib, 2, entries + 1);
    };
    const extendable = before >= 0 && prevEnd === cnt && prevLen < 32768;
    if (!extendable && entries >= max) return 0;
    const blk = newBlock(c, goal);
    if (blk === 0) return 0;
    if (!(extendable && prevPblk + prevLen === blk) && entries >= max) return 0;
    return dryRun ? blk : finishDirBlock(c, ino, cnt, raw, ib, blk, plan, stats);
  }
  const perBlock = c.v.blockSize / 4;
  if ((raw.i_flags & EXT4_INLINE_DATA_FL) !== 0 || cnt >= 12 + perBlock) return 0;
  if (cnt < 12) {
    for (let i = cnt - 1; i >= 0 && goal === 0; i--) goal = u32(ib, i * 4) === 0 ? 0 : u32(ib, i * 4) + 1;
    const blk = newBlock(c, goal);
    if (blk === 0) return 0;
    plan = (b) => put32(ib, cnt * 4, b);
    return dryRun ? blk : finishDirBlock(c, ino, cnt, raw, ib, blk, plan, stats);
  }
  // Under the single indirect block, made first when there is none yet.
  let ind = u32(ib, 12 * 4);
  if (ind !== 0 && !c.v.blockValid(ind)) return 0;
  const indBody = ind !== 0 ? (await c.v.readBlock(ind)).slice() : new Uint8Array(c.v.blockSize);
  const slot = (cnt - 12) * 4;
  if (u32(indBody, slot) !== 0) return 0;
  for (let i = slot - 4; i >= 0 && goal === 0; i -= 4) goal = u32(indBody, i) === 0 ? 0 : u32(indBody, i) + 1;
  if (goal === 0) goal = (ind !== 0 ? ind : u32(ib, 11 * 4)) + 1;
  if (dryRun) return newBlock(c, goal);
  if (ind === 0) {
    ind = newBlock(c, goal);
    if (ind === 0) return 0;
    await blockAllocStats(c, ind, 1);
    put32(ib, 12 * 4, ind);
    const sectors = raw.i_blocks_lo + raw.l_i_blocks_high * 2 ** 32 + c.v.blockSize / 512;
    raw.i_blocks_lo = sectors % 2 ** 32;
    raw.l_i_blocks_high = Math.floor(sectors / 2 ** 32);
  }
  const blk = newBlock(c, ind + 1);
  if (blk === 0) return 0;
  const indBlk = ind;
  plan = (b) => put32(indBody, slot, b);
  const made = await finishDirBlock(c, ino, cnt, raw, ib, blk, plan, stats);
  await c.out.writeBlock(indBlk, indBody);
  return made;
}

/** Whether allocateDirBlock can fill this hole (asked before the question, so a yes is kept). */
export async function canAllocateDirBlock(c: CheckContext, ino: number, cnt: number): Promise<boolean> {
  return (await allocateDirBlock(c, ino, cnt, true)) !== 0;
}

/** `stats`: count the block in the free counts too (ext2fs_block_alloc_stats2), as expanding /lost+found does. */
async function finishDirBlock(
  c: CheckContext, ino: number, cnt: number, raw: RawInode, ib: Uint8Array, blk: number, plan: (blk: number) => void, stats: boolean,
): Promise<number> {
  const v = c.v;
  plan(blk);
  if (stats) await blockAllocStats(c, blk, 1);
  else {
    c.blockFound.set(blk);
    await markBlockBitmapOnly(c, blk);
  }
  const size = Math.max(raw.i_size_lo + raw.i_size_high * 2 ** 32, (cnt + 1) * v.blockSize);
  const sectors = raw.i_blocks_lo + raw.l_i_blocks_high * 2 ** 32 + (v.blockSize * v.clusterRatio) / 512;
  await c.out.writeInode(ino, {
    i_block: ib, i_size_lo: size % 2 ** 32, i_size_high: Math.floor(size / 2 ** 32),
    i_blocks_lo: sectors % 2 ** 32, l_i_blocks_high: Math.floor(sectors / 2 ** 32),
  });
  const block = cnt === 0 ? newDirBlock(c, ino, EXT4_ROOT_INO) : emptyDirBlock(c);
  await sealDirBlock(c, ino, block);
  await c.out.writeBlock(blk, block);
  return blk;
}
