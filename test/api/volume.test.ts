import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { DEMO_IMAGE_GZ_BASE64 } from "../../tools/cli/demo_image.js";
import { ArrayBufferDevice, BlobDevice } from "../../src/device/blob.js";
import { MemoryDevice } from "../../src/device/memory.js";
import type { BlockDevice } from "../../src/device/block_device.js";
import { FsError } from "../../src/errors.js";
import { Volume } from "../../src/api/promises.js";

const image = new Uint8Array(gunzipSync(Buffer.from(DEMO_IMAGE_GZ_BASE64, "base64")));

const devices: [string, () => BlockDevice][] = [
  ["MemoryDevice", () => MemoryDevice.from(image, { readOnly: true })],
  ["ArrayBufferDevice (browser)", () => new ArrayBufferDevice(image.slice().buffer)],
  ["BlobDevice (browser)", () => new BlobDevice(new Blob([image]))],
];

describe.each(devices)("Volume on a %s", (_, make) => {
  it("walks the embedded image and reads files, symlinks and xattrs", async () => {
    const vol = await Volume.mount(make());
    const paths: string[] = [];
    for await (const e of vol.walk("/")) paths.push(e.path);
    expect(paths.length).toBe(309);
    expect([...paths].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(paths); // sorted as the manifest requires
    expect(new TextDecoder().decode(await vol.readFile("/docs/link-to-readme"))).toMatch(/^Hello from ext4ts\./);
    expect(await vol.readlink("/docs/link-to-readme")).toBe("../README.txt");
    expect((await vol.readlink("/docs/slow-symlink")).length).toBe(80);
    expect(await vol.listxattr("/README.txt")).toEqual(["user.comment"]);
    expect((await vol.getxattr("/etc/passwd", "user.big")).length).toBe(700);
    const st = await vol.stat("/README.txt");
    expect(st.mtimeNs).toBe(1795435200n * 1_000_000_000n); // mke2fs -d keeps whole seconds only
    expect(st.isFile()).toBe(true);
    await vol.unmount();
  });

  it("throws FsError with Node-like codes and context", async () => {
    const vol = await Volume.mount(make());
    await expect(vol.stat("/nope")).rejects.toThrow(new FsError("ENOENT", "No such file or directory", { syscall: "stat", path: "/nope" }).message);
    await expect(vol.readdir("/README.txt")).rejects.toMatchObject({ code: "ENOTDIR" });
    await expect(vol.readFile("/docs")).rejects.toMatchObject({ code: "EISDIR" });
    await expect(vol.getxattr("/README.txt", "user.absent")).rejects.toMatchObject({ code: "ENODATA" });
    await expect(vol.readlink("/README.txt")).rejects.toMatchObject({ code: "EINVAL" });
    await expect(vol.stat(`/${"x".repeat(256)}`)).rejects.toMatchObject({ code: "ENAMETOOLONG" });
    await vol.unmount();
  });
});

describe("Volume.mount on bad input", () => {
  it("refuses a device that is not ext2/3/4 with EINVAL", async () => {
    await expect(Volume.mount(new MemoryDevice(1 << 20))).rejects.toMatchObject({ code: "EINVAL" });
  });
  it("refuses a superblock with a bad checksum with EFSBADCRC", async () => {
    const bad = image.slice();
    bad[1024 + 0x3fc] = (bad[1024 + 0x3fc]! ^ 0xff) & 0xff;
    await expect(Volume.mount(MemoryDevice.from(bad))).rejects.toMatchObject({ code: "EFSBADCRC" });
  });
  it("refuses an unknown INCOMPAT feature with EOPNOTSUPP naming it", async () => {
    const bad = image.slice();
    bad[1024 + 0x60 + 3] = bad[1024 + 0x60 + 3]! | 0x80; // incompat bit 31
    // Keep the superblock checksum right so the feature check is what fails.
    const { superblockChecksum } = await import("../../src/format/checksum.js");
    new DataView(bad.buffer).setUint32(1024 + 0x3fc, superblockChecksum(bad.subarray(1024, 2048)), true);
    await expect(Volume.mount(MemoryDevice.from(bad))).rejects.toThrow(/unsupported INCOMPAT features: .*FEATURE_I31/);
  });
});
