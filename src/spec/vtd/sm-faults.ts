/**
 * Scalable-mode fault reasons (VT-d spec 7.1.3, scalable-mode condition codes: root SRT, context SCT, PASID
 * directory SPD, PASID table SPT, first-stage SFS, second-stage SSS, general SGN), 0x30–0x90. Names are short
 * and stable for scripts; descriptions are one line for people. Legacy reasons (0x1–0xE) are in faults.ts.
 */

export const VTD_FR_SM_RTADDR_INV = 0x30; // invalid root table address / translation table mode
export const VTD_FR_SM_TTM0_PASID = 0x31; // request with PASID while RTADDR.TTM is legacy
export const VTD_FR_SM_TTM0_PAGE_REQ = 0x32;
export const VTD_FR_SM_ROOT_TABLE_INV = 0x38; // error accessing the root entry
export const VTD_FR_SM_ROOT_ENTRY_P = 0x39;
export const VTD_FR_SM_ROOT_ENTRY_RSVD = 0x3a;
export const VTD_FR_SM_CONTEXT_TABLE_INV = 0x40; // error accessing the context entry
export const VTD_FR_SM_CONTEXT_ENTRY_P = 0x41;
export const VTD_FR_SM_CONTEXT_ENTRY_RSVD = 0x42;
export const VTD_FR_SM_CONTEXT_ENTRY_INV = 0x43;
export const VTD_FR_SM_CONTEXT_DTE = 0x44; // translation request with DTE clear
export const VTD_FR_SM_CONTEXT_PASIDE = 0x45; // request with PASID with PASIDE clear
export const VTD_FR_SM_PASID_TOO_LARGE = 0x46; // PASID beyond the directory size (PDTS)
export const VTD_FR_SM_CONTEXT_PRE = 0x47;
export const VTD_FR_SM_RID_PASID = 0x48;
export const VTD_FR_SM_PASID_DIR_INV = 0x50; // error accessing the PASID directory entry
export const VTD_FR_SM_PASID_DIR_P = 0x51;
export const VTD_FR_SM_PASID_DIR_RSVD = 0x52;
export const VTD_FR_SM_PASID_TABLE_INV = 0x58; // error accessing the PASID table entry (QEMU's VTD_FR_PASID_TABLE_INV)
export const VTD_FR_SM_PASID_ENTRY_P = 0x59;
export const VTD_FR_SM_PASID_ENTRY_RSVD = 0x5a;
export const VTD_FR_SM_PASID_ENTRY_INV = 0x5b; // PGTT or paging mode the hardware does not support
export const VTD_FR_SM_PASID_ERE = 0x5c;
export const VTD_FR_SM_PASID_SRE = 0x5d; // supervisor request with SRE clear
export const VTD_FR_SM_FS_ENTRY_INV = 0x70; // error accessing a first-stage entry
export const VTD_FR_SM_FS_ENTRY_P = 0x71;
export const VTD_FR_SM_FS_ENTRY_RSVD = 0x72;
export const VTD_FR_SM_FS_PML4_INV = 0x73;
export const VTD_FR_SM_NESTED_FS_BEYOND_MGAW = 0x74;
export const VTD_FR_SM_NESTED_FS_TOP_READ = 0x75;
export const VTD_FR_SM_NESTED_FS_READ = 0x76;
export const VTD_FR_SM_NESTED_FS_WRITE = 0x77; // the second stage does not allow the A/D update of a first-stage entry
export const VTD_FR_SM_SS_ENTRY_INV = 0x78; // error accessing a second-stage entry
export const VTD_FR_SM_SS_PERM = 0x79;
export const VTD_FR_SM_SS_ENTRY_RSVD = 0x7a;
export const VTD_FR_SM_SS_PTR_INV = 0x7b; // error accessing the second-stage table the PASID entry names
export const VTD_FR_SM_SS_AD_NOSNOOP = 0x7c;
export const VTD_FR_SM_NON_CANONICAL = 0x80;
export const VTD_FR_SM_US = 0x81; // user request to a supervisor page
export const VTD_FR_SM_EXECUTE = 0x82;
export const VTD_FR_SM_BEYOND_MGAW = 0x83;
export const VTD_FR_SM_SS_BEYOND_MAX = 0x84;
export const VTD_FR_SM_WRITE = 0x85;
export const VTD_FR_SM_READ = 0x86;
export const VTD_FR_SM_INTERRUPT_ADDR = 0x87;
export const VTD_FR_SM_FS_AD_NOSNOOP = 0x90;

const SM: Record<number, [string, string]> = {
  0x30: ["SM_RTADDR_INV", "RTADDR names a translation table mode the hardware does not support"],
  0x31: ["SM_TTM0_PASID", "a request with a PASID while the root table is in legacy mode"],
  0x32: ["SM_TTM0_PAGE_REQ", "a page request while the root table is in legacy mode"],
  0x38: ["SM_ROOT_TABLE_INV", "the scalable-mode root entry could not be read"],
  0x39: ["SM_ROOT_ENTRY_P", "the root entry's present bit for this half of the bus (LP or UP) is clear"],
  0x3a: ["SM_ROOT_ENTRY_RSVD", "reserved bits are set in a present scalable-mode root entry"],
  0x40: ["SM_CONTEXT_TABLE_INV", "the scalable-mode context entry could not be read"],
  0x41: ["SM_CONTEXT_ENTRY_P", "the scalable-mode context entry for this device is not present"],
  0x42: ["SM_CONTEXT_ENTRY_RSVD", "reserved bits are set in a present scalable-mode context entry"],
  0x43: ["SM_CONTEXT_ENTRY_INV", "the scalable-mode context entry is programmed with values the hardware does not support"],
  0x44: ["SM_CONTEXT_DTE", "a translation request while the context entry's DTE is clear"],
  0x45: ["SM_CONTEXT_PASIDE", "a request with a PASID while the context entry's PASIDE is clear"],
  0x46: ["SM_PASID_TOO_LARGE", "the PASID is beyond the PASID directory the context entry sizes (PDTS)"],
  0x47: ["SM_CONTEXT_PRE", "a page request while the context entry's PRE is clear"],
  0x48: ["SM_RID_PASID", "the context entry's RID_PASID is not usable"],
  0x50: ["SM_PASID_DIR_INV", "the PASID directory entry could not be read"],
  0x51: ["SM_PASID_DIR_P", "the PASID directory entry is not present"],
  0x52: ["SM_PASID_DIR_RSVD", "reserved bits are set in a present PASID directory entry"],
  0x58: ["SM_PASID_TABLE_INV", "the PASID table entry could not be read"],
  0x59: ["SM_PASID_ENTRY_P", "the PASID table entry is not present"],
  0x5a: ["SM_PASID_ENTRY_RSVD", "reserved bits are set in a present PASID table entry"],
  0x5b: ["SM_PASID_ENTRY_INV", "the PASID entry selects a translation type, address width or paging mode the hardware does not support"],
  0x5c: ["SM_PASID_ERE", "an execute request while the PASID entry's ERE is clear"],
  0x5d: ["SM_PASID_SRE", "a supervisor request while the PASID entry's SRE is clear"],
  0x70: ["SM_FS_ENTRY_INV", "a first-stage paging entry could not be read"],
  0x71: ["SM_FS_ENTRY_P", "a first-stage paging entry is not present"],
  0x72: ["SM_FS_ENTRY_RSVD", "reserved bits are set in a present first-stage paging entry"],
  0x73: ["SM_FS_PML4_INV", "the top first-stage table could not be read"],
  0x74: ["SM_NESTED_FS_BEYOND_MGAW", "nested: a first-stage table address is beyond the second stage's width"],
  0x75: ["SM_NESTED_FS_TOP_READ", "nested: the second stage does not let the top first-stage table be read"],
  0x76: ["SM_NESTED_FS_READ", "nested: the second stage does not let a first-stage table be read"],
  0x77: ["SM_NESTED_FS_WRITE", "nested: the second stage does not let a first-stage entry's A/D bits be written"],
  0x78: ["SM_SS_ENTRY_INV", "a second-stage paging entry could not be read"],
  0x79: ["SM_SS_PERM", "read/write permission error in a second-stage paging entry"],
  0x7a: ["SM_SS_ENTRY_RSVD", "reserved bits are set in a present second-stage paging entry"],
  0x7b: ["SM_SS_PTR_INV", "the second-stage table the PASID entry names could not be read"],
  0x7c: ["SM_SS_AD_NOSNOOP", "a second-stage A/D update is needed in a no-snoop walk"],
  0x80: ["SM_NON_CANONICAL", "the address is not canonical for first-stage paging"],
  0x81: ["SM_US", "a user request to a page first-stage tables reserve for the supervisor (U/S = 0)"],
  0x82: ["SM_EXECUTE", "an execute request to a page first-stage tables mark execute-disable"],
  0x83: ["SM_BEYOND_MGAW", "the address is above the width the PASID entry and MGAW allow"],
  0x84: ["SM_SS_BEYOND_MAX", "a second-stage entry's address is beyond the host address width"],
  0x85: ["SM_WRITE", "write to a page the tables do not make writable"],
  0x86: ["SM_READ", "read from a page the tables do not make readable (or not present)"],
  0x87: ["SM_INTERRUPT_ADDR", "the translation ends in the interrupt address range 0xFEEx_xxxx"],
  0x90: ["SM_FS_AD_NOSNOOP", "a first-stage A/D update is needed in a no-snoop walk"],
};

/** True for the scalable-mode fault reasons. */
export function isScalableFault(reason: number): boolean {
  return SM[reason] !== undefined;
}

export function smFaultName(reason: number): string | undefined {
  return SM[reason]?.[0];
}

export function smFaultDescription(reason: number): string | undefined {
  return SM[reason]?.[1];
}

/**
 * Scalable-mode faults recorded whatever FPD says (7.1.3): the ones found before any FPD is known (root table
 * mode, root entry) or in the context entry's own format. Every other scalable-mode fault is qualified: FPD in
 * the context entry, PASID directory entry or PASID entry suppresses it.
 */
export function isScalableQualified(reason: number): boolean {
  if (reason >= 0x30 && reason <= 0x3f) return false;
  return reason !== VTD_FR_SM_CONTEXT_TABLE_INV && reason !== VTD_FR_SM_CONTEXT_ENTRY_RSVD && isScalableFault(reason);
}
