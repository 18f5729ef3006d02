/**
 * AMD-Vi v1 host I/O page tables as Linux 6.1 builds them (drivers/iommu/amd/io_pgtable.c): a domain starts
 * with a 3-level table (DEFAULT_PGTABLE_LEVEL, IOVAs below 2^39) and grows a level at a time when an IOVA above
 * the current reach is mapped (increase_address_space: a new root whose entry 0 points at the old one, up to 6
 * levels); directory entries carry PR, IR, IW and NextLevel = the level of the table they point to; 4 KiB leaves
 * carry PR, FC, IR/IW as asked and NextLevel 0. Unmapping clears leaves and keeps table pages (they are freed
 * with the domain), so unmap returns no freed pages.
 *
 * Entry layouts come from spec/amdvi/pte.ts.
 */
import type { PhysicalMemory } from "../core/memory.js";
import { HI_DWORD_OFFSET, TWO32 } from "../core/u64.js";
import { MAX_LEVELS, PTE_ADDR_MASK_HI, PTE_ADDR_MASK_LO, PTE_BYTES, PTE_FC, PTE_IR, PTE_IW, PTE_NEXT_LEVEL, PTE_PR, PTES_PER_TABLE, levelShift } from "../spec/amdvi/pte.js";
import { IOMMU_READ, IOMMU_WRITE, type IoPageTable } from "./iommu-ops.js";
import type { PageAllocator } from "./pages.js";

/** PAGE_MODE_3_LEVEL: the levels a v1 domain starts with. */
export const DEFAULT_PGTABLE_LEVEL = 3;
/** PAGE_MODE_6_LEVEL: the most a v1 table has. */
export const MAX_PGTABLE_LEVEL = MAX_LEVELS;
const PAGE = 4096;

const PR_LO = 1 << PTE_PR.lsb;
const NEXT_SHIFT = PTE_NEXT_LEVEL.lsb;
const FC_HI = 1 << (PTE_FC.lsb - 32);
const IR_HI = 1 << (PTE_IR.lsb - 32);
const IW_HI = 1 << (PTE_IW.lsb - 32);

/** Pages of IOVA one entry at spec level `level` covers (level 1 = the leaf table). */
function spanPages(level: number): number {
  return 2 ** (levelShift(level) - 12);
}

export class AmdPageTable implements IoPageTable {
  /** Physical address of the root table. */
  pgd: number;
  /** DTE Mode: the spec level of the root table. */
  levels = DEFAULT_PGTABLE_LEVEL;
  private tables = 0;

  /**
   * `onRootChange` runs after the table grew a level (the driver rewrites the DTEs that point at it and flushes
   * them, as amd_iommu_domain_update does).
   */
  constructor(
    private readonly mem: PhysicalMemory,
    private readonly pages: PageAllocator,
    private readonly onRootChange: () => void = () => {},
  ) {
    this.pgd = pages.alloc(1, "any");
  }

  get tablePages(): number {
    return this.tables;
  }

  /** Highest page frame number the current levels reach. */
  private get reachPfn(): number {
    return this.levels >= MAX_PGTABLE_LEVEL ? Number.MAX_SAFE_INTEGER : spanPages(this.levels + 1) - 1;
  }

  private writePde(ea: number, level: number, table: number): void {
    const hi = Math.floor(table / TWO32);
    this.mem.write64Halves(ea, ((table - hi * TWO32) | (level << NEXT_SHIFT) | PR_LO) >>> 0, (hi | IR_HI | IW_HI) >>> 0);
  }

  /** increase_address_space: one more level on top. */
  private grow(): void {
    const root = this.pages.alloc(1, "any");
    this.writePde(root, this.levels, this.pgd);
    this.pgd = root;
    this.levels++;
    this.tables++;
  }

  private entry(table: number, pfn: number, level: number): number {
    return table + (Math.floor(pfn / spanPages(level)) % PTES_PER_TABLE) * PTE_BYTES;
  }

  private next(ea: number): number {
    return (this.mem.read32(ea + HI_DWORD_OFFSET) & PTE_ADDR_MASK_HI) * TWO32 + ((this.mem.read32(ea) & PTE_ADDR_MASK_LO) >>> 0);
  }

  /** The leaf table covering `pfn`; 0 when absent and not created. */
  private leafTable(pfn: number, create: boolean): number {
    let table = this.pgd;
    for (let level = this.levels; level > 1; level--) {
      const ea = this.entry(table, pfn, level);
      if ((this.mem.read32(ea) & PR_LO) === 0) {
        if (!create) return 0;
        const t = this.pages.alloc(1, "any");
        this.tables++;
        this.writePde(ea, level - 1, t);
      }
      table = this.next(ea);
    }
    return table;
  }

  map(iovaPfn: number, physPfn: number, count: number, prot: number): void {
    let grew = false;
    while (iovaPfn + count - 1 > this.reachPfn) {
      this.grow();
      grew = true;
    }
    const perm = ((prot & IOMMU_READ) !== 0 ? IR_HI : 0) | ((prot & IOMMU_WRITE) !== 0 ? IW_HI : 0);
    let table = 0;
    for (let i = 0; i < count; i++) {
      const pfn = iovaPfn + i;
      if (table === 0 || pfn % PTES_PER_TABLE === 0) table = this.leafTable(pfn, true);
      const phys = (physPfn + i) * PAGE;
      const hi = Math.floor(phys / TWO32);
      this.mem.write64Halves(table + (pfn % PTES_PER_TABLE) * PTE_BYTES, ((phys - hi * TWO32) | PR_LO) >>> 0, (hi | FC_HI | perm) >>> 0);
    }
    if (grew) this.onRootChange();
  }

  /** Maps a byte range with 4 KiB pages (direct regions). */
  mapRange(iova: number, phys: number, size: number, prot: number): void {
    this.map(Math.floor(iova / PAGE), Math.floor(phys / PAGE), Math.ceil(size / PAGE), prot);
  }

  unmap(iovaPfn: number, count: number): number[] {
    let table = 0;
    for (let i = 0; i < count; i++) {
      const pfn = iovaPfn + i;
      if (pfn > this.reachPfn) break;
      if (table === 0 || pfn % PTES_PER_TABLE === 0) table = this.leafTable(pfn, false);
      if (table === 0) continue;
      this.mem.write64Halves(table + (pfn % PTES_PER_TABLE) * PTE_BYTES, 0, 0);
    }
    return [];
  }

  /** free_pagetable: every table page below the root, then the root, back to the allocator (not the pages mapped). */
  free(): void {
    const walk = (table: number, level: number): void => {
      if (level > 1) {
        for (let i = 0; i < PTES_PER_TABLE; i++) {
          const ea = table + i * PTE_BYTES;
          if ((this.mem.read32(ea) & PR_LO) !== 0) walk(this.next(ea), level - 1);
        }
      }
      this.pages.freeRange(table, 1);
    };
    walk(this.pgd, this.levels);
    this.tables = 0;
  }

  lookup(iovaPfn: number): number | null {
    if (iovaPfn > this.reachPfn) return null;
    const table = this.leafTable(iovaPfn, false);
    if (table === 0) return null;
    const ea = table + (iovaPfn % PTES_PER_TABLE) * PTE_BYTES;
    if ((this.mem.read32(ea) & PR_LO) === 0) return null;
    return this.next(ea) / PAGE;
  }
}
