import { test } from "node:test";
import assert from "node:assert/strict";
import { Machine } from "../hw/machine.js";
import { parseBootParams } from "./cmdline.js";
import { deviceDefDomainType, groupDefDomainType, intelIommuQuirks, tylersburgAzaliaIdentity, type DomainDevice } from "./default-domain.js";
import { Kernel } from "./kernel.js";

const dev = (o: Partial<DomainDevice>): DomainDevice => ({
  rid: 0x10, name: "0000:00:02.0", vendor: 0x1234, device: 0x1111, classCode: 0x030000, onRootBus: true, untrusted: false, ...o,
});
const NONE = { gfx: false, intgpu: false, azalia: false };

test("device rules: igfx_off takes every display device, Debian's intgpu_off only Intel ones on the root bus", () => {
  const vga = dev({});
  const igpu = dev({ vendor: 0x8086, device: 0x4680 });
  const igpuBehindPort = dev({ vendor: 0x8086, device: 0x4680, onRootBus: false });
  assert.equal(deviceDefDomainType(vga, NONE), null);
  assert.equal(deviceDefDomainType(vga, { ...NONE, intgpu: true }), null, "not Intel: translated");
  assert.equal(deviceDefDomainType(igpu, { ...NONE, intgpu: true }), "identity");
  assert.equal(deviceDefDomainType(igpuBehindPort, { ...NONE, intgpu: true }), null, "not on the root bus");
  assert.equal(deviceDefDomainType(vga, { ...NONE, gfx: true }), "identity");
  assert.equal(deviceDefDomainType(dev({ classCode: 0x020000 }), { ...NONE, gfx: true }), null);
  assert.equal(deviceDefDomainType(dev({ vendor: 0x8086, device: 0x3a3e, classCode: 0x040300 }), { ...NONE, azalia: true }), "identity");
  assert.equal(deviceDefDomainType(dev({ untrusted: true }), { ...NONE, gfx: true }), "DMA", "untrusted wins");
});

test("group rule: the first need decides; a conflicting need warns once and falls back to the default", () => {
  const a = dev({ name: "0000:01:00.0" });
  const b = dev({ name: "0000:01:00.1", classCode: 0x040300 });
  const c = dev({ name: "0000:01:00.2", untrusted: true });
  const d = dev({ name: "0000:01:00.3", untrusted: true });
  assert.deepEqual(groupDefDomainType([a, b], { ...NONE, gfx: true }, "DMA-FQ"), { type: "identity", warning: null });
  const r = groupDefDomainType([a, b, c, d], { ...NONE, gfx: true }, "DMA-FQ");
  assert.equal(r.type, "DMA-FQ");
  assert.equal(r.warning?.device, "0000:01:00.2");
  assert.equal(r.warning?.text, "Device needs domain type Translated, but device 0000:01:00.0 in the same iommu group requires type Passthrough - using default");
  assert.deepEqual(groupDefDomainType([b], NONE, "DMA"), { type: "DMA", warning: null });
});

test("quirks: Q35 graphics disables graphics mapping; Calpella without a shadow GTT too, with one it makes flushing strict", () => {
  const q35gfx = dev({ vendor: 0x8086, device: 0x29b2 });
  const q = intelIommuQuirks([q35gfx], false, () => 0);
  assert.equal(q.noGfxMapping, true);
  assert.deepEqual(q.messages, ["pci 0000:00:02.0: Disabling IOMMU for graphics on this chipset"]);
  const cp = dev({ vendor: 0x8086, device: 0x0040, classCode: 0x060000 });
  assert.equal(intelIommuQuirks([cp], false, () => 0).noGfxMapping, true);
  const vt = intelIommuQuirks([cp], false, () => 0x0800);
  assert.deepEqual([vt.noGfxMapping, vt.strict], [false, true]);
  assert.equal(intelIommuQuirks([cp], true, () => 0x0800).strict, false, "igfx_off given: no strict flushing");
  assert.equal(intelIommuQuirks([dev({ vendor: 0x8086, device: 0x29b2, untrusted: true })], false, () => 0).noGfxMapping, false, "untrusted: skipped");
});

test("Tylersburg: Azalia on the isoch unit with no TLB entries gets identity, with 16 entries it does not", () => {
  const az = dev({ vendor: 0x8086, device: 0x3a3e, classCode: 0x040300 });
  const smr = dev({ rid: 0x20, vendor: 0x8086, device: 0x342e, classCode: 0x080000 });
  assert.equal(tylersburgAzaliaIdentity([az, smr], () => 0), true);
  assert.equal(tylersburgAzaliaIdentity([az, smr], () => 0x10), false);
  assert.equal(tylersburgAzaliaIdentity([az, smr], () => 1), false, "routed to the non-isoch unit");
  assert.equal(tylersburgAzaliaIdentity([az], () => 0), false);
});

test("command line: Debian starts with the integrated GPU unmapped; intel_iommu=on maps it, intgpu_off unmaps it again", () => {
  assert.equal(parseBootParams("").mapIntGpu, false);
  assert.equal(parseBootParams("intel_iommu=on").mapIntGpu, true);
  const p = parseBootParams("intel_iommu=on,intgpu_off");
  assert.equal(p.mapIntGpu, false);
  assert.deepEqual(p.setupMessages.map((m) => m.text), ["DMAR: IOMMU enabled", "DMAR: Disable integrated GPU device mapping"]);
  assert.equal(parseBootParams("intel_iommu=igfx_off").igfxOff, true);
});

test("simulated kernel: a non-Intel VGA on the root bus is translated by default; an Intel iGPU is not until intel_iommu=on", () => {
  const machine = (id: string) => new Machine({
    name: "gfx", ram: { size: "1G" }, cpus: 2,
    devices: [{ bdf: "00:00.0", type: "host-bridge" }, { bdf: "00:01.0", type: "pci", id, class: "0x030000", msi: "none" }],
    iommus: [{ scope: "all" }],
  });
  const type = (id: string, cmdline: string) => Kernel.boot(machine(id), { cmdline }).groups.find((g) => g.devices[0]!.name === "0000:00:01.0")!.type;
  assert.equal(type("1234:1111", ""), "DMA-FQ");
  assert.equal(type("8086:4680", ""), "identity");
  assert.equal(type("8086:4680", "intel_iommu=on"), "DMA-FQ");
  assert.equal(type("1234:1111", "intel_iommu=on,igfx_off"), "identity");
  assert.equal(type("1234:1111", "intel_iommu=on,igfx_off iommu.strict=1"), "identity");
  assert.equal(type("1234:1111", "intel_iommu=on iommu.strict=1"), "DMA");
  assert.equal(type("8086:29b2", "intel_iommu=on"), "identity", "the Q35 graphics quirk");
});
