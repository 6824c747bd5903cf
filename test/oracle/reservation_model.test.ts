/**
 * Property test of reservation, block and quota arithmetic (issue 5, first acceptance point):
 * random sequences of writes (any offset and size, sparse too), truncates (shrink and grow),
 * hole punches (fallocate PUNCH_HOLE|KEEP_SIZE, over delayed and written blocks),
 * xattr sets and removes (values big enough to need the external block, some identical so
 * blocks are shared), fsync / syncRange / sync, chown and setProjectId (quota images), and
 * unlink of files still open (written after the unlink, closed at the end), run partly
 * concurrently: a step is one operation or two or three started together (Promise.all; ops
 * that would race on one file's contents run in order instead, writeback ops may overlap
 * anything — the seed's shape: syncRange of a file beside a setxattr or a write of it).
 *
 * After the sequence and a full sync:
 * - every InodeCore.reservedDataBlocks is 0 and fs.dirtyClusters is 0;
 * - every inode's i_blocks equals the blocks it references, counted by walking its extent
 *   tree and adding its xattr block (quota_audit.ts, independent of the engine's counters);
 * - quota (quota images): each id's usage equals the sum over its inodes, nothing reserved;
 * - file contents and xattrs equal a simple in-memory model;
 * - after unmount, `e2fsck -fn` exits 0 (and the quota files equal the audit).
 * On ext4 with 4 KiB blocks, ext4 with 1 KiB blocks and `-O quota,project` (1 KiB,
 * usr/grp/prj quota). RESERVATION_MODEL_RUNS sets the runs per configuration (default 30).
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { Volume, type FileHandle } from "../../src/api/promises.js";
import { FsError } from "../../src/errors.js";
import { saveSparseImage } from "./base_image.js";
import { runDir } from "./images.js";
import { oracleAvailability, oracleGate, runAsync, runUnchecked, tool } from "./oracle_env.js";
import { auditVolume, compareQuota, deviceOf, reservationProblems } from "./quota_audit.js";

const tools = oracleAvailability(["mke2fs", "e2fsck"]);
const RUNS = Number(process.env.RESERVATION_MODEL_RUNS ?? 30);
const FILES = ["/a", "/b", "/d/c"] as const;
const XNAMES = ["user.x", "user.y", "trusted.z"] as const;

interface Config {
  name: string;
  mkfs: string[];
  size: string;
  quota: boolean;
}

const CONFIGS: Config[] = [
  { name: "ext4-4k", mkfs: ["-b", "4096", "-I", "256"], size: "16M", quota: false },
  { name: "ext4-1k", mkfs: ["-b", "1024", "-I", "256"], size: "16M", quota: false },
  { name: "quota-project-1k", mkfs: ["-b", "1024", "-I", "256", "-O", "quota,project", "-E", "quotatype=usrquota:grpquota:prjquota"], size: "16M", quota: true },
];

type Op =
  | { kind: "write"; f: number; blk: number; byte: number; len: number; seed: number }
  /** Many one-block writes a block apart: many extents, so writeback needs extent-tree blocks (nofail, charged to the owner). */
  | { kind: "scatter"; f: number; blk: number; n: number; seed: number }
  | { kind: "truncate"; f: number; blk: number; byte: number }
  | { kind: "punch"; f: number; blk: number; byte: number; len: number }
  | { kind: "setxattr"; f: number; name: number; value: number }
  | { kind: "removexattr"; f: number; name: number }
  | { kind: "fsync"; f: number }
  | { kind: "syncRange"; f: number; blk: number; len: number }
  | { kind: "sync" }
  | { kind: "unlinkOpen"; f: number; seed: number }
  | { kind: "chown"; f: number; uid: number; gid: number }
  | { kind: "project"; f: number; id: number };

/** Values: small ones live in the inode, the rest need the block; equal indexes give equal values (shared blocks). */
const VALUE_SIZES = [12, 60, 300, 700, 900, 1500, 2500];

function valueOf(v: number, bs: number): Uint8Array {
  const size = VALUE_SIZES[v % VALUE_SIZES.length]!;
  return pattern(Math.min(size, bs - 200), 1000 + v);
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const fileArb = fc.nat(FILES.length - 1);
function opArb(quota: boolean): fc.Arbitrary<Op> {
  const ops: fc.Arbitrary<Op>[] = [
    fc.record({ kind: fc.constant("write" as const), f: fileArb, blk: fc.nat(40), byte: fc.nat(4095), len: fc.integer({ min: 1, max: 6 * 4096 }), seed: fc.nat() }),
    fc.record({ kind: fc.constant("write" as const), f: fileArb, blk: fc.nat(8), byte: fc.nat(4095), len: fc.integer({ min: 1, max: 3000 }), seed: fc.nat() }),
    fc.record({ kind: fc.constant("scatter" as const), f: fileArb, blk: fc.nat(60), n: fc.integer({ min: 4, max: 14 }), seed: fc.nat() }),
    fc.record({ kind: fc.constant("truncate" as const), f: fileArb, blk: fc.nat(90), byte: fc.nat(4095) }),
    fc.record({ kind: fc.constant("punch" as const), f: fileArb, blk: fc.nat(50), byte: fc.nat(4095), len: fc.integer({ min: 1, max: 20 * 4096 }) }),
    fc.record({ kind: fc.constant("setxattr" as const), f: fileArb, name: fc.nat(XNAMES.length - 1), value: fc.nat(VALUE_SIZES.length * 2 - 1) }),
    fc.record({ kind: fc.constant("removexattr" as const), f: fileArb, name: fc.nat(XNAMES.length - 1) }),
    fc.record({ kind: fc.constant("fsync" as const), f: fileArb }),
    fc.record({ kind: fc.constant("syncRange" as const), f: fileArb, blk: fc.nat(40), len: fc.nat(20) }),
    fc.constant({ kind: "sync" as const }),
    fc.record({ kind: fc.constant("unlinkOpen" as const), f: fileArb, seed: fc.nat() }),
  ];
  if (quota) {
    ops.push(
      fc.record({ kind: fc.constant("chown" as const), f: fileArb, uid: fc.constantFrom(0, 1000, 1001), gid: fc.constantFrom(0, 100, 200) }),
      fc.record({ kind: fc.constant("project" as const), f: fileArb, id: fc.constantFrom(0, 3, 4) }),
    );
  }
  return fc.oneof(...ops);
}

function stepsArb(quota: boolean): fc.Arbitrary<Op[][]> {
  const op = opArb(quota);
  return fc.array(fc.oneof({ weight: 3, arbitrary: op.map((o) => [o]) }, { weight: 2, arbitrary: fc.array(op, { minLength: 2, maxLength: 3 }) }), { minLength: 5, maxLength: 25 });
}

/** What an op changes on its file: contents/existence ("data"), xattrs, ids, or nothing (writeback). */
function aspect(op: Op): string | null {
  switch (op.kind) {
    case "write":
    case "scatter":
    case "truncate":
    case "punch":
      return `data ${op.f}`;
    case "unlinkOpen":
      return `all ${op.f}`;
    case "setxattr":
    case "removexattr":
      return `xattr ${op.f}`;
    case "chown":
    case "project":
      return `ids ${op.f}`;
    case "fsync":
    case "syncRange":
    case "sync":
      return null;
  }
}

/**
 * Can these ops run at once and still have one outcome? At most one change per aspect of a
 * file (contents, xattrs, ids); an unlinkOpen only with ops on other files.
 */
function commuting(ops: readonly Op[]): boolean {
  const perFile = new Map<number, string[]>();
  for (const o of ops) {
    if (!("f" in o)) continue;
    const list = perFile.get(o.f) ?? [];
    list.push(aspect(o) ?? "writeback");
    perFile.set(o.f, list);
  }
  for (const list of perFile.values()) {
    if (list.some((a) => a.startsWith("all")) && list.length > 1) return false;
    const changes = list.filter((a) => a !== "writeback");
    if (new Set(changes).size !== changes.length) return false;
  }
  return true;
}

interface ModelFile {
  data: Uint8Array;
  xattrs: Map<string, Uint8Array>;
}

const stats = { runs: 0, steps: 0, concurrentSteps: 0, serializedSteps: 0, ops: new Map<string, number>(), errors: new Map<string, number>(), fsck: 0 };
function count(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

async function errCode(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
    return null;
  } catch (e) {
    if (e instanceof FsError) return e.code;
    throw e;
  }
}

class Runner {
  readonly model = new Map<number, ModelFile>();
  readonly open: FileHandle[] = [];
  constructor(
    readonly vol: Volume,
    readonly bs: number,
  ) {}

  file(f: number): ModelFile {
    let m = this.model.get(f);
    if (m === undefined) {
      m = { data: new Uint8Array(0), xattrs: new Map() };
      this.model.set(f, m);
    }
    return m;
  }

  /** The file must exist for the op: create it (empty) if the model says it is gone. */
  async ensure(f: number): Promise<void> {
    if (this.model.has(f)) return;
    await this.vol.writeFile(FILES[f]!, "");
    this.file(f);
  }

  async run(op: Op): Promise<void> {
    count(stats.ops, op.kind);
    const vol = this.vol;
    const bs = this.bs;
    if ("f" in op && op.kind !== "fsync" && op.kind !== "syncRange") await this.ensure(op.f);
    switch (op.kind) {
      case "write": {
        const pos = op.blk * bs + (op.byte % bs);
        const data = pattern(Math.min(op.len, 6 * bs), op.seed);
        const fh = await vol.open(FILES[op.f]!, "r+");
        try {
          const r = await fh.write(data, 0, data.length, pos);
          expect(r.bytesWritten).toBe(data.length);
        } finally {
          await fh.close();
        }
        const m = this.file(op.f);
        if (pos + data.length > m.data.length) {
          const grown = new Uint8Array(pos + data.length);
          grown.set(m.data);
          m.data = grown;
        }
        m.data.set(data, pos);
        return;
      }
      case "scatter": {
        const fh = await vol.open(FILES[op.f]!, "r+");
        try {
          for (let i = 0; i < op.n; i++) {
            const pos = (op.blk + 2 * i) * bs;
            const data = pattern(bs, op.seed + i);
            await fh.write(data, 0, bs, pos);
            const m = this.file(op.f);
            if (pos + bs > m.data.length) {
              const grown = new Uint8Array(pos + bs);
              grown.set(m.data);
              m.data = grown;
            }
            m.data.set(data, pos);
          }
        } finally {
          await fh.close();
        }
        return;
      }
      case "truncate": {
        const size = op.blk * bs + (op.byte % bs);
        await vol.truncate(FILES[op.f]!, size);
        const m = this.file(op.f);
        const next = new Uint8Array(size);
        next.set(m.data.subarray(0, Math.min(size, m.data.length)));
        m.data = next;
        return;
      }
      case "punch": {
        // fallocate(PUNCH_HOLE | KEEP_SIZE): zeros over the range (within the size), size unchanged.
        const pos = op.blk * bs + (op.byte % bs);
        const fh = await vol.open(FILES[op.f]!, "r+");
        try {
          await fh.punchHole(pos, op.len);
        } finally {
          await fh.close();
        }
        const m = this.file(op.f);
        if (pos < m.data.length) m.data.fill(0, pos, Math.min(m.data.length, pos + op.len));
        return;
      }
      case "setxattr": {
        const name = XNAMES[op.name]!;
        const value = valueOf(op.value, bs);
        const e = await errCode(vol.setxattr(FILES[op.f]!, name, value));
        if (e === null) this.file(op.f).xattrs.set(name, value);
        else {
          expect(e).toBe("ENOSPC"); // the inode and the block are full: nothing changed
          count(stats.errors, `setxattr ${e}`);
        }
        return;
      }
      case "removexattr": {
        const name = XNAMES[op.name]!;
        const e = await errCode(vol.removexattr(FILES[op.f]!, name));
        const m = this.file(op.f);
        expect(e).toBe(m.xattrs.has(name) ? null : "ENODATA");
        m.xattrs.delete(name);
        return;
      }
      case "fsync":
      case "syncRange": {
        if (!this.model.has(op.f)) return;
        const fh = await vol.open(FILES[op.f]!, "r");
        try {
          if (op.kind === "fsync") await fh.sync();
          else await fh.syncRange(op.blk * bs, op.len * bs);
        } finally {
          await fh.close();
        }
        return;
      }
      case "sync":
        await vol.sync();
        return;
      case "unlinkOpen": {
        const fh = await vol.open(FILES[op.f]!, "r+");
        this.open.push(fh);
        await vol.unlink(FILES[op.f]!);
        this.model.delete(op.f);
        const data = pattern(2 * bs + 3, op.seed);
        await fh.write(data, 0, data.length, (op.seed % 20) * bs); // allocated and charged while unlinked
        return;
      }
      case "chown":
        await vol.chown(FILES[op.f]!, op.uid, op.gid);
        return;
      case "project":
        await vol.setProjectId(FILES[op.f]!, op.id);
        return;
    }
  }

  async step(ops: readonly Op[]): Promise<void> {
    stats.steps++;
    if (ops.length > 1 && commuting(ops)) {
      stats.concurrentSteps++;
      // Files a step needs exist before it starts (creating them is not what races here).
      for (const o of ops) if ("f" in o && o.kind !== "fsync" && o.kind !== "syncRange") await this.ensure(o.f);
      await Promise.all(ops.map((o) => this.run(o)));
      return;
    }
    if (ops.length > 1) stats.serializedSteps++;
    for (const o of ops) await this.run(o);
  }

  async check(): Promise<void> {
    for (const [f, m] of this.model) {
      const got = await this.vol.readFile(FILES[f]!);
      expect(got.length, `size of ${FILES[f]!}`).toBe(m.data.length);
      expect(Buffer.from(got).equals(Buffer.from(m.data)), `contents of ${FILES[f]!}`).toBe(true);
      const names = (await this.vol.listxattr(FILES[f]!)).sort();
      expect(names, `xattrs of ${FILES[f]!}`).toEqual([...m.xattrs.keys()].sort());
      for (const [n, v] of m.xattrs) expect(Buffer.from(await this.vol.getxattr(FILES[f]!, n)).equals(Buffer.from(v)), `${FILES[f]!} ${n}`).toBe(true);
    }
  }
}

const images = new Map<string, Promise<Uint8Array>>();
function imageOf(c: Config): Promise<Uint8Array> {
  let p = images.get(c.name);
  if (p === undefined) {
    p = (async () => {
      const dir = path.join(runDir(), "reservation-model");
      mkdirSync(dir, { recursive: true });
      const img = path.join(dir, `${c.name}.img`);
      rmSync(img, { force: true });
      await runAsync(tool("mke2fs"), ["-q", "-F", "-t", "ext4", ...c.mkfs, img, c.size]);
      return new Uint8Array(readFileSync(img));
    })();
    images.set(c.name, p);
  }
  return p;
}

async function runSequence(c: Config, steps: readonly Op[][]): Promise<void> {
  const dev = deviceOf(await imageOf(c));
  const vol = await Volume.mount(dev, { readOnly: false });
  const r = new Runner(vol, vol.fs.blockSize);
  await vol.mkdir("/d");
  if (c.quota) {
    await vol.chown("/d", 1001, 200);
    await vol.setProjectId("/d", 3, { inherit: true });
  }
  for (const f of FILES.keys()) await r.ensure(f);
  for (const s of steps) await r.step(s);
  for (const fh of r.open) await fh.close(); // last close frees the unlinked inodes
  await vol.sync();
  // After a full sync: no reservation anywhere, i_blocks = what each inode references, quota = Σ inodes.
  expect(reservationProblems(vol.fs)).toEqual([]);
  const audit = await auditVolume(vol.fs);
  expect(audit.problems).toEqual([]);
  if (c.quota) expect(await compareQuota(vol.quota!, audit.usage, { live: true })).toEqual([]);
  await r.check();
  await vol.unmount();
  // e2fsck recounts blocks, refcounts and (quota images) every id's usage.
  const dir = path.join(runDir(), "reservation-model");
  const img = path.join(dir, `${c.name}-run.img`);
  await saveSparseImage(deviceOf(dev.toBytes()), img); // the unmounted device is closed: save a copy
  const fsck = runUnchecked(tool("e2fsck"), ["-fn", img]);
  stats.fsck++;
  expect(fsck.status, `e2fsck -fn:\n${fsck.stdout}${fsck.stderr}`).toBe(0);
  if (c.quota) {
    const ro = await Volume.mount(deviceOf(dev.toBytes()));
    const after = await auditVolume(ro.fs);
    expect(await compareQuota(ro.quota!, after.usage)).toEqual([]);
    await ro.unmount();
  }
  stats.runs++;
}

describe("reservation model: oracle prerequisites", () => {
  oracleGate(tools, "e2fsprogs (mke2fs, e2fsck) is available");
});

describe.skipIf(!tools.ok)("reservation, i_blocks and quota arithmetic under random, partly concurrent operations", () => {
  afterAll(() => {
    const ops = [...stats.ops].map(([k, n]) => `${k} ${n}`).join(", ");
    const errs = [...stats.errors].map(([k, n]) => `${k} ${n}`).join(", ") || "none";
    console.log(`reservation model: ${stats.runs} sequences, ${stats.steps} steps (${stats.concurrentSteps} concurrent, ${stats.serializedSteps} serialized), ops: ${ops}; expected errors: ${errs}; e2fsck runs: ${stats.fsck}`);
  });
  for (const c of CONFIGS) {
    it(`${c.name}: after a full sync no reservation is left, i_blocks and quota equal what is referenced, contents match, e2fsck -fn is clean`, async () => {
      await fc.assert(
        fc.asyncProperty(stepsArb(c.quota), async (steps) => {
          await runSequence(c, steps);
        }),
        { numRuns: RUNS, seed: Number(process.env.RESERVATION_MODEL_SEED ?? 0x5eed) + c.name.length, endOnFailure: true },
      );
    }, 120_000);
  }
});
