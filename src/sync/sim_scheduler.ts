/**
 * SimScheduler: the schedule explorer's scheduler. Every scheduling point (lock acquire and
 * hand-off, device I/O through a SimDevice, allocator steps, timers of the volume's clock)
 * suspends its task; when nothing else can run, the scheduler picks ONE suspended step to
 * resume, by a seeded strategy, and waits until everything is suspended again. Since the
 * engine runs nothing in parallel and all its I/O is simulated, the run is a pure function of
 * the choices: one seed replays one interleaving exactly.
 *
 *     const sim = new SimScheduler({ strategy: { kind: "random" }, seed: 7 });
 *     vol.fs.syncDomain.scheduler = sim; vol.fs.syncDomain.clock = sim;
 *     const run = await sim.run(async () => { ...start operations, await them... });
 *     run.outcome;      // "done" | "deadlock" | "step-limit"
 *     run.deviations;   // where it ran something other than the default choice
 *
 * Strategies:
 * - random walk: every step, a uniformly chosen suspended step;
 * - PCT (probabilistic concurrency testing, Burckhardt et al., ASPLOS 2010): every thread
 *   gets a random priority, the highest-priority runnable thread runs, and at `depth - 1`
 *   random steps the running thread drops below all others. A bug that needs d ordering
 *   constraints is found with probability ≥ 1/(n·k^(d-1)) per run (n threads, k steps);
 * - replay: the default choice everywhere except at the listed deviations (what a shortened
 *   failing schedule is).
 * The default choice is non-preemptive: keep running the thread that ran last if it can,
 * else the oldest suspended step; timers fire only when nothing else can run (time passes
 * when the system is idle), unless a strategy picks them earlier.
 *
 * A "thread" is a Task (one operation: ids are per volume, so deterministic), a timer of the
 * clock (negative ids), or 0 for work with no task (I/O issued outside any operation is
 * charged to the thread that ran last: the only code that runs between two steps is the
 * resumed thread and what it synchronously triggers).
 */

import type { Task } from "./task.js";
import { Prng } from "./prng.js";
import type { Clock, Scheduler, TimerHandle } from "./scheduler.js";

export type Strategy =
  | { readonly kind: "random" }
  | { readonly kind: "pct"; readonly depth: number; readonly expectedSteps: number }
  | { readonly kind: "replay"; readonly deviations: readonly Deviation[] };

/**
 * At step `step` (0-based), run thread `thread` instead of the default choice (its `nth`
 * suspended step, oldest first: a thread rarely has more than one).
 */
export interface Deviation {
  readonly step: number;
  readonly thread: number;
  readonly nth: number;
}

/** One resumed step, for reports: who ran, where it was suspended, and who the default was. */
export interface Decision {
  readonly step: number;
  readonly thread: number;
  readonly who: string;
  readonly label: string;
  readonly defaultThread: number;
  readonly defaultWho: string;
}

export interface SimRun {
  /** done: the body finished and nothing is left to run; deadlock: tasks wait and nothing can run; step-limit: gave up. */
  readonly outcome: "done" | "deadlock" | "step-limit";
  /** The body's rejection, if it threw. */
  readonly error: unknown;
  readonly steps: number;
  /** Steps where the choice differed from the default (replaying these reproduces the run). */
  readonly deviations: readonly Deviation[];
  /** Every step (with `keepDecisions`), else only the deviations. */
  readonly decisions: readonly Decision[];
  /** Virtual milliseconds elapsed (timers advance it). */
  readonly elapsedMs: number;
}

export interface SimSchedulerOptions {
  readonly strategy: Strategy;
  readonly seed: number;
  /** Give up after this many steps (default 200,000). */
  readonly maxSteps?: number;
  /** Record every decision, not just deviations (default false). */
  readonly keepDecisions?: boolean;
  /**
   * Resolves once every pending microtask has run: the engine is then quiescent (all work
   * suspended at points). Default setTimeout(0); Node callers pass setImmediate, ~100x faster.
   */
  readonly macrotask?: () => Promise<void>;
  /**
   * Called at every step, while everything is suspended (the "always" invariants: checked
   * where another operation could observe them). Not called outside run().
   */
  readonly onStep?: (step: number) => void;
}

interface Pending {
  readonly seq: number;
  readonly thread: number;
  readonly label: string;
  readonly task: Task | null;
  readonly resume: () => void;
  /** For timers: when it is due (virtual ms). */
  readonly due: number | null;
}

const START_MS = 1_000_000; // not 0: the engine uses 0 as "never dirtied"

export class SimScheduler implements Scheduler, Clock {
  readonly #strategy: Strategy;
  readonly #rng: Prng;
  readonly #maxSteps: number;
  readonly #keep: boolean;
  readonly #macrotask: () => Promise<void>;
  readonly #onStep: ((step: number) => void) | undefined;
  readonly #pending: Pending[] = [];
  readonly #names = new Map<number, string>();
  #running = false;
  #seq = 0;
  #timerIds = 0;
  #current = 0;
  #now = START_MS;
  // PCT state
  readonly #priority = new Map<number, number>();
  readonly #changeAt = new Map<number, number>();
  // replay state
  readonly #replay = new Map<number, Deviation>();

  constructor(opts: SimSchedulerOptions) {
    this.#strategy = opts.strategy;
    this.#rng = new Prng(opts.seed);
    this.#maxSteps = opts.maxSteps ?? 200_000;
    this.#keep = opts.keepDecisions ?? false;
    this.#macrotask = opts.macrotask ?? ((): Promise<void> => new Promise<void>((r) => setTimeout(r, 0)));
    this.#onStep = opts.onStep;
    if (opts.strategy.kind === "pct") {
      const k = Math.max(1, opts.strategy.expectedSteps);
      for (let i = 1; i < opts.strategy.depth; i++) this.#changeAt.set(this.#rng.below(k), i);
    } else if (opts.strategy.kind === "replay") {
      for (const d of opts.strategy.deviations) this.#replay.set(d.step, d);
    }
  }

  // --- Scheduler ---

  point(task: Task | null, label: string): Promise<void> | undefined {
    if (!this.#running) return undefined; // mount and unmount outside run() pass straight through
    const thread = task?.id ?? this.#current;
    if (task !== null && !this.#names.has(thread)) this.#names.set(thread, task.name());
    return new Promise<void>((resume) => {
      this.#pending.push({ seq: this.#seq++, thread, label, task, resume, due: null });
    });
  }

  // --- Clock ---

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const thread = -++this.#timerIds;
    this.#names.set(thread, `timer ${-thread} (${ms} ms)`);
    const p: Pending = { seq: this.#seq++, thread, label: "timer", task: null, resume: fn, due: this.#now + ms };
    this.#pending.push(p);
    return p;
  }

  clearTimer(h: TimerHandle): void {
    const at = this.#pending.indexOf(h as Pending);
    if (at >= 0) this.#pending.splice(at, 1);
  }

  yieldToEventLoop(): Promise<void> {
    return this.point(null, "yield") ?? Promise.resolve();
  }

  // --- running ---

  /**
   * Runs `body` under this scheduler until it has finished and no step is left (timers still
   * armed then are left alone), or no step can run while the body waits (deadlock), or the
   * step limit is reached. Never rejects: the body's error is in the result.
   */
  async run(body: () => Promise<void>): Promise<SimRun> {
    this.#running = true;
    const settled: { done: boolean; error: unknown } = { done: false, error: undefined };
    const deviations: Deviation[] = [];
    const decisions: Decision[] = [];
    let steps = 0;
    let outcome: SimRun["outcome"] = "done";
    const t0 = this.#now;
    this.#current = 0;
    body().then(
      () => {
        settled.done = true;
      },
      (e: unknown) => {
        settled.done = true;
        settled.error = e;
      },
    );
    try {
      for (;;) {
        await this.#macrotask();
        this.#onStep?.(steps);
        const work = this.#pending.some((p) => p.due === null);
        if (!work && settled.done) break;
        if (this.#pending.length === 0) {
          outcome = "deadlock";
          break;
        }
        if (steps >= this.#maxSteps) {
          outcome = "step-limit";
          break;
        }
        const dflt = this.#defaultChoice();
        const chosen = this.#choose(steps, dflt);
        const nth = chosen === dflt ? 0 : this.#nth(chosen);
        this.#pending.splice(this.#pending.indexOf(chosen), 1);
        if (chosen !== dflt) deviations.push({ step: steps, thread: chosen.thread, nth });
        if (this.#keep || chosen !== dflt) {
          decisions.push({ step: steps, thread: chosen.thread, who: this.#who(chosen.thread), label: chosen.label, defaultThread: dflt.thread, defaultWho: this.#who(dflt.thread) });
        }
        steps++;
        if (chosen.due !== null) this.#now = Math.max(this.#now, chosen.due);
        this.#current = chosen.thread;
        chosen.resume();
      }
    } finally {
      this.#running = false;
    }
    return { outcome, error: settled.error, steps, deviations, decisions, elapsedMs: this.#now - t0 };
  }

  /** Threads suspended now, one line each (for deadlock reports). */
  describePending(): string {
    return this.#pending.map((p) => `${this.#who(p.thread)} @ ${p.label}`).join("\n");
  }

  /** Position of `p` among its thread's suspended steps. */
  #nth(p: Pending): number {
    let n = 0;
    for (const q of this.#pending) {
      if (q === p) return n;
      if (q.thread === p.thread) n++;
    }
    return n;
  }

  #who(thread: number): string {
    return this.#names.get(thread) ?? (thread === 0 ? "no task" : `thread ${thread}`);
  }

  /** Non-preemptive: the thread that ran last if it can, else the oldest step; timers last. */
  #defaultChoice(): Pending {
    let oldest: Pending | null = null;
    let oldestTimer: Pending | null = null;
    for (const p of this.#pending) {
      if (p.due !== null) {
        if (oldestTimer === null || p.due < oldestTimer.due! || (p.due === oldestTimer.due && p.seq < oldestTimer.seq)) oldestTimer = p;
        continue;
      }
      if (p.thread === this.#current) return p; // pending is in seq order: this is its oldest
      if (oldest === null) oldest = p;
    }
    return oldest ?? oldestTimer!; // caller checked pending is not empty
  }

  #choose(step: number, dflt: Pending): Pending {
    const s = this.#strategy;
    switch (s.kind) {
      case "random":
        return this.#pending[this.#rng.below(this.#pending.length)]!;
      case "replay": {
        const want = this.#replay.get(step);
        if (want === undefined) return dflt;
        return this.#pending.filter((p) => p.thread === want.thread)[want.nth] ?? dflt;
      }
      case "pct": {
        let best = this.#highest();
        const demote = this.#changeAt.get(step);
        if (demote !== undefined) {
          this.#priority.set(best.thread, demote); // below every initial priority (those are ≥ depth)
          best = this.#highest();
        }
        return best;
      }
    }
  }

  /** PCT: the oldest step of the runnable thread with the highest priority. */
  #highest(): Pending {
    let best: Pending | null = null;
    let bestPrio = -Infinity;
    for (const p of this.#pending) {
      let prio = this.#priority.get(p.thread);
      if (prio === undefined) {
        prio = (this.#strategy.kind === "pct" ? this.#strategy.depth : 1) + this.#rng.float();
        this.#priority.set(p.thread, prio);
      }
      if (prio > bestPrio) {
        best = p;
        bestPrio = prio;
      }
    }
    return best!; // pending is not empty
  }
}
