import { test } from "node:test";
import assert from "node:assert/strict";
import { benchCases, iovaPlot, runBench, updateReadme } from "./run.js";
import { percentile, stats } from "./harness.js";

test("stats: median and percentiles of samples", () => {
  const s = stats([5, 1, 4, 2, 3]);
  assert.equal(s.median, 3);
  assert.equal(s.p10, 1);
  assert.equal(s.p90, 5);
  assert.equal(s.opsPerSec, 1e9 / 3);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test("smoke: every case runs a few iterations and reports the JSON contract's fields", async () => {
  const report = await runBench([], { quick: true, progress: () => {} });
  assert.ok(report.machine.node.startsWith("v"));
  const names = report.cases.map((c) => c.name);
  for (const c of benchCases) assert.ok(names.some((n) => n === c.name || n.startsWith(`${c.name}@`)), c.name);
  for (const c of report.cases) {
    for (const k of ["name", "unit", "median", "p10", "p90", "opsPerSec", "baseline", "ratio"]) assert.ok(k in c, `${c.name}.${k}`);
    assert.ok(c.median > 0 && c.p10 <= c.median && c.median <= c.p90, c.name);
  }
  const svg = iovaPlot(report);
  assert.ok(svg?.startsWith("<svg"));
  const readme = updateReadme("a\n<!-- bench:start -->\nold\n<!-- bench:end -->\nb\n", report, "bench/out/iova.svg");
  assert.match(readme, /^a\n<!-- bench:start -->\n[\s\S]*iova@[\s\S]*iova\.svg[\s\S]*<!-- bench:end -->\nb\n$/);
  assert.doesNotMatch(readme, /old/);
});
