// Runs the built CLI the way users do: `node bin/ext4ts.js ARGS`.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("..", import.meta.url));
export const BIN = `${REPO}bin/ext4ts.js`;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run `ext4ts ARGS` with a hard timeout (the process is killed past it). */
export function runCli(args: readonly string[], opts: { timeoutMs?: number; maxOldSpaceMb?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const nodeArgs = opts.maxOldSpaceMb === undefined ? [] : [`--max-old-space-size=${opts.maxOldSpaceMb}`];
    const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? 60_000);
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), timedOut });
    });
  });
}
