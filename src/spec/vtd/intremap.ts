/**
 * VT-d interrupt-remapping formats: the remappable MSI address/data pair (VT-d spec 5.1.2.2), the 128-bit
 * interrupt remapping table entry for remapped interrupts (IRTE, VT-d spec 9.10), the IRTA register fields and
 * the interrupt-remapping fault reasons (VT-d spec 5.1.4.1).
 *
 * The IRTE is handled as four little-endian 32-bit words:
 *   w0 = bits 31:0    P, FPD, DM, RH, TM, DLM, AVAIL, reserved, IM, vector, reserved
 *   w1 = bits 63:32   destination id
 *   w2 = bits 95:64   SID, SQ, SVT, reserved
 *   w3 = bits 127:96  reserved
 * Encoders here are for software that builds tables (the simulated kernel, tests); they reject out-of-range
 * fields with RangeError. The decoders never throw.
 */
import type { PhysAddr } from "../../core/memory.js";
import { MSI_ADDR_HEAD } from "../msi.js";
import { ridBus, ridDevfn } from "../../core/pci.js";
import { field as f, shiftOf, uncoveredWords, wordMask, type FieldSpec } from "./fields.js";
import { IRTA, sidCompareMask } from "./registers.js";

// ---- Fault reasons (VT-d spec 5.1.4.1, "Interrupt Remapping Fault Conditions") ----

/** Reserved field set in a remappable interrupt request (address high half, address head, data bits 31:16). */
export const VTD_FR_IR_REQ_RSVD = 0x20;
/** interrupt_index is beyond the table size given by IRTA_REG.S. */
export const VTD_FR_IR_INDEX_OVER = 0x21;
/** The IRTE's Present (P) field is clear. */
export const VTD_FR_IR_ENTRY_P = 0x22;
/** Reading the IRTE through IRTA_REG failed (here: the entry lies beyond the host address width). */
export const VTD_FR_IR_ROOT_INVAL = 0x23;
/** Reserved field (or reserved encoding) set in a present IRTE. */
export const VTD_FR_IR_IRTE_RSVD = 0x24;
/** Compatibility-format interrupt while compatibility format is blocked (CFIS clear, or EIME set). */
export const VTD_FR_IR_REQ_COMPAT = 0x25;
/** The request's source-id failed the IRTE's SVT/SQ/SID verification. */
export const VTD_FR_IR_SID_ERR = 0x26;

export type IrFaultReason = 0x20 | 0x21 | 0x22 | 0x23 | 0x24 | 0x25 | 0x26;

/** Stable short names, usable by scripts (the part of QEMU's VTD_FR_* names after the prefix). */
export const IR_FAULT_NAMES: Readonly<Record<IrFaultReason, string>> = {
  0x20: "IR_REQ_RSVD",
  0x21: "IR_INDEX_OVER",
  0x22: "IR_ENTRY_P",
  0x23: "IR_ROOT_INVAL",
  0x24: "IR_IRTE_RSVD",
  0x25: "IR_REQ_COMPAT",
  0x26: "IR_SID_ERR",
};

/** One line per fault reason, for people. */
export const IR_FAULT_DESCRIPTIONS: Readonly<Record<IrFaultReason, string>> = {
  0x20: "reserved field set in a remappable interrupt request",
  0x21: "interrupt index beyond the interrupt remapping table size",
  0x22: "interrupt remapping table entry not present",
  0x23: "interrupt remapping table entry could not be read",
  0x24: "reserved field set in a present interrupt remapping table entry",
  0x25: "compatibility-format interrupt blocked",
  0x26: "source-id verification failed",
};

// ---- MSI address/data: 5.1.2.2 remappable format (the compatibility format, 5.1.2.1, is spec/msi.ts) ----

/** Address bit 4, Interrupt Format: 1 = remappable, 0 = compatibility (VT-d spec 5.1.2.2). */
export const MSI_ADDR_IF_REMAPPABLE = 1 << 4;
/** Address bit 3, SubHandle Valid (SHV). */
export const MSI_ADDR_SHV = 1 << 3;
/** Address bit 2: handle[15]. */
export const MSI_ADDR_HANDLE15 = 1 << 2;
/** Address bits 19:5: handle[14:0]. */
export const MSI_ADDR_HANDLE_SHIFT = 5;
export const MSI_ADDR_HANDLE_MASK = 0x7fff;
/** Data bits 15:0 hold the sub-handle when SHV = 1; bits 31:16 are then reserved. */
export const MSI_DATA_SUBHANDLE_MASK = 0x0000ffff;
export const MSI_DATA_RSVD_WHEN_SHV = 0xffff0000;

/** The interrupt index (handle, plus the sub-handle with SHV) is 16 bits wide (5.1.2.2). */
export const IR_INDEX_BITS = 16;

/** interrupt_index fields of a remappable-format request address. */
export function msiHandle(addrLo: number): number {
  return (((addrLo >>> MSI_ADDR_HANDLE_SHIFT) & MSI_ADDR_HANDLE_MASK) | ((addrLo & MSI_ADDR_HANDLE15) << 13)) >>> 0;
}

export interface RemappableMsi {
  /** Low 32 bits of the MSI address; the high half is 0. */
  address: number;
  data: number;
}

/**
 * The address/data pair a device is programmed with to raise the interrupt at IRTE `handle` (+ `subhandle`
 * when given, which sets SHV). VT-d spec 5.1.2.2 and 5.1.5.2.
 */
export function encodeRemappableMsi(handle: number, subhandle?: number): RemappableMsi {
  checkField("handle", handle, 0xffff);
  let address =
    (MSI_ADDR_HEAD << 20) |
    ((handle & MSI_ADDR_HANDLE_MASK) << MSI_ADDR_HANDLE_SHIFT) |
    MSI_ADDR_IF_REMAPPABLE |
    ((handle >>> 15) << 2);
  let data = 0;
  if (subhandle !== undefined) {
    checkField("subhandle", subhandle, 0xffff);
    address |= MSI_ADDR_SHV;
    data = subhandle;
  }
  return { address: address >>> 0, data };
}

// ---- IRTA_REG (VT-d spec 10.4.31; fields in registers.ts) ----

/** IRTA bits 3:0, S: the table holds 2^(S+1) entries. */
export const VTD_IRTA_SIZE_MASK = wordMask(IRTA.S);
/** IRTA bit 11, EIME: extended interrupt mode (x2APIC, 32-bit destination ids). */
export const VTD_IRTA_EIME = wordMask(IRTA.EIME);
/** IRTA bits 63:12: 4 KiB-aligned table base (its low-dword part). */
export const VTD_IRTA_ADDR_MASK_LO = wordMask(IRTA.IRTA);
/** Entries of a table with IRTA.S = s: 2^(s+1). */
export function irtaEntries(s: number): number {
  return 2 ** (s + 1);
}
/** Bytes per IRTE. */
export const IRTE_SIZE = 16;

// ---- IRTE for remapped interrupts (VT-d spec 9.10) ----

export const IRTE = Object.freeze({
  P: f("P", 0, 1, "9.10"),
  FPD: f("FPD", 1, 1, "9.10"),
  DM: f("DM", 2, 1, "9.10"),
  RH: f("RH", 3, 1, "9.10"),
  TM: f("TM", 4, 1, "9.10"),
  DLM: f("DLM", 5, 3, "9.10"),
  AVAIL: f("AVAIL", 8, 4, "9.10"),
  /** IRTE Mode: 1 = posted format (9.11). Reserved (0) when posted interrupts are not supported (CAP.PI = 0). */
  IM: f("IM", 15, 1, "9.10"),
  V: f("V", 16, 8, "9.10"),
  /** Destination id: the whole field in x2APIC mode (EIME); in xAPIC mode only bits 47:40 (XAPIC_DST). */
  DST: f("DST", 32, 32, "9.10"),
  SID: f("SID", 64, 16, "9.10"),
  SQ: f("SQ", 80, 2, "9.10"),
  SVT: f("SVT", 82, 2, "9.10"),
});
/** The APIC id in xAPIC mode: destination id bits 15:8 (IRTE bits 47:40); the rest of DST is reserved there. */
export const IRTE_XAPIC_DST = f("DST", 40, 8, "9.10");

/** Posted-format IRTE (9.11): shares P, FPD, AVAIL, IM (= 1), V, SID, SQ, SVT; adds URG and the descriptor address. */
export const POSTED_IRTE = Object.freeze({
  P: IRTE.P,
  FPD: IRTE.FPD,
  AVAIL: IRTE.AVAIL,
  URG: f("URG", 14, 1, "9.11"),
  IM: IRTE.IM,
  V: IRTE.V,
  /** Posted-interrupt descriptor address bits 31:6. */
  PDA_L: f("PDA_L", 38, 26, "9.11"),
  SID: IRTE.SID,
  SQ: IRTE.SQ,
  SVT: IRTE.SVT,
  /** Posted-interrupt descriptor address bits 63:32. */
  PDA_H: f("PDA_H", 96, 32, "9.11"),
});

const rsvd = (fields: Readonly<Record<string, FieldSpec>>): number[] => uncoveredWords(128, fields);
const REMAPPED_RSVD = rsvd(IRTE);
const REMAPPED_RSVD_XAPIC = rsvd({ ...IRTE, DST: IRTE_XAPIC_DST });
const POSTED_RSVD = rsvd(POSTED_IRTE);

export const IRTE_P = wordMask(IRTE.P);
export const IRTE_FPD = wordMask(IRTE.FPD);
export const IRTE_DM = wordMask(IRTE.DM);
export const IRTE_RH = wordMask(IRTE.RH);
export const IRTE_TM = wordMask(IRTE.TM);
export const IRTE_DLM_SHIFT = shiftOf(IRTE.DLM);
export const IRTE_AVAIL_SHIFT = shiftOf(IRTE.AVAIL);
export const IRTE_IM = wordMask(IRTE.IM);
export const IRTE_VECTOR_SHIFT = shiftOf(IRTE.V);
/** w0 reserved bits: 14:12 and 31:24 (IM, bit 15, is checked on its own). */
export const IRTE_W0_RSVD = REMAPPED_RSVD[0] ?? 0;
/** w1 reserved bits in xAPIC mode (EIME = 0): destination id bits 63:48 and 39:32; APIC id in 47:40. */
export const IRTE_W1_RSVD_XAPIC = REMAPPED_RSVD_XAPIC[1] ?? 0;
export const IRTE_XAPIC_DEST_SHIFT = shiftOf(IRTE_XAPIC_DST);
/** w2: SID 79:64, SQ 81:80, SVT 83:82; bits 95:84 reserved. */
export const IRTE_SQ_SHIFT = shiftOf(IRTE.SQ);
export const IRTE_SVT_SHIFT = shiftOf(IRTE.SVT);
export const IRTE_W2_RSVD = REMAPPED_RSVD[2] ?? 0;
/** w3: bits 127:96, all reserved. */
export const IRTE_W3_RSVD = REMAPPED_RSVD[3] ?? 0;

/** Source Validation Type (VT-d spec 9.10, SVT). 11b is a reserved encoding. */
export const SVT_NO_VERIFY = 0;
export const SVT_VERIFY_SID_SQ = 1;
export const SVT_VERIFY_BUS = 2;

/**
 * Source-id qualifier masks (VT-d spec 9.10, SQ) applied to both SID and the requester id when SVT = 01b:
 * 00b compare all 16 bits, 01b ignore bit 2, 10b ignore bits 2:1, 11b ignore bits 2:0.
 */
export const SQ_MASKS: readonly [number, number, number, number] = [sidCompareMask(0), sidCompareMask(1), sidCompareMask(2), sidCompareMask(3)];

/** SID, SQ and SVT from IRTE dword 2 (bits 95:64); the same in the posted format. */
export function irteSource(w2: number): { sid: number; sq: number; svt: number } {
  return { sid: dword2Field(w2, IRTE.SID), sq: dword2Field(w2, IRTE.SQ), svt: dword2Field(w2, IRTE.SVT) };
}

/** A field of IRTE dword 2 (bits 95:64) from that dword alone. */
function dword2Field(w2: number, s: FieldSpec): number {
  return (w2 >>> shiftOf(s)) & (2 ** s.width - 1);
}

/**
 * Source-id verification (VT-d spec 9.10): SVT 00b accepts any requester; 01b compares SID and the requester
 * id under the SQ mask; 10b takes SID as a bus range (bits 15:8 start bus, 7:0 end bus — Linux's
 * set_irte_verify_bus agrees; QEMU reads the two bytes the other way round) and accepts a requester on a bus
 * in it. SVT 11b is a reserved encoding (a reserved-field fault before this check).
 */
export function irteSourceVerified(w2: number, requester: number): boolean {
  const svt = dword2Field(w2, IRTE.SVT);
  const sid = dword2Field(w2, IRTE.SID);
  if (svt === SVT_VERIFY_SID_SQ) {
    const mask = sidCompareMask(dword2Field(w2, IRTE.SQ));
    return (sid & mask) === (requester & mask);
  }
  if (svt === SVT_VERIFY_BUS) {
    const bus = ridBus(requester);
    return bus >= ridBus(sid) && bus <= ridDevfn(sid);
  }
  return true;
}

/** Delivery modes (DLM) of VT-d spec 9.10; 011b and 110b are not defined there. */
export function deliveryModeName(dlm: number): string {
  switch (dlm & 7) {
    case 0:
      return "fixed";
    case 1:
      return "lowest-priority";
    case 2:
      return "smi";
    case 4:
      return "nmi";
    case 5:
      return "init";
    case 7:
      return "extint";
    default:
      return "reserved";
  }
}

export interface IrteFields {
  present: boolean;
  /** Fault Processing Disable: faults through this entry are not recorded (still blocked). */
  fpd: boolean;
  destinationMode: "physical" | "logical";
  redirectionHint: boolean;
  triggerMode: "edge" | "level";
  /** DLM, 3 bits. */
  deliveryMode: number;
  /** AVAIL, 4 bits for software. */
  avail: number;
  /** IM: posted format. */
  posted: boolean;
  vector: number;
  /** APIC destination id: 8 bits in xAPIC mode, 32 bits in x2APIC mode. */
  destination: number;
  sid: number;
  sq: number;
  svt: number;
}

export type IrteWords = [w0: number, w1: number, w2: number, w3: number];

/** Fields of an IRTE from its four words, as hardware in the given mode reads them. Never throws. */
export function decodeIrte(w0: number, w1: number, w2: number, w3: number, eime: boolean): IrteFields & {
  /** Which reserved rule the entry breaks, or null. */
  reservedViolation: string | null;
} {
  return {
    present: (w0 & IRTE_P) !== 0,
    fpd: (w0 & IRTE_FPD) !== 0,
    destinationMode: (w0 & IRTE_DM) !== 0 ? "logical" : "physical",
    redirectionHint: (w0 & IRTE_RH) !== 0,
    triggerMode: (w0 & IRTE_TM) !== 0 ? "level" : "edge",
    deliveryMode: (w0 >>> IRTE_DLM_SHIFT) & 7,
    avail: (w0 >>> IRTE_AVAIL_SHIFT) & 0xf,
    posted: (w0 & IRTE_IM) !== 0,
    vector: (w0 >>> IRTE_VECTOR_SHIFT) & 0xff,
    destination: irteDestination(w1, eime),
    sid: w2 & 0xffff,
    sq: (w2 >>> IRTE_SQ_SHIFT) & 3,
    svt: (w2 >>> IRTE_SVT_SHIFT) & 3,
    reservedViolation: irteReservedViolation(w0, w1, w2, w3, eime),
  };
}

/** The destination id in w1: bits 47:40 in xAPIC mode, bits 63:32 in x2APIC mode (VT-d spec 9.10, DST). */
export function irteDestination(w1: number, eime: boolean): number {
  return eime ? w1 >>> 0 : (w1 >>> IRTE_XAPIC_DEST_SHIFT) & 0xff;
}

/**
 * Why a present IRTE faults with reason 0x24, or null when it does not. VT-d spec 9.10: reserved bits must be
 * zero; IM (bit 15) is reserved when posted interrupts are unsupported (a unit with CAP.PI reads an entry with
 * IM set as a posted-format entry instead, see postedIrteReservedViolation);
 * in xAPIC mode destination bits 63:48 and 39:32 are reserved; SVT = 11b is a reserved encoding. Fault 0x24
 * covers "conditional reserved fields programmed wrongly" (VT-d spec 5.1.4.1), which is where a reserved SVT
 * encoding belongs; QEMU reports that case as 0x26 instead.
 */
export function irteReservedViolation(w0: number, w1: number, w2: number, w3: number, eime: boolean): string | null {
  if ((w0 & IRTE_W0_RSVD) !== 0) return "reserved bits 14:12 or 31:24 set";
  if ((w0 & IRTE_IM) !== 0) return "posted format (IM = 1) but posted interrupts are not supported";
  if (!eime && (w1 & IRTE_W1_RSVD_XAPIC) !== 0) return "destination bits 63:48 or 39:32 set in xAPIC mode";
  if ((w2 & IRTE_W2_RSVD) !== 0 || w3 !== 0) return "reserved bits 127:84 set";
  if (((w2 >>> IRTE_SVT_SHIFT) & 3) === 3) return "reserved source validation type 11b";
  return null;
}

/** The four words of an IRTE (for table builders). Range-checks every field. */
export function encodeIrte(f: Partial<IrteFields> & { vector: number; destination: number }, eime: boolean): IrteWords {
  const dlm = f.deliveryMode ?? 0;
  const avail = f.avail ?? 0;
  const sid = f.sid ?? 0;
  const sq = f.sq ?? 0;
  const svt = f.svt ?? 0;
  checkField("vector", f.vector, 0xff);
  checkField("deliveryMode", dlm, 7);
  checkField("avail", avail, 0xf);
  checkField("sid", sid, 0xffff);
  checkField("sq", sq, 3);
  checkField("svt", svt, 3);
  checkField("destination", f.destination, eime ? 0xffff_ffff : 0xff);
  const w0 =
    ((f.present ?? true) ? IRTE_P : 0) |
    (f.fpd === true ? IRTE_FPD : 0) |
    (f.destinationMode === "logical" ? IRTE_DM : 0) |
    (f.redirectionHint === true ? IRTE_RH : 0) |
    (f.triggerMode === "level" ? IRTE_TM : 0) |
    (dlm << IRTE_DLM_SHIFT) |
    (avail << IRTE_AVAIL_SHIFT) |
    (f.posted === true ? IRTE_IM : 0) |
    (f.vector << IRTE_VECTOR_SHIFT);
  const w1 = eime ? f.destination : f.destination << IRTE_XAPIC_DEST_SHIFT;
  const w2 = sid | (sq << IRTE_SQ_SHIFT) | (svt << IRTE_SVT_SHIFT);
  return [w0 >>> 0, w1 >>> 0, w2 >>> 0, 0];
}

export interface PhysWriter {
  write32(addr: PhysAddr, v: number): void;
}

/** Stores an IRTE's words at table base + index * 16, little-endian. */
export function writeIrte(mem: PhysWriter, tableBase: number | bigint, index: number, words: IrteWords): void {
  for (let i = 0; i < 4; i++) {
    const off = index * IRTE_SIZE + i * 4;
    mem.write32(typeof tableBase === "number" ? tableBase + off : tableBase + BigInt(off), words[i] ?? 0);
  }
}

/** IRTA_REG value (low, high halves) for a table at `base` with 2^(s+1) entries. */
export function encodeIrta(base: number | bigint, s: number, eime: boolean): { lo: number; hi: number } {
  checkField("s", s, 0xf);
  const b = BigInt(base);
  if ((b & 0xfffn) !== 0n || b < 0n || b >= 1n << 64n) throw new RangeError(`IRTA base 0x${b.toString(16)} is not a 4 KiB-aligned 64-bit address`);
  return {
    lo: (Number(b & 0xffff_f000n) | (eime ? VTD_IRTA_EIME : 0) | s) >>> 0,
    hi: Number(b >> 32n),
  };
}

// ---- IRTE for posted interrupts (VT-d spec 9.11) ----
//   w0: P 0, FPD 1, reserved 7:2, AVAIL 11:8, reserved 13:12, URG 14, IM 15 (= 1), vector 23:16, reserved 31:24
//   w1: reserved 37:32, PDA_L 63:38 (descriptor address bits 31:6)
//   w2: SID 79:64, SQ 81:80, SVT 83:82, reserved 95:84 (as in the remapped format)
//   w3: PDA_H 127:96 (descriptor address bits 63:32)
// These words are read as a posted-format entry only when the unit supports posted interrupts (CAP.PI).

/** w0 bit 14, Urgent: notify even when the descriptor's SN is set. */
export const IRTE_URG = wordMask(POSTED_IRTE.URG);
/** Posted-format w0 reserved bits: 7:2, 13:12 and 31:24. */
export const IRTE_POSTED_W0_RSVD = POSTED_RSVD[0] ?? 0;
/** Posted-format w1 reserved bits 37:32; bits 63:38 hold descriptor address bits 31:6. */
export const IRTE_POSTED_W1_RSVD = POSTED_RSVD[1] ?? 0;
export const IRTE_PDA_LO_MASK = wordMask(POSTED_IRTE.PDA_L);

export interface PostedIrteFields {
  present: boolean;
  fpd: boolean;
  avail: number;
  urgent: boolean;
  /** The vector posted into the descriptor's PIR. */
  vector: number;
  /** Posted-interrupt descriptor address (64-byte aligned). */
  descriptor: bigint;
  sid: number;
  sq: number;
  svt: number;
}

/** Fields of a posted-format IRTE from its four words. Never throws. */
export function decodePostedIrte(w0: number, w1: number, w2: number, w3: number, hostAddressWidth = 52): PostedIrteFields & {
  reservedViolation: string | null;
} {
  return {
    present: (w0 & IRTE_P) !== 0,
    fpd: (w0 & IRTE_FPD) !== 0,
    avail: (w0 >>> IRTE_AVAIL_SHIFT) & 0xf,
    urgent: (w0 & IRTE_URG) !== 0,
    vector: (w0 >>> IRTE_VECTOR_SHIFT) & 0xff,
    descriptor: (BigInt(w3 >>> 0) << 32n) | BigInt((w1 & IRTE_PDA_LO_MASK) >>> 0),
    sid: w2 & 0xffff,
    sq: (w2 >>> IRTE_SQ_SHIFT) & 3,
    svt: (w2 >>> IRTE_SVT_SHIFT) & 3,
    reservedViolation: postedIrteReservedViolation(w0, w1, w2, w3, hostAddressWidth),
  };
}

/**
 * Why a present posted-format IRTE faults with reason 0x24, or null: reserved bits set (w0 7:2, 13:12, 31:24;
 * w1 37:32; w2 95:84), a descriptor address at or above 2^HAW, or SVT = 11b.
 */
export function postedIrteReservedViolation(w0: number, w1: number, w2: number, w3: number, hostAddressWidth: number): string | null {
  if ((w0 & IRTE_POSTED_W0_RSVD) !== 0) return "reserved bits 7:2, 13:12 or 31:24 set in a posted-format entry";
  if ((w1 & IRTE_POSTED_W1_RSVD) !== 0) return "reserved bits 37:32 set in a posted-format entry";
  if ((w2 & IRTE_W2_RSVD) !== 0) return "reserved bits 95:84 set";
  const haw = Math.min(64, Math.max(32, hostAddressWidth));
  if (haw < 64 && w3 >>> 0 >= 2 ** (haw - 32)) return `posted-interrupt descriptor address beyond the ${haw}-bit host address width`;
  if (((w2 >>> IRTE_SVT_SHIFT) & 3) === 3) return "reserved source validation type 11b";
  return null;
}

/** The four words of a posted-format IRTE (for table builders). Range-checks every field. */
export function encodePostedIrte(f: Partial<Omit<PostedIrteFields, "descriptor">> & { vector: number; descriptor: number | bigint }): IrteWords {
  const avail = f.avail ?? 0;
  const sid = f.sid ?? 0;
  const sq = f.sq ?? 0;
  const svt = f.svt ?? 0;
  checkField("vector", f.vector, 0xff);
  checkField("avail", avail, 0xf);
  checkField("sid", sid, 0xffff);
  checkField("sq", sq, 3);
  checkField("svt", svt, 3);
  const pda = BigInt(f.descriptor);
  if (pda < 0n || pda >= 1n << 64n || (pda & 0x3fn) !== 0n) throw new RangeError(`descriptor 0x${pda.toString(16)} is not a 64-byte aligned 64-bit address`);
  const w0 =
    ((f.present ?? true) ? IRTE_P : 0) |
    (f.fpd === true ? IRTE_FPD : 0) |
    (avail << IRTE_AVAIL_SHIFT) |
    (f.urgent === true ? IRTE_URG : 0) |
    IRTE_IM |
    (f.vector << IRTE_VECTOR_SHIFT);
  return [w0 >>> 0, Number(pda & 0xffff_ffc0n) >>> 0, (sid | (sq << IRTE_SQ_SHIFT) | (svt << IRTE_SVT_SHIFT)) >>> 0, Number(pda >> 32n) >>> 0];
}

// ---- Posted-interrupt descriptor (VT-d spec 9.12): 64 bytes, 64-byte aligned, as 16 little-endian words ----
//   words 0..7  PIR, bits 255:0: one request bit per vector
//   word 8      bit 256 ON (outstanding notification), bit 257 SN (suppress notification), NV bits 279:272
//   word 9      NDST bits 319:288: xAPIC mode APIC id in bits 303:296 (NDST 15:8), x2APIC mode all 32 bits
//   words 10..15 reserved

export const PID_SIZE = 64;
/** Byte offsets of the control word (ON, SN, NV) and of NDST. */
export const PID_CONTROL_OFFSET = 32;
export const PID_NDST_OFFSET = 36;
export const PID_ON = 1 << 0;
export const PID_SN = 1 << 1;
export const PID_NV_SHIFT = 16;

/** The PIR dword that holds a vector's request bit, as a byte offset into the descriptor, and the bit's mask. */
export function pirOffset(vector: number): number {
  return PIR_DWORD_BYTES * (vector >>> PIR_DWORD_SHIFT);
}

export function pirBit(vector: number): number {
  return (1 << (vector & (2 ** PIR_DWORD_SHIFT - 1))) >>> 0;
}

const PIR_DWORD_BYTES = 4;
const PIR_DWORD_SHIFT = 5;
/** PIR is 256 bits, one per vector: eight dwords at the start of the descriptor. */
export const PIR_DWORDS = 8;

/** The vector of bit `bit` of PIR dword `dword`. */
export function pirVector(dword: number, bit: number): number {
  return dword * 2 ** PIR_DWORD_SHIFT + bit;
}

/** The notification vector (NV) from the descriptor's control dword. */
export function pidNotificationVector(control: number): number {
  return (control >>> PID_NV_SHIFT) & 0xff;
}

/** The APIC id NDST names: bits 15:8 in xAPIC mode, the whole field in x2APIC mode (EIME). */
export function pidDestination(ndst: number, eime: boolean): number {
  return eime ? ndst >>> 0 : (ndst >>> 8) & 0xff;
}

/** NDST for an APIC id (the inverse of pidDestination). */
export function encodePidDestination(apic: number, eime: boolean): number {
  checkField("apic", apic, eime ? 0xffff_ffff : 0xff);
  return eime ? apic >>> 0 : (apic << 8) >>> 0;
}

/** The control word (bits 287:256) for a notification vector, ON and SN. */
export function encodePidControl(nv: number, on = false, sn = false): number {
  checkField("nv", nv, 0xff);
  return ((nv << PID_NV_SHIFT) | (on ? PID_ON : 0) | (sn ? PID_SN : 0)) >>> 0;
}

function checkField(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} ${v} is outside 0..0x${max.toString(16)}`);
}
