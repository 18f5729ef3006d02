/**
 * Primary fault logging and the unit's own event interrupts.
 *
 * Fault recording (VT-d spec 7.2.1): CAP.NFR + 1 fault recording registers of 128 bits at CAP.FRO * 16, used
 * round-robin. A fault is dropped when FSTS.PFO is set, collapsed when a pending record has the same source id
 * (the spec allows it, QEMU does it; configurable), or turned into FSTS.PFO when the next record is still in
 * use. A recorded fault sets F, FSTS.PPF and (if PPF was clear) FSTS.FRI. Software clears a record by writing 1
 * to its F bit; PPF follows the F bits.
 *
 * Fault events (7.3): when a status condition appears while none was pending (PFO, PPF, IQE, ICE, ITE all
 * clear), FECTL.IP is set; with FECTL.IM clear the interrupt (FEADDR/FEUADDR, FEDATA) goes to the interrupt
 * sink at once and IP clears, otherwise it stays pending until software clears IM. IP also clears when software
 * has serviced every status condition.
 *
 * Invalidation completion events (6.5.2.9): an invalidation wait descriptor with IF sets ICS.IWC and signals
 * through IECTL/IEDATA/IEADDR/IEUADDR the same way.
 */
import type { VtdConfig } from "./config.js";
import type { RegisterFile } from "./regfile.js";
import { frcdOffset } from "./registers.js";
import { RID_MASK } from "../../core/pci.js";
import { encodeFaultRecord, FRCD, FRCD_DWORD_OFFSETS, FRCD_W3_F } from "../../spec/vtd/faults.js";
import { wordMask } from "../../spec/vtd/fields.js";
import {
  DMAR_FEADDR_REG,
  DMAR_FECTL_REG,
  DMAR_FEDATA_REG,
  DMAR_FEUADDR_REG,
  DMAR_FSTS_REG,
  DMAR_ICS_REG,
  DMAR_IEADDR_REG,
  DMAR_IECTL_REG,
  DMAR_IEDATA_REG,
  DMAR_IEUADDR_REG,
  DMAR_IQERCD_REG,
  FECTL_IM,
  FECTL_IP,
  FSTS_EVENT_FIELDS,
  FSTS_FRI_MASK,
  FSTS_FRI_SHIFT,
  FSTS_IQE,
  FSTS_PFO,
  FSTS_PPF,
  ICS_IWC,
  IECTL_IM,
  IECTL_IP,
  IQERCD,
} from "../../spec/vtd/registers.js";

/** Where the dwords of a fault record and of its SID field are, relative to the record. */
const [W0, W1, W2, W3] = FRCD_DWORD_OFFSETS;
const SID_MASK = wordMask(FRCD.SID);

/** Request kinds as FRCD records them (T1 = read, T2 = translation request). */
export const REQ_WRITE = 0;
export const REQ_READ = 1;
export const REQ_TRANSLATION = 2;

/** Where the unit's own interrupts go: address halves and data of the MSI it would send. */
export type EventDelivery = (origin: "fault-event" | "invalidation-event", addressLo: number, addressHi: number, data: number) => void;

export interface FaultStats {
  /** Faults written into a fault recording register. */
  recorded: number;
  /** Qualified faults not recorded because the context entry had FPD set. */
  suppressed: number;
  /** Faults dropped because FSTS.PFO was set or the next record was still pending (which sets PFO). */
  overflowed: number;
  /** Faults collapsed into a pending record of the same source id. */
  collapsed: number;
  /** Fault event interrupts sent / left pending because FECTL.IM was set. */
  eventsSent: number;
  eventsPending: number;
}

export class FaultReporting {
  private readonly regs: RegisterFile;
  private readonly cfg: VtdConfig;
  private readonly deliver: EventDelivery;
  /** Index of the fault recording register the next fault goes to. */
  private next = 0;
  readonly stats: FaultStats = { recorded: 0, suppressed: 0, overflowed: 0, collapsed: 0, eventsSent: 0, eventsPending: 0 };

  constructor(regs: RegisterFile, cfg: VtdConfig, deliver: EventDelivery) {
    this.regs = regs;
    this.cfg = cfg;
    this.deliver = deliver;
  }

  reset(): void {
    this.next = 0;
    for (const k of Object.keys(this.stats) as (keyof FaultStats)[]) this.stats[k] = 0;
  }

  /** Index the next recorded fault will use (the hardware's internal pointer). */
  get nextRecord(): number {
    return this.next;
  }

  /**
   * Records a fault. `addrLo/addrHi` is the faulting address (FI keeps bits 63:12); for interrupt-remapping
   * faults `interruptIndex` goes to FI bits 63:48 instead. `kind` is REQ_WRITE, REQ_READ or
   * REQ_TRANSLATION; `at` the request's address type; `pasid` (>= 0) that of a request with a PASID (PP, PV).
   * Returns true when a record was written.
   */
  record(sid: number, addrLo: number, addrHi: number, reason: number, kind: number, at: number, interruptIndex?: number, pasid = -1): boolean {
    const fsts = this.regs.get32(DMAR_FSTS_REG);
    if ((fsts & FSTS_PFO) !== 0) {
      this.stats.overflowed++;
      return false;
    }
    const n = this.cfg.faultRecords;
    const source = sid & RID_MASK;
    if (this.cfg.collapseFaults) {
      for (let i = 0; i < n; i++) {
        const off = frcdOffset(this.cfg, i);
        const w3 = this.regs.get32(off + W3);
        if ((w3 & FRCD_W3_F) !== 0 && (this.regs.get32(off + W2) & SID_MASK) === source) {
          this.stats.collapsed++;
          return false;
        }
      }
    }
    const index = this.next;
    const off = frcdOffset(this.cfg, index);
    if ((this.regs.get32(off + W3) & FRCD_W3_F) !== 0) {
      // The record the hardware would use next is still pending: primary fault overflow.
      this.stats.overflowed++;
      this.regs.update32(DMAR_FSTS_REG, FSTS_PFO, 0);
      this.raiseEvent(fsts);
      return false;
    }
    const words = encodeFaultRecord({
      reason,
      sourceId: source,
      read: kind === REQ_READ,
      translationRequest: kind === REQ_TRANSLATION,
      at,
      addrLo,
      addrHi,
      ...(interruptIndex !== undefined ? { interruptIndex } : {}),
      ...(pasid >= 0 ? { pasid } : {}),
    });
    this.regs.set32(off + W0, words[0]);
    this.regs.set32(off + W1, words[1]);
    this.regs.set32(off + W2, words[2]);
    this.regs.set32(off + W3, words[3]);
    // FRI names the first pending record: it is set only when PPF was clear.
    const fri = (fsts & FSTS_PPF) === 0 ? (index << FSTS_FRI_SHIFT) & FSTS_FRI_MASK : fsts & FSTS_FRI_MASK;
    this.regs.set32(DMAR_FSTS_REG, ((fsts & ~FSTS_FRI_MASK) | fri | FSTS_PPF) >>> 0);
    this.next = (index + 1) % n;
    this.stats.recorded++;
    this.raiseEvent(fsts);
    return true;
  }

  /** Sets FSTS.IQE (and IQERCD.IQEI) for an invalidation queue error and raises the fault event. */
  queueError(iqei: number): void {
    const fsts = this.regs.get32(DMAR_FSTS_REG);
    this.regs.update32(DMAR_FSTS_REG, FSTS_IQE, 0);
    this.regs.set32(DMAR_IQERCD_REG, iqei & wordMask(IQERCD.IQEI));
    this.raiseEvent(fsts);
  }

  /** Fault event for a new status condition; `before` is FSTS before it was set. */
  private raiseEvent(before: number): void {
    if ((before & FSTS_EVENT_FIELDS) !== 0) return; // an earlier condition is still being serviced
    const fectl = this.regs.update32(DMAR_FECTL_REG, FECTL_IP, 0);
    if ((fectl & FECTL_IM) !== 0) {
      this.stats.eventsPending++;
      return;
    }
    this.sendFaultEvent();
  }

  private sendFaultEvent(): void {
    this.regs.update32(DMAR_FECTL_REG, 0, FECTL_IP);
    this.stats.eventsSent++;
    this.deliver("fault-event", this.regs.get32(DMAR_FEADDR_REG), this.regs.get32(DMAR_FEUADDR_REG), this.regs.get32(DMAR_FEDATA_REG));
  }

  /** PPF = any record's F; IP clears once no status condition is left. Call after FSTS or FRCD writes. */
  refreshStatus(): void {
    let ppf = false;
    for (let i = 0; i < this.cfg.faultRecords; i++) {
      if ((this.regs.get32(frcdOffset(this.cfg, i) + W3) & FRCD_W3_F) !== 0) {
        ppf = true;
        break;
      }
    }
    const fsts = this.regs.update32(DMAR_FSTS_REG, ppf ? FSTS_PPF : 0, ppf ? 0 : FSTS_PPF);
    if ((fsts & FSTS_EVENT_FIELDS) === 0) this.regs.update32(DMAR_FECTL_REG, 0, FECTL_IP);
  }

  /** FECTL written: a pending event is sent when software unmasks it. */
  onFectlWrite(): void {
    const fectl = this.regs.get32(DMAR_FECTL_REG);
    if ((fectl & FECTL_IP) !== 0 && (fectl & FECTL_IM) === 0) this.sendFaultEvent();
  }

  /** Invalidation wait with IF (6.5.2.9): sets ICS.IWC and signals unless IWC was already set. */
  completionEvent(): void {
    if ((this.regs.get32(DMAR_ICS_REG) & ICS_IWC) !== 0) return;
    this.regs.update32(DMAR_ICS_REG, ICS_IWC, 0);
    const iectl = this.regs.update32(DMAR_IECTL_REG, IECTL_IP, 0);
    if ((iectl & IECTL_IM) === 0) this.sendCompletionEvent();
  }

  private sendCompletionEvent(): void {
    this.regs.update32(DMAR_IECTL_REG, 0, IECTL_IP);
    this.deliver("invalidation-event", this.regs.get32(DMAR_IEADDR_REG), this.regs.get32(DMAR_IEUADDR_REG), this.regs.get32(DMAR_IEDATA_REG));
  }

  /** ICS written: IP clears when IWC was cleared. */
  onIcsWrite(): void {
    if ((this.regs.get32(DMAR_ICS_REG) & ICS_IWC) === 0) this.regs.update32(DMAR_IECTL_REG, 0, IECTL_IP);
  }

  /** IECTL written: a pending completion event is sent when software unmasks it. */
  onIectlWrite(): void {
    const iectl = this.regs.get32(DMAR_IECTL_REG);
    if ((iectl & IECTL_IP) !== 0 && (iectl & IECTL_IM) === 0) this.sendCompletionEvent();
  }
}
