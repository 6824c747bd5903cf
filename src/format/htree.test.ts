/**
 * Hashed directory index blocks: layout against Documentation/filesystems/ext4/directory.rst
 * ("Hash Tree Directories"), capacities against dx_root_limit/dx_node_limit (fs/ext4/namei.c),
 * the root and node checks of dx_probe on hand-made blocks, and, on mke2fs -d images indexed by
 * `e2fsck -fD` (one and two levels, with and without metadata_csum), every index block decoded
 * as `debugfs htree` prints it and re-encoded to the same bytes.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { oracleAvailability, oracleGate, run, tool } from "../../test/oracle/oracle_env.js";
import { FsError } from "../errors.js";
import {
  DX_NODE_ENTRIES_OFFSET,
  DX_ROOT_ENTRIES_OFFSET,
  EXT4_DX_UNUSED_FLAG_UNIMPLEMENTED,
  decodeDxNode,
  decodeDxRoot,
  dxCountLimit,
  dxEntry,
  dxNodeHeader,
  dxNodeLimit,
  dxRoot,
  dxRootLimit,
  dxTail,
  dxTailOffset,
  looksLikeDxNode,
  type DxNode,
} from "./htree.js";
import { blockSize, decodeSuperblock } from "./superblock.js";

describe("htree layout (directory.rst)", () => {
  it("puts dx_root_info at 0x18, after the fake '.' and '..' entries, and the entries at 0x20", () => {
    expect(dxRoot.size).toBe(0x20);
    expect(dxRoot.offsetOf("dot_rec_len")).toBe(0x4);
    expect(dxRoot.offsetOf("dot_name")).toBe(0x8);
    expect(dxRoot.offsetOf("dotdot_inode")).toBe(0xc);
    expect(dxRoot.offsetOf("dotdot_rec_len")).toBe(0x10);
    expect(dxRoot.offsetOf("dotdot_name")).toBe(0x14);
    expect(dxRoot.offsetOf("reserved_zero")).toBe(0x18);
    expect(dxRoot.offsetOf("hash_version")).toBe(0x1c);
    expect(dxRoot.offsetOf("info_length")).toBe(0x1d);
    expect(dxRoot.offsetOf("indirect_levels")).toBe(0x1e);
    expect(dxRoot.offsetOf("unused_flags")).toBe(0x1f);
    expect(DX_ROOT_ENTRIES_OFFSET + 8).toBe(0x20);
  });

  it("has 8-byte dx_node fake entries, count/limit pairs, dx_entry and dx_tail", () => {
    expect([dxNodeHeader.size, dxCountLimit.size, dxEntry.size, dxTail.size]).toEqual([8, 8, 8, 8]);
    expect(DX_NODE_ENTRIES_OFFSET).toBe(8);
    expect([dxCountLimit.offsetOf("limit"), dxCountLimit.offsetOf("count"), dxCountLimit.offsetOf("block")]).toEqual([0, 2, 4]);
    expect([dxEntry.offsetOf("hash"), dxEntry.offsetOf("block")]).toEqual([0, 4]);
    expect([dxTail.offsetOf("dt_reserved"), dxTail.offsetOf("dt_checksum")]).toEqual([0, 4]);
    expect(EXT4_DX_UNUSED_FLAG_UNIMPLEMENTED).toBe(1);
  });

  it("computes the limits of dx_root_limit and dx_node_limit", () => {
    // (bs - 12 - 12 - 8 [- 8 with csum]) / 8 and (bs - 8 [- 8]) / 8
    expect([dxRootLimit(4096, 8, false), dxRootLimit(4096, 8, true)]).toEqual([508, 507]);
    expect([dxRootLimit(1024, 8, false), dxRootLimit(1024, 8, true)]).toEqual([124, 123]);
    expect([dxNodeLimit(4096, false), dxNodeLimit(4096, true)]).toEqual([511, 510]);
    expect([dxNodeLimit(1024, false), dxNodeLimit(1024, true)]).toEqual([127, 126]);
  });

  it("puts the dx_tail right after `limit` entries", () => {
    expect(dxTailOffset({ entriesOffset: 0x20, limit: 507 })).toBe(4096 - 8);
    expect(dxTailOffset({ entriesOffset: 8, limit: 126 })).toBe(1024 - 8);
  });
});

// ---------------------------------------------------------------------------------------
// Hand-made blocks

function makeRoot(bs: number, o: { limit: number; count?: number; entries: [number, number][]; infoLength?: number; dots?: boolean; levels?: number }): Uint8Array {
  const b = new Uint8Array(bs);
  const info = o.infoLength ?? 8;
  dxRoot.encode(
    {
      dot_inode: 12, dot_rec_len: 12, dot_name_len: 1, dot_file_type: 2, dot_name: new Uint8Array([0x2e, 0, 0, 0]),
      dotdot_inode: 2, dotdot_rec_len: bs - 12, dotdot_name_len: 2, dotdot_file_type: 2,
      dotdot_name: o.dots === false ? new Uint8Array([0x2e, 0x78, 0, 0]) : new Uint8Array([0x2e, 0x2e, 0, 0]),
      reserved_zero: 0, hash_version: 1, info_length: info, indirect_levels: o.levels ?? 0, unused_flags: 0,
    },
    b,
  );
  const at = DX_ROOT_ENTRIES_OFFSET + info;
  dxCountLimit.encode({ limit: o.limit, count: o.count ?? o.entries.length, block: o.entries[0]?.[1] ?? 1 }, b, at);
  o.entries.slice(1).forEach(([hash, block], i) => dxEntry.encode({ hash, block }, b, at + (i + 1) * 8));
  return b;
}

function corrupt(fn: () => unknown): FsError {
  try {
    fn();
  } catch (e) {
    if (e instanceof FsError) return e;
    throw e;
  }
  throw new Error("expected an FsError, nothing was thrown");
}

describe("decodeDxRoot() and decodeDxNode()", () => {
  it("decode a root: info, count/limit and entries, entry 0's hash being 0", () => {
    const r = decodeDxRoot(makeRoot(1024, { limit: 123, entries: [[0, 1], [0x1000, 2], [0x8000, 3]] }), 1024, true);
    expect(r).toMatchObject({ hashVersion: 1, indirectLevels: 0, infoLength: 8, unusedFlags: 0, dotInode: 12, dotdotInode: 2, entriesOffset: 0x20, limit: 123, count: 3 });
    expect(r.entries).toEqual([{ hash: 0, block: 1 }, { hash: 0x1000, block: 2 }, { hash: 0x8000, block: 3 }]);
  });

  it("decode an interior node spanning the block", () => {
    const b = new Uint8Array(1024);
    dxNodeHeader.encode({ fake_inode: 0, fake_rec_len: 1024, fake_name_len: 0, fake_file_type: 0 }, b, 0);
    dxCountLimit.encode({ limit: 127, count: 2, block: 5 }, b, 8);
    dxEntry.encode({ hash: 0x42, block: 6 }, b, 16);
    expect(looksLikeDxNode(b, 1024)).toBe(true);
    expect(decodeDxNode(b, 1024, false)).toEqual({ entriesOffset: 8, limit: 127, count: 2, entries: [{ hash: 0, block: 5 }, { hash: 0x42, block: 6 }] });
    const leaf = b.slice();
    leaf[0] = 1; // a used entry: a leaf block, not a node
    expect(looksLikeDxNode(leaf, 1024)).toBe(false);
    expect(corrupt(() => decodeDxNode(leaf, 1024, false)).message).toMatch(/not an empty entry spanning the block/);
  });

  const cases: [string, Uint8Array, boolean, RegExp][] = [
    ["dx entry: limit != root limit", makeRoot(1024, { limit: 124, entries: [[0, 1]] }), true, /limit 124, expected 123/],
    ["dx entry: count 0", makeRoot(1024, { limit: 124, count: 0, entries: [] }), false, /count 0/],
    ["dx entry: count beyond limit", makeRoot(1024, { limit: 124, count: 125, entries: [[0, 1]] }), false, /count 125 with limit 124/],
    ["info_length is not 8", makeRoot(1024, { limit: 124, entries: [[0, 1]], infoLength: 12 }), false, /info_length 12/],
    ["second entry is not '..'", makeRoot(1024, { limit: 124, entries: [[0, 1]], dots: false }), false, /not '\.\.'/],
  ];
  for (const [what, block, csum, re] of cases) {
    it(`rejects a root with "${what}" as EFSCORRUPTED naming inode and block`, () => {
      const e = corrupt(() => decodeDxRoot(block, 1024, csum, { ino: 12, block: 99 }));
      expect(e.code).toBe("EFSCORRUPTED");
      expect(e.message).toMatch(re);
      expect(e.message).toMatch(/\(inode 12, block 99\)$/);
    });
  }
});

// ---------------------------------------------------------------------------------------
// Real images

const oracle = oracleAvailability(["mke2fs", "e2fsck", "debugfs"]);

interface DebugfsIndexNode {
  count: number;
  limit: number;
  checksum: number | undefined;
  entries: { hash: number; block: number }[];
}

/** Index nodes in the order `debugfs htree` prints them: the root, then each interior node. */
function parseDebugfsHtree(out: string): { levels: number; hashVersion: number; nodes: DebugfsIndexNode[] } {
  const lines = out.split("\n");
  const levels = Number(/Indirect levels: (\d+)/.exec(out)?.[1]);
  const hashVersion = Number(/Hash Version: (\d+)/.exec(out)?.[1]);
  const nodes: DebugfsIndexNode[] = [];
  for (let i = 0; i < lines.length; i++) {
    const c = /^Number of entries \(count\): (\d+)/.exec(lines[i]!);
    if (c === null) continue;
    const limit = Number(/\(limit\): (\d+)/.exec(lines[i + 1]!)?.[1]);
    let j = i + 2;
    const sum = /^Checksum: 0x([0-9a-f]+)/.exec(lines[j] ?? "");
    if (sum !== null) j++;
    const entries: { hash: number; block: number }[] = [];
    for (let k = 0; k < Number(c[1]); k++, j++) {
      const m = /^Entry #\d+: Hash 0x([0-9a-f]+), block (\d+)/.exec(lines[j]!);
      if (m === null) throw new Error(`debugfs htree: expected an entry at line ${j}: ${lines[j]}`);
      entries.push({ hash: parseInt(m[1]!, 16), block: Number(m[2]) });
    }
    nodes.push({ count: Number(c[1]), limit, checksum: sum === null ? undefined : parseInt(sum[1]!, 16), entries });
  }
  return { levels, hashVersion, nodes };
}

describe.skipIf(!oracle.ok && !oracle.required)("htree index blocks of e2fsck -D indexed images", () => {
  oracleGate(oracle);
  let work = "";
  const images: { name: string; path: string; bytes: Uint8Array; csum: boolean; dir: string; levels: number }[] = [];

  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), "ext4ts-htree-test-"));
    const tree = path.join(work, "tree");
    mkdirSync(path.join(tree, "one-level"), { recursive: true });
    mkdirSync(path.join(tree, "two-level"));
    for (let i = 0; i < 300; i++) writeFileSync(path.join(tree, "one-level", `entry-${i}`), "");
    // 255-byte names: 3 per 1 KiB block, so > 123 leaves need a second index level.
    for (let i = 0; i < 500; i++) writeFileSync(path.join(tree, "two-level", `${String(i).padStart(4, "0")}${"n".repeat(251)}`), "");
    const variants: [string, string[], boolean, string, number][] = [
      ["ext4-4k-csum", ["-t", "ext4", "-b", "4096"], true, "/one-level", 0],
      ["ext4-1k-csum", ["-t", "ext4", "-b", "1024"], true, "/two-level", 1],
      ["ext4-1k-nocsum", ["-t", "ext4", "-b", "1024", "-O", "^metadata_csum"], false, "/two-level", 1],
    ];
    for (const [name, args, csum, dir, levels] of variants) {
      const img = path.join(work, `${name}.img`);
      run(tool("mke2fs"), ["-q", "-F", ...args, "-I", "256", "-N", "2048", "-d", tree, img, "32M"]);
      run(tool("e2fsck"), ["-fyD", img], { okCodes: [0, 1] });
      const buf = readFileSync(img);
      images.push({ name, path: img, bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), csum, dir, levels });
    }
  });

  afterAll(() => {
    if (work !== "") rmSync(work, { recursive: true, force: true });
  });

  it("decodes the root and every interior node as debugfs htree prints them", () => {
    for (const img of images) {
      const bs = blockSize(decodeSuperblock(img.bytes));
      const blocks = run(tool("debugfs"), ["-R", `blocks ${img.dir}`, img.path]).stdout.trim().split(/\s+/).map(Number);
      const block = (lblk: number): Uint8Array => img.bytes.subarray(blocks[lblk]! * bs, (blocks[lblk]! + 1) * bs);
      const want = parseDebugfsHtree(run(tool("debugfs"), ["-R", `htree ${img.dir}`, img.path]).stdout);
      const root = decodeDxRoot(block(0), bs, img.csum);
      expect([img.name, root.indirectLevels, root.hashVersion]).toEqual([img.name, img.levels, want.hashVersion]);
      expect(want.levels).toBe(img.levels);
      const got: { count: number; limit: number; entries: { hash: number; block: number }[]; tail: DxNode }[] = [
        { count: root.count, limit: root.limit, entries: root.entries, tail: root },
      ];
      if (root.indirectLevels > 0) {
        for (const e of root.entries) {
          const b = block(e.block);
          expect(looksLikeDxNode(b, bs)).toBe(true);
          const n = decodeDxNode(b, bs, img.csum);
          got.push({ count: n.count, limit: n.limit, entries: n.entries, tail: n });
        }
      }
      expect(got.length).toBe(want.nodes.length);
      got.forEach((g, i) => {
        const w = want.nodes[i]!;
        expect([img.name, i, g.count, g.limit, g.entries]).toEqual([img.name, i, w.count, w.limit, w.entries]);
        if (img.csum) {
          const at = dxTailOffset(g.tail);
          const lblk = i === 0 ? 0 : root.entries[i - 1]!.block;
          expect([img.name, i, dxTail.decode(block(lblk), at).dt_checksum]).toEqual([img.name, i, w.checksum]);
        }
      });
    }
  });

  it("re-encodes roots, nodes, entries and tails to the same bytes: encode(decode(b)) == b", () => {
    for (const img of images) {
      const bs = blockSize(decodeSuperblock(img.bytes));
      const blocks = run(tool("debugfs"), ["-R", `blocks ${img.dir}`, img.path]).stdout.trim().split(/\s+/).map(Number);
      const block = (lblk: number): Uint8Array => img.bytes.subarray(blocks[lblk]! * bs, (blocks[lblk]! + 1) * bs);
      const root = decodeDxRoot(block(0), bs, img.csum);
      const check = (orig: Uint8Array, header: "root" | "node", entriesOffset: number, limit: number, count: number): void => {
        const copy = orig.slice();
        const used = entriesOffset + count * 8;
        copy.fill(0xee, 0, used);
        if (header === "root") dxRoot.encode(dxRoot.decode(orig, 0), copy, 0);
        else dxNodeHeader.encode(dxNodeHeader.decode(orig, 0), copy, 0);
        dxCountLimit.encode(dxCountLimit.decode(orig, entriesOffset), copy, entriesOffset);
        for (let i = 1; i < count; i++) dxEntry.encode(dxEntry.decode(orig, entriesOffset + i * 8), copy, entriesOffset + i * 8);
        if (img.csum) {
          const t = dxTailOffset({ entriesOffset, limit });
          copy.fill(0xee, t, t + 8);
          dxTail.encode(dxTail.decode(orig, t), copy, t);
        }
        expect([img.name, header, copy]).toEqual([img.name, header, orig]);
      };
      check(block(0), "root", root.entriesOffset, root.limit, root.count);
      if (root.indirectLevels > 0) {
        for (const e of root.entries) {
          const n = decodeDxNode(block(e.block), bs, img.csum);
          check(block(e.block), "node", n.entriesOffset, n.limit, n.count);
        }
      }
    }
  });
});
