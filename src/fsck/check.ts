/**
 * `check`: the checker's entry point, e2fsck -n as an API.
 *
 *   const report = await check(dev, { force: true, name: "disk.img" });
 *   report.clean;        // false when e2fsck -fn would exit non-zero
 *   report.problems;     // [{ code: 0x01000d, name: "PR_1_BAD_I_BLOCKS", ino: 12,
 *                        //    message: "Inode 12, i_blocks is 24, should be 16.", ... }]
 *   report.summaryLine;  // "disk.img: 11/2048 files (0.0% non-contiguous), 1100/8192 blocks"
 *   formatProblem(p);    // "Inode 12, i_blocks is 24, should be 16.  Fix? no\n\n", as e2fsck -n prints it
 *
 * It runs e2fsck's passes in e2fsck's order (superblock and journal, 1 inodes and blocks,
 * 1B-1D blocks claimed twice, 2 directories, 3 connectivity, 4 reference counts, 5 group
 * summaries) and answers every question no, so the volume is never written and the
 * verdict is e2fsck -n's. A mounted volume (Ext4Fs or a Volume) is read through its
 * buffer cache; check a quiescent one (sync first): like e2fsck, the checker assumes
 * nothing changes under it.
 *
 * Memory: chunked bitmaps over the parts of the volume in use (a few bits per inode and two
 * per block; FsckReport.structureBytes says how much), the lists of directories and directory
 * blocks, and the buffer cache (32 MiB by default); the inode tables are streamed in 256 KiB
 * reads.
 */

import { BufferCache } from "../cache/buffer_cache.js";
import type { BlockDevice } from "../device/block_device.js";
import { freeBlocksCount as sbFreeBlocks } from "../format/superblock.js";
import type { Ext4Fs } from "../fs/super.js";
import { CheckContext } from "./context.js";
import { Pass1 } from "./pass1.js";
import { Pass2 } from "./pass2.js";
import { pass3, pass3a, pass4, pass5 } from "./pass345.js";
import { PathNamer, readInode } from "./paths.js";
import { exitCodeOf, FsckAbort, FsckRestart, Reporter, summaryLine, type FsckReport, type FsckSummary, type Problem } from "./report.js";
import { PR_0_JNL_TXN_CORRUPT, PR_6_RECREATE_JOURNAL, PR_6_UPDATE_QUOTAS } from "./problem.js";
import { badBlocksInodeError, checkJournal, checkMmp, checkResizeInode, checkSuperBlock, invalidQuotaTypes, fixDirhashHint, moveJournal, reasonToCheck } from "./super_check.js";
import { EXT4_VALID_FS } from "../format/superblock.js";
import { openVolume, type FsckVolume } from "./volume.js";
import { FsckWriter } from "./writer.js";
import { FsError } from "../errors.js";
import type { RawInode } from "../format/inode.js";
import type { SanityHelperFactory } from "./sanity.js";


export type { FsckReport, FsckSummary, Problem } from "./report.js";

/** Restarts allowed before a run gives up on a volume its repairs keep changing. */
const MAX_RESTARTS = 4;
export { formatProblem } from "./report.js";

/** What `check` accepts: a device, a mounted engine volume, or anything holding one (an API Volume). */
export type CheckTarget = BlockDevice | Ext4Fs | { readonly fs: Ext4Fs };

const READ_ONLY_CACHE_BYTES = 1024 * 1024;
const REPAIR_CACHE_BYTES = 8 * 1024 * 1024;

export interface CheckOptions {
  /** Check even when the volume is marked clean (e2fsck -f). */
  force?: boolean;
  /**
   * The name messages use for the volume (default: the device description). A volume with a
   * label is named by its label instead, as e2fsck names it (report.device).
   */
  name?: string;
  /** Seconds since the epoch, for the check-interval test (default: now). */
  now?: number;
  /** Problems kept in the report; the rest are only counted (default 10,000). */
  maxProblems?: number;
  /** Called for each problem as it is found (for streaming output). */
  onProblem?: (p: Problem) => void;
  /** Called when a pass starts: 1-5 (pass 0 is opening), with e2fsck's header line. */
  onPass?: (pass: number, title: string) => void;
  /** Called once the volume's name for messages is known (its label, or `name`). */
  onDevice?: (name: string) => void;
  /** Called for each warning (e2fsck's notes that are not problems). */
  onWarning?: (w: string) => void;
  /** Called for each line e2fsck writes to stderr (the quota comparison's "[QUOTA WARNING] ..."). */
  onStderr?: (line: string) => void;
  /**
   * Buffer cache bound when `check` makes its own cache: by default 1 MiB for a read-only
   * check, which reads each block about once (the inode tables and directory blocks bypass
   * the cache), and 8 MiB for a repair, whose writes wait in it (written back in batches
   * as it fills).
   */
  cacheBytes?: number;
  /**
   * Repair (the device must be writable and not mounted): "yes" answers yes to every
   * question (e2fsck -y), "preen" fixes what e2fsck -p fixes and stops at anything else.
   * Without it the check answers no and never writes (e2fsck -n).
   */
  repair?: "yes" | "preen";
  /**
   * After a repair that changed the volume and left no error, check it again read-only and
   * report errors (exit 4) if that check is not clean (default true).
   */
  verify?: boolean;
  /**
   * Take the fast paths for plain inodes (pass 1) and directory entries (pass 2), default
   * true. False runs every inode and entry through the full path: the tests compare both ways.
   */
  fastPath?: boolean;
  /**
   * A thread that shares pass 1's inode block sanity check (the inode checksums) with the
   * scan, judging the chunks of inode table read ahead; the CLI passes tools/cli/fsck_offload.ts's.
   */
  sanityHelper?: SanityHelperFactory;
  /** @internal The check after a journal replay (e2fsck's E2F_FLAG_RESTARTED): never replay twice. */
  restarted?: boolean;
  /** @internal Restarts so far (a repair that invalidated the passes' findings). */
  restarts?: number;
  /** @internal Inodes with multiply-claimed blocks counted by the runs before a restart (pass1b.c's static dup_inode_count). */
  dupInodes?: number;
}

function isEngine(t: CheckTarget): t is Ext4Fs {
  return "cache" in t && "sb" in t && "dev" in t;
}

function isHolder(t: CheckTarget): t is { readonly fs: Ext4Fs } {
  return "fs" in t && typeof t.fs === "object";
}

/** e2fsck's summary from the superblock counts as read (with -n nothing corrects them). */
function summarize(v: FsckVolume | null, c: CheckContext | null): FsckSummary {
  if (v === null) {
    return { inodesUsed: 0, inodesCount: 0, blocksUsed: 0, blocksUsedText: "0", blocksCount: 0, nonContiguousPermille: 0, directories: 0, regularFiles: 0, symlinks: 0 };
  }
  const sb = v.sb;
  const inodesUsed = (sb.s_inodes_count - sb.s_free_inodes_count) >>> 0;
  const used = BigInt.asUintN(64, BigInt(v.blocksCount) - BigInt(sbFreeBlocks(sb)));
  const blocksUsed = Number(used);
  const frag = c === null ? 0 : c.counters.fragmented + c.counters.fragmentedDir;
  let permille = 0;
  if (inodesUsed > 0) permille = Math.floor((Math.floor((10000 * frag) / inodesUsed) + 5) / 10);
  return {
    inodesUsed, inodesCount: sb.s_inodes_count, blocksUsed, blocksUsedText: used.toString(), blocksCount: v.blocksCount, nonContiguousPermille: permille,
    directories: c?.counters.directories ?? 0, regularFiles: c?.counters.regular ?? 0, symlinks: c?.counters.symlinks ?? 0,
  };
}

/**
 * Check a volume as `e2fsck -n` (with `force`, `e2fsck -fn`) would, without writing to it.
 * Device errors other than those e2fsck reports as problems are thrown (FsError).
 */
export async function check(target: CheckTarget, opts: CheckOptions = {}): Promise<FsckReport> {
  let dev: BlockDevice;
  let shared: BufferCache | null = null;
  if (isEngine(target)) {
    dev = target.dev;
    shared = target.cache;
  } else if (isHolder(target)) {
    dev = target.fs.dev;
    shared = target.fs.cache;
  } else {
    dev = target;
  }
  if (opts.repair !== undefined && (shared !== null || dev.readOnly)) {
    throw new FsError("EROFS", shared !== null
      ? `Cannot repair ${dev.description} while it is mounted; unmount it and check the device`
      : `Cannot repair ${dev.description}: the device is open read-only`);
  }
  const name = opts.name ?? dev.description;
  /** What messages call the volume: its label once the superblock is read, as e2fsck does. */
  let device = name;
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const r = new Reporter({
    mode: opts.repair ?? "no",
    ...(opts.maxProblems !== undefined ? { maxProblems: opts.maxProblems } : {}),
    ...(opts.onProblem !== undefined ? { onProblem: opts.onProblem } : {}),
  });
  const passMs: number[] = [0, 0, 0, 0, 0, 0];
  let t = performance.now();
  let v: FsckVolume | null = null;
  let c: CheckContext | null = null;
  let structureBytes = 0;
  const lap = (i: number): void => {
    const n = performance.now();
    passMs[i] = (passMs[i] ?? 0) + (n - t);
    t = n;
    if (c !== null) structureBytes = Math.max(structureBytes, c.structureBytes());
  };
  let w: FsckWriter | null = null;
  let skipped = false;
  let skipLine: string | undefined;
  const warnings: string[] = [];
  const stderr: string[] = [];
  /** A line e2fsck prints on stdout that is not a problem. */
  const say = (line: string): void => {
    warnings.push(line);
    opts.onWarning?.(line);
  };
  try {
    v = await openVolume(dev, r, {
      name,
      makeCache: (bs) => (shared !== null && shared.blockSize === bs ? shared : new BufferCache(dev, bs, { maxBytes: opts.cacheBytes ?? (opts.repair === undefined ? READ_ONLY_CACHE_BYTES : REPAIR_CACHE_BYTES) })),
    });
    if (opts.repair !== undefined) w = new FsckWriter(v);
    // Opened through a backup superblock: the primary is to be written. @e2fsprogs unix.c main
    if (w !== null && v.backupSuperblock !== 0) w.markSuperDirty();
    const ctx = new CheckContext(v, r, now, w);
    ctx.dupInodes = opts.dupInodes ?? 0;
    ctx.warn = say;
    c = ctx;
    device = v.name;
    opts.onDevice?.(device);
    // e2fsck's order: MMP, the journal, the recovery warning, the superblock, then whether to skip.
    await checkMmp(c);
    await checkJournal(c);
    if (v.f.needsRecovery && opts.repair === undefined) {
      const w = "Warning: skipping journal recovery because doing a read-only filesystem check.";
      warnings.push(w);
      opts.onWarning?.(w);
    } else if (v.f.needsRecovery && opts.restarted !== true && !ctx.journalDeleted && !ctx.journalReset) {
      // e2fsck replays the journal, then checks the volume from the start again.
      say(`${device}: recovering journal`);
      // What the journal check wrote (a journal inode from its backup, a journal superblock
      // cleared) is on the device before recovery reads it. @e2fsprogs e2fsck_run_ext3_journal (ext2fs_flush)
      if (w !== null) await w.flushBlocks();
      const { recoverJournal } = await import("../journal/recovery.js"); // loaded only when there is a journal to replay
      const res = await recoverJournal(dev, { policy: "e2fsck" });
      // jbd2's own complaints, which e2fsck prints as they happen (printk).
      for (const note of res.notes) {
        const m = /^JBD2: Invalid checksum recovering (data )?block \d+ in log/.exec(note);
        if (m !== null) say(m[0]);
      }
      if (res.failedCommit !== undefined) r.fix(PR_0_JNL_TXN_CORRUPT, { ino: res.failedCommit });
      if (res.error?.code === "EFSBADCRC") say(`Journal checksum error found in ${device}`);
      else if (res.error?.code === "EFSCORRUPTED") say(`Journal corrupted in ${device}`);
      else if (res.error !== undefined) {
        const words: Partial<Record<string, string>> = { EINVAL: "Invalid argument", EIO: "Input/output error", ENOMEM: "Cannot allocate memory" };
        const line = `e2fsck: ${words[res.error.code] ?? res.error.message} while recovering journal of ${device}`;
        stderr.push(line);
        opts.onStderr?.(line);
      }
      const again = await check(dev, { ...opts, restarted: true });
      return { ...again, problems: [...r.problems, ...again.problems], warnings: [...warnings, ...again.warnings], stderr: [...stderr, ...again.stderr] };
    }
    checkSuperBlock(c);
    // The rest of check_super_block that only a repairing run does: the orphan list, then
    // the journal inode's backup and a visible journal file moved to inode 8.
    if (w !== null) {
      const { releaseOrphanInodes } = await import("./orphan.js"); // repairs only
      if (await releaseOrphanInodes(c)) {
        v.sb.s_state &= ~EXT4_VALID_FS & 0xffff;
        w.markSuperDirty();
      }
      await moveJournal(c);
      fixDirhashHint(c);
    }
    // @e2fsprogs check_if_skip: a volume something was already fixed on is checked in full.
    if (opts.force !== true && r.fixed === 0 && !c.problemsFixedQuietly && reasonToCheck(c) === null) {
      skipped = true;
      let freeB = 0;
      let freeI = 0;
      for (let g = 0; g < v.groupCount; g++) {
        const gd = v.group(g);
        freeB += gd.bg_free_blocks_count_lo + (v.descSize >= 64 ? gd.bg_free_blocks_count_hi * 0x10000 : 0);
        freeI += gd.bg_free_inodes_count_lo + (v.descSize >= 64 ? gd.bg_free_inodes_count_hi * 0x10000 : 0);
      }
      skipLine = `${device}: clean, ${v.inodesCount - freeI}/${v.inodesCount} files, ${v.blocksCount - freeB}/${v.blocksCount} blocks`;
    } else {
      await checkResizeInode(c);
      const bbErr = await badBlocksInodeError(c);
      if (bbErr !== null) {
        say(`e2fsck: ${bbErr} while reading bad blocks inode`);
        r.preenHalt();
        say("This doesn't bode well, but we'll try to go on...");
      }
      lap(0);
      r.counting = true;
      const names = new PathNamer(c);
      opts.onPass?.(1, "Pass 1: Checking inodes, blocks, and sizes");
      await new Pass1(c, opts.fastPath !== false, opts.sanityHelper).run();
      if (c.blockDup !== null) {
        opts.onPass?.(1, "\nRunning additional passes to resolve blocks claimed by more than one inode...\nPass 1B: Rescanning for multiply-claimed blocks");
        const { pass1b } = await import("./pass1b.js"); // loaded only for multiply-claimed blocks
        await pass1b(c, names, (title) => opts.onPass?.(1, title));
      }
      lap(1);
      opts.onPass?.(2, "Pass 2: Checking directory structure");
      await new Pass2(c, names, opts.fastPath !== false).run();
      lap(2);
      opts.onPass?.(3, "Pass 3: Checking directory connectivity");
      await pass3(c, names);
      if (c.dirsToRehash.size > 0) {
        opts.onPass?.(3, "Pass 3A: Optimizing directories");
        await pass3a(c, names);
      }
      lap(3);
      opts.onPass?.(4, "Pass 4: Checking reference counts");
      await pass4(c, names);
      lap(4);
      opts.onPass?.(5, "Pass 5: Checking group summary information");
      await pass5(c);
      const stale = await ctx.quota.compare(async (ino) => (await readInode(ctx, ino))?.raw ?? null, invalidQuotaTypes(ctx), (line) => {
        stderr.push(line);
        opts.onStderr?.(line);
      });
      const readRaw = async (ino: number): Promise<RawInode | null> => (await readInode(ctx, ino))?.raw ?? null;
      for (const t of stale) {
        const write = r.repairing ? await ctx.quota.planRewrite(t, readRaw, now) : null;
        if (write === null) r.fix(PR_6_UPDATE_QUOTAS, { num: t });
        else if (r.ask(PR_6_UPDATE_QUOTAS, { num: t })) await write(ctx.out);
      }
      // @e2fsprogs unix.c: a journal the repairs deleted is made again.
      if (ctx.journalDeleted && r.ask(PR_6_RECREATE_JOURNAL)) {
        const { recreateJournal } = await import("./journal_repair.js");
        const made = await recreateJournal(ctx);
        if (typeof made === "number") {
          say(`Creating journal (${made} blocks):  Done.`);
          say("\n*** journal has been regenerated ***");
        } else {
          say(`Creating journal: ${made}: while trying to create journal`);
          r.unmarkValid();
        }
      }
      lap(5);
    }
  } catch (e) {
    if (e instanceof FsckRestart && w !== null && (opts.restarts ?? 0) < MAX_RESTARTS) {
      // @e2fsprogs unix.c: "Restarting e2fsck from the beginning...", the volume closed
      // (descriptors, superblock and blocks written) and opened again.
      await w.flushMeta();
      opts.onWarning?.(e.message);
      const again = await check(dev, { ...opts, restarts: (opts.restarts ?? 0) + 1, dupInodes: c?.dupInodes ?? opts.dupInodes ?? 0 });
      // The volume opened again is the one whose changes count (e2fsck's was_changed): a
      // restart whose check then changes nothing is not "modified" and exits 0. Only
      // E2F_FLAG_PROBLEMS_FIXED survives e2fsck_reset_context, for when it does change something.
      return {
        // What the check after the restart changed decides "MODIFIED" (e2fsck asks the volume it
        // opened again); the problems fixed before still make a change there exit 1.
        ...again, exitCode: again.modified && again.exitCode === 0 && r.fixed > 0 ? 1 : again.exitCode,
        problems: [...r.problems, ...again.problems], warnings: [...warnings, e.message, ...again.warnings], stderr: [...stderr, ...again.stderr],
      };
    }
    if (!(e instanceof FsckAbort)) throw e;
  }
  const aborted = r.aborted;
  // What the repairs changed, before the final superblock update (e2fsck's was_changed).
  const modified = w?.changed ?? false;
  let stateFixed = false;
  if (w !== null && c !== null) {
    const used = c.inodeUsed;
    // e2fsck's check_if_skip changes nothing itself, but closes the volume: what the checks
    // before it changed (the orphan list released) is written with the superblock and descriptors.
    if (skipped) await (modified ? w.flushMeta() : w.flushBlocks());
    else if (r.preenHalted) await w.close({ valid: false, halt: true, now, inodeInUse: (ino) => used.test(ino) });
    else if (aborted === undefined) stateFixed = await w.close({ valid: r.valid, now, inodeInUse: (ino) => used.test(ino) });
    else await w.flushBlocks(); // e2fsck's fatal_error flushes the blocks written so far, nothing more
  }
  const summary = summarize(v, c);
  // A repair run that believes it fixed everything is checked again, read-only: where e2fsck
  // would have restarted (a repair that invalidates what pass 1 learned), ext4ts does not
  // yet, and it must not report "corrected" for a volume a check still finds damaged.
  let valid = r.valid;
  if (w !== null && modified && valid && aborted === undefined && opts.verify !== false) {
    // The repairs are on the device: the re-check reads it through a cache of its own.
    v?.cache.dropClean();
    const again = await check(dev, { force: true, name, now, verify: false, ...(opts.cacheBytes !== undefined ? { cacheBytes: opts.cacheBytes } : {}) });
    if (!again.clean) {
      valid = false;
      const names = [...new Set(again.problems.filter((p) => p.error).map((p) => p.name))].join(", ");
      const line = `ext4ts: fsck: a check after the repairs still finds problems (${names}); run the repair again, or e2fsck -fy`;
      stderr.push(line);
      opts.onStderr?.(line);
    }
  }
  return {
    device,
    clean: valid && aborted === undefined,
    modified,
    preenHalted: r.preenHalted,
    // e2fsck's exit 1: a problem fixed on a volume it changed (E2F_FLAG_PROBLEMS_FIXED counts
    // only with ext2fs_test_changed), or a volume marked valid that was not. @e2fsprogs unix.c main
    exitCode: exitCodeOf(valid, aborted !== undefined, (modified && (r.fixed > 0 || c?.problemsFixedQuietly === true)) || stateFixed, r.preenHalted),
    skipped,
    warnings,
    stderr,
    ...(aborted !== undefined ? { aborted: aborted.message } : {}),
    problems: r.problems,
    problemsDropped: r.dropped,
    counts: r.counts,
    summary,
    summaryLine: skipLine ?? summaryLine(device, summary),
    passMs,
    structureBytes,
  };
}
