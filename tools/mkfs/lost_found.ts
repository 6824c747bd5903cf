/**
 * The two directories mke2fs creates: the root (".", "..", "lost+found") and
 * lost+found, pre-grown so e2fsck can reconnect files without allocating
 * (create_lost_and_found grows it to 16 KiB, at least two blocks). Block contents
 * follow ext2fs_new_dir_block and ext2fs_link: with the filetype feature entries carry
 * EXT4_FT_DIR; with metadata_csum each block ends in a 12-byte tail whose checksum
 * covers the rest of the block (dirBlockChecksum).
 */

import { dirBlockChecksum } from "../../src/format/checksum.js";
import { EXT4_FT_DIR, EXT4_FT_DIR_CSUM, dirEntry, dirEntryTail, dirRecLen, recLenToDisk } from "../../src/format/dirent.js";

export interface DirBlockOptions {
  blockSize: number;
  filetype: boolean;
  /** The directory inode's checksum seed under metadata_csum, else undefined. */
  inodeSeed: number | undefined;
}

type Entry = readonly [ino: number, name: string];

/** One directory block holding `entries`, the last one's rec_len reaching the tail. */
export function dirBlock(entries: readonly Entry[], o: DirBlockOptions): Uint8Array {
  const bs = o.blockSize;
  const block = new Uint8Array(bs);
  const tail = o.inodeSeed === undefined ? 0 : dirEntryTail.size;
  const end = bs - tail;
  if (entries.length === 0) {
    dirEntry.encode({ inode: 0, rec_len: recLenToDisk(end, bs), name_len: 0, file_type: 0 }, block, 0);
  }
  let off = 0;
  entries.forEach(([ino, name], i) => {
    const bytes = new TextEncoder().encode(name);
    const rec = i === entries.length - 1 ? end - off : dirRecLen(bytes.length);
    dirEntry.encode({ inode: ino, rec_len: recLenToDisk(rec, bs), name_len: bytes.length, file_type: o.filetype ? EXT4_FT_DIR : 0 }, block, off);
    block.set(bytes, off + dirEntry.size);
    off += rec;
  });
  if (o.inodeSeed !== undefined) {
    dirEntryTail.encode({ det_reserved_zero1: 0, det_rec_len: tail, det_reserved_zero2: 0, det_reserved_ft: EXT4_FT_DIR_CSUM, det_checksum: 0 }, block, end);
    dirEntryTail.encode({ det_checksum: dirBlockChecksum(block, bs, o.inodeSeed) }, block, end);
  }
  return block;
}

/** The root directory's only block. */
export function rootDirBlock(rootIno: number, lostFoundIno: number, o: DirBlockOptions): Uint8Array {
  return dirBlock([[rootIno, "."], [rootIno, ".."], [lostFoundIno, "lost+found"]], o);
}

/** lost+found's blocks: "." and ".." in the first, the rest empty. */
export function lostFoundDirBlocks(ino: number, parent: number, count: number, o: DirBlockOptions): Uint8Array[] {
  const out = [dirBlock([[ino, "."], [parent, ".."]], o)];
  for (let i = 1; i < count; i++) out.push(dirBlock([], o));
  return out;
}
