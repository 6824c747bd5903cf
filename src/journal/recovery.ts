/**
 * jbd2 journal recovery: replays the committed transactions of an ext4 volume's internal
 * journal into place, marks the journal empty and clears needs_recovery.
 *
 * Counterparts: fs/jbd2/recovery.c (jbd2_journal_recover, do_one_pass, count_tags,
 * calc_chksums, scan_revoke_records), fs/jbd2/revoke.c (jbd2_journal_set_revoke,
 * jbd2_journal_test_revoke), and e2fsprogs e2fsck/journal.c (e2fsck_get_journal,
 * e2fsck_journal_load, recover_ext3_journal, e2fsck_journal_release), whose 1.47 copy of
 * recovery.c is the kernel's. Names below are theirs so a reader can grep both.
 *
 * Design note.
 * - The log is a ring of journal blocks [s_first, j_last) holding transactions, each a run
 *   of descriptor blocks (tags naming the filesystem block each following log block belongs
 *   to), revoke blocks (blocks whose older copies must not be replayed) and one commit block.
 *   Recovery reads it three times from s_start, as the kernel does: PASS_SCAN finds the end
 *   of the log (the first transaction without a valid commit), PASS_REVOKE collects every
 *   revoke record with the ID of the transaction that wrote it, PASS_REPLAY copies each
 *   tagged block home unless a revoke record from the same or a later transaction covers
 *   it. Replay is idempotent, so a crash during recovery just means recovering again.
 * - Nothing here mounts the volume: the journal inode is read and mapped with the format
 *   codecs (extent tree or block map), as e2fsck does before it trusts anything else. The
 *   map is kept as physically contiguous runs, a handful for a journal mke2fs made.
 * - Memory is bounded: the log is streamed through a readahead window (do_readahead's
 *   idea, 1 MiB here) and replayed blocks go through a BufferCache of `cacheBytes`, which
 *   also coalesces the many rewrites of the same bitmap or inode table block. Only the
 *   revoke table grows with the log (one entry per revoked block).
 * - Order on disk: replayed blocks are flushed before the journal superblock says the
 *   journal is empty, and that before needs_recovery is cleared, so a crash between any
 *   two steps leaves a volume that still recovers to the same state.
 * - Two policies for what goes wrong. "e2fsck" (default) is recover_ext3_journal followed
 *   by e2fsck_journal_release: a recovery error (a bad block tag checksum, an unreadable
 *   revoke block) still marks the journal empty and clears needs_recovery, and is returned
 *   in `error` for the checker to report; a corrupt commit (j_failed_commit) ends the log
 *   there and is returned in `failedCommit`. "kernel" is jbd2_journal_load at mount: the
 *   same errors throw, leaving the journal and needs_recovery as they were.
 */

import { BufferCache } from "../cache/buffer_cache.js";
import type { BlockDevice } from "../device/block_device.js";
import { FsError, type Errno } from "../errors.js";
import {
  extentBlockChecksum, fsChecksumSeed, inodeChecksumSeed, journalBlockTagChecksum, journalBlockTailChecksum,
  journalChecksumSeed, journalCommitBlockChecksum, journalCrc32Be, journalSuperblockChecksum, superblockChecksum,
  verifyInodeChecksum,
} from "../format/checksum.js";
import { decodeExtentNode, extentHeader, extentTail, extentTailOffset } from "../format/extent.js";
import { decodeGroupDesc, groupDescLocation, inodeTable } from "../format/group_desc.js";
import { EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL, S_IFMT, S_IFREG, decodeInode, iBlockWord, type RawInode } from "../format/inode.js";
import {
  JBD2_COMMIT_BLOCK, JBD2_CRC32_CHKSUM, JBD2_CRC32_CHKSUM_SIZE, JBD2_CRC32C_CHKSUM, JBD2_DESCRIPTOR_BLOCK,
  JBD2_FEATURE_COMPAT_CHECKSUM, JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT,
  JBD2_FEATURE_INCOMPAT_CSUM_V2, JBD2_FEATURE_INCOMPAT_CSUM_V3, JBD2_FEATURE_INCOMPAT_FAST_COMMIT, JBD2_FLAG_ESCAPE,
  JBD2_FLAG_LAST_TAG, JBD2_FLAG_SAME_UUID, JBD2_KNOWN_INCOMPAT_FEATURES, JBD2_MAGIC_NUMBER, JBD2_MIN_JOURNAL_BLOCKS,
  JBD2_REVOKE_BLOCK, JBD2_SUPERBLOCK_V1, JBD2_SUPERBLOCK_V2, blockTag, blockTag3, commitHeader, journalBlockTail,
  journalHeader, journalSuperblock, journalTagBytes, revokeHeader, type JournalSuperblock,
} from "../format/jbd2.js";
import {
  EXT4_FEATURE_COMPAT_FAST_COMMIT, EXT4_FEATURE_COMPAT_HAS_JOURNAL, EXT4_FEATURE_INCOMPAT_CSUM_SEED,
  EXT4_FEATURE_INCOMPAT_RECOVER, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM, EXT4_VALID_FS, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE,
  blockSize as sbBlockSize, blocksCount as sbBlocksCount, descSize, hasCompat, hasIncompat, hasRoCompat,
  inodeSize as sbInodeSize, superblock, validateSuperblock, type Superblock,
} from "../format/superblock.js";

/** What went wrong is handled as e2fsck does ("e2fsck") or as a kernel mount does ("kernel"); see the file header. */
export type RecoveryPolicy = "e2fsck" | "kernel";

export interface RecoverOptions {
  /** Bound of the buffer cache replayed blocks go through (default 8 MiB). */
  cacheBytes?: number;
  /** Default "e2fsck". */
  policy?: RecoveryPolicy;
}

export interface RecoveryResult {
  /** Committed transactions replayed (0 when recovery failed before PASS_REPLAY). */
  transactions: number;
  /** Logged blocks written home. */
  blocksReplayed: number;
  /** Logged blocks not written because a revoke record covered them (nr_revoke_hits). */
  revoked: number;
  /** Revoke records read (nr_revokes). */
  revokeRecords: number;
  /** The first transaction ID the log held (s_sequence before recovery). */
  firstTid: number;
  /** The last transaction replayed; firstTid - 1 (mod 2^32) when none was. */
  lastTid: number;
  /**
   * s_sequence now in the journal superblock: the ID after the end of the log plus one,
   * as jbd2_journal_recover skips an ID so that a stale commit of the first unfinished
   * transaction can never be taken for a new one; unchanged after a recovery error.
   */
  sequence: number;
  /** s_errno of the journal superblock (a journal aborted before the crash), left as found. */
  journalErrno: number;
  /**
   * A transaction whose commit block failed its checksum (j_failed_commit): the log was
   * taken to end before it. e2fsck says "Journal transaction N was corrupt, replay was aborted".
   */
  failedCommit?: number;
  /**
   * The error recovery ended with under the "e2fsck" policy (EFSBADCRC for a bad block tag
   * or descriptor checksum, EINVAL for a bad revoke block, EFSCORRUPTED for a log block past
   * the journal, EIO when passes disagree). What could be replayed was, and the journal
   * was still marked empty, as e2fsck does before checking the whole volume.
   */
  error?: FsError;
  /** Problems recovery tolerated, one line each (a stale transaction ignored, a skipped block). */
  notes: string[];
}

/** The journal as recovery sees it, for fsck's journal checks and for tests. */
export interface JournalLayout {
  readonly blockSize: number;
  /** Inode the journal lives in (s_journal_inum). */
  readonly ino: number;
  /** j_total_len: usable blocks, i_size / block size capped by s_maxlen. */
  readonly totalLen: number;
  /** j_first: first block of the log (s_first). */
  readonly first: number;
  /** j_last: one past the last block of the log ring (s_maxlen less any fast-commit area). */
  readonly last: number;
  readonly superblock: JournalSuperblock;
  /** Physical block of journal block `lblk` (< totalLen). @kernel jbd2_journal_bmap */
  bmap(lblk: number): number;
}

const DEFAULT_CACHE_BYTES = 8 * 1024 * 1024;
/** Log readahead per device read; the kernel's do_readahead uses 128 KiB. */
const READAHEAD_BYTES = 1024 * 1024;
/** @kernel JBD2_DEFAULT_FAST_COMMIT_BLOCKS */
const JBD2_DEFAULT_FAST_COMMIT_BLOCKS = 256;
/** @kernel EXT4_FC_TAG_HEAD (fs/ext4/fast_commit.h) */
const EXT4_FC_TAG_HEAD = 0x0009;
const EXT4_NDIR_BLOCKS = 12;
const EXTENT_ROOT_BYTES = 60;

/**
 * Replay the internal journal (inode s_journal_inum) of the ext4 volume on `dev`, then
 * mark it empty (s_start 0, s_sequence past the log) and clear needs_recovery in the
 * primary superblock, recomputing its checksum, as e2fsck's recover_ext3_journal and
 * e2fsck_journal_release do. s_state and the error fields are left alone. A journal with
 * s_start 0 replays nothing but is released the same way.
 *
 * Throws (before writing anything) EROFS for a read-only device, EINVAL for a device
 * without an ext2/3/4 superblock, EOPNOTSUPP for an external journal, unknown journal
 * features or a fast-commit area holding commits of the log's end; EFSCORRUPTED (with the
 * block) for a journal that cannot be read: a bad journal superblock, a journal inode that
 * is not a regular file or is too small, a broken extent tree or block map; EFSBADCRC for
 * a bad journal superblock checksum (and, under the "kernel" policy, a bad journal inode or
 * extent block checksum). Under the "kernel" policy a recovery error or a corrupt commit
 * throws after the replay, without releasing the journal. Device errors propagate.
 * @kernel jbd2_journal_recover (fs/jbd2/recovery.c); e2fsprogs recover_ext3_journal
 */
export async function recoverJournal(dev: BlockDevice, opts: RecoverOptions = {}): Promise<RecoveryResult> {
  const policy = opts.policy ?? "e2fsck";
  if (dev.readOnly) throw new FsError("EROFS", `Cannot recover the journal of ${dev.description}: the device is read-only`);
  const sb = await readFsSuperblock(dev);
  const notes: string[] = [];
  const cache = new BufferCache(dev, sbBlockSize(sb), { maxBytes: Math.max(opts.cacheBytes ?? DEFAULT_CACHE_BYTES, 4 * sbBlockSize(sb)) });
  const j = await Journal.load(cache, sb, policy, notes);
  const jsb = j.superblock;
  const info: RecoveryInfo = { startTransaction: jsb.s_sequence, endTransaction: undefined, nrReplays: 0, nrRevokes: 0, nrRevokeHits: 0, failedCommit: undefined, notes };

  let err: FsError | undefined;
  let replayed = false; // PASS_REPLAY ran: transactions up to endTransaction went home
  if (jsb.s_start === 0) {
    // Cleanly released (or never used): nothing to replay, the next ID follows s_sequence.
    info.endTransaction = jsb.s_sequence;
  } else {
    err = await doOnePass(j, info, "PASS_SCAN");
    if (err === undefined) await refuseFastCommitReplay(j, sb, info);
    if (err === undefined) err = await doOnePass(j, info, "PASS_REVOKE");
    if (err === undefined) {
      replayed = true;
      err = await doOnePass(j, info, "PASS_REPLAY");
    }
  }
  // sync_blockdev: everything replayed is on disk before the journal forgets it.
  await cache.flush();

  const end = info.endTransaction ?? info.startTransaction;
  if (policy === "kernel") {
    const fail = (code: Errno, reason: string, block?: number): FsError =>
      new FsError(code, `Cannot recover the journal of ${dev.description}: ${reason}`, block === undefined ? {} : { block });
    if (err !== undefined) throw fail(err.code, err.reason, err.detail.block);
    if (info.failedCommit !== undefined) throw fail("EFSCORRUPTED", `journal transaction ${info.failedCommit} is corrupt`);
  }
  if (info.failedCommit !== undefined) notes.push(`Journal transaction ${info.failedCommit} was corrupt, replay was aborted`);

  // e2fsck_journal_release(reset = 1): after an error j_tail_sequence was never advanced.
  const sequence = err === undefined ? tidNext(end) : jsb.s_sequence;
  await j.release(sequence);
  await cache.flush();
  await clearRecoverFlag(cache, err !== undefined);
  await cache.flush();

  const lastReplayed = replayed ? end : info.startTransaction;
  const result: RecoveryResult = {
    transactions: (lastReplayed - info.startTransaction) >>> 0,
    blocksReplayed: info.nrReplays,
    revoked: info.nrRevokeHits,
    revokeRecords: info.nrRevokes,
    firstTid: info.startTransaction,
    lastTid: (lastReplayed - 1) >>> 0,
    sequence,
    journalErrno: jsb.s_errno | 0,
    notes,
  };
  if (info.failedCommit !== undefined) result.failedCommit = info.failedCommit;
  if (err !== undefined) result.error = err;
  return result;
}

/**
 * The journal of the volume on `dev` as recovery would read it: its superblock, ring
 * bounds and block map. Reads only; throws as recoverJournal does for a journal that
 * cannot be read (checksum errors of the journal inode are not checked).
 */
export async function readJournalLayout(dev: BlockDevice): Promise<JournalLayout> {
  const sb = await readFsSuperblock(dev);
  const cache = new BufferCache(dev, sbBlockSize(sb), { maxBytes: 64 * sbBlockSize(sb) });
  const j = await Journal.load(cache, sb, "e2fsck", []);
  return { blockSize: j.blockSize, ino: j.ino, totalLen: j.totalLen, first: j.first, last: j.last, superblock: j.superblock, bmap: (lblk) => j.bmap(lblk) };
}

// ---------------------------------------------------------------------------------------------
// The three passes

type Pass = "PASS_SCAN" | "PASS_REVOKE" | "PASS_REPLAY";

/** @kernel struct recovery_info, plus j_failed_commit and the revoke table. */
interface RecoveryInfo {
  startTransaction: number;
  /** First transaction not to replay; undefined until PASS_SCAN finds it (the kernel uses 0). */
  endTransaction: number | undefined;
  nrReplays: number;
  nrRevokes: number;
  nrRevokeHits: number;
  failedCommit: number | undefined;
  notes: string[];
}

/** tid_gt / tid_geq: transaction IDs wrap at 2^32, so compare their signed difference. */
const tidGt = (x: number, y: number): boolean => ((x - y) | 0) > 0;
const tidGeq = (x: number, y: number): boolean => ((x - y) | 0) >= 0;
const tidNext = (x: number): number => (x + 1) >>> 0;

/**
 * One walk of the log from s_start. Returns the error the pass ends with, if any: either
 * at once (the kernel's `goto failed`) or after finishing the walk (its `success`, for a
 * bad block tag checksum, so that everything else is still replayed).
 * @kernel do_one_pass (fs/jbd2/recovery.c)
 */
async function doOnePass(j: Journal, info: RecoveryInfo, pass: Pass): Promise<FsError | undefined> {
  const bs = j.blockSize;
  let nextCommitId = j.superblock.s_sequence;
  let nextLogBlock = j.superblock.s_start;
  let success: FsError | undefined;
  let crc32Sum = 0xffffffff; // the v1 transactional checksum, chained over a transaction
  let descrCsumSize = 0;
  let blockError = false;
  let needCheckCommitTime = false;
  let lastTransCommitTime = 0n;
  // Not in the kernel: a log whose blocks all carry one ID and no commit would loop
  // around the ring forever. No transaction can be longer than the ring.
  let blocksInTransaction = 0;
  if (pass === "PASS_SCAN") info.startTransaction = nextCommitId;

  scan: for (;;) {
    // Past the end PASS_SCAN found: the other passes stop there.
    if (pass !== "PASS_SCAN" && tidGeq(nextCommitId, info.endTransaction ?? nextCommitId)) break;
    if (++blocksInTransaction > j.last - j.first) {
      return new FsError("EFSCORRUPTED", `JBD2: transaction ${nextCommitId} runs around the whole log`, { block: j.bmap(nextLogBlock) });
    }
    const logBlock = nextLogBlock;
    const bh = await j.read(logBlock);
    if (bh === undefined) return pastJournal(j, logBlock);
    nextLogBlock = j.wrap(nextLogBlock + 1);

    // Anything but a jbd2 block of the expected transaction ends the log.
    const h = journalHeader.decode(bh);
    if (h.h_magic !== JBD2_MAGIC_NUMBER) break;
    if (h.h_sequence !== nextCommitId) break;

    // In C a `break` here leaves the switch and goes round the loop again, as in TS.
    switch (h.h_blocktype) {
      case JBD2_DESCRIPTOR_BLOCK: {
        if (j.csumV2or3) descrCsumSize = journalBlockTail.size;
        if (descrCsumSize > 0 && !descriptorBlockCsumVerify(j, bh)) {
          // PASS_SCAN can meet stale blocks of a lazily initialised journal: decide at the commit.
          if (pass !== "PASS_SCAN") {
            return new FsError("EFSBADCRC", `JBD2: Invalid checksum recovering block ${logBlock} in log`, { block: j.bmap(logBlock) });
          }
          needCheckCommitTime = true;
        }
        if (pass !== "PASS_REPLAY") {
          if (pass === "PASS_SCAN" && j.compatChecksum && !needCheckCommitTime && info.endTransaction === undefined) {
            // calc_chksums: the v1 checksum covers the descriptor and the blocks it describes.
            const n = countTags(j, bh);
            crc32Sum = journalCrc32Be(crc32Sum, bh);
            for (let i = 0; i < n; i++) {
              const ioBlock = nextLogBlock;
              nextLogBlock = j.wrap(nextLogBlock + 1);
              const obh = await j.read(ioBlock);
              if (obh === undefined) return pastJournal(j, ioBlock);
              crc32Sum = journalCrc32Be(crc32Sum, obh);
            }
            continue;
          }
          nextLogBlock = j.wrap(nextLogBlock + countTags(j, bh));
          continue;
        }

        // PASS_REPLAY: write each tagged block home.
        let tagp = journalHeader.size;
        while (tagp + j.tagBytes <= bs - descrCsumSize) {
          const tag = blockTag.decode(bh, tagp, Math.min(j.tagBytes, blockTag.size));
          const flags = tag.t_flags; // for tag3 the low half of its 32-bit t_flags, as the kernel reads it
          const ioBlock = nextLogBlock;
          nextLogBlock = j.wrap(nextLogBlock + 1);
          const obh = await j.read(ioBlock);
          if (obh === undefined) return pastJournal(j, ioBlock);
          const blocknr = j.is64bit ? tag.t_blocknr_high * 2 ** 32 + tag.t_blocknr : tag.t_blocknr;
          if (j.testRevoke(blocknr, nextCommitId)) {
            info.nrRevokeHits++;
          } else if (!blockTagCsumVerify(j, bh, tagp, obh, h.h_sequence)) {
            success = new FsError("EFSBADCRC", `JBD2: Invalid checksum recovering data block ${blocknr} in log`, { block: blocknr });
            info.notes.push(`${success.reason} (transaction ${nextCommitId}, log block ${ioBlock})`);
            blockError = true;
          } else if (blocknr >= j.fsBlocksCount) {
            // e2fsck's write would fail or grow an image file; neither restores anything.
            info.notes.push(`JBD2: block ${blocknr} of transaction ${nextCommitId} lies outside the volume; not replayed`);
          } else {
            await j.replayBlock(blocknr, obh, (flags & JBD2_FLAG_ESCAPE) !== 0);
            info.nrReplays++;
          }
          tagp += j.tagBytes;
          if ((flags & JBD2_FLAG_SAME_UUID) === 0) tagp += 16;
          if ((flags & JBD2_FLAG_LAST_TAG) !== 0) break;
        }
        continue;
      }

      case JBD2_COMMIT_BLOCK: {
        // An interrupted commit and a corrupt one look alike; the kernel's reasoning
        // (recovery.c): a bad commit checksum ends the log there, unless the commit
        // time goes backwards, which marks a stale block of an older use of the ring.
        const cbh = commitHeader.decode(bh);
        const commitTime = cbh.h_commit_sec;
        if (needCheckCommitTime) {
          // A descriptor or revoke block of this transaction failed its checksum in PASS_SCAN.
          if (commitTime >= lastTransCommitTime) {
            return new FsError("EFSBADCRC", `JBD2: Invalid checksum found in transaction ${nextCommitId}`, { block: j.bmap(logBlock) });
          }
          info.notes.push(`JBD2: Invalid checksum ignored in transaction ${nextCommitId}, likely stale data`);
          break scan;
        }
        let chksumError = false;
        if (pass === "PASS_SCAN" && j.compatChecksum) {
          const found = cbh.h_chksum[0] ?? 0;
          if (info.endTransaction !== undefined) {
            info.failedCommit = info.endTransaction;
            break;
          }
          const matches = crc32Sum === found && cbh.h_chksum_type === JBD2_CRC32_CHKSUM && cbh.h_chksum_size === JBD2_CRC32_CHKSUM_SIZE;
          const unused = cbh.h_chksum_type === 0 && cbh.h_chksum_size === 0 && found === 0;
          if (!matches && !unused) chksumError = true;
          crc32Sum = 0xffffffff;
        }
        if (chksumError || (pass === "PASS_SCAN" && !commitBlockCsumVerify(j, bh))) {
          if (commitTime < lastTransCommitTime) {
            info.notes.push(`JBD2: Invalid checksum ignored in transaction ${nextCommitId}, likely stale data`);
            break scan;
          }
          info.endTransaction = nextCommitId;
          if (!j.asyncCommit) {
            info.failedCommit = nextCommitId;
            break;
          }
          info.notes.push(`JBD2: commit block of transaction ${nextCommitId} fails its checksum; the log ends before it (async_commit)`);
        }
        if (pass === "PASS_SCAN") lastTransCommitTime = commitTime;
        nextCommitId = tidNext(nextCommitId);
        blocksInTransaction = 0;
        continue;
      }

      case JBD2_REVOKE_BLOCK: {
        // A bad revoke block checksum is judged at the commit, like a descriptor's.
        if (pass === "PASS_SCAN" && !descriptorBlockCsumVerify(j, bh)) needCheckCommitTime = true;
        if (pass !== "PASS_REVOKE") continue;
        const e = scanRevokeRecords(j, bh, nextCommitId, info);
        if (e !== undefined) return new FsError(e.code, e.reason, { block: j.bmap(logBlock) });
        continue;
      }

      default:
        break scan;
    }
  }

  // done: the log ended here (or where PASS_SCAN said it would).
  if (pass === "PASS_SCAN") {
    info.endTransaction ??= nextCommitId;
  } else if (info.endTransaction !== nextCommitId) {
    success ??= new FsError("EIO", `JBD2: recovery pass ${pass} ended at transaction ${nextCommitId}, expected ${info.endTransaction}`);
  }
  if (blockError) success ??= new FsError("EIO", "JBD2: recovery found bad blocks");
  return success;
}

/** jread past j_total_len: a log position the journal superblock cannot have meant. */
function pastJournal(j: Journal, offset: number): FsError {
  return new FsError("EFSCORRUPTED", `JBD2: corrupted journal superblock: log block ${offset} is past the journal's ${j.totalLen} blocks`, { block: j.bmap(0) });
}

/** Tags in use in a descriptor block. @kernel count_tags */
function countTags(j: Journal, bh: Uint8Array): number {
  const size = j.blockSize - (j.csumV2or3 ? journalBlockTail.size : 0);
  let nr = 0;
  let tagp = journalHeader.size;
  while (tagp + j.tagBytes <= size) {
    const flags = blockTag.decode(bh, tagp, Math.min(j.tagBytes, blockTag.size)).t_flags;
    nr++;
    tagp += j.tagBytes;
    if ((flags & JBD2_FLAG_SAME_UUID) === 0) tagp += 16;
    if ((flags & JBD2_FLAG_LAST_TAG) !== 0) break;
  }
  return nr;
}

/**
 * Record every block a revoke block names against transaction `sequence`. Returns EINVAL
 * for an r_count that does not fit the block (nothing of that block is recorded then).
 * @kernel scan_revoke_records
 */
function scanRevokeRecords(j: Journal, bh: Uint8Array, sequence: number, info: RecoveryInfo): FsError | undefined {
  const rcount = revokeHeader.decode(bh).r_count;
  const csumSize = j.csumV2or3 ? journalBlockTail.size : 0;
  if (rcount > j.blockSize - csumSize) {
    return new FsError("EINVAL", `JBD2: revoke block of transaction ${sequence} claims ${rcount} bytes of a ${j.blockSize}-byte block`);
  }
  const recordLen = j.is64bit ? 8 : 4;
  const dv = new DataView(bh.buffer, bh.byteOffset, bh.byteLength);
  for (let offset = revokeHeader.size; offset + recordLen <= rcount; offset += recordLen) {
    const blocknr = recordLen === 4 ? dv.getUint32(offset) : dv.getUint32(offset) * 2 ** 32 + dv.getUint32(offset + 4);
    j.setRevoke(blocknr, sequence);
    info.nrRevokes++;
  }
  return undefined;
}

/** @kernel jbd2_descriptor_block_csum_verify (also used for revoke blocks) */
function descriptorBlockCsumVerify(j: Journal, bh: Uint8Array): boolean {
  if (!j.csumV2or3) return true;
  const provided = journalBlockTail.decode(bh, j.blockSize - journalBlockTail.size).t_checksum;
  return provided === journalBlockTailChecksum(bh, j.blockSize, j.csumSeed);
}

/** @kernel jbd2_commit_block_csum_verify */
function commitBlockCsumVerify(j: Journal, bh: Uint8Array): boolean {
  if (!j.csumV2or3) return true;
  return commitHeader.decode(bh).h_chksum[0] === journalCommitBlockChecksum(bh, j.blockSize, j.csumSeed);
}

/** The tag's checksum of the logged (still escaped) block. @kernel jbd2_block_tag_csum_verify */
function blockTagCsumVerify(j: Journal, bh: Uint8Array, tagp: number, data: Uint8Array, sequence: number): boolean {
  if (!j.csumV2or3) return true;
  const csum32 = journalBlockTagChecksum(data, j.blockSize, j.csumSeed, sequence);
  if (j.csumV3) return blockTag3.decode(bh, tagp).t_checksum === csum32;
  return blockTag.decode(bh, tagp, Math.min(j.tagBytes, blockTag.size)).t_checksum === (csum32 & 0xffff);
}

/**
 * The kernel replays fast-commit blocks after the log (fc_do_one_pass, ext4_fc_replay),
 * which this engine does not implement. A fast-commit area whose first block is the head
 * of the commit right after the log would be lost by a plain replay: refuse it, before
 * anything is written. A head of an older ID is stale and ignored, as the kernel does.
 */
async function refuseFastCommitReplay(j: Journal, sb: Superblock, info: RecoveryInfo): Promise<void> {
  if (!j.fastCommit || !hasCompat(sb, EXT4_FEATURE_COMPAT_FAST_COMMIT)) return;
  const fcFirst = j.last + 1; // j_fc_first
  if (fcFirst >= j.totalLen) return;
  const bh = await j.read(fcFirst);
  if (bh === undefined) return;
  const dv = new DataView(bh.buffer, bh.byteOffset, bh.byteLength);
  // struct ext4_fc_tl { __le16 fc_tag; __le16 fc_len; } then struct ext4_fc_head { fc_features, fc_tid }.
  if (dv.getUint16(0, true) === EXT4_FC_TAG_HEAD && dv.getUint32(8, true) === info.endTransaction) {
    throw new FsError("EOPNOTSUPP", `Cannot recover the journal: it holds fast commits of transaction ${info.endTransaction}, which ext4ts cannot replay; run e2fsck`, { block: j.bmap(fcFirst) });
  }
}

// ---------------------------------------------------------------------------------------------
// The journal: superblock, block map, log reads, replay writes, revoke table

interface JournalRun {
  lblk: number;
  pblk: number;
  len: number;
}

class Journal {
  readonly cache: BufferCache;
  readonly blockSize: number;
  readonly ino: number;
  readonly fsBlocksCount: number;
  readonly superblock: JournalSuperblock;
  /** j_total_len, j_first, j_last. */
  readonly totalLen: number;
  readonly first: number;
  readonly last: number;
  readonly csumV2or3: boolean;
  readonly csumV3: boolean;
  readonly is64bit: boolean;
  readonly compatChecksum: boolean;
  readonly asyncCommit: boolean;
  readonly fastCommit: boolean;
  /** j_csum_seed: crc32c(~0, s_uuid). */
  readonly csumSeed: number;
  readonly tagBytes: number;
  readonly #runs: readonly JournalRun[];
  /** Revoked block -> latest transaction revoking it. @kernel j_revoke_table */
  readonly #revoke = new Map<number, number>();
  /** Readahead window: journal blocks [#winFirst, #winFirst + #winCount) at #winPblk. */
  readonly #win: Uint8Array;
  #winFirst = 0;
  #winCount = 0;
  #winPblk = 0;

  private constructor(cache: BufferCache, sb: Superblock, ino: number, runs: JournalRun[], jsb: JournalSuperblock, totalLen: number, last: number) {
    this.cache = cache;
    this.blockSize = cache.blockSize;
    this.ino = ino;
    this.fsBlocksCount = sbBlocksCount(sb);
    this.#runs = runs;
    this.superblock = jsb;
    this.totalLen = totalLen;
    this.first = jsb.s_first;
    this.last = last;
    const v2 = jsb.h_blocktype === JBD2_SUPERBLOCK_V2; // a v1 superblock has no feature words
    const incompat = v2 ? jsb.s_feature_incompat : 0;
    this.csumV3 = (incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3) !== 0;
    this.csumV2or3 = this.csumV3 || (incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2) !== 0;
    this.is64bit = (incompat & JBD2_FEATURE_INCOMPAT_64BIT) !== 0;
    this.asyncCommit = (incompat & JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT) !== 0;
    this.fastCommit = (incompat & JBD2_FEATURE_INCOMPAT_FAST_COMMIT) !== 0;
    this.compatChecksum = v2 && (jsb.s_feature_compat & JBD2_FEATURE_COMPAT_CHECKSUM) !== 0;
    this.csumSeed = journalChecksumSeed(jsb.s_uuid);
    this.tagBytes = journalTagBytes({ s_feature_incompat: incompat });
    this.#win = new Uint8Array(Math.max(1, Math.floor(READAHEAD_BYTES / this.blockSize)) * this.blockSize);
  }

  /**
   * Find, map and check the journal: the inode, its blocks, the journal superblock.
   * @kernel e2fsck_get_journal + e2fsck_journal_load (e2fsprogs), jbd2_journal_load
   */
  static async load(cache: BufferCache, sb: Superblock, policy: RecoveryPolicy, notes: string[]): Promise<Journal> {
    const bs = cache.blockSize;
    if (!isNullUuid(sb.s_journal_uuid) || (sb.s_journal_inum === 0 && sb.s_journal_dev !== 0)) {
      throw new FsError("EOPNOTSUPP", "Cannot recover the journal: it is on an external device, which ext4ts does not support");
    }
    if (!hasCompat(sb, EXT4_FEATURE_COMPAT_HAS_JOURNAL) || sb.s_journal_inum === 0) {
      throw new FsError("EFSCORRUPTED", `Cannot recover the journal: the superblock names no journal inode (has_journal ${hasCompat(sb, EXT4_FEATURE_COMPAT_HAS_JOURNAL) ? "set" : "clear"}, s_journal_inum ${sb.s_journal_inum})`, { block: SUPERBLOCK_OFFSET / 1024 });
    }
    const ino = sb.s_journal_inum;
    const { raw, inodeSeed } = await readInode(cache, sb, ino, policy, notes);
    const bad = (why: string, block?: number): FsError =>
      new FsError("EFSCORRUPTED", `Bad journal inode: ${why}`, block === undefined ? { ino } : { ino, block });
    if (raw.i_links_count === 0 || (raw.i_mode & S_IFMT) !== S_IFREG) throw bad(`mode 0o${raw.i_mode.toString(8)} with ${raw.i_links_count} links is not a regular file in use`);
    if ((raw.i_flags & EXT4_INLINE_DATA_FL) !== 0) throw bad("it has inline data");
    const size = raw.i_size_high * 2 ** 32 + raw.i_size_lo;
    const sizeBlocks = Math.floor(size / bs);
    if (sizeBlocks < JBD2_MIN_JOURNAL_BLOCKS) throw bad(`${sizeBlocks} blocks is less than the minimum of ${JBD2_MIN_JOURNAL_BLOCKS}`);
    if (sizeBlocks >= 2 ** 32) throw bad(`i_size ${size} is past what a journal can address`);

    const runs = new RunList();
    if ((raw.i_flags & EXT4_EXTENTS_FL) !== 0) await mapExtents(cache, sb, ino, raw, inodeSeed, sizeBlocks, runs, policy, notes);
    else await mapIndirect(cache, sb, ino, raw, sizeBlocks, runs);

    // The journal superblock, block 0 of the journal.
    const sbPblk = runs.bmap(0);
    const jsbBlock = (await cache.get(sbPblk)).slice();
    const jsb = journalSuperblock.decode(jsbBlock);
    const badJsb = (why: string, code: Errno = "EFSCORRUPTED"): FsError =>
      new FsError(code, `Bad journal superblock: ${why}`, { ino, block: sbPblk });
    if (jsb.h_magic !== JBD2_MAGIC_NUMBER) throw badJsb(`magic is 0x${jsb.h_magic.toString(16).padStart(8, "0")}, expected 0x${JBD2_MAGIC_NUMBER.toString(16)}`);
    switch (jsb.h_blocktype) {
      case JBD2_SUPERBLOCK_V1:
        break;
      case JBD2_SUPERBLOCK_V2:
        if (jsb.s_nr_users > 1) throw badJsb(`${jsb.s_nr_users} filesystems share it, which ext4ts does not support`, "EOPNOTSUPP");
        break;
      case JBD2_DESCRIPTOR_BLOCK:
      case JBD2_COMMIT_BLOCK:
      case JBD2_REVOKE_BLOCK:
        throw badJsb(`block type ${jsb.h_blocktype} is a log block, not a superblock`);
      default:
        throw badJsb(`unknown superblock version (block type ${jsb.h_blocktype})`, "EOPNOTSUPP");
    }
    if (jsb.h_blocktype === JBD2_SUPERBLOCK_V2) {
      const unknown = jsb.s_feature_incompat & ~JBD2_KNOWN_INCOMPAT_FEATURES;
      if (unknown !== 0) throw badJsb(`unknown incompatible features 0x${(unknown >>> 0).toString(16)}`, "EOPNOTSUPP");
      if (jsb.s_feature_ro_compat !== 0) throw badJsb(`unknown read-only compatible features 0x${(jsb.s_feature_ro_compat >>> 0).toString(16)}`, "EOPNOTSUPP");
      const v2 = (jsb.s_feature_incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2) !== 0;
      const v3 = (jsb.s_feature_incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3) !== 0;
      if (v2 && v3) throw badJsb("both csum v2 and csum v3 are set");
      if ((v2 || v3) && (jsb.s_feature_compat & JBD2_FEATURE_COMPAT_CHECKSUM) !== 0) throw badJsb("csum v1 is set together with csum v2/v3");
      if (v2 || v3) {
        if (jsb.s_checksum_type !== JBD2_CRC32C_CHKSUM) throw badJsb(`checksum type ${jsb.s_checksum_type}, expected ${JBD2_CRC32C_CHKSUM} (crc32c)`);
        const want = journalSuperblockChecksum(jsbBlock);
        if (want !== jsb.s_checksum) throw badJsb(`checksum is 0x${hex32(jsb.s_checksum)}, expected 0x${hex32(want)}`, "EFSBADCRC");
      }
    }
    if (jsb.s_blocksize !== bs) throw badJsb(`block size ${jsb.s_blocksize} differs from the filesystem's ${bs}`);
    if (jsb.s_maxlen > sizeBlocks) throw badJsb(`s_maxlen ${jsb.s_maxlen} is longer than the journal inode's ${sizeBlocks} blocks (journal too short)`);
    const totalLen = jsb.s_maxlen;
    let last = totalLen;
    if (jsb.h_blocktype === JBD2_SUPERBLOCK_V2 && (jsb.s_feature_incompat & JBD2_FEATURE_INCOMPAT_FAST_COMMIT) !== 0) {
      const fc = jsb.s_num_fc_blks !== 0 ? jsb.s_num_fc_blks : JBD2_DEFAULT_FAST_COMMIT_BLOCKS;
      if (totalLen - fc < JBD2_MIN_JOURNAL_BLOCKS) throw badJsb(`${fc} fast commit blocks leave less than ${JBD2_MIN_JOURNAL_BLOCKS} for the log`);
      last = totalLen - fc;
    }
    // journal_check_superblock: the ring must hold something, and the log start lie in it.
    if (jsb.s_first === 0 || jsb.s_first >= last) throw badJsb(`s_first ${jsb.s_first} is outside the log (1..${last - 1})`);
    if (jsb.s_start !== 0 && (jsb.s_start < jsb.s_first || jsb.s_start >= last)) throw badJsb(`s_start ${jsb.s_start} is outside the log (${jsb.s_first}..${last - 1})`);
    return new Journal(cache, sb, ino, runs.runs, jsb, totalLen, last);
  }

  /** Physical block of journal block `lblk`. @kernel jbd2_journal_bmap */
  bmap(lblk: number): number {
    const r = this.#runOf(lblk);
    return r.pblk + (lblk - r.lblk);
  }

  /** Keep a log position inside the ring. @kernel wrap() (recovery.c) */
  wrap(block: number): number {
    return block >= this.last ? block - (this.last - this.first) : block;
  }

  /**
   * A copy of journal block `offset`, or undefined past j_total_len (the kernel's jread
   * returns -EFSCORRUPTED there). Reads ahead along the physically contiguous run.
   * @kernel jread + do_readahead
   */
  async read(offset: number): Promise<Uint8Array | undefined> {
    if (offset >= this.totalLen) return undefined;
    const bs = this.blockSize;
    if (offset < this.#winFirst || offset >= this.#winFirst + this.#winCount) {
      const r = this.#runOf(offset);
      const n = Math.min(this.#win.length / bs, r.lblk + r.len - offset, this.totalLen - offset);
      this.#winCount = 0; // stays empty if the read fails
      const pblk = r.pblk + (offset - r.lblk);
      await this.cache.readUncachedInto(pblk, this.#win.subarray(0, n * bs));
      this.#winFirst = offset;
      this.#winCount = n;
      this.#winPblk = pblk;
    }
    const at = (offset - this.#winFirst) * bs;
    return this.#win.slice(at, at + bs);
  }

  /** Write a logged block home, restoring the magic an escape zeroed. */
  async replayBlock(blocknr: number, data: Uint8Array, escaped: boolean): Promise<void> {
    const nbh = await this.cache.pinNew(blocknr);
    try {
      nbh.set(data);
      if (escaped) new DataView(nbh.buffer, nbh.byteOffset, 4).setUint32(0, JBD2_MAGIC_NUMBER);
    } finally {
      this.cache.unpin(blocknr);
    }
    // A (corrupt) tag may point into the journal itself: later log reads must see the write.
    if (blocknr >= this.#winPblk && blocknr < this.#winPblk + this.#winCount) this.#winCount = 0;
  }

  /** Keep the latest transaction that revoked `blocknr`. @kernel jbd2_journal_set_revoke */
  setRevoke(blocknr: number, sequence: number): void {
    const have = this.#revoke.get(blocknr);
    if (have === undefined || tidGt(sequence, have)) this.#revoke.set(blocknr, sequence);
  }

  /** Is the copy of `blocknr` logged by transaction `sequence` revoked (by it or a later one)? @kernel jbd2_journal_test_revoke */
  testRevoke(blocknr: number, sequence: number): boolean {
    const have = this.#revoke.get(blocknr);
    return have !== undefined && !tidGt(sequence, have);
  }

  /**
   * Mark the journal empty: s_start 0 and the given s_sequence, checksum refreshed.
   * @kernel e2fsck_journal_release (reset = 1)
   */
  async release(sequence: number): Promise<void> {
    const pblk = this.bmap(0);
    await this.cache.withBlock(pblk, (b) => {
      journalSuperblock.encode({ s_sequence: sequence, s_start: 0 }, b);
      if (this.csumV2or3) journalSuperblock.encode({ s_checksum: journalSuperblockChecksum(b) }, b);
      this.cache.markDirty(pblk);
    });
  }

  #runOf(lblk: number): JournalRun {
    const runs = this.#runs;
    let lo = 0;
    let hi = runs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = runs[mid]!; // lo <= mid <= hi < runs.length
      if (lblk < r.lblk) hi = mid - 1;
      else if (lblk >= r.lblk + r.len) lo = mid + 1;
      else return r;
    }
    throw new FsError("EFSCORRUPTED", `JBD2: bad block at offset ${lblk}: the journal inode does not map it`, { ino: this.ino });
  }
}

/** Physically contiguous runs of journal blocks, appended in logical order. */
class RunList {
  readonly runs: JournalRun[] = [];

  add(lblk: number, pblk: number, len: number): void {
    const l = this.runs.at(-1);
    if (l !== undefined && l.lblk + l.len === lblk && l.pblk + l.len === pblk) l.len += len;
    else this.runs.push({ lblk, pblk, len });
  }

  /** Logical blocks mapped from 0 without a gap. */
  get mapped(): number {
    const l = this.runs.at(-1);
    return l === undefined ? 0 : l.lblk + l.len;
  }

  bmap(lblk: number): number {
    const r = this.runs.find((x) => lblk >= x.lblk && lblk < x.lblk + x.len);
    if (r === undefined) throw new FsError("EFSCORRUPTED", `JBD2: bad block at offset ${lblk}: the journal inode does not map it`);
    return r.pblk + (lblk - r.lblk);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the journal inode without mounting (e2fsck_get_journal)

async function readFsSuperblock(dev: BlockDevice): Promise<Superblock> {
  if (dev.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) {
    throw new FsError("EINVAL", `Cannot recover the journal of ${dev.description}: ${dev.size} bytes is too small for an ext2/3/4 volume`);
  }
  const sb = superblock.decode(await dev.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE));
  if (sb.s_magic !== 0xef53) throw new FsError("EINVAL", `Cannot recover the journal of ${dev.description}: not an ext2/3/4 volume`);
  const problems = validateSuperblock(sb, dev.size);
  if (problems.length > 0) throw new FsError("EFSCORRUPTED", `Cannot recover the journal of ${dev.description}: bad superblock: ${problems.join("; ")}`, { block: SUPERBLOCK_OFFSET / 1024 });
  return sb;
}

/**
 * The raw journal inode and its checksum seed (undefined without metadata_csum). A bad
 * inode checksum is a note under the "e2fsck" policy (e2fsck opens the journal with
 * checksum errors ignored) and EFSBADCRC under the "kernel" policy (ext4_iget).
 */
async function readInode(cache: BufferCache, sb: Superblock, ino: number, policy: RecoveryPolicy, notes: string[]): Promise<{ raw: RawInode; inodeSeed: number | undefined }> {
  if (ino > sb.s_inodes_count) throw new FsError("EFSCORRUPTED", `Bad journal inode number ${ino}: the volume has ${sb.s_inodes_count} inodes`, { ino });
  const bs = cache.blockSize;
  const isz = sbInodeSize(sb);
  const group = Math.floor((ino - 1) / sb.s_inodes_per_group);
  const index = (ino - 1) % sb.s_inodes_per_group;
  const loc = groupDescLocation(sb, group);
  const gd = decodeGroupDesc(await cache.get(loc.block), loc.offset, descSize(sb));
  const table = inodeTable(gd, descSize(sb));
  const block = table + Math.floor((index * isz) / bs);
  if (table <= sb.s_first_data_block || block >= sbBlocksCount(sb)) {
    throw new FsError("EFSCORRUPTED", `Cannot read journal inode ${ino}: group ${group}'s inode table at block ${table} is outside the volume`, { ino, block: loc.block });
  }
  const offset = (index * isz) % bs;
  const buf = (await cache.get(block)).slice(offset, offset + isz);
  const raw = decodeInode(buf, 0, isz);
  if (!hasRoCompat(sb, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) return { raw, inodeSeed: undefined };
  const fsSeed = fsChecksumSeed(sb.s_uuid, hasIncompat(sb, EXT4_FEATURE_INCOMPAT_CSUM_SEED), sb.s_checksum_seed);
  const inodeSeed = inodeChecksumSeed(fsSeed, ino, raw.i_generation);
  if (!verifyInodeChecksum(buf, 0, isz, inodeSeed)) {
    checksumProblem(policy, notes, new FsError("EFSBADCRC", "Journal inode checksum does not match", { ino, block }));
  }
  return { raw, inodeSeed };
}

function checksumProblem(policy: RecoveryPolicy, notes: string[], e: FsError): void {
  if (policy === "kernel") throw e;
  notes.push(e.message);
}

/**
 * Map journal blocks [0, count) through the inode's extent tree, checking each node as
 * the kernel does. A hole in that range is corruption: a journal is fully allocated.
 */
async function mapExtents(
  cache: BufferCache, sb: Superblock, ino: number, raw: RawInode, inodeSeed: number | undefined,
  count: number, out: RunList, policy: RecoveryPolicy, notes: string[],
): Promise<void> {
  const bs = cache.blockSize;
  const geometry = { blocksCount: sbBlocksCount(sb), firstDataBlock: sb.s_first_data_block };
  const walk = async (node: Uint8Array, size: number, at: { depth?: number; firstKey?: number; block?: number }): Promise<void> => {
    const n = decodeExtentNode(node, size, {
      ...geometry,
      isRoot: at.block === undefined,
      ...(at.depth === undefined ? {} : { expectedDepth: at.depth }),
      ...(at.firstKey === undefined ? {} : { firstKey: at.firstKey }),
      ctx: at.block === undefined ? { ino } : { ino, block: at.block },
    });
    if ("extents" in n) {
      for (const e of n.extents) {
        if (e.lblk >= count) break;
        if (e.lblk !== out.mapped) throw holeAt(ino, out.mapped);
        out.add(e.lblk, e.pblk, Math.min(e.len, count - e.lblk));
      }
      return;
    }
    for (const idx of n.indexes) {
      if (idx.lblk >= count) break;
      const child = (await cache.get(idx.pblk)).slice();
      if (inodeSeed !== undefined) {
        const tailOffset = extentTailOffset(extentHeader.decode(child));
        if (tailOffset + extentTail.size <= bs && extentTail.decode(child, tailOffset).et_checksum !== extentBlockChecksum(child, tailOffset, inodeSeed)) {
          checksumProblem(policy, notes, new FsError("EFSBADCRC", "Journal extent block checksum does not match", { ino, block: idx.pblk }));
        }
      }
      await walk(child, bs, { depth: n.depth - 1, firstKey: idx.lblk, block: idx.pblk });
    }
  };
  await walk(raw.i_block, EXTENT_ROOT_BYTES, {});
  if (out.mapped < count) throw holeAt(ino, out.mapped);
}

function holeAt(ino: number, lblk: number): FsError {
  return new FsError("EFSCORRUPTED", `Bad journal inode: journal block ${lblk} is not mapped (the journal must be fully allocated)`, { ino });
}

/**
 * Map journal blocks [0, count) through an ext2/ext3 block map (12 direct pointers, then
 * single, double and triple indirect blocks). A zero pointer or one outside the volume,
 * for a data or an indirect block, is corruption, as e2fsck's process_journal_block says.
 */
async function mapIndirect(cache: BufferCache, sb: Superblock, ino: number, raw: RawInode, count: number, out: RunList): Promise<void> {
  const per = cache.blockSize / 4;
  const blocksCount = sbBlocksCount(sb);
  const check = (blk: number, lblk: number, what: string): void => {
    if (blk === 0) throw holeAt(ino, lblk);
    if (blk < sb.s_first_data_block || blk >= blocksCount) {
      throw new FsError("EFSCORRUPTED", `Bad journal inode: ${what} for journal block ${lblk} is block ${blk}, outside the volume`, { ino });
    }
  };
  let lblk = 0;
  const walk = async (blk: number, level: number): Promise<void> => {
    check(blk, lblk, `level ${level} indirect block`);
    const b = (await cache.get(blk)).slice();
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < per && lblk < count; i++) {
      const p = dv.getUint32(i * 4, true);
      if (level > 1) {
        await walk(p, level - 1);
      } else {
        check(p, lblk, "block pointer");
        out.add(lblk++, p, 1);
      }
    }
  };
  for (let i = 0; i < EXT4_NDIR_BLOCKS && lblk < count; i++) {
    const p = iBlockWord(raw, i);
    check(p, lblk, "block pointer");
    out.add(lblk++, p, 1);
  }
  for (let level = 1; level <= 3 && lblk < count; level++) await walk(iBlockWord(raw, EXT4_NDIR_BLOCKS + level - 1), level);
  if (lblk < count) throw holeAt(ino, lblk);
}

/**
 * Clear needs_recovery in the primary superblock, as it reads after the replay (which may
 * have rewritten it), and refresh its checksum; after a recovery error also clear
 * EXT4_VALID_FS, so the volume gets a full check. Backups are left alone, as e2fsck's
 * EXT2_FLAG_MASTER_SB_ONLY leaves them. @e2fsprogs e2fsck_clear_recover
 */
async function clearRecoverFlag(cache: BufferCache, error: boolean): Promise<void> {
  const bs = cache.blockSize;
  const block = Math.floor(SUPERBLOCK_OFFSET / bs);
  const at = SUPERBLOCK_OFFSET % bs;
  await cache.withBlock(block, (b) => {
    const raw = b.subarray(at, at + SUPERBLOCK_SIZE);
    const now = superblock.decode(raw);
    superblock.encode({ s_feature_incompat: (now.s_feature_incompat & ~EXT4_FEATURE_INCOMPAT_RECOVER) >>> 0 }, raw);
    if (error) superblock.encode({ s_state: now.s_state & ~EXT4_VALID_FS & 0xffff }, raw);
    if (hasRoCompat(now, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) superblock.encode({ s_checksum: superblockChecksum(raw) }, raw);
    cache.markDirty(block);
  });
}

function isNullUuid(u: Uint8Array): boolean {
  return u.every((b) => b === 0);
}

function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}
