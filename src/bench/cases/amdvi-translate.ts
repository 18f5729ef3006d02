/**
 * `amd-translate-hit`: AMD-Vi translations of 4 KiB pages that all hit a 4096-entry IOTLB (target ≤ 25 ns/op,
 * as for VT-d); baseline: a bare Map.get of the same pages. `amd-translate-walk`: no IOTLB, random pages among
 * the mapped ones, every translation walks 4-level I/O page tables; baseline: the fastest plain walk (DTE →
 * four levels, present bits only) of a copy of the same tables, pages by array index (target ratio ≤ 1.5).
 * Model and baseline samples alternate.
 */
import { PhysicalMemory } from "../../core/memory.js";
import { AmdTables, DEV_TABLE, enable, writeDte } from "../../hw/amdvi/builder.js";
import { AmdViUnit } from "../../hw/amdvi/unit.js";
import { amdMinimalWalk, FlatPages } from "../flat-pages.js";
import { measureInterleaved, result, rng, type BenchCase, type BenchOptions, type CaseResult } from "../harness.js";

const DEVID = 0x0010;
const IOVA_BASE = 0x10_0000_0000;
const HPA_BASE = 0x4000_0000;
const TWO32 = 0x1_0000_0000;

function build(pages: number, iotlbSize: number) {
  const mem = new PhysicalMemory({ ram: [{ base: 0, size: 2 ** 33 }] });
  const unit = new AmdViUnit(mem, { iotlbSize });
  const t = new AmdTables(mem);
  const root = t.alloc();
  writeDte(mem, DEVID, { V: 1, TV: 1, Mode: 4, HostPageTableRootPtr: BigInt(root / 4096), IR: 1, IW: 1, DomainID: 1 });
  for (let i = 0; i < pages; i++) t.map4k(root, 4, BigInt(IOVA_BASE + i * 4096), BigInt(HPA_BASE + i * 4096));
  enable(unit);
  return { mem, unit };
}

function halves(page: number): [number, number] {
  const a = IOVA_BASE + page * 4096;
  return [a % TWO32, Math.floor(a / TWO32)];
}

function check(unit: AmdViUnit, page: number): void {
  const [lo, hi] = halves(page);
  const r = unit.translateFast(DEVID, lo, hi, false);
  if (r !== 0 || unit.out.outLo + unit.out.outHi * TWO32 !== HPA_BASE + page * 4096) {
    throw new Error(`benchmark setup is wrong: page ${page} gave event ${r}`);
  }
}

function amdTranslateHit(opts: BenchOptions): CaseResult {
  const pages = 4096;
  const { unit } = build(pages, 4096);
  for (let p = 0; p < pages; p++) check(unit, p);
  const los = new Uint32Array(pages);
  const his = new Uint32Array(pages);
  for (let p = 0; p < pages; p++) [los[p], his[p]] = halves(p);
  const keys = new Uint32Array(pages);
  const map = new Map<number, number>();
  for (let p = 0; p < pages; p++) {
    keys[p] = (IOVA_BASE + p * 4096) / 4096;
    map.set(keys[p]!, (HPA_BASE + p * 4096) / 4096);
  }
  const missesBefore = unit.iotlb.misses;
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
          acc += unit.translateFast(DEVID, los[i]!, his[i]!, false) + unit.out.outLo;
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
  const r = result("amd-translate-hit", model!, { name: "Map.get of the same pages", samples: baseline!, interleaved: true }, {
    target: "≤ 25 ns/op, ≤ 2× Map.get",
    extra: { iotlb: `${unit.iotlb.capacity} entries, direct-mapped`, iotlbMissesDuringRun: unit.iotlb.misses - missesBefore },
  });
  r.met = r.median <= 25 && r.ratio !== null && r.ratio <= 2;
  return r;
}

function amdTranslateWalk(opts: BenchOptions): CaseResult {
  const pages = opts.quick ? 4096 : 1 << 18;
  opts.progress(`amd-translate-walk: mapping ${pages} pages…`);
  const { mem, unit } = build(pages, 0);
  const flat = FlatPages.copy(mem).pages;
  const dtePfn = Math.floor((DEV_TABLE + DEVID * 32) / 4096);
  const dteWord = ((DEV_TABLE + DEVID * 32) % 4096) / 4;
  const rand = rng(0xa3d1);
  const order = new Uint32Array(1 << 16).map(() => Math.floor(rand() * pages));
  const los = new Uint32Array(order.length);
  const his = new Uint32Array(order.length);
  for (let i = 0; i < order.length; i++) [los[i], his[i]] = halves(order[i]!);
  for (let i = 0; i < 64; i++) {
    check(unit, order[i]!);
    if (amdMinimalWalk(flat, dtePfn, dteWord, los[i]!, his[i]!) * 4096 !== HPA_BASE + order[i]! * 4096) throw new Error("baseline walker disagrees with the model");
  }
  const ops = opts.quick ? 2000 : 200_000;
  const samples = opts.quick ? 3 : 15;
  const mask = order.length - 1;
  const [model, baseline] = measureInterleaved(
    [
      (n) => {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += unit.translateFast(DEVID, los[k & mask]!, his[k & mask]!, false) + unit.out.outLo;
        return acc;
      },
      (n) => {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += amdMinimalWalk(flat, dtePfn, dteWord, los[k & mask]!, his[k & mask]!);
        return acc;
      },
    ],
    ops,
    samples,
  );
  const r = result("amd-translate-walk", model!, { name: "plain walk, pages by index", samples: baseline!, interleaved: true }, { target: "ratio ≤ 1.5", extra: { mappedPages: pages } });
  r.met = r.ratio !== null && r.ratio <= 1.5;
  return r;
}

export const amdTranslateHitCase: BenchCase = {
  name: "amd-translate-hit",
  summary: "AMD-Vi 4 KiB translations that all hit a 4096-entry IOTLB, vs Map.get of the same pages",
  run: (opts) => [amdTranslateHit(opts)],
};

export const amdTranslateWalkCase: BenchCase = {
  name: "amd-translate-walk",
  summary: "AMD-Vi translations walking 4-level I/O page tables (no IOTLB) vs a plain walk of the same tables",
  run: (opts) => [amdTranslateWalk(opts)],
};
