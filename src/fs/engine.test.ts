/**
 * The read engine (src/fs) through the public API, Volume (src/api/promises.ts).
 *
 *  1. Corruption (always runs): test/images/f_engine_small, a small mke2fs image, with chosen
 *     bytes changed (checksums fixed up where the test is about a structural check). Every
 *     failure must be an FsError EFSCORRUPTED / EFSBADCRC naming the inode or block, never a
 *     TypeError, RangeError or AssertionError, never a hang. Then a fast-check property: random
 *     byte mutations in metadata blocks, then a walk over the whole tree.
 *  2. Oracles (e2fsprogs): mke2fs -d images of one source tree in five flavours (ext4 4 KiB
 *     with metadata_csum, ext4 1 KiB with gdt_csum and 128-byte inodes, ext3, ext2, inline
 *     data): stat/readdir/readFile/readlink/listxattr/getxattr against `debugfs` and the
 *     source tree, and error codes against the host kernel resolving the same paths in the
 *     source tree (node:fs).
 *  3. Kernel-written structures (root, loop mounts): a 3000-entry htree directory (two levels
 *     on 1 KiB blocks), a depth-2 extent tree, unwritten and punched extents, a 9 MiB file,
 *     timestamps with epoch bits.
 */
import { createHash } from "node:crypto";
import {
  chmodSync, closeSync, ftruncateSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync,
  readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupImages, withLoopMount } from "../../test/oracle/images.js";
import { canLoopMount, isRoot, oracleAvailability, oracleGate, requireOrSkip, run, tool } from "../../test/oracle/oracle_env.js";
import { Rng } from "../../test/oracle/trees.js";
import { Volume } from "../api/promises.js";
import { FileDevice } from "../device/file.js";
import { MemoryDevice } from "../device/memory.js";
import { FsError } from "../errors.js";
import {
  dirBlockChecksum, dxBlockChecksum, extentBlockChecksum, groupDescChecksum, inodeChecksum, inodeChecksumSeed,
  inodeHasChecksumHi, superblockChecksum, xattrBlockChecksum,
} from "../format/checksum.js";
import { dirEntry, iterateDirEntries, recLenFromDisk } from "../format/dirent.js";
import { dirhash, isDxHashVersion } from "../format/dirhash.js";
import { extentHeader, extentTailOffset, decodeExtentNode } from "../format/extent.js";
import { groupDescLocation } from "../format/group_desc.js";
import { decodeDxRoot, dxCountLimit, dxTail } from "../format/htree.js";
import { EXT4_EXTENTS_FL, EXT4_INDEX_FL, EXT4_INLINE_DATA_FL, S_IFLNK, S_IFMT, decodeInode, inodeStruct } from "../format/inode.js";
import { SUPERBLOCK_OFFSET } from "../format/superblock.js";
import { xattrHeader } from "../format/xattr.js";
import { readDirEntries } from "./dir.js";
import { BAD_DX_DIR, dxFindEntry } from "./dir_index.js";
import { iget, inodeLocation } from "./inode.js";
import { mapBlocks } from "./read.js";
import type { Ext4Fs } from "./super.js";

const enc = new TextEncoder();
const dec = new TextDecoder();
const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** What an operation did: its value, or the thrown error's kind and code. */
type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

async function attempt(fn: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** The FsError `fn` rejects with; fails the test on success or any other error. */
async function fsError(fn: () => Promise<unknown>): Promise<FsError> {
  const r = await attempt(fn);
  if (r.ok) {
    const shown = r.value === undefined ? "undefined" : JSON.stringify(r.value, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)).slice(0, 200);
    throw new Error(`expected an FsError, got success: ${shown}`);
  }
  if (!(r.error instanceof FsError)) throw new Error(`expected an FsError, got ${String(r.error)}`, { cause: r.error });
  return r.error;
}

// =========================================================================================
// 1. Corruption, on the f_engine_small fixture

const FIXTURE = gunzipSync(readFileSync(new URL("../../test/images/f_engine_small/image.gz", import.meta.url)));

/** Where the fixture keeps each structure the tests corrupt (found once through the engine). */
interface FixtureMap {
  bs: number;
  isz: number;
  csumSeed: number;
  ino: Map<string, number>;
  /** Byte offset of an inode in the image. */
  inodeAt: Map<number, number>;
  /** /sparse: its depth-1 tree's leaf block. */
  sparseLeaf: number;
  /** First block of /dir, a linear directory. */
  dirBlock: number;
  /** Block 0 of /htree, the dx root. */
  htreeRoot: number;
  /** /xattr's external block. */
  xattrBlock: number;
  /** Byte offset of group descriptor 0. */
  groupDescAt: number;
}

let fx: FixtureMap | undefined;

async function fixtureMap(): Promise<FixtureMap> {
  if (fx !== undefined) return fx;
  const vol = await Volume.mount(MemoryDevice.from(FIXTURE));
  try {
    const fs = vol.fs;
    const ino = new Map<string, number>();
    const inodeAt = new Map<number, number>();
    for (const p of ["/", "/hello.txt", "/sparse", "/dir", "/dir/a.txt", "/htree", "/xattr", "/links/fast", "/links/slow", "/big"]) {
      const i = (await vol.lstat(p)).ino;
      ino.set(p, i);
      const loc = inodeLocation(fs, i);
      inodeAt.set(i, loc.block * fs.blockSize + loc.offset);
    }
    const sparse = await iget(fs, ino.get("/sparse")!);
    const root = decodeExtentNode(sparse.raw.i_block, 60, { isRoot: true, blocksCount: fs.blocksCount, firstDataBlock: fs.sb.s_first_data_block });
    if (!("indexes" in root)) throw new Error("fixture: /sparse should have a depth-1 extent tree");
    const first = async (p: string): Promise<number> => (await mapBlocks(fs, await iget(fs, ino.get(p)!), 0, 1)).pblk;
    const gd = groupDescLocation(fs.sb, 0);
    fx = {
      bs: fs.blockSize,
      isz: fs.inodeSize,
      csumSeed: fs.csumSeed,
      ino,
      inodeAt,
      sparseLeaf: root.indexes[0]!.pblk,
      dirBlock: await first("/dir"),
      htreeRoot: await first("/htree"),
      xattrBlock: (await iget(fs, ino.get("/xattr")!)).fileAcl,
      groupDescAt: gd.block * fs.blockSize + gd.offset,
    };
    return fx;
  } finally {
    await vol.unmount();
  }
}

/** Checksum fix-ups, so a test reaches the structural check behind the checksum. */
const fix = {
  inode(img: Uint8Array, m: FixtureMap, ino: number): void {
    const at = m.inodeAt.get(ino)!;
    const raw = decodeInode(img, at, m.isz);
    const c = inodeChecksum(img, at, m.isz, inodeChecksumSeed(m.csumSeed, ino, raw.i_generation));
    inodeStruct.encode({ l_i_checksum_lo: c & 0xffff }, img, at);
    if (inodeHasChecksumHi(img, at, m.isz)) inodeStruct.encode({ i_checksum_hi: c >>> 16 }, img, at, m.isz);
  },
  seedOf(img: Uint8Array, m: FixtureMap, ino: number): number {
    return inodeChecksumSeed(m.csumSeed, ino, decodeInode(img, m.inodeAt.get(ino)!, m.isz).i_generation);
  },
  dirBlock(img: Uint8Array, m: FixtureMap, pblk: number, ino: number): void {
    const b = img.subarray(pblk * m.bs, (pblk + 1) * m.bs);
    new DataView(b.buffer, b.byteOffset).setUint32(m.bs - 4, dirBlockChecksum(b, m.bs, fix.seedOf(img, m, ino)), true);
  },
  extentBlock(img: Uint8Array, m: FixtureMap, pblk: number, ino: number): void {
    const b = img.subarray(pblk * m.bs, (pblk + 1) * m.bs);
    const t = extentTailOffset(extentHeader.decode(b, 0));
    new DataView(b.buffer, b.byteOffset).setUint32(t, extentBlockChecksum(b, t, fix.seedOf(img, m, ino)), true);
  },
};

/** The fixture with `mutate` applied, mounted; `use` runs against it; always unmounted. */
async function withCorrupted<T>(mutate: (img: Uint8Array, m: FixtureMap) => void, use: (v: Volume) => Promise<T>): Promise<T> {
  const m = await fixtureMap();
  const img = new Uint8Array(FIXTURE);
  mutate(img, m);
  const vol = await Volume.mount(MemoryDevice.from(img));
  try {
    return await use(vol);
  } finally {
    await vol.unmount();
  }
}

function expectCorruption(e: FsError, code: "EFSCORRUPTED" | "EFSBADCRC", where: RegExp): void {
  expect(e.code).toBe(code);
  expect(e.message).toMatch(where);
}

describe("the fixture reads cleanly (baseline for the corruption tests)", () => {
  it("walks f_engine_small without errors", async () => {
    const vol = await Volume.mount(MemoryDevice.from(FIXTURE));
    try {
      const paths: string[] = [];
      for await (const e of vol.walk("/")) paths.push(e.path);
      expect(paths).toContain("/htree/entry-0119-with-a-longish-name-to-fill-blocks");
      expect(dec.decode(await vol.readFile("/links/slow"))).toBe("deep file\n");
      expect(await vol.readdir("/htree")).toHaveLength(120);
      expect((await vol.listxattr("/xattr")).sort()).toEqual(["user.big", "user.small"]);
      expect(vol.fs.warnings).toEqual([]);
    } finally {
      await vol.unmount();
    }
  });
});

describe("corrupt metadata gives a typed FsError naming the inode or block", { timeout: 10_000 }, () => {
  it("inode checksum: stat fails with EFSBADCRC naming the inode", async () => {
    const e = await withCorrupted(
      (img, m) => {
        img[m.inodeAt.get(m.ino.get("/hello.txt")!)! + 0x10]! ^= 0x01; // a bit of i_mtime
      },
      (v) => fsError(() => v.stat("/hello.txt")),
    );
    const m = await fixtureMap();
    expectCorruption(e, "EFSBADCRC", new RegExp(`inode ${m.ino.get("/hello.txt")!}\\b.*stat '/hello.txt'$`));
  });

  it("extent root magic: stat fails with EFSCORRUPTED naming the inode", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/sparse")!;
    const e = await withCorrupted(
      (img) => {
        img[m.inodeAt.get(ino)! + 0x28] = 0; // eh_magic low byte
        fix.inode(img, m, ino);
      },
      (v) => fsError(() => v.stat("/sparse")),
    );
    expectCorruption(e, "EFSCORRUPTED", new RegExp(`magic is 0xf300, expected 0xf30a \\(inode ${ino}\\)`));
  });

  it("eh_entries > eh_max in the root: EFSCORRUPTED", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/sparse")!;
    const e = await withCorrupted(
      (img) => {
        extentHeader.encode({ eh_entries: 5 }, img, m.inodeAt.get(ino)! + 0x28);
        fix.inode(img, m, ino);
      },
      (v) => fsError(() => v.stat("/sparse")),
    );
    expectCorruption(e, "EFSCORRUPTED", new RegExp(`eh_entries 5 exceeds eh_max 4 \\(inode ${ino}\\)`));
  });

  it("extent leaf magic: readFile fails with EFSCORRUPTED naming inode and block", async () => {
    const m = await fixtureMap();
    const e = await withCorrupted(
      (img) => {
        img[m.sparseLeaf * m.bs + 1] = 0x00;
      },
      (v) => fsError(() => v.readFile("/sparse")),
    );
    expectCorruption(e, "EFSCORRUPTED", new RegExp(`magic .*\\(inode ${m.ino.get("/sparse")!}, block ${m.sparseLeaf}\\), open '/sparse'$`));
  });

  it("extent leaf checksum: readFile fails with EFSBADCRC naming the block", async () => {
    const m = await fixtureMap();
    const e = await withCorrupted(
      (img) => {
        img[m.sparseLeaf * m.bs + 8]! ^= 0x01; // eh_generation: covered by the checksum only
      },
      (v) => fsError(() => v.readFile("/sparse")),
    );
    expectCorruption(e, "EFSBADCRC", new RegExp(`block ${m.sparseLeaf}\\)`));
  });

  it("directory rec_len not a multiple of 4: readdir and lookup fail with EFSCORRUPTED", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/dir")!;
    const mutate = (img: Uint8Array): void => {
      dirEntry.encode({ rec_len: 14 }, img, m.dirBlock * m.bs); // "." is 12
      fix.dirBlock(img, m, m.dirBlock, ino);
    };
    const e = await withCorrupted(mutate, (v) => fsError(() => v.readdir("/dir")));
    expectCorruption(e, "EFSCORRUPTED", new RegExp(`rec_len 14 is not a multiple of 4 \\(inode ${ino}, block ${m.dirBlock}\\), scandir '/dir'$`));
    const e2 = await withCorrupted(mutate, (v) => fsError(() => v.stat("/dir/a.txt")));
    expectCorruption(e2, "EFSCORRUPTED", /not a multiple of 4/);
  });

  it("directory rec_len overrunning the block: EFSCORRUPTED", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/dir")!;
    const e = await withCorrupted(
      (img) => {
        const b = img.subarray(m.dirBlock * m.bs, (m.dirBlock + 1) * m.bs);
        let off = 0;
        for (;;) {
          const len = recLenFromDisk(dirEntry.decode(b, off).rec_len, m.bs);
          if (off + len >= m.bs - 12) break;
          off += len;
        }
        const last = dirEntry.decode(b, off);
        dirEntry.encode({ rec_len: last.rec_len + 16 }, b, off);
        fix.dirBlock(img, m, m.dirBlock, ino);
      },
      (v) => fsError(() => v.readdir("/dir")),
    );
    expectCorruption(e, "EFSCORRUPTED", new RegExp(`overruns the block \\(inode ${ino}, block ${m.dirBlock}\\)`));
  });

  it("directory block checksum: EFSBADCRC", async () => {
    const m = await fixtureMap();
    const e = await withCorrupted(
      (img) => {
        img[m.dirBlock * m.bs + 20]! ^= 0x04; // a byte of a name
      },
      (v) => fsError(() => v.readdir("/dir")),
    );
    expectCorruption(e, "EFSBADCRC", new RegExp(`block ${m.dirBlock}\\), scandir '/dir'$`));
  });

  it("dx root limit wrong but checksummed: lookups fall back to a linear scan (dx_probe: ERR_BAD_DX_DIR)", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/htree")!;
    const name = "/htree/entry-0077-with-a-longish-name-to-fill-blocks";
    const want = await withCorrupted(() => undefined, async (v) => (await v.stat(name)).ino);
    const got = await withCorrupted(
      (img) => {
        const b = img.subarray(m.htreeRoot * m.bs, (m.htreeRoot + 1) * m.bs);
        const cl = dxCountLimit.decode(b, 0x20);
        dxCountLimit.encode({ limit: 100 }, b, 0x20);
        // ext4_dx_csum_verify finds the tail after the on-disk limit: put a valid one there.
        const tail = 0x20 + 100 * 8;
        dxTail.encode({ dt_reserved: 0, dt_checksum: 0 }, b, tail);
        dxTail.encode({ dt_checksum: dxBlockChecksum(b, 0x20, cl.count, tail, fix.seedOf(img, m, ino)) }, b, tail);
      },
      async (v) => {
        expect(await v.readdir("/htree")).toHaveLength(120);
        return (await v.stat(name)).ino;
      },
    );
    expect(got).toBe(want);
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/fs/dir_index.ts:55-61 (dxFindEntry) and src/fs/dir.ts:113-115 (readDirEntries) decode
  // the dx root before verifying its checksum, and treat any decode failure as "not an index"
  // (BAD_DX_DIR / skipped), so a root whose checksum is wrong is never checked at all. The kernel
  // reads block 0 with ext4_read_dirblock(dir, 0, INDEX), whose ext4_dx_csum_verify uses the
  // on-disk limit to find the tail and fails with EFSBADCRC ("Directory index failed checksum")
  // before dx_probe looks at the limit (fs/ext4/namei.c __ext4_read_dirblock, get_dx_countlimit).
  it("dx root limit wrong: lookup fails with EFSBADCRC as the kernel's ext4_dx_csum_verify reports", async () => {
    const m = await fixtureMap();
    const e = await withCorrupted(
      (img) => {
        dxCountLimit.encode({ limit: 100 }, img, m.htreeRoot * m.bs + 0x20);
      },
      (v) => fsError(() => v.stat("/htree/entry-0077-with-a-longish-name-to-fill-blocks")),
    );
    expectCorruption(e, "EFSBADCRC", new RegExp(`block ${m.htreeRoot}\\)`));
  });

  it("dx root entry checksum: EFSBADCRC", async () => {
    const m = await fixtureMap();
    const e = await withCorrupted(
      (img) => {
        img[m.htreeRoot * m.bs + 0x28]! ^= 0x10; // hash of dx entry 1
      },
      (v) => fsError(() => v.stat("/htree/entry-0077-with-a-longish-name-to-fill-blocks")),
    );
    expectCorruption(e, "EFSBADCRC", new RegExp(`block ${m.htreeRoot}\\)`));
  });

  it("xattr block magic: listxattr fails with EFSCORRUPTED naming the block", async () => {
    const m = await fixtureMap();
    const e = await withCorrupted(
      (img) => {
        xattrHeader.encode({ h_magic: 0xea020001 }, img, m.xattrBlock * m.bs);
      },
      (v) => fsError(() => v.listxattr("/xattr")),
    );
    expectCorruption(e, "EFSCORRUPTED", new RegExp(`h_magic is 0xea020001.*block ${m.xattrBlock}\\), llistxattr '/xattr'$`));
  });

  it("xattr block checksum: EFSBADCRC", async () => {
    const m = await fixtureMap();
    const e = await withCorrupted(
      (img) => {
        img[(m.xattrBlock + 1) * m.bs - 1]! ^= 1;
      },
      (v) => fsError(() => v.getxattr("/xattr", "user.big")),
    );
    expectCorruption(e, "EFSBADCRC", new RegExp(`block ${m.xattrBlock}\\)`));
  });

  it("group descriptor inode table out of range: mount fails with EFSCORRUPTED", async () => {
    const m = await fixtureMap();
    const img = new Uint8Array(FIXTURE);
    new DataView(img.buffer).setUint32(m.groupDescAt + 0x8, 0x7fffff00, true); // bg_inode_table_lo
    const e = await fsError(() => Volume.mount(MemoryDevice.from(img)));
    expectCorruption(e, "EFSCORRUPTED", /Group descriptor 0: inode table at \d+ not in group \(block 2\)/);
  });

  it("group descriptor checksum: tolerated on a read-only mount with a warning, as the kernel does", async () => {
    const m = await fixtureMap();
    const img = new Uint8Array(FIXTURE);
    img[m.groupDescAt + 0x1e]! ^= 0xff;
    const vol = await Volume.mount(MemoryDevice.from(img));
    try {
      expect(vol.fs.warnings.join("\n")).toMatch(/Group descriptor 0 checksum/);
      expect(dec.decode(await vol.readFile("/hello.txt"))).toBe("hello, world\n");
    } finally {
      await vol.unmount();
    }
  });

  it("superblock checksum: mount fails with EFSBADCRC", async () => {
    const img = new Uint8Array(FIXTURE);
    img[SUPERBLOCK_OFFSET + 0x3fc]! ^= 1;
    const e = await fsError(() => Volume.mount(MemoryDevice.from(img)));
    expectCorruption(e, "EFSBADCRC", /Superblock checksum .* \(block 1\)$/);
    const fixed = new Uint8Array(FIXTURE);
    fixed[SUPERBLOCK_OFFSET + 0x78]! ^= 1; // s_volume_name
    expectCorruption(await fsError(() => Volume.mount(MemoryDevice.from(fixed))), "EFSBADCRC", /Superblock checksum/);
  });

  it("a directory entry with an inode number past s_inodes_count: EFSCORRUPTED", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/dir")!;
    const e = await withCorrupted(
      (img) => {
        const b = img.subarray(m.dirBlock * m.bs, (m.dirBlock + 1) * m.bs);
        dirEntry.encode({ inode: 1_000_000 }, b, 24); // the entry after "." and ".."
        fix.dirBlock(img, m, m.dirBlock, ino);
      },
      (v) => fsError(() => v.readdir("/dir")),
    );
    expectCorruption(e, "EFSCORRUPTED", /inode 1000000 out of bounds/);
  });

  it("a symlink loop gives ELOOP, and a slow symlink resolves", async () => {
    await withCorrupted(
      () => undefined,
      async (v) => {
        const e = await fsError(() => v.stat("/links/loop-a"));
        expect(e.code).toBe("ELOOP");
        expect(e.message).toBe("ELOOP: Too many levels of symbolic links, stat '/links/loop-a'");
        expect(await v.readlink("/links/loop-a")).toBe("loop-b");
        expect((await v.stat("/links/slow")).size).toBe(10);
      },
    );
  });

  it("follows a hash continued into the next leaf only when the continuation bit's hash matches (ext4_htree_next_block)", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/htree")!;
    // In leaf 2 of /htree, the name with the smallest hash H: give index entry 2 the hash H | 1,
    // as a collision spilling over from leaf 1 would. Probing for H now lands in leaf 1.
    const plan = await withCorrupted(
      () => undefined,
      async (v) => {
        const fs = v.fs;
        const dir = await iget(fs, ino);
        const root = decodeDxRoot(await fs.cache.get(m.htreeRoot), m.bs, true);
        const version = root.hashVersion + fs.hashUnsignedDelta;
        if (!isDxHashVersion(version)) throw new Error(`unexpected hash version ${version}`);
        const leaf = await fs.cache.get((await mapBlocks(fs, dir, root.entries[2]!.block, 1)).pblk);
        let best: { name: string; ino: number; hash: number } | undefined;
        for (const e of iterateDirEntries(leaf, 0, m.bs - 12, m.bs, fs.inodesCount)) {
          const { hash } = dirhash(e.name, version, fs.hashSeed);
          if (best === undefined || hash < best.hash) best = { name: dec.decode(e.name), ino: e.inode, hash };
        }
        if (best === undefined) throw new Error("leaf 2 of /htree is empty");
        return { ...best, count: root.count, limit: root.limit, above: root.entries[3]?.hash ?? 0xffffffff };
      },
    );
    expect(plan.hash | 1).toBeLessThan(plan.above);
    const withEntry2Hash = (hash: number) => (img: Uint8Array): void => {
      const b = img.subarray(m.htreeRoot * m.bs, (m.htreeRoot + 1) * m.bs);
      new DataView(b.buffer, b.byteOffset).setUint32(0x20 + 2 * 8, hash, true);
      const tail = 0x20 + plan.limit * 8;
      dxTail.encode({ dt_checksum: dxBlockChecksum(b, 0x20, plan.count, tail, fix.seedOf(img, m, ino)) }, b, tail);
    };
    const lookup = async (v: Volume): Promise<unknown> => dxFindEntry(v.fs, await iget(v.fs, ino), enc.encode(plan.name));
    expect(await withCorrupted(withEntry2Hash((plan.hash | 1) >>> 0), lookup)).toBe(plan.ino);
    expect(await withCorrupted(withEntry2Hash((plan.hash | 1) >>> 0), async (v) => (await v.stat(`/htree/${plan.name}`)).ino)).toBe(plan.ino);
    // A continuation of another hash: the search stops after leaf 1, as the kernel's does.
    expect(await withCorrupted(withEntry2Hash(((plan.hash + 2) | 1) >>> 0), lookup)).toBeNull();
  });

  // --- Known bugs, demonstrated on the fixture ---------------------------------------------

  // Regression test (the engine got this wrong before; references are to the code of that time): src/fs/inode.ts:155-156 (checkInode) calls inodeSize64 -> join64 (format/struct.ts:194),
  // which throws AssertionError when i_size_high makes the size exceed 2^53; the
  // `size > Number.MAX_SAFE_INTEGER` check after it is dead code. The kernel reports a negative
  // loff_t as "iget: bad i_size value" (EFSCORRUPTED) in __ext4_iget; sizes beyond 2^53 need an
  // EFSCORRUPTED (or EFBIG) FsError here, not an AssertionError.
  it("an i_size_high of 0xffffffff is EFSCORRUPTED, not an AssertionError", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/hello.txt")!;
    const e = await withCorrupted(
      (img) => {
        inodeStruct.encode({ i_size_high: 0xffffffff }, img, m.inodeAt.get(ino));
        fix.inode(img, m, ino);
      },
      (v) => fsError(() => v.stat("/hello.txt")),
    );
    expectCorruption(e, "EFSCORRUPTED", new RegExp(`inode ${ino}`));
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/fs/read.ts:29 (readRange) allocates `new Uint8Array(end - pos)` for the whole
  // request, so readFile() of a (sparse or corrupt) file of 1 TiB throws RangeError "Invalid typed
  // array length". The kernel reads such a file fine (holes are zeros); an API that returns one
  // buffer should refuse with an FsError (e.g. EFBIG, as Node's ERR_FS_FILE_TOO_LARGE refuses
  // > 2 GiB) before allocating.
  it("readFile() of a 1 TiB file fails with an FsError, not a RangeError", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/hello.txt")!;
    const e = await withCorrupted(
      (img) => {
        inodeStruct.encode({ i_size_high: 0x100 }, img, m.inodeAt.get(ino));
        fix.inode(img, m, ino);
      },
      (v) => fsError(() => v.readFile("/hello.txt")),
    );
    expect(e.code).toMatch(/^(EFBIG|EFSCORRUPTED|ERANGE|ENOMEM)$/);
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/fs/namei.ts:65-67 (resolvePath) follows a directory entry to any inode in
  // 1..s_inodes_count. ext4_lookup (fs/ext4/namei.c) first checks ext4_valid_inum(): only
  // EXT4_ROOT_INO or >= s_first_ino; an entry naming a reserved inode (here 7, the resize inode)
  // is "bad inode number" EFSCORRUPTED. Fix: reject ino < s_first_ino && ino != 2 in lookup().
  it("a directory entry naming a reserved inode (7) is EFSCORRUPTED (ext4_valid_inum)", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/dir")!;
    const e = await withCorrupted(
      (img) => {
        const b = img.subarray(m.dirBlock * m.bs, (m.dirBlock + 1) * m.bs);
        let off = 0;
        for (;;) {
          const d = dirEntry.decode(b, off);
          if (dec.decode(b.subarray(off + 8, off + 8 + d.name_len)) === "a.txt") break;
          off += recLenFromDisk(d.rec_len, m.bs);
        }
        dirEntry.encode({ inode: 7 }, b, off);
        fix.dirBlock(img, m, m.dirBlock, ino);
      },
      (v) => fsError(() => v.stat("/dir/a.txt")),
    );
    expect(e.code).toBe("EFSCORRUPTED");
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): same place: ext4_lookup also rejects an entry naming the directory itself
  // ("'%pd' linked to parent dir", EFSCORRUPTED); resolvePath returns the directory.
  it("a directory entry naming its own directory is EFSCORRUPTED", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/dir")!;
    const e = await withCorrupted(
      (img) => {
        const b = img.subarray(m.dirBlock * m.bs, (m.dirBlock + 1) * m.bs);
        dirEntry.encode({ inode: ino, file_type: 2 }, b, 24);
        fix.dirBlock(img, m, m.dirBlock, ino);
      },
      async (v) => {
        const name = (await v.readdir("/dir"))[0]!;
        return fsError(() => v.stat(`/dir/${name}`));
      },
    );
    expect(e.code).toBe("EFSCORRUPTED");
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/format/extent.ts:88-91 (decodeExtentNode) / src/fs/extents.ts:58: an extent root with depth > 0 and
  // eh_entries 0 is accepted and the file reads as one big hole. __ext4_ext_check rejects it
  // ("eh_entries is 0 but eh_depth is > 0"), so __ext4_iget fails with EFSCORRUPTED.
  it("an extent index root with no entries is EFSCORRUPTED", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/sparse")!;
    const e = await withCorrupted(
      (img) => {
        extentHeader.encode({ eh_entries: 0 }, img, m.inodeAt.get(ino)! + 0x28);
        fix.inode(img, m, ino);
      },
      (v) => fsError(() => v.readFile("/sparse")),
    );
    expect(e.code).toBe("EFSCORRUPTED");
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/fs/symlink.ts:23-31 (readLink) accepts a fast symlink whose i_block[i_size] is not
  // NUL. __ext4_iget checks strnlen(i_data, i_size + 1) == i_size ("invalid fast symlink length",
  // EFSCORRUPTED), i.e. the terminator must be there too; the check also belongs in iget (stat
  // of such a link fails in the kernel), not only in readlink.
  it("a fast symlink without its NUL terminator is EFSCORRUPTED", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/links/fast")!;
    const e = await withCorrupted(
      (img) => {
        img[m.inodeAt.get(ino)! + 0x28 + "../hello.txt".length] = 0x78;
        fix.inode(img, m, ino);
      },
      (v) => fsError(() => v.readlink("/links/fast")),
    );
    expect(e.code).toBe("EFSCORRUPTED");
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/fs/symlink.ts:33-38 (readLink): a slow symlink whose block 0 is a hole reads as the empty
  // target "" (readRange gives zeros, then the NUL cut). ext4_get_link reads block 0 with
  // ext4_bread and reports a missing block as "bad symlink." (EFSCORRUPTED).
  it("a slow symlink whose block is a hole is EFSCORRUPTED", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/links/slow")!;
    const e = await withCorrupted(
      (img) => {
        extentHeader.encode({ eh_entries: 0 }, img, m.inodeAt.get(ino)! + 0x28);
        fix.inode(img, m, ino);
      },
      (v) => fsError(() => v.readlink("/links/slow")),
    );
    expect(e.code).toBe("EFSCORRUPTED");
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/format/extent.ts:93 (decodeExtentNode, inRange) accepts any pblk > 0, so on a
  // 1 KiB-block volume an extent may map block 1, the superblock, and the file reads it as data.
  // ext4_valid_extent -> ext4_inode_block_valid -> ext4_sb_block_valid (fs/ext4/block_validity.c)
  // rejects start_blk <= s_first_data_block (and, with the system zone, any overlap with group
  // metadata). Fix: pass s_first_data_block and test pblk > s_first_data_block, like
  // Ext4Fs.blockRangeValid already does.
  it("an extent mapping block 1 (the superblock, s_first_data_block) is EFSCORRUPTED", async () => {
    const m = await fixtureMap();
    const e = await withCorrupted(
      (img) => {
        const b = img.subarray(m.sparseLeaf * m.bs, (m.sparseLeaf + 1) * m.bs);
        const dv = new DataView(b.buffer, b.byteOffset);
        dv.setUint16(12 + 6, 0, true); // ee_start_hi
        dv.setUint32(12 + 8, 1, true); // ee_start_lo
        fix.extentBlock(img, m, m.sparseLeaf, m.ino.get("/sparse")!);
      },
      (v) => fsError(() => v.readFile("/sparse")),
    );
    expect(e.code).toBe("EFSCORRUPTED");
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/fs/extents.ts:26-33 (readExtentNode) / src/format/extent.ts:111-121 never compare a
  // child node's first key with the index entry that led to it. ext4_valid_extent_entries
  // (fs/ext4/extents.c) requires "the logical block in the first entry should equal to the
  // number in the index block" (depth != ext_depth(inode) && lblk != first key -> EFSCORRUPTED),
  // so a stale or corrupt index is caught; here the lookup just proceeds. Fix: pass the index's
  // ei_block down as the expected first key of the child.
  it("an index entry whose key differs from its child's first extent is EFSCORRUPTED", async () => {
    const m = await fixtureMap();
    const ino = m.ino.get("/sparse")!;
    const e = await withCorrupted(
      (img) => {
        new DataView(img.buffer).setUint32(m.inodeAt.get(ino)! + 0x28 + 12, 1, true); // ei_block of index 0: 0 -> 1
        fix.inode(img, m, ino);
      },
      (v) => fsError(() => v.readFile("/sparse")),
    );
    expect(e.code).toBe("EFSCORRUPTED");
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/fs/xattr.ts:27-33 (blockXattrs) decodes and checks the entries before the
  // checksum, so a block whose checksum is wrong and whose entries are broken is reported as
  // EFSCORRUPTED. __ext4_xattr_check_block (fs/ext4/xattr.c) checks magic and h_blocks, then the
  // checksum (EFSBADCRC), and only then ext4_xattr_check_entries. Fix: verify h_checksum right
  // after magic/h_blocks.
  it("an xattr block with a bad checksum is EFSBADCRC even when its entries are broken too", async () => {
    const m = await fixtureMap();
    const e = await withCorrupted(
      (img) => {
        new DataView(img.buffer).setUint16(m.xattrBlock * m.bs + 0x20 + 2, 0xfff0, true); // e_value_offs of entry 0
      },
      (v) => fsError(() => v.listxattr("/xattr")),
    );
    expectCorruption(e, "EFSBADCRC", new RegExp(`block ${m.xattrBlock}\\)`));
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/fs/super.ts:144 and 158-166 (Ext4Fs.mount) runs validateSuperblock before the superblock
  // checksum, so a corrupt checksummed superblock is reported as EFSCORRUPTED "Bad superblock".
  // The kernel verifies the checksum in ext4_init_metadata_csum right after ext4_load_super
  // (magic, block size) and before the geometry checks: EFSBADCRC. Fix: check the checksum
  // (and s_checksum_type) before validateSuperblock.
  it("a superblock with a bad checksum and a bad s_inodes_per_group is EFSBADCRC", async () => {
    const img = new Uint8Array(FIXTURE);
    new DataView(img.buffer).setUint32(SUPERBLOCK_OFFSET + 0x28, 0, true); // s_inodes_per_group
    const e = await fsError(() => Volume.mount(MemoryDevice.from(img)));
    expect(e.code).toBe("EFSBADCRC");
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/fs/namei.ts:47 (resolvePath) has no PATH_MAX: Linux's getname() refuses a path of
  // 4096 bytes or more with ENAMETOOLONG before any lookup (fs/namei.c, strncpy_from_user).
  it("a path of 4096 bytes or more is ENAMETOOLONG", async () => {
    await withCorrupted(
      () => undefined,
      async (v) => {
        const e = await fsError(() => v.stat(`/${"./".repeat(2048)}hello.txt`));
        expect(e.code).toBe("ENAMETOOLONG");
      },
    );
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/fs/namei.ts:80-82 (splitPath) drops empty components, so "/hello.txt/" resolves to
  // the file. In Linux a trailing slash makes the last component a directory lookup
  // (LOOKUP_DIRECTORY): stat("/hello.txt/") is ENOTDIR (checked against the host below).
  it("stat of a regular file with a trailing slash is ENOTDIR", async () => {
    await withCorrupted(
      () => undefined,
      async (v) => {
        const e = await fsError(() => v.stat("/hello.txt/"));
        expect(e.code).toBe("ENOTDIR");
      },
    );
  });
});

// -----------------------------------------------------------------------------------------
// Mutation property

/** Blocks of the fixture holding metadata the engine reads, with what they are. */
interface MetaBlock {
  pblk: number;
  kind: "sb" | "gdt" | "itable" | "dir" | "dx" | "extent" | "xattr";
  ino?: number;
}

async function fixtureMetaBlocks(): Promise<MetaBlock[]> {
  const vol = await Volume.mount(MemoryDevice.from(FIXTURE));
  try {
    const fs = vol.fs;
    const out = new Map<number, MetaBlock>();
    out.set(1, { pblk: 1, kind: "sb" });
    out.set(2, { pblk: 2, kind: "gdt" });
    for await (const e of vol.walk("/")) {
      const ino = e.inode;
      out.set(inodeLocation(fs, ino.ino).block, { pblk: inodeLocation(fs, ino.ino).block, kind: "itable" });
      if (ino.fileAcl !== 0) out.set(ino.fileAcl, { pblk: ino.fileAcl, kind: "xattr", ino: ino.ino });
      if (ino.flags & EXT4_EXTENTS_FL && !((ino.mode & S_IFMT) === S_IFLNK && ino.blocks === 0)) {
        const root = decodeExtentNode(ino.raw.i_block, 60, { isRoot: true, blocksCount: fs.blocksCount, firstDataBlock: fs.sb.s_first_data_block });
        if ("indexes" in root) for (const x of root.indexes) out.set(x.pblk, { pblk: x.pblk, kind: "extent", ino: ino.ino });
      }
      if (e.stats.isDirectory() && ino.size > 0 && !(ino.flags & EXT4_INLINE_DATA_FL)) {
        for (let lblk = 0; lblk * fs.blockSize < ino.size; lblk++) {
          const r = await mapBlocks(fs, ino, lblk, 1);
          const kind = ino.flags & EXT4_INDEX_FL && lblk === 0 ? "dx" : "dir";
          out.set(r.pblk, { pblk: r.pblk, kind, ino: ino.ino });
        }
      }
    }
    return [...out.values()].sort((a, b) => a.pblk - b.pblk);
  } finally {
    await vol.unmount();
  }
}

/** Recomputes the checksum of a mutated block, so the mutation reaches the structural checks. */
function refreshChecksum(img: Uint8Array, fs: Ext4Fs, b: MetaBlock): void {
  const bs = fs.blockSize;
  const blk = img.subarray(b.pblk * bs, (b.pblk + 1) * bs);
  const dv = new DataView(blk.buffer, blk.byteOffset, bs);
  const inoSeed = (ino: number): number => {
    const loc = inodeLocation(fs, ino);
    return inodeChecksumSeed(fs.csumSeed, ino, decodeInode(img, loc.block * bs + loc.offset, fs.inodeSize).i_generation);
  };
  try {
    switch (b.kind) {
      case "sb": {
        const sb = img.subarray(SUPERBLOCK_OFFSET, SUPERBLOCK_OFFSET + 1024);
        new DataView(sb.buffer, sb.byteOffset).setUint32(0x3fc, superblockChecksum(sb), true);
        return;
      }
      case "gdt": {
        const ds = fs.descSize;
        const o = { csumSeed: fs.csumSeed, uuid: fs.sb.s_uuid, metadataCsum: true, gdtCsum: false, descSize: ds, is64bit: fs.features.is64bit };
        dv.setUint16(0x1e, groupDescChecksum(blk.subarray(0, ds), 0, o), true);
        return;
      }
      case "itable": {
        for (let off = 0; off < bs; off += fs.inodeSize) {
          const ino = ((b.pblk - inodeLocation(fs, 1).block) * bs + off) / fs.inodeSize + 1;
          if (blk.subarray(off, off + fs.inodeSize).every((x) => x === 0)) continue;
          const c = inodeChecksum(blk, off, fs.inodeSize, inodeChecksumSeed(fs.csumSeed, ino, decodeInode(blk, off, fs.inodeSize).i_generation));
          dv.setUint16(off + 0x7c, c & 0xffff, true);
          if (inodeHasChecksumHi(blk, off, fs.inodeSize)) dv.setUint16(off + 0x82, c >>> 16, true);
        }
        return;
      }
      case "dir":
        dv.setUint32(bs - 4, dirBlockChecksum(blk, bs, inoSeed(b.ino!)), true);
        return;
      case "dx": {
        const root = decodeDxRoot(blk, bs, true);
        const t = root.entriesOffset + root.limit * 8;
        dv.setUint32(t + 4, dxBlockChecksum(blk, root.entriesOffset, root.count, t, inoSeed(b.ino!)), true);
        return;
      }
      case "extent": {
        const t = extentTailOffset(extentHeader.decode(blk, 0));
        if (t + 4 <= bs) dv.setUint32(t, extentBlockChecksum(blk, t, inoSeed(b.ino!)), true);
        return;
      }
      case "xattr":
        dv.setUint32(0x10, xattrBlockChecksum(blk, b.pblk, bs, fs.csumSeed), true);
        return;
    }
  } catch {
    // The mutation broke the structure the checksum is found through: leave it bad.
  }
}

/**
 * Walks everything reachable through the API, as a user would: readdir, lstat, stat, readlink,
 * read (bounded), listxattr, getxattr. Returns the number of FsErrors seen; rethrows anything
 * else.
 */
async function walkAll(img: Uint8Array): Promise<number> {
  let errors = 0;
  const guard = async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof FsError) {
        errors++;
        return undefined;
      }
      throw e;
    }
  };
  const vol = await guard(() => Volume.mount(MemoryDevice.from(img)));
  if (vol === undefined) return errors;
  try {
    const seen = new Set<number>();
    const visit = async (dir: string, depth: number): Promise<void> => {
      const names = await guard(() => vol.readdir(dir));
      if (names === undefined || depth > 8) return;
      // Every name of small directories, every 8th of big ones (lookups still hit each leaf).
      for (const n of names.filter((_, i) => names.length <= 24 || i % 8 === 0)) {
        const p = `${dir === "/" ? "" : dir}/${n}`;
        const st = await guard(() => vol.lstat(p));
        if (st?.isSymbolicLink() === true) await guard(() => vol.stat(p));
        await guard(async () => {
          for (const x of await vol.listxattr(p)) await vol.getxattr(p, x);
        });
        if (st === undefined) continue;
        if (st.isSymbolicLink()) await guard(() => vol.readlink(p));
        if (st.isFile()) {
          await guard(async () => {
            const h = await vol.open(p);
            const buf = new Uint8Array(64 * 1024);
            await h.read(buf, 0, buf.length, 0);
            if (st.size <= 1 << 20) await vol.readFile(p);
            await h.close();
          });
        }
        if (st.isDirectory() && !seen.has(st.ino)) {
          seen.add(st.ino);
          await visit(p, depth + 1);
        }
      }
    };
    await visit("/", 0);
    await guard(async () => {
      const all = vol.walk("/"); // the API's own walk: sorted, with loop detection
      while ((await all.next()).done !== true) {
        // drain
      }
    });
  } finally {
    await vol.unmount();
  }
  return errors;
}

async function withTimeout<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hang: ${what} took over ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe("random metadata mutations (fast-check)", () => {
  it("end in success or an FsError, never another exception or a hang", async () => {
    const meta = await fixtureMetaBlocks();
    expect(new Set(meta.map((b) => b.kind))).toEqual(new Set(["sb", "gdt", "itable", "dir", "dx", "extent", "xattr"]));
    const vol = await Volume.mount(MemoryDevice.from(FIXTURE));
    const fs = vol.fs;
    const mutation = fc.record({
      block: fc.nat(),
      offset: fc.nat(),
      value: fc.integer({ min: 0, max: 255 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.boolean(), async (muts, refresh) => {
        const img = new Uint8Array(FIXTURE);
        const touched = new Set<MetaBlock>();
        for (const mu of muts) {
          const b = meta[mu.block % meta.length]!;
          const off = mu.offset % fs.blockSize;
          // Known bug (see "an i_size_high of 0xffffffff" above): huge i_size_high throws an
          // AssertionError. Leave those four bytes alone until it is fixed.
          if (b.kind === "itable" && off % fs.inodeSize >= 0x6c && off % fs.inodeSize < 0x70) continue;
          img[b.pblk * fs.blockSize + off] = mu.value;
          touched.add(b);
        }
        if (refresh) for (const b of touched) refreshChecksum(img, fs, b);
        await withTimeout(5_000, `walk after ${JSON.stringify(muts)}`, walkAll(img));
      }),
      { numRuns: 300, seed: 0x5eed, endOnFailure: true },
    );
    await vol.unmount();
  }, 60_000);
});

// =========================================================================================
// 2. Oracles: mke2fs -d images against debugfs, the source tree and the host kernel

const oracle = oracleAvailability(["mke2fs", "e2fsck", "debugfs", "setfattr", "setfacl", "getfattr", "mkfifo"]);

const TIND_OFFSET = (12 + 256 + 65536 + 300) * 1024 + 7;

/** A deterministic source tree for mke2fs -d (devices and owners only as root). */
function makeSourceTree(root: string): void {
  const rng = new Rng(0xe47);
  const p = (rel: string): string => path.join(root, rel);
  for (const d of ["dir/sub/deep", "sizes", "sparse", "links", "chain40", "chain41", "xattr/dir", "special", "bigdir", "empty-dir", "names", "modes"]) mkdirSync(p(d), { recursive: true });
  writeFileSync(p("hello.txt"), "hello, world\n");
  writeFileSync(p("empty"), "");
  writeFileSync(p("dir/a"), "a\n");
  writeFileSync(p("dir/b"), rng.bytes(5000));
  writeFileSync(p("dir/sub/deep/file.txt"), "deep\n");
  for (const [n, size] of [["s1", 1], ["s59", 59], ["s60", 60], ["s61", 61], ["b4095", 4095], ["b4096", 4096], ["b4097", 4097], ["blk12", 12 * 4096], ["blk13", 13 * 4096], ["dind", (12 + 256 + 20) * 1024], ["big9m", 9 << 20]] as const) {
    writeFileSync(p(`sizes/${n}`), rng.bytes(size));
  }
  const writeAt = (rel: string, pieces: [number, Uint8Array][], size?: number): void => {
    const fd = openSync(p(rel), "w");
    try {
      for (const [off, data] of pieces) writeSync(fd, data, 0, data.length, off);
      if (size !== undefined) ftruncateSync(fd, size);
    } finally {
      closeSync(fd);
    }
  };
  writeAt("sparse/holes", [[0, rng.bytes(5000)], [(1 << 20) + 17, rng.bytes(3000)]], 3 << 20);
  writeAt("sparse/many", Array.from({ length: 30 }, (_, i): [number, Uint8Array] => [2 * i * 4096, rng.bytes(4096)]));
  writeAt("sparse/allhole", [], 5 << 20);
  // One block past 12 + 256 + 256^2 KiB: triple indirect on ext3 with 1 KiB blocks.
  writeAt("tind", [[TIND_OFFSET, rng.bytes(100)]]);
  symlinkSync("../hello.txt", p("links/fast"));
  symlinkSync(`../dir/${"./".repeat(40)}sub/deep/file.txt`, p("links/slow"));
  symlinkSync("nowhere/at/all", p("links/dangling"));
  symlinkSync("loop-b", p("links/loop-a"));
  symlinkSync("loop-a", p("links/loop-b"));
  symlinkSync("self", p("links/self"));
  symlinkSync("../dir", p("links/todir"));
  symlinkSync("/hello.txt", p("links/abs")); // absolute: the volume's root, not the host's
  symlinkSync("../hello.txt", p("chain40/l39"));
  for (let i = 38; i >= 0; i--) symlinkSync(`l${i + 1}`, p(`chain40/l${i}`));
  symlinkSync("../hello.txt", p("chain41/l40"));
  for (let i = 39; i >= 0; i--) symlinkSync(`l${i + 1}`, p(`chain41/l${i}`));
  writeFileSync(p("xattr/small"), "small\n");
  run(tool("setfattr"), ["-n", "user.a", "-v", "hello", p("xattr/small")]);
  writeFileSync(p("xattr/big"), "big\n");
  run(tool("setfattr"), ["-n", "user.big", "-v", `0x${Buffer.from(rng.bytes(700)).toString("hex")}`, p("xattr/big")]);
  writeFileSync(p("xattr/acl"), "acl\n");
  run(tool("setfacl"), ["-m", "u:1000:rwx,g:100:r", p("xattr/acl")]);
  run(tool("setfacl"), ["-d", "-m", "u:1000:rx", p("xattr/dir")]);
  writeFileSync(p("xattr/many"), "");
  for (let i = 0; i < 20; i++) run(tool("setfattr"), ["-n", `user.m${String(i).padStart(2, "0")}`, "-v", `0x${Buffer.from(rng.bytes(10)).toString("hex")}`, p("xattr/many")]);
  writeFileSync(p("xattr/empty-value"), "");
  run(tool("setfattr"), ["-n", "user.empty", p("xattr/empty-value")]);
  run(tool("mkfifo"), [p("special/fifo")]);
  if (isRoot()) {
    run(tool("mknod"), [p("special/null"), "c", "1", "3"]);
    run(tool("mknod"), [p("special/loop0"), "b", "7", "0"]);
    run(tool("mknod"), [p("special/bigdev"), "c", "300", "70000"]);
    writeFileSync(p("modes/owned"), "");
    lchownSync(p("modes/owned"), 100000, 4294967294);
  }
  for (let i = 0; i < 400; i++) writeFileSync(p(`bigdir/entry-${String(i).padStart(3, "0")}-${"x".repeat(i % 23)}`), "");
  writeFileSync(p(`names/${"n".repeat(255)}`), "long name\n");
  writeFileSync(p("names/ünïcødé-日本"), "utf-8\n");
  for (const [n, m] of [["setuid", 0o4755], ["sticky", 0o1777], ["none", 0o000]] as const) {
    writeFileSync(p(`modes/${n}`), `${n}\n`);
    chmodSync(p(`modes/${n}`), m);
  }
}

/** Every path of a tree, volume-absolute, directories included, in readdir order of the host. */
function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const n of readdirSync(path.join(root, rel)).sort()) {
      const r = `${rel}/${n}`;
      out.push(r);
      if (lstatSync(path.join(root, r)).isDirectory()) walk(r);
    }
  };
  walk("");
  return out;
}

/** Splits the output of `debugfs -f` into one chunk per request. */
function debugfsBatch(image: string, requests: readonly string[], work: string): string[] {
  const file = path.join(work, `cmds-${path.basename(image)}`);
  writeFileSync(file, requests.join("\n") + "\n");
  const out = run(tool("debugfs"), ["-f", file, image], { env: { ...process.env, TZ: "UTC" } }).stdout;
  const parts = out.split(/^debugfs: .*$/m).slice(1);
  if (parts.length !== requests.length) throw new Error(`debugfs -f: ${parts.length} answers for ${requests.length} requests`);
  return parts;
}

interface StatFields {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  blocks: number;
  flags: number;
  generation: number;
  times: Record<string, { sec: number; nsec: number }>;
  rdev: [number, number] | null;
}

const DEBUGFS_TYPES: Record<string, number> = {
  regular: 0o100000, directory: 0o040000, symlink: 0o120000, FIFO: 0o010000, socket: 0o140000,
  "character special": 0o020000, "block special": 0o060000,
};

function parseStat(text: string): StatFields {
  const head = /Inode: (\d+)\s+Type: (.+?)\s+Mode:\s+(\d+)\s+Flags: 0x([0-9a-f]+)/.exec(text);
  if (head === null) throw new Error(`debugfs stat: unexpected output\n${text}`);
  const n = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
  const times: Record<string, { sec: number; nsec: number }> = {};
  for (const m of text.matchAll(/^\s*(ctime|atime|mtime|crtime): 0x([0-9a-f]{8})(?::([0-9a-f]{8}))?/gm)) {
    const base = parseInt(m[2]!, 16) | 0;
    const extra = m[3] === undefined ? 0 : parseInt(m[3], 16);
    times[m[1]!] = { sec: base + (extra & 3) * 2 ** 32, nsec: extra >>> 2 };
  }
  const dev = /Device major\/minor number: (\d+):(\d+)/.exec(text);
  return {
    ino: Number(head[1]),
    mode: (DEBUGFS_TYPES[head[2]!] ?? -1) | parseInt(head[3]!, 8),
    nlink: n(/Links: (\d+)/),
    uid: n(/User:\s+(-?\d+)/) >>> 0,
    gid: n(/Group:\s+(-?\d+)/) >>> 0, // debugfs prints gids as signed
    size: n(/Size: (\d+)/),
    blocks: n(/Blockcount: (\d+)/),
    flags: parseInt(head[4]!, 16),
    generation: n(/Generation: (\d+)/),
    times,
    rdev: dev === null ? null : [Number(dev[1]), Number(dev[2])],
  };
}

/** `getfattr -d -m - -e hex` of the source tree: path -> name -> hex value. */
function sourceXattrs(root: string): Map<string, Map<string, string>> {
  const out = run(tool("getfattr"), ["-R", "-P", "-d", "-m", "-", "-e", "hex", "--absolute-names", root], { okCodes: [0, 1] }).stdout;
  const map = new Map<string, Map<string, string>>();
  let cur: Map<string, string> | undefined;
  for (const line of out.split("\n")) {
    const f = /^# file: (.*)$/.exec(line);
    if (f !== null) {
      cur = new Map();
      map.set(f[1]!.slice(root.length), cur);
      continue;
    }
    const kv = /^([^=]+)=(0x[0-9a-f]*)?$/.exec(line);
    if (kv !== null && cur !== undefined) cur.set(kv[1]!, (kv[2] ?? "0x").slice(2));
  }
  return map;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** The host kernel's answer for the same path in the source tree, as an errno code or "ok". */
function hostOutcome(root: string, op: string, p: string): string {
  const full = root + p; // not path.join: that would resolve ".." lexically, the kernel does not
  try {
    if (op === "stat") statSync(full);
    else if (op === "lstat") lstatSync(full);
    else if (op === "readlink") readlinkSync(full);
    else if (op === "readdir") readdirSync(full);
    else readFileSync(full);
    return "ok";
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? "unknown";
  }
}

async function ourOutcome(vol: Volume, op: string, p: string): Promise<string> {
  const r = await attempt(() =>
    op === "stat" ? vol.stat(p) : op === "lstat" ? vol.lstat(p) : op === "readlink" ? vol.readlink(p) : op === "readdir" ? vol.readdir(p) : vol.readFile(p),
  );
  if (r.ok) return "ok";
  if (!(r.error instanceof FsError)) throw r.error;
  return r.error.code;
}

const SYSCALL: Record<string, string> = { stat: "stat", lstat: "lstat", readlink: "readlink", readdir: "scandir", readFile: "open" };

describe.skipIf(!oracle.ok && !oracle.required)("mke2fs -d images against debugfs, the source tree and the host kernel", () => {
  oracleGate(oracle);
  let work = "";
  let tree = "";
  let paths: string[] = [];
  const images: { name: string; path: string; inline: boolean; filetype: boolean }[] = [];

  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), "ext4ts-engine-test-"));
    tree = path.join(work, "tree");
    mkdirSync(tree);
    makeSourceTree(tree);
    paths = listTree(tree);
    const variants: [string, string[], boolean][] = [
      ["ext4-4k-csum", ["-t", "ext4", "-b", "4096", "-I", "256"], false],
      ["ext4-1k-gdtcsum-128", ["-t", "ext4", "-b", "1024", "-I", "128", "-O", "^metadata_csum,uninit_bg"], false],
      ["ext3-1k", ["-t", "ext3", "-b", "1024", "-I", "256"], false],
      ["ext2-4k", ["-t", "ext2", "-b", "4096", "-I", "128"], false],
      ["ext4-inline", ["-t", "ext4", "-b", "4096", "-I", "256", "-O", "inline_data"], true],
    ];
    for (const [name, args, inline] of variants) {
      const img = path.join(work, `${name}.img`);
      run(tool("mke2fs"), ["-q", "-F", ...args, "-N", "2048", "-d", tree, img, "40M"]);
      run(tool("e2fsck"), ["-fyD", img], { okCodes: [0, 1] }); // indexes /bigdir
      images.push({ name, path: img, inline, filetype: true });
    }
  }, 60_000);

  afterAll(() => {
    if (work !== "") rmSync(work, { recursive: true, force: true });
  });

  const mount = async (img: string): Promise<Volume> => Volume.mount(await FileDevice.open(img, { readOnly: true }));

  it("builds images with the shapes the tests need (htree, extent depth, double indirect)", () => {
    const ext4 = images.find((i) => i.name === "ext4-4k-csum")!;
    expect(run(tool("debugfs"), ["-R", "htree /bigdir", ext4.path]).stdout).toMatch(/Indirect levels: 0/);
    expect(run(tool("debugfs"), ["-R", "ex /sparse/many", ext4.path]).stdout).toMatch(/^\s*1\/\s*1/m);
    const ext3 = images.find((i) => i.name === "ext3-1k")!;
    expect(run(tool("debugfs"), ["-R", "stat /sizes/dind", ext3.path]).stdout).toMatch(/\(DIND\)/);
    expect(run(tool("debugfs"), ["-R", "stat /tind", ext3.path]).stdout).toMatch(/\(TIND\)/);
    const inline = images.find((i) => i.inline)!;
    expect(run(tool("debugfs"), ["-R", "stat /hello.txt", inline.path]).stdout).toMatch(/Size of inline data: 60/);
  });

  it("lstat of every path matches debugfs stat", async () => {
    for (const img of images) {
      const answers = debugfsBatch(img.path, paths.map((p) => `stat "${p}"`), work);
      const vol = await mount(img.path);
      try {
        for (const [i, p] of paths.entries()) {
          const d = parseStat(answers[i]!);
          const s = await vol.lstat(p);
          const where = `${img.name} ${p}`;
          expect([where, s.ino, s.mode, s.nlink, s.uid, s.gid, s.size, s.blocks, s.flags, s.generation]).toEqual([
            where, d.ino, d.mode, d.nlink, d.uid, d.gid, d.size, d.blocks, d.flags, d.generation,
          ]);
          expect([where, s.mtime, s.ctime, s.atime]).toEqual([where, d.times.mtime, d.times.ctime, d.times.atime]);
          if (d.times.crtime !== undefined) expect([where, s.birthtime]).toEqual([where, d.times.crtime]);
          if (d.rdev !== null) expect([where, s.rdevMajor, s.rdevMinor]).toEqual([where, ...d.rdev]);
        }
      } finally {
        await vol.unmount();
      }
    }
  });

  it("readdir of every directory lists what the source tree and debugfs ls list", async () => {
    const dirs = ["/", ...paths.filter((p) => lstatSync(path.join(tree, p)).isDirectory())];
    for (const img of images) {
      const answers = debugfsBatch(img.path, dirs.map((d) => `ls -p "${d}"`), work);
      const vol = await mount(img.path);
      try {
        for (const [i, d] of dirs.entries()) {
          // debugfs also lists the unused (inode 0) entry of an empty inline directory.
          const listed = answers[i]!.split("\n").filter((l) => l.startsWith("/")).map((l) => l.split("/")).filter((f) => f[1] !== "0");
          const fromDebugfs = listed.map((f) => f[5]!).filter((n) => n !== "." && n !== "..");
          const ents = await vol.readdirEntries(d);
          const names = ents.map((e) => e.name);
          const where = `${img.name} ${d}`;
          expect([where, names]).toEqual([where, fromDebugfs]); // on-disk order
          const host = readdirSync(path.join(tree, d)).filter((n) => d !== "/" || n !== "lost+found");
          expect([where, [...names].filter((n) => d !== "/" || n !== "lost+found").sort()]).toEqual([where, host.sort()]);
          for (const e of ents) {
            const want = listed.find((f) => f[5] === e.name)!;
            expect([where, e.name, e.ino]).toEqual([where, e.name, Number(want[1])]);
            if (img.filetype) expect([where, e.name, e.type]).toEqual([where, e.name, (await vol.lstat(`${d === "/" ? "" : d}/${e.name}`)).type]);
          }
        }
      } finally {
        await vol.unmount();
      }
    }
  });

  it("readFile returns what debugfs dump writes for every regular file (sha256), and the source bytes", async () => {
    const files = paths.filter((p) => lstatSync(path.join(tree, p)).isFile() && p !== "/tind");
    for (const img of images) {
      const out = path.join(work, `dump-${img.name}`);
      mkdirSync(out);
      debugfsBatch(img.path, files.map((p, i) => `dump "${p}" "${out}/${i}"`), work);
      const sizes = debugfsBatch(img.path, files.map((p) => `stat "${p}"`), work).map((t) => parseStat(t).size);
      const vol = await mount(img.path);
      try {
        for (const [i, p] of files.entries()) {
          const got = await vol.readFile(p);
          const dumped = readFileSync(`${out}/${i}`);
          expect([img.name, p, got.length]).toEqual([img.name, p, sizes[i]]);
          if (!img.inline) expect([img.name, p, dumped.length]).toEqual([img.name, p, sizes[i]]);
          // debugfs 1.47.0 dumps inline files as their inline area (60 bytes or more) whatever
          // i_size says; past it the kernel reads zeros (ext4_readpage_inline).
          const n = Math.min(got.length, dumped.length);
          expect([img.name, p, sha256(got.subarray(0, n))]).toEqual([img.name, p, sha256(dumped.subarray(0, n))]);
          expect([img.name, p, got.subarray(n).every((b) => b === 0)]).toEqual([img.name, p, true]);
          // mke2fs -d 1.47.0 drops a trailing hole of a sparse file with inline_data; else the
          // image holds the source bytes.
          if (!(img.inline && p.startsWith("/sparse/"))) expect([img.name, p, sha256(got)]).toEqual([img.name, p, sha256(readFileSync(path.join(tree, p)))]);
        }
      } finally {
        await vol.unmount();
        rmSync(out, { recursive: true, force: true });
      }
    }
  });

  it("reads holes as zeros, also through a file handle across a hole boundary", async () => {
    for (const img of images) {
      const vol = await mount(img.path);
      try {
        const holes = await vol.readFile("/sparse/holes");
        expect(holes.subarray(5000, (1 << 20) + 17).every((b) => b === 0)).toBe(true);
        expect(holes.subarray((1 << 20) + 3017).every((b) => b === 0)).toBe(true);
        expect((await vol.readFile("/sparse/allhole")).every((b) => b === 0)).toBe(true);
        const h = await vol.open("/sparse/many");
        const buf = new Uint8Array(10_000);
        const r = await h.read(buf, 0, buf.length, 3192);
        await h.close();
        expect(r.bytesRead).toBe(10_000);
        const want = new Uint8Array(readFileSync(path.join(tree, "sparse/many")).subarray(3192, 13_192));
        expect([img.name, buf.findIndex((x, k) => x !== want[k])]).toEqual([img.name, -1]);
        expect(buf.subarray(904, 5000).every((b) => b === 0)).toBe(true);
        // A lone block behind a triple-indirect map (ext3, 1 KiB) or an extent far out.
        const t = await vol.open("/tind");
        const tb = new Uint8Array(4096);
        const tr = await t.read(tb, 0, tb.length, TIND_OFFSET - 3996);
        await t.close();
        expect([img.name, tr.bytesRead]).toEqual([img.name, 4096]);
        expect(tb.subarray(0, 3996).every((b) => b === 0)).toBe(true);
        const src = readFileSync(path.join(tree, "tind"));
        expect([img.name, hex(tb.subarray(3996))]).toEqual([img.name, hex(src.subarray(TIND_OFFSET, TIND_OFFSET + 100))]);
      } finally {
        await vol.unmount();
      }
    }
  });

  it("readlink returns the source targets; stat follows fast, slow and chained links", async () => {
    const links = paths.filter((p) => lstatSync(path.join(tree, p)).isSymbolicLink());
    for (const img of images) {
      const vol = await mount(img.path);
      try {
        for (const p of links) expect([img.name, p, await vol.readlink(p)]).toEqual([img.name, p, readlinkSync(path.join(tree, p))]);
        expect((await vol.stat("/links/slow")).size).toBe(5);
        expect((await vol.stat("/chain40/l0")).ino).toBe((await vol.stat("/hello.txt")).ino);
        expect((await vol.stat("/links/abs")).ino).toBe((await vol.stat("/hello.txt")).ino);
        expect((await vol.stat("/dir/sub/deep/../../../links/abs")).ino).toBe((await vol.stat("/hello.txt")).ino);
        expect(await vol.readdir("/links/todir")).toEqual(await vol.readdir("/dir"));
      } finally {
        await vol.unmount();
      }
    }
  });

  it("listxattr/getxattr give what getfattr shows on the source tree (ACLs in the VFS format)", async () => {
    const want = sourceXattrs(tree);
    expect(want.get("/xattr/acl")?.has("system.posix_acl_access")).toBe(true);
    for (const img of images) {
      const vol = await mount(img.path);
      try {
        for (const p of paths) {
          const w = want.get(p) ?? new Map<string, string>();
          const names = (await vol.listxattr(p)).sort();
          expect([img.name, p, names]).toEqual([img.name, p, [...w.keys()].sort()]);
          for (const n of names) expect([img.name, p, n, hex(await vol.getxattr(p, n))]).toEqual([img.name, p, n, w.get(n)]);
        }
        const e = await fsError(() => vol.getxattr("/xattr/small", "user.nope"));
        expect(e.message).toBe("ENODATA: No data available, lgetxattr '/xattr/small'");
      } finally {
        await vol.unmount();
      }
    }
  });

  it("lists the names debugfs ea_list shows, less system.data", async () => {
    const img = images.find((i) => i.inline)!;
    const withX = ["/xattr/small", "/xattr/big", "/xattr/many", "/xattr/acl", "/hello.txt"];
    const answers = debugfsBatch(img.path, withX.map((p) => `ea_list "${p}"`), work);
    const vol = await mount(img.path);
    try {
      for (const [i, p] of withX.entries()) {
        const fromDebugfs = [...answers[i]!.matchAll(/^\s+(\S+) \(\d+\)/gm)].map((m) => m[1]!).filter((n) => n !== "system.data");
        expect([p, (await vol.listxattr(p)).sort()]).toEqual([p, fromDebugfs.sort()]);
      }
    } finally {
      await vol.unmount();
    }
  });

  it("fails like the host kernel on the same paths: ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG, EISDIR", async () => {
    const cases = [
      "/nope", "/hello.txt/x", "/dir/../hello.txt", "/links/loop-a", "/links/self", "/links/dangling", "/chain40/l0",
      "/chain41/l0", "/links/todir/a", "/links/fast", "/dir", "/empty-dir", `/${"n".repeat(256)}`, `/dir/${"n".repeat(255)}`,
      `/names/${"n".repeat(255)}`, "/sizes/../sizes/s1", "/links/todir/../hello.txt",
    ];
    const vol = await mount(images[0]!.path);
    try {
      const seen = new Set<string>();
      for (const p of cases) {
        for (const op of ["stat", "lstat", "readlink", "readdir", "readFile"]) {
          const host = hostOutcome(tree, op, p);
          const ours = await ourOutcome(vol, op, p);
          expect([op, p, ours]).toEqual([op, p, host]);
          seen.add(host);
          if (ours !== "ok") {
            const e = await fsError(() => (op === "stat" ? vol.stat(p) : op === "lstat" ? vol.lstat(p) : op === "readlink" ? vol.readlink(p) : op === "readdir" ? vol.readdir(p) : vol.readFile(p)));
            expect(e.message.endsWith(`, ${SYSCALL[op]!} '${p}'`)).toBe(true);
            expect(e.detail).toMatchObject({ syscall: SYSCALL[op], path: p });
          }
        }
      }
      expect([...seen].sort()).toEqual(["EINVAL", "EISDIR", "ELOOP", "ENAMETOOLONG", "ENOENT", "ENOTDIR", "ok"]);
    } finally {
      await vol.unmount();
    }
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/fs/namei.ts:80-82, see "stat of a regular file with a trailing slash" above: a
  // trailing slash must require a directory (after following a final symlink).
  it("fails like the host kernel on paths with a trailing slash", async () => {
    const vol = await mount(images[0]!.path);
    try {
      for (const p of ["/hello.txt/", "/links/fast/", "/links/todir/", "/dir/"]) {
        for (const op of ["stat", "lstat", "readFile"]) expect([op, p, await ourOutcome(vol, op, p)]).toEqual([op, p, hostOutcome(tree, op, p)]);
      }
    } finally {
      await vol.unmount();
    }
  });
});

// =========================================================================================
// 3. What only the kernel writes

const kernelOracle = oracleAvailability(["mke2fs", "e2fsck", "debugfs", "fallocate", "setfattr", "touch"], { loop: true });

describe.skipIf(!kernelOracle.ok && !kernelOracle.required)("kernel-written structures", () => {
  oracleGate(kernelOracle, "root, loop mounts and tools are available");
  let work = "";
  let image = "";
  const names: string[] = [];
  const data = new Map<string, Uint8Array>();
  let vol: Volume | undefined;

  beforeAll(async () => {
    if (!canLoopMount()) return;
    work = mkdtempSync(path.join(tmpdir(), "ext4ts-engine-kernel-"));
    image = path.join(work, "kernel-1k.img");
    run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-b", "1024", "-N", "8192", image, "64M"]);
    const rng = new Rng(0x6b31);
    await withLoopMount(image, { readOnly: false }, async (mnt) => {
      const p = (rel: string): string => path.join(mnt, rel);
      mkdirSync(p("big"));
      for (let i = 0; i < 3000; i++) {
        const n = `n${i}-${"y".repeat((i * 7) % 50)}`;
        names.push(n);
        writeFileSync(p(`big/${n}`), "");
      }
      // 1 KiB written at every other KiB: one extent each, 1200 extents, a depth-2 tree.
      const frag = new Uint8Array(2400 * 1024);
      const fd = openSync(p("frag"), "w");
      for (let i = 0; i < 1200; i++) {
        const piece = rng.bytes(1024);
        frag.set(piece, 2 * i * 1024);
        writeSync(fd, piece, 0, 1024, 2 * i * 1024);
      }
      closeSync(fd);
      data.set("/frag", frag.subarray(0, 2399 * 1024));
      const big = rng.bytes(9 << 20);
      writeFileSync(p("big9m"), big);
      data.set("/big9m", big);
      run(tool("fallocate"), ["-l", "256K", p("unwritten")]);
      const w = rng.bytes(1000);
      const fd2 = openSync(p("unwritten"), "r+");
      writeSync(fd2, w, 0, 1000, 100 * 1024);
      closeSync(fd2);
      const u = new Uint8Array(256 * 1024);
      u.set(w, 100 * 1024);
      data.set("/unwritten", u);
      const k = rng.bytes(100);
      writeFileSync(p("keep-size"), k);
      run(tool("fallocate"), ["--keep-size", "-o", "8K", "-l", "64K", p("keep-size")]);
      data.set("/keep-size", k);
      const punched = rng.bytes(128 * 1024);
      writeFileSync(p("punched"), punched);
      run(tool("fallocate"), ["-p", "-o", "16K", "-l", "32K", p("punched")]);
      const pz = punched.slice();
      pz.fill(0, 16 * 1024, 48 * 1024);
      data.set("/punched", pz);
      for (const [n, t] of [["t2100", "@4102444800.123456789"], ["t1901", "@-2147385600.5"], ["tmax", "@15032385535.999999999"]] as const) {
        writeFileSync(p(n), "");
        run(tool("touch"), ["-m", "-d", t, p(n)]);
      }
      writeFileSync(p("xattr"), "");
      run(tool("setfattr"), ["-n", "user.big", "-v", "k".repeat(900), p("xattr")]);
      run(tool("sync"), ["-f", mnt]);
      return Promise.resolve();
    });
    run(tool("e2fsck"), ["-fn", image]);
    vol = await Volume.mount(await FileDevice.open(image, { readOnly: true }));
  }, 60_000);

  afterAll(async () => {
    await vol?.unmount();
    if (work !== "") rmSync(work, { recursive: true, force: true });
    cleanupImages(); // the loop-mount run directory of test/oracle/images.ts
  });

  const volume = (): Volume => {
    if (vol === undefined) {
      requireOrSkip("kernel image not built (no loop mounts)");
      throw new Error("kernel image not built");
    }
    return vol;
  };

  it("indexes /big with a two-level htree", async () => {
    const v = volume();
    const st = await v.lstat("/big");
    expect(st.flags & EXT4_INDEX_FL).toBe(EXT4_INDEX_FL);
    expect(run(tool("debugfs"), ["-R", "htree /big", image]).stdout).toMatch(/Indirect levels: 1/);
  });

  it("finds each of the 3000 names through the htree, with the inode a linear scan finds", async () => {
    const v = volume();
    const fs = v.fs;
    const dir = await iget(fs, (await v.lstat("/big")).ino);
    const linear = new Map<string, number>();
    for await (const e of readDirEntries(fs, dir)) linear.set(dec.decode(e.name), e.ino);
    expect(linear.size).toBe(3002);
    for (const n of names) {
      const viaIndex = await dxFindEntry(fs, dir, enc.encode(n));
      expect(viaIndex).not.toBe(BAD_DX_DIR);
      expect([n, viaIndex]).toEqual([n, linear.get(n)]);
    }
    for (let i = 0; i < 300; i++) {
      const absent = `n${i}-${"z".repeat(i % 50)}`;
      expect(linear.has(absent) || (await dxFindEntry(fs, dir, enc.encode(absent))) === null).toBe(true);
    }
    // And through the API: stat of every name, ENOENT for absent ones.
    for (const n of names.slice(0, 3000)) expect((await v.lstat(`/big/${n}`)).ino).toBe(linear.get(n));
    const e = await fsError(() => v.stat("/big/absent-name"));
    expect(e.message).toBe("ENOENT: No such file or directory, stat '/big/absent-name'");
  });

  it("reads a depth-2 extent tree (1200 extents) byte for byte", async () => {
    const v = volume();
    const frag = await iget(v.fs, (await v.lstat("/frag")).ino);
    expect(extentHeader.decode(frag.raw.i_block, 0).eh_depth).toBe(2);
    const got = await v.readFile("/frag");
    expect([got.length, sha256(got)]).toEqual([data.get("/frag")!.length, sha256(data.get("/frag")!)]);
  });

  it("reads a 9 MiB file with the sha256 it was written with", async () => {
    const got = await volume().readFile("/big9m");
    expect(sha256(got)).toBe(sha256(data.get("/big9m")!));
  });

  it("reads unwritten (fallocate) extents and punched holes as zeros", async () => {
    const v = volume();
    for (const p of ["/unwritten", "/keep-size", "/punched"]) {
      const got = await v.readFile(p);
      expect([p, got.length, sha256(got)]).toEqual([p, data.get(p)!.length, sha256(data.get(p)!)]);
    }
    expect(run(tool("debugfs"), ["-R", "ex /unwritten", image]).stdout).toMatch(/Uninit/);
    expect((await v.stat("/keep-size")).blocks).toBeGreaterThan(64 * 2);
  });

  it("decodes timestamps with epoch bits and nanoseconds as the kernel wrote them", async () => {
    const v = volume();
    expect((await v.stat("/t2100")).mtime).toEqual({ sec: 4102444800, nsec: 123456789 });
    expect((await v.stat("/t1901")).mtime).toEqual({ sec: -2147385601, nsec: 500000000 }); // -2147385600.5
    expect((await v.stat("/tmax")).mtime.sec).toBe(15032385535); // EXT4_EXTRA_TIMESTAMP_MAX; nsec as debugfs shows, below
    expect((await v.stat("/t2100")).mtimeNs).toBe(4102444800123456789n);
  });

  it("matches debugfs stat on every top-level path and reads the kernel's xattr block", async () => {
    const v = volume();
    const top = (await v.readdir("/")).map((n) => `/${n}`);
    const answers = debugfsBatch(image, top.map((p) => `stat "${p}"`), work);
    for (const [i, p] of top.entries()) {
      const d = parseStat(answers[i]!);
      const s = await v.lstat(p);
      expect([p, s.ino, s.mode, s.nlink, s.size, s.blocks, s.flags, s.mtime, s.ctime, s.birthtime]).toEqual([
        p, d.ino, d.mode, d.nlink, d.size, d.blocks, d.flags, d.times.mtime, d.times.ctime, d.times.crtime,
      ]);
    }
    expect(dec.decode(await v.getxattr("/xattr", "user.big"))).toBe("k".repeat(900));
    expect((await iget(v.fs, (await v.lstat("/xattr")).ino)).fileAcl).toBeGreaterThan(0);
  });
});
