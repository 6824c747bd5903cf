/**
 * An independent audit of block and quota accounting on a mounted, quiescent volume, counted
 * from the structures themselves (extent trees walked node by node, block maps pointer by
 * pointer, the xattr block), not from the engine's counters:
 * - per in-use inode, i_blocks must equal the blocks it references (data, extent-tree or
 *   indirect blocks, one for an xattr block);
 * - per quota type and id, the usage summed over the inodes (S_NOQUOTA inodes left out, as
 *   e2fsck's quota_compute_usage) must equal what the quota state says (the in-core dquots of
 *   a live volume, or the quota files of a freshly mounted one);
 * - after a full sync, no reservation is left (dirty clusters, per-inode reserved blocks).
 * invariants.ts runs it after every explored schedule; the quota tests run it too.
 *
 * Counterparts: e2fsprogs e2fsck/pass1.c check_blocks (the i_blocks count) and
 * lib/support/mkquota.c quota_compute_usage / quota_compare_and_update.
 */

import { decodeExtentNode } from "../../src/format/extent.js";
import { EXT4_BG_INODE_UNINIT } from "../../src/format/group_desc.js";
import { EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL, decodeInode, inodeBlocks, inodeFileAcl, inodeStruct, type RawInode } from "../../src/format/inode.js";
import { inodeLocation } from "../../src/fs/inode.js";
import { inodeTable } from "../../src/fs/inode_core.js";
import { isNoQuotaInode } from "../../src/fs/quota_charge.js";
import { QUOTA_TYPES, quotaIdsOf, type QuotaSet, type QuotaType } from "../../src/fs/quota.js";
import type { Ext4Fs } from "../../src/fs/super.js";

export type Usage = Map<QuotaType, Map<number, { space: number; inodes: number }>>;

export interface Audit {
  /** One line per violation. */
  problems: string[];
  /** Usage counted from the structures. */
  usage: Usage;
  inodes: number;
  /** Σ referenced blocks over the inodes (an xattr block counted per reference). */
  blocks: number;
}

const I_MODE = inodeStruct.offsetOf("i_mode");
const I_LINKS_COUNT = inodeStruct.offsetOf("i_links_count");

/**
 * The in-use inodes (mode and links non-zero) of group `g`, decoded from copies: the cached
 * buffers are only valid until the caller's next await.
 */
async function inodesInGroup(fs: Ext4Fs, g: number): Promise<[number, RawInode][]> {
  const first = g * fs.inodesPerGroup + 1;
  const loc = inodeLocation(fs, first); // tables start on a block boundary: offset 0
  const bufs = await fs.cache.getMany(loc.block, Math.ceil((fs.inodesPerGroup * fs.inodeSize) / fs.blockSize));
  const perBlock = fs.blockSize / fs.inodeSize;
  const out: [number, RawInode][] = [];
  for (const [b, blk] of bufs.entries()) {
    const dv = new DataView(blk.buffer, blk.byteOffset, blk.byteLength);
    for (let k = 0; k < perBlock && b * perBlock + k < fs.inodesPerGroup; k++) {
      const at = k * fs.inodeSize;
      if (dv.getUint16(at + I_MODE, true) === 0 || dv.getUint16(at + I_LINKS_COUNT, true) === 0) continue;
      out.push([first + b * perBlock + k, decodeInode(blk.slice(at, at + fs.inodeSize), 0, fs.inodeSize)]);
    }
  }
  return out;
}

/** Blocks of an extent tree below `node` (tree blocks + data), read from disk. */
async function extentBlocks(fs: Ext4Fs, buf: Uint8Array, size: number, isRoot: boolean): Promise<number> {
  const node = decodeExtentNode(buf, size, { isRoot, blocksCount: fs.blocksCount, firstDataBlock: fs.sb.s_first_data_block });
  if (node.depth === 0 && "extents" in node) return node.extents.reduce((n, e) => n + e.len, 0);
  let n = 0;
  if ("indexes" in node) {
    for (const x of node.indexes) n += 1 + (await extentBlocks(fs, await fs.cache.get(x.pblk), fs.blockSize, false));
  }
  return n;
}

/** Blocks of a block map: data and pointer blocks. */
async function mapBlocks(fs: Ext4Fs, ptr: number, depth: number): Promise<number> {
  if (ptr === 0) return 0;
  if (depth === 0) return 1;
  const b = await fs.cache.get(ptr);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  // Read every pointer before the first await: the cached buffer is valid until then.
  const ptrs: number[] = [];
  for (let i = 0; i < fs.blockSize / 4; i++) {
    const p = dv.getUint32(i * 4, true);
    if (p !== 0) ptrs.push(p);
  }
  if (depth === 1) return 1 + ptrs.length; // data blocks: counted, not read
  let n = 1;
  for (const p of ptrs) n += await mapBlocks(fs, p, depth - 1);
  return n;
}

/** What the inode references, counted from disk. */
export async function referencedBlocks(fs: Ext4Fs, raw: RawInode): Promise<number> {
  let n = inodeFileAcl(raw, fs.features.is64bit) !== 0 ? 1 : 0;
  const fmt = raw.i_mode & 0o170000;
  if (raw.i_flags & EXT4_INLINE_DATA_FL) return n;
  if (raw.i_flags & EXT4_EXTENTS_FL) return n + (await extentBlocks(fs, raw.i_block, 60, true));
  const isFile = fmt === 0o100000 || fmt === 0o040000;
  const slowLink = fmt === 0o120000 && inodeBlocks(raw, fs.features.hugeFile, fs.blockSize) > (n > 0 ? fs.blockSize / 512 : 0);
  if (!isFile && !slowLink) return n;
  const dv = new DataView(raw.i_block.buffer, raw.i_block.byteOffset, raw.i_block.byteLength);
  for (let i = 0; i < 12; i++) n += dv.getUint32(i * 4, true) !== 0 ? 1 : 0;
  for (let d = 1; d <= 3; d++) n += await mapBlocks(fs, dv.getUint32((11 + d) * 4, true), d);
  return n;
}

/**
 * Walk every in-use inode of a quiescent volume (read through its buffer cache): check
 * i_blocks against the referenced blocks and sum usage per quota id.
 */
export async function auditVolume(fs: Ext4Fs): Promise<Audit> {
  const problems: string[] = [];
  const usage: Usage = new Map(QUOTA_TYPES.map((t) => [t, new Map<number, { space: number; inodes: number }>()]));
  let inodes = 0;
  let blocks = 0;
  for (let g = 0; g < fs.groupCount; g++) {
    if (fs.group(g).bg_flags & EXT4_BG_INODE_UNINIT) continue;
    for (const [ino, raw] of await inodesInGroup(fs, g)) {
      inodes++;
      const refs = await referencedBlocks(fs, raw);
      blocks += refs;
      const sectors = inodeBlocks(raw, fs.features.hugeFile, fs.blockSize);
      if (sectors !== refs * (fs.blockSize / 512)) problems.push(`inode ${ino}: i_blocks ${sectors}, references ${refs} blocks (${refs * (fs.blockSize / 512)} sectors)`);
      if (isNoQuotaInode(fs, ino) || ino === fs.sb.s_prj_quota_inum) continue;
      const ids = quotaIdsOf(fs, raw);
      for (const t of QUOTA_TYPES) {
        const id = t === "usr" ? ids.uid : t === "grp" ? ids.gid : ids.projid;
        const m = usage.get(t)!;
        const u = m.get(id) ?? { space: 0, inodes: 0 };
        u.space += refs * fs.blockSize;
        u.inodes += 1;
        m.set(id, u);
      }
    }
  }
  return { problems, usage, inodes, blocks };
}

/**
 * Compare counted usage with the quota state (every type the volume tracks): same curspace
 * and curinodes for every id with usage, nothing charged to ids without. With `live`, the
 * in-core dquots must also hold no reservation (after a full sync).
 */
export async function compareQuota(q: QuotaSet, usage: Usage, opts: { live?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  for (const t of q.types()) {
    const want = usage.get(t) ?? new Map<number, { space: number; inodes: number }>();
    const have = await q.report(t);
    const seen = new Set<number>();
    for (const d of have) {
      seen.add(d.id);
      const w = want.get(d.id) ?? { space: 0, inodes: 0 };
      if (d.curspace !== w.space || d.curinodes !== w.inodes) out.push(`${t} ${d.id}: quota says ${d.curspace} bytes / ${d.curinodes} inodes, inodes sum to ${w.space} / ${w.inodes}`);
      if (opts.live === true && d.rsvspace !== 0) out.push(`${t} ${d.id}: ${d.rsvspace} bytes still reserved after sync`);
    }
    for (const [id, w] of want) if (!seen.has(id) && (w.space !== 0 || w.inodes !== 0)) out.push(`${t} ${id}: missing from the quota state, inodes sum to ${w.space} / ${w.inodes}`);
  }
  return out;
}

/** After a full sync: no reservation left anywhere. */
export function reservationProblems(fs: Ext4Fs): string[] {
  const out: string[] = [];
  if (fs.dirtyClusters !== 0) out.push(`dirtyClusters ${fs.dirtyClusters} after sync`);
  for (const c of inodeTable(fs).all()) if (c.reservedDataBlocks !== 0) out.push(`inode ${c.ino}: reservedDataBlocks ${c.reservedDataBlocks} after sync`);
  return out;
}
