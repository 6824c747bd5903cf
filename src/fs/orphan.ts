/**
 * The on-disk orphan list: inodes whose last link is gone while they are still open.
 * s_last_orphan names the first; each orphan's i_dtime names the next (0 ends the list).
 * After a crash, the next writable mount (kernel or ext4ts) or e2fsck frees them.
 *
 * Like Linux, the list is kept only on volumes with a journal (without one, ext4_orphan_add
 * does nothing and e2fsck finds such inodes as unattached). The orphan_file feature's
 * per-CPU slots are not written: the list is always valid (the kernel falls back to it
 * when the orphan file is full).
 *
 * @kernel ext4_orphan_add, ext4_orphan_del (fs/ext4/orphan.c)
 */

import { hasCompat } from "../format/superblock.js";
import { EXT4_FEATURE_COMPAT_HAS_JOURNAL } from "../format/features.js";
import type { Handle } from "./handle.js";
import { igetWritableRaw, markInodeDirty, type InodeInfo } from "./inode_write.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";

/** Does this volume keep an orphan list? (@kernel ext4_orphan_add returns early without a journal) */
export function usesOrphanList(fs: Ext4Fs): boolean {
  return hasCompat(fs.sb, EXT4_FEATURE_COMPAT_HAS_JOURNAL);
}

/**
 * The orphan list as inode numbers, head first. Bounded by the inode count; a loop or an
 * out-of-range number is corruption.
 */
export async function orphanList(fs: Ext4Fs): Promise<number[]> {
  const out: number[] = [];
  const seen = new Set<number>();
  for (let ino = fs.sb.s_last_orphan; ino !== 0; ) {
    if (ino < 1 || ino > fs.inodesCount) throw fsCorrupted(fs, { ino, what: `Orphan list names inode ${ino}, outside 1..${fs.inodesCount}` });
    if (seen.has(ino)) throw fsCorrupted(fs, { ino, what: `Orphan list loops back to inode ${ino}` });
    seen.add(ino);
    out.push(ino);
    ino = (await igetWritableRaw(fs, ino)).raw.i_dtime;
  }
  return out;
}

/** Put `inode` (its last link just removed, still open) at the head of the list. @kernel ext4_orphan_add */
export async function orphanAdd(h: Handle, inode: InodeInfo): Promise<void> {
  const fs = h.fs;
  if (usesOrphanList(fs)) {
    inode.raw.i_dtime = fs.sb.s_last_orphan;
    fs.sb.s_last_orphan = inode.ino;
    await fs.commitSuper();
  }
  await markInodeDirty(h, inode);
}

/**
 * Take `inode` off the list if it is on it (the caller then frees or keeps it); its
 * i_dtime is cleared. Returns whether it was there. @kernel ext4_orphan_del
 */
export async function orphanDel(h: Handle, inode: InodeInfo): Promise<boolean> {
  const fs = h.fs;
  if (fs.sb.s_last_orphan === 0) return false;
  const list = await orphanList(fs);
  const at = list.indexOf(inode.ino);
  if (at < 0) return false;
  const next = inode.raw.i_dtime;
  if (at === 0) {
    fs.sb.s_last_orphan = next;
    await fs.commitSuper();
  } else {
    const prev = await igetWritableRaw(fs, list[at - 1]!);
    prev.raw.i_dtime = next;
    await markInodeDirty(h, prev);
  }
  inode.raw.i_dtime = 0;
  await markInodeDirty(h, inode);
  return true;
}
