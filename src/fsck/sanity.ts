/**
 * libext2fs check_inode_block_sanity, as a pure function of a chunk of inode table: each
 * inode's checksum verdict and which blocks look like garbage (more than half of a block's
 * inodes failing their checksum or looking insane, e2fsck's "inode seems to contain
 * garbage"). Pure and self-contained (bytes and a few numbers in, bytes out), so that two
 * threads may share it: SanityRing holds the scan's chunks in shared memory, cut into
 * slices that pass 1 and a helper thread (the CLI's, tools/cli/fsck_offload.ts) claim
 * one at a time; each slice is judged once, by whichever side takes it first.
 */

import { inodeChecksumSeedBits, verifyInodeChecksum } from "../format/checksum.js";
import { EXT4_EXTENTS_FL, EXT4_GOOD_OLD_INODE_SIZE, EXT4_INLINE_DATA_FL, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, inodeStruct } from "../format/inode.js";
import { extentHeaderOk } from "./blockmap.js";
import { u16, u32 } from "./bytes.js";

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

/**
 * A helper thread for one pass 1 scan: it judges slices of the chunks the scan posts to it,
 * while the scan checks earlier chunks and judges whatever slices of the chunk it needs next
 * the helper has not claimed (so neither side waits on the other for long, whichever is
 * faster). Everything it touches is in the ring's SharedArrayBuffers.
 */
export interface SanityHelper {
  /** Slot `slot` of the ring holds a chunk to judge. */
  post(slot: number): void;
  close(): Promise<void>;
}

/**
 * Makes a SanityHelper for a scan of `inodes` inodes sharing `ring`, or declines
 * (undefined) when the scan is too small to be worth a thread.
 */
export type SanityHelperFactory = (inodes: number, ring: SanityRing) => SanityHelper | undefined;

/** Blocks per slice: the unit of work the scan and its helper claim (64 KiB of 4 KiB blocks). */
export const SANITY_SLICE_BLOCKS = 16;

// The control words of a slot: the chunk's first inode (as u32), its inode count, its
// slices, then one state per slice.
const CTRL_FIRST_INO = 0;
const CTRL_COUNT = 1;
const CTRL_SLICES = 2;
const CTRL_STATE = 3;
const SLICE_FREE = 0;
const SLICE_CLAIMED = 1;
const SLICE_DONE = 2;

/** One chunk's place in the ring: its inode table bytes, its verdicts, and who judges which slice. */
export interface SanitySlot {
  readonly data: Uint8Array;
  /** SanityResult.csums, one per inode of the chunk. */
  readonly csums: Uint8Array;
  /** SanityResult.insane, one per block of the chunk. */
  readonly insane: Uint8Array;
  readonly ctrl: Int32Array;
}

/**
 * The buffers of a pass 1 scan: a few chunk-sized slots, reused in turn. Shared
 * (SharedArrayBuffer) when a helper thread judges along, plain otherwise. A slice is
 * claimed by compare-and-swap, judged, then marked done with a sequentially consistent
 * store, which publishes its verdicts to the other thread.
 */
export class SanityRing {
  /** A ring over existing slots (a helper thread's view of the scan's ring). */
  constructor(readonly slots: readonly SanitySlot[], readonly g: SanityGeometry) {}

  /** `slots` slots of `chunkBytes` bytes each; in SharedArrayBuffers when `shared`. */
  static create(slots: number, chunkBytes: number, g: SanityGeometry, shared: boolean): SanityRing {
    const alloc = (n: number): ArrayBuffer | SharedArrayBuffer => (shared ? new SharedArrayBuffer(n) : new ArrayBuffer(n));
    const blocks = Math.ceil(chunkBytes / g.blockSize);
    const inodes = Math.floor(chunkBytes / g.inodeSize);
    const slices = Math.ceil(blocks / SANITY_SLICE_BLOCKS);
    const made = Array.from({ length: slots }, () => {
      const ctrl = new Int32Array(alloc(4 * (CTRL_STATE + slices)));
      ctrl.fill(SLICE_DONE, CTRL_STATE); // nothing to claim until a chunk is loaded
      return { data: new Uint8Array(alloc(chunkBytes)), csums: new Uint8Array(alloc(inodes)), insane: new Uint8Array(alloc(blocks)), ctrl };
    });
    return new SanityRing(made, g);
  }

  /**
   * The slot now holds `count` inodes from `firstIno` in its first `bytes` bytes: its
   * slices become claimable. Only for a slot no slice of which is claimed or free.
   */
  load(slot: number, firstIno: number, count: number, bytes: number): void {
    const ctrl = this.slots[slot]!.ctrl;
    const blocks = Math.ceil(bytes / this.g.blockSize);
    const slices = Math.ceil(blocks / SANITY_SLICE_BLOCKS);
    Atomics.store(ctrl, CTRL_FIRST_INO, firstIno | 0);
    Atomics.store(ctrl, CTRL_COUNT, count);
    Atomics.store(ctrl, CTRL_SLICES, slices);
    // States last: a thread that claims a slice reads the fields above after its claim.
    for (let s = 0; s < ctrl.length - CTRL_STATE; s++) Atomics.store(ctrl, CTRL_STATE + s, s < slices ? SLICE_FREE : SLICE_DONE);
  }

  /** Judge every slice of the slot nobody has claimed yet; what both the scan and a helper run. */
  judgeFree(slot: number): void {
    const { ctrl } = this.slots[slot]!;
    for (let s = 0; s < ctrl.length - CTRL_STATE; s++) {
      if (!this.claimSlice(slot, s)) continue;
      this.#judgeSlice(slot, s);
      Atomics.store(ctrl, CTRL_STATE + s, SLICE_DONE);
      Atomics.notify(ctrl, CTRL_STATE + s);
    }
  }

  /** Slices of the slot judged so far (by either side). */
  judged(slot: number): number {
    const { ctrl } = this.slots[slot]!;
    let n = 0;
    for (let s = 0; s < Atomics.load(ctrl, CTRL_SLICES); s++) if (Atomics.load(ctrl, CTRL_STATE + s) === SLICE_DONE) n++;
    return n;
  }

  /** Take slice `s` of the slot if it is free: true when this caller must judge it (and mark it done). */
  claimSlice(slot: number, s: number): boolean {
    return Atomics.compareExchange(this.slots[slot]!.ctrl, CTRL_STATE + s, SLICE_FREE, SLICE_CLAIMED) === SLICE_FREE;
  }

  /**
   * The scan's side: judge what is left of the slot and wait for the slices a helper holds.
   * A slice held longer than `stallMs` is judged here as well (a helper that died or hangs
   * never finishes it); returns false then, and the scan should stop using the helper and
   * this ring, which the helper may still write to.
   */
  finish(slot: number, stallMs: number): boolean {
    this.judgeFree(slot);
    const { ctrl } = this.slots[slot]!;
    const slices = Atomics.load(ctrl, CTRL_SLICES);
    let healthy = true;
    for (let s = 0; s < slices; s++) {
      if (Atomics.load(ctrl, CTRL_STATE + s) === SLICE_DONE) continue;
      if (!waitWhile(ctrl, CTRL_STATE + s, SLICE_CLAIMED, stallMs)) {
        this.#judgeSlice(slot, s);
        Atomics.store(ctrl, CTRL_STATE + s, SLICE_DONE);
        healthy = false;
      }
    }
    return healthy;
  }

  #judgeSlice(slot: number, s: number): void {
    const { data, csums, insane, ctrl } = this.slots[slot]!;
    const g = this.g;
    const firstIno = Atomics.load(ctrl, CTRL_FIRST_INO) >>> 0;
    const count = Atomics.load(ctrl, CTRL_COUNT);
    const perSlice = (SANITY_SLICE_BLOCKS * g.blockSize) / g.inodeSize;
    const k0 = s * perSlice;
    const k1 = Math.min(count, k0 + perSlice);
    csums.fill(0, k0, k1);
    insane.fill(0, s * SANITY_SLICE_BLOCKS, (s + 1) * SANITY_SLICE_BLOCKS);
    sanityRange(data, firstIno, k0, k1, g, csums, insane);
  }
}

/**
 * Wait while ctrl[i] === value, at most `ms`; true once it changed. Atomics.wait where the
 * thread may block (Node's main thread, workers), else a spin (a browser's main thread).
 */
function waitWhile(ctrl: Int32Array, i: number, value: number, ms: number): boolean {
  const until = Date.now() + ms;
  while (Atomics.load(ctrl, i) === value) {
    const left = until - Date.now();
    if (left <= 0) return false;
    try {
      Atomics.wait(ctrl, i, value, left);
    } catch {
      // Atomics.wait is not allowed on this thread: spin until the deadline.
    }
  }
  return true;
}

const OFF_MODE = inodeStruct.offsetOf("i_mode");
const OFF_LINKS = inodeStruct.offsetOf("i_links_count");
const OFF_FLAGS = inodeStruct.offsetOf("i_flags");
const OFF_IBLOCK = inodeStruct.offsetOf("i_block");
const OFF_GENERATION = inodeStruct.offsetOf("i_generation");
const OFF_SIZE_LO = inodeStruct.offsetOf("i_size_lo");
const OFF_SIZE_HIGH = inodeStruct.offsetOf("i_size_high");
const EXT2_N_BLOCKS = 15;

/** The inode's checksum verifies, or its first 128 bytes are all zero (never used). */
export function inodeCsumOk(buf: Uint8Array, off: number, ino: number, g: SanityGeometry): boolean {
  const gen = u32(buf, off + OFF_GENERATION);
  if (verifyInodeChecksum(buf, off, g.inodeSize, inodeChecksumSeedBits(g.csumSeed, ino, gen))) return true;
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
  const csums = new Uint8Array(count);
  const insane = new Uint8Array(Math.ceil((count * g.inodeSize) / g.blockSize));
  sanityRange(buf, firstIno, 0, count, g, csums, insane);
  return { csums, insane };
}

/**
 * inodeBlockSanity for inodes k0..k1-1 of a chunk whose inode 0 is `firstIno`, into
 * `csums` (by k) and `insane` (by block of the chunk), which start zeroed. k0 starts a
 * block: each block is judged on its own inodes.
 */
function sanityRange(buf: Uint8Array, firstIno: number, k0: number, k1: number, g: SanityGeometry, csums: Uint8Array, insane: Uint8Array): void {
  const isz = g.inodeSize;
  const ipb = Math.floor(g.blockSize / isz);
  if (ipb < 2) {
    // One inode per block: no block is judged, but the verdicts are still wanted.
    if (g.metadataCsum) for (let k = k0; k < k1; k++) csums[k] = inodeCsumOk(buf, k * isz, firstIno + k, g) ? 1 : 2;
    return;
  }
  let badness = 0;
  for (let k = k0; k < k1; ) {
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
      k += Math.min(ipb - ((ino - 1) % ipb), k1 - k);
      badness = 0;
      continue;
    }
    if (ino % ipb === 0) badness = 0;
    k++;
  }
}
