/**
 * The faults the kernel has read from its IOMMU, whichever kind it drives, in one shape: a VT-d fault record
 * (read through the fault recording registers by dmar_fault) or an AMD-Vi event log entry (read from the log by
 * iommu_poll_events). Callers that judge an outcome (the tour, the hypervisor's scenarios and stress test) read
 * this view, so a verdict about "a fault naming the device" is computed from what the hardware actually logged.
 */
import { faultReasonName } from "../spec/vtd/faults.js";
import { EVF_I, EVF_RW, IO_PAGE_FAULT } from "../spec/amdvi/events.js";
import { eventText, type AmdEventRecord } from "./amd-events.js";
import type { FaultRecord } from "./intel-faults.js";

export interface KernelFault {
  /** The unit that reported it ("dmar0", "ivhd0"). */
  unit: string;
  /** Where the report came from: a VT-d fault record or an AMD-Vi event log entry. */
  origin: "vtd-fault-record" | "amdvi-event";
  /** Requester id the report names. */
  sourceId: number;
  /** "DMA Read", "DMA Write", "INTR-REMAP", or the AMD-Vi event name for events that are not page faults. */
  type: string;
  /** Faulting address (DMA), interrupt index (VT-d interrupt remapping) or the address field of the event. */
  addr: number;
  /** VT-d fault reason or AMD-Vi event code. */
  reason: number;
  /** The specification's name of the reason or event ("DMAR_FR_WRITE"-style, or "IO_PAGE_FAULT"). */
  name: string;
  /** Linux's text for it (dmar_get_fault_reason, or the event as iommu_print_event prints it). */
  text: string;
  /** The PASID of a VT-d request with one (fault record PP set), else null. */
  pasid: number | null;
  ns: number;
}

export function fromVtdFault(f: FaultRecord): KernelFault {
  return { unit: f.unit, origin: "vtd-fault-record", sourceId: f.sourceId, type: f.type, addr: f.addr, reason: f.reason, name: faultReasonName(f.reason), text: f.reasonText, pasid: f.pasid, ns: f.ns };
}

/** An AMD-Vi event as a kernel fault: IO_PAGE_FAULT's flags say whether it was a read, a write or an interrupt. */
export function fromAmdEvent(e: AmdEventRecord): KernelFault {
  let type = e.name;
  if (e.code === IO_PAGE_FAULT) type = (e.flags & EVF_I) !== 0 ? "INTR-REMAP" : (e.flags & EVF_RW) !== 0 ? "DMA Write" : "DMA Read";
  return { unit: e.unit, origin: "amdvi-event", sourceId: e.deviceId, type, addr: Number(e.address), reason: e.code, name: e.name, text: eventText(e, e.address), pasid: null, ns: e.ns };
}
