import { test } from "node:test";
import assert from "node:assert/strict";
import { pciAddress } from "../core/pci.js";
import { DmaTestDevice } from "./devices/dma-test.js";
import { Machine } from "./machine.js";
import { Platform, QEMU_VTD_BASE } from "./platform.js";
import { DMAR_GSTS_REG, DMAR_RTADDR_REG } from "./vtd/spec.js";
import { enableTranslation } from "./vtd/builder.js";

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
