/**
 * Changing inline-data inodes (files and directories whose contents live in i_block and
 * the in-inode `system.data` xattr). ext4ts reads inline data but does not write it: the
 * first change to such an inode moves its contents to an ordinary block (extents when the
 * volume has them), the conversion the kernel itself makes once the data outgrows the
 * inode. The result is always a valid on-disk state; small files ext4ts writes are simply
 * never inline.
 *
 * @kernel ext4_convert_inline_data, ext4_destroy_inline_data_nolock,
 *         ext4_convert_inline_data_nolock / ext4_finish_convert_inline_dir (fs/ext4/inline.c)
 */

import { EXT4_EXT_MAGIC, extentHeader } from "../format/extent.js";
import { EXT4_EXTENTS_FL, EXT4_GOOD_OLD_INODE_SIZE, EXT4_INLINE_DATA_FL } from "../format/inode.js";
import { EXT4_XATTR_INDEX_SYSTEM, EXT4_XATTR_SYSTEM_DATA, decodeIbodyXattrs, encodeIbodyXattrs } from "../format/xattr.js";
import { inlineDirContents } from "./dir.js";
import { writeData, type WriteDeps } from "./file_write.js";
import type { Handle } from "./handle.js";
import { inlineBytes } from "./inline.js";
import { getSize, setSize, type InodeInfo } from "./inode_write.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";

export function isInline(inode: InodeInfo): boolean {
  return (inode.raw.i_flags & EXT4_INLINE_DATA_FL) !== 0;
}

function ibodyRegion(fs: Ext4Fs, inode: InodeInfo): { start: number; region: Uint8Array } {
  const start = EXT4_GOOD_OLD_INODE_SIZE + inode.raw.i_extra_isize;
  return { start, region: inode.bytes.subarray(start, fs.inodeSize) };
}

/** Is this inline directory empty? (@kernel empty_inline_dir) */
export function inlineDirIsEmpty(fs: Ext4Fs, inode: InodeInfo): boolean {
  return inlineDirContents(fs, inode).entries.length === 0;
}

/**
 * Drop the inline form: the system.data entry goes from the in-inode xattrs (others
 * stay), i_block is cleared and, on an extent volume, becomes an empty extent root.
 * @kernel ext4_destroy_inline_data_nolock
 */
export function destroyInline(fs: Ext4Fs, inode: InodeInfo): void {
  const { start, region } = ibodyRegion(fs, inode);
  const dataName = new TextEncoder().encode(EXT4_XATTR_SYSTEM_DATA);
  const keep = decodeIbodyXattrs(region, { ino: inode.ino }).filter(
    (e) => !(e.e_name_index === EXT4_XATTR_INDEX_SYSTEM && e.name.length === dataName.length && e.name.every((c, i) => c === dataName[i])),
  );
  inode.bytes.set(encodeIbodyXattrs(keep, region.length), start);
  inode.raw.i_flags &= ~EXT4_INLINE_DATA_FL;
  const root = new Uint8Array(60);
  if (fs.features.extents) {
    inode.raw.i_flags |= EXT4_EXTENTS_FL;
    extentHeader.encode({ eh_magic: EXT4_EXT_MAGIC, eh_entries: 0, eh_max: 4, eh_depth: 0, eh_generation: 0 }, root, 0); // @kernel ext4_ext_tree_init
  }
  inode.raw.i_block = root;
  setSize(inode, 0);
}

/**
 * Move an inline file's contents to a block so the ordinary data code can change it; a
 * no-op for other inodes. With `discard` the contents are dropped instead (the file is
 * about to be truncated to 0): nothing is allocated. The caller writes the inode back.
 * (Directories convert in dir_write.ts, on their first entry change.)
 */
export async function convertInlineFile(h: Handle, deps: WriteDeps, inode: InodeInfo, opts: { discard?: boolean } = {}): Promise<void> {
  if (!isInline(inode)) return;
  const fs = h.fs;
  const size = getSize(fs, inode);
  const all = opts.discard === true ? new Uint8Array(0) : inlineBytes(fs, inode);
  if (opts.discard !== true && size > all.length) throw fsCorrupted(fs, { ino: inode.ino, what: `Inline file size ${size} exceeds its ${all.length} inline bytes` });
  destroyInline(fs, inode);
  await writeData(h, deps, inode, 0, all.subarray(0, size));
  if (opts.discard !== true) setSize(inode, size);
}
