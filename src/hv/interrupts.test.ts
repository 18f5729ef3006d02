import { test } from "node:test";
import assert from "node:assert/strict";
import { machinePreset } from "../hw/machine-presets.js";
import { decodeIrte, msiHandle, MSI_ADDR_IF_REMAPPABLE } from "../spec/vtd/intremap.js";
import { Hypervisor, MiB } from "./hypervisor.js";
import type { Vm } from "./vm.js";

const SMALL = { ...machinePreset("q35")!, name: "q35-1g", ram: { size: "1G" } };

/** A VM (2 vCPUs) with the e1000e-like NIC (5 MSI-X vectors) assigned and its guest kernel booted. */
function setup(cmdline = "intel_iommu=on"): { hv: Hypervisor; vm: Vm } {
  const hv = Hypervisor.boot({ machine: SMALL, cmdline });
  const vm = hv.createVm({ name: "vm1", memory: 32 * MiB, vcpus: 2 });
  hv.bindVfio("00:02.0");
  hv.assign(vm, "00:02.0");
  vm.boot();
  return { hv, vm };
}

function irte(hv: Hypervisor, index: number) {
  const u = hv.host.driver.units[0]!;
  const m = hv.machine.memory;
  const a = u.irt + index * 16;
  return decodeIrte(m.read32(a), m.read32(a + 4), m.read32(a + 8), m.read32(a + 12), false);
}

test("the guest's MSI-X becomes remapping table entries on the vCPUs' host CPUs; delivery reaches the right vCPU", () => {
  const { hv, vm } = setup();
  const ad = vm.devices[0]!;
  const hvs = ad.hostVectors();
  assert.equal(hvs.length, 5, "every vector the guest enabled is backed");
  const guestIrqs = vm.kernel!.irqs.filter((q) => q.dev !== null);
  const fn = hv.machine.topology.byBdf("00:02.0")!;
  for (const h of hvs) {
    const e = irte(hv, h.irte!);
    assert.equal(e.present, true);
    assert.equal(e.vector, h.vector, "the entry delivers the host vector");
    assert.equal(e.destination, vm.vcpus[h.vcpu]!.pApic, "to the CPU running the vCPU");
    assert.equal(e.sid, 0x0010, "source-id check against 00:02.0");
    assert.equal(e.svt, 1);
    assert.equal(h.guestVector, guestIrqs[h.index]!.vector, "the guest's own vector is kept for injection");
    // The device holds a remappable-format message naming the entry.
    const m = hv.machine.msiMessage(fn, h.index)!;
    assert.notEqual(m.address & MSI_ADDR_IF_REMAPPABLE, 0);
    assert.equal(msiHandle(m.address), h.irte);
  }
  // The guest kernel spreads its vectors over its vCPUs; each lands on the vCPU the guest chose.
  for (const h of hvs) {
    const v = vm.vcpus[h.vcpu]!;
    const n = v.received.length;
    const r = hv.machine.device("00:02.0").signal(h.index);
    assert.ok(r?.ok);
    assert.equal(v.received.length, n + 1);
    assert.equal(v.received[n]!.vector, h.guestVector);
  }
  assert.ok(new Set(hvs.map((h) => h.vcpu)).size === 2, "both vCPUs have vectors");
  const counted = vm.kernel!.irqs.filter((q) => q.dev !== null).reduce((n, q) => n + q.count, 0);
  assert.equal(counted, 5, "the guest kernel's handler ran once per interrupt");
});

test("moving an interrupt to another vCPU rewrites only the table entry, with an entry-cache invalidation", () => {
  const { hv, vm } = setup();
  const ad = vm.devices[0]!;
  const h0 = ad.hostVectors().find((h) => h.index === 0)!;
  const to = vm.vcpus.find((v) => v.index !== h0.vcpu)!;
  const fn = hv.machine.topology.byBdf("00:02.0")!;
  const msgBefore = hv.machine.msiMessage(fn, 0);
  const u = hv.host.driver.units[0]!;
  const iec = u.inv.iec;
  // The guest rewrites MSI-X entry 0 (masked, new destination, unmasked), as Linux's msix code does.
  const bar0 = ad.guestBar0;
  const data = vm.port.mmioRead32(bar0 + 8);
  vm.port.mmioWrite(bar0 + 12, 4, 1);
  vm.port.mmioWrite(bar0, 4, (0xfee00000 | (to.apicId << 12)) >>> 0);
  vm.port.mmioWrite(bar0 + 8, 4, data);
  vm.port.mmioWrite(bar0 + 12, 4, 0);
  const h = ad.hostVectors().find((x) => x.index === 0)!;
  assert.equal(h.vcpu, to.index);
  assert.equal(irte(hv, h.irte!).destination, to.pApic);
  assert.equal(irte(hv, h.irte!).vector, h.vector);
  assert.ok(u.inv.iec > iec, "interrupt entry cache invalidated");
  assert.deepEqual(hv.machine.msiMessage(fn, 0), msgBefore, "the device's message did not change");
  const n = to.received.length;
  hv.machine.device("00:02.0").signal(0);
  assert.equal(to.received.length, n + 1);
});

test("without interrupt remapping the device is programmed with a compatibility-format message", () => {
  const { hv, vm } = setup("intel_iommu=on intremap=off");
  const ad = vm.devices[0]!;
  const fn = hv.machine.topology.byBdf("00:02.0")!;
  for (const h of ad.hostVectors()) {
    assert.equal(h.irte, null);
    const m = hv.machine.msiMessage(fn, h.index)!;
    assert.equal(m.address, (0xfee00000 | (h.apic << 12)) >>> 0);
    assert.equal(m.data, h.vector);
    const v = vm.vcpus[h.vcpu]!;
    const n = v.received.length;
    hv.machine.device("00:02.0").signal(h.index);
    assert.equal(v.received[n]?.vector, h.guestVector);
  }
});

test("freed entries: with the cache invalidated the old message faults 0x22; without, the stale entry still delivers", () => {
  for (const invalidate of [true, false]) {
    const { hv, vm } = setup();
    const ad = vm.devices[0]!;
    const h = ad.hostVectors().find((x) => x.index === 0)!;
    const fn = hv.machine.topology.byBdf("00:02.0")!;
    const msg = hv.machine.msiMessage(fn, 0)!;
    hv.machine.device("00:02.0").signal(0); // the entry is in the interrupt entry cache now
    ad.teardown(0, invalidate);
    assert.equal(irte(hv, h.irte!).present, false);
    const r = hv.machine.platform.msi(0x0010, msg.address, msg.data);
    if (invalidate) {
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.kind === "interrupt" ? r.reason : -1, 0x22);
      assert.equal(hv.host.log.grep(/INTR-REMAP.*fault reason 0x22/).length, 1);
    } else {
      assert.equal(r.ok, true, "the cached copy of the freed entry still remaps");
    }
  }
});

test("deferred host interrupts wait for drainHost; VM interrupts are injected at once", () => {
  const { hv, vm } = setup();
  hv.router.deferHost = true;
  const bus = hv.machine.device("00:02.0");
  assert.equal(bus.write(0x7fff_0000, new Uint8Array([1])).ok, false); // a DMA fault: the unit raises its fault event
  assert.equal(hv.router.pending.length, 1);
  assert.equal(hv.host.driver.faults.length, 0, "the host has not run its handler yet");
  const h = vm.devices[0]!.hostVectors()[0]!;
  const n = vm.vcpus[h.vcpu]!.received.length;
  bus.signal(h.index);
  assert.equal(vm.vcpus[h.vcpu]!.received.length, n + 1);
  assert.equal(hv.router.drainHost(), 1);
  assert.equal(hv.host.driver.faults.length, 1);
  assert.equal(hv.host.driver.faults[0]!.sourceId, 0x0010);
});

test("posted interrupts (VT-d 5.2.3, 9.11, 9.12): with CAP.PI the guest's MSI-X becomes posted entries; vectors reach the vCPU through its descriptor", () => {
  const piMachine = { ...SMALL, name: "q35-pi", iommus: [{ base: "0xfed90000", scope: "all" as const, interruptRemapping: true, postedInterrupts: true }] };
  const hv = Hypervisor.boot({ machine: piMachine, cmdline: "intel_iommu=on" });
  const vm = hv.createVm({ name: "vm1", memory: 32 * MiB, vcpus: 2 });
  hv.bindVfio("00:02.0");
  hv.assign(vm, "00:02.0");
  vm.boot();
  const hvs = vm.devices[0]!.hostVectors();
  assert.equal(hvs.length, 5);
  const m = hv.machine.memory;
  const u = hv.host.driver.units[0]!;
  for (const h of hvs) {
    assert.equal(h.posted, true);
    const a = u.irt + h.irte! * 16;
    assert.equal(m.read32(a) & (1 << 15), 1 << 15, "IRTE.IM: posted format");
    assert.equal((m.read32(a) >>> 16) & 0xff, h.guestVector, "the entry carries the guest's own vector");
  }
  const before = hv.router.deliveries.length;
  for (const h of hvs) {
    const v = vm.vcpus[h.vcpu]!;
    const n = v.received.length;
    const r = hv.machine.device("00:02.0").signal(h.index);
    assert.ok(r?.ok);
    assert.equal(v.received.length, n + 1, `vector ${h.index} reached vCPU ${h.vcpu}`);
    assert.equal(v.received[n]!.vector, h.guestVector);
  }
  const newDeliveries = hv.router.deliveries.slice(before);
  assert.ok(newDeliveries.every((d) => d.target.kind === "vm"), "nothing reached the host's handlers");
  assert.ok(newDeliveries.every((d) => d.vector === 0xf2), "every notification used the posted-interrupt vector");
  // Without CAP.PI the same assignment takes the remapped path with host vectors.
  const plain = setup();
  assert.ok(plain.vm.devices[0]!.hostVectors().every((h) => !h.posted && h.vector >= 0x21));
  // A machine asking for posted interrupts without interrupt remapping is refused, naming the field.
  assert.throws(
    () => Hypervisor.boot({ machine: { ...piMachine, iommus: [{ ...piMachine.iommus[0]!, interruptRemapping: false }] }, cmdline: "intel_iommu=on" }),
    /iommus\[0\]\.postedInterrupts/,
  );
});
