/**
 * An inode's extent tree held whole in memory and edited the way libext2fs's extent handle
 * edits it (lib/ext2fs/extent.c), so a repair that moves blocks of an extent-mapped file
 * (pass 1D's clone) leaves the tree shaped as e2fsck leaves it: ext2fs_extent_set_bmap's
 * remapping of a mapped block (extents split, or grown into their neighbours), with
 * ext2fs_extent_insert's node split and ext2fs_extent_fix_parents. `flush` writes the nodes
 * that changed (resealed), and the inode when its root or i_blocks changed; called after each
 * edit, it keeps the disk as libext2fs's handle keeps it, which writes every node it changes
 * at once (a later copy of a block of the inode table or of the tree sees the edits).
 *
 * Only what remapping needs is here: unmapping (physical 0) and mapping a hole are not.
 */

import { extentBlockChecksum, inodeChecksumSeed } from "../format/checksum.js";
import { EXT4_EXT_MAGIC, EXT_INIT_MAX_LEN, extentHeader, extentLeaf } from "../format/extent.js";
import { EXT4_HUGE_FILE_FL, type RawInode } from "../format/inode.js";
import { extentHeaderOk } from "./blockmap.js";
import { put16, put32, u16, u32 } from "./bytes.js";
import type { CheckContext } from "./context.js";

/** An edit failed as libext2fs's would, with its error's message (the repair reports it). */
export class ExtentEditError extends Error {}

/** libext2fs's EXT2_ET_BLOCK_ALLOC_FAIL. */
export const BLOCK_ALLOC_FAIL = "Could not allocate block in ext2 filesystem";

/** A slot of a node: a leaf extent (`child` null) or an index entry (its child node). */
export interface XEntry {
  lblk: number;
  /** Leaf extents only. */
  len: number;
  /** Leaf extents only (an index entry's block is its child's `blk`). */
  pblk: number;
  uninit: boolean;
  child: XNode | null;
  owner: XNode;
}

export interface XNode {
  /** 0 for the root, which lives in i_block. */
  blk: number;
  depth: number;
  max: number;
  /** The node as read (header generation and the bytes past the slots are kept). */
  data: Uint8Array;
  ents: XEntry[];
  parent: XNode | null;
  dirty: boolean;
}

/**
 * Write extent node `node` (a whole block) to `blk` with its checksum tail when the volume
 * has metadata_csum. @e2fsprogs ext2fs_extent_block_csum_set
 */
export async function writeExtentBlock(c: CheckContext, ino: number, generation: number, blk: number, node: Uint8Array): Promise<void> {
  const v = c.v;
  if (v.f.metadataCsum) {
    const tail = extentHeader.size + u16(node, extentHeader.offsetOf("eh_max")) * extentLeaf.size;
    if (tail + 4 <= v.blockSize) put32(node, tail, extentBlockChecksum(node, tail, inodeChecksumSeed(v.csumSeed, ino, generation)));
  }
  await c.out.writeBlock(blk, node);
}

const pblkAt = (b: Uint8Array, at: number, lo: number, hi: number): number => u32(b, at + lo) + u16(b, at + hi) * 2 ** 32;

/** Entries in use and room per level of an extent tree, as e2fsck's extent_tree_level. */
export interface ExtentLevel {
  num: number;
  max: number;
}

/**
 * Count a node at `level` into `levels` as e2fsck's scan does: a non-root node that is not
 * full counts one slot fewer (a split leaves the old block one short; without that the
 * tree would be offered a rebuild again and again).
 */
export function countExtentLevel(levels: ExtentLevel[], level: number, entries: number, max: number): void {
  if (level >= MAX_EXTENT_DEPTH_COUNT) return;
  const l = (levels[level] ??= { num: 0, max: 0 });
  l.num += entries;
  l.max += max - (level > 0 && entries < max ? 1 : 0);
}

/**
 * Whether a tree could be narrower (a level's free slots would fill a whole block) or
 * shorter (a level's entries fit where an upper level has room), and at which level.
 * @e2fsprogs e2fsck_should_rebuild_extents
 */
export function extentTreeSlack(levels: readonly ExtentLevel[], blockSize: number): { shorter: boolean; level: number } | null {
  const perBlock = Math.floor((blockSize - extentHeader.size) / extentLeaf.size);
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l.max === 0) break;
    if (l.max - l.num > perBlock) return { shorter: false, level: i };
    for (let j = 0; j < i; j++) if (l.num < levels[j]!.max) return { shorter: true, level: i };
  }
  return null;
}

/** e2fsck's MAX_EXTENT_DEPTH_COUNT: levels it keeps statistics for. */
const MAX_EXTENT_DEPTH_COUNT = 5;

export class ExtentTree {
  /** Tree blocks added by node splits and not yet counted in i_blocks. */
  private added = 0;

  private constructor(
    private readonly c: CheckContext,
    private readonly ino: number,
    /** The inode as read; its i_block and i_blocks follow the tree's changes. */
    private readonly raw: RawInode,
    readonly root: XNode,
    /** Allocates a block for a split node near `goal` (e2fsck's get_alloc_block + alloc stats); 0 when full. */
    private readonly alloc: (goal: number) => Promise<number>,
  ) {}

  /**
   * Read the tree of inode `ino` (`raw`); a string says why it cannot be trusted (pass 1 has
   * checked every tree it kept, so this is a read error or a tree changed since).
   */
  static async load(c: CheckContext, ino: number, raw: RawInode, alloc: (goal: number) => Promise<number>): Promise<ExtentTree | string> {
    const v = c.v;
    const iblock = raw.i_block;
    if (!extentHeaderOk(iblock, 60)) return "Corrupt extent header";
    const read = async (data: Uint8Array, blk: number, parent: XNode | null, level: number): Promise<XNode | string> => {
      const depth = u16(data, extentHeader.offsetOf("eh_depth"));
      const node: XNode = { blk, depth, max: u16(data, extentHeader.offsetOf("eh_max")), data, ents: [], parent, dirty: false };
      const entries = u16(data, extentHeader.offsetOf("eh_entries"));
      for (let i = 0; i < entries; i++) {
        const at = extentHeader.size + i * extentLeaf.size;
        const lblk = u32(data, at);
        if (depth === 0) {
          const rl = u16(data, at + 4);
          const uninit = rl > EXT_INIT_MAX_LEN;
          node.ents.push({ lblk, len: uninit ? rl - EXT_INIT_MAX_LEN : rl, pblk: pblkAt(data, at, 8, 6), uninit, child: null, owner: node });
          continue;
        }
        const cb = pblkAt(data, at, 4, 8);
        if (!v.blockValid(cb) || level >= 8) return "Corrupt extent index";
        let body: Uint8Array;
        try {
          body = (await v.readBlock(cb)).slice();
        } catch {
          return "Attempt to read block from filesystem resulted in short read";
        }
        if (!extentHeaderOk(body, v.blockSize) || u16(body, extentHeader.offsetOf("eh_depth")) !== depth - 1) return "Corrupt extent header";
        const child = await read(body, cb, node, level + 1);
        if (typeof child === "string") return child;
        node.ents.push({ lblk, len: 0, pblk: cb, uninit: false, child, owner: node });
      }
      return node;
    };
    const root = await read(iblock.slice(0, 60), 0, null, 0);
    return typeof root === "string" ? root : new ExtentTree(c, ino, raw, root, alloc);
  }

  /** Every leaf extent, in order (libext2fs's EXT2_EXTENT_NEXT_LEAF / PREV_LEAF steps). */
  leaves(): XEntry[] {
    const out: XEntry[] = [];
    const walk = (n: XNode): void => {
      for (const e of n.ents) {
        if (e.child === null) out.push(e);
        else walk(e.child);
      }
    };
    walk(this.root);
    return out;
  }

  /** The leaf extent mapping `logical` (ext2fs_extent_goto), or undefined for a hole. */
  find(logical: number): XEntry | undefined {
    let n = this.root;
    for (;;) {
      if (n.depth === 0 || n.ents.length === 0) return n.ents.find((e) => e.child === null && logical >= e.lblk && logical < e.lblk + e.len);
      let pick = n.ents[0]!;
      for (const e of n.ents) if (e.lblk <= logical) pick = e;
      if (pick.child === null) return undefined;
      n = pick.child;
    }
  }

  /**
   * Map logical block `logical` (mapped now) to `physical`, as ext2fs_extent_set_bmap does
   * for a mapped block: the only block of its extent is replaced; a first or last block
   * joins the neighbouring extent when it continues it, else becomes an extent of its own;
   * a block inside splits its extent in three.
   * @e2fsprogs ext2fs_extent_set_bmap
   */
  async setBmap(logical: number, physical: number, uninit: boolean): Promise<void> {
    const ext = this.find(logical);
    if (ext === undefined) throw new ExtentEditError("Extent not found");
    if (ext.uninit === uninit && ext.pblk + (logical - ext.lblk) === physical) return;
    const maxLen = uninit ? EXT_INIT_MAX_LEN - 1 : EXT_INIT_MAX_LEN;
    const seq = this.leaves();
    const k = seq.indexOf(ext);
    const prev = seq[k - 1];
    const next = seq[k + 1];
    const fresh = (): XEntry => ({ lblk: logical, len: 1, pblk: physical, uninit, child: null, owner: ext.owner });
    const touch = (e: XEntry): void => changed(e.owner);
    if (logical === ext.lblk && ext.len === 1) {
      ext.pblk = physical;
      ext.uninit = uninit;
      touch(ext);
    } else if (logical === ext.lblk + ext.len - 1) {
      if (next !== undefined && logical === next.lblk - 1 && physical === next.pblk - 1 && next.uninit === uninit && next.len < maxLen - 1) {
        next.lblk--;
        next.pblk--;
        next.len++;
        touch(next);
        this.fixParents(next);
      } else this.fixParents(await this.insert(ext, fresh(), true));
      ext.len--;
      touch(ext);
    } else if (logical === ext.lblk) {
      if (prev !== undefined && logical === prev.lblk + prev.len && physical === prev.pblk + prev.len && prev.uninit === uninit && prev.len < maxLen - 1) {
        prev.len++;
        touch(prev);
        this.fixParents(prev);
      } else this.fixParents(await this.insert(ext, fresh(), false));
      ext.lblk++;
      ext.pblk++;
      ext.len--;
      touch(ext);
      this.fixParents(ext);
    } else {
      const whole = ext.len;
      ext.len = logical - ext.lblk;
      touch(ext);
      const mid = await this.insert(ext, fresh(), true);
      const after = ext.len + 1;
      await this.insert(mid, { lblk: ext.lblk + after, len: whole - after, pblk: ext.pblk + after, uninit: ext.uninit, child: null, owner: ext.owner }, true);
    }
  }

  /**
   * Map `logical`, past the last extent, to `physical`: the last extent grows when the block
   * continues it, else a new extent goes after it (its node split when full).
   * @e2fsprogs ext2fs_extent_set_bmap (an unmapped block after the last extent)
   */
  async appendBlock(logical: number, physical: number): Promise<void> {
    const seq = this.leaves();
    const last = seq[seq.length - 1];
    if (last === undefined) throw new ExtentEditError("Extent not found");
    if (logical === last.lblk + last.len && physical === last.pblk + last.len && !last.uninit && last.len < EXT_INIT_MAX_LEN - 1) {
      last.len++;
      changed(last.owner);
      return;
    }
    this.fixParents(await this.insert(last, { lblk: logical, len: 1, pblk: physical, uninit: false, child: null, owner: last.owner }, true));
  }

  /**
   * Unmap every block from `keep` on, last extent first: extents past it go, one across it
   * is cut; a node left empty goes too (its index entry and its block). Returns the blocks
   * let go, data and tree nodes, for the caller to free and take off i_blocks.
   * @e2fsprogs ext2fs_punch_extent, ext2fs_extent_delete
   */
  punchFrom(keep: number): number[] {
    const freed: number[] = [];
    // libext2fs deletes at one position, moving the slots after it down each time, so a node's
    // slots past its new count end up holding copies of its old last slot.
    const before = new Map<XNode, { count: number; last: Uint8Array }>();
    const remember = (n: XNode): void => {
      if (before.has(n)) return;
      const at = extentHeader.size + (n.ents.length - 1) * extentLeaf.size;
      before.set(n, { count: n.ents.length, last: n.data.slice(at, at + extentLeaf.size) });
    };
    for (const e of this.leaves().reverse()) {
      if (e.lblk + e.len <= keep) break;
      const from = Math.max(keep, e.lblk);
      for (let k = from - e.lblk; k < e.len; k++) freed.push(e.pblk + k);
      if (from > e.lblk) {
        e.len = from - e.lblk;
        changed(e.owner);
        continue;
      }
      let node = e.owner;
      remember(node);
      node.ents.splice(node.ents.indexOf(e), 1);
      changed(node);
      while (node.ents.length === 0 && node.parent !== null) {
        const up = this.entryOf(node);
        freed.push(node.blk);
        remember(node.parent);
        node.parent.ents.splice(node.parent.ents.indexOf(up), 1);
        node = node.parent;
        changed(node);
      }
      if (node.parent === null && node.ents.length === 0) {
        node.depth = 0;
        changed(node);
      }
    }
    for (const [n, { count, last }] of before) {
      for (let i = n.ents.length; i < count; i++) n.data.set(last, extentHeader.size + i * extentLeaf.size);
    }
    return freed;
  }

  /**
   * Put `e` before or after `cur` in cur's node, splitting the node first when it is full.
   * Returns `e`. @e2fsprogs ext2fs_extent_insert
   */
  private async insert(cur: XEntry, e: XEntry, after: boolean): Promise<XEntry> {
    if (cur.owner.ents.length >= cur.owner.max) await this.split(cur);
    const node = cur.owner;
    node.ents.splice(node.ents.indexOf(cur) + (after ? 1 : 0), 0, e);
    e.owner = node;
    if (e.child !== null) e.child.parent = node;
    changed(node);
    return e;
  }

  /** The index entry in n's parent that points to n. */
  private entryOf(n: XNode): XEntry {
    const e = n.parent?.ents.find((x) => x.child === n);
    if (e === undefined) throw new Error("extent node without a parent entry");
    return e;
  }

  /**
   * Split the full node holding `cur` (the handle's position): the root moves all its slots to
   * a new block and becomes an index one level deeper; another node moves its upper half, or
   * at the end of the file only its last slot, to a new block indexed after it (a full parent
   * is split first). The new block goes near the node's first block, one cluster before.
   * @e2fsprogs extent_node_split
   */
  private async split(cur: XEntry): Promise<void> {
    const v = this.c.v;
    const node = cur.owner;
    const first = node.ents[0]!;
    const ratio = v.clusterRatio;
    let goal = (first.child !== null ? first.child.blk : first.pblk) - ratio;
    goal -= ((goal % ratio) + ratio) % ratio;
    if (node.parent !== null && node.parent.ents.length >= node.parent.max) await this.split(this.entryOf(node));
    const isRoot = node.parent === null;
    // @e2fsprogs splitting_at_eof: the position is the last slot at every level up to the root.
    let eof = !isRoot;
    for (let e: XEntry = cur; eof; e = this.entryOf(e.owner)) {
      if (e.owner.ents[e.owner.ents.length - 1] !== e) eof = false;
      if (e.owner.parent === null) break;
    }
    const tocopy = isRoot ? node.ents.length : eof ? 1 : Math.floor(node.ents.length / 2);
    if (tocopy === 0) throw new ExtentEditError("Can't split extent");
    const blk = await this.alloc(goal);
    if (blk === 0) throw new ExtentEditError(BLOCK_ALLOC_FAIL);
    const data = new Uint8Array(v.blockSize);
    data.set(node.data.subarray(0, extentHeader.size));
    const moved = node.ents.splice(node.ents.length - tocopy, tocopy);
    const fresh: XNode = { blk, depth: node.depth, max: Math.floor((v.blockSize - extentHeader.size) / extentLeaf.size), data, ents: moved, parent: null, dirty: true };
    for (const e of moved) {
      e.owner = fresh;
      if (e.child !== null) e.child.parent = fresh;
    }
    const index = (owner: XNode): XEntry => ({ lblk: moved[0]!.lblk, len: 0, pblk: blk, uninit: false, child: fresh, owner });
    changed(fresh);
    if (isRoot) {
      node.depth++;
      node.ents = [index(node)];
      fresh.parent = node;
    }
    changed(node);
    if (!isRoot) await this.insert(this.entryOf(node), index(node.parent!), true);
    this.added++;
  }

  /**
   * A node's first slot starts where its index entry says, up the tree as far as a first
   * slot changed. @e2fsprogs ext2fs_extent_fix_parents
   */
  private fixParents(e: XEntry): void {
    const start = e.lblk;
    for (let at = e; at.owner.parent !== null && at.owner.ents[0] === at; ) {
      const up = this.entryOf(at.owner);
      if (up.lblk === start) break;
      up.lblk = start;
      changed(up.owner);
      at = up;
    }
  }

  /** Mark node `n` moved to block `blk` (its parent's entry changes with it). */
  moveNode(n: XNode, blk: number): void {
    n.blk = blk;
    n.dirty = true;
    if (n.parent !== null) changed(n.parent);
  }

  /** Every node below the root, parents before children (ext2fs_block_iterate3's order). */
  nodes(): XNode[] {
    const out: XNode[] = [];
    const walk = (n: XNode): void => {
      for (const e of n.ents) {
        if (e.child === null) continue;
        out.push(e.child);
        walk(e.child);
      }
    };
    walk(this.root);
    return out;
  }

  /**
   * Write every node changed since the last flush, and the inode if its root changed or a
   * split added a node (i_blocks grows by a cluster a node: ext2fs_iblk_add_blocks).
   */
  async flush(): Promise<void> {
    const c = this.c;
    const v = c.v;
    const raw = this.raw;
    for (const n of this.nodes()) {
      if (!n.dirty) continue;
      await writeExtentBlock(c, this.ino, raw.i_generation, n.blk, n.data.slice());
      n.dirty = false;
    }
    const fields: Partial<RawInode> = {};
    if (this.root.dirty) {
      raw.i_block = fields.i_block = this.root.data.slice();
      this.root.dirty = false;
    }
    if (this.added > 0) {
      let add = this.added * v.clusterRatio;
      if (!v.f.hugeFile || (raw.i_flags & EXT4_HUGE_FILE_FL) === 0) add *= v.blockSize / 512;
      const sectors = raw.i_blocks_lo + (v.f.hugeFile ? raw.l_i_blocks_high * 2 ** 32 : 0) + add;
      raw.i_blocks_lo = fields.i_blocks_lo = sectors % 2 ** 32;
      if (v.f.hugeFile) raw.l_i_blocks_high = fields.l_i_blocks_high = Math.floor(sectors / 2 ** 32);
      this.added = 0;
    }
    if (Object.keys(fields).length > 0) await c.out.writeInode(this.ino, fields);
  }
}

/**
 * Node `n` changed: its bytes are its header and slots in use, written over its buffer after
 * each change, so the slots past them keep what was last there, as in libext2fs's node
 * buffer (moved up by an insert, left behind by a split) written back whole.
 */
function changed(n: XNode): void {
  n.dirty = true;
  const b = n.data;
  put16(b, extentHeader.offsetOf("eh_magic"), EXT4_EXT_MAGIC);
  put16(b, extentHeader.offsetOf("eh_entries"), n.ents.length);
  put16(b, extentHeader.offsetOf("eh_max"), n.max);
  put16(b, extentHeader.offsetOf("eh_depth"), n.depth);
  n.ents.forEach((e, i) => {
    const at = extentHeader.size + i * extentLeaf.size;
    put32(b, at, e.lblk);
    if (e.child !== null) {
      put32(b, at + 4, e.child.blk % 2 ** 32);
      put16(b, at + 8, Math.floor(e.child.blk / 2 ** 32));
      return;
    }
    put16(b, at + 4, e.len + (e.uninit ? EXT_INIT_MAX_LEN : 0));
    put16(b, at + 6, Math.floor(e.pblk / 2 ** 32));
    put32(b, at + 8, e.pblk % 2 ** 32);
  });
}
