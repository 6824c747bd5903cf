/**
 * blockDeviceSuite: the contract every BlockDevice keeps (src/device/block_device.ts),
 * run against each implementation by block_device.test.ts. A new device kind passes
 * this suite before anything builds on it.
 */

import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { BlockDevice } from "../../src/device/block_device.js";
import { isFsError } from "../../src/errors.js";

export interface DeviceInit {
  /** Device size in bytes. */
  size: number;
  /** Initial bytes from offset 0; the rest of the device reads as zeros. */
  contents?: Uint8Array;
  readOnly: boolean;
}

export interface DeviceFactory {
  /** Whether this kind of device can be opened writable at all (Blob: no). */
  readonly writable: boolean;
  create(init: DeviceInit): Promise<BlockDevice>;
  /** Called once after the suite. */
  cleanup?(): Promise<void>;
}

/** Deterministic non-zero-ish test pattern. */
export function pattern(length: number, seed = 1): Uint8Array {
  const b = new Uint8Array(length);
  let x = seed * 2654435761;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** toEqual for bytes, fast on success (vitest's deep equality is slow on big arrays). */
export function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  if (actual.length === expected.length && actual.every((x, i) => x === expected[i])) return;
  expect(actual).toEqual(expected);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected the promise to reject");
}

async function expectFsError(p: Promise<unknown>, code: string, messagePart?: string): Promise<void> {
  const e = await rejection(p);
  expect(isFsError(e), `expected FsError, got ${String(e)}`).toBe(true);
  if (!isFsError(e)) return;
  expect(e.code).toBe(code);
  if (messagePart !== undefined) expect(e.message).toContain(messagePart);
}

// Odd size crossing several 64 KiB boundaries (MemoryDevice's chunk size).
const SIZE = 3 * 65536 + 1000;

export function blockDeviceSuite(name: string, factory: DeviceFactory): void {
  describe(`BlockDevice conformance: ${name}`, () => {
    const opened: BlockDevice[] = [];
    const make = async (init: DeviceInit): Promise<BlockDevice> => {
      const dev = await factory.create(init);
      opened.push(dev);
      return dev;
    };
    afterEach(async () => {
      for (const dev of opened.splice(0)) await dev.close();
    });
    afterAll(async () => {
      await factory.cleanup?.();
    });

    it("reports its size, read-only flag and a description", async () => {
      const dev = await make({ size: SIZE, readOnly: true });
      expect(dev.size).toBe(SIZE);
      expect(dev.readOnly).toBe(true);
      expect(dev.description.length).toBeGreaterThan(0);
    });

    it("reads back its initial contents and zeros past them", async () => {
      const contents = pattern(70_000);
      const dev = await make({ size: SIZE, contents, readOnly: true });
      expectBytes(await dev.read(0, contents.length), contents);
      expectBytes(await dev.read(65_000, 2_000), contents.slice(65_000, 67_000));
      const tail = await dev.read(contents.length - 10, 20);
      expect(tail.subarray(0, 10)).toEqual(contents.subarray(-10));
      expect(tail.subarray(10)).toEqual(new Uint8Array(10));
      expectBytes(await dev.read(SIZE - 5000, 5000), new Uint8Array(5000));
    });

    it("read returns a fresh buffer the caller owns", async () => {
      const contents = pattern(4096);
      const dev = await make({ size: SIZE, contents, readOnly: true });
      const a = await dev.read(0, 4096);
      a.fill(0xee);
      const b = await dev.read(0, 4096);
      expectBytes(b, contents);
      expect(b.buffer).not.toBe(a.buffer);
    });

    it("readInto fills exactly the destination view", async () => {
      const contents = pattern(100_000, 7);
      const dev = await make({ size: SIZE, contents, readOnly: true });
      const backing = new Uint8Array(300).fill(0xaa);
      const dest = backing.subarray(100, 200);
      await dev.readInto(65_500, dest);
      expect(dest).toEqual(contents.slice(65_500, 65_600));
      expect(backing.subarray(0, 100)).toEqual(new Uint8Array(100).fill(0xaa));
      expect(backing.subarray(200)).toEqual(new Uint8Array(100).fill(0xaa));
    });

    it("reads of zero bytes succeed anywhere up to the end", async () => {
      const dev = await make({ size: SIZE, readOnly: true });
      expectBytes(await dev.read(SIZE, 0), new Uint8Array(0));
      await dev.readInto(0, new Uint8Array(0));
    });

    it("reads the very last byte", async () => {
      const contents = pattern(SIZE, 3);
      const dev = await make({ size: SIZE, contents, readOnly: true });
      expectBytes(await dev.read(SIZE - 1, 1), contents.subarray(SIZE - 1));
    });

    it("reading past the end fails with EIO naming the offset, short reads included", async () => {
      const dev = await make({ size: SIZE, readOnly: true });
      await expectFsError(dev.read(SIZE - 1, 2), "EIO", String(SIZE - 1));
      await expectFsError(dev.read(SIZE, 1), "EIO", String(SIZE));
      await expectFsError(dev.read(SIZE + 4096, 4096), "EIO", String(SIZE + 4096));
      await expectFsError(dev.readInto(SIZE - 100, new Uint8Array(4096)), "EIO", String(SIZE - 100));
    });

    it("negative offsets are caller bugs (AssertionError), not errnos", async () => {
      const dev = await make({ size: SIZE, readOnly: true });
      const e = await rejection(dev.read(-1, 1));
      expect(e).toBeInstanceOf(Error);
      expect((e as Error).name).toBe("AssertionError");
    });

    it("writes to a read-only device fail with EROFS and change nothing", async () => {
      const contents = pattern(8192);
      const dev = await make({ size: SIZE, contents, readOnly: true });
      await expectFsError(dev.write(0, new Uint8Array(512)), "EROFS");
      await expectFsError(dev.write(SIZE + 10, new Uint8Array(512)), "EROFS"); // EROFS wins over the range
      expectBytes(await dev.read(0, 8192), contents);
      await dev.flush();
    });

    it("fails every operation after close with EBADF; close is idempotent", async () => {
      const dev = await make({ size: SIZE, readOnly: true });
      await dev.close();
      await dev.close();
      await expectFsError(dev.read(0, 1), "EBADF");
      await expectFsError(dev.readInto(0, new Uint8Array(1)), "EBADF");
      await expectFsError(dev.flush(), "EBADF");
    });

    it("serves concurrent reads", async () => {
      const contents = pattern(SIZE, 9);
      const dev = await make({ size: SIZE, contents, readOnly: true });
      const offsets = [0, 1000, 65_530, 131_000, SIZE - 4096];
      const got = await Promise.all(offsets.map((o) => dev.read(o, 4096)));
      got.forEach((b, i) => {
        const o = offsets[i]!;
        expectBytes(b, contents.slice(o, o + 4096));
      });
    });

    if (!factory.writable) return;

    it("reads back what was written, across chunk boundaries", async () => {
      const dev = await make({ size: SIZE, readOnly: false });
      expect(dev.readOnly).toBe(false);
      const data = pattern(70_000, 5);
      await dev.write(60_000, data);
      expectBytes(await dev.read(60_000, 70_000), data);
      expectBytes(await dev.read(59_990, 10), new Uint8Array(10));
      expectBytes(await dev.read(130_000, 10), new Uint8Array(10));
      await dev.write(65_535, new Uint8Array([1, 2, 3]));
      expectBytes(await dev.read(65_534, 5), new Uint8Array([data[5534]!, 1, 2, 3, data[5538]!]));
    });

    it("keeps initial contents around written ranges", async () => {
      const contents = pattern(SIZE, 11);
      const dev = await make({ size: SIZE, contents, readOnly: false });
      await dev.write(100, new Uint8Array(50));
      const expected = contents.slice(0, 300);
      expected.fill(0, 100, 150);
      expectBytes(await dev.read(0, 300), expected);
    });

    it("reads never-written ranges of a large device as zeros", async () => {
      const big = 1024 ** 3; // 1 GiB: must stay sparse
      const dev = await make({ size: big, readOnly: false });
      await dev.write(big / 2, pattern(4096));
      await dev.write(big - 4096, pattern(4096, 2));
      expectBytes(await dev.read(0, 65_536), new Uint8Array(65_536));
      expectBytes(await dev.read(big / 2 - 4096, 4096), new Uint8Array(4096));
      expectBytes(await dev.read(big / 2, 4096), pattern(4096));
      expectBytes(await dev.read(big - 4096, 4096), pattern(4096, 2));
    });

    it("writing past the end fails with EIO and writes nothing", async () => {
      const dev = await make({ size: SIZE, readOnly: false });
      await expectFsError(dev.write(SIZE - 10, new Uint8Array(20).fill(7)), "EIO", String(SIZE - 10));
      await expectFsError(dev.write(SIZE, new Uint8Array(1)), "EIO");
      expectBytes(await dev.read(SIZE - 10, 10), new Uint8Array(10));
      expect(dev.size).toBe(SIZE);
    });

    it("does not keep the caller's write buffer", async () => {
      const dev = await make({ size: SIZE, readOnly: false });
      const data = pattern(1024);
      const copy = data.slice();
      await dev.write(0, data);
      data.fill(0);
      expectBytes(await dev.read(0, 1024), copy);
    });

    it("writes from a view at its own offset", async () => {
      const dev = await make({ size: SIZE, readOnly: false });
      const backing = pattern(300);
      await dev.write(10, backing.subarray(100, 200));
      expectBytes(await dev.read(10, 100), backing.slice(100, 200));
    });

    it("lands concurrent writes to disjoint ranges, then flushes", async () => {
      const dev = await make({ size: SIZE, readOnly: false });
      const parts = [0, 1, 2, 3, 4, 5].map((i) => ({ offset: i * 30_000 + 17, data: pattern(20_000, i + 20) }));
      await Promise.all(parts.map((p) => dev.write(p.offset, p.data)));
      await dev.flush();
      for (const p of parts) expectBytes(await dev.read(p.offset, p.data.length), p.data);
    });

    it("fails writes after close with EBADF", async () => {
      const dev = await make({ size: SIZE, readOnly: false });
      await dev.close();
      await expectFsError(dev.write(0, new Uint8Array(1)), "EBADF");
    });
  });
}
