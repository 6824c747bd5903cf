/**
 * `ext4ts mkfs`: make an ext2/ext3/ext4 filesystem on an image file (or block device)
 * the way mke2fs 1.47.0 does, byte for byte in layout: options and defaults
 * (options.ts, profile.ts), geometry (geometry.ts), placement (layout.ts), then the
 * writes, metadata only. A new or truncated image reads as zeros, so inode tables,
 * the journal's body and empty space are never written and the image stays sparse;
 * on a device that may hold old data, what must read as zeros is zeroed as mke2fs
 * does (lazy inode tables: only the part in use).
 *
 * Counterpart: main() in e2fsprogs misc/mke2fs.c.
 */

import { randomBytes, randomUUID } from "node:crypto";
import { stat, truncate } from "node:fs/promises";
import type { BlockDevice } from "../../src/device/block_device.js";
import { FileDevice } from "../../src/device/file.js";
import { bitmapChecksum, fsChecksumSeed, inodeChecksumSeed } from "../../src/format/checksum.js";
import {
  EXT4_FEATURE_COMPAT_HAS_JOURNAL, EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_INCOMPAT_FILETYPE,
  EXT4_FEATURE_INCOMPAT_FLEX_BG, EXT4_FEATURE_RO_COMPAT_DIR_NLINK, EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE,
  EXT4_FEATURE_RO_COMPAT_GDT_CSUM, EXT4_FEATURE_RO_COMPAT_HUGE_FILE, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM,
  type FeatureWords,
} from "../../src/format/features.js";
import { EXT4_BG_BLOCK_UNINIT, EXT4_BG_INODE_UNINIT } from "../../src/format/group_desc.js";
import {
  EXT4_BAD_INO, EXT4_EXTENTS_FL, EXT4_JOURNAL_INO, EXT4_RESIZE_INO, EXT4_ROOT_INO, S_IFDIR,
} from "../../src/format/inode.js";
import { EXT4_SUPER_MAGIC, SUPERBLOCK_OFFSET } from "../../src/format/superblock.js";
import { uuidToString } from "../../src/format/struct.js";
import { encodeFileMap } from "./file_map.js";
import {
  bgHasSuper, groupBlockCount, groupFirstBlock, groupOfIno, initializeGeometry, superAndBgdBlocks, type Geometry,
} from "./geometry.js";
import { inodeWriter } from "./inode_table.js";
import { figureJournalSize, journalInode, journalSuperblockBlock } from "./journal.js";
import { planLayout, type Plan } from "./layout.js";
import { lostFoundDirBlocks, rootDirBlock } from "./lost_found.js";
import { fail, parseUuid, resolveParams, truncateUtf8, type MkfsOptions, type MkfsParams } from "./options.js";
import { backupGroups, buildResizeInode } from "./resize_inode.js";
import { buildGroupDescTable, buildSuperblock, encodeSuperblockCopy } from "./super.js";
import { BlockWriter } from "./writer.js";
import { planQuotaFiles, quotaDataBlocks, quotaInode, setQuotaInums, type QuotaFileSpec } from "./quota.js";

export type { MkfsOptions } from "./options.js";

/** Where progress goes: mke2fs prints on stdout, warnings on stderr. */
export interface MkfsOutput {
  out(text: string): void;
  err(text: string): void;
}

export interface MkfsResult {
  geometry: Geometry;
  plan: Plan;
  features: FeatureWords;
  uuid: string;
  journalBlocks: number;
  /** False with noAction (-n). */
  wrote: boolean;
  /** Bytes written to the device. */
  bytesWritten: number;
}

const has = (w: number, m: number): boolean => (w & m) !== 0;

/** RFC 4122 version 1 UUID from the clock and a random node (uuid_generate_time). */
function timeUuid(): Uint8Array {
  const t = BigInt(Date.now()) * 10000n + 0x01b21dd213814000n;
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, Number(t & 0xffffffffn));
  dv.setUint16(4, Number((t >> 32n) & 0xffffn));
  dv.setUint16(6, Number((t >> 48n) & 0x0fffn) | 0x1000);
  const r = randomBytes(8);
  dv.setUint16(8, ((r[0]! << 8) | r[1]!) & 0x3fff | 0x8000);
  out.set(r.subarray(2, 8), 10);
  out[10]! |= 0x01; // multicast bit: not a real MAC address
  return out;
}

function makeUuid(spec: string | undefined, image: string): Uint8Array {
  if (spec === undefined || spec.toLowerCase() === "random") return parseUuid(randomUUID())!; // randomUUID is canonical
  const s = spec.toLowerCase();
  if (s === "null" || s === "clear") return new Uint8Array(16);
  if (s === "time") return timeUuid();
  const u = parseUuid(spec);
  if (u === undefined) throw fail(`${image}: could not parse UUID: ${spec}`);
  return u;
}

/** What mkfs formats, as found before it is opened. */
interface Target {
  /** For messages: the path, or the device's description. */
  name: string;
  exists: boolean;
  /** A block device (fixed size) rather than a regular file. */
  isDevice: boolean;
  bytes: number | undefined;
}

async function probeTarget(image: string): Promise<Target> {
  try {
    const st = await stat(image);
    if (st.isBlockDevice()) {
      const dev = await FileDevice.open(image, { readOnly: true });
      const bytes = dev.size;
      await dev.close();
      return { name: image, exists: true, isDevice: true, bytes };
    }
    if (!st.isFile()) throw fail(`${image}: not a regular file or block device`);
    return { name: image, exists: true, isDevice: false, bytes: st.size };
  } catch (e) {
    if (typeof e === "object" && e !== null && "code" in e && e.code === "ENOENT") return { name: image, exists: false, isDevice: false, bytes: undefined };
    throw e;
  }
}

/** Does the device already hold an ext2/3/4 superblock? */
async function holdsExtFs(dev: BlockDevice): Promise<boolean> {
  if (dev.size < SUPERBLOCK_OFFSET + 1024) return false;
  const b = await dev.read(SUPERBLOCK_OFFSET + 0x38, 2);
  return (b[0]! | (b[1]! << 8)) === EXT4_SUPER_MAGIC;
}

/** holdsExtFs for an image file, opened read-only for the look. */
async function fileHoldsExtFs(image: string): Promise<boolean> {
  const dev = await FileDevice.open(image, { readOnly: true });
  try {
    return await holdsExtFs(dev);
  } finally {
    await dev.close();
  }
}

/** Free blocks right after ext2fs_initialize (before tables are placed under flex_bg). */
function initialFreeBlocks(geo: Geometry): number {
  let free = 0;
  for (let g = 0; g < geo.groupCount; g++) {
    let used = superAndBgdBlocks(geo, g);
    if (!geo.flexBg) used += 2 + geo.inodeTableBlocks;
    free += groupBlockCount(geo, g) - used;
  }
  return free;
}

/** "Superblock backups stored on blocks:" with mke2fs' line wrapping. @kernel show_stats */
function backupList(geo: Geometry): string {
  let s = "";
  let colLeft = 0;
  let first = true;
  for (let g = 1; g < geo.groupCount; g++) {
    if (!bgHasSuper(geo, g)) continue;
    const blk = groupFirstBlock(geo, g);
    if (!first) s += ", ";
    first = false;
    const need = String(blk).length - 1 + 3; // ext2fs_log10_u64(blk) + 3
    if (need > colLeft) {
      s += "\n\t";
      colLeft = 72;
    }
    colLeft -= need;
    s += String(blk);
  }
  return s;
}

function statsText(geo: Geometry, uuid: Uint8Array): string {
  let s = `Creating filesystem with ${geo.blocksCount} ${geo.blockSize >> 10}k blocks and ${geo.inodesCount} inodes\n`;
  if (geo.groupCount === 1) return `${s}\n`;
  if (!uuid.every((b) => b === 0)) s += `Filesystem UUID: ${uuidToString(uuid)}\n`;
  return `${s}Superblock backups stored on blocks: ${backupList(geo)}\n\n`;
}

/** The parameters, geometry and layout mkfs would use, without touching the image (like mke2fs -n). */
export function planMkfs(params: MkfsParams, deviceName: string, o: { discardZeroes?: boolean; quotaFiles?: readonly QuotaFileSpec[] } = {}): { geo: Geometry; plan: Plan; features: FeatureWords; journalBlocks: number; warnings: string[] } {
  const geo0 = initializeGeometry({
    blockSize: params.blockSize, logBlockSize: params.logBlockSize, blocksCount: params.blocksCount,
    rBlocksCount: params.rBlocksCount, features: params.features, inodeSize: params.inodeSize,
    inodesCount: params.inodesCount, blocksPerGroup: params.blocksPerGroup, descSize: params.descSize,
    reservedGdtBlocks: params.reservedGdtBlocks, logGroupsPerFlex: params.logGroupsPerFlex, deviceName,
  });
  const features = { ...geo0.features };
  const warnings: string[] = [];
  let journalBlocks = 0;
  if (has(features.s_feature_compat, EXT4_FEATURE_COMPAT_HAS_JOURNAL)) {
    const j = figureJournalSize(params.journalSize > 0 ? params.journalSize : 0, geo0.blocksCount, geo0.blockSize, initialFreeBlocks(geo0));
    if (j.warning !== undefined) warnings.push(j.warning);
    journalBlocks = j.blocks;
    if (journalBlocks === 0) features.s_feature_compat &= ~EXT4_FEATURE_COMPAT_HAS_JOURNAL;
  }
  const geo: Geometry = { ...geo0, features };
  // Storage known to read as zeros (assumed, or discarded as mke2fs discards an existing
  // file) makes the inode tables lazily initialized and already zeroed.
  const prezeroed = params.ext.assumeStoragePrezeroed || o.discardZeroes === true;
  const plan = planLayout({
    geo,
    journalBlocks,
    journalGoal: params.journalLocation,
    stride: params.ext.stride,
    lazyItableInit: prezeroed || params.ext.lazyItableInit !== false,
    itableZeroed: prezeroed,
    quotaFiles: o.quotaFiles ?? [],
  });
  return { geo, plan, features, journalBlocks, warnings };
}

/** Options of mkfsDevice. */
export interface MkfsDeviceOptions extends MkfsOptions {
  output?: MkfsOutput;
  /**
   * The device reads as zeros everywhere (a fresh MemoryDevice): nothing is zeroed and
   * all-zero blocks are not written. Default false: old data is zapped as mke2fs zaps it
   * on a block device.
   */
  knownZero?: boolean;
}

/** Everything decided before the first write. */
type Prepared = Omit<WriteContext, "knownZero"> & {
  output: MkfsOutput;
  /** Opening the target discards its old contents (an existing image file). */
  discard: boolean;
};

/**
 * From options to everything decided before the first write, as mke2fs' PRS and the first
 * half of main: parameters (warnings and notices printed), the refusal to overwrite a
 * filesystem without -F, the size check on a device, quota files, layout, UUID, hash seed
 * and time. `io.holdsExtFs` looks at the target (an existing one only); `io.discards` says
 * whether opening it will discard old contents, which makes the inode tables count as zeroed.
 */
async function prepare(
  target: Target,
  options: MkfsOptions & { output?: MkfsOutput },
  io: { holdsExtFs(): Promise<boolean>; discards(params: MkfsParams): boolean },
): Promise<Prepared> {
  const output = options.output ?? { out: () => undefined, err: () => undefined };
  const quiet = options.quiet === true;
  const say = (s: string): void => {
    if (!quiet) output.out(s);
  };
  const name = target.name;
  const params = resolveParams(options, { bytes: target.bytes, isDevice: target.isDevice, name }, {
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
  });
  for (const w of params.warnings) output.err(`${w}\n`);
  for (const n of params.notices) output.out(`${n}\n`);
  if (target.exists && options.noAction !== true && (await io.holdsExtFs()) && options.force !== true) {
    throw fail(`${name} contains an ext2/ext3/ext4 file system; use -F to overwrite it`);
  }
  const discard = io.discards(params);
  const quotaFiles = await planQuotaFiles(params);
  const { geo, plan, features, journalBlocks, warnings } = planMkfs(params, name, { discardZeroes: discard, quotaFiles });
  for (const w of warnings) output.err(`\n${w}\n`);
  if (target.isDevice && options.noAction !== true && geo.blocksCount * geo.blockSize > (target.bytes ?? 0)) {
    throw fail(`${name}: Filesystem larger than apparent device size.`);
  }
  const uuid = makeUuid(params.uuid, name);
  const hashSeed = params.ext.hashSeed ?? parseUuid(randomUUID())!; // canonical form
  const now = options.now ?? Math.floor(Date.now() / 1000);
  return { geo, plan, params, features, uuid, hashSeed, now, journalBlocks, say, quotaFiles, output, discard };
}

function resultOf(p: Prepared, wrote: boolean, bytesWritten: number): MkfsResult {
  return { geometry: p.geo, plan: p.plan, features: p.features, uuid: uuidToString(p.uuid), journalBlocks: p.journalBlocks, wrote, bytesWritten };
}

/** -n: print what would be made, write nothing. */
function dryRun(p: Prepared): MkfsResult {
  p.say(statsText(p.geo, p.uuid));
  return resultOf(p, false, 0);
}

/** Write the prepared filesystem onto the open `dev` and flush it; the caller closes it. */
async function writeTo(dev: BlockDevice, p: Prepared, knownZero: boolean): Promise<MkfsResult> {
  p.say(statsText(p.geo, p.uuid));
  const w = new BlockWriter(dev, p.geo.blockSize, knownZero);
  p.say("Allocating group tables: done                            \n");
  const bytes = await writeFilesystem(w, { ...p, knownZero });
  await dev.flush();
  p.say("Writing superblocks and filesystem accounting information: done\n\n");
  return resultOf(p, true, bytes);
}

/**
 * Make a filesystem on `image`. Throws FsError (EINVAL with mke2fs' message for bad
 * options or sizes; the host's code for I/O failures).
 * @kernel main (e2fsprogs misc/mke2fs.c)
 */
export async function mkfs(image: string, options: MkfsOptions & { output?: MkfsOutput } = {}): Promise<MkfsResult> {
  const target = await probeTarget(image);
  // An existing regular file is discarded as mke2fs discards it (punching out the
  // filesystem's range): truncated to nothing and regrown sparse, unless that would cut
  // off data past a smaller filesystem asked for with SIZE.
  const p = await prepare(target, options, {
    holdsExtFs: () => fileHoldsExtFs(image),
    discards: (params) => target.exists && !target.isDevice && params.ext.discard && options.noAction !== true &&
      (options.size === undefined || (target.bytes ?? 0) <= params.blocksCount * params.blockSize),
  });
  if (!target.exists && options.noAction !== true) p.say(`Creating regular file ${image}\n`);
  if (options.noAction === true) return dryRun(p);

  // Open, discarding old contents of a regular file the way mke2fs' discard does.
  if (p.discard) {
    await truncate(image, 0);
    p.say("Discarding device blocks: done                            \n");
  }
  const size = Math.max(p.geo.blocksCount * p.geo.blockSize, target.isDevice ? 0 : target.bytes ?? 0);
  const dev = await FileDevice.open(image, { create: !target.exists, ...(target.isDevice ? {} : { size }), syncIO: true });
  try {
    return await writeTo(dev, p, !target.exists || p.discard);
  } finally {
    await dev.close();
  }
}

/**
 * Make a filesystem on an open device of fixed size (a MemoryDevice, a FileDevice the
 * caller opened), as mkfs makes it on a block device: `size` may ask for less than
 * dev.size, never more. Flushes the device and leaves it open. Deterministic when the
 * options give `uuid`, `extended: ["hash_seed=..."]` and `now`. Throws as mkfs does.
 * @kernel main (e2fsprogs misc/mke2fs.c)
 */
export async function mkfsDevice(dev: BlockDevice, options: MkfsDeviceOptions = {}): Promise<MkfsResult> {
  const p = await prepare({ name: dev.description, exists: true, isDevice: true, bytes: dev.size }, options, {
    holdsExtFs: () => holdsExtFs(dev),
    discards: () => false,
  });
  if (options.noAction === true) return dryRun(p);
  return writeTo(dev, p, options.knownZero === true);
}

interface WriteContext {
  geo: Geometry;
  plan: Plan;
  params: MkfsParams;
  features: FeatureWords;
  uuid: Uint8Array;
  hashSeed: Uint8Array;
  now: number;
  journalBlocks: number;
  knownZero: boolean;
  say: (s: string) => void;
  quotaFiles: readonly QuotaFileSpec[];
}

/** Everything but the opening: returns the bytes written. */
async function writeFilesystem(w: BlockWriter, c: WriteContext): Promise<number> {
  const { geo, plan, params, features, uuid, now } = c;
  const bs = geo.blockSize;
  const metadataCsum = has(features.s_feature_ro_compat, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM);
  const extents = has(features.s_feature_incompat, EXT4_FEATURE_INCOMPAT_EXTENTS);
  const fsSeed = fsChecksumSeed(uuid, false, 0);
  const csumSeed = metadataCsum ? fsSeed : undefined;
  const seedOf = (ino: number): number | undefined => (csumSeed === undefined ? undefined : inodeChecksumSeed(csumSeed, ino, 0));

  // Old data: zap the boot sector and superblock area, the end of the device, and the
  // inode tables (only the part in use when lazy), as mke2fs does.
  if (!c.knownZero) {
    await w.writeAt(0, new Uint8Array(4096));
    const rsv = Math.max(1, 65536 / bs);
    let start = geo.blocksCount - (geo.blocksCount % rsv);
    if (start > rsv) start -= rsv;
    if (start > 0) await w.zero(start, geo.blocksCount - start);
    const lazy = params.ext.assumeStoragePrezeroed || params.ext.lazyItableInit !== false;
    for (let g = 0; g < geo.groupCount; g++) {
      const n = lazy ? Math.ceil(((geo.inodesPerGroup - plan.itableUnused[g]!) * geo.inodeSize) / bs) : geo.inodeTableBlocks;
      await w.zero(plan.inodeTable[g]!, n);
    }
  }
  c.say("Writing inode tables: done                            \n");

  // Directories.
  const dirOpts = (ino: number): { blockSize: number; filetype: boolean; inodeSeed: number | undefined } => ({
    blockSize: bs, filetype: has(features.s_feature_incompat, EXT4_FEATURE_INCOMPAT_FILETYPE), inodeSeed: seedOf(ino),
  });
  await w.write(plan.root.first, rootDirBlock(EXT4_ROOT_INO, plan.lostFoundIno, dirOpts(EXT4_ROOT_INO)));
  const lpfBlocks = lostFoundDirBlocks(plan.lostFoundIno, EXT4_ROOT_INO, plan.lostFound.dataBlocks, dirOpts(plan.lostFoundIno));
  const lpfList = plan.lostFound.map.kind === "extents" ? plan.lostFound.map.runs.flatMap((r) => Array.from({ length: r.len }, (_, i) => r.pblk + i)) : plan.lostFound.map.iBlock.slice(0, plan.lostFound.dataBlocks);
  for (let i = 0; i < lpfBlocks.length; i++) await w.write(lpfList[i]!, lpfBlocks[i]!);

  // Inodes.
  const iw = inodeWriter({ geo, inodeTable: plan.inodeTable, now, csumSeed, hugeFile: has(features.s_feature_ro_compat, EXT4_FEATURE_RO_COMPAT_HUGE_FILE) });
  for (let ino = 1; ino < geo.firstIno; ino++) iw.putZero(ino);
  iw.putTimesOnly(EXT4_BAD_INO);
  const dirFlags = extents ? EXT4_EXTENTS_FL : 0;
  const rootMap = encodeFileMap(plan.root.map, bs, seedOf(EXT4_ROOT_INO));
  iw.putNew(EXT4_ROOT_INO, {
    mode: S_IFDIR | (params.ext.rootPerms ?? 0o755), uid: params.ext.rootUid, gid: params.ext.rootGid, size: bs,
    links: 3, blocks: 1, flags: dirFlags, iBlock: rootMap.iBlock,
  });
  const lpfMap = encodeFileMap(plan.lostFound.map, bs, seedOf(plan.lostFoundIno));
  iw.putNew(plan.lostFoundIno, {
    mode: S_IFDIR | 0o700, uid: 0, gid: 0, size: plan.lostFound.dataBlocks * bs, links: 2,
    blocks: plan.lostFound.totalBlocks, flags: dirFlags, iBlock: lpfMap.iBlock,
  });
  if (plan.resizeDind !== undefined) {
    const r = buildResizeInode(geo, plan.resizeDind);
    iw.putNew(EXT4_RESIZE_INO, r.inode);
    for (const [blk, data] of [...r.blocks].sort((a, b) => a[0] - b[0])) await w.write(blk, data);
  }
  let jnlBlocks: number[] | undefined;
  if (plan.journal !== undefined) {
    const j = plan.journal;
    const m = encodeFileMap(j.map, bs, seedOf(EXT4_JOURNAL_INO));
    const inode = journalInode(j.dataBlocks, j.totalBlocks, bs, extents, m);
    iw.putNew(EXT4_JOURNAL_INO, inode);
    c.say(`Creating journal (${c.journalBlocks} blocks): `);
    for (const [blk, data] of [...m.metaBlocks].sort((a, b) => a[0] - b[0])) await w.write(blk, data);
    if (!c.knownZero && params.ext.lazyJournalInit !== true && !params.ext.assumeStoragePrezeroed) await zeroFileData(w, j.map);
    await w.write(j.first, journalSuperblockBlock(j.dataBlocks, bs, uuid));
    c.say("done\n");
    const dv = new DataView(m.iBlock.buffer, m.iBlock.byteOffset, m.iBlock.byteLength);
    jnlBlocks = [...Array.from({ length: 15 }, (_, i) => dv.getUint32(i * 4, true)), Math.floor(inode.size / 2 ** 32), inode.size % 2 ** 32];
  }
  // create_quota_inodes
  for (const [i, q] of plan.quotaFiles.entries()) {
    const spec = c.quotaFiles[i]!; // planLayout places them in the order given
    const m = encodeFileMap(q.layout.map, bs, seedOf(q.ino));
    iw.putNew(q.ino, quotaInode(spec, q.layout, m.iBlock, extents));
    const lblks = q.layout.map.kind === "extents" ? q.layout.map.runs.flatMap((r) => Array.from({ length: r.len }, (_, k) => r.pblk + k)) : q.layout.map.iBlock;
    for (const [l, data] of quotaDataBlocks(spec, bs).entries()) await w.write(lblks[l]!, data);
  }
  for (const [blk, data] of [...iw.blocks].sort((a, b) => a[0] - b[0])) await w.write(blk, data);

  // Bitmaps, then descriptors (they hold the bitmap checksums), then superblocks.
  const csums = { block: new Uint32Array(geo.groupCount), inode: new Uint32Array(geo.groupCount) };
  const skipUninit = geo.groupDescCsum;
  for (let g = 0; g < geo.groupCount; g++) {
    if (skipUninit && (plan.flags[g]! & EXT4_BG_BLOCK_UNINIT) !== 0) continue;
    const bm = plan.map.diskBitmap(g);
    if (metadataCsum) csums.block[g] = bitmapChecksum(bm, geo.blocksPerGroup / 8, fsSeed);
    await w.write(plan.blockBitmap[g]!, bm);
  }
  const usedByGroup = new Map<number, number[]>();
  for (const ino of plan.usedInodes) {
    const g = groupOfIno(geo, ino);
    usedByGroup.set(g, [...(usedByGroup.get(g) ?? []), ino]);
  }
  for (let g = 0; g < geo.groupCount; g++) {
    if (skipUninit && (plan.flags[g]! & EXT4_BG_INODE_UNINIT) !== 0) continue;
    const bm = new Uint8Array(bs).fill(0xff);
    bm.fill(0, 0, geo.inodesPerGroup >> 3);
    for (const ino of usedByGroup.get(g) ?? []) {
      const i = (ino - 1) % geo.inodesPerGroup;
      bm[i >> 3]! |= 1 << (i & 7);
    }
    if (metadataCsum) csums.inode[g] = bitmapChecksum(bm, geo.inodesPerGroup / 8, fsSeed);
    await w.write(plan.inodeBitmap[g]!, bm);
  }
  await w.flush();

  const kbInit = has(features.s_feature_incompat, EXT4_FEATURE_INCOMPAT_FLEX_BG) ||
    has(features.s_feature_ro_compat, EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_GDT_CSUM |
      EXT4_FEATURE_RO_COMPAT_DIR_NLINK | EXT4_FEATURE_RO_COMPAT_METADATA_CSUM | EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE);
  const kbytesWritten = kbInit ? 1n + BigInt(Math.floor(w.bytesWritten / 1024)) : 0n;
  const enc = new TextEncoder();
  const sb = buildSuperblock({
    geo, plan, features, uuid, hashSeed: c.hashSeed, hashAlg: params.hashAlg,
    label: enc.encode(params.label === undefined ? "" : truncateUtf8(params.label, 16)),
    lastMounted: enc.encode(params.lastMounted ?? "").subarray(0, 64), now, errors: params.errors,
    defaultMountOpts: params.defaultMountOpts, periodicFsck: params.periodicFsck, raidStride: params.ext.stride,
    raidStripeWidth: params.ext.stripeWidth, testFs: params.ext.testFs, jnlBlocks, kbytesWritten,
  });
  setQuotaInums(sb, plan.quotaFiles.map((q, i) => ({ type: c.quotaFiles[i]!.type, ino: q.ino })));
  const gdt = buildGroupDescTable(geo, plan, features, uuid, csums);
  const sbBlk = geo.firstDataBlock;
  await w.write(sbBlk + 1, gdt);
  for (const g of backupGroups(geo)) {
    const first = groupFirstBlock(geo, g);
    await w.writeAt(first * bs, encodeSuperblockCopy(sb, g));
    await w.write(first + 1, gdt);
  }
  await w.writeAt(SUPERBLOCK_OFFSET, encodeSuperblockCopy(sb, 0));
  await w.flush();
  return w.bytesWritten;
}

/** Zero a file's data blocks (the journal on a device that may hold old data). */
async function zeroFileData(w: BlockWriter, map: Plan["root"]["map"]): Promise<void> {
  if (map.kind === "extents") {
    for (const r of map.runs) await w.zero(r.pblk, r.len);
    return;
  }
  const all: number[] = map.iBlock.slice(0, 12).filter((b) => b !== 0);
  const metas = new Set(map.indirect.keys());
  for (const t of map.indirect.values()) for (const b of t) if (b !== 0 && !metas.has(b)) all.push(b);
  for (const b of all) await w.zero(b, 1);
}
