/**
 * The write side of a repairing check (e2fsck -y / -p): every change goes through here, so
 * a -n run, which has no writer, cannot write by mistake.
 *
 * Blocks are changed in the checker's buffer cache (pinned, edited, dirtied) so later
 * passes read what earlier repairs wrote; inode-table scans read around the cache but see
 * its dirty blocks (BufferCache.readUncached). Group descriptors and the superblock are
 * edited in memory (the volume's decoded records) and written once at `close`, with their
 * checksums, as libext2fs's ext2fs_close does for e2fsck:
 *
 * - the superblock's final state (e2fsck unix.c main): VALID when no error is left, the
 *   check time, a zero mount count, the error fields cleared;
 * - ext2fs_set_gdt_csum: INODE_UNINIT and bg_itable_unused from the inode bitmap, the
 *   descriptor checksums;
 * - with EXT2_FLAG_MASTER_SB_ONLY, as e2fsck sets it: the primary superblock, the primary
 *   descriptor table and the meta_bg descriptor blocks (all copies), no backup superblocks.
 */

import { groupDescChecksum, inodeChecksum, inodeChecksumSeed, inodeHasChecksumHi, superblockChecksum } from "../format/checksum.js";
import {
  EXT4_BG_INODE_UNINIT, descriptorLoc, freeInodesCount, groupDesc, groupHasSuperblock, setItableUnused, type GroupDesc,
} from "../format/group_desc.js";
import { EXT4_GOOD_OLD_INODE_SIZE, inodeLimit, inodeStruct, type RawInode } from "../format/inode.js";
import { EXT4_ERROR_FS, EXT4_FEATURE_INCOMPAT_RECOVER, EXT4_VALID_FS, SUPERBLOCK_OFFSET, superblock } from "../format/superblock.js";
import type { FsckVolume } from "./volume.js";

/** Bytes of the superblock's error record, which a completed check clears. @e2fsprogs EXT4_S_ERR_START/END */
const S_ERR_START = 0x194;
const S_ERR_END = 0x200;

export class FsckWriter {
  /** Something was repaired (e2fsck's ext2fs_mark_changed). */
  changed = false;
  readonly #dirtyGroups = new Set<number>();
  /** Groups whose checksum a restart writes as it is held in memory. */
  readonly #staleCsum = new Set<number>();
  /** Backup superblocks and descriptor tables are written too (e2fsck cleared EXT2_FLAG_MASTER_SB_ONLY). */
  #allCopies = false;

  constructor(readonly v: FsckVolume) {}

  /** Edit block `blk` in place through the cache; `asChange` false: not counted as a change to the volume (see writeBlockAside). */
  async updateBlock(blk: number, edit: (data: Uint8Array) => void, asChange = true): Promise<void> {
    const cache = this.v.cache;
    const data = await cache.pin(blk);
    try {
      edit(data);
      cache.markDirty(blk);
    } finally {
      cache.unpin(blk);
    }
    if (asChange) this.changed = true;
  }

  /** Replace block `blk`'s contents; `asChange` as for updateBlock. */
  async writeBlock(blk: number, bytes: Uint8Array, asChange = true): Promise<void> {
    const cache = this.v.cache;
    const data = await cache.pinNew(blk);
    try {
      data.set(bytes.subarray(0, data.length));
      if (bytes.length < data.length) data.fill(0, bytes.length);
      cache.markDirty(blk);
    } finally {
      cache.unpin(blk);
    }
    if (asChange) this.changed = true;
  }

  /**
   * Write a block that belongs to no file or metadata the check repairs (the MMP block): it
   * goes to the device like any other but does not count as a change to the filesystem, as
   * e2fsck writes it outside ext2fs_mark_changed.
   */
  async writeBlockAside(blk: number, bytes: Uint8Array): Promise<void> {
    // Not by saving and restoring `changed` around the await: a change made meanwhile would be lost.
    await this.writeBlock(blk, bytes, false);
  }

  /**
   * Change fields of inode `ino` in its table slot and reseal its checksum (e2fsck's
   * e2fsck_write_inode). Fields past the inode's i_extra_isize are not written, as the
   * kernel's encode limits them. Returns the inode as written.
   */
  async writeInode(ino: number, fields: Partial<RawInode>): Promise<Uint8Array> {
    const v = this.v;
    const g = v.groupOfIno(ino);
    const byte = ((ino - 1) % v.inodesPerGroup) * v.inodeSize;
    const blk = v.inodeTableLoc(g) + Math.floor(byte / v.blockSize);
    const off = byte % v.blockSize;
    let out = new Uint8Array(0);
    await this.updateBlock(blk, (data) => {
      const slot = data.subarray(off, off + v.inodeSize);
      const extra = fields.i_extra_isize ?? (slot[0x80]! | (slot[0x81]! << 8));
      const limit = v.inodeSize > EXT4_GOOD_OLD_INODE_SIZE ? Math.min(v.inodeSize, inodeLimit(v.inodeSize, extra)) : EXT4_GOOD_OLD_INODE_SIZE;
      inodeStruct.encode(fields, slot, 0, limit);
      if (v.f.metadataCsum) sealInode(v, ino, slot, limit);
      out = slot.slice();
    });
    return out;
  }

  /** Edit inode `ino`'s raw bytes in its table slot (the in-inode attribute area), then reseal its checksum. */
  async editInodeBytes(ino: number, edit: (slot: Uint8Array) => void): Promise<void> {
    const v = this.v;
    const byte = ((ino - 1) % v.inodesPerGroup) * v.inodeSize;
    const blk = v.inodeTableLoc(v.groupOfIno(ino)) + Math.floor(byte / v.blockSize);
    const off = byte % v.blockSize;
    await this.updateBlock(blk, (data) => {
      const slot = data.subarray(off, off + v.inodeSize);
      edit(slot);
      const extra = slot[0x80]! | (slot[0x81]! << 8);
      const limit = v.inodeSize > EXT4_GOOD_OLD_INODE_SIZE ? Math.min(v.inodeSize, inodeLimit(v.inodeSize, extra)) : EXT4_GOOD_OLD_INODE_SIZE;
      if (v.f.metadataCsum) sealInode(v, ino, slot, limit);
    });
  }

  /** Zero inode `ino`'s whole table slot (before writing a new inode into it). */
  async zeroInode(ino: number): Promise<void> {
    const v = this.v;
    const byte = ((ino - 1) % v.inodesPerGroup) * v.inodeSize;
    const blk = v.inodeTableLoc(v.groupOfIno(ino)) + Math.floor(byte / v.blockSize);
    const off = byte % v.blockSize;
    await this.updateBlock(blk, (data) => data.fill(0, off, off + v.inodeSize));
  }

  /**
   * Group `g`'s descriptor was changed in memory; write it (and its checksum) at close.
   * `reseal` false: the change leaves the checksum as it was (e2fsck's ext2fs_*_loc_set),
   * so a restart (`flushMeta`) writes the old checksum and the next check finds it wrong;
   * `close` reseals every descriptor anyway (ext2fs_set_gdt_csum).
   */
  markGroupDirty(g: number, reseal = true): void {
    this.#dirtyGroups.add(g);
    if (reseal) this.#staleCsum.delete(g);
    else this.#staleCsum.add(g);
    this.changed = true;
  }

  /**
   * Write the backup superblocks and descriptor tables too from now on, as e2fsck does once a
   * repair clears EXT2_FLAG_MASTER_SB_ONLY (new_table_block); they are written as the primary
   * is, at a restart and at close. `asChange` false: not a change to the volume (EXT2_FLAG_DIRTY
   * without EXT2_FLAG_CHANGED: the superblock is written, "MODIFIED" is not said).
   * @e2fsprogs ext2fs_flush2, write_backup_super
   */
  writeAllCopies(asChange = true): void {
    this.#allCopies = true;
    if (asChange) this.changed = true;
  }

  /** The superblock was changed in memory (it is written at close). */
  markSuperDirty(): void {
    this.changed = true;
  }

  /**
   * Finish the run: the superblock's final state, descriptor flags and checksums, then write
   * everything and flush the device. `valid`: no error left (e2fsck's ext2fs_test_valid).
   * `inodeInUse` answers for the inode bitmap as repaired (for bg_itable_unused). Returns
   * true when a volume left without errors was not marked valid before: e2fsck counts
   * marking it valid as a correction (exit 1) though it is not a "modification".
   */
  async close(o: { valid: boolean; halt?: boolean; now: number; inodeInUse: (ino: number) => boolean }): Promise<boolean> {
    const v = this.v;
    const sb = v.sb;
    if (o.halt === true) {
      // @e2fsprogs preenhalt: the volume is marked with errors and closed as it stands.
      sb.s_state |= EXT4_ERROR_FS;
      for (let g = 0; g < v.groupCount; g++) this.#dirtyGroups.add(g);
      await this.#writeDescriptors();
      await this.#writeSuper(false);
      await this.flushBlocks();
      return false;
    }
    const wasInvalid = (sb.s_state & EXT4_VALID_FS) === 0;
    if (o.valid) sb.s_state = EXT4_VALID_FS;
    else sb.s_state &= ~EXT4_VALID_FS & 0xffff;
    if (o.valid) sb.s_state &= ~EXT4_ERROR_FS & 0xffff;
    sb.s_lastcheck = o.now >>> 0;
    sb.s_lastcheck_hi = Math.floor(o.now / 2 ** 32) & 0xff;
    sb.s_mnt_count = 0;
    this.#setGdtCsum(o.inodeInUse);
    await this.#writeDescriptors();
    await this.#writeSuper(true);
    await this.flushBlocks();
    return o.valid && wasInvalid;
  }

  /** Write the descriptors and superblock as they stand, and every changed block (before a restart). */
  async flushMeta(): Promise<void> {
    for (let g = 0; g < this.v.groupCount; g++) this.#dirtyGroups.add(g);
    await this.#writeDescriptors(true);
    await this.#writeSuper(false);
    await this.flushBlocks();
  }

  /** Write the blocks changed so far to the device. */
  async flushBlocks(): Promise<void> {
    await this.v.cache.flush();
    await this.v.dev.flush();
  }

  /** @e2fsprogs ext2fs_set_gdt_csum: INODE_UNINIT and bg_itable_unused follow the inode bitmap. */
  #setGdtCsum(inodeInUse: (ino: number) => boolean): void {
    const v = this.v;
    if (!v.f.groupDescCsum) {
      for (let g = 0; g < v.groupCount; g++) this.#dirtyGroups.add(g);
      return;
    }
    const ipg = v.inodesPerGroup;
    for (let g = 0; g < v.groupCount; g++) {
      const gd = v.group(g);
      const flags = gd.bg_flags;
      if (freeInodesCount(gd, v.descSize) === ipg) {
        gd.bg_flags |= EXT4_BG_INODE_UNINIT;
        setItableUnused(gd, ipg, v.descSize);
      } else {
        gd.bg_flags &= ~EXT4_BG_INODE_UNINIT & 0xffff;
        let last = 0;
        for (let i = ipg; i > 0; i--) {
          if (inodeInUse(g * ipg + i)) {
            last = i;
            break;
          }
        }
        setItableUnused(gd, ipg - last, v.descSize);
      }
      if (gd.bg_flags !== flags) this.changed = true;
      this.#dirtyGroups.add(g);
    }
  }

  /**
   * The primary descriptor table and every meta_bg descriptor block, re-encoded with
   * checksums (before a restart, not those of the groups left with their old one).
   */
  async #writeDescriptors(restart = false): Promise<void> {
    const v = this.v;
    if (this.#dirtyGroups.size === 0) return;
    const blocks = new Set<number>();
    for (const g of this.#dirtyGroups) blocks.add(Math.floor(g / v.descPerBlock));
    for (const d of blocks) {
      const targets = this.#descCopies(d);
      const image = new Uint8Array(v.blockSize);
      for (let j = 0; j < v.descPerBlock; j++) {
        const g = d * v.descPerBlock + j;
        if (g >= v.groupCount) break;
        const raw = image.subarray(j * v.descSize, (j + 1) * v.descSize);
        if (restart && this.#staleCsum.has(g)) groupDesc.encode(v.group(g), raw, 0, v.descSize);
        else encodeDesc(v, g, v.group(g), raw);
      }
      for (const t of targets) await this.writeBlock(t, image);
    }
  }

  /**
   * Where descriptor block `d` is written: the primary table (and each backup table once all
   * copies are written), or all three meta_bg copies.
   */
  #descCopies(d: number): number[] {
    const v = this.v;
    const sb = v.sb;
    if (!v.f.metaBg || d < sb.s_first_meta_bg) {
      const out = [descriptorLoc(sb, d)];
      if (this.#allCopies) {
        for (let g = 1; g < v.groupCount; g++) {
          const old = v.superAndBgd(g).oldDescBlk;
          if (old !== 0 && old + d < v.blocksCount) out.push(old + d);
        }
      }
      return out;
    }
    const first = d * v.descPerBlock;
    const out: number[] = [];
    for (const g of [first, first + 1, first + v.descPerBlock - 1]) {
      if (g < v.groupCount) out.push(v.groupFirstBlock(g) + (groupHasSuperblock(sb, g) ? 1 : 0));
    }
    return out;
  }

  /** Encode and write the primary superblock; `clearErrors`: a finished check forgets the error record. */
  async #writeSuper(clearErrors: boolean): Promise<void> {
    const v = this.v;
    const raw = v.sbRaw;
    v.sb.s_block_group_nr = 0; // the primary copy, even when a backup was read @e2fsprogs ext2fs_flush2
    superblock.encode(v.sb, raw);
    if (clearErrors) raw.fill(0, S_ERR_START, S_ERR_END);
    const decoded = superblock.decode(raw);
    Object.assign(v.sb, decoded);
    if (v.f.metadataCsum) {
      v.sb.s_checksum = superblockChecksum(raw);
      superblock.encode({ s_checksum: v.sb.s_checksum }, raw);
    }
    const blk = Math.floor(SUPERBLOCK_OFFSET / v.blockSize);
    await this.updateBlock(blk, (data) => data.set(raw, SUPERBLOCK_OFFSET % v.blockSize));
    if (!this.#allCopies) return;
    // The backups: not marked clean, no recovery pending, each naming its group. @e2fsprogs write_backup_super
    for (let g = 1; g < v.groupCount; g++) {
      const at = v.superAndBgd(g).superBlk;
      if (at === 0) continue;
      const copy = superblock.decode(raw);
      copy.s_state &= ~EXT4_VALID_FS & 0xffff;
      copy.s_feature_incompat = (copy.s_feature_incompat & ~EXT4_FEATURE_INCOMPAT_RECOVER) >>> 0;
      copy.s_block_group_nr = Math.min(g, 0xffff);
      const bytes = raw.slice();
      superblock.encode(copy, bytes);
      if (v.f.metadataCsum) superblock.encode({ s_checksum: superblockChecksum(bytes) }, bytes);
      await this.updateBlock(at, (data) => data.set(bytes, 0));
    }
  }
}

/** Encode descriptor `g` into `raw` with its checksum. @e2fsprogs ext2fs_group_desc_csum_set */
function encodeDesc(v: FsckVolume, g: number, gd: GroupDesc, raw: Uint8Array): void {
  groupDesc.encode(gd, raw, 0, v.descSize);
  if (!v.f.groupDescCsum) return;
  gd.bg_checksum = groupDescChecksum(raw, g, {
    csumSeed: v.csumSeed, uuid: v.sb.s_uuid, metadataCsum: v.f.metadataCsum, gdtCsum: v.f.gdtCsum, descSize: v.descSize, is64bit: v.f.is64bit,
  });
  groupDesc.encode({ bg_checksum: gd.bg_checksum }, raw, 0, v.descSize);
}

/** Recompute an inode's checksum in place (`slot` is the inode's bytes). @e2fsprogs ext2fs_inode_csum_set */
export function sealInode(v: FsckVolume, ino: number, slot: Uint8Array, limit: number): void {
  const gen = (slot[0x64]! | (slot[0x65]! << 8) | (slot[0x66]! << 16) | (slot[0x67]! << 24)) >>> 0;
  const c = inodeChecksum(slot, 0, v.inodeSize, inodeChecksumSeed(v.csumSeed, ino, gen));
  const fields: Partial<RawInode> = { l_i_checksum_lo: c & 0xffff };
  if (inodeHasChecksumHi(slot, 0, v.inodeSize)) fields.i_checksum_hi = c >>> 16;
  inodeStruct.encode(fields, slot, 0, limit);
}
