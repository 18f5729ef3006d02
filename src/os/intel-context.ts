/**
 * Root and context entries as the simulated kernel's VT-d driver writes them, after Linux 6.1
 * (drivers/iommu/intel/iommu.c: iommu_context_addr, domain_context_mapping_one, domain_context_clear_one).
 *
 * Legacy mode: one context table per bus, 128-bit entries naming the domain's second-level table (or pass-through)
 * and its domain id. Scalable mode (sm_supported): the root entry's lower half points at the context table of
 * devfn 0-127 and its upper half at the one of devfn 128-255; each 256-bit entry names the device's PASID
 * directory and its size (PDTS), RID_PASID 0, and no domain: translation is chosen per PASID in the PASID table
 * (intel-pasid.ts). Linux writes only the low 128 bits of a scalable-mode entry; the rest stays zero.
 * Formats come from spec/vtd/context.ts and spec/vtd/scalable.ts.
 */
import { HI_DWORD_OFFSET } from "../core/u64.js";
import { ridBus, ridDevfn } from "../core/pci.js";
import { awForLevels, CONTEXT_ENTRY_SIZE, contextEntryOffset, encodeContextEntry, encodeRootEntry, ENTRY_P, rootEntryOffset, TT_MULTI_LEVEL, TT_PASS_THROUGH } from "../spec/vtd/context.js";
import { wordMask, wordOf } from "../spec/vtd/fields.js";
import { PC_G_DOMAIN } from "../spec/vtd/invalidation.js";
import {
  encodeSmContextEntry,
  encodeSmRootEntry,
  FLPT_DEFAULT_DID,
  RID_PASID_DEFAULT,
  SM_CONTEXT_ENTRY,
  SM_CONTEXT_ENTRY_SIZE,
  SM_ROOT_ENTRY,
  smContextEntryOffset,
  smUsesUpperTable,
} from "../spec/vtd/scalable.js";
import type { QueuedInvalidation } from "./intel-qi.js";
import type { PasidTable } from "./intel-pasid.js";
import type { DmarUnit, DriverContext } from "./intel-unit.js";

/** Words Linux writes of a scalable-mode context entry (struct context_entry is 128 bits). */
const SM_CONTEXT_WORDS_WRITTEN = CONTEXT_ENTRY_SIZE / 4;
/** The first word of the scalable-mode root entry's upper half (UP, UCTP). */
const UPPER_WORD = wordOf(SM_ROOT_ENTRY.UP);
const PASIDE = wordMask(SM_CONTEXT_ENTRY.PASIDE);

/** What a context entry points at. */
export interface ContextTarget {
  did: number;
  passThrough: boolean;
  pgd: number;
  levels: number;
  /** Scalable mode: the device's PASID directory. */
  pasidTable: PasidTable | null;
  pdts: number;
}

export class ContextTables {
  constructor(
    private readonly ctx: DriverContext,
    private readonly qi: QueuedInvalidation,
  ) {}

  /** The map of context tables (by bus) that holds `rid`'s: the upper tables of scalable mode have their own. */
  static tablesOf(u: DmarUnit, rid: number): Map<number, number> {
    return u.sm && smUsesUpperTable(ridDevfn(rid)) ? u.upperContextTables : u.contextTables;
  }

  /**
   * Address of the context entry for `rid`, creating its context table and pointing the root entry at it
   * (iommu_context_addr). Linux writes one 64-bit half of the root entry: the lower (legacy mode, or devfn 0-127
   * in scalable mode) or the upper one (devfn 128-255).
   */
  entry(u: DmarUnit, rid: number): number {
    const bus = ridBus(rid);
    const tables = ContextTables.tablesOf(u, rid);
    let ct = tables.get(bus);
    const mem = this.ctx.port.memory;
    if (ct === undefined) {
      ct = this.ctx.pages.alloc(1, "any");
      tables.set(bus, ct);
      const re = u.rootTable + rootEntryOffset(bus);
      if (u.sm) {
        const upper = tables === u.upperContextTables;
        const w = upper ? encodeSmRootEntry({ upperPresent: true, upperTable: ct }) : encodeSmRootEntry({ lowerPresent: true, lowerTable: ct });
        const first = upper ? UPPER_WORD : 0;
        mem.write32(re + 4 * first, w[first] ?? 0);
        mem.write32(re + 4 * first + HI_DWORD_OFFSET, w[first + 1] ?? 0);
      } else {
        // Linux writes the low quad of the root entry only (the upper one is reserved and zero).
        const [lo = 0, hi = 0] = encodeRootEntry({ present: true, contextTable: ct });
        mem.write32(re, lo);
        mem.write32(re + HI_DWORD_OFFSET, hi);
      }
    }
    return ct + (u.sm ? smContextEntryOffset(ridDevfn(rid)) : contextEntryOffset(ridDevfn(rid)));
  }

  /**
   * domain_context_mapping_one: a present context entry for `rid`, unless one is there already (Linux leaves it).
   * In caching mode the not-present entry the unit may have cached is invalidated (domain id 0), and the domain.
   */
  map(u: DmarUnit, rid: number, t: ContextTarget): boolean {
    const mem = this.ctx.port.memory;
    const ce = this.entry(u, rid);
    if ((mem.read32(ce) & ENTRY_P) !== 0) return false;
    let words: number[];
    if (u.sm) {
      words = encodeSmContextEntry({ present: true, pasidDir: t.pasidTable?.dir ?? 0, pdts: t.pdts, ridPasid: RID_PASID_DEFAULT }).slice(0, SM_CONTEXT_WORDS_WRITTEN);
    } else {
      words = encodeContextEntry({
        present: true,
        fpd: false,
        tt: t.passThrough ? TT_PASS_THROUGH : TT_MULTI_LEVEL,
        pageTable: t.passThrough ? 0 : t.pgd,
        aw: awForLevels(t.passThrough ? u.levels : t.levels),
        did: t.did,
      });
    }
    // The upper words first, the low dword (with the present bit) last.
    for (let i = words.length - 1; i >= 0; i--) mem.write32(ce + 4 * i, words[i] ?? 0);
    if (u.cachingMode) {
      this.qi.contextDevice(u, 0, rid);
      this.qi.iotlbDomain(u, t.did);
    }
    return true;
  }

  /**
   * domain_context_clear_one: the entry cleared, its context-cache entry invalidated with the domain id it had —
   * in scalable mode the domain's (FLPT_DEFAULT_DID for the pass-through identity domain), with the PASID cache
   * of that domain — and the domain's IOTLB.
   */
  clear(u: DmarUnit, rid: number, did: number, hwPassThrough: boolean): void {
    this.zero(u, rid);
    const old = u.sm && hwPassThrough ? FLPT_DEFAULT_DID : did;
    this.qi.contextDevice(u, old, rid);
    if (u.sm) this.qi.pasidCache(u, PC_G_DOMAIN, old, 0);
    this.qi.iotlbDomain(u, old);
  }

  /** Writes zeros over the context entry of `rid` (context_clear_entry), without invalidating. */
  zero(u: DmarUnit, rid: number): void {
    const mem = this.ctx.port.memory;
    const ce = this.entry(u, rid);
    const size = u.sm ? SM_CONTEXT_ENTRY_SIZE : CONTEXT_ENTRY_SIZE;
    for (let i = 0; i < size; i += 4) mem.write32(ce + i, 0);
  }

  /**
   * Scalable mode: sets PASIDE in the present context entry of `rid` so that requests with a PASID are
   * translated through the PASID table (context_set_pasid; Linux sets it when it maps a device with the PASID
   * capability), and invalidates the cached entry. Returns false when the entry is not present or not scalable.
   */
  enablePasid(u: DmarUnit, rid: number, did: number): boolean {
    if (!u.sm) return false;
    const mem = this.ctx.port.memory;
    const ce = this.entry(u, rid);
    const lo = mem.read32(ce);
    if ((lo & ENTRY_P) === 0) return false;
    mem.write32(ce, (lo | PASIDE) >>> 0);
    this.qi.contextDevice(u, did, rid);
    this.qi.pasidCache(u, PC_G_DOMAIN, did, 0);
    return true;
  }
}
