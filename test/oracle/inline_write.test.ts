/**
 * Changing inline-data files and directories that the kernel made: ext4ts moves them to
 * ordinary blocks on their first change (as the kernel does once they outgrow the inode).
 * The same changes run through ext4ts on one copy and through the kernel on another; both
 * must pass `e2fsck -fn` and show the same tree (names, types, sizes, contents, link counts)
 * through a kernel mount.
 */

import { copyFileSync, mkdtempSync, mkdirSync, writeFileSync, appendFileSync, truncateSync, rmSync, renameSync, linkSync, rmdirSync, unlinkSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import { FileDevice } from "../../src/device/file.js";
import { cleanupImages, runDir, withLoopMount } from "./images.js";
import { debugfs } from "./inspect.js";
import { oracleAvailability, oracleGate, run, runUnchecked, tool } from "./oracle_env.js";

const oracle = oracleAvailability(["mke2fs", "e2fsck", "debugfs", "find", "sha256sum"], { loop: true, root: true });

const text = (n: number, c: string): string => c.repeat(n);

/** The kernel's view: one line per path with type, size, link count and content hash. */
async function treeOf(img: string): Promise<string> {
  return withLoopMount(img, { readOnly: true }, (dir) => {
    const list = run(tool("find"), [".", "-path", "./lost+found", "-prune", "-o", "-printf", "%p %y %n %s\\n"], { cwd: dir }).stdout;
    const lines = list.trim().split("\n").map((l) => {
      const [p, type, n, size] = l.split(" ");
      // Directory sizes differ by design (inline vs a block); compare files' sizes and contents.
      if (type === "d") return `${p} d ${n}`;
      const sum = run(tool("sha256sum"), [path.join(dir, p!)]).stdout.split(" ")[0]!;
      return `${p} ${type} ${n} ${size} ${sum}`;
    });
    return Promise.resolve(lines.sort().join("\n"));
  });
}

function isInlineInode(img: string, p: string): boolean {
  return /Size of inline data/.test(debugfs(img, `stat ${p}`));
}

describe("inline data written by the kernel, changed by ext4ts", () => {
  oracleGate(oracle);
  afterAll(() => {
    cleanupImages();
  });

  it.skipIf(!oracle.ok)("files and directories convert on first change; the kernel making the same changes sees the same tree", async () => {
    const dir = mkdtempSync(path.join(runDir(), "inline-"));
    const base = path.join(dir, "base.img");
    for (const inodeSize of ["256", "1024"]) {
      run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-I", inodeSize, "-O", "inline_data", base, "32M"]);
      await withLoopMount(base, { readOnly: false }, (m) => {
        for (const [name, n] of [["tiny", 10], ["edge", 60], ["mid", 100], ["big", 150], ["trunc0", 40], ["trunc5", 90], ["grow", 20]] as const) {
          writeFileSync(path.join(m, name), text(n, name[0]!));
        }
        for (const d of ["d1", "d2", "d3", "empty", "mover"]) mkdirSync(path.join(m, d));
        for (let i = 0; i < 3; i++) writeFileSync(path.join(m, "d1", `e${i}`), `entry ${i}`);
        writeFileSync(path.join(m, "d2", "x"), "x");
        writeFileSync(path.join(m, "mover", "inside"), "in");
        return Promise.resolve();
      });
      // The kernel made them inline (the premise of the test).
      for (const p of ["/tiny", "/mid", "/d1", "/empty", "/mover"]) expect(isInlineInode(base, p), `${p} inline (-I ${inodeSize})`).toBe(true);

      const ours = path.join(dir, `ours-${inodeSize}.img`);
      const theirs = path.join(dir, `theirs-${inodeSize}.img`);
      copyFileSync(base, ours);
      copyFileSync(base, theirs);

      const vol = await Volume.mount(await FileDevice.open(ours), { readOnly: false });
      await vol.writeFile("/tiny", text(5000, "T"));
      const fh = await vol.open("/mid", "r+");
      await fh.write(new TextEncoder().encode("MID"), 0, 3, 10);
      await fh.close();
      await vol.appendFile("/big", text(10, "B"));
      await vol.truncate("/trunc0", 0);
      await vol.truncate("/trunc5", 5);
      await vol.truncate("/grow", 3000);
      for (let i = 3; i < 40; i++) await vol.writeFile(`/d1/e${i}`, `entry ${i}`);
      await vol.unlink("/d1/e0");
      await vol.unlink("/d2/x");
      await vol.rmdir("/empty");
      await vol.rename("/mover", "/d1/moved");
      await vol.rename("/edge", "/d2/edge");
      await vol.link("/mid", "/d3/mid-link");
      await vol.unmount();

      await withLoopMount(theirs, { readOnly: false }, (m) => {
        const p = (s: string): string => path.join(m, s);
        writeFileSync(p("tiny"), text(5000, "T"));
        const b = Buffer.from(text(100, "m"));
        b.write("MID", 10);
        writeFileSync(p("mid"), b);
        appendFileSync(p("big"), text(10, "B"));
        truncateSync(p("trunc0"), 0);
        truncateSync(p("trunc5"), 5);
        truncateSync(p("grow"), 3000);
        for (let i = 3; i < 40; i++) writeFileSync(p(`d1/e${i}`), `entry ${i}`);
        unlinkSync(p("d1/e0"));
        rmSync(p("d2/x"));
        rmdirSync(p("empty"));
        renameSync(p("mover"), p("d1/moved"));
        renameSync(p("edge"), p("d2/edge"));
        linkSync(p("mid"), p("d3/mid-link"));
        return Promise.resolve();
      });

      for (const img of [ours, theirs]) {
        const r = runUnchecked(tool("e2fsck"), ["-fn", img]);
        expect(r.status, `${path.basename(img)}: ${r.stdout}`).toBe(0);
      }
      const tree = await treeOf(ours);
      expect(tree).toBe(await treeOf(theirs));
      for (const want of [/^\.\/tiny f 1 5000 /m, /^\.\/mid f 2 100 /m, /^\.\/d3\/mid-link f 2 100 /m, /^\.\/trunc0 f 1 0 /m, /^\.\/grow f 1 3000 /m, /^\.\/d1\/moved d 2$/m, /^\.\/d1\/moved\/inside f 1 2 /m, /^\.\/d1\/e39 f 1 8 /m]) {
        expect(tree).toMatch(want);
      }
      expect(tree).not.toMatch(/^\.\/(empty|mover|edge|d1\/e0|d2\/x) /m);
      // What ext4ts changed is no longer inline; what it did not touch still is.
      expect(isInlineInode(ours, "/tiny")).toBe(false);
      expect(isInlineInode(ours, "/d1")).toBe(false);
      expect(isInlineInode(ours, "/d3")).toBe(false);
      expect(isInlineInode(ours, "/d1/e1")).toBe(true);
    }
  }, 120_000);
});
