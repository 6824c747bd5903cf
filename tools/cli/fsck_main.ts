/**
 * `ext4ts fsck` on its own: bin/ext4ts.js comes here for fsck, so a check (timed against
 * e2fsck in bench/fsck.mjs) does not load the other commands' modules. The program is
 * main.ts's with only fsck registered: same name, options, help and exit statuses.
 */

import { registerFsck } from "./fsck_cmd.js";
import { baseProgram, runProgram } from "./run.js";

export function main(argv: string[]): Promise<number> {
  const program = baseProgram();
  registerFsck(program);
  return runProgram(program, argv);
}
