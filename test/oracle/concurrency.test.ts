/**
 * Many operations at once (Promise.all) through the public API: each worker owns a file (and
 * a directory) and runs a random sequence of writes, truncates, xattr changes, fsyncs,
 * sync_file_range, renames and re-creations, while the others do the same and a sync runs
 * now and then. Every lock acquire is a scheduling point that yields (ControlledScheduler
 * yieldEvery), so operations interleave at every await. Afterwards: no reservation left,
 * every file's bytes and xattrs equal what its worker wrote, e2fsck -fn clean, and the lock
 * order checker (on by default) never fired.
 */

import { afterAll, describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import { FileDevice } from "../../src/device/file.js";
import { isFsError } from "../../src/errors.js";
import { inodeTable } from "../../src/fs/inode_core.js";
import { ControlledScheduler } from "../../src/sync/scheduler.js";
import { Rng } from "./trees.js";
import { cleanupImages, scratchImage } from "./images.js";
import { oracleAvailability, oracleGate, runUnchecked, tool } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck"], {});

interface Model {
  path: string;
  data: Uint8Array;
  xattrs: Map<string, Uint8Array>;
}

function writeModel(m: Model, pos: number, bytes: Uint8Array): void {
  const end = Math.max(m.data.length, pos + bytes.length);
  const next = new Uint8Array(end);
  next.set(m.data);
  next.set(bytes, pos);
  m.data = next;
}

async function worker(vol: Volume, k: number, rng: Rng, steps: number, counts: Map<string, number>): Promise<Model> {
  await vol.mkdir(`/d${k}`);
  const m: Model = { path: `/d${k}/f`, data: new Uint8Array(0), xattrs: new Map() };
  await vol.writeFile(m.path, new Uint8Array(0));
  const bs = vol.fs.blockSize;
  for (let i = 0; i < steps; i++) {
    const what = rng.int(10);
    const tally = (name: string): void => {
      counts.set(name, (counts.get(name) ?? 0) + 1);
    };
    if (what <= 3) {
      const pos = rng.int(64) * (rng.int(2) === 0 ? bs : 333);
      const bytes = rng.bytes(1 + rng.int(3 * bs));
      const fh = await vol.open(m.path, "r+");
      const { bytesWritten } = await fh.write(bytes, 0, bytes.length, pos);
      expect(bytesWritten).toBe(bytes.length);
      await fh.close();
      writeModel(m, pos, bytes);
      tally("write");
    } else if (what === 4) {
      const size = rng.int(m.data.length + 2 * bs);
      await vol.truncate(m.path, size);
      const next = new Uint8Array(size);
      next.set(m.data.subarray(0, Math.min(size, m.data.length)));
      m.data = next;
      tally("truncate");
    } else if (what === 5) {
      const name = `user.k${rng.int(4)}`;
      const value = rng.bytes(rng.int(2) === 0 ? 20 : 1200); // some need the xattr block
      try {
        await vol.setxattr(m.path, name, value);
        m.xattrs.set(name, value);
        tally("setxattr");
      } catch (e) {
        if (!isFsError(e, "ENOSPC")) throw e; // no room in the inode and one block: nothing changed
        tally("setxattr ENOSPC");
      }
    } else if (what === 6 && m.xattrs.size > 0) {
      const name = [...m.xattrs.keys()][rng.int(m.xattrs.size)]!;
      await vol.removexattr(m.path, name);
      m.xattrs.delete(name);
      tally("removexattr");
    } else if (what === 7) {
      const fh = await vol.open(m.path, "r");
      if (rng.int(2) === 0) await fh.sync();
      else await fh.syncRange(rng.int(8) * bs, rng.int(8) * bs);
      await fh.close();
      tally("fsync");
    } else if (what === 8) {
      // Replace by rename: a new file with the same contents takes the name (auto_da_alloc).
      const tmp = `${m.path}.new`;
      await vol.writeFile(tmp, m.data);
      for (const [n, v] of m.xattrs) await vol.setxattr(tmp, n, v);
      await vol.rename(tmp, m.path);
      tally("rename");
    } else {
      await vol.sync();
      tally("sync");
    }
  }
  return m;
}

describe("concurrent operations interleaved at every lock", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });

  for (const [name, args] of [
    ["ext4 1k", ["-t", "ext4", "-b", "1024", "-I", "256"]],
    ["ext4 4k", ["-t", "ext4", "-b", "4096"]],
  ] as const) {
    it.skipIf(!oracle.ok)(`${name}: six workers, e2fsck clean, contents and xattrs as written`, async () => {
      const img = scratchImage("concurrency", args, "64M");
      const vol = await Volume.mount(await FileDevice.open(img), { readOnly: false, writebackIntervalMs: 0, dirtyLimitBytes: 256 * 1024 });
      vol.fs.syncDomain.scheduler = new ControlledScheduler({ yieldEvery: true });
      const counts = new Map<string, number>();
      const models = await Promise.all(Array.from({ length: 6 }, (_, k) => worker(vol, k, new Rng(100 + k), 60, counts)));
      for (const m of models) {
        const got = await vol.readFile(m.path);
        expect(Buffer.compare(got, m.data), m.path).toBe(0);
        for (const [n, v] of m.xattrs) expect(Buffer.compare(await vol.getxattr(m.path, n), v), `${m.path} ${n}`).toBe(0);
        expect((await vol.listxattr(m.path)).filter((n) => n.startsWith("user.")).sort()).toEqual([...m.xattrs.keys()].sort());
      }
      await vol.sync();
      expect(vol.fs.dirtyClusters).toBe(0);
      for (const c of inodeTable(vol.fs).all()) expect(c.reservedDataBlocks, `inode ${c.ino}`).toBe(0);
      await vol.unmount();
      const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      console.log(`concurrency ${name}: ${[...counts].map(([k, v]) => `${k} ${v}`).join(", ")}`);
      expect(counts.get("write") ?? 0).toBeGreaterThan(50);
    }, 120_000);
  }
});
