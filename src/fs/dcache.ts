/**
 * A small name cache: (directory inode, name) -> inode number, positive and negative
 * (@kernel the dcache, fs/dcache.c, in miniature). Path walks consult it before reading
 * directory blocks; directory writes keep it exact (dir_write.ts updates it on every add,
 * remove and set; a freed directory drops all its names). Bounded: the oldest directory's
 * names go first.
 */

import type { Ext4Fs } from "./super.js";

const MAX_DIRS = 4096;
const caches = new WeakMap<Ext4Fs, Map<number, Map<string, number | null>>>();

function dirs(fs: Ext4Fs): Map<number, Map<string, number | null>> {
  let m = caches.get(fs);
  if (m === undefined) {
    m = new Map();
    caches.set(fs, m);
  }
  return m;
}

const key = (name: Uint8Array): string => String.fromCharCode(...name);

/** undefined: not cached; null: cached as absent. */
export function dcacheGet(fs: Ext4Fs, dirIno: number, name: Uint8Array): number | null | undefined {
  return dirs(fs).get(dirIno)?.get(key(name));
}

export function dcacheSet(fs: Ext4Fs, dirIno: number, name: Uint8Array, ino: number | null): void {
  const all = dirs(fs);
  let d = all.get(dirIno);
  if (d === undefined) {
    if (all.size >= MAX_DIRS) {
      const oldest = all.keys().next().value;
      if (oldest !== undefined) all.delete(oldest);
    }
    d = new Map();
    all.set(dirIno, d);
  }
  if (d.size > 65536) d.clear(); // one huge directory must not hold the whole cache
  d.set(key(name), ino);
}

/** Forget a directory's names (it was freed; its inode number may come back as another directory). */
export function dcacheDropDir(fs: Ext4Fs, dirIno: number): void {
  dirs(fs).delete(dirIno);
}
