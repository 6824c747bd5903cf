/**
 * The text `ext4ts fsck` prints on stdout for a repairing run (or a plain -n one), built from
 * the library's report as tools/cli/fsck_cmd.ts builds it: for tests that compare it with
 * e2fsck's without starting the CLI.
 */
import { FileDevice } from "../../src/device/file.js";
import { check, formatProblem, type CheckOptions, type FsckReport } from "../../src/fsck/check.js";

export async function checkWithText(img: string, repair?: CheckOptions["repair"]): Promise<{ report: FsckReport; out: string }> {
  const dev = await FileDevice.open(img, repair === undefined ? { readOnly: true } : {});
  let out = "";
  try {
    const report = await check(dev, {
      force: true,
      name: img,
      ...(repair !== undefined ? { repair } : {}),
      onPass: (_p, title) => {
        out += `${title}\n`;
      },
      onWarning: (w) => {
        out += `${w}\n`;
      },
      onProblem: (p) => {
        out += formatProblem(p);
      },
    });
    if (report.modified) out += `\n${report.device}: ***** FILE SYSTEM WAS MODIFIED *****\n`;
    if (!report.clean) out += `\n${report.device}: ********** WARNING: Filesystem still has errors **********\n\n`;
    if (report.aborted === undefined) out += `${report.summaryLine}\n`;
    return { report, out };
  } finally {
    await dev.close();
  }
}
