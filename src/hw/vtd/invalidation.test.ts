import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../core/memory.js";
import type { InterruptMessage } from "../platform.js";
import type { VtdConfig } from "./config.js";
import { encodeIrte, encodeRemappableMsi, writeIrte } from "./intremap.js";
import {
  DMAR_CCMD_REG,
  DMAR_FECTL_REG,
  DMAR_FSTS_REG,
  DMAR_ICS_REG,
  DMAR_IEADDR_REG,
  DMAR_IECTL_REG,
  DMAR_IEDATA_REG,
  DMAR_IQERCD_REG,
  DMAR_IQH_REG,
  DMAR_IRTA_REG,
  FSTS_IQE,
  GCMD_IRE,
  GCMD_QIE,
  GCMD_SIRTP,
} from "./spec.js";
import { desc, enableTranslation, gcmd, invalidateContext, invalidateIotlb, InvalidationQueue, VtdTables } from "./builder.js";
import { VtdUnit } from "./unit.js";

const QUEUE = 0x40_0000;

function setup(config: Partial<VtdConfig> = {}) {
  const mem = new PhysicalMemory();
  const events: InterruptMessage[] = [];
  const u = new VtdUnit({ memory: mem, config: { cachingMode: false, ...config }, interruptSink: (m) => events.push(m) });
  const t = new VtdTables(mem);
  enableTranslation(u, t.root);
  return { mem, u, t, events, iro: u.config.iotlbRegOffset };
}

const ok = (u: VtdUnit, sid: number, addr: number) => u.translate({ sid, addr, write: false }).ok;
const iqh = (u: VtdUnit) => Number(u.mmioRead(DMAR_IQH_REG, 8));
const iqe = (u: VtdUnit) => (u.mmioRead(DMAR_FSTS_REG, 4) & FSTS_IQE) !== 0;

/** Three devices: two in domain 1, one in domain 2, with their contexts cached. */
function threeDevices() {
  const s = setup();
  const d1 = s.t.domain(1);
  const d2 = s.t.domain(2);
  for (const sid of [0x0100, 0x0101]) s.t.attach(sid, d1);
  s.t.attach(0x0200, d2);
  s.t.map(d1, 0x1000, 0x9000);
  s.t.map(d2, 0x1000, 0xa000);
  for (const sid of [0x0100, 0x0101, 0x0200]) ok(s.u, sid, 0x1000);
  return { ...s, d1, d2 };
}

test("10.4.7 CCMD register-based context invalidation: global, domain and device (with function mask); CAIG reports each", () => {
  const { u } = threeDevices();
  assert.equal(u.stats().contextCache.entries, 3);
  assert.equal(invalidateContext(u, 3, 1, 0x0100, 0), 3);
  assert.equal(u.stats().contextCache.entries, 2);
  assert.equal(invalidateContext(u, 2, 2), 2);
  assert.equal(u.stats().contextCache.entries, 1);
  assert.equal(invalidateContext(u, 1), 1);
  assert.equal(u.stats().contextCache.entries, 0);
  // FM = 11b ignores all three function bits: 01:00.x all go.
  ok(u, 0x0100, 0x1000);
  ok(u, 0x0101, 0x1000);
  invalidateContext(u, 3, 1, 0x0107, 3);
  assert.equal(u.stats().contextCache.entries, 0);
  // CIRG 00 is reserved: CAIG reads 00, ICC clears.
  assert.equal(invalidateContext(u, 0), 0);
  assert.equal(u.mmioRead(DMAR_CCMD_REG, 8) >> 63n, 0n);
});

test("10.4.8 IOTLB register invalidation: global and domain; AM above MAMV is not performed (IAIG 00); without CAP.PSI pages go domain-wide", () => {
  {
    const { u, iro } = threeDevices();
    assert.equal(u.stats().iotlb.entries, 2);
    assert.equal(invalidateIotlb(u, iro, 2, 1), 2);
    assert.equal(u.stats().iotlb.entries, 1);
    assert.equal(invalidateIotlb(u, iro, 3, 2, 0, 19), 0); // AM 19 > MAMV 18
    assert.equal(u.stats().iotlb.entries, 1);
    assert.equal(invalidateIotlb(u, iro, 1), 1);
    assert.equal(u.stats().iotlb.entries, 0);
  }
  {
    const s = setup({ pageSelectiveInvalidation: false });
    const d = s.t.domain(4);
    s.t.attach(0x0100, d);
    s.t.map(d, 0x1000, 0x9000);
    s.t.map(d, 0x2000, 0xa000);
    ok(s.u, 0x0100, 0x1000);
    ok(s.u, 0x0100, 0x2000);
    assert.equal(invalidateIotlb(s.u, s.iro, 3, 4, 0x1000, 0), 2); // IAIG: domain
    assert.equal(s.u.stats().iotlb.entries, 0);
  }
});

test("6.5.2 queued invalidation: QIE latches IQA, IQH follows IQT, and register-based commands are ignored meanwhile", () => {
  const { u, mem } = threeDevices();
  const q = new InvalidationQueue(u, mem, QUEUE);
  q.enable();
  assert.equal(iqh(u), 0);
  q.submit(desc.context(1), desc.iotlb(1));
  assert.equal(iqh(u), 2 << 4);
  assert.equal(u.stats().contextCache.entries, 0);
  assert.equal(u.stats().iotlb.entries, 0);
  // CCMD with QI enabled: nothing happens, ICC stays set.
  ok(u, 0x0100, 0x1000);
  invalidateContext(u, 1);
  assert.equal(u.stats().contextCache.entries, 1);
  assert.equal(u.mmioRead(DMAR_CCMD_REG, 8) >> 63n, 1n);
  // Disabling the queue resets IQH.
  gcmd(u, GCMD_QIE, false);
  assert.equal(iqh(u), 0);
});

test("6.5.2.1/6.5.2.3 context-cache and IOTLB descriptors: domain, device and page-selective", () => {
  const { u, mem, d1 } = threeDevices();
  const q = new InvalidationQueue(u, mem, QUEUE);
  q.enable();
  q.submit(desc.context(3, 1, 0x0101));
  assert.equal(u.stats().contextCache.entries, 2);
  q.submit(desc.context(2, 2));
  assert.equal(u.stats().contextCache.entries, 1);
  q.submit(desc.iotlb(3, d1.did, 0x1000, 0));
  assert.equal(u.stats().iotlb.entries, 1);
  assert.equal(u.stats().invalidation.iotlbPage, 1);
});

test("6.5.2.7 interrupt entry cache descriptor: a changed IRTE is used until invalidated by index, then globally", () => {
  const { u, mem, events } = setup();
  const irt = 0x50_0000;
  writeIrte(mem, irt, 3, encodeIrte({ vector: 0x30, destination: 1 }, false));
  u.mmioWrite(DMAR_IRTA_REG, 8, BigInt(irt) | 7n);
  gcmd(u, GCMD_SIRTP);
  gcmd(u, GCMD_IRE);
  const msi = encodeRemappableMsi(3);
  const fire = () => {
    u.translate({ sid: 0x0100, addr: msi.address, write: true, data: msi.data });
    return events[events.length - 1]?.irq?.vector;
  };
  assert.equal(fire(), 0x30);
  writeIrte(mem, irt, 3, encodeIrte({ vector: 0x31, destination: 1 }, false));
  assert.equal(fire(), 0x30); // cached
  const q = new InvalidationQueue(u, mem, QUEUE);
  q.enable();
  q.submit(desc.iec(false, 2, 0)); // another index: no effect
  assert.equal(fire(), 0x30);
  q.submit(desc.iec(false, 2, 1)); // indexes 2-3
  assert.equal(fire(), 0x31);
  writeIrte(mem, irt, 3, encodeIrte({ vector: 0x32, destination: 1 }, false));
  q.submit(desc.iec(true));
  assert.equal(fire(), 0x32);
});

test("6.5.2.8 invalidation wait: status write, and IF signalling through IECTL/IEDATA/IEADDR with IWC", () => {
  const { u, mem, events } = setup();
  const q = new InvalidationQueue(u, mem, QUEUE);
  q.enable();
  q.submit(desc.iotlb(1), desc.wait({ sw: true, fence: true, data: 0xfeedbeef, addr: 0x60_0040 }));
  assert.equal(mem.read32(0x60_0040), 0xfeedbeef);
  // IF: IECTL masked at reset, so IP is left pending; unmasking delivers it.
  u.mmioWrite(DMAR_IEDATA_REG, 4, 0x51);
  u.mmioWrite(DMAR_IEADDR_REG, 4, 0xfee0_0000);
  q.submit(desc.wait({ iflag: true }));
  assert.equal(u.mmioRead(DMAR_ICS_REG, 4), 1);
  assert.equal(u.mmioRead(DMAR_IECTL_REG, 4), 0xc0000000);
  assert.equal(events.length, 0);
  u.mmioWrite(DMAR_IECTL_REG, 4, 0);
  assert.deepEqual([events.length, events[0]?.origin, events[0]?.data], [1, "invalidation-event", 0x51]);
  // Unmasked: the next completion with IWC still set is not signalled; after clearing IWC it is.
  q.submit(desc.wait({ iflag: true }));
  assert.equal(events.length, 1);
  u.mmioWrite(DMAR_ICS_REG, 4, 1);
  q.submit(desc.wait({ iflag: true, sw: true, data: 7, addr: 0x60_0080 }));
  assert.equal(events.length, 2);
  assert.equal(mem.read32(0x60_0080), 7);
});

test("6.5.2.10 queue errors: an invalid descriptor sets IQE, stops IQH at it, raises the fault event, and the queue resumes once IQE is cleared", () => {
  const { u, mem, events } = threeDevices();
  u.mmioWrite(DMAR_FECTL_REG, 4, 0);
  const q = new InvalidationQueue(u, mem, QUEUE);
  q.enable();
  const bad = desc.context(1);
  bad[0] |= 0x100; // reserved bit 8
  q.submit(desc.iotlb(1), bad, desc.context(1));
  assert.equal(iqe(u), true);
  assert.equal(iqh(u), 1 << 4);
  assert.equal(Number(u.mmioRead(DMAR_IQERCD_REG, 8) & 0xfn), 4); // reserved field
  assert.equal(u.stats().contextCache.entries, 3); // nothing after the bad descriptor ran
  assert.equal(events[events.length - 1]?.origin, "fault-event");
  // Software repairs the descriptor and clears IQE: processing resumes at IQH.
  mem.write32(QUEUE + 16, desc.context(1)[0]);
  u.mmioWrite(DMAR_FSTS_REG, 4, FSTS_IQE);
  assert.equal(iqe(u), false);
  assert.equal(iqh(u), 3 << 4);
  assert.equal(u.stats().contextCache.entries, 0);
});

test("6.5.2.10 queue errors: unknown and unsupported descriptor types, and a tail beyond the queue", () => {
  for (const bad of [[0x6, 0, 0, 0], [0x0, 0, 0, 0], [0x1 | (1 << 9), 0, 0, 0], desc.deviceIotlb(0x0100, 0x1000)]) {
    const { u, mem } = setup();
    const q = new InvalidationQueue(u, mem, QUEUE);
    q.enable();
    q.submit(bad);
    assert.equal(iqe(u), true, `descriptor ${bad.map((x) => x.toString(16)).join(" ")}`);
    assert.equal(Number(u.mmioRead(DMAR_IQERCD_REG, 8) & 0xfn), 3);
  }
  const { u, mem } = setup();
  new InvalidationQueue(u, mem, QUEUE).enable();
  u.mmioWrite(0x88, 8, 300n << 4n); // 256-entry queue
  assert.equal(iqe(u), true);
  assert.equal(Number(u.mmioRead(DMAR_IQERCD_REG, 8) & 0xfn), 1);
});

test("6.5.2.5 device-TLB descriptor with ECAP.DT: accepted and passed on for the device", () => {
  const { u, mem } = setup({ deviceTlb: true });
  const q = new InvalidationQueue(u, mem, QUEUE);
  q.enable();
  q.submit(desc.deviceIotlb(0x0100, 0x7000, true));
  assert.equal(iqe(u), false);
  assert.deepEqual(u.deviceIotlbInvalidations, [{ sid: 0x0100, addr: 0x7000n, size: true }]);
});

test("10.4.24 IQA.DW: 256-bit descriptors, IQH counting 32-byte slots, misaligned tail and upper-half reserved bits are errors", () => {
  const { u, mem } = threeDevices();
  const s = setup({ wideDescriptors: true });
  const q = new InvalidationQueue(s.u, s.mem, QUEUE, 0, true);
  q.enable();
  q.submit(desc.context(1), desc.iotlb(1));
  assert.equal(iqh(s.u), 2 << 5);
  assert.equal(iqe(s.u), false);
  q.submit([...desc.context(1), 0, 0, 1, 0]);
  assert.equal(iqe(s.u), true);
  assert.equal(Number(s.u.mmioRead(DMAR_IQERCD_REG, 8) & 0xfn), 4);
  const s2 = setup({ wideDescriptors: true });
  new InvalidationQueue(s2.u, s2.mem, QUEUE, 0, true).enable();
  s2.u.mmioWrite(0x88, 8, 0x10n); // bit 4 set: not a 256-bit slot
  assert.equal(Number(s2.u.mmioRead(DMAR_IQERCD_REG, 8) & 0xfn), 6);
  // Without support (QEMU 7.2 default), DW is ignored: 128-bit descriptors.
  const q128 = new InvalidationQueue(u, mem, QUEUE, 0, false);
  u.mmioWrite(0x90, 8, BigInt(QUEUE) | 0x800n);
  gcmd(u, GCMD_QIE);
  q128.submit(desc.context(1));
  assert.equal(iqh(u), 1 << 4);
});
