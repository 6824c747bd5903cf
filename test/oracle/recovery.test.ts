/**
 * Journal replay (src/journal/recovery.ts) against e2fsprogs 1.47 and the kernel, on logs
 * written by real tools:
 *   - debugfs' journal commands (jo/jw/jc): transactions with revokes, an escaped block and
 *     an uncommitted tail, on a 4 KiB metadata_csum volume (csum v3, 64-bit tags), a 4 KiB
 *     volume without 64bit (csum v2, 32-bit tags), a volume without metadata_csum (debugfs
 *     writes the v1 transactional checksum) and a 1 KiB ext3 volume (block-mapped journal,
 *     no checksums);
 *   - the kernel: an image copied while loop-mounted with commit=1, after the log committed
 *     and before the metadata went home (ext4 4 KiB with csum v3, ext3 1 KiB without);
 *   - the e2fsprogs j_* regression images, when the corpus is present (EXT4TS_CORPUS or
 *     <repo>/../shared/corpus/e2fsprogs; absent: skipped visibly, EXT4TS_REQUIRE_CORPUS=1
 *     fails instead).
 * Each image is replayed three ways: by recoverJournal (copy A), by `e2fsck -fy` (copy B) and,
 * for the tool-made logs, by `debugfs -w -R jr` (copy C). Asserted: A equals B and C block
 * for block, except the superblock fields e2fsck or debugfs set for their own reasons (times,
 * mount count, state, free counts, kbytes written, checksum; needs_recovery must agree);
 * `e2fsck -fn` passes A; the replay really changed the image; what e2fsck reports about the
 * log (a corrupt transaction, a checksum error) is what recoverJournal reports. For kernel
 * logs the kernel's own replay is compared too, as the tree a read-only mount lists.
 */

import { copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { createGunzip } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import type { BlockDevice } from "../../src/device/block_device.js";
import { FileDevice } from "../../src/device/file.js";
import { FsError } from "../../src/errors.js";
import { superblock } from "../../src/format/superblock.js";
import { recoverJournal, type RecoveryResult } from "../../src/journal/recovery.js";
import { cleanupImages, kernelManifestOfImage, runDir, withLoopMount } from "./images.js";
import { debugfs, superblockField } from "./inspect.js";
import { corpusMissing, oracleAvailability, oracleGate, run, runUnchecked, tool } from "./oracle_env.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CORPUS = path.resolve(process.env.EXT4TS_CORPUS ?? path.join(REPO, "../shared/corpus/e2fsprogs"));

const oracle = oracleAvailability(["mke2fs", "e2fsck", "debugfs", "dumpe2fs"]);
const kernel = oracleAvailability(["mke2fs", "e2fsck", "dumpe2fs"], { loop: true, root: true });

/** Superblock fields e2fsck -fy and debugfs jr may set besides needs_recovery. */
const SB_FIELDS_SET_BY_TOOLS = [
  "s_free_blocks_count_lo", "s_free_inodes_count", "s_wtime", "s_mnt_count", "s_state", "s_lastcheck",
  "s_free_blocks_count_hi", "s_kbytes_written", "s_wtime_hi", "s_lastcheck_hi", "s_checksum",
] as const;

// ---------------------------------------------------------------------------------------------
// Helpers

function workDir(name: string): string {
  return mkdtempSync(path.join(runDir(), `recovery-${name}-`));
}

function copyAs(src: string, suffix: string): string {
  const dst = src.replace(/\.img$/, "") + `.${suffix}.img`;
  copyFileSync(src, dst);
  return dst;
}

/** A BlockDevice that records which blocks were written (for "compare only what the journal wrote"). */
class RecordingDevice implements BlockDevice {
  readonly written = new Set<number>();
  constructor(readonly inner: BlockDevice, readonly blockSize: number) {}
  get description(): string {
    return this.inner.description;
  }
  get size(): number {
    return this.inner.size;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    return this.inner.read(offset, length);
  }
  readInto(offset: number, dest: Uint8Array): Promise<void> {
    return this.inner.readInto(offset, dest);
  }
  write(offset: number, data: Uint8Array): Promise<void> {
    for (let b = Math.floor(offset / this.blockSize); b * this.blockSize < offset + data.length; b++) this.written.add(b);
    return this.inner.write(offset, data);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Ours {
  result?: RecoveryResult;
  thrown?: FsError;
  written: Set<number>;
}

async function replayOurs(img: string): Promise<Ours> {
  const bs = blockSizeOf(img);
  const dev = new RecordingDevice(await FileDevice.open(img), bs);
  try {
    return { result: await recoverJournal(dev), written: dev.written };
  } catch (e) {
    if (!(e instanceof FsError)) throw e;
    return { thrown: e, written: dev.written };
  } finally {
    await dev.close();
  }
}

/** `e2fsck -fy`: returns its output (exit 0 or 1 expected: recovered, maybe fixed). */
function e2fsckReplay(img: string): string {
  const r = runUnchecked(tool("e2fsck"), ["-fy", img]);
  expect([0, 1], `e2fsck -fy ${img}:\n${r.stdout}${r.stderr}`).toContain(r.status);
  return r.stdout + r.stderr;
}

function expectE2fsckClean(img: string): void {
  const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
  expect(r.status, `e2fsck -fn on our replay:\n${r.stdout}${r.stderr}`).toBe(0);
}

interface Diff {
  /** Blocks that differ, the primary superblock's block excepted. */
  blocks: number[];
  /** Superblock fields that differ, those tools set for their own reasons excepted. */
  sbFields: string[];
}

/** Compares two images block by block; the primary superblock field by field. */
function compareImages(a: string, b: string, bs: number, only?: ReadonlySet<number>): Diff {
  const x = readFileSync(a);
  const y = readFileSync(b);
  expect(x.length).toBe(y.length);
  const sbBlock = Math.floor(1024 / bs);
  const blocks: number[] = [];
  for (let n = 0; n * bs < x.length; n++) {
    if (n === sbBlock || (only !== undefined && !only.has(n))) continue;
    if (x.compare(y, n * bs, (n + 1) * bs, n * bs, (n + 1) * bs) !== 0) blocks.push(n);
  }
  const sa = superblock.decode(new Uint8Array(x.buffer, x.byteOffset + 1024, 1024));
  const sb = superblock.decode(new Uint8Array(y.buffer, y.byteOffset + 1024, 1024));
  const skip = new Set<string>(SB_FIELDS_SET_BY_TOOLS);
  const sbFields = Object.keys(sa).filter((k) => !skip.has(k) && JSON.stringify(sa[k as keyof typeof sa], bigintJson) !== JSON.stringify(sb[k as keyof typeof sb], bigintJson));
  // With blocks over 1 KiB the superblock's block holds other bytes too (the boot area, padding).
  for (const [lo, hi] of [[sbBlock * bs, 1024], [2048, (sbBlock + 1) * bs]] as const) {
    if (lo < hi && x.compare(y, lo, hi, lo, hi) !== 0) sbFields.push(`bytes ${lo}..${hi - 1}`);
  }
  return { blocks, sbFields };
}

function bigintJson(_k: string, v: unknown): unknown {
  return typeof v === "bigint" ? v.toString() : v;
}

function expectSame(d: Diff, what: string): void {
  expect({ blocks: d.blocks.slice(0, 20), sbFields: d.sbFields }, what).toEqual({ blocks: [], sbFields: [] });
}

function isSame(d: Diff): boolean {
  return d.blocks.length === 0 && d.sbFields.length === 0;
}

/**
 * Our replay `a` against `b`, which `e2fsck -fy` replayed and then checked. e2fsck may go on
 * to change what it replayed (pass 5 sets BLOCK_UNINIT on a group it finds empty, say); then
 * the same `e2fsck -fy` run over our replay must arrive at the same image. Returns how it matched.
 */
function expectSameAsE2fsck(a: string, b: string, bs: number, what: string): string {
  const whole = compareImages(a, b, bs);
  if (isSame(whole)) return "whole image matches";
  const a2 = copyAs(a, "checked");
  e2fsckReplay(a2);
  expectSame(compareImages(a2, b, bs), `${what}: e2fsck -fy of our replay vs e2fsck -fy's replay`);
  return `matches once e2fsck -fy ran over it too (e2fsck changed ${whole.blocks.length} replayed block(s) after replaying)`;
}

/** What e2fsck -fy says about the log, in recoverJournal's terms. */
function e2fsckVerdict(out: string): { failedCommit?: number; error?: string } {
  const v: { failedCommit?: number; error?: string } = {};
  const fc = /Journal transaction (\d+) was corrupt, replay was aborted/.exec(out);
  if (fc !== null) v.failedCommit = Number(fc[1]);
  if (/Journal checksum error found in/.test(out)) v.error = "EFSBADCRC";
  else if (/Journal corrupted in/.test(out)) v.error = "EFSCORRUPTED";
  else if (/Invalid argument while recovering journal/.test(out)) v.error = "EINVAL";
  return v;
}

function ourVerdict(r: RecoveryResult): { failedCommit?: number; error?: string } {
  const v: { failedCommit?: number; error?: string } = {};
  if (r.failedCommit !== undefined) v.failedCommit = r.failedCommit;
  if (r.error !== undefined) v.error = r.error.code;
  return v;
}

/**
 * Replays `img` (which needs recovery) three ways and checks they agree. Returns our result.
 */
async function replayAndCompare(img: string, opts: { debugfsToo: boolean }): Promise<RecoveryResult> {
  expect(superblockField(img, "Filesystem features")).toMatch(/needs_recovery/);
  const bs = blockSizeOf(img);
  const a = copyAs(img, "ours");
  const b = copyAs(img, "e2fsck");
  const ours = await replayOurs(a);
  if (ours.thrown !== undefined) throw ours.thrown;
  const r = ours.result!; // not thrown
  const out = e2fsckReplay(b);
  expect(out).toMatch(/recovering journal/);
  expect(ourVerdict(r)).toEqual(e2fsckVerdict(out));
  expect(superblockField(a, "Filesystem features")).not.toMatch(/needs_recovery/);
  expectSameAsE2fsck(a, b, bs, "our replay vs e2fsck -fy");
  if (opts.debugfsToo) {
    const c = copyAs(img, "debugfs");
    run(tool("debugfs"), ["-w", "-R", "jr", c]);
    expectSame(compareImages(a, c, bs), "our replay vs debugfs jr");
  }
  expectE2fsckClean(a);
  // The replay did something: the blocks it wrote changed the image.
  expect(compareImages(img, a, bs, ours.written).blocks.length).toBeGreaterThan(0);
  return r;
}

/** Runs debugfs journal commands (-w -f) on `img`. */
function debugfsJournal(img: string, dir: string, commands: string[]): void {
  const cmds = path.join(dir, "cmds");
  writeFileSync(cmds, commands.join("\n") + "\n");
  const r = run(tool("debugfs"), ["-w", "-f", cmds, img]);
  expect(r.stderr, r.stderr).not.toMatch(/journal_write:|journal_open:|journal_close:/);
}

/** `n` blocks of `bs` bytes, block i filled with 0x41 + i; `magicAt` starts with the jbd2 magic. */
function dataFile(dir: string, name: string, bs: number, n: number, magicAt?: number): string {
  const buf = new Uint8Array(bs * n);
  for (let i = 0; i < n; i++) buf.fill(0x41 + i, i * bs, (i + 1) * bs);
  if (magicAt !== undefined) new DataView(buf.buffer).setUint32(magicAt * bs, 0xc03b3998);
  const f = path.join(dir, name);
  writeFileSync(f, buf);
  return f;
}

/** Block size from the superblock itself (dumpe2fs gives up on a bad journal superblock). */
function blockSizeOf(img: string): number {
  const raw = readFileSync(img).subarray(1024, 2048);
  return 1024 << superblock.decode(new Uint8Array(raw.buffer, raw.byteOffset, raw.length)).s_log_block_size;
}

function readBlockOf(img: string, bs: number, nr: number): Buffer {
  return readFileSync(img).subarray(nr * bs, (nr + 1) * bs);
}

// ---------------------------------------------------------------------------------------------

describe("journal replay equals e2fsck's and debugfs' on debugfs-written logs", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });

  it.skipIf(!oracle.ok)("ext4, 4 KiB, metadata_csum (csum v3, 64-bit tags): revoke, escape, uncommitted tail", async () => {
    const dir = workDir("v3");
    const img = path.join(dir, "v3.img");
    run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-b", "4096", img, "64M"]);
    const d = dataFile(dir, "d", 4096, 3);
    const m = dataFile(dir, "m", 4096, 2, 1);
    debugfsJournal(img, dir, ["jo -c", "jw -b 5000,5001,5002 " + d, "jw -b 5003,5004 " + m, "jw -r 5001 /dev/null", "jw -b 5005 -c " + d, "jc"]);
    expect(superblockField(img, "Journal features")).toMatch(/journal_checksum_v3/);
    const r = await replayAndCompare(img, { debugfsToo: true });
    expect(r).toMatchObject({ transactions: 3, blocksReplayed: 4, revoked: 1, revokeRecords: 1, firstTid: 1, lastTid: 3, sequence: 5 });
    const a = img.replace(/\.img$/, ".ours.img");
    expect(readBlockOf(a, 4096, 5004).readUInt32BE(0)).toBe(0xc03b3998); // unescaped
    expect(readBlockOf(a, 4096, 5001).every((x) => x === 0)).toBe(true); // revoked
    expect(readBlockOf(a, 4096, 5005).every((x) => x === 0)).toBe(true); // never committed
    expect(superblockField(a, "Journal start")).toBe("0");
  });

  it.skipIf(!oracle.ok)("ext4, 4 KiB, metadata_csum without 64bit (csum v2, 32-bit tags)", async () => {
    const dir = workDir("v2");
    const img = path.join(dir, "v2.img");
    run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-O", "^64bit", "-b", "4096", img, "64M"]);
    const d = dataFile(dir, "d", 4096, 3, 2);
    debugfsJournal(img, dir, ["jo -c -v 2", "jw -b 6000,6001,6002 " + d, "jw -r 6000 /dev/null", "jw -b 6003 " + d, "jc"]);
    expect(superblockField(img, "Journal features")).toMatch(/journal_checksum_v2/);
    const r = await replayAndCompare(img, { debugfsToo: true });
    expect(r).toMatchObject({ transactions: 3, revoked: 1 });
  });

  it.skipIf(!oracle.ok)("ext4 without metadata_csum: debugfs' v1 transactional checksum, as e2fsck judges it", async () => {
    const dir = workDir("v1");
    const img = path.join(dir, "v1.img");
    run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-O", "^metadata_csum", "-b", "4096", img, "64M"]);
    const d = dataFile(dir, "d", 4096, 2);
    debugfsJournal(img, dir, ["jo -c", "jw -b 5000,5001 " + d, "jw -r 5000 /dev/null", "jc"]);
    expect(superblockField(img, "Journal features")).toMatch(/journal_checksum(\s|$)/);
    // debugfs' commit of the revoke-only transaction carries no matching crc32_be: both call it corrupt.
    const r = await replayAndCompare(img, { debugfsToo: true });
    expect(r).toMatchObject({ transactions: 1, blocksReplayed: 2, failedCommit: 2 });
  });

  it.skipIf(!oracle.ok)("ext3, 1 KiB blocks, block-mapped journal, no checksums", async () => {
    const dir = workDir("ext3");
    const img = path.join(dir, "ext3.img");
    run(tool("mke2fs"), ["-q", "-F", "-t", "ext3", "-b", "1024", img, "16M"]);
    expect(debugfs(img, "stat <8>")).not.toMatch(/EXTENTS/);
    const d = dataFile(dir, "d", 1024, 4, 3);
    debugfsJournal(img, dir, ["jo", "jw -b 9000,9001,9002,9003 " + d, "jw -r 9001 /dev/null", "jw -b 9004 " + d, "jw -b 9005 -c " + d, "jc"]);
    const r = await replayAndCompare(img, { debugfsToo: true });
    expect(r).toMatchObject({ transactions: 3, blocksReplayed: 4, revoked: 1 });
  });
});

describe("journal replay equals e2fsck's and the kernel's on kernel-written logs", () => {
  oracleGate(kernel, "loop mounts and e2fsprogs are available");
  afterAll(() => {
    cleanupImages();
  });

  const cases = [
    { name: "ext4-4k", mkfs: ["-t", "ext4", "-b", "4096"], size: "64M", journal: /journal_checksum_v3/ },
    { name: "ext3-1k", mkfs: ["-t", "ext3", "-b", "1024"], size: "32M", journal: /^(?!.*checksum)/ },
  ] as const;
  for (const c of cases) {
    it.skipIf(!kernel.ok)(`${c.name}: an image copied after the commits and before the checkpoint`, async () => {
      const dir = workDir(`k-${c.name}`);
      const img = path.join(dir, "live.img");
      // No lazy init: nothing but our writes may reach the image while it is copied.
      run(tool("mke2fs"), ["-q", "-F", ...c.mkfs, "-E", "lazy_itable_init=0,lazy_journal_init=0", img, c.size]);
      const crash = path.join(dir, "crash.img");
      await withLoopMount(img, { readOnly: false, fsType: "ext4", options: "commit=1,noatime" }, async (mnt) => {
        for (let i = 0; i < 60; i++) {
          mkdirSync(path.join(mnt, `d${i}`));
          for (let j = 0; j < 4; j++) writeFileSync(path.join(mnt, `d${i}`, `f${j}`), `file ${i} ${j}\n`.repeat(i + 1));
        }
        await sleep(2500); // one commit
        for (let i = 0; i < 20; i++) rmSync(path.join(mnt, `d${i}`), { recursive: true });
        await sleep(2500); // a second one, with revoke records for the freed directory blocks
        for (let i = 0; i < 30; i++) mkdirSync(path.join(mnt, `e${i}`));
        writeFileSync(path.join(mnt, "big"), new Uint8Array(3 << 20).fill(0x5a));
        await sleep(3000); // committed, but the metadata is not yet written home (writeback waits 30 s)
        copyFileSync(img, crash);
      });
      expect(superblockField(crash, "Journal features")).toMatch(c.journal);
      const r = await replayAndCompare(crash, { debugfsToo: true });
      expect(r.transactions).toBeGreaterThanOrEqual(2);
      expect(r.revokeRecords).toBeGreaterThan(0);
      // The kernel's own replay of the same log lists the same tree.
      const k = copyAs(crash, "kernel");
      await withLoopMount(k, { readOnly: false, fsType: "ext4" }, () => Promise.resolve());
      const [ours, theirs] = [await kernelManifestOfImage(crash.replace(/\.img$/, ".ours.img")), await kernelManifestOfImage(k)];
      expect(ours.split("\n").length).toBeGreaterThan(100);
      expect(ours === theirs, "tree after our replay vs the kernel's replay").toBe(true);
      // A writable ext4ts mount replays first, like the kernel's, then runs as usual.
      const m = copyAs(crash, "mounted");
      const vol = await Volume.mount(await FileDevice.open(m), { readOnly: false });
      expect(vol.fs.warnings.join("\n")).toMatch(/Journal recovered: \d+ transactions/);
      await vol.writeFile("/after-recovery", "hello\n");
      await vol.unmount();
      expectE2fsckClean(m);
      expect(superblockField(m, "Filesystem features")).not.toMatch(/needs_recovery/);
      const afterMount = await kernelManifestOfImage(m);
      expect(afterMount.split("\n").filter((l) => !l.includes('"/after-recovery"') && !l.startsWith('{"path":"/",')).join("\n"))
        .toBe(theirs.split("\n").filter((l) => !l.startsWith('{"path":"/",')).join("\n"));
    }, 300_000);
  }
});

// ---------------------------------------------------------------------------------------------
// The e2fsprogs j_* regression images

const corpusImages = existsSync(CORPUS)
  ? readdirSync(CORPUS).filter((n) => n.startsWith("j_") && existsSync(path.join(CORPUS, n, "image.gz"))).sort()
  : [];

describe("e2fsprogs j_* images: our replay beside e2fsck -fy's", () => {
  if (corpusImages.length === 0) {
    const why = `no e2fsprogs j_* corpus images at ${CORPUS} (set EXT4TS_CORPUS)`;
    corpusMissing(why);
    return;
  }
  oracleGate(oracle);
  const table: string[] = [];
  afterAll(() => {
    if (table.length > 0) console.log(`journal replay on the e2fsprogs corpus (ours vs e2fsck -fy):\n${table.join("\n")}`);
    cleanupImages();
  });

  for (const name of corpusImages) {
    it.skipIf(!oracle.ok)(name, async () => {
      const dir = workDir(name);
      const img = path.join(dir, `${name}.img`);
      await pipeline(createReadStream(path.join(CORPUS, name, "image.gz")), createGunzip(), createWriteStream(img));
      const bs = blockSizeOf(img);
      const a = copyAs(img, "ours");
      const b = copyAs(img, "e2fsck");
      const ours = await replayOurs(a);
      const out = e2fsckReplay(b);
      const e2Replays = /recovering journal/.test(out);
      if (ours.thrown !== undefined) {
        // We refuse a journal we cannot read; e2fsck then repairs or clears it instead of replaying.
        expect(e2Replays, `${name}: we refused (${ours.thrown.message}) but e2fsck replayed`).toBe(false);
        expect(ours.written.size, `${name}: a refused journal must not be written`).toBe(0);
        expect(["EFSCORRUPTED", "EFSBADCRC", "EOPNOTSUPP"]).toContain(ours.thrown.code);
        table.push(`  ${name}: not replayed by either (ours: ${ours.thrown.message})`);
        return;
      }
      const r = ours.result!; // not thrown
      expect(e2Replays, `${name}: e2fsck did not replay the journal`).toBe(true);
      expect(ourVerdict(r), `${name}: what the log is judged to be`).toEqual(e2fsckVerdict(out));
      const verdict = [r.failedCommit !== undefined ? `failed commit ${r.failedCommit}` : "", r.error !== undefined ? r.error.code : ""].filter((s) => s !== "").join(", ");
      const row = `  ${name}: ${r.transactions} transaction(s), ${r.blocksReplayed} block(s) replayed${verdict === "" ? "" : ` (${verdict})`}: `;
      const journalBlocks = compareImages(a, b, bs, ours.written);
      let how = "DIFFERS";
      try {
        how = expectSameAsE2fsck(a, b, bs, name);
      } finally {
        table.push(`${row}${how}; the ${ours.written.size} block(s) we wrote ${isSame(journalBlocks) ? "match" : "differ"}`);
      }
    }, 120_000);
  }
});
