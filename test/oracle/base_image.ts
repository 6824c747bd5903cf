/**
 * Small mke2fs images for engine unit tests that need a real volume many times over: made
 * once, kept in memory as their non-zero 1 MiB pieces (cheap to copy into a MemoryDevice per
 * test), and written back as sparse files for e2fsck/debugfs to check.
 */

import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import type { MemoryDevice } from "../../src/device/memory.js";
import { EXT4_VALID_FS } from "../../src/format/superblock.js";
import type { Ext4Fs } from "../../src/fs/super.js";
import { runDir } from "./images.js";
import { run, runUnchecked, tool } from "./oracle_env.js";

const PIECE = 1 << 20;

/** debugfs without a pager. */
export const DEBUGFS_ENV = { ...process.env, PAGER: "__none__", DEBUGFS_PAGER: "__none__" };

export interface BaseImage {
  readonly name: string;
  readonly size: number;
  /** Non-zero 1 MiB pieces of the image. */
  readonly pieces: readonly { offset: number; data: Uint8Array }[];
  /** Inode number of the file "f", which the commands must create. */
  readonly ino: number;
}

/** `mke2fs -q -F MKFS_ARGS`, then debugfs `commands` (they must create /f); kept as pieces. */
export function makeBaseImage(name: string, mkfsArgs: readonly string[], sizeMiB: number, commands: readonly string[]): BaseImage {
  const file = path.join(runDir(), `base-${name}.img`);
  run(tool("mke2fs"), ["-q", "-F", ...mkfsArgs, file, `${sizeMiB}M`]);
  run(tool("debugfs"), ["-w", "-f", "-", file], { input: `${commands.join("\n")}\n`, env: DEBUGFS_ENV });
  const stat = run(tool("debugfs"), ["-R", "stat f", file], { env: DEBUGFS_ENV }).stdout;
  const m = /Inode:\s+(\d+)/.exec(stat);
  if (m === null) throw new Error(`debugfs stat f: no inode number in:\n${stat}`);
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const pieces: { offset: number; data: Uint8Array }[] = [];
    const buf = new Uint8Array(PIECE);
    for (let offset = 0; offset < size; offset += PIECE) {
      const n = readSync(fd, buf, 0, Math.min(PIECE, size - offset), offset);
      const data = buf.subarray(0, n);
      if (data.some((b) => b !== 0)) pieces.push({ offset, data: data.slice() });
    }
    return { name, size, pieces, ino: Number(m[1]) };
  } finally {
    closeSync(fd);
  }
}

/** Write the device back to a sparse image file. */
export async function saveSparseImage(dev: MemoryDevice, file: string): Promise<void> {
  const fd = openSync(file, "w");
  try {
    ftruncateSync(fd, dev.size);
    for (let offset = 0; offset < dev.size; offset += PIECE) {
      const data = await dev.read(offset, Math.min(PIECE, dev.size - offset));
      if (data.some((b) => b !== 0)) writeSync(fd, data, 0, data.length, offset);
    }
  } finally {
    closeSync(fd);
  }
}

/** Mark the volume clean, sync it, save it to `file` and require `e2fsck -fn` to exit 0; returns its output. */
export async function saveAndFsck(fs: Ext4Fs, dev: MemoryDevice, file: string): Promise<string> {
  fs.sb.s_state |= EXT4_VALID_FS;
  await fs.sync();
  await saveSparseImage(dev, file);
  const fsck = runUnchecked(tool("e2fsck"), ["-fn", file]);
  expect(fsck.status, `e2fsck -fn ${file}:\n${fsck.stdout}${fsck.stderr}`).toBe(0);
  return fsck.stdout;
}
