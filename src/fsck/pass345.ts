/**
 * Passes 3, 4 and 5 (e2fsck pass3.c, pass4.c, pass5.c):
 *
 * - 3: every directory reaches the root through the parents pass 2 found, and its '..'
 *   names that parent.
 * - 4: every inode in use is referenced, as often as i_links_count says.
 * - 5: the on-disk bitmaps agree with what passes 1-4 found in use, their padding and
 *   checksums are right, and the free counts of each group and of the superblock match
 *   the bitmaps (with repairs declined, e2fsck counts from the bitmaps on disk).
 */

import {
  blockBitmapCsum, freeBlocksCount as gdFreeBlocks, freeInodesCount as gdFreeInodes, inodeBitmapCsum, setFreeBlocksCount as setGdFreeBlocks,
  setFreeInodesCount as setGdFreeInodes, setUsedDirsCount, usedDirsCount, EXT4_BG_BLOCK_UNINIT, EXT4_BG_INODE_UNINIT,
} from "../format/group_desc.js";
import { EXT4_BG_BLOCK_BITMAP_CSUM_HI_END, EXT4_BG_INODE_BITMAP_CSUM_HI_END } from "../format/group_desc.js";
import { bitmapChecksum } from "../format/checksum.js";
import { EXT4_BAD_INO, EXT4_EA_INODE_FL, EXT4_GOOD_OLD_INODE_SIZE, EXT4_INDEX_FL, EXT4_INLINE_DATA_FL, EXT4_ROOT_INO, S_IFDIR, S_IFMT, S_IFREG, type RawInode } from "../format/inode.js";
import { EXT4_XATTR_MAGIC } from "../format/xattr.js";
import { freeBlocksCount as sbFreeBlocks, setFreeBlocksCount as setSbFreeBlocks } from "../format/superblock.js";
import { DIR_CASEFOLD, DIR_ENCRYPTED, type CheckContext } from "./context.js";
import { rehashDir, type RehashEntry } from "./rehash.js";
import { ChunkedBitmap, POPCOUNT } from "./maps.js";
import { clearInode, inodeAllocStats, setBlockBitmapCsum, setInodeBitmapCsum } from "./repair.js";
import { adjustInodeCount, createRoot, fixDotdot, getLostAndFound, reconnectFile, releaseRepairBlocks } from "./lost_found.js";
import { EXT4_FEATURE_RO_COMPAT_DIR_NLINK } from "../format/superblock.js";
import { listDir, readInode, safeName, type PathNamer } from "./paths.js";
import { processBadInode } from "./pass2.js";
import { FsckRestart } from "./report.js";
import { dirhash } from "../format/dirhash.js";
import { EXT4_FT_DIR, dirRecLen } from "../format/dirent.js";
import {
  PR_2_DUPLICATE_DIRENT, PR_2_NON_UNIQUE_FILE_NO_RENAME, PR_2_NON_UNIQUE_FILE, PR_3_BAD_DOT_DOT, PR_3_FIX_PARENT_NOFIND, PR_3A_OPTIMIZE_DIR_ERR, PR_3_NO_ROOT_INODE, PR_3_NO_ROOT_INODE_ABORT, PR_3_ROOT_NOT_DIR_ABORT, PR_3_UNCONNECTED_DIR,
  PR_4_BAD_REF_COUNT, PR_4_DIR_NLINK_FEATURE, PR_4_DIR_OVERFLOW_REF_COUNT, PR_4_INCONSISTENT_COUNT, PR_4_UNATTACHED_INODE, PR_4_ZERO_LEN_INODE,
  PR_5_BLOCK_BITMAP_CSUM_INVALID, PR_5_BLOCK_BITMAP_HEADER, PR_5_BLOCK_UNINIT, PR_5_BLOCK_BMAP_PADDING, PR_5_FREE_BLOCK_COUNT,
  PR_5_FREE_BLOCK_COUNT_GROUP, PR_5_FREE_DIR_COUNT_GROUP, PR_5_FREE_INODE_COUNT, PR_5_FREE_INODE_COUNT_GROUP,
  PR_5_INODE_BITMAP_CSUM_INVALID, PR_5_INODE_BITMAP_HEADER, PR_5_INODE_BMAP_PADDING,
} from "./problem.js";

const EXT2_LINK_MAX = 65000;

// ---------------------------------------------------------------------------------------
// Pass 3

export async function pass3(c: CheckContext, names: PathNamer): Promise<void> {
  const r = c.r;
  if (!c.inodeUsed.test(EXT4_ROOT_INO)) {
    if (!r.ask(PR_3_NO_ROOT_INODE) || !(await createRoot(c))) r.fix(PR_3_NO_ROOT_INODE_ABORT);
  }
  if (!c.isDir(EXT4_ROOT_INO)) r.fix(PR_3_ROOT_NOT_DIR_ABORT);
  const done = new ChunkedBitmap(c.v.inodesCount + 1);
  done.set(EXT4_ROOT_INO);
  const dirs = c.dirs;
  // e2fsck_pass3 hands one problem context to every check_directory: what one leaves in
  // pctx.dir is what the next "(was in ...)" names when it finds nothing better.
  const pctx = { dir: 0 };
  for (let i = 0; i < dirs.count; i++) {
    if (c.restart) throw new FsckRestart();
    const dir = dirs.ino.get(i);
    if (!c.isDir(dir)) continue;
    await checkDirectory(c, names, dir, done, pctx);
  }
  // A repairing run makes sure /lost+found exists (e2fsck creates it even when nothing needs it).
  if (c.r.repairing) await getLostAndFound(c, true);
  if (c.restart) throw new FsckRestart();
  releaseRepairBlocks(c);
}

async function checkDirectory(c: CheckContext, names: PathNamer, dir: number, done: ChunkedBitmap, pctx: { dir: number }): Promise<void> {
  const dirs = c.dirs;
  let ino = dir;
  let loopPass = false;
  let parentCount = 0;
  let loopDetect: ChunkedBitmap | null = null;
  for (;;) {
    if (done.set(ino)) break;
    const idx = dirs.find(ino);
    if (idx < 0) return;
    const parent = dirs.parent.get(idx);
    if (parent === 0 || (loopPass && loopDetect !== null && loopDetect.test(parent))) {
      // The parent, else what the directory's own '..' names (ext2fs_lookup, which skips an
      // entry cleared to inode 0: then pctx.dir is left as it was).
      if (parent !== 0) pctx.dir = parent;
      else {
        const dotdot = (await listDir(c, ino))?.find((e) => isDotDot(e.name));
        if (dotdot !== undefined) pctx.dir = dotdot.ino;
      }
      const was = pctx.dir;
      if (c.r.ask(PR_3_UNCONNECTED_DIR, { ino, dir: was, path: await names.pathname(was, 0) })) {
        if (!(await reconnectFile(c, ino))) c.r.unmarkValid();
        else if (!(await fixDotdot(c, ino, c.lostAndFound))) fixParentFailed(c, ino);
      }
      break;
    }
    ino = parent;
    if (loopPass) loopDetect!.set(ino);
    else if (parentCount++ > 2048) {
      loopPass = true;
      loopDetect = new ChunkedBitmap(c.v.inodesCount + 1);
      ino = dir;
    }
  }
  const idx = dirs.find(dir);
  if (idx < 0) return;
  const dotdot = dirs.dotdot.get(idx);
  const parent = dirs.parent.get(idx);
  pctx.dir = parent;
  if (dotdot !== parent) {
    const yes = c.r.ask(PR_3_BAD_DOT_DOT, {
      ino: dir, ino2: dotdot, dir: parent,
      path: await names.pathname(parent, dir),
      path2: await names.pathname(dotdot, 0),
      str: await names.pathname(parent, 0),
    });
    if (yes && !(await fixDotdot(c, dir, parent))) fixParentFailed(c, dir);
  }
}

/** '..' could not be rewritten (not found, or in a block ext4ts cannot reseal). @e2fsprogs PR_3_FIX_PARENT_NOFIND */
function fixParentFailed(c: CheckContext, ino: number): void {
  c.r.fix(PR_3_FIX_PARENT_NOFIND, { ino });
  c.r.unmarkValid();
}

// ---------------------------------------------------------------------------------------
// Pass 3A: rebuilding directories (e2fsck rehash.c), here only its duplicate search

/** e2fsck mutate_name: "name~0", then "name~1", ... to make a duplicate name unique. */
export function mutateName(name: Uint8Array): Uint8Array {
  const str = Array.from(name);
  let l = str.length;
  const isDigit = (b: number | undefined): boolean => b !== undefined && b >= 0x30 && b <= 0x39;
  let i = l - 1;
  for (; i > 0; i--) if (!isDigit(str[i])) break;
  if (i === l - 1 || str[i] !== 0x7e) {
    if (((l - 1) & 3) < 2) l += 2;
    else l = (l + 3) & ~3;
    while (str.length < l) str.push(0);
    str.length = l;
    str[l - 2] = 0x7e;
    str[l - 1] = 0x30;
    return Uint8Array.from(str);
  }
  for (i = l - 1; i >= 0; i--) {
    if (isDigit(str[i])) {
      if (str[i] === 0x39) str[i] = 0x30;
      else {
        str[i] = str[i]! + 1;
        return Uint8Array.from(str);
      }
      continue;
    }
    if (i === 1) {
      if (str[0] === 0x7a) str[0] = 0x41;
      else if (str[0] === 0x5a) {
        str[0] = 0x7e;
        str[1] = 0x30;
      } else str[0] = str[0]! + 1;
    } else if (i > 0) {
      str[i] = 0x31;
      str[i - 1] = 0x7e;
    } else if (str[0] === 0x7e) str[0] = 0x61;
    else str[0] = str[0]! + 1;
    break;
  }
  return Uint8Array.from(str);
}

function compareNames(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

type HashEntry = RehashEntry;

/** e2fsck rehash.c hash_cmp: hash, minor hash, name, then the higher inode first. */
function hashCmp(a: HashEntry, b: HashEntry): number {
  return a.hash - b.hash || a.minor - b.minor || compareNames(a.name, b.name) || b.ino - a.ino;
}

const isDot = (n: Uint8Array): boolean => n.length === 1 && n[0] === 0x2e;
const isDotDot = (n: Uint8Array): boolean => n.length === 2 && n[0] === 0x2e && n[1] === 0x2e;

/**
 * e2fsck_rehash_directories: each directory scheduled (by pass 1 for its size, by pass 2 for
 * what it found) is read as e2fsck_rehash_dir reads it (entries by hash, or, compressing,
 * the first two left in place and the rest by name), each entry named like the one before
 * it is dropped or renamed, and, when repairing, the directory is rebuilt (see rehash.ts).
 * In inode order, as e2fsck's u32 list keeps them.
 */
export async function pass3a(c: CheckContext, names: PathNamer): Promise<void> {
  const v = c.v;
  const def = v.sb.s_def_hash_version;
  const version = def <= 2 && (v.sb.s_flags & 2) !== 0 ? def + 3 : def;
  for (const dir of [...c.dirsToRehash].sort((a, b) => a - b)) {
    if (!c.isDir(dir)) continue;
    const got = await readInode(c, dir);
    if (got === null) continue;
    // @e2fsprogs e2fsck_rehash_dir: an inline directory is left as it is.
    if (v.f.inlineData && (got.raw.i_flags & EXT4_INLINE_DATA_FL) !== 0) continue;
    // Every block: pass 1 has made i_size agree with them.
    const all = await listDir(c, dir, Number.MAX_SAFE_INTEGER, Math.max(4096, Math.ceil(iSizeOf(got.raw) / v.blockSize)));
    if (all === null) continue;
    let compress = !v.f.dirIndex || Math.floor(iSizeOf(got.raw) / v.blockSize) < 2;
    let parent = 0;
    const fill = (): HashEntry[] => {
      const out: HashEntry[] = [];
      for (const e of all) {
        if (e.ino === 0) continue;
        if (!compress && isDot(e.name)) continue;
        if (!compress && isDotDot(e.name)) {
          parent = e.ino;
          continue;
        }
        let hash = 0;
        let minor = 0;
        if (!compress) {
          try {
            const d = dirhash(e.name, version as Parameters<typeof dirhash>[1], v.sb.s_hash_seed);
            hash = d.hash;
            minor = d.minorHash;
          } catch {
            hash = 0;
          }
        }
        out.push({ ino: e.ino, name: e.name, ftype: e.ftype ?? 0, hash, minor });
      }
      return out;
    };
    let arr = fill();
    // Less than a block of entries: not worth an index, so e2fsck compresses instead.
    if (!compress && arr.reduce((s, e) => s + dirRecLen(e.name.length), 0) < v.blockSize - 24) {
      compress = true;
      arr = fill();
    }
    const resort = (): void => {
      if (compress && arr.length > 1) arr = [...arr.slice(0, 2), ...arr.slice(2).sort(hashCmp)];
      else arr.sort(hashCmp);
    };
    resort();
    const dirPath = await names.dirPath(dir);
    const dflags = c.dirs.flags.get(c.dirs.find(dir));
    const encrypted = (dflags & DIR_ENCRYPTED) !== 0;
    // @e2fsprogs duplicate_search_and_fix: a repair drops or renames an entry, then the
    // entries are sorted and searched again.
    for (let fixed = true; fixed; ) {
      fixed = false;
      for (let i = 1; i < arr.length; i++) {
        const ent = arr[i]!;
        const prev = arr[i - 1]!;
        if (ent.ino === 0 || compareNames(ent.name, prev.name) !== 0) continue;
        const entry = `Entry '${safeName(ent.name)}' in ${dirPath} (${dir})`;
        if ((ent.ino === prev.ino && c.r.ask(PR_2_DUPLICATE_DIRENT, { entry, ino: dir }))
          || (encrypted && c.r.ask(PR_2_NON_UNIQUE_FILE_NO_RENAME, { entry, ino: dir }))) {
          await adjustInodeCount(c, ent.ino, -1);
          ent.ino = 0;
          fixed = true;
          continue;
        }
        let nn = mutateName(ent.name);
        for (let j = 0; j < arr.length; j++) {
          if (j !== i && compareNames(nn, arr[j]!.name) === 0) {
            nn = mutateName(nn);
            j = -1;
          }
        }
        if (c.r.ask(PR_2_NON_UNIQUE_FILE, { entry, str: safeName(nn), ino: dir })) {
          ent.name = nn;
          if (!compress) {
            try {
              const d = dirhash(nn, version as Parameters<typeof dirhash>[1], v.sb.s_hash_seed);
              ent.hash = d.hash;
              ent.minor = d.minorHash;
            } catch {
              ent.hash = 0;
            }
          }
          fixed = true;
        }
      }
      if (fixed) resort();
    }
    if (!c.r.repairing) continue;
    // Compressed: by inode number after the first two. @e2fsprogs ino_cmp
    if (compress && arr.length > 1) arr = [...arr.slice(0, 2), ...arr.slice(2).sort((a, b) => a.ino - b.ino)];
    // Casefolded names hash on their folded form, which ext4ts does not compute: such a
    // directory is rebuilt compressed (linear), which the kernel and e2fsck accept.
    let done = false;
    if (!compress && (dflags & DIR_CASEFOLD) === 0) done = await rehashDir(c, dir, arr, false, parent);
    if (!done) done = await rehashDir(c, dir, compressOrder(arr, compress, dir, parent), true, 0);
    if (!done) {
      c.r.fix(PR_3A_OPTIMIZE_DIR_ERR, { path: dirPath, dir, str: "not rebuilt: ext4ts rewrites only fully mapped directories in place" });
      c.r.unmarkValid();
    }
  }
}

/** The entries in compressed order: '.' and '..' first, then by inode (for a fallback from an indexed rebuild). */
function compressOrder(arr: readonly HashEntry[], compress: boolean, dir: number, parent: number): HashEntry[] {
  if (compress) return [...arr];
  const dot = (ino: number, n: number): HashEntry => ({ ino, name: new Uint8Array(n).fill(0x2e), ftype: EXT4_FT_DIR, hash: 0, minor: 0 });
  return [dot(dir, 1), dot(parent, 2), ...[...arr].sort((a, b) => a.ino - b.ino)];
}

const iSizeOf = (raw: RawInode): number => raw.i_size_lo + raw.i_size_high * 2 ** 32;

// ---------------------------------------------------------------------------------------
// Pass 4

export async function pass4(c: CheckContext, names: PathNamer): Promise<void> {
  const v = c.v;
  const r = c.r;
  const prjQuota = v.f.quota ? v.sb.s_prj_quota_inum : 0;
  const done = (ino: number): boolean =>
    ino === prjQuota || ino === EXT4_BAD_INO || (ino > EXT4_ROOT_INO && ino < v.firstIno)
    || !c.inodeUsed.test(ino) || c.inodeImagic.test(ino) || c.inodeBb.test(ino);
  const check = async (ino: number): Promise<void> => {
    if (done(ino)) return;
    let linkCount = c.linkInfo.get(ino);
    let counted = c.linkCount.get(ino);
    if (counted === 0) {
      const got = await readInode(c, ino);
      if (got === null) return;
      const { raw, bytes } = got;
      // An EA inode is linked by the attributes that hold its value. @e2fsprogs check_ea_inode
      if ((raw.i_flags & EXT4_EA_INODE_FL) !== 0 && (c.eaInodeRefs.get(ino) ?? 0) > 0) return;
      // A bad inode the repairs cleared needs nothing more. @e2fsprogs e2fsck_process_bad_inode
      if (await processBadInode(c, names, 0, ino)) return;
      const type = raw.i_mode & S_IFMT;
      const extra = v.inodeSize > EXT4_GOOD_OLD_INODE_SIZE ? raw.i_extra_isize : 0;
      const magicAt = EXT4_GOOD_OLD_INODE_SIZE + extra;
      const eaMagic = v.inodeSize > EXT4_GOOD_OLD_INODE_SIZE && magicAt + 4 <= bytes.length
        ? (bytes[magicAt]! | (bytes[magicAt + 1]! << 8) | (bytes[magicAt + 2]! << 16) | (bytes[magicAt + 3]! << 24)) >>> 0 : 0;
      if (raw.i_blocks_lo === 0 && eaMagic !== EXT4_XATTR_MAGIC && (type === S_IFREG || type === S_IFDIR)
        && r.ask(PR_4_ZERO_LEN_INODE, { ino })) {
        // @e2fsprogs disconnect_inode: an empty unattached file is deleted, not reconnected.
        await clearInode(c, ino, raw);
        await inodeAllocStats(c, ino, -1, type === S_IFDIR);
        c.quota.remove(ino, raw, 0);
        return;
      }
      if (!r.ask(PR_4_UNATTACHED_INODE, { ino })) return;
      if (!(await reconnectFile(c, ino))) {
        r.unmarkValid();
        return;
      }
      linkCount = c.linkInfo.get(ino);
      counted = c.linkCount.get(ino);
    }
    const isDir = c.isDir(ino);
    if (isDir && counted > EXT2_LINK_MAX) {
      if (!v.f.dirNlink && r.ask(PR_4_DIR_NLINK_FEATURE)) {
        v.sb.s_feature_ro_compat = (v.sb.s_feature_ro_compat | EXT4_FEATURE_RO_COMPAT_DIR_NLINK) >>> 0;
        c.out.markSuperDirty();
      }
      counted = 1;
    }
    if (counted !== linkCount) {
      const got = await readInode(c, ino);
      const links = got?.raw.i_links_count ?? linkCount;
      if (linkCount !== links && !isDir && links <= EXT2_LINK_MAX) r.fix(PR_4_INCONSISTENT_COUNT, { ino, num: linkCount, links });
      // A directory whose count once overflowed (1 with dir_nlink) could be exact again: e2fsck
      // says so, as a problem of its own, only when it may write.
      const overflowed = isDir && counted > 1 && linkCount === 1 && ((got?.raw.i_flags ?? 0) & EXT4_INDEX_FL) !== 0;
      const fix = overflowed
        ? r.repairing && r.ask(PR_4_DIR_OVERFLOW_REF_COUNT, { ino, num: counted })
        : r.ask(PR_4_BAD_REF_COUNT, { ino, links, num: counted });
      if (fix) {
        await c.out.writeInode(ino, { i_links_count: counted });
        c.linkInfo.set(ino, counted);
      }
    }
  };
  // Only inodes in use can have something to say, and the usual file (one link, one name,
  // both counts in their one-bit form, not a directory) has nothing: eight inodes at a time.
  const list: number[] = [];
  const span = 1 << 16;
  const used = new Uint8Array(span / 8);
  const linkOne = new Uint8Array(span / 8);
  const countOne = new Uint8Array(span / 8);
  const dirs = new Uint8Array(span / 8);
  for (let start = 1; start <= v.inodesCount; start += span) {
    const n = Math.min(span, v.inodesCount + 1 - start);
    c.inodeUsed.extract(start, n, used);
    c.linkInfo.extractOnes(start, n, linkOne);
    c.linkCount.extractOnes(start, n, countOne);
    c.ftype.extractDirs(start, n, dirs);
    for (let j = 0; j < (n + 7) >>> 3; j++) {
      const odd = used[j]! & ~(linkOne[j]! & countOne[j]! & ~dirs[j]!);
      if (odd === 0) continue;
      for (let k = 0; k < 8; k++) {
        if ((odd & (1 << k)) === 0) continue;
        const ino = start + j * 8 + k;
        const counted = c.linkCount.get(ino);
        if (!done(ino) && (counted === 0 || counted !== c.linkInfo.get(ino) || c.isDir(ino))) list.push(ino);
      }
    }
  }
  for (const ino of list) await check(ino);
}

// ---------------------------------------------------------------------------------------
// Pass 5

/** Appends e2fsck's " -N", " +N", " -(a--b)" difference list, collapsing runs. */
class DiffList {
  text = "";
  count = 0;
  #kind = "";
  #first = -1;
  #last = -1;
  add(kind: "+" | "-", i: number, step: number): void {
    if (this.#first >= 0 && kind === this.#kind && this.#last + step === i) {
      this.#last = i;
      return;
    }
    this.flush();
    this.#kind = kind;
    this.#first = i;
    this.#last = i;
  }
  flush(): void {
    if (this.#first < 0) return;
    this.count++;
    if (this.text.length < 4000) {
      this.text += this.#first === this.#last ? ` ${this.#kind}${this.#first}` : ` ${this.#kind}(${this.#first}--${this.#last})`;
    } else if (!this.text.endsWith(" ...")) this.text += " ...";
    this.#first = -1;
  }
}

interface BitmapFindings {
  csumBad: number[];
  /** Bits past the volume's last block or inode are not set (e2fsck check_*_end). */
  paddingBad: boolean;
  /** Bytes past a group's bits in its bitmap block are not all ones (bitmap_tail_verify at read). */
  tailBad: boolean;
  /** The differences were repaired: write the bitmaps from the found maps. */
  rewrite: boolean;
}

export async function pass5(c: CheckContext): Promise<void> {
  const b = await checkBlockBitmaps(c);
  const i = await checkInodeBitmaps(c);
  // e2fsck's order: inode then block bitmap padding, inode then block bitmap checksums.
  // A bitmap rewritten from the found map already has its padding (ext2fs_set_bitmap_padding);
  // a bad tail seen when the bitmap was read is asked about all the same, as e2fsck does.
  if (((i.paddingBad && !i.rewrite) || i.tailBad) && c.r.ask(PR_5_INODE_BMAP_PADDING)) i.rewrite = true;
  if (((b.paddingBad && !b.rewrite) || b.tailBad) && c.r.ask(PR_5_BLOCK_BMAP_PADDING)) b.rewrite = true;
  // Both are in the bitmap-differences latch groups, which the differences above closed: the
  // first bad checksum asks the latch question again (its header prefixes the message) and
  // every one is answered by it. @e2fsprogs check_*_bitmap_checksum, PR_LATCH_*BITMAP
  // A bitmap rewritten above, or changed by an earlier repair, is not checked: it is written
  // whole at the end, checksums and all ("If bitmap is dirty from being fixed, checksum will
  // be corrected"), so its bad checksums are corrected without a word.
  const yes = c.r.repairing;
  if (i.rewrite || c.inodeBitmapDirty) i.rewrite ||= i.csumBad.length > 0;
  else {
    i.csumBad.forEach((g, k) => {
      if (c.r.ask(PR_5_INODE_BITMAP_CSUM_INVALID, { group: g, ...(k === 0 ? { str: "Inode bitmap differences: " } : {}) }, {}, yes)) i.rewrite = true;
    });
  }
  if (b.rewrite || c.blockBitmapDirty) b.rewrite ||= b.csumBad.length > 0;
  else {
    b.csumBad.forEach((g, k) => {
      if (c.r.ask(PR_5_BLOCK_BITMAP_CSUM_INVALID, { group: g, ...(k === 0 ? { str: "Block bitmap differences: " } : {}) }, {}, yes)) b.rewrite = true;
    });
  }
  if (i.rewrite) await writeInodeBitmaps(c);
  if (b.rewrite) await writeBlockBitmaps(c);
}

/**
 * Write every group's block bitmap from what passes 1-4 found in use, with its checksum
 * (e2fsck copies block_found_map over the bitmap; ext2fs_write_bitmaps writes it). Bytes past
 * the group's clusters are ones, and so are the last group's bits past the volume's end.
 * A BLOCK_UNINIT group whose only blocks are its own metadata keeps the flag and is not
 * written; one that has more in use loses the flag, so its bitmap is read from now on.
 */
async function writeBlockBitmaps(c: CheckContext): Promise<void> {
  const v = c.v;
  const w = c.out;
  const ratio = v.clusterRatio;
  for (let g = 0; g < v.groupCount; g++) {
    const gd = v.group(g);
    const loc = v.blockBitmapLoc(g);
    if (loc === 0 || loc >= v.blocksCount) continue;
    const first = v.groupFirstBlock(g);
    const inGroup = Math.ceil((v.groupLastBlock(g) - first + 1) / ratio);
    const bm = new Uint8Array(v.blockSize).fill(0xff);
    bm.fill(0, 0, Math.ceil(inGroup / 8));
    for (let i = 0; i < inGroup; i++) {
      let found = false;
      for (let k = 0; !found && k < ratio; k++) found = c.blockFound.test(first + i * ratio + k);
      if (found) bm[i >>> 3] = bm[i >>> 3]! | (1 << (i & 7));
    }
    for (let i = inGroup; i < Math.ceil(inGroup / 8) * 8; i++) bm[i >>> 3] = bm[i >>> 3]! | (1 << (i & 7));
    if (v.f.groupDescCsum && (gd.bg_flags & EXT4_BG_BLOCK_UNINIT) !== 0) {
      const own = new Uint8Array(v.blockSize);
      uninitMarks(c, g, (b) => {
        if (b >= first && b <= v.groupLastBlock(g)) {
          const i = Math.floor((b - first) / ratio);
          own[i >>> 3] = own[i >>> 3]! | (1 << (i & 7));
        }
      });
      let same = true;
      for (let i = 0; same && i < inGroup; i++) same = ((own[i >>> 3]! >> (i & 7)) & 1) === ((bm[i >>> 3]! >> (i & 7)) & 1);
      if (same) continue;
      gd.bg_flags &= ~EXT4_BG_BLOCK_UNINIT & 0xffff;
    }
    setBlockBitmapCsum(c, gd, bm);
    await w.writeBlock(loc, bm);
    w.markGroupDirty(g);
  }
}

/** Write every group's inode bitmap from the inodes found in use, with its checksum. @e2fsprogs write_bitmaps */
async function writeInodeBitmaps(c: CheckContext): Promise<void> {
  const v = c.v;
  const w = c.out;
  const ipg = v.inodesPerGroup;
  for (let g = 0; g < v.groupCount; g++) {
    const gd = v.group(g);
    const loc = v.inodeBitmapLoc(g);
    if (loc === 0 || loc >= v.blocksCount) continue;
    const bm = new Uint8Array(v.blockSize).fill(0xff);
    bm.fill(0, 0, ipg >>> 3);
    let any = false;
    for (let i = 0; i < ipg; i++) {
      if (c.inodeUsed.test(g * ipg + i + 1)) {
        bm[i >>> 3] = bm[i >>> 3]! | (1 << (i & 7));
        any = true;
      }
    }
    if (v.f.groupDescCsum && (gd.bg_flags & EXT4_BG_INODE_UNINIT) !== 0) {
      if (!any) continue;
      gd.bg_flags &= ~EXT4_BG_INODE_UNINIT & 0xffff;
    }
    setInodeBitmapCsum(c, gd, bm);
    await w.writeBlock(loc, bm);
    w.markGroupDirty(g);
  }
}

/** The group's block bitmap as e2fsck's read_bitmaps leaves it in memory (bits per cluster). */
async function loadBlockBitmap(c: CheckContext, g: number, tail?: { bad: boolean }): Promise<Uint8Array> {
  const v = c.v;
  const bs = v.blockSize;
  const gd = v.group(g);
  const loc = v.blockBitmapLoc(g);
  const uninit = v.f.groupDescCsum && (gd.bg_flags & EXT4_BG_BLOCK_UNINIT) !== 0;
  let bm = new Uint8Array(bs);
  if (!(uninit && v.gdCsumOk[g] === 1) && loc !== 0 && loc < v.blocksCount) {
    try {
      bm = (await v.readBlock(loc)).slice();
      if (tail !== undefined && !tailAllOnes(bm, (v.blocksPerGroup / v.clusterRatio) >>> 3)) tail.bad = true;
    } catch {
      bm = new Uint8Array(bs);
    }
  }
  return bm;
}

/** e2fsprogs bitmap_tail_verify: the bytes past a group's bits, to the end of the block, are all ones. */
function tailAllOnes(bm: Uint8Array, from: number): boolean {
  for (let i = from; i < bm.length; i++) if (bm[i] !== 0xff) return false;
  return true;
}

/** Blocks of group `g`'s own metadata (e2fsprogs mark_uninit_bg_group_blocks), for BLOCK_UNINIT groups. */
function uninitMarks(c: CheckContext, g: number, mark: (b: number) => void): void {
  const v = c.v;
  v.forEachSuperAndBgdBlock(g, mark);
  const it = v.inodeTableLoc(g);
  if (it !== 0) for (let i = 0; i < v.itableBlocks; i++) mark(it + i);
  const bb = v.blockBitmapLoc(g);
  if (bb !== 0) mark(bb);
  const ib = v.inodeBitmapLoc(g);
  if (ib !== 0) mark(ib);
}

/** A reusable scratch array of at least `n` bytes (one per check, for pass 5's group maps). */
const scratch = new WeakMap<CheckContext, Uint8Array>();
function scratchBytes(c: CheckContext, n: number): Uint8Array {
  let a = scratch.get(c);
  if (a === undefined || a.length < n) {
    a = new Uint8Array(n);
    scratch.set(c, a);
  }
  return a;
}

async function checkBlockBitmaps(c: CheckContext): Promise<BitmapFindings> {
  const v = c.v;
  const r = c.r;
  const ratioLog = v.f.bigalloc ? v.sb.s_log_cluster_size - v.sb.s_log_block_size : 0;
  const ratio = 2 ** ratioLog;
  const cpg = v.blocksPerGroup / ratio;
  const diffs = new DiffList();
  const freeArray = new Float64Array(v.groupCount);
  let freeTotal = 0;
  const csumBad: number[] = [];
  let paddingBad = false;
  const tail = { bad: false };
  // BLOCK_UNINIT groups contribute their own metadata to the bitmaps they live in.
  const extraMarks = new Map<number, Set<number>>();
  for (let g = 0; g < v.groupCount; g++) {
    if ((v.group(g).bg_flags & EXT4_BG_BLOCK_UNINIT) === 0) continue;
    uninitMarks(c, g, (b) => {
      if (b >= v.blocksCount) return;
      const tg = v.groupOfBlock(b);
      let s = extraMarks.get(tg);
      if (s === undefined) {
        s = new Set();
        extraMarks.set(tg, s);
      }
      s.add(Math.floor((b - v.groupFirstBlock(tg)) / ratio));
    });
  }
  const bitOf = (bm: Uint8Array, i: number): boolean => (bm[i >>> 3]! & (1 << (i & 7))) !== 0;
  for (let g = 0; g < v.groupCount; g++) {
    const bm = await loadBlockBitmap(c, g, tail);
    const first = v.groupFirstBlock(g);
    const inGroup = Math.ceil((v.groupLastBlock(g) - first + 1) / ratio);
    const marks = extraMarks.get(g);
    // Checksum of the bitmap as read (e2fsck check_block_bitmap_checksum skips BLOCK_UNINIT groups).
    if (v.f.metadataCsum && (v.group(g).bg_flags & EXT4_BG_BLOCK_UNINIT) === 0) {
      const full = bitmapChecksum(bm, cpg >>> 3, v.csumSeed) >>> 0;
      const want = v.descSize >= EXT4_BG_BLOCK_BITMAP_CSUM_HI_END ? full : full & 0xffff;
      if (want !== blockBitmapCsum(v.group(g), v.descSize)) csumBad.push(g);
    }
    if (marks !== undefined) for (const i of marks) bm[i >>> 3] = bm[i >>> 3]! | (1 << (i & 7));
    // A block in use in a group still marked BLOCK_UNINIT: asked at each such block until the
    // flag is cleared (so once when repairing, at every block with -n). @e2fsprogs check_block_bitmaps
    const gd = v.group(g);
    const usedInUninit = (b: number): void => {
      if (v.f.groupDescCsum && (gd.bg_flags & EXT4_BG_BLOCK_UNINIT) !== 0 && r.ask(PR_5_BLOCK_UNINIT, { group: g, blk: b })) {
        gd.bg_flags &= ~EXT4_BG_BLOCK_UNINIT & 0xffff;
        c.out.markGroupDirty(g);
      }
    };
    let groupFree = 0;
    // Without bigalloc, whole bytes of the found map are compared first: only a byte that
    // differs is walked bit by bit (the differences are listed in block order all the same).
    let i = 0;
    if (ratio === 1) {
      const whole = inGroup >>> 3;
      const found = scratchBytes(c, whole);
      c.blockFound.extract(first, whole * 8, found);
      for (let j = 0; j < whole; j++) {
        const d = bm[j]!;
        if (d === found[j]) {
          groupFree += 8 - POPCOUNT[d]!;
          continue;
        }
        for (let k = 0; k < 8; k++) {
          const onDisk = (d & (1 << k)) !== 0;
          const f = (found[j]! & (1 << k)) !== 0;
          if (f !== onDisk) {
            if (f) usedInUninit(first + j * 8 + k);
            diffs.add(f ? "+" : "-", first + j * 8 + k, 1);
          }
          if (!onDisk) groupFree++;
        }
      }
      i = whole * 8;
    }
    for (; i < inGroup; i++) {
      const b = first + i * ratio;
      const onDisk = bitOf(bm, i);
      let found = c.blockFound.test(b);
      for (let k = 1; !found && k < ratio; k++) found = c.blockFound.test(b + k);
      if (found !== onDisk) {
        if (found) usedInUninit(b);
        diffs.add(found ? "+" : "-", b, ratio);
      }
      if (!onDisk) groupFree++;
    }
    if (g === v.groupCount - 1) {
      for (let i = inGroup; i < cpg; i++) {
        if (!bitOf(bm, i)) {
          paddingBad = true;
          break;
        }
      }
    }
    freeArray[g] = groupFree;
    freeTotal += groupFree;
  }
  diffs.flush();
  let rewrite = false;
  if (diffs.count > 0 && r.ask(PR_5_BLOCK_BITMAP_HEADER, { str: diffs.text })) {
    // e2fsck copies the found map over the bitmap and redoes the counts from it.
    rewrite = true;
    freeTotal = 0;
    for (let g = 0; g < v.groupCount; g++) {
      const first = v.groupFirstBlock(g);
      const inGroup = Math.ceil((v.groupLastBlock(g) - first + 1) / ratio);
      let groupFree = 0;
      for (let i = 0; i < inGroup; i++) {
        let found = false;
        for (let k = 0; !found && k < ratio; k++) found = c.blockFound.test(first + i * ratio + k);
        if (!found) groupFree++;
      }
      freeArray[g] = groupFree;
      freeTotal += groupFree;
    }
  }
  for (let g = 0; g < v.groupCount; g++) {
    const gd = v.group(g);
    const have = gdFreeBlocks(gd, v.descSize);
    if (have !== freeArray[g] && r.ask(PR_5_FREE_BLOCK_COUNT_GROUP, { group: g, blk: have, blk2: freeArray[g]! })) {
      setGdFreeBlocks(gd, freeArray[g]!, v.descSize);
      c.out.markGroupDirty(g);
    }
  }
  const sbFree = sbFreeBlocks(v.sb);
  if (freeTotal * ratio !== sbFree && r.ask(PR_5_FREE_BLOCK_COUNT, { blk: sbFree, blk2: freeTotal * ratio })) {
    setSbFreeBlocks(v.sb, freeTotal * ratio);
    c.out.markSuperDirty();
  }
  return { csumBad, paddingBad, tailBad: tail.bad, rewrite };
}

async function checkInodeBitmaps(c: CheckContext): Promise<BitmapFindings> {
  const v = c.v;
  const r = c.r;
  const ipg = v.inodesPerGroup;
  const diffs = new DiffList();
  const freeArray = new Float64Array(v.groupCount);
  const dirArray = new Float64Array(v.groupCount);
  let freeTotal = 0;
  const csumBad: number[] = [];
  let paddingBad = false;
  let tailBad = false;
  for (let g = 0; g < v.groupCount; g++) {
    const gd = v.group(g);
    const uninit = v.f.groupDescCsum && (gd.bg_flags & EXT4_BG_INODE_UNINIT) !== 0;
    const loc = v.inodeBitmapLoc(g);
    let bm = new Uint8Array(v.blockSize);
    if (!(uninit && v.gdCsumOk[g] === 1) && loc !== 0 && loc < v.blocksCount) {
      try {
        bm = (await v.readBlock(loc)).slice();
        if (!tailAllOnes(bm, ipg >>> 3)) tailBad = true;
      } catch {
        bm = new Uint8Array(v.blockSize);
      }
    }
    if (v.f.metadataCsum && (gd.bg_flags & EXT4_BG_INODE_UNINIT) === 0) {
      const full = bitmapChecksum(bm, ipg >>> 3, v.csumSeed) >>> 0;
      const want = v.descSize >= EXT4_BG_INODE_BITMAP_CSUM_HI_END ? full : full & 0xffff;
      if (want !== inodeBitmapCsum(gd, v.descSize)) csumBad.push(g);
    }
    let free = 0;
    let dirs = 0;
    const base = g * ipg;
    const n = Math.min(ipg, v.inodesCount - base);
    // Whole bytes first, as for the block bitmaps: a byte equal to the in-use map needs only
    // its directories counted (every inode it marks is in use).
    let i = 0;
    const whole = n >>> 3;
    const usedBits = scratchBytes(c, 2 * whole);
    const dirBits = usedBits.subarray(whole);
    c.inodeUsed.extract(base + 1, whole * 8, usedBits);
    c.ftype.extractDirs(base + 1, whole * 8, dirBits);
    for (let j = 0; j < whole; j++) {
      const d = bm[j]!;
      if (d !== usedBits[j]) break;
      free += 8 - POPCOUNT[d]!;
      dirs += POPCOUNT[d & dirBits[j]!]!;
      i += 8;
    }
    for (; i < n; i++) {
      const ino = base + i + 1;
      const onDisk = (bm[i >>> 3]! & (1 << (i & 7))) !== 0;
      const used = c.inodeUsed.test(ino);
      if (used !== onDisk) diffs.add(used ? "+" : "-", ino, 1);
      if (onDisk) {
        if (c.isDir(ino)) dirs++;
      } else free++;
    }
    if (g === v.groupCount - 1) {
      for (let i = n; i < ipg; i++) {
        if ((bm[i >>> 3]! & (1 << (i & 7))) === 0) {
          paddingBad = true;
          break;
        }
      }
    }
    freeArray[g] = free;
    dirArray[g] = dirs;
    freeTotal += free;
  }
  diffs.flush();
  let rewrite = false;
  if (diffs.count > 0 && r.ask(PR_5_INODE_BITMAP_HEADER, { str: diffs.text })) {
    // e2fsck copies inode_used_map over the bitmap and redoes the counts from it.
    rewrite = true;
    freeTotal = 0;
    for (let g = 0; g < v.groupCount; g++) {
      const base = g * ipg;
      const n = Math.min(ipg, v.inodesCount - base);
      let free = 0;
      let dirs = 0;
      for (let i = 0; i < n; i++) {
        const ino = base + i + 1;
        if (!c.inodeUsed.test(ino)) free++;
        else if (c.isDir(ino)) dirs++;
      }
      freeArray[g] = free;
      dirArray[g] = dirs;
      freeTotal += free;
    }
  }
  for (let g = 0; g < v.groupCount; g++) {
    const gd = v.group(g);
    const have = gdFreeInodes(gd, v.descSize);
    if (have !== freeArray[g] && r.ask(PR_5_FREE_INODE_COUNT_GROUP, { group: g, ino: have, ino2: freeArray[g]! })) {
      setGdFreeInodes(gd, freeArray[g]!, v.descSize);
      c.out.markGroupDirty(g);
    }
    const dirsHave = usedDirsCount(gd, v.descSize);
    if (dirsHave !== dirArray[g] && r.ask(PR_5_FREE_DIR_COUNT_GROUP, { group: g, ino: dirsHave, ino2: dirArray[g]! })) {
      setUsedDirsCount(gd, dirArray[g]!, v.descSize);
      c.out.markGroupDirty(g);
    }
  }
  if (freeTotal !== v.sb.s_free_inodes_count && r.ask(PR_5_FREE_INODE_COUNT, { ino: v.sb.s_free_inodes_count, ino2: freeTotal })) {
    v.sb.s_free_inodes_count = freeTotal;
    c.out.markSuperDirty();
  }
  return { csumBad, paddingBad, tailBad, rewrite };
}
