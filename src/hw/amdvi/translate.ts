/**
 * The AMD-Vi DMA translation walk (spec #48882 sections 2.2.2 and 2.2.3): a device table entry and the I/O
 * page tables it points to, read through a PhysReader so the same code serves the unit and memory-dump
 * forensics. No allocation on the hot path: results are left in a reusable WalkOut. Never throws: a failing
 * memory read becomes the hardware-error event the spec names.
 */
import type { PhysReader } from "../../core/memory.js";
import { getField } from "../../spec/amdvi/fields.js";
import {
  DTE_DWORDS,
  DTE_IR,
  DTE_IW,
  DTE_MODE,
  DTE_RESERVED_DW1,
  DTE_TV,
  DTE_V,
  MODE_RESERVED,
  MODE_TRANSLATION_DISABLED,
} from "../../spec/amdvi/dte.js";
import {
  DEV_TAB_HARDWARE_ERROR,
  EVF_PE,
  EVF_PR,
  EVF_RW,
  EVF_RZ,
  ILLEGAL_DEV_TABLE_ENTRY,
  IO_PAGE_FAULT,
  PAGE_TAB_HARDWARE_ERROR,
} from "../../spec/amdvi/events.js";
import { explicitPageShift, levelShift, NEXT_LEVEL_EXPLICIT, NEXT_LEVEL_PTE, PTE_RESERVED_HI } from "../../spec/amdvi/pte.js";
import { TWO32 } from "../../core/u64.js";


/** A reader that can hand out a page's dwords (PhysicalMemory): undefined for a page that reads as zero. */
interface PagedReader extends PhysReader {
  pageWords?(pfn: number): Uint32Array | undefined;
}

/** One page-table entry the walk read, for forensics. */
export interface WalkStep {
  level: number;
  addr: number;
  lo: number;
  hi: number;
}

export class WalkOut {
  /** 0 on success, else the event code (2.5). */
  event = 0;
  /** Event flags (2.5.3). */
  flags = 0;
  /** Translated address halves, page size (log2) and accumulated permissions. */
  outLo = 0;
  outHi = 0;
  shift = 12;
  read = false;
  write = false;
  /** True when the DTE let the request through untranslated (V=0, TV=0). */
  untranslated = false;
  /** Address of the failing structure for hardware errors. */
  errAddr = 0;
  /** Entries read, only when `trace` is set. */
  trace: WalkStep[] | null = null;
}

/** Reads the DTE of `devid` into `out` (8 dwords). Returns false on a memory error. */
export function readDte(mem: PhysReader, tableBase: number, devid: number, out: Uint32Array): boolean {
  const a = tableBase + devid * 32;
  try {
    for (let i = 0; i < DTE_DWORDS; i++) out[i] = mem.read32(a + i * 4);
    return true;
  } catch {
    return false;
  }
}

function fault(o: WalkOut, event: number, flags: number): number {
  o.event = event;
  o.flags = flags;
  return event;
}

/** Index bits of `level` in the IOVA (lo, hi), 9 bits (level 6 uses bits 63:57). */
function indexAt(lo: number, hi: number, level: number): number {
  const s = levelShift(level);
  if (s >= 32) return (hi >>> (s - 32)) & 0x1ff;
  if (s + 9 <= 32) return (lo >>> s) & 0x1ff;
  return ((lo >>> s) | (hi << (32 - s))) & 0x1ff;
}

/** True when IOVA bits at and above `bit` are all zero. */
function zeroFrom(lo: number, hi: number, bit: number): boolean {
  if (bit >= 64) return true;
  if (bit >= 32) return hi >>> (bit - 32) === 0;
  return hi === 0 && lo >>> bit === 0;
}

/**
 * Translates (lo, hi) for a device whose DTE is `dte`. `maxLevels` is the host page-table depth the unit
 * supports (EFR.HATS). Returns 0 or the event code; details in `o`.
 */
export function walkDte(mem: PhysReader, dte: Uint32Array, lo: number, hi: number, write: boolean, maxLevels: number, o: WalkOut): number {
  o.event = 0;
  o.flags = write ? EVF_RW : 0;
  o.untranslated = false;
  const d0 = dte[0] ?? 0;
  const d1 = dte[1] ?? 0;
  if (getField(dte, DTE_V) === 0 || getField(dte, DTE_TV) === 0) {
    // 2.2.2.1: V=0 or TV=0, the request passes untranslated.
    o.untranslated = true;
    return passThrough(o, lo, hi, true, true);
  }
  const mode = getField(dte, DTE_MODE);
  if ((d1 & DTE_RESERVED_DW1) !== 0 || mode === MODE_RESERVED || mode > maxLevels) {
    return fault(o, ILLEGAL_DEV_TABLE_ENTRY, o.flags | EVF_RZ);
  }
  let r = getField(dte, DTE_IR) === 1;
  let w = getField(dte, DTE_IW) === 1;
  if (mode === MODE_TRANSLATION_DISABLED) {
    if (write ? !w : !r) return fault(o, IO_PAGE_FAULT, o.flags | EVF_PE);
    return passThrough(o, lo, hi, r, w);
  }
  // Address bits above what the top level decodes must be zero (2.2.3).
  if (!zeroFrom(lo, hi, levelShift(mode) + 9)) return fault(o, IO_PAGE_FAULT, o.flags);
  let table = (d0 & 0xffff_f000) >>> 0;
  table += (d1 & 0x000f_ffff) * TWO32;
  let level = mode;
  // Memory that hands out whole pages (and cannot fail to read): each entry is two array loads.
  const paged = (mem as PagedReader).pageWords !== undefined;
  for (let guard = 0; guard < 7; guard++) {
    const index = indexAt(lo, hi, level);
    const addr = table + index * 8;
    let elo = 0;
    let ehi = 0;
    if (paged) {
      const words = (mem as PagedReader).pageWords!(Math.floor(table / 4096));
      if (words !== undefined) {
        elo = words[index << 1] ?? 0;
        ehi = words[(index << 1) | 1] ?? 0;
      }
    } else {
      try {
        elo = mem.read32(addr);
        ehi = mem.read32(addr + 4);
      } catch {
        o.errAddr = addr;
        return fault(o, PAGE_TAB_HARDWARE_ERROR, o.flags);
      }
    }
    if (o.trace !== null) o.trace.push({ level, addr, lo: elo, hi: ehi });
    if ((elo & 1) === 0) return fault(o, IO_PAGE_FAULT, o.flags);
    if ((ehi & PTE_RESERVED_HI) !== 0) return fault(o, IO_PAGE_FAULT, o.flags | EVF_PR | EVF_RZ);
    r = r && ((ehi >>> 29) & 1) === 1;
    w = w && ((ehi >>> 30) & 1) === 1;
    const next = (elo >>> 9) & 7;
    const entryAddr = ((elo & 0xffff_f000) >>> 0) + (ehi & 0x000f_ffff) * TWO32;
    if (next === NEXT_LEVEL_PTE || next === NEXT_LEVEL_EXPLICIT) {
      const shift = next === NEXT_LEVEL_PTE ? levelShift(level) : explicitPageShift(elo, ehi);
      if (shift === 0 || shift > levelShift(level) + 9 || (next === NEXT_LEVEL_EXPLICIT && level > 1 && shift <= levelShift(level - 1))) {
        return fault(o, IO_PAGE_FAULT, o.flags | EVF_PR | EVF_RZ);
      }
      if (write ? !w : !r) return fault(o, IO_PAGE_FAULT, o.flags | EVF_PR | EVF_PE);
      return leaf(o, entryAddr, shift, lo, hi, r, w);
    }
    if (next >= level) return fault(o, IO_PAGE_FAULT, o.flags | EVF_PR | EVF_RZ);
    // Skipped levels: their index bits must be zero (2.2.3).
    for (let l = level - 1; l > next; l--) {
      if (indexAt(lo, hi, l) !== 0) return fault(o, IO_PAGE_FAULT, o.flags | EVF_PR);
    }
    table = entryAddr;
    level = next;
  }
  return fault(o, IO_PAGE_FAULT, o.flags | EVF_RZ);
}

function passThrough(o: WalkOut, lo: number, hi: number, r: boolean, w: boolean): number {
  o.outLo = (lo & 0xffff_f000) >>> 0;
  o.outHi = hi >>> 0;
  o.shift = 12;
  o.read = r;
  o.write = w;
  return 0;
}

/** Page base + offset for a 2^shift page at `base` (a number below 2^52). */
function leaf(o: WalkOut, base: number, shift: number, lo: number, hi: number, r: boolean, w: boolean): number {
  let page4k: number;
  if (shift === 12) {
    page4k = Math.floor(base / 4096) * 4096;
  } else {
    const size = 2 ** shift;
    const pageBase = Math.floor(base / size) * size;
    const off = (hi % 2 ** Math.max(0, shift - 32)) * TWO32 * (shift > 32 ? 1 : 0) + (shift >= 32 ? lo >>> 0 : (lo >>> 0) % size);
    page4k = pageBase + Math.floor(off / 4096) * 4096;
  }
  const pageHi = Math.floor(page4k / TWO32);
  o.outLo = (page4k - pageHi * TWO32) >>> 0;
  o.outHi = pageHi >>> 0;
  o.shift = shift;
  o.read = r;
  o.write = w;
  return 0;
}

/** The device table is at `dtb` (register value); its size field gives (size + 1) * 4 KiB. */
export function dteInRange(devid: number, sizeField: number): boolean {
  return devid * 32 < (sizeField + 1) * 4096;
}

export { DEV_TAB_HARDWARE_ERROR };
