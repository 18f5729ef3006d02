import { test } from "node:test";
import assert from "node:assert/strict";
import { pciAddress } from "../core/pci.js";
import { DmaTestDevice } from "./devices/dma-test.js";
import { Platform, QEMU_VTD_BASE } from "./platform.js";
import { DMAR_CAP_REG, DMAR_FECTL_REG, DMAR_FEDATA_REG, DMAR_FEADDR_REG, DMAR_GSTS_REG, DMAR_IRTA_REG, GCMD_IRE, GCMD_SIRTP } from "./vtd/spec.js";
import { enableTranslation, gcmd, VtdTables, type RegisterPort } from "./vtd/builder.js";

/** A unit's registers seen through the platform's MMIO window, as a CPU sees them. */
function port(p: Platform, base: number): RegisterPort {
  return {
    mmioRead: (off: number) => p.mmioRead32(base + off),
    mmioWrite: (off: number, size: number, v: number | bigint) => p.mmioWrite(base + off, size === 8 ? 8 : 4, v),
  } as RegisterPort;
}

test("platform: a unit's registers appear at its MMIO base (QEMU's 0xfed90000); unmapped MMIO reads all ones", () => {
  const p = new Platform();
  p.addVtdUnit();
  assert.equal(p.mmioRead(QEMU_VTD_BASE + DMAR_CAP_REG, 8), 0x00d2008c22260286n);
  assert.equal(p.mmioRead32(QEMU_VTD_BASE + DMAR_GSTS_REG), 0);
  assert.equal(p.mmioRead32(0xfed8_0000), 0xffffffff);
  assert.throws(() => p.addVtdUnit({ base: QEMU_VTD_BASE + 0x800 }), /overlaps/);
});

test("platform: DMA test device reads and writes memory through the unit covering it; a fault stops the write at the faulting page", () => {
  const p = new Platform({ ramSize: 256 * 0x100000 });
  const u = p.addVtdUnit();
  u.mmioWrite(DMAR_FECTL_REG, 4, 0); // unmask fault events
  u.mmioWrite(DMAR_FEDATA_REG, 4, 0x44);
  u.mmioWrite(DMAR_FEADDR_REG, 4, 0xfee0_0000);
  const dev = new DmaTestDevice(p, pciAddress(1, 0, 0));
  const t = new VtdTables(p.memory);
  const d = t.domain(3);
  t.attach(dev.sid, d);
  t.map(d, 0x8000_0000, 0x20_0000);
  enableTranslation(port(p, QEMU_VTD_BASE), t.root);
  const w = dev.write(0x8000_0ffe, [1, 2, 3, 4]); // crosses into an unmapped page
  assert.equal(w.ok, false);
  assert.deepEqual([...p.memory.read(0x20_0ffe, 2)], [1, 2]); // the first page was written
  assert.equal(p.interrupts.at(-1)?.origin, "fault-event");
  assert.equal(p.interrupts.at(-1)?.data, 0x44);
  const r = dev.read(0x8000_0ffe, 2);
  assert.ok(r.ok);
  if (r.ok) assert.deepEqual([...(r.data ?? [])], [1, 2]);
  assert.equal(dev.log.length, 2);
});

test("platform: units by scope (device list, bus range, include-all); devices outside every scope reach memory untranslated", () => {
  const p = new Platform();
  const a = p.addVtdUnit({ base: 0xfed9_0000, scope: { sids: [0x0010] }, name: "dmar-a" });
  const b = p.addVtdUnit({ base: 0xfed9_1000, scope: { buses: [[2, 3]] }, name: "dmar-b" });
  assert.equal(p.unitFor(0x0010), a);
  assert.equal(p.unitFor(0x0300), b);
  assert.equal(p.unitFor(0x0400), null);
  const dev = new DmaTestDevice(p, pciAddress(4, 0, 0));
  dev.write(0x1000, [9]);
  assert.equal(p.memory.read8(0x1000), 9);
  const c = p.addVtdUnit({ base: 0xfed9_2000, scope: { includeAll: true } });
  assert.equal(p.unitFor(0x0400), c);
  assert.equal(p.unitFor(0x0010), a);
  assert.throws(() => p.addVtdUnit({ base: 0xfed9_3000, scope: { includeAll: true } }), /already includes all/);
  assert.throws(() => new DmaTestDevice(p, pciAddress(4, 0, 0)), /taken/);
});

test("platform: a device MSI passes to the interrupt sink unchanged with interrupt remapping off", () => {
  const seen: number[] = [];
  const p = new Platform({ interruptSink: (m) => seen.push(m.data) });
  p.addVtdUnit();
  const dev = new DmaTestDevice(p, pciAddress(0, 3, 0));
  const r = dev.msi(0xfee0_1000, 0x4031);
  assert.equal(r.ok, true);
  assert.deepEqual(seen, [0x4031]);
  assert.equal(p.interrupts[0]?.irq?.vector, 0x31);
  assert.equal(p.interrupts[0]?.irq?.destination, 1);
});

test("platform: an interrupt remapping table outside RAM is fault 0x23, recorded by the unit", () => {
  const p = new Platform({ ramSize: 16 * 0x100000 });
  const u = p.addVtdUnit();
  u.mmioWrite(DMAR_IRTA_REG, 8, 0x4000_0000n | 7n);
  gcmd(u, GCMD_SIRTP);
  gcmd(u, GCMD_IRE);
  const dev = new DmaTestDevice(p, pciAddress(0, 3, 0));
  const r = dev.msi(0xfee0_0010, 0); // remappable format, handle 0
  assert.equal(r.ok, false);
  if (!r.ok && r.kind === "interrupt") assert.equal(r.reason, 0x23);
  assert.equal(Number((u.mmioRead(u.config.faultRecordOffset + 8, 8) >> 32n) & 0xffn), 0x23);
});
