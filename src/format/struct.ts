/**
 * Declarative on-disk structures: one table per structure (kernel field name, hex
 * offset, type with endianness) from which both decode and encode are derived. No
 * other code knows a field's offset.
 *
 * Encoding patches only the listed fields into an existing buffer, so bytes the table
 * does not name (reserved space, fields of features we do not know) survive a
 * decode/encode round trip unchanged.
 *
 * Structures whose on-disk length varies (the inode's extra fields end at
 * 128 + i_extra_isize; 32- vs 64-byte group descriptors) decode with a `limit`: fields
 * that do not lie entirely below it read as zero and are not written back.
 */

import { AssertionError } from "../debug/assert.js";

/** How one field is stored. `T` is the decoded JavaScript type. */
export interface FieldType<T> {
  readonly kind: string;
  readonly size: number;
  read(dv: DataView, off: number): T;
  write(dv: DataView, off: number, value: T): void;
  /** The value a field outside `limit` decodes as. */
  zero(): T;
}

export const u8: FieldType<number> = {
  kind: "u8",
  size: 1,
  read: (dv, off) => dv.getUint8(off),
  write: (dv, off, v) => dv.setUint8(off, v),
  zero: () => 0,
};

function uint(kind: string, size: 2 | 4, le: boolean): FieldType<number> {
  return size === 2
    ? {
        kind,
        size,
        read: (dv, off) => dv.getUint16(off, le),
        write: (dv, off, v) => dv.setUint16(off, v, le),
        zero: () => 0,
      }
    : {
        kind,
        size,
        read: (dv, off) => dv.getUint32(off, le),
        write: (dv, off, v) => dv.setUint32(off, v >>> 0, le),
        zero: () => 0,
      };
}

export const u16le = uint("u16le", 2, true);
export const u32le = uint("u32le", 4, true);
export const u16be = uint("u16be", 2, false);
export const u32be = uint("u32be", 4, false);

/** Signed 32-bit (e.g. the low half of a timestamp before the epoch bits are applied). */
export const s32le: FieldType<number> = {
  kind: "s32le",
  size: 4,
  read: (dv, off) => dv.getInt32(off, true),
  write: (dv, off, v) => dv.setInt32(off, v, true),
  zero: () => 0,
};

/** 64-bit fields where all 64 bits are real (e.g. s_kbytes_written, jbd2 sequence numbers). */
export const u64le: FieldType<bigint> = {
  kind: "u64le",
  size: 8,
  read: (dv, off) => dv.getBigUint64(off, true),
  write: (dv, off, v) => dv.setBigUint64(off, v, true),
  zero: () => 0n,
};
export const u64be: FieldType<bigint> = {
  kind: "u64be",
  size: 8,
  read: (dv, off) => dv.getBigUint64(off, false),
  write: (dv, off, v) => dv.setBigUint64(off, v, false),
  zero: () => 0n,
};

/** Raw bytes (UUIDs, names, i_block). Decoding copies, so the record never aliases a cache buffer. */
export function bytes(n: number): FieldType<Uint8Array> {
  return {
    kind: `u8[${n}]`,
    size: n,
    read: (dv, off) => new Uint8Array(dv.buffer, dv.byteOffset + off, n).slice(),
    write: (dv, off, v) => {
      if (v.length !== n) throw new AssertionError(`bytes(${n}) field given ${v.length} bytes`);
      new Uint8Array(dv.buffer, dv.byteOffset + off, n).set(v);
    },
    zero: () => new Uint8Array(n),
  };
}

/** A fixed-length array of one numeric type (s_hash_seed, s_jnl_blocks). */
export function array(elem: FieldType<number>, n: number): FieldType<number[]> {
  return {
    kind: `${elem.kind}[${n}]`,
    size: elem.size * n,
    read: (dv, off) => {
      const out = new Array<number>(n);
      for (let i = 0; i < n; i++) out[i] = elem.read(dv, off + i * elem.size);
      return out;
    },
    write: (dv, off, v) => {
      if (v.length !== n) throw new AssertionError(`${elem.kind}[${n}] field given ${v.length} elements`);
      for (let i = 0; i < n; i++) elem.write(dv, off + i * elem.size, v[i] ?? 0);
    },
    zero: () => new Array<number>(n).fill(0),
  };
}

export type FieldSpec = readonly [offset: number, type: FieldType<unknown>];
export type FieldTable = Readonly<Record<string, FieldSpec>>;

/** The decoded record of a table: every field name mapped to its decoded type. */
export type Decoded<F extends FieldTable> = {
  -readonly [K in keyof F]: F[K] extends readonly [number, FieldType<infer T>] ? T : never;
};

export interface Struct<F extends FieldTable> {
  readonly name: string;
  /** Size of the full structure in bytes. */
  readonly size: number;
  readonly fields: F;
  /** Byte offset of a field. */
  offsetOf(field: keyof F & string): number;
  /** Byte offset just past a field (to test it against a variable length such as 128 + i_extra_isize). */
  endOf(field: keyof F & string): number;
  /** Decode `limit` bytes at `offset` (default: the whole struct); fields past the limit read as zero. */
  decode(buf: Uint8Array, offset?: number, limit?: number): Decoded<F>;
  /** Patch the given fields into `buf`; fields past `limit` are skipped. */
  encode(value: Partial<Decoded<F>>, buf: Uint8Array, offset?: number, limit?: number): void;
}

export type FieldsOf<S> = S extends Struct<infer F> ? Decoded<F> : never;

/**
 * Declare a structure. Checks at load time that fields are sorted by offset, do not
 * overlap and fit `size`, so a typo in a table fails as soon as the module loads.
 */
export function defineStruct<F extends FieldTable>(name: string, size: number, fields: F): Struct<F> {
  const entries = Object.entries(fields) as [keyof F & string, FieldSpec][];
  let end = 0;
  for (const [field, [off, type]] of entries) {
    if (off < end) throw new AssertionError(`${name}.${field} at 0x${off.toString(16)} overlaps or is out of order`);
    end = off + type.size;
    if (end > size) throw new AssertionError(`${name}.${field} ends at 0x${end.toString(16)}, past size 0x${size.toString(16)}`);
  }
  const names = entries.map((e) => e[0]);
  const offs = entries.map((e) => e[1][0]);
  const types = entries.map((e) => e[1][1]);
  const n = entries.length;

  const view = (buf: Uint8Array): DataView => new DataView(buf.buffer, buf.byteOffset, buf.byteLength);

  return {
    name,
    size,
    fields,
    offsetOf: (field) => fields[field]![0], // keyof F guarantees presence
    endOf: (field) => fields[field]![0] + fields[field]![1].size,
    decode(buf, offset = 0, limit = size) {
      if (offset + Math.min(limit, size) > buf.length) {
        throw new AssertionError(`${name}: decode of ${Math.min(limit, size)} bytes at ${offset} past buffer of ${buf.length}`);
      }
      const dv = view(buf);
      const out: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        const t = types[i]!; // i < n
        const o = offs[i]!;
        out[names[i]!] = o + t.size <= limit ? t.read(dv, offset + o) : t.zero();
      }
      return out as Decoded<F>;
    },
    encode(value, buf, offset = 0, limit = size) {
      const dv = view(buf);
      const rec = value as Record<string, unknown>;
      for (let i = 0; i < n; i++) {
        const v = rec[names[i]!];
        if (v === undefined) continue;
        const t = types[i]!;
        const o = offs[i]!;
        if (o + t.size > limit) continue;
        t.write(dv, offset + o, v);
      }
    },
  };
}

/** Join a lo/hi pair of 32-bit halves into a safe integer. Not `<<`: JS shifts are 32-bit. */
export function join64(lo: number, hi: number): number {
  const v = hi * 2 ** 32 + lo;
  if (!Number.isSafeInteger(v)) throw new AssertionError(`64-bit value ${hi}:${lo} exceeds 2^53`);
  return v;
}

/** Split a safe integer into lo/hi 32-bit halves. */
export function split64(v: number): { lo: number; hi: number } {
  return { lo: v % 2 ** 32, hi: Math.floor(v / 2 ** 32) };
}

/** Read a NUL-padded char array as UTF-8 (volume names, mount paths). */
export function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
}

/** Format 16 bytes as a canonical UUID string. */
export function uuidToString(b: Uint8Array): string {
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
