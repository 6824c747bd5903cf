/**
 * Linear directory blocks: layout against Documentation/filesystems/ext4/directory.rst, the
 * checks of __ext4_check_dir_entry (fs/ext4/dir.c) on hand-made blocks, rec_len encoding for
 * 64 KiB blocks (ext4_rec_len_from_disk), and, on mke2fs -d images, every directory block read
 * as `debugfs ls -p` lists it, with entries and tails re-encoded to the same bytes.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { oracleAvailability, oracleGate, run, tool } from "../../test/oracle/oracle_env.js";
import { FsError } from "../errors.js";
import {
  EXT4_FT_CHRDEV,
  EXT4_FT_DIR,
  EXT4_FT_DIR_CSUM,
  EXT4_FT_FIFO,
  EXT4_FT_REG_FILE,
  EXT4_FT_SYMLINK,
  EXT4_FT_UNKNOWN,
  EXT4_NAME_LEN,
  dirEntry,
  dirEntryTail,
  dirRecLen,
  hasDirTail,
  iterateDirEntries,
  recLenFromDisk,
  recLenToDisk,
  type DirEntry,
} from "./dirent.js";
import { blockSize, decodeSuperblock } from "./superblock.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

describe("directory entry layout (directory.rst)", () => {
  it("has an 8-byte ext4_dir_entry_2 header and a 12-byte ext4_dir_entry_tail", () => {
    expect(dirEntry.size).toBe(8);
    expect(["inode", "rec_len", "name_len", "file_type"].map((f) => dirEntry.offsetOf(f as keyof typeof dirEntry.fields))).toEqual([0, 4, 6, 7]);
    expect(dirEntryTail.size).toBe(12);
    expect(
      ["det_reserved_zero1", "det_rec_len", "det_reserved_zero2", "det_reserved_ft", "det_checksum"].map((f) =>
        dirEntryTail.offsetOf(f as keyof typeof dirEntryTail.fields),
      ),
    ).toEqual([0, 4, 6, 7, 8]);
  });

  it("keeps the kernel's file type codes and name limit", () => {
    expect([EXT4_FT_UNKNOWN, EXT4_FT_REG_FILE, EXT4_FT_DIR, EXT4_FT_CHRDEV, EXT4_FT_FIFO, EXT4_FT_SYMLINK]).toEqual([0, 1, 2, 3, 5, 7]);
    expect(EXT4_FT_DIR_CSUM).toBe(0xde);
    expect(EXT4_NAME_LEN).toBe(255);
  });

  it("sizes records like EXT4_DIR_REC_LEN: 8 + name, rounded up to 4", () => {
    expect([0, 1, 2, 4, 5, 8, 9, 255].map(dirRecLen)).toEqual([8, 12, 12, 12, 16, 16, 20, 264]);
  });
});

describe("rec_len on disk (ext4_rec_len_from_disk / ext4_rec_len_to_disk)", () => {
  it("is the plain value below 64 KiB blocks", () => {
    for (const v of [12, 1024, 4084, 65532]) {
      expect(recLenFromDisk(v, 4096)).toBe(v);
      expect(recLenToDisk(v, 4096)).toBe(v);
    }
  });

  it("stores a whole 64 KiB block as 65535, reads 65535 and 0 back as the block size", () => {
    expect(recLenToDisk(65536, 65536)).toBe(65535);
    expect(recLenFromDisk(65535, 65536)).toBe(65536);
    expect(recLenFromDisk(0, 65536)).toBe(65536);
  });

  it("keeps bits 16..17 of the length in the low two bits on 128 and 256 KiB blocks", () => {
    expect(recLenToDisk(0x20004, 1 << 18)).toBe(0x0006);
    expect(recLenFromDisk(0x0006, 1 << 18)).toBe(0x20004);
    expect(recLenToDisk(1 << 18, 1 << 18)).toBe(0);
    for (let len = 4; len < 1 << 18; len += 4092) expect(recLenFromDisk(recLenToDisk(len, 1 << 18), 1 << 18)).toBe(len);
  });
});

/** A block of `size` bytes from [inode, rec_len, name, file_type] records, optionally with a csum tail. */
function makeBlock(size: number, entries: readonly [number, number, string, number][], tail = false): Uint8Array {
  const b = new Uint8Array(size);
  let off = 0;
  for (const [inode, recLen, name, ft] of entries) {
    const n = enc.encode(name);
    dirEntry.encode({ inode, rec_len: recLenToDisk(recLen, size), name_len: n.length, file_type: ft }, b, off);
    b.set(n, off + 8);
    off += recLen;
  }
  if (tail) dirEntryTail.encode({ det_reserved_zero1: 0, det_rec_len: 12, det_reserved_zero2: 0, det_reserved_ft: EXT4_FT_DIR_CSUM, det_checksum: 0x12345678 }, b, size - 12);
  return b;
}

const names = (es: Iterable<DirEntry>): string[] => [...es].map((e) => dec.decode(e.name));

function corrupt(fn: () => unknown): FsError {
  try {
    fn();
  } catch (e) {
    if (e instanceof FsError) return e;
    throw e;
  }
  throw new Error("expected an FsError, nothing was thrown");
}

describe("iterateDirEntries()", () => {
  it("yields used entries in order and skips unused ones (inode 0)", () => {
    const b = makeBlock(1024, [[2, 12, ".", 2], [2, 12, "..", 2], [0, 20, "deleted", 1], [13, 980, "file", 1]]);
    const es = [...iterateDirEntries(b, 0, 1024, 1024, 100)];
    expect(names(es)).toEqual([".", "..", "file"]);
    expect(es.map((e) => [e.offset, e.inode, e.recLen, e.fileType])).toEqual([[0, 2, 12, 2], [12, 2, 12, 2], [44, 13, 980, 1]]);
  });

  it("stops before a checksum tail when given end = block size - 12", () => {
    const b = makeBlock(1024, [[2, 12, ".", 2], [2, 1000, "..", 2]], true);
    expect(hasDirTail(b, 1024)).toBe(true);
    expect(names(iterateDirEntries(b, 0, 1012, 1024, 100))).toEqual([".", ".."]);
  });

  it("hasDirTail() wants inode 0, rec_len 12, name_len 0 and file type 0xde (get_dirent_tail)", () => {
    const good = makeBlock(1024, [[2, 1012, ".", 2]], true);
    expect(hasDirTail(good, 1024)).toBe(true);
    for (const [at, v] of [[1012, 1], [1016, 16], [1018, 1], [1019, 0]] as const) {
      const bad = good.slice();
      bad[at] = v;
      expect(hasDirTail(bad, 1024)).toBe(false);
    }
  });

  const cases: [string, Uint8Array, RegExp][] = [
    ["rec_len is smaller than minimal", makeBlock(1024, [[2, 8, "", 2]]), /smaller than minimal/],
    ["rec_len % 4 != 0", makeBlock(1024, [[2, 14, ".", 2]]), /not a multiple of 4/],
    ["rec_len is too small for name_len", makeBlock(1024, [[2, 12, "abcdefgh", 2]]), /too small for name_len 8/],
    ["directory entry overrun", makeBlock(1024, [[2, 12, ".", 2], [2, 1016, "..", 2]]), /overruns the block/],
    ["inode out of bounds", makeBlock(1024, [[101, 1024, "x", 1]]), /inode 101 out of bounds/],
  ];
  for (const [kernelMessage, block, re] of cases) {
    it(`reports "${kernelMessage}" as EFSCORRUPTED naming the offset, inode and block`, () => {
      const e = corrupt(() => [...iterateDirEntries(block, 0, 1024, 1024, 100, { ino: 12, block: 77 })]);
      expect(e.code).toBe("EFSCORRUPTED");
      expect(e.message).toMatch(re);
      expect(e.message).toMatch(/^EFSCORRUPTED: Bad directory entry at offset \d+: .* \(inode 12, block 77\)$/);
    });
  }

  it("reports a header that does not fit before the end, and a used entry with an empty name", () => {
    const short = makeBlock(1024, [[2, 1020, ".", 2]]);
    expect(corrupt(() => [...iterateDirEntries(short, 0, 1024, 1024, 100)]).message).toMatch(/runs past the end/);
    const empty = makeBlock(1024, [[5, 1024, "", 1]]);
    expect(corrupt(() => [...iterateDirEntries(empty, 0, 1024, 1024, 100)]).message).toMatch(/empty name/);
  });

  it("terminates on any bytes: every rec_len is at least 12", () => {
    const b = new Uint8Array(4096).map((_, i) => (i * 37) & 0xff);
    let n = 0;
    try {
      const entries = iterateDirEntries(b, 0, 4096, 4096, 2 ** 32 - 1);
      while (entries.next().done !== true) n++;
    } catch (e) {
      expect(e).toBeInstanceOf(FsError);
    }
    expect(n).toBeLessThan(4096 / 12 + 1);
  });
});

// ---------------------------------------------------------------------------------------
// Real images

const oracle = oracleAvailability(["mke2fs", "debugfs", "mkfifo"]);

const FT_OF_MODE = new Map<number, number>([[0o10, EXT4_FT_REG_FILE], [0o04, EXT4_FT_DIR], [0o12, EXT4_FT_SYMLINK], [0o01, EXT4_FT_FIFO], [0o02, EXT4_FT_CHRDEV]]);

describe.skipIf(!oracle.ok && !oracle.required)("directory blocks of mke2fs images", () => {
  oracleGate(oracle);
  let work = "";
  const images: { name: string; path: string; bytes: Uint8Array; filetype: boolean }[] = [];
  const DIRS = ["/", "/many", "/many/sub", "/empty", "/long-names"];

  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), "ext4ts-dirent-test-"));
    const tree = path.join(work, "tree");
    mkdirSync(path.join(tree, "many/sub"), { recursive: true });
    mkdirSync(path.join(tree, "empty"));
    mkdirSync(path.join(tree, "long-names"));
    for (let i = 0; i < 150; i++) writeFileSync(path.join(tree, "many", `file-${i}${"z".repeat(i % 17)}`), "");
    for (let i = 0; i < 20; i++) writeFileSync(path.join(tree, "long-names", `${String(i).padStart(3, "0")}${"n".repeat(252)}`), "");
    symlinkSync("many", path.join(tree, "link"));
    run(tool("mkfifo"), [path.join(tree, "fifo")]);
    const variants: [string, string[], boolean][] = [
      ["ext4-4k-csum", ["-t", "ext4", "-b", "4096"], true],
      ["ext4-1k-csum", ["-t", "ext4", "-b", "1024"], true],
      ["ext4-1k-nocsum", ["-t", "ext4", "-b", "1024", "-O", "^metadata_csum"], true],
      ["ext2-nofiletype", ["-t", "ext2", "-b", "2048", "-O", "^filetype,^dir_index"], false],
      ["ext4-64k", ["-t", "ext4", "-b", "65536"], true],
    ];
    for (const [name, args, filetype] of variants) {
      const img = path.join(work, `${name}.img`);
      run(tool("mke2fs"), ["-q", "-F", ...args, "-I", "256", "-d", tree, img, "64M"]);
      const buf = readFileSync(img);
      images.push({ name, path: img, bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), filetype });
    }
  });

  afterAll(() => {
    if (work !== "") rmSync(work, { recursive: true, force: true });
  });

  it("reads every directory block as debugfs ls -p lists the directory", () => {
    for (const img of images) {
      const bs = blockSize(decodeSuperblock(img.bytes));
      const csum = run(tool("dumpe2fs"), ["-h", img.path]).stdout.includes("metadata_csum");
      for (const dir of DIRS) {
        const where = `${img.name} ${dir}`;
        const blocks = run(tool("debugfs"), ["-R", `blocks ${dir}`, img.path]).stdout.trim().split(/\s+/).map(Number);
        const want = run(tool("debugfs"), ["-R", `ls -p ${dir}`, img.path])
          .stdout.split("\n")
          .filter((l) => l.startsWith("/"))
          .map((l) => {
            const [, ino, mode, , , name] = l.split("/");
            return { name: name!, ino: Number(ino), ft: img.filetype ? (FT_OF_MODE.get(Math.floor(parseInt(mode!, 8) / 0o10000)) ?? -1) : 0 };
          });
        const got: { name: string; ino: number; ft: number }[] = [];
        for (const pblk of blocks) {
          const block = img.bytes.subarray(pblk * bs, (pblk + 1) * bs);
          expect([where, hasDirTail(block, bs)]).toEqual([where, csum]);
          for (const e of iterateDirEntries(block, 0, csum ? bs - 12 : bs, bs, 2 ** 32 - 1, { block: pblk })) {
            got.push({ name: dec.decode(e.name), ino: e.inode, ft: e.fileType });
          }
        }
        expect([where, got]).toEqual([where, want]);
      }
    }
  });

  it("re-encodes every entry header and tail to the same bytes: encode(decode(b)) == b", () => {
    let n = 0;
    for (const img of images) {
      const bs = blockSize(decodeSuperblock(img.bytes));
      for (const dir of DIRS) {
        const blocks = run(tool("debugfs"), ["-R", `blocks ${dir}`, img.path]).stdout.trim().split(/\s+/).map(Number);
        for (const pblk of blocks) {
          const block = img.bytes.subarray(pblk * bs, (pblk + 1) * bs);
          const copy = block.slice();
          for (let off = 0; off < bs; ) {
            const e = dirEntry.decode(block, off);
            copy.fill(0xee, off, off + 8);
            dirEntry.encode(e, copy, off);
            n++;
            off += recLenFromDisk(e.rec_len, bs);
          }
          expect(copy).toEqual(block);
          if (hasDirTail(block, bs)) {
            copy.fill(0xee, bs - 12);
            dirEntryTail.encode(dirEntryTail.decode(block, bs - 12), copy, bs - 12);
            expect(copy).toEqual(block);
          }
        }
      }
    }
    expect(n).toBeGreaterThan(100);
  });
});
