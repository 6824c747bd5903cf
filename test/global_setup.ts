// Builds dist/ once before the suite, so tests that run the CLI (`node bin/ext4ts.js`)
// always exercise the current sources. EXT4TS_SKIP_BUILD=1 skips it (tests that do not
// run the CLI, while a half-written file elsewhere would fail the build).
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  if (process.env.EXT4TS_SKIP_BUILD === "1") return;
  const root = fileURLToPath(new URL("..", import.meta.url));
  execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
}
