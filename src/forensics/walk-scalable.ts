/**
 * VT-d forensics in scalable mode (VT-d spec 3.4.3, 9.2, 9.4–9.7), with the hardware model's own table code
 * (hw/vtd/scalable.ts, hw/vtd/first-stage.ts, hw/vtd/walk.ts):
 *   walkIovaScalable       one address of one device (and PASID): root, context, PASID directory and PASID
 *                          entries, then the second-stage, first-stage or nested walk the PASID entry selects;
 *   listMappingsScalable   every mapping of the PASID entry's second-stage or first-stage tables;
 *   walkFirstStageTable    one address through a bare first-stage table, as a PASID entry would name it.
 * Reports have the shape of the legacy walks' (walk.ts); nothing is written to the dump (no A/D updates).
 */
import { hex } from "../core/hex.js";
import { formatRequesterId } from "../core/pci.js";
import type { WalkCaps } from "../hw/vtd/walk.js";
import { FirstStageOut, walkFirstStage, type NestedTranslate } from "../hw/vtd/first-stage.js";
import { lookupPasid, PasidOut, scalableCaps, scalableCapsFromRegisters, type ScalableCaps } from "../hw/vtd/scalable.js";
import { smReasonOfSecondStage } from "../hw/vtd/sm-translate.js";
import { walkSecondLevel, WalkOut, type TableReader, type WalkStep } from "../hw/vtd/walk.js";
import { TWO32 } from "../core/u64.js";
import { faultReasonDescription, faultReasonName, VTD_FR_READ } from "../spec/vtd/faults.js";
import { joinHalves } from "../spec/vtd/fields.js";
import { levelShift, PAGE_SIZE_4K } from "../spec/vtd/paging.js";
import { PGTT_FIRST_STAGE, PGTT_NAMES, PGTT_NESTED, PGTT_PASS_THROUGH } from "../spec/vtd/scalable.js";
import { VTD_FR_SM_BEYOND_MGAW, VTD_FR_SM_NESTED_FS_BEYOND_MGAW, VTD_FR_SM_NESTED_FS_READ, VTD_FR_SM_NESTED_FS_TOP_READ } from "../spec/vtd/sm-faults.js";
import { secondStageRanges } from "./ranges.js";
import { decodeStep } from "./steps.js";
import type { ListOptions, ListReport, WalkIovaOptions, WalkReport } from "./reports.js";

/**
 * The scalable-mode features of the hardware the dump's tables were written for: from CAP/ECAP when given,
 * else every PGTT, PASIDs, supervisor requests, 5-level and 1 GiB first-stage paging (the most a table can use).
 */
export function forensicScalableCaps(walk: WalkCaps, regs: { cap?: bigint; ecap?: bigint } = {}): ScalableCaps {
  if (regs.cap !== undefined && regs.ecap !== undefined) return scalableCapsFromRegisters(walk, regs.cap, regs.ecap);
  return scalableCaps(walk, { firstStage: true, secondStage: true, nested: true, pasid: true, supervisor: true, fiveLevel: true, oneGig: true });
}

function faultReport(bdf: string, iova: bigint, reason: number, steps: WalkStep[], caps: WalkCaps, pasid?: number): WalkReport {
  return {
    result: "fault",
    bdf,
    iova: hex(iova),
    reason,
    reasonName: faultReasonName(reason),
    description: faultReasonDescription(reason),
    ...(pasid !== undefined ? { pasid } : {}),
    levels: steps.map((s) => decodeStep(s, caps)),
  };
}

/** Walks one address of one device (and PASID) through scalable-mode tables. Never throws on table contents. */
export function walkIovaScalable(reader: TableReader, o: WalkIovaOptions, rta: bigint): WalkReport {
  const caps = o.caps;
  const sm = o.scalable ?? forensicScalableCaps(caps);
  const iova = BigInt.asUintN(64, o.iova);
  const lo = Number(iova & 0xffffffffn);
  const hi = Number(iova >> 32n);
  const bdf = formatRequesterId(o.sid);
  const trace: WalkStep[] = [];
  const pe = new PasidOut();
  const r = lookupPasid(reader, sm, Number(rta), o.sid, o.pasid ?? -1, pe, trace);
  if (r !== 0) return faultReport(bdf, iova, r, trace, caps, o.pasid);
  const ok = (hpa: bigint, shift: number, read: boolean, write: boolean): WalkReport => ({
    result: "ok",
    bdf,
    iova: hex(iova),
    hpa: hex(hpa),
    pageSize: 2 ** shift,
    read,
    write,
    translationType: PGTT_NAMES[pe.pgtt] ?? "reserved",
    domainId: pe.did,
    pasid: pe.pasid,
    levels: trace.map((s) => decodeStep(s, caps)),
  });
  if (pe.pgtt === PGTT_PASS_THROUGH) return ok(iova, 12, true, true);
  const mark = trace.length;
  if (pe.pgtt === PGTT_FIRST_STAGE || pe.pgtt === PGTT_NESTED) {
    const out = new FirstStageOut();
    const nested = pe.pgtt === PGTT_NESTED ? nestedReader(reader, sm, pe, trace) : undefined;
    const f = walkFirstStage(reader, sm.fs, pe.fsLo, pe.fsHi, pe.fsLevels, lo, hi, { write: o.access === "write", supervisor: false, wpe: pe.wpe }, out, undefined, trace, nested);
    if (f !== 0) return faultReport(bdf, iova, f, trace, caps, pe.pasid);
    const shift = levelShift(out.level);
    let gpa = joinHalves(out.frameLo, out.frameHi) | (iova & ((1n << BigInt(shift)) - 1n));
    if (nested === undefined) return ok(gpa, shift, true, out.writable);
    const s = secondStage(reader, sm, pe, gpa, o.access, trace);
    if (typeof s === "number") return faultReport(bdf, iova, s, trace, caps, pe.pasid);
    gpa = s.hpa;
    return ok(gpa, Math.min(shift, s.shift), s.read, s.write && out.writable);
  }
  trace.length = mark;
  const s = secondStage(reader, sm, pe, iova, o.access, trace);
  if (typeof s === "number") return faultReport(bdf, iova, s, trace, caps, pe.pasid);
  return ok(s.hpa, s.shift, s.read, s.write);
}

/** The PASID entry's second-stage walk of `addr`; without an access to check, a write-only mapping counts. */
function secondStage(reader: TableReader, sm: ScalableCaps, pe: PasidOut, addr: bigint, access: "read" | "write" | undefined, trace: WalkStep[]): number | { hpa: bigint; shift: number; read: boolean; write: boolean } {
  const width = Math.min(sm.walk.mgawBits, pe.ssAgaw);
  if (addr >> BigInt(width) !== 0n) return VTD_FR_SM_BEYOND_MGAW;
  const lo = Number(addr & 0xffffffffn);
  const hi = Number(addr >> 32n);
  const out = new WalkOut();
  const mark = trace.length;
  const walk = (write: boolean): number => {
    trace.length = mark;
    return walkSecondLevel(reader, sm.walk, pe.ssLo, pe.ssHi, pe.ssLevels, pe.ssLevels, lo, hi, write, true, true, out, trace);
  };
  let r = walk(access === "write");
  if (access === undefined && r === VTD_FR_READ && !out.notPresent) r = walk(true);
  if (r !== 0) return smReasonOfSecondStage(r);
  const shift = levelShift(out.level);
  return { hpa: joinHalves(out.frameLo, out.frameHi) | (addr & ((1n << BigInt(shift)) - 1n)), shift, read: out.read, write: out.write };
}

/** Nested: first-stage table addresses (guest-physical) read through the second stage; its entries traced too. */
function nestedReader(reader: TableReader, sm: ScalableCaps, pe: PasidOut, trace: WalkStep[]): NestedTranslate {
  const out = new WalkOut();
  return (gLo, gHi, top, _write, host) => {
    const width = Math.min(sm.walk.mgawBits, pe.ssAgaw);
    if (width < 64 && gHi >>> (width - 32) !== 0) return VTD_FR_SM_NESTED_FS_BEYOND_MGAW;
    const r = walkSecondLevel(reader, sm.walk, pe.ssLo, pe.ssHi, pe.ssLevels, pe.ssLevels, gLo, gHi, false, true, true, out, trace);
    if (r === VTD_FR_READ) return top ? VTD_FR_SM_NESTED_FS_TOP_READ : VTD_FR_SM_NESTED_FS_READ;
    if (r !== 0) return smReasonOfSecondStage(r);
    const addr = out.frameHi * TWO32 + out.frameLo + (gLo & ((1 << levelShift(out.level)) - 1));
    host.lo = addr % TWO32 >>> 0;
    host.hi = Math.floor(addr / TWO32) >>> 0;
    return 0;
  };
}

/** Every mapping of the device's PASID entry (second-stage or first-stage tables), merged into ranges. */
export function listMappingsScalable(reader: TableReader, o: ListOptions, rta: bigint): ListReport {
  const caps = o.caps;
  const sm = o.scalable ?? forensicScalableCaps(caps);
  const trace: WalkStep[] = [];
  const pe = new PasidOut();
  const bdf = formatRequesterId(o.sid);
  const r = lookupPasid(reader, sm, Number(rta), o.sid, o.pasid ?? -1, pe, trace);
  if (r !== 0) return { result: "fault", bdf, reason: r, reasonName: faultReasonName(r), description: faultReasonDescription(r), levels: trace.map((s) => decodeStep(s, caps)) };
  const base = { bdf, domainId: pe.did, translationType: PGTT_NAMES[pe.pgtt] ?? "reserved" };
  if (pe.pgtt === PGTT_PASS_THROUGH) {
    return { result: "ok", ...base, addressWidth: caps.mgawBits, pagingLevels: 0, mappings: 0, ranges: [], truncated: false, entriesRead: 0 };
  }
  if (pe.pgtt === PGTT_FIRST_STAGE || pe.pgtt === PGTT_NESTED) {
    return {
      result: "fault",
      bdf,
      reason: 0,
      reasonName: "NOT_LISTED",
      description: `the PASID entry selects ${base.translationType} translation; --list reads second-stage tables only (walk single addresses with --iova)`,
      levels: trace.map((s) => decodeStep(s, caps)),
    };
  }
  const width = Math.min(pe.ssAgaw, caps.mgawBits);
  return { result: "ok", ...base, addressWidth: width, pagingLevels: pe.ssLevels, ...secondStageRanges(reader, caps, pe.ssLo, pe.ssHi, pe.ssLevels, 1n << BigInt(width), o) };
}

export interface FirstStageWalkOptions {
  /** The first-stage table's address (a PASID entry's FSPTPTR). */
  root: bigint;
  iova: bigint;
  /** 4 (default) or 5. */
  levels?: number;
  access?: "read" | "write";
  /** A supervisor (privileged) request: U/S is not required; writes honour R/W only with `wpe`. */
  supervisor?: boolean;
  wpe?: boolean;
  caps: WalkCaps;
  scalable?: ScalableCaps;
}

/** Walks one address through a bare first-stage table (no device, no PASID entry). Never throws on contents. */
export function walkFirstStageTable(reader: TableReader, o: FirstStageWalkOptions): WalkReport {
  const caps = o.caps;
  const sm = o.scalable ?? forensicScalableCaps(caps);
  const iova = BigInt.asUintN(64, o.iova);
  const trace: WalkStep[] = [];
  const out = new FirstStageOut();
  const root = (o.root / BigInt(PAGE_SIZE_4K)) * BigInt(PAGE_SIZE_4K);
  const levels = o.levels ?? 4;
  const req = { write: o.access === "write", supervisor: o.supervisor ?? false, wpe: o.wpe ?? false };
  const r = walkFirstStage(reader, sm.fs, Number(root & 0xffffffffn), Number(root >> 32n), levels, Number(iova & 0xffffffffn), Number(iova >> 32n), req, out, undefined, trace);
  if (r !== 0) return faultReport("", iova, r, trace, caps);
  const shift = levelShift(out.level);
  return {
    result: "ok",
    bdf: "",
    iova: hex(iova),
    hpa: hex(joinHalves(out.frameLo, out.frameHi) | (iova & ((1n << BigInt(shift)) - 1n))),
    pageSize: 2 ** shift,
    read: true,
    write: out.writable,
    translationType: `first-stage (${levels}-level)`,
    levels: trace.map((s) => decodeStep(s, caps)),
  };
}

