/** The thread of fsck_offload.ts: judges the free slices of each ring slot it is told of. */

import { parentPort } from "node:worker_threads";
import { SanityRing } from "../../src/fsck/sanity.js";
import type { SanityMessage } from "./fsck_offload.js";

const port = parentPort;
if (port === null) throw new Error("fsck_offload_worker.js runs as a worker thread");
let ring: SanityRing | undefined;
port.on("message", (m: SanityMessage) => {
  if ("slots" in m) ring = new SanityRing(m.slots, m.g);
  else ring?.judgeFree(m.slot);
});
