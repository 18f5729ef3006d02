/**
 * What the walk baselines read: a copy of every page of simulated memory that holds data, in an array indexed
 * by page frame number (pages missing from memory are one shared zero page). Page storage found without
 * hashing and read with integer index math: the fastest plain JavaScript walk of the same tables the model
 * walks, and nothing the model's memory does in between.
 */
import type { PhysicalMemory } from "../core/memory.js";

const PAGE = 4096;
/** The copy is dense up to the highest page: benchmark tables sit low in memory. */
const MAX_PAGES = 1 << 24;

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
    const zero = new Uint32Array(PAGE / 4);
    const pages = new Array<Uint32Array>(top).fill(zero);
    for (const pfn of pfns) {
      const bytes = mem.read(pfn * PAGE, PAGE);
      const words = new Uint32Array(PAGE / 4);
      const v = new DataView(bytes.buffer);
      for (let i = 0; i < words.length; i++) words[i] = v.getUint32(i * 4, true);
      pages[pfn] = words;
    }
    return new FlatPages(pages);
  }
}

/*
 * The walkers below are straight-line code on purpose: one statement per level, constant shifts, no checks
 * beyond the present bits. Entries' addresses are bits 51:12, so a next table's page frame number is
 * (lo >>> 12) + (hi & 0xfffff) * 2^20. Indexes are trusted (the benchmark checks the tables against the model
 * first), hence the non-null assertions.
 */

/**
 * VT-d legacy mode: root entry (bus) → context entry (devfn) → four second-level levels. Returns the page frame
 * number the IOVA (lo, hi) maps to, or -1 at a non-present entry.
 */
export function vtdMinimalWalk(pages: Uint32Array[], rootPfn: number, sid: number, lo: number, hi: number): number {
  let p = pages[rootPfn]!;
  let i = (sid >>> 8) << 2;
  let e = p[i]!;
  if ((e & 1) === 0) return -1;
  p = pages[(e >>> 12) + (p[i + 1]! & 0xfffff) * 0x100000]!;
  i = (sid & 0xff) << 2;
  e = p[i]!;
  if ((e & 1) === 0) return -1;
  p = pages[(e >>> 12) + (p[i + 1]! & 0xfffff) * 0x100000]!;
  i = ((hi >>> 7) & 511) << 1;
  e = p[i]!;
  if ((e & 3) === 0) return -1;
  p = pages[(e >>> 12) + (p[i + 1]! & 0xfffff) * 0x100000]!;
  i = (((hi << 2) | (lo >>> 30)) & 511) << 1;
  e = p[i]!;
  if ((e & 3) === 0) return -1;
  p = pages[(e >>> 12) + (p[i + 1]! & 0xfffff) * 0x100000]!;
  i = ((lo >>> 21) & 511) << 1;
  e = p[i]!;
  if ((e & 3) === 0) return -1;
  p = pages[(e >>> 12) + (p[i + 1]! & 0xfffff) * 0x100000]!;
  i = ((lo >>> 12) & 511) << 1;
  e = p[i]!;
  if ((e & 3) === 0) return -1;
  return (e >>> 12) + (p[i + 1]! & 0xfffff) * 0x100000;
}

/**
 * AMD-Vi: device table entry → four I/O page-table levels. `dteWord` is the index of the DTE's first dword in
 * its page. Returns the page frame number the IOVA maps to, or -1 at a non-present entry.
 */
export function amdMinimalWalk(pages: Uint32Array[], dtePfn: number, dteWord: number, lo: number, hi: number): number {
  let p = pages[dtePfn]!;
  let i = dteWord;
  let e = p[i]!;
  if ((e & 1) === 0) return -1;
  p = pages[(e >>> 12) + (p[i + 1]! & 0xfffff) * 0x100000]!;
  i = ((hi >>> 7) & 511) << 1;
  e = p[i]!;
  if ((e & 1) === 0) return -1;
  p = pages[(e >>> 12) + (p[i + 1]! & 0xfffff) * 0x100000]!;
  i = (((hi << 2) | (lo >>> 30)) & 511) << 1;
  e = p[i]!;
  if ((e & 1) === 0) return -1;
  p = pages[(e >>> 12) + (p[i + 1]! & 0xfffff) * 0x100000]!;
  i = ((lo >>> 21) & 511) << 1;
  e = p[i]!;
  if ((e & 1) === 0) return -1;
  p = pages[(e >>> 12) + (p[i + 1]! & 0xfffff) * 0x100000]!;
  i = ((lo >>> 12) & 511) << 1;
  e = p[i]!;
  if ((e & 1) === 0) return -1;
  return (e >>> 12) + (p[i + 1]! & 0xfffff) * 0x100000;
}
