/**
 * What a register write sets off in a VT-d unit (VT-d spec 10.4): the global commands of GCMD_REG (10.4.4),
 * register-based invalidation (CCMD_REG, IOTLB_REG), the queue tail (IQT_REG), and the status and control
 * registers of fault and invalidation-completion events. The register file says which register a write hit;
 * this module dispatches on it. Commands complete at once: their status shows in GSTS_REG on return.
 */
import type { VtdConfig } from "./config.js";
import type { FaultReporting } from "./faults.js";
import type { InterruptRemapper } from "./intremap.js";
import type { Invalidation } from "./invalidation.js";
import type { RegisterFile, WriteInfo } from "./regfile.js";
import {
  EFFECT_CCMD,
  EFFECT_FECTL,
  EFFECT_FRCD,
  EFFECT_FSTS,
  EFFECT_GCMD,
  EFFECT_ICS,
  EFFECT_IECTL,
  EFFECT_IOTLB,
  EFFECT_IQA,
  EFFECT_IQT,
} from "./registers.js";
import { hawHiMask } from "../../spec/vtd/context.js";
import { fieldOf } from "../../spec/vtd/fields.js";
import { PAGE_SIZE_4K } from "../../spec/vtd/paging.js";
import {
  DMAR_GSTS_REG,
  DMAR_IRTA_REG,
  DMAR_RTADDR_REG,
  FSTS_IQE,
  GCMD_CFI,
  GCMD_IRE,
  GCMD_QIE,
  GCMD_SIRTP,
  GCMD_SRTP,
  GCMD_TE,
  GSTS_CFIS,
  GSTS_IRES,
  GSTS_IRTPS,
  GSTS_QIES,
  GSTS_RTPS,
  GSTS_TES,
  REG_HI,
  RTADDR,
} from "../../spec/vtd/registers.js";

/** The parts of a unit register writes act on, and the state the global commands latch. */
export interface CommandTarget {
  readonly regs: RegisterFile;
  readonly config: Readonly<VtdConfig>;
  readonly faults: FaultReporting;
  readonly invalidation: Invalidation;
  readonly remapper: InterruptRemapper | null;
  /** GCMD.TE changed. */
  setTranslation(enabled: boolean): void;
  /** GCMD.SRTP: the root table address (halves, within HAW) and translation table mode, latched from RTADDR_REG. */
  latchRootTable(lo: number, hi: number, ttm: number): void;
}

/** Carries out what a software write to a declared register sets off. */
export function onRegisterWrite(t: CommandTarget, info: WriteInfo): void {
  const decl = info.decl;
  if (decl === null) return;
  switch (decl.effect) {
    case EFFECT_GCMD:
      globalCommand(t, info.newLo);
      break;
    case EFFECT_CCMD:
      if (info.wroteHi) t.invalidation.onCcmdWrite();
      break;
    case EFFECT_IOTLB:
      if (info.wroteHi) t.invalidation.onIotlbWrite();
      break;
    case EFFECT_FSTS:
      t.faults.refreshStatus();
      // Clearing IQE lets the queue resume from IQH (6.5.2.10).
      if ((info.oldLo & FSTS_IQE) !== 0 && (info.newLo & FSTS_IQE) === 0) t.invalidation.process();
      break;
    case EFFECT_FECTL:
      t.faults.onFectlWrite();
      break;
    case EFFECT_FRCD:
      if (info.wroteHi) t.faults.refreshStatus();
      break;
    case EFFECT_IQT:
      if (info.wroteLo) t.invalidation.process();
      break;
    case EFFECT_IQA:
      break;
    case EFFECT_ICS:
      t.faults.onIcsWrite();
      break;
    case EFFECT_IECTL:
      t.faults.onIectlWrite();
      break;
    default:
      break;
  }
}

/**
 * GCMD written (10.4.4): each command acts on the bits that differ from GSTS (TE, QIE, IRE, CFI) or on being
 * set (SRTP, SIRTP, WBF, one-shot). Status shows in GSTS at once: the commands complete immediately.
 */
export function globalCommand(t: CommandTarget, cmd: number): void {
  const sts = t.regs.get32(DMAR_GSTS_REG);
  const changed = (sts ^ cmd) >>> 0;
  let set = 0;
  let clear = 0;
  if ((changed & GCMD_TE) !== 0) {
    const en = (cmd & GCMD_TE) !== 0;
    t.setTranslation(en);
    if (en) set |= GSTS_TES;
    else clear |= GSTS_TES;
  }
  if ((cmd & GCMD_SRTP) !== 0) {
    // Latch the root table (RTA bits HAW-1:12). Caches are not flushed: software invalidates (10.4.6).
    const rtaLo = t.regs.get32(DMAR_RTADDR_REG);
    const lo = fieldOf(rtaLo, 0, RTADDR.RTA) * PAGE_SIZE_4K;
    t.latchRootTable(lo, (t.regs.get32(DMAR_RTADDR_REG + REG_HI) & hawHiMask(t.config.hawBits)) >>> 0, fieldOf(rtaLo, 0, RTADDR.TTM));
    set |= GSTS_RTPS;
  }
  if ((changed & GCMD_QIE) !== 0 && t.config.queuedInvalidation) {
    const en = (cmd & GCMD_QIE) !== 0;
    if (en) set |= GSTS_QIES;
    else clear |= GSTS_QIES;
    t.regs.update32(DMAR_GSTS_REG, set, clear);
    set = clear = 0;
    t.invalidation.setQueueEnabled(en);
  }
  const ir = t.remapper;
  if (ir !== null) {
    if ((cmd & GCMD_SIRTP) !== 0) {
      ir.setTable(t.regs.get32(DMAR_IRTA_REG), t.regs.get32(DMAR_IRTA_REG + REG_HI));
      set |= GSTS_IRTPS;
    }
    if ((changed & GCMD_IRE) !== 0) {
      const en = (cmd & GCMD_IRE) !== 0;
      ir.setEnabled(en);
      if (en) set |= GSTS_IRES;
      else clear |= GSTS_IRES;
    }
    if ((changed & GCMD_CFI) !== 0) {
      const en = (cmd & GCMD_CFI) !== 0;
      ir.setCompatibilityAllowed(en);
      if (en) set |= GSTS_CFIS;
      else clear |= GSTS_CFIS;
    }
  }
  // WBF: the write buffer flush completes at once; GSTS.WBFS reads 0 afterwards (CAP.RWBF or not).
  t.regs.update32(DMAR_GSTS_REG, set, clear);
}
