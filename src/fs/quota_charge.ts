/**
 * Where the engine charges quota (@kernel fs/ext4/mballoc.c ext4_mb_new_blocks's dquot loop,
 * ext4_free_blocks -> dquot_free_block, fs/ext4/inode.c ext4_da_reserve_space /
 * ext4_da_update_reserve_space / ext4_da_release_space, ialloc.c dquot_alloc_inode /
 * dquot_free_inode, xattr.c dquot_alloc_block on block reuse, ext4_setattr -> dquot_transfer,
 * ioctl.c ext4_ioctl_setproject).
 *
 * Design note.
 * - WHO is charged is a value loaded before the charge: `inodeDquots` reads the owner's quota
 *   records (it awaits) and the caller puts the result into the allocation request
 *   (AllocRequest.dquots), the in-core inode (InodeCore.dquots, for delalloc reservations) or
 *   passes it to the freeing call. HOW a block is charged is the request's funding
 *   (alloc_request.ts): chargeNow/enforce -> allocSpace "enforce" in the allocator's commit
 *   (EDQUOT, or the grant shrinks to the room left above minLen), chargeNow/nofail -> "nofail",
 *   delalloc -> nothing in the allocator (write() reserved, writeback's claim converts). No
 *   inode or volume flag decides it (the seed rule).
 * - Every charge is synchronous and sits in the same synchronous section as the state change
 *   it accounts for: the bitmap commit (balloc), the inode-bitmap commit (ialloc), the
 *   reservation counters (inode_core), the xattr block refcount change (xattr_write), the uid/
 *   gid/projid change (chownInode, setProjectId).
 * - S_NOQUOTA: the quota files, the reserved inodes below s_first_ino except the root, the
 *   orphan file and EA inodes are never charged (inodeDquots gives null for them), as
 *   e2fsck's quota_compute_usage leaves them out.
 * - Changing an inode's ids (chown, project) moves its charged bytes (i_blocks x 512) and its
 *   reservation to the new ids' dquots. Allocation requests captured the old dquots, so no
 *   allocation of the inode may be in flight: the caller holds the inode's i_rwsem (write
 *   paths, setxattr, namespace changes), and i_data_sem (write) to keep writeback out.
 */

import { assert } from "../debug/assert.js";
import { FsError } from "../errors.js";
import { EXT4_FEATURE_RO_COMPAT_PROJECT, hasRoCompat } from "../format/features.js";
import {
  EXT4_APPEND_FL,
  EXT4_EA_INODE_FL,
  EXT4_GOOD_OLD_INODE_SIZE,
  EXT4_IMMUTABLE_FL,
  EXT4_INLINE_DATA_FL,
  EXT4_PROJINHERIT_FL,
  EXT4_ROOT_INO,
  S_IFDIR,
  S_IFMT,
  fitsInInode,
  inodeGid,
  inodeStruct,
  inodeUid,
  type RawInode,
} from "../format/inode.js";
import { isQuotaInode } from "../format/quota.js";
import { firstIno } from "../format/superblock.js";
import type { AllocRequest } from "./alloc_request.js";
import { inodeCore } from "./inode_core.js";
import type { InodeInfo } from "./inode_write.js";
import { quotaIdsOf, quotaSetOf, type InodeDquots, type QuotaSet } from "./quota.js";
import type { Ext4Fs } from "./super.js";

/** Is `ino` S_NOQUOTA (never charged, not counted)? @kernel dquot_load_quota_inode, e2fsprogs quota_compute_usage */
export function isNoQuotaInode(fs: Ext4Fs, ino: number): boolean {
  if (isQuotaInode(fs.sb, ino)) return true;
  if (ino < firstIno(fs.sb) && ino !== EXT4_ROOT_INO) return true;
  return ino !== 0 && ino === fs.sb.s_orphan_file_inum;
}

/** Does the volume have the project feature (i_projid meaningful)? */
export function hasProjectFeature(fs: Ext4Fs): boolean {
  return hasRoCompat(fs.sb, EXT4_FEATURE_RO_COMPAT_PROJECT);
}

/** i_projid as the kernel reads it: 0 when the inode's extra space does not cover the field. @kernel ext4_iget (EXT4_DEF_PROJID) */
export function projectIdOf(fs: Ext4Fs, raw: RawInode): number {
  return hasProjectFeature(fs) && fitsInInode(raw, fs.inodeSize, "i_projid") ? raw.i_projid >>> 0 : 0;
}

/**
 * The dquots `inode` is charged to, loaded now (this awaits: call it before the synchronous
 * step that charges); null when the volume has no quota or the inode is S_NOQUOTA.
 * @kernel dquot_initialize
 */
export async function inodeDquots(fs: Ext4Fs, inode: { readonly ino: number; readonly raw: RawInode }): Promise<InodeDquots | null> {
  const q = quotaSetOf(fs);
  if (q === null || isNoQuotaInode(fs, inode.ino) || (inode.raw.i_flags & EXT4_EA_INODE_FL) !== 0) return null;
  return q.dquotsFor(quotaIdsOf(fs, inode.raw));
}

/** The dquots a new inode with these ids will be charged to (loaded now). */
export async function dquotsForIds(fs: Ext4Fs, ids: { uid: number; gid: number; projid: number }): Promise<InodeDquots | null> {
  const q = quotaSetOf(fs);
  return q === null ? null : q.dquotsFor(ids);
}

function quotaSet(fs: Ext4Fs, dq: InodeDquots): QuotaSet {
  const q = quotaSetOf(fs);
  assert(q !== null, () => `Quota charge of ${dq.length} dquots on a volume without quota loaded`);
  return q;
}

// ---------------------------------------------------------------------------------------
// Block allocation and freeing (balloc.ts calls these inside its commit sections)

/**
 * How many blocks the request may be granted as far as quota goes (synchronous, changes
 * nothing): Infinity unless it is chargeNow/enforce with dquots; EDQUOT when fewer than
 * req.minLen fit. @kernel ext4_mb_new_blocks: while (ar->len && dquot_alloc_block(...)) ar->len--
 */
export function quotaGrantCap(fs: Ext4Fs, req: AllocRequest): number {
  const dq = req.dquots;
  if (dq === null || dq.length === 0 || req.funding.kind !== "chargeNow" || req.funding.quota !== "enforce") return Infinity;
  const q = quotaSet(fs, dq);
  const room = Math.floor(q.roomFor(dq) / fs.blockSize);
  if (room < req.minLen) q.checkSpace(dq, req.minLen * fs.blockSize); // throws the right EDQUOT
  assert(room >= req.minLen, () => `Quota room of ${room} blocks but no EDQUOT for ${req.minLen}`);
  return room;
}

/**
 * Charge `blocks` just granted to `req`, by its funding: chargeNow/enforce and chargeNow/nofail
 * are charged now (enforce was capped by quotaGrantCap in the same section, so it cannot
 * fail); delalloc blocks are charged by the claim at insertion (inode_core claimDelayed).
 */
export function chargeGrantedBlocks(fs: Ext4Fs, req: AllocRequest, blocks: number): void {
  const dq = req.dquots;
  if (dq === null || dq.length === 0) return;
  const f = req.funding;
  switch (f.kind) {
    case "delalloc":
      return;
    case "chargeNow":
      quotaSet(fs, dq).allocSpace(dq, blocks * fs.blockSize, f.quota);
      return;
  }
}

/** Uncharge `blocks` freed from an inode charged to `dq` (null: not charged). @kernel dquot_free_block */
export function unchargeFreedBlocks(fs: Ext4Fs, dq: InodeDquots | null, blocks: number): void {
  if (dq === null || dq.length === 0) return;
  quotaSet(fs, dq).freeSpace(dq, blocks * fs.blockSize);
}

/**
 * Charge `blocks` for a new reference to an existing block (an identical, shared xattr
 * block): EDQUOT at the limit, nothing changed. @kernel ext4_xattr_block_set: dquot_alloc_block
 */
export function chargeBlockReference(fs: Ext4Fs, dq: InodeDquots | null, blocks: number): void {
  if (dq === null || dq.length === 0) return;
  quotaSet(fs, dq).allocSpace(dq, blocks * fs.blockSize, "enforce");
}

// ---------------------------------------------------------------------------------------
// Delayed allocation (inode_core.ts calls these inside reserve/claim/release)

/** Would reserving `blocks` exceed a limit? Throws EDQUOT, changes nothing. */
export function checkReserve(fs: Ext4Fs, dq: InodeDquots | null, blocks: number): void {
  if (dq === null || dq.length === 0) return;
  quotaSet(fs, dq).checkSpace(dq, blocks * fs.blockSize);
}

/** @kernel dquot_reserve_block */
export function reserveQuota(fs: Ext4Fs, dq: InodeDquots | null, blocks: number): void {
  if (dq === null || dq.length === 0) return;
  quotaSet(fs, dq).reserveSpace(dq, blocks * fs.blockSize);
}

/** @kernel dquot_claim_block */
export function claimQuota(fs: Ext4Fs, dq: InodeDquots | null, blocks: number): void {
  if (dq === null || dq.length === 0 || blocks === 0) return;
  quotaSet(fs, dq).claimSpace(dq, blocks * fs.blockSize);
}

/** @kernel dquot_release_reservation_block */
export function releaseQuota(fs: Ext4Fs, dq: InodeDquots | null, blocks: number): void {
  if (dq === null || dq.length === 0 || blocks === 0) return;
  quotaSet(fs, dq).releaseReservation(dq, blocks * fs.blockSize);
}

// ---------------------------------------------------------------------------------------
// Inodes (ialloc.ts calls these inside its commit sections)

/** One more inode for `dq`: EDQUOT (nothing changed) at the limit. @kernel dquot_alloc_inode */
export function chargeInode(fs: Ext4Fs, dq: InodeDquots | null): void {
  if (dq === null || dq.length === 0) return;
  quotaSet(fs, dq).allocInode(dq);
}

/** @kernel dquot_free_inode */
export function unchargeInode(fs: Ext4Fs, dq: InodeDquots | null): void {
  if (dq === null || dq.length === 0) return;
  quotaSet(fs, dq).freeInode(dq);
}

// ---------------------------------------------------------------------------------------
// Changing an inode's ids

/** Are two dquot lists the same accounts (same objects in the same order)? */
export function sameDquots(a: InodeDquots | null | undefined, b: InodeDquots | null | undefined): boolean {
  if (a === b) return true;
  if (a == null || b == null) return (a ?? []).length === 0 && (b ?? []).length === 0;
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Synchronous: move `inode`'s charges (i_blocks and its delalloc reservation) from `from` to
 * `to` (EDQUOT from the new ids' limits, nothing changed) and point its in-core reservation
 * at `to`. The caller changes the ids in the same section. @kernel __dquot_transfer
 */
function transferCharges(fs: Ext4Fs, inode: InodeInfo, from: InodeDquots, to: InodeDquots): void {
  const q = quotaSet(fs, to);
  const space = sectorsOfRaw(fs, inode.raw) * 512;
  const core = inodeCore(fs, inode.ino);
  const rsv = (core?.reservedDataBlocks ?? 0) * fs.blockSize;
  if (core !== undefined && core.reservedDataBlocks > 0) {
    assert(sameDquots(core.dquots, from), () => `Inode ${inode.ino}: its reservation is charged to other dquots than its ids'`);
  }
  q.transfer(from, to, space, rsv);
  if (core !== undefined && core.dquots !== undefined) core.dquots = to;
}

function sectorsOfRaw(fs: Ext4Fs, raw: RawInode): number {
  const lo = raw.i_blocks_lo >>> 0;
  if (!fs.features.hugeFile) return lo;
  const v = lo + raw.l_i_blocks_high * 2 ** 32;
  return raw.i_flags & 0x40000 /* EXT4_HUGE_FILE_FL */ ? v * (fs.blockSize / 512) : v;
}

/**
 * chown/chgrp: set the inode's uid and/or gid (-1: unchanged), moving its quota usage to the
 * new ids (EDQUOT when they cannot take it; nothing changed then). The caller holds the
 * inode's i_rwsem and i_data_sem (write) and writes the inode back.
 * @kernel ext4_setattr -> dquot_transfer
 */
export async function chownInode(fs: Ext4Fs, inode: InodeInfo, uid: number, gid: number): Promise<void> {
  const r = inode.raw;
  const oldUid = inodeUid(r);
  const oldGid = inodeGid(r);
  const newUid = uid === -1 ? oldUid : uid >>> 0;
  const newGid = gid === -1 ? oldGid : gid >>> 0;
  let from: InodeDquots | null = null;
  let to: InodeDquots | null = null;
  if (newUid !== oldUid || newGid !== oldGid) {
    from = await inodeDquots(fs, inode);
    if (from !== null) to = await quotaSet(fs, from).dquotsFor({ uid: newUid, gid: newGid, projid: quotaIdsOf(fs, r).projid });
  }
  // One synchronous section from here: the ids and the usage move together.
  assert(inodeUid(r) === oldUid && inodeGid(r) === oldGid, () => `Inode ${inode.ino}: owner changed while chown loaded quota (i_rwsem not held?)`);
  if (from !== null && to !== null) transferCharges(fs, inode, from, to);
  if (uid !== -1) {
    r.i_uid = newUid & 0xffff;
    r.l_i_uid_high = newUid >>> 16;
  }
  if (gid !== -1) {
    r.i_gid = newGid & 0xffff;
    r.l_i_gid_high = newGid >>> 16;
  }
}

/** Extra inode fields the kernel wants (s_want_extra_isize, at least what covers i_projid). */
function wantExtraIsize(fs: Ext4Fs): number {
  return Math.min(Math.max(fs.sb.s_want_extra_isize, inodeStruct.endOf("i_projid") - EXT4_GOOD_OLD_INODE_SIZE), fs.inodeSize - EXT4_GOOD_OLD_INODE_SIZE);
}

/** Does the inode hold in-inode xattrs (the ibody magic right after i_extra_isize)? */
function hasIbodyXattrs(fs: Ext4Fs, inode: InodeInfo): boolean {
  const at = EXT4_GOOD_OLD_INODE_SIZE + inode.raw.i_extra_isize;
  if (at + 4 > fs.inodeSize) return false;
  const b = inode.bytes;
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0 === 0xea020000;
}

/**
 * FS_IOC_FSSETXATTR's project part (chattr -p, chattr +/-P): set the inode's project id,
 * moving its usage to the new project's dquot, and optionally set or clear
 * EXT4_PROJINHERIT_FL (directories only). Returns whether the inode changed (the caller
 * writes it back and sets ctime). Errors as ext4_fileattr_set / ext4_ioctl_setproject:
 * EOPNOTSUPP for PROJINHERIT on a non-directory, for a non-zero id without the project
 * feature, and for 128-byte inodes; EPERM for an immutable or append-only inode whose id
 * would change, and for the quota files; EOVERFLOW when the inode has inline data and no room
 * for i_projid; EDQUOT from the new project's limits (nothing changed).
 * Caller holds the inode's i_rwsem, xattr_sem and i_data_sem (write).
 * Deviations: an inode whose i_extra_isize does not cover i_projid is expanded only when it
 * has no in-inode xattrs (EOPNOTSUPP otherwise: ext4_expand_extra_isize_ea is not
 * implemented); on an error the kernel may keep a flag change made before it, this changes
 * nothing.
 */
export async function setProjectId(fs: Ext4Fs, inode: InodeInfo, projid: number, opts: { inherit?: boolean } = {}): Promise<boolean> {
  if (!Number.isInteger(projid) || projid < 0 || projid > 0xffffffff) throw new FsError("EINVAL", `Invalid project id ${projid}`, { ino: inode.ino });
  const r = inode.raw;
  const isDir = (r.i_mode & S_IFMT) === S_IFDIR;
  // ext4_fileattr_set: ext4_mask_flags drops PROJINHERIT from non-directories: asking for it is EOPNOTSUPP.
  if (opts.inherit === true && !isDir) throw new FsError("EOPNOTSUPP", "Project inheritance applies to directories only", { ino: inode.ino });
  const current = projectIdOf(fs, r);
  // ext4_ioctl_check_immutable: an immutable or append-only inode keeps its project.
  if ((r.i_flags & (EXT4_IMMUTABLE_FL | EXT4_APPEND_FL)) !== 0 && projid !== current) throw new FsError("EPERM", "Operation not permitted", { ino: inode.ino });
  const flags = opts.inherit === undefined ? r.i_flags : opts.inherit ? r.i_flags | EXT4_PROJINHERIT_FL : r.i_flags & ~EXT4_PROJINHERIT_FL;
  // ext4_ioctl_setproject
  let move = false;
  if (!hasProjectFeature(fs)) {
    if (projid !== 0) throw new FsError("EOPNOTSUPP", "The volume has no project feature", { ino: inode.ino });
  } else if (projid !== current) {
    if (fs.inodeSize <= EXT4_GOOD_OLD_INODE_SIZE) throw new FsError("EOPNOTSUPP", "128-byte inodes have no room for a project id", { ino: inode.ino });
    if (isQuotaInode(fs.sb, inode.ino)) throw new FsError("EPERM", "Operation not permitted", { ino: inode.ino });
    if (!fitsInInode(r, fs.inodeSize, "i_projid")) {
      if (r.i_flags & EXT4_INLINE_DATA_FL) throw new FsError("EOVERFLOW", "No room for i_projid in an inode with inline data", { ino: inode.ino });
      if (hasIbodyXattrs(fs, inode)) throw new FsError("EOPNOTSUPP", "Making room for i_projid past in-inode xattrs is not supported yet", { ino: inode.ino });
    }
    move = true;
  }
  let from: InodeDquots | null = null;
  let to: InodeDquots | null = null;
  if (move) {
    from = await inodeDquots(fs, inode);
    if (from !== null) {
      const ids = quotaIdsOf(fs, r);
      to = await quotaSet(fs, from).dquotsFor({ uid: ids.uid, gid: ids.gid, projid });
    }
  }
  // One synchronous section from here.
  assert(projectIdOf(fs, r) === current, () => `Inode ${inode.ino}: project changed while setProjectId loaded quota (i_rwsem not held?)`);
  if (from !== null && to !== null) transferCharges(fs, inode, from, to);
  let changed = flags !== r.i_flags;
  r.i_flags = flags;
  if (move) {
    if (!fitsInInode(r, fs.inodeSize, "i_projid")) {
      // @kernel __ext4_expand_extra_isize without xattrs: zero the new bytes, raise i_extra_isize.
      const want = wantExtraIsize(fs);
      inode.bytes.fill(0, EXT4_GOOD_OLD_INODE_SIZE + r.i_extra_isize, EXT4_GOOD_OLD_INODE_SIZE + want);
      r.i_extra_isize = want;
    }
    r.i_projid = projid;
    changed = true;
  }
  return changed;
}

/** FS_IOC_FSGETXATTR's project part: the id and whether the inode has PROJINHERIT. */
export function projectOf(fs: Ext4Fs, raw: RawInode): { projid: number; inherit: boolean } {
  return { projid: projectIdOf(fs, raw), inherit: (raw.i_flags & EXT4_PROJINHERIT_FL) !== 0 };
}
