/**
 * Bad input, generated: every command of the table with unknown options, malformed numbers and addresses, paths
 * that are missing, directories, empty or not what they should be, and JSON of the wrong shape. The answer is
 * always a documented exit code and, for an error, one coded line (plus a hint) — never an internal error.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "../../test/support/cli.js";
import type { Command } from "./command.js";
import { commands } from "./commands/index.js";

const tmp = mkdtempSync(join(tmpdir(), "iommu-bad-input-"));
const put = (name: string, data: string | Uint8Array): string => {
  const p = join(tmp, name);
  writeFileSync(p, data);
  return p;
};
const BAD_VALUES = [
  "-5", "-0x10", "0x", "zz", "0xfffffffffffffffffffff", "99999999999999999999", "1e3", "", " ", "00:99.9", "0000:00:1f.8",
  "/nonexistent/file", tmp, put("empty", ""), put("null.json", "null"), put("list.json", "[]"), put("str.json", '"x"'),
  put("trunc.json", '{"name": "x", "iommus": ['), put("unknown.json", '{"iommu": []}'), put("short.bin", new Uint8Array(3)),
  put("text.txt", "not a table"), "q35-nosuch", "-",
];

interface Leaf {
  path: string[];
  cmd: Command;
}

function leaves(list: Command[], prefix: string[] = []): Leaf[] {
  return list.flatMap((c) => (c.subcommands ? leaves(c.subcommands, [...prefix, c.name]) : [{ path: [...prefix, c.name], cmd: c }]));
}

const LEAVES = leaves(commands);

/** argv for a leaf: its value options given bad values, perhaps an unknown option, perhaps stray positionals. */
const badArgv = fc
  .record({
    leaf: fc.constantFrom(...LEAVES),
    picks: fc.array(fc.tuple(fc.nat(), fc.constantFrom(...BAD_VALUES)), { minLength: 1, maxLength: 3 }),
    unknown: fc.option(fc.stringMatching(/^--?[a-zA-Z][a-zA-Z-]{0,10}$/), { freq: 3 }),
    positionals: fc.array(fc.constantFrom(...BAD_VALUES), { maxLength: 2 }),
  })
  .map(({ leaf, picks, unknown, positionals }) => {
    const valueOptions = Object.entries(leaf.cmd.options ?? {}).filter(([, o]) => o.type === "string").map(([n]) => n);
    const argv = [...leaf.path, ...positionals];
    for (const [i, v] of picks) if (valueOptions.length > 0) argv.push(`--${valueOptions[i % valueOptions.length]!}`, v);
    if (unknown !== null) argv.push(unknown);
    return argv;
  });

test("generated bad input to every command: documented exit code, one coded error line, never an internal error", async () => {
  const seen = new Set<string>();
  await fc.assert(
    fc.asyncProperty(badArgv, async (argv) => {
      // Commands that would run for a long time on valid input are given an unknown option as well.
      if (["tour", "scenario", "bench"].includes(argv[0]!)) argv.push("--no-such-option");
      const r = await cli(argv);
      seen.add(argv.slice(0, 2).join(" "));
      assert.ok([0, 1, 2].includes(r.code), `iommu ${argv.join(" ")} → ${r.code}\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /internal error/, `iommu ${argv.join(" ")}`);
      if (r.code === 2) {
        const lines = r.stderr.trimEnd().split("\n").filter((l) => !l.startsWith("hint: ") && !l.startsWith("iommu: note: "));
        assert.equal(lines.length, 1, `one error line for iommu ${argv.join(" ")}:\n${r.stderr}`);
        assert.match(lines[0]!, /^iommu: error: .+ \[[A-Z_]+\]$/);
      }
    }),
    { numRuns: 250, seed: 20261204 },
  );
  assert.ok(seen.size >= 10, `commands reached: ${[...seen].join(", ")}`);
});
