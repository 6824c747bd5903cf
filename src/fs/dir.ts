/**
 * Directory contents: reading directory blocks with their checks, and walking entries
 * of linear, indexed (htree) and inline directories (@kernel ext4_readdir,
 * __ext4_read_dirblock, ext4_read_inline_dir; fs/ext4/dir.c, namei.c, inline.c).
 *
 * Readdir walks every block in logical order. In an indexed directory the index blocks
 * disguise themselves as empty leaves, so the same walk sees each name exactly once;
 * their own checksums are checked where their structure can be read.
 */

import { dxBlockChecksum, dirBlockChecksum } from "../format/checksum.js";
import { dirEntryTail, hasDirTail, iterateDirEntries } from "../format/dirent.js";
import { DX_NODE_ENTRIES_OFFSET, DX_ROOT_ENTRIES_OFFSET, dxCountLimit, dxTail, dxTailOffset, looksLikeDxNode } from "../format/htree.js";
import { EXT4_INDEX_FL } from "../format/inode.js";
import { FsError } from "../errors.js";
import { inlineBytes, type InlineInode } from "./inline.js";
import { hasInlineData, isDir, type Inode } from "./inode.js";
import { mapBlocks } from "./read.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";

const DIR_READAHEAD_BLKS = 16;

export interface DirRecord {
  name: Uint8Array;
  ino: number;
  /** EXT4_FT_* (0 without the filetype feature). */
  fileType: number;
}

/** Does this directory use its htree index? @kernel is_dx */
export function isIndexed(fs: Ext4Fs, dir: Inode): boolean {
  return fs.features.dirIndex && (dir.flags & EXT4_INDEX_FL) !== 0 && !hasInlineData(dir);
}

/** Number of blocks the directory's i_size covers. */
export function dirBlockCount(fs: Ext4Fs, dir: Inode): number {
  return Math.ceil(dir.size / fs.blockSize);
}

/**
 * Read logical block `lblk` of a directory. Throws EFSCORRUPTED for a block past
 * i_size or a hole (the kernel never expects holes where it reads a directory block).
 */
export async function readDirBlock(fs: Ext4Fs, dir: Inode, lblk: number): Promise<{ block: Uint8Array; pblk: number }> {
  if (lblk >= dirBlockCount(fs, dir)) {
    throw fsCorrupted(fs, { ino: dir.ino, what: `Directory block ${lblk} is past i_size ${dir.size}` });
  }
  const run = await mapBlocks(fs, dir, lblk, 1);
  if (run.pblk === 0 || run.unwritten) throw fsCorrupted(fs, { ino: dir.ino, what: `Directory has a hole at block ${lblk}` });
  return { block: await fs.cache.get(run.pblk), pblk: run.pblk };
}

/** Check a leaf block's checksum tail. @kernel ext4_dirblock_csum_verify */
export function verifyDirLeaf(fs: Ext4Fs, dir: Inode, block: Uint8Array, pblk: number): void {
  if (!fs.features.metadataCsum) return;
  const bs = fs.blockSize;
  if (!hasDirTail(block, bs)) throw fsCorrupted(fs, { ino: dir.ino, block: pblk, what: "Directory block has no checksum tail", crc: true });
  const stored = dirEntryTail.decode(block, bs - dirEntryTail.size).det_checksum;
  if (stored !== dirBlockChecksum(block, bs, dir.csumSeed)) {
    throw fsCorrupted(fs, { ino: dir.ino, block: pblk, what: "Directory block checksum does not match", crc: true });
  }
}

/**
 * Check an index block's dx_tail checksum using the count/limit as stored, before any
 * structural check, as the kernel does when it reads an index block.
 * @kernel ext4_dx_csum_verify / get_dx_countlimit
 */
export function verifyDxBlock(fs: Ext4Fs, dir: Inode, block: Uint8Array, pblk: number, isRoot: boolean): void {
  if (!fs.features.metadataCsum) return;
  const bad = (what: string): FsError => fsCorrupted(fs, { ino: dir.ino, block: pblk, what, crc: true });
  const entriesOffset = isRoot ? DX_ROOT_ENTRIES_OFFSET + (block[0x1d] ?? 0) : DX_NODE_ENTRIES_OFFSET;
  if (isRoot ? block[0x1d] !== 8 : !looksLikeDxNode(block, fs.blockSize)) throw bad("Directory index block is not recognisable; run e2fsck -D");
  const { limit, count } = dxCountLimit.decode(block, entriesOffset);
  const at = dxTailOffset({ entriesOffset, limit });
  if (at + dxTail.size > fs.blockSize) throw bad("Directory index has no room for its checksum");
  const stored = dxTail.decode(block, at).dt_checksum;
  if (stored !== dxBlockChecksum(block, entriesOffset, Math.min(count, limit), at, dir.csumSeed)) {
    throw bad("Directory index block checksum does not match");
  }
}

/**
 * Every entry of a directory in on-disk order, "." and ".." included (synthesized for
 * inline directories, which do not store them).
 */
export async function* readDirEntries(fs: Ext4Fs, dir: Inode): AsyncGenerator<DirRecord> {
  if (!isDir(dir)) throw new FsError("ENOTDIR", "Not a directory", { ino: dir.ino });
  const maxIno = fs.inodesCount;
  if (hasInlineData(dir)) {
    yield* inlineDirEntries(fs, dir);
    return;
  }
  const indexed = isIndexed(fs, dir);
  const count = dirBlockCount(fs, dir);
  for (let lblk = 0; lblk < count; ) {
    const run = await mapBlocks(fs, dir, lblk, count - lblk);
    if (run.pblk === 0 || run.unwritten) {
      lblk += run.len; // the kernel's readdir skips holes in linear directories
      continue;
    }
    // One device request per run of up to DIR_READAHEAD_BLKS blocks (@kernel ext4_bread_batch).
    let batch: Uint8Array[] = [];
    for (let i = 0; i < run.len; i++, lblk++) {
      const pblk = run.pblk + i;
      if (i % DIR_READAHEAD_BLKS === 0) batch = await fs.cache.getMany(pblk, Math.min(DIR_READAHEAD_BLKS, run.len - i));
      const block = batch[i % DIR_READAHEAD_BLKS]!; // filled for this index just above
      if (indexed && (lblk === 0 || looksLikeDxNode(block, fs.blockSize))) {
        verifyDxBlock(fs, dir, block, pblk, lblk === 0);
        // The root still holds "." and ".." as real entries; interior nodes hold none.
        if (lblk === 0) yield* [...rootDots(fs, dir, block, pblk)];
        continue;
      }
      verifyDirLeaf(fs, dir, block, pblk);
      const end = fs.features.metadataCsum ? fs.blockSize - dirEntryTail.size : fs.blockSize;
      // Decode the whole block before the first yield: the cached buffer is shared, and a
      // directory change may rewrite it in place (split, conversion to an htree) while the
      // consumer awaits; each block is then seen as it was at one moment.
      const entries = [...iterateDirEntries(block, 0, end, fs.blockSize, maxIno, { ino: dir.ino, block: pblk })];
      for (const e of entries) yield { name: e.name, ino: e.inode, fileType: e.fileType };
    }
  }
}

function* rootDots(fs: Ext4Fs, dir: Inode, block: Uint8Array, pblk: number): Generator<DirRecord> {
  // Only the first two entries: ".."'s rec_len spans the index that follows.
  let n = 0;
  for (const e of iterateDirEntries(block, 0, fs.blockSize, fs.blockSize, fs.inodesCount, { ino: dir.ino, block: pblk })) {
    yield { name: e.name, ino: e.inode, fileType: e.fileType };
    if (++n === 2) return;
  }
}

/**
 * Inline directory: i_block starts with the parent's inode number, then entries fill
 * the rest of i_block and continue in system.data ("." and ".." are not stored).
 * @kernel ext4_read_inline_dir
 */
export function inlineDirContents(fs: Ext4Fs, dir: InlineInode): { parent: number; entries: DirRecord[] } {
  const data = inlineBytes(fs, dir);
  const parent = (data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24)) >>> 0;
  if (parent === 0 || parent > fs.inodesCount) throw fsCorrupted(fs, { ino: dir.ino, what: `Inline directory parent ${parent} out of range` });
  const ctx = { ino: dir.ino };
  const entries: DirRecord[] = [];
  // The two regions are separate chains: rec_len never crosses from i_block into system.data.
  for (const [from, to] of [[4, 60], [60, data.length]] as const) {
    for (const e of iterateDirEntries(data, from, to, fs.blockSize, fs.inodesCount, ctx)) entries.push({ name: e.name, ino: e.inode, fileType: e.fileType });
  }
  return { parent, entries };
}

function* inlineDirEntries(fs: Ext4Fs, dir: Inode): Generator<DirRecord> {
  const { parent, entries } = inlineDirContents(fs, dir);
  yield { name: new Uint8Array([0x2e]), ino: dir.ino, fileType: 2 };
  yield { name: new Uint8Array([0x2e, 0x2e]), ino: parent, fileType: 2 };
  yield* entries;
}
