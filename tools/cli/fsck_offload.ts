/**
 * A helper thread for pass 1's inode block sanity check, for the CLI: while pass 1 checks
 * one chunk of inode table on the main thread, the helper judges the chunks read ahead, and
 * the main thread judges whatever slices the helper has not reached when it needs them.
 * e2fsck does both on one CPU; this uses a second one when the machine has it. The engine
 * stays free of Node (src/fsck/sanity.ts defines the shared ring and the pure check).
 *
 * The ring is in SharedArrayBuffers: sent to the thread once, then a message names each
 * slot loaded; nothing comes back but the verdicts written into the ring.
 */

import { openSync, readSync, closeSync } from "node:fs";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { SanityGeometry, SanityHelper, SanityHelperFactory, SanitySlot } from "../../src/fsck/sanity.js";

/** Below this many inodes to scan, a thread's start-up costs more than it saves. */
export const SANITY_HELPER_MIN_INODES = 65_536;

/** The messages of the thread: the ring once, then a slot to judge at a time. */
export type SanityMessage = { readonly slots: readonly SanitySlot[]; readonly g: SanityGeometry } | { readonly slot: number };

/**
 * A factory for CheckOptions.sanityHelper: a thread for scans of at least `minInodes`
 * inodes, on machines with 2+ CPUs; none (the main thread judges alone) if the thread
 * cannot be started. With `prestart` the thread starts now, so its start-up overlaps
 * opening the volume; it is stopped if the scan turns out too small. The thread never
 * keeps the process alive.
 */
export function sanityHelpers(minInodes = SANITY_HELPER_MIN_INODES, prestart = false): SanityHelperFactory {
  const usable = availableParallelism() >= 2;
  let early = usable && prestart ? tryStart() : undefined;
  return (inodes, ring) => {
    const w = early ?? (usable && inodes >= minInodes ? tryStart() : undefined);
    early = undefined;
    if (w === undefined) return undefined;
    if (inodes < minInodes) {
      void w.terminate();
      return undefined;
    }
    return helperOn(w, { slots: ring.slots, g: ring.g });
  };
}

/**
 * Inodes in use on the ext2/3/4 image at `path` from its superblock (s_inodes_count less
 * s_free_inodes_count), 0 if it cannot be read: a hint for starting the helper early.
 */
export function inodesInUse(path: string): number {
  try {
    const fd = openSync(path, "r");
    try {
      const b = Buffer.alloc(20);
      if (readSync(fd, b, 0, 20, 1024) !== 20) return 0;
      return Math.max(0, b.readUInt32LE(0) - b.readUInt32LE(16));
    } finally {
      closeSync(fd);
    }
  } catch {
    return 0;
  }
}

function tryStart(): Worker | undefined {
  try {
    // The thread allocates next to nothing (it reads the shared ring): small heap limits
    // keep its fixed cost down (~1.5 MB of the ~10 MB a default worker adds to RSS).
    const w = new Worker(new URL("./fsck_offload_worker.js", import.meta.url), {
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 8, codeRangeSizeMb: 2, stackSizeMb: 1 },
    });
    w.unref();
    w.on("error", () => undefined); // the scan notices a dead helper by the slices it stops taking
    return w;
  } catch {
    return undefined;
  }
}

function helperOn(w: Worker, ring: SanityMessage): SanityHelper {
  w.postMessage(ring);
  return {
    post(slot) {
      const m: SanityMessage = { slot };
      w.postMessage(m);
    },
    async close() {
      await w.terminate();
    },
  };
}
