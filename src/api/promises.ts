/**
 * The public, fs.promises-like surface over a mounted volume. Paths are absolute within
 * the volume ("/etc/passwd"). Errors are FsError with Node-style codes, the syscall and
 * the path, e.g. `ENOENT: No such file or directory, stat '/nope'`.
 *
 * This layer adds what Linux's VFS adds on top of ext4: which xattr names listxattr
 * shows and in what format (ACLs converted from ext4's on-disk form), and path
 * resolution with symlinks.
 */

import type { BlockDevice } from "../device/block_device.js";
import { FsError } from "../errors.js";
import { ext4AclToVfs } from "../format/acl.js";
import {
  EXT4_XATTR_INDEX_HURD,
  EXT4_XATTR_INDEX_POSIX_ACL_ACCESS,
  EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT,
  EXT4_XATTR_INDEX_SECURITY,
  EXT4_XATTR_INDEX_TRUSTED,
  EXT4_XATTR_INDEX_USER,
  xattrFullName,
  type XattrEntry,
} from "../format/xattr.js";
import { EXT4_FT_DIR, EXT4_FT_UNKNOWN } from "../format/dirent.js";
import { readDirEntries, type DirRecord } from "../fs/dir.js";
import { iget, isDir, type Inode } from "../fs/inode.js";
import { checkEntryIno, resolvePath } from "../fs/namei.js";
import { readChunks, readInto, readRange } from "../fs/read.js";
import { Ext4Fs, type MountOptions } from "../fs/super.js";
import { freeBlocksCount, rBlocksCount } from "../format/superblock.js";
import { readLink } from "../fs/symlink.js";
import { allXattrs } from "../fs/xattr.js";
import { Stats, fileTypeOf, type FileType } from "./stats.js";

export { Stats, type FileType, type MountOptions };

/** Name indexes Linux listxattr shows on ext4 (ext4_xattr_handler_map, with user_xattr and acl on). */
const LISTED_INDEXES = new Set([
  EXT4_XATTR_INDEX_USER,
  EXT4_XATTR_INDEX_POSIX_ACL_ACCESS,
  EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT,
  EXT4_XATTR_INDEX_TRUSTED,
  EXT4_XATTR_INDEX_SECURITY,
  EXT4_XATTR_INDEX_HURD,
]);

const utf8 = new TextDecoder();

export interface Dirent {
  name: string;
  nameBytes: Uint8Array;
  ino: number;
  /** From the directory entry (filetype feature); "unknown" without it. */
  type: FileType | "unknown";
}

const FT_TYPES: readonly (FileType | "unknown")[] = ["unknown", "file", "dir", "chr", "blk", "fifo", "sock", "symlink"];

export interface XattrOptions {
  /** Follow a final symlink (getxattr) or not (lgetxattr, the default). */
  follow?: boolean;
}

export interface StatFs {
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namelen: number;
}

/** One entry of a sorted tree walk. */
export interface WalkEntry {
  path: string;
  inode: Inode;
  stats: Stats;
}

export class Volume {
  readonly fs: Ext4Fs;

  private constructor(fs: Ext4Fs) {
    this.fs = fs;
  }

  /** Mount the ext2/3/4 volume on `dev` (read-only for now). */
  static async mount(dev: BlockDevice, opts: MountOptions = {}): Promise<Volume> {
    return new Volume(await Ext4Fs.mount(dev, opts));
  }

  async #call<T>(syscall: string, path: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof FsError) throw e.with(path === undefined ? { syscall } : { syscall, path });
      throw e;
    }
  }

  /** The inode at `path`. */
  inode(path: string, opts: { follow: boolean }): Promise<Inode> {
    return this.#call(opts.follow ? "stat" : "lstat", path, () => resolvePath(this.fs, path, { followLast: opts.follow }));
  }

  stat(path: string): Promise<Stats> {
    return this.#call("stat", path, async () => new Stats(this.fs, await resolvePath(this.fs, path, { followLast: true })));
  }

  lstat(path: string): Promise<Stats> {
    return this.#call("lstat", path, async () => new Stats(this.fs, await resolvePath(this.fs, path, { followLast: false })));
  }

  /** Names in a directory, without "." and "..", in on-disk order. */
  async readdir(path: string): Promise<string[]> {
    return (await this.readdirEntries(path)).map((d) => d.name);
  }

  readdirEntries(path: string): Promise<Dirent[]> {
    return this.#call("scandir", path, async () => {
      const dir = await resolvePath(this.fs, path, { followLast: true });
      const out: Dirent[] = [];
      for await (const e of readDirEntries(this.fs, dir)) if (!isDot(e)) out.push(toDirent(e));
      return out;
    });
  }

  readFile(path: string): Promise<Uint8Array> {
    return this.#call("open", path, async () => {
      const inode = await resolvePath(this.fs, path, { followLast: true });
      if (isDir(inode)) throw new FsError("EISDIR", "Illegal operation on a directory");
      return readRange(this.fs, inode, 0, inode.size);
    });
  }

  readlink(path: string): Promise<string> {
    return this.#call("readlink", path, async () => utf8.decode(await readLink(this.fs, await resolvePath(this.fs, path, { followLast: false }))));
  }

  async open(path: string): Promise<FileHandle> {
    const inode = await this.#call("open", path, () => resolvePath(this.fs, path, { followLast: true }));
    return new FileHandle(this.fs, inode, path);
  }

  /** Open an inode already in hand (from `walk`), without resolving its path again. */
  openEntry(e: WalkEntry): FileHandle {
    return new FileHandle(this.fs, e.inode, e.path);
  }

  /** The target of a symlink already in hand (from `walk`). */
  readlinkEntry(e: WalkEntry): Promise<string> {
    return this.#call("readlink", e.path, async () => utf8.decode(await readLink(this.fs, e.inode)));
  }

  /** Names as Linux listxattr shows them (system.data and unlisted namespaces omitted). */
  listxattr(path: string, opts: XattrOptions = {}): Promise<string[]> {
    return this.#call(opts.follow === true ? "listxattr" : "llistxattr", path, async () => {
      const inode = await resolvePath(this.fs, path, { followLast: opts.follow === true });
      return (await this.xattrsOf(inode)).map(([name]) => name);
    });
  }

  /** A value as Linux getxattr returns it (ACLs in the VFS format). ENODATA when absent. */
  getxattr(path: string, name: string, opts: XattrOptions = {}): Promise<Uint8Array> {
    return this.#call(opts.follow === true ? "getxattr" : "lgetxattr", path, async () => {
      const inode = await resolvePath(this.fs, path, { followLast: opts.follow === true });
      const hit = (await this.xattrsOf(inode)).find(([n]) => n === name);
      if (hit === undefined) throw new FsError("ENODATA", "No data available");
      return hit[1];
    });
  }

  /** Every listed xattr of an inode as [full name, VFS value]. */
  async xattrsOf(inode: Inode): Promise<[string, Uint8Array][]> {
    const out: [string, Uint8Array][] = [];
    for (const e of await allXattrs(this.fs, inode)) {
      if (!LISTED_INDEXES.has(e.e_name_index)) continue;
      const name = xattrFullName(e.e_name_index, e.name);
      if (name !== null) out.push([name, vfsValue(e, inode)]);
    }
    return out;
  }

  statfs(): Promise<StatFs> {
    const sb = this.fs.sb;
    const free = freeBlocksCount(sb);
    const reserved = rBlocksCount(sb);
    return Promise.resolve({
      type: 0xef53,
      bsize: this.fs.blockSize,
      blocks: this.fs.blocksCount,
      bfree: free,
      bavail: Math.max(0, free - reserved),
      files: this.fs.inodesCount,
      ffree: sb.s_free_inodes_count,
      namelen: 255,
    });
  }

  /**
   * Every inode reachable from `root`. `order: "path"` (the default) yields plain JS
   * string order of the paths, with memory proportional to depth x directory width;
   * `order: "disk"` yields each directory's entries in on-disk order, pre-order, with
   * memory proportional to depth only, and reads the volume roughly sequentially (what
   * extraction wants on a cold cache).
   */
  async *walk(root = "/", opts: { order?: "path" | "disk" } = {}): AsyncGenerator<WalkEntry> {
    const start = await this.inode(root, { follow: true });
    const base = root === "/" ? "" : root.replace(/\/+$/, "");
    yield { path: base === "" ? "/" : base, inode: start, stats: new Stats(this.fs, start) };
    if (!isDir(start)) return;
    if (opts.order === "disk") yield* this.#walkDisk(base, start, new Set([start.ino]));
    else yield* this.#walkDir(base, start, new Set([start.ino]));
  }

  async *#walkDisk(path: string, dir: Inode, visited: Set<number>): AsyncGenerator<WalkEntry> {
    const entries = readDirEntries(this.fs, dir);
    for (;;) {
      const next = await this.#call("scandir", path === "" ? "/" : path, () => entries.next());
      if (next.done === true) return;
      const e = next.value;
      if (isDot(e)) continue;
      const name = utf8.decode(e.name);
      const p = `${path}/${name}`;
      const inode = await this.#call("lstat", p, () => {
        checkEntryIno(this.fs, dir, e.ino, e.name);
        return iget(this.fs, e.ino);
      });
      yield { path: p, inode, stats: new Stats(this.fs, inode) };
      if (isDir(inode)) {
        if (visited.has(inode.ino)) throw new FsError("EFSCORRUPTED", `Directory inode ${inode.ino} is reachable by more than one path`, { ino: inode.ino, path: p });
        visited.add(inode.ino);
        yield* this.#walkDisk(p, inode, visited);
      }
    }
  }

  async *#walkDir(path: string, dir: Inode, visited: Set<number>): AsyncGenerator<WalkEntry> {
    // A directory's own line sorts at "name", its subtree at "name/": sorting siblings by
    // those keys emits paths in global string order ("/a" < "/a-b" < "/a/c").
    type Item = { key: string; ino: number; name: string; fileType: number; subtree: boolean };
    const items: Item[] = [];
    await this.#call("scandir", path === "" ? "/" : path, async () => {
      for await (const e of readDirEntries(this.fs, dir)) {
        if (isDot(e)) continue;
        const name = utf8.decode(e.name);
        items.push({ key: name, ino: e.ino, name, fileType: e.fileType, subtree: false });
        // Only directory entries typed as directories (or untyped) can have a subtree.
        if (e.fileType === EXT4_FT_DIR || e.fileType === EXT4_FT_UNKNOWN) items.push({ key: `${name}/`, ino: e.ino, name, fileType: e.fileType, subtree: true });
      }
    });
    items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const it of items) {
      const p = `${path}/${it.name}`;
      const inode = await this.#call("lstat", p, () => {
        checkEntryIno(this.fs, dir, it.ino, new TextEncoder().encode(it.name)); // what a lookup of this name checks
        return iget(this.fs, it.ino);
      });
      if (!it.subtree) {
        if (isDir(inode) && it.fileType !== EXT4_FT_DIR && it.fileType !== EXT4_FT_UNKNOWN) {
          throw new FsError("EFSCORRUPTED", `Directory entry has file type ${it.fileType} but inode ${inode.ino} is a directory`, { ino: dir.ino, path: p });
        }
        yield { path: p, inode, stats: new Stats(this.fs, inode) };
      } else if (isDir(inode)) {
        // A directory has one parent; a second one (a loop, or a hard-linked directory that
        // could make the walk exponential) is corruption, as Linux's dcache also refuses it.
        if (visited.has(inode.ino)) throw new FsError("EFSCORRUPTED", `Directory inode ${inode.ino} is reachable by more than one path`, { ino: inode.ino, path: p });
        visited.add(inode.ino);
        yield* this.#walkDir(p, inode, visited);
      }
    }
  }

  async unmount(): Promise<void> {
    await this.fs.unmount();
  }
}

export class FileHandle {
  readonly #fs: Ext4Fs;
  readonly #inode: Inode;
  readonly path: string;
  #closed = false;

  constructor(fs: Ext4Fs, inode: Inode, path: string) {
    this.#fs = fs;
    this.#inode = inode;
    this.path = path;
  }

  #check(): void {
    if (this.#closed) throw new FsError("EBADF", "Bad file descriptor", { path: this.path });
  }

  /** Read into `buffer` at `offset`, `length` bytes from file `position`. */
  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number; buffer: Uint8Array }> {
    this.#check();
    if (isDir(this.#inode)) throw new FsError("EISDIR", "Illegal operation on a directory", { syscall: "read", path: this.path });
    const n = await readInto(this.#fs, this.#inode, position, buffer.subarray(offset, offset + Math.min(length, buffer.length - offset)));
    return { bytesRead: n, buffer };
  }

  /** The whole file as a stream of chunks. */
  chunks(chunkBytes?: number): AsyncGenerator<Uint8Array> {
    this.#check();
    return readChunks(this.#fs, this.#inode, chunkBytes);
  }

  stat(): Promise<Stats> {
    this.#check();
    return Promise.resolve(new Stats(this.#fs, this.#inode));
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

function isDot(e: DirRecord): boolean {
  return (e.name.length === 1 && e.name[0] === 0x2e) || (e.name.length === 2 && e.name[0] === 0x2e && e.name[1] === 0x2e);
}

function toDirent(e: DirRecord): Dirent {
  return { name: utf8.decode(e.name), nameBytes: e.name, ino: e.ino, type: FT_TYPES[e.fileType] ?? "unknown" };
}

function vfsValue(e: XattrEntry, inode: Inode): Uint8Array {
  if (e.e_name_index === EXT4_XATTR_INDEX_POSIX_ACL_ACCESS || e.e_name_index === EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT) {
    return ext4AclToVfs(e.value, { ino: inode.ino });
  }
  return e.value;
}

export { fileTypeOf };
