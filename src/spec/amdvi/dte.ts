/**
 * The 256-bit device table entry (spec #48882 section 2.2.2.1, Table 7): eight dwords, indexed by DeviceID.
 */
import { field, getFieldBig, type Field } from "./fields.js";

export const DTE_BYTES = 32;
export const DTE_DWORDS = 8;

export const DTE_V = field("V", 0, 1, "2.2.2.1");
export const DTE_TV = field("TV", 1, 1, "2.2.2.1");
export const DTE_HAD = field("HAD", 7, 2, "2.2.2.1");
export const DTE_MODE = field("Mode", 9, 3, "2.2.2.1");
/** Host page table root pointer, bits 51:12 (split: 31:12 in dword 0, 51:32 in dword 1). */
export const DTE_PT_ROOT = field("HostPageTableRootPtr", 12, 40, "2.2.2.1");
/**
 * The host page table root as an address (all of bits 51:12, as a bigint): the field sits at the address bits it
 * holds, so its lowest bit is the address's. A 32-bit field read would drop the root's bits above 43.
 */
export function dtePageTableRoot(dte: ArrayLike<number>): bigint {
  return getFieldBig(dte, DTE_PT_ROOT) << BigInt(DTE_PT_ROOT.lsb);
}
export const DTE_PPR = field("PPR", 52, 1, "2.2.2.1");
export const DTE_GPRP = field("GPRP", 53, 1, "2.2.2.1");
export const DTE_GIOV = field("GIoV", 54, 1, "2.2.2.1");
export const DTE_GV = field("GV", 55, 1, "2.2.2.1");
export const DTE_GLX = field("GLX", 56, 2, "2.2.2.1");
export const DTE_IR = field("IR", 61, 1, "2.2.2.1");
export const DTE_IW = field("IW", 62, 1, "2.2.2.1");
export const DTE_DOMAIN_ID = field("DomainID", 64, 16, "2.2.2.1");
export const DTE_I = field("I", 96, 1, "2.2.2.1");
export const DTE_SE = field("SE", 97, 1, "2.2.2.1");
export const DTE_SA = field("SA", 98, 1, "2.2.2.1");
export const DTE_IOCTL = field("IoCtl", 99, 2, "2.2.2.1");
export const DTE_CACHE = field("Cache", 101, 1, "2.2.2.1");
export const DTE_SD = field("SD", 102, 1, "2.2.2.1");
export const DTE_EX = field("EX", 103, 1, "2.2.2.1");
export const DTE_SYSMGT = field("SysMgt", 104, 2, "2.2.2.1");
export const DTE_IV = field("IV", 128, 1, "2.2.2.1");
export const DTE_INT_TAB_LEN = field("IntTabLen", 129, 4, "2.2.2.1");
export const DTE_IG = field("IG", 133, 1, "2.2.2.1");
/** Interrupt table root pointer, bits 179:134 = address bits 51:6. */
export const DTE_INT_TABLE_ROOT = field("IntTableRootPtr", 134, 46, "2.2.2.1");
/** The interrupt fields fill the upper half of the entry, dwords 4..7 (bits 255:128). */
export const DTE_IRQ_FIRST_DWORD = 4;
/** The interrupt table is 64-byte aligned: the root field holds address bits 51:6. */
export const INT_TABLE_ROOT_SHIFT = 6;
export const DTE_INIT_PASS = field("InitPass", 184, 1, "2.2.2.1");
export const DTE_EINT_PASS = field("EIntPass", 185, 1, "2.2.2.1");
export const DTE_NMI_PASS = field("NMIPass", 186, 1, "2.2.2.1");
export const DTE_INT_CTL = field("IntCtl", 188, 2, "2.2.2.1");
export const DTE_LINT0_PASS = field("Lint0Pass", 190, 1, "2.2.2.1");
export const DTE_LINT1_PASS = field("Lint1Pass", 191, 1, "2.2.2.1");

export const DTE_FIELDS: readonly Field[] = [
  DTE_V, DTE_TV, DTE_HAD, DTE_MODE, DTE_PT_ROOT, DTE_PPR, DTE_GPRP, DTE_GIOV, DTE_GV, DTE_GLX, DTE_IR, DTE_IW,
  DTE_DOMAIN_ID, DTE_I, DTE_SE, DTE_SA, DTE_IOCTL, DTE_CACHE, DTE_SD, DTE_EX, DTE_SYSMGT,
  DTE_IV, DTE_INT_TAB_LEN, DTE_IG, DTE_INT_TABLE_ROOT, DTE_INIT_PASS, DTE_EINT_PASS, DTE_NMI_PASS, DTE_INT_CTL,
  DTE_LINT0_PASS, DTE_LINT1_PASS,
];

/** Mode 000b: translation disabled, access controlled by IR and IW (2.2.2.1); 7 is reserved. */
export const MODE_TRANSLATION_DISABLED = 0;
export const MODE_RESERVED = 7;

/** IntCtl (2.2.2.1): 00b target abort, 01b forward unmapped, 10b remap, 11b reserved. */
export const INTCTL_ABORT = 0;
export const INTCTL_FORWARD = 1;
export const INTCTL_REMAP = 2;

/** IntTabLen values above 1011b (2048 entries) are reserved (2.2.2.1). */
export const INT_TAB_LEN_MAX = 0xb;

/** Bit 63 of the DTE is reserved and must be zero when V=1 and TV=1 (2.2.2.1); dword 1 mask. */
export const DTE_RESERVED_DW1 = 0x8000_0000;
