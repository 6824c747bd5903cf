import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AssertionError } from "../debug/assert.js";
import { MemoryDevice } from "./memory.js";

describe("MemoryDevice", () => {
  it("allocates chunks only where non-zero data was written", async () => {
    const dev = new MemoryDevice(2 ** 40); // 1 TiB
    expect(dev.bytesAllocated).toBe(0);
    await dev.write(2 ** 39 + 10, new Uint8Array([1, 2, 3]));
    expect(dev.bytesAllocated).toBe(64 * 1024);
    await dev.write(2 ** 39 + 65_530, new Uint8Array(12).fill(1)); // straddles two chunks
    expect(dev.bytesAllocated).toBe(2 * 64 * 1024);
    expect(await dev.read(2 ** 39 + 9, 5)).toEqual(new Uint8Array([0, 1, 2, 3, 0]));
  });

  it("writing zeros into unallocated space allocates nothing", async () => {
    const dev = new MemoryDevice(1 << 20);
    await dev.write(0, new Uint8Array(1 << 20));
    expect(dev.bytesAllocated).toBe(0);
    await dev.write(100, new Uint8Array([7]));
    await dev.write(100, new Uint8Array([0])); // an allocated chunk is overwritten in place
    expect(dev.bytesAllocated).toBe(64 * 1024);
    expect(await dev.read(100, 1)).toEqual(new Uint8Array([0]));
  });

  it("from() copies the bytes and skips all-zero chunks", async () => {
    const bytes = new Uint8Array(5 * 65_536);
    bytes[3 * 65_536 + 7] = 42;
    const dev = MemoryDevice.from(bytes);
    bytes[3 * 65_536 + 7] = 0;
    expect(dev.size).toBe(bytes.length);
    expect(dev.bytesAllocated).toBe(65_536);
    expect(await dev.read(3 * 65_536 + 7, 1)).toEqual(new Uint8Array([42]));
  });

  it("from() with a larger size reads zeros past the bytes, even when read-only", async () => {
    const dev = MemoryDevice.from(new Uint8Array([1, 2]), { size: 10, readOnly: true });
    expect(dev.readOnly).toBe(true);
    expect(await dev.read(0, 10)).toEqual(new Uint8Array([1, 2, 0, 0, 0, 0, 0, 0, 0, 0]));
    expect(() => MemoryDevice.from(new Uint8Array(3), { size: 2 })).toThrow(AssertionError);
  });

  it("sizes the last chunk to the device end", async () => {
    const dev = new MemoryDevice(65_536 + 100);
    await dev.write(65_536 + 99, new Uint8Array([9]));
    expect(dev.bytesAllocated).toBe(100);
    expect(dev.toBytes()[65_536 + 99]).toBe(9);
  });

  it("toBytes() returns the full contents, also after close", async () => {
    const dev = new MemoryDevice(300, { chunkSize: 64 });
    await dev.write(60, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    await dev.close();
    const all = dev.toBytes();
    expect(all.length).toBe(300);
    expect(all.subarray(58, 70)).toEqual(new Uint8Array([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0]));
  });

  it("rejects chunk sizes that are not powers of two", () => {
    expect(() => new MemoryDevice(100, { chunkSize: 100 })).toThrow(AssertionError);
  });

  it("matches a flat array under random writes and reads", async () => {
    const size = 1000;
    const op = fc.record({
      offset: fc.integer({ min: 0, max: size }),
      data: fc.uint8Array({ maxLength: 300 }),
      readLen: fc.integer({ min: 0, max: 300 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 30 }), fc.constantFrom(16, 64, 256), async (ops, chunkSize) => {
        const dev = new MemoryDevice(size, { chunkSize });
        const model = new Uint8Array(size);
        for (const { offset, data, readLen } of ops) {
          const len = Math.min(data.length, size - offset);
          await dev.write(offset, data.subarray(0, len));
          model.set(data.subarray(0, len), offset);
          const rlen = Math.min(readLen, size - offset);
          expect(await dev.read(offset, rlen)).toEqual(model.slice(offset, offset + rlen));
        }
        expect(dev.toBytes()).toEqual(model);
        expect(dev.bytesAllocated).toBeLessThanOrEqual(size);
      }),
    );
  });
});
