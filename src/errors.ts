/**
 * Errno codes and the one error class the engine throws.
 *
 * Corrupt metadata is EFSCORRUPTED and a bad checksum EFSBADCRC, never EIO (EIO means
 * the device failed). Node and FUSE callers get the Linux numbers through `errnoNumber`.
 */

export type Errno =
  | "ENOENT" | "EEXIST" | "ENOTDIR" | "EISDIR" | "ENOTEMPTY" | "ENAMETOOLONG"
  | "ENOSPC" | "EDQUOT" | "EFBIG" | "EMLINK" | "EROFS" | "EINVAL" | "EBADF"
  | "EACCES" | "EPERM" | "EXDEV" | "ELOOP" | "ENODATA" | "ERANGE" | "EBUSY"
  | "EOPNOTSUPP" | "EIO" | "EFSCORRUPTED" | "EFSBADCRC" | "E2BIG" | "ENOMEM"
  | "EOVERFLOW" | "ENODEV";

/** Linux errno values (asm-generic/errno*.h); EFSCORRUPTED = EUCLEAN, EFSBADCRC = EBADMSG. */
const ERRNO_NUMBERS: Readonly<Record<Errno, number>> = {
  EPERM: 1, ENOENT: 2, EIO: 5, E2BIG: 7, EBADF: 9, ENOMEM: 12, EACCES: 13, EBUSY: 16,
  EEXIST: 17, EXDEV: 18, ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, EFBIG: 27, ENOSPC: 28,
  EROFS: 30, EMLINK: 31, ERANGE: 34, ENAMETOOLONG: 36, ENOTEMPTY: 39, ELOOP: 40,
  ENODATA: 61, EFSBADCRC: 74, EOVERFLOW: 75, EOPNOTSUPP: 95, EFSCORRUPTED: 117, EDQUOT: 122,
};

export function errnoNumber(code: Errno): number {
  return ERRNO_NUMBERS[code];
}

export interface FsErrorDetail {
  syscall?: string;
  path?: string;
  ino?: number;
  block?: number;
  cause?: unknown;
}

/**
 * An errno-carrying error. The message reads like Node's, plus where on disk the problem
 * is: `EFSCORRUPTED: Bad extent node: magic is 0x0000, expected 0xf30a (inode 12, block 345), open '/a'`.
 */
export class FsError extends Error {
  override readonly name = "FsError";
  readonly errno: number;
  readonly code: Errno;
  readonly detail: FsErrorDetail;
  /** The message without code, location or syscall. */
  readonly reason: string;

  constructor(code: Errno, reason: string, detail: FsErrorDetail = {}) {
    super(formatMessage(code, reason, detail), detail.cause === undefined ? undefined : { cause: detail.cause });
    this.code = code;
    this.reason = reason;
    this.detail = detail;
    this.errno = ERRNO_NUMBERS[code];
  }

  /** Same error with more detail (location or the syscall and path the API layer knows). */
  with(more: FsErrorDetail): FsError {
    const detail: FsErrorDetail = { ...this.detail };
    for (const [k, v] of Object.entries(more) as [keyof FsErrorDetail, unknown][]) {
      if (v !== undefined && detail[k] === undefined) (detail as Record<string, unknown>)[k] = v;
    }
    const e = new FsError(this.code, this.reason, detail);
    if (this.stack !== undefined) e.stack = this.stack;
    return e;
  }
}

function formatMessage(code: Errno, reason: string, d: FsErrorDetail): string {
  const loc: string[] = [];
  if (d.ino !== undefined) loc.push(`inode ${d.ino}`);
  if (d.block !== undefined) loc.push(`block ${d.block}`);
  let m = `${code}: ${reason}`;
  if (loc.length > 0) m += ` (${loc.join(", ")})`;
  if (d.syscall !== undefined) m += d.path === undefined ? `, ${d.syscall}` : `, ${d.syscall} '${d.path}'`;
  return m;
}

export function isFsError(e: unknown, code?: Errno): e is FsError {
  return e instanceof FsError && (code === undefined || e.code === code);
}
