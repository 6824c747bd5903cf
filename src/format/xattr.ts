/**
 * Extended attribute storage: the in-inode area after the extra inode fields and the
 * external block at i_file_acl. Both hold the same entry table; this file decodes and
 * encodes it (pure codecs, no I/O). Checksums are computed in checksum.ts, after encoding.
 *
 * Counterparts: fs/ext4/xattr.h (structures, constants), fs/ext4/xattr.c (check_xattrs,
 * ext4_xattr_set_entry, ext4_xattr_hash_entry, ext4_xattr_rehash), e2fsprogs
 * lib/ext2fs/ext_attr.c (ea_names, write_xattrs_to_buffer).
 *
 *   header | entry 0 | entry 1 | ... | 4 zero bytes | free | values (packed from the end)
 *
 * - Block: 32-byte header; value offsets count from the block start; entries sorted by
 *   (name index, name length, name bytes); e_hash and h_hash filled.
 * - Inode body: 4-byte header; value offsets count from the first entry; entries in
 *   insertion order; e_hash 0 (the kernel hashes only block and EA-inode entries).
 * - Values are padded to EXT4_XATTR_PAD with zeros. The kernel puts each newly written
 *   value below the others, so value order is write order, not table order.
 *
 * Decoders apply the kernel's read checks (check_xattrs) and throw
 * FsError("EFSCORRUPTED") for anything else; every value they return lies after the
 * terminator and inside the area. Values in EA inodes (e_value_inum != 0) are rejected:
 * ext4ts does not support the ea_inode feature yet.
 */

import { assert } from "../debug/assert.js";
import { FsError, type FsErrorDetail } from "../errors.js";
import { array, defineStruct, u16le, u32le, u8, type FieldsOf } from "./struct.js";

export const EXT4_XATTR_MAGIC = 0xea020000;
/** Most inodes one block may serve; a block at the limit is not shared further. */
export const EXT4_XATTR_REFCOUNT_MAX = 1024;

export const EXT4_XATTR_INDEX_USER = 1;
export const EXT4_XATTR_INDEX_POSIX_ACL_ACCESS = 2;
export const EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT = 3;
export const EXT4_XATTR_INDEX_TRUSTED = 4;
export const EXT4_XATTR_INDEX_LUSTRE = 5;
export const EXT4_XATTR_INDEX_SECURITY = 6;
export const EXT4_XATTR_INDEX_SYSTEM = 7;
export const EXT4_XATTR_INDEX_RICHACL = 8;
export const EXT4_XATTR_INDEX_ENCRYPTION = 9;
export const EXT4_XATTR_INDEX_HURD = 10;

export const EXT4_XATTR_PAD = 4;
export const EXT4_XATTR_ROUND = EXT4_XATTR_PAD - 1;
/** Largest e_value_size the kernel accepts when checking entries. */
export const EXT4_XATTR_SIZE_MAX = 1 << 24;
/** Longest name after the prefix (ext4_xattr_set_handle: ERANGE beyond). */
export const XATTR_NAME_MAX = 255;

/** inline_data: bytes of file data kept in i_block (sizeof(__le32) * EXT4_N_BLOCKS). */
export const EXT4_MIN_INLINE_DATA_SIZE = 60;
/** inline_data: the rest lives in the in-inode xattr "system.data" (index 7, this name). */
export const EXT4_XATTR_SYSTEM_DATA = "data";

/** struct ext4_xattr_header: the external block's header. */
export const xattrHeader = defineStruct("ext4_xattr_header", 0x20, {
  h_magic: [0x0, u32le], // EXT4_XATTR_MAGIC
  h_refcount: [0x4, u32le], // inodes whose i_file_acl points here
  h_blocks: [0x8, u32le], // must be 1
  h_hash: [0xc, u32le], // ext4_xattr_rehash of the entry hashes; 0: never shared
  h_checksum: [0x10, u32le], // metadata_csum: crc32c(seed, blocknr, block)
  h_reserved: [0x14, array(u32le, 3)],
});
export type XattrHeader = FieldsOf<typeof xattrHeader>;

/** struct ext4_xattr_ibody_header: the in-inode area's header. */
export const xattrIbodyHeader = defineStruct("ext4_xattr_ibody_header", 0x4, {
  h_magic: [0x0, u32le],
});

/** struct ext4_xattr_entry, fixed part; e_name_len name bytes follow, padded to 4. */
export const xattrEntry = defineStruct("ext4_xattr_entry", 0x10, {
  e_name_len: [0x0, u8],
  e_name_index: [0x1, u8],
  e_value_offs: [0x2, u16le], // from the block start / from the first in-inode entry
  e_value_inum: [0x4, u32le], // ea_inode: inode holding the value, else 0
  e_value_size: [0x8, u32le],
  e_hash: [0xc, u32le],
});

/** One decoded entry. `name` is without prefix; `value` is a copy. */
export interface XattrEntry {
  e_name_index: number;
  name: Uint8Array;
  value: Uint8Array;
  /** Raw e_value_offs (0 for empty values); kept for fsck and for reproducing layouts. */
  e_value_offs: number;
  e_value_inum: number;
  e_hash: number;
}

/** What the encoders need of an entry (an XattrEntry qualifies). */
export interface XattrInput {
  e_name_index: number;
  name: Uint8Array;
  value: Uint8Array;
}

export type XattrBlock = XattrHeader & { entries: XattrEntry[] };

/** Where the bytes came from, for error messages and FsError.detail. */
export interface XattrContext {
  ino?: number;
  block?: number;
}

/** Bytes an entry with this name length takes in the table. @kernel EXT4_XATTR_LEN */
export function xattrLen(nameLen: number): number {
  return (nameLen + EXT4_XATTR_ROUND + xattrEntry.size) & ~EXT4_XATTR_ROUND;
}

/** Bytes a value of this size takes, padded. @kernel EXT4_XATTR_SIZE */
export function xattrSize(size: number): number {
  return Math.ceil(size / EXT4_XATTR_PAD) * EXT4_XATTR_PAD; // not &: sizes may exceed 2^31
}

// ---------------------------------------------------------------------------------------
// Names

interface NamePrefix {
  readonly index: number;
  readonly prefix: string;
  /** The prefix is the whole name (entry name empty), as for the ACL handlers. */
  readonly whole: boolean;
}

/**
 * Name index -> prefix, as the kernel's ext4_xattr_handler_map and e2fsprogs ea_names.
 * Indexes missing here (0, Lustre, encryption, unknown) are never listed by Linux.
 */
export const XATTR_PREFIXES: readonly NamePrefix[] = [
  { index: EXT4_XATTR_INDEX_USER, prefix: "user.", whole: false },
  { index: EXT4_XATTR_INDEX_POSIX_ACL_ACCESS, prefix: "system.posix_acl_access", whole: true },
  { index: EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT, prefix: "system.posix_acl_default", whole: true },
  { index: EXT4_XATTR_INDEX_TRUSTED, prefix: "trusted.", whole: false },
  { index: EXT4_XATTR_INDEX_SECURITY, prefix: "security.", whole: false },
  { index: EXT4_XATTR_INDEX_SYSTEM, prefix: "system.", whole: false },
  { index: EXT4_XATTR_INDEX_RICHACL, prefix: "system.richacl", whole: true },
  { index: EXT4_XATTR_INDEX_HURD, prefix: "gnu.", whole: false },
];

const byIndex = new Map(XATTR_PREFIXES.map((p) => [p.index, p]));
// Whole names first (they must match exactly), then prefixes longest first.
const byMatchOrder = [...XATTR_PREFIXES].sort((a, b) => Number(b.whole) - Number(a.whole) || b.prefix.length - a.prefix.length);
const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

function isWholeNameIndex(index: number): boolean {
  return byIndex.get(index)?.whole ?? false;
}

/**
 * The name Linux lists for an entry ("user.foo", "system.posix_acl_access"), or null for
 * indexes listxattr never shows. Index 7 "data" gives "system.data" (inline data): callers
 * listing names filter it. Name bytes are read as UTF-8 (invalid bytes become U+FFFD).
 * @kernel ext4_xattr_prefix
 */
export function xattrFullName(index: number, name: Uint8Array): string | null {
  const p = byIndex.get(index);
  return p === undefined ? null : p.prefix + utf8.decode(name);
}

/**
 * Split a full name into index and entry name; null when no handler takes it. As the
 * VFS does (xattr_resolve_name), a whole-name handler matches only the exact name
 * ("system.posix_acl_access" -> index 2, empty name) and otherwise the longest prefix
 * wins. The entry name may come back empty for a prefix ("user."): Linux rejects that
 * with EINVAL, and names over XATTR_NAME_MAX bytes with ERANGE; callers check.
 */
export function splitXattrName(full: string): { index: number; name: Uint8Array } | null {
  for (const p of byMatchOrder) {
    if (p.whole ? full === p.prefix : full.startsWith(p.prefix)) {
      return { index: p.index, name: utf8Encoder.encode(full.slice(p.prefix.length)) };
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// Hashes

const NAME_HASH_SHIFT = 5;
const VALUE_HASH_SHIFT = 16;
const BLOCK_HASH_SHIFT = 16;

function rotl(h: number, n: number): number {
  return ((h << n) | (h >>> (32 - n))) >>> 0;
}

function hashValueWords(hash: number, value: Uint8Array): number {
  const words = Math.ceil(value.length / 4); // the value is zero-padded to whole words
  for (let w = 0; w < words; w++) {
    const i = w * 4;
    const word = (value[i] ?? 0) | ((value[i + 1] ?? 0) << 8) | ((value[i + 2] ?? 0) << 16) | ((value[i + 3] ?? 0) << 24);
    hash = (rotl(hash, VALUE_HASH_SHIFT) ^ word) >>> 0;
  }
  return hash;
}

/**
 * Entry hash over the name bytes (unsigned) and the value as little-endian 32-bit words.
 * @kernel ext4_xattr_hash_entry
 */
export function xattrEntryHash(name: Uint8Array, value: Uint8Array): number {
  let hash = 0;
  for (const c of name) hash = (rotl(hash, NAME_HASH_SHIFT) ^ c) >>> 0;
  return hashValueWords(hash, value);
}

/**
 * The hash older kernels wrote where `char` is signed (x86): name bytes >= 0x80 are
 * sign-extended. Accepted on read; never written.
 * @kernel ext4_xattr_hash_entry_signed
 */
export function xattrEntryHashSigned(name: Uint8Array, value: Uint8Array): number {
  let hash = 0;
  for (const c of name) hash = (rotl(hash, NAME_HASH_SHIFT) ^ (c >= 0x80 ? c - 0x100 : c)) >>> 0;
  return hashValueWords(hash, value);
}

/** Block hash from the entry hashes in table order; 0 if any is 0. @kernel ext4_xattr_rehash */
export function xattrBlockHash(entryHashes: readonly number[]): number {
  let hash = 0;
  for (const h of entryHashes) {
    if (h === 0) return 0; // such a block is never shared
    hash = (rotl(hash, BLOCK_HASH_SHIFT) ^ h) >>> 0;
  }
  return hash;
}

// ---------------------------------------------------------------------------------------
// Decoding

interface Area {
  buf: Uint8Array;
  /** Offset of the first entry. */
  first: number;
  /** What e_value_offs counts from. */
  valueBase: number;
  /** "Xattr block 123", "In-inode xattrs of inode 12". */
  what: string;
  /** "block", "in-inode area": how to name `buf.length` in messages. */
  endName: string;
  detail: FsErrorDetail;
}

function contextDetail(ctx: XattrContext): FsErrorDetail {
  const d: FsErrorDetail = {};
  if (ctx.ino !== undefined) d.ino = ctx.ino;
  if (ctx.block !== undefined) d.block = ctx.block;
  return d;
}

function corrupt(a: Area, msg: string): FsError {
  return new FsError("EFSCORRUPTED", `${a.what}: ${msg}`, a.detail);
}

function u32At(buf: Uint8Array, off: number): number {
  return (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0; // caller checked off + 4 <= length
}

/** Walk and check an entry table. @kernel check_xattrs */
function decodeEntries(a: Area): XattrEntry[] {
  const { buf } = a;
  const end = buf.length;
  const heads: { off: number; e: FieldsOf<typeof xattrEntry> }[] = [];

  // Find the end of the names list. Each entry advances by at least 16 bytes.
  let off = a.first;
  for (let i = 0; ; i++) {
    if (off + 4 > end) throw corrupt(a, `entry ${i} at ${off}: no room for the terminator before ${a.endName} end ${end}`);
    if (u32At(buf, off) === 0) break;
    const nameLen = buf[off]!; // off + 4 <= end
    const next = off + xattrLen(nameLen);
    if (next > end) throw corrupt(a, `entry ${i} at ${off}: entry with ${nameLen}-byte name runs past ${a.endName} end ${end}`);
    if (next + 4 > end) {
      throw corrupt(a, `entry ${i} at ${off}: entry of ${next - off} bytes leaves no room for the terminator before ${a.endName} end ${end}`);
    }
    const e = xattrEntry.decode(buf, off);
    if (nameLen === 0 && !isWholeNameIndex(e.e_name_index)) {
      throw corrupt(a, `entry ${i} at ${off}: e_name_len is 0 for name index ${e.e_name_index}`);
    }
    if (buf.subarray(off + xattrEntry.size, off + xattrEntry.size + nameLen).includes(0)) {
      throw corrupt(a, `entry ${i} at ${off}: name contains a NUL byte`);
    }
    heads.push({ off, e });
    off = next;
  }
  const tableEnd = off + 4; // values must start after the terminator

  // Check the values.
  return heads.map(({ off: at, e }, i) => {
    const name = buf.slice(at + xattrEntry.size, at + xattrEntry.size + e.e_name_len);
    if (e.e_value_inum !== 0) {
      throw corrupt(a, `entry ${i}: e_value_inum is ${e.e_value_inum}, but values in EA inodes (ea_inode) are not supported`);
    }
    const size = e.e_value_size;
    if (size > EXT4_XATTR_SIZE_MAX) throw corrupt(a, `entry ${i}: e_value_size ${size} exceeds ${EXT4_XATTR_SIZE_MAX}`);
    let value = new Uint8Array(0);
    if (size !== 0) {
      const v = a.valueBase + e.e_value_offs;
      if (v < tableEnd) throw corrupt(a, `entry ${i}: value at ${v} overlaps the entry table ending at ${tableEnd}`);
      const padded = xattrSize(size);
      if (v + padded > end) {
        const pad = padded === size ? "" : ` (padded ${padded})`;
        throw corrupt(a, `entry ${i}: value at ${v}+${size}${pad} past ${a.endName} end ${end}`);
      }
      value = buf.slice(v, v + size);
    }
    return { e_name_index: e.e_name_index, name, value, e_value_offs: e.e_value_offs, e_value_inum: e.e_value_inum, e_hash: e.e_hash };
  });
}

/**
 * Decode and check an external xattr block (the whole block). Does not verify h_checksum,
 * entry hashes or h_hash (fsck's business), nor that entries are sorted.
 * Throws FsError EFSCORRUPTED on bad magic, h_blocks != 1 or a malformed entry table.
 * @kernel ext4_xattr_check_block
 */
export function decodeXattrBlock(block: Uint8Array, ctx: XattrContext = {}): XattrBlock {
  const a: Area = {
    buf: block,
    first: xattrHeader.size,
    valueBase: 0,
    what: ctx.block === undefined ? "Xattr block" : `Xattr block ${ctx.block}`,
    endName: "block",
    detail: contextDetail(ctx),
  };
  if (block.length < xattrHeader.size + 4) throw corrupt(a, `block of ${block.length} bytes is too small`);
  const h = xattrHeader.decode(block);
  if (h.h_magic !== EXT4_XATTR_MAGIC) {
    throw corrupt(a, `h_magic is 0x${h.h_magic.toString(16)}, expected 0x${EXT4_XATTR_MAGIC.toString(16)}`);
  }
  if (h.h_blocks !== 1) throw corrupt(a, `h_blocks is ${h.h_blocks}, expected 1`);
  return { ...h, entries: decodeEntries(a) };
}

/**
 * Decode the in-inode xattrs. `region` is the inode from 128 + i_extra_isize to the inode
 * size. Without the header magic (or with no room for header and terminator) the inode has
 * no in-inode xattrs and the result is empty, as in the kernel (ext4_iget_extra_inode).
 * Throws FsError EFSCORRUPTED for a malformed entry table.
 * @kernel xattr_check_inode
 */
export function decodeIbodyXattrs(region: Uint8Array, ctx: XattrContext = {}): XattrEntry[] {
  if (region.length < xattrIbodyHeader.size + 4) return []; // !EXT4_INODE_HAS_XATTR_SPACE
  if (xattrIbodyHeader.decode(region).h_magic !== EXT4_XATTR_MAGIC) return [];
  return decodeEntries({
    buf: region,
    first: xattrIbodyHeader.size,
    valueBase: xattrIbodyHeader.size,
    what: ctx.ino === undefined ? "In-inode xattrs" : `In-inode xattrs of inode ${ctx.ino}`,
    endName: "in-inode area",
    detail: contextDetail(ctx),
  });
}

/**
 * The system.data value of an inline-data inode (file bytes past the first
 * EXT4_MIN_INLINE_DATA_SIZE), or null when the in-inode entries have none.
 * @kernel ext4_find_inline_data_nolock
 */
export function inlineDataValue(ibodyEntries: readonly XattrEntry[]): Uint8Array | null {
  const want = utf8Encoder.encode(EXT4_XATTR_SYSTEM_DATA);
  const found = ibodyEntries.find(
    (e) => e.e_name_index === EXT4_XATTR_INDEX_SYSTEM && e.name.length === want.length && e.name.every((c, i) => c === want[i]),
  );
  return found === undefined ? null : found.value;
}

// ---------------------------------------------------------------------------------------
// Encoding

/**
 * Block table order: name index, then name length, then name bytes.
 * @kernel xattr_find_entry (sorted search, which decides the insert position)
 */
export function compareXattrEntries(a: XattrInput, b: XattrInput): number {
  if (a.e_name_index !== b.e_name_index) return a.e_name_index - b.e_name_index;
  if (a.name.length !== b.name.length) return a.name.length - b.name.length;
  for (let i = 0; i < a.name.length; i++) {
    const d = a.name[i]! - b.name[i]!; // equal lengths
    if (d !== 0) return d;
  }
  return 0;
}

/** Reject names the kernel would not store; duplicates are a caller bug. */
function checkInputs(entries: readonly XattrInput[]): void {
  const seen = new Set<string>();
  for (const e of entries) {
    assert(Number.isInteger(e.e_name_index) && e.e_name_index > 0 && e.e_name_index <= 0xff, `bad xattr name index ${e.e_name_index}`);
    if (e.name.length > XATTR_NAME_MAX) throw new FsError("ERANGE", `Xattr name of ${e.name.length} bytes exceeds ${XATTR_NAME_MAX}`);
    if (e.name.includes(0)) throw new FsError("EINVAL", "Xattr name contains a NUL byte");
    if (e.name.length === 0 && !isWholeNameIndex(e.e_name_index)) {
      throw new FsError("EINVAL", `Xattr name is empty for name index ${e.e_name_index}`);
    }
    const key = `${e.e_name_index}:${e.name.join(",")}`;
    assert(!seen.has(key), () => `duplicate xattr ${xattrFullName(e.e_name_index, e.name) ?? key}`);
    seen.add(key);
  }
}

/**
 * Lay out a table: entries at `first` in `tableOrder`, values from the end of `buf`
 * downward in the order given, offsets relative to `valueBase`. Returns the entries' hashes
 * in table order (0 unless `hashed`).
 */
function layOut(
  buf: Uint8Array,
  entries: readonly XattrInput[],
  tableOrder: readonly number[],
  first: number,
  valueBase: number,
  hashed: boolean,
): number[] {
  const offs = new Array<number>(entries.length).fill(0);
  let low = buf.length;
  entries.forEach((e, i) => {
    if (e.value.length === 0) return; // empty values take no space and keep e_value_offs 0
    low -= xattrSize(e.value.length);
    buf.set(e.value, low); // padding stays zero
    offs[i] = low - valueBase;
  });
  let at = first;
  return tableOrder.map((i) => {
    const e = entries[i]!; // tableOrder is a permutation of indexes
    const e_hash = hashed ? xattrEntryHash(e.name, e.value) : 0;
    xattrEntry.encode(
      {
        e_name_len: e.name.length,
        e_name_index: e.e_name_index,
        e_value_offs: offs[i]!,
        e_value_inum: 0,
        e_value_size: e.value.length,
        e_hash,
      },
      buf,
      at,
    );
    buf.set(e.name, at + xattrEntry.size);
    at += xattrLen(e.name.length);
    return e_hash;
  });
}

function spaceNeeded(entries: readonly XattrInput[]): number {
  let n = 4; // terminator
  for (const e of entries) n += xattrLen(e.name.length) + xattrSize(e.value.length);
  return n;
}

/**
 * Build an external xattr block. The table is sorted as the kernel keeps it; values are
 * packed from the block end in the order given (the kernel's write order, so ordering the
 * entries by descending e_value_offs reproduces a kernel-written block). Entry hashes and
 * h_hash are filled; h_checksum is left 0 for checksum.ts.
 * Throws FsError ENOSPC when the entries do not fit, ERANGE/EINVAL for bad names.
 * @kernel ext4_xattr_set_entry (is_block) and ext4_xattr_rehash
 */
export function encodeXattrBlock(entries: readonly XattrInput[], blockSize: number, refcount: number): Uint8Array {
  assert(Number.isInteger(blockSize) && blockSize >= 1024 && blockSize <= 65536 && blockSize % 4 === 0, `bad block size ${blockSize}`);
  assert(Number.isInteger(refcount) && refcount >= 1 && refcount <= 0xffffffff, `bad xattr refcount ${refcount}`);
  checkInputs(entries);
  const need = xattrHeader.size + spaceNeeded(entries);
  if (need > blockSize) {
    throw new FsError("ENOSPC", `Xattr block: ${entries.length} entries need ${need} bytes, block has ${blockSize}`);
  }
  const block = new Uint8Array(blockSize);
  const order = entries.map((_, i) => i).sort((x, y) => compareXattrEntries(entries[x]!, entries[y]!));
  const hashes = layOut(block, entries, order, xattrHeader.size, 0, true);
  xattrHeader.encode(
    { h_magic: EXT4_XATTR_MAGIC, h_refcount: refcount, h_blocks: 1, h_hash: xattrBlockHash(hashes), h_checksum: 0, h_reserved: [0, 0, 0] },
    block,
  );
  return block;
}

/**
 * Build the in-inode xattr area of `regionSize` bytes (inode size - 128 - i_extra_isize).
 * Entries stay in the order given (insertion order) and values are packed from the end in
 * the same order, or in `valueOrder` (a permutation of entry indexes, first = highest
 * offset) when given: the kernel appends new entries to the table but writes a resized
 * value below all others, so the two orders can differ. e_hash is 0, as the kernel writes
 * for values in the inode body. No entries gives an all-zero area (h_magic 0), as
 * ext4_xattr_ibody_set leaves it.
 * Throws FsError ENOSPC when the entries do not fit, ERANGE/EINVAL for bad names.
 * @kernel ext4_xattr_set_entry (!is_block) and ext4_xattr_ibody_set
 */
export function encodeIbodyXattrs(entries: readonly XattrInput[], regionSize: number, valueOrder?: readonly number[]): Uint8Array {
  assert(Number.isInteger(regionSize) && regionSize >= 0 && regionSize < 65536, `bad in-inode xattr area size ${regionSize}`);
  checkInputs(entries);
  const region = new Uint8Array(regionSize);
  if (entries.length === 0) return region;
  const need = xattrIbodyHeader.size + spaceNeeded(entries);
  if (need > regionSize) {
    throw new FsError("ENOSPC", `In-inode xattrs: ${entries.length} entries need ${need} bytes, inode has ${regionSize}`);
  }
  const first = xattrIbodyHeader.size;
  const order = valueOrder ?? entries.map((_, i) => i);
  assert(order.length === entries.length && new Set(order).size === order.length && order.every((i) => Number.isInteger(i) && i >= 0 && i < entries.length), "valueOrder is not a permutation of the entries");
  // layOut packs values in the order of its entry list and writes the table in tableOrder
  // (indexes into that list): hand it the entries in value order, the table in given order.
  const position = new Array<number>(entries.length);
  for (const [at, i] of order.entries()) position[i] = at;
  layOut(region, order.map((i) => entries[i]!), position, first, first, false);
  xattrIbodyHeader.encode({ h_magic: EXT4_XATTR_MAGIC }, region);
  return region;
}
