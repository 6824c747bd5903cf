/**
 * Before pass 1 (e2fsck unix.c, super.c check_super_block and check_resize_inode,
 * journal.c e2fsck_check_ext3_journal): whether a clean volume needs checking at all, the
 * journal superblock, and the superblock and group descriptor fields.
 *
 * As in e2fsck, what is found here is reported but does not make the verdict "not clean"
 * (e2fsck marks the volume valid again before pass 1), except a journal e2fsck cannot
 * use: then it gives up ("Cannot proceed with file system check", exit 12).
 */

import { EXT2_FLAGS_SIGNED_HASH, EXT2_FLAGS_UNSIGNED_HASH } from "../format/dirhash.js";
import { journalSuperblockChecksum, mmpChecksum } from "../format/checksum.js";
import { EXT4_MMP_MAGIC, EXT4_MMP_SEQ_CLEAN, mmpStruct } from "../format/mmp.js";
import {
  EXT4_BG_BLOCK_UNINIT, EXT4_BG_INODE_UNINIT, freeInodesCount as gdFreeInodes, itableUnused, setBlockBitmap, setInodeBitmap, setInodeTable,
  setItableUnused,
} from "../format/group_desc.js";
import { EXT4_BAD_INO, EXT4_EXTENTS_FL, EXT4_GOOD_OLD_INODE_SIZE, EXT4_INLINE_DATA_FL, EXT4_JOURNAL_INO, EXT4_ROOT_INO, S_IFMT, S_IFREG, decodeInode, inodeStruct, type RawInode } from "../format/inode.js";
import {
  JBD2_COMMIT_BLOCK, JBD2_CRC32C_CHKSUM, JBD2_DESCRIPTOR_BLOCK, JBD2_FEATURE_COMPAT_CHECKSUM, JBD2_REVOKE_BLOCK, JBD2_FEATURE_INCOMPAT_CSUM_V2, JBD2_FEATURE_INCOMPAT_CSUM_V3,
  JBD2_KNOWN_INCOMPAT_FEATURES, JBD2_MAGIC_NUMBER, JBD2_MIN_JOURNAL_BLOCKS, JBD2_SUPERBLOCK_V1, JBD2_SUPERBLOCK_V2,
  decodeJournalSuperblock, journalHasCsumV2or3, newJournalSuperblock,
} from "../format/jbd2.js";
import { EXT4_ERROR_FS, EXT4_FEATURE_COMPAT_HAS_JOURNAL, EXT4_FEATURE_INCOMPAT_RECOVER, EXT4_VALID_FS, mmpBlock } from "../format/superblock.js";
import { groupHasSuperblock } from "../format/group_desc.js";
import type { QuotaTypeIndex } from "../format/quota.js";
import type { CheckContext } from "./context.js";
import { iterateBlockMap, mapLogical } from "./blockmap.js";
import { unlinkFromRoot } from "./lost_found.js";
import { listDir, readInode, readInodeBytes } from "./paths.js";
import { inodeAllocStats } from "./repair.js";
import {
  PR_0_ADD_UUID, PR_0_BACKUP_JNL, PR_0_DIRHASH_HINT, PR_0_BAD_MIN_EXTRA_ISIZE, PR_0_ERR_MOVE_JOURNAL, PR_0_MOVE_JOURNAL, PR_0_BAD_WANT_EXTRA_ISIZE, PR_0_BB_NOT_GROUP, PR_0_BB_UNINIT_LAST, PR_0_CANT_FIND_JOURNAL,
  PR_0_CLEAR_RESIZE_INODE, PR_0_DISABLE_RESIZE_INODE, PR_0_FIRST_META_BG_TOO_BIG, PR_0_GDT_CSUM, PR_0_GDT_CSUM_LATCH,
  PR_0_GDT_ITABLE_UNUSED, PR_0_GDT_UNINIT, PR_0_IB_NOT_GROUP, PR_0_INODE_COUNT_WRONG, PR_0_INVALID_QUOTA_INO,
  PR_0_ITABLE_NOT_GROUP, PR_0_JOURNAL_ABORT, PR_0_JOURNAL_BAD_INODE, PR_0_JOURNAL_BAD_SUPER, PR_0_JOURNAL_HAS_JOURNAL,
  PR_0_JOURNAL_RECOVERY_CLEAR, PR_0_JOURNAL_RECOVER_SET, PR_0_JOURNAL_UNSUPP_INCOMPAT, PR_0_JOURNAL_UNSUPP_MULTIFS,
  PR_0_JOURNAL_UNSUPP_ROCOMPAT, PR_0_JOURNAL_UNSUPP_VERSION, PR_0_CLEAR_V2_JOURNAL, PR_0_MMP_CSUM_INVALID, PR_0_MMP_INVALID_BLK, PR_0_MMP_INVALID_MAGIC, PR_0_NONZERO_RESERVED_GDT_BLOCKS, PR_0_RELOCATE_HINT,
  PR_0_RESIZE_INODE_INVALID,
} from "./problem.js";


/** Why a volume marked clean must be checked anyway, or null to skip it. @e2fsprogs check_if_skip */
export function reasonToCheck(c: CheckContext): string | null {
  const sb = c.v.sb;
  if ((sb.s_state & EXT4_ERROR_FS) !== 0) return " contains a file system with errors";
  if ((sb.s_state & EXT4_VALID_FS) === 0) return " was not cleanly unmounted";
  if (sb.s_max_mnt_count > 0 && sb.s_max_mnt_count < 0x8000 && sb.s_mnt_count >= sb.s_max_mnt_count) {
    return ` has been mounted ${sb.s_mnt_count} times without being checked`;
  }
  const lastcheck = sb.s_lastcheck + sb.s_lastcheck_hi * 2 ** 32;
  if (sb.s_checkinterval !== 0 && c.now < lastcheck) return " has filesystem last checked time in the future";
  if (sb.s_checkinterval !== 0 && c.now - lastcheck >= sb.s_checkinterval) {
    return ` has gone ${Math.floor((c.now - lastcheck) / (3600 * 24))} days without being checked`;
  }
  return null;
}

/** The journal inode's blocks as e2fsck_get_journal wants them: all mapped, covering i_size. */
async function journalInodeUsable(c: CheckContext, raw: RawInode): Promise<boolean> {
  const v = c.v;
  if (raw.i_links_count === 0 || (raw.i_mode & S_IFMT) !== S_IFREG) return false;
  const size = raw.i_size_lo + raw.i_size_high * 2 ** 32;
  if (Math.floor(size / v.blockSize) < JBD2_MIN_JOURNAL_BLOCKS) return false;
  let last = -1;
  if (raw.i_flags & EXT4_EXTENTS_FL) {
    // Walk the leaves: every extent inside the volume, contiguous logical coverage.
    let ok = true;
    const walk = async (node: Uint8Array, level: number): Promise<void> => {
      const u16 = (o: number): number => node[o]! | (node[o + 1]! << 8);
      const u32 = (o: number): number => (node[o]! | (node[o + 1]! << 8) | (node[o + 2]! << 16) | (node[o + 3]! << 24)) >>> 0;
      if (u16(0) !== 0xf30a || level > 5) {
        ok = false;
        return;
      }
      const entries = Math.min(u16(2), Math.floor((node.length - 12) / 12));
      for (let i = 0; i < entries && ok; i++) {
        const at = 12 + i * 12;
        if (u16(6) === 0) {
          const lblk = u32(at);
          const rl = u16(at + 4);
          const len = rl > 32768 ? rl - 32768 : rl;
          const pblk = u32(at + 8) + u16(at + 6) * 2 ** 32;
          if (pblk < v.firstDataBlock || pblk + len > v.blocksCount || lblk !== last + 1) {
            ok = false;
            return;
          }
          last = lblk + len - 1;
        } else {
          const pblk = u32(at + 4) + u16(at + 8) * 2 ** 32;
          if (!v.blockValid(pblk)) {
            ok = false;
            return;
          }
          await walk((await v.readBlock(pblk)).slice(), level + 1);
        }
      }
    };
    try {
      await walk(raw.i_block, 0);
    } catch {
      ok = false;
    }
    if (!ok) return false;
  } else {
    const st = { aborted: false };
    const err = await iterateBlockMap(v, raw, true, (b, cnt) => {
      if (st.aborted) return false;
      if (b === 0 || b < v.firstDataBlock || b >= v.blocksCount) {
        st.aborted = true;
        return false;
      }
      if (cnt >= 0) last = cnt;
      return true;
    });
    if (err !== undefined && !st.aborted) return false;
  }
  return (last + 1) * v.blockSize >= size;
}

/** A journal inode rebuilt from the superblock's backup (s_jnl_blocks), as e2fsck does. @e2fsprogs e2fsck_get_journal (try_backup_journal) */
function backupJournalInode(c: CheckContext): RawInode | null {
  const sb = c.v.sb;
  if (sb.s_jnl_backup_type !== 1) return null;
  const bytes = new Uint8Array(c.v.inodeSize);
  const raw = decodeInode(bytes, 0, c.v.inodeSize);
  const ib = new Uint8Array(60);
  const dv = new DataView(ib.buffer);
  for (let i = 0; i < 15; i++) dv.setUint32(i * 4, sb.s_jnl_blocks[i] ?? 0, true);
  raw.i_block = ib;
  raw.i_size_high = sb.s_jnl_blocks[15] ?? 0;
  raw.i_size_lo = sb.s_jnl_blocks[16] ?? 0;
  raw.i_links_count = 1;
  raw.i_mode = S_IFREG | 0o600;
  // No i_flags: e2fsck 1.47.0 walks the backup as a block map even when it holds an extent
  // root, so an extent-mapped journal cannot be recovered from its backup ("Superblock has
  // an invalid journal"), and neither can it here.
  return raw;
}

/**
 * e2fsck_check_ext3_journal, questions declined: a journal e2fsck could not load makes it
 * give up, reported here as a fatal problem.
 */
/**
 * e2fsck_check_mmp, as a read-only check runs it: the MMP block must lie inside the
 * filesystem, carry the magic and, with metadata_csum, its checksum; each failure stops the
 * check with the volume in error (e2fsck exits 12). A sequence other than "clean" is not waited
 * on: e2fsck sleeps to see whether another node still updates it, which on an image nobody
 * has mounted never happens. @e2fsprogs e2fsck_check_mmp, ext2fs_mmp_start, ext2fs_mmp_read
 */
export async function checkMmp(c: CheckContext): Promise<void> {
  const v = c.v;
  if (!v.f.mmp) return;
  const blk = mmpBlock(v.sb);
  if (blk <= v.firstDataBlock || blk >= v.blocksCount) c.r.fix(PR_0_MMP_INVALID_BLK, { blk }, {}, true);
  const b = await v.readBlock(blk);
  const m = mmpStruct.decode(b, 0);
  const fixOrStop = async (d: typeof PR_0_MMP_CSUM_INVALID): Promise<void> => {
    if (c.r.repairing && c.r.ask(d, {}, { block: blk })) await resetMmp(c, blk);
    else c.r.fix(d, {}, { block: blk }, true);
  };
  if (m.mmp_magic !== EXT4_MMP_MAGIC) return fixOrStop(PR_0_MMP_INVALID_MAGIC);
  if (v.f.metadataCsum && m.mmp_checksum !== mmpChecksum(b, v.csumSeed)) return fixOrStop(PR_0_MMP_CSUM_INVALID);
}

/**
 * A fresh MMP block: the magic, the "clean" sequence, the update interval (at least 5 s),
 * the checksum. @e2fsprogs ext2fs_mmp_reset (the node and device names left empty)
 */
async function resetMmp(c: CheckContext, blk: number): Promise<void> {
  const v = c.v;
  const b = new Uint8Array(v.blockSize);
  mmpStruct.encode({ mmp_magic: EXT4_MMP_MAGIC, mmp_seq: EXT4_MMP_SEQ_CLEAN, mmp_check_interval: Math.max(5, v.sb.s_mmp_update_interval) }, b, 0);
  if (v.f.metadataCsum) mmpStruct.encode({ mmp_checksum: mmpChecksum(b, v.csumSeed) }, b, 0);
  // e2fsck writes the MMP block straight to the device: neither a change to the filesystem
  // ("MODIFIED") nor a corrected problem (exit 1).
  await c.out.writeBlockAside(blk, b);
  c.r.fixed--;
}

/** The part of a journal superblock a V1 journal has: the header and s_blocksize..s_errno. @e2fsprogs V1_SB_SIZE */
const JBD2_V1_SUPERBLOCK_SIZE = 0x24;

/** Thrown inside the journal check when a repair deleted the journal: there is nothing more to check. */
class JournalDeleted extends Error {}

export async function checkJournal(c: CheckContext): Promise<void> {
  try {
    await checkJournalInode(c);
  } catch (e) {
    if (!(e instanceof JournalDeleted)) throw e;
  }
  // "Journal superblock is corrupt. Fix?" answered yes: a new one is written.
  if (c.journalReset) await writeFreshJournalSuper(c);
}

/**
 * A new, empty jbd2 superblock over a corrupt one, with a random sequence so that no old
 * transaction in the log can pass for a current one; the volume then needs no recovery
 * (and, if it did, a full check next time). @e2fsprogs e2fsck_journal_reset_super, e2fsck_clear_recover
 */
async function writeFreshJournalSuper(c: CheckContext): Promise<void> {
  const v = c.v;
  const sb = v.sb;
  const bytes = await readInodeBytes(c, sb.s_journal_inum);
  if (bytes === null) return;
  const raw = decodeInode(bytes, 0, v.inodeSize);
  const start = await mapLogical(v, raw, 0);
  if (!v.blockValid(start)) return;
  const totalLen = Math.floor((raw.i_size_lo + raw.i_size_high * 2 ** 32) / v.blockSize);
  const block = newJournalSuperblock({ blockSize: v.blockSize, maxLen: totalLen, uuid: new Uint8Array(16) });
  // newJournalSuperblock fills in what e2fsck leaves zero apart from these.
  block.fill(0, 12);
  const put32be = (o: number, x: number): void => {
    block.set([x >>> 24, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff], o);
  };
  put32be(0x0c, v.blockSize);
  put32be(0x10, totalLen);
  put32be(0x14, 1);
  put32be(0x18, Math.floor(Math.random() * 2 ** 32) >>> 0);
  await c.out.writeBlock(start, block);
  clearRecover(c, (sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_RECOVER) !== 0);
}

/** No journal recovery pending; `error`: the volume is checked in full next time. @e2fsprogs e2fsck_clear_recover */
function clearRecover(c: CheckContext, error: boolean): void {
  const sb = c.v.sb;
  sb.s_feature_incompat = (sb.s_feature_incompat & ~EXT4_FEATURE_INCOMPAT_RECOVER) >>> 0;
  if (error) sb.s_state &= ~EXT4_VALID_FS & 0xffff;
  c.out.markSuperDirty();
}

async function checkJournalInode(c: CheckContext): Promise<void> {
  const v = c.v;
  const sb = v.sb;
  const r = c.r;
  const recover = v.f.needsRecovery;
  const uuidNull = sb.s_journal_uuid.every((b) => b === 0);
  if (!v.f.hasJournal && !recover && sb.s_journal_inum === 0 && sb.s_journal_dev === 0 && uuidNull) return;
  const giveUp = (why: string): never => {
    r.fix(PR_0_JOURNAL_ABORT, { str: `${why} for ${v.name}` }, {}, true);
    throw new Error("unreachable: PR_0_JOURNAL_ABORT is fatal");
  };
  /** @e2fsprogs e2fsck_journal_fix_bad_inode: a repair deletes the journal (made again after pass 5). */
  const badInode = (): never => {
    if (v.f.hasJournal || sb.s_journal_inum !== 0) {
      if (r.repairing && r.ask(PR_0_JOURNAL_BAD_INODE, { ino: sb.s_journal_inum })) {
        if (v.f.hasJournal && sb.s_journal_inum !== 0) c.warn("*** journal has been deleted ***\n");
        sb.s_feature_compat = (sb.s_feature_compat & ~EXT4_FEATURE_COMPAT_HAS_JOURNAL) >>> 0;
        sb.s_journal_inum = 0;
        sb.s_jnl_blocks = new Array<number>(17).fill(0);
        clearRecover(c, true);
        c.journalDeleted = true;
        throw new JournalDeleted();
      }
      r.fix(PR_0_JOURNAL_BAD_INODE, { ino: sb.s_journal_inum }, {}, true);
      return giveUp("The journal superblock is corrupt while checking journal");
    }
    r.fix(PR_0_JOURNAL_RECOVER_SET, {}, {}, true);
    return giveUp("Unsupported feature(s) while checking journal");
  };
  if (sb.s_journal_inum === 0) {
    if (sb.s_journal_dev !== 0 || !uuidNull) {
      r.fix(PR_0_CANT_FIND_JOURNAL, {}, {}, true);
    }
    if (v.f.hasJournal || recover) badInode();
    return;
  }
  if (sb.s_journal_inum > v.inodesCount) badInode();
  let raw: RawInode | null = null;
  const bytes = await readInodeBytes(c, sb.s_journal_inum);
  if (bytes !== null) raw = decodeInode(bytes, 0, v.inodeSize);
  if (raw === null || !(await journalInodeUsable(c, raw))) {
    raw = backupJournalInode(c);
    if (raw === null || !(await journalInodeUsable(c, raw))) badInode();
    // A repairing run puts the inode rebuilt from the backup in place of the broken one,
    // silently, as ext2fs_write_inode writes the 128 bytes of a struct ext2_inode over it
    // (the large part is kept). @e2fsprogs e2fsck_get_journal (tried_backup_jnl)
    if (r.repairing) {
      const fields = raw!;
      await c.out.editInodeBytes(sb.s_journal_inum, (slot) => {
        slot.fill(0, 0, EXT4_GOOD_OLD_INODE_SIZE);
        inodeStruct.encode(fields, slot, 0, EXT4_GOOD_OLD_INODE_SIZE);
      });
    }
  }
  const jraw = raw!;
  const start = await mapLogical(v, jraw, 0);
  if (!v.blockValid(start)) badInode();
  let jsbBlock: Uint8Array;
  try {
    jsbBlock = (await v.readBlock(start)).slice();
  } catch {
    return giveUp("Attempt to read block from filesystem resulted in short read while checking journal");
  }
  let jsb = decodeJournalSuperblock(jsbBlock);
  if (jsb.h_magic !== JBD2_MAGIC_NUMBER) {
    // No jbd2 magic: "probably the wrong inode". e2fsck_journal_load returns what
    // e2fsck_journal_fix_bad_inode returns, 0 after a repair, so the check goes on as if the
    // journal had loaded, with has_journal now clear. @e2fsprogs e2fsck_journal_load
    try {
      badInode();
    } catch (e) {
      if (!(e instanceof JournalDeleted)) throw e;
    }
    hasJournalClear(c);
    throw new JournalDeleted();
  }
  const corrupt = (why: string): never => {
    // e2fsck's message says only "corrupt"; `why` documents each call.
    if (r.repairing && v.f.hasJournal && r.ask(PR_0_JOURNAL_BAD_SUPER, { str: why })) {
      c.journalReset = true;
      throw new JournalDeleted();
    }
    r.fix(PR_0_JOURNAL_BAD_SUPER, { str: why }, {}, true);
    return giveUp("The journal superblock is corrupt while checking journal");
  };
  /**
   * Fields a V1 superblock does not have, or a V2 one left with a count of users only an
   * external journal may have, are zeroed past the V1 part (written back when the journal
   * is released). Answered no (-n), the superblock is taken as it is.
   * @e2fsprogs clear_v2_journal_fields
   */
  const v2Fields = { cleared: false };
  const clearV2Fields = (): void => {
    if (!r.ask(PR_0_CLEAR_V2_JOURNAL)) return;
    // E2F_FLAG_PROBLEMS_FIXED: exit 1, if anything else changed the volume.
    c.problemsFixedQuietly = true;
    jsbBlock.fill(0, JBD2_V1_SUPERBLOCK_SIZE);
    jsb = decodeJournalSuperblock(jsbBlock);
    v2Fields.cleared = true;
  };
  // e2fsck_journal_load's order of tests.
  switch (jsb.h_blocktype) {
    case JBD2_SUPERBLOCK_V1:
      if (jsb.s_feature_compat !== 0 || jsb.s_feature_incompat !== 0 || jsb.s_feature_ro_compat !== 0 || jsb.s_nr_users !== 0) clearV2Fields();
      break;
    case JBD2_SUPERBLOCK_V2:
      if (jsb.s_nr_users > 1 && uuidNull) clearV2Fields();
      if (jsb.s_nr_users > 1) r.fix(PR_0_JOURNAL_UNSUPP_MULTIFS, { num: jsb.s_nr_users }, {}, true);
      break;
    case JBD2_DESCRIPTOR_BLOCK:
    case JBD2_COMMIT_BLOCK:
    case JBD2_REVOKE_BLOCK:
      corrupt(`block type ${jsb.h_blocktype}`);
      break;
    default:
      r.fix(PR_0_JOURNAL_UNSUPP_VERSION, {}, {}, true);
      corrupt("unsupported version");
  }
  if (jsb.h_blocktype === JBD2_SUPERBLOCK_V2) {
    if ((jsb.s_feature_incompat & ~JBD2_KNOWN_INCOMPAT_FEATURES) !== 0) {
      r.fix(PR_0_JOURNAL_UNSUPP_INCOMPAT, {}, {}, true);
      corrupt("unknown incompatible feature");
    }
    if (jsb.s_feature_ro_compat !== 0) {
      r.fix(PR_0_JOURNAL_UNSUPP_ROCOMPAT, {}, {}, true);
      corrupt("unknown read-only compatible feature");
    }
    const v2 = (jsb.s_feature_incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2) !== 0;
    const v3 = (jsb.s_feature_incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3) !== 0;
    if (v2 && v3) corrupt("checksum v2 and v3 both set");
    if (journalHasCsumV2or3(jsb) && (jsb.s_feature_compat & JBD2_FEATURE_COMPAT_CHECKSUM) !== 0) corrupt("checksum v1 and v2/v3 both set");
    if (journalHasCsumV2or3(jsb)) {
      if (jsb.s_checksum_type !== JBD2_CRC32C_CHKSUM) corrupt(`checksum type ${jsb.s_checksum_type}`);
      if (journalSuperblockChecksum(jsbBlock.subarray(0, 1024)) !== jsb.s_checksum) corrupt("checksum does not match");
    }
  }
  if (jsb.s_blocksize !== v.blockSize) corrupt("no valid journal superblock found");
  const size = jraw.i_size_lo + jraw.i_size_high * 2 ** 32;
  if (jsb.s_maxlen > Math.floor(size / v.blockSize)) corrupt("journal too short");
  // e2fsck_journal_release (drop = 0): a repairing run writes the journal superblock back,
  // which only matters when its V2 fields were cleared. The journal is not part of what
  // e2fsck counts as changing the filesystem.
  if (v2Fields.cleared) await c.out.writeBlockAside(start, jsbBlock);
  if (!v.f.hasJournal) r.fix(PR_0_JOURNAL_HAS_JOURNAL);
  if (v.f.hasJournal && !recover && jsb.s_start !== 0) r.fix(PR_0_JOURNAL_RECOVERY_CLEAR);
}

/**
 * e2fsck_check_ext3_journal's no_has_journal: a journal loaded but has_journal clear. A repair
 * forgets the journal (its inode, device and UUID) and needs a full check next time; a
 * read-only run answers no and is left in error.
 */
function hasJournalClear(c: CheckContext): void {
  const sb = c.v.sb;
  if ((sb.s_feature_compat & EXT4_FEATURE_COMPAT_HAS_JOURNAL) !== 0 || !c.r.ask(PR_0_JOURNAL_HAS_JOURNAL)) return;
  // force_fsck: recovery was pending, or the journal was on a reserved inode (or none now).
  const force = (sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_RECOVER) !== 0 || sb.s_journal_inum < c.v.firstIno;
  sb.s_journal_inum = 0;
  sb.s_journal_dev = 0;
  sb.s_journal_uuid = new Uint8Array(16);
  clearRecover(c, force);
}

/** Names e2fsck looks for a visible journal file under, in the root directory. @e2fsprogs journal_names */
const JOURNAL_NAMES = [".journal", "journal", ".journal.dat", "journal.dat"];
const EXT3_JNL_BACKUP_BLOCKS = 1;

/**
 * After the orphan list, a repairing run backs the journal inode's block map up into the
 * superblock (s_jnl_blocks) when there is no backup or it differs, and moves a journal kept
 * in a visible file of the root directory (an ext3 volume made by an old tune2fs) to the
 * reserved inode 8: the name unlinked, the inode copied, the old inode freed.
 * Not done: e2fsck also drops EXT2_FLAG_MASTER_SB_ONLY here, so its backup superblocks get
 * the new fields too; ext4ts writes the primary only. @e2fsprogs e2fsck_move_ext3_journal
 */
export async function moveJournal(c: CheckContext): Promise<void> {
  const v = c.v;
  const sb = v.sb;
  const r = c.r;
  if (!r.repairing || sb.s_journal_inum === 0 || (sb.s_feature_compat & EXT4_FEATURE_COMPAT_HAS_JOURNAL) === 0) return;
  const ino = sb.s_journal_inum;
  const got = await readInode(c, ino);
  if (got === null) return;
  const raw = got.raw;
  const words: number[] = [];
  for (let i = 0; i < 15; i++) words.push(u32le(raw.i_block, i * 4));
  const differs = words.some((w, i) => w !== (sb.s_jnl_blocks[i] ?? 0));
  if ((sb.s_jnl_backup_type === 0 || (sb.s_jnl_backup_type === EXT3_JNL_BACKUP_BLOCKS && differs)) && r.ask(PR_0_BACKUP_JNL)) {
    sb.s_jnl_blocks = [...words, raw.i_size_high, raw.i_size_lo];
    sb.s_jnl_backup_type = EXT3_JNL_BACKUP_BLOCKS;
    c.out.markSuperDirty();
  }
  if (ino === EXT4_JOURNAL_INO || raw.i_links_count !== 1) return;
  const entries = await listDir(c, EXT4_ROOT_INO);
  if (entries === null) return;
  const enc = new TextEncoder();
  const name = JOURNAL_NAMES.find((n) => {
    const want = enc.encode(n);
    // ext2fs_lookup: the first entry of that name.
    const hit = entries.find((e) => e.name.length === want.length && e.name.every((b, i) => b === want[i]));
    return hit?.ino === ino;
  });
  if (name === undefined) return;
  if (!r.ask(PR_0_MOVE_JOURNAL, { str: name })) return;
  if (!(await unlinkFromRoot(c, enc.encode(name), ino))) {
    r.ask(PR_0_ERR_MOVE_JOURNAL, { str: "Ext2 directory corrupted" });
    sb.s_state &= ~EXT4_VALID_FS & 0xffff;
    c.out.markSuperDirty();
    return;
  }
  // ext2fs_write_inode: the 128 bytes of a struct ext2_inode over inode 8's.
  const head = got.bytes.slice(0, EXT4_GOOD_OLD_INODE_SIZE);
  await c.out.editInodeBytes(EXT4_JOURNAL_INO, (slot) => slot.set(head, 0));
  sb.s_journal_inum = EXT4_JOURNAL_INO;
  c.out.markSuperDirty();
  await c.out.writeInode(ino, { i_links_count: 0, i_dtime: c.now >>> 0 });
  await inodeAllocStats(c, ino, -1, false);
}

/** e2fsck check_super_block, the parts that report (all before pass 1, so none counts). */
export function checkSuperBlock(c: CheckContext): void {
  const v = c.v;
  const sb = v.sb;
  const r = c.r;
  const shouldBe = sb.s_inodes_per_group * v.groupCount;
  if (shouldBe <= 0xffffffff && sb.s_inodes_count !== shouldBe) r.fix(PR_0_INODE_COUNT_WRONG, { ino: sb.s_inodes_count, ino2: shouldBe });
  if (v.inodeSize > 128) {
    const max = v.inodeSize - 128;
    for (const [val, d] of [[sb.s_min_extra_isize, PR_0_BAD_MIN_EXTRA_ISIZE], [sb.s_want_extra_isize, PR_0_BAD_WANT_EXTRA_ISIZE]] as const) {
      if (val !== 0 && (val < 4 || val > max || (val & 3) !== 0)) r.fix(d, { num: val });
    }
  }
  if (v.f.metaBg && sb.s_first_meta_bg > v.descBlocks) r.fix(PR_0_FIRST_META_BG_TOO_BIG, { num: sb.s_first_meta_bg, group: v.descBlocks });
  let csumLatch: boolean | undefined;
  // The first metadata block outside its group says once where backups may help
  // (PR_LATCH_RELOC), unless a backup superblock is in use (e2fsck latches it then).
  let hinted = v.backupSuperblock !== 0;
  const relocHint = (): void => {
    if (hinted) return;
    hinted = true;
    r.ask(PR_0_RELOCATE_HINT, { num: v.blocksPerGroup + v.firstDataBlock });
  };
  let invalid = false;
  for (let g = 0; g < v.groupCount; g++) {
    const gd = v.group(g);
    const first = v.f.flexBg ? v.firstDataBlock : v.groupFirstBlock(g);
    const last = v.f.flexBg ? v.blocksCount - 1 : v.groupLastBlock(g);
    // "Relocate": the location is forgotten here and a new place found after pass 1
    // (Pass1.relocateBitmaps); the descriptor's checksum is left as it was.
    let moved = false;
    const bb = v.blockBitmapLoc(g);
    if (bb < first || bb > last) {
      relocHint();
      if (r.ask(PR_0_BB_NOT_GROUP, { group: g, blk: bb })) {
        setBlockBitmap(gd, 0, v.descSize);
        moved = true;
      }
    }
    if (v.blockBitmapLoc(g) === 0) c.invalidBlockBitmap[g] = 1;
    const ib = v.inodeBitmapLoc(g);
    if (ib < first || ib > last) {
      relocHint();
      if (r.ask(PR_0_IB_NOT_GROUP, { group: g, blk: ib })) {
        setInodeBitmap(gd, 0, v.descSize);
        moved = true;
      }
    }
    if (v.inodeBitmapLoc(g) === 0) c.invalidInodeBitmap[g] = 1;
    const it = v.inodeTableLoc(g);
    if (it < first || it + v.itableBlocks - 1 > last) {
      relocHint();
      // The group's inodes are lost: pass 1 skips the group, a zeroed table is made after
      // it and the check restarts.
      if (r.ask(PR_0_ITABLE_NOT_GROUP, { group: g, blk: it })) {
        setInodeTable(gd, 0, v.descSize);
        moved = true;
      }
    }
    if (v.inodeTableLoc(g) === 0) c.invalidInodeTable[g] = 1;
    if (c.invalidBlockBitmap[g] !== 0 || c.invalidInodeBitmap[g] !== 0 || c.invalidInodeTable[g] !== 0) invalid = true;
    if (moved) {
      c.out.markGroupDirty(g, false);
      v.recheckDesc(g);
    }
    // A descriptor the repairs touch is written with a fresh checksum (FsckWriter.close).
    let touched = false;
    // A bad checksum makes the uninit flags untrustworthy: the repair drops them, so the
    // bitmaps and the inode table are read as they are. @e2fsprogs check_super_block
    const dropUninit = (): void => {
      gd.bg_flags &= ~(EXT4_BG_BLOCK_UNINIT | EXT4_BG_INODE_UNINIT) & 0xffff;
      setItableUnused(gd, 0, v.descSize);
      touched = true;
    };
    if (v.gdCsumOk[g] !== 1) {
      csumLatch ??= r.ask(PR_0_GDT_CSUM_LATCH);
      if (r.ask(PR_0_GDT_CSUM, { group: g, num: gd.bg_checksum, num2: v.gdCsumWant[g]! }, {}, csumLatch)) dropUninit();
    }
    if (!v.f.groupDescCsum && ((gd.bg_flags & (EXT4_BG_BLOCK_UNINIT | EXT4_BG_INODE_UNINIT)) !== 0 || itableUnused(gd, v.descSize) !== 0)) {
      if (r.ask(PR_0_GDT_UNINIT, { group: g })) dropUninit();
    }
    if (g === v.groupCount - 1 && (gd.bg_flags & EXT4_BG_BLOCK_UNINIT) !== 0 && r.ask(PR_0_BB_UNINIT_LAST)) {
      gd.bg_flags &= ~EXT4_BG_BLOCK_UNINIT & 0xffff;
      touched = true;
    }
    const unused = itableUnused(gd, v.descSize);
    if (v.f.groupDescCsum && (unused > gdFreeInodes(gd, v.descSize) || unused > sb.s_inodes_per_group)
      && r.ask(PR_0_GDT_ITABLE_UNUSED, { group: g, blk: unused })) {
      setItableUnused(gd, 0, v.descSize);
      touched = true;
    }
    if (touched) {
      v.gdCsumOk[g] = 1;
      c.out.markGroupDirty(g);
    }
  }
  // Metadata to relocate: the volume is marked not clean until the check ends.
  if (invalid && r.repairing) {
    sb.s_state &= ~EXT4_VALID_FS & 0xffff;
    c.out.markSuperDirty();
  }
  addUuid(c);
  if (!v.f.resizeInode && sb.s_reserved_gdt_blocks !== 0) r.fix(PR_0_NONZERO_RESERVED_GDT_BLOCKS, { num: sb.s_reserved_gdt_blocks });
  if (v.f.resizeInode && v.f.metaBg) r.fix(PR_0_DISABLE_RESIZE_INODE);
  validateQuotaInodes(c);
}

/**
 * A dir_index volume whose superblock says neither signed nor unsigned directory hashes gets
 * "signed" (x86's char, as e2fsck built there says). @e2fsprogs e2fsck_fix_dirhash_hint
 */
export function fixDirhashHint(c: CheckContext): void {
  const sb = c.v.sb;
  if (!c.r.repairing || !c.v.f.dirIndex || (sb.s_flags & (EXT2_FLAGS_SIGNED_HASH | EXT2_FLAGS_UNSIGNED_HASH)) !== 0) return;
  if (!c.r.ask(PR_0_DIRHASH_HINT)) return;
  sb.s_flags |= EXT2_FLAGS_SIGNED_HASH;
  c.out.markSuperDirty();
}

/**
 * A repairing run gives a volume without a UUID a random one, unless metadata_csum seeds its
 * checksums from it. Not counted as a change (e2fsck sets EXT2_FLAG_DIRTY, not CHANGED): the
 * superblock and its backups are written at close, the descriptors with checksums over the
 * new UUID (gdt_csum). @e2fsprogs check_super_block (PR_0_ADD_UUID)
 */
function addUuid(c: CheckContext): void {
  const sb = c.v.sb;
  if (!c.r.repairing || c.v.f.metadataCsum || sb.s_uuid.some((b) => b !== 0)) return;
  if (!c.r.ask(PR_0_ADD_UUID)) return;
  const u = globalThis.crypto.getRandomValues(new Uint8Array(16));
  u[6] = (u[6]! & 0x0f) | 0x40; // version 4 (random), as uuid_generate makes them
  u[8] = (u[8]! & 0x3f) | 0x80; // RFC 4122 variant
  sb.s_uuid = u;
  c.out.writeAllCopies(false);
}

const QUOTA_INUM_FIELDS = ["s_usr_quota_inum", "s_grp_quota_inum", "s_prj_quota_inum"] as const;
const QUOTA_NAMES = ["user", "group", "project"] as const;

/**
 * A quota inode number that cannot name a quota file is forgotten: the superblock's field is
 * zeroed, and the type is then not counted or compared (e2fsck's quota context, set up after
 * check_super_block, leaves out types whose inode number is 0). No quota file is made.
 * @e2fsprogs e2fsck/quota.c e2fsck_validate_quota_inodes
 */
function validateQuotaInodes(c: CheckContext): void {
  for (const t of invalidQuotaTypes(c)) {
    const field = QUOTA_INUM_FIELDS[t];
    if (c.r.ask(PR_0_INVALID_QUOTA_INO, { ino: c.v.sb[field], str: QUOTA_NAMES[t] })) {
      c.v.sb[field] = 0;
      c.out.markSuperDirty();
      c.quota.untrack(t);
    }
  }
}

/** Reserved inodes that are never a quota file: bad blocks, root, boot loader, undelete, resize, journal, exclude, replica. */
const NOT_QUOTA_INODES: ReadonlySet<number> = new Set([1, 2, 5, 6, 7, 8, 9, 10]);

/**
 * Quota types whose superblock inode number cannot name a quota file (e2fsck: "Invalid user
 * quota inode"), tested whether or not the quota feature is on, as e2fsck does.
 * @e2fsprogs e2fsck/quota.c e2fsck_validate_quota_inodes
 */
export function invalidQuotaTypes(c: CheckContext): QuotaTypeIndex[] {
  const out: QuotaTypeIndex[] = [];
  QUOTA_INUM_FIELDS.forEach((field, t) => {
    const q = c.v.sb[field];
    if (q !== 0 && (NOT_QUOTA_INODES.has(q) || q > c.v.sb.s_inodes_count)) out.push(t as QuotaTypeIndex);
  });
  return out;
}

/**
 * Why libext2fs cannot read the bad blocks list from inode 1 before pass 1 (e2fsck then says
 * "... while reading bad blocks inode"), or null: group 0's inode table missing or outside
 * the volume (ext2fs_read_inode), an indirect block outside the volume or unreadable (the
 * last such error of the walk, as ext2fs_block_iterate reports it). An extent-mapped or
 * inline inode 1 is not examined. @e2fsprogs ext2fs_read_bb_inode
 */
export async function badBlocksInodeError(c: CheckContext): Promise<string | null> {
  const v = c.v;
  const it = v.inodeTableLoc(0);
  if (it === 0) return "A block group is missing an inode table";
  if (it < v.firstDataBlock || it + v.itableBlocks - 1 >= v.blocksCount) return "Corrupt group descriptor: bad block for inode table";
  const bytes = await readInodeBytes(c, EXT4_BAD_INO);
  if (bytes === null) return "Attempt to read block from filesystem resulted in short read";
  const raw = decodeInode(bytes, 0, v.inodeSize);
  if ((raw.i_flags & (EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL)) !== 0) return null;
  const illegal = ["", "Illegal indirect block found", "Illegal doubly indirect block found", "Illegal triply indirect block found"];
  let err: string | null = null;
  const walk = async (blk: number, level: number): Promise<void> => {
    if (blk === 0) return;
    if (!v.blockValid(blk)) {
      err = illegal[level]!;
      return;
    }
    let buf: Uint8Array;
    try {
      buf = (await v.readBlock(blk)).slice();
    } catch {
      err = "Attempt to read block from filesystem resulted in short read";
      return;
    }
    if (level === 1) return;
    for (let i = 0; i < v.blockSize / 4; i++) await walk(u32le(buf, i * 4), level - 1);
  };
  for (let level = 1; level <= 3; level++) await walk(u32le(raw.i_block, (11 + level) * 4), level);
  return err;
}

/** check_resize_inode: without resize_inode, inode 7 must be empty. */
export async function checkResizeInode(c: CheckContext): Promise<void> {
  const v = c.v;
  const bytes = await readInodeBytes(c, 7);
  if (bytes === null) return;
  const raw = decodeInode(bytes, 0, v.inodeSize);
  if (!v.f.resizeInode) {
    if (raw.i_block.some((b) => b !== 0)) c.r.fix(PR_0_CLEAR_RESIZE_INODE);
    return;
  }
  if (!(await resizeInodeValid(c, raw))) c.r.fix(PR_0_RESIZE_INODE_INVALID);
}

/**
 * e2fsck check_resize_inode's test: only the double indirect block is set, it lies in the
 * filesystem, it lists the reserved descriptor blocks, and each of those lists its backups.
 */
async function resizeInodeValid(c: CheckContext, raw: RawInode): Promise<boolean> {
  const v = c.v;
  const word = (i: number): number => u32le(raw.i_block, i * 4);
  const dind = word(13);
  for (let i = 0; i < 15; i++) if (i !== 13 && word(i) !== 0) return false;
  if (dind === 0 || raw.i_links_count === 0 || (raw.i_mode & 0x8000) === 0 || dind < v.firstDataBlock || dind >= v.blocksCount) return false;
  let dindBuf: Uint8Array;
  try {
    dindBuf = (await v.readBlock(dind)).slice();
  } catch {
    return false;
  }
  const perBlock = v.blockSize / 4;
  // Up to 256 blocks each read once: one buffer, not the cache.
  const ind = new Uint8Array(v.blockSize);
  let gdtOff = v.descBlocks;
  let pblk = v.firstDataBlock + 1 + v.descBlocks;
  if (v.blockSize === 1024 && v.firstDataBlock === 0) pblk++;
  for (let i = 0; i < Math.floor(v.sb.s_reserved_gdt_blocks / 4); i++, gdtOff++, pblk++) {
    gdtOff %= perBlock;
    if (u32le(dindBuf, gdtOff * 4) !== pblk) return false;
    try {
      await v.cache.readUncachedInto(pblk, ind);
    } catch {
      return false;
    }
    let indOff = 0;
    for (let j = 1; j < v.groupCount; j++) {
      if (!groupHasSuperblock(v.sb, j)) continue;
      if (indOff >= perBlock) break;
      if (u32le(ind, indOff * 4) !== (pblk + j * v.blocksPerGroup) % 2 ** 32) return false;
      indOff++;
    }
  }
  return true;
}

const u32le = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
