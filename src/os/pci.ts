/**
 * The kernel's PCI core: enumerates the machine through configuration space reads, the way pci_scan_child_bus
 * does (every device number of a bus, functions 1-7 only when function 0 says multi-function, then the buses
 * behind the bridges found, with the bus numbers firmware programmed), reads the capabilities it needs (PCI
 * Express port type, ACS, MSI/MSI-X, the simulated devices' DMA descriptor) and enables ACS when the IOMMU asked
 * for it (pci_request_acs, as detect_intel_iommu does).
 */
import type { MachinePort } from "./port.js";
import {
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_VNDR,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSIX,
  PCI_EXT_CAP_ID_ACS,
  PCI_EXP_TYPE_ENDPOINT,
  PCI_EXP_TYPE_LEG_END,
  PCI_EXP_TYPE_ROOT_PORT,
  PCI_EXP_TYPE_UPSTREAM,
  PCI_EXP_TYPE_DOWNSTREAM,
  PCI_EXP_TYPE_PCI_BRIDGE,
  PCI_EXP_TYPE_PCIE_BRIDGE,
  PCI_EXP_TYPE_RC_END,
  PCI_EXP_TYPE_RC_EC,
  PCI_ACS_SV,
  PCI_ACS_RR,
  PCI_ACS_CR,
  PCI_ACS_UF,
  PCI_ACS_EC,
  REQ_ACS_FLAGS,
  PCI_EXT_CAP_ID_PASID,
  PCI_CFG_SPACE_SIZE,
  pciExtCapId,
  pciExtCapNext,
  PCI_PASID_CAP,
  PCI_PASID_CAP_PRIV,
  PCI_PASID_CAP_WIDTH_MASK,
  PCI_PASID_CAP_WIDTH_SHIFT,
  PCI_PASID_CTRL,
  PCI_PASID_CTRL_ENABLE,
  PCI_PASID_CTRL_PRIV,
} from "../core/pci-regs.js";


/** What Linux requires on a path before it trusts ACS for isolation (drivers/iommu/iommu.c, REQ_ACS_FLAGS). */

export interface KPciDev {
  rid: number;
  bus: number;
  devfn: number;
  /** "0000:00:02.0" */
  name: string;
  vendor: number;
  device: number;
  classCode: number;
  revision: number;
  headerType: number;
  multifunction: boolean;
  /** PCIe Device/Port Type, or null for conventional PCI. */
  pcieType: number | null;
  /** Offset of the ACS capability, 0 when none. */
  acsCap: number;
  /** Offset of the PASID capability (pdev->pasid_cap), 0 when none. */
  pasidCap: number;
  secondary: number | null;
  subordinate: number | null;
  /** The bridge above (bus->self), null on the root bus. */
  parent: KPciDev | null;
  msiCap: number;
  msixCap: number;
  msiVectors: number;
  /** From the device's DMA descriptor capability: address bits and log2 of the largest segment; null without. */
  dmaBits: number | null;
  maxSegLog: number | null;
  /** Driver that claims it (null: none). */
  driver: string | null;
  /** devfns (same bus) of quirk DMA aliases: none in this model's devices. */
  dmaAliasDevfns: number[];
}

function hx(n: number, w: number): string {
  return n.toString(16).padStart(w, "0");
}

export function pciName(rid: number): string {
  return `0000:${hx(rid >>> 8, 2)}:${hx((rid >>> 3) & 0x1f, 2)}.${rid & 7}`;
}

/** Capability offsets in the standard list, by id. */
function capabilities(port: MachinePort, rid: number): Map<number, number> {
  const out = new Map<number, number>();
  if ((port.configRead(rid, 0x06, 2) & 0x10) === 0) return out;
  let p = port.configRead(rid, 0x34, 1) & 0xfc;
  for (let guard = 0; p >= 0x40 && guard < 48; guard++) {
    const id = port.configRead(rid, p, 1);
    if (!out.has(id)) out.set(id, p);
    p = port.configRead(rid, p + 1, 1) & 0xfc;
  }
  return out;
}

function extCapability(port: MachinePort, rid: number, id: number): number {
  let off = PCI_CFG_SPACE_SIZE;
  for (let guard = 0; off >= PCI_CFG_SPACE_SIZE && guard < 64; guard++) {
    const h = port.configRead(rid, off, 4);
    if (h === 0 || h === 0xffffffff) return 0;
    if (pciExtCapId(h) === id) return off;
    off = pciExtCapNext(h);
  }
  return 0;
}

/** Drivers the simulated kernel binds by class when the device names none (PCIe ports). */
function classDriver(d: KPciDev): string | null {
  if (d.pcieType === PCI_EXP_TYPE_ROOT_PORT || d.pcieType === PCI_EXP_TYPE_DOWNSTREAM || d.pcieType === PCI_EXP_TYPE_UPSTREAM) return "pcieport";
  return null;
}

function readDevice(port: MachinePort, rid: number, parent: KPciDev | null): KPciDev {
  const ht = port.configRead(rid, 0x0e, 1);
  const caps = capabilities(port, rid);
  const exp = caps.get(PCI_CAP_ID_EXP);
  const pcieType = exp === undefined ? null : (port.configRead(rid, exp + 2, 2) >>> 4) & 0xf;
  const msi = caps.get(PCI_CAP_ID_MSI) ?? 0;
  const msix = caps.get(PCI_CAP_ID_MSIX) ?? 0;
  const ctl = msi !== 0 ? port.configRead(rid, msi + 2, 2) : msix !== 0 ? port.configRead(rid, msix + 2, 2) : 0;
  const vndr = caps.get(PCI_CAP_ID_VNDR);
  let dmaBits: number | null = null;
  let maxSegLog: number | null = null;
  let driver: string | null = null;
  if (vndr !== undefined && port.configRead(rid, vndr + 3, 1) === 1) {
    dmaBits = port.configRead(rid, vndr + 4, 1);
    maxSegLog = port.configRead(rid, vndr + 5, 1);
    let name = "";
    const len = port.configRead(rid, vndr + 2, 1);
    for (let i = 8; i < len; i++) {
      const ch = port.configRead(rid, vndr + i, 1);
      if (ch === 0) break;
      name += String.fromCharCode(ch);
    }
    driver = name === "" ? null : name;
  }
  const bridge = (ht & 0x7f) === 1;
  const cls = port.configRead(rid, 0x08, 4);
  const d: KPciDev = {
    rid,
    bus: rid >>> 8,
    devfn: rid & 0xff,
    name: pciName(rid),
    vendor: port.configRead(rid, 0, 2),
    device: port.configRead(rid, 2, 2),
    classCode: cls >>> 8,
    revision: cls & 0xff,
    headerType: ht & 0x7f,
    multifunction: (ht & 0x80) !== 0,
    pcieType,
    acsCap: exp === undefined ? 0 : extCapability(port, rid, PCI_EXT_CAP_ID_ACS),
    pasidCap: exp === undefined ? 0 : extCapability(port, rid, PCI_EXT_CAP_ID_PASID),
    secondary: bridge ? port.configRead(rid, 0x19, 1) : null,
    subordinate: bridge ? port.configRead(rid, 0x1a, 1) : null,
    parent,
    msiCap: msi,
    msixCap: msix,
    msiVectors: msi !== 0 ? 1 << ((ctl >>> 1) & 7) : msix !== 0 ? (ctl & 0x7ff) + 1 : 0,
    dmaBits,
    maxSegLog,
    driver,
    dmaAliasDevfns: [],
  };
  d.driver ??= classDriver(d);
  return d;
}

/** Scans from bus 0; returns devices in the order Linux adds them (a bus, then the buses behind its bridges). */
export function scanPci(port: MachinePort): KPciDev[] {
  const out: KPciDev[] = [];
  const scanBus = (bus: number, self: KPciDev | null, depth: number): void => {
    const here: KPciDev[] = [];
    for (let dev = 0; dev < 32; dev++) {
      const rid0 = (bus << 8) | (dev << 3);
      if (port.configRead(rid0, 0, 2) === 0xffff) continue;
      const mf = (port.configRead(rid0, 0x0e, 1) & 0x80) !== 0;
      for (let fn = 0; fn < (mf ? 8 : 1); fn++) {
        const rid = rid0 | fn;
        if (port.configRead(rid, 0, 2) === 0xffff) continue;
        here.push(readDevice(port, rid, self));
      }
    }
    out.push(...here);
    if (depth > 32) return;
    for (const d of here) if (d.secondary !== null && d.secondary > bus) scanBus(d.secondary, d, depth + 1);
  };
  scanBus(0, null, 0);
  return out;
}

/** pci_std_enable_acs: turn on the isolation controls the device implements. */
export function enableAcs(port: MachinePort, d: KPciDev): void {
  if (d.acsCap === 0) return;
  const cap = port.configRead(d.rid, d.acsCap + 4, 2);
  let ctrl = port.configRead(d.rid, d.acsCap + 6, 2);
  ctrl |= cap & (PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF);
  port.configWrite(d.rid, d.acsCap + 6, 2, ctrl);
}

/** pci_acs_flags_enabled: controls missing from the capability count as hard-wired on (except egress control). */
function acsFlagsEnabled(port: MachinePort, d: KPciDev, flags: number): boolean {
  if (d.acsCap === 0) return false;
  const cap = port.configRead(d.rid, d.acsCap + 4, 2);
  const want = flags & (cap | PCI_ACS_EC);
  const ctrl = port.configRead(d.rid, d.acsCap + 6, 2);
  return (ctrl & want) === want;
}

/** pci_acs_enabled (drivers/pci/pci.c), without device-specific quirks. */
export function acsEnabled(port: MachinePort, d: KPciDev, flags = REQ_ACS_FLAGS): boolean {
  if (d.pcieType === null) return false; // conventional PCI never isolates
  switch (d.pcieType) {
    case PCI_EXP_TYPE_PCIE_BRIDGE:
    case PCI_EXP_TYPE_PCI_BRIDGE:
    case PCI_EXP_TYPE_RC_EC:
      return false;
    case PCI_EXP_TYPE_DOWNSTREAM:
    case PCI_EXP_TYPE_ROOT_PORT:
      return acsFlagsEnabled(port, d, flags);
    case PCI_EXP_TYPE_ENDPOINT:
    case PCI_EXP_TYPE_UPSTREAM:
    case PCI_EXP_TYPE_LEG_END:
    case PCI_EXP_TYPE_RC_END:
      if (!d.multifunction) break;
      return acsFlagsEnabled(port, d, flags);
  }
  return true;
}

/** pci_acs_path_enabled(start, NULL): every device from `start` up to the root bus has ACS. */
export function acsPathEnabled(port: MachinePort, start: KPciDev, flags = REQ_ACS_FLAGS): boolean {
  for (let d: KPciDev | null = start; d !== null; d = d.parent) {
    if (!acsEnabled(port, d, flags)) return false;
  }
  return true;
}

/**
 * pci_for_each_dma_alias: the device's own id, its quirk aliases, then what each bridge above makes of its
 * requests (PCIe-to-PCI bridges: secondary bus, devfn 0; conventional bridges: their own id; PCIe ports: nothing).
 */
export function dmaAliases(d: KPciDev): { via: KPciDev; rid: number }[] {
  const out: { via: KPciDev; rid: number }[] = [{ via: d, rid: d.rid }];
  for (const devfn of d.dmaAliasDevfns) out.push({ via: d, rid: (d.bus << 8) | devfn });
  for (let up = d.parent; up !== null; up = up.parent) {
    if (up.pcieType !== null) {
      if (up.pcieType === PCI_EXP_TYPE_ROOT_PORT || up.pcieType === PCI_EXP_TYPE_UPSTREAM || up.pcieType === PCI_EXP_TYPE_DOWNSTREAM) continue;
      if (up.pcieType === PCI_EXP_TYPE_PCI_BRIDGE) {
        out.push({ via: up, rid: (up.secondary ?? 0) << 8 });
        continue;
      }
      if (up.pcieType === PCI_EXP_TYPE_PCIE_BRIDGE) out.push({ via: up, rid: up.rid });
      continue;
    }
    out.push({ via: up, rid: up.rid });
  }
  return out;
}

/** Two devices alias each other when either lists the other's devfn as a quirk alias (same bus). */
export function devsAreDmaAliases(a: KPciDev, b: KPciDev): boolean {
  return a.bus === b.bus && (a.dmaAliasDevfns.includes(b.devfn) || b.dmaAliasDevfns.includes(a.devfn));
}

/** pci_max_pasids (drivers/pci/ats.c): how many PASIDs the function can carry, 0 without a PASID capability. */
export function pciMaxPasids(port: MachinePort, d: KPciDev): number {
  if (d.pasidCap === 0) return 0;
  const cap = port.configRead(d.rid, d.pasidCap + PCI_PASID_CAP, 2);
  return 2 ** ((cap & PCI_PASID_CAP_WIDTH_MASK) >>> PCI_PASID_CAP_WIDTH_SHIFT);
}

/**
 * pci_enable_pasid: sets PASID Enable (and Privileged Mode Enable when asked and supported) in the function's
 * PASID Control register; returns false when it has no PASID capability.
 */
export function pciEnablePasid(port: MachinePort, d: KPciDev, privileged = false): boolean {
  if (d.pasidCap === 0) return false;
  const cap = port.configRead(d.rid, d.pasidCap + PCI_PASID_CAP, 2);
  const priv = privileged && (cap & PCI_PASID_CAP_PRIV) !== 0 ? PCI_PASID_CTRL_PRIV : 0;
  port.configWrite(d.rid, d.pasidCap + PCI_PASID_CTRL, 2, PCI_PASID_CTRL_ENABLE | priv);
  return true;
}

/** Whether the function's PASID Control register has PASID Enable set (what the device checks before a PASID prefix). */
export function pciPasidEnabled(port: MachinePort, d: KPciDev): boolean {
  return d.pasidCap !== 0 && (port.configRead(d.rid, d.pasidCap + PCI_PASID_CTRL, 2) & PCI_PASID_CTRL_ENABLE) !== 0;
}
