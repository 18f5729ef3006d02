import { test } from "node:test";
import assert from "node:assert/strict";
import { benchCases, iovaPlot, runBench, updateReadme } from "./run.js";
import { measureInterleaved, percentile, renderExtras, renderTable, stats } from "./harness.js";

test("stats: median and percentiles of samples", () => {
  const s = stats([5, 1, 4, 2, 3]);
  assert.equal(s.median, 3);
  assert.equal(s.p10, 1);
  assert.equal(s.p90, 5);
  assert.equal(s.opsPerSec, 1e9 / 3);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test("interleaved measurement: alternating samples, one series per batch function", () => {
  const order: string[] = [];
  const [a, b] = measureInterleaved([(n) => (order.push("a"), n), (n) => (order.push("b"), n)], 10, 3, 1);
  assert.deepEqual(order, ["a", "b", "a", "b", "a", "b", "a", "b"]);
  assert.equal(a?.length, 3);
  assert.equal(b?.length, 3);
});

test("smoke: every case runs a few iterations and reports the JSON contract's fields", async () => {
  const report = await runBench([], { quick: true, progress: () => {} });
  assert.ok(report.machine.node.startsWith("v"));
  const names = report.cases.map((c) => c.name);
  for (const c of benchCases) assert.ok(names.some((n) => n === c.name || n.startsWith(`${c.name}@`)), c.name);
  for (const c of report.cases) {
    for (const k of ["name", "unit", "median", "p10", "p90", "opsPerSec", "baseline", "ratio"]) assert.ok(k in c, `${c.name}.${k}`);
    assert.ok(c.median > 0 && c.p10 <= c.median && c.median <= c.p90, c.name);
    // Each case ran in a process of its own, which reported its peak resident memory.
    assert.ok((c.peakRssBytes ?? 0) > 2 ** 20, `${c.name} peak RSS`);
  }
  const rows = new Map(report.cases.map((c) => [c.name, c]));
  for (const n of ["translate-hit", "translate-walk", "amd-translate-hit", "amd-translate-walk", "dump-walk@cold", "dump-walk@warm", "dma-map-sg@strict", "dma-map-sg@lazy"]) {
    assert.ok(rows.get(n)?.baseline !== null && rows.get(n)?.ratio !== null, `${n} has a same-run baseline`);
  }
  assert.ok(Number(rows.get("dump-walk@cold")?.extra?.bytesReadPerQuery) >= 4096, "cold queries read the file");
  assert.equal(rows.get("dump-walk@warm")?.extra?.bytesReadPerQuery, 0);
  assert.match(String(rows.get("translate-hit")?.extra?.iotlb), /^512 sets × 8 ways \(4096 entries, lru\)/);
  assert.notEqual(rows.get("scale@boot-256")?.peakRssBytes, rows.get("scale@rss-10m")?.peakRssBytes);
  assert.match(renderTable(report.cases), /peak RSS/);
  assert.match(renderExtras(report.cases), /^translate-hit: iotlb 512 sets/m);
  const svg = iovaPlot(report);
  assert.ok(svg?.startsWith("<svg"));
  const readme = updateReadme("a\n<!-- bench:start -->\nold\n<!-- bench:end -->\nb\n", report, "bench/out/iova.svg");
  assert.match(readme, /^a\n<!-- bench:start -->\n[\s\S]*iova@[\s\S]*iova\.svg[\s\S]*<!-- bench:end -->\nb\n$/);
  assert.doesNotMatch(readme, /\nold\n/);
});
