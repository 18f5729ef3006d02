/**
 * Second-level paging entries (VT-d spec 9.8, "Second-Level Paging Entries"): 64-bit entries, 512 per 4 KiB
 * table, each level translating 9 bits of the input address above the 12-bit page offset. Level 1 is the
 * SL-PTE (4 KiB pages), level 2 the SL-PDE (2 MiB pages with PS), level 3 the SL-PDPE (1 GiB pages with PS),
 * levels 4 and 5 the SL-PML4E and SL-PML5E. The reserved bits of each level, which depend on the unit's host
 * address width and capabilities, are computed here too.
 */
import { SLLPS_1G, SLLPS_2M } from "./capability.js";
import { field as f, shiftOf, wordMask } from "./fields.js";

/** Second-level paging entry fields (9.8). */
export const SL_ENTRY = Object.freeze({
  R: f("R", 0, 1, "9.8"),
  W: f("W", 1, 1, "9.8"),
  /** Page size: the SL-PDE maps a 2 MiB page, the SL-PDPE a 1 GiB page, instead of pointing to a table. */
  PS: f("PS", 7, 1, "9.8"),
  /** Snoop behaviour (leaf entries): reserved unless ECAP.SC. */
  SNP: f("SNP", 11, 1, "9.8"),
  /** Bits 51:12 of the next table's or the page's address (bits at and above HAW are reserved). */
  ADDR: f("ADDR", 12, 40, "9.8"),
  /** Transient mapping (leaf entries): reserved unless ECAP.DT. */
  TM: f("TM", 62, 1, "9.8"),
});

/** Bits 61:52 and 63 of every second-level entry are ignored by hardware (9.8). */
export const SL_IGNORED_HIGH = Object.freeze([f("IGN", 52, 10, "9.8"), f("IGN", 63, 1, "9.8")] as const);

export const SL_R = wordMask(SL_ENTRY.R);
export const SL_W = wordMask(SL_ENTRY.W);
export const SL_PS = wordMask(SL_ENTRY.PS);
export const SL_SNP = wordMask(SL_ENTRY.SNP);
/** TM as a mask of the entry's high dword. */
export const SL_HI_TM = wordMask(SL_ENTRY.TM);
/** An entry is present when R or W is set (9.8). */
export const SL_PRESENT = SL_R | SL_W;

/** Linux's names for the same bits (drivers/iommu/intel/iommu.h), used by the simulated kernel. */
export const DMA_PTE_READ = SL_R;
export const DMA_PTE_WRITE = SL_W;
export const DMA_PTE_LARGE_PAGE = SL_PS;
/** The address bits of an entry in its low dword (bits 31:12). */
export const DMA_PTE_ADDR_LO_MASK = wordMask(SL_ENTRY.ADDR);

/** 4 KiB pages; 9 address bits per level; 512 entries of 8 bytes per table (9.8). */
export const PAGE_SHIFT_4K = shiftOf(SL_ENTRY.ADDR);
export const PAGE_SIZE_4K = 2 ** PAGE_SHIFT_4K;
export const SL_LEVEL_BITS = 9;
export const LEVEL_STRIDE = SL_LEVEL_BITS;
export const PTES_PER_TABLE = 2 ** SL_LEVEL_BITS;
export const SL_ENTRY_SIZE = 8;

/** Names of second-level paging entries by level (1 = leaf table). */
export const SL_LEVEL_NAMES = ["", "SL-PTE", "SL-PDE", "SL-PDPE", "SL-PML4E", "SL-PML5E"] as const;

/** log2 of the bytes an entry at `level` covers: 12 (4 KiB), 21 (2 MiB), 30 (1 GiB), 39, 48. */
export function levelShift(level: number): number {
  return PAGE_SHIFT_4K + SL_LEVEL_BITS * (level - 1);
}

/** The bytes a leaf at `level` maps: 4 KiB, 2 MiB or 1 GiB. */
export function levelPageSize(level: number): number {
  return 2 ** levelShift(level);
}

/** The leaf level that maps pages of `size` bytes (1, 2, 3), or 0 for another size. */
export function leafLevelForSize(size: number): number {
  for (let level = 1; level <= 3; level++) if (levelPageSize(level) === size) return level;
  return 0;
}

/** Index of the entry at `level` that translates the address (lo, hi): its 9-bit slice. */
export function levelIndex(lo: number, hi: number, level: number): number {
  const shift = levelShift(level);
  const slice = shift >= 32 ? hi >>> (shift - 32) : shift + SL_LEVEL_BITS <= 32 ? lo >>> shift : (lo >>> shift) | (hi << (32 - shift));
  return slice & (PTES_PER_TABLE - 1);
}

/** Index at `level` of a 4 KiB page number (pfn = address / 4096), for table builders working in page numbers. */
export function pfnLevelIndex(pfn: number, level: number): number {
  return Math.floor(pfn / 2 ** (SL_LEVEL_BITS * (level - 1))) % PTES_PER_TABLE;
}

/** Mask of the frame bits of a leaf at `level` in the entry's low dword (4 KiB, 2 MiB, 1 GiB). */
export function leafFrameLoMask(level: number): number {
  return bitsFrom(levelShift(level));
}

/** True when a level-`level` entry with PS set maps a page, given CAP.SLLPS (2 MiB at level 2, 1 GiB at level 3). */
export function isLargePage(level: number, largePages: number): boolean {
  return (level === 2 && (largePages & SLLPS_2M) !== 0) || (level === 3 && (largePages & SLLPS_1G) !== 0);
}

/** The leaf level of the largest page CAP.SLLPS allows: 3 with 1 GiB pages, 2 with 2 MiB pages, else 1. */
export function maxLeafLevel(largePages: number): number {
  return (largePages & SLLPS_1G) !== 0 ? 3 : (largePages & SLLPS_2M) !== 0 ? 2 : 1;
}

/** Mask of bits [from, 32) of a dword, i.e. the bits at and above `from` (0 when from >= 32). */
function bitsFrom(from: number): number {
  if (from >= 32) return 0;
  if (from <= 0) return 0xffffffff;
  return (0xffffffff << from) >>> 0;
}

/** What the reserved bits of second-level entries depend on. */
export interface SecondLevelFeatures {
  hawBits: number;
  /** CAP.SLLPS. */
  largePages: number;
  /** ECAP.DT: TM is defined in leaf entries. */
  deviceTlb: boolean;
  /** ECAP.SC: SNP is defined in leaf entries. */
  snoopControl: boolean;
}

/** Reserved bits of present entries by level (index 1..5), as dword masks; the large-page masks at 2 and 3. */
export interface SecondLevelReserved {
  rsvdLo: Uint32Array;
  rsvdHi: Uint32Array;
  rsvdLargeLo: Uint32Array;
  rsvdLargeHi: Uint32Array;
}

/**
 * The reserved bits of second-level entries (9.8), the rules QEMU's VTD_SPTE_*_RSVD_MASK follow too: address bits
 * 51:HAW in every entry; TM (bit 62) in non-leaf entries, and in leaves unless device-TLBs are supported; SNP
 * (bit 11) in non-leaf entries, and in leaves unless snoop control is supported; PS (bit 7) at levels 4 and 5,
 * and at levels 2 and 3 when that page size is not supported; in large-page leaves the address bits below the
 * page size (2 MiB: 20:12, 1 GiB: 29:12).
 */
export function secondLevelReserved(c: SecondLevelFeatures): SecondLevelReserved {
  const addrTop = SL_ENTRY.ADDR.lsb + SL_ENTRY.ADDR.width; // 52
  const aboveHaw = (bitsFrom(c.hawBits - 32) & ~bitsFrom(addrTop - 32)) >>> 0;
  const hiLeaf = (aboveHaw | (c.deviceTlb ? 0 : SL_HI_TM)) >>> 0;
  const hiNonLeaf = (aboveHaw | SL_HI_TM) >>> 0;
  const snp = c.snoopControl ? 0 : SL_SNP;
  const r: SecondLevelReserved = {
    rsvdLo: new Uint32Array(6),
    rsvdHi: new Uint32Array(6),
    rsvdLargeLo: new Uint32Array(6),
    rsvdLargeHi: new Uint32Array(6),
  };
  r.rsvdLo[1] = snp;
  r.rsvdHi[1] = hiLeaf;
  for (let level = 2; level <= 5; level++) {
    r.rsvdLo[level] = (SL_SNP | (isLargePage(level, c.largePages) ? 0 : SL_PS)) >>> 0;
    r.rsvdHi[level] = hiNonLeaf;
  }
  for (const level of [2, 3]) {
    const belowPage = (bitsFrom(PAGE_SHIFT_4K) & ~leafFrameLoMask(level)) >>> 0;
    r.rsvdLargeLo[level] = (belowPage | snp) >>> 0;
    r.rsvdLargeHi[level] = hiLeaf;
  }
  return r;
}
