/**
 * What the walk baselines read: a copy of every page of simulated memory that holds data, in an array indexed
 * by page frame number (pages missing from memory are one shared zero page). Page storage found without
 * hashing and read with integer index math: the fastest plain JavaScript walk of the same tables the model
 * walks, and nothing the model's memory does in between.
 */
import type { PhysicalMemory } from "../core/memory.js";

const PAGE_BYTES = 4096;
/** The copy is dense up to the highest page: benchmark tables sit low in memory. */
const MAX_PAGES = 2 ** 24;

/*
 * The layout, written out as numbers on purpose: V8 folds module constants that are plain numbers into the code,
 * but not constants copied from another module's exports, and that alone made this walk ~1.2× slower (measured),
 * which would flatter the model. bench.test.ts checks every value here against spec/vtd and spec/amdvi.
 */
/** A table or page address is bits 51:12 of an entry: low dword >>> 12, plus 20 bits of the high dword. */
const PAGE_SHIFT = 12;
const ADDR_HI_MASK = 0xfffff;
const PFNS_PER_HI = 0x100000;
/** 9-bit slices of the address per level: level 4 = bits 47:39 (hi >>> 7), 3 = 38:30, 2 = 29:21, 1 = 20:12. */
const INDEX_MASK = 0x1ff;
const L4_HI_SHIFT = 7;
const L3_LO_SHIFT = 30;
const L3_HI_SHIFT = 2;
const L2_SHIFT = 21;
const L1_SHIFT = 12;
/** Paging entries are two dwords (index << 1), high dword next; root and context entries four (<< 2). */
const ENTRY_WORDS_SHIFT = 1;
const HI_WORD = 1;
const ROOT_CONTEXT_WORDS_SHIFT = 2;
/** Requester id: bus in bits 15:8, devfn in 7:0. */
const BUS_SHIFT = 8;
const DEVFN_MASK = 0xff;
/** VT-d: root/context entries present in bit 0; paging entries present when R (bit 0) or W (bit 1). */
const VTD_ROOT_CONTEXT_P = 1;
const VTD_PAGING_P = 3;
/** AMD-Vi: DTE.V and PTE.PR are bit 0. */
const AMD_P = 1;

/** The numbers the walkers use, for the test that checks them against the specifications' modules. */
export const BASELINE_LAYOUT = Object.freeze({
  PAGE_SHIFT,
  ADDR_HI_MASK,
  PFNS_PER_HI,
  INDEX_MASK,
  L4_HI_SHIFT,
  L3_LO_SHIFT,
  L3_HI_SHIFT,
  L2_SHIFT,
  L1_SHIFT,
  ENTRY_WORDS_SHIFT,
  HI_WORD,
  ROOT_CONTEXT_WORDS_SHIFT,
  BUS_SHIFT,
  DEVFN_MASK,
  VTD_ROOT_CONTEXT_P,
  VTD_PAGING_P,
  AMD_P,
});

export class FlatPages {
  /** Dwords of each page, by page frame number. */
  readonly pages: Uint32Array[];

  private constructor(pages: Uint32Array[]) {
    this.pages = pages;
  }

  static copy(mem: PhysicalMemory): FlatPages {
    const pfns = mem.backedPageNumbers();
    const top = (pfns[pfns.length - 1] ?? -1) + 1;
    if (top > MAX_PAGES) throw new RangeError(`memory holds data up to page 0x${top.toString(16)}: too high for a dense copy`);
    const zero = new Uint32Array(PAGE_BYTES / 4);
    const pages = new Array<Uint32Array>(top).fill(zero);
    for (const pfn of pfns) {
      const bytes = mem.read(pfn * PAGE_BYTES, PAGE_BYTES);
      const words = new Uint32Array(PAGE_BYTES / 4);
      const v = new DataView(bytes.buffer);
      for (let i = 0; i < words.length; i++) words[i] = v.getUint32(i * 4, true);
      pages[pfn] = words;
    }
    return new FlatPages(pages);
  }
}

/*
 * The walkers are straight-line code: one group of statements per level, no checks beyond the present bits.
 * Indexes are trusted (the benchmark checks the tables against the model first), hence the non-null assertions.
 */

/** Page frame number of the table or page the entry at dword i points to. */
function next(p: Uint32Array, i: number): number {
  return (p[i]! >>> PAGE_SHIFT) + (p[i + HI_WORD]! & ADDR_HI_MASK) * PFNS_PER_HI;
}

/**
 * VT-d legacy mode: root entry (bus) → context entry (devfn) → four second-level levels. Returns the page frame
 * number the IOVA (lo, hi) maps to, or -1 at a non-present entry.
 */
export function vtdMinimalWalk(pages: Uint32Array[], rootPfn: number, sid: number, lo: number, hi: number): number {
  let p = pages[rootPfn]!;
  let i = (sid >>> BUS_SHIFT) << ROOT_CONTEXT_WORDS_SHIFT;
  if ((p[i]! & VTD_ROOT_CONTEXT_P) === 0) return -1;
  p = pages[next(p, i)]!;
  i = (sid & DEVFN_MASK) << ROOT_CONTEXT_WORDS_SHIFT;
  if ((p[i]! & VTD_ROOT_CONTEXT_P) === 0) return -1;
  p = pages[next(p, i)]!;
  i = ((hi >>> L4_HI_SHIFT) & INDEX_MASK) << ENTRY_WORDS_SHIFT;
  if ((p[i]! & VTD_PAGING_P) === 0) return -1;
  p = pages[next(p, i)]!;
  i = (((lo >>> L3_LO_SHIFT) | (hi << L3_HI_SHIFT)) & INDEX_MASK) << ENTRY_WORDS_SHIFT;
  if ((p[i]! & VTD_PAGING_P) === 0) return -1;
  p = pages[next(p, i)]!;
  i = ((lo >>> L2_SHIFT) & INDEX_MASK) << ENTRY_WORDS_SHIFT;
  if ((p[i]! & VTD_PAGING_P) === 0) return -1;
  p = pages[next(p, i)]!;
  i = ((lo >>> L1_SHIFT) & INDEX_MASK) << ENTRY_WORDS_SHIFT;
  if ((p[i]! & VTD_PAGING_P) === 0) return -1;
  return next(p, i);
}

/**
 * AMD-Vi: device table entry → four I/O page-table levels (the same 9-bit slices and entry size as VT-d's).
 * `dteWord` is the index of the DTE's first dword in its page. Returns the page frame number the IOVA maps to,
 * or -1 at a non-present entry.
 */
export function amdMinimalWalk(pages: Uint32Array[], dtePfn: number, dteWord: number, lo: number, hi: number): number {
  let p = pages[dtePfn]!;
  let i = dteWord;
  if ((p[i]! & AMD_P) === 0) return -1;
  p = pages[next(p, i)]!;
  i = ((hi >>> L4_HI_SHIFT) & INDEX_MASK) << ENTRY_WORDS_SHIFT;
  if ((p[i]! & AMD_P) === 0) return -1;
  p = pages[next(p, i)]!;
  i = (((lo >>> L3_LO_SHIFT) | (hi << L3_HI_SHIFT)) & INDEX_MASK) << ENTRY_WORDS_SHIFT;
  if ((p[i]! & AMD_P) === 0) return -1;
  p = pages[next(p, i)]!;
  i = ((lo >>> L2_SHIFT) & INDEX_MASK) << ENTRY_WORDS_SHIFT;
  if ((p[i]! & AMD_P) === 0) return -1;
  p = pages[next(p, i)]!;
  i = ((lo >>> L1_SHIFT) & INDEX_MASK) << ENTRY_WORDS_SHIFT;
  if ((p[i]! & AMD_P) === 0) return -1;
  return next(p, i);
}
