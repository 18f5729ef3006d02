import { test } from "node:test";
import assert from "node:assert/strict";
import { benchCases, iovaPlot, runBench, updateReadme } from "./run.js";
import { measureInterleaved, percentile, renderExtras, renderTable, stats } from "./harness.js";
import { BASELINE_LAYOUT as L } from "./flat-pages.js";
import { ridBus, ridDevfn } from "../core/pci.js";
import { HI_DWORD_OFFSET, TWO32 } from "../core/u64.js";
import { contextEntryOffset, ENTRY_P, rootEntryOffset } from "../spec/vtd/context.js";
import { levelShift, PAGE_SHIFT_4K, PAGE_SIZE_4K, PTES_PER_TABLE, SL_ENTRY, SL_ENTRY_SIZE, SL_PRESENT } from "../spec/vtd/paging.js";
import { levelShift as amdLevelShift, PTE_ADDR, PTE_PR } from "../spec/amdvi/pte.js";
import { DTE_V } from "../spec/amdvi/dte.js";

test("stats: median and percentiles of samples", () => {
  const s = stats([5, 1, 4, 2, 3]);
  assert.equal(s.median, 3);
  assert.equal(s.p10, 1);
  assert.equal(s.p90, 5);
  assert.equal(s.opsPerSec, 1e9 / 3);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test("the baseline walkers' numbers are the specifications' layout (VT-d 9.1, 9.3, 9.8; AMD-Vi 2.2.2.1, 2.2.3)", () => {
  assert.equal(L.PAGE_SHIFT, PAGE_SHIFT_4K);
  assert.equal(L.ADDR_HI_MASK, 2 ** (SL_ENTRY.ADDR.lsb + SL_ENTRY.ADDR.width - 32) - 1);
  assert.equal(L.ADDR_HI_MASK, 2 ** (PTE_ADDR.lsb + PTE_ADDR.width - 32) - 1);
  assert.equal(L.PFNS_PER_HI, TWO32 / PAGE_SIZE_4K);
  assert.equal(L.INDEX_MASK, PTES_PER_TABLE - 1);
  for (const shift of [levelShift, amdLevelShift]) {
    assert.deepEqual([L.L1_SHIFT, L.L2_SHIFT, L.L3_LO_SHIFT, L.L4_HI_SHIFT + 32], [1, 2, 3, 4].map((lv) => shift(lv)));
  }
  assert.equal(L.L3_HI_SHIFT, 32 - levelShift(3));
  assert.equal(4 << L.ENTRY_WORDS_SHIFT, SL_ENTRY_SIZE);
  assert.equal(4 * L.HI_WORD, HI_DWORD_OFFSET);
  assert.equal(4 << L.ROOT_CONTEXT_WORDS_SHIFT, rootEntryOffset(1));
  assert.equal(4 << L.ROOT_CONTEXT_WORDS_SHIFT, contextEntryOffset(1));
  assert.equal(0xabcd >>> L.BUS_SHIFT, ridBus(0xabcd));
  assert.equal(0xabcd & L.DEVFN_MASK, ridDevfn(0xabcd));
  assert.equal(L.VTD_ROOT_CONTEXT_P, ENTRY_P);
  assert.equal(L.VTD_PAGING_P, SL_PRESENT);
  assert.equal(L.AMD_P, 2 ** PTE_PR.lsb);
  assert.equal(L.AMD_P, 2 ** DTE_V.lsb);
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
