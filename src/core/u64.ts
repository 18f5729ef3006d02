/**
 * 64-bit values as two unsigned 32-bit halves (lo, hi) for hot paths, bigint at the edges.
 * BigInt arithmetic costs an order of magnitude more than two 32-bit operations, so translation, table walks
 * and register files keep (lo, hi) pairs and convert to bigint only where a value is parsed or printed.
 */

/** 2^32: the weight of the high half. */
export const TWO32 = 0x1_0000_0000;

/** The upper dword of a little-endian 64-bit value is 4 bytes above its lower dword. */
export const HI_DWORD_OFFSET = 4;

/** A (hi, lo) pair with hi below 2^21 is below 2^53: `hi * TWO32 + lo` is then an exact number. */
export const SAFE_HI = 2 ** 21;

export function loOf(v: bigint): number {
  return Number(v & 0xffff_ffffn);
}

export function hiOf(v: bigint): number {
  return Number((v >> 32n) & 0xffff_ffffn);
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
