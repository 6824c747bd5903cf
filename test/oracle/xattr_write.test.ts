/**
 * Extended attribute writes against the kernel (root, loop mounts, e2fsprogs, attr, acl,
 * python3). Skipped visibly without them; failing under EXT4TS_REQUIRE_ORACLES=1.
 *
 * 1. Differential: one script of calls (create files, setxattr, removexattr, getxattr, ACLs,
 *    every error path) runs through a kernel loop mount (python3 os.setxattr & co.) on one
 *    image and through ext4ts on an identical image. The results (errno by errno) must be
 *    equal, and so must the final states as the kernel and e2fsprogs see them: getfattr
 *    -d -m - -e hex, getfacl, mode and st_blocks, debugfs `inode_dump -x` (the in-inode
 *    area, byte offsets included) and each xattr block's bytes (checksum aside). Run on
 *    fresh mke2fs images (ext4 4k, ext4 1k, ext4 -I 128) and on images the kernel wrote
 *    first (in-inode and block xattrs, a shared block, ACLs), which both sides then change.
 * 2. Sharing: 1,000 files given the same ~3,000-byte set share one block with h_refcount
 *    1,000 (debugfs "File ACL", the raw header); changing one un-shares only it. The
 *    EXT4_XATTR_REFCOUNT_MAX cap: 1,030 files give the same block refcounts on both sides.
 * After every image: `e2fsck -fn` exits 0.
 */
import { closeSync, copyFileSync, lstatSync, mkdtempSync, openSync, readSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Volume, XATTR_CREATE, XATTR_REPLACE } from "../../src/api/promises.js";
import { FileDevice } from "../../src/device/file.js";
import { FsError } from "../../src/errors.js";
import { ACL_GROUP, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER, ACL_USER, ACL_USER_OBJ, encodeVfsAcl, type AclEntry } from "../../src/format/acl.js";
import { S_IFIFO } from "../../src/format/inode.js";
import { cleanupImages, kernelImage, runDir, withLoopMount } from "./images.js";
import { xattrBlockHeader } from "./inspect.js";
import { oracleAvailability, oracleGate, run, runAsync, runUnchecked, tool } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck", "debugfs", "getfattr", "getfacl", "python3"], { loop: true, root: true });

afterAll(() => {
  cleanupImages();
});

// ---------------------------------------------------------------------------------------------
// Scripts: the same calls for the kernel (python3 in a loop mount) and for ext4ts

type Op =
  | { readonly op: "mkfile" | "mkdir" | "mkfifo"; readonly path: string; readonly mode: number }
  | { readonly op: "symlink"; readonly path: string; readonly target: string }
  | { readonly op: "set"; readonly path: string; readonly name: string; readonly value: string; readonly flags?: number; readonly nofollow?: boolean }
  | { readonly op: "remove" | "get"; readonly path: string; readonly name: string; readonly nofollow?: boolean };

const PYTHON = `
import errno, json, os, sys
root = sys.argv[1]
out = []
for o in json.load(sys.stdin):
    p = os.path.join(root, o["path"].lstrip("/"))
    follow = not o.get("nofollow", False)
    try:
        k = o["op"]
        if k == "mkfile":
            open(p, "w").close(); os.chmod(p, o["mode"]); out.append("ok")
        elif k == "mkdir":
            os.mkdir(p); os.chmod(p, o["mode"]); out.append("ok")
        elif k == "mkfifo":
            os.mkfifo(p); os.chmod(p, o["mode"]); out.append("ok")
        elif k == "symlink":
            os.symlink(o["target"], p); out.append("ok")
        elif k == "set":
            os.setxattr(p, o["name"], bytes.fromhex(o["value"]), o.get("flags", 0), follow_symlinks=follow); out.append("ok")
        elif k == "remove":
            os.removexattr(p, o["name"], follow_symlinks=follow); out.append("ok")
        else:
            out.append("ok:" + os.getxattr(p, o["name"], follow_symlinks=follow).hex())
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno))
        out.append("EOPNOTSUPP" if name == "ENOTSUP" else name)
os.sync()
print(json.dumps(out))
`;

/** Runs the script through a read-write kernel mount of `image`; returns each call's result. */
async function runKernel(image: string, ops: readonly Op[]): Promise<string[]> {
  return withLoopMount(image, { readOnly: false }, async (mnt) => {
    const r = await runAsync(tool("python3"), ["-c", PYTHON, mnt], { input: JSON.stringify(ops) });
    return JSON.parse(r.stdout) as string[];
  });
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** Runs the script through ext4ts on `image`; returns each call's result. */
async function runOurs(image: string, ops: readonly Op[]): Promise<string[]> {
  const vol = await Volume.mount(await FileDevice.open(image), { readOnly: false, umask: 0 });
  const out: string[] = [];
  try {
    for (const o of ops) {
      try {
        switch (o.op) {
          case "mkfile":
            await vol.writeFile(o.path, "", { mode: o.mode });
            await vol.chmod(o.path, o.mode);
            break;
          case "mkdir":
            await vol.mkdir(o.path, { mode: o.mode });
            await vol.chmod(o.path, o.mode);
            break;
          case "mkfifo":
            await vol.mknod(o.path, S_IFIFO | o.mode);
            await vol.chmod(o.path, o.mode);
            break;
          case "symlink":
            await vol.symlink(o.target, o.path);
            break;
          case "set": {
            const v = Buffer.from(o.value, "hex");
            await (o.nofollow === true ? vol.lsetxattr(o.path, o.name, v, o.flags ?? 0) : vol.setxattr(o.path, o.name, v, o.flags ?? 0));
            break;
          }
          case "remove":
            await (o.nofollow === true ? vol.lremovexattr(o.path, o.name) : vol.removexattr(o.path, o.name));
            break;
          case "get":
            out.push(`ok:${hex(await vol.getxattr(o.path, o.name, { follow: o.nofollow !== true }))}`);
            continue;
        }
        out.push("ok");
      } catch (e) {
        if (!(e instanceof FsError)) throw e;
        out.push(e.code);
      }
    }
  } finally {
    await vol.unmount();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// What the kernel and e2fsprogs see

interface PathState {
  getfattr: string;
  getfacl: string;
  mode: number;
  blocks: number;
  inodeXattrs: string;
  /** The xattr block's bytes with h_checksum zeroed (hex), "" without a block. */
  block: string;
}

function readBlock(image: string, blk: number, bs: number): Buffer {
  const buf = Buffer.alloc(bs);
  const fd = openSync(image, "r");
  try {
    readSync(fd, buf, 0, bs, blk * bs);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** Runs debugfs requests in one process; returns the output of each. */
function debugfsMany(image: string, requests: readonly string[]): string[] {
  const cmd = path.join(mkdtempSync(path.join(runDir(), "dbg-")), "cmds");
  writeFileSync(cmd, requests.join("\n") + "\n");
  const out = run(tool("debugfs"), ["-f", cmd, image]).stdout;
  // debugfs echoes each request as "debugfs: REQUEST".
  const parts = out.split(/^debugfs: .*$/m).slice(1);
  expect(parts.length).toBe(requests.length);
  return parts;
}

function fileAclOf(statOut: string): number {
  const m = /File ACL: (\d+)/.exec(statOut);
  if (m === null) throw new Error(`debugfs stat without File ACL:\n${statOut}`);
  return Number(m[1]);
}

async function stateOf(image: string, paths: readonly string[], bs: number): Promise<Map<string, PathState>> {
  const out = new Map<string, PathState>();
  const dbg = debugfsMany(image, paths.flatMap((p) => [`stat ${p}`, `inode_dump -x ${p}`]));
  await withLoopMount(image, { readOnly: true }, (mnt) => {
    for (const [i, p] of paths.entries()) {
      const rel = p.replace(/^\//, "");
      const st = lstatSync(path.join(mnt, rel));
      const getfattr = runUnchecked(tool("getfattr"), ["-h", "-d", "-m", "-", "-e", "hex", rel], { cwd: mnt });
      const getfacl = st.isSymbolicLink() ? { stdout: "", stderr: "" } : runUnchecked(tool("getfacl"), ["-n", rel], { cwd: mnt });
      const acl = fileAclOf(dbg[2 * i]!);
      let block = "";
      if (acl !== 0) {
        const b = readBlock(image, acl, bs);
        b.writeUInt32LE(0, 16); // h_checksum depends on the block number
        block = b.toString("hex");
      }
      out.set(p, {
        getfattr: getfattr.stdout + getfattr.stderr,
        getfacl: getfacl.stdout + getfacl.stderr,
        mode: st.mode,
        blocks: st.blocks,
        inodeXattrs: dbg[2 * i + 1]!.trim(),
        block,
      });
    }
    return Promise.resolve();
  });
  return out;
}

function e2fsck(image: string): void {
  const r = runUnchecked(tool("e2fsck"), ["-fn", image]);
  expect(r.status, `e2fsck -fn ${image} exited ${r.status}:\n${r.stdout}${r.stderr}`).toBe(0);
}

function freshImage(name: string, mkfsArgs: readonly string[], sizeMiB: number): string {
  const img = path.join(mkdtempSync(path.join(runDir(), `xw-${name}-`)), `${name}.img`);
  run(tool("mke2fs"), ["-q", "-F", "-U", "4f3c2b1a-0e9d-4c8b-a7f6-e5d4c3b2a190", "-E", "hash_seed=1a2b3c4d-5e6f-4a0b-9c8d-7e6f5a4b3c2d", ...mkfsArgs, img, `${sizeMiB}M`]);
  return img;
}

/** Copies of `src` for the two sides. */
function twins(src: string, name: string): [string, string] {
  const dir = mkdtempSync(path.join(runDir(), `xw-${name}-`));
  const k = path.join(dir, "kernel.img");
  const o = path.join(dir, "ours.img");
  copyFileSync(src, k);
  copyFileSync(src, o);
  return [k, o];
}

/** Runs `ops` on both sides of a twin pair and requires equal results and equal final states. */
async function differential(src: string, name: string, ops: readonly Op[], paths: readonly string[], bs: number): Promise<{ results: string[]; kernel: string; ours: string }> {
  const [k, o] = twins(src, name);
  const kr = await runKernel(k, ops);
  const or = await runOurs(o, ops);
  const lines = ops.map((op, i) => `${i} ${op.op} ${"name" in op ? `${op.path} ${op.name.length > 40 ? `${op.name.slice(0, 20)}...(${op.name.length})` : op.name}` : op.path}: kernel ${kr[i]!.slice(0, 60)}, ext4ts ${or[i]!.slice(0, 60)}`);
  const diff = lines.filter((_, i) => kr[i] !== or[i]);
  expect(diff, `calls whose results differ:\n${diff.join("\n")}`).toEqual([]);
  e2fsck(k);
  e2fsck(o);
  const ks = await stateOf(k, paths, bs);
  const os = await stateOf(o, paths, bs);
  for (const p of paths) expect(os.get(p), `state of ${p}`).toEqual(ks.get(p));
  return { results: kr, kernel: k, ours: o };
}

// ---------------------------------------------------------------------------------------------
// Values and ACLs

/** Deterministic test bytes (xorshift32): populateXattrs's python \`b()\` makes the same ones. */
function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const v = (n: number, seed: number): string => hex(bytes(n, seed));
const s = (text: string): string => hex(new TextEncoder().encode(text));
const u = (perm: number, id?: number): AclEntry => (id === undefined ? { tag: ACL_USER_OBJ, perm } : { tag: ACL_USER, perm, id });
const g = (perm: number, id?: number): AclEntry => (id === undefined ? { tag: ACL_GROUP_OBJ, perm } : { tag: ACL_GROUP, perm, id });
const mask = (perm: number): AclEntry => ({ tag: ACL_MASK, perm });
const o = (perm: number): AclEntry => ({ tag: ACL_OTHER, perm });
const acl = (...es: AclEntry[]): string => hex(encodeVfsAcl(es));

interface Config {
  readonly name: string;
  readonly mkfs: readonly string[];
  readonly bs: number;
  /** Inode size 128: no in-inode xattrs. */
  readonly small: boolean;
}

const CONFIGS: readonly Config[] = [
  { name: "ext4-4k", mkfs: ["-t", "ext4", "-b", "4096"], bs: 4096, small: false },
  { name: "ext4-1k", mkfs: ["-t", "ext4", "-b", "1024"], bs: 1024, small: false },
  { name: "ext4-128", mkfs: ["-t", "ext4", "-b", "4096", "-I", "128"], bs: 4096, small: true },
];

const A = "system.posix_acl_access";
const D = "system.posix_acl_default";

/** Creation of the files the scripts work on. */
function setupOps(prefix: string): Op[] {
  return [
    { op: "mkdir", path: prefix, mode: 0o755 },
    { op: "mkfile", path: `${prefix}/f`, mode: 0o644 },
    { op: "mkfile", path: `${prefix}/g`, mode: 0o640 },
    { op: "mkfile", path: `${prefix}/m`, mode: 0o600 },
    { op: "mkdir", path: `${prefix}/d`, mode: 0o750 },
    { op: "symlink", path: `${prefix}/l`, target: "f" },
    { op: "mkfifo", path: `${prefix}/p`, mode: 0o644 },
    ...[1, 2, 3, 4].map((i): Op => ({ op: "mkfile", path: `${prefix}/s${i}`, mode: 0o644 })),
  ];
}

const PATHS = (prefix: string): string[] => ["f", "g", "m", "d", "l", "p", "s1", "s2", "s3", "s4"].map((n) => `${prefix}/${n}`);

/** Every behaviour worth comparing, sized for the block size. */
function scriptOps(c: Config, prefix: string): Op[] {
  const P = (n: string): string => `${prefix}/${n}`;
  const big = c.bs === 4096 ? 1500 : 400;
  const ops: Op[] = [
    // Flags
    { op: "set", path: P("f"), name: "user.a", value: s("hello") },
    { op: "set", path: P("f"), name: "user.a", value: s("again"), flags: XATTR_CREATE },
    { op: "set", path: P("f"), name: "user.b", value: s("x"), flags: XATTR_REPLACE },
    { op: "set", path: P("f"), name: "user.a", value: s("replaced"), flags: XATTR_REPLACE },
    { op: "set", path: P("f"), name: "user.a", value: s("both"), flags: XATTR_CREATE | XATTR_REPLACE },
    { op: "set", path: P("f"), name: "user.a", value: s("x"), flags: 4 },
    { op: "remove", path: P("f"), name: "user.zz" },
    { op: "set", path: P("f"), name: "user.a", value: s("replaced") }, // the same value again
    // Names and sizes
    { op: "set", path: P("f"), name: `user.${"n".repeat(250)}`, value: s("255 bytes") },
    { op: "set", path: P("f"), name: `user.${"n".repeat(251)}`, value: s("256 bytes") },
    { op: "set", path: P("f"), name: "", value: s("x") },
    { op: "remove", path: P("f"), name: `trusted.${"t".repeat(250)}` },
    { op: "set", path: P("f"), name: "user.big", value: v(65537, 1) },
    { op: "set", path: P("f"), name: "user.big", value: v(65536, 1) },
    { op: "set", path: P("f"), name: "user.big", value: v(c.bs, 1) },
    { op: "set", path: P("f"), name: "user.", value: s("x") },
    { op: "set", path: P("f"), name: "foo.bar", value: s("x") },
    { op: "set", path: P("f"), name: "system.foo", value: s("x") },
    { op: "set", path: P("f"), name: "system.posix_acl_accessX", value: s("x") },
    { op: "set", path: P("f"), name: "user.empty", value: "" },
    { op: "set", path: P("f"), name: "trusted.t", value: v(20, 2) },
    { op: "set", path: P("f"), name: "security.s", value: v(9, 3) },
    { op: "set", path: P("f"), name: "gnu.translator", value: s("/hurd/x") },
    // File types
    { op: "set", path: P("l"), name: "user.x", value: s("x"), nofollow: true },
    { op: "set", path: P("l"), name: "trusted.on-link", value: v(12, 4), nofollow: true },
    { op: "set", path: P("l"), name: "user.through-link", value: s("to f") },
    { op: "set", path: P("l"), name: A, value: acl(u(7), g(5), o(0)), nofollow: true },
    { op: "remove", path: P("l"), name: "user.x", nofollow: true },
    { op: "set", path: P("p"), name: "user.x", value: s("x") },
    { op: "set", path: P("p"), name: "trusted.on-fifo", value: s("x") },
    { op: "set", path: P("d"), name: "user.on-dir", value: v(50, 5) },
    // In-inode space, the block, and moves between them
    { op: "set", path: P("s1"), name: "user.m", value: v(40, 6) },
    { op: "set", path: P("s1"), name: "user.n", value: v(12, 7) },
    { op: "set", path: P("s1"), name: "user.m", value: v(37, 8) }, // same padded size: in place
    { op: "set", path: P("s1"), name: "user.n", value: v(20, 9) }, // resized: moves below
    { op: "set", path: P("s1"), name: "user.m", value: v(big, 10) }, // to the block
    { op: "set", path: P("s1"), name: "user.m", value: v(10, 11) }, // back to the inode
    { op: "set", path: P("s1"), name: "user.k", value: v(big, 12) },
    { op: "set", path: P("s1"), name: "trusted.k", value: v(big, 13) },
    { op: "remove", path: P("s1"), name: "user.k" },
    { op: "get", path: P("s1"), name: "trusted.k" },
    // Filling the block: the same call fails on both sides
    ...Array.from({ length: 12 }, (_, i): Op => ({ op: "set", path: P("m"), name: `user.fill${i}`, value: v(c.bs === 4096 ? 400 : 100, 20 + i) })),
    { op: "set", path: P("m"), name: "user.fill0", value: v(c.bs === 4096 ? 700 : 200, 40) },
    { op: "remove", path: P("m"), name: "user.fill3" },
    { op: "set", path: P("m"), name: "user.last", value: v(c.bs === 4096 ? 800 : 250, 41) },
    // Sharing: s2 and s3 end with the same set; s4 reads the block first, then joins
    { op: "set", path: P("s2"), name: "user.one", value: v(big, 50) },
    { op: "set", path: P("s2"), name: "user.two", value: v(big / 2, 51) },
    { op: "set", path: P("s3"), name: "user.one", value: v(big, 50) },
    { op: "set", path: P("s3"), name: "user.two", value: v(big / 2, 51) },
    { op: "set", path: P("s3"), name: "user.two", value: v(big / 2, 52) }, // un-share
    { op: "set", path: P("s3"), name: "user.two", value: v(big / 2, 51) }, // share again
    { op: "get", path: P("s2"), name: "user.one" },
    { op: "set", path: P("s4"), name: "user.one", value: v(big, 50) },
    { op: "set", path: P("s4"), name: "user.two", value: v(big / 2, 51) },
    { op: "remove", path: P("s2"), name: "user.one" },
    // ACLs
    { op: "set", path: P("f"), name: D, value: acl(u(7), g(5), o(0)) },
    { op: "remove", path: P("f"), name: D },
    { op: "remove", path: P("f"), name: A },
    { op: "set", path: P("f"), name: A, value: acl(u(7), g(5), o(1)) }, // equivalent: mode 0751
    { op: "set", path: P("g"), name: A, value: acl(u(6), u(7, 1000), g(4), g(2, 100), mask(6), o(0)) },
    { op: "get", path: P("g"), name: A },
    { op: "set", path: P("g"), name: A, value: acl(u(6), u(7, 1000), g(4), o(0)) }, // no mask: EINVAL
    { op: "set", path: P("g"), name: A, value: "01000000" }, // version 1: EOPNOTSUPP
    { op: "set", path: P("g"), name: A, value: "0200000001" }, // bad size: EINVAL
    { op: "set", path: P("g"), name: A, value: acl(u(6), u(5, 1000), g(4), mask(5), o(0)), flags: XATTR_CREATE }, // flags ignored
    { op: "set", path: P("d"), name: D, value: acl(u(7), u(5, 1001), g(5), mask(7), o(0)) },
    { op: "set", path: P("d"), name: A, value: acl(u(7), g(5), g(7, 200), mask(5), o(0)) },
    { op: "set", path: P("m"), name: A, value: acl(u(6), u(4, 2000), g(0), mask(4), o(0)) },
    { op: "set", path: P("s1"), name: A, value: "" }, // empty: no ACL
    { op: "set", path: P("f"), name: A, value: "02000000" }, // bare header: no ACL
    { op: "remove", path: P("f"), name: "user.a" },
    { op: "remove", path: P("f"), name: "user.a" },
  ];
  if (c.small) ops.push({ op: "set", path: P("g"), name: "user.only-block", value: s("no body on 128-byte inodes") });
  return ops;
}

// ---------------------------------------------------------------------------------------------

describe("xattr writes: ext4ts and the kernel make the same calls and end in the same state", () => {
  oracleGate(oracle);

  for (const c of CONFIGS) {
    it.skipIf(!oracle.ok)(`on a fresh ${c.name} image`, async () => {
      const src = freshImage(c.name, c.mkfs, 32);
      const ops = [...setupOps("/t"), ...scriptOps(c, "/t")];
      const { results, ours } = await differential(src, c.name, ops, PATHS("/t"), c.bs);
      // The script does reach the interesting outcomes (and identically on both sides).
      for (const want of ["EEXIST", "ENODATA", "ERANGE", "E2BIG", "ENOSPC", "EINVAL", "EOPNOTSUPP", "EPERM", "EACCES"]) expect(results, want).toContain(want);
      // s2 dropped a value, s3 and s4 share the set s2 had.
      const [s3, s4] = debugfsMany(ours, ["stat /t/s3", "stat /t/s4"]).map(fileAclOf);
      expect(s3).not.toBe(0);
      expect(s4).toBe(s3);
      expect(xattrBlockHeader(ours, s3!).h_refcount).toBe(2);
    }, 300_000);
  }
});

/** Kernel populations for the "kernel wrote it first" twins. */
async function populateXattrs(mnt: string, bs: number): Promise<void> {
  const py = `
import os, sys
root, bs = sys.argv[1], int(sys.argv[2])
def b(n, seed):
    out = bytearray(); x = seed
    for _ in range(n):
        x ^= (x << 13) & 0xffffffff; x ^= x >> 17; x ^= (x << 5) & 0xffffffff
        out.append(x & 0xff)
    return bytes(out)
big = 1500 if bs == 4096 else 400
os.mkdir(f"{root}/k")
for n in ["in-inode", "block", "both", "acl", "shared-1", "shared-2", "shared-3", "many"]:
    open(f"{root}/k/{n}", "w").close()
os.mkdir(f"{root}/k/dir")
os.setxattr(f"{root}/k/in-inode", "user.a", b(30, 1))
os.setxattr(f"{root}/k/in-inode", "user.b", b(3, 2))
os.setxattr(f"{root}/k/block", "user.big", b(big, 3))
os.setxattr(f"{root}/k/both", "user.small", b(8, 4))
os.setxattr(f"{root}/k/both", "user.large", b(big, 5))
os.setxattr(f"{root}/k/both", "trusted.t", b(big // 2, 6))
for i in range(20):
    os.setxattr(f"{root}/k/many", f"user.m{i:02d}", b(i * 3, 7 + i))
for i in (1, 2, 3):
    os.setxattr(f"{root}/k/shared-{i}", "user.shared", b(big, 30))
    os.setxattr(f"{root}/k/shared-{i}", "user.shared2", b(big // 3, 31))
`;
  await runAsync(tool("python3"), ["-c", py, mnt, String(bs)]);
  run(tool("setfacl"), ["-m", "u:1000:rwx,u:2000:r,g:100:rw,m::rwx", path.join(mnt, "k/acl")]);
  run(tool("setfacl"), ["-m", "u:1000:rwx,g:100:rx", path.join(mnt, "k/dir")]);
  run(tool("setfacl"), ["-d", "-m", "u:1000:rx,u:1001:rw,g:100:r,o::-", path.join(mnt, "k/dir")]);
}

const KPATHS = ["in-inode", "block", "both", "acl", "shared-1", "shared-2", "shared-3", "many", "dir"].map((n) => `/k/${n}`);

function changeOps(c: Config): Op[] {
  const big = c.bs === 4096 ? 1500 : 400;
  return [
    { op: "set", path: "/k/in-inode", name: "user.a", value: v(30, 100) },
    { op: "remove", path: "/k/in-inode", name: "user.b" },
    { op: "set", path: "/k/in-inode", name: "user.grow", value: v(big, 101) },
    { op: "set", path: "/k/block", name: "user.big", value: v(big, 102) },
    { op: "set", path: "/k/block", name: "user.more", value: v(20, 103) },
    { op: "remove", path: "/k/both", name: "user.large" },
    { op: "set", path: "/k/both", name: "trusted.t", value: v(4, 104) },
    { op: "set", path: "/k/shared-2", name: "user.shared2", value: v(big / 3, 105) }, // un-share one of three
    { op: "get", path: "/k/shared-1", name: "user.shared" }, // index the kernel's shared block
    { op: "set", path: "/k/shared-2", name: "user.shared2", value: v(big / 3, 31) }, // and join it again
    { op: "mkfile", path: "/k/new", mode: 0o644 },
    { op: "set", path: "/k/new", name: "user.shared", value: v(big, 30) },
    { op: "set", path: "/k/new", name: "user.shared2", value: v(big / 3, 31) },
    { op: "remove", path: "/k/shared-3", name: "user.shared" },
    { op: "remove", path: "/k/shared-3", name: "user.shared2" },
    ...Array.from({ length: 10 }, (_, i): Op => ({ op: "remove", path: "/k/many", name: `user.m${String(i * 2).padStart(2, "0")}` })),
    { op: "set", path: "/k/many", name: "user.m05", value: v(c.bs === 4096 ? 900 : 300, 106) },
    { op: "set", path: "/k/acl", name: A, value: acl(u(6), u(7, 1000), g(4), mask(4), o(4)) },
    { op: "remove", path: "/k/dir", name: D },
    { op: "set", path: "/k/dir", name: A, value: acl(u(7), g(5), o(5)) },
  ];
}

describe("xattrs the kernel wrote, changed by ext4ts as the kernel changes them", () => {
  for (const c of CONFIGS) {
    it.skipIf(!oracle.ok)(`on ${c.name} (in-inode, block, a shared block, ACLs)`, async () => {
      const src = await kernelImage(`xw-kernel-${c.name}`, { mkfsArgs: c.mkfs, sizeMiB: 32, populate: (mnt) => populateXattrs(mnt, c.bs) });
      const shared = debugfsMany(src, ["stat /k/shared-1", "stat /k/shared-2", "stat /k/shared-3"]).map(fileAclOf);
      expect(new Set(shared).size, "the kernel shared one block among shared-1..3").toBe(1);
      expect(xattrBlockHeader(src, shared[0]!).h_refcount).toBe(3);
      const { ours } = await differential(src, `k-${c.name}`, changeOps(c), [...KPATHS, "/k/new"], c.bs);
      const after = debugfsMany(ours, ["stat /k/shared-1", "stat /k/shared-2", "stat /k/new", "stat /k/shared-3"]).map(fileAclOf);
      expect(after.slice(0, 3)).toEqual([shared[0], shared[0], shared[0]]);
      expect(after[3]).toBe(0);
      expect(xattrBlockHeader(ours, shared[0]!).h_refcount).toBe(3);
    }, 300_000);
  }
});

// ---------------------------------------------------------------------------------------------
// Sharing at scale

describe("sharing 1,000 files' identical xattr sets", () => {
  const SET: [string, Uint8Array][] = [
    ["user.ceph._", bytes(1200, 1)],
    ["user.ceph.snapset", bytes(900, 2)],
    ["user.ceph.extra", bytes(800, 3)],
  ];

  it.skipIf(!oracle.ok)("gives them one block with h_refcount 1000; changing one un-shares only it", async () => {
    const img = freshImage("share1000", ["-t", "ext4", "-b", "4096", "-N", "4096"], 64);
    const vol = await Volume.mount(await FileDevice.open(img), { readOnly: false });
    await vol.mkdir("/share");
    for (let i = 0; i < 1000; i++) {
      await vol.writeFile(`/share/f${i}`, `object ${i}\n`);
      for (const [n, val] of SET) await vol.setxattr(`/share/f${i}`, n, val);
    }
    await vol.unmount();
    e2fsck(img);
    const stats = () => debugfsMany(img, Array.from({ length: 1000 }, (_, i) => `stat /share/f${i}`)).map(fileAclOf);
    const acls = stats();
    expect(new Set(acls).size).toBe(1);
    expect(xattrBlockHeader(img, acls[0]!).h_refcount).toBe(1000);
    await withLoopMount(img, { readOnly: true }, (mnt) => {
      for (const i of [0, 499, 999]) {
        const out = run(tool("getfattr"), ["-d", "-m", "-", "-e", "hex", `share/f${i}`], { cwd: mnt }).stdout;
        for (const [n, val] of SET) expect(out).toContain(`${n}=0x${hex(val)}`);
      }
      return Promise.resolve();
    });
    // Change one file: it alone moves to a block of its own.
    const vol2 = await Volume.mount(await FileDevice.open(img), { readOnly: false });
    await vol2.setxattr("/share/f500", "user.ceph.snapset", bytes(900, 99));
    await vol2.unmount();
    e2fsck(img);
    const after = stats();
    expect(after.filter((a) => a === acls[0]).length).toBe(999);
    expect(after[500]).not.toBe(acls[0]);
    expect(xattrBlockHeader(img, acls[0]!).h_refcount).toBe(999);
    expect(xattrBlockHeader(img, after[500]!).h_refcount).toBe(1);
  }, 600_000);

  it.skipIf(!oracle.ok)("stops at the kernel's cap: 1,030 files give the same block refcounts as the kernel (1024 + 6)", async () => {
    const n = 1030;
    const ops: Op[] = [{ op: "mkdir", path: "/cap", mode: 0o755 }];
    for (let i = 0; i < n; i++) {
      ops.push({ op: "mkfile", path: `/cap/f${i}`, mode: 0o644 });
      for (const [name, val] of SET) ops.push({ op: "set", path: `/cap/f${i}`, name, value: hex(val) });
    }
    const [k, o] = twins(freshImage("cap", ["-t", "ext4", "-b", "4096", "-N", "4096"], 64), "cap");
    expect(await runKernel(k, ops)).toEqual(ops.map(() => "ok"));
    expect(await runOurs(o, ops)).toEqual(ops.map(() => "ok"));
    const refcounts = (img: string): number[] => {
      const acls = debugfsMany(img, Array.from({ length: n }, (_, i) => `stat /cap/f${i}`)).map(fileAclOf);
      const per = new Map<number, number>();
      for (const a of acls) per.set(a, (per.get(a) ?? 0) + 1);
      for (const [blk, count] of per) expect(xattrBlockHeader(img, blk).h_refcount, `block ${blk}`).toBe(count);
      return [...per.values()].sort((x, y) => y - x);
    };
    e2fsck(k);
    e2fsck(o);
    const kernel = refcounts(k);
    expect(kernel).toEqual([1024, 6]);
    expect(refcounts(o)).toEqual(kernel);
  }, 600_000);
});
