/**
 * Hashed directory index blocks (fs/ext4/namei.c struct dx_root, dx_node, dx_entry,
 * dx_countlimit, dx_tail; Documentation/filesystems/ext4/directory.rst "Hash Tree Directories").
 *
 * Both kinds of index block disguise themselves as linear directory blocks so that old
 * code sees them as empty: the root holds "." and ".." (the latter's rec_len covers the
 * rest of the block), an interior node holds one unused entry spanning the block. The
 * index entries start after that; entry 0's hash field is the count/limit pair.
 */

import { FsError, type FsErrorDetail } from "../errors.js";
import { dirRecLen, recLenFromDisk } from "./dirent.js";
import { bytes, defineStruct, u16le, u32le, u8 } from "./struct.js";

export const dxRoot = defineStruct("dx_root", 0x20, {
  dot_inode: [0x0, u32le],
  dot_rec_len: [0x4, u16le], // 12
  dot_name_len: [0x6, u8],
  dot_file_type: [0x7, u8],
  dot_name: [0x8, bytes(4)], // ".\0\0\0"
  dotdot_inode: [0xc, u32le],
  dotdot_rec_len: [0x10, u16le], // block size - 12
  dotdot_name_len: [0x12, u8],
  dotdot_file_type: [0x13, u8],
  dotdot_name: [0x14, bytes(4)], // "..\0\0"
  reserved_zero: [0x18, u32le], // struct dx_root_info from here
  hash_version: [0x1c, u8],
  info_length: [0x1d, u8], // 8
  indirect_levels: [0x1e, u8],
  unused_flags: [0x1f, u8],
});

export const dxNodeHeader = defineStruct("dx_node", 8, {
  fake_inode: [0x0, u32le], // 0
  fake_rec_len: [0x4, u16le], // block size
  fake_name_len: [0x6, u8],
  fake_file_type: [0x7, u8],
});

export const dxCountLimit = defineStruct("dx_countlimit", 8, {
  limit: [0x0, u16le],
  count: [0x2, u16le],
  block: [0x4, u32le], // entry 0's block
});

export const dxEntry = defineStruct("dx_entry", 8, {
  hash: [0x0, u32le],
  block: [0x4, u32le], // logical block within the directory
});

export const dxTail = defineStruct("dx_tail", 8, {
  dt_reserved: [0x0, u32le],
  dt_checksum: [0x4, u32le],
});

/** Offset of the count/limit pair in a root block. */
export const DX_ROOT_ENTRIES_OFFSET = 0x18; // + info_length
export const DX_NODE_ENTRIES_OFFSET = dxNodeHeader.size;
/** The root_info flag the kernel refuses. */
export const EXT4_DX_UNUSED_FLAG_UNIMPLEMENTED = 1;

/** Entries capacity of a root. @kernel dx_root_limit */
export function dxRootLimit(blockSize: number, infoLength: number, metadataCsum: boolean): number {
  const space = blockSize - dirRecLen(1) - dirRecLen(2) - infoLength - (metadataCsum ? dxTail.size : 0);
  return Math.floor(space / dxEntry.size);
}

/** Entries capacity of an interior node. @kernel dx_node_limit */
export function dxNodeLimit(blockSize: number, metadataCsum: boolean): number {
  const space = blockSize - dirRecLen(0) - (metadataCsum ? dxTail.size : 0);
  return Math.floor(space / dxEntry.size);
}

export interface DxEntry {
  hash: number;
  block: number;
}

export interface DxNode {
  /** Byte offset of the count/limit pair (entry 0). */
  entriesOffset: number;
  limit: number;
  count: number;
  /** entries[0].hash is 0 by definition. */
  entries: DxEntry[];
}

export interface DxRootInfo extends DxNode {
  hashVersion: number;
  indirectLevels: number;
  infoLength: number;
  unusedFlags: number;
  dotInode: number;
  dotdotInode: number;
}

/** Is this a plausible interior index node (its only entry unused and spanning the block)? */
export function looksLikeDxNode(block: Uint8Array, blockSize: number): boolean {
  const h = dxNodeHeader.decode(block, 0);
  return h.fake_inode === 0 && recLenFromDisk(h.fake_rec_len, blockSize) === blockSize && h.fake_name_len === 0;
}

function decodeEntries(block: Uint8Array, off: number, expectLimit: number, what: string, ctx: FsErrorDetail): DxNode {
  const cl = dxCountLimit.decode(block, off);
  const bad = (m: string): FsError => new FsError("EFSCORRUPTED", `Bad htree ${what}: ${m}`, ctx);
  if (cl.limit !== expectLimit) throw bad(`limit ${cl.limit}, expected ${expectLimit}`);
  if (cl.count === 0 || cl.count > cl.limit) throw bad(`count ${cl.count} with limit ${cl.limit}`);
  const entries: DxEntry[] = [{ hash: 0, block: cl.block }];
  for (let i = 1; i < cl.count; i++) {
    const e = dxEntry.decode(block, off + i * dxEntry.size);
    entries.push({ hash: e.hash, block: e.block });
  }
  return { entriesOffset: off, limit: cl.limit, count: cl.count, entries };
}

/** Decode and check the index in directory block 0. @kernel dx_probe (root part) */
export function decodeDxRoot(block: Uint8Array, blockSize: number, metadataCsum: boolean, ctx: FsErrorDetail = {}): DxRootInfo {
  const r = dxRoot.decode(block, 0);
  const bad = (m: string): FsError => new FsError("EFSCORRUPTED", `Bad htree root: ${m}`, ctx);
  if (r.dot_name_len !== 1 || r.dot_name[0] !== 0x2e) throw bad("first entry is not '.'");
  if (r.dotdot_name_len !== 2 || r.dotdot_name[0] !== 0x2e || r.dotdot_name[1] !== 0x2e) throw bad("second entry is not '..'");
  if (r.info_length !== 8) throw bad(`info_length ${r.info_length}, expected 8`);
  if (recLenFromDisk(r.dot_rec_len, blockSize) !== dirRecLen(1)) throw bad(`'.' rec_len ${r.dot_rec_len}, expected 12`);
  const node = decodeEntries(block, DX_ROOT_ENTRIES_OFFSET + r.info_length, dxRootLimit(blockSize, r.info_length, metadataCsum), "root", ctx);
  return {
    ...node,
    hashVersion: r.hash_version,
    indirectLevels: r.indirect_levels,
    infoLength: r.info_length,
    unusedFlags: r.unused_flags,
    dotInode: r.dot_inode,
    dotdotInode: r.dotdot_inode,
  };
}

/** Decode and check an interior index node. @kernel dx_probe (node part) */
export function decodeDxNode(block: Uint8Array, blockSize: number, metadataCsum: boolean, ctx: FsErrorDetail = {}): DxNode {
  if (!looksLikeDxNode(block, blockSize)) {
    throw new FsError("EFSCORRUPTED", "Bad htree node: header is not an empty entry spanning the block", ctx);
  }
  return decodeEntries(block, DX_NODE_ENTRIES_OFFSET, dxNodeLimit(blockSize, metadataCsum), "node", ctx);
}

/** Byte offset of the dx_tail: right after `limit` entries. */
export function dxTailOffset(node: Pick<DxNode, "entriesOffset" | "limit">): number {
  return node.entriesOffset + node.limit * dxEntry.size;
}
