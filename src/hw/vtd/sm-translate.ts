/**
 * Scalable-mode translation in the hardware model (VT-d spec 3.4.3, 3.6–3.9, 6.2.1–6.2.4): a request resolves
 * to its PASID entry (hw/vtd/scalable.ts) through the PASID cache, then translates by the entry's PGTT:
 *   pass-through   the address is the output;
 *   second-stage   the legacy second-level walk (hw/vtd/walk.ts), cached in the unit's IOTLB by domain id, as
 *                  IOTLB invalidation (6.5.2.3) expects;
 *   first-stage    the processor's paging format (hw/vtd/first-stage.ts), cached by (domain id, PASID);
 *   nested         first-stage with every table address, and the output, translated by the second stage.
 * Fault reasons are the scalable-mode ones (7.1.3); the legacy walk's reasons are mapped to them.
 *
 * Caches (6.2): the PASID cache holds decoded PASID entries by (source id, PASID); the PASID IOTLB holds
 * first-stage and nested translations by (domain id, PASID, page). PASID-cache invalidation (6.5.2.2),
 * PASID-based IOTLB invalidation (6.5.2.4), and the context-cache and IOTLB invalidations that cover them act
 * on these. Nothing negative is cached: a fault always walks again.
 */
import { TWO32 } from "../../core/u64.js";
import { sidCompareMask } from "../../spec/vtd/registers.js";
import { levelShift, SL_R, SL_W } from "../../spec/vtd/paging.js";
import { PGTT_FIRST_STAGE, PGTT_NESTED, PGTT_PASS_THROUGH } from "../../spec/vtd/scalable.js";
import {
  VTD_FR_SM_BEYOND_MGAW,
  VTD_FR_SM_INTERRUPT_ADDR,
  VTD_FR_SM_NESTED_FS_BEYOND_MGAW,
  VTD_FR_SM_NESTED_FS_READ,
  VTD_FR_SM_NESTED_FS_TOP_READ,
  VTD_FR_SM_NESTED_FS_WRITE,
  VTD_FR_SM_READ,
  VTD_FR_SM_SS_ENTRY_INV,
  VTD_FR_SM_SS_ENTRY_RSVD,
  VTD_FR_SM_SS_PTR_INV,
  VTD_FR_SM_WRITE,
} from "../../spec/vtd/sm-faults.js";
import {
  VTD_FR_CONTEXT_ENTRY_INV,
  VTD_FR_INTERRUPT_ADDR,
  VTD_FR_PAGING_ENTRY_INV,
  VTD_FR_PAGING_ENTRY_RSVD,
  VTD_FR_READ,
  VTD_FR_WRITE,
} from "../../spec/vtd/faults.js";
import { overlapsInterruptRange } from "../../spec/msi.js";
import type { Iotlb } from "./caches.js";
import { FirstStageOut, walkFirstStage, type DwordWriter, type NestedTranslate } from "./first-stage.js";
import { checkRequest, lookupPasid, PasidOut, type ScalableCaps } from "./scalable.js";
import { walkSecondLevel, WalkOut, type TableReader } from "./walk.js";

/** The legacy walk's fault reasons as the scalable-mode ones (7.1.3 SSS, SGN). */
export function smReasonOfSecondStage(reason: number): number {
  switch (reason) {
    case VTD_FR_WRITE:
      return VTD_FR_SM_WRITE;
    case VTD_FR_READ:
      return VTD_FR_SM_READ;
    case VTD_FR_CONTEXT_ENTRY_INV:
      return VTD_FR_SM_SS_PTR_INV;
    case VTD_FR_PAGING_ENTRY_INV:
      return VTD_FR_SM_SS_ENTRY_INV;
    case VTD_FR_PAGING_ENTRY_RSVD:
      return VTD_FR_SM_SS_ENTRY_RSVD;
    case VTD_FR_INTERRUPT_ADDR:
      return VTD_FR_SM_INTERRUPT_ADDR;
    default:
      return reason;
  }
}

type PasidSnapshot = Readonly<Omit<PasidOut, never>> & { sid: number };

/** Translations of first-stage and nested PASID entries, by (domain id, PASID, page). */
interface PasidTlbEntry {
  did: number;
  pasid: number;
  frameLo: number;
  frameHi: number;
  shift: number;
  writable: boolean;
  user: boolean;
  dirty: boolean;
  /** The input page this entry translates. */
  input: bigint;
}

export interface ScalableStats {
  pasidCacheHits: number;
  pasidCacheMisses: number;
  pasidIotlbHits: number;
  pasidIotlbMisses: number;
  walks: number;
}

/** Caches never grow past this many entries (oldest dropped first, as a cache may). */
const CAPACITY = 4096;

function bounded<K, V>(m: Map<K, V>, key: K, value: V): void {
  m.delete(key);
  m.set(key, value);
  if (m.size > CAPACITY) m.delete(m.keys().next().value as K);
}

export class ScalableTranslator {
  outLo = 0;
  outHi = 0;
  outShift = 12;
  outRead = false;
  outWrite = false;
  /** After a fault: an FPD on the way (qualified faults are then not recorded). */
  fpd = false;
  readonly stats: ScalableStats = { pasidCacheHits: 0, pasidCacheMisses: 0, pasidIotlbHits: 0, pasidIotlbMisses: 0, walks: 0 };
  private readonly pasidCache = new Map<string, PasidSnapshot>();
  private readonly pasidTlb = new Map<string, PasidTlbEntry>();
  private readonly pe = new PasidOut();
  private readonly ssOut = new WalkOut();
  private readonly fsOut = new FirstStageOut();

  constructor(
    private readonly reader: TableReader,
    private readonly writer: DwordWriter,
    readonly caps: ScalableCaps,
    private readonly iotlb: Iotlb,
  ) {}

  /** Translates one page; returns 0 (outputs set) or a scalable-mode fault reason. `pasid` < 0: no PASID. */
  translate(rta: number, sid: number, lo: number, hi: number, write: boolean, pasid: number, supervisor: boolean, translationRequest: boolean): number {
    this.fpd = false;
    const pe = this.lookup(rta, sid, pasid);
    if (typeof pe === "number") return pe;
    this.fpd = pe.fpd;
    const bad = checkRequest(this.caps, pe, supervisor, translationRequest);
    if (bad !== 0) return bad;
    if (pe.pgtt === PGTT_PASS_THROUGH) return this.output(lo, hi, 12, true, true);
    if (pe.pgtt === PGTT_FIRST_STAGE || pe.pgtt === PGTT_NESTED) return this.firstStage(pe, lo, hi, write, supervisor);
    return this.secondStage(pe, lo, hi, write, true);
  }

  private output(lo: number, hi: number, shift: number, r: boolean, w: boolean): number {
    this.outLo = lo >>> 0;
    this.outHi = hi >>> 0;
    this.outShift = shift;
    this.outRead = r;
    this.outWrite = w;
    return 0;
  }

  private lookup(rta: number, sid: number, pasid: number): PasidSnapshot | number {
    const key = `${sid}/${pasid}`;
    const hit = this.pasidCache.get(key);
    if (hit !== undefined) {
      this.stats.pasidCacheHits++;
      return hit;
    }
    this.stats.pasidCacheMisses++;
    const r = lookupPasid(this.reader, this.caps, rta, sid, pasid, this.pe);
    if (r !== 0) {
      this.fpd = this.pe.fpd;
      return r;
    }
    const snap: PasidSnapshot = { ...this.pe, sid };
    bounded(this.pasidCache, key, snap);
    return snap;
  }

  /** Second-stage translation of (lo, hi) for a request (`final`) or of a first-stage output. */
  private secondStage(pe: PasidSnapshot, lo: number, hi: number, write: boolean, cache: boolean): number {
    const width = Math.min(this.caps.walk.mgawBits, pe.ssAgaw);
    if (width < 64 && hi >>> (width - 32) !== 0) return VTD_FR_SM_BEYOND_MGAW;
    const tlb = this.iotlb;
    const t = cache ? tlb.lookupFast(pe.did, lo, hi) : -1;
    if (t >= 0 && (tlb.neg[t] ?? 1) === 0 && ((tlb.perm[t] ?? 0) & (write ? SL_W : SL_R)) !== 0) {
      const shift = levelShift(tlb.level[t] ?? 1);
      const perm = tlb.perm[t] ?? 0;
      return this.output(((tlb.frameLo[t] ?? 0) | (lo & ((1 << shift) - 1))) >>> 0, tlb.frameHi[t] ?? 0, shift, (perm & SL_R) !== 0, (perm & SL_W) !== 0);
    }
    this.stats.walks++;
    const out = this.ssOut;
    const r = walkSecondLevel(this.reader, this.caps.walk, pe.ssLo, pe.ssHi, pe.ssLevels, pe.ssLevels, lo, hi, write, true, true, out);
    if (r !== 0) return smReasonOfSecondStage(r);
    if (cache) tlb.fill(pe.did, lo, hi, out.level, out.frameLo, out.frameHi, out.read, out.write);
    const shift = levelShift(out.level);
    return this.output((out.frameLo | (lo & ((1 << shift) - 1))) >>> 0, out.frameHi, shift, out.read, out.write);
  }

  private firstStage(pe: PasidSnapshot, lo: number, hi: number, write: boolean, supervisor: boolean): number {
    const cached = this.tlbLookup(pe, lo, hi, write, supervisor);
    if (cached) return 0;
    this.stats.pasidIotlbMisses++;
    this.stats.walks++;
    const nested = pe.pgtt === PGTT_NESTED ? this.nestedTables(pe) : undefined;
    const out = this.fsOut;
    const r = walkFirstStage(this.reader, this.caps.fs, pe.fsLo, pe.fsHi, pe.fsLevels, lo, hi, { write, supervisor, wpe: pe.wpe }, out, this.writer, undefined, nested);
    if (r !== 0) return r;
    let shift = levelShift(out.level);
    const mask = shift >= 32 ? 0xffffffff : (1 << shift) - 1;
    let oLo = (out.frameLo | (lo & mask)) >>> 0;
    let oHi = out.frameHi + (shift > 32 ? hi & ((1 << (shift - 32)) - 1) : 0);
    if (nested !== undefined) {
      const s = this.secondStage(pe, oLo, oHi, write, false);
      if (s !== 0) return s;
      oLo = this.outLo;
      oHi = this.outHi;
      shift = Math.min(shift, this.outShift);
    }
    const frameLo = shift >= 32 ? 0 : (oLo & ~((1 << shift) - 1)) >>> 0;
    if (oHi === 0 && overlapsInterruptRange(frameLo, 0, shift)) return VTD_FR_SM_INTERRUPT_ADDR;
    const key = this.tlbKey(pe.did, pe.pasid, shift, lo, hi);
    const input = ((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)) & ~((1n << BigInt(shift)) - 1n);
    bounded(this.pasidTlb, key, { did: pe.did, pasid: pe.pasid, frameLo, frameHi: oHi, shift, writable: out.writable, user: out.user, dirty: out.dirty, input });
    return this.output(oLo, oHi, shift, true, this.writeAllowed(out.writable, supervisor, pe.wpe));
  }

  private writeAllowed(writable: boolean, supervisor: boolean, wpe: boolean): boolean {
    return writable || (supervisor && !wpe);
  }

  private tlbKey(did: number, pasid: number, shift: number, lo: number, hi: number): string {
    const page = shift >= 32 ? 0 : lo >>> shift;
    return `${did}/${pasid}/${shift}/${hi >>> 0}/${page}`;
  }

  /** A PASID-IOTLB hit that allows the access: outputs set, true. A write needs D set in the cached leaf. */
  private tlbLookup(pe: PasidSnapshot, lo: number, hi: number, write: boolean, supervisor: boolean): boolean {
    for (const shift of [12, 21, 30]) {
      const e = this.pasidTlb.get(this.tlbKey(pe.did, pe.pasid, shift, lo, hi));
      if (e === undefined) continue;
      const w = this.writeAllowed(e.writable, supervisor, pe.wpe);
      if ((!supervisor && !e.user) || (write && (!w || !e.dirty))) return false;
      this.stats.pasidIotlbHits++;
      this.output((e.frameLo | (lo & ((1 << shift) - 1))) >>> 0, e.frameHi, shift, true, w);
      return true;
    }
    return false;
  }

  /** The nested seam: first-stage table addresses translated by the PASID entry's second stage (3.8). */
  private nestedTables(pe: PasidSnapshot): NestedTranslate {
    const out = new WalkOut();
    return (gLo, gHi, top, write, host) => {
      const width = Math.min(this.caps.walk.mgawBits, pe.ssAgaw);
      if (width < 64 && gHi >>> (width - 32) !== 0) return VTD_FR_SM_NESTED_FS_BEYOND_MGAW;
      const r = walkSecondLevel(this.reader, this.caps.walk, pe.ssLo, pe.ssHi, pe.ssLevels, pe.ssLevels, gLo, gHi, write, true, true, out);
      if (r === VTD_FR_WRITE) return VTD_FR_SM_NESTED_FS_WRITE;
      if (r === VTD_FR_READ) return top ? VTD_FR_SM_NESTED_FS_TOP_READ : VTD_FR_SM_NESTED_FS_READ;
      if (r !== 0) return smReasonOfSecondStage(r);
      const shift = levelShift(out.level);
      const offset = gLo & ((1 << shift) - 1);
      const addr = out.frameHi * TWO32 + out.frameLo + offset;
      host.lo = addr % TWO32 >>> 0;
      host.hi = Math.floor(addr / TWO32) >>> 0;
      return 0;
    };
  }

  // ---- Invalidation (6.5.2.1–6.5.2.4) ----

  /** PASID-cache invalidation: G 0 every PASID of `did`, 1 (did, pasid), 3 everything. */
  invalidatePasidCache(g: number, did: number, pasid: number): void {
    for (const [k, e] of this.pasidCache) if (g === 3 || (e.did === did && (g === 0 || e.pasid === pasid))) this.pasidCache.delete(k);
  }

  /** Context-cache invalidation covers the PASID-cache entries of the devices it names (6.5.2.1). */
  invalidateDevices(sid: number, fm: number): void {
    const keep = sidCompareMask(fm);
    for (const [k, e] of this.pasidCache) if ((e.sid & keep) === (sid & keep)) this.pasidCache.delete(k);
  }

  invalidateAllPasids(): void {
    this.pasidCache.clear();
  }

  /** PASID-based IOTLB invalidation: every page of (did, pasid), or 2^am pages from addr (G = 3). */
  invalidatePasidIotlb(did: number, pasid: number, page: { addrLo: number; addrHi: number; am: number } | null): void {
    for (const [k, e] of this.pasidTlb) {
      if (e.did !== did || e.pasid !== pasid) continue;
      if (page !== null && !overlaps(e, page)) continue;
      this.pasidTlb.delete(k);
    }
  }

  /** IOTLB invalidation (global or domain-selective) also covers first-stage and nested translations. */
  invalidateIotlb(did: number | null): void {
    if (did === null) this.pasidTlb.clear();
    else for (const [k, e] of this.pasidTlb) if (e.did === did) this.pasidTlb.delete(k);
  }

  reset(): void {
    this.pasidCache.clear();
    this.pasidTlb.clear();
    Object.assign(this.stats, { pasidCacheHits: 0, pasidCacheMisses: 0, pasidIotlbHits: 0, pasidIotlbMisses: 0, walks: 0 });
  }

  get pasidCacheSize(): number {
    return this.pasidCache.size;
  }

  get pasidIotlbSize(): number {
    return this.pasidTlb.size;
  }
}

/** True when a cached translation overlaps the 2^am pages from addr (6.5.2.4: the address is aligned down). */
function overlaps(e: PasidTlbEntry, p: { addrLo: number; addrHi: number; am: number }): boolean {
  const size = 1n << BigInt(12 + p.am);
  const base = ((BigInt(p.addrHi >>> 0) << 32n) | BigInt(p.addrLo >>> 0)) & ~(size - 1n);
  return e.input < base + size && e.input + (1n << BigInt(e.shift)) > base;
}
