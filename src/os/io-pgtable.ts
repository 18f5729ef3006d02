/**
 * A domain's I/O page tables as the DMA API and the IOMMU core use them, whatever the hardware format (VT-d
 * second-level tables in intel-pgtable.ts, AMD-Vi v1 tables in amd-pgtable.ts): pages are mapped with
 * IOMMU_READ / IOMMU_WRITE (include/linux/iommu.h) and never seen as entries.
 */

/** Protection flags of a mapping (include/linux/iommu.h IOMMU_READ, IOMMU_WRITE). */
export const IOMMU_READ = 1 << 0;
export const IOMMU_WRITE = 1 << 1;

/** A domain's I/O page tables, whatever their format. */
export interface IoPageTable {
  /** Physical address of the top-level table. */
  readonly pgd: number;
  /** Levels of the table (the root's level). */
  readonly levels: number;
  /** Table pages in use below the top-level one. */
  readonly tablePages: number;
  /** Maps `count` 4 KiB pages from `iovaPfn` to `physPfn` with IOMMU_READ / IOMMU_WRITE. */
  map(iovaPfn: number, physPfn: number, count: number, prot: number): void;
  /** Maps a byte range 1:1 or not, with large pages where allowed and aligned. */
  mapRange(iova: number, phys: number, size: number, prot: number, superpage: boolean): void;
  /** Clears `count` pages; returns the table pages that became empty (freed after the IOTLB flush). */
  unmap(iovaPfn: number, count: number): number[];
  /** Frees every table page, the top one too (the domain is gone); the pages mapped stay with their owner. */
  free(): void;
  /** The page frame `iovaPfn` maps to, or null. */
  lookup(iovaPfn: number): number | null;
}

