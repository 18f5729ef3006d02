/**
 * VT-d remapping-unit registers ("Intel Virtualization Technology for Directed I/O, Architecture
 * Specification", rev. 3.x, chapter 10.4): every offset, and the fields of every register a legacy-mode unit
 * has, with the spec's names. CAP_REG and ECAP_REG are in capability.ts, fault recording registers in faults.ts.
 * The single-bit fields are also exported as 32-bit masks of their dword (GCMD_TE, FSTS_IQE, …): those are
 * derived from the field data below, never written separately.
 */
import { field as f, fieldOf, maskOf, shiftOf, wordMask, type FieldSpec } from "./fields.js";

// ---- Register offsets (10.4, "Register Descriptions") ----

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
/** IVA_REG is at ECAP.IRO * 16 (10.4.8.2); IOTLB_REG is 8 bytes after it (10.4.8.1); together 16 bytes. */
export const IOTLB_REG_FROM_IVA = 0x8;
export const IOTLB_REGS_SIZE = 0x10;
/** Registers are 32 or 64 bits wide; a 64-bit register's upper dword is 4 bytes above it. */
export const REG_HI = 4;
export const REG64_SIZE = 8;
/** The end of the registers at fixed offsets: IVA/IOTLB (ECAP.IRO) and the fault records (CAP.FRO) lie above. */
export const FIXED_REGISTERS_END = DMAR_IRTA_REG + REG64_SIZE;
/** The register window of a unit is at least one 4 KiB page (10.4). */
export const REG_WINDOW_MIN = 0x1000;

// ---- Register fields ----

/** VER_REG (10.4.1). */
export const VER = Object.freeze({ MIN: f("MIN", 0, 4, "10.4.1"), MAX: f("MAX", 4, 4, "10.4.1") });

/** GCMD_REG (10.4.4): each command bit has its status bit at the same position in GSTS_REG (10.4.5). */
export const GCMD = Object.freeze({
  CFI: f("CFI", 23, 1, "10.4.4"),
  SIRTP: f("SIRTP", 24, 1, "10.4.4"),
  IRE: f("IRE", 25, 1, "10.4.4"),
  QIE: f("QIE", 26, 1, "10.4.4"),
  WBF: f("WBF", 27, 1, "10.4.4"),
  EAFL: f("EAFL", 28, 1, "10.4.4"),
  SFL: f("SFL", 29, 1, "10.4.4"),
  SRTP: f("SRTP", 30, 1, "10.4.4"),
  TE: f("TE", 31, 1, "10.4.4"),
});

/** GSTS_REG (10.4.5). */
export const GSTS = Object.freeze({
  CFIS: f("CFIS", 23, 1, "10.4.5"),
  IRTPS: f("IRTPS", 24, 1, "10.4.5"),
  IRES: f("IRES", 25, 1, "10.4.5"),
  QIES: f("QIES", 26, 1, "10.4.5"),
  WBFS: f("WBFS", 27, 1, "10.4.5"),
  AFLS: f("AFLS", 28, 1, "10.4.5"),
  FLS: f("FLS", 29, 1, "10.4.5"),
  RTPS: f("RTPS", 30, 1, "10.4.5"),
  TES: f("TES", 31, 1, "10.4.5"),
});

/** RTADDR_REG (10.4.6): root table address and translation table mode. */
export const RTADDR = Object.freeze({ TTM: f("TTM", 10, 2, "10.4.6"), RTA: f("RTA", 12, 52, "10.4.6") });
/** RTADDR.TTM encodings (10.4.6). */
export const TTM_LEGACY = 0;
export const TTM_SCALABLE = 1;
export const TTM_ABORT_DMA = 3;

/** CCMD_REG (10.4.7). */
export const CCMD = Object.freeze({
  DID: f("DID", 0, 16, "10.4.7"),
  SID: f("SID", 16, 16, "10.4.7"),
  FM: f("FM", 32, 2, "10.4.7"),
  CAIG: f("CAIG", 59, 2, "10.4.7"),
  CIRG: f("CIRG", 61, 2, "10.4.7"),
  ICC: f("ICC", 63, 1, "10.4.7"),
});

/** IOTLB_REG (10.4.8.1). */
export const IOTLB = Object.freeze({
  DID: f("DID", 32, 16, "10.4.8.1"),
  DW: f("DW", 48, 1, "10.4.8.1"),
  DR: f("DR", 49, 1, "10.4.8.1"),
  IAIG: f("IAIG", 57, 2, "10.4.8.1"),
  IIRG: f("IIRG", 60, 2, "10.4.8.1"),
  IVT: f("IVT", 63, 1, "10.4.8.1"),
});

/** IVA_REG (10.4.8.2). */
export const IVA = Object.freeze({ AM: f("AM", 0, 6, "10.4.8.2"), IH: f("IH", 6, 1, "10.4.8.2"), ADDR: f("ADDR", 12, 52, "10.4.8.2") });

/**
 * Invalidation granularities: CCMD.CIRG/CAIG and the context-cache descriptor's G (1 global, 2 domain,
 * 3 device), IOTLB_REG.IIRG/IAIG and the IOTLB descriptor's G (1 global, 2 domain, 3 page) (10.4.7, 10.4.8.1,
 * 6.5.2.1, 6.5.2.3). 0 is reserved (an actual granularity of 0 reports a request that was not performed).
 */
export const INV_GLOBAL = 1;
export const INV_DOMAIN = 2;
export const INV_DEVICE = 3;
export const INV_PAGE = 3;

/**
 * Function mask (CCMD.FM, 10.4.7; the context-cache descriptor's FM, 6.5.2.1) and source-id qualifier (IRTE SQ,
 * 9.10) share one encoding: 00 compare all 16 bits of the source id, 01 ignore bit 2, 10 ignore bits 2:1,
 * 11 ignore bits 2:0. The mask of the source-id bits that are compared:
 */
export function sidCompareMask(fm: number): number {
  const ignored = [0, 0b100, 0b110, 0b111][fm & 3] ?? 0;
  return 0xffff & ~ignored;
}

/** FSTS_REG (10.4.9). */
export const FSTS = Object.freeze({
  PFO: f("PFO", 0, 1, "10.4.9"),
  PPF: f("PPF", 1, 1, "10.4.9"),
  AFO: f("AFO", 2, 1, "10.4.9"),
  APF: f("APF", 3, 1, "10.4.9"),
  IQE: f("IQE", 4, 1, "10.4.9"),
  ICE: f("ICE", 5, 1, "10.4.9"),
  ITE: f("ITE", 6, 1, "10.4.9"),
  FRI: f("FRI", 8, 8, "10.4.9"),
});

/** FECTL_REG (10.4.10) and IECTL_REG (10.4.26). */
export const FECTL = Object.freeze({ IP: f("IP", 30, 1, "10.4.10"), IM: f("IM", 31, 1, "10.4.10") });
export const IECTL = Object.freeze({ IP: f("IP", 30, 1, "10.4.26"), IM: f("IM", 31, 1, "10.4.26") });

/** FEDATA_REG (10.4.11) and IEDATA_REG (10.4.27): interrupt message data (EIMD with ECAP.EIM). */
export const FEDATA = Object.freeze({ IMD: f("IMD", 0, 16, "10.4.11"), EIMD: f("EIMD", 16, 16, "10.4.11") });
export const IEDATA = Object.freeze({ IMD: f("IMD", 0, 16, "10.4.27"), EIMD: f("EIMD", 16, 16, "10.4.27") });

/** FEADDR_REG (10.4.12) and IEADDR_REG (10.4.28): message address bits 31:2. */
export const FEADDR = Object.freeze({ MA: f("MA", 2, 30, "10.4.12") });
export const IEADDR = Object.freeze({ MA: f("MA", 2, 30, "10.4.28") });

/** PMEN_REG (10.4.16). */
export const PMEN = Object.freeze({ PRS: f("PRS", 0, 1, "10.4.16"), EPM: f("EPM", 31, 1, "10.4.16") });

/** IQH_REG (10.4.22) and IQT_REG (10.4.23): the descriptor offset, in 128-bit units. */
export const IQH = Object.freeze({ QH: f("QH", 4, 15, "10.4.22") });
export const IQT = Object.freeze({ QT: f("QT", 4, 15, "10.4.23") });

/** IQA_REG (10.4.24). */
export const IQA = Object.freeze({ QS: f("QS", 0, 3, "10.4.24"), DW: f("DW", 11, 1, "10.4.24"), IQA: f("IQA", 12, 52, "10.4.24") });

/** ICS_REG (10.4.25). */
export const ICS = Object.freeze({ IWC: f("IWC", 0, 1, "10.4.25") });

/** IQERCD_REG (10.4.30). */
export const IQERCD = Object.freeze({ IQEI: f("IQEI", 0, 4, "10.4.30"), ITESID: f("ITESID", 32, 16, "10.4.30"), ICESID: f("ICESID", 48, 16, "10.4.30") });

/** IQERCD.IQEI codes (10.4.30). */
export const IQEI_NONE = 0;
export const IQEI_INVALID_TAIL = 1;
export const IQEI_FETCH_ERROR = 2;
export const IQEI_INVALID_TYPE = 3;
export const IQEI_RESERVED_FIELD = 4;
export const IQEI_INVALID_WIDTH = 5;
export const IQEI_TAIL_MISALIGNED = 6;

/** IRTA_REG (10.4.31): table size (2^(S+1) entries), extended interrupt mode, table address. */
export const IRTA = Object.freeze({ S: f("S", 0, 4, "10.4.31"), EIME: f("EIME", 11, 1, "10.4.31"), IRTA: f("IRTA", 12, 52, "10.4.31") });

// ---- Derived masks, for the paths that test bits of a register dword ----

/** The 32-bit mask of a flag of a 32-bit register (or of the dword of a 64-bit one that holds it). */
export function flag(s: FieldSpec): number {
  return wordMask(s);
}

export const GCMD_TE = flag(GCMD.TE);
export const GCMD_SRTP = flag(GCMD.SRTP);
export const GCMD_SFL = flag(GCMD.SFL);
export const GCMD_EAFL = flag(GCMD.EAFL);
export const GCMD_WBF = flag(GCMD.WBF);
export const GCMD_QIE = flag(GCMD.QIE);
export const GCMD_IRE = flag(GCMD.IRE);
export const GCMD_SIRTP = flag(GCMD.SIRTP);
export const GCMD_CFI = flag(GCMD.CFI);
export const GSTS_TES = flag(GSTS.TES);
export const GSTS_RTPS = flag(GSTS.RTPS);
export const GSTS_WBFS = flag(GSTS.WBFS);
export const GSTS_QIES = flag(GSTS.QIES);
export const GSTS_IRES = flag(GSTS.IRES);
export const GSTS_IRTPS = flag(GSTS.IRTPS);
export const GSTS_CFIS = flag(GSTS.CFIS);
/** The command bits of GCMD (31:23); bits 22:0 are reserved. */
export const GCMD_COMMAND_MASK = Number(maskOf(...Object.values(GCMD)));
/**
 * GSTS bits that report a one-shot command having completed (RTPS, FLS, WBFS, IRTPS): a driver that writes
 * GSTS back to GCMD leaves them out, so that it does not repeat those commands.
 */
export const GSTS_ONE_SHOT = Number(maskOf(GSTS.RTPS, GSTS.FLS, GSTS.WBFS, GSTS.IRTPS));

export const FSTS_PFO = flag(FSTS.PFO);
export const FSTS_PPF = flag(FSTS.PPF);
export const FSTS_AFO = flag(FSTS.AFO);
export const FSTS_APF = flag(FSTS.APF);
export const FSTS_IQE = flag(FSTS.IQE);
export const FSTS_ICE = flag(FSTS.ICE);
export const FSTS_ITE = flag(FSTS.ITE);
export const FSTS_FRI_SHIFT = shiftOf(FSTS.FRI);
export const FSTS_FRI_MASK = wordMask(FSTS.FRI);
/** Status fields whose being set means an interrupt condition is still pending (7.3). */
export const FSTS_EVENT_FIELDS = FSTS_PFO | FSTS_PPF | FSTS_IQE | FSTS_ICE | FSTS_ITE;
export const FECTL_IM = flag(FECTL.IM);
export const FECTL_IP = flag(FECTL.IP);
export const ICS_IWC = flag(ICS.IWC);
export const IECTL_IM = flag(IECTL.IM);
export const IECTL_IP = flag(IECTL.IP);
export const IQA_DW = flag(IQA.DW);

/** FSTS.FRI: the index of the first pending fault recording register. */
export function faultRecordIndex(fsts: number): number {
  return fieldOf(fsts, 0, FSTS.FRI);
}
