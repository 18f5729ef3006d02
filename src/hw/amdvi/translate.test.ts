import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../core/memory.js";
import { decodeEvent, EVF_PE, EVF_RW, ILLEGAL_DEV_TABLE_ENTRY, IO_PAGE_FAULT } from "../../spec/amdvi/events.js";
import { EXCL_ALLOW, EXCL_EN, MMIO_EXCL_BASE, MMIO_EXCL_LIMIT, MMIO_EXT_FEATURE, QEMU_DEFAULT_EFR } from "../../spec/amdvi/registers.js";
import { AmdTables, enable, loggedEvents, writeDte } from "./builder.js";
import { AmdViUnit } from "./unit.js";

function setup(levels: number) {
  const mem = new PhysicalMemory();
  const unit = new AmdViUnit(mem);
  const t = new AmdTables(mem);
  const root = t.alloc();
  writeDte(mem, 0x10, { V: 1, TV: 1, Mode: levels, HostPageTableRootPtr: BigInt(root >>> 12), IR: 1, IW: 1, DomainID: 7 });
  enable(unit);
  return { mem, unit, t, root };
}

test("3.4.7 EFR reads QEMU 7.2's default extended features", () => {
  const unit = new AmdViUnit(new PhysicalMemory());
  assert.equal(unit.mmioRead64(MMIO_EXT_FEATURE), QEMU_DEFAULT_EFR);
  assert.equal(unit.maxLevels, 6);
});

for (const levels of [1, 2, 3, 4, 5, 6]) {
  test(`2.2.3 a ${levels}-level table translates a 4 KiB page and faults next to it`, () => {
    const { unit, t, root } = setup(levels);
    const iova = levels === 1 ? 0x5000n : 0x1234_5000n & ((1n << BigInt(12 + 9 * levels)) - 1n);
    t.map4k(root, levels, iova, 0xabc_d000n);
    const r = unit.translate(0x10, iova | 0x123n, true);
    assert.deepEqual(r.result === "ok" ? r.hpa : r, 0xabc_d123n);
    const f = unit.translate(0x10, iova + 0x1000n, false);
    assert.equal(f.result, "fault");
    assert.equal(f.result === "fault" ? f.event : 0, IO_PAGE_FAULT);
  });
}

test("2.2.3 address bits above the top level fault", () => {
  const { unit, t, root } = setup(3);
  t.map4k(root, 3, 0x1000n, 0x2000n);
  assert.equal(unit.translate(0x10, 0x1000n, false).result, "ok");
  const r = unit.translate(0x10, (1n << 39n) | 0x1000n, false);
  assert.equal(r.result === "fault" ? r.event : 0, IO_PAGE_FAULT);
});

test("2.2.3 level skipping: a level-3 PDE pointing to level 1 needs zero level-2 index bits", () => {
  const { unit, t, root } = setup(3);
  const l1 = t.alloc();
  t.entry(root, 0, { PR: 1, NextLevel: 1, Address: BigInt(l1 >>> 12), IR: 1, IW: 1 });
  t.entry(l1, 3, { PR: 1, NextLevel: 0, Address: 0x77n, IR: 1, IW: 1 });
  const ok = unit.translate(0x10, 0x3008n, false);
  assert.equal(ok.result === "ok" ? ok.hpa : ok, 0x77008n);
  const bad = unit.translate(0x10, 0x20_3008n, false);
  assert.equal(bad.result, "fault");
});

test("2.2.3 NextLevel 0 above level 1 is a default-size large page (2 MiB at level 2)", () => {
  const { unit, t, root } = setup(2);
  t.entry(root, 1, { PR: 1, NextLevel: 0, Address: 0x4000_0000n >> 12n, IR: 1, IW: 1 });
  const r = unit.translate(0x10, 0x20_0000n + 0x1_2345n, false);
  assert.equal(r.result === "ok" ? r.hpa : r, 0x4001_2345n);
  assert.equal(r.result === "ok" ? r.pageShift : 0, 21);
});

test("2.2.3.2 NextLevel 7 encodes the page size in the address (32 KiB page at level 1)", () => {
  const { unit, t, root } = setup(2);
  const l1 = t.alloc();
  t.entry(root, 0, { PR: 1, NextLevel: 1, Address: BigInt(l1 >>> 12), IR: 1, IW: 1 });
  // A 32 KiB page covers 8 level-1 entries; each holds the same encoding.
  for (let i = 8; i < 16; i++) t.explicit(l1, i, 0x8_0000n, 15);
  const r = unit.translate(0x10, 0xd123n, false);
  assert.equal(r.result === "ok" ? r.hpa : r, 0x8_5123n);
  assert.equal(r.result === "ok" ? r.pageShift : 0, 15);
});

test("2.2.3 permissions accumulate: a read-only PDE makes a writable PTE read-only", () => {
  const { unit, t, root } = setup(2);
  const l1 = t.alloc();
  t.entry(root, 0, { PR: 1, NextLevel: 1, Address: BigInt(l1 >>> 12), IR: 1, IW: 0 });
  t.entry(l1, 1, { PR: 1, NextLevel: 0, Address: 0x99n, IR: 1, IW: 1 });
  assert.equal(unit.translate(0x10, 0x1000n, false).result, "ok");
  const w = unit.translate(0x10, 0x1000n, true);
  assert.equal(w.result === "fault" ? w.flags & (EVF_PE | EVF_RW) : 0, EVF_PE | EVF_RW);
  const [ev] = loggedEvents(unit, 1);
  const e = decodeEvent(ev ?? []);
  assert.deepEqual([e.code, e.deviceId, e.domainId, e.addrLo], [IO_PAGE_FAULT, 0x10, 7, 0x1000]);
});

test("2.2.2.1 mode 0 passes addresses through under IR/IW; V=0 passes untranslated; mode 7 is illegal", () => {
  const mem = new PhysicalMemory();
  const unit = new AmdViUnit(mem);
  writeDte(mem, 1, { V: 1, TV: 1, Mode: 0, IR: 1, IW: 0 });
  writeDte(mem, 3, { V: 1, TV: 1, Mode: 7 });
  enable(unit);
  const r = unit.translate(1, 0x1234_5678n, false);
  assert.equal(r.result === "ok" ? r.hpa : r, 0x1234_5678n);
  assert.equal(unit.translate(1, 0x1000n, true).result, "fault");
  const p = unit.translate(2, 0x5000n, true);
  assert.equal(p.result === "ok" && p.untranslated, true);
  const m7 = unit.translate(3, 0x5000n, true);
  assert.equal(m7.result === "fault" ? m7.event : 0, ILLEGAL_DEV_TABLE_ENTRY);
});

test("3.4.5 exclusion range: with Allow every device's accesses inside it pass untranslated", () => {
  const { unit } = setup(3);
  assert.equal(unit.translate(0x10, 0x30_0000n, false).result, "fault");
  unit.mmioWrite(MMIO_EXCL_BASE, 8, 0x30_0000 | EXCL_EN | EXCL_ALLOW, 0);
  unit.mmioWrite(MMIO_EXCL_LIMIT, 8, 0x30_f000, 0);
  const r = unit.translate(0x10, 0x30_0010n, false);
  assert.equal(r.result === "ok" ? r.hpa : r, 0x30_0010n);
  assert.equal(unit.translate(0x10, 0x31_0000n, false).result, "fault");
});

test("3.4.1 a DeviceID beyond the device table size is an illegal DTE access", () => {
  const mem = new PhysicalMemory();
  const unit = new AmdViUnit(mem);
  enable(unit, 0, 0);
  const r = unit.translate(0x200, 0n, false);
  assert.equal(r.result === "fault" ? r.event : 0, ILLEGAL_DEV_TABLE_ENTRY);
  assert.equal(unit.translate(0x7f, 0n, false).result, "ok");
});

test("an IOTLB hit reports its own permissions, not those of the request before it", () => {
  const { unit, t, root } = setup(4);
  t.map4k(root, 4, 0x7000n, 0x9000n, true, false); // read-only page
  const first = unit.translate(0x10, 0x7000n, false); // walk: fills the IOTLB
  assert.deepEqual(first.result === "ok" && [first.read, first.write, first.untranslated], [true, false, false]);
  const pass = unit.translate(0x20, 0x1000n, true); // DTE V=0: untranslated, read and write
  assert.deepEqual(pass.result === "ok" && [pass.read, pass.write, pass.untranslated], [true, true, true]);
  const hit = unit.translate(0x10, 0x7000n, false);
  assert.deepEqual(hit.result === "ok" && [hit.hpa, hit.read, hit.write, hit.untranslated], [0x9000n, true, false, false]);
});
