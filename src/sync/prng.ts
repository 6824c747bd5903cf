/**
 * A small seeded generator for the schedule explorer and the workloads it drives: one seed
 * gives one sequence on every platform (Math.random cannot be seeded). sfc32, seeded through
 * splitmix32 so that neighbouring seeds (1, 2, 3 ...) give unrelated streams.
 */

function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [state, (z ^ (z >>> 16)) >>> 0];
}

export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, w] = splitmix32(s);
      s = next;
      words.push(w);
    }
    [this.#a, this.#b, this.#c, this.#d] = words as [number, number, number, number];
    for (let i = 0; i < 12; i++) this.u32(); // let the state mix
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.u32() / 0x1_0000_0000;
  }

  /** A uniform integer in [0, n) (n ≥ 1). */
  below(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** A uniform integer in [lo, hi] (inclusive). */
  between(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)]!; // length ≥ 1 by contract
  }

  /** `n` pseudo-random bytes (little-endian words, so the stream is the same on every platform). */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    const dv = new DataView(out.buffer);
    const whole = n - (n % 4);
    for (let i = 0; i < whole; i += 4) dv.setUint32(i, this.u32(), true);
    for (let i = whole, w = whole < n ? this.u32() : 0; i < n; i++, w >>>= 8) out[i] = w & 0xff;
    return out;
  }
}
