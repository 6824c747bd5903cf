/**
 * Quota charges at each site where the kernel makes them (src/fs/quota_charge.ts): block
 * allocation by funding (enforce / nofail / delalloc) and freeing, delalloc reserve / claim /
 * release, inode allocation and freeing, xattr blocks (new, shared reference, dropped
 * reference), chown, project ids (set, inherit, EXDEV). Images come from ext4ts mkfs (no
 * e2fsprogs needed); each test ends with the independent audit (quota_audit.ts) on the live
 * volume and on the unmounted image's quota files. The e2fsck oracle is
 * test/oracle/quota_oracle.test.ts.
 */
import { describe, expect, it } from "vitest";
import { Volume } from "../src/api/promises.js";
import type { MemoryDevice } from "../src/device/memory.js";
import { freeBlocksCount } from "../src/format/superblock.js";
import { allocRequest, type Funding } from "../src/fs/alloc_request.js";
import { ext4FreeBlocks, ext4NewBlocks, reconcileFreeCounts } from "../src/fs/balloc.js";
import { withHandle } from "../src/fs/handle.js";
import { inodeCore } from "../src/fs/inode_core.js";
import { quotaSetOf } from "../src/fs/quota.js";
import { auditVolume, compareQuota, deviceOf, mkfsBytes, syncAndAudit } from "./oracle/quota_audit.js";
import { outcome } from "./outcome.js";

const QUOTA_OPTS = { features: ["quota,project"], extended: ["quotatype=usrquota:grpquota:prjquota,hash_seed=8f3e2d1c-0b4a-4c5d-8e6f-7a8b9c0d1e2f"] };
let image1k: Promise<Uint8Array> | undefined;
let image4k: Promise<Uint8Array> | undefined;
const quota1k = (): Promise<Uint8Array> => (image1k ??= mkfsBytes("16M", { ...QUOTA_OPTS, blockSize: "1024" }));
const quota4k = (): Promise<Uint8Array> => (image4k ??= mkfsBytes("32M", QUOTA_OPTS));

async function mount(bytes: Uint8Array, opts: { uid?: number; gid?: number } = {}): Promise<{ vol: Volume; dev: MemoryDevice }> {
  const dev = deviceOf(bytes);
  const vol = await Volume.mount(dev, { readOnly: false, ...opts });
  return { vol, dev };
}

/** Sync, audit the live volume, unmount, audit the image's quota files. */
async function finish(vol: Volume, dev: MemoryDevice): Promise<void> {
  expect(await syncAndAudit(vol)).toEqual([]);
  await vol.unmount();
  const ro = await Volume.mount(deviceOf(dev.toBytes()));
  const after = await auditVolume(ro.fs);
  expect(after.problems).toEqual([]);
  expect(await compareQuota(ro.quota!, after.usage)).toEqual([]);
  await ro.unmount();
}

const ENFORCE: Funding = { kind: "chargeNow", quota: "enforce" };
const NOFAIL: Funding = { kind: "chargeNow", quota: "nofail", pool: "emergency" };

describe("quota charges", () => {
  it("block allocation: enforce charges or shrinks or refuses, nofail always charges, delalloc never, freeing uncharges", async () => {
    const { vol } = await mount(await quota1k());
    const fs = vol.fs;
    const q = quotaSetOf(fs)!;
    const bs = fs.blockSize;
    const dq = await q.dquotsFor({ uid: 1000, gid: 100, projid: 5 });
    const usr = dq[0]!;
    const alloc = (len: number, funding: Funding, minLen = len, dquots: typeof dq | null = dq) =>
      withHandle(fs, (h) => ext4NewBlocks(h, allocRequest({ ino: 12, purpose: "data", goal: 0, len, minLen, funding, dquots })));
    await vol.setQuota("usr", 1000, { bhardlimit: 12 * bs }); // written to the quota file at once (it may grow)
    reconcileFreeCounts(fs); // the allocator's first use sums the group counts
    const start = freeBlocksCount(fs.sb);
    const a = await alloc(8, ENFORCE);
    expect(dq.map((d) => d.curspace)).toEqual([8 * bs, 8 * bs, 8 * bs]);
    // 4 blocks of room: a request for 10 (at least 1) gets 4, as ext4_mb_new_blocks's loop gives.
    const b = await alloc(10, ENFORCE, 1);
    expect(b.len).toBe(4);
    expect(usr.curspace).toBe(12 * bs);
    const free = freeBlocksCount(fs.sb);
    expect(await outcome(alloc(1, ENFORCE))).toBe("EDQUOT");
    expect([freeBlocksCount(fs.sb), usr.curspace]).toEqual([free, 12 * bs]); // nothing changed
    const c = await alloc(2, NOFAIL); // writeback's tree blocks: never refused
    expect(usr.curspace).toBe(14 * bs);
    const d = await alloc(3, { kind: "delalloc", reservation: 3 }); // charged by the claim, not here
    expect(usr.curspace).toBe(14 * bs);
    const e = await alloc(2, ENFORCE, 2, null); // nobody's (volume metadata, quota files)
    expect(usr.curspace).toBe(14 * bs);
    await withHandle(fs, async (h) => {
      await ext4FreeBlocks(h, 12, a.pblk, a.len, dq);
      await ext4FreeBlocks(h, 12, b.pblk, b.len, dq);
      await ext4FreeBlocks(h, 12, c.pblk, c.len, dq);
      await ext4FreeBlocks(h, 12, d.pblk, d.len, null);
      await ext4FreeBlocks(h, 12, e.pblk, e.len, null);
    });
    expect(dq.map((x) => x.curspace)).toEqual([0, 0, 0]);
    expect(freeBlocksCount(fs.sb)).toBe(start);
    await vol.unmount();
  });

  it("delalloc: write() reserves quota, writeback claims it, truncate releases it; EDQUOT changes nothing, a write at the limit is short", async () => {
    const { vol, dev } = await mount(await quota4k());
    const bs = vol.fs.blockSize;
    await vol.writeFile("/f", "");
    await vol.chown("/f", 1000, 100);
    const fh = await vol.open("/f", "r+");
    await fh.write(new Uint8Array(5 * bs).fill(1), 0, 5 * bs, 0);
    let u = await vol.getQuota("usr", 1000);
    expect([u.curspace, u.rsvspace, u.curinodes]).toEqual([0, 5 * bs, 1]);
    await fh.sync();
    u = await vol.getQuota("usr", 1000);
    expect([u.curspace, u.rsvspace]).toEqual([5 * bs, 0]);
    await fh.write(new Uint8Array(3 * bs).fill(2), 0, 3 * bs, 10 * bs);
    expect((await vol.getQuota("usr", 1000)).rsvspace).toBe(3 * bs);
    await fh.truncate(8 * bs); // drops two of the three delayed pages
    expect((await vol.getQuota("usr", 1000)).rsvspace).toBe(0);
    await fh.write(new Uint8Array(2 * bs).fill(3), 0, 2 * bs, 6 * bs);
    await vol.setQuota("usr", 1000, { bhardlimit: 9 * bs }); // 5 used + 2 reserved: 2 left
    const r = await fh.write(new Uint8Array(4 * bs).fill(4), 0, 4 * bs, 8 * bs);
    expect(r.bytesWritten).toBe(2 * bs); // short write
    const dirty = vol.fs.dirtyClusters;
    const before = await vol.getQuota("usr", 1000);
    expect(await outcome(fh.write(new Uint8Array(bs), 0, bs, 20 * bs))).toBe("EDQUOT");
    expect(vol.fs.dirtyClusters).toBe(dirty);
    expect(await vol.getQuota("usr", 1000)).toEqual(before);
    expect((await fh.stat()).size).toBe(10 * bs);
    await fh.close();
    await finish(vol, dev);
  });

  it("inodes: each new inode is charged in the commit that takes it, EDQUOT at the limit leaves no trace, freeing uncharges", async () => {
    const { vol, dev } = await mount(await quota1k(), { uid: 1000, gid: 100 });
    await vol.setQuota("usr", 1000, { ihardlimit: 3 });
    await vol.mkdir("/d");
    await vol.writeFile("/d/a", "a");
    await vol.symlink("/d/a", "/d/l");
    const freeInodes = vol.fs.sb.s_free_inodes_count;
    expect(await outcome(vol.writeFile("/d/b", "b"))).toBe("EDQUOT");
    expect(vol.fs.sb.s_free_inodes_count).toBe(freeInodes);
    expect(await outcome(vol.stat("/d/b"))).toBe("ENOENT");
    expect((await vol.getQuota("usr", 1000)).curinodes).toBe(3);
    expect((await vol.getQuota("grp", 100)).curinodes).toBe(3);
    await vol.unlink("/d/l");
    expect((await vol.getQuota("usr", 1000)).curinodes).toBe(2);
    await vol.writeFile("/d/b", "b");
    await finish(vol, dev);
  });

  it("xattr blocks: a new block and a shared reference each charge one block, dropping a reference uncharges one; EDQUOT on reuse changes nothing", async () => {
    const { vol, dev } = await mount(await quota1k());
    const bs = vol.fs.blockSize;
    for (const f of ["/a", "/b", "/c"]) {
      await vol.writeFile(f, "");
      await vol.chown(f, 2000 + f.charCodeAt(1), 100);
    }
    const big = new Uint8Array(700).fill(7); // too big for the inode body: goes to the block
    const space = async (f: string): Promise<number> => (await vol.getQuota("usr", 2000 + f.charCodeAt(1))).curspace;
    await vol.setxattr("/a", "user.k", big);
    expect(await space("/a")).toBe(bs);
    const free = freeBlocksCount(vol.fs.sb);
    await vol.setxattr("/b", "user.k", big); // identical set: shares a's block
    expect(await space("/b")).toBe(bs);
    expect(freeBlocksCount(vol.fs.sb)).toBe(free);
    expect((await vol.stat("/b")).blocks).toBe(bs / 512);
    // At its limit, c cannot take a reference either: EDQUOT, the shared block untouched.
    await vol.writeFile("/c", new Uint8Array(bs).fill(3));
    await vol.sync();
    await vol.setQuota("usr", 2000 + "c".charCodeAt(0), { bhardlimit: bs });
    expect(await outcome(vol.setxattr("/c", "user.k", big))).toBe("EDQUOT");
    expect(await space("/c")).toBe(bs);
    expect((await vol.stat("/c")).blocks).toBe(bs / 512);
    const free2 = freeBlocksCount(vol.fs.sb);
    await vol.removexattr("/a", "user.k"); // refcount 2 -> 1: uncharged, not freed
    expect(await space("/a")).toBe(0);
    expect(freeBlocksCount(vol.fs.sb)).toBe(free2);
    await vol.removexattr("/b", "user.k"); // last reference: freed and uncharged
    expect(await space("/b")).toBe(0);
    expect(freeBlocksCount(vol.fs.sb)).toBe(free2 + 1);
    await finish(vol, dev);
  });

  it("chown moves usage and reservations to the new ids; EDQUOT leaves the owner and the charges as they were", async () => {
    const { vol, dev } = await mount(await quota4k());
    const bs = vol.fs.blockSize;
    await vol.writeFile("/f", new Uint8Array(3 * bs).fill(1));
    await vol.sync();
    await vol.appendFile("/f", new Uint8Array(2 * bs).fill(2)); // 3 allocated + 2 reserved
    await vol.chown("/f", 1000, 100);
    let u = await vol.getQuota("usr", 1000);
    expect([u.curspace, u.rsvspace, u.curinodes]).toEqual([3 * bs, 2 * bs, 1]);
    expect((await vol.getQuota("grp", 100)).curspace).toBe(3 * bs);
    expect(inodeCore(vol.fs, (await vol.stat("/f")).ino)?.dquots?.[0]?.id).toBe(1000);
    await vol.setQuota("usr", 1001, { bhardlimit: 4 * bs });
    expect(await outcome(vol.chown("/f", 1001, -1))).toBe("EDQUOT");
    expect((await vol.stat("/f")).uid).toBe(1000);
    u = await vol.getQuota("usr", 1000);
    expect([u.curspace, u.rsvspace]).toEqual([3 * bs, 2 * bs]);
    expect((await vol.getQuota("usr", 1001)).curspace).toBe(0);
    await vol.sync(); // the claim goes to uid 1000, who holds the reservation
    expect((await vol.getQuota("usr", 1000)).curspace).toBe(5 * bs);
    await vol.chown("/f", -1, 200);
    expect((await vol.getQuota("grp", 200)).curspace).toBe(5 * bs);
    expect((await vol.getQuota("grp", 100)).curspace).toBe(0);
    await finish(vol, dev);
  });

  it("project ids: setProjectId moves project usage, PROJINHERIT hands the id down, links and renames into another project are EXDEV", async () => {
    const { vol, dev } = await mount(await quota1k());
    const bs = vol.fs.blockSize;
    await vol.writeFile("/f", new Uint8Array(2 * bs).fill(1));
    await vol.setProjectId("/f", 42);
    expect(await vol.getProjectId("/f")).toBe(42);
    let p = await vol.getQuota("prj", 42);
    expect([p.curspace, p.rsvspace, p.curinodes]).toEqual([0, 2 * bs, 1]); // still delayed
    await vol.sync();
    p = await vol.getQuota("prj", 42);
    expect([p.curspace, p.rsvspace]).toEqual([2 * bs, 0]);
    await vol.mkdir("/p");
    await vol.setProjectId("/p", 7, { inherit: true });
    await vol.writeFile("/p/g", "x");
    await vol.mkdir("/p/sub");
    await vol.writeFile("/p/sub/h", "y");
    expect(await Promise.all(["/p/g", "/p/sub", "/p/sub/h"].map((x) => vol.getProjectId(x)))).toEqual([7, 7, 7]);
    expect(await outcome(vol.link("/f", "/p/f2"))).toBe("EXDEV");
    expect(await outcome(vol.rename("/f", "/p/f2"))).toBe("EXDEV");
    expect(await outcome(vol.rename("/f", "/p/g"))).toBe("EXDEV");
    await vol.link("/p/g", "/p/sub/g2"); // same project: fine
    await vol.rename("/p/g", "/g"); // out of a project tree: fine (the root has no PROJINHERIT)
    expect(await outcome(vol.setProjectId("/f", 1, { inherit: true }))).toBe("EOPNOTSUPP"); // PROJINHERIT on a file
    await vol.setProjectId("/f", 0);
    expect((await vol.getQuota("prj", 42)).curspace).toBe(0);
    expect((await vol.getQuota("prj", 0)).curspace).toBeGreaterThanOrEqual(2 * bs);
    await vol.setQuota("prj", 9, { ihardlimit: 1 });
    await vol.setProjectId("/g", 9);
    expect(await outcome(vol.setProjectId("/p/sub/h", 9))).toBe("EDQUOT");
    expect(await vol.getProjectId("/p/sub/h")).toBe(7);
    await finish(vol, dev);
  });

  it("without the project feature, only project id 0 is accepted", async () => {
    const { vol } = await mount(await mkfsBytes("8M", { blockSize: "1024", features: ["quota"] }));
    await vol.writeFile("/f", "x");
    expect(await outcome(vol.setProjectId("/f", 3))).toBe("EOPNOTSUPP");
    await vol.setProjectId("/f", 0);
    expect(await vol.getProjectId("/f")).toBe(0);
    await vol.unmount();
  });
});
