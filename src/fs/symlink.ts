/**
 * Symlink targets: fast symlinks keep the target in i_block; others in a data block or
 * inline data (@kernel ext4_iget symlink branch, ext4_inode_is_fast_symlink, ext4_get_link).
 */

import { hasInlineData, isFastSymlink, isSymlink, type Inode } from "./inode.js";
import { FsError } from "../errors.js";
import { mapBlocks, readRange } from "./read.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";

/** The target's bytes. Throws EINVAL for a non-symlink, EFSCORRUPTED for a bad length or a hole. @kernel ext4_get_link */
export async function readLink(fs: Ext4Fs, inode: Inode): Promise<Uint8Array> {
  if (!isSymlink(inode)) throw new FsError("EINVAL", "Not a symbolic link", { ino: inode.ino });
  // iget already checked a fast symlink's length and terminator.
  if (isFastSymlink(fs, inode)) return inode.raw.i_block.slice(0, inode.size);
  if (inode.size === 0 || inode.size >= fs.blockSize) {
    throw fsCorrupted(fs, { ino: inode.ino, what: `Invalid symlink length ${inode.size}` });
  }
  if (!hasInlineData(inode)) {
    const run = await mapBlocks(fs, inode, 0, 1);
    if (run.pblk === 0 || run.unwritten) throw fsCorrupted(fs, { ino: inode.ino, what: "Bad symlink: its block is a hole" });
  }
  const data = await readRange(fs, inode, 0, inode.size);
  const nul = data.indexOf(0);
  return nul >= 0 ? data.slice(0, nul) : data;
}
