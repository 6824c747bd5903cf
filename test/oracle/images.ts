/**
 * Oracle image builders, cached per process, plus loop-mount helpers.
 *
 *   mke2fsImage(name, opts)   mke2fs -d from a deterministic tree (trees.ts): what e2fsprogs writes
 *   kernelImage(name, opts)   empty mke2fs image, loop-mounted read-write, populated by the kernel
 *   kernelImage("k-ext4-4k")  the ready-made kernel populations (kernel_populate.ts): htree
 *                             directory, deep extent tree, unwritten extents, shared xattr blocks,
 *                             ACLs, devices, sockets, ... ; see KERNEL_IMAGES
 *   mke2fsPreset("m-ext4-4k") ready-made mke2fs configurations; see MKE2FS_PRESETS
 *   withLoopMount / kernelManifestOfImage
 *
 * Every image is built once per process under a run directory
 * `$TMPDIR/ext4ts-oracle-<pid>-<random>/` and checked with `e2fsck -fn` (exit 0) before use.
 * The run directory is removed at process exit (set EXT4TS_ORACLE_KEEP=1 to keep it); run
 * directories of dead processes are swept on first use, unless something is mounted inside.
 * Mounts are always undone in `finally`; a busy umount is retried, then lazily detached.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { kernelManifest } from "./kernel_manifest.js";
import { populateKernelImage } from "./kernel_populate.js";
import { run, runAsync, runUnchecked, tool } from "./oracle_env.js";
import { makeTree } from "./trees.js";
import type { TreeOptions } from "./trees.js";

// ---------------------------------------------------------------------------------------------
// Run directory

const RUN_PREFIX = "ext4ts-oracle-";
let runDirPath: string | undefined;

/** This process's run directory (created on first use). */
export function runDir(): string {
  if (runDirPath !== undefined) return runDirPath;
  sweepStaleRunDirs();
  runDirPath = mkdtempSync(path.join(tmpdir(), `${RUN_PREFIX}${process.pid}-`));
  const dir = runDirPath;
  if (process.env.EXT4TS_ORACLE_KEEP !== "1") {
    process.on("exit", () => {
      removeRunDir(dir);
    });
  }
  return dir;
}

/** Mount points (decoded) currently listed in /proc/self/mounts. */
export function mountPoints(): string[] {
  let text: string;
  try {
    text = readFileSync("/proc/self/mounts", "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => (l.split(" ")[1] ?? "").replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
}

/** Mount points at or below `dir`. */
export function mountsUnder(dir: string): string[] {
  const d = path.resolve(dir);
  return mountPoints().filter((m) => m === d || m.startsWith(`${d}/`));
}

function removeRunDir(dir: string): void {
  if (mountsUnder(dir).length > 0) return; // never delete through a live mount
  rmSync(dir, { recursive: true, force: true });
}

function sweepStaleRunDirs(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^ext4ts-oracle-(\d+)-/.exec(n);
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    removeRunDir(path.join(tmpdir(), n));
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes this process's run directory now (also done at exit). Refuses while mounts remain. */
export function cleanupImages(): void {
  if (runDirPath === undefined) return;
  const left = mountsUnder(runDirPath);
  if (left.length > 0) throw new Error(`Cannot clean up ${runDirPath}: still mounted: ${left.join(", ")}`);
  rmSync(runDirPath, { recursive: true, force: true });
  runDirPath = undefined;
  cache.clear();
  treeCache.clear();
}

// ---------------------------------------------------------------------------------------------
// Checks

/** Runs `e2fsck -fn IMAGE`; returns its output, throws (with the output) unless it exits 0. */
export function e2fsckClean(image: string): string {
  const r = runUnchecked(tool("e2fsck"), ["-fn", image]);
  if (r.status !== 0) throw new Error(`e2fsck -fn ${image} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------
// Loop mounts

/** Options for withLoopMount. */
export interface LoopMountOptions {
  readonly readOnly: boolean;
  /** Extra -o options, e.g. "noload" (comma-separated). */
  readonly options?: string;
  /** Filesystem type for -t; default: let mount detect it. */
  readonly fsType?: string;
}

/**
 * Loop-mounts `image` on a fresh directory, runs fn(mountDir), then unmounts (retrying while
 * busy) and removes the directory, whatever fn did. The loop device is detached on umount
 * (autoclear); any loop device left on the image is detached too.
 */
export async function withLoopMount<T>(image: string, opts: LoopMountOptions, fn: (mountDir: string) => Promise<T>): Promise<T> {
  const mnt = mkdtempSync(path.join(runDir(), `mnt-${path.basename(image).replace(/[^A-Za-z0-9._-]/g, "_")}-`));
  const o = ["loop", opts.readOnly ? "ro" : "rw", ...(opts.options !== undefined ? [opts.options] : [])].join(",");
  const args = [...(opts.fsType !== undefined ? ["-t", opts.fsType] : []), "-o", o, image, mnt];
  try {
    await runAsync(tool("mount"), args);
  } catch (e) {
    rmdirSync(mnt);
    detachLoops(image);
    throw e;
  }
  try {
    return await fn(mnt);
  } finally {
    await unmount(mnt);
    detachLoops(image);
    if (mountsUnder(mnt).length === 0) rmdirSync(mnt);
  }
}

/** Unmounts `dir`, retrying while busy; as a last resort detaches lazily and throws. */
export async function unmount(dir: string): Promise<void> {
  const umount = tool("umount");
  let last = "";
  for (let attempt = 0; attempt < 30; attempt++) {
    const r = runUnchecked(umount, [dir]);
    if (r.status === 0) return;
    last = r.stderr.trim();
    if (mountsUnder(dir).length === 0) return;
    if (!/busy/i.test(last)) break;
    await sleep(200);
  }
  runUnchecked(umount, ["-l", dir]);
  throw new Error(`umount ${dir} failed (${last}); detached lazily`);
}

function detachLoops(image: string): void {
  const losetup = tool("losetup");
  const r = runUnchecked(losetup, ["-j", image]);
  for (const line of r.stdout.split("\n")) {
    const dev = /^(\/dev\/loop\d+):/.exec(line)?.[1];
    if (dev !== undefined) runUnchecked(losetup, ["-d", dev]);
  }
}

/** The kernel's manifest of an image: mount read-only, list, unmount. */
export async function kernelManifestOfImage(image: string): Promise<string> {
  return withLoopMount(image, { readOnly: true }, (dir) => kernelManifest(dir));
}

// ---------------------------------------------------------------------------------------------
// Builders

const cache = new Map<string, { key: string; image: Promise<string> }>();
const treeCache = new Map<string, Promise<string>>();

function cached(name: string, key: string, build: () => Promise<string>): Promise<string> {
  const hit = cache.get(name);
  if (hit !== undefined) {
    if (hit.key !== key) throw new Error(`Image "${name}" was already built with other options`);
    return hit.image;
  }
  const image = build();
  cache.set(name, { key, image });
  // A failed build is not cached: the next caller retries (and sees the error again).
  image.catch(() => {
    if (cache.get(name)?.image === image) cache.delete(name);
  });
  return image;
}

function imagePath(name: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`Image names are [A-Za-z0-9._-]+: ${JSON.stringify(name)}`);
  return path.join(runDir(), `${name}.img`);
}

/** A deterministic tree for these options, built once per process. */
export function cachedTree(tree: TreeOptions): Promise<string> {
  const key = JSON.stringify(tree, Object.keys(tree).sort());
  let p = treeCache.get(key);
  if (p === undefined) {
    const dir = path.join(runDir(), "trees", `t${treeCache.size}`);
    p = makeTree(dir, tree).then(() => dir);
    treeCache.set(key, p);
  }
  return p;
}

/** Options for mke2fsImage. */
export interface Mke2fsImageOptions {
  readonly fsType: "ext2" | "ext3" | "ext4";
  readonly blockSize: 1024 | 2048 | 4096;
  /** The -O list, e.g. "^metadata_csum,^64bit" or "inline_data". */
  readonly features?: string;
  readonly inodeSize?: 128 | 256 | 512 | 1024;
  readonly sizeMiB: number;
  readonly tree: TreeOptions;
  /** More mke2fs arguments, placed before -d. */
  readonly extraArgs?: readonly string[];
}

/**
 * `mke2fs -q -F -t T -b B [-O F] [-I N] -d TREE IMG SIZE`, once per process per name; checked with
 * e2fsck -fn. Returns the image path.
 */
export function mke2fsImage(name: string, opts: Mke2fsImageOptions): Promise<string> {
  return cached(name, JSON.stringify(opts), async () => {
    const img = imagePath(name);
    const tree = await cachedTree(opts.tree);
    const args = ["-q", "-F", "-t", opts.fsType, "-b", String(opts.blockSize)];
    if (opts.features !== undefined) args.push("-O", opts.features);
    if (opts.inodeSize !== undefined) args.push("-I", String(opts.inodeSize));
    args.push(...(opts.extraArgs ?? []), "-d", tree, img, `${opts.sizeMiB}M`);
    rmSync(img, { force: true });
    await runAsync(tool("mke2fs"), args);
    e2fsckClean(img);
    return img;
  });
}

/**
 * A new image from `mke2fs -q -F MKFS_ARGS IMG SIZE` in its own scratch directory (not cached:
 * for tests that change it). `size` as mke2fs takes it ("32M").
 */
export function scratchImage(name: string, mkfsArgs: readonly string[], size: string): string {
  const dir = mkdtempSync(path.join(runDir(), `${name}-`));
  const img = path.join(dir, `${name}.img`);
  run(tool("mke2fs"), ["-q", "-F", ...mkfsArgs, img, size]);
  return img;
}

/** Options for a custom kernelImage. */
export interface KernelImageOptions {
  /** mke2fs arguments before IMAGE SIZE, e.g. ["-t", "ext4", "-b", "4096"]. */
  readonly mkfsArgs: readonly string[];
  readonly sizeMiB: number;
  /** Writes the contents through the kernel. */
  readonly populate: (mountDir: string) => Promise<void>;
  /** Extra mount -o options for the read-write mount. */
  readonly mountOptions?: string;
}

/** Names of the ready-made kernel images. */
export type KernelImageName = "k-ext4-4k" | "k-ext4-1k" | "k-ext3-1k";

/** The ready-made kernel images: mke2fs arguments, size, and what to populate. */
export const KERNEL_IMAGES: Readonly<Record<KernelImageName, { readonly mkfsArgs: readonly string[]; readonly sizeMiB: number; readonly blockSize: 1024 | 4096; readonly extents: boolean; readonly description: string }>> = {
  "k-ext4-4k": {
    mkfsArgs: ["-t", "ext4", "-b", "4096", "-N", "32768"],
    sizeMiB: 128,
    blockSize: 4096,
    extents: true,
    description: "ext4 (default features: extents, flex_bg, 64bit, metadata_csum), 4 KiB blocks, every kernel population",
  },
  "k-ext4-1k": {
    mkfsArgs: ["-t", "ext4", "-b", "1024", "-N", "32768"],
    sizeMiB: 96,
    blockSize: 1024,
    extents: true,
    description: "ext4, 1 KiB blocks (two-level htree, small xattr blocks), every kernel population, triple-indirect-sized sparse file",
  },
  "k-ext3-1k": {
    mkfsArgs: ["-t", "ext3", "-b", "1024", "-N", "32768"],
    sizeMiB: 128,
    blockSize: 1024,
    extents: false,
    description: "ext3 (journal, block-mapped files: indirect, double and triple indirect), 1 KiB blocks, every population that needs no extents",
  },
};

/**
 * An image written by the kernel: mke2fs an empty image, loop-mount it read-write, populate,
 * sync, unmount, and check `e2fsck -fn` exits 0. Once per process per name. With only a name,
 * builds one of KERNEL_IMAGES.
 */
export function kernelImage(name: KernelImageName): Promise<string>;
export function kernelImage(name: string, opts: KernelImageOptions): Promise<string>;
export function kernelImage(name: string, opts?: KernelImageOptions): Promise<string> {
  if (opts === undefined) {
    const spec = (KERNEL_IMAGES as Partial<Record<string, (typeof KERNEL_IMAGES)[KernelImageName]>>)[name];
    if (spec === undefined) throw new Error(`No ready-made kernel image "${name}"; known: ${Object.keys(KERNEL_IMAGES).join(", ")}`);
    return kernelImage(name, {
      mkfsArgs: spec.mkfsArgs,
      sizeMiB: spec.sizeMiB,
      populate: (dir) => populateKernelImage(dir, { blockSize: spec.blockSize, extents: spec.extents }),
    });
  }
  const key = JSON.stringify({ mkfsArgs: opts.mkfsArgs, sizeMiB: opts.sizeMiB, populate: opts.populate.toString(), mountOptions: opts.mountOptions });
  return cached(name, key, async () => {
    const img = imagePath(name);
    rmSync(img, { force: true });
    await runAsync(tool("mke2fs"), ["-q", "-F", ...opts.mkfsArgs, img, `${opts.sizeMiB}M`]);
    await withLoopMount(img, { readOnly: false, ...(opts.mountOptions !== undefined ? { options: opts.mountOptions } : {}) }, async (dir) => {
      await opts.populate(dir);
      await runAsync(tool("sync"), ["-f", dir]);
    });
    e2fsckClean(img);
    return img;
  });
}

// ---------------------------------------------------------------------------------------------
// mke2fs presets

/** Names of the ready-made mke2fs images. */
export type Mke2fsPresetName =
  | "m-ext2-1k"
  | "m-ext3-4k"
  | "m-ext4-4k"
  | "m-ext4-1k"
  | "m-ext4-nocsum"
  | "m-ext4-inline"
  | "m-ext4-128"
  | "m-ext4-4k-large";

const STD_TREE = { seed: 1, files: 400, maxSize: 2 << 20, withXattrs: true, withSymlinks: true, withHardlinks: true, withSpecial: true, withSparse: true, nsTimes: true } as const;

/** A ready-made mke2fs image: its options and what it is for. */
export interface Mke2fsPreset {
  readonly options: Mke2fsImageOptions;
  /** Slow to build (tens of thousands of files): opt-in. */
  readonly large: boolean;
  readonly description: string;
}

/** Ready-made mke2fs configurations. */
export const MKE2FS_PRESETS: Readonly<Record<Mke2fsPresetName, Mke2fsPreset>> = {
  "m-ext2-1k": { options: { fsType: "ext2", blockSize: 1024, sizeMiB: 96, tree: { ...STD_TREE, blockSize: 1024 } }, large: false, description: "ext2, 1 KiB blocks: block maps, no journal" },
  "m-ext3-4k": { options: { fsType: "ext3", blockSize: 4096, sizeMiB: 96, tree: STD_TREE }, large: false, description: "ext3, 4 KiB blocks: journal, block maps" },
  "m-ext4-4k": { options: { fsType: "ext4", blockSize: 4096, sizeMiB: 96, tree: STD_TREE }, large: false, description: "ext4 defaults, 4 KiB blocks" },
  "m-ext4-1k": { options: { fsType: "ext4", blockSize: 1024, sizeMiB: 96, tree: { ...STD_TREE, blockSize: 1024 } }, large: false, description: "ext4 defaults, 1 KiB blocks" },
  "m-ext4-nocsum": { options: { fsType: "ext4", blockSize: 4096, features: "^metadata_csum,^64bit", sizeMiB: 96, tree: STD_TREE }, large: false, description: "ext4 without metadata_csum and 64bit (32-byte group descriptors)" },
  "m-ext4-inline": { options: { fsType: "ext4", blockSize: 4096, features: "inline_data", sizeMiB: 96, tree: STD_TREE }, large: false, description: "ext4 + inline_data: small files and dirs inside the inode" },
  "m-ext4-128": { options: { fsType: "ext4", blockSize: 4096, inodeSize: 128, sizeMiB: 96, tree: STD_TREE }, large: false, description: "ext4 with 128-byte inodes: no extra times, no in-inode xattrs" },
  "m-ext4-4k-large": {
    options: { fsType: "ext4", blockSize: 4096, sizeMiB: 2048, tree: { ...STD_TREE, seed: 2, files: 20_000, maxSize: 4 << 20 } },
    large: true,
    description: "ext4, 20,000 files up to 4 MiB, about 1.2 GB of data (W-size)",
  },
};

/** Builds (once per process) one of MKE2FS_PRESETS. */
export function mke2fsPreset(name: Mke2fsPresetName): Promise<string> {
  return mke2fsImage(name, MKE2FS_PRESETS[name].options);
}
