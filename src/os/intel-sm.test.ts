import { test } from "node:test";
import assert from "node:assert/strict";
import { Machine } from "../hw/machine.js";
import { machinePreset } from "../hw/machine-presets.js";
import type { VtdUnit } from "../hw/vtd/unit.js";
import { DMAR_GSTS_REG, DMAR_IQA_REG, DMAR_RTADDR_REG, GSTS_RTPS, GSTS_TES, IQA, REG_HI, RTADDR, TTM_LEGACY, TTM_SCALABLE } from "../spec/vtd/registers.js";
import { fieldOf } from "../spec/vtd/fields.js";
import { decodePasidIotlbDesc, descriptorType, INV_DESC_PC, INV_DESC_PIOTLB, INV_DESC_WAIT, PIOTLB_G_PAGE, PIOTLB_G_PASID } from "../spec/vtd/invalidation.js";
import {
  decodePasidDirEntry,
  decodeSmContextEntry,
  decodeSmRootEntry,
  FLPT_DEFAULT_DID,
  FSPM_4_LEVEL,
  PGTT_FIRST_STAGE,
  PGTT_PASS_THROUGH,
  PGTT_SECOND_STAGE,
  pasidDirEntries,
  RID_PASID_DEFAULT,
} from "../spec/vtd/scalable.js";
import { FS_ENTRY } from "../spec/vtd/first-stage.js";
import { VTD_FR_SM_CONTEXT_PASIDE, VTD_FR_SM_PASID_ENTRY_P } from "../spec/vtd/sm-faults.js";
import { DEBIAN_6_1_CONFIG } from "./cmdline.js";
import { Kernel } from "./kernel.js";
import type { KPciDev } from "./pci.js";

/** q35-sm with 1 GiB of RAM (boots faster; the devices are the same). */
function smMachine(unit: Record<string, unknown> = {}): Machine {
  const base = machinePreset("q35-sm")!;
  const iommus = [{ base: "0xfed90000", scope: "all", interruptRemapping: true, cachingMode: false, scalableMode: true, ...unit }];
  return new Machine({ ...base, name: "q35-sm-1g", ram: { size: "1G" }, iommus });
}

function boot(cmdline = "", unit: Record<string, unknown> = {}, config = DEBIAN_6_1_CONFIG): { m: Machine; k: Kernel } {
  const m = smMachine(unit);
  return { m, k: Kernel.boot(m, { cmdline, config }) };
}

function hwUnit(m: Machine): VtdUnit {
  const u = m.units[0]!;
  assert.equal(u.kind, "vtd");
  return u.unit as VtdUnit;
}

function reg64(k: Kernel, off: number): { lo: number; hi: number } {
  const base = k.driver.units[0]!.base;
  return { lo: k.port.mmioRead32(base + off) >>> 0, hi: k.port.mmioRead32(base + off + REG_HI) >>> 0 };
}

function words(m: Machine, at: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => m.memory.read32(at + 4 * i));
}

function dev(k: Kernel, bdf: string): KPciDev {
  const d = k.devices.find((x) => x.name === `0000:${bdf}`);
  assert.ok(d, bdf);
  return d;
}

test("q35-sm boots in scalable mode: RTADDR.TTM 01b, scalable root and context entries, a PASID table per device", () => {
  const { m, k } = boot();
  const u = k.driver.units[0]!;
  assert.equal(u.sm, true);
  const rt = reg64(k, DMAR_RTADDR_REG);
  assert.equal(fieldOf(rt.lo, rt.hi, RTADDR.TTM), TTM_SCALABLE);
  assert.equal(fieldOf(rt.lo, rt.hi, RTADDR.RTA) * 4096, u.rootTable);
  const gsts = k.port.mmioRead32(u.base + DMAR_GSTS_REG);
  assert.equal(gsts & (GSTS_TES | GSTS_RTPS), GSTS_TES | GSTS_RTPS);
  // Bus 0 has devices below devfn 128 (00:02.0) and above (00:1f.x): both halves of its root entry are present.
  const root = decodeSmRootEntry(words(m, u.rootTable, 4));
  assert.equal(root.lowerPresent, true);
  assert.equal(root.upperPresent, true);
  assert.notEqual(root.lowerTable, root.upperTable);
  for (const [bdf, table] of [["00:02.0", root.lowerTable], ["00:1f.2", root.upperTable]] as const) {
    const d = dev(k, bdf);
    const ce = k.driver.contextEntry(u, d.rid);
    assert.equal(ce - (ce % 4096), table, `${bdf}: context entry in the ${table === root.lowerTable ? "lower" : "upper"} table`);
    const c = decodeSmContextEntry(words(m, ce, 8));
    const pt = k.driver.pasid.table(d)!;
    assert.equal(c.present, true);
    assert.equal(c.pasidDir, pt.dir);
    assert.equal(pasidDirEntries(c.pdts), pt.maxPasid / 64, "PDTS covers the directory");
    assert.equal(pasidDirEntries(c.pdts), 512);
    assert.equal(c.ridPasid, RID_PASID_DEFAULT);
    assert.equal(c.paside, false);
    assert.equal(c.fpd, false);
    // The directory's first entry points at the PASID table holding RID_PASID's entry.
    assert.equal(decodePasidDirEntry(words(m, pt.dir, 2)).present, true);
  }
  assert.equal(u.domainIds[FLPT_DEFAULT_DID], 1, "FLPT_DEFAULT_DID is reserved");
});

test("DMA goes through the device's RID_PASID entry: second-stage for DMA domains (QEMU has no first-stage)", () => {
  const { m, k } = boot();
  const u = k.driver.units[0]!;
  const d = dev(k, "00:02.0");
  const g = k.groups.find((x) => x.devices.includes(d))!;
  const e = k.driver.pasid.readEntry(d)!;
  assert.equal(e.present, true);
  assert.equal(e.pgtt, PGTT_SECOND_STAGE);
  assert.equal(e.did, g.domain!.dids.get(u));
  assert.equal(e.ssptptr, g.domain!.tables!.pgd);
  assert.equal(g.domain!.firstLevel, false);
  const dma = k.dma("00:02.0");
  const buf = k.pages.alloc(1);
  const a = dma.mapSingle(buf, 4096, "from-device");
  const bus = m.device("00:02.0");
  assert.equal(bus.write(a, new Uint8Array([0x5a])).ok, true);
  assert.equal(m.memory.read8(buf), 0x5a);
  // Take the PASID entry away (with its invalidations): the same IOVA now faults at the PASID table.
  k.driver.pasid.tearDown(u, d, RID_PASID_DEFAULT);
  assert.equal(bus.write(a, new Uint8Array([0x5b])).ok, false);
  assert.equal(m.memory.read8(buf), 0x5a);
  const f = k.driver.faults.at(-1)!;
  assert.equal(f.reason, VTD_FR_SM_PASID_ENTRY_P);
  assert.equal(f.pasid, null, "a request without a PASID");
  assert.match(k.log.grep("SM: Present bit in PASID Table Entry is clear")[0]!, /^DMAR: \[DMA Write NO_PASID\] Request device \[00:02\.0\] fault addr 0x[0-9a-f]+ \[fault reason 0x59\]/);
});

test("iommu=pt: the identity domain is PASID-granular pass-through with FLPT_DEFAULT_DID", () => {
  const { m, k } = boot("iommu=pt");
  const d = dev(k, "00:04.0");
  const e = k.driver.pasid.readEntry(d)!;
  assert.equal(e.pgtt, PGTT_PASS_THROUGH);
  assert.equal(e.did, FLPT_DEFAULT_DID);
  const buf = k.pages.alloc(1);
  assert.equal(m.device("00:04.0").write(buf, new Uint8Array([9])).ok, true);
  assert.equal(m.memory.read8(buf), 9, "untranslated: the bus address is the physical address");
});

test("legacy mode: intel_iommu=sm_off, or a kernel built without SCALABLE_MODE_DEFAULT_ON (unless sm_on)", () => {
  const cases: [string, boolean, boolean][] = [
    ["intel_iommu=sm_off", true, false],
    ["", false, false],
    ["intel_iommu=sm_on", false, true],
  ];
  for (const [cmdline, defaultOn, sm] of cases) {
    const { m, k } = boot(cmdline, {}, { ...DEBIAN_6_1_CONFIG, scalableModeDefaultOn: defaultOn });
    const u = k.driver.units[0]!;
    const rt = reg64(k, DMAR_RTADDR_REG);
    assert.equal(u.sm, sm, cmdline);
    assert.equal(fieldOf(rt.lo, rt.hi, RTADDR.TTM), sm ? TTM_SCALABLE : TTM_LEGACY, cmdline);
    assert.equal(k.driver.pasid.table(dev(k, "00:02.0")) !== null, sm);
    // The queue is 256-bit either way: Linux sizes it from ECAP.SMTS alone.
    const iqa = reg64(k, DMAR_IQA_REG);
    assert.equal(fieldOf(iqa.lo, iqa.hi, IQA.DW), 1);
    const a = k.dma("00:02.0").mapSingle(k.pages.alloc(1), 4096, "from-device");
    assert.equal(m.device("00:02.0").write(a, new Uint8Array([1])).ok, true, `DMA works (${cmdline || "default"})`);
  }
});

test("256-bit invalidation queue: IQA.DW and QS = 1, descriptors in 32-byte slots with zero upper halves", () => {
  const { m, k } = boot();
  const u = k.driver.units[0]!;
  const iqa = reg64(k, DMAR_IQA_REG);
  assert.equal(fieldOf(iqa.lo, iqa.hi, IQA.DW), 1);
  assert.equal(fieldOf(iqa.lo, iqa.hi, IQA.QS), 1);
  assert.equal(u.qiWide, true);
  // setRootEntry's global PASID-cache invalidation sits in some slot: find it by type, 32 bytes apart.
  const types: number[] = [];
  for (let slot = 0; slot < u.qiTail; slot++) {
    const w = words(m, u.qiBase + 32 * slot, 8);
    types.push(descriptorType(w[0]!));
    assert.deepEqual(w.slice(4), [0, 0, 0, 0], `slot ${slot}: upper 128 bits zero`);
  }
  assert.ok(types.includes(INV_DESC_PC));
  assert.equal(types.filter((t) => t === INV_DESC_WAIT).length, u.inv.waits);
  const hw = hwUnit(m).stats().invalidation;
  assert.equal(hw.queueErrors, 0);
  assert.equal(hw.descriptors, u.qiTail, "the unit consumed every descriptor the driver wrote");
  assert.equal(hw.pasidCache, u.inv.pasidCache);
});

test("first-stage unit: DMA domains use first-level tables with Linux's PTE bits; strict unmap sends PASID-based IOTLB invalidations", () => {
  const { m, k } = boot("iommu.strict=1", { firstStage: true, awBits: 48 });
  const u = k.driver.units[0]!;
  const d = dev(k, "00:02.0");
  const g = k.groups.find((x) => x.devices.includes(d))!;
  const dom = g.domain!;
  assert.equal(dom.firstLevel, true);
  const e = k.driver.pasid.readEntry(d)!;
  assert.equal(e.pgtt, PGTT_FIRST_STAGE);
  assert.equal(e.fspm, FSPM_4_LEVEL);
  assert.equal(e.fsptptr, dom.tables!.pgd);
  assert.equal(e.did, dom.dids.get(u));
  assert.equal(e.sre, false, "no supervisor requests for RID_PASID");
  const dma = k.dma("00:02.0");
  const buf = k.pages.alloc(1);
  const a = dma.mapSingle(buf, 4096, "from-device");
  // Walk the first-stage tables by hand.
  let table = e.fsptptr;
  for (let level = 4; level >= 1; level--) {
    const idx = Math.floor(a / 2 ** (12 + 9 * (level - 1))) % 512;
    const [lo = 0, hi = 0] = words(m, table + idx * 8, 2);
    const bit = (f: (typeof FS_ENTRY)[keyof typeof FS_ENTRY]): number => fieldOf(lo, hi, f);
    assert.equal(bit(FS_ENTRY.P), 1, `level ${level} present`);
    assert.equal(bit(FS_ENTRY.XD), 1, `level ${level} XD`);
    assert.equal(bit(FS_ENTRY.US), 1, `level ${level} U/S`);
    assert.equal(bit(FS_ENTRY.A), 1, `level ${level} accessed`);
    assert.equal(bit(FS_ENTRY.PS), 0);
    if (level > 1) {
      assert.equal(bit(FS_ENTRY.RW), 1, `level ${level} R/W`);
      assert.equal(bit(FS_ENTRY.D), 0, "dirty only in leaves");
    } else {
      assert.equal(bit(FS_ENTRY.RW), 1, "from-device: writable");
      assert.equal(bit(FS_ENTRY.D), 1, "a writable leaf is written dirty");
      assert.equal(bit(FS_ENTRY.ADDR) * 4096, buf);
    }
    table = bit(FS_ENTRY.ADDR) * 4096;
  }
  const bus = m.device("00:02.0");
  assert.equal(bus.write(a, new Uint8Array([0x11])).ok, true);
  assert.equal(m.memory.read8(buf), 0x11);
  // Strict unmap: one page-selective PASID-based IOTLB invalidation, counted by the hardware, and the cached
  // translation the write above left is gone.
  const hwBefore = hwUnit(m).stats().invalidation;
  const before = { ...u.inv };
  dma.unmapSingle(a, 4096, "from-device");
  const hwAfter = hwUnit(m).stats().invalidation;
  assert.equal(hwAfter.pasidIotlb - hwBefore.pasidIotlb, 1);
  assert.equal(hwAfter.iotlbPage - hwBefore.iotlbPage, 0, "no legacy IOTLB descriptor for a first-level domain");
  assert.equal(u.inv.piotlb - before.piotlb, 1);
  const w = words(m, u.qiBase + 32 * ((u.qiTail + 256 - 2) % 256), 4);
  assert.equal(descriptorType(w[0]!), INV_DESC_PIOTLB, "the invalidation before the wait descriptor");
  assert.equal(bus.write(a, new Uint8Array([0x22])).ok, false, "no stale translation after unmap");
  assert.equal(m.memory.read8(buf), 0x11);
});

test("first_level_by_default: with both stages, first-stage for DMA domains and second-stage for unmanaged ones", () => {
  const { k } = boot("", { firstStage: true, awBits: 48 });
  assert.equal(k.driver.firstLevelByDefault("DMA"), true);
  assert.equal(k.driver.firstLevelByDefault("unmanaged"), false);
  assert.equal(boot("").k.driver.firstLevelByDefault("DMA"), false, "no FSTS: second-stage");
  assert.equal(boot("intel_iommu=sm_off", { firstStage: true, awBits: 48 }).k.driver.firstLevelByDefault("DMA"), false, "legacy mode");
});

test("a request with a PASID on QEMU's unit (no ECAP.PASID): the fault record carries the PASID, logged as Linux does", () => {
  const { m, k } = boot();
  const dma = k.dma("00:02.0");
  const buf = k.pages.alloc(1);
  const a = dma.mapSingle(buf, 4096, "from-device");
  const bus = m.device("00:02.0");
  assert.equal(bus.write(a, new Uint8Array([1]), { pasid: 5 }).ok, false);
  const f = k.driver.faults.at(-1)!;
  assert.equal(f.pasid, 5);
  assert.equal(f.reason, VTD_FR_SM_CONTEXT_PASIDE);
  assert.equal(k.faultsSince(0).at(-1)!.pasid, 5);
  assert.match(k.log.grep("PASID 0x5")[0]!, /^DMAR: \[DMA Write PASID 0x5\] Request device \[00:02\.0\] fault addr 0x[0-9a-f]+ \[fault reason 0x45\] SM: PASID Enable field in Context Entry is clear$/);
});

test("PASID API: a second-stage entry for PASID 5 and PASIDE make requests with that PASID translate (unit with ECAP.PASID)", () => {
  const { m, k } = boot("", { pasidBits: 20 });
  const u = k.driver.units[0]!;
  const d = dev(k, "00:02.0");
  const dom = k.groups.find((x) => x.devices.includes(d))!.domain!;
  const a = k.dma("00:02.0").mapSingle(k.pages.alloc(1), 4096, "from-device");
  const buf = dom.tables!.lookup(Math.floor(a / 4096))!;
  const bus = m.device("00:02.0");
  assert.equal(bus.write(a, new Uint8Array([1]), { pasid: 5 }).ok, false, "PASIDE clear");
  assert.equal(k.driver.faults.at(-1)!.reason, VTD_FR_SM_CONTEXT_PASIDE);
  const did = dom.dids.get(u)!;
  k.driver.pasid.setupSecondStage(u, d, 5, did, dom.tables!.pgd, dom.tables!.levels);
  assert.equal(k.driver.enablePasid(d, u, did), true);
  assert.equal(bus.write(a, new Uint8Array([2]), { pasid: 5 }).ok, true);
  assert.equal(m.memory.read8(buf), 2);
  assert.equal(k.driver.pasid.readEntry(d, 5)!.pgtt, PGTT_SECOND_STAGE);
  assert.equal(k.driver.pasid.readEntry(d, 5)!.sre, true, "other PASIDs allow supervisor requests (ECAP.SRS)");
});

test("first-stage unit: a multi-page strict unmap is one page-selective PASID-IOTLB descriptor; lazy mode flushes the PASID", () => {
  const { m, k } = boot("iommu.strict=1", { firstStage: true, awBits: 48 });
  const u = k.driver.units[0]!;
  const dma = k.dma("00:04.0");
  const buf = k.pages.alloc(3);
  const a = dma.mapSingle(buf, 3 * 4096, "to-device");
  dma.unmapSingle(a, 3 * 4096, "to-device");
  const slot = (u.qiTail + 256 - 2) % 256;
  const d = decodePasidIotlbDesc(words(m, u.qiBase + 32 * slot, 4));
  const did = k.groups.find((g) => g.devices.some((x) => x.name === "0000:00:04.0"))!.domain!.dids.get(u)!;
  assert.equal(d.g, PIOTLB_G_PAGE);
  assert.equal(d.did, did);
  assert.equal(d.pasid, RID_PASID_DEFAULT);
  assert.equal(d.am, 2, "3 pages round up to 4");
  const pfn = Math.floor(a / 4096);
  assert.equal(d.addrHi * 2 ** 32 + d.addrLo, (pfn - (pfn % 4)) * 4096, "address aligned down to the mask");
  // Lazy: nothing at unmap, one PASID-selective invalidation when the flush queue's timer fires.
  const lazy = boot("", { firstStage: true, awBits: 48 });
  const lu = lazy.k.driver.units[0]!;
  const ldma = lazy.k.dma("00:04.0");
  const la = ldma.mapSingle(lazy.k.pages.alloc(1), 4096, "to-device");
  const before = hwUnit(lazy.m).stats().invalidation.pasidIotlb;
  ldma.unmapSingle(la, 4096, "to-device");
  assert.equal(hwUnit(lazy.m).stats().invalidation.pasidIotlb, before);
  lazy.k.advance(11e6);
  assert.equal(hwUnit(lazy.m).stats().invalidation.pasidIotlb, before + 1);
  const ld = decodePasidIotlbDesc(words(lazy.m, lu.qiBase + 32 * ((lu.qiTail + 256 - 2) % 256), 4));
  assert.equal(ld.g, PIOTLB_G_PASID);
});

test("pasid_flush_caches: in caching mode a new PASID entry is followed by PASID-cache and PASID-IOTLB invalidations; otherwise none", () => {
  for (const cachingMode of [true, false]) {
    const { m, k } = boot("", { cachingMode, pasidBits: 20 });
    const u = k.driver.units[0]!;
    const d = dev(k, "00:02.0");
    const dom = k.groups.find((x) => x.devices.includes(d))!.domain!;
    const hw = hwUnit(m).stats().invalidation;
    k.driver.pasid.setupSecondStage(u, d, 7, dom.dids.get(u)!, dom.tables!.pgd, dom.tables!.levels);
    const after = hwUnit(m).stats().invalidation;
    assert.equal(after.pasidCache - hw.pasidCache, cachingMode ? 1 : 0, `caching mode ${cachingMode}`);
    assert.equal(after.pasidIotlb - hw.pasidIotlb, cachingMode ? 1 : 0);
    // Tear-down: PASID cache, then a domain-selective IOTLB for a second-stage entry.
    k.driver.pasid.tearDown(u, d, 7);
    const torn = hwUnit(m).stats().invalidation;
    assert.equal(torn.pasidCache - after.pasidCache, 1);
    assert.equal(torn.iotlbDomain - after.iotlbDomain, 1);
    assert.equal(k.driver.pasid.readEntry(d, 7)!.present, false);
  }
});

test("a scalable-mode unit with first-stage translation whose SAGAW has no first-stage width is given up, as alloc_iommu does; with sm_off it is used", () => {
  const { k } = boot("intel_iommu=on", { firstStage: true, awBits: 39 });
  assert.equal(k.log.grep("Cannot get a valid agaw for iommu (seq_id = 0)").length, 1, "logged once: the table is parsed once");
  assert.equal(k.driver.units.length, 0);
  assert.equal(k.dmaRemapping, false);
  const off = boot("intel_iommu=on,sm_off", { firstStage: true, awBits: 39 });
  assert.equal(off.k.driver.units.length, 1);
  assert.equal(off.k.dmaRemapping, true);
});
