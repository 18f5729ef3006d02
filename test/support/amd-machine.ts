/**
 * A machine with an AMD-Vi unit, built by hand for the simulated kernel's AMD driver tests: the devices of a
 * machine preset (by default `q35-lab`, the lab's QEMU guest) without its VT-d unit, an AmdViUnit at the IVHD's
 * base with its own PCI function at the IVHD's device id (QEMU's 00:01.0), and an IVRS (by default the one
 * recorded from QEMU 7.2 with `-device amd-iommu,intremap=on`, test/fixtures/hosts/qemu-e-amd-on). The kernel
 * sees it only as a MachinePort; tests drive DMA and interrupts through the unit with the requester ids the
 * topology gives.
 */
import { readFileSync } from "node:fs";
import { decodeIvrs, type IvhdBlock } from "../../src/acpi/ivrs.js";
import { Machine } from "../../src/hw/machine.js";
import type { MachineConfigInput } from "../../src/hw/machine-config.js";
import { machinePreset } from "../../src/hw/machine-presets.js";
import { AmdViUnit, type AmdViConfig } from "../../src/hw/amdvi/unit.js";
import { sourceIdsFromIvhd } from "../../src/hw/amdvi/sources.js";
import type { IncomingInterrupt, MachinePort } from "../../src/os/port.js";
import { MMIO_WINDOW_SIZE } from "../../src/spec/amdvi/registers.js";

export const QEMU_AMD_IVRS = "test/fixtures/hosts/qemu-e-amd-on/sys/firmware/acpi/tables/IVRS";

export interface AmdMachineOptions {
  /** Machine preset name or configuration whose devices, RAM and CPUs are used (its VT-d units are dropped). */
  machine?: string | MachineConfigInput;
  /** IVRS bytes (default: QEMU's, recorded). */
  ivrs?: Uint8Array;
  unit?: AmdViConfig;
  /** MADT IOAPICs (default: the preset's). */
  ioapics?: { id: number; base: number }[];
}

export class AmdMachine implements MachinePort {
  readonly machine: Machine;
  readonly unit: AmdViUnit;
  readonly base: number;
  readonly iommuRid: number;
  readonly firmware: MachinePort["firmware"];
  readonly interrupts: IncomingInterrupt[] = [];
  private handler: ((m: IncomingInterrupt) => void) | null = null;

  constructor(opts: AmdMachineOptions = {}) {
    const cfg = typeof opts.machine === "object" ? opts.machine : machinePreset(opts.machine ?? "q35-lab");
    if (cfg === null) throw new Error(`no machine preset ${String(opts.machine)}`);
    this.machine = new Machine({ ...cfg, iommus: [] });
    const ivrs = opts.ivrs ?? new Uint8Array(readFileSync(QEMU_AMD_IVRS));
    const ivhd = decodeIvrs(ivrs).blocks.find((b): b is IvhdBlock => b.type === "IVHD")!;
    this.base = Number(BigInt(ivhd.baseAddress));
    const [bus = "0", rest = "0.0"] = ivhd.deviceId.split(":");
    const [dev = "0", fn = "0"] = rest.split(".");
    this.iommuRid = (parseInt(bus, 16) << 8) | (parseInt(dev, 16) << 3) | parseInt(fn, 16);
    this.unit = new AmdViUnit(this.machine.memory, { sources: sourceIdsFromIvhd(ivhd), pci: { capOffset: ivhd.capabilityOffset }, ...opts.unit }, (m) => this.deliver(m));
    const acpi: Record<string, Uint8Array> = { ...this.machine.firmware.acpi, IVRS: ivrs };
    delete acpi.DMAR;
    this.firmware = { ...this.machine.firmware, acpi, ioapics: opts.ioapics ?? this.machine.firmware.ioapics };
    this.machine.onInterrupt((m) => this.deliver({ addressLo: m.addressLo, addressHi: m.addressHi, data: m.data }));
  }

  private deliver(m: IncomingInterrupt): void {
    this.interrupts.push(m);
    this.handler?.({ addressLo: m.addressLo, addressHi: m.addressHi, data: m.data });
  }

  get memory(): MachinePort["memory"] {
    return this.machine.memory;
  }

  private inUnit(addr: number): boolean {
    return addr >= this.base && addr < this.base + MMIO_WINDOW_SIZE;
  }

  mmioRead(addr: number, size: 4 | 8): bigint {
    if (!this.inUnit(addr)) return this.machine.mmioRead(addr, size);
    return size === 8 ? this.unit.mmioRead64(addr - this.base) : BigInt(this.unit.mmioRead32(addr - this.base) >>> 0);
  }

  mmioRead32(addr: number): number {
    return Number(this.mmioRead(addr, 4));
  }

  mmioWrite(addr: number, size: 4 | 8, value: number | bigint): void {
    if (!this.inUnit(addr)) return this.machine.mmioWrite(addr, size, value);
    const v = BigInt(value);
    this.unit.mmioWrite(addr - this.base, size, Number(v & 0xffff_ffffn), Number((v >> 32n) & 0xffff_ffffn));
  }

  configRead(rid: number, offset: number, size: 1 | 2 | 4): number {
    return rid === this.iommuRid ? this.unit.pci.read(offset, size) : this.machine.configRead(rid, offset, size);
  }

  configWrite(rid: number, offset: number, size: 1 | 2 | 4, value: number): void {
    if (rid === this.iommuRid) this.unit.pci.write(offset, size, value);
    else this.machine.configWrite(rid, offset, size, value);
  }

  onInterrupt(handler: (m: IncomingInterrupt) => void): void {
    this.handler = handler;
  }

  /** The requester id a function's requests carry at the root complex. */
  rid(bdf: string): number {
    return this.machine.device(bdf).requesterId;
  }

  /** A DMA read or write of one page by `bdf` at `iova`, translated by the unit (faults are logged as events). */
  dma(bdf: string, iova: number, write: boolean): ReturnType<AmdViUnit["translate"]> {
    return this.unit.translate(this.rid(bdf), BigInt(iova), write);
  }
}
