/**
 * Test support: the seed's bug, kept on purpose. An allocator wrapper that decides how to
 * charge a block from shared per-inode state, as Linux did from 2010 to 2014, for tests
 * that must show their detection works (the seed test's fixed schedule, the explorer's
 * power test). Installed through VolumeOptions.engineDeps; never used by the engine.
 */

import type { BlockAllocator } from "../src/fs/alloc_request.js";
import { chargeBlocks } from "../src/fs/file_write.js";
import { inodeCore } from "../src/fs/inode_core.js";
import type { NameiDeps } from "../src/fs/namei_write.js";
import { chargeGrantedBlocks } from "../src/fs/quota_charge.js";

/**
 * The 2011 design, deliberately: writeback sets a per-inode state bit while it maps delayed
 * data (EXT4_STATE_DELALLOC_RESERVED), and the metadata-allocation wrapper reads that bit to
 * decide that a block "was allocated during writeback" and charges it (ext4_new_meta_blocks's
 * dquot_alloc_block_nofail) on top of the charge its caller makes.
 */
export function sharedStateDeps(deps: NameiDeps): NameiDeps {
  const delallocReserved = new Set<number>(); // per-inode state, shared by every operation on the inode
  const alloc: BlockAllocator = {
    async alloc(h, req) {
      if (req.funding.kind === "delalloc") {
        delallocReserved.add(req.ino);
        try {
          return await deps.alloc.alloc(h, req);
        } finally {
          delallocReserved.delete(req.ino);
        }
      }
      const got = await deps.alloc.alloc(h, req);
      if (req.purpose !== "data" && delallocReserved.has(req.ino)) {
        // Read from shared state, wrong for this request: "metadata allocated during
        // writeback", charged again to i_blocks and (never-fail) to quota.
        const inode = inodeCore(h.fs, req.ino)?.info;
        if (inode != null) chargeBlocks(h.fs, inode, got.len);
        chargeGrantedBlocks(h.fs, { ...req, funding: { kind: "chargeNow", quota: "nofail", pool: "emergency" } }, got.len);
      }
      return got;
    },
    free: (h, ino, pblk, count, dquots) => deps.alloc.free(h, ino, pblk, count, dquots),
  };
  return { ...deps, alloc };
}
