import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { IovaDomain, allocDeviceIova, IOVA_MAG_SIZE, orderBase2, roundUpPow2 } from "./iova.js";

const DMA64 = 2 ** 40; // a 52-bit IOVA space in 4 KiB pfns is more than the tests need

test("top-down: the first allocation is the highest size-aligned range under the limit", () => {
  const d = new IovaDomain({ rcache: false });
  assert.equal(d.alloc(1, 0xfffff), 0xfffff);
  assert.equal(d.alloc(4, 0xfffff), 0xffff8); // 4-page aligned, below the first
  assert.equal(d.alloc(3, 0xfffff), 0xffff4); // 3 pages round the alignment up to 4
  assert.equal(d.alloc(2, 0xfffff), 0xffff2);
  // The walk starts at the last allocation, so holes left above it by alignment are not revisited (as in Linux).
  assert.equal(d.alloc(1, 0xfffff), 0xffff1);
  d.tree.validate();
});

test("freed space is found again, and the 32-bit cached node moves on free", () => {
  const d = new IovaDomain({ rcache: false });
  const a = d.alloc(8, 0xfffff)!;
  const b = d.alloc(8, 0xfffff)!;
  assert.equal(b, a - 8);
  assert.ok(d.free(a));
  assert.equal(d.alloc(8, 0xfffff), a);
  assert.equal(d.find(b + 3)?.lo, b);
  assert.equal(d.free(12345), false);
});

test("allocation fails when the space is exhausted; a failed 32-bit size fails fast until something is freed", () => {
  const d = new IovaDomain({ rcache: false, startPfn: 0xffff0 });
  const got: number[] = [];
  for (;;) {
    const p = d.alloc(4, 0xfffff);
    if (p === null) break;
    got.push(p);
  }
  assert.equal(got.length, 4);
  const walked = d.stats.walkSteps;
  assert.equal(d.alloc(4, 0xfffff), null);
  assert.equal(d.stats.fastFails, 1);
  assert.equal(d.stats.walkSteps, walked, "a fast failure does not walk the tree");
  assert.equal(d.alloc(2, 0xfffff), null, "smaller sizes still search (and find nothing here)");
  d.free(got[1]!);
  assert.equal(d.alloc(4, 0xfffff), got[1]);
});

test("PCI devices try below 4 GiB first, and go above when the low space is full", () => {
  const d = new IovaDomain({ startPfn: 0xfff00, rcache: true });
  const first = allocDeviceIova(d, 16, DMA64, { isPci: true })!;
  assert.ok(first < d.dma32Pfn, "below 4 GiB first");
  const high = allocDeviceIova(d, 16, DMA64, { isPci: false })!;
  assert.ok(high >= d.dma32Pfn, "non-PCI devices start at the top");
  let p: number | null;
  let n = 0;
  while ((p = allocDeviceIova(d, 16, DMA64, { isPci: true })) !== null && p < d.dma32Pfn) n++;
  assert.ok(p !== null && p >= d.dma32Pfn, "falls back above 4 GiB");
  assert.equal(n, 0x100 / 16 - 1, "the 256 pfns below 4 GiB hold 16 ranges of 16");
});

test("range caches: a freed range comes back from the CPU's magazine without touching the tree", () => {
  const d = new IovaDomain({ cpus: 2 });
  const a = d.allocFast(3, 0xfffff, 0)!; // rounded up to 4 pages
  assert.equal(d.find(a)?.hi, a + 3);
  d.freeFast(a, 3, 0);
  assert.equal(d.treeRanges, 1, "a cached range stays allocated in the tree");
  const steps = d.stats.walkSteps;
  assert.equal(d.allocFast(4, 0xfffff, 0), a);
  assert.equal(d.stats.walkSteps, steps);
  assert.equal(d.stats.rcacheHits, 1);
  d.freeFast(a, 4, 0);
  assert.notEqual(d.allocFast(4, 0xfffff, 1), a, "another CPU has its own magazines");
});

test("magazines fill, rotate to the depot, and flush back to the tree", () => {
  const d = new IovaDomain();
  const pfns: number[] = [];
  for (let i = 0; i < IOVA_MAG_SIZE * 3 + 5; i++) pfns.push(d.allocFast(1, 0xfffff)!);
  for (const p of pfns) d.freeFast(p, 1);
  assert.equal(d.cachedRanges(), pfns.length);
  assert.equal(d.treeRanges, pfns.length);
  d.flushAllCaches();
  assert.equal(d.cachedRanges(), 0);
  assert.equal(d.treeRanges, 0);
  d.tree.validate();
});

test("a limit below a cached entry is honoured (the magazine skips entries above it)", () => {
  const d = new IovaDomain();
  const hi = d.allocFast(1, DMA64)!;
  d.freeFast(hi, 1);
  const lo = d.allocFast(1, 0xfffff)!;
  assert.ok(lo <= 0xfffff);
});

test("property: allocations never overlap, respect the limit and alignment, and frees restore space", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 1, max: 40 }), fc.boolean(), fc.integer({ min: 0, max: 3 })), { maxLength: 300 }),
      fc.boolean(),
      (ops, rcache) => {
        const d = new IovaDomain({ startPfn: 0x100, rcache, cpus: 4 });
        const live: { lo: number; size: number; cpu: number }[] = [];
        for (const [size, isFree, cpu] of ops) {
          if (isFree && live.length > 0) {
            const v = live.splice((size * 7919) % live.length, 1)[0]!;
            d.freeFast(v.lo, v.size, v.cpu);
            continue;
          }
          const limit = cpu === 3 ? 0x3ff : 0xfffff;
          const p = d.allocFast(size, limit, cpu);
          if (p === null) continue;
          const real = size < 32 ? roundUpPow2(size) : size;
          assert.ok(p >= 0x100 && p + real - 1 <= limit);
          assert.equal(p % 2 ** orderBase2(real), 0);
          for (const v of live) assert.ok(p + real - 1 < v.lo || p > v.lo + v.size - 1, "overlap");
          live.push({ lo: p, size: real, cpu });
        }
        d.tree.validate();
      },
    ),
    { numRuns: 150 },
  );
});
