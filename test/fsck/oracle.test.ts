/**
 * The checker against e2fsck -fn (e2fsprogs is the oracle).
 *
 *  1. Damage injected with debugfs into small mke2fs -d images in four flavours (ext4 4 KiB
 *     with metadata_csum, ext4 1 KiB without it, ext3 and ext2 with block maps): i_blocks,
 *     links_count, i_size, mode (sif); block and inode bitmap bits (freeb/setb, freei/seti);
 *     superblock and group free counts (ssv, set_bg); a cleared inode still named by its
 *     directory (clri); a damaged directory block (zap_block). Each must be found with the
 *     right problem, our verdict (exit status) must be e2fsck's, and our report, printed as
 *     the CLI prints it, must be e2fsck's output line for line.
 *  2. Clean images: the mke2fs presets of test/oracle/images.ts (mke2fs -d trees in seven
 *     configurations) and, where loop mounts work, the kernel-written images: no problem, and
 *     e2fsck's summary line.
 *
 * Needs mke2fs, debugfs and e2fsck (skipped visibly without them; a failure under
 * EXT4TS_REQUIRE_ORACLES=1); the kernel images also need root and loop devices.
 */
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FileDevice } from "../../src/device/file.js";
import { check, formatProblem, type FsckReport } from "../../src/fsck/check.js";
import { DEBUGFS_ENV } from "../oracle/base_image.js";
import { KERNEL_IMAGES, MKE2FS_PRESETS, kernelImage, mke2fsPreset, runDir, type KernelImageName, type Mke2fsPresetName } from "../oracle/images.js";
import { canLoopMount, loopMountStatus, oracleAvailability, oracleGate, requireOrSkip, run, runUnchecked, tool } from "../oracle/oracle_env.js";
import { runCli } from "../cli.js";
import { checkWithText } from "./fsck_text.js";

const E2FSCK_ENV = { ...process.env, E2FSCK_CONFIG: "/dev/null", LC_ALL: "C", TZ: "GMT0" };

/** e2fsck -fn: exit status and output (stderr apart: it holds the few "e2fsck: ..." lines). */
function e2fsck(img: string): { status: number; out: string; err: string } {
  const r = runUnchecked(tool("e2fsck"), ["-fn", img], { env: E2FSCK_ENV });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

/**
 * Our text must be e2fsck's stdout line for line, plus its stderr lines (where they fall
 * between the two streams is the buffering's business, so they are compared apart).
 */
function expectSameText(our: string, e: { out: string; err: string }): void {
  const isErrLine = (l: string): boolean => /^e2fsck: /.test(l);
  expect(findings(our.split("\n").filter((l) => !isErrLine(l)).join("\n"))).toBe(findings(e.out));
  const errLines = e.err.split("\n").filter(isErrLine);
  expect(our.split("\n").filter(isErrLine)).toEqual(errLines);
}

/** Our check, with the text the CLI would print. */
async function ours(img: string): Promise<{ report: FsckReport; out: string }> {
  const dev = await FileDevice.open(img, { readOnly: true });
  let out = "";
  try {
    const report = await check(dev, {
      force: true,
      name: img,
      onPass: (_p, title) => {
        out += `${title}\n`;
      },
      onWarning: (w) => {
        out += `${w}\n`;
      },
      onProblem: (p) => {
        out += p.code === 0x00f005 ? `${p.message}\n` : formatProblem(p);
      },
    });
    const warning = `\n${report.device}: ********** WARNING: Filesystem still has errors **********\n\n`;
    if (!report.clean) out += warning;
    // As the CLI: a fatal problem inside passes 1-5 runs e2fsck's fatal_error, then main's.
    const fatal = report.problems.find((p) => p.fatal);
    if (fatal !== undefined && fatal.pass >= 1 && !fatal.message.startsWith("e2fsck: ")) {
      if (!report.clean) out += warning;
      out += "e2fsck: aborted\n";
    }
    if (report.aborted === undefined) out += `${report.summaryLine}\n`;
    return { report, out };
  } finally {
    await dev.close();
  }
}

/** Output without the version banner and the pass headers (which carry no finding). */
function findings(out: string): string {
  return out
    .split("\n")
    .filter((l) => !/^(e2fsck \d|Pass \d[A-E]?: |Running additional passes)/.test(l))
    .join("\n")
    .replace(/^\n+/, "")
    .trimEnd();
}

function debugfs(img: string, cmds: readonly string[]): string {
  return run(tool("debugfs"), ["-w", "-f", "-", img], { input: `${cmds.join("\n")}\n`, env: DEBUGFS_ENV }).stdout;
}

function debugfsRead(img: string, cmd: string): string {
  return run(tool("debugfs"), ["-R", cmd, img], { env: DEBUGFS_ENV }).stdout;
}

function num(text: string, re: RegExp): number {
  const m = re.exec(text);
  if (m === null) throw new Error(`no match for ${String(re)} in:\n${text}`);
  return Number(m[1]);
}

interface Flavour {
  readonly name: string;
  readonly mkfs: readonly string[];
}

const FLAVOURS: readonly Flavour[] = [
  { name: "ext4-4k", mkfs: ["-t", "ext4", "-b", "4096"] },
  { name: "ext4-1k-nocsum", mkfs: ["-t", "ext4", "-b", "1024", "-O", "^metadata_csum,^64bit"] },
  { name: "ext3-1k", mkfs: ["-t", "ext3", "-b", "1024"] },
  { name: "ext2-4k", mkfs: ["-t", "ext2", "-b", "4096"] },
];

/** What a damage needs to know about the base image. */
interface Facts {
  readonly multiBlock: number;
  readonly multiBlocks: number;
  readonly freeBlock: number;
  readonly freeInode: number;
  readonly freeBlocksCount: number;
  readonly freeInodesCount: number;
  readonly group0FreeInodes: number;
  readonly blockSize: number;
  /** The first block of group 0's inode table (inodes 1, 2, ... live there). */
  readonly inodeTable: number;
}

interface Damage {
  readonly name: string;
  readonly commands: (f: Facts) => string[];
  /** Problem names, at least one of which must be reported. */
  readonly expect: readonly string[];
  /** e2fsck -fn calls it damaged (a non-zero exit); false where it only notes it (-n exits 0). */
  readonly damaged: boolean;
  /** The flavours it applies to (default: all). */
  readonly flavours?: readonly string[];
}

const DAMAGES: readonly Damage[] = [
  { name: "sif i_blocks", commands: (f) => [`sif /multi blocks ${f.multiBlocks + 16}`], expect: ["PR_1_BAD_I_BLOCKS"], damaged: true },
  { name: "sif links_count", commands: () => ["sif /small links_count 5"], expect: ["PR_4_BAD_REF_COUNT"], damaged: true },
  { name: "sif size (file shrunk below its blocks)", commands: () => ["sif /multi size 1"], expect: ["PR_1_BAD_I_SIZE"], damaged: true },
  { name: "sif size (directory)", commands: () => ["sif /d size 100"], expect: ["PR_1_BAD_I_SIZE"], damaged: true },
  // An extent-mapped socket is illegal; a block-mapped one may keep a block number in i_block[0]
  // (a device number's place), so only its size and i_blocks give it away.
  { name: "sif mode (file made a socket)", commands: () => ["sif /small mode 0140644"], expect: ["PR_2_BAD_SOCKET", "PR_1_SET_NONZSIZE"], damaged: true },
  { name: "freeb (used block marked free)", commands: (f) => [`freeb ${f.multiBlock}`], expect: ["PR_5_BLOCK_BITMAP_HEADER"], damaged: true },
  { name: "setb (free block marked used)", commands: (f) => [`setb ${f.freeBlock}`], expect: ["PR_5_BLOCK_BITMAP_HEADER"], damaged: true },
  { name: "freei (used inode marked free)", commands: () => ["freei /small"], expect: ["PR_5_INODE_BITMAP_HEADER"], damaged: true },
  { name: "seti (free inode marked used)", commands: (f) => [`seti <${f.freeInode}>`], expect: ["PR_5_INODE_BITMAP_HEADER"], damaged: true },
  { name: "ssv free_blocks_count", commands: (f) => [`ssv free_blocks_count ${f.freeBlocksCount - 7}`], expect: ["PR_5_FREE_BLOCK_COUNT"], damaged: false },
  { name: "ssv free_inodes_count", commands: (f) => [`ssv free_inodes_count ${f.freeInodesCount + 3}`], expect: ["PR_5_FREE_INODE_COUNT"], damaged: false },
  { name: "set_bg free_inodes_count", commands: (f) => [`set_bg 0 free_inodes_count ${f.group0FreeInodes - 2}`], expect: ["PR_5_FREE_INODE_COUNT_GROUP"], damaged: true },
  { name: "clri (cleared inode still referenced)", commands: () => ["clri /d/f3"], expect: ["PR_2_UNUSED_INODE"], damaged: true },
  { name: "unlink (unattached inode)", commands: () => ["unlink /small"], expect: ["PR_4_UNATTACHED_INODE"], damaged: true },
  { name: "unlink a directory (unconnected)", commands: () => ["unlink /d/sub"], expect: ["PR_3_UNCONNECTED_DIR"], damaged: true },
  { name: "no lost+found, unattached inode", commands: () => ["rmdir /lost+found", "unlink /multi"], expect: ["PR_4_UNATTACHED_INODE"], damaged: true },
  // e2fsck -n then skips the inodes of that block (the root among them) and gives up in pass 3;
  // -y clears the bad blocks inode and starts again.
  {
    name: "bad blocks list names the block of its own inode",
    commands: (f) => [`sif <1> block[0] ${f.inodeTable}`, `sif <1> blocks ${f.blockSize / 512}`],
    expect: ["PR_1_BADBLOCKS_IN_BADBLOCKS"],
    damaged: true,
  },
  // Inodes read as block pointers: pass 1B clones what they share, the check restarts (e2fsck's
  // E2F_FLAG_RESTART_LATER), and the pointers left illegal are cleared.
  {
    name: "indirect block on the inode table",
    commands: (f) => [`sif /multi block[IND] ${f.inodeTable}`],
    expect: ["PR_1_CRITICAL_METADATA_COLLISION"],
    damaged: true,
    flavours: ["ext3-1k", "ext2-4k"],
  },
  {
    name: "damaged directory block",
    commands: () => ["zap_block -f /d -o 4 -l 2 -p 255 0"],
    expect: ["PR_2_DIR_CORRUPTED", "PR_2_BAD_REC_LEN", "PR_2_FINAL_RECLEN", "PR_2_LEAF_NODE_ONLY_CSUM_INVALID"],
    damaged: true,
  },
];

/** A small tree: files of one block, of several (indirect on 1 KiB block maps), a directory. */
function makeTree(dir: string): void {
  mkdirSync(path.join(dir, "d", "sub"), { recursive: true });
  writeFileSync(path.join(dir, "small"), "x".repeat(100));
  writeFileSync(path.join(dir, "multi"), Buffer.alloc(60 * 1024, 0x61));
  writeFileSync(path.join(dir, "big"), Buffer.alloc(300 * 1024, 0x62));
  for (let i = 0; i < 30; i++) writeFileSync(path.join(dir, "d", `f${i}`), `file ${i}\n`);
  writeFileSync(path.join(dir, "d", "sub", "deep"), "deep\n");
}

/** A fresh image of the tree in flavour `f`, in its own directory, with the facts the damages need. */
function makeBase(f: Flavour, prefix: string): { img: string; facts: Facts } {
  const dir = mkdtempSync(path.join(runDir(), `${prefix}-${f.name}-`));
  const tree = path.join(dir, "tree");
  makeTree(tree);
  const img = path.join(dir, "base.img");
  run(tool("mke2fs"), ["-q", "-F", ...f.mkfs, "-E", "root_owner=0:0", "-d", tree, img, "32M"], { env: { ...process.env, E2FSPROGS_FAKE_TIME: "1700000000" } });
  const stat = debugfsRead(img, "stat /multi");
  const sb = debugfsRead(img, "stats");
  const facts: Facts = {
    multiBlock: num(debugfsRead(img, "bmap /multi 0"), /^(\d+)/m),
    multiBlocks: num(stat, /Blockcount:\s+(\d+)/),
    freeBlock: num(debugfsRead(img, "ffb 1 20000"), /Free blocks found:\s+(\d+)/),
    freeInode: num(debugfsRead(img, "ffi"), /Free inode found:\s+(\d+)/),
    freeBlocksCount: num(sb, /^Free blocks:\s+(\d+)/m),
    freeInodesCount: num(sb, /^Free inodes:\s+(\d+)/m),
    group0FreeInodes: num(sb, /Group\s+0:.*?(\d+) free inodes/s),
    blockSize: num(sb, /^Block size:\s+(\d+)/m),
    inodeTable: num(sb, /Group\s+0:.*?inode table at (\d+)/s),
  };
  return { img, facts };
}

const e2 = oracleAvailability(["mke2fs", "debugfs", "e2fsck"]);

describe("fsck vs e2fsck -fn: debugfs-injected damage", () => {
  oracleGate(e2, "e2fsprogs (mke2fs, debugfs, e2fsck) is available");
  if (!e2.ok) return;
  const bases = new Map<string, { img: string; facts: Facts }>();
  const base = (f: Flavour): { img: string; facts: Facts } => {
    const got = bases.get(f.name);
    if (got !== undefined) return got;
    const b = makeBase(f, "fsck");
    bases.set(f.name, b);
    return b;
  };

  for (const f of FLAVOURS) {
    it(`${f.name}: the undamaged image is clean for both`, async () => {
      const { img } = base(f);
      const e = e2fsck(img);
      const o = await ours(img);
      expect(e.status).toBe(0);
      expect(o.report.exitCode).toBe(0);
      expectSameText(o.out, e);
    });
    for (const d of DAMAGES.filter((x) => x.flavours === undefined || x.flavours.includes(f.name))) {
      it(`${f.name}: ${d.name}`, async () => {
        const b = base(f);
        const img = path.join(path.dirname(b.img), `${d.name.replace(/[^a-z0-9]+/gi, "_")}.img`);
        copyFileSync(b.img, img);
        debugfs(img, d.commands(b.facts));
        const e = e2fsck(img);
        expect(e.status !== 0, `e2fsck -fn exit ${e.status}:\n${e.out}`).toBe(d.damaged);
        const o = await ours(img);
        const names = o.report.problems.map((p) => p.name);
        expect(names.some((n) => d.expect.includes(n)), `expected one of ${d.expect.join(", ")}; got ${names.join(", ")}`).toBe(true);
        expect(o.report.exitCode).toBe(e.status);
        expectSameText(o.out, e);
      });
    }
  }
});

/** Our preen (-p), with the text the CLI prints (stdout, then the preen halt's stderr line). */
async function oursPreen(img: string): Promise<{ report: FsckReport; out: string }> {
  const dev = await FileDevice.open(img);
  let out = "";
  let device = img;
  try {
    const report = await check(dev, {
      force: true,
      name: img,
      repair: "preen",
      onDevice: (d) => {
        device = d;
      },
      onProblem: (p) => {
        out += formatProblem(p, device);
      },
    });
    if (report.preenHalted) out += `\n\n${report.device}: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY.\n\t(i.e., without -a or -p options)\n`;
    else {
      if (!report.clean) out += `\n${report.device}: ********** WARNING: Filesystem still has errors **********\n\n`;
      if (report.aborted === undefined) out += `${report.summaryLine}\n`;
    }
    return { report, out };
  } finally {
    await dev.close();
  }
}

/** A listing of every file with its size, links and contents' hash, through debugfs (what a repair must keep). */
function tree(img: string): string {
  return debugfsRead(img, "ls -l -r /").split("\n").map((l) => l.replace(/\s+\d+-\w+-\d+ \d+:\d+(:\d+)?\s+/, " ")).join("\n");
}

describe("fsck -fy vs e2fsck -fy: debugfs-injected damage is repaired", () => {
  oracleGate(e2, "e2fsprogs (mke2fs, debugfs, e2fsck) is available");
  if (!e2.ok) return;
  for (const f of FLAVOURS) {
    for (const d of DAMAGES.filter((x) => x.flavours === undefined || x.flavours.includes(f.name))) {
      it(`${f.name}: ${d.name}`, async () => {
        const { img: base, facts } = makeBase(f, "fsck-fy");
        const dir = path.dirname(base);
        debugfs(base, d.commands(facts));
        const theirs = path.join(dir, "e2fsck.img");
        const mine = path.join(dir, "ext4ts.img");
        copyFileSync(base, theirs);
        copyFileSync(base, mine);
        const e = runUnchecked(tool("e2fsck"), ["-fy", theirs], { env: E2FSCK_ENV });
        const o = await checkWithText(mine, "yes");
        const after = e2fsck(mine);
        expect(after.status, `e2fsck -fn after our repair:\n${after.out}\nour repair:\n${o.out}`).toBe(0);
        expect(o.report.exitCode).toBe(e.status);
        expect(findings(o.out.replaceAll(mine, "IMG"))).toBe(findings(e.stdout.replaceAll(theirs, "IMG")));
        expect(tree(mine)).toBe(tree(theirs));
        // -p: the same problems fixed silently or with "FIXED.", or the same halt.
        const pTheirs = path.join(dir, "e2fsck-p.img");
        const pMine = path.join(dir, "ext4ts-p.img");
        copyFileSync(base, pTheirs);
        copyFileSync(base, pMine);
        const ep = runUnchecked(tool("e2fsck"), ["-pf", pTheirs], { env: E2FSCK_ENV });
        const op = await oursPreen(pMine);
        expect(op.report.exitCode).toBe(ep.status);
        // libext2fs's bitmap range warnings on stderr ("Illegal block number passed to
        // ext2fs_test_block_bitmap #N for multiply claimed block map") are not printed by ext4ts.
        const epErr = ep.stderr.split("\n").filter((l) => !l.startsWith("Illegal block number passed to ext2fs_test_block_bitmap")).join("\n");
        expect(op.out.replaceAll(pMine, "IMG").trim()).toBe(`${ep.stdout}${epErr}`.replaceAll(pTheirs, "IMG").trim());
        if (ep.status < 4) expect(e2fsck(pMine).status).toBe(0);
      });
    }
  }
});

describe("fsck -fy vs e2fsck -fy: an inode table outside its group is placed anew", () => {
  oracleGate(e2, "e2fsprogs (mke2fs, debugfs, e2fsck) is available");
  if (!e2.ok) return;
  // The 1 KiB flavours have four groups (8192 blocks each); group 1's inodes are all free, so
  // nothing is lost, but the table is placed anew (in the flex group, or in group 1) and the
  // check starts again.
  for (const f of FLAVOURS.filter((x) => x.mkfs.includes("1024"))) {
    it(`${f.name}: set_bg 1 inode_table past the volume: relocated, the check restarted, as e2fsck does`, async () => {
      const { img: base } = makeBase(f, "fsck-itable");
      const dir = path.dirname(base);
      debugfs(base, ["set_bg 1 inode_table 9999999"]);
      // The backup descriptors too (group 1's copy, block 8194; 32-byte descriptors,
      // bg_inode_table_lo at 8): e2fsck falls back to them, and must find them as bad.
      const fd = openSync(base, "r+");
      try {
        const at = Buffer.alloc(4);
        at.writeUInt32LE(9999999);
        writeSync(fd, at, 0, 4, 8194 * 1024 + 32 + 8);
      } finally {
        closeSync(fd);
      }
      const theirs = path.join(dir, "e2fsck.img");
      const mine = path.join(dir, "ext4ts.img");
      copyFileSync(base, theirs);
      copyFileSync(base, mine);
      const e = runUnchecked(tool("e2fsck"), ["-fy", theirs], { env: E2FSCK_ENV });
      const o = await runCli(["fsck", "-fy", mine]);
      expect(o.stdout).toMatch(/Relocate\? yes\n[^]*Relocating group 1's inode table to \d+\.\.\.\nRestarting e2fsck from the beginning\.\.\.\n/);
      expect(o.code, o.stderr).toBe(e.status);
      // The "e2fsck: ..." lines apart: e2fsck names itself by its path, and ext4ts prints them on stderr.
      const named = /^\S*e2fsck: /;
      const body = (t: string): string => findings(t.split("\n").filter((l) => !named.test(l)).join("\n"));
      const notes = (t: string): string[] => t.split("\n").filter((l) => named.test(l)).map((l) => l.replace(named, ""));
      expect(body(o.stdout.replaceAll(mine, "IMG"))).toBe(body(e.stdout.replaceAll(theirs, "IMG")));
      expect(notes(o.stdout + o.stderr)).toEqual(notes(e.stdout + e.stderr));
      const itable = (img: string): number => num(debugfsRead(img, "stats"), /Group\s+1: block bitmap at \d+, inode bitmap at \d+, inode table at (\d+)/);
      expect(itable(mine)).toBe(itable(theirs));
      expect(e2fsck(mine).status).toBe(0);
      expect(tree(mine)).toBe(tree(theirs));
      const again = await runCli(["fsck", "-fn", mine]);
      expect(again.code, again.stdout).toBe(0);
    });
  }
});

describe("fsck vs e2fsck -fn: clean images", () => {
  oracleGate(e2, "e2fsprogs (mke2fs, e2fsck) is available");
  if (!e2.ok) return;
  const presets = (Object.keys(MKE2FS_PRESETS) as Mke2fsPresetName[]).filter((n) => !MKE2FS_PRESETS[n].large);
  for (const name of presets) {
    it(`mke2fs -d ${name}: clean, with e2fsck's summary`, { timeout: 300_000 }, async () => {
      const img = await mke2fsPreset(name);
      const e = e2fsck(img);
      const o = await ours(img);
      expect(o.report.problems).toEqual([]);
      expect(o.report.exitCode).toBe(0);
      expectSameText(o.out, e);
    });
  }
  for (const name of Object.keys(KERNEL_IMAGES) as KernelImageName[]) {
    it(`kernel-written ${name}: clean, with e2fsck's summary`, { timeout: 600_000 }, async (ctx) => {
      if (!canLoopMount()) {
        requireOrSkip(`kernel images need loop mounts: ${loopMountStatus().reason}`);
        ctx.skip();
        return;
      }
      const img = await kernelImage(name);
      const e = e2fsck(img);
      const o = await ours(img);
      expect(o.report.problems).toEqual([]);
      expectSameText(o.out, e);
    });
  }
});
