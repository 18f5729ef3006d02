/**
 * One branded type per address space, so a guest-physical address cannot be passed where a host-physical one
 * is expected without saying so. Values are numbers (exact up to 2^53); 57-bit values beyond that travel as
 * bigint through the *Big edge helpers of the modules that need them.
 * Arithmetic goes through named helpers so the overflow policy is visible where it is used.
 */

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Host-physical address. */
export type Hpa = Brand<number, "Hpa">;
/** Guest-physical address. */
export type Gpa = Brand<number, "Gpa">;
/** I/O virtual address: what a device puts on the bus. */
export type Iova = Brand<number, "Iova">;
/** An address in MMIO space (register bases). */
export type MmioAddr = Brand<number, "MmioAddr">;

export type AnyAddr = Hpa | Gpa | Iova | MmioAddr;

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const MAX_SAFE_ADDR = Number.MAX_SAFE_INTEGER;

function check(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} ${n} is not a non-negative safe integer`);
  return n;
}

export const hpa = (n: number): Hpa => check(n, "HPA") as Hpa;
export const gpa = (n: number): Gpa => check(n, "GPA") as Gpa;
export const iova = (n: number): Iova => check(n, "IOVA") as Iova;
export const mmio = (n: number): MmioAddr => check(n, "MMIO address") as MmioAddr;

/** a + n, or null when the sum leaves the safe-integer range. */
export function checkedAdd<A extends AnyAddr>(a: A, n: number): A | null {
  const r = a + n;
  return Number.isSafeInteger(r) && r >= 0 ? (r as A) : null;
}

/** a + n for callers that have already bounded both operands. */
export function uncheckedAdd<A extends AnyAddr>(a: A, n: number): A {
  return (a + n) as A;
}

export function alignDown<A extends AnyAddr>(a: A, align: number): A {
  return (a - (a % align)) as A;
}

/** Rounds up to a multiple of `align`, or null on overflow. */
export function checkedAlignUp<A extends AnyAddr>(a: A, align: number): A | null {
  const rem = a % align;
  return rem === 0 ? a : checkedAdd(a, align - rem);
}

export function pageNumber(a: AnyAddr): number {
  return Math.floor(a / PAGE_SIZE);
}

export function pageOffset(a: AnyAddr): number {
  return a % PAGE_SIZE;
}

export function isAligned(a: number, align: number): boolean {
  return a % align === 0;
}
