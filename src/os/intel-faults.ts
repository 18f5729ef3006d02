/**
 * Primary fault handling of the simulated kernel's VT-d driver, after Linux 6.1's dmar_fault (drivers/iommu/
 * intel/dmar.c): read FSTS, walk the fault recording registers from FSTS.FRI while their F bit is set, log each
 * record as Linux does (dmar_fault_do_one, with Linux's fault reason texts, scalable-mode ones included, and the
 * request's PASID when the record has PP set, NO_PASID otherwise), clear it by writing 1 to F, then clear PFO
 * and IQE. Register and record layouts come from spec/vtd.
 */
import { formatRequesterId } from "../core/pci.js";
import { TWO32 } from "../core/u64.js";
import { faultRecordCount, registerOffset } from "../spec/vtd/capability.js";
import { decodeFaultRecord, FRCD_DWORD_OFFSETS, FRCD_SIZE, FRCD_TOP_DWORD, FRCD_W3_F, isInterruptRemappingFault } from "../spec/vtd/faults.js";
import { VTD_FR_IR_REQ_RSVD } from "../spec/vtd/intremap.js";
import * as SM from "../spec/vtd/sm-faults.js";
import { DMAR_FSTS_REG, faultRecordIndex, FSTS_IQE, FSTS_PFO, FSTS_PPF } from "../spec/vtd/registers.js";
import type { KernelLog } from "./log.js";
import { hx, type DmarUnit, type UnitIo } from "./intel-unit.js";

/** Fault reason texts of Linux's dma_remap_fault_reasons[] (drivers/iommu/intel/dmar.c). */
export const DMA_REMAP_FAULT_REASONS = [
  "Software",
  "Present bit in root entry is clear",
  "Present bit in context entry is clear",
  "Invalid context entry",
  "Access beyond MGAW",
  "PTE Write access is not set",
  "PTE Read access is not set",
  "Next page table ptr is invalid",
  "Root table address invalid",
  "Context table ptr is invalid",
  "non-zero reserved fields in RTP",
  "non-zero reserved fields in CTP",
  "non-zero reserved fields in PTE",
  "PCE for translation request specifies blocking",
];
/** irq_remap_fault_reasons[] for reasons 0x20.. */
export const IRQ_REMAP_FAULT_REASONS = [
  "Detected reserved fields in the decoded interrupt-remapped request",
  "Interrupt index exceeded the interrupt-remapping table size",
  "Present field in the IRTE entry is clear",
  "Error accessing interrupt-remapping table pointed by IRTA_REG",
  "Detected reserved fields in the IRTE entry",
  "Blocked a compatibility format interrupt request",
  "Blocked an interrupt request due to source-id verification failure",
];

/** Linux's dma_remap_sm_fault_reasons[] texts, by scalable-mode fault reason (0x30..0x90; others "Unknown"). */
export const DMA_REMAP_SM_FAULT_REASONS: Readonly<Record<number, string>> = Object.freeze({
  [SM.VTD_FR_SM_RTADDR_INV]: "SM: Invalid Root Table Address",
  [SM.VTD_FR_SM_TTM0_PASID]: "SM: TTM 0 for request with PASID",
  [SM.VTD_FR_SM_TTM0_PAGE_REQ]: "SM: TTM 0 for page group request",
  [SM.VTD_FR_SM_ROOT_TABLE_INV]: "SM: Error attempting to access Root Entry",
  [SM.VTD_FR_SM_ROOT_ENTRY_P]: "SM: Present bit in Root Entry is clear",
  [SM.VTD_FR_SM_ROOT_ENTRY_RSVD]: "SM: Non-zero reserved field set in Root Entry",
  [SM.VTD_FR_SM_CONTEXT_TABLE_INV]: "SM: Error attempting to access Context Entry",
  [SM.VTD_FR_SM_CONTEXT_ENTRY_P]: "SM: Present bit in Context Entry is clear",
  [SM.VTD_FR_SM_CONTEXT_ENTRY_RSVD]: "SM: Non-zero reserved field set in the Context Entry",
  [SM.VTD_FR_SM_CONTEXT_ENTRY_INV]: "SM: Invalid Context Entry",
  [SM.VTD_FR_SM_CONTEXT_DTE]: "SM: DTE field in Context Entry is clear",
  [SM.VTD_FR_SM_CONTEXT_PASIDE]: "SM: PASID Enable field in Context Entry is clear",
  [SM.VTD_FR_SM_PASID_TOO_LARGE]: "SM: PASID is larger than the max in Context Entry",
  [SM.VTD_FR_SM_CONTEXT_PRE]: "SM: PRE field in Context-Entry is clear",
  [SM.VTD_FR_SM_RID_PASID]: "SM: RID_PASID field error in Context-Entry",
  [SM.VTD_FR_SM_PASID_DIR_INV]: "SM: Error attempting to access the PASID Directory Entry",
  [SM.VTD_FR_SM_PASID_DIR_P]: "SM: Present bit in Directory Entry is clear",
  [SM.VTD_FR_SM_PASID_DIR_RSVD]: "SM: Non-zero reserved field set in PASID Directory Entry",
  [SM.VTD_FR_SM_PASID_TABLE_INV]: "SM: Error attempting to access PASID Table Entry",
  [SM.VTD_FR_SM_PASID_ENTRY_P]: "SM: Present bit in PASID Table Entry is clear",
  [SM.VTD_FR_SM_PASID_ENTRY_RSVD]: "SM: Non-zero reserved field set in PASID Table Entry",
  [SM.VTD_FR_SM_PASID_ENTRY_INV]: "SM: Invalid Scalable-Mode PASID Table Entry",
  [SM.VTD_FR_SM_PASID_ERE]: "SM: ERE field is clear in PASID Table Entry",
  [SM.VTD_FR_SM_PASID_SRE]: "SM: SRE field is clear in PASID Table Entry",
  [SM.VTD_FR_SM_FS_ENTRY_INV]: "SM: Error attempting to access first-level paging entry",
  [SM.VTD_FR_SM_FS_ENTRY_P]: "SM: Present bit in first-level paging entry is clear",
  [SM.VTD_FR_SM_FS_ENTRY_RSVD]: "SM: Non-zero reserved field set in first-level paging entry",
  [SM.VTD_FR_SM_FS_PML4_INV]: "SM: Error attempting to access FL-PML4 entry",
  [SM.VTD_FR_SM_NESTED_FS_BEYOND_MGAW]: "SM: First-level entry address beyond MGAW in Nested translation",
  [SM.VTD_FR_SM_NESTED_FS_TOP_READ]: "SM: Read permission error in FL-PML4 entry in Nested translation",
  [SM.VTD_FR_SM_NESTED_FS_READ]: "SM: Read permission error in first-level paging entry in Nested translation",
  [SM.VTD_FR_SM_NESTED_FS_WRITE]: "SM: Write permission error in first-level paging entry in Nested translation",
  [SM.VTD_FR_SM_SS_ENTRY_INV]: "SM: Error attempting to access second-level paging entry",
  [SM.VTD_FR_SM_SS_PERM]: "SM: Read/Write permission error in second-level paging entry",
  [SM.VTD_FR_SM_SS_ENTRY_RSVD]: "SM: Non-zero reserved field set in second-level paging entry",
  [SM.VTD_FR_SM_SS_PTR_INV]: "SM: Invalid second-level page table pointer",
  [SM.VTD_FR_SM_SS_AD_NOSNOOP]: "SM: A/D bit update needed in second-level entry when set up in no snoop",
  [SM.VTD_FR_SM_NON_CANONICAL]: "SM: Address in first-level translation is not canonical",
  [SM.VTD_FR_SM_US]: "SM: U/S set 0 for first-level translation with user privilege",
  [SM.VTD_FR_SM_EXECUTE]: "SM: No execute permission for request with PASID and ER=1",
  [SM.VTD_FR_SM_BEYOND_MGAW]: "SM: Address beyond the DMA hardware max",
  [SM.VTD_FR_SM_SS_BEYOND_MAX]: "SM: Second-level entry address beyond the max",
  [SM.VTD_FR_SM_WRITE]: "SM: No write permission for Write/AtomicOp request",
  [SM.VTD_FR_SM_READ]: "SM: No read permission for Read/AtomicOp request",
  [SM.VTD_FR_SM_INTERRUPT_ADDR]: "SM: Invalid address-interrupt address",
  [SM.VTD_FR_SM_FS_AD_NOSNOOP]: "SM: A/D bit update needed in first-level entry when set up in no snoop",
});

export interface FaultRecord {
  unit: string;
  /** "DMA Read", "DMA Write" or "INTR-REMAP". */
  type: string;
  sourceId: number;
  /** Fault address (DMA) or interrupt index (remapping), as a number. */
  addr: number;
  reason: number;
  reasonText: string;
  /** The request's PASID when the record has one (PP set: a request with a PASID in scalable mode), else null. */
  pasid: number | null;
  ns: number;
}

const pad2 = (n: number): string => n.toString(16).padStart(2, "0");

/** Linux's text for a fault reason (dmar_get_fault_reason). */
function reasonText(reason: number): string {
  if (isInterruptRemappingFault(reason)) return IRQ_REMAP_FAULT_REASONS[reason - VTD_FR_IR_REQ_RSVD] ?? "Unknown";
  if (reason >= SM.VTD_FR_SM_RTADDR_INV) return DMA_REMAP_SM_FAULT_REASONS[reason] ?? "Unknown";
  return DMA_REMAP_FAULT_REASONS[reason] ?? "Unknown";
}

/**
 * dmar_fault: reads and clears every pending fault record of `u`. With `log`, each is logged as Linux logs it
 * and appended to `sink`; without (clear_primary_faults at setup), they are cleared silently.
 */
export function handleFaults(io: UnitIo, klog: KernelLog, u: DmarUnit, log: boolean, sink: FaultRecord[]): FaultRecord[] {
  const out: FaultRecord[] = [];
  const fsts = io.r32(u, DMAR_FSTS_REG);
  if (fsts !== 0 && log) klog.err(`DMAR: DRHD: handling fault status reg ${hx(fsts)}`);
  if ((fsts & FSTS_PPF) !== 0) {
    const { nfr: nfrField, fro: froField } = u.faultRecordField;
    const nfr = faultRecordCount(nfrField);
    const fro = registerOffset(froField);
    let idx = faultRecordIndex(fsts);
    for (let n = 0; n < nfr; n++) {
      const off = fro + idx * FRCD_SIZE;
      const w3 = io.r32(u, off + FRCD_TOP_DWORD);
      if ((w3 & FRCD_W3_F) === 0) break;
      const [w0 = 0, w1 = 0, w2 = 0] = FRCD_DWORD_OFFSETS.slice(0, 3).map((o) => io.r32(u, off + o));
      const f = decodeFaultRecord(w0, w1, w2, w3);
      const isIr = isInterruptRemappingFault(f.reason);
      const addr = isIr ? f.interruptIndex : f.fiHi * TWO32 + f.fiLo;
      const rec: FaultRecord = { unit: u.name, type: isIr ? "INTR-REMAP" : f.read ? "DMA Read" : "DMA Write", sourceId: f.sourceId, addr, reason: f.reason, reasonText: reasonText(f.reason), pasid: f.pasidPresent ? f.pasid : null, ns: 0 };
      out.push(rec);
      if (log) {
        const who = formatRequesterId(f.sourceId);
        if (isIr) klog.err(`DMAR: [INTR-REMAP] Request device [${who}] fault index 0x${hx(addr)} [fault reason 0x${pad2(f.reason)}] ${rec.reasonText}`);
        else {
          const pasid = rec.pasid === null ? "NO_PASID" : `PASID 0x${hx(rec.pasid)}`;
          klog.err(`DMAR: [${rec.type} ${pasid}] Request device [${who}] fault addr 0x${hx(addr)} [fault reason 0x${pad2(f.reason)}] ${rec.reasonText}`);
        }
        sink.push(rec);
      }
      io.w32(u, off + FRCD_TOP_DWORD, FRCD_W3_F); // clear F (write 1)
      idx = (idx + 1) % nfr;
    }
  }
  io.w32(u, DMAR_FSTS_REG, fsts & (FSTS_PFO | FSTS_IQE));
  return out;
}
