/**
 * What only the kernel writes: the population of the ready-made kernel images (images.ts).
 * Runs against a read-write mount of an empty image; everything below is created through the
 * kernel, so the on-disk shapes are the kernel's (mke2fs -d never makes most of them).
 *
 *   /big-dir           12,000 names of 1..255 bytes, every 7th removed again (>= 10,000 left, holes
 *                      in the leaves), a few subdirectories: an htree (EXT4_INDEX_FL) directory,
 *                      two levels deep on 1 KiB blocks
 *   /extents/deep      one block written at every other block, DEEP_EXTENTS times: an extent tree
 *                      of depth >= 2                                       (extents only)
 *   /extents/*         fallocate: all-unwritten, unwritten split by writes, preallocated past EOF
 *                      (--keep-size), punched holes, zero range, collapse and insert range
 *   /xattr/*           in-inode user.* values, values that need the external block, an empty
 *                      value, trusted.* and security.*, many names, xattrs on a directory and on a
 *                      symlink, and /xattr/shared-1..5 with one identical set so the kernel shares
 *                      one xattr block (h_refcount 5)
 *   /acl/*             access ACLs, a directory with access + default ACLs and children that
 *                      inherit them, a 40-entry ACL
 *   /links/*           hard links (nlink 3) across directories, a hard-linked symlink and fifo
 *   /special/*         chr 1:3, blk 7:0, chr 300:70000 (new dev_t encoding), fifo, socket
 *   /symlinks/*        fast (1, 59 bytes) and slow (60, 61, 500, min(4000, block size - 1) bytes)
 *   /sparse/*          holes at start, middle, end; all hole; a file whose only block needs the
 *                      triple-indirect map on 1 KiB blocks
 *   /sizes/*           0, 1, exactly 12 blocks, 13 blocks (first indirect), 12 + 256 + 1 blocks
 *                      (double indirect at 1 KiB)
 *   /modes/*           setuid, setgid, sticky, 0000, 7777; a setgid directory whose children
 *                      inherit gid and the setgid bit
 *   /owners/*          uids/gids 0, 1000, 65535, 65536, 100000, 4294967294
 *   /times/*           mtimes -2^31, -1.5, 0.000000001, 2^31 + 0.5, 2100, 2446 (ext4's maximum)
 * Every other inode gets a deterministic nanosecond mtime at the end, children before parents.
 */
import { chmodSync, closeSync, existsSync, ftruncateSync, linkSync, lchownSync, mkdirSync, openSync, readdirSync, lstatSync, rmSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import { run, tool } from "./oracle_env.js";
import { Rng, addTo, makeSocket, touchGroups } from "./trees.js";

/** Extents written to /extents/deep: > 4 * 340 forces depth 2 at 4 KiB blocks (> 4 * 84 at 1 KiB). */
export const DEEP_EXTENTS = 3000;
/** Entries created in /big-dir before every 7th is removed. */
export const BIG_DIR_CREATED = 12_000;
/** Files sharing one xattr block. */
export const SHARED_XATTR_FILES = 5;

/** What the population may use on this filesystem. */
export interface PopulateOptions {
  readonly blockSize: 1024 | 2048 | 4096;
  /** The filesystem has extents (ext4): fallocate and the deep extent tree. */
  readonly extents: boolean;
  readonly seed?: number;
}

/** Populates a read-write mount `root` through the kernel. */
export async function populateKernelImage(root: string, opts: PopulateOptions): Promise<void> {
  const rng = new Rng(opts.seed ?? 0x6b65726e);
  const bs = opts.blockSize;
  const p = (rel: string): string => path.join(root, rel);
  const fallocate = (args: readonly string[]): void => {
    run(tool("fallocate"), args);
  };
  for (const d of ["big-dir", "xattr", "acl", "links", "links/sub", "special", "symlinks", "sparse", "sizes", "modes", "owners", "times"]) mkdirSync(p(d));

  // /big-dir: an indexed directory.
  const big = p("big-dir");
  for (let i = 0; i < BIG_DIR_CREATED; i++) {
    const prefix = `${i.toString(36)}_`;
    const len = Math.max(prefix.length + 1, 1 + ((i * 7919) % 255));
    const name = prefix + "x".repeat(len - prefix.length);
    if (i % 1000 === 999) mkdirSync(path.join(big, name));
    else if (i % 97 === 0) writeFileSync(path.join(big, name), rng.bytes(rng.int(200)));
    else closeSync(openSync(path.join(big, name), "w"));
  }
  for (let i = 0; i < BIG_DIR_CREATED; i += 7) {
    const prefix = `${i.toString(36)}_`;
    const len = Math.max(prefix.length + 1, 1 + ((i * 7919) % 255));
    const name = prefix + "x".repeat(len - prefix.length);
    rmSync(path.join(big, name), { recursive: true });
  }

  // /extents: only the kernel makes these shapes.
  if (opts.extents) {
    mkdirSync(p("extents"));
    const fd = openSync(p("extents/deep"), "w");
    try {
      // Fresh bytes for every block, so reading the wrong block can never hash the same.
      const data = rng.bytes(bs * DEEP_EXTENTS);
      for (let i = 0; i < DEEP_EXTENTS; i++) writeSync(fd, data, i * bs, bs, 2 * i * bs);
    } finally {
      closeSync(fd);
    }
    fallocate(["-l", "1M", p("extents/unwritten-all")]);
    fallocate(["-l", "256K", p("extents/unwritten-split")]);
    writeAt(p("extents/unwritten-split"), [[64 * 1024, rng.bytes(4096)], [0, rng.bytes(100)], [200 * 1024 + 5, rng.bytes(3 * bs)]]);
    writeFileSync(p("extents/prealloc-past-eof"), rng.bytes(100));
    fallocate(["--keep-size", "-o", "1M", "-l", "1M", p("extents/prealloc-past-eof")]);
    writeFileSync(p("extents/punched"), rng.bytes(256 * 1024));
    fallocate(["-p", "-o", "64K", "-l", "64K", p("extents/punched")]);
    fallocate(["-p", "-o", "192K", "-l", "64K", p("extents/punched")]);
    fallocate(["-p", "-o", "1000", "-l", "5000", p("extents/punched")]);
    writeFileSync(p("extents/zero-range"), rng.bytes(64 * 1024));
    fallocate(["-z", "-o", "8K", "-l", "16K", p("extents/zero-range")]);
    writeFileSync(p("extents/collapsed"), rng.bytes(128 * 1024));
    fallocate(["-c", "-o", "32K", "-l", "16K", p("extents/collapsed")]);
    writeFileSync(p("extents/inserted"), rng.bytes(128 * 1024));
    fallocate(["-i", "-o", "8K", "-l", "8K", p("extents/inserted")]);
    run(tool("sync"), ["-f", root]); // flush delalloc so the extents exist before anything else
  }

  // /xattr
  const xattrSmall = 40;
  const xattrBig = bs <= 1024 ? 900 : 3000;
  const sharedSize = bs <= 1024 ? 700 : 2000;
  const setfattr = (file: string, name: string, value: Uint8Array, noFollow = false): void => {
    run(tool("setfattr"), [...(noFollow ? ["-h"] : []), "-n", name, "-v", `0s${Buffer.from(value).toString("base64")}`, "--", file]);
  };
  writeFileSync(p("xattr/in-inode"), "small xattrs\n");
  setfattr(p("xattr/in-inode"), "user.a", rng.bytes(xattrSmall));
  setfattr(p("xattr/in-inode"), "user.b", rng.bytes(3));
  writeFileSync(p("xattr/block"), "one big xattr\n");
  setfattr(p("xattr/block"), "user.big", rng.bytes(xattrBig));
  writeFileSync(p("xattr/empty-value"), "");
  run(tool("setfattr"), ["-n", "user.empty", "--", p("xattr/empty-value")]);
  writeFileSync(p("xattr/trusted-security"), "t\n");
  setfattr(p("xattr/trusted-security"), "trusted.overlay.origin", rng.bytes(20));
  setfattr(p("xattr/trusted-security"), "security.test", rng.bytes(9));
  writeFileSync(p("xattr/many"), "");
  for (let i = 0; i < (bs <= 1024 ? 20 : 40); i++) setfattr(p("xattr/many"), `user.m${String(i).padStart(2, "0")}`, rng.bytes(rng.range(0, 30)));
  mkdirSync(p("xattr/dir"));
  setfattr(p("xattr/dir"), "user.on-dir", rng.bytes(50));
  symlinkSync("in-inode", p("xattr/symlink"));
  setfattr(p("xattr/symlink"), "trusted.on-symlink", rng.bytes(12), true);
  // Sharing goes through the kernel's mbcache, which is best effort, so check with
  // FIEMAP_FLAG_XATTR (filefrag -x; it reports the block only while the inode body holds no
  // xattrs, hence a single big value) and recreate the set a few times if needed.
  const shared = rng.bytes(sharedSize);
  const sharedFiles = Array.from({ length: SHARED_XATTR_FILES }, (_, i) => p(`xattr/shared-${i + 1}`));
  for (let attempt = 0; ; attempt++) {
    for (const [i, f] of sharedFiles.entries()) {
      rmSync(f, { force: true });
      writeFileSync(f, `shared ${i + 1}\n`);
      setfattr(f, "user.shared", shared);
    }
    const blocks = new Set(sharedFiles.map(xattrPhysicalBlock));
    if (blocks.size === 1 && !blocks.has(undefined)) break;
    console.warn(`kernel_populate: xattr blocks not shared on attempt ${attempt + 1} (${[...blocks].join(", ")}); recreating`);
    if (attempt === 4) throw new Error(`The kernel did not share one xattr block among ${sharedFiles.join(", ")}: ${[...blocks].join(", ")}`);
  }

  // /acl
  const setfacl = (args: readonly string[]): void => {
    run(tool("setfacl"), args);
  };
  writeFileSync(p("acl/file"), "acl\n");
  setfacl(["-m", "u:1000:rwx,u:2000:r,g:100:rw,g:3000:x,m::rwx", p("acl/file")]);
  mkdirSync(p("acl/dir"));
  setfacl(["-m", "u:1000:rwx,g:100:rx", p("acl/dir")]);
  setfacl(["-d", "-m", "u:1000:rx,u:1001:rw,g:100:r,o::-", p("acl/dir")]);
  writeFileSync(p("acl/dir/inherited-file"), "inherits the default ACL\n");
  mkdirSync(p("acl/dir/inherited-dir"));
  writeFileSync(p("acl/big"), "");
  setfacl(["-m", Array.from({ length: 40 }, (_, i) => `u:${5000 + i}:${["r", "w", "x", "rw", "rx"][i % 5]!}`).join(","), p("acl/big")]);

  // /links
  writeFileSync(p("links/a"), rng.bytes(5000));
  linkSync(p("links/a"), p("links/b"));
  linkSync(p("links/a"), p("links/sub/c"));
  symlinkSync("a", p("links/sym"));
  linkSync(p("links/sym"), p("links/sym-hard")); // link(2) does not follow: a second name for the symlink
  run(tool("mkfifo"), [p("links/fifo")]);
  linkSync(p("links/fifo"), p("links/sub/fifo-hard"));

  // /special
  run(tool("mknod"), [p("special/null"), "c", "1", "3"]);
  run(tool("mknod"), [p("special/loop0"), "b", "7", "0"]);
  run(tool("mknod"), [p("special/bigdev"), "c", "300", "70000"]);
  run(tool("mkfifo"), [p("special/fifo")]);
  await makeSocket(p("special/sock"));

  // /symlinks
  const maxLink = Math.min(4000, bs - 1);
  for (const n of [1, 59, 60, 61, 500, maxLink]) symlinkSync(linkTarget(rng, n), p(`symlinks/len-${n}`));
  symlinkSync("../links/a", p("symlinks/relative"));
  symlinkSync("/nonexistent/target", p("symlinks/dangling"));
  symlinkSync("../links", p("symlinks/to-dir"));

  // /sparse
  writeAt(p("sparse/hole-start"), [[1 << 20, rng.bytes(bs + 17)]]);
  writeAt(p("sparse/hole-middle"), [[0, rng.bytes(bs)], [2 << 20, rng.bytes(bs)]]);
  writeAt(p("sparse/hole-end"), [[0, rng.bytes(3 * bs)]], 4 << 20);
  writeAt(p("sparse/all-hole"), [], 10 << 20);
  const ptrs = bs / 4;
  const tind = (12 + ptrs + ptrs * ptrs) * bs;
  if (tind <= 128 << 20) writeAt(p("sparse/triple-indirect"), [[tind + 5, rng.bytes(100)]]);

  // /sizes
  const sizes: [string, number][] = [["empty", 0], ["one", 1], ["b12", 12 * bs], ["b13", 13 * bs], ["b12+256+1", (12 + 256 + 1) * bs], ["odd", 7 * bs + 3]];
  for (const [n, size] of sizes) writeFileSync(p(`sizes/${n}`), rng.bytes(size));

  // /modes (content first: writes clear setuid)
  for (const [n, m] of [["setuid", 0o4755], ["setgid", 0o2755], ["both", 0o6711], ["none", 0o0000], ["all", 0o7777], ["sticky-file", 0o1644]] as const) {
    writeFileSync(p(`modes/${n}`), `${n}\n`);
    chmodSync(p(`modes/${n}`), m);
  }
  mkdirSync(p("modes/sticky-dir"));
  chmodSync(p("modes/sticky-dir"), 0o1777);
  mkdirSync(p("modes/setgid-dir"));
  lchownSync(p("modes/setgid-dir"), 0, 4242);
  chmodSync(p("modes/setgid-dir"), 0o2775);
  writeFileSync(p("modes/setgid-dir/child"), "inherits gid 4242\n");
  mkdirSync(p("modes/setgid-dir/subdir")); // inherits gid and the setgid bit

  // /owners
  const ids = [0, 1000, 65535, 65536, 100000, 4294967294];
  for (const [i, id] of ids.entries()) {
    writeFileSync(p(`owners/u${id}`), "");
    lchownSync(p(`owners/u${id}`), id, ids[(i + 1) % ids.length]!);
  }
  symlinkSync("u1000", p("owners/symlink"));
  lchownSync(p("owners/symlink"), 4321, 8765);

  // Times: everything first, then the explicit ones.
  stampTimes(root, rng);
  const explicit: [string, string][] = [
    ["min", "-2147483648.000000000"],
    ["neg", "-1.500000000"],
    ["one-ns", "0.000000001"],
    ["y2038", "2147483648.500000000"],
    ["y2100", "4102444800.999999999"],
    ["max", "15032385535.999999999"],
  ];
  const groups = new Map<string, string[]>();
  for (const [n, t] of explicit) {
    writeFileSync(p(`times/${n}`), `${t}\n`);
    groups.set(t, [p(`times/${n}`)]);
  }
  touchGroups(groups);
  // Creating files changed /times itself: give it a fixed time again.
  touchGroups(new Map([["1700000000.123456789", [p("times")]]]));
}

/** Physical block of a file's external xattr block (`filefrag -x`), or undefined when in-inode or none. */
export function xattrPhysicalBlock(file: string): number | undefined {
  const out = run(tool("filefrag"), ["-x", "-v", file]).stdout;
  const m = /^\s*0:\s+\d+\.\.\s*\d+:\s+(\d+)\.\.\s*\d+:\s+\d+:(.*)$/m.exec(out);
  if (m === null || /inline/.test(m[2] ?? "")) return undefined;
  return Number(m[1]);
}

/** Writes pieces [offset, bytes] into a file (created, or kept when it exists), then sets its size when given. */
function writeAt(file: string, pieces: readonly (readonly [number, Uint8Array])[], size?: number): void {
  const fd = openSync(file, existsSync(file) ? "r+" : "w");
  try {
    for (const [off, data] of pieces) writeSync(fd, data, 0, data.length, off);
    if (size !== undefined) ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

function linkTarget(rng: Rng, n: number): string {
  let s = "";
  while (s.length < n) s += rng.chance(0.1) ? "/" : "abcdefghijklmnopqrstuvwxyz0123456789._-".charAt(rng.int(39));
  return s;
}

/**
 * Gives every inode under root a deterministic nanosecond mtime (touch -h), files first, then
 * directories from the deepest up, so setting one time never disturbs another.
 */
export function stampTimes(root: string, rng: Rng): void {
  const pool = Array.from({ length: 24 }, () => `${rng.range(1_000_000_000, 1_750_000_000)}.${String(rng.int(1_000_000_000)).padStart(9, "0")}`);
  const nonDirs = new Map<string, string[]>();
  const dirsByDepth: string[][] = [];
  const walk = (dir: string, depth: number): void => {
    (dirsByDepth[depth] ??= []).push(dir);
    for (const n of readdirSync(dir).sort()) {
      const f = path.join(dir, n);
      if (lstatSync(f).isDirectory()) walk(f, depth + 1);
      else {
        addTo(nonDirs, rng.pick(pool), f);
      }
    }
  };
  walk(root, 0);
  touchGroups(nonDirs);
  for (let d = dirsByDepth.length - 1; d >= 0; d--) {
    const g = new Map<string, string[]>();
    for (const dir of dirsByDepth[d] ?? []) addTo(g, rng.pick(pool), dir);
    touchGroups(g);
  }
}
