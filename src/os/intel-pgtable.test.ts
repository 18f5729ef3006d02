import assert from "node:assert/strict";
import { test } from "node:test";
import { PhysicalMemory } from "../core/memory.js";
import { DMA_PTE_READ, DMA_PTE_WRITE } from "../spec/vtd/paging.js";
import { PageTables } from "./intel-pgtable.js";
import { PageAllocator } from "./pages.js";

const RW = DMA_PTE_READ | DMA_PTE_WRITE;
const MiB = 2 ** 20;

function setup(): { mem: PhysicalMemory; pages: PageAllocator; pt: PageTables } {
  const mem = new PhysicalMemory();
  const pages = new PageAllocator(mem, [{ base: 0, end: 256 * MiB - 1, type: "usable" }]);
  return { mem, pages, pt: new PageTables(mem, pages, 4) };
}

test("map under a 2 MiB superpage never writes through the superpage's frame", () => {
  const { mem, pt } = setup();
  const base = 64 * MiB;
  pt.mapRange(base, base, 2 * MiB, RW, true);
  pt.map((base + 0x5000) / 4096, 0x9000 / 4096, 1, RW);
  assert.equal(pt.conflicts.length, 1);
  assert.equal(pt.lookup((base + 0x5000) / 4096), base + 0x5000);
  assert.equal(mem.backedPageNumbers().includes(0), false);
});

test("unmapping the last page of a table gives the table pages back to the allocator", () => {
  const { pages, pt } = setup();
  const free0 = pages.free_pages;
  pt.map(0x12345, 0x20000, 3, RW);
  // A 4-level walk for one IOVA needs three tables below the top one.
  assert.equal(pt.tablePages, 3);
  assert.equal(free0 - pages.free_pages, 3);
  const partial = pt.unmap(0x12345, 2);
  assert.deepEqual(partial, []);
  assert.equal(pt.lookup(0x12347), 0x20002 * 4096);
  const freed = pt.unmap(0x12347, 1);
  assert.equal(freed.length, 3);
  assert.equal(pt.tablePages, 0);
  for (const t of freed) pages.freeRange(t, 1);
  assert.equal(pages.free_pages, free0);
  // The tables come back when needed again.
  pt.map(0x12345, 0x20000, 1, RW);
  assert.equal(pt.lookup(0x12345), 0x20000 * 4096);
});

test("a table shared by two ranges stays while either range is mapped", () => {
  const { pt } = setup();
  pt.map(0x1000, 0x30000, 1, RW);
  pt.map(0x1001, 0x30001, 1, RW);
  assert.deepEqual(pt.unmap(0x1000, 1), []);
  assert.equal(pt.lookup(0x1001), 0x30001 * 4096);
  assert.equal(pt.unmap(0x1001, 1).length, 3);
});

test("a superpage over an existing 4 KiB table releases that table", () => {
  const { pages, pt } = setup();
  const base = 64 * MiB;
  pt.map(base / 4096, base / 4096, 1, RW);
  const tables = pt.tablePages;
  const free = pages.free_pages;
  pt.mapRange(base, base, 2 * MiB, RW, true);
  assert.equal(pt.tablePages, tables - 1);
  assert.equal(pages.free_pages, free + 1);
});
