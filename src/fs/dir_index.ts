/**
 * Name lookup through the htree index (@kernel ext4_dx_find_entry, dx_probe,
 * ext4_htree_next_block; fs/ext4/namei.c).
 *
 * As in the kernel, a structurally bad index (unknown hash, bad limits, too deep) is not
 * fatal: the caller falls back to a linear scan (ERR_BAD_DX_DIR). Checksum failures and
 * unreadable blocks are errors.
 */

import { dirEntryTail, iterateDirEntries } from "../format/dirent.js";
import { DX_HASH_HALF_MD4, DX_HASH_LEGACY, DX_HASH_TEA, dirhash, isDxHashVersion } from "../format/dirhash.js";
import { EXT4_DX_UNUSED_FLAG_UNIMPLEMENTED, decodeDxNode, decodeDxRoot, type DxNode } from "../format/htree.js";
import { FsError } from "../errors.js";
import { readDirBlock, verifyDirLeaf, verifyDxBlock } from "./dir.js";
import type { Inode } from "./inode.js";
import type { Ext4Fs } from "./super.js";

/** The index cannot be used; search linearly. @kernel ERR_BAD_DX_DIR */
export const BAD_DX_DIR = Symbol("ERR_BAD_DX_DIR");

interface Frame {
  node: DxNode;
  at: number;
}

/** Index of the last entry whose hash <= `hash` (entry 0 covers everything below entry 1). */
function probe(node: DxNode, hash: number): number {
  let lo = 1;
  let hi = node.count - 1;
  while (lo <= hi) {
    const m = (lo + hi) >> 1;
    if (node.entries[m]!.hash > hash) hi = m - 1;
    else lo = m + 1;
  }
  return lo - 1;
}

function structural<T>(fn: () => T): T | typeof BAD_DX_DIR {
  try {
    return fn();
  } catch (e) {
    if (e instanceof FsError && e.code === "EFSCORRUPTED") return BAD_DX_DIR;
    throw e;
  }
}

/**
 * Find `name` in an indexed directory: its inode number, null when absent, or
 * BAD_DX_DIR when the index is unusable.
 */
export async function dxFindEntry(fs: Ext4Fs, dir: Inode, name: Uint8Array): Promise<number | null | typeof BAD_DX_DIR> {
  const csum = fs.features.metadataCsum;
  const bs = fs.blockSize;
  const rootBlk = await readDirBlock(fs, dir, 0);
  verifyDxBlock(fs, dir, rootBlk.block, rootBlk.pblk, true);
  const root = structural(() => decodeDxRoot(rootBlk.block, bs, csum, { ino: dir.ino, block: rootBlk.pblk }));
  if (root === BAD_DX_DIR) return BAD_DX_DIR;
  const v = root.hashVersion;
  if (v !== DX_HASH_LEGACY && v !== DX_HASH_HALF_MD4 && v !== DX_HASH_TEA) return BAD_DX_DIR; // SIPHASH needs casefold+encrypt
  if (root.unusedFlags & EXT4_DX_UNUSED_FLAG_UNIMPLEMENTED) return BAD_DX_DIR;
  if (root.indirectLevels >= (fs.features.largedir ? 3 : 2)) return BAD_DX_DIR;

  const version = v + fs.hashUnsignedDelta;
  if (!isDxHashVersion(version)) return BAD_DX_DIR;
  const { hash } = dirhash(name, version, fs.hashSeed);

  const frames: Frame[] = [{ node: root, at: probe(root, hash) }];
  for (let level = 0; level < root.indirectLevels; level++) {
    const parent = frames[frames.length - 1]!;
    const child = await readIndexNode(fs, dir, parent.node.entries[parent.at]!.block);
    if (child === BAD_DX_DIR) return BAD_DX_DIR;
    frames.push({ node: child, at: probe(child, hash) });
  }

  for (;;) {
    const leaf = frames[frames.length - 1]!;
    const found = await searchLeaf(fs, dir, leaf.node.entries[leaf.at]!.block, name);
    if (found !== null) return found;
    const more = await nextLeaf(fs, dir, frames, hash);
    if (more === BAD_DX_DIR) return BAD_DX_DIR;
    if (!more) return null;
  }
}

async function readIndexNode(fs: Ext4Fs, dir: Inode, lblk: number): Promise<DxNode | typeof BAD_DX_DIR> {
  const { block, pblk } = await readDirBlock(fs, dir, lblk);
  verifyDxBlock(fs, dir, block, pblk, false);
  return structural(() => decodeDxNode(block, fs.blockSize, fs.features.metadataCsum, { ino: dir.ino, block: pblk }));
}

async function searchLeaf(fs: Ext4Fs, dir: Inode, lblk: number, name: Uint8Array): Promise<number | null> {
  const { block, pblk } = await readDirBlock(fs, dir, lblk);
  verifyDirLeaf(fs, dir, block, pblk);
  const end = fs.features.metadataCsum ? fs.blockSize - dirEntryTail.size : fs.blockSize;
  for (const e of iterateDirEntries(block, 0, end, fs.blockSize, fs.inodesCount, { ino: dir.ino, block: pblk })) {
    if (e.name.length === name.length && e.name.every((c, i) => c === name[i])) return e.inode;
  }
  return null;
}

/**
 * Advance to the next leaf if it may still hold `hash` (hash collisions spill into the
 * next block, which then starts with the same hash plus the continuation bit).
 * @kernel ext4_htree_next_block
 */
async function nextLeaf(fs: Ext4Fs, dir: Inode, frames: Frame[], hash: number): Promise<boolean | typeof BAD_DX_DIR> {
  let level = frames.length - 1;
  for (;;) {
    const f = frames[level]!;
    f.at++;
    if (f.at < f.node.count) break;
    if (level === 0) return false;
    level--;
  }
  const bhash = frames[level]!.node.entries[frames[level]!.at]!.hash;
  if ((bhash & ~1) >>> 0 !== hash) return false;
  for (let l = level + 1; l < frames.length; l++) {
    const parent = frames[l - 1]!;
    const child = await readIndexNode(fs, dir, parent.node.entries[parent.at]!.block);
    if (child === BAD_DX_DIR) return BAD_DX_DIR;
    frames[l] = { node: child, at: 0 };
  }
  return true;
}
