/**
 * Reading single inodes and directories after pass 1, for the messages that name a path
 * (e2fsck's ext2fs_get_pathname behind %p, %P, %q, %Q): '..' is looked up in a directory,
 * then the directory's name in its parent, up to the root; what cannot be found prints as
 * "<ino>", as e2fsck prints it. Only problems pay for this.
 */

import { decodeInodeFast } from "./inode_fast.js";
import { recLenFromDisk } from "../format/dirent.js";
import { EXT_INIT_MAX_LEN } from "../format/extent.js";
import { EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL, EXT4_ROOT_INO, type RawInode } from "../format/inode.js";
import type { CheckContext } from "./context.js";
import { iterateBlockMap } from "./blockmap.js";
import { readXattrs } from "./xattr_check.js";
import { u16, u32 } from "./bytes.js";
import { dirBlockCsumOk } from "./dir_block.js";
import { inodeChecksumSeed } from "../format/checksum.js";

/** The on-disk bytes of inode `ino` (a copy), or null when its table cannot be read. */
export async function readInodeBytes(c: CheckContext, ino: number): Promise<Uint8Array | null> {
  const v = c.v;
  if (ino < 1 || ino > v.inodesCount) return null;
  const g = v.groupOfIno(ino);
  const it = v.inodeTableLoc(g);
  const byte = ((ino - 1) % v.inodesPerGroup) * v.inodeSize;
  const blk = it + Math.floor(byte / v.blockSize);
  if (it === 0 || blk >= v.blocksCount) return null;
  try {
    const b = await v.readBlock(blk);
    const off = byte % v.blockSize;
    return b.slice(off, off + v.inodeSize);
  } catch {
    return null;
  }
}

export async function readInode(c: CheckContext, ino: number): Promise<{ raw: RawInode; bytes: Uint8Array } | null> {
  const bytes = await readInodeBytes(c, ino);
  if (bytes === null) return null;
  return { raw: decodeInodeFast(bytes, 0, c.v.inodeSize), bytes };
}

/** Inline data of an inode: i_block then the system.data value. */
export async function inlineData(c: CheckContext, raw: RawInode, bytes: Uint8Array): Promise<Uint8Array | null> {
  const fileAcl = raw.i_file_acl_lo + (c.v.f.is64bit ? raw.l_i_file_acl_high * 2 ** 32 : 0);
  const x = await readXattrs(c, bytes, raw.i_extra_isize, fileAcl, true);
  if (x.error !== undefined) return null;
  const extra = x.systemData ?? new Uint8Array(0);
  const out = new Uint8Array(60 + extra.length);
  out.set(raw.i_block, 0);
  out.set(extra, 60);
  return out;
}

/** Physical blocks of a directory in logical order (0 for holes), bounded. */
export async function dirBlocks(c: CheckContext, raw: RawInode, max = 4096): Promise<number[]> {
  const v = c.v;
  const out: number[] = [];
  if (raw.i_flags & EXT4_INLINE_DATA_FL) return out;
  if (raw.i_flags & EXT4_EXTENTS_FL) {
    const walk = async (node: Uint8Array, level: number): Promise<void> => {
      if (u16(node, 0) !== 0xf30a || level > 5) return;
      const entries = Math.min(u16(node, 2), Math.floor((node.length - 12) / 12));
      const depth = u16(node, 6);
      for (let i = 0; i < entries && out.length < max; i++) {
        const at = 12 + i * 12;
        if (depth === 0) {
          const lblk = u32(node, at);
          const rl = u16(node, at + 4);
          const len = rl > EXT_INIT_MAX_LEN ? rl - EXT_INIT_MAX_LEN : rl;
          const pblk = u32(node, at + 8) + u16(node, at + 6) * 2 ** 32;
          while (out.length < lblk && out.length < max) out.push(0);
          for (let k = 0; k < len && out.length < max; k++) out.push(v.blockValid(pblk + k) ? pblk + k : 0);
        } else {
          const pblk = u32(node, at + 4) + u16(node, at + 8) * 2 ** 32;
          if (!v.blockValid(pblk)) continue;
          try {
            await walk((await v.readBlock(pblk)).slice(), level + 1);
          } catch {
            // unreadable: skip the subtree
          }
        }
      }
    };
    await walk(raw.i_block, 0);
    return out;
  }
  await iterateBlockMap(v, raw, true, (b, cnt) => {
    if (cnt >= 0 && out.length < max) out[cnt] = v.blockValid(b) ? b : 0;
    return true;
  });
  for (let i = 0; i < out.length; i++) out[i] ??= 0;
  return out;
}

export interface SimpleEntry {
  ino: number;
  name: Uint8Array;
  /** The entry's file type byte, as on disk (read from directory blocks only). */
  ftype?: number;
}

/** Entries of a directory in on-disk order, and whether a malformed entry cut a block short. */
export async function listDirDetailed(
  c: CheckContext, dir: number, raw: RawInode, bytes: Uint8Array, max = 100_000, maxBlocks = 4096, strict = false,
): Promise<{ entries: SimpleEntry[]; corrupt: boolean }> {
  const out: SimpleEntry[] = [];
  let corrupt = false;
  const parse = (buf: Uint8Array, start: number, end: number): void => {
    for (let off = start; off + 8 <= end && out.length < max; ) {
      const rl = recLenFromDisk(u16(buf, off + 4), c.v.blockSize);
      const nl = buf[off + 6]!;
      if (rl < 8 || rl % 4 !== 0 || off + rl > end || nl + 8 > rl) {
        corrupt = true;
        return;
      }
      const ino = u32(buf, off);
      // A view of the block's own copy (taken below), not a copy per name.
      if (ino !== 0) out.push({ ino, name: buf.subarray(off + 8, off + 8 + nl), ftype: buf[off + 7]! });
      off += rl;
    }
  };
  if (raw.i_flags & EXT4_INLINE_DATA_FL) {
    const view = await inlineData(c, raw, bytes);
    if (view === null) return { entries: out, corrupt: true };
    const data = view.slice(); // the names are views of it
    out.push({ ino: dir, name: new Uint8Array([0x2e]) }, { ino: u32(data, 0), name: new Uint8Array([0x2e, 0x2e]) });
    parse(data, 4, 60);
    parse(data, 60, data.length);
    return { entries: out, corrupt };
  }
  const seed = c.v.f.metadataCsum ? inodeChecksumSeed(c.v.csumSeed, dir, raw.i_generation) : 0;
  for (const pblk of await dirBlocks(c, raw, maxBlocks)) {
    if (pblk === 0) continue;
    try {
      const block = (await c.v.readBlock(pblk)).slice();
      // ext2fs_dir_iterate stops at a block whose checksum fails (ext2fs_read_dir_block4).
      if (strict && c.v.f.metadataCsum && !dirBlockCsumOk(block, c.v.blockSize, seed)) corrupt = true;
      else parse(block, 0, c.v.blockSize);
    } catch {
      corrupt = true;
    }
    if (strict && corrupt) break; // ... and at a block it cannot walk
  }
  return { entries: out, corrupt };
}

/** Entries of a directory (null when it cannot be read), from its first `maxBlocks` blocks. */
export async function listDir(c: CheckContext, dir: number, max = 100_000, maxBlocks = 4096): Promise<SimpleEntry[] | null> {
  const got = await readInode(c, dir);
  if (got === null) return null;
  return (await listDirDetailed(c, dir, got.raw, got.bytes, max, maxBlocks)).entries;
}

/** e2fsck's safe_print: control characters as ^X, high bytes as M-. */
export function safeName(name: Uint8Array): string {
  let s = "";
  for (let ch of name) {
    if (ch > 128) {
      s += "M-";
      ch -= 128;
    }
    if (ch < 32 || ch === 0x7f) {
      s += "^";
      ch ^= 0x40;
    }
    s += String.fromCharCode(ch);
  }
  return s;
}

/** e2fsck's names for the special inodes (message.c special_inode_name). */
const SPECIAL_NAMES = [
  "<The NULL inode>", "<The bad blocks inode>", "/", "<The user quota inode>", "<The group quota inode>",
  "<The boot loader inode>", "<The undelete directory inode>", "<The group descriptor inode>", "<The journal inode>",
  "<Reserved inode 9>", "<Reserved inode 10>",
];

type DirScan = { kind: "notdir" } | { kind: "error" } | { kind: "ok"; parent: number; name: Uint8Array | null };

/**
 * Pathnames for messages, computed as e2fsprogs ext2fs_get_pathname computes them: the
 * '..' entry of a directory gives its parent, the parent's entries give its name;
 * "<ino>" where a parent is not a directory, "..." where no parent is known, "???" where
 * a directory cannot be read. A small cache keeps directory scans.
 */
export class PathNamer {
  readonly #scans = new Map<string, DirScan>();
  constructor(readonly c: CheckContext) {}

  /** One pass over `dir` looking for '..' and the entry naming `ino` (get_pathname_proc). */
  async #scan(dir: number, ino: number): Promise<DirScan> {
    const key = `${dir}:${ino}`;
    const hit = this.#scans.get(key);
    if (hit !== undefined) return hit;
    let out: DirScan;
    const got = await readInode(this.c, dir);
    if (got === null || dir < 1 || dir > this.c.v.inodesCount) out = { kind: "error" };
    else if ((got.raw.i_mode & 0o170000) !== 0o040000) out = { kind: "notdir" };
    else {
      const listing = await listDirDetailed(this.c, dir, got.raw, got.bytes, 100_000, 4096, true);
      let parent = 0;
      let name: Uint8Array | null = null;
      for (const e of listing.entries) {
        if (e.name.length === 2 && e.name[0] === 0x2e && e.name[1] === 0x2e) parent = e.ino;
        if (ino !== 0 && e.ino === ino) {
          name = e.name.slice(); // kept in #scans: not a view holding its block
          break;
        }
      }
      out = name === null && listing.corrupt ? { kind: "error" } : { kind: "ok", parent, name };
    }
    if (this.#scans.size > 4096) this.#scans.clear();
    this.#scans.set(key, out);
    return out;
  }

  async #pathnameInt(dir: number, ino: number, maxdepth: number): Promise<string | null> {
    if (dir === ino) return dir === EXT4_ROOT_INO ? "/" : ".";
    if (dir === 0 || maxdepth < 0) return "...";
    const s = await this.#scan(dir, ino);
    if (s.kind === "notdir") return ino !== 0 ? `<${dir}>/<${ino}>` : `<${dir}>`;
    if (s.kind === "error") return null;
    const parentName = await this.#pathnameInt(s.parent, dir, maxdepth - 1);
    if (parentName === null) return null;
    if (ino === 0) return parentName;
    return `${parentName.length > 1 ? parentName : ""}/${s.name === null ? "???" : safeName(s.name)}`;
  }

  /** e2fsck's print_pathname(dir, ino): the path of `ino` in `dir` (of `dir` when ino is 0). */
  async pathname(dir: number, ino: number): Promise<string> {
    if (dir === 0 && ino < SPECIAL_NAMES.length) return SPECIAL_NAMES[ino]!;
    const got = await this.#pathnameInt(dir, dir === ino ? 0 : ino, 32);
    return got ?? "???";
  }

  /** Path of directory `dir` (e2fsck's %p). */
  dirPath(dir: number): Promise<string> {
    return this.pathname(dir, 0);
  }
}
