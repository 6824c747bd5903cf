/**
 * `ext4ts mkfs -d DIR IMAGE [SIZE]`: a new filesystem holding a host tree, as `mke2fs -d`
 * builds it: mkfs (tools/mkfs) lays the volume out, then the tree is copied in through
 * the public Volume API by the same code as `ext4ts cp -a` (populate.ts): modes, owners,
 * atime/mtime with nanoseconds, xattrs and POSIX ACLs, hard links, symlinks, devices,
 * fifos, sockets, sparse files (all-zero blocks left as holes), lost+found reused if DIR
 * has one. The root directory takes DIR's owner, mode, times and xattrs (mke2fs 1.47.0
 * copies only the xattrs; later e2fsprogs copy all of them). Directories that outgrow a
 * block become htree indexes as entries are added (mke2fs -d leaves them linear).
 *
 * Without SIZE the image is sized to fit the tree (auto_size.ts; a block device is used
 * whole). Reproducible: with -U UUID, -E hash_seed=UUID and a fixed time (SOURCE_DATE_EPOCH
 * or E2FSPROGS_FAKE_TIME, passed as `now`), the same tree and options give the same bytes:
 * every name is added in sorted order, every new inode's times come from that clock,
 * i_generation from the UUID (namei_write.ts), xattrs in name order, atimes are the
 * mtimes (reading the tree moves the host's atimes, so copying them could never repeat;
 * without a fixed time the host's atimes are copied, as mke2fs does), and the superblock
 * is left as mke2fs leaves it (never mounted: no mount time, mount count 0) instead of
 * carrying the engine's mount.
 */

import { statSync } from "node:fs";
import { FileDevice, Volume } from "../../src/node.js";
import type { Timespec } from "../../src/format/inode.js";
import { autoSize, type AutoSize } from "../mkfs/auto_size.js";
import { mkfs, type MkfsOptions, type MkfsOutput, type MkfsResult } from "../mkfs/mkfs.js";
import { CommandFailure } from "./errors.js";
import { CopyError, HostCopier, haveGetfattr, scanHostTree, type CopyCounts, type HostTreeTotals } from "./populate.js";
import { ProgressLine } from "./progress.js";
import { recomputeQuotaUsage } from "../mkfs/quota.js";

export interface MkfsFromDirOptions extends MkfsOptions {
  output?: MkfsOutput;
  /** Copy xattrs and ACLs (default true; the CLI's -E no_copy_xattrs turns it off). Needs getfattr. */
  xattrs?: boolean;
  /** Show a progress line on this terminal (the CLI passes stderr when it is a TTY and -q is not given). */
  progress?: NodeJS.WriteStream;
}

export interface MkfsFromDirResult {
  mkfs: MkfsResult;
  /** The size picked when SIZE was omitted. */
  auto: AutoSize | undefined;
  /** What was copied (undefined with -n). */
  counts: CopyCounts | undefined;
}

const HOST_WORDS: Partial<Record<string, string>> = { ENOENT: "No such file or directory", EACCES: "Permission denied", ENOTDIR: "Not a directory", ELOOP: "Too many levels of symbolic links" };

/** Host identity of `path` if it exists, so the copy can leave out the image itself. */
function identity(path: string): { dev: bigint; ino: bigint }[] {
  try {
    const st = statSync(path, { bigint: true });
    return [{ dev: st.dev, ino: st.ino }];
  } catch {
    return [];
  }
}

/** Make a filesystem on `image` holding the tree at host directory `dir`. */
export async function mkfsFromDir(image: string, dir: string, o: MkfsFromDirOptions = {}): Promise<MkfsFromDirResult> {
  const output = o.output ?? { out: () => undefined, err: () => undefined };
  const say = (s: string): void => {
    if (o.quiet !== true) output.out(s);
  };
  try {
    if (!statSync(dir).isDirectory()) throw new CommandFailure(`mkfs: ${dir}: Not a directory`);
  } catch (e) {
    if (e instanceof CommandFailure) throw e;
    const code = typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : "";
    throw new CommandFailure(`mkfs: ${dir}: ${HOST_WORDS[code] ?? (e instanceof Error ? e.message : String(e))}`);
  }
  const xattrs = o.xattrs ?? true;
  if (xattrs && !(await haveGetfattr())) {
    throw new CommandFailure("mkfs: -d copies extended attributes and ACLs with getfattr, which was not found: install the attr package, or pass -E no_copy_xattrs");
  }

  let isDevice = false;
  try {
    isDevice = statSync(image).isBlockDevice();
  } catch {
    // a new image file
  }
  let totals: HostTreeTotals | undefined;
  let auto: AutoSize | undefined;
  let size = o.size;
  if (size === undefined && !isDevice) {
    totals = await scanHostTree(dir, { xattrs, cmd: "mkfs", exclude: identity(image) });
    auto = autoSize(totals, o, image);
    size = auto.size;
  } else if (o.progress !== undefined) {
    totals = await scanHostTree(dir, { xattrs: false, cmd: "mkfs", exclude: identity(image) });
  }

  const made = await mkfs(image, { ...o, ...(size !== undefined ? { size } : {}), ...(auto?.inodeCount !== undefined ? { inodeCount: auto.inodeCount } : {}),
    ...(auto?.blockSizeOption !== undefined ? { blockSize: auto.blockSizeOption } : {}), output });
  if (o.noAction === true) return { mkfs: made, auto, counts: undefined };

  const now = o.now;
  const clock = now === undefined ? undefined : (): Timespec => ({ sec: now, nsec: 0 });
  const dev = await FileDevice.open(image, { readOnly: false, syncIO: true });
  let vol: Volume;
  try {
    vol = await Volume.mount(dev, { readOnly: false, umask: 0, ...(clock !== undefined ? { now: clock } : {}) });
  } catch (e) {
    await dev.close();
    throw e;
  }
  say("Copying files into the device: ");
  const progress = o.progress === undefined ? undefined : new ProgressLine(o.progress, "Copying", totals === undefined ? undefined : { entries: totals.entries, bytes: totals.bytes });
  let counts: CopyCounts | undefined;
  try {
    const copier = new HostCopier(vol, {
      recursive: true, archive: true, xattrs, umask: 0, cmd: "mkfs", exclude: identity(image), atimeFromMtime: now !== undefined,
      warn: (m) => {
        progress?.done();
        output.err(`ext4ts: mkfs: ${m}\n`);
      },
      ...(progress !== undefined ? { onProgress: (c: Readonly<CopyCounts>) => { progress.update(c); } } : {}),
    });
    try {
      await copier.copyContents(dir, "/");
      counts = await copier.finish();
    } catch (e) {
      if (e instanceof CopyError) throw new CommandFailure(`mkfs: cannot copy '${dir}' to '${image}:${e.dest}': ${e.fsError.message}`);
      throw e;
    }
    await recomputeQuotaUsage(vol); // the quota files count what was copied (-O quota)
    // Leave the superblock as mke2fs -d does: never mounted (the engine's mount set these).
    vol.fs.sb.s_mnt_count = 0;
    vol.fs.sb.s_mtime = 0;
  } finally {
    progress?.done();
    if (counts !== undefined) {
      await vol.unmount();
    } else {
      // Already failing: write what was copied and report the first error, not this one.
      await vol.unmount().catch(() => undefined);
    }
  }
  say("done\n\n");
  return { mkfs: made, auto, counts };
}
