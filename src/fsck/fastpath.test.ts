/**
 * Pass 1's fastInode and pass 2's plainEntry must change nothing the checker says: on
 * volumes damaged at random (bytes of inodes in use and of directory blocks, with the
 * inode checksum resealed or not), `check` with and without the fast paths gives the same
 * problems, messages, counts and exit code. Two volumes: the ext4 fixture (metadata_csum,
 * extents, htree) and an ext2 one with 1 KiB blocks (block maps, no checksums).
 */
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { mkfsDevice } from "../../tools/mkfs/mkfs.js";
import { Volume } from "../api/promises.js";
import { MemoryDevice } from "../device/memory.js";
import { inodeChecksum, inodeChecksumSeed, inodeHasChecksumHi } from "../format/checksum.js";
import { inodeStruct } from "../format/inode.js";
import { iget, inodeLocation } from "../fs/inode.js";
import { mapBlocks } from "../fs/read.js";
import { check, formatProblem, type FsckReport } from "./check.js";

interface Target {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly inodeSize: number;
  readonly csumSeed: number;
  readonly metadataCsum: boolean;
  /** Byte offsets of the inodes in use, with their numbers. */
  readonly inodes: readonly { ino: number; at: number }[];
  /** Byte ranges of directory blocks. */
  readonly dirBlocks: readonly number[];
  readonly blockSize: number;
}

const FIXTURE = new Uint8Array(gunzipSync(readFileSync(new URL("../../test/images/f_engine_small/image.gz", import.meta.url))));

async function describeVolume(name: string, bytes: Uint8Array): Promise<Target> {
  const vol = await Volume.mount(MemoryDevice.from(bytes.slice()), { readOnly: true });
  try {
    const fs = vol.fs;
    const inodes: { ino: number; at: number }[] = [];
    const dirBlocks: number[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await vol.readdir(dir)) {
        const p = dir === "/" ? `/${e}` : `${dir}/${e}`;
        const st = await vol.lstat(p);
        const loc = inodeLocation(fs, st.ino);
        inodes.push({ ino: st.ino, at: loc.block * fs.blockSize + loc.offset });
        if (st.isDirectory()) {
          const ind = await iget(fs, st.ino);
          for (let l = 0; l * fs.blockSize < st.size; l++) {
            const m = await mapBlocks(fs, ind, l, 1);
            if (m.pblk !== 0) dirBlocks.push(m.pblk * fs.blockSize);
          }
          await walk(p);
        }
      }
    };
    await walk("/");
    return { name, bytes, inodeSize: fs.inodeSize, csumSeed: fs.csumSeed, metadataCsum: fs.features.metadataCsum, inodes, dirBlocks, blockSize: fs.blockSize };
  } finally {
    await vol.unmount();
  }
}

async function ext2Volume(): Promise<Uint8Array> {
  const dev = new MemoryDevice(8 * 1024 * 1024);
  await mkfsDevice(dev, { fsType: "ext2", blockSize: "1024", quiet: true, now: 1_700_000_000 });
  const vol = await Volume.mount(dev, { readOnly: false });
  try {
    for (let d = 0; d < 4; d++) {
      await vol.mkdir(`/d${d}`);
      for (let f = 0; f < 30; f++) await vol.writeFile(`/d${d}/file-${f}`, new Uint8Array((f * 397) % 9000).fill(f));
    }
    await vol.writeFile("/d0/big", new Uint8Array(40 * 1024).fill(7)); // past the 12 direct blocks
    await vol.symlink("d0/file-1", "/link");
  } finally {
    await vol.unmount();
  }
  return dev.toBytes();
}

let targets: Target[] = [];

beforeAll(async () => {
  targets = [await describeVolume("ext4 fixture", FIXTURE), await describeVolume("ext2 1k", await ext2Volume())];
});

/** What a report says, for comparing. */
function said(r: FsckReport): unknown {
  return { problems: r.problems.map((p) => formatProblem(p)), exit: r.exitCode, summary: r.summaryLine, counts: r.summary };
}

async function both(bytes: Uint8Array): Promise<{ fast: unknown; full: unknown; fastReport: FsckReport }> {
  const fastReport = await check(MemoryDevice.from(bytes.slice()), { force: true, name: "t" });
  const fullReport = await check(MemoryDevice.from(bytes.slice()), { force: true, name: "t", fastPath: false });
  return { fast: said(fastReport), full: said(fullReport), fastReport };
}

function reseal(t: Target, b: Uint8Array, ino: number, at: number): void {
  const gen = inodeStruct.decode(b, at, 128).i_generation;
  const c = inodeChecksum(b, at, t.inodeSize, inodeChecksumSeed(t.csumSeed, ino, gen));
  b[at + 0x7c] = c & 0xff;
  b[at + 0x7d] = (c >>> 8) & 0xff;
  if (inodeHasChecksumHi(b, at, t.inodeSize)) {
    b[at + 0x82] = (c >>> 16) & 0xff;
    b[at + 0x83] = c >>> 24;
  }
}

describe("fsck fast paths (pass 1 fastInode, pass 2 plainEntry)", () => {
  it("change nothing on the clean volumes, which are clean", async () => {
    expect(targets.length).toBe(2);
    for (const t of targets) {
      expect(t.inodes.length).toBeGreaterThan(5);
      expect(t.dirBlocks.length).toBeGreaterThan(2);
      const r = await both(t.bytes);
      expect(r.fast).toEqual(r.full);
      expect(r.fastReport.exitCode).toBe(0);
    }
  });

  it("change nothing on inodes damaged at random (checksum resealed or not)", { timeout: 120_000 }, async () => {
    let damaged = 0;
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 4 }), fc.boolean(), fc.nat(), async (ti, ii, value, count, seal, pos) => {
        const t = targets[ti % targets.length]!;
        const b = t.bytes.slice();
        const { ino, at } = t.inodes[ii % t.inodes.length]!;
        // A few bytes of the fields the fast path reads (the first 0x84 and i_projid's area).
        for (let k = 0; k < count; k++) b[at + ((pos + k * 37) % Math.min(t.inodeSize, 0xa0))] = (value + k * 91) & 0xff;
        if (seal && t.metadataCsum) reseal(t, b, ino, at);
        const r = await both(b);
        if (r.fastReport.exitCode !== 0) damaged++;
        expect(r.fast).toEqual(r.full);
      }),
      { numRuns: 150, seed: 20261124 },
    );
    // The property is only worth something if the damage is seen.
    expect(damaged).toBeGreaterThan(50);
  });

  it("change nothing on directory blocks damaged at random", { timeout: 120_000 }, async () => {
    let damaged = 0;
    // Values that mean something in an entry are drawn more often: '.', '/', NUL, small inode numbers and lengths.
    const byte = fc.oneof(fc.constantFrom(0, 1, 2, 0x2e, 0x2f, 0xff), fc.integer({ min: 0, max: 255 }));
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.nat(), fc.nat(), byte, async (ti, bi, pos, value) => {
        const t = targets[ti % targets.length]!;
        const b = t.bytes.slice();
        const at = t.dirBlocks[bi % t.dirBlocks.length]!;
        b[at + (pos % t.blockSize)] = value;
        const r = await both(b);
        if (r.fastReport.exitCode !== 0) damaged++;
        expect(r.fast).toEqual(r.full);
      }),
      { numRuns: 150, seed: 20261124 },
    );
    expect(damaged).toBeGreaterThan(30);
  });
});
