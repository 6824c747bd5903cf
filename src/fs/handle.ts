/**
 * A handle: one atomic metadata change in progress (@kernel handle_t, fs/ext4/ext4_jbd2.c).
 *
 * Every engine function that modifies metadata takes a Handle and goes through it to
 * touch blocks: `getWriteAccess` before changing a block, `dirtyMetadata` after. Today
 * the handle pins the blocks it touched and marks them dirty in the buffer cache, and
 * they are written in place at sync; when the journal lands (a later milestone) the same
 * calls become jbd2's, and no caller changes.
 *
 * Invariant: between `getWriteAccess(b)` and `stop()`, block b stays cached (pinned), so
 * a buffer obtained from the handle may be held across awaits by this operation.
 */

import { assert } from "../debug/assert.js";
import type { Task } from "../sync/task.js";
import type { Ext4Fs } from "./super.js";

export class Handle {
  readonly fs: Ext4Fs;
  /** The operation this handle belongs to (the kernel's `current`): lock ownership and scheduling points. */
  readonly task: Task | null;
  readonly #pinned = new Map<number, Uint8Array>();
  #stopped = false;

  constructor(fs: Ext4Fs, task: Task | null = null) {
    assert(!fs.readOnly, "Handle on a read-only volume");
    this.fs = fs;
    this.task = task;
  }

  /**
   * A scheduling point: where an explorer may let other operations run (src/sync/scheduler.ts).
   * Free in production (no await when no scheduler is installed).
   */
  point(label: string): Promise<void> | undefined {
    return this.fs.syncDomain.scheduler.point(this.task, label);
  }

  /** The block's buffer, pinned for this handle's lifetime. @kernel ext4_journal_get_write_access */
  async getWriteAccess(block: number): Promise<Uint8Array> {
    assert(!this.#stopped, "Handle used after stop");
    const held = this.#pinned.get(block);
    if (held !== undefined) return held;
    const data = await this.fs.cache.pin(block);
    this.#pinned.set(block, data);
    return data;
  }

  /**
   * A block whose old contents do not matter (fresh allocation): zeroed, no read. A block
   * this handle already holds (freed and allocated again within the operation) is simply
   * zeroed, as sb_getblk returns the same buffer. @kernel sb_getblk + ext4_journal_get_create_access
   */
  async getCreateAccess(block: number): Promise<Uint8Array> {
    assert(!this.#stopped, "Handle used after stop");
    const held = this.#pinned.get(block);
    if (held !== undefined) {
      held.fill(0);
      return held;
    }
    const data = await this.fs.cache.pinNew(block);
    data.fill(0);
    this.#pinned.set(block, data);
    return data;
  }

  /** Record that the handle changed `block` (obtained from this handle). @kernel ext4_handle_dirty_metadata */
  dirtyMetadata(block: number): void {
    assert(this.#pinned.has(block), () => `dirtyMetadata(${block}) without write access`);
    this.fs.cache.markDirty(block);
  }

  /** Release every block; the handle is done. @kernel ext4_journal_stop */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const block of this.#pinned.keys()) this.fs.cache.unpin(block);
    this.#pinned.clear();
  }
}

/** Run `fn` in a handle, stopping it however `fn` ends. */
export async function withHandle<T>(fs: Ext4Fs, fn: (h: Handle) => Promise<T>, task: Task | null = null): Promise<T> {
  const h = new Handle(fs, task);
  try {
    return await fn(h);
  } finally {
    h.stop();
  }
}
