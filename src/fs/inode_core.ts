/**
 * In-core inodes: what an inode has only in memory while it is in use — the one shared
 * writable copy of its fields, its dirty pages, its delayed-allocation reservation
 * (@kernel struct ext4_inode_info: i_reserved_data_blocks, the extent status tree's
 * delayed extents, the page cache's dirty folios; ext4_da_reserve_space,
 * ext4_da_update_reserve_space, ext4_da_release_space in fs/ext4/inode.c).
 *
 * One InodeCore per inode number per volume, so that operations running at once on the
 * same inode (a setxattr and the writeback of that file: the seed's two threads) change
 * one set of fields: two private copies would each write back their own i_blocks and one
 * change would be lost.
 *
 * Reservation accounting. A page written over a hole is "delayed": write() reserved one
 * cluster for it (reserveDelayed) and nothing is allocated until writeback. Per inode,
 * `reservedDataBlocks` is the number of delayed pages; the volume's `dirtyClusters` is the
 * sum over inodes. A delayed page leaves that state exactly once, in one synchronous
 * section with the counters: by writeback's claim (claimDelayed: allocated, charged to
 * i_blocks) or by truncate/unlink's release (releaseDelayed: never allocated). Each of these
 * functions is synchronous (no await inside), so no other operation can observe or
 * interleave with half of one (design note §3.2).
 */

import { assert } from "../debug/assert.js";
import { FsError } from "../errors.js";
import { rBlocksCount } from "../format/superblock.js";
import { freeBlocksCount as sbFreeBlocks } from "../format/superblock.js";
import { RwLock, type SyncDomain } from "../sync/rwlock.js";
import type { InodeInfo } from "./inode_write.js";
import type { InodeDquots } from "./quota.js";
import { checkReserve, claimQuota, releaseQuota, reserveQuota, sameDquots } from "./quota_charge.js";
import type { Ext4Fs } from "./super.js";

/** One block of file data held in memory until writeback. Page size = block size here. */
export interface Page {
  /** The whole block's bytes (zeros where nothing was written, as a new block reads). */
  readonly data: Uint8Array;
  /** Written over a hole: one cluster reserved, nothing allocated yet. @kernel BH_Delay / a delayed extent-status entry */
  delayed: boolean;
  /** Bumped by every write into the page, so writeback can tell a page re-dirtied during its I/O. */
  version: number;
}

export class InodeCore {
  readonly ino: number;
  /** Size and namespace changes, writes, truncate, setattr, setxattr. @kernel i_rwsem */
  readonly iRwsem: RwLock;
  /** The xattr areas (in-inode and block) and inline data. @kernel xattr_sem */
  readonly xattrSem: RwLock;
  /** The block mapping (extent tree / block map) and the pages' delayed state. @kernel i_data_sem */
  readonly dataSem: RwLock;
  /** The shared writable fields, loaded by igetWritable; null until then. */
  info: InodeInfo | null = null;
  /** Dirty pages by logical block. */
  readonly pages = new Map<number, Page>();
  /** Delayed pages: clusters reserved and not allocated. @kernel i_reserved_data_blocks */
  reservedDataBlocks = 0;
  /**
   * Whom the reservation is charged to: the owner's dquots, loaded by the async caller
   * (daWrite) before reserveDelayed; null without quota or for S_NOQUOTA inodes; undefined
   * until loaded. chown/setProjectId move it with the reservation (quota_charge.ts).
   */
  dquots: InodeDquots | null | undefined = undefined;
  /** Write back at the next close: the file was truncated to zero (auto_da_alloc). @kernel EXT4_STATE_DA_ALLOC_CLOSE */
  daAllocClose = false;
  /** When the oldest dirty page of this inode was dirtied (ms), for the periodic flusher; 0 when clean. */
  dirtiedAt = 0;

  constructor(ino: number, domain: SyncDomain) {
    this.ino = ino;
    this.iRwsem = new RwLock("i_rwsem", { name: `i_rwsem ino ${ino}`, domain });
    this.xattrSem = new RwLock("xattr_sem", { name: `xattr_sem ino ${ino}`, domain });
    this.dataSem = new RwLock("i_data_sem", { name: `i_data_sem ino ${ino}`, domain });
  }

  /** Holds nothing only memory has and no operation holds or waits for its locks. */
  idle(): boolean {
    const locks = [this.iRwsem, this.xattrSem, this.dataSem];
    return this.pages.size === 0 && this.reservedDataBlocks === 0 && locks.every((l) => !l.locked && l.waiters.length === 0);
  }
}

/** Per-volume registry of in-core inodes and page-cache totals. */
export class InodeTable {
  readonly #cores = new Map<number, InodeCore>();
  readonly #domain: SyncDomain;
  /** Operations in flight on this volume (the API counts them; prune needs none). */
  active = 0;

  /** Dirty pages over all inodes (the memory bound counts these). */
  dirtyPages = 0;

  constructor(domain: SyncDomain) {
    this.#domain = domain;
  }

  get(ino: number): InodeCore | undefined {
    return this.#cores.get(ino);
  }

  getOrCreate(ino: number): InodeCore {
    let c = this.#cores.get(ino);
    if (c === undefined) {
      c = new InodeCore(ino, this.#domain);
      this.#cores.set(ino, c);
    }
    return c;
  }

  /** In-core inodes with dirty pages, oldest first. */
  dirty(): InodeCore[] {
    return [...this.#cores.values()].filter((c) => c.pages.size > 0).sort((a, b) => a.dirtiedAt - b.dirtiedAt);
  }

  all(): IterableIterator<InodeCore> {
    return this.#cores.values();
  }

  /**
   * Forget in-core inodes that hold nothing only memory has (no pages, no reservation):
   * their fields are in the buffer cache. Only call when no operation is in flight (an
   * operation may hold a reference to `info` across awaits). @kernel prune_icache_sb
   */
  prune(limit: number): void {
    if (this.#cores.size <= limit || this.active > 0) return;
    for (const [ino, c] of this.#cores) if (c.idle()) this.#cores.delete(ino);
  }

  /** Drop every in-core copy of inode fields (after a failed operation, when nothing else runs). */
  forgetFields(): void {
    for (const c of this.#cores.values()) c.info = null;
  }
}

const tables = new WeakMap<Ext4Fs, InodeTable>();

export function inodeTable(fs: Ext4Fs): InodeTable {
  let t = tables.get(fs);
  if (t === undefined) {
    t = new InodeTable(fs.syncDomain);
    tables.set(fs, t);
  }
  return t;
}

/** The in-core inode if it exists (readers: dirty pages to overlay, reservation for stat). */
export function inodeCore(fs: Ext4Fs, ino: number): InodeCore | undefined {
  return tables.get(fs)?.get(ino);
}

/**
 * Clusters a delalloc reservation may still take: free minus everyone's reservations,
 * the root reserve and the emergency pool (which is kept for writeback's tree blocks).
 * @kernel ext4_claim_free_clusters(sbi, 1, 0) -> ext4_has_free_clusters
 */
export function reservableClusters(fs: Ext4Fs): number {
  return sbFreeBlocks(fs.sb) - fs.dirtyClusters - rBlocksCount(fs.sb) - fs.resvClusters;
}

/**
 * Make page `lblk` of `core` delayed: reserve one cluster of quota and of free space, or
 * throw EDQUOT or ENOSPC changing nothing. Quota is checked first, as ext4_da_reserve_space
 * calls dquot_reserve_block before ext4_claim_free_clusters (and undoes it on ENOSPC).
 * Synchronous: the checks and the counters move together. The caller loaded core.dquots.
 * @kernel ext4_da_reserve_space
 */
export function reserveDelayed(fs: Ext4Fs, core: InodeCore, page: Page): void {
  assert(!page.delayed, () => `Page of inode ${core.ino} reserved twice`);
  assert(core.dquots !== undefined, () => `Delalloc reservation for inode ${core.ino} before its dquots were loaded`);
  checkReserve(fs, core.dquots, 1); // EDQUOT: nothing changed
  if (reservableClusters(fs) < 1) {
    throw new FsError("ENOSPC", `No space left for delayed allocation: ${sbFreeBlocks(fs.sb)} free, ${fs.dirtyClusters} reserved by writes, ${rBlocksCount(fs.sb) + fs.resvClusters} kept back`, { ino: core.ino });
  }
  reserveQuota(fs, core.dquots, 1);
  fs.dirtyClusters += 1;
  core.reservedDataBlocks += 1;
  page.delayed = true;
}

/**
 * Writeback allocated [lblk, lblk+len) for delayed pages: they stop being delayed, their
 * reservation is retired and its quota claimed (reserved -> used, charged to `dquots`, the
 * allocation request's, which must be the accounts the reservation was made against). The
 * caller charges the same blocks to i_blocks in the same synchronous section. Asserts that
 * every page was delayed: a claim for a range write() did not reserve would take space
 * nobody set aside.
 * @kernel ext4_da_update_reserve_space (via ext4_es_insert_extent, delalloc_reserve_used) -> dquot_claim_block
 */
export function claimDelayed(fs: Ext4Fs, core: InodeCore, lblk: number, len: number, dquots: InodeDquots | null): void {
  assert(sameDquots(dquots, core.dquots), () => `Writeback of inode ${core.ino} claims for other dquots than its reservation's`);
  for (let b = lblk; b < lblk + len; b++) {
    const p = core.pages.get(b);
    assert(p !== undefined && p.delayed, () => `Writeback claimed block ${b} of inode ${core.ino}, which write() did not reserve`);
  }
  for (let b = lblk; b < lblk + len; b++) core.pages.get(b)!.delayed = false; // checked just above
  retire(fs, core, len);
  claimQuota(fs, dquots, len);
}

/**
 * Pages dropped before writeback (truncate, unlink): delayed ones give their cluster and
 * its quota reservation back. Synchronous. Returns the clusters released.
 * @kernel ext4_da_release_space -> dquot_release_reservation_block
 */
export function dropPages(fs: Ext4Fs, core: InodeCore, fromLblk: number, toLblk = Infinity): number {
  const table = inodeTable(fs);
  let released = 0;
  for (const [b, p] of core.pages) {
    if (b < fromLblk || b > toLblk) continue;
    if (p.delayed) released++;
    core.pages.delete(b);
    table.dirtyPages--;
  }
  retire(fs, core, released);
  if (released > 0) releaseQuota(fs, core.dquots ?? null, released);
  if (core.pages.size === 0) core.dirtiedAt = 0;
  return released;
}

function retire(fs: Ext4Fs, core: InodeCore, n: number): void {
  assert(core.reservedDataBlocks >= n && fs.dirtyClusters >= n, () => `Retiring ${n} reserved clusters of inode ${core.ino}: it holds ${core.reservedDataBlocks}, the volume ${fs.dirtyClusters}`);
  core.reservedDataBlocks -= n;
  fs.dirtyClusters -= n;
}

/**
 * The dirty pages of inode `ino` in blocks [first, last], captured now. A reader takes them
 * BEFORE it maps and reads blocks, and lays them over what it read: a page that writeback
 * retires during the read had its data written before its extent appeared (file_write.ts
 * `fill`), so either the page or the disk has the bytes.
 */
export function capturePages(fs: Ext4Fs, ino: number, first: number, last: number): [number, Uint8Array][] {
  const core = inodeCore(fs, ino);
  if (core === undefined || core.pages.size === 0) return [];
  const out: [number, Uint8Array][] = [];
  if (last - first + 1 < core.pages.size) {
    for (let b = first; b <= last; b++) {
      const p = core.pages.get(b);
      if (p !== undefined) out.push([b, p.data]);
    }
  } else {
    for (const [b, p] of core.pages) if (b >= first && b <= last) out.push([b, p.data]);
  }
  return out;
}

/** Clusters reserved for `ino`'s delayed pages (stat adds them to st_blocks, as ext4_getattr does). */
export function reservedBlocks(fs: Ext4Fs, ino: number): number {
  return inodeCore(fs, ino)?.reservedDataBlocks ?? 0;
}
