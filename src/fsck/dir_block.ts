/**
 * What libext2fs asks of a directory block's layout before it trusts its checksum: the leaf
 * tail, the htree count/limit, and the verdict of ext2fs_dir_block_csum_verify. Pass 2
 * checks blocks with them; path names read directories the way ext2fs_dir_iterate does.
 */

import { dirBlockChecksum, dxBlockChecksum } from "../format/checksum.js";
import { recLenFromDisk } from "../format/dirent.js";
import { u16, u32 } from "./bytes.js";

/** libext2fs __get_dirent_tail: the entry chain ends exactly at a well-formed tail. */
export function hasDirentTail(buf: Uint8Array, bs: number): boolean {
  return direntTail(buf, bs) !== "no-space";
}

/**
 * libext2fs __get_dirent_tail: "ok" when the block ends in a checksum tail, "corrupt" when
 * the record lengths (raw, as on disk) do not chain, "no-space" when they chain elsewhere.
 */
export function direntTail(buf: Uint8Array, bs: number): "ok" | "corrupt" | "no-space" {
  const top = bs - 12;
  let off = 0;
  while (off < top) {
    const rl = u16(buf, off + 4);
    if (rl < 8 || (rl & 3) !== 0) return "corrupt";
    off += rl;
  }
  if (off > bs) return "corrupt";
  if (off !== top) return "no-space";
  return u32(buf, top) === 0 && u16(buf, top + 4) === 12 && u16(buf, top + 6) === 0xde00 ? "ok" : "no-space";
}

/** libext2fs __get_dx_countlimit: offset of the count/limit pair, or -1 (-2 for insane counts). */
export function dxCountOffset(buf: Uint8Array, bs: number): number {
  const rl = recLenFromDisk(u16(buf, 4), bs);
  let at: number;
  if (rl === bs && u16(buf, 6) === 0) at = 8;
  else if (rl === 12) {
    if (recLenFromDisk(u16(buf, 12 + 4), bs) !== bs - 12) return -1;
    if (u32(buf, 24) !== 0 || buf[29] !== 8) return -1;
    at = 32;
  } else return -1;
  const maxSane = Math.floor((bs - at) / 8);
  if (u16(buf, at) > maxSane || u16(buf, at + 2) > maxSane) return -2;
  return at;
}

/** ext2fs_dir_block_csum_verify: leaf tail, else htree tail, else a failure. */
export function dirBlockCsumOk(buf: Uint8Array, bs: number, seed: number): boolean {
  if (direntTail(buf, bs) === "ok") return u32(buf, bs - 12 + 8) === dirBlockChecksum(buf, bs, seed);
  const at = dxCountOffset(buf, bs);
  if (at >= 0) {
    const limit = u16(buf, at);
    const count = u16(buf, at + 2);
    if (at + limit * 8 > bs - 8) return false;
    const tail = at + limit * 8;
    return u32(buf, tail + 4) === dxBlockChecksum(buf, at, count, tail, seed);
  }
  return false;
}
