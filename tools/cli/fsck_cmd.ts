/**
 * `ext4ts fsck [-n|-p|-y] [-f] [--json] IMAGE`: check and repair an image as e2fsck does.
 *
 * -n (the default) opens the image read-only and answers no to every question; -y answers
 * yes, -p preens (fixes what e2fsck -p fixes, stops at anything else with e2fsck's
 * "UNEXPECTED INCONSISTENCY"). Messages, questions and exit codes are e2fsck's: 0 clean,
 * 1 errors corrected, 4 errors left uncorrected, 8 operational error (12 with errors left),
 * 16 usage error. A repair ext4ts does not implement yet is answered "no" and named on
 * stderr, and the run exits 4: it never claims a repair it did not make. Without -f a
 * volume marked clean is not checked ("IMAGE: clean, ..."), as e2fsck does.
 *
 * main.ts maps every action to exit 0/1/2/70; fsck needs e2fsck's codes, so the action sets
 * its own through process.exitCode at exit (the last word, after bin/ext4ts.js stores main's 0).
 */

import type { Command } from "commander";
import { FileDevice } from "../../src/device/file.js";
import { FsError } from "../../src/errors.js";
import { check, formatProblem, type FsckReport, type Problem } from "../../src/fsck/check.js";
import { PR_0_USING_BACKUP } from "../../src/fsck/problem.js";
import { SANITY_HELPER_MIN_INODES, inodesInUse, sanityHelpers } from "./fsck_offload.js";

interface FsckCliOptions {
  n?: boolean;
  f?: boolean;
  p?: boolean;
  y?: boolean;
  json?: boolean;
}

let exitCode: number | undefined;

/** Make `code` the process exit status, whatever main returns. */
function setExit(code: number): void {
  if (exitCode === undefined) {
    process.once("exit", () => {
      if (exitCode !== undefined) process.exitCode = exitCode;
    });
  }
  exitCode = code;
}

/**
 * ext4ts's own "problems" for the places e2fsck -n gives up by setting E2F_FLAG_ABORT (codes
 * 0x?f0??, message "e2fsck: aborted"): e2fsck says so on stderr, once.
 */
function isGiveUp(p: Problem): boolean {
  // "e2fsck: ... trying backup blocks..." is not one: e2fsck says it on stdout (log_out).
  return (p.code & 0xf000) === 0xf000 && p.code !== PR_0_USING_BACKUP.code && p.message.startsWith("e2fsck: ");
}

function out(s: string): void {
  process.stdout.write(s);
}

function reportJson(rep: FsckReport): string {
  return JSON.stringify({
    device: rep.device,
    clean: rep.clean,
    exitCode: rep.exitCode,
    skipped: rep.skipped,
    aborted: rep.aborted ?? null,
    summary: rep.summary,
    summaryLine: rep.summaryLine,
    problemsDropped: rep.problemsDropped,
    stderr: rep.stderr,
    problems: rep.problems.map((p) => ({ ...p, code: `0x${p.code.toString(16).padStart(6, "0")}` })),
  });
}

async function runFsck(image: string, o: FsckCliOptions): Promise<number> {
  if ([o.n, o.p, o.y].filter((x) => x === true).length > 1) {
    process.stderr.write("ext4ts: fsck: only one of the options -p/-a, -n or -y may be specified\n");
    return 16;
  }
  const repair = o.y === true ? "yes" : o.p === true ? "preen" : undefined;
  const preen = repair === "preen";
  // The helper thread starts before the volume is opened when the superblock promises a large scan.
  const sanityHelper = sanityHelpers(SANITY_HELPER_MIN_INODES, inodesInUse(image) >= SANITY_HELPER_MIN_INODES);
  let dev: FileDevice;
  try {
    // Synchronous reads, as e2fsck makes them: nothing else shares this process's event loop.
    dev = await FileDevice.open(image, { readOnly: repair === undefined, syncIO: true });
  } catch (e) {
    process.stderr.write(`ext4ts: fsck: ${e instanceof Error ? e.message : String(e)}\n`);
    return 8;
  }
  const json = o.json === true;
  try {
    let device = image;
    const report = await check(dev, {
      force: o.f === true,
      name: image,
      sanityHelper,
      ...(repair !== undefined ? { repair } : {}),
      onPass: (_pass, title) => {
        if (!json && !preen) out(`${title}\n`);
      },
      onDevice: (name) => {
        device = name;
      },
      onWarning: (w) => {
        if (!json) out(`${w}\n`);
      },
      onStderr: (line) => {
        if (!json) process.stderr.write(`${line}\n`);
      },
      onProblem: (p: Problem) => {
        if (json) return;
        if (isGiveUp(p)) {
          process.stderr.write(`${p.message}\n`); // e2fsck's "e2fsck: aborted" goes to stderr
          return;
        }
        out(formatProblem(p, preen ? device : undefined));
      },
    });
    if (json) out(`${reportJson(report)}\n`);
    else {
      if (report.preenHalted) {
        process.stderr.write(`\n\n${report.device}: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY.\n\t(i.e., without -a or -p options)\n`);
        return report.exitCode;
      }
      if (report.modified && !preen) out(`\n${report.device}: ***** FILE SYSTEM WAS MODIFIED *****\n`);
      const warning = `\n${report.device}: ********** WARNING: Filesystem still has errors **********\n\n`;
      if (!report.clean && !report.skipped) out(warning);
      // A fatal problem inside passes 1-5 (not a give-up) runs e2fsck's fatal_error, which
      // unwinds to main, whose own fatal_error ("aborted") says it all again.
      const fatal = report.problems.find((p) => p.fatal);
      if (fatal !== undefined && fatal.pass >= 1 && !isGiveUp(fatal)) {
        if (!report.clean) out(warning);
        process.stderr.write("e2fsck: aborted\n");
      }
      if (report.aborted === undefined || report.skipped) out(`${report.summaryLine}\n`);
      const unsupported = [...new Set(report.problems.filter((p) => p.unsupported).map((p) => p.name))];
      if (unsupported.length > 0) {
        process.stderr.write(`ext4ts: fsck: left unrepaired, ext4ts cannot repair these yet: ${unsupported.join(", ")}; e2fsck -fy can\n`);
      }
    }
    return report.exitCode;
  } catch (e) {
    const msg = e instanceof FsError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
    process.stderr.write(`ext4ts: fsck: ${e instanceof FsError ? "" : "internal error (please report): "}${msg}\n`);
    return 8;
  } finally {
    await dev.close();
  }
}

/** Adds the `fsck` subcommand to the ext4ts program. */
export function registerFsck(program: Command): void {
  program
    .command("fsck")
    .description("check and repair an image like e2fsck; exit 0 clean, 1 errors corrected, 4 errors left, 8 operational error, 16 usage")
    .argument("<image>", "image file (written only with -p or -y)")
    .option("-n", "open read-only and answer no to every question (the default)")
    .option("-f", "check even if the filesystem seems clean")
    .option("-p", "preen: repair what is safe to repair without asking, stop at anything else (exit 4)")
    .option("-y", "answer yes to every question (repairs ext4ts cannot make yet are reported and left, exit 4)")
    .option("--json", "print the report as one JSON object")
    .exitOverride((err) => {
      if (err.exitCode !== 0) setExit(16);
      throw err;
    })
    .action(async (image: string, o: FsckCliOptions) => {
      setExit(await runFsck(image, o));
    });
}
