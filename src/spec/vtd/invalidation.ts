/**
 * Queued invalidation (VT-d spec 6.5.2): the queue geometry (IQA_REG.QS and DW, IQH/IQT offsets, 10.4.22–10.4.24)
 * and the legacy-mode descriptors — context-cache (6.5.2.1), IOTLB (6.5.2.3), device-TLB (6.5.2.5), interrupt
 * entry cache (6.5.2.7) and invalidation wait (6.5.2.8) — and the scalable-mode PASID-granular ones — PASID
 * cache (6.5.2.2), PASID-based IOTLB (6.5.2.4), PASID-based device-TLB (6.5.2.6) — as field data with an encoder and a decoder each.
 * Descriptors are 128 bits (four little-endian 32-bit words); with IQA.DW a slot is 256 bits and the upper half
 * of a legacy descriptor is reserved. In every descriptor the bits that are not a field are reserved.
 */
import { encodeWords, field as f, maskOf, shiftOf, uncoveredWords, withField, wordMask, wordsField, type FieldSpec } from "./fields.js";
import { PAGE_SHIFT_4K } from "./paging.js";
import { IQA, IQT } from "./registers.js";

/** Descriptor type: bits 3:0 with bits 11:9 as type[6:4] (6.5.2). */
const TYPE_LO = f("TYPE_LO", 0, 4, "6.5.2");
const TYPE_HI = f("TYPE_HI", 9, 3, "6.5.2");

export const INV_DESC_CC = 0x1; // 6.5.2.1 context-cache invalidate
export const INV_DESC_IOTLB = 0x2; // 6.5.2.3 IOTLB invalidate
export const INV_DESC_DEVICE_IOTLB = 0x3; // 6.5.2.5 device-TLB invalidate
export const INV_DESC_IEC = 0x4; // 6.5.2.7 interrupt entry cache invalidate
export const INV_DESC_WAIT = 0x5; // 6.5.2.8 invalidation wait
export const INV_DESC_PIOTLB = 0x6; // 6.5.2.4 PASID-based IOTLB (scalable mode only)
export const INV_DESC_PC = 0x7; // 6.5.2.2 PASID-cache (scalable mode only)
export const INV_DESC_P_DEVICE_IOTLB = 0x8; // 6.5.2.6 PASID-based device-TLB (scalable mode only)

/** The type of a descriptor from its first word. */
export function descriptorType(w0: number): number {
  return wordsField([w0], TYPE_LO) | (wordsField([w0], TYPE_HI) << TYPE_LO.width);
}

/** Context-cache invalidate descriptor (6.5.2.1); G: 1 global, 2 domain, 3 device. */
export const CC_DESC = Object.freeze({
  TYPE: TYPE_LO,
  G: f("G", 4, 2, "6.5.2.1"),
  TYPE_HI,
  DID: f("DID", 16, 16, "6.5.2.1"),
  SID: f("SID", 32, 16, "6.5.2.1"),
  FM: f("FM", 48, 2, "6.5.2.1"),
});

/** IOTLB invalidate descriptor (6.5.2.3); G: 1 global, 2 domain, 3 page-selective (ADDR, AM, IH). */
export const IOTLB_DESC = Object.freeze({
  TYPE: TYPE_LO,
  G: f("G", 4, 2, "6.5.2.3"),
  DW: f("DW", 6, 1, "6.5.2.3"),
  DR: f("DR", 7, 1, "6.5.2.3"),
  TYPE_HI,
  DID: f("DID", 16, 16, "6.5.2.3"),
  AM: f("AM", 64, 6, "6.5.2.3"),
  IH: f("IH", 70, 1, "6.5.2.3"),
  ADDR: f("ADDR", 76, 52, "6.5.2.3"),
});

/** Device-TLB invalidate descriptor (6.5.2.5). */
export const DEVTLB_DESC = Object.freeze({
  TYPE: TYPE_LO,
  TYPE_HI,
  PFSID_LO: f("PFSID", 12, 4, "6.5.2.5"),
  MIP: f("MIP", 16, 5, "6.5.2.5"),
  SID: f("SID", 32, 16, "6.5.2.5"),
  PFSID_HI: f("PFSID", 52, 12, "6.5.2.5"),
  S: f("S", 64, 1, "6.5.2.5"),
  ADDR: f("ADDR", 76, 52, "6.5.2.5"),
});

/** Interrupt entry cache invalidate descriptor (6.5.2.7); G: 0 global, 1 index-selective (IIDX, IM). */
export const IEC_DESC = Object.freeze({
  TYPE: TYPE_LO,
  G: f("G", 4, 1, "6.5.2.7"),
  TYPE_HI,
  IM: f("IM", 27, 5, "6.5.2.7"),
  IIDX: f("IIDX", 32, 16, "6.5.2.7"),
});

/** Invalidation wait descriptor (6.5.2.8); the status address holds bits 63:2 of a dword-aligned address. */
export const WAIT_DESC = Object.freeze({
  TYPE: TYPE_LO,
  IF: f("IF", 4, 1, "6.5.2.8"),
  SW: f("SW", 5, 1, "6.5.2.8"),
  FN: f("FN", 6, 1, "6.5.2.8"),
  PD: f("PD", 7, 1, "6.5.2.8"),
  TYPE_HI,
  STATUS_DATA: f("STATUS_DATA", 32, 32, "6.5.2.8"),
  STATUS_ADDR: f("STATUS_ADDR", 66, 62, "6.5.2.8"),
});

/** PASID-cache invalidate descriptor (6.5.2.2); G: 0 every PASID of DID, 1 one PASID of DID, 3 global. */
export const PC_DESC = Object.freeze({
  TYPE: TYPE_LO,
  G: f("G", 4, 2, "6.5.2.2"),
  TYPE_HI,
  DID: f("DID", 16, 16, "6.5.2.2"),
  PASID: f("PASID", 32, 20, "6.5.2.2"),
});

/** PASID-based IOTLB invalidate descriptor (6.5.2.4); G: 2 every address of (DID, PASID), 3 page-selective. */
export const PIOTLB_DESC = Object.freeze({
  TYPE: TYPE_LO,
  G: f("G", 4, 2, "6.5.2.4"),
  TYPE_HI,
  DID: f("DID", 16, 16, "6.5.2.4"),
  PASID: f("PASID", 32, 20, "6.5.2.4"),
  AM: f("AM", 64, 6, "6.5.2.4"),
  IH: f("IH", 70, 1, "6.5.2.4"),
  ADDR: f("ADDR", 76, 52, "6.5.2.4"),
});

/** PASID-based device-TLB invalidate descriptor (6.5.2.6). */
export const P_DEVTLB_DESC = Object.freeze({
  TYPE: TYPE_LO,
  MIP: f("MIP", 4, 5, "6.5.2.6"),
  TYPE_HI,
  PFSID_LO: f("PFSID", 12, 4, "6.5.2.6"),
  SID: f("SID", 16, 16, "6.5.2.6"),
  PASID: f("PASID", 32, 20, "6.5.2.6"),
  PFSID_HI: f("PFSID", 52, 12, "6.5.2.6"),
  /** Global: every PASID of the device (G = 1) or this PASID only. */
  G: f("G", 64, 1, "6.5.2.6"),
  S: f("S", 75, 1, "6.5.2.6"),
  ADDR: f("ADDR", 76, 52, "6.5.2.6"),
});

/** Granularities of the PASID-cache (6.5.2.2) and PASID-based IOTLB (6.5.2.4) descriptors. */
export const PC_G_DOMAIN = 0;
export const PC_G_PASID = 1;
export const PC_G_GLOBAL = 3;
export const PIOTLB_G_PASID = 2;
export const PIOTLB_G_PAGE = 3;

/** Reserved bits of each descriptor (the bits no field covers), as word masks. */
export const CC_DESC_RSVD = Object.freeze(uncoveredWords(128, CC_DESC));
export const IOTLB_DESC_RSVD = Object.freeze(uncoveredWords(128, IOTLB_DESC));
export const DEVTLB_DESC_RSVD = Object.freeze(uncoveredWords(128, DEVTLB_DESC));
export const IEC_DESC_RSVD = Object.freeze(uncoveredWords(128, IEC_DESC));
export const WAIT_DESC_RSVD = Object.freeze(uncoveredWords(128, WAIT_DESC));
export const PC_DESC_RSVD = Object.freeze(uncoveredWords(128, PC_DESC));
export const PIOTLB_DESC_RSVD = Object.freeze(uncoveredWords(128, PIOTLB_DESC));
export const P_DEVTLB_DESC_RSVD = Object.freeze(uncoveredWords(128, P_DEVTLB_DESC));

/** True when `words` has a bit set that `reserved` marks. */
export function hasReserved(words: ArrayLike<number>, reserved: readonly number[]): boolean {
  for (let i = 0; i < reserved.length; i++) if (((words[i] ?? 0) & (reserved[i] ?? 0)) !== 0) return true;
  return false;
}

export type Descriptor = [number, number, number, number];

function encode<K extends string>(fields: Readonly<Record<K, FieldSpec>>, values: Partial<Record<K, number | boolean>>): Descriptor {
  return encodeWords(128, fields, values) as Descriptor;
}

/** Address fields hold bits 63:12 (ADDR) of a page address. */
function pageNumber(addr: number | bigint): number {
  return Number(BigInt(addr) >> BigInt(PAGE_SHIFT_4K));
}

export function encodeContextCacheDesc(d: { g: number; did?: number; sid?: number; fm?: number }): Descriptor {
  return encode(CC_DESC, { TYPE: INV_DESC_CC, G: d.g, DID: d.did ?? 0, SID: d.sid ?? 0, FM: d.fm ?? 0 });
}

export function decodeContextCacheDesc(w: ArrayLike<number>): { g: number; did: number; sid: number; fm: number; reserved: boolean } {
  return { g: wordsField(w, CC_DESC.G), did: wordsField(w, CC_DESC.DID), sid: wordsField(w, CC_DESC.SID), fm: wordsField(w, CC_DESC.FM), reserved: hasReserved(w, CC_DESC_RSVD) };
}

export interface IotlbDescFields {
  g: number;
  did?: number;
  /** Page-selective: the address (bits 11:0 dropped), the address mask (2^am pages) and the invalidation hint. */
  addr?: number | bigint;
  am?: number;
  ih?: boolean;
  /** Drain reads / writes (CAP.DRD, CAP.DWD). */
  dr?: boolean;
  dw?: boolean;
}

export function encodeIotlbDesc(d: IotlbDescFields): Descriptor {
  return encode(IOTLB_DESC, {
    TYPE: INV_DESC_IOTLB,
    G: d.g,
    DW: d.dw ?? false,
    DR: d.dr ?? false,
    DID: d.did ?? 0,
    AM: d.am ?? 0,
    IH: d.ih ?? false,
    ADDR: pageNumber(d.addr ?? 0),
  });
}

export function decodeIotlbDesc(w: ArrayLike<number>): { g: number; did: number; am: number; ih: boolean; addrLo: number; addrHi: number; reserved: boolean } {
  return {
    g: wordsField(w, IOTLB_DESC.G),
    did: wordsField(w, IOTLB_DESC.DID),
    am: wordsField(w, IOTLB_DESC.AM),
    ih: wordsField(w, IOTLB_DESC.IH) === 1,
    ...pageAddress(w),
    reserved: hasReserved(w, IOTLB_DESC_RSVD),
  };
}

/** The page address of an IOTLB or device-TLB descriptor (bits 127:76 hold address bits 63:12), as halves. */
function pageAddress(w: ArrayLike<number>): { addrLo: number; addrHi: number } {
  return { addrLo: ((w[2] ?? 0) & wordMask(IOTLB_DESC.ADDR)) >>> 0, addrHi: (w[3] ?? 0) >>> 0 };
}

export function encodeDeviceTlbDesc(d: { sid: number; addr: number | bigint; size?: boolean; pfsid?: number; mip?: number }): Descriptor {
  const pfsid = d.pfsid ?? 0;
  return encode(DEVTLB_DESC, {
    TYPE: INV_DESC_DEVICE_IOTLB,
    SID: d.sid,
    S: d.size ?? false,
    ADDR: pageNumber(d.addr),
    MIP: d.mip ?? 0,
    PFSID_LO: pfsid % 2 ** DEVTLB_DESC.PFSID_LO.width,
    PFSID_HI: Math.floor(pfsid / 2 ** DEVTLB_DESC.PFSID_LO.width),
  });
}

export function decodeDeviceTlbDesc(w: ArrayLike<number>): { sid: number; size: boolean; addrLo: number; addrHi: number; reserved: boolean } {
  return { sid: wordsField(w, DEVTLB_DESC.SID), size: wordsField(w, DEVTLB_DESC.S) === 1, ...pageAddress(w), reserved: hasReserved(w, DEVTLB_DESC_RSVD) };
}

/** Interrupt entry cache invalidation: global, or `index` with the index mask `im` (2^im entries). */
export function encodeIecDesc(d: { global: boolean; index?: number; im?: number }): Descriptor {
  return encode(IEC_DESC, { TYPE: INV_DESC_IEC, G: !d.global, IIDX: d.index ?? 0, IM: d.im ?? 0 });
}

export function decodeIecDesc(w: ArrayLike<number>): { global: boolean; index: number; im: number; reserved: boolean } {
  return { global: wordsField(w, IEC_DESC.G) === 0, index: wordsField(w, IEC_DESC.IIDX), im: wordsField(w, IEC_DESC.IM), reserved: hasReserved(w, IEC_DESC_RSVD) };
}

export interface WaitDescFields {
  /** Status write of `data` to `addr` (dword aligned). */
  sw?: boolean;
  /** Interrupt flag: an invalidation completion event. */
  iflag?: boolean;
  fence?: boolean;
  /** Page-request drain (needs ECAP.PDS). */
  drain?: boolean;
  data?: number;
  addr?: number;
}

export function encodeWaitDesc(d: WaitDescFields): Descriptor {
  return encode(WAIT_DESC, {
    TYPE: INV_DESC_WAIT,
    IF: d.iflag ?? false,
    SW: d.sw ?? false,
    FN: d.fence ?? false,
    PD: d.drain ?? false,
    STATUS_DATA: d.data ?? 0,
    STATUS_ADDR: Math.floor((d.addr ?? 0) / 2 ** (WAIT_DESC.STATUS_ADDR.lsb - 64)),
  });
}

export function decodeWaitDesc(w: ArrayLike<number>): { sw: boolean; iflag: boolean; fence: boolean; drain: boolean; data: number; addrLo: number; addrHi: number; reserved: boolean } {
  return {
    sw: wordsField(w, WAIT_DESC.SW) === 1,
    iflag: wordsField(w, WAIT_DESC.IF) === 1,
    fence: wordsField(w, WAIT_DESC.FN) === 1,
    drain: wordsField(w, WAIT_DESC.PD) === 1,
    data: wordsField(w, WAIT_DESC.STATUS_DATA),
    addrLo: ((w[2] ?? 0) & wordMask(WAIT_DESC.STATUS_ADDR)) >>> 0,
    addrHi: (w[3] ?? 0) >>> 0,
    reserved: hasReserved(w, WAIT_DESC_RSVD),
  };
}

export function encodePasidCacheDesc(d: { g: number; did?: number; pasid?: number }): Descriptor {
  return encode(PC_DESC, { TYPE: INV_DESC_PC, G: d.g, DID: d.did ?? 0, PASID: d.pasid ?? 0 });
}

export function decodePasidCacheDesc(w: ArrayLike<number>): { g: number; did: number; pasid: number; reserved: boolean } {
  return { g: wordsField(w, PC_DESC.G), did: wordsField(w, PC_DESC.DID), pasid: wordsField(w, PC_DESC.PASID), reserved: hasReserved(w, PC_DESC_RSVD) };
}

export function encodePasidIotlbDesc(d: { g: number; did?: number; pasid?: number; addr?: number | bigint; am?: number; ih?: boolean }): Descriptor {
  return encode(PIOTLB_DESC, { TYPE: INV_DESC_PIOTLB, G: d.g, DID: d.did ?? 0, PASID: d.pasid ?? 0, AM: d.am ?? 0, IH: d.ih ?? false, ADDR: pageNumber(d.addr ?? 0) });
}

export function decodePasidIotlbDesc(w: ArrayLike<number>): { g: number; did: number; pasid: number; am: number; ih: boolean; addrLo: number; addrHi: number; reserved: boolean } {
  return {
    g: wordsField(w, PIOTLB_DESC.G),
    did: wordsField(w, PIOTLB_DESC.DID),
    pasid: wordsField(w, PIOTLB_DESC.PASID),
    am: wordsField(w, PIOTLB_DESC.AM),
    ih: wordsField(w, PIOTLB_DESC.IH) === 1,
    ...pageAddress(w),
    reserved: hasReserved(w, PIOTLB_DESC_RSVD),
  };
}

export function encodePasidDeviceTlbDesc(d: { sid: number; pasid?: number; global?: boolean; addr?: number | bigint; size?: boolean; pfsid?: number; mip?: number }): Descriptor {
  const pfsid = d.pfsid ?? 0;
  return encode(P_DEVTLB_DESC, {
    TYPE: INV_DESC_P_DEVICE_IOTLB,
    MIP: d.mip ?? 0,
    SID: d.sid,
    PASID: d.pasid ?? 0,
    G: d.global ?? false,
    S: d.size ?? false,
    ADDR: pageNumber(d.addr ?? 0),
    PFSID_LO: pfsid % 2 ** P_DEVTLB_DESC.PFSID_LO.width,
    PFSID_HI: Math.floor(pfsid / 2 ** P_DEVTLB_DESC.PFSID_LO.width),
  });
}

export function decodePasidDeviceTlbDesc(w: ArrayLike<number>): { sid: number; pasid: number; global: boolean; size: boolean; addrLo: number; addrHi: number; reserved: boolean } {
  return {
    sid: wordsField(w, P_DEVTLB_DESC.SID),
    pasid: wordsField(w, P_DEVTLB_DESC.PASID),
    global: wordsField(w, P_DEVTLB_DESC.G) === 1,
    size: wordsField(w, P_DEVTLB_DESC.S) === 1,
    ...pageAddress(w),
    reserved: hasReserved(w, P_DEVTLB_DESC_RSVD),
  };
}

// ---- The queue (10.4.22–10.4.24) ----

/** IQA_REG for a queue of 2^qs 4 KiB pages at `base` (4 KiB aligned), with 256-bit descriptors when `wide`. */
export function encodeIqa(base: number | bigint, qs: number, wide = false): bigint {
  return withField(withField(BigInt(base) & maskOf(IQA.IQA), IQA.DW, wide), IQA.QS, qs);
}

/** Bytes per descriptor slot: 16, or 32 with IQA.DW (256-bit descriptors). */
export function descriptorBytes(wide: boolean): number {
  return wide ? 32 : 16;
}

/** Descriptors in a queue of 2^QS 4 KiB pages. */
export function queueEntries(qs: number, wide: boolean): number {
  return (2 ** qs * 2 ** PAGE_SHIFT_4K) / descriptorBytes(wide);
}

/** IQH/IQT hold the offset of a slot in 128-bit units (bits 18:4); with 256-bit slots bit 4 must be 0. */
export function queueIndexShift(wide: boolean): number {
  return shiftOf(IQT.QT) + (wide ? 1 : 0);
}

/** The IQT/IQH register value for slot `index`. */
export function queueOffset(index: number, wide: boolean): number {
  return index * descriptorBytes(wide);
}

/** The slot index IQT or IQH names. */
export function queueIndex(reg: number, wide: boolean): number {
  return wordsField([reg], IQT.QT) >>> (wide ? 1 : 0);
}

/** True when IQT names half a 256-bit slot (IQT bit 4 set with IQA.DW): a queue error (6.5.2.10). */
export function tailMisaligned(reg: number, wide: boolean): boolean {
  return wide && (wordsField([reg], IQT.QT) & 1) === 1;
}
