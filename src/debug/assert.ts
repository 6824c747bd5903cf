/**
 * Invariant checks. A failed assertion is a bug in ext4ts, never an errno: it throws
 * AssertionError, which nothing in the engine catches. Corrupt input is reported with
 * FsError("EFSCORRUPTED") instead.
 */

export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

export function assert(cond: unknown, msg: string | (() => string) = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(typeof msg === "function" ? msg() : msg);
}

export function assertNever(x: never, what = "value"): never {
  throw new AssertionError(`Unexpected ${what}: ${String(x)}`);
}

/** 0 off, 1 cheap checks (tests' default), 2 expensive re-verification. */
export let debugLevel = 1;
export function setDebugLevel(level: 0 | 1 | 2): void {
  debugLevel = level;
}
