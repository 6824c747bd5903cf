/** Test support: what a call ended with, as a string, for tables of expected outcomes. */

import { FsError } from "../src/errors.js";

/** "ok", or the errno of the FsError it rejected with; any other failure is rethrown. */
export async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    if (e instanceof FsError) return e.code;
    throw e;
  }
}
