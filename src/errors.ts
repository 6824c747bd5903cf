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
  | "EOPNOTSUPP" | "EIO" | "EFSCORRUPTED" | "EFSBADCRC" | "E2BIG" | "ENOMEM";

/** Linux errno values (asm-generic/errno*.h); EFSCORRUPTED = EUCLEAN, EFSBADCRC = EBADMSG. */
const ERRNO_NUMBERS: Readonly<Record<Errno, number>> = {
  EPERM: 1, ENOENT: 2, EIO: 5, E2BIG: 7, EBADF: 9, ENOMEM: 12, EACCES: 13, EBUSY: 16,
  EEXIST: 17, EXDEV: 18, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, EFBIG: 27, ENOSPC: 28,
  EROFS: 30, EMLINK: 31, ERANGE: 34, ENAMETOOLONG: 36, ENOTEMPTY: 39, ELOOP: 40,
  ENODATA: 61, EFSBADCRC: 74, EOPNOTSUPP: 95, EFSCORRUPTED: 117, EDQUOT: 122,
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

export class FsError extends Error {
  override readonly name = "FsError";
  readonly errno: number;
  readonly code: Errno;
  readonly detail: FsErrorDetail;

  constructor(code: Errno, message: string, detail: FsErrorDetail = {}) {
    super(`${code}: ${message}`, detail.cause === undefined ? undefined : { cause: detail.cause });
    this.code = code;
    this.detail = detail;
    this.errno = ERRNO_NUMBERS[code];
  }

  /** Same error, with the syscall and path the API layer knows about. */
  withContext(syscall: string, path?: string): FsError {
    const detail: FsErrorDetail = { ...this.detail, syscall };
    if (path !== undefined) detail.path = path;
    const bare = this.message.startsWith(`${this.code}: `) ? this.message.slice(this.code.length + 2) : this.message;
    const where = path === undefined ? syscall : `${syscall} '${path}'`;
    const e = new FsError(this.code, `${bare}, ${where}`, detail);
    if (this.stack !== undefined) e.stack = this.stack;
    return e;
  }
}

export function isFsError(e: unknown, code?: Errno): e is FsError {
  return e instanceof FsError && (code === undefined || e.code === code);
}
