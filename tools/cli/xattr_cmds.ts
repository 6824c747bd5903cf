/**
 * `getfattr`, `setfattr` (attr 2.5) and `getfacl`, `setfacl` (acl 2.3) on IMAGE:PATH
 * arguments. Options, output bytes, messages and exit codes are those of the real tools
 * (ports of attr's tools/getfattr.c and setfattr.c, acl's getfacl.c, setfacl.c, do_set.c
 * and parse.c, and libacl's text conversion), so a dump made here restores with the real
 * tools and the other way round:
 *
 *   ext4ts getfattr -d -m - -e hex disk.img:/etc/f        # like getfattr on a mount
 *   ext4ts setfattr -n user.k -v 0s3q2+7w== disk.img:/f   # text, 0x hex or 0s base64
 *   ext4ts setfacl -m u:1000:rwx,d:g:100:rx disk.img:/srv
 *   ext4ts getfacl -R disk.img:/srv
 *
 * The "path" that headers and messages show is the argument as given (IMAGE:PATH, then
 * IMAGE:PATH/NAME below it with -R), under the tools' rules: a leading '/' is stripped from
 * headers (with the tools' one warning) unless --absolute-names. `setfattr --restore` and
 * `setfacl --restore` take such dumps, where every "# file:" names an IMAGE:PATH.
 * Owners, groups and ACL qualifiers are numeric: an image carries no passwd of the host's,
 * so `setfacl -m u:NAME:...` with a NAME that is not a number fails as for an unknown user.
 *
 * Each image is mounted once per command (read-only for getfattr/getfacl), whatever the
 * number of its paths. Exit status as the tools': 0, 1 when some operation failed, 2 for
 * usage errors. `ext4ts getfattr IMAGE PATH` (two arguments, the first an image file and the
 * second an absolute path) keeps its older meaning: every namespace, the symlink itself
 * (-L follows), header `# file: PATH`.
 */

import { CommanderError, type Command } from "commander";
import { readFileSync, realpathSync } from "node:fs";
import { resolve } from "node:path";
import { FsError, openImage, type Stats, type Volume } from "../../src/node.js";
import {
  ACL_EXECUTE, ACL_GROUP, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER, ACL_READ, ACL_UNDEFINED_ID, ACL_USER, ACL_USER_OBJ, ACL_WRITE,
  decodeVfsAcl, encodeVfsAcl, type AclEntry,
} from "../../src/format/acl.js";
import { CommandFailure } from "./errors.js";
import { parseImagePath } from "./write_cmds.js";

const ACL_ACCESS_XATTR = "system.posix_acl_access";
const ACL_DEFAULT_XATTR = "system.posix_acl_default";

// ---------------------------------------------------------------------------------------------
// Output, errors

function out(b: Uint8Array | string): void {
  process.stdout.write(b);
}

function err(s: string): void {
  process.stderr.write(s);
}

/** glibc's strerror text for the codes the engine throws. */
const STRERROR: Readonly<Record<string, string>> = {
  EPERM: "Operation not permitted", ENOENT: "No such file or directory", EIO: "Input/output error", E2BIG: "Argument list too long",
  EBADF: "Bad file descriptor", ENOMEM: "Cannot allocate memory", EACCES: "Permission denied", EBUSY: "Device or resource busy",
  EEXIST: "File exists", EXDEV: "Invalid cross-device link", ENOTDIR: "Not a directory", EISDIR: "Is a directory",
  EINVAL: "Invalid argument", EFBIG: "File too large", ENOSPC: "No space left on device", EROFS: "Read-only file system",
  EMLINK: "Too many links", ERANGE: "Numerical result out of range", ENAMETOOLONG: "File name too long", ENOTEMPTY: "Directory not empty",
  ELOOP: "Too many levels of symbolic links", ENODATA: "No data available", EFSBADCRC: "Bad message", EOPNOTSUPP: "Operation not supported",
  EFSCORRUPTED: "Structure needs cleaning", EDQUOT: "Disk quota exceeded",
};

/** strerror(errno) for an engine error; corruption keeps its reason (which inode, which block). */
export function strerror(e: FsError): string {
  const s = STRERROR[e.code] ?? e.code;
  if (e.code === "EFSCORRUPTED" || e.code === "EFSBADCRC") {
    const loc = [e.detail.ino !== undefined ? `inode ${e.detail.ino}` : "", e.detail.block !== undefined ? `block ${e.detail.block}` : ""].filter((x) => x !== "");
    return `${s} (${e.reason}${loc.length > 0 ? `, ${loc.join(", ")}` : ""})`;
  }
  return s;
}

/** attr's strerror_ea: Linux's ENODATA is the tools' ENOATTR. */
function strerrorEa(e: FsError): string {
  return e.code === "ENODATA" ? "No such attribute" : strerror(e);
}

/** Why an image could not be mounted (the whole message: "journal needs recovery" matters). */
function mountFailure(e: unknown): string {
  if (e instanceof FsError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

function isFs(e: unknown): e is FsError {
  return e instanceof FsError;
}

// ---------------------------------------------------------------------------------------------
// attr's quoting (libmisc quote.c / unquote.c) and value encodings (getfattr encode, setfattr decode)

/** quote(): '\\' and each of `chars` become \ooo. */
export function quote(s: string, chars: string): string {
  let q = "";
  for (const c of s) q += c === "\\" || chars.includes(c) ? `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}` : c;
  return q;
}

/** unquote(): \ooo (exactly three octal digits) becomes that byte. */
export function unquote(b: Uint8Array): Uint8Array {
  const o: number[] = [];
  const oct = (i: number): boolean => i < b.length && b[i]! >= 0x30 && b[i]! <= 0x37;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x5c && oct(i + 1) && oct(i + 2) && oct(i + 3)) {
      o.push((((b[i + 1]! - 0x30) << 6) + ((b[i + 2]! - 0x30) << 3) + (b[i + 3]! - 0x30)) & 0xff);
      i += 3;
    } else {
      o.push(b[i]!);
    }
  }
  return Uint8Array.from(o);
}

export type ValueEncoding = "text" | "hex" | "base64";

function isPrint(c: number): boolean {
  return c >= 0x20 && c < 0x7f;
}

/** getfattr's encode(): `enc` undefined picks text when at most 1/8 of the bytes are unprintable. */
export function encodeValue(v: Uint8Array, enc?: ValueEncoding): Buffer {
  let e = enc;
  if (e === undefined) {
    let nonpr = 0;
    for (const c of v) if (!isPrint(c)) nonpr++;
    e = v.length >= nonpr * 8 ? "text" : "base64";
  }
  if (e === "hex") return Buffer.from(`0x${Buffer.from(v).toString("hex")}`, "latin1");
  if (e === "base64") return Buffer.from(`0s${Buffer.from(v).toString("base64")}`, "latin1");
  const o: number[] = [0x22];
  for (let n = 0; n < v.length; n++) {
    const c = v[n]!;
    if (c === 0 && n + 1 === v.length) break;
    if (c === 0 || c === 0x0a || c === 0x0d) o.push(0x5c, 0x30 + (c >> 6), 0x30 + ((c >> 3) & 7), 0x30 + (c & 7));
    else if (c === 0x5c || c === 0x22) o.push(0x5c, c);
    else o.push(c);
  }
  o.push(0x22);
  return Buffer.from(o);
}

function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

function base64Digit(c: number): number {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41;
  if (c >= 0x61 && c <= 0x7a) return 26 + c - 0x61;
  if (c >= 0x30 && c <= 0x39) return 52 + c - 0x30;
  if (c === 0x2b) return 62;
  if (c === 0x2f) return 63;
  if (c === 0x3d) return -2;
  return -1;
}

/**
 * setfattr's decode(): `0x`/`0X` hex and `0s`/`0S` base64 (whitespace allowed between
 * digits), else text: optionally in double quotes, with \\ \" and \ooo escapes. null for
 * "bad input encoding".
 */
export function decodeValue(b: Uint8Array): Uint8Array | null {
  const at = (i: number): number => (i < b.length ? b[i]! : 0);
  const end = b.length;
  if (end === 0) return new Uint8Array(0);
  const o: number[] = [];
  if (b[0] === 0x30 && (at(1) === 0x78 || at(1) === 0x58)) {
    let v = 2;
    while (v < end) {
      while (v < end && isSpace(b[v]!)) v++;
      if (v === end) break;
      const d1 = hexDigit(b[v++]!);
      while (v < end && isSpace(b[v]!)) v++;
      if (v === end) return null;
      const d0 = hexDigit(b[v++]!);
      if (d1 < 0 || d0 < 0) return null;
      o.push((d1 << 4) | d0);
    }
    return Uint8Array.from(o);
  }
  if (b[0] === 0x30 && (at(1) === 0x73 || at(1) === 0x53)) {
    let v = 2;
    let d0 = 0, d1 = 0, d2 = 0, d3 = 0;
    for (;;) {
      while (v < end && isSpace(b[v]!)) v++;
      if (v === end) {
        d0 = d1 = d2 = d3 = -2;
        break;
      }
      if (v + 4 > end) return null;
      d0 = base64Digit(b[v++]!);
      d1 = base64Digit(b[v++]!);
      d2 = base64Digit(b[v++]!);
      d3 = base64Digit(b[v++]!);
      if (d0 < 0 || d1 < 0 || d2 < 0 || d3 < 0) break;
      o.push(((d0 << 2) | (d1 >> 4)) & 0xff, ((d1 << 4) | (d2 >> 2)) & 0xff, ((d2 << 6) | d3) & 0xff);
    }
    const tail = (): boolean => {
      if (d0 === -2) return d1 === -2 && d2 === -2 && d3 === -2;
      if (d0 === -1 || d1 < 0 || d2 === -1 || d3 === -1) return false;
      o.push(((d0 << 2) | (d1 >> 4)) & 0xff);
      if (d2 === -2) return (d1 & 0x0f) === 0 && d3 === -2;
      o.push(((d1 << 4) | (d2 >> 2)) & 0xff);
      if (d3 !== -2) o.push(((d2 << 6) | d3) & 0xff);
      else if ((d2 & 0x03) !== 0) return false;
      return true;
    };
    if (!tail()) return null;
    while (v < end && isSpace(b[v]!)) v++;
    if (v + 4 <= end && b[v] === 0x3d) {
      if (at(++v) !== 0x3d || at(++v) !== 0x3d || at(++v) !== 0x3d) return null;
      v++;
    }
    while (v < end && isSpace(b[v]!)) v++;
    if (v < end) return null;
    return Uint8Array.from(o);
  }
  let v = 0;
  let e = end;
  if (e > v + 1 && b[v] === 0x22 && b[e - 1] === 0x22) {
    v++;
    e--;
  }
  const oct = (c: number): boolean => c >= 0x30 && c <= 0x37;
  while (v < e) {
    if (b[v] === 0x5c) {
      if (at(v + 1) === 0x5c || at(v + 1) === 0x22) {
        o.push(at(++v));
        v++;
      } else if (oct(at(v + 1))) {
        v++;
        let c = b[v++]! - 0x30;
        if (oct(at(v))) c = (c << 3) + (b[v++]! - 0x30);
        if (oct(at(v))) c = (c << 3) + (b[v++]! - 0x30);
        o.push(c & 0xff);
      } else {
        o.push(b[v++]!);
      }
    } else {
      o.push(b[v++]!);
    }
  }
  return Uint8Array.from(o);
}

// ---------------------------------------------------------------------------------------------
// getopt_long, as glibc does it (permuting, or in order for setfacl's "-" optstring)

interface OptDef {
  key: string;
  short?: string;
  long?: string;
  arg?: boolean;
}

type ArgItem = { kind: "opt"; key: string; value: string; flag: string } | { kind: "operand"; value: string };

class UsageProblem extends Error {}

function getopt(argv: readonly string[], defs: readonly OptDef[], inOrder = false): ArgItem[] {
  const items: ArgItem[] = [];
  const operands: ArgItem[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      for (const r of argv.slice(i + 1)) operands.push({ kind: "operand", value: r });
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const exact = defs.find((d) => d.long === name);
      const cands = exact !== undefined ? [exact] : defs.filter((d) => d.long?.startsWith(name) === true);
      if (cands.length === 0) throw new UsageProblem(`unrecognized option '${a}'`);
      if (cands.length > 1) throw new UsageProblem(`option '${a}' is ambiguous; possibilities:${cands.map((c) => ` '--${c.long ?? ""}'`).join("")}`);
      const d = cands[0]!;
      let value = "";
      if (d.arg === true) {
        if (eq >= 0) value = a.slice(eq + 1);
        else if (i + 1 < argv.length) value = argv[++i]!;
        else throw new UsageProblem(`option '--${d.long ?? ""}' requires an argument`);
      } else if (eq >= 0) {
        throw new UsageProblem(`option '--${d.long ?? ""}' doesn't allow an argument`);
      }
      items.push({ kind: "opt", key: d.key, value, flag: `--${d.long ?? ""}` });
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        const d = defs.find((x) => x.short === c);
        if (d === undefined) throw new UsageProblem(`invalid option -- '${c}'`);
        if (d.arg === true) {
          let value: string;
          if (j + 1 < a.length) value = a.slice(j + 1);
          else if (i + 1 < argv.length) value = argv[++i]!;
          else throw new UsageProblem(`option requires an argument -- '${c}'`);
          items.push({ kind: "opt", key: d.key, value, flag: `-${c}` });
          break;
        }
        items.push({ kind: "opt", key: d.key, value: "", flag: `-${c}` });
      }
      continue;
    }
    (inOrder ? items : operands).push({ kind: "operand", value: a });
  }
  return [...items, ...operands];
}

// ---------------------------------------------------------------------------------------------
// Images and the tree walk (libmisc walk_tree)

/** One mounted volume per image file for the whole command. */
class ImageSet {
  readonly #vols = new Map<string, Promise<Volume>>();
  readonly #writable: boolean;
  readonly #noload: boolean;
  readonly #force: boolean;

  constructor(o: { writable: boolean; noload?: boolean; force?: boolean }) {
    this.#writable = o.writable;
    this.#noload = o.noload === true;
    this.#force = o.force === true;
  }

  open(image: string): Promise<Volume> {
    let key: string;
    try {
      key = realpathSync(image);
    } catch {
      key = resolve(image);
    }
    let p = this.#vols.get(key);
    if (p === undefined) {
      p = this.#writable
        ? openImage(image, { readOnly: false, syncIO: true, force: this.#force })
        : openImage(image, { readOnly: true, noload: this.#noload, syncIO: true });
      p.catch(() => undefined); // reported by each caller
      this.#vols.set(key, p);
    }
    return p;
  }

  async close(): Promise<void> {
    let first: Error | undefined;
    for (const p of this.#vols.values()) {
      let vol: Volume;
      try {
        vol = await p;
      } catch {
        continue;
      }
      try {
        await vol.unmount();
      } catch (e) {
        first ??= e instanceof Error ? e : new Error("unmount failed");
      }
    }
    this.#vols.clear();
    if (first !== undefined) throw first;
  }
}

/** An argument resolved to its image: `display` is what headers and messages show. */
interface Target {
  image: string;
  path: string;
  display: string;
}

function targetOf(arg: string): Target | null {
  const ip = parseImagePath(arg);
  return ip === null ? null : { image: ip.image, path: ip.path, display: arg };
}

function notImagePath(prog: string, arg: string): void {
  err(`${prog}: ${quote(arg, "\n\r")}: not an IMAGE:PATH argument (IMAGE must be an existing image file)\n`);
}

/**
 * The mounted volume for `t` (an IMAGE:PATH argument, parsed or not), or null after saying
 * why not, as the tools do for a file they cannot reach (the caller counts the error).
 */
async function openTarget(images: ImageSet, prog: string, t: Target | string, display?: string): Promise<{ vol: Volume; t: Target } | null> {
  if (typeof t === "string") {
    notImagePath(prog, t);
    return null;
  }
  try {
    return { vol: await images.open(t.image), t };
  } catch (e) {
    err(`${prog}: ${quote(display ?? t.display, "\n\r")}: ${mountFailure(e)}\n`);
    return null;
  }
}

function childPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

interface WalkFlags {
  recursive: boolean;
  /** -L: follow every symlink to a directory. */
  logical: boolean;
  /** Follow a symlink named on the command line (into a directory, with -R). */
  followTop: boolean;
}

/** What the walk found at one path: its lstat, or the error that stopped it. */
interface WalkVisit {
  path: string;
  display: string;
  top: boolean;
  lst: Stats | null;
  error: FsError | null;
}

/**
 * walk_tree(): visit `path`, then with -R its directory entries (in the engine's readdir
 * order) below it, displayed as DISPLAY/NAME. Symlinks to directories are entered with -L,
 * or at the top with followTop; a directory already on the way down is not entered again.
 */
async function walkTree(vol: Volume, path: string, display: string, f: WalkFlags, visit: (v: WalkVisit) => Promise<void>, top = true, above: ReadonlySet<number> = new Set()): Promise<void> {
  let lst: Stats;
  try {
    lst = await vol.lstat(path);
  } catch (e) {
    if (!isFs(e)) throw e;
    await visit({ path, display, top, lst: null, error: e });
    return;
  }
  await visit({ path, display, top, lst, error: null });
  if (!f.recursive) return;
  let st = lst;
  if (lst.isSymbolicLink()) {
    if (!(f.logical || (top && f.followTop))) return;
    try {
      st = await vol.stat(path);
    } catch (e) {
      if (isFs(e)) return;
      throw e;
    }
  }
  if (!st.isDirectory() || above.has(st.ino)) return;
  let names: string[];
  try {
    names = await vol.readdir(path);
  } catch (e) {
    if (!isFs(e)) throw e;
    await visit({ path, display, top, lst: null, error: e });
    return;
  }
  const below = new Set(above).add(st.ino);
  // DISPLAY/NAME as walk_tree builds it ("d/" gives "d//x"), except below an image's root: IMAGE:/NAME.
  const prefix = display.endsWith(":/") ? display : `${display}/`;
  for (const name of names) await walkTree(vol, childPath(path, name), prefix + name, f, visit, false, below);
}

// ---------------------------------------------------------------------------------------------
// getfattr

const GETFATTR_SPEC = "[-hRLP] [-n name|-d] [-e en] [-m pattern] IMAGE:PATH...";
const GETFATTR_OPTS: readonly OptDef[] = [
  { key: "n", short: "n", long: "name", arg: true }, { key: "d", short: "d", long: "dump" },
  { key: "e", short: "e", long: "encoding", arg: true }, { key: "m", short: "m", long: "match", arg: true },
  { key: "v", long: "only-values" }, { key: "h", short: "h", long: "no-dereference" }, { key: "a", long: "absolute-names" },
  { key: "R", short: "R", long: "recursive" }, { key: "L", short: "L", long: "logical" }, { key: "P", short: "P", long: "physical" },
  { key: "V", long: "version" }, { key: "H", long: "help" }, { key: "noload", long: "noload" },
];

const GETFATTR_HELP = `ext4ts getfattr -- get extended attributes of files in ext4 images (as attr's getfattr 2.5)
Usage: ext4ts getfattr ${GETFATTR_SPEC}
  -n, --name=name         get the named extended attribute value
  -d, --dump              get all extended attribute values
  -e, --encoding=...      encode values (as 'text', 'hex' or 'base64')
      --match=pattern     only get attributes with names matching pattern
                          (default '^user\\.'; '-' for all)
      --only-values       print the bare values only
  -h, --no-dereference    do not dereference symbolic links
      --absolute-names    don't strip leading '/' in pathnames
  -R, --recursive         recurse into subdirectories
  -L, --logical           logical walk, follow symbolic links
  -P  --physical          physical walk, do not follow symbolic links
      --noload            read an image whose journal needs recovery without replaying it
      --version           print version and exit
      --help              this help text
IMAGE:PATH names a path inside an image file, e.g. disk.img:/etc/passwd.
\`ext4ts getfattr IMAGE PATH\` (older form) dumps every attribute of PATH itself (-L follows).
`;

function synopsis(prog: string, spec: string[], problem?: string): number {
  if (problem !== undefined) err(`${prog}: ${problem}\n`);
  err(`Usage: ext4ts ${prog} ${spec[0] ?? ""}\n`);
  for (const s of spec.slice(1)) err(`       ext4ts ${prog} ${s}\n`);
  err(`Try \`ext4ts ${prog} --help' for more information.\n`);
  return 2;
}

/** Leading-slash stripping of getfattr's headers (print_attribute). */
class PathStripper {
  #warned = false;
  constructor(readonly prog: string, readonly enabled: boolean, readonly dotSlash: boolean) {}

  strip(p: string): string {
    if (!this.enabled) return p;
    let s = p;
    if (s.startsWith("/")) {
      if (!this.#warned) {
        err(`${this.prog}: Removing leading '/' from absolute path names\n`);
        this.#warned = true;
      }
      s = s.replace(/^\/+/, "");
    } else if (this.dotSlash && s.startsWith("./")) {
      s = s.slice(1).replace(/^\/+/, "");
    }
    return s === "" && this.dotSlash ? "." : s;
  }
}

/**
 * Volume.getxattr, plus Linux's EOPNOTSUPP for a POSIX ACL name on a symlink (do_get_acl;
 * Volume.getxattr says ENODATA there).
 */

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export async function getfattrMain(argv: readonly string[]): Promise<number> {
  const prog = "getfattr";
  let items: ArgItem[];
  try {
    items = getopt(argv, GETFATTR_OPTS);
  } catch (e) {
    if (e instanceof UsageProblem) return synopsis(prog, [GETFATTR_SPEC], e.message);
    throw e;
  }
  let dump = false, valuesOnly = false, deref = true, strip = true, recursive = false, logical = false, physical = false, noload = false;
  let name: string | undefined;
  let pattern = "^user\\.";
  let encoding: ValueEncoding | undefined;
  let legacyFollow = false;
  let auto = false;
  const operands: string[] = [];
  for (const it of items) {
    if (it.kind === "operand") {
      operands.push(it.value);
      continue;
    }
    switch (it.key) {
      case "a": strip = false; break;
      case "d": dump = true; break;
      case "e":
        if (it.value === "auto") auto = true; // the older ext4ts spelling of "no -e"
        else if (it.value === "text" || it.value === "hex" || it.value === "base64") encoding = it.value;
        else return synopsis(prog, [GETFATTR_SPEC]);
        break;
      case "H": out(GETFATTR_HELP); return 0;
      case "h": deref = false; break;
      case "n": dump = true; name = it.value; break;
      case "m": pattern = it.value === "-" ? "" : it.value; break;
      case "v": valuesOnly = true; break;
      case "L": logical = true; physical = false; legacyFollow = true; break;
      case "P": physical = true; logical = false; break;
      case "R": recursive = true; break;
      case "V": out("getfattr 2.5 (ext4ts)\n"); return 0;
      case "noload": noload = true; break;
      default: return synopsis(prog, [GETFATTR_SPEC]);
    }
  }
  if (auto && encoding !== undefined) encoding = undefined;
  if (operands.length === 0) return synopsis(prog, [GETFATTR_SPEC]);

  // The older `ext4ts getfattr IMAGE PATH`: all namespaces, lgetxattr unless -L, `# file: PATH`.
  let targets: (Target | string)[];
  const legacy = operands.length === 2 && parseImagePath(operands[0]!) === null && parseImagePath(`${operands[0]!}:/`) !== null && operands[1]!.startsWith("/");
  if (legacy) {
    const [image, path] = operands as [string, string];
    targets = [{ image, path, display: path }];
    dump = true;
    strip = false;
    deref = legacyFollow;
    logical = false;
    if (items.every((it) => it.kind !== "opt" || it.key !== "m")) pattern = "";
  } else {
    targets = operands.map((a) => targetOf(a) ?? a);
  }

  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch {
    err(`${prog}: invalid regular expression "${pattern}"\n`);
    return 1;
  }
  const stripper = new PathStripper(prog, strip, true);
  const images = new ImageSet({ writable: false, noload });
  let errors = 0;

  /** print_attribute(): returns false on failure (reported as "PATH: NAME: error"). */
  const printAttribute = (v: WalkVisit, attr: string, value: Uint8Array, headerPrinted: { done: boolean }): void => {
    if (!headerPrinted.done && !valuesOnly) {
      out(Buffer.from(`# file: ${quote(stripper.strip(v.display), "\n\r")}\n`));
      headerPrinted.done = true;
    }
    if (valuesOnly) out(value);
    else if (dump) out(Buffer.concat([Buffer.from(`${quote(attr, "=\n\r")}=`), encodeValue(value, encoding), Buffer.from("\n")]));
    else out(`${quote(attr, "=\n\r")}\n`);
  };

  const visit = (vol: Volume) => async (v: WalkVisit): Promise<void> => {
    if (v.error !== null) {
      err(`${prog}: ${quote(v.display, "\n\r")}: ${strerror(v.error)}\n`);
      errors++;
      return;
    }
    const header = { done: false };
    const follow = deref;
    if (follow && v.lst?.isSymbolicLink() === true) {
      try {
        await vol.stat(v.path);
      } catch (e) {
        if (!isFs(e)) throw e;
        err(`${prog}: ${quote(v.display, "\n\r")}: ${strerror(e)}\n`);
        errors++;
        return;
      }
    }
    if (name !== undefined) {
      try {
        const value = await vol.getxattr(v.path, name, { follow });
        printAttribute(v, name, value, header);
      } catch (e) {
        if (!isFs(e)) throw e;
        err(`${quote(v.display, "\n\r")}: ${quote(name, "\n\r")}: ${strerrorEa(e)}\n`);
        errors++;
      }
    } else {
      let all: [string, Uint8Array][];
      try {
        all = await vol.xattrsOf(await vol.inode(v.path, { follow }));
      } catch (e) {
        if (!isFs(e)) throw e;
        err(`${prog}: ${quote(v.display, "\n\r")}: ${strerrorEa(e)}\n`);
        errors++;
        return;
      }
      const shown = all.filter(([n]) => re.test(n)).sort(([a], [b]) => compareBytes(a, b));
      for (const [n, value] of shown) printAttribute(v, n, value, header);
    }
    if (header.done) out("\n");
  };

  try {
    for (const target of targets) {
      const opened = await openTarget(images, prog, target);
      if (opened === null) {
        errors++;
        continue;
      }
      const { vol, t } = opened;
      await walkTree(vol, t.path, t.display, { recursive, logical, followTop: deref && !physical }, visit(vol));
    }
  } finally {
    await images.close();
  }
  return errors > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// setfattr

const SETFATTR_SPEC = ["{-n name} [-v value] [-h] IMAGE:PATH...", "{-x name} [-h] IMAGE:PATH..."];
const SETFATTR_OPTS: readonly OptDef[] = [
  { key: "n", short: "n", long: "name", arg: true }, { key: "x", short: "x", long: "remove", arg: true },
  { key: "v", short: "v", long: "value", arg: true }, { key: "h", short: "h", long: "no-dereference" },
  { key: "B", long: "restore", arg: true }, { key: "V", long: "version" }, { key: "H", long: "help" },
  { key: "force", long: "force-write" },
];

const SETFATTR_HELP = `ext4ts setfattr -- set extended attributes of files in ext4 images (as attr's setfattr 2.5)
Usage: ext4ts setfattr ${SETFATTR_SPEC[0]!}
       ext4ts setfattr ${SETFATTR_SPEC[1]!}
  -n, --name=name         set the value of the named extended attribute
  -x, --remove=name       remove the named extended attribute
  -v, --value=value       use value as the attribute value: text (optionally in
                          double quotes, with \\ooo escapes), 0x hex or 0s base64;
                          without -v the value is empty
  -h, --no-dereference    do not dereference symbolic links
      --restore=file      restore extended attributes from a getfattr dump
                          ("-" for standard input; each "# file:" is an IMAGE:PATH)
      --force-write       write even to an image with recorded errors
      --version           print version and exit
      --help              this help text
IMAGE:PATH names a path inside an image file, e.g. disk.img:/etc/passwd.
`;

/** A stdin-or-file read, split into lines (bytes, without the newline). */
function readLines(file: string): Uint8Array[] {
  const data = readFileSync(file === "-" ? 0 : file);
  const lines: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0x0a) {
      lines.push(data.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < data.length) lines.push(data.subarray(start));
  return lines;
}

const utf8 = new TextDecoder();

export async function setfattrMain(argv: readonly string[], force: boolean): Promise<number> {
  const prog = "setfattr";
  let items: ArgItem[];
  try {
    items = getopt(argv, SETFATTR_OPTS);
  } catch (e) {
    if (e instanceof UsageProblem) return synopsis(prog, SETFATTR_SPEC, e.message);
    throw e;
  }
  if (items.some((it) => it.kind === "opt" && it.key === "force")) force = true;
  let name: string | undefined;
  let value: Uint8Array | undefined;
  let set = false, remove = false, restored = false, deref = true;
  let errors = 0;
  const images = new ImageSet({ writable: true, force });

  /** do_set(): set (or with -x remove) one attribute; reports and counts failures. */
  const doSet = async (arg: string, attr: string, raw: Uint8Array | undefined, removing: boolean): Promise<void> => {
    let v: Uint8Array = new Uint8Array(0);
    if (raw !== undefined) {
      const d = decodeValue(raw);
      if (d === null) {
        err("bad input encoding\n");
        errors++;
        return;
      }
      v = d;
    }
    const t = targetOf(arg);
    if (t === null) {
      notImagePath(prog, arg);
      errors++;
      return;
    }
    try {
      const vol = await images.open(t.image).catch((e: unknown) => {
        throw new MountError(mountFailure(e));
      });
      if (removing) await (deref ? vol.removexattr(t.path, attr) : vol.lremovexattr(t.path, attr));
      else await (deref ? vol.setxattr(t.path, attr, v) : vol.lsetxattr(t.path, attr, v));
    } catch (e) {
      if (e instanceof MountError) err(`${prog}: ${quote(arg, "\n\r")}: ${e.message}\n`);
      else if (isFs(e)) err(`${prog}: ${quote(arg, "\n\r")}: ${strerrorEa(e)}\n`);
      else throw e;
      errors++;
    }
  };

  /** restore(): replay a getfattr dump. */
  const restore = async (file: string): Promise<void> => {
    let lines: Uint8Array[];
    try {
      lines = readLines(file);
    } catch (e) {
      err(`${prog}: ${file}: ${e instanceof Error && "code" in e && e.code === "ENOENT" ? "No such file or directory" : e instanceof Error ? e.message : String(e)}\n`);
      errors++;
      return;
    }
    let i = 0;
    let line = 0;
    for (;;) {
      const backup = line;
      while (i < lines.length && lines[i]!.length === 0) {
        i++;
        line++;
      }
      if (i >= lines.length) break;
      const l = lines[i++]!;
      line++;
      const head = Buffer.from(l.subarray(0, 8)).toString("latin1");
      if (head !== "# file: ") {
        if (file !== "-") err(`${prog}: ${file}: No filename found in line ${backup}, aborting\n`);
        else err(`${prog}: No filename found in line ${backup} of standard input, aborting\n`);
        errors++;
        return;
      }
      const path = utf8.decode(unquote(l.subarray(8)));
      while (i < lines.length && lines[i]!.length > 0) {
        const a = lines[i++]!;
        line++;
        const eq = a.indexOf(0x3d);
        const n = utf8.decode(unquote(eq < 0 ? a : a.subarray(0, eq)));
        await doSet(path, n, eq < 0 ? undefined : a.subarray(eq + 1), false);
      }
      if (i >= lines.length) break;
      i++;
      line++;
    }
  };

  try {
    const operands: string[] = [];
    for (const it of items) {
      if (it.kind === "operand") {
        operands.push(it.value);
        continue;
      }
      switch (it.key) {
        case "n":
          if (name !== undefined || remove) return synopsis(prog, SETFATTR_SPEC);
          name = it.value;
          set = true;
          break;
        case "h": deref = false; break;
        case "v":
          if (value !== undefined || remove) return synopsis(prog, SETFATTR_SPEC);
          value = Buffer.from(it.value, "utf8");
          break;
        case "x":
          if (name !== undefined || set) return synopsis(prog, SETFATTR_SPEC);
          name = it.value;
          remove = true;
          break;
        case "B":
          restored = true;
          await restore(it.value);
          break;
        case "V": out("setfattr 2.5 (ext4ts)\n"); return 0;
        case "H": out(SETFATTR_HELP); return 0;
        case "force": break;
        default: return synopsis(prog, SETFATTR_SPEC);
      }
    }
    if (!(((remove || set) && operands.length > 0) || restored)) return synopsis(prog, SETFATTR_SPEC);
    if (name !== undefined) {
      const attr = utf8.decode(unquote(Buffer.from(name, "utf8")));
      for (const arg of operands) await doSet(arg, attr, remove ? undefined : value, remove);
    }
  } finally {
    await images.close();
  }
  return errors > 0 ? 1 : 0;
}

class MountError extends Error {}

// ---------------------------------------------------------------------------------------------
// ACLs as libacl holds them: entries sorted by tag then qualifier

/** One ACL entry; `id` is ACL_UNDEFINED_ID for the entries without a qualifier. */
export interface Ace {
  tag: number;
  perm: number;
  id: number;
}

function hasQualifier(tag: number): boolean {
  return tag === ACL_USER || tag === ACL_GROUP;
}

function sortAcl(acl: Ace[]): Ace[] {
  return acl.sort((a, b) => a.tag - b.tag || a.id - b.id);
}

/** The VFS xattr value (what getxattr returns) as sorted entries. */
export function aclFromXattr(v: Uint8Array): Ace[] {
  return sortAcl(decodeVfsAcl(v).map((e) => ({ tag: e.tag, perm: e.perm, id: e.id ?? ACL_UNDEFINED_ID })));
}

/** Entries as the VFS xattr value setxattr takes. */
export function aclToXattr(acl: readonly Ace[]): Uint8Array {
  return encodeVfsAcl(acl.map((e): AclEntry => (hasQualifier(e.tag) ? { tag: e.tag, perm: e.perm, id: e.id } : { tag: e.tag, perm: e.perm })));
}

/** acl_from_mode */
export function aclFromMode(mode: number): Ace[] {
  return [
    { tag: ACL_USER_OBJ, perm: (mode >> 6) & 7, id: ACL_UNDEFINED_ID },
    { tag: ACL_GROUP_OBJ, perm: (mode >> 3) & 7, id: ACL_UNDEFINED_ID },
    { tag: ACL_OTHER, perm: mode & 7, id: ACL_UNDEFINED_ID },
  ];
}

/** acl_equiv_mode: 0 when the mode bits express the ACL, 1 when not. */
function aclEquivMode(acl: readonly Ace[]): number {
  return acl.some((e) => e.tag === ACL_USER || e.tag === ACL_GROUP || e.tag === ACL_MASK) ? 1 : 0;
}

function findEntry(acl: readonly Ace[], tag: number, id: number): Ace | undefined {
  return acl.find((e) => e.tag === tag && (id === ACL_UNDEFINED_ID || e.id === id));
}

/** acl_calc_mask: the mask becomes the union of the group class entries. */
function aclCalcMask(acl: Ace[]): void {
  let perm = 0;
  for (const e of acl) if (e.tag === ACL_USER || e.tag === ACL_GROUP_OBJ || e.tag === ACL_GROUP) perm |= e.perm;
  const mask = findEntry(acl, ACL_MASK, ACL_UNDEFINED_ID);
  if (mask !== undefined) mask.perm = perm;
  else sortAcl(acl).push({ tag: ACL_MASK, perm, id: ACL_UNDEFINED_ID });
  sortAcl(acl);
}

const ACL_MULTI_ERROR = 0x1000, ACL_DUPLICATE_ERROR = 0x2000, ACL_MISS_ERROR = 0x3000, ACL_ENTRY_ERROR = 0x4000;
const ACL_ERROR_TEXT: Readonly<Record<number, string>> = {
  [ACL_MULTI_ERROR]: "Multiple entries of same type", [ACL_DUPLICATE_ERROR]: "Duplicate entries",
  [ACL_MISS_ERROR]: "Missing or wrong entry", [ACL_ENTRY_ERROR]: "Invalid entry type",
};

/** acl_check: 0 or an ACL_*_ERROR, with the count of entries that passed. */
function aclCheck(acl: readonly Ace[]): { error: number; last: number } {
  let qual = 0;
  let state = ACL_USER_OBJ;
  let needsMask = false;
  let last = 0;
  for (const e of acl) {
    switch (e.tag) {
      case ACL_USER_OBJ:
        if (state !== ACL_USER_OBJ) return { error: ACL_MULTI_ERROR, last };
        qual = 0;
        state = ACL_USER;
        break;
      case ACL_USER:
      case ACL_GROUP:
        if (state !== (e.tag === ACL_USER ? ACL_USER : ACL_GROUP)) return { error: ACL_MISS_ERROR, last };
        if (e.id < qual || e.id === ACL_UNDEFINED_ID) return { error: ACL_DUPLICATE_ERROR, last };
        qual = e.id + 1;
        needsMask = true;
        break;
      case ACL_GROUP_OBJ:
        if (state === ACL_USER) {
          qual = 0;
          state = ACL_GROUP;
          break;
        }
        return { error: state >= ACL_GROUP ? ACL_MULTI_ERROR : ACL_MISS_ERROR, last };
      case ACL_MASK:
        if (state === ACL_GROUP) {
          state = ACL_OTHER;
          break;
        }
        return { error: state >= ACL_OTHER ? ACL_MULTI_ERROR : ACL_MISS_ERROR, last };
      case ACL_OTHER:
        if (state === ACL_OTHER || (state === ACL_GROUP && !needsMask)) {
          state = 0;
          break;
        }
        return { error: ACL_MISS_ERROR, last };
      default:
        return { error: ACL_ENTRY_ERROR, last };
    }
    last++;
  }
  return { error: state !== 0 ? ACL_MISS_ERROR : 0, last };
}

function aclEqual(a: readonly Ace[], b: readonly Ace[]): boolean {
  return a.length === b.length && a.every((e, i) => e.tag === b[i]!.tag && e.perm === b[i]!.perm && (!hasQualifier(e.tag) || e.id === b[i]!.id));
}

function permString(p: number): string {
  return (p & ACL_READ ? "r" : "-") + (p & ACL_WRITE ? "w" : "-") + (p & ACL_EXECUTE ? "x" : "-");
}

interface AclTextOptions {
  abbreviate?: boolean;
  someEffective?: boolean;
  allEffective?: boolean;
  smartIndent?: boolean;
}

/** acl_to_any_text with numeric qualifiers (TEXT_NUMERIC_IDS: no passwd inside an image). */
export function aclText(acl: readonly Ace[], prefix: string | null, sep: string, o: AclTextOptions = {}): string {
  const mask = o.someEffective === true || o.allEffective === true ? findEntry(acl, ACL_MASK, ACL_UNDEFINED_ID) : undefined;
  const parts: string[] = [];
  for (const e of acl) {
    let s = prefix ?? "";
    const word = (w: string): string => (o.abbreviate === true ? `${w[0]!}:` : `${w}:`);
    let masked = mask;
    switch (e.tag) {
      case ACL_USER_OBJ: masked = undefined; s += `${word("user")}:`; break;
      case ACL_USER: s += `${word("user")}${e.id}:`; break;
      case ACL_GROUP_OBJ: s += `${word("group")}:`; break;
      case ACL_GROUP: s += `${word("group")}${e.id}:`; break;
      case ACL_MASK: masked = undefined; s += `${word("mask")}:`; break;
      case ACL_OTHER: masked = undefined; s += `${word("other")}:`; break;
      default: continue;
    }
    s += permString(e.perm);
    if (masked !== undefined) {
      const effective = e.perm & masked.perm;
      if (effective !== e.perm || o.allEffective === true) {
        const x = o.smartIndent === true ? Math.min(Math.floor(s.length / 8), 3) : 3;
        s += `${"\t".repeat(4 - x)}#effective:${permString(effective)}`;
      }
    }
    parts.push(s);
  }
  return parts.join(sep);
}

/** The access ACL of a path (from the mode when it has none), as acl_get_file. */
async function getAccessAcl(vol: Volume, path: string, follow: boolean, st: Stats): Promise<Ace[]> {
  try {
    return aclFromXattr(await vol.getxattr(path, ACL_ACCESS_XATTR, { follow }));
  } catch (e) {
    if (isFs(e) && e.code === "ENODATA") return aclFromMode(st.mode);
    throw e;
  }
}

/** The default ACL of a directory ([] when it has none). */
async function getDefaultAcl(vol: Volume, path: string, follow: boolean): Promise<Ace[]> {
  try {
    return aclFromXattr(await vol.getxattr(path, ACL_DEFAULT_XATTR, { follow }));
  } catch (e) {
    if (isFs(e) && e.code === "ENODATA") return [];
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// getfacl

const GETFACL_OPTS_LETTERS = "aceEsRLPpndvh";
const GETFACL_OPTS: readonly OptDef[] = [
  { key: "a", short: "a", long: "access" }, { key: "c", short: "c", long: "omit-header" },
  { key: "e", short: "e", long: "all-effective" }, { key: "E", short: "E", long: "no-effective" },
  { key: "s", short: "s", long: "skip-base" }, { key: "R", short: "R", long: "recursive" },
  { key: "L", short: "L", long: "logical" }, { key: "P", short: "P", long: "physical" },
  { key: "p", short: "p", long: "absolute-names" }, { key: "n", short: "n", long: "numeric" },
  { key: "d", short: "d", long: "default" }, { key: "v", short: "v", long: "version" },
  { key: "h", short: "h", long: "help" }, { key: "noload", long: "noload" }, { key: "onefs", long: "one-file-system" },
];

const GETFACL_HELP = `ext4ts getfacl -- get access control lists of files in ext4 images (as acl's getfacl 2.3)
Usage: ext4ts getfacl [-${GETFACL_OPTS_LETTERS}] IMAGE:PATH ...
  -a, --access            display the file access control list only
  -d, --default           display the default access control list only
  -c, --omit-header       do not display the comment header
  -e, --all-effective     print all effective rights
  -E, --no-effective      print no effective rights
  -s, --skip-base         skip files that only have the base entries
  -R, --recursive         recurse into subdirectories
  -L, --logical           logical walk, follow symbolic links
  -P, --physical          physical walk, do not follow symbolic links
  -n, --numeric           print numeric user/group identifiers (always: an image
                          has no user database of the host's)
      --one-file-system   accepted (an image is one file system)
  -p, --absolute-names    don't strip leading '/' in pathnames
      --noload            read an image whose journal needs recovery without replaying it
  -v, --version           print version and exit
  -h, --help              this help text
IMAGE:PATH names a path inside an image file, e.g. disk.img:/srv.
`;

function flagString(mode: number): string {
  return (mode & 0o4000 ? "s" : "-") + (mode & 0o2000 ? "s" : "-") + (mode & 0o1000 ? "t" : "-");
}

export async function getfaclMain(argv: readonly string[]): Promise<number> {
  const prog = "getfacl";
  const spec = [`[-${GETFACL_OPTS_LETTERS}] IMAGE:PATH ...`];
  let items: ArgItem[];
  try {
    items = getopt(argv, GETFACL_OPTS);
  } catch (e) {
    if (e instanceof UsageProblem) return synopsis(prog, spec, e.message);
    throw e;
  }
  let printAcl = false, printDefault = false, comments = true, skipBase = false, strip = true, noload = false;
  let recursive = false, logical = false, physical = false;
  const text: AclTextOptions = { someEffective: true, smartIndent: process.stdout.isTTY };
  const operands: string[] = [];
  for (const it of items) {
    if (it.kind === "operand") {
      operands.push(it.value);
      continue;
    }
    switch (it.key) {
      case "a": printAcl = true; break;
      case "d": printDefault = true; break;
      case "c": comments = false; break;
      case "e": text.allEffective = true; break;
      case "E": text.someEffective = false; text.allEffective = false; break;
      case "R": recursive = true; break;
      case "L": logical = true; physical = false; break;
      case "P": physical = true; logical = false; break;
      case "s": skipBase = true; break;
      case "p": strip = false; break;
      case "n": case "onefs": break;
      case "noload": noload = true; break;
      case "v": out("getfacl 2.3 (ext4ts)\n"); return 0;
      case "h": out(GETFACL_HELP); return 0;
      default: return synopsis(prog, spec);
    }
  }
  if (!printAcl && !printDefault) printAcl = printDefault = true;
  if (operands.length === 0) return synopsis(prog, spec);
  const stripper = new PathStripper(prog, strip, false);
  const images = new ImageSet({ writable: false, noload });
  let errors = 0;

  const visit = (vol: Volume) => async (v: WalkVisit): Promise<void> => {
    const fail = (e: FsError): void => {
      err(`${prog}: ${v.display}: ${strerror(e)}\n`);
      errors++;
    };
    if (v.error !== null) {
      err(`${prog}: ${quote(v.display, "\n\r")}: ${strerror(v.error)}\n`);
      errors++;
      return;
    }
    // Symlinks never have ACLs: skipped unless followed (at the top, or everywhere with -L).
    const follow = logical || (v.top && !physical);
    if (v.lst?.isSymbolicLink() === true && !follow) return;
    try {
      const st = follow ? await vol.stat(v.path) : v.lst!;
      const acl = printAcl ? await getAccessAcl(vol, v.path, follow, st) : null;
      let dacl = printDefault && st.isDirectory() ? await getDefaultAcl(vol, v.path, follow) : null;
      if (dacl?.length === 0) dacl = null;
      if (skipBase && (acl === null || aclEquivMode(acl) === 0) && dacl === null) return;
      const full = stripper.strip(v.display);
      let s = "";
      if (comments) {
        s += `# file: ${quote(full, "\n\r")}\n# owner: ${st.uid}\n# group: ${st.gid}\n`;
        if ((st.mode & 0o7000) !== 0) s += `# flags: ${flagString(st.mode)}\n`;
      }
      if (acl !== null) s += `${aclText(acl, null, "\n", text)}\n`;
      if (dacl !== null) s += `${aclText(dacl, printAcl ? "default:" : null, "\n", text)}\n`;
      if (acl !== null || dacl !== null || comments) s += "\n";
      out(Buffer.from(s));
    } catch (e) {
      if (!isFs(e)) throw e;
      fail(e);
    }
  };

  try {
    for (const arg of operands) {
      const opened = await openTarget(images, prog, targetOf(arg) ?? arg);
      if (opened === null) {
        errors++;
        continue;
      }
      const { vol, t } = opened;
      await walkTree(vol, t.path, t.display, { recursive, logical, followTop: !physical }, visit(vol));
    }
  } finally {
    await images.close();
  }
  return errors > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// setfacl: ACL specs (tools/parse.c) and the command sequence (tools/do_set.c)

const CMD_ENTRY_REPLACE = 0, CMD_REMOVE_ENTRY = 3, CMD_REMOVE_EXTENDED_ACL = 4, CMD_REMOVE_ACL = 5;
const CMD_PERM_READ = 4, CMD_PERM_WRITE = 2, CMD_PERM_EXECUTE = 1, CMD_PERM_COND_EXECUTE = 8;
const SEQ_PARSE_WITH_PERM = 1, SEQ_PARSE_NO_PERM = 2, SEQ_PARSE_DEFAULT = 8, SEQ_PARSE_MULTI = 16, SEQ_PROMOTE_ACL = 32;

type AclType = "access" | "default";

/** One setfacl command: replace or remove an entry, drop the extended entries or a whole ACL. */
export interface AclCmd {
  cmd: number;
  type: AclType;
  tag: number;
  id: number;
  perm: number;
}

/** A cursor over the bytes of an ACL spec (C strings end at the first NUL). */
class Cursor {
  constructor(readonly s: string, public i = 0) {}
  get c(): string {
    return this.s[this.i] ?? "";
  }
  skipWs(): void {
    while (" \t\n\r".includes(this.c) && this.c !== "") this.i++;
  }
}

function skipTagName(t: Cursor, token: string): boolean {
  let i = t.i;
  const ws = (): void => {
    while (i < t.s.length && " \t\n\r".includes(t.s[i]!)) i++;
  };
  ws();
  if (t.s.startsWith(token, i)) i += token.length;
  else if (t.s[i] === token[0]) i++;
  else return false;
  ws();
  if (t.s[i] === ":") {
    t.i = i + 1;
    return true;
  }
  if (t.s[i] === "," || i >= t.s.length) {
    t.i = i;
    return true;
  }
  return false;
}

function getToken(t: Cursor): string | null {
  t.skipWs();
  const bp = t.i;
  let ep = bp;
  while (ep < t.s.length && !"\r\n:,".includes(t.s[ep]!)) ep++;
  const token = ep === bp ? null : t.s.slice(bp, ep).replace(/[ \t\n\r]+$/, "");
  if (t.s[ep] === ":") ep++;
  t.i = ep;
  return token;
}

/**
 * get_uid / get_gid without a user database: a number as strtol(base 0) reads it (negative
 * ids wrap to 16 bits, as setfacl does); anything else is an unknown name.
 */
export function parseId(token: string): number | null {
  const m = /^[ \t\n\r\f\v]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(token);
  if (m === null) return null;
  const digits = m[2]!;
  let n = /^0[xX]/.test(digits) ? parseInt(digits.slice(2), 16) : digits.startsWith("0") ? parseInt(digits, 8) : parseInt(digits, 10);
  if (m[1] === "-") n = -n;
  if (n < 0) n &= 0xffff;
  if (n > 0xffffffff) return null;
  return n;
}

function unquoteText(s: string): string {
  return utf8.decode(unquote(Buffer.from(s, "utf8")));
}

/** parse_acl_cmd: one entry of an ACL spec, or null (the cursor shows where it failed). */
function parseAclCmd(t: Cursor, seqCmd: number, mode: number): AclCmd | null {
  const cmd: AclCmd = { cmd: seqCmd, type: mode & SEQ_PROMOTE_ACL ? "default" : "access", tag: 0, id: ACL_UNDEFINED_ID, perm: 0 };
  if (mode & SEQ_PARSE_DEFAULT) {
    const backup = t.i;
    if (skipTagName(t, "default")) {
      if (mode & SEQ_PROMOTE_ACL) {
        t.i = backup;
        return null;
      }
      cmd.type = "default";
    }
  }
  const userEntry = (): boolean => {
    const backup = t.i;
    const str = getToken(t);
    if (str === null) {
      cmd.tag = ACL_USER_OBJ;
      return true;
    }
    cmd.tag = ACL_USER;
    const id = parseId(unquoteText(str));
    if (id === null) {
      t.i = backup;
      return false;
    }
    cmd.id = id;
    return true;
  };
  switch (t.c) {
    case "u":
      skipTagName(t, "user");
      if (!userEntry()) return null;
      break;
    case "g":
      if (!skipTagName(t, "group")) {
        if (!userEntry()) return null;
        break;
      } else {
        const backup = t.i;
        const str = getToken(t);
        if (str === null) {
          cmd.tag = ACL_GROUP_OBJ;
        } else {
          cmd.tag = ACL_GROUP;
          const id = parseId(unquoteText(str));
          if (id === null) {
            t.i = backup;
            return null;
          }
          cmd.id = id;
        }
      }
      break;
    case "o":
    case "m": {
      const tag = t.c === "o" ? ACL_OTHER : ACL_MASK;
      if (!skipTagName(t, tag === ACL_OTHER ? "other" : "mask")) {
        if (!userEntry()) return null;
        break;
      }
      // An empty qualifier field may be missing (Solaris compatibility).
      t.skipWs();
      if (t.s[t.i] === ":") t.i++;
      cmd.tag = tag;
      break;
    }
    default:
      if (!userEntry()) return null;
  }
  return finishAclCmd(t, cmd, mode);
}

const PERM_CHARS: ReadonlyMap<string, number> = new Map([["r", CMD_PERM_READ], ["w", CMD_PERM_WRITE], ["x", CMD_PERM_EXECUTE], ["X", CMD_PERM_COND_EXECUTE], ["-", 0]]);

function finishAclCmd(t: Cursor, cmd: AclCmd, mode: number): AclCmd | null {
  t.skipWs();
  if (t.c === "," || t.c === "") return mode & SEQ_PARSE_NO_PERM ? cmd : null;
  if (!(mode & SEQ_PARSE_WITH_PERM)) return cmd;
  t.skipWs();
  if (t.c >= "0" && t.c <= "7" && t.c !== "") {
    cmd.perm = 0;
    while (t.c === "0") t.i++;
    if (t.c >= "1" && t.c <= "7" && t.c !== "") cmd.perm = t.s.charCodeAt(t.i++) - 0x30;
    return cmd;
  }
  for (let n = 0; ; n++, t.i++) {
    const bit = PERM_CHARS.get(t.c);
    if (bit === undefined || t.c === "") return n === 0 ? null : cmd;
    if (bit !== 0 && (cmd.perm & bit) !== 0) return null;
    cmd.perm |= bit;
  }
}

/** parse_acl_seq: a comma-separated spec; on failure, the index of the first unparsed character. */
export function parseAclSeq(text: string, seqCmd: number, mode: number): { cmds: AclCmd[] } | { which: number } {
  const t = new Cursor(text);
  const cmds: AclCmd[] = [];
  while (t.c !== "") {
    const cmd = parseAclCmd(t, seqCmd, mode);
    if (cmd === null) return { which: t.i };
    cmds.push(cmd);
    t.skipWs();
    if (t.c !== ",") break;
    t.i++;
  }
  if (t.c !== "") return { which: t.i };
  return { cmds };
}

/** read_acl_seq: one entry per line, '#' comments; null with the line number on failure. */
function readAclSeq(lines: readonly string[], seqCmd: number, mode: number): { cmds: AclCmd[] } | { line: number } {
  const cmds: AclCmd[] = [];
  let lineno = 0;
  for (const line of lines) {
    lineno++;
    const t = new Cursor(line);
    t.skipWs();
    if (t.c === "") {
      if (!(mode & SEQ_PARSE_MULTI)) continue;
      break;
    }
    if (t.c === "#") continue;
    const cmd = parseAclCmd(t, seqCmd, mode);
    if (cmd === null) return { line: lineno };
    cmds.push(cmd);
    t.skipWs();
    if (t.c !== "" && t.c !== "#") return { line: lineno };
  }
  return { cmds };
}

const SETFACL_SPEC = "[-bkndRLP] { -m|-M|-x|-X ... } IMAGE:PATH ...";
const SETFACL_OPTS: readonly OptDef[] = [
  { key: "s", long: "set", arg: true }, { key: "S", long: "set-file", arg: true }, { key: "r", long: "mask" },
  { key: "R", short: "R", long: "recursive" }, { key: "L", short: "L", long: "logical" }, { key: "P", short: "P", long: "physical" },
  { key: "B", long: "restore", arg: true }, { key: "t", long: "test" },
  { key: "m", short: "m", long: "modify", arg: true }, { key: "M", short: "M", long: "modify-file", arg: true },
  { key: "x", short: "x", long: "remove", arg: true }, { key: "X", short: "X", long: "remove-file", arg: true },
  { key: "d", short: "d", long: "default" }, { key: "n", short: "n", long: "no-mask" },
  { key: "b", short: "b", long: "remove-all" }, { key: "k", short: "k", long: "remove-default" },
  { key: "v", short: "v", long: "version" }, { key: "h", short: "h", long: "help" }, { key: "force", long: "force-write" },
];

const SETFACL_HELP = `ext4ts setfacl -- set access control lists of files in ext4 images (as acl's setfacl 2.3)
Usage: ext4ts setfacl ${SETFACL_SPEC}
  -m, --modify=acl        modify the current ACL(s) of file(s)
  -M, --modify-file=file  read ACL entries to modify from file
  -x, --remove=acl        remove entries from the ACL(s) of file(s)
  -X, --remove-file=file  read ACL entries to remove from file
  -b, --remove-all        remove all extended ACL entries
  -k, --remove-default    remove the default ACL
      --set=acl           set the ACL of file(s), replacing the current ACL
      --set-file=file     read ACL entries to set from file
      --mask              do recalculate the effective rights mask
  -n, --no-mask           don't recalculate the effective rights mask
  -d, --default           operations apply to the default ACL
  -R, --recursive         recurse into subdirectories
  -L, --logical           logical walk, follow symbolic links
  -P, --physical          physical walk, do not follow symbolic links
      --restore=file      restore ACLs (inverse of \`ext4ts getfacl -R'; each
                          "# file:" is an IMAGE:PATH)
      --test              test mode (ACLs are not modified)
      --force-write       write even to an image with recorded errors
  -v, --version           print version and exit
  -h, --help              this help text
Users and groups are numeric ids (u:1000:rwx, g:100:r-x): an image has no user
database of the host's, so other names are refused like unknown users.
`;

interface SetfaclState {
  recalculate: number;
  test: boolean;
  walk: { recursive: boolean; logical: boolean; physical: boolean };
}

/** do_set(): apply a command sequence to one path; returns false after reporting a failure. */
async function doSetAcl(prog: string, vol: Volume, v: WalkVisit, seq: readonly AclCmd[], s: SetfaclState): Promise<{ ok: boolean; mode?: number; st?: Stats }> {
  const full = v.display;
  const fail = (e: FsError): { ok: false } => {
    err(`${prog}: ${full}: ${strerror(e)}\n`);
    return { ok: false };
  };
  if (v.error !== null) return fail(v.error);
  const follow = s.walk.logical || (v.top && !s.walk.physical);
  if (v.lst?.isSymbolicLink() === true && !follow) return { ok: true };
  try {
    const st = follow ? await vol.stat(v.path) : v.lst!;
    if (st.isSymbolicLink()) return fail(new FsError("ELOOP", "Too many levels of symbolic links"));
    if (seq.length === 0) return { ok: true };
    let acl: Ace[] | null = null, oldAcl: Ace[] | null = null, dacl: Ace[] | null = null, oldDacl: Ace[] | null = null;
    let aclModified = false, daclModified = false, maskProvided = false, dMaskProvided = false;
    const retrieve = async (type: AclType): Promise<Ace[]> => {
      if (type === "access") {
        if (acl === null) {
          oldAcl = await getAccessAcl(vol, v.path, follow, st);
          acl = oldAcl.map((e) => ({ ...e }));
        }
        return acl;
      }
      if (dacl === null) {
        oldDacl = st.isDirectory() ? await getDefaultAcl(vol, v.path, follow) : [];
        dacl = oldDacl.map((e) => ({ ...e }));
      }
      return dacl;
    };
    for (const c of seq) {
      if (c.type === "access") {
        aclModified = true;
        if (c.tag === ACL_MASK) maskProvided = true;
      } else {
        daclModified = true;
        if (c.tag === ACL_MASK) dMaskProvided = true;
      }
      let x = await retrieve(c.type);
      let perm = c.perm;
      if (perm & CMD_PERM_COND_EXECUTE) {
        perm &= ~CMD_PERM_COND_EXECUTE;
        if (st.isDirectory() || x.some((e) => (e.perm & ACL_EXECUTE) !== 0)) perm |= CMD_PERM_EXECUTE;
      }
      switch (c.cmd) {
        case CMD_ENTRY_REPLACE: {
          let ent = findEntry(x, c.tag, c.id);
          if (ent === undefined) {
            ent = { tag: c.tag, perm: 0, id: c.id };
            x.push(ent);
            sortAcl(x);
          }
          ent.perm = perm & 7;
          break;
        }
        case CMD_REMOVE_ENTRY: {
          const ent = findEntry(x, c.tag, c.id);
          if (ent !== undefined) x.splice(x.indexOf(ent), 1);
          break;
        }
        case CMD_REMOVE_EXTENDED_ACL: {
          const a = await retrieve("access");
          const mask = findEntry(a, ACL_MASK, ACL_UNDEFINED_ID);
          const groupObj = findEntry(a, ACL_GROUP_OBJ, ACL_UNDEFINED_ID);
          if (mask !== undefined && groupObj !== undefined) groupObj.perm &= mask.perm;
          const kept = a.filter((e) => e.tag !== ACL_USER && e.tag !== ACL_GROUP && e.tag !== ACL_MASK);
          a.splice(0, a.length, ...kept);
          break;
        }
        case CMD_REMOVE_ACL:
          x = [];
          if (c.type === "access") acl = x;
          else dacl = x;
          break;
        default:
          return fail(new FsError("EINVAL", "Invalid argument"));
      }
    }
    // Fill in the default ACL's missing base entries from the access ACL.
    const d0 = dacl;
    if (d0 !== null && d0.length > 0) {
      for (const tag of [ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_OTHER]) {
        if (findEntry(d0, tag, ACL_UNDEFINED_ID) === undefined) {
          const from = findEntry(await retrieve("access"), tag, ACL_UNDEFINED_ID);
          if (from !== undefined) d0.push({ tag, perm: from.perm, id: ACL_UNDEFINED_ID });
        }
      }
      sortAcl(d0);
    }
    const fixMask = (a: Ace[], provided: boolean): void => {
      if (aclEquivMode(a) === 0) return;
      if (!provided && findEntry(a, ACL_MASK, ACL_UNDEFINED_ID) === undefined) {
        const g = findEntry(a, ACL_GROUP_OBJ, ACL_UNDEFINED_ID);
        if (g !== undefined) {
          a.push({ tag: ACL_MASK, perm: g.perm, id: ACL_UNDEFINED_ID });
          sortAcl(a);
        }
      }
      if (s.recalculate !== -1 && (!provided || s.recalculate === 1)) aclCalcMask(a);
    };
    const check = (a: Ace[], what: string): boolean => {
      const r = aclCheck(a);
      if (r.error === 0) return true;
      err(`${prog}: ${full}: Malformed ${what} ACL \`${aclText(a, null, ",")}': ${ACL_ERROR_TEXT[r.error] ?? "?"} at entry ${r.last + 1}\n`);
      return false;
    };
    let a: Ace[] | null = acl;
    let d: Ace[] | null = dacl;
    if (a !== null && aclModified) {
      fixMask(a, maskProvided);
      if (!check(a, "access")) return { ok: false };
    }
    if (d !== null && d.length > 0 && daclModified) {
      fixMask(d, dMaskProvided);
      if (!check(d, "default")) return { ok: false };
    }
    if (d !== null && !st.isDirectory() && s.walk.recursive) d = null;
    const oa = oldAcl as Ace[] | null;
    const od = oldDacl as Ace[] | null;
    if (a !== null && oa !== null && aclEqual(oa, a)) a = null;
    if (d !== null && od !== null && aclEqual(od, d)) d = null;
    if (s.test) {
      out(`${full}: ${a === null ? "*" : aclText(a, null, ",", { abbreviate: true })},${d === null ? "*" : aclText(d, "d:", ",", { abbreviate: true })}\n`);
      return { ok: true, st };
    }
    let mode: number | undefined;
    if (a !== null) {
      mode = aclEquivModeBits(a);
      await (follow ? vol.setxattr(v.path, ACL_ACCESS_XATTR, aclToXattr(a)) : vol.lsetxattr(v.path, ACL_ACCESS_XATTR, aclToXattr(a)));
    }
    if (d !== null) {
      if (st.isDirectory()) {
        if (d.length === 0) {
          try {
            await (follow ? vol.removexattr(v.path, ACL_DEFAULT_XATTR) : vol.lremovexattr(v.path, ACL_DEFAULT_XATTR));
          } catch (e) {
            if (!(isFs(e) && (e.code === "ENODATA" || e.code === "EOPNOTSUPP"))) throw e;
          }
        } else {
          await (follow ? vol.setxattr(v.path, ACL_DEFAULT_XATTR, aclToXattr(d)) : vol.lsetxattr(v.path, ACL_DEFAULT_XATTR, aclToXattr(d)));
        }
      } else if (d.length > 0) {
        err(`${prog}: ${full}: Only directories can have default ACLs\n`);
        return { ok: false };
      }
    }
    return mode === undefined ? { ok: true, st } : { ok: true, mode, st };
  } catch (e) {
    if (!isFs(e)) throw e;
    return fail(e);
  }
}

/** The mode bits acl_equiv_mode reports (group bits from the mask when there is one). */
function aclEquivModeBits(acl: readonly Ace[]): number {
  let mode = 0;
  let mask: Ace | undefined;
  for (const e of acl) {
    if (e.tag === ACL_USER_OBJ) mode |= (e.perm & 7) << 6;
    else if (e.tag === ACL_GROUP_OBJ) mode |= (e.perm & 7) << 3;
    else if (e.tag === ACL_OTHER) mode |= e.perm & 7;
    else if (e.tag === ACL_MASK) mask = e;
  }
  return mask === undefined ? mode : (mode & ~0o70) | ((mask.perm & 7) << 3);
}

export async function setfaclMain(argv: readonly string[], force: boolean): Promise<number> {
  const prog = "setfacl";
  let items: ArgItem[];
  try {
    items = getopt(argv, SETFACL_OPTS, true);
  } catch (e) {
    if (e instanceof UsageProblem) return synopsis(prog, [SETFACL_SPEC], e.message);
    throw e;
  }
  if (items.some((it) => it.kind === "opt" && it.key === "force")) force = true;
  const state: SetfaclState = { recalculate: 0, test: false, walk: { recursive: false, logical: false, physical: false } };
  const images = new ImageSet({ writable: true, force });
  let seq: AclCmd[] = [];
  let promote = false, sawFiles = false;
  let status = 0;
  const removeAcl = (type: AclType): AclCmd => ({ cmd: CMD_REMOVE_ACL, type, tag: 0, id: ACL_UNDEFINED_ID, perm: 0 });

  const nextFile = async (arg: string): Promise<number> => {
    const opened = await openTarget(images, prog, targetOf(arg) ?? arg);
    if (opened === null) return 1;
    const { vol, t } = opened;
    const res = { failed: false };
    await walkTree(vol, t.path, t.display, { recursive: state.walk.recursive, logical: state.walk.logical, followTop: !state.walk.physical }, async (v) => {
      if (!(await doSetAcl(prog, vol, v, seq, state)).ok) res.failed = true;
    });
    return res.failed ? 1 : 0;
  };

  const restore = async (file: string): Promise<number> => {
    let lines: string[];
    try {
      lines = readLines(file).map((l) => utf8.decode(l));
    } catch (e) {
      err(`${prog}: ${file}: ${e instanceof Error && "code" in e && e.code === "ENOENT" ? "No such file or directory" : e instanceof Error ? e.message : String(e)}\n`);
      return 2;
    }
    let rstatus = 0;
    let i = 0;
    for (;;) {
      // read_acl_comments
      let path: string | null = null, uid: number | null = null, gid: number | null = null, flags = 0, comments = false;
      const backup = i;
      while (i < lines.length) {
        const l = lines[i]!.replace(/^[ \t\r]+/, "");
        if (l === "") {
          i++;
          continue;
        }
        if (!l.startsWith("#")) break;
        i++;
        comments = true;
        const c = l.slice(1).replace(/[\r\n]+$/, "").replace(/^[ \t\n\r]+/, "");
        const field = (k: string): string | null => (c.startsWith(k) ? c.slice(k.length).replace(/^[ \t\n\r]+/, "") : null);
        const f = field("file:"), o = field("owner:"), g = field("group:"), fl = field("flags:");
        if (f !== null) path = unquoteText(f);
        else if (o !== null) uid = parseId(unquoteText(o));
        else if (g !== null) gid = parseId(unquoteText(g));
        else if (fl !== null && /^[s-][s-][t-]$/.test(fl)) flags = (fl[0] === "s" ? 0o4000 : 0) | (fl[1] === "s" ? 0o2000 : 0) | (fl[2] === "t" ? 0o1000 : 0);
      }
      if (!comments) return rstatus;
      if (path === null) {
        err(file !== "-" ? `${prog}: ${quote(file, "\n\r")}: No filename found in line ${backup}, aborting\n` : `${prog}: No filename found in line ${backup} of standard input, aborting\n`);
        return 1;
      }
      const body: string[] = [];
      while (i < lines.length && lines[i]!.trim() !== "") body.push(lines[i++]!);
      const parsed = readAclSeq(body, CMD_ENTRY_REPLACE, SEQ_PARSE_WITH_PERM | SEQ_PARSE_DEFAULT | SEQ_PARSE_MULTI);
      if ("line" in parsed) {
        err(`${prog}: ${quote(file, "\n\r")}: Invalid argument in line ${i - body.length + parsed.line}\n`);
        return 1;
      }
      const opened = await openTarget(images, prog, targetOf(path) ?? path, path);
      if (opened === null) {
        rstatus = 1;
        continue;
      }
      const { vol, t } = opened;
      let lst: Stats | null = null, error: FsError | null = null;
      try {
        lst = await vol.lstat(t.path);
      } catch (e) {
        if (!isFs(e)) throw e;
        error = e;
      }
      const saved = state.walk;
      state.walk = { recursive: false, logical: false, physical: true };
      const r = await doSetAcl(prog, vol, { path: t.path, display: path, top: true, lst, error }, [removeAcl("access"), removeAcl("default"), ...parsed.cmds], state);
      state.walk = saved;
      if (!r.ok || r.st === undefined) {
        rstatus = 1;
        continue;
      }
      if (state.test) continue;
      const st = r.st;
      try {
        const newUid = uid !== null && uid !== st.uid ? uid : -1;
        const newGid = gid !== null && gid !== st.gid ? gid : -1;
        let chmodRequired = false;
        if (newUid !== -1 || newGid !== -1) {
          try {
            await vol.lchown(t.path, newUid, newGid);
          } catch (e) {
            if (!isFs(e)) throw e;
            err(`${prog}: ${quote(path, "\n\r")}: Cannot change owner/group: ${strerror(e)}\n`);
            rstatus = 1;
          }
          if ((st.mode & flags & 0o6000) !== 0) chmodRequired = true;
        }
        if (chmodRequired || (st.mode & 0o7000) !== (flags & 0o7000)) {
          const mode = ((r.mode ?? st.mode) & 0o777) | flags;
          try {
            await vol.chmod(t.path, mode);
          } catch (e) {
            if (!isFs(e)) throw e;
            err(`${prog}: ${quote(path, "\n\r")}: Cannot change mode: ${strerror(e)}\n`);
            rstatus = 1;
          }
        }
      } catch (e) {
        if (!isFs(e)) throw e;
        err(`${prog}: ${quote(path, "\n\r")}: ${strerror(e)}\n`);
        rstatus = 1;
      }
    }
  };

  try {
    for (const it of items) {
      if (it.kind === "opt" && sawFiles) {
        seq = [];
        sawFiles = false;
      }
      if (it.kind === "operand") {
        if (seq.length === 0) return synopsis(prog, [SETFACL_SPEC]);
        sawFiles = true;
        const s2 = await nextFile(it.value);
        if (status === 0) status = s2;
        continue;
      }
      const letter = it.key;
      let setOp = false;
      switch (letter) {
        case "b": seq.push({ cmd: CMD_REMOVE_EXTENDED_ACL, type: "access", tag: 0, id: ACL_UNDEFINED_ID, perm: 0 }, removeAcl("default")); break;
        case "k": seq.push(removeAcl("default")); break;
        case "n": state.recalculate = -1; break;
        case "r": state.recalculate = 1; break;
        case "d": promote = true; break;
        case "s": case "m": case "x": case "S": case "M": case "X": {
          const start = seq.length;
          if (letter === "s" || letter === "S") {
            seq.push(removeAcl("access"), removeAcl("default"));
            setOp = true;
          }
          const seqCmd = letter === "x" || letter === "X" ? CMD_REMOVE_ENTRY : CMD_ENTRY_REPLACE;
          let mode = (letter === "x" || letter === "X" ? SEQ_PARSE_NO_PERM : SEQ_PARSE_WITH_PERM) | SEQ_PARSE_DEFAULT;
          if (promote) mode |= SEQ_PROMOTE_ACL;
          if (letter === "s" || letter === "m" || letter === "x") {
            const r = parseAclSeq(it.value, seqCmd, mode);
            if ("which" in r) {
              if (r.which < 0 || r.which >= it.value.length) err(`${prog}: Option -${letter} incomplete\n`);
              else err(`${prog}: Option -${letter}: Invalid argument near character ${r.which + 1}\n`);
              return 2;
            }
            seq.push(...r.cmds);
          } else {
            let lines: string[];
            try {
              lines = readLines(it.value).map((l) => utf8.decode(l));
            } catch {
              err(`${prog}: ${quote(it.value, "\n\r")}: No such file or directory\n`);
              return 2;
            }
            const r = readAclSeq(lines, seqCmd, mode);
            if ("line" in r) {
              err(it.value !== "-" ? `${prog}: Invalid argument in line ${r.line} of file ${quote(it.value, "\n\r")}\n` : `${prog}: Invalid argument in line ${r.line} of standard input\n`);
              return 2;
            }
            seq.push(...r.cmds);
          }
          if (setOp) {
            // A set with no entries of one type leaves that ACL alone.
            const added = seq.slice(start + 2);
            const drop = new Set<AclCmd>();
            if (!added.some((c) => c.type === "access")) drop.add(seq[start]!);
            if (!added.some((c) => c.type === "default")) drop.add(seq[start + 1]!);
            seq = seq.filter((c) => !drop.has(c));
          }
          break;
        }
        case "B": {
          sawFiles = true;
          status = await restore(it.value);
          if (status !== 0) return status;
          break;
        }
        case "R": state.walk.recursive = true; break;
        case "L": state.walk.logical = true; state.walk.physical = false; break;
        case "P": state.walk.physical = true; state.walk.logical = false; break;
        case "t": state.test = true; break;
        case "v": out("setfacl 2.3 (ext4ts)\n"); return 0;
        case "h": out(SETFACL_HELP); return 0;
        case "force": break;
        default: return synopsis(prog, [SETFACL_SPEC]);
      }
    }
    if (!sawFiles) return synopsis(prog, [SETFACL_SPEC]);
  } finally {
    await images.close();
  }
  return status;
}

// ---------------------------------------------------------------------------------------------
// Registration

/**
 * Adds getfattr, setfattr, getfacl and setfacl to the program. They parse their own
 * options (getopt_long, as the real tools), so commander passes every argument through.
 */
export function registerXattrCommands(program: Command): void {
  const force = (): boolean => program.opts<{ forceWrite?: boolean }>().forceWrite === true;
  const add = (name: string, usage: string, description: string, run: (args: string[]) => Promise<number>): void => {
    program.command(name).usage(usage).description(description).helpOption(false).allowUnknownOption().allowExcessArguments()
      .argument("[args...]")
      .action(async (args: string[]) => {
        const code = await run(args);
        if (code === 2) throw new CommanderError(2, "ext4ts.usage", "");
        if (code !== 0) throw new CommandFailure("");
      });
  };
  add("getfattr", GETFATTR_SPEC, "print extended attributes of IMAGE:PATHs (as attr's getfattr: -d, -n NAME, -m PATTERN, -e text|hex|base64, -h, -R; --help)", (a) => getfattrMain(a));
  add("setfattr", SETFATTR_SPEC.join(" | "), "set (-n NAME [-v VALUE]) or remove (-x NAME) an extended attribute of IMAGE:PATHs, or --restore a getfattr dump (as attr's setfattr; --help)", (a) => setfattrMain(a, force()));
  add("getfacl", `[-${GETFACL_OPTS_LETTERS}] IMAGE:PATH ...`, "print the POSIX ACLs of IMAGE:PATHs (as acl's getfacl, numeric ids; --help)", (a) => getfaclMain(a));
  add("setfacl", SETFACL_SPEC, "modify (-m), remove (-x, -b, -k) or set (--set) POSIX ACLs of IMAGE:PATHs (as acl's setfacl, numeric ids; --help)", (a) => setfaclMain(a, force()));
}
