import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ArrayBufferDevice, BlobDevice } from "../../src/device/blob.js";
import { FileDevice } from "../../src/device/file.js";
import { MemoryDevice } from "../../src/device/memory.js";
import { SimDevice } from "../../src/device/sim.js";
import { SimScheduler } from "../../src/sync/sim_scheduler.js";
import { blockDeviceSuite, type DeviceInit } from "./block_device_suite.js";

function padded({ size, contents }: DeviceInit): Uint8Array {
  const b = new Uint8Array(size);
  if (contents !== undefined) b.set(contents);
  return b;
}

blockDeviceSuite("MemoryDevice", {
  writable: true,
  create: ({ size, contents, readOnly }) =>
    Promise.resolve(MemoryDevice.from(contents ?? new Uint8Array(0), { size, readOnly })),
});

blockDeviceSuite("MemoryDevice (4 KiB chunks)", {
  writable: true,
  create: ({ size, contents, readOnly }) =>
    Promise.resolve(MemoryDevice.from(contents ?? new Uint8Array(0), { size, readOnly, chunkSize: 4096 })),
});

blockDeviceSuite("SimDevice (copy-on-write over a base image; points pass through outside a run)", {
  writable: true,
  create: ({ size, contents, readOnly }) =>
    Promise.resolve(new SimDevice(contents ?? new Uint8Array(0), new SimScheduler({ strategy: { kind: "random" }, seed: 1 }), { size, readOnly })),
});

let dir: string | undefined;
let files = 0;
blockDeviceSuite("FileDevice", {
  writable: true,
  async create({ size, contents, readOnly }) {
    dir ??= await mkdtemp(join(tmpdir(), "ext4ts-device-"));
    const path = join(dir, `dev${files++}.img`);
    await writeFile(path, contents ?? new Uint8Array(0));
    await truncate(path, size); // sparse
    return FileDevice.open(path, { readOnly });
  },
  async cleanup() {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  },
});

blockDeviceSuite("ArrayBufferDevice", {
  writable: false,
  create: (init) => Promise.resolve(new ArrayBufferDevice(padded(init).buffer)),
});

blockDeviceSuite("ArrayBufferDevice (Uint8Array view)", {
  writable: false,
  create: (init) => {
    const backing = new Uint8Array(init.size + 64).fill(0xcc);
    backing.set(padded(init), 32);
    return Promise.resolve(new ArrayBufferDevice(backing.subarray(32, 32 + init.size)));
  },
});

blockDeviceSuite("BlobDevice", {
  writable: false,
  create: (init) => Promise.resolve(new BlobDevice(new Blob([padded(init)]))),
});
