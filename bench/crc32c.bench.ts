// Micro-benchmark: `npx vitest bench bench/crc32c.bench.ts`.
import { bench, describe } from "vitest";
import { crc32c } from "../src/format/crc.js";
import { dirhash, DX_HASH_HALF_MD4, DX_HASH_TEA } from "../src/format/dirhash.js";

const big = new Uint8Array(1 << 20).map((_, i) => Math.imul(i, 0x9e3779b1) >>> 24);
const block = big.subarray(0, 4096);
const unaligned = big.subarray(1, 4097);
const name = new TextEncoder().encode("a-typical-file-name.txt");

describe("crc32c", () => {
  bench("1 MiB", () => {
    crc32c(0xffffffff, big);
  });
  bench("4 KiB block", () => {
    crc32c(0xffffffff, block);
  });
  bench("4 KiB block, unaligned", () => {
    crc32c(0xffffffff, unaligned);
  });
  bench("256-byte inode", () => {
    crc32c(0xffffffff, big, 0, 256);
  });
});

describe("dirhash", () => {
  bench("half_md4, 23-byte name", () => {
    dirhash(name, DX_HASH_HALF_MD4, null);
  });
  bench("tea, 23-byte name", () => {
    dirhash(name, DX_HASH_TEA, null);
  });
});
