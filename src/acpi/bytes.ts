/**
 * Bounded little-endian byte access for table codecs. Every read checks its bounds and, when it would run past
 * the end, throws an AcpiError naming the byte offset and the field, so a truncated or corrupt table gives a
 * one-line answer instead of a garbage value or a crash.
 */
import { IommuError } from "../core/errors.js";

export class AcpiError extends IommuError {
  /** Byte offset into the table where the problem is, when known. */
  readonly offset: number | undefined;
  constructor(code: string, message: string, offset?: number, hint?: string) {
    super(code, offset === undefined ? message : `${message} (at byte offset 0x${offset.toString(16)})`, {
      hint: hint ?? undefined,
    });
    this.name = "AcpiError";
    this.offset = offset;
  }
}

export class ByteReader {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  /** Absolute end (exclusive) of the readable window. */
  readonly end: number;

  constructor(bytes: Uint8Array, end = bytes.length) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.end = Math.min(end, bytes.length);
  }

  private need(offset: number, size: number, field: string): void {
    if (offset < 0 || offset + size > this.end) {
      throw new AcpiError(
        "ACPI_TRUNCATED",
        `table ends before ${field} (needs ${size} byte${size === 1 ? "" : "s"}, ${Math.max(0, this.end - offset)} left)`,
        offset,
      );
    }
  }

  u8(offset: number, field = "a byte"): number {
    this.need(offset, 1, field);
    return this.view.getUint8(offset);
  }

  u16(offset: number, field = "a 16-bit field"): number {
    this.need(offset, 2, field);
    return this.view.getUint16(offset, true);
  }

  u32(offset: number, field = "a 32-bit field"): number {
    this.need(offset, 4, field);
    return this.view.getUint32(offset, true);
  }

  u64(offset: number, field = "a 64-bit field"): bigint {
    this.need(offset, 8, field);
    return this.view.getBigUint64(offset, true);
  }

  slice(offset: number, length: number, field = "a byte range"): Uint8Array {
    this.need(offset, length, field);
    return this.bytes.slice(offset, offset + length);
  }

  /** Fixed-width ASCII field; trailing NULs removed, other bytes kept as they are (Latin-1). */
  ascii(offset: number, length: number, field = "a text field"): string {
    this.need(offset, length, field);
    let s = "";
    for (let i = 0; i < length; i++) s += String.fromCharCode(this.bytes[offset + i] ?? 0);
    return s.replace(/\0+$/, "");
  }
}

/** Growable little-endian writer for encoders. */
export class ByteWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.ensure(1);
    this.view.setUint8(this.length, v & 0xff);
    this.length += 1;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.length, v & 0xffff, true);
    this.length += 2;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.length, v >>> 0, true);
    this.length += 4;
    return this;
  }

  u64(v: bigint): this {
    this.ensure(8);
    this.view.setBigUint64(this.length, BigInt.asUintN(64, v), true);
    this.length += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  /** Fixed-width ASCII, NUL padded (or truncated) to `width`. */
  ascii(s: string, width: number): this {
    this.ensure(width);
    for (let i = 0; i < width; i++) this.buf[this.length + i] = i < s.length ? s.charCodeAt(i) & 0xff : 0;
    this.length += width;
    return this;
  }

  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
    return this;
  }

  /** Patches a 16-bit value at an earlier position (lengths known only after the body is written). */
  patchU16(at: number, v: number): void {
    this.view.setUint16(at, v & 0xffff, true);
  }

  patchU32(at: number, v: number): void {
    this.view.setUint32(at, v >>> 0, true);
  }

  patchU8(at: number, v: number): void {
    this.view.setUint8(at, v & 0xff);
  }

  toBytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
