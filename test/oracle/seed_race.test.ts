/**
 * The project's seed, as a test (Linux 6d6a435190bd, "ext4: fix race in xattr block
 * allocation path"; design note §0).
 *
 * The interleaving, driven deterministically with a ControlledScheduler:
 *
 *   1. inode X has delayed data (write() reserved its clusters) and a setxattr starts that
 *      needs an external xattr block: its allocation is suspended inside the allocator,
 *      between loading the group bitmap and committing (the point "alloc:xattrBlock");
 *   2. writeback of X starts (fsync from another handle, as Ceph's flusher did) and is
 *      suspended inside the allocator while mapping X's delayed blocks ("alloc:data");
 *   3. the xattr allocation resumes and finishes, then the setxattr;
 *   4. writeback resumes and finishes.
 *
 * Afterwards i_blocks, the quota usage, the free counts and the reservation counters must be
 * exact, and e2fsck must agree. In ext4ts this holds by construction: how each block is paid
 * for is the `funding` of its own allocation request (alloc_request.ts), so the two
 * operations never read each other's context.
 *
 * The companion test runs the same schedule with an allocator that does what the 2011 code
 * did: it keeps a per-inode "delalloc reserved" bit that writeback sets while it maps data,
 * and decides how to charge a block from that bit instead of from the request. It charges
 * the xattr block twice, and the same assertions catch it (in-core i_blocks, quota, and
 * e2fsck's "i_blocks is X, should be Y"). That test asserts the failure, so it would start
 * failing if the detection were lost.
 */

import { afterAll, describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import { FileDevice } from "../../src/device/file.js";
import { freeBlocksCount } from "../../src/format/superblock.js";
import { iget } from "../../src/fs/inode.js";
import { inodeCore } from "../../src/fs/inode_core.js";
import type { NameiDeps } from "../../src/fs/namei_write.js";
import { check } from "../../src/fsck/check.js";
import { ControlledScheduler } from "../../src/sync/scheduler.js";
import { sharedStateDeps } from "../shared_state_alloc.js";
import { cleanupImages, scratchImage } from "./images.js";
import { oracleAvailability, oracleGate, runUnchecked, tool } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck"], {});

const UID = 1000;
const DATA_BLOCKS = 16;
const XATTR_VALUE = new Uint8Array(1500).fill(0x61); // too big for a 256-byte inode's body: needs the block

interface Outcome {
  img: string;
  ino: number;
  inCoreSectors: number;
  onDiskSectors: number;
  freeUsed: number;
  reserved: number;
  dirtyClusters: number;
  quotaBytes: number | null;
  e2fsck: { status: number | null; out: string };
  /** The project's checker on the same image: problem names and its quota warnings. */
  ours: { problems: string[]; stderr: readonly string[] };
}

/** Drive the seed's interleaving on a fresh image; `deps` may replace the allocator. */
async function seedSchedule(name: string, wrap?: (d: NameiDeps) => NameiDeps): Promise<Outcome> {
  const img = scratchImage(name, ["-t", "ext4", "-b", "4096", "-I", "256", "-O", "quota", "-E", "quotatype=usrquota:grpquota"], "64M");
  const sched = new ControlledScheduler();
  const vol = await Volume.mount(await FileDevice.open(img), { readOnly: false, uid: UID, gid: UID, ...(wrap ? { engineDeps: wrap } : {}) });
  vol.fs.syncDomain.scheduler = sched;
  const bs = vol.fs.blockSize;
  const writer = await vol.open("/x", "w");
  await writer.write(new Uint8Array(DATA_BLOCKS * bs).fill(0x5a));
  const ino = (await writer.stat()).ino;
  const free0 = freeBlocksCount(vol.fs.sb);
  expect(inodeCore(vol.fs, ino)?.reservedDataBlocks).toBe(DATA_BLOCKS); // delayed: nothing allocated yet

  // 1. setxattr, suspended inside the allocator.
  const xattrGate = sched.pauseAt("alloc:xattrBlock");
  const setx = vol.setxattr("/x", "user.ceph", XATTR_VALUE);
  await xattrGate.reached;
  // 2. writeback of the same inode from another handle, suspended while mapping its delayed data.
  const dataGate = sched.pauseAt("alloc:data");
  const flusher = await vol.open("/x", "r+");
  const fsync = flusher.syncRange(0, 0);
  await dataGate.reached;
  // 3. the xattr allocation completes while writeback is mid-mapping; 4. writeback completes.
  xattrGate.release();
  await setx;
  dataGate.release();
  await fsync;

  const core = inodeCore(vol.fs, ino);
  const inCoreSectors = core?.info?.raw.i_blocks_lo ?? -1;
  const quota = vol.quota === null ? null : (await vol.getQuota("usr", UID)).curspace;
  await writer.close();
  await flusher.close();
  await vol.sync();
  const out: Outcome = {
    img,
    ino,
    inCoreSectors,
    onDiskSectors: (await iget(vol.fs, ino)).blocks,
    freeUsed: free0 - freeBlocksCount(vol.fs.sb),
    reserved: core?.reservedDataBlocks ?? 0,
    dirtyClusters: vol.fs.dirtyClusters,
    quotaBytes: quota,
    e2fsck: { status: null, out: "" },
    ours: { problems: [], stderr: [] },
  };
  await vol.unmount();
  const dev = await FileDevice.open(img, { readOnly: true });
  const report = await check(dev, { force: true });
  await dev.close();
  out.ours = { problems: report.problems.map((p) => p.name), stderr: report.stderr };
  const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
  out.e2fsck = { status: r.status, out: r.stdout + r.stderr };
  return out;
}

describe("the seed: an xattr block allocation and writeback of the same inode interleave", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });

  it.skipIf(!oracle.ok)("every block is charged once: i_blocks, quota, free counts and reservations stay exact, e2fsck clean", async () => {
    const o = await seedSchedule("seed-race");
    const expected = (DATA_BLOCKS + 1) * (4096 / 512); // 16 data blocks + the xattr block, in sectors
    expect(o.inCoreSectors).toBe(expected);
    expect(o.onDiskSectors).toBe(expected);
    expect(o.freeUsed).toBe(DATA_BLOCKS + 1);
    expect(o.reserved).toBe(0);
    expect(o.dirtyClusters).toBe(0);
    expect(o.quotaBytes).toBe((DATA_BLOCKS + 1) * 4096);
    expect(o.e2fsck.status, o.e2fsck.out).toBe(0);
    expect(o.ours.problems).toEqual([]);
  });

  it.skipIf(!oracle.ok)("with the charging context in shared inode state (the 2011 design), the same schedule double-charges and is caught", async () => {
    const o = await seedSchedule("seed-race-shared", sharedStateDeps);
    const expected = (DATA_BLOCKS + 1) * (4096 / 512);
    // The xattr block was charged by its caller and again by the wrapper that read the bit writeback had set.
    expect(o.inCoreSectors).toBe(expected + 4096 / 512);
    expect(o.onDiskSectors).toBe(expected + 4096 / 512);
    expect(o.freeUsed).toBe(DATA_BLOCKS + 1); // only one block was taken from the bitmap
    expect(o.quotaBytes).toBe((DATA_BLOCKS + 2) * 4096); // the quota usage is off by the same block
    expect(o.e2fsck.status).toBe(4);
    expect(o.e2fsck.out).toMatch(/Update quota info for quota type 0/);
    expect(o.e2fsck.out).toMatch(new RegExp(`Inode ${o.ino}, i_blocks is ${expected + 8}, should be ${expected}`));
    // The project's checker finds both, as e2fsck does (for each quota type), with e2fsck's warnings.
    const types = [...o.e2fsck.out.matchAll(/Update quota info for quota type \d/g)].length;
    expect(types).toBe(2); // usrquota and grpquota (the file's group id is the owner's)
    expect(o.ours.problems).toEqual(["PR_1_BAD_I_BLOCKS", ...Array<string>(types).fill("PR_6_UPDATE_QUOTAS")]);
    expect(o.ours.stderr).toEqual(o.e2fsck.out.split("\n").filter((l) => l.startsWith("[QUOTA WARNING]")));
    expect(o.ours.stderr[0]).toBe(`[QUOTA WARNING] Usage inconsistent for ID ${UID}:actual (${(DATA_BLOCKS + 1) * 4096}, 1) != expected (${(DATA_BLOCKS + 2) * 4096}, 1)`);

    // And the project's checker repairs it: i_blocks set, both quota files rewritten, and
    // e2fsck finds nothing left.
    const dev = await FileDevice.open(o.img);
    const fixed = await check(dev, { force: true, repair: "yes" });
    await dev.close();
    expect(fixed.exitCode).toBe(1);
    expect(fixed.problems.map((p) => [p.name, p.answer])).toEqual([["PR_1_BAD_I_BLOCKS", true], ...Array<[string, boolean]>(types).fill(["PR_6_UPDATE_QUOTAS", true])]);
    const after = runUnchecked(tool("e2fsck"), ["-fn", o.img]);
    expect(after.status, after.stdout).toBe(0);
    const dev2 = await FileDevice.open(o.img, { readOnly: true });
    const again = await check(dev2, { force: true });
    await dev2.close();
    expect(again.problems).toEqual([]);
  });
});
