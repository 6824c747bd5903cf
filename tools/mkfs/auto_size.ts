/**
 * The size `ext4ts mkfs -d DIR IMAGE` picks when SIZE is omitted (mke2fs itself needs a
 * size or a device; genext2fs-style tools size from the tree).
 *
 * The rule: the smallest whole number of MiB, at least 4, for which the filesystem these
 * options make (laid out exactly as mkfs will lay it out: size class and its block size
 * and inode ratio, journal, inode tables, reserved GDT blocks, lost+found) has
 *   - free blocks, beyond the -m reserved percentage (5% by default, kept free as on any
 *     mke2fs volume), at least 10% more than the tree needs, and
 *   - free inodes at least 10% more than the tree has inodes: from the size class's inode
 *     ratio when it gives that many, else (without -N or -i) with -N raised to it, so a
 *     tree of many small files gets a small image with more inodes, not a huge one.
 * So a new image holds the tree with about 15% of its data space still free, like a
 * volume mke2fs made for the tree's size and then filled to 85%. Without -b, a size class
 * whose block size cannot hold the tree's longest symlink or largest xattr set (mke2fs's
 * 1 KiB blocks below 512 MiB) gets 4 KiB blocks instead. What the tree needs is
 * counted by scanHostTree (tools/cli/populate.ts): file data without holes, directory,
 * symlink, extent-index and xattr blocks.
 */

import { planMkfs } from "./mkfs.js";
import { isFsError } from "../../src/errors.js";
import { fail, resolveParams, type MkfsOptions } from "./options.js";

/** What a tree needs: see HostTreeTotals. */
export interface TreeNeeds {
  readonly inodes: number;
  /** The smallest block size the tree's symlinks and xattr sets fit in. */
  readonly minBlockSize: number;
  blocks(blockSize: number, inodeSize: number): number;
}

export interface AutoSize {
  /** SIZE for mkfs, e.g. "37M". */
  readonly size: string;
  /** -N for mkfs, when the size class's inode ratio gives too few inodes. */
  readonly inodeCount?: string;
  /** -b for mkfs, when the size class's block size is too small for the tree's symlinks or xattrs. */
  readonly blockSizeOption?: string;
  readonly mib: number;
  readonly blockSize: number;
  /** Blocks and inodes the tree needs, before headroom. */
  readonly needBlocks: number;
  readonly needInodes: number;
  /** Free blocks (beyond the reserved ones) and free inodes of the picked size. */
  readonly freeBlocks: number;
  readonly freeInodes: number;
}

const HEADROOM = 1.1;
const MIN_MIB = 4;

/** The smallest size that fits `needs` with the headroom above. Throws when none does (e.g. -N too small). */
export function autoSize(needs: TreeNeeds, options: MkfsOptions, image: string): AutoSize {
  const ids = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const wantInodes = Math.ceil(needs.inodes * HEADROOM);
  // Without -N or -i, inodes come from the size class's ratio, or from -N when the ratio gives too few.
  const mayRaiseInodes = options.inodeCount === undefined && options.bytesPerInode === undefined;
  const measure = (mib: number, inodeCount: string | undefined): { fits: AutoSize | undefined; blocksShort: number; inodesShort: number } => {
    const o: MkfsOptions = { ...options, size: `${mib}M`, ...(inodeCount !== undefined ? { inodeCount } : {}) };
    let params = resolveParams(o, { bytes: undefined, isDevice: false, name: image }, ids);
    // mke2fs's "small" and "floppy" classes pick 1 KiB blocks: too small for long symlinks or big xattr sets.
    const blockSizeOption = options.blockSize === undefined && params.blockSize < needs.minBlockSize ? String(Math.min(needs.minBlockSize, 4096)) : undefined;
    if (blockSizeOption !== undefined) params = resolveParams({ ...o, blockSize: blockSizeOption }, { bytes: undefined, isDevice: false, name: image }, ids);
    const { plan } = planMkfs(params, image);
    const needBlocks = needs.blocks(params.blockSize, params.inodeSize);
    const wantBlocks = Math.ceil(needBlocks * HEADROOM);
    const freeBlocks = plan.totalFreeBlocks - params.rBlocksCount;
    const freeInodes = plan.totalFreeInodes;
    const blocksShort = wantBlocks / Math.max(1, freeBlocks);
    const inodesShort = wantInodes / Math.max(1, freeInodes);
    if (blocksShort > 1 || inodesShort > 1) return { fits: undefined, blocksShort, inodesShort };
    return {
      fits: { size: `${mib}M`, mib, ...(inodeCount !== undefined ? { inodeCount } : {}), ...(blockSizeOption !== undefined ? { blockSizeOption } : {}), blockSize: params.blockSize, needBlocks, needInodes: needs.inodes, freeBlocks, freeInodes },
      blocksShort, inodesShort,
    };
  };
  /** A size too small for the options (e.g. for -N's inode tables) is one that does not fit. */
  const measureOrMiss = (mib: number, inodeCount: string | undefined): ReturnType<typeof measure> => {
    try {
      return measure(mib, inodeCount);
    } catch (e) {
      if (!isFsError(e)) throw e;
      return { fits: undefined, blocksShort: 2, inodesShort: 2 };
    }
  };
  const tryMib = (mib: number): { fits: AutoSize | undefined; factor: number } => {
    let m = measureOrMiss(mib, undefined);
    if (m.fits === undefined && m.blocksShort <= 1 && m.inodesShort > 1) {
      if (options.inodeCount !== undefined) {
        throw fail(`The tree needs ${needs.inodes} inodes (${wantInodes} with headroom), more than -N ${options.inodeCount} gives: raise -N or give SIZE`);
      }
      if (mayRaiseInodes) m = measureOrMiss(mib, String(wantInodes + 16)); // + the reserved inodes and lost+found
    }
    if (m.fits !== undefined) return { fits: m.fits, factor: 1 };
    return { fits: undefined, factor: mayRaiseInodes && m.blocksShort > 1 ? m.blocksShort : Math.max(m.blocksShort, m.inodesShort) };
  };
  // Grow from the minimum until it fits, then bisect between the last miss and the first fit.
  let lo = 0;
  let mib = MIN_MIB;
  for (let i = 0; i < 100; i++) {
    const r = tryMib(mib);
    if (r.fits !== undefined) {
      let best = r.fits;
      let hi = mib;
      while (hi - lo > 1 && lo >= MIN_MIB) {
        const mid = Math.floor((lo + hi) / 2);
        const m = tryMib(mid).fits;
        if (m !== undefined) {
          hi = mid;
          best = m;
        } else {
          lo = mid;
        }
      }
      return best;
    }
    lo = mib;
    mib = Math.max(mib + 1, Math.ceil(mib * Math.min(r.factor, 64) * 1.01));
  }
  throw fail(`Could not find a filesystem size that holds the tree (${needs.inodes} inodes); give SIZE`);
}
