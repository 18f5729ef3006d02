import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../core/memory.js";
import {
  CMD_COMPLETION_WAIT,
  CMD_INVALIDATE_DEVTAB_ENTRY,
  CMD_INVALIDATE_INTERRUPT_TABLE,
  CMD_INVALIDATE_IOMMU_ALL,
  CMD_INVALIDATE_IOMMU_PAGES,
  CMD_INVALIDATE_IOTLB_PAGES,
  encodeCommand,
  invalidationRange,
} from "../../spec/amdvi/commands.js";
import { decodeEvent, ILLEGAL_COMMAND_ERROR, IO_PAGE_FAULT } from "../../spec/amdvi/events.js";
import {
  CTRL_COM_WAIT_INT_EN,
  CTRL_EVENT_INT_EN,
  MMIO_CMD_HEAD,
  MMIO_EVENT_HEAD,
  MMIO_EVENT_TAIL,
  MMIO_STATUS,
  STATUS_CMD_BUF_RUN,
  STATUS_COM_WAIT_INT,
  STATUS_EVENT_LOG_INT,
  STATUS_EVENT_OVERFLOW,
} from "../../spec/amdvi/registers.js";
import type { InterruptMessage } from "../platform.js";
import { AmdTables, CMD_BUF, enable, loggedEvents, submit, writeDte } from "./builder.js";
import { AmdViUnit } from "./unit.js";

function setup(extraCtrl = 0) {
  const mem = new PhysicalMemory();
  const irqs: InterruptMessage[] = [];
  const unit = new AmdViUnit(mem, { msiAddress: 0xfee0_1000, msiData: 0x41 }, (m) => irqs.push(m));
  const t = new AmdTables(mem);
  const root = t.alloc();
  writeDte(mem, 0x20, { V: 1, TV: 1, Mode: 3, HostPageTableRootPtr: BigInt(root >>> 12), IR: 1, IW: 1, DomainID: 5 });
  enable(unit, extraCtrl);
  return { mem, unit, t, root, irqs };
}

test("2.4.1 COMPLETION_WAIT stores its data and, with I and ComWaitIntEn, sets ComWaitInt and interrupts", () => {
  const { mem, unit, irqs } = setup(CTRL_COM_WAIT_INT_EN);
  submit(unit, encodeCommand(CMD_COMPLETION_WAIT, 0x50_0000 | 0b011, 0, 0xcafe_f00d, 0x1234));
  assert.equal(mem.read64(0x50_0000), 0x1234_cafe_f00dn);
  assert.equal(unit.mmioRead32(MMIO_STATUS) & STATUS_COM_WAIT_INT, STATUS_COM_WAIT_INT);
  assert.equal(irqs.length, 1);
  assert.equal(irqs[0]?.data, 0x41);
  assert.equal(unit.mmioRead32(MMIO_CMD_HEAD), 16);
  unit.mmioWrite(MMIO_STATUS, 4, STATUS_COM_WAIT_INT);
  assert.equal(unit.mmioRead32(MMIO_STATUS) & STATUS_COM_WAIT_INT, 0);
});

test("2.4.3 INVALIDATE_IOMMU_PAGES drops the domain's IOTLB entry; without it the stale mapping stays", () => {
  const { unit, t, root } = setup();
  t.map4k(root, 3, 0x4000n, 0x1_0000n);
  assert.equal(unit.translate(0x20, 0x4000n, false).result, "ok");
  t.map4k(root, 3, 0x4000n, 0x2_0000n);
  const stale = unit.translate(0x20, 0x4000n, false);
  assert.equal(stale.result === "ok" ? stale.hpa : 0n, 0x1_0000n);
  submit(unit, encodeCommand(CMD_INVALIDATE_IOMMU_PAGES, 0, 6, 0x4000, 0));
  assert.equal(unit.iotlb.size, 1, "another domain's invalidation leaves the entry");
  submit(unit, encodeCommand(CMD_INVALIDATE_IOMMU_PAGES, 0, 5, 0x4000 | 0b10, 0));
  const fresh = unit.translate(0x20, 0x4000n, false);
  assert.equal(fresh.result === "ok" ? fresh.hpa : 0n, 0x2_0000n);
});

test("2.4.3 S=1 ranges: the ones from bit 12 up give the size, all ones is everything", () => {
  assert.deepEqual(invalidationRange(0x1000n, true), [0n, 14]);
  assert.deepEqual(invalidationRange(0x7000n | 0x10_0000n, true), [0x10_0000n, 16]);
  assert.deepEqual(invalidationRange(0x7fff_ffff_ffff_f000n, true), [0n, 64]);
  assert.deepEqual(invalidationRange(0xffff_ffff_ffff_f000n, true), [0n, 64]);
  const { unit, t, root } = setup();
  for (const a of [0x0n, 0x1000n, 0x8000n]) t.map4k(root, 3, a, 0x9000n);
  for (const a of [0x0n, 0x1000n, 0x8000n]) unit.translate(0x20, a, false);
  submit(unit, encodeCommand(CMD_INVALIDATE_IOMMU_PAGES, 0, 5, 0x3000 | 1, 0));
  assert.equal(unit.iotlb.size, 1, "the 32 KiB range at 0 covers 0x0 and 0x1000, not 0x8000");
});

test("2.4.2 INVALIDATE_DEVTAB_ENTRY rereads the DTE; 2.4.8 INVALIDATE_IOMMU_ALL drops everything", () => {
  const { mem, unit, t, root } = setup();
  t.map4k(root, 3, 0x4000n, 0x1_0000n);
  assert.equal(unit.translate(0x20, 0x4000n, false).result, "ok");
  writeDte(mem, 0x20, { V: 1, TV: 1, Mode: 0, IR: 0, IW: 0 });
  submit(unit, encodeCommand(CMD_INVALIDATE_IOMMU_PAGES, 0, 5, 0x7fff_f000 | 1, 0xffff_ffff));
  assert.equal(unit.translate(0x20, 0x4000n, false).result, "ok", "the cached DTE is still used");
  submit(unit, encodeCommand(CMD_INVALIDATE_DEVTAB_ENTRY, 0x20));
  assert.equal(unit.translate(0x20, 0x4000n, false).result, "fault");
  writeDte(mem, 0x20, { V: 1, TV: 1, Mode: 3, HostPageTableRootPtr: BigInt(root >>> 12), IR: 1, IW: 1, DomainID: 5 });
  submit(unit, encodeCommand(CMD_INVALIDATE_IOMMU_ALL));
  assert.equal(unit.translate(0x20, 0x4000n, false).result, "ok");
  assert.equal(unit.iotlb.size, 1);
  assert.equal(unit.dteCache.size, 1);
});

test("2.4.4/2.4.5 INVALIDATE_IOTLB_PAGES and INVALIDATE_INTERRUPT_TABLE complete", () => {
  const { unit } = setup();
  submit(unit, encodeCommand(CMD_INVALIDATE_IOTLB_PAGES, 0x20, 0, 0x1000, 0), encodeCommand(CMD_INVALIDATE_INTERRUPT_TABLE, 0x20));
  assert.equal(unit.mmioRead32(MMIO_CMD_HEAD), 32);
  assert.equal(unit.commands.executed.get(CMD_INVALIDATE_IOTLB_PAGES), 1);
  assert.equal(unit.commands.executed.get(CMD_INVALIDATE_INTERRUPT_TABLE), 1);
});

test("2.5.6 unknown opcodes and reserved bits log ILLEGAL_COMMAND_ERROR with the command address and stop", () => {
  for (const bad of [encodeCommand(0xf), encodeCommand(CMD_INVALIDATE_DEVTAB_ENTRY, 0x1_0000)]) {
    const { unit } = setup(CTRL_EVENT_INT_EN);
    submit(unit, encodeCommand(CMD_COMPLETION_WAIT, 0x50_0000 | 1), bad, encodeCommand(CMD_COMPLETION_WAIT, 0x60_0000 | 1, 0, 1));
    assert.equal(unit.mmioRead32(MMIO_CMD_HEAD), 16, "the head stays at the bad command");
    assert.equal(unit.mmioRead32(MMIO_STATUS) & STATUS_CMD_BUF_RUN, 0);
    assert.equal(unit.mem.read32(0x60_0000), 0, "nothing after it ran");
    const e = decodeEvent(loggedEvents(unit, 1)[0] ?? []);
    assert.deepEqual([e.code, e.addrLo], [ILLEGAL_COMMAND_ERROR, CMD_BUF + 16]);
    assert.equal(unit.raised, 1);
  }
});

test("2.5 event log: entries at the tail, EventLogInt set, overflow when the tail would meet the head", () => {
  const { unit } = setup();
  for (let i = 0; i < 255; i++) unit.translate(0x20, BigInt(i) << 12n, false);
  assert.equal(unit.mmioRead32(MMIO_EVENT_TAIL), 255 * 16);
  assert.equal(unit.mmioRead32(MMIO_STATUS) & STATUS_EVENT_LOG_INT, STATUS_EVENT_LOG_INT);
  assert.equal(unit.mmioRead32(MMIO_STATUS) & STATUS_EVENT_OVERFLOW, 0);
  unit.translate(0x20, 0x99_0000n, false);
  assert.equal(unit.mmioRead32(MMIO_STATUS) & STATUS_EVENT_OVERFLOW, STATUS_EVENT_OVERFLOW);
  assert.equal(unit.events.overflowed, 1);
  unit.mmioWrite(MMIO_EVENT_HEAD, 8, 255 * 16, 0);
  unit.translate(0x20, 0x99_0000n, false);
  assert.equal(unit.mmioRead32(MMIO_EVENT_TAIL), 0, "the tail wraps");
  const e = decodeEvent(loggedEvents(unit, 255).at(-1) ?? []);
  assert.equal(e.code, IO_PAGE_FAULT);
});
