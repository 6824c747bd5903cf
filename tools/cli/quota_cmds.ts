/**
 * `ext4ts repquota` and `ext4ts setquota`: quota-tools' commands on an image's hidden quota
 * files (the `quota` feature), through Volume.quotaReport / setQuota.
 *
 *   ext4ts repquota [-u] [-g] [-P] [-a] [-s] [-v] [-n] IMAGE
 *   ext4ts setquota [-u|-g|-P] ID BSOFT BHARD ISOFT IHARD IMAGE
 *   ext4ts setquota [-u|-g|-P] -t BGRACE IGRACE IMAGE
 *
 * repquota prints what quota-tools 4.x repquota prints (repquota.c report_it / print,
 * common.c time2str, space2str, number2str), with the image in place of the device and ids
 * always numeric (`#ID`, as `repquota -n`: an image has no passwd). -v lists ids without
 * usage too (quota-tools' statistics block is not printed). setquota takes block limits in
 * 1 KiB units (K/M/G/T suffixes), inode limits (k/m/g/t), grace periods in seconds, ids as
 * numbers (`#1000` or `1000`).
 */

import type { Command } from "commander";
import { FsError, openImage, type Volume } from "../../src/node.js";
import type { DquotInfo, QuotaType } from "../../src/fs/quota.js";
import { CommandFailure } from "./errors.js";

const TYPE_NAMES: Readonly<Record<QuotaType, [string, string]>> = { usr: ["user", "User"], grp: ["group", "Group"], prj: ["project", "Project"] };

/** @kernel time2str with TF_ROUND (quota-tools common.c) */
export function time2strRound(seconds: number): string {
  let minutes = Math.floor((seconds + 30) / 60);
  let hours = Math.floor(minutes / 60);
  minutes %= 60;
  const days = Math.floor(hours / 24);
  hours %= 24;
  if (days >= 2) return `${days}days`;
  return `${String(hours + days * 24).padStart(2, "0")}:${String(minutes).padStart(2, "0")}`;
}

/** Grace left for a running timer: "" when none, "none" when it ran out. @kernel difftime2str */
function difftime2str(when: number, now: number): string {
  if (when === 0) return "";
  if (when <= now) return "none";
  return time2strRound(when - now);
}

/** KiB, or with -s the short form (K, M, G, T from 100 units on). @kernel space2str */
function space2str(kib: number, short: boolean): string {
  if (!short) return String(kib);
  const suffix = "KMGT";
  for (let i = 3; i >= 0; i--) {
    const unit = 2 ** (10 * i);
    if (kib >= unit * 100) return `${Math.ceil(kib / unit)}${suffix[i]!}`;
  }
  return `${kib}K`;
}

/** @kernel number2str */
function number2str(n: number, short: boolean): string {
  if (!short) return String(n);
  const suffix = " kmgt";
  let i = 4;
  let div = 1e12;
  for (; i > 0; i--, div /= 1000) if (n >= 100 * div) break;
  return suffix[i] !== " " ? `${Math.ceil(n / div)}${suffix[i]!}` : String(Math.ceil(n / div));
}

/** '+' when over a limit. @kernel overlim */
function overlim(usage: number, soft: number, hard: number): string {
  return (soft !== 0 && usage > soft) || (hard !== 0 && usage > hard) ? "+" : "-";
}

/** One type's report, as repquota's report_it prints it. */
export function formatReport(type: QuotaType, device: string, grace: { bgrace: number; igrace: number }, entries: readonly DquotInfo[], o: { short: boolean; verbose: boolean; now: number }): string {
  const [lower, upper] = TYPE_NAMES[type];
  let s = `*** Report for ${lower} quotas on device ${device}\n`;
  s += `Block grace time: ${time2strRound(grace.bgrace)}; Inode grace time: ${time2strRound(grace.igrace)}\n`;
  s += `                        ${o.short ? "Space" : "Block"} limits                File limits\n`;
  s += `${upper.padEnd(9)}       used    soft    hard  grace    used  soft  hard  grace\n`;
  s += "----------------------------------------------------------------------\n";
  for (const d of entries) {
    if (d.curspace === 0 && d.curinodes === 0 && !o.verbose) continue;
    const used = Math.ceil(d.curspace / 1024); // toqb
    const bsoft = Math.ceil(d.limits.bsoftlimit / 1024);
    const bhard = Math.ceil(d.limits.bhardlimit / 1024);
    const btime = bsoft !== 0 && used >= bsoft ? difftime2str(d.btime, o.now) : "";
    const itime = d.limits.isoftlimit !== 0 && d.curinodes >= d.limits.isoftlimit ? difftime2str(d.itime, o.now) : "";
    const name = `#${d.id}`;
    s += `${name.padEnd(9)} ${overlim(used, bsoft, bhard)}${overlim(d.curinodes, d.limits.isoftlimit, d.limits.ihardlimit)}`;
    s += ` ${space2str(used, o.short).padStart(7)} ${space2str(bsoft, o.short).padStart(7)} ${space2str(bhard, o.short).padStart(7)} ${btime.padStart(6)}`;
    s += ` ${number2str(d.curinodes, o.short).padStart(7)} ${number2str(d.limits.isoftlimit, o.short).padStart(5)} ${number2str(d.limits.ihardlimit, o.short).padStart(5)} ${itime.padStart(6)}\n`;
  }
  return `${s}\n\n`;
}

function typesOf(o: { user?: boolean; group?: boolean; project?: boolean }): QuotaType[] {
  const t: QuotaType[] = [];
  if (o.user === true) t.push("usr");
  if (o.group === true) t.push("grp");
  if (o.project === true) t.push("prj");
  return t.length > 0 ? t : ["usr"];
}

/** A block count in 1 KiB units with an optional K/M/G/T suffix, as bytes. @kernel str2space */
function parseSpace(s: string): number {
  const m = /^(\d+)([KMGT]?)$/.exec(s);
  if (m === null) throw new CommandFailure(`setquota: Bad block limit: ${s}`);
  const shift = { "": 0, K: 0, M: 10, G: 20, T: 30 }[m[2]!] ?? 0;
  return Number(m[1]) * 2 ** shift * 1024;
}

/** An inode count with an optional k/m/g/t suffix. @kernel str2number */
function parseNumber(s: string): number {
  const m = /^(\d+)([kmgt]?)$/.exec(s);
  if (m === null) throw new CommandFailure(`setquota: Bad inode limit: ${s}`);
  return Number(m[1]) * ({ "": 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 }[m[2]!] ?? 1);
}

function parseId(s: string): number {
  const m = /^#?(\d+)$/.exec(s);
  if (m === null || Number(m[1]) > 0xffffffff) throw new CommandFailure(`setquota: '${s}' is not a numeric id (an image has no passwd to look names up in)`);
  return Number(m[1]);
}

function parseSeconds(s: string): number {
  if (!/^\d+$/.test(s)) throw new CommandFailure(`setquota: Bad grace time: ${s}`);
  return Number(s);
}

async function withVolume<T>(image: string, writable: boolean, fn: (vol: Volume) => Promise<T>): Promise<T> {
  const vol = await openImage(image, { readOnly: !writable, syncIO: true });
  try {
    if (vol.quota === null) throw new CommandFailure(`${writable ? "setquota" : "repquota"}: ${image} has no quota feature (make it with mkfs -O quota)`);
    return await fn(vol);
  } finally {
    await vol.unmount();
  }
}

export function registerQuotaCommands(program: Command): void {
  program.command("repquota").description("report quota usage and limits (like repquota -n)")
    .argument("<image>")
    .option("-u, --user", "user quotas (the default)").option("-g, --group", "group quotas").option("-P, --project", "project quotas")
    .option("-a, --all", "every filesystem: here, the image").option("-s, --human-readable", "units K, M, G, T / k, m, g, t")
    .option("-v, --verbose", "list ids without usage too").option("-n, --no-names", "numeric ids (always: an image has no passwd)")
    .action((image: string, o: { user?: boolean; group?: boolean; project?: boolean; humanReadable?: boolean; verbose?: boolean }) => withVolume(image, false, async (vol) => {
      const q = vol.quota!; // withVolume checked
      let printed = 0;
      for (const t of typesOf(o)) {
        if (!q.types().includes(t)) {
          process.stderr.write(`ext4ts: repquota: ${image} has no ${TYPE_NAMES[t][0]} quota\n`);
          continue;
        }
        const entries = await vol.quotaReport(t);
        process.stdout.write(formatReport(t, image, q.grace(t), entries, { short: o.humanReadable === true, verbose: o.verbose === true, now: Math.floor(Date.now() / 1000) }));
        printed++;
      }
      if (printed === 0) throw new CommandFailure("");
    }));

  program.command("setquota").description("set quota limits (block limits in 1 KiB units) or, with -t, grace periods (seconds)")
    .argument("<args...>", "ID BSOFT BHARD ISOFT IHARD IMAGE, or with -t: BGRACE IGRACE IMAGE")
    .option("-u, --user", "user quota (the default)").option("-g, --group", "group quota").option("-P, --project", "project quota")
    .option("-t, --edit-period", "set the grace periods")
    .action((args: string[], o: { user?: boolean; group?: boolean; project?: boolean; editPeriod?: boolean }) => {
      const types = typesOf(o);
      if (types.length !== 1) throw new CommandFailure("setquota: give one of -u, -g, -P");
      const type = types[0]!; // length checked
      const want = o.editPeriod === true ? 3 : 6;
      if (args.length !== want) {
        throw new CommandFailure(`setquota: expected ${o.editPeriod === true ? "BGRACE IGRACE IMAGE" : "ID BSOFT BHARD ISOFT IHARD IMAGE"}, got ${args.length} arguments`);
      }
      const image = args[want - 1]!; // length checked
      const change = o.editPeriod === true
        ? { id: 0, limits: { bgrace: parseSeconds(args[0]!), igrace: parseSeconds(args[1]!) } }
        : { id: parseId(args[0]!), limits: { bsoftlimit: parseSpace(args[1]!), bhardlimit: parseSpace(args[2]!), isoftlimit: parseNumber(args[3]!), ihardlimit: parseNumber(args[4]!) } };
      return withVolume(image, true, async (vol) => {
        try {
          await vol.setQuota(type, change.id, change.limits);
        } catch (e) {
          if (e instanceof FsError) throw new CommandFailure(`setquota: ${e.message}`);
          throw e;
        }
      });
    });
}
