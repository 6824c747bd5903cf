/**
 * The resize inode (inode 7): a block-mapped file whose double-indirect block lists
 * the primary reserved GDT blocks, each of which lists its copies in the backup
 * groups, so online resize can find and claim them. Its size pretends the whole
 * double-indirect range is in use. A port of ext2fs_create_resize_inode and
 * ext2fs_list_backups (e2fsprogs lib/ext2fs/res_gdt.c) for a new filesystem.
 */

import { EXT4_N_BLOCKS, S_IFREG } from "../../src/format/inode.js";
import { bgHasSuper, type Geometry } from "./geometry.js";
import type { NewInode } from "./inode_table.js";

const EXT2_DIND_BLOCK = 13;

/** Groups holding backups, ascending (1, 3, 5, 7, 9, 25, 27, ... with sparse_super). @kernel ext2fs_list_backups */
export function backupGroups(geo: Geometry): number[] {
  const out: number[] = [];
  if (!geo.sparseSuper) {
    for (let g = 1; g < geo.groupCount; g++) out.push(g);
    return out;
  }
  for (const base of [3, 5, 7]) {
    for (let g = base === 3 ? 1 : base; g < geo.groupCount; g *= base) out.push(g);
  }
  return [...new Set(out)].sort((a, b) => a - b).filter((g) => bgHasSuper(geo, g));
}

export interface ResizeInode {
  inode: NewInode;
  /** The double-indirect block and the primary reserved GDT blocks, by block number. */
  blocks: Map<number, Uint8Array>;
}

/** @kernel ext2fs_create_resize_inode */
export function buildResizeInode(geo: Geometry, dind: number): ResizeInode {
  const bs = geo.blockSize;
  const apb = bs / 4;
  const sbBlk = geo.firstDataBlock;
  const backups = backupGroups(geo);
  const dindBuf = new Uint8Array(bs);
  const ddv = new DataView(dindBuf.buffer);
  const blocks = new Map<number, Uint8Array>([[dind, dindBuf]]);
  let used = 1;
  for (let r = 0; r < geo.reservedGdtBlocks; r++) {
    const gdtBlk = sbBlk + 1 + geo.descBlocks + r;
    ddv.setUint32(((geo.descBlocks + r) % apb) * 4, gdtBlk, true);
    const buf = new Uint8Array(bs);
    const dv = new DataView(buf.buffer);
    backups.forEach((g, i) => dv.setUint32(i * 4, gdtBlk + g * geo.blocksPerGroup, true));
    blocks.set(gdtBlk, buf);
    used += 1 + backups.length;
  }
  const iBlock = new Uint8Array(EXT4_N_BLOCKS * 4);
  new DataView(iBlock.buffer).setUint32(EXT2_DIND_BLOCK * 4, dind, true);
  return {
    inode: {
      mode: S_IFREG | 0o600,
      uid: 0,
      gid: 0,
      size: (apb * apb + apb + 12) * bs,
      links: 1,
      blocks: used,
      flags: 0,
      iBlock,
    },
    blocks,
  };
}
