/**
 * Extent tree nodes: layout against Documentation/filesystems/ext4/ifork.rst, the checks of
 * __ext4_ext_check / ext4_valid_extent_entries (fs/ext4/extents.c) on hand-made nodes, and, on
 * mke2fs -d images holding sparse files (one extent per data run, so trees of depth >= 1),
 * every node decoded as `debugfs ex` lists it and re-encoded to the same bytes.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { oracleAvailability, oracleGate, run, tool } from "../../test/oracle/oracle_env.js";
import { FsError } from "../errors.js";
import {
  EXT4_EXT_MAGIC,
  EXT4_MAX_EXTENT_DEPTH,
  EXT_INIT_MAX_LEN,
  EXT_UNWRITTEN_MAX_LEN,
  decodeExtentNode,
  extentHeader,
  extentIdx,
  extentLeaf,
  extentTail,
  extentTailOffset,
  type ExtentNode,
} from "./extent.js";
import { decodeGroupDesc, groupDescLocation, inodeTable } from "./group_desc.js";
import { EXT4_EXTENTS_FL, decodeInode, inodeStruct } from "./inode.js";
import { blockSize, blocksCount, decodeSuperblock, descSize, inodeSize } from "./superblock.js";

describe("extent tree layout (ifork.rst)", () => {
  it("has 12-byte header, index and leaf entries and a 4-byte tail", () => {
    expect([extentHeader.size, extentIdx.size, extentLeaf.size, extentTail.size]).toEqual([12, 12, 12, 4]);
  });

  it("puts the fields where ext4_extents.h does", () => {
    expect(["eh_magic", "eh_entries", "eh_max", "eh_depth", "eh_generation"].map((f) => extentHeader.offsetOf(f as keyof typeof extentHeader.fields))).toEqual([0, 2, 4, 6, 8]);
    expect(["ei_block", "ei_leaf_lo", "ei_leaf_hi", "ei_unused"].map((f) => extentIdx.offsetOf(f as keyof typeof extentIdx.fields))).toEqual([0, 4, 8, 0xa]);
    expect(["ee_block", "ee_len", "ee_start_hi", "ee_start_lo"].map((f) => extentLeaf.offsetOf(f as keyof typeof extentLeaf.fields))).toEqual([0, 4, 6, 8]);
  });

  it("keeps the kernel's constants", () => {
    expect(EXT4_EXT_MAGIC).toBe(0xf30a);
    expect(EXT_INIT_MAX_LEN).toBe(32768);
    expect(EXT_UNWRITTEN_MAX_LEN).toBe(32767);
    expect(EXT4_MAX_EXTENT_DEPTH).toBe(5);
  });

  it("puts the tail right after eh_max slots (EXT4_EXTENT_TAIL_OFFSET)", () => {
    const h = { eh_magic: EXT4_EXT_MAGIC, eh_entries: 0, eh_max: 340, eh_depth: 0, eh_generation: 0 };
    expect(extentTailOffset(h)).toBe(12 + 340 * 12); // 4092: the last 4 bytes of a 4 KiB block
    expect(extentTailOffset({ ...h, eh_max: 84 })).toBe(1020);
  });
});

// ---------------------------------------------------------------------------------------
// Hand-made nodes

type Slot = [lblk: number, lenOrZero: number, pblk: number];

/** A node of `size` bytes: header, then leaf slots [lblk, ee_len, pblk] or index slots [lblk, 0, pblk]. */
function makeNode(size: number, h: { magic?: number; entries?: number; max: number; depth: number }, slots: readonly Slot[]): Uint8Array {
  const b = new Uint8Array(size);
  extentHeader.encode({ eh_magic: h.magic ?? EXT4_EXT_MAGIC, eh_entries: h.entries ?? slots.length, eh_max: h.max, eh_depth: h.depth, eh_generation: 0 }, b, 0);
  slots.forEach(([lblk, len, pblk], i) => {
    const at = 12 + i * 12;
    if (h.depth === 0) extentLeaf.encode({ ee_block: lblk, ee_len: len, ee_start_hi: Math.floor(pblk / 2 ** 32), ee_start_lo: pblk % 2 ** 32 }, b, at);
    else extentIdx.encode({ ei_block: lblk, ei_leaf_lo: pblk % 2 ** 32, ei_leaf_hi: Math.floor(pblk / 2 ** 32), ei_unused: 0 }, b, at);
  });
  return b;
}

const ROOT = { isRoot: true, blocksCount: 1_000_000, firstDataBlock: 0 } as const;
const BLOCK = { isRoot: false, blocksCount: 1_000_000, firstDataBlock: 0 } as const;

function corrupt(fn: () => unknown): FsError {
  try {
    fn();
  } catch (e) {
    if (e instanceof FsError) return e;
    throw e;
  }
  throw new Error("expected an FsError, nothing was thrown");
}

describe("decodeExtentNode() on valid nodes", () => {
  it("decodes a root leaf with lengths, unwritten bit and 48-bit starts", () => {
    const n = decodeExtentNode(makeNode(60, { max: 4, depth: 0 }, [[0, 1, 100], [1, EXT_INIT_MAX_LEN, 2 ** 40 + 5], [40000, EXT_INIT_MAX_LEN + 1, 7], [50000, 65535, 9]]), 60, { ...ROOT, blocksCount: 2 ** 41 });
    expect(n.depth).toBe(0);
    expect("extents" in n && n.extents).toEqual([
      { lblk: 0, len: 1, pblk: 100, unwritten: false },
      // ee_len == EXT_INIT_MAX_LEN is the longest initialized extent, not an unwritten one
      { lblk: 1, len: 32768, pblk: 2 ** 40 + 5, unwritten: false },
      { lblk: 40000, len: 1, pblk: 7, unwritten: true },
      { lblk: 50000, len: EXT_UNWRITTEN_MAX_LEN, pblk: 9, unwritten: true },
    ]);
  });

  it("decodes an index node and an empty root leaf (an empty file)", () => {
    const idx = decodeExtentNode(makeNode(4096, { max: 340, depth: 2 }, [[0, 0, 500], [100, 0, 501]]), 4096, { ...BLOCK, expectedDepth: 2 });
    expect("indexes" in idx && idx.indexes).toEqual([{ lblk: 0, pblk: 500 }, { lblk: 100, pblk: 501 }]);
    const empty = decodeExtentNode(makeNode(60, { max: 4, depth: 0 }, []), 60, ROOT);
    expect("extents" in empty && empty.extents).toEqual([]);
  });

  it("accepts eh_max up to the slots that fit: 4 in i_block, (bs - 12) / 12 in a block", () => {
    expect(() => decodeExtentNode(makeNode(4096, { max: 340, depth: 0 }, []), 4096, BLOCK)).not.toThrow();
    expect(() => decodeExtentNode(makeNode(1024, { max: 84, depth: 0 }, []), 1024, BLOCK)).not.toThrow();
  });
});

describe("decodeExtentNode() rejects what __ext4_ext_check rejects", () => {
  const cases: [string, () => unknown, RegExp][] = [
    ["invalid magic", () => decodeExtentNode(makeNode(60, { magic: 0xf30b, max: 4, depth: 0 }, []), 60, ROOT), /magic is 0xf30b, expected 0xf30a/],
    ["invalid eh_max (0)", () => decodeExtentNode(makeNode(60, { max: 0, depth: 0 }, []), 60, ROOT), /eh_max 0/],
    ["too large eh_max (root)", () => decodeExtentNode(makeNode(60, { max: 5, depth: 0 }, []), 60, ROOT), /eh_max 5/],
    ["too large eh_max (block)", () => decodeExtentNode(makeNode(4096, { max: 341, depth: 0 }, []), 4096, BLOCK), /eh_max 341/],
    ["invalid eh_entries", () => decodeExtentNode(makeNode(60, { entries: 5, max: 4, depth: 0 }, []), 60, ROOT), /eh_entries 5 exceeds eh_max 4/],
    ["unexpected eh_depth", () => decodeExtentNode(makeNode(4096, { max: 340, depth: 1 }, [[0, 0, 9]]), 4096, { ...BLOCK, expectedDepth: 0 }), /depth 1, expected 0/],
    ["depth past EXT4_MAX_EXTENT_DEPTH", () => decodeExtentNode(makeNode(60, { max: 4, depth: 6 }, [[0, 0, 9]]), 60, ROOT), /depth 6/],
    ["zero-length extent", () => decodeExtentNode(makeNode(60, { max: 4, depth: 0 }, [[0, 0, 9]]), 60, ROOT), /length 0/],
    ["overlapping extents", () => decodeExtentNode(makeNode(60, { max: 4, depth: 0 }, [[0, 10, 100], [9, 1, 200]]), 60, ROOT), /overlaps/],
    ["extent past the volume", () => decodeExtentNode(makeNode(60, { max: 4, depth: 0 }, [[0, 10, 999_995]]), 60, ROOT), /outside the volume/],
    ["extent at block 0", () => decodeExtentNode(makeNode(60, { max: 4, depth: 0 }, [[0, 1, 0]]), 60, ROOT), /outside the volume/],
    ["index out of order", () => decodeExtentNode(makeNode(60, { max: 4, depth: 1 }, [[10, 0, 5], [10, 0, 6]]), 60, ROOT), /out of order/],
    ["index past the volume", () => decodeExtentNode(makeNode(60, { max: 4, depth: 1 }, [[0, 0, 1_000_000]]), 60, ROOT), /outside the volume/],
  ];
  for (const [name, fn, message] of cases) {
    it(`reports "${name}" as EFSCORRUPTED`, () => {
      const e = corrupt(fn);
      expect(e.code).toBe("EFSCORRUPTED");
      expect(e.message).toMatch(message);
    });
  }

  it("names the inode and block it was given", () => {
    const e = corrupt(() => decodeExtentNode(makeNode(4096, { magic: 0, max: 340, depth: 0 }, []), 4096, { ...BLOCK, ctx: { ino: 12, block: 345 } }));
    expect(e.message).toBe("EFSCORRUPTED: Bad extent node: magic is 0x0000, expected 0xf30a (inode 12, block 345)");
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/format/extent.ts:88-91. fs/ext4/extents.c __ext4_ext_check rejects "eh_entries is
  // 0 but eh_depth is > 0"; decodeExtentNode accepts an empty index node and extMapBlocks then
  // reports a hole for the whole file instead of EFSCORRUPTED.
  it("rejects an index node with no entries (eh_entries 0, eh_depth > 0)", () => {
    const e = corrupt(() => decodeExtentNode(makeNode(60, { max: 4, depth: 1 }, []), 60, ROOT));
    expect(e.code).toBe("EFSCORRUPTED");
  });

  // Regression test (the engine got this wrong before; references are to the code of that time): src/format/extent.ts:104. ext4_valid_extent rejects `lblock + len <= lblock` in 32-bit
  // arithmetic, so an extent ending exactly at 2^32 (its last block would be EXT_MAX_BLOCKS =
  // 0xffffffff) is invalid; decodeExtentNode tests `ee_block + len > 2 ** 32` and accepts it.
  // Fix: `>= 2 ** 32`.
  it("rejects an extent whose end wraps the 32-bit logical block space", () => {
    const e = corrupt(() => decodeExtentNode(makeNode(60, { max: 4, depth: 0 }, [[2 ** 32 - 8, 8, 100]]), 60, ROOT));
    expect(e.code).toBe("EFSCORRUPTED");
  });
});

// ---------------------------------------------------------------------------------------
// Real images

const oracle = oracleAvailability(["mke2fs", "debugfs"]);

interface Leaf {
  lblk: number;
  len: number;
  pblk: number;
  unwritten: boolean;
}

/** Walks an extent tree of an image, checking the round trip of every node on the way. */
function walkTree(img: Uint8Array, iblock: Uint8Array, onNode: (bytes: Uint8Array, node: ExtentNode, pblk: number | null) => void): Leaf[] {
  const sb = decodeSuperblock(img);
  const bs = blockSize(sb);
  const total = blocksCount(sb);
  const leaves: Leaf[] = [];
  const visit = (bytes: Uint8Array, size: number, pblk: number | null, depth: number | undefined): void => {
    const node = decodeExtentNode(bytes, size, { isRoot: pblk === null, blocksCount: total, firstDataBlock: 0, ...(depth === undefined ? {} : { expectedDepth: depth }) });
    onNode(bytes, node, pblk);
    if ("extents" in node) leaves.push(...node.extents);
    else for (const x of node.indexes) visit(img.subarray(x.pblk * bs, (x.pblk + 1) * bs), bs, x.pblk, node.depth - 1);
  };
  visit(iblock, 60, null, undefined);
  return leaves;
}

/** Re-encodes header, slots and (outside the root) the tail of a node into a scribbled copy. */
function reencode(bytes: Uint8Array, node: ExtentNode, isRoot: boolean): Uint8Array {
  const copy = bytes.slice();
  const used = 12 + node.header.eh_entries * 12;
  copy.fill(0xee, 0, used);
  extentHeader.encode(node.header, copy, 0);
  for (let i = 0; i < node.header.eh_entries; i++) {
    const at = 12 + i * 12;
    if (node.depth === 0) extentLeaf.encode(extentLeaf.decode(bytes, at), copy, at);
    else extentIdx.encode(extentIdx.decode(bytes, at), copy, at);
  }
  if (!isRoot && extentTailOffset(node.header) + 4 <= bytes.length) {
    const t = extentTailOffset(node.header);
    copy.fill(0xee, t, t + 4);
    extentTail.encode(extentTail.decode(bytes, t), copy, t);
  }
  return copy;
}

/** `debugfs ex` leaf rows: logical start, length, physical start, unwritten. */
function debugfsLeaves(image: string, file: string): Leaf[] {
  const out = run(tool("debugfs"), ["-R", `ex ${file}`, image]).stdout;
  const rows: Leaf[] = [];
  for (const line of out.split("\n")) {
    const m = /^\s*(\d+)\/\s*(\d+)\s+\d+\/\s*\d+\s+(\d+)\s+-\s+(\d+)\s+(\d+)\s+-\s+(\d+)\s+(\d+)\s*(Uninit)?\s*$/.exec(line);
    if (m === null || m[1] !== m[2]) continue; // index rows have level < depth
    rows.push({ lblk: Number(m[3]), len: Number(m[7]), pblk: Number(m[5]), unwritten: m[8] !== undefined });
  }
  return rows;
}

describe.skipIf(!oracle.ok && !oracle.required)("extent trees of mke2fs images", () => {
  oracleGate(oracle);
  let work = "";
  const images: { name: string; path: string; bytes: Uint8Array }[] = [];
  const FILES = ["/sparse-5", "/sparse-30", "/sparse-400", "/contig"];

  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), "ext4ts-extent-test-"));
    const tree = path.join(work, "tree");
    mkdirSync(tree);
    // A data block, then a hole, n times: n extents (mke2fs -d keeps holes).
    const sparse = (name: string, n: number, bs: number): void => {
      const data = new Uint8Array(2 * n * bs);
      for (let i = 0; i < n; i++) data.fill(1 + (i % 250), 2 * i * bs, 2 * i * bs + bs);
      writeFileSync(path.join(tree, name), data);
    };
    sparse("sparse-5", 5, 4096);
    sparse("sparse-30", 30, 4096);
    sparse("sparse-400", 400, 4096); // > 4 * 340 leaves? no: 400 extents -> 2 leaves at 4 KiB, 5 at 1 KiB
    writeFileSync(path.join(tree, "contig"), new Uint8Array(200 * 1024).fill(3));
    for (const [name, bs] of [["ext4-4k", 4096], ["ext4-1k", 1024]] as const) {
      const img = path.join(work, `${name}.img`);
      run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-b", String(bs), "-I", "256", "-d", tree, img, "32M"]);
      const buf = readFileSync(img);
      images.push({ name, path: img, bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) });
    }
  });

  afterAll(() => {
    if (work !== "") rmSync(work, { recursive: true, force: true });
  });

  function rawInodeOf(img: Uint8Array, ino: number): ReturnType<typeof decodeInode> {
    const sb = decodeSuperblock(img);
    const bs = blockSize(sb);
    const g = Math.floor((ino - 1) / sb.s_inodes_per_group);
    const loc = groupDescLocation(sb, g);
    const gd = decodeGroupDesc(img, loc.block * bs + loc.offset, descSize(sb));
    return decodeInode(img, inodeTable(gd, descSize(sb)) * bs + ((ino - 1) % sb.s_inodes_per_group) * inodeSize(sb), inodeSize(sb));
  }

  function inoOf(image: string, file: string): number {
    const m = /Inode: (\d+)/.exec(run(tool("debugfs"), ["-R", `stat ${file}`, image]).stdout);
    if (m === null) throw new Error(`no inode for ${file}`);
    return Number(m[1]);
  }

  it("decodes every leaf as debugfs ex lists it, with trees of depth 1 and 2", () => {
    const depths = new Set<number>();
    for (const img of images) {
      for (const file of FILES) {
        const raw = rawInodeOf(img.bytes, inoOf(img.path, file));
        expect(raw.i_flags & EXT4_EXTENTS_FL).toBe(EXT4_EXTENTS_FL);
        let depth = 0;
        const leaves = walkTree(img.bytes, raw.i_block, (_b, node, pblk) => {
          if (pblk === null) depth = node.depth;
        });
        depths.add(depth);
        expect([img.name, file, leaves]).toEqual([img.name, file, debugfsLeaves(img.path, file)]);
      }
    }
    expect(depths).toEqual(new Set([0, 1, 2]));
  });

  it("re-encodes the root and every node to the same bytes: encode(decode(b)) == b", () => {
    let nodes = 0;
    for (const img of images) {
      for (const file of FILES) {
        const raw = rawInodeOf(img.bytes, inoOf(img.path, file));
        walkTree(img.bytes, raw.i_block, (bytes, node, pblk) => {
          nodes++;
          expect([img.name, file, pblk, reencode(bytes, node, pblk === null)]).toEqual([img.name, file, pblk, bytes]);
        });
        // The root sits in i_block at 0x28 of the inode and round-trips with it.
        expect(inodeStruct.offsetOf("i_block")).toBe(0x28);
      }
    }
    expect(nodes).toBeGreaterThan(10);
  });
});
