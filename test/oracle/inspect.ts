/**
 * Looks inside images with e2fsprogs (debugfs, dumpe2fs) and raw reads, to prove an image really
 * has the on-disk shape it was built for (extent depth, htree, shared xattr block, unwritten
 * extents). Independent of src/. Paths given to debugfs must not contain spaces or quotes.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { run, tool } from "./oracle_env.js";

/** stdout of `debugfs -R REQUEST IMAGE` (read-only). */
export function debugfs(image: string, request: string): string {
  return run(tool("debugfs"), ["-R", request, image]).stdout;
}

/** A `Name: value` field of `dumpe2fs -h`. */
export function superblockField(image: string, field: string): string {
  const out = run(tool("dumpe2fs"), ["-h", image]).stdout;
  const line = out.split("\n").find((l) => l.startsWith(`${field}:`));
  if (line === undefined) throw new Error(`dumpe2fs -h ${image}: no "${field}:" line`);
  return line.slice(field.length + 1).trim();
}

/** Block size of the image, from dumpe2fs -h. */
export function blockSizeOf(image: string): number {
  return Number(superblockField(image, "Block size"));
}

/** Filesystem features of the image, from dumpe2fs -h. */
export function featuresOf(image: string): string[] {
  return superblockField(image, "Filesystem features").split(/\s+/);
}

/** Rows of `debugfs ex PATH`: level, depth, logical start/end, length, flags. */
export interface ExtentRow {
  readonly level: number;
  readonly depth: number;
  readonly lblkStart: number;
  readonly lblkEnd: number;
  readonly length: number;
  readonly flags: string;
}

/** The extent tree of a file as `debugfs ex` prints it (index and leaf rows). */
export function extentRows(image: string, filePath: string): ExtentRow[] {
  const rows: ExtentRow[] = [];
  for (const line of debugfs(image, `ex ${filePath}`).split("\n")) {
    const m = /^\s*(\d+)\/\s*(\d+)\s+\d+\/\s*\d+\s+(\d+)\s+-\s+(\d+)\s+\d+(?:\s+-\s+\d+)?\s+(\d+)\s*(.*)$/.exec(line);
    if (m === null) continue;
    rows.push({ level: Number(m[1]), depth: Number(m[2]), lblkStart: Number(m[3]), lblkEnd: Number(m[4]), length: Number(m[5]), flags: (m[6] ?? "").trim() });
  }
  return rows;
}

/** Depth of a file's extent tree (0: extents in the inode); throws when it has none. */
export function extentDepth(image: string, filePath: string): number {
  const rows = extentRows(image, filePath);
  if (rows.length === 0) throw new Error(`${filePath}: debugfs ex shows no extents`);
  return Math.max(...rows.map((r) => r.depth));
}

/** Leaf extents of a file, with the number of unwritten ("Uninit") ones. */
export function leafExtents(image: string, filePath: string): { total: number; unwritten: number } {
  const leaves = extentRows(image, filePath).filter((r) => r.level === r.depth);
  return { total: leaves.length, unwritten: leaves.filter((r) => /Uninit/.test(r.flags)).length };
}

/** `debugfs stat PATH` output. */
export function statText(image: string, filePath: string): string {
  return debugfs(image, `stat ${filePath}`);
}

/** i_flags of an inode (debugfs stat "Flags: 0x..."). */
export function inodeFlags(image: string, filePath: string): number {
  const m = /Flags: 0x([0-9a-f]+)/.exec(statText(image, filePath));
  if (m === null) throw new Error(`${filePath}: debugfs stat shows no Flags`);
  return parseInt(m[1]!, 16);
}

/** EXT4_INDEX_FL: the directory is a hashed b-tree (htree). */
export const EXT4_INDEX_FL = 0x1000;

/** The inode's external xattr block (debugfs stat "File ACL: N"); 0 when none. */
export function xattrBlockOf(image: string, filePath: string): number {
  const m = /File ACL: (\d+)/.exec(statText(image, filePath));
  if (m === null) throw new Error(`${filePath}: debugfs stat shows no File ACL`);
  return Number(m[1]);
}

/** Header of an xattr block read straight from the image: h_magic, h_refcount, h_blocks. */
export function xattrBlockHeader(image: string, block: number, blockSize = blockSizeOf(image)): { h_magic: number; h_refcount: number; h_blocks: number } {
  const buf = Buffer.alloc(16);
  const fd = openSync(image, "r");
  try {
    readSync(fd, buf, 0, 16, block * blockSize);
  } finally {
    closeSync(fd);
  }
  return { h_magic: buf.readUInt32LE(0), h_refcount: buf.readUInt32LE(4), h_blocks: buf.readUInt32LE(8) };
}

/** EXT4_XATTR_MAGIC, the first word of an xattr block. */
export const EXT4_XATTR_MAGIC = 0xea020000;

/** dx_root "Indirect levels" of an htree directory (0: one level of leaves). */
export function htreeIndirectLevels(image: string, dirPath: string): number {
  const m = /Indirect levels: (\d+)/.exec(debugfs(image, `htree ${dirPath}`));
  if (m === null) throw new Error(`${dirPath}: debugfs htree shows no "Indirect levels"`);
  return Number(m[1]);
}

/** Block-map shape of a non-extent file: which of the 15 i_block slots are used (debugfs stat BLOCKS). */
export function blockMapKinds(image: string, filePath: string): { ind: boolean; dind: boolean; tind: boolean } {
  const text = statText(image, filePath);
  return { ind: /\(IND\)/.test(text), dind: /\(DIND\)/.test(text), tind: /\(TIND\)/.test(text) };
}
