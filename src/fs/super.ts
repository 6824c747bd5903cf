/**
 * The mounted volume: superblock, group descriptors and the geometry every other engine
 * file derives from (@kernel struct ext4_sb_info, fs/ext4/super.c ext4_fill_super).
 *
 * Mounting validates what the kernel validates before it trusts a volume: superblock
 * magic, geometry and checksum, the feature policy (unknown INCOMPAT features refuse to
 * mount; unknown RO_COMPAT features force read-only), and every group descriptor's
 * table locations and checksum. All corruption found later is reported through
 * `fsCorrupted`, this project's __ext4_error.
 */

import { BufferCache } from "../cache/buffer_cache.js";
import { createSyncDomain, type SyncDomain } from "../sync/rwlock.js";
import type { BlockDevice } from "../device/block_device.js";
import { FsError, type FsErrorDetail } from "../errors.js";
import { fsChecksumSeed, groupDescChecksum, superblockChecksum } from "../format/checksum.js";
import {
  blockBitmap,
  groupDesc,
  groupDescLocation,
  inodeBitmap,
  inodeTable,
  type GroupDesc,
} from "../format/group_desc.js";
import { EXT2_FLAGS_UNSIGNED_HASH } from "../format/dirhash.js";
import { recoverJournal } from "../journal/recovery.js";
import {
  EXT4_FEATURE_COMPAT_DIR_INDEX,
  EXT4_FEATURE_INCOMPAT_64BIT,
  EXT4_FEATURE_INCOMPAT_CSUM_SEED,
  EXT4_FEATURE_INCOMPAT_EXTENTS,
  EXT4_FEATURE_INCOMPAT_FILETYPE,
  EXT4_FEATURE_INCOMPAT_FLEX_BG,
  EXT4_FEATURE_INCOMPAT_INLINE_DATA,
  EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT,
  EXT4_FEATURE_INCOMPAT_LARGEDIR,
  EXT4_FEATURE_INCOMPAT_META_BG,
  EXT4_FEATURE_INCOMPAT_RECOVER,
  EXT4_FEATURE_RO_COMPAT_DIR_NLINK,
  EXT4_FEATURE_RO_COMPAT_GDT_CSUM,
  EXT4_FEATURE_RO_COMPAT_HUGE_FILE,
  EXT4_FEATURE_RO_COMPAT_METADATA_CSUM,
  EXT4_VALID_FS,
  EXT4_ERROR_FS,
  SUPERBLOCK_OFFSET,
  blockSize as sbBlockSize,
  blocksCount,
  checkFeatures,
  descSize as sbDescSize,
  groupCount as sbGroupCount,
  hasCompat,
  hasIncompat,
  hasRoCompat,
  inodeSize as sbInodeSize,
  superblock,
  validateSuperblock,
  type Superblock,
} from "../format/superblock.js";

export interface MountOptions {
  /** Open read-only (the default). A writable mount needs a writable device. */
  readOnly?: boolean;
  /**
   * Mount read-write even though mount found problems it tolerates read-only (bad group
   * descriptor checksums). Without it such a volume is refused for writing (EROFS).
   */
  force?: boolean;
  /** Buffer cache bound in bytes (default 32 MiB). */
  cacheBytes?: number;
  /**
   * Mount a volume whose journal needs recovery without replaying it, like the kernel's
   * `-o ro,noload`: reads may see a state older than the last transactions.
   */
  noload?: boolean;
}

/** Volume features the engine branches on, decoded once at mount. */
export interface Features {
  readonly metadataCsum: boolean;
  readonly gdtCsum: boolean;
  readonly is64bit: boolean;
  readonly hugeFile: boolean;
  readonly largedir: boolean;
  readonly filetype: boolean;
  readonly extents: boolean;
  readonly inlineData: boolean;
  readonly dirIndex: boolean;
  readonly dirNlink: boolean;
  readonly metaBg: boolean;
  readonly flexBg: boolean;
}

export class Ext4Fs {
  readonly dev: BlockDevice;
  readonly cache: BufferCache;
  readonly sb: Superblock;
  readonly features: Features;
  readonly readOnly: boolean;
  readonly blockSize: number;
  readonly inodeSize: number;
  readonly inodesPerGroup: number;
  readonly blocksPerGroup: number;
  readonly inodesCount: number;
  readonly blocksCount: number;
  readonly groupCount: number;
  readonly descSize: number;
  /** s_csum_seed: the start of every metadata_csum checksum. */
  readonly csumSeed: number;
  /** Directory hash version for new htrees, after applying s_hash_unsigned. */
  readonly hashUnsignedDelta: 0 | 3;
  readonly hashSeed: readonly number[];
  /** Non-fatal findings at mount (e.g. group descriptor checksums tolerated read-only). */
  readonly warnings: string[] = [];
  /** Corruption reports since mount (a writable mount also counts them in s_error_count). */
  errorCount = 0;
  /**
   * The first corruption found on a writable mount. From then on writes are refused
   * (EROFS), as the kernel's errors=remount-ro does: an engine that has seen a bad
   * structure must not build on it. Reads go on; unmount still records the error.
   */
  writeError: FsError | null = null;
  /**
   * Clusters reserved by write() for delayed allocation and not yet allocated: the sum of
   * every in-core inode's i_reserved_data_blocks (inode_core.ts keeps the two in step).
   * Admission subtracts it from the free count. @kernel s_dirtyclusters_counter
   */
  dirtyClusters = 0;
  /**
   * The emergency pool: clusters only "must not fail" metadata allocations (extent-tree
   * blocks during writeback) may take, so writeback of an accepted write never meets ENOSPC.
   * min(2 % of the volume, 4096); 0 without extents. @kernel s_resv_clusters, ext4_calculate_resv_clusters
   */
  readonly resvClusters: number;
  /**
   * Lock-order checking and the scheduler seam for every lock of this volume (src/sync):
   * tests install a ControlledScheduler here to drive interleavings.
   */
  readonly syncDomain: SyncDomain = createSyncDomain();
  readonly #groups: GroupDesc[];

  /** The superblock's on-disk bytes; fields we do not name survive write-back. */
  readonly #sbRaw: Uint8Array;

  private constructor(dev: BlockDevice, sb: Superblock, sbRaw: Uint8Array, groups: GroupDesc[], cache: BufferCache, readOnly: boolean, warnings: string[]) {
    this.dev = dev;
    this.sb = sb;
    this.#sbRaw = sbRaw;
    this.#groups = groups;
    this.cache = cache;
    this.readOnly = readOnly;
    this.warnings.push(...warnings);
    this.features = featuresOf(sb);
    this.blockSize = sbBlockSize(sb);
    this.inodeSize = sbInodeSize(sb);
    this.inodesPerGroup = sb.s_inodes_per_group;
    this.blocksPerGroup = sb.s_blocks_per_group;
    this.inodesCount = sb.s_inodes_count;
    this.blocksCount = blocksCount(sb);
    this.groupCount = sbGroupCount(sb);
    this.descSize = sbDescSize(sb);
    this.csumSeed = fsChecksumSeed(sb.s_uuid, hasIncompat(sb, EXT4_FEATURE_INCOMPAT_CSUM_SEED), sb.s_checksum_seed);
    this.hashUnsignedDelta = sb.s_flags & EXT2_FLAGS_UNSIGNED_HASH ? 3 : 0;
    this.hashSeed = sb.s_hash_seed;
    this.resvClusters = this.features.extents ? Math.min(Math.floor(this.blocksCount / 50), 4096) : 0;
  }

  /**
   * Read and validate the superblock and group descriptors of `dev`.
   * Throws EFSCORRUPTED/EFSBADCRC for a bad volume, EOPNOTSUPP for features this engine
   * cannot read, EINVAL when the device is not ext2/3/4 at all.
   * @kernel ext4_fill_super
   */
  static async mount(dev: BlockDevice, opts: MountOptions = {}): Promise<Ext4Fs> {
    if (dev.size < SUPERBLOCK_OFFSET + superblock.size) {
      throw new FsError("EINVAL", `Cannot mount ${dev.description}: ${dev.size} bytes is too small for an ext2/3/4 volume`);
    }
    const sbRaw = await dev.read(SUPERBLOCK_OFFSET, superblock.size);
    const sb = superblock.decode(sbRaw);
    if (sb.s_magic !== 0xef53) {
      throw new FsError("EINVAL", `Cannot mount ${dev.description}: not an ext2/3/4 volume (magic 0x${sb.s_magic.toString(16).padStart(4, "0")}, expected 0xef53)`);
    }

    const f = checkFeatures(sb);
    if (f.unknownIncompat.length > 0 || f.unsupportedIncompat.length > 0) {
      const list = [...f.unsupportedIncompat, ...f.unknownIncompat].join(", ");
      throw new FsError("EOPNOTSUPP", `Cannot mount ${dev.description}: unsupported INCOMPAT features: ${list}`);
    }
    const warnings: string[] = [];
    let readOnly = opts.readOnly ?? true;
    if (f.unknownRoCompat.length > 0 && !readOnly) {
      readOnly = true;
      warnings.push(`Unknown RO_COMPAT features ${f.unknownRoCompat.join(", ")}: mounted read-only`);
    }
    if (hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) {
      if (sb.s_checksum_type !== 1) {
        throw new FsError("EFSCORRUPTED", `Bad superblock: unknown checksum type ${sb.s_checksum_type}`, { block: 1 });
      }
      const want = superblockChecksum(sbRaw);
      if (want !== sb.s_checksum) {
        throw new FsError("EFSBADCRC", `Superblock checksum is 0x${hex32(sb.s_checksum)}, expected 0x${hex32(want)}`, { block: 1 });
      }
    }
    // Geometry after the checksum, as ext4_fill_super orders it: a mangled checksummed
    // superblock is a checksum error first.
    const problems = validateSuperblock(sb, dev.size);
    if (problems.length > 0) throw new FsError("EFSCORRUPTED", `Bad superblock: ${problems.join("; ")}`, { block: SUPERBLOCK_OFFSET / 1024 });
    if (hasIncompat(sb, EXT4_FEATURE_INCOMPAT_RECOVER)) {
      // As ext4_load_journal: replay before trusting anything else the volume says. A
      // read-only mount does not write (the kernel would replay unless the device is
      // read-only), so it still needs noload; noload on a writable mount would build on a
      // state the journal is about to overwrite.
      if (opts.noload === true) {
        if (!readOnly) throw new FsError("EINVAL", `Cannot mount ${dev.description} read-write with noload: the journal needs recovery; required journal recovery suppressed and not mounted read-only`);
      } else if (readOnly) {
        throw new FsError(
          "EOPNOTSUPP",
          `Cannot mount ${dev.description} read-only: the journal needs recovery, which needs a writable mount; mount read-write to replay it, or with noload to read the pre-journal state`,
        );
      } else {
        if (dev.readOnly) throw new FsError("EROFS", `Cannot mount ${dev.description} read-write: the device is read-only, and the journal needs recovery`);
        // "kernel" policy: a corrupt log refuses the mount and is left for e2fsck.
        const r = await recoverJournal(dev, { policy: "kernel", ...(opts.cacheBytes === undefined ? {} : { cacheBytes: opts.cacheBytes }) });
        const recovered = superblock.decode(await dev.read(SUPERBLOCK_OFFSET, superblock.size));
        if (hasIncompat(recovered, EXT4_FEATURE_INCOMPAT_RECOVER)) {
          throw new FsError("EFSCORRUPTED", `Cannot mount ${dev.description}: needs_recovery is still set after journal recovery`, { block: SUPERBLOCK_OFFSET / 1024 });
        }
        // Mount what recovery left, checked from the start like any other volume.
        const fs = await Ext4Fs.mount(dev, opts);
        fs.warnings.push(
          `Journal recovered: ${r.transactions} transaction${r.transactions === 1 ? "" : "s"}` +
            (r.transactions > 0 ? ` (${r.firstTid}..${r.lastTid})` : "") +
            `, ${r.blocksReplayed} block${r.blocksReplayed === 1 ? "" : "s"} replayed, ${r.revoked} revoked` +
            r.notes.map((n) => `; ${n}`).join(""),
        );
        return fs;
      }
    }

    const bs = sbBlockSize(sb);
    const cache = new BufferCache(dev, bs, { maxBytes: opts.cacheBytes ?? 32 * 1024 * 1024 });
    const groups = await loadGroupDescs(sb, cache, readOnly, warnings);
    if (!readOnly) {
      if (dev.readOnly) throw new FsError("EROFS", `Cannot mount ${dev.description} read-write: the device is read-only`);
      // What makes a volume unsafe to build on: the kernel would mount some of these with a
      // warning; ext4ts refuses them for writing until e2fsck has run, unless forced.
      const unsafe = [...warnings];
      if (sb.s_state & EXT4_ERROR_FS) unsafe.push(`the volume has errors recorded${sb.s_error_count > 0 ? ` (${sb.s_error_count} since the last check)` : ""}`);
      if (hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT)) unsafe.push("its orphan file has entries, which ext4ts cannot process");
      if (unsafe.length > 0 && opts.force !== true) {
        throw new FsError("EROFS", `Cannot mount ${dev.description} read-write: ${unsafe[0]!}; run e2fsck, or force`);
      }
    }
    const fs = new Ext4Fs(dev, sb, sbRaw, groups, cache, readOnly, warnings);
    if (!readOnly) await fs.#markMounted();
    return fs;
  }

  /**
   * A writable mount clears EXT4_VALID_FS until a clean unmount sets it again, so a
   * crash leaves a volume e2fsck will check in full. @kernel ext4_setup_super
   */
  async #markMounted(): Promise<void> {
    this.sb.s_state &= ~EXT4_VALID_FS;
    this.sb.s_mnt_count = (this.sb.s_mnt_count + 1) & 0xffff;
    this.sb.s_mtime = Math.floor(Date.now() / 1000) >>> 0;
    await this.commitSuper();
  }

  /**
   * Encode the in-core superblock (and its checksum) into its block and write it through.
   * @kernel ext4_commit_super
   */
  async commitSuper(): Promise<void> {
    superblock.encode(this.sb, this.#sbRaw);
    if (this.features.metadataCsum) {
      this.sb.s_checksum = superblockChecksum(this.#sbRaw);
      superblock.encode({ s_checksum: this.sb.s_checksum }, this.#sbRaw);
    }
    const block = Math.floor(SUPERBLOCK_OFFSET / this.blockSize);
    const data = await this.cache.pin(block);
    try {
      data.set(this.#sbRaw, SUPERBLOCK_OFFSET % this.blockSize);
      this.cache.markDirty(block);
    } finally {
      this.cache.unpin(block);
    }
  }

  /** Where group `g`'s descriptor lives and how to checksum it: for fs/group.ts. */
  groupDescPlace(g: number): { block: number; offset: number } {
    return groupDescLocation(this.sb, g);
  }

  group(g: number): GroupDesc {
    const gd = this.#groups[g];
    if (gd === undefined) throw new FsError("EFSCORRUPTED", `Group ${g} out of range (${this.groupCount} groups)`);
    return gd;
  }

  /** Is [pblk, pblk+len) a plausible data or metadata location (inside the volume, past the boot area)? */
  blockRangeValid(pblk: number, len: number): boolean {
    return pblk >= this.sb.s_first_data_block + 1 && len >= 0 && pblk + len <= this.blocksCount;
  }

  /** Write every dirty block and the superblock. @kernel ext4_sync_fs */
  async sync(): Promise<void> {
    if (!this.readOnly) await this.commitSuper();
    await this.cache.flush();
  }

  /** Sync, mark the volume clean (writable mounts) and close the device. @kernel ext4_put_super */
  async unmount(): Promise<void> {
    if (!this.readOnly) {
      this.sb.s_state |= EXT4_VALID_FS;
      await this.sync();
    }
    await this.dev.close();
  }
}

function featuresOf(sb: Superblock): Features {
  return {
    metadataCsum: hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM),
    gdtCsum: hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_GDT_CSUM),
    is64bit: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT),
    hugeFile: hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_HUGE_FILE),
    largedir: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_LARGEDIR),
    filetype: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_FILETYPE),
    extents: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_EXTENTS),
    inlineData: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_INLINE_DATA),
    dirIndex: hasCompat(sb, EXT4_FEATURE_COMPAT_DIR_INDEX),
    dirNlink: hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_DIR_NLINK),
    metaBg: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_META_BG),
    flexBg: hasIncompat(sb, EXT4_FEATURE_INCOMPAT_FLEX_BG),
  };
}

/**
 * Read every group descriptor and check it as the kernel does: bitmaps and inode table
 * inside the volume (and inside their group without flex_bg), checksum right. A bad
 * checksum is tolerated on a read-only mount, as the kernel tolerates it.
 * @kernel ext4_check_descriptors
 */
async function loadGroupDescs(sb: Superblock, cache: BufferCache, readOnly: boolean, warnings: string[]): Promise<GroupDesc[]> {
  const n = sbGroupCount(sb);
  const ds = sbDescSize(sb);
  const bs = sbBlockSize(sb);
  const total = blocksCount(sb);
  const flex = hasIncompat(sb, EXT4_FEATURE_INCOMPAT_FLEX_BG);
  const metadataCsum = hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM);
  const gdtCsum = hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_GDT_CSUM);
  const is64bit = hasIncompat(sb, EXT4_FEATURE_INCOMPAT_64BIT);
  const seed = fsChecksumSeed(sb.s_uuid, hasIncompat(sb, EXT4_FEATURE_INCOMPAT_CSUM_SEED), sb.s_checksum_seed);
  const itableBlocks = Math.ceil((sb.s_inodes_per_group * sbInodeSize(sb)) / bs);
  const out: GroupDesc[] = [];
  for (let g = 0; g < n; g++) {
    const { block, offset } = groupDescLocation(sb, g);
    if (block >= total) throw new FsError("EFSCORRUPTED", `Group descriptor ${g} lies at block ${block}, past the end of the volume`, { block });
    const buf = await cache.get(block);
    const raw = buf.subarray(offset, offset + ds);
    const gd = groupDesc.decode(raw, 0, ds);
    const bad = (what: string, at: number): FsError => new FsError("EFSCORRUPTED", `Group descriptor ${g}: ${what}`, { block: at });
    const first = sb.s_first_data_block + g * sb.s_blocks_per_group;
    const last = g === n - 1 ? total - 1 : first + sb.s_blocks_per_group - 1;
    const inGroup = (b: number, len: number): boolean => (flex ? b > sb.s_first_data_block && b + len <= total : b >= first && b + len - 1 <= last);
    if (!inGroup(blockBitmap(gd, ds), 1)) throw bad(`block bitmap at ${blockBitmap(gd, ds)} not in group`, block);
    if (!inGroup(inodeBitmap(gd, ds), 1)) throw bad(`inode bitmap at ${inodeBitmap(gd, ds)} not in group`, block);
    if (!inGroup(inodeTable(gd, ds), itableBlocks)) throw bad(`inode table at ${inodeTable(gd, ds)} not in group`, block);
    if (metadataCsum || gdtCsum) {
      const want = groupDescChecksum(raw, g, { csumSeed: seed, uuid: sb.s_uuid, metadataCsum, gdtCsum, descSize: ds, is64bit });
      if (want !== gd.bg_checksum) {
        const msg = `Group descriptor ${g} checksum is 0x${gd.bg_checksum.toString(16).padStart(4, "0")}, expected 0x${want.toString(16).padStart(4, "0")}`;
        if (!readOnly) throw new FsError("EFSBADCRC", msg, { block });
        warnings.push(msg);
      }
    }
    out.push(gd);
  }
  return out;
}

function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

export interface CorruptionReport extends FsErrorDetail {
  what: string;
  /** EFSBADCRC for a checksum mismatch; EFSCORRUPTED (default) for anything else. */
  crc?: boolean;
}

/**
 * The single place corruption is reported (this project's __ext4_error). A read-only
 * engine records nothing on disk; later issues add s_last_error_* and the errors= policy.
 * Returns the error to throw.
 */
export function fsCorrupted(fs: Ext4Fs, r: CorruptionReport): FsError {
  const { what, crc, ...detail } = r;
  fs.errorCount++;
  const err = new FsError(crc === true ? "EFSBADCRC" : "EFSCORRUPTED", what, detail);
  noteFsError(fs, err);
  return err;
}

const noted = new WeakSet<FsError>();

/**
 * On a writable mount, record a corruption error (from fsCorrupted, or one the API layer
 * caught from code that threw it directly) once: see saveErrorInfo. Other errors pass.
 */
export function noteFsError(fs: Ext4Fs, err: unknown): void {
  if (fs.readOnly || !(err instanceof FsError) || (err.code !== "EFSCORRUPTED" && err.code !== "EFSBADCRC") || noted.has(err)) return;
  noted.add(err);
  saveErrorInfo(fs, err);
}

/** EXT4_ERR_* codes for s_{first,last}_error_errcode. */
const EXT4_ERR_EFSBADCRC = 4;
const EXT4_ERR_EFSCORRUPTED = 5;

/**
 * Record a corruption in the superblock (written at the next sync or unmount) and stop
 * further writes. The error stays until e2fsck clears it; writable mounts refuse such a
 * volume unless forced. @kernel save_error_info, ext4_handle_error (errors=remount-ro)
 */
function saveErrorInfo(fs: Ext4Fs, err: FsError): void {
  const sb = fs.sb;
  const now = Math.floor(Date.now() / 1000);
  const func = new Uint8Array(32);
  func.set(new TextEncoder().encode("ext4ts"));
  const at = {
    time: now >>> 0,
    timeHi: Math.floor(now / 2 ** 32) & 0xff,
    ino: err.detail.ino ?? 0,
    block: err.detail.block ?? 0,
    code: err.code === "EFSBADCRC" ? EXT4_ERR_EFSBADCRC : EXT4_ERR_EFSCORRUPTED,
  };
  sb.s_state |= EXT4_ERROR_FS;
  sb.s_error_count = (sb.s_error_count + 1) >>> 0;
  if (sb.s_first_error_time === 0 && sb.s_first_error_time_hi === 0) {
    sb.s_first_error_time = at.time;
    sb.s_first_error_time_hi = at.timeHi;
    sb.s_first_error_ino = at.ino;
    sb.s_first_error_block = BigInt(at.block);
    sb.s_first_error_func = func.slice();
    sb.s_first_error_line = 0;
    sb.s_first_error_errcode = at.code;
  }
  sb.s_last_error_time = at.time;
  sb.s_last_error_time_hi = at.timeHi;
  sb.s_last_error_ino = at.ino;
  sb.s_last_error_block = BigInt(at.block);
  sb.s_last_error_func = func;
  sb.s_last_error_line = 0;
  sb.s_last_error_errcode = at.code;
  fs.writeError ??= err;
}

