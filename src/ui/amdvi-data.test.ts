import { test } from "node:test";
import assert from "node:assert/strict";
import { formatRequesterId } from "../core/pci.js";
import { Machine, type MachineAmdViUnit } from "../hw/machine.js";
import type { TranslateResult } from "../hw/vtd/request.js";
import { Kernel } from "../os/kernel.js";
import { IO_PAGE_FAULT } from "../spec/amdvi/events.js";
import { QEMU_DEFAULT_EFR } from "../spec/amdvi/registers.js";
import { MSI_ADDR_BASE } from "../spec/msi.js";
import { buildUi } from "./data.js";

const PAGE = 4096n;
const amdUnits = (m: Machine): MachineAmdViUnit[] => m.iommus.filter((u): u is MachineAmdViUnit => u.kind === "amd-vi");

test("an AMD-Vi machine boots without an IOMMU option; its units are the machine's AMD-Vi units, as their registers and the driver say", () => {
  for (const name of ["q35-amd", "amd-server"]) {
    const { data } = buildUi({ machine: name, noStories: true });
    assert.equal(data.cmdline, "", `${name}: AMD-Vi is on by default (no intel_iommu=on)`);
    // An independent boot of the same machine, as the page's is: what the driver enabled.
    const m = Machine.load(name);
    const k = Kernel.boot(m, { cmdline: "" });
    const configured = m.config.iommus;
    assert.ok(configured.length > 0 && configured.every((u) => u.type === "amd-vi"));
    assert.deepEqual(data.units.map((u) => [u.name, u.base]), configured.map((u) => [u.name, "0x" + u.base.toString(16)]));
    assert.deepEqual(data.units.map((u) => u.amdVi?.bdf), configured.map((u) => (u.type === "amd-vi" ? u.bdf : "")));
    assert.deepEqual(data.units.map((u) => u.name), k.amd.units.map((u) => u.name), "the driver's ivhdN names");
    for (const u of data.units) {
      const driverUnit = k.amd.units.find((d) => "0x" + d.base.toString(16) === u.base);
      assert.equal(u.translation, driverUnit?.enabled, `${u.name}: translation as the driver enabled the unit`);
      assert.equal(u.irqRemapping, k.amd.irEnabled, `${u.name}: interrupt remapping`);
      assert.equal(u.translation, true);
      assert.equal(u.irqRemapping, true, "QEMU's amd-iommu with intremap=on");
      // QEMU 7.2's AMDVI_DEFAULT_EXT_FEATURES: PreF, PPR, GT, IA, GA, HE; HATS = 10b (6 levels).
      assert.equal(u.amdVi?.efr, "0x" + QEMU_DEFAULT_EFR.toString(16));
      assert.deepEqual(u.amdVi?.features, ["PreFSup", "PPRSup", "GTSup", "IASup", "GASup", "HESup"]);
      assert.equal(u.amdVi?.hostLevels, 6);
    }
    const scoped = data.units.flatMap((u) => u.scope).sort();
    assert.deepEqual(scoped, m.topology.functions.map((f) => f.bdf).sort(), `${name}: every PCI function is behind one unit`);
  }
});

test("an AMD-Vi machine's address spaces: walks translate to the DMA API's pages as the kernel's tables and the unit do, and fault as the unit would", () => {
  for (const name of ["q35-amd", "amd-server"]) {
    const { data, machine: m, kernel: k } = buildUi({ machine: name, noStories: true });
    const translated = data.spaces.filter((s) => s.bufferPages.length > 0);
    assert.ok(translated.length >= 5, `${name}: ${translated.length} devices with a DMA buffer`);
    for (const s of translated) {
      const fn = m.topology.byBdf(s.bdf);
      assert.ok(fn !== undefined);
      const unit = amdUnits(m).find((u) => u.name === data.devices.find((d) => d.bdf === s.bdf)?.unit);
      assert.ok(unit !== undefined, s.bdf);
      const devid = unit.port.deviceId(fn.rid);
      const group = k.groups.find((g) => g.devices.some((d) => m.topology.byBdf(d.name)?.bdf === s.bdf));
      const tables = group?.domain?.tables;
      assert.ok(tables !== undefined && tables !== null, `${s.bdf}: a translated domain`);
      assert.equal(s.mappings.result, "ok");
      if (s.mappings.result !== "ok") continue;
      assert.equal(s.mappings.domainId, group?.domain?.pdId, `${s.bdf}: the protection domain id`);
      // Every page of the buffer the DMA API mapped is reached by one of the device's IOVAs.
      const hpas = new Set(s.mappings.ranges.map((r) => BigInt(r.hpa)));
      for (const p of s.bufferPages) assert.ok(hpas.has(BigInt(p)), `${s.bdf}: buffer page ${p} mapped`);
      const ok = s.walks.filter((w) => w.result === "ok");
      assert.equal(ok.length, Math.min(16, s.mappings.ranges.length), s.bdf);
      const first = ok[0];
      assert.ok(first !== undefined && first.result === "ok");
      // The domain is the group's: its mappings are the buffers mapped for the group's devices.
      const groupPages = data.spaces.filter((x) => group?.devices.some((d) => m.topology.byBdf(d.name)?.bdf === x.bdf)).flatMap((x) => x.bufferPages.map(BigInt));
      // Or in a unity range the firmware asks for (IVMD, a direct reserved region: IOVA = host address).
      const direct = (iova: bigint): boolean => s.reserved.some((r) => r.type.startsWith("direct") && BigInt(r.start) <= iova && iova <= BigInt(r.end));
      for (const w of ok) {
        if (w.result !== "ok") continue;
        const page = BigInt(w.hpa) - (BigInt(w.hpa) % PAGE);
        assert.ok(groupPages.includes(page) || (direct(BigInt(w.iova)) && w.hpa === w.iova), `${s.bdf} ${w.iova}: lands in a page the DMA API mapped`);
      }
      const firstBuffer = ok.find((w) => !direct(BigInt(w.iova)));
      assert.ok(firstBuffer?.result === "ok" && groupPages.includes(BigInt(firstBuffer.hpa) - (BigInt(firstBuffer.hpa) % PAGE)), `${s.bdf}: the first walk into the buffer`);
      const amdDevTable = k.amd.units.find((u) => u.base === unit.base)?.devTable ?? -1;
      for (const w of ok) {
        if (w.result !== "ok") continue;
        const iova = BigInt(w.iova);
        // The kernel's own page-table lookup of the domain.
        const pfn = tables.lookup(Number(iova / PAGE));
        assert.ok(pfn !== null, `${s.bdf} ${w.iova}: mapped in the kernel's tables`);
        assert.equal(BigInt(w.hpa), BigInt(pfn) * PAGE + (iova % PAGE), `${s.bdf} ${w.iova}: the kernel's lookup`);
        // The unit's translation of the same read.
        const hw: TranslateResult = unit.port.translate({ sid: fn.rid, addr: iova, length: 1, write: false });
        assert.ok(hw.ok && hw.kind === "dma", `${s.bdf} ${w.iova}: the unit translates it`);
        assert.equal(hw.segments[0]?.hpa, BigInt(w.hpa), `${s.bdf} ${w.iova}: the unit's translation`);
        assert.equal(w.bdf, formatRequesterId(devid), "the DeviceID the unit sees");
        assert.equal(w.levels[0]?.address, "0x" + (amdDevTable + devid * 32).toString(16), "the DTE the driver wrote");
      }
      const faults = s.walks.filter((w) => w.result === "fault");
      assert.equal(faults.length, 1, `${s.bdf}: one walk faults`);
      const f = faults[0];
      assert.ok(f !== undefined && f.result === "fault");
      assert.equal(tables.lookup(Number(BigInt(f.iova) / PAGE)), null, `${s.bdf} ${f.iova}: not mapped in the kernel's tables`);
      const logged = unit.unit.events.written;
      const hw: TranslateResult = unit.port.translate({ sid: fn.rid, addr: BigInt(f.iova), length: 4, write: true });
      assert.ok(!hw.ok && hw.kind === "dma", `${s.bdf} ${f.iova}: the unit blocks the write`);
      assert.equal(f.reason, hw.reason, `${s.bdf}: the event the unit logs`);
      assert.equal(f.reasonName, hw.reasonName);
      assert.equal(f.reason, IO_PAGE_FAULT, "an unmapped page is an IO_PAGE_FAULT event (2.5.3)");
      assert.ok(hw.recorded && unit.unit.events.written === logged + 1, "the unit logged one event");
    }
  }
});

test("an AMD-Vi machine's MSI walks: through the device's interrupt table as the unit remaps them, past its end a fault", () => {
  const { data, machine: m } = buildUi({ machine: "q35-amd", noStories: true });
  const withTable = data.spaces.filter((s) => s.msi.length === 2);
  assert.ok(withTable.length >= 3, `${withTable.length} devices with an interrupt remapping table`);
  const unit = amdUnits(m)[0];
  assert.ok(unit !== undefined);
  for (const s of data.spaces) {
    const fn = m.topology.byBdf(s.bdf);
    assert.ok(fn !== undefined);
    const devid = unit.port.deviceId(fn.rid);
    assert.ok(s.msi.length >= 1, `${s.bdf}: an MSI walk`);
    for (const msi of s.msi) {
      const index = msi.result === "fault" ? msi.index : (msi.index ?? 0);
      const hw = unit.unit.remapMsi(devid, MSI_ADDR_BASE, index);
      if (msi.result === "ok") {
        assert.equal(hw.kind, "remapped", `${s.bdf} IRTE ${index}`);
        assert.equal(msi.remapped, true);
        assert.equal(msi.msi.address, "0x" + hw.address.toString(16));
        assert.equal(msi.msi.data, "0x" + hw.data.toString(16));
      } else if (hw.kind === "fault") {
        assert.equal(msi.reason, hw.event, `${s.bdf} IRTE ${index}: the unit's event`);
      } else {
        assert.equal(hw.kind, "aborted", `${s.bdf}: an interrupt the DTE blocks`);
        assert.equal(msi.reasonName, "TARGET_ABORT");
      }
    }
  }
  // Linux 6.1's tables have 256 entries (MAX_IRQS_PER_TABLE): index 256 is past the end.
  for (const s of withTable) {
    const past = s.msi[1];
    assert.ok(past?.result === "fault" && past.index === 256 && past.reason === IO_PAGE_FAULT, `${s.bdf}: ${JSON.stringify(past)}`);
    assert.equal(s.msi[0]?.result, "ok", `${s.bdf}: IRTE 0 remaps`);
  }
  const e1000e = data.spaces.find((s) => s.bdf === "00:02.0");
  assert.ok(e1000e !== undefined && e1000e.msi.length === 2, "e1000e (MSI-X) has a table");
  const noMsi = data.spaces.find((s) => s.bdf === "00:06.0");
  assert.ok(noMsi?.msi.length === 1 && noMsi.msi[0]?.result === "fault" && noMsi.msi[0].reasonName === "TARGET_ABORT", "e1000 without MSI: its DTE aborts interrupts");
});

test("the served page's walk on an AMD-Vi machine: a mapped address translates as the unit does; bad input is a sentence", () => {
  const { data, walk, machine: m } = buildUi({ machine: "q35-amd", noStories: true });
  const s = data.spaces.find((x) => x.bdf === "00:04.0");
  assert.ok(s?.mappings.result === "ok");
  const r = s.mappings.ranges[0];
  assert.ok(r !== undefined);
  const w = walk("00:04.0", r.iova);
  assert.ok(typeof w !== "string" && w.result === "ok" && w.hpa === r.hpa);
  const fn = m.topology.byBdf("00:04.0");
  const unit = amdUnits(m)[0];
  assert.ok(fn !== undefined && unit !== undefined);
  const hw = unit.port.translate({ sid: fn.rid, addr: BigInt(r.iova), length: 1, write: false });
  assert.ok(hw.ok && hw.kind === "dma" && hw.segments[0]?.hpa === BigInt(r.hpa));
  const miss = walk("00:04.0", "0xdead0000");
  assert.ok(typeof miss !== "string" && miss.result === "fault" && miss.reason === IO_PAGE_FAULT);
  assert.match(String(walk("00:04.0", "xyz")), /not a hexadecimal/);
  assert.match(String(walk("09:00.0", "0x1000")), /no PCI function/);
});
