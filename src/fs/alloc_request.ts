/**
 * The allocation request: what is asked for, for whom, and how it is paid for.
 *
 * This is the project's seed rule in code (DEVELOPERS.md; Linux 6d6a435190bd and the
 * 3.18 fix that replaced EXT4_STATE_DELALLOC_RESERVED with the request flag
 * EXT4_MB_DELALLOC_RESERVED): how a block is charged travels WITH the request, is chosen
 * by the caller that knows, and is never read from per-inode or per-volume state. A child
 * request (an extent-tree block needed to insert a data extent) derives its funding from
 * its parent request, not from the inode. Requests are frozen at construction, so every
 * stage (free-space check, quota charge, reservation claim, rollback) sees the same answer.
 *
 * @kernel struct ext4_allocation_request (fs/ext4/ext4.h), EXT4_MB_* flags
 */

import { assert } from "../debug/assert.js";
import type { Handle } from "./handle.js";
import type { InodeDquots } from "./quota.js";

/** How an allocation is paid for. A discriminated union, not a bitmask: flags alias (2014's EXT4_EX_NOCACHE). */
export type Funding =
  /** Space and quota are checked and charged now; ENOSPC/EDQUOT reach the caller (xattr block, data without delalloc, fallocate). */
  | { readonly kind: "chargeNow"; readonly quota: "enforce" }
  /** Must not fail for space or quota: may use the emergency pool, quota charged without limit (tree blocks during writeback). */
  | { readonly kind: "chargeNow"; readonly quota: "nofail"; readonly pool: "emergency" }
  /**
   * Space and quota were reserved by write() for delayed pages (inode_core.ts): no admission
   * test, no quota charge; the caller's claim retires `reservation` clusters (at least len).
   * @kernel EXT4_MB_DELALLOC_RESERVED
   */
  | { readonly kind: "delalloc"; readonly reservation: number };

/** What the blocks are for; decides the goal heuristics and what gets charged to i_blocks. */
export type AllocPurpose = "data" | "dirBlock" | "extentNode" | "indirect" | "xattrBlock";

export interface AllocRequest {
  /** Inode charged for the blocks (0 for volume metadata with no owner). */
  readonly ino: number;
  readonly purpose: AllocPurpose;
  /** Preferred first block (near the inode's group or its last extent); 0 = no preference. */
  readonly goal: number;
  /** Blocks wanted; the allocator may return fewer, but at least `minLen`. */
  readonly len: number;
  readonly minLen: number;
  readonly funding: Funding;
  /**
   * Whom the blocks are charged to: the owner's dquots, loaded by whoever builds the request
   * before it is built (quota_charge.ts inodeDquots). null: nobody (no quota on the volume,
   * S_NOQUOTA inodes such as the quota files, volume metadata). A child request (tree block,
   * pointer block) carries its parent's. The funding decides HOW they are charged.
   */
  readonly dquots: InodeDquots | null;
}

let nextId = 1;

/** A frozen request. Debug builds can match grants to requests by `id`. */
export function allocRequest(r: Omit<AllocRequest, "minLen"> & { minLen?: number }): AllocRequest & { readonly id: number } {
  assert(Number.isSafeInteger(r.len) && r.len >= 1, () => `Invalid allocation length ${r.len}`);
  const minLen = r.minLen ?? 1;
  assert(minLen >= 1 && minLen <= r.len, () => `Invalid minimum length ${minLen} for ${r.len} blocks`);
  return Object.freeze({ ...r, minLen, id: nextId++ });
}

/**
 * The funding of a request made on behalf of `parent` (e.g. an extent-tree block needed
 * to insert the parent's data extent): inherited from the parent request, never looked
 * up on the inode. A delalloc parent's metadata is charged now but must not fail.
 * @kernel ext4_ext_insert_extent passing EXT4_MB_DELALLOC_RESERVED|EXT4_MB_USE_RESERVED
 */
export function childFunding(parent: AllocRequest): Funding {
  switch (parent.funding.kind) {
    case "delalloc":
      return { kind: "chargeNow", quota: "nofail", pool: "emergency" };
    case "chargeNow":
      return parent.funding;
  }
}

/** The allocator as the mapping code sees it (balloc.ts implements it; tests may fake it). */
export interface BlockAllocator {
  /** At least req.minLen, at most req.len blocks, contiguous. ENOSPC (or EDQUOT later) when impossible. */
  alloc(h: Handle, req: AllocRequest): Promise<{ pblk: number; len: number }>;
  /**
   * Give back blocks of inode `ino`, uncharging `dquots` (the owner's, or null when the blocks
   * were never charged: no quota, S_NOQUOTA, or delalloc blocks not yet claimed) in the same
   * commit as the bitmap change. @kernel ext4_free_blocks -> dquot_free_block
   */
  free(h: Handle, ino: number, pblk: number, count: number, dquots: InodeDquots | null): Promise<void>;
}
