/**
 * libext2fs check_inode_block_sanity, as a pure function of a chunk of inode table: each
 * inode's checksum verdict and which blocks look like garbage (more than half of a block's
 * inodes failing their checksum or looking insane, e2fsck's "inode seems to contain
 * garbage"). Pure and self-contained (bytes and a few numbers in, bytes out), so that a
 * caller may run it away from the main thread: the CLI does, in a worker, for large volumes
 * (tools/cli/fsck_offload.ts), while pass 1 checks the previous chunk.
 */

import { inodeChecksumSeed, verifyInodeChecksum } from "../format/checksum.js";
import { EXT4_EXTENTS_FL, EXT4_GOOD_OLD_INODE_SIZE, EXT4_INLINE_DATA_FL, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, inodeStruct } from "../format/inode.js";
import { extentHeaderOk } from "./blockmap.js";

/** What the sanity check needs to know of the volume (structured-clone safe). */
export interface SanityGeometry {
  readonly inodeSize: number;
  readonly blockSize: number;
  readonly metadataCsum: boolean;
  readonly csumSeed: number;
  readonly firstDataBlock: number;
  readonly blocksCount: number;
}

export interface SanityResult {
  /** Per inode: 1 checksum good (or all-zero inode), 2 bad, 0 not computed (no metadata_csum, or skipped in a garbage block). */
  readonly csums: Uint8Array;
  /** Per block of the chunk: 1 when it seems to contain garbage. */
  readonly insane: Uint8Array;
}

/** inodeBlockSanity run elsewhere (a worker thread), for one pass 1 scan. */
export interface SanityWorker {
  /**
   * Judge a chunk. The chunk is handed over and given back with the result: a worker takes
   * its buffer by transfer, so the caller's view is detached until the promise settles.
   * `buf` must start at offset 0 of its buffer.
   */
  run(buf: Uint8Array, firstIno: number, count: number, g: SanityGeometry): Promise<SanityResult & { buf: Uint8Array }>;
  close(): Promise<void>;
}

/**
 * Makes a SanityWorker for a scan of `inodes` inodes, or declines (undefined) when the scan
 * is too small to be worth a thread.
 */
export type SanityWorkerFactory = (inodes: number) => SanityWorker | undefined;

const OFF_MODE = inodeStruct.offsetOf("i_mode");
const OFF_LINKS = inodeStruct.offsetOf("i_links_count");
const OFF_FLAGS = inodeStruct.offsetOf("i_flags");
const OFF_IBLOCK = inodeStruct.offsetOf("i_block");
const OFF_GENERATION = inodeStruct.offsetOf("i_generation");
const OFF_SIZE_LO = inodeStruct.offsetOf("i_size_lo");
const OFF_SIZE_HIGH = inodeStruct.offsetOf("i_size_high");
const EXT2_N_BLOCKS = 15;

const u16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

/** The inode's checksum verifies, or its first 128 bytes are all zero (never used). */
export function inodeCsumOk(buf: Uint8Array, off: number, ino: number, g: SanityGeometry): boolean {
  const gen = u32(buf, off + OFF_GENERATION);
  if (verifyInodeChecksum(buf, off, g.inodeSize, inodeChecksumSeed(g.csumSeed, ino, gen))) return true;
  for (let i = 0; i < EXT4_GOOD_OLD_INODE_SIZE; i++) if (buf[off + i] !== 0) return false;
  return true;
}

/** libext2fs extent_head_looks_insane || block_map_looks_insane. */
export function inodeLooksInsane(buf: Uint8Array, off: number, g: SanityGeometry): boolean {
  const flags = u32(buf, off + OFF_FLAGS);
  const ib = off + OFF_IBLOCK;
  if ((flags & EXT4_EXTENTS_FL) !== 0) return !extentHeaderOk(buf, 60, ib);
  if (flags & EXT4_INLINE_DATA_FL) return false;
  const type = u16(buf, off + OFF_MODE) & S_IFMT;
  if (type !== S_IFREG && type !== S_IFLNK && type !== S_IFDIR) return false;
  const size = u32(buf, off + OFF_SIZE_LO) + u32(buf, off + OFF_SIZE_HIGH) * 2 ** 32;
  if (type === S_IFLNK && size <= 60) return false;
  if (u16(buf, off + OFF_LINKS) === 0) return false;
  let bad = 0;
  for (let i = 0; i < EXT2_N_BLOCKS; i++) {
    const b = u32(buf, ib + i * 4);
    if (b !== 0 && (b < g.firstDataBlock || b >= g.blocksCount)) bad++;
  }
  return bad > EXT2_N_BLOCKS / 2;
}

/** The `count` inodes from `firstIno` at the start of `buf`. @e2fsprogs check_inode_block_sanity */
export function inodeBlockSanity(buf: Uint8Array, firstIno: number, count: number, g: SanityGeometry): SanityResult {
  const isz = g.inodeSize;
  const ipb = Math.floor(g.blockSize / isz);
  const csums = new Uint8Array(count);
  const insane = new Uint8Array(Math.ceil((count * isz) / g.blockSize));
  if (ipb < 2) {
    // One inode per block: no block is judged, but the verdicts are still wanted.
    if (g.metadataCsum) for (let k = 0; k < count; k++) csums[k] = inodeCsumOk(buf, k * isz, firstIno + k, g) ? 1 : 2;
    return { csums, insane };
  }
  let badness = 0;
  for (let k = 0; k < count; ) {
    const ino = firstIno + k;
    const off = k * isz;
    let bad = false;
    if (g.metadataCsum) {
      const ok = inodeCsumOk(buf, off, ino, g);
      csums[k] = ok ? 1 : 2;
      if (!ok) bad = true;
    }
    if (!bad && inodeLooksInsane(buf, off, g)) bad = true;
    if (bad) badness++;
    if (badness > ipb / 2) {
      insane[Math.floor(off / g.blockSize)] = 1;
      k += Math.min(ipb - ((ino - 1) % ipb), count - k);
      badness = 0;
      continue;
    }
    if (ino % ipb === 0) badness = 0;
    k++;
  }
  return { csums, insane };
}
