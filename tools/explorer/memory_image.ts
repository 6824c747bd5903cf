/**
 * The image the streamtest runs on when no image is given: ext4 with quota (user, group,
 * project), 4 KiB blocks and 256-byte inodes (so small xattrs fit in the inode and the
 * spill attribute needs the external block, as on Ceph's OSDs), made by ext4ts mkfs in
 * memory. Deterministic (fixed UUID, hash seed and time), so explored schedules replay.
 */

import { MemoryDevice } from "../../src/device/memory.js";
import { mkfsDevice } from "../mkfs/mkfs.js";
import type { StreamtestOptions } from "./streamtest.js";

export const STREAM_MKFS_FEATURES = ["quota", "project"] as const;

/** Bytes an image needs for the workloads, with room for metadata, the journal and slack. */
export function imageBytesFor(...ws: Omit<StreamtestOptions, "seed">[]): number {
  let most = 16 << 20;
  for (const w of ws) {
    const perObject = w.objectBytes * (1 + w.updates) + 3 * 4096; // data, overwrites past EOF, xattr block, dir share
    most = Math.max(most, Math.ceil((w.objects * perObject * 1.5) / (1 << 20)) * (1 << 20) + (32 << 20));
  }
  return most;
}

/** A fresh in-memory ext4 image of `bytes` for the streamtest. */
export async function streamImage(bytes: number): Promise<MemoryDevice> {
  const dev = new MemoryDevice(bytes);
  await mkfsDevice(dev, {
    quiet: true,
    knownZero: true,
    fsType: "ext4",
    blockSize: "4096",
    inodeSize: "256",
    bytesPerInode: "16384",
    features: [...STREAM_MKFS_FEATURES],
    extended: ["quotatype=usrquota:grpquota:prjquota,hash_seed=8f3e2d1c-0b4a-4c5d-8e6f-7a8b9c0d1e2f"],
    uuid: "3c6cbe56-1f1b-4e1a-9d55-0c2b6a0f7a11",
    label: "streamtest",
    now: 1_700_000_000,
  });
  return dev;
}
