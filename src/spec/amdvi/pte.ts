/**
 * I/O page-table entries (spec #48882 section 2.2.3, Tables 14 and 15): PDE and PTE share PR, NextLevel,
 * address, FC, IR and IW. NextLevel 1..6 names the level of the table pointed to (levels may be skipped),
 * 0 marks a PTE of the level's default size, 7 a PTE whose size is encoded in its address bits (2.2.3.2).
 */
import { field, getFieldBig, type Field } from "./fields.js";

export const PTE_PR = field("PR", 0, 1, "2.2.3");
export const PTE_A = field("A", 5, 1, "2.2.3");
export const PTE_D = field("D", 6, 1, "2.2.3");
export const PTE_NEXT_LEVEL = field("NextLevel", 9, 3, "2.2.3");
export const PTE_ADDR = field("Address", 12, 40, "2.2.3");
export const PTE_U = field("U", 59, 1, "2.2.3");
export const PTE_FC = field("FC", 60, 1, "2.2.3");
export const PTE_IR = field("IR", 61, 1, "2.2.3");
export const PTE_IW = field("IW", 62, 1, "2.2.3");
export const PTE_FIELDS: readonly Field[] = [PTE_PR, PTE_A, PTE_D, PTE_NEXT_LEVEL, PTE_ADDR, PTE_U, PTE_FC, PTE_IR, PTE_IW];

/** A PDE or PTE is 64 bits: two dwords, the high one at byte 4 (2.2.3). */
export const PTE_BYTES = 8;
export const PTE_HI_OFFSET = 4;
/** Each level decodes nine IOVA bits: 512 entries per table (2.2.3). */
export const LEVEL_INDEX_MASK = 0x1ff;
export const PTES_PER_TABLE = LEVEL_INDEX_MASK + 1;
/** The address field (bits 51:12) as masks over the entry's low and high dwords (2.2.3). */
export const PTE_ADDR_MASK_LO = 0xffff_f000;
export const PTE_ADDR_MASK_HI = 0x000f_ffff;

/** The address a PDE or PTE holds (bits 51:12 in place, as a bigint); `e` is its two dwords. */
export function pteAddress(e: ArrayLike<number>): bigint {
  return getFieldBig(e, PTE_ADDR) << BigInt(PTE_ADDR.lsb);
}

/** The index into a level-`level` table that `iova` selects (2.2.3). */
export function levelIndex(iova: bigint, level: number): number {
  return Number((iova >> BigInt(levelShift(level))) & BigInt(LEVEL_INDEX_MASK));
}

/** The deepest host page table: six levels, DTE Mode 110b (2.2.2.1, 2.2.3). */
export const MAX_LEVELS = 6;

export const NEXT_LEVEL_PTE = 0;
export const NEXT_LEVEL_EXPLICIT = 7;
/** Bits 58:52 of a PDE or PTE are reserved (2.2.3). In the high dword: bits 26:20. */
export const PTE_RESERVED_HI = 0x07f0_0000;

/** Shift of the IOVA index bits a level decodes: level 1 bits 20:12, ..., level 6 bits 63:57 (2.2.3). */
export function levelShift(level: number): number {
  return 12 + 9 * (level - 1);
}

/**
 * Size, as log2, of a page whose PTE has NextLevel 7: the address bits from 12 upward that are 1 give the size,
 * the first 0 bit ends it; with n ones the page is 2^(13 + n) bytes (2.2.3.2, Table 16).
 * `addrLo`/`addrHi` are the entry's dwords; returns 0 when all 40 address bits are 1 (no size encoded).
 */
export function explicitPageShift(addrLo: number, addrHi: number): number {
  let n = 0;
  for (let b = 12; b < 52; b++) {
    const set = b < 32 ? (addrLo >>> b) & 1 : (addrHi >>> (b - 32)) & 1;
    if (set === 0) return 13 + n;
    n++;
  }
  return 0;
}

/** Encodes the address field of an explicit-size PTE for a page of 2^shift bytes at `base` (2.2.3.2). */
export function encodeExplicitSize(base: bigint, shift: number): bigint {
  const ones = (1n << BigInt(shift - 1)) - 1n;
  return (base & ~((1n << BigInt(shift)) - 1n)) | (ones & ~0xfffn);
}
