import { describe, expect, it } from "vitest";
import { decodeInode } from "../format/inode.js";
import { decodeInodeFast } from "./inode_fast.js";

describe("decodeInodeFast", () => {
  it("decodes exactly what decodeInode does, whatever the bytes and i_extra_isize", () => {
    let seed = 12345;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 24;
    };
    for (const isz of [128, 256, 512]) {
      for (let t = 0; t < 200; t++) {
        const buf = new Uint8Array(isz * 2);
        for (let i = 0; i < buf.length; i++) buf[i] = rnd();
        // i_extra_isize: small, odd, zero or past the inode, to cover every limit
        const extra = [0, 1, 2, 4, 28, 32, 100, 400, 0xffff][t % 9]!;
        buf[isz + 0x80] = extra & 0xff;
        buf[isz + 0x81] = extra >>> 8;
        expect(decodeInodeFast(buf, isz, isz)).toEqual(decodeInode(buf, isz, isz));
      }
    }
  });
});
