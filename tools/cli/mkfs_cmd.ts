/**
 * `ext4ts mkfs [options] [-d DIR] IMAGE [SIZE]`: the mke2fs-compatible front end of
 * tools/mkfs. Option letters and meanings follow mke2fs(8); failures are FsError and
 * exit with status 1 like mke2fs. E2FSPROGS_FAKE_TIME (or SOURCE_DATE_EPOCH) fixes the
 * creation time, as it does for e2fsprogs, and with -d the time of everything created.
 * -d DIR fills the new filesystem from a host directory (mkfs_dir.ts).
 */

import type { Command } from "commander";
import { mkfs, type MkfsOptions } from "../mkfs/mkfs.js";
import { mkfsFromDir } from "./mkfs_dir.js";

interface MkfsCliOptions {
  type?: string;
  usageType?: string;
  blockSize?: string;
  inodeSize?: string;
  bytesPerInode?: string;
  inodes?: string;
  reserved?: string;
  label?: string;
  uuid?: string;
  features: string[];
  extended: string[];
  journal?: boolean;
  journalOptions: string[];
  errors?: string;
  flexBgSize?: string;
  blocksPerGroup?: string;
  lastMounted?: string;
  force?: boolean;
  quiet?: boolean;
  dryRun?: boolean;
  rootDirectory?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** The creation time e2fsprogs would use: SOURCE_DATE_EPOCH, then E2FSPROGS_FAKE_TIME. */
function fakeTime(): number | undefined {
  for (const name of ["SOURCE_DATE_EPOCH", "E2FSPROGS_FAKE_TIME"]) {
    const v = process.env[name];
    if (v !== undefined && /^[0-9]+$/.test(v)) return Number(v);
  }
  return undefined;
}

/** Adds the `mkfs` subcommand to the ext4ts program. */
export function registerMkfs(program: Command): void {
  program
    .command("mkfs")
    .description("make an ext2/ext3/ext4 filesystem on an image file (like mke2fs; SIZE in blocks or with K/M/G/T); -d DIR fills it from a host directory")
    .argument("<image>", "image file (created sparse if missing) or block device")
    .argument("[size]", "filesystem size: blocks of -b (1 KiB without -b), or with a K, M, G or T suffix; with -d and no SIZE, sized to fit DIR (the smallest MiB count leaving 10% more free blocks and inodes than DIR needs, besides the -m reserve)")
    .option("-d, --root-directory <dir>", "copy the contents of DIR into the new filesystem, like mke2fs -d: modes, owners, ns times, xattrs and ACLs (getfattr; -E no_copy_xattrs skips them), hard links, symlinks, devices, fifos, sockets, holes")
    .option("-t, --type <fstype>", "ext2, ext3 or ext4 (default ext4)")
    .option("-T, --usage-type <types>", "mke2fs.conf usage types (default by size: floppy, small, default, big, huge)")
    .option("-b, --block-size <bytes>", "block size: 1024, 2048 or 4096")
    .option("-I, --inode-size <bytes>", "inode size (default 256)")
    .option("-i, --bytes-per-inode <bytes>", "bytes per inode")
    .option("-N, --inodes <count>", "number of inodes")
    .option("-m, --reserved <percent>", "reserved blocks percentage (default 5)")
    .option("-L, --label <label>", "volume label")
    .option("-U, --uuid <uuid>", "UUID, or random, time, clear")
    .option("-O, --features <list>", "features to set or (^name) clear; repeatable", collect, [])
    .option("-E, --extended <opts>", "extended options: root_owner[=uid:gid], lazy_itable_init[=0|1], hash_seed=UUID, no_copy_xattrs, ...; repeatable", collect, [])
    .option("-j, --journal", "add a journal")
    .option("-J, --journal-options <opts>", "journal options: size=MB, location=BLOCK; repeatable", collect, [])
    .option("-e, --errors <behavior>", "errors behavior: continue, remount-ro or panic")
    .option("-G, --flex-bg-size <groups>", "groups per flex_bg (default 16)")
    .option("-g, --blocks-per-group <blocks>", "blocks per group")
    .option("-M, --last-mounted <dir>", "last mounted directory")
    .option("-F, --force", "overwrite an existing filesystem; allow blocks larger than 4 KiB")
    .option("-q, --quiet", "print nothing but errors")
    .option("-n, --dry-run", "show what would be made, write nothing")
    .action(async (image: string, size: string | undefined, o: MkfsCliOptions) => {
      const opts: MkfsOptions = {
        features: o.features,
        extended: o.extended,
        journalOptions: o.journalOptions,
        ...(size !== undefined ? { size } : {}),
        ...(o.type !== undefined ? { fsType: o.type } : {}),
        ...(o.usageType !== undefined ? { usageTypes: o.usageType } : {}),
        ...(o.blockSize !== undefined ? { blockSize: o.blockSize } : {}),
        ...(o.inodeSize !== undefined ? { inodeSize: o.inodeSize } : {}),
        ...(o.bytesPerInode !== undefined ? { bytesPerInode: o.bytesPerInode } : {}),
        ...(o.inodes !== undefined ? { inodeCount: o.inodes } : {}),
        ...(o.reserved !== undefined ? { reservedPercent: o.reserved } : {}),
        ...(o.label !== undefined ? { label: o.label } : {}),
        ...(o.uuid !== undefined ? { uuid: o.uuid } : {}),
        ...(o.journal === true ? { journal: true } : {}),
        ...(o.errors !== undefined ? { errorsBehavior: o.errors } : {}),
        ...(o.flexBgSize !== undefined ? { flexBgSize: o.flexBgSize } : {}),
        ...(o.blocksPerGroup !== undefined ? { blocksPerGroup: o.blocksPerGroup } : {}),
        ...(o.lastMounted !== undefined ? { lastMounted: o.lastMounted } : {}),
        ...(o.force === true ? { force: true } : {}),
        ...(o.quiet === true ? { quiet: true } : {}),
        ...(o.dryRun === true ? { noAction: true } : {}),
      };
      const now = fakeTime();
      const output = { out: (s: string) => process.stdout.write(s), err: (s: string) => process.stderr.write(s) };
      if (o.rootDirectory !== undefined) {
        const noXattrs = o.extended.some((list) => list.split(",").includes("no_copy_xattrs"));
        await mkfsFromDir(image, o.rootDirectory, {
          ...opts,
          ...(now !== undefined ? { now } : {}),
          output,
          xattrs: !noXattrs,
          ...(process.stderr.isTTY && o.quiet !== true ? { progress: process.stderr } : {}),
        });
        return;
      }
      await mkfs(image, { ...opts, ...(now !== undefined ? { now } : {}), output });
    });
}
