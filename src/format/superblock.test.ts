import { spawnSync } from "node:child_process";
import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EXT4_FEATURE_COMPAT_HAS_JOURNAL, EXT4_FEATURE_INCOMPAT_64BIT, EXT4_FEATURE_INCOMPAT_CASEFOLD,
  EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_INCOMPAT_FILETYPE, EXT4_FEATURE_INCOMPAT_JOURNAL_DEV,
  EXT4_FEATURE_INCOMPAT_META_BG, EXT4_FEATURE_INCOMPAT_RECOVER, EXT4_FEATURE_RO_COMPAT_BIGALLOC,
  EXT4_FEATURE_RO_COMPAT_GDT_CSUM, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM, EXT4_FEATURE_RO_COMPAT_READONLY,
  EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER, EXT4_SUPER_MAGIC, EXT4TS_INCOMPAT_READ_SUPP, SUPERBLOCK_OFFSET,
  blockSize, blocksCount, checkFeatures, clusterSize, ctimeUtc, descSize, describeSuperblock, featureNames,
  firstIno, freeBlocksCount, groupCount, inodeSize, parseFeatureName, rBlocksCount, setBlocksCount,
  superblock, superTime, uuidString, validateSuperblock, type Superblock,
} from "./superblock.js";

/** A valid 1 KiB-block, one-group superblock like `mke2fs -t ext2 -b 1024 img 8M` makes. */
function baseSuperblock(): Superblock {
  const sb = superblock.decode(new Uint8Array(1024));
  Object.assign(sb, {
    s_inodes_count: 2048, s_blocks_count_lo: 8192, s_r_blocks_count_lo: 409, s_free_blocks_count_lo: 7918,
    s_free_inodes_count: 2037, s_first_data_block: 1, s_blocks_per_group: 8192, s_clusters_per_group: 8192,
    s_inodes_per_group: 2048, s_magic: EXT4_SUPER_MAGIC, s_state: 1, s_errors: 1, s_rev_level: 1,
    s_first_ino: 11, s_inode_size: 256, s_max_mnt_count: 0xffff,
  });
  return sb;
}

describe("ext4_super_block layout", () => {
  it("is 1024 bytes with s_checksum last, at 0x3FC (super.rst)", () => {
    expect(superblock.size).toBe(1024);
    expect(superblock.offsetOf("s_checksum")).toBe(0x3fc);
    expect(superblock.endOf("s_checksum")).toBe(0x400);
  });

  it("puts anchor fields at the offsets super.rst gives", () => {
    const anchors: [keyof typeof superblock.fields, number][] = [
      ["s_inodes_count", 0x0], ["s_log_block_size", 0x18], ["s_mtime", 0x2c], ["s_magic", 0x38],
      ["s_rev_level", 0x4c], ["s_first_ino", 0x54], ["s_feature_compat", 0x5c], ["s_feature_ro_compat", 0x64],
      ["s_uuid", 0x68], ["s_volume_name", 0x78], ["s_last_mounted", 0x88], ["s_algorithm_usage_bitmap", 0xc8],
      ["s_reserved_gdt_blocks", 0xce], ["s_journal_uuid", 0xd0], ["s_journal_inum", 0xe0], ["s_hash_seed", 0xec],
      ["s_def_hash_version", 0xfc], ["s_desc_size", 0xfe], ["s_default_mount_opts", 0x100], ["s_mkfs_time", 0x108],
      ["s_jnl_blocks", 0x10c], ["s_blocks_count_hi", 0x150], ["s_min_extra_isize", 0x15c], ["s_flags", 0x160],
      ["s_mmp_block", 0x168], ["s_raid_stripe_width", 0x170], ["s_log_groups_per_flex", 0x174],
      ["s_checksum_type", 0x175], ["s_kbytes_written", 0x178], ["s_snapshot_inum", 0x180], ["s_error_count", 0x194],
      ["s_first_error_func", 0x1a8], ["s_last_error_time", 0x1cc], ["s_last_error_func", 0x1e0],
      ["s_mount_opts", 0x200], ["s_usr_quota_inum", 0x240], ["s_backup_bgs", 0x24c], ["s_encrypt_pw_salt", 0x258],
      ["s_lpf_ino", 0x268], ["s_checksum_seed", 0x270], ["s_wtime_hi", 0x274], ["s_first_error_errcode", 0x27a],
      ["s_encoding", 0x27c], ["s_encoding_flags", 0x27e], ["s_orphan_file_inum", 0x280], ["s_reserved", 0x288],
    ];
    for (const [field, off] of anchors) expect([field, superblock.offsetOf(field)]).toEqual([field, off]);
  });

  it("names every byte: fields are contiguous from 0 to 1024", () => {
    let end = 0;
    for (const [name, [off, type]] of Object.entries(superblock.fields)) {
      expect([name, off]).toEqual([name, end]);
      end = off + type.size;
    }
    expect(end).toBe(1024);
  });
});

describe("superblock accessors", () => {
  it("joins _hi halves only when 64bit is set", () => {
    const sb = baseSuperblock();
    sb.s_blocks_count_hi = 1;
    sb.s_r_blocks_count_hi = 2;
    sb.s_free_blocks_count_hi = 3;
    expect([blocksCount(sb), rBlocksCount(sb), freeBlocksCount(sb)]).toEqual([8192, 409, 7918]);
    sb.s_feature_incompat |= EXT4_FEATURE_INCOMPAT_64BIT;
    expect([blocksCount(sb), rBlocksCount(sb), freeBlocksCount(sb)]).toEqual([2 ** 32 + 8192, 2 * 2 ** 32 + 409, 3 * 2 ** 32 + 7918]);
  });

  it("setBlocksCount() splits, and refuses a 33-bit count without 64bit", () => {
    const sb = baseSuperblock();
    expect(() => setBlocksCount(sb, 2 ** 32)).toThrow(/64bit/);
    sb.s_feature_incompat |= EXT4_FEATURE_INCOMPAT_64BIT;
    setBlocksCount(sb, 2 ** 40 + 5);
    expect([sb.s_blocks_count_lo, sb.s_blocks_count_hi, blocksCount(sb)]).toEqual([5, 256, 2 ** 40 + 5]);
  });

  it("derives geometry the way the kernel macros do", () => {
    const sb = baseSuperblock();
    expect([blockSize(sb), clusterSize(sb), groupCount(sb), inodeSize(sb), firstIno(sb), descSize(sb)]).toEqual([1024, 1024, 1, 256, 11, 32]);
    sb.s_rev_level = 0;
    expect([inodeSize(sb), firstIno(sb)]).toEqual([128, 11]);
    sb.s_feature_incompat = EXT4_FEATURE_INCOMPAT_64BIT;
    sb.s_desc_size = 64;
    expect(descSize(sb)).toBe(64);
    sb.s_log_block_size = 2;
    sb.s_log_cluster_size = 6;
    sb.s_feature_ro_compat = EXT4_FEATURE_RO_COMPAT_BIGALLOC;
    expect([blockSize(sb), clusterSize(sb)]).toEqual([4096, 65536]);
  });

  it("groupCount() covers the blocks after s_first_data_block, rounding up", () => {
    const sb = baseSuperblock();
    sb.s_blocks_count_lo = 8193; // blocks 1..8192 fill group 0 exactly
    expect(groupCount(sb)).toBe(1);
    sb.s_blocks_count_lo = 8194;
    expect(groupCount(sb)).toBe(2);
  });

  it("superTime() adds the _hi byte as bits 32..39", () => {
    const sb = baseSuperblock();
    sb.s_mkfs_time = 5;
    sb.s_mkfs_time_hi = 1;
    expect(superTime(sb, "s_mkfs_time")).toBe(2 ** 32 + 5);
  });

  it("ctimeUtc() pads the day like ctime(3)", () => {
    expect(ctimeUtc(0)).toBe("Thu Jan  1 00:00:00 1970");
    expect(ctimeUtc(1795466815)).toBe("Mon Nov 23 20:46:55 2026");
  });
});

describe("feature names", () => {
  it("lists compat, incompat, then ro_compat, each by bit, with e2fsprogs names", () => {
    const sb = baseSuperblock();
    sb.s_feature_compat = EXT4_FEATURE_COMPAT_HAS_JOURNAL;
    sb.s_feature_incompat = EXT4_FEATURE_INCOMPAT_EXTENTS | EXT4_FEATURE_INCOMPAT_FILETYPE;
    sb.s_feature_ro_compat = EXT4_FEATURE_RO_COMPAT_METADATA_CSUM | EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT4_FEATURE_RO_COMPAT_GDT_CSUM;
    expect(featureNames(sb)).toEqual(["has_journal", "filetype", "extent", "sparse_super", "uninit_bg", "metadata_csum"]);
  });

  it("prints bits e2fsprogs has no name for as FEATURE_<kind><bit>", () => {
    const sb = baseSuperblock();
    sb.s_feature_compat = 0x80;
    sb.s_feature_incompat = 0x80000000;
    sb.s_feature_ro_compat = 0x4 | EXT4_FEATURE_RO_COMPAT_READONLY;
    expect(featureNames(sb)).toEqual(["FEATURE_C7", "FEATURE_I31", "FEATURE_R2", "read-only"]);
  });

  it("parseFeatureName() accepts names, aliases and FEATURE_ forms case-insensitively", () => {
    expect(parseFeatureName("metadata_csum")).toEqual({ kind: "ro_compat", mask: EXT4_FEATURE_RO_COMPAT_METADATA_CSUM });
    expect(parseFeatureName("EXTENTS")).toEqual({ kind: "incompat", mask: EXT4_FEATURE_INCOMPAT_EXTENTS });
    expect(parseFeatureName("uninit_groups")).toEqual({ kind: "ro_compat", mask: EXT4_FEATURE_RO_COMPAT_GDT_CSUM });
    expect(parseFeatureName("fname_encoding")).toEqual({ kind: "incompat", mask: EXT4_FEATURE_INCOMPAT_CASEFOLD });
    expect(parseFeatureName("FEATURE_I31")).toEqual({ kind: "incompat", mask: 2 ** 31 });
    expect(parseFeatureName("feature_c0")).toEqual({ kind: "compat", mask: 1 });
    expect(parseFeatureName("FEATURE_R32")).toBeUndefined();
    expect(parseFeatureName("no_such_feature")).toBeUndefined();
  });

  it("parseFeatureName() inverts featureNames() for every bit", () => {
    for (const kind of ["compat", "incompat", "ro_compat"] as const) {
      for (let bit = 0; bit < 32; bit++) {
        const sb = baseSuperblock();
        const field = kind === "compat" ? "s_feature_compat" : kind === "incompat" ? "s_feature_incompat" : "s_feature_ro_compat";
        sb[field] = 2 ** bit;
        const [name] = featureNames(sb);
        expect(name === undefined ? undefined : parseFeatureName(name)).toEqual({ kind, mask: 2 ** bit });
      }
    }
  });
});

describe("checkFeatures()", () => {
  it("accepts what ext4ts reads, needs_recovery included", () => {
    const sb = baseSuperblock();
    sb.s_feature_incompat = EXT4TS_INCOMPAT_READ_SUPP;
    expect(checkFeatures(sb)).toEqual({ unknownIncompat: [], unsupportedIncompat: [], unknownRoCompat: [] });
    expect(EXT4TS_INCOMPAT_READ_SUPP & EXT4_FEATURE_INCOMPAT_RECOVER).not.toBe(0);
  });

  it("separates unknown, unsupported and write-blocking features", () => {
    const sb = baseSuperblock();
    sb.s_feature_incompat = EXT4_FEATURE_INCOMPAT_META_BG | EXT4_FEATURE_INCOMPAT_JOURNAL_DEV | EXT4_FEATURE_INCOMPAT_CASEFOLD | 0x800 | 0x80000000;
    sb.s_feature_ro_compat = EXT4_FEATURE_RO_COMPAT_READONLY | 0x100000 | EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER;
    expect(checkFeatures(sb)).toEqual({
      unknownIncompat: ["FEATURE_I11", "FEATURE_I31"],
      unsupportedIncompat: ["journal_dev", "casefold"],
      unknownRoCompat: ["read-only", "FEATURE_R20"],
    });
  });
});

describe("validateSuperblock()", () => {
  it("finds nothing wrong with a sane superblock", () => {
    expect(validateSuperblock(baseSuperblock(), 8 << 20)).toEqual([]);
  });

  const cases: [string, (sb: Superblock) => void, RegExp][] = [
    ["a bad magic", (sb) => { sb.s_magic = 0; }, /^Bad magic number 0x0000, expected 0xef53$/],
    ["a revision above 1", (sb) => { sb.s_rev_level = 2; }, /^Revision level 2 is too high/],
    ["a block size above 64 KiB", (sb) => { sb.s_log_block_size = 7; }, /^Invalid log block size 7/],
    ["a cluster size above 2^30", (sb) => { sb.s_log_cluster_size = 21; }, /^Invalid log cluster size 21/],
    ["a cluster size without bigalloc", (sb) => { sb.s_log_cluster_size = 1; }, /^Fragment\/cluster size 2048 differs from block size 1024$/],
    ["a cluster smaller than a block under bigalloc", (sb) => {
      sb.s_feature_ro_compat = EXT4_FEATURE_RO_COMPAT_BIGALLOC; sb.s_feature_incompat = EXT4_FEATURE_INCOMPAT_EXTENTS;
      sb.s_log_block_size = 2; sb.s_first_data_block = 0; sb.s_blocks_count_lo = 2048;
    }, /^Cluster size 1024 is smaller than block size 4096$/],
    ["bigalloc without extents", (sb) => { sb.s_feature_ro_compat = EXT4_FEATURE_RO_COMPAT_BIGALLOC; }, /^Feature bigalloc requires the extent feature$/],
    ["zero blocks per group", (sb) => { sb.s_blocks_per_group = 0; }, /^Invalid blocks per group 0$/],
    ["too many blocks per group", (sb) => { sb.s_blocks_per_group = 8200; sb.s_clusters_per_group = 8200; }, /^Blocks per group 8200 is too big, expected at most 8192$/],
    ["zero inodes per group", (sb) => { sb.s_inodes_per_group = 0; }, /^Invalid inodes per group 0, expected 4 to 8192$/],
    ["inodes count not matching the groups", (sb) => { sb.s_inodes_count = 2049; }, /^Inode count 2049 does not match 1 groups of 2048 inodes \(2048\)$/],
    ["an inode size that is not a power of two", (sb) => { sb.s_inode_size = 200; }, /^Unsupported inode size 200/],
    ["an inode size below 128", (sb) => { sb.s_inode_size = 64; }, /^Unsupported inode size 64/],
    ["an inode larger than a block", (sb) => { sb.s_inode_size = 2048; }, /^Unsupported inode size 2048/],
    ["a first inode below 11", (sb) => { sb.s_first_ino = 5; }, /^Invalid first inode 5, expected at least 11$/],
    ["a 64bit descriptor size below 64", (sb) => { sb.s_feature_incompat = EXT4_FEATURE_INCOMPAT_64BIT; sb.s_desc_size = 32; }, /^Unsupported descriptor size 32/],
    ["a 64bit descriptor size not a power of two", (sb) => { sb.s_feature_incompat = EXT4_FEATURE_INCOMPAT_64BIT; sb.s_desc_size = 96; }, /^Unsupported descriptor size 96/],
    ["first data block 0 with 1 KiB blocks", (sb) => { sb.s_first_data_block = 0; sb.s_blocks_count_lo = 8192; }, /^First data block is 0 with 1 KiB blocks/],
    ["first data block past the end", (sb) => { sb.s_first_data_block = 9000; }, /^First data block 9000 is beyond the end/],
    ["more blocks than the device", (sb) => { sb.s_blocks_count_lo = 16385; sb.s_blocks_per_group = 8192; sb.s_inodes_count = 4096; }, /^Block count 16385 exceeds the device size of 8192 blocks$/],
    ["too many reserved GDT blocks", (sb) => { sb.s_reserved_gdt_blocks = 257; }, /^Reserved GDT blocks 257 is too large/],
    ["s_first_meta_bg past the table", (sb) => { sb.s_feature_incompat = EXT4_FEATURE_INCOMPAT_META_BG; sb.s_first_meta_bg = 2; }, /^First meta block group 2 is beyond the 1 group descriptor blocks$/],
    ["a block count past 2^53", (sb) => {
      sb.s_feature_incompat = EXT4_FEATURE_INCOMPAT_64BIT; sb.s_desc_size = 64; sb.s_blocks_count_hi = 2 ** 21;
    }, /^Block count 9007199254749184 is too large to address$/],
    ["an unknown checksum type", (sb) => { sb.s_feature_ro_compat = EXT4_FEATURE_RO_COMPAT_METADATA_CSUM; sb.s_checksum_type = 2; }, /^Unknown checksum type 2/],
  ];
  for (const [what, mutate, message] of cases) {
    it(`reports ${what}`, () => {
      const sb = baseSuperblock();
      mutate(sb);
      const problems = validateSuperblock(sb, 8 << 20);
      expect(problems.some((p) => message.test(p)), problems.join("\n")).toBe(true);
      for (const p of problems) expect(p).toMatch(/^[A-Z][^\n]*[^.]$/); // sentence case, no final period
    });
  }
});

describe("describeSuperblock()", () => {
  it("prints state, errors and error records as dumpe2fs does", () => {
    const sb = baseSuperblock();
    sb.s_state = 2;
    sb.s_errors = 2;
    sb.s_error_count = 3;
    sb.s_last_error_time = 1795466815;
    sb.s_last_error_func.set(new TextEncoder().encode("ext4_lookup"));
    sb.s_last_error_line = 1792;
    sb.s_last_error_ino = 12;
    sb.s_last_error_errcode = 5;
    sb.s_checkinterval = 86400 * 40 + 3661;
    sb.s_kbytes_written = 50_000_000n; // (kb + 2^19) >> 20
    sb.s_def_resuid = 1000;
    const out = describeSuperblock(sb).split("\n");
    expect(out).toContain("Filesystem state:         not clean with errors");
    expect(out).toContain("Errors behavior:          Remount read-only");
    expect(out).toContain("Check interval:           3459661 (1 month, 1 week, 3 days, 1:01:01)");
    expect(out).toContain("Lifetime writes:          48 GB");
    expect(out).toContain("Reserved blocks uid:      1000 (user unknown)");
    expect(out).toContain("FS Error count:           3");
    expect(out).toContain("Last error function:      ext4_lookup");
    expect(out).toContain("Last error inode #:       12");
    expect(out).toContain("Last error err:           EFSCORRUPTED");
  });

  it("asks the caller for user and group names", () => {
    const sb = baseSuperblock();
    sb.s_def_resgid = 50;
    const out = describeSuperblock(sb, { groupName: (gid) => (gid === 50 ? "staff" : undefined) });
    expect(out).toContain("Reserved blocks gid:      50 (group staff)\n");
  });
});

// ---- e2fsprogs oracle ------------------------------------------------------------

interface Oracles {
  mke2fs: string;
  dumpe2fs: string;
}

/** Locate e2fsprogs; returns the reason when they are missing. */
function findOracles(): Oracles | string {
  const find = (tool: string): string | undefined =>
    ["", "/sbin/", "/usr/sbin/"].map((dir) => dir + tool).find((p) => spawnSync(p, ["-V"]).error === undefined);
  const mke2fs = find("mke2fs");
  const dumpe2fs = find("dumpe2fs");
  if (mke2fs === undefined || dumpe2fs === undefined) return "mke2fs or dumpe2fs not found (install e2fsprogs)";
  return { mke2fs, dumpe2fs };
}

const oracles = findOracles();
const requireOracles = process.env.EXT4TS_REQUIRE_ORACLES === "1";
if (typeof oracles === "string" && !requireOracles) console.warn(`Skipping superblock oracle tests: ${oracles}`);

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, TZ: "UTC", LC_ALL: "C" } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** mke2fs configurations: every ext2/3/4 flavour and layout we need to read. */
const IMAGES: { name: string; args: string[]; size: string }[] = [
  { name: "ext2 1k", args: ["-t", "ext2", "-b", "1024"], size: "8M" },
  { name: "ext2 revision 0", args: ["-t", "ext2", "-r", "0", "-b", "1024"], size: "8M" },
  { name: "ext2 without sparse_super", args: ["-t", "ext2", "-b", "1024", "-g", "1024", "-O", "^sparse_super,^resize_inode"], size: "16M" },
  { name: "ext3 4k", args: ["-t", "ext3", "-b", "4096"], size: "32M" },
  { name: "ext4 1k ^64bit", args: ["-t", "ext4", "-b", "1024", "-O", "^64bit"], size: "32M" },
  { name: "ext4 4k 64bit", args: ["-t", "ext4", "-b", "4096", "-O", "64bit"], size: "64M" },
  { name: "ext4 1k meta_bg", args: ["-t", "ext4", "-b", "1024", "-g", "1024", "-O", "meta_bg,^resize_inode,^64bit"], size: "64M" },
  { name: "ext4 1k meta_bg 64bit", args: ["-t", "ext4", "-b", "1024", "-g", "256", "-O", "meta_bg,^resize_inode,64bit"], size: "32M" },
  { name: "ext4 4k bigalloc", args: ["-t", "ext4", "-b", "4096", "-O", "bigalloc", "-C", "65536"], size: "128M" },
  { name: "ext4 1k bigalloc", args: ["-t", "ext4", "-b", "1024", "-O", "bigalloc", "-C", "4096"], size: "32M" },
  {
    name: "ext4 with label, RAID hints, quota, sparse_super2, casefold, orphan_file and mmp",
    args: ["-t", "ext4", "-L", "ext4ts", "-M", "/mnt/test", "-E", "stride=4,stripe_width=16,num_backup_sb=1",
      "-O", "quota,project,metadata_csum_seed,inline_data,^resize_inode,sparse_super2,casefold,orphan_file,mmp"],
    size: "64M",
  },
];

/** Superblock bytes and device size read with plain node:fs, not engine code. */
function readSuperblockBytes(path: string): { raw: Uint8Array; size: number } {
  const fd = openSync(path, "r");
  try {
    const raw = new Uint8Array(1024);
    expect(readSync(fd, raw, 0, 1024, SUPERBLOCK_OFFSET)).toBe(1024);
    return { raw, size: fstatSync(fd).size };
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(typeof oracles === "string" && !requireOracles)("superblock against mke2fs and dumpe2fs -h", () => {
  let dir = "";
  beforeAll(() => {
    if (typeof oracles === "string") throw new Error(`EXT4TS_REQUIRE_ORACLES=1 but ${oracles}`);
    dir = mkdtempSync(join(tmpdir(), "ext4ts-sb-"));
  });
  afterAll(() => {
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  for (const image of IMAGES) {
    describe(image.name, () => {
      let path = "";
      let header: string[] = [];
      beforeAll(() => {
        if (typeof oracles === "string") return;
        path = join(dir, `${image.name.replace(/[^a-z0-9]+/gi, "_")}.img`);
        run(oracles.mke2fs, ["-q", "-F", ...image.args, path, image.size]);
        header = run(oracles.dumpe2fs, ["-h", path]).split("\n");
      });

      it("round-trips: encode(decode(bytes)) equals the bytes", () => {
        const { raw } = readSuperblockBytes(path);
        const copy = raw.slice();
        superblock.encode(superblock.decode(copy), copy);
        expect(copy).toEqual(raw);
        const zeroed = new Uint8Array(1024);
        superblock.encode(superblock.decode(raw), zeroed);
        expect(zeroed).toEqual(raw); // every byte is named, so encoding alone rebuilds it
      });

      it("passes validateSuperblock() and checkFeatures() when the image is readable", () => {
        const { raw, size } = readSuperblockBytes(path);
        const sb = superblock.decode(raw);
        expect(validateSuperblock(sb, size)).toEqual([]);
        const f = checkFeatures(sb);
        expect(f.unknownIncompat).toEqual([]);
        expect(f.unknownRoCompat).toEqual([]);
        expect(f.unsupportedIncompat).toEqual(image.args.join(" ").includes("casefold") ? ["casefold"] : []);
      });

      it("featureNames() equals the 'Filesystem features:' line", () => {
        const sb = superblock.decode(readSuperblockBytes(path).raw);
        const featureLine = header.find((l) => l.startsWith("Filesystem features:"));
        expect(featureLine).toBeDefined();
        const names = featureNames(sb);
        expect(names.length > 0 ? names.join(" ") : "(none)").toBe(featureLine?.slice(26));
      });

      it("describeSuperblock() equals dumpe2fs -h up to the journal section", () => {
        const sb = superblock.decode(readSuperblockBytes(path).raw);
        const ours = describeSuperblock(sb).split("\n").slice(0, -1);
        // Times match because dumpe2fs runs with TZ=UTC; uid/gid 0 are root on any system.
        expect(ours).toEqual(header.slice(0, ours.length));
        const next = header[ours.length] ?? "";
        expect(next === "" || next.startsWith("Journal features:") || next.startsWith("MMP_block:"), `next line: ${next}`).toBe(true);
        expect(header).toContain(`Filesystem UUID:          ${uuidString(sb)}`);
      });
    });
  }
});
