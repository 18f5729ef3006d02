/**
 * One Intel VT-d DMA-remapping unit, legacy mode (VT-d spec 3, 5, 6, 7, 10): the register file, the
 * translation of DMA requests through root, context and second-level tables, the translation caches, fault
 * recording with fault events, register-based and queued invalidation, and interrupt requests handed to
 * interrupt remapping. Nothing a guest writes to registers or memory makes it throw; everything ends as a
 * translation, a fault recorded as the spec names it, or a status bit.
 *
 * Two translation entry points:
 *   translate(req)                     allocating, friendly: splits a request into pages, returns segments or the
 *                                      fault, delivers interrupt requests.
 *   translateFast(sid, lo, hi, write)  one page, no allocation, no bigint: returns 0 (result in outLo/outHi,
 *                                      outShift, outRead, outWrite), a fault reason, or INTERRUPT_REQUEST.
 */
import type { PhysicalMemory } from "../../core/memory.js";
import { RID_MASK } from "../../core/pci.js";
import { TWO32 } from "../../core/u64.js";
import type { InterruptMessage, InterruptSink } from "../interrupt-message.js";
import { ContextCache, Iotlb, NEG_NOT_PRESENT, PagingStructureCache } from "./caches.js";
import type { CacheStats } from "./cache.js";
import { capHalves, qemuVtdConfig, validateConfig, walkCapsFromConfig, type VtdConfig, type WalkCaps } from "./config.js";
import { FaultReporting, REQ_READ, REQ_TRANSLATION, REQ_WRITE, type FaultStats } from "./faults.js";
import { InterruptRemapper, type RemapResult } from "./intremap.js";
import { Invalidation, type InvalidationStats, type InvalidationTarget, type QueueMemory } from "./invalidation.js";
import { RegisterFile } from "./regfile.js";
import { declareRegisters, registerWindowSize } from "./registers.js";
import { onRegisterWrite, type CommandTarget } from "./commands.js";
import { atOf, type DmaRequest, type PostedNotification, type TranslateResult } from "./request.js";
import { requestAddress, translatePages } from "./translate-pages.js";
import { ScalableTranslator } from "./sm-translate.js";
import { scalableCapsFromConfig } from "./scalable.js";
import { TTM_LEGACY, TTM_SCALABLE } from "../../spec/vtd/registers.js";
import { VTD_FR_SM_RTADDR_INV, VTD_FR_SM_TTM0_PASID } from "../../spec/vtd/sm-faults.js";
import { TT_DEVICE_TLB, TT_PASS_THROUGH } from "../../spec/vtd/context.js";
import {
  AT_TRANSLATED,
  AT_TRANSLATION_REQUEST,
  AT_UNTRANSLATED,
  isQualifiedFault,
  VTD_FR_ADDR_BEYOND_MGAW,
  VTD_FR_CONTEXT_ENTRY_TT,
  VTD_FR_PAGING_ENTRY_RSVD,
  VTD_FR_READ,
  VTD_FR_WRITE,
} from "../../spec/vtd/faults.js";
import { joinHalves } from "../../spec/vtd/fields.js";
import { levelShift, maxLeafLevel, PAGE_SHIFT_4K, SL_LEVEL_BITS, SL_R, SL_W } from "../../spec/vtd/paging.js";
import { walkSecondLevel, lookupContext, ContextOut, WalkOut, type PagingStructureSink, type TableReader } from "./walk.js";
import { decodeCompatMsi, isInterruptAddress, MSI_ADDR_HEAD, MSI_ADDR_HEAD_SHIFT } from "../../spec/msi.js";

export type { AddressType, DmaRequest, DmaSegment, PostedNotification, TranslateResult } from "./request.js";
export { isPostedNotification } from "./request.js";

// Module-local copies of what the hit path reads on every request. Imported bindings can cost a property
// access each when modules are loaded through a transpiling loader (tests, tsx); locals never do.
const HEAD = MSI_ADDR_HEAD;
const HEAD_SHIFT = MSI_ADDR_HEAD_SHIFT;
const RID = RID_MASK;
const PAGE_SHIFT = PAGE_SHIFT_4K;
const LEVEL_BITS = SL_LEVEL_BITS;
const PERM_R = SL_R;
const PERM_W = SL_W;
const AT_NONE = AT_UNTRANSLATED;
const AT_DONE = AT_TRANSLATED;
const TT_DT = TT_DEVICE_TLB;
const TT_PT = TT_PASS_THROUGH;
const FR_MGAW = VTD_FR_ADDR_BEYOND_MGAW;
const FR_TT = VTD_FR_CONTEXT_ENTRY_TT;
const FR_WRITE = VTD_FR_WRITE;
const FR_READ = VTD_FR_READ;
const NEG_NP = NEG_NOT_PRESENT;

/** Interrupt requests are DWORD writes (3.14). */
const DWORD = 4;

/** translateFast's answer for a write to the interrupt address range: use translate() (or the remapper). */
export const INTERRUPT_REQUEST = -1;
/** translateFast's answer for a request the interrupt address range does not accept (a read there). */
export const UNSUPPORTED_REQUEST = -2;

export interface VtdUnitOptions {
  /** Physical memory: the tables live here, invalidation-wait status writes go here. */
  memory: PhysicalMemory;
  config?: Partial<VtdConfig>;
  /** Receives fault events, invalidation completion events and (remapped) device interrupts. */
  interruptSink?: InterruptSink;
  /** Reads tables instead of `memory` (e.g. with `canRead` reporting addresses outside RAM as errors). */
  reader?: TableReader;
  /** A name for messages and the interrupt sink ("dmar0"). */
  name?: string;
}

export interface VtdStats {
  iotlb: CacheStats;
  contextCache: CacheStats;
  pagingStructureCache: CacheStats | null;
  faults: FaultStats;
  invalidation: InvalidationStats;
  translations: number;
  walks: number;
}


export class VtdUnit implements InvalidationTarget {
  /** What the platform dispatches on (hw/iommu-unit.ts). */
  readonly kind = "vtd" as const;
  readonly name: string;
  readonly config: Readonly<VtdConfig>;
  readonly caps: WalkCaps;
  readonly regs: RegisterFile;
  readonly remapper: InterruptRemapper | null;
  readonly faults: FaultReporting;
  readonly invalidation: Invalidation;
  readonly iotlb: Iotlb;
  readonly contextCache: ContextCache;
  readonly pagingCache: PagingStructureCache | null;
  /** Scalable-mode translation, its PASID cache and PASID IOTLB (null without ECAP.SMTS). */
  readonly scalable: ScalableTranslator | null;
  /** Device-IOTLB invalidations seen (for device models with ATS), newest last. */
  readonly deviceIotlbInvalidations: { sid: number; addr: bigint; size: boolean }[] = [];

  // ---- Results of translateFast ----
  outLo = 0;
  outHi = 0;
  /** log2 of the page size that mapped the request. */
  outShift = 12;
  outRead = false;
  outWrite = false;
  /** After a fault: whether it went into a fault recording register. */
  lastFaultRecorded = false;

  private readonly memory: PhysicalMemory;
  private readonly reader: TableReader;
  private readonly sink: InterruptSink;
  private readonly capWords: { capLo: number; capHi: number; ecapLo: number; ecapHi: number };
  // Latched state.
  private tes = false;
  private rtaLo = 0;
  private rtaHi = 0;
  /** RTADDR.TTM latched by SRTP (10.4.6): 00 legacy, 01 scalable. */
  private ttm = TTM_LEGACY;
  private translations = 0;
  private walks = 0;
  // Scratch objects, reused so the miss path allocates nothing either.
  private readonly ctxOut = new ContextOut();
  private readonly walkOut = new WalkOut();
  private readonly pscSink: PagingStructureSink;
  private pscDid = 0;
  private readonly commands: CommandTarget;
  // The usable context of the source id translated last, valid while the context cache has neither changed
  // (epoch) nor been filled since: lets a stream of requests from one device skip the context checks.
  private hotSid = -1;
  private hotEpoch = 0;
  private hotFills = 0;
  private hotSlot = 0;
  private hotDid = 0;
  private hotShift = 0;

  constructor(opts: VtdUnitOptions) {
    const cfg = qemuVtdConfig(opts.config ?? {});
    validateConfig(cfg);
    this.config = Object.freeze(cfg);
    this.name = opts.name ?? "dmar0";
    this.memory = opts.memory;
    this.reader = opts.reader ?? opts.memory;
    this.sink = opts.interruptSink ?? (() => {});
    this.caps = walkCapsFromConfig(cfg);
    this.capWords = capHalves(cfg);
    this.regs = new RegisterFile(registerWindowSize(cfg), declareRegisters(cfg));
    this.faults = new FaultReporting(this.regs, cfg, (origin, lo, hi, data) => {
      this.sink({ addressLo: lo >>> 0, addressHi: hi >>> 0, data: data >>> 0, origin, unit: this.name });
    });
    const queueMemory: QueueMemory = {
      read32: (a) => this.reader.read32(a),
      write32: (a, v) => this.memory.write32(a, v),
      ...(this.reader.canRead !== undefined ? { canRead: (a: number, n: number) => this.reader.canRead?.(a, n) ?? true } : {}),
    };
    this.invalidation = new Invalidation(this.regs, cfg, this, this.faults, queueMemory);
    this.iotlb = new Iotlb(cfg.iotlb, maxLeafLevel(cfg.largePages));
    this.contextCache = new ContextCache(cfg.contextCache);
    this.pagingCache = cfg.pagingStructureCache === null ? null : new PagingStructureCache(cfg.pagingStructureCache);
    this.scalable = cfg.scalableMode ? new ScalableTranslator(this.reader, this.memory, scalableCapsFromConfig(this.caps, cfg), this.iotlb) : null;
    const psc = this.pagingCache;
    this.pscSink = {
      fill: (level, lo, hi, nextLo, nextHi, r, w) => psc?.fill(this.pscDid, level, lo, hi, nextLo, nextHi, r, w),
    };
    // The remapper reads IRTEs through the same reader; a read that fails (throws) is its fault 0x23.
    this.remapper = cfg.interruptRemapping
      ? new InterruptRemapper(this.reader, (f) => this.recordInterruptFault(f.sid, f.reason, f.index), {
          cacheSize: cfg.interruptEntryCache,
          hostAddressWidth: cfg.hawBits,
          postedInterrupts: cfg.postedInterrupts,
          writer: this.memory,
        })
      : null;
    this.commands = {
      regs: this.regs,
      config: this.config,
      faults: this.faults,
      invalidation: this.invalidation,
      remapper: this.remapper,
      setTranslation: (en) => {
        this.tes = en;
      },
      latchRootTable: (lo, hi, ttm) => {
        this.rtaLo = lo;
        this.rtaHi = hi;
        this.ttm = this.scalable === null ? TTM_LEGACY : ttm; // TTM is reserved without ECAP.SMTS (QEMU ignores it)
        this.hotSid = -1;
      },
    };
  }

  // ---- Reset ----

  /** Hardware reset: every register to its reset value, caches empty, translation and remapping off. */
  reset(): void {
    this.regs.reset();
    this.faults.reset();
    this.invalidation.reset();
    this.iotlb.reset();
    this.contextCache.reset();
    this.pagingCache?.reset();
    this.tes = false;
    this.rtaLo = this.rtaHi = 0;
    this.ttm = TTM_LEGACY;
    this.scalable?.reset();
    this.translations = this.walks = 0;
    this.hotSid = -1;
    this.deviceIotlbInvalidations.length = 0;
    if (this.remapper !== null) {
      this.remapper.setEnabled(false);
      this.remapper.setCompatibilityAllowed(false);
      this.remapper.setTable(0, 0);
      this.remapper.invalidateAll();
    }
  }

  // ---- MMIO ----

  /** Size of the register window in bytes. */
  get mmioSize(): number {
    return this.regs.size;
  }

  /** 4- or 8-byte register read: a number for 4 bytes, a bigint for 8. Bad accesses read 0. */
  mmioRead(offset: number, size: 4): number;
  mmioRead(offset: number, size: 8): bigint;
  mmioRead(offset: number, size: number): number | bigint;
  mmioRead(offset: number, size: number): number | bigint {
    return size === 8 ? this.regs.read64(offset) : this.regs.read32(size === 4 ? offset : -1);
  }

  /** 4- or 8-byte register write (value: number or bigint, taken modulo 2^size*8). Bad accesses are ignored. */
  mmioWrite(offset: number, size: number, value: number | bigint): void {
    let lo: number;
    let hi: number;
    if (typeof value === "bigint") {
      const v = BigInt.asUintN(64, value);
      lo = Number(v & 0xffffffffn);
      hi = Number(v >> 32n);
    } else {
      const n = Number.isFinite(value) ? Math.trunc(value) : 0;
      lo = n >>> 0;
      hi = Math.floor(n / TWO32) >>> 0;
    }
    this.mmioWrite64(offset, size, lo, hi);
  }

  /** Register write with the value as 32-bit halves (no bigint). */
  mmioWrite64(offset: number, size: number, lo: number, hi: number): void {
    const info = this.regs.write(offset, size, lo >>> 0, hi >>> 0);
    if (info.decl !== null) onRegisterWrite(this.commands, info);
  }

  // ---- Translation ----

  /** Translation enabled (GSTS.TES). */
  get translationEnabled(): boolean {
    return this.tes;
  }

  /**
   * Translates one page for a request: returns 0 with the output in outLo/outHi (and outShift, outRead,
   * outWrite), a fault reason (recorded as the spec says; see lastFaultRecorded), INTERRUPT_REQUEST for a write
   * to 0xFEEx_xxxx or UNSUPPORTED_REQUEST for a read there. `at`: 0 untranslated, 1 translation request,
   * 2 translated. Allocates nothing.
   */
  translateFast(sid: number, lo: number, hi: number, write: boolean, at = AT_NONE, pasid = -1, supervisor = false): number {
    // Kept small so callers can inline it: the hit path of the hot source id, else the full path.
    if ((sid & RID) === this.hotSid && at === AT_NONE && pasid < 0 && this.tes && this.hotHit(lo >>> 0, hi >>> 0, write)) return 0;
    return this.translateFull(sid & RID, lo >>> 0, hi >>> 0, write, at, pasid, supervisor);
  }

  private translateFull(sid: number, lo: number, hi: number, write: boolean, at: number, pasid = -1, supervisor = false): number {
    this.translations++;
    // 3.14: requests to the interrupt address range are never DMA.
    if (hi === 0 && lo >>> HEAD_SHIFT === HEAD) return write ? INTERRUPT_REQUEST : UNSUPPORTED_REQUEST;
    if (!this.tes) return this.passThrough(lo, hi);
    if (this.ttm !== TTM_LEGACY) return this.translateScalable(sid, lo, hi, write, at, pasid, supervisor);
    // 7.1.3: a request with a PASID needs a scalable-mode root table.
    if (pasid >= 0) return this.fault(sid, lo, hi, VTD_FR_SM_TTM0_PASID, write, at, false);
    const cc = this.contextCache;
    let slot = cc.lookup(sid);
    if (slot < 0) {
      slot = this.fillContext(sid);
      if (slot < 0) return this.fault(sid, lo, hi, -slot, write, at, this.ctxOut.fpd);
    }
    const neg = cc.neg[slot] ?? 0;
    if (neg !== 0) return this.fault(sid, lo, hi, neg, write, at, cc.fpd[slot] === 1);
    const tt = cc.tt[slot] ?? 0;
    const fpd = cc.fpd[slot] === 1;
    if (at !== AT_NONE) {
      // LCT.5: translation requests need TT = 01b; translated requests pass only with TT = 01b.
      if (tt !== TT_DT) return this.fault(sid, lo, hi, FR_TT, write, at, fpd);
      if (at === AT_DONE) return this.passThrough(lo, hi);
    }
    if (tt === TT_PT) return this.passThrough(lo, hi);
    // LGN.1: the address must be below 2^min(MGAW + 1, AGAW); both are at least 39, so only `hi` matters.
    if (hi >>> (cc.widthShift[slot] ?? 0) !== 0) return this.fault(sid, lo, hi, FR_MGAW, write, at, fpd);
    const did = cc.did[slot] ?? 0;
    if (at === AT_NONE) {
      this.hotSid = sid;
      this.hotEpoch = cc.store.epoch;
      this.hotFills = cc.store.fills;
      this.hotSlot = slot;
      this.hotDid = did;
      this.hotShift = cc.widthShift[slot] ?? 0;
    }
    const tlb = this.iotlb;
    const t = tlb.lookupFast(did, lo, hi);
    if (t >= 0) {
      const tneg = tlb.neg[t] ?? 0;
      if (tneg !== 0) {
        const reason = tneg === NEG_NP ? (write ? FR_WRITE : FR_READ) : tneg;
        return this.fault(sid, lo, hi, reason, write, at, fpd);
      }
      const perm = tlb.perm[t] ?? 0;
      if ((perm & (write ? PERM_W : PERM_R)) !== 0) {
        this.outFromIotlb(t, lo, perm);
        return 0;
      }
      // The cached entry does not allow this access: walk again, permissions may have been raised since.
    }
    return this.walkAndFill(sid, did, slot, lo, hi, write, at, fpd);
  }

  /**
   * The hit path for the hot source id: its context still cached and unchanged, the address within its width
   * and not in the interrupt range, and the IOTLB accelerator holding a translation that allows the access.
   * Then it counts and touches exactly what the full path would (context cache and IOTLB hits, LRU order),
   * sets the outputs and answers true; otherwise it changes nothing and the full path runs.
   */
  private hotHit(lo: number, hi: number, write: boolean): boolean {
    const ccs = this.contextCache.store;
    if (ccs.epoch !== this.hotEpoch || ccs.fills !== this.hotFills || hi >>> this.hotShift !== 0) return false;
    if (hi === 0 && lo >>> HEAD_SHIFT === HEAD) return false;
    const tlb = this.iotlb;
    const t = tlb.peekFront(this.hotDid, lo, hi);
    if (t < 0 || (tlb.neg[t] ?? NEG_NP) !== 0) return false;
    const perm = tlb.perm[t] ?? 0;
    if ((perm & (write ? PERM_W : PERM_R)) === 0) return false;
    this.translations++;
    ccs.hits++;
    ccs.touch(this.hotSlot);
    tlb.store.hits++;
    tlb.store.touch(t);
    this.outFromIotlb(t, lo, perm);
    return true;
  }

  /** Sets the translation outputs from IOTLB entry `t` for the request address's low dword `lo`. */
  private outFromIotlb(t: number, lo: number, perm: number): void {
    const tlb = this.iotlb;
    const shift = PAGE_SHIFT + LEVEL_BITS * ((tlb.level[t] ?? 1) - 1);
    this.outLo = ((tlb.frameLo[t] ?? 0) | (lo & ((1 << shift) - 1))) >>> 0;
    this.outHi = tlb.frameHi[t] ?? 0;
    this.outShift = shift;
    this.outRead = (perm & PERM_R) !== 0;
    this.outWrite = (perm & PERM_W) !== 0;
  }

  /** Scalable mode (RTADDR.TTM = 01b with ECAP.SMTS); any other TTM faults every request (0x30). */
  private translateScalable(sid: number, lo: number, hi: number, write: boolean, at: number, pasid: number, supervisor: boolean): number {
    const sm = this.scalable;
    if (sm === null || this.ttm !== TTM_SCALABLE) return this.fault(sid, lo, hi, VTD_FR_SM_RTADDR_INV, write, at, false, pasid);
    if (at === AT_DONE) return this.passThrough(lo, hi);
    const r = sm.translate(this.rtaHi * TWO32 + this.rtaLo, sid, lo, hi, write, pasid, supervisor, at === AT_TRANSLATION_REQUEST);
    if (r !== 0) return this.fault(sid, lo, hi, r, write, at, sm.fpd, pasid);
    ({ outLo: this.outLo, outHi: this.outHi, outShift: this.outShift, outRead: this.outRead, outWrite: this.outWrite } = sm);
    return 0;
  }

  private passThrough(lo: number, hi: number): number {
    this.outLo = lo;
    this.outHi = hi;
    this.outShift = 12;
    this.outRead = this.outWrite = true;
    return 0;
  }

  /** Reads the context entry for sid into the context cache: the slot, or -reason on a fault. */
  private fillContext(sid: number): number {
    const ctx = this.ctxOut;
    const reason = lookupContext(this.reader, this.caps, this.rtaLo, this.rtaHi, sid, ctx);
    if (reason !== 0) {
      // Caching mode: not-present and malformed context entries may be cached, tagged with domain id 0 (6.1).
      if (this.config.cachingMode) this.contextCache.fill(sid, 0, 0, ctx.fpd, 0, 0, 0, reason);
      return -reason;
    }
    const slot = this.contextCache.fill(sid, ctx.did, ctx.tt, ctx.fpd, ctx.aw, ctx.ptLo, ctx.ptHi & this.caps.addrHiMask, 0);
    this.contextCache.widthShift[slot] = Math.min(this.caps.mgawBits, ctx.agaw) - 32;
    return slot;
  }

  private walkAndFill(sid: number, did: number, slot: number, lo: number, hi: number, write: boolean, at: number, fpd: boolean): number {
    this.walks++;
    const cc = this.contextCache;
    const levels = (cc.aw[slot] ?? 0) + 2;
    let tLo = cc.ptLo[slot] ?? 0;
    let tHi = cc.ptHi[slot] ?? 0;
    let start = levels;
    let r0 = true;
    let w0 = true;
    const psc = this.pagingCache;
    if (psc !== null) {
      const p = psc.lookup(did, lo, hi, levels);
      if (p >= 0) {
        tLo = psc.nextLo[p] ?? 0;
        tHi = psc.nextHi[p] ?? 0;
        start = (psc.level[p] ?? 2) - 1;
        const perm = psc.perm[p] ?? 0;
        r0 = (perm & PERM_R) !== 0;
        w0 = (perm & PERM_W) !== 0;
      }
      this.pscDid = did;
    }
    const out = this.walkOut;
    const reason = walkSecondLevel(this.reader, this.caps, tLo, tHi, start, levels, lo, hi, write, r0, w0, out, undefined, psc === null ? undefined : this.pscSink);
    if (reason !== 0) {
      // Caching mode: not-present and malformed leaf entries may be cached too (6.1).
      if (this.config.cachingMode && (reason === VTD_FR_PAGING_ENTRY_RSVD || out.notPresent)) {
        this.iotlb.fill(did, lo, hi, 1, 0, 0, false, false, reason === VTD_FR_PAGING_ENTRY_RSVD ? reason : NEG_NOT_PRESENT);
      }
      return this.fault(sid, lo, hi, reason, write, at, fpd);
    }
    this.iotlb.fill(did, lo, hi, out.level, out.frameLo, out.frameHi, out.read, out.write);
    const shift = levelShift(out.level);
    this.outLo = (out.frameLo | (lo & ((1 << shift) - 1))) >>> 0;
    this.outHi = out.frameHi;
    this.outShift = shift;
    this.outRead = out.read;
    this.outWrite = out.write;
    return 0;
  }

  private fault(sid: number, lo: number, hi: number, reason: number, write: boolean, at: number, fpd: boolean, pasid = -1): number {
    if (fpd && isQualifiedFault(reason)) {
      this.faults.stats.suppressed++;
      this.lastFaultRecorded = false;
      return reason;
    }
    const kind = at === AT_TRANSLATION_REQUEST ? REQ_TRANSLATION : write ? REQ_WRITE : REQ_READ;
    this.lastFaultRecorded = this.faults.record(sid, lo, hi, reason, kind, at, undefined, pasid);
    return reason;
  }

  private recordInterruptFault(sid: number, reason: number, index: number): void {
    // 9.9: for interrupt-remapping faults FI bits 63:48 hold the interrupt index.
    this.faults.record(sid, 0, 0, reason, REQ_WRITE, AT_UNTRANSLATED, index);
  }

  /**
   * Translates a whole request: page by page for DMA (stopping at the first fault), or as an interrupt request
   * for a DWORD write to 0xFEEx_xxxx (remapped, or passed through with remapping off, and delivered to the
   * interrupt sink). Throws RangeError only for a malformed request object (not for anything a guest controls).
   * A request with `pasid` is translated through the PASID entry of that PASID (scalable mode only).
   */
  translate(req: DmaRequest): TranslateResult {
    const addr = requestAddress(req);
    const lo = Number(addr & 0xffffffffn);
    const hi = Number(addr >> 32n);
    const at = atOf(req.at);
    if (isInterruptAddress(lo, hi)) return this.interruptRequest(req, lo, hi);
    return translatePages(this, req, addr, at);
  }

  private interruptRequest(req: DmaRequest, lo: number, hi: number): TranslateResult {
    this.translations++;
    const length = req.length ?? 4;
    if (!req.write || length !== DWORD || lo % DWORD !== 0) {
      return { ok: false, kind: "unsupported", detail: "only DWORD writes to 0xFEEx_xxxx are interrupt requests (VT-d 3.14)" };
    }
    const data = (req.data ?? 0) >>> 0;
    const ir = this.remapper;
    const remap: RemapResult =
      ir !== null
        ? ir.remap(req.sid, lo, hi, data)
        : { ok: true, irq: decodeCompatMsi(lo, data), msi: { address: lo, addressHi: hi, data }, remapped: false };
    if (!remap.ok) return { ok: false, kind: "interrupt", reason: remap.reason, reasonName: remap.reasonName, index: remap.index };
    const message: InterruptMessage = {
      addressLo: remap.msi.address >>> 0,
      addressHi: remap.msi.addressHi >>> 0,
      data: remap.msi.data >>> 0,
      origin: "device",
      unit: this.name,
      sid: req.sid & RID_MASK,
      irq: remap.irq,
      remapped: remap.remapped,
    };
    if (remap.posted !== undefined) {
      // A posting notification event: marked so the platform can tell it from the device's own interrupt.
      const note: PostedNotification = Object.assign(message, { posted: { descriptor: remap.posted.descriptor, vector: remap.posted.vector, index: remap.index ?? 0 } });
      if (remap.posted.notified) this.sink(note);
      return { ok: true, kind: "interrupt", remap, message: note };
    }
    this.sink(message);
    return { ok: true, kind: "interrupt", remap, message };
  }

  // ---- InvalidationTarget ----

  contextGlobal(): void {
    this.contextCache.invalidateAll();
    this.scalable?.invalidateAllPasids();
  }

  contextDomain(did: number): void {
    this.contextCache.invalidateDomain(did);
    // Scalable-mode context entries hold no domain id: every PASID-cache entry may derive from one (6.5.2.1).
    this.scalable?.invalidateAllPasids();
  }

  contextDevice(sid: number, fm: number): void {
    this.contextCache.invalidateDevice(sid, fm);
    this.scalable?.invalidateDevices(sid, fm);
  }

  iotlbGlobal(): void {
    this.iotlb.invalidateAll();
    this.pagingCache?.invalidateAll();
    this.scalable?.invalidateIotlb(null);
  }

  iotlbDomain(did: number): void {
    this.iotlb.invalidateDomain(did);
    this.pagingCache?.invalidateDomain(did);
    this.scalable?.invalidateIotlb(did);
  }

  pasidCache(g: number, did: number, pasid: number): void {
    this.scalable?.invalidatePasidCache(g, did, pasid);
  }

  pasidIotlb(did: number, pasid: number, page: { addrLo: number; addrHi: number; am: number } | null): void {
    this.scalable?.invalidatePasidIotlb(did, pasid, page);
  }

  iotlbPages(did: number, addrLo: number, addrHi: number, am: number, ih: boolean): void {
    this.iotlb.invalidatePages(did, addrLo, addrHi, am);
    // IH = 1: software says only leaf entries changed, so paging-structure entries may stay (6.5.1.2).
    if (!ih) this.pagingCache?.invalidatePages(did, addrLo, addrHi, am);
  }

  deviceIotlb(sid: number, addrLo: number, addrHi: number, size: boolean): void {
    this.deviceIotlbInvalidations.push({ sid, addr: joinHalves(addrLo, addrHi), size });
    if (this.deviceIotlbInvalidations.length > 1024) this.deviceIotlbInvalidations.shift();
  }

  iecGlobal(): void {
    this.remapper?.invalidateAll();
  }

  iecIndex(index: number, indexMask: number): void {
    this.remapper?.invalidateIndex(index, indexMask);
  }

  // ---- Introspection ----

  stats(): VtdStats {
    return {
      iotlb: this.iotlb.stats(),
      contextCache: this.contextCache.stats(),
      pagingStructureCache: this.pagingCache?.stats() ?? null,
      faults: { ...this.faults.stats },
      invalidation: { ...this.invalidation.stats },
      translations: this.translations,
      walks: this.walks + (this.scalable?.stats.walks ?? 0),
    };
  }

  /** CAP and ECAP as built from the configuration. */
  get cap(): bigint {
    return joinHalves(this.capWords.capLo, this.capWords.capHi);
  }

  get ecap(): bigint {
    return joinHalves(this.capWords.ecapLo, this.capWords.ecapHi);
  }
}
