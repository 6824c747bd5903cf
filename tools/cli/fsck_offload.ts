/**
 * Pass 1's inode block sanity check (every inode's checksum) in a worker thread, for the
 * CLI: while pass 1 checks one chunk of inode table on the main thread, the worker sums the
 * next. e2fsck does both on one CPU; this uses a second one when the machine has it. The
 * engine stays free of Node (src/fsck/sanity.ts defines the interface and the pure check).
 *
 * Chunks travel by transfer (no copy): the main thread's buffer is detached until the
 * worker sends it back with the verdicts.
 */

import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { SanityGeometry, SanityResult, SanityWorker, SanityWorkerFactory } from "../../src/fsck/sanity.js";

/** Below this many inodes to scan, a thread's start-up costs more than it saves. */
export const SANITY_WORKER_MIN_INODES = 65_536;

/** What the main thread sends: a chunk of inode table (its whole buffer) and where it is. */
export interface SanityRequest {
  readonly id: number;
  readonly buffer: ArrayBuffer;
  readonly length: number;
  readonly firstIno: number;
  readonly count: number;
  readonly g: SanityGeometry;
}

/** What the worker sends back: the buffer, and inodeBlockSanity's result. */
export interface SanityReply extends SanityResult {
  readonly id: number;
  readonly buffer: ArrayBuffer;
  readonly length: number;
}

/**
 * A factory for CheckOptions.sanityWorker: a worker for scans of at least `minInodes` inodes,
 * on machines with 2+ CPUs; none (the main thread judges) if the thread cannot be started.
 */
export function sanityWorkers(minInodes = SANITY_WORKER_MIN_INODES): SanityWorkerFactory {
  return (inodes) => {
    if (inodes < minInodes || availableParallelism() < 2) return undefined;
    try {
      return startSanityWorker();
    } catch {
      return undefined;
    }
  };
}

export function startSanityWorker(): SanityWorker {
  const worker = new Worker(new URL("./fsck_offload_worker.js", import.meta.url));
  const waiting = new Map<number, { resolve: (r: SanityResult & { buf: Uint8Array }) => void; reject: (e: Error) => void }>();
  let failed: Error | undefined;
  let next = 0;
  const failAll = (e: Error): void => {
    failed ??= e;
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  };
  worker.on("message", (m: SanityReply) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    w?.resolve({ buf: new Uint8Array(m.buffer, 0, m.length), csums: m.csums, insane: m.insane });
  });
  worker.on("error", failAll);
  worker.on("exit", (code) => failAll(new Error(`inode sanity worker exited (${code})`)));
  return {
    run(buf, firstIno, count, g) {
      if (failed !== undefined) return Promise.reject(failed);
      if (buf.byteOffset !== 0 || !(buf.buffer instanceof ArrayBuffer)) return Promise.reject(new Error("inode sanity worker: the chunk must start its own ArrayBuffer"));
      const id = next++;
      const req: SanityRequest = { id, buffer: buf.buffer, length: buf.length, firstIno, count, g };
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        worker.postMessage(req, [buf.buffer as ArrayBuffer]);
      });
    },
    async close() {
      await worker.terminate();
    },
  };
}
