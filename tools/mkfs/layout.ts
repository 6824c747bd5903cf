/**
 * Where everything of a new filesystem goes, decided without I/O: group tables,
 * root and lost+found directory blocks, the resize inode's double-indirect block and
 * the journal, each allocated in mke2fs' order with e2fsprogs' allocators so the
 * result matches mke2fs 1.47 block for block. Also the per-group accounting mke2fs
 * keeps along the way: BLOCK_UNINIT / INODE_UNINIT / ITABLE_ZEROED flags, unused
 * inodes, free and directory counts, and the overhead (s_overhead_clusters).
 *
 * Counterparts: ext2fs_initialize (group flags), ext2fs_allocate_group_table
 * (lib/ext2fs/alloc_tables.c), write_inode_tables / create_root_dir /
 * create_lost_and_found / reserve_inodes (misc/mke2fs.c), ext2fs_create_resize_inode
 * (res_gdt.c), write_journal_inode + get_midpoint_journal_block (mkjournal.c),
 * ext2fs_fallocate (fallocate.c), ext2fs_bmap2 (bmap.c), ext2fs_inode_alloc_stats2.
 *
 * Invariant, checked by the property tests: no block is allocated twice, every
 * group's metadata lies inside the volume, and each group's free count is the number
 * of zero bits in its bitmap.
 */

import { EXT4_BG_BLOCK_UNINIT, EXT4_BG_INODE_UNINIT, EXT4_BG_INODE_ZEROED } from "../../src/format/group_desc.js";
import { EXT4_FEATURE_COMPAT_RESIZE_INODE, EXT4_FEATURE_INCOMPAT_EXTENTS } from "../../src/format/features.js";
import { EXT4_ROOT_INO } from "../../src/format/inode.js";
import { EXT_INIT_MAX_LEN } from "../../src/format/extent.js";
import { BlockMap } from "./block_map.js";
import { groupFirstBlock, groupLastBlock, groupOfBlock, groupOfIno, type Geometry } from "./geometry.js";
import { fail } from "./options.js";

export interface LayoutInput {
  geo: Geometry;
  /** Journal data blocks to allocate; 0 for no journal. */
  journalBlocks: number;
  /** -J location: the goal instead of the middle of the volume. */
  journalGoal?: number | undefined;
  /** -E stride, used to place bitmaps without flex_bg. */
  stride?: number;
  lazyItableInit: boolean;
  /** The inode tables are known to read as zeros (-E assume_storage_prezeroed). */
  itableZeroed: boolean;
  /** Quota files, placed after the journal in this order (quota.ts). */
  quotaFiles?: readonly QuotaFileRequest[];
}

/**
 * A quota file for create_quota_inodes: its inode (0: a new one, the first free as
 * ext2fs_new_inode picks it) and the file's blocks in the order libext2fs first writes them
 * (each allocated then, from the previous logical block's, as ext2fs_bmap2 does).
 */
export interface QuotaFileRequest {
  ino: number;
  writeOrder: readonly number[];
}

/** A run of blocks mapped at a logical offset. */
export interface Run {
  lblk: number;
  pblk: number;
  len: number;
}

/** How a file's blocks are recorded: an extent tree of depth 0 or 1, or a block map. */
export type FileMap =
  | { kind: "extents"; runs: Run[]; /** the depth-1 leaf, when more than 4 runs */ leaf: number | undefined }
  | { kind: "blockmap"; /** i_block[0..14] */ iBlock: number[]; /** indirect blocks and the pointers they hold */ indirect: Map<number, Uint32Array> };

export interface FileLayout {
  /** Data blocks in logical order. For the journal only the first is kept. */
  first: number;
  /** Data blocks. */
  dataBlocks: number;
  /** Filesystem blocks used, metadata (leaf, indirect blocks) included. */
  totalBlocks: number;
  map: FileMap;
}

export interface Plan {
  readonly geo: Geometry;
  readonly map: BlockMap;
  readonly blockBitmap: Float64Array;
  readonly inodeBitmap: Float64Array;
  readonly inodeTable: Float64Array;
  readonly flags: Uint16Array;
  readonly itableUnused: Uint32Array;
  readonly freeInodes: Uint32Array;
  readonly usedDirs: Uint32Array;
  /** Free blocks per group, final. */
  readonly freeBlocks: Uint32Array;
  readonly totalFreeBlocks: number;
  readonly totalFreeInodes: number;
  readonly root: FileLayout;
  readonly lostFoundIno: number;
  readonly lostFound: FileLayout;
  /** The resize inode's double-indirect block, when resize_inode is on. */
  readonly resizeDind: number | undefined;
  readonly journal: FileLayout | undefined;
  /** s_overhead_clusters */
  readonly overhead: number;
  /** Inodes mke2fs marks in use: 1..first_ino-1, lost+found and a new project quota inode. */
  readonly usedInodes: readonly number[];
  /** The quota files placed, in the order asked. */
  readonly quotaFiles: readonly { ino: number; layout: FileLayout }[];
}

const EXT2_NDIR_BLOCKS = 12;
const EXT2_IND_BLOCK = 12;
const EXT2_DIND_BLOCK = 13;
const EXT2_TIND_BLOCK = 14;

/** Mutable group state while planning. */
class Groups {
  readonly flags: Uint16Array;
  readonly itableUnused: Uint32Array;
  readonly freeInodes: Uint32Array;
  readonly usedDirs: Uint32Array;
  readonly blockBitmap: Float64Array;
  readonly inodeBitmap: Float64Array;
  readonly inodeTable: Float64Array;

  constructor(readonly geo: Geometry, readonly map: BlockMap) {
    const n = geo.groupCount;
    this.flags = new Uint16Array(n);
    this.itableUnused = new Uint32Array(n);
    this.freeInodes = new Uint32Array(n).fill(geo.inodesPerGroup);
    this.usedDirs = new Uint32Array(n);
    this.blockBitmap = new Float64Array(n);
    this.inodeBitmap = new Float64Array(n);
    this.inodeTable = new Float64Array(n);
    // ext2fs_initialize: with group descriptor checksums every group but the last starts
    // BLOCK_UNINIT and every group INODE_UNINIT with its inodes unused, less the reserved ones.
    if (geo.groupDescCsum) {
      let reserved = geo.firstIno;
      for (let g = 0; g < n; g++) {
        if (g !== n - 1) this.flags[g] = EXT4_BG_BLOCK_UNINIT;
        this.flags[g]! |= EXT4_BG_INODE_UNINIT;
        let inodes = geo.inodesPerGroup;
        if (reserved > 0) {
          if (inodes > reserved) {
            inodes -= reserved;
            reserved = 0;
          } else {
            reserved -= inodes;
            inodes = 0;
          }
        }
        this.itableUnused[g] = inodes;
      }
    }
  }

  clearBlockUninit(group: number): void {
    this.flags[group]! &= ~EXT4_BG_BLOCK_UNINIT;
  }

  /** Mark [blk, blk + n) allocated and clear BLOCK_UNINIT on every group it touches. @kernel ext2fs_block_alloc_stats_range */
  allocBlocks(blk: number, n: number): void {
    this.map.markRange(blk, n);
    for (let g = groupOfBlock(this.geo, blk); g <= groupOfBlock(this.geo, blk + n - 1); g++) this.clearBlockUninit(g);
  }

  /** ext2fs_new_block2 + ext2fs_block_alloc_stats2. */
  newBlock(goal: number): number {
    const b = this.map.newBlock(goal);
    this.allocBlocks(b, 1);
    return b;
  }

  /** @kernel ext2fs_inode_alloc_stats2 */
  allocInode(ino: number, isDir: boolean): void {
    const { geo } = this;
    const g = groupOfIno(geo, ino);
    this.freeInodes[g]!--;
    if (isDir) this.usedDirs[g]!++;
    this.flags[g]! &= ~EXT4_BG_INODE_UNINIT;
    if (geo.groupDescCsum) {
      const ipg = geo.inodesPerGroup;
      const firstUnused = ipg - this.itableUnused[g]! + g * ipg + 1;
      if (ino >= firstUnused) this.itableUnused[g] = g * ipg + ipg - ino;
    }
  }
}

/**
 * Group `group`'s bitmaps and inode table, flex_bg-packed or in the group itself.
 * @kernel ext2fs_allocate_group_table (lib/ext2fs/alloc_tables.c)
 */
function allocateGroupTable(gs: Groups, group: number, stride: number): void {
  const { geo, map } = gs;
  const itb = geo.inodeTableBlocks;
  let groupBlk = groupFirstBlock(geo, group);
  let lastBlk = groupLastBlock(geo, group);
  let flexSize = 0;
  let lastGrp = 0;
  let remGrps = 0;
  let tableOffset = 0;
  if (geo.flexBg) {
    flexSize = 1 << geo.logGroupsPerFlex;
    lastGrp = Math.min(group | (flexSize - 1), geo.groupCount - 1);
    remGrps = lastGrp - group + 1;
  }

  let startBlk = groupBlk;
  if (stride > 0 && flexSize === 0) {
    const first = map.getFreeBlocks(groupBlk, lastBlk, 1);
    if (first === undefined) throw fail(`Could not allocate block in group ${group} while trying to allocate filesystem tables`);
    startBlk = first + itb;
    startBlk += (stride * group) % (lastBlk - startBlk + 1);
    if (startBlk >= lastBlk) startBlk = groupBlk;
  }

  /** @kernel flexbg_offset */
  const flexbgOffset = (start: number, elemSize: number): number => {
    const flexbg = Math.floor(group / flexSize);
    let size = remGrps * elemSize;
    if (size > Math.floor(geo.blocksPerGroup / 4)) size = Math.floor(geo.blocksPerGroup / 4);
    if (start !== 0 && start < geo.blocksCount) {
      const b = map.getFreeBlocks(start, start + size, elemSize);
      if (b !== undefined) return b;
    }
    const s = groupFirstBlock(geo, flexSize * flexbg);
    const lastG = Math.min(group | (flexSize - 1), geo.groupCount - 1);
    const lb = groupLastBlock(geo, lastG);
    return map.getFreeBlocks(s, lb, size) ?? map.getFreeBlocks(s, lb, elemSize) ?? map.getFreeBlocks(0, lb, elemSize) ?? 0;
  };

  /** A table block allocated for a flex group: charged to the group it lands in. */
  const chargeFlex = (blk: number, n: number): void => {
    if (flexSize === 0) {
      map.markRange(blk, n);
      return;
    }
    gs.allocBlocks(blk, n);
  };

  if (flexSize > 0) {
    let prev = 0;
    tableOffset = flexSize;
    if (group % flexSize) prev = gs.blockBitmap[group - 1]! + 1;
    else if (lastGrp === geo.groupCount - 1) {
      // The last flex group keeps its tables contiguous.
      tableOffset = lastGrp & (flexSize - 1);
      tableOffset = tableOffset === 0 ? flexSize : tableOffset + 1;
    }
    startBlk = flexbgOffset(prev, 1);
    lastBlk = groupLastBlock(geo, lastGrp);
  }
  const bb = map.getFreeBlocks(startBlk, lastBlk, 1) ?? map.getFreeBlocks(groupBlk, lastBlk, 1);
  if (bb === undefined) throw fail("Could not allocate block in ext2 filesystem while trying to allocate filesystem tables");
  chargeFlex(bb, 1);
  gs.blockBitmap[group] = bb;

  if (flexSize > 0) {
    const prev = group % flexSize ? gs.inodeBitmap[group - 1]! + 1 : bb + tableOffset;
    startBlk = flexbgOffset(prev, 1);
    lastBlk = groupLastBlock(geo, lastGrp);
  }
  const ib = map.getFreeBlocks(startBlk, lastBlk, 1) ?? map.getFreeBlocks(groupBlk, lastBlk, 1);
  if (ib === undefined) throw fail("Could not allocate block in ext2 filesystem while trying to allocate filesystem tables");
  chargeFlex(ib, 1);
  gs.inodeBitmap[group] = ib;

  if (flexSize > 0) {
    const prev = group % flexSize ? gs.inodeTable[group - 1]! + itb : ib + tableOffset;
    groupBlk = flexbgOffset(prev, itb);
    lastBlk = groupLastBlock(geo, lastGrp);
  }
  const it = map.getFreeBlocks(groupBlk, lastBlk, itb);
  if (it === undefined) throw fail("Could not allocate block in ext2 filesystem while trying to allocate filesystem tables");
  chargeFlex(it, itb);
  gs.inodeTable[group] = it;
}

/** The goal for an inode without blocks: its (flex) group's first block. @kernel ext2fs_find_inode_goal */
function inodeGoal(geo: Geometry, ino: number): number {
  let g = groupOfIno(geo, ino);
  if (geo.logGroupsPerFlex) g &= ~((1 << geo.logGroupsPerFlex) - 1);
  return groupFirstBlock(geo, g);
}

/**
 * A directory of `n` blocks: the first from the inode's goal (ext2fs_mkdir), each
 * further one from the previous (ext2fs_expand_dir). Directories stay in direct
 * blocks (at most 12), so a block map needs no indirect blocks.
 */
function allocDirectory(gs: Groups, ino: number, n: number, extents: boolean): FileLayout {
  const blocks: number[] = [];
  let goal = inodeGoal(gs.geo, ino);
  for (let i = 0; i < n; i++) {
    const b = gs.newBlock(goal);
    blocks.push(b);
    goal = b;
  }
  return { first: blocks[0]!, dataBlocks: n, totalBlocks: n, map: fileMapOf(blocks, extents) };
}

/** Runs of consecutive blocks as an extent list or a direct block map. */
function fileMapOf(blocks: readonly number[], extents: boolean): FileMap {
  if (!extents) {
    const iBlock = new Array<number>(15).fill(0);
    blocks.forEach((b, i) => (iBlock[i] = b));
    return { kind: "blockmap", iBlock, indirect: new Map() };
  }
  const runs: Run[] = [];
  blocks.forEach((b, i) => {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.pblk + last.len === b && last.len < EXT_INIT_MAX_LEN) last.len++;
    else runs.push({ lblk: i, pblk: b, len: 1 });
  });
  return { kind: "extents", runs, leaf: undefined };
}

/** Blocks of lost+found: mke2fs grows it to 16 KiB, and to at least two blocks. @kernel create_lost_and_found */
export function lostFoundBlocks(blockSize: number): number {
  let size = 0;
  let n = 1;
  for (let i = 1; i < EXT2_NDIR_BLOCKS; i++) {
    size += blockSize;
    if (size >= 16 * 1024 && size >= 2 * blockSize) break;
    n++;
  }
  return n;
}

/** @kernel get_midpoint_journal_block (lib/ext2fs/mkjournal.c) */
function midpointJournalBlock(geo: Geometry, map: BlockMap): number {
  let group = groupOfBlock(geo, Math.floor((geo.blocksCount - geo.firstDataBlock) / 2));
  const logFlex = 1 << geo.logGroupsPerFlex;
  let start: number;
  if (geo.logGroupsPerFlex && group > logFlex) {
    group &= ~(logFlex - 1);
    while (group < geo.groupCount && map.freeInGroup(group) === 0) group++;
    if (group === geo.groupCount) group = 0;
    start = group;
  } else {
    start = group > 0 ? group - 1 : group;
  }
  const end = group + 1 < geo.groupCount ? group + 1 : group;
  group = start;
  for (let i = start + 1; i <= end; i++) if (map.freeInGroup(i) > map.freeInGroup(group)) group = i;
  return groupFirstBlock(geo, group);
}

/**
 * The journal as ext2fs_fallocate lays out an extent-mapped file: free runs from the
 * goal, at most 32768 blocks each; inserting the fifth run splits the in-inode root,
 * and the new leaf goes at the first free block from just before the first run.
 * @kernel extent_fallocate / ext_falloc_helper (lib/ext2fs/fallocate.c), extent_node_split
 */
function allocExtentFile(gs: Groups, goal: number, n: number): FileLayout {
  const { geo, map } = gs;
  let pblk = map.findFirstZero(goal, geo.blocksCount - 1);
  if (pblk === -1) pblk = goal;
  const runs: Run[] = [];
  let leaf: number | undefined;
  const leafCapacity = Math.floor((geo.blockSize - 12) / 12);
  let lblk = 0;
  while (lblk < n) {
    const r = map.newRange(pblk, Math.min(n - lblk, EXT_INIT_MAX_LEN));
    gs.allocBlocks(r.start, r.len);
    runs.push({ lblk, pblk: r.start, len: r.len });
    if (runs.length === 5) leaf = gs.newBlock(runs[0]!.pblk - 1);
    if (runs.length > leafCapacity) throw fail(`Journal of ${n} blocks is too fragmented for a one-level extent tree`);
    lblk += r.len;
    pblk = r.start + r.len;
    if (pblk >= geo.blocksCount) pblk = geo.firstDataBlock;
  }
  return { first: runs[0]!.pblk, dataBlocks: n, totalBlocks: n + (leaf === undefined ? 0 : 1), map: { kind: "extents", runs, leaf } };
}

/**
 * A block-mapped file allocated block by block as ext2fs_bmap2(BMAP_ALLOC) does: each
 * data or indirect block from the previous pointer at its level (the inode's goal for
 * the first), indirect blocks allocated just before the blocks they map.
 * @kernel ext2fs_bmap2, block_ind_bmap, block_dind_bmap, block_tind_bmap (lib/ext2fs/bmap.c)
 */
function allocBlockMappedFile(gs: Groups, ino: number, n: number): FileLayout {
  const apb = gs.geo.blockSize / 4;
  const iBlock = new Array<number>(15).fill(0);
  const indirect = new Map<number, Uint32Array>();
  let meta = 0;
  const newInd = (goal: number): number => {
    const b = gs.newBlock(goal);
    indirect.set(b, new Uint32Array(apb));
    meta++;
    return b;
  };
  /** Slot `nr` of indirect block `ind`, allocating it (goal: previous slot, else the block itself). */
  const slot = (ind: number, nr: number, alloc: (goal: number) => number): number => {
    const t = indirect.get(ind)!; // allocated by newInd before use
    if (t[nr] === 0) t[nr] = alloc(nr > 0 ? t[nr - 1]! : ind);
    return t[nr]!;
  };
  const data = (goal: number): number => gs.newBlock(goal);
  for (let l = 0; l < n; l++) {
    if (l < EXT2_NDIR_BLOCKS) {
      iBlock[l] = data(l > 0 ? iBlock[l - 1]! : inodeGoal(gs.geo, ino));
      continue;
    }
    let nr = l - EXT2_NDIR_BLOCKS;
    if (nr < apb) {
      if (iBlock[EXT2_IND_BLOCK] === 0) iBlock[EXT2_IND_BLOCK] = newInd(iBlock[EXT2_IND_BLOCK - 1]!);
      slot(iBlock[EXT2_IND_BLOCK]!, nr, data);
      continue;
    }
    nr -= apb;
    if (nr < apb * apb) {
      if (iBlock[EXT2_DIND_BLOCK] === 0) iBlock[EXT2_DIND_BLOCK] = newInd(iBlock[EXT2_IND_BLOCK]!);
      const ind = slot(iBlock[EXT2_DIND_BLOCK]!, Math.floor(nr / apb), newInd);
      slot(ind, nr % apb, data);
      continue;
    }
    nr -= apb * apb;
    if (iBlock[EXT2_TIND_BLOCK] === 0) iBlock[EXT2_TIND_BLOCK] = newInd(iBlock[EXT2_DIND_BLOCK]!);
    const dind = slot(iBlock[EXT2_TIND_BLOCK]!, Math.floor(nr / (apb * apb)), newInd);
    const ind = slot(dind, Math.floor(nr / apb) % apb, newInd);
    slot(ind, nr % apb, data);
  }
  return { first: iBlock[0]!, dataBlocks: n, totalBlocks: n + meta, map: { kind: "blockmap", iBlock, indirect } };
}

/**
 * Lay out a new filesystem in mke2fs' order: group tables, inode-table flags, root,
 * lost+found, reserved inodes, the bad-blocks inode, the resize inode, the journal.
 */
export function planLayout(input: LayoutInput): Plan {
  const { geo } = input;
  const map = new BlockMap(geo);
  const gs = new Groups(geo, map);
  const extents = (geo.features.s_feature_incompat & EXT4_FEATURE_INCOMPAT_EXTENTS) !== 0;

  for (let g = 0; g < geo.groupCount; g++) allocateGroupTable(gs, g, input.stride ?? 0);
  let overhead = 0;
  for (let g = 0; g < geo.groupCount; g++) overhead += map.usedInGroup(g);

  // write_inode_tables
  if (!input.lazyItableInit || input.itableZeroed) for (let g = 0; g < geo.groupCount; g++) gs.flags[g]! |= EXT4_BG_INODE_ZEROED;

  const root = allocDirectory(gs, EXT4_ROOT_INO, 1, extents);
  gs.allocInode(EXT4_ROOT_INO, true);
  const lostFoundIno = geo.firstIno; // ext2fs_new_inode: the first free inode from s_first_ino
  const lostFound = allocDirectory(gs, lostFoundIno, lostFoundBlocks(geo.blockSize), extents);
  gs.allocInode(lostFoundIno, true);
  for (let ino = EXT4_ROOT_INO + 1; ino < geo.firstIno; ino++) gs.allocInode(ino, false);
  gs.allocInode(1, false);

  let resizeDind: number | undefined;
  if ((geo.features.s_feature_compat & EXT4_FEATURE_COMPAT_RESIZE_INODE) !== 0) {
    // Made even with no reserved GDT blocks (1 group of 64 KiB blocks): a bare DIND block.
    const sbBlk = geo.firstDataBlock;
    resizeDind = gs.newBlock(sbBlk + geo.descBlocks + geo.reservedGdtBlocks + 2 + geo.inodeTableBlocks);
  }

  let journal: FileLayout | undefined;
  if (input.journalBlocks > 0) {
    const goal = input.journalGoal ?? midpointJournalBlock(geo, map);
    journal = extents ? allocExtentFile(gs, goal, input.journalBlocks) : allocBlockMappedFile(gs, 8, input.journalBlocks);
    overhead += input.journalBlocks;
  }
  overhead += geo.firstDataBlock;

  // create_quota_inodes: after the journal; blocks from the previous logical block's.
  const quotaFiles: { ino: number; layout: FileLayout }[] = [];
  const newInodes: number[] = [];
  for (const q of input.quotaFiles ?? []) {
    let ino = q.ino;
    if (ino === 0) {
      ino = lostFoundIno + 1 + newInodes.length;
      gs.allocInode(ino, false);
      newInodes.push(ino);
    }
    const phys = new Map<number, number>();
    for (const l of q.writeOrder) phys.set(l, gs.newBlock(phys.get(l - 1) ?? inodeGoal(geo, ino)));
    const blocks = Array.from({ length: phys.size }, (_, l) => phys.get(l)!); // writeOrder covers 0..n-1
    if (blocks.length > EXT2_NDIR_BLOCKS) throw fail(`Quota file of ${blocks.length} blocks is larger than mkfs makes`);
    quotaFiles.push({ ino, layout: { first: blocks[0]!, dataBlocks: blocks.length, totalBlocks: blocks.length, map: fileMapOf(blocks, extents) } });
  }

  const freeBlocks = new Uint32Array(geo.groupCount);
  let totalFreeBlocks = 0;
  let totalFreeInodes = 0;
  for (let g = 0; g < geo.groupCount; g++) {
    freeBlocks[g] = map.freeInGroup(g);
    totalFreeBlocks += freeBlocks[g]!;
    totalFreeInodes += gs.freeInodes[g]!;
  }
  const usedInodes: number[] = [];
  for (let ino = 1; ino < geo.firstIno; ino++) usedInodes.push(ino);
  usedInodes.push(lostFoundIno, ...newInodes);

  return {
    geo, map,
    blockBitmap: gs.blockBitmap, inodeBitmap: gs.inodeBitmap, inodeTable: gs.inodeTable,
    flags: gs.flags, itableUnused: gs.itableUnused, freeInodes: gs.freeInodes, usedDirs: gs.usedDirs,
    freeBlocks, totalFreeBlocks, totalFreeInodes,
    root, lostFoundIno, lostFound, resizeDind, journal, overhead, usedInodes, quotaFiles,
  };
}
