/**
 * Buffered writes into the page cache with delayed allocation, and the read side's view of
 * dirty pages (@kernel ext4_da_write_begin / ext4_da_get_block_prep / ext4_da_map_blocks /
 * ext4_insert_delayed_blocks, generic_perform_write; fs/ext4/inode.c, mm/filemap.c).
 *
 * write() copies data into per-inode pages (one page per block) and allocates nothing: a
 * page over a hole reserves one cluster (inode_core.ts reserveDelayed), a page over a
 * mapped or unwritten block is simply dirty. Writeback (writeback.ts) allocates later, in
 * runs, and that is where the reservation turns into blocks. An accepted write therefore
 * never fails later for lack of space: admission subtracted every reservation, the root
 * reserve and the emergency pool kept for writeback's tree blocks.
 *
 * Only extent-mapped files use the page cache. Block-mapped (ext2/ext3-style) files are
 * written through at write() time (file_write.ts writeData), as with `-o nodelalloc`:
 * their indirect blocks would need a metadata reservation the kernel no longer makes.
 *
 * What is atomic: each page's reservation (quota, then free space) and its creation (one
 * synchronous section); the caller holds the inode's i_rwsem, so no truncate, punch or
 * other write changes the inode's mapping or pages between this code's awaits (which are
 * only block reads).
 */

import { FsError } from "../errors.js";
import { EXT4_EXTENTS_FL } from "../format/inode.js";
import { extMapBlocks } from "./extents.js";
import { maxFileBytes } from "./file_write.js";
import { inodeTable, reserveDelayed, type InodeCore, type Page } from "./inode_core.js";
import { getSize, setSize, type InodeInfo } from "./inode_write.js";
import type { Ext4Fs } from "./super.js";
import { assert } from "../debug/assert.js";
import { inodeDquots, sameDquots } from "./quota_charge.js";

/** Does this inode's data go through the page cache? (Extent files; see the file comment.) */
export function usesPageCache(inode: Pick<InodeInfo, "raw">): boolean {
  return (inode.raw.i_flags & EXT4_EXTENTS_FL) !== 0;
}

/**
 * Copy `data` into the page cache at byte `pos` of `inode`, reserving clusters for pages
 * over holes; raise i_size. Returns the bytes taken: fewer than asked when space or quota
 * runs out part-way (a short write, as generic_perform_write makes), or when the write
 * crosses the file size limit. ENOSPC/EDQUOT with nothing taken is thrown. The caller
 * writes the inode back (i_size, times) and may then need to write pages back (dirtyOver).
 */
export async function daWrite(fs: Ext4Fs, inode: InodeInfo, pos: number, data: Uint8Array): Promise<number> {
  const bs = fs.blockSize;
  const limit = maxFileBytes(fs, inode);
  if (data.length === 0) return 0;
  if (pos >= limit) throw new FsError("EFBIG", "File too large", { ino: inode.ino });
  if (pos + data.length > limit) data = data.subarray(0, limit - pos);
  const table = inodeTable(fs);
  const core = table.getOrCreate(inode.ino);
  // Whom reservations are charged to, loaded before reserveDelayed's synchronous step
  // (dquot_initialize). The same accounts as any reservation already held: ids change only
  // through chown/setProjectId, which move the reservation and core.dquots together.
  const dquots = await inodeDquots(fs, inode);
  assert(core.reservedDataBlocks === 0 || sameDquots(core.dquots, dquots), () => `Inode ${inode.ino}: reservation held by other dquots than its ids'`);
  core.dquots = dquots;
  const first = Math.floor(pos / bs);
  const last = Math.floor((pos + data.length - 1) / bs);
  let done = 0;
  let lblk = first;
  try {
    while (lblk <= last) {
      // Blocks that already have a page need no lookup.
      const have = core.pages.get(lblk);
      if (have !== undefined) {
        done = copyIn(have, lblk, pos, data, bs);
        lblk++;
        continue;
      }
      // One extent-tree lookup covers a run of blocks without pages.
      const run = await extMapBlocks(fs, inode, lblk, last - lblk + 1);
      const n = Math.max(1, Math.min(run.len, last - lblk + 1));
      // New pages of this run are views of one buffer: fewer allocations, and writeback can
      // write consecutive pages of it without copying them (writeback.ts writePages). The
      // buffer lives while any of its pages does; pages of one write are normally written
      // back, and freed, together.
      const slab = new Uint8Array(n * bs);
      for (let i = 0; i < n; i++, lblk++) {
        let page = core.pages.get(lblk);
        if (page === undefined) {
          const partial = lblk * bs < pos || (lblk + 1) * bs > pos + data.length;
          // A partly written block over written data starts from its bytes on disk; over a
          // hole or an unwritten extent, from zeros (what reading it gives).
          const old = partial && run.pblk !== 0 && !run.unwritten ? await fs.cache.readUncached(run.pblk + i, 1) : null;
          page = core.pages.get(lblk); // i_rwsem keeps other writers out; writeback only removes pages
          if (page === undefined) {
            page = { data: old ?? slab.subarray(i * bs, (i + 1) * bs), delayed: false, version: 0 };
            if (run.pblk === 0) reserveDelayed(fs, core, page); // may throw ENOSPC: the page is not added
            addPage(fs, core, lblk, page);
          }
        }
        done = copyIn(page, lblk, pos, data, bs);
      }
    }
  } catch (e) {
    if (done > 0 && e instanceof FsError && (e.code === "ENOSPC" || e.code === "EDQUOT")) {
      raiseSize(fs, inode, pos + done);
      return done;
    }
    throw e;
  }
  raiseSize(fs, inode, pos + done);
  return done;
}

function addPage(fs: Ext4Fs, core: InodeCore, lblk: number, page: Page): void {
  core.pages.set(lblk, page);
  inodeTable(fs).dirtyPages++;
  if (core.dirtiedAt === 0) core.dirtiedAt = fs.syncDomain.clock.now();
}

/** Copy the part of `data` (at file offset `pos`) that falls in block `lblk`; returns bytes of data consumed so far. */
function copyIn(page: Page, lblk: number, pos: number, data: Uint8Array, bs: number): number {
  const from = Math.max(pos, lblk * bs);
  const to = Math.min(pos + data.length, (lblk + 1) * bs);
  page.data.set(data.subarray(from - pos, to - pos), from - lblk * bs);
  page.version++;
  return to - pos;
}

function raiseSize(fs: Ext4Fs, inode: InodeInfo, end: number): void {
  if (end > getSize(fs, inode)) setSize(inode, end);
}
