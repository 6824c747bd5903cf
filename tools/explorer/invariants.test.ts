import { describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import { MemoryDevice } from "../../src/device/memory.js";
import { inodeFileAcl } from "../../src/format/inode.js";
import { allocRequest } from "../../src/fs/alloc_request.js";
import { chargeBlocks } from "../../src/fs/file_write.js";
import { withHandle } from "../../src/fs/handle.js";
import { igetWritable, markInodeDirty } from "../../src/fs/inode_write.js";
import { chargeGrantedBlocks } from "../../src/fs/quota_charge.js";
import { mkfsDevice } from "../mkfs/mkfs.js";
import { checkInvariants } from "./invariants.js";

const UID = 1000;
const GID = 100;
const BIG_XATTR = new Uint8Array(2000).fill(0x61); // past a 256-byte inode's room: needs the external block

/** A 16 MiB quota volume (4 KiB blocks, so a 2000-byte xattr fits a block) with files, directories and xattrs. */
async function populated(): Promise<Volume> {
  const dev = new MemoryDevice(16 << 20);
  await mkfsDevice(dev, {
    quiet: true, blockSize: "4096", features: ["quota,project"], knownZero: true,
    extended: ["quotatype=usrquota:grpquota:prjquota,hash_seed=8f3e2d1c-0b4a-4c5d-8e6f-7a8b9c0d1e2f"],
    uuid: "3c6cbe56-1f1b-4e1a-9d55-0c2b6a0f7a11", now: 1_700_000_000,
  });
  const vol = await Volume.mount(dev, { readOnly: false, uid: UID, gid: GID, writebackIntervalMs: 0 });
  await vol.mkdir("/d");
  for (let i = 0; i < 8; i++) await vol.writeFile(`/d/f${i}`, new Uint8Array(i * 5000 + 1).fill(i));
  await vol.setxattr("/d/f1", "user.small", "v");
  await vol.setxattr("/d/f2", "user.big", BIG_XATTR);
  await vol.setxattr("/d/f3", "user.big", BIG_XATTR); // may share f2's block (refcount 2)
  await vol.setxattr("/d", "user.big", BIG_XATTR);
  const h = await vol.open("/d/open", "w");
  await h.write(new Uint8Array(10_000).fill(7)); // delayed until checkInvariants syncs
  await h.close();
  return vol;
}

async function fileAcl(vol: Volume, path: string): Promise<number> {
  const info = await igetWritable(vol.fs, (await vol.stat(path)).ino);
  return inodeFileAcl(info.raw, vol.fs.features.is64bit);
}

describe("checkInvariants", () => {
  it("passes a clean volume with delayed data, an xattr block and quota", async () => {
    const vol = await populated();
    expect(vol.quota).not.toBeNull();
    expect(vol.fs.dirtyClusters).toBeGreaterThan(0); // delayed data, reserved, not yet allocated
    const r = await checkInvariants(vol);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(vol.fs.dirtyClusters).toBe(0); // it synced first
    expect(await fileAcl(vol, "/d/f2")).not.toBe(0); // the big xattr really lives in a block
    await vol.unmount();
  });

  it("catches an inode charged one block twice: Q1 (i_blocks), Q5 (quota) and the checker", async () => {
    const vol = await populated();
    await vol.sync();
    const fs = vol.fs;
    const ino = (await vol.stat("/d/f2")).ino;
    // What a wrong allocator does (seed_race.test.ts): the block charged again to i_blocks and quota.
    const info = await igetWritable(fs, ino);
    const dquots = await vol.quota!.dquotsFor({ uid: UID, gid: GID, projid: 0 }); // mounted with quota: checked above
    chargeBlocks(fs, info, 1);
    chargeGrantedBlocks(fs, allocRequest({ ino, purpose: "xattrBlock", goal: 0, len: 1, dquots, funding: { kind: "chargeNow", quota: "nofail", pool: "emergency" } }), 1);
    await withHandle(fs, (h) => markInodeDirty(h, info));

    const r = await checkInvariants(vol);
    expect(r.ok).toBe(false);
    const sectors = fs.blockSize / 512;
    expect(r.problems).toContainEqual(expect.stringMatching(new RegExp(`^Q1: inode ${ino}: i_blocks (\\d+), references \\d+ blocks`)));
    const q1 = r.problems.find((p) => p.startsWith(`Q1: inode ${ino}:`))!; // asserted just above
    const [, have, refs] = /i_blocks (\d+), references (\d+) blocks/.exec(q1)!;
    expect(Number(have)).toBe(Number(refs) * sectors + sectors);
    for (const t of [`usr ${UID}`, `grp ${GID}`, "prj 0"]) expect(r.problems).toContainEqual(expect.stringMatching(new RegExp(`^Q5: ${t}: quota says`)));
    expect(r.problems).toContainEqual(expect.stringMatching(new RegExp(`^Q7: PR_1_BAD_I_BLOCKS: Inode ${ino}, i_blocks is`)));
    expect(r.problems.filter((p) => /^(S1|A1):/.test(p))).toEqual([]);

    // Without the checker: the same audit lines, no Q7.
    const quick = await checkInvariants(vol, { fsck: false });
    expect(quick.problems).toEqual(r.problems.filter((p) => !p.startsWith("Q7:")));
    await vol.unmount();
  });

  it("catches a reservation left after sync (S1) and a counter below zero (A1)", async () => {
    const vol = await populated();
    await vol.sync(); // writeback asserts its own counters: break them once it is done
    vol.fs.dirtyClusters -= 1; // as if a release were done twice
    const r = await checkInvariants(vol, { fsck: false });
    expect(r.problems).toEqual(["S1: dirtyClusters -1 after sync", "A1: dirtyClusters -1"]);
    vol.fs.dirtyClusters = 0;
    expect(await checkInvariants(vol, { fsck: false })).toEqual({ ok: true, problems: [] });
    await vol.unmount();
  });
});
