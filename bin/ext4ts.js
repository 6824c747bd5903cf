#!/usr/bin/env node
// The ext4ts CLI. Runs the compiled TypeScript in dist/ (built by `npm run build`,
// which `npm ci` runs through the prepare script).
import { existsSync } from "node:fs";

// fsck has an entry of its own that loads only what a check needs (it is timed against e2fsck).
const entry = new URL(process.argv[2] === "fsck" ? "../dist/tools/cli/fsck_main.js" : "../dist/tools/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("ext4ts: not built yet: run `npm run build` (or `npm ci`) in the ext4ts directory\n");
  process.exit(70);
}
process.stdout.on("error", (e) => {
  if (e.code === "EPIPE") process.exit(0); // `ext4ts manifest img | head` is fine
  throw e;
});
const { main } = await import(entry.href);
process.exitCode = await main(process.argv);
