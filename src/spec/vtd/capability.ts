/**
 * The Capability Register (CAP_REG, VT-d spec 10.4.2) and the Extended Capability Register (ECAP_REG, 10.4.3):
 * every field with its position, the encodings of the fields whose values are not plain numbers (SAGAW, SLLPS,
 * ND, FRO, IRO, MGAW), and an encoder/decoder for whole register values.
 */
import { field as f, fieldOfBig, withField, type FieldSpec } from "./fields.js";

/** Capability Register (10.4.2). */
export const CAP = Object.freeze({
  ND: f("ND", 0, 3, "10.4.2"),
  AFL: f("AFL", 3, 1, "10.4.2"),
  RWBF: f("RWBF", 4, 1, "10.4.2"),
  PLMR: f("PLMR", 5, 1, "10.4.2"),
  PHMR: f("PHMR", 6, 1, "10.4.2"),
  CM: f("CM", 7, 1, "10.4.2"),
  SAGAW: f("SAGAW", 8, 5, "10.4.2"),
  MGAW: f("MGAW", 16, 6, "10.4.2"),
  ZLR: f("ZLR", 22, 1, "10.4.2"),
  FRO: f("FRO", 24, 10, "10.4.2"),
  SLLPS: f("SLLPS", 34, 4, "10.4.2"),
  PSI: f("PSI", 39, 1, "10.4.2"),
  NFR: f("NFR", 40, 8, "10.4.2"),
  MAMV: f("MAMV", 48, 6, "10.4.2"),
  DWD: f("DWD", 54, 1, "10.4.2"),
  DRD: f("DRD", 55, 1, "10.4.2"),
  FS1GP: f("FS1GP", 56, 1, "10.4.2"),
  PI: f("PI", 59, 1, "10.4.2"),
  FS5LP: f("FS5LP", 60, 1, "10.4.2"),
  ESIRTPS: f("ESIRTPS", 62, 1, "10.4.2"),
  ESRTPS: f("ESRTPS", 63, 1, "10.4.2"),
});

/** Extended Capability Register (10.4.3). */
export const ECAP = Object.freeze({
  C: f("C", 0, 1, "10.4.3"),
  QI: f("QI", 1, 1, "10.4.3"),
  DT: f("DT", 2, 1, "10.4.3"),
  IR: f("IR", 3, 1, "10.4.3"),
  EIM: f("EIM", 4, 1, "10.4.3"),
  PT: f("PT", 6, 1, "10.4.3"),
  SC: f("SC", 7, 1, "10.4.3"),
  IRO: f("IRO", 8, 10, "10.4.3"),
  MHMV: f("MHMV", 20, 4, "10.4.3"),
  MTS: f("MTS", 25, 1, "10.4.3"),
  NEST: f("NEST", 26, 1, "10.4.3"),
  PRS: f("PRS", 29, 1, "10.4.3"),
  ERS: f("ERS", 30, 1, "10.4.3"),
  SRS: f("SRS", 31, 1, "10.4.3"),
  NWFS: f("NWFS", 33, 1, "10.4.3"),
  EAFS: f("EAFS", 34, 1, "10.4.3"),
  PSS: f("PSS", 35, 5, "10.4.3"),
  PASID: f("PASID", 40, 1, "10.4.3"),
  DIT: f("DIT", 41, 1, "10.4.3"),
  PDS: f("PDS", 42, 1, "10.4.3"),
  SMTS: f("SMTS", 43, 1, "10.4.3"),
  VCS: f("VCS", 44, 1, "10.4.3"),
  SSADS: f("SSADS", 45, 1, "10.4.3"),
  SSTS: f("SSTS", 46, 1, "10.4.3"),
  FSTS: f("FSTS", 47, 1, "10.4.3"),
  SMPWC: f("SMPWC", 48, 1, "10.4.3"),
  RPS: f("RPS", 49, 1, "10.4.3"),
});

export type CapField = keyof typeof CAP;
export type EcapField = keyof typeof ECAP;

// ---- Field encodings (10.4.2, 10.4.3) ----

/**
 * CAP.SAGAW bit n: adjusted guest address width 30 + 9n bits with n + 2 table levels (bit 1 = 39-bit/3-level,
 * bit 2 = 48-bit/4-level, bit 3 = 57-bit/5-level; bit 0, 30-bit/2-level, is no longer defined).
 */
export const SAGAW_30 = 1 << 0;
export const SAGAW_39 = 1 << 1;
export const SAGAW_48 = 1 << 2;
export const SAGAW_57 = 1 << 3;
/** The AGAW widths the SAGAW bits stand for, by bit. */
export const SAGAW_WIDTHS: readonly number[] = Object.freeze([30, 39, 48, 57]);

/** CAP.SLLPS bit 0: 2 MiB second-level pages; bit 1: 1 GiB pages. */
export const SLLPS_2M = 1 << 0;
export const SLLPS_1G = 1 << 1;

/** The SAGAW bit of an adjusted guest address width, or 0 when the width is not one SAGAW can report. */
export function sagawBit(awBits: number): number {
  const n = SAGAW_WIDTHS.indexOf(awBits);
  return n < 0 ? 0 : (1 << n) >>> 0;
}

/** The widths (30, 39, 48, 57) a SAGAW value reports, narrowest first. */
export function sagawWidths(sagaw: number): number[] {
  return SAGAW_WIDTHS.filter((_, i) => ((sagaw >>> i) & 1) === 1);
}

/** CAP.ND: the number of domain-id bits, 4 + 2 * ND (ND = 6 gives 16 bits). */
export function domainIdBits(nd: number): number {
  return 4 + 2 * nd;
}

/** The ND value for a number of domain-id bits (4, 6, … 16). */
export function ndForDomainIdBits(bits: number): number {
  return (bits - 4) / 2;
}

/** CAP.MGAW holds the maximum guest address width minus one. */
/** PASIDs a unit with ECAP.PSS = `pss` takes: the field holds the PASID width less one (10.4.3). */
export function pssPasids(pss: number): number {
  return 2 ** (pss + 1);
}

export function mgawBits(mgaw: number): number {
  return mgaw + 1;
}

/** CAP.FRO and ECAP.IRO count in units of 16 bytes: the register offset from the field value, and back. */
export const OFFSET_UNIT = 16;

export function registerOffset(fieldValue: number): number {
  return fieldValue * OFFSET_UNIT;
}

export function offsetField(offset: number): number {
  return offset / OFFSET_UNIT;
}

/** CAP.NFR holds the number of fault recording registers minus one. */
export function faultRecordCount(nfr: number): number {
  return nfr + 1;
}

export function nfrForCount(count: number): number {
  return count - 1;
}

/** The largest offset CAP.FRO or ECAP.IRO can give (a 10-bit field in 16-byte units). */
export const MAX_REGISTER_OFFSET = registerOffset(2 ** CAP.FRO.width - 1);

// ---- Whole registers ----

/** CAP_REG from field values (missing fields are 0). */
export function encodeCap(values: Partial<Record<CapField, number | boolean>>): bigint {
  return encodeRegister(CAP, values);
}

/** ECAP_REG from field values (missing fields are 0). */
export function encodeEcap(values: Partial<Record<EcapField, number | boolean>>): bigint {
  return encodeRegister(ECAP, values);
}

/** Every field of CAP_REG. */
export function decodeCap(raw: bigint): Record<CapField, number> {
  return decodeRegister(CAP, raw);
}

/** Every field of ECAP_REG. */
export function decodeEcap(raw: bigint): Record<EcapField, number> {
  return decodeRegister(ECAP, raw);
}

function encodeRegister<K extends string>(fields: Readonly<Record<K, FieldSpec>>, values: Partial<Record<K, number | boolean>>): bigint {
  let raw = 0n;
  for (const k of Object.keys(values) as K[]) {
    const v = values[k];
    if (v !== undefined) raw = withField(raw, fields[k], v);
  }
  return raw;
}

function decodeRegister<K extends string>(fields: Readonly<Record<K, FieldSpec>>, raw: bigint): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const k of Object.keys(fields) as K[]) out[k] = fieldOfBig(raw, fields[k]);
  return out;
}
