/**
 * Writing group descriptors back (@kernel ext4_group_desc_csum_set and the
 * ext4_handle_dirty_metadata of the descriptor block in ext4_mb_mark_diskspace_used,
 * ext4_free_blocks, __ext4_new_inode).
 */

import { groupDescChecksum } from "../format/checksum.js";
import { groupDesc, type GroupDesc } from "../format/group_desc.js";
import type { Handle } from "./handle.js";

/** Load phase: the descriptor block of group `g`, held by `h`. */
export function loadGroupDescBlock(h: Handle, g: number): Promise<Uint8Array> {
  return h.getWriteAccess(h.fs.groupDescPlace(g).block);
}

/**
 * Encode group `g`'s in-core descriptor into its descriptor block (already held by `h`,
 * passed as `descBlock`) with a fresh checksum, and dirty it. Synchronous, for use
 * inside an allocator's commit section.
 * @kernel ext4_group_desc_csum_set + ext4_handle_dirty_metadata
 */
export function commitGroupDesc(h: Handle, g: number, descBlock: Uint8Array): void {
  const fs = h.fs;
  const gd = fs.group(g);
  const { block, offset } = fs.groupDescPlace(g);
  const raw = descBlock.subarray(offset, offset + fs.descSize);
  groupDesc.encode(gd, raw, 0, fs.descSize);
  gd.bg_checksum = groupDescChecksum(raw, g, {
    csumSeed: fs.csumSeed,
    uuid: fs.sb.s_uuid,
    metadataCsum: fs.features.metadataCsum,
    gdtCsum: fs.features.gdtCsum,
    descSize: fs.descSize,
    is64bit: fs.features.is64bit,
  });
  groupDesc.encode({ bg_checksum: gd.bg_checksum }, raw, 0, fs.descSize);
  h.dirtyMetadata(block);
}

/**
 * Change group `g`'s descriptor in handle `h`: `mutate` edits the in-core record, which
 * is then committed (no await between the edit and the commit).
 */
export async function updateGroupDesc(h: Handle, g: number, mutate: (gd: GroupDesc) => void): Promise<void> {
  const descBlock = await loadGroupDescBlock(h, g);
  mutate(h.fs.group(g));
  commitGroupDesc(h, g, descBlock);
}
