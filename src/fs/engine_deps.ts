/**
 * Wiring of the write engine: the real allocators and extent-tree writer behind the
 * interfaces the namespace and data code take (so tests can substitute fakes).
 */

import type { Timespec } from "../format/inode.js";
import type { BlockAllocator } from "./alloc_request.js";
import { ext4FreeBlocks, ext4NewBlocks } from "./balloc.js";
import { extConvertUnwritten, extInsertExtent, extRemoveSpace } from "./extents_write.js";
import { ext4FreeInode, ext4NewInode } from "./ialloc.js";
import type { NameiDeps } from "./namei_write.js";
import type { Ext4Fs } from "./super.js";

export function engineDeps(_fs: Ext4Fs, now: () => Timespec): NameiDeps {
  const alloc: BlockAllocator = {
    alloc: (h, req) => ext4NewBlocks(h, req),
    free: (h, ino, pblk, count, dquots) => ext4FreeBlocks(h, ino, pblk, count, dquots),
  };
  return {
    alloc,
    extents: { insert: extInsertExtent, removeSpace: extRemoveSpace, convertUnwritten: extConvertUnwritten },
    inodes: { newInode: (h, dirIno, mode, name, dquots) => ext4NewInode(h, dirIno, mode, { name, dquots }), freeInode: ext4FreeInode },
    now,
  };
}
