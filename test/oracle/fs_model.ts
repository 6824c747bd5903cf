/**
 * A small in-memory model of a POSIX tree as Linux (VFS + ext4, caller is root, umask 022)
 * presents it: directories, regular files with bytes, symlinks, fifos and character devices,
 * link counts, permission bits, owners, modification times and extended attributes (incl.
 * POSIX ACLs, see xattr_model.ts). It is the reference the write model test
 * (write_model.test.ts) runs random operation sequences against.
 *
 * The model is a *planner*: `planSequence` expands a list of high-level operations into
 * primitive actions, each with the outcome Linux gives (a value, or the errno Linux picks, in
 * the order the kernel checks: parent walk, name length, existence, type, emptiness, ...), and
 * the expected manifest of the final tree. Actions the model cannot predict are left out of the
 * plan: opening a fifo or device node (the kernel would block or talk to a driver) and writes
 * that would take the data past a fixed budget (so ENOSPC never happens).
 *
 * Timestamps: every action runs at its own clock value (`actionTime(k)`), handed to the engine
 * as its `now`, so the model predicts every mtime exactly: new inodes and changed directories
 * take the action's time, written/truncated files too, `utimes` sets what it is given (clamped
 * to the ext4 range like the kernel does).
 *
 * Linux semantics modelled (checked against a kernel mount by the test itself):
 *   - path walk: ENOTDIR through non-directories, ENAMETOOLONG for components > 255 bytes,
 *     ENOENT, symlinks followed (40 at most, ELOOP), ".." is the physical parent;
 *   - open(O_CREAT) through a dangling symlink creates the target; O_EXCL never follows;
 *   - mkdir drops setuid/setgid from the requested mode; a setgid directory passes its gid
 *     to new inodes and its setgid bit to new directories;
 *   - chown of a non-directory clears setuid, and setgid when group-exec is set (even for root);
 *   - rename: EINVAL when a directory would move under itself, ENOTEMPTY when the target is an
 *     ancestor of the source (VFS "trap"), no-op for two names of one inode, ENOTDIR / EISDIR
 *     for incompatible types, ENOTEMPTY for a non-empty directory target;
 *   - a zero-length write changes nothing; truncate always sets mtime;
 *   - mkdir({recursive}) follows Node: EEXIST when the last component exists as a non-directory,
 *     ENOTDIR when an earlier one does;
 *   - xattrs: the VFS checks in order (ERANGE, E2BIG, path walk, user.* only on files and
 *     directories, EINVAL/EOPNOTSUPP for names without a handler), XATTR_CREATE/REPLACE, and
 *     ext4's placement (inode body, then one block; ENOSPC exactly where ext4 gives it);
 *   - POSIX ACLs: a mode-equivalent access ACL changes only the mode, others set the mode's
 *     group bits from the mask; default ACLs only on directories (EACCES), none on symlinks
 *     (EOPNOTSUPP); new inodes take their directory's default ACL (masked with the mode, no
 *     umask); chmod rewrites a stored access ACL.
 *
 * This file must not import from src/: it is an independent oracle.
 */
import { createHash } from "node:crypto";
import { compareStrings, formatManifest, formatMode, formatTimeNs } from "./kernel_manifest.js";
import type { ManifestEntry, ManifestType } from "./kernel_manifest.js";
import {
  ACL_ACCESS,
  ACL_DEFAULT,
  ACL_POOL,
  XATTR_CREATE,
  XATTR_REPLACE,
  XATTR_SIZE_MAX,
  XattrStore,
  aclChmod,
  aclCreateMasq,
  aclEquivMode,
  aclValid,
  encodeVfsAcl,
  parseVfsAcl,
  storedAcl,
  xattrNameCheck,
  xattrNameLengthOk,
} from "./xattr_model.js";
import type { AclEntry, StoredXattr, XattrLimits } from "./xattr_model.js";

// ---------------------------------------------------------------------------------------------
// Operations

/** A primitive action, executed the same way by the engine, the kernel and the model. */
export type Action =
  | { op: "mkdir"; path: string; mode: number }
  | { op: "mkdirp"; path: string }
  | { op: "writeFile"; path: string; len: number; seed: number; mode: number | null }
  | { op: "writeAt"; path: string; pos: number; len: number; seed: number }
  | { op: "append"; path: string; len: number; seed: number }
  | { op: "truncate"; path: string; len: number }
  | { op: "ftruncate"; path: string; len: number }
  | { op: "unlink"; path: string }
  | { op: "rmdir"; path: string }
  | { op: "rename"; from: string; to: string }
  | { op: "link"; from: string; to: string }
  | { op: "symlink"; target: string; path: string }
  | { op: "mknod"; path: string; kind: "fifo" | "chr"; mode: number }
  | { op: "chmod"; path: string; mode: number }
  | { op: "chown"; path: string; uid: number; gid: number }
  | { op: "utimes"; path: string; sec: number; nsec: number }
  /** open(path, "r+"), unlink(path), write at 0 through the handle, read it all back, close. */
  | { op: "unlinkOpen"; path: string; len: number; seed: number }
  | { op: "stat"; path: string }
  | { op: "lstat"; path: string }
  | { op: "readFile"; path: string }
  | { op: "readdir"; path: string }
  | { op: "readlink"; path: string }
  /** setxattr (`follow`) or lsetxattr; `value` is a value spec (see `xattrValue`). */
  | { op: "setxattr"; path: string; name: string; value: string; flags: number; follow: boolean }
  | { op: "removexattr"; path: string; name: string; follow: boolean }
  | { op: "getxattr"; path: string; name: string; follow: boolean }
  /** The names, sorted. */
  | { op: "listxattr"; path: string; follow: boolean };

/** What the property generates: primitive actions plus bulk operations the model expands. */
export type Op =
  | Action
  /** mkdir -p DIR, then COUNT files "h<tag>_<i>_..." of NAMELEN bytes (htree directories). */
  | { op: "bulkCreate"; dir: string; count: number; nameLen: number; tag: number }
  /** Unlink every EVERY-th "h..." name of DIR (sorted), starting at FIRST. */
  | { op: "bulkUnlink"; dir: string; every: number; first: number }
  /**
   * Give TO (following links) FROM's user/trusted/security xattrs: removexattr of TO's others,
   * then setxattr of FROM's, in-inode ones first: identical sets, hence mostly identical xattr
   * blocks, which ext4 shares.
   */
  | { op: "xattrCopy"; from: string; to: string };

/**
 * Expands the placeholders the generators use to keep counterexamples short:
 * "{255}" a 255-byte name, "{256}" a 256-byte one, "{x*N}" N "x"s, "{dots*N}" an N-byte
 * "./././.../a" (which resolves to "a"), "{user*N}" an N-byte xattr name "user.kkk...".
 */
export function expand(s: string): string {
  return s.replace(/\{(255|256|x\*(\d+)|dots\*(\d+)|user\*(\d+))\}/g, (_m, what: string, xs: string | undefined, dots: string | undefined, user: string | undefined) => {
    if (what === "255") return LONG_NAME_255;
    if (what === "256") return "m".repeat(256);
    if (xs !== undefined) return "x".repeat(Number(xs));
    if (user !== undefined) return `user.${"k".repeat(Number(user) - 5)}`;
    const n = Number(dots);
    return `${"./".repeat(n).slice(0, n - 1)}a`;
  });
}

/** 255 bytes of UTF-8 (two-byte characters): the longest legal name. */
export const LONG_NAME_255 = `n${"\u00e9".repeat(127)}`;

function expandAction(a: Action): Action {
  const x = { ...a } as Record<string, unknown>;
  for (const k of ["path", "from", "to", "target", "name"]) {
    const v = x[k];
    if (typeof v === "string") x[k] = expand(v);
  }
  return x as Action;
}

/** Names of the files bulkCreate makes. */
export function bulkName(tag: number, i: number, nameLen: number): string {
  const base = `h${tag}_${i}_`;
  return base.length >= nameLen ? base : base + "x".repeat(nameLen - base.length);
}

/** A JSON-comparable result value. */
export type Value = string | string[] | Readonly<Record<string, string | number>>;

/** The result of one action: a value, or the errno code. */
export type Outcome = { ok: true; value?: Value } | { ok: false; code: string };

export interface Time {
  sec: number;
  nsec: number;
}

/** The clock value of the k-th planned action (distinct per action, with nanoseconds). */
export function actionTime(k: number): Time {
  return { sec: 1_700_000_000 + k * 61, nsec: (k * 123_456_791 + 7) % 1_000_000_000 };
}

/** Deterministic content: `len` bytes from a xorshift32 stream seeded with `seed`. */
export function contentBytes(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

export function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/**
 * The bytes of an xattr value spec: "LEN:SEED" (contentBytes) or "acl:N" (ACL_POOL[N] in the
 * VFS format).
 */
export function xattrValue(spec: string): Uint8Array {
  const [a, b] = spec.split(":");
  if (a === "acl") {
    const acl = ACL_POOL[Number(b)];
    if (acl === undefined) throw new Error(`model: no ACL ${spec}`);
    return encodeVfsAcl(acl);
  }
  return contentBytes(Number(a), Number(b));
}

/** The bytes an action carries (file data or an xattr value), if any. */
export function actionData(a: Action): Uint8Array | undefined {
  if (a.op === "setxattr") return xattrValue(a.value);
  if ("seed" in a) return contentBytes(a.len, a.seed);
  return undefined;
}

/** How getxattr results are compared: size and digest. */
export function xattrValueOutcome(b: Uint8Array): Value {
  return { size: b.length, sha256: sha256(b) };
}

const utf8 = new TextEncoder();

export function byteLength(s: string): number {
  return utf8.encode(s).length;
}

// ---------------------------------------------------------------------------------------------
// The tree

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o010;
const NAME_MAX = 255;
const PATH_MAX = 4096;
const MAXSYMLINKS = 40;
/** Logical bytes of file data the plan allows in total (far below the images' free space). */
const DATA_BUDGET = 10 * 1024 * 1024;

interface NodeBase {
  readonly id: number;
  /** Permission bits incl. setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  mtime: Time;
  readonly xattrs: XattrStore;
  /** i_extra_isize: where the in-inode xattr area starts. */
  readonly extraIsize: number;
}
export interface DirNode extends NodeBase {
  kind: "dir";
  entries: Map<string, FsNode>;
  /** The physical parent; the root's is itself. */
  parent: DirNode;
}
export interface FileNode extends NodeBase {
  kind: "file";
  data: Uint8Array;
  nlink: number;
}
export interface SymlinkNode extends NodeBase {
  kind: "symlink";
  target: string;
  nlink: number;
}
export interface SpecialNode extends NodeBase {
  kind: "fifo" | "chr";
  rdev: string;
  nlink: number;
}
export type FsNode = DirNode | FileNode | SymlinkNode | SpecialNode;

type Res<T> = { ok: true; v: T } | { ok: false; code: string };
const err = (code: string): { ok: false; code: string } => ({ ok: false, code });
const ok = <T>(v: T): { ok: true; v: T } => ({ ok: true, v });

/** What a new inode starts with (see FsModel.#creation). */
interface Creation {
  mode: number;
  gid: number;
  access: AclEntry[] | null;
  dflt: readonly AclEntry[] | null;
}

/** Thrown by an action the model does not predict; the planner leaves the action out. */
class Unpredictable extends Error {}

/** A manifest line of the template image (the root and lost+found as mke2fs made them). */
export interface SeedEntry {
  path: string;
  mode: string;
  uid: number;
  gid: number;
  mtime: string;
  /** i_extra_isize as mke2fs wrote it. */
  extraIsize: number;
}

export interface ModelConfig {
  readonly blockSize: number;
  /** 128-byte inodes keep seconds only, in the 32-bit range; larger ones ns and 34 bits. */
  readonly inodeSize: number;
  readonly umask: number;
  /** "/" and "/lost+found" of the fresh image. */
  readonly seed: readonly SeedEntry[];
  /** i_extra_isize of new inodes (s_want_extra_isize). */
  readonly extraIsize: number;
  /**
   * Situations to leave out of plans (known engine bugs with their own regression test), so a
   * property run can find other bugs. See `Situation`.
   */
  readonly avoid?: ReadonlySet<Situation>;
}

/**
 * Situations the planner can leave out:
 *   create-under-default-acl  creating an inode (not a symlink) where it could land in a
 *                             directory with a default ACL (it inherits the ACL)
 *   chmod-with-access-acl     chmod of an inode with a stored access ACL (chmod rewrites it)
 *   getxattr-rejected-name    getxattr of a name Linux rejects for what it is: ERANGE (0 or more
 *                             than 255 bytes), EINVAL (bare prefix), EOPNOTSUPP (no handler)
 *   symlink-target-too-long   symlink with a target of PATH_MAX bytes or more whose link path
 *                             cannot be created (Linux reports the target first)
 */
export type Situation = "create-under-default-acl" | "chmod-with-access-acl" | "getxattr-rejected-name" | "symlink-target-too-long";

function parseTime(s: string): Time {
  const [sec, nsec] = s.split(".");
  return { sec: Number(sec), nsec: Number(nsec) };
}

export class FsModel {
  readonly root: DirNode;
  readonly #cfg: ModelConfig;
  #nextId = 1;
  #now: Time = { sec: 0, nsec: 0 };

  constructor(cfg: ModelConfig) {
    this.#cfg = cfg;
    const rootSeed = cfg.seed.find((e) => e.path === "/");
    if (rootSeed === undefined) throw new Error("model seed lacks /");
    const root = this.#newDir(parseInt(rootSeed.mode, 8), rootSeed.uid, rootSeed.gid, null, rootSeed.extraIsize);
    root.mtime = parseTime(rootSeed.mtime);
    this.root = root;
    for (const e of cfg.seed) {
      if (e.path === "/") continue;
      if (e.path.lastIndexOf("/") !== 0) throw new Error(`model seed: only top-level entries, not ${e.path}`);
      const d = this.#newDir(parseInt(e.mode, 8), e.uid, e.gid, root, e.extraIsize);
      d.mtime = parseTime(e.mtime);
      root.entries.set(e.path.slice(1), d);
    }
  }

  #newDir(mode: number, uid: number, gid: number, parent: DirNode | null, extraIsize = this.#cfg.extraIsize): DirNode {
    const d: Omit<DirNode, "parent"> & { parent?: DirNode } = { kind: "dir", id: this.#nextId++, mode, uid, gid, mtime: this.#now, entries: new Map(), xattrs: new XattrStore(), extraIsize };
    d.parent = parent ?? (d as DirNode); // the root is its own parent
    return d as DirNode;
  }

  /** A timestamp as ext4 stores it (the kernel clamps to the range and drops ns when clamped). */
  stamp(t: Time): Time {
    const min = -(2 ** 31);
    const max = this.#cfg.inodeSize > 128 ? 2 ** 34 - 1 - 2 ** 31 : 2 ** 31 - 1;
    if (t.sec < min) return { sec: min, nsec: 0 };
    if (t.sec > max) return { sec: max, nsec: 0 };
    return { sec: t.sec, nsec: this.#cfg.inodeSize > 128 ? t.nsec : 0 };
  }

  #touch(n: FsNode): void {
    n.mtime = this.stamp(this.#now);
  }

  // ----- path walk -----

  /** Walk `path` from `start` (absolute paths from the root), following symlinks as Linux does. */
  #walk(path: string, follow: boolean, links: { n: number }, start: DirNode): Res<FsNode> {
    const comps = path.split("/").filter((c) => c !== "");
    let cur: FsNode = path.startsWith("/") ? this.root : start;
    for (let i = 0; i < comps.length; i++) {
      const c = comps[i]!;
      if (cur.kind !== "dir") return err("ENOTDIR");
      if (c === ".") continue;
      if (c === "..") {
        cur = cur.parent;
        continue;
      }
      if (byteLength(c) > NAME_MAX) return err("ENAMETOOLONG");
      const child: FsNode | undefined = cur.entries.get(c);
      if (child === undefined) return err("ENOENT");
      if (child.kind === "symlink" && (i < comps.length - 1 || follow)) {
        if (++links.n > MAXSYMLINKS) return err("ELOOP");
        const r = this.#walk(child.target, true, links, cur);
        if (!r.ok) return r;
        cur = r.v;
        continue;
      }
      cur = child;
    }
    return ok(cur);
  }

  resolve(path: string, follow: boolean): Res<FsNode> {
    if (byteLength(path) >= PATH_MAX) return err("ENAMETOOLONG");
    return this.#walk(path, follow, { n: 0 }, this.root);
  }

  /** The directory holding the last component of `path`, and that name (not length-checked). */
  #parent(path: string, links: { n: number } = { n: 0 }, start: DirNode = this.root): Res<{ dir: DirNode; name: string }> {
    if (byteLength(path) >= PATH_MAX) return err("ENAMETOOLONG");
    const comps = path.split("/").filter((c) => c !== "");
    const name = comps.pop();
    if (name === undefined || name === "." || name === "..") throw new Error(`model: unsupported path ${path}`);
    const prefix = (path.startsWith("/") ? "/" : "") + comps.join("/");
    const r = prefix === "" ? ok<FsNode>(start) : this.#walk(prefix, true, links, start);
    if (!r.ok) return r;
    if (r.v.kind !== "dir") return err("ENOTDIR");
    return ok({ dir: r.v, name });
  }

  /** Look a name up in a directory: ENAMETOOLONG first, like ext4_lookup. */
  #lookup(dir: DirNode, name: string): Res<FsNode | undefined> {
    if (byteLength(name) > NAME_MAX) return err("ENAMETOOLONG");
    return ok(dir.entries.get(name));
  }

  // ----- helpers -----

  nlinkOf(n: FsNode): number {
    if (n.kind !== "dir") return n.nlink;
    let subdirs = 0;
    for (const c of n.entries.values()) if (c.kind === "dir") subdirs++;
    return 2 + subdirs;
  }

  /**
   * Mode, group and ACLs of a new inode in `dir` (`requested` before the umask): a setgid
   * directory passes on its group (and the bit, to directories); the directory's default ACL,
   * if any, masks the mode and becomes the inode's access ACL (and a directory's default ACL),
   * else the umask applies. Symlinks take neither.
   * @kernel inode_init_owner + posix_acl_create (posix_acl_create_masq)
   */
  #creation(dir: DirNode, requested: number, kind: FsNode["kind"]): Creation {
    let mode = requested;
    let gid = 0;
    if ((dir.mode & S_ISGID) !== 0) {
      gid = dir.gid;
      if (kind === "dir") mode |= S_ISGID;
    }
    if (kind === "symlink") return { mode, gid, access: null, dflt: null };
    const dflt = dir.xattrs.get(ACL_DEFAULT)?.acl;
    if (dflt === undefined) return { mode: mode & ~this.#cfg.umask, gid, access: null, dflt: null };
    if (this.#avoids("create-under-default-acl")) throw new Unpredictable("a new inode under a default ACL");
    const masq = aclCreateMasq(dflt, mode);
    return { mode: masq.mode, gid, access: masq.acl, dflt: kind === "dir" ? dflt : null };
  }

  /** A new inode's fields of every type. */
  #newBase(c: Creation): NodeBase {
    return { id: this.#nextId++, mode: c.mode, uid: 0, gid: c.gid, mtime: this.stamp(this.#now), xattrs: new XattrStore(), extraIsize: this.#cfg.extraIsize };
  }

  /** Stores a new inode's inherited ACLs, default first. @kernel ext4_init_acl */
  #initAcls(n: FsNode, c: Creation): void {
    for (const [name, acl] of [[ACL_DEFAULT, c.dflt], [ACL_ACCESS, c.access]] as const) {
      if (acl === null) continue;
      const e = n.xattrs.set(name, storedAcl(acl), XATTR_CREATE, this.#limits(n));
      if (e !== null) throw new Unpredictable(`inherited ACLs do not fit: ${e}`);
    }
  }

  #avoids(s: Situation): boolean {
    return this.#cfg.avoid?.has(s) === true;
  }

  #addChild(dir: DirNode, name: string, node: FsNode): void {
    dir.entries.set(name, node);
    this.#touch(dir);
  }

  #isAncestorOrSelf(a: DirNode, d: DirNode): boolean {
    let cur = d;
    for (;;) {
      if (cur === a) return true;
      if (cur.parent === cur) return false;
      cur = cur.parent;
    }
  }

  totalData(): number {
    let total = 0;
    const seen = new Set<number>();
    const visit = (d: DirNode): void => {
      for (const c of d.entries.values()) {
        if (c.kind === "dir") visit(c);
        else if (c.kind === "file" && !seen.has(c.id)) {
          seen.add(c.id);
          total += c.data.length;
        }
      }
    };
    visit(this.root);
    return total;
  }

  #write(file: FileNode, pos: number, data: Uint8Array): void {
    if (data.length === 0) return; // a zero-length write changes nothing, not even mtime
    const end = pos + data.length;
    if (end > file.data.length) {
      const grown = new Uint8Array(end);
      grown.set(file.data);
      file.data = grown;
    }
    file.data.set(data, pos);
    this.#touch(file);
  }

  #setSize(file: FileNode, len: number): void {
    const next = new Uint8Array(len);
    next.set(file.data.subarray(0, Math.min(len, file.data.length)));
    file.data = next;
    this.#touch(file);
  }

  /**
   * open(2) of `path` for the flags; returns the file (never a dir, fifo or device: those throw
   * Unpredictable or give EISDIR). O_CREAT through a dangling symlink creates the target.
   */
  #open(path: string, f: { create: boolean; excl: boolean; trunc: boolean; mode: number }, links = { n: 0 }, start: DirNode = this.root): Res<FileNode> {
    const last = path.split("/").filter((c) => c !== "").pop();
    if (!f.create || last === undefined || last === "." || last === "..") {
      // Without O_CREAT, or a last component that is "/", "." or "..": a plain walk (and a
      // directory gives EISDIR).
      const r = this.#walk(path, true, links, start);
      if (!r.ok) return r;
      return this.#openedNode(r.v, f);
    }
    const p = this.#parent(path, links, start);
    if (!p.ok) return p;
    const l = this.#lookup(p.v.dir, p.v.name);
    if (!l.ok) return l;
    const existing = l.v;
    if (existing === undefined) {
      const c = this.#creation(p.v.dir, f.mode & 0o7777, "file");
      const file: FileNode = { kind: "file", ...this.#newBase(c), data: new Uint8Array(0), nlink: 1 };
      this.#initAcls(file, c);
      this.#addChild(p.v.dir, p.v.name, file);
      return ok(file);
    }
    if (f.excl) return err("EEXIST");
    if (existing.kind === "symlink") {
      if (++links.n > MAXSYMLINKS) return err("ELOOP");
      return this.#open(existing.target, f, links, p.v.dir);
    }
    return this.#openedNode(existing, f);
  }

  /** The node an open for writing reached: EISDIR for a directory, O_TRUNC applied. */
  #openedNode(n: FsNode, f: { trunc: boolean }): Res<FileNode> {
    if (n.kind === "dir") return err("EISDIR");
    if (n.kind !== "file") throw new Unpredictable(`open of a ${n.kind}`);
    if (f.trunc) this.#setSize(n, 0);
    return ok(n);
  }

  // ----- the actions -----

  /** Runs one action at time `now`; returns its outcome. Throws Unpredictable (state untouched). */
  apply(a: Action, now: Time): Outcome {
    this.#now = now;
    const r = this.#apply(a);
    return r.ok ? (r.v === undefined ? { ok: true } : { ok: true, value: r.v }) : { ok: false, code: r.code };
  }

  /**
   * Whether the model predicts `a`: not when it would open a fifo or device, blow the data
   * budget, or meet a situation in `avoid` (checked without changing anything).
   */
  predictable(a: Action): boolean {
    const target = (p: string): FsNode | undefined => {
      const r = this.resolve(p, true);
      return r.ok ? r.v : undefined;
    };
    const special = (n: FsNode | undefined): boolean => n !== undefined && n.kind !== "file" && n.kind !== "dir";
    switch (a.op) {
      case "writeFile":
      case "append": {
        const n = target(a.path);
        if (special(n)) return false;
        if (n?.kind !== "file" && (this.#mayCreateUnderDefaultAcl(a.path, true) || !this.#inheritedAclsFit(a.path, false, true))) return false;
        const size = n?.kind === "file" ? n.data.length : 0;
        const grow = a.op === "append" ? size + a.len : a.len;
        return this.totalData() + grow - size <= DATA_BUDGET;
      }
      case "writeAt":
      case "unlinkOpen": {
        const n = target(a.path);
        if (special(n)) return false;
        if (n?.kind !== "file") return true;
        const pos = a.op === "writeAt" ? a.pos : 0;
        return this.totalData() + Math.max(0, pos + a.len - n.data.length) <= DATA_BUDGET;
      }
      case "truncate":
      case "ftruncate": {
        const n = target(a.path);
        if (special(n)) return false;
        return n?.kind !== "file" || this.totalData() + Math.max(0, a.len - n.data.length) <= DATA_BUDGET;
      }
      case "readFile":
        return !special(target(a.path));
      case "chmod":
        return !(this.#avoids("chmod-with-access-acl") && target(a.path)?.xattrs.get(ACL_ACCESS) !== undefined);
      case "mkdir":
      case "mknod":
        return !this.#mayCreateUnderDefaultAcl(a.path, false) && this.#inheritedAclsFit(a.path, a.op === "mkdir", false);
      case "mkdirp":
        return !this.#mayCreateUnderDefaultAcl(a.path, true) && this.#inheritedAclsFit(a.path, true, true);
      case "getxattr": {
        const acl = a.name === ACL_ACCESS || a.name === ACL_DEFAULT;
        const rejected = !xattrNameLengthOk(a.name) || (!acl && xattrNameCheck("file", a.name, false) !== null);
        return !(this.#avoids("getxattr-rejected-name") && rejected);
      }
      case "symlink":
        return !(this.#avoids("symlink-target-too-long") && byteLength(a.target) >= PATH_MAX && !this.#createSlot(a.path).ok);
      case "chown":
      case "link":
      case "listxattr":
      case "lstat":
      case "readdir":
      case "readlink":
      case "removexattr":
      case "rename":
      case "rmdir":
      case "setxattr":
      case "stat":
      case "unlink":
      case "utimes":
        return true;
    }
  }

  /**
   * With "create-under-default-acl" avoided: whether creating `path` might put an inode in a
   * directory with a default ACL. Exact for the parent; through a final symlink
   * (`followLast`) or along mkdir -p, any default ACL in the tree counts.
   */
  /**
   * Whether a new inode at `path` (through a dangling symlink, or as a missing directory of
   * mkdirp, anywhere: `anywhere`) could store the ACLs it inherits from its directory's
   * default ACL. One that cannot is refused with ENOSPC after the inode was made (the
   * kernel's ext4_init_acl failure in __ext4_new_inode), which the model does not predict.
   */
  #inheritedAclsFit(path: string, isDir: boolean, anywhere: boolean): boolean {
    if (path.split("/").every((c) => c === "")) return true; // the root exists already
    const dirs: DirNode[] = [];
    const p = this.#parent(path);
    if (p.ok) dirs.push(p.v.dir);
    if (anywhere) for (const [, n] of this.paths()) if (n.kind === "dir") dirs.push(n);
    return dirs.every((d) => {
      const dflt = d.xattrs.get(ACL_DEFAULT)?.acl;
      if (dflt === undefined) return true;
      // The sizes do not depend on the mode: masking changes permissions, not entries.
      const access = aclCreateMasq(dflt, 0o777).acl;
      const probe = new XattrStore();
      const limits = this.#limitsFor(this.#cfg.extraIsize);
      for (const [name, acl] of [[ACL_DEFAULT, isDir ? dflt : null], [ACL_ACCESS, access]] as const) {
        if (acl !== null && probe.set(name, storedAcl(acl), XATTR_CREATE, limits) !== null) return false;
      }
      return true;
    });
  }

  #mayCreateUnderDefaultAcl(path: string, followLast: boolean): boolean {
    if (!this.#avoids("create-under-default-acl") || path.split("/").every((c) => c === "")) return false;
    const p = this.#parent(path);
    if (p.ok && p.v.dir.xattrs.get(ACL_DEFAULT) !== undefined) return true;
    if (!followLast) return false;
    return this.paths().some(([, n]) => n.kind === "dir" && n.xattrs.get(ACL_DEFAULT) !== undefined);
  }

  #apply(a: Action): Res<Value | undefined> {
    switch (a.op) {
      case "mkdir":
        return this.#mkdir(a.path, a.mode);
      case "mkdirp":
        return this.#mkdirp(a.path);
      case "writeFile": {
        const o = this.#open(a.path, { create: true, excl: false, trunc: true, mode: a.mode ?? 0o666 });
        if (!o.ok) return o;
        this.#write(o.v, 0, contentBytes(a.len, a.seed));
        return ok(undefined);
      }
      case "writeAt": {
        const o = this.#open(a.path, { create: false, excl: false, trunc: false, mode: 0 });
        if (!o.ok) return o;
        this.#write(o.v, a.pos, contentBytes(a.len, a.seed));
        return ok(undefined);
      }
      case "append": {
        const o = this.#open(a.path, { create: true, excl: false, trunc: false, mode: 0o666 });
        if (!o.ok) return o;
        this.#write(o.v, o.v.data.length, contentBytes(a.len, a.seed));
        return ok(undefined);
      }
      case "truncate": {
        const r = this.resolve(a.path, true);
        if (!r.ok) return r;
        if (r.v.kind === "dir") return err("EISDIR");
        if (r.v.kind !== "file") return err("EINVAL");
        this.#setSize(r.v, a.len);
        return ok(undefined);
      }
      case "ftruncate": {
        const o = this.#open(a.path, { create: false, excl: false, trunc: false, mode: 0 });
        if (!o.ok) return o;
        this.#setSize(o.v, a.len);
        return ok(undefined);
      }
      case "unlink":
        return this.#unlink(a.path);
      case "rmdir":
        return this.#rmdir(a.path);
      case "rename":
        return this.#rename(a.from, a.to);
      case "link":
        return this.#link(a.from, a.to);
      case "symlink":
        return this.#symlink(a.target, a.path);
      case "mknod": {
        const p = this.#createSlot(a.path);
        if (!p.ok) return p;
        const c = this.#creation(p.v.dir, a.mode & 0o7777, a.kind);
        const n: SpecialNode = { kind: a.kind, ...this.#newBase(c), rdev: a.kind === "chr" ? "1:3" : "", nlink: 1 };
        this.#initAcls(n, c);
        this.#addChild(p.v.dir, p.v.name, n);
        return ok(undefined);
      }
      case "chmod": {
        const r = this.resolve(a.path, true);
        if (!r.ok) return r;
        r.v.mode = a.mode & 0o7777;
        const acl = r.v.xattrs.get(ACL_ACCESS)?.acl;
        if (acl !== undefined) {
          // @kernel ext4_setattr -> posix_acl_chmod: the stored access ACL follows the mode.
          if (this.#avoids("chmod-with-access-acl")) throw new Unpredictable("chmod with an access ACL");
          const set = this.#setAcl(r.v, ACL_ACCESS, aclChmod(acl, r.v.mode));
          if (!set.ok) throw new Error(`model: chmod could not rewrite the ACL: ${set.code}`);
        }
        return ok(undefined);
      }
      case "chown": {
        const r = this.resolve(a.path, true);
        if (!r.ok) return r;
        const n = r.v;
        n.uid = a.uid;
        n.gid = a.gid;
        if (n.kind !== "dir") {
          n.mode &= ~S_ISUID;
          if ((n.mode & S_IXGRP) !== 0) n.mode &= ~S_ISGID;
        }
        return ok(undefined);
      }
      case "utimes": {
        const r = this.resolve(a.path, true);
        if (!r.ok) return r;
        r.v.mtime = this.stamp({ sec: a.sec, nsec: a.nsec });
        return ok(undefined);
      }
      case "unlinkOpen": {
        const o = this.#open(a.path, { create: false, excl: false, trunc: false, mode: 0 });
        if (!o.ok) return o;
        const u = this.#unlink(a.path);
        this.#write(o.v, 0, contentBytes(a.len, a.seed));
        return ok({ unlink: u.ok ? "ok" : u.code, size: o.v.data.length, sha256: sha256(o.v.data) });
      }
      case "stat":
      case "lstat": {
        const r = this.resolve(a.path, a.op === "stat");
        if (!r.ok) return r;
        return ok(this.statValue(r.v));
      }
      case "readFile": {
        const r = this.resolve(a.path, true);
        if (!r.ok) return r;
        if (r.v.kind === "dir") return err("EISDIR");
        if (r.v.kind !== "file") throw new Unpredictable("read of a special file");
        return ok({ size: r.v.data.length, sha256: sha256(r.v.data) });
      }
      case "readdir": {
        const r = this.resolve(a.path, true);
        if (!r.ok) return r;
        if (r.v.kind !== "dir") return err("ENOTDIR");
        return ok([...r.v.entries.keys()].sort(compareStrings));
      }
      case "readlink": {
        const r = this.resolve(a.path, false);
        if (!r.ok) return r;
        if (r.v.kind !== "symlink") return err("EINVAL");
        return ok(r.v.target);
      }
      case "setxattr":
        return this.#setxattr(a.path, a.name, a.value, a.flags, a.follow);
      case "removexattr": {
        if (!xattrNameLengthOk(a.name)) return err("ERANGE");
        const r = this.resolve(a.path, a.follow);
        if (!r.ok) return r;
        if (a.name === ACL_ACCESS || a.name === ACL_DEFAULT) return this.#setAcl(r.v, a.name, null);
        const bad = xattrNameCheck(r.v.kind, a.name, true);
        if (bad !== null) return err(bad);
        return this.#xattrSet(r.v, a.name, null, XATTR_REPLACE);
      }
      case "getxattr": {
        if (!xattrNameLengthOk(a.name)) return err("ERANGE");
        const r = this.resolve(a.path, a.follow);
        if (!r.ok) return r;
        if (a.name === ACL_ACCESS || a.name === ACL_DEFAULT) {
          if (r.v.kind === "symlink") return err("EOPNOTSUPP"); // no get_acl for symlinks
        } else {
          const bad = xattrNameCheck(r.v.kind, a.name, false);
          if (bad !== null) return err(bad);
        }
        const v = r.v.xattrs.get(a.name);
        return v === undefined ? err("ENODATA") : ok(xattrValueOutcome(v.value));
      }
      case "listxattr": {
        const r = this.resolve(a.path, a.follow);
        if (!r.ok) return r;
        return ok(r.v.xattrs.entries().map(([name]) => name).sort(compareStrings));
      }
    }
  }

  /** setxattr / lsetxattr. @kernel path_setxattr -> do_setxattr (-> do_set_acl for ACL names) */
  #setxattr(path: string, name: string, spec: string, flags: number, follow: boolean): Res<undefined> {
    if (!xattrNameLengthOk(name)) return err("ERANGE");
    const value = xattrValue(spec);
    if (value.length > XATTR_SIZE_MAX) return err("E2BIG");
    const r = this.resolve(path, follow);
    if (!r.ok) return r;
    if (name === ACL_ACCESS || name === ACL_DEFAULT) {
      const acl = parseVfsAcl(value);
      if (!acl.ok) return err(acl.code);
      return this.#setAcl(r.v, name, acl.acl);
    }
    const bad = xattrNameCheck(r.v.kind, name, true);
    if (bad !== null) return err(bad);
    return this.#xattrSet(r.v, name, { disk: value, value, spec }, flags);
  }

  /** Where an inode's xattrs may go: the in-inode area (if the inode has one) and one block. */
  #limits(n: FsNode): XattrLimits {
    return this.#limitsFor(n.extraIsize);
  }

  #limitsFor(extraIsize: number): XattrLimits {
    const room = this.#cfg.inodeSize - 128 - extraIsize - 4; // after the in-inode header
    // @kernel EXT4_INODE_HAS_XATTR_SPACE (header, one rounding and a terminator must fit)
    return { ibody: this.#cfg.inodeSize > 128 && extraIsize > 0 && room >= 3 + 4 ? room : null, block: this.#cfg.blockSize };
  }

  #xattrSet(n: FsNode, name: string, value: StoredXattr | null, flags: number): Res<undefined> {
    const e = n.xattrs.set(name, value, flags, this.#limits(n));
    return e === null ? ok(undefined) : err(e);
  }

  /**
   * Set (or with null remove) an ACL: none on symlinks, default ACLs only on directories; an
   * access ACL the mode expresses changes the mode and is not stored, others are stored and
   * set the mode's group bits from the mask; the mode changes only if the store succeeded.
   * @kernel set_posix_acl -> ext4_set_acl (posix_acl_update_mode, __ext4_set_acl)
   */
  #setAcl(n: FsNode, name: string, acl: readonly AclEntry[] | null): Res<undefined> {
    if (n.kind === "symlink") return err("EOPNOTSUPP");
    if (name === ACL_DEFAULT && n.kind !== "dir") return acl === null ? ok(undefined) : err("EACCES");
    if (acl !== null && !aclValid(acl)) return err("EINVAL");
    let mode = n.mode;
    let store = acl;
    if (name === ACL_ACCESS && acl !== null) {
      const r = aclEquivMode(acl, mode);
      mode = r.mode;
      if (r.equivalent) store = null;
    }
    const set = this.#xattrSet(n, name, store === null ? null : storedAcl(store), 0);
    if (!set.ok) return set;
    n.mode = mode;
    return ok(undefined);
  }

  /** filename_create: the parent, a legal name, and nothing there yet. */
  #createSlot(path: string): Res<{ dir: DirNode; name: string }> {
    const p = this.#parent(path);
    if (!p.ok) return p;
    const l = this.#lookup(p.v.dir, p.v.name);
    if (!l.ok) return l;
    if (l.v !== undefined) return err("EEXIST");
    return p;
  }

  #mkdir(path: string, requested: number): Res<undefined> {
    const p = this.#createSlot(path);
    if (!p.ok) return p;
    const c = this.#creation(p.v.dir, requested & 0o1777, "dir");
    const d = this.#newDir(c.mode, 0, c.gid, p.v.dir);
    d.mtime = this.stamp(this.#now);
    this.#initAcls(d, c);
    this.#addChild(p.v.dir, p.v.name, d);
    return ok(undefined);
  }

  #mkdirp(path: string): Res<undefined> {
    const comps = path.split("/").filter((c) => c !== "");
    for (let i = 1; i <= comps.length; i++) {
      const prefix = `/${comps.slice(0, i).join("/")}`;
      const r = this.resolve(prefix, true);
      if (r.ok) {
        if (r.v.kind === "dir") continue;
        return err(i === comps.length ? "EEXIST" : "ENOTDIR");
      }
      if (r.code !== "ENOENT") return r;
      if (this.resolve(prefix, false).ok) return r; // a dangling symlink: stat says ENOENT
      const m = this.#mkdir(prefix, 0o777);
      if (!m.ok) return m;
    }
    return ok(undefined);
  }

  #unlink(path: string): Res<undefined> {
    const p = this.#parent(path);
    if (!p.ok) return p;
    const l = this.#lookup(p.v.dir, p.v.name);
    if (!l.ok) return l;
    const victim = l.v;
    if (victim === undefined) return err("ENOENT");
    if (victim.kind === "dir") return err("EISDIR");
    p.v.dir.entries.delete(p.v.name);
    this.#touch(p.v.dir);
    victim.nlink--;
    return ok(undefined);
  }

  #rmdir(path: string): Res<undefined> {
    const p = this.#parent(path);
    if (!p.ok) return p;
    const l = this.#lookup(p.v.dir, p.v.name);
    if (!l.ok) return l;
    const victim = l.v;
    if (victim === undefined) return err("ENOENT");
    if (victim.kind !== "dir") return err("ENOTDIR");
    if (victim.entries.size > 0) return err("ENOTEMPTY");
    p.v.dir.entries.delete(p.v.name);
    this.#touch(p.v.dir);
    return ok(undefined);
  }

  /** @kernel do_renameat2 + vfs_rename + ext4_rename, in their order of checks. */
  #rename(from: string, to: string): Res<undefined> {
    const a = this.#parent(from);
    if (!a.ok) return a;
    const b = this.#parent(to);
    if (!b.ok) return b;
    const sl = this.#lookup(a.v.dir, a.v.name);
    if (!sl.ok) return sl;
    const source = sl.v;
    if (source === undefined) return err("ENOENT");
    const tl = this.#lookup(b.v.dir, b.v.name);
    if (!tl.ok) return tl;
    const target = tl.v;
    const oldDir = a.v.dir;
    const newDir = b.v.dir;
    if (oldDir !== newDir) {
      // lock_rename's trap: the child of the common ancestor on the way to the other parent.
      if (source.kind === "dir" && this.#isAncestorOrSelf(source, newDir)) return err("EINVAL");
      if (target?.kind === "dir" && this.#isAncestorOrSelf(target, oldDir)) return err("ENOTEMPTY");
    }
    if (source === target) return ok(undefined);
    if (target !== undefined) {
      if (source.kind === "dir" && target.kind !== "dir") return err("ENOTDIR");
      if (source.kind !== "dir" && target.kind === "dir") return err("EISDIR");
      if (target.kind === "dir" && target.entries.size > 0) return err("ENOTEMPTY");
    }
    oldDir.entries.delete(a.v.name);
    if (target !== undefined && target.kind !== "dir") target.nlink--;
    newDir.entries.set(b.v.name, source);
    if (source.kind === "dir") source.parent = newDir;
    this.#touch(oldDir);
    this.#touch(newDir);
    return ok(undefined);
  }

  #link(from: string, to: string): Res<undefined> {
    const s = this.resolve(from, false);
    if (!s.ok) return s;
    const p = this.#createSlot(to);
    if (!p.ok) return p;
    if (s.v.kind === "dir") return err("EPERM");
    s.v.nlink++;
    this.#addChild(p.v.dir, p.v.name, s.v);
    return ok(undefined);
  }

  #symlink(target: string, path: string): Res<undefined> {
    const len = byteLength(target);
    if (len === 0) return err("ENOENT");
    if (len >= PATH_MAX) return err("ENAMETOOLONG");
    const p = this.#createSlot(path);
    if (!p.ok) return p;
    if (len + 1 > this.#cfg.blockSize) return err("ENAMETOOLONG");
    const n: SymlinkNode = { kind: "symlink", ...this.#newBase(this.#creation(p.v.dir, 0o777, "symlink")), target, nlink: 1 };
    this.#addChild(p.v.dir, p.v.name, n);
    return ok(undefined);
  }

  // ----- views -----

  statValue(n: FsNode): Record<string, string | number> {
    const v: Record<string, string | number> = { type: manifestType(n), mode: formatMode(n.mode), nlink: this.nlinkOf(n), uid: n.uid, gid: n.gid };
    if (n.kind === "file") v.size = n.data.length;
    if (n.kind === "symlink") v.size = byteLength(n.target);
    if (n.kind === "fifo" || n.kind === "chr") v.size = 0;
    v.mtime = formatTime(n.mtime);
    return v;
  }

  /** Every path reachable from the root with its node, root first, parents before children. */
  paths(): [string, FsNode][] {
    const out: [string, FsNode][] = [["/", this.root]];
    for (let i = 0; i < out.length; i++) {
      const [p, n] = out[i]!;
      if (n.kind !== "dir") continue;
      for (const [name, c] of n.entries) out.push([p === "/" ? `/${name}` : `${p}/${name}`, c]);
    }
    return out;
  }

  /**
   * The manifest this tree must have, in `formatManifest`'s format. Directory sizes depend on
   * how ext4 packs entries, which the model does not emulate: `dirSize(path)` supplies them.
   */
  manifest(dirSize: (path: string) => number): string {
    const entries: ManifestEntry[] = this.paths().map(([p, n]) => {
      const e: ManifestEntry = { path: p, type: manifestType(n), mode: formatMode(n.mode), uid: n.uid, gid: n.gid, nlink: this.nlinkOf(n), size: 0, mtime: formatTime(n.mtime) };
      switch (n.kind) {
        case "dir":
          e.size = dirSize(p);
          break;
        case "file":
          e.size = n.data.length;
          e.sha256 = sha256(n.data);
          break;
        case "symlink":
          e.size = byteLength(n.target);
          e.target = n.target;
          break;
        case "chr":
          e.rdev = n.rdev;
          break;
        case "fifo":
          break;
      }
      if (n.xattrs.size > 0) e.xattrs = Object.fromEntries(n.xattrs.entries().map(([name, v]) => [name, Buffer.from(v.value).toString("base64")]));
      return e;
    });
    return formatManifest(entries);
  }
}

export function formatTime(t: Time): string {
  return formatTimeNs(BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec));
}

function manifestType(n: FsNode): ManifestType {
  return n.kind;
}

// ---------------------------------------------------------------------------------------------
// Planning

/** One primitive action with the outcome Linux gives and the clock value it runs at. */
export interface PlannedAction {
  readonly action: Action;
  readonly time: Time;
  readonly expect: Outcome;
}

/**
 * Expands `ops` into primitive actions, runs them on `model` and records what each must give.
 * Unpredictable actions (opening a fifo or device, going past the data budget) are left out.
 */
export function planSequence(model: FsModel, ops: readonly Op[]): PlannedAction[] {
  const plan: PlannedAction[] = [];
  const run = (unexpanded: Action): Outcome | undefined => {
    const action = expandAction(unexpanded);
    if (!model.predictable(action)) return undefined;
    const time = actionTime(plan.length);
    let expect: Outcome;
    try {
      expect = model.apply(action, time);
    } catch (e) {
      if (e instanceof Unpredictable) throw new Error(`model: predictable() missed ${JSON.stringify(action)}: ${e.message}`);
      throw e;
    }
    plan.push({ action, time, expect });
    return expect;
  };
  for (const op of ops) {
    if (op.op === "bulkCreate") {
      const made = run({ op: "mkdirp", path: op.dir });
      if (made?.ok !== true) continue;
      const base = op.dir === "/" ? "" : op.dir;
      for (let i = 0; i < op.count; i++) run({ op: "writeFile", path: `${base}/${bulkName(op.tag, i, op.nameLen)}`, len: i % 5, seed: i, mode: null });
    } else if (op.op === "xattrCopy") {
      const from = model.resolve(expand(op.from), true);
      const to = model.resolve(expand(op.to), true);
      if (!from.ok || !to.ok) continue;
      const plain = (n: FsNode): [string, string][] => n.xattrs.entries().flatMap(([name, v]) => (v.spec === undefined ? [] : [[name, v.spec] as [string, string]]));
      const want = new Set(plain(from.v).map(([name]) => name));
      for (const [name] of plain(to.v)) if (!want.has(name)) run({ op: "removexattr", path: op.to, name, follow: true });
      for (const [name, spec] of plain(from.v)) run({ op: "setxattr", path: op.to, name, value: spec, flags: 0, follow: true });
    } else if (op.op === "bulkUnlink") {
      const d = model.resolve(expand(op.dir), true);
      if (!d.ok || d.v.kind !== "dir") continue;
      const names = [...d.v.entries.keys()].filter((n) => n.startsWith("h")).sort(compareStrings);
      const base = op.dir === "/" ? "" : op.dir;
      for (let i = op.first; i < names.length; i += op.every) run({ op: "unlink", path: `${base}/${names[i]!}` });
    } else {
      run(op);
    }
  }
  return plan;
}

/**
 * Read-only actions that check the whole final tree: lstat of every path, the contents of every
 * regular file, every directory's names, every symlink's target, and every inode's xattr names
 * and values.
 */
export function finalChecks(model: FsModel, firstIndex: number): PlannedAction[] {
  const out: PlannedAction[] = [];
  const time = actionTime(firstIndex);
  const add = (action: Action): void => {
    out.push({ action, time, expect: model.apply(action, time) });
  };
  for (const [p, n] of model.paths()) {
    if (p !== "/") add({ op: "lstat", path: p });
    if (n.kind === "file") add({ op: "readFile", path: p });
    if (n.kind === "dir") add({ op: "readdir", path: p });
    if (n.kind === "symlink") add({ op: "readlink", path: p });
    add({ op: "listxattr", path: p, follow: false });
    for (const [name] of n.xattrs.entries()) add({ op: "getxattr", path: p, name, follow: false });
  }
  return out;
}

/** JSON with object keys sorted, so outcomes compare whatever order their keys were built in. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x === null || typeof x !== "object" || Array.isArray(x)) return x;
    const o = x as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
  });
}

/** Whether two outcomes are the same result (or the same errno). */
export function compareOutcomes(a: Outcome, b: Outcome): boolean {
  return canonical(a) === canonical(b);
}
