/**
 * The `ext4ts` command line. Exit codes: 0 success, 1 the operation failed (message on
 * stderr as `ext4ts: CMD: CODE: reason (inode N, block B), syscall 'path'`), 2 usage.
 */

import { type Command, Option } from "commander";
import { createWriteStream } from "node:fs";
import { gunzipSync } from "node:zlib";
import { MemoryDevice, Volume, openImage, type Stats } from "../../src/node.js";
import { describeSuperblock } from "../../src/format/superblock.js";
import { describeInodeFlags } from "../../src/format/inode.js";
import { DEMO_IMAGE_GZ_BASE64 } from "./demo_image.js";
import { extract } from "./extract.js";
import { formatNs, manifestLine, writeManifest } from "./manifest.js";
import { registerWriteCommands } from "./write_cmds.js";
import { baseProgram, runProgram } from "./run.js";
import { registerMkfs } from "./mkfs_cmd.js";
import { registerFsck } from "./fsck_cmd.js";
import { registerXattrCommands } from "./xattr_cmds.js";
import { registerQuotaCommands } from "./quota_cmds.js";
import { registerStress } from "./stress_cmd.js";

function out(s: string): void {
  process.stdout.write(s);
}

interface ImageOpts {
  noload?: boolean;
}

async function withImage<T>(image: string, opts: ImageOpts, fn: (vol: Volume) => Promise<T>): Promise<T> {
  const vol = await openImage(image, { readOnly: true, noload: opts.noload === true, syncIO: true });
  try {
    return await fn(vol);
  } finally {
    await vol.unmount();
  }
}

function modeString(s: Stats): string {
  const t = { file: "-", dir: "d", symlink: "l", chr: "c", blk: "b", fifo: "p", sock: "s" }[s.type];
  const m = s.mode;
  const rwx = (r: number, w: number, x: number, special: number, ch: string): string =>
    (m & r ? "r" : "-") + (m & w ? "w" : "-") + (m & special ? (m & x ? ch : ch.toUpperCase()) : m & x ? "x" : "-");
  return t + rwx(0o400, 0o200, 0o100, 0o4000, "s") + rwx(0o40, 0o20, 0o10, 0o2000, "s") + rwx(0o4, 0o2, 0o1, 0o1000, "t");
}

function isoTime(sec: number, nsec = 0, withNs = false): string {
  const d = new Date(sec * 1000);
  const base = d.toISOString().replace("T", " ").slice(0, withNs ? 19 : 16);
  return withNs ? `${base}.${String(nsec).padStart(9, "0")} +0000` : base;
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

async function lsCmd(vol: Volume, path: string, o: { long?: boolean; recursive?: boolean }): Promise<void> {
  const st = await vol.lstat(path);
  if (!st.isDirectory()) {
    out(o.long === true ? await longLine(vol, path, path, st) : `${path}\n`);
    return;
  }
  const dirs: string[] = [path];
  let first = true;
  while (dirs.length > 0) {
    const dir = dirs.shift()!;
    const names = (await vol.readdir(dir)).sort();
    if (o.recursive === true) out(`${first ? "" : "\n"}${dir}:\n`);
    first = false;
    const sub: string[] = [];
    for (const name of names) {
      const p = joinPath(dir, name);
      const s = o.long === true || o.recursive === true ? await vol.lstat(p) : null;
      out(o.long === true && s !== null ? await longLine(vol, p, name, s) : `${name}\n`);
      if (o.recursive === true && s?.isDirectory() === true) sub.push(p);
    }
    dirs.unshift(...sub);
  }
}

async function longLine(vol: Volume, path: string, name: string, s: Stats): Promise<string> {
  const size = s.isCharacterDevice() || s.isBlockDevice() ? `${s.rdevMajor}, ${s.rdevMinor}` : String(s.size);
  const target = s.isSymbolicLink() ? ` -> ${await vol.readlink(path)}` : "";
  return `${modeString(s)} ${String(s.nlink).padStart(3)} ${String(s.uid).padStart(5)} ${String(s.gid).padStart(5)} ${size.padStart(10)} ${isoTime(s.mtime.sec)} ${name}${target}\n`;
}

const TYPE_WORDS = { file: "regular file", dir: "directory", symlink: "symbolic link", chr: "character special file", blk: "block special file", fifo: "fifo", sock: "socket" } as const;

async function statCmd(vol: Volume, path: string, json: boolean): Promise<void> {
  const s = await vol.lstat(path);
  if (json) {
    const o: Record<string, unknown> = {
      path, ino: s.ino, type: s.type, mode: (s.mode & 0o7777).toString(8).padStart(4, "0"), uid: s.uid, gid: s.gid,
      nlink: s.nlink, size: s.size, blocks: s.blocks, blksize: s.blksize, flags: describeInodeFlags(s.flags),
      generation: s.generation, atime: formatNs(s.atimeNs), mtime: formatNs(s.mtimeNs), ctime: formatNs(s.ctimeNs),
      crtime: formatNs(s.birthtimeNs),
    };
    if (s.isCharacterDevice() || s.isBlockDevice()) o.rdev = `${s.rdevMajor}:${s.rdevMinor}`;
    if (s.isSymbolicLink()) o.target = await vol.readlink(path);
    out(`${JSON.stringify(o)}\n`);
    return;
  }
  const target = s.isSymbolicLink() ? ` -> ${await vol.readlink(path)}` : "";
  out(`  File: ${path}${target}\n`);
  out(`  Size: ${String(s.size).padEnd(15)} Blocks: ${String(s.blocks).padEnd(10)} IO Block: ${String(s.blksize).padEnd(6)} ${TYPE_WORDS[s.type]}\n`);
  const dev = s.isCharacterDevice() || s.isBlockDevice() ? `  Device type: ${s.rdevMajor},${s.rdevMinor}` : "";
  out(`Inode: ${String(s.ino).padEnd(11)} Links: ${s.nlink}${dev}\n`);
  out(`Access: (${(s.mode & 0o7777).toString(8).padStart(4, "0")}/${modeString(s)})  Uid: (${String(s.uid).padStart(5)})   Gid: (${String(s.gid).padStart(5)})\n`);
  out(`Access: ${isoTime(s.atime.sec, s.atime.nsec, true)}\n`);
  out(`Modify: ${isoTime(s.mtime.sec, s.mtime.nsec, true)}\n`);
  out(`Change: ${isoTime(s.ctime.sec, s.ctime.nsec, true)}\n`);
  out(` Birth: ${isoTime(s.birthtime.sec, s.birthtime.nsec, true)}\n`);
  out(` Flags: ${describeInodeFlags(s.flags) || "-"}\n`);
}

async function demo(): Promise<void> {
  const image = gunzipSync(Buffer.from(DEMO_IMAGE_GZ_BASE64, "base64"));
  const dev = MemoryDevice.from(new Uint8Array(image.buffer, image.byteOffset, image.byteLength), { readOnly: true });
  const vol = await Volume.mount(dev);
  const t0 = performance.now();
  out(`ext4ts demo: mounted an embedded ${image.length / 1024} KiB ext4 image from memory (no kernel, no root)\n\n`);
  const fs = vol.fs;
  out(`Volume "${new TextDecoder().decode(fs.sb.s_volume_name).replace(/\0+$/, "")}": ${fs.blocksCount} blocks of ${fs.blockSize} bytes, ${fs.inodesCount} inodes, ${fs.groupCount} groups\n`);
  out(`Features: ${describeSuperblock(fs.sb).split("\n").find((l) => l.startsWith("Filesystem features:"))?.slice(26) ?? ""}\n\n`);
  out("$ ext4ts ls -l / \n");
  await lsCmd(vol, "/", { long: true });
  out(`\n$ ext4ts cat /docs/link-to-readme\n${new TextDecoder().decode(await vol.readFile("/docs/link-to-readme"))}`);
  out("\n$ ext4ts getfattr /etc/passwd   (value lives in an external xattr block)\n");
  const v = await vol.getxattr("/etc/passwd", "user.big");
  out(`user.big = ${v.length} bytes of "${String.fromCharCode(v[0] ?? 0)}"\n`);
  out(`\n$ ext4ts ls /big | wc -l   (a 300-entry directory spanning several blocks)\n${(await vol.readdir("/big")).length}\n`);
  out("\n$ ext4ts manifest   (first 3 of every reachable inode, sorted, kernel-diffable)\n");
  let n = 0;
  let shown = 0;
  for await (const e of vol.walk("/")) {
    n++;
    if (shown < 3) {
      out(`${await manifestLine(vol, e)}\n`);
      shown++;
    }
  }
  out(`... ${n} inodes in ${(performance.now() - t0).toFixed(1)} ms\n`);
  await vol.unmount();
}

export function buildProgram(): Command {
  const program = baseProgram();
  const noload = new Option("--noload", "read a volume whose journal needs recovery without replaying it (like mount -o noload)");

  program.command("demo", { isDefault: false }).description("show the engine at work on an embedded in-memory image (no arguments)").action(demo);

  program.command("info").description("print the superblock and features (like dumpe2fs -h)").argument("<image>").addOption(noload)
    .action((image: string, o: ImageOpts) => withImage(image, o, (vol) => {
      out(describeSuperblock(vol.fs.sb));
      for (const w of vol.fs.warnings) process.stderr.write(`ext4ts: info: warning: ${w}\n`);
      return Promise.resolve();
    }));

  program.command("ls").description("list a directory").argument("<image>").argument("[path]", "path inside the image", "/")
    .option("-l, --long", "long listing").option("-R, --recursive", "list subdirectories recursively").addOption(noload)
    .action((image: string, path: string, o: ImageOpts & { long?: boolean; recursive?: boolean }) => withImage(image, o, (vol) => lsCmd(vol, path, o)));

  program.command("cat").description("write a file's contents to stdout").argument("<image>").argument("<path>").addOption(noload)
    .action((image: string, path: string, o: ImageOpts) => withImage(image, o, async (vol) => {
      const fh = await vol.open(path);
      for await (const chunk of fh.chunks()) {
        if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once("drain", r));
      }
      await fh.close();
    }));

  program.command("stat").description("show an inode (like stat; no symlink following)").argument("<image>").argument("<path>")
    .option("--json", "one JSON object").addOption(noload)
    .action((image: string, path: string, o: ImageOpts & { json?: boolean }) => withImage(image, o, (vol) => statCmd(vol, path, o.json === true)));

  program.command("extract").description("copy the whole tree out of an image (like debugfs rdump, keeping metadata)")
    .argument("<image>").argument("<dir>", "destination directory (created if missing)")
    .option("--no-xattrs", "do not restore extended attributes").option("--no-owners", "do not chown").addOption(noload)
    .action((image: string, dir: string, o: ImageOpts & { xattrs: boolean; owners: boolean }) => withImage(image, o, async (vol) => {
      const s = await extract(vol, dir, { xattrs: o.xattrs, ...(o.owners ? {} : { owners: false }) });
      process.stderr.write(`ext4ts: extracted ${s.files} files (${s.bytes} bytes), ${s.dirs} directories, ${s.symlinks} symlinks, ${s.hardlinks} hard links, ${s.special} special files${s.skipped > 0 ? `, skipped ${s.skipped}` : ""}\n`);
    }));

  program.command("manifest").description("one JSON line per reachable inode, sorted by path (diffable against a kernel mount)")
    .argument("<image>").option("-o, --output <file>", "write to a file instead of stdout").addOption(noload)
    .action((image: string, o: ImageOpts & { output?: string }) => withImage(image, o, async (vol) => {
      const stream = o.output === undefined ? process.stdout : createWriteStream(o.output);
      const write = (line: string): Promise<void> | void => {
        if (!stream.write(line)) return new Promise((r) => stream.once("drain", () => { r(); }));
      };
      await writeManifest(vol, write);
      if (stream !== process.stdout) await new Promise<void>((r, j) => stream.end((e?: Error | null) => { if (e) j(e); else r(); }));
    }));
  registerMkfs(program);
  registerFsck(program);
  registerWriteCommands(program);
  registerXattrCommands(program); // getfattr, setfattr, getfacl, setfacl
  registerQuotaCommands(program); // repquota, setquota
  registerStress(program);
  return program;
}

export function main(argv: string[]): Promise<number> {
  return runProgram(buildProgram(), argv);
}
