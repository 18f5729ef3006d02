/**
 * Register fields as data: one descriptor shape (name, lowest bit, width, section) for every field of a 64-bit
 * VT-d register, and helpers that read a field from lo/hi 32-bit halves (hot paths) or from a bigint (edges).
 * Names and bit positions are the VT-d specification's (chapter 10.4).
 */
export interface FieldSpec {
  /** The specification's name: "SAGAW", "IR". */
  readonly name: string;
  /** Lowest bit. */
  readonly lsb: number;
  /** Width in bits (1 for flags; at most 32). */
  readonly width: number;
  /** Where the specification defines it. */
  readonly section: string;
}

const f = (name: string, lsb: number, width: number, section: string): FieldSpec => Object.freeze({ name, lsb, width, section });

/** A field from a 64-bit register held as halves. Exact for any width ≤ 32. */
export function fieldOf(lo: number, hi: number, s: FieldSpec): number {
  const mask = s.width >= 32 ? 0xffffffff : (2 ** s.width - 1);
  if (s.lsb >= 32) return ((hi >>> (s.lsb - 32)) & mask) >>> 0;
  if (s.lsb + s.width <= 32) return ((lo >>> s.lsb) & mask) >>> 0;
  const low = lo >>> s.lsb;
  const highPart = (hi & (2 ** (s.lsb + s.width - 32) - 1)) >>> 0;
  return low + highPart * 2 ** (32 - s.lsb);
}

/** A field from a 64-bit register held as a bigint. */
export function fieldOfBig(raw: bigint, s: FieldSpec): number {
  return Number((raw >> BigInt(s.lsb)) & ((1n << BigInt(s.width)) - 1n));
}

/** The register value with `s` set to `v` (bigint edge; used by the unit's configuration). */
export function withField(raw: bigint, s: FieldSpec, v: number | bigint): bigint {
  const mask = ((1n << BigInt(s.width)) - 1n) << BigInt(s.lsb);
  return (raw & ~mask) | ((BigInt(v) << BigInt(s.lsb)) & mask);
}

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
