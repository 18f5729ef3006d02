/**
 * Structure of the source tree: no import cycles, files of at most ~600 lines, functions of at most 100 lines
 * unless a comment before them says why. Known offenders are listed below; each entry must still be an offender,
 * so the list shrinks as files are fixed (a stale entry fails and asks to be removed).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { allImports, functionSpans, importCycles, lineCount, parse, runtimeImports, sourceFiles } from "./support/program.js";

const MAX_FILE_LINES = 600;
const MAX_FUNCTION_LINES = 100;

/** Files over MAX_FILE_LINES still waiting to be split. */
const KNOWN_LONG_FILES = new Set<string>([]);

/** Functions over MAX_FUNCTION_LINES without a reason, still waiting to be split ("file:name"). */
const KNOWN_LONG_FUNCTIONS = new Set<string>([
]);

/** A comment that gives the reason a function is long starts with this. */
const LONG_FUNCTION_REASON = /\blong function:/i;

const shipped = sourceFiles(["src"], false);
const everything = sourceFiles(["src", "test", "lab", "scripts"], true);

test("no runtime import cycles among the shipped modules", () => {
  assert.deepEqual(importCycles(shipped, false).map((c) => c.join(" ↔ ")), []);
});

test("no import cycles through type-only imports either", () => {
  assert.deepEqual(importCycles(shipped, true).map((c) => c.join(" ↔ ")), []);
});

test("the cycle finder sees cycles through runtime imports, re-exports and (when asked) `import type`", () => {
  const root = mkdtempSync(join(tmpdir(), "iommu-cycles-"));
  try {
    const files: Record<string, string> = {
      "a.ts": 'import { b } from "./b.js";\nexport const a = b;\n',
      "b.ts": 'import type { A } from "./c.js";\nexport const b = 1;\nexport type B = A;\n',
      "c.ts": 'export type { B as A } from "./b.js";\n',
      "d.ts": 'export { e } from "./sub/e.js";\nexport const d = 1;\n',
      "sub/e.ts": 'import { d } from "../d.js";\nexport const e = d;\n',
      "f.ts": 'import { f as g } from "./f.js";\nexport const f = 1;\nvoid g;\n',
    };
    mkdirSync(join(root, "sub"));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(root, name), text);
    const names = Object.keys(files);
    assert.deepEqual(importCycles(names, false, root), [["d.ts", "sub/e.ts"], ["f.ts"]]);
    assert.deepEqual(importCycles(names, true, root), [["b.ts", "c.ts"], ["d.ts", "sub/e.ts"], ["f.ts"]]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  assert.ok(runtimeImports("src/acpi/dmar.ts").includes("src/acpi/dmar-decode.ts"));
});

test("every shipped module is reachable from the CLI or a library entry point (test support lives in test/)", () => {
  const shippedSet = new Set(shipped);
  const seen = new Set<string>();
  const todo = ["src/cli/main.ts", ...shipped.filter((f) => f.startsWith("src/api/"))];
  assert.ok(todo.length > 1, "the library entry points are in src/api/");
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const t of allImports(f)) if (shippedSet.has(t)) todo.push(t);
  }
  assert.deepEqual(shipped.filter((f) => !seen.has(f)), []);
});

test(`source files are at most ${MAX_FILE_LINES} lines, except the known ones (which must still be long)`, () => {
  const long = everything.filter((f) => lineCount(f) > MAX_FILE_LINES);
  assert.deepEqual(long.filter((f) => !KNOWN_LONG_FILES.has(f)).map((f) => `${f}: ${lineCount(f)} lines`), []);
  for (const f of KNOWN_LONG_FILES) {
    assert.ok(long.includes(f), `${f} is ${lineCount(f)} lines now: remove it from KNOWN_LONG_FILES`);
  }
});

test(`functions are at most ${MAX_FUNCTION_LINES} lines unless a "long function:" comment says why`, () => {
  const long = everything
    .filter((f) => !f.includes(".test.")) // a test body is a list of steps, not a function to split
    .flatMap((f) => functionSpans(f, parse(f)))
    .filter((s) => s.lines > MAX_FUNCTION_LINES);
  const unexplained = long.filter((s) => !LONG_FUNCTION_REASON.test(s.leadingComment));
  const keys = unexplained.map((s) => `${s.file}:${s.name}`);
  assert.deepEqual(
    unexplained.filter((s) => !KNOWN_LONG_FUNCTIONS.has(`${s.file}:${s.name}`)).map((s) => `${s.file}:${s.line} ${s.name}: ${s.lines} lines`),
    [],
  );
  for (const k of KNOWN_LONG_FUNCTIONS) assert.ok(keys.includes(k), `${k} is short now (or explained): remove it from KNOWN_LONG_FUNCTIONS`);
});
