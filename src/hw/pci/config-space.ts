/**
 * Configuration space of a simulated PCI function (PCI Local Bus 3.0 ch. 6, PCIe Base 6.0 ch. 7): the header,
 * the capability list this model places (PCI Express, MSI or MSI-X, the vendor-specific DMA descriptor), the ACS
 * and PASID extended capabilities, which bytes software may write, and BAR programming.
 */
import {
  PCI_VENDOR_ID,
  PCI_COMMAND,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_CLASS_REVISION,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_MFD,
  PCI_BASE_ADDRESS_0,
  PCI_PRIMARY_BUS,
  PCI_SECONDARY_BUS,
  PCI_SUBORDINATE_BUS,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_CAPABILITY_LIST,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_VNDR,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSIX,
  PCI_EXT_CAP_ID_ACS,
  PCI_EXT_CAP_ID_PASID,
  PCI_CFG_SPACE_SIZE,
  PCI_EXT_CAP_NEXT_SHIFT,
  PCI_EXT_CAP_VER_SHIFT,
  PCI_PASID_CAP,
  PCI_PASID_CAP_EXEC,
  PCI_PASID_CAP_PRIV,
  PCI_PASID_CAP_WIDTH_SHIFT,
  PCI_PASID_CTRL,
  PCI_EXP_TYPE_ENDPOINT,
  PCI_EXP_TYPE_ROOT_PORT,
  PCI_EXP_TYPE_UPSTREAM,
  PCI_EXP_TYPE_DOWNSTREAM,
  PCI_EXP_TYPE_PCI_BRIDGE,
  PCI_EXP_TYPE_RC_END,
  PCI_ACS_SV,
  PCI_ACS_TB,
  PCI_ACS_RR,
  PCI_ACS_CR,
  PCI_ACS_UF,
  PCI_ACS_DT,
} from "../../core/pci-regs.js";
import type { BarSpec, PciFunction } from "./function.js";

/** Offsets of the capabilities this model places. */
export const CAP_EXP_OFFSET = 0x40;
export const CAP_MSI_OFFSET = 0x80;
export const CAP_VNDR_OFFSET = 0xc0;
export const EXT_CAP_ACS_OFFSET = PCI_CFG_SPACE_SIZE;
/** The PASID capability follows ACS (8 bytes, no egress control vector) when the function has both. */
const ACS_LENGTH = 8;

/** Where the function's PASID capability sits: after ACS, or first in extended space; null without one. */
export function pasidCapOffset(fn: PciFunction): number | null {
  if (fn.pasidBits === 0) return null;
  return fn.acs ? EXT_CAP_ACS_OFFSET + ACS_LENGTH : EXT_CAP_ACS_OFFSET;
}
/**
 * The vendor-specific capability every simulated DMA-capable function carries (24 bytes): format 1 at +3, the
 * number of address bits the device drives in DMA at +4, log2 of its largest DMA segment at +5, and from +8 the
 * NUL-padded name of the driver that claims it. It stands for what a real kernel learns from the device id
 * (modules.alias, the driver's knowledge of its hardware; some devices report their reach in registers, like
 * AHCI's S64A).
 */
export const VNDR_DMA_FORMAT = 1;
export const VNDR_DMA_LENGTH = 24;

export function writable(fn: PciFunction, at: number): boolean {
  if (at === PCI_COMMAND || at === PCI_COMMAND + 1) return true;
  if (fn.msi === "msi" && at >= CAP_MSI_OFFSET + 2 && at < CAP_MSI_OFFSET + 14) return true;
  if (fn.msi === "msix" && (at === CAP_MSI_OFFSET + 3)) return true; // enable / function mask
  if (fn.acs && (at === EXT_CAP_ACS_OFFSET + 6 || at === EXT_CAP_ACS_OFFSET + 7)) return true;
  const pasid = pasidCapOffset(fn);
  if (pasid !== null && at === pasid + PCI_PASID_CTRL) return true; // enable, execute, privileged mode
  return false;
}

function put8(c: Uint8Array, o: number, v: number): void {
  c[o] = v & 0xff;
}
function put16(c: Uint8Array, o: number, v: number): void {
  put8(c, o, v);
  put8(c, o + 1, v >>> 8);
}
function put32(c: Uint8Array, o: number, v: number): void {
  put16(c, o, v & 0xffff);
  put16(c, o + 2, (v >>> 16) & 0xffff);
}

function pcieTypeOf(fn: PciFunction): number | null {
  switch (fn.type) {
    case "endpoint":
      return fn.address.bus === 0 ? PCI_EXP_TYPE_RC_END : PCI_EXP_TYPE_ENDPOINT;
    case "root-port":
      return PCI_EXP_TYPE_ROOT_PORT;
    case "upstream-port":
      return PCI_EXP_TYPE_UPSTREAM;
    case "downstream-port":
      return PCI_EXP_TYPE_DOWNSTREAM;
    case "pcie-pci-bridge":
      return PCI_EXP_TYPE_PCI_BRIDGE;
    default:
      return null;
  }
}

/** Writes the configuration header and capabilities of a function (BAR addresses are written by firmware). */
export function buildConfig(fn: PciFunction): void {
  const c = fn.config;
  put16(c, PCI_VENDOR_ID, fn.vendorId);
  put16(c, PCI_VENDOR_ID + 2, fn.deviceId);
  put8(c, PCI_CLASS_REVISION, fn.revision);
  put8(c, PCI_CLASS_REVISION + 1, fn.classCode & 0xff);
  put16(c, PCI_CLASS_REVISION + 2, (fn.classCode >>> 8) & 0xffff);
  const bridge = fn.secondaryBus !== null;
  put8(c, PCI_HEADER_TYPE, (bridge ? 1 : 0) | (fn.multifunction ? PCI_HEADER_TYPE_MFD : 0));
  if (bridge) {
    put8(c, PCI_PRIMARY_BUS, fn.address.bus);
    put8(c, PCI_SECONDARY_BUS, fn.secondaryBus ?? 0);
    put8(c, PCI_SUBORDINATE_BUS, fn.subordinateBus ?? 0);
  } else {
    put16(c, PCI_SUBSYSTEM_VENDOR_ID, fn.vendorId === 0x1b36 ? 0x1af4 : fn.vendorId);
    put16(c, PCI_SUBSYSTEM_VENDOR_ID + 2, 0x1100);
  }
  const caps: [number, (o: number) => void][] = [];
  const pt = pcieTypeOf(fn);
  if (pt !== null) {
    caps.push([CAP_EXP_OFFSET, (o) => {
      put8(c, o, PCI_CAP_ID_EXP);
      put16(c, o + 2, 0x2 | (pt << 4)); // capability version 2, device/port type
    }]);
  }
  if (fn.msi === "msi") {
    caps.push([CAP_MSI_OFFSET, (o) => {
      put8(c, o, PCI_CAP_ID_MSI);
      const mmc = Math.ceil(Math.log2(fn.msiVectors));
      put16(c, o + 2, 0x80 | (mmc << 1)); // 64-bit address capable, multiple message capable
    }]);
  } else if (fn.msi === "msix") {
    caps.push([CAP_MSI_OFFSET, (o) => {
      put8(c, o, PCI_CAP_ID_MSIX);
      put16(c, o + 2, (fn.msiVectors - 1) & 0x7ff);
      put32(c, o + 4, 0); // table at BAR 0, offset 0
      put32(c, o + 8, 0x800); // pending bit array at BAR 0, offset 0x800
    }]);
  }
  const dmaCapable = fn.type === "endpoint" || fn.type === "pci";
  if (dmaCapable) {
    caps.push([CAP_VNDR_OFFSET, (o) => {
      put8(c, o, PCI_CAP_ID_VNDR);
      put8(c, o + 2, VNDR_DMA_LENGTH);
      put8(c, o + 3, VNDR_DMA_FORMAT);
      put8(c, o + 4, fn.dmaBits);
      put8(c, o + 5, Math.round(Math.log2(fn.maxSegmentSize)));
      const drv = fn.driver ?? "";
      for (let i = 0; i < Math.min(drv.length, VNDR_DMA_LENGTH - 9); i++) put8(c, o + 8 + i, drv.charCodeAt(i));
    }]);
  }
  if (caps.length > 0) {
    put16(c, PCI_STATUS, PCI_STATUS_CAP_LIST);
    put8(c, PCI_CAPABILITY_LIST, caps[0]?.[0] ?? 0);
    caps.forEach(([o, write], i) => {
      write(o);
      put8(c, o + 1, caps[i + 1]?.[0] ?? 0);
    });
  }
  const ext: [number, number, (o: number) => void][] = [];
  if (fn.acs) {
    ext.push([EXT_CAP_ACS_OFFSET, PCI_EXT_CAP_ID_ACS, (o) => {
      const portCaps = PCI_ACS_SV | PCI_ACS_TB | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF | PCI_ACS_DT; // as QEMU's ports
      put16(c, o + 4, fn.type === "endpoint" ? PCI_ACS_RR | PCI_ACS_CR : portCaps);
      put16(c, o + 6, 0); // control: the kernel enables what it wants
    }]);
  }
  const pasid = pasidCapOffset(fn);
  if (pasid !== null) {
    ext.push([pasid, PCI_EXT_CAP_ID_PASID, (o) => {
      put16(c, o + PCI_PASID_CAP, PCI_PASID_CAP_EXEC | PCI_PASID_CAP_PRIV | (fn.pasidBits << PCI_PASID_CAP_WIDTH_SHIFT));
      put16(c, o + PCI_PASID_CTRL, 0); // the kernel enables it (pci_enable_pasid)
    }]);
  }
  ext.forEach(([o, id, write], i) => {
    // Header: id, version 1, the next capability's offset (0 ends the list).
    put32(c, o, (id | (1 << PCI_EXT_CAP_VER_SHIFT) | ((ext[i + 1]?.[0] ?? 0) << PCI_EXT_CAP_NEXT_SHIFT)) >>> 0);
    write(o);
  });
}

/** Writes a BAR's address into configuration space (firmware's job). */
export function programBar(fn: PciFunction, index: number, bar: BarSpec, base: number): void {
  const o = PCI_BASE_ADDRESS_0 + 4 * index;
  const lo = bar.kind === "io" ? (base | 1) >>> 0 : (base | (bar.kind === "mem64" ? 0x4 : 0)) >>> 0;
  put32(fn.config, o, lo % 2 ** 32);
  if (bar.kind === "mem64") put32(fn.config, o + 4, Math.floor(base / 2 ** 32));
}
