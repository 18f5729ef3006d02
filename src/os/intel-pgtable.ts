/**
 * A domain's page tables, written the way Linux 6.1's pfn_to_dma_pte and __domain_mapping write them: second-level
 * tables (VT-d spec 9.8), intermediate entries read/write, leaves with the mapping's permissions; or, for a domain
 * that uses first-level translation in scalable mode (domain_use_first_level), first-stage tables (9.7) in the
 * same layout, every entry with XD, U/S and A set (intermediate ones also R/W), leaves present and, when
 * writable, dirty. Numbers only (no bigint) on this path; the last leaf table is remembered so consecutive pages
 * do not walk from the top.
 *
 * Each table page (the top one excepted) keeps a count of its present entries, so unmapping the last entry of a
 * table gives the page back, as Linux's dma_pte_clear_level / dma_pte_list_pagetables do: the emptied tables are
 * returned to the caller as a free list, to be released only after the IOTLB invalidation that makes the unit stop
 * using them (at once in strict mode, after the flush queue's flush in lazy mode).
 */
import { HI_DWORD_OFFSET, TWO32 } from "../core/u64.js";
import { DMA_FL_PTE_ACCESS, DMA_FL_PTE_DIRTY, DMA_FL_PTE_PRESENT, DMA_FL_PTE_US, DMA_FL_PTE_XD_HI, FS_HI_ADDR_MASK } from "../spec/vtd/first-stage.js";
import {
  DMA_PTE_ADDR_LO_MASK,
  DMA_PTE_LARGE_PAGE,
  DMA_PTE_READ,
  DMA_PTE_WRITE,
  LEVEL_STRIDE,
  levelPageSize,
  PAGE_SIZE_4K,
  PTES_PER_TABLE,
  SL_ENTRY_SIZE,
  SL_PRESENT,
} from "../spec/vtd/paging.js";
import type { PageAllocator } from "./pages.js";
import type { MachinePort } from "./port.js";

const PAGE = PAGE_SIZE_4K;
/** 2 MiB: a leaf at level 2. */
const SUPERPAGE = levelPageSize(2);
const TABLE_PROT = DMA_PTE_READ | DMA_PTE_WRITE;
/** What a walk returns when a superpage covers the address. */
const UNDER_SUPERPAGE = -1;
/** Pages an entry at each level spans (index = level 1..6). */
const LEVEL_SPAN = Float64Array.from([0, 1, 2, 3, 4, 5, 6], (lv) => (lv === 0 ? 0 : levelSpan(lv)));

/** Pages an entry at `level` spans: 1, 512, 512^2, … */
function levelSpan(level: number): number {
  return 2 ** (LEVEL_STRIDE * (level - 1));
}

/**
 * Present entries per table page. Mapping and unmapping touch one table many times in a row, so the count of
 * the table touched last is kept outside the map until another table is counted.
 */
class TableCounts {
  private readonly map = new Map<number, number>();
  private table = -1;
  private n = 0;

  get size(): number {
    return this.map.size;
  }

  get(t: number): number | undefined {
    return t === this.table ? this.n : this.map.get(t);
  }

  /** The table pages counted. */
  tables(): number[] {
    return [...this.map.keys()];
  }

  set(t: number, n: number): void {
    if (t === this.table) this.n = n;
    this.map.set(t, n);
  }

  delete(t: number): void {
    if (t === this.table) this.table = -1;
    this.map.delete(t);
  }

  clear(): void {
    this.map.clear();
    this.table = -1;
  }

  /** Adds `delta` to the count of table `t` (0 when it had none); returns the new count. */
  add(t: number, delta: number): number {
    if (t !== this.table) {
      if (this.table >= 0) this.map.set(this.table, this.n);
      const have = this.map.get(t);
      if (have === undefined) this.map.set(t, 0);
      this.table = t;
      this.n = have ?? 0;
    }
    this.n += delta;
    return this.n;
  }
}

/** A 4 KiB mapping refused because a superpage already maps the IOVA elsewhere (Linux: "DMA PTE … already set"). */
export interface MapConflict {
  iovaPfn: number;
  /** Where the superpage sends the IOVA. */
  existing: number;
  wanted: number;
}

export class PageTables {
  readonly pgd: number;
  readonly levels: number;
  private lastTableKey = -1;
  private lastTable = 0;
  /** The entry of the superpage the last walk stopped at (when it returned UNDER_SUPERPAGE). */
  private superpageEntry = 0;
  /** Mappings refused because a superpage was in the way, oldest first. */
  readonly conflicts: MapConflict[] = [];
  /** Present entries per table page below the top one. */
  private readonly used = new TableCounts();

  /** First-stage format (the domain uses first-level translation). */
  readonly firstLevel: boolean;
  /** Flag bits of intermediate entries (low dword, high dword). */
  private readonly tableLo: number;
  private readonly entryHi: number;
  /** Flag bits every leaf gets besides its permissions (low dword). */
  private readonly leafLo: number;

  constructor(
    private readonly mem: MachinePort["memory"],
    private readonly pages: PageAllocator,
    levels: number,
    firstLevel = false,
  ) {
    this.levels = levels;
    this.firstLevel = firstLevel;
    this.pgd = pages.alloc(1, "any");
    const fl = firstLevel ? DMA_FL_PTE_US | DMA_FL_PTE_ACCESS : 0;
    this.tableLo = TABLE_PROT | fl;
    this.leafLo = firstLevel ? fl | DMA_FL_PTE_PRESENT : 0;
    this.entryHi = firstLevel ? DMA_FL_PTE_XD_HI : 0;
  }

  /** The low-dword flags of a leaf with `prot` (DMA_PTE_READ | DMA_PTE_WRITE): first-level leaves written dirty. */
  private leafFlags(prot: number): number {
    if (!this.firstLevel) return prot;
    return prot | this.leafLo | ((prot & DMA_PTE_WRITE) !== 0 ? DMA_FL_PTE_DIRTY : 0);
  }

  /** Table pages in use below the top-level table. */
  get tablePages(): number {
    return this.used.size;
  }

  private entry(table: number, pfn: number, level: number): number {
    return table + (Math.floor(pfn / (LEVEL_SPAN[level] ?? levelSpan(level))) % PTES_PER_TABLE) * SL_ENTRY_SIZE;
  }

  private readAddr(ea: number, lo: number): number {
    return (this.mem.read32(ea + HI_DWORD_OFFSET) & FS_HI_ADDR_MASK) * TWO32 + ((lo & DMA_PTE_ADDR_LO_MASK) >>> 0);
  }

  private writeEntry(ea: number, addr: number, flags: number): void {
    const hi = Math.floor(addr / TWO32);
    this.mem.write64Halves(ea, ((addr - hi * TWO32) | flags) >>> 0, (hi | this.entryHi) >>> 0);
  }

  private count(table: number, delta: number): number {
    if (table === this.pgd) return 1;
    return this.used.add(table, delta);
  }

  /**
   * The table at `target` level covering pfn, creating missing tables when `create`; 0 when absent. A
   * superpage on the way yields UNDER_SUPERPAGE, with its entry's address in `superpageEntry`: the caller
   * decides what that means. (A number either way, so table addresses above 4 GiB are never boxed.)
   */
  private walk(pfn: number, target: number, create: boolean): number {
    let table = this.pgd;
    for (let lv = this.levels; lv > target; lv--) {
      const ea = this.entry(table, pfn, lv);
      const lo = this.mem.read32(ea);
      if ((lo & SL_PRESENT) === 0) {
        if (!create) return 0;
        const t = this.pages.alloc(1, "any");
        this.writeEntry(ea, t, this.tableLo);
        this.count(table, 1);
        this.used.set(t, 0);
        table = t;
      } else if ((lo & DMA_PTE_LARGE_PAGE) !== 0) {
        this.superpageEntry = ea;
        return UNDER_SUPERPAGE;
      } else {
        table = this.readAddr(ea, lo);
      }
    }
    return table;
  }

  /** Address of the level-1 table covering pfn, creating tables when `create`; 0 when absent; UNDER_SUPERPAGE. */
  private leafTable(pfn: number, create: boolean): number {
    const key = Math.floor(pfn / PTES_PER_TABLE);
    if (key === this.lastTableKey) return this.lastTable;
    const t = this.walk(pfn, 1, create);
    if (t <= 0) return t;
    this.lastTableKey = key;
    this.lastTable = t;
    return t;
  }

  /**
   * Maps `count` 4 KiB pages iova pfn → phys pfn with `prot` (DMA_PTE_READ | DMA_PTE_WRITE).
   *
   * A pfn under an existing superpage is never written through the superpage's frame, and the superpage is not
   * split. Linux 6.1's __domain_mapping installs a leaf only over an empty entry (cmpxchg against 0) and reports
   * "DMA PTE for vPFN … already set" otherwise, leaving the existing translation in place; so here the existing
   * entry stays and, unless it already gives the pfn the same page with at least `prot`, the conflict is
   * recorded in `conflicts`.
   */
  map(iovaPfn: number, physPfn: number, count: number, prot: number): void {
    for (let i = 0; i < count; i++) {
      const pfn = iovaPfn + i;
      const phys = (physPfn + i) * PAGE;
      const t = this.leafTable(pfn, true);
      if (t === UNDER_SUPERPAGE) {
        const sp = this.superpageEntry;
        const lo = this.mem.read32(sp);
        const at = this.superpageFrame(sp, pfn);
        if (at !== phys || (lo & prot) !== prot) this.conflicts.push({ iovaPfn: pfn, existing: at, wanted: phys });
        continue;
      }
      const ea = t + (pfn % PTES_PER_TABLE) * SL_ENTRY_SIZE;
      if ((this.mem.read32(ea) & SL_PRESENT) === 0) this.count(t, 1);
      this.writeEntry(ea, phys, this.leafFlags(prot));
    }
  }

  /** The page a superpage entry gives pfn (2 MiB at level 2, 1 GiB at level 3). */
  private superpageFrame(ea: number, pfn: number): number {
    let level = 2;
    for (let lv = this.levels, table = this.pgd; lv > 1; lv--) {
      if (this.entry(table, pfn, lv) === ea) {
        level = lv;
        break;
      }
      table = this.readAddr(this.entry(table, pfn, lv), this.mem.read32(this.entry(table, pfn, lv)));
    }
    return this.readAddr(ea, this.mem.read32(ea)) + (pfn % 2 ** (LEVEL_STRIDE * (level - 1))) * PAGE;
  }

  /** Maps [iova, iova + size) to phys with 2 MiB pages where both are aligned (identity maps of RAM). */
  mapRange(iova: number, phys: number, size: number, prot: number, superpage: boolean): void {
    let at = 0;
    while (at < size) {
      const v = iova + at;
      const p = phys + at;
      if (superpage && this.levels >= 3 && v % SUPERPAGE === 0 && p % SUPERPAGE === 0 && size - at >= SUPERPAGE) {
        this.mapSuperpage(v / PAGE, p, prot);
        at += SUPERPAGE;
      } else {
        this.map(v / PAGE, p / PAGE, 1, prot);
        at += PAGE;
      }
    }
  }

  /**
   * A 2 MiB leaf at level 2. A level-1 table already there is released first (Linux makes room for a superpage
   * the same way, freeing the small page tables it replaces).
   */
  private mapSuperpage(pfn: number, p: number, prot: number): void {
    const table = this.walk(pfn, 2, true);
    if (table === UNDER_SUPERPAGE) {
      // A 1 GiB page already covers the range: it stays (see map).
      this.conflicts.push({ iovaPfn: pfn, existing: this.superpageFrame(this.superpageEntry, pfn), wanted: p });
      return;
    }
    const ea = this.entry(table, pfn, 2);
    const lo = this.mem.read32(ea);
    if ((lo & SL_PRESENT) === 0) this.count(table, 1);
    else if ((lo & DMA_PTE_LARGE_PAGE) === 0) {
      const old = this.readAddr(ea, lo);
      this.used.delete(old);
      this.pages.freeRange(old, 1);
      this.lastTableKey = -1;
    }
    this.writeEntry(ea, p, this.leafFlags(prot) | DMA_PTE_LARGE_PAGE);
  }

  /**
   * Clears the leaf entries of `count` pages (dma_pte_clear_range). Tables left with no present entry are
   * unlinked and returned: the caller frees them with the allocator once the IOTLB no longer holds them.
   */
  unmap(iovaPfn: number, count: number): number[] {
    const freelist: number[] = [];
    for (let i = 0; i < count; i++) {
      const pfn = iovaPfn + i;
      const t = this.leafTable(pfn, false);
      if (t <= 0) continue;
      const ea = t + (pfn % PTES_PER_TABLE) * SL_ENTRY_SIZE;
      if ((this.mem.read32(ea) & SL_PRESENT) === 0) continue;
      this.mem.write64Halves(ea, 0, 0);
      if (this.count(t, -1) === 0) this.unlinkEmpty(pfn, freelist);
    }
    return freelist;
  }

  /** Unlinks the emptied level-1 table covering pfn, and each parent emptied in turn. */
  private unlinkEmpty(pfn: number, freelist: number[]): void {
    const path: number[] = [];
    let table = this.pgd;
    for (let lv = this.levels; lv > 1; lv--) {
      const ea = this.entry(table, pfn, lv);
      path.push(ea);
      table = this.readAddr(ea, this.mem.read32(ea));
    }
    const parents = [this.pgd];
    for (let k = 0; k < path.length - 1; k++) parents.push(this.readAddr(path[k]!, this.mem.read32(path[k]!)));
    for (let k = path.length - 1; k >= 0; k--) {
      const ea = path[k]!;
      const child = this.readAddr(ea, this.mem.read32(ea));
      if (this.used.get(child) !== 0) break;
      this.mem.write32(ea, 0);
      this.mem.write32(ea + HI_DWORD_OFFSET, 0);
      this.used.delete(child);
      freelist.push(child);
      if (this.count(parents[k]!, -1) !== 0) break;
    }
    this.lastTableKey = -1;
  }

  /** domain_exit's page-table free: every table page, the top one too, back to the allocator (not the pages mapped). */
  free(): void {
    for (const t of this.used.tables()) this.pages.freeRange(t, 1);
    this.used.clear();
    this.pages.freeRange(this.pgd, 1);
    this.lastTableKey = -1;
  }

  /** The physical address pfn maps to (through a superpage too), or null (for tests and the sysfs view). */
  lookup(iovaPfn: number): number | null {
    const t = this.leafTable(iovaPfn, false);
    if (t === UNDER_SUPERPAGE) return this.superpageFrame(this.superpageEntry, iovaPfn);
    if (t === 0) return null;
    const ea = t + (iovaPfn % PTES_PER_TABLE) * SL_ENTRY_SIZE;
    const lo = this.mem.read32(ea);
    if ((lo & SL_PRESENT) === 0) return null;
    return this.readAddr(ea, lo);
  }
}
