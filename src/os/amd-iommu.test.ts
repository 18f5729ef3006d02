// The AMD-Vi driver on a machine with QEMU's AMD-Vi unit and the IVRS recorded from QEMU 7.2 (test/support/
// amd-machine.ts): what it writes to the device table, the page tables and the interrupt remapping tables, read
// back from memory and exercised through the hardware model.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AmdMachine } from "../../test/support/amd-machine.js";
import { decodeIvrs, encodeIvrs } from "../acpi/ivrs.js";
import { getField, getFieldBig } from "../spec/amdvi/fields.js";
import { DTE_DOMAIN_ID, DTE_INT_CTL, DTE_INT_TABLE_ROOT, DTE_IR, DTE_IV, DTE_IW, DTE_MODE, DTE_PT_ROOT, DTE_TV, DTE_V } from "../spec/amdvi/dte.js";
import { IO_PAGE_FAULT } from "../spec/amdvi/events.js";
import { MMIO_CONTROL, CTRL_GA_EN, CTRL_IOMMU_EN, CTRL_EVENT_INT_EN } from "../spec/amdvi/registers.js";
import { Kernel } from "./kernel.js";
import { parseBootParams } from "./cmdline.js";

const LAB_CMDLINE = "console=ttyS0 panic=-1 loglevel=6";

function boot(cmdline = `${LAB_CMDLINE} amd_iommu=on`, m = new AmdMachine()): { m: AmdMachine; k: Kernel } {
  return { m, k: Kernel.boot(m, { cmdline }) };
}

test("amd_iommu= and amd_iommu_intr= options as 6.1 parses them", () => {
  const p = parseBootParams("amd_iommu=fullflush,force_isolation,pgtbl_v2,on,off amd_iommu_intr=legacy");
  assert.deepEqual(p.setupMessages.map((m) => m.text), [
    "AMD-Vi: amd_iommu=fullflush deprecated; use iommu.strict=1 instead",
    "AMD-Vi: Unknown option - 'on,off'",
  ]);
  assert.equal(p.amdIommuOff, true, "the rest of the list is still parsed after an unknown option");
  assert.equal(p.strictForced, true);
  assert.equal(p.strictCmdline, null);
  assert.equal(p.amdIommuForceIsolation, true);
  assert.equal(p.amdIommuPgtable, "v2");
  assert.equal(p.amdIommuIntr, "legacy-ga");
  assert.equal(parseBootParams("amd_iommu=force_enable,off").amdIommuOff, true);
  assert.equal(parseBootParams("amd_iommu_intr=vapic").amdIommuIntr, "vapic");
});

test("the device table: every DTE valid and blocking, the grouped devices translating through their domain, aliases copied", () => {
  const { m, k } = boot();
  const amd = k.amd;
  const nic = k.pciDevice("00:02.0");
  const dom = k.iommu.groupFor(nic)!.domain!;
  const dte = amd.readDte(nic.rid);
  assert.equal(getField(dte, DTE_V), 1);
  assert.equal(getField(dte, DTE_TV), 1);
  assert.equal(getField(dte, DTE_IR), 1);
  assert.equal(getField(dte, DTE_IW), 1);
  assert.equal(getField(dte, DTE_MODE), dom.tables!.levels);
  assert.equal(getFieldBig(dte, DTE_PT_ROOT), BigInt(dom.tables!.pgd) >> 12n);
  assert.equal(getField(dte, DTE_DOMAIN_ID), dom.pdId);
  // The IOMMU itself (00:01.0) is not translated for: valid, no permissions.
  const self = amd.readDte(m.iommuRid);
  assert.deepEqual([getField(self, DTE_V), getField(self, DTE_TV), getField(self, DTE_IR), getField(self, DTE_IW)], [1, 1, 0, 0]);
  // 02:01.0 sits behind the PCIe-to-PCI bridge: the IVRS alias 02:00.0 gets the same translation.
  const e1000 = k.pciDevice("02:01.0");
  const alias = amd.readDte(0x0200);
  assert.deepEqual([...alias.slice(0, 4)], [...amd.readDte(e1000.rid).slice(0, 4)]);
  assert.equal(m.rid("02:01.0"), 0x0200, "the topology makes its requests carry 02:00.0");
  // Domain ids are global and start at 1.
  const ids = k.groups.map((g) => g.domain!.pdId);
  assert.deepEqual(ids, ids.map((_, i) => i + 1));
  const ctrl = Number(m.unit.mmioRead64(MMIO_CONTROL) & 0xffff_ffffn);
  assert.ok((ctrl & CTRL_IOMMU_EN) !== 0 && (ctrl & CTRL_EVENT_INT_EN) !== 0 && (ctrl & CTRL_GA_EN) !== 0, `control 0x${ctrl.toString(16)}`);
});

test("DMA through the unit: reaches the page after map; after a strict unmap it faults, and the event is logged on the unit's interrupt", () => {
  const { m, k } = boot();
  const dma = k.dma("00:02.0");
  // A 31-bit DMA mask keeps IOVAs below 2^31.
  dma.setMask(31);
  const buf = k.pages.alloc(1);
  const a = dma.mapSingle(buf + 0x10, 64, "from-device");
  assert.ok(a < 2 ** 31, `IOVA 0x${a.toString(16)}`);
  const ok = m.dma("00:02.0", a, true);
  assert.equal(ok.result, "ok");
  assert.equal(ok.result === "ok" ? Number(ok.hpa) : -1, buf + 0x10);
  // Read-only mapping for a to-device buffer: writes fault.
  const ro = dma.mapSingle(buf, 64, "to-device");
  assert.equal(m.dma("00:02.0", ro, false).result, "ok");
  assert.equal(m.dma("00:02.0", ro, true).result, "fault");
  const before = k.amd.faults.length;
  assert.equal(before, 1, "the permission fault reached the driver through the event interrupt");
  dma.unmapSingle(a, 64, "from-device");
  const after = m.dma("00:02.0", a, true);
  assert.equal(after.result, "fault");
  assert.equal(after.result === "fault" ? after.event : 0, IO_PAGE_FAULT);
  const ev = k.amd.faults[k.amd.faults.length - 1]!;
  assert.equal(ev.code, IO_PAGE_FAULT);
  assert.equal(ev.deviceId, k.pciDevice("00:02.0").rid);
  assert.equal(ev.domainId, k.iommu.groupFor(k.pciDevice("00:02.0"))!.domain!.pdId);
  assert.equal(Number(ev.address), a);
  const line = k.log.grep("IO_PAGE_FAULT").at(-1)!;
  assert.match(line, /^e1000e 0000:00:02\.0: AMD-Vi: Event logged \[IO_PAGE_FAULT domain=0x[0-9a-f]{4} address=0x[0-9a-f]+ flags=0x0020\]$/);
});

test("lazy invalidation (a unit without NpCache): the unmapped page stays reachable until the flush queue runs", () => {
  const m = new AmdMachine();
  // QEMU's capability header with NpCache (bit 26) cleared.
  m.unit.pci.config[m.unit.pci.capOffset + 3]! &= ~(1 << 2);
  const { k } = boot(LAB_CMDLINE, m);
  assert.equal(k.log.grep("Using strict mode due to virtualization").length, 0);
  assert.ok(k.groups.every((g) => g.type === "DMA-FQ"));
  const dma = k.dma("00:02.0");
  const a = dma.mapSingle(k.pages.alloc(1), 4096, "bidirectional");
  assert.equal(m.dma("00:02.0", a, true).result, "ok");
  dma.unmapSingle(a, 4096, "bidirectional");
  assert.equal(m.dma("00:02.0", a, true).result, "ok", "a stale IOTLB entry still translates");
  k.advance(20e6);
  assert.equal(m.dma("00:02.0", a, true).result, "fault");
});

test("interrupt remapping: 128-bit entries per device table, MSIs remapped by the unit to the vector the kernel chose", () => {
  const { m, k } = boot();
  const nvme = k.pciDevice("00:04.0");
  const irqs = k.irqs.filter((q) => q.dev === nvme);
  assert.equal(irqs.length, nvme.msiVectors);
  assert.ok(irqs.every((q) => q.chip === "IR-PCI-MSI"));
  const dte = k.amd.readDte(nvme.rid);
  assert.equal(getField(dte, DTE_IV), 1);
  assert.equal(getField(dte, DTE_INT_CTL), 2);
  const table = k.amd.irq.tables.get(nvme.rid)!;
  assert.equal(getFieldBig(dte, DTE_INT_TABLE_ROOT), BigInt(table.addr) >> 6n);
  for (const q of irqs) {
    const e = k.amd.irq.readEntry(nvme.rid, q.irte!)!;
    assert.deepEqual(e, { remapEn: true, vector: q.vector, destination: q.apic });
    const out = m.unit.remapMsi(nvme.rid, 0xfee00000, q.irte!);
    assert.equal(out.kind, "remapped");
    assert.equal(out.data & 0xff, q.vector);
  }
  // The IOAPIC (IVRS special entry 00:14.0): timer on pin 2.
  const io = m.unit.remapInterrupt({ kind: "ioapic", id: 0 }, 0xfee00000, 2);
  assert.equal(io.kind, "remapped");
  assert.equal(io.data & 0xff, 0x30);
  // The unit's own interrupt is a plain PCI-MSI of its function.
  assert.deepEqual(k.irqs.filter((q) => q.name === "AMD-Vi").map((q) => [q.irq, q.chip, q.hwirq]), [[24, "PCI-MSI", 16384]]);
});

test("no IOAPIC in the IVRS: Linux's firmware-bug messages, interrupt remapping off, DMA remapping on", () => {
  const t = decodeIvrs(new AmdMachine().firmware.acpi.IVRS!);
  const ivhd = t.blocks[0]!;
  if (ivhd.type !== "IVHD") throw new Error("IVHD expected");
  ivhd.entries = ivhd.entries.filter((e) => e.type !== "special");
  const { k } = boot(LAB_CMDLINE, new AmdMachine({ ivrs: encodeIvrs(t) }));
  assert.deepEqual(k.log.grep(/IOAPIC|interrupt remapping|Interrupt remapping/), [
    "AMD-Vi: [Firmware Bug]: : IOAPIC[0] not in IVRS table",
    "AMD-Vi: [Firmware Bug]: : No southbridge IOAPIC found",
    "AMD-Vi: Disabling interrupt remapping",
  ]);
  assert.equal(k.irqRemapping, false);
  assert.ok(k.irqs.filter((q) => q.dev !== null).every((q) => q.chip === "PCI-MSI"));
  assert.equal(k.groups.length, 10);
});

test("command lines: amd_iommu=off, iommu=pt, intremap=off, iommu=off", () => {
  const off = boot(`${LAB_CMDLINE} amd_iommu=off`).k;
  assert.equal(off.groups.length, 0);
  assert.equal(off.log.grep("AMD-Vi: Using global IVHD EFR").length, 0, "6.1 does not run the early init when off");
  const pt = boot(`${LAB_CMDLINE} iommu=pt`);
  assert.ok(pt.k.groups.every((g) => g.type === "identity"));
  const dte = pt.k.amd.readDte(pt.k.pciDevice("00:02.0").rid);
  assert.deepEqual([getField(dte, DTE_MODE), getField(dte, DTE_IR), getField(dte, DTE_IW), getField(dte, DTE_TV)], [0, 1, 1, 1]);
  const r = pt.m.dma("00:02.0", 0x12345000, true);
  assert.equal(r.result === "ok" ? Number(r.hpa) : -1, 0x12345000, "pass-through");
  const noir = boot(`${LAB_CMDLINE} intremap=off`).k;
  assert.equal(noir.log.grep("Interrupt remapping enabled").length, 0);
  assert.equal(noir.groups.length, 10);
  const efr = noir.log.lines.find((l) => l.text.startsWith("AMD-Vi: Using global IVHD EFR"))!;
  assert.ok(efr.ns > 1e9, "without interrupt remapping the driver starts at pci_iommu_init");
  const none = boot(`${LAB_CMDLINE} iommu=off`).k;
  assert.equal(none.groups.length, 0);
  assert.equal(none.log.grep("AMD-Vi: Using global IVHD EFR").length, 0);
});

/** QEMU's IVRS with 00:03.0 aliased to 00:02.0 and a unity range for 00:04.0. */
function editedIvrs(): Uint8Array {
  const t = decodeIvrs(new AmdMachine().firmware.acpi.IVRS!);
  const ivhd = t.blocks[0]!;
  if (ivhd.type !== "IVHD") throw new Error("IVHD expected");
  const i = ivhd.entries.findIndex((e) => e.deviceId === "00:03.0");
  const sel = ivhd.entries[i]!;
  ivhd.entries[i] = { typeCode: 0x42, type: "alias-select", offset: 0, length: 8, deviceId: "00:03.0", dataSetting: sel.dataSetting, aliasId: "00:02.0" };
  t.blocks.push({
    type: "IVMD", typeCode: 0x21, offset: 0, length: 32, deviceId: "00:04.0", auxData: 0,
    flags: { raw: 0x7, unity: true, read: true, write: true, exclusionRange: false },
    start: "0x1000000", memoryLength: "0x4000",
  });
  return encodeIvrs(t);
}

test("IVRS aliases and unity ranges: a fixed DMA alias joins groups and shares the DTE; an IVMD range is a direct region mapped 1:1", () => {
  const { m, k } = boot(LAB_CMDLINE, new AmdMachine({ ivrs: editedIvrs() }));
  assert.deepEqual(k.log.grep("Enabling fixed DMA alias"), [
    "pci 0000:00:03.0: Enabling fixed DMA alias to 02.0",
    "pci 0000:02:01.0: Enabling fixed DMA alias to 00.0",
  ]);
  const g = k.iommu.groupFor(k.pciDevice("00:03.0"))!;
  assert.deepEqual(g.devices.map((d) => d.name), ["0000:00:02.0", "0000:00:03.0"]);
  assert.equal(k.groups.length, 9);
  assert.deepEqual([...k.amd.readDte(0x18).slice(0, 4)], [...k.amd.readDte(0x10).slice(0, 4)], "00:03.0's DTE copied to its alias");
  const nvme = k.pciDevice("00:04.0");
  const regions = k.iommu.groupReservedRegions(k.iommu.groupFor(nvme)!).map((r) => `${r.start.toString(16)}-${r.end.toString(16)} ${r.type}`);
  assert.deepEqual(regions, ["1000000-1003fff direct", "fee00000-feefffff msi", "fd00000000-ffffffffff reserved"]);
  const r = m.dma("00:04.0", 0x1002000, true);
  assert.equal(r.result === "ok" ? Number(r.hpa) : -1, 0x1002000, "the unity range is identity-mapped in the DMA domain");
  assert.equal(m.dma("00:04.0", 0x1004000, true).result, "fault", "the page after it is not");
});

test("a DMA domain's page table grows a level for an IOVA above 2^39; the DTE follows", () => {
  const { m, k } = boot();
  const dev = k.pciDevice("00:02.0");
  const dom = k.iommu.groupFor(dev)!.domain!;
  assert.equal(dom.tables!.levels, 3);
  const iova = 2 ** 40;
  const page = k.pages.alloc(1);
  dom.tables!.map(iova / 4096, page / 4096, 1, 3);
  assert.equal(dom.tables!.levels, 4);
  assert.equal(getField(k.amd.readDte(dev.rid), DTE_MODE), 4);
  assert.equal(getFieldBig(k.amd.readDte(dev.rid), DTE_PT_ROOT), BigInt(dom.tables!.pgd) >> 12n);
  const r = m.dma("00:02.0", iova + 8, false);
  assert.equal(r.result === "ok" ? Number(r.hpa) : -1, page + 8);
});

test("amd_iommu=pgtbl_v2 on QEMU's unit (no GIoSup): Linux's fallback to v1", () => {
  const { k } = boot(`${LAB_CMDLINE} amd_iommu=pgtbl_v2`);
  assert.deepEqual(k.log.grep("v2 page table"), ["AMD-Vi: Cannot enable v2 page table for DMA-API. Fallback to v1."]);
  assert.equal(k.groups.length, 10);
});

test("IRTEs for the hypervisor: modify and free, each invalidated before the call returns", () => {
  const { m, k } = boot();
  const dev = k.pciDevice("00:03.0");
  const e = k.amd.allocIrte(dev, 0x61, 1);
  const irtBefore = k.amd.units[0]!.counts.invalidateIrt;
  k.amd.modifyIrte(dev, e.index, 0x62, 0);
  assert.equal(k.amd.units[0]!.counts.invalidateIrt, irtBefore + 1);
  const out = m.unit.remapMsi(dev.rid, e.address, e.data);
  assert.equal(out.kind === "remapped" ? out.data & 0xff : -1, 0x62);
  k.amd.freeIrte(dev, e.index);
  assert.equal(m.unit.remapMsi(dev.rid, e.address, e.data).kind, "fault");
});

test("amd_iommu=fullflush makes DMA domains strict as iommu_set_dma_strict does: not marked as set on the command line, and iommu.strict=0 does not undo it", () => {
  const policy = (cmdline: string) => boot(`${LAB_CMDLINE} ${cmdline}`).k.log.lines.map((l) => l.text).find((t) => t.startsWith("iommu: DMA domain TLB invalidation policy"))?.trimEnd();
  assert.equal(policy("amd_iommu=fullflush"), "iommu: DMA domain TLB invalidation policy: strict mode");
  assert.equal(policy("iommu.strict=1"), "iommu: DMA domain TLB invalidation policy: strict mode (set via kernel command line)");
  assert.equal(policy("iommu.strict=0 amd_iommu=fullflush"), "iommu: DMA domain TLB invalidation policy: strict mode (set via kernel command line)");
  assert.equal(policy(""), "iommu: DMA domain TLB invalidation policy: lazy mode");
});
