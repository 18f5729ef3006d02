/**
 * Fields as data: one descriptor shape (name, lowest bit, width, section) for every field of a VT-d register,
 * table entry or descriptor, and the helpers that read and write a field
 *   - of a 64-bit register held as lo/hi 32-bit halves (hot paths) or as a bigint (edges): fieldOf, fieldOfBig,
 *     withField;
 *   - of a structure held as little-endian 32-bit words (root and context entries, fault records, invalidation
 *     descriptors, IRTEs), with bit positions counted from bit 0 of word 0: wordsField, setWordsField.
 * Address fields are up to 52 bits wide; every read is exact (no float rounding) up to 53 bits.
 */
export interface FieldSpec {
  /** The specification's name: "SAGAW", "IR", "DID". */
  readonly name: string;
  /** Lowest bit, counted from bit 0 of the register or structure. */
  readonly lsb: number;
  /** Width in bits: 1 for flags; address fields up to 62 (values are read exactly up to 53 bits). */
  readonly width: number;
  /** Where the specification defines it. */
  readonly section: string;
}

/** A field descriptor (frozen). */
export function field(name: string, lsb: number, width: number, section: string): FieldSpec {
  return Object.freeze({ name, lsb, width, section });
}

const TWO32 = 2 ** 32;
/** 2^n for n = 0..64, so field accesses on hot paths multiply by a table entry instead of calling Math.pow. */
const POW2 = Float64Array.from({ length: 65 }, (_, n) => 2 ** n);

function pow2(n: number): number {
  return POW2[n] ?? 2 ** n;
}

/** The largest value a field holds. */
export function fieldMax(s: FieldSpec): number {
  return 2 ** s.width - 1;
}

/** The value of `s` from the 64-bit value (lo, hi). Exact for any width up to 53. */
export function fieldOf(lo: number, hi: number, s: FieldSpec): number {
  return bitsOf(lo >>> 0, hi >>> 0, s.lsb, s.width);
}

/** Bits [lsb, lsb + width) of (lo, hi), lsb + width <= 64. */
function bitsOf(lo: number, hi: number, lsb: number, width: number): number {
  if (lsb >= 32) return lowBits(hi >>> (lsb - 32), width);
  if (lsb + width <= 32) return lowBits(lo >>> lsb, width);
  const low = lo >>> lsb;
  return low + lowBits(hi, lsb + width - 32) * pow2(32 - lsb);
}

/** The low `width` bits of a 32-bit value (all of it for width >= 32). */
function lowBits(v: number, width: number): number {
  return width >= 32 ? v >>> 0 : (v & (pow2(width) - 1)) >>> 0;
}

/** The value of `s` from a 64-bit register held as a bigint. */
export function fieldOfBig(raw: bigint, s: FieldSpec): number {
  return Number((raw >> BigInt(s.lsb)) & ((1n << BigInt(s.width)) - 1n));
}

/** The register value with `s` set to `v` (bigint edge). Bits of `v` beyond the field are dropped. */
export function withField(raw: bigint, s: FieldSpec, v: number | bigint | boolean): bigint {
  const mask = maskOf(s);
  const n = typeof v === "boolean" ? (v ? 1n : 0n) : BigInt(v);
  return (raw & ~mask) | ((n << BigInt(s.lsb)) & mask);
}

/** The bits `fields` cover, as a bigint mask (register declarations: writable, write-1-to-clear bits). */
export function maskOf(...fields: FieldSpec[]): bigint {
  let m = 0n;
  for (const s of fields) m |= ((1n << BigInt(s.width)) - 1n) << BigInt(s.lsb);
  return m;
}

/** Which 32-bit word of a structure holds the field's lowest bit. */
export function wordOf(s: FieldSpec): number {
  return s.lsb >>> 5;
}

/** The field's shift within its word. */
export function shiftOf(s: FieldSpec): number {
  return s.lsb & 31;
}

/**
 * The field's bits as a mask of its 32-bit word (hot paths test or extract a field with one AND). Only for
 * fields that lie within one word; a field crossing a word boundary gives the part in its first word.
 */
export function wordMask(s: FieldSpec): number {
  const shift = shiftOf(s);
  const width = Math.min(s.width, 32 - shift);
  return width >= 32 ? 0xffffffff : ((pow2(width) - 1) * pow2(shift)) >>> 0;
}

/** The value of `s` from a structure held as 32-bit words, low word first. Exact up to 53 bits. */
export function wordsField(words: ArrayLike<number>, s: FieldSpec): number {
  const w = wordOf(s);
  const shift = shiftOf(s);
  if (shift + s.width <= 32) return lowBits((words[w] ?? 0) >>> shift, s.width);
  let value = (words[w] ?? 0) >>> shift;
  let got = 32 - shift;
  for (let i = w + 1; got < s.width; i++, got += 32) value += lowBits(words[i] ?? 0, s.width - got) * pow2(got);
  return value;
}

/**
 * Sets `s` to `v` in a structure held as 32-bit words (in place; returns the words). Bits of `v` beyond the
 * field are dropped; `v` is a non-negative integer below 2^53.
 */
export function setWordsField<T extends number[] | Uint32Array>(words: T, s: FieldSpec, v: number | boolean): T {
  let rest = typeof v === "boolean" ? (v ? 1 : 0) : v;
  let left = s.width;
  let w = wordOf(s);
  let shift = shiftOf(s);
  while (left > 0) {
    const n = Math.min(left, 32 - shift);
    const mask = n >= 32 ? 0xffffffff : ((pow2(n) - 1) * pow2(shift)) >>> 0;
    const part = ((rest % pow2(n)) * pow2(shift)) >>> 0;
    words[w] = (((words[w] ?? 0) & ~mask) | part) >>> 0;
    rest = Math.floor(rest / pow2(n));
    left -= n;
    w++;
    shift = 0;
  }
  return words;
}

/** A structure of `bits` bits with every field in `fields` set from `values` (missing values are 0). */
export function encodeWords<K extends string>(bits: number, fields: Readonly<Record<K, FieldSpec>>, values: Partial<Record<K, number | boolean>>): number[] {
  const words = new Array<number>(bits / 32).fill(0);
  for (const k of Object.keys(values) as K[]) {
    const v = values[k];
    if (v !== undefined) setWordsField(words, fields[k], v);
  }
  return words;
}

/**
 * The bits of a `bits`-bit structure that no field in `fields` covers, as 32-bit word masks: the reserved bits
 * of a format in which every bit that is not a field is reserved (invalidation descriptors, 6.5.2).
 */
export function uncoveredWords(bits: number, fields: Readonly<Record<string, FieldSpec>>): number[] {
  const covered = new Array<number>(bits / 32).fill(0);
  for (const s of Object.values(fields)) {
    for (let b = s.lsb; b < s.lsb + s.width; b++) covered[b >>> 5] = ((covered[b >>> 5] ?? 0) | (1 << (b & 31))) >>> 0;
  }
  return covered.map((w) => ~w >>> 0);
}

/** The value of a 64-bit register as a bigint from its halves. */
export function joinHalves(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** A number below 2^53 as 32-bit halves. */
export function splitHalves(v: number): { lo: number; hi: number } {
  return { lo: v % TWO32 >>> 0, hi: Math.floor(v / TWO32) >>> 0 };
}
