/**
 * Extended attributes as Linux (VFS + ext4, caller root, mounted with acl and user_xattr)
 * handles them, for the write model (fs_model.ts): the VFS checks and their order, POSIX ACLs
 * (the VFS format setxattr takes and getxattr gives, mode bits kept in step, inheritance of
 * default ACLs, chmod), and where ext4 puts each entry, so the model predicts ENOSPC exactly.
 *
 * ext4's space rule (@kernel ext4_xattr_set_handle, ext4_xattr_set_entry): an entry costs
 * EXT4_XATTR_LEN(name) = round4(16 + name bytes after the prefix) in the entry table plus
 * round4(value bytes) in the value area; an area holds its entries plus a 4-byte terminator.
 * The inode body (after i_extra_isize and a 4-byte header) is tried first; if the entry does not
 * fit there it goes to the one external block (32-byte header), and a copy in the other place
 * is removed; ENOSPC when it fits in neither. Areas stay packed, so only the sums matter. ACLs
 * are stored under empty names (index 2 and 3) in ext4's compact form: 4-byte header, 4 bytes
 * per USER_OBJ/GROUP_OBJ/MASK/OTHER entry, 8 per named USER/GROUP entry. No ea_inode.
 *
 * Which block a set shares with other inodes does not show in a manifest; e2fsck checks the
 * refcounts and i_blocks.
 *
 * This file must not import from src/: it is an independent oracle.
 */

export const XATTR_CREATE = 0x1;
export const XATTR_REPLACE = 0x2;
/** Longest full name (prefix included) the VFS takes: ERANGE beyond, and for "". */
const XATTR_NAME_MAX = 255;
/** Largest value the VFS takes: E2BIG beyond. */
export const XATTR_SIZE_MAX = 65536;

export const ACL_ACCESS = "system.posix_acl_access";
export const ACL_DEFAULT = "system.posix_acl_default";

export const ACL_USER_OBJ = 0x01;
export const ACL_USER = 0x02;
export const ACL_GROUP_OBJ = 0x04;
export const ACL_GROUP = 0x08;
export const ACL_MASK = 0x10;
export const ACL_OTHER = 0x20;
/** The e_id Linux reports for entries without one (and ignores on input). */
export const ACL_UNDEFINED_ID = 0xffffffff;

export interface AclEntry {
  readonly tag: number;
  readonly perm: number;
  /** ACL_UNDEFINED_ID for the entries without an id, as Linux reports them. */
  readonly id: number;
}

const utf8 = new TextEncoder();

function byteLength(s: string): number {
  return utf8.encode(s).length;
}

function round4(n: number): number {
  return (n + 3) & ~3;
}

function named(tag: number): boolean {
  return tag === ACL_USER || tag === ACL_GROUP;
}

// ---------------------------------------------------------------------------------------------
// ACLs in the VFS format

const u = (perm: number, id = ACL_UNDEFINED_ID): AclEntry => ({ tag: ACL_USER_OBJ, perm, id });
const nu = (id: number, perm: number): AclEntry => ({ tag: ACL_USER, perm, id });
const g = (perm: number, id = ACL_UNDEFINED_ID): AclEntry => ({ tag: ACL_GROUP_OBJ, perm, id });
const ng = (id: number, perm: number): AclEntry => ({ tag: ACL_GROUP, perm, id });
const m = (perm: number, id = ACL_UNDEFINED_ID): AclEntry => ({ tag: ACL_MASK, perm, id });
const o = (perm: number, id = ACL_UNDEFINED_ID): AclEntry => ({ tag: ACL_OTHER, perm, id });
const manyUsers = (n: number, perm: number): AclEntry[] => Array.from({ length: n }, (_x, i) => nu(1000 + i, perm));

/**
 * ACLs the generators pick from (`acl:N` value specs; setfacl would send the same bytes).
 * Entries are in the order setxattr takes them; short entries carry ACL_UNDEFINED_ID except
 * where noted (Linux ignores their ids and reports ACL_UNDEFINED_ID).
 */
export const ACL_POOL: readonly (readonly AclEntry[])[] = [
  /* 0 */ [], // a bare header: no ACL (removes it)
  /* 1 */ [u(6), g(4), o(4)], // u::rw-,g::r--,o::r--: the mode 0644, nothing stored
  /* 2 */ [u(7), g(5), o(0)], // mode 0750
  /* 3 */ [u(6), nu(1000, 7), g(4), m(7), o(0)],
  /* 4 */ [u(7), g(5), ng(100, 7), m(5), o(5)],
  /* 5 */ [u(7), ...manyUsers(24, 5), g(5), m(7), o(0)], // 212 bytes on disk: never in a 256-byte inode
  /* 6 */ [u(4, 0), nu(70000, 6), g(0, 0), ng(65534, 4), m(6, 0), o(4, 0)], // ids 0 on short entries
  /* 7 */ [u(6), nu(1000, 4), g(4), o(4)], // EINVAL: named entry without a mask
  /* 8 */ [g(4), u(6), o(0)], // EINVAL: out of order
  /* 9 */ [u(7), ...manyUsers(100, 6), g(7), m(7), o(5)], // 820 bytes on disk: most of a 1 KiB block
  /* 10 */ [u(7), g(7), o(7)], // mode 0777
  /* 11 */ [u(15), g(4), o(4)], // EINVAL: perm bits beyond rwx
];

/** The VFS bytes of `entries` (version 2, 8 bytes per entry), with the ids as given. */
export function encodeVfsAcl(entries: readonly AclEntry[]): Uint8Array {
  const out = new Uint8Array(4 + 8 * entries.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 2, true);
  entries.forEach((e, i) => {
    v.setUint16(4 + 8 * i, e.tag, true);
    v.setUint16(6 + 8 * i, e.perm, true);
    v.setUint32(8 + 8 * i, e.id, true);
  });
  return out;
}

/** What getxattr gives for a stored ACL: the entries with ACL_UNDEFINED_ID on short ones. */
export function vfsAclValue(entries: readonly AclEntry[]): Uint8Array {
  return encodeVfsAcl(entries.map((e) => (named(e.tag) ? e : { ...e, id: ACL_UNDEFINED_ID })));
}

/** ext4's compact on-disk form. @kernel ext4_acl_to_disk */
function ext4AclBytes(entries: readonly AclEntry[]): Uint8Array {
  const size = 4 + entries.reduce((n, e) => n + (named(e.tag) ? 8 : 4), 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, 1, true);
  let off = 4;
  for (const e of entries) {
    v.setUint16(off, e.tag, true);
    v.setUint16(off + 2, e.perm, true);
    if (named(e.tag)) v.setUint32(off + 4, e.id, true);
    off += named(e.tag) ? 8 : 4;
  }
  return out;
}

/**
 * A setxattr value for an ACL name, as Linux reads it: null for "no ACL" (an empty value or a
 * bare header), the entries, or the errno. @kernel do_set_acl + posix_acl_from_xattr
 */
export function parseVfsAcl(b: Uint8Array): { ok: true; acl: AclEntry[] | null } | { ok: false; code: string } {
  if (b.length === 0) return { ok: true, acl: null };
  if (b.length < 4) return { ok: false, code: "EINVAL" };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getUint32(0, true) !== 2) return { ok: false, code: "EOPNOTSUPP" };
  if ((b.length - 4) % 8 !== 0) return { ok: false, code: "EINVAL" };
  const acl: AclEntry[] = [];
  for (let off = 4; off < b.length; off += 8) {
    const tag = v.getUint16(off, true);
    const perm = v.getUint16(off + 2, true);
    const id = v.getUint32(off + 4, true);
    if (named(tag)) {
      if (id === ACL_UNDEFINED_ID) return { ok: false, code: "EINVAL" }; // make_kuid(-1) is invalid
      acl.push({ tag, perm, id });
    } else if (tag === ACL_USER_OBJ || tag === ACL_GROUP_OBJ || tag === ACL_MASK || tag === ACL_OTHER) {
      acl.push({ tag, perm, id: ACL_UNDEFINED_ID });
    } else {
      return { ok: false, code: "EINVAL" };
    }
  }
  return { ok: true, acl: acl.length === 0 ? null : acl };
}

/** @kernel posix_acl_valid (ids of named entries are not checked for order) */
export function aclValid(acl: readonly AclEntry[]): boolean {
  let state = ACL_USER_OBJ;
  let needsMask = false;
  for (const e of acl) {
    if ((e.perm & ~7) !== 0) return false;
    switch (e.tag) {
      case ACL_USER_OBJ:
        if (state !== ACL_USER_OBJ) return false;
        state = ACL_USER;
        break;
      case ACL_USER:
        if (state !== ACL_USER) return false;
        needsMask = true;
        break;
      case ACL_GROUP_OBJ:
        if (state !== ACL_USER) return false;
        state = ACL_GROUP;
        break;
      case ACL_GROUP:
        if (state !== ACL_GROUP) return false;
        needsMask = true;
        break;
      case ACL_MASK:
        if (state !== ACL_GROUP) return false;
        state = ACL_OTHER;
        break;
      case ACL_OTHER:
        if (!(state === ACL_OTHER || (state === ACL_GROUP && !needsMask))) return false;
        state = 0;
        break;
      default:
        return false;
    }
  }
  return state === 0;
}

/** The mode an ACL gives and whether the mode says it all. @kernel posix_acl_equiv_mode */
export function aclEquivMode(acl: readonly AclEntry[], mode: number): { mode: number; equivalent: boolean } {
  let bits = 0;
  let equivalent = true;
  for (const e of acl) {
    if (e.tag === ACL_USER_OBJ) bits |= (e.perm & 7) << 6;
    else if (e.tag === ACL_GROUP_OBJ) bits |= (e.perm & 7) << 3;
    else if (e.tag === ACL_OTHER) bits |= e.perm & 7;
    else if (e.tag === ACL_MASK) {
      bits = (bits & ~0o070) | ((e.perm & 7) << 3);
      equivalent = false;
    } else equivalent = false;
  }
  return { mode: (mode & ~0o777) | bits, equivalent };
}

/**
 * A new inode's access ACL from its directory's default ACL, and its mode: both masked by each
 * other. `access` null when the mode says it all. @kernel posix_acl_create_masq
 */
export function aclCreateMasq(dflt: readonly AclEntry[], mode: number): { acl: AclEntry[] | null; mode: number } {
  const acl: { tag: number; perm: number; id: number }[] = dflt.map((e) => ({ ...e }));
  let notEquiv = false;
  let groupObj: number | undefined;
  let maskObj: number | undefined;
  for (const [i, e] of acl.entries()) {
    switch (e.tag) {
      case ACL_USER_OBJ:
        e.perm &= (mode >> 6) | ~7;
        mode &= (e.perm << 6) | ~0o700;
        break;
      case ACL_USER:
      case ACL_GROUP:
        notEquiv = true;
        break;
      case ACL_GROUP_OBJ:
        groupObj = i;
        break;
      case ACL_OTHER:
        e.perm &= mode | ~7;
        mode &= e.perm | ~0o007;
        break;
      case ACL_MASK:
        maskObj = i;
        notEquiv = true;
        break;
    }
  }
  const gm = acl[maskObj ?? groupObj ?? -1];
  if (gm === undefined) throw new Error("model: a stored default ACL without GROUP_OBJ");
  gm.perm &= (mode >> 3) | ~7;
  mode &= (gm.perm << 3) | ~0o070;
  return { acl: notEquiv ? acl : null, mode };
}

/** The access ACL after chmod to `mode`. @kernel __posix_acl_chmod */
export function aclChmod(acl: readonly AclEntry[], mode: number): AclEntry[] {
  const hasMask = acl.some((e) => e.tag === ACL_MASK);
  return acl.map((e) => {
    if (e.tag === ACL_USER_OBJ) return { ...e, perm: (mode >> 6) & 7 };
    if (e.tag === ACL_OTHER) return { ...e, perm: mode & 7 };
    if (e.tag === (hasMask ? ACL_MASK : ACL_GROUP_OBJ)) return { ...e, perm: (mode >> 3) & 7 };
    return e;
  });
}

// ---------------------------------------------------------------------------------------------
// Names

const PREFIXES = ["user.", "trusted.", "security."];

/**
 * The VFS name checks of set/get/remove in Linux's order, after the path walk. `kind` is the
 * inode's type. Returns the errno or null. For ACL names use the ACL paths instead.
 * @kernel xattr_permission + xattr_resolve_name
 */
export function xattrNameCheck(kind: string, name: string, write: boolean): string | null {
  if (name.startsWith("user.") && kind !== "file" && kind !== "dir") return write ? "EPERM" : "ENODATA";
  const prefix = PREFIXES.find((p) => name.startsWith(p));
  if (prefix === undefined) return "EOPNOTSUPP";
  if (name.length === prefix.length) return "EINVAL";
  return null;
}

/** ERANGE for a full name of 0 or more than 255 bytes (checked before the path walk). */
export function xattrNameLengthOk(name: string): boolean {
  const n = byteLength(name);
  return n > 0 && n <= XATTR_NAME_MAX;
}

/** Bytes of the name ext4 stores (after the prefix it turns into a name index; "" for ACLs). */
function storedNameLength(name: string): number {
  if (name === ACL_ACCESS || name === ACL_DEFAULT) return 0;
  const prefix = PREFIXES.find((p) => name.startsWith(p));
  if (prefix === undefined) throw new Error(`model: no ext4 name index for ${name}`);
  return byteLength(name) - prefix.length;
}

// ---------------------------------------------------------------------------------------------
// Where ext4 keeps an inode's entries

export interface StoredXattr {
  /** The bytes ext4 stores (ext4's ACL form for ACLs). */
  readonly disk: Uint8Array;
  /** What getxattr returns (the VFS ACL form for ACLs). */
  readonly value: Uint8Array;
  /** ACL entries, for ACL names. */
  readonly acl?: readonly AclEntry[];
  /** The value spec it was set from (plain names), so the planner can copy it. */
  readonly spec?: string;
}

export function storedAcl(acl: readonly AclEntry[]): StoredXattr {
  const canon = acl.map((e) => (named(e.tag) ? e : { ...e, id: ACL_UNDEFINED_ID }));
  return { disk: ext4AclBytes(canon), value: vfsAclValue(canon), acl: canon };
}

/** Space per area: bytes after the in-inode header (null: no in-inode area) and the block size. */
export interface XattrLimits {
  readonly ibody: number | null;
  readonly block: number;
}

/** An inode's entries, in the inode body and in its external block, by full name. */
export class XattrStore {
  readonly ibody = new Map<string, StoredXattr>();
  readonly block = new Map<string, StoredXattr>();

  get(name: string): StoredXattr | undefined {
    return this.ibody.get(name) ?? this.block.get(name);
  }

  /** Every entry, in-inode ones first (the order listxattr gives). */
  entries(): [string, StoredXattr][] {
    return [...this.ibody, ...this.block];
  }

  get size(): number {
    return this.ibody.size + this.block.size;
  }

  /**
   * Set (`value` non-null) or remove `name` with the flags, as ext4 does: EEXIST / ENODATA
   * for the flags, nothing for an unchanged value or an absent name without XATTR_REPLACE,
   * the inode body first, then the block, ENOSPC when neither holds it. Returns the errno or
   * null. @kernel ext4_xattr_set_handle
   */
  set(name: string, value: StoredXattr | null, flags: number, limits: XattrLimits): string | null {
    const inIbody = this.ibody.has(name);
    const inBlock = !inIbody && this.block.has(name);
    if (!inIbody && !inBlock) {
      if ((flags & XATTR_REPLACE) !== 0) return "ENODATA";
      if (value === null) return null;
    } else if ((flags & XATTR_CREATE) !== 0) {
      return "EEXIST";
    }
    if (value === null) {
      (inIbody ? this.ibody : this.block).delete(name);
      return null;
    }
    const old = this.get(name);
    if (old !== undefined && sameBytes(old.disk, value.disk)) return null;
    if (limits.ibody !== null && 4 + areaBytes(this.ibody, name, value) <= limits.ibody) {
      this.ibody.set(name, value);
      this.block.delete(name);
      return null;
    }
    if (32 + 4 + areaBytes(this.block, name, value) <= limits.block) {
      this.block.set(name, value);
      this.ibody.delete(name);
      return null;
    }
    return "ENOSPC";
  }
}

/** Bytes the entries of `area` take with `name` set to `value`. */
function areaBytes(area: ReadonlyMap<string, StoredXattr>, name: string, value: StoredXattr): number {
  let n = 0;
  for (const [k, v] of area) if (k !== name) n += round4(16 + storedNameLength(k)) + round4(v.disk.length);
  return n + round4(16 + storedNameLength(name)) + round4(value.disk.length);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
