/**
 * Adding and removing directory entries, linear and hashed (@kernel ext4_add_entry,
 * add_dirent_to_buf, make_indexed_dir, ext4_dx_add_entry, do_split, ext4_delete_entry;
 * fs/ext4/namei.c).
 *
 * Blocks come from a `DirBlocks` source (map a logical block for writing, append a new
 * one), so this file knows directory formats and nothing of extents or allocation.
 * Every changed block leaves with its checksum (leaf tail or dx tail) recomputed.
 *
 * Limits as in the kernel: two index levels (three with largedir); a full index is
 * ENOSPC ("Directory index full!"). Inline directories become ordinary ones on their first change.
 */

import { FsError } from "../errors.js";
import { dirBlockChecksum, dxBlockChecksum } from "../format/checksum.js";
import {
  EXT4_FT_DIR,
  EXT4_FT_DIR_CSUM,
  dirEntry,
  dirEntryTail,
  dirRecLen,
  iterateDirEntries,
  recLenFromDisk,
  recLenToDisk,
} from "../format/dirent.js";
import { dirhash, isDxHashVersion } from "../format/dirhash.js";
import { DX_ROOT_ENTRIES_OFFSET, dxCountLimit, dxEntry, dxNodeHeader, dxNodeLimit, dxRoot, dxRootLimit, dxTail, dxTailOffset } from "../format/htree.js";
import { EXT4_INDEX_FL } from "../format/inode.js";
import type { Handle } from "./handle.js";
import { inlineDirContents } from "./dir.js";
import { destroyInline, inlineDirIsEmpty, isInline } from "./inline_write.js";
import type { InodeInfo } from "./inode_write.js";
import type { Ext4Fs } from "./super.js";
import { dcacheSet } from "./dcache.js";

/** Where directory blocks come from, for writing. */
export interface DirBlocks {
  /** Number of blocks (i_size / block size). */
  count(dir: InodeInfo): number;
  /** The buffer of logical block `lblk`, held by the handle. */
  get(h: Handle, dir: InodeInfo, lblk: number): Promise<{ pblk: number; data: Uint8Array }>;
  /** A new zeroed block at the end (i_size grows by one block), held by the handle. */
  append(h: Handle, dir: InodeInfo): Promise<{ lblk: number; pblk: number; data: Uint8Array }>;
}

interface Ctx {
  fs: Ext4Fs;
  h: Handle;
  dir: InodeInfo;
  blocks: DirBlocks;
}

const csumSize = (fs: Ext4Fs): number => (fs.features.metadataCsum ? dirEntryTail.size : 0);

// ---------------------------------------------------------------------------------------
// Leaf blocks

/** Turn `data` into an empty leaf: one unused entry spanning it, plus the tail. @kernel ext4_init_dirblock */
function initLeaf(fs: Ext4Fs, data: Uint8Array): void {
  data.fill(0);
  const end = fs.blockSize - csumSize(fs);
  dirEntry.encode({ inode: 0, rec_len: recLenToDisk(end, fs.blockSize), name_len: 0, file_type: 0 }, data, 0);
  if (fs.features.metadataCsum) initTail(fs, data);
}

function initTail(fs: Ext4Fs, data: Uint8Array): void {
  const at = fs.blockSize - dirEntryTail.size;
  data.fill(0, at, fs.blockSize);
  dirEntryTail.encode({ det_reserved_zero1: 0, det_rec_len: dirEntryTail.size, det_reserved_zero2: 0, det_reserved_ft: EXT4_FT_DIR_CSUM, det_checksum: 0 }, data, at);
}

/** Recompute a leaf's tail checksum and dirty it. @kernel ext4_handle_dirty_dirblock */
function dirtyLeaf(c: Ctx, pblk: number, data: Uint8Array): void {
  if (c.fs.features.metadataCsum) {
    const at = c.fs.blockSize - dirEntryTail.size;
    dirEntryTail.encode({ det_checksum: dirBlockChecksum(data, c.fs.blockSize, c.dir.csumSeed) }, data, at);
  }
  c.h.dirtyMetadata(pblk);
}

function writeEntry(fs: Ext4Fs, data: Uint8Array, off: number, recLen: number, ino: number, name: Uint8Array, fileType: number): void {
  dirEntry.encode({ inode: ino, rec_len: recLenToDisk(recLen, fs.blockSize), name_len: name.length, file_type: fs.features.filetype ? fileType : 0 }, data, off);
  data.set(name, off + dirEntry.size);
}

const sameName = (data: Uint8Array, off: number, nameLen: number, name: Uint8Array): boolean =>
  nameLen === name.length && name.every((b, i) => data[off + dirEntry.size + i] === b);

/**
 * Put the entry into this leaf if it has room: reuse an unused entry or split a used
 * one's slack. Returns false when the block is full; EEXIST if the name is there.
 * @kernel ext4_find_dest_de + ext4_insert_dentry
 */
function addToLeaf(fs: Ext4Fs, data: Uint8Array, name: Uint8Array, ino: number, fileType: number): boolean {
  const need = dirRecLen(name.length);
  const end = fs.blockSize - csumSize(fs);
  for (let off = 0; off < end; ) {
    const e = dirEntry.decode(data, off);
    const recLen = recLenFromDisk(e.rec_len, fs.blockSize);
    if (recLen < dirRecLen(1) || off + recLen > end) throw new FsError("EFSCORRUPTED", `Bad directory entry at offset ${off} while adding`);
    if (e.inode !== 0 && sameName(data, off, e.name_len, name)) throw new FsError("EEXIST", "File exists");
    const used = e.inode !== 0 ? dirRecLen(e.name_len) : 0;
    if (recLen - used >= need) {
      if (e.inode !== 0) {
        dirEntry.encode({ rec_len: recLenToDisk(used, fs.blockSize) }, data, off);
        writeEntry(fs, data, off + used, recLen - used, ino, name, fileType);
      } else {
        writeEntry(fs, data, off, recLen, ino, name, fileType);
      }
      return true;
    }
    off += recLen;
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Public entry points

/**
 * Add `name` -> `ino` to directory `dir` (the caller has checked it is absent and the
 * name valid; a duplicate found on the way is still EEXIST). Grows the directory, and
 * turns a full one-block directory into an htree as the kernel does. The caller writes
 * the directory inode afterwards (i_size, i_flags may change).
 * @kernel ext4_add_entry
 */
export async function addDirEntry(fs: Ext4Fs, h: Handle, blocks: DirBlocks, dir: InodeInfo, name: Uint8Array, ino: number, fileType: number): Promise<void> {
  if (isInline(dir)) await convertInlineDir(fs, h, blocks, dir);
  dcacheSet(fs, dir.ino, name, null); // whatever happens below, a stale positive/negative entry must not survive
  await addDirEntryInner(fs, h, blocks, dir, name, ino, fileType);
  dcacheSet(fs, dir.ino, name, ino);
}

async function addDirEntryInner(fs: Ext4Fs, h: Handle, blocks: DirBlocks, dir: InodeInfo, name: Uint8Array, ino: number, fileType: number): Promise<void> {
  const c: Ctx = { fs, h, dir, blocks };
  if (name.length === 0 || name.length > 255) throw new FsError(name.length === 0 ? "ENOENT" : "ENAMETOOLONG", "Bad name length");
  if (isIndexedForWrite(fs, dir)) {
    await dxAddEntry(c, name, ino, fileType);
    return;
  }
  const n = blocks.count(dir);
  for (let lblk = 0; lblk < n; lblk++) {
    const { pblk, data } = await blocks.get(h, dir, lblk);
    if (addToLeaf(fs, data, name, ino, fileType)) {
      dirtyLeaf(c, pblk, data);
      return;
    }
    if (n === 1 && fs.features.dirIndex) {
      await makeIndexedDir(c, pblk, data, name, ino, fileType);
      return;
    }
  }
  const fresh = await blocks.append(h, dir);
  initLeaf(fs, fresh.data);
  if (!addToLeaf(fs, fresh.data, name, ino, fileType)) throw new FsError("EFSCORRUPTED", "Entry does not fit an empty directory block");
  dirtyLeaf(c, fresh.pblk, fresh.data);
}

/**
 * Remove `name` from `dir`; returns the inode it named. ENOENT if absent. The freed
 * space joins the previous entry, or the entry is marked unused when it is first.
 * @kernel ext4_delete_entry
 */
export async function removeDirEntry(fs: Ext4Fs, h: Handle, blocks: DirBlocks, dir: InodeInfo, name: Uint8Array): Promise<number> {
  if (isInline(dir)) await convertInlineDir(fs, h, blocks, dir);
  const c: Ctx = { fs, h, dir, blocks };
  // Indexed: only the leaves the name's hash leads to (ext4_find_entry -> ext4_dx_find_entry).
  const candidates = isIndexedForWrite(fs, dir) ? await dxCandidateLeaves(c, name) : null;
  const n = blocks.count(dir);
  for (const lblk of candidates ?? Array.from({ length: n }, (_, i) => i)) {
    const { pblk, data } = await blocks.get(h, dir, lblk);
    if (candidates === null && isIndexedForWrite(fs, dir) && isIndexBlock(fs, data, lblk)) continue;
    const ino = deleteFromLeaf(fs, data, name);
    if (ino !== null) {
      dirtyLeaf(c, pblk, data);
      dcacheSet(fs, dir.ino, name, null);
      return ino;
    }
  }
  throw new FsError("ENOENT", "No such file or directory");
}

/**
 * Remove `name` from one leaf: the freed space joins the previous entry, or the entry is
 * marked unused when it is first in the block. Returns its inode, or null if absent.
 */
function deleteFromLeaf(fs: Ext4Fs, data: Uint8Array, name: Uint8Array): number | null {
  const end = fs.blockSize - csumSize(fs);
  let prev = -1;
  for (let off = 0; off < end; ) {
    const e = dirEntry.decode(data, off);
    const recLen = recLenFromDisk(e.rec_len, fs.blockSize);
    if (recLen < dirRecLen(1) || off + recLen > end) throw new FsError("EFSCORRUPTED", `Bad directory entry at offset ${off} while removing`);
    if (e.inode !== 0 && sameName(data, off, e.name_len, name)) {
      if (prev >= 0) {
        const p = dirEntry.decode(data, prev);
        dirEntry.encode({ rec_len: recLenToDisk(recLenFromDisk(p.rec_len, fs.blockSize) + recLen, fs.blockSize) }, data, prev);
      } else {
        dirEntry.encode({ inode: 0 }, data, off);
      }
      return e.inode;
    }
    prev = off;
    off += recLen;
  }
  return null;
}

/**
 * The leaves that may hold `name` in an indexed directory: the one its hash probes to,
 * then following ones while they continue the same hash (collisions).
 * @kernel dx_probe + ext4_htree_next_block
 */
async function dxCandidateLeaves(c: Ctx, name: Uint8Array): Promise<number[]> {
  const { fs, h, dir, blocks } = c;
  const root = await blocks.get(h, dir, 0);
  const info = dxRoot.decode(root.data, 0);
  const { hash } = hashOf(fs, info.hash_version, name);
  const levels: DxLevel[] = [{ pblk: root.pblk, data: root.data, off: DX_ROOT_ENTRIES_OFFSET + info.info_length, at: 0 }];
  levels[0]!.at = probeAt(root.data, levels[0]!.off, hash);
  for (let l = 0; l < info.indirect_levels; l++) {
    const p = levels[l]!;
    const node = await blocks.get(h, dir, entryBlock(p.data, p.off, p.at));
    levels.push({ pblk: node.pblk, data: node.data, off: dxNodeHeader.size, at: probeAt(node.data, dxNodeHeader.size, hash) });
  }
  const out: number[] = [];
  for (;;) {
    const bottom = levels[levels.length - 1]!;
    out.push(entryBlock(bottom.data, bottom.off, bottom.at));
    // Next leaf only if it starts with our hash (continuation): walk up to find a next entry.
    let l = levels.length - 1;
    while (l >= 0 && levels[l]!.at + 1 >= cl(levels[l]!.data, levels[l]!.off).count) l--;
    if (l < 0) return out;
    const nextHash = entryHash(levels[l]!.data, levels[l]!.off, levels[l]!.at + 1);
    if ((nextHash & ~1) >>> 0 !== hash) return out;
    levels[l]!.at++;
    for (let k = l + 1; k < levels.length; k++) {
      const p = levels[k - 1]!;
      const node = await blocks.get(h, dir, entryBlock(p.data, p.off, p.at));
      levels[k] = { pblk: node.pblk, data: node.data, off: dxNodeHeader.size, at: 0 };
    }
  }
}

/** Point an existing entry at another inode (rename over a target, ".." of a moved dir). @kernel ext4_setent */
export async function setDirEntry(fs: Ext4Fs, h: Handle, blocks: DirBlocks, dir: InodeInfo, name: Uint8Array, ino: number, fileType: number): Promise<number> {
  if (isInline(dir)) await convertInlineDir(fs, h, blocks, dir);
  const c: Ctx = { fs, h, dir, blocks };
  const isDotDot = name.length === 2 && name[0] === 0x2e && name[1] === 0x2e;
  const indexed = isIndexedForWrite(fs, dir);
  if (isDotDot) {
    // ".." is the second entry of block 0, in a linear block and in a dx root alike.
    const { pblk, data } = await blocks.get(h, dir, 0);
    const dotLen = recLenFromDisk(dirEntry.decode(data, 0).rec_len, fs.blockSize);
    const dd = dirEntry.decode(data, dotLen);
    if (dd.name_len !== 2 || !sameName(data, dotLen, 2, name)) throw new FsError("EFSCORRUPTED", "Directory has no '..' entry", { ino: dir.ino });
    dirEntry.encode({ inode: ino, file_type: fs.features.filetype ? fileType : 0 }, data, dotLen);
    if (indexed) dirtyDx(c, pblk, data, DX_ROOT_ENTRIES_OFFSET + (data[0x1d] ?? 8));
    else dirtyLeaf(c, pblk, data);
    dcacheSet(fs, dir.ino, name, ino);
    return dd.inode;
  }
  const end = fs.blockSize - csumSize(fs);
  const candidates = indexed ? await dxCandidateLeaves(c, name) : Array.from({ length: blocks.count(dir) }, (_, i) => i);
  for (const lblk of candidates) {
    const { pblk, data } = await blocks.get(h, dir, lblk);
    for (let off = 0; off < end; ) {
      const e = dirEntry.decode(data, off);
      const recLen = recLenFromDisk(e.rec_len, fs.blockSize);
      if (recLen < dirRecLen(1) || off + recLen > end) throw new FsError("EFSCORRUPTED", `Bad directory entry at offset ${off}`);
      if (e.inode !== 0 && sameName(data, off, e.name_len, name)) {
        dirEntry.encode({ inode: ino, file_type: fs.features.filetype ? fileType : 0 }, data, off);
        dirtyLeaf(c, pblk, data);
        dcacheSet(fs, dir.ino, name, ino);
        return e.inode;
      }
      off += recLen;
    }
  }
  throw new FsError("ENOENT", "No such file or directory");
}

/** Write "." and ".." into a new directory's first block. @kernel ext4_init_new_dir */
export function initDirBlock(fs: Ext4Fs, data: Uint8Array, self: number, parent: number): void {
  initLeaf(fs, data);
  const end = fs.blockSize - csumSize(fs);
  writeEntry(fs, data, 0, dirRecLen(1), self, new Uint8Array([0x2e]), EXT4_FT_DIR);
  writeEntry(fs, data, dirRecLen(1), end - dirRecLen(1), parent, new Uint8Array([0x2e, 0x2e]), EXT4_FT_DIR);
}

/**
 * Before the first entry change to an inline directory: move its entries into an ordinary
 * one-block directory (ext4ts does not write inline data; see inline_write.ts). The caller
 * writes the inode back, as after any entry change. @kernel ext4_convert_inline_data_nolock
 */
async function convertInlineDir(fs: Ext4Fs, h: Handle, blocks: DirBlocks, dir: InodeInfo): Promise<void> {
  const { parent, entries } = inlineDirContents(fs, dir);
  destroyInline(fs, dir);
  const { pblk, data } = await blocks.append(h, dir);
  initDirBlock(fs, data, dir.ino, parent);
  sealDirBlock(fs, data, dir.csumSeed);
  h.dirtyMetadata(pblk);
  for (const e of entries) await addDirEntry(fs, h, blocks, dir, e.name, e.ino, e.fileType);
}

/** Seal a leaf block built with initDirBlock: its tail checksum for this directory. */
export function sealDirBlock(fs: Ext4Fs, data: Uint8Array, dirCsumSeed: number): void {
  if (!fs.features.metadataCsum) return;
  dirEntryTail.encode({ det_checksum: dirBlockChecksum(data, fs.blockSize, dirCsumSeed) }, data, fs.blockSize - dirEntryTail.size);
}

/** Is the directory empty ("." and ".." only)? @kernel ext4_empty_dir */
export async function isEmptyDir(fs: Ext4Fs, h: Handle, blocks: DirBlocks, dir: InodeInfo): Promise<boolean> {
  if (isInline(dir)) return inlineDirIsEmpty(fs, dir);
  for (let lblk = 0; lblk < blocks.count(dir); lblk++) {
    const { data } = await blocks.get(h, dir, lblk);
    if (isIndexedForWrite(fs, dir) && isIndexBlock(fs, data, lblk)) continue;
    for (const e of iterateDirEntries(data, 0, fs.blockSize - csumSize(fs), fs.blockSize, fs.inodesCount, { ino: dir.ino })) {
      const dot = e.name.length === 1 && e.name[0] === 0x2e;
      const dotdot = e.name.length === 2 && e.name[0] === 0x2e && e.name[1] === 0x2e;
      if (!dot && !dotdot) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// htree

function isIndexedForWrite(fs: Ext4Fs, dir: InodeInfo): boolean {
  return fs.features.dirIndex && (dir.raw.i_flags & EXT4_INDEX_FL) !== 0;
}

function isIndexBlock(fs: Ext4Fs, data: Uint8Array, lblk: number): boolean {
  if (lblk === 0) return true;
  const hd = dxNodeHeader.decode(data, 0);
  return hd.fake_inode === 0 && recLenFromDisk(hd.fake_rec_len, fs.blockSize) === fs.blockSize && hd.fake_name_len === 0;
}

function hashOf(fs: Ext4Fs, version: number, name: Uint8Array): { hash: number; minor: number } {
  const v = version <= 2 ? version + fs.hashUnsignedDelta : version;
  if (!isDxHashVersion(v)) throw new FsError("EFSCORRUPTED", `Unknown directory hash version ${version}`);
  const r = dirhash(name, v, fs.hashSeed);
  return { hash: r.hash, minor: r.minorHash };
}

interface DxLevel {
  pblk: number;
  data: Uint8Array;
  /** Offset of the count/limit pair. */
  off: number;
  at: number;
}

const cl = (data: Uint8Array, off: number): { limit: number; count: number } => {
  const x = dxCountLimit.decode(data, off);
  return { limit: x.limit, count: x.count };
};
const entryHash = (data: Uint8Array, off: number, i: number): number => (i === 0 ? 0 : dxEntry.decode(data, off + i * 8).hash);
const entryBlock = (data: Uint8Array, off: number, i: number): number => dxEntry.decode(data, off + i * 8).block;

/** Recompute an index block's dx_tail checksum (entries at `off`) and dirty it. @kernel ext4_handle_dirty_dx_node */
function dirtyDx(c: Ctx, pblk: number, data: Uint8Array, off: number): void {
  if (c.fs.features.metadataCsum) {
    const { limit, count } = cl(data, off);
    const at = dxTailOffset({ entriesOffset: off, limit });
    dxTail.encode({ dt_reserved: 0, dt_checksum: dxBlockChecksum(data, off, count, at, c.dir.csumSeed) }, data, at);
  }
  c.h.dirtyMetadata(pblk);
}

/** Insert (hash, block) after position `at` of the node at `off`. @kernel dx_insert_block */
function dxInsert(data: Uint8Array, off: number, at: number, hash: number, block: number): void {
  const { count } = cl(data, off);
  const from = off + (at + 1) * 8;
  data.copyWithin(from + 8, from, off + count * 8);
  dxEntry.encode({ hash, block }, data, from);
  dxCountLimit.encode({ count: count + 1 }, data, off);
}

function probeAt(data: Uint8Array, off: number, hash: number): number {
  const { count } = cl(data, off);
  let lo = 1;
  let hi = count - 1;
  while (lo <= hi) {
    const m = (lo + hi) >> 1;
    if (entryHash(data, off, m) > hash) hi = m - 1;
    else lo = m + 1;
  }
  return lo - 1;
}

/** @kernel ext4_dx_add_entry */
async function dxAddEntry(c: Ctx, name: Uint8Array, ino: number, fileType: number): Promise<void> {
  const { fs, h, dir, blocks } = c;
  // Each index restructuring restarts the insertion from the root, as the kernel does.
  for (let attempt = 0; attempt < 8; attempt++) {
    const root = await blocks.get(h, dir, 0);
    const info = dxRoot.decode(root.data, 0);
    const rootOff = DX_ROOT_ENTRIES_OFFSET + info.info_length;
    const { hash } = hashOf(fs, info.hash_version, name);
    const levels: DxLevel[] = [{ pblk: root.pblk, data: root.data, off: rootOff, at: probeAt(root.data, rootOff, hash) }];
    for (let l = 0; l < info.indirect_levels; l++) {
      const p = levels[l]!;
      const node = await blocks.get(h, dir, entryBlock(p.data, p.off, p.at));
      levels.push({ pblk: node.pblk, data: node.data, off: dxNodeHeader.size, at: probeAt(node.data, dxNodeHeader.size, hash) });
    }
    const bottom = levels[levels.length - 1]!;
    const leaf = await blocks.get(h, dir, entryBlock(bottom.data, bottom.off, bottom.at));
    if (addToLeaf(fs, leaf.data, name, ino, fileType)) {
      dirtyLeaf(c, leaf.pblk, leaf.data);
      return;
    }
    if (await growIndex(c, levels)) continue;
    const target = await splitLeaf(c, bottom, leaf.pblk, leaf.data, info.hash_version, hash);
    if (!addToLeaf(fs, target.data, name, ino, fileType)) throw new FsError("EFSCORRUPTED", "Entry does not fit a freshly split directory block");
    dirtyLeaf(c, target.pblk, target.data);
    return;
  }
  throw new FsError("EFSCORRUPTED", "Directory index did not settle after restructuring", { ino: dir.ino });
}

const isFull = (l: DxLevel, data = l.data): boolean => cl(data, l.off).count >= cl(data, l.off).limit;

function newIndexNode(fs: Ext4Fs, data: Uint8Array, entries: Uint8Array, count: number): void {
  data.fill(0);
  dxNodeHeader.encode({ fake_inode: 0, fake_rec_len: recLenToDisk(fs.blockSize, fs.blockSize), fake_name_len: 0, fake_file_type: 0 }, data, 0);
  data.set(entries, dxNodeHeader.size);
  dxCountLimit.encode({ limit: dxNodeLimit(fs.blockSize, fs.features.metadataCsum), count }, data, dxNodeHeader.size);
}

/**
 * If the bottom index node is full, make room: split the lowest full node whose parent
 * has room (its upper half moves to a new node), or, when every node up to the root is
 * full, push the root's entries down into a new node (one more level). Returns true if
 * it changed the index (the caller restarts). ENOSPC at the maximum depth.
 * @kernel ext4_dx_add_entry ("Need to split index?")
 */
async function growIndex(c: Ctx, levels: DxLevel[]): Promise<boolean> {
  const { fs, h, dir, blocks } = c;
  const L = levels.length;
  if (!isFull(levels[L - 1]!)) return false;
  let i = L - 1;
  let addLevel = true;
  while (i > 0) {
    if (!isFull(levels[i - 1]!)) {
      addLevel = false;
      break;
    }
    i--;
  }
  if (addLevel && L === (fs.features.largedir ? 3 : 2)) throw new FsError("ENOSPC", "Directory index full", { ino: dir.ino });
  const node = levels[i]!;
  const count = cl(node.data, node.off).count;
  const fresh = await blocks.append(h, dir);
  if (!addLevel) {
    const keep = Math.floor(count / 2);
    const hash2 = entryHash(node.data, node.off, keep);
    newIndexNode(fs, fresh.data, node.data.subarray(node.off + keep * 8, node.off + count * 8), count - keep);
    dxCountLimit.encode({ count: keep }, node.data, node.off);
    const parent = levels[i - 1]!;
    dxInsert(parent.data, parent.off, parent.at, hash2, fresh.lblk);
    dirtyDx(c, node.pblk, node.data, node.off);
    dirtyDx(c, fresh.pblk, fresh.data, dxNodeHeader.size);
    dirtyDx(c, parent.pblk, parent.data, parent.off);
    return true;
  }
  // The root is full: its entries move to a new node, the root points at that node alone.
  newIndexNode(fs, fresh.data, node.data.subarray(node.off, node.off + count * 8), count);
  dxCountLimit.encode({ count: 1, block: fresh.lblk }, node.data, node.off);
  const info = dxRoot.decode(node.data, 0);
  dxRoot.encode({ indirect_levels: info.indirect_levels + 1 }, node.data, 0);
  dirtyDx(c, fresh.pblk, fresh.data, dxNodeHeader.size);
  dirtyDx(c, node.pblk, node.data, node.off);
  return true;
}

interface LiveEntry {
  hash: number;
  minor: number;
  off: number;
  size: number;
}

/**
 * Split a full leaf: entries sorted by hash, the upper half (by bytes) moves to a new
 * block, whose first hash (with the continuation bit if it equals its predecessor's)
 * goes into the index after `parent.at`. Returns the block the new name belongs in.
 * @kernel do_split
 */
async function splitLeaf(c: Ctx, parent: DxLevel, pblk: number, data: Uint8Array, hashVersion: number, newHash: number): Promise<{ pblk: number; data: Uint8Array }> {
  const { fs, h, dir, blocks } = c;
  const end = fs.blockSize - csumSize(fs);
  const live: LiveEntry[] = [];
  for (const e of iterateDirEntries(data, 0, end, fs.blockSize, fs.inodesCount, { ino: dir.ino })) {
    const { hash, minor } = hashOf(fs, hashVersion, e.name);
    live.push({ hash, minor, off: e.offset, size: dirRecLen(e.name.length) });
  }
  live.sort((a, b) => a.hash - b.hash || a.minor - b.minor);
  let moveBytes = 0;
  let split = live.length;
  for (let i = live.length - 1; i > 0; i--) {
    if (moveBytes + live[i]!.size / 2 > fs.blockSize / 2) break;
    moveBytes += live[i]!.size;
    split = i;
  }
  const hash2 = live[split]?.hash ?? newHash;
  const continued = split > 0 && live[split - 1]!.hash === hash2 ? 1 : 0;
  const fresh = await blocks.append(h, dir);
  const old = data.slice();
  const pack = (dst: Uint8Array, list: LiveEntry[]): void => {
    initLeaf(fs, dst);
    let off = 0;
    list.forEach((e, i) => {
      const src = dirEntry.decode(old, e.off);
      const recLen = i === list.length - 1 ? end - off : e.size;
      writeEntry(fs, dst, off, recLen, src.inode, old.subarray(e.off + dirEntry.size, e.off + dirEntry.size + src.name_len), src.file_type);
      off += e.size;
    });
  };
  // Keep on-disk order within each half (stable by original offset) as dx_pack_dirents does.
  const lower = live.slice(0, split).sort((a, b) => a.off - b.off);
  const upper = live.slice(split).sort((a, b) => a.off - b.off);
  pack(data, lower);
  pack(fresh.data, upper);
  dxInsert(parent.data, parent.off, parent.at, (hash2 | continued) >>> 0, fresh.lblk);
  dirtyDx(c, parent.pblk, parent.data, parent.off);
  dirtyLeaf(c, pblk, data);
  dirtyLeaf(c, fresh.pblk, fresh.data);
  return newHash >= hash2 ? { pblk: fresh.pblk, data: fresh.data } : { pblk, data };
}

/**
 * Turn a full single-block directory into an htree: block 0 becomes the dx root (keeping
 * "." and ".."), its other entries move to a new block, which is then split by hash.
 * @kernel make_indexed_dir
 */
async function makeIndexedDir(c: Ctx, pblk0: number, data0: Uint8Array, name: Uint8Array, ino: number, fileType: number): Promise<void> {
  const { fs, h, dir, blocks } = c;
  const bs = fs.blockSize;
  const end = bs - csumSize(fs);
  const dot = dirEntry.decode(data0, 0);
  const dotLen = recLenFromDisk(dot.rec_len, bs);
  const dotdot = dirEntry.decode(data0, dotLen);
  const dotdotLen = recLenFromDisk(dotdot.rec_len, bs);
  if (dot.name_len !== 1 || dotdot.name_len !== 2) throw new FsError("EFSCORRUPTED", "Directory block 0 does not start with '.' and '..'", { ino: dir.ino });
  // Everything after ".." moves to the new block 1.
  const rest = data0.slice(dotLen + dotdotLen, end);
  const b1 = await blocks.append(h, dir);
  initLeaf(fs, b1.data);
  b1.data.set(rest, 0);
  // Stretch the last moved entry to the end of the usable area.
  let off = 0;
  let lastOff = 0;
  while (off < rest.length) {
    const e = dirEntry.decode(b1.data, off);
    lastOff = off;
    off += recLenFromDisk(e.rec_len, bs);
  }
  dirEntry.encode({ rec_len: recLenToDisk(end - lastOff, bs) }, b1.data, lastOff);

  // Block 0 becomes the root.
  const hashVersion = fs.sb.s_def_hash_version;
  const keep = data0.slice(0, dirRecLen(1) + 12);
  data0.fill(0);
  data0.set(keep.subarray(0, dirRecLen(1)), 0);
  dirEntry.encode({ rec_len: recLenToDisk(dirRecLen(1), bs) }, data0, 0);
  writeEntry(fs, data0, dirRecLen(1), bs - dirRecLen(1), dotdot.inode, new Uint8Array([0x2e, 0x2e]), EXT4_FT_DIR);
  dxRoot.encode({ reserved_zero: 0, hash_version: hashVersion, info_length: 8, indirect_levels: 0, unused_flags: 0 }, data0, 0);
  const rootOff = DX_ROOT_ENTRIES_OFFSET + 8;
  dxCountLimit.encode({ limit: dxRootLimit(bs, 8, fs.features.metadataCsum), count: 1, block: b1.lblk }, data0, rootOff);
  dir.raw.i_flags |= EXT4_INDEX_FL;
  const root: DxLevel = { pblk: pblk0, data: data0, off: rootOff, at: 0 };
  const { hash } = hashOf(fs, hashVersion, name);
  const target = await splitLeaf(c, root, b1.pblk, b1.data, hashVersion, hash);
  if (!addToLeaf(fs, target.data, name, ino, fileType)) throw new FsError("EFSCORRUPTED", "Entry does not fit after indexing the directory");
  dirtyLeaf(c, target.pblk, target.data);
  dirtyDx(c, pblk0, data0, rootOff);
}
