/**
 * Extended attribute checks of pass 1 (e2fsck pass1.c check_ea_in_inode, check_ext_attr)
 * and the tolerant attribute reader e2fsck's inline-data checks rely on (libext2fs
 * ext2fs_xattrs_read), which reports the first malformation instead of throwing.
 */

import { xattrBlockChecksum } from "../format/checksum.js";
import { EXT4_EA_INODE_FL, EXT4_GOOD_OLD_INODE_SIZE, decodeInode, type RawInode } from "../format/inode.js";
import {
  EXT4_XATTR_INDEX_SYSTEM, EXT4_XATTR_MAGIC, xattrEntry, xattrEntryHash, xattrEntryHashSigned, xattrHeader, xattrIbodyHeader, xattrLen, xattrSize,
} from "../format/xattr.js";
import type { CheckContext } from "./context.js";
import { readInodeBytes } from "./paths.js";
import {
  PR_1_ATTR_HASH, PR_1_ATTR_NAME_LEN, PR_1_ATTR_NO_EA_INODE_FL, PR_1_ATTR_VALUE_EA_INODE, PR_1_ATTR_VALUE_SIZE, PR_1_BAD_EA_BLOCK, PR_1_EA_ALLOC_COLLISION, PR_1_EA_BAD_NAME,
  PR_1_EA_BAD_VALUE, PR_1_EA_BLOCK_ONLY_CSUM_INVALID, PR_1_EA_MULTI_BLOCK, PR_1_EXTRA_ISIZE, PR_1_INODE_EA_ALLOC_COLLISION,
  PR_1_READ_EA_BLOCK,
} from "./problem.js";
import { u16, u32 } from "./bytes.js";

const HEADER_SIZE = xattrHeader.size;
const IBODY_HEADER_SIZE = xattrIbodyHeader.size;
const ENTRY_SIZE = xattrEntry.size;
const OFF_NAME_LEN = xattrEntry.offsetOf("e_name_len");
const OFF_NAME_INDEX = xattrEntry.offsetOf("e_name_index");
const OFF_VALUE_OFFS = xattrEntry.offsetOf("e_value_offs");
const OFF_VALUE_INUM = xattrEntry.offsetOf("e_value_inum");
const OFF_VALUE_SIZE = xattrEntry.offsetOf("e_value_size");
const OFF_HASH = xattrEntry.offsetOf("e_hash");

/** Byte ranges of an attribute area, to find overlapping pieces (e2fsck region.c). */
class Region {
  readonly #used: [number, number][] = [];
  constructor(readonly size: number) {}

  /** Allocate [start, start + n); true on a collision or overrun. */
  allocate(start: number, n: number): boolean {
    const end = start + n;
    if (start < 0 || end > this.size) return true;
    for (const [a, b] of this.#used) if (start < b && a < end) return true;
    this.#used.push([start, end]);
    return false;
  }
}

/** Does the entry hash match, hashed the way Linux does now or the way old signed-char kernels did? */
function hashMatches(stored: number, name: Uint8Array, value: Uint8Array): boolean {
  return stored === xattrEntryHash(name, value) || stored === xattrEntryHashSigned(name, value);
}

const rotl16 = (h: number): number => ((h << 16) | (h >>> 16)) >>> 0;

/**
 * An attribute whose value lives in an EA inode (ea_inode): the inode must exist, carry
 * EA_INODE_FL and match the entry hash. Returns the blocks its value charges to the
 * owner, or the problem. @e2fsprogs check_large_ea_inode
 */
async function checkLargeEaInode(
  c: CheckContext, owner: number, ownerGeneration: number, name: Uint8Array, valueInum: number, valueSize: number, eHash: number,
): Promise<{ problem?: typeof PR_1_ATTR_HASH; num: number; quota: number }> {
  const v = c.v;
  if (valueInum < v.firstIno || valueInum > v.inodesCount) return { problem: PR_1_ATTR_VALUE_EA_INODE, num: valueInum, quota: 0 };
  const bytes = (await readInodeBytes(c, valueInum)) ?? new Uint8Array(v.inodeSize);
  const inode = decodeInode(bytes, 0, v.inodeSize);
  const hash = (rotl16(xattrEntryHash(name, new Uint8Array(0))) ^ inode.i_atime) >>> 0;
  let quota = 0;
  if (hash === eHash) {
    const cluster = v.blockSize * v.clusterRatio;
    quota = Math.ceil(valueSize / cluster) * v.clusterRatio;
  } else if (!(inode.i_mtime === owner && inode.i_generation === ownerGeneration)) {
    if (!(inode.i_flags & EXT4_EA_INODE_FL)) return { problem: PR_1_ATTR_VALUE_EA_INODE, num: valueInum, quota: 0 };
    return { problem: PR_1_ATTR_HASH, num: eHash, quota: 0 };
  }
  if (!(inode.i_flags & EXT4_EA_INODE_FL)) return { problem: PR_1_ATTR_NO_EA_INODE_FL, num: valueInum, quota };
  // Pass 4 counts an EA inode as linked by these references. @e2fsprogs inc_ea_inode_refs
  c.eaInodeRefs.set(valueInum, (c.eaInodeRefs.get(valueInum) ?? 0) + 1);
  return { num: 0, quota };
}

/**
 * i_extra_isize sanity and the in-inode attributes (e2fsck check_inode_extra_space and
 * check_ea_in_inode). `bytes` is the whole on-disk inode. Returns the blocks that values
 * kept in EA inodes charge to this inode.
 */
export async function checkInodeExtraSpace(c: CheckContext, ino: number, bytes: Uint8Array, extra: number, generation: number): Promise<number> {
  const isz = c.v.inodeSize;
  if (isz === EXT4_GOOD_OLD_INODE_SIZE) return 0;
  const min = 4; // i_extra_isize + i_checksum_hi
  const max = isz - EXT4_GOOD_OLD_INODE_SIZE;
  if (extra !== 0 && (extra < min || extra > max || (extra & 3) !== 0)) {
    if (!c.r.ask(PR_1_EXTRA_ISIZE, { ino, extraIsize: extra })) return 0;
    extra = extra < min || extra > max ? c.v.sb.s_want_extra_isize : (extra + 3) & ~3;
    bytes.set(await c.out.writeInode(ino, { i_extra_isize: extra }));
  }
  if (extra >= max - 4) return 0;
  const header = EXT4_GOOD_OLD_INODE_SIZE + extra;
  if (u32(bytes, header) !== EXT4_XATTR_MAGIC) return 0;
  return checkEaInInode(c, ino, bytes.subarray(header, isz), generation, header);
}

async function checkEaInInode(c: CheckContext, ino: number, area: Uint8Array, generation: number, header: number): Promise<number> {
  let quota = 0;
  const storage = area.length;
  const start = IBODY_HEADER_SIZE;
  let remain = storage - 4;
  const region = new Region(storage);
  let problem: typeof PR_1_ATTR_NAME_LEN | undefined;
  let num = 0;
  region.allocate(0, 4);
  let off = start;
  for (;;) {
    if (remain < ENTRY_SIZE || off + 4 > storage || u32(area, off) === 0) break;
    const nameLen = area[off + OFF_NAME_LEN]!;
    if (region.allocate(off, xattrLen(nameLen))) {
      problem = PR_1_INODE_EA_ALLOC_COLLISION;
      break;
    }
    remain -= ENTRY_SIZE;
    if (xattrSize(nameLen) > remain) {
      problem = PR_1_ATTR_NAME_LEN;
      num = nameLen;
      break;
    }
    remain -= xattrSize(nameLen);
    const inum = u32(area, off + OFF_VALUE_INUM);
    const valueSize = u32(area, off + OFF_VALUE_SIZE);
    const valueOffs = u16(area, off + OFF_VALUE_OFFS);
    if (inum === 0) {
      if (valueSize > remain) {
        problem = PR_1_ATTR_VALUE_SIZE;
        num = valueSize;
        break;
      }
      if (valueSize !== 0 && region.allocate(4 + valueOffs, xattrSize(valueSize))) {
        problem = PR_1_INODE_EA_ALLOC_COLLISION;
        break;
      }
      const stored = u32(area, off + OFF_HASH);
      if (stored !== 0) {
        const name = area.subarray(off + ENTRY_SIZE, off + ENTRY_SIZE + nameLen);
        const vs = start + valueOffs;
        const value = area.subarray(vs, Math.min(storage, vs + valueSize));
        if (!hashMatches(stored, name, value)) {
          problem = PR_1_ATTR_HASH;
          num = stored;
          break;
        }
      }
      remain -= valueSize;
    } else {
      const name = area.subarray(off + ENTRY_SIZE, off + ENTRY_SIZE + nameLen);
      const got = await checkLargeEaInode(c, ino, generation, name, inum, valueSize, u32(area, off + OFF_HASH));
      if (got.problem !== undefined) {
        problem = got.problem;
        num = got.num;
        break;
      }
      quota += got.quota;
    }
    off += xattrLen(nameLen);
  }
  if (problem === undefined && off + 4 <= storage && region.allocate(off, 4)) problem = PR_1_INODE_EA_ALLOC_COLLISION;
  if (problem !== undefined) {
    // @e2fsprogs check_ea_in_inode: "simply remove all possible EA(s)": the area's magic goes.
    if (c.r.ask(problem, { ino, num })) {
      area.fill(0, 0, 4);
      await c.out.editInodeBytes(ino, (slot) => slot.fill(0, header, header + 4));
    }
    return 0;
  }
  return quota;
}

/**
 * The external attribute block of inode `ino` (e2fsck check_ext_attr): structure, entry
 * hashes, checksum, and the reference count bookkeeping. Returns the blocks it charges to
 * the inode's i_blocks (a cluster, plus values kept in EA inodes), 0 when it does not count.
 */
export async function checkExtAttr(c: CheckContext, ino: number, blk: number, raw: RawInode): Promise<number> {
  const v = c.v;
  const generation = raw.i_generation;
  /** @e2fsprogs check_ext_attr clear_extattr: the inode lets go of the block (i_file_acl = 0). */
  const clear = async (): Promise<number> => {
    raw.i_file_acl_lo = 0;
    raw.l_i_file_acl_high = 0;
    await c.out.writeInode(ino, { i_file_acl_lo: 0, l_i_file_acl_high: 0 });
    return 0;
  };
  if (blk === 0) return 0;
  if (!v.f.xattr || blk < v.firstDataBlock || blk >= v.blocksCount) {
    c.inodeBad.set(ino);
    return 0;
  }
  if (c.blockEa.test(blk)) {
    const left = c.eaRefcount.get(blk) ?? 0;
    if (left > 0) c.eaRefcount.set(blk, left - 1);
    else c.eaRefcountExtra.set(blk, (c.eaRefcountExtra.get(blk) ?? 0) + 1);
    return c.eaBlockQuota.get(blk) ?? v.clusterRatio;
  }
  let block: Uint8Array;
  try {
    block = (await v.readBlock(blk)).slice();
  } catch {
    if (c.r.ask(PR_1_READ_EA_BLOCK, { ino, blk })) return clear();
    return 0;
  }
  let quota = v.clusterRatio;
  const bs = v.blockSize;
  const magic = u32(block, xattrHeader.offsetOf("h_magic"));
  const hBlocks = u32(block, xattrHeader.offsetOf("h_blocks"));
  const headerOk = magic === EXT4_XATTR_MAGIC && hBlocks === 1;
  const failedCsum = headerOk && v.f.metadataCsum && u32(block, xattrHeader.offsetOf("h_checksum")) !== xattrBlockChecksum(block, blk, bs, v.csumSeed);
  if (!headerOk) c.eaBlockReadError.set(blk, "Extended attribute block has a bad header");
  else if (failedCsum) c.eaBlockReadError.set(blk, "Extended attribute block checksum does not match block");
  if (magic !== EXT4_XATTR_MAGIC && c.r.ask(PR_1_BAD_EA_BLOCK, { ino, blk })) return clear();
  if (hBlocks !== 1 && c.r.ask(PR_1_EA_MULTI_BLOCK, { ino, blk })) return clear();
  const region = new Region(bs);
  if (region.allocate(0, HEADER_SIZE) && c.r.ask(PR_1_EA_ALLOC_COLLISION, { ino, blk })) return clear();
  let off = HEADER_SIZE;
  let broke = false;
  while (off + 4 <= bs && u32(block, off) !== 0) {
    const nameLen = block[off + OFF_NAME_LEN]!;
    if (region.allocate(off, xattrLen(nameLen))) {
      if (c.r.ask(PR_1_EA_ALLOC_COLLISION, { ino, blk })) return clear();
      broke = true;
      break;
    }
    if (block[off + OFF_NAME_INDEX] === 0) {
      if (c.r.ask(PR_1_EA_BAD_NAME, { ino, blk })) return clear();
      broke = true;
      break;
    }
    const inum = u32(block, off + OFF_VALUE_INUM);
    if (inum === 0) {
      const valueOffs = u16(block, off + OFF_VALUE_OFFS);
      const valueSize = u32(block, off + OFF_VALUE_SIZE);
      if (valueOffs + valueSize > bs) {
        if (c.r.ask(PR_1_EA_BAD_VALUE, { ino, blk })) return clear();
        broke = true;
        break;
      }
      if (valueSize !== 0 && region.allocate(valueOffs, xattrSize(valueSize)) && c.r.ask(PR_1_EA_ALLOC_COLLISION, { ino, blk })) return clear();
      const name = block.subarray(off + ENTRY_SIZE, Math.min(bs, off + ENTRY_SIZE + nameLen));
      const value = block.subarray(valueOffs, valueOffs + valueSize);
      const stored = u32(block, off + OFF_HASH);
      if (!hashMatches(stored, name, value) && c.r.ask(PR_1_ATTR_HASH, { ino, blk, num: stored })) return clear();
    } else {
      const name = block.subarray(off + ENTRY_SIZE, Math.min(bs, off + ENTRY_SIZE + nameLen));
      const got = await checkLargeEaInode(c, ino, generation, name, inum, u32(block, off + OFF_VALUE_SIZE), u32(block, off + OFF_HASH));
      if (got.problem !== undefined && c.r.ask(got.problem, { ino, blk, num: got.num })) return clear();
      quota += got.quota;
    }
    off += xattrLen(nameLen);
  }
  if (!broke && region.allocate(off, 4) && c.r.ask(PR_1_EA_ALLOC_COLLISION, { ino, blk })) return clear();
  // Only the checksum is wrong: the block is written again with a fresh one.
  if (failedCsum && c.r.ask(PR_1_EA_BLOCK_ONLY_CSUM_INVALID, { ino, blk })) {
    const cs = xattrBlockChecksum(block, blk, bs, v.csumSeed);
    block.set([cs & 0xff, (cs >>> 8) & 0xff, (cs >>> 16) & 0xff, cs >>> 24], xattrHeader.offsetOf("h_checksum"));
    await c.out.writeBlock(blk, block);
    c.eaBlockReadError.delete(blk);
  }
  const hRefcount = u32(block, xattrHeader.offsetOf("h_refcount"));
  c.eaRefcount.set(blk, (hRefcount - 1) >>> 0);
  c.eaHeaderRefcount.set(blk, hRefcount);
  if (quota !== v.clusterRatio) c.eaBlockQuota.set(blk, quota);
  c.markBlockUsed(blk);
  c.blockEa.set(blk);
  return quota;
}

export interface XattrSummary {
  /** libext2fs error name when the attributes cannot be read, else undefined. */
  error?: string;
  /** Length of the system.data value, or -1 when there is none. */
  systemDataLen: number;
  /** The system.data value (a copy), when stored in place. */
  systemData?: Uint8Array;
  /** Is there an attribute of the encryption index (ENCRYPTION_CONTEXT)? */
  hasEncryptionContext: boolean;
  /** The value of the encryption context attribute ("c"), when there is one. */
  encryptionContext?: Uint8Array;
}

/** Parse one attribute area as libext2fs read_xattrs_from_buffer does. */
function readArea(area: Uint8Array, entries: number, valueStart: number, storage: number, eaInode: boolean, out: XattrSummary): string | undefined {
  const valuesSize = storage + (entries - valueStart);
  let remain = storage;
  let end = entries;
  while (remain >= ENTRY_SIZE && end + 4 <= area.length && u32(area, end) !== 0) {
    remain -= ENTRY_SIZE;
    const nameLen = area[end + OFF_NAME_LEN]!;
    if (xattrSize(nameLen) > remain) return "EXT2_ET_EA_BAD_NAME_LEN";
    remain -= xattrSize(nameLen);
    end += xattrLen(nameLen);
  }
  remain = storage;
  let e = entries;
  while (remain >= ENTRY_SIZE && e + 4 <= area.length && u32(area, e) !== 0) {
    const nameLen = area[e + OFF_NAME_LEN]!;
    remain -= ENTRY_SIZE + xattrSize(nameLen);
    const inum = u32(area, e + OFF_VALUE_INUM);
    const valueSize = u32(area, e + OFF_VALUE_SIZE);
    const valueOffs = u16(area, e + OFF_VALUE_OFFS);
    if (!eaInode && inum !== 0) return "EXT2_ET_BAD_EA_BLOCK_NUM";
    if (inum === 0) {
      if (valueSize > remain) return "EXT2_ET_EA_BAD_VALUE_SIZE";
      if (valueOffs + valueSize > valuesSize) return "EXT2_ET_EA_BAD_VALUE_OFFSET";
      if (valueSize > 0 && valueStart + valueOffs < end + 4) return "EXT2_ET_EA_BAD_VALUE_OFFSET";
      remain -= valueSize;
    }
    const index = area[e + OFF_NAME_INDEX]!;
    const name = area.subarray(e + ENTRY_SIZE, e + ENTRY_SIZE + nameLen);
    if (index === EXT4_XATTR_INDEX_SYSTEM && nameLen === 4 && name[0] === 0x64 && name[1] === 0x61 && name[2] === 0x74 && name[3] === 0x61) {
      out.systemDataLen = valueSize;
      if (inum === 0) out.systemData = area.slice(valueStart + valueOffs, valueStart + valueOffs + valueSize);
    }
    if (index === 9) out.hasEncryptionContext = true;
    // ext2fs_xattr_get(h, "c"): index 9 has no prefix in libext2fs, so its name is just "c".
    if ((index === 9 || index === 0) && nameLen === 1 && name[0] === 0x63 && out.encryptionContext === undefined) {
      out.encryptionContext = inum === 0 ? area.slice(valueStart + valueOffs, valueStart + valueOffs + valueSize) : new Uint8Array(0);
    }
    e += xattrLen(nameLen);
  }
  return undefined;
}

/**
 * Read the attributes of an inode the way libext2fs ext2fs_xattrs_read does, returning the
 * first error it would return and what e2fsck's inline-data checks need.
 */
export async function readXattrs(c: CheckContext, bytes: Uint8Array, extra: number, fileAcl: number, ignoreCsum: boolean): Promise<XattrSummary> {
  const v = c.v;
  const out: XattrSummary = { systemDataLen: -1, hasEncryptionContext: false };
  const isz = v.inodeSize;
  if (!(extra < 2 || isz <= EXT4_GOOD_OLD_INODE_SIZE + extra + 4)) {
    if ((extra & 3) !== 0) {
      out.error = "EXT2_ET_INODE_CORRUPTED";
      return out;
    }
    const at = EXT4_GOOD_OLD_INODE_SIZE + extra;
    if (u32(bytes, at) === EXT4_XATTR_MAGIC) {
      const start = at + 4;
      const storage = isz - start;
      const err = readArea(bytes.subarray(0, isz), start, start, storage, v.f.eaInode, out);
      if (err !== undefined) {
        out.error = err;
        return out;
      }
    }
  }
  if (fileAcl !== 0) {
    if (fileAcl < v.firstDataBlock || fileAcl >= v.blocksCount) {
      out.error = "EXT2_ET_BAD_EA_BLOCK_NUM";
      return out;
    }
    let block: Uint8Array;
    try {
      block = await v.readBlock(fileAcl);
    } catch {
      out.error = "EXT2_ET_SHORT_READ";
      return out;
    }
    const magic = u32(block, 0);
    if (magic !== EXT4_XATTR_MAGIC || u32(block, xattrHeader.offsetOf("h_blocks")) !== 1) {
      out.error = "EXT2_ET_BAD_EA_HEADER";
      return out;
    }
    if (!ignoreCsum && v.f.metadataCsum && u32(block, xattrHeader.offsetOf("h_checksum")) !== xattrBlockChecksum(block, fileAcl, v.blockSize, v.csumSeed)) {
      out.error = "EXT2_ET_EXT_ATTR_CSUM_INVALID";
      return out;
    }
    const err = readArea(block, HEADER_SIZE, 0, v.blockSize - HEADER_SIZE, v.f.eaInode, out);
    if (err !== undefined) out.error = err;
  }
  return out;
}
