/**
 * VT-d fault reporting formats: the fault reasons of legacy-mode DMA remapping (VT-d spec 7.1.3, condition codes
 * LRT/LCT/LSL/LGN) and their names, which of them are qualified (7.1.3), and the 128-bit fault recording register
 * (FRCD_REG, 10.4.14) with an encoder (for the hardware model) and a decoder (for the driver and tests).
 * Interrupt-remapping fault reasons (5.1.4.1) are in intremap.ts.
 */
import { field as f, maskOf, setWordsField, wordMask, wordsField } from "./fields.js";
import { IR_FAULT_DESCRIPTIONS, IR_FAULT_NAMES, VTD_FR_IR_REQ_RSVD, VTD_FR_IR_SID_ERR, type IrFaultReason } from "./intremap.js";
import { isScalableFault, isScalableQualified, smFaultDescription, smFaultName } from "./sm-faults.js";

// ---- Fault reasons (7.1.3 legacy-mode condition codes) ----

export const VTD_FR_ROOT_ENTRY_P = 0x1; // LRT.2 root entry Present clear
export const VTD_FR_CONTEXT_ENTRY_P = 0x2; // LCT.2 context entry Present clear
export const VTD_FR_CONTEXT_ENTRY_INV = 0x3; // LCT.4 invalid programming of a context entry
export const VTD_FR_ADDR_BEYOND_MGAW = 0x4; // LGN.1 input address above 2^X - 1
export const VTD_FR_WRITE = 0x5; // LGN.2 write without write permission
export const VTD_FR_READ = 0x6; // LGN.3 read without read permission
export const VTD_FR_PAGING_ENTRY_INV = 0x7; // LSL.1 error accessing a second-level paging entry
export const VTD_FR_ROOT_TABLE_INV = 0x8; // LRT.1 error accessing the root entry
export const VTD_FR_CONTEXT_TABLE_INV = 0x9; // LCT.1 error accessing the context entry
export const VTD_FR_ROOT_ENTRY_RSVD = 0xa; // LRT.3 reserved field in a present root entry
export const VTD_FR_CONTEXT_ENTRY_RSVD = 0xb; // LCT.3 reserved field in a present context entry
export const VTD_FR_PAGING_ENTRY_RSVD = 0xc; // LSL.2 reserved field in a present second-level entry
export const VTD_FR_CONTEXT_ENTRY_TT = 0xd; // LCT.5 request blocked by the context entry's TT
export const VTD_FR_INTERRUPT_ADDR = 0xe; // LGN.4 translated address lies in the interrupt address range

export type DmaFaultReason = 0x1 | 0x2 | 0x3 | 0x4 | 0x5 | 0x6 | 0x7 | 0x8 | 0x9 | 0xa | 0xb | 0xc | 0xd | 0xe;

/** Stable short names (QEMU's VTD_FR_* names without the prefix), for scripts. */
export const DMA_FAULT_NAMES: Readonly<Record<DmaFaultReason, string>> = {
  0x1: "ROOT_ENTRY_P",
  0x2: "CONTEXT_ENTRY_P",
  0x3: "CONTEXT_ENTRY_INV",
  0x4: "ADDR_BEYOND_MGAW",
  0x5: "WRITE",
  0x6: "READ",
  0x7: "PAGING_ENTRY_INV",
  0x8: "ROOT_TABLE_INV",
  0x9: "CONTEXT_TABLE_INV",
  0xa: "ROOT_ENTRY_RSVD",
  0xb: "CONTEXT_ENTRY_RSVD",
  0xc: "PAGING_ENTRY_RSVD",
  0xd: "CONTEXT_ENTRY_TT",
  0xe: "INTERRUPT_ADDR",
};

/** One line per fault reason, for people. */
export const DMA_FAULT_DESCRIPTIONS: Readonly<Record<DmaFaultReason, string>> = {
  0x1: "the root entry for this bus is not present",
  0x2: "the context entry for this device is not present",
  0x3: "the context entry is programmed with an unsupported address width or translation type",
  0x4: "the address is above the width the context entry and MGAW allow",
  0x5: "write to a page the second-level tables do not make writable",
  0x6: "read from a page the second-level tables do not make readable",
  0x7: "a second-level paging entry could not be read",
  0x8: "the root entry could not be read",
  0x9: "the context entry could not be read",
  0xa: "reserved bits are set in a present root entry",
  0xb: "reserved bits are set in a present context entry",
  0xc: "reserved bits are set in a present second-level paging entry",
  0xd: "the context entry's translation type blocks this kind of request",
  0xe: "the translation ends in the interrupt address range 0xFEEx_xxxx",
};

/**
 * Qualified faults (7.1.3) are recorded only when the context entry's FPD is clear. The rest (errors reaching
 * or decoding the root entry, the context table, or a context entry's reserved bits) are always recorded.
 */
export function isQualifiedFault(reason: number): boolean {
  if (isScalableFault(reason)) return isScalableQualified(reason);
  switch (reason) {
    case VTD_FR_CONTEXT_ENTRY_P:
    case VTD_FR_CONTEXT_ENTRY_INV:
    case VTD_FR_ADDR_BEYOND_MGAW:
    case VTD_FR_WRITE:
    case VTD_FR_READ:
    case VTD_FR_PAGING_ENTRY_INV:
    case VTD_FR_PAGING_ENTRY_RSVD:
    case VTD_FR_CONTEXT_ENTRY_TT:
    case VTD_FR_INTERRUPT_ADDR:
      return true;
    default:
      return false;
  }
}

/** True for the fault reasons of interrupt remapping (0x20–0x26, 5.1.4.1), whose FI holds an interrupt index. */
export function isInterruptRemappingFault(reason: number): boolean {
  return reason >= VTD_FR_IR_REQ_RSVD && reason <= VTD_FR_IR_SID_ERR;
}

/** Short name of any fault reason (DMA 0x1–0xE, interrupt remapping 0x20–0x26, scalable mode 0x30–0x90), or "UNKNOWN_0x…". */
export function faultReasonName(reason: number): string {
  const dma = DMA_FAULT_NAMES[reason as DmaFaultReason] as string | undefined;
  if (dma !== undefined) return dma;
  const ir = IR_FAULT_NAMES[reason as IrFaultReason] as string | undefined;
  return ir ?? smFaultName(reason) ?? `UNKNOWN_0x${reason.toString(16)}`;
}

/** One-line description of any fault reason. */
export function faultReasonDescription(reason: number): string {
  const dma = DMA_FAULT_DESCRIPTIONS[reason as DmaFaultReason] as string | undefined;
  if (dma !== undefined) return dma;
  const ir = IR_FAULT_DESCRIPTIONS[reason as IrFaultReason] as string | undefined;
  return ir ?? smFaultDescription(reason) ?? `fault reason 0x${reason.toString(16)} is not defined`;
}

// ---- Fault recording registers (10.4.14): 128 bits each, at CAP.FRO * 16 ----

export const FRCD = Object.freeze({
  /** Fault information: bits 63:12 of the faulting page address (DMA faults). */
  FI: f("FI", 12, 52, "10.4.14"),
  SID: f("SID", 64, 16, "10.4.14"),
  /** T2: 1 = the request was a translation request (with T1). */
  T2: f("T2", 92, 1, "10.4.14"),
  PRIV: f("PRIV", 93, 1, "10.4.14"),
  EXE: f("EXE", 94, 1, "10.4.14"),
  PP: f("PP", 95, 1, "10.4.14"),
  FR: f("FR", 96, 8, "10.4.14"),
  PV: f("PV", 104, 20, "10.4.14"),
  AT: f("AT", 124, 2, "10.4.14"),
  /** T1: 1 = read request, 0 = write request. */
  T1: f("T1", 126, 1, "10.4.14"),
  F: f("F", 127, 1, "10.4.14"),
});

/** For interrupt-remapping faults FI bits 63:48 hold the interrupt index (9.9, 10.4.14). */
export const FRCD_INTERRUPT_INDEX = f("INTERRUPT_INDEX", 48, 16, "10.4.14");

/** Bytes per fault recording register. */
export const FRCD_SIZE = 16;
/** The record is two 64-bit registers; the upper one (FI excluded: SID, FR, AT, T, F) is 8 bytes up. */
export const FRCD_HI_QUAD = 8;
/** Byte offsets of the record's dwords (the driver clears F by writing 1 to the top dword). */
export const FRCD_DWORD_OFFSETS = Object.freeze([0, 4, 8, 12] as const);
/** The top dword, which holds F, T1, AT and (in its low byte) FR. */
export const FRCD_TOP_DWORD = FRCD_DWORD_OFFSETS[3];
/** F as a mask of the top dword, and of the upper 64-bit register. */
export const FRCD_W3_F = wordMask(FRCD.F);
export const FRCD_HI_F = maskOf(FRCD.F) >> BigInt(FRCD_HI_QUAD * 8);

/** Request address types (PCIe AT), recorded in FRCD.AT. */
export const AT_UNTRANSLATED = 0;
export const AT_TRANSLATION_REQUEST = 1;
export const AT_TRANSLATED = 2;

/** One fault recording register decoded (10.4.14), exactly (no float arithmetic beyond 53 bits). */
export interface FaultRecordFields {
  /** F, bit 127. */
  fault: boolean;
  /** FR, bits 103:96. */
  reason: number;
  /** SID, bits 79:64. */
  sourceId: number;
  /** T1, bit 126: 1 = read, 0 = write. */
  read: boolean;
  /** T2, bit 92: a translation request. */
  translationRequest: boolean;
  /** AT, bits 125:124. */
  at: number;
  /** FI, bits 63:12, as halves: the faulting page address (DMA faults). */
  fiLo: number;
  fiHi: number;
  /** FI bits 63:48: the interrupt index of an interrupt-remapping fault (fault reasons 0x20–0x2f). */
  interruptIndex: number;
  /** PP, bit 95: the request had a PASID (scalable mode), which PV (bits 123:104) holds. */
  pasidPresent: boolean;
  pasid: number;
}

export function decodeFaultRecord(w0: number, w1: number, w2: number, w3: number): FaultRecordFields {
  const words = [w0, w1, w2, w3];
  return {
    fault: wordsField(words, FRCD.F) === 1,
    reason: wordsField(words, FRCD.FR),
    sourceId: wordsField(words, FRCD.SID),
    read: wordsField(words, FRCD.T1) === 1,
    translationRequest: wordsField(words, FRCD.T2) === 1,
    at: wordsField(words, FRCD.AT),
    fiLo: (w0 & wordMask(FRCD.FI)) >>> 0,
    fiHi: w1 >>> 0,
    interruptIndex: wordsField(words, FRCD_INTERRUPT_INDEX),
    pasidPresent: wordsField(words, FRCD.PP) === 1,
    pasid: wordsField(words, FRCD.PV),
  };
}

/** What the hardware writes into a fault recording register (F is always set). */
export interface FaultRecordInput {
  reason: number;
  sourceId: number;
  read: boolean;
  translationRequest: boolean;
  at: number;
  /** The faulting address (its bits 11:0 are dropped), as halves; or, for interrupt faults, use interruptIndex. */
  addrLo?: number;
  addrHi?: number;
  interruptIndex?: number;
  /** The PASID of a request with a PASID (scalable mode): PP set, PV the PASID. */
  pasid?: number;
}

/** The four dwords of a recorded fault (10.4.14). Values wider than their fields are truncated to them. */
export function encodeFaultRecord(r: FaultRecordInput): [number, number, number, number] {
  const words: [number, number, number, number] = [(r.addrLo ?? 0) & wordMask(FRCD.FI), (r.addrHi ?? 0) >>> 0, 0, 0];
  if (r.interruptIndex !== undefined) setWordsField(words, FRCD_INTERRUPT_INDEX, r.interruptIndex);
  setWordsField(words, FRCD.SID, r.sourceId);
  setWordsField(words, FRCD.T2, r.translationRequest);
  setWordsField(words, FRCD.FR, r.reason);
  setWordsField(words, FRCD.AT, r.at);
  setWordsField(words, FRCD.T1, r.read);
  if (r.pasid !== undefined) {
    setWordsField(words, FRCD.PP, true);
    setWordsField(words, FRCD.PV, r.pasid);
  }
  setWordsField(words, FRCD.F, true);
  words[0] >>>= 0;
  return words;
}
