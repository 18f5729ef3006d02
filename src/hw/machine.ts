/**
 * A simulated machine built from a declarative configuration (machine-config.ts): RAM with the q35 layout (some
 * below 4 GiB, the rest above the PCI hole), CPUs, IOAPICs, a PCI topology, its IOMMUs — VT-d remapping units or
 * AMD-Vi units (each with its own PCI function, as QEMU's amd-iommu) — and the firmware (e820 map, ACPI DMAR or
 * IVRS encoded with the acpi/ codec).
 *
 * Two sides:
 * - What a kernel touches, exactly what a CPU can: RAM (`memory`), MMIO (`mmioRead` / `mmioWrite`, which reach the
 *   remapping units' registers and MSI-X tables in BARs), PCI configuration space (`configRead` / `configWrite`,
 *   ECAM), the firmware (`firmware`) and interrupts (`onInterrupt`).
 * - What devices do: `device(bdf)` issues DMA reads and writes and MSIs with the requester id the topology gives
 *   its requests at the root complex, through the platform and the unit covering that id.
 */
import { inputName, readInputText } from "../core/input.js";
import { IommuError, fsError } from "../core/errors.js";
import type { PhysicalMemory } from "../core/memory.js";
import { barSlots, normalizeMachineConfig, type MachineConfig, type MachineConfigInput } from "./machine-config.js";
import { buildAcpiTables, buildE820, iommuReservedRanges, type E820Entry } from "./machine-firmware.js";
import { Platform, type BarWindow, type DmaOutcome, type InterruptMessage } from "./platform.js";
import { CAP_MSI_OFFSET, programBar, type PciFunction, type PciTopology } from "./pci/topology.js";
import type { TranslateResult, VtdUnit } from "./vtd/unit.js";
import type { RequestAttributes } from "./vtd/request.js";
import type { IommuKind } from "./iommu-unit.js";
import { iommuKind, type AmdViUnitConfig } from "./machine-config.js";
import { ivhdEntries } from "./machine-ivrs.js";
import { sourceIdsFromIvhd } from "./amdvi/sources.js";
import type { AmdViUnit } from "./amdvi/unit.js";
import type { AmdViPlatformUnit } from "./amdvi/platform-unit.js";
import type { AmdViPciFunction } from "./amdvi/pci-function.js";
import { QEMU_CAPABILITY } from "../spec/amdvi/capability.js";
import { parsePciAddress, requesterId } from "../core/pci.js";
import { PCI_HEADER_TYPE, PCI_HEADER_TYPE_MFD } from "../core/pci-regs.js";
import { machinePreset, PRESET_NAMES } from "./machine-presets.js";
import { TWO32 } from "../core/u64.js";

export interface MachineFirmware {
  e820: E820Entry[];
  /** ACPI tables by signature ("DMAR"). */
  acpi: Record<string, Uint8Array>;
  /** CPUs as the MADT lists them. */
  cpus: { apicId: number }[];
  ioapics: { id: number; base: number }[];
}

/** A device's side of the bus: its DMA and interrupts, as it issues them. */
export interface DeviceBus {
  readonly fn: PciFunction;
  /** Requester id of its requests at the root complex (after PCIe-to-PCI bridge aliasing). */
  readonly requesterId: number;
  /** DMA; `attrs` adds a PASID prefix (and its privileged-mode bit) to the request. */
  read(addr: number | bigint, length: number, attrs?: RequestAttributes): DmaOutcome;
  write(addr: number | bigint, data: Uint8Array, attrs?: RequestAttributes): DmaOutcome;
  /** Signals MSI / MSI-X vector `index` with the address and data the kernel programmed; null when not enabled. */
  signal(index?: number): TranslateResult | null;
}

/** A VT-d unit of the machine. */
export interface MachineUnit {
  kind: "vtd";
  name: string;
  base: number;
  unit: VtdUnit;
}

/** An AMD-Vi unit of the machine: the unit model, its platform side, and its own PCI function. */
export interface MachineAmdViUnit {
  kind: "amd-vi";
  name: string;
  base: number;
  /** The IOMMU's own PCI function ("00:01.0"), where the kernel finds its capability block. */
  bdf: string;
  unit: AmdViUnit;
  port: AmdViPlatformUnit;
}

/** Any unit, by kind. */
export type MachineIommu = MachineUnit | MachineAmdViUnit;


export class Machine {
  readonly config: MachineConfig;
  readonly topology: PciTopology;
  readonly platform: Platform;
  readonly memory: PhysicalMemory;
  readonly firmware: MachineFirmware;
  /** The VT-d units (empty on an AMD-Vi machine; `iommus` lists every unit with its kind). */
  readonly units: MachineUnit[] = [];
  /** Every IOMMU of the machine, VT-d or AMD-Vi, in configuration order. */
  readonly iommus: MachineIommu[] = [];
  /** The kind of the machine's IOMMUs, or null without any. */
  readonly iommuKind: IommuKind | null;
  /** Configuration space of AMD-Vi units' own functions, by requester id. */
  private readonly iommuFunctions = new Map<number, AmdViPciFunction>();
  /** Highest RAM address + 1. */
  readonly ramTop: number;
  private handler: ((m: InterruptMessage) => void) | null = null;
  /** MSI-X tables: per function, 16 bytes per vector, written by the kernel through MMIO. */
  private readonly msixTables = new Map<PciFunction, Uint8Array>();

  constructor(input: MachineConfigInput | MachineConfig) {
    const { config, topology } = normalizeMachineConfig(input as MachineConfigInput);
    this.config = config;
    this.topology = topology;
    const high = config.ram.size - config.ram.below4g;
    this.ramTop = high > 0 ? TWO32 + high : config.ram.below4g;
    // q35's memory map: RAM below the PCI hole, the rest from 4 GiB; the hole holds BARs and the units' registers.
    const ram = [{ base: 0, size: config.ram.below4g }, { base: TWO32, size: Math.max(0, high) }];
    this.platform = new Platform({ ram, interruptSink: (m) => this.handler?.(m) });
    this.memory = this.platform.memory;
    this.iommuKind = iommuKind(config);
    for (const u of config.iommus) {
      if (u.type === "amd-vi") {
        this.addAmdUnit(u);
        continue;
      }
      const scope = u.scope === "all" ? { includeAll: true } : this.unitScope(u.scope);
      const unit = this.platform.addVtdUnit({
        base: u.base,
        name: u.name,
        scope,
        config: {
          awBits: u.awBits,
          cachingMode: u.cachingMode,
          interruptRemapping: u.interruptRemapping,
          passThrough: u.passThrough,
          postedInterrupts: u.postedInterrupts,
          scalableMode: u.scalableMode,
          firstStage: u.firstStage,
          nested: u.nested,
          pasidBits: u.pasidBits,
        },
      });
      this.units.push({ kind: "vtd", name: u.name, base: u.base, unit });
      this.iommus.push({ kind: "vtd", name: u.name, base: u.base, unit });
    }
    for (const fn of topology.functions) {
      const slots = barSlots(fn);
      if (fn.msi === "msix") this.msixTables.set(fn, new Uint8Array(16 * fn.msiVectors));
      fn.bars.forEach((b, i) => {
        programBar(fn, slots[i] ?? 0, b, b.base ?? 0);
        if (b.kind !== "io" && b.base !== null) this.platform.addBarWindow(this.barWindow(fn, b.base, b.size, slots[i] ?? 0, i === 0));
      });
    }
    this.firmware = {
      e820: buildE820(config.ram, iommuReservedRanges(config)),
      acpi: buildAcpiTables(config, topology),
      cpus: config.cpus,
      ioapics: config.ioapics,
    };
  }

  /** A machine from a preset name or a JSON file path. */
  static load(nameOrPath: string): Machine {
    const preset = machinePreset(nameOrPath);
    if (preset !== null) return new Machine(preset);
    const nameOrFile = inputName(nameOrPath);
    let text: string;
    try {
      text = readInputText(nameOrPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException)?.code === "ENOENT") {
        throw new IommuError("UNKNOWN_MACHINE", `${nameOrFile}: no such file, and not a machine preset`, {
          hint: `presets: ${PRESET_NAMES.join(", ")}; or the path of a JSON machine configuration`,
        });
      }
      throw fsError(e, nameOrFile);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new IommuError("MACHINE_CONFIG", `${nameOrFile}: not valid JSON: ${(e as Error).message}`);
    }
    try {
      return new Machine(json as MachineConfigInput);
    } catch (e) {
      // Name the file: "m.json: iommus[0].interruptRemaping: unknown key …".
      if (e instanceof IommuError && e.code === "MACHINE_CONFIG") throw new IommuError(e.code, `${nameOrFile}: ${e.message}`, { hint: e.hint, cause: e });
      throw e;
    }
  }

  /**
   * Attaches an AMD-Vi unit: registers at its base, its PCI function in configuration space (making function 0
   * of its slot report a multi-function device when it is not function 0), the IOAPIC/HPET and alias wiring of
   * its IVHD entries.
   */
  private addAmdUnit(u: AmdViUnitConfig): void {
    const amd = this.config.iommus.filter((x): x is AmdViUnitConfig => x.type === "amd-vi");
    const rid = requesterId(parsePciAddress(u.bdf));
    const port = this.platform.addAmdViUnit({
      base: u.base,
      name: u.name,
      scope: u.scope === "all" ? { includeAll: true } : this.unitScope(u.scope),
      interruptRemapping: u.interruptRemapping,
      config: {
        efr: u.efr,
        sources: sourceIdsFromIvhd({ entries: ivhdEntries(u, amd, this.topology) }),
        pci: { deviceId: rid & 0xff, capability: { ...QEMU_CAPABILITY, npCache: u.npCache, baseAddress: BigInt(u.base) } },
      },
    });
    this.iommuFunctions.set(rid, port.unit.pci);
    const f0 = this.topology.get(rid & ~7);
    if ((rid & 7) !== 0 && f0 !== undefined) {
      f0.multifunction = true;
      f0.config[PCI_HEADER_TYPE] = (f0.config[PCI_HEADER_TYPE] ?? 0) | PCI_HEADER_TYPE_MFD;
    }
    this.iommus.push({ kind: "amd-vi", name: u.name, base: u.base, bdf: u.bdf, unit: port.unit, port });
  }

  private unitScope(list: string[]): { sids: number[]; buses: [number, number][] } {
    const sids: number[] = [];
    const buses: [number, number][] = [];
    for (const s of list) {
      const fn = this.topology.byBdf(s);
      if (fn === undefined) continue;
      sids.push(fn.rid);
      if (fn.secondaryBus !== null) buses.push([fn.secondaryBus, fn.subordinateBus ?? fn.secondaryBus]);
    }
    return { sids, buses };
  }

  // ---- The CPU's side ----

  /** Where interrupt messages go (the kernel installs its handler here). */
  onInterrupt(handler: (m: InterruptMessage) => void): void {
    this.handler = handler;
  }

  mmioRead(addr: number, size: 4 | 8): bigint {
    return this.platform.mmioRead(addr, size);
  }

  mmioRead32(addr: number): number {
    return Number(this.mmioRead(addr, 4));
  }

  mmioWrite(addr: number, size: 4 | 8, value: number | bigint): void {
    this.platform.mmioWrite(addr, size, value);
  }

  /** A memory BAR as the platform routes it; the first BAR of an MSI-X function starts with its vector table. */
  private barWindow(fn: PciFunction, base: number, size: number, index: number, first: boolean): BarWindow {
    const table = first ? this.msixTables.get(fn) : undefined;
    const w: BarWindow = { base, size, owner: fn.bdf, index };
    if (table === undefined) return w;
    const inTable = (addr: number, n: number) => addr >= base && addr + n <= base + table.length;
    return {
      ...w,
      read: (addr, out) => inTable(addr, out.length) && (out.set(table.subarray(addr - base, addr - base + out.length)), true),
      write: (addr, bytes) => inTable(addr, bytes.length) && (table.set(bytes, addr - base), true),
    };
  }

  /** ECAM configuration read of the function with requester id `rid`. */
  configRead(rid: number, offset: number, size: 1 | 2 | 4): number {
    const own = this.iommuFunctions.get(rid & 0xffff);
    return own !== undefined ? own.read(offset, size) : this.topology.configRead(rid, offset, size);
  }

  configWrite(rid: number, offset: number, size: 1 | 2 | 4, value: number): void {
    const own = this.iommuFunctions.get(rid & 0xffff);
    if (own !== undefined) own.write(offset, size, value);
    else this.topology.configWrite(rid, offset, size, value);
  }

  /**
   * An interrupt message from an IOAPIC or HPET (no PCI function): remapped by the AMD-Vi unit whose IVHD names
   * its DeviceID in a special entry. Machines without such a unit have no model of this path.
   */
  sourceInterrupt(source: { kind: "ioapic" | "hpet"; id: number }, address: number, data: number): TranslateResult {
    for (const u of this.iommus) {
      if (u.kind !== "amd-vi") continue;
      const r = u.port.sourceInterrupt(source, address, data);
      if (r !== null) return r;
    }
    const what = `${source.kind === "ioapic" ? "IOAPIC" : "HPET"} ${source.id}`;
    throw new IommuError("NO_SUCH_DEVICE", `${what}: no AMD-Vi unit of machine '${this.config.name}' names its DeviceID (IVHD special entry)`);
  }

  // ---- The devices' side ----

  device(bdf: string): DeviceBus {
    const fn = this.topology.byBdf(bdf);
    if (fn === undefined) throw new IommuError("NO_SUCH_DEVICE", `no PCI function ${bdf} in machine '${this.config.name}'`);
    const rid = this.topology.requesterIdAtRoot(fn);
    const platform = this.platform;
    return {
      fn,
      requesterId: rid,
      read: (addr, length, attrs) => platform.dmaRead(rid, addr, length, attrs),
      write: (addr, data, attrs) => platform.dmaWrite(rid, addr, data, attrs),
      signal: (index = 0) => {
        const m = this.msiMessage(fn, index);
        return m === null ? null : platform.msi(rid, m.address, m.data);
      },
    };
  }

  /** The MSI address and data the kernel programmed for vector `index`, or null when MSI/MSI-X is off. */
  msiMessage(fn: PciFunction, index: number): { address: number; data: number } | null {
    const rd = (o: number, n: 1 | 2 | 4) => this.topology.configRead(fn.rid, o, n);
    if (fn.msi === "msi") {
      const ctl = rd(CAP_MSI_OFFSET + 2, 2);
      if ((ctl & 1) === 0) return null;
      const lo = rd(CAP_MSI_OFFSET + 4, 4);
      const hi = rd(CAP_MSI_OFFSET + 8, 4);
      const data = rd(CAP_MSI_OFFSET + 12, 2);
      return { address: hi * TWO32 + lo, data: (data | (index & 31)) >>> 0 };
    }
    if (fn.msi === "msix") {
      const ctl = rd(CAP_MSI_OFFSET + 2, 2);
      if ((ctl & 0x8000) === 0 || (ctl & 0x4000) !== 0) return null;
      const t = this.msixTables.get(fn);
      if (t === undefined || index >= fn.msiVectors) return null;
      const v = new DataView(t.buffer, t.byteOffset + 16 * index, 16);
      if ((v.getUint32(12, true) & 1) !== 0) return null; // vector masked
      return { address: v.getUint32(4, true) * TWO32 + v.getUint32(0, true), data: v.getUint32(8, true) };
    }
    return null;
  }
}
