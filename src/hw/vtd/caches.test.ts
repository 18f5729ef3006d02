import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../core/memory.js";
import type { VtdConfig } from "./config.js";
import { enableTranslation, invalidateContext, invalidateIotlb, VtdTables } from "./builder.js";
import { VtdUnit, type TranslateResult } from "./unit.js";

const SID = 0x0100;

function setup(config: Partial<VtdConfig> = {}) {
  const mem = new PhysicalMemory();
  const u = new VtdUnit({ memory: mem, config });
  const t = new VtdTables(mem);
  const d = t.domain(9);
  t.attach(SID, d);
  enableTranslation(u, t.root);
  return { mem, u, t, d, iro: u.config.iotlbRegOffset };
}

function hpa(r: TranslateResult): bigint | string {
  if (r.ok && r.kind === "dma") return r.segments[0]?.hpa ?? -1n;
  return r.ok ? r.kind : `fault 0x${r.kind === "dma" || r.kind === "interrupt" ? r.reason.toString(16) : "?"}`;
}

const read = (u: VtdUnit, addr: number, sid = SID) => hpa(u.translate({ sid, addr, write: false }));

test("6.2.3 IOTLB: a DMA succeeds through a stale entry after the page table changed, and faults after the page-selective invalidation", () => {
  const { u, t, d, iro } = setup();
  const pte = t.map(d, 0x7000, 0x5_0000);
  assert.equal(read(u, 0x7010), 0x5_0010n); // walk, fill the IOTLB
  t.mem.write64(pte, 0n); // the driver unmaps the page...
  assert.equal(read(u, 0x7010), 0x5_0010n); // ...but the hardware still uses its cached translation
  assert.equal(u.stats().iotlb.hits, 1);
  // Page-selective invalidation of the page, through IVA_REG/IOTLB_REG as a driver does; IAIG says page.
  assert.equal(invalidateIotlb(u, iro, 3, d.did, 0x7000, 0), 3);
  assert.equal(read(u, 0x7010), "fault 0x6");
});

test("6.2.3 IOTLB: entries are tagged by domain id and page size", () => {
  const { u, t, d } = setup({ cachingMode: false });
  const d2 = t.domain(10);
  t.attach(0x0200, d2);
  t.map(d, 0x40_0000, 0x100_0000, { size: 0x200000 });
  t.map(d2, 0x40_0000, 0x300_0000);
  assert.equal(read(u, 0x40_0234), 0x100_0234n);
  assert.equal(read(u, 0x40_0234, 0x0200), 0x300_0234n); // same iova, other domain: its own entry
  // Any address in the 2 MiB page hits the one 2 MiB entry.
  const before = u.stats().iotlb;
  assert.equal(read(u, 0x5f_f000), 0x11f_f000n);
  const after = u.stats().iotlb;
  assert.deepEqual([after.hits - before.hits, after.entries], [1, 2]);
  // Domain-selective invalidation of domain 9 leaves domain 10's entry.
  u.iotlbDomain(d.did);
  assert.equal(u.stats().iotlb.entries, 1);
});

test("6.5.1.2 page-selective invalidation with an address mask covers 2^AM pages and any large page overlapping them", () => {
  const { u, t, d, iro } = setup({ cachingMode: false });
  for (let i = 0; i < 8; i++) t.map(d, 0x10_0000 + i * 0x1000, 0x80_0000 + i * 0x1000);
  t.map(d, 0x4000_0000, 0x200_0000, { size: 0x200000 });
  for (let i = 0; i < 8; i++) read(u, 0x10_0000 + i * 0x1000);
  read(u, 0x4000_0000);
  assert.equal(u.stats().iotlb.entries, 9);
  // AM = 2: the four pages 0x104000-0x107fff (the address is aligned down to 16 KiB).
  invalidateIotlb(u, iro, 3, d.did, 0x10_5000, 2);
  assert.equal(u.stats().iotlb.entries, 5);
  // One 4 KiB page inside the 2 MiB page removes the 2 MiB entry.
  invalidateIotlb(u, iro, 3, d.did, 0x4010_0000, 0);
  assert.equal(u.stats().iotlb.entries, 4);
  // Another domain's pages are untouched.
  invalidateIotlb(u, iro, 3, 77, 0x10_0000, 3);
  assert.equal(u.stats().iotlb.entries, 4);
});

test("6.2.1 context cache: a changed context entry is not seen until a context-cache invalidation", () => {
  const { u, t, d } = setup();
  t.map(d, 0x1000, 0x9000);
  assert.equal(read(u, 0x1000), 0x9000n);
  const other = t.domain(11);
  t.map(other, 0x1000, 0xa000);
  t.attach(SID, other); // the driver moves the device to another domain
  u.iotlbGlobal();
  assert.equal(read(u, 0x1000), 0x9000n); // the cached context still names domain 9's tables
  assert.equal(invalidateContext(u, 3, d.did, SID, 0), 3); // device-selective; CAIG = device
  assert.equal(read(u, 0x1000), 0xa000n);
});

test("6.1 caching mode: not-present entries are cached too, so software must invalidate after mapping", () => {
  {
    const { u, t, d, iro } = setup({ cachingMode: true });
    assert.equal(read(u, 0x3000), "fault 0x6");
    t.map(d, 0x3000, 0xb000);
    assert.equal(read(u, 0x3000), "fault 0x6"); // the not-present entry is cached
    invalidateIotlb(u, iro, 3, d.did, 0x3000, 0);
    assert.equal(read(u, 0x3000), 0xb000n);
    // A context entry that was not present is cached with domain id 0, which caching mode reserves.
    assert.equal(read(u, 0x3000, 0x0108), "fault 0x2");
    t.attach(0x0108, d);
    assert.equal(read(u, 0x3000, 0x0108), "fault 0x2");
    invalidateContext(u, 2, 0); // domain-selective, domain 0
    assert.equal(read(u, 0x3000, 0x0108), 0xb000n);
  }
  {
    const { u, t, d } = setup({ cachingMode: false });
    assert.equal(read(u, 0x3000), "fault 0x6");
    t.map(d, 0x3000, 0xb000);
    assert.equal(read(u, 0x3000), 0xb000n); // without CM nothing negative is cached
  }
});

test("6.2.3 a cached entry without the permission a request needs is walked again, so permission upgrades are seen", () => {
  const { u, t, d } = setup({ cachingMode: false });
  const pte = t.map(d, 0x2000, 0xc000, { write: false });
  assert.equal(read(u, 0x2000), 0xc000n);
  t.mem.write64(pte, 0xc000n | 3n);
  assert.equal(hpa(u.translate({ sid: SID, addr: 0x2000, write: true })), 0xc000n);
});

test("6.2.4 paging-structure cache: IH = 1 keeps non-leaf entries, IH = 0 removes them", () => {
  const { u, t, d, iro } = setup({ cachingMode: false, pagingStructureCache: { sets: 16, ways: 4, policy: "lru" } });
  t.map(d, 0x20_0000, 0xd000);
  assert.equal(read(u, 0x20_0000), 0xd000n);
  assert.ok((u.stats().pagingStructureCache?.entries ?? 0) >= 2);
  // Move the page table: point the SL-PDE at a new table mapping the page elsewhere.
  const pde = t.entryAddress(d, 0x20_0000, 2);
  const newPt = t.allocPage();
  t.mem.write64(newPt, 0xe000n | 3n);
  t.mem.write64(pde, BigInt(newPt) | 3n);
  // IH = 1 says only leaves changed: the IOTLB entry goes, the cached SL-PDE stays and still leads to the old table.
  invalidateIotlb(u, iro, 3, d.did, 0x20_0000, 0, true);
  assert.equal(read(u, 0x20_0000), 0xd000n);
  invalidateIotlb(u, iro, 3, d.did, 0x20_0000, 0, false);
  assert.equal(read(u, 0x20_0000), 0xe000n);
  const s = u.stats().pagingStructureCache;
  assert.ok(s !== null && s.hits >= 1 && s.invalidations >= 1);
});

test("6.2 cache geometry is configurable: a 1-way 2-set IOTLB evicts, and the counters show it", () => {
  const { u, t, d } = setup({ cachingMode: false, iotlb: { sets: 2, ways: 1, policy: "fifo" } });
  for (let i = 0; i < 6; i++) t.map(d, i * 0x1000, 0x10_0000 + i * 0x1000);
  for (let i = 0; i < 6; i++) read(u, i * 0x1000);
  const s = u.stats().iotlb;
  assert.equal(s.capacity, 2);
  assert.equal(s.entries, 2);
  assert.equal(s.fills, 6);
  assert.equal(s.evictions, 4);
  assert.equal(s.misses, 6);
});
