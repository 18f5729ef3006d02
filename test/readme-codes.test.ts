/** The README's doctor section names every code the doctor can report: each problem, finding and check. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return sources(p);
    return n.endsWith(".ts") && !n.endsWith(".test.ts") ? [p] : [];
  });
}

test("every doctor code appears in the README", () => {
  const readme = readFileSync("README.md", "utf8");
  const codes = new Set<string>();
  const patterns = [
    /\bproblem\("([A-Z0-9_]+)"/g,
    /\b(?:failed|noted|incomplete|passed)\("([A-Z0-9_]+)"(?:, "([A-Z0-9_]+)")?/g,
    /\bitem\("([A-Z0-9_]+)"/g,
    /\bitem\(c\.check/g,
  ];
  for (const f of sources("src/host")) {
    const text = readFileSync(f, "utf8");
    for (const re of patterns) for (const m of text.matchAll(re)) for (const c of m.slice(1)) if (c) codes.add(c);
  }
  assert.ok(codes.size > 40, `found only ${codes.size} codes: the patterns no longer match the sources`);
  const missing = [...codes].filter((c) => !readme.includes(`\`${c}\``)).sort();
  assert.deepEqual(missing, [], "codes the README does not list");
});
