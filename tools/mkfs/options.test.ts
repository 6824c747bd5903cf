import { describe, expect, it } from "vitest";
import { featureNames } from "../../src/format/features.js";
import { isFsError } from "../../src/errors.js";
import { editFeatures, parseNumBlocks2, parseUuid, resolveParams, type MkfsOptions } from "./options.js";
import { sizeType } from "./profile.js";

const dev = { bytes: undefined, isDevice: false, name: "t.img" };
const resolve = (o: MkfsOptions): ReturnType<typeof resolveParams> => resolveParams(o, dev);

describe("parseNumBlocks2() (lib/e2p/parse_num.c)", () => {
  it("reads plain numbers as blocks and suffixed ones as sizes", () => {
    expect(parseNumBlocks2("1000", 0)).toBe(1000);
    expect(parseNumBlocks2("64M", 0)).toBe(65536);
    expect(parseNumBlocks2("64M", 2)).toBe(16384);
    expect(parseNumBlocks2("16T", 2)).toBe(2 ** 32);
    expect(parseNumBlocks2("4k", -1)).toBe(4096);
    expect(parseNumBlocks2("2048s", 0)).toBe(1024);
    expect(parseNumBlocks2("0x10", 0)).toBe(16);
  });
  it("returns 0 for anything else", () => {
    expect(parseNumBlocks2("12X", 0)).toBe(0);
    expect(parseNumBlocks2("8MB", 0)).toBe(0);
    expect(parseNumBlocks2("", 0)).toBe(0);
  });
});

describe("editFeatures() (e2p_edit_feature2)", () => {
  it("sets, clears with ^ or -, and clears everything with none", () => {
    const w = { s_feature_compat: 0, s_feature_incompat: 0, s_feature_ro_compat: 0 };
    editFeatures(w, "has_journal,extents 64bit");
    expect(featureNames(w)).toEqual(["has_journal", "extent", "64bit"]);
    editFeatures(w, "^has_journal,-64bit");
    expect(featureNames(w)).toEqual(["extent"]);
    editFeatures(w, "none");
    expect(featureNames(w)).toEqual([]);
  });
  it("names an unknown feature in its error", () => {
    const w = { s_feature_compat: 0, s_feature_incompat: 0, s_feature_ro_compat: 0 };
    expect(() => { editFeatures(w, "extent,frobnicate"); }).toThrow(/frobnicate/);
  });
});

describe("resolveParams() defaults (mke2fs 1.47.0 with its mke2fs.conf)", () => {
  it("gives ext4 the 1.47.0 feature set, 256-byte inodes, flex_bg 16, acl and user_xattr", () => {
    const p = resolve({ size: "1G" });
    expect(featureNames(p.features)).toEqual([
      "has_journal", "ext_attr", "resize_inode", "dir_index", "filetype", "extent", "64bit", "flex_bg",
      "sparse_super", "large_file", "huge_file", "dir_nlink", "extra_isize", "metadata_csum",
    ]);
    expect([p.blockSize, p.inodeSize, p.logGroupsPerFlex, p.defaultMountOpts, p.hashAlg, p.descSize]).toEqual([4096, 256, 4, 0x000c, 1, 64]);
    expect(p.inodesCount).toBe(65536); // 1 GiB / inode_ratio 16384
    expect(p.rBlocksCount).toBe(13107); // 5 %
  });
  it("picks the size profile like mke2fs: floppy, small, default, big, huge", () => {
    expect(["2M", "100M", "1G", "5T", "16T"].map((s) => sizeType(parseNumBlocks2(s, 0), 1024))).toEqual(["floppy", "small", "default", "big", "huge"]);
    expect(resolve({ size: "100M" }).blockSize).toBe(1024);
  });
  it("clears resize_inode past 2^32 blocks and refuses that size without 64bit", () => {
    expect(featureNames(resolve({ size: "16T" }).features)).not.toContain("resize_inode");
    expect(() => resolve({ size: "16T", fsType: "ext3" })).toThrow(/too big to be expressed in 32 bits/);
  });
  it("keeps only the last -E, as mke2fs does", () => {
    const p = resolve({ size: "1G", extended: ["lazy_itable_init=0", "root_owner=5:6"] });
    expect([p.ext.rootUid, p.ext.rootGid, p.ext.lazyItableInit]).toEqual([5, 6, true]);
  });
  it("refuses unknown quota types, bad sizes and unknown options with EINVAL", () => {
    for (const o of [{ extended: ["quotatype=usrquota:nope"] }, { blockSize: "3000" }, { extended: ["nope"] }, { inodeSize: "100" }]) {
      let err: unknown;
      try {
        resolve({ size: "1G", ...o });
      } catch (e) {
        err = e;
      }
      expect(isFsError(err, "EINVAL"), JSON.stringify(o)).toBe(true);
    }
  });
  it("parses canonical UUIDs only", () => {
    expect(parseUuid("3c6cbe56-1f1b-4e1a-9d55-0c2b6a0f7a11")?.[0]).toBe(0x3c);
    expect(parseUuid("3c6cbe561f1b4e1a9d550c2b6a0f7a11")).toBeUndefined();
  });
});
