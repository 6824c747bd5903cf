/**
 * The check report: problems as typed records, the verdict and e2fsck's summary line.
 *
 * `Reporter` plays the part of e2fsck's fix_problem for a run that answers no to every
 * question (-n): it records the problem, and a declined prompt without PR_NO_OK marks the
 * volume as having errors (ext2fs_unmark_valid). Before pass 1 nothing counts, as e2fsck
 * marks the volume valid again after check_super_block; `fatal` problems stop the run
 * (e2fsck's fatal_error, exit 8, or 12 with errors).
 *
 * Memory stays bounded on a badly damaged volume: at most `maxProblems` records are kept;
 * the rest are counted per code.
 */

import { problemDef, type ProblemArgs, type ProblemClass, type ProblemDef, type Prompt } from "./problem.js";

/** One problem found. */
export interface Problem {
  /** e2fsck's problem code (e.g. 0x01000d); codes 0x00f0xx are ext4ts's own pre-pass notes. */
  readonly code: number;
  /** e2fsck's name ("PR_1_BAD_I_BLOCKS"). */
  readonly name: string;
  /** The pass that found it (1B-1D count as 1). */
  readonly pass: 0 | 1 | 2 | 3 | 4 | 5;
  readonly cls: ProblemClass;
  /** As e2fsck prints it, without the prompt: "Inode 12, i_blocks is 24, should be 16." */
  readonly message: string;
  /** The question a repair answers ("Fix", "Clear", ...); "" when there is none. */
  readonly prompt: Prompt;
  /** Declining the fix leaves the volume in error (it counts against "clean"). */
  readonly error: boolean;
  /** Answered by an earlier latch question (e2fsck prints "IGNORED." instead of asking). */
  readonly latched: boolean;
  readonly fatal: boolean;
  readonly ino?: number;
  readonly block?: number;
  readonly group?: number;
}

export interface FsckSummary {
  inodesUsed: number;
  inodesCount: number;
  blocksUsed: number;
  /** blocksUsed exactly, as e2fsck prints it (a free count above the total wraps around 2^64). */
  blocksUsedText: string;
  blocksCount: number;
  /** Files and directories whose blocks are not contiguous, in tenths of a percent of inodes in use. */
  nonContiguousPermille: number;
  directories: number;
  regularFiles: number;
  symlinks: number;
}

export interface FsckReport {
  /** The name messages use for the volume (e2fsck's device name). */
  readonly device: string;
  /** No problem that counts, and the check ran to the end (or was skipped as clean). */
  readonly clean: boolean;
  /** e2fsck's exit status for -n: 0 clean, 4 errors left, 8 operational error, 12 both. */
  readonly exitCode: 0 | 4 | 8 | 12;
  /** Without -f on a clean-marked volume: nothing was checked (e2fsck's "clean, ..." line). */
  readonly skipped: boolean;
  /** Notes e2fsck prints that are not problems ("Warning: skipping journal recovery ..."). */
  readonly warnings: readonly string[];
  /** Lines e2fsck writes to stderr (the quota comparison's "[QUOTA WARNING] ..."). */
  readonly stderr: readonly string[];
  /** Why the check stopped early (e2fsck's fatal errors), if it did. */
  readonly aborted?: string;
  readonly problems: readonly Problem[];
  /** Problems found but not kept (past maxProblems). */
  readonly problemsDropped: number;
  /** How many problems of each code were found, kept or not. */
  readonly counts: ReadonlyMap<number, number>;
  readonly summary: FsckSummary;
  /** "IMAGE: 11/2048 files (0.0% non-contiguous), 1100/8192 blocks" (or the "clean" line). */
  readonly summaryLine: string;
  /** Milliseconds spent in each pass (index 0 = opening and superblock checks). */
  readonly passMs: readonly number[];
}

/** Thrown to stop the run at a fatal problem; `check` turns it into an aborted report. */
export class FsckAbort extends Error {
  constructor(readonly problem: Problem) {
    super(problem.message);
  }
}

export interface ReporterOptions {
  maxProblems?: number;
  onProblem?: (p: Problem) => void;
}

export class Reporter {
  readonly problems: Problem[] = [];
  readonly counts = new Map<number, number>();
  dropped = 0;
  /** e2fsck's ext2fs_test_valid: false once a counting problem was declined. */
  valid = true;
  /** Problems before pass 1 do not count (e2fsck re-marks the volume valid after them). */
  counting = false;
  aborted: Problem | undefined;
  readonly #max: number;
  readonly #onProblem: ((p: Problem) => void) | undefined;
  /** Latch groups already asked (e2fsck's PRL_LATCHED), per inode or per pass. */
  readonly #latched = new Set<number>();

  constructor(o: ReporterOptions = {}) {
    this.#max = o.maxProblems ?? 10_000;
    this.#onProblem = o.onProblem;
  }

  /**
   * Record a problem and answer it "no". Returns false (the fix was declined) so call sites
   * read like e2fsck's `if (fix_problem(...))`. A fatal problem throws FsckAbort. `always`
   * counts it even before pass 1 (a problem that makes e2fsck give up with the volume in
   * error); `latched` marks one answered by its latch group's question.
   */
  fix(d: ProblemDef, a: ProblemArgs = {}, where: { ino?: number; block?: number; group?: number } = {}, always = false, latched = false): false {
    const error = ((d.prompt !== "" || d.nullPrompt) && !d.noOk && this.counting) || always;
    if (error) this.valid = false;
    const ino = where.ino ?? a.ino;
    const block = where.block ?? a.blk;
    const group = where.group ?? a.group;
    const p: Problem = {
      code: d.code,
      name: d.name,
      pass: d.pass,
      cls: d.cls,
      message: d.format(a),
      prompt: d.prompt,
      error,
      latched,
      fatal: d.fatal,
      ...(ino !== undefined ? { ino } : {}),
      ...(block !== undefined ? { block } : {}),
      ...(group !== undefined ? { group } : {}),
    };
    this.counts.set(d.code, (this.counts.get(d.code) ?? 0) + 1);
    if (this.problems.length < this.#max) this.problems.push(p);
    else this.dropped++;
    this.#onProblem?.(p);
    if (d.fatal) {
      this.aborted = p;
      throw new FsckAbort(p);
    }
    return false;
  }

  /**
   * Ask a latch question once (e2fsck's PR_LATCH_* groups: "Inode 12 has illegal block(s).
   * Clear?" before the individual blocks). `key` identifies the latch instance.
   */
  latch(key: number, d: ProblemDef, a: ProblemArgs = {}): void {
    if (this.#latched.has(key)) return;
    this.#latched.add(key);
    this.fix(d, a);
  }

  /** End a latch group (e2fsck's end_problem_latch) so the next instance asks again. */
  endLatch(key: number): void {
    this.#latched.delete(key);
  }

  /** Mark the volume in error without a record of its own (e2fsck's bare ext2fs_unmark_valid). */
  unmarkValid(): void {
    if (this.counting) this.valid = false;
  }

  hasCode(code: number): boolean {
    return this.counts.has(code);
  }
}

/** e2fsck's exit status for a -n run. */
export function exitCodeOf(valid: boolean, aborted: boolean): 0 | 4 | 8 | 12 {
  if (aborted) return valid ? 8 : 12;
  return valid ? 0 : 4;
}

/** The e2fsck summary line: "NAME: 11/2048 files (0.0% non-contiguous), 1100/8192 blocks". */
export function summaryLine(device: string, s: FsckSummary): string {
  const pct = `${Math.floor(s.nonContiguousPermille / 10)}.${s.nonContiguousPermille % 10}`;
  return `${device}: ${s.inodesUsed}/${s.inodesCount} files (${pct}% non-contiguous), ${s.blocksUsedText}/${s.blocksCount} blocks`;
}

/** Render a problem as e2fsck -n prints it: the message, then the prompt answered no. */
export function formatProblem(p: Problem): string {
  const d = problemDef(p.code);
  if (d?.nullPrompt === true) return `${p.message}? no\n\n`;
  if (p.prompt === "") return `${p.message}\n`;
  if (p.message === "") return `${p.prompt}? no\n\n`;
  const sep = d?.sep ?? "\n";
  if (p.latched) return `${p.message}${sep}IGNORED.\n`;
  return `${p.message}${sep}${p.prompt}? no\n\n`;
}
