import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../core/memory.js";
import { Platform } from "../platform.js";
import { frcdOffset } from "./registers.js";
import { DMAR_FSTS_REG, FSTS_PFO, GCMD_CFI, GCMD_IRE, GCMD_SIRTP, DMAR_IRTA_REG } from "../../spec/vtd/registers.js";
import { enableTranslation, gcmd, VtdTables } from "./builder.js";
import { VtdUnit, type TranslateResult } from "./unit.js";
import type { VtdConfig } from "./config.js";

const SID = 0x0300; // 03:00.0
const MiB = 0x100000;

function setup(config: Partial<VtdConfig> = {}, levels = 3) {
  const mem = new PhysicalMemory();
  const u = new VtdUnit({ memory: mem, config });
  const t = new VtdTables(mem);
  const d = t.domain(5, levels);
  t.attach(SID, d);
  enableTranslation(u, t.root);
  return { mem, u, t, d };
}

/** Fault record i: reason, source id, page address, and whether it was a read. */
function record(u: VtdUnit, i = 0) {
  const off = frcdOffset(u.config, i);
  const lo = u.mmioRead(off, 8);
  const hi = u.mmioRead(off + 8, 8);
  return {
    f: (hi >> 63n) === 1n,
    read: ((hi >> 62n) & 1n) === 1n,
    reason: Number((hi >> 32n) & 0xffn),
    sid: Number(hi & 0xffffn),
    addr: lo,
  };
}

/** Clears every fault record and the overflow bit, as a fault handler does. */
function clearFaults(u: VtdUnit): void {
  for (let i = 0; i < u.config.faultRecords; i++) u.mmioWrite(frcdOffset(u.config, i) + 12, 4, 0x80000000);
  u.mmioWrite(DMAR_FSTS_REG, 4, FSTS_PFO);
}

function expectFault(r: TranslateResult, reason: number): void {
  assert.equal(r.ok, false, "expected a fault");
  assert.equal(r.kind, "dma");
  if (r.ok || r.kind !== "dma") return;
  assert.equal(r.reason, reason, `fault reason 0x${r.reason.toString(16)} (${r.reasonName}), expected 0x${reason.toString(16)}`);
}

function hpaOf(r: TranslateResult): bigint {
  assert.equal(r.ok, true, r.ok ? "" : `unexpected ${JSON.stringify(r, (_k, v: unknown) => (typeof v === "bigint" ? v.toString(16) : v))}`);
  if (!r.ok || r.kind !== "dma") throw new Error("not a DMA translation");
  return r.segments[0]?.hpa ?? -1n;
}

test("3.4/9.1/9.3/9.8 legacy translation: a 4 KiB page through root, context and a 3-level table", () => {
  const { u, t, d } = setup();
  t.map(d, 0x7000_0000, 0x1234_5000);
  const r = u.translate({ sid: SID, addr: 0x7000_0abc, write: true });
  assert.equal(hpaOf(r), 0x1234_5abcn);
  if (r.ok && r.kind === "dma") assert.deepEqual([r.segments[0]?.pageSize, r.segments[0]?.read, r.segments[0]?.write], [4096, true, true]);
  // The fast path agrees and reports the page size.
  assert.equal(u.translateFast(SID, 0x7000_0ff0, 0, false), 0);
  assert.equal(u.outLo, 0x1234_5ff0);
  assert.equal(u.outShift, 12);
});

test("3.7 second-level tables of 4 levels (aw 48) and 5 levels (aw 57) translate addresses above 2^39", () => {
  {
    const { u, t, d } = setup({ awBits: 48 }, 4);
    t.map(d, 0x7f12_3456_7000n, 0x4_5678_9000n);
    assert.equal(hpaOf(u.translate({ sid: SID, addr: 0x7f12_3456_7008n, write: false })), 0x4_5678_9008n);
  }
  {
    const { u, t, d } = setup({ awBits: 57 }, 5);
    t.map(d, 0x1f0_0000_0000_0000n, 0x9000n);
    assert.equal(hpaOf(u.translate({ sid: SID, addr: 0x1f0_0000_0000_0010n, write: true })), 0x9010n);
    // A 4-level context entry on the same hardware works too (SAGAW has 48-bit).
    const d4 = t.domain(6, 4);
    t.attach(0x0301, d4);
    t.map(d4, 0x8000_0000_0000n - 0x1000n, 0x5000n);
    assert.equal(hpaOf(u.translate({ sid: 0x0301, addr: 0x7fff_ffff_f004n, write: false })), 0x5004n);
  }
});

test("IOVAs above 2^53 translate exactly as bigints; numbers there are refused, never rounded", () => {
  const { u, t, d } = setup({ awBits: 57 }, 5);
  // 2^56 + 0x3000 and the next page differ below the precision a number keeps at that size.
  const a = 2n ** 56n + 0x3000n;
  t.map(d, a, 0x7000n);
  t.map(d, a + 0x1000n, 0x9000n);
  assert.equal(hpaOf(u.translate({ sid: SID, addr: a + 0x10n, write: false })), 0x7010n);
  assert.equal(hpaOf(u.translate({ sid: SID, addr: a + 0x1010n, write: false })), 0x9010n);
  const r = u.translate({ sid: SID, addr: a + 0xff0n, length: 0x20, write: true });
  assert.ok(r.ok && r.kind === "dma");
  assert.deepEqual(
    r.segments.map((s) => [s.iova, s.hpa, s.length]),
    [
      [a + 0xff0n, 0x7ff0n, 0x10],
      [a + 0x1000n, 0x9000n, 0x10],
    ],
  );
  // Not mapped: the page below, which a rounded number would have landed on.
  assert.equal(u.translate({ sid: SID, addr: a - 0x1000n, write: false }).ok, false);
  assert.throws(() => u.translate({ sid: SID, addr: Number(a), write: false }), RangeError);
  assert.throws(() => t.map(d, 2 ** 56 + 0x5000, 0x1000), RangeError);
  // The platform refuses such numbers too, and passes bigints through exactly where no unit translates.
  const p = new Platform();
  assert.throws(() => p.translate(0x10, 2 ** 60, 4, false), RangeError);
  const id = p.translate(0x10, 2n ** 60n + 4n, 4, false);
  assert.ok(id.ok && id.kind === "dma" && id.segments[0]?.hpa === 2n ** 60n + 4n);
});

test("9.8 large pages: 2 MiB and 1 GiB leaves where CAP.SLLPS allows them", () => {
  const { u, t, d } = setup();
  t.map(d, 0x4020_0000, 0x8_0000_0000 - 0x200000 * 2, { size: 0x200000 });
  const r = u.translate({ sid: SID, addr: 0x4021_2345, write: false });
  assert.equal(hpaOf(r), 0x8_0000_0000n - 0x400000n + 0x12345n);
  if (r.ok && r.kind === "dma") assert.equal(r.segments[0]?.pageSize, 0x200000);
  t.map(d, 0x4000_0000_0n, 0x4000_0000, { size: 0x4000_0000 });
  const g = u.translate({ sid: SID, addr: 0x4_3456_789an, write: false });
  assert.equal(hpaOf(g), 0x7456_789an);
  if (g.ok && g.kind === "dma") assert.equal(g.segments[0]?.pageSize, 0x4000_0000);
});

test("9.8 large pages: PS in an SL-PDE is a reserved bit (0xC) when CAP.SLLPS lacks 2 MiB", () => {
  const { u, t, d } = setup({ largePages: 0 });
  t.map(d, 0x4020_0000, 0x20_0000, { size: 0x200000 });
  expectFault(u.translate({ sid: SID, addr: 0x4020_0000, write: false }), 0xc);
});

test("3.4 a request spanning pages is translated page by page into contiguous segments", () => {
  const { u, t, d } = setup();
  t.map(d, 0x10_0000, 0x50_0000);
  t.map(d, 0x10_1000, 0x50_1000);
  t.map(d, 0x10_2000, 0x90_0000);
  const r = u.translate({ sid: SID, addr: 0x10_0800, length: 0x2000, write: true });
  assert.ok(r.ok && r.kind === "dma");
  if (!r.ok || r.kind !== "dma") return;
  assert.deepEqual(
    r.segments.map((s) => [s.iova, s.hpa, s.length]),
    [
      [0x10_0800n, 0x50_0800n, 0x1800],
      [0x10_2000n, 0x90_0000n, 0x800],
    ],
  );
  // A page in the middle missing: the fault names it, the earlier pages stay translated.
  t.map(d, 0x10_1000, 0x50_1000, { read: false, write: false });
  u.iotlbGlobal(); // the old translation is cached until invalidated
  const f = u.translate({ sid: SID, addr: 0x10_0800, length: 0x2000, write: false });
  expectFault(f, 0x6);
  if (!f.ok && f.kind === "dma") {
    assert.equal(f.faultAddr, 0x10_1000n);
    assert.equal(f.segments.length, 1);
  }
});

test("3.9 pass-through: TT=10 with ECAP.PT passes untranslated requests; without ECAP.PT it is fault 0x3", () => {
  {
    const { u, t, d } = setup();
    t.attach(SID, d, { tt: 2 });
    assert.equal(hpaOf(u.translate({ sid: SID, addr: 0xdead_b000, write: true })), 0xdead_b000n);
  }
  {
    const { u, t, d } = setup({ passThrough: false });
    t.attach(SID, d, { tt: 2 });
    expectFault(u.translate({ sid: SID, addr: 0xdead_b000, write: true }), 0x3);
  }
});

test("10.4.5 GSTS.TES clear: DMA passes through untranslated, and nothing is recorded", () => {
  const mem = new PhysicalMemory();
  const u = new VtdUnit({ memory: mem });
  assert.equal(hpaOf(u.translate({ sid: SID, addr: 0x1234_5678, write: false })), 0x1234_5678n);
  assert.equal(record(u).f, false);
});

test("7.1.3 fault 0x1 (LRT.2): root entry not present", () => {
  const { u } = setup();
  const r = u.translate({ sid: 0x0700, addr: 0x1000, write: false });
  expectFault(r, 0x1);
  assert.deepEqual(record(u), { f: true, read: true, reason: 0x1, sid: 0x0700, addr: 0x1000n });
});

test("7.1.3 fault 0x2 (LCT.2): context entry not present", () => {
  const { u, t, d } = setup();
  t.attach(0x0308, d, { present: false });
  expectFault(u.translate({ sid: 0x0308, addr: 0x2000, write: true }), 0x2);
  assert.equal(record(u).read, false);
});

test("7.1.3 fault 0x3 (LCT.4): context entry with an AW the hardware lacks, or TT = 11b", () => {
  const { u, t, d } = setup();
  t.attach(SID, d, { aw: 2 }); // 48-bit AGAW on a 39-bit unit (SAGAW = 39 only)
  expectFault(u.translate({ sid: SID, addr: 0x2000, write: true }), 0x3);
  clearFaults(u);
  t.attach(0x0301, d, { tt: 3 });
  expectFault(u.translate({ sid: 0x0301, addr: 0x2000, write: true }), 0x3);
  clearFaults(u);
  t.attach(0x0302, d, { tt: 1 }); // device-TLB without ECAP.DT
  expectFault(u.translate({ sid: 0x0302, addr: 0x2000, write: true }), 0x3);
});

test("7.1.3 fault 0x4 (LGN.1): address above 2^min(MGAW+1, AGAW)", () => {
  const { u } = setup();
  expectFault(u.translate({ sid: SID, addr: 2n ** 39n, write: false }), 0x4);
  clearFaults(u);
  const w = setup({ awBits: 48 }, 3); // 3-level context on a 48-bit unit: AGAW 39 limits
  expectFault(w.u.translate({ sid: SID, addr: 2n ** 39n + 0x1000n, write: false }), 0x4);
  assert.equal(record(w.u).addr, 2n ** 39n + 0x1000n);
});

test("7.1.3 faults 0x5 / 0x6 (LGN.2 / LGN.3): permissions of the leaf and of every level above it", () => {
  const { u, t, d } = setup();
  t.map(d, 0x5000, 0x9000, { write: false });
  expectFault(u.translate({ sid: SID, addr: 0x5000, write: true }), 0x5);
  assert.equal(hpaOf(u.translate({ sid: SID, addr: 0x5004, write: false })), 0x9004n);
  clearFaults(u);
  t.map(d, 0x6000, 0xa000, { read: false });
  expectFault(u.translate({ sid: SID, addr: 0x6000, write: false }), 0x6);
  clearFaults(u);
  // A not-present leaf refuses both.
  expectFault(u.translate({ sid: SID, addr: 0x7000, write: false }), 0x6);
  clearFaults(u);
  expectFault(u.translate({ sid: SID, addr: 0x7000, write: true }), 0x5);
  clearFaults(u);
  // Read-only intermediate entry: writes fault even through a writable leaf.
  t.map(d, 0x4000_0000, 0xb000);
  const pde = t.entryAddress(d, 0x4000_0000, 2);
  t.mem.write64(pde, t.mem.read64(pde) & ~2n);
  expectFault(u.translate({ sid: SID, addr: 0x4000_0000, write: true }), 0x5);
});

test("7.1.3 faults 0x7, 0x8, 0x9, 0x3: tables outside memory are access errors at the level that reads them", () => {
  const p = new Platform({ ramSize: 64 * MiB });
  const u = p.addVtdUnit();
  const t = new VtdTables(p.memory);
  const d = t.domain(1);
  t.attach(SID, d);
  t.map(d, 0x1000, 0x2000);
  enableTranslation(u, t.root);
  assert.equal(hpaOf(u.translate({ sid: SID, addr: 0x1000, write: false })), 0x2000n);
  // SL-PDE pointing outside RAM: 0x7.
  const pde = t.entryAddress(d, 0x1000, 2);
  p.memory.write64(pde, 0x1000_0000n | 3n);
  u.contextGlobal();
  u.iotlbGlobal();
  expectFault(u.translate({ sid: SID, addr: 0x1000, write: false }), 0x7);
  clearFaults(u);
  // Second-level pointer in the context entry outside RAM: 0x3 (LCT.4).
  const bad = t.domain(2);
  t.attach(0x0301, { ...bad, top: 0x2000_0000 });
  expectFault(u.translate({ sid: 0x0301, addr: 0x1000, write: false }), 0x3);
  clearFaults(u);
  // Context table outside RAM: 0x9.
  p.memory.write64(t.root + 0x05 * 16, 0x3000_0000n | 1n);
  expectFault(u.translate({ sid: 0x0500, addr: 0x1000, write: false }), 0x9);
  clearFaults(u);
  // Root table outside RAM: 0x8.
  enableTranslation(u, 0x3800_0000);
  expectFault(u.translate({ sid: 0x0600, addr: 0x1000, write: false }), 0x8);
});

test("7.1.3 faults 0xA / 0xB (LRT.3 / LCT.3): reserved bits in present root and context entries", () => {
  const { u, t, d, mem } = setup();
  const re = t.root + 0x03 * 16;
  mem.write64(re, mem.read64(re) | 0x2n);
  expectFault(u.translate({ sid: SID, addr: 0x1000, write: false }), 0xa);
  clearFaults(u);
  mem.write64(re, mem.read64(re) & ~0x2n);
  mem.write64(re + 8, 1n); // legacy root entries have no upper half
  expectFault(u.translate({ sid: SID, addr: 0x1000, write: false }), 0xa);
  clearFaults(u);
  mem.write64(re + 8, 0n);
  const ce = t.attach(0x0304, d);
  mem.write64(ce, mem.read64(ce) | 0x10n);
  expectFault(u.translate({ sid: 0x0304, addr: 0x1000, write: false }), 0xb);
  clearFaults(u);
  const ce2 = t.attach(0x0305, d);
  mem.write64(ce2 + 8, mem.read64(ce2 + 8) | (1n << 24n));
  expectFault(u.translate({ sid: 0x0305, addr: 0x1000, write: false }), 0xb);
});

test("7.1.3 fault 0xC (LSL.2): reserved bits in a present second-level entry (SNP without SC, address above HAW)", () => {
  const { u, t, d, mem } = setup();
  const pte = t.map(d, 0x3000, 0x8000);
  mem.write64(pte, mem.read64(pte) | 0x800n);
  expectFault(u.translate({ sid: SID, addr: 0x3000, write: false }), 0xc);
  clearFaults(u);
  mem.write64(pte, 0x80_0000_0000n | 3n); // bit 39 set, HAW 39
  u.iotlbGlobal();
  expectFault(u.translate({ sid: SID, addr: 0x3000, write: false }), 0xc);
  clearFaults(u);
  // With ECAP.SC, SNP is allowed.
  const s = setup({ snoopControl: true });
  const pte2 = s.t.map(s.d, 0x3000, 0x8000);
  s.mem.write64(pte2, s.mem.read64(pte2) | 0x800n);
  assert.equal(hpaOf(s.u.translate({ sid: SID, addr: 0x3000, write: false })), 0x8000n);
});

test("7.1.3 fault 0xD (LCT.5): translation requests blocked by a context entry with TT other than 01b", () => {
  const { u, t, d } = setup();
  t.map(d, 0x3000, 0x8000);
  expectFault(u.translate({ sid: SID, addr: 0x3000, write: false, at: "translation-request" }), 0xd);
  clearFaults(u);
  expectFault(u.translate({ sid: SID, addr: 0x3000, write: false, at: "translated" }), 0xd);
  // With device-TLBs and TT = 01b, translated requests pass and translation requests translate.
  const dt = setup({ deviceTlb: true });
  dt.t.attach(SID, dt.d, { tt: 1 });
  dt.t.map(dt.d, 0x3000, 0x8000);
  assert.equal(hpaOf(dt.u.translate({ sid: SID, addr: 0x3000, write: false, at: "translation-request" })), 0x8000n);
  assert.equal(hpaOf(dt.u.translate({ sid: SID, addr: 0x8000, write: false, at: "translated" })), 0x8000n);
});

test("7.1.3 fault 0xE (LGN.4) and 3.14: a translation ending in 0xFEEx_xxxx is blocked", () => {
  const { u, t, d } = setup();
  t.map(d, 0x3000, 0xfee0_0000);
  expectFault(u.translate({ sid: SID, addr: 0x3000, write: true }), 0xe);
  clearFaults(u);
  t.map(d, 0x4000_0000, 0xfee0_0000, { size: 0x200000 });
  expectFault(u.translate({ sid: SID, addr: 0x4010_0000, write: false }), 0xe);
});

test("3.14 interrupt address range: reads are unsupported requests; DWORD writes are interrupts, passed through with IRE off", () => {
  const mem = new PhysicalMemory();
  const got: number[] = [];
  const u = new VtdUnit({ memory: mem, interruptSink: (m) => got.push(m.data) });
  const t = new VtdTables(mem);
  enableTranslation(u, t.root);
  const rd = u.translate({ sid: SID, addr: 0xfee0_0000, write: false });
  assert.deepEqual([rd.ok, rd.kind], [false, "unsupported"]);
  assert.equal(u.translateFast(SID, 0xfee0_1000, 0, true), -1);
  const w = u.translate({ sid: SID, addr: 0xfee0_0000, write: true, data: 0x4041 });
  assert.equal(w.ok, true);
  assert.equal(w.kind, "interrupt");
  assert.deepEqual(got, [0x4041]);
  assert.equal(record(u).f, false);
});

test("5.1.4 interrupt remapping faults 0x22 and 0x25 are recorded with the interrupt index in FI[63:48]", () => {
  const mem = new PhysicalMemory();
  const u = new VtdUnit({ memory: mem });
  // A 256-entry table at 0x200000 with nothing present.
  u.mmioWrite(DMAR_IRTA_REG, 8, 0x200000n | 7n);
  gcmd(u, GCMD_SIRTP);
  gcmd(u, GCMD_IRE);
  // Remappable format, handle 5: address bit 4 set, handle[14:0] in bits 19:5.
  const r = u.translate({ sid: SID, addr: (0xfee0_0000 | (5 << 5) | 0x10) >>> 0, write: true, data: 0 });
  assert.equal(r.ok, false);
  assert.equal(r.kind, "interrupt");
  if (!r.ok && r.kind === "interrupt") assert.equal(r.reason, 0x22);
  assert.deepEqual(record(u), { f: true, read: false, reason: 0x22, sid: SID, addr: 5n << 48n });
  clearFaults(u);
  // Compatibility format with CFIS clear: 0x25; with CFI set it passes.
  const c = u.translate({ sid: 0x0400, addr: 0xfee0_0000, write: true, data: 0x31 });
  assert.equal(c.ok, false);
  assert.equal(record(u).reason, 0x25);
  gcmd(u, GCMD_CFI);
  assert.equal(u.translate({ sid: 0x0400, addr: 0xfee0_0000, write: true, data: 0x31 }).ok, true);
});
