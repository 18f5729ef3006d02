/**
 * Shared virtual addressing through the simulated kernel's VT-d driver on q35-sva: the PASID entry a bind writes
 * (VT-d 9.6: PGTT first-stage, FSPTPTR = the process's page tables, DID FLPT_DEFAULT_DID, SRE clear), PASIDE in the
 * context entry (9.4), the PASID-based IOTLB invalidations an munmap and an unbind send (6.5.2.4) and the
 * PASID-cache invalidation of the unbind (6.5.2.2), counted by the hardware unit.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Machine } from "../hw/machine.js";
import type { VtdUnit } from "../hw/vtd/unit.js";
import { decodeSmContextEntry, FLPT_DEFAULT_DID, PGTT_FIRST_STAGE } from "../spec/vtd/scalable.js";
import { VTD_FR_SM_FS_ENTRY_P, VTD_FR_SM_PASID_ENTRY_P } from "../spec/vtd/sm-faults.js";
import { IntelSvm } from "./intel-svm.js";
import { Kernel } from "./kernel.js";
import { HotPages, Mm } from "./mm.js";
import { pciPasidEnabled, type KPciDev } from "./pci.js";

const VA = 0x7f00_0000_0000;

function boot(preset = "q35-sva"): { m: Machine; k: Kernel; svm: IntelSvm; dev: KPciDev; hw: VtdUnit; hot: HotPages } {
  const m = Machine.load(preset);
  const k = Kernel.boot(m, { cmdline: "intel_iommu=on" });
  const dev = k.devices.find((d) => d.name === "0000:00:08.0")!;
  const hw = m.units[0]!.unit;
  return { m, k, svm: new IntelSvm(k), dev, hw, hot: new HotPages(k.pages) };
}

function contextEntry(m: Machine, k: Kernel, dev: KPciDev): ReturnType<typeof decodeSmContextEntry> {
  const ce = k.driver.contextEntry(k.driver.units[0]!, dev.rid);
  return decodeSmContextEntry(Array.from({ length: 8 }, (_, i) => m.memory.read32(ce + 4 * i)));
}

test("enable sets PASID Enable in the device and PASIDE in its context entry; bind writes a user first-stage entry over the process's tables", () => {
  const { m, k, svm, dev, hot } = boot();
  assert.equal(contextEntry(m, k, dev).paside, false);
  assert.equal(k.driver.pasid.table(dev)!.maxPasid, 2 ** 20, "the directory covers the device's 20-bit PASIDs");
  svm.enable(dev);
  assert.equal(contextEntry(m, k, dev).paside, true);
  assert.equal(pciPasidEnabled(k.port, dev), true);
  const mm = new Mm(k.port.memory, hot, 7);
  const [frame] = mm.mmap(VA, 1);
  const bond = svm.bind(dev, mm);
  assert.equal(bond.pasid, 1, "the first PASID handed out");
  const e = k.driver.pasid.readEntry(dev, bond.pasid)!;
  assert.equal(e.present, true);
  assert.equal(e.pgtt, PGTT_FIRST_STAGE);
  assert.equal(e.fsptptr, mm.pgd);
  assert.equal(e.did, FLPT_DEFAULT_DID);
  assert.equal(e.sre, false);
  const bus = m.device("00:08.0");
  assert.equal(bus.write(VA, new Uint8Array([0x5a]), { pasid: bond.pasid }).ok, true);
  assert.equal(m.memory.read8(frame!), 0x5a);
  assert.equal(bus.write(VA, new Uint8Array([1]), { pasid: bond.pasid, privileged: true }).ok, false, "supervisor requests are refused (SRE clear)");
  assert.equal(svm.bind(dev, mm), bond, "binding again returns the same bond");
  const mm2 = new Mm(k.port.memory, hot, 8);
  assert.equal(svm.bind(dev, mm2).pasid, 2);
});

test("munmap sends a page-selective PASID-based IOTLB invalidation; unbind a PASID-cache and a PASID-based IOTLB invalidation, and the PASID faults", () => {
  const { m, k, svm, dev, hw, hot } = boot();
  svm.enable(dev);
  const mm = new Mm(k.port.memory, hot, 7);
  mm.mmap(VA, 2);
  const bond = svm.bind(dev, mm);
  const bus = m.device("00:08.0");
  assert.equal(bus.write(VA + 4096, new Uint8Array([1]), { pasid: 1 }).ok, true, "the IOTLB now caches the page");
  let s0 = hw.stats().invalidation;
  mm.munmap(VA + 4096);
  let s1 = hw.stats().invalidation;
  assert.equal(s1.pasidIotlb - s0.pasidIotlb, 1);
  const w = bus.write(VA + 4096, new Uint8Array([1]), { pasid: 1 });
  assert.ok(!w.ok && "reason" in w.result && w.result.reason === VTD_FR_SM_FS_ENTRY_P, "the cached translation is gone");
  s0 = hw.stats().invalidation;
  svm.unbind(bond);
  s1 = hw.stats().invalidation;
  assert.equal(s1.pasidCache - s0.pasidCache, 1);
  assert.equal(s1.pasidIotlb - s0.pasidIotlb, 1);
  const after = bus.write(VA, new Uint8Array([1]), { pasid: 1 });
  assert.ok(!after.ok && "reason" in after.result && after.result.reason === VTD_FR_SM_PASID_ENTRY_P);
  assert.equal(k.faultsSince(0).at(-1)?.pasid, 1, "the host read the record with its PASID");
  assert.ok(!mm.notifiers.includes(bond.notifier), "unbind unregisters the bond's notifier");
});

test("an unbind without invalidations leaves the unit translating the PASID from its caches", () => {
  const { m, k, svm, dev, hot } = boot();
  svm.enable(dev);
  const mm = new Mm(k.port.memory, hot, 7);
  const [frame] = mm.mmap(VA, 1);
  const bond = svm.bind(dev, mm);
  const bus = m.device("00:08.0");
  assert.equal(bus.write(VA, new Uint8Array([1]), { pasid: 1 }).ok, true);
  svm.unbind(bond, { flush: false });
  assert.equal(bus.write(VA, new Uint8Array([0x77]), { pasid: 1 }).ok, true, "stale: the entry is gone from memory, not from the caches");
  assert.equal(m.memory.read8(frame!), 0x77);
});

test("a process exiting while bound has its PASID entry torn down (mm release)", () => {
  const { m, k, svm, dev, hot } = boot();
  svm.enable(dev);
  const mm = new Mm(k.port.memory, hot, 7);
  mm.mmap(VA, 1);
  svm.bind(dev, mm);
  mm.exit();
  assert.equal(k.driver.pasid.readEntry(dev, 1)?.present, false);
  // The exited address space's PASID is free again: the next process gets it.
  const next = new Mm(k.port.memory, hot, 8);
  assert.equal(svm.bind(dev, next).pasid, 1);
  assert.equal(m.device("00:08.0").write(VA, new Uint8Array([1]), { pasid: 1 }).ok, false);
});

test("SVA is refused where it cannot work: no first-stage translation (q35-sm), no PASID capability", () => {
  const sm = boot("q35-sm");
  const nic = sm.k.devices.find((d) => d.name === "0000:00:02.0")!;
  assert.throws(() => sm.svm.enable(nic), /ECAP\.PASID is clear|FSTS/);
  const sva = boot();
  const nic2 = sva.k.devices.find((d) => d.name === "0000:00:02.0")!;
  assert.throws(() => sva.svm.enable(nic2), /has no PASID capability/);
  const legacy = boot("q35");
  assert.throws(() => legacy.svm.enable(legacy.k.devices.find((d) => d.name === "0000:00:02.0")!), /does not run in scalable mode/);
});
