#!/usr/bin/env node
// Runs every *.test.ts under src/, bench/ and test/ with Node's test runner, TypeScript loaded through tsx.
// Usage: node scripts/run-tests.mjs [path-prefix ...]   e.g. `npm run unit -- src/acpi`
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist" || name === "fixtures" || name === "corpus" || name.startsWith(".")) continue;
    const p = join(dir, name);
    if (lstatSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const prefixes = process.argv.slice(2);
const roots = ["src", "bench", "test"];
let files = roots.flatMap((r) => { try { return walk(r, []); } catch { return []; } }).sort();
if (prefixes.length > 0) files = files.filter((f) => prefixes.some((p) => f.startsWith(p)));
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...files], {
  stdio: "inherit",
  env: { ...process.env, IOMMU_KIT_TEST: "1" },
});
process.exit(r.status ?? 1);
