/**
 * The check report: problems as typed records, the verdict and e2fsck's summary line.
 *
 * `Reporter` plays the part of e2fsck's fix_problem. It records each problem and answers
 * its question by the run's mode: -n answers no, -y yes, -p (preen) yes to the problems
 * e2fsck marks PR_PREEN_OK and stops the run at any other ("UNEXPECTED INCONSISTENCY").
 * A declined prompt without PR_NO_OK marks the volume as having errors
 * (ext2fs_unmark_valid). Before pass 1 nothing counts, as e2fsck marks the volume valid
 * again after check_super_block; `fatal` problems stop the run (e2fsck's fatal_error,
 * exit 8, or 12 with errors).
 *
 * Two entry points keep repairs honest: `ask` is for call sites that carry out the repair
 * when the answer is yes; `fix` is for those whose repair ext4ts does not implement yet. In
 * a repairing run `fix` still answers no, marks the problem `unsupported` and leaves the
 * volume in error (exit 4), so a run never claims a repair it did not make.
 *
 * Memory stays bounded on a badly damaged volume: at most `maxProblems` records are kept;
 * the rest are counted per code.
 */

import { problemDef, type ProblemArgs, type ProblemClass, type ProblemDef, type Prompt } from "./problem.js";

/** The record a preen halt stands on when no problem was recorded before it. */
const PREEN_HALT: Problem = {
  code: 0, name: "PREEN_HALT", pass: 0, cls: "superblock", message: "UNEXPECTED INCONSISTENCY", prompt: "", error: true,
  latched: false, answer: false, unsupported: false, fatal: true,
};

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
  /** Answered by an earlier latch question (e2fsck prints "CLEARED." or "IGNORED." instead of asking). */
  readonly latched: boolean;
  /** The answer: true when the repair was made. */
  readonly answer: boolean;
  /** A repairing run met a problem whose repair ext4ts does not implement (answered no). */
  readonly unsupported: boolean;
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
  /**
   * e2fsck's exit status: 0 clean, 1 errors corrected, 4 errors left uncorrected, 8
   * operational error, 12 both (a -p run that stopped at a problem it may not fix: 4).
   */
  readonly exitCode: 0 | 1 | 4 | 8 | 12;
  /** A repairing run wrote to the volume (e2fsck's "FILE SYSTEM WAS MODIFIED"). */
  readonly modified: boolean;
  /** A -p run stopped at a problem preen may not fix (e2fsck's preenhalt). */
  readonly preenHalted: boolean;
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
  /**
   * The most bytes the check's per-inode and per-block maps and lists held at the end of a
   * pass (CheckContext.structureBytes): the part of its memory that grows with the volume.
   */
  readonly structureBytes: number;
}

/** Thrown to stop the run at a fatal problem; `check` turns it into an aborted report. */
export class FsckAbort extends Error {
  constructor(readonly problem: Problem) {
    super(problem.message);
  }
}

/** How questions are answered: e2fsck -n, -y, -p. */
export type RepairMode = "no" | "yes" | "preen";

/**
 * Thrown by a repair that invalidates what the passes have learned (e2fsck's
 * E2F_FLAG_RESTART): `check` writes what was done and checks again from the start.
 */
export class FsckRestart extends Error {
  constructor() {
    super("Restarting e2fsck from the beginning...");
  }
}

export interface ReporterOptions {
  maxProblems?: number;
  onProblem?: (p: Problem) => void;
  mode?: RepairMode;
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
  /** Set when a -p run stopped at a problem preen may not fix. */
  preenHalted = false;
  /** Problems answered yes (repairs made). */
  fixed = 0;
  readonly mode: RepairMode;
  readonly #max: number;
  readonly #onProblem: ((p: Problem) => void) | undefined;
  /** Latch groups already asked (e2fsck's PRL_LATCHED) and their answers, per inode or per pass. */
  readonly #latched = new Map<number, boolean>();

  constructor(o: ReporterOptions = {}) {
    this.#max = o.maxProblems ?? 10_000;
    this.#onProblem = o.onProblem;
    this.mode = o.mode ?? "no";
  }

  /** A repairing run (-y or -p): the volume is open for writing. */
  get repairing(): boolean {
    return this.mode !== "no";
  }

  /**
   * Record a problem whose repair ext4ts does not implement, and answer it "no". Returns
   * false so call sites read like e2fsck's `if (fix_problem(...))`. A fatal problem throws
   * FsckAbort. `always` counts it even before pass 1 (a problem that makes e2fsck give up
   * with the volume in error); `latched` marks one answered by its latch group's question.
   * In a repairing run a problem with a question is `unsupported` and leaves the volume in
   * error; a -p run stops there, as e2fsck stops at a problem it may not preen.
   */
  fix(d: ProblemDef, a: ProblemArgs = {}, where: { ino?: number; block?: number; group?: number } = {}, always = false, latched = false): false {
    const asks = (d.prompt !== "" || d.nullPrompt) && !d.noOk;
    const unsupported = this.repairing && asks;
    this.#record(d, a, where, (asks && this.counting) || always || unsupported, latched, false, unsupported);
    if (unsupported && this.mode === "preen") this.#preenHalt();
    return false;
  }

  /**
   * Record a problem whose repair the call site carries out when this returns true (e2fsck's
   * `if (fix_problem(ctx, code, &pctx)) { repair }`). -n answers no (the volume stays in
   * error unless PR_NO_OK); -y yes; -p yes when e2fsck may preen it, else the run stops.
   * `latched` is the answer of the latch question that covers this problem, if any.
   */
  ask(d: ProblemDef, a: ProblemArgs = {}, where: { ino?: number; block?: number; group?: number } = {}, latched?: boolean): boolean {
    const asks = d.prompt !== "" || d.nullPrompt;
    // A problem without a question is answered by e2fsck's default: yes when repairing,
    // unless PR_NO_DEFAULT. @e2fsprogs fix_problem (def_yn)
    const answer = latched ?? (this.mode !== "no" && (asks || !d.noDefault));
    if (latched === undefined && asks && this.mode === "preen" && !d.preenOk) {
      this.#record(d, a, where, true, false, false, false);
      this.#preenHalt();
    }
    this.#record(d, a, where, asks && !answer && !d.noOk && this.counting, latched !== undefined, answer, false);
    // e2fsck's E2F_FLAG_PROBLEMS_FIXED, which makes the exit status 1: a question answered yes.
    if (answer && asks && !d.notAFix) this.fixed++;
    return answer;
  }

  /** e2fsck's preenhalt where no problem asks it: a -p run stops there; other runs go on. */
  preenHalt(): void {
    if (this.mode === "preen") this.#preenHalt();
  }

  /** e2fsck's preenhalt: stop a -p run, the volume left with errors (exit 4). */
  #preenHalt(): never {
    this.valid = false;
    this.preenHalted = true;
    const last = this.problems[this.problems.length - 1];
    if (last !== undefined) this.aborted = last;
    throw new FsckAbort(last ?? PREEN_HALT);
  }

  #record(
    d: ProblemDef, a: ProblemArgs, where: { ino?: number; block?: number; group?: number },
    error: boolean, latched: boolean, answer: boolean, unsupported: boolean,
  ): void {
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
      answer,
      unsupported,
      fatal: d.fatal,
      ...(ino !== undefined ? { ino } : {}),
      ...(block !== undefined ? { block } : {}),
      ...(group !== undefined ? { group } : {}),
    };
    this.counts.set(d.code, (this.counts.get(d.code) ?? 0) + 1);
    if (this.problems.length < this.#max) this.problems.push(p);
    else this.dropped++;
    this.#onProblem?.(p);
    // A problem that stops the check when declined (the MMP block) goes on once repaired.
    if (d.fatal && !answer) {
      this.aborted = p;
      throw new FsckAbort(p);
    }
  }

  /**
   * Ask a latch question once (e2fsck's PR_LATCH_* groups: "Inode 12 has illegal block(s).
   * Clear?" before the individual blocks) and return its answer, which then answers every
   * problem of the group. `key` identifies the latch instance. `repairable` says whether the
   * group's repairs are implemented (ask) or not (fix).
   */
  latch(key: number, d: ProblemDef, a: ProblemArgs = {}, repairable = false): boolean {
    const had = this.#latched.get(key);
    if (had !== undefined) return had;
    const answer = repairable ? this.ask(d, a) : this.fix(d, a);
    this.#latched.set(key, answer);
    return answer;
  }

  /** End a latch group (e2fsck's end_problem_latch) so the next instance asks again. */
  endLatch(key: number): void {
    if (this.#latched.size !== 0) this.#latched.delete(key); // once per inode: the usual empty map costs nothing
  }

  /** Mark the volume in error without a record of its own (e2fsck's bare ext2fs_unmark_valid). */
  unmarkValid(): void {
    if (this.counting) this.valid = false;
  }

  hasCode(code: number): boolean {
    return this.counts.has(code);
  }
}

/**
 * e2fsck's exit status: FSCK_UNCORRECTED (4) when errors remain, else FSCK_NONDESTRUCT (1)
 * when a problem was fixed (or a volume not marked valid was); FSCK_ERROR (8) on top when the
 * run stopped (a -p run that stopped at a problem it may not fix exits 4, as preenhalt does).
 */
export function exitCodeOf(valid: boolean, aborted: boolean, corrected = false, preenHalted = false): 0 | 1 | 4 | 8 | 12 {
  if (preenHalted) return 4;
  if (aborted) return valid ? 8 : 12;
  if (!valid) return 4;
  return corrected ? 1 : 0;
}

/** The e2fsck summary line: "NAME: 11/2048 files (0.0% non-contiguous), 1100/8192 blocks". */
export function summaryLine(device: string, s: FsckSummary): string {
  const pct = `${Math.floor(s.nonContiguousPermille / 10)}.${s.nonContiguousPermille % 10}`;
  return `${device}: ${s.inodesUsed}/${s.inodesCount} files (${pct}% non-contiguous), ${s.blocksUsedText}/${s.blocksCount} blocks`;
}

/** e2fsck's preen_msg: what a latched or preened yes prints instead of the question. */
const DONE: Partial<Record<Prompt, string>> = {
  Fix: "FIXED", Clear: "CLEARED", Relocate: "RELOCATED", Allocate: "ALLOCATED", Expand: "EXPANDED",
  "Connect to /lost+found": "RECONNECTED", Create: "CREATED", Salvage: "SALVAGED", Truncate: "TRUNCATED",
  "Clear inode": "INODE CLEARED", Abort: "ABORTED", Split: "SPLIT", Continue: "CONTINUING",
  "Clone multiply-claimed blocks": "MULTIPLY-CLAIMED BLOCKS CLONED", "Delete file": "FILE DELETED",
  "Suppress messages": "SUPPRESSED", Unlink: "UNLINKED", "Clear HTree index": "HTREE INDEX CLEARED",
  Recreate: "WILL RECREATE", Optimize: "WILL OPTIMIZE", "Clear flag": "FLAG CLEARED",
};

/**
 * Render a problem as e2fsck prints it: the message, then the question and its answer
 * ("Fix? no" with -n, "Fix? yes" with -y), or for one answered by its latch "CLEARED." /
 * "IGNORED.". A problem ext4ts could not repair in a -y run says so after its "no".
 */
export function formatProblem(p: Problem, preenDevice?: string): string {
  const d = problemDef(p.code);
  if (preenDevice !== undefined) return formatPreen(p, preenDevice);
  const yn = p.answer ? "yes" : p.unsupported ? "no (ext4ts cannot repair this yet)" : "no";
  if (d?.nullPrompt === true) return `${p.message}? ${yn}\n\n`;
  if (p.prompt === "") return `${p.message}\n`;
  if (p.message === "") return `${p.prompt}? ${yn}\n\n`;
  const sep = d?.sep ?? "\n";
  if (p.latched) return `${p.message}${sep}${p.answer ? (DONE[p.prompt] ?? "FIXED") : "IGNORED"}.\n`;
  return `${p.message}${sep}${p.prompt}? ${yn}\n\n`;
}

/**
 * A problem as e2fsck -p prints it: "NAME: message" and, for a repair, what was done
 * ("FIXED."); PR_PREEN_NOMSG problems are fixed silently.
 */
function formatPreen(p: Problem, device: string): string {
  const d = problemDef(p.code);
  if (d?.preenNoMsg === true && (p.answer || !p.error)) return "";
  const head = d?.preenNoHdr === true ? "" : `${device}: `;
  if (p.prompt === "" && d?.nullPrompt !== true) return `${head}${p.message}\n`;
  // Unanswered: the preen halt follows. A message that ends on its question's line keeps its
  // trailing spaces and no newline there (preenhalt starts with its own "\n\n").
  if (!p.answer) return `${head}${p.message}${p.message === "" ? "" : d?.sameLine === true ? d.sep : "\n"}`;
  return `${head}${p.message}${d?.sep ?? "\n"}${DONE[p.prompt] ?? "FIXED"}.\n`;
}
