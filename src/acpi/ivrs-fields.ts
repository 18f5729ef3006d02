/** IVRS bit fields and identifiers (AMD IOMMU specification 48882, §5.2): raw value → named bits, and back to text. */
import {
  IVHD_DEV_ACPI_HID, IVHD_DEV_ALIAS, IVHD_DEV_ALIAS_RANGE, IVHD_DEV_ALL, IVHD_DEV_EXT_SELECT,
  IVHD_DEV_EXT_SELECT_RANGE, IVHD_DEV_PAD4, IVHD_DEV_PAD8, IVHD_DEV_RANGE_END, IVHD_DEV_SELECT,
  IVHD_DEV_SELECT_RANGE_START, IVHD_DEV_SPECIAL, IVHD_TYPE_10H, IVHD_TYPE_11H, IVHD_TYPE_40H, IVMD_TYPE_ALL,
  IVMD_TYPE_RANGE, IVMD_TYPE_SELECT, UID_IS_INTEGER, type DataSetting, type ExtendedSetting, type IvInfo,
  type IvhdAttributes, type IvhdEntryType, type IvhdFeatures, type IvhdFlags, type IvhdInfo, type IvmdFlags,
} from "./ivrs-format.js";

// Bit fields: raw value → named bits. Exported so code that builds tables can fill the decoded form.

const bit = (v: number, n: number): boolean => ((v >>> n) & 1) === 1;
const field = (v: number, lsb: number, width: number): number => (v >>> lsb) & ((1 << width) - 1);

export function ivInfoOf(raw: number): IvInfo {
  const gva = field(raw, 5, 3);
  return {
    raw: raw >>> 0,
    efrSupported: bit(raw, 0),
    dmaRemapSupported: bit(raw, 1),
    guestVirtualAddressSize: gva === 2 ? 48 : gva === 3 ? 57 : null,
    physicalAddressSize: field(raw, 8, 7),
    virtualAddressSize: field(raw, 15, 7),
    htAtsReserved: bit(raw, 22),
  };
}

export function ivhdFlagsOf(raw: number): IvhdFlags {
  return {
    raw: raw & 0xff,
    htTunEn: bit(raw, 0),
    passPw: bit(raw, 1),
    resPassPw: bit(raw, 2),
    isoc: bit(raw, 3),
    iotlbSup: bit(raw, 4),
    coherent: bit(raw, 5),
    preFSup: bit(raw, 6),
    pprSup: bit(raw, 7),
  };
}

export function ivhdInfoOf(raw: number): IvhdInfo {
  return { raw: raw & 0xffff, msiNumber: field(raw, 0, 5), unitId: field(raw, 8, 5) };
}

export function ivhdFeaturesOf(raw: number): IvhdFeatures {
  return {
    raw: raw >>> 0,
    xtSup: bit(raw, 0),
    nxSup: bit(raw, 1),
    gtSup: bit(raw, 2),
    glxSup: field(raw, 3, 2),
    iaSup: bit(raw, 5),
    gaSup: bit(raw, 6),
    heSup: bit(raw, 7),
    pasMax: field(raw, 8, 5),
    pnCounters: field(raw, 13, 4),
    pnBanks: field(raw, 17, 6),
    msiNumPpr: field(raw, 23, 5),
    gats: field(raw, 28, 2),
    hats: field(raw, 30, 2),
  };
}

export function ivhdAttributesOf(raw: number): IvhdAttributes {
  return {
    raw: raw >>> 0,
    hatDis: bit(raw, 0),
    pnCounters: field(raw, 13, 4),
    pnBanks: field(raw, 17, 6),
    msiNumPpr: field(raw, 23, 5),
  };
}

export function dataSettingOf(raw: number): DataSetting {
  return {
    raw: raw & 0xff,
    initPass: bit(raw, 0),
    eIntPass: bit(raw, 1),
    nmiPass: bit(raw, 2),
    sysMgt: field(raw, 4, 2),
    lint0Pass: bit(raw, 6),
    lint1Pass: bit(raw, 7),
  };
}

export function extendedSettingOf(raw: number): ExtendedSetting {
  return { raw: raw >>> 0, atsDisabled: bit(raw, 31) };
}

export function ivmdFlagsOf(raw: number): IvmdFlags {
  return { raw: raw & 0xff, unity: bit(raw, 0), read: bit(raw, 1), write: bit(raw, 2), exclusionRange: bit(raw, 3) };
}

const ENTRY_TYPE_NAMES: Record<number, IvhdEntryType> = {
  [IVHD_DEV_PAD4]: "pad4",
  [IVHD_DEV_ALL]: "all",
  [IVHD_DEV_SELECT]: "select",
  [IVHD_DEV_SELECT_RANGE_START]: "range-start",
  [IVHD_DEV_RANGE_END]: "range-end",
  [IVHD_DEV_PAD8]: "pad8",
  [IVHD_DEV_ALIAS]: "alias-select",
  [IVHD_DEV_ALIAS_RANGE]: "alias-range-start",
  [IVHD_DEV_EXT_SELECT]: "extended-select",
  [IVHD_DEV_EXT_SELECT_RANGE]: "extended-range-start",
  [IVHD_DEV_SPECIAL]: "special",
  [IVHD_DEV_ACPI_HID]: "acpi-hid",
};

/** The name of a device entry type code ("select", "alias-range-start", …; "unknown" for others). */
export function entryTypeName(typeCode: number): IvhdEntryType {
  return ENTRY_TYPE_NAMES[typeCode] ?? "unknown";
}

export function isIvhdType(typeCode: number): boolean {
  return typeCode === IVHD_TYPE_10H || typeCode === IVHD_TYPE_11H || typeCode === IVHD_TYPE_40H;
}

export function isIvmdType(typeCode: number): boolean {
  return typeCode === IVMD_TYPE_ALL || typeCode === IVMD_TYPE_SELECT || typeCode === IVMD_TYPE_RANGE;
}

const h2 = (n: number): string => n.toString(16).padStart(2, "0");

export function bytesToHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += h2(x);
  return s;
}

export const isPrintable = (b: number): boolean => b >= 0x20 && b <= 0x7e;
const latin1 = (b: Uint8Array): string => String.fromCharCode(...b);
const startsWith0x = (b: Uint8Array): boolean => b[0] === 0x30 && (b[1] === 0x78 || b[1] === 0x58);

/** Hex of bytes read as a little-endian integer, two digits per byte. */
function leHex(b: Uint8Array): string {
  let s = "";
  for (let i = b.length - 1; i >= 0; i--) s += h2(b[i] ?? 0);
  return "0x" + s;
}

/** An 8-byte ACPI _HID/_CID field: text, "0x…" (16 digits, little-endian) or null when all zero. */
export function acpiIdOf(b: Uint8Array): string | null {
  if (b.every((x) => x === 0)) return null;
  let end = b.indexOf(0);
  if (end < 0) end = b.length;
  const text = b.subarray(0, end);
  if (end > 0 && b.subarray(end).every((x) => x === 0) && text.every(isPrintable) && !startsWith0x(text)) {
    return latin1(text);
  }
  return leHex(b);
}

export function uidOf(format: number, b: Uint8Array): string | null {
  if (b.length === 0) return null;
  if (format !== UID_IS_INTEGER && b.every(isPrintable) && !startsWith0x(b)) return latin1(b);
  return leHex(b);
}

/** A block type code as the specification writes it ("11h"). */
export const typeHex = (t: number): string => `${t.toString(16).toUpperCase().padStart(2, "0")}h`;
