/**
 * Symlink targets: fast symlinks keep the target in i_block; others in a data block or
 * inline data (@kernel ext4_iget symlink branch, ext4_inode_is_fast_symlink, ext4_get_link).
 */

import { EXT4_EA_INODE_FL, EXT4_N_BLOCKS } from "../format/inode.js";
import { hasInlineData, isSymlink, type Inode } from "./inode.js";
import { FsError } from "../errors.js";
import { readRange } from "./read.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";

/** @kernel ext4_inode_is_fast_symlink */
export function isFastSymlink(fs: Ext4Fs, inode: Inode): boolean {
  if (inode.flags & EXT4_EA_INODE_FL) return inode.size > 0 && inode.size < EXT4_N_BLOCKS * 4;
  if (hasInlineData(inode)) return false;
  const eaSectors = inode.fileAcl !== 0 ? fs.blockSize >> 9 : 0; // one cluster; no bigalloc yet
  return inode.blocks - eaSectors === 0;
}

/** The target's bytes. Throws EINVAL for a non-symlink, EFSCORRUPTED for a bad length. */
export async function readLink(fs: Ext4Fs, inode: Inode): Promise<Uint8Array> {
  if (!isSymlink(inode)) throw new FsError("EINVAL", "Not a symbolic link", { ino: inode.ino });
  if (isFastSymlink(fs, inode)) {
    const data = inode.raw.i_block;
    const len = inode.size;
    // The kernel insists the target is NUL-free and fits i_block with its terminator.
    const nul = data.indexOf(0);
    if (len === 0 || len >= data.length || (nul >= 0 && nul < len)) {
      throw fsCorrupted(fs, { ino: inode.ino, what: `Invalid fast symlink length ${len}` });
    }
    return data.slice(0, len);
  }
  if (inode.size === 0 || inode.size >= fs.blockSize) {
    throw fsCorrupted(fs, { ino: inode.ino, what: `Invalid symlink length ${inode.size}` });
  }
  const data = await readRange(fs, inode, 0, inode.size);
  const nul = data.indexOf(0);
  return nul >= 0 ? data.slice(0, nul) : data;
}
