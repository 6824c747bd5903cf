import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FsError, isFsError } from "../errors.js";
import {
  ACL_GROUP,
  ACL_GROUP_OBJ,
  ACL_MASK,
  ACL_OTHER,
  ACL_UNDEFINED_ID,
  ACL_USER,
  ACL_USER_OBJ,
  checkPosixAcl,
  decodeExt4Acl,
  decodeVfsAcl,
  encodeExt4Acl,
  encodeVfsAcl,
  ext4AclCount,
  ext4AclEntry,
  ext4AclEntryShort,
  ext4AclHeader,
  ext4AclSize,
  ext4AclToVfs,
  posixAclXattrEntry,
  posixAclXattrHeader,
  vfsAclToExt4,
  type AclEntry,
} from "./acl.js";

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));

/*
 * Captured from Linux 6.18 (loop-mounted mke2fs -t ext4 -I 256 image):
 *   setfacl -m u:1000:rw,g:100:r,m::rw file   (mode 0664)
 * DISK is the system.posix_acl_access value as debugfs shows it in the inode body,
 * VFS what `getfattr -e hex -n system.posix_acl_access` returned on the mounted file.
 * The live version of this check runs in xattr.test.ts.
 */
const DISK = hex("01000000" + "01000600" + "02000600e8030000" + "04000400" + "0800040064000000" + "10000600" + "20000400");
const VFS = hex(
  "02000000" +
    "01000600ffffffff" +
    "02000600e8030000" +
    "04000400ffffffff" +
    "0800040064000000" +
    "10000600ffffffff" +
    "20000400ffffffff",
);
/* setfacl -d -m u:1000:rw,g:100:r on a 0775 directory: the default ACL as getfattr showed it. */
const VFS_DEFAULT = hex(
  "02000000" +
    "01000700ffffffff" +
    "02000600e8030000" +
    "04000500ffffffff" +
    "0800040064000000" +
    "10000700ffffffff" +
    "20000500ffffffff",
);

function expectCode(f: () => unknown, code: string, msg?: RegExp): FsError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FsError);
  const fe = err as FsError;
  expect(fe.code).toBe(code);
  if (msg) expect(fe.message).toMatch(msg);
  return fe;
}

describe("ACL layout", () => {
  it("matches ext4_acl_header/entry/entry_short and posix_acl_xattr_header/entry", () => {
    expect(ext4AclHeader.size).toBe(4);
    expect(ext4AclEntry.size).toBe(8);
    expect(ext4AclEntry.offsetOf("e_perm")).toBe(2);
    expect(ext4AclEntry.offsetOf("e_id")).toBe(4);
    expect(ext4AclEntryShort.size).toBe(4);
    expect(posixAclXattrHeader.size).toBe(4);
    expect(posixAclXattrEntry.size).toBe(8);
    expect(posixAclXattrEntry.offsetOf("e_id")).toBe(4);
  });

  it("ext4AclSize() and ext4AclCount() follow acl.h, including the 4-short-entries assumption", () => {
    expect([0, 3, 4, 5, 6].map(ext4AclSize)).toEqual([4, 16, 20, 28, 36]);
    expect([4, 16, 20, 28, 36].map(ext4AclCount)).toEqual([0, 3, 4, 5, 6]);
    for (const bad of [0, 3, 6, 22, 24, 30]) expect(ext4AclCount(bad)).toBe(-1);
  });
});

describe("kernel-written ACLs", () => {
  it("ext4AclToVfs() gives what getfattr returned, with ACL_UNDEFINED_ID for short tags", () => {
    expect(ext4AclToVfs(DISK)).toEqual(VFS);
    expect(decodeExt4Acl(DISK)).toEqual([
      { tag: ACL_USER_OBJ, perm: 6 },
      { tag: ACL_USER, perm: 6, id: 1000 },
      { tag: ACL_GROUP_OBJ, perm: 4 },
      { tag: ACL_GROUP, perm: 4, id: 100 },
      { tag: ACL_MASK, perm: 6 },
      { tag: ACL_OTHER, perm: 4 },
    ]);
  });

  it("vfsAclToExt4() gives the bytes the kernel stored", () => {
    expect(vfsAclToExt4(VFS)).toEqual(DISK);
    expect(ext4AclToVfs(vfsAclToExt4(VFS_DEFAULT))).toEqual(VFS_DEFAULT);
    expect(vfsAclToExt4(VFS_DEFAULT).length).toBe(ext4AclSize(6));
  });
});

describe("decodeExt4Acl() rejects corrupt values with EFSCORRUPTED", () => {
  it("short value, wrong version, impossible size", () => {
    expectCode(() => decodeExt4Acl(hex("0100")), "EFSCORRUPTED", /value of 2 bytes is shorter than the header/);
    expectCode(() => decodeExt4Acl(hex("02000000")), "EFSCORRUPTED", /a_version is 0x2, expected 0x1/);
    expectCode(() => decodeExt4Acl(DISK.subarray(0, 22)), "EFSCORRUPTED", /size 22 matches no entry count/);
  });

  it("unknown tags and entries that do not add up to the size", () => {
    expectCode(() => decodeExt4Acl(hex("01000000" + "01000600" + "40000600" + "20000400")), "EFSCORRUPTED", /entry 1 has unknown e_tag 0x40/);
    // size 20 says 4 entries, but USER_OBJ, USER (8 bytes), OTHER already fill it
    expectCode(() => decodeExt4Acl(hex("01000000" + "01000600" + "02000600e8030000" + "20000400")), "EFSCORRUPTED", /entry 3 at 20 runs past the end 20/);
    // size 28 says 5 entries, six short ones do not reach the end
    expectCode(() => decodeExt4Acl(hex("01000000" + "01000600".repeat(6))), "EFSCORRUPTED", /entries end at 24, value is 28 bytes/);
    // a USER entry cut short
    expectCode(() => decodeExt4Acl(hex("01000000" + "01000600" + "04000400" + "10000600" + "02000600")), "EFSCORRUPTED", /entry 3 at 16 runs past/);
  });

  it("names the inode", () => {
    const e = expectCode(() => decodeExt4Acl(hex("09000000"), { ino: 12 }), "EFSCORRUPTED", /^EFSCORRUPTED: On-disk ACL of inode 12: /);
    expect(e.detail).toEqual({ ino: 12 });
  });

  it("a bare header is an empty ACL both ways", () => {
    expect(decodeExt4Acl(hex("01000000"))).toEqual([]);
    expect(ext4AclToVfs(hex("01000000"))).toEqual(hex("02000000"));
    expect(vfsAclToExt4(hex("02000000"))).toEqual(hex("01000000"));
  });
});

describe("VFS ACL input", () => {
  it("decodeVfsAcl() rejects bad sizes, tags and ids with EINVAL and other versions with EOPNOTSUPP", () => {
    expectCode(() => decodeVfsAcl(hex("0200")), "EINVAL");
    expectCode(() => decodeVfsAcl(hex("01000000")), "EOPNOTSUPP", /a_version is 0x1, expected 0x2/);
    expectCode(() => decodeVfsAcl(VFS.subarray(0, 10)), "EINVAL", /not a whole number of entries/);
    expectCode(() => decodeVfsAcl(hex("02000000" + "4000060000000000")), "EINVAL", /unknown tag 0x40/);
    expectCode(() => decodeVfsAcl(hex("02000000" + "02000600ffffffff")), "EINVAL", /invalid id/);
  });

  it("checkPosixAcl() enforces posix_acl_valid's order and mask rules", () => {
    const uo = { tag: ACL_USER_OBJ, perm: 7 };
    const go = { tag: ACL_GROUP_OBJ, perm: 5 };
    const o = { tag: ACL_OTHER, perm: 0 };
    const m = { tag: ACL_MASK, perm: 7 };
    const u = { tag: ACL_USER, perm: 6, id: 1000 };
    const g = { tag: ACL_GROUP, perm: 4, id: 100 };
    expect(() => checkPosixAcl([uo, go, o])).not.toThrow();
    expect(() => checkPosixAcl([uo, go, m, o])).not.toThrow();
    expect(() => checkPosixAcl([uo, u, u, go, g, m, o])).not.toThrow(); // Linux does not check id order
    expectCode(() => checkPosixAcl([uo, u, go, o]), "EINVAL", /named entries without ACL_MASK/);
    expectCode(() => checkPosixAcl([go, uo, o]), "EINVAL", /ACL_GROUP_OBJ out of place/);
    expectCode(() => checkPosixAcl([uo, uo, go, o]), "EINVAL", /ACL_USER_OBJ out of place/);
    expectCode(() => checkPosixAcl([uo, go, g, u, m, o]), "EINVAL", /ACL_USER out of place/);
    expectCode(() => checkPosixAcl([uo, go, o, o]), "EINVAL", /ACL_OTHER out of place/);
    expectCode(() => checkPosixAcl([uo, go]), "EINVAL", /incomplete/);
    expectCode(() => checkPosixAcl([{ tag: ACL_USER_OBJ, perm: 8 }, go, o]), "EINVAL", /perm 0x8 has bits beyond rwx/);
    expectCode(() => checkPosixAcl([uo, { tag: ACL_USER, perm: 4 }, go, m, o]), "EINVAL", /without a valid uid/);
  });

  it("vfsAclToExt4() refuses an ACL Linux would refuse", () => {
    expectCode(() => vfsAclToExt4(hex("02000000" + "01000600ffffffff" + "02000600e8030000" + "04000400ffffffff" + "20000400ffffffff")), "EINVAL");
  });

  it("encodeVfsAcl() writes ACL_UNDEFINED_ID for short tags whatever id they carry", () => {
    const v = encodeVfsAcl([{ tag: ACL_USER_OBJ, perm: 6, id: 5 }]);
    expect(posixAclXattrEntry.decode(v, 4).e_id).toBe(ACL_UNDEFINED_ID);
    expectCode(() => encodeExt4Acl([{ tag: 0x40, perm: 0 }]), "EINVAL");
  });
});

describe("ACL codecs under random input (fast-check)", () => {
  const perm = fc.nat({ max: 7 });
  const id = fc.nat({ max: 0xfffffffe });
  /** ACLs posix_acl_valid accepts: USER_OBJ, USER*, GROUP_OBJ, GROUP*, [MASK], OTHER. */
  const validAcl: fc.Arbitrary<AclEntry[]> = fc
    .record({
      uo: perm,
      users: fc.array(fc.tuple(perm, id), { maxLength: 5 }),
      go: perm,
      groups: fc.array(fc.tuple(perm, id), { maxLength: 5 }),
      mask: fc.option(perm, { nil: undefined }),
      o: perm,
    })
    .map(({ uo, users, go, groups, mask, o }) => {
      const named = users.length + groups.length > 0;
      return [
        { tag: ACL_USER_OBJ, perm: uo },
        ...users.map(([p, i]) => ({ tag: ACL_USER, perm: p, id: i })),
        { tag: ACL_GROUP_OBJ, perm: go },
        ...groups.map(([p, i]) => ({ tag: ACL_GROUP, perm: p, id: i })),
        ...(named || mask !== undefined ? [{ tag: ACL_MASK, perm: mask ?? 7 }] : []),
        { tag: ACL_OTHER, perm: o },
      ];
    });

  it("valid ACLs survive VFS -> disk -> VFS, and the disk size is ext4_acl_size", () => {
    fc.assert(
      fc.property(validAcl, (acl) => {
        const vfs = encodeVfsAcl(acl);
        const disk = vfsAclToExt4(vfs);
        expect(disk.length).toBe(ext4AclSize(acl.length));
        expect(ext4AclCount(disk.length)).toBe(acl.length);
        expect(decodeExt4Acl(disk)).toEqual(acl);
        expect(ext4AclToVfs(disk)).toEqual(vfs);
      }),
      { numRuns: 1000 },
    );
  });

  it("decodeExt4Acl() only throws EFSCORRUPTED and vfsAclToExt4() only EINVAL/EOPNOTSUPP", () => {
    const tagged = fc.uint8Array({ maxLength: 64 }).map((u) => {
      // mostly plausible headers, so the entry parsing is reached
      const v = u.slice();
      if (v.length >= 4 && (v[3]! & 1) === 0) v.set([v[0]! & 3, 0, 0, 0], 0);
      return v;
    });
    fc.assert(
      fc.property(tagged, (v) => {
        try {
          decodeExt4Acl(v);
        } catch (e) {
          if (!isFsError(e, "EFSCORRUPTED")) throw e;
        }
        try {
          vfsAclToExt4(v);
        } catch (e) {
          if (!(isFsError(e, "EINVAL") || isFsError(e, "EOPNOTSUPP"))) throw e;
        }
      }),
      { numRuns: 5000 },
    );
  });
});
