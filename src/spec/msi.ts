/**
 * The x86 MSI message in compatibility format (Intel SDM vol. 3, 11.11.1–11.11.2 "Message Address/Data Register
 * Format"; VT-d spec 5.1.2.1 "Interrupt Requests in Compatibility Format"; AMD #48882 2.2.5): what a device writes
 * to 0xFEEx_xxxx when no remapping applies, and what a remapping unit (VT-d or AMD-Vi) hands to the local APICs.
 * The remappable format (VT-d 5.1.2.2) is in spec/vtd/intremap.ts.
 */

/** Bits 31:20 of every interrupt request address: 0xFEE (the interrupt address range 0xFEE0_0000–0xFEEF_FFFF). */
export const MSI_ADDR_HEAD = 0xfee;
/** The interrupt address range 0xFEE0_0000–0xFEEF_FFFF: the address head and 20 bits below it (VT-d 3.14). */
export const MSI_ADDR_HEAD_SHIFT = 20;
export const MSI_ADDR_BASE = (MSI_ADDR_HEAD * 2 ** MSI_ADDR_HEAD_SHIFT) >>> 0;
export const MSI_ADDR_LAST = (MSI_ADDR_BASE + 2 ** MSI_ADDR_HEAD_SHIFT - 1) >>> 0;
/** Address bits 1:0 are ignored by the APICs; a remapping unit carries them into the message it emits. */
export const MSI_ADDR_IGNORED = 0x3;
/** Address bit 2, destination mode: 1 = logical. */
export const MSI_ADDR_DM = 1 << 2;
/** Address bit 3, redirection hint. */
export const MSI_ADDR_RH = 1 << 3;
/** Address bits 19:12: destination id (xAPIC); the upper 24 bits of an x2APIC id go in the high address dword. */
export const MSI_ADDR_DEST_SHIFT = 12;
/** Data bits 7:0: vector. */
export const MSI_DATA_VECTOR_MASK = 0xff;
/** Data bits 10:8: delivery mode (0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT). */
export const MSI_DATA_DLM_SHIFT = 8;
/** Data bit 14: level (1 = assert). */
export const MSI_DATA_LEVEL_ASSERT = 1 << 14;
/** Data bit 15: trigger mode (1 = level). */
export const MSI_DATA_TM_LEVEL = 1 << 15;

/** An interrupt as a compatibility-format MSI describes it, and as the local APICs receive it. */
export interface MsiInterrupt {
  readonly vector: number;
  /** APIC destination id: 8 bits in xAPIC mode, 32 bits in x2APIC mode. */
  readonly destination: number;
  readonly destinationMode: "physical" | "logical";
  /** Delivery mode, 3 bits. */
  readonly deliveryMode: number;
  readonly triggerMode: "edge" | "level";
  readonly redirectionHint: boolean;
}

/** True when a request address (low dword, high dword) lies in the interrupt address range. */
export function isInterruptAddress(lo: number, hi = 0): boolean {
  return hi === 0 && lo >>> MSI_ADDR_HEAD_SHIFT === MSI_ADDR_HEAD;
}

/** 2^n for page-size shifts (a table: a table walk asks at every leaf, and Math.pow is a call). */
const PAGE_SPANS = Float64Array.from({ length: 65 }, (_, n) => 2 ** n);

/** True when the page [frame, frame + 2^shift) (frame as halves) overlaps the interrupt address range. */
export function overlapsInterruptRange(frameLo: number, frameHi: number, shift: number): boolean {
  if (frameHi !== 0) return false;
  const first = frameLo >>> 0;
  const last = first + (PAGE_SPANS[shift] ?? 2 ** shift) - 1;
  return first <= MSI_ADDR_LAST && last >= MSI_ADDR_BASE;
}

/** Decodes a compatibility-format message; `hi` carries destination bits 31:8 (x2APIC). */
export function decodeCompatMsi(lo: number, data: number, hi = 0): MsiInterrupt {
  return {
    vector: data & MSI_DATA_VECTOR_MASK,
    destination: (((lo >>> MSI_ADDR_DEST_SHIFT) & 0xff) | (hi & 0xffffff00)) >>> 0,
    destinationMode: (lo & MSI_ADDR_DM) !== 0 ? "logical" : "physical",
    deliveryMode: (data >>> MSI_DATA_DLM_SHIFT) & 7,
    triggerMode: (data & MSI_DATA_TM_LEVEL) !== 0 ? "level" : "edge",
    redirectionHint: (lo & MSI_ADDR_RH) !== 0,
  };
}

export interface CompatMsiFields {
  vector: number;
  destination: number;
  destinationMode?: "physical" | "logical";
  deliveryMode?: number;
  triggerMode?: "edge" | "level";
  redirectionHint?: boolean;
  /** Set data bit 14 (level assert), as remapping hardware does on the messages it emits. Default false. */
  levelAssert?: boolean;
  /** Request address bits 1:0 to carry over (a remapping unit keeps them). Default 0. */
  addressLow2?: number;
}

/** Encodes a compatibility-format message: low address dword, high dword (x2APIC destination 31:8), data. */
export function encodeCompatMsi(f: CompatMsiFields): { address: number; addressHi: number; data: number } {
  const address =
    MSI_ADDR_BASE |
    ((f.destination & 0xff) << MSI_ADDR_DEST_SHIFT) |
    (f.redirectionHint === true ? MSI_ADDR_RH : 0) |
    (f.destinationMode === "logical" ? MSI_ADDR_DM : 0) |
    ((f.addressLow2 ?? 0) & MSI_ADDR_IGNORED);
  const data =
    (f.vector & MSI_DATA_VECTOR_MASK) |
    (((f.deliveryMode ?? 0) & 7) << MSI_DATA_DLM_SHIFT) |
    (f.levelAssert === true ? MSI_DATA_LEVEL_ASSERT : 0) |
    (f.triggerMode === "level" ? MSI_DATA_TM_LEVEL : 0);
  return { address: address >>> 0, addressHi: (f.destination & 0xffffff00) >>> 0, data: data >>> 0 };
}
