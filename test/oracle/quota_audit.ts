/**
 * Test support for quota volumes: images made from ext4ts mkfs (no kernel, no root), and
 * syncAndAudit, the live-volume audit the quota tests end with. The audit itself (i_blocks
 * against referenced blocks, quota usage against per-id sums, reservations after sync) lives
 * in tools/explorer/audit.ts, which the explorer runs after every schedule; it is re-exported
 * here for the tests that import it from this file.
 */

import type { Volume } from "../../src/api/promises.js";
import { MemoryDevice } from "../../src/device/memory.js";
import { auditVolume, compareQuota, reservationProblems } from "../../tools/explorer/audit.js";
import { mkfsDevice, type MkfsOptions } from "../../tools/mkfs/mkfs.js";

export { auditVolume, compareQuota, referencedBlocks, reservationProblems, type Audit, type Usage } from "../../tools/explorer/audit.js";

/** A fresh image from ext4ts mkfs, as bytes (those mkfs writes to a new image file of SIZE). */
export async function mkfsBytes(size: string, opts: MkfsOptions = {}): Promise<Uint8Array> {
  const dev = new MemoryDevice(2 ** 40); // sparse: costs what mkfs writes; SIZE sets the filesystem's size
  const r = await mkfsDevice(dev, {
    size, quiet: true, uuid: "3c6cbe56-1f1b-4e1a-9d55-0c2b6a0f7a11", extended: ["hash_seed=8f3e2d1c-0b4a-4c5d-8e6f-7a8b9c0d1e2f"], now: 1_700_000_000, ...opts,
    knownZero: true,
  });
  return dev.read(0, r.geometry.blocksCount * r.geometry.blockSize);
}

/** A device over a copy of `bytes`. */
export function deviceOf(bytes: Uint8Array): MemoryDevice {
  return MemoryDevice.from(bytes.slice());
}

/**
 * Sync `vol`, then everything wrong with it while still mounted: reservations left, blocks
 * charged differently from what the inodes reference, quota usage differing from the sums.
 * Empty when all holds.
 */
export async function syncAndAudit(vol: Volume): Promise<string[]> {
  await vol.sync();
  const live = await auditVolume(vol.fs);
  const quota = vol.quota === null ? ["the volume has no quota loaded"] : await compareQuota(vol.quota, live.usage, { live: true });
  return [...reservationProblems(vol.fs), ...live.problems, ...quota];
}
