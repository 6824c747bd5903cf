/**
 * Pass 2: directory structure (e2fsck pass2.c).
 *
 * Every directory block pass 1 listed is read, in block order (htree roots first, so the
 * hash version is known), in runs of adjacent blocks. Each entry is checked as e2fsck
 * checks it: record lengths, '.' and '..', the inode it names (in range, in use, not in an
 * unused part of the inode table), names, file types, checksum tails; hashed directories
 * get their index blocks parsed and, once all blocks are seen, the hash ranges of the
 * index compared with the leaves. References are counted for pass 4 and each
 * subdirectory's parent recorded for pass 3.
 *
 * A repairing run mends what e2fsck mends here: a corrupted block is salvaged, '.' and
 * '..' are made right, entries naming what they may not are cleared, names and file types
 * fixed, inodes of no valid kind deallocated (e2fsck's process_bad_inode), and each block
 * so changed, or whose only fault is its checksum, written back sealed. What needs pass 3A
 * (a leaf with no room for its checksum, a bad htree), a new block (a hole) or a restart
 * (inodes in a group's unused area) is still only reported.
 */

import { dirBlockChecksum, dxBlockChecksum, inodeChecksumSeed } from "../format/checksum.js";
import { EXT4_FT_DIR, EXT4_FT_REG_FILE, EXT4_FT_SYMLINK, EXT4_FT_UNKNOWN, dirRecLen, recLenFromDisk, recLenToDisk } from "../format/dirent.js";
import { EXT4_ENC_STRICT_MODE_FL, EXT4_FEATURE_RO_COMPAT_LARGE_FILE } from "../format/superblock.js";
import { dirhash, isDxHashVersion } from "../format/dirhash.js";
import { EXT4_BG_INODE_UNINIT, itableUnused, setItableUnused } from "../format/group_desc.js";
import {
  EXT4_INDEX_FL, EXT4_INLINE_DATA_FL, EXT4_ROOT_INO, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT,
  S_IFREG, S_IFSOCK, type RawInode,
} from "../format/inode.js";
import type { CheckContext } from "./context.js";
import {
  NO_ENCRYPTION_POLICY, fileTypeOfMode, DIR_CASEFOLD, DIR_HTREE, DX_DIRBLOCK_LEAF, DX_DIRBLOCK_NODE, DX_DIRBLOCK_ROOT, DX_FLAG_DUP_REF, DX_FLAG_FIRST,
  DX_FLAG_LAST, DX_FLAG_REFERENCED, type DxDir,
} from "./context.js";
import { checkDeviceInode, checkSymlink } from "./pass1.js";
import { FsckRestart } from "./report.js";
import { NameSet } from "./maps.js";
import { allocateDirBlock, canAllocateDirBlock } from "./lost_found.js";
import { PathNamer, inlineData, readInode, safeName } from "./paths.js";
import { deallocateInode, writeInlineDirData } from "./repair.js";
import {
  PR_2_1ST_NOT_DOT, PR_2_2ND_NOT_DOT_DOT, PR_2_BAD_BLOCK_DEV, PR_2_BAD_CHAR_DEV, PR_2_BAD_ENCRYPTED_NAME, PR_2_BAD_FIFO,
  PR_2_BAD_FILETYPE, PR_2_BAD_INLINE_DIR_SIZE, PR_2_BAD_INO, PR_2_BAD_INODE_DOT, PR_2_BAD_MODE, PR_2_BAD_NAME, PR_2_BAD_SOCKET,
  PR_2_BB_INODE, PR_2_BLOCKS_HI_ZERO, PR_2_CLEAR_FILETYPE, PR_2_DIRECTORY_HOLE, PR_2_DIR_CORRUPTED, PR_2_DIR_SIZE_HIGH_ZERO,
  PR_2_DOT_DOT_NULL_TERM, PR_2_DOT_NULL_TERM, PR_2_DUP_DOT, PR_2_DUP_DOT_DOT, PR_2_FADDR_ZERO, PR_2_FEATURE_LARGE_FILES,
  PR_2_FILE_ACL_BAD, PR_2_FILE_ACL_ZERO, PR_2_HTREE_BADBLK, PR_2_HTREE_BAD_COUNT, PR_2_HTREE_BAD_DEPTH, PR_2_HTREE_BAD_LIMIT,
  PR_2_HTREE_BAD_ROOT, PR_2_HTREE_CLEAR, PR_2_HTREE_DUPREF, PR_2_HTREE_HASH_ORDER, PR_2_HTREE_MAX_HASH, PR_2_HTREE_MIN_HASH,
  PR_2_HTREE_NODE_CSUM_INVALID, PR_2_HTREE_NOTREF, PR_2_HTREE_ROOT_CSUM_INVALID, PR_2_INOREF_BG_INO_UNINIT,
  PR_2_INOREF_IN_UNUSED, PR_2_INVALID_SYMLINK, PR_2_I_FILE_ACL_HI_ZERO, PR_2_LEAF_NODE_MISSING_CSUM,
  PR_2_LEAF_NODE_ONLY_CSUM_INVALID, PR_2_LINK_DIR, PR_2_LINK_DOT, PR_2_LINK_ROOT, PR_2_MISSING_DOT, PR_2_MISSING_DOT_DOT, PR_2_NULL_NAME, PR_2_REPORT_DUP_DIRENT,
  PR_2_SPLIT_DOT, PR_2_UNEXPECTED_HTREE_BLOCK, PR_2_UNUSED_INODE, PR_2_ABORT, PR_2_BAD_ENCODED_NAME, PR_2_INCONSISTENT_ENCRYPTION_POLICY,
  PR_2_UNENCRYPTED_FILE, PR_2_FINAL_RECLEN, PR_2_SET_FILETYPE, PR_2_WRITE_DIRBLOCK, PR_2_ADJ_EA_REFCOUNT, PR_2_DEALLOC_INODE,
  type ProblemArgs, type ProblemDef,
} from "./problem.js";
import { put16, put32, u16, u32 } from "./bytes.js";
import { dirBlockCsumOk, direntTail, dxCountOffset, hasDirentTail } from "./dir_block.js";


const EXT4_DX_BLOCK_MASK = 0x0fffffff;
/** Blocks read at once when directory blocks are adjacent. */
const RUN_BLOCKS = 64;

interface DirMeta {
  ino: number;
  idx: number;
  seed: number;
  flags: number;
  inline: Uint8Array | null;
}

export class Pass2 {
  readonly c: CheckContext;
  /** Path names for messages; renewed when a repaired directory block is written. */
  names: PathNamer;
  #meta: DirMeta | null = null;
  /**
   * e2fsck's cd->pctx.dir: set to a directory only once one of its htree blocks has been
   * walked, so the root check of the next htree directory names the previous one (or 0).
   */
  #pctxDir = 0;
  /** Whether checkDirBlock takes plainEntry for ordinary entries. */
  readonly #fast: boolean;
  /** The names of the block being checked. */
  readonly #seen = new NameSet();
  /**
   * Per group, the first inode number its descriptor calls unused (the group's first for an
   * INODE_UNINIT group), as the pass starts; plainEntry is off once a restart is planned
   * (a repair may have changed one).
   */
  readonly #firstUnused: Float64Array;

  constructor(c: CheckContext, names: PathNamer, fast = true) {
    this.c = c;
    this.#fast = fast;
    const v = c.v;
    this.#firstUnused = new Float64Array(v.groupCount);
    for (let g = 0; g < v.groupCount; g++) {
      const gd = v.group(g);
      const start = g * v.inodesPerGroup + 1;
      this.#firstUnused[g] = (gd.bg_flags & EXT4_BG_INODE_UNINIT) !== 0 ? start : start + v.inodesPerGroup - itableUnused(gd, v.descSize);
    }
    // A repairing run gets a namer of its own, renewed whenever pass 2 rewrites a directory
    // block; the shared one (whose cache cannot be dropped from here) is kept free of what
    // it read before a repair.
    this.names = c.w === null ? names : new PathNamer(c);
  }

  async run(): Promise<void> {
    const c = this.c;
    const v = c.v;
    const rootIdx = c.dirs.find(EXT4_ROOT_INO);
    if (rootIdx >= 0) c.dirs.parent.set(rootIdx, EXT4_ROOT_INO);
    const db = c.dblist;
    const n = db.count;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const blk = db.blk.view();
    const cnt = db.cnt.view();
    const ino = db.ino.view();
    // e2fsck sorts the list by block (htree roots first with dir_index, so the hash version is known).
    const rootsFirst = v.f.dirIndex;
    order.sort((a, b) => {
      const ca = cnt[a]!;
      const cb = cnt[b]!;
      if (rootsFirst) {
        if (ca !== 0 && cb === 0) return 1;
        if (ca === 0 && cb !== 0) return -1;
      }
      if (blk[a] !== blk[b]) return blk[a]! - blk[b]!;
      if (ino[a] !== ino[b]) return ino[a]! - ino[b]!;
      return ca - cb;
    });
    // One buffer for every run: checkDirBlock keeps no view of a block past its call (what it
    // keeps, it copies), and a buffer per run was ~30 MB of garbage on a 1M-file volume.
    const runBuf = new Uint8Array(RUN_BLOCKS * v.blockSize);
    for (let i = 0; i < n; ) {
      const first = order[i]!;
      const start = blk[first]!;
      let j = i + 1;
      if (start !== 0) {
        while (j < n && j - i < RUN_BLOCKS && blk[order[j]!] === start + (j - i)) j++;
      }
      let run: Uint8Array | null = null;
      if (start !== 0 && v.blockValid(start) && start + (j - i) <= v.blocksCount) {
        try {
          run = runBuf.subarray(0, (j - i) * v.blockSize);
          await v.cache.readUncachedInto(start, run);
        } catch {
          run = null;
        }
      }
      for (let k = i; k < j; k++) {
        const e = order[k]!;
        const block = run === null ? null : run.subarray((k - i) * v.blockSize, (k - i + 1) * v.blockSize);
        await this.checkDirBlock(ino[e]!, blk[e]!, cnt[e]!, block);
      }
      i = j;
    }
    // @e2fsprogs e2fsck_pass2: E2F_FLAG_RESTART_LATER (a group's inodes made visible, an indirect
    // block pass 1B moved off critical metadata) restarts the check once the blocks are read.
    if (this.c.restartLater) throw new FsckRestart();
    await this.checkHtrees();
    if (c.counters.largeFiles > 0 && !v.f.largeFile && c.r.ask(PR_2_FEATURE_LARGE_FILES)) {
      // e2fsck also drops EXT2_FLAG_MASTER_SB_ONLY here, so the backups get the feature too.
      v.sb.s_feature_ro_compat |= EXT4_FEATURE_RO_COMPAT_LARGE_FILE;
      c.out.markSuperDirty();
    }
  }

  async #dirMeta(ino: number): Promise<DirMeta> {
    if (this.#meta?.ino === ino) return this.#meta;
    const c = this.c;
    const idx = c.dirs.find(ino);
    const gen = idx >= 0 ? c.dirs.generation.get(idx) : 0;
    const flags = idx >= 0 ? c.dirs.flags.get(idx) : 0;
    let inline: Uint8Array | null = null;
    if (c.v.f.inlineData) {
      const got = await readInode(c, ino);
      if (got !== null && (got.raw.i_flags & EXT4_INLINE_DATA_FL) !== 0) inline = await inlineData(c, got.raw, got.bytes);
    }
    this.#meta = { ino, idx, seed: inodeChecksumSeed(c.v.csumSeed, ino, gen), flags, inline };
    return this.#meta;
  }

  async #entryText(dir: number, name: Uint8Array): Promise<string> {
    return `Entry '${safeName(name)}' in ${await this.names.dirPath(dir)} (${dir})`;
  }

  /** e2fsck check_dir_block. `buf` is the block when it could be read with its run. */
  async checkDirBlock(ino: number, pblkIn: number, cnt: number, bufIn0: Uint8Array | null): Promise<void> {
    let pblk = pblkIn;
    let bufIn = bufIn0;
    const c = this.c;
    const v = c.v;
    const r = c.r;
    const bs = v.blockSize;
    if (!c.inodeUsed.test(ino)) return;
    const meta = await this.#dirMeta(ino);
    const inlineBuf = meta.inline;
    const inlineSize = inlineBuf === null ? 0 : inlineBuf.length;
    if (pblk === 0 && v.f.largedir && !v.f.inlineData) return;
    if (pblk === 0 && inlineSize === 0) {
      // A hole in a directory gets a fresh block, which is then checked like any other.
      const planned = r.repairing ? await canAllocateDirBlock(c, ino, cnt) : false;
      if (!planned) {
        r.fix(PR_2_DIRECTORY_HOLE, { ino, blkcount: cnt });
        return;
      }
      if (!r.ask(PR_2_DIRECTORY_HOLE, { ino, blkcount: cnt })) return;
      const nb = await allocateDirBlock(c, ino, cnt);
      if (nb === 0) return;
      pblk = nb;
      bufIn = null;
    }
    // Repairs rewrite the block (an inline directory's data in place).
    const ask: AskFn = (d, a) => r.ask(d, a);
    let dotState = cnt !== 0 ? 2 : 0;
    const filetypeFeature = v.f.filetype;
    let buf: Uint8Array;
    let failedCsum = false;
    if (inlineBuf !== null) {
      buf = inlineBuf;
    } else {
      // The run's buffer is this block's own copy (BufferCache.readUncachedInto), safe to edit.
      if (bufIn !== null) buf = bufIn;
      else {
        try {
          buf = (await v.readBlock(pblk)).slice();
        } catch {
          buf = new Uint8Array(bs);
        }
      }
      if (v.f.metadataCsum && !dirBlockCsumOk(buf, bs, meta.seed)) failedCsum = true;
    }
    if (inlineBuf !== null && ((inlineSize & 3) !== 0 || (inlineSize > 60 && inlineSize < 60 + dirRecLen(1)))) {
      r.fix(PR_2_BAD_INLINE_DIR_SIZE, { ino, num: inlineSize });
    }
    // htree bookkeeping
    let dx: DxDir | undefined = c.dxDirs.get(ino);
    let dxBlock = -1;
    let isLeaf = true;
    const dxCsumSize = v.f.metadataCsum ? 8 : 0;
    let deCsumSize = v.f.metadataCsum ? 12 : 0;
    if (dx !== undefined && dx.numBlocks > 0 && inlineBuf === null) {
      if (cnt >= dx.numBlocks) {
        if (r.ask(PR_2_UNEXPECTED_HTREE_BLOCK, { dir: ino, path: await this.names.dirPath(ino) })) await this.clearHtree(ino, dx);
        else r.fix(PR_2_ABORT, { str: "Can not continue." });
      }
    }
    if (dx !== undefined && dx.numBlocks > 0 && inlineBuf === null) {
      dxBlock = cnt;
      dx.type[cnt] = DX_DIRBLOCK_LEAF;
      dx.minHash[cnt] = 0xffffffff;
      dx.maxHash[cnt] = 0;
      const rl = recLenFromDisk(u16(buf, 4), bs);
      if (cnt === 0) {
        dx.type[0] = DX_DIRBLOCK_ROOT;
        dx.flags[0] = dx.flags[0]! | DX_FLAG_FIRST | DX_FLAG_LAST;
        const reserved = u32(buf, 24);
        const infoLen = buf[29]!;
        const levels = buf[30]!;
        if ((reserved !== 0 || infoLen < 8 || levels >= (v.f.largedir ? 3 : 2)) && r.ask(PR_2_HTREE_BAD_ROOT, { dir: this.#pctxDir })) {
          await this.clearHtree(ino, dx);
        }
        dx.hashVersion = buf[28]!;
        if (dx.hashVersion <= 2 && (v.sb.s_flags & 2) !== 0) dx.hashVersion += 3;
        dx.depth = levels + 1;
      } else if (u32(buf, 0) === 0 && rl === bs && buf[6] === 0 && u16(buf, 8) === Math.floor((bs - (8 + dxCsumSize)) / 8)) {
        dx.type[cnt] = DX_DIRBLOCK_NODE;
      }
      isLeaf = dx.type[cnt] === DX_DIRBLOCK_LEAF || dx.numBlocks === 0;
      if (dx.numBlocks === 0) dxBlock = -1;
    } else {
      dx = undefined;
    }
    // A leaf with no room for its checksum tail: e2fsck rebuilds the directory in pass 3A.
    if (isLeaf && inlineBuf === null && failedCsum && !hasDirentTail(buf, bs)) {
      deCsumSize = 0;
      if (c.dirsToRehash.has(ino)) failedCsum = false;
      else if (r.ask(PR_2_LEAF_NODE_MISSING_CSUM, { ino, blkcount: cnt, num: 0 })) {
        c.dirsToRehash.add(ino);
        failedCsum = false;
      }
    }
    if (!isLeaf) deCsumSize = 0;

    let base = 0;
    let maxBlockSize: number;
    if (inlineBuf !== null) {
      if (cnt !== 0) {
        base = 60;
        maxBlockSize = inlineSize - 60;
        if (maxBlockSize <= 0) return;
      } else maxBlockSize = 60;
    } else maxBlockSize = bs - deCsumSize;

    const dirPolicy = c.encryption.find(ino);
    // Names must be valid UTF-8 in a casefolded directory of a strict-mode volume.
    const cfDir = c.inodeCasefold.test(ino) && (v.sb.s_encoding_flags & EXT4_ENC_STRICT_MODE_FL) !== 0;
    const hashInDirent = dirPolicy !== NO_ENCRYPTION_POLICY && (meta.flags & DIR_CASEFOLD) !== 0;
    const hashable = dx !== undefined && (meta.flags & DIR_CASEFOLD) === 0 && isDxHashVersion(dx.hashVersion) && dx.hashVersion !== 6;
    const seen = this.#seen;
    seen.clear();
    // Entries with nothing to say take plainEntry; the rest, and all of a directory kind it does not know, the loop below.
    const plain = this.#fast && dirPolicy === NO_ENCRYPTION_POLICY && !cfDir && !c.restartLater && v.f.filetype;
    const hashBlock = hashable && dx !== undefined ? dxBlock : -1;
    let dupsFound = c.dirsToRehash.has(ino);
    let dirModified = 0;
    let offset = 0;
    let recLen = 0;
    /** Buffer offset of the previous entry (e2fsck's prev), -1 for none. */
    let prev = -1;
    /** Buffer offset of the last entry looked at (e2fsck's dirent after the loop). */
    let last = -1;
    do {
      const at = base + offset;
      const fake = !(inlineBuf === null || dotState > 1);
      if (!fake) {
        const extended = dotState > 1 && hashInDirent;
        const minLen = dirRecLen(1) + (extended ? 8 : 0);
        if (maxBlockSize - offset < 8) recLen = minLen;
        else recLen = recLenFromDisk(u16(buf, at + 4), bs);
        const nl = buf[at + 6] ?? 0;
        last = at;
        if (offset + recLen > maxBlockSize || recLen < minLen || recLen % 4 !== 0 || dirRecLen(nl) + (extended ? 8 : 0) > recLen) {
          if (ask(PR_2_DIR_CORRUPTED, { ino, blkcount: cnt, num: offset })) {
            offset = salvageDirectory(buf, base, offset, prev, maxBlockSize, bs, v.inodesCount, hashInDirent);
            dirModified++;
            continue;
          }
          r.fix(PR_2_ABORT, { str: "e2fsck: aborted" });
        }
      } else {
        recLen = dirRecLen(dotState === 0 ? 1 : 2);
      }
      if (plain && !fake && dotState > 1 && this.#plainEntry(ino, buf, at, dx, hashBlock, dupsFound)) {
        prev = at;
        offset += recLen;
        dotState++;
        continue;
      }
      {
        // The full path: its own block scope, so the closures below (and the scope object
        // they need) are made only for the entries plainEntry does not take.
        let problem: ProblemDef | undefined;
        let entIno: number;
        let nameLen: number;
        let name: Uint8Array;
        let entFileType: number;
        let nameByteAfter: number;
        // The entry as e2fsck sees it: in the block, or for an inline directory's '.' and '..'
        // a made-up one (e2fsck's on-stack dot/dotdot), whose repairs are not written back.
        let eb = buf;
        let eo = at;
        if (fake) {
          eb = new Uint8Array(24);
          eo = 0;
          put32(eb, 0, dotState === 0 ? ino : u32(buf, 0));
          put16(eb, 4, recLen);
          eb[6] = dotState === 0 ? 1 : 2;
          eb[7] = filetypeFeature ? EXT4_FT_DIR : 0;
          eb[8] = 0x2e;
          if (dotState === 1) eb[9] = 0x2e;
        }
        /** The entry's fields as they stand now (after any repair to it). */
        const load = (): void => {
          entIno = u32(eb, eo);
          nameLen = eb[eo + 6]!;
          entFileType = eb[eo + 7]!;
          name = eb.subarray(eo + 8, eo + 8 + nameLen);
          nameByteAfter = eb[eo + 8 + nameLen] ?? 0;
        };
        load();
        const entry = (): Promise<string> => this.#entryText(ino, name);
        const clearEntry = (): void => {
          put32(eb, eo, 0);
          dirModified++;
        };
        body: {
          const isDot = nameLen! === 1 && name![0] === 0x2e;
          const isDotDot = nameLen! === 2 && name![0] === 0x2e && name![1] === 0x2e;
          if (dotState === 0) {
            // check_dot
            let p: ProblemDef | undefined;
            if (entIno! === 0) p = PR_2_MISSING_DOT;
            else if (!isDot) p = PR_2_1ST_NOT_DOT;
            else if (nameByteAfter! !== 0) p = PR_2_DOT_NULL_TERM;
            let rl = recLen;
            let created = false;
            let ftype = EXT4_FT_DIR;
            if (p !== undefined) {
              if (!filetypeFeature) ftype = EXT4_FT_UNKNOWN;
              if (ask(p, { ino, ino2: entIno!, str: safeName(name!), path: await this.names.dirPath(ino) })) {
                if (rl < 12) {
                  rl = 12;
                  put16(eb, eo + 4, 12);
                }
                put32(eb, eo, ino);
                eb[eo + 6] = 1;
                eb[eo + 7] = ftype;
                eb[eo + 8] = 0x2e;
                eb[eo + 9] = 0;
                created = true;
                dirModified++;
                load();
              }
            }
            if (entIno! !== ino) {
              if (ask(PR_2_BAD_INODE_DOT, { ino })) {
                put32(eb, eo, ino);
                dirModified++;
              }
            }
            if (rl > 12 && rl - 12 > 12) {
              if (created || ask(PR_2_SPLIT_DOT, { ino, path: await this.names.dirPath(ino) })) {
                put16(eb, eo + 4, 12);
                const nx = eo + 12;
                // A following entry that looks like '..' is left for check_dotdot.
                if (!(eb[nx + 8] === 0x2e && eb[nx + 9] === 0x2e && eb[nx + 10] === 0)) {
                  put16(eb, nx + 4, recLenToDisk(rl - 12, bs));
                  put32(eb, nx, 0);
                  eb[nx + 6] = 0;
                  eb[nx + 7] = ftype;
                }
                dirModified++;
              }
            }
            load();
          } else if (dotState === 1) {
            // check_dotdot
            let p: ProblemDef | undefined;
            if (entIno! === 0) p = PR_2_MISSING_DOT_DOT;
            else if (!isDotDot) p = PR_2_2ND_NOT_DOT_DOT;
            else if (nameByteAfter! !== 0) p = PR_2_DOT_DOT_NULL_TERM;
            if (p !== undefined) {
              const ftype = filetypeFeature ? EXT4_FT_DIR : EXT4_FT_UNKNOWN;
              if (ask(p, { ino, ino2: entIno!, str: safeName(name!) })) {
                if (recLen < 12) put16(eb, eo + 4, 12);
                // The parent is not known yet: the root, which pass 3 corrects.
                put32(eb, eo, EXT4_ROOT_INO);
                eb[eo + 6] = 2;
                eb[eo + 7] = ftype;
                eb[eo + 8] = 0x2e;
                eb[eo + 9] = 0x2e;
                eb[eo + 10] = 0;
                dirModified++;
                load();
              }
            } else if (meta.idx >= 0) c.dirs.dotdot.set(meta.idx, entIno!);
          } else if (entIno! === ino) {
            problem = PR_2_LINK_DOT;
            if (ask(PR_2_LINK_DOT, { entry: await entry() })) {
              clearEntry();
              break body;
            }
          }
          if (entIno! === 0) break body;
          const args = async (): Promise<ProblemArgs> => ({ entry: await entry(), ino: ino, ino2: entIno! });
          if ((entIno! !== EXT4_ROOT_INO && entIno! < v.firstIno) || entIno! > v.inodesCount) problem = PR_2_BAD_INO;
          else if (c.inodeBb.test(entIno!)) problem = PR_2_BB_INODE;
          else if (dotState > 1 && isDot) problem = PR_2_DUP_DOT;
          else if (dotState > 1 && isDotDot) problem = PR_2_DUP_DOT_DOT;
          else if (dotState > 1 && entIno! === EXT4_ROOT_INO) problem = PR_2_LINK_ROOT;
          else if (dotState > 1 && nameLen! === 0) problem = PR_2_NULL_NAME;
          if (problem !== undefined) {
            if (ask(problem, await args())) {
              clearEntry();
              break body;
            }
            r.unmarkValid();
            if (problem === PR_2_BAD_INO) break body;
          }
          if (c.inodeBad.test(entIno!)) {
            if (await processBadInode(c, this.names, ino, entIno!)) {
              clearEntry();
              break body;
            }
          }
          const group = v.groupOfIno(entIno!);
          const gd = v.group(group);
          const firstUnused = group * v.inodesPerGroup + 1 + v.inodesPerGroup - itableUnused(gd, v.descSize);
          // An entry naming an inode its group calls unused: the group's inodes become visible and
          // the check restarts after this pass (e2fsck's E2F_FLAG_RESTART_LATER); until then no
          // entry for an "unused" inode is cleared.
          const uninit = (gd.bg_flags & EXT4_BG_INODE_UNINIT) !== 0;
          if (uninit || entIno! >= firstUnused) {
            if (r.ask(uninit ? PR_2_INOREF_BG_INO_UNINIT : PR_2_INOREF_IN_UNUSED, { ...(await args()), group })) {
              if (uninit) gd.bg_flags &= ~EXT4_BG_INODE_UNINIT & 0xffff;
              else setItableUnused(gd, 0, v.descSize);
              c.out.markGroupDirty(group);
              this.c.restartLater = true;
            } else r.unmarkValid();
          }
          if (!this.c.restartLater && !c.inodeUsed.test(entIno!)) problem = PR_2_UNUSED_INODE;
          if (problem !== undefined) {
            if (ask(problem, await args())) {
              clearEntry();
              break body;
            }
            r.unmarkValid();
            if (problem === PR_2_BAD_INO) break body;
          }
          if (!this.filetypeMatches(entIno!, entFileType!)) {
            const ft = await this.checkFiletype(ino, entIno!, entFileType!, name!, ask);
            if (ft !== null) {
              eb[eo + 7] = ft;
              dirModified++;
              load();
            }
          }
          // e2fsck 1.47's order: file type, then the name by the directory's kind.
          if (dirPolicy !== NO_ENCRYPTION_POLICY) {
            if (dotState > 1) {
              // check_encrypted_dirent
              let clear = false;
              if (nameLen! < 16) {
                if (ask(PR_2_BAD_ENCRYPTED_NAME, await args())) clear = true;
                else r.unmarkValid();
              }
              if (!clear) clear = await this.checkEncryptionPolicy(entIno!, entFileType!, dirPolicy, args, ask);
              if (clear) {
                clearEntry();
                break body;
              }
            }
          } else if (cfDir) {
            // encoded_check_name: a name fixed here is not checked again by check_name.
            const bad = firstBadUtf8(name!);
            let fixed = false;
            if (bad >= 0 && ask(PR_2_BAD_ENCODED_NAME, await args())) {
              // `name` is a view of the block (of a copy for the made-up '.' and '..').
              for (let i = bad; i < nameLen! && name![i] !== 0; i++) name![i] = 0x2e;
              dirModified++;
              fixed = true;
            }
            if (!fixed && (await this.checkName(name!, args, ask))) dirModified++;
          } else if (await this.checkName(name!, args, ask)) dirModified++;
          if (hashBlock >= 0 && dx !== undefined) this.#noteHash(dx, hashBlock, name!);
          if (dotState > 1 && c.isDir(entIno!)) {
            const si = c.dirs.find(entIno!);
            if (si >= 0) {
              const parent = c.dirs.parent.get(si);
              if (parent !== 0) {
                if (ask(PR_2_LINK_DIR, { ...(await args()), path2: await this.names.pathname(parent, entIno!) })) {
                  clearEntry();
                  break body;
                }
              } else {
                c.dirs.parent.set(si, ino);
              }
            }
          }
          if (!dupsFound && seen.insert(eb, eo + 8, nameLen!)) {
            r.fix(PR_2_REPORT_DUP_DIRENT, { ino, str: safeName(name!), path: await this.names.dirPath(ino) });
            c.dirsToRehash.add(ino);
            dupsFound = true;
          }
          const links = c.linkCount.inc(entIno!);
          if (links > 1) c.counters.links++;
          c.counters.total++;
        }
      }
      // next:
      prev = fake ? -1 : at;
      if (dirModified > 0 && !fake) recLen = recLenFromDisk(u16(buf, at + 4), bs);
      if (!fake) offset += recLen;
      else if (dotState === 1) {
        offset = 4;
        prev = -1;
      }
      dotState++;
    } while (offset < maxBlockSize);

    if (dx !== undefined && dxBlock >= 0) this.#pctxDir = ino;
    if (dx !== undefined && dxBlock >= 0 && (dx.type[dxBlock] === DX_DIRBLOCK_ROOT || dx.type[dxBlock] === DX_DIRBLOCK_NODE)) {
      await this.parseIntNode(ino, dx, cnt, buf.slice(), failedCsum);
    }
    if (offset !== maxBlockSize && last >= 0) {
      // Only after a salvage that gave the rest of the block to the previous entry.
      const num = recLen + offset - maxBlockSize;
      const lastRecLen = recLenFromDisk(u16(buf, last + 4), bs);
      const lastName = buf.subarray(last + 8, last + 8 + Math.min(buf[last + 6] ?? 0, lastRecLen));
      if (ask(PR_2_FINAL_RECLEN, { entry: await this.#entryText(ino, lastName), num, num2: lastRecLen })) {
        put16(buf, last + 4, num & 0xffff);
        dirModified++;
      }
    }
    if (dirModified > 0) {
      if (inlineBuf !== null) {
        if (!(await writeInlineDirData(c, ino, inlineBuf))) r.fix(PR_2_WRITE_DIRBLOCK, { blk: 0, ino, str: "Inline data cannot be written in place" });
        this.names = new PathNamer(c);
      } else {
        if (v.f.metadataCsum && isLeaf && !hasDirentTail(buf, bs)) {
          if (!insertDirentTail(buf, bs)) c.dirsToRehash.add(ino);
        }
        await this.#writeDirBlock(ino, pblk, buf, meta.seed);
      }
    } else if (isLeaf && failedCsum && inlineBuf === null) {
      // A leaf that passed every check but its checksum: rewrite it with the right one.
      const can = canSealDirBlock(buf, bs) || c.dirsToRehash.has(ino);
      if (can ? r.ask(PR_2_LEAF_NODE_ONLY_CSUM_INVALID, { ino, blkcount: cnt }) : r.fix(PR_2_LEAF_NODE_ONLY_CSUM_INVALID, { ino, blkcount: cnt })) {
        await this.#writeDirBlock(ino, pblk, buf, meta.seed);
      }
    }
  }

  /** An htree leaf's hash range takes in one more name. */
  #noteHash(dx: DxDir, dxBlock: number, name: Uint8Array): void {
    let h = 0;
    try {
      h = dirhash(name, dx.hashVersion as Parameters<typeof dirhash>[1], this.c.v.sb.s_hash_seed).hash;
    } catch {
      h = 0;
    }
    if (h < dx.minHash[dxBlock]!) dx.minHash[dxBlock] = h;
    if (h > dx.maxHash[dxBlock]!) dx.maxHash[dxBlock] = h;
  }

  /**
   * The fast path of checkDirBlock's loop for an entry past '.' and '..' of a directory
   * that is neither encrypted nor casefolded (no e2fsck counterpart: an optimisation). When
   * the entry passes every check of the loop, with nothing to ask, it does the loop's
   * bookkeeping and returns true; otherwise it returns false having changed nothing, and
   * the loop takes the entry. The duplicate-name test comes last: it records the name.
   */
  #plainEntry(dir: number, buf: Uint8Array, at: number, dx: DxDir | undefined, hashBlock: number, dupsFound: boolean): boolean {
    const c = this.c;
    const v = c.v;
    const entIno = u32(buf, at);
    if (entIno === 0) return true;
    const nameLen = buf[at + 6]!;
    if (entIno === dir || entIno === EXT4_ROOT_INO || entIno < v.firstIno || entIno > v.inodesCount || nameLen === 0) return false;
    const n0 = at + 8;
    if (buf[n0] === 0x2e && (nameLen === 1 || (nameLen === 2 && buf[n0 + 1] === 0x2e))) return false;
    if ((c.inodeBb.count !== 0 && c.inodeBb.test(entIno)) || (c.inodeBad.count !== 0 && c.inodeBad.test(entIno))) return false;
    // The inode's group must call it in use (pass 2's restart otherwise), and pass 1 must have found it so.
    if (entIno >= this.#firstUnused[Math.floor((entIno - 1) / v.inodesPerGroup)]! || !c.inodeUsed.test(entIno)) return false;
    // filetypeMatches, its other tests made above (`plain` requires the filetype feature).
    const ftype = c.ftype.get(entIno);
    if (buf[at + 7] === 0 || buf[at + 7] !== ftype) return false;
    for (let i = n0; i < n0 + nameLen; i++) if (buf[i] === 0x2f || buf[i] === 0) return false;
    // A second link to a directory.
    let si = -1;
    if (ftype === EXT4_FT_DIR) {
      si = c.dirs.find(entIno);
      if (si >= 0 && c.dirs.parent.get(si) !== 0) return false;
    }
    if (!dupsFound && this.#seen.insert(buf, n0, nameLen)) return false;
    if (hashBlock >= 0 && dx !== undefined) this.#noteHash(dx, hashBlock, buf.subarray(n0, n0 + nameLen));
    if (si >= 0) c.dirs.parent.set(si, dir);
    if (c.linkCount.inc(entIno) > 1) c.counters.links++;
    c.counters.total++;
    return true;
  }

  /**
   * Write a repaired directory block with its checksum (ext2fs_write_dir_block4: the leaf
   * tail, else the htree tail). A block with room for neither is written as it is when
   * pass 3A is to rebuild the directory (e2fsck ignores the checksum then), else reported.
   */
  async #writeDirBlock(ino: number, pblk: number, buf: Uint8Array, seed: number): Promise<void> {
    const c = this.c;
    const v = c.v;
    if (v.f.metadataCsum && !sealDirBlock(buf, v.blockSize, seed) && !c.dirsToRehash.has(ino)) {
      c.r.fix(PR_2_WRITE_DIRBLOCK, { blk: pblk, ino, str: "Directory block does not have space for checksum" });
    }
    await c.out.writeBlock(pblk, buf);
    // Path names are read from the directories as they now stand (e2fsck reads through its cache).
    this.names = new PathNamer(c);
  }

  /**
   * e2fsck check_name: '/' and NUL in a name become '.' (`name` is a view of the block, so
   * the repair lands there). Returns whether the name changed.
   */
  async checkName(name: Uint8Array, args: () => Promise<ProblemArgs>, ask: AskFn): Promise<boolean> {
    let fixup = -1;
    let changed = false;
    for (let i = 0; i < name.length; i++) {
      const b = name[i];
      if (b !== 0x2f && b !== 0) continue;
      if (fixup < 0) fixup = ask(PR_2_BAD_NAME, await args()) ? 1 : 0;
      if (fixup === 0) return false;
      name[i] = 0x2e;
      changed = true;
    }
    return changed;
  }

  /**
   * e2fsck check_encryption_policy: an entry of an encrypted directory and its inode's
   * policy. Returns whether the entry is to be cleared.
   */
  async checkEncryptionPolicy(entIno: number, fileType: number, dirPolicy: number, args: () => Promise<ProblemArgs>, ask: AskFn): Promise<boolean> {
    const c = this.c;
    const filePolicy = c.encryption.find(entIno);
    if (filePolicy === dirPolicy) return false;
    if (filePolicy === NO_ENCRYPTION_POLICY) {
      // Only regular files, directories and symlinks must be encrypted (needs_encryption).
      let needs: boolean;
      if (fileType !== 0) needs = fileType === EXT4_FT_REG_FILE || fileType === EXT4_FT_DIR || fileType === EXT4_FT_SYMLINK;
      else if (c.isReg(entIno) || c.isDir(entIno)) needs = true;
      else {
        const got = await readInode(c, entIno);
        const t = (got?.raw.i_mode ?? 0) & S_IFMT;
        needs = t === S_IFREG || t === S_IFDIR || t === S_IFLNK;
      }
      if (!needs) return false;
      return ask(PR_2_UNENCRYPTED_FILE, await args());
    }
    return ask(PR_2_INCONSISTENT_ENCRYPTION_POLICY, await args());
  }

  /** The common case, decided without awaiting: the entry's type is the inode's. */
  filetypeMatches(ino: number, fileType: number): boolean {
    const c = this.c;
    return c.v.f.filetype && fileType !== 0 && c.inodeUsed.test(ino) && !c.inodeBad.test(ino) && c.ftype.get(ino) === fileType;
  }

  /** e2fsck check_filetype: the type the entry is to get, or null to leave it. */
  async checkFiletype(dir: number, ino: number, fileType: number, name: Uint8Array, ask: AskFn): Promise<number | null> {
    const c = this.c;
    if (!c.v.f.filetype) {
      if (fileType === 0) return null;
      return ask(PR_2_CLEAR_FILETYPE, { entry: await this.#entryText(dir, name) }) ? 0 : null;
    }
    let should: number;
    if (c.isDir(ino)) should = 2;
    else if (c.isReg(ino)) should = 1;
    else if (c.inodeBad.test(ino)) should = 0;
    else if (c.inodeUsed.test(ino) && !c.inodeBb.test(ino)) should = c.ftype.get(ino);
    else {
      // e2fsck reads the inode: it may lie where pass 1 did not scan (an unused table tail, a
      // block the bad blocks list names).
      const got = await readInode(c, ino);
      should = got === null ? 0 : fileTypeOfMode(got.raw.i_mode);
    }
    if (fileType === should) return null;
    if (fileType !== 0) return ask(PR_2_BAD_FILETYPE, { entry: await this.#entryText(dir, name), num: should, num2: fileType }) ? should : null;
    // PR_2_SET_FILETYPE asks nothing: e2fsck sets the type in a repairing run (-n keeps quiet).
    if (!c.r.repairing) return null;
    c.r.ask(PR_2_SET_FILETYPE, { entry: await this.#entryText(dir, name), num: should });
    return should;
  }

  /**
   * Drop a directory's htree index: the flag cleared, the directory read as linear from here
   * on and rebuilt in pass 3A. @e2fsprogs clear_htree + e2fsck_rehash_dir_later
   */
  async clearHtree(ino: number, dx: DxDir): Promise<void> {
    const c = this.c;
    const got = await readInode(c, ino);
    if (got !== null) await c.out.writeInode(ino, { i_flags: (got.raw.i_flags & ~EXT4_INDEX_FL) >>> 0 });
    const idx = c.dirs.find(ino);
    if (idx >= 0) c.dirs.flags.set(idx, c.dirs.flags.get(idx) & ~DIR_HTREE);
    dx.numBlocks = 0;
    c.dirsToRehash.add(ino);
  }

  /** e2fsck parse_int_node: an htree root or interior node's entries. */
  async parseIntNode(ino: number, dx: DxDir, cnt: number, buf: Uint8Array, failedCsum: boolean): Promise<void> {
    const c = this.c;
    const r = c.r;
    const bs = c.v.blockSize;
    const clearAndExit = (): Promise<void> => this.clearHtree(ino, dx);
    let ent: number;
    if (cnt === 0) {
      ent = 24 + buf[29]!;
      if (failedCsum && (c.dirsToRehash.has(ino) || r.ask(PR_2_HTREE_ROOT_CSUM_INVALID, { ino }))) return clearAndExit();
    } else {
      ent = 8;
      if (failedCsum && (c.dirsToRehash.has(ino) || r.ask(PR_2_HTREE_NODE_CSUM_INVALID, { ino }))) return clearAndExit();
    }
    let count = u16(buf, ent + 2);
    const limit = u16(buf, ent);
    const csumSize = c.v.f.metadataCsum ? 8 : 0;
    const expectLimit = Math.floor((bs - (csumSize + ent)) / 8);
    if (limit !== expectLimit && r.ask(PR_2_HTREE_BAD_LIMIT, { dir: ino, blkcount: cnt, num: limit })) return clearAndExit();
    if (count > expectLimit) {
      if (r.ask(PR_2_HTREE_BAD_COUNT, { dir: ino, blkcount: cnt, num: count })) return clearAndExit();
      count = expectLimit;
    }
    let minHash = 0xffffffff;
    let maxHash = 0;
    let hash = 0;
    for (let i = 0; i < count; i++) {
      const prev = hash;
      const at = ent + i * 8;
      if (at + 8 > bs) break;
      hash = i === 0 ? 0 : (u32(buf, at) & ~1) >>> 0;
      const blk = u32(buf, at + 4) & EXT4_DX_BLOCK_MASK;
      if (blk >= dx.numBlocks) {
        if (r.ask(PR_2_HTREE_BADBLK, { dir: ino, blk, path: await this.names.dirPath(ino) })) return clearAndExit();
        continue;
      }
      if (hash < prev && r.ask(PR_2_HTREE_HASH_ORDER, { dir: ino, blkcount: cnt })) return clearAndExit();
      if (dx.flags[blk]! & DX_FLAG_REFERENCED) dx.flags[blk] = dx.flags[blk]! | DX_FLAG_DUP_REF;
      else {
        dx.flags[blk] = dx.flags[blk]! | DX_FLAG_REFERENCED;
        dx.parent[blk] = cnt;
      }
      dx.previous[blk] = i !== 0 ? u32(buf, at - 8 + 4) & EXT4_DX_BLOCK_MASK : 0;
      if (hash < minHash) minHash = hash;
      if (hash > maxHash) maxHash = hash;
      dx.nodeMinHash[blk] = hash;
      if (i + 1 < count) dx.nodeMaxHash[blk] = (u32(buf, at + 8) & ~1) >>> 0;
      else {
        dx.nodeMaxHash[blk] = 0xfffffffe;
        dx.flags[blk] = dx.flags[blk] | DX_FLAG_LAST;
      }
      if (i === 0) dx.flags[blk] = dx.flags[blk] | DX_FLAG_FIRST;
    }
    dx.minHash[cnt] = minHash;
    dx.maxHash[cnt] = maxHash;
  }

  /** The end of e2fsck pass 2: every htree's blocks referenced once, hashes within their ranges. */
  async checkHtrees(): Promise<void> {
    const r = this.c.r;
    for (const dx of this.c.dxDirs.values()) {
      if (this.c.dirsToRehash.has(dx.ino) || dx.numBlocks === 0) continue;
      let bad = 0;
      if (dx.flags[0]! & DX_FLAG_REFERENCED) dx.flags[0] = dx.flags[0]! | DX_FLAG_DUP_REF;
      else dx.flags[0] = dx.flags[0]! | DX_FLAG_REFERENCED;
      updateParents(dx, DX_DIRBLOCK_LEAF);
      updateParents(dx, DX_DIRBLOCK_NODE);
      for (let b = 0; b < dx.numBlocks; b++) {
        const a = { dir: dx.ino, blkcount: b, group: dx.parent[b]! };
        if (!(dx.flags[b]! & DX_FLAG_FIRST) && dx.minHash[b]! < dx.nodeMinHash[b]!) {
          r.fix(PR_2_HTREE_MIN_HASH, a);
          bad++;
        }
        if (dx.type[b] === DX_DIRBLOCK_LEAF) {
          let depth = 0;
          let cur = b;
          while (dx.type[cur] !== DX_DIRBLOCK_ROOT && depth < 32000) {
            cur = dx.parent[cur]!;
            depth++;
            if (cur < 0 || cur >= dx.numBlocks) break;
          }
          if (depth !== dx.depth) {
            r.fix(PR_2_HTREE_BAD_DEPTH, { ...a, num: dx.depth });
            bad++;
          }
        }
        if (b !== 0 && dx.maxHash[b]! > dx.nodeMaxHash[b]!) {
          r.fix(PR_2_HTREE_MAX_HASH, a);
          bad++;
        }
        if (!(dx.flags[b]! & DX_FLAG_REFERENCED)) {
          r.fix(PR_2_HTREE_NOTREF, a);
          bad++;
        } else if (dx.flags[b]! & DX_FLAG_DUP_REF) {
          r.fix(PR_2_HTREE_DUPREF, a);
          bad++;
        }
      }
      if (bad > 0 && r.ask(PR_2_HTREE_CLEAR, { dir: dx.ino, path: await this.names.dirPath(dx.ino) })) await this.clearHtree(dx.ino, dx);
    }
  }
}

/** e2fsck update_parents: the first and last child set their parent's hash range. */
function updateParents(dx: DxDir, type: number): void {
  for (let b = 0; b < dx.numBlocks; b++) {
    if (dx.type[b] !== type) continue;
    const p = dx.parent[b]!;
    if (p < 0 || p >= dx.numBlocks) continue;
    if (dx.flags[b]! & DX_FLAG_FIRST) {
      dx.minHash[p] = dx.minHash[b]!;
      const prev = dx.previous[p]!;
      if (prev !== 0) dx.nodeMaxHash[prev] = dx.minHash[p]!;
    }
    if (dx.flags[b]! & DX_FLAG_LAST) dx.maxHash[p] = dx.maxHash[b]!;
  }
}

/**
 * e2fsck_process_bad_inode: the fields pass 1 found suspicious, reported with the entry's
 * path (pass 2) or for an unattached inode (pass 4, `dir` 0), and repaired when the answer
 * is yes: an inode of no valid type (or an illegal device, FIFO, socket or symlink) is
 * deallocated, and the function returns true (the caller then clears its entry, or in
 * pass 4 moves on); bad fields are zeroed. With every problem fixed the inode is no longer
 * "bad". `canClear` false (an entry that cannot be rewritten) leaves deallocation undone.
 */
export async function processBadInode(c: CheckContext, names: PathNamer, dir: number, ino: number, canClear = true): Promise<boolean> {
  const v = c.v;
  const r = c.r;
  const got = await readInode(c, ino);
  if (got === null) return false;
  const { raw, bytes } = got;
  const path = await names.pathname(dir, ino);
  let fileAcl = raw.i_file_acl_lo + (v.f.is64bit ? raw.l_i_file_acl_high * 2 ** 32 : 0);
  const a = { ino, dir, path };
  const fields: Partial<RawInode> = {};
  let notFixed = 0;
  /** ext2fs_file_acl_block_set(fs, inode, 0) */
  const clearAcl = (): void => {
    fields.i_file_acl_lo = 0;
    raw.i_file_acl_lo = 0;
    if (v.f.is64bit) {
      fields.l_i_file_acl_high = 0;
      raw.l_i_file_acl_high = 0;
    }
    fileAcl = 0;
  };
  if (fileAcl !== 0 && !v.f.xattr) {
    if (r.ask(PR_2_FILE_ACL_ZERO, { ...a, num: fileAcl })) clearAcl();
    else notFixed++;
  }
  const type = raw.i_mode & S_IFMT;
  let problem: ProblemDef | undefined;
  if (type !== S_IFDIR && type !== S_IFREG && type !== S_IFCHR && type !== S_IFBLK && type !== S_IFLNK && type !== S_IFIFO && type !== S_IFSOCK) {
    problem = PR_2_BAD_MODE;
  } else if (type === S_IFCHR && !checkDeviceInode(raw)) problem = PR_2_BAD_CHAR_DEV;
  else if (type === S_IFBLK && !checkDeviceInode(raw)) problem = PR_2_BAD_BLOCK_DEV;
  else if (type === S_IFIFO && !checkDeviceInode(raw)) problem = PR_2_BAD_FIFO;
  else if (type === S_IFSOCK && !checkDeviceInode(raw)) problem = PR_2_BAD_SOCKET;
  else if (type === S_IFLNK && !(await checkSymlink(c, ino, raw, bytes, fileAcl))) problem = PR_2_INVALID_SYMLINK;
  if (problem !== undefined) {
    const pa = { ...a, mode: raw.i_mode };
    if (canClear ? r.ask(problem, pa) : r.fix(problem, pa)) {
      // The field fixes asked so far are dropped with the inode, as e2fsck drops them.
      const err = await deallocateInode(c, ino);
      if (err !== undefined) {
        if (err.error === "ea") r.fix(PR_2_ADJ_EA_REFCOUNT, { blk: err.blk, ino, str: err.str });
        else r.fix(PR_2_DEALLOC_INODE, { ino, str: err.str });
      }
      return true;
    }
    notFixed++;
  }
  if (raw.i_obso_faddr !== 0) {
    if (r.ask(PR_2_FADDR_ZERO, { ...a, num: raw.i_obso_faddr })) fields.i_obso_faddr = 0;
    else notFixed++;
  }
  if (v.sb.s_creator_os === 0 && !v.f.hugeFile && raw.l_i_blocks_high !== 0) {
    // e2fsck counts a declined i_blocks_hi as fixed.
    if (r.ask(PR_2_BLOCKS_HI_ZERO, { ...a, num: raw.l_i_blocks_high })) fields.l_i_blocks_high = 0;
  }
  if (v.sb.s_creator_os === 0 && !v.f.is64bit && raw.l_i_file_acl_high !== 0) {
    if (r.ask(PR_2_I_FILE_ACL_HI_ZERO, { ...a, num: raw.l_i_file_acl_high })) fields.l_i_file_acl_high = 0;
    else notFixed++;
  }
  if (fileAcl !== 0 && (fileAcl < v.firstDataBlock || fileAcl >= v.blocksCount)) {
    if (r.ask(PR_2_FILE_ACL_BAD, { ...a, num: fileAcl })) clearAcl();
    else notFixed++;
  }
  if (raw.i_size_high !== 0 && !v.f.largedir && type === S_IFDIR) {
    if (r.ask(PR_2_DIR_SIZE_HIGH_ZERO, { ...a, num: raw.i_size_high })) fields.i_size_high = 0;
    else notFixed++;
  }
  if (Object.keys(fields).length > 0) await c.out.writeInode(ino, fields);
  if (notFixed === 0) c.inodeBad.clear(ino);
  return false;
}

/** Reporter.ask where the repair can be made, Reporter.fix where it cannot. */
type AskFn = (d: ProblemDef, a: ProblemArgs) => boolean;


/**
 * e2fsck salvage_directory: make something of the entry at `offset` (relative to `base`)
 * that failed the record-length checks, in a block of `blockLen` bytes. Returns the offset
 * to go on from (the block size when the rest of the block went to the previous entry).
 */
export function salvageDirectory(
  buf: Uint8Array, base: number, offset: number, prev: number, blockLen: number, bs: number, inodesCount: number, hashInDirent: boolean,
): number {
  const d = base + offset;
  let recLen: number;
  let nameLen: number;
  // Too little room left for an entry header: let the previous entry take it.
  if (blockLen - offset < 8) {
    nameLen = 0;
    recLen = blockLen - offset;
  } else {
    nameLen = buf[d + 6]!;
    recLen = recLenFromDisk(u16(buf, d + 4), bs);
  }
  const left = blockLen - offset - recLen;
  const extra = hashInDirent ? 8 : 0;
  // An 8-byte entry: move the rest of the block up over the hole.
  if (left >= dirRecLen(1) + extra && recLen === 8) {
    buf.copyWithin(d, d + 8, d + 8 + left);
    buf.fill(0, d + left, d + left + 8);
    return offset;
  }
  // The entry runs past the end but its name fits: cut it at the end.
  if (left < 0 && recLen + left > 8 && dirRecLen(nameLen) + extra <= recLen + left && u32(buf, d) <= inodesCount && strnlen(buf, d + 8, nameLen) === nameLen) {
    put16(buf, d + 4, recLenToDisk(recLen + left, bs));
    return offset;
  }
  // A plausible length: the previous entry absorbs this one.
  if (prev >= 0 && recLen !== 0 && recLen % 4 === 0 && offset + recLen <= blockLen) {
    put16(buf, prev + 4, recLenToDisk(recLenFromDisk(u16(buf, prev + 4), bs) + recLen, bs));
    return offset + recLen;
  }
  // Else the rest of the block is lost: to the previous entry, or as one empty entry.
  if (prev >= 0) {
    put16(buf, prev + 4, recLenToDisk(recLenFromDisk(u16(buf, prev + 4), bs) + blockLen - offset, bs));
    return bs;
  }
  put16(buf, d + 4, recLenToDisk(blockLen - offset, bs));
  buf[d + 6] = 0;
  buf[d + 7] = 0;
  put32(buf, d, 0);
  return offset;
}

/** strnlen over a name in a buffer (bytes past the buffer read as NUL). */
function strnlen(buf: Uint8Array, at: number, n: number): number {
  for (let i = 0; i < n; i++) if ((buf[at + i] ?? 0) === 0) return i;
  return n;
}

/**
 * e2fsck insert_dirent_tail: end the entry chain at the tail's place and put a tail there.
 * Returns false when the last entry has no room to give (as e2fsck measures it, by the
 * block's first entry's name).
 */
export function insertDirentTail(buf: Uint8Array, bs: number): boolean {
  const top = bs - 12;
  let d = 0;
  for (;;) {
    const rl = u16(buf, d + 4);
    if (rl === 0 || (rl & 3) !== 0 || d + rl > top) break;
    d += rl;
  }
  if (d !== top) {
    const minSize = dirRecLen(buf[6]!);
    if (minSize > top - d) return false;
    put16(buf, d + 4, top - d);
  }
  if (u32(buf, top) !== 0 || u16(buf, top + 4) !== 12 || u16(buf, top + 6) !== 0xde00) {
    buf.fill(0, top, bs);
    put16(buf, top + 4, 12);
    put16(buf, top + 6, 0xde00);
  }
  return true;
}

/** Can ext2fs_dir_block_csum_set seal this block (a leaf tail, or a sane htree count/limit with room for its tail)? */
function canSealDirBlock(buf: Uint8Array, bs: number): boolean {
  if (direntTail(buf, bs) === "ok") return true;
  const at = dxCountOffset(buf, bs);
  return at >= 0 && at + u16(buf, at) * 8 <= bs - 8;
}

/** ext2fs_dir_block_csum_set: seal a leaf's tail or an htree block's dx_tail. False when neither fits. */
export function sealDirBlock(buf: Uint8Array, bs: number, seed: number): boolean {
  if (direntTail(buf, bs) === "ok") {
    put32(buf, bs - 4, dirBlockChecksum(buf, bs, seed));
    return true;
  }
  const at = dxCountOffset(buf, bs);
  if (at < 0) return false;
  const limit = u16(buf, at);
  const count = u16(buf, at + 2);
  if (at + limit * 8 > bs - 8) return false;
  const tail = at + limit * 8;
  put32(buf, tail + 4, dxBlockChecksum(buf, at, count, tail, seed));
  return true;
}

/**
 * Where the first byte that does not start a well-formed UTF-8 sequence is, or -1; stops
 * at a NUL as e2fsprogs' utf8_validate does. (Unassigned code points, which strict mode
 * also refuses, are not known here.)
 */
export function firstBadUtf8(b: Uint8Array): number {
  return scanUtf8(b, true);
}

/**
 * Is `b` well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF)?
 * e2fsck's strict-mode check (utf8_validate) also refuses code points Unicode 12.1 leaves
 * unassigned; this one does not know the tables.
 */
export function wellFormedUtf8(b: Uint8Array): boolean {
  return scanUtf8(b, false) === -1;
}

/** The first byte that does not start a well-formed sequence, or -1; `stopAtNul`: a NUL ends the name. */
function scanUtf8(b: Uint8Array, stopAtNul: boolean): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    if (c === 0 && stopAtNul) return -1;
    let n: number;
    let min: number;
    let cp: number;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      min = 0x80;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      min = 0x800;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      min = 0x10000;
      cp = c & 0x07;
    } else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}
