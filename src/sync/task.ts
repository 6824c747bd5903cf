/**
 * Task: the identity of one logical operation (the kernel's `current`). The public API creates
 * one per call ("write ino 12") and passes it down explicitly to every lock acquire; there is
 * no AsyncLocalStorage (Node-only), so a task is an argument, like the kernel's handle_t.
 *
 * What is atomic in this engine: code between two `await`s runs alone; a lock is needed only
 * where state must stay stable across an `await`. A task is one sequential thread of such
 * sections: it waits for at most one lock at a time, and must not be shared by branches that
 * run concurrently (Promise.all over one task); give each branch its own task.
 *
 * A task records the locks it holds, in acquisition order, for the lock-order checker
 * (lock_order.ts), for ownership checks (unlock by a non-holder, reentrancy) and for
 * debugging: `describe()` says what it holds and what it waits for, and
 * `TaskRegistry.describe()` does so for every live task of a volume.
 */

import { assert } from "../debug/assert.js";
import type { LockClass } from "./lock_order.js";

export type LockMode = "read" | "write";

/** What a task knows of a lock (implemented by rwlock.ts). */
export interface LockRef {
  readonly cls: LockClass;
  readonly name: string;
  /** Tasks that must release or be served before `task` (queued here) can get the lock; [] if not queued. */
  blockersOf(task: Task): readonly Task[];
  /** "i_rwsem ino 12: write-held by task 3 "…"; waiting: task 4 (read)". */
  describe(): string;
}

/** One lock held by a task. */
export interface HeldLock {
  readonly lock: LockRef;
  readonly mode: LockMode;
  readonly subclass: number;
}

let nextGlobalId = 1;

/** The live tasks of one volume, for describing who holds what when something hangs. */
export class TaskRegistry {
  #nextId = 1;
  readonly #live = new Set<Task>();

  get live(): ReadonlySet<Task> {
    return this.#live;
  }

  /** @internal Task constructor */
  register(task: Task): number {
    this.#live.add(task);
    return this.#nextId++;
  }

  /** @internal Task.finish */
  unregister(task: Task): void {
    this.#live.delete(task);
  }

  /** One line per live task (see Task.describe), oldest first; "no tasks" when idle. */
  describe(): string {
    if (this.#live.size === 0) return "no tasks";
    return [...this.#live].map((t) => t.describe()).join("\n");
  }
}

export class Task {
  readonly id: number;
  readonly label: string;
  readonly #registry: TaskRegistry | null;
  readonly #held: HeldLock[] = [];
  #waiting: { readonly lock: LockRef; readonly mode: LockMode } | null = null;
  #pausedAt: string | null = null;
  #finished = false;

  /** Ids count from 1 per registry (deterministic for replayed schedules), else per process. */
  constructor(label: string, registry?: TaskRegistry) {
    this.label = label;
    this.#registry = registry ?? null;
    this.id = registry ? registry.register(this) : nextGlobalId++;
  }

  /** Locks held, in acquisition order. */
  get held(): readonly HeldLock[] {
    return this.#held;
  }

  /** The lock this task is acquiring (at the scheduler point before it, or queued), or null. */
  get waiting(): { readonly lock: LockRef; readonly mode: LockMode } | null {
    return this.#waiting;
  }

  /** The scheduler point label this task is paused at by a ControlledScheduler gate, or null. */
  get pausedAt(): string | null {
    return this.#pausedAt;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Does this task hold `lock` (in `mode`, or in either mode if omitted)? */
  holds(lock: LockRef, mode?: LockMode): boolean {
    return this.#held.some((h) => h.lock === lock && (mode === undefined || h.mode === mode));
  }

  /** @internal rwlock.ts: the task got `h.lock`. */
  noteAcquired(h: HeldLock): void {
    this.#held.push(h);
  }

  /** @internal rwlock.ts: the task released `lock`. */
  noteReleased(lock: LockRef): void {
    // Usually the last one (LIFO release), but the kernel allows any order.
    for (let i = this.#held.length - 1; i >= 0; i--) {
      if (this.#held[i]!.lock === lock) {
        this.#held.splice(i, 1);
        return;
      }
    }
    assert(false, () => `${this.name()} releases ${lock.name}, which it does not hold`);
  }

  /** @internal rwlock.ts: the task starts (`w`) or stops (null) acquiring a lock. */
  noteWaiting(w: { readonly lock: LockRef; readonly mode: LockMode } | null): void {
    this.#waiting = w;
  }

  /** @internal scheduler.ts: held at a gate (label) or released (null). */
  notePaused(label: string | null): void {
    this.#pausedAt = label;
  }

  /** `task 3 "write ino 12"`. */
  name(): string {
    return `task ${this.id} ${JSON.stringify(this.label)}`;
  }

  /**
   * One line: who this is, what it holds, what it waits for and who is in the way, e.g.
   * `task 3 "write ino 12": holds i_rwsem ino 12 (write); waits for i_data_sem ino 12 (write) behind task 4 "writeback ino 12"`.
   */
  describe(): string {
    const held = this.#held.length === 0 ? "holds nothing" : `holds ${this.#held.map((h) => `${h.lock.name} (${h.mode})`).join(", ")}`;
    let out = `${this.name()}: ${held}`;
    if (this.#waiting !== null) {
      const blockers = this.#waiting.lock.blockersOf(this);
      out += `; waits for ${this.#waiting.lock.name} (${this.#waiting.mode})`;
      if (blockers.length > 0) out += ` behind ${blockers.map((t) => t.name()).join(", ")}`;
    }
    if (this.#pausedAt !== null) out += `; paused at ${this.#pausedAt}`;
    if (this.#finished) out += "; finished";
    return out;
  }

  /**
   * Ends the operation: asserts it holds no lock and waits for none (a leaked lock is a bug,
   * found here rather than as a later hang), and leaves the registry.
   */
  finish(): void {
    assert(this.#held.length === 0 && this.#waiting === null, () => `${this.describe()} at finish: an operation must release every lock it takes`);
    this.#finished = true;
    this.#registry?.unregister(this);
  }
}
