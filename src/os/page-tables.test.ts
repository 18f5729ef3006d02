import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../core/memory.js";
import { PageAllocator } from "./pages.js";
import { PageTables } from "./intel-iommu.js";

const PAGE = 4096;
const MIB2 = 0x200000;
const RW = 3;

function tables(): { mem: PhysicalMemory; pt: PageTables } {
  const mem = new PhysicalMemory();
  const pages = new PageAllocator(mem, [{ base: 0x100000, end: 0x3fff_ffff, type: "usable" }]);
  return { mem, pt: new PageTables(mem, pages, 4) };
}

test("a 4 KiB mapping under an existing 2 MiB superpage leaves the superpage and records the conflict", () => {
  const { mem, pt } = tables();
  pt.mapRange(0x4000_0000, 0x1000_0000, MIB2, RW, true); // one superpage: IOVA 1 GiB -> 256 MiB
  assert.equal(pt.lookup(0x4000_0000 / PAGE + 5), 0x1000_0000 + 5 * PAGE, "pfns inside a superpage resolve through it");
  const zeroPage = mem.read(0, 64);

  pt.map(0x4000_0000 / PAGE + 5, 0x2000_0000 / PAGE, 1, RW); // somewhere else: refused
  pt.map(0x4000_0000 / PAGE + 6, 0x1000_0000 / PAGE + 6, 1, RW); // what the superpage already says: fine
  assert.deepEqual(pt.conflicts, [{ iovaPfn: 0x4000_0000 / PAGE + 5, existing: 0x1000_0000 + 5 * PAGE, wanted: 0x2000_0000 }]);
  assert.equal(pt.lookup(0x4000_0000 / PAGE + 5), 0x1000_0000 + 5 * PAGE);
  assert.deepEqual(mem.read(0, 64), zeroPage, "nothing was written at physical address 0");

  pt.unmap(0x4000_0000 / PAGE + 5, 1); // a partial unmap does not split the superpage either
  assert.equal(pt.lookup(0x4000_0000 / PAGE + 5), 0x1000_0000 + 5 * PAGE);
});

test("a superpage replaces a level-1 table that was cached for the same range", () => {
  const { pt } = tables();
  pt.map(0x4000_0000 / PAGE, 0x1800_0000 / PAGE, 1, RW);
  pt.mapRange(0x4000_0000, 0x1000_0000, MIB2, RW, true);
  pt.map(0x4000_0000 / PAGE + 1, 0x1000_0000 / PAGE + 1, 1, RW);
  assert.deepEqual(pt.conflicts, []);
  assert.equal(pt.lookup(0x4000_0000 / PAGE + 1), 0x1000_0000 + PAGE);
});
