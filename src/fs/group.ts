/**
 * Writing group descriptors back (@kernel ext4_group_desc_csum_set and the
 * ext4_handle_dirty_metadata of the descriptor block in ext4_mb_mark_diskspace_used,
 * ext4_free_blocks, __ext4_new_inode).
 */

import { groupDescChecksum } from "../format/checksum.js";
import { groupDesc, type GroupDesc } from "../format/group_desc.js";
import type { Handle } from "./handle.js";

/**
 * Change group `g`'s descriptor in handle `h`: `mutate` edits the in-core record, which
 * is then encoded into its block with a fresh checksum. Synchronous between the write
 * access and the dirtying, so no other operation sees a half-updated descriptor.
 */
export async function updateGroupDesc(h: Handle, g: number, mutate: (gd: GroupDesc) => void): Promise<void> {
  const fs = h.fs;
  const gd = fs.group(g);
  const { block, offset } = fs.groupDescPlace(g);
  const data = await h.getWriteAccess(block);
  mutate(gd);
  const raw = data.subarray(offset, offset + fs.descSize);
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
