/**
 * The first-stage walk (VT-d spec 3.6, formats 9.7; fault conditions 7.1.3 SFS/SGN): the processor's 4- or
 * 5-level paging format, as a scalable-mode PASID entry with PGTT first-stage or nested names it. Used by the
 * hardware model (with A/D updates written back) and by forensics (read only). Never throws on table contents.
 *
 * Order of checks (3.6.1, 3.6.2): the input address must be canonical (0x80); at each level the entry must be
 * readable (0x73 at the top, 0x70 below), present (0x71) and free of reserved bits (0x72). Permissions are
 * accumulated over all levels: a user request (no privilege) needs U/S = 1 everywhere (0x81); a write needs
 * R/W = 1 everywhere, except a supervisor write with WPE = 0 (0x85). XD only matters to execute requests, which
 * DMA reads and writes are not. When the translation succeeds, A is set in every entry used and D in the leaf
 * of a write (3.6.2); with `nested`, every table address is a guest-physical address translated by the second
 * stage first (3.8), and an A/D update needs the second stage to allow the write (0x77).
 */
import { bits, HI_DWORD_OFFSET, TWO32 } from "../../core/u64.js";
import { FS_A, FS_D, FS_P, FS_PS, FS_RW, FS_US, isCanonical, type FirstStageReserved } from "../../spec/vtd/first-stage.js";
import { leafFrameLoMask, levelShift, SL_ENTRY_SIZE, SL_LEVEL_BITS } from "../../spec/vtd/paging.js";
import { TABLE_PTR_LO_MASK } from "../../spec/vtd/context.js";
import {
  VTD_FR_SM_FS_ENTRY_INV,
  VTD_FR_SM_FS_ENTRY_P,
  VTD_FR_SM_FS_ENTRY_RSVD,
  VTD_FR_SM_FS_PML4_INV,
  VTD_FR_SM_INTERRUPT_ADDR,
  VTD_FR_SM_NESTED_FS_WRITE,
  VTD_FR_SM_NON_CANONICAL,
  VTD_FR_SM_US,
  VTD_FR_SM_WRITE,
} from "../../spec/vtd/sm-faults.js";
import { overlapsInterruptRange } from "../../spec/msi.js";
import type { TableReader, WalkStep } from "./walk.js";

/** What a first-stage walk needs to know about the hardware. */
export interface FirstStageCaps extends FirstStageReserved {
  /** Mask of the address bits of a table pointer or frame in an entry's high dword (bits HAW-1:32). */
  addrHiMask: number;
  /** CAP.FS1GP: PS at level 3 maps a 1 GiB page. */
  oneGig: boolean;
}

/** The request as the first stage sees it. */
export interface FirstStageRequest {
  write: boolean;
  /** Supervisor request (PCIe privileged mode requested). */
  supervisor: boolean;
  /** PASID entry WPE: supervisor writes honour R/W. */
  wpe: boolean;
}

/**
 * The nested seam: translates the guest-physical address of a first-stage table (gpaLo, gpaHi) for a read,
 * or for a write when `write` (an A/D update). Returns 0 with the host address in `out`, or a fault reason.
 */
export type NestedTranslate = (gpaLo: number, gpaHi: number, top: boolean, write: boolean, out: { lo: number; hi: number }) => number;

/** Writes dwords back (A/D updates). */
export interface DwordWriter {
  write32(addr: number, value: number): void;
}

/** The leaf of a successful first-stage walk (reused between calls). */
export class FirstStageOut {
  /** Output page frame (page-aligned; guest-physical when nested), halves. */
  frameLo = 0;
  frameHi = 0;
  /** Leaf level: 1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB. */
  level = 1;
  /** R/W and U/S accumulated over every level. */
  writable = false;
  user = false;
  /** D is set in the leaf (a cached translation may serve writes without another walk). */
  dirty = false;
}

const ENTRY_HI = HI_DWORD_OFFSET;
/** Per level (1..5) of the walk in progress: the entry's host address and low dword, its table's address. */
const USED = new Float64Array(6);
const USED_LO = new Uint32Array(6);
const TABLE_LO = new Uint32Array(6);
const TABLE_HI = new Uint32Array(6);

function readable(reader: TableReader, addr: number, length: number): boolean {
  return reader.canRead === undefined || reader.canRead(addr, length);
}

/**
 * Walks first-stage tables from the table at (tableLo, tableHi) with `levels` levels (4 or 5) for the address
 * (lo, hi). Returns 0 with the leaf in `out`, or a scalable-mode fault reason. `writer` (hardware model) gets
 * the A/D updates; without it (forensics) nothing is written.
 */
export function walkFirstStage(
  reader: TableReader,
  caps: FirstStageCaps,
  tableLo: number,
  tableHi: number,
  levels: number,
  lo: number,
  hi: number,
  req: FirstStageRequest,
  out: FirstStageOut,
  writer?: DwordWriter,
  trace?: WalkStep[],
  nested?: NestedTranslate,
): number {
  if (!isCanonical(hi | 0, levels)) return VTD_FR_SM_NON_CANONICAL;
  let tLo = (tableLo & TABLE_PTR_LO_MASK) >>> 0;
  let tHi = tableHi >>> 0;
  let rw = true;
  let us = true;
  const host = { lo: 0, hi: 0 };
  for (let lv = levels; lv >= 1; lv--) {
    const top = lv === levels;
    if (nested !== undefined) {
      const r = nested(tLo, tHi, top, false, host);
      if (r !== 0) return r;
    } else {
      host.lo = tLo;
      host.hi = tHi;
    }
    const index = bits(lo, hi, levelShift(lv), SL_LEVEL_BITS);
    const addr = host.hi * TWO32 + host.lo + index * SL_ENTRY_SIZE;
    if (!readable(reader, addr, SL_ENTRY_SIZE)) return top ? VTD_FR_SM_FS_PML4_INV : VTD_FR_SM_FS_ENTRY_INV;
    const e0 = reader.read32(addr) >>> 0;
    const e1 = reader.read32(addr + ENTRY_HI) >>> 0;
    trace?.push({ kind: "first-stage", level: lv, index, address: addr, words: [e0, e1] });
    if ((e0 & FS_P) === 0) return VTD_FR_SM_FS_ENTRY_P;
    const large = (lv === 2 || lv === 3) && (e0 & FS_PS) !== 0 && ((caps.rsvdLo[lv] ?? 0) & FS_PS) === 0;
    const rl = large ? (caps.rsvdLargeLo[lv] ?? 0) : (caps.rsvdLo[lv] ?? 0);
    const rh = large ? (caps.rsvdLargeHi[lv] ?? 0) : (caps.rsvdHi[lv] ?? 0);
    if ((e0 & rl) !== 0 || (e1 & rh) !== 0) return VTD_FR_SM_FS_ENTRY_RSVD;
    rw = rw && (e0 & FS_RW) !== 0;
    us = us && (e0 & FS_US) !== 0;
    USED[lv] = addr;
    USED_LO[lv] = e0;
    TABLE_LO[lv] = tLo;
    TABLE_HI[lv] = tHi;
    const nextHi = (e1 & caps.addrHiMask) >>> 0;
    if (lv === 1 || large) {
      const shift = levelShift(lv);
      const frameLo = (e0 & leafFrameLoMask(lv)) >>> 0;
      if (!req.supervisor && !us) return VTD_FR_SM_US;
      if (req.write && !rw && (!req.supervisor || req.wpe)) return VTD_FR_SM_WRITE;
      if (nested === undefined && nextHi === 0 && overlapsInterruptRange(frameLo, nextHi, shift)) return VTD_FR_SM_INTERRUPT_ADDR;
      const ad = setAccessed(writer, levels, lv, req.write, nested, host);
      if (ad !== 0) return ad;
      out.frameLo = frameLo;
      out.frameHi = nextHi;
      out.level = lv;
      out.writable = rw;
      out.user = us;
      out.dirty = req.write || (e0 & FS_D) !== 0;
      return 0;
    }
    tLo = (e0 & TABLE_PTR_LO_MASK) >>> 0;
    tHi = nextHi;
  }
  return VTD_FR_SM_FS_ENTRY_INV;
}

/**
 * Sets A in the entries used (levels down to `leaf`) and D in the leaf for a write (3.6.2). In nested mode the
 * second stage must allow writing each updated entry's table page (0x77 otherwise).
 */
function setAccessed(writer: DwordWriter | undefined, levels: number, leaf: number, write: boolean, nested: NestedTranslate | undefined, host: { lo: number; hi: number }): number {
  if (writer === undefined) return 0;
  for (let lv = levels; lv >= leaf; lv--) {
    const e0 = USED_LO[lv] ?? 0;
    const want = (e0 | FS_A | (lv === leaf && write ? FS_D : 0)) >>> 0;
    if (want === e0) continue;
    if (nested !== undefined && nested(TABLE_LO[lv] ?? 0, TABLE_HI[lv] ?? 0, lv === levels, true, host) !== 0) return VTD_FR_SM_NESTED_FS_WRITE;
    writer.write32(USED[lv] ?? 0, want);
  }
  return 0;
}
