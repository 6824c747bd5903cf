import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, type TestContext } from "vitest";
import { FsError, isFsError } from "../errors.js";
import { ext4AclToVfs } from "./acl.js";
import {
  EXT4_MIN_INLINE_DATA_SIZE,
  EXT4_XATTR_INDEX_POSIX_ACL_ACCESS,
  EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT,
  EXT4_XATTR_INDEX_SECURITY,
  EXT4_XATTR_INDEX_SYSTEM,
  EXT4_XATTR_INDEX_TRUSTED,
  EXT4_XATTR_INDEX_USER,
  EXT4_XATTR_MAGIC,
  EXT4_XATTR_SIZE_MAX,
  compareXattrEntries,
  decodeIbodyXattrs,
  decodeXattrBlock,
  encodeIbodyXattrs,
  encodeXattrBlock,
  inlineDataValue,
  splitXattrName,
  xattrBlockHash,
  xattrEntry,
  xattrEntryHash,
  xattrEntryHashSigned,
  xattrFullName,
  xattrHeader,
  xattrIbodyHeader,
  xattrLen,
  xattrSize,
  type XattrEntry,
  type XattrInput,
} from "./xattr.js";

const te = new TextEncoder();
const b = (s: string): Uint8Array => te.encode(s);
const x = (e_name_index: number, name: string, value: string | Uint8Array): XattrInput => ({
  e_name_index,
  name: b(name),
  value: typeof value === "string" ? b(value) : value,
});

function expectCorrupt(f: () => unknown, msg: RegExp): FsError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FsError);
  const fe = err as FsError;
  expect(fe.code).toBe("EFSCORRUPTED");
  expect(fe.message).toMatch(msg);
  return fe;
}

function setU32(buf: Uint8Array, off: number, v: number): void {
  new DataView(buf.buffer, buf.byteOffset).setUint32(off, v, true);
}
function setU16(buf: Uint8Array, off: number, v: number): void {
  new DataView(buf.buffer, buf.byteOffset).setUint16(off, v, true);
}

/** A block with mixed indexes, name lengths, an empty value and an ACL-style empty name. */
const sample: XattrInput[] = [
  x(EXT4_XATTR_INDEX_USER, "zeta", "z1"),
  x(EXT4_XATTR_INDEX_TRUSTED, "mid", "m"),
  x(EXT4_XATTR_INDEX_USER, "a", "hello world"),
  x(EXT4_XATTR_INDEX_POSIX_ACL_ACCESS, "", new Uint8Array([1, 0, 0, 0, 1, 0, 6, 0, 4, 0, 4, 0, 32, 0, 4, 0])),
  x(EXT4_XATTR_INDEX_USER, "empty", ""),
  x(EXT4_XATTR_INDEX_USER, "b", new Uint8Array(300).map((_, i) => i & 0xff)),
];

describe("xattr layout", () => {
  it("matches struct ext4_xattr_header, ext4_xattr_ibody_header and ext4_xattr_entry", () => {
    expect(xattrHeader.size).toBe(32);
    expect(xattrHeader.offsetOf("h_refcount")).toBe(0x4);
    expect(xattrHeader.offsetOf("h_blocks")).toBe(0x8);
    expect(xattrHeader.offsetOf("h_hash")).toBe(0xc);
    expect(xattrHeader.offsetOf("h_checksum")).toBe(0x10);
    expect(xattrHeader.offsetOf("h_reserved")).toBe(0x14);
    expect(xattrIbodyHeader.size).toBe(4);
    expect(xattrEntry.size).toBe(16);
    expect(xattrEntry.offsetOf("e_name_index")).toBe(0x1);
    expect(xattrEntry.offsetOf("e_value_offs")).toBe(0x2);
    expect(xattrEntry.offsetOf("e_value_inum")).toBe(0x4);
    expect(xattrEntry.offsetOf("e_value_size")).toBe(0x8);
    expect(xattrEntry.offsetOf("e_hash")).toBe(0xc);
  });

  it("xattrLen() and xattrSize() pad to 4 like EXT4_XATTR_LEN and EXT4_XATTR_SIZE", () => {
    expect([0, 1, 4, 5, 255].map(xattrLen)).toEqual([16, 20, 20, 24, 272]);
    expect([0, 1, 4, 5, 65536].map(xattrSize)).toEqual([0, 4, 4, 8, 65536]);
  });
});

describe("xattr hashes", () => {
  it("xattrEntryHash() rotates by 5 per name byte and by 16 per little-endian value word", () => {
    expect(xattrEntryHash(b("a"), new Uint8Array())).toBe(0x61);
    expect(xattrEntryHash(b("ab"), new Uint8Array())).toBe(((0x61 << 5) ^ 0x62) >>> 0);
    // words 0x04030201 and 0x00000005 (zero padded)
    expect(xattrEntryHash(new Uint8Array(), new Uint8Array([1, 2, 3, 4, 5]))).toBe((0x02010403 ^ 5) >>> 0);
    // 7 name bytes push bits through the 32-bit rotation
    const h = xattrEntryHash(new Uint8Array(7).fill(0xff), new Uint8Array());
    expect(h).toBeGreaterThanOrEqual(0);
    expect(h).toBeLessThan(2 ** 32);
  });

  it("xattrEntryHashSigned() sign-extends name bytes >= 0x80 and agrees below", () => {
    expect(xattrEntryHash(new Uint8Array([0xc3]), new Uint8Array())).toBe(0xc3);
    expect(xattrEntryHashSigned(new Uint8Array([0xc3]), new Uint8Array())).toBe(0xffffffc3);
    expect(xattrEntryHashSigned(b("plain"), b("v"))).toBe(xattrEntryHash(b("plain"), b("v")));
  });

  it("xattrBlockHash() rotates by 16 and is 0 when any entry hash is 0", () => {
    expect(xattrBlockHash([])).toBe(0);
    expect(xattrBlockHash([1, 2])).toBe(0x10002);
    expect(xattrBlockHash([0xffff0000, 1])).toBe((0x0000ffff ^ 1) >>> 0);
    expect(xattrBlockHash([1, 0, 2])).toBe(0);
  });
});

describe("xattr names", () => {
  it("xattrFullName() prefixes like ext4_xattr_handler_map and hides unknown indexes", () => {
    expect(xattrFullName(1, b("foo"))).toBe("user.foo");
    expect(xattrFullName(2, b(""))).toBe("system.posix_acl_access");
    expect(xattrFullName(3, b(""))).toBe("system.posix_acl_default");
    expect(xattrFullName(4, b("t"))).toBe("trusted.t");
    expect(xattrFullName(6, b("selinux"))).toBe("security.selinux");
    expect(xattrFullName(7, b("data"))).toBe("system.data");
    expect(xattrFullName(8, b(""))).toBe("system.richacl");
    expect(xattrFullName(10, b("x"))).toBe("gnu.x");
    for (const i of [0, 5, 9, 11, 255]) expect(xattrFullName(i, b("x"))).toBeNull();
  });

  it("splitXattrName() matches whole ACL names exactly and otherwise the longest prefix", () => {
    const split = (s: string): [number, string] | null => {
      const r = splitXattrName(s);
      return r === null ? null : [r.index, new TextDecoder().decode(r.name)];
    };
    expect(split("user.foo")).toEqual([1, "foo"]);
    expect(split("system.posix_acl_access")).toEqual([2, ""]);
    expect(split("system.posix_acl_default")).toEqual([3, ""]);
    expect(split("system.posix_acl_accessX")).toEqual([7, "posix_acl_accessX"]);
    expect(split("system.data")).toEqual([7, "data"]);
    expect(split("system.richacl")).toEqual([8, ""]);
    expect(split("trusted.x")).toEqual([4, "x"]);
    expect(split("security.selinux")).toEqual([6, "selinux"]);
    expect(split("gnu.translator")).toEqual([10, "translator"]);
    expect(split("user.")).toEqual([1, ""]);
    expect(split("user.é")).toEqual([1, "é"]);
    expect(split("foo.bar")).toBeNull();
    expect(split("user")).toBeNull();
  });
});

describe("encodeXattrBlock()", () => {
  it("sorts the table by index, name length and name bytes, and packs values from the end in the given order", () => {
    const block = encodeXattrBlock(sample, 4096, 1);
    const d = decodeXattrBlock(block);
    expect(d.h_magic).toBe(EXT4_XATTR_MAGIC);
    expect(d.h_refcount).toBe(1);
    expect(d.h_blocks).toBe(1);
    expect(d.h_checksum).toBe(0);
    const names = d.entries.map((e) => xattrFullName(e.e_name_index, e.name));
    expect(names).toEqual(["user.a", "user.b", "user.zeta", "user.empty", "system.posix_acl_access", "trusted.mid"]);
    // first given value sits at the block end
    const zeta = d.entries.find((e) => xattrFullName(e.e_name_index, e.name) === "user.zeta")!;
    expect(zeta.e_value_offs).toBe(4092);
    expect(d.entries.find((e) => e.value.length === 0)!.e_value_offs).toBe(0);
    for (const e of d.entries) expect(e.e_hash).toBe(xattrEntryHash(e.name, e.value));
    expect(d.h_hash).toBe(xattrBlockHash(d.entries.map((e) => e.e_hash)));
    for (const s of sample) {
      const e = d.entries.find((y) => compareXattrEntries(y, s) === 0)!;
      expect(e.value).toEqual(s.value);
    }
  });

  it("reproduces its own block from the decoded entries ordered by descending e_value_offs", () => {
    const block = encodeXattrBlock(sample, 4096, 7);
    const entries = [...decodeXattrBlock(block).entries].sort((p, q) => q.e_value_offs - p.e_value_offs);
    expect(encodeXattrBlock(entries, 4096, 7)).toEqual(block);
  });

  it("fills a block exactly and throws ENOSPC one byte past", () => {
    // 32 header + 20 entry + 4 terminator leave 968 bytes of a 1 KiB block
    const fits = encodeXattrBlock([x(1, "v", new Uint8Array(968))], 1024, 1);
    expect(decodeXattrBlock(fits).entries[0]!.e_value_offs).toBe(56);
    expect(() => encodeXattrBlock([x(1, "v", new Uint8Array(969))], 1024, 1)).toThrow(
      expect.objectContaining({ code: "ENOSPC" }) as Error,
    );
  });

  it("rejects names Linux would not store", () => {
    expect(() => encodeXattrBlock([x(1, "n".repeat(256), "")], 4096, 1)).toThrow(expect.objectContaining({ code: "ERANGE" }) as Error);
    expect(() => encodeXattrBlock([x(1, "", "v")], 4096, 1)).toThrow(expect.objectContaining({ code: "EINVAL" }) as Error);
    expect(() => encodeXattrBlock([x(1, "a\0b", "v")], 4096, 1)).toThrow(expect.objectContaining({ code: "EINVAL" }) as Error);
    expect(() => encodeXattrBlock([x(1, "a", "1"), x(1, "a", "2")], 4096, 1)).toThrow(/duplicate xattr user.a/);
  });
});

describe("encodeIbodyXattrs()", () => {
  it("keeps the given order, packs values from the area end and leaves e_hash 0", () => {
    const given = [x(1, "zz", "hello"), x(2, "", "acl!"), x(7, "data", "")];
    const region = encodeIbodyXattrs(given, 96);
    expect(xattrIbodyHeader.decode(region).h_magic).toBe(EXT4_XATTR_MAGIC);
    const d = decodeIbodyXattrs(region);
    expect(d.map((e) => xattrFullName(e.e_name_index, e.name))).toEqual(["user.zz", "system.posix_acl_access", "system.data"]);
    // offsets count from the first entry (area offset 4): 96 - 4 - 8
    expect(d[0]!.e_value_offs).toBe(84);
    expect(d[1]!.e_value_offs).toBe(80);
    expect(d.every((e) => e.e_hash === 0)).toBe(true);
    expect(encodeIbodyXattrs(d, 96)).toEqual(region);
    expect(inlineDataValue(d)).toEqual(new Uint8Array());
  });

  it("packs values in valueOrder while the table keeps the given order (a resized value moves below the others)", () => {
    const given = [x(1, "a", "aaaa"), x(1, "b", "bbbbbbbb"), x(1, "c", "cc")];
    const region = encodeIbodyXattrs(given, 128, [1, 2, 0]);
    const d = decodeIbodyXattrs(region);
    expect(d.map((e) => new TextDecoder().decode(e.name))).toEqual(["a", "b", "c"]);
    // area 128, values from offset 4: b at 128-8, c at 120-4, a at 116-4; offsets relative to 4
    expect(d.map((e) => e.e_value_offs)).toEqual([108, 116, 112]);
    expect(d.map((e) => new TextDecoder().decode(e.value))).toEqual(["aaaa", "bbbbbbbb", "cc"]);
    // Decoded entries ordered by descending e_value_offs reproduce the area.
    const byOffs = d.map((_, i) => i).sort((i, j) => d[j]!.e_value_offs - d[i]!.e_value_offs);
    expect(encodeIbodyXattrs(d, 128, byOffs)).toEqual(region);
    expect(encodeIbodyXattrs(given, 128, [0, 1, 2])).toEqual(encodeIbodyXattrs(given, 128));
    expect(() => encodeIbodyXattrs(given, 128, [0, 0, 1])).toThrow(/permutation/);
  });

  it("writes an all-zero area for no entries and fits exactly", () => {
    expect(encodeIbodyXattrs([], 96)).toEqual(new Uint8Array(96));
    // 4 header + 20 entry + 4 terminator leave 68 bytes
    expect(decodeIbodyXattrs(encodeIbodyXattrs([x(1, "v", new Uint8Array(68))], 96))[0]!.value.length).toBe(68);
    expect(() => encodeIbodyXattrs([x(1, "v", new Uint8Array(69))], 96)).toThrow(expect.objectContaining({ code: "ENOSPC" }) as Error);
    expect(() => encodeIbodyXattrs([x(1, "v", "")], 4)).toThrow(expect.objectContaining({ code: "ENOSPC" }) as Error);
  });
});

describe("decodeIbodyXattrs()", () => {
  it("returns no entries without the magic or without room for header and terminator", () => {
    expect(decodeIbodyXattrs(new Uint8Array(96))).toEqual([]);
    expect(decodeIbodyXattrs(new Uint8Array(7).fill(0xff))).toEqual([]);
    expect(decodeIbodyXattrs(new Uint8Array(0))).toEqual([]);
  });

  it("inlineDataValue() finds system.data and nothing else", () => {
    const d = decodeIbodyXattrs(encodeIbodyXattrs([x(1, "data", "no"), x(7, "dat", "no"), x(7, "data", "tail")], 96));
    expect(inlineDataValue(d)).toEqual(b("tail"));
    expect(inlineDataValue(d.slice(0, 2))).toBeNull();
  });

  it("reports the inode and area offsets of a bad entry", () => {
    const region = encodeIbodyXattrs([x(1, "a", "hello")], 96);
    setU16(region, 4 + 2, 2); // value at area offset 6, inside the table
    const e = expectCorrupt(() => decodeIbodyXattrs(region, { ino: 12 }), /^EFSCORRUPTED: In-inode xattrs of inode 12: entry 0: value at 6 overlaps/);
    expect(e.detail).toEqual({ ino: 12 });
  });
});

describe("decodeXattrBlock() rejects malformed blocks", () => {
  const good = (): Uint8Array => encodeXattrBlock(sample, 4096, 1);
  // entry 0 is user.a (see the sort test); its fixed part starts at 32
  const E0 = 32;

  it("bad magic, h_blocks and a block too small for header and terminator", () => {
    const m = good();
    setU32(m, 0, 0);
    expectCorrupt(() => decodeXattrBlock(m), /h_magic is 0x0, expected 0xea020000/);
    const hb = good();
    setU32(hb, 8, 2);
    expectCorrupt(() => decodeXattrBlock(hb), /h_blocks is 2, expected 1/);
    expectCorrupt(() => decodeXattrBlock(good().subarray(0, 35)), /block of 35 bytes is too small/);
  });

  it("puts the block number in the message and the detail", () => {
    const m = good();
    setU32(m, 0, 1);
    const e = expectCorrupt(() => decodeXattrBlock(m, { block: 1234, ino: 12 }), /^EFSCORRUPTED: Xattr block 1234: /);
    expect(e.detail).toEqual({ block: 1234, ino: 12 });
  });

  it("a value past the block end", () => {
    const blk = good();
    setU16(blk, E0 + 2, 4000);
    setU32(blk, E0 + 8, 200);
    expectCorrupt(() => decodeXattrBlock(blk), /^EFSCORRUPTED: Xattr block: entry 0: value at 4000\+200 past block end 4096$/);
    setU16(blk, E0 + 2, 4093);
    setU32(blk, E0 + 8, 3);
    expectCorrupt(() => decodeXattrBlock(blk), /value at 4093\+3 \(padded 4\) past block end 4096/);
  });

  it("a value overlapping the entry table or its terminator", () => {
    const blk = good();
    setU16(blk, E0 + 2, 40);
    expectCorrupt(() => decodeXattrBlock(blk), /entry 0: value at 40 overlaps the entry table ending at \d+/);
  });

  it("an entry running past the end or leaving no room for the terminator", () => {
    // 1 KiB of 16-byte ACL-style entries (index 2, empty name) from offset 32 to the end
    const acls = (): Uint8Array => {
      const blk = new Uint8Array(1024);
      xattrHeader.encode({ h_magic: EXT4_XATTR_MAGIC, h_refcount: 1, h_blocks: 1 }, blk);
      for (let off = 32; off < 1024; off += 16) blk[off + 1] = 2;
      return blk;
    };
    expectCorrupt(() => decodeXattrBlock(acls()), /entry 61 at 1008: entry of 16 bytes leaves no room for the terminator before block end 1024/);
    const long = acls();
    long[992] = 200; // entry 60: a 200-byte user. name
    long[993] = 1;
    expectCorrupt(() => decodeXattrBlock(long), /entry 60 at 992: entry with 200-byte name runs past block end 1024/);
  });

  it("e_name_len 0 outside the ACL indexes, and NUL bytes in names", () => {
    const blk = encodeXattrBlock([x(1, "abcd", "v")], 4096, 1);
    blk[E0] = 0;
    expectCorrupt(() => decodeXattrBlock(blk), /entry 0 at 32: e_name_len is 0 for name index 1/);
    const nul = encodeXattrBlock([x(1, "abcd", "v")], 4096, 1);
    nul[E0 + 16 + 1] = 0;
    expectCorrupt(() => decodeXattrBlock(nul), /entry 0 at 32: name contains a NUL byte/);
  });

  it("values in EA inodes and oversized e_value_size", () => {
    const inum = good();
    setU32(inum, E0 + 4, 13);
    expectCorrupt(() => decodeXattrBlock(inum), /entry 0: e_value_inum is 13, but values in EA inodes \(ea_inode\) are not supported/);
    const big = good();
    setU32(big, E0 + 8, EXT4_XATTR_SIZE_MAX + 1);
    expectCorrupt(() => decodeXattrBlock(big), /entry 0: e_value_size 16777217 exceeds 16777216/);
  });

  it("ignores e_value_offs of empty values, as the kernel does", () => {
    const blk = encodeXattrBlock([x(1, "e", "")], 4096, 1);
    setU16(blk, E0 + 2, 0xffff);
    expect(decodeXattrBlock(blk).entries[0]!.value).toEqual(new Uint8Array());
  });
});

describe("decoders under random corruption (fast-check)", () => {
  const base = encodeXattrBlock(sample, 1024, 3);
  const ibody = encodeIbodyXattrs([x(1, "a", "hello"), x(2, "", "aclvalue"), x(7, "data", "")], 96);
  const mutations = (len: number): fc.Arbitrary<[number, number][]> =>
    fc.array(fc.tuple(fc.nat({ max: len - 1 }), fc.nat({ max: 255 })), { minLength: 1, maxLength: 12 });

  function onlyFsCorrupted(f: () => XattrEntry[], end: number): void {
    let entries: XattrEntry[];
    try {
      entries = f();
    } catch (e) {
      if (!isFsError(e, "EFSCORRUPTED")) throw e;
      return;
    }
    for (const e of entries) {
      expect(e.value.length).toBeLessThanOrEqual(end);
      expect(e.name.includes(0)).toBe(false);
    }
  }

  it("decodeXattrBlock() only ever throws FsError EFSCORRUPTED", () => {
    fc.assert(
      fc.property(mutations(base.length), fc.nat({ max: base.length }), (muts, cut) => {
        const blk = base.slice();
        for (const [at, v] of muts) blk[at] = v;
        onlyFsCorrupted(() => decodeXattrBlock(blk).entries, blk.length);
        onlyFsCorrupted(() => decodeXattrBlock(blk.subarray(0, cut)).entries, cut);
      }),
      { numRuns: 3000 },
    );
  });

  it("decodeXattrBlock() survives random bytes behind a valid header", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (tail) => {
        const blk = new Uint8Array(32 + tail.length);
        xattrHeader.encode({ h_magic: EXT4_XATTR_MAGIC, h_refcount: 1, h_blocks: 1 }, blk);
        blk.set(tail, 32);
        onlyFsCorrupted(() => decodeXattrBlock(blk).entries, blk.length);
      }),
      { numRuns: 3000 },
    );
  });

  it("decodeIbodyXattrs() only ever throws FsError EFSCORRUPTED", () => {
    fc.assert(
      fc.property(mutations(ibody.length), fc.nat({ max: ibody.length }), (muts, cut) => {
        const r = ibody.slice();
        for (const [at, v] of muts) r[at] = v;
        onlyFsCorrupted(() => decodeIbodyXattrs(r), r.length);
        onlyFsCorrupted(() => decodeIbodyXattrs(r.subarray(0, cut)), cut);
      }),
      { numRuns: 3000 },
    );
  });

  it("encode then decode is the identity on random entry sets", () => {
    const arbEntry = fc.record({
      e_name_index: fc.constantFrom(1, 4, 6, 7),
      name: fc.uint8Array({ minLength: 1, maxLength: 20, min: 1 }),
      value: fc.uint8Array({ maxLength: 120 }),
    });
    fc.assert(
      fc.property(fc.uniqueArray(arbEntry, { maxLength: 12, selector: (e) => `${e.e_name_index}:${e.name.join(",")}` }), (entries) => {
        let blk: Uint8Array;
        try {
          blk = encodeXattrBlock(entries, 1024, 1);
        } catch (e) {
          if (isFsError(e, "ENOSPC")) return;
          throw e;
        }
        const d = decodeXattrBlock(blk).entries;
        expect(d.length).toBe(entries.length);
        for (let i = 1; i < d.length; i++) expect(compareXattrEntries(d[i - 1]!, d[i]!)).toBeLessThan(0);
        for (const e of entries) expect(d.find((y) => compareXattrEntries(y, e) === 0)!.value).toEqual(e.value);
        const again = [...d].sort((p, q) => q.e_value_offs - p.e_value_offs);
        expect(encodeXattrBlock(again, 1024, 1)).toEqual(blk);
      }),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------------------
// Kernel oracle: an image written by Linux through a loop mount.

interface Sample {
  path: string;
  raw: Uint8Array; // the whole on-disk inode
  region: Uint8Array; // 128 + i_extra_isize .. inode size
  fileAcl: number;
  block: Uint8Array | null;
  /** getfattr -d -m - -e hex: name (bytes as latin1) -> value. */
  listed: Map<string, Uint8Array>;
}

interface Fixture {
  samples: Map<string, Sample>;
  inlineContent: Uint8Array;
}

const BLOCK = 4096;
const INODE_SIZE = 256;
let fixture: Fixture | null = null;
let skipReason = "";
let workDir: string | null = null;

function run(cmd: string, args: string[]): Buffer {
  const r = spawnSync(cmd, args, { encoding: "buffer", env: { ...process.env, LC_ALL: "C" } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ").slice(0, 200)} failed (${r.status}): ${r.stderr.toString()}`);
  return r.stdout;
}

function bytesKey(s: Uint8Array): string {
  return Buffer.from(s).toString("latin1");
}

/** Parse `getfattr -d -e hex` output; names may carry octal escapes (\303\251). */
function parseGetfattr(out: Buffer): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  for (const line of out.toString("latin1").split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    const rawName = eq < 0 ? line : line.slice(0, eq);
    const name = rawName.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const hex = eq < 0 ? "" : line.slice(eq + 1).replace(/^0x/, "");
    m.set(name, Uint8Array.from(Buffer.from(hex, "hex")));
  }
  return m;
}

function readAt(fd: number, pos: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  const n = readSync(fd, out, 0, len, pos);
  if (n !== len) throw new Error(`short read at ${pos}`);
  return out;
}

function missingPrerequisite(): string {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "not root (loop mounts need root)";
  for (const [tool, arg] of [["mke2fs", "-V"], ["debugfs", "-V"], ["setfattr", "--version"], ["getfattr", "--version"], ["setfacl", "--version"], ["mount", "--version"]] as const) {
    const r = spawnSync(tool, [arg]);
    if (r.error) return `${tool} not found`;
  }
  return "";
}

function buildFixture(dir: string): Fixture {
  const img = join(dir, "xattr.img");
  const mnt = join(dir, "mnt");
  mkdirSync(mnt);
  run("mke2fs", ["-q", "-F", "-t", "ext4", "-I", String(INODE_SIZE), "-b", String(BLOCK), "-O", "inline_data", img, "32M"]);
  try {
    run("mount", ["-o", "loop", img, mnt]);
  } catch (e) {
    throw new Error(`mount failed: ${String(e)}`, { cause: "mount" });
  }
  const names = ["inbody", "big", "dir", "share1", "share2", "inl"];
  const listed = new Map<string, Map<string, Uint8Array>>();
  const big = Buffer.from(new Uint8Array(3000).map((_, i) => (i * 7 + 3) & 0xff)).toString("hex");
  const inlineContent = new Uint8Array(100).map((_, i) => (i * 13 + 1) & 0xff);
  try {
    const p = (n: string): string => join(mnt, n);
    const setx = (n: string, name: string, value?: string): void => {
      run("setfattr", value === undefined ? ["-n", name, p(n)] : ["-n", name, "-v", value, p(n)]);
    };
    // In the inode body only (96-byte area with 256-byte inodes).
    writeFileSync(p("inbody"), "");
    setx("inbody", "user.a", "hello");
    setx("inbody", "trusted.t", "tv");
    // 3000 bytes force a block; "fill" then takes the in-inode area, so the rest
    // (written out of sorted order, with a non-ASCII name and an empty value) goes to the block.
    writeFileSync(p("big"), "");
    setx("big", "user.big", `0x${big}`);
    setx("big", "user.fill", "0x" + "66".repeat(60));
    setx("big", "user.zeta", "z1");
    setx("big", "user.a", "A");
    setx("big", "trusted.mid", "m");
    setx("big", "security.sec", "s");
    setx("big", "user.é", "x");
    setx("big", "user.empty");
    run("setfacl", ["-m", "u:1000:rw,g:100:r,m::rw", p("big")]);
    // Access ACL in the inode (after system.data of the inline directory), default ACL in a block.
    mkdirSync(p("dir"));
    run("setfacl", ["-m", "u:1000:rwx,g:100:rx,m::rwx", p("dir")]);
    run("setfacl", ["-d", "-m", "u:1000:rw,g:100:r", p("dir")]);
    // Identical sets: mbcache shares one block with h_refcount 2.
    for (const n of ["share1", "share2"]) {
      writeFileSync(p(n), "");
      setx(n, "user.big", `0x${big}`);
    }
    // inline_data: 60 bytes in i_block, 40 in system.data.
    writeFileSync(p("inl"), inlineContent);
    for (const n of names) listed.set(n, parseGetfattr(run("getfattr", ["--absolute-names", "-d", "-m", "-", "-e", "hex", p(n)])));
  } finally {
    const u = spawnSync("umount", [mnt]);
    if (u.status !== 0) spawnSync("umount", ["-l", mnt]);
  }

  const samples = new Map<string, Sample>();
  const fd = openSync(img, "r");
  try {
    for (const n of names) {
      const imap = run("debugfs", ["-R", `imap /${n}`, img]).toString();
      const loc = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(imap);
      if (loc === null) throw new Error(`debugfs imap /${n}: ${imap}`);
      const raw = readAt(fd, Number(loc[1]) * BLOCK + parseInt(loc[2]!, 16), INODE_SIZE);
      const extra = raw[0x80]! | (raw[0x81]! << 8);
      const stat = run("debugfs", ["-R", `stat /${n}`, img]).toString();
      const acl = /File ACL: (\d+)/.exec(stat);
      if (acl === null) throw new Error(`debugfs stat /${n}: ${stat}`);
      const fileAcl = Number(acl[1]);
      samples.set(n, {
        path: n,
        raw,
        region: raw.slice(128 + extra),
        fileAcl,
        block: fileAcl === 0 ? null : readAt(fd, fileAcl * BLOCK, BLOCK),
        listed: listed.get(n)!,
      });
    }
  } finally {
    closeSync(fd);
  }
  return { samples, inlineContent };
}

function need(ctx: TestContext): Fixture {
  if (fixture === null) {
    ctx.skip();
    throw new Error("unreachable: skipped");
  }
  return fixture;
}

describe("kernel-written xattrs (loop-mounted oracle)", () => {
  beforeAll(() => {
    skipReason = missingPrerequisite();
    if (skipReason !== "") return;
    workDir = mkdtempSync(join(tmpdir(), "ext4ts-xattr-"));
    try {
      fixture = buildFixture(workDir);
    } catch (e) {
      if (e instanceof Error && e.cause === "mount") skipReason = e.message;
      else throw e;
    }
  });
  afterAll(() => {
    if (workDir !== null) rmSync(workDir, { recursive: true, force: true });
  });

  it("has its prerequisites (EXT4TS_REQUIRE_ORACLES=1 makes a missing one fail)", () => {
    if (skipReason !== "") {
      console.log(`xattr oracle skipped: ${skipReason}`);
      expect(process.env.EXT4TS_REQUIRE_ORACLES, `oracle required but: ${skipReason}`).not.toBe("1");
    }
  });

  it("decodes every xattr the kernel wrote, with the names and values getfattr shows", (ctx) => {
    const f = need(ctx);
    for (const s of f.samples.values()) {
      const entries = [...decodeIbodyXattrs(s.region, { ino: 0 })];
      if (s.block !== null) entries.push(...decodeXattrBlock(s.block, { block: s.fileAcl }).entries);
      const ours = new Map<string, Uint8Array>();
      for (const e of entries) {
        const prefix = xattrFullName(e.e_name_index, new Uint8Array());
        if (prefix === null || (e.e_name_index === EXT4_XATTR_INDEX_SYSTEM && bytesKey(e.name) === "data")) continue;
        const isAcl = e.e_name_index === EXT4_XATTR_INDEX_POSIX_ACL_ACCESS || e.e_name_index === EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT;
        ours.set(bytesKey(te.encode(prefix)) + bytesKey(e.name), isAcl ? ext4AclToVfs(e.value) : e.value);
      }
      expect([...ours.keys()].sort(), s.path).toEqual([...s.listed.keys()].sort());
      for (const [name, value] of s.listed) expect(ours.get(name), `${s.path} ${name}`).toEqual(value);
    }
    // the fixture really exercised both places
    expect(f.samples.get("inbody")!.block).toBeNull();
    expect(decodeXattrBlock(f.samples.get("big")!.block!).entries.map((e) => e.e_name_index)).toEqual(
      expect.arrayContaining([EXT4_XATTR_INDEX_POSIX_ACL_ACCESS, EXT4_XATTR_INDEX_TRUSTED, EXT4_XATTR_INDEX_SECURITY]),
    );
    expect(decodeXattrBlock(f.samples.get("dir")!.block!).entries.map((e) => e.e_name_index)).toEqual([EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT]);
  });

  it("matches the kernel's entry hashes (unsigned) and block hashes", (ctx) => {
    const f = need(ctx);
    let blocks = 0;
    let highNames = 0;
    for (const s of f.samples.values()) {
      if (s.block === null) continue;
      blocks++;
      const d = decodeXattrBlock(s.block);
      for (const e of d.entries) {
        expect(e.e_hash, `${s.path} ${xattrFullName(e.e_name_index, e.name)}`).toBe(xattrEntryHash(e.name, e.value));
        if (e.name.some((c) => c >= 0x80)) {
          highNames++;
          expect(xattrEntryHashSigned(e.name, e.value)).not.toBe(e.e_hash);
        }
      }
      expect(d.h_hash, s.path).toBe(xattrBlockHash(d.entries.map((e) => e.e_hash)));
      expect(d.h_hash).not.toBe(0);
    }
    expect(blocks).toBe(4);
    expect(highNames).toBe(1);
  });

  it("re-encodes kernel blocks byte for byte, except h_checksum", (ctx) => {
    const f = need(ctx);
    for (const s of f.samples.values()) {
      if (s.block === null) continue;
      const d = decodeXattrBlock(s.block);
      const byWriteOrder = [...d.entries].sort((p, q) => q.e_value_offs - p.e_value_offs);
      const ours = encodeXattrBlock(byWriteOrder, BLOCK, d.h_refcount);
      const theirs = s.block.slice();
      xattrHeader.encode({ h_checksum: 0 }, theirs);
      expect(ours, s.path).toEqual(theirs);
    }
  });

  it("re-encodes kernel in-inode areas byte for byte, with e_hash 0", (ctx) => {
    const f = need(ctx);
    for (const s of f.samples.values()) {
      const d = decodeIbodyXattrs(s.region);
      expect(d.every((e) => e.e_hash === 0), s.path).toBe(true);
      expect(encodeIbodyXattrs(d, s.region.length), s.path).toEqual(s.region);
    }
    expect(decodeIbodyXattrs(f.samples.get("inbody")!.region).length).toBe(2);
  });

  it("shares identical blocks with h_refcount 2", (ctx) => {
    const f = need(ctx);
    const a = f.samples.get("share1")!;
    expect(f.samples.get("share2")!.fileAcl).toBe(a.fileAcl);
    expect(decodeXattrBlock(a.block!).h_refcount).toBe(2);
  });

  it("inline data is i_block plus the system.data value", (ctx) => {
    const f = need(ctx);
    const s = f.samples.get("inl")!;
    const tail = inlineDataValue(decodeIbodyXattrs(s.region));
    expect(tail).not.toBeNull();
    const iBlock = s.raw.subarray(0x28, 0x28 + EXT4_MIN_INLINE_DATA_SIZE);
    expect(Uint8Array.from([...iBlock, ...tail!])).toEqual(f.inlineContent);
  });
});
