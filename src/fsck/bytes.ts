/** Little-endian reads and writes on raw on-disk bytes, for the repairs that patch blocks in place. */

export const u16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
export const u32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

export const put16 = (b: Uint8Array, o: number, x: number): void => {
  b[o] = x & 0xff;
  b[o + 1] = (x >>> 8) & 0xff;
};

export const put32 = (b: Uint8Array, o: number, x: number): void => {
  put16(b, o, x & 0xffff);
  put16(b, o + 2, x >>> 16);
};
