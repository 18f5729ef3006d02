// Tables, buffers and addresses with bit 31 set: the unit reads 32-bit register and command fields as unsigned.
// A device table, command buffer, event log and interrupt table in RAM above 2 GiB, a completion store there, and
// an INVALIDATE_IOMMU_PAGES for an IOVA just below 4 GiB (where Linux's IOVA allocator hands out addresses first).
import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../core/memory.js";
import { CMD_COMPLETION_WAIT, CMD_INVALIDATE_IOMMU_PAGES, encodeCommand } from "../../spec/amdvi/commands.js";
import { DTE_FIELDS } from "../../spec/amdvi/dte.js";
import { decodeEvent, IO_PAGE_FAULT } from "../../spec/amdvi/events.js";
import { encodeFields } from "../../spec/amdvi/fields.js";
import { IRTE32_FIELDS } from "../../spec/amdvi/irte.js";
import {
  CTRL_CMD_BUF_EN,
  CTRL_EVENT_LOG_EN,
  CTRL_IOMMU_EN,
  MMIO_CMD_BUF_BASE,
  MMIO_CMD_TAIL,
  MMIO_CONTROL,
  MMIO_DEV_TABLE_BASE,
  MMIO_EVENT_LOG_BASE,
  MMIO_EVENT_TAIL,
} from "../../spec/amdvi/registers.js";
import { AmdTables, writeDwords } from "./builder.js";
import { AmdViUnit } from "./unit.js";

const HIGH = 0x8000_0000;
const DEV_TABLE = HIGH + 0x10_0000;
const CMD_BUF = HIGH + 0x20_0000;
const EVENT_LOG = HIGH + 0x21_0000;
const IRT = HIGH + 0x40_0000;
const DEVID = 0x20;

function setup() {
  const mem = new PhysicalMemory();
  const unit = new AmdViUnit(mem);
  const t = new AmdTables(mem);
  const root = t.alloc();
  writeDwords(mem, DEV_TABLE + DEVID * 32, encodeFields(8, DTE_FIELDS, {
    V: 1, TV: 1, Mode: 3, HostPageTableRootPtr: BigInt(root >>> 12), IR: 1, IW: 1, DomainID: 5,
    IV: 1, IntCtl: 2, IntTabLen: 2, IntTableRootPtr: BigInt(IRT / 64),
  }));
  unit.mmioWrite(MMIO_DEV_TABLE_BASE, 8, (DEV_TABLE | 0x1ff) >>> 0, 0);
  unit.mmioWrite(MMIO_CMD_BUF_BASE, 8, CMD_BUF, 8 << 24);
  unit.mmioWrite(MMIO_EVENT_LOG_BASE, 8, EVENT_LOG, 8 << 24);
  unit.mmioWrite(MMIO_CONTROL, 8, CTRL_IOMMU_EN | CTRL_EVENT_LOG_EN | CTRL_CMD_BUF_EN, 0);
  let tail = 0;
  const submit = (c: Uint32Array) => {
    writeDwords(mem, CMD_BUF + tail, c);
    tail += 16;
    unit.mmioWrite(MMIO_CMD_TAIL, 8, tail, 0);
  };
  return { mem, unit, t, root, submit };
}

test("a device table above 2 GiB is read there; a fault is logged in an event log above 2 GiB", () => {
  const { mem, unit, t, root } = setup();
  t.map4k(root, 3, 0x4000n, 0x1_0000n);
  const r = unit.translate(DEVID, 0x4000n, false);
  assert.equal(r.result === "ok" ? r.hpa : null, 0x1_0000n);
  unit.translate(DEVID, 0x5000n, true);
  assert.equal(unit.mmioRead32(MMIO_EVENT_TAIL), 16);
  const e = decodeEvent(Uint32Array.of(mem.read32(EVENT_LOG), mem.read32(EVENT_LOG + 4), mem.read32(EVENT_LOG + 8), mem.read32(EVENT_LOG + 12)));
  assert.equal(e.code, IO_PAGE_FAULT);
});

test("commands from a buffer above 2 GiB: COMPLETION_WAIT stores above 2 GiB; INVALIDATE_IOMMU_PAGES of an IOVA with bit 31 set drops that page", () => {
  const { mem, unit, t, root, submit } = setup();
  const iova = 0xffff_f000n;
  t.map4k(root, 3, iova, 0x1_0000n);
  assert.equal(unit.translate(DEVID, iova, false).result, "ok");
  t.map4k(root, 3, iova, 0x2_0000n); // the driver changes the mapping, then invalidates that one page
  submit(encodeCommand(CMD_INVALIDATE_IOMMU_PAGES, 0, 5, Number(iova & 0xffff_f000n), 0));
  const r = unit.translate(DEVID, iova, false);
  assert.equal(r.result === "ok" ? r.hpa : null, 0x2_0000n, "the stale IOTLB entry was dropped");
  const store = HIGH + 0x50_0000;
  submit(encodeCommand(CMD_COMPLETION_WAIT, (store | 1) >>> 0, 0, 0xcafe_f00d, 0x1234));
  assert.equal(mem.read64(store), 0x1234_cafe_f00dn);
});

test("an interrupt remapping table above 2 GiB", () => {
  const { mem, unit } = setup();
  writeDwords(mem, IRT + 3 * 4, encodeFields(1, IRTE32_FIELDS, { RemapEn: 1, IntType: 0, DM: 1, Destination: 0x05, Vector: 0x61 }));
  const r = unit.remapMsi(DEVID, 0xfee0_0000, 3);
  assert.deepEqual([r.kind, r.address, r.data], ["remapped", 0xfee0_5004, 0x4061]);
});
