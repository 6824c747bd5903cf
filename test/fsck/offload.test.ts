/**
 * The CLI's inode sanity worker (tools/cli/fsck_offload.ts, run from dist/ as the CLI runs
 * it: a worker thread cannot load TypeScript): `check` gives the same report with and
 * without it, on the clean fixture and with inodes damaged (bad checksums, garbage blocks),
 * and falls back to judging chunks itself when the worker fails.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { MemoryDevice } from "../../src/device/memory.js";
import { check, formatProblem, type CheckOptions, type FsckReport } from "../../src/fsck/check.js";
import type { SanityWorker } from "../../src/fsck/sanity.js";
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

describe("fsck inode sanity worker (CLI)", () => {
  it("gives the report the main thread gives, clean and damaged", async () => {
    for (const bytes of [FIXTURE, ...damaged()]) {
      const alone = await run(bytes);
      const helped = await run(bytes, { sanityWorker: offload.sanityWorkers(0) });
      expect(said(helped)).toEqual(said(alone));
    }
    // The damage is seen (so the comparison above covers bad verdicts and garbage blocks).
    const [one, block] = damaged();
    expect((await run(one!)).problems.map((p) => p.name)).toContain("PR_1_INODE_ONLY_CSUM_INVALID");
    expect((await run(block!)).problems.map((p) => p.name)).toContain("PR_1_INODE_IS_GARBAGE");
  });

  it("is not started for small scans", () => {
    expect(offload.sanityWorkers()(1000)).toBeUndefined();
  });

  it("falls back to the main thread when the worker fails, with the same report", async () => {
    let runs = 0;
    const broken: SanityWorker = {
      run: () => {
        runs++;
        return Promise.reject(new Error("worker died"));
      },
      close: () => Promise.resolve(),
    };
    for (const bytes of [FIXTURE, ...damaged()]) {
      const alone = await run(bytes);
      const fell = await run(bytes, { sanityWorker: () => broken });
      expect(said(fell)).toEqual(said(alone));
    }
    expect(runs).toBeGreaterThan(0);
  });
});
