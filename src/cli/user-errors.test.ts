/** What a user sees on ordinary mistakes: one error line naming what and where, a hint, exit 2, never a crash. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli, type CliResult } from "../../test/support/cli.js";
import { PRESET_NAMES } from "../hw/machine-presets.js";

function errorLines(r: CliResult): string[] {
  return r.stderr.split("\n").filter((l) => l !== "");
}

function assertOneLineError(r: CliResult, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
  const lines = errorLines(r);
  assert.ok(lines.length >= 1 && lines.length <= 2, r.stderr);
  assert.match(lines[0]!, pattern);
  if (lines[1] !== undefined) assert.match(lines[1], /^hint: /);
}

describe("bad options", () => {
  it("an unknown option is named in one line, with balanced quotes", async () => {
    const r = await cli(["status", "--bogus"]);
    assertOneLineError(r, /^iommu: error: unknown option '--bogus' \[USAGE\]$/);
    assert.doesNotMatch(r.stderr, /did you mean/);
  });

  it("a near miss suggests the option it resembles", async () => {
    const r = await cli(["status", "--snapshto", "x"]);
    assertOneLineError(r, /unknown option '--snapshto'/);
    assert.match(errorLines(r)[1]!, /(?:did you mean )?'--snapshot'\?/);
  });

  it("a negative number is read as the option's value and rejected by name", async () => {
    const r = await cli(["walk", "--mem", "x", "--rtaddr", "0", "--bdf", "00:03.0", "--iova", "-5"]);
    assertOneLineError(r, /--iova: '-5' is not a hexadecimal number/);
  });

  it("a value too large or not hex names the option", async () => {
    const big = await cli(["walk", "--mem", "x", "--rtaddr", "0", "--bdf", "00:03.0", "--iova", "0x1" + "0".repeat(16)]);
    assertOneLineError(big, /--iova: .* does not fit in 64 bits/);
    const nothex = await cli(["walk", "--mem", "x", "--rtaddr", "zz", "--bdf", "00:03.0", "--iova", "0"]);
    assertOneLineError(nothex, /--rtaddr: 'zz' is not a hexadecimal number/);
  });

  it("a string option without its value says so", async () => {
    assertOneLineError(await cli(["status", "--sim"]), /option '--sim' needs a value/);
  });

  it("boolean short options still combine (-kj)", async () => {
    const r = await cli(["groups", "-kj", "--sim", "q35"]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotThrow(() => JSON.parse(r.stdout));
  });

  it("--sim with an unknown name lists the presets", async () => {
    const r = await cli(["status", "--sim", "nosuch"]);
    assertOneLineError(r, /nosuch: no such file, and not a machine preset/);
    for (const p of PRESET_NAMES) assert.match(r.stderr, new RegExp(`\\b${p}\\b`));
  });
});

describe("machine files are validated strictly", () => {
  const dir = mkdtempSync(join(tmpdir(), "iommu-machine-"));
  const boot = async (name: string, text: string): Promise<CliResult> => {
    const f = join(dir, `${name}.json`);
    writeFileSync(f, text);
    return cli(["sim", "boot", "--machine", f]);
  };
  const cases: [string, string, RegExp, RegExp | null][] = [
    ["top", '{"iommu": []}', /: iommu: unknown key/, /(?:did you mean )?'iommus'\?/],
    ["ir", '{"iommus": [{"interruptRemaping": false}]}', /iommus\[0\]\.interruptRemaping: unknown key/, /(?:did you mean )?'interruptRemapping'\?/],
    ["aw", '{"iommus": [{"dmabits": 32}]}', /iommus\[0\]\.dmabits: unknown key/, null],
    ["ram", '{"ram": {"sise": "4G"}}', /ram\.sise: unknown key/, /(?:did you mean )?'size'\?/],
    ["null", "null", /machine: expected a JSON object/, null],
    ["array", "[1, 2]", /machine: expected a JSON object/, null],
    ["type", '{"iommus": [{"interruptRemapping": "no"}]}', /iommus\[0\]\.interruptRemapping: expected true or false/, null],
    ["empty", "", /empty|not valid JSON/, null],
    ["truncated", '{"iommus": [', /not valid JSON/, null],
  ];
  for (const [name, text, msg, hint] of cases) {
    it(`${name}: ${text || "(empty)"}`, async () => {
      const r = await boot(name, text);
      assertOneLineError(r, msg);
      assert.match(errorLines(r)[0]!, new RegExp(`${name}\\.json`));
      if (hint) assert.match(r.stderr, hint);
    });
  }
  it("a valid file still boots", async () => {
    const r = await boot("ok", '{"name": "ok", "iommus": [{"interruptRemapping": false}]}');
    assert.equal(r.code, 0, r.stderr);
    rmSync(dir, { recursive: true, force: true });
  });
});
