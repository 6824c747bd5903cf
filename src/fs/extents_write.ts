/**
 * Extent tree writes: map a hole, convert unwritten blocks to written, remove a range, check a
 * tree (@kernel fs/ext4/extents.c: ext4_ext_insert_extent, ext4_ext_create_new_leaf,
 * ext4_ext_split, ext4_ext_grow_indepth, ext4_ext_try_to_merge(_up), ext4_ext_correct_indexes,
 * ext4_ext_convert_to_initialized, ext4_split_extent(_at), ext4_ext_remove_space,
 * ext4_ext_rm_leaf, ext4_ext_rm_idx).
 *
 * Design note.
 * - The tree: a root of 4 slots in i_block[] (the inode's `raw.i_block`, edited in place),
 *   blocks below it of (blocksize - 12) / 12 slots with a crc32c tail under metadata_csum.
 *   Every index key equals the first key of its child; leaves hold sorted, disjoint extents.
 * - Insert (ext4_ext_insert_extent): the range must be a hole. Merge into the left or right
 *   neighbour when logically and physically contiguous, same written-ness and the sum fits
 *   (EXT_INIT_MAX_LEN / EXT_UNWRITTEN_MAX_LEN); the right neighbour may be the first extent of
 *   the next leaf. Otherwise insert; a full leaf whose right sibling has room takes it there,
 *   else the path is split below the deepest ancestor with a free slot (ext4_ext_split: new
 *   nodes to the right, one index entry added to that ancestor), or, when every node up to the
 *   root is full, the root's slots move into a new block and the root becomes a one-entry index
 *   (ext4_ext_grow_indepth). After inserting, a depth-1 tree whose only leaf fits in the root is
 *   pulled back into the inode (ext4_ext_try_to_merge_up).
 * - Convert (ext4_ext_convert_to_initialized): blocks inside one unwritten extent become written.
 *   Fast path first: a range at the head (tail) of the extent whose left (right) neighbour in the
 *   same leaf is written and logically and physically contiguous moves into that neighbour, two
 *   slots rewritten, nothing allocated. Otherwise, as ext4_split_extent: the unwritten tail is
 *   split off and inserted without merging (EXT4_GET_BLOCKS_PRE_IO), then either the remaining
 *   extent is marked written and merged with written neighbours in its leaf
 *   (ext4_ext_try_to_merge), or the unwritten head is shortened and the written middle inserted
 *   like a new extent (merging with a written right neighbour). Either insert may split the leaf
 *   or grow the tree. No zero-out: the kernel's EXT4_EXT_MAY_ZEROOUT shortcut (write zeros to a
 *   small unwritten remainder and mark it written too) is not taken, so the shapes can differ
 *   from the kernel's for extents inside i_size smaller than extent_max_zeroout_kb.
 * - Remove (ext4_ext_remove_space): punching the middle of one extent first splits it in two
 *   (the right half is inserted like a new extent, so it may split a leaf and allocate); then a
 *   depth-first walk trims or deletes extents, deletes emptied leaf and index blocks and their
 *   index entries, fixes index keys whose child's first key moved, and resets an emptied root
 *   to depth 0.
 * - Allocation follows the seed rule (DEVELOPERS.md): every tree block is one request with
 *   purpose "extentNode" and funding `childFunding(parent)` — taken from the data request the
 *   insert serves, never from inode state; the goal is the new data's first block. All blocks a
 *   split or grow needs are allocated (and their buffers created) before the tree is touched,
 *   so a failed allocation leaves the tree as it was, and the mutation itself runs without an
 *   await. Frees are deferred to the end of the operation, after every reference is gone.
 *
 * Accounting split (§1.1 of the allocation note): these functions add or subtract one block's
 * sectors in i_blocks for each tree block they allocate or free; data blocks are the caller's
 * (it allocated them; `extRemoveSpace` returns how many it freed). Both functions write the
 * inode back themselves (markInodeDirty in the caller's handle) whenever they changed i_block or
 * i_blocks, as ext4_ext_dirty does for the root; callers that change more fields mark it again.
 *
 * Locking: the caller holds the inode's i_data_sem for write (nothing else reads or changes the
 * tree while an operation awaits) and runs in handle `h`. A tree block this module freed may
 * come back from the allocator in the same handle (balloc reuses at once; the kernel waits for
 * the commit): it is re-zeroed through write access, since getCreateAccess refuses held blocks.
 * Not supported: bigalloc partial clusters, the extent status tree — separate milestones.
 */

import { assert, debugLevel } from "../debug/assert.js";
import { extentBlockChecksum } from "../format/checksum.js";
import {
  EXT4_EXT_MAGIC, EXT4_MAX_EXTENT_DEPTH, EXT_INIT_MAX_LEN, EXT_UNWRITTEN_MAX_LEN, decodeExtentNode, extentHeader,
  extentIdx, extentLeaf, extentTail, extentTailOffset, type Extent, type ExtentIndex,
} from "../format/extent.js";
import { EXT4_EXTENTS_FL, inodeBlocks, inodeFileAcl } from "../format/inode.js";
import { join64, split64 } from "../format/struct.js";
import { allocRequest, childFunding, type AllocRequest, type BlockAllocator, type Funding } from "./alloc_request.js";
import type { Handle } from "./handle.js";
import type { InodeDquots } from "./quota.js";
import { inodeDquots } from "./quota_charge.js";
import { markInodeDirty, setInodeBlocks, type InodeInfo } from "./inode_write.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";

/** Where tree blocks come from and go back to (alloc_request.ts; balloc implements it). */
export type { BlockAllocator };

/** A mapping to add: `len` blocks from logical `lblk` at physical `pblk`. */
export interface NewExtent {
  readonly lblk: number;
  readonly len: number;
  readonly pblk: number;
  readonly unwritten: boolean;
}

/** One past the last logical block an extent may cover; also `to` for "to the end". @kernel EXT_MAX_BLOCKS */
export const EXT_MAX_BLOCKS = 0xffffffff;
const KEY_LIMIT = 2 ** 32; // above every key: "no next key"

/** The fields the tree code reads from an inode (InodeInfo and Inode both have them). */
export type ExtentInode = Pick<InodeInfo, "ino" | "raw" | "csumSeed">;

// ---------------------------------------------------------------------------------------------
// Slots

/** A node on a path: the root (pblk 0, buffer = raw.i_block) or a block held by the handle. */
interface Node {
  readonly pblk: number;
  readonly buf: Uint8Array;
  depth: number;
  entries: number;
  max: number;
  /** Index node: slot followed. Leaf: last extent starting at or before the key, -1 if none. */
  at: number;
}

const slot = (i: number): number => extentHeader.size + i * extentLeaf.size;
const maxLen = (unwritten: boolean): number => (unwritten ? EXT_UNWRITTEN_MAX_LEN : EXT_INIT_MAX_LEN);

function readExtent(buf: Uint8Array, i: number): Extent {
  const e = extentLeaf.decode(buf, slot(i));
  const unwritten = e.ee_len > EXT_INIT_MAX_LEN;
  return { lblk: e.ee_block, len: unwritten ? e.ee_len - EXT_INIT_MAX_LEN : e.ee_len, pblk: join64(e.ee_start_lo, e.ee_start_hi), unwritten };
}

function writeExtent(buf: Uint8Array, i: number, e: Extent): void {
  assert(e.len >= 1 && e.len <= maxLen(e.unwritten), () => `Extent length ${e.len} out of range`);
  const { lo, hi } = split64(e.pblk);
  assert(hi <= 0xffff, () => `Block ${e.pblk} does not fit an extent`);
  extentLeaf.encode({ ee_block: e.lblk, ee_len: e.unwritten ? e.len + EXT_INIT_MAX_LEN : e.len, ee_start_hi: hi, ee_start_lo: lo }, buf, slot(i));
}

function readIndex(buf: Uint8Array, i: number): ExtentIndex {
  const x = extentIdx.decode(buf, slot(i));
  return { lblk: x.ei_block, pblk: join64(x.ei_leaf_lo, x.ei_leaf_hi) };
}

function writeIndex(buf: Uint8Array, i: number, x: ExtentIndex): void {
  const { lo, hi } = split64(x.pblk);
  assert(hi <= 0xffff, () => `Block ${x.pblk} does not fit an index`);
  extentIdx.encode({ ei_block: x.lblk, ei_leaf_lo: lo, ei_leaf_hi: hi, ei_unused: 0 }, buf, slot(i));
}

function keyOf(n: Node, i: number): number {
  return n.depth === 0 ? readExtent(n.buf, i).lblk : readIndex(n.buf, i).lblk;
}

function setEntries(n: Node, count: number): void {
  n.entries = count;
  extentHeader.encode({ eh_entries: count }, n.buf, 0);
}

/** Make room at slot i (entries i.. move right by one). */
function openSlot(n: Node, i: number): void {
  assert(n.entries < n.max, "openSlot on a full node");
  n.buf.copyWithin(slot(i + 1), slot(i), slot(n.entries));
  setEntries(n, n.entries + 1);
}

/** Delete `count` slots from i; the vacated tail is zeroed. */
function closeSlots(n: Node, i: number, count: number): void {
  n.buf.copyWithin(slot(i), slot(i + count), slot(n.entries));
  n.buf.fill(0, slot(n.entries - count), slot(n.entries));
  setEntries(n, n.entries - count);
}

/** Last slot whose key is <= lblk, or -1. @kernel ext4_ext_binsearch(_idx) */
function search(n: Node, lblk: number): number {
  let lo = 0;
  let hi = n.entries - 1;
  let found = -1;
  while (lo <= hi) {
    const m = (lo + hi) >> 1;
    if (keyOf(n, m) <= lblk) {
      found = m;
      lo = m + 1;
    } else hi = m - 1;
  }
  return found;
}

/** @kernel ext4_can_extents_be_merged (a directly before b) */
function canMerge(a: Extent, b: Extent): boolean {
  return a.unwritten === b.unwritten && a.lblk + a.len === b.lblk && a.pblk + a.len === b.pblk && a.len + b.len <= maxLen(a.unwritten);
}

// ---------------------------------------------------------------------------------------------
// Operation context, nodes, paths

interface Ctx {
  readonly h: Handle;
  readonly fs: Ext4Fs;
  readonly inode: InodeInfo;
  readonly alloc: BlockAllocator;
  /** i_block or i_blocks changed: write the inode back at the end. */
  inodeChanged: boolean;
  /** Deferred frees, done after every reference is gone. */
  readonly dataFrees: { pblk: number; count: number }[];
  readonly treeFrees: number[];
  /**
   * Whom the operation's tree blocks (and freed data) are charged to: the parent request's
   * dquots for insert/convert (a child request inherits them), the inode's for removal.
   */
  readonly dquots: InodeDquots | null;
}

function newCtx(h: Handle, alloc: BlockAllocator, inode: InodeInfo, dquots: InodeDquots | null): Ctx {
  const fs = h.fs;
  assert((inode.raw.i_flags & EXT4_EXTENTS_FL) !== 0, () => `Inode ${inode.ino} does not use extents`);
  // The root is checked as the read path checks it (throws EFSCORRUPTED).
  decodeExtentNode(inode.raw.i_block, inode.raw.i_block.length, {
    isRoot: true, blocksCount: fs.blocksCount, firstDataBlock: fs.sb.s_first_data_block, ctx: { ino: inode.ino },
  });
  return { h, fs, inode, alloc, inodeChanged: false, dataFrees: [], treeFrees: [], dquots };
}

/**
 * Buffers whose structure and checksum were checked since they were read (the kernel's
 * buffer_verified). The cache hands out a fresh array per read, so a re-read is re-checked.
 */
const verified = new WeakSet<Uint8Array>();

/**
 * Tree blocks each handle holds through this module. A tree block freed earlier in the same
 * handle may come straight back from the allocator (balloc reuses freed blocks at once until
 * the journal lands); the handle already holds it, so it is re-zeroed through write access
 * instead of getCreateAccess, which refuses held blocks.
 */
const heldByHandle = new WeakMap<Handle, Set<number>>();

function noteHeld(h: Handle, pblk: number): void {
  let set = heldByHandle.get(h);
  if (set === undefined) heldByHandle.set(h, (set = new Set()));
  set.add(pblk);
}

function rootOf(ctx: Ctx): Node {
  const buf = ctx.inode.raw.i_block;
  const hd = extentHeader.decode(buf, 0);
  return { pblk: 0, buf, depth: hd.eh_depth, entries: hd.eh_entries, max: hd.eh_max, at: -1 };
}

/** Capacity of a tree block. @kernel ext4_ext_space_block */
function blockSlots(fs: Ext4Fs): number {
  return Math.floor((fs.blockSize - extentHeader.size) / extentLeaf.size);
}

/** Capacity of the root in i_block. @kernel ext4_ext_space_root */
function rootSlots(inode: ExtentInode): number {
  return Math.floor((inode.raw.i_block.length - extentHeader.size) / extentLeaf.size);
}

/** Read (through the handle) and check a non-root node. @kernel read_extent_tree_block */
async function readNode(ctx: Ctx, pblk: number, depth: number, firstKey: number): Promise<Node> {
  const { fs, inode } = ctx;
  const buf = await ctx.h.getWriteAccess(pblk);
  noteHeld(ctx.h, pblk);
  if (!verified.has(buf)) {
    decodeExtentNode(buf, fs.blockSize, {
      expectedDepth: depth, blocksCount: fs.blocksCount, firstDataBlock: fs.sb.s_first_data_block, isRoot: false, firstKey,
      ctx: { ino: inode.ino, block: pblk },
    });
    if (fs.features.metadataCsum) {
      const at = extentTailOffset(extentHeader.decode(buf, 0));
      if (at + extentTail.size > fs.blockSize || extentTail.decode(buf, at).et_checksum !== extentBlockChecksum(buf, at, inode.csumSeed)) {
        throw fsCorrupted(fs, { ino: inode.ino, block: pblk, what: "Extent block checksum does not match", crc: true });
      }
    }
    verified.add(buf);
  }
  const hd = extentHeader.decode(buf, 0);
  const n: Node = { pblk, buf, depth: hd.eh_depth, entries: hd.eh_entries, max: hd.eh_max, at: -1 };
  // Cheap re-checks for a verified buffer reached through another parent (a cross-linked tree).
  if (n.depth !== depth || (n.entries > 0 && keyOf(n, 0) !== firstKey)) {
    throw fsCorrupted(fs, { ino: inode.ino, block: pblk, what: `Extent node depth ${n.depth} or first key does not match its index (depth ${depth}, key ${firstKey})` });
  }
  return n;
}

/** Root-to-leaf path towards `lblk`. @kernel ext4_find_extent */
async function findPath(ctx: Ctx, lblk: number): Promise<Node[]> {
  const path = [rootOf(ctx)];
  for (;;) {
    const n = path[path.length - 1]!; // path is never empty
    if (n.depth === 0) {
      n.at = search(n, lblk);
      return path;
    }
    if (n.entries === 0) throw fsCorrupted(ctx.fs, { ino: ctx.inode.ino, block: n.pblk, what: "Extent index node has no entries" });
    n.at = Math.max(0, search(n, lblk));
    const x = readIndex(n.buf, n.at);
    path.push(await readNode(ctx, x.pblk, n.depth - 1, x.lblk));
  }
}

const leafOf = (path: Node[]): Node => path[path.length - 1]!; // paths end at a leaf

/** First key right of the path's leaf (KEY_LIMIT if none). @kernel ext4_ext_next_leaf_block */
function nextLeafKey(path: Node[]): number {
  for (let k = path.length - 2; k >= 0; k--) {
    const n = path[k]!;
    if (n.at + 1 < n.entries) return keyOf(n, n.at + 1);
  }
  return KEY_LIMIT;
}

/** Record a node change: checksum and dirty a block, or note that the root (inode) changed. @kernel ext4_ext_dirty */
function dirty(ctx: Ctx, n: Node): void {
  if (n.pblk === 0) {
    ctx.inodeChanged = true;
    return;
  }
  if (ctx.fs.features.metadataCsum) {
    const at = extentTailOffset(extentHeader.decode(n.buf, 0));
    extentTail.encode({ et_checksum: extentBlockChecksum(n.buf, at, ctx.inode.csumSeed) }, n.buf, at);
  }
  ctx.h.dirtyMetadata(n.pblk);
}

/** i_blocks += count tree blocks (negative to subtract). */
function addTreeBlocks(ctx: Ctx, count: number): void {
  const { fs, inode } = ctx;
  const sectors = inodeBlocks(inode.raw, fs.features.hugeFile, fs.blockSize) + count * (fs.blockSize / 512);
  assert(sectors >= 0, () => `Inode ${inode.ino}: i_blocks would go negative`);
  setInodeBlocks(fs, inode, sectors);
  ctx.inodeChanged = true;
}

/** Unlink-side bookkeeping for a tree block no longer referenced; the free itself is deferred. */
function dropTreeBlock(ctx: Ctx, n: Node): void {
  verified.delete(n.buf);
  addTreeBlocks(ctx, -1);
  ctx.treeFrees.push(n.pblk);
}

/**
 * Fresh, empty nodes of the given depths in newly allocated blocks: one request each with
 * purpose "extentNode" and the funding the caller chose (never read from inode state). All or
 * nothing: on failure, frees what was granted and rethrows. Nothing references the nodes yet.
 * @kernel ext4_ext_new_meta_block
 */
async function allocNodes(ctx: Ctx, depths: readonly number[], goal: number, funding: Funding): Promise<Node[]> {
  const got: number[] = [];
  const nodes: Node[] = [];
  try {
    for (const depth of depths) {
      const req = allocRequest({ ino: ctx.inode.ino, purpose: "extentNode", goal, len: 1, funding, dquots: ctx.dquots });
      const r = await ctx.alloc.alloc(ctx.h, req);
      assert(r.len === 1 && ctx.fs.blockRangeValid(r.pblk, 1), () => `Allocator returned ${r.len} blocks at ${r.pblk} for one tree block`);
      got.push(r.pblk);
      const buf = heldByHandle.get(ctx.h)?.has(r.pblk) === true ? (await ctx.h.getWriteAccess(r.pblk)).fill(0) : await ctx.h.getCreateAccess(r.pblk);
      noteHeld(ctx.h, r.pblk);
      const max = blockSlots(ctx.fs);
      extentHeader.encode({ eh_magic: EXT4_EXT_MAGIC, eh_entries: 0, eh_max: max, eh_depth: depth, eh_generation: 0 }, buf, 0);
      verified.add(buf);
      nodes.push({ pblk: r.pblk, buf, depth, entries: 0, max, at: -1 });
    }
  } catch (err) {
    for (const n of nodes) verified.delete(n.buf);
    // Tree blocks are always chargeNow (childFunding): each grant was charged to ctx.dquots.
    for (const b of got) await ctx.alloc.free(ctx.h, ctx.inode.ino, b, 1, ctx.dquots);
    throw err;
  }
  return nodes;
}

/**
 * After the first key of the path's leaf changed, carry it up the index entries that lead
 * there, as far as each is its node's first. @kernel ext4_ext_correct_indexes
 */
function correctIndexes(ctx: Ctx, path: Node[]): void {
  const leaf = leafOf(path);
  if (leaf.entries === 0) return;
  const key = keyOf(leaf, 0);
  for (let k = path.length - 2; k >= 0; k--) {
    const n = path[k]!;
    const x = readIndex(n.buf, n.at);
    if (x.lblk === key) return;
    writeIndex(n.buf, n.at, { lblk: key, pblk: x.pblk });
    dirty(ctx, n);
    if (n.at !== 0) return;
  }
}

// ---------------------------------------------------------------------------------------------
// Insert

/**
 * Split the path below level `at` (which has a free slot): levels at+1..leaf each get a new
 * node to the right holding the entries after the path, and `at` gets an index entry for the
 * new subtree. Keys of the moved entries are unchanged. @kernel ext4_ext_split
 */
async function splitPath(ctx: Ctx, path: Node[], at: number, ext: Extent, funding: Funding): Promise<void> {
  const leafK = path.length - 1;
  const leaf = path[leafK]!;
  const moveFrom = Math.max(leaf.at, 0) + 1; // extents after the kernel's p_ext move right
  const border = moveFrom < leaf.entries ? readExtent(leaf.buf, moveFrom).lblk : ext.lblk;
  const count = leafK - at;
  // fresh[j]: the new node of level at + 1 + j
  const fresh = await allocNodes(ctx, path.slice(at + 1).map((n) => n.depth), ext.pblk, funding);
  // No await from here: the tree changes in one step.
  const moveRight = (old: Node, from: number, nn: Node, to: number): void => {
    const moved = Math.max(0, old.entries - from);
    nn.buf.set(old.buf.subarray(slot(from), slot(from + moved)), slot(to));
    setEntries(nn, to + moved);
    if (moved > 0) {
      old.buf.fill(0, slot(from), slot(old.entries));
      setEntries(old, from);
      dirty(ctx, old);
    }
    dirty(ctx, nn);
  };
  moveRight(leaf, moveFrom, fresh[count - 1]!, 0);
  for (let k = leafK - 1; k > at; k--) {
    const nn = fresh[k - at - 1]!;
    writeIndex(nn.buf, 0, { lblk: border, pblk: fresh[k - at]!.pblk });
    moveRight(path[k]!, path[k]!.at + 1, nn, 1);
  }
  const top = path[at]!;
  openSlot(top, top.at + 1);
  writeIndex(top.buf, top.at + 1, { lblk: border, pblk: fresh[0]!.pblk });
  dirty(ctx, top);
  addTreeBlocks(ctx, count);
}

/** Move the root's slots into a new block; the root becomes a one-entry index above it. @kernel ext4_ext_grow_indepth */
async function growInDepth(ctx: Ctx, ext: Extent, funding: Funding): Promise<void> {
  const root = rootOf(ctx);
  assert(root.depth < EXT4_MAX_EXTENT_DEPTH, () => `Inode ${ctx.inode.ino}: extent tree would exceed depth ${EXT4_MAX_EXTENT_DEPTH}`);
  assert(root.entries > 0, "growInDepth on an empty root");
  const nn = (await allocNodes(ctx, [root.depth], ext.pblk, funding))[0]!; // one depth asked, one node
  nn.buf.set(root.buf.subarray(slot(0), slot(root.entries)), slot(0));
  setEntries(nn, root.entries);
  dirty(ctx, nn);
  const key = keyOf(root, 0);
  root.buf.fill(0, slot(0), root.buf.length);
  extentHeader.encode({ eh_depth: root.depth + 1, eh_entries: 1, eh_max: rootSlots(ctx.inode) }, root.buf, 0);
  writeIndex(root.buf, 0, { lblk: key, pblk: nn.pblk });
  ctx.inodeChanged = true;
  addTreeBlocks(ctx, 1);
}

/** Give the full leaf on `path` room by splitting below the deepest non-full ancestor, or growing. @kernel ext4_ext_create_new_leaf */
async function makeRoom(ctx: Ctx, path: Node[], ext: Extent, funding: Funding): Promise<void> {
  let k = path.length - 2;
  while (k >= 0 && path[k]!.entries >= path[k]!.max) k--;
  if (k >= 0) await splitPath(ctx, path, k, ext, funding);
  else await growInDepth(ctx, ext, funding);
}

/**
 * Insert `ext` into a hole; see the file header. With `merge` false it is never merged with a
 * neighbour (the kernel's EXT4_GET_BLOCKS_PRE_IO, used when splitting an extent in two).
 */
async function insertInto(ctx: Ctx, ext: Extent, funding: Funding, merge = true): Promise<void> {
  for (;;) {
    const path = await findPath(ctx, ext.lblk);
    const leaf = leafOf(path);
    const at = leaf.at;
    const left = at >= 0 ? readExtent(leaf.buf, at) : undefined;
    const right = at + 1 < leaf.entries ? readExtent(leaf.buf, at + 1) : undefined;
    const next = right?.lblk ?? nextLeafKey(path);
    assert(left === undefined || left.lblk + left.len <= ext.lblk, () => `Inode ${ctx.inode.ino}: logical block ${ext.lblk} is already mapped`);
    assert(next >= ext.lblk + ext.len, () => `Inode ${ctx.inode.ino}: logical blocks ${ext.lblk}..${ext.lblk + ext.len - 1} are not a hole`);

    if (merge && left !== undefined && canMerge(left, ext)) {
      const grown = { ...left, len: left.len + ext.len };
      if (right !== undefined && canMerge(grown, right)) {
        grown.len += right.len;
        closeSlots(leaf, at + 1, 1);
      }
      writeExtent(leaf.buf, at, grown);
      dirty(ctx, leaf);
      return;
    }
    if (merge && right !== undefined && canMerge(ext, right)) {
      writeExtent(leaf.buf, at + 1, { ...ext, len: ext.len + right.len });
      dirty(ctx, leaf);
      if (at + 1 === 0) correctIndexes(ctx, path);
      return;
    }
    if (right === undefined && leaf.entries > 0 && next < KEY_LIMIT) {
      // The right neighbour heads the next leaf: merge into it, or use its free slot.
      const rpath = await findPath(ctx, next);
      const rleaf = leafOf(rpath);
      const first = rleaf.entries > 0 ? readExtent(rleaf.buf, 0) : undefined;
      assert(first === undefined || first.lblk === next, "Next leaf does not start at its index key");
      let done = true;
      if (merge && first !== undefined && canMerge(ext, first)) writeExtent(rleaf.buf, 0, { ...ext, len: ext.len + first.len });
      else if (leaf.entries >= leaf.max && rleaf.entries < rleaf.max) {
        openSlot(rleaf, 0);
        writeExtent(rleaf.buf, 0, ext);
      } else done = false;
      if (done) {
        dirty(ctx, rleaf);
        correctIndexes(ctx, rpath);
        return;
      }
    }
    if (leaf.entries < leaf.max) {
      openSlot(leaf, at + 1);
      writeExtent(leaf.buf, at + 1, ext);
      dirty(ctx, leaf);
      if (at + 1 === 0) correctIndexes(ctx, path);
      return;
    }
    await makeRoom(ctx, path, ext, funding);
  }
}

/** A depth-1 tree whose single leaf fits in i_block moves back into the inode. @kernel ext4_ext_try_to_merge_up */
async function tryMergeUp(ctx: Ctx): Promise<void> {
  const root = rootOf(ctx);
  if (root.depth !== 1 || root.entries !== 1) return;
  const x = readIndex(root.buf, 0);
  const leaf = await readNode(ctx, x.pblk, 0, x.lblk);
  const max = rootSlots(ctx.inode);
  if (leaf.entries > max) return;
  root.buf.fill(0, slot(0), root.buf.length);
  root.buf.set(leaf.buf.subarray(slot(0), slot(leaf.entries)), slot(0));
  extentHeader.encode({ eh_depth: 0, eh_entries: leaf.entries, eh_max: max }, root.buf, 0);
  ctx.inodeChanged = true;
  dropTreeBlock(ctx, leaf);
}

/**
 * Write the inode back if changed, then do the deferred frees; debug level 2 re-walks the
 * tree. Also run when an operation fails part-way: a split or grow that already happened is a
 * valid tree whose new root and i_blocks must reach the inode.
 */
async function finish(ctx: Ctx, check = true): Promise<void> {
  const { h, inode, alloc } = ctx;
  if (ctx.inodeChanged) await markInodeDirty(h, inode);
  const runs: { pblk: number; count: number }[] = [];
  for (const f of ctx.dataFrees) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.pblk + last.count === f.pblk) last.count += f.count;
    else runs.push({ ...f });
  }
  for (const r of runs) await alloc.free(h, inode.ino, r.pblk, r.count, ctx.dquots);
  for (const b of ctx.treeFrees) await alloc.free(h, inode.ino, b, 1, ctx.dquots);
  if (check && debugLevel >= 2) {
    const problems = await checkExtentTree(ctx.fs, inode);
    assert(problems.length === 0, () => `Inode ${inode.ino}: extent tree broken after a write: ${problems.join("; ")}`);
  }
}

/**
 * Map the hole [ext.lblk, ext.lblk + ext.len) to physical blocks from ext.pblk (already
 * allocated by the caller through `parent`). Tree blocks it needs are requested from `alloc`
 * with purpose "extentNode", funding childFunding(parent), goal ext.pblk; each adds one block
 * to i_blocks (the caller accounts the data). Writes the inode back in `h` when i_block or
 * i_blocks changed. Asserts the range is a hole; throws EFSCORRUPTED/EFSBADCRC for a bad
 * tree and what the allocator throws (ENOSPC, EDQUOT), leaving the tree unchanged then.
 * Caller holds i_data_sem for write.
 * @kernel ext4_ext_insert_extent
 */
export async function extInsertExtent(h: Handle, alloc: BlockAllocator, inode: InodeInfo, ext: NewExtent, parent: AllocRequest): Promise<void> {
  const ctx = newCtx(h, alloc, inode, parent.dquots);
  assert(parent.ino === inode.ino, () => `Insert into inode ${inode.ino} funded by a request for inode ${parent.ino}`);
  assert(Number.isSafeInteger(ext.lblk) && ext.lblk >= 0 && Number.isSafeInteger(ext.len) && ext.len >= 1, () => `Invalid extent ${ext.lblk}+${ext.len}`);
  assert(ext.len <= maxLen(ext.unwritten), () => `Extent of ${ext.len} blocks exceeds the ${ext.unwritten ? "unwritten" : "initialized"} maximum`);
  assert(ext.lblk + ext.len <= EXT_MAX_BLOCKS, () => `Extent ${ext.lblk}+${ext.len} runs past logical block 2^32 - 2`);
  assert(Number.isSafeInteger(ext.pblk) && h.fs.blockRangeValid(ext.pblk, ext.len), () => `Extent maps blocks ${ext.pblk}+${ext.len} outside the volume`);
  try {
    await insertInto(ctx, { lblk: ext.lblk, len: ext.len, pblk: ext.pblk, unwritten: ext.unwritten }, childFunding(parent));
    await tryMergeUp(ctx);
  } catch (err) {
    await finish(ctx, false);
    throw err;
  }
  await finish(ctx);
}

// ---------------------------------------------------------------------------------------------
// Convert unwritten to written

/**
 * Merge the leaf's extent i with the extents right of it, as long as they can be merged.
 * Returns whether anything merged. @kernel ext4_ext_try_to_merge_right
 */
function mergeRight(ctx: Ctx, leaf: Node, i: number): boolean {
  let e = readExtent(leaf.buf, i);
  let merged = false;
  while (i + 1 < leaf.entries) {
    const next = readExtent(leaf.buf, i + 1);
    if (!canMerge(e, next)) break;
    e = { ...e, len: e.len + next.len };
    writeExtent(leaf.buf, i, e);
    closeSlots(leaf, i + 1, 1);
    merged = true;
  }
  if (merged) dirty(ctx, leaf);
  return merged;
}

/**
 * Merge the leaf's extent i with its neighbours in the same leaf: into the left one (which then
 * keeps merging right), else with the right ones. Keys of first extents never change here. The
 * merge-up that the kernel does at the end is the caller's. @kernel ext4_ext_try_to_merge
 */
function tryToMerge(ctx: Ctx, leaf: Node, i: number): void {
  if (i > 0 && mergeRight(ctx, leaf, i - 1)) return;
  mergeRight(ctx, leaf, i);
}

/**
 * Mark logical blocks [lblk, lblk + len) written; they must lie inside one unwritten extent (the
 * caller converts run by run, as extMapBlocks reports them). Up to three extents result: the
 * unwritten head, the written range, the unwritten tail; the written range merges with a written
 * neighbour in the same leaf that is logically and physically contiguous, within EXT_INIT_MAX_LEN.
 * Splitting may need tree blocks (a full leaf splits, a full tree grows): they are requested from
 * `alloc` with purpose "extentNode", funding childFunding(parent) and the first physical block of
 * the piece being inserted as goal, and each adds one block to i_blocks. The data blocks stay where they are and are
 * already counted in i_blocks (unwritten extents are), so the caller charges nothing; it must
 * write the range's blocks in full (zeros where it has no data), since they now read as data.
 * Writes the inode back in `h` when i_block or i_blocks changed.
 *
 * Errors: a range not inside one unwritten extent is a caller bug (AssertionError); a bad tree
 * throws EFSCORRUPTED/EFSBADCRC; a failed tree-block allocation (ENOSPC, EDQUOT) leaves the whole
 * range unwritten and the tree valid (the tail may have been split off already, as in the kernel).
 * Caller holds i_data_sem for write.
 *
 * Deviations from Linux: no zero-out (EXT4_EXT_MAY_ZEROOUT / extent_max_zeroout_kb), and the
 * kernel adds EXT4_GET_BLOCKS_METADATA_NOFAIL for these tree blocks whatever the write's funding;
 * here the funding is the parent's (pass a nofail parent to match).
 * @kernel ext4_ext_convert_to_initialized, ext4_split_extent, ext4_split_extent_at
 */
export async function extConvertUnwritten(h: Handle, alloc: BlockAllocator, inode: InodeInfo, lblk: number, len: number, parent: AllocRequest): Promise<void> {
  const ctx = newCtx(h, alloc, inode, parent.dquots);
  assert(parent.ino === inode.ino, () => `Conversion in inode ${inode.ino} funded by a request for inode ${parent.ino}`);
  assert(Number.isSafeInteger(lblk) && lblk >= 0 && Number.isSafeInteger(len) && len >= 1 && lblk + len <= EXT_MAX_BLOCKS, () => `Invalid range ${lblk}+${len}`);
  const end = lblk + len;
  const funding = childFunding(parent);
  const path = await findPath(ctx, lblk);
  const leaf = leafOf(path);
  const at = leaf.at;
  const e = at >= 0 ? readExtent(leaf.buf, at) : undefined;
  assert(e !== undefined && e.unwritten && e.lblk + e.len >= end && e.lblk + e.len > lblk, () => `Inode ${inode.ino}: blocks ${lblk}..${end - 1} do not lie inside one unwritten extent`);
  const eEnd = e.lblk + e.len;

  // Fast path: move the range into a written neighbour in the same leaf (no split, no allocation).
  // The kernel's strict C4 bound is kept; the slow path below merges the borderline case anyway.
  if (lblk === e.lblk && len < e.len && at > 0) {
    const prev = readExtent(leaf.buf, at - 1);
    if (!prev.unwritten && prev.lblk + prev.len === e.lblk && prev.pblk + prev.len === e.pblk && prev.len < EXT_INIT_MAX_LEN - len) {
      writeExtent(leaf.buf, at - 1, { ...prev, len: prev.len + len });
      writeExtent(leaf.buf, at, { lblk: end, len: e.len - len, pblk: e.pblk + len, unwritten: true });
      dirty(ctx, leaf);
      await finish(ctx);
      return;
    }
  } else if (end === eEnd && len < e.len && at + 1 < leaf.entries) {
    const next = readExtent(leaf.buf, at + 1);
    if (!next.unwritten && next.lblk === end && e.pblk + e.len === next.pblk && next.len < EXT_INIT_MAX_LEN - len) {
      writeExtent(leaf.buf, at, { ...e, len: e.len - len });
      writeExtent(leaf.buf, at + 1, { lblk, len: next.len + len, pblk: next.pblk - len, unwritten: false });
      dirty(ctx, leaf);
      await finish(ctx);
      return;
    }
  }

  try {
    if (end < eEnd) {
      // Split off the unwritten tail; it must not merge back (EXT4_GET_BLOCKS_PRE_IO).
      writeExtent(leaf.buf, at, { ...e, len: end - e.lblk });
      dirty(ctx, leaf);
      try {
        await insertInto(ctx, { lblk: end, len: eEnd - end, pblk: e.pblk + (end - e.lblk), unwritten: true }, funding, false);
      } catch (err) {
        // Splits that succeeded before the failure left a valid tree: find the extent again.
        const back = leafOf(await findPath(ctx, e.lblk));
        writeExtent(back.buf, back.at, e);
        dirty(ctx, back);
        throw err;
      }
    }
    // [e.lblk, end) is now one unwritten extent, possibly in another leaf than before.
    const leaf2 = leafOf(await findPath(ctx, lblk));
    const head = readExtent(leaf2.buf, leaf2.at);
    assert(head.lblk === e.lblk && head.lblk + head.len === end && head.unwritten, "Split extent not found again");
    if (lblk === head.lblk) {
      writeExtent(leaf2.buf, leaf2.at, { ...head, unwritten: false });
      dirty(ctx, leaf2);
      tryToMerge(ctx, leaf2, leaf2.at);
    } else {
      writeExtent(leaf2.buf, leaf2.at, { ...head, len: lblk - head.lblk });
      dirty(ctx, leaf2);
      try {
        await insertInto(ctx, { lblk, len, pblk: head.pblk + (lblk - head.lblk), unwritten: false }, funding);
      } catch (err) {
        const back = leafOf(await findPath(ctx, head.lblk));
        writeExtent(back.buf, back.at, head);
        dirty(ctx, back);
        throw err;
      }
    }
    await tryMergeUp(ctx);
  } catch (err) {
    await finish(ctx, false);
    throw err;
  }
  await finish(ctx);
}

// ---------------------------------------------------------------------------------------------
// Remove

export interface RemoveSpaceOptions {
  /**
   * Funding of the tree blocks a punch may need (splitting one extent in two can split a
   * leaf). Chosen by the caller; default: must not fail, like the kernel's
   * EXT4_GET_BLOCKS_METADATA_NOFAIL for ext4_force_split_extent_at.
   */
  readonly splitFunding?: Funding;
  /** Whom freed blocks are uncharged from (and split blocks charged to); the inode's own dquots when absent. */
  readonly dquots?: InodeDquots | null;
}

const NOFAIL: Funding = Object.freeze({ kind: "chargeNow", quota: "nofail", pool: "emergency" });

/** Trim or delete the leaf's extents in [from, end]; the data frees are queued. @kernel ext4_ext_rm_leaf */
function removeFromLeaf(ctx: Ctx, n: Node, from: number, end: number): number {
  let i = search(n, from);
  if (i < 0) i = 0;
  else {
    const e = readExtent(n.buf, i);
    if (e.lblk + e.len <= from) i++;
  }
  const start = i;
  const keep: Extent[] = [];
  let freed = 0;
  for (; i < n.entries; i++) {
    const e = readExtent(n.buf, i);
    if (e.lblk > end) break;
    const eEnd = e.lblk + e.len - 1;
    const s = Math.max(e.lblk, from);
    const t = Math.min(eEnd, end);
    assert(s === e.lblk || t === eEnd, "Punch inside one extent reached removeFromLeaf");
    if (s > e.lblk) keep.push({ ...e, len: s - e.lblk });
    else if (t < eEnd) keep.push({ lblk: t + 1, len: eEnd - t, pblk: e.pblk + (t + 1 - e.lblk), unwritten: e.unwritten });
    ctx.dataFrees.push({ pblk: e.pblk + (s - e.lblk), count: t - s + 1 });
    freed += t - s + 1;
  }
  const removed = i - start;
  if (removed === 0) return 0;
  keep.forEach((e, j) => {
    writeExtent(n.buf, start + j, e);
  });
  if (keep.length < removed) closeSlots(n, start + keep.length, removed - keep.length);
  dirty(ctx, n);
  return freed;
}

/** Remove [from, end] below `n`; emptied children and their index entries go. @kernel ext4_ext_remove_space, ext4_ext_rm_idx */
async function removeRange(ctx: Ctx, n: Node, from: number, end: number): Promise<number> {
  if (n.depth === 0) return removeFromLeaf(ctx, n, from, end);
  let freed = 0;
  const first = Math.max(0, search(n, from));
  for (let k = search(n, end); k >= first; k--) {
    const x = readIndex(n.buf, k);
    const child = await readNode(ctx, x.pblk, n.depth - 1, x.lblk);
    freed += await removeRange(ctx, child, from, end);
    if (child.entries === 0) {
      closeSlots(n, k, 1);
      dirty(ctx, n);
      dropTreeBlock(ctx, child);
    } else {
      const key = keyOf(child, 0);
      if (key !== x.lblk) {
        writeIndex(n.buf, k, { lblk: key, pblk: x.pblk });
        dirty(ctx, n);
      }
    }
  }
  return freed;
}

/**
 * Unmap logical blocks [from, to] (`to` inclusive; EXT_MAX_BLOCKS = to the end). Trims
 * extents at the edges, splits one extent punched in the middle (which may allocate a tree
 * block, funded by `opts.splitFunding`), frees the data blocks through `alloc`, frees emptied
 * tree blocks (i_blocks down by one block each) and resets an emptied root to depth 0.
 * Returns the number of data blocks freed, for the caller's i_blocks. Writes the inode back
 * in `h` when i_block or i_blocks changed. Caller holds i_data_sem for write.
 * @kernel ext4_ext_remove_space
 */
export async function extRemoveSpace(h: Handle, alloc: BlockAllocator, inode: InodeInfo, from: number, to: number, opts: RemoveSpaceOptions = {}): Promise<number> {
  assert(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from >= 0 && from <= to && to <= EXT_MAX_BLOCKS, () => `Invalid range ${from}..${to}`);
  const ctx = newCtx(h, alloc, inode, opts.dquots !== undefined ? opts.dquots : await inodeDquots(h.fs, inode));
  const end = Math.min(to, EXT_MAX_BLOCKS - 1);
  if (from > end) return 0;
  let freed: number;
  const path = await findPath(ctx, from);
  const leaf = leafOf(path);
  const e = leaf.at >= 0 ? readExtent(leaf.buf, leaf.at) : undefined;
  if (e !== undefined && e.lblk < from && e.lblk + e.len - 1 > end) {
    // The range lies strictly inside one extent: keep its head here, re-insert its tail.
    const tail: Extent = { lblk: end + 1, len: e.lblk + e.len - 1 - end, pblk: e.pblk + (end + 1 - e.lblk), unwritten: e.unwritten };
    writeExtent(leaf.buf, leaf.at, { ...e, len: from - e.lblk });
    dirty(ctx, leaf);
    try {
      await insertInto(ctx, tail, opts.splitFunding ?? NOFAIL);
    } catch (err) {
      // Splits that succeeded before the failure left a valid tree: find the head again.
      const back = leafOf(await findPath(ctx, e.lblk));
      writeExtent(back.buf, back.at, e);
      dirty(ctx, back);
      await finish(ctx, false);
      throw err;
    }
    ctx.dataFrees.push({ pblk: e.pblk + (from - e.lblk), count: end - from + 1 });
    freed = end - from + 1;
  } else {
    const root = rootOf(ctx);
    try {
      freed = await removeRange(ctx, root, from, end);
    } catch (err) {
      await finish(ctx, false); // what was unlinked before the error is freed and accounted
      throw err;
    }
    if (root.depth > 0 && root.entries === 0) {
      // As the kernel does: an empty tree shrinks straight back to an empty root leaf.
      root.buf.fill(0, slot(0), root.buf.length);
      extentHeader.encode({ eh_depth: 0, eh_entries: 0, eh_max: rootSlots(inode) }, root.buf, 0);
      ctx.inodeChanged = true;
    }
  }
  await finish(ctx);
  return freed;
}

// ---------------------------------------------------------------------------------------------
// Checker (debug level 2, tests)

export interface ExtentTreeReport {
  /** Problems found, as sentences; empty when the tree is sound. */
  readonly problems: string[];
  readonly depth: number;
  /** Non-root tree blocks, in walk order. */
  readonly treeBlocks: number[];
  /** Leaf extents in logical order. */
  readonly extents: Extent[];
  /** Sum of the extents' lengths. */
  readonly dataBlocks: number;
}

/**
 * Walk the whole tree through the buffer cache and check it: magic, eh_max equal to the
 * node's capacity, depth one less per level, no empty non-root node, tail checksums, keys
 * ascending, each index key equal to its child's first key and children inside their key
 * range, extents disjoint and inside the volume and the logical space, no block used twice
 * (tree or data), and, given `expectedDataBlocks`, that the extents map that many blocks and
 * i_blocks = (data + tree blocks + xattr block) in sectors. Throws only for I/O errors.
 * @kernel (e2fsck pass1 scan_extent_node, check_blocks)
 */
export async function walkExtentTree(fs: Ext4Fs, inode: ExtentInode, opts: { expectedDataBlocks?: number } = {}): Promise<ExtentTreeReport> {
  const problems: string[] = [];
  const treeBlocks: number[] = [];
  const extents: Extent[] = [];
  const seen = new Set<number>();
  let prevEnd = 0;
  const say = (where: string, what: string): void => {
    problems.push(`Inode ${inode.ino} extent ${where}: ${what}`);
  };

  const visit = async (buf: Uint8Array, pblk: number, depth: number, lo: number, hi: number): Promise<void> => {
    const isRoot = pblk === 0;
    const where = isRoot ? "root" : `block ${pblk}`;
    const hd = extentHeader.decode(buf, 0);
    if (hd.eh_magic !== EXT4_EXT_MAGIC) {
      say(where, `magic is 0x${hd.eh_magic.toString(16)}, expected 0xf30a`);
      return;
    }
    const cap = Math.floor((buf.length - extentHeader.size) / extentLeaf.size);
    if (hd.eh_max !== cap) say(where, `eh_max is ${hd.eh_max}, expected ${cap}`);
    if (hd.eh_max > cap || hd.eh_entries > hd.eh_max) {
      say(where, `eh_entries ${hd.eh_entries} / eh_max ${hd.eh_max} do not fit ${cap} slots`);
      return;
    }
    if (hd.eh_depth !== depth) {
      say(where, `depth is ${hd.eh_depth}, expected ${depth}`);
      return;
    }
    if (hd.eh_entries === 0 && (!isRoot || depth > 0)) say(where, "node has no entries");
    if (!isRoot && fs.features.metadataCsum) {
      const at = extentTailOffset(hd);
      if (at + extentTail.size > buf.length || extentTail.decode(buf, at).et_checksum !== extentBlockChecksum(buf, at, inode.csumSeed)) say(where, "tail checksum does not match");
    }
    const n: Node = { pblk, buf, depth, entries: hd.eh_entries, max: hd.eh_max, at: -1 };
    if (depth === 0) {
      for (let i = 0; i < n.entries; i++) {
        const e = readExtent(buf, i);
        const what = `extent ${i} (${e.lblk}+${e.len} at ${e.pblk})`;
        if (e.len === 0) say(where, `${what} has length 0`);
        if (i === 0 && !isRoot && e.lblk !== lo) say(where, `${what}: first key differs from its index key ${lo}`);
        if (e.lblk < prevEnd) say(where, `${what} overlaps or precedes the previous extent (ending before ${prevEnd})`);
        if (e.lblk < lo || e.lblk + e.len > hi) say(where, `${what} lies outside its index range ${lo}..${hi - 1}`);
        if (e.lblk + e.len > EXT_MAX_BLOCKS) say(where, `${what} runs past logical block 2^32 - 2`);
        if (!fs.blockRangeValid(e.pblk, e.len)) say(where, `${what} maps blocks outside the volume`);
        prevEnd = Math.max(prevEnd, e.lblk + e.len);
        extents.push(e);
      }
      return;
    }
    const idx: ExtentIndex[] = [];
    for (let i = 0; i < n.entries; i++) idx.push(readIndex(buf, i));
    for (let i = 0; i < idx.length; i++) {
      const x = idx[i]!; // i < length
      const what = `index ${i} (${x.lblk} -> ${x.pblk})`;
      if (i > 0 && x.lblk <= idx[i - 1]!.lblk) say(where, `${what} is not above the previous key`);
      if (i === 0 && !isRoot && x.lblk !== lo) say(where, `${what}: first key differs from its parent key ${lo}`);
      if (x.lblk < lo || x.lblk >= hi) say(where, `${what} lies outside its parent range ${lo}..${hi - 1}`);
    }
    for (let i = 0; i < idx.length; i++) {
      const x = idx[i]!;
      if (!fs.blockRangeValid(x.pblk, 1)) {
        say(where, `index ${i} points at block ${x.pblk}, outside the volume`);
        continue;
      }
      if (seen.has(x.pblk)) {
        say(where, `index ${i} points at block ${x.pblk}, already in the tree`);
        continue;
      }
      seen.add(x.pblk);
      treeBlocks.push(x.pblk);
      const child = (await fs.cache.get(x.pblk)).slice();
      await visit(child, x.pblk, depth - 1, x.lblk, idx[i + 1]?.lblk ?? hi);
    }
  };

  const root = inode.raw.i_block;
  const rootDepth = extentHeader.decode(root, 0).eh_depth;
  if (rootDepth > EXT4_MAX_EXTENT_DEPTH) say("root", `depth ${rootDepth} exceeds ${EXT4_MAX_EXTENT_DEPTH}`);
  else await visit(root, 0, rootDepth, 0, KEY_LIMIT);

  // No physical block twice: data runs and tree blocks, sorted by start.
  const runs = [...extents.map((e) => ({ pblk: e.pblk, len: e.len })), ...treeBlocks.map((b) => ({ pblk: b, len: 1 }))].sort((a, b) => a.pblk - b.pblk);
  for (let i = 1; i < runs.length; i++) {
    const a = runs[i - 1]!;
    const b = runs[i]!;
    if (b.pblk < a.pblk + a.len) say("tree", `blocks ${b.pblk}..${Math.min(a.pblk + a.len, b.pblk + b.len) - 1} are used twice`);
  }
  const dataBlocks = extents.reduce((s, e) => s + e.len, 0);
  if (opts.expectedDataBlocks !== undefined) {
    if (dataBlocks !== opts.expectedDataBlocks) say("tree", `extents map ${dataBlocks} blocks, expected ${opts.expectedDataBlocks}`);
    const acl = inodeFileAcl(inode.raw, fs.features.is64bit) !== 0 ? 1 : 0;
    const want = (opts.expectedDataBlocks + treeBlocks.length + acl) * (fs.blockSize / 512);
    const have = inodeBlocks(inode.raw, fs.features.hugeFile, fs.blockSize);
    if (have !== want) say("tree", `i_blocks is ${have}, expected ${want} (${opts.expectedDataBlocks} data + ${treeBlocks.length} tree + ${acl} xattr blocks)`);
  }
  return { problems, depth: rootDepth, treeBlocks, extents, dataBlocks };
}

/** The problems `walkExtentTree` finds; empty when the tree is sound. */
export async function checkExtentTree(fs: Ext4Fs, inode: ExtentInode, opts: { expectedDataBlocks?: number } = {}): Promise<string[]> {
  return (await walkExtentTree(fs, inode, opts)).problems;
}
