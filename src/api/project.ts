/**
 * Project ids through the API: FS_IOC_FSSETXATTR / FS_IOC_FSGETXATTR's project part, as
 * `chattr -p ID [+P|-P]` and `lsattr -p` use them (@kernel ext4_fileattr_set /
 * ext4_ioctl_setproject, ext4_fileattr_get; the engine side is src/fs/quota_charge.ts).
 */

import { FsError } from "../errors.js";
import { setInodeTime } from "../format/inode.js";
import { withHandle } from "../fs/handle.js";
import { igetWritable, markInodeDirty } from "../fs/inode_write.js";
import { resolvePath } from "../fs/namei.js";
import { projectOf, setProjectId } from "../fs/quota_charge.js";
import type { Ext4Fs } from "../fs/super.js";
import { lockWholeInode, op, type Writer } from "./mutate.js";

/**
 * Set the project id of the inode at `path` (following a final symlink, as an ioctl on an
 * open file does) and, with `inherit`, set or clear PROJINHERIT (directories). Its usage
 * moves to the new project's quota. Locks: i_rwsem, xattr_sem (i_extra_isize may grow),
 * i_data_sem (quota moves with the id: no writeback allocating for the inode meanwhile).
 */
export function setProjectAt(w: Writer, path: string, projid: number, opts: { inherit?: boolean } = {}): Promise<void> {
  return op(w, "ioctl", path, async (l) => {
    const snap = await resolvePath(w.fs, path, { followLast: true });
    await lockWholeInode(w, l, snap.ino);
    await withHandle(
      w.fs,
      async (h) => {
        const inode = await igetWritable(w.fs, snap.ino);
        if (!(await setProjectId(w.fs, inode, projid, opts))) return;
        setInodeTime(inode.raw, w.fs.inodeSize, "i_ctime", w.deps.now());
        await markInodeDirty(h, inode);
      },
      l.task,
    );
  });
}

/** The project id and PROJINHERIT flag of the inode at `path` (0 without the feature or room for it). */
export async function getProjectAt(fs: Ext4Fs, path: string): Promise<{ projid: number; inherit: boolean }> {
  try {
    const inode = await resolvePath(fs, path, { followLast: true });
    return projectOf(fs, inode.raw);
  } catch (e) {
    throw e instanceof FsError ? e.with({ syscall: "ioctl", path }) : e;
  }
}
