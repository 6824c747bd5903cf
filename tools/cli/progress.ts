/**
 * A one-line progress display for long copies: entries and bytes, with a bar when the
 * totals are known. Written to a terminal only (the caller decides), redrawn at most ten
 * times a second, erased at the end.
 */

import type { CopyCounts } from "./populate.js";

export interface ProgressTotals {
  entries: number;
  bytes: number;
}

const group = (n: number): string => n.toLocaleString("en-US");
const mb = (n: number): string => (n / 1e6).toFixed(n < 1e8 ? 1 : 0);

export class ProgressLine {
  readonly #out: NodeJS.WriteStream;
  readonly #label: string;
  readonly #totals: ProgressTotals | undefined;
  #last = 0;
  #shown = false;

  constructor(out: NodeJS.WriteStream, label: string, totals?: ProgressTotals) {
    this.#out = out;
    this.#label = label;
    this.#totals = totals;
  }

  update(c: Readonly<CopyCounts>): void {
    const now = Date.now();
    if (now - this.#last < 100) return;
    this.#last = now;
    this.#out.write(`\r${this.text(c)}\x1b[K`);
    this.#shown = true;
  }

  /** The line for these counts (without control characters). */
  text(c: Readonly<CopyCounts>): string {
    const entries = c.files + c.dirs + c.symlinks + c.special + c.hardlinks;
    const t = this.#totals;
    let s: string;
    if (t === undefined) {
      s = `${this.#label}: ${group(entries)} files, ${mb(c.bytes)} MB`;
    } else {
      const frac = t.bytes > 0 ? c.bytes / t.bytes : t.entries > 0 ? entries / t.entries : 1;
      const width = 20;
      const fill = Math.max(0, Math.min(width, Math.round(frac * width)));
      s = `${this.#label}: ${group(entries)}/${group(t.entries)} files, ${mb(c.bytes)}/${mb(t.bytes)} MB [${"#".repeat(fill)}${".".repeat(width - fill)}] ${Math.min(100, Math.floor(frac * 100))}%`;
    }
    const cols = this.#out.columns;
    return cols > 0 && s.length >= cols ? s.slice(0, cols - 1) : s;
  }

  /** Erase the line. */
  done(): void {
    if (this.#shown) this.#out.write("\r\x1b[K");
    this.#shown = false;
  }
}
