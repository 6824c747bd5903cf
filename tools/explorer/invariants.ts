/**
 * The quiescent invariants of a mounted volume (design note
 * ext4-allocation-and-concurrency.md §5), checked after every explored schedule and by
 * `ext4ts stress`: the volume is synced, then
 * - S1: no reservation left (s_dirtyclusters, each i_reserved_data_blocks, no delayed page,
 *   each dquot's rsvspace);
 * - A1: no counter below zero, or wrapped past its bound (free counts of the superblock and
 *   of each group, dirty clusters, reservations, dquot usage);
 * - Q1: each in-use inode's i_blocks equals the blocks it references (audit.ts);
 * - Q5: each quota id's usage equals the sums over its inodes (audit.ts), with quota on;
 * - Q7 (e2fsck -fn is clean), which is how Q2-Q4 are checked: the project's checker
 *   (src/fsck) covers bitmaps against reachable blocks and inodes, free counts (PR_5_*:
 *   Q2), blocks claimed twice (PR_1B_*: Q3), xattr blocks and their refcounts (Q4),
 *   directory structure; each of its errors is one line, named by its e2fsck problem.
 * Every problem is one line prefixed by its invariant id ("Q1: inode 12: ..."), so a failing
 * schedule names what broke. The volume must be quiescent: nothing else runs meanwhile.
 */

import type { Volume } from "../../src/api/promises.js";
import { FsError } from "../../src/errors.js";
import { check } from "../../src/fsck/check.js";
import { freeBlocksCount as gdFreeBlocks, freeInodesCount as gdFreeInodes } from "../../src/format/group_desc.js";
import { freeBlocksCount as sbFreeBlocks } from "../../src/format/superblock.js";
import { inodeTable } from "../../src/fs/inode_core.js";
import type { QuotaSet } from "../../src/fs/quota.js";
import type { Ext4Fs } from "../../src/fs/super.js";
import { auditVolume, compareQuota, reservationProblems } from "./audit.js";

export interface InvariantReport {
  ok: boolean;
  /** One line per violation, prefixed by the invariant id ("S1: ", "A1: ", "Q1: ", ...). */
  problems: string[];
}

/** Within [0, max] and an integer: a counter that went below zero shows as negative or wrapped. */
function inRange(n: number, max: number): boolean {
  return Number.isSafeInteger(n) && n >= 0 && n <= max;
}

/** A1 on the engine's counters, S1's delayed pages (reservedDataBlocks is reservationProblems'). */
function counterProblems(fs: Ext4Fs): { a1: string[]; s1: string[] } {
  const a1: string[] = [];
  const s1: string[] = [];
  const sb = fs.sb;
  if (!inRange(fs.dirtyClusters, fs.blocksCount)) a1.push(`dirtyClusters ${fs.dirtyClusters}`);
  if (!inRange(sbFreeBlocks(sb), fs.blocksCount)) a1.push(`s_free_blocks_count ${sbFreeBlocks(sb)} of ${fs.blocksCount} blocks`);
  if (!inRange(sb.s_free_inodes_count, fs.inodesCount)) a1.push(`s_free_inodes_count ${sb.s_free_inodes_count} of ${fs.inodesCount} inodes`);
  for (let g = 0; g < fs.groupCount; g++) {
    const gd = fs.group(g);
    const blocks = gdFreeBlocks(gd, fs.descSize);
    const inodes = gdFreeInodes(gd, fs.descSize);
    if (!inRange(blocks, sb.s_clusters_per_group)) a1.push(`group ${g}: bg_free_blocks_count ${blocks} of ${sb.s_clusters_per_group}`);
    if (!inRange(inodes, fs.inodesPerGroup)) a1.push(`group ${g}: bg_free_inodes_count ${inodes} of ${fs.inodesPerGroup}`);
  }
  for (const c of inodeTable(fs).all()) {
    if (!inRange(c.reservedDataBlocks, fs.blocksCount)) a1.push(`inode ${c.ino}: reservedDataBlocks ${c.reservedDataBlocks}`);
    let delayed = 0;
    for (const p of c.pages.values()) if (p.delayed) delayed++;
    if (delayed > 0) s1.push(`inode ${c.ino}: ${delayed} delayed pages after sync`);
  }
  return { a1, s1 };
}

/** A1 and S1 on every dquot, in core or in the files. */
async function dquotProblems(q: QuotaSet): Promise<{ a1: string[]; s1: string[] }> {
  const a1: string[] = [];
  const s1: string[] = [];
  for (const t of q.types()) {
    for (const d of await q.report(t)) {
      const what = `${t} ${d.id}`;
      if (!inRange(d.curspace, Number.MAX_SAFE_INTEGER)) a1.push(`${what}: curspace ${d.curspace}`);
      if (!inRange(d.curinodes, Number.MAX_SAFE_INTEGER)) a1.push(`${what}: curinodes ${d.curinodes}`);
      if (!inRange(d.rsvspace, Number.MAX_SAFE_INTEGER)) a1.push(`${what}: rsvspace ${d.rsvspace}`);
      else if (d.rsvspace !== 0) s1.push(`${what}: ${d.rsvspace} bytes still reserved after sync`);
    }
  }
  return { a1, s1 };
}

/**
 * Sync `vol`, then check the quiescent invariants on it (see the file header). `fsck: false`
 * leaves out the checker (Q7, and with it Q2-Q4). Corrupt metadata is reported, not thrown;
 * throws what sync throws, and device errors.
 */
export async function checkInvariants(vol: Volume, opts: { fsck?: boolean } = {}): Promise<InvariantReport> {
  await vol.sync();
  const fs = vol.fs;
  const problems: string[] = [];
  const add = (id: string, lines: readonly string[]): void => {
    for (const l of lines) problems.push(`${id}: ${l}`);
  };
  const counters = counterProblems(fs);
  const dquots = vol.quota === null ? { a1: [], s1: [] } : await dquotProblems(vol.quota);
  add("S1", [...reservationProblems(fs), ...counters.s1, ...dquots.s1]);
  add("A1", [...counters.a1, ...dquots.a1]);
  // A tree too broken to walk stops the audit, not the check: the checker says more.
  const audit = await auditVolume(fs).catch((e: unknown) => {
    if (!(e instanceof FsError)) throw e;
    add("Q1", [`cannot audit: ${e.message}`]);
    return null;
  });
  if (audit !== null) {
    add("Q1", audit.problems);
    if (vol.quota !== null) add("Q5", await compareQuota(vol.quota, audit.usage));
  }
  if (opts.fsck !== false) {
    const report = await check(vol, { force: true });
    // Only what makes e2fsck -fn exit non-zero; a note that is no error is no violation.
    const errors = report.problems.filter((p) => p.error);
    add("Q7", errors.map((p) => `${p.name}: ${p.message}`));
    if (report.aborted !== undefined) add("Q7", [`check aborted: ${report.aborted}`]);
    else if (!report.clean && errors.length === 0) add("Q7", [`not clean (exit ${report.exitCode}), ${report.problemsDropped} problems not kept`]);
  }
  return { ok: problems.length === 0, problems };
}
