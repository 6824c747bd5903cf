/**
 * Reading extended attributes: the in-inode area after i_extra_isize, then the one
 * external block at i_file_acl (@kernel ext4_xattr_get / ext4_listxattr, fs/ext4/xattr.c).
 *
 * Entries come back as stored: ACLs in ext4's on-disk ACL format and system.data (inline
 * data) included. The API layer turns that into what Linux listxattr/getxattr show.
 */

import { xattrBlockChecksum } from "../format/checksum.js";
import { EXT4_GOOD_OLD_INODE_SIZE } from "../format/inode.js";
import { EXT4_XATTR_MAGIC, decodeIbodyXattrs, decodeXattrBlock, xattrHeader, type XattrEntry } from "../format/xattr.js";
import type { Inode } from "./inode.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";

/** Entries stored in the inode body. @kernel ext4_xattr_ibody_get */
export function ibodyXattrs(fs: Ext4Fs, inode: Pick<Inode, "ino" | "raw" | "bytes">): XattrEntry[] {
  if (fs.inodeSize <= EXT4_GOOD_OLD_INODE_SIZE) return [];
  const start = EXT4_GOOD_OLD_INODE_SIZE + inode.raw.i_extra_isize;
  return decodeIbodyXattrs(inode.bytes.subarray(start, fs.inodeSize), { ino: inode.ino });
}

/** Entries in the external block, checked (magic, h_blocks, checksum, entries). @kernel ext4_xattr_block_get */
export async function blockXattrs(fs: Ext4Fs, inode: Inode): Promise<XattrEntry[]> {
  if (inode.fileAcl === 0) return [];
  const pblk = inode.fileAcl;
  const block = await fs.cache.get(pblk);
  // Order as __ext4_xattr_check_block: header, then checksum (EFSBADCRC), then entries.
  const h = xattrHeader.decode(block);
  if (h.h_magic !== EXT4_XATTR_MAGIC) {
    throw fsCorrupted(fs, { ino: inode.ino, block: pblk, what: `Bad xattr block: h_magic is 0x${h.h_magic.toString(16).padStart(8, "0")}, expected 0xea020000` });
  }
  if (h.h_blocks !== 1) throw fsCorrupted(fs, { ino: inode.ino, block: pblk, what: `Bad xattr block: h_blocks is ${h.h_blocks}, expected 1` });
  if (fs.features.metadataCsum && h.h_checksum !== xattrBlockChecksum(block, pblk, fs.blockSize, fs.csumSeed)) {
    throw fsCorrupted(fs, { ino: inode.ino, block: pblk, what: "Xattr block checksum does not match", crc: true });
  }
  const decoded = decodeXattrBlock(block, { ino: inode.ino, block: pblk });
  return decoded.entries;
}

/** In-inode entries first, then the block's, as ext4_listxattr orders them. */
export async function allXattrs(fs: Ext4Fs, inode: Inode): Promise<XattrEntry[]> {
  return [...ibodyXattrs(fs, inode), ...(await blockXattrs(fs, inode))];
}
