/**
 * Name lookup and path walking (@kernel ext4_lookup / ext4_find_entry, fs/ext4/namei.c;
 * the path walk itself is the VFS's, fs/namei.c).
 *
 * Paths are absolute within the volume. Symlinks are followed in every component but
 * the last unless asked, with Linux's limit of 40 (ELOOP).
 */

import { FsError } from "../errors.js";
import { EXT4_NAME_LEN } from "../format/dirent.js";
import { EXT4_ROOT_INO } from "../format/inode.js";
import { readDirEntries, isIndexed } from "./dir.js";
import { dcacheGet, dcacheSet } from "./dcache.js";
import { BAD_DX_DIR, dxFindEntry } from "./dir_index.js";
import { iget, isDir, isSymlink, type Inode } from "./inode.js";
import { readLink } from "./symlink.js";
import { fsCorrupted, type Ext4Fs } from "./super.js";
import { firstIno } from "../format/superblock.js";
import { Task } from "../sync/task.js";
import { inodeTable } from "./inode_core.js";

export const MAXSYMLINKS = 40;
/** Linux PATH_MAX, counting the terminating NUL. */
const PATH_MAX = 4096;
const utf8 = new TextEncoder();

export interface LookupOptions {
  /**
   * The caller holds the volume's namespace lock, so no directory changes meanwhile and the
   * directory's i_rwsem is not needed (it may even be held by the caller).
   */
  nsHeld?: boolean;
}

/**
 * Inode number of `name` in `dir`, or null. Throws ENOTDIR, ENAMETOOLONG.
 *
 * On a writable volume a lookup holds the directory's i_rwsem shared, as the kernel's
 * lookup_slow does: changes to a directory hold it exclusively, so a lookup never walks a
 * block half-way through a split, or misses an entry that is moving between blocks (an
 * htree leaf split, the conversion of a full linear directory into an htree).
 * @kernel ext4_find_entry
 */
export async function lookup(fs: Ext4Fs, dir: Inode, name: Uint8Array, opts: LookupOptions = {}): Promise<number | null> {
  if (!isDir(dir)) throw new FsError("ENOTDIR", "Not a directory", { ino: dir.ino });
  if (name.length > EXT4_NAME_LEN) throw new FsError("ENAMETOOLONG", `Name of ${name.length} bytes exceeds ${EXT4_NAME_LEN}`);
  const cached = dcacheGet(fs, dir.ino, name);
  if (cached !== undefined) return cached;
  if (fs.readOnly || opts.nsHeld === true) return findEntry(fs, dir, name);
  const task = new Task(`lookup in ino ${dir.ino}`, fs.syncDomain.tasks);
  try {
    // Re-read the directory under the lock: `dir` may predate a change that finished since.
    return await inodeTable(fs).getOrCreate(dir.ino).iRwsem.read(task, async () => findEntry(fs, await iget(fs, dir.ino), name));
  } finally {
    task.finish();
  }
}

async function findEntry(fs: Ext4Fs, dir: Inode, name: Uint8Array): Promise<number | null> {
  let ino: number | null = null;
  const dx = isIndexed(fs, dir) ? await dxFindEntry(fs, dir, name) : BAD_DX_DIR;
  if (dx !== BAD_DX_DIR) ino = dx;
  else {
    for await (const e of readDirEntries(fs, dir)) {
      if (e.name.length === name.length && e.name.every((c, i) => c === name[i])) {
        ino = e.ino;
        break;
      }
    }
  }
  if (ino !== null) checkEntryIno(fs, dir, ino, name);
  dcacheSet(fs, dir.ino, name, ino);
  return ino;
}

/**
 * What ext4_lookup checks of the inode number an entry names before using it: a valid,
 * non-reserved inode, and not the directory itself.
 * @kernel ext4_lookup (ext4_valid_inum, "linked to parent dir")
 */
export function checkEntryIno(fs: Ext4Fs, dir: Inode, ino: number, name: Uint8Array): void {
  const isDotDot = name.length === 2 && name[0] === 0x2e && name[1] === 0x2e;
  const isDot = name.length === 1 && name[0] === 0x2e;
  if (!(ino === EXT4_ROOT_INO || (ino >= firstIno(fs.sb) && ino <= fs.inodesCount))) {
    throw fsCorrupted(fs, { ino: dir.ino, what: `Bad inode number ${ino} in directory entry '${new TextDecoder().decode(name)}'` });
  }
  if (ino === dir.ino && !isDot && !(isDotDot && ino === EXT4_ROOT_INO)) {
    throw fsCorrupted(fs, { ino: dir.ino, what: `Directory entry '${new TextDecoder().decode(name)}' is linked to its own directory` });
  }
}

export interface ResolveOptions extends LookupOptions {
  /** Follow a symlink in the last component (stat vs lstat). */
  followLast: boolean;
}

/**
 * Resolve an absolute path to its inode. Throws ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG
 * with the path in the detail.
 */
export async function resolvePath(fs: Ext4Fs, path: string, opts: ResolveOptions): Promise<Inode> {
  if (utf8.encode(path).length >= PATH_MAX) throw new FsError("ENAMETOOLONG", "File name too long", { path });
  // A trailing slash makes the last component a directory, following a symlink to one.
  const mustBeDir = /\/$/.test(path) && path.replace(/\/+$/, "") !== "";
  const followLast = opts.followLast || mustBeDir;
  let links = 0;
  let pending = splitPath(path);
  const stack: Inode[] = [await iget(fs, EXT4_ROOT_INO)]; // ancestors, for ".." of the root
  while (pending.length > 0) {
    const comp = pending.shift()!; // length > 0
    const cur = stack[stack.length - 1]!;
    if (comp === ".") {
      if (!isDir(cur)) throw new FsError("ENOTDIR", "Not a directory", { path });
      continue;
    }
    if (!isDir(cur)) throw new FsError("ENOTDIR", "Not a directory", { path });
    if (comp === "..") {
      // The stack holds only directories actually walked through (symlinks resolved),
      // so popping it is the physical parent; ".." of the root is the root.
      if (stack.length > 1) stack.pop();
      continue;
    }
    const ino = await lookup(fs, cur, utf8.encode(comp), opts);
    if (ino === null) throw new FsError("ENOENT", "No such file or directory", { path });
    const next = await iget(fs, ino);
    if (isSymlink(next) && (pending.length > 0 || followLast)) {
      if (++links > MAXSYMLINKS) throw new FsError("ELOOP", "Too many levels of symbolic links", { path });
      const target = new TextDecoder().decode(await readLink(fs, next));
      if (target.startsWith("/")) stack.splice(1);
      pending = [...splitPath(target), ...pending];
      continue;
    }
    stack.push(next);
  }
  const last = stack[stack.length - 1]!;
  if (mustBeDir && !isDir(last)) throw new FsError("ENOTDIR", "Not a directory", { path });
  return last;
}

function splitPath(path: string): string[] {
  return path.split("/").filter((c) => c.length > 0);
}
