/**
 * Reading file data: map logical blocks, read mapped runs in one device request each,
 * and give zeros for holes, unwritten extents and the tail past i_size
 * (@kernel ext4_map_blocks lookup + ext4_mpage_readpages, fs/ext4/inode.c, readpage.c).
 */

import { FsError } from "../errors.js";
import { extMapBlocks, type BlockRun } from "./extents.js";
import { indMapBlocks } from "./indirect.js";
import { inlineBytes } from "./inline.js";
import { capturePages } from "./inode_core.js";
import { hasInlineData, type Inode, type MappedInode } from "./inode.js";
import { EXT4_EXTENTS_FL } from "../format/inode.js";
import type { Ext4Fs } from "./super.js";

/**
 * Map up to `maxLen` blocks from `lblk`, extent or block-mapped.
 * @kernel ext4_map_blocks (lookup only; the writing engine adds `create`)
 */
export function mapBlocks(fs: Ext4Fs, inode: MappedInode, lblk: number, maxLen: number): Promise<BlockRun> {
  return inode.raw.i_flags & EXT4_EXTENTS_FL ? extMapBlocks(fs, inode, lblk, maxLen) : indMapBlocks(fs, inode, lblk, maxLen);
}

const MAX_BUFFER_BYTES = 2 ** 31 - 1;

/** Largest single device read for file data; bounds memory per request. */
const MAX_RUN_BYTES = 8 * 1024 * 1024;

/**
 * Read `length` bytes at `pos` (cut at i_size). Holes and unwritten extents read as
 * zeros. Data reads bypass the metadata cache so a large file cannot evict it.
 */
export async function readRange(fs: Ext4Fs, inode: Inode, pos: number, length: number): Promise<Uint8Array> {
  const n = Math.max(0, Math.min(inode.size, pos + length) - pos);
  // Node refuses readFile past 2 GiB too; larger files are read in chunks (readInto, readChunks).
  if (n > MAX_BUFFER_BYTES) throw new FsError("EFBIG", `File of ${inode.size} bytes is too large to read into one buffer; read it in chunks`, { ino: inode.ino });
  const out = new Uint8Array(n);
  await readInto(fs, inode, pos, out);
  return out;
}

/**
 * Fill `dest` from file offset `pos`; returns the bytes read (fewer at EOF). Mapped
 * whole blocks are read straight into `dest`; only a partial first or last block goes
 * through a bounce buffer.
 */
export async function readInto(fs: Ext4Fs, inode: Inode, pos: number, dest: Uint8Array): Promise<number> {
  const end = Math.min(inode.size, pos + dest.length);
  if (end <= pos) return 0;
  if (hasInlineData(inode)) {
    const data = inlineBytes(fs, inode);
    dest.fill(0, 0, end - pos);
    dest.set(data.subarray(Math.min(pos, data.length), Math.min(end, data.length)));
    return end - pos;
  }
  const bs = fs.blockSize;
  // Dirty pages (not yet written back) win over the blocks; captured first (page_cache.ts).
  const pages = capturePages(fs, inode.ino, Math.floor(pos / bs), Math.floor((end - 1) / bs));
  let at = pos;
  while (at < end) {
    const lblk = Math.floor(at / bs);
    const lastLblk = Math.floor((end - 1) / bs);
    const maxBlocks = Math.min(lastLblk - lblk + 1, MAX_RUN_BYTES / bs);
    const run = await mapBlocks(fs, inode, lblk, maxBlocks);
    const runEnd = Math.min(end, (lblk + run.len) * bs);
    const o = at - pos;
    if (run.pblk === 0 || run.unwritten) {
      dest.fill(0, o, o + (runEnd - at));
    } else if (at === lblk * bs && runEnd === (lblk + run.len) * bs && o + run.len * bs <= dest.length) {
      await fs.cache.readUncachedInto(run.pblk, dest.subarray(o, o + run.len * bs));
    } else {
      const data = await fs.cache.readUncached(run.pblk, run.len);
      const skip = at - lblk * bs;
      dest.set(data.subarray(skip, skip + (runEnd - at)), o);
    }
    at = runEnd;
  }
  for (const [b, data] of pages) {
    const from = Math.max(pos, b * bs);
    const to = Math.min(end, (b + 1) * bs);
    dest.set(data.subarray(from - b * bs, to - b * bs), from - pos);
  }
  return end - pos;
}

/** Stream the whole file in chunks of about `chunkBytes`, bounded memory for any size. */
export async function* readChunks(fs: Ext4Fs, inode: Inode, chunkBytes = 4 * 1024 * 1024): AsyncGenerator<Uint8Array> {
  const step = Math.max(fs.blockSize, Math.floor(chunkBytes / fs.blockSize) * fs.blockSize);
  for (let pos = 0; pos < inode.size; pos += step) yield await readRange(fs, inode, pos, step);
}
