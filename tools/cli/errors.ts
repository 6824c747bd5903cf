/** Errors the command line reports itself (main.ts maps them to exit codes). */

/** A failure already phrased for the user (coreutils style), exit 1. */
export class CommandFailure extends Error {}
