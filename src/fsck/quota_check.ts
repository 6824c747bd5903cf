/**
 * Quota usage, counted as e2fsck counts it and compared with the quota files at the end.
 *
 * Pass 1 adds each inode's space (the clusters it was found to own, its xattr block included,
 * times the cluster size) and one inode to the ids it belongs to, for every quota type whose
 * superblock names a quota inode; reserved inodes other than the root, the project quota
 * inode and EA inodes are left out. After pass 5 each type's file is read (its v2 tree) and
 * compared id by id: a record whose usage differs, an id with usage and no record, or a file
 * that cannot be read makes the type inconsistent, which is e2fsck's "Update quota info for
 * quota type N" (PR_6_UPDATE_QUOTAS). e2fsck names the differences on stderr:
 *   [QUOTA WARNING] Usage inconsistent for ID 1000:actual (40960, 3) != expected (20480, 2)
 *   [QUOTA WARNING] Missing quota entry ID 5
 * (actual = counted here, expected = the file's). Limits and grace times are not checked.
 * @e2fsprogs e2fsck/pass1.c check_blocks (quota_data_add, quota_data_inodes),
 * lib/support/mkquota.c quota_compare_and_update, scan_dquots_callback
 */

import { FsError } from "../errors.js";
import { EXT4_EA_INODE_FL, EXT4_ROOT_INO, fitsInInode, inodeGid, inodeUid, type RawInode } from "../format/inode.js";
import { QT_BLKSIZE, type DiskDquot, type QuotaTypeIndex } from "../format/quota.js";
import { buildQuotaFile, QuotaTree, type QuotaFileIO } from "../fs/quota_tree.js";
import { mapLogical } from "./blockmap.js";
import type { FsckVolume } from "./volume.js";
import type { FsckWriter } from "./writer.js";

interface Usage {
  space: number;
  inodes: number;
}

const QUOTA_TYPE_INDEXES: readonly QuotaTypeIndex[] = [0, 1, 2];

/** The quota inode the superblock names for each type (0: none). */
export function quotaInodes(v: FsckVolume): [number, number, number] {
  return [v.sb.s_usr_quota_inum, v.sb.s_grp_quota_inum, v.sb.s_prj_quota_inum];
}

/** One quota file, read through the checker's volume: 1 KiB quota blocks inside filesystem blocks; holes read as zeros. */
class InodeQuotaFile implements QuotaFileIO {
  readonly #v: FsckVolume;
  readonly #raw: RawInode;
  readonly #size: number;

  constructor(v: FsckVolume, raw: RawInode) {
    this.#v = v;
    this.#raw = raw;
    this.#size = raw.i_size_lo + raw.i_size_high * 2 ** 32;
  }

  blockCount(): number {
    return Math.ceil(this.#size / QT_BLKSIZE);
  }

  async readBlock(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(QT_BLKSIZE);
    const byte = n * QT_BLKSIZE;
    if (byte >= this.#size) return out;
    const bs = this.#v.blockSize;
    const pblk = await mapLogical(this.#v, this.#raw, Math.floor(byte / bs));
    if (pblk === 0 || pblk >= this.#v.blocksCount) return out;
    const at = byte % bs;
    out.set((await this.#v.readBlock(pblk)).subarray(at, at + QT_BLKSIZE));
    return out;
  }

  writeBlock(): Promise<void> {
    return Promise.reject(new FsError("EROFS", "The checker does not write quota files"));
  }
}

export class QuotaUsage {
  /** Per type: id -> usage, or null for a type the volume does not track. */
  readonly #types: (Map<number, Usage> | null)[];
  readonly #v: FsckVolume;

  constructor(v: FsckVolume) {
    this.#v = v;
    const inums = quotaInodes(v);
    this.#types = QUOTA_TYPE_INDEXES.map((t) => (v.f.quota && inums[t] !== 0 ? new Map<number, Usage>() : null));
  }

  /** Type `t` is no longer tracked: a repair cleared its quota inode number. */
  untrack(t: QuotaTypeIndex): void {
    this.#types[t] = null;
  }

  /** The user, group and project an inode is charged to. */
  #ids(raw: RawInode): number[] {
    return [inodeUid(raw), inodeGid(raw), fitsInInode(raw, this.#v.inodeSize, "i_projid") ? raw.i_projid : 0];
  }

  /** Pass 1, after an inode's blocks were walked: `clusters` it owns (xattr block included). */
  add(ino: number, raw: RawInode, clusters: number): void {
    if ((raw.i_flags & EXT4_EA_INODE_FL) !== 0) return;
    const ids = this.#ids(raw);
    this.charge(ino, ids[0]!, ids[1]!, ids[2]!, clusters);
  }

  /** `add` with the owner's ids already read (pass 1's fast path; never an EA inode). */
  charge(ino: number, uid: number, gid: number, projid: number, clusters: number): void {
    const v = this.#v;
    if (ino === v.sb.s_prj_quota_inum || (ino !== EXT4_ROOT_INO && ino < v.firstIno)) return;
    const space = clusters * v.clusterRatio * v.blockSize;
    const types = this.#types;
    for (let t = 0; t < types.length; t++) {
      const m = types[t];
      if (m === null || m === undefined) continue;
      const id = t === 0 ? uid : t === 1 ? gid : projid;
      const u = m.get(id);
      if (u === undefined) m.set(id, { space, inodes: 1 });
      else {
        u.space += space;
        u.inodes += 1;
      }
    }
  }

  /** Space a repair added to an inode (a directory grown by a block). @e2fsprogs quota_data_add */
  addSpace(raw: RawInode, bytes: number): void {
    const ids = this.#ids(raw);
    this.#types.forEach((m, t) => {
      if (m === null) return;
      const u = m.get(ids[t]!);
      if (u === undefined) m.set(ids[t]!, { space: bytes, inodes: 0 });
      else u.space += bytes;
    });
  }

  /** An inode the repairs cleared gives back what `add` counted for it (e2fsck's quota_data_inodes -1). */
  remove(ino: number, raw: RawInode, clusters: number): void {
    const v = this.#v;
    if (ino === v.sb.s_prj_quota_inum || (ino !== EXT4_ROOT_INO && ino < v.firstIno) || (raw.i_flags & EXT4_EA_INODE_FL) !== 0) return;
    const ids = this.#ids(raw);
    const space = clusters * v.clusterRatio * v.blockSize;
    this.#types.forEach((m, t) => {
      const u = m?.get(ids[t]!);
      if (u === undefined) return;
      u.space -= space;
      u.inodes -= 1;
    });
  }

  /**
   * Compare each tracked type with its file; returns the inconsistent types (in order) and
   * calls `warn` with e2fsck's stderr lines. `invalid` types (a quota inode number that cannot
   * name a file) are inconsistent without reading.
   */
  async compare(readInode: (ino: number) => Promise<RawInode | null>, invalid: readonly number[], warn: (line: string) => void): Promise<QuotaTypeIndex[]> {
    const out: QuotaTypeIndex[] = [];
    const inums = quotaInodes(this.#v);
    for (const t of QUOTA_TYPE_INDEXES) {
      const counted = this.#types[t];
      if (counted === null || counted === undefined) continue;
      if (invalid.includes(t)) {
        out.push(t);
        continue;
      }
      if (!(await this.#matches(t, inums[t], counted, readInode, warn))) out.push(t);
    }
    return out;
  }

  /**
   * Rewrite type `t`'s quota file from the usage counted, keeping each id's limits, grace
   * times and the file's grace periods (e2fsck's quota_write_inode after
   * quota_compare_and_update read the old limits). The new file is written into the blocks
   * the quota inode already maps. Returns the write to make, or null when it would need more
   * blocks (allocating for the file is not implemented) or the inode cannot be read.
   */
  async planRewrite(t: QuotaTypeIndex, readInode: (ino: number) => Promise<RawInode | null>, now: number): Promise<((w: FsckWriter) => Promise<void>) | null> {
    const v = this.#v;
    const counted = this.#types[t];
    const ino = quotaInodes(v)[t];
    if (counted === null || counted === undefined || ino === 0) return null;
    const raw = await readInode(ino);
    if (raw === null) return null;
    const old = new Map<number, DiskDquot>();
    let grace: { bgrace: number; igrace: number } | undefined;
    try {
      const tree = await QuotaTree.open(new InodeQuotaFile(v, raw), t);
      grace = { bgrace: tree.info.dqi_bgrace, igrace: tree.info.dqi_igrace };
      for await (const { rec } of tree.records()) old.set(rec.id, rec);
    } catch (e) {
      if (!(e instanceof FsError)) throw e;
    }
    const ids = new Set<number>([...counted.keys(), ...old.keys()]);
    const records: DiskDquot[] = [];
    for (const id of ids) {
      const u = counted.get(id) ?? { space: 0, inodes: 0 };
      const o = old.get(id);
      records.push({
        id, curspace: u.space, curinodes: u.inodes,
        bhardlimit: o?.bhardlimit ?? 0, bsoftlimit: o?.bsoftlimit ?? 0, ihardlimit: o?.ihardlimit ?? 0, isoftlimit: o?.isoftlimit ?? 0,
        btime: o?.btime ?? 0, itime: o?.itime ?? 0,
      });
    }
    const bytes = await buildQuotaFile(t, records, { ...(grace ?? {}), now });
    const bs = v.blockSize;
    const oldSize = raw.i_size_lo + raw.i_size_high * 2 ** 32;
    const size = Math.max(oldSize, bytes.length);
    const blocks: number[] = [];
    for (let l = 0; l * bs < size; l++) {
      const pblk = await mapLogical(v, raw, l);
      if (pblk === 0 || pblk >= v.blocksCount) return null;
      blocks.push(pblk);
    }
    return async (w) => {
      for (let l = 0; l < blocks.length; l++) {
        const chunk = new Uint8Array(bs);
        chunk.set(bytes.subarray(Math.min(l * bs, bytes.length), Math.min((l + 1) * bs, bytes.length)));
        await w.writeBlock(blocks[l]!, chunk);
      }
      if (size !== oldSize) await w.writeInode(ino, { i_size_lo: size % 2 ** 32, i_size_high: Math.floor(size / 2 ** 32) });
    };
  }

  async #matches(t: QuotaTypeIndex, ino: number, counted: Map<number, Usage>, readInode: (ino: number) => Promise<RawInode | null>, warn: (line: string) => void): Promise<boolean> {
    const raw = await readInode(ino);
    if (raw === null) return false;
    const seen = new Set<number>();
    let ok = true;
    try {
      const tree = await QuotaTree.open(new InodeQuotaFile(this.#v, raw), t);
      for await (const { rec } of tree.records()) {
        seen.add(rec.id);
        const u = counted.get(rec.id) ?? { space: 0, inodes: 0 };
        if (u.space !== rec.curspace || u.inodes !== rec.curinodes) {
          ok = false;
          warn(`[QUOTA WARNING] Usage inconsistent for ID ${rec.id}:actual (${u.space}, ${u.inodes}) != expected (${rec.curspace}, ${rec.curinodes})`);
        }
      }
    } catch (e) {
      if (!(e instanceof FsError)) throw e;
      return false; // e2fsck: the file cannot be opened or scanned
    }
    for (const id of [...counted.keys()].sort((a, b) => a - b)) {
      if (seen.has(id)) continue;
      ok = false;
      warn(`[QUOTA WARNING] Missing quota entry ID ${id | 0}`); // printed with %d
    }
    return ok;
  }
}
