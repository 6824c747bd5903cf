/**
 * The internal journal: its size (ext2fs_default_journal_size, figure_journal_size),
 * the journal inode (inode 8: a regular file, extent-mapped when the extent feature
 * is on) and its first block, the jbd2 superblock of an empty log
 * (format/jbd2.ts newJournalSuperblock). Mirrors write_journal_inode in e2fsprogs
 * lib/ext2fs/mkjournal.c.
 */

import { defaultJournalSize, newJournalSuperblock } from "../../src/format/jbd2.js";
import { EXT4_EXTENTS_FL, S_IFREG } from "../../src/format/inode.js";
import type { NewInode } from "./inode_table.js";
import type { EncodedFileMap } from "./file_map.js";
import { fail } from "./options.js";

export { defaultJournalSize };

/**
 * Journal blocks wanted: the default for the size, or -J size=MB checked against
 * 1024..10240000 blocks and half the free blocks. 0 (with a warning) when the
 * filesystem is too small for a journal.
 * @kernel figure_journal_size (misc/util.c)
 */
export function figureJournalSize(requestedMb: number, blocks: number, blockSize: number, freeBlocks: number): { blocks: number; warning?: string } {
  const def = defaultJournalSize(blocks);
  if (def < 0) return { blocks: 0, warning: "Filesystem too small for a journal" };
  if (requestedMb <= 0) return { blocks: def };
  const n = Math.floor((requestedMb * 1024) / (blockSize / 1024));
  if (n < 1024 || n > 10240000) {
    throw fail(`The total requested journal size is ${n} blocks; it must be between 1024 and 10240000 blocks.  Aborting.`);
  }
  if (n > Math.floor(freeBlocks / 2)) throw fail("Total journal size too big for filesystem.");
  return { blocks: n };
}

/** Inode 8 as write_journal_inode leaves it. */
export function journalInode(blocks: number, totalBlocks: number, blockSize: number, extents: boolean, map: EncodedFileMap): NewInode {
  return {
    mode: S_IFREG | 0o600,
    uid: 0,
    gid: 0,
    size: blocks * blockSize,
    links: 1,
    blocks: totalBlocks,
    flags: extents ? EXT4_EXTENTS_FL : 0,
    iBlock: map.iBlock,
  };
}

/** Block 0 of the journal. */
export function journalSuperblockBlock(blocks: number, blockSize: number, uuid: Uint8Array): Uint8Array {
  return newJournalSuperblock({ blockSize, maxLen: blocks, uuid });
}
