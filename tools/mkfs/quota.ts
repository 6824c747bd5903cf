/**
 * The quota files of a new filesystem (`-O quota`, `-E quotatype=`), as mke2fs 1.47.0's
 * create_quota_inodes makes them: usage computed from what exists at that point (the root
 * directory and lost+found), one v2 quota file per type written with grace times of 7 days,
 * the user and group files in reserved inodes 3 and 4, the project file in a new inode (the
 * first free one). The files' bytes come from src/fs/quota_tree.ts's buildQuotaFile; where
 * their blocks go follows from the order in which libext2fs first writes each filesystem
 * block (quota_write_nomount through ext2fs_file_write), which layout.ts replays.
 *
 * Counterparts: e2fsprogs misc/mke2fs.c create_quota_inodes, lib/support/mkquota.c
 * (quota_compute_usage, quota_write_inode), quotaio.c (quota_file_create,
 * quota_inode_init_new: mode 0100600, IMMUTABLE, EXTENTS when the volume has extents).
 */

import type { QuotaTypeIndex } from "../../src/format/quota.js";
import { GRPQUOTA, PRJQUOTA, QT_BLKSIZE, USRQUOTA, emptyDqblk, type DiskDquot } from "../../src/format/quota.js";
import { EXT4_EXTENTS_FL, EXT4_GRP_QUOTA_INO, EXT4_IMMUTABLE_FL, EXT4_USR_QUOTA_INO, S_IFREG } from "../../src/format/inode.js";
import type { Superblock } from "../../src/format/superblock.js";
import type { Volume } from "../../src/api/promises.js";
import { computeQuotaUsage } from "../../src/fs/quota.js";
import { MemoryQuotaFile, buildQuotaFile } from "../../src/fs/quota_tree.js";
import { lostFoundBlocks, type FileLayout, type QuotaFileRequest } from "./layout.js";
import type { NewInode } from "./inode_table.js";
import { QUOTA_GRP_BIT, QUOTA_PRJ_BIT, QUOTA_USR_BIT, type MkfsParams } from "./options.js";

/** One quota file to create. */
export interface QuotaFileSpec extends QuotaFileRequest {
  type: QuotaTypeIndex;
  /** The file's bytes; i_size is their length (the end of the last quota block written). */
  bytes: Uint8Array;
}

const TYPES: readonly [QuotaTypeIndex, number, number][] = [
  [USRQUOTA, QUOTA_USR_BIT, EXT4_USR_QUOTA_INO],
  [GRPQUOTA, QUOTA_GRP_BIT, EXT4_GRP_QUOTA_INO],
  [PRJQUOTA, QUOTA_PRJ_BIT, 0],
];

/**
 * The quota files mkfs writes (none without the quota feature). Usage: the root directory
 * (one block, owned by -E root_owner) and lost+found (root's), project 0.
 * @kernel create_quota_inodes -> quota_compute_usage + quota_write_inode
 */
export async function planQuotaFiles(params: Pick<MkfsParams, "quotaTypes" | "blockSize" | "ext">): Promise<QuotaFileSpec[]> {
  const bs = params.blockSize;
  const inodes: { uid: number; gid: number; bytes: number }[] = [
    { uid: params.ext.rootUid, gid: params.ext.rootGid, bytes: bs },
    { uid: 0, gid: 0, bytes: lostFoundBlocks(bs) * bs },
  ];
  const out: QuotaFileSpec[] = [];
  for (const [type, bit, ino] of TYPES) {
    if ((params.quotaTypes & bit) === 0) continue;
    const usage = new Map<number, DiskDquot>();
    for (const i of inodes) {
      const id = type === USRQUOTA ? i.uid : type === GRPQUOTA ? i.gid : 0;
      const r = usage.get(id) ?? emptyDqblk(id);
      r.curspace += i.bytes;
      r.curinodes += 1;
      usage.set(id, r);
    }
    // libext2fs allocates a file block when it is first written (ext2fs_file_write).
    const writeOrder: number[] = [];
    const seen = new Set<number>();
    const io = new MemoryQuotaFile(undefined, {
      onAccess: (kind, n) => {
        const l = Math.floor((n * QT_BLKSIZE) / bs);
        if (kind === "write" && !seen.has(l)) {
          seen.add(l);
          writeOrder.push(l);
        }
      },
    });
    const bytes = await buildQuotaFile(type, [...usage.values()], {}, io);
    out.push({ type, ino, bytes, writeOrder });
  }
  return out;
}

/** The quota inode as quota_inode_init_new + the file writes leave it. */
export function quotaInode(spec: QuotaFileSpec, layout: FileLayout, iBlock: Uint8Array, extents: boolean): NewInode {
  return {
    mode: S_IFREG | 0o600,
    uid: 0,
    gid: 0,
    size: spec.bytes.length,
    links: 1,
    blocks: layout.totalBlocks,
    flags: EXT4_IMMUTABLE_FL | (extents ? EXT4_EXTENTS_FL : 0),
    iBlock,
  };
}

/** The file's data, block by block in logical order, zero-padded to whole filesystem blocks. */
export function quotaDataBlocks(spec: QuotaFileSpec, blockSize: number): Uint8Array[] {
  const n = Math.ceil(spec.bytes.length / blockSize);
  return Array.from({ length: n }, (_, l) => {
    const b = new Uint8Array(blockSize);
    b.set(spec.bytes.subarray(l * blockSize, Math.min(spec.bytes.length, (l + 1) * blockSize)));
    return b;
  });
}

/** s_usr_quota_inum, s_grp_quota_inum, s_prj_quota_inum. @kernel quota_set_sb_inum */
export function setQuotaInums(sb: Superblock, files: readonly { type: QuotaTypeIndex; ino: number }[]): void {
  for (const f of files) {
    if (f.type === USRQUOTA) sb.s_usr_quota_inum = f.ino;
    else if (f.type === GRPQUOTA) sb.s_grp_quota_inum = f.ino;
    else sb.s_prj_quota_inum = f.ino;
  }
}

/**
 * Make the quota files hold the usage of the inodes as they are (e2fsck's count), keeping
 * limits: mkfs -d calls it after copying the tree, so the image is right whether or not
 * the engine charged every block and inode on the way (it writes back first, so delayed
 * allocations are counted). One pass over the inode tables. Returns false without quota.
 * @kernel e2fsprogs quota_compute_usage + quota_write_inode (what mke2fs -d does after populate_fs)
 */
export async function recomputeQuotaUsage(vol: Volume): Promise<boolean> {
  const q = vol.quota;
  if (q === null) return false;
  await vol.sync();
  const usage = await computeQuotaUsage(vol.fs, q.types());
  for (const t of q.types()) await q.replaceUsage(t, usage.get(t) ?? new Map<number, { space: number; inodes: number }>());
  await vol.sync();
  return true;
}
