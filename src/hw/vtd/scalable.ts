/**
 * Scalable-mode translation structures and their walk (VT-d spec 3.4.3, formats 9.2 root entry, 9.4 context
 * entry, 9.5 PASID directory entry, 9.6 PASID entry; fault conditions 7.1.3 SRT/SCT/SPD/SPT): a request's
 * source id selects a scalable-mode context entry (lower or upper context table by devfn), whose PASID
 * directory and PASID table give the PASID entry of the request's PASID — or, for a request without PASID, of
 * the context entry's RID_PASID. The PASID entry selects the translation: first-stage, second-stage, nested or
 * pass-through (PGTT). Shared by the hardware model and forensics; never throws on table contents: every
 * failure is a scalable-mode fault reason returned as a number, 0 meaning success.
 */
import { ridBus, ridDevfn } from "../../core/pci.js";
import { TWO32 } from "../../core/u64.js";
import { fieldOfBig, wordOf, wordsField, type FieldSpec } from "../../spec/vtd/fields.js";
import { CAP, ECAP } from "../../spec/vtd/capability.js";
import { awLevels, awWidth, hawHiMask, sagawSupportsAw, TABLE_PTR_LO_MASK } from "../../spec/vtd/context.js";
import { firstStageReserved, fsLevels } from "../../spec/vtd/first-stage.js";
import {
  FSPM_5_LEVEL,
  PASID_DIR_ENTRY,
  PASID_DIR_ENTRY_SIZE,
  PASID_ENTRY,
  PASID_ENTRY_SIZE,
  pasidDirEntryReserved,
  pasidDirIndex,
  pasidLimit,
  pasidTableIndex,
  PGTT_FIRST_STAGE,
  PGTT_NESTED,
  PGTT_PASS_THROUGH,
  PGTT_SECOND_STAGE,
  SM_CONTEXT_ENTRY,
  SM_CONTEXT_ENTRY_SIZE,
  SM_ROOT_ENTRY,
  SM_ROOT_ENTRY_SIZE,
  smContextEntryOffset,
  smContextEntryReserved,
  smRootEntryReserved,
  smUsesUpperTable,
} from "../../spec/vtd/scalable.js";
import {
  VTD_FR_SM_CONTEXT_DTE,
  VTD_FR_SM_CONTEXT_ENTRY_P,
  VTD_FR_SM_CONTEXT_ENTRY_RSVD,
  VTD_FR_SM_CONTEXT_PASIDE,
  VTD_FR_SM_CONTEXT_TABLE_INV,
  VTD_FR_SM_PASID_DIR_INV,
  VTD_FR_SM_PASID_DIR_P,
  VTD_FR_SM_PASID_DIR_RSVD,
  VTD_FR_SM_PASID_ENTRY_INV,
  VTD_FR_SM_PASID_ENTRY_P,
  VTD_FR_SM_PASID_SRE,
  VTD_FR_SM_PASID_TABLE_INV,
  VTD_FR_SM_PASID_TOO_LARGE,
  VTD_FR_SM_ROOT_ENTRY_P,
  VTD_FR_SM_ROOT_ENTRY_RSVD,
  VTD_FR_SM_ROOT_TABLE_INV,
} from "../../spec/vtd/sm-faults.js";
import type { VtdConfig, WalkCaps } from "./config.js";
import type { FirstStageCaps } from "./first-stage.js";
import type { TableReader, WalkStep } from "./walk.js";

/** What the scalable-mode walk needs to know about the hardware, beyond the second-stage `WalkCaps`. */
export interface ScalableCaps {
  walk: WalkCaps;
  /** ECAP.FSTS, ECAP.SSTS, ECAP.NEST, ECAP.PT: the PGTT values the hardware supports. */
  firstStage: boolean;
  secondStage: boolean;
  nested: boolean;
  passThrough: boolean;
  /** ECAP.PASID: requests with a PASID are supported. */
  pasid: boolean;
  /** ECAP.SRS: supervisor (privileged) requests are supported. */
  supervisor: boolean;
  /** CAP.FS5LP: 5-level first-stage paging. */
  fiveLevel: boolean;
  fs: FirstStageCaps;
  rootRsvd: readonly number[];
  contextRsvd: readonly number[];
  dirRsvd: readonly number[];
}

export interface ScalableFeatures {
  firstStage: boolean;
  secondStage: boolean;
  nested: boolean;
  pasid: boolean;
  supervisor: boolean;
  fiveLevel: boolean;
  oneGig: boolean;
}

export function scalableCaps(walk: WalkCaps, f: ScalableFeatures): ScalableCaps {
  const haw = walk.hawBits;
  return {
    walk,
    firstStage: f.firstStage,
    secondStage: f.secondStage,
    nested: f.nested,
    passThrough: walk.passThrough,
    pasid: f.pasid,
    supervisor: f.supervisor,
    fiveLevel: f.fiveLevel,
    fs: { ...firstStageReserved(haw, f.oneGig), addrHiMask: hawHiMask(haw), oneGig: f.oneGig },
    rootRsvd: Object.freeze(smRootEntryReserved(haw)),
    contextRsvd: Object.freeze(smContextEntryReserved(haw)),
    dirRsvd: Object.freeze(pasidDirEntryReserved(haw)),
  };
}

/** Scalable caps of a unit built from `cfg` (second-stage and supervisor requests come with scalable mode). */
export function scalableCapsFromConfig(walk: WalkCaps, cfg: Pick<VtdConfig, "firstStage" | "nested" | "pasidBits" | "firstStage5Level" | "firstStage1G">): ScalableCaps {
  return scalableCaps(walk, {
    firstStage: cfg.firstStage,
    secondStage: true,
    nested: cfg.nested,
    pasid: cfg.pasidBits > 0,
    supervisor: true,
    fiveLevel: cfg.firstStage && cfg.firstStage5Level,
    oneGig: cfg.firstStage && cfg.firstStage1G,
  });
}

/** Scalable caps from CAP/ECAP register values (forensics, the doctor). */
export function scalableCapsFromRegisters(walk: WalkCaps, cap: bigint, ecap: bigint): ScalableCaps {
  return scalableCaps(walk, {
    firstStage: fieldOfBig(ecap, ECAP.FSTS) === 1,
    secondStage: fieldOfBig(ecap, ECAP.SSTS) === 1,
    nested: fieldOfBig(ecap, ECAP.NEST) === 1,
    pasid: fieldOfBig(ecap, ECAP.PASID) === 1,
    supervisor: fieldOfBig(ecap, ECAP.SRS) === 1,
    fiveLevel: fieldOfBig(cap, CAP.FS5LP) === 1,
    oneGig: fieldOfBig(cap, CAP.FS1GP) === 1,
  });
}

/** The PASID entry a request resolved to (reused between calls: copy what you keep). */
export class PasidOut {
  /** Any FPD on the way (context entry, PASID directory entry, PASID entry): qualified faults are not recorded. */
  fpd = false;
  /** The PASID used: the request's, or the context entry's RID_PASID. */
  pasid = 0;
  /** Context entry DTE. */
  dte = false;
  pgtt = 0;
  did = 0;
  /** Second stage: AW, levels, AGAW, table (halves). */
  aw = 0;
  ssLevels = 0;
  ssAgaw = 0;
  ssLo = 0;
  ssHi = 0;
  /** First stage: levels (4 or 5) and table (halves). */
  fsLevels = 4;
  fsLo = 0;
  fsHi = 0;
  sre = false;
  wpe = false;
}

const ROOT = new Uint32Array(SM_ROOT_ENTRY_SIZE / 4);
const CONTEXT = new Uint32Array(SM_CONTEXT_ENTRY_SIZE / 4);
const DIR = new Uint32Array(PASID_DIR_ENTRY_SIZE / 4);
const ENTRY = new Uint32Array(PASID_ENTRY_SIZE / 4);

function readable(reader: TableReader, addr: number, length: number): boolean {
  return reader.canRead === undefined || reader.canRead(addr, length);
}

function readWords(reader: TableReader, addr: number, into: Uint32Array): Uint32Array {
  for (let i = 0; i < into.length; i++) into[i] = reader.read32(addr + 4 * i) >>> 0;
  return into;
}

function hasBits(words: ArrayLike<number>, masks: readonly number[]): boolean {
  for (let i = 0; i < masks.length; i++) if (((words[i] ?? 0) & (masks[i] ?? 0)) !== 0) return true;
  return false;
}

const bit = (words: ArrayLike<number>, s: FieldSpec): boolean => wordsField(words, s) === 1;
/** A 4 KiB-aligned table pointer field (bits 63:12 of its quad), bits at and above HAW dropped. */
function ptr(words: ArrayLike<number>, s: FieldSpec, hiMask: number): number {
  const w = wordOf(s);
  return ((words[w + 1] ?? 0) & hiMask) * TWO32 + ((words[w] ?? 0) & TABLE_PTR_LO_MASK);
}

/**
 * Resolves (sid, pasid) to its PASID entry through the scalable-mode root table at rta (4 KiB aligned).
 * `pasid` < 0: a request without PASID (the context entry's RID_PASID is used). Returns 0 or the fault reason.
 */
export function lookupPasid(reader: TableReader, caps: ScalableCaps, rta: number, sid: number, pasid: number, out: PasidOut, trace?: WalkStep[]): number {
  out.fpd = false;
  const hiMask = caps.walk.addrHiMask;
  const bus = ridBus(sid);
  const devfn = ridDevfn(sid);
  const rootAddr = rta + bus * SM_ROOT_ENTRY_SIZE;
  if (!readable(reader, rootAddr, SM_ROOT_ENTRY_SIZE)) return VTD_FR_SM_ROOT_TABLE_INV;
  const r = readWords(reader, rootAddr, ROOT);
  trace?.push({ kind: "sm-root", level: 0, index: bus, address: rootAddr, words: Array.from(r) });
  const upper = smUsesUpperTable(devfn);
  if (!bit(r, upper ? SM_ROOT_ENTRY.UP : SM_ROOT_ENTRY.LP)) return VTD_FR_SM_ROOT_ENTRY_P;
  if (hasBits(r, caps.rootRsvd)) return VTD_FR_SM_ROOT_ENTRY_RSVD;
  const ctxAddr = ptr(r, upper ? SM_ROOT_ENTRY.UCTP : SM_ROOT_ENTRY.LCTP, hiMask) + smContextEntryOffset(devfn);
  if (!readable(reader, ctxAddr, SM_CONTEXT_ENTRY_SIZE)) return VTD_FR_SM_CONTEXT_TABLE_INV;
  const c = readWords(reader, ctxAddr, CONTEXT);
  trace?.push({ kind: "sm-context", level: 0, index: devfn, address: ctxAddr, words: Array.from(c) });
  out.fpd = bit(c, SM_CONTEXT_ENTRY.FPD);
  if (!bit(c, SM_CONTEXT_ENTRY.P)) return VTD_FR_SM_CONTEXT_ENTRY_P;
  if (hasBits(c, caps.contextRsvd)) return VTD_FR_SM_CONTEXT_ENTRY_RSVD;
  out.dte = bit(c, SM_CONTEXT_ENTRY.DTE);
  const pdts = wordsField(c, SM_CONTEXT_ENTRY.PDTS);
  if (pasid >= 0 && (!caps.pasid || !bit(c, SM_CONTEXT_ENTRY.PASIDE))) return VTD_FR_SM_CONTEXT_PASIDE;
  const p = pasid >= 0 ? pasid : wordsField(c, SM_CONTEXT_ENTRY.RID_PASID);
  out.pasid = p;
  if (p >= pasidLimit(pdts)) return VTD_FR_SM_PASID_TOO_LARGE;
  const dirAddr = ptr(c, SM_CONTEXT_ENTRY.PASIDDIRPTR, hiMask) + pasidDirIndex(p) * PASID_DIR_ENTRY_SIZE;
  if (!readable(reader, dirAddr, PASID_DIR_ENTRY_SIZE)) return VTD_FR_SM_PASID_DIR_INV;
  const d = readWords(reader, dirAddr, DIR);
  trace?.push({ kind: "pasid-dir", level: 0, index: pasidDirIndex(p), address: dirAddr, words: Array.from(d) });
  out.fpd ||= bit(d, PASID_DIR_ENTRY.FPD);
  if (!bit(d, PASID_DIR_ENTRY.P)) return VTD_FR_SM_PASID_DIR_P;
  if (hasBits(d, caps.dirRsvd)) return VTD_FR_SM_PASID_DIR_RSVD;
  const peAddr = ptr(d, PASID_DIR_ENTRY.SMPTBLPTR, hiMask) + pasidTableIndex(p) * PASID_ENTRY_SIZE;
  if (!readable(reader, peAddr, PASID_ENTRY_SIZE)) return VTD_FR_SM_PASID_TABLE_INV;
  const e = readWords(reader, peAddr, ENTRY);
  trace?.push({ kind: "pasid", level: 0, index: pasidTableIndex(p), address: peAddr, words: Array.from(e) });
  out.fpd ||= bit(e, PASID_ENTRY.FPD);
  if (!bit(e, PASID_ENTRY.P)) return VTD_FR_SM_PASID_ENTRY_P;
  return decodePasidEntryInto(caps, e, out);
}

/** Decodes a present PASID entry and checks what the hardware supports (SPT.4, 0x5B). */
function decodePasidEntryInto(caps: ScalableCaps, e: Uint32Array, out: PasidOut): number {
  const hiMask = caps.walk.addrHiMask;
  out.pgtt = wordsField(e, PASID_ENTRY.PGTT);
  out.aw = wordsField(e, PASID_ENTRY.AW);
  out.did = wordsField(e, PASID_ENTRY.DID);
  out.ssLevels = awLevels(out.aw);
  out.ssAgaw = awWidth(out.aw);
  const ss = ptr(e, PASID_ENTRY.SSPTPTR, hiMask);
  out.ssLo = ss % TWO32 >>> 0;
  out.ssHi = Math.floor(ss / TWO32) >>> 0;
  const fspm = wordsField(e, PASID_ENTRY.FSPM);
  out.fsLevels = fsLevels(fspm);
  const fs = ptr(e, PASID_ENTRY.FSPTPTR, hiMask);
  out.fsLo = fs % TWO32 >>> 0;
  out.fsHi = Math.floor(fs / TWO32) >>> 0;
  out.sre = bit(e, PASID_ENTRY.SRE);
  out.wpe = bit(e, PASID_ENTRY.WPE);
  const usesSs = out.pgtt === PGTT_SECOND_STAGE || out.pgtt === PGTT_NESTED;
  const usesFs = out.pgtt === PGTT_FIRST_STAGE || out.pgtt === PGTT_NESTED;
  const supported =
    (out.pgtt === PGTT_FIRST_STAGE && caps.firstStage) ||
    (out.pgtt === PGTT_SECOND_STAGE && caps.secondStage) ||
    (out.pgtt === PGTT_NESTED && caps.nested && caps.firstStage && caps.secondStage) ||
    (out.pgtt === PGTT_PASS_THROUGH && caps.passThrough);
  if (!supported) return VTD_FR_SM_PASID_ENTRY_INV;
  if (usesSs && !sagawSupportsAw(caps.walk.sagaw, out.aw)) return VTD_FR_SM_PASID_ENTRY_INV;
  if (usesFs && (fspm > FSPM_5_LEVEL || (fspm === FSPM_5_LEVEL && !caps.fiveLevel))) return VTD_FR_SM_PASID_ENTRY_INV;
  return 0;
}

/** Request checks that need the PASID entry: supervisor requests need SRE (and ECAP.SRS), translation requests DTE. */
export function checkRequest(caps: ScalableCaps, pe: PasidOut, supervisor: boolean, translationRequest: boolean): number {
  if (supervisor && (!caps.supervisor || !pe.sre)) return VTD_FR_SM_PASID_SRE;
  if (translationRequest && !pe.dte) return VTD_FR_SM_CONTEXT_DTE;
  return 0;
}
