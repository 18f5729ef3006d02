import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { PhysicalMemory } from "../../core/memory.js";
import {
  CAP_ID_SECURE_DEVICE,
  CAP_TYPE_IOMMU,
  CAPABILITY_FIELDS,
  decodeCapability,
  encodeCapability,
  QEMU_CAPABILITY,
} from "../../spec/amdvi/capability.js";
import { decodeFields } from "../../spec/amdvi/fields.js";
import { CTRL_EVENT_INT_EN } from "../../spec/amdvi/registers.js";
import type { InterruptMessage } from "../platform.js";
import { enable } from "./builder.js";
import { AmdViPciFunction, QEMU_CAP_OFFSET } from "./pci-function.js";
import { AmdViUnit } from "./unit.js";

// QEMU 7.2's amd-iommu at 00:01.0 as Linux 6.1 left it (recorded by the lab's scenario e).
const RECORDED = "test/fixtures/hosts/qemu-e-amd-on/sys/devices/pci0000:00/0000:00:01.0";

function recorded(): Uint8Array {
  return new Uint8Array(readFileSync(`${RECORDED}/config`));
}

/** Applies to the model what Linux wrote: the command register and the MSI capability. */
function applyGuestWrites(fn: AmdViPciFunction, guest: Uint8Array): void {
  const g = new DataView(guest.buffer, guest.byteOffset, guest.byteLength);
  fn.write(0x04, 2, g.getUint16(0x04, true));
  for (const off of [4, 8, 12]) fn.write(fn.msiOffset + off, 4, g.getUint32(fn.msiOffset + off, true));
  fn.write(fn.msiOffset + 2, 2, g.getUint16(fn.msiOffset + 2, true));
}

test("3.2 the model's IOMMU function reads as QEMU 7.2's, byte for byte, once Linux's writes are applied", () => {
  const guest = recorded();
  const fn = new AmdViPciFunction();
  assert.equal(fn.capOffset, QEMU_CAP_OFFSET);
  applyGuestWrites(fn, guest);
  assert.deepEqual([...fn.config], [...guest]);
});

test("3.2 at reset: AMD vendor id, class 0806h, capability list MSI → HyperTransport → MSI stub → IOMMU block", () => {
  const fn = new AmdViPciFunction();
  assert.equal(fn.read(0, 4), 0x0008_1022);
  assert.equal(fn.read(0x08, 4) >>> 8, 0x08_0600);
  assert.equal(fn.read(0x04, 2), 0, "command register clear until software sets it");
  const chain: number[] = [];
  for (let at = fn.read(0x34, 1); at !== 0 && chain.length < 8; at = fn.read(at + 1, 1)) chain.push(fn.read(at, 1), at);
  assert.deepEqual(chain, [0x05, 0x60, 0x08, 0x5c, 0x05, 0x58, CAP_ID_SECURE_DEVICE, 0x40]);
  assert.equal(fn.msiEnabled, false);
});

test("3.2.1 the capability header is 1F03000Fh, as Linux printed it in sysfs amd-iommu/cap", () => {
  const fn = new AmdViPciFunction();
  const sysfs = readFileSync(`${RECORDED}/iommu/ivhd0/amd-iommu/cap`, "utf8").trim();
  assert.equal(fn.read(QEMU_CAP_OFFSET, 4).toString(16), sysfs);
  const c = fn.capability();
  assert.deepEqual([c.capId, c.capType, c.capRev, c.next], [CAP_ID_SECURE_DEVICE, CAP_TYPE_IOMMU, 0, 0]);
  assert.deepEqual([c.iotlbSup, c.htTunnel, c.npCache, c.efrSup, c.capExt], [true, true, true, true, true]);
});

test("3.2.2–3.2.6 base FED80000h (Enable clear), range FF000000h, misc 0 00182840h: 48-bit GVA, PAsize 40, VAsize 48", () => {
  const fn = new AmdViPciFunction();
  assert.deepEqual([0x44, 0x48, 0x4c, 0x50, 0x54].map((o) => fn.read(o, 4)), [0xfed8_0000, 0, 0xff00_0000, 0x0018_2840, 0]);
  const f = decodeFields(encodeCapability(QEMU_CAPABILITY), CAPABILITY_FIELDS);
  assert.deepEqual([f["GVAsize"], f["PAsize"], f["VAsize"], f["LastDevice"], f["RngValid"], f["Enable"]], [2n, 40n, 48n, 0xffn, 0n, 0n]);
  const back = decodeCapability(encodeCapability(QEMU_CAPABILITY, 0x5c));
  assert.equal(back.next, 0x5c);
  assert.deepEqual({ ...back, capId: undefined, capType: undefined, next: undefined }, { ...QEMU_CAPABILITY, capId: undefined, capType: undefined, next: undefined });
});

test("3.2 the capability block is read-only (as in QEMU); reads beyond the 256 bytes return ones", () => {
  const fn = new AmdViPciFunction();
  const before = fn.config.slice(0x40, 0x58);
  for (let o = 0x40; o < 0x58; o += 4) fn.write(o, 4, 0xffff_ffff);
  assert.deepEqual(fn.config.slice(0x40, 0x58), before);
  fn.write(0x00, 4, 0);
  assert.equal(fn.read(0, 2), 0x1022, "ids are read-only");
  assert.equal(fn.read(0xfe, 4), 0xffff_ffff);
  fn.write(0x100, 4, 1);
});

test("IVHD capability offset: another offset moves the block and the capabilities QEMU allocates after it", () => {
  const fn = new AmdViPciFunction({ capOffset: 0x80, deviceId: 0x1234 });
  assert.equal(fn.read(0x80, 1), CAP_ID_SECURE_DEVICE);
  assert.equal(fn.msiOffset, 0xa0);
  assert.equal(fn.read(0x34, 1), 0xa0);
  assert.equal(fn.read(2, 2), 0x1234);
  assert.throws(() => new AmdViPciFunction({ capOffset: 0xf0 }), RangeError);
});

test("the unit's own interrupts use the MSI its PCI function was programmed with, and none while MSI is off", () => {
  const irqs: InterruptMessage[] = [];
  const unit = new AmdViUnit(new PhysicalMemory(), {}, (m) => irqs.push(m));
  enable(unit, CTRL_EVENT_INT_EN, 0); // a one-page device table: DeviceIDs from 80h up are beyond it
  unit.translate(0x200, 0x1000n, false);
  assert.equal(unit.raised, 1);
  assert.equal(irqs.length, 0, "MSI disabled: nothing is sent");
  const m = unit.pci.msiOffset;
  unit.pci.write(m + 4, 4, 0xfee0_1004);
  unit.pci.write(m + 12, 2, 0x21);
  unit.pci.write(m + 2, 2, 1);
  unit.translate(0x201, 0x1000n, false);
  assert.deepEqual(irqs.map((i) => [i.addressLo, i.data]), [[0xfee0_1004, 0x21]]);
});
