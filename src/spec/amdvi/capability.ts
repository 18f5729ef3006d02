/**
 * The IOMMU's own PCI function (spec #48882 section 3.2, IOMMU capability block): a Secure Device capability
 * (ID 0Fh) at the offset the IVHD names (IVHD bytes 6–7), holding the capability header, the MMIO base address,
 * the range of devices the IOMMU covers and two miscellaneous information registers. Offsets are relative to the
 * capability; fields are counted over the capability's dwords (bit 32 is bit 0 of the base address low register).
 */
import { field, getField as get, setField, type Field } from "./fields.js";

/** PCI capability ID of the IOMMU's capability block (Secure Device). */
export const CAP_ID_SECURE_DEVICE = 0x0f;
/** Capability type 011b: IOMMU (3.2.1). */
export const CAP_TYPE_IOMMU = 0b011;
/** Bytes of the block: header, base low, base high, range, misc 0, misc 1. */
export const CAP_BLOCK_BYTES = 0x18;

export const CAP_HEADER = 0x00; // 3.2.1 IOMMU Capability Header
export const CAP_BASE_LOW = 0x04; // 3.2.2 IOMMU Base Address Low Register
export const CAP_BASE_HIGH = 0x08; // 3.2.3 IOMMU Base Address High Register
export const CAP_RANGE = 0x0c; // 3.2.4 IOMMU Range Register
export const CAP_MISC0 = 0x10; // 3.2.5 IOMMU Miscellaneous Information Register 0
export const CAP_MISC1 = 0x14; // 3.2.6 IOMMU Miscellaneous Information Register 1

// 3.2.1 capability header.
export const CAP_HDR_ID = field("CapID", 0, 8, "3.2.1");
export const CAP_HDR_PTR = field("CapPtr", 8, 8, "3.2.1");
export const CAP_HDR_TYPE = field("CapType", 16, 3, "3.2.1");
export const CAP_HDR_REV = field("CapRev", 19, 5, "3.2.1");
export const CAP_HDR_IOTLB_SUP = field("IotlbSup", 24, 1, "3.2.1");
export const CAP_HDR_HT_TUNNEL = field("HtTunnel", 25, 1, "3.2.1");
export const CAP_HDR_NP_CACHE = field("NpCache", 26, 1, "3.2.1");
export const CAP_HDR_EFR_SUP = field("EFRSup", 27, 1, "3.2.1");
export const CAP_HDR_CAP_EXT = field("CapExt", 28, 1, "3.2.1");
// 3.2.2 / 3.2.3 base address: Enable bit 0, BaseAddress[31:14] in bits 31:14, BaseAddress[63:32] in the high dword.
export const CAP_BASE_ENABLE = field("Enable", 32, 1, "3.2.2");
export const CAP_BASE_ADDR_LO = field("BaseAddress[31:14]", 46, 18, "3.2.2");
export const CAP_BASE_ADDR_HI = field("BaseAddress[63:32]", 64, 32, "3.2.3");
// 3.2.4 range register.
export const CAP_RANGE_UNIT_ID = field("UnitID", 96, 5, "3.2.4");
export const CAP_RANGE_VALID = field("RngValid", 103, 1, "3.2.4");
export const CAP_RANGE_BUS = field("BusNumber", 104, 8, "3.2.4");
export const CAP_RANGE_FIRST = field("FirstDevice", 112, 8, "3.2.4");
export const CAP_RANGE_LAST = field("LastDevice", 120, 8, "3.2.4");
// 3.2.5 miscellaneous information register 0; 3.2.6 register 1.
export const CAP_MISC_MSI_NUM = field("MsiNum", 128, 5, "3.2.5");
export const CAP_MISC_GVA_SIZE = field("GVAsize", 133, 3, "3.2.5");
export const CAP_MISC_PA_SIZE = field("PAsize", 136, 7, "3.2.5");
export const CAP_MISC_VA_SIZE = field("VAsize", 143, 7, "3.2.5");
export const CAP_MISC_HT_ATS_RESV = field("HtAtsResv", 150, 1, "3.2.5");
export const CAP_MISC_MSI_NUM_PPR = field("MsiNumPPR", 155, 5, "3.2.5");
export const CAP_MISC_MSI_NUM_GA = field("MsiNumGA", 160, 5, "3.2.6");

export const CAPABILITY_FIELDS: readonly Field[] = [
  CAP_HDR_ID, CAP_HDR_PTR, CAP_HDR_TYPE, CAP_HDR_REV, CAP_HDR_IOTLB_SUP, CAP_HDR_HT_TUNNEL, CAP_HDR_NP_CACHE,
  CAP_HDR_EFR_SUP, CAP_HDR_CAP_EXT, CAP_BASE_ENABLE, CAP_BASE_ADDR_LO, CAP_BASE_ADDR_HI, CAP_RANGE_UNIT_ID,
  CAP_RANGE_VALID, CAP_RANGE_BUS, CAP_RANGE_FIRST, CAP_RANGE_LAST, CAP_MISC_MSI_NUM, CAP_MISC_GVA_SIZE,
  CAP_MISC_PA_SIZE, CAP_MISC_VA_SIZE, CAP_MISC_HT_ATS_RESV, CAP_MISC_MSI_NUM_PPR, CAP_MISC_MSI_NUM_GA,
];

/** GVAsize 010b: 48-bit guest virtual addresses (3.2.5). */
export const GVA_SIZE_48 = 0b010;

/** The capability block's values, in the spec's terms. */
export interface CapabilityBlock {
  iotlbSup: boolean;
  htTunnel: boolean;
  npCache: boolean;
  efrSup: boolean;
  capExt: boolean;
  capRev: number;
  /** MMIO base address (bits 63:14 meaningful) and the Enable bit. */
  baseAddress: bigint;
  enable: boolean;
  unitId: number;
  rangeValid: boolean;
  bus: number;
  firstDevice: number;
  lastDevice: number;
  msiNum: number;
  gvaSize: number;
  paSize: number;
  vaSize: number;
  htAtsResv: boolean;
  msiNumPpr: number;
  msiNumGa: number;
}

/**
 * QEMU 7.2's amd-iommu, as its guest reads the block (Debian's 7.2 build, recorded from a Linux 6.1 guest at
 * capability offset 40h): header 1F03000Fh (IotlbSup, HtTunnel, NpCache, EFRSup and CapExt; CapRev 0), base
 * FED80000h with Enable clear, range FF000000h (LastDevice FFh, RngValid clear), misc 0 00182840h (GVAsize 48
 * bits, PAsize 40, VAsize 48), misc 1 zero.
 */
export const QEMU_CAPABILITY: CapabilityBlock = {
  iotlbSup: true,
  htTunnel: true,
  npCache: true,
  efrSup: true,
  capExt: true,
  capRev: 0,
  baseAddress: 0xfed8_0000n,
  enable: false,
  unitId: 0,
  rangeValid: false,
  bus: 0,
  firstDevice: 0,
  lastDevice: 0xff,
  msiNum: 0,
  gvaSize: GVA_SIZE_48,
  paSize: 40,
  vaSize: 48,
  htAtsResv: false,
  msiNumPpr: 0,
  msiNumGa: 0,
};

function set(dw: Uint32Array, f: Field, v: number | boolean): void {
  setField(dw, f, typeof v === "boolean" ? (v ? 1 : 0) : v);
}

/** The six dwords of the block; the header's CapPtr is `next` (the next capability in the list). */
export function encodeCapability(c: CapabilityBlock, next = 0): Uint32Array {
  const dw = new Uint32Array(CAP_BLOCK_BYTES / 4);
  set(dw, CAP_HDR_ID, CAP_ID_SECURE_DEVICE);
  set(dw, CAP_HDR_PTR, next);
  set(dw, CAP_HDR_TYPE, CAP_TYPE_IOMMU);
  set(dw, CAP_HDR_REV, c.capRev);
  set(dw, CAP_HDR_IOTLB_SUP, c.iotlbSup);
  set(dw, CAP_HDR_HT_TUNNEL, c.htTunnel);
  set(dw, CAP_HDR_NP_CACHE, c.npCache);
  set(dw, CAP_HDR_EFR_SUP, c.efrSup);
  set(dw, CAP_HDR_CAP_EXT, c.capExt);
  set(dw, CAP_BASE_ENABLE, c.enable);
  set(dw, CAP_BASE_ADDR_LO, Number((c.baseAddress >> 14n) & 0x3_ffffn));
  set(dw, CAP_BASE_ADDR_HI, Number((c.baseAddress >> 32n) & 0xffff_ffffn));
  set(dw, CAP_RANGE_UNIT_ID, c.unitId);
  set(dw, CAP_RANGE_VALID, c.rangeValid);
  set(dw, CAP_RANGE_BUS, c.bus);
  set(dw, CAP_RANGE_FIRST, c.firstDevice);
  set(dw, CAP_RANGE_LAST, c.lastDevice);
  set(dw, CAP_MISC_MSI_NUM, c.msiNum);
  set(dw, CAP_MISC_GVA_SIZE, c.gvaSize);
  set(dw, CAP_MISC_PA_SIZE, c.paSize);
  set(dw, CAP_MISC_VA_SIZE, c.vaSize);
  set(dw, CAP_MISC_HT_ATS_RESV, c.htAtsResv);
  set(dw, CAP_MISC_MSI_NUM_PPR, c.msiNumPpr);
  set(dw, CAP_MISC_MSI_NUM_GA, c.msiNumGa);
  return dw;
}

/** Reads the block from its six dwords (the capability ID and type are not checked here). */
export function decodeCapability(dw: ArrayLike<number>): CapabilityBlock & { capId: number; capType: number; next: number } {
  return {
    capId: get(dw, CAP_HDR_ID),
    next: get(dw, CAP_HDR_PTR),
    capType: get(dw, CAP_HDR_TYPE),
    capRev: get(dw, CAP_HDR_REV),
    iotlbSup: get(dw, CAP_HDR_IOTLB_SUP) === 1,
    htTunnel: get(dw, CAP_HDR_HT_TUNNEL) === 1,
    npCache: get(dw, CAP_HDR_NP_CACHE) === 1,
    efrSup: get(dw, CAP_HDR_EFR_SUP) === 1,
    capExt: get(dw, CAP_HDR_CAP_EXT) === 1,
    enable: get(dw, CAP_BASE_ENABLE) === 1,
    baseAddress: (BigInt(get(dw, CAP_BASE_ADDR_HI)) << 32n) | (BigInt(get(dw, CAP_BASE_ADDR_LO)) << 14n),
    unitId: get(dw, CAP_RANGE_UNIT_ID),
    rangeValid: get(dw, CAP_RANGE_VALID) === 1,
    bus: get(dw, CAP_RANGE_BUS),
    firstDevice: get(dw, CAP_RANGE_FIRST),
    lastDevice: get(dw, CAP_RANGE_LAST),
    msiNum: get(dw, CAP_MISC_MSI_NUM),
    gvaSize: get(dw, CAP_MISC_GVA_SIZE),
    paSize: get(dw, CAP_MISC_PA_SIZE),
    vaSize: get(dw, CAP_MISC_VA_SIZE),
    htAtsResv: get(dw, CAP_MISC_HT_ATS_RESV) === 1,
    msiNumPpr: get(dw, CAP_MISC_MSI_NUM_PPR),
    msiNumGa: get(dw, CAP_MISC_MSI_NUM_GA),
  };
}
