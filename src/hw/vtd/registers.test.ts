import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../core/memory.js";
import { buildCap, buildEcap, qemuVtdConfig } from "./config.js";
import { declareRegisters } from "./registers.js";
import {
  DMAR_CAP_REG,
  DMAR_CCMD_REG,
  DMAR_ECAP_REG,
  DMAR_FECTL_REG,
  DMAR_FEDATA_REG,
  DMAR_FEUADDR_REG,
  DMAR_FSTS_REG,
  DMAR_GCMD_REG,
  DMAR_GSTS_REG,
  DMAR_IECTL_REG,
  DMAR_IQA_REG,
  DMAR_IRTA_REG,
  DMAR_RTADDR_REG,
  DMAR_VER_REG,
  GCMD_CFI,
  GCMD_IRE,
  GCMD_QIE,
  GCMD_SIRTP,
  GCMD_SRTP,
  GCMD_TE,
  GCMD_WBF,
  GSTS_CFIS,
  GSTS_IRES,
  GSTS_IRTPS,
  GSTS_QIES,
  GSTS_RTPS,
  GSTS_TES,
} from "./spec.js";
import { gcmd } from "./builder.js";
import { VtdUnit } from "./unit.js";

function unit(config = {}): VtdUnit {
  return new VtdUnit({ memory: new PhysicalMemory(), config });
}

test("10.4.2/10.4.3 CAP and ECAP: the default reads what QEMU 7.2 intel-iommu,intremap=on,caching-mode=on reads", () => {
  const u = unit();
  assert.equal(u.mmioRead(DMAR_CAP_REG, 8), 0x00d2008c22260286n);
  assert.equal(u.mmioRead(DMAR_ECAP_REG, 8), 0xf00f4an);
  // The same through 32-bit halves.
  assert.equal(u.mmioRead(DMAR_CAP_REG, 4), 0x22260286);
  assert.equal(u.mmioRead(DMAR_CAP_REG + 4, 4), 0x00d2008c);
  assert.equal(u.mmioRead(DMAR_VER_REG, 4), 0x10);
});

test("10.4.2 CAP: aw-bits=48 adds SAGAW 48-bit and MGAW 47, as QEMU 7.2's vtd_init", () => {
  const cap = buildCap(qemuVtdConfig({ awBits: 48 }));
  assert.equal(cap, 0x00d2008c222f0686n);
  assert.equal(Number((cap >> 8n) & 0x1fn), 0b00110); // SAGAW: 39-bit and 48-bit
  assert.equal(Number((cap >> 16n) & 0x3fn), 47); // MGAW
});

test("10.4.2 CAP: 57-bit/5-level, NFR > 1, CM off and no large pages are configurable", () => {
  const c = qemuVtdConfig({ awBits: 57, faultRecords: 8, cachingMode: false, largePages: 0, pageSelectiveInvalidation: false });
  const cap = buildCap(c);
  assert.equal(Number((cap >> 8n) & 0x1fn), 0b01110); // SAGAW 39, 48, 57
  assert.equal(Number((cap >> 16n) & 0x3fn), 56); // MGAW
  assert.equal(Number((cap >> 40n) & 0xffn), 7); // NFR = records - 1
  assert.equal(Number((cap >> 7n) & 1n), 0); // CM
  assert.equal(Number((cap >> 34n) & 0xfn), 0); // SLLPS
  assert.equal(Number((cap >> 39n) & 1n), 0); // PSI
  assert.equal(Number((cap >> 24n) & 0x3ffn) * 16, 0x220); // FRO
  const ecap = buildEcap(qemuVtdConfig({ passThrough: false, interruptRemapping: false }));
  assert.equal(ecap & 0x48n, 0n); // neither PT nor IR
  assert.equal(Number((ecap >> 8n) & 0x3ffn) * 16, 0xf0); // IRO
});

test("10.4 reset: after a reset every register reads its reset value", () => {
  const mem = new PhysicalMemory();
  const u = new VtdUnit({ memory: mem, config: { faultRecords: 4 } });
  const decls = declareRegisters(u.config);
  // Scribble on every dword of every register, run commands, cause a fault.
  for (const d of decls) {
    for (let off = d.offset; off < d.offset + d.size; off += 4) u.mmioWrite(off, 4, 0xffffffff);
  }
  gcmd(u, GCMD_TE);
  u.translate({ sid: 0x0100, addr: 0x1000, write: false });
  u.reset();
  for (const d of decls) {
    const reset = d.reset & ~d.writeOnly;
    assert.equal(u.mmioRead(d.offset, 4), Number(reset & 0xffffffffn), `${d.name} low half after reset`);
    if (d.size === 8) assert.equal(u.mmioRead(d.offset, 8), reset, `${d.name} after reset`);
  }
  assert.equal(u.translationEnabled, false);
  assert.equal(u.stats().iotlb.entries, 0);
});

test("10.4.4/10.4.5 GCMD: TE, SRTP, QIE, IRE, SIRTP and CFI show in GSTS; GCMD reads 0", () => {
  const u = unit();
  assert.equal(u.mmioRead(DMAR_GSTS_REG, 4), 0);
  u.mmioWrite(DMAR_RTADDR_REG, 8, 0x123000n);
  gcmd(u, GCMD_SRTP);
  assert.equal(u.mmioRead(DMAR_GSTS_REG, 4), GSTS_RTPS >>> 0);
  gcmd(u, GCMD_TE);
  assert.equal(u.mmioRead(DMAR_GSTS_REG, 4), (GSTS_RTPS | GSTS_TES) >>> 0);
  assert.equal(u.translationEnabled, true);
  assert.equal(u.mmioRead(DMAR_GCMD_REG, 4), 0);
  gcmd(u, GCMD_QIE);
  gcmd(u, GCMD_SIRTP);
  gcmd(u, GCMD_IRE);
  gcmd(u, GCMD_CFI);
  const all = (GSTS_RTPS | GSTS_TES | GSTS_QIES | GSTS_IRTPS | GSTS_IRES | GSTS_CFIS) >>> 0;
  assert.equal(u.mmioRead(DMAR_GSTS_REG, 4), all);
  // WBF completes at once: WBFS never stays set.
  gcmd(u, GCMD_WBF);
  assert.equal(u.mmioRead(DMAR_GSTS_REG, 4), all);
  gcmd(u, GCMD_TE, false);
  assert.equal(u.translationEnabled, false);
  assert.equal(u.mmioRead(DMAR_GSTS_REG, 4) & GSTS_TES, 0);
  gcmd(u, GCMD_IRE, false);
  gcmd(u, GCMD_CFI, false);
  assert.equal(u.mmioRead(DMAR_GSTS_REG, 4) & (GSTS_IRES | GSTS_CFIS), 0);
});

test("10.4.4 GCMD: interrupt-remapping commands do nothing without ECAP.IR, QIE nothing without ECAP.QI", () => {
  const u = unit({ interruptRemapping: false, queuedInvalidation: false });
  gcmd(u, GCMD_SIRTP);
  gcmd(u, GCMD_IRE);
  gcmd(u, GCMD_QIE);
  assert.equal(u.mmioRead(DMAR_GSTS_REG, 4), 0);
});

test("10.4.6 RTADDR: a 64-bit register written as two 32-bit halves reads back whole; TTM bits stay writable", () => {
  const u = unit();
  u.mmioWrite(DMAR_RTADDR_REG, 4, 0xabcde000);
  u.mmioWrite(DMAR_RTADDR_REG + 4, 4, 0x12);
  assert.equal(u.mmioRead(DMAR_RTADDR_REG, 8), 0x12abcde000n);
  u.mmioWrite(DMAR_RTADDR_REG, 8, 0xffffffffffffffffn);
  assert.equal(u.mmioRead(DMAR_RTADDR_REG, 8), 0xfffffffffffffc00n); // bits 9:0 reserved
});

test("10.4.7 CCMD: SID and FM are write-only; 10.4.10 FECTL resets with IM set; read-only registers ignore writes", () => {
  const u = unit();
  u.mmioWrite(DMAR_CCMD_REG, 8, 0x0000000312345678n);
  assert.equal(u.mmioRead(DMAR_CCMD_REG, 8), 0x5678n); // DID reads back, SID/FM do not
  assert.equal(u.mmioRead(DMAR_FECTL_REG, 4), 0x80000000);
  assert.equal(u.mmioRead(DMAR_IECTL_REG, 4), 0x80000000);
  u.mmioWrite(DMAR_CAP_REG, 8, 0n);
  assert.equal(u.mmioRead(DMAR_CAP_REG, 8), 0x00d2008c22260286n);
  u.mmioWrite(DMAR_FEDATA_REG, 4, 0xffffffff);
  assert.equal(u.mmioRead(DMAR_FEDATA_REG, 4), 0xffff);
  u.mmioWrite(DMAR_FEUADDR_REG, 4, 0xffffffff);
  assert.equal(u.mmioRead(DMAR_FEUADDR_REG, 4), 0); // no EIM: reserved
  u.mmioWrite(DMAR_FSTS_REG, 4, 0xffffffff);
  assert.equal(u.mmioRead(DMAR_FSTS_REG, 4), 0); // only RW1C bits, all clear
  u.mmioWrite(DMAR_IQA_REG, 8, 0xffffffffffffffffn);
  assert.equal(u.mmioRead(DMAR_IQA_REG, 8), 0xfffffffffffff807n);
  u.mmioWrite(DMAR_IRTA_REG, 8, 0xffffffffffffffffn);
  assert.equal(u.mmioRead(DMAR_IRTA_REG, 8), 0xfffffffffffff80fn);
});

test("10.4 MMIO: misaligned, odd-sized and out-of-window accesses read 0 and change nothing", () => {
  const u = unit();
  assert.equal(u.mmioRead(DMAR_CAP_REG + 2, 4), 0);
  assert.equal(u.mmioRead(DMAR_CAP_REG + 4, 8), 0n);
  assert.equal(u.mmioRead(0x10000, 4), 0);
  assert.equal(u.mmioRead(DMAR_CAP_REG, 2), 0);
  u.mmioWrite(DMAR_RTADDR_REG + 1, 4, 0xffffffff);
  u.mmioWrite(DMAR_RTADDR_REG, 3, 0xffffffff);
  u.mmioWrite(-8, 8, 1n);
  u.mmioWrite(DMAR_RTADDR_REG, 4, Number.NaN);
  assert.equal(u.mmioRead(DMAR_RTADDR_REG, 8), 0n);
  // Reserved offsets inside the window read 0 and ignore writes.
  u.mmioWrite(0x48, 4, 0xffffffff);
  assert.equal(u.mmioRead(0x48, 4), 0);
});
