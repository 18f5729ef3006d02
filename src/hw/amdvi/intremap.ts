/**
 * AMD-Vi interrupt remapping (spec #48882 section 2.2.5): what happens to an MSI a device sends, by delivery
 * mode and the DTE's IV, IntCtl, IntTabLen and pass bits; 32-bit IRTEs, or 128-bit GA IRTEs when GAEn is set.
 * Reads through a PhysReader (shared with forensics); never throws.
 */
import type { PhysReader } from "../../core/memory.js";
import { getField } from "../../spec/amdvi/fields.js";
import {
  DTE_EINT_PASS,
  DTE_INIT_PASS,
  DTE_INT_CTL,
  DTE_INT_TAB_LEN,
  DTE_IV,
  DTE_NMI_PASS,
  DTE_V,
  INT_TAB_LEN_MAX,
  INTCTL_FORWARD,
  INTCTL_REMAP,
} from "../../spec/amdvi/dte.js";
import { EVF_I, EVF_PR, EVF_RW, EVF_RZ, ILLEGAL_DEV_TABLE_ENTRY, IO_PAGE_FAULT, PAGE_TAB_HARDWARE_ERROR } from "../../spec/amdvi/events.js";
import { DM_ARBITRATED, DM_EXTINT, DM_FIXED, DM_INIT, DM_NMI, irteBytes, MSI_DATA_INDEX_MASK, remappedMsi } from "../../spec/amdvi/irte.js";
import { TWO32 } from "../../core/u64.js";


export interface MsiOutcome {
  /** "remapped", "passed" (forwarded unchanged), "aborted" (dropped silently), or "fault" (event logged). */
  kind: "remapped" | "passed" | "aborted" | "fault";
  address: number;
  data: number;
  event: number;
  flags: number;
  /** IRTE index and address, when the table was consulted. */
  index?: number;
  irteAddr?: number;
}

function out(kind: MsiOutcome["kind"], address: number, data: number, event = 0, flags = EVF_I | EVF_RW): MsiOutcome {
  return { kind, address, data, event, flags };
}

/** Remaps one MSI (address in 0xFEEx_xxxx, data) of a device with DTE `dte`. `ga` is Control.GAEn. */
export function remapMsi(mem: PhysReader, dte: Uint32Array, address: number, data: number, ga: boolean): MsiOutcome {
  if (getField(dte, DTE_V) === 0 || getField(dte, DTE_IV) === 0) return out("passed", address, data);
  const dm = (data >>> 8) & 7;
  if (dm === DM_NMI) return getField(dte, DTE_NMI_PASS) === 1 ? out("passed", address, data) : out("aborted", address, data);
  if (dm === DM_INIT) return getField(dte, DTE_INIT_PASS) === 1 ? out("passed", address, data) : out("aborted", address, data);
  if (dm === DM_EXTINT) return getField(dte, DTE_EINT_PASS) === 1 ? out("passed", address, data) : out("aborted", address, data);
  if (dm !== DM_FIXED && dm !== DM_ARBITRATED) return out("aborted", address, data);
  const intCtl = getField(dte, DTE_INT_CTL);
  if (intCtl === INTCTL_FORWARD) return out("passed", address, data);
  if (intCtl !== INTCTL_REMAP) {
    return intCtl === 0 ? out("aborted", address, data) : out("fault", address, data, ILLEGAL_DEV_TABLE_ENTRY, EVF_I | EVF_RW | EVF_RZ);
  }
  const len = getField(dte, DTE_INT_TAB_LEN);
  if (len > INT_TAB_LEN_MAX) return out("fault", address, data, ILLEGAL_DEV_TABLE_ENTRY, EVF_I | EVF_RW | EVF_RZ);
  const index = data & MSI_DATA_INDEX_MASK;
  if (index >= 1 << len) return { ...out("fault", address, data, IO_PAGE_FAULT), index };
  const root = (((dte[4] ?? 0) & 0xffff_ffc0) >>> 0) + ((dte[5] ?? 0) & 0x000f_ffff) * TWO32;
  const irteAddr = (root - (root % 64)) + index * irteBytes(ga);
  let d0: number;
  let d2 = 0;
  let d3 = 0;
  try {
    d0 = mem.read32(irteAddr);
    if (ga) {
      d2 = mem.read32(irteAddr + 8);
      d3 = mem.read32(irteAddr + 12);
    }
  } catch {
    return { ...out("fault", address, data, PAGE_TAB_HARDWARE_ERROR), index, irteAddr };
  }
  if ((d0 & 1) === 0) {
    // SupIOPF (bit 1) suppresses the event.
    const supp = ((d0 >>> 1) & 1) === 1;
    return { ...(supp ? out("aborted", address, data) : out("fault", address, data, IO_PAGE_FAULT)), index, irteAddr };
  }
  const guestMode = (d0 >>> 7) & 1;
  if (guestMode === 1 && ga) return { ...out("fault", address, data, IO_PAGE_FAULT, EVF_I | EVF_RW | EVF_PR | EVF_RZ), index, irteAddr };
  const intType = (d0 >>> 2) & 7;
  const destMode = (d0 >>> 6) & 1;
  const destination = ga ? ((d0 >>> 8) & 0xff_ffff) | (((d3 >>> 24) & 0xff) << 24) : (d0 >>> 8) & 0xff;
  const vector = ga ? d2 & 0xff : (d0 >>> 16) & 0xff;
  const m = remappedMsi({ vector, intType, destMode, destination: destination >>> 0 });
  return { kind: "remapped", address: m.address, data: m.data | (data & 0x8000), event: 0, flags: 0, index, irteAddr };
}
