/**
 * `ext4ts fsck [-n] [-f] [-p] [-y] [--json] IMAGE`: check an image as e2fsck does.
 *
 * This round checks only (-n, the default): the image is opened read-only and every
 * question is answered no, with e2fsck's messages and exit codes: 0 clean, 4 errors left
 * uncorrected, 8 operational error (12 when both), 16 usage error. -p and -y (repair) are
 * refused with exit 8 until repairs land. Without -f a volume marked clean is not checked
 * ("IMAGE: clean, ..."), as e2fsck does.
 *
 * main.ts maps every action to exit 0/1/2/70; fsck needs e2fsck's codes, so the action sets
 * its own through process.exitCode at exit (the last word, after bin/ext4ts.js stores main's 0).
 */

import type { Command } from "commander";
import { FileDevice } from "../../src/node.js";
import { FsError } from "../../src/errors.js";
import { check, formatProblem, type FsckReport, type Problem } from "../../src/fsck/check.js";

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
  return (p.code & 0xf000) === 0xf000 && p.message.startsWith("e2fsck: ");
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
  if (o.p === true || o.y === true) {
    process.stderr.write(`ext4ts: fsck: repair (${o.p === true ? "-p" : "-y"}) is not implemented yet; check with -n\n`);
    return 8;
  }
  let dev: FileDevice;
  try {
    dev = await FileDevice.open(image, { readOnly: true });
  } catch (e) {
    process.stderr.write(`ext4ts: fsck: ${e instanceof Error ? e.message : String(e)}\n`);
    return 8;
  }
  const json = o.json === true;
  try {
    const report = await check(dev, {
      force: o.f === true,
      name: image,
      onPass: (_pass, title) => {
        if (!json) out(`${title}\n`);
      },
      onWarning: (w) => {
        if (!json) out(`${w}\n`);
      },
      onStderr: (line) => {
        if (!json) process.stderr.write(`${line}\n`);
      },
      onProblem: (p: Problem) => {
        if (json) return;
        if (p.pass === 0 && p.code === 0x00f005) {
          out(`${p.message}\n`);
          return;
        }
        if (isGiveUp(p)) {
          process.stderr.write(`${p.message}\n`); // e2fsck's "e2fsck: aborted" goes to stderr
          return;
        }
        out(formatProblem(p));
      },
    });
    if (json) out(`${reportJson(report)}\n`);
    else {
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
    .description("check an image like e2fsck (-n: read-only, answer no; -f: check even if clean); exit 0 clean, 4 errors, 8 operational error, 16 usage")
    .argument("<image>", "image file (never written)")
    .option("-n", "open read-only and answer no to every question (the default)")
    .option("-f", "check even if the filesystem seems clean")
    .option("-p", "repair safe problems automatically (not implemented yet: exit 8)")
    .option("-y", "answer yes to every question (not implemented yet: exit 8)")
    .option("--json", "print the report as one JSON object")
    .exitOverride((err) => {
      if (err.exitCode !== 0) setExit(16);
      throw err;
    })
    .action(async (image: string, o: FsckCliOptions) => {
      setExit(await runFsck(image, o));
    });
}
