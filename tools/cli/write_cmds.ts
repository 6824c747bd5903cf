/**
 * Commands that change an image: cp, mkdir, rm, mv, ln, chmod, chown, touch, truncate,
 * setfattr. Paths inside an image are written IMAGE:PATH, as scp does. Messages and exit
 * codes follow coreutils: `ext4ts: cannot remove 'img:/d': Directory not empty`, exit 1.
 */

import type { Command } from "commander";
import { existsSync, promises as fsp, statSync } from "node:fs";
import { basename, join } from "node:path";
import { FsError, openImage, type Volume } from "../../src/node.js";
import { S_IFMT, S_IFREG } from "../../src/format/inode.js";
import { CommandFailure } from "./errors.js";
import { CopyError, HostCopier, haveGetfattr, type CopyCounts } from "./populate.js";
import { ProgressLine } from "./progress.js";

/** An argument that names a path inside an image. */
export interface ImagePath {
  image: string;
  path: string;
}

/** "img.ext4:/etc" -> { image, path } when the part before ':' is an existing file; else null. */
export function parseImagePath(arg: string): ImagePath | null {
  const at = arg.indexOf(":");
  if (at <= 0) return null;
  const image = arg.slice(0, at);
  try {
    const st = statSync(image);
    if (!st.isFile() && !st.isBlockDevice()) return null;
  } catch {
    return null;
  }
  const path = arg.slice(at + 1);
  return { image, path: path.startsWith("/") ? path : `/${path}` };
}

export { CommandFailure };

/** The host inode of an image file, so copying a tree that contains the image leaves it out. */
function hostIdentity(image: string): { dev: bigint; ino: bigint }[] {
  try {
    const st = statSync(image, { bigint: true });
    return [{ dev: st.dev, ino: st.ino }];
  } catch {
    return [];
  }
}

function describe(e: unknown): string {
  if (e instanceof FsError) {
    const words: Partial<Record<string, string>> = {
      ENOENT: "No such file or directory", EEXIST: "File exists", ENOTDIR: "Not a directory", EISDIR: "Is a directory",
      ENOTEMPTY: "Directory not empty", ENOSPC: "No space left on device", ENAMETOOLONG: "File name too long",
      EMLINK: "Too many links", EFBIG: "File too large", EINVAL: "Invalid argument", EROFS: "Read-only file system",
      EPERM: "Operation not permitted", ELOOP: "Too many levels of symbolic links", EOPNOTSUPP: "Operation not supported",
    };
    return words[e.code] ?? e.message;
  }
  return e instanceof Error ? e.message : String(e);
}

/** --force-write: write to a volume e2fsck should see first (bad checksums, errors recorded). */
let forceWrite = false;

async function withWritable<T>(image: string, fn: (vol: Volume) => Promise<T>): Promise<T> {
  const vol = await openImage(image, { readOnly: false, syncIO: true, force: forceWrite });
  try {
    return await fn(vol);
  } finally {
    await vol.unmount();
  }
}

function requireImagePath(arg: string, cmd: string): ImagePath {
  const ip = parseImagePath(arg);
  if (ip === null) throw new CommandFailure(`${cmd}: '${arg}' is not an IMAGE:PATH (the image must exist)`);
  return ip;
}

/** Group IMAGE:PATH arguments by image so each image is mounted once. */
function byImage(args: string[], cmd: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const a of args) {
    const ip = requireImagePath(a, cmd);
    m.set(ip.image, [...(m.get(ip.image) ?? []), ip.path]);
  }
  return m;
}

async function eachPath(args: string[], cmd: string, verb: string, fn: (vol: Volume, path: string) => Promise<void>): Promise<void> {
  const state = { failed: false }; // set inside the callbacks below
  for (const [image, paths] of byImage(args, cmd)) {
    await withWritable(image, async (vol) => {
      for (const p of paths) {
        try {
          await fn(vol, p);
        } catch (e) {
          if (!(e instanceof FsError)) throw e;
          process.stderr.write(`ext4ts: cannot ${verb} '${image}:${p}': ${describe(e)}\n`);
          state.failed = true;
        }
      }
    });
  }
  if (state.failed) throw new CommandFailure("");
}

async function removeTree(vol: Volume, path: string): Promise<void> {
  const st = await vol.lstat(path);
  if (st.isDirectory()) {
    for (const name of await vol.readdir(path)) await removeTree(vol, path === "/" ? `/${name}` : `${path}/${name}`);
    await vol.rmdir(path);
  } else {
    await vol.unlink(path);
  }
}

export function registerWriteCommands(program: Command): void {
  program.option("--force-write", "write even to an image with recorded errors or bad checksums (run e2fsck instead)");
  program.hook("preAction", (cmd) => {
    forceWrite = cmd.opts<{ forceWrite?: boolean }>().forceWrite === true;
  });
  program.command("mkdir").description("create directories in an image").argument("<paths...>", "IMAGE:PATH ...")
    .option("-p, --parents", "make parents as needed, no error if existing").option("-m, --mode <mode>", "permission bits (octal)")
    .action((paths: string[], o: { parents?: boolean; mode?: string }) =>
      eachPath(paths, "mkdir", "create directory", async (vol, p) => {
        await vol.mkdir(p, { recursive: o.parents === true, ...(o.mode === undefined ? {} : { mode: parseInt(o.mode, 8) }) });
      }));

  program.command("rm").description("remove files or directories from an image").argument("<paths...>", "IMAGE:PATH ...")
    .option("-r, --recursive", "remove directories and their contents").option("-f, --force", "ignore nonexistent files")
    .action((paths: string[], o: { recursive?: boolean; force?: boolean }) =>
      eachPath(paths, "rm", "remove", async (vol, p) => {
        try {
          const st = await vol.lstat(p);
          if (st.isDirectory() && o.recursive !== true) throw new FsError("EISDIR", "Is a directory");
          if (st.isDirectory()) await removeTree(vol, p);
          else await vol.unlink(p);
        } catch (e) {
          if (o.force === true && e instanceof FsError && e.code === "ENOENT") return;
          throw e;
        }
      }));

  program.command("mv").description("rename or move within an image").argument("<from>", "IMAGE:PATH").argument("<to>", "IMAGE:PATH or PATH in the same image")
    .action(async (from: string, to: string) => {
      const a = requireImagePath(from, "mv");
      const b = parseImagePath(to) ?? { image: a.image, path: to.startsWith("/") ? to : `/${to}` };
      if (b.image !== a.image) throw new CommandFailure("mv: moving between images is not supported; use cp and rm");
      await withWritable(a.image, async (vol) => {
        let dest = b.path;
        try {
          if ((await vol.stat(dest)).isDirectory()) dest = `${dest.replace(/\/+$/, "")}/${basename(a.path)}`;
        } catch (e) {
          if (!(e instanceof FsError && e.code === "ENOENT")) throw e;
        }
        try {
          await vol.rename(a.path, dest);
        } catch (e) {
          if (!(e instanceof FsError)) throw e;
          throw new CommandFailure(`mv: cannot move '${from}' to '${a.image}:${dest}': ${describe(e)}`);
        }
      });
    });

  program.command("ln").description("make links in an image").argument("<target>", "IMAGE:PATH, or any text with -s").argument("<link>", "IMAGE:PATH")
    .option("-s, --symbolic", "make a symbolic link")
    .action(async (target: string, link: string, o: { symbolic?: boolean }) => {
      const l = requireImagePath(link, "ln");
      await withWritable(l.image, async (vol) => {
        try {
          if (o.symbolic === true) await vol.symlink(target, l.path);
          else await vol.link(requireImagePath(target, "ln").path, l.path);
        } catch (e) {
          if (!(e instanceof FsError)) throw e;
          throw new CommandFailure(`ln: failed to create ${o.symbolic === true ? "symbolic " : "hard "}link '${link}': ${describe(e)}`);
        }
      });
    });

  program.command("chmod").description("change permission bits").argument("<mode>", "octal mode").argument("<paths...>", "IMAGE:PATH ...")
    .action((mode: string, paths: string[]) => {
      if (!/^[0-7]{1,4}$/.test(mode)) throw new CommandFailure(`chmod: invalid mode: '${mode}' (octal modes only)`);
      return eachPath(paths, "chmod", "access", (vol, p) => vol.chmod(p, parseInt(mode, 8)));
    });

  program.command("chown").description("change owner and group (numeric)").argument("<owner>", "UID[:GID]").argument("<paths...>", "IMAGE:PATH ...")
    .option("-h, --no-dereference", "affect symbolic links instead of what they point to")
    .action((owner: string, paths: string[], o: { dereference: boolean }) => {
      const m = /^(\d*)(?::(\d*))?$/.exec(owner);
      if (m === null) throw new CommandFailure(`chown: invalid user: '${owner}' (numeric UID[:GID] only)`);
      const uid = m[1] === undefined || m[1] === "" ? -1 : Number(m[1]);
      const gid = m[2] === undefined || m[2] === "" ? -1 : Number(m[2]);
      return eachPath(paths, "chown", "access", (vol, p) => (o.dereference ? vol.chown(p, uid, gid) : vol.lchown(p, uid, gid)));
    });

  program.command("touch").description("create files or set their times to now").argument("<paths...>", "IMAGE:PATH ...")
    .option("-d, --date <seconds>", "time as seconds since the epoch (fractions allowed)")
    .action((paths: string[], o: { date?: string }) =>
      eachPath(paths, "touch", "touch", async (vol, p) => {
        const t = o.date === undefined ? Date.now() / 1000 : Number(o.date.replace(/^@/, ""));
        if (!Number.isFinite(t)) throw new CommandFailure(`touch: invalid date format '${o.date ?? ""}'`);
        const ts = { sec: Math.floor(t), nsec: Math.round((t - Math.floor(t)) * 1e9) % 1_000_000_000 };
        try {
          await vol.stat(p);
        } catch (e) {
          if (!(e instanceof FsError && e.code === "ENOENT")) throw e;
          await (await vol.open(p, "a")).close();
        }
        await vol.utimes(p, ts, ts);
      }));

  program.command("truncate").description("set the size of files").requiredOption("-s, --size <bytes>", "new size in bytes (K, M, G suffixes)").argument("<paths...>", "IMAGE:PATH ...")
    .action((paths: string[], o: { size: string }) => {
      const m = /^(\d+)([KMGT]?)$/i.exec(o.size);
      if (m === null) throw new CommandFailure(`truncate: invalid number: '${o.size}'`);
      const size = Number(m[1]) * 1024 ** "_KMGT".indexOf((m[2] ?? "").toUpperCase() || "_");
      return eachPath(paths, "truncate", "open", async (vol, p) => {
        try {
          await vol.stat(p);
        } catch (e) {
          if (!(e instanceof FsError && e.code === "ENOENT")) throw e;
          await (await vol.open(p, "a")).close();
        }
        await vol.truncate(p, size);
      });
    });

  program.command("cp").description("copy files into or out of an image (SRC... IMAGE:DEST, or IMAGE:SRC DEST)")
    .argument("<paths...>", "sources then destination").option("-r, --recursive", "copy directories recursively")
    .option("-a, --archive", "keep modes, owners, times, symlinks, hard links, special files and xattrs/ACLs (implies -r)")
    .action(async (paths: string[], o: { recursive?: boolean; archive?: boolean }) => {
      if (paths.length < 2) throw new CommandFailure("cp: missing destination file operand");
      const dest = paths[paths.length - 1]!;
      const sources = paths.slice(0, -1);
      const opts = { recursive: o.recursive === true || o.archive === true, archive: o.archive === true };
      const target = parseImagePath(dest);
      if (target !== null) {
        // Xattrs are read with getfattr; without it, cp -a copies everything else (as cp does onto a filesystem without xattrs).
        let xattrs = opts.archive;
        if (xattrs && !(await haveGetfattr())) {
          process.stderr.write("ext4ts: cp: getfattr (package attr) not found: extended attributes and ACLs are not copied\n");
          xattrs = false;
        }
        await withWritable(target.image, async (vol) => {
          let destIsDir = false;
          try {
            destIsDir = (await vol.stat(target.path)).isDirectory();
          } catch (e) {
            if (!(e instanceof FsError && e.code === "ENOENT")) throw e;
          }
          const progress = process.stderr.isTTY ? new ProgressLine(process.stderr, "Copying") : undefined;
          const copier = new HostCopier(vol, {
            ...opts, xattrs, cmd: "cp", exclude: hostIdentity(target.image),
            warn: (m) => {
              progress?.done();
              process.stderr.write(`ext4ts: cp: ${m}\n`);
            },
            ...(progress !== undefined ? { onProgress: (c: Readonly<CopyCounts>) => { progress.update(c); } } : {}),
          });
          try {
            for (const src of sources) {
              // "SRC/." copies the directory's contents (and, with -a, its metadata onto DEST), as coreutils does.
              const contentsOnly = /(^|\/)\.\/?$/.test(src);
              const to = destIsDir && !contentsOnly ? `${target.path.replace(/\/+$/, "")}/${basename(src)}` : target.path;
              await copier.copy(src, to);
            }
            await copier.finish();
          } catch (e) {
            if (!(e instanceof CopyError)) throw e;
            throw new CommandFailure(`cp: cannot create '${target.image}:${e.dest}': ${describe(e.fsError)}`);
          } finally {
            progress?.done();
          }
        });
        return;
      }
      // Out of an image: IMAGE:SRC DEST.
      if (sources.length !== 1) throw new CommandFailure("cp: copy one IMAGE:PATH out at a time");
      const from = requireImagePath(sources[0]!, "cp");
      const { extract } = await import("./extract.js");
      const vol = await openImage(from.image, { readOnly: true, syncIO: true });
      try {
        const st = await vol.lstat(from.path);
        if (st.isDirectory()) {
          if (!opts.recursive) throw new CommandFailure(`cp: -r not specified; omitting directory '${sources[0]!}'`);
          await extract(vol, dest, { root: from.path, owners: opts.archive && process.getuid?.() === 0, xattrs: opts.archive });
        } else if ((st.mode & S_IFMT) === S_IFREG) {
          const out = existsSync(dest) && statSync(dest).isDirectory() ? join(dest, basename(from.path)) : dest;
          await fsp.writeFile(out, await vol.readFile(from.path), { mode: st.mode & 0o7777 });
        } else {
          throw new CommandFailure(`cp: '${sources[0]!}' is not a regular file or directory`);
        }
      } finally {
        await vol.unmount();
      }
    });
}
