/**
 * `ext4ts manifest IMAGE`: one JSON object per reachable inode, sorted by path, in the
 * exact format other tools diff against a kernel-mount listing (see README "manifest").
 */

import { createHash } from "node:crypto";
import type { Volume, WalkEntry } from "../../src/node.js";
import { BatchedWriter, orderedMap } from "./ordered.js";

/** "SECONDS.NNNNNNNNN" with floor seconds, so -1.5 s prints as "-2.500000000". */
export function formatNs(ns: bigint): string {
  let sec = ns / 1_000_000_000n;
  let rem = ns % 1_000_000_000n;
  if (rem < 0n) {
    rem += 1_000_000_000n;
    sec -= 1n;
  }
  return `${sec}.${rem.toString().padStart(9, "0")}`;
}

export async function manifestLine(vol: Volume, e: WalkEntry): Promise<string> {
  const s = e.stats;
  const o: Record<string, unknown> = {
    path: e.path,
    type: s.type,
    mode: (s.mode & 0o7777).toString(8).padStart(4, "0"),
    uid: s.uid,
    gid: s.gid,
    nlink: s.nlink,
    size: s.size,
    mtime: formatNs(s.mtimeNs),
  };
  if (s.type === "chr" || s.type === "blk") o.rdev = `${s.rdevMajor}:${s.rdevMinor}`;
  if (s.type === "symlink") o.target = await vol.readlinkEntry(e);
  if (s.type === "file") {
    const h = createHash("sha256");
    const fh = vol.openEntry(e);
    try {
      for await (const chunk of fh.chunks()) h.update(chunk);
    } finally {
      await fh.close();
    }
    o.sha256 = h.digest("hex");
  }
  const xattrs = await vol.xattrsOf(e.inode);
  if (xattrs.length > 0) {
    xattrs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const x: Record<string, string> = {};
    for (const [name, value] of xattrs) x[name] = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
    o.xattrs = x;
  }
  return JSON.stringify(o);
}

/**
 * Write the manifest of the whole volume to `out`, in ~64 KiB chunks. Up to 16 lines are
 * computed at once (their file reads overlap); lines still come out in path order.
 */
export async function writeManifest(vol: Volume, out: (chunk: string) => Promise<void> | void): Promise<number> {
  const w = new BatchedWriter(out);
  let n = 0;
  for await (const line of orderedMap(vol.walk("/"), 16, (e) => manifestLine(vol, e))) {
    await w.write(`${line}\n`);
    n++;
  }
  await w.flush();
  return n;
}
