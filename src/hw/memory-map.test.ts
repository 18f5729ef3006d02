import { test } from "node:test";
import assert from "node:assert/strict";
import { pciAddress } from "../core/pci.js";
import { DmaTestDevice } from "./devices/dma-test.js";
import { Machine } from "./machine.js";
import { Platform, QEMU_VTD_BASE } from "./platform.js";
import { DMAR_GSTS_REG, DMAR_RTADDR_REG } from "../spec/vtd/registers.js";
import { enableTranslation, VtdTables } from "./vtd/builder.js";

const MiB = 0x100000;
const GiB = 1024 * MiB;
/** q35 with 3 GiB: 2 GiB below the PCI hole, 1 GiB from 4 GiB. */
const ram = [
  { base: 0, size: 2 * GiB },
  { base: 4 * GiB, size: GiB },
];

test("memory map: DMA into the PCI hole is an unsupported request — reads all ones, writes dropped, RAM either side works", () => {
  const p = new Platform({ ram });
  const dev = new DmaTestDevice(p, pciAddress(0, 3, 0)); // no unit: untranslated
  const hole = 3 * GiB;
  const w = dev.write(hole, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(w.ok);
  if (w.ok) assert.equal(w.unsupportedBytes, 8);
  assert.equal(p.memory.backedPages, 0, "nothing was written anywhere");
  const r = dev.read(hole, 4);
  assert.ok(r.ok);
  if (r.ok) {
    assert.deepEqual([...(r.data ?? [])], [0xff, 0xff, 0xff, 0xff]);
    assert.equal(r.unsupportedBytes, 4);
  }
  for (const a of [2 * GiB - 8, 4 * GiB]) {
    const ok = dev.write(a, [9, 9, 9, 9]);
    assert.ok(ok.ok && ok.unsupportedBytes === 0, `0x${a.toString(16)} is RAM`);
    assert.equal(p.memory.read8(a), 9);
  }
  const beyond = dev.write(5 * GiB, [1]);
  assert.ok(beyond.ok && beyond.unsupportedBytes === 1, "beyond the top of RAM");
});

test("memory map: a device writing at the remapping unit's register window does not reach its registers or any memory", () => {
  const m = Machine.load("q35");
  const u = m.platform.unitFor(0x10);
  assert.ok(u !== null);
  const before = m.platform.mmioRead(QEMU_VTD_BASE + DMAR_RTADDR_REG, 8);
  const dev = new DmaTestDevice(m.platform, pciAddress(0, 3, 0)); // translation is off: the address goes out as is
  const w = dev.write(QEMU_VTD_BASE + DMAR_RTADDR_REG, [0, 0x10, 0, 0, 0, 0, 0, 0]);
  assert.ok(w.ok && w.unsupportedBytes === 8);
  assert.equal(m.platform.mmioRead(QEMU_VTD_BASE + DMAR_RTADDR_REG, 8), before);
  assert.equal(m.memory.read32(QEMU_VTD_BASE + DMAR_RTADDR_REG), 0, "no phantom memory behind the registers");
  assert.equal(m.platform.ramContains(QEMU_VTD_BASE, 4), false);
});

test("memory map: a root table pointer into the PCI hole is a root-table access error (fault 0x8), not zeros read as 'not present'", () => {
  const p = new Platform({ ram });
  const u = p.addVtdUnit();
  enableTranslation(u, 3 * GiB); // RTADDR in the hole
  assert.ok((p.mmioRead32(QEMU_VTD_BASE + DMAR_GSTS_REG) >>> 31) === 1, "translation enabled");
  const dev = new DmaTestDevice(p, pciAddress(0, 3, 0));
  const r = dev.write(0x1000, [1]);
  assert.equal(r.ok, false);
  if (!r.ok && r.result.kind === "dma" && !r.result.ok) assert.equal(r.result.reason, 0x8);
  // The same table in RAM below the hole is read (its zero entries: root entry not present, 0x1).
  const p2 = new Platform({ ram });
  const u2 = p2.addVtdUnit();
  enableTranslation(u2, GiB);
  const r2 = new DmaTestDevice(p2, pciAddress(0, 3, 0)).write(0x1000, [1]);
  assert.equal(r2.ok, false);
  if (!r2.ok && r2.result.kind === "dma" && !r2.result.ok) assert.equal(r2.result.reason, 0x1);
});

test("memory map: DMA to another device's memory BAR goes to that device (peer-to-peer), seen by the CPU's MMIO reads", () => {
  const m = Machine.load("q35");
  const nvmeBar = m.topology.functions.find((f) => f.bdf === "00:04.0")!.bars[0]!.base!;
  const ahciBar = m.topology.functions.find((f) => f.bdf === "00:1f.2")!.bars[0]!.base!;
  const dev = new DmaTestDevice(m.platform, pciAddress(0, 3, 0)); // translation is off: the address goes out as is
  const w = dev.write(ahciBar + 0x100, [0x11, 0x22, 0x33, 0x44]);
  assert.ok(w.ok);
  if (w.ok) {
    assert.equal(w.unsupportedBytes, 0);
    assert.deepEqual(w.peer, [{ owner: "00:1f.2", bar: 0, address: ahciBar + 0x100, bytes: 4 }]);
  }
  assert.equal(m.mmioRead32(ahciBar + 0x100), 0x44332211, "the CPU reads what the peer wrote");
  assert.equal(m.memory.backedPages, 0, "no RAM page was written");
  const r = dev.read(ahciBar + 0x100, 4);
  assert.ok(r.ok && r.peer?.[0]?.owner === "00:1f.2");
  if (r.ok) assert.deepEqual([...(r.data ?? [])], [0x11, 0x22, 0x33, 0x44]);
  // A peer can reach another function's MSI-X vector table: what the machine delivers from changes.
  const w2 = dev.write(nvmeBar, [0x00, 0x10, 0xe0, 0xfe]);
  assert.ok(w2.ok && w2.peer?.[0]?.owner === "00:04.0");
  assert.equal(m.mmioRead32(nvmeBar), 0xfee01000);
  // Between BARs, nothing answers.
  const gap = dev.write(ahciBar - 0x1000, [1]);
  assert.ok(gap.ok && gap.unsupportedBytes === 1 && gap.peer === undefined);
});

test("memory map: with translation on, a peer BAR is reached only through a mapping of it", () => {
  const p = new Platform({ ram });
  const bar = 3 * GiB + 0x100000;
  p.addBarWindow({ base: bar, size: 0x4000, owner: "00:04.0", index: 0 });
  const u = p.addVtdUnit();
  const t = new VtdTables(p.memory, 0x200000);
  const d = t.domain(1, 3);
  t.attach(0x18, d);
  t.map(d, 0x10000, bar); // IOVA 0x10000 -> the peer's BAR (as VFIO maps a peer for peer-to-peer DMA)
  enableTranslation(u, t.root);
  const dev = new DmaTestDevice(p, pciAddress(0, 3, 0));
  const w = dev.write(0x10008, [7, 7]);
  assert.ok(w.ok && w.peer?.[0]?.address === bar + 8);
  assert.equal(p.barMemory.read8(bar + 8), 7);
  const direct = dev.write(bar, [9]); // the BAR's bus address is not an IOVA of this domain
  assert.equal(direct.ok, false);
  assert.equal(p.barMemory.read8(bar), 0);
  assert.throws(() => p.addBarWindow({ base: bar + 0x1000, size: 0x1000, owner: "00:05.0", index: 0 }), /overlaps 00:04.0 BAR 0/);
  assert.throws(() => p.addBarWindow({ base: 0x1000, size: 0x1000, owner: "00:05.0", index: 0 }), /overlaps RAM/);
});
