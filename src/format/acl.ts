/**
 * POSIX ACLs: ext4's compact on-disk form (the value of the system.posix_acl_access and
 * system.posix_acl_default xattrs, name indexes 2 and 3 with an empty name) and the VFS
 * form that Linux getxattr returns and setxattr takes. Pure codecs, no I/O.
 *
 * Counterparts: fs/ext4/acl.h and acl.c (ext4_acl_from_disk, ext4_acl_to_disk),
 * fs/posix_acl.c (posix_acl_from_xattr, posix_acl_to_xattr, posix_acl_valid),
 * include/uapi/linux/posix_acl_xattr.h, e2fsprogs lib/ext2fs/ext_attr.c.
 *
 *   disk:  a_version 1 | {e_tag, e_perm}            for USER_OBJ, GROUP_OBJ, MASK, OTHER
 *                      | {e_tag, e_perm, e_id}      for USER, GROUP
 *   VFS:   a_version 2 | {e_tag, e_perm, e_id} x n  (e_id ACL_UNDEFINED_ID for short tags)
 *
 * An ACL without entries means "no ACL" to Linux: reading one gives ENODATA and writing
 * one removes the xattr. The converters map it to a bare header; callers check
 * `decode*Acl(...).length === 0`.
 */

import { FsError, type FsErrorDetail } from "../errors.js";
import { defineStruct, u16le, u32le } from "./struct.js";

export const EXT4_ACL_VERSION = 0x0001;
export const POSIX_ACL_XATTR_VERSION = 0x0002;
/** e_id Linux reports for entries without an id. */
export const ACL_UNDEFINED_ID = 0xffffffff;

// e_tag values (include/uapi/linux/posix_acl.h)
export const ACL_USER_OBJ = 0x01;
export const ACL_USER = 0x02;
export const ACL_GROUP_OBJ = 0x04;
export const ACL_GROUP = 0x08;
export const ACL_MASK = 0x10;
export const ACL_OTHER = 0x20;

// e_perm bits
export const ACL_READ = 0x04;
export const ACL_WRITE = 0x02;
export const ACL_EXECUTE = 0x01;

/** ext4_acl_header */
export const ext4AclHeader = defineStruct("ext4_acl_header", 0x4, {
  a_version: [0x0, u32le], // EXT4_ACL_VERSION
});
/** ext4_acl_entry: ACL_USER and ACL_GROUP entries. */
export const ext4AclEntry = defineStruct("ext4_acl_entry", 0x8, {
  e_tag: [0x0, u16le],
  e_perm: [0x2, u16le],
  e_id: [0x4, u32le],
});
/** ext4_acl_entry_short: every other tag (no id). */
export const ext4AclEntryShort = defineStruct("ext4_acl_entry_short", 0x4, {
  e_tag: [0x0, u16le],
  e_perm: [0x2, u16le],
});
/** struct posix_acl_xattr_header */
export const posixAclXattrHeader = defineStruct("posix_acl_xattr_header", 0x4, {
  a_version: [0x0, u32le], // POSIX_ACL_XATTR_VERSION
});
/** struct posix_acl_xattr_entry */
export const posixAclXattrEntry = defineStruct("posix_acl_xattr_entry", 0x8, {
  e_tag: [0x0, u16le],
  e_perm: [0x2, u16le],
  e_id: [0x4, u32le],
});

/** One ACL entry; `id` is present exactly for ACL_USER and ACL_GROUP. */
export interface AclEntry {
  tag: number;
  perm: number;
  id?: number;
}

/** Where disk bytes came from, for messages and FsError.detail. */
export interface AclContext {
  ino?: number;
  block?: number;
}

function hasId(tag: number): boolean {
  return tag === ACL_USER || tag === ACL_GROUP;
}

function isShortTag(tag: number): boolean {
  return tag === ACL_USER_OBJ || tag === ACL_GROUP_OBJ || tag === ACL_MASK || tag === ACL_OTHER;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** On-disk size of an ACL with `count` entries, at most 4 of them short. @kernel ext4_acl_size */
export function ext4AclSize(count: number): number {
  return count <= 4
    ? ext4AclHeader.size + count * ext4AclEntryShort.size
    : ext4AclHeader.size + 4 * ext4AclEntryShort.size + (count - 4) * ext4AclEntry.size;
}

/**
 * Entry count implied by an on-disk size, or -1 if no count fits; like the kernel, this
 * assumes at most 4 short entries. @kernel ext4_acl_count
 */
export function ext4AclCount(size: number): number {
  const body = size - ext4AclHeader.size;
  if (body < 0) return -1;
  const s = body - 4 * ext4AclEntryShort.size;
  if (s < 0) return body % ext4AclEntryShort.size === 0 ? body / ext4AclEntryShort.size : -1;
  return s % ext4AclEntry.size === 0 ? s / ext4AclEntry.size + 4 : -1;
}

/**
 * Decode an on-disk ACL (an xattr value of index 2 or 3). Checks what the kernel checks on
 * read (version, size, tags, exact length), not posix_acl_valid's ordering rules.
 * Throws FsError EFSCORRUPTED.
 * @kernel ext4_acl_from_disk
 */
export function decodeExt4Acl(disk: Uint8Array, ctx: AclContext = {}): AclEntry[] {
  const detail: FsErrorDetail = {};
  if (ctx.ino !== undefined) detail.ino = ctx.ino;
  if (ctx.block !== undefined) detail.block = ctx.block;
  const where = ctx.ino === undefined ? "On-disk ACL" : `On-disk ACL of inode ${ctx.ino}`;
  const corrupt = (msg: string): FsError => new FsError("EFSCORRUPTED", `${where}: ${msg}`, detail);

  if (disk.length < ext4AclHeader.size) throw corrupt(`value of ${disk.length} bytes is shorter than the header`);
  const { a_version } = ext4AclHeader.decode(disk);
  if (a_version !== EXT4_ACL_VERSION) throw corrupt(`a_version is ${hex(a_version)}, expected ${hex(EXT4_ACL_VERSION)}`);
  const count = ext4AclCount(disk.length);
  if (count < 0) throw corrupt(`size ${disk.length} matches no entry count`);

  const out: AclEntry[] = [];
  let off = ext4AclHeader.size;
  for (let n = 0; n < count; n++) {
    if (off + ext4AclEntryShort.size > disk.length) throw corrupt(`entry ${n} at ${off} runs past the end ${disk.length}`);
    const { e_tag, e_perm } = ext4AclEntryShort.decode(disk, off);
    if (isShortTag(e_tag)) {
      out.push({ tag: e_tag, perm: e_perm });
      off += ext4AclEntryShort.size;
    } else if (hasId(e_tag)) {
      if (off + ext4AclEntry.size > disk.length) throw corrupt(`entry ${n} at ${off} runs past the end ${disk.length}`);
      out.push({ tag: e_tag, perm: e_perm, id: ext4AclEntry.decode(disk, off).e_id });
      off += ext4AclEntry.size;
    } else {
      throw corrupt(`entry ${n} has unknown e_tag ${hex(e_tag)}`);
    }
  }
  if (off !== disk.length) throw corrupt(`entries end at ${off}, value is ${disk.length} bytes`);
  return out;
}

/**
 * Encode entries in ext4's on-disk form. Throws FsError EINVAL for an unknown tag.
 * @kernel ext4_acl_to_disk
 */
export function encodeExt4Acl(entries: readonly AclEntry[]): Uint8Array {
  let size = ext4AclHeader.size;
  for (const e of entries) {
    if (isShortTag(e.tag)) size += ext4AclEntryShort.size;
    else if (hasId(e.tag)) size += ext4AclEntry.size;
    else throw new FsError("EINVAL", `ACL entry has unknown tag ${hex(e.tag)}`);
  }
  const out = new Uint8Array(size);
  ext4AclHeader.encode({ a_version: EXT4_ACL_VERSION }, out);
  let off = ext4AclHeader.size;
  for (const e of entries) {
    if (hasId(e.tag)) {
      ext4AclEntry.encode({ e_tag: e.tag, e_perm: e.perm, e_id: e.id ?? ACL_UNDEFINED_ID }, out, off);
      off += ext4AclEntry.size;
    } else {
      ext4AclEntryShort.encode({ e_tag: e.tag, e_perm: e.perm }, out, off);
      off += ext4AclEntryShort.size;
    }
  }
  return out;
}

/**
 * Decode the VFS form (a setxattr value). Throws FsError EINVAL for a bad size, unknown tag
 * or an invalid uid/gid (-1), and EOPNOTSUPP for another a_version, as Linux does. Does not
 * apply posix_acl_valid (see checkPosixAcl).
 * @kernel posix_acl_from_xattr
 */
export function decodeVfsAcl(vfs: Uint8Array): AclEntry[] {
  if (vfs.length < posixAclXattrHeader.size) throw new FsError("EINVAL", `ACL xattr of ${vfs.length} bytes is shorter than the header`);
  const { a_version } = posixAclXattrHeader.decode(vfs);
  if (a_version !== POSIX_ACL_XATTR_VERSION) {
    throw new FsError("EOPNOTSUPP", `ACL xattr a_version is ${hex(a_version)}, expected ${hex(POSIX_ACL_XATTR_VERSION)}`);
  }
  const body = vfs.length - posixAclXattrHeader.size;
  if (body % posixAclXattrEntry.size !== 0) throw new FsError("EINVAL", `ACL xattr of ${vfs.length} bytes is not a whole number of entries`);
  const out: AclEntry[] = [];
  for (let off = posixAclXattrHeader.size; off < vfs.length; off += posixAclXattrEntry.size) {
    const { e_tag, e_perm, e_id } = posixAclXattrEntry.decode(vfs, off);
    if (isShortTag(e_tag)) {
      out.push({ tag: e_tag, perm: e_perm });
    } else if (hasId(e_tag)) {
      if (e_id === ACL_UNDEFINED_ID) throw new FsError("EINVAL", `ACL xattr entry at ${off} has invalid id ${e_id}`);
      out.push({ tag: e_tag, perm: e_perm, id: e_id });
    } else {
      throw new FsError("EINVAL", `ACL xattr entry at ${off} has unknown tag ${hex(e_tag)}`);
    }
  }
  return out;
}

/**
 * Encode entries in the VFS form getxattr returns; short tags get ACL_UNDEFINED_ID.
 * @kernel posix_acl_to_xattr
 */
export function encodeVfsAcl(entries: readonly AclEntry[]): Uint8Array {
  const out = new Uint8Array(posixAclXattrHeader.size + entries.length * posixAclXattrEntry.size);
  posixAclXattrHeader.encode({ a_version: POSIX_ACL_XATTR_VERSION }, out);
  entries.forEach((e, i) => {
    const e_id = hasId(e.tag) ? (e.id ?? ACL_UNDEFINED_ID) : ACL_UNDEFINED_ID;
    posixAclXattrEntry.encode({ e_tag: e.tag, e_perm: e.perm, e_id }, out, posixAclXattrHeader.size + i * posixAclXattrEntry.size);
  });
  return out;
}

/**
 * Check the shape Linux requires before storing an ACL: USER_OBJ, USER*, GROUP_OBJ,
 * GROUP*, [MASK], OTHER in that order, each singleton once, MASK required when named
 * entries exist, perms within rwx. Throws FsError EINVAL naming the first problem.
 * @kernel posix_acl_valid
 */
export function checkPosixAcl(entries: readonly AclEntry[]): void {
  // States as in the kernel: expecting USER_OBJ, then USER*, GROUP*, then OTHER, then done.
  let state: "user_obj" | "user" | "group" | "other" | "done" = "user_obj";
  let needsMask = false;
  const bad = (i: number, why: string): FsError => new FsError("EINVAL", `ACL entry ${i}: ${why}`);
  for (const [i, e] of entries.entries()) {
    if ((e.perm & ~(ACL_READ | ACL_WRITE | ACL_EXECUTE)) !== 0) throw bad(i, `perm ${hex(e.perm)} has bits beyond rwx`);
    switch (e.tag) {
      case ACL_USER_OBJ:
        if (state !== "user_obj") throw bad(i, "ACL_USER_OBJ out of place");
        state = "user";
        break;
      case ACL_USER:
        if (state !== "user") throw bad(i, "ACL_USER out of place");
        if (e.id === undefined || e.id === ACL_UNDEFINED_ID) throw bad(i, "ACL_USER without a valid uid");
        needsMask = true;
        break;
      case ACL_GROUP_OBJ:
        if (state !== "user") throw bad(i, "ACL_GROUP_OBJ out of place");
        state = "group";
        break;
      case ACL_GROUP:
        if (state !== "group") throw bad(i, "ACL_GROUP out of place");
        if (e.id === undefined || e.id === ACL_UNDEFINED_ID) throw bad(i, "ACL_GROUP without a valid gid");
        needsMask = true;
        break;
      case ACL_MASK:
        if (state !== "group") throw bad(i, "ACL_MASK out of place");
        state = "other";
        break;
      case ACL_OTHER:
        if (!(state === "other" || (state === "group" && !needsMask))) {
          throw bad(i, state === "group" ? "named entries without ACL_MASK" : "ACL_OTHER out of place");
        }
        state = "done";
        break;
      default:
        throw bad(i, `unknown tag ${hex(e.tag)}`);
    }
  }
  if (state !== "done") throw new FsError("EINVAL", "ACL is incomplete: it must end with ACL_OTHER");
}

/**
 * On-disk ACL -> the bytes Linux getxattr returns. Throws FsError EFSCORRUPTED.
 * @kernel ext4_get_acl + posix_acl_to_xattr
 */
export function ext4AclToVfs(disk: Uint8Array, ctx: AclContext = {}): Uint8Array {
  return encodeVfsAcl(decodeExt4Acl(disk, ctx));
}

/**
 * setxattr bytes -> on-disk ACL, validated as Linux does before storing (a bare header
 * stays a bare header: "remove the ACL"). Throws FsError EINVAL (EOPNOTSUPP for a_version).
 * @kernel posix_acl_from_xattr + posix_acl_valid + ext4_acl_to_disk
 */
export function vfsAclToExt4(vfs: Uint8Array): Uint8Array {
  const entries = decodeVfsAcl(vfs);
  if (entries.length > 0) checkPosixAcl(entries);
  return encodeExt4Acl(entries);
}
