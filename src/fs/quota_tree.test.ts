/**
 * The v2 quota tree (quota_tree.ts): unit tests on an in-memory file, then oracles:
 * - mke2fs 1.47.0: buildQuotaFile gives the bytes of the quota inodes mke2fs writes
 *   (`debugfs -R "dump <ino>"`), for user, group and project files, 1 KiB and 4 KiB blocks,
 *   with one id and with two;
 * - quota-tools (setquota/repquota, an implementation independent of e2fsprogs): with
 *   quotas off they edit a quota file directly; 2,000 inserts in random order and 1,000
 *   removals through `setquota -b` give the same bytes as the same operations here, and
 *   `repquota -v -n` lists what records() finds.
 * (This machine's kernel cannot mount quota volumes read-write: no CONFIG_QFMT_V2; the
 * kernel side is covered through e2fsprogs and quota-tools, which share its algorithm.)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Rng } from "../../test/oracle/trees.js";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "../../test/oracle/oracle_env.js";
import { FileDevice } from "../device/file.js";
import {
  GRPQUOTA,
  PRJQUOTA,
  QT_BLKSIZE,
  QT_DQSTR_IN_BLK,
  QT_TREEDEPTH,
  QT_TREEOFF,
  USRQUOTA,
  emptyDqblk,
  qtDiskDqdbheader,
  qtreeEntryUnused,
  type DiskDquot,
  type QuotaTypeIndex,
} from "../format/quota.js";
import { computeQuotaUsage } from "./quota.js";
import { MemoryQuotaFile, QuotaTree, buildQuotaFile } from "./quota_tree.js";
import { Ext4Fs } from "./super.js";

const rec = (id: number, more: Partial<DiskDquot> = {}): DiskDquot => ({ ...emptyDqblk(id), ...more });

/**
 * Walk the whole file and check the structure: every tree and data block referenced once,
 * free blocks and free-entry lists consistent with the blocks' contents, every block below
 * dqi_blocks accounted for, data-block entry counts right. Returns the ids found.
 */
async function checkStructure(tree: QuotaTree): Promise<number[]> {
  const io = tree.io;
  const n = tree.info.dqi_blocks;
  const role = new Map<number, string>([[0, "header"], [QT_TREEOFF, "tree0"]]);
  const ids: number[] = [];
  const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const walk = async (blk: number, depth: number, prefix: number): Promise<void> => {
    const b = await io.readBlock(blk);
    for (let i = 0; i < QT_BLKSIZE / 4; i++) {
      const ref = dv(b).getUint32(i * 4, true);
      if (ref === 0) continue;
      expect(ref).toBeGreaterThan(QT_TREEOFF);
      expect(ref).toBeLessThan(n);
      const id = prefix * 256 + i;
      if (depth < QT_TREEDEPTH - 1) {
        expect(role.has(ref), `block ${ref} referenced twice`).toBe(false);
        role.set(ref, `tree${depth + 1}`);
        await walk(ref, depth + 1, id);
      } else {
        const r = role.get(ref);
        expect(r === undefined || r === "data").toBe(true);
        role.set(ref, "data");
        const d = await io.readBlock(ref);
        const hits = [];
        for (let s = 0; s < QT_DQSTR_IN_BLK; s++) {
          const o = 16 + s * 72;
          if (!qtreeEntryUnused(d, o) && dv(d).getUint32(o, true) === id >>> 0) hits.push(s);
        }
        expect(hits, `id ${id} in block ${ref}`).toHaveLength(1);
        ids.push(id >>> 0);
      }
    }
    // An empty non-root tree block would have been freed.
    if (blk !== QT_TREEOFF) expect(b.some((x) => x !== 0)).toBe(true);
  };
  await walk(QT_TREEOFF, 0, 0);
  // Data blocks: entries count used slots.
  const data = [...role].filter(([, r]) => r === "data").map(([b]) => b);
  const notFull = new Set<number>();
  for (const b of data) {
    const d = await io.readBlock(b);
    let used = 0;
    for (let s = 0; s < QT_DQSTR_IN_BLK; s++) if (!qtreeEntryUnused(d, 16 + s * 72)) used++;
    expect(qtDiskDqdbheader.decode(d).dqdh_entries).toBe(used);
    if (used < QT_DQSTR_IN_BLK) notFull.add(b);
  }
  // The free-entry list: exactly the data blocks with a free slot, prev links right.
  const onList = new Set<number>();
  let prev = 0;
  for (let b = tree.info.dqi_free_entry; b !== 0; ) {
    expect(onList.has(b)).toBe(false);
    onList.add(b);
    const h = qtDiskDqdbheader.decode(await io.readBlock(b));
    expect(h.dqdh_prev_free).toBe(prev);
    prev = b;
    b = h.dqdh_next_free;
  }
  expect([...onList].sort((a, b) => a - b)).toEqual([...notFull].sort((a, b) => a - b));
  // The free-block list: blocks referenced by nothing else.
  for (let b = tree.info.dqi_free_blk; b !== 0; ) {
    expect(role.has(b), `free block ${b} is in use`).toBe(false);
    role.set(b, "free");
    b = qtDiskDqdbheader.decode(await io.readBlock(b)).dqdh_next_free;
  }
  expect(role.size).toBe(n);
  return ids.sort((a, b) => a - b);
}

/** The mutation script both sides run: inserts of `count` ids in random order, then removals of half. */
function script(seed: number, count: number): { inserts: DiskDquot[]; removals: number[] } {
  const rng = new Rng(seed);
  const ids = new Set<number>();
  while (ids.size < count) {
    // Mostly small ids (dense leaves, full data blocks), some anywhere in 32 bits.
    const r = rng.int(10);
    ids.add(r < 6 ? 1 + rng.int(5000) : r < 9 ? 60000 + rng.int(200000) : rng.int(2 ** 32 - 2) + 1);
  }
  const all = [...ids];
  for (let i = all.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  const inserts = all.map((id) => rec(id, { bsoftlimit: 1 + rng.int(1000), bhardlimit: 2000 + rng.int(1000), isoftlimit: rng.int(50), ihardlimit: 100 + rng.int(50) }));
  const removals = all.filter(() => rng.int(2) === 0);
  return { inserts, removals };
}

describe("QuotaTree", () => {
  it("creates an empty file with the root implied and finds nothing", async () => {
    const io = new MemoryQuotaFile();
    const t = await QuotaTree.create(io, USRQUOTA);
    expect(t.info).toMatchObject({ dqi_blocks: 2, dqi_free_blk: 0, dqi_free_entry: 0, dqi_bgrace: 604800, dqi_igrace: 604800 });
    expect(await t.find(0)).toBeNull();
    expect(await t.remove(5)).toBe(false);
    // dqi_blocks (2) counts the root, which no write has made yet: the kernel and e2fsprogs
    // refuse such a file, and so do we.
    await expect(QuotaTree.open(io, USRQUOTA)).rejects.toThrow(/dqi_blocks 2 but the file has 1 blocks/);
    await expect(QuotaTree.open(io, GRPQUOTA)).rejects.toThrow(/magic/);
  });

  it("inserts one id as mke2fs does: four tree levels and a data block (blocks 2..5)", async () => {
    const io = new MemoryQuotaFile();
    const t = await QuotaTree.create(io, USRQUOTA);
    await t.put(rec(0, { curspace: 13312, curinodes: 2 }));
    await t.writeInfo();
    expect(t.info).toMatchObject({ dqi_blocks: 6, dqi_free_entry: 5 });
    expect((await t.find(0))?.rec).toMatchObject({ curspace: 13312, curinodes: 2 });
    expect((await t.find(0))?.off).toBe(5 * 1024 + 16);
    expect(await checkStructure(t)).toEqual([0]);
  });

  it("updates in place, keeps 14 records per data block and reuses freed blocks", async () => {
    const t = await QuotaTree.create(new MemoryQuotaFile(), GRPQUOTA);
    for (let id = 1; id <= 30; id++) await t.put(rec(id, { curinodes: id }));
    expect(await checkStructure(t)).toHaveLength(30);
    const off = (await t.find(7))!.off;
    await t.put(rec(7, { curinodes: 70 }), off);
    expect((await t.find(7))?.rec.curinodes).toBe(70);
    const blocks = t.info.dqi_blocks;
    for (let id = 1; id <= 30; id++) expect(await t.remove(id)).toBe(true);
    expect(await checkStructure(t)).toEqual([]);
    expect(t.info.dqi_free_entry).toBe(0);
    expect(t.info.dqi_free_blk).not.toBe(0);
    for (let id = 100; id < 130; id++) await t.put(rec(id));
    expect(t.info.dqi_blocks).toBe(blocks); // all from the free-block list
    expect(await checkStructure(t)).toHaveLength(30);
  });

  it("holds 2,000 ids inserted in random order with half removed, readable after reopening", async () => {
    const { inserts, removals } = script(5, 2000);
    const io = new MemoryQuotaFile();
    const t = await QuotaTree.create(io, PRJQUOTA);
    for (const r of inserts) await t.put(r);
    for (const id of removals) expect(await t.remove(id)).toBe(true);
    await t.writeInfo();
    const t2 = await QuotaTree.open(new MemoryQuotaFile(io.bytes()), PRJQUOTA);
    const gone = new Set(removals);
    const kept = inserts.filter((r) => !gone.has(r.id));
    expect(await checkStructure(t2)).toEqual(kept.map((r) => r.id).sort((a, b) => a - b));
    const seen = new Map<number, DiskDquot>();
    for await (const { rec: r } of t2.records()) seen.set(r.id, r);
    for (const r of kept) expect(seen.get(r.id)).toEqual(r);
    for (const id of removals.slice(0, 50)) expect(await t2.find(id)).toBeNull();
  });

  it("refuses references outside the file", async () => {
    const io = new MemoryQuotaFile();
    const t = await QuotaTree.create(io, USRQUOTA);
    await t.put(rec(1, { curinodes: 1 }));
    await t.writeInfo();
    const bytes = io.bytes();
    new DataView(bytes.buffer).setUint32(QT_BLKSIZE, 99, true); // root -> block 99
    const bad = await QuotaTree.open(new MemoryQuotaFile(bytes), USRQUOTA);
    await expect(bad.find(1)).rejects.toThrow(/outside/);
  });

  it("builds an empty-record-free file: ids with no usage and no limits are left out", async () => {
    const bytes = await buildQuotaFile(USRQUOTA, [rec(5), rec(0, { curinodes: 1 })]);
    const t = await QuotaTree.open(new MemoryQuotaFile(bytes), USRQUOTA);
    expect(await checkStructure(t)).toEqual([0]);
  });
});

// ---------------------------------------------------------------------------------------
// Oracles

const work = mkdtempSync(path.join(tmpdir(), "ext4ts-qtree-"));
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

const mke2fsOracle = oracleAvailability(["mke2fs", "debugfs"]);

describe.skipIf(!mke2fsOracle.ok)("buildQuotaFile equals mke2fs 1.47.0's quota files", () => {
  oracleGate(mke2fsOracle);
  const cases: { name: string; args: string[] }[] = [
    { name: "1k", args: ["-b", "1024", "-O", "quota,project", "-E", "quotatype=usrquota:grpquota:prjquota"] },
    { name: "4k", args: ["-b", "4096", "-O", "quota,project", "-E", "quotatype=usrquota:grpquota:prjquota"] },
    { name: "owner", args: ["-b", "4096", "-O", "quota", "-E", "root_owner=1000:300"] },
    { name: "ext2", args: ["-t", "ext2", "-b", "1024", "-O", "quota"] },
  ];
  for (const c of cases) {
    it(`for ${c.name}`, async () => {
      const img = path.join(work, `${c.name}.img`);
      run(tool("mke2fs"), ["-q", "-F", ...(c.args.includes("-t") ? [] : ["-t", "ext4"]), ...c.args, img, "16M"], { env: { ...process.env, E2FSPROGS_FAKE_TIME: "1700000000" } });
      const dev = await FileDevice.open(img, { readOnly: true });
      const fs = await Ext4Fs.mount(dev);
      try {
        const inums: [QuotaTypeIndex, number][] = [[USRQUOTA, fs.sb.s_usr_quota_inum], [GRPQUOTA, fs.sb.s_grp_quota_inum], [PRJQUOTA, fs.sb.s_prj_quota_inum]];
        const usage = await computeQuotaUsage(fs);
        let compared = 0;
        for (const [type, ino] of inums) {
          if (ino === 0) continue;
          const out = path.join(work, `${c.name}.${ino}.bin`);
          run(tool("debugfs"), ["-R", `dump <${ino}> ${out}`, img]);
          const theirs = new Uint8Array(readFileSync(out));
          const u = usage.get(type === USRQUOTA ? "usr" : type === GRPQUOTA ? "grp" : "prj")!;
          const mine = await buildQuotaFile(type, [...u].map(([id, v]) => rec(id, { curspace: v.space, curinodes: v.inodes })));
          // i_size is the end of the last quota block written, not a whole filesystem block.
          expect(theirs.length).toBe(mine.length);
          expect(Buffer.from(mine).equals(Buffer.from(theirs))).toBe(true);
          compared++;
        }
        expect(compared).toBe(c.args.join(" ").includes("prjquota") ? 3 : 2);
      } finally {
        await fs.unmount();
      }
    });
  }
});

const quotaToolsOracle = oracleAvailability(["mke2fs", "setquota", "repquota"], { loop: true });

describe.skipIf(!quotaToolsOracle.ok)("the tree agrees with quota-tools (setquota/repquota on quota files, quotas off)", () => {
  oracleGate(quotaToolsOracle);

  it("2,000 random inserts and 1,000 removals give the same bytes; repquota lists the same records", async () => {
    const img = path.join(work, "plain.img");
    const mnt = path.join(work, "mnt");
    run("mkdir", ["-p", mnt]);
    run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", img, "16M"]);
    run(tool("mount"), ["-o", "loop,usrquota", img, mnt]);
    try {
      const start = await buildQuotaFile(USRQUOTA, [rec(0, { curspace: 13312, curinodes: 2 })]);
      const file = path.join(mnt, "aquota.user");
      writeFileSync(file, start);
      const { inserts, removals } = script(11, 2000);
      const line = (r: DiskDquot): string => `${r.id} ${r.bsoftlimit} ${r.bhardlimit} ${r.isoftlimit} ${r.ihardlimit}`;
      run(tool("setquota"), ["-b", "-u", "-F", "vfsv1", mnt], { input: `${inserts.map(line).join("\n")}\n` });
      run(tool("setquota"), ["-b", "-u", "-F", "vfsv1", mnt], { input: `${removals.map((id) => `${id} 0 0 0 0`).join("\n")}\n` });
      const theirs = new Uint8Array(readFileSync(file));

      const io = new MemoryQuotaFile(start);
      const t = await QuotaTree.open(io, USRQUOTA);
      for (const r of inserts) await t.put(r);
      for (const id of removals) await t.remove(id);
      if (t.infoDirty) await t.writeInfo();
      const mine = io.bytes();
      expect(mine.length).toBe(theirs.length);
      const firstDiff = mine.findIndex((b, i) => b !== theirs[i]);
      expect(firstDiff, `first differing byte at ${firstDiff} (block ${firstDiff >> 10})`).toBe(-1);

      // repquota -v -n: every id with limits, usage 0 (root's 13 KiB, 2 files).
      const rep = run(tool("repquota"), ["-v", "-n", "-u", "-F", "vfsv1", mnt]).stdout;
      const listed = new Map<number, number[]>();
      for (const l of rep.split("\n")) {
        const m = /^#(\d+)\s+[-+]{2}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(l);
        if (m !== null) listed.set(Number(m[1]), m.slice(2, 8).map(Number));
      }
      const mineListed = new Map<number, number[]>();
      for await (const { rec: r } of t.records()) mineListed.set(r.id, [Math.ceil(r.curspace / 1024), r.bsoftlimit, r.bhardlimit, r.curinodes, r.isoftlimit, r.ihardlimit]);
      expect(listed.size).toBe(inserts.length - removals.length + 1);
      expect(listed).toEqual(mineListed);
    } finally {
      runUnchecked(tool("umount"), [mnt]);
    }
  });
});
