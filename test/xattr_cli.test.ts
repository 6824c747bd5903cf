/**
 * `ext4ts getfattr/setfattr/getfacl/setfacl` as users meet them: option parsing, value
 * encodings, output bytes, messages and exit codes of attr's and acl's tools, on images made
 * by `ext4ts mkfs` (no external tools needed). The kernel comparison is in
 * test/oracle/xattr_cli.test.ts.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { BIN, type CliResult } from "./cli.js";
import { aclText, decodeValue, encodeValue, parseAclSeq, parseId, quote, unquote, type Ace } from "../tools/cli/xattr_cmds.js";

const dir = mkdtempSync(path.join(tmpdir(), "ext4ts-xattr-cli-"));
let n = 0;

/** `ext4ts ARGS` run in the test directory, where images have relative names as users type them. */
function cli(...args: string[]): Promise<CliResult> {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: "utf8", timeout: 60_000 });
  return Promise.resolve({ code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, timedOut: r.error !== undefined });
}

/** A fresh 8 MiB image with /f (0644), /d (dir), /l -> f; its name relative to the test directory. */
async function freshImage(): Promise<string> {
  const img = `i${n++}.img`;
  const mk = await cli("mkfs", "-q", img, "8M");
  expect(mk.code, mk.stderr).toBe(0);
  for (const args of [["touch", `${img}:/f`], ["mkdir", `${img}:/d`], ["ln", "-s", "f", `${img}:/l`], ["chmod", "644", `${img}:/f`]]) {
    const r = await cli(...args);
    expect(r.code, r.stderr).toBe(0);
  }
  return img;
}

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("attr's value encodings, ported", () => {
  const dec = (s: string): number[] | null => {
    const r = decodeValue(Buffer.from(s, "latin1"));
    return r === null ? null : [...r];
  };
  it("decodes text, quoted text with escapes, 0x hex and 0s base64 as setfattr does", () => {
    expect(dec("abc")).toEqual([0x61, 0x62, 0x63]);
    expect(dec('"abc"')).toEqual([0x61, 0x62, 0x63]);
    expect(dec('"a\\"b\\\\c"')).toEqual([0x61, 0x22, 0x62, 0x5c, 0x63]);
    expect(dec("a\\012b\\0")).toEqual([0x61, 0x0a, 0x62, 0x00]);
    expect(dec("a\\qb")).toEqual([0x61, 0x5c, 0x71, 0x62]);
    expect(dec('"')).toEqual([0x22]);
    expect(dec("")).toEqual([]);
    expect(dec("0x00ff0A41")).toEqual([0x00, 0xff, 0x0a, 0x41]);
    expect(dec("0X 00 f f")).toEqual([0x00, 0xff]);
    expect(dec("0x")).toEqual([]);
    expect(dec("0x0")).toBeNull();
    expect(dec("0xzz")).toBeNull();
    expect(dec("0sAP8KQQ==")).toEqual([0x00, 0xff, 0x0a, 0x41]);
    expect(dec("0SQQ==")).toEqual([0x41]);
    expect(dec("0sQUI=")).toEqual([0x41, 0x42]);
    expect(dec("0s QUJD ")).toEqual([0x41, 0x42, 0x43]);
    expect(dec("0sQQ")).toBeNull();
    expect(dec("0sQR==")).toBeNull();
    expect(dec("0s")).toEqual([]);
  });

  it("encodes as getfattr does: text when at most 1/8 of the bytes are unprintable, else base64", () => {
    const enc = (b: number[], e?: "text" | "hex" | "base64"): string => encodeValue(Uint8Array.from(b), e).toString("latin1");
    expect(enc([0x61, 0x22, 0x5c, 0x0a, 0x0d, 0x00, 0x09, 0x62, 0x00])).toBe("0sYSJcCg0ACWIA");
    expect(enc([0x61, 0x22, 0x5c, 0x0a, 0x0d, 0x00, 0x09, 0x62, 0x00], "text")).toBe('"a\\"\\\\\\012\\015\\000\tb"');
    expect(enc([0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x00])).toBe('"abcdefg"');
    expect(enc([0x00, 0xff, 0x0a, 0x41])).toBe("0sAP8KQQ==");
    expect(enc([])).toBe('""');
    expect(enc([0xc3, 0xa9, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e])).toBe("\"\xc3\xa9abcdefghijklmn\"");
    expect(enc([0x00, 0xff], "hex")).toBe("0x00ff");
    expect(enc([0x41], "base64")).toBe("0sQQ==");
    expect(enc([0x00, 0x01], "text")).toBe('"\\000\x01"');
  });

  it("quotes names and paths with \\ooo and unquotes exactly three octal digits", () => {
    expect(quote("a=b\\c\nd", "=\n\r")).toBe("a\\075b\\134c\\012d");
    expect(Buffer.from(unquote(Buffer.from("a\\075b\\12\\134"))).toString()).toBe("a=b\\12\\");
  });
});

describe("setfacl's ACL spec parser, ported", () => {
  const WITH_PERM = 1, NO_PERM = 2, DEFAULT = 8, PROMOTE = 32;
  it("reads entries the way setfacl does, short or long tag names, octal or rwxX perms", () => {
    const r = parseAclSeq("u::rwx,user:1000:r-x,g:100:6,m::r,o::-,d:u:7:X,default:other:x, 55:w", 0, WITH_PERM | DEFAULT);
    expect("cmds" in r && r.cmds.map((c) => [c.type, c.tag, c.id === 0xffffffff ? "-" : c.id, c.perm])).toEqual([
      ["access", 1, "-", 7], ["access", 2, 1000, 5], ["access", 8, 100, 6], ["access", 0x10, "-", 4], ["access", 0x20, "-", 0],
      ["default", 2, 7, 8], ["default", 0x20, "-", 1], ["access", 2, 55, 2],
    ]);
  });
  it("fails where setfacl fails, at the same character", () => {
    expect(parseAclSeq("u:bob:r", 0, WITH_PERM | DEFAULT)).toEqual({ which: 2 });
    expect(parseAclSeq("u:1000", 0, WITH_PERM | DEFAULT)).toEqual({ which: 6 });
    expect(parseAclSeq("u:1000:rw", 3, NO_PERM | DEFAULT)).toEqual({ which: 7 });
    expect(parseAclSeq("u:1:rr", 0, WITH_PERM | DEFAULT)).toEqual({ which: 5 });
    expect(parseAclSeq("u::rwx, user:1000:r-x", 0, WITH_PERM | DEFAULT)).toEqual({ which: 7 }); // a blank before a tag name: setfacl says "near character 8"
    expect(parseAclSeq("d:u:1:r", 0, WITH_PERM | DEFAULT | PROMOTE)).toEqual({ which: 0 });
    expect("cmds" in parseAclSeq("u:1000", 3, NO_PERM | DEFAULT)).toBe(true);
  });
  it("takes numeric ids as strtol does and nothing else (there is no passwd inside an image)", () => {
    expect(parseId("1000")).toBe(1000);
    expect(parseId("0x10")).toBe(16);
    expect(parseId("010")).toBe(8);
    expect(parseId("-2")).toBe(65534);
    expect(parseId("root")).toBeNull();
    expect(parseId("12a")).toBeNull();
  });
  it("prints ACL text as libacl: numeric qualifiers, one tab before #effective when not a terminal", () => {
    const acl: Ace[] = [
      { tag: 1, perm: 6, id: 0xffffffff }, { tag: 2, perm: 7, id: 1000 }, { tag: 4, perm: 5, id: 0xffffffff },
      { tag: 0x10, perm: 5, id: 0xffffffff }, { tag: 0x20, perm: 4, id: 0xffffffff },
    ];
    expect(aclText(acl, null, "\n", { someEffective: true })).toBe("user::rw-\nuser:1000:rwx\t#effective:r-x\ngroup::r-x\nmask::r-x\nother::r--");
    expect(aclText(acl, "default:", "\n", { someEffective: true, smartIndent: true }).split("\n")[1]).toBe("default:user:1000:rwx\t\t#effective:r-x");
    expect(aclText(acl, "d:", ",", { abbreviate: true })).toBe("d:u::rw-,d:u:1000:rwx,d:g::r-x,d:m::r-x,d:o::r--");
  });
});

describe("ext4ts setfattr / getfattr", () => {
  let img = "";
  beforeAll(async () => {
    img = await freshImage();
  });

  it("lists all four commands in --help and prints each tool's help with exit 0", async () => {
    const r = await cli("--help");
    for (const c of ["getfattr", "setfattr", "getfacl", "setfacl"]) expect(r.stdout).toContain(c);
    for (const c of ["getfattr", "setfattr", "getfacl", "setfacl"]) {
      const h = await cli(c, "--help");
      expect(h.code, c).toBe(0);
      expect(h.stdout).toContain(`Usage: ext4ts ${c} `);
    }
  });

  it("sets values in every encoding and reads them back byte for byte", async () => {
    const f = `${img}:/f`;
    for (const [name, value] of [["user.text", "hello world"], ["user.quoted", '"a\\"b\\\\c\\012"'], ["user.hex", "0x00ff0a41"], ["user.hexws", "0X 41 42"], ["user.b64", "0sAP8KQQ=="]]) {
      const r = await cli("setfattr", "-n", name!, "-v", value!, f);
      expect(r.code, r.stderr).toBe(0);
    }
    expect((await cli("setfattr", "-n", "user.empty", f)).code).toBe(0);
    expect((await cli("setfattr", "--name=trusted.t", "--value=t", f)).code).toBe(0);
    const r = await cli("getfattr", "-d", "-e", "hex", f);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`# file: ${f}\nuser.b64=0x00ff0a41\nuser.empty=0x\nuser.hex=0x00ff0a41\nuser.hexws=0x4142\nuser.quoted=0x6122625c630a\nuser.text=0x68656c6c6f20776f726c64\n\n`);
    const all = await cli("getfattr", "-d", "-m", "-", f);
    expect(all.stdout).toBe(`# file: ${f}\ntrusted.t="t"\nuser.b64=0sAP8KQQ==\nuser.empty=""\nuser.hex=0sAP8KQQ==\nuser.hexws="AB"\nuser.quoted=0sYSJiXGMK\nuser.text="hello world"\n\n`);
    const names = await cli("getfattr", "-m", "^user\\.h", f);
    expect(names.stdout).toBe(`# file: ${f}\nuser.hex\nuser.hexws\n\n`);
    const only = await cli("getfattr", "--only-values", "-n", "user.quoted", f);
    expect(only.stdout).toBe('a"b\\c\n');
    const b64 = await cli("getfattr", "-n", "user.text", "-e", "base64", f);
    expect(b64.stdout).toBe(`# file: ${f}\nuser.text=0saGVsbG8gd29ybGQ=\n\n`);
  });

  it("reports like attr's tools: missing attributes, bad encodings, missing paths, exit 1", async () => {
    const f = `${img}:/f`;
    const get = await cli("getfattr", "-n", "user.nope", f);
    expect(get).toMatchObject({ code: 1, stdout: "", stderr: `${f}: user.nope: No such attribute\n` });
    const rm = await cli("setfattr", "-x", "user.nope", f, `${img}:/d`);
    expect(rm).toMatchObject({ code: 1, stderr: `setfattr: ${f}: No such attribute\nsetfattr: ${img}:/d: No such attribute\n` });
    const bad = await cli("setfattr", "-n", "user.x", "-v", "0xZ", f);
    expect(bad).toMatchObject({ code: 1, stderr: "bad input encoding\n" });
    const missing = await cli("getfattr", "-d", `${img}:/nope`, f);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`getfattr: ${img}:/nope: No such file or directory\n`);
    expect(missing.stdout).toContain(`# file: ${f}\n`);
    const notImage = await cli("getfattr", "-d", "/nonexistent.img:/f");
    expect(notImage.code).toBe(1);
    expect(notImage.stderr).toMatch(/^getfattr: \/nonexistent\.img:\/f: not an IMAGE:PATH/);
    const ns = await cli("setfattr", "-n", "bogus.x", "-v", "1", f);
    expect(ns).toMatchObject({ code: 1, stderr: `setfattr: ${f}: Operation not supported\n` });
    const sym = await cli("setfattr", "-h", "-n", "user.x", "-v", "1", `${img}:/l`);
    expect(sym).toMatchObject({ code: 1, stderr: `setfattr: ${img}:/l: Operation not permitted\n` });
  });

  it("exits 2 with the tools' synopsis on usage errors", async () => {
    const none = await cli("setfattr");
    expect(none.code).toBe(2);
    expect(none.stderr).toBe("Usage: ext4ts setfattr {-n name} [-v value] [-h] IMAGE:PATH...\n       ext4ts setfattr {-x name} [-h] IMAGE:PATH...\nTry `ext4ts setfattr --help' for more information.\n");
    expect((await cli("setfattr", "-n", "user.a", "-x", "user.b", `${img}:/f`)).code).toBe(2);
    expect((await cli("setfattr", "-n", "user.a", "-n", "user.b", `${img}:/f`)).code).toBe(2);
    const q = await cli("getfattr", "-q", `${img}:/f`);
    expect(q.code).toBe(2);
    expect(q.stderr.split("\n")[0]).toBe("getfattr: invalid option -- 'q'");
    expect((await cli("getfattr", "-e", "octal", `${img}:/f`)).code).toBe(2);
    expect((await cli("getfattr", "--dum=x", `${img}:/f`)).stderr).toContain("doesn't allow an argument");
    const re = await cli("getfattr", "-d", "-m", "(", `${img}:/f`);
    expect(re).toMatchObject({ code: 1, stderr: 'getfattr: invalid regular expression "("\n' });
  });

  it("follows symlinks unless -h, strips a leading '/' from headers unless --absolute-names, walks with -R", async () => {
    const l = `${img}:/l`;
    const via = await cli("getfattr", "-n", "user.text", l);
    expect(via.stdout).toBe(`# file: ${l}\nuser.text="hello world"\n\n`);
    expect((await cli("setfattr", "-h", "-n", "trusted.link", "-v", "on-the-link", l)).code).toBe(0);
    const own = await cli("getfattr", "-h", "-d", "-m", "-", l);
    expect(own.stdout).toBe(`# file: ${l}\ntrusted.link="on-the-link"\n\n`);
    const abs = path.join(dir, img);
    const stripped = await cli("getfattr", "-n", "user.text", `${abs}:/f`);
    expect(stripped.stdout).toBe(`# file: ${abs.slice(1)}:/f\nuser.text="hello world"\n\n`);
    expect(stripped.stderr).toBe("getfattr: Removing leading '/' from absolute path names\n");
    const kept = await cli("getfattr", "--absolute-names", "-n", "user.text", `${abs}:/f`);
    expect(kept.stdout).toBe(`# file: ${abs}:/f\nuser.text="hello world"\n\n`);
    expect(kept.stderr).toBe("");
    expect((await cli("setfattr", "-n", "user.in-d", "-v", "x", `${img}:/d`)).code).toBe(0);
    const rec = await cli("getfattr", "-R", "-n", "user.in-d", `${img}:/`);
    expect(rec.code).toBe(1); // the other paths have no user.in-d: each says so
    expect(rec.stdout).toBe(`# file: ${img}:/d\nuser.in-d="x"\n\n`);
    expect(rec.stderr).toContain(`${img}:/f: user.in-d: No such attribute\n`);
    const recAll = await cli("getfattr", "-R", "-h", "-d", `${img}:/`);
    expect(recAll.code).toBe(0);
    expect(recAll.stdout).toContain(`# file: ${img}:/d\nuser.in-d="x"\n\n`);
    expect(recAll.stdout).toContain(`# file: ${img}:/f\n`);
    expect(recAll.stdout).not.toContain(`# file: ${img}:/l\n`);
  });

  it("keeps the older `getfattr IMAGE PATH` form: every namespace, the symlink itself", async () => {
    const r = await cli("getfattr", img, "/l");
    expect(r).toMatchObject({ code: 0, stdout: `# file: /l\ntrusted.link="on-the-link"\n\n` });
    const follow = await cli("getfattr", "-L", "-e", "hex", img, "/l");
    expect(follow.stdout).toMatch(/^# file: \/l\ntrusted\.t=0x74\nuser\.b64=0x00ff0a41\n/);
  });

  it("removes attributes with -x and restores a getfattr dump with --restore", async () => {
    const f = `${img}:/f`;
    const dump = await cli("getfattr", "-R", "-h", "-d", "-m", "-", "-e", "base64", `${img}:/`);
    expect(dump.code).toBe(0);
    expect((await cli("setfattr", "-x", "user.text", f)).code).toBe(0);
    expect((await cli("getfattr", "-n", "user.text", f)).code).toBe(1);
    const other = await freshImage();
    const file = "dump.txt";
    writeFileSync(path.join(dir, file), dump.stdout.split(`# file: ${img}:`).join(`# file: ${other}:`));
    const r = await cli("setfattr", "-h", `--restore=${file}`);
    expect(r.code, r.stderr).toBe(0);
    const back = await cli("getfattr", "-R", "-h", "-d", "-m", "-", "-e", "base64", `${other}:/`);
    expect(back.stdout).toBe(readFileSync(path.join(dir, file), "utf8"));
    writeFileSync(path.join(dir, file), "user.x=1\n");
    const noFile = await cli("setfattr", `--restore=${file}`);
    expect(noFile).toMatchObject({ code: 1, stderr: `setfattr: ${file}: No filename found in line 0, aborting\n` });
  });

  it("sets many paths on several images in one run, each image mounted once", async () => {
    const a = await freshImage();
    const r = await cli("setfattr", "-n", "user.k", "-v", "v", `${img}:/f`, `${a}:/f`, `${img}:/d`, `${a}:/d`);
    expect(r.code, r.stderr).toBe(0);
    const g = await cli("getfattr", "-n", "user.k", `${a}:/d`, `${img}:/f`);
    expect(g.stdout).toBe(`# file: ${a}:/d\nuser.k="v"\n\n# file: ${img}:/f\nuser.k="v"\n\n`);
  });
});

describe("ext4ts getfacl / setfacl", () => {
  let img = "";
  beforeAll(async () => {
    img = await freshImage();
  });

  it("shows the ACL the mode bits make when there is none, with # flags for setid and sticky bits", async () => {
    expect((await cli("chmod", "3755", `${img}:/d`)).code).toBe(0);
    const r = await cli("getfacl", `${img}:/f`, `${img}:/d`);
    expect(r).toMatchObject({
      code: 0,
      stdout: `# file: ${img}:/f\n# owner: 0\n# group: 0\nuser::rw-\ngroup::r--\nother::r--\n\n# file: ${img}:/d\n# owner: 0\n# group: 0\n# flags: -st\nuser::rwx\ngroup::r-x\nother::r-x\n\n`,
    });
    expect((await cli("getfacl", "-s", `${img}:/f`)).stdout).toBe("");
    expect((await cli("getfacl", "-c", "-a", `${img}:/f`)).stdout).toBe("user::rw-\ngroup::r--\nother::r--\n\n");
  });

  it("modifies entries and recalculates the mask as setfacl does, with #effective where the mask limits", async () => {
    const f = `${img}:/f`;
    const m = await cli("setfacl", "-m", "u:1000:rwx,g:50:r", f);
    expect(m.code, m.stderr).toBe(0);
    expect((await cli("getfacl", "-c", f)).stdout).toBe("user::rw-\nuser:1000:rwx\ngroup::r--\ngroup:50:r--\nmask::rwx\nother::r--\n\n");
    expect((await cli("setfacl", "-n", "-m", "u:1000:rwx,m::r-x", f)).code).toBe(0);
    expect((await cli("getfacl", "-c", f)).stdout).toBe("user::rw-\nuser:1000:rwx\t#effective:r-x\ngroup::r--\ngroup:50:r--\nmask::r-x\nother::r--\n\n");
    expect((await cli("getfacl", "-c", "-e", f)).stdout).toContain("group::r--\t#effective:r--\n");
    expect((await cli("getfacl", "-c", "-E", f)).stdout).toContain("user:1000:rwx\n");
    const st = await cli("stat", "--json", img, "/f");
    expect(JSON.parse(st.stdout)).toMatchObject({ mode: "0654" }); // group bits follow the mask
    expect((await cli("setfacl", "-x", "u:1000", f)).code).toBe(0);
    expect((await cli("getfacl", "-c", f)).stdout).toBe("user::rw-\ngroup::r--\ngroup:50:r--\nmask::r--\nother::r--\n\n");
    expect((await cli("setfacl", "-b", f)).code).toBe(0);
    expect((await cli("getfacl", "-c", f)).stdout).toBe("user::rw-\ngroup::r--\nother::r--\n\n");
    expect((await cli("getfattr", "-d", "-m", "-", f)).stdout).toBe("");
  });

  it("sets default ACLs on directories (-d or d:), fills their base entries, removes them with -k", async () => {
    const d = `${img}:/d`;
    expect((await cli("setfacl", "-d", "-m", "u:7:rX", d)).code).toBe(0);
    expect((await cli("setfacl", "-m", "d:g:8:w", d)).code).toBe(0);
    expect((await cli("getfacl", "-c", d)).stdout).toBe(
      "user::rwx\ngroup::r-x\nother::r-x\ndefault:user::rwx\ndefault:user:7:r-x\ndefault:group::r-x\ndefault:group:8:-w-\ndefault:mask::rwx\ndefault:other::r-x\n\n");
    expect((await cli("getfacl", "-c", "-d", d)).stdout).toMatch(/^user::rwx\nuser:7:r-x\n/);
    const onFile = await cli("setfacl", "-m", "d:u:1:r", `${img}:/f`);
    expect(onFile).toMatchObject({ code: 1, stderr: `setfacl: ${img}:/f: Only directories can have default ACLs\n` });
    expect((await cli("setfacl", "-k", d)).code).toBe(0);
    expect((await cli("getfacl", "-c", d)).stdout).toBe("user::rwx\ngroup::r-x\nother::r-x\n\n");
  });

  it("replaces a whole ACL with --set, applies -X from a file and walks with -R", async () => {
    const d = `${img}:/d`;
    expect((await cli("touch", `${img}:/d/x`)).code).toBe(0);
    expect((await cli("setfacl", "-R", "--set", "u::rw,g::r,o::-,u:3:r", d)).code).toBe(0);
    const acl = "user::rw-\nuser:3:r--\ngroup::r--\nmask::r--\nother::---\n\n";
    expect((await cli("getfacl", "-R", "-c", d)).stdout).toBe(acl + acl);
    const file = "spec.txt";
    writeFileSync(path.join(dir, file), "# comment\nu:3\n\n");
    expect((await cli("setfacl", "-X", file, `${img}:/d/x`)).code).toBe(0);
    expect((await cli("getfacl", "-c", `${img}:/d/x`)).stdout).toBe("user::rw-\ngroup::r--\nmask::r--\nother::---\n\n");
  });

  it("reports like setfacl: unknown (non-numeric) users, incomplete specs, malformed ACLs, --test", async () => {
    const f = `${img}:/f`;
    expect(await cli("setfacl", "-m", "u:bob:r", f)).toMatchObject({ code: 2, stderr: "setfacl: Option -m: Invalid argument near character 3\n" });
    expect(await cli("setfacl", "-m", "u:1000", f)).toMatchObject({ code: 2, stderr: "setfacl: Option -m incomplete\n" });
    expect(await cli("setfacl", "-x", "u:1000:rw", f)).toMatchObject({ code: 2, stderr: "setfacl: Option -x: Invalid argument near character 8\n" });
    expect((await cli("setfacl", f)).code).toBe(2);
    expect((await cli("setfacl", "-m", "u:9:r", `${img}:/nope`)).stderr).toBe(`setfacl: ${img}:/nope: No such file or directory\n`);
    expect((await cli("setfacl", "-m", "u:1000:rwx", f)).code).toBe(0);
    const bad = await cli("setfacl", "-x", "u::", f);
    expect(bad).toMatchObject({ code: 1, stderr: `setfacl: ${f}: Malformed access ACL \`user:1000:rwx,group::r--,mask::rwx,other::r--': Missing or wrong entry at entry 1\n` });
    const test = await cli("setfacl", "--test", "-m", "u:9:r", f);
    expect(test).toMatchObject({ code: 0, stdout: `${f}: u::rw-,u:9:r--,u:1000:rwx,g::r--,m::rwx,o::r--,*\n` });
    expect((await cli("getfacl", "-c", f)).stdout).not.toContain("user:9:");
  });

  it("restores a getfacl -R dump with --restore, owners and flags included", async () => {
    expect((await cli("chown", "5:6", `${img}:/d`)).code).toBe(0);
    const dump = await cli("getfacl", "-R", `${img}:/`);
    expect(dump.code).toBe(0);
    const other = await freshImage();
    expect((await cli("touch", `${other}:/d/x`)).code).toBe(0);
    const file = "acl-dump.txt";
    writeFileSync(path.join(dir, file), dump.stdout.split(`# file: ${img}:`).join(`# file: ${other}:`));
    const r = await cli("setfacl", `--restore=${file}`);
    expect(r.code, r.stderr).toBe(0);
    expect((await cli("getfacl", "-R", `${other}:/`)).stdout).toBe(readFileSync(path.join(dir, file), "utf8"));
  });
});
