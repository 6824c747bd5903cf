/**
 * Map an async stream with up to `window` calls in flight, yielding results in input
 * order. Lets the CLI overlap the engine's I/O (device reads, hashing, host writes)
 * while keeping output sorted.
 */
export async function* orderedMap<T, R>(input: AsyncIterable<T>, window: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const pending: Promise<R>[] = [];
  for await (const item of input) {
    const p = fn(item);
    p.catch(() => undefined); // rejections surface when awaited below, in order
    pending.push(p);
    if (pending.length >= window) yield await pending.shift()!;
  }
  while (pending.length > 0) yield await pending.shift()!;
}

/** Collects small writes into ~64 KiB chunks so a manifest is not one syscall per line. */
export class BatchedWriter {
  #parts: string[] = [];
  #bytes = 0;
  readonly #sink: (chunk: string) => Promise<void> | void;
  constructor(sink: (chunk: string) => Promise<void> | void) {
    this.#sink = sink;
  }
  async write(s: string): Promise<void> {
    this.#parts.push(s);
    this.#bytes += s.length;
    if (this.#bytes >= 64 * 1024) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.#parts.length === 0) return;
    const chunk = this.#parts.join("");
    this.#parts = [];
    this.#bytes = 0;
    await this.#sink(chunk);
  }
}
