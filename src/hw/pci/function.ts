/** A PCI function of the simulated machine as configured (input) and as built (with its configuration space). */
import type { PciAddress } from "../../core/pci.js";

export type PciFunctionType =
  | "host-bridge"
  | "endpoint"
  | "pci"
  | "root-port"
  | "upstream-port"
  | "downstream-port"
  | "pcie-pci-bridge"
  | "pci-bridge";

export const PCI_FUNCTION_TYPES: readonly PciFunctionType[] = [
  "host-bridge", "endpoint", "pci", "root-port", "upstream-port", "downstream-port", "pcie-pci-bridge", "pci-bridge",
];

export type MsiKind = "none" | "msi" | "msix";

/** One BAR as configured: a memory (32- or 64-bit) or I/O window. */
export interface BarSpec {
  kind: "mem32" | "mem64" | "io";
  size: number;
  /** Address; null lets the firmware place it. */
  base: number | null;
}

/** A function as the machine configuration declares it (before validation). */
export interface PciFunctionInput {
  bdf?: unknown;
  type?: unknown;
  /** "vvvv:dddd" */
  id?: unknown;
  /** 24-bit class code, "0x020000". */
  class?: unknown;
  name?: unknown;
  /** Driver the simulated kernel binds ("e1000e"), or null for none. */
  driver?: unknown;
  secondaryBus?: unknown;
  /** An ACS extended capability (ports and multi-function endpoints). */
  acs?: unknown;
  msi?: unknown;
  msiVectors?: unknown;
  /** Address bits the device can drive in DMA (its driver's DMA mask): 32..64. */
  dmaBits?: unknown;
  /** Max PASID Width of a PASID extended capability (1..20); 0 or absent: no PASID capability. */
  pasidBits?: unknown;
  /** Largest DMA segment its driver accepts (dma_set_max_seg_size), bytes; Linux's PCI default is 64 KiB. */
  maxSegmentSize?: unknown;
  /** Quirk: other functions (device.function on the same bus) whose requester id it also uses. */
  dmaAliases?: unknown;
  multifunction?: unknown;
  bars?: unknown;
}

export interface PciFunction {
  readonly index: number;
  readonly address: PciAddress;
  readonly bdf: string;
  readonly rid: number;
  readonly type: PciFunctionType;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly classCode: number;
  readonly revision: number;
  readonly name: string;
  readonly driver: string | null;
  readonly secondaryBus: number | null;
  /** Highest bus number behind this bridge (computed). */
  subordinateBus: number | null;
  readonly acs: boolean;
  readonly msi: MsiKind;
  readonly msiVectors: number;
  readonly dmaBits: number;
  /** Max PASID Width its PASID capability advertises; 0 without one. */
  readonly pasidBits: number;
  readonly maxSegmentSize: number;
  /** devfns on the same bus this function also issues requests as. */
  readonly dmaAliasDevfns: number[];
  multifunction: boolean;
  readonly bars: BarSpec[];
  /** Upstream bridge, null on bus 0. */
  parent: PciFunction | null;
  readonly children: PciFunction[];
  /** Configuration space (256 bytes conventional, 4096 PCI Express). */
  readonly config: Uint8Array;
}

export function isBridgeType(t: PciFunctionType): boolean {
  return t === "root-port" || t === "upstream-port" || t === "downstream-port" || t === "pcie-pci-bridge" || t === "pci-bridge";
}

export function isPcieType(t: PciFunctionType): boolean {
  return t !== "pci" && t !== "pci-bridge" && t !== "host-bridge";
}
