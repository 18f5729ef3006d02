/**
 * The VT-d register set (VT-d spec 10.4), declared once each: offset, size, reset value, writable bits,
 * write-1-to-clear bits, write-only bits and the side effect a write triggers. Masks follow the spec and agree
 * with QEMU 7.2's vtd_init wherever QEMU implements the register; registers of features the configuration does
 * not have (PLMR/PHMR, AFL, EIM upper addresses) read as zero and ignore writes, as the spec allows.
 */
import type { VtdConfig } from "./config.js";
import { buildCap, buildEcap } from "./config.js";
import type { RegisterDecl } from "./regfile.js";
import { maskOf, withField } from "../../spec/vtd/fields.js";
import { FRCD_HI_F, FRCD_HI_QUAD, FRCD_SIZE } from "../../spec/vtd/faults.js";
import {
  CCMD,
  DMAR_AFLOG_REG,
  DMAR_CAP_REG,
  DMAR_CCMD_REG,
  DMAR_ECAP_REG,
  DMAR_FEADDR_REG,
  DMAR_FECTL_REG,
  DMAR_FEDATA_REG,
  DMAR_FEUADDR_REG,
  DMAR_FSTS_REG,
  DMAR_GCMD_REG,
  DMAR_GSTS_REG,
  DMAR_ICS_REG,
  DMAR_IEADDR_REG,
  DMAR_IECTL_REG,
  DMAR_IEDATA_REG,
  DMAR_IEUADDR_REG,
  DMAR_IQA_REG,
  DMAR_IQERCD_REG,
  DMAR_IQH_REG,
  DMAR_IQT_REG,
  DMAR_IRTA_REG,
  DMAR_PHMBASE_REG,
  DMAR_PHMLIMIT_REG,
  DMAR_PLMBASE_REG,
  DMAR_PLMLIMIT_REG,
  DMAR_PMEN_REG,
  DMAR_RTADDR_REG,
  DMAR_VER_REG,
  FEADDR,
  FECTL,
  FEDATA,
  FSTS,
  GCMD,
  ICS,
  IEADDR,
  IECTL,
  IEDATA,
  IOTLB,
  IOTLB_REG_FROM_IVA,
  IOTLB_REGS_SIZE,
  IQA,
  IQT,
  IRTA,
  REG_WINDOW_MIN,
  RTADDR,
  VER,
  IVA,
} from "../../spec/vtd/registers.js";

/** Side effects, dispatched by the unit on a write. */
export const EFFECT_NONE = 0;
export const EFFECT_GCMD = 1;
export const EFFECT_CCMD = 2; // on a write of the high half (ICC, bit 63)
export const EFFECT_IOTLB = 3; // on a write of the high half (IVT, bit 63)
export const EFFECT_FSTS = 4;
export const EFFECT_FECTL = 5;
export const EFFECT_IQT = 6; // on a write of the low half (QT, bits 18:4)
export const EFFECT_IQA = 7;
export const EFFECT_ICS = 8;
export const EFFECT_IECTL = 9;
export const EFFECT_FRCD = 10; // on a write of the upper quad's high half (F, bit 127)

/** VER_REG: architecture version 1.0, as QEMU 7.2 reports (10.4.1). */
export const VTD_VERSION = Number(withField(0n, VER.MAX, 1));

function decl(
  name: string,
  offset: number,
  size: 4 | 8,
  reset: bigint,
  writable: bigint,
  w1c = 0n,
  writeOnly = 0n,
  effect = EFFECT_NONE,
): RegisterDecl {
  return { name, offset, size, reset, writable, w1c, writeOnly, effect };
}

/** MMIO window size: at least one 4 KiB page, enough for every fault recording register. */
export function registerWindowSize(c: VtdConfig): number {
  const end = Math.max(c.faultRecordOffset + FRCD_SIZE * c.faultRecords, c.iotlbRegOffset + IOTLB_REGS_SIZE);
  return Math.max(REG_WINDOW_MIN, Math.ceil(end / REG_WINDOW_MIN) * REG_WINDOW_MIN);
}

/** Offset of FRCD_REG record i (two quads: low at +0, high at +8). */
export function frcdOffset(c: VtdConfig, i: number): number {
  return c.faultRecordOffset + FRCD_SIZE * i;
}

export function declareRegisters(c: VtdConfig): RegisterDecl[] {
  const ir = c.interruptRemapping;
  const qi = c.queuedInvalidation;
  const eim = c.extendedInterruptMode;
  const iva = c.iotlbRegOffset;
  // FSTS: PFO and IQE are RW1C; ICE and ITE exist with device-TLBs (10.4.9). PPF and FRI are read-only.
  const fstsW1c = maskOf(FSTS.PFO, FSTS.IQE) | (c.deviceTlb ? maskOf(FSTS.ICE, FSTS.ITE) : 0n);
  const u32 = maskOf(FEDATA.IMD, FEDATA.EIMD);
  const regs: RegisterDecl[] = [
    decl("VER_REG", DMAR_VER_REG, 4, BigInt(VTD_VERSION), 0n),
    decl("CAP_REG", DMAR_CAP_REG, 8, buildCap(c), 0n),
    decl("ECAP_REG", DMAR_ECAP_REG, 8, buildEcap(c), 0n),
    // GCMD: command bits 31:23 are write-only; the state shows in GSTS (10.4.4).
    decl("GCMD_REG", DMAR_GCMD_REG, 4, 0n, maskOf(...Object.values(GCMD)), 0n, maskOf(...Object.values(GCMD)), EFFECT_GCMD),
    decl("GSTS_REG", DMAR_GSTS_REG, 4, 0n, 0n),
    // RTADDR: RTA 63:12 and TTM 11:10 (10.4.6); latched by GCMD.SRTP.
    decl("RTADDR_REG", DMAR_RTADDR_REG, 8, 0n, maskOf(RTADDR.RTA, RTADDR.TTM)),
    // CCMD: ICC 63, CIRG 62:61, FM 33:32, SID 31:16, DID 15:0; SID and FM are write-only (10.4.7).
    decl("CCMD_REG", DMAR_CCMD_REG, 8, 0n, maskOf(CCMD.ICC, CCMD.CIRG, CCMD.FM, CCMD.SID, CCMD.DID), 0n, maskOf(CCMD.FM, CCMD.SID), EFFECT_CCMD),
    decl("FSTS_REG", DMAR_FSTS_REG, 4, 0n, 0n, fstsW1c, 0n, EFFECT_FSTS),
    // FECTL: IM resets to 1 (interrupts masked); IP is read-only (10.4.10).
    decl("FECTL_REG", DMAR_FECTL_REG, 4, maskOf(FECTL.IM), maskOf(FECTL.IM), 0n, 0n, EFFECT_FECTL),
    decl("FEDATA_REG", DMAR_FEDATA_REG, 4, 0n, maskOf(FEDATA.IMD)),
    decl("FEADDR_REG", DMAR_FEADDR_REG, 4, 0n, maskOf(FEADDR.MA)),
    decl("FEUADDR_REG", DMAR_FEUADDR_REG, 4, 0n, eim ? u32 : 0n),
    decl("AFLOG_REG", DMAR_AFLOG_REG, 8, 0n, 0n),
    decl("PMEN_REG", DMAR_PMEN_REG, 4, 0n, 0n),
    decl("PLMBASE_REG", DMAR_PLMBASE_REG, 4, 0n, 0n),
    decl("PLMLIMIT_REG", DMAR_PLMLIMIT_REG, 4, 0n, 0n),
    decl("PHMBASE_REG", DMAR_PHMBASE_REG, 8, 0n, 0n),
    decl("PHMLIMIT_REG", DMAR_PHMLIMIT_REG, 8, 0n, 0n),
  ];
  if (qi) {
    regs.push(
      decl("IQH_REG", DMAR_IQH_REG, 8, 0n, 0n),
      decl("IQT_REG", DMAR_IQT_REG, 8, 0n, maskOf(IQT.QT), 0n, 0n, EFFECT_IQT),
      // IQA: base 63:12, DW 11, QS 2:0 (10.4.24).
      decl("IQA_REG", DMAR_IQA_REG, 8, 0n, maskOf(IQA.IQA, IQA.DW, IQA.QS), 0n, 0n, EFFECT_IQA),
      decl("ICS_REG", DMAR_ICS_REG, 4, 0n, 0n, maskOf(ICS.IWC), 0n, EFFECT_ICS),
      decl("IECTL_REG", DMAR_IECTL_REG, 4, maskOf(IECTL.IM), maskOf(IECTL.IM), 0n, 0n, EFFECT_IECTL),
      decl("IEDATA_REG", DMAR_IEDATA_REG, 4, 0n, maskOf(IEDATA.IMD, IEDATA.EIMD)),
      decl("IEADDR_REG", DMAR_IEADDR_REG, 4, 0n, maskOf(IEADDR.MA)),
      decl("IEUADDR_REG", DMAR_IEUADDR_REG, 4, 0n, eim ? u32 : 0n),
      decl("IQERCD_REG", DMAR_IQERCD_REG, 8, 0n, 0n),
    );
  }
  if (ir) {
    // IRTA: IRTA 63:12, EIME 11, S 3:0 (10.4.31). EIME stays writable without ECAP.EIM, as in QEMU 7.2.
    regs.push(decl("IRTA_REG", DMAR_IRTA_REG, 8, 0n, maskOf(IRTA.IRTA, IRTA.EIME, IRTA.S)));
  }
  // IVA: ADDR 63:12, IH 6, AM 5:0, write-only (10.4.8.2). IOTLB: IVT 63, IIRG 61:60, DR 49, DW 48, DID 47:32.
  regs.push(
    decl("IVA_REG", iva, 8, 0n, maskOf(IVA.ADDR, IVA.IH, IVA.AM), 0n, maskOf(IVA.ADDR, IVA.IH, IVA.AM)),
    decl("IOTLB_REG", iva + IOTLB_REG_FROM_IVA, 8, 0n, maskOf(IOTLB.IVT, IOTLB.IIRG, IOTLB.DR, IOTLB.DW, IOTLB.DID), 0n, 0n, EFFECT_IOTLB),
  );
  for (let i = 0; i < c.faultRecords; i++) {
    const off = frcdOffset(c, i);
    regs.push(
      decl(`FRCD_REG${i}_LO`, off, 8, 0n, 0n),
      // F (bit 127) is RW1C; everything else is read-only (10.4.14).
      decl(`FRCD_REG${i}_HI`, off + FRCD_HI_QUAD, 8, 0n, 0n, FRCD_HI_F, 0n, EFFECT_FRCD),
    );
  }
  return regs;
}
