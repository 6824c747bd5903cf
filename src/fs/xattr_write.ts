/**
 * Writing extended attributes: set and remove in the inode body and the one external
 * block, block sharing through a per-mount index, and POSIX ACLs with their mode bits
 * (@kernel ext4_xattr_set_handle, ext4_xattr_ibody_set, ext4_xattr_block_set,
 * ext4_xattr_set_entry, ext4_xattr_release_block, ext4_xattr_block_cache_find/insert in
 * fs/ext4/xattr.c; ext4_set_acl in fs/ext4/acl.c; vfs_setxattr, xattr_permission,
 * set_posix_acl, posix_acl_update_mode in fs/xattr.c and fs/posix_acl.c).
 *
 * How a change is made (the kernel's order, planned before anything is touched):
 *
 * 1. Find the name in the inode body, else in the block; XATTR_CREATE/XATTR_REPLACE decide
 *    EEXIST/ENODATA; setting the value it already has changes nothing (not even ctime).
 * 2. Set: the inode body first, when the inode has room after i_extra_isize; if it does not
 *    fit there, the block (ENOSPC if not there either), and a copy left in the other place
 *    is removed. Remove: from where it is.
 * 3. The new block contents: none (i_file_acl = 0), an identical block already on disk
 *    (shared: h_refcount + 1, this inode charged one block), the inode's own block edited
 *    in place when nobody shares it, or a freshly allocated block. Then the old block's
 *    reference is dropped (freed at its last reference, else h_refcount - 1), and the
 *    inode is uncharged one block.
 *
 * Everything that can fail (ENOSPC for space or allocation, corruption) happens before the
 * first byte changes, so a failed call leaves the old state intact (design note §5:
 * "a failure leaves the old state intact").
 *
 * Layout is the kernel's, not just equivalent: the body's table keeps insertion order,
 * block tables are sorted, values are packed from the end in write order, a value
 * rewritten with the same padded size keeps its place, any other rewrite moves it below
 * the others (ext4_xattr_set_entry). Areas are kept as two orders of the same entries (table
 * and value) and re-encoded by src/format/xattr.ts.
 *
 * Funding (the seed rule, DEVELOPERS.md): the xattr block is allocated with an
 * AllocRequest whose funding, `chargeNow`/`enforce`, is chosen here and travels with the
 * request; nothing reads inode or volume state to decide how the block is paid for. A
 * shared block is charged to each inode that references it (i_blocks + one block), in the
 * same synchronous section as its h_refcount increment, and its quota with it (EDQUOT
 * possible); a new block is charged by the allocator (its request carries the inode's
 * dquots); dropping a reference uncharges one block (§4.5 of the design note).
 *
 * Not supported: ea_inode (values that do not fit give ENOSPC, as Linux without the
 * feature; volumes with it are refused at mount), i_extra_isize expansion
 * (ext4_expand_extra_isize_ea), security.capability value conversion.
 * Permissions: the caller's uid/gid decide the ACL owner check, the setgid rule,
 * trusted.* (root only) and sticky directories; the mode/ACL write-permission check
 * (inode_permission) is not modelled, so a non-root caller may write user.* anywhere.
 */

import { assert } from "../debug/assert.js";
import { FsError } from "../errors.js";
import {
  ACL_GROUP,
  ACL_GROUP_OBJ,
  ACL_MASK,
  ACL_OTHER,
  ACL_USER,
  ACL_USER_OBJ,
  checkPosixAcl,
  decodeExt4Acl,
  decodeVfsAcl,
  encodeExt4Acl,
  type AclEntry,
} from "../format/acl.js";
import { xattrBlockChecksum } from "../format/checksum.js";
import { EXT4_FEATURE_COMPAT_EXT_ATTR } from "../format/features.js";
import {
  EXT4_APPEND_FL,
  EXT4_GOOD_OLD_INODE_SIZE,
  EXT4_IMMUTABLE_FL,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  inodeFileAcl,
  inodeGid,
  inodeUid,
  setInodeTime,
  type Timespec,
} from "../format/inode.js";
import { split64 } from "../format/struct.js";
import { groupFirstBlock } from "../format/superblock.js";
import {
  EXT4_XATTR_INDEX_HURD,
  EXT4_XATTR_INDEX_POSIX_ACL_ACCESS,
  EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT,
  EXT4_XATTR_INDEX_SECURITY,
  EXT4_XATTR_INDEX_TRUSTED,
  EXT4_XATTR_INDEX_USER,
  EXT4_XATTR_MAGIC,
  EXT4_XATTR_REFCOUNT_MAX,
  XATTR_NAME_MAX,
  decodeIbodyXattrs,
  decodeXattrBlock,
  encodeIbodyXattrs,
  encodeXattrBlock,
  xattrHeader,
  xattrIbodyHeader,
  xattrLen,
  xattrSize,
  type XattrEntry,
  type XattrInput,
} from "../format/xattr.js";
import { allocRequest, type BlockAllocator } from "./alloc_request.js";
import { chargeBlocks } from "./file_write.js";
import type { InodeDquots } from "./quota.js";
import { chargeBlockReference, inodeDquots, unchargeFreedBlocks } from "./quota_charge.js";
import type { Handle } from "./handle.js";
import { markInodeDirty, type InodeInfo } from "./inode_write.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";

/** setxattr flag: fail with EEXIST if the attribute exists. */
export const XATTR_CREATE = 0x1;
/** setxattr flag: fail with ENODATA if the attribute does not exist. */
export const XATTR_REPLACE = 0x2;
/** Largest value the VFS accepts (E2BIG beyond). @kernel XATTR_SIZE_MAX */
export const XATTR_SIZE_MAX = 65536;
/** Longest full name, prefix included, the VFS accepts (ERANGE beyond). @kernel XATTR_NAME_MAX */
export const XATTR_FULL_NAME_MAX = 255;

export const POSIX_ACL_XATTR_ACCESS = "system.posix_acl_access";
export const POSIX_ACL_XATTR_DEFAULT = "system.posix_acl_default";

/** What xattr writes need of the engine (NameiDeps satisfies it). */
export interface XattrDeps {
  alloc: BlockAllocator;
  now(): Timespec;
}

/** Who is calling, for the ACL owner check and the setgid rule. */
export interface XattrCaller {
  uid: number;
  gid: number;
}

const utf8 = new TextEncoder();
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;
const S_IRWXUGO = 0o777;

// =======================================================================================
// The block index (mbcache)

/**
 * Per-mount index from h_hash to xattr blocks seen during this mount, newest first, with
 * an LRU bound like the kernel's mbcache shrinker. An entry is only a hint: a candidate is
 * read and compared entry by entry before it is shared, and missing a block is legal
 * (sharing is an optimization); sharing a block whose contents differ is not, so a block
 * leaves the index before it is freed or edited in place.
 * @kernel ext4_xattr_block_cache_insert, ext4_xattr_block_cache_find (struct mb_cache)
 */
export class XattrBlockIndex {
  /** Most blocks remembered (the kernel's mbcache for xattr blocks: 16 entries per bucket, 1024 buckets). */
  maxEntries = 16384;
  readonly #byHash = new Map<number, number[]>();
  /** block -> hash; Map order is least recently used first. */
  readonly #lru = new Map<number, number>();

  get size(): number {
    return this.#lru.size;
  }

  /**
   * Remember block `pblk` with hash `hash` (0: never shared, not indexed). A block already
   * remembered with that hash keeps its place (mb_cache_entry_create answers EBUSY).
   */
  insert(hash: number, pblk: number): void {
    if (hash === 0 || this.#lru.get(pblk) === hash) return;
    this.remove(pblk);
    this.#lru.set(pblk, hash);
    const list = this.#byHash.get(hash);
    if (list === undefined) this.#byHash.set(hash, [pblk]);
    else list.unshift(pblk); // mb_cache_entry_create adds at the head of the hash chain
    while (this.#lru.size > this.maxEntries) {
      const oldest = this.#lru.keys().next().value;
      if (oldest === undefined) break;
      this.remove(oldest);
    }
  }

  /** Forget block `pblk` (freed, or about to be edited in place). */
  remove(pblk: number): void {
    const hash = this.#lru.get(pblk);
    if (hash === undefined) return;
    this.#lru.delete(pblk);
    const list = this.#byHash.get(hash);
    if (list === undefined) return;
    const i = list.indexOf(pblk);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#byHash.delete(hash);
  }

  /** Blocks remembered with `hash`, newest first (a copy). */
  candidates(hash: number): number[] {
    return [...(this.#byHash.get(hash) ?? [])];
  }

  /** Mark `pblk` recently used. @kernel mb_cache_entry_touch */
  touch(pblk: number): void {
    const hash = this.#lru.get(pblk);
    if (hash === undefined) return;
    this.#lru.delete(pblk);
    this.#lru.set(pblk, hash);
  }
}

const indexes = new WeakMap<Ext4Fs, XattrBlockIndex>();

/** This mount's xattr block index. */
export function xattrBlockIndex(fs: Ext4Fs): XattrBlockIndex {
  let ix = indexes.get(fs);
  if (ix === undefined) {
    ix = new XattrBlockIndex();
    indexes.set(fs, ix);
  }
  return ix;
}

/**
 * A reader saw the xattr block at `pblk` (getxattr, listxattr): index it for sharing, as
 * ext4_xattr_block_get/list insert what they read. Does nothing on read-only mounts or for
 * blocks that do not look like xattr blocks (the reader reports those).
 */
export async function noteXattrBlockRead(fs: Ext4Fs, pblk: number): Promise<void> {
  if (fs.readOnly || pblk === 0 || !fs.blockRangeValid(pblk, 1)) return;
  const h = xattrHeader.decode(await fs.cache.get(pblk));
  if (h.h_magic !== EXT4_XATTR_MAGIC || h.h_blocks !== 1) return;
  xattrBlockIndex(fs).insert(h.h_hash, pblk);
}

// =======================================================================================
// Areas: the same entries in table order and in value order

/**
 * An xattr area as the kernel keeps it. `table` is the entry table (insertion order in the
 * inode body; block tables are sorted by the encoder), `values` the same entries in value
 * order, first = highest offset (written earliest).
 */
interface Area {
  readonly table: readonly XattrInput[];
  readonly values: readonly XattrInput[];
}

const EMPTY_AREA: Area = { table: [], values: [] };

function areaOf(entries: readonly XattrEntry[]): Area {
  // Kernel areas are packed, so descending e_value_offs is the write order; empty values
  // (offset 0) have no place and go last.
  const values = [...entries].sort((a, b) => b.e_value_offs - a.e_value_offs);
  return { table: entries, values };
}

function sameName(e: XattrInput, index: number, name: Uint8Array): boolean {
  return e.e_name_index === index && e.name.length === name.length && e.name.every((c, i) => c === name[i]);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

function find(a: Area, index: number, name: Uint8Array): number {
  return a.table.findIndex((e) => sameName(e, index, name));
}

/**
 * The area with `index`/`name` set to `value`. A value with the same padded size as the
 * old one is rewritten where it was; otherwise the old value goes and the new one is
 * written below all others. A new entry goes at the end of the table (the kernel's
 * unsorted in-inode search stops at the terminator; block tables are sorted on encoding).
 * @kernel ext4_xattr_set_entry
 */
function withValue(a: Area, index: number, name: Uint8Array, value: Uint8Array): Area {
  const e: XattrInput = { e_name_index: index, name, value };
  const i = find(a, index, name);
  if (i < 0) return { table: [...a.table, e], values: [...a.values, e] };
  const old = a.table[i]!; // i found above
  const table = a.table.map((x) => (x === old ? e : x));
  const newSize = xattrSize(value.length);
  const values = newSize !== 0 && newSize === xattrSize(old.value.length) ? a.values.map((x) => (x === old ? e : x)) : [...a.values.filter((x) => x !== old), e];
  return { table, values };
}

function without(a: Area, i: number): Area {
  const old = a.table[i];
  return { table: a.table.filter((x) => x !== old), values: a.values.filter((x) => x !== old) };
}

/** Bytes the entries take: table, terminator and padded values. */
function areaBytes(a: Area): number {
  let n = 4;
  for (const e of a.table) n += xattrLen(e.name.length) + xattrSize(e.value.length);
  return n;
}

// =======================================================================================
// The inode body

/**
 * Where the in-inode area lies in the inode's bytes, or null when there is no room for
 * it: i_extra_isize 0, or no space for the header and one pad after it.
 * @kernel EXT4_INODE_HAS_XATTR_SPACE
 */
function ibodyRegion(fs: Ext4Fs, inode: InodeInfo): { start: number; size: number } | null {
  const extra = inode.raw.i_extra_isize;
  if (fs.inodeSize <= EXT4_GOOD_OLD_INODE_SIZE || extra === 0) return null;
  const start = EXT4_GOOD_OLD_INODE_SIZE + extra;
  if (start + xattrIbodyHeader.size + 4 > fs.inodeSize) return null;
  return { start, size: fs.inodeSize - start };
}

function ibodyArea(fs: Ext4Fs, inode: InodeInfo, r: { start: number; size: number } | null): Area {
  if (r === null) return EMPTY_AREA;
  return areaOf(reported(fs, () => decodeIbodyXattrs(inode.bytes.subarray(r.start, r.start + r.size), { ino: inode.ino })));
}

/** Run a codec's decoder, reporting its corruption findings through fsCorrupted (the one place that counts them). */
function reported<T>(fs: Ext4Fs, decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof FsError && e.code === "EFSCORRUPTED") throw fsCorrupted(fs, { ...e.detail, what: e.message.replace(/^EFSCORRUPTED: /, "") });
    throw e;
  }
}

function encodeIbody(a: Area, size: number): Uint8Array {
  return encodeIbodyXattrs(
    a.table,
    size,
    a.values.map((v) => a.table.indexOf(v)),
  );
}

// =======================================================================================
// The external block

interface LoadedBlock {
  readonly pblk: number;
  readonly refcount: number;
  readonly area: Area;
}

/**
 * Read and check the inode's xattr block (magic, h_blocks, checksum, entries).
 * @kernel ext4_xattr_block_find (ext4_sb_bread + ext4_xattr_check_block)
 */
async function loadXattrBlock(fs: Ext4Fs, ino: number, pblk: number): Promise<LoadedBlock> {
  if (!fs.blockRangeValid(pblk, 1)) throw fsCorrupted(fs, { ino, block: pblk, what: `Inode ${ino} has its xattr block at ${pblk}, outside the volume` });
  const data = await fs.cache.get(pblk);
  const h = xattrHeader.decode(data);
  if (h.h_magic !== EXT4_XATTR_MAGIC || h.h_blocks !== 1) {
    throw fsCorrupted(fs, { ino, block: pblk, what: `Bad xattr block ${pblk}: h_magic 0x${h.h_magic.toString(16)}, h_blocks ${h.h_blocks}` });
  }
  if (fs.features.metadataCsum && h.h_checksum !== xattrBlockChecksum(data, pblk, fs.blockSize, fs.csumSeed)) {
    throw fsCorrupted(fs, { ino, block: pblk, crc: true, what: `Xattr block ${pblk} checksum does not match` });
  }
  if (h.h_refcount === 0) throw fsCorrupted(fs, { ino, block: pblk, what: `Xattr block ${pblk} has h_refcount 0 but inode ${ino} refers to it` });
  const decoded = reported(fs, () => decodeXattrBlock(data, { ino, block: pblk }));
  // Not indexed here: like ext4_xattr_block_find, only readers (getxattr, listxattr) and
  // blocks this code writes enter the index, so sharing decisions follow the kernel's.
  return { pblk, refcount: h.h_refcount, area: areaOf(decoded.entries) };
}

function setFileAcl(inode: InodeInfo, pblk: number): void {
  const { lo, hi } = split64(pblk);
  inode.raw.i_file_acl_lo = lo;
  inode.raw.l_i_file_acl_high = hi;
}

/** Recompute h_checksum of a block held for writing (metadata_csum). @kernel ext4_xattr_block_csum_set */
function blockCsumSet(fs: Ext4Fs, data: Uint8Array, pblk: number): void {
  if (fs.features.metadataCsum) xattrHeader.encode({ h_checksum: xattrBlockChecksum(data, pblk, fs.blockSize, fs.csumSeed) }, data);
}

/** Entry tables equal as ext4_xattr_cmp compares them: e_hash, index, name, size, value bytes. */
function sameEntries(a: readonly XattrEntry[], b: readonly XattrEntry[]): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) => {
      const y = b[i]!; // same length
      return x.e_hash === y.e_hash && x.e_name_index === y.e_name_index && sameBytes(x.name, y.name) && sameBytes(x.value, y.value);
    })
  );
}

/**
 * An indexed block other than `exclude` whose entries equal `mine` and that can take one
 * more reference; 0 if none. Candidates that no longer look like that hash's xattr block
 * are dropped from the index. @kernel ext4_xattr_block_cache_find + ext4_xattr_cmp
 */
async function findIdentical(fs: Ext4Fs, hash: number, mine: readonly XattrEntry[], exclude: number): Promise<number> {
  const ix = xattrBlockIndex(fs);
  for (const pblk of ix.candidates(hash)) {
    if (pblk === exclude) continue;
    const data = await fs.cache.get(pblk);
    const h = xattrHeader.decode(data);
    if (h.h_magic !== EXT4_XATTR_MAGIC || h.h_blocks !== 1 || h.h_hash !== hash || h.h_refcount === 0) {
      ix.remove(pblk);
      continue;
    }
    if (h.h_refcount >= EXT4_XATTR_REFCOUNT_MAX) continue; // not reusable until a reference goes
    let theirs: XattrEntry[];
    try {
      theirs = decodeXattrBlock(data, { block: pblk }).entries;
    } catch {
      ix.remove(pblk);
      continue;
    }
    if (sameEntries(mine, theirs)) return pblk;
  }
  return 0;
}

/**
 * Drop `inode`'s reference to the xattr block `pblk`: at h_refcount 1 the block leaves the
 * index and is freed, otherwise h_refcount goes down by one; either way the inode is
 * uncharged one block (i_blocks and quota: `dquots`, the inode's, loaded here when not
 * given). The caller clears or replaces i_file_acl in the same handle.
 * @kernel ext4_xattr_release_block
 */
export async function releaseXattrBlock(h: Handle, deps: { alloc: BlockAllocator }, inode: InodeInfo, pblk: number, dquots?: InodeDquots | null): Promise<void> {
  const fs = h.fs;
  const dq = dquots !== undefined ? dquots : await inodeDquots(fs, inode); // loaded before the step that uncharges
  if (!fs.blockRangeValid(pblk, 1)) throw fsCorrupted(fs, { ino: inode.ino, block: pblk, what: `Inode ${inode.ino} has its xattr block at ${pblk}, outside the volume` });
  const data = await h.getWriteAccess(pblk);
  const hdr = xattrHeader.decode(data);
  if (hdr.h_magic !== EXT4_XATTR_MAGIC || hdr.h_blocks !== 1 || hdr.h_refcount === 0) {
    throw fsCorrupted(fs, { ino: inode.ino, block: pblk, what: `Bad xattr block ${pblk}: h_magic 0x${hdr.h_magic.toString(16)}, h_blocks ${hdr.h_blocks}, h_refcount ${hdr.h_refcount}` });
  }
  if (hdr.h_refcount === 1) {
    xattrBlockIndex(fs).remove(pblk);
    await deps.alloc.free(h, inode.ino, pblk, 1, dq); // uncharged with the bitmap change
  } else {
    // One synchronous section: the reference and its charge go together. @kernel dquot_free_block
    xattrHeader.encode({ h_refcount: hdr.h_refcount - 1 }, data);
    blockCsumSet(fs, data, pblk);
    h.dirtyMetadata(pblk);
    unchargeFreedBlocks(fs, dq, 1);
  }
  chargeBlocks(fs, inode, -1);
}

/**
 * Give the inode the block contents `area` (none when empty): share an identical indexed
 * block, edit the inode's own block in place when nobody else references it, or allocate
 * one; then drop the old reference. Sets i_file_acl and i_blocks; the caller writes the
 * inode. Fails (ENOSPC) only before anything changed.
 * @kernel ext4_xattr_block_set
 */
async function xattrBlockSet(h: Handle, deps: XattrDeps, inode: InodeInfo, old: LoadedBlock | null, area: Area): Promise<void> {
  const fs = h.fs;
  // Whom the block is charged to, loaded before any charge (dquot_initialize before xattr changes).
  const dquots = await inodeDquots(fs, inode);
  const ix = xattrBlockIndex(fs);
  let target = 0;
  if (area.table.length > 0) {
    const bytes = encodeXattrBlock(area.values, fs.blockSize, 1);
    const { h_hash } = xattrHeader.decode(bytes);
    const mine = decodeXattrBlock(bytes).entries;
    const exclude = old?.pblk ?? 0;
    while (target === 0 && h_hash !== 0) {
      const found = await findIdentical(fs, h_hash, mine, exclude);
      if (found === 0) break;
      const data = await h.getWriteAccess(found);
      // One synchronous section (the kernel holds the buffer lock): re-check what the search
      // saw, take the reference, charge the inode. A block that filled up or changed since is
      // passed over and the search repeated (it skips such blocks now).
      const hdr = xattrHeader.decode(data);
      const ref = hdr.h_refcount + 1;
      if (ref > EXT4_XATTR_REFCOUNT_MAX || hdr.h_hash !== h_hash || !sameEntries(mine, reported(fs, () => decodeXattrBlock(data, { block: found })).entries)) {
        if (hdr.h_hash !== h_hash) ix.remove(found);
        continue;
      }
      chargeBlockReference(fs, dquots, 1); // EDQUOT here changes nothing
      xattrHeader.encode({ h_refcount: ref }, data);
      blockCsumSet(fs, data, found);
      h.dirtyMetadata(found);
      chargeBlocks(fs, inode, 1);
      ix.touch(found);
      target = found;
    }
    if (target === 0 && old !== null && old.refcount === 1) {
      // Ours alone: edit in place (no charge change). It leaves the index while it changes.
      // Decided on the refcount read together with the edit, not the one loaded earlier.
      const data = await h.getWriteAccess(old.pblk);
      if (xattrHeader.decode(data).h_refcount === 1) {
        ix.remove(old.pblk);
        data.set(bytes);
        blockCsumSet(fs, data, old.pblk);
        h.dirtyMetadata(old.pblk);
        ix.insert(h_hash, old.pblk);
        target = old.pblk;
      }
    }
    if (target === 0) {
      // A new block (fresh, or a copy of a shared one). How it is paid for is decided here,
      // in the request, never from inode state (the seed rule).
      const group = Math.floor((inode.ino - 1) / fs.inodesPerGroup);
      const req = allocRequest({
        ino: inode.ino,
        purpose: "xattrBlock",
        goal: groupFirstBlock(fs.sb, group), // @kernel ext4_xattr_block_set: ext4_group_first_block_no(sb, i_block_group)
        len: 1,
        funding: { kind: "chargeNow", quota: "enforce" }, // the allocator charges it, once
        dquots,
      });
      const got = await deps.alloc.alloc(h, req);
      assert(got.len === 1, () => `Xattr block allocation returned ${got.len} blocks`);
      chargeBlocks(fs, inode, 1);
      const data = await h.getCreateAccess(got.pblk);
      data.set(bytes);
      blockCsumSet(fs, data, got.pblk);
      h.dirtyMetadata(got.pblk);
      ix.insert(h_hash, got.pblk);
      target = got.pblk;
    }
  }
  setFileAcl(inode, target);
  if (old !== null && old.pblk !== target) await releaseXattrBlock(h, deps, inode, old.pblk, dquots);
}

// =======================================================================================
// Set and remove

/**
 * Set (`value` non-null) or remove (`value` null) the attribute `index`/`name` of `inode`,
 * with XATTR_CREATE (EEXIST if present) and XATTR_REPLACE (ENODATA if absent). Removing an
 * absent attribute without XATTR_REPLACE, or setting the value it already has, changes
 * nothing. On a change, updates ctime and writes the inode. Returns whether it changed.
 * Errors: ERANGE for a name over 255 bytes, ENOSPC when the attribute fits neither in the
 * inode nor in the block, ENOSPC from block allocation, EFSCORRUPTED/EFSBADCRC.
 * @kernel ext4_xattr_set_handle
 */
export async function xattrSetHandle(h: Handle, deps: XattrDeps, inode: InodeInfo, index: number, name: Uint8Array, value: Uint8Array | null, flags: number): Promise<boolean> {
  const fs = h.fs;
  if (name.length > XATTR_NAME_MAX) throw new FsError("ERANGE", `Xattr name of ${name.length} bytes exceeds ${XATTR_NAME_MAX}`, { ino: inode.ino });
  const region = ibodyRegion(fs, inode);
  const ibody = ibodyArea(fs, inode, region);
  const oldPblk = inodeFileAcl(inode.raw, fs.features.is64bit);
  const block = oldPblk === 0 ? null : await loadXattrBlock(fs, inode.ino, oldPblk);
  const blockArea = block?.area ?? EMPTY_AREA;

  const inIbody = find(ibody, index, name);
  const inBlock = inIbody < 0 ? find(blockArea, index, name) : -1;
  if (inIbody < 0 && inBlock < 0) {
    if (flags & XATTR_REPLACE) throw new FsError("ENODATA", "No data available", { ino: inode.ino });
    if (value === null) return false;
  } else if (flags & XATTR_CREATE) {
    throw new FsError("EEXIST", "File exists", { ino: inode.ino });
  }

  let newIbody = ibody;
  let newBlock = blockArea;
  if (value === null) {
    if (inIbody >= 0) newIbody = without(ibody, inIbody);
    else newBlock = without(blockArea, inBlock);
  } else {
    // Xattr value did not change? Nothing to do (the kernel does not even touch ctime).
    if (inIbody >= 0 && sameBytes(ibody.table[inIbody]!.value, value)) return false;
    if (inBlock >= 0 && sameBytes(blockArea.table[inBlock]!.value, value)) return false;
    const tryIbody = region === null ? null : withValue(ibody, index, name, value);
    if (tryIbody !== null && region !== null && xattrIbodyHeader.size + areaBytes(tryIbody) <= region.size) {
      newIbody = tryIbody;
      if (inBlock >= 0) newBlock = without(blockArea, inBlock);
    } else {
      const tryBlock = withValue(blockArea, index, name, value);
      const need = xattrHeader.size + areaBytes(tryBlock);
      if (need > fs.blockSize) {
        throw new FsError("ENOSPC", `No space left for xattr of ${value.length} bytes: the inode and the ${fs.blockSize}-byte xattr block are full`, { ino: inode.ino });
      }
      newBlock = tryBlock;
      if (inIbody >= 0) newIbody = without(ibody, inIbody);
    }
  }

  // Encode the body first (bad names throw here, before anything changed), then the block,
  // whose allocation is the last thing that can fail.
  const ibodyBytes = newIbody !== ibody && region !== null ? encodeIbody(newIbody, region.size) : null;
  if (newBlock !== blockArea) await xattrBlockSet(h, deps, inode, block, newBlock);
  if (ibodyBytes !== null && region !== null) inode.bytes.set(ibodyBytes, region.start);
  // @kernel ext4_xattr_update_super_block
  if ((fs.sb.s_feature_compat & EXT4_FEATURE_COMPAT_EXT_ATTR) === 0) fs.sb.s_feature_compat |= EXT4_FEATURE_COMPAT_EXT_ATTR;
  setInodeTime(inode.raw, fs.inodeSize, "i_ctime", deps.now());
  await markInodeDirty(h, inode);
  return true;
}

// =======================================================================================
// POSIX ACLs

/**
 * The mode an ACL implies (permission bits from USER_OBJ, GROUP_OBJ or MASK, OTHER;
 * setuid/setgid/sticky kept) and whether the mode alone expresses it (no MASK, no named
 * entries). @kernel posix_acl_equiv_mode
 */
export function aclEquivMode(acl: readonly AclEntry[], mode: number): { mode: number; equivalent: boolean } {
  let bits = 0;
  let equivalent = true;
  for (const e of acl) {
    switch (e.tag) {
      case ACL_USER_OBJ:
        bits |= (e.perm & 0o7) << 6;
        break;
      case ACL_GROUP_OBJ:
        bits |= (e.perm & 0o7) << 3;
        break;
      case ACL_OTHER:
        bits |= e.perm & 0o7;
        break;
      case ACL_MASK:
        bits = (bits & ~0o070) | ((e.perm & 0o7) << 3);
        equivalent = false;
        break;
      case ACL_USER:
      case ACL_GROUP:
        equivalent = false;
        break;
      default:
        throw new FsError("EINVAL", `ACL entry has unknown tag 0x${e.tag.toString(16)}`);
    }
  }
  return { mode: (mode & ~S_IRWXUGO) | bits, equivalent };
}

/**
 * Set (or, with `acl` null, remove) the access or default ACL. An access ACL the mode bits
 * express is not stored: the mode takes it and any stored access ACL goes; otherwise the
 * mode's group bits follow the mask. setgid is dropped unless the caller is root or in the
 * file's group. Default ACLs exist only on directories (EACCES, or nothing to remove).
 * The caller has validated `acl` (posix_acl_valid).
 * @kernel ext4_set_acl + posix_acl_update_mode + __ext4_set_acl
 */
export async function setAcl(h: Handle, deps: XattrDeps, inode: InodeInfo, type: "access" | "default", acl: readonly AclEntry[] | null, caller: XattrCaller): Promise<void> {
  const fs = h.fs;
  let stored = acl;
  let mode = inode.raw.i_mode;
  if (type === "access" && acl !== null) {
    const r = aclEquivMode(acl, mode);
    if (r.equivalent) stored = null;
    mode = r.mode;
    if (!(caller.uid === 0 || caller.gid === inodeGid(inode.raw))) mode &= ~S_ISGID; // in_group_or_capable
  }
  if (type === "default" && (inode.raw.i_mode & S_IFMT) !== S_IFDIR) {
    if (acl !== null) throw new FsError("EACCES", "Permission denied", { ino: inode.ino });
    return;
  }
  const index = type === "access" ? EXT4_XATTR_INDEX_POSIX_ACL_ACCESS : EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT;
  await xattrSetHandle(h, deps, inode, index, new Uint8Array(0), stored === null ? null : encodeExt4Acl(stored), 0);
  if (mode !== inode.raw.i_mode) {
    inode.raw.i_mode = mode;
    setInodeTime(inode.raw, fs.inodeSize, "i_ctime", deps.now());
    await markInodeDirty(h, inode);
  }
}

/** The stored ACL of `type`, or null. @kernel ext4_get_acl */
export async function getAcl(fs: Ext4Fs, inode: InodeInfo, type: "access" | "default"): Promise<AclEntry[] | null> {
  const index = type === "access" ? EXT4_XATTR_INDEX_POSIX_ACL_ACCESS : EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT;
  const none = new Uint8Array(0);
  const ibody = ibodyArea(fs, inode, ibodyRegion(fs, inode));
  let value = ibody.table[find(ibody, index, none)]?.value;
  const pblk = inodeFileAcl(inode.raw, fs.features.is64bit);
  if (value === undefined && pblk !== 0) {
    const block = await loadXattrBlock(fs, inode.ino, pblk);
    value = block.area.table[find(block.area, index, none)]?.value;
  }
  return value === undefined ? null : reported(fs, () => decodeExt4Acl(value, { ino: inode.ino }));
}

/**
 * The ACLs and mode of a new inode in `dir`: with a default ACL there, the new inode's
 * access ACL is that ACL masked by the requested mode (none when the mode then says it all),
 * its mode comes from the ACL instead of the umask, and a directory inherits the default ACL.
 * Null when `dir` has no default ACL (the caller applies the umask). Symlinks get no ACLs.
 * @kernel posix_acl_create + posix_acl_create_masq
 */
export async function aclsForNewInode(fs: Ext4Fs, dir: InodeInfo, mode: number): Promise<{ mode: number; access: AclEntry[] | null; dflt: AclEntry[] | null } | null> {
  if ((mode & S_IFMT) === S_IFLNK) return null;
  const parent = await getAcl(fs, dir, "default");
  if (parent === null) return null;
  const acl = parent.map((e) => ({ ...e }));
  let m = mode;
  let notEquiv = false;
  let groupObj: AclEntry | undefined;
  let maskObj: AclEntry | undefined;
  for (const e of acl) {
    switch (e.tag) {
      case ACL_USER_OBJ:
        e.perm &= (m >> 6) & 0o7;
        m &= (e.perm << 6) | ~0o700;
        break;
      case ACL_USER:
      case ACL_GROUP:
        notEquiv = true;
        break;
      case ACL_GROUP_OBJ:
        groupObj = e;
        break;
      case ACL_OTHER:
        e.perm &= m & 0o7;
        m &= e.perm | ~0o007;
        break;
      case ACL_MASK:
        maskObj = e;
        notEquiv = true;
        break;
    }
  }
  const g = maskObj ?? groupObj;
  if (g === undefined) throw fsCorrupted(fs, { ino: dir.ino, what: "Default ACL has no group or mask entry" });
  g.perm &= (m >> 3) & 0o7;
  m &= (g.perm << 3) | ~0o070;
  return { mode: (mode & ~S_IRWXUGO) | (m & S_IRWXUGO), access: notEquiv ? acl : null, dflt: (mode & S_IFMT) === S_IFDIR ? parent : null };
}

/** Store a new inode's inherited ACLs, default first. @kernel ext4_init_acl */
export async function initAcls(h: Handle, deps: XattrDeps, inode: InodeInfo, acls: { access: AclEntry[] | null; dflt: AclEntry[] | null }): Promise<void> {
  const none = new Uint8Array(0);
  if (acls.dflt !== null) await xattrSetHandle(h, deps, inode, EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT, none, encodeExt4Acl(acls.dflt), XATTR_CREATE);
  if (acls.access !== null) await xattrSetHandle(h, deps, inode, EXT4_XATTR_INDEX_POSIX_ACL_ACCESS, none, encodeExt4Acl(acls.access), XATTR_CREATE);
}

/**
 * After a chmod: a stored access ACL follows the new mode (USER_OBJ, MASK or else
 * GROUP_OBJ, OTHER; named entries stay). @kernel posix_acl_chmod / __posix_acl_chmod
 */
export async function aclChmod(h: Handle, deps: XattrDeps, inode: InodeInfo): Promise<void> {
  if ((inode.raw.i_mode & S_IFMT) === S_IFLNK) return;
  const acl = await getAcl(h.fs, inode, "access");
  if (acl === null) return;
  const mode = inode.raw.i_mode;
  const hasMask = acl.some((e) => e.tag === ACL_MASK);
  for (const e of acl) {
    if (e.tag === ACL_USER_OBJ) e.perm = (mode >> 6) & 0o7;
    else if (e.tag === ACL_OTHER) e.perm = mode & 0o7;
    else if (e.tag === (hasMask ? ACL_MASK : ACL_GROUP_OBJ)) e.perm = (mode >> 3) & 0o7;
  }
  await xattrSetHandle(h, deps, inode, EXT4_XATTR_INDEX_POSIX_ACL_ACCESS, new Uint8Array(0), encodeExt4Acl(acl), 0);
}

// =======================================================================================
// The VFS side: names, namespaces, permissions

/** A full name resolved to what stores it. */
export type XattrTarget =
  | { readonly kind: "plain"; readonly index: number; readonly name: Uint8Array }
  | { readonly kind: "acl"; readonly type: "access" | "default" };

/** The handlers ext4 registers for setxattr (ext4_xattr_handlers), prefix -> name index. */
const PREFIX_HANDLERS: readonly { prefix: string; index: number }[] = [
  { prefix: "user.", index: EXT4_XATTR_INDEX_USER },
  { prefix: "trusted.", index: EXT4_XATTR_INDEX_TRUSTED },
  { prefix: "security.", index: EXT4_XATTR_INDEX_SECURITY },
  { prefix: "gnu.", index: EXT4_XATTR_INDEX_HURD },
];

/**
 * The checks the VFS makes on the arguments before it looks the path up: flags (EINVAL),
 * the name's length in bytes, 1..255 (ERANGE), the value's size (E2BIG over 64 KiB).
 * @kernel setxattr_copy / import_xattr_name
 */
export function checkXattrArgs(name: string, value: Uint8Array | null, flags: number): void {
  if (!Number.isInteger(flags) || (flags & ~(XATTR_CREATE | XATTR_REPLACE)) !== 0) throw new FsError("EINVAL", `Invalid xattr flags ${flags}`);
  if (name.includes("\0")) throw new FsError("EINVAL", "Xattr name contains a NUL character");
  const n = utf8.encode(name).length;
  if (n === 0 || n > XATTR_FULL_NAME_MAX) throw new FsError("ERANGE", `Xattr name of ${n} bytes is not 1..${XATTR_FULL_NAME_MAX}`);
  if (value !== null && value.length > XATTR_SIZE_MAX) throw new FsError("E2BIG", `Xattr value of ${value.length} bytes exceeds ${XATTR_SIZE_MAX}`);
}

/**
 * Which handler takes a full name: the two POSIX ACL names, or a prefix ext4 handles
 * (user., trusted., security., gnu.). EOPNOTSUPP for any other name ("system.foo",
 * "foo.bar"), EINVAL for a bare prefix ("user.").
 * @kernel is_posix_acl_xattr + xattr_resolve_name
 */
export function resolveXattrName(full: string): XattrTarget {
  if (full === POSIX_ACL_XATTR_ACCESS) return { kind: "acl", type: "access" };
  if (full === POSIX_ACL_XATTR_DEFAULT) return { kind: "acl", type: "default" };
  for (const p of PREFIX_HANDLERS) {
    if (!full.startsWith(p.prefix)) continue;
    if (full.length === p.prefix.length) throw new FsError("EINVAL", `Xattr name "${full}" has nothing after the prefix`);
    return { kind: "plain", index: p.index, name: utf8.encode(full.slice(p.prefix.length)) };
  }
  throw new FsError("EOPNOTSUPP", `Operation not supported: no handler for xattr name "${full}"`);
}

/** Immutable and append-only inodes refuse xattr changes. @kernel may_write_xattr */
function mayWriteXattr(inode: InodeInfo): void {
  if (inode.raw.i_flags & (EXT4_IMMUTABLE_FL | EXT4_APPEND_FL)) throw new FsError("EPERM", "Operation not permitted", { ino: inode.ino });
}

/**
 * Namespace rules for writing: trusted.* needs CAP_SYS_ADMIN (root here); user.* only on
 * regular files and directories, and on a sticky directory only by its owner or root.
 * The final inode_permission(MAY_WRITE) for non-root callers is not modelled.
 * @kernel xattr_permission (MAY_WRITE)
 */
function xattrWritePermission(inode: InodeInfo, name: string, caller: XattrCaller): void {
  if (name.startsWith("trusted.") && caller.uid !== 0) throw new FsError("EPERM", "Operation not permitted", { ino: inode.ino });
  if (!name.startsWith("user.")) return;
  const type = inode.raw.i_mode & S_IFMT;
  if (type !== S_IFREG && type !== S_IFDIR) throw new FsError("EPERM", "Operation not permitted", { ino: inode.ino });
  if (type === S_IFDIR && inode.raw.i_mode & S_ISVTX && caller.uid !== 0 && caller.uid !== inodeUid(inode.raw)) {
    throw new FsError("EPERM", "Operation not permitted", { ino: inode.ino });
  }
}

/** An ACL as setxattr takes it (VFS format): null for "no ACL" (empty value or no entries). @kernel posix_acl_from_xattr */
function parseVfsAcl(value: Uint8Array): AclEntry[] | null {
  if (value.length === 0) return null;
  const entries = decodeVfsAcl(value);
  return entries.length === 0 ? null : entries;
}

/**
 * The ACL part of set and remove, after the value is parsed. @kernel vfs_set_acl / vfs_remove_acl -> set_posix_acl
 */
async function setPosixAcl(h: Handle, deps: XattrDeps, inode: InodeInfo, type: "access" | "default", acl: AclEntry[] | null, caller: XattrCaller): Promise<void> {
  mayWriteXattr(inode);
  if ((inode.raw.i_mode & S_IFMT) === S_IFLNK) throw new FsError("EOPNOTSUPP", "Operation not supported: symlinks have no ACLs", { ino: inode.ino }); // no i_op->set_acl
  if (type === "default" && (inode.raw.i_mode & S_IFMT) !== S_IFDIR) {
    if (acl !== null) throw new FsError("EACCES", "Permission denied: default ACLs exist only on directories", { ino: inode.ino });
    return;
  }
  if (caller.uid !== 0 && caller.uid !== inodeUid(inode.raw)) throw new FsError("EPERM", "Operation not permitted", { ino: inode.ino }); // inode_owner_or_capable
  if (acl !== null) checkPosixAcl(acl);
  await setAcl(h, deps, inode, type, acl, caller);
}

/**
 * setxattr after path lookup, with the VFS's rules: argument checks, ACL names to
 * set_posix_acl (flags ignored there, as Linux does), other names through the namespace
 * permission check and ext4_xattr_set_handle.
 * @kernel vfs_setxattr / do_set_acl
 */
export async function vfsSetxattr(h: Handle, deps: XattrDeps, inode: InodeInfo, name: string, value: Uint8Array, flags: number, caller: XattrCaller): Promise<void> {
  checkXattrArgs(name, value, flags);
  if (name === POSIX_ACL_XATTR_ACCESS || name === POSIX_ACL_XATTR_DEFAULT) {
    const acl = parseVfsAcl(value);
    await setPosixAcl(h, deps, inode, name === POSIX_ACL_XATTR_ACCESS ? "access" : "default", acl, caller);
    return;
  }
  mayWriteXattr(inode);
  xattrWritePermission(inode, name, caller);
  const t = resolveXattrName(name);
  assert(t.kind === "plain", "ACL names are handled above");
  await xattrSetHandle(h, deps, inode, t.index, t.name, value, flags);
}

/**
 * removexattr after path lookup: ENODATA when absent, except for ACL names, whose removal
 * succeeds when there is nothing to remove (set_posix_acl with no ACL).
 * @kernel vfs_removexattr / vfs_remove_acl
 */
export async function vfsRemovexattr(h: Handle, deps: XattrDeps, inode: InodeInfo, name: string, caller: XattrCaller): Promise<void> {
  checkXattrArgs(name, null, 0);
  if (name === POSIX_ACL_XATTR_ACCESS || name === POSIX_ACL_XATTR_DEFAULT) {
    await setPosixAcl(h, deps, inode, name === POSIX_ACL_XATTR_ACCESS ? "access" : "default", null, caller);
    return;
  }
  mayWriteXattr(inode);
  xattrWritePermission(inode, name, caller);
  const t = resolveXattrName(name);
  assert(t.kind === "plain", "ACL names are handled above");
  await xattrSetHandle(h, deps, inode, t.index, t.name, null, XATTR_REPLACE);
}
