import { test } from "node:test";
import assert from "node:assert/strict";
import { machinePreset } from "../hw/machine-presets.js";
import type { VtdUnit } from "../hw/vtd/unit.js";
import { PGTT_FIRST_STAGE, PGTT_SECOND_STAGE } from "../spec/vtd/scalable.js";
import { Hypervisor, MiB } from "./hypervisor.js";

/** q35-sm (QEMU's x-scalable-mode=on unit) with less RAM, or with a unit that also has first-stage translation. */
function boot(firstStage = false): Hypervisor {
  const base = machinePreset("q35-sm")!;
  const unit = { base: "0xfed90000", scope: "all", interruptRemapping: true, scalableMode: true, ...(firstStage ? { firstStage: true, awBits: 48 } : {}) };
  return Hypervisor.boot({ machine: { ...base, name: "q35-sm-1g", ram: { size: "1G" }, iommus: [unit] } });
}

function hwStats(hv: Hypervisor): ReturnType<VtdUnit["stats"]>["invalidation"] {
  return (hv.machine.units[0]!.unit as VtdUnit).stats().invalidation;
}

for (const firstStage of [false, true]) {
  test(`VFIO on a scalable-mode unit${firstStage ? " with first-stage" : ""}: the VM's unmanaged domain is second-stage; map, unmap, teardown`, () => {
    const hv = boot(firstStage);
    const drv = hv.host.driver;
    const u = drv.units[0]!;
    assert.equal(u.sm, true);
    const d = hv.dev("00:02.0");
    const def = hv.vfio.groupOf(d)!.domain!;
    assert.equal(drv.pasid.readEntry(d)!.pgtt, firstStage ? PGTT_FIRST_STAGE : PGTT_SECOND_STAGE, "the host's DMA domain");
    const vm = hv.createVm({ name: "vm1", memory: 4 * MiB });
    hv.bindVfio("00:02.0");
    hv.assign(vm, "00:02.0");
    const dom = vm.container!.domain!;
    assert.equal(dom.type, "unmanaged");
    assert.equal(dom.firstLevel, false);
    const e = drv.pasid.readEntry(d)!;
    assert.equal(e.pgtt, PGTT_SECOND_STAGE);
    assert.equal(e.did, dom.dids.get(u));
    assert.equal(e.ssptptr, dom.tables!.pgd);
    // The device reaches guest memory by GPA through the PASID entry.
    const bus = hv.machine.device("00:02.0");
    assert.ok(bus.write(0x1000, new Uint8Array([7])).ok);
    const hpa = vm.hpaOf(0x1000)!;
    assert.equal(hv.machine.memory.read8(hpa), 7);
    // Strict unmap of a second-stage domain: legacy IOTLB descriptors, no PASID-based ones.
    const before = hwStats(hv);
    vm.container!.unmap(1, 1);
    const after = hwStats(hv);
    assert.equal(after.iotlbPage + after.iotlbDomain - before.iotlbPage - before.iotlbDomain, 1);
    assert.equal(after.pasidIotlb, before.pasidIotlb);
    assert.equal(bus.write(0x1000, new Uint8Array([8])).ok, false, "unmapped: no stale translation");
    assert.equal(hv.machine.memory.read8(hpa), 7);
    vm.container!.map(1, [hpa / 4096]);
    assert.ok(bus.write(0x1000, new Uint8Array([9])).ok, "mapped again");
    // Teardown: the PASID entry is torn down (PASID cache invalidated) and set for the default domain again.
    const pc = u.inv.pasidCache;
    const vmDid = dom.dids.get(u)!;
    hv.destroyVm(vm);
    assert.ok(u.inv.pasidCache > pc);
    assert.equal(u.domainIds[vmDid], 0, "the VM's domain id is free");
    const back = drv.pasid.readEntry(d)!;
    assert.equal(back.did, def.dids.get(u));
    assert.equal(back.pgtt, firstStage ? PGTT_FIRST_STAGE : PGTT_SECOND_STAGE);
    assert.equal(firstStage ? back.fsptptr : back.ssptptr, def.tables!.pgd);
    assert.equal(bus.write(0x1000, new Uint8Array([10])).ok, false, "GPA 0x1000 means nothing in the default domain");
    assert.equal(hv.machine.memory.read8(hpa), 9);
  });
}
