/**
 * One VM container spanning two AMD-Vi units (amd-server: 01:00.0 behind ivhd0, 04:00.0 behind ivhd1). AMD-Vi
 * protection domain ids are global, so both devices' DTEs name the same domain id and page table; a strict unmap
 * must invalidate the IOTLB of every unit the domain has devices behind, or the other unit keeps the translation.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { getField, getFieldBig } from "../spec/amdvi/fields.js";
import { DTE_DOMAIN_ID, DTE_PT_ROOT } from "../spec/amdvi/dte.js";
import { Hypervisor, MiB } from "./hypervisor.js";

const A = "01:00.0";
const B = "04:00.0";
const GPA = 0x10_0000;

test("amd-server: one container on two units shares a domain id; a strict unmap blocks both devices, each fault in its own unit's event log", () => {
  const hv = Hypervisor.boot({ machine: "amd-server" });
  const k = hv.host;
  assert.deepEqual([A, B].map((b) => k.amd.unitFor(hv.dev(b))?.name), ["ivhd0", "ivhd1"]);
  const vm = hv.createVm({ name: "vm1", memory: 16 * MiB });
  for (const b of [A, B]) {
    hv.bindVfio(b);
    hv.assign(vm, b);
  }
  const dom = vm.container!.domain!;
  const dtes = [A, B].map((b) => k.amd.readDte(hv.dev(b).rid));
  assert.deepEqual(dtes.map((d) => getField(d, DTE_DOMAIN_ID)), [dom.pdId, dom.pdId], "both DTEs name the container's protection domain");
  assert.equal(getFieldBig(dtes[0]!, DTE_PT_ROOT), BigInt(dom.tables!.pgd) >> 12n, "and its one page table");
  assert.equal(getFieldBig(dtes[1]!, DTE_PT_ROOT), BigInt(dom.tables!.pgd) >> 12n);
  const hpa = vm.hpaOf(GPA)!;
  for (const [i, b] of [A, B].entries()) {
    const r = hv.machine.device(b).write(GPA, new Uint8Array([0x40 + i]));
    assert.ok(r.ok, `${b} reaches its VM's page`);
    assert.equal(hv.machine.memory.read8(hpa), 0x40 + i, `${b}'s byte is in the VM's host page ${hpa.toString(16)}`);
  }
  const before = k.amd.units.map((u) => u.counts.invalidatePages);
  const faults0 = k.faultCount;
  hv.balloon(vm, GPA, 4096);
  const after = k.amd.units.map((u) => u.counts.invalidatePages);
  assert.ok(after[0]! > before[0]! && after[1]! > before[1]!, `INVALIDATE_IOMMU_PAGES on ivhd0 and ivhd1: ${before} -> ${after}`);
  assert.equal(after[2], before[2], "ivhd2 has no device of the domain");
  hv.machine.memory.write8(hpa, 0);
  for (const b of [A, B]) assert.equal(hv.machine.device(b).write(GPA, new Uint8Array([0xee])).ok, false, `${b} is blocked after the unmap`);
  assert.equal(hv.machine.memory.read8(hpa), 0, "the page went back to the pool untouched");
  const got = k.faultsSince(faults0).map((f) => `${f.unit} ${f.name} ${f.type} ${f.sourceId.toString(16)} ${f.addr.toString(16)}`);
  assert.deepEqual(got, [`ivhd0 IO_PAGE_FAULT DMA Write ${hv.dev(A).rid.toString(16)} ${GPA.toString(16)}`, `ivhd1 IO_PAGE_FAULT DMA Write ${hv.dev(B).rid.toString(16)} ${GPA.toString(16)}`]);
});
