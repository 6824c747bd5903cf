/**
 * Inline data: small files and directories stored in i_block (60 bytes) continued in
 * the in-inode `system.data` xattr (@kernel fs/ext4/inline.c).
 */

import { EXT4_MIN_INLINE_DATA_SIZE, inlineDataValue } from "../format/xattr.js";
import type { Inode } from "./inode.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";
import { ibodyXattrs } from "./xattr.js";

/** What the inline readers need: a read snapshot (Inode) or a writable InodeInfo. */
export type InlineInode = Pick<Inode, "ino" | "raw" | "bytes">;

/**
 * All inline bytes of the inode (i_block, then system.data), not cut to i_size.
 * @kernel ext4_read_inline_data
 */
export function inlineBytes(fs: Ext4Fs, inode: InlineInode): Uint8Array {
  const extra = inlineDataValue(ibodyXattrs(fs, inode));
  if (extra === null) {
    // The kernel requires the system.data entry on every inline inode (ext4_find_inline_data_nolock).
    throw fsCorrupted(fs, { ino: inode.ino, what: "Inline data inode has no system.data xattr" });
  }
  const out = new Uint8Array(EXT4_MIN_INLINE_DATA_SIZE + extra.length);
  out.set(inode.raw.i_block, 0);
  out.set(extra, EXT4_MIN_INLINE_DATA_SIZE);
  return out;
}
