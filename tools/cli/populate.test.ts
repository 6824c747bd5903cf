import { describe, expect, it } from "vitest";
import { parseGetfattr } from "./populate.js";
import { ProgressLine } from "./progress.js";

describe("parseGetfattr", () => {
  it("reads paths and names quoted by attr's quote() and every value encoding", () => {
    const dump = Buffer.from([
      "# file: /t/new\\012line",
      "user.eq\\075sign=0sAAEC",
      "user.empty=",
      "user.noeq",
      'user.text="a\\042b"',
      "user.hex=0x00ff",
      "",
      "# file: /t/back\\134slash/ü",
      "system.posix_acl_access=0sAgAAAAEABgD/////",
      "",
    ].join("\n"), "utf8");
    const m = parseGetfattr(dump);
    expect([...m.keys()]).toEqual(["/t/new\nline", "/t/back\\slash/ü"]);
    const a = m.get("/t/new\nline")!;
    expect(a.map(([n]) => n)).toEqual(["user.eq=sign", "user.empty", "user.noeq", "user.text", "user.hex"]);
    expect(a.map(([, v]) => Buffer.from(v).toString("hex"))).toEqual(["000102", "", "", Buffer.from('a"b').toString("hex"), "00ff"]);
    expect(Buffer.from(m.get("/t/back\\slash/ü")![0]![1]).toString("base64")).toBe("AgAAAAEABgD/////");
  });

  it("refuses an attribute line before any file line", () => {
    expect(() => parseGetfattr(Buffer.from("user.x=0sAA==\n"))).toThrow(/before "# file:"/);
  });
});

describe("ProgressLine", () => {
  const counts = { files: 10, dirs: 2, symlinks: 1, special: 0, hardlinks: 1, bytes: 5_000_000, xattrs: 0, skipped: 0 };
  const fakeTty = { columns: 200, write: () => true } as unknown as NodeJS.WriteStream;

  it("shows entries, megabytes and a bar when the totals are known", () => {
    expect(new ProgressLine(fakeTty, "Copying", { entries: 28, bytes: 10_000_000 }).text(counts)).toBe("Copying: 14/28 files, 5.0/10.0 MB [##########..........] 50%");
  });

  it("shows counts only without totals, and fits the terminal", () => {
    expect(new ProgressLine(fakeTty, "Copying").text(counts)).toBe("Copying: 14 files, 5.0 MB");
    const narrow = { columns: 12, write: () => true } as unknown as NodeJS.WriteStream;
    expect(new ProgressLine(narrow, "Copying").text(counts)).toHaveLength(11);
  });
});
