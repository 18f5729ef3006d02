/**
 * Scalable-mode translation structures (VT-d spec 3.4.3, 9.2, 9.4, 9.5, 9.6): the scalable-mode root entry with
 * a lower and an upper context table (devfn 0–127 and 128–255), the 256-bit scalable-mode context entry naming
 * a PASID directory, the PASID directory entry, and the 512-bit PASID table entry that selects first-stage,
 * second-stage, nested or pass-through translation (PGTT) for one PASID. All are handled as little-endian
 * 32-bit words. A request without a PASID uses the context entry's RID_PASID (3.4.3).
 */
import { encodeWords, field as f, uncoveredWords, wordsField } from "./fields.js";
import { hawHiMask } from "./context.js";
import { PAGE_SHIFT_4K } from "./paging.js";

/** Scalable-mode root entry (9.2): LCTP serves devfn 0–127, UCTP devfn 128–255. */
export const SM_ROOT_ENTRY = Object.freeze({
  LP: f("LP", 0, 1, "9.2"),
  LCTP: f("LCTP", 12, 52, "9.2"),
  UP: f("UP", 64, 1, "9.2"),
  UCTP: f("UCTP", 76, 52, "9.2"),
});

/** Scalable-mode context entry (9.4), 256 bits; bits 255:85 are reserved. */
export const SM_CONTEXT_ENTRY = Object.freeze({
  P: f("P", 0, 1, "9.4"),
  FPD: f("FPD", 1, 1, "9.4"),
  /** Device-TLB enable: translation requests allowed. */
  DTE: f("DTE", 2, 1, "9.4"),
  /** PASID enable: requests with a PASID allowed. */
  PASIDE: f("PASIDE", 3, 1, "9.4"),
  /** Page request enable. */
  PRE: f("PRE", 4, 1, "9.4"),
  /** PASID directory size: 2^(PDTS + 7) entries. */
  PDTS: f("PDTS", 9, 3, "9.4"),
  /** Bits HAW-1:12 of the PASID directory's address. */
  PASIDDIRPTR: f("PASIDDIRPTR", 12, 52, "9.4"),
  /** The PASID used for requests without a PASID. */
  RID_PASID: f("RID_PASID", 64, 20, "9.4"),
  RID_PRIV: f("RID_PRIV", 84, 1, "9.4"),
});

/** Scalable-mode PASID directory entry (9.5), 64 bits. */
export const PASID_DIR_ENTRY = Object.freeze({
  P: f("P", 0, 1, "9.5"),
  FPD: f("FPD", 1, 1, "9.5"),
  /** Bits HAW-1:12 of the PASID table's address. */
  SMPTBLPTR: f("SMPTBLPTR", 12, 52, "9.5"),
});

/** Scalable-mode PASID table entry (9.6), 512 bits. */
export const PASID_ENTRY = Object.freeze({
  P: f("P", 0, 1, "9.6"),
  FPD: f("FPD", 1, 1, "9.6"),
  /** Second-stage address width, encoded as the context entry's AW (9.3). */
  AW: f("AW", 2, 3, "9.6"),
  /** PASID granular translation type (PGTT_*). */
  PGTT: f("PGTT", 6, 3, "9.6"),
  /** Second-stage accessed/dirty enable. */
  SSADE: f("SSADE", 9, 1, "9.6"),
  /** Bits HAW-1:12 of the second-stage page table. */
  SSPTPTR: f("SSPTPTR", 12, 52, "9.6"),
  DID: f("DID", 64, 16, "9.6"),
  /** Page-walk snoop. */
  PWSNP: f("PWSNP", 87, 1, "9.6"),
  /** Page snoop. */
  PGSNP: f("PGSNP", 88, 1, "9.6"),
  /** Supervisor request enable: requests with privilege (PR = 1) allowed. */
  SRE: f("SRE", 128, 1, "9.6"),
  /** Execute request enable. */
  ERE: f("ERE", 129, 1, "9.6"),
  /** First-stage paging mode: 0 = 4-level, 1 = 5-level. */
  FSPM: f("FSPM", 130, 2, "9.6"),
  /** Write protect enable: supervisor writes honour R/W. */
  WPE: f("WPE", 132, 1, "9.6"),
  /** No-execute enable: XD is honoured. */
  NXE: f("NXE", 133, 1, "9.6"),
  SMEP: f("SMEP", 134, 1, "9.6"),
  /** Extended accessed flag enable. */
  EAFE: f("EAFE", 135, 1, "9.6"),
  /** Bits HAW-1:12 of the first-stage page table (the CPU's CR3 format). */
  FSPTPTR: f("FSPTPTR", 140, 52, "9.6"),
});

/** PASID entry PGTT encodings (9.6); 0, 5, 6 and 7 are reserved. */
export const PGTT_FIRST_STAGE = 1;
export const PGTT_SECOND_STAGE = 2;
export const PGTT_NESTED = 3;
export const PGTT_PASS_THROUGH = 4;
export const PGTT_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: "first-stage",
  2: "second-stage",
  3: "nested",
  4: "pass-through",
});

/** First-stage paging modes (PASID entry FSPM, 9.6). */
export const FSPM_4_LEVEL = 0;
export const FSPM_5_LEVEL = 1;

/** Entry sizes and table geometry (9.2, 9.4–9.6). */
export const SM_ROOT_ENTRY_SIZE = 16;
export const SM_CONTEXT_ENTRY_SIZE = 32;
/** A 4 KiB scalable-mode context table holds 128 entries: devfn 0–127 (lower) or 128–255 (upper). */
export const SM_CONTEXT_ENTRIES = 128;
export const PASID_DIR_ENTRY_SIZE = 8;
export const PASID_ENTRY_SIZE = 64;
/** PASID bits 5:0 index the PASID table (64 entries of 64 bytes), bits 19:6 the directory. */
export const PASID_TABLE_BITS = 6;
export const PASID_TABLE_ENTRIES = 2 ** PASID_TABLE_BITS;
export const PASID_BITS = SM_CONTEXT_ENTRY.RID_PASID.width;
export const PASID_MAX = 2 ** PASID_BITS;
/** Linux's RID_PASID for DMA without a PASID (PASID_RID2PASID in 6.1). */
export const RID_PASID_DEFAULT = 0;
/**
 * Linux's domain id for first-stage and pass-through PASID entries (FLPT_DEFAULT_DID): 6.2.3.1 asks for ids
 * apart from those of second-stage and nested entries, so iommu_init_domains reserves it in scalable mode.
 */
export const FLPT_DEFAULT_DID = 1;

/** Byte offset of devfn's context entry within the (lower or upper) context table, and which table holds it. */
export function smContextEntryOffset(devfn: number): number {
  return (devfn % SM_CONTEXT_ENTRIES) * SM_CONTEXT_ENTRY_SIZE;
}

export function smUsesUpperTable(devfn: number): boolean {
  return devfn >= SM_CONTEXT_ENTRIES;
}

/** PASID directory index (PASID bits 19:6) and PASID table index (bits 5:0). */
export function pasidDirIndex(pasid: number): number {
  return Math.floor(pasid / PASID_TABLE_ENTRIES);
}

export function pasidTableIndex(pasid: number): number {
  return pasid % PASID_TABLE_ENTRIES;
}

/** Directory entries a context entry's PDTS allows: 2^(PDTS + 7) (9.4). */
export function pasidDirEntries(pdts: number): number {
  return 2 ** (pdts + 7);
}

/** The largest PASID plus one a context entry's PDTS covers. */
export function pasidLimit(pdts: number): number {
  return Math.min(PASID_MAX, pasidDirEntries(pdts) * PASID_TABLE_ENTRIES);
}

// ---- Reserved bits (as word masks) ----

/** Reserved bits of a scalable-mode root entry (9.2): bits 11:1, 75:65, pointers above HAW. */
export function smRootEntryReserved(haw: number): [number, number, number, number] {
  const [w0 = 0, w1 = 0, w2 = 0, w3 = 0] = uncoveredWords(128, SM_ROOT_ENTRY);
  const above = ~hawHiMask(haw) >>> 0;
  return [w0, (w1 | above) >>> 0, w2, (w3 | above) >>> 0];
}

/** Reserved bits of a scalable-mode context entry (9.4): bits 8:5, the pointer above HAW, bits 255:85. */
export function smContextEntryReserved(haw: number): number[] {
  const w = uncoveredWords(256, SM_CONTEXT_ENTRY);
  w[1] = ((w[1] ?? 0) | ~hawHiMask(haw)) >>> 0;
  return w;
}

/** Reserved bits of a PASID directory entry (9.5): bits 11:2 and the pointer above HAW. */
export function pasidDirEntryReserved(haw: number): [number, number] {
  const [w0 = 0, w1 = 0] = uncoveredWords(64, PASID_DIR_ENTRY);
  return [w0, (w1 | ~hawHiMask(haw)) >>> 0];
}

// ---- Encode / decode ----

export interface SmRootEntryFields {
  lowerPresent: boolean;
  lowerTable: number;
  upperPresent: boolean;
  upperTable: number;
}

export interface SmContextEntryFields {
  present: boolean;
  fpd: boolean;
  dte: boolean;
  paside: boolean;
  pre: boolean;
  pdts: number;
  pasidDir: number;
  ridPasid: number;
  ridPriv: boolean;
}

export interface PasidEntryFields {
  present: boolean;
  fpd: boolean;
  aw: number;
  pgtt: number;
  ssade: boolean;
  /** Second-stage table address (4 KiB aligned). */
  ssptptr: number;
  did: number;
  pwsnp: boolean;
  pgsnp: boolean;
  sre: boolean;
  ere: boolean;
  fspm: number;
  wpe: boolean;
  nxe: boolean;
  smep: boolean;
  eafe: boolean;
  /** First-stage table address (4 KiB aligned). */
  fsptptr: number;
}

const page = (addr: number): number => Math.floor(addr / 2 ** PAGE_SHIFT_4K);
const addrOf = (pfn: number): number => pfn * 2 ** PAGE_SHIFT_4K;
const flag = (words: ArrayLike<number>, s: Parameters<typeof wordsField>[1]): boolean => wordsField(words, s) === 1;

export function encodeSmRootEntry(e: Partial<SmRootEntryFields>): number[] {
  return encodeWords(128, SM_ROOT_ENTRY, { LP: e.lowerPresent ?? false, LCTP: page(e.lowerTable ?? 0), UP: e.upperPresent ?? false, UCTP: page(e.upperTable ?? 0) });
}

export function decodeSmRootEntry(w: ArrayLike<number>): SmRootEntryFields {
  return {
    lowerPresent: flag(w, SM_ROOT_ENTRY.LP),
    lowerTable: addrOf(wordsField(w, SM_ROOT_ENTRY.LCTP)),
    upperPresent: flag(w, SM_ROOT_ENTRY.UP),
    upperTable: addrOf(wordsField(w, SM_ROOT_ENTRY.UCTP)),
  };
}

export function encodeSmContextEntry(e: Partial<SmContextEntryFields>): number[] {
  return encodeWords(256, SM_CONTEXT_ENTRY, {
    P: e.present ?? false,
    FPD: e.fpd ?? false,
    DTE: e.dte ?? false,
    PASIDE: e.paside ?? false,
    PRE: e.pre ?? false,
    PDTS: e.pdts ?? 0,
    PASIDDIRPTR: page(e.pasidDir ?? 0),
    RID_PASID: e.ridPasid ?? RID_PASID_DEFAULT,
    RID_PRIV: e.ridPriv ?? false,
  });
}

export function decodeSmContextEntry(w: ArrayLike<number>): SmContextEntryFields {
  const c = SM_CONTEXT_ENTRY;
  return {
    present: flag(w, c.P),
    fpd: flag(w, c.FPD),
    dte: flag(w, c.DTE),
    paside: flag(w, c.PASIDE),
    pre: flag(w, c.PRE),
    pdts: wordsField(w, c.PDTS),
    pasidDir: addrOf(wordsField(w, c.PASIDDIRPTR)),
    ridPasid: wordsField(w, c.RID_PASID),
    ridPriv: flag(w, c.RID_PRIV),
  };
}

export function encodePasidDirEntry(e: { present: boolean; fpd?: boolean; table: number }): number[] {
  return encodeWords(64, PASID_DIR_ENTRY, { P: e.present, FPD: e.fpd ?? false, SMPTBLPTR: page(e.table) });
}

export function decodePasidDirEntry(w: ArrayLike<number>): { present: boolean; fpd: boolean; table: number } {
  return { present: flag(w, PASID_DIR_ENTRY.P), fpd: flag(w, PASID_DIR_ENTRY.FPD), table: addrOf(wordsField(w, PASID_DIR_ENTRY.SMPTBLPTR)) };
}

export function encodePasidEntry(e: Partial<PasidEntryFields>): number[] {
  const p = PASID_ENTRY;
  return encodeWords(512, p, {
    P: e.present ?? false,
    FPD: e.fpd ?? false,
    AW: e.aw ?? 0,
    PGTT: e.pgtt ?? 0,
    SSADE: e.ssade ?? false,
    SSPTPTR: page(e.ssptptr ?? 0),
    DID: e.did ?? 0,
    PWSNP: e.pwsnp ?? false,
    PGSNP: e.pgsnp ?? false,
    SRE: e.sre ?? false,
    ERE: e.ere ?? false,
    FSPM: e.fspm ?? 0,
    WPE: e.wpe ?? false,
    NXE: e.nxe ?? false,
    SMEP: e.smep ?? false,
    EAFE: e.eafe ?? false,
    FSPTPTR: page(e.fsptptr ?? 0),
  });
}

export function decodePasidEntry(w: ArrayLike<number>): PasidEntryFields {
  const p = PASID_ENTRY;
  return {
    present: flag(w, p.P),
    fpd: flag(w, p.FPD),
    aw: wordsField(w, p.AW),
    pgtt: wordsField(w, p.PGTT),
    ssade: flag(w, p.SSADE),
    ssptptr: addrOf(wordsField(w, p.SSPTPTR)),
    did: wordsField(w, p.DID),
    pwsnp: flag(w, p.PWSNP),
    pgsnp: flag(w, p.PGSNP),
    sre: flag(w, p.SRE),
    ere: flag(w, p.ERE),
    fspm: wordsField(w, p.FSPM),
    wpe: flag(w, p.WPE),
    nxe: flag(w, p.NXE),
    smep: flag(w, p.SMEP),
    eafe: flag(w, p.EAFE),
    fsptptr: addrOf(wordsField(w, p.FSPTPTR)),
  };
}
