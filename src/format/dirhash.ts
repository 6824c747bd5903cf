/**
 * Directory entry name hashing for hash-indexed (dir_index, htree) directories.
 *
 * The hash picks the leaf block a name lives in, so it must match the kernel bit for
 * bit. Port of ext4fs_dirhash (Linux fs/ext4/hash.c; e2fsprogs lib/ext2fs/dirhash.c):
 * legacy dx_hack_hash, half-MD4 and TEA, each in a "signed" and an "unsigned" variant.
 * The variants exist because the original code fed `char` bytes to the hash and `char`
 * is signed on x86 but unsigned on arm/ppc, so names with bytes >= 0x80 hashed
 * differently by platform; the superblock's EXT2_FLAGS_{SIGNED,UNSIGNED}_HASH records
 * which one a filesystem was made with, and effectiveHashVersion() applies it.
 *
 * Casefolding (the name is casefolded before hashing) and SipHash (casefold+encrypt)
 * belong to the caller / are unsupported here.
 *
 * All arithmetic is on unsigned 32-bit values: `>>> 0` after additions, Math.imul for
 * products, since JS numbers would otherwise keep carries C drops.
 */

import { FsError } from "../errors.js";

export const DX_HASH_LEGACY = 0;
export const DX_HASH_HALF_MD4 = 1;
export const DX_HASH_TEA = 2;
export const DX_HASH_LEGACY_UNSIGNED = 3;
export const DX_HASH_HALF_MD4_UNSIGNED = 4;
export const DX_HASH_TEA_UNSIGNED = 5;
export const DX_HASH_SIPHASH = 6;

/** s_def_hash_version / dx_root_info.hash_version values. */
export type DxHashVersion =
  | typeof DX_HASH_LEGACY
  | typeof DX_HASH_HALF_MD4
  | typeof DX_HASH_TEA
  | typeof DX_HASH_LEGACY_UNSIGNED
  | typeof DX_HASH_HALF_MD4_UNSIGNED
  | typeof DX_HASH_TEA_UNSIGNED
  | typeof DX_HASH_SIPHASH;

/** s_flags bits saying how names were hashed when the filesystem was made. */
export const EXT2_FLAGS_SIGNED_HASH = 0x0001;
export const EXT2_FLAGS_UNSIGNED_HASH = 0x0002;

/** Largest 31-bit hash; the htree code uses its double as the end-of-directory cookie. */
export const EXT4_HTREE_EOF_32BIT = 0x7fffffff;

export interface DxHash {
  /** Major hash, always even (bit 0 is the htree collision-continuation flag). */
  hash: number;
  /** Minor hash; 0 for the legacy hash. */
  minorHash: number;
}

/** MD4 initial state, used when s_hash_seed is all zero. */
const DEFAULT_SEED: readonly number[] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

export function isDxHashVersion(v: number): v is DxHashVersion {
  return Number.isInteger(v) && v >= DX_HASH_LEGACY && v <= DX_HASH_SIPHASH;
}

/**
 * The hash version a directory created with `defHashVersion` (s_def_hash_version)
 * actually uses: with EXT2_FLAGS_UNSIGNED_HASH set in s_flags, legacy/half-MD4/TEA
 * become their unsigned variants (the kernel adds sbi->s_hash_unsigned = 3). Other
 * values pass through unchanged. The same rule applies to a dx_root's
 * info.hash_version, which holds the signed-style value on disk (dx_probe).
 * @kernel __ext4_fill_super (sbi->s_hash_unsigned), dx_probe, ext4_htree_fill_tree
 */
export function effectiveHashVersion(defHashVersion: number, unsignedFlag: boolean): number {
  return unsignedFlag && defHashVersion >= DX_HASH_LEGACY && defHashVersion <= DX_HASH_TEA
    ? defHashVersion + 3
    : defHashVersion;
}

const hashState = new Uint32Array(4);
const hashInput8 = new Uint32Array(8);
const hashInput4 = new Uint32Array(4);

/**
 * Hash of a directory entry name. `seed` is s_hash_seed as four u32 (little-endian
 * on disk); null or all zero selects the default MD4 seed. Throws
 * FsError("EOPNOTSUPP") for DX_HASH_SIPHASH (needs the encryption key) and
 * FsError("EINVAL") for unknown versions, as the kernel rejects them.
 * @kernel ext4fs_dirhash (fs/ext4/hash.c), e2fsprogs ext2fs_dirhash
 */
export function dirhash(name: Uint8Array, version: DxHashVersion, seed: readonly number[] | null): DxHash {
  // Scratch words reused by every call (nothing here awaits): pass 3A hashes every name of a
  // volume, and four small typed arrays per name cost more than the hashing.
  const buf = hashState;
  let seeded = false;
  if (seed !== null) for (let i = 0; i < 4; i++) if ((seed[i] ?? 0) !== 0) seeded = true;
  for (let i = 0; i < 4; i++) buf[i] = seeded ? (seed?.[i] ?? 0) : DEFAULT_SEED[i]!;

  let hash: number;
  let minorHash = 0;
  switch (version) {
    case DX_HASH_LEGACY:
    case DX_HASH_LEGACY_UNSIGNED:
      hash = dxHackHash(name, version === DX_HASH_LEGACY_UNSIGNED);
      break;
    case DX_HASH_HALF_MD4:
    case DX_HASH_HALF_MD4_UNSIGNED: {
      const unsigned = version === DX_HASH_HALF_MD4_UNSIGNED;
      const input = hashInput8;
      for (let p = 0; p < name.length; p += 32) {
        str2hashbuf(name, p, name.length - p, input, unsigned);
        halfMd4Transform(buf, input);
      }
      hash = buf[1]!; // buf has 4 words
      minorHash = buf[2]!;
      break;
    }
    case DX_HASH_TEA:
    case DX_HASH_TEA_UNSIGNED: {
      const unsigned = version === DX_HASH_TEA_UNSIGNED;
      const input = hashInput4;
      for (let p = 0; p < name.length; p += 16) {
        str2hashbuf(name, p, name.length - p, input, unsigned);
        teaTransform(buf, input);
      }
      hash = buf[0]!; // buf has 4 words
      minorHash = buf[1]!;
      break;
    }
    case DX_HASH_SIPHASH:
      throw new FsError("EOPNOTSUPP", "Cannot hash name: siphash directory hash needs the encryption key");
    default:
      throw new FsError("EINVAL", `Cannot hash name: unknown hash version ${String(version)}`);
  }

  // Bit 0 is reserved for the collision flag, and 0xfffffffe would read as EOF.
  hash = (hash & ~1) >>> 0;
  if (hash === (EXT4_HTREE_EOF_32BIT << 1) >>> 0) hash = ((EXT4_HTREE_EOF_32BIT - 1) << 1) >>> 0;
  return { hash, minorHash: minorHash >>> 0 };
}

/** Name byte as C `signed char` or `unsigned char` promoted to int. */
function nameByte(name: Uint8Array, i: number, unsigned: boolean): number {
  const b = name[i]!; // callers index inside name
  return unsigned ? b : (b << 24) >> 24;
}

/** @kernel dx_hack_hash_signed / dx_hack_hash_unsigned */
function dxHackHash(name: Uint8Array, unsigned: boolean): number {
  let hash0 = 0x12a3fe2d;
  let hash1 = 0x37abe8f9;
  for (let i = 0; i < name.length; i++) {
    let hash = (hash1 + ((hash0 ^ Math.imul(nameByte(name, i, unsigned), 7152373)) >>> 0)) >>> 0;
    if (hash & 0x80000000) hash = (hash - 0x7fffffff) >>> 0;
    hash1 = hash0;
    hash0 = hash;
  }
  return (hash0 << 1) >>> 0;
}

/**
 * Packs up to out.length*4 bytes of name[p..p+len) big-endian-ish into `out`, padding
 * with a word made of the (remaining) length. Signed bytes are added with their sign,
 * so a byte >= 0x80 borrows from the bytes packed before it, as in C.
 * @kernel str2hashbuf_signed / str2hashbuf_unsigned
 */
function str2hashbuf(name: Uint8Array, p: number, len: number, out: Uint32Array, unsigned: boolean): void {
  let pad = (len | (len << 8)) >>> 0;
  pad = (pad | (pad << 16)) >>> 0;
  let num = out.length;
  const n = Math.min(len, num * 4);
  let o = 0;
  let val = pad;
  for (let i = 0; i < n; i++) {
    val = (nameByte(name, p + i, unsigned) + (val << 8)) >>> 0;
    if (i % 4 === 3) {
      out[o++] = val;
      val = pad;
      num--;
    }
  }
  if (--num >= 0) out[o++] = val;
  while (--num >= 0) out[o++] = pad;
}

function rol32(x: number, s: number): number {
  return ((x << s) | (x >>> (32 - s))) >>> 0;
}

const K2 = 0o13240474631;
const K3 = 0o15666365641;

/**
 * Cut-down MD4 (three rounds over eight words) folded into `buf`.
 * @kernel half_md4_transform
 */
function halfMd4Transform(buf: Uint32Array, x: Uint32Array): void {
  // buf holds 4 words and x 8 (allocated by dirhash), so every index below exists.
  let a = buf[0]!;
  let b = buf[1]!;
  let c = buf[2]!;
  let d = buf[3]!;
  const F = (p: number, q: number, r: number): number => r ^ (p & (q ^ r));
  const G = (p: number, q: number, r: number): number => (p & q) + ((p ^ q) & r);
  const H = (p: number, q: number, r: number): number => p ^ q ^ r;
  const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
  const x4 = x[4]!, x5 = x[5]!, x6 = x[6]!, x7 = x[7]!;

  // Round 1
  a = rol32(a + F(b, c, d) + x0, 3);
  d = rol32(d + F(a, b, c) + x1, 7);
  c = rol32(c + F(d, a, b) + x2, 11);
  b = rol32(b + F(c, d, a) + x3, 19);
  a = rol32(a + F(b, c, d) + x4, 3);
  d = rol32(d + F(a, b, c) + x5, 7);
  c = rol32(c + F(d, a, b) + x6, 11);
  b = rol32(b + F(c, d, a) + x7, 19);

  // Round 2
  a = rol32(a + G(b, c, d) + x1 + K2, 3);
  d = rol32(d + G(a, b, c) + x3 + K2, 5);
  c = rol32(c + G(d, a, b) + x5 + K2, 9);
  b = rol32(b + G(c, d, a) + x7 + K2, 13);
  a = rol32(a + G(b, c, d) + x0 + K2, 3);
  d = rol32(d + G(a, b, c) + x2 + K2, 5);
  c = rol32(c + G(d, a, b) + x4 + K2, 9);
  b = rol32(b + G(c, d, a) + x6 + K2, 13);

  // Round 3
  a = rol32(a + H(b, c, d) + x3 + K3, 3);
  d = rol32(d + H(a, b, c) + x7 + K3, 9);
  c = rol32(c + H(d, a, b) + x2 + K3, 11);
  b = rol32(b + H(c, d, a) + x6 + K3, 15);
  a = rol32(a + H(b, c, d) + x1 + K3, 3);
  d = rol32(d + H(a, b, c) + x5 + K3, 9);
  c = rol32(c + H(d, a, b) + x0 + K3, 11);
  b = rol32(b + H(c, d, a) + x4 + K3, 15);

  buf[0] = buf[0]! + a;
  buf[1] = buf[1]! + b;
  buf[2] = buf[2]! + c;
  buf[3] = buf[3]! + d;
}

const TEA_DELTA = 0x9e3779b9;

/** @kernel TEA_transform */
function teaTransform(buf: Uint32Array, x: Uint32Array): void {
  // buf and x hold 4 words each (allocated by dirhash), so every index below exists.
  let sum = 0;
  let b0 = buf[0]!;
  let b1 = buf[1]!;
  const a = x[0]!, b = x[1]!, c = x[2]!, d = x[3]!;
  for (let n = 0; n < 16; n++) {
    sum = (sum + TEA_DELTA) >>> 0;
    b0 = (b0 + ((((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >>> 5) + b)) >>> 0)) >>> 0;
    b1 = (b1 + ((((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >>> 5) + d)) >>> 0)) >>> 0;
  }
  buf[0] = buf[0]! + b0;
  buf[1] = buf[1]! + b1;
}
