import { test } from "node:test";
import assert from "node:assert/strict";
import { isIommuError } from "../core/errors.js";
import { machinePreset } from "../hw/machine-presets.js";
import { dmaAliases } from "../os/pci.js";
import { Hypervisor, MiB } from "./hypervisor.js";

/** q35 with less RAM: boots in a few milliseconds; the groups are the same. */
const SMALL = { ...machinePreset("q35")!, name: "q35-1g", ram: { size: "1G" } };

function boot(opts: Parameters<typeof Hypervisor.boot>[0] = {}): Hypervisor {
  return Hypervisor.boot({ machine: SMALL, ...opts });
}

function throwsCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isIommuError(e), `expected an IommuError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

/** The domain id a unit's context entry for `rid` holds (0 when not present). */
function contextDid(hv: Hypervisor, rid: number): number {
  const u = hv.host.driver.units[0]!;
  const ce = hv.host.driver.contextEntry(u, rid);
  const mem = hv.machine.memory;
  return (mem.read32(ce) & 1) === 0 ? 0 : (mem.read32(ce + 8) >>> 8) & 0xffff;
}

test("binding: driver_override + unbind + probe; the host driver's interrupts are freed with their table entries", () => {
  const hv = boot();
  const d = hv.dev("00:02.0");
  const irqsBefore = hv.host.irqs.filter((q) => q.dev === d);
  assert.ok(irqsBefore.length > 0 && irqsBefore.every((q) => q.irte !== null));
  const u = hv.host.driver.units[0]!;
  const iec = u.inv.iec;
  hv.bindVfio("00:02.0");
  assert.equal(d.driver, "vfio-pci");
  assert.equal(hv.vfio.driverOverride("00:02.0"), "vfio-pci");
  assert.equal(hv.host.irqs.filter((q) => q.dev === d).length, 0, "free_irq: gone from /proc/interrupts");
  for (const q of irqsBefore) assert.equal(hv.machine.memory.read32(u.irt + q.irte! * 16) & 1, 0, `IRTE ${q.irte} cleared`);
  assert.equal(u.inv.iec - iec, irqsBefore.length, "one interrupt-entry-cache invalidation per freed entry");
  assert.equal(hv.port.configRead(d.rid, 4, 2) & 4, 0, "bus mastering off");
});

test("vfio-pci refuses bridges and devices without an IOMMU group, with Linux's -22", () => {
  const hv = boot();
  throwsCode(() => hv.bindVfio("00:05.0"), "VFIO_PROBE_FAILED", /probe of 0000:00:05\.0 failed with error -22: it is a bridge/);
  assert.equal(hv.host.log.grep("vfio-pci: probe of 0000:00:05.0 failed with error -22").length, 1);
  const off = boot({ cmdline: "intel_iommu=off" });
  throwsCode(() => off.bindVfio("00:02.0"), "VFIO_PROBE_FAILED", /no IOMMU group/);
  // With no-IOMMU mode the same host binds it (and isolates nothing).
  const unsafe = boot({ cmdline: "intel_iommu=off", noiommu: true });
  unsafe.bindVfio("00:02.0");
  assert.equal(unsafe.dev("00:02.0").driver, "vfio-pci");
});

test("group viability: a device of the group still bound to a host driver makes the group unusable, naming it", () => {
  const hv = boot();
  const vm = hv.createVm({ name: "vm1", memory: 4 * MiB });
  hv.bindVfio("00:06.0");
  assert.equal(hv.dev("00:06.1").driver, "e1000");
  throwsCode(() => hv.assign(vm, "00:06.0"), "VFIO_GROUP_NOT_VIABLE", /iommu group 5 is not viable: 0000:00:06\.1 is bound to e1000 \(VFIO_GROUP_SET_CONTAINER: EPERM\)/);
  // Nothing was programmed: the function still uses the host's default domain.
  const g = hv.vfio.groupOf(hv.dev("00:06.0"))!;
  assert.equal(contextDid(hv, hv.dev("00:06.0").rid), g.domain!.dids.get(hv.host.driver.units[0]!));
  // Unbinding the sibling (no driver) is enough; binding it to vfio-pci too works as well.
  hv.vfio.unbind("00:06.1");
  hv.assign(vm, "00:06.0");
  assert.equal(contextDid(hv, hv.dev("00:06.1").rid), contextDid(hv, hv.dev("00:06.0").rid), "the whole group moved to the VM's domain");
});

test("bridges are excepted: a conventional device behind a PCIe-to-PCI bridge is assignable, its alias follows", () => {
  const hv = boot();
  const vm = hv.createVm({ name: "vm1", memory: 4 * MiB });
  const dev = hv.dev("02:01.0");
  const g = hv.vfio.groupOf(dev)!;
  assert.deepEqual(g.devices.map((d) => d.name), ["0000:01:00.0", "0000:02:01.0"]);
  assert.equal(hv.dev("01:00.0").driver, null, "the bridge has no driver");
  hv.bindVfio("02:01.0");
  const ad = hv.assign(vm, "02:01.0");
  const did = [...vm.container!.domain!.dids.values()][0]!;
  for (const a of dmaAliases(dev)) assert.equal(contextDid(hv, a.rid), did, `alias ${a.rid.toString(16)} points at the VM's domain`);
  // The device's requests carry the bridge's alias 02:00.0 and reach the VM's memory by GPA.
  const bus = hv.machine.device("02:01.0");
  assert.equal(bus.requesterId, 0x0200);
  vm.ram.write(0x3000, new Uint8Array([1, 2, 3]));
  const r = bus.read(0x3000, 3);
  assert.ok(r.ok);
  assert.deepEqual([...r.data!], [1, 2, 3]);
  assert.equal(ad.bdf, "02:01.0");
});

test("one owner per group; an unbound device cannot be assigned; the interrupt window cannot be mapped", () => {
  const hv = boot();
  const vm1 = hv.createVm({ name: "vm1", memory: 4 * MiB });
  const vm2 = hv.createVm({ name: "vm2", memory: 4 * MiB });
  throwsCode(() => hv.assign(vm1, "00:02.0"), "NOT_BOUND_TO_VFIO", /0000:00:02\.0 is bound to e1000e, not vfio-pci/);
  hv.bindVfio("00:06.0");
  hv.bindVfio("00:06.1");
  hv.assign(vm1, "00:06.0");
  throwsCode(() => hv.assign(vm2, "00:06.1"), "VFIO_GROUP_BUSY", /already in use by vm1/);
  throwsCode(() => vm1.container!.map(0xfee00000 / 4096, [1234]), "VFIO_MAP_DMA", /overlaps reserved region 0xfee00000-0xfeefffff \(msi\)/);
  throwsCode(() => vm1.container!.map(2 ** 39 / 4096, [1234]), "VFIO_MAP_DMA", /beyond the domain's aperture/);
});

test("teardown: context entries back to the default domain, domain id freed, IOTLB invalidated, pages to the pool", () => {
  const hv = boot();
  const vm = hv.createVm({ name: "vm1", memory: 4 * MiB });
  hv.bindVfio("00:02.0");
  hv.assign(vm, "00:02.0");
  const u = hv.host.driver.units[0]!;
  const rid = hv.dev("00:02.0").rid;
  const vmDid = contextDid(hv, rid);
  const def = hv.vfio.groupOf(hv.dev("00:02.0"))!.domain!.dids.get(u)!;
  assert.notEqual(vmDid, def);
  const bus = hv.machine.device("00:02.0");
  assert.ok(bus.write(0x1000, new Uint8Array([7])).ok, "the device reaches the VM's GPA 0x1000");
  const hpa = vm.hpaOf(0x1000)!;
  const before = { ...u.inv };
  hv.destroyVm(vm);
  assert.equal(contextDid(hv, rid), def, "default domain back");
  assert.equal(u.domainIds[vmDid], 0, "domain id free");
  assert.ok(u.inv.iotlbPage + u.inv.iotlbDomain > before.iotlbPage + before.iotlbDomain);
  assert.ok(u.inv.contextDevice > before.contextDevice);
  assert.equal(hv.pool.pooled, 1024);
  assert.ok(hv.pool.isPooled(hpa / 4096));
  const r = bus.write(0x1000, new Uint8Array([8]));
  assert.equal(r.ok, false, "GPA 0x1000 means nothing in the default domain");
  assert.equal(hv.machine.memory.read8(hpa), 7);
});

test("guest RAM: contiguous GPAs on scattered host pages, with the same bytes through both views", () => {
  const hv = boot();
  const vm = hv.createVm({ name: "vm1", memory: 2 * MiB });
  const pfns = [...vm.memory.entries()].map(([, h]) => h);
  let runs = 1;
  for (let i = 1; i < pfns.length; i++) if (pfns[i] !== pfns[i - 1]! + 1) runs++;
  assert.ok(runs > pfns.length / 2, `scattered: ${runs} runs for ${pfns.length} pages`);
  const data = Uint8Array.from({ length: 10000 }, (_, i) => i & 0xff);
  vm.ram.write(0x1ff0, data);
  assert.deepEqual(vm.ram.read(0x1ff0, 10000), data);
  for (const gpa of [0x1ff0, 0x2000, 0x3000, 0x4000]) {
    const off = gpa - 0x1ff0;
    assert.equal(hv.machine.memory.read8(vm.hpaOf(gpa)!), data[off], `byte at GPA 0x${gpa.toString(16)}`);
  }
  vm.ram.write32(0x2ffe, 0xa1b2c3d4);
  assert.equal(vm.ram.read32(0x2ffe), 0xa1b2c3d4, "a dword across a page boundary");
  hv.balloon(vm, 0x3000, 0x1000);
  assert.equal(vm.hpaOf(0x3000), null);
  assert.equal(vm.ram.read8(0x3000), 0, "unbacked GPAs read as zero");
  vm.ram.write8(0x3000, 9);
  assert.equal(vm.ram.read8(0x3000), 0, "and drop writes");
  // The pool hands the ballooned page to the next VM first.
  const next = hv.createVm({ name: "vm2", memory: 4096 });
  assert.equal(hv.describeHpa(next.hpaOf(0)!), "vm2 GPA 0x0");
  assert.equal(hv.pool.pooled, 0);
});
