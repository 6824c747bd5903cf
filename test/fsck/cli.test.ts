/**
 * `ext4ts fsck` as users run it (the built CLI): e2fsck's exit codes (0 clean, 4 errors left,
 * 8 operational error, 16 usage), "clean" without -f, repairs with -y and -p (e2fsck's
 * words and exit 1), and --json. Runs on test/images/f_engine_small; needs `npm run build`
 * (the global setup builds unless EXT4TS_SKIP_BUILD=1).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import { MemoryDevice } from "../../src/device/memory.js";
import { inodeChecksum, inodeChecksumSeed, inodeHasChecksumHi } from "../../src/format/checksum.js";
import { decodeInode, inodeStruct } from "../../src/format/inode.js";
import { inodeLocation } from "../../src/fs/inode.js";
import { runCli } from "../cli.js";

const FIXTURE = new Uint8Array(gunzipSync(readFileSync(new URL("../images/f_engine_small/image.gz", import.meta.url))));

let dir = "";
let clean = "";
let damaged = "";
let hello = 0;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "ext4ts-fsck-cli-"));
  clean = path.join(dir, "clean.img");
  damaged = path.join(dir, "damaged.img");
  writeFileSync(clean, FIXTURE);
  // /hello.txt's link count set to 3 (its checksum fixed): pass 4 finds it.
  const b = FIXTURE.slice();
  const vol = await Volume.mount(MemoryDevice.from(FIXTURE.slice()));
  try {
    const fs = vol.fs;
    hello = (await vol.lstat("/hello.txt")).ino;
    const loc = inodeLocation(fs, hello);
    const at = loc.block * fs.blockSize + loc.offset;
    inodeStruct.encode({ i_links_count: 3 }, b, at, fs.inodeSize);
    const c = inodeChecksum(b, at, fs.inodeSize, inodeChecksumSeed(fs.csumSeed, hello, decodeInode(b, at, fs.inodeSize).i_generation));
    inodeStruct.encode({ l_i_checksum_lo: c & 0xffff }, b, at);
    if (inodeHasChecksumHi(b, at, fs.inodeSize)) inodeStruct.encode({ i_checksum_hi: c >>> 16 }, b, at, fs.inodeSize);
  } finally {
    await vol.unmount();
  }
  writeFileSync(damaged, b);
});

afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

describe("ext4ts fsck", () => {
  it("without -f, says a clean-marked volume is clean and exits 0, as e2fsck does", async () => {
    const r = await runCli(["fsck", "-n", clean]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^f_engine_small: clean, \d+\/256 files, \d+\/4096 blocks\n$/);
  });

  it("with -fn, runs the five passes and prints e2fsck's summary; exit 0", async () => {
    const r = await runCli(["fsck", "-fn", clean]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Pass 1: Checking inodes, blocks, and sizes\nPass 2: Checking directory structure\n/);
    expect(r.stdout).toContain("Pass 5: Checking group summary information\n");
    expect(r.stdout).toMatch(/\nf_engine_small: \d+\/256 files \(\d+\.\d% non-contiguous\), \d+\/4096 blocks\n$/);
  });

  it("reports damage as e2fsck -n does and exits 4", async () => {
    const r = await runCli(["fsck", "-f", damaged]);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stdout).toContain(`Pass 4: Checking reference counts\nInode ${hello} ref count is 3, should be 1.  Fix? no\n\n`);
    expect(r.stdout).toContain("\nf_engine_small: ********** WARNING: Filesystem still has errors **********\n\n");
  });

  it("--json gives the report as one object", async () => {
    const r = await runCli(["fsck", "-fn", "--json", damaged]);
    expect(r.code).toBe(4);
    const rep = JSON.parse(r.stdout) as { clean: boolean; exitCode: number; problems: { name: string; code: string; ino?: number; message: string }[] };
    expect(rep.clean).toBe(false);
    expect(rep.exitCode).toBe(4);
    expect(rep.problems).toContainEqual(expect.objectContaining({ name: "PR_4_BAD_REF_COUNT", code: "0x040003", ino: hello }));
  });

  it("-fy repairs as e2fsck -fy does: the question answered yes, FILE SYSTEM WAS MODIFIED, exit 1; then clean", async () => {
    const img = path.join(dir, "fy.img");
    writeFileSync(img, readFileSync(damaged));
    const r = await runCli(["fsck", "-fy", img]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain(`Inode ${hello} ref count is 3, should be 1.  Fix? yes\n`);
    expect(r.stdout).toContain("\nf_engine_small: ***** FILE SYSTEM WAS MODIFIED *****\n");
    const again = await runCli(["fsck", "-fn", img]);
    expect(again.code, again.stdout).toBe(0);
  });

  it("-pf preens as e2fsck -p does: 'NAME: message  FIXED.', no pass headers, exit 1", async () => {
    const img = path.join(dir, "fp.img");
    writeFileSync(img, readFileSync(damaged));
    const r = await runCli(["fsck", "-pf", img]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^f_engine_small: Inode ${hello} ref count is 3, should be 1\\.  FIXED\\.\\nf_engine_small: \\d+/256 files`));
    expect(r.stdout).not.toMatch(/Pass \d/);
    expect((await runCli(["fsck", "-fn", img])).code).toBe(0);
  });

  it("refuses -n with -y (exit 16) and leaves the image alone", async () => {
    const before = readFileSync(damaged);
    const r = await runCli(["fsck", "-n", "-y", damaged]);
    expect(r.code).toBe(16);
    expect(r.stderr).toMatch(/only one of the options/);
    expect(readFileSync(damaged).equals(before)).toBe(true);
  });

  it("exits 8 when the image cannot be opened", async () => {
    const r = await runCli(["fsck", "-fn", path.join(dir, "missing.img")]);
    expect(r.code).toBe(8);
    expect(r.stderr).toMatch(/^ext4ts: fsck: .*missing\.img/);
  });

  it("exits 16 on a usage error", async () => {
    expect((await runCli(["fsck"])).code).toBe(16);
    expect((await runCli(["fsck", "--bogus", clean])).code).toBe(16);
  });
});
