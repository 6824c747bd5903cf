/**
 * Every metadata checksum rule of format/checksum.ts:
 *  - against a second, naive reading of the kernel's rule (copy the structure, zero the
 *    checksum field, crc the copy) on random bytes (fast-check);
 *  - on real images, where e2fsprogs (mke2fs -d, e2fsck -D, tune2fs) or the kernel (loop
 *    mount) wrote the checksums: the superblock, every group descriptor (crc32c and the crc16
 *    of gdt_csum, 32- and 64-byte), both bitmaps, every initialized inode (16- and 32-bit),
 *    every extent block, every directory leaf tail and dx tail, every xattr block; with and
 *    without metadata_csum_seed. Flipping one bit must then make each check fail.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupImages, withLoopMount } from "../../test/oracle/images.js";
import { canLoopMount, oracleAvailability, oracleGate, requireOrSkip, run, tool } from "../../test/oracle/oracle_env.js";
import {
  bitmapChecksum,
  dirBlockChecksum,
  dxBlockChecksum,
  extentBlockChecksum,
  fsChecksumSeed,
  groupDescChecksum,
  inodeChecksum,
  inodeChecksumSeed,
  storedInodeChecksum,
  superblockChecksum,
  verifyInodeChecksum,
  xattrBlockChecksum,
} from "./checksum.js";
import { crc16, crc32c } from "./crc.js";
import { dirEntryTail, hasDirTail } from "./dirent.js";
import { decodeExtentNode, extentTail, extentTailOffset } from "./extent.js";
import {
  EXT4_BG_BLOCK_UNINIT,
  EXT4_BG_INODE_UNINIT,
  blockBitmap,
  blockBitmapCsum,
  decodeGroupDesc,
  groupDescLocation,
  inodeBitmap,
  inodeBitmapCsum,
  inodeTable,
  itableUnused,
  type GroupDesc,
} from "./group_desc.js";
import { decodeDxNode, decodeDxRoot, dxTail, dxTailOffset, looksLikeDxNode, type DxNode } from "./htree.js";
import { EXT4_EXTENTS_FL, EXT4_INDEX_FL, EXT4_INLINE_DATA_FL, S_IFDIR, S_IFMT, decodeInode, type RawInode } from "./inode.js";
import {
  EXT4_FEATURE_INCOMPAT_64BIT,
  EXT4_FEATURE_INCOMPAT_CSUM_SEED,
  EXT4_FEATURE_RO_COMPAT_GDT_CSUM,
  EXT4_FEATURE_RO_COMPAT_METADATA_CSUM,
  SUPERBLOCK_OFFSET,
  blockSize,
  blocksCount,
  clustersPerGroup,
  decodeSuperblock,
  descSize,
  groupCount,
  hasIncompat,
  hasRoCompat,
  inodeSize,
  type Superblock,
} from "./superblock.js";
import { xattrHeader } from "./xattr.js";

// ---------------------------------------------------------------------------------------
// The rules, read a second time

const le32 = (v: number): Uint8Array => new Uint8Array([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]);
const cat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const zeroed = (b: Uint8Array, at: number, n: number): Uint8Array => {
  const c = b.slice();
  c.fill(0, at, at + n);
  return c;
};

describe("checksum rules against a naive reading of the kernel", () => {
  it("fsChecksumSeed() is s_checksum_seed with metadata_csum_seed, else crc32c(~0, s_uuid)", () => {
    const uuid = new Uint8Array(16).map((_, i) => i * 17);
    expect(fsChecksumSeed(uuid, true, 0xdeadbeef)).toBe(0xdeadbeef);
    expect(fsChecksumSeed(uuid, false, 0xdeadbeef)).toBe(crc32c(0xffffffff, uuid));
  });

  it("inodeChecksum() is crc32c(seed, inode with both halves zeroed, i_checksum_hi only if it fits)", () => {
    fc.assert(
      fc.property(fc.constantFrom(128, 160, 256, 512), fc.uint8Array({ minLength: 512, maxLength: 512 }), fc.nat({ max: 8 }), fc.nat(), fc.nat({ max: 7 }), (size, bytes, extraWords, seed, at) => {
        const raw = bytes.slice(0, size);
        if (size > 128) raw.set([extraWords * 4, 0], 0x80); // i_extra_isize 0..32
        const hiFits = size > 128 && extraWords * 4 >= 4;
        let copy = zeroed(raw, 0x7c, 2);
        if (hiFits) copy = zeroed(copy, 0x82, 2);
        const want = crc32c(seed, copy);
        expect(inodeChecksum(raw, 0, size, seed)).toBe(want);
        // Inside a larger buffer, word-aligned (one pass of 16-byte steps) or not (the general path).
        const inBuf = new Uint8Array(at + size + 8);
        inBuf.set(raw, at);
        expect(inodeChecksum(inBuf, at, size, seed)).toBe(want);
        // Stored 32 bits when i_checksum_hi fits, else 16.
        raw.set([want & 0xff, (want >>> 8) & 0xff], 0x7c);
        if (hiFits) raw.set([(want >>> 16) & 0xff, want >>> 24], 0x82);
        expect(storedInodeChecksum(raw, 0, size)).toBe(hiFits ? want : want & 0xffff);
        expect(verifyInodeChecksum(raw, 0, size, seed)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("inodeChecksumSeed() feeds le32 inode number then le32 generation", () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.nat(), (seed, ino, gen) => {
        expect(inodeChecksumSeed(seed, ino, gen)).toBe(crc32c(seed, cat(le32(ino), le32(gen))));
      }),
    );
  });

  it("groupDescChecksum() is crc32c(seed, le32 group, desc with bg_checksum zeroed) & 0xffff, or the crc16 of gdt_csum", () => {
    fc.assert(
      fc.property(fc.constantFrom(32, 64, 128), fc.uint8Array({ minLength: 128, maxLength: 128 }), fc.nat(), fc.nat(), fc.boolean(), (ds, bytes, group, seed, is64bit) => {
        const desc = bytes.slice(0, ds);
        const uuid = bytes.slice(100, 116);
        const o = { csumSeed: seed, uuid, descSize: ds, is64bit };
        expect(groupDescChecksum(desc, group, { ...o, metadataCsum: true, gdtCsum: false })).toBe(crc32c(seed, cat(le32(group), zeroed(desc, 0x1e, 2))) & 0xffff);
        // crc16: uuid, group, the descriptor up to bg_checksum, and the rest only with 64bit.
        const rest = is64bit ? desc.subarray(0x20) : new Uint8Array(0);
        expect(groupDescChecksum(desc, group, { ...o, metadataCsum: false, gdtCsum: true })).toBe(crc16(0xffff, cat(uuid, le32(group), desc.subarray(0, 0x1e), rest)));
        expect(groupDescChecksum(desc, group, { ...o, metadataCsum: false, gdtCsum: false })).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it("superblockChecksum() covers bytes 0..0x3fb", () => {
    const sb = new Uint8Array(1024).map((_, i) => i * 7);
    expect(superblockChecksum(sb)).toBe(crc32c(0xffffffff, sb.subarray(0, 0x3fc)));
  });

  it("xattrBlockChecksum() is crc32c(fs seed, le64 block number, block with h_checksum zeroed)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1024, maxLength: 1024 }), fc.nat(), fc.integer({ min: 0, max: 2 ** 48 }), (block, seed, nr) => {
        const want = crc32c(seed, cat(le32(nr % 2 ** 32), le32(Math.floor(nr / 2 ** 32)), zeroed(block, 0x10, 4)));
        expect(xattrBlockChecksum(block, nr, 1024, seed)).toBe(want);
      }),
      { numRuns: 100 },
    );
  });

  it("dxBlockChecksum() covers the used entries, then the dx_tail with dt_checksum zeroed (ext4_dx_csum)", () => {
    const block = new Uint8Array(1024).map((_, i) => i * 13 + 1);
    const want = crc32c(77, cat(block.subarray(0, 8 + 5 * 8), block.subarray(1016, 1020), new Uint8Array(4)));
    expect(dxBlockChecksum(block, 8, 5, 1016, 77)).toBe(want);
  });

  it("dirBlockChecksum() and extentBlockChecksum() cover everything before their tails", () => {
    const block = new Uint8Array(4096).map((_, i) => i * 5 + 3);
    expect(dirBlockChecksum(block, 4096, 9)).toBe(crc32c(9, block.subarray(0, 4084)));
    expect(extentBlockChecksum(block, 4092, 9)).toBe(crc32c(9, block.subarray(0, 4092)));
    expect(bitmapChecksum(block, 16, 9)).toBe(crc32c(9, block.subarray(0, 16)));
  });
});

// ---------------------------------------------------------------------------------------
// Real images

/** An image decoded just enough to find and check every checksummed structure. */
class Img {
  readonly sb: Superblock;
  readonly bs: number;
  readonly isz: number;
  readonly ds: number;
  readonly seed: number;
  readonly metadataCsum: boolean;
  readonly gdtCsum: boolean;
  readonly total: number;

  constructor(readonly name: string, readonly bytes: Uint8Array) {
    this.sb = decodeSuperblock(bytes);
    this.bs = blockSize(this.sb);
    this.isz = inodeSize(this.sb);
    this.ds = descSize(this.sb);
    this.metadataCsum = hasRoCompat(this.sb, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM);
    this.gdtCsum = hasRoCompat(this.sb, EXT4_FEATURE_RO_COMPAT_GDT_CSUM);
    this.seed = fsChecksumSeed(this.sb.s_uuid, hasIncompat(this.sb, EXT4_FEATURE_INCOMPAT_CSUM_SEED), this.sb.s_checksum_seed);
    this.total = blocksCount(this.sb);
  }

  block(n: number): Uint8Array {
    return this.bytes.subarray(n * this.bs, (n + 1) * this.bs);
  }

  groups(): { g: number; gd: GroupDesc; raw: Uint8Array }[] {
    const out: { g: number; gd: GroupDesc; raw: Uint8Array }[] = [];
    for (let g = 0; g < groupCount(this.sb); g++) {
      const loc = groupDescLocation(this.sb, g);
      const at = loc.block * this.bs + loc.offset;
      out.push({ g, gd: decodeGroupDesc(this.bytes, at, this.ds), raw: this.bytes.subarray(at, at + this.ds) });
    }
    return out;
  }

  /** Initialized inode slots that are not all zero. */
  inodes(): { ino: number; offset: number; raw: RawInode }[] {
    const out: { ino: number; offset: number; raw: RawInode }[] = [];
    const csum = this.metadataCsum || this.gdtCsum;
    for (const { g, gd } of this.groups()) {
      if (csum && gd.bg_flags & EXT4_BG_INODE_UNINIT) continue;
      const used = csum ? this.sb.s_inodes_per_group - itableUnused(gd, this.ds) : this.sb.s_inodes_per_group;
      for (let i = 0; i < used; i++) {
        const offset = inodeTable(gd, this.ds) * this.bs + i * this.isz;
        if (this.bytes.subarray(offset, offset + this.isz).every((b) => b === 0)) continue;
        out.push({ ino: g * this.sb.s_inodes_per_group + i + 1, offset, raw: decodeInode(this.bytes, offset, this.isz) });
      }
    }
    return out;
  }

  inodeSeed(ino: number, raw: RawInode): number {
    return inodeChecksumSeed(this.seed, ino, raw.i_generation);
  }

  /** Non-root extent nodes (block numbers) and leaf extents of an inode's tree. */
  extentTree(raw: RawInode): { nodes: number[]; leaves: { lblk: number; len: number; pblk: number; unwritten: boolean }[] } {
    const nodes: number[] = [];
    const leaves: { lblk: number; len: number; pblk: number; unwritten: boolean }[] = [];
    const visit = (b: Uint8Array, size: number, pblk: number | null, depth: number | undefined): void => {
      const n = decodeExtentNode(b, size, { isRoot: pblk === null, blocksCount: this.total, firstDataBlock: 0, ...(depth === undefined ? {} : { expectedDepth: depth }) });
      if (pblk !== null) nodes.push(pblk);
      if ("extents" in n) leaves.push(...n.extents);
      else for (const x of n.indexes) visit(this.block(x.pblk), this.bs, x.pblk, n.depth - 1);
    };
    visit(raw.i_block, 60, null, undefined);
    return { nodes, leaves };
  }
}

/** `strong`: the stored value is a full crc32c or a crc16, so every single-bit flip changes it. */
type Check = { what: string; ok: boolean; recheck: (bytes: Uint8Array) => boolean; span: [number, number]; strong: boolean };

/** Every checksum of an image as a list of checks; `recheck` re-runs one on other bytes. */
function checksOf(img: Img): Check[] {
  const checks: Check[] = [];
  const add = (what: string, span: [number, number], verify: (bytes: Uint8Array) => boolean, strong = true): void => {
    checks.push({ what, ok: verify(img.bytes), recheck: verify, span, strong });
  };
  const u32 = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
  const u16 = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8);
  const bs = img.bs;
  const blk = (b: Uint8Array, n: number): Uint8Array => b.subarray(n * bs, (n + 1) * bs);

  if (img.metadataCsum) {
    add("superblock", [SUPERBLOCK_OFFSET, SUPERBLOCK_OFFSET + 1024], (b) => superblockChecksum(b.subarray(SUPERBLOCK_OFFSET, SUPERBLOCK_OFFSET + 1024)) === u32(b, SUPERBLOCK_OFFSET + 0x3fc));
  }
  const is64 = hasIncompat(img.sb, EXT4_FEATURE_INCOMPAT_64BIT);
  for (const { g, gd, raw } of img.groups()) {
    const at = raw.byteOffset - img.bytes.byteOffset;
    const o = { csumSeed: img.seed, uuid: img.sb.s_uuid, metadataCsum: img.metadataCsum, gdtCsum: img.gdtCsum, descSize: img.ds, is64bit: is64 };
    // crc32c cut to 16 bits may miss a flip; the crc16 of gdt_csum never does.
    add(`group descriptor ${g}`, [at, at + img.ds], (b) => groupDescChecksum(b.subarray(at, at + img.ds), g, o) === u16(b, at + 0x1e), !img.metadataCsum);
    if (!img.metadataCsum) continue;
    if (!(gd.bg_flags & EXT4_BG_BLOCK_UNINIT)) {
      const n = blockBitmap(gd, img.ds);
      const want = blockBitmapCsum(gd, img.ds);
      const mask = img.ds >= 0x3a ? 0xffffffff : 0xffff;
      add(`block bitmap of group ${g}`, [n * bs, n * bs + clustersPerGroup(img.sb) / 8], (b) => ((bitmapChecksum(blk(b, n), clustersPerGroup(img.sb) / 8, img.seed) & mask) >>> 0) === want, mask !== 0xffff);
    }
    if (!(gd.bg_flags & EXT4_BG_INODE_UNINIT)) {
      const n = inodeBitmap(gd, img.ds);
      const want = inodeBitmapCsum(gd, img.ds);
      const mask = img.ds >= 0x3c ? 0xffffffff : 0xffff;
      add(`inode bitmap of group ${g}`, [n * bs, n * bs + img.sb.s_inodes_per_group / 8], (b) => ((bitmapChecksum(blk(b, n), img.sb.s_inodes_per_group / 8, img.seed) & mask) >>> 0) === want, mask !== 0xffff);
    }
  }
  if (!img.metadataCsum) return checks;

  for (const { ino, offset, raw } of img.inodes()) {
    const seed = img.inodeSeed(ino, raw);
    add(`inode ${ino}`, [offset, offset + img.isz], (b) => verifyInodeChecksum(b, offset, img.isz, seed), img.isz > 128 && raw.i_extra_isize >= 4);
    if (raw.i_links_count === 0 && ino > 11) continue;
    if (raw.i_file_acl_lo !== 0) {
      const n = raw.i_file_acl_lo + (is64 ? raw.l_i_file_acl_high * 2 ** 32 : 0);
      add(`xattr block ${n} of inode ${ino}`, [n * bs, (n + 1) * bs], (b) => xattrBlockChecksum(blk(b, n), n, bs, img.seed) === xattrHeader.decode(blk(b, n)).h_checksum);
    }
    if (!(raw.i_flags & EXT4_EXTENTS_FL) || raw.i_flags & EXT4_INLINE_DATA_FL) continue;
    const { nodes, leaves } = img.extentTree(raw);
    for (const n of nodes) {
      add(`extent block ${n} of inode ${ino}`, [n * bs, (n + 1) * bs], (b) => {
        const h = decodeExtentNode(blk(b, n), bs, { isRoot: false, blocksCount: img.total, firstDataBlock: 0 });
        const t = extentTailOffset(h.header);
        return extentTail.decode(blk(b, n), t).et_checksum === extentBlockChecksum(blk(b, n), t, seed);
      });
    }
    if ((raw.i_mode & S_IFMT) !== S_IFDIR) continue;
    const indexed = (raw.i_flags & EXT4_INDEX_FL) !== 0;
    for (const e of leaves) {
      for (let i = 0; i < e.len; i++) {
        const lblk = e.lblk + i;
        const n = e.pblk + i;
        const block = img.block(n);
        if (indexed && (lblk === 0 || looksLikeDxNode(block, bs))) {
          const decode = (b: Uint8Array): DxNode => (lblk === 0 ? decodeDxRoot(blk(b, n), bs, true) : decodeDxNode(blk(b, n), bs, true));
          // ext4_dx_csum covers the header and the `count` used entries only, not the free slots.
          const used = ((node: DxNode): number => node.entriesOffset + node.count * 8)(decode(img.bytes));
          add(`dx ${lblk === 0 ? "root" : "node"} block ${n} (lblk ${lblk}) of inode ${ino}`, [n * bs, n * bs + used], (b) => {
            const node = decode(b);
            const t = dxTailOffset(node);
            return dxTail.decode(blk(b, n), t).dt_checksum === dxBlockChecksum(blk(b, n), node.entriesOffset, node.count, t, seed);
          });
        } else {
          add(`directory block ${n} (lblk ${lblk}) of inode ${ino}`, [n * bs, (n + 1) * bs], (b) =>
            hasDirTail(blk(b, n), bs) && dirEntryTail.decode(blk(b, n), bs - 12).det_checksum === dirBlockChecksum(blk(b, n), bs, seed),
          );
        }
      }
    }
  }
  return checks;
}

/** Does flipping one bit inside the checked span make the check fail (or the structure unreadable)? */
function failsWhenFlipped(img: Img, c: Check, bit: number): { at: number; fails: boolean } {
  const at = c.span[0] + ((bit >>> 3) % (c.span[1] - c.span[0]));
  const mask = 1 << (bit & 7);
  img.bytes[at]! ^= mask; // in place (images are tens of MiB), undone below
  try {
    return { at, fails: !c.recheck(img.bytes) };
  } catch {
    return { at, fails: true }; // e.g. the flip broke the extent header: not a valid node at all
  } finally {
    img.bytes[at]! ^= mask;
  }
}

const oracle = oracleAvailability(["mke2fs", "e2fsck", "tune2fs", "setfattr"]);

describe.skipIf(!oracle.ok && !oracle.required)("checksums written by e2fsprogs and by the kernel", () => {
  oracleGate(oracle);
  let work = "";
  const images: Img[] = [];

  const load = (name: string, file: string): void => {
    const buf = readFileSync(file);
    images.push(new Img(name, new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)));
  };

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), "ext4ts-checksum-test-"));
    const tree = path.join(work, "tree");
    mkdirSync(path.join(tree, "dir/sub"), { recursive: true });
    mkdirSync(path.join(tree, "wide"));
    for (let i = 0; i < 250; i++) writeFileSync(path.join(tree, "wide", `a-fairly-long-file-name-${i}`), i % 10 === 0 ? "data\n" : "");
    writeFileSync(path.join(tree, "dir/sub/file"), new Uint8Array(50_000).fill(1));
    const sparse = new Uint8Array(2 * 12 * 4096);
    for (let i = 0; i < 12; i++) sparse.fill(i + 1, 2 * i * 4096, 2 * i * 4096 + 4096);
    writeFileSync(path.join(tree, "sparse"), sparse); // 12 extents: an extent block
    writeFileSync(path.join(tree, "tiny"), "inline me\n");
    writeFileSync(path.join(tree, "xattrs"), "x\n");
    run(tool("setfattr"), ["-n", "user.small", "-v", "1234", path.join(tree, "xattrs")]);
    run(tool("setfattr"), ["-n", "user.big", "-v", "b".repeat(700), path.join(tree, "xattrs")]);
    symlinkSync("x".repeat(80), path.join(tree, "slow-link"));

    const variants: [string, string[], ((img: string) => void)?][] = [
      ["ext4-4k", ["-t", "ext4", "-b", "4096", "-I", "256"]],
      ["ext4-1k", ["-t", "ext4", "-b", "1024", "-I", "256"]],
      ["ext4-4k-128", ["-t", "ext4", "-b", "4096", "-I", "128"]],
      ["ext4-gdtcsum-64bit", ["-t", "ext4", "-b", "4096", "-I", "256", "-O", "^metadata_csum,uninit_bg,64bit"]],
      ["ext4-gdtcsum-32", ["-t", "ext4", "-b", "1024", "-I", "256", "-O", "^metadata_csum,uninit_bg,^64bit"]],
      ["ext4-inline", ["-t", "ext4", "-b", "4096", "-I", "256", "-O", "inline_data"]],
      ["ext3-1k", ["-t", "ext3", "-b", "1024", "-I", "256"]],
      [
        "ext4-csum-seed",
        ["-t", "ext4", "-b", "4096", "-I", "256", "-O", "metadata_csum_seed"],
        (img) => {
          run(tool("tune2fs"), ["-U", "0b5e6d2c-1111-4a2b-8c3d-4e5f60718293", img]); // s_checksum_seed keeps the old UUID's
        },
      ],
    ];
    for (const [name, args, after] of variants) {
      const img = path.join(work, `${name}.img`);
      run(tool("mke2fs"), ["-q", "-F", ...args, "-N", "1024", "-d", tree, img, "24M"]);
      run(tool("e2fsck"), ["-fyD", img], { okCodes: [0, 1] }); // index /wide
      after?.(img);
      load(name, img);
    }

    if (!canLoopMount()) return;
    // What the kernel writes: a two-level htree, a depth-2 extent tree, an xattr block.
    const kimg = path.join(work, "kernel-1k.img");
    run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-b", "1024", "-N", "8192", kimg, "48M"]);
    await withLoopMount(kimg, { readOnly: false }, async (mnt) => {
      mkdirSync(path.join(mnt, "big"));
      for (let i = 0; i < 3000; i++) writeFileSync(path.join(mnt, "big", `kernel-entry-${i}-${"q".repeat(i % 40)}`), "");
      const frag = new Uint8Array(1024).fill(5);
      const fd = openSync(path.join(mnt, "frag"), "w");
      for (let i = 0; i < 500; i++) writeSync(fd, frag, 0, 1024, 2 * i * 1024);
      closeSync(fd);
      writeFileSync(path.join(mnt, "xattrs"), "");
      run(tool("setfattr"), ["-n", "user.big", "-v", "k".repeat(800), path.join(mnt, "xattrs")]);
      run(tool("sync"), ["-f", mnt]);
      return Promise.resolve();
    });
    load("kernel-1k", kimg);
  }, 60_000);

  afterAll(() => {
    if (work !== "") rmSync(work, { recursive: true, force: true });
    cleanupImages(); // the loop-mount run directory of test/oracle/images.ts
  });

  it("verifies every checksum of every image", () => {
    expect(images.length).toBeGreaterThanOrEqual(8);
    for (const img of images) {
      const checks = checksOf(img);
      const bad = checks.filter((c) => !c.ok).map((c) => c.what);
      expect([img.name, bad]).toEqual([img.name, []]);
    }
  });

  it("covers each kind of checksummed structure", () => {
    const kinds = new Set<string>();
    const kind = (img: Img, c: Check): string => `${img.metadataCsum ? "csum" : img.gdtCsum ? "gdt" : "none"} ${c.what.replace(/ \d.*$/, "").replace(/ of .*$/, "")}`;
    for (const img of images) for (const c of checksOf(img)) kinds.add(kind(img, c));
    const want = [
      "csum block bitmap", "csum directory block", "csum dx root block", "csum extent block", "csum group descriptor",
      "csum inode", "csum inode bitmap", "csum superblock", "csum xattr block", "gdt group descriptor", "none group descriptor",
    ];
    if (images.some((i) => i.name === "kernel-1k")) want.push("csum dx node block");
    expect([...kinds].sort()).toEqual(want.sort());
  });

  it("stores 16-bit inode checksums in 128-byte inodes and 32-bit ones when i_checksum_hi fits", () => {
    for (const img of images.filter((i) => i.metadataCsum)) {
      for (const { ino, offset, raw } of img.inodes()) {
        const full = inodeChecksum(img.bytes, offset, img.isz, img.inodeSeed(ino, raw));
        const stored = storedInodeChecksum(img.bytes, offset, img.isz);
        // EXT4_FITS_IN_INODE(i_checksum_hi): reserved inodes mke2fs makes have i_extra_isize 0.
        const hiFits = img.isz > 128 && raw.i_extra_isize >= 4;
        expect([img.name, ino, stored]).toEqual([img.name, ino, hiFits ? full : full & 0xffff]);
      }
    }
  });

  it("uses s_checksum_seed, not the new UUID, after tune2fs -U on metadata_csum_seed", () => {
    const img = images.find((i) => i.name === "ext4-csum-seed");
    expect(img).toBeDefined();
    expect(hasIncompat(img!.sb, EXT4_FEATURE_INCOMPAT_CSUM_SEED)).toBe(true);
    expect(img!.seed).not.toBe(crc32c(0xffffffff, img!.sb.s_uuid));
  });

  it("fails every check when one bit of the structure flips", () => {
    const withSums = images.filter((m) => m.metadataCsum || m.gdtCsum).map((img) => ({ img, checks: checksOf(img).filter((c) => c.strong) }));
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.nat(), (i, j, bit) => {
        const { img, checks } = withSums[i % withSums.length]!;
        const c = checks[j % checks.length]!;
        const r = failsWhenFlipped(img, c, bit);
        if (!r.fails) throw new Error(`${img.name}: ${c.what} still verifies with bit ${bit & 7} of byte ${r.at} flipped`);
      }),
      { numRuns: 300 },
    );
  });

  it("reports the kernel image as checked, or skips it visibly", (ctx) => {
    if (images.some((i) => i.name === "kernel-1k")) {
      const kinds = new Set(checksOf(images.find((i) => i.name === "kernel-1k")!).map((c) => c.what.replace(/ \d.*$/, "")));
      expect(kinds).toContain("dx node block");
      expect(kinds).toContain("extent block");
      expect(kinds).toContain("xattr block");
      return;
    }
    requireOrSkip("kernel-written image needs root and loop mounts");
    ctx.skip();
  });
});
