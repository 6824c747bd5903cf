/**
 * In-core quota: one Dquot per (type, id) in use, charged and released by the engine in
 * synchronous steps, written back into the hidden quota inodes at flush
 * (@kernel fs/quota/dquot.c: dquot_add_space, dquot_add_inodes, __dquot_alloc_space,
 * dquot_claim_space_nodirty, __dquot_free_space, __dquot_transfer, do_set_dqblk;
 * fs/ext4/super.c ext4_quota_read / ext4_quota_write for the file I/O).
 *
 * Design note.
 * - Loading is async, charging is not. `dquotsFor` reads the ids' records (one lock per
 *   quota file) before the caller enters its atomic step; every charge function is then
 *   synchronous: it checks all the inode's dquots and, only when every one accepts, applies
 *   the change to all of them. A refused charge (EDQUOT) changes nothing, not even a grace
 *   timer (the kernel may leave an earlier type's btime started when a later type refuses;
 *   we do not). Charging an inode whose dquots were never loaded is impossible by
 *   construction: the charge takes the dquots, not the inode.
 * - Limits are always enforced, as if mounted with usrquota,grpquota,prjquota (ext4
 *   without those options only tracks usage).
 * - The caller is unprivileged for quota: the kernel lets CAP_SYS_RESOURCE (which root
 *   normally holds) exceed limits (ignore_hardlimit); the engine does not model
 *   capabilities, so root is limited like anyone (kernel oracles must run the charged
 *   operations as a non-root user to compare).
 * - In core, block limits are bytes rounded up to 1 KiB (the file's unit), usage is bytes.
 * - Ids, and which inode belongs to which id (project id 0 when the inode has no room for
 *   i_projid), are the caller's business; quotaIdsOf gives e2fsprogs' rule.
 * - The quota inodes are S_NOQUOTA: growing them is never charged (pass no dquots).
 * - flush writes dirty dquots and grace times through the engine in the caller's handle;
 *   a record left with no usage and no limits is deleted from the file, as
 *   v2_commit_dquot / qtree_release_dquot do.
 */

import { assert } from "../debug/assert.js";
import { FsError } from "../errors.js";
import { EXT4_FEATURE_RO_COMPAT_QUOTA, hasRoCompat } from "../format/features.js";
import { EXT4_EA_INODE_FL, EXT4_ROOT_INO, fitsInInode, inodeBlocks, inodeGid, inodeUid, type RawInode } from "../format/inode.js";
import {
  GRPQUOTA,
  PRJQUOTA,
  QT_BLKSIZE,
  USRQUOTA,
  bytesToQb,
  qbToBytes,
  quotaInums,
  type DiskDquot,
  type QuotaTypeIndex,
} from "../format/quota.js";
import { firstIno } from "../format/superblock.js";
import type { WriteDeps } from "./file_write.js";
import { mapForWrite } from "./file_write.js";
import type { Handle } from "./handle.js";
import { iget, inodeLocation } from "./inode.js";
import { getSize, igetWritable, markInodeDirty, setSize, type InodeInfo } from "./inode_write.js";
import { dquotIsEmpty, QuotaTree, type QuotaFileIO } from "./quota_tree.js";
import { mapBlocks } from "./read.js";
import type { Ext4Fs } from "./super.js";

export type QuotaType = "usr" | "grp" | "prj";
export const QUOTA_TYPES: readonly QuotaType[] = ["usr", "grp", "prj"];

const TYPE_INDEX: Readonly<Record<QuotaType, QuotaTypeIndex>> = { usr: USRQUOTA, grp: GRPQUOTA, prj: PRJQUOTA };

/** bytes for b*, inodes for i* (0 = none). */
export interface DquotLimits {
  bhardlimit: number;
  bsoftlimit: number;
  ihardlimit: number;
  isoftlimit: number;
}

/** A dquot's values at one moment (Volume.getQuota, quotaReport). Bytes for space, seconds for times. */
export interface DquotInfo {
  readonly type: QuotaType;
  readonly id: number;
  readonly curspace: number;
  readonly rsvspace: number;
  readonly curinodes: number;
  readonly limits: DquotLimits;
  readonly btime: number;
  readonly itime: number;
}

/** One id's usage and limits in memory. @kernel struct dquot / struct mem_dqblk */
export class Dquot {
  readonly type: QuotaType;
  readonly id: number;
  /** Bytes charged (dqb_curspace). */
  curspace = 0;
  /** Bytes reserved by delayed allocation, not yet claimed; never on disk (dqb_rsvspace). */
  rsvspace = 0;
  curinodes = 0;
  limits: DquotLimits = { bhardlimit: 0, bsoftlimit: 0, ihardlimit: 0, isoftlimit: 0 };
  /** When the block soft limit turns hard (seconds; 0: not over it). */
  btime = 0;
  itime = 0;
  /** Changed since the last flush. */
  dirty = false;
  /** Byte offset of the record in the file (the kernel's dq_off); 0 when it has none. */
  off = 0;

  constructor(type: QuotaType, id: number) {
    this.type = type;
    this.id = id;
  }

  /** A copy of the current values, for callers outside the engine. */
  snapshot(): DquotInfo {
    return { type: this.type, id: this.id, curspace: this.curspace, rsvspace: this.rsvspace, curinodes: this.curinodes, limits: { ...this.limits }, btime: this.btime, itime: this.itime };
  }

  /** The record flush writes (limits in the file's 1 KiB units). @kernel v2r1_mem2diskdqblk */
  toDisk(): DiskDquot {
    return {
      id: this.id,
      ihardlimit: this.limits.ihardlimit,
      isoftlimit: this.limits.isoftlimit,
      curinodes: this.curinodes,
      bhardlimit: bytesToQb(this.limits.bhardlimit),
      bsoftlimit: bytesToQb(this.limits.bsoftlimit),
      curspace: this.curspace,
      btime: this.btime,
      itime: this.itime,
    };
  }

  /** @kernel v2r1_disk2memdqblk */
  static fromDisk(type: QuotaType, r: DiskDquot, off: number): Dquot {
    const d = new Dquot(type, r.id);
    d.curspace = r.curspace;
    d.curinodes = r.curinodes;
    d.limits = { bhardlimit: qbToBytes(r.bhardlimit), bsoftlimit: qbToBytes(r.bsoftlimit), ihardlimit: r.ihardlimit, isoftlimit: r.isoftlimit };
    d.btime = r.btime;
    d.itime = r.itime;
    d.off = off;
    return d;
  }
}

/** What an inode is charged to: its dquots, loaded before any synchronous charge section. */
export type InodeDquots = readonly Dquot[];

const volumeQuotas = new WeakMap<Ext4Fs, QuotaSet>();

/** The quota state QuotaSet.load attached to `fs` (null: the volume has no quota loaded). */
export function quotaSetOf(fs: Ext4Fs): QuotaSet | null {
  return volumeQuotas.get(fs) ?? null;
}

/** The ids an inode is charged to, by e2fsprogs' rule: project 0 when i_extra_isize does not cover i_projid. @kernel get_qid (lib/support/mkquota.c) */
export function quotaIdsOf(fs: Ext4Fs, raw: RawInode): { uid: number; gid: number; projid: number } {
  return { uid: inodeUid(raw), gid: inodeGid(raw), projid: fitsInInode(raw, fs.inodeSize, "i_projid") ? raw.i_projid : 0 };
}

/** Grace periods of one type (seconds). */
export interface QuotaGrace {
  bgrace: number;
  igrace: number;
}

/** Serializes the operations on one quota file (the kernel's dqio_sem). */
class FileLock {
  #tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.#tail;
    let release!: () => void; // assigned synchronously by the Promise constructor
    this.#tail = new Promise<void>((r) => {
      release = r;
    });
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

interface TypeState {
  readonly type: QuotaType;
  readonly ino: number;
  readonly dquots: Map<number, Dquot>;
  /** Loads in flight, so two callers asking for one id share one Dquot. */
  readonly loading: Map<number, Promise<Dquot>>;
  grace: QuotaGrace;
  graceDirty: boolean;
  readonly lock: FileLock;
}

type SpaceVerdict = "ok" | "startGrace" | "hard" | "softlong";

/** @kernel dquot_add_space (the checks; DQUOT_SPACE_WARN set, as ext4 always passes it) */
function spaceVerdict(d: Dquot, bytes: number, now: number): SpaceVerdict {
  const t = d.curspace + d.rsvspace + bytes;
  const { bhardlimit: hard, bsoftlimit: soft } = d.limits;
  if (hard !== 0 && t > hard) return "hard";
  if (soft !== 0 && t > soft && d.btime !== 0 && now >= d.btime) return "softlong";
  if (soft !== 0 && t > soft && d.btime === 0) return "startGrace";
  return "ok";
}

/** @kernel dquot_add_inodes (the checks) */
function inodeVerdict(d: Dquot, n: number, now: number): SpaceVerdict {
  const t = d.curinodes + n;
  const { ihardlimit: hard, isoftlimit: soft } = d.limits;
  if (hard !== 0 && t > hard) return "hard";
  if (soft !== 0 && t > soft && d.itime !== 0 && now >= d.itime) return "softlong";
  if (soft !== 0 && t > soft && d.itime === 0) return "startGrace";
  return "ok";
}

function edquot(d: Dquot, what: string): FsError {
  return new FsError("EDQUOT", `Disk quota exceeded: ${d.type} quota of id ${d.id}, ${what}`);
}

/** @kernel dquot_decr_space */
function decrSpace(d: Dquot, bytes: number): void {
  d.curspace = d.curspace >= bytes ? d.curspace - bytes : 0;
  if (d.curspace + d.rsvspace <= d.limits.bsoftlimit) d.btime = 0;
  d.dirty = true;
}

/** @kernel dquot_free_reserved_space */
function freeReserved(d: Dquot, bytes: number): void {
  assert(d.rsvspace >= bytes, () => `Releasing ${bytes} reserved bytes of ${d.type} id ${d.id}, which has ${d.rsvspace}`);
  d.rsvspace -= bytes;
  if (d.curspace + d.rsvspace <= d.limits.bsoftlimit) d.btime = 0;
  d.dirty = true;
}

/** @kernel dquot_decr_inodes */
function decrInodes(d: Dquot, n: number): void {
  d.curinodes = d.curinodes >= n ? d.curinodes - n : 0;
  if (d.curinodes <= d.limits.isoftlimit) d.itime = 0;
  d.dirty = true;
}

function checkBytes(bytes: number): void {
  assert(Number.isSafeInteger(bytes) && bytes >= 0, () => `Invalid quota charge of ${bytes} bytes`);
}

export interface QuotaSetOptions {
  /** Allocators and extent writer used to grow the quota files at flush. */
  deps?: WriteDeps;
  /** Clock for grace times, in seconds (tests); the system clock by default. */
  now?: () => number;
}

export class QuotaSet {
  readonly fs: Ext4Fs;
  readonly #types: Map<QuotaType, TypeState>;
  #deps: WriteDeps | undefined;
  readonly #now: () => number;

  private constructor(fs: Ext4Fs, types: Map<QuotaType, TypeState>, opts: QuotaSetOptions) {
    this.fs = fs;
    this.#types = types;
    this.#deps = opts.deps;
    this.#now = opts.now ?? ((): number => Math.floor(Date.now() / 1000));
  }

  /**
   * The volume's quota state, or null without the `quota` feature. Reads the grace times of
   * every type whose quota inode the superblock names; records are read on demand.
   * Throws EFSCORRUPTED for a quota file that is not a v2r1 file of its type.
   * @kernel ext4_enable_quotas -> dquot_load_quota_inode -> v2_read_file_info
   */
  static async load(fs: Ext4Fs, opts: QuotaSetOptions = {}): Promise<QuotaSet | null> {
    if (!hasRoCompat(fs.sb, EXT4_FEATURE_RO_COMPAT_QUOTA)) return null;
    const types = new Map<QuotaType, TypeState>();
    const inums = quotaInums(fs.sb);
    for (const type of QUOTA_TYPES) {
      const ino = inums[TYPE_INDEX[type]];
      if (ino === 0) continue;
      const tree = await QuotaTree.open(await readIO(fs, ino), TYPE_INDEX[type]).catch((e: unknown) => {
        throw e instanceof FsError ? new FsError(e.code, `Quota inode ${ino} (${type}): ${e.message.replace(/^[A-Z]+: /, "")}`, { ino }) : e;
      });
      types.set(type, {
        type,
        ino,
        dquots: new Map(),
        loading: new Map(),
        grace: { bgrace: tree.info.dqi_bgrace, igrace: tree.info.dqi_igrace },
        graceDirty: false,
        lock: new FileLock(),
      });
    }
    const set = new QuotaSet(fs, types, opts);
    volumeQuotas.set(fs, set); // the engine's charge sites find it here (quotaSetOf)
    return set;
  }

  /** Set the allocators used to grow the files (when load had none). */
  setDeps(deps: WriteDeps): void {
    this.#deps = deps;
  }

  /** The types this volume tracks, in kernel order. */
  types(): QuotaType[] {
    return QUOTA_TYPES.filter((t) => this.#types.has(t));
  }

  /** The quota inode of a type (0 when the type is off). */
  inodeOf(type: QuotaType): number {
    return this.#types.get(type)?.ino ?? 0;
  }

  grace(type: QuotaType): QuotaGrace {
    return { ...this.#state(type).grace };
  }

  #state(type: QuotaType): TypeState {
    const s = this.#types.get(type);
    if (s === undefined) throw new FsError("EOPNOTSUPP", `The volume has no ${type} quota`);
    return s;
  }

  /**
   * The dquot of (type, id), read from the file on first use (an id the file lacks gets an
   * empty one). @kernel dqget + dquot_acquire
   */
  async dquot(type: QuotaType, id: number): Promise<Dquot> {
    const s = this.#types.get(type);
    if (s === undefined) throw new FsError("EOPNOTSUPP", `The volume has no ${type} quota`);
    assert(Number.isInteger(id) && id >= 0 && id <= 0xffffffff, () => `Invalid quota id ${id}`);
    const have = s.dquots.get(id);
    if (have !== undefined) return have;
    let p = s.loading.get(id);
    if (p === undefined) {
      const load = s.lock.run(async () => {
        const tree = await QuotaTree.open(await readIO(this.fs, s.ino), TYPE_INDEX[type]);
        const found = await tree.find(id);
        return found === null ? new Dquot(type, id) : Dquot.fromDisk(type, found.rec, found.off);
      });
      p = load.then(
        (d) => {
          s.loading.delete(id);
          const kept = s.dquots.get(id) ?? d; // report() may have read it meanwhile: one Dquot per id
          s.dquots.set(id, kept);
          return kept;
        },
        (e: unknown) => {
          s.loading.delete(id);
          throw e;
        },
      );
      s.loading.set(id, p);
    }
    return p;
  }

  /** The dquots an inode with these ids is charged to, one per enabled type, in type order. @kernel dquot_initialize */
  async dquotsFor(ids: { uid: number; gid: number; projid: number }): Promise<InodeDquots> {
    const out: Dquot[] = [];
    for (const type of this.types()) out.push(await this.dquot(type, type === "usr" ? ids.uid : type === "grp" ? ids.gid : ids.projid));
    return out;
  }

  // ----- charges: synchronous, all-or-nothing -----

  /**
   * Bytes `dq` can still be charged in "enforce" mode (Infinity without a limit): the room
   * below the hard limit, and none above an expired soft limit. Synchronous; what the
   * allocator uses to shrink a request to the room left, as ext4_mb_new_blocks's
   * dquot_alloc_block loop does. @kernel dquot_add_space (the checks)
   */
  roomFor(dq: InodeDquots): number {
    const now = this.#now();
    let room = Infinity;
    for (const d of dq) {
      const used = d.curspace + d.rsvspace;
      const { bhardlimit: hard, bsoftlimit: soft } = d.limits;
      if (hard !== 0) room = Math.min(room, hard - used);
      if (soft !== 0 && d.btime !== 0 && now >= d.btime) room = Math.min(room, soft - used);
    }
    return Math.max(0, room);
  }

  /** Throw the EDQUOT an "enforce" charge of `bytes` would throw; change nothing. */
  checkSpace(dq: InodeDquots, bytes: number): void {
    checkBytes(bytes);
    if (bytes === 0) return;
    const now = this.#now();
    for (const d of dq) {
      const v = spaceVerdict(d, bytes, now);
      if (v === "hard" || v === "softlong") throw edquot(d, v === "hard" ? "block hard limit reached" : "block grace period expired");
    }
  }

  /** Check every dquot, then apply to all; EDQUOT (nothing changed) when one refuses. */
  #addSpace(dq: InodeDquots, space: number, rsv: number, mode: "enforce" | "nofail"): void {
    checkBytes(space);
    checkBytes(rsv);
    if (space + rsv === 0) return; // ext4 never charges 0; the kernel would re-check limits
    const now = this.#now();
    const verdicts = dq.map((d) => spaceVerdict(d, space + rsv, now));
    if (mode === "enforce") {
      const i = verdicts.findIndex((v) => v === "hard" || v === "softlong");
      if (i >= 0) {
        const d = dq[i]!; // i from findIndex
        throw edquot(d, verdicts[i] === "hard" ? "block hard limit reached" : "block grace period expired");
      }
    }
    dq.forEach((d, i) => {
      if (verdicts[i] === "startGrace") d.btime = now + this.#state(d.type).grace.bgrace;
      d.curspace += space;
      d.rsvspace += rsv;
      d.dirty = true;
    });
  }

  /** Reserve space for delayed allocation: checks curspace + rsvspace + bytes. @kernel dquot_reserve_space */
  reserveSpace(dq: InodeDquots, bytes: number): void {
    this.#addSpace(dq, 0, bytes, "enforce");
  }

  /** Turn a reservation into usage (writeback allocated the blocks). @kernel dquot_claim_space_nodirty */
  claimSpace(dq: InodeDquots, bytes: number): void {
    checkBytes(bytes);
    for (const d of dq) assert(d.rsvspace >= bytes, () => `Claiming ${bytes} bytes of ${d.type} id ${d.id}, which has ${d.rsvspace} reserved`);
    for (const d of dq) {
      d.rsvspace -= bytes;
      d.curspace += bytes;
      d.dirty = true;
    }
  }

  /** Give back a reservation never allocated (truncate, punch of delayed ranges). @kernel dquot_release_reservation_space */
  releaseReservation(dq: InodeDquots, bytes: number): void {
    checkBytes(bytes);
    for (const d of dq) assert(d.rsvspace >= bytes, () => `Releasing ${bytes} reserved bytes of ${d.type} id ${d.id}, which has ${d.rsvspace}`);
    for (const d of dq) freeReserved(d, bytes);
  }

  /** Charge allocated space: "enforce" checks limits (EDQUOT), "nofail" never refuses. @kernel dquot_alloc_space / dquot_alloc_space_nofail */
  allocSpace(dq: InodeDquots, bytes: number, mode: "enforce" | "nofail"): void {
    this.#addSpace(dq, bytes, 0, mode);
  }

  /** @kernel dquot_free_space */
  freeSpace(dq: InodeDquots, bytes: number): void {
    checkBytes(bytes);
    if (bytes === 0) return;
    for (const d of dq) decrSpace(d, bytes);
  }

  /** One more inode: EDQUOT at the hard limit or when the soft limit's grace has run out. @kernel dquot_alloc_inode */
  allocInode(dq: InodeDquots): void {
    const now = this.#now();
    const verdicts = dq.map((d) => inodeVerdict(d, 1, now));
    const i = verdicts.findIndex((v) => v === "hard" || v === "softlong");
    if (i >= 0) {
      const d = dq[i]!; // i from findIndex
      throw edquot(d, verdicts[i] === "hard" ? "inode hard limit reached" : "inode grace period expired");
    }
    dq.forEach((d, j) => {
      if (verdicts[j] === "startGrace") d.itime = now + this.#state(d.type).grace.igrace;
      d.curinodes += 1;
      d.dirty = true;
    });
  }

  /** @kernel dquot_free_inode */
  freeInode(dq: InodeDquots): void {
    for (const d of dq) decrInodes(d, 1);
  }

  /**
   * chown/chgrp/project change: move one inode, `space` charged bytes and `rsv` reserved
   * bytes from each of `from` to the dquot of the same type in `to` (types absent from `to`,
   * or with the same dquot, stay). The new dquots' limits are checked first (EDQUOT,
   * nothing changed). @kernel __dquot_transfer
   */
  transfer(from: InodeDquots, to: InodeDquots, space: number, rsv: number): void {
    checkBytes(space);
    checkBytes(rsv);
    const now = this.#now();
    const moves: { src: Dquot | undefined; dst: Dquot; iv: SpaceVerdict; sv: SpaceVerdict }[] = [];
    for (const dst of to) {
      const src = from.find((d) => d.type === dst.type);
      if (src === dst) continue;
      const iv = inodeVerdict(dst, 1, now);
      if (iv === "hard" || iv === "softlong") throw edquot(dst, iv === "hard" ? "inode hard limit reached" : "inode grace period expired");
      const sv = spaceVerdict(dst, space + rsv, now);
      if (sv === "hard" || sv === "softlong") throw edquot(dst, sv === "hard" ? "block hard limit reached" : "block grace period expired");
      moves.push({ src, dst, iv, sv });
    }
    for (const { src, dst, iv, sv } of moves) {
      if (iv === "startGrace") dst.itime = now + this.#state(dst.type).grace.igrace;
      if (sv === "startGrace") dst.btime = now + this.#state(dst.type).grace.bgrace;
      dst.curinodes += 1;
      dst.curspace += space;
      dst.rsvspace += rsv;
      dst.dirty = true;
      if (src !== undefined) {
        decrInodes(src, 1);
        decrSpace(src, space);
        if (rsv > 0) freeReserved(src, rsv);
      }
    }
  }

  // ----- administration -----

  /**
   * Set limits of (type, id) (bytes rounded up to the file's 1 KiB unit; inodes) and/or the
   * type's grace periods (bgrace/igrace apply to every id, as setquota -t). Grace timers
   * restart as do_set_dqblk restarts them. ERANGE for limits that are not safe integers.
   * @kernel dquot_set_dqblk / do_set_dqblk, dquot_set_dqinfo
   */
  async setLimits(type: QuotaType, id: number, limits: Partial<DquotLimits> & { bgrace?: number; igrace?: number }): Promise<void> {
    const s = this.#types.get(type);
    if (s === undefined) throw new FsError("EOPNOTSUPP", `The volume has no ${type} quota`);
    for (const [k, v] of Object.entries(limits) as [string, number | undefined][]) {
      if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) throw new FsError("ERANGE", `Quota ${k} of ${String(v)} is out of range`);
    }
    if (limits.bgrace !== undefined || limits.igrace !== undefined) {
      if ((limits.bgrace ?? 0) > 0xffffffff || (limits.igrace ?? 0) > 0xffffffff) throw new FsError("ERANGE", "Grace period out of range");
      s.grace = { bgrace: limits.bgrace ?? s.grace.bgrace, igrace: limits.igrace ?? s.grace.igrace };
      s.graceDirty = true;
    }
    const hasB = limits.bhardlimit !== undefined || limits.bsoftlimit !== undefined;
    const hasI = limits.ihardlimit !== undefined || limits.isoftlimit !== undefined;
    if (!hasB && !hasI) return;
    const d = await this.dquot(type, id);
    const round = (b: number): number => bytesToQb(b) * QT_BLKSIZE;
    const now = this.#now();
    if (limits.bhardlimit !== undefined) d.limits.bhardlimit = round(limits.bhardlimit);
    if (limits.bsoftlimit !== undefined) d.limits.bsoftlimit = round(limits.bsoftlimit);
    if (limits.ihardlimit !== undefined) d.limits.ihardlimit = limits.ihardlimit;
    if (limits.isoftlimit !== undefined) d.limits.isoftlimit = limits.isoftlimit;
    if (hasB) {
      if (d.limits.bsoftlimit === 0 || d.curspace + d.rsvspace <= d.limits.bsoftlimit) d.btime = 0;
      else d.btime = now + s.grace.bgrace;
    }
    if (hasI) {
      if (d.limits.isoftlimit === 0 || d.curinodes <= d.limits.isoftlimit) d.itime = 0;
      else d.itime = now + s.grace.igrace;
    }
    d.dirty = true;
  }

  /** Every id of a type: those in the file and those only in memory, by id. @kernel quota_getnextquota loop */
  async report(type: QuotaType): Promise<Dquot[]> {
    const s = this.#types.get(type);
    if (s === undefined) throw new FsError("EOPNOTSUPP", `The volume has no ${type} quota`);
    await s.lock.run(async () => {
      const tree = await QuotaTree.open(await readIO(this.fs, s.ino), TYPE_INDEX[type]);
      for await (const { rec, off } of tree.records()) {
        if (!s.dquots.has(rec.id) && !s.loading.has(rec.id)) s.dquots.set(rec.id, Dquot.fromDisk(type, rec, off));
      }
    });
    return [...s.dquots.values()].sort((a, b) => a.id - b.id);
  }

  /**
   * Replace every id's usage with `usage` (ids absent from it get none), keeping limits:
   * for tools that recompute usage from the inodes (mkfs -d before the engine charges).
   */
  async replaceUsage(type: QuotaType, usage: ReadonlyMap<number, { space: number; inodes: number }>): Promise<void> {
    const all = await this.report(type);
    for (const d of all) {
      const u = usage.get(d.id);
      if (d.curspace !== (u?.space ?? 0) || d.curinodes !== (u?.inodes ?? 0)) d.dirty = true;
      d.curspace = u?.space ?? 0;
      d.curinodes = u?.inodes ?? 0;
    }
    for (const [id, u] of usage) {
      const d = await this.dquot(type, id);
      if (d.curspace !== u.space || d.curinodes !== u.inodes) d.dirty = true;
      d.curspace = u.space;
      d.curinodes = u.inodes;
    }
  }

  /** Are there changes flush would write? */
  isDirty(): boolean {
    for (const s of this.#types.values()) {
      if (s.graceDirty) return true;
      for (const d of s.dquots.values()) if (d.dirty) return true;
    }
    return false;
  }

  /**
   * Write every dirty dquot and changed grace times into the quota files, in handle `h`.
   * Records with no usage and no limits are deleted. Growing a file allocates blocks
   * (never charged to quota) and updates its i_size and i_blocks. A dquot charged while the
   * flush runs stays dirty for the next one.
   * @kernel dquot_commit -> qtree_write_dquot / qtree_release_dquot, ext4_quota_write
   */
  async flush(h: Handle): Promise<void> {
    for (const s of this.#types.values()) {
      const dirty = [...s.dquots.values()].filter((d) => d.dirty).sort((a, b) => a.id - b.id);
      if (dirty.length === 0 && !s.graceDirty) continue;
      // Snapshot synchronously: later charges mark the dquot dirty again.
      const recs = dirty.map((d) => {
        d.dirty = false;
        return { d, rec: d.toDisk() };
      });
      const writeGrace = s.graceDirty;
      s.graceDirty = false;
      try {
        await s.lock.run(async () => {
          const io = await HandleQuotaIO.open(h, this.#deps, s.ino);
          const tree = await QuotaTree.open(io, TYPE_INDEX[s.type]);
          for (const { d, rec } of recs) {
            if (dquotIsEmpty(rec)) {
              if (await tree.remove(rec.id, d.off)) d.off = 0;
            } else {
              d.off = await tree.put(rec, d.off);
            }
          }
          if (writeGrace) {
            tree.info.dqi_bgrace = s.grace.bgrace;
            tree.info.dqi_igrace = s.grace.igrace;
            tree.infoDirty = true;
          }
          if (tree.infoDirty) await tree.writeInfo();
          await io.finish();
        });
      } catch (e) {
        for (const { d } of recs) d.dirty = true;
        if (writeGrace) s.graceDirty = true;
        throw e;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// The quota files through the engine

/** Where quota block `n` lies: file logical block and byte offset in it. */
function place(fs: Ext4Fs, n: number): { lblk: number; off: number } {
  const byte = n * QT_BLKSIZE;
  return { lblk: Math.floor(byte / fs.blockSize), off: byte % fs.blockSize };
}

/**
 * Read-only access to a quota inode's blocks through the buffer cache (as ext4_quota_read
 * uses ext4_bread). Holes and the part past i_size read as zeros.
 */
async function readIO(fs: Ext4Fs, ino: number): Promise<QuotaFileIO> {
  const inode = await iget(fs, ino);
  const blocks = Math.ceil(inode.size / QT_BLKSIZE);
  return {
    async readBlock(n) {
      const out = new Uint8Array(QT_BLKSIZE);
      if (n >= blocks) return out;
      const { lblk, off } = place(fs, n);
      const run = await mapBlocks(fs, inode, lblk, 1);
      if (run.pblk === 0 || run.unwritten) return out;
      out.set((await fs.cache.get(run.pblk)).subarray(off, off + QT_BLKSIZE));
      return out;
    },
    writeBlock() {
      return Promise.reject(new FsError("EROFS", "Quota file opened read-only"));
    },
    blockCount: () => blocks,
  };
}

/**
 * Read-write access to a quota inode in handle `h`: blocks are changed through the handle
 * (journaled as metadata, like ext4_quota_write), holes and the end are allocated with
 * mapForWrite (never charged to quota: the quota inode is S_NOQUOTA), i_size grows to the
 * end of the last block written. `finish` writes the inode back when it changed.
 */
class HandleQuotaIO implements QuotaFileIO {
  readonly #h: Handle;
  readonly #deps: WriteDeps | undefined;
  readonly #inode: InodeInfo;
  #changed = false;

  private constructor(h: Handle, deps: WriteDeps | undefined, inode: InodeInfo) {
    this.#h = h;
    this.#deps = deps;
    this.#inode = inode;
  }

  static async open(h: Handle, deps: WriteDeps | undefined, ino: number): Promise<HandleQuotaIO> {
    return new HandleQuotaIO(h, deps, await igetWritable(h.fs, ino));
  }

  blockCount(): number {
    return Math.ceil(getSize(this.#h.fs, this.#inode) / QT_BLKSIZE);
  }

  async readBlock(n: number): Promise<Uint8Array> {
    const fs = this.#h.fs;
    const out = new Uint8Array(QT_BLKSIZE);
    if (n >= this.blockCount()) return out;
    const { lblk, off } = place(fs, n);
    const run = await mapBlocks(fs, this.#inode, lblk, 1);
    if (run.pblk === 0 || run.unwritten) return out;
    out.set((await fs.cache.get(run.pblk)).subarray(off, off + QT_BLKSIZE));
    return out;
  }

  async writeBlock(n: number, data: Uint8Array): Promise<void> {
    const fs = this.#h.fs;
    const { lblk, off } = place(fs, n);
    let run = await mapBlocks(fs, this.#inode, lblk, 1);
    let fresh = false;
    if (run.pblk === 0 || run.unwritten) {
      if (this.#deps === undefined) throw new FsError("EROFS", "Quota file cannot grow: no block allocator attached", { ino: this.#inode.ino });
      const [r] = await mapForWrite(this.#h, this.#deps, this.#inode, lblk, 1);
      assert(r !== undefined && r.lblk === lblk, "mapForWrite maps the block asked for");
      run = { lblk, pblk: r.pblk, len: 1, unwritten: false };
      fresh = r.fresh;
      this.#changed = true;
    }
    const buf = fresh ? await this.#h.getCreateAccess(run.pblk) : await this.#h.getWriteAccess(run.pblk);
    buf.set(data.subarray(0, QT_BLKSIZE), off);
    this.#h.dirtyMetadata(run.pblk);
    const end = (n + 1) * QT_BLKSIZE;
    if (end > getSize(fs, this.#inode)) {
      setSize(this.#inode, end);
      this.#changed = true;
    }
  }

  /** Write the inode back when blocks or size changed. */
  async finish(): Promise<void> {
    if (this.#changed) await markInodeDirty(this.#h, this.#inode);
    this.#changed = false;
  }
}

// ---------------------------------------------------------------------------------------
// Usage from the inodes

/** Per type, id -> usage. */
export type QuotaUsage = Map<QuotaType, Map<number, { space: number; inodes: number }>>;

/**
 * Usage as e2fsck counts it, from every in-use inode: the root and inodes from s_first_ino
 * on, except the project quota inode, the orphan file and EA inodes; space = i_blocks x 512
 * bytes, one inode each. @kernel e2fsprogs quota_compute_usage (lib/support/mkquota.c)
 */
export async function computeQuotaUsage(fs: Ext4Fs, types: readonly QuotaType[] = QUOTA_TYPES): Promise<QuotaUsage> {
  const out: QuotaUsage = new Map(types.map((t) => [t, new Map<number, { space: number; inodes: number }>()]));
  const first = firstIno(fs.sb);
  for (let ino = 1; ino <= fs.inodesCount; ino++) {
    if (ino !== EXT4_ROOT_INO && ino < first) continue;
    if (ino === fs.sb.s_prj_quota_inum || ino === fs.sb.s_orphan_file_inum) continue;
    const g = Math.floor((ino - 1) / fs.inodesPerGroup);
    const gd = fs.group(g);
    if (gd.bg_flags & 0x1 /* EXT4_BG_INODE_UNINIT */) {
      ino = (g + 1) * fs.inodesPerGroup; // the loop's ++ lands on the next group's first inode
      continue;
    }
    const loc = inodeLocation(fs, ino);
    const blk = await fs.cache.get(loc.block);
    const linksCount = blk[loc.offset + 0x1a]! | (blk[loc.offset + 0x1b]! << 8);
    if (linksCount === 0) continue;
    const inode = await iget(fs, ino);
    if (inode.flags & EXT4_EA_INODE_FL) continue;
    const ids = quotaIdsOf(fs, inode.raw);
    const space = inodeBlocks(inode.raw, fs.features.hugeFile, fs.blockSize) * 512;
    for (const t of types) {
      const id = t === "usr" ? ids.uid : t === "grp" ? ids.gid : ids.projid;
      const m = out.get(t)!; // every type was put in the map above
      const u = m.get(id) ?? { space: 0, inodes: 0 };
      u.space += space;
      u.inodes += 1;
      m.set(id, u);
    }
  }
  return out;
}
