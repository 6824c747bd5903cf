/**
 * Async locks: Mutex and RwLock, the engine's counterparts of the kernel's sleeping locks
 * (mutex, rw_semaphore). Spinlocks have no counterpart: see below.
 *
 * What is atomic in this engine: nothing runs in parallel, and code between two `await`s runs
 * alone. A check-and-update with no await inside needs no lock at all (the kernel's spinlocks,
 * percpu counters and i_lock become such synchronous sections). A lock is needed only where
 * protected state must stay stable across an `await` (I/O, journal credits, another lock).
 *
 * Why FIFO fairness: operations are served in arrival order, so a stream of readers (lookups,
 * writeback) cannot starve a writer (truncate, setxattr), and a schedule replays the same way
 * every time, which the explorer relies on. Ownership is handed over at unlock: the next
 * waiter owns the lock before it even resumes, so a newcomer cannot barge in between. For an
 * RwLock, a waiting writer blocks readers that arrive after it; readers queued together (no
 * writer between them) are admitted together.
 *
 * Why no reentrancy: a task that re-takes a lock it holds is a bug in the kernel too (it would
 * deadlock); here it throws AssertionError at once, naming the task and the lock, instead of
 * hanging. Unlock by a task that does not hold the lock throws the same way. A task that
 * would close a cycle of waits (A holds X and waits for Y, B holds Y and waits for X) throws
 * instead of hanging, when the domain's checks are on. These AssertionErrors are thrown
 * synchronously by the acquiring call (lock/run/...), not as a rejected promise: they are
 * bugs, and the stack then points at the caller.
 *
 * Cost: an uncontended acquire is synchronous (the returned promise is already resolved, so
 * `await lock(...)` costs one microtask; `run`/`read`/`write` call `fn` synchronously). Locks
 * call the domain's scheduler point "lock:<class>" before acquiring, so a test can pause a
 * task just before it gets a lock; the production scheduler makes that free.
 *
 * @kernel struct mutex, struct rw_semaphore (kernel/locking/), lockdep for the checks
 */

import { AssertionError, assert } from "../debug/assert.js";
import { checkLockOrder, type LockClass } from "./lock_order.js";
import { noScheduler, realClock, type Clock, type Scheduler } from "./scheduler.js";
import { TaskRegistry, type LockMode, type LockRef, type Task } from "./task.js";

/**
 * Per-volume lock settings, shared by every lock of the volume (mutable: install a scheduler
 * or turn checks off after creating the locks).
 */
export interface SyncDomain {
  /** Lock-order checking (lock_order.ts) and wait-cycle detection. Reentrancy and ownership are always checked. */
  lockdep: boolean;
  /**
   * Called as point(task, "lock:<class>") before each blocking acquire, and as
   * point(task, "lock:<class>:handoff") when a queued task has been handed the lock.
   */
  scheduler: Scheduler;
  /** Time and timers for the volume's background work (flusher, yielder). */
  clock: Clock;
  /** The volume's live operations: task ids count from 1 per volume, so replayed schedules name the same tasks. */
  readonly tasks: TaskRegistry;
}

export function createSyncDomain(opts: Partial<SyncDomain> = {}): SyncDomain {
  return { lockdep: opts.lockdep ?? true, scheduler: opts.scheduler ?? noScheduler, clock: opts.clock ?? realClock, tasks: opts.tasks ?? new TaskRegistry() };
}

/** For locks created without a domain: checks on, production scheduler; frozen. */
export const defaultSyncDomain: Readonly<SyncDomain> = Object.freeze(createSyncDomain());

export interface LockOptions {
  /** For messages: "i_rwsem ino 12". Default: the class. */
  name?: string;
  domain?: SyncDomain;
}

interface Waiter {
  readonly task: Task;
  readonly mode: LockMode;
  readonly subclass: number;
  readonly resolve: () => void;
}

const RESOLVED: Promise<void> = Promise.resolve();

/** The shared machinery; Mutex uses write mode only. */
abstract class LockBase implements LockRef {
  readonly cls: LockClass;
  readonly name: string;
  readonly domain: SyncDomain;
  readonly #pointLabel: string;
  readonly #handoffLabel: string;
  #writer: Task | null = null;
  readonly #readers: Task[] = [];
  readonly #queue: Waiter[] = [];

  constructor(cls: LockClass, opts: LockOptions = {}) {
    this.cls = cls;
    this.name = opts.name ?? cls;
    this.domain = opts.domain ?? defaultSyncDomain;
    this.#pointLabel = `lock:${cls}`;
    this.#handoffLabel = `lock:${cls}:handoff`;
  }

  /** Is it held (in any mode)? */
  get locked(): boolean {
    return this.#writer !== null || this.#readers.length > 0;
  }

  /** Tasks holding it now: the writer, or the readers. */
  get holders(): readonly Task[] {
    return this.#writer !== null ? [this.#writer] : this.#readers.slice();
  }

  /** Tasks queued for it, in service order. */
  get waiters(): readonly Task[] {
    return this.#queue.map((w) => w.task);
  }

  /** Throws AssertionError unless `task` holds it (in `mode`, if given). @kernel lockdep_assert_held */
  assertHeld(task: Task, mode?: LockMode): void {
    const ok = mode === "write" ? this.#writer === task : mode === "read" ? this.#readers.includes(task) : this.#holds(task);
    assert(ok, () => `${task.describe()}: expected to hold ${this.name}${mode === undefined ? "" : ` for ${mode}`}`);
  }

  blockersOf(task: Task): readonly Task[] {
    const at = this.#queue.findIndex((w) => w.task === task);
    if (at < 0) return [];
    const out = this.holders.slice();
    for (let i = 0; i < at; i++) out.push(this.#queue[i]!.task);
    return out;
  }

  describe(): string {
    const held = this.#writer !== null ? `write-held by ${this.#writer.name()}` : this.#readers.length > 0 ? `read-held by ${this.#readers.map((t) => t.name()).join(", ")}` : "free";
    const queue = this.#queue.length === 0 ? "" : `; waiting: ${this.#queue.map((w) => `${w.task.name()} (${w.mode})`).join(", ")}`;
    return `${this.name}: ${held}${queue}`;
  }

  protected acquire(task: Task, mode: LockMode, subclass: number): Promise<void> {
    this.#checkAcquire(task, mode, true, subclass);
    const p = this.domain.scheduler.point(task, this.#pointLabel);
    if (p === undefined) return this.#queued(task, this.#enter(task, mode, subclass));
    task.noteWaiting({ lock: this, mode });
    return p.then(() => {
      task.noteWaiting(null);
      return this.#queued(task, this.#enter(task, mode, subclass));
    });
  }

  /**
   * After queueing: once handed the lock, the new owner passes the scheduler point
   * "lock:<class>:handoff" before it resumes, so a simulated schedule decides when it runs
   * (it would otherwise run in the releaser's turn).
   */
  #queued(task: Task, q: Promise<void> | undefined): Promise<void> {
    if (q === undefined) return RESOLVED;
    if (this.domain.scheduler === noScheduler) return q; // production: no point, no extra turn
    return q.then(() => this.domain.scheduler.point(task, this.#handoffLabel));
  }

  /** acquire, then fn, then release; fn is called synchronously when the lock is free. */
  protected runLocked<T>(task: Task, mode: LockMode, subclass: number, fn: () => T | PromiseLike<T>): Promise<T> {
    this.#checkAcquire(task, mode, true, subclass);
    const p = this.domain.scheduler.point(task, this.#pointLabel);
    if (p === undefined) {
      const q = this.#enter(task, mode, subclass);
      if (q === undefined) return this.#runHeld(task, mode, fn);
      return this.#queued(task, q).then(() => this.#runHeld(task, mode, fn));
    }
    task.noteWaiting({ lock: this, mode });
    return p.then(async () => {
      task.noteWaiting(null);
      await this.#queued(task, this.#enter(task, mode, subclass));
      return this.#runHeld(task, mode, fn);
    });
  }

  protected tryAcquire(task: Task, mode: LockMode, subclass: number): boolean {
    this.#checkAcquire(task, mode, false, subclass);
    if (!this.#free(mode)) return false;
    this.#grant(task, mode, subclass);
    return true;
  }

  protected release(task: Task, mode: LockMode): void {
    if (mode === "write") {
      if (this.#writer !== task) throw new AssertionError(`${task.describe()}: unlocks ${this.name} (write), which it does not hold (${this.describe()})`);
      this.#writer = null;
    } else {
      const at = this.#readers.indexOf(task);
      if (at < 0) throw new AssertionError(`${task.describe()}: unlocks ${this.name} (read), which it does not hold (${this.describe()})`);
      this.#readers.splice(at, 1);
    }
    task.noteReleased(this);
    this.#dispatch();
  }

  async #runHeld<T>(task: Task, mode: LockMode, fn: () => T | PromiseLike<T>): Promise<T> {
    try {
      return await fn();
    } finally {
      this.release(task, mode);
    }
  }

  #holds(task: Task): boolean {
    return this.#writer === task || this.#readers.includes(task);
  }

  #checkAcquire(task: Task, mode: LockMode, blocking: boolean, subclass: number): void {
    if (task.waiting !== null || task.finished || this.#holds(task)) {
      const why = task.finished
        ? "the task has finished"
        : task.waiting !== null
          ? `it is already acquiring ${task.waiting.lock.name}: a task is one sequential operation, give concurrent branches their own tasks`
          : "it already holds it: locks are not reentrant";
      throw new AssertionError(`${task.describe()}: cannot acquire ${this.name} (${mode}): ${why}`);
    }
    if (blocking && this.domain.lockdep) checkLockOrder(task.held, this.cls, this.name, subclass, () => task.describe());
  }

  #free(mode: LockMode): boolean {
    return this.#queue.length === 0 && this.#writer === null && (mode === "read" || this.#readers.length === 0);
  }

  #grant(task: Task, mode: LockMode, subclass: number): void {
    if (mode === "write") this.#writer = task;
    else this.#readers.push(task);
    task.noteAcquired({ lock: this, mode, subclass });
  }

  /** Takes the lock now (undefined) or queues (a promise resolved once the lock is handed over). */
  #enter(task: Task, mode: LockMode, subclass: number): Promise<void> | undefined {
    if (this.#free(mode)) {
      this.#grant(task, mode, subclass);
      return undefined;
    }
    if (this.domain.lockdep) this.#checkDeadlock(task, mode);
    task.noteWaiting({ lock: this, mode });
    return new Promise<void>((resolve) => {
      this.#queue.push({ task, mode, subclass, resolve });
    });
  }

  /** Hands the lock to the head of the queue: one writer, or every reader up to the next writer. */
  #dispatch(): void {
    if (this.#writer !== null) return;
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!; // length checked
      if (head.mode === "write" && this.#readers.length > 0) return;
      this.#queue.shift();
      head.task.noteWaiting(null);
      this.#grant(head.task, head.mode, head.subclass);
      head.resolve();
      if (head.mode === "write") return;
    }
  }

  /** Throws if queueing `task` here would close a cycle of tasks waiting for each other. */
  #checkDeadlock(task: Task, mode: LockMode): void {
    // Who `task` would wait behind: the holders and everyone already queued.
    const first = [...this.holders, ...this.#queue.map((w) => w.task)];
    const via = new Map<Task, Task | null>(first.map((t) => [t, null]));
    const todo = first.slice();
    while (todo.length > 0) {
      const t = todo.shift()!; // length checked
      if (t === task) {
        const chain: Task[] = [];
        for (let x: Task | null = t; x !== null; x = via.get(x) ?? null) chain.push(x);
        chain.reverse();
        throw new AssertionError(
          `Deadlock: ${task.name()} would wait for ${this.name} (${mode}), but ${chain.map((x) => x.name()).join(" waits for ")}:\n` +
            [this.describe(), ...chain.map((x) => x.describe())].join("\n"),
        );
      }
      const w = t.waiting;
      if (w === null) continue;
      for (const b of w.lock.blockersOf(t)) {
        if (!via.has(b)) {
          via.set(b, t);
          todo.push(b);
        }
      }
    }
  }
}

/**
 * A FIFO mutex. Not reentrant. The subclass argument is for nesting two locks of one class
 * (lock_order.ts); omit it otherwise.
 * @kernel struct mutex (mutex_lock, mutex_lock_nested, mutex_trylock, mutex_unlock)
 */
export class Mutex extends LockBase {
  /** Waits for the lock (FIFO). Synchronous when free: the promise is already resolved. */
  lock(task: Task, subclass = 0): Promise<void> {
    return this.acquire(task, "write", subclass);
  }

  /** Takes the lock if it is free and nobody waits; never waits, exempt from lock order. */
  tryLock(task: Task, subclass = 0): boolean {
    return this.tryAcquire(task, "write", subclass);
  }

  unlock(task: Task): void {
    this.release(task, "write");
  }

  /** lock, fn, unlock (also when fn throws). fn runs synchronously if the lock is free. */
  run<T>(task: Task, fn: () => T | PromiseLike<T>, subclass = 0): Promise<T> {
    return this.runLocked(task, "write", subclass, fn);
  }
}

/**
 * A FIFO reader-writer lock: many readers or one writer; a waiting writer blocks readers that
 * arrive after it; readers queued together (no writer between them) are admitted together.
 * `lock`/`unlock`/`run` are the write side (as Mutex). Not reentrant, in either mode: a
 * reader that takes the read side again could deadlock behind a queued writer.
 * @kernel struct rw_semaphore (down_read, down_write, *_nested, *_trylock, up_read, up_write)
 */
export class RwLock extends LockBase {
  readLock(task: Task, subclass = 0): Promise<void> {
    return this.acquire(task, "read", subclass);
  }

  readUnlock(task: Task): void {
    this.release(task, "read");
  }

  /** Takes the read side if no writer holds it and nobody waits; never waits, exempt from lock order. */
  tryRead(task: Task, subclass = 0): boolean {
    return this.tryAcquire(task, "read", subclass);
  }

  read<T>(task: Task, fn: () => T | PromiseLike<T>, subclass = 0): Promise<T> {
    return this.runLocked(task, "read", subclass, fn);
  }

  lock(task: Task, subclass = 0): Promise<void> {
    return this.acquire(task, "write", subclass);
  }

  unlock(task: Task): void {
    this.release(task, "write");
  }

  /** Takes the write side if the lock is free and nobody waits; never waits, exempt from lock order. */
  tryWrite(task: Task, subclass = 0): boolean {
    return this.tryAcquire(task, "write", subclass);
  }

  /** Same as tryWrite. */
  tryLock(task: Task, subclass = 0): boolean {
    return this.tryAcquire(task, "write", subclass);
  }

  write<T>(task: Task, fn: () => T | PromiseLike<T>, subclass = 0): Promise<T> {
    return this.runLocked(task, "write", subclass, fn);
  }

  /** Same as write. */
  run<T>(task: Task, fn: () => T | PromiseLike<T>, subclass = 0): Promise<T> {
    return this.runLocked(task, "write", subclass, fn);
  }
}
