/**
 * Per-device PASID tables of the simulated kernel's VT-d driver in scalable mode, after Linux 6.1
 * (drivers/iommu/intel/pasid.c): the PASID directory a device gets when it is probed (intel_pasid_alloc_table),
 * PASID tables allocated on demand when an entry is first needed (intel_pasid_get_entry), the three kinds of
 * PASID entry the kernel writes — first-stage, second-stage and pass-through (intel_pasid_setup_first_level,
 * _second_level, _pass_through) — with the cache flushes that follow a new entry (pasid_flush_caches), and the
 * tear-down of an entry with its invalidations (intel_pasid_tear_down_entry).
 *
 * The entry for requests without a PASID (RID_PASID, PASID 0) is the one the DMA API uses today; the same calls
 * take any PASID below the table's limit, for shared virtual addressing later. Formats come from
 * spec/vtd/scalable.ts (VT-d spec 9.4–9.6); the driver reaches memory only through the machine port.
 */
import { IommuError } from "../core/errors.js";
import { HI_DWORD_OFFSET } from "../core/u64.js";
import { awForLevels } from "../spec/vtd/context.js";
import { fsLevels } from "../spec/vtd/first-stage.js";
import { PC_G_PASID } from "../spec/vtd/invalidation.js";
import { PAGE_SIZE_4K } from "../spec/vtd/paging.js";
import {
  decodePasidDirEntry,
  decodePasidEntry,
  encodePasidDirEntry,
  encodePasidEntry,
  FLPT_DEFAULT_DID,
  FSPM_4_LEVEL,
  FSPM_5_LEVEL,
  PASID_DIR_ENTRY_SIZE,
  PASID_ENTRY,
  PASID_ENTRY_SIZE,
  PASID_TABLE_ENTRIES,
  pasidDirEntries,
  pasidDirIndex,
  pasidTableIndex,
  PGTT_FIRST_STAGE,
  PGTT_PASS_THROUGH,
  PGTT_SECOND_STAGE,
  RID_PASID_DEFAULT,
  type PasidEntryFields,
} from "../spec/vtd/scalable.js";
import { wordMask } from "../spec/vtd/fields.js";
import type { DmarUnit, DriverContext } from "./intel-unit.js";
import type { KPciDev } from "./pci.js";

/** A device's PASID directory (Linux's struct pasid_table). */
export interface PasidTable {
  /** Physical address of the directory. */
  readonly dir: number;
  /** The directory spans 2^order pages. */
  readonly order: number;
  /** PASIDs below this have an entry (1 << (order + PAGE_SHIFT + 3)). */
  readonly maxPasid: number;
}

/** The invalidations PASID-entry changes need, provided by the driver's queued invalidation. */
export interface PasidFlushOps {
  /** PASID-cache invalidation (qi_flush_pasid_cache). */
  pasidCache(u: DmarUnit, g: number, did: number, pasid: number): void;
  /** PASID-based IOTLB invalidation (qi_flush_piotlb); `pages` null: every address of the PASID. */
  piotlb(u: DmarUnit, did: number, pasid: number, pfn: number, pages: number | null): void;
  /** Domain-selective IOTLB invalidation (flush_iotlb with DMA_TLB_DSI_FLUSH). */
  iotlbDomain(u: DmarUnit, did: number): void;
  /** iommu_flush_write_buffer (GCMD.WBF, only when CAP.RWBF asks for it). */
  writeBufferFlush(u: DmarUnit): void;
}

/** What a first-stage entry is set up with (domain_setup_first_level's flags). */
export interface FirstStageOptions {
  /** Paging levels of the table at `pgd`: 4 or 5 (FSPM). */
  levels: number;
  /** PASID_FLAG_SUPERVISOR_MODE: SRE and WPE (Linux 6.1 sets it for PASIDs other than RID_PASID). */
  supervisor?: boolean;
  /** PASID_FLAG_PAGE_SNOOP: PGSNP, for domains that force snooping. */
  pageSnoop?: boolean;
}

const ENTRY_WORDS = PASID_ENTRY_SIZE / 4;
const DIR_ENTRY_WORDS = PASID_DIR_ENTRY_SIZE / 4;
/** Bit 0 of a PASID entry's first word (P) and bit 1 (FPD), as masks. */
const PASID_PTE_PRESENT = wordMask(PASID_ENTRY.P);
const PASID_PTE_FPD = wordMask(PASID_ENTRY.FPD);

export class PasidTables {
  private readonly tables = new Map<KPciDev, PasidTable>();

  constructor(
    private readonly ctx: DriverContext,
    private readonly flush: PasidFlushOps,
  ) {}

  /**
   * intel_pasid_alloc_table: a directory sized for the PASIDs the device may use — `maxPasids`, the smaller of
   * its PASID capability's and the unit's (0 for a device without PASID support): maxPasids / 8 bytes of
   * directory rounded up to a power-of-two number of pages, at least one page, which covers 1 << 15 PASIDs.
   */
  allocTable(dev: KPciDev, maxPasids = 0): PasidTable {
    const have = this.tables.get(dev);
    if (have !== undefined) return have;
    const bytes = (maxPasids / PASID_TABLE_ENTRIES) * PASID_DIR_ENTRY_SIZE;
    let order = 0;
    while (2 ** order * PAGE_SIZE_4K < bytes) order++;
    const dir = this.ctx.pages.alloc(2 ** order, "any");
    const t: PasidTable = { dir, order, maxPasid: ((2 ** order * PAGE_SIZE_4K) / PASID_DIR_ENTRY_SIZE) * PASID_TABLE_ENTRIES };
    this.tables.set(dev, t);
    return t;
  }

  table(dev: KPciDev): PasidTable | null {
    return this.tables.get(dev) ?? null;
  }

  /** intel_pasid_free_table: every PASID table the directory points at, then the directory. */
  freeTable(dev: KPciDev): void {
    const t = this.tables.get(dev);
    if (t === undefined) return;
    const mem = this.ctx.port.memory;
    for (let i = 0; i < t.maxPasid / PASID_TABLE_ENTRIES; i++) {
      const de = t.dir + i * PASID_DIR_ENTRY_SIZE;
      const d = decodePasidDirEntry([mem.read32(de), mem.read32(de + HI_DWORD_OFFSET)]);
      if (d.present) this.ctx.pages.freeRange(d.table, 1);
    }
    this.ctx.pages.freeRange(t.dir, 2 ** t.order);
    this.tables.delete(dev);
  }

  /** The context entry's PDTS for a directory (context_get_sm_pds): 2^(PDTS + 7) directory entries. */
  pdts(t: PasidTable): number {
    const entries = t.maxPasid / PASID_TABLE_ENTRIES;
    let pdts = 0;
    while (pasidDirEntries(pdts) < entries) pdts++;
    return pdts;
  }

  /**
   * intel_pasid_get_entry: the address of the device's entry for `pasid`, the PASID table allocated and linked
   * into the directory when it is missing. Null when the device has no table or the PASID is beyond it.
   */
  entryAddress(dev: KPciDev, pasid: number, alloc = true): number | null {
    const t = this.tables.get(dev);
    if (t === undefined || pasid < 0 || pasid >= t.maxPasid) return null;
    const mem = this.ctx.port.memory;
    const de = t.dir + pasidDirIndex(pasid) * PASID_DIR_ENTRY_SIZE;
    let d = decodePasidDirEntry([mem.read32(de), mem.read32(de + HI_DWORD_OFFSET)]);
    if (!d.present) {
      if (!alloc) return null;
      const table = this.ctx.pages.alloc(1, "any");
      const w = encodePasidDirEntry({ present: true, table });
      for (let i = DIR_ENTRY_WORDS - 1; i >= 0; i--) mem.write32(de + 4 * i, w[i] ?? 0);
      d = { present: true, fpd: false, table };
    }
    return d.table + pasidTableIndex(pasid) * PASID_ENTRY_SIZE;
  }

  /** The device's entry for `pasid` as fields, or null when it has no PASID table there (nothing allocated). */
  readEntry(dev: KPciDev, pasid = RID_PASID_DEFAULT): PasidEntryFields | null {
    const at = this.entryAddress(dev, pasid, false);
    if (at === null) return null;
    const mem = this.ctx.port.memory;
    return decodePasidEntry(Array.from({ length: ENTRY_WORDS }, (_, i) => mem.read32(at + 4 * i)));
  }

  /** intel_pasid_setup_first_level: PGTT first-stage over the 4- or 5-level table at `pgd`. */
  setupFirstStage(u: DmarUnit, dev: KPciDev, pasid: number, did: number, pgd: number, o: FirstStageOptions): void {
    if (!u.hasFsts) throw new IommuError("DMAR_PASID", `No first level translation support on ${u.name}`);
    const five = o.levels === fsLevels(FSPM_5_LEVEL);
    if (five && !u.firstStage5Level) throw new IommuError("DMAR_PASID", `No 5-level paging support for first-level on ${u.name}`);
    const supervisor = o.supervisor ?? false;
    if (supervisor && !u.hasSrs) throw new IommuError("DMAR_PASID", `No supervisor request support on ${u.name}`);
    this.write(u, dev, pasid, did, {
      fsptptr: pgd,
      fspm: five ? FSPM_5_LEVEL : FSPM_4_LEVEL,
      sre: supervisor,
      wpe: supervisor,
      pgsnp: o.pageSnoop ?? false,
      did,
      aw: awForLevels(u.levels),
      pwsnp: u.hasSmpwc,
      // pasid_set_nxe (6.1 stable): XD, which __domain_mapping sets in every entry, is honoured.
      nxe: true,
      pgtt: PGTT_FIRST_STAGE,
    });
  }

  /** intel_pasid_setup_second_level: PGTT second-stage over the table at `pgd` of `levels` levels. */
  setupSecondStage(u: DmarUnit, dev: KPciDev, pasid: number, did: number, pgd: number, levels: number): void {
    if (!u.hasSsts) throw new IommuError("DMAR_PASID", `No second level translation support on ${u.name}`);
    this.write(u, dev, pasid, did, {
      did,
      ssptptr: pgd,
      aw: awForLevels(levels),
      pgtt: PGTT_SECOND_STAGE,
      pwsnp: u.hasSmpwc,
      // Addresses of other PASIDs are guest physical: supervisor requests are allowed there.
      sre: pasid !== RID_PASID_DEFAULT && u.hasSrs,
    });
  }

  /** intel_pasid_setup_pass_through: PGTT pass-through with FLPT_DEFAULT_DID. */
  setupPassThrough(u: DmarUnit, dev: KPciDev, pasid: number): void {
    this.write(u, dev, pasid, FLPT_DEFAULT_DID, {
      did: FLPT_DEFAULT_DID,
      aw: awForLevels(u.levels),
      pgtt: PGTT_PASS_THROUGH,
      pwsnp: u.hasSmpwc,
      sre: u.hasSrs,
    });
  }

  /**
   * intel_pasid_tear_down_entry: the entry cleared (FPD kept set with `faultIgnore`), then the PASID cache, the
   * IOTLB — PASID-based for first-stage and pass-through entries, domain-selective for the others — and the
   * device-TLB (none here: the simulated devices have no ATS). With `flush` false the entry is only cleared.
   */
  tearDown(u: DmarUnit, dev: KPciDev, pasid: number, opts: { faultIgnore?: boolean; flush?: boolean } = {}): void {
    const at = this.entryAddress(dev, pasid, false);
    if (at === null) return;
    const mem = this.ctx.port.memory;
    if ((mem.read32(at) & PASID_PTE_PRESENT) === 0) return;
    const e = this.readEntry(dev, pasid)!;
    mem.write32(at, opts.faultIgnore === true ? PASID_PTE_FPD : 0);
    for (let i = 1; i < ENTRY_WORDS; i++) mem.write32(at + 4 * i, 0);
    if (opts.flush === false) return;
    this.flush.pasidCache(u, PC_G_PASID, e.did, pasid);
    if (e.pgtt === PGTT_PASS_THROUGH || e.pgtt === PGTT_FIRST_STAGE) this.flush.piotlb(u, e.did, pasid, 0, null);
    else this.flush.iotlbDomain(u, e.did);
  }

  /**
   * Writes a non-present entry's fields and then its present bit, and flushes what caches may hold of it
   * (pasid_flush_caches: in caching mode the PASID cache and the PASID's IOTLB, else the write buffer).
   */
  private write(u: DmarUnit, dev: KPciDev, pasid: number, did: number, e: Partial<PasidEntryFields>): void {
    const at = this.entryAddress(dev, pasid);
    if (at === null) throw new IommuError("DMAR_PASID", `${dev.name}: no PASID table entry for PASID ${pasid}`);
    const mem = this.ctx.port.memory;
    if ((mem.read32(at) & PASID_PTE_PRESENT) !== 0) throw new IommuError("DMAR_PASID", `${dev.name}: PASID ${pasid} entry is already in use (Setup RID2PASID failed)`);
    const w = encodePasidEntry({ ...e, present: true });
    for (let i = 1; i < ENTRY_WORDS; i++) mem.write32(at + 4 * i, w[i] ?? 0);
    mem.write32(at, w[0] ?? 0);
    if (u.cachingMode) {
      this.flush.pasidCache(u, PC_G_PASID, did, pasid);
      this.flush.piotlb(u, did, pasid, 0, null);
    } else {
      this.flush.writeBufferFlush(u);
    }
  }
}
