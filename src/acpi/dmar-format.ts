/**
 * The ACPI DMAR table's layout (Intel VT-d specification chapter 8): structure and device-scope type codes, fixed
 * sizes, flag bits, and the decoded form that decodeDmar returns and encodeDmar takes.
 */
import type { SdtHeader } from "./sdt.js";

/** SDT header (36 bytes) + Host Address Width + Flags + 10 reserved bytes (VT-d spec §8.1). */
export const DMAR_HEADER_SIZE = 48;

/** DMAR Flags (VT-d spec §8.1). */
export const DMAR_INTR_REMAP = 1 << 0;
export const DMAR_X2APIC_OPT_OUT = 1 << 1;
export const DMA_CTRL_PLATFORM_OPT_IN_FLAG = 1 << 2;

/** Remapping structure types (VT-d spec §8.2). */
export const DMAR_TYPE_DRHD = 0;
export const DMAR_TYPE_RMRR = 1;
export const DMAR_TYPE_ATSR = 2;
export const DMAR_TYPE_RHSA = 3;
export const DMAR_TYPE_ANDD = 4;
export const DMAR_TYPE_SATC = 5;
export const DMAR_TYPE_SIDP = 6;

/** Size of each structure's fixed part, its 4-byte Type/Length header included (VT-d spec §8.3–§8.9). */
export const DRHD_FIXED_SIZE = 16;
export const RMRR_FIXED_SIZE = 24;
export const ATSR_FIXED_SIZE = 8;
export const RHSA_FIXED_SIZE = 20;
export const ANDD_FIXED_SIZE = 8;
export const SATC_FIXED_SIZE = 8;
export const SIDP_FIXED_SIZE = 8;

/** DRHD Flags bit 0 (VT-d spec §8.3): the unit covers every device of its segment not claimed by another. */
export const DRHD_INCLUDE_PCI_ALL = 1 << 0;
/** ATSR Flags bit 0 (VT-d spec §8.5): every root port of the segment supports ATS. */
export const ATSR_ALL_PORTS = 1 << 0;
/** SATC Flags bit 0 (VT-d spec §8.8): the devices listed must have ATS enabled. */
export const SATC_ATC_REQUIRED = 1 << 0;

/** Device scope entry types (VT-d spec §8.3.1). */
export const DMAR_SCOPE_ENDPOINT = 1;
export const DMAR_SCOPE_BRIDGE = 2;
export const DMAR_SCOPE_IOAPIC = 3;
export const DMAR_SCOPE_HPET = 4;
export const DMAR_SCOPE_ACPI_NAMESPACE = 5;
/** Type, Length, Flags, Reserved, Enumeration ID, Start Bus Number (VT-d spec §8.3.1). */
export const DMAR_SCOPE_FIXED_SIZE = 6;

/** Device scope Flags byte (offset 2; reserved before VT-d spec revision 4.0, §8.3.1). */
export const SCOPE_REQ_WO_PASID_NESTED_NOTALLOWED = 1 << 0;
export const SCOPE_REQ_WO_PASID_PWSNP_NOTALLOWED = 1 << 1;
export const SCOPE_REQ_WO_PASID_PGSNP_NOTALLOWED = 1 << 2;
export const SCOPE_ATC_HARDENED = 1 << 3;
export const SCOPE_ATC_REQUIRED = 1 << 4;

export type DmarScopeType = "endpoint" | "bridge" | "ioapic" | "hpet" | "acpi-namespace" | "unknown";

export interface DmarPathEntry {
  device: number;
  function: number;
}

export interface DmarScopeFlags {
  raw: number;
  reqWoPasidNestedNotAllowed: boolean;
  reqWoPasidPwsnpNotAllowed: boolean;
  reqWoPasidPgsnpNotAllowed: boolean;
  atcHardened: boolean;
  atcRequired: boolean;
}

export interface DmarDeviceScope {
  type: DmarScopeType;
  typeCode: number;
  /** Byte offset of the entry in the table (informational; encode recomputes it). */
  offset: number;
  /** Entry Length as stored (informational; encode recomputes it). */
  length: number;
  /** The Flags byte (offset 2), present only when nonzero. */
  flags?: DmarScopeFlags;
  /** The Reserved byte (offset 3), present only when nonzero. */
  reserved?: number;
  /** IOAPIC id, HPET number or ACPI namespace device number; reserved for PCI scopes. */
  enumerationId: number;
  startBus: number;
  /** Hierarchical path from the start bus: one (device, function) pair per bridge crossed. */
  path: DmarPathEntry[];
  /** A lone byte after the last path pair, when the entry length is odd. */
  pathTrailingByte?: number;
}

interface StructureBase {
  typeCode: number;
  /** Byte offset of the structure in the table (informational; encode recomputes it). */
  offset: number;
  /** Length as stored (informational; encode recomputes it). */
  length: number;
}

/** DMA Remapping Hardware Unit Definition (VT-d spec §8.3). */
export interface DmarDrhd extends StructureBase {
  type: "DRHD";
  flags: { raw: number; includePciAll: boolean };
  /** Size field: the register set spans 2^raw 4 KiB pages; `bytes` is that size (reserved, so 0, before rev 3). */
  size: { raw: number; bytes: string };
  segment: number;
  registerBase: string;
  scopes: DmarDeviceScope[];
}

/** Reserved Memory Region Reporting (VT-d spec §8.4). */
export interface DmarRmrr extends StructureBase {
  type: "RMRR";
  reserved?: number;
  segment: number;
  base: string;
  /** Last byte of the region (inclusive). */
  limit: string;
  scopes: DmarDeviceScope[];
}

/** Root Port ATS Capability Reporting (VT-d spec §8.5). */
export interface DmarAtsr extends StructureBase {
  type: "ATSR";
  flags: { raw: number; allPorts: boolean };
  reserved?: number;
  segment: number;
  scopes: DmarDeviceScope[];
}

/** Remapping Hardware Static Affinity (VT-d spec §8.6). */
export interface DmarRhsa extends StructureBase {
  type: "RHSA";
  reserved?: number;
  registerBase: string;
  proximityDomain: number;
  /** Bytes after the 20-byte structure, when its length says there are any (hex). */
  extra?: string;
}

/** ACPI Name-space Device Declaration (VT-d spec §8.7). */
export interface DmarAndd extends StructureBase {
  type: "ANDD";
  /** The three reserved bytes as one little-endian number, present only when nonzero. */
  reserved?: number;
  deviceNumber: number;
  /** ACPI object name, e.g. "\\_SB.PCI0.I2C0" (bytes before the first NUL). */
  name: string;
  /** Bytes after the name (hex), when they are anything but the single NUL terminator. */
  nameTail?: string;
}

/** SoC Integrated Address Translation Cache Reporting (VT-d spec §8.8). */
export interface DmarSatc extends StructureBase {
  type: "SATC";
  flags: { raw: number; atcRequired: boolean };
  reserved?: number;
  segment: number;
  scopes: DmarDeviceScope[];
}

/** SoC Integrated Device Property Reporting (VT-d spec §8.9). */
export interface DmarSidp extends StructureBase {
  type: "SIDP";
  reserved?: number;
  segment: number;
  scopes: DmarDeviceScope[];
}

/** A structure type this codec does not know: its body (after Type and Length) kept as hex. */
export interface DmarUnknown extends StructureBase {
  type: "unknown";
  data: string;
}

export type DmarStructure = DmarDrhd | DmarRmrr | DmarAtsr | DmarRhsa | DmarAndd | DmarSatc | DmarSidp | DmarUnknown;

export interface DmarFlags {
  raw: number;
  interruptRemapping: boolean;
  x2apicOptOut: boolean;
  dmaControlOptIn: boolean;
}

export interface DmarTable extends SdtHeader {
  signature: "DMAR";
  /** Maximum DMA physical addressability in bits (the stored field plus one). */
  hostAddressWidth: number;
  flags: DmarFlags;
  /** The 10 reserved bytes at offset 38 (hex), present only when nonzero. */
  reserved?: string;
  structures: DmarStructure[];
  /** 1–3 bytes after the last structure, too few to form one (hex). */
  trailing?: string;
}

export interface DmarEncodeOptions {
  /** Write the stored checksum byte instead of computing it (reproduces a table whose checksum was wrong). */
  keepChecksum?: boolean;
}

export const DMAR_STRUCTURE_CODES: Record<Exclude<DmarStructure["type"], "unknown">, number> = {
  DRHD: DMAR_TYPE_DRHD,
  RMRR: DMAR_TYPE_RMRR,
  ATSR: DMAR_TYPE_ATSR,
  RHSA: DMAR_TYPE_RHSA,
  ANDD: DMAR_TYPE_ANDD,
  SATC: DMAR_TYPE_SATC,
  SIDP: DMAR_TYPE_SIDP,
};

export const DMAR_SCOPE_CODES: Record<Exclude<DmarScopeType, "unknown">, number> = {
  endpoint: DMAR_SCOPE_ENDPOINT,
  bridge: DMAR_SCOPE_BRIDGE,
  ioapic: DMAR_SCOPE_IOAPIC,
  hpet: DMAR_SCOPE_HPET,
  "acpi-namespace": DMAR_SCOPE_ACPI_NAMESPACE,
};

export function scopeTypeName(code: number): DmarScopeType {
  for (const [name, c] of Object.entries(DMAR_SCOPE_CODES)) if (c === code) return name as DmarScopeType;
  return "unknown";
}

export function bytesToHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}
