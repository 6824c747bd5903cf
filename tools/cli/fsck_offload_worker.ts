/** The thread of fsck_offload.ts: inodeBlockSanity on each chunk it is sent, the chunk sent back. */

import { parentPort } from "node:worker_threads";
import { inodeBlockSanity } from "../../src/fsck/sanity.js";
import type { SanityReply, SanityRequest } from "./fsck_offload.js";

const port = parentPort;
if (port === null) throw new Error("fsck_offload_worker.js runs as a worker thread");
port.on("message", (m: SanityRequest) => {
  const r = inodeBlockSanity(new Uint8Array(m.buffer, 0, m.length), m.firstIno, m.count, m.g);
  const reply: SanityReply = { id: m.id, buffer: m.buffer, length: m.length, csums: r.csums, insane: r.insane };
  port.postMessage(reply, [m.buffer, r.csums.buffer as ArrayBuffer, r.insane.buffer as ArrayBuffer]);
});
