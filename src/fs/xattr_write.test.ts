/**
 * Extended attribute writes (xattr_write.ts) through the Volume API and the engine, on
 * volumes made by ext4ts's own mkfs (mke2fs 1.47.0 layouts) held in a MemoryDevice, so
 * these tests run without e2fsprogs. Where `e2fsck` is installed the images are also
 * checked with `e2fsck -fn` (skipped visibly otherwise, required under
 * EXT4TS_REQUIRE_ORACLES=1): it verifies block refcounts, entry and block hashes,
 * checksums and every inode's i_blocks.
 *
 * Kernel comparisons (getfattr/getfacl through a loop mount, error codes from the kernel)
 * are in test/oracle/xattr_write.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { Rng } from "../../test/oracle/trees.js";
import { mkfs } from "../../tools/mkfs/mkfs.js";
import { oracleAvailability, oracleGate, runUnchecked, tool } from "../../test/oracle/oracle_env.js";
import { Volume, XATTR_CREATE, XATTR_REPLACE } from "../api/promises.js";
import { MemoryDevice } from "../device/memory.js";
import { FsError } from "../errors.js";
import { ACL_GROUP, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER, ACL_USER, ACL_USER_OBJ, decodeExt4Acl, encodeVfsAcl, type AclEntry } from "../format/acl.js";
import { xattrBlockChecksum } from "../format/checksum.js";
import { S_IFMT, type Timespec } from "../format/inode.js";
import { freeBlocksCount, groupFirstBlock } from "../format/superblock.js";
import {
  EXT4_XATTR_INDEX_POSIX_ACL_ACCESS,
  EXT4_XATTR_INDEX_USER,
  EXT4_XATTR_MAGIC,
  EXT4_XATTR_REFCOUNT_MAX,
  compareXattrEntries,
  decodeIbodyXattrs,
  decodeXattrBlock,
  xattrBlockHash,
  xattrEntryHash,
  xattrHeader,
  xattrLen,
} from "../format/xattr.js";
import type { AllocRequest, BlockAllocator } from "./alloc_request.js";
import { engineDeps } from "./engine_deps.js";
import { withHandle } from "./handle.js";
import { iget, type Inode } from "./inode.js";
import { igetWritable } from "./inode_write.js";
import { resolvePath } from "./namei.js";
import type { Ext4Fs } from "./super.js";
import { XattrBlockIndex, aclEquivMode, checkXattrArgs, resolveXattrName, xattrBlockIndex, xattrSetHandle } from "./xattr_write.js";
import { outcome } from "../../test/outcome.js";

const e2fsckOracle = oracleAvailability(["e2fsck"]);
const te = new TextEncoder();
const td = new TextDecoder();

// ---------------------------------------------------------------------------------------------
// Volumes

interface Config {
  readonly name: string;
  readonly blockSize: "1024" | "4096";
  readonly inodeSize?: "128" | "256";
  readonly features?: string;
  readonly size: string;
}

const C4K: Config = { name: "4k", blockSize: "4096", size: "32M" };
const C1K: Config = { name: "1k", blockSize: "1024", size: "16M" };
const C128: Config = { name: "128", blockSize: "4096", inodeSize: "128", size: "32M" };
const CNOCSUM: Config = { name: "nocsum", blockSize: "4096", features: "^metadata_csum,^64bit", size: "32M" };

const work = mkdtempSync(path.join(tmpdir(), "ext4ts-xattr-write-"));
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

const images = new Map<string, Promise<Uint8Array>>();

function image(c: Config): Promise<Uint8Array> {
  let p = images.get(c.name);
  if (p === undefined) {
    p = (async () => {
      const file = path.join(work, `${c.name}.img`);
      await mkfs(file, {
        blockSize: c.blockSize,
        ...(c.inodeSize !== undefined ? { inodeSize: c.inodeSize } : {}),
        ...(c.features !== undefined ? { features: [c.features] } : {}),
        size: c.size,
        uuid: "6b1f7a54-0f4b-4a5e-9a8e-3c2d1e0f9a8b",
        extended: ["hash_seed=0b7c4f1e-2d3a-4b5c-8d9e-0f1a2b3c4d5e"],
        now: 1_700_000_000,
        quiet: true,
        force: true,
      });
      return new Uint8Array(readFileSync(file));
    })();
    images.set(c.name, p);
  }
  return p;
}

interface Mounted {
  vol: Volume;
  dev: MemoryDevice;
  fs: Ext4Fs;
  tick: () => Timespec;
}

async function mount(c: Config): Promise<Mounted> {
  const dev = MemoryDevice.from(await image(c));
  let t = 1_700_000_000;
  const tick = (): Timespec => ({ sec: ++t, nsec: 0 });
  const vol = await Volume.mount(dev, { readOnly: false, now: tick });
  return { vol, dev, fs: vol.fs, tick };
}

/** Unmount and mount the same bytes again (a new device: unmount closes the old one). */
async function remount(m: Mounted, opts: { uid?: number; gid?: number }): Promise<Mounted> {
  await m.vol.unmount();
  const dev = MemoryDevice.from(m.dev.toBytes());
  const vol = await Volume.mount(dev, { readOnly: false, now: m.tick, ...opts });
  return { vol, dev, fs: vol.fs, tick: m.tick };
}

let fsckRuns = 0;

/** Unmount and, where e2fsck exists, require `e2fsck -fn` to be clean. */
async function unmountChecked(m: Mounted): Promise<void> {
  await m.vol.unmount();
  if (!e2fsckOracle.ok) return;
  const file = path.join(work, `fsck-${fsckRuns++}.img`);
  writeFileSync(file, m.dev.toBytes());
  const r = runUnchecked(tool("e2fsck"), ["-fn", file]);
  rmSync(file, { force: true });
  expect(r.status, `e2fsck -fn exited ${r.status}:\n${r.stdout}${r.stderr}`).toBe(0);
}

const lstat = (m: Mounted, p: string): Promise<Inode> => resolvePath(m.fs, p, { followLast: false });

/** Deterministic test bytes. */
const bytes = (n: number, seed: number): Uint8Array => new Rng(seed).bytes(n);

/** The in-inode entries of `p`. */
async function ibody(m: Mounted, p: string): Promise<ReturnType<typeof decodeIbodyXattrs>> {
  const i = await lstat(m, p);
  return decodeIbodyXattrs(i.bytes.subarray(128 + i.raw.i_extra_isize, m.fs.inodeSize));
}

/** The external block of `p`: header and entries, after checking hashes and checksum. */
async function block(m: Mounted, p: string): Promise<{ pblk: number; refcount: number; entries: ReturnType<typeof decodeXattrBlock>["entries"] }> {
  const i = await lstat(m, p);
  expect(i.fileAcl, `${p} has an xattr block`).not.toBe(0);
  const data = await m.fs.cache.get(i.fileAcl);
  const d = decodeXattrBlock(data, { block: i.fileAcl });
  expect(d.h_magic).toBe(EXT4_XATTR_MAGIC);
  for (const e of d.entries) expect(e.e_hash, "entry hash").toBe(xattrEntryHash(e.name, e.value));
  expect(d.h_hash, "block hash").toBe(xattrBlockHash(d.entries.map((e) => e.e_hash)));
  for (let k = 1; k < d.entries.length; k++) expect(compareXattrEntries(d.entries[k - 1]!, d.entries[k]!), "sorted table").toBeLessThan(0);
  if (m.fs.features.metadataCsum) expect(d.h_checksum, "block checksum").toBe(xattrBlockChecksum(data, i.fileAcl, m.fs.blockSize, m.fs.csumSeed));
  return { pblk: i.fileAcl, refcount: d.h_refcount, entries: d.entries };
}

const names = (es: readonly { e_name_index: number; name: Uint8Array }[]): string[] => es.map((e) => `${e.e_name_index}:${td.decode(e.name)}`);

// ---------------------------------------------------------------------------------------------

describe("where values go: the inode body first, then one block", () => {
  oracleGate(e2fsckOracle, "e2fsck is available to check the images");

  it("puts a small value in the inode body: no block, i_blocks unchanged, ctime updated", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/f", "x");
    const before = await lstat(m, "/f");
    await m.vol.setxattr("/f", "user.small", "hello");
    const after = await lstat(m, "/f");
    expect(after.fileAcl).toBe(0);
    expect(after.blocks).toBe(before.blocks);
    expect(names(await ibody(m, "/f"))).toEqual(["1:small"]);
    expect(td.decode(await m.vol.getxattr("/f", "user.small"))).toBe("hello");
    expect(after.raw.i_ctime).toBeGreaterThan(before.raw.i_ctime);
    expect(m.fs.sb.s_feature_compat & 0x8).toBe(0x8);
    await unmountChecked(m);
  });

  it("puts a value too big for the body in the block, charged one block to i_blocks, sorted, hashed and checksummed", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/f", "x");
    const before = await lstat(m, "/f");
    const free0 = freeBlocksCount(m.fs.sb);
    await m.vol.setxattr("/f", "user.zz", bytes(300, 1));
    await m.vol.setxattr("/f", "trusted.a", bytes(200, 2));
    await m.vol.setxattr("/f", "user.b", bytes(100, 3));
    const after = await lstat(m, "/f");
    expect(after.blocks - before.blocks).toBe(4096 / 512);
    expect(freeBlocksCount(m.fs.sb)).toBe(free0 - 1);
    const b = await block(m, "/f");
    expect(b.refcount).toBe(1);
    expect(names(b.entries)).toEqual(["1:b", "1:zz", "4:a"]);
    // The goal: the first block of the inode's group (ext4_group_first_block_no); the block lands in that group.
    const group = Math.floor((after.ino - 1) / m.fs.inodesPerGroup);
    expect(Math.floor((b.pblk - m.fs.sb.s_first_data_block) / m.fs.blocksPerGroup)).toBe(group);
    expect(await m.vol.getxattr("/f", "user.zz")).toEqual(bytes(300, 1));
    expect((await m.vol.listxattr("/f")).sort()).toEqual(["trusted.a", "user.b", "user.zz"]);
    await unmountChecked(m);
  });

  it("moves an entry from the block to the body when its new value fits there, freeing the emptied block", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/f", "x");
    const free0 = freeBlocksCount(m.fs.sb);
    const blocks0 = (await lstat(m, "/f")).blocks;
    await m.vol.setxattr("/f", "user.v", bytes(500, 4));
    expect((await lstat(m, "/f")).fileAcl).not.toBe(0);
    await m.vol.setxattr("/f", "user.v", "tiny");
    const after = await lstat(m, "/f");
    expect(after.fileAcl).toBe(0);
    expect(after.blocks).toBe(blocks0);
    expect(freeBlocksCount(m.fs.sb)).toBe(free0);
    expect(names(await ibody(m, "/f"))).toEqual(["1:v"]);
    // And back: a value that no longer fits leaves the body for the block.
    await m.vol.setxattr("/f", "user.v", bytes(900, 5));
    expect(await ibody(m, "/f")).toEqual([]);
    expect(names((await block(m, "/f")).entries)).toEqual(["1:v"]);
    expect(await m.vol.getxattr("/f", "user.v")).toEqual(bytes(900, 5));
    await unmountChecked(m);
  });

  it("uses only the block on 128-byte inodes, and fills it exactly: one byte more is ENOSPC", async () => {
    const m = await mount(C128);
    await m.vol.writeFile("/f", "x");
    await m.vol.setxattr("/f", "user.a", "1");
    expect((await lstat(m, "/f")).fileAcl).not.toBe(0);
    await m.vol.removexattr("/f", "user.a");
    expect((await lstat(m, "/f")).fileAcl).toBe(0);
    // 4096 - 32 header - 4 terminator - entry of "user.v" (16 + 4)
    const max = 4096 - 32 - 4 - xattrLen(1);
    await m.vol.setxattr("/f", "user.v", bytes(max, 6));
    expect(await outcome(m.vol.setxattr("/f", "user.w", ""))).toBe("ENOSPC");
    expect(await outcome(m.vol.setxattr("/f", "user.v", bytes(max + 1, 6)))).toBe("ENOSPC");
    expect(await m.vol.getxattr("/f", "user.v")).toEqual(bytes(max, 6)); // unchanged by the failures
    await unmountChecked(m);
  });

  it("keeps the kernel's layout: same padded size rewrites in place, other sizes move below the others", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/f", "x");
    await m.vol.setxattr("/f", "user.a", "aaaa");
    await m.vol.setxattr("/f", "user.b", "bbbbbbbb");
    const offs = async (): Promise<number[]> => (await ibody(m, "/f")).map((e) => e.e_value_offs);
    const [a0, b0] = await offs();
    await m.vol.setxattr("/f", "user.a", "AAA"); // 3 pads to 4: same place
    expect(await offs()).toEqual([a0, b0]);
    await m.vol.setxattr("/f", "user.a", "AAAAA"); // 8: removed, compacted, written lowest
    const [a2, b2] = await offs();
    expect(b2).toBe(b0! + 4); // b moved up into a's old place
    expect(a2).toBe(b2! - 8);
    expect(names(await ibody(m, "/f"))).toEqual(["1:a", "1:b"]); // table order unchanged
    await unmountChecked(m);
  });
});

describe("flags and limits", () => {
  it("XATTR_CREATE gives EEXIST, XATTR_REPLACE and removing an absent name give ENODATA; both may be set", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/f", "x");
    expect(await outcome(m.vol.setxattr("/f", "user.a", "1", XATTR_REPLACE))).toBe("ENODATA");
    await m.vol.setxattr("/f", "user.a", "1", XATTR_CREATE);
    expect(await outcome(m.vol.setxattr("/f", "user.a", "2", XATTR_CREATE))).toBe("EEXIST");
    await m.vol.setxattr("/f", "user.a", "2", XATTR_REPLACE);
    expect(await outcome(m.vol.setxattr("/f", "user.a", "3", XATTR_CREATE | XATTR_REPLACE))).toBe("EEXIST");
    expect(await outcome(m.vol.setxattr("/f", "user.zz", "3", XATTR_CREATE | XATTR_REPLACE))).toBe("ENODATA");
    expect(await outcome(m.vol.setxattr("/f", "user.a", "3", 4))).toBe("EINVAL");
    expect(await outcome(m.vol.removexattr("/f", "user.nope"))).toBe("ENODATA");
    expect(td.decode(await m.vol.getxattr("/f", "user.a"))).toBe("2");
    await m.vol.removexattr("/f", "user.a");
    expect(await m.vol.listxattr("/f")).toEqual([]);
    await unmountChecked(m);
  });

  it("setting the value an attribute already has changes nothing, not even ctime", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/f", "x");
    await m.vol.setxattr("/f", "user.a", "same");
    const c0 = (await lstat(m, "/f")).raw.i_ctime;
    await m.vol.setxattr("/f", "user.a", "same");
    expect((await lstat(m, "/f")).raw.i_ctime).toBe(c0);
    await m.vol.setxattr("/f", "user.a", "diff");
    expect((await lstat(m, "/f")).raw.i_ctime).toBeGreaterThan(c0);
    await unmountChecked(m);
  });

  it("limits as Linux: ERANGE for names over 255 bytes or empty, E2BIG over 64 KiB, ENOSPC beyond the block, EINVAL for a bare prefix, EOPNOTSUPP for other namespaces", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/f", "x");
    await m.vol.setxattr("/f", `user.${"n".repeat(250)}`, "ok"); // 255 bytes in all
    expect(await outcome(m.vol.setxattr("/f", `user.${"n".repeat(251)}`, "x"))).toBe("ERANGE");
    expect(await outcome(m.vol.setxattr("/f", `user.${"é".repeat(126)}`, "x"))).toBe("ERANGE"); // 257 bytes of UTF-8
    expect(await outcome(m.vol.setxattr("/f", "", "x"))).toBe("ERANGE");
    expect(await outcome(m.vol.removexattr("/f", `user.${"n".repeat(251)}`))).toBe("ERANGE");
    expect(await outcome(m.vol.setxattr("/f", "user.big", new Uint8Array(65537)))).toBe("E2BIG");
    expect(await outcome(m.vol.setxattr("/f", "user.big", new Uint8Array(65536)))).toBe("ENOSPC");
    expect(await outcome(m.vol.setxattr("/f", "user.big", new Uint8Array(4096)))).toBe("ENOSPC");
    expect(await outcome(m.vol.setxattr("/f", "user.", "x"))).toBe("EINVAL");
    expect(await outcome(m.vol.setxattr("/f", "foo.bar", "x"))).toBe("EOPNOTSUPP");
    expect(await outcome(m.vol.setxattr("/f", "system.foo", "x"))).toBe("EOPNOTSUPP");
    expect(await outcome(m.vol.setxattr("/f", "system.posix_acl_accessX", "x"))).toBe("EOPNOTSUPP");
    // Argument errors come before the path lookup, as in Linux.
    expect(await outcome(m.vol.setxattr("/nope", `user.${"n".repeat(251)}`, "x"))).toBe("ERANGE");
    expect(await outcome(m.vol.setxattr("/nope", "user.a", new Uint8Array(65537)))).toBe("E2BIG");
    expect(await outcome(m.vol.setxattr("/nope", "user.a", "x"))).toBe("ENOENT");
    await m.vol.setxattr("/f", "user.empty", "");
    expect(await m.vol.getxattr("/f", "user.empty")).toEqual(new Uint8Array(0));
    await unmountChecked(m);
  });

  it("user.* only on regular files and directories (EPERM on a symlink); trusted.* and security.* anywhere; immutable inodes refuse", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/f", "x");
    await m.vol.symlink("f", "/l");
    expect(await outcome(m.vol.lsetxattr("/l", "user.a", "x"))).toBe("EPERM");
    await m.vol.lsetxattr("/l", "trusted.a", "on the link");
    await m.vol.lsetxattr("/l", "security.b", "on the link");
    await m.vol.setxattr("/l", "user.a", "through the link"); // follows to /f
    expect(td.decode(await m.vol.getxattr("/f", "user.a"))).toBe("through the link");
    expect((await m.vol.listxattr("/l")).sort()).toEqual(["security.b", "trusted.a"]);
    await m.vol.lremovexattr("/l", "trusted.a");
    expect(await m.vol.listxattr("/l")).toEqual(["security.b"]);
    await m.vol.mkdir("/d");
    await m.vol.setxattr("/d", "user.on-dir", "x");
    // An immutable inode (chattr +i): EPERM.
    await withHandle(m.fs, async (h) => {
      const { markInodeDirty } = await import("./inode_write.js");
      const i = await igetWritable(m.fs, (await lstat(m, "/f")).ino);
      i.raw.i_flags |= 0x10;
      await markInodeDirty(h, i);
    });
    expect(await outcome(m.vol.setxattr("/f", "user.b", "x"))).toBe("EPERM");
    expect(await outcome(m.vol.removexattr("/f", "user.a"))).toBe("EPERM");
    await unmountChecked(m);
  });

  it("argument checks and name resolution, as functions", () => {
    expect(() => checkXattrArgs("user.a", null, 3)).not.toThrow();
    expect(() => checkXattrArgs("user.a\0b", null, 0)).toThrow(expect.objectContaining({ code: "EINVAL" }) as Error);
    expect(resolveXattrName("system.posix_acl_default")).toEqual({ kind: "acl", type: "default" });
    expect(resolveXattrName("gnu.translator")).toMatchObject({ kind: "plain", index: 10 });
    expect(resolveXattrName("security.selinux")).toMatchObject({ kind: "plain", index: 6, name: te.encode("selinux") });
    expect(() => resolveXattrName("trusted.")).toThrow(expect.objectContaining({ code: "EINVAL" }) as Error);
  });
});

describe("block sharing (the kernel's mbcache)", () => {
  it("gives files with the same xattr set one block, charged to each inode; changing one un-shares only it; the last reference frees it", async () => {
    const m = await mount(C4K);
    const set = async (p: string): Promise<void> => {
      await m.vol.setxattr(p, "user.one", bytes(1500, 7));
      await m.vol.setxattr(p, "user.two", bytes(1400, 8));
    };
    const n = 20;
    const free0 = freeBlocksCount(m.fs.sb);
    for (let i = 0; i < n; i++) {
      await m.vol.writeFile(`/s${i}`, "");
      await set(`/s${i}`);
    }
    const b0 = await block(m, "/s0");
    expect(b0.refcount).toBe(n);
    for (let i = 0; i < n; i++) {
      const ino = await lstat(m, `/s${i}`);
      expect(ino.fileAcl).toBe(b0.pblk);
      expect(ino.blocks).toBe(4096 / 512); // empty file: the xattr block only
    }
    // One block in all: each later file builds its set in a block of its own, which is
    // freed when the set becomes identical to the shared one and the file joins it.
    expect(freeBlocksCount(m.fs.sb)).toBe(free0 - 1);
    // Change one: it gets its own copy, the others keep sharing.
    await m.vol.setxattr("/s3", "user.two", bytes(1400, 9));
    const b3 = await block(m, "/s3");
    expect(b3.pblk).not.toBe(b0.pblk);
    expect(b3.refcount).toBe(1);
    expect((await block(m, "/s0")).refcount).toBe(n - 1);
    expect(await m.vol.getxattr("/s0", "user.two")).toEqual(bytes(1400, 8));
    expect(await m.vol.getxattr("/s3", "user.two")).toEqual(bytes(1400, 9));
    // Changing it back shares again and frees the copy.
    await m.vol.setxattr("/s3", "user.two", bytes(1400, 8));
    expect((await lstat(m, "/s3")).fileAcl).toBe(b0.pblk);
    expect((await block(m, "/s0")).refcount).toBe(n);
    expect(freeBlocksCount(m.fs.sb)).toBe(free0 - 1);
    // Removing every xattr of one file drops its reference.
    await m.vol.removexattr("/s4", "user.one");
    await m.vol.removexattr("/s4", "user.two");
    expect((await lstat(m, "/s4")).fileAcl).toBe(0);
    expect((await lstat(m, "/s4")).blocks).toBe(0);
    expect((await block(m, "/s0")).refcount).toBe(n - 1);
    // Unlinking drops references (eviction releases through the same code); the last frees the block.
    for (let i = 0; i < n; i++) await m.vol.unlink(`/s${i}`);
    expect(freeBlocksCount(m.fs.sb)).toBe(free0);
    expect(xattrBlockIndex(m.fs).candidates(xattrHeader.decode(await m.fs.cache.get(b0.pblk)).h_hash)).not.toContain(b0.pblk);
    await unmountChecked(m);
  });

  it("shares up to EXT4_XATTR_REFCOUNT_MAX (1024) references, then starts a new block", async () => {
    const m = await mount(C4K);
    const value = bytes(3000, 11);
    const total = EXT4_XATTR_REFCOUNT_MAX + 3;
    await m.vol.mkdir("/cap");
    for (let i = 0; i < total; i++) {
      await m.vol.writeFile(`/cap/f${i}`, "");
      await m.vol.setxattr(`/cap/f${i}`, "user.big", value);
    }
    const first = await block(m, "/cap/f0");
    expect(first.refcount).toBe(EXT4_XATTR_REFCOUNT_MAX);
    expect((await lstat(m, `/cap/f${EXT4_XATTR_REFCOUNT_MAX - 1}`)).fileAcl).toBe(first.pblk);
    const second = await block(m, `/cap/f${EXT4_XATTR_REFCOUNT_MAX}`);
    expect(second.pblk).not.toBe(first.pblk);
    expect(second.refcount).toBe(3);
    // Dropping one reference makes the full block reusable again; the next file takes the newest candidate.
    await m.vol.removexattr("/cap/f0", "user.big");
    expect((await block(m, "/cap/f1")).refcount).toBe(EXT4_XATTR_REFCOUNT_MAX - 1);
    await m.vol.setxattr("/cap/f0", "user.big", value);
    expect((await block(m, "/cap/f0")).pblk).toBe(second.pblk);
    expect(second.refcount + 1).toBe((await block(m, "/cap/f0")).refcount);
    await unmountChecked(m);
  }, 120_000);

  it("shares with a block it only read (getxattr indexes it), and never with a block whose set differs", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/a", "");
    await m.vol.setxattr("/a", "user.v", bytes(2000, 12));
    const pa = (await lstat(m, "/a")).fileAcl;
    // A fresh mount has an empty index: reading /a's xattrs fills it.
    const m2 = await remount(m, {});
    expect(xattrBlockIndex(m2.fs).size).toBe(0);
    await m2.vol.getxattr("/a", "user.v");
    expect(xattrBlockIndex(m2.fs).size).toBe(1);
    await m2.vol.writeFile("/b", "");
    await m2.vol.setxattr("/b", "user.v", bytes(2000, 12));
    expect((await lstat(m2, "/b")).fileAcl).toBe(pa);
    await m2.vol.writeFile("/c", "");
    await m2.vol.setxattr("/c", "user.v", bytes(2000, 13)); // same name and size, other bytes
    expect((await lstat(m2, "/c")).fileAcl).not.toBe(pa);
    await m2.vol.setxattr("/c", "user.w", bytes(2000, 12)); // same value, other name
    expect((await block(m2, "/a")).refcount).toBe(2);
    await unmountChecked(m2);
  });

  it("keeps the index bounded, newest candidates first", () => {
    const ix = new XattrBlockIndex();
    ix.maxEntries = 8;
    for (let b = 1; b <= 20; b++) ix.insert(b % 3 === 0 ? 0xabc : b, 100 + b);
    expect(ix.size).toBe(8);
    expect(ix.candidates(0xabc)).toEqual([118, 115]); // 103..112 evicted
    ix.insert(0, 999); // hash 0: never shared, never indexed
    expect(ix.size).toBe(8);
    ix.touch(115);
    ix.insert(7, 200);
    expect(ix.candidates(0xabc)).toEqual([118, 115]);
    ix.remove(118);
    expect(ix.candidates(0xabc)).toEqual([115]);
  });
});

describe("corrupt metadata gives typed errors naming the inode or block", () => {
  /** A volume whose /f has an xattr block changed by `corrupt` (on the image bytes, volume unmounted). */
  async function withBlock(c: Config, corrupt: (data: Uint8Array, pblk: number, fs: Ext4Fs) => void): Promise<{ m: Mounted; pblk: number; ino: number }> {
    const m0 = await mount(c);
    await m0.vol.writeFile("/f", "");
    await m0.vol.setxattr("/f", "user.v", bytes(600, 1));
    const i = await lstat(m0, "/f");
    await m0.vol.unmount();
    const img = m0.dev.toBytes();
    corrupt(img.subarray(i.fileAcl * m0.fs.blockSize, (i.fileAcl + 1) * m0.fs.blockSize), i.fileAcl, m0.fs);
    const dev = MemoryDevice.from(img);
    const vol = await Volume.mount(dev, { readOnly: false, now: m0.tick });
    return { m: { vol, dev, fs: vol.fs, tick: m0.tick }, pblk: i.fileAcl, ino: i.ino };
  }

  it("a bad magic is EFSCORRUPTED, a bad checksum EFSBADCRC, and nothing changes", async () => {
    for (const [what, corrupt, want] of [
      ["magic", (d: Uint8Array) => d.fill(0, 0, 4), "EFSCORRUPTED"],
      ["h_blocks", (d: Uint8Array) => (d[8] = 2), "EFSCORRUPTED"],
      ["checksum", (d: Uint8Array) => (d[d.length - 1] = d[d.length - 1]! ^ 0xff), "EFSBADCRC"],
      ["entry table", (d: Uint8Array) => d.fill(0xff, 32, 48), "EFSCORRUPTED"],
    ] as const) {
      const { m, pblk, ino } = await withBlock(C4K, (d, blk, fs) => {
        corrupt(d);
        // Keep the checksum right unless the checksum is what is under test.
        if (what !== "checksum") xattrHeader.encode({ h_checksum: xattrBlockChecksum(d, blk, fs.blockSize, fs.csumSeed) }, d);
      });
      const before = (await lstat(m, "/f")).bytes.slice();
      let err: unknown = null;
      try {
        await m.vol.setxattr("/f", "user.w", bytes(700, 2));
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeInstanceOf(FsError);
      expect((err as FsError).code, what).toBe(want);
      expect((err as FsError).detail, what).toMatchObject({ ino, block: pblk });
      expect((await lstat(m, "/f")).bytes, what).toEqual(before);
    }
  });

  it("an i_file_acl outside the volume is EFSCORRUPTED", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/f", "");
    const ino = (await lstat(m, "/f")).ino;
    await withHandle(m.fs, async (h) => {
      const { markInodeDirty } = await import("./inode_write.js");
      const i = await igetWritable(m.fs, ino);
      i.raw.i_file_acl_lo = m.fs.blocksCount + 10;
      await markInodeDirty(h, i);
    });
    const err = await m.vol.setxattr("/f", "user.a", "b").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "EFSCORRUPTED", detail: { ino } });
  });

  it("an inode with i_extra_isize 0 has no in-inode area: even small values go to the block", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/f", "");
    const ino = (await lstat(m, "/f")).ino;
    await withHandle(m.fs, async (h) => {
      const { markInodeDirty } = await import("./inode_write.js");
      const i = await igetWritable(m.fs, ino);
      i.raw.i_extra_isize = 0;
      i.bytes.fill(0, 0x80, 0x82); // past the 128 bytes markInodeDirty writes for such an inode
      await markInodeDirty(h, i);
    });
    await m.vol.setxattr("/f", "user.a", "b");
    expect((await lstat(m, "/f")).fileAcl).not.toBe(0);
    expect(names((await block(m, "/f")).entries)).toEqual(["1:a"]);
  });
});

describe("funding and failure atomicity (the seed rule)", () => {
  /** The real allocator, recording every request it sees; `fail` makes it refuse with ENOSPC. */
  function recording(fs: Ext4Fs): { alloc: BlockAllocator; seen: AllocRequest[]; fail: { on: boolean } } {
    const real = engineDeps(fs, () => ({ sec: 0, nsec: 0 })).alloc;
    const seen: AllocRequest[] = [];
    const fail = { on: false };
    return {
      seen,
      fail,
      alloc: {
        alloc: (h, req) => {
          seen.push(req);
          if (fail.on) return Promise.reject(new FsError("ENOSPC", "No space left on device (test)"));
          return real.alloc(h, req);
        },
        free: (h, ino, pblk, count, dquots) => real.free(h, ino, pblk, count, dquots),
      },
    };
  }

  it("allocates the block with purpose xattrBlock, funding chargeNow/enforce fixed in a frozen request, goal the inode's group start", async () => {
    const m = await mount(C1K);
    await m.vol.mkdir("/deep/er", { recursive: true });
    await m.vol.writeFile("/deep/er/f", "");
    const ino = (await lstat(m, "/deep/er/f")).ino;
    const r = recording(m.fs);
    await withHandle(m.fs, async (h) => {
      const inode = await igetWritable(m.fs, ino);
      expect(await xattrSetHandle(h, { alloc: r.alloc, now: m.tick }, inode, EXT4_XATTR_INDEX_USER, te.encode("v"), bytes(700, 1), 0)).toBe(true);
    });
    expect(r.seen).toHaveLength(1);
    const req = r.seen[0]!;
    expect(req).toMatchObject({ ino, purpose: "xattrBlock", len: 1, minLen: 1, funding: { kind: "chargeNow", quota: "enforce" } });
    expect(req.goal).toBe(groupFirstBlock(m.fs.sb, Math.floor((ino - 1) / m.fs.inodesPerGroup)));
    expect(Object.isFrozen(req)).toBe(true);
    const after = await iget(m.fs, ino);
    expect(after.blocks).toBe(2); // one 1 KiB block, charged once
    await unmountChecked(m);
  });

  it("an allocation failure leaves the inode, its body, its block and the shared block's refcount as they were", async () => {
    const m = await mount(C4K);
    for (const f of ["/a", "/b"]) {
      await m.vol.writeFile(f, "");
      await m.vol.setxattr(f, "user.in", "body");
      await m.vol.setxattr(f, "user.big", bytes(2000, 3));
    }
    const shared = await block(m, "/a");
    expect(shared.refcount).toBe(2);
    const ino = (await lstat(m, "/b")).ino;
    const snap = (await iget(m.fs, ino)).bytes.slice();
    const blk = (await m.fs.cache.get(shared.pblk)).slice();
    const free0 = freeBlocksCount(m.fs.sb);
    const r = recording(m.fs);
    r.fail.on = true;
    // Un-sharing /b needs a new block (and moving "in" there would too): refused.
    for (const change of [
      { index: EXT4_XATTR_INDEX_USER, name: "big", value: bytes(2000, 4) },
      { index: EXT4_XATTR_INDEX_USER, name: "in", value: bytes(1000, 5) },
      { index: EXT4_XATTR_INDEX_USER, name: "new", value: bytes(100, 6) },
    ]) {
      const err = await outcome(
        withHandle(m.fs, async (h) => {
          const inode = await igetWritable(m.fs, ino);
          await xattrSetHandle(h, { alloc: r.alloc, now: m.tick }, inode, change.index, te.encode(change.name), change.value, 0);
        }),
      );
      expect(err).toBe("ENOSPC");
    }
    expect(r.seen.length).toBeGreaterThan(0);
    expect((await iget(m.fs, ino)).bytes).toEqual(snap);
    expect(await m.fs.cache.get(shared.pblk)).toEqual(blk);
    expect(freeBlocksCount(m.fs.sb)).toBe(free0);
    await unmountChecked(m);
  });

  it("serializes concurrent calls: the results equal some order of them and the accounting holds", async () => {
    const m = await mount(C4K);
    for (const f of ["/a", "/b", "/c"]) await m.vol.writeFile(f, "");
    const ops: Promise<void>[] = [];
    const last = new Map<string, Uint8Array>(); // the writer lock is FIFO: the last call wins
    for (let i = 0; i < 30; i++) {
      const f = ["/a", "/b", "/c"][i % 3]!;
      const v = bytes(600 + (i % 2), 100 + (i % 5));
      ops.push(m.vol.setxattr(f, `user.k${i % 4}`, v));
      last.set(`${f} user.k${i % 4}`, v);
    }
    await Promise.all(ops);
    for (const [k, v] of last) {
      const [f, n] = k.split(" ") as [string, string];
      expect(await m.vol.getxattr(f, n)).toEqual(v);
    }
    for (const f of ["/a", "/b", "/c"]) {
      const i = await lstat(m, f);
      expect(i.blocks).toBe(i.fileAcl === 0 ? 0 : 8);
    }
    await unmountChecked(m);
  });
});

describe("POSIX ACLs", () => {
  const acl = (...es: AclEntry[]): Uint8Array => encodeVfsAcl(es);
  const u = (perm: number, id?: number): AclEntry => (id === undefined ? { tag: ACL_USER_OBJ, perm } : { tag: ACL_USER, perm, id });
  const g = (perm: number, id?: number): AclEntry => (id === undefined ? { tag: ACL_GROUP_OBJ, perm } : { tag: ACL_GROUP, perm, id });
  const mask = (perm: number): AclEntry => ({ tag: ACL_MASK, perm });
  const o = (perm: number): AclEntry => ({ tag: ACL_OTHER, perm });

  it("aclEquivMode() takes the group bits from the mask and reports named entries as not equivalent", () => {
    expect(aclEquivMode([u(7), g(5), o(4)], 0o104000)).toEqual({ mode: 0o104754, equivalent: true });
    expect(aclEquivMode([u(6), u(7, 1000), g(4), mask(7), o(0)], 0o100644)).toEqual({ mode: 0o100670, equivalent: false });
  });

  it("an access ACL the mode expresses only changes the mode (and removes a stored one); a real one is stored in ext4's format with the mask as group bits", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/f", "x", { mode: 0o644 });
    await m.vol.setxattr("/f", "system.posix_acl_access", acl(u(7), g(5), o(1)));
    expect((await lstat(m, "/f")).mode & 0o7777).toBe(0o751);
    expect(await m.vol.listxattr("/f")).toEqual([]);
    const full = acl(u(6), u(7, 1000), g(4), g(2, 100), mask(6), o(4));
    await m.vol.setxattr("/f", "system.posix_acl_access", full);
    expect((await lstat(m, "/f")).mode & 0o7777).toBe(0o664);
    expect(await m.vol.getxattr("/f", "system.posix_acl_access")).toEqual(full);
    const stored = (await ibody(m, "/f")).find((e) => e.e_name_index === EXT4_XATTR_INDEX_POSIX_ACL_ACCESS)!;
    expect(stored.value[0]).toBe(1); // EXT4_ACL_VERSION
    expect(decodeExt4Acl(stored.value)).toEqual([u(6), u(7, 1000), g(4), g(2, 100), mask(6), o(4)]);
    // Back to an equivalent ACL: the stored one goes, the mode follows.
    await m.vol.setxattr("/f", "system.posix_acl_access", acl(u(6), g(4), o(4)));
    expect(await m.vol.listxattr("/f")).toEqual([]);
    expect((await lstat(m, "/f")).mode & 0o7777).toBe(0o644);
    // Flags do not apply to ACLs (Linux's vfs_set_acl takes none).
    await m.vol.setxattr("/f", "system.posix_acl_access", full, XATTR_REPLACE);
    await m.vol.setxattr("/f", "system.posix_acl_access", full, XATTR_CREATE);
    await unmountChecked(m);
  });

  it("default ACLs only on directories; removing absent ACLs succeeds; invalid ACLs are EINVAL; symlinks have none", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/f", "x");
    await m.vol.mkdir("/d");
    await m.vol.symlink("f", "/l");
    const def = acl(u(7), u(5, 1001), g(5), mask(7), o(0));
    await m.vol.setxattr("/d", "system.posix_acl_default", def);
    expect(await m.vol.getxattr("/d", "system.posix_acl_default")).toEqual(def);
    expect((await lstat(m, "/d")).mode & 0o777).toBe(0o755); // default ACLs leave the mode alone
    expect(await outcome(m.vol.setxattr("/f", "system.posix_acl_default", def))).toBe("EACCES");
    expect(await outcome(m.vol.removexattr("/f", "system.posix_acl_default"))).toBe("ok");
    expect(await outcome(m.vol.removexattr("/f", "system.posix_acl_access"))).toBe("ok");
    expect(await outcome(m.vol.setxattr("/f", "system.posix_acl_access", acl(u(7), u(7, 5), g(5), o(0))))).toBe("EINVAL"); // no mask
    expect(await outcome(m.vol.setxattr("/f", "system.posix_acl_access", new Uint8Array([2, 0, 0, 0, 1])))).toBe("EINVAL");
    expect(await outcome(m.vol.setxattr("/f", "system.posix_acl_access", new Uint8Array([1, 0, 0, 0])))).toBe("EOPNOTSUPP");
    expect(await outcome(m.vol.lsetxattr("/l", "system.posix_acl_access", acl(u(7), g(5), o(0))))).toBe("EOPNOTSUPP");
    // An empty value or a bare header means "no ACL": removal.
    await m.vol.setxattr("/d", "system.posix_acl_default", new Uint8Array([2, 0, 0, 0]));
    expect(await m.vol.listxattr("/d")).toEqual([]);
    await m.vol.removexattr("/d", "system.posix_acl_default");
    await unmountChecked(m);
  });

  it("drops setgid for a caller outside the file's group, keeps it for root; only the owner (or root) may set ACLs, only root trusted.*", async () => {
    const m = await mount(C4K);
    await m.vol.writeFile("/f", "x");
    await m.vol.writeFile("/g", "x");
    await m.vol.chown("/f", 1000, 1000);
    await m.vol.chmod("/f", 0o2755);
    await m.vol.chmod("/g", 0o2755);
    await m.vol.setxattr("/g", "system.posix_acl_access", acl(u(7), g(5), o(4)));
    expect((await lstat(m, "/g")).mode & 0o7777).toBe(0o2754); // root: kept
    const m2 = await remount(m, { uid: 1000, gid: 50 });
    await m2.vol.setxattr("/f", "system.posix_acl_access", acl(u(7), g(5), o(4)));
    expect((await lstat(m2, "/f")).mode & 0o7777).toBe(0o754); // not in group 1000: dropped
    expect(await outcome(m2.vol.setxattr("/g", "system.posix_acl_access", acl(u(7), g(5), o(5))))).toBe("EPERM"); // not the owner
    expect(await outcome(m2.vol.setxattr("/f", "trusted.x", "y"))).toBe("EPERM"); // no CAP_SYS_ADMIN
    await m2.vol.setxattr("/f", "security.x", "y");
    await unmountChecked(m2);
  });
});

describe("random set/remove sequences against a model", () => {
  for (const c of [C4K, C1K, C128, CNOCSUM]) {
    it(`keep listxattr/getxattr equal to the model and the image e2fsck-clean (${c.name})`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              file: fc.integer({ min: 0, max: 3 }),
              name: fc.constantFrom("user.a", "user.bb", "trusted.c", "security.d", "user.e"),
              size: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 100, max: 1200 })),
              seed: fc.integer({ min: 1, max: 3 }),
              remove: fc.boolean(),
            }),
            { minLength: 1, maxLength: 40 },
          ),
          async (ops) => {
            const m = await mount(c);
            const files = ["/f0", "/f1", "/f2", "/f3"];
            for (const f of files) await m.vol.writeFile(f, "");
            const model = files.map(() => new Map<string, Uint8Array>());
            for (const op of ops) {
              const f = files[op.file]!;
              const mm = model[op.file]!;
              if (op.remove) {
                const r = await outcome(m.vol.removexattr(f, op.name));
                expect(r).toBe(mm.has(op.name) ? "ok" : "ENODATA");
                mm.delete(op.name);
              } else {
                const v = bytes(op.size, op.seed);
                const r = await outcome(m.vol.setxattr(f, op.name, v));
                if (r === "ok") mm.set(op.name, v);
                else expect(r).toBe("ENOSPC");
              }
            }
            for (const [i, f] of files.entries()) {
              expect((await m.vol.listxattr(f)).sort()).toEqual([...model[i]!.keys()].sort());
              for (const [k, v] of model[i]!) expect(await m.vol.getxattr(f, k)).toEqual(v);
              const ino = await lstat(m, f);
              expect(ino.blocks, "i_blocks: the xattr block only").toBe(ino.fileAcl === 0 ? 0 : m.fs.blockSize / 512);
              expect(ino.mode & S_IFMT).toBe(0o100000);
            }
            await unmountChecked(m);
          },
        ),
        { numRuns: 12, seed: 4242 },
      );
    }, 120_000);
  }
});
