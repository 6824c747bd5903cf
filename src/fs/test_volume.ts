/**
 * Test support (imported only by *.test.ts): a BlockAllocator over the volume's real block
 * bitmaps, standing in for balloc/mballoc until they land.
 *
 * It sets and clears bits in the on-disk block bitmap through the handle, and keeps
 * bg_free_blocks_count, the bitmap checksum, the descriptor checksum and
 * s_free_blocks_count in step, so an image written by a test passes e2fsck's pass 5 and any
 * bitmap or count problem e2fsck reports is a real bug of the code under test. It records
 * every request and free for assertions (funding, purpose, goal).
 *
 * Deliberately simple: first fit from the goal, whole groups skipped while BLOCK_UNINIT (their
 * bitmap is not on disk; tests initialise the groups they need), no bigalloc, no quota, no
 * reservations. Not for engine code.
 */

import { assert } from "../debug/assert.js";
import { FsError } from "../errors.js";
import { bitmapChecksum } from "../format/checksum.js";
import { EXT4_BG_BLOCK_BITMAP_CSUM_HI_END, EXT4_BG_BLOCK_UNINIT, blockBitmap, freeBlocksCount, setFreeBlocksCount } from "../format/group_desc.js";
import { freeBlocksCount as sbFreeBlocksCount, setFreeBlocksCount as sbSetFreeBlocksCount } from "../format/superblock.js";
import type { AllocRequest } from "./alloc_request.js";
import type { BlockAllocator } from "./extents_write.js";
import { updateGroupDesc } from "./group.js";
import type { Handle } from "./handle.js";
import type { Ext4Fs } from "./super.js";

export interface Grant {
  readonly req: AllocRequest;
  readonly pblk: number;
  readonly len: number;
}

export class BitmapTestAllocator implements BlockAllocator {
  /** Every grant, in order. */
  readonly grants: Grant[] = [];
  /** Every free, in order. */
  readonly frees: { ino: number; pblk: number; count: number }[] = [];
  /** Fail the next `n` requests with ENOSPC (to test rollback). */
  failNext = 0;

  async alloc(h: Handle, req: AllocRequest): Promise<{ pblk: number; len: number }> {
    const fs = h.fs;
    if (this.failNext > 0) {
      this.failNext--;
      throw new FsError("ENOSPC", `Test allocator: no space for ${req.len} blocks (injected)`, { ino: req.ino });
    }
    const first = fs.sb.s_first_data_block;
    const goal = req.goal > first && req.goal < fs.blocksCount ? req.goal : first + 1;
    const g0 = Math.floor((goal - first) / fs.blocksPerGroup);
    // The goal's group from the goal, the other groups, then the goal's group from its start.
    for (let n = 0; n <= fs.groupCount; n++) {
      const g = (g0 + n) % fs.groupCount;
      const gd = fs.group(g);
      if ((gd.bg_flags & EXT4_BG_BLOCK_UNINIT) !== 0 || freeBlocksCount(gd, fs.descSize) < req.minLen) continue;
      const base = first + g * fs.blocksPerGroup;
      const size = Math.min(fs.blocksPerGroup, fs.blocksCount - base);
      const bmBlock = blockBitmap(gd, fs.descSize);
      const bm = await h.getWriteAccess(bmBlock);
      const run = findFreeRun(bm, n === 0 ? goal - base : 0, size, req.minLen, req.len);
      if (run === undefined) continue;
      for (let i = run.start; i < run.start + run.len; i++) bm[i >> 3] = bm[i >> 3]! | (1 << (i & 7));
      h.dirtyMetadata(bmBlock);
      await account(h, g, bm, -run.len);
      const grant = { req, pblk: base + run.start, len: run.len };
      this.grants.push(grant);
      return { pblk: grant.pblk, len: grant.len };
    }
    throw new FsError("ENOSPC", `Test allocator: no run of ${req.minLen} free blocks`, { ino: req.ino });
  }

  async free(h: Handle, ino: number, pblk: number, count: number): Promise<void> {
    const fs = h.fs;
    assert(fs.blockRangeValid(pblk, count) && count >= 1, () => `Freeing blocks ${pblk}+${count} outside the volume`);
    this.frees.push({ ino, pblk, count });
    const first = fs.sb.s_first_data_block;
    let done = 0;
    while (done < count) {
      const b = pblk + done;
      const g = Math.floor((b - first) / fs.blocksPerGroup);
      const base = first + g * fs.blocksPerGroup;
      const n = Math.min(count - done, base + fs.blocksPerGroup - b);
      const bmBlock = blockBitmap(fs.group(g), fs.descSize);
      const bm = await h.getWriteAccess(bmBlock);
      for (let i = b - base; i < b - base + n; i++) {
        const bit = 1 << (i & 7);
        assert((bm[i >> 3]! & bit) !== 0, () => `Freeing block ${base + i}, which is already free`);
        bm[i >> 3] = bm[i >> 3]! & ~bit;
      }
      h.dirtyMetadata(bmBlock);
      await account(h, g, bm, n);
      done += n;
    }
  }
}

/** First run of free bits at or after `from` (below `size`) of at least minLen, cut to maxLen. */
function findFreeRun(bm: Uint8Array, from: number, size: number, minLen: number, maxLen: number): { start: number; len: number } | undefined {
  let i = Math.max(0, from);
  while (i < size) {
    if ((i & 7) === 0 && bm[i >> 3] === 0xff) {
      i += 8;
      continue;
    }
    if ((bm[i >> 3]! & (1 << (i & 7))) !== 0) {
      i++;
      continue;
    }
    let len = 0;
    while (i + len < size && len < maxLen && (bm[(i + len) >> 3]! & (1 << ((i + len) & 7))) === 0) len++;
    if (len >= minLen) return { start: i, len };
    i += len;
  }
  return undefined;
}

/** Group and volume free counts += delta, bitmap checksum refreshed (the bitmap is already changed). */
async function account(h: Handle, g: number, bm: Uint8Array, delta: number): Promise<void> {
  const fs: Ext4Fs = h.fs;
  const ds = fs.descSize;
  await updateGroupDesc(h, g, (gd) => {
    setFreeBlocksCount(gd, freeBlocksCount(gd, ds) + delta, ds);
    if (fs.features.metadataCsum) {
      const c = bitmapChecksum(bm, fs.blocksPerGroup / 8, fs.csumSeed);
      gd.bg_block_bitmap_csum_lo = c & 0xffff;
      if (ds >= EXT4_BG_BLOCK_BITMAP_CSUM_HI_END) gd.bg_block_bitmap_csum_hi = c >>> 16;
    }
  });
  sbSetFreeBlocksCount(fs.sb, sbFreeBlocksCount(fs.sb) + delta);
}
