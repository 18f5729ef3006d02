import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../core/memory.js";
import { encodeFields } from "../../spec/amdvi/fields.js";
import { decodeEvent, EVF_I, ILLEGAL_DEV_TABLE_ENTRY, IO_PAGE_FAULT } from "../../spec/amdvi/events.js";
import { IRTE128_FIELDS, IRTE32_FIELDS } from "../../spec/amdvi/irte.js";
import { CTRL_GA_EN } from "../../spec/amdvi/registers.js";
import { enable, loggedEvents, writeDte, writeDwords } from "./builder.js";
import { AmdViUnit } from "./unit.js";

const IRT = 0x40_0000;

function setup(dte: Record<string, bigint | number | boolean>, ga = false) {
  const mem = new PhysicalMemory();
  const unit = new AmdViUnit(mem);
  writeDte(mem, 0x08, { V: 1, TV: 0, IV: 1, IntCtl: 2, IntTabLen: 2, IntTableRootPtr: BigInt(IRT >>> 6), ...dte });
  enable(unit, ga ? CTRL_GA_EN : 0);
  return { mem, unit };
}

test("2.2.5.1 a 32-bit IRTE gives vector, destination, mode; the MSI data bits 10:0 pick it", () => {
  const { mem, unit } = setup({});
  writeDwords(mem, IRT + 3 * 4, encodeFields(1, IRTE32_FIELDS, { RemapEn: 1, IntType: 0, DM: 1, Destination: 0x05, Vector: 0x61 }));
  const r = unit.remapMsi(0x08, 0xfee0_0000, 3);
  assert.deepEqual([r.kind, r.address, r.data], ["remapped", 0xfee0_5004, 0x4061]);
});

test("2.2.5.2 with GAEn a 128-bit IRTE carries the vector in bits 71:64 and a 32-bit destination", () => {
  const { mem, unit } = setup({}, true);
  writeDwords(mem, IRT + 2 * 16, encodeFields(4, IRTE128_FIELDS, { RemapEn: 1, "Destination[23:0]": 0x03, Vector: 0x72 }));
  const r = unit.remapMsi(0x08, 0xfee0_0000, 2);
  assert.deepEqual([r.kind, r.address, r.data], ["remapped", 0xfee0_3000, 0x4072]);
});

test("2.2.5.1 an index beyond IntTabLen and a disabled IRTE log IO_PAGE_FAULT with I; SupIOPF suppresses it", () => {
  const { mem, unit } = setup({});
  writeDwords(mem, IRT + 4 * 4, [1 | (0x30 << 16)]); // valid, but past the 4-entry table
  const beyond = unit.remapMsi(0x08, 0xfee0_0000, 4);
  assert.deepEqual([beyond.kind, beyond.event], ["fault", IO_PAGE_FAULT]);
  const e = decodeEvent(loggedEvents(unit, 1)[0] ?? []);
  assert.equal(e.flags & EVF_I, EVF_I);
  assert.equal(unit.remapMsi(0x08, 0xfee0_0000, 1).kind, "fault");
  writeDwords(mem, IRT + 4, [0b10]);
  assert.equal(unit.remapMsi(0x08, 0xfee0_0000, 1).kind, "aborted");
  assert.equal(unit.events.written, 2);
});

test("2.2.2.1 IntCtl: 00b aborts, 01b forwards, 11b is an illegal DTE; IV=0 passes; IntTabLen > 1011b is illegal", () => {
  assert.equal(setup({ IntCtl: 0 }).unit.remapMsi(8, 0xfee0_0000, 0x30).kind, "aborted");
  assert.equal(setup({ IntCtl: 1 }).unit.remapMsi(8, 0xfee0_0000, 0x30).kind, "passed");
  assert.equal(setup({ IntCtl: 3 }).unit.remapMsi(8, 0xfee0_0000, 0x30).event, ILLEGAL_DEV_TABLE_ENTRY);
  assert.equal(setup({ IV: 0 }).unit.remapMsi(8, 0xfee0_0000, 0x30).kind, "passed");
  assert.equal(setup({ IntTabLen: 0xc }).unit.remapMsi(8, 0xfee0_0000, 0x30).event, ILLEGAL_DEV_TABLE_ENTRY);
});

test("2.2.5 NMI, INIT and ExtINT pass only with their DTE pass bits; SMI is blocked", () => {
  const nmi = 4 << 8;
  const init = 5 << 8;
  const extint = 7 << 8;
  assert.equal(setup({}).unit.remapMsi(8, 0xfee0_0000, nmi).kind, "aborted");
  assert.equal(setup({ NMIPass: 1 }).unit.remapMsi(8, 0xfee0_0000, nmi).kind, "passed");
  assert.equal(setup({ InitPass: 1 }).unit.remapMsi(8, 0xfee0_0000, init).kind, "passed");
  assert.equal(setup({}).unit.remapMsi(8, 0xfee0_0000, init).kind, "aborted");
  assert.equal(setup({ EIntPass: 1 }).unit.remapMsi(8, 0xfee0_0000, extint).kind, "passed");
  assert.equal(setup({}).unit.remapMsi(8, 0xfee0_0000, 2 << 8).kind, "aborted");
});
