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
import { BAD_DX_DIR, dxFindEntry } from "./dir_index.js";
import { iget, isDir, isSymlink, type Inode } from "./inode.js";
import { readLink } from "./symlink.js";
import type { Ext4Fs } from "./super.js";

const MAXSYMLINKS = 40;
const utf8 = new TextEncoder();

/**
 * Inode number of `name` in `dir`, or null. Throws ENOTDIR, ENAMETOOLONG.
 * @kernel ext4_find_entry
 */
export async function lookup(fs: Ext4Fs, dir: Inode, name: Uint8Array): Promise<number | null> {
  if (!isDir(dir)) throw new FsError("ENOTDIR", "Not a directory", { ino: dir.ino });
  if (name.length > EXT4_NAME_LEN) throw new FsError("ENAMETOOLONG", `Name of ${name.length} bytes exceeds ${EXT4_NAME_LEN}`);
  if (isIndexed(fs, dir)) {
    const r = await dxFindEntry(fs, dir, name);
    if (r !== BAD_DX_DIR) return r;
  }
  for await (const e of readDirEntries(fs, dir)) {
    if (e.name.length === name.length && e.name.every((c, i) => c === name[i])) return e.ino;
  }
  return null;
}

export interface ResolveOptions {
  /** Follow a symlink in the last component (stat vs lstat). */
  followLast: boolean;
}

/**
 * Resolve an absolute path to its inode. Throws ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG
 * with the path in the detail.
 */
export async function resolvePath(fs: Ext4Fs, path: string, opts: ResolveOptions): Promise<Inode> {
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
    const ino = await lookup(fs, cur, utf8.encode(comp));
    if (ino === null) throw new FsError("ENOENT", "No such file or directory", { path });
    const next = await iget(fs, ino);
    if (isSymlink(next) && (pending.length > 0 || opts.followLast)) {
      if (++links > MAXSYMLINKS) throw new FsError("ELOOP", "Too many levels of symbolic links", { path });
      const target = new TextDecoder().decode(await readLink(fs, next));
      if (target.startsWith("/")) stack.splice(1);
      pending = [...splitPath(target), ...pending];
      continue;
    }
    stack.push(next);
  }
  return stack[stack.length - 1]!;
}

function splitPath(path: string): string[] {
  return path.split("/").filter((c) => c.length > 0);
}
