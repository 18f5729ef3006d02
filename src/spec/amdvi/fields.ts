/**
 * Field descriptors for AMD-Vi structures: each field names its bit range inside a little-endian structure of
 * 32-bit dwords and the section of the AMD I/O Virtualization Technology (IOMMU) Specification (#48882) it comes
 * from. Hot paths read a field from the dword array with `getField`; edges use `decodeFields` for objects.
 */

export interface Field {
  readonly name: string;
  /** Lowest bit, counted over the whole structure (bit 64 is bit 0 of the third dword). */
  readonly lsb: number;
  readonly width: number;
  /** Section of spec #48882. */
  readonly section: string;
}

export function field(name: string, lsb: number, width: number, section: string): Field {
  return { name, lsb, width, section };
}

/** A field of up to 32 bits from an array of dwords (fields may straddle a dword boundary). */
export function getField(dw: ArrayLike<number>, f: Field): number {
  const w = f.lsb >>> 5;
  const s = f.lsb & 31;
  const mask = f.width >= 32 ? 0xffff_ffff : (1 << f.width) - 1;
  const lo = (dw[w] ?? 0) >>> s;
  if (s + f.width <= 32) return (lo & mask) >>> 0;
  const hi = (dw[w + 1] ?? 0) << (32 - s);
  return ((lo | hi) & mask) >>> 0;
}

/** Sets a field (up to 32 bits wide) in an array of dwords. */
export function setField(dw: Uint32Array | number[], f: Field, v: number): void {
  const w = f.lsb >>> 5;
  const s = f.lsb & 31;
  const mask = f.width >= 32 ? 0xffff_ffff : (1 << f.width) - 1;
  const val = (v & mask) >>> 0;
  const loMask = (mask << s) >>> 0;
  dw[w] = (((dw[w] ?? 0) & ~loMask) | (val << s)) >>> 0;
  if (s + f.width > 32) {
    const hiMask = mask >>> (32 - s);
    dw[w + 1] = (((dw[w + 1] ?? 0) & ~hiMask) | (val >>> (32 - s))) >>> 0;
  }
}

/** A field of any width as a bigint (edge use). */
export function getFieldBig(dw: ArrayLike<number>, f: Field): bigint {
  let v = 0n;
  for (let i = dw.length - 1; i >= 0; i--) v = (v << 32n) | BigInt((dw[i] ?? 0) >>> 0);
  return (v >> BigInt(f.lsb)) & ((1n << BigInt(f.width)) - 1n);
}

/** Sets a field of any width from a bigint (edge use). */
export function setFieldBig(dw: Uint32Array | number[], f: Field, v: bigint): void {
  for (let done = 0; done < f.width; done += 16) {
    const width = Math.min(16, f.width - done);
    setField(dw, { ...f, lsb: f.lsb + done, width }, Number((v >> BigInt(done)) & ((1n << BigInt(width)) - 1n)));
  }
}

/** All fields as a name → bigint record (for printing and tests). */
export function decodeFields(dw: ArrayLike<number>, fields: readonly Field[]): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const f of fields) out[f.name] = getFieldBig(dw, f);
  return out;
}

/** Builds dwords from a partial name → value record; unknown names are rejected. */
export function encodeFields(dwords: number, fields: readonly Field[], values: Record<string, bigint | number | boolean>): Uint32Array {
  const dw = new Uint32Array(dwords);
  for (const [name, v] of Object.entries(values)) {
    const f = fields.find((x) => x.name === name);
    if (f === undefined) throw new RangeError(`unknown field ${name}`);
    setFieldBig(dw, f, typeof v === "boolean" ? (v ? 1n : 0n) : BigInt(v));
  }
  return dw;
}
