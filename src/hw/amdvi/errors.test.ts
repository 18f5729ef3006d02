import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../core/memory.js";
import { encodeCommand, CMD_COMPLETION_WAIT } from "../../spec/amdvi/commands.js";
import {
  COMMAND_HARDWARE_ERROR,
  decodeEvent,
  DEV_TAB_HARDWARE_ERROR,
  INVALID_DEVICE_REQUEST,
  PAGE_TAB_HARDWARE_ERROR,
} from "../../spec/amdvi/events.js";
import { MMIO_CMD_BUF_BASE, MMIO_CMD_TAIL, MMIO_CONTROL, MMIO_DEV_TABLE_BASE, MMIO_STATUS, STATUS_CMD_BUF_RUN, CTRL_IOMMU_EN, CTRL_CMD_BUF_EN, CTRL_EVENT_LOG_EN } from "../../spec/amdvi/registers.js";
import { enable, loggedEvents, writeDte } from "./builder.js";
import { AmdViUnit } from "./unit.js";

const RAM = 0x800_0000;

test("2.5.4 a device table beyond RAM logs DEV_TAB_HARDWARE_ERROR with the DTE address", () => {
  const unit = new AmdViUnit(new PhysicalMemory(), { ramSize: RAM });
  enable(unit);
  unit.mmioWrite(MMIO_DEV_TABLE_BASE, 8, 0x1ff, 0x10);
  const r = unit.translate(3, 0x1000n, false);
  assert.equal(r.result === "fault" ? r.event : 0, DEV_TAB_HARDWARE_ERROR);
  const e = decodeEvent(loggedEvents(unit, 1)[0] ?? []);
  assert.deepEqual([e.code, e.deviceId, e.addrHi, e.addrLo], [DEV_TAB_HARDWARE_ERROR, 3, 0x10, 3 * 32]);
});

test("2.5.5 a page-table root beyond RAM logs PAGE_TAB_HARDWARE_ERROR", () => {
  const mem = new PhysicalMemory();
  const unit = new AmdViUnit(mem, { ramSize: RAM });
  writeDte(mem, 1, { V: 1, TV: 1, Mode: 2, HostPageTableRootPtr: BigInt(RAM >>> 12), IR: 1, IW: 1 });
  enable(unit);
  const r = unit.translate(1, 0x1000n, false);
  assert.equal(r.result === "fault" ? r.event : 0, PAGE_TAB_HARDWARE_ERROR);
  assert.equal(decodeEvent(loggedEvents(unit, 1)[0] ?? []).addrLo, RAM);
});

test("2.5.7 a command buffer beyond RAM logs COMMAND_HARDWARE_ERROR and stops", () => {
  const mem = new PhysicalMemory();
  const unit = new AmdViUnit(mem, { ramSize: RAM });
  enable(unit);
  unit.mmioWrite(MMIO_CONTROL, 8, 0, 0);
  unit.mmioWrite(MMIO_CMD_BUF_BASE, 8, RAM, 8 << 24);
  unit.mmioWrite(MMIO_CONTROL, 8, CTRL_IOMMU_EN | CTRL_CMD_BUF_EN | CTRL_EVENT_LOG_EN, 0);
  unit.mmioWrite(MMIO_CMD_TAIL, 8, 16, 0);
  const e = decodeEvent(loggedEvents(unit, 1)[0] ?? []);
  assert.deepEqual([e.code, e.addrLo], [COMMAND_HARDWARE_ERROR, RAM]);
  assert.equal(unit.mmioRead32(MMIO_STATUS) & STATUS_CMD_BUF_RUN, 0);
  assert.equal(encodeCommand(CMD_COMPLETION_WAIT)[1], 0x1000_0000);
});

test("2.5.9 a translated request from a device without DTE.I logs INVALID_DEVICE_REQUEST; with I it passes", () => {
  const mem = new PhysicalMemory();
  const unit = new AmdViUnit(mem);
  writeDte(mem, 1, { V: 1, TV: 1, Mode: 3, I: 0 });
  writeDte(mem, 2, { V: 1, TV: 1, Mode: 3, I: 1 });
  enable(unit);
  assert.equal(unit.translatedRequest(1, 0x1000, 0, true), INVALID_DEVICE_REQUEST);
  assert.equal(unit.translatedRequest(2, 0x1000, 0, true), 0);
  assert.equal(decodeEvent(loggedEvents(unit, 1)[0] ?? []).code, INVALID_DEVICE_REQUEST);
});
