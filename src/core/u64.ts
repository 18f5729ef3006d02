/**
 * 64-bit values as two unsigned 32-bit halves (lo, hi) for hot paths, bigint at the edges.
 * BigInt arithmetic costs an order of magnitude more than two 32-bit operations, so translation, table walks
 * and register files keep (lo, hi) pairs; parsing, printing and JSON convert with toBig / fromBig.
 */

/** 2^32: the weight of the high half. */
export const TWO32 = 0x1_0000_0000;

export function toBig(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

export function loOf(v: bigint): number {
  return Number(v & 0xffff_ffffn);
}

export function hiOf(v: bigint): number {
  return Number((v >> 32n) & 0xffff_ffffn);
}

/** Halves of a non-negative safe integer (up to 2^53). */
export function loOfNum(n: number): number {
  return n % TWO32 >>> 0;
}

export function hiOfNum(n: number): number {
  return Math.floor(n / TWO32) >>> 0;
}

/** The value of (lo, hi) as a number; exact while hi < 2^21 (values below 2^53). */
export function toNum(lo: number, hi: number): number {
  return (hi >>> 0) * TWO32 + (lo >>> 0);
}

/**
 * Bits [lsb, lsb+width) of the 64-bit value (lo, hi), width 1..32, as an unsigned number.
 * Fields that straddle bit 32 are assembled from both halves.
 */
export function bits(lo: number, hi: number, lsb: number, width: number): number {
  const mask = width >= 32 ? 0xffff_ffff : (1 << width) - 1;
  if (lsb >= 32) return ((hi >>> (lsb - 32)) & mask) >>> 0;
  if (lsb + width <= 32) return ((lo >>> lsb) & mask) >>> 0;
  // Straddles: low part from lo, high part from hi.
  const lowCount = 32 - lsb;
  const low = lo >>> lsb;
  const high = hi << lowCount;
  return ((low | high) & mask) >>> 0;
}

/** True when bit n (0..63) of (lo, hi) is set. */
export function bit(lo: number, hi: number, n: number): boolean {
  return n < 32 ? ((lo >>> n) & 1) === 1 : ((hi >>> (n - 32)) & 1) === 1;
}

/** A 64-bit field of a bigint value: bits [lsb, lsb+width). Edge helper for decoders. */
export function bitsBig(v: bigint, lsb: number, width: number): bigint {
  return (v >> BigInt(lsb)) & ((1n << BigInt(width)) - 1n);
}

/** Sets bits [lsb, lsb+width) of a bigint to `field`; the field is masked to width. */
export function withBitsBig(v: bigint, lsb: number, width: number, field: bigint): bigint {
  const mask = ((1n << BigInt(width)) - 1n) << BigInt(lsb);
  return (v & ~mask) | ((field << BigInt(lsb)) & mask);
}

/** A mutable 64-bit pair for results that must not allocate. */
export class U64 {
  lo = 0;
  hi = 0;
  set(lo: number, hi: number): this {
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
    return this;
  }
  setBig(v: bigint): this {
    return this.set(loOf(v), hiOf(v));
  }
  big(): bigint {
    return toBig(this.lo, this.hi);
  }
}

/** 64-bit wrap-around addition of two pairs, written into `out`. */
export function add64(out: U64, alo: number, ahi: number, blo: number, bhi: number): U64 {
  const lo = (alo >>> 0) + (blo >>> 0);
  const carry = lo >= TWO32 ? 1 : 0;
  out.lo = lo >>> 0;
  out.hi = ((ahi >>> 0) + (bhi >>> 0) + carry) >>> 0;
  return out;
}

/** Logical shift right of (lo, hi) by 0..63, into `out`. */
export function shr64(out: U64, lo: number, hi: number, n: number): U64 {
  if (n === 0) return out.set(lo, hi);
  if (n >= 32) return out.set(hi >>> (n - 32), 0);
  return out.set(((lo >>> n) | (hi << (32 - n))) >>> 0, hi >>> n);
}

/** Shift left of (lo, hi) by 0..63 (bits shifted past 63 are lost), into `out`. */
export function shl64(out: U64, lo: number, hi: number, n: number): U64 {
  if (n === 0) return out.set(lo, hi);
  if (n >= 32) return out.set(0, lo << (n - 32));
  return out.set(lo << n, (hi << n) | (lo >>> (32 - n)));
}

/** Unsigned compare: -1, 0, 1. */
export function cmp64(alo: number, ahi: number, blo: number, bhi: number): number {
  const ah = ahi >>> 0;
  const bh = bhi >>> 0;
  if (ah !== bh) return ah < bh ? -1 : 1;
  const al = alo >>> 0;
  const bl = blo >>> 0;
  return al === bl ? 0 : al < bl ? -1 : 1;
}
