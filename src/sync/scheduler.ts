/**
 * The explorer's seam. Every place where the engine may let another operation run (device
 * I/O, lock acquisition, journal waits, explicit yield points between logical steps) calls
 * `scheduler.point(task, label)`:
 *
 *     const p = sched.point(task, "alloc:after-decide");
 *     if (p) await p;
 *
 * The production scheduler returns `undefined`, so production pays a call and no await. A
 * ControlledScheduler lets a test hold one task at a named point while others run
 * (`pauseAt`), or turn every point into a real await (`yieldEvery`) to shake interleavings.
 * The explorer's SimScheduler (sim_scheduler.ts) suspends every point and resumes one at a
 * time, in an order chosen by a seeded strategy.
 *
 * What is atomic in this engine: code between two `await`s runs alone, so the only places
 * another operation can observe half-done state are awaits; making them visible (and
 * controllable) here is what lets tests and the explorer reach every interleaving that
 * matters. Engine code (cache/, journal/, fs/) never calls setTimeout/queueMicrotask itself.
 */

import type { Task } from "./task.js";

export interface Scheduler {
  /**
   * A scheduling point: `undefined` to continue synchronously, or a promise to await first.
   * `task` is null for work that belongs to no operation (e.g. background flush).
   */
  point(task: Task | null, label: string): Promise<void> | undefined;
}

/** An opaque timer, from Clock.setTimer. */
export type TimerHandle = unknown;

/**
 * Time and timers, the other half of the seam: the periodic flusher, dirty-page ages and the
 * event-loop yielder read time and arm timers only through the volume's clock, so a simulated
 * clock (sim_scheduler.ts) can fire timers in an order of its choosing, deterministically.
 */
export interface Clock {
  /** Milliseconds, monotonic enough for ages and intervals. */
  now(): number;
  /** Calls `fn` once after `ms`; the timer never keeps a Node process alive. */
  setTimer(ms: number, fn: () => void): TimerHandle;
  clearTimer(h: TimerHandle): void;
  /** Resolves after other pending work has had a turn (a macrotask: the kernel's cond_resched). */
  yieldToEventLoop(): Promise<void>;
}

/** Production: wall-clock time and the platform's timers. */
export const realClock: Clock = Object.freeze({
  now: (): number => Date.now(),
  setTimer(ms: number, fn: () => void): TimerHandle {
    const t = setTimeout(fn, ms);
    (t as { unref?: () => void }).unref?.();
    return t;
  },
  clearTimer(h: TimerHandle): void {
    clearTimeout(h);
  },
  yieldToEventLoop: (): Promise<void> => new Promise<void>((r) => setTimeout(r, 0)),
});

/** Production: every point passes straight through. */
export const noScheduler: Scheduler = Object.freeze({
  point(): undefined {
    return undefined;
  },
});

/** A trap for the first task to reach a matching point; see ControlledScheduler.pauseAt. */
export interface Gate {
  /** Resolves with the task once one has arrived at a matching point and is held there. */
  readonly reached: Promise<Task>;
  /** The task held here, or null (not reached yet, or released). */
  readonly holding: Task | null;
  /** Lets the held task continue (on a later microtask); before `reached`, disarms the gate. */
  release(): void;
}

class GateImpl implements Gate {
  readonly reached: Promise<Task>;
  #state: "armed" | "holding" | "released" = "armed";
  #holding: Task | null = null;
  #resolveReached: (t: Task) => void = () => undefined;
  #resume: () => void = () => undefined;

  constructor(
    readonly label: string | RegExp,
    readonly filter: ((task: Task) => boolean) | undefined,
  ) {
    this.reached = new Promise<Task>((resolve) => {
      this.#resolveReached = resolve;
    });
  }

  get armed(): boolean {
    return this.#state === "armed";
  }

  get holding(): Task | null {
    return this.#holding;
  }

  matches(task: Task, label: string): boolean {
    const hit = typeof this.label === "string" ? this.label === label : this.label.test(label);
    return hit && (this.filter === undefined || this.filter(task));
  }

  /** Holds `task` here; returns the promise its point awaits. */
  hold(task: Task, label: string): Promise<void> {
    this.#state = "holding";
    this.#holding = task;
    task.notePaused(label);
    const held = new Promise<void>((resolve) => {
      this.#resume = resolve;
    });
    this.#resolveReached(task);
    return held;
  }

  release(): void {
    if (this.#state === "holding") {
      this.#holding?.notePaused(null);
      this.#holding = null;
      this.#resume();
    }
    this.#state = "released";
  }
}

export interface ControlledSchedulerOptions {
  /** Turn every unmatched point into an await of one microtask (default false). */
  yieldEvery?: boolean;
  /** Record every point passed, as `task 3 "write ino 12" @ lock:i_rwsem` (default false). */
  trace?: boolean;
}

/**
 * A scheduler for deterministic tests. Points no gate matches pass straight through
 * (or await one microtask with yieldEvery). Points with a null task never match a gate.
 */
export class ControlledScheduler implements Scheduler {
  /** Every unmatched point awaits one microtask; may be toggled at any time. */
  yieldEvery: boolean;
  /** Points passed, in order (with `trace: true`), else null. */
  readonly trace: string[] | null;
  #gates: GateImpl[] = [];

  constructor(opts: ControlledSchedulerOptions = {}) {
    this.yieldEvery = opts.yieldEvery ?? false;
    this.trace = opts.trace === true ? [] : null;
  }

  /**
   * Arms a one-shot gate: the first task (passing `filter`) to reach a point whose label
   * equals `label` (or matches the RegExp) is held there until `release()`. Later arrivals
   * pass. Gates are tried in the order they were armed.
   */
  pauseAt(label: string | RegExp, filter?: (task: Task) => boolean): Gate {
    const g = new GateImpl(label, filter);
    this.#gates = this.#gates.filter((x) => x.armed); // drop gates disarmed by release()
    this.#gates.push(g);
    return g;
  }

  point(task: Task | null, label: string): Promise<void> | undefined {
    this.trace?.push(`${task === null ? "no task" : task.name()} @ ${label}`);
    if (task !== null && this.#gates.length > 0) {
      for (const g of this.#gates) {
        if (g.armed && g.matches(task, label)) {
          this.#gates = this.#gates.filter((x) => x !== g);
          return g.hold(task, label);
        }
      }
    }
    return this.yieldEvery ? Promise.resolve() : undefined;
  }
}
