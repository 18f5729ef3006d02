/**
 * The few PCI configuration-space facts the doctor needs, read from the bytes sysfs exposes in
 * /sys/bus/pci/devices/X/config: header type, the PCI Express port type, and the ACS extended capability.
 * Unprivileged readers get only the first 64 bytes, so anything past the header may be unknown.
 */

import { PCI_ACS_CR, PCI_ACS_DT, PCI_ACS_EC, PCI_ACS_RR, PCI_ACS_SV, PCI_ACS_TB, PCI_ACS_UF, PCI_CAP_ID_EXP, PCI_CFG_SPACE_SIZE, PCI_EXT_CAP_ID_ACS, pciExtCapId, pciExtCapNext } from "../core/pci-regs.js";


/** ACS Capability / Control register bits (PCIe Base 6.0 §7.7.11.2, §7.7.11.3). */
export const ACS_BITS = {
  SV: PCI_ACS_SV, // Source Validation
  TB: PCI_ACS_TB, // Translation Blocking
  RR: PCI_ACS_RR, // P2P Request Redirect
  CR: PCI_ACS_CR, // P2P Completion Redirect
  UF: PCI_ACS_UF, // Upstream Forwarding
  EC: PCI_ACS_EC, // P2P Egress Control
  DT: PCI_ACS_DT, // Direct Translated P2P
} as const;

export type AcsBit = keyof typeof ACS_BITS;

/** The controls Linux requires on a path before it trusts ACS for isolation (pci_acs_enabled: SV|RR|CR|UF). */
export const ACS_ISOLATION: AcsBit[] = ["SV", "RR", "CR", "UF"];

export interface AcsInfo {
  /** Offset of the ACS extended capability in config space. */
  offset: number;
  /** Controls the device implements. */
  capable: AcsBit[];
  /** Controls currently enabled. */
  enabled: AcsBit[];
  /**
   * True when every isolation control the device implements is enabled. Controls a device does not implement
   * do not count against it (a multifunction endpoint has no Upstream Forwarding, for example).
   */
  isolating: boolean;
}

/** PCIe Device/Port Type field of the PCI Express Capabilities register (PCIe Base 6.0 §7.5.3.2). */
const PORT_TYPES: Record<number, string> = {
  0x0: "endpoint",
  0x1: "legacy-endpoint",
  0x4: "root-port",
  0x5: "upstream-port",
  0x6: "downstream-port",
  0x7: "pcie-to-pci-bridge",
  0x8: "pci-to-pcie-bridge",
  0x9: "rc-integrated-endpoint",
  0xa: "rc-event-collector",
};

export interface ConfigFacts {
  /** How many bytes of config space were readable (64 for unprivileged readers, 256 or 4096 for root). */
  bytes: number;
  /** Header type 0 (endpoint), 1 (PCI-to-PCI bridge), 2 (CardBus), without the multifunction bit. */
  headerType: number | null;
  multifunction: boolean | null;
  /** PCIe port type, or null for conventional PCI or when the capability list is not readable. */
  pcieType: string | null;
  /** The ACS capability; null when absent. */
  acs: AcsInfo | null;
  /** True when extended config space (≥ 0x100) was readable, so `acs: null` means "no ACS". */
  extendedReadable: boolean;
}

const u8 = (b: Uint8Array, o: number): number => b[o] ?? 0;
const u16 = (b: Uint8Array, o: number): number => u8(b, o) | (u8(b, o + 1) << 8);
const u32 = (b: Uint8Array, o: number): number => (u16(b, o) | (u16(b, o + 2) << 16)) >>> 0;

function bits(v: number): AcsBit[] {
  return (Object.keys(ACS_BITS) as AcsBit[]).filter((k) => (v & ACS_BITS[k]) !== 0);
}

function pcieType(cfg: Uint8Array): string | null {
  if (cfg.length < 0x40 || (u16(cfg, 0x06) & 0x10) === 0) return null; // Status: Capabilities List
  let ptr = u8(cfg, 0x34) & 0xfc;
  for (let guard = 0; ptr >= 0x40 && ptr + 4 <= cfg.length && guard < 48; guard++) {
    if (u8(cfg, ptr) === PCI_CAP_ID_EXP) {
      const type = (u16(cfg, ptr + 2) >> 4) & 0xf;
      return PORT_TYPES[type] ?? `type-${type}`;
    }
    ptr = u8(cfg, ptr + 1) & 0xfc;
  }
  return null;
}

function findAcs(cfg: Uint8Array): AcsInfo | null {
  let off = PCI_CFG_SPACE_SIZE;
  for (let guard = 0; off >= PCI_CFG_SPACE_SIZE && off + 8 <= cfg.length && guard < 256; guard++) {
    const header = u32(cfg, off);
    if (header === 0 || header === 0xffffffff) return null;
    if (pciExtCapId(header) === PCI_EXT_CAP_ID_ACS) {
      const cap = u16(cfg, off + 4);
      const ctl = u16(cfg, off + 6);
      const capable = bits(cap);
      const enabled = bits(ctl & cap);
      const isolating = ACS_ISOLATION.every((k) => (cap & ACS_BITS[k]) === 0 || (ctl & ACS_BITS[k]) !== 0);
      return { offset: off, capable, enabled, isolating };
    }
    off = pciExtCapNext(header);
  }
  return null;
}

/** Decodes what the readable part of config space tells. Never throws: short or odd bytes give nulls. */
export function configFacts(cfg: Uint8Array | null): ConfigFacts {
  if (cfg === null || cfg.length < 0x10) {
    return { bytes: cfg?.length ?? 0, headerType: null, multifunction: null, pcieType: null, acs: null, extendedReadable: false };
  }
  const ht = u8(cfg, 0x0e);
  const extendedReadable = cfg.length > PCI_CFG_SPACE_SIZE;
  return {
    bytes: cfg.length,
    headerType: ht & 0x7f,
    multifunction: (ht & 0x80) !== 0,
    pcieType: pcieType(cfg),
    acs: extendedReadable ? findAcs(cfg) : null,
    extendedReadable,
  };
}
