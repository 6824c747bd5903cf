import { describe, expect, it } from "vitest";
import { AssertionError } from "../debug/assert.js";
import { isFsError } from "../errors.js";
import { readBlock, readBlocks, settle, writeBlock } from "./block_device.js";
import { MemoryDevice } from "./memory.js";

describe("block helpers", () => {
  it("readBlock() and writeBlock() address whole blocks", async () => {
    const dev = new MemoryDevice(8 * 1024);
    const data = new Uint8Array(1024).fill(5);
    await writeBlock(dev, 1024, 3, data);
    expect(await readBlock(dev, 1024, 3)).toEqual(data);
    expect(await dev.read(3 * 1024 - 1, 1)).toEqual(new Uint8Array(1));
    expect(await readBlock(dev, 1024, 2)).toEqual(new Uint8Array(1024));
  });

  it("readBlocks() reads a run in one call", async () => {
    const dev = new MemoryDevice(8 * 512);
    await writeBlock(dev, 512, 2, new Uint8Array(1024).fill(9)); // two blocks at once
    const run = await readBlocks(dev, 512, 1, 3);
    expect(run.length).toBe(1536);
    expect(run.subarray(0, 512)).toEqual(new Uint8Array(512));
    expect(run.subarray(512)).toEqual(new Uint8Array(1024).fill(9));
  });

  it("readBlock() past the end rejects with EIO", async () => {
    const dev = new MemoryDevice(4096);
    const e: unknown = await readBlock(dev, 1024, 4).catch((x: unknown) => x);
    expect(isFsError(e, "EIO")).toBe(true);
  });

  it("writeBlock() of a partial block is a caller bug", async () => {
    const dev = new MemoryDevice(4096);
    await expect(writeBlock(dev, 1024, 0, new Uint8Array(100))).rejects.toBeInstanceOf(AssertionError);
    await expect(readBlock(dev, 1024, -1)).rejects.toBeInstanceOf(AssertionError);
    await expect(readBlock(dev, 0, 1)).rejects.toBeInstanceOf(AssertionError);
  });

  it("settle() turns a throw into a rejection", async () => {
    let p: Promise<number> | undefined;
    expect(() => {
      p = settle(() => {
        throw new Error("boom");
      });
    }).not.toThrow();
    await expect(p).rejects.toThrow("boom");
    expect(await settle(() => 7)).toBe(7);
  });
});
