/**
 * Replays what QEMU 7.2's VT-d model answered for tables a real Linux 6.1 guest wrote (recorded by the lab in
 * test/fixtures/vtd-oracle): the forensic walk and the hardware model must give QEMU's translations, fault on
 * what the guest unmapped since, and remap interrupts to QEMU's output MSI. The fixtures hold only the pages the
 * walks read; every other byte reads as zero. The sm-* fixtures are scalable mode (x-scalable-mode=on with
 * intel_iommu=on,sm_on): the model then translates through Linux's scalable-mode context and PASID tables.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PhysicalMemory } from "../core/memory.js";
import { parsePciAddress, requesterId } from "../core/pci.js";
import { DMAR_IRTA_REG, DMAR_RTADDR_REG, GCMD_IRE, GCMD_SIRTP } from "../spec/vtd/registers.js";
import { enableTranslation, gcmd } from "../hw/vtd/builder.js";
import { VtdUnit } from "../hw/vtd/unit.js";
import { forensicCaps, walkIova, walkMsi } from "./walk.js";
import { ECAP } from "../spec/vtd/capability.js";
import { fieldOfBig } from "../spec/vtd/fields.js";
import { VTD_FR_READ } from "../spec/vtd/faults.js";
import { VTD_FR_SM_READ } from "../spec/vtd/sm-faults.js";

interface Fixture {
  recorded: { device: string };
  registers: { rtaddr: string; irta: string; cap: string; ecap: string };
  translations: { bdf: string; iova: string; hpa: string; pageSize: number }[];
  unmapped: { bdf: string; iova: string }[];
  interrupts: { sid: string; index: number; msiAddr: string; msiData: string; outAddr: string; outData: string }[];
  pages: Record<string, string>;
}

const sidOf = (bdf: string) => requesterId(parsePciAddress(bdf));

for (const name of ["qemu-vtd-aw39", "qemu-vtd-aw48", "qemu-vtd-sm-aw39", "qemu-vtd-sm-aw48"]) {
  const path = fileURLToPath(new URL(`../../test/fixtures/vtd-oracle/${name}.json`, import.meta.url));
  const fx = JSON.parse(readFileSync(path, "utf8")) as Fixture;
  const mem = new PhysicalMemory();
  for (const [addr, b64] of Object.entries(fx.pages)) mem.write(Number(addr), new Uint8Array(Buffer.from(b64, "base64")));
  const cap = BigInt(fx.registers.cap);
  const ecap = BigInt(fx.registers.ecap);
  const rtaddr = BigInt(fx.registers.rtaddr);
  const caps = forensicCaps({ cap, ecap });
  // x-scalable-mode=on: RTADDR.TTM = 01b, ECAP.SMTS; faults are then the scalable-mode ones (7.1.3).
  const scalable = fieldOfBig(ecap, ECAP.SMTS) === 1;
  const notPresent = scalable ? VTD_FR_SM_READ : VTD_FR_READ;

  test(`QEMU 7.2 oracle (${fx.recorded.device}): the walk gives QEMU's address and page size for every mapped IOVA`, () => {
    assert.ok(fx.translations.length > 0);
    for (const t of fx.translations) {
      const r = walkIova(mem, { rtaddr, sid: sidOf(t.bdf), iova: BigInt(t.iova), caps });
      assert.equal(r.result, "ok", `${t.bdf} ${t.iova}: ${JSON.stringify(r)}`);
      if (r.result === "ok") assert.deepEqual([r.hpa, r.pageSize], [t.hpa, t.pageSize], `${t.bdf} ${t.iova}`);
    }
  });

  test(`QEMU 7.2 oracle (${fx.recorded.device}): IOVAs the guest unmapped since fault as not present`, () => {
    for (const t of fx.unmapped) {
      const r = walkIova(mem, { rtaddr, sid: sidOf(t.bdf), iova: BigInt(t.iova), caps });
      assert.equal(r.result, "fault", `${t.bdf} ${t.iova}`);
      if (r.result === "fault") assert.equal(r.reason, notPresent);
    }
  });

  test(`QEMU 7.2 oracle (${fx.recorded.device}): the model's CAP/ECAP are QEMU's and its translations agree`, () => {
    const u = new VtdUnit({ memory: mem, config: { awBits: Number((cap >> 16n) & 0x3fn) + 1 === 48 ? 48 : 39, scalableMode: scalable } });
    assert.equal(u.cap, cap);
    assert.equal(u.ecap, ecap);
    enableTranslation(u, Number(rtaddr));
    assert.equal(u.mmioRead(DMAR_RTADDR_REG, 8), rtaddr);
    for (const t of fx.translations) {
      const r = u.translate({ sid: sidOf(t.bdf), addr: BigInt(t.iova), write: false });
      assert.ok(r.ok && r.kind === "dma", `${t.bdf} ${t.iova}`);
      if (r.ok && r.kind === "dma") assert.equal("0x" + (r.segments[0]?.hpa ?? 0n).toString(16), t.hpa);
    }
    for (const t of fx.unmapped) assert.equal(u.translate({ sid: sidOf(t.bdf), addr: BigInt(t.iova), write: false }).ok, false);
  });

  test(`QEMU 7.2 oracle (${fx.recorded.device}): interrupts remap to QEMU's output MSI, through the walk and the model`, () => {
    const irta = BigInt(fx.registers.irta);
    const u = new VtdUnit({ memory: mem });
    u.mmioWrite(DMAR_IRTA_REG, 8, irta);
    gcmd(u, GCMD_SIRTP);
    gcmd(u, GCMD_IRE);
    for (const m of fx.interrupts) {
      const r = walkMsi(mem, { irta, sid: sidOf(m.sid), msiAddr: BigInt(m.msiAddr), msiData: Number(m.msiData) });
      assert.equal(r.result, "ok", `${m.sid} ${m.msiAddr}`);
      if (r.result === "ok") assert.deepEqual([r.msi.address, r.msi.data], [m.outAddr, m.outData]);
      const t = u.translate({ sid: sidOf(m.sid), addr: BigInt(m.msiAddr), write: true, length: 4, data: Number(m.msiData) });
      assert.ok(t.ok && t.kind === "interrupt", `${m.sid} ${m.msiAddr}`);
      if (t.ok && t.kind === "interrupt") assert.deepEqual([t.message.addressLo, t.message.data], [Number(m.outAddr), Number(m.outData)]);
    }
  });
}
