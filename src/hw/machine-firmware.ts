/**
 * The firmware of a simulated machine: the e820 memory map and the ACPI DMAR (VT-d) or IVRS (AMD-Vi, see
 * machine-ivrs.ts) table, built with the same encoder
 * that `iommu acpi encode` uses, so the simulated kernel parses exactly the bytes a real one would.
 *
 * The DMAR follows QEMU's (hw/i386/acpi-build.c, build_dmar_q35): OEM "BOCHS "/"BXPC", revision 1, the INTR_REMAP
 * flag when a unit remaps interrupts, one DRHD per unit (the INCLUDE_PCI_ALL one last, as VT-d spec 8.3
 * requires), the IOAPIC in the scope of its unit (start bus 0xff, path 00.0, as QEMU's pseudo platform bus),
 * listed functions as endpoint or bridge scopes with their path from bus 0, then one RMRR per reserved region.
 */
import { encodeDmar, type DmarDeviceScope, type DmarStructure, type DmarTable } from "../acpi/dmar.js";
import { hex } from "../core/hex.js";
import { iommuKind, type MachineConfig, type RamConfig, type VtdUnitConfig } from "./machine-config.js";
import { encodeIvrs } from "../acpi/ivrs.js";
import { buildIvrsTable, QEMU_SDT_HEADER } from "./machine-ivrs.js";
import type { PciFunction, PciTopology } from "./pci/topology.js";

export type E820Type = "usable" | "reserved";

export interface E820Entry {
  base: number;
  /** Last byte, inclusive. */
  end: number;
  type: E820Type;
}

const FOUR_G = 2 ** 32;

/** The e820 map of a q35-like machine with `ram` (RMRR ranges and configured holes reported as reserved). */
export function buildE820(ram: RamConfig, extraReserved: { base: number; end: number }[]): E820Entry[] {
  const out: E820Entry[] = [];
  const reserved = [...ram.reserved.map((r) => ({ base: r.base, end: r.base + r.size - 1 })), ...extraReserved].sort((a, b) => a.base - b.base);
  const usable = (base: number, end: number): void => {
    let at = base;
    for (const r of reserved) {
      if (r.end < at || r.base > end) continue;
      if (r.base > at) out.push({ base: at, end: r.base - 1, type: "usable" });
      out.push({ base: Math.max(r.base, at), end: Math.min(r.end, end), type: "reserved" });
      at = Math.min(r.end, end) + 1;
    }
    if (at <= end) out.push({ base: at, end, type: "usable" });
  };
  usable(0, 0x9fbff);
  out.push({ base: 0x9fc00, end: 0x9ffff, type: "reserved" });
  out.push({ base: 0xf0000, end: 0xfffff, type: "reserved" });
  usable(0x100000, ram.below4g - 1);
  out.push({ base: 0xb0000000, end: 0xbfffffff, type: "reserved" }); // MMCONFIG (ECAM)
  out.push({ base: 0xfed1c000, end: 0xfed1ffff, type: "reserved" });
  out.push({ base: 0xfffc0000, end: 0xffffffff, type: "reserved" });
  const high = ram.size - ram.below4g;
  if (high > 0) usable(FOUR_G, FOUR_G + high - 1);
  return out.sort((a, b) => a.base - b.base);
}

/** Path from bus 0 to `fn`: one (device, function) per bridge crossed, then the function itself. */
function scopePath(fn: PciFunction): { device: number; function: number }[] {
  const chain: PciFunction[] = [];
  for (let f: PciFunction | null = fn; f !== null; f = f.parent) chain.unshift(f);
  return chain.map((f) => ({ device: f.address.device, function: f.address.fn }));
}

function scope(type: DmarDeviceScope["type"], typeCode: number, enumerationId: number, startBus: number, path: { device: number; function: number }[]): DmarDeviceScope {
  return { type, typeCode, offset: 0, length: 0, enumerationId, startBus, path };
}

/** Q35_PSEUDO_BUS_PLATFORM: the bus QEMU's DMAR names the IOAPIC on. */
export const Q35_PSEUDO_BUS_PLATFORM = 0xff;

/** The DMAR table as a decoded object (what `iommu acpi decode --json` prints for it). */
export function buildDmarTable(c: MachineConfig, t: PciTopology): DmarTable {
  const units = c.iommus.filter((u): u is VtdUnitConfig => u.type === "vtd").sort((a, b) => Number(a.scope === "all") - Number(b.scope === "all"));
  const structures: DmarStructure[] = units.map((u) => {
    const scopes: DmarDeviceScope[] = u.ioapics.map((id) => scope("ioapic", 3, id, Q35_PSEUDO_BUS_PLATFORM, [{ device: 0, function: 0 }]));
    if (u.scope !== "all") {
      const fns = u.scope.map((s) => t.byBdf(s)).filter((f): f is PciFunction => f !== undefined).sort((a, b) => a.rid - b.rid);
      for (const fn of fns) {
        const bridge = fn.secondaryBus !== null;
        scopes.push(scope(bridge ? "bridge" : "endpoint", bridge ? 2 : 1, 0, 0, scopePath(fn)));
      }
    }
    return {
      type: "DRHD",
      typeCode: 0,
      offset: 0,
      length: 0,
      flags: { raw: u.scope === "all" ? 1 : 0, includePciAll: u.scope === "all" },
      size: { raw: 0, bytes: "0x1000" },
      segment: 0,
      registerBase: hex(u.base),
      scopes,
    };
  });
  for (const r of c.rmrrs) {
    const fns = r.devices.map((d) => t.byBdf(d)).filter((f): f is PciFunction => f !== undefined);
    structures.push({
      type: "RMRR",
      typeCode: 1,
      offset: 0,
      length: 0,
      segment: 0,
      base: hex(r.base),
      limit: hex(r.end),
      scopes: fns.map((fn) => scope("endpoint", 1, 0, 0, scopePath(fn))),
    });
  }
  const haw = Math.max(39, ...units.map((u) => Math.min(u.awBits, 52)));
  const ir = c.iommus.some((u) => u.interruptRemapping);
  return {
    signature: "DMAR",
    ...QEMU_SDT_HEADER,
    hostAddressWidth: haw,
    flags: { raw: ir ? 1 : 0, interruptRemapping: ir, x2apicOptOut: false, dmaControlOptIn: false },
    structures,
  };
}

/** The firmware's ACPI tables, by signature: DMAR for VT-d units, IVRS for AMD-Vi ones, none without units. */
export function buildAcpiTables(c: MachineConfig, t: PciTopology): Record<string, Uint8Array> {
  const kind = iommuKind(c);
  if (kind === null) return {};
  if (kind === "amd-vi") return { IVRS: encodeIvrs(buildIvrsTable(c, t)) };
  return { DMAR: encodeDmar(buildDmarTable(c, t)) };
}

/** Ranges the e820 map reports reserved for the IOMMUs: RMRR / IVMD unity ranges and AMD-Vi exclusion ranges. */
export function iommuReservedRanges(c: MachineConfig): { base: number; end: number }[] {
  const out = c.rmrrs.map((r) => ({ base: r.base, end: r.end }));
  for (const u of c.iommus) if (u.type === "amd-vi" && u.exclusion !== null) out.push({ base: u.exclusion.base, end: u.exclusion.base + u.exclusion.size - 1 });
  return out;
}
