/**
 * Tests of the oracle infrastructure itself: the kernel-side manifest, the tree generator, and the
 * image builders (each image must pass `e2fsck -fn` and really have the on-disk shape it exists
 * for). Pure formatting tests always run; the rest need tools, root and loop mounts, and are
 * skipped with an "ORACLE SKIPPED:" line, or fail under EXT4TS_REQUIRE_ORACLES=1.
 */
import { execFileSync } from "node:child_process";
import { lchownSync, chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { EXT4_INDEX_FL, EXT4_XATTR_MAGIC, blockMapKinds, extentDepth, htreeIndirectLevels, inodeFlags, leafExtents, xattrBlockHeader, xattrBlockOf } from "./inspect.js";
import { KERNEL_IMAGES, MKE2FS_PRESETS, cachedTree, cleanupImages, e2fsckClean, kernelImage, kernelManifestOfImage, mke2fsPreset, mountsUnder, runDir } from "./images.js";
import type { KernelImageName, Mke2fsPresetName } from "./images.js";
import { devMajor, devMinor, formatTimeNs, kernelManifest, manifestLine, parseGetfattrDump } from "./kernel_manifest.js";
import type { ManifestEntry } from "./kernel_manifest.js";
import { BIG_DIR_CREATED, DEEP_EXTENTS, SHARED_XATTR_FILES } from "./kernel_populate.js";
import { haveTool, oracleAvailability, oracleGate, requireOrSkip, run, tool } from "./oracle_env.js";
import { ODD_NAMES, Rng, makeTree } from "./trees.js";

const TREE_TOOLS = ["getfattr", "setfattr", "setfacl", "mkfifo", "mknod", "touch"];
const IMAGE_TOOLS = [...TREE_TOOLS, "mke2fs", "e2fsck", "debugfs", "dumpe2fs", "fallocate", "filefrag", "losetup", "mount", "umount", "sync"];

// File level, so it runs even when a name filter skips the "cleanup" suite.
afterAll(() => {
  cleanupImages();
});

function parseManifest(text: string): ManifestEntry[] {
  expect(text.endsWith("\n")).toBe(true);
  return text
    .slice(0, -1)
    .split("\n")
    .map((l) => JSON.parse(l) as ManifestEntry);
}

function byPath(entries: readonly ManifestEntry[]): Map<string, ManifestEntry> {
  return new Map(entries.map((e) => [e.path, e]));
}

describe("manifest formatting", () => {
  it("formatTimeNs() floors seconds and keeps nanoseconds non-negative", () => {
    expect(formatTimeNs(0n)).toBe("0.000000000");
    expect(formatTimeNs(1n)).toBe("0.000000001");
    expect(formatTimeNs(-1n)).toBe("-1.999999999");
    expect(formatTimeNs(-1_500_000_000n)).toBe("-2.500000000");
    expect(formatTimeNs(-2_000_000_000n)).toBe("-2.000000000");
    expect(formatTimeNs(1_234_567_890_123_456_789n)).toBe("1234567890.123456789");
    expect(formatTimeNs(15_032_385_535_999_999_999n)).toBe("15032385535.999999999");
  });

  it("devMajor() and devMinor() decode the Linux dev_t", () => {
    // glibc makedev(1, 3), makedev(7, 0), makedev(300, 70000), makedev(4095, 1048575)
    const makedev = (ma: bigint, mi: bigint): bigint => ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
    for (const [ma, mi] of [[1, 3], [7, 0], [300, 70000], [4095, 1048575], [0, 0], [259, 65536]] as const) {
      const dev = makedev(BigInt(ma), BigInt(mi));
      expect([devMajor(dev), devMinor(dev)]).toEqual([ma, mi]);
    }
  });

  it("manifestLine() keeps the key order and leaves out absent keys", () => {
    const line = manifestLine({
      xattrs: { "user.b": "Ag==", "security.a": "", "user.a": "AQ==" },
      sha256: "00",
      mtime: "1.000000000",
      size: 3,
      nlink: 1,
      gid: 2,
      uid: 1,
      mode: "0644",
      type: "file",
      path: "/f",
      target: undefined,
    });
    expect(line).toBe('{"path":"/f","type":"file","mode":"0644","uid":1,"gid":2,"nlink":1,"size":3,"mtime":"1.000000000","sha256":"00","xattrs":{"security.a":"","user.a":"AQ==","user.b":"Ag=="}}');
    expect(manifestLine({ path: "/d", type: "dir", mode: "1777", uid: 0, gid: 0, nlink: 2, size: 4096, mtime: "0.000000000", xattrs: {} })).toBe(
      '{"path":"/d","type":"dir","mode":"1777","uid":0,"gid":0,"nlink":2,"size":4096,"mtime":"0.000000000"}',
    );
  });

  it("parseGetfattrDump() decodes quoting, empty values and drops system.data", () => {
    const dump = [
      "# file: /m/a\\012b\\134c",
      "user.empty=0s",
      "user.bare",
      'user.quoted=""',
      "user.eq\\075name=0sAP8=",
      "user.hex=0x00ff",
      "system.data=0s",
      "",
      "# file: /m/only-data",
      "system.data=0sAA==",
      "",
    ].join("\n");
    const m = parseGetfattrDump(dump);
    expect([...m.keys()]).toEqual(["/m/a\nb\\c"]);
    expect(m.get("/m/a\nb\\c")).toEqual({ "user.empty": "", "user.bare": "", "user.quoted": "", "user.eq=name": "AP8=", "user.hex": "AP8=" });
  });

  it("Rng is deterministic for a seed", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 100 }, () => a.u32());
    expect(Array.from({ length: 100 }, () => b.u32())).toEqual(xs);
    expect(new Set(xs).size).toBe(100);
    expect(Buffer.from(new Rng(7).bytes(8)).toString("hex")).toBe(Buffer.from(new Rng(7).bytes(8)).toString("hex"));
  });
});

describe("oracle environment", () => {
  it("haveTool() finds sbin tools and rejects unknown names", () => {
    expect(haveTool("definitely-not-a-tool-ext4ts")).toBe(false);
    expect(haveTool("sh")).toBe(true);
  });

  it("requireOrSkip() fails when oracles are required and only warns otherwise", () => {
    expect(() => {
      requireOrSkip("no frobnicator", true);
    }).toThrow(/EXT4TS_REQUIRE_ORACLES=1.*no frobnicator/);
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      requireOrSkip("no frobnicator", false);
      expect(warn).toHaveBeenCalledWith("ORACLE SKIPPED: no frobnicator");
    } finally {
      warn.mockRestore();
    }
  });

  it("run() returns output and throws with stderr on failure", () => {
    expect(run("sh", ["-c", "echo out; echo err >&2"]).stdout).toBe("out\n");
    expect(() => run("sh", ["-c", "echo boom >&2; exit 3"])).toThrow(/exit 3[\s\S]*boom/);
    expect(run("sh", ["-c", "exit 3"], { okCodes: [3] }).status).toBe(3);
  });
});

describe("kernelManifest() on a directory tree", () => {
  const oracle = oracleAvailability(TREE_TOOLS, { root: true });
  oracleGate(oracle);
  let dir = "";
  afterAll(() => {
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!oracle.ok)("lists a file, dir, symlink, fifo, devices, xattrs and a negative mtime exactly", async () => {
    dir = mkdtempSync(path.join(tmpdir(), "ext4ts-oracle-manifest-"));
    const p = (rel: string): string => path.join(dir, rel);
    writeFileSync(p("file"), "hello\n");
    lchownSync(p("file"), 1000, 100);
    chmodSync(p("file"), 0o4640);
    symlinkSync("file", p("link"));
    run(tool("mkfifo"), [p("fifo")]);
    chmodSync(p("fifo"), 0o600);
    run(tool("mknod"), [p("null"), "c", "1", "3"]);
    run(tool("mknod"), [p("bigdev"), "b", "300", "70000"]);
    chmodSync(p("null"), 0o666);
    chmodSync(p("bigdev"), 0o660);
    mkdirSync(p("sub"));
    chmodSync(p("sub"), 0o1777);
    writeFileSync(p("sub/empty"), "");
    lchownSync(p("sub/empty"), 100000, 4294967294);
    chmodSync(p("sub/empty"), 0o644);
    run(tool("setfattr"), ["-n", "user.e", p("sub/empty")]);
    run(tool("setfattr"), ["-n", "user.bin", "-v", "0x00ff", p("sub/empty")]);
    run(tool("setfattr"), ["-n", "user.k", "-v", "v", p("sub")]);
    writeFileSync(p("odd\nname=\\"), "x");
    chmodSync(p("odd\nname=\\"), 0o644);
    run(tool("setfattr"), ["-n", "user.q=\\", "-v", "1", p("odd\nname=\\")]);
    chmodSync(dir, 0o755);
    const touch = (t: string, ...files: string[]): void => {
      run(tool("touch"), ["-h", "-d", `@${t}`, "--", ...files.map(p)]);
    };
    touch("-1.5", "file");
    touch("1.000000002", "link");
    touch("0", "fifo", "null", "bigdev", "odd\nname=\\");
    touch("-2147483646.5", "sub/empty");
    touch("1234567890.123456789", "sub");
    touch("1000000000.000000001", ".");
    const dirSize = (rel: string): number => lstatSync(p(rel)).size;

    const expected = [
      `{"path":"/","type":"dir","mode":"0755","uid":0,"gid":0,"nlink":3,"size":${dirSize(".")},"mtime":"1000000000.000000001"}`,
      '{"path":"/bigdev","type":"blk","mode":"0660","uid":0,"gid":0,"nlink":1,"size":0,"mtime":"0.000000000","rdev":"300:70000"}',
      '{"path":"/fifo","type":"fifo","mode":"0600","uid":0,"gid":0,"nlink":1,"size":0,"mtime":"0.000000000"}',
      '{"path":"/file","type":"file","mode":"4640","uid":1000,"gid":100,"nlink":1,"size":6,"mtime":"-2.500000000","sha256":"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"}',
      '{"path":"/link","type":"symlink","mode":"0777","uid":0,"gid":0,"nlink":1,"size":4,"mtime":"1.000000002","target":"file"}',
      '{"path":"/null","type":"chr","mode":"0666","uid":0,"gid":0,"nlink":1,"size":0,"mtime":"0.000000000","rdev":"1:3"}',
      '{"path":"/odd\\nname=\\\\","type":"file","mode":"0644","uid":0,"gid":0,"nlink":1,"size":1,"mtime":"0.000000000","sha256":"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881","xattrs":{"user.q=\\\\":"MQ=="}}',
      `{"path":"/sub","type":"dir","mode":"1777","uid":0,"gid":0,"nlink":2,"size":${dirSize("sub")},"mtime":"1234567890.123456789","xattrs":{"user.k":"dg=="}}`,
      '{"path":"/sub/empty","type":"file","mode":"0644","uid":100000,"gid":4294967294,"nlink":1,"size":0,"mtime":"-2147483647.500000000","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","xattrs":{"user.bin":"AP8=","user.e":""}}',
    ];
    expect(await kernelManifest(dir)).toBe(expected.join("\n") + "\n");
  });
});

describe("makeTree()", () => {
  const oracle = oracleAvailability(TREE_TOOLS, { root: true });
  oracleGate(oracle);
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it.skipIf(!oracle.ok)("builds the same tree twice from one seed, with every kind of inode", async () => {
    const opts = { seed: 99, files: 120, maxSize: 256 << 10, withXattrs: true, withSymlinks: true, withHardlinks: true, withSpecial: true, withSparse: true, nsTimes: true } as const;
    const a = mkdtempSync(path.join(tmpdir(), "ext4ts-oracle-tree-"));
    const b = mkdtempSync(path.join(tmpdir(), "ext4ts-oracle-tree-"));
    dirs.push(a, b);
    const sa = await makeTree(path.join(a, "t"), opts);
    const sb = await makeTree(path.join(b, "t"), opts);
    expect(sb).toEqual({ ...sa, root: path.join(b, "t") });
    const ma = await kernelManifest(path.join(a, "t"));
    expect(await kernelManifest(path.join(b, "t"))).toBe(ma);
    const entries = parseManifest(ma);
    const types = new Set(entries.map((e) => e.type));
    expect([...types].sort()).toEqual(["blk", "chr", "dir", "fifo", "file", "sock", "symlink"]);
    expect(entries.some((e) => e.xattrs?.["system.posix_acl_access"] !== undefined)).toBe(true);
    expect(entries.some((e) => e.xattrs?.["system.posix_acl_default"] !== undefined)).toBe(true);
    expect(entries.some((e) => Object.keys(e.xattrs ?? {}).some((k) => k.startsWith("user.")))).toBe(true);
    expect(entries.some((e) => e.type === "file" && e.nlink > 1)).toBe(true);
    expect(entries.some((e) => e.mtime.startsWith("-"))).toBe(true);
    expect(entries.some((e) => /^[0-7]*[4-7][0-7]{3}$/.test(e.mode))).toBe(true); // setuid somewhere
    expect(entries.some((e) => e.uid > 65535)).toBe(true);
    for (const n of ODD_NAMES) expect(entries.some((e) => e.path === `/names/${n}`)).toBe(true);
  });
});

describe("mke2fs images", () => {
  const oracle = oracleAvailability(IMAGE_TOOLS, { loop: true });
  oracleGate(oracle);
  const presets = (Object.keys(MKE2FS_PRESETS) as Mke2fsPresetName[]).filter((n) => !MKE2FS_PRESETS[n].large || process.env.EXT4TS_ORACLE_LARGE === "1");

  for (const name of presets) {
    it.skipIf(!oracle.ok)(`${name} builds, passes e2fsck -fn, and mounts with the source tree's names, types and contents`, { timeout: 300_000 }, async () => {
      const t0 = Date.now();
      const img = await mke2fsPreset(name);
      const built = Date.now() - t0;
      e2fsckClean(img);
      const tree = await cachedTree(MKE2FS_PRESETS[name].options.tree);
      const fromImage = byPath(parseManifest(await kernelManifestOfImage(img)));
      const fromTree = byPath(parseManifest(await kernelManifest(tree)));
      console.info(`oracle image ${name}: built in ${built} ms (tree cached across presets), ${fromImage.size} inodes`);
      // mke2fs -d copies names, types, contents, owners, modes, links and xattrs (times lose ns).
      const project = (e: ManifestEntry): Record<string, unknown> => ({ type: e.type, size: e.type === "dir" ? 0 : e.size, sha256: e.sha256, target: e.target, rdev: e.rdev, mode: e.mode, uid: e.uid, gid: e.gid, nlink: e.nlink, xattrs: e.xattrs });
      const paths = [...fromTree.keys()].filter((p) => p !== "/");
      expect([...fromImage.keys()].filter((p) => p !== "/" && p !== "/lost+found").sort()).toEqual(paths.sort());
      for (const p of paths) {
        const want = project(fromTree.get(p)!);
        const got = project(fromImage.get(p)!);
        // mke2fs 1.47.0 quirk: with inline_data, -d drops a trailing hole (i_size ends at the last data block).
        if (name === "m-ext4-inline" && /\/sparse-[^/]*$/.test(p)) {
          expect({ p, e: { ...got, size: 0, sha256: "" } }).toEqual({ p, e: { ...want, size: 0, sha256: "" } });
          continue;
        }
        expect({ p, e: got }).toEqual({ p, e: want });
      }
    });
  }
});

describe("kernel images", () => {
  const oracle = oracleAvailability(IMAGE_TOOLS, { loop: true });
  oracleGate(oracle);

  for (const name of Object.keys(KERNEL_IMAGES) as KernelImageName[]) {
    const spec = KERNEL_IMAGES[name];
    describe.skipIf(!oracle.ok)(name, () => {
      it("builds through a loop mount and passes e2fsck -fn", { timeout: 300_000 }, async () => {
        const t0 = Date.now();
        const img = await kernelImage(name);
        console.info(`oracle image ${name}: built in ${Date.now() - t0} ms`);
        e2fsckClean(img);
      });

      it("has an htree /big-dir (EXT4_INDEX_FL) with >= 10,000 entries", async () => {
        const img = await kernelImage(name);
        expect(inodeFlags(img, "/big-dir") & EXT4_INDEX_FL).toBe(EXT4_INDEX_FL);
        const levels = htreeIndirectLevels(img, "/big-dir");
        console.info(`oracle image ${name}: /big-dir htree indirect levels ${levels}`);
        if (spec.blockSize === 1024) expect(levels).toBeGreaterThanOrEqual(1);
      });

      it(`shares one xattr block among /xattr/shared-1..${SHARED_XATTR_FILES}`, async () => {
        const img = await kernelImage(name);
        const blocks = Array.from({ length: SHARED_XATTR_FILES }, (_, i) => xattrBlockOf(img, `/xattr/shared-${i + 1}`));
        expect(new Set(blocks).size).toBe(1);
        expect(blocks[0]).toBeGreaterThan(0);
        const h = xattrBlockHeader(img, blocks[0]!, spec.blockSize);
        expect(h.h_magic).toBe(EXT4_XATTR_MAGIC);
        expect(h.h_refcount).toBe(SHARED_XATTR_FILES);
        expect(xattrBlockOf(img, "/xattr/block")).toBeGreaterThan(0);
        expect(xattrBlockOf(img, "/xattr/in-inode")).toBe(0);
      });

      if (spec.extents) {
        it(`has an extent tree of depth >= 2 in /extents/deep (${DEEP_EXTENTS} extents)`, async () => {
          const img = await kernelImage(name);
          expect(extentDepth(img, "/extents/deep")).toBeGreaterThanOrEqual(2);
          expect(leafExtents(img, "/extents/deep").total).toBe(DEEP_EXTENTS);
        });

        it("has unwritten extents, inside and past EOF", async () => {
          const img = await kernelImage(name);
          const all = leafExtents(img, "/extents/unwritten-all");
          expect(all.unwritten).toBe(all.total);
          const split = leafExtents(img, "/extents/unwritten-split");
          expect(split.unwritten).toBeGreaterThan(0);
          expect(split.total).toBeGreaterThan(split.unwritten);
          expect(leafExtents(img, "/extents/prealloc-past-eof").unwritten).toBeGreaterThan(0);
        });
      } else {
        it("maps files with indirect, double and triple indirect blocks", async () => {
          const img = await kernelImage(name);
          expect(blockMapKinds(img, "/sizes/b12")).toEqual({ ind: false, dind: false, tind: false });
          expect(blockMapKinds(img, "/sizes/b13").ind).toBe(true);
          expect(blockMapKinds(img, "/sizes/b12+256+1").dind).toBe(true);
          expect(blockMapKinds(img, "/sparse/triple-indirect").tind).toBe(true);
        });
      }

      it("mounts read-only to a stable manifest with every inode kind", async () => {
        const img = await kernelImage(name);
        const text = await kernelManifestOfImage(img);
        expect(await kernelManifestOfImage(img)).toBe(text);
        const m = byPath(parseManifest(text));
        const bigDir = [...m.keys()].filter((p) => p.startsWith("/big-dir/"));
        expect(bigDir.length).toBeGreaterThanOrEqual(10_000);
        expect(bigDir.length).toBeLessThan(BIG_DIR_CREATED);
        expect(m.get("/special/sock")?.type).toBe("sock");
        expect(m.get("/special/fifo")?.type).toBe("fifo");
        expect(m.get("/special/null")).toMatchObject({ type: "chr", rdev: "1:3" });
        expect(m.get("/special/loop0")).toMatchObject({ type: "blk", rdev: "7:0" });
        expect(m.get("/special/bigdev")).toMatchObject({ type: "chr", rdev: "300:70000" });
        expect(m.get("/links/a")?.nlink).toBe(3);
        expect(m.get("/links/sym-hard")).toMatchObject({ type: "symlink", nlink: 2, target: "a" });
        expect(m.get(`/symlinks/len-${Math.min(4000, spec.blockSize - 1)}`)?.target?.length).toBe(Math.min(4000, spec.blockSize - 1));
        expect(m.get("/modes/setuid")?.mode).toBe("4755");
        expect(m.get("/modes/sticky-dir")?.mode).toBe("1777");
        expect(m.get("/modes/setgid-dir/child")?.gid).toBe(4242);
        expect(m.get("/modes/setgid-dir/subdir")?.mode).toBe("2755");
        expect(m.get("/owners/u100000")?.uid).toBe(100000);
        expect(m.get("/times/neg")?.mtime).toBe("-2.500000000");
        expect(m.get("/times/min")?.mtime).toBe("-2147483648.000000000");
        expect(m.get("/xattr/empty-value")?.xattrs).toEqual({ "user.empty": "" });
        expect(Object.keys(m.get("/acl/dir")?.xattrs ?? {})).toEqual(["system.posix_acl_access", "system.posix_acl_default"]);
        expect(Object.keys(m.get("/acl/dir/inherited-file")?.xattrs ?? {})).toEqual(["system.posix_acl_access"]);
        expect(m.get("/xattr/symlink")?.xattrs).toHaveProperty(["trusted.on-symlink"]);
        expect(m.get("/lost+found")?.type).toBe("dir");
      });
    });
  }
});

describe("cleanup", () => {
  it("leaves nothing mounted under the run directory", () => {
    expect(mountsUnder(runDir())).toEqual([]);
    const mounts = execFileSync("mount", { encoding: "utf8" });
    expect(mounts.split("\n").filter((l) => l.includes(runDir()))).toEqual([]);
  });
});
