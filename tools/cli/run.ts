/**
 * What every `ext4ts` entry point shares: the program's name and version, and the mapping
 * of what an action throws to an exit status (0 success, 1 the operation failed, 2 usage,
 * 70 an internal error). Kept apart from main.ts so that an entry point for one command
 * (fsck_main.ts) loads only that command's modules.
 */

import { Command, CommanderError } from "commander";
import { FsError } from "../../src/errors.js";
import { CommandFailure } from "./errors.js";

/** The `ext4ts` program with no commands yet. */
export function baseProgram(): Command {
  return new Command()
    .name("ext4ts")
    .description("Read, inspect and extract ext2/ext3/ext4 images without a kernel")
    .version("0.1.0")
    .showHelpAfterError()
    .exitOverride();
}

/** Run `program` on `argv` (process.argv's shape); returns the exit status. */
export async function runProgram(program: Command, argv: string[]): Promise<number> {
  let cmd = "ext4ts";
  try {
    if (argv.length <= 2) {
      program.outputHelp();
      return 0;
    }
    cmd = argv[2] ?? cmd;
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 || e.code === "commander.helpDisplayed" || e.code === "commander.version" ? 0 : 2;
    }
    if (e instanceof CommandFailure) {
      if (e.message !== "") process.stderr.write(`ext4ts: ${e.message}\n`);
      return 1;
    }
    if (e instanceof FsError) {
      process.stderr.write(`ext4ts: ${cmd}: ${e.message}\n`);
      return 1;
    }
    // Anything else is a bug in ext4ts: say so plainly, with the stack for the report.
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(`ext4ts: ${cmd}: internal error (please report): ${err.stack ?? err.message}\n`);
    return 70;
  }
}
