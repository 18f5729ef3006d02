/**
 * `translate-hit`: translations of 4 KiB pages that all hit the IOTLB (target ≤ 25 ns/op); baseline: a bare
 * Map.get of the same pages (target ratio ≤ 2). `translate-walk`: an IOTLB that cannot help (one entry, random
 * pages among 1,048,576 mapped ones) so every translation walks 4-level second-level tables; baseline: the
 * fastest plain walk of a copy of the same tables (pages by array index, integer index math, present bits
 * only — see flat-pages.ts; target ratio ≤ 1.5). Model and baseline samples alternate.
 */
import { PhysicalMemory } from "../../core/memory.js";
import { VtdUnit } from "../../hw/vtd/unit.js";
import { VtdTables, enableTranslation } from "../../hw/vtd/builder.js";
import type { CacheGeometry } from "../../hw/vtd/config.js";
import { FlatPages, vtdMinimalWalk } from "../flat-pages.js";
import { measureInterleaved, result, rng, type BenchCase, type BenchOptions, type CaseResult } from "../harness.js";

const SID = 0x0010; // 00:02.0
const IOVA_BASE = 0x10_0000_0000; // above 4 GiB, so translations exercise the high half
const HPA_BASE = 0x4000_0000;

interface Setup {
  mem: PhysicalMemory;
  unit: VtdUnit;
  tables: VtdTables;
}

function build(pages: number, iotlb: CacheGeometry): Setup {
  // Memory as a machine has it: the RAM ranges of a memory map (8 GiB from 0 covers the tables and the pages).
  const mem = new PhysicalMemory({ ram: [{ base: 0, size: 2 ** 33 }] });
  const unit = new VtdUnit({ memory: mem, config: { awBits: 48, iotlb } });
  const tables = new VtdTables(mem, 0x100000);
  const d = tables.domain(1, 4);
  tables.attach(SID, d);
  for (let i = 0; i < pages; i++) tables.map(d, IOVA_BASE + i * 4096, HPA_BASE + i * 4096);
  enableTranslation(unit, tables.root);
  return { mem, unit, tables };
}

function iovaHalves(page: number): [number, number] {
  const a = IOVA_BASE + page * 4096;
  return [a % 0x1_0000_0000, Math.floor(a / 0x1_0000_0000)];
}

function checkTranslation(s: Setup, page: number): void {
  const [lo, hi] = iovaHalves(page);
  const r = s.unit.translateFast(SID, lo, hi, false);
  const want = HPA_BASE + page * 4096;
  if (r !== 0 || s.unit.outLo + s.unit.outHi * 0x1_0000_0000 !== want) {
    throw new Error(`benchmark setup is wrong: page ${page} translated to reason ${r}, 0x${s.unit.outLo.toString(16)}`);
  }
}

/** The pages among the first `candidates` that stay resident in the IOTLB together (it hashes pages over sets). */
function residentPages(s: Setup, candidates: number): number[] {
  let working = Array.from({ length: candidates }, (_, i) => i);
  for (let pass = 0; pass < 4; pass++) {
    const kept: number[] = [];
    for (const p of working) {
      const before = s.unit.stats().iotlb.hits;
      checkTranslation(s, p);
      if (pass === 0 || s.unit.stats().iotlb.hits > before) kept.push(p);
    }
    working = kept;
  }
  return working;
}

export function translateHit(opts: BenchOptions): CaseResult {
  const geometry: CacheGeometry = { sets: 512, ways: 8, policy: "lru" };
  const s = build(8192, geometry);
  const unit = s.unit;
  const working = residentPages(s, 4096);
  const pages = working.length;
  const los = new Uint32Array(pages);
  const his = new Uint32Array(pages);
  working.forEach((p, i) => ([los[i], his[i]] = iovaHalves(p)));
  // The baseline: the same pages as keys of a Map (IOVA page number → output page number), one get each.
  const keys = new Uint32Array(pages);
  const map = new Map<number, number>();
  working.forEach((p, i) => {
    keys[i] = (IOVA_BASE + p * 4096) / 4096;
    map.set(keys[i]!, (HPA_BASE + p * 4096) / 4096);
  });
  const before = unit.stats().iotlb;
  const total = opts.quick ? 20_000 : 10_000_000;
  const samples = opts.quick ? 3 : 20;
  let i = 0;
  let j = 0;
  const [model, baseline] = measureInterleaved(
    [
      (n) => {
        let acc = 0;
        for (let k = 0; k < n; k++) {
          if (++i === pages) i = 0;
          acc += unit.translateFast(SID, los[i]!, his[i]!, false) + unit.outLo;
        }
        return acc;
      },
      (n) => {
        let acc = 0;
        for (let k = 0; k < n; k++) {
          if (++j === pages) j = 0;
          acc += map.get(keys[j]!) ?? 0;
        }
        return acc;
      },
    ],
    Math.ceil(total / samples),
    samples,
  );
  const after = unit.stats().iotlb;
  const r = result("translate-hit", model!, { name: "Map.get of the same pages", samples: baseline!, interleaved: true }, {
    target: "≤ 25 ns/op, ≤ 2× Map.get",
    extra: {
      iotlb: `${geometry.sets} sets × ${geometry.ways} ways (${after.capacity} entries, ${geometry.policy}), ${unit.iotlb.acceleratorEntries}-entry lookup accelerator`,
      workingSetPages: pages,
      iotlbMissesDuringRun: after.misses - before.misses,
    },
  });
  r.met = r.median <= 25 && r.ratio !== null && r.ratio <= 2;
  return r;
}

export function translateWalk(opts: BenchOptions): CaseResult {
  const pages = opts.quick ? 4096 : 1 << 20;
  opts.progress(`translate-walk: mapping ${pages} pages…`);
  const s = build(pages, { sets: 1, ways: 1, policy: "lru" });
  const flat = FlatPages.copy(s.mem).pages;
  const rootPfn = s.tables.root / 4096;
  const rand = rng(0x7a1c);
  const order = new Uint32Array(1 << 16).map(() => Math.floor(rand() * pages));
  const los = new Uint32Array(order.length);
  const his = new Uint32Array(order.length);
  for (let i = 0; i < order.length; i++) [los[i], his[i]] = iovaHalves(order[i]!);
  for (let i = 0; i < 64; i++) {
    checkTranslation(s, order[i]!);
    if (vtdMinimalWalk(flat, rootPfn, SID, los[i]!, his[i]!) * 4096 !== HPA_BASE + order[i]! * 4096) {
      throw new Error("baseline walker disagrees with the model");
    }
  }
  const unit = s.unit;
  const ops = opts.quick ? 2000 : 200_000;
  const samples = opts.quick ? 3 : 15;
  const mask = order.length - 1;
  const walksBefore = unit.stats().walks;
  const [model, baseline] = measureInterleaved(
    [
      (n) => {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += unit.translateFast(SID, los[k & mask]!, his[k & mask]!, false) + unit.outLo;
        return acc;
      },
      (n) => {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += vtdMinimalWalk(flat, rootPfn, SID, los[k & mask]!, his[k & mask]!);
        return acc;
      },
    ],
    ops,
    samples,
  );
  const walks = unit.stats().walks - walksBefore;
  const r = result("translate-walk", model!, { name: "plain walk, pages by index", samples: baseline!, interleaved: true }, {
    target: "ratio ≤ 1.5",
    extra: { mappedPages: pages, tablePages: s.mem.backedPages, walksPerTranslation: walks / (ops * (samples + 2)) },
  });
  r.met = r.ratio !== null && r.ratio <= 1.5;
  return r;
}

export const translateHitCase: BenchCase = {
  name: "translate-hit",
  summary: "4 KiB translations that all hit the IOTLB, vs Map.get of the same pages",
  run: (opts) => [translateHit(opts)],
};

export const translateWalkCase: BenchCase = {
  name: "translate-walk",
  summary: "translations walking 4-level tables (1M mapped pages, no IOTLB help) vs a plain walk of the same tables",
  run: (opts) => [translateWalk(opts)],
};
