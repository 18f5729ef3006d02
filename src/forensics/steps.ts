/**
 * The entries a VT-d walk read (hw/vtd/walk.ts, hw/vtd/scalable.ts, hw/vtd/first-stage.ts), decoded for people
 * and JSON: legacy root and context entries, scalable-mode root and context entries, PASID directory and PASID
 * entries, second-stage and first-stage paging entries. Addresses and 64-bit values are "0x…" strings.
 */
import { hex } from "../core/hex.js";
import type { WalkCaps } from "../hw/vtd/walk.js";
import type { WalkStep } from "../hw/vtd/walk.js";
import { awWidth, decodeContextEntry, decodeRootEntry, TABLE_PTR_LO_MASK } from "../spec/vtd/context.js";
import { joinHalves } from "../spec/vtd/fields.js";
import { FS_A, FS_D, FS_LEVEL_NAMES, FS_P, FS_PS, FS_RW, FS_US } from "../spec/vtd/first-stage.js";
import { isLargePage, leafFrameLoMask, levelShift, SL_LEVEL_NAMES, SL_PRESENT, SL_PS, SL_R, SL_W } from "../spec/vtd/paging.js";
import { decodePasidDirEntry, decodePasidEntry, decodeSmContextEntry, decodeSmRootEntry, PGTT_NAMES, PGTT_PASS_THROUGH } from "../spec/vtd/scalable.js";
import { fsLevels } from "../spec/vtd/first-stage.js";

/** One entry of the walk, decoded. */
export interface LevelReport {
  /** "root entry", "context entry", "scalable-mode root entry", "scalable-mode context entry", "PASID directory
   * entry", "PASID entry", or the paging entry name (SL-PML4E … SL-PTE, FS-PML4E … FS-PTE). */
  table: string;
  /** Paging level (5 … 1); absent for root and context entries. */
  level?: number;
  /** Index in its table: bus (root), devfn (context), or the 9-bit address slice. */
  index: number;
  /** Physical address of the entry. */
  address: string;
  /** The entry (paging entries), or its low quad (root and context entries). */
  value: string;
  /** Upper quad of root and context entries. */
  valueHi?: string;
  present: boolean;
  /** Paging entries: the R and W bits of this entry. */
  read?: boolean;
  write?: boolean;
  /** Leaf entries: the page size in bytes. */
  pageSize?: number;
  /** Address this entry points to: the next table (scalable-mode root entries: the lower context table), or the
   * page frame of a leaf. */
  next?: string;
  /** Context entries. */
  fpd?: boolean;
  translationType?: string;
  addressWidth?: number;
  domainId?: number;
  /** Scalable-mode context entries: PASID enable, the RID_PASID, the PASID directory size in entries. */
  pasidEnabled?: boolean;
  /** Scalable-mode root entries: the upper context table (devfn 128–255), when present. */
  nextUpper?: string;
  ridPasid?: number;
  pasidDirEntries?: number;
  /** PASID entries: first-stage paging levels and table. */
  firstStageLevels?: number;
  firstStageTable?: string;
  /** First-stage entries: U/S, accessed and dirty. */
  user?: boolean;
  accessed?: boolean;
  dirty?: boolean;
}

export const TT_NAMES = ["multi-level", "device-tlb", "pass-through", "reserved"] as const;

export function hex64(lo: number, hi: number): string {
  return hex(joinHalves(lo, hi));
}

/** Decodes one step of a walk for people and JSON. */
export function decodeStep(step: WalkStep, caps: WalkCaps): LevelReport {
  const w = step.words;
  const w0 = w[0] ?? 0;
  const w1 = w[1] ?? 0;
  const w2 = w[2] ?? 0;
  const w3 = w[3] ?? 0;
  const address = hex(step.address);
  if (step.kind !== "root" && step.kind !== "context" && step.kind !== "paging") return decodeScalableStep(step, caps);
  if (step.kind === "root") {
    const e = decodeRootEntry(w);
    return { table: "root entry", index: step.index, address, value: hex64(w0, w1), valueHi: hex64(w2, w3), present: e.present, next: hex64(w0 & TABLE_PTR_LO_MASK, w1) };
  }
  if (step.kind === "context") {
    const e = decodeContextEntry(w);
    return {
      table: "context entry",
      index: step.index,
      address,
      value: hex64(w0, w1),
      valueHi: hex64(w2, w3),
      present: e.present,
      fpd: e.fpd,
      translationType: TT_NAMES[e.tt] ?? "reserved",
      addressWidth: awWidth(e.aw),
      domainId: e.did,
      next: hex64(w0 & TABLE_PTR_LO_MASK, w1),
    };
  }
  const lv = step.level;
  const present = (w0 & SL_PRESENT) !== 0;
  const ps = (w0 & SL_PS) !== 0 && isLargePage(lv, caps.largePages);
  const leaf = lv === 1 || ps;
  const frameMask = leaf ? leafFrameLoMask(lv) : TABLE_PTR_LO_MASK;
  const r: LevelReport = {
    table: SL_LEVEL_NAMES[lv] ?? `level-${lv}`,
    level: lv,
    index: step.index,
    address,
    value: hex64(w0, w1),
    present,
    read: (w0 & SL_R) !== 0,
    write: (w0 & SL_W) !== 0,
  };
  if (present) {
    r.next = hex64(w0 & frameMask, w1 & caps.addrHiMask);
    if (leaf) r.pageSize = 2 ** levelShift(lv);
  }
  return r;
}


/** Scalable-mode root and context entries, PASID directory and PASID entries, first-stage entries. */
function decodeScalableStep(step: WalkStep, caps: WalkCaps): LevelReport {
  const w = step.words;
  const base = { index: step.index, address: hex(step.address), value: hex64(w[0] ?? 0, w[1] ?? 0) };
  switch (step.kind) {
    case "sm-root": {
      const e = decodeSmRootEntry(w);
      return { table: "scalable-mode root entry", ...base, valueHi: hex64(w[2] ?? 0, w[3] ?? 0), present: e.lowerPresent || e.upperPresent, next: hex(e.lowerTable), ...(e.upperPresent ? { nextUpper: hex(e.upperTable) } : {}) };
    }
    case "sm-context": {
      const e = decodeSmContextEntry(w);
      return {
        table: "scalable-mode context entry",
        ...base,
        valueHi: hex64(w[2] ?? 0, w[3] ?? 0),
        present: e.present,
        fpd: e.fpd,
        pasidEnabled: e.paside,
        ridPasid: e.ridPasid,
        pasidDirEntries: 2 ** (e.pdts + 7),
        next: hex(e.pasidDir),
      };
    }
    case "pasid-dir": {
      const e = decodePasidDirEntry(w);
      return { table: "PASID directory entry", ...base, present: e.present, fpd: e.fpd, next: hex(e.table) };
    }
    case "pasid": {
      const e = decodePasidEntry(w);
      const r: LevelReport = { table: "PASID entry", ...base, valueHi: hex64(w[2] ?? 0, w[3] ?? 0), present: e.present, fpd: e.fpd, translationType: PGTT_NAMES[e.pgtt] ?? `reserved PGTT ${e.pgtt}`, domainId: e.did };
      if (e.pgtt === 2 || e.pgtt === 3) Object.assign(r, { addressWidth: awWidth(e.aw), next: hex(e.ssptptr) });
      if (e.pgtt === 1 || e.pgtt === 3) Object.assign(r, { firstStageLevels: fsLevels(e.fspm), firstStageTable: hex(e.fsptptr) });
      if (e.pgtt === PGTT_PASS_THROUGH) delete r.next;
      return r;
    }
    default:
      return decodeFirstStage(step, caps);
  }
}

function decodeFirstStage(step: WalkStep, caps: WalkCaps): LevelReport {
  const [w0 = 0, w1 = 0] = step.words;
  const lv = step.level;
  const present = (w0 & FS_P) !== 0;
  const leaf = lv === 1 || ((lv === 2 || lv === 3) && (w0 & FS_PS) !== 0);
  const r: LevelReport = {
    table: FS_LEVEL_NAMES[lv] ?? `level-${lv}`,
    level: lv,
    index: step.index,
    address: hex(step.address),
    value: hex64(w0, w1),
    present,
    read: present,
    write: (w0 & FS_RW) !== 0,
    user: (w0 & FS_US) !== 0,
    accessed: (w0 & FS_A) !== 0,
  };
  if (leaf) r.dirty = (w0 & FS_D) !== 0;
  if (present) {
    r.next = hex64(w0 & (leaf ? leafFrameLoMask(lv) : TABLE_PTR_LO_MASK), w1 & caps.addrHiMask);
    if (leaf) r.pageSize = 2 ** levelShift(lv);
  }
  return r;
}
