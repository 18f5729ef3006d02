import { test } from "node:test";
import assert from "node:assert/strict";
import { Machine } from "../hw/machine.js";
import { machinePreset } from "../hw/machine-presets.js";
import { parseBootParams } from "./cmdline.js";
import { DMA_MAPPING_ERROR } from "./dma.js";
import { Kernel } from "./kernel.js";

const LAB_CMDLINE = "console=ttyS0 panic=-1 loglevel=6 intel_iommu=on iommu=pt";

/** Groups a real Debian 6.1 kernel made on the lab's QEMU q35 (intel-iommu,intremap=on), as it logged them. */
const REAL_LAB_GROUPS: [string, number][] = [
  ["0000:00:00.0", 0], ["0000:00:02.0", 1], ["0000:00:03.0", 2], ["0000:00:04.0", 3], ["0000:00:05.0", 4],
  ["0000:00:06.0", 5], ["0000:00:06.1", 5], ["0000:00:10.0", 6], ["0000:00:11.0", 7], ["0000:00:1f.0", 8],
  ["0000:00:1f.2", 8], ["0000:00:1f.3", 8], ["0000:01:00.0", 9], ["0000:02:01.0", 9],
];

/** The IOMMU lines of that boot, in order. */
const REAL_LAB_LINES = [
  "Kernel command line: console=ttyS0 panic=-1 loglevel=6 intel_iommu=on iommu=pt",
  "DMAR: IOMMU enabled",
  "DMAR: Host address width 39",
  "DMAR: DRHD base: 0x000000fed90000 flags: 0x0",
  "DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap d2008c22260206 ecap f00f4a",
  "DMAR-IR: IOAPIC id 0 under DRHD base  0xfed90000 IOMMU 0",
  "DMAR-IR: Enabled IRQ remapping in xapic mode",
  "iommu: Default domain type: Passthrough (set via kernel command line)",
  "DMAR: No RMRR found",
  "DMAR: No ATSR found",
  "DMAR: No SATC found",
  "DMAR: dmar0: Using Queued invalidation",
  ...REAL_LAB_GROUPS.map(([d, g]) => `pci ${d}: Adding to iommu group ${g}`),
  "DMAR: Intel(R) Virtualization Technology for Directed I/O",
];

function boot(machine: string, cmdline: string): { m: Machine; k: Kernel } {
  const m = Machine.load(machine);
  return { m, k: Kernel.boot(m, { cmdline }) };
}

test("lab machine: groups, group types and the IOMMU log lines equal the real 6.1 boot, in order", () => {
  const { k } = boot("q35-lab", LAB_CMDLINE);
  const got = k.groups.flatMap((g) => g.devices.map((d) => [d.name, g.id] as [string, number]));
  assert.deepEqual(got, REAL_LAB_GROUPS);
  assert.ok(k.groups.every((g) => g.type === "identity"));
  const texts = k.log.lines.map((l) => l.text);
  const idx = REAL_LAB_LINES.map((l) => texts.indexOf(l));
  assert.ok(idx.every((i) => i >= 0), `missing: ${REAL_LAB_LINES.filter((_, j) => idx[j]! < 0).join(" | ")}`);
  assert.deepEqual([...idx].sort((a, b) => a - b), idx, "same order");
});

test("default domain and TLB policy lines follow the command line", () => {
  const lazy = boot("q35", "intel_iommu=on").k;
  assert.ok(lazy.log.grep("iommu: Default domain type: Translated ").length === 1);
  assert.ok(lazy.log.grep("iommu: DMA domain TLB invalidation policy: lazy mode ").length === 1);
  assert.ok(lazy.groups.every((g) => g.type === "DMA-FQ"));
  const strict = boot("q35", "intel_iommu=on iommu.strict=1").k;
  assert.deepEqual(strict.log.grep("TLB invalidation policy"), ["iommu: DMA domain TLB invalidation policy: strict mode (set via kernel command line)"]);
  assert.ok(strict.groups.every((g) => g.type === "DMA"));
  const cm = new Machine({ ...machinePreset("q35")!, iommus: [{ cachingMode: true }] });
  const k = Kernel.boot(cm, { cmdline: "" });
  assert.equal(k.log.grep("DMAR: IOMMU batching disallowed due to virtualization").length, 1);
  assert.ok(k.groups.every((g) => g.type === "DMA"), "caching mode makes the DMA domains strict");
});

test("command-line mistakes get the real kernel's reactions", () => {
  const p = parseBootParams("amd_iommu=on intel_iommu=on,foo,igfx_off swiotlb=1000 BOOT_IMAGE=/vmlinuz splash");
  assert.deepEqual(p.setupMessages.map((m) => m.text), [
    "AMD-Vi: Unknown option - 'on'",
    "DMAR: IOMMU enabled",
    "DMAR: Unknown option - 'foo,igfx_off'",
    "DMAR: Disable GFX device mapping",
  ]);
  assert.equal(p.swiotlbSlabs, 1024, "rounded up to a multiple of IO_TLB_SEGSIZE");
  const { k } = boot("q35", "BOOT_IMAGE=/vmlinuz amd_iommu=on splash");
  assert.deepEqual(k.log.grep("Unknown kernel command line"), ['Unknown kernel command line parameters "BOOT_IMAGE=/vmlinuz splash ", will be passed to user space.']);
  const off = boot("q35", "intel_iommu=off").k;
  assert.equal(off.groups.length, 0);
  assert.equal(off.log.grep("DMAR: IOMMU disabled").length, 1);
  assert.equal(off.log.grep("Enabled IRQ remapping").length, 1, "interrupt remapping does not depend on DMA remapping");
  const noir = boot("q35", "intremap=off").k;
  assert.equal(noir.log.grep("Enabled IRQ remapping").length, 0);
  assert.equal(noir.groups.length > 0, true);
});

test("a buggy device writing past its buffer: memory corrupted without the IOMMU, blocked and logged with it", () => {
  for (const on of [false, true]) {
    const { m, k } = boot("q35", on ? "intel_iommu=on" : "intel_iommu=off");
    const dma = k.dma("00:02.0");
    const buf = k.pages.alloc(2);
    const victim = buf + 4096;
    m.memory.write(victim, new Uint8Array([0xaa]));
    const a = dma.mapSingle(buf, 4096, "from-device");
    const r = m.device("00:02.0").write(a + 4096, new Uint8Array([0x66]));
    assert.equal(r.ok, !on);
    assert.equal(m.memory.read8(victim), on ? 0xaa : 0x66);
    if (on) {
      assert.equal(k.driver.faults.length, 1);
      assert.equal(k.driver.faults[0]!.reason, 5);
      assert.equal(k.driver.faults[0]!.addr, a + 4096);
      assert.match(k.log.grep("NO_PASID")[0]!, /^DMAR: \[DMA Write NO_PASID\] Request device \[00:02\.0\] fault addr 0x[0-9a-f]+ \[fault reason 0x05\] PTE Write access is not set$/);
    }
  }
});

test("32-bit device, buffer above 4 GiB: swiotlb bounces with real copies without the IOMMU; none with it", () => {
  for (const on of [false, true]) {
    const { m, k } = boot("q35", on ? "intel_iommu=on" : "intel_iommu=off");
    const dma = k.dma("00:07.0");
    const buf = k.pages.alloc(1);
    assert.ok(buf >= 2 ** 32);
    m.memory.write(buf, new Uint8Array([1, 2, 3]));
    const a = dma.mapSingle(buf, 4096, "bidirectional");
    assert.ok(a !== DMA_MAPPING_ERROR && a < 2 ** 32);
    const dev = m.device("00:07.0");
    assert.deepEqual([...dev.read(a, 3).ok ? (dev.read(a, 3) as { data: Uint8Array }).data : []], [1, 2, 3]);
    dev.write(a, new Uint8Array([7]));
    dma.unmapSingle(a, 4096, "bidirectional");
    assert.equal(m.memory.read8(buf), 7, "the CPU sees what the device wrote");
    assert.equal(k.swiotlb!.stats.bounces, on ? 0 : 1);
    assert.equal(k.swiotlb!.stats.bytesCopied, on ? 0 : 8192);
  }
});

test("swiotlb exhaustion fails the mapping cleanly", () => {
  const { k } = boot("q35", "intel_iommu=off swiotlb=128");
  const dma = k.dma("00:07.0");
  const results: number[] = [];
  for (let i = 0; i < 70; i++) results.push(dma.mapSingle(k.pages.alloc(1), 4096, "to-device"));
  assert.equal(results.filter((r) => r === DMA_MAPPING_ERROR).length, 70 - 64, "128 slabs of 2 KiB hold 64 pages");
  assert.match(k.log.grep("swiotlb buffer is full")[0]!, /^dma32 0000:00:07\.0: swiotlb buffer is full \(sz: 4096 bytes\), total 128 \(slots\), used 128 \(slots\)$/);
});

test("strict unmap invalidates before returning; lazy leaves a stale window until the flush queue's timer", () => {
  for (const strict of [true, false]) {
    const { m, k } = boot("q35", strict ? "iommu.strict=1" : "");
    const dma = k.dma("00:02.0");
    const dev = m.device("00:02.0");
    const buf = k.pages.alloc(1);
    const a = dma.mapSingle(buf, 4096, "from-device");
    assert.equal(dev.write(a, new Uint8Array([1])).ok, true); // the IOTLB now caches the translation
    const before = { ...k.driver.units[0]!.inv };
    dma.unmapSingle(a, 4096, "from-device");
    const inv = k.driver.units[0]!.inv;
    assert.equal(inv.iotlbPage - before.iotlbPage, strict ? 1 : 0);
    assert.equal(dev.write(a, new Uint8Array([2])).ok, !strict, strict ? "blocked at once" : "stale IOTLB entry still translates");
    k.advance(9e6);
    assert.equal(dev.write(a, new Uint8Array([3])).ok, !strict);
    k.advance(2e6);
    assert.equal(dev.write(a, new Uint8Array([4])).ok, false, "after IOVA_FQ_TIMEOUT everything is flushed");
    if (!strict) assert.equal(inv.iotlbDomain - before.iotlbDomain, 1, "one domain-wide flush for the queue");
  }
});

test("scattered pages: one IOVA range and contiguous DMA with the IOMMU, one segment per page without", () => {
  for (const on of [false, true]) {
    const { k } = boot("q35", on ? "" : "intel_iommu=off");
    const dma = k.dma("00:04.0");
    const pages: number[] = [];
    for (let i = 0; i < 16; i++) {
      pages.push(k.pages.alloc(1));
      k.pages.alloc(1); // a hole between them
    }
    const m = dma.mapSg(pages.map((p) => ({ phys: p, length: 4096 })), "to-device")!;
    assert.equal(m.segments.length, on ? 1 : 16);
    assert.equal(m.iovaRanges, on ? 1 : 0);
  }
});

test("two devices, two address spaces: the same IOVA reaches different pages", () => {
  const { m, k } = boot("q35", "");
  const a = k.dma("00:02.0");
  const b = k.dma("00:04.0");
  const pa = k.pages.alloc(1);
  const pb = k.pages.alloc(1);
  const ia = a.mapSingle(pa, 4096, "from-device");
  const ib = b.mapSingle(pb, 4096, "from-device");
  assert.equal(ia, ib);
  m.device("00:02.0").write(ia, new Uint8Array([0xa]));
  m.device("00:04.0").write(ib, new Uint8Array([0xb]));
  assert.equal(m.memory.read8(pa), 0xa);
  assert.equal(m.memory.read8(pb), 0xb);
  assert.notEqual(k.iommu.groupFor(a.dev)!.domain!.dids.get(k.driver.units[0]!), k.iommu.groupFor(b.dev)!.domain!.dids.get(k.driver.units[0]!));
});

test("grouping rules: no ACS on a switch port merges what is below it; multifunction without ACS shares", () => {
  const { k } = boot("switch", "");
  const byDev = new Map(k.groups.flatMap((g) => g.devices.map((d) => [d.name, g.id] as [string, number])));
  assert.notEqual(byDev.get("0000:03:00.0"), byDev.get("0000:04:00.0"));
  assert.equal(byDev.get("0000:04:00.0"), byDev.get("0000:02:01.0"), "below a port without ACS: the port's group");
  const two = boot("two-units", "").k;
  const g = new Map(two.groups.flatMap((x) => x.devices.map((d) => [d.name, x] as const)));
  assert.equal(g.get("0000:01:00.0"), g.get("0000:01:00.1"));
  assert.equal(g.get("0000:00:02.0")!.type, "identity", "integrated graphics is left untranslated (INTGPU_OFF)");
  assert.equal(two.log.grep(/^DMAR: RMRR base: 0x0000007c000000 end: 0x0000007c0fffff$/).length, 1);
});

test("interrupt vectors: spread over CPUs within 0x21..0xeb, and a clear error when they run out", () => {
  const devices = [{ bdf: "00:00.0", type: "host-bridge" as const }];
  for (let i = 0; i < 24; i++) {
    devices.push({ bdf: `00:${(i + 2).toString(16).padStart(2, "0")}.0`, type: "endpoint", driver: "e1000e", msi: "msix", msiVectors: 16 } as never);
  }
  const cfg = (cpus: number) => ({ name: "msix-heavy", ram: { size: "1G" }, cpus, devices, iommus: [{ base: "0xfed90000", scope: "all" as const, interruptRemapping: true }] });
  const k = Kernel.boot(new Machine(cfg(2)), { cmdline: "intel_iommu=on" });
  const vectors = k.irqs.filter((q) => q.dev !== null).map((q) => q.vector);
  assert.equal(vectors.length, 24 * 16);
  assert.ok(vectors.every((v) => v >= 0x21 && v <= 0xeb));
  assert.throws(() => Kernel.boot(new Machine(cfg(1)), { cmdline: "intel_iommu=on" }), /no free interrupt vector/);
});

test("MSI-X tables in BARs above 2 GiB are programmed, and each interrupt is counted on its own CPU's descriptor", () => {
  const m = Machine.load("q35");
  const k = Kernel.boot(m, { cmdline: "intel_iommu=on" });
  const nvme = k.irqs.filter((q) => q.dev?.name === "0000:00:04.0");
  assert.ok(nvme.length >= 2);
  assert.ok(new Set(nvme.map((q) => q.apic)).size > 1 || k.irqs.some((q) => q.apic !== nvme[0]!.apic), "vectors spread over CPUs");
  const same = k.irqs.filter((q) => !nvme.includes(q) && nvme.some((n) => n.vector === q.vector));
  assert.ok(same.length > 0, "the machine reuses vector numbers across CPUs");
  const before = same.map((q) => q.count);
  for (let i = 0; i < nvme.length; i++) {
    const r = m.device("00:04.0").signal(i);
    assert.ok(r !== null && r.ok, `vector ${i} delivered`);
  }
  assert.deepEqual(nvme.map((q) => q.count), nvme.map(() => 1), "one interrupt on each of the device's descriptors");
  assert.deepEqual(same.map((q) => q.count), before, "descriptors with the same vector on another CPU are not counted");
});
