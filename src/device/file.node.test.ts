import { execFile } from "node:child_process";
import { mkdtemp, mkdir, open, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FsError, isFsError } from "../errors.js";
import { FileDevice, probeDeviceSize } from "./file.js";

const run = promisify(execFile);
let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ext4ts-file-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<FsError> {
  const e: unknown = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!isFsError(e)) throw new Error(`expected an FsError, got ${String(e)}`);
  return e;
}

describe("FileDevice.open()", () => {
  it("fails with ENOENT, path and syscall for a missing file", async () => {
    const path = join(dir, "missing.img");
    const e = await failure(FileDevice.open(path));
    expect(e.code).toBe("ENOENT");
    expect(e.detail).toMatchObject({ path, syscall: "open" });
    expect(e.message).toContain(path);
  });

  it("creates a sparse file of the given size", async () => {
    const path = join(dir, "new.img");
    const dev = await FileDevice.open(path, { create: true, size: 1024 ** 3 });
    expect(dev.size).toBe(1024 ** 3);
    await dev.write(1024 ** 3 - 4096, new Uint8Array(4096).fill(1));
    await dev.flush();
    await dev.close();
    const st = await stat(path);
    expect(st.size).toBe(1024 ** 3);
    expect(st.blocks * 512).toBeLessThan(1024 * 1024); // sparse
    const again = await FileDevice.open(path, { readOnly: true });
    expect(again.size).toBe(1024 ** 3);
    expect(await again.read(1024 ** 3 - 1, 1)).toEqual(new Uint8Array([1]));
    await again.close();
  });

  it("never truncates: create keeps contents, a smaller size only limits the device", async () => {
    const path = join(dir, "keep.img");
    await writeFile(path, new Uint8Array(8192).fill(3));
    const dev = await FileDevice.open(path, { create: true, size: 4096 });
    expect(dev.size).toBe(4096);
    expect(await dev.read(0, 4)).toEqual(new Uint8Array(4).fill(3));
    expect((await failure(dev.read(4095, 2))).code).toBe("EIO");
    await dev.close();
    expect((await stat(path)).size).toBe(8192);
  });

  it("rejects contradictory options with EINVAL", async () => {
    const path = join(dir, "opts.img");
    await writeFile(path, new Uint8Array(100));
    expect((await failure(FileDevice.open(path, { readOnly: true, create: true }))).code).toBe("EINVAL");
    expect((await failure(FileDevice.open(path, { readOnly: true, size: 200 }))).code).toBe("EINVAL");
    expect((await failure(FileDevice.open(path, { size: -1 }))).code).toBe("EINVAL");
  });

  it("refuses directories", async () => {
    const path = join(dir, "adir");
    await mkdir(path);
    expect((await failure(FileDevice.open(path, { readOnly: true }))).code).toBe("EINVAL");
    expect((await failure(FileDevice.open(path))).code).toBe("EISDIR");
  });

  it("reports a file that shrank under it as EIO at the new end", async () => {
    const path = join(dir, "shrink.img");
    await writeFile(path, new Uint8Array(10_000));
    const dev = await FileDevice.open(path);
    await truncate(path, 5000);
    const e = await failure(dev.read(4000, 2000));
    expect(e.code).toBe("EIO");
    expect(e.message).toContain("5000");
    await dev.close();
  });

  it("reaches the file only through positional I/O (concurrent writers do not interfere)", async () => {
    const path = join(dir, "pos.img");
    const dev = await FileDevice.open(path, { create: true, size: 1 << 20 });
    await Promise.all(Array.from({ length: 16 }, (_, i) => dev.write(i * 65_536, new Uint8Array(65_536).fill(i + 1))));
    await dev.close();
    const bytes = await readFile(path);
    for (let i = 0; i < 16; i++) expect(bytes[i * 65_536 + 100]).toBe(i + 1);
  });
});

describe("probeDeviceSize()", () => {
  it.each([0, 1, 511, 512, 513, 12_345, 1 << 20])("finds the end of a %d-byte file", async (size) => {
    const path = join(dir, `probe${size}.img`);
    await writeFile(path, new Uint8Array(size).fill(1));
    const h = await open(path, "r");
    try {
      expect(await probeDeviceSize(h)).toBe(size);
    } finally {
      await h.close();
    }
  });
});

// Block devices need root and losetup; skipped with the reason otherwise.
const loopSkip =
  process.getuid?.() !== 0
    ? "needs root to attach a loop device"
    : await run("losetup", ["--version"]).then(
        () => undefined,
        () => "losetup not available",
      );

describe.skipIf(loopSkip !== undefined)(`FileDevice on a block device${loopSkip === undefined ? "" : ` (skipped: ${loopSkip})`}`, () => {
  it("sizes a loop device from sysfs and by probing, and reads and writes it", async () => {
    const backing = join(dir, "loop.img");
    await writeFile(backing, new Uint8Array(3 * 1024 * 1024 + 512).fill(0x5a));
    const { stdout } = await run("losetup", ["-f", "--show", backing]);
    const loop = stdout.trim();
    try {
      const dev = await FileDevice.open(loop);
      try {
        expect(dev.size).toBe(3 * 1024 * 1024 + 512);
        expect(await dev.read(dev.size - 512, 4)).toEqual(new Uint8Array(4).fill(0x5a));
        expect((await failure(dev.read(dev.size, 512))).code).toBe("EIO");
        await dev.write(4096, new Uint8Array(512).fill(0xa5));
        await dev.flush();
      } finally {
        await dev.close();
      }
      const h = await open(loop, "r");
      try {
        expect(await probeDeviceSize(h)).toBe(3 * 1024 * 1024 + 512);
      } finally {
        await h.close();
      }
      expect(await FileDevice.open(loop, { size: 4 * 1024 * 1024 }).catch((e: unknown) => e)).toSatisfy((e) => isFsError(e, "EINVAL"));
      expect((await readFile(backing))[4096]).toBe(0xa5);
    } finally {
      await run("losetup", ["-d", loop]);
    }
  });
});
