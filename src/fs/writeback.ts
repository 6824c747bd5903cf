/**
 * Writeback: turn an inode's dirty pages into blocks on disk (@kernel ext4_writepages,
 * ext4_do_writepages, mpage_prepare_extent_to_map, mpage_map_and_submit_extent;
 * fs/ext4/inode.c).
 *
 * Dirty pages are taken in runs of consecutive blocks of one kind. A run of delayed pages
 * is mapped with delalloc funding: the allocator takes the blocks without a second
 * admission test, extent-tree blocks needed on the way are requested as children of that
 * request (nofail, emergency pool), and the claim retires the pages' reservation and
 * charges i_blocks in one synchronous step (file_write.ts chargeGrant). A run over blocks
 * already mapped is simply written; over unwritten extents it is written, then converted.
 * In every case the data reaches the device before the extent that exposes it
 * (MapForWriteOptions.fill), so a crash or a concurrent reader never sees a mapped block
 * with stale bytes.
 *
 * Why nothing here can fail for space: every delayed page was admitted at write() against
 * free minus all reservations minus the root reserve minus the emergency pool, and the
 * only other blocks writeback needs are tree blocks, which may use that pool.
 *
 * The caller holds the inode's i_data_sem (write): mapping, claims and page retirement of
 * one inode never interleave with truncate or another writeback of it. A write() into a
 * page during its I/O (writers hold i_rwsem, not i_data_sem) bumps the page's version,
 * and that page stays dirty for the next writeback.
 */

import { assert } from "../debug/assert.js";
import type { Funding } from "./alloc_request.js";
import { mapForWrite, type MappedRun, type WriteDeps } from "./file_write.js";
import { withHandle } from "./handle.js";
import { inodeCore, inodeTable, type InodeCore, type Page } from "./inode_core.js";
import { igetWritableRaw, markInodeDirty } from "./inode_write.js";
import type { Task } from "../sync/task.js";
import type { Ext4Fs } from "./super.js";

/** Largest run mapped and written as one piece (bounds the bounce buffer). */
const MAX_RUN_BYTES = 8 * 1024 * 1024;

const WRITEBACK_NOFAIL: Funding = { kind: "chargeNow", quota: "nofail", pool: "emergency" };

/** Pages written and retired by one call, for tests and progress. */
export interface WritebackResult {
  pages: number;
  runs: number;
}

/**
 * Write back the dirty pages of inode `ino` in blocks [first, last] (all by default).
 * @kernel ext4_writepages (WB_SYNC_ALL), filemap_write_and_wait_range for a range
 */
export async function writebackInode(
  fs: Ext4Fs,
  deps: WriteDeps,
  ino: number,
  range: { first: number; last: number } = { first: 0, last: Infinity },
  task: Task | null = null,
): Promise<WritebackResult> {
  const core = inodeCore(fs, ino);
  const done: WritebackResult = { pages: 0, runs: 0 };
  if (core === undefined || core.pages.size === 0) return done;
  const lblks = [...core.pages.keys()].filter((b) => b >= range.first && b <= range.last).sort((a, b) => a - b);
  if (lblks.length === 0) return done;
  const inode = core.info ?? (await igetWritableRaw(fs, ino));
  const maxRun = Math.max(1, Math.floor(MAX_RUN_BYTES / fs.blockSize));
  await withHandle(fs, async (h) => {
    try {
      for (let i = 0; i < lblks.length; ) {
        const start = lblks[i]!;
        const delayed = pageOf(core, start).delayed;
        let j = i + 1;
        while (j < lblks.length && j - i < maxRun && lblks[j] === lblks[j - 1]! + 1 && pageOf(core, lblks[j]!).delayed === delayed) j++;
        const len = j - i;
        const versions = lblks.slice(i, j).map((b) => pageOf(core, b).version);
        const fill = (m: MappedRun): Promise<void> => writePages(fs, core, m);
        const runs = await mapForWrite(h, deps, inode, start, len, "data", { funding: delayed ? { kind: "delalloc", reservation: len } : WRITEBACK_NOFAIL, fill });
        for (const m of runs) if (!m.fresh) await writePages(fs, core, m);
        assert(runs.reduce((n, m) => n + m.len, 0) === len, () => `Writeback of inode ${ino} mapped a different length than its run of ${len} pages at ${start}`);
        // Retire the pages nobody wrote into during the I/O.
        const table = inodeTable(fs);
        for (let k = 0; k < len; k++) {
          const p = core.pages.get(start + k);
          if (p !== undefined && !p.delayed && p.version === versions[k]) {
            core.pages.delete(start + k);
            table.dirtyPages--;
            done.pages++;
          }
        }
        done.runs++;
        i = j;
      }
    } finally {
      // Whatever was mapped (all, or up to an error) is recorded in the inode.
      await markInodeDirty(h, inode);
      if (core.pages.size === 0) core.dirtiedAt = 0;
    }
  }, task);
  return done;
}

function pageOf(core: InodeCore, lblk: number): Page {
  const p = core.pages.get(lblk);
  assert(p !== undefined, () => `Page ${lblk} of inode ${core.ino} vanished during writeback`);
  return p;
}

/**
 * Write the pages of `m` to its blocks, in one device request. Pages that are consecutive
 * views of one buffer (written by one write() call: page_cache.ts) are written from it
 * directly; otherwise they are gathered into a bounce buffer.
 */
async function writePages(fs: Ext4Fs, core: InodeCore, m: MappedRun): Promise<void> {
  const bs = fs.blockSize;
  const first = pageOf(core, m.lblk).data;
  let contiguous = true;
  for (let k = 1; k < m.len && contiguous; k++) {
    const d = pageOf(core, m.lblk + k).data;
    contiguous = d.buffer === first.buffer && d.byteOffset === first.byteOffset + k * bs;
  }
  if (contiguous) {
    await fs.cache.writeUncached(m.pblk, new Uint8Array(first.buffer, first.byteOffset, m.len * bs));
    return;
  }
  const buf = new Uint8Array(m.len * bs);
  for (let k = 0; k < m.len; k++) buf.set(pageOf(core, m.lblk + k).data, k * bs);
  await fs.cache.writeUncached(m.pblk, buf);
}

/** Write back every inode with dirty pages, oldest first. @kernel sync_inodes_sb */
export async function writebackAll(fs: Ext4Fs, deps: WriteDeps, writeback: (ino: number) => Promise<unknown> = (ino) => writebackInode(fs, deps, ino)): Promise<void> {
  for (const core of inodeTable(fs).dirty()) await writeback(core.ino);
}
