/**
 * `iova`: the cost of an alloc+free pair of a random size (1–32 pages) with 1 K, 64 K and 1 M live allocations,
 * with Linux's per-CPU range caches, next to the same tree without them (the baseline, measured in this run).
 * Target: ≤ 150 ns/op at 1 M live, and cost(1 M) / cost(1 K) ≤ 2.
 */
import { IovaDomain } from "../../os/iova.js";
import { measureInterleaved, result, rng, type BenchCase, type BenchOptions, type CaseResult } from "../harness.js";

const LIMIT = 2 ** 36 - 1; // a 48-bit IOVA space in 4 KiB pages

function populate(d: IovaDomain, live: number, rand: () => number): void {
  for (let i = 0; i < live; i++) {
    if (d.allocFast(1 + Math.floor(rand() * 32), LIMIT) === null) throw new Error("IOVA space exhausted while populating");
  }
}

function pairs(d: IovaDomain, sizes: Uint8Array): (n: number) => number {
  let i = 0;
  return (n) => {
    let acc = 0;
    for (let k = 0; k < n; k++) {
      const size = sizes[i++ & (sizes.length - 1)]!;
      const p = d.allocFast(size, LIMIT)!;
      d.freeFast(p, size);
      acc += p;
    }
    return acc;
  };
}

export function measureIova(live: number, opts: BenchOptions): CaseResult {
  const rand = rng(0x1da ^ live);
  const sizes = new Uint8Array(1 << 16).map(() => 1 + Math.floor(rand() * 32));
  const ops = opts.quick ? 200 : 100_000;
  const samples = opts.quick ? 3 : 15;
  const cached = new IovaDomain({ rcache: true });
  populate(cached, live, rng(live));
  const plain = new IovaDomain({ rcache: false });
  populate(plain, live, rng(live));
  const [withCaches, baseline] = measureInterleaved([pairs(cached, sizes), pairs(plain, sizes)], ops, samples);
  const label = live >= 1 << 20 ? "1m" : live >= 1 << 16 ? "64k" : `${live >> 10}k`;
  return result(`iova@${label}`, withCaches!, { name: "tree without range caches", samples: baseline!, interleaved: true }, {
    extra: { live, treeRanges: cached.treeRanges, walkStepsPerPairBaseline: plain.stats.walkSteps / Math.max(1, plain.stats.allocs) },
  });
}

export const iovaCase: BenchCase = {
  name: "iova",
  summary: "IOVA alloc+free pairs (1–32 pages) at 1K, 64K and 1M live allocations, vs the tree without caches",
  run(opts) {
    const lives = opts.quick ? [1 << 10, 1 << 12, 1 << 13] : [1 << 10, 1 << 16, 1 << 20];
    const results = lives.map((live) => {
      opts.progress(`iova: ${live} live allocations…`);
      return measureIova(live, opts);
    });
    const first = results[0]!;
    const last = results[results.length - 1]!;
    last.target = "≤ 150 ns/op, ≤ 2× the 1K cost";
    last.met = last.median <= 150 && last.median / first.median <= 2;
    last.extra = { ...last.extra, costRatioToSmallest: last.median / first.median };
    return results;
  },
};
