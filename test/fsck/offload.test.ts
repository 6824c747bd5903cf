/**
 * The CLI's inode sanity helper thread (tools/cli/fsck_offload.ts, run from dist/ as the CLI
 * runs it: a worker thread cannot load TypeScript): `check` gives the same report with and
 * without it, on the clean fixture and with inodes damaged (bad checksums, garbage blocks);
 * the thread and this one judging slices of many chunks side by side give inodeBlockSanity's
 * verdicts; and a helper that never judges, or dies holding a slice, changes nothing.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { MemoryDevice } from "../../src/device/memory.js";
import { check, formatProblem, type CheckOptions, type FsckReport } from "../../src/fsck/check.js";
import { SanityRing, inodeBlockSanity, type SanityGeometry, type SanityHelper } from "../../src/fsck/sanity.js";
import type * as OffloadModule from "../../tools/cli/fsck_offload.js";

type Offload = typeof OffloadModule;
const offload = (await import(pathToFileURL(new URL("../../dist/tools/cli/fsck_offload.js", import.meta.url).pathname).href)) as Offload;

const FIXTURE = new Uint8Array(gunzipSync(readFileSync(new URL("../images/f_engine_small/image.gz", import.meta.url))));
// Where the fixture's inode table is, from its superblock and first group descriptor.
const sb = new DataView(FIXTURE.buffer, 1024, 1024);
const blockSize = 1024 << sb.getUint32(24, true);
const inodeSize = sb.getUint16(88, true);
const descAt = blockSize === 1024 ? 2048 : blockSize;
const inodeTable = new DataView(FIXTURE.buffer).getUint32(descAt + 8, true) * blockSize;

function said(r: FsckReport): unknown {
  return { problems: r.problems.map((p) => formatProblem(p)), exit: r.exitCode, summary: r.summaryLine };
}

async function run(bytes: Uint8Array, opts: CheckOptions = {}): Promise<FsckReport> {
  return check(MemoryDevice.from(bytes.slice()), { force: true, name: "t", ...opts });
}

/** Damaged copies: one inode's bytes changed (checksum now bad), and a whole block of inodes garbage. */
function damaged(): Uint8Array[] {
  const one = FIXTURE.slice();
  const at = inodeTable + 11 * inodeSize + 4; // inode 12's size: its checksum no longer holds
  one[at] = one[at]! ^ 0x40;
  const block = FIXTURE.slice();
  for (let i = 0; i < blockSize; i++) block[inodeTable + blockSize + i] = (i * 131) & 0xff;
  return [one, block];
}

describe("fsck inode sanity helper thread (CLI)", () => {
  it("gives the report the main thread gives, clean and damaged", async () => {
    for (const bytes of [FIXTURE, ...damaged()]) {
      const alone = await run(bytes);
      for (const prestart of [false, true]) {
        const helped = await run(bytes, { sanityHelper: offload.sanityHelpers(0, prestart) });
        expect(said(helped)).toEqual(said(alone));
      }
    }
    // The damage is seen (so the comparison above covers bad verdicts and garbage blocks).
    const [one, block] = damaged();
    expect((await run(one!)).problems.map((p) => p.name)).toContain("PR_1_INODE_ONLY_CSUM_INVALID");
    expect((await run(block!)).problems.map((p) => p.name)).toContain("PR_1_INODE_IS_GARBAGE");
  });

  it("shares many chunks with this thread and gives inodeBlockSanity's verdicts", async () => {
    const g: SanityGeometry = { inodeSize: 256, blockSize: 4096, metadataCsum: true, csumSeed: 77, firstDataBlock: 0, blocksCount: 1 << 20 };
    const bytes = 64 * 4096;
    const ring = SanityRing.create(4, bytes, g, true);
    const made = offload.sanityHelpers(0)(1 << 20, ring);
    if (made === undefined) throw new Error("no helper thread");
    try {
      // Random bytes: bad checksums and garbage blocks everywhere, 40 chunks through 4 slots.
      let x = 1;
      for (let i = 0; i < 40; i++) {
        const slot = i % 4;
        const data = ring.slots[slot]!.data;
        for (let k = 0; k < data.length; k++) {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          data[k] = (i & 1) === 0 ? x >>> 24 : k % 512 < 256 ? x >>> 24 : 0; // every other chunk half zeros
        }
        const firstIno = 1 + i * 1024;
        ring.load(slot, firstIno, 1024, bytes);
        made.post(slot);
        if (i === 0) {
          // The thread (still starting) takes the first chunk's slices while this one waits.
          const until = Date.now() + 5000;
          while (ring.judged(slot) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
          expect(ring.judged(slot)).toBeGreaterThan(0);
        }
        expect(ring.finish(slot, 5000)).toBe(true);
        const want = inodeBlockSanity(data.slice(), firstIno, 1024, g);
        expect([...ring.slots[slot]!.csums.subarray(0, 1024)]).toEqual([...want.csums]);
        expect([...ring.slots[slot]!.insane.subarray(0, 64)]).toEqual([...want.insane]);
      }
    } finally {
      await made.close();
    }
  });

  it("is not started for small scans", () => {
    const g: SanityGeometry = { inodeSize: 256, blockSize: 4096, metadataCsum: true, csumSeed: 0, firstDataBlock: 0, blocksCount: 1 };
    expect(offload.sanityHelpers()(1000, SanityRing.create(1, 4096, g, true))).toBeUndefined();
    expect(offload.sanityHelpers(undefined, true)(1000, SanityRing.create(1, 4096, g, true))).toBeUndefined();
  });

  it("changes nothing when the helper never judges or dies holding a slice", async () => {
    let posts = 0;
    const idle: SanityHelper = {
      post: () => {
        posts++;
      },
      close: () => Promise.resolve(),
    };
    let held = 0;
    const dying = (ring: SanityRing): SanityHelper => ({
      post: (slot) => {
        if (held === 0 && ring.claimSlice(slot, 0)) held++; // claimed, never judged
      },
      close: () => Promise.resolve(),
    });
    for (const bytes of [FIXTURE, ...damaged()]) {
      const alone = await run(bytes);
      expect(said(await run(bytes, { sanityHelper: () => idle }))).toEqual(said(alone));
      held = 0;
      expect(said(await run(bytes, { sanityHelper: (_n, ring) => dying(ring) }))).toEqual(said(alone));
      expect(held).toBe(1);
    }
    expect(posts).toBeGreaterThan(0);
  });
});
