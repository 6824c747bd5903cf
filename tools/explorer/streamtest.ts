/**
 * The streamtest workload, after Ceph FileStore's object write path (the workload that met
 * the seed's race): W writer tasks own disjoint objects (files in 16 hashed directories);
 * per object a writer creates it, writes data, hands the open file to a flusher (FileStore's
 * _write queued the fd to its flusher right after the write, before the transaction's
 * setattrs) and sets three xattrs, one of 2,000-3,500 bytes that needs the external block;
 * later updates overwrite, truncate, replace or remove xattrs, rename and unlink. Flusher
 * tasks call syncRange (sync_file_range), fdatasync or fsync on the handed-over file and
 * close it, while the writers go on; a syncer calls syncfs now and then (FileStore's
 * commit), and once at the end.
 *
 * The plan (who does what, sizes, data, names) is a pure function of the options and seed;
 * only the interleaving differs between runs. Because every object has one writer, the final
 * state of every object is known from the plan alone (`expectedState`), whatever the
 * interleaving: that is the model the explorer checks against (invariant Q6).
 */

import type { FileHandle, Volume } from "../../src/api/promises.js";
import { FsError } from "../../src/errors.js";
import { Prng } from "../../src/sync/prng.js";

export interface StreamtestOptions {
  /** Writer tasks (default 8). */
  readonly workers: number;
  /** Flusher tasks (default 1). */
  readonly flushers: number;
  readonly objects: number;
  /** Bytes of each object's first write (default 64 KiB). */
  readonly objectBytes: number;
  /** Updates per object after its creation, on average (default 0: FileStore's create-only stream). */
  readonly updates: number;
  /** syncfs calls spread over the run, besides the final one (default 0). */
  readonly syncs: number;
  /** Hashed directories the objects live in (default 16, as FileStore's first level). Few make big, indexed directories. */
  readonly dirs?: number;
  readonly seed: number;
}

export const defaultStreamtest: StreamtestOptions = Object.freeze({ workers: 8, flushers: 1, objects: 4000, objectBytes: 65536, updates: 0, syncs: 0, seed: 42 });

/** Bytes from the plan's pool: [off, off+len). */
export interface Span {
  readonly off: number;
  readonly len: number;
}

export type XattrName = "user.ceph._" | "user.ceph.snapset" | "user.cephos.spill";

export type Op =
  | { readonly kind: "create"; readonly data: Span; readonly xattrs: readonly (readonly [XattrName, Span])[] }
  | { readonly kind: "overwrite"; readonly at: number; readonly data: Span }
  | { readonly kind: "setxattr"; readonly name: XattrName; readonly value: Span }
  | { readonly kind: "removexattr"; readonly name: XattrName }
  | { readonly kind: "truncate"; readonly len: number }
  | { readonly kind: "rename"; readonly to: string }
  | { readonly kind: "unlink" };

export interface ObjectPlan {
  /** Path at creation. */
  readonly path: string;
  readonly writer: number;
  readonly ops: readonly Op[];
}

export interface Plan {
  readonly opts: StreamtestOptions;
  readonly pool: Uint8Array;
  readonly dirs: readonly string[];
  readonly objects: readonly ObjectPlan[];
}

export const STREAM_DIRS = 16;

function hex(n: number, width: number): string {
  return n.toString(16).toUpperCase().padStart(width, "0");
}

/** The whole workload, from the options and seed. */
export function planStreamtest(opts: StreamtestOptions): Plan {
  const r = new Prng(opts.seed);
  const poolBytes = Math.max(1 << 20, opts.objectBytes * 2 + 16384);
  const pool = r.bytes(poolBytes);
  const span = (len: number): Span => ({ off: r.below(poolBytes - len), len });
  const ndirs = opts.dirs ?? STREAM_DIRS;
  const dirs = Array.from({ length: ndirs }, (_, d) => `/DIR_${hex(d, ndirs <= 16 ? 1 : 2)}`);
  const objects: ObjectPlan[] = [];
  for (let i = 0; i < opts.objects; i++) {
    const h = r.u32();
    const name = (suffix: string): string => `${dirs[h % ndirs]!}/rbd_data.${opts.seed.toString(16)}.${hex(i, 16).toLowerCase()}${suffix}__head_${hex(h, 8)}__3`;
    const ops: Op[] = [
      {
        kind: "create",
        data: span(opts.objectBytes),
        xattrs: [["user.ceph._", span(r.between(180, 300))], ["user.ceph.snapset", span(r.between(20, 40))], ["user.cephos.spill", span(r.between(2000, 3500))]],
      },
    ];
    let size = opts.objectBytes;
    let renames = 0;
    const removable = new Set<XattrName>(["user.ceph.snapset", "user.cephos.spill"]); // present now
    // Updates: geometric around opts.updates, so some objects see many.
    while (opts.updates > 0 && r.chance(opts.updates / (opts.updates + 1))) {
      const x = r.float();
      if (x < 0.3) {
        const len = r.between(1, Math.max(1, opts.objectBytes));
        const at = r.below(size + 4096);
        ops.push({ kind: "overwrite", at, data: span(len) });
        size = Math.max(size, at + len);
      } else if (x < 0.65 && (x < 0.55 || removable.size === 0)) {
        // object_info is rewritten with every transaction; the spill attribute now and then.
        const name = r.pick(["user.ceph._", "user.cephos.spill"] as const);
        ops.push({ kind: "setxattr", name, value: span(name === "user.ceph._" ? r.between(180, 300) : r.between(2000, 3500)) });
        if (name === "user.cephos.spill") removable.add(name);
      } else if (x < 0.65) {
        const name = r.pick([...removable]);
        removable.delete(name);
        ops.push({ kind: "removexattr", name });
      } else if (x < 0.8) {
        size = r.below(size + 1);
        ops.push({ kind: "truncate", len: size });
      } else if (x < 0.95) {
        ops.push({ kind: "rename", to: `${dirs[r.below(ndirs)]!}/${name(`.r${++renames}`).split("/")[2]!}` });
      } else {
        ops.push({ kind: "unlink" });
        break;
      }
    }
    objects.push({ path: name(""), writer: i % opts.workers, ops });
  }
  return { opts, pool, dirs, objects };
}

/** What one object should be after the plan has run (null: unlinked). */
export interface ObjectState {
  readonly path: string;
  readonly data: Uint8Array;
  readonly xattrs: ReadonlyMap<string, Uint8Array>;
}

/** The final state of every object, from the plan alone. */
export function expectedState(plan: Plan): (ObjectState | null)[] {
  const bytes = (s: Span): Uint8Array => plan.pool.subarray(s.off, s.off + s.len);
  return plan.objects.map((o) => {
    let path = o.path;
    let data = new Uint8Array(0);
    const xattrs = new Map<string, Uint8Array>();
    for (const op of o.ops) {
      switch (op.kind) {
        case "create":
          data = bytes(op.data).slice();
          for (const [n, v] of op.xattrs) xattrs.set(n, bytes(v));
          break;
        case "overwrite": {
          const end = op.at + op.data.len;
          if (end > data.length) {
            const grown = new Uint8Array(end);
            grown.set(data);
            data = grown;
          }
          data.set(bytes(op.data), op.at);
          break;
        }
        case "setxattr":
          xattrs.set(op.name, bytes(op.value));
          break;
        case "removexattr":
          xattrs.delete(op.name);
          break;
        case "truncate": {
          const cut = new Uint8Array(op.len); // growing reads as zeros
          cut.set(data.subarray(0, Math.min(op.len, data.length)));
          data = cut;
          break;
        }
        case "rename":
          path = op.to;
          break;
        case "unlink":
          return null;
      }
    }
    return { path, data, xattrs };
  });
}

/** A FIFO of handed-over files; take() waits, and yields null once closed and empty. */
class Channel<T> {
  readonly #items: T[] = [];
  readonly #takers: ((v: T | null) => void)[] = [];
  #closed = false;

  put(v: T): void {
    const t = this.#takers.shift();
    if (t !== undefined) t(v);
    else this.#items.push(v);
  }

  take(): Promise<T | null> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    if (this.#closed) return Promise.resolve(null);
    return new Promise<T | null>((r) => this.#takers.push(r));
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#takers.splice(0)) t(null);
  }
}

export type OpKind = Op["kind"] | "sync_file_range" | "fdatasync" | "fsync" | "syncfs";

export interface StreamtestResult {
  readonly objects: number;
  readonly operations: number;
  readonly elapsedMs: number;
  /** Latencies per kind of operation, in ms (wall clock; meaningless under a simulated scheduler). */
  readonly latencies: ReadonlyMap<OpKind, number[]>;
  /** Data written with write() (create and overwrite), bytes. */
  readonly bytesWritten: number;
}

/**
 * Runs the plan on a mounted volume. Rejects with the first error any task meets (the others
 * run to their end first, so nothing is left running).
 */
export async function runStreamtest(vol: Volume, plan: Plan, now: () => number = () => performance.now()): Promise<StreamtestResult> {
  const o = plan.opts;
  const bytes = (s: Span): Uint8Array => plan.pool.subarray(s.off, s.off + s.len);
  const latencies = new Map<OpKind, number[]>();
  let operations = 0;
  let bytesWritten = 0;
  const timed = async <T>(kind: OpKind, fn: () => Promise<T>): Promise<T> => {
    const t0 = now();
    const v = await fn();
    let l = latencies.get(kind);
    if (l === undefined) latencies.set(kind, (l = []));
    l.push(now() - t0);
    operations++;
    return v;
  };
  const t0 = now();
  for (const d of plan.dirs) await timed("create", () => vol.mkdir(d, { recursive: true }));

  const queue = new Channel<{ fh: FileHandle; n: number }>();
  const errors: unknown[] = [];
  let objectsDone = 0;
  const progress = { wake: (): void => undefined }; // the syncer waits on this
  const guard = async (fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      errors.push(e);
    }
  };

  const writer = async (w: number): Promise<void> => {
    let n = 0;
    for (const obj of plan.objects) {
      if (obj.writer !== w) continue;
      let path = obj.path;
      for (const op of obj.ops) {
        switch (op.kind) {
          case "create": {
            const fh = await timed("create", () => vol.open(path, "w", 0o644));
            await timed("overwrite", () => fh.write(bytes(op.data), 0, op.data.len, 0));
            bytesWritten += op.data.len;
            queue.put({ fh, n: n++ });
            for (const [name, v] of op.xattrs) await timed("setxattr", () => vol.setxattr(path, name, bytes(v)));
            break;
          }
          case "overwrite": {
            const fh = await vol.open(path, "r+");
            await timed("overwrite", () => fh.write(bytes(op.data), 0, op.data.len, op.at));
            bytesWritten += op.data.len;
            queue.put({ fh, n: n++ });
            break;
          }
          case "setxattr":
            await timed("setxattr", () => vol.setxattr(path, op.name, bytes(op.value)));
            break;
          case "removexattr":
            await timed("removexattr", () => vol.removexattr(path, op.name));
            break;
          case "truncate":
            await timed("truncate", () => vol.truncate(path, op.len));
            break;
          case "rename":
            await timed("rename", () => vol.rename(path, op.to));
            path = op.to;
            break;
          case "unlink":
            await timed("unlink", () => vol.unlink(path));
            break;
        }
      }
      objectsDone++;
      progress.wake();
    }
  };

  const flusher = async (f: number): Promise<void> => {
    for (let item = await queue.take(); item !== null; item = await queue.take()) {
      const { fh, n } = item;
      try {
        // Mostly sync_file_range(WRITE) as FileStore's flusher; some fdatasync/fsync.
        const pick = (n + f) % 5;
        if (pick < 3) await timed("sync_file_range", () => fh.syncRange(0, 0));
        else if (pick === 3) await timed("fdatasync", () => fh.datasync());
        else await timed("fsync", () => fh.sync());
      } finally {
        await fh.close();
      }
    }
  };

  const syncer = async (): Promise<void> => {
    for (let s = 1; s <= o.syncs; s++) {
      const due = Math.floor((s * o.objects) / (o.syncs + 1));
      while (objectsDone < due) {
        await new Promise<void>((r) => {
          progress.wake = r;
        });
      }
      await timed("syncfs", () => vol.sync());
    }
  };

  const writers = Array.from({ length: o.workers }, (_, w) => guard(() => writer(w)));
  const flushers = Array.from({ length: o.flushers }, (_, f) => guard(() => flusher(f)));
  const sync = guard(syncer);
  await Promise.all(writers);
  objectsDone = o.objects;
  progress.wake();
  queue.close();
  await Promise.all([...flushers, sync]);
  if (errors.length > 0) throw errors[0];
  await timed("syncfs", () => vol.sync());
  return { objects: o.objects, operations, elapsedMs: now() - t0, latencies, bytesWritten };
}

/** Model agreement (Q6): every object's path, size, bytes and xattrs as the plan says; nothing else in the directories. */
export async function verifyStreamtest(vol: Volume, plan: Plan): Promise<string[]> {
  const problems: string[] = [];
  const want = expectedState(plan).filter((s): s is ObjectState => s !== null);
  const byDir = new Map<string, Set<string>>(plan.dirs.map((d) => [d, new Set<string>()]));
  for (const s of want) {
    const slash = s.path.lastIndexOf("/");
    byDir.get(s.path.slice(0, slash))?.add(s.path.slice(slash + 1));
    let data: Uint8Array;
    try {
      data = await vol.readFile(s.path);
    } catch (e) {
      problems.push(`Q6 ${s.path}: cannot read: ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    if (data.length !== s.data.length) problems.push(`Q6 ${s.path}: size ${data.length}, expected ${s.data.length}`);
    else {
      const at = firstDifference(data, s.data);
      if (at >= 0) problems.push(`Q6 ${s.path}: byte ${at} is ${data[at]}, expected ${s.data[at]}`);
    }
    const names = new Set(await vol.listxattr(s.path));
    for (const [n, v] of s.xattrs) {
      if (!names.has(n)) {
        problems.push(`Q6 ${s.path}: xattr ${n} missing`);
        continue;
      }
      const got = await vol.getxattr(s.path, n);
      if (got.length !== v.length || firstDifference(got, v) >= 0) problems.push(`Q6 ${s.path}: xattr ${n} differs (${got.length} bytes, expected ${v.length})`);
    }
    for (const n of names) if (!s.xattrs.has(n)) problems.push(`Q6 ${s.path}: unexpected xattr ${n}`);
  }
  for (const [d, names] of byDir) {
    let have: string[];
    try {
      have = await vol.readdir(d);
    } catch (e) {
      if (e instanceof FsError) problems.push(`Q6 ${d}: ${e.message}`);
      else throw e;
      continue;
    }
    for (const n of have) if (!names.has(n)) problems.push(`Q6 ${d}/${n}: should not exist`);
    if (have.length !== names.size) problems.push(`Q6 ${d}: ${have.length} entries, expected ${names.size}`);
  }
  return problems;
}

/** Index of the first byte where two equally long arrays differ, or -1. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** p-th percentile (0-100) of `xs` (nearest rank), or NaN for none. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
