/**
 * Passes 1B-1D: blocks claimed more than once (e2fsck pass1b.c). Run only when pass 1 found
 * a block claimed twice. 1B walks every inode in use again to learn which inodes claim each
 * multiply-claimed cluster, 1C looks the directories through for the names of those inodes,
 * 1D reports each one with the files (and metadata) it shares with. Declining both "Clone"
 * and "Delete file" leaves the volume in error, as in e2fsck -n.
 */

import { decodeInodeFast } from "./inode_fast.js";
import { EXT4_BG_INODE_UNINIT, itableUnused } from "../format/group_desc.js";
import { EXT4_BAD_INO, EXT4_INLINE_DATA_FL, EXT4_RESIZE_INO, EXT4_ROOT_INO, type RawInode } from "../format/inode.js";
import type { CheckContext } from "./context.js";
import { iterateBlocks } from "./blockmap.js";
import { hasValidBlocks } from "./pass1.js";
import { listDir, readInode, type PathNamer } from "./paths.js";
import { canClone, clone, dupClear, dupTest } from "./clone.js";
import {
  PR_1_DUP_BLOCKS_PREENSTOP, PR_1B_BLOCK_ITERATE, PR_1B_DUP_BLOCK_HEADER, PR_1D_CLONE_ERROR, PR_1D_CLONE_QUESTION, PR_1D_DELETE_QUESTION, PR_1D_DUP_BLOCKS_DEALT,
  PR_1D_DUP_FILE, PR_1D_DUP_FILE_LIST, PR_1D_NUM_DUP_INODES, PR_1D_SHARE_METADATA,
} from "./problem.js";

/** An inode with multiply-claimed clusters (e2fsck's dup_inode). */
interface DupInode {
  raw: RawInode;
  /** Its clusters, one entry per claim, in claim order. */
  clusters: number[];
  /** The directory that names it (pass 1C), 0 if none was found. */
  dir: number;
}

/**
 * ext2fs_block_iterate3 then the EA block, as pass 1B walks an inode: `fn` gets each
 * non-zero block with its counter (-5 for the EA block, e2fsck's BLOCK_COUNT_EXTATTR).
 */
async function walkClaims(c: CheckContext, raw: RawInode, ino: number, fn: (b: number, cnt: number) => void): Promise<string | undefined> {
  const v = c.v;
  const fileAcl = raw.i_file_acl_lo + (v.f.is64bit ? raw.l_i_file_acl_high * 2 ** 32 : 0);
  let err: string | undefined;
  const inline = v.f.inlineData && (raw.i_flags & EXT4_INLINE_DATA_FL) !== 0;
  if (!inline && (hasValidBlocks(raw, fileAcl) || ino === EXT4_BAD_INO)) {
    err = await iterateBlocks(v, raw, false, (b, cnt) => {
      if (b !== 0) fn(b, cnt);
      return true;
    });
  }
  if (fileAcl !== 0) fn(fileAcl, -5);
  return err;
}

function formatRanges(blocks: number[]): string {
  let s = "";
  for (let i = 0; i < blocks.length; ) {
    let j = i;
    while (j + 1 < blocks.length && blocks[j + 1] === blocks[j]! + 1) j++;
    s += i === j ? ` ${blocks[i]!}` : ` ${blocks[i]!}--${blocks[j]!}`;
    i = j + 1;
  }
  return s;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** asctime() in UTC without its newline, as e2fsck's %IM prints a time (with TZ=GMT). */
export function asctimeUtc(seconds: number): string {
  const d = new Date(seconds * 1000);
  const p2 = (x: number): string => String(x).padStart(2, "0");
  return `${DAYS[d.getUTCDay()]!} ${MONTHS[d.getUTCMonth()]!} ${String(d.getUTCDate()).padStart(2, " ")} `
    + `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** e2fsck check_if_fs_cluster: superblock and descriptors, inode table, bitmaps of some group. */
function isFsCluster(c: CheckContext, cluster: number): boolean {
  const v = c.v;
  const r = v.clusterRatio;
  const b2c = (b: number): number => Math.floor(b / r);
  let first = v.firstDataBlock;
  for (let g = 0; g < v.groupCount; g++, first += v.blocksPerGroup) {
    if (v.superAndBgd(g).superBlk !== 0 || g === 0) {
      if (cluster >= b2c(first) && cluster <= b2c(first + v.descBlocks)) return true;
    }
    const it = v.inodeTableLoc(g);
    if (it !== 0 && cluster >= b2c(it) && cluster <= b2c(it + v.itableBlocks - 1)) return true;
    if (cluster === b2c(v.blockBitmapLoc(g)) || cluster === b2c(v.inodeBitmapLoc(g))) return true;
  }
  return false;
}

export async function pass1b(c: CheckContext, names: PathNamer, header: (title: string) => void): Promise<void> {
  const dup = c.blockDup;
  if (dup === null) return;
  const v = c.v;
  const r = c.r;
  // @e2fsprogs e2fsck_pass1: a preen says so before the passes that follow (they stop it).
  if (r.mode === "preen") r.fix(PR_1_DUP_BLOCKS_PREENSTOP);
  const ratio = v.clusterRatio;
  /** cluster -> claiming inodes, most recent claim first (e2fsck prepends to its lists). */
  const claimants = new Map<number, number[]>();
  const inodes = new Map<number, DupInode>();
  let dupInodeCount = 0;
  const isz = v.inodeSize;
  const visit = async (ino: number, raw: RawInode): Promise<void> => {
    const mine: number[] = [];
    let curCluster = -1;
    let physCluster = -1;
    const err = await walkClaims(c, raw, ino, (b, cnt) => {
      const lc = Math.floor(cnt / ratio);
      const pc = Math.floor(b / ratio);
      if (dupTest(c, b)) {
        if (ino !== EXT4_BAD_INO) mine.push(b);
        if (cnt < 0 || lc !== curCluster || pc !== physCluster) {
          const list = claimants.get(pc);
          if (list === undefined) claimants.set(pc, [ino]);
          else list.unshift(ino);
          let d = inodes.get(ino);
          if (d === undefined) {
            d = { raw, clusters: [], dir: ino === EXT4_ROOT_INO ? EXT4_ROOT_INO : 0 };
            inodes.set(ino, d);
          }
          d.clusters.push(pc);
        }
      }
      curCluster = lc;
      physCluster = pc;
    });
    if (mine.length > 0) {
      r.fix(PR_1B_DUP_BLOCK_HEADER, { ino, str: formatRanges(mine) }, { ino, block: mine[0]! });
    }
    if (inodes.has(ino) && (ino >= v.firstIno || ino === EXT4_ROOT_INO)) dupInodeCount++;
    if (err !== undefined) r.fix(PR_1B_BLOCK_ITERATE, { ino, str: err });
  };
  for (let g = 0; g < v.groupCount; g++) {
    const gd = v.group(g);
    if (v.f.groupDescCsum && (gd.bg_flags & EXT4_BG_INODE_UNINIT) !== 0) continue;
    let n = v.inodesPerGroup;
    if (v.f.groupDescCsum) n = Math.max(0, n - itableUnused(gd, v.descSize));
    const it = v.inodeTableLoc(g);
    if (n === 0 || it === 0 || it < v.firstDataBlock || it + v.itableBlocks > v.blocksCount) continue;
    const first = g * v.inodesPerGroup + 1;
    const blocks = Math.ceil((n * isz) / v.blockSize);
    const buf = await v.cache.readUncached(it, blocks);
    for (let k = 0; k < n; k++) {
      const ino = first + k;
      if (ino !== EXT4_BAD_INO && (!c.inodeUsed.test(ino) || c.inodeBb.test(ino))) continue;
      await visit(ino, decodeInodeFast(buf, k * isz, isz));
    }
  }

  // Pass 1C: which directory names each of them (the last one seen before all were found).
  header("Pass 1C: Scanning directories for inodes with multiply-claimed blocks");
  let left = dupInodeCount;
  const dirOrder: number[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < c.dblist.count; i++) {
    const d = c.dblist.ino.get(i);
    if (!seen.has(d)) {
      seen.add(d);
      dirOrder.push(d);
    }
  }
  search: for (const dir of dirOrder) {
    if (left <= 0) break;
    const entries = await listDir(c, dir);
    for (const e of entries ?? []) {
      if (e.ino > v.inodesCount) continue;
      if (e.ino < v.firstIno || isDotName(e.name)) continue;
      const d = inodes.get(e.ino);
      if (d === undefined) continue;
      d.dir = dir;
      if (--left <= 0) break search;
    }
  }

  // Pass 1D: report.
  header("Pass 1D: Reconciling multiply-claimed blocks");
  c.dupInodes += dupInodeCount;
  r.fix(PR_1D_NUM_DUP_INODES, { num: c.dupInodes });
  let metaData = false; // e2fsck never resets it between inodes
  /** Claims left on each cluster once earlier inodes were cloned (e2fsck's num_bad; unset: all of them). */
  const numBad = new Map<number, number>();
  const mtime = (raw: RawInode): string => asctimeUtc(raw.i_mtime | 0);
  for (const ino of [...inodes.keys()].sort((a, b) => a - b)) {
    if (ino === EXT4_BAD_INO || ino === EXT4_RESIZE_INO) continue;
    const d = inodes.get(ino)!;
    const shared: number[] = [];
    let fileOk = true;
    for (const cl of [...d.clusters].reverse()) {
      const list = claimants.get(cl) ?? [];
      if ((numBad.get(cl) ?? list.length) > 1) fileOk = false;
      if (isFsCluster(c, cl)) {
        fileOk = false;
        metaData = true;
      }
      for (const o of list) if (o !== ino && !shared.includes(o)) shared.push(o);
    }
    const count = metaData ? shared.length + 1 : shared.length;
    r.fix(PR_1D_DUP_FILE, { ino, path: await names.pathname(d.dir, ino), str: mtime(d.raw), blkcount: d.clusters.length, num: count }, { ino });
    if (metaData) r.fix(PR_1D_SHARE_METADATA);
    for (const o of shared) {
      const t = inodes.get(o);
      if (t === undefined) continue;
      r.fix(PR_1D_DUP_FILE_LIST, { ino: o, path: await names.pathname(t.dir, o), str: mtime(t.raw) });
    }
    if (fileOk && count !== 0) {
      r.fix(PR_1D_DUP_BLOCKS_DEALT, { ino });
      continue;
    }
    const raw = (await readInode(c, ino))?.raw ?? d.raw;
    if (!canClone(c, raw)) {
      r.fix(PR_1D_CLONE_QUESTION, { ino });
      r.fix(PR_1D_DELETE_QUESTION, { ino });
      continue;
    }
    if (r.ask(PR_1D_CLONE_QUESTION, { ino })) {
      // Each claim this inode gives up makes the block less shared for the inodes after it.
      // @e2fsprogs decrement_badcount: a block claimed once more is no longer multiply-claimed.
      const err = await clone(c, ino, (b) => {
        const cl = Math.floor(b / ratio);
        if (isFsCluster(c, cl)) return;
        const left = (numBad.get(cl) ?? claimants.get(cl)?.length ?? 1) - 1;
        numBad.set(cl, left);
        if (left <= 1) dupClear(c, b);
      });
      if (err === undefined) continue;
      r.fix(PR_1D_CLONE_ERROR, { ino, str: err });
    }
    r.fix(PR_1D_DELETE_QUESTION, { ino });
  }
}

function isDotName(name: Uint8Array): boolean {
  return (name.length === 1 && name[0] === 0x2e) || (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e);
}
