/**
 * Intel VT-d constants, with the names and numbers of the specification ("Intel Virtualization Technology for
 * Directed I/O, Architecture Specification", rev. 3.x). Register offsets come from chapter 10.4, table formats
 * from chapter 9, fault reasons from chapter 7 (and 5.1.4.1 for interrupt remapping), invalidation descriptors
 * from 6.5.2. Bit masks are split into 32-bit halves (_LO/_HI) where the hot paths need them.
 */
import { IR_FAULT_DESCRIPTIONS, IR_FAULT_NAMES, type IrFaultReason } from "./intremap.js";

// ---- Register offsets (VT-d spec 10.4, "Register Descriptions") ----

export const DMAR_VER_REG = 0x00; // 10.4.1 Version
export const DMAR_CAP_REG = 0x08; // 10.4.2 Capability
export const DMAR_ECAP_REG = 0x10; // 10.4.3 Extended Capability
export const DMAR_GCMD_REG = 0x18; // 10.4.4 Global Command
export const DMAR_GSTS_REG = 0x1c; // 10.4.5 Global Status
export const DMAR_RTADDR_REG = 0x20; // 10.4.6 Root Table Address
export const DMAR_CCMD_REG = 0x28; // 10.4.7 Context Command
export const DMAR_FSTS_REG = 0x34; // 10.4.9 Fault Status
export const DMAR_FECTL_REG = 0x38; // 10.4.10 Fault Event Control
export const DMAR_FEDATA_REG = 0x3c; // 10.4.11 Fault Event Data
export const DMAR_FEADDR_REG = 0x40; // 10.4.12 Fault Event Address
export const DMAR_FEUADDR_REG = 0x44; // 10.4.13 Fault Event Upper Address
export const DMAR_AFLOG_REG = 0x58; // 10.4.15 Advanced Fault Log
export const DMAR_PMEN_REG = 0x64; // 10.4.16 Protected Memory Enable
export const DMAR_PLMBASE_REG = 0x68; // 10.4.17 Protected Low-Memory Base
export const DMAR_PLMLIMIT_REG = 0x6c; // 10.4.18 Protected Low-Memory Limit
export const DMAR_PHMBASE_REG = 0x70; // 10.4.19 Protected High-Memory Base
export const DMAR_PHMLIMIT_REG = 0x78; // 10.4.20 Protected High-Memory Limit
export const DMAR_IQH_REG = 0x80; // 10.4.22 Invalidation Queue Head
export const DMAR_IQT_REG = 0x88; // 10.4.23 Invalidation Queue Tail
export const DMAR_IQA_REG = 0x90; // 10.4.24 Invalidation Queue Address
export const DMAR_ICS_REG = 0x9c; // 10.4.25 Invalidation Completion Status
export const DMAR_IECTL_REG = 0xa0; // 10.4.26 Invalidation Event Control
export const DMAR_IEDATA_REG = 0xa4; // 10.4.27 Invalidation Event Data
export const DMAR_IEADDR_REG = 0xa8; // 10.4.28 Invalidation Event Address
export const DMAR_IEUADDR_REG = 0xac; // 10.4.29 Invalidation Event Upper Address
export const DMAR_IQERCD_REG = 0xb0; // 10.4.30 Invalidation Queue Error Record
export const DMAR_IRTA_REG = 0xb8; // 10.4.31 Interrupt Remapping Table Address
/** IVA_REG is at ECAP.IRO * 16, IOTLB_REG 8 bytes after it (10.4.8). */
export const IOTLB_REG_FROM_IVA = 0x8;

// ---- GCMD_REG / GSTS_REG bits (10.4.4, 10.4.5): each command bit has its status bit at the same position ----

export const GCMD_TE = 1 << 31; // Translation Enable        -> GSTS.TES
export const GCMD_SRTP = 1 << 30; // Set Root Table Pointer  -> GSTS.RTPS
export const GCMD_SFL = 1 << 29; // Set Fault Log            -> GSTS.FLS
export const GCMD_EAFL = 1 << 28; // Enable Advanced Fault Logging -> GSTS.AFLS
export const GCMD_WBF = 1 << 27; // Write Buffer Flush       -> GSTS.WBFS
export const GCMD_QIE = 1 << 26; // Queued Invalidation Enable -> GSTS.QIES
export const GCMD_IRE = 1 << 25; // Interrupt Remapping Enable -> GSTS.IRES
export const GCMD_SIRTP = 1 << 24; // Set Interrupt Remap Table Pointer -> GSTS.IRTPS
export const GCMD_CFI = 1 << 23; // Compatibility Format Interrupt -> GSTS.CFIS
export const GSTS_TES = GCMD_TE;
export const GSTS_RTPS = GCMD_SRTP;
export const GSTS_WBFS = GCMD_WBF;
export const GSTS_QIES = GCMD_QIE;
export const GSTS_IRES = GCMD_IRE;
export const GSTS_IRTPS = GCMD_SIRTP;
export const GSTS_CFIS = GCMD_CFI;
/** The command bits of GCMD (31:23); bits 22:0 are reserved. */
export const GCMD_COMMAND_MASK = 0xff800000;

// ---- CCMD_REG (10.4.7), in the high half: ICC bit 63, CIRG 62:61, CAIG 60:59; FM 33:32 ----

export const CCMD_HI_ICC = 1 << 31;
export const CCMD_HI_CIRG_SHIFT = 29;
export const CCMD_HI_CAIG_SHIFT = 27;
export const CCMD_HI_CAIG_MASK = 3 << 27;
/** Invalidation granularities shared by CCMD.CIRG/CAIG and the context-cache descriptor's G field. */
export const INV_GLOBAL = 1;
export const INV_DOMAIN = 2;
export const INV_DEVICE = 3;
/** Same encoding for IOTLB_REG.IIRG/IAIG and the IOTLB descriptor's G field: 3 = page-selective. */
export const INV_PAGE = 3;

// ---- IOTLB_REG (10.4.8.1), high half: IVT bit 63, IIRG 61:60, IAIG 58:57, DR 49, DW 48, DID 47:32 ----

export const IOTLB_HI_IVT = 1 << 31;
export const IOTLB_HI_IIRG_SHIFT = 28;
export const IOTLB_HI_IAIG_SHIFT = 25;
export const IOTLB_HI_IAIG_MASK = 3 << 25;
/** IVA_REG (10.4.8.2): AM bits 5:0, IH bit 6, ADDR bits 63:12. */
export const IVA_AM_MASK = 0x3f;
export const IVA_IH = 1 << 6;

// ---- FSTS_REG (10.4.9) / FECTL_REG (10.4.10) / ICS_REG (10.4.25) / IECTL_REG (10.4.26) ----

export const FSTS_PFO = 1 << 0; // Primary Fault Overflow
export const FSTS_PPF = 1 << 1; // Primary Pending Fault
export const FSTS_AFO = 1 << 2; // Advanced Fault Overflow
export const FSTS_APF = 1 << 3; // Advanced Pending Fault
export const FSTS_IQE = 1 << 4; // Invalidation Queue Error
export const FSTS_ICE = 1 << 5; // Invalidation Completion Error
export const FSTS_ITE = 1 << 6; // Invalidation Time-out Error
export const FSTS_FRI_SHIFT = 8; // Fault Record Index, bits 15:8
export const FSTS_FRI_MASK = 0xff00;
/** Status fields whose being set means an interrupt condition is still pending (7.3). */
export const FSTS_EVENT_FIELDS = FSTS_PFO | FSTS_PPF | FSTS_IQE | FSTS_ICE | FSTS_ITE;
export const FECTL_IM = 1 << 31; // Interrupt Mask
export const FECTL_IP = 1 << 30; // Interrupt Pending
export const ICS_IWC = 1 << 0; // Invalidation Wait Descriptor Complete
export const IECTL_IM = 1 << 31;
export const IECTL_IP = 1 << 30;

// ---- Fault recording registers (10.4.14), 128 bits each at CAP.FRO * 16 ----

/** High dword of the high quad (bits 127:96): F bit 127, T bit 126, AT 125:124, PV, FR 103:96 is in the dword below. */
export const FRCD_W3_F = 1 << 31;
export const FRCD_W3_T1 = 1 << 30; // T (T1): 1 = read request, 0 = write request
export const FRCD_W3_AT_SHIFT = 28; // AT, bits 125:124
/** Dword 2 (bits 95:64): SID 79:64, T2 bit 92, PRIV 93, EXE 94, PP 95. */
export const FRCD_W2_T2 = 1 << 28; // T2: 1 = page (translation) request
export const FRCD_W3_FR_MASK = 0xff; // FR, bits 103:96 (low byte of dword 3)
export const FRCD_SIZE = 16;

/** One fault recording register decoded (10.4.14), from its four dwords, exactly (no float arithmetic). */
export interface FaultRecordFields {
  /** F, bit 127. */
  fault: boolean;
  /** FR, bits 103:96. */
  reason: number;
  /** SID, bits 79:64. */
  sourceId: number;
  /** T1, bit 126: 1 = read, 0 = write. */
  read: boolean;
  /** FI, bits 63:12, as halves: the faulting page address (DMA faults). */
  fiLo: number;
  fiHi: number;
  /** FI bits 63:48: the interrupt index of an interrupt-remapping fault (fault reasons 0x20–0x2f). */
  interruptIndex: number;
}

export function decodeFaultRecord(w0: number, w1: number, w2: number, w3: number): FaultRecordFields {
  return {
    fault: (w3 & FRCD_W3_F) !== 0,
    reason: w3 & FRCD_W3_FR_MASK,
    sourceId: w2 & 0xffff,
    read: (w3 & FRCD_W3_T1) !== 0,
    fiLo: (w0 & 0xfffff000) >>> 0,
    fiHi: w1 >>> 0,
    interruptIndex: w1 >>> 16,
  };
}

// ---- Root entry (9.1) and context entry (9.3), legacy mode ----

export const ROOT_ENTRY_SIZE = 16;
export const CONTEXT_ENTRY_SIZE = 16;
export const ENTRY_P = 1; // Present, bit 0 of root and context entries
export const ROOT_LO_RSVD = 0xffe; // bits 11:1
export const CTX_LO_FPD = 1 << 1; // Fault Processing Disable
export const CTX_LO_TT_SHIFT = 2; // Translation Type, bits 3:2
export const CTX_LO_RSVD = 0xff0; // bits 11:4
export const CTX_HI_AW_MASK = 7; // Address Width, bits 66:64
export const CTX_HI_RSVD_LO = 0x80; // bit 71 (dword 2 bit 7)
export const CTX_HI_DID_SHIFT = 8; // Domain Identifier, bits 87:72
/** Dword 2 bits 31:24 and all of dword 3 (bits 127:88) are reserved. */
export const CTX_HI_RSVD_HI_DWORD2 = 0xff000000;

/** Context-entry Translation Type (9.3). */
export const TT_MULTI_LEVEL = 0; // untranslated requests translated through second-level tables
export const TT_DEVICE_TLB = 1; // as 00, plus translation requests from device-TLBs (ECAP.DT)
export const TT_PASS_THROUGH = 2; // untranslated requests pass through (ECAP.PT)
export const TT_RESERVED = 3;

/** Request address type (PCIe AT field), recorded in FRCD.AT. */
export const AT_UNTRANSLATED = 0;
export const AT_TRANSLATION_REQUEST = 1;
export const AT_TRANSLATED = 2;

// ---- Second-level paging entries (9.8) ----

export const SL_R = 1 << 0; // Read
export const SL_W = 1 << 1; // Write
export const SL_PS = 1 << 7; // Page Size: a 2 MiB (SL-PDE) or 1 GiB (SL-PDPE) page
export const SL_SNP = 1 << 11; // Snoop: reserved unless ECAP.SC
export const SL_HI_TM = 1 << 30; // Transient Mapping, bit 62: reserved unless ECAP.DT
/** Bits 63 and 61:52 are ignored (entry bits above the address, in the high dword). */
export const SL_HI_IGNORED = 0xbff00000;
export const SL_LEVEL_BITS = 9;
export const PAGE_SHIFT_4K = 12;
/** Names of second-level paging entries by level (1 = leaf table). */
export const SL_LEVEL_NAMES = ["", "SL-PTE", "SL-PDE", "SL-PDPE", "SL-PML4E", "SL-PML5E"] as const;

/** CAP.SAGAW bits (10.4.2): bit 1 = 39-bit/3-level, bit 2 = 48-bit/4-level, bit 3 = 57-bit/5-level. */
export const SAGAW_39 = 1 << 1;
export const SAGAW_48 = 1 << 2;
export const SAGAW_57 = 1 << 3;
/** CAP.SLLPS bits: bit 0 = 2 MiB pages, bit 1 = 1 GiB pages. */
export const SLLPS_2M = 1 << 0;
export const SLLPS_1G = 1 << 1;

/** Interrupt address range (3.14): requests to 0xFEEx_xxxx are interrupt requests, never DMA. */
export const INTERRUPT_ADDR_FIRST = 0xfee00000;
export const INTERRUPT_ADDR_LAST = 0xfeefffff;
export const INTERRUPT_ADDR_HEAD = 0xfee;

// ---- Invalidation queue (6.5.2, 10.4.22–10.4.24) ----

export const IQA_QS_MASK = 7; // Queue Size: 2^QS 4 KiB pages
export const IQA_DW = 1 << 11; // Descriptor Width: 1 = 256-bit descriptors
export const IQ_QH_SHIFT_128 = 4;
export const IQ_QH_SHIFT_256 = 5;
export const IQ_QT_MASK = 0x7fff0; // bits 18:4
/** Descriptor types (6.5.2): bits 3:0 plus bits 11:9 as type[6:4]. */
export const INV_DESC_CC = 0x1; // 6.5.2.1 context-cache invalidate
export const INV_DESC_IOTLB = 0x2; // 6.5.2.3 IOTLB invalidate
export const INV_DESC_DEVICE_IOTLB = 0x3; // 6.5.2.5 device-TLB invalidate
export const INV_DESC_IEC = 0x4; // 6.5.2.7 interrupt entry cache invalidate
export const INV_DESC_WAIT = 0x5; // 6.5.2.8 invalidation wait
export const INV_DESC_PIOTLB = 0x6; // 6.5.2.4 PASID-based IOTLB (scalable mode only)
export const INV_DESC_PC = 0x7; // 6.5.2.2 PASID-cache (scalable mode only)
export const INV_DESC_P_DEVICE_IOTLB = 0x8; // 6.5.2.6 PASID-based device-TLB (scalable mode only)
/** Invalidation wait descriptor flags (6.5.2.8). */
export const WAIT_IF = 1 << 4; // Interrupt Flag
export const WAIT_SW = 1 << 5; // Status Write
export const WAIT_FN = 1 << 6; // Fence
export const WAIT_PD = 1 << 7; // Page-request Drain
/** IQERCD_REG.IQEI codes (10.4.30). */
export const IQEI_NONE = 0;
export const IQEI_INVALID_TAIL = 1;
export const IQEI_FETCH_ERROR = 2;
export const IQEI_INVALID_TYPE = 3;
export const IQEI_RESERVED_FIELD = 4;
export const IQEI_INVALID_WIDTH = 5;
export const IQEI_TAIL_MISALIGNED = 6;

// ---- Fault reasons (7.1.3 legacy-mode condition codes; 5.1.4.1 for interrupt remapping) ----

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

/** Short name of any fault reason (DMA 0x1–0xE, interrupt remapping 0x20–0x26), or "UNKNOWN_0x…". */
export function faultReasonName(reason: number): string {
  const dma = DMA_FAULT_NAMES[reason as DmaFaultReason] as string | undefined;
  if (dma !== undefined) return dma;
  const ir = IR_FAULT_NAMES[reason as IrFaultReason] as string | undefined;
  return ir ?? `UNKNOWN_0x${reason.toString(16)}`;
}

/** One-line description of any fault reason. */
export function faultReasonDescription(reason: number): string {
  const dma = DMA_FAULT_DESCRIPTIONS[reason as DmaFaultReason] as string | undefined;
  if (dma !== undefined) return dma;
  const ir = IR_FAULT_DESCRIPTIONS[reason as IrFaultReason] as string | undefined;
  return ir ?? `fault reason 0x${reason.toString(16)} is not defined for legacy mode`;
}
