/**
 * Corruption found while writing: the engine records it in the superblock as Linux's
 * save_error_info does (ERROR_FS, error count, first/last error inode), refuses every later
 * write with EROFS (errors=remount-ro), keeps reading, and will not mount the volume for
 * writing again until e2fsck has run, unless forced. Checked with dumpe2fs and e2fsck.
 */

import { mkdtempSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import { FileDevice } from "../../src/device/file.js";
import { cleanupImages, runDir } from "./images.js";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck", "debugfs", "dumpe2fs"]);

async function mount(img: string, opts: { readOnly?: boolean; force?: boolean } = {}): Promise<Volume> {
  return Volume.mount(await FileDevice.open(img, { readOnly: opts.readOnly ?? false }), { readOnly: opts.readOnly ?? false, force: opts.force ?? false });
}

function header(img: string): string {
  return run(tool("dumpe2fs"), ["-h", img]).stdout;
}

describe("corruption found during writes stops writing and is recorded for e2fsck", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });

  it.skipIf(!oracle.ok)("a bad extent tree met by a write: EFSCORRUPTED, then EROFS for everything, error saved in the superblock", async () => {
    const dir = mkdtempSync(path.join(runDir(), "werr-"));
    const img = path.join(dir, "e.img");
    run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", img, "16M"]);
    let vol = await mount(img);
    await vol.writeFile("/f", new Uint8Array(40_000).fill(1));
    await vol.writeFile("/g", "intact");
    const ino = (await vol.lstat("/f")).ino;
    await vol.unmount();
    // Break the extent header magic (debugfs fixes up the inode checksum).
    run(tool("debugfs"), ["-w", "-R", "sif /f block[0] 0", img]);

    vol = await mount(img);
    await expect(vol.writeFile("/f", "x")).rejects.toMatchObject({ code: "EFSCORRUPTED" });
    await expect(vol.mkdir("/new")).rejects.toMatchObject({ code: "EROFS", message: expect.stringMatching(/writes stopped after corruption/) as unknown });
    await expect(vol.writeFile("/g", "changed")).rejects.toMatchObject({ code: "EROFS" });
    expect(new TextDecoder().decode(await vol.readFile("/g"))).toBe("intact");
    await vol.unmount();

    const h = header(img);
    expect(h).toMatch(/^Filesystem state:\s+clean with errors$/m);
    expect(h).toMatch(/^FS Error count:\s+1$/m);
    expect(h).toMatch(new RegExp(`^First error inode #:\\s+${ino}$`, "m"));
    expect(h).toMatch(/^First error function:\s+ext4ts$/m);
    expect(h).toMatch(/^First error err:\s+EFSCORRUPTED$/m);
    // e2fsck sees the real damage (the tree), nothing we added.
    const fsck = runUnchecked(tool("e2fsck"), ["-fn", img]);
    expect(fsck.status, fsck.stdout).toBe(4);
    expect(fsck.stdout).toMatch(new RegExp(`Inode ${ino} has corrupt extent header|Inode ${ino}.*invalid extent`, "i"));
    // (It also reports the file's blocks as unowned once that inode is cleared: consequences of the damage.)

    // Not writable again until checked, unless forced; read-only is fine.
    await expect(mount(img)).rejects.toMatchObject({ code: "EROFS", message: expect.stringMatching(/errors recorded \(1 since the last check\)/) as unknown });
    const ro = await mount(img, { readOnly: true });
    expect(new TextDecoder().decode(await ro.readFile("/g"))).toBe("intact");
    await ro.unmount();
    const forced = await mount(img, { force: true });
    await forced.writeFile("/h", "forced");
    await forced.unmount();
    // After e2fsck -fy repairs it, writes are welcome again.
    runUnchecked(tool("e2fsck"), ["-fy", img]);
    expect(header(img)).toMatch(/^Filesystem state:\s+clean$/m);
    const again = await mount(img);
    await again.writeFile("/i", "after fsck");
    await again.unmount();
    expect(runUnchecked(tool("e2fsck"), ["-fn", img]).status).toBe(0);
  });
});
