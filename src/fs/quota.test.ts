/**
 * The in-core quota layer (quota.ts) on volumes made by ext4ts mkfs with -O quota,project
 * (mke2fs 1.47.0 layouts, byte-identical quota files) held in a MemoryDevice: the kernel's
 * charge rules (dquot_add_space / dquot_add_inodes: hard limit, soft limit + grace, nofail,
 * reservations, transfer) and write-back into the quota inodes, checked by reading the
 * files back and, where e2fsck exists, by `e2fsck -fn` (which reads every quota file and
 * compares usage with the inodes).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { oracleAvailability, runUnchecked, tool } from "../../test/oracle/oracle_env.js";
import { mkfs } from "../../tools/mkfs/mkfs.js";
import { Volume } from "../api/promises.js";
import { MemoryDevice } from "../device/memory.js";
import { FsError } from "../errors.js";
import { withHandle } from "./handle.js";
import { iget } from "./inode.js";
import { QuotaSet, computeQuotaUsage, type Dquot, type InodeDquots } from "./quota.js";

const e2fsckOracle = oracleAvailability(["e2fsck"]);
const work = mkdtempSync(path.join(tmpdir(), "ext4ts-quota-"));
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

const images = new Map<string, Promise<Uint8Array>>();
function image(blockSize: "1024" | "4096"): Promise<Uint8Array> {
  let p = images.get(blockSize);
  if (p === undefined) {
    p = (async () => {
      const file = path.join(work, `q${blockSize}.img`);
      await mkfs(file, { blockSize, features: ["quota,project"], size: "32M", uuid: "6b1f7a54-0f4b-4a5e-9a8e-3c2d1e0f9a8b", extended: ["hash_seed=0b7c4f1e-2d3a-4b5c-8d9e-0f1a2b3c4d5e"], now: 1_700_000_000, quiet: true, force: true });
      return new Uint8Array(readFileSync(file));
    })();
    images.set(blockSize, p);
  }
  return p;
}

async function mount(blockSize: "1024" | "4096" = "4096", bytes?: Uint8Array): Promise<{ vol: Volume; dev: MemoryDevice; q: QuotaSet }> {
  const dev = MemoryDevice.from(bytes ?? (await image(blockSize)));
  const vol = await Volume.mount(dev, { readOnly: false });
  const q = vol.quota;
  if (q === null) throw new Error("no quota");
  return { vol, dev, q };
}

function fsckClean(bytes: Uint8Array): void {
  if (!e2fsckOracle.ok) return;
  const file = path.join(work, `fsck-${Math.random().toString(36).slice(2)}.img`);
  writeFileSync(file, bytes);
  const r = runUnchecked(tool("e2fsck"), ["-fn", file]);
  rmSync(file, { force: true });
  expect(r.status, `e2fsck -fn exited ${r.status}:\n${r.stdout}${r.stderr}`).toBe(0);
}

/** A QuotaSet with a fixed clock on a fresh volume (not through Volume). */
async function bare(now: { t: number }): Promise<{ q: QuotaSet; vol: Volume }> {
  const dev = MemoryDevice.from(await image("4096"));
  const vol = await Volume.mount(dev, { readOnly: false });
  const q = await QuotaSet.load(vol.fs, { now: () => now.t });
  if (q === null) throw new Error("no quota");
  return { q, vol };
}

const code = (f: () => void): string => {
  try {
    f();
    return "ok";
  } catch (e) {
    if (e instanceof FsError) return e.code;
    throw e;
  }
};

const state = (d: Dquot): [number, number, number, number, number] => [d.curspace, d.rsvspace, d.curinodes, d.btime, d.itime];

describe("QuotaSet.load", () => {
  it("reads the types, grace times and mkfs's records; null without the quota feature", async () => {
    const { vol, q } = await mount();
    expect(q.types()).toEqual(["usr", "grp", "prj"]);
    expect([q.inodeOf("usr"), q.inodeOf("grp"), q.inodeOf("prj")]).toEqual([3, 4, 12]);
    expect(q.grace("usr")).toEqual({ bgrace: 604800, igrace: 604800 });
    const [u, g, p] = await q.dquotsFor({ uid: 0, gid: 0, projid: 0 });
    // root (4 KiB) + lost+found (16 KiB), two inodes.
    for (const d of [u!, g!, p!]) expect([d.curspace, d.curinodes]).toEqual([20480, 2]);
    const none = await q.dquot("usr", 4242);
    expect([none.curspace, none.curinodes, none.limits.bhardlimit]).toEqual([0, 0, 0]);
    expect(await q.dquot("usr", 4242)).toBe(none); // one Dquot per id
    await vol.unmount();

    const plain = path.join(work, "plain.img");
    await mkfs(plain, { size: "8M", quiet: true, force: true });
    const v2 = await Volume.mount(MemoryDevice.from(new Uint8Array(readFileSync(plain))), { readOnly: false });
    expect(v2.quota).toBeNull();
    expect(await QuotaSet.load(v2.fs)).toBeNull();
    await v2.unmount();
  });

  it("gives concurrent loaders of one id the same Dquot", async () => {
    const { vol, q } = await mount();
    const [a, b] = await Promise.all([q.dquot("grp", 77), q.dquot("grp", 77)]);
    expect(a).toBe(b);
    await vol.unmount();
  });

  it("computes the usage e2fsck computes (root and lost+found after mkfs)", async () => {
    const { vol } = await mount("1024");
    const u = await computeQuotaUsage(vol.fs);
    expect([...u.get("usr")!]).toEqual([[0, { space: 13 * 1024, inodes: 2 }]]);
    expect([...u.get("prj")!]).toEqual([[0, { space: 13 * 1024, inodes: 2 }]]);
    await vol.unmount();
  });
});

describe("charges (dquot.c rules, caller unprivileged)", () => {
  it("refuses space past the hard limit without changing any type", async () => {
    const now = { t: 1_000_000 };
    const { q, vol } = await bare(now);
    await q.setLimits("grp", 5, { bhardlimit: 10 * 1024 });
    const dq = await q.dquotsFor({ uid: 9, gid: 5, projid: 3 });
    q.allocSpace(dq, 8 * 1024, "enforce");
    const before = dq.map(state);
    expect(code(() => q.allocSpace(dq, 4 * 1024, "enforce"))).toBe("EDQUOT");
    expect(dq.map(state)).toEqual(before);
    q.allocSpace(dq, 2 * 1024, "enforce"); // exactly at the limit is allowed (tspace > hard refuses)
    expect(dq[1]!.curspace).toBe(10 * 1024);
    q.allocSpace(dq, 4096, "nofail"); // metadata during writeback: never refused
    expect(dq[1]!.curspace).toBe(14 * 1024);
    expect(dq[0]!.curspace).toBe(14 * 1024);
    q.freeSpace(dq, 14 * 1024);
    expect(dq.map((d) => d.curspace)).toEqual([0, 0, 0]);
    await vol.unmount();
  });

  it("starts the grace period at the soft limit and refuses once it has run out", async () => {
    const now = { t: 1_000_000 };
    const { q, vol } = await bare(now);
    await q.setLimits("usr", 7, { bsoftlimit: 4096, isoftlimit: 1, bgrace: 100, igrace: 50 });
    const dq = await q.dquotsFor({ uid: 7, gid: 0, projid: 0 });
    const u = dq[0]!;
    q.allocSpace(dq, 4096, "enforce");
    expect(u.btime).toBe(0);
    q.allocSpace(dq, 1, "enforce");
    expect(u.btime).toBe(1_000_100);
    now.t = 1_000_099;
    q.allocSpace(dq, 1, "enforce");
    now.t = 1_000_100;
    expect(code(() => q.allocSpace(dq, 1, "enforce"))).toBe("EDQUOT");
    q.freeSpace(dq, 2); // back at the soft limit: the timer stops
    expect(u.btime).toBe(0);
    q.allocInode(dq);
    q.allocInode(dq);
    expect(u.itime).toBe(1_000_150);
    now.t = 1_000_150;
    expect(code(() => q.allocInode(dq))).toBe("EDQUOT");
    q.freeInode(dq);
    expect([u.curinodes, u.itime]).toEqual([1, 0]);
    await vol.unmount();
  });

  it("reserves against curspace + rsvspace, claims and releases", async () => {
    const { q, vol } = await bare({ t: 5 });
    await q.setLimits("prj", 3, { bhardlimit: 8192 });
    const dq = await q.dquotsFor({ uid: 1, gid: 1, projid: 3 });
    q.reserveSpace(dq, 4096);
    q.reserveSpace(dq, 4096);
    expect(code(() => q.reserveSpace(dq, 1))).toBe("EDQUOT");
    expect(code(() => q.allocSpace(dq, 1, "enforce"))).toBe("EDQUOT"); // reservations count
    q.claimSpace(dq, 4096);
    expect(state(dq[2]!).slice(0, 2)).toEqual([4096, 4096]);
    q.releaseReservation(dq, 4096);
    expect(state(dq[2]!).slice(0, 2)).toEqual([4096, 0]);
    expect(() => q.claimSpace(dq, 1)).toThrow(/reserved/); // a bug, not an errno
    await vol.unmount();
  });

  it("refuses an inode at the hard limit", async () => {
    const { q, vol } = await bare({ t: 5 });
    await q.setLimits("usr", 8, { ihardlimit: 1 });
    const dq = await q.dquotsFor({ uid: 8, gid: 0, projid: 0 });
    q.allocInode(dq);
    expect(code(() => q.allocInode(dq))).toBe("EDQUOT");
    expect(dq.map((d) => d.curinodes)).toEqual([1, 3, 3]); // gid 0 / prj 0 had root and lost+found
    await vol.unmount();
  });

  it("transfers usage and reservation on chown, checking only the new ids' limits", async () => {
    const { q, vol } = await bare({ t: 5 });
    await q.setLimits("usr", 20, { bhardlimit: 2048 });
    await q.setLimits("usr", 10, { bhardlimit: 1024 }); // the old owner is over its limit: irrelevant
    const from = await q.dquotsFor({ uid: 10, gid: 1, projid: 0 });
    q.allocInode(from);
    q.allocSpace(from, 2048, "nofail");
    q.reserveSpace(from.slice(1), 1024);
    const to: InodeDquots = [await q.dquot("usr", 20), from[1]!, from[2]!];
    expect(code(() => q.transfer(from, to, 4096, 0))).toBe("EDQUOT");
    q.transfer(from, to, 2048, 0);
    expect(state(from[0]!).slice(0, 3)).toEqual([0, 0, 0]);
    expect(state(to[0]!).slice(0, 3)).toEqual([2048, 0, 1]);
    expect(state(from[1]!).slice(0, 3)).toEqual([2048, 1024, 1]); // same group: untouched
    await vol.unmount();
  });
});

describe("flush", () => {
  it("writes 2,000 ids, growing the file through the engine, readable after remount and e2fsck-clean", async () => {
    for (const bs of ["1024", "4096"] as const) {
      const { vol, dev, q } = await mount(bs);
      for (let i = 0; i < 2000; i++) await q.setLimits(i % 3 === 0 ? "usr" : i % 3 === 1 ? "grp" : "prj", 1000 + i * 7919, { bsoftlimit: 1024 * (i + 1), bhardlimit: 2048 * (i + 1), ihardlimit: i + 1 });
      await q.setLimits("usr", 0, { bgrace: 3600, igrace: 60 });
      expect(q.isDirty()).toBe(true);
      await withHandle(vol.fs, (h) => q.flush(h));
      expect(q.isDirty()).toBe(false);
      const before = (await iget(vol.fs, 3)).size;
      await vol.unmount();
      const bytes = dev.toBytes();
      fsckClean(bytes);

      const m2 = await mount(bs, bytes);
      expect((await iget(m2.vol.fs, 3)).size).toBe(before);
      const rep = await m2.q.report("usr");
      expect(rep).toHaveLength(1 + 667);
      const d = await m2.q.dquot("prj", 1000 + 1997 * 7919);
      expect(d.limits).toEqual({ bsoftlimit: 1024 * 1998, bhardlimit: 2048 * 1998, ihardlimit: 1998, isoftlimit: 0 });
      expect(m2.q.grace("usr")).toEqual({ bgrace: 3600, igrace: 60 });
      // Clearing limits deletes records; the root's stays (it has usage).
      for (const r of rep) await m2.q.setLimits("usr", r.id, { bsoftlimit: 0, bhardlimit: 0, ihardlimit: 0 });
      await m2.vol.unmount();
      const m3 = await mount(bs, m2.dev.toBytes());
      expect((await m3.q.report("usr")).map((x) => x.id)).toEqual([0]);
      await m3.vol.unmount();
      fsckClean(m3.dev.toBytes());
    }
  });

  it("Volume.setQuota writes at once; getQuota and quotaReport read", async () => {
    const { vol, dev } = await mount();
    await vol.setQuota("grp", 300, { bhardlimit: 5000, isoftlimit: 2 });
    expect((await vol.getQuota("grp", 300)).limits).toEqual({ bhardlimit: 5120, bsoftlimit: 0, ihardlimit: 0, isoftlimit: 2 });
    expect((await vol.quotaReport("grp")).map((d) => d.id)).toEqual([0, 300]);
    await vol.sync();
    const copy = await mount("4096", dev.toBytes());
    expect((await copy.vol.getQuota("grp", 300)).limits.bhardlimit).toBe(5120);
    await copy.vol.unmount();
    await vol.unmount();
  });
});
