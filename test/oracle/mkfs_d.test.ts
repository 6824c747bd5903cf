/**
 * `ext4ts mkfs -d DIR IMAGE [SIZE]` against `mke2fs -d` and the kernel, on one host tree
 * with every file type, hard links, sparse files, xattrs and ACLs (incl. a default ACL and
 * values that need an external block), odd and UTF-8 names, nanosecond and out-of-range
 * times, a directory of 3,000 entries, and a root directory with its own mode, owner,
 * times and xattr:
 *
 *   - e2fsck -fn exits 0;
 *   - the kernel-mount manifest of our image equals the manifest of the source tree, with
 *     nanosecond mtimes (directory sizes, which depend on how entries are packed, and
 *     lost+found aside; the root's nlink counts lost+found in the image);
 *   - it equals the kernel-mount manifest of `mke2fs -d` of the same tree, with what
 *     mke2fs 1.47.0 does differently taken out: it drops nanoseconds (mtime compared to
 *     the second), leaves the root directory as mkfs made it, and keeps big directories
 *     linear (directory sizes);
 *   - `ext4ts manifest` of our image equals the kernel's, byte for byte;
 *   - every regular file takes the blocks mke2fs -d gives it (holes stay holes) and the big
 *     directory is an htree;
 *   - with SOURCE_DATE_EPOCH, -U and -E hash_seed two runs give identical bytes (a third
 *     run at another time does not, so the comparison can fail);
 *   - without SIZE the image is sized to fit (e2fsck clean, the same contents, 10%+ free);
 *   - `ext4ts cp -a` copies xattrs and ACLs into an image (host -> image -> kernel equal).
 */
import { chmodSync, lchownSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openImage } from "../../src/node.js";
import { mkfsFromDir } from "../../tools/cli/mkfs_dir.js";
import { writeManifest } from "../../tools/cli/manifest.js";
import { mkfs } from "../../tools/mkfs/mkfs.js";
import { runCli } from "../cli.js";
import { cleanupImages, e2fsckClean, kernelManifestOfImage, runDir, withLoopMount } from "./images.js";
import { kernelManifest } from "./kernel_manifest.js";
import { oracleAvailability, oracleGate, run, runAsync, tool } from "./oracle_env.js";
import { makeTree, touchGroups } from "./trees.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck", "getfattr", "setfattr", "setfacl", "mkfifo", "mknod", "touch", "cmp"], { loop: true, root: true });

const UUID = "0b7e9a52-6c1d-4f2e-9a3b-5d4c3b2a1f00";
const SEED = "7d2c4e6f-8a9b-4c1d-2e3f-4a5b6c7d8e9f";
const EPOCH = 1_600_000_000;
const BIG_DIR_ENTRIES = 3000;

type Line = Record<string, unknown> & { path: string };

const parse = (manifest: string): Line[] => manifest.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Line);

/** Compare two listings line by line; on mismatch show the first differing lines. */
function expectSameLines(ours: readonly string[], theirs: readonly string[], what: string): void {
  if (ours.length === theirs.length && ours.every((l, i) => l === theirs[i])) return;
  const diffs: string[] = [];
  for (let i = 0; i < Math.max(ours.length, theirs.length) && diffs.length < 6; i++) {
    if (ours[i] !== theirs[i]) diffs.push(`line ${i + 1}\n  ext4ts: ${ours[i] ?? "<none>"}\n  ${what}: ${theirs[i] ?? "<none>"}`);
  }
  expect.fail(`listing differs from ${what} (${ours.length} vs ${theirs.length} lines):\n${diffs.join("\n")}`);
}

/** Lines with `drop` applied to each parsed entry (return null to leave the line out). */
function normalize(manifest: string, drop: (e: Line) => Line | null): string[] {
  const out: string[] = [];
  for (const e of parse(manifest)) {
    const n = drop({ ...e });
    if (n !== null) out.push(JSON.stringify(n));
  }
  return out;
}

const withoutDirSize = (e: Line): Line => {
  if (e.type === "dir") delete e.size;
  return e;
};
const isLostFound = (e: Line): boolean => e.path === "/lost+found" || e.path.startsWith("/lost+found/");

let tree = "";
let work = "";

/** The source tree: trees.ts's generator plus a 3,000-entry directory and a root with its own metadata. */
async function buildTree(dir: string): Promise<void> {
  await makeTree(dir, { seed: 4242, files: 300, maxSize: 1 << 20, blockSize: 4096, withXattrs: true, withSymlinks: true, withHardlinks: true, withSpecial: true, withSparse: true, nsTimes: true });
  const big = path.join(dir, "big-directory");
  mkdirSync(big);
  for (let i = 0; i < BIG_DIR_ENTRIES; i++) writeFileSync(path.join(big, `entry-${String(i).padStart(5, "0")}-${"x".repeat(i % 40)}`), i % 7 === 0 ? `${i}\n` : "");
  run(tool("setfattr"), ["-n", "user.root-attr", "-v", "0x0102030405", dir]);
  chmodSync(dir, 0o2751);
  lchownSync(dir, 1234, 5678);
  touchGroups(new Map([["1500000000.123456789", [big]], ["1400000000.987654321", [dir]]]));
}

describe("ext4ts mkfs -d", () => {
  oracleGate(oracle);
  beforeAll(async () => {
    if (!oracle.ok) return;
    work = path.join(runDir(), "mkfs-d");
    mkdirSync(work, { recursive: true });
    tree = path.join(work, "tree");
    await buildTree(tree);
  }, 300_000);
  afterAll(() => {
    cleanupImages();
  });

  const ours = (): string => path.join(work, "ours.img");
  const theirs = (): string => path.join(work, "mke2fs.img");
  let built: Promise<void> | undefined;
  /** Both images, built once: ours in-process (the CLI runs in the tests below), mke2fs -d with the same options. */
  const buildImages = (): Promise<void> => {
    built ??= (async () => {
      rmSync(ours(), { force: true });
      rmSync(theirs(), { force: true });
      await mkfsFromDir(ours(), tree, { size: "128M", blockSize: "4096", uuid: UUID, extended: [`hash_seed=${SEED}`], now: EPOCH, quiet: true });
      await runAsync(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-b", "4096", "-U", UUID, "-E", `hash_seed=${SEED}`, "-d", tree, theirs(), "128M"], { env: { ...process.env, E2FSPROGS_FAKE_TIME: String(EPOCH) } });
    })();
    return built;
  };

  it.skipIf(!oracle.ok)("makes an image e2fsck -fn passes", async () => {
    await buildImages();
    const out = e2fsckClean(ours());
    expect(out).toMatch(/files/);
    e2fsckClean(theirs());
  }, 300_000);

  it.skipIf(!oracle.ok)("holds the source tree: the kernel-mount manifest equals the tree's, nanoseconds and xattrs included", async () => {
    await buildImages();
    const source = await kernelManifest(tree);
    const image = await kernelManifestOfImage(ours());
    expect(parse(source).length).toBeGreaterThan(BIG_DIR_ENTRIES + 300);
    expect(source).toMatch(/"xattrs":\{[^}]*"system\.posix_acl_default"/); // the tree really has what is being tested
    expect(source).toMatch(/"type":"sock"/);
    expect(source).toMatch(/"mtime":"-?\d+\.\d*[1-9]\d*"/);
    // The root keeps DIR's metadata; its nlink also counts lost+found, which DIR does not have.
    const root = (e: Line): Line => (e.path === "/" ? { ...e, nlink: "root" } : e);
    expectSameLines(
      normalize(image, (e) => (isLostFound(e) ? null : root(withoutDirSize(e)))),
      normalize(source, (e) => root(withoutDirSize(e))),
      "the source tree",
    );
  }, 300_000);

  it.skipIf(!oracle.ok)("equals mke2fs -d of the same tree where mke2fs 1.47.0 copies the same things", async () => {
    await buildImages();
    const [a, b] = [await kernelManifestOfImage(ours()), await kernelManifestOfImage(theirs())];
    const comparable = (e: Line): Line | null => {
      if (e.path === "/") return null; // mke2fs 1.47.0 leaves the root as mkfs made it (it copies only its xattrs)
      const n = withoutDirSize(e);
      // mke2fs 1.47.0 drops nanoseconds and the epoch bits that carry times past 2038 (32-bit wrap).
      const sec = BigInt(String(n.mtime).replace(/\.\d+$/, ""));
      n.mtime = String(((sec + 2n ** 31n) % 2n ** 32n + 2n ** 32n) % 2n ** 32n - 2n ** 31n);
      return n;
    };
    expectSameLines(normalize(a, comparable), normalize(b, comparable), "mke2fs -d");
    // The root's xattrs: mke2fs copies those.
    expect(parse(a).find((e) => e.path === "/")?.xattrs).toEqual(parse(b).find((e) => e.path === "/")?.xattrs);
  }, 300_000);

  it.skipIf(!oracle.ok)("reads back with ext4ts manifest exactly as the kernel lists it", async () => {
    await buildImages();
    const vol = await openImage(ours());
    let text = "";
    try {
      await writeManifest(vol, (chunk) => {
        text += chunk;
      });
    } finally {
      await vol.unmount();
    }
    expectSameLines(text.split("\n"), (await kernelManifestOfImage(ours())).split("\n"), "the kernel");
  }, 300_000);

  it.skipIf(!oracle.ok)("keeps holes as mke2fs -d does and builds the big directory as an htree", async () => {
    await buildImages();
    const blocks = (image: string): Promise<Map<string, number>> => withLoopMount(image, { readOnly: true }, (mnt) => {
      const m = new Map<string, number>();
      for (const e of parse(readFileSync(path.join(work, "list.txt"), "utf8"))) {
        if (e.type === "file") m.set(e.path, Number(statSync(path.join(mnt, e.path), { bigint: true }).blocks));
      }
      return Promise.resolve(m);
    });
    writeFileSync(path.join(work, "list.txt"), await kernelManifest(tree));
    const [a, b] = [await blocks(ours()), await blocks(theirs())];
    const differ = [...a].filter(([p, n]) => b.get(p) !== n).map(([p, n]) => `${p}: ${n} sectors, mke2fs ${String(b.get(p))}`);
    expect(differ).toEqual([]);
    // The sparse files really are sparse: fewer blocks than their size.
    const sizes = new Map(parse(readFileSync(path.join(work, "list.txt"), "utf8")).map((e) => [e.path, Number(e.size)]));
    const sparse = [...a.keys()].filter((p) => /sparse-/.test(p));
    expect(sparse.length).toBe(5);
    for (const p of sparse) expect(a.get(p)! * 512, p).toBeLessThan(sizes.get(p)!);
    const vol = await openImage(ours());
    try {
      const st = await vol.lstat("/big-directory");
      expect(st.flags & 0x1000, "EXT4_INDEX_FL on /big-directory").toBe(0x1000);
      expect(st.size).toBeGreaterThan(4096 * 16);
    } finally {
      await vol.unmount();
    }
  }, 300_000);

  it.skipIf(!oracle.ok)("gives identical bytes for the same tree, options, UUID, hash seed and SOURCE_DATE_EPOCH", async () => {
    const args = (img: string): string[] => ["mkfs", "-q", "-F", "-b", "4096", "-U", UUID, "-E", `hash_seed=${SEED}`, "-d", tree, img, "64M"];
    const img = (n: number): string => path.join(work, `repro-${n}.img`);
    const env = (t: number): NodeJS.ProcessEnv => ({ ...process.env, SOURCE_DATE_EPOCH: String(t) });
    for (const [n, t] of [[1, EPOCH], [2, EPOCH], [3, EPOCH + 1]] as const) {
      rmSync(img(n), { force: true });
      const r = await runCliEnv(args(img(n)), env(t));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe("");
    }
    e2fsckClean(img(1));
    expect(run(tool("cmp"), [img(1), img(2)], { okCodes: [0, 1] }).status, "two runs at the same time differ").toBe(0);
    expect(run(tool("cmp"), [img(1), img(3)], { okCodes: [0, 1] }).status, "a run at another time should differ").toBe(1);
  }, 300_000);

  it.skipIf(!oracle.ok)("sizes the image to fit the tree when SIZE is omitted", async () => {
    const img = path.join(work, "auto.img");
    rmSync(img, { force: true });
    const r = await runCliEnv(["mkfs", "-U", UUID, "-d", tree, img], { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Copying files into the device: done");
    e2fsckClean(img);
    const bytes = statSync(img).size;
    const df = run(tool("dumpe2fs"), ["-h", img]).stdout;
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(df)?.[1]);
    const free = field("Free blocks") - field("Reserved block count");
    const used = field("Block count") - field("Free blocks");
    expect(free / used, "at least 10% headroom besides the reserved blocks").toBeGreaterThan(0.1);
    // The tree's 4095-byte symlink targets do not fit the 1 KiB blocks of mke2fs's "small" size class.
    expect(field("Block size")).toBe(4096);
    const inodes = field("Inode count");
    expect(field("Free inodes") / (inodes - field("Free inodes")), "at least 10% more inodes").toBeGreaterThan(0.1);
    // Not absurdly large: the tree is a few MB plus 3,000 empty files.
    expect(bytes).toBeLessThan(256 * 2 ** 20);
    await buildImages();
    const contents = (m: string): string[] => normalize(m, (e) => withoutDirSize(e));
    expectSameLines(contents(await kernelManifestOfImage(img)), contents(await kernelManifestOfImage(ours())), "the 128M image");
  }, 300_000);

  it.skipIf(!oracle.ok)("ext4ts cp -a copies xattrs and ACLs into an image: getfattr on the kernel mount shows the host's", async () => {
    const img = path.join(work, "cp.img");
    rmSync(img, { force: true });
    await mkfs(img, { size: "128M", blockSize: "4096", quiet: true });
    const r = await runCli(["cp", "-a", `${tree}/.`, `${img}:/`], { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    e2fsckClean(img);
    const dump = (root: string): string[] => {
      const out = run(tool("getfattr"), ["-R", "-P", "-h", "-d", "-m", "-", "-e", "base64", "."], { cwd: root }).stdout;
      // One "# file:" block per path, in a walk order that may differ: compare as sorted blocks.
      return out.split("\n\n").map((b) => b.trim()).filter((b) => b !== "" && !b.startsWith("# file: ./lost+found")).sort();
    };
    const host = dump(tree);
    expect(host.join("\n")).toContain("system.posix_acl_access");
    expect(host.join("\n")).toContain("system.posix_acl_default");
    const image = await withLoopMount(img, { readOnly: true }, (mnt) => Promise.resolve(dump(mnt)));
    expect(image).toEqual(host);
    // And everything else, as mkfs -d copies it (the same code).
    const root = (e: Line): Line => (e.path === "/" ? { ...e, nlink: "root" } : e);
    expectSameLines(
      normalize(await kernelManifestOfImage(img), (e) => (isLostFound(e) ? null : root(withoutDirSize(e)))),
      normalize(await kernelManifest(tree), (e) => root(withoutDirSize(e))),
      "the source tree",
    );
  }, 300_000);

  it.skipIf(!oracle.ok)("ext4ts cp -a onto an existing file replaces its contents, mode, owner and times; cp -r keeps none of them", async () => {
    const img = path.join(work, "cp2.img");
    rmSync(img, { force: true });
    await mkfs(img, { size: "16M", blockSize: "4096", quiet: true });
    const src = path.join(work, "cp2-src");
    mkdirSync(src, { recursive: true });
    const a = path.join(src, "a");
    writeFileSync(a, "first version, longer than the second\n");
    expect((await runCli(["cp", "-a", a, `${img}:/a`])).code).toBe(0);
    writeFileSync(a, "second\n");
    lchownSync(a, 4321, 8765);
    chmodSync(a, 0o4750); // after chown, which clears setuid
    touchGroups(new Map([["1234567890.000000042", [a]]]));
    const r = await runCli(["cp", "-a", a, `${img}:/a`]);
    expect(r.code, r.stderr).toBe(0);
    const r2 = await runCli(["cp", "-r", a, `${img}:/b`]);
    expect(r2.code, r2.stderr).toBe(0);
    e2fsckClean(img);
    const lines = parse(await kernelManifestOfImage(img));
    const sha = (await kernelManifest(src)).match(/"sha256":"([0-9a-f]+)"/)![1];
    expect(lines.find((e) => e.path === "/a")).toMatchObject({ mode: "4750", uid: 4321, gid: 8765, size: 7, mtime: "1234567890.000000042", sha256: sha });
    // cp -r: the data, mode less the umask (and no setuid: cp -r does not keep it for others), root's owner, a new mtime.
    const b = lines.find((e) => e.path === "/b")!;
    expect(b).toMatchObject({ uid: 0, gid: 0, size: 7, sha256: sha });
    expect(b.mtime).not.toBe("1234567890.000000042");
  }, 300_000);
});

describe("ext4ts mkfs -d errors", () => {
  it("lists -d in mkfs --help", async () => {
    const r = await runCli(["mkfs", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/-d, --root-directory <dir>/);
    expect(r.stdout).toMatch(/sized to fit DIR/);
  });

  it("fails with a clear message for a missing DIR and creates no image", async () => {
    const dir = path.join(runDir(), "mkfs-d-errors");
    mkdirSync(dir, { recursive: true });
    const img = path.join(dir, "x.img");
    const r = await runCli(["mkfs", "-q", "-d", path.join(dir, "nope"), img]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`ext4ts: mkfs: ${path.join(dir, "nope")}: No such file or directory\n`);
    expect(() => statSync(img)).toThrow();
  });

  it("fails with a clear message when DIR is not a directory", async () => {
    const dir = path.join(runDir(), "mkfs-d-errors");
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, "file");
    writeFileSync(file, "x");
    const r = await runCli(["mkfs", "-q", "-d", file, path.join(dir, "y.img"), "8M"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`ext4ts: mkfs: ${file}: Not a directory\n`);
  });

  it("is a usage error without a directory after -d", async () => {
    const r = await runCli(["mkfs", "x.img", "-d"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/argument missing/);
  });
});

/** runCli with an environment (SOURCE_DATE_EPOCH). */
async function runCliEnv(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { BIN } = await import("../cli.js");
  const r = await runAsync(process.execPath, [BIN, ...args], { env, okCodes: [0, 1, 2, 70] });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
