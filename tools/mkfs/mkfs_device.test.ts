import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Volume } from "../../src/api/promises.js";
import { MemoryDevice } from "../../src/device/memory.js";
import { mkfs, mkfsDevice, type MkfsOptions } from "./mkfs.js";

const dir = mkdtempSync(path.join(tmpdir(), "ext4ts-mkfs-device-"));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** -O quota,project -E quotatype=usrquota:grpquota:prjquota, with everything random fixed. */
const QUOTA: MkfsOptions = {
  quiet: true,
  features: ["quota,project"],
  extended: ["quotatype=usrquota:grpquota:prjquota,hash_seed=8f3e2d1c-0b4a-4c5d-8e6f-7a8b9c0d1e2f"],
  uuid: "3c6cbe56-1f1b-4e1a-9d55-0c2b6a0f7a11",
  now: 1_700_000_000,
};

describe("mkfsDevice", () => {
  it("writes the bytes mkfs writes to a new image file of the same size", async () => {
    const img = path.join(dir, "quota.img");
    const fromFile = await mkfs(img, { ...QUOTA, size: "16M" });
    const dev = new MemoryDevice(16 << 20);
    const fromDev = await mkfsDevice(dev, { ...QUOTA, knownZero: true });
    const want = new Uint8Array(readFileSync(img));
    expect(want.length).toBe(16 << 20);
    expect(fromDev.wrote).toBe(true);
    expect(fromDev.geometry.blocksCount).toBe(fromFile.geometry.blocksCount);
    expect(fromDev.bytesWritten).toBe(fromFile.bytesWritten);
    // toEqual on 16 MiB reports badly: compare the first differing offset.
    const got = dev.toBytes();
    expect(got.length).toBe(want.length);
    expect(got.findIndex((b, i) => b !== want[i])).toBe(-1);
  });

  it("mounts writable with quota loaded, and leaves the device open", async () => {
    const dev = new MemoryDevice(16 << 20);
    await mkfsDevice(dev, { ...QUOTA, knownZero: true });
    const vol = await Volume.mount(dev, { readOnly: false });
    expect(vol.quota).not.toBeNull();
    expect(vol.quota?.types()).toEqual(["usr", "grp", "prj"]);
    await vol.writeFile("/f", "hello");
    await vol.unmount();
  });

  it("formats a smaller filesystem when size asks for less, and zaps old data without knownZero", async () => {
    const dev = new MemoryDevice(16 << 20);
    await dev.write(0, new Uint8Array(4096).fill(0xaa)); // old boot sector
    const r = await mkfsDevice(dev, { ...QUOTA, size: "8M" });
    expect(r.geometry.blocksCount * r.geometry.blockSize).toBe(8 << 20);
    const bytes = dev.toBytes();
    expect(bytes.subarray(0, 1024).every((b) => b === 0)).toBe(true);
    const vol = await Volume.mount(dev);
    expect(vol.fs.blocksCount).toBe((8 << 20) / r.geometry.blockSize);
    await vol.unmount();
  });

  it("refuses a device holding a filesystem without force, and one too small for size", async () => {
    const dev = new MemoryDevice(16 << 20);
    await mkfsDevice(dev, { ...QUOTA, knownZero: true });
    await expect(mkfsDevice(dev, QUOTA)).rejects.toThrow(/contains an ext2\/ext3\/ext4 file system/);
    await expect(mkfsDevice(dev, { ...QUOTA, force: true })).resolves.toMatchObject({ wrote: true });
    await expect(mkfsDevice(new MemoryDevice(8 << 20), { ...QUOTA, size: "16M" })).rejects.toThrow(/Filesystem larger than apparent device size/);
  });
});
