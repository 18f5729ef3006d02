/**
 * Legacy-mode translation structures that select a domain (VT-d spec 3.4.2–3.4.3): the root entry (9.1), one per
 * bus, pointing to a context table, and the context entry (9.3), one per device and function, giving the domain
 * id, the translation type and the second-level page table. Both are 128 bits, handled as four little-endian
 * 32-bit words. Every bit that is not a field below is reserved (context entry bits 70:67 are ignored, IGN).
 */
import { CAP } from "./capability.js";
import { encodeWords, field as f, shiftOf, uncoveredWords, wordMask, wordsField } from "./fields.js";
import { PAGE_SHIFT_4K, SL_LEVEL_BITS } from "./paging.js";

/** Root entry (9.1). */
export const ROOT_ENTRY = Object.freeze({
  P: f("P", 0, 1, "9.1"),
  /** Context-table pointer: bits HAW-1:12 of the context table's address. */
  CTP: f("CTP", 12, 52, "9.1"),
});

/** Context entry (9.3). */
export const CONTEXT_ENTRY = Object.freeze({
  P: f("P", 0, 1, "9.3"),
  FPD: f("FPD", 1, 1, "9.3"),
  TT: f("TT", 2, 2, "9.3"),
  /** Second-level page-table pointer: bits HAW-1:12 of the top table's address. */
  SLPTPTR: f("SLPTPTR", 12, 52, "9.3"),
  AW: f("AW", 64, 3, "9.3"),
  IGN: f("IGN", 67, 4, "9.3"),
  DID: f("DID", 72, 16, "9.3"),
});

/** Bytes per root or context entry, and entries per (4 KiB) root or context table. */
export const ROOT_ENTRY_SIZE = 16;
export const CONTEXT_ENTRY_SIZE = 16;
export const ROOT_ENTRIES = 256;
export const CONTEXT_ENTRIES = 256;

/** Context-entry Translation Type (9.3). */
export const TT_MULTI_LEVEL = 0; // untranslated requests translated through second-level tables
export const TT_DEVICE_TLB = 1; // as 00, plus translation requests from device-TLBs (ECAP.DT)
export const TT_PASS_THROUGH = 2; // untranslated requests pass through (ECAP.PT)
export const TT_RESERVED = 3;

/** Context-entry AW encodings (9.3): 001b 39-bit (3-level), 010b 48-bit (4-level), 011b 57-bit (5-level). */
export const AW_39 = 1;
export const AW_48 = 2;
export const AW_57 = 3;

/** Context-entry AW (9.3): the table has AW + 2 levels and covers 30 + 9 * AW address bits (AGAW). */
export function awLevels(aw: number): number {
  return aw + 2;
}

export function awWidth(aw: number): number {
  return PAGE_SHIFT_4K + SL_LEVEL_BITS * awLevels(aw);
}

/** The AW value of a table with `levels` levels (3, 4 or 5). */
export function awForLevels(levels: number): number {
  return levels - 2;
}

/** True when CAP.SAGAW supports the context entry's AW: SAGAW bit AW is set (LCT.4 fault otherwise). */
export function sagawSupportsAw(sagaw: number, aw: number): boolean {
  return aw < CAP.SAGAW.width && ((sagaw >>> aw) & 1) === 1;
}

/** Byte offset of a bus's root entry in the root table, and of a devfn's context entry in its context table. */
export function rootEntryOffset(bus: number): number {
  return bus * ROOT_ENTRY_SIZE;
}

export function contextEntryOffset(devfn: number): number {
  return devfn * CONTEXT_ENTRY_SIZE;
}

// ---- Derived masks for the table walk (one AND per test) ----

export const ENTRY_P = wordMask(CONTEXT_ENTRY.P);
export const CTX_LO_FPD = wordMask(CONTEXT_ENTRY.FPD);
export const CTX_LO_TT_SHIFT = shiftOf(CONTEXT_ENTRY.TT);
export const CTX_LO_TT_MASK = wordMask(CONTEXT_ENTRY.TT);
export const CTX_HI_AW_MASK = wordMask(CONTEXT_ENTRY.AW);
export const CTX_HI_DID_SHIFT = shiftOf(CONTEXT_ENTRY.DID);
export const CTX_HI_DID_MASK = wordMask(CONTEXT_ENTRY.DID);
/** The address bits of a table pointer in the low dword (bits 31:12). */
export const TABLE_PTR_LO_MASK = wordMask(ROOT_ENTRY.CTP);

/** Bits HAW-1:32 of an address, as a mask of its high dword. */
export function hawHiMask(haw: number): number {
  return haw <= 32 ? 0 : haw >= 64 ? 0xffffffff : (0xffffffff >>> (64 - haw)) >>> 0;
}

/** Reserved bits of a present root entry (9.1), as word masks: bits 11:1, CTP above HAW, bits 127:64. */
export function rootEntryReserved(haw: number): [number, number, number, number] {
  const [w0 = 0, w1 = 0, w2 = 0, w3 = 0] = uncoveredWords(128, ROOT_ENTRY);
  return [w0, (w1 | ~hawHiMask(haw)) >>> 0, w2, w3];
}

/**
 * Reserved bits of a present context entry (9.3), as word masks: bits 11:4, SLPTPTR above HAW, bit 71, domain-id
 * bits the unit does not implement (4 + 2 * CAP.ND of them), bits 127:88.
 */
export function contextEntryReserved(haw: number, domainIdBits: number): [number, number, number, number] {
  const [w0 = 0, w1 = 0, w2 = 0, w3 = 0] = uncoveredWords(128, CONTEXT_ENTRY);
  const didUnused = domainIdBits >= CONTEXT_ENTRY.DID.width ? 0 : (CTX_HI_DID_MASK & ~(((1 << domainIdBits) - 1) << CTX_HI_DID_SHIFT)) >>> 0;
  return [w0, (w1 | ~hawHiMask(haw)) >>> 0, (w2 | didUnused) >>> 0, w3];
}

// ---- Encode / decode ----

export interface RootEntryFields {
  present: boolean;
  /** The context table's address (4 KiB aligned). */
  contextTable: number;
}

export interface ContextEntryFields {
  present: boolean;
  fpd: boolean;
  /** Translation type (TT_*). */
  tt: number;
  /** The top second-level table's address (4 KiB aligned); 0 for pass-through. */
  pageTable: number;
  aw: number;
  did: number;
}

export type EntryWords = [number, number, number, number];

export function encodeRootEntry(e: RootEntryFields): EntryWords {
  return encodeWords(128, ROOT_ENTRY, { P: e.present, CTP: Math.floor(e.contextTable / 2 ** PAGE_SHIFT_4K) }) as EntryWords;
}

export function decodeRootEntry(words: ArrayLike<number>): RootEntryFields {
  return { present: wordsField(words, ROOT_ENTRY.P) === 1, contextTable: wordsField(words, ROOT_ENTRY.CTP) * 2 ** PAGE_SHIFT_4K };
}

export function encodeContextEntry(e: ContextEntryFields): EntryWords {
  return encodeWords(128, CONTEXT_ENTRY, {
    P: e.present,
    FPD: e.fpd,
    TT: e.tt,
    SLPTPTR: Math.floor(e.pageTable / 2 ** PAGE_SHIFT_4K),
    AW: e.aw,
    DID: e.did,
  }) as EntryWords;
}

export function decodeContextEntry(words: ArrayLike<number>): ContextEntryFields {
  return {
    present: wordsField(words, CONTEXT_ENTRY.P) === 1,
    fpd: wordsField(words, CONTEXT_ENTRY.FPD) === 1,
    tt: wordsField(words, CONTEXT_ENTRY.TT),
    pageTable: wordsField(words, CONTEXT_ENTRY.SLPTPTR) * 2 ** PAGE_SHIFT_4K,
    aw: wordsField(words, CONTEXT_ENTRY.AW),
    did: wordsField(words, CONTEXT_ENTRY.DID),
  };
}
