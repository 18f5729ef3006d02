/**
 * First-stage paging entries (VT-d spec 9.7, "First-Stage Paging Entries"): the Intel 64 processor's 4-level
 * and 5-level paging format, used by scalable-mode PASID entries with PGTT first-stage or nested (3.6). 64-bit
 * entries, 512 per 4 KiB table, 9 address bits per level above the 12-bit page offset; PS at level 2 maps a
 * 2 MiB page, at level 3 a 1 GiB page (with CAP.FS1GP). Input addresses must be canonical: bits 63:48 (4-level)
 * or 63:57 (5-level) equal to bit 47 or 56 (3.6.1).
 */
import { field as f, wordMask } from "./fields.js";
import { levelShift } from "./paging.js";

/** First-stage paging entry fields (9.7). */
export const FS_ENTRY = Object.freeze({
  P: f("P", 0, 1, "9.7"),
  /** Read/write: writes need R/W = 1 at every level (supervisor writes only with WPE). */
  RW: f("R/W", 1, 1, "9.7"),
  /** User/supervisor: user requests (PR = 0) need U/S = 1 at every level. */
  US: f("U/S", 2, 1, "9.7"),
  PWT: f("PWT", 3, 1, "9.7"),
  PCD: f("PCD", 4, 1, "9.7"),
  /** Accessed: set by hardware on every entry a translation uses. */
  A: f("A", 5, 1, "9.7"),
  /** Dirty: set by hardware in the leaf on a write. */
  D: f("D", 6, 1, "9.7"),
  /** Page size (levels 2 and 3); must be 0 at levels 4 and 5. */
  PS: f("PS", 7, 1, "9.7"),
  G: f("G", 8, 1, "9.7"),
  /** Extended accessed (with EAFE). */
  EA: f("EA", 10, 1, "9.7"),
  /** Bits 51:12 of the next table's or the page's address. */
  ADDR: f("ADDR", 12, 40, "9.7"),
  /** Execute disable: ignored for requests without execute permission (DMA reads and writes). */
  XD: f("XD", 63, 1, "9.7"),
});

export const FS_P = wordMask(FS_ENTRY.P);
export const FS_RW = wordMask(FS_ENTRY.RW);
export const FS_US = wordMask(FS_ENTRY.US);
export const FS_A = wordMask(FS_ENTRY.A);
export const FS_D = wordMask(FS_ENTRY.D);
export const FS_PS = wordMask(FS_ENTRY.PS);
/** XD as a mask of the entry's high dword. */
export const FS_HI_XD = wordMask(FS_ENTRY.XD);

/** Linux's names for the same bits (drivers/iommu/intel/iommu.h, DMA_FL_PTE_*). */
export const DMA_FL_PTE_PRESENT = FS_P;
export const DMA_FL_PTE_US = FS_US;
export const DMA_FL_PTE_ACCESS = FS_A;
export const DMA_FL_PTE_DIRTY = FS_D;
/** DMA_FL_PTE_XD (bit 63) as a mask of the entry's high dword. */
export const DMA_FL_PTE_XD_HI = FS_HI_XD;
/** The address bits of an entry's high dword (bits 51:32 of ADDR, 9.7): XD and the ignored bits 62:52 left out. */
/** The address field's bits in the entry's low dword (31:12). */
export const FS_LO_ADDR_MASK = wordMask(f("ADDR_LO", FS_ENTRY.ADDR.lsb, 32 - FS_ENTRY.ADDR.lsb, "9.7"));
export const FS_HI_ADDR_MASK = wordMask(f("ADDR_HI", 32, FS_ENTRY.ADDR.lsb + FS_ENTRY.ADDR.width - 32, "9.7"));

/** Paging levels for the first-stage paging mode (FSPM 0: 4-level, 48-bit; 1: 5-level, 57-bit). */
export function fsLevels(fspm: number): number {
  return fspm === 1 ? 5 : 4;
}

/** Input address width of 4- and 5-level first-stage paging. */
export function fsAddressWidth(levels: number): number {
  return levelShift(levels) + 9;
}

/** Names by level (1 = leaf table), as the spec names them. */
export const FS_LEVEL_NAMES = ["", "FS-PTE", "FS-PDE", "FS-PDPE", "FS-PML4E", "FS-PML5E"] as const;

/**
 * True when the address (lo, hi) is canonical for `levels`-level paging (3.6.1): bits 63 down to the width
 * all equal the top bit of the width.
 */
export function isCanonical(hi: number, levels: number): boolean {
  const top = fsAddressWidth(levels) - 1 - 32; // 15 or 24: bit of hi holding address bit 47 or 56
  const upper = hi >> top; // arithmetic: all ones or all zeros when canonical
  return upper === 0 || upper === -1;
}

/** Reserved bits of present first-stage entries by level, as dword masks (index 1..5); large-page masks at 2, 3. */
export interface FirstStageReserved {
  rsvdLo: Uint32Array;
  rsvdHi: Uint32Array;
  rsvdLargeLo: Uint32Array;
  rsvdLargeHi: Uint32Array;
}

/**
 * The reserved bits of first-stage entries (9.7): address bits 51:HAW in every entry; PS at levels 4 and 5,
 * and at level 3 without CAP.FS1GP; in large-page leaves the address bits below the page size except bit 12
 * (PAT). Bits 62:52 are ignored; XD is defined.
 */
export function firstStageReserved(hawBits: number, oneGig: boolean): FirstStageReserved {
  const aboveHaw = hawBits >= 52 ? 0 : ((0xfffff >>> 0) & ~((1 << Math.max(0, hawBits - 32)) - 1) & 0xfffff) >>> 0;
  const r: FirstStageReserved = { rsvdLo: new Uint32Array(6), rsvdHi: new Uint32Array(6), rsvdLargeLo: new Uint32Array(6), rsvdLargeHi: new Uint32Array(6) };
  for (let level = 1; level <= 5; level++) {
    r.rsvdHi[level] = aboveHaw;
    r.rsvdLo[level] = level >= 4 || (level === 3 && !oneGig) ? FS_PS : 0;
  }
  // 2 MiB leaf: bits 20:13 reserved; 1 GiB leaf: bits 29:13 (bit 12 is PAT).
  r.rsvdLargeLo[2] = 0x001fe000;
  r.rsvdLargeLo[3] = 0x3fffe000;
  r.rsvdLargeHi[2] = aboveHaw;
  r.rsvdLargeHi[3] = aboveHaw;
  return r;
}
