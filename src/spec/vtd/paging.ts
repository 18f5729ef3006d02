/**
 * Second-level paging entries (VT-d spec 9.8, "Second-Level Paging Entries"): 64-bit entries, 512 per 4 KiB
 * table, each level translating 9 bits of the input address above the 12-bit page offset.
 */

/** Bit 0, R: read permission (9.8). */
export const DMA_PTE_READ = 1;
/** Bit 1, W: write permission (9.8). */
export const DMA_PTE_WRITE = 2;
/** Bit 7, PS: page size — the entry maps a 2 MiB (level 2) or 1 GiB (level 3) page instead of pointing to a table (9.8). */
export const DMA_PTE_LARGE_PAGE = 1 << 7;
/** Bits 51:12 of the low word: the address of the next table or of the page (9.8), as a mask of the low dword. */
export const DMA_PTE_ADDR_LO_MASK = 0xfffff000;
/** Entries per table and bits translated per level (9.8). */
export const PTES_PER_TABLE = 512;
export const LEVEL_STRIDE = 9;
