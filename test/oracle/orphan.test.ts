/**
 * Open-unlinked files and the on-disk orphan list, against e2fsck, debugfs and the kernel:
 * - while a file is open after its last unlink (or after a rename replaced it), the synced
 *   image names it in s_last_orphan / i_dtime, exactly as Linux's ext4_orphan_add does;
 * - the last close frees it and takes it off the list, from the head or the middle;
 * - an image "crashed" with orphans on it (copied before unmount) is cleaned up by the next
 *   writable mount, by ext4ts as by the kernel, and then passes `e2fsck -fn` with the free
 *   counts of a volume that never had the files.
 */

import { copyFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import { FileDevice } from "../../src/device/file.js";
import { cleanupImages, scratchImage, withLoopMount } from "./images.js";
import { debugfs, superblockField } from "./inspect.js";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck", "debugfs", "dumpe2fs"], { loop: true, root: true });

async function writable(img: string): Promise<Volume> {
  return Volume.mount(await FileDevice.open(img), { readOnly: false });
}

function expectClean(img: string): void {
  const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
  expect(r.status, r.stdout + r.stderr).toBe(0);
}

/** s_last_orphan and the chain through i_dtime, as debugfs reads them. */
function orphanChain(img: string): number[] {
  const out: number[] = [];
  // dumpe2fs prints the line only when the list is not empty.
  let ino = Number(/^First orphan inode:\s+(\d+)$/m.exec(run(tool("dumpe2fs"), ["-h", img]).stdout)?.[1] ?? "0");
  while (ino !== 0 && out.length < 100) {
    out.push(ino);
    const stat = debugfs(img, `stat <${ino}>`);
    const dtime = /dtime: (0x[0-9a-f]+)/.exec(stat);
    ino = dtime === null ? 0 : Number(dtime[1]);
  }
  return out;
}

function freeCounts(img: string): { blocks: string; inodes: string } {
  return { blocks: superblockField(img, "Free blocks"), inodes: superblockField(img, "Free inodes") };
}

const data = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

describe("orphan list: open-unlinked inodes survive until last close and are recovered after a crash", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });

  it.skipIf(!oracle.ok)("keeps unlinked open files on the on-disk list, in kernel order, and frees them at close", async () => {
    const img = scratchImage("orphan-list", ["-t", "ext4"], "32M");
    const before = freeCounts(img);
    const vol = await writable(img);
    const handles = [];
    const inos: number[] = [];
    for (const [i, name] of ["a", "b", "c"].entries()) {
      await vol.writeFile(`/${name}`, data(100_000 + i, 0x61 + i));
      const fh = await vol.open(`/${name}`, "r+");
      inos.push((await vol.lstat(`/${name}`)).ino);
      await vol.unlink(`/${name}`);
      handles.push(fh);
    }
    await vol.sync();
    // Each new orphan goes to the head: c -> b -> a.
    expect(orphanChain(img)).toEqual([inos[2], inos[1], inos[0]]);
    // Still usable through the handle.
    const fb = handles[1]!;
    await fb.write(data(10, 0x7a), 0, 10, 0);
    const back = new Uint8Array(12);
    await fb.read(back, 0, 12, 0);
    expect([...back]).toEqual([...data(10, 0x7a), 0x62, 0x62]);
    // Close the middle one: c -> a.
    await fb.close();
    await vol.sync();
    expect(orphanChain(img)).toEqual([inos[2], inos[0]]);
    // Close the head: a.
    await handles[2]!.close();
    await vol.sync();
    expect(orphanChain(img)).toEqual([inos[0]]);
    await handles[0]!.close();
    await vol.unmount();
    expect(orphanChain(img)).toEqual([]);
    expectClean(img);
    expect(freeCounts(img)).toEqual(before);
  });

  it.skipIf(!oracle.ok)("a rename over an open file keeps it readable and orphaned until close", async () => {
    const img = scratchImage("orphan-rename", ["-t", "ext4", "-b", "1024"], "32M");
    const vol = await writable(img);
    await vol.writeFile("/old", data(5000, 1));
    await vol.writeFile("/new", data(3000, 2));
    const ino = (await vol.lstat("/old")).ino;
    const fh = await vol.open("/old", "r");
    await vol.rename("/new", "/old");
    await vol.sync();
    expect(orphanChain(img)).toEqual([ino]);
    const back = new Uint8Array(5000);
    const { bytesRead } = await fh.read(back, 0, 5000, 0);
    expect(bytesRead).toBe(5000);
    expect(back.every((b) => b === 1)).toBe(true);
    await fh.close();
    await vol.unmount();
    expect(orphanChain(img)).toEqual([]);
    expectClean(img);
  });

  it.skipIf(!oracle.ok)("after a crash with orphans, ext4ts and the kernel both free them at the next writable mount", async () => {
    const img = scratchImage("orphan-crash", ["-t", "ext4"], "32M");
    const before = freeCounts(img);
    const vol = await writable(img);
    await vol.writeFile("/keep", data(4096, 3));
    const afterKeep = await vol.statfs();
    const handles = [];
    for (const name of ["x", "y"]) {
      await vol.writeFile(`/${name}`, data(300_000, 4));
      handles.push(await vol.open(`/${name}`, "r"));
      await vol.unlink(`/${name}`);
    }
    await vol.sync();
    // The "crash": the image as it is now, never unmounted.
    const crashed = img.replace(/\.img$/, "-crashed.img");
    copyFileSync(img, crashed);
    const forKernel = img.replace(/\.img$/, "-kernel.img");
    copyFileSync(img, forKernel);
    for (const fh of handles) await fh.close();
    await vol.unmount();
    expect(orphanChain(crashed)).toHaveLength(2);

    // ext4ts: the next writable mount frees both and reports it.
    const again = await writable(crashed);
    expect(again.fs.warnings.join("\n")).toMatch(/Orphan cleanup: 2 inodes freed, 0 truncated/);
    expect((await again.statfs()).bfree).toBe(afterKeep.bfree);
    expect(await again.readFile("/keep")).toEqual(data(4096, 3));
    await again.unmount();
    expect(orphanChain(crashed)).toEqual([]);
    expectClean(crashed);

    // The kernel reads the same list the same way.
    await withLoopMount(forKernel, { readOnly: false }, () => Promise.resolve());
    expect(orphanChain(forKernel)).toEqual([]);
    expectClean(forKernel);
    expect(freeCounts(forKernel)).toEqual(freeCounts(crashed));
    expect(Number(freeCounts(crashed).inodes)).toBe(Number(before.inodes) - 1);
  });

  it.skipIf(!oracle.ok)("without a journal there is no list (as in Linux) and the last close still frees the file", async () => {
    const img = scratchImage("orphan-nojournal", ["-t", "ext4", "-O", "^has_journal"], "32M");
    const before = freeCounts(img);
    const vol = await writable(img);
    await vol.writeFile("/f", data(50_000, 5));
    const fh = await vol.open("/f", "r");
    await vol.unlink("/f");
    await vol.sync();
    expect(orphanChain(img)).toEqual([]);
    await fh.close();
    await vol.unmount();
    expectClean(img);
    expect(freeCounts(img)).toEqual(before);
  });

  it.skipIf(!oracle.ok)("a looping orphan list is reported as corruption, not followed forever", async () => {
    const img = scratchImage("orphan-loop", ["-t", "ext4"], "32M");
    const vol = await writable(img);
    await vol.writeFile("/f", data(10, 6));
    const ino = (await vol.lstat("/f")).ino;
    await vol.unmount();
    // i_dtime of a live inode pointing at itself, and s_last_orphan at it.
    run(tool("debugfs"), ["-w", "-R", `set_inode_field <${ino}> dtime ${ino}`, img]);
    run(tool("debugfs"), ["-w", "-R", `ssv last_orphan ${ino}`, img]);
    await expect(writable(img)).rejects.toMatchObject({ code: "EFSCORRUPTED", message: expect.stringMatching(/Orphan list loops back/) as unknown });
  });
});
