/**
 * Legacy-mode translation structures and their walk (VT-d spec 3.4–3.7, formats 9.1 root entry, 9.3 context
 * entry, 9.8 second-level paging entries; fault conditions 7.1.3). The same code serves the hardware model
 * (over simulated memory) and forensics (over a memory dump): it reads through a `TableReader` and never throws
 * on table contents. Every failure is a fault reason (0x1–0xE) returned as a number, 0 meaning success.
 *
 * The seam for later modes: a request first resolves its source id to a `ContextOut` (legacy root/context
 * entries here; scalable mode adds PASID tables), then an address-space walker translates the address
 * (`walkSecondLevel` here; first-stage and nested walks come later behind the same `AddressSpaceWalker` shape).
 *
 * Check order at each second-level entry: present (R or W set; else fault 0x6 read / 0x5 write), reserved bits
 * (0xC), permission for this request (0x5 / 0x6), then leaf or next table. QEMU checks permission before
 * reserved bits, so an entry that both lacks the permission and has reserved bits set gives 0x5/0x6 there and
 * 0xC here; the spec reports reserved-bit faults for any present entry (7.1.3, LSL.2).
 */
import type { PhysReader } from "../../core/memory.js";
import { ridBus, ridDevfn } from "../../core/pci.js";
import { HI_DWORD_OFFSET, TWO32 } from "../../core/u64.js";
import type { WalkCaps } from "./config.js";
/** The hardware facts a walk reads (built in config.ts), for readers of this module. */
export type { WalkCaps };
import {
  awLevels,
  awWidth,
  contextEntryOffset,
  CTX_HI_AW_MASK,
  CTX_HI_DID_MASK,
  CTX_HI_DID_SHIFT,
  CTX_LO_FPD,
  CTX_LO_TT_MASK,
  CTX_LO_TT_SHIFT,
  ENTRY_P,
  rootEntryOffset,
  sagawSupportsAw,
  TABLE_PTR_LO_MASK,
  TT_DEVICE_TLB,
  TT_PASS_THROUGH,
  TT_RESERVED,
  CONTEXT_ENTRY_SIZE,
  ROOT_ENTRY_SIZE,
} from "../../spec/vtd/context.js";
import {
  VTD_FR_CONTEXT_ENTRY_INV,
  VTD_FR_CONTEXT_ENTRY_P,
  VTD_FR_CONTEXT_ENTRY_RSVD,
  VTD_FR_CONTEXT_TABLE_INV,
  VTD_FR_INTERRUPT_ADDR,
  VTD_FR_PAGING_ENTRY_INV,
  VTD_FR_PAGING_ENTRY_RSVD,
  VTD_FR_READ,
  VTD_FR_ROOT_ENTRY_P,
  VTD_FR_ROOT_ENTRY_RSVD,
  VTD_FR_ROOT_TABLE_INV,
  VTD_FR_WRITE,
} from "../../spec/vtd/faults.js";
import {
  leafFrameLoMask,
  levelShift,
  PAGE_SHIFT_4K,
  PAGE_SIZE_4K,
  PTES_PER_TABLE,
  SL_ENTRY_SIZE,
  SL_LEVEL_BITS,
  SL_PRESENT,
  SL_PS,
  SL_R,
  SL_W,
} from "../../spec/vtd/paging.js";
import { SLLPS_1G, SLLPS_2M } from "../../spec/vtd/capability.js";
import { overlapsInterruptRange } from "../../spec/msi.js";
import { bits } from "../../core/u64.js";

// Per-level tables and module-local copies of what the walk reads at every level (see unit.ts on imported
// bindings): the address shift of each level (1..5) and the frame mask of a leaf there.
const LEVEL_SHIFT = Uint8Array.from([0, 1, 2, 3, 4, 5], (lv) => (lv === 0 ? 0 : levelShift(lv)));
const LEAF_FRAME_MASK = Uint32Array.from([0, 1, 2, 3, 4, 5], (lv) => (lv === 0 ? 0 : leafFrameLoMask(lv)));
const INDEX_BITS = SL_LEVEL_BITS;
const PRESENT = SL_PRESENT;
const PS = SL_PS;
const LARGE_2M = SLLPS_2M;
const LARGE_1G = SLLPS_1G;
const overlapsInterrupts = overlapsInterruptRange;
/** Dwords per paging entry, the offset of its high dword in dwords, and the page frame weight of a high half. */
const ENTRY_WORDS = SL_ENTRY_SIZE / 4;
const HI_WORD = HI_DWORD_OFFSET / 4;
const PAGE_SHIFT = PAGE_SHIFT_4K;
const PFNS_PER_HI = TWO32 / PAGE_SIZE_4K;

/** A level-2 or level-3 entry with PS maps a page when CAP.SLLPS allows that size. */
function isLarge(lv: number, largePages: number): boolean {
  return (lv === 2 && (largePages & LARGE_2M) !== 0) || (lv === 3 && (largePages & LARGE_1G) !== 0);
}

/**
 * Physical memory as the walk sees it. `canRead`, when present, says whether `length` bytes at `addr` can be
 * read; when it says no, the walk reports the spec's access-error fault (0x8, 0x9, 0x3 or 0x7) instead of
 * reading. Without it every address reads (untouched simulated memory reads as zero).
 */
export interface TableReader extends PhysReader {
  canRead?(addr: number, length: number): boolean;
  /**
   * The fast path of a reader that can read everywhere (no `canRead`): the 1024 little-endian dwords of 4 KiB
   * page `pfn`, or undefined when the page reads as zero. Read only. Walks index entries in it directly.
   */
  pageWords?(pfn: number): Uint32Array | undefined;
}

/** One entry the walk read, for people (forensics) and tests. */
export interface WalkStep {
  kind: "root" | "context" | "paging" | "sm-root" | "sm-context" | "pasid-dir" | "pasid" | "first-stage";
  /** Paging level (1 = PTE … 5 = PML5E) of second-stage ("paging") and first-stage entries; 0 otherwise. */
  level: number;
  /** Index of the entry in its table (bus, devfn, PASID directory or table index, or 9-bit address slice). */
  index: number;
  /** Physical address of the entry. */
  address: number;
  /** The entry's dwords, low first (2 for paging and PASID directory entries, 4 for root and legacy context
   * entries, 8 for scalable-mode context entries, 16 for PASID entries). */
  words: number[];
}

/** A decoded legacy context, filled by `lookupContext` (reused between calls: copy what you keep). */
export class ContextOut {
  /** FPD of the context entry (valid once the context entry was read, present or not). */
  fpd = false;
  /** True once the context entry was read (so `fpd` is meaningful). */
  contextRead = false;
  /** Translation type (TT, 9.3). */
  tt = 0;
  /** AW field; the table has `levels` = AW + 2 levels and covers `agaw` = 30 + 9 * AW address bits. */
  aw = 0;
  levels = 0;
  agaw = 0;
  /** Domain id. */
  did = 0;
  /** Second-level page-table pointer (SLPTPTR), halves. */
  ptLo = 0;
  ptHi = 0;
}

/** The leaf of a successful walk (reused between calls). */
export class WalkOut {
  /** Page frame (page-aligned output address), halves. */
  frameLo = 0;
  frameHi = 0;
  /** Level of the leaf: 1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB. */
  level = 1;
  /** Permissions accumulated over every level. */
  read = false;
  write = false;
  /** After a 0x5/0x6 fault: true when the walk stopped at a not-present entry (R = W = 0). */
  notPresent = false;
}

/** Receives the non-leaf entries a walk passes, for a paging-structure cache. */
export interface PagingStructureSink {
  /** The level-`level` entry covering iova points to the next table (nextLo, nextHi) with permissions so far. */
  fill(level: number, iovaLo: number, iovaHi: number, nextLo: number, nextHi: number, read: boolean, write: boolean): void;
}

/** The seam for address-space walkers (second-level now; first-stage and nested later). */
export interface AddressSpaceWalker {
  walk(reader: TableReader, caps: WalkCaps, ctx: ContextOut, iovaLo: number, iovaHi: number, write: boolean, out: WalkOut, trace?: WalkStep[]): number;
}

/** Byte address from a 4 KiB-aligned table base (halves, below 2^52) plus an offset below 4096. */
function entryAddress(baseLo: number, baseHi: number, offset: number): number {
  return baseHi * TWO32 + (baseLo >>> 0) + offset;
}

function readable(reader: TableReader, addr: number, length: number): boolean {
  return reader.canRead === undefined || reader.canRead(addr, length);
}

/**
 * Resolves a source id to its context through the root table at (rtaLo, rtaHi) (already 4 KiB-aligned and
 * within HAW). Returns 0, or the fault reason: 0x8, 0x1, 0xA (root), 0x9, 0x2, 0xB, 0x3 (context).
 */
export function lookupContext(reader: TableReader, caps: WalkCaps, rtaLo: number, rtaHi: number, sid: number, out: ContextOut, trace?: WalkStep[]): number {
  out.contextRead = false;
  out.fpd = false;
  const bus = ridBus(sid);
  const devfn = ridDevfn(sid);
  const rootAddr = entryAddress(rtaLo & TABLE_PTR_LO_MASK, rtaHi, rootEntryOffset(bus));
  if (!readable(reader, rootAddr, ROOT_ENTRY_SIZE)) return VTD_FR_ROOT_TABLE_INV;
  const r = read4(reader, rootAddr, ROOT_WORDS);
  if (trace !== undefined) trace.push({ kind: "root", level: 0, index: bus, address: rootAddr, words: Array.from(r) });
  const r0 = r[0] ?? 0;
  if ((r0 & ENTRY_P) === 0) return VTD_FR_ROOT_ENTRY_P;
  // 9.1: bits 11:1, CTP bits above HAW, and the whole upper quad are reserved in legacy mode.
  if (hasBits(r, caps.rootRsvd)) return VTD_FR_ROOT_ENTRY_RSVD;
  const ctxAddr = entryAddress(r0 & TABLE_PTR_LO_MASK, r[1] ?? 0, contextEntryOffset(devfn));
  if (!readable(reader, ctxAddr, CONTEXT_ENTRY_SIZE)) return VTD_FR_CONTEXT_TABLE_INV;
  const c = read4(reader, ctxAddr, CONTEXT_WORDS);
  if (trace !== undefined) trace.push({ kind: "context", level: 0, index: devfn, address: ctxAddr, words: Array.from(c) });
  const c0 = c[0] ?? 0;
  const c1 = c[1] ?? 0;
  const c2 = c[2] ?? 0;
  // 9.3: FPD is evaluated whether or not the entry is present.
  out.contextRead = true;
  out.fpd = (c0 & CTX_LO_FPD) !== 0;
  if ((c0 & ENTRY_P) === 0) return VTD_FR_CONTEXT_ENTRY_P;
  // 9.3: bits 11:4, SLPTPTR above HAW, bit 71, domain-id bits beyond CAP.ND and bits 127:88 are reserved.
  if (hasBits(c, caps.contextRsvd)) return VTD_FR_CONTEXT_ENTRY_RSVD;
  const aw = c2 & CTX_HI_AW_MASK;
  const tt = (c0 & CTX_LO_TT_MASK) >>> CTX_LO_TT_SHIFT;
  out.aw = aw;
  out.levels = awLevels(aw);
  out.agaw = awWidth(aw);
  out.tt = tt;
  out.did = (c2 & CTX_HI_DID_MASK) >>> CTX_HI_DID_SHIFT;
  out.ptLo = (c0 & TABLE_PTR_LO_MASK) >>> 0;
  out.ptHi = c1;
  // LCT.4: an address width the hardware does not support (CAP.SAGAW), or a translation type it does not.
  if (!sagawSupportsAw(caps.sagaw, aw)) return VTD_FR_CONTEXT_ENTRY_INV;
  if (tt === TT_RESERVED || (tt === TT_DEVICE_TLB && !caps.deviceTlb) || (tt === TT_PASS_THROUGH && !caps.passThrough)) {
    return VTD_FR_CONTEXT_ENTRY_INV;
  }
  return 0;
}

/** Scratch words of the root and context entry being read (reused: the miss path allocates nothing). */
const ROOT_WORDS = new Uint32Array(ROOT_ENTRY_SIZE / 4);
const CONTEXT_WORDS = new Uint32Array(CONTEXT_ENTRY_SIZE / 4);

/** Reads a 128-bit entry into `into`, dword by dword. */
function read4(reader: TableReader, addr: number, into: Uint32Array): Uint32Array {
  for (let i = 0; i < into.length; i++) into[i] = reader.read32(addr + 4 * i) >>> 0;
  return into;
}

/** True when any word has a bit of the matching mask set. */
function hasBits(words: ArrayLike<number>, masks: readonly number[]): boolean {
  for (let i = 0; i < masks.length; i++) if (((words[i] ?? 0) & (masks[i] ?? 0)) !== 0) return true;
  return false;
}

/**
 * True when (lo, hi) is below 2^X with X = min(MGAW + 1, context AGAW): the LGN.1 address-width check (fault
 * 0x4 when false).
 */
export function withinAddressWidth(caps: WalkCaps, ctx: ContextOut, lo: number, hi: number): boolean {
  const width = Math.min(caps.mgawBits, ctx.agaw);
  if (width >= 64) return true;
  if (width >= 32) return hi >>> (width - 32) === 0;
  return hi === 0 && lo >>> width === 0;
}

/** log2 of the page size mapped by a leaf at `level`. */
export function leafShift(level: number): number {
  return levelShift(level);
}

/**
 * Walks second-level tables from the table at (tableLo, tableHi) of `level` down to a leaf, for a read or a
 * write of iova. `topLevel` is the level the context entry's pointer refers to (access errors there are 0x3,
 * below it 0x7). `read0`/`write0` are the permissions accumulated above `level` (true, true from the top).
 * Returns 0 with the leaf in `out`, or the fault reason (0x3, 0x5, 0x6, 0x7, 0xC, 0xE).
 */
export function walkSecondLevel(
  reader: TableReader,
  caps: WalkCaps,
  tableLo: number,
  tableHi: number,
  level: number,
  topLevel: number,
  iovaLo: number,
  iovaHi: number,
  write: boolean,
  read0: boolean,
  write0: boolean,
  out: WalkOut,
  trace?: WalkStep[],
  psc?: PagingStructureSink,
): number {
  let tLo = tableLo >>> 0;
  let tHi = tableHi >>> 0;
  let r = read0;
  let w = write0;
  const need = write ? SL_W : SL_R;
  const denied = write ? VTD_FR_WRITE : VTD_FR_READ;
  // Memory that reads everywhere hands out whole pages: each entry is then two array loads.
  const paged = reader.pageWords !== undefined && reader.canRead === undefined;
  const rsvdLo = caps.rsvdLo;
  const rsvdHi = caps.rsvdHi;
  const hiMask = caps.addrHiMask;
  out.notPresent = false;
  for (let lv = level; lv >= 1; lv--) {
    const index = bits(iovaLo, iovaHi, LEVEL_SHIFT[lv] ?? 0, INDEX_BITS);
    let e0 = 0;
    let e1 = 0;
    if (paged) {
      const words = reader.pageWords!(tHi * PFNS_PER_HI + (tLo >>> PAGE_SHIFT));
      if (words !== undefined) {
        e0 = words[index * ENTRY_WORDS] ?? 0;
        e1 = words[index * ENTRY_WORDS + HI_WORD] ?? 0;
      }
    } else {
      const addr = entryAddress(tLo, tHi, index * SL_ENTRY_SIZE);
      if (!readable(reader, addr, SL_ENTRY_SIZE)) return lv === topLevel ? VTD_FR_CONTEXT_ENTRY_INV : VTD_FR_PAGING_ENTRY_INV;
      e0 = reader.read32(addr) >>> 0;
      e1 = reader.read32(addr + HI_DWORD_OFFSET) >>> 0;
    }
    if (trace !== undefined) trace.push({ kind: "paging", level: lv, index, address: entryAddress(tLo, tHi, index * SL_ENTRY_SIZE), words: [e0, e1] });
    // Not present: neither R nor W (9.8). The request faults as lacking the permission it needed.
    if ((e0 & PRESENT) === 0) {
      out.notPresent = true;
      return denied;
    }
    const large = (e0 & PS) !== 0 && isLarge(lv, caps.largePages);
    if (large) {
      if ((e0 & (caps.rsvdLargeLo[lv] ?? 0)) !== 0 || (e1 & (caps.rsvdLargeHi[lv] ?? 0)) !== 0) return VTD_FR_PAGING_ENTRY_RSVD;
    } else if ((e0 & (rsvdLo[lv] ?? 0xffffffff)) !== 0 || (e1 & (rsvdHi[lv] ?? 0xffffffff)) !== 0) {
      return VTD_FR_PAGING_ENTRY_RSVD;
    }
    r = r && (e0 & SL_R) !== 0;
    w = w && (e0 & SL_W) !== 0;
    if ((e0 & need) === 0) return denied;
    const nextHi = (e1 & hiMask) >>> 0;
    if (lv === 1 || large) {
      const frameLo = (e0 & (LEAF_FRAME_MASK[lv] ?? 0)) >>> 0;
      if (nextHi === 0 && overlapsInterrupts(frameLo, nextHi, LEVEL_SHIFT[lv] ?? 0)) return VTD_FR_INTERRUPT_ADDR;
      out.frameLo = frameLo;
      out.frameHi = nextHi;
      out.level = lv;
      out.read = r;
      out.write = w;
      return 0;
    }
    tLo = (e0 & TABLE_PTR_LO_MASK) >>> 0;
    tHi = nextHi;
    if (psc !== undefined) psc.fill(lv, iovaLo, iovaHi, tLo, tHi, r, w);
  }
  // Not reachable: level 1 always ends the loop. Treat a bad starting level as an invalid context.
  return VTD_FR_CONTEXT_ENTRY_INV;
}

/** The legacy second-level walker behind the `AddressSpaceWalker` seam. */
export const secondLevelWalker: AddressSpaceWalker = {
  walk(reader, caps, ctx, iovaLo, iovaHi, write, out, trace) {
    return walkSecondLevel(reader, caps, ctx.ptLo, ctx.ptHi & caps.addrHiMask, ctx.levels, ctx.levels, iovaLo, iovaHi, write, true, true, out, trace);
  },
};

/** One leaf mapping found by `forEachMapping`. */
export interface Mapping {
  iova: bigint;
  hpa: bigint;
  /** log2 of the page size: 12, 21 or 30. */
  shift: number;
  read: boolean;
  write: boolean;
}

export interface MappingScan {
  /** Leaf mappings visited. */
  leaves: number;
  /** Entries read. */
  entriesRead: number;
  /** True when the scan stopped at `maxLeaves` or `maxTables`. */
  truncated: boolean;
}

/**
 * Visits every leaf mapping of a second-level table tree, in iova order, skipping entries that are not present,
 * have reserved bits set, cannot be read, or map into the interrupt range (exactly the ones a request would
 * fault on). Permissions are those a request sees (AND over the levels). Bounded: tables that point back into
 * themselves cannot make it run for ever.
 */
export function forEachMapping(
  reader: TableReader,
  caps: WalkCaps,
  tableLo: number,
  tableHi: number,
  levels: number,
  visit: (m: Mapping) => void,
  limits: { maxLeaves?: number; maxTables?: number } = {},
): MappingScan {
  const maxLeaves = limits.maxLeaves ?? 1_000_000;
  const maxTables = limits.maxTables ?? 100_000;
  const scan: MappingScan = { leaves: 0, entriesRead: 0, truncated: false };
  let tables = 0;
  const recurse = (tLo: number, tHi: number, lv: number, base: bigint, r: boolean, w: boolean): void => {
    if (scan.truncated) return;
    if (++tables > maxTables) {
      scan.truncated = true;
      return;
    }
    const shift = levelShift(lv);
    for (let index = 0; index < PTES_PER_TABLE; index++) {
      const addr = entryAddress(tLo, tHi, index * SL_ENTRY_SIZE);
      if (!readable(reader, addr, SL_ENTRY_SIZE)) continue;
      scan.entriesRead++;
      const e0 = reader.read32(addr) >>> 0;
      const e1 = reader.read32(addr + HI_DWORD_OFFSET) >>> 0;
      if ((e0 & PRESENT) === 0) continue;
      const large = (e0 & PS) !== 0 && isLarge(lv, caps.largePages);
      const rl = large ? (caps.rsvdLargeLo[lv] ?? 0) : (caps.rsvdLo[lv] ?? 0xffffffff);
      const rh = large ? (caps.rsvdLargeHi[lv] ?? 0) : (caps.rsvdHi[lv] ?? 0xffffffff);
      if ((e0 & rl) !== 0 || (e1 & rh) !== 0) continue;
      const rr = r && (e0 & SL_R) !== 0;
      const ww = w && (e0 & SL_W) !== 0;
      const iova = base + (BigInt(index) << BigInt(shift));
      const nextHi = (e1 & caps.addrHiMask) >>> 0;
      if (lv === 1 || large) {
        const frameLo = (e0 & (LEAF_FRAME_MASK[lv] ?? 0)) >>> 0;
        if (overlapsInterrupts(frameLo, nextHi, shift)) continue;
        if (!rr && !ww) continue;
        visit({ iova, hpa: (BigInt(nextHi) << 32n) | BigInt(frameLo), shift, read: rr, write: ww });
        if (++scan.leaves >= maxLeaves) {
          scan.truncated = true;
          return;
        }
      } else {
        recurse((e0 & TABLE_PTR_LO_MASK) >>> 0, nextHi, lv - 1, iova, rr, ww);
        if (scan.truncated) return;
      }
    }
  };
  recurse(tableLo >>> 0, tableHi >>> 0, levels, 0n, true, true);
  return scan;
}
