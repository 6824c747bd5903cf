/**
 * ExtentTree.setBmap against the shapes libext2fs's ext2fs_extent_set_bmap leaves (checked
 * with e2fsck 1.47.0's clone of f_extents and of made-up images): a block inside an extent
 * splits it, a first block joins the extent before it, a last block the one after it, an
 * extent's only block is replaced in place, and a full root moves into a new leaf.
 */
import { describe, expect, it } from "vitest";
import { EXT4_EXT_MAGIC } from "../format/extent.js";
import type { RawInode } from "../format/inode.js";
import { put16, put32, u16, u32 } from "./bytes.js";
import type { CheckContext } from "./context.js";
import { ExtentTree } from "./extent_edit.js";

type Ext = [lblk: number, len: number, pblk: number];

/** A depth-0 root in i_block holding `exts`. */
function rootOf(exts: Ext[]): Uint8Array {
  const b = new Uint8Array(60);
  put16(b, 0, EXT4_EXT_MAGIC);
  put16(b, 2, exts.length);
  put16(b, 4, 4);
  exts.forEach(([l, n, p], i) => {
    put32(b, 12 + i * 12, l);
    put16(b, 16 + i * 12, n);
    put32(b, 20 + i * 12, p);
  });
  return b;
}

/** The leaf extents of a node's bytes. */
function leafOf(b: Uint8Array): Ext[] {
  return Array.from({ length: u16(b, 2) }, (_, i): Ext => [u32(b, 12 + i * 12), u16(b, 16 + i * 12), u32(b, 20 + i * 12)]);
}

/** Just enough of a check context for a tree in i_block: blocks and the inode written are kept. */
function fake(): { c: CheckContext; blocks: Map<number, Uint8Array>; inode: Partial<RawInode> } {
  const blocks = new Map<number, Uint8Array>();
  const inode: Partial<RawInode> = {};
  const c = {
    v: {
      blockSize: 1024, clusterRatio: 1, f: { metadataCsum: false, hugeFile: false }, csumSeed: 0,
      blockValid: (b: number) => b >= 1 && b < 8192,
      readBlock: (b: number) => Promise.resolve(blocks.get(b) ?? new Uint8Array(1024)),
    },
    out: {
      writeBlock: (b: number, d: Uint8Array) => {
        blocks.set(b, d.slice());
        return Promise.resolve();
      },
      writeInode: (_ino: number, f: Partial<RawInode>) => {
        Object.assign(inode, f);
        return Promise.resolve(new Uint8Array(0));
      },
    },
  } as unknown as CheckContext;
  return { c, blocks, inode };
}

async function treeOf(c: CheckContext, exts: Ext[], alloc = (goal: number) => Promise.resolve(goal)): Promise<{ tree: ExtentTree; raw: RawInode }> {
  const raw = { i_block: rootOf(exts), i_generation: 0, i_flags: 0, i_blocks_lo: 8, l_i_blocks_high: 0 } as unknown as RawInode;
  const tree = await ExtentTree.load(c, 12, raw, alloc);
  if (typeof tree === "string") throw new Error(tree);
  return { tree, raw };
}

describe("ExtentTree.setBmap (ext2fs_extent_set_bmap remapping a mapped block)", () => {
  it("splits, joins the extent before, and replaces an only block as f_extents' clone does", async () => {
    const { c, inode } = fake();
    const { tree } = await treeOf(c, [[0, 4, 100]]);
    await tree.setBmap(1, 500, false); // inside: three extents
    await tree.setBmap(2, 501, false); // first of (2-3): joins (1:500)
    await tree.setBmap(3, 502, false); // only block of (3:103): replaced, not joined
    await tree.flush();
    expect(leafOf(inode.i_block!)).toEqual([[0, 1, 100], [1, 2, 500], [3, 1, 502]]);
  });

  it("a last block joins the extent after it when that extent continues it", async () => {
    const { c, inode } = fake();
    const { tree } = await treeOf(c, [[0, 2, 100], [2, 2, 201]]);
    await tree.setBmap(1, 200, false);
    await tree.flush();
    expect(leafOf(inode.i_block!)).toEqual([[0, 1, 100], [1, 3, 200]]);
  });

  it("a full root moves into a new leaf, one cluster before its first block, counted in i_blocks", async () => {
    const { c, blocks, inode } = fake();
    const goals: number[] = [];
    const { tree } = await treeOf(c, [[0, 3, 100], [4, 3, 104], [8, 3, 108], [12, 3, 112]], (goal) => {
      goals.push(goal);
      return Promise.resolve(900);
    });
    await tree.setBmap(13, 700, false);
    await tree.flush();
    expect(goals).toEqual([99]);
    const root = inode.i_block!;
    expect([u16(root, 2), u16(root, 6), u32(root, 12), u32(root, 16)]).toEqual([1, 1, 0, 900]);
    expect(leafOf(blocks.get(900)!)).toEqual([[0, 3, 100], [4, 3, 104], [8, 3, 108], [12, 1, 112], [13, 1, 700], [14, 1, 114]]);
    expect(u16(blocks.get(900)!, 4)).toBe(84);
    expect(inode.i_blocks_lo).toBe(10);
  });
});
