/**
 * The command, event and fault paths commands.test.ts, errors.test.ts, translate.test.ts and intremap.test.ts
 * leave out: one test per path, named by the section of spec #48882 it follows.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../core/memory.js";
import {
  CMD_COMPLETE_PPR_REQUEST,
  CMD_COMPLETION_WAIT,
  CMD_INVALIDATE_INTERRUPT_TABLE,
  CMD_INVALIDATE_IOTLB_PAGES,
  CMD_PREFETCH_IOMMU_PAGES,
  encodeCommand,
} from "../../spec/amdvi/commands.js";
import {
  decodeEvent,
  DEV_TAB_HARDWARE_ERROR,
  EVF_I,
  EVF_PE,
  EVF_PR,
  EVF_RW,
  EVF_RZ,
  ILLEGAL_COMMAND_ERROR,
  ILLEGAL_DEV_TABLE_ENTRY,
  IO_PAGE_FAULT,
  PAGE_TAB_HARDWARE_ERROR,
} from "../../spec/amdvi/events.js";
import { encodeFields } from "../../spec/amdvi/fields.js";
import { IRTE128_FIELDS } from "../../spec/amdvi/irte.js";
import {
  CTRL_CMD_BUF_EN,
  CTRL_EVENT_INT_EN,
  CTRL_GA_EN,
  CTRL_IOMMU_EN,
  EXCL_EN,
  MMIO_CMD_HEAD,
  MMIO_CONTROL,
  MMIO_DEV_TABLE_BASE,
  MMIO_EVENT_TAIL,
  MMIO_EXCL_BASE,
  MMIO_EXCL_LIMIT,
  MMIO_STATUS,
  QEMU_DEFAULT_EFR,
  STATUS_COM_WAIT_INT,
} from "../../spec/amdvi/registers.js";
import { AmdTables, enable, loggedEvents, submit, writeDte, writeDwords } from "./builder.js";
import { AmdViUnit, type AmdViConfig } from "./unit.js";

const RAM = 0x800_0000;

function setup(config: AmdViConfig = {}, ctrl = 0) {
  const mem = new PhysicalMemory();
  const unit = new AmdViUnit(mem, config);
  const t = new AmdTables(mem);
  const root = t.alloc();
  writeDte(mem, 0x20, { V: 1, TV: 1, Mode: 3, HostPageTableRootPtr: BigInt(root >>> 12), IR: 1, IW: 1, DomainID: 5 });
  enable(unit, ctrl);
  return { mem, unit, t, root };
}

function lastEvent(unit: AmdViUnit) {
  return decodeEvent(loggedEvents(unit, unit.events.written).at(-1) ?? []);
}

test("2.4.1 COMPLETION_WAIT: S=0 stores nothing; I without ComWaitIntEn sets ComWaitInt but sends no interrupt; F is accepted", () => {
  const { mem, unit } = setup();
  submit(unit, encodeCommand(CMD_COMPLETION_WAIT, 0x50_0000 | 0b110, 0, 0x1111, 0x2222));
  assert.equal(mem.read64(0x50_0000), 0n);
  assert.equal(unit.mmioRead32(MMIO_STATUS) & STATUS_COM_WAIT_INT, STATUS_COM_WAIT_INT);
  assert.equal(unit.raised, 0);
  assert.equal(unit.mmioRead32(MMIO_CMD_HEAD), 16);
});

test("2.4 the command buffer wraps: 300 commands through a 256-entry ring leave the head at entry 44", () => {
  const { mem, unit } = setup();
  for (let i = 0; i < 300; i++) submit(unit, encodeCommand(CMD_COMPLETION_WAIT, 0x50_0000 | 1, 0, i, 0));
  assert.equal(unit.mmioRead32(MMIO_CMD_HEAD), (300 % 256) * 16);
  assert.equal(mem.read32(0x50_0000), 299);
  assert.equal(unit.commands.executed.get(CMD_COMPLETION_WAIT), 300);
});

test("2.4.4 INVALIDATE_IOTLB_PAGES with reserved bits is illegal; without, it completes and nothing times out (2.5.8: no device TLB is modelled)", () => {
  const ok = setup();
  submit(ok.unit, encodeCommand(CMD_INVALIDATE_IOTLB_PAGES, 0x20, 0, 0x1000 | 1, 0));
  assert.deepEqual([ok.unit.mmioRead32(MMIO_CMD_HEAD), ok.unit.events.written], [16, 0]);
  const bad = setup();
  submit(bad.unit, encodeCommand(CMD_INVALIDATE_IOTLB_PAGES, 0x20, 0, 0x1000 | 2, 0));
  assert.equal(lastEvent(bad.unit).code, ILLEGAL_COMMAND_ERROR);
});

test("2.4.5 INVALIDATE_INTERRUPT_TABLE: a device's new interrupt table is used from the invalidation on", () => {
  const { mem, unit } = setup({}, CTRL_GA_EN);
  for (const [irt, vector] of [[0x40_0000, 0x41], [0x41_0000, 0x42]] as const) {
    writeDwords(mem, irt, encodeFields(4, IRTE128_FIELDS, { RemapEn: 1, Vector: vector }));
  }
  writeDte(mem, 0x30, { V: 1, IV: 1, IntCtl: 2, IntTabLen: 1, IntTableRootPtr: BigInt(0x40_0000 >>> 6) });
  assert.equal(unit.remapMsi(0x30, 0xfee0_0000, 0).data & 0xff, 0x41);
  writeDte(mem, 0x30, { V: 1, IV: 1, IntCtl: 2, IntTabLen: 1, IntTableRootPtr: BigInt(0x41_0000 >>> 6) });
  assert.equal(unit.remapMsi(0x30, 0xfee0_0000, 0).data & 0xff, 0x41, "the cached entry still points at the old table");
  submit(unit, encodeCommand(CMD_INVALIDATE_INTERRUPT_TABLE, 0x30));
  assert.equal(unit.remapMsi(0x30, 0xfee0_0000, 0).data & 0xff, 0x42);
});

test("2.4.6 PREFETCH_IOMMU_PAGES and 2.4.7 COMPLETE_PPR_REQUEST complete with PreFSup/PPRSup, are illegal without", () => {
  const prefetch = encodeCommand(CMD_PREFETCH_IOMMU_PAGES, 0x0100_0020, 0, 0x4000 | 0b10101, 0);
  const ppr = encodeCommand(CMD_COMPLETE_PPR_REQUEST, 0x20, 0, 0b100, 0x1234);
  const { unit } = setup();
  submit(unit, prefetch, ppr);
  assert.deepEqual([unit.mmioRead32(MMIO_CMD_HEAD), unit.events.written], [32, 0]);
  for (const [cmd, efr] of [[prefetch, QEMU_DEFAULT_EFR & ~1n], [ppr, QEMU_DEFAULT_EFR & ~2n]] as const) {
    const u = setup({ efr }).unit;
    submit(u, cmd);
    assert.deepEqual([u.mmioRead32(MMIO_CMD_HEAD), lastEvent(u).code], [0, ILLEGAL_COMMAND_ERROR]);
  }
  for (const reserved of [encodeCommand(CMD_PREFETCH_IOMMU_PAGES, 0x10_0020), encodeCommand(CMD_COMPLETE_PPR_REQUEST, 0x20, 0, 0, 0x1_0000)]) {
    const u = setup().unit;
    submit(u, reserved);
    assert.equal(lastEvent(u).code, ILLEGAL_COMMAND_ERROR);
  }
});

test("2.5.2 ILLEGAL_DEV_TABLE_ENTRY: reserved DTE bit 63, or more levels than EFR.HATS allows, logs DeviceID, RZ and the address", () => {
  const { mem, unit } = setup({ efr: QEMU_DEFAULT_EFR & ~(3n << 10n) }); // HATS 00b: 4 levels
  writeDte(mem, 0x21, { V: 1, TV: 1, Mode: 3 });
  mem.write32(0x10_0000 + 0x21 * 32 + 4, mem.read32(0x10_0000 + 0x21 * 32 + 4) | 0x8000_0000);
  writeDte(mem, 0x22, { V: 1, TV: 1, Mode: 5 });
  assert.equal(unit.maxLevels, 4);
  for (const devid of [0x21, 0x22]) {
    const r = unit.translate(devid, 0x7000n, true);
    assert.equal(r.result === "fault" ? r.event : 0, ILLEGAL_DEV_TABLE_ENTRY);
    const e = lastEvent(unit);
    assert.deepEqual([e.code, e.deviceId, e.flags & (EVF_RZ | EVF_RW), e.addrLo], [ILLEGAL_DEV_TABLE_ENTRY, devid, EVF_RZ | EVF_RW, 0x7000]);
  }
});

test("2.5.3 IO_PAGE_FAULT flags: not present (no PR), reserved PTE bits (PR, RZ), permission (PR, PE, RW)", () => {
  const { unit, t, root } = setup();
  t.map4k(root, 3, 0x1000n, 0x9000n, true, false);
  const l1 = unit.mem.read32(unit.mem.read32(root) & 0xffff_f000) & 0xffff_f000; // level 2 → level 1 table
  t.entry(l1, 2, { PR: 1, NextLevel: 0, Address: 0xan, IR: 1, IW: 1 });
  unit.mem.write32(l1 + 2 * 8 + 4, unit.mem.read32(l1 + 2 * 8 + 4) | 0x0010_0000); // bit 52
  const flags = (iova: bigint, write: boolean): number => {
    const r = unit.translate(0x20, iova, write);
    return r.result === "fault" ? r.flags : -1;
  };
  assert.equal(flags(0x5000n, false) & (EVF_PR | EVF_RZ), 0);
  assert.equal(flags(0x2000n, false) & (EVF_PR | EVF_RZ), EVF_PR | EVF_RZ);
  assert.equal(flags(0x1000n, true), EVF_PR | EVF_PE | EVF_RW);
  assert.deepEqual([lastEvent(unit).code, lastEvent(unit).domainId], [IO_PAGE_FAULT, 5]);
});

test("2.5.4/2.5.5 in the interrupt path: a device table or an interrupt table beyond RAM logs the hardware error with I", () => {
  const dt = setup({ ramSize: RAM });
  dt.unit.mmioWrite(MMIO_DEV_TABLE_BASE, 8, RAM | 0x1ff, 0);
  const a = dt.unit.remapMsi(0x20, 0xfee0_0000, 0);
  assert.deepEqual([a.kind, a.event, lastEvent(dt.unit).code, lastEvent(dt.unit).flags & EVF_I], ["fault", DEV_TAB_HARDWARE_ERROR, DEV_TAB_HARDWARE_ERROR, EVF_I]);
  const it = setup({ ramSize: RAM });
  writeDte(it.mem, 0x31, { V: 1, IV: 1, IntCtl: 2, IntTabLen: 2, IntTableRootPtr: BigInt(RAM / 64) });
  const b = it.unit.remapMsi(0x31, 0xfee0_0000, 1);
  const e = lastEvent(it.unit);
  assert.deepEqual([b.event, e.code, e.addrLo, e.flags & EVF_I], [PAGE_TAB_HARDWARE_ERROR, PAGE_TAB_HARDWARE_ERROR, RAM + 4, EVF_I]);
});

test("2.2.5.2 a GA IRTE in guest mode (vAPIC posting, not modelled) faults with RZ instead of being remapped", () => {
  const { mem, unit } = setup({}, CTRL_GA_EN);
  writeDwords(mem, 0x40_0000, encodeFields(4, IRTE128_FIELDS, { RemapEn: 1, GuestMode: 1, Vector: 0x40 }));
  writeDte(mem, 0x30, { V: 1, IV: 1, IntCtl: 2, IntTabLen: 1, IntTableRootPtr: BigInt(0x40_0000 >>> 6) });
  const r = unit.remapMsi(0x30, 0xfee0_0000, 0);
  assert.deepEqual([r.kind, r.event, r.flags & EVF_RZ], ["fault", IO_PAGE_FAULT, EVF_RZ]);
});

test("3.4.4 with EventLogEn clear events are dropped; with EventIntEn each logged event raises the unit's interrupt", () => {
  const off = setup();
  off.unit.mmioWrite(MMIO_CONTROL, 8, CTRL_IOMMU_EN | CTRL_CMD_BUF_EN, 0);
  off.unit.translate(0x20, 0x1000n, false);
  assert.deepEqual([off.unit.events.dropped, off.unit.events.written, off.unit.mmioRead32(MMIO_EVENT_TAIL)], [1, 0, 0]);
  const on = setup({}, CTRL_EVENT_INT_EN);
  on.unit.translate(0x20, 0x1000n, false);
  on.unit.translate(0x20, 0x2000n, false);
  assert.deepEqual([on.unit.events.written, on.unit.raised], [2, 2]);
});

test("2.5 an event log beyond RAM drops the event and leaves the tail", () => {
  const { unit } = setup({ ramSize: RAM });
  unit.mmioWrite(0x10, 8, RAM, 8 << 24);
  unit.translate(0x20, 0x1000n, false);
  assert.deepEqual([unit.events.written, unit.events.dropped, unit.mmioRead32(MMIO_EVENT_TAIL)], [0, 1, 0]);
});

test("3.4.5 exclusion range without Allow: only devices whose DTE sets EX pass untranslated", () => {
  const { mem, unit } = setup();
  writeDte(mem, 0x21, { V: 1, TV: 1, Mode: 3, HostPageTableRootPtr: 0x1000n, IR: 1, IW: 1, DomainID: 6, EX: 1 });
  unit.mmioWrite(MMIO_EXCL_BASE, 8, 0x30_0000 | EXCL_EN, 0);
  unit.mmioWrite(MMIO_EXCL_LIMIT, 8, 0x30_f000, 0);
  const ex = unit.translate(0x21, 0x30_0040n, true);
  assert.deepEqual(ex.result === "ok" ? [ex.hpa, ex.untranslated] : ex, [0x30_0040n, true]);
  assert.equal(unit.translate(0x20, 0x30_0040n, true).result, "fault");
});
