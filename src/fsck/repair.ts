/**
 * Repairs shared by the passes (e2fsck's e2fsck_clear_inode, ext2fs_inode_alloc_stats2,
 * ext2fs_block_alloc_stats2 with e2fsck's found-map callback). Each keeps the checker's maps
 * and the on-disk bitmaps and counts in step, as e2fsck's do, so pass 5 finds nothing left
 * to say about a repair an earlier pass made.
 */

import { bitmapChecksum, xattrBlockChecksum } from "../format/checksum.js";
import {
  EXT4_BG_BLOCK_BITMAP_CSUM_HI_END, EXT4_BG_BLOCK_UNINIT, EXT4_BG_INODE_BITMAP_CSUM_HI_END, EXT4_BG_INODE_UNINIT,
  freeBlocksCount as gdFreeBlocks, freeInodesCount as gdFreeInodes, itableUnused, setFreeBlocksCount as setGdFreeBlocks,
  setFreeInodesCount as setGdFreeInodes, setItableUnused, setUsedDirsCount, usedDirsCount, type GroupDesc,
} from "../format/group_desc.js";
import { EXT4_FT_UNKNOWN } from "../format/dirent.js";
import { freeBlocksCount as sbFreeBlocks, setFreeBlocksCount as setSbFreeBlocks } from "../format/superblock.js";
import { EXT4_BAD_INO, EXT4_GOOD_OLD_INODE_SIZE, EXT4_INLINE_DATA_FL, S_IFDIR, S_IFMT, S_IFREG, inodeLimit, type RawInode } from "../format/inode.js";
import { xattrEntryHash } from "../format/xattr.js";
import { iterateBlocks } from "./blockmap.js";
import type { CheckContext } from "./context.js";
import { hasValidBlocks } from "./pass1.js";
import { readInode } from "./paths.js";
import { sealInode } from "./writer.js";

/**
 * Mark inode `ino` free (delta -1) or in use (+1) in its group's bitmap and counts.
 * @e2fsprogs ext2fs_inode_alloc_stats2
 */
export async function inodeAllocStats(c: CheckContext, ino: number, delta: 1 | -1, isDir: boolean): Promise<void> {
  const v = c.v;
  const w = c.out;
  const g = v.groupOfIno(ino);
  const gd = v.group(g);
  await editBitmap(c, "inode", g, (ino - 1) % v.inodesPerGroup, delta > 0);
  setGdFreeInodes(gd, gdFreeInodes(gd, v.descSize) - delta, v.descSize);
  if (isDir) setUsedDirsCount(gd, usedDirsCount(gd, v.descSize) + delta, v.descSize);
  // An inode at or past the never-used tail of the table shortens the tail, or the next
  // check_super_block calls the count invalid. (libext2fs also drops INODE_UNINIT here,
  // which would need the group's bitmap written out whole: not done.)
  const base = g * v.inodesPerGroup;
  if (v.f.groupDescCsum && ino >= base + v.inodesPerGroup - itableUnused(gd, v.descSize) + 1) {
    setItableUnused(gd, base + v.inodesPerGroup - ino, v.descSize);
  }
  w.markGroupDirty(g);
  v.sb.s_free_inodes_count = (v.sb.s_free_inodes_count - delta) >>> 0;
  w.markSuperDirty();
}

/**
 * Mark block `blk`'s cluster free (delta -1) or in use (+1): the checker's found map (e2fsck's
 * alloc-stats callback), the group's bitmap and the free counts.
 * @e2fsprogs ext2fs_block_alloc_stats2 + e2fsck_block_alloc_stats
 */
export async function blockAllocStats(c: CheckContext, blk: number, delta: 1 | -1): Promise<void> {
  const v = c.v;
  const w = c.out;
  if (blk < v.firstDataBlock || blk >= v.blocksCount) return;
  // Critical metadata (superblocks, descriptors, bitmaps, inode tables) is never freed, whatever claimed it.
  if (delta < 0 && c.blockMeta.test(blk)) return;
  if (delta > 0) c.blockFound.set(blk);
  else c.blockFound.clear(blk);
  const g = v.groupOfBlock(blk);
  const gd = v.group(g);
  // A BLOCK_UNINIT group has no bitmap on disk yet; pass 5 writes one if it needs it.
  await editBitmap(c, "block", g, Math.floor((blk - v.groupFirstBlock(g)) / v.clusterRatio), delta > 0);
  setGdFreeBlocks(gd, gdFreeBlocks(gd, v.descSize) - delta, v.descSize);
  w.markGroupDirty(g);
  setSbFreeBlocks(v.sb, sbFreeBlocks(v.sb) - delta * v.clusterRatio);
  w.markSuperDirty();
}

/**
 * Clear inode `ino`: no links, deleted now, and gone from the checker's maps (its blocks are
 * the caller's business). @e2fsprogs e2fsck_clear_inode
 */
export async function clearInode(c: CheckContext, ino: number, raw: RawInode): Promise<void> {
  const fields: Partial<RawInode> = { i_flags: 0, i_links_count: 0, i_dtime: c.now >>> 0 };
  // A reserved inode with rotten mappings must not be walked again.
  if (ino < c.v.firstIno) fields.i_block = new Uint8Array(60);
  Object.assign(raw, fields);
  c.linkInfo.set(ino, 0);
  c.inodeUsed.clear(ino);
  c.inodeBad.clear(ino);
  c.ftype.set(ino, EXT4_FT_UNKNOWN);
  await c.out.writeInode(ino, fields);
  // The bad-blocks inode is wiped: memset(inode, 0, sizeof(struct ext2_inode)).
  if (ino === EXT4_BAD_INO) await c.out.editInodeBytes(ino, (slot) => slot.fill(0, 0, EXT4_GOOD_OLD_INODE_SIZE));
}

const EA_MAGIC = 0xea020000;
const EA_MAGIC_V1 = 0xea010000;
const EA_IBODY_MAGIC = 0xea020000;

/**
 * Change an extended attribute block's h_refcount by `adjust` and write it back with its
 * checksum; returns the new count, or why the block cannot be taken as an attribute block:
 * a block number out of range (e2fsck then keeps the block), a bad header, a checksum that
 * does not match, a read error.
 * @e2fsprogs ext2fs_adjust_ea_refcount3
 */
export async function adjustEaRefcount(
  c: CheckContext, blk: number, adjust: number,
): Promise<{ count: number } | { error: "bad-block-num" | "bad-header" | "csum" | "read" }> {
  const v = c.v;
  if (blk >= v.blocksCount || blk < v.firstDataBlock) return { error: "bad-block-num" };
  let data: Uint8Array;
  try {
    data = (await v.readBlock(blk)).slice();
  } catch {
    return { error: "read" };
  }
  const magic = (data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24)) >>> 0;
  if (magic !== EA_MAGIC && magic !== EA_MAGIC_V1) return { error: "bad-header" };
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  // Past pass 1 e2fsck no longer ignores checksum errors (ext2fs_read_ext_attr3).
  if (v.f.metadataCsum && dv.getUint32(0x10, true) !== xattrBlockChecksum(data, blk, v.blockSize, v.csumSeed)) return { error: "csum" };
  const count = (dv.getUint32(4, true) + adjust) >>> 0;
  dv.setUint32(4, count, true);
  // ext2fs_write_ext_attr3 reseals the checksum whatever it was.
  if (v.f.metadataCsum) dv.setUint32(0x10, xattrBlockChecksum(data, blk, v.blockSize, v.csumSeed), true);
  await c.out.writeBlock(blk, data);
  return { count };
}

/**
 * Deallocate inode `ino`: free it in the bitmaps and counts, drop its attribute block's
 * reference (freeing the block at zero), free every block it maps (data and mapping
 * blocks, a cluster once), then clear it. Quota usage pass 1 counted for it is given back
 * (e2fsck 1.47.0 does not, and leaves the quota files stale for the next check).
 * Returns what went wrong when the attribute block cannot be adjusted (PR_2_ADJ_EA_REFCOUNT)
 * or the block map cannot be walked (PR_2_DEALLOC_INODE), both of which stop e2fsck.
 * @e2fsprogs deallocate_inode (e2fsck/pass2.c)
 */
export async function deallocateInode(c: CheckContext, ino: number): Promise<{ error: "ea"; blk: number; str: string } | { error: "blocks"; str: string } | undefined> {
  const v = c.v;
  const got = await readInode(c, ino);
  if (got === null) return undefined;
  const raw = got.raw;
  const type = raw.i_mode & S_IFMT;
  await inodeAllocStats(c, ino, -1, type === S_IFDIR);
  let fileAcl = raw.i_file_acl_lo + (v.f.is64bit ? raw.l_i_file_acl_high * 2 ** 32 : 0);
  let clusters = 0;
  if (fileAcl !== 0 && v.f.xattr) {
    const adj = await adjustEaRefcount(c, fileAcl, -1);
    let count: number;
    if ("count" in adj) count = adj.count;
    else if (adj.error === "bad-block-num") count = 1;
    else {
      const str = adj.error === "bad-header" ? "Extended attribute block has a bad header"
        : adj.error === "csum" ? "Extended attribute block checksum does not match block"
          : "Attempt to read block from filesystem resulted in short read";
      return { error: "ea", blk: fileAcl, str };
    }
    if ("count" in adj) clusters += (c.eaBlockQuota.get(fileAcl) ?? v.clusterRatio) / v.clusterRatio;
    if (count === 0) await blockAllocStats(c, fileAcl, -1);
    fileAcl = 0;
  }
  let error: string | undefined;
  if (hasValidBlocks(raw, fileAcl) && (raw.i_flags & EXT4_INLINE_DATA_FL) === 0) {
    const size = raw.i_size_lo + raw.i_size_high * 2 ** 32;
    if (size >= 0x80000000) {
      if (type === S_IFREG) c.counters.largeFiles--;
      else if (type === S_IFDIR) c.counters.largeDirs--;
    }
    const freed: number[] = [];
    let lastCluster = -1;
    error = await iterateBlocks(v, raw, false, (b) => {
      if (b === 0) return true;
      const cluster = Math.floor(b / v.clusterRatio);
      if (cluster === lastCluster) return true;
      lastCluster = cluster;
      if (b < v.firstDataBlock || b >= v.blocksCount) return true;
      freed.push(b);
      return true;
    });
    for (const b of freed) await blockAllocStats(c, b, -1);
    clusters += freed.length;
  }
  c.quota.remove(ino, raw, clusters);
  if (error !== undefined) return { error: "blocks", str: error };
  const again = (await readInode(c, ino))?.raw ?? raw;
  await clearInode(c, ino, again);
  // e2fsck_clear_inode also zeroes i_flags.
  if (again.i_flags !== 0) {
    again.i_flags = 0;
    await c.out.writeInode(ino, { i_flags: 0 });
  }
  return undefined;
}

/**
 * Write an inline directory's data back in place (the same size): the first 60 bytes to
 * i_block, the rest into the in-inode system.data value (its entry hash redone when it had
 * one), and the inode checksum resealed. Returns false when the value is not where it can be
 * rewritten in place (no in-inode system.data of that size). @e2fsprogs ext2fs_inline_data_set
 */
export async function writeInlineDirData(c: CheckContext, ino: number, data: Uint8Array): Promise<boolean> {
  const v = c.v;
  const g = v.groupOfIno(ino);
  const byte = ((ino - 1) % v.inodesPerGroup) * v.inodeSize;
  const blk = v.inodeTableLoc(g) + Math.floor(byte / v.blockSize);
  const off = byte % v.blockSize;
  const isz = v.inodeSize;
  const rest = data.subarray(Math.min(60, data.length));
  // Find the system.data value in the inode's attribute area.
  const found = await (async (): Promise<{ value: number; entry: number } | null> => {
    let slot: Uint8Array;
    try {
      slot = (await v.readBlock(blk)).slice(off, off + isz);
    } catch {
      return null;
    }
    if (rest.length === 0) return { value: -1, entry: -1 };
    if (isz <= EXT4_GOOD_OLD_INODE_SIZE) return null;
    const extra = slot[0x80]! | (slot[0x81]! << 8);
    const at = EXT4_GOOD_OLD_INODE_SIZE + extra;
    const dv = new DataView(slot.buffer, slot.byteOffset, slot.byteLength);
    if ((extra & 3) !== 0 || at + 4 > isz || dv.getUint32(at, true) !== EA_IBODY_MAGIC) return null;
    const first = at + 4;
    for (let e = first; e + 16 <= isz && dv.getUint32(e, true) !== 0; ) {
      const nameLen = slot[e]!;
      const index = slot[e + 1]!;
      const valueOffs = dv.getUint16(e + 2, true);
      const inum = dv.getUint32(e + 4, true);
      const size = dv.getUint32(e + 8, true);
      const n = slot.subarray(e + 16, e + 16 + nameLen);
      if (index === 7 && nameLen === 4 && n[0] === 0x64 && n[1] === 0x61 && n[2] === 0x74 && n[3] === 0x61) {
        if (inum !== 0 || size !== rest.length || first + valueOffs + size > isz) return null;
        return { value: first + valueOffs, entry: e };
      }
      e += (16 + nameLen + 3) & ~3;
    }
    return null;
  })();
  if (found === null) return false;
  await c.out.updateBlock(blk, (b) => {
    const slot = b.subarray(off, off + isz);
    slot.set(data.subarray(0, Math.min(60, data.length)), 0x28);
    if (found.value >= 0) {
      slot.set(rest, found.value);
      const dv = new DataView(slot.buffer, slot.byteOffset, slot.byteLength);
      const e = found.entry;
      if (dv.getUint32(e + 12, true) !== 0) dv.setUint32(e + 12, xattrEntryHash(slot.subarray(e + 16, e + 16 + slot[e]!), rest), true);
    }
    if (v.f.metadataCsum) {
      const extra = isz > EXT4_GOOD_OLD_INODE_SIZE ? slot[0x80]! | (slot[0x81]! << 8) : 0;
      const limit = isz > EXT4_GOOD_OLD_INODE_SIZE ? Math.min(isz, inodeLimit(isz, extra)) : EXT4_GOOD_OLD_INODE_SIZE;
      sealInode(v, ino, slot, limit);
    }
  });
  return true;
}

/**
 * Set block `b`'s bit in its group's on-disk bitmap (and the bitmap checksum), leaving the
 * free counts for pass 5, as e2fsck marks fs->block_map alone. @e2fsprogs ext2fs_mark_block_bitmap2
 */
export async function markBlockBitmapOnly(c: CheckContext, b: number): Promise<void> {
  const g = c.v.groupOfBlock(b);
  await editBitmap(c, "block", g, Math.floor((b - c.v.groupFirstBlock(g)) / c.v.clusterRatio), true);
}

/** Set inode `ino`'s bit in its group's on-disk bitmap, counts left for pass 5. @e2fsprogs ext2fs_mark_inode_bitmap2 */
export async function markInodeBitmapOnly(c: CheckContext, ino: number): Promise<void> {
  await editBitmap(c, "inode", c.v.groupOfIno(ino), (ino - 1) % c.v.inodesPerGroup, true);
}

/**
 * Set or clear bit `i` of group `g`'s block or inode bitmap on disk, resealing its checksum
 * (not for a group whose bitmap is uninitialized: BLOCK_UNINIT / INODE_UNINIT).
 */
async function editBitmap(c: CheckContext, kind: "block" | "inode", g: number, i: number, on: boolean): Promise<void> {
  const v = c.v;
  const gd = v.group(g);
  const block = kind === "block";
  if (block) c.blockBitmapDirty = true;
  else c.inodeBitmapDirty = true;
  const loc = block ? v.blockBitmapLoc(g) : v.inodeBitmapLoc(g);
  const uninit = block ? EXT4_BG_BLOCK_UNINIT : EXT4_BG_INODE_UNINIT;
  if ((v.f.groupDescCsum && (gd.bg_flags & uninit) !== 0) || loc === 0 || loc >= v.blocksCount) return;
  await c.out.updateBlock(loc, (bm) => {
    setBit(bm, i, on);
    if (block) setBlockBitmapCsum(c, gd, bm);
    else setInodeBitmapCsum(c, gd, bm);
  });
  c.out.markGroupDirty(g);
}

function setBit(bm: Uint8Array, i: number, on: boolean): void {
  if (on) bm[i >>> 3] = bm[i >>> 3]! | (1 << (i & 7));
  else bm[i >>> 3] = bm[i >>> 3]! & ~(1 << (i & 7));
}

/** Store block bitmap `bm`'s checksum in `gd` (metadata_csum). @kernel ext4_block_bitmap_csum_set */
export function setBlockBitmapCsum(c: CheckContext, gd: GroupDesc, bm: Uint8Array): void {
  const v = c.v;
  if (!v.f.metadataCsum) return;
  const full = bitmapChecksum(bm, (v.blocksPerGroup / v.clusterRatio) >>> 3, v.csumSeed) >>> 0;
  gd.bg_block_bitmap_csum_lo = full & 0xffff;
  if (v.descSize >= EXT4_BG_BLOCK_BITMAP_CSUM_HI_END) gd.bg_block_bitmap_csum_hi = full >>> 16;
}

/** Store inode bitmap `bm`'s checksum in `gd` (metadata_csum). @kernel ext4_inode_bitmap_csum_set */
export function setInodeBitmapCsum(c: CheckContext, gd: GroupDesc, bm: Uint8Array): void {
  const v = c.v;
  if (!v.f.metadataCsum) return;
  const full = bitmapChecksum(bm, v.inodesPerGroup >>> 3, v.csumSeed) >>> 0;
  gd.bg_inode_bitmap_csum_lo = full & 0xffff;
  if (v.descSize >= EXT4_BG_INODE_BITMAP_CSUM_HI_END) gd.bg_inode_bitmap_csum_hi = full >>> 16;
}
