import { describe, expect, it } from "vitest";
import { isFsError } from "../errors.js";
import { ArrayBufferDevice, BlobDevice, type BlobLike } from "./blob.js";

class CountingBlob implements BlobLike {
  slices: [number, number][] = [];
  constructor(
    readonly inner: BlobLike,
    readonly fail = false,
  ) {}
  get size(): number {
    return this.inner.size;
  }
  slice(start = 0, end = this.size): { arrayBuffer(): Promise<ArrayBuffer> } {
    this.slices.push([start, end]);
    const part = this.inner.slice(start, end);
    if (!this.fail) return part;
    return { arrayBuffer: () => Promise.reject(new Error("NotReadableError")) };
  }
}

describe("BlobDevice", () => {
  it("reads only the slice asked for", async () => {
    const bytes = new Uint8Array(10_000).map((_, i) => i & 0xff);
    const blob = new CountingBlob(new Blob([bytes]));
    const dev = new BlobDevice(blob, { description: "file 'disk.img'" });
    expect(await dev.read(5000, 10)).toEqual(bytes.slice(5000, 5010));
    expect(blob.slices).toEqual([[5000, 5010]]);
    expect(dev.description).toBe("file 'disk.img'");
  });

  it("reports a failing Blob read as EIO with the cause", async () => {
    const dev = new BlobDevice(new CountingBlob(new Blob([new Uint8Array(100)]), true));
    const e: unknown = await dev.read(0, 10).catch((x: unknown) => x);
    expect(isFsError(e, "EIO")).toBe(true);
    expect((e as Error).cause).toBeInstanceOf(Error);
  });

  it("reports a Blob that came back short as EIO", async () => {
    const short: BlobLike = { size: 100, slice: () => ({ arrayBuffer: () => Promise.resolve(new ArrayBuffer(5)) }) };
    const e: unknown = await new BlobDevice(short).read(0, 10).catch((x: unknown) => x);
    expect(isFsError(e, "EIO")).toBe(true);
  });
});

describe("ArrayBufferDevice", () => {
  it("does not copy the bytes but returns copies", async () => {
    const bytes = new Uint8Array(64);
    const dev = new ArrayBufferDevice(bytes);
    bytes[3] = 7;
    const got = await dev.read(0, 8);
    expect(got[3]).toBe(7);
    got[3] = 9;
    expect(bytes[3]).toBe(7);
  });

  it("is always read-only", async () => {
    const dev = new ArrayBufferDevice(new ArrayBuffer(16));
    expect(dev.readOnly).toBe(true);
    const e: unknown = await dev.write(0, new Uint8Array(1)).catch((x: unknown) => x);
    expect(isFsError(e, "EROFS")).toBe(true);
  });
});
