/**
 * An AMD-Vi unit attached to a simulated machine: programmed the way a driver does it (tables written to RAM,
 * registers written through MMIO, the unit's MSI set in its PCI function's configuration space), devices' DMA and
 * MSIs go through it, IOAPIC interrupts carry their special-entry DeviceID, faults land in the event log and
 * raise the unit's interrupt; with IommuEn clear requests pass untranslated.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeFields } from "../spec/amdvi/fields.js";
import { DTE_FIELDS } from "../spec/amdvi/dte.js";
import { IRTE32_FIELDS } from "../spec/amdvi/irte.js";
import { decodeEvent, IO_PAGE_FAULT } from "../spec/amdvi/events.js";
import {
  CTRL_CMD_BUF_EN, CTRL_EVENT_INT_EN, CTRL_EVENT_LOG_EN, CTRL_IOMMU_EN, MMIO_CMD_BUF_BASE, MMIO_CONTROL, MMIO_DEV_TABLE_BASE,
  MMIO_EVENT_LOG_BASE, MMIO_EVENT_TAIL, MMIO_EXT_FEATURE,
} from "../spec/amdvi/registers.js";
import { AmdTables, writeDwords } from "./amdvi/builder.js";
import { CAP_MSI_OFFSET } from "./pci/topology.js";
import { Machine } from "./machine.js";
import { machinePreset } from "./machine-presets.js";
import { IommuError } from "../core/errors.js";

const DT = 0x0200_0000;
const CMD = 0x0240_0000;
const EVT = 0x0241_0000;
const IRT = 0x0250_0000;
const BASE = 0xfed8_0000;

function dte(m: Machine, devid: number, values: Record<string, bigint | number | boolean>): void {
  writeDwords(m.memory, DT + devid * 32, encodeFields(8, DTE_FIELDS, values));
}

/** What a driver does to bring the unit up: device table, command buffer, event log, then IommuEn. */
function enableUnit(m: Machine, base = BASE): void {
  m.mmioWrite(base + MMIO_DEV_TABLE_BASE, 8, BigInt(DT | 0x1ff));
  m.mmioWrite(base + MMIO_CMD_BUF_BASE, 8, BigInt(CMD) | (8n << 56n));
  m.mmioWrite(base + MMIO_EVENT_LOG_BASE, 8, BigInt(EVT) | (8n << 56n));
  m.mmioWrite(base + MMIO_CONTROL, 8, BigInt(CTRL_IOMMU_EN | CTRL_EVENT_LOG_EN | CTRL_CMD_BUF_EN | CTRL_EVENT_INT_EN));
}

/** A page table for `devid` mapping one page, 4 levels. */
function mapPage(m: Machine, devid: number, iova: bigint, hpa: bigint): void {
  const t = new AmdTables(m.memory);
  const root = t.alloc();
  t.map4k(root, 4, iova, hpa);
  dte(m, devid, { V: 1, TV: 1, Mode: 4, HostPageTableRootPtr: BigInt(root >>> 12), IR: 1, IW: 1, DomainID: 5 });
}

test("q35-amd: the unit's registers at 0xfed80000 and its PCI function at 00:01.0, as QEMU 7.2 shows them", () => {
  const m = Machine.load("q35-amd");
  assert.deepEqual(m.iommus.map((u) => [u.kind, u.name, u.base]), [["amd-vi", "ivhd0", BASE]]);
  assert.equal(m.iommuKind, "amd-vi");
  assert.equal(m.units.length, 0, "no VT-d unit");
  assert.equal(m.mmioRead(BASE + MMIO_EXT_FEATURE, 8), 0x29d3n);
  assert.equal(m.configRead(0x08, 0, 4), 0x0008_1022, "vendor 1022h, device 0008h at 00:01.0");
  assert.equal(m.configRead(0x08, 0x0a, 2), 0x0806, "class: IOMMU");
  assert.equal(m.configRead(0x08, 0x40, 1), 0x0f, "the capability block at 40h");
  assert.equal((m.configRead(0x08, 0x44, 4) & 0xffff_c000) >>> 0, BASE, "its base address register names the MMIO base");
});

test("device DMA goes through the device table and the I/O page table the driver wrote", () => {
  const m = Machine.load("q35-amd");
  const dev = m.device("00:02.0");
  mapPage(m, dev.requesterId, 0x4000n, 0x0300_0000n);
  enableUnit(m);
  const w = dev.write(0x4010, Uint8Array.of(1, 2, 3, 4, 5));
  assert.ok(w.ok);
  assert.deepEqual([...m.memory.read(0x0300_0010, 5)], [1, 2, 3, 4, 5]);
  const r = dev.read(0x4010, 5);
  assert.ok(r.ok && r.segments[0]!.hpa === 0x0300_0010n);
  assert.deepEqual([...r.data!], [1, 2, 3, 4, 5]);
  assert.equal(m.memory.read32(0x4010), 0, "nothing reached the untranslated address");
});

test("an unmapped request leaves an IO_PAGE_FAULT event in the log and raises the unit's MSI", () => {
  const m = Machine.load("q35-amd");
  const dev = m.device("00:02.0");
  mapPage(m, dev.requesterId, 0x4000n, 0x0300_0000n);
  // The unit's own MSI: address and data in its function's MSI capability, then enable.
  const msi = m.iommus[0]!.kind === "amd-vi" ? m.iommus[0]!.unit.pci.msiOffset : 0;
  m.configWrite(0x08, msi + 4, 4, 0xfee0_0000);
  m.configWrite(0x08, msi + 12, 2, 0x0041);
  m.configWrite(0x08, msi + 2, 2, 1);
  enableUnit(m);
  const before = m.platform.interrupts.length;
  const w = dev.write(0x9000, Uint8Array.of(7));
  assert.ok(!w.ok && w.result.kind === "dma" && !w.result.ok);
  assert.equal(w.result.kind === "dma" && !w.result.ok && w.result.reasonName, "IO_PAGE_FAULT");
  assert.equal(m.mmioRead(BASE + MMIO_EVENT_TAIL, 4), 16n, "one event written");
  const e = decodeEvent([0, 4, 8, 12].map((o) => m.memory.read32(EVT + o)));
  assert.deepEqual([e.code, e.deviceId, e.domainId, e.addrLo], [IO_PAGE_FAULT, dev.requesterId, 5, 0x9000]);
  const raised = m.platform.interrupts.slice(before);
  assert.deepEqual(raised.map((x) => [x.origin, x.unit, x.addressLo, x.data]), [["fault-event", "ivhd0", 0xfee0_0000, 0x41]]);
});

test("a device's MSI is remapped through the IRTE its DeviceID's table holds", () => {
  const m = Machine.load("q35-amd");
  const dev = m.device("00:07.0"); // MSI, not MSI-X
  dte(m, dev.requesterId, { V: 1, TV: 0, IV: 1, IntCtl: 2, IntTabLen: 3, IntTableRootPtr: BigInt(IRT >>> 6) });
  writeDwords(m.memory, IRT + 5 * 4, encodeFields(1, IRTE32_FIELDS, { RemapEn: 1, IntType: 0, DM: 0, Destination: 1, Vector: 0x45 }));
  enableUnit(m);
  m.configWrite(dev.requesterId, CAP_MSI_OFFSET + 4, 4, 0xfee0_0000);
  m.configWrite(dev.requesterId, CAP_MSI_OFFSET + 12, 2, 5);
  m.configWrite(dev.requesterId, CAP_MSI_OFFSET + 2, 2, 1);
  const r = dev.signal();
  assert.ok(r !== null && r.ok && r.kind === "interrupt");
  assert.deepEqual([r.remap.remapped, r.remap.index, r.remap.irq.vector, r.remap.irq.destination], [true, 5, 0x45, 1]);
  const last = m.platform.interrupts.at(-1)!;
  assert.deepEqual([last.origin, last.unit, last.sid, last.remapped, last.irq?.vector], ["device", "ivhd0", dev.requesterId, true, 0x45]);
  // An index whose IRTE is not enabled: an IO_PAGE_FAULT event, nothing delivered.
  const n = m.platform.interrupts.length;
  const bad = m.platform.msi(dev.requesterId, 0xfee0_0000, 6);
  assert.deepEqual([bad.ok, bad.kind, !bad.ok && "reasonName" in bad && bad.reasonName], [false, "interrupt", "IO_PAGE_FAULT"]);
  assert.equal(m.platform.interrupts.length, n);
});

test("the IOAPIC's interrupts use the device table entry of its special-entry DeviceID, 00:14.0", () => {
  const m = Machine.load("q35-amd");
  dte(m, 0xa0, { V: 1, TV: 0, IV: 1, IntCtl: 2, IntTabLen: 2, IntTableRootPtr: BigInt(IRT >>> 6) });
  writeDwords(m.memory, IRT + 2 * 4, encodeFields(1, IRTE32_FIELDS, { RemapEn: 1, IntType: 0, DM: 0, Destination: 0, Vector: 0x31 }));
  enableUnit(m);
  const r = m.sourceInterrupt({ kind: "ioapic", id: 0 }, 0xfee0_0000, 2);
  assert.ok(r.ok && r.kind === "interrupt");
  assert.deepEqual([r.remap.remapped, r.remap.irq.vector, r.message.sid], [true, 0x31, 0xa0]);
  assert.throws(() => m.sourceInterrupt({ kind: "hpet", id: 0 }, 0xfee0_0000, 0), (e: unknown) => e instanceof IommuError && /HPET 0: no AMD-Vi unit/.test(e.message));
});

test("with IommuEn clear, DMA and MSIs pass untranslated", () => {
  const m = Machine.load("q35-amd");
  const dev = m.device("00:02.0");
  mapPage(m, dev.requesterId, 0x4000n, 0x0300_0000n); // tables written, unit not enabled
  const w = dev.write(0x4010, Uint8Array.of(9));
  assert.ok(w.ok && w.segments[0]!.hpa === 0x4010n);
  assert.equal(m.memory.read(0x4010, 1)[0], 9);
  const i = m.platform.msi(dev.requesterId, 0xfee0_1000, 0x4033);
  assert.ok(i.ok && i.kind === "interrupt" && !i.remap.remapped && i.remap.irq.vector === 0x33);
});

test("amd-server: each unit translates its own buses; behind the PCIe-to-PCI bridge the alias DeviceID's entry is used", () => {
  const m = Machine.load("amd-server");
  assert.deepEqual(m.iommus.map((u) => u.kind === "amd-vi" && [u.name, u.bdf]), [["ivhd0", "00:00.2"], ["ivhd1", "00:03.2"], ["ivhd2", "00:07.2"]]);
  assert.equal(m.configRead(0x0002, 0, 2), 0x1022, "00:00.2 answers");
  assert.equal(m.configRead(0x0000, 0x0e, 1) & 0x80, 0x80, "00:00.0 reports a multi-function device, so 00:00.2 is found");
  assert.deepEqual([0x0100, 0x0300, 0x0400, 0x0500].map((sid) => m.platform.unitFor(sid)?.name), ["ivhd0", "ivhd0", "ivhd1", "ivhd2"]);
  const e1000 = m.device("03:01.0");
  assert.equal(e1000.requesterId, 0x0300);
  mapPage(m, 0x0300, 0x8000n, 0x0310_0000n);
  enableUnit(m, 0xfed8_0000);
  assert.ok(e1000.write(0x8000, Uint8Array.of(0xaa)).ok);
  assert.equal(m.memory.read(0x0310_0000, 1)[0], 0xaa);
  // ivhd1 is still off: its devices pass untranslated.
  assert.ok(m.device("04:00.0").write(0x8000, Uint8Array.of(0xbb)).ok);
  assert.equal(m.memory.read(0x8000, 1)[0], 0xbb);
});

test("an IVHD alias entry makes a function's requests use another DeviceID's device table entry", () => {
  const m = new Machine({ ...machinePreset("q35-amd")!, iommus: [{ type: "amd-vi", aliases: [{ first: "00:1f.2", alias: "00:1f.0" }] }] });
  mapPage(m, 0x00f8, 0x6000n, 0x0320_0000n); // 00:1f.0's entry only
  enableUnit(m);
  assert.ok(m.device("00:1f.2").write(0x6000, Uint8Array.of(0x5a)).ok);
  assert.equal(m.memory.read(0x0320_0000, 1)[0], 0x5a);
  const other = m.device("00:1f.3").write(0x6000, Uint8Array.of(1));
  assert.ok(other.ok && other.segments[0]!.hpa === 0x6000n, "00:1f.3 has no alias: its own entry (V=0) passes it untranslated");
});
