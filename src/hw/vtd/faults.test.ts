import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../core/memory.js";
import type { InterruptMessage } from "../platform.js";
import type { VtdConfig } from "./config.js";
import { frcdOffset } from "./registers.js";
import { DMAR_FEADDR_REG, DMAR_FECTL_REG, DMAR_FEDATA_REG, DMAR_FEUADDR_REG, DMAR_FSTS_REG, FSTS_PFO } from "./spec.js";
import { enableTranslation, VtdTables } from "./builder.js";
import { VtdUnit } from "./unit.js";

function setup(config: Partial<VtdConfig> = {}) {
  const mem = new PhysicalMemory();
  const events: InterruptMessage[] = [];
  const u = new VtdUnit({ memory: mem, config, interruptSink: (m) => events.push(m) });
  const t = new VtdTables(mem);
  enableTranslation(u, t.root);
  return { mem, u, t, events };
}

function fsts(u: VtdUnit) {
  const v = u.mmioRead(DMAR_FSTS_REG, 4);
  return { pfo: (v & 1) === 1, ppf: (v & 2) === 2, iqe: (v & 0x10) !== 0, fri: (v >>> 8) & 0xff };
}

function hiOfRecord(u: VtdUnit, i: number): bigint {
  return u.mmioRead(frcdOffset(u.config, i) + 8, 8);
}

function clearRecord(u: VtdUnit, i: number): void {
  u.mmioWrite(frcdOffset(u.config, i) + 12, 4, 0x80000000);
}

/** A read from a bus with no root entry: fault 0x1 from `sid`. */
function faultFrom(u: VtdUnit, sid: number, addr = 0x5000): void {
  const r = u.translate({ sid, addr, write: false });
  assert.equal(r.ok, false);
}

test("7.2.1 primary fault logging: the record holds FI (page address), SID, FR and T; FSTS.PPF and FRI are set", () => {
  const { u } = setup();
  u.translate({ sid: 0x0a10, addr: 0x1234_5678, write: true });
  const off = frcdOffset(u.config, 0);
  assert.equal(u.mmioRead(off, 8), 0x1234_5000n); // FI: bits 63:12
  const hi = u.mmioRead(off + 8, 8);
  assert.equal(hi >> 63n, 1n); // F
  assert.equal((hi >> 62n) & 1n, 0n); // T = 0: write
  assert.equal((hi >> 32n) & 0xffn, 1n); // FR: root entry not present
  assert.equal(hi & 0xffffn, 0x0a10n); // SID
  assert.deepEqual(fsts(u), { pfo: false, ppf: true, iqe: false, fri: 0 });
});

test("7.2.1 software clears a record by writing 1 to F; FSTS.PPF follows the F bits", () => {
  const { u } = setup();
  faultFrom(u, 0x0100);
  assert.equal(fsts(u).ppf, true);
  // Writing 0 to F, or to other fields, changes nothing.
  u.mmioWrite(frcdOffset(u.config, 0) + 8, 8, 0x0000ffff_ffffffffn);
  assert.equal(hiOfRecord(u, 0) >> 63n, 1n);
  clearRecord(u, 0);
  assert.equal(hiOfRecord(u, 0) >> 63n, 0n);
  assert.equal(fsts(u).ppf, false);
});

test("7.2.1 NFR > 1: records fill round-robin, FRI names the first pending one, a full set overflows into PFO", () => {
  const { u } = setup({ faultRecords: 3 });
  faultFrom(u, 0x0100);
  faultFrom(u, 0x0200);
  faultFrom(u, 0x0300);
  assert.deepEqual([0, 1, 2].map((i) => Number(hiOfRecord(u, i) & 0xffffn)), [0x0100, 0x0200, 0x0300]);
  assert.deepEqual(fsts(u), { pfo: false, ppf: true, iqe: false, fri: 0 });
  // The next record (0) is still pending: PFO, nothing overwritten.
  faultFrom(u, 0x0400);
  assert.equal(fsts(u).pfo, true);
  assert.equal(hiOfRecord(u, 0) & 0xffffn, 0x0100n);
  // While PFO is set even a free record is not used.
  clearRecord(u, 0);
  faultFrom(u, 0x0500);
  assert.equal(hiOfRecord(u, 0) >> 63n, 0n);
  assert.equal(u.stats().faults.overflowed, 2);
  // Clearing PFO lets faults in again; FRI is set only while PPF was clear, so it stays at 0.
  u.mmioWrite(DMAR_FSTS_REG, 4, FSTS_PFO);
  faultFrom(u, 0x0600);
  assert.equal(hiOfRecord(u, 0) & 0xffffn, 0x0600n);
  assert.equal(fsts(u).fri, 0);
  for (const i of [0, 1, 2]) clearRecord(u, i);
  assert.equal(fsts(u).ppf, false);
  faultFrom(u, 0x0700);
  assert.deepEqual(fsts(u), { pfo: false, ppf: true, iqe: false, fri: 1 });
});

test("7.2.1 faults from a source id that has a pending record are collapsed (configurable)", () => {
  const a = setup({ faultRecords: 4 });
  faultFrom(a.u, 0x0100, 0x1000);
  faultFrom(a.u, 0x0100, 0x2000);
  assert.equal(hiOfRecord(a.u, 1) >> 63n, 0n);
  assert.equal(a.u.stats().faults.collapsed, 1);
  const b = setup({ faultRecords: 4, collapseFaults: false });
  faultFrom(b.u, 0x0100, 0x1000);
  faultFrom(b.u, 0x0100, 0x2000);
  assert.equal(b.u.mmioRead(frcdOffset(b.u.config, 1), 8), 0x2000n);
});

test("9.3 FPD: a context entry with FPD set keeps qualified faults out of the records; non-qualified ones still go in", () => {
  const { u, t, mem } = setup({ faultRecords: 4, collapseFaults: false });
  const d = t.domain(3);
  t.attach(0x0008, d, { fpd: true }); // present, FPD, nothing mapped
  t.attach(0x0010, d, { fpd: true, present: false }); // FPD is honoured even when P = 0
  const r = u.translate({ sid: 0x0008, addr: 0x1000, write: false });
  assert.equal(r.ok, false);
  if (!r.ok && r.kind === "dma") assert.deepEqual([r.reason, r.recorded], [0x6, false]);
  u.translate({ sid: 0x0010, addr: 0x1000, write: false });
  assert.equal(fsts(u).ppf, false);
  assert.equal(u.stats().faults.suppressed, 2);
  // 0xB (reserved bits in the context entry) is not a qualified fault: recorded despite FPD.
  const ce = t.attach(0x0018, d, { fpd: true });
  mem.write64(ce, mem.read64(ce) | 0x100n);
  const b = u.translate({ sid: 0x0018, addr: 0x1000, write: false });
  if (!b.ok && b.kind === "dma") assert.deepEqual([b.reason, b.recorded], [0xb, true]);
});

test("7.3 fault event: masked at reset (IP pending), delivered through FEADDR/FEDATA when IM is cleared", () => {
  const { u, events } = setup();
  u.mmioWrite(DMAR_FEDATA_REG, 4, 0x4055);
  u.mmioWrite(DMAR_FEADDR_REG, 4, 0xfee0_1000);
  faultFrom(u, 0x0100);
  assert.equal(events.length, 0);
  assert.equal(u.mmioRead(DMAR_FECTL_REG, 4), 0xc0000000); // IM and IP
  u.mmioWrite(DMAR_FECTL_REG, 4, 0);
  assert.equal(events.length, 1);
  assert.deepEqual([events[0]?.origin, events[0]?.addressLo, events[0]?.data], ["fault-event", 0xfee0_1000, 0x4055]);
  assert.equal(u.mmioRead(DMAR_FECTL_REG, 4), 0);
});

test("7.3 fault event: sent at once when unmasked, and only when no earlier condition is pending", () => {
  const { u, events } = setup({ faultRecords: 4 });
  u.mmioWrite(DMAR_FECTL_REG, 4, 0);
  faultFrom(u, 0x0100);
  assert.equal(events.length, 1);
  faultFrom(u, 0x0200); // PPF still set: no new event
  assert.equal(events.length, 1);
  clearRecord(u, 0);
  clearRecord(u, 1);
  faultFrom(u, 0x0300);
  assert.equal(events.length, 2);
});

test("7.3 fault event: IP clears when software services every condition while the event is masked", () => {
  const { u, events } = setup();
  faultFrom(u, 0x0100);
  assert.equal(u.mmioRead(DMAR_FECTL_REG, 4) & 0x40000000, 0x40000000);
  clearRecord(u, 0);
  assert.equal(u.mmioRead(DMAR_FECTL_REG, 4), 0x80000000);
  u.mmioWrite(DMAR_FECTL_REG, 4, 0);
  assert.equal(events.length, 0);
});

test("10.4.13 FEUADDR: the upper address reaches the interrupt sink with extended interrupt mode", () => {
  const { u, events } = setup({ extendedInterruptMode: true });
  u.mmioWrite(DMAR_FEUADDR_REG, 4, 0x12);
  u.mmioWrite(DMAR_FECTL_REG, 4, 0);
  faultFrom(u, 0x0100);
  assert.equal(events[0]?.addressHi, 0x12);
});
