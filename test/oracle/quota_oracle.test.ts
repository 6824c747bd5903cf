/**
 * Quota accounting against e2fsck: images made with `ext4ts mkfs` and with `mke2fs`
 * (`-O quota,project -E quotatype=usrquota:grpquota:prjquota`) get, through the Volume API,
 * delalloc writes, truncates, xattrs (in the block, shared between owners), unlinks (one of an
 * open file), chown (with reservations pending), setProjectId and project inheritance, as
 * several uids, gids and project ids. After unmount `e2fsck -fn` must exit 0 — it recounts
 * every inode's blocks and each id's usage and compares them with the quota files — and the
 * independent audit (quota_audit.ts: blocks counted from the trees, summed per id) must equal
 * the quota files too.
 *
 * EDQUOT under concurrency: writers of one uid (Promise.all) fill its hard limit; every
 * accepted byte is on disk after sync, a refused or short write leaves nothing past what it
 * reported, the usage stays within the limit (plus writeback's tree blocks, which are charged
 * without limit by design) and the image is clean.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import type { MemoryDevice } from "../../src/device/memory.js";
import { FsError } from "../../src/errors.js";
import { runDir } from "./images.js";
import { oracleAvailability, oracleGate, runAsync, runUnchecked, tool } from "./oracle_env.js";
import { auditVolume, compareQuota, deviceOf, mkfsBytes, syncAndAudit } from "./quota_audit.js";
import { outcome } from "../outcome.js";

const tools = oracleAvailability(["mke2fs", "e2fsck"]);
const QUOTA_EXT = "quotatype=usrquota:grpquota:prjquota";

interface ImageCase {
  name: string;
  make(): Promise<Uint8Array>;
}

const IMAGES: ImageCase[] = [
  { name: "ext4ts mkfs, 4 KiB", make: () => mkfsBytes("48M", { blockSize: "4096", inodeSize: "256", features: ["quota,project"], extended: [`${QUOTA_EXT},hash_seed=8f3e2d1c-0b4a-4c5d-8e6f-7a8b9c0d1e2f`] }) },
  {
    name: "mke2fs, 1 KiB",
    async make() {
      const dir = path.join(runDir(), "quota-oracle");
      mkdirSync(dir, { recursive: true });
      const img = path.join(dir, "mke2fs-1k.img");
      rmSync(img, { force: true });
      await runAsync(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-b", "1024", "-I", "256", "-O", "quota,project", "-E", QUOTA_EXT, img, "24M"]);
      return new Uint8Array(readFileSync(img));
    },
  },
];

/** Unmount, save, run e2fsck -fn (must exit 0) and audit the quota files of the saved image. */
async function unmountAndCheck(vol: Volume, dev: MemoryDevice, name: string): Promise<void> {
  expect(await syncAndAudit(vol)).toEqual([]);
  await vol.unmount();
  const bytes = dev.toBytes();
  const dir = path.join(runDir(), "quota-oracle");
  mkdirSync(dir, { recursive: true });
  const img = path.join(dir, `${name.replace(/[^a-z0-9]+/gi, "-")}.img`);
  writeFileSync(img, bytes);
  const fsck = runUnchecked(tool("e2fsck"), ["-fn", img]);
  expect(fsck.status, `e2fsck -fn ${img}:\n${fsck.stdout}${fsck.stderr}`).toBe(0);
  const ro = await Volume.mount(deviceOf(bytes));
  const after = await auditVolume(ro.fs);
  expect(after.problems).toEqual([]);
  expect(await compareQuota(ro.quota!, after.usage)).toEqual([]);
  await ro.unmount();
  rmSync(img, { force: true });
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe("quota accounting: oracle prerequisites", () => {
  oracleGate(tools, "e2fsprogs (mke2fs, e2fsck) is available");
});

for (const img of IMAGES) {
  describe.skipIf(!tools.ok)(`quota accounting on ${img.name}`, () => {
    it("writes, truncates, xattrs (shared), unlinks, chown and project ids as several ids: e2fsck -fn agrees with the quota files", async () => {
      const dev = deviceOf(await img.make());
      const vol = await Volume.mount(dev, { readOnly: false });
      const bs = vol.fs.blockSize;
      const owners = [
        [1000, 100],
        [1001, 100],
        [1002, 200],
      ] as const;
      await vol.mkdir("/proj");
      await vol.setProjectId("/proj", 7, { inherit: true });
      const files: string[] = [];
      for (const [i, [uid, gid]] of owners.entries()) {
        await vol.mkdir(`/u${uid}`);
        await vol.chown(`/u${uid}`, uid, gid);
        for (let k = 0; k < 3; k++) {
          const f = k === 2 ? `/proj/f${uid}` : `/u${uid}/f${k}`;
          await vol.writeFile(f, "");
          await vol.chown(f, uid, gid);
          files.push(f);
          // Delalloc writes of various sizes and offsets (sparse too).
          await vol.appendFile(f, pattern((i + 1) * 3 * bs + 100 * k, i * 10 + k));
          const fh = await vol.open(f, "r+");
          await fh.write(pattern(2 * bs + 7, 99 + k), 0, 2 * bs + 7, (40 + 13 * k) * bs);
          await fh.close();
        }
      }
      // Big xattrs: in the block; one set shared by three owners' files.
      const shared = pattern(900, 5);
      for (const f of files.slice(0, 5)) await vol.setxattr(f, "user.big", f.endsWith("f0") || f.startsWith("/proj") ? shared : pattern(700, f.length));
      await vol.setxattr("/proj", "user.dir", pattern(800, 3));
      // Half written back, half still delayed.
      await vol.sync();
      for (const f of files) await vol.appendFile(f, pattern(bs + 1, 7));
      // chown with reservations pending, to an id that had nothing.
      await vol.chown(files[0]!, 1003, 300);
      // Project changes with data and pending pages.
      await vol.setProjectId(files[1]!, 11);
      await vol.setProjectId(files[6]!, 0);
      // Truncates: shrink (delayed and allocated), grow.
      await vol.truncate(files[2]!, 3 * bs + 5);
      await vol.truncate(files[3]!, 0);
      await vol.truncate(files[4]!, 60 * bs);
      // xattr changes: replace a shared set (clone), remove another.
      await vol.setxattr(files[0]!, "user.big", pattern(901, 6));
      await vol.removexattr(files[2]!, "user.big");
      // Unlink, one of them still open and written after the unlink.
      await vol.unlink(files[5]!);
      const open = await vol.open(files[7]!, "r+");
      await vol.unlink(files[7]!);
      await open.write(pattern(3 * bs, 8), 0, 3 * bs, 0);
      expect((await vol.getQuota("usr", owners[2][0])).curinodes).toBeGreaterThan(0);
      await open.close();
      // Crossing project trees.
      expect(await outcome(vol.rename(files[0]!, "/proj/moved"))).toBe("EXDEV");
      expect(await outcome(vol.link(files[1]!, "/proj/linked"))).toBe("EXDEV");
      await vol.rename(files[8]!, "/proj/renamed"); // same project (7): fine
      await unmountAndCheck(vol, dev, img.name);
    });

    it("EDQUOT with concurrent writers: accepted writes all reach the disk, refused ones change nothing, the image is clean", async () => {
      const dev = deviceOf(await img.make());
      const vol = await Volume.mount(dev, { readOnly: false });
      const bs = vol.fs.blockSize;
      const uid = 1000;
      const limitBlocks = 40;
      await vol.mkdir("/q");
      const names = [0, 1, 2, 3, 4].map((i) => `/q/w${i}`);
      for (const f of names) {
        await vol.writeFile(f, "");
        await vol.chown(f, uid, 100);
      }
      await vol.setQuota("usr", uid, { bhardlimit: limitBlocks * bs });
      const accepted = new Map<string, number>();
      const refused: string[] = [];
      await Promise.all(
        names.map(async (f, i) => {
          const fh = await vol.open(f, "r+");
          let pos = 0;
          try {
            for (let k = 0; k < 6; k++) {
              const chunk = pattern(3 * bs - 100 + 50 * i, i * 100 + k);
              let r: { bytesWritten: number };
              try {
                r = await fh.write(chunk, 0, chunk.length, pos);
              } catch (e) {
                if (e instanceof FsError && e.code === "EDQUOT") {
                  refused.push(f);
                  break;
                }
                throw e;
              }
              pos += r.bytesWritten;
              if (r.bytesWritten < chunk.length) break; // a short write at the limit
              if (k % 2 === 1) await fh.syncRange(0, 0);
            }
          } finally {
            accepted.set(f, pos);
            await fh.close();
          }
        }),
      );
      // Also an xattr at the limit: EDQUOT, nothing changed.
      expect(await outcome(vol.setxattr(names[0]!, "user.big", pattern(800, 1)))).toBe("EDQUOT");
      expect(await vol.listxattr(names[0]!)).toEqual([]);
      await vol.sync();
      expect(refused.length).toBeGreaterThan(0);
      for (const [i, f] of names.entries()) {
        const n = accepted.get(f)!;
        const data = await vol.readFile(f);
        expect(data.length, f).toBe(n);
        // Every accepted byte, in order (each chunk continues where the last one stopped).
        let off = 0;
        for (let k = 0; off < n; k++) {
          const chunk = pattern(3 * bs - 100 + 50 * i, i * 100 + k);
          const take = Math.min(chunk.length, n - off);
          expect(Buffer.from(data.subarray(off, off + take)).equals(Buffer.from(chunk.subarray(0, take))), `${f} chunk ${k}`).toBe(true);
          off += take;
        }
      }
      const u = await vol.getQuota("usr", uid);
      const total = [...accepted.values()].reduce((a, b) => a + b, 0);
      expect(u.curspace).toBeGreaterThanOrEqual(Math.ceil(total / bs) * 0 + total - names.length * bs);
      expect(u.curspace).toBeLessThanOrEqual(limitBlocks * bs + 4 * bs); // + tree blocks (nofail)
      expect(u.rsvspace).toBe(0);
      await unmountAndCheck(vol, dev, `${img.name}-edquot`);
    });
  });
}
