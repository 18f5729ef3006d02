/**
 * The 36-byte System Description Table header every ACPI table starts with (ACPI 6.5 §5.2.6), and checksums.
 */
import { AcpiError, ByteReader, ByteWriter } from "./bytes.js";

export const SDT_HEADER_SIZE = 36;

export interface SdtHeader {
  signature: string;
  /** Length of the whole table in bytes, header included. */
  length: number;
  revision: number;
  /** The checksum byte as stored. */
  checksum: number;
  /** True when all bytes of the table sum to zero (mod 256). */
  checksumValid: boolean;
  oemId: string;
  oemTableId: string;
  oemRevision: number;
  creatorId: string;
  creatorRevision: number;
}

export function tableChecksumSum(bytes: Uint8Array, length = bytes.length): number {
  let sum = 0;
  for (let i = 0; i < length; i++) sum = (sum + (bytes[i] ?? 0)) & 0xff;
  return sum;
}

/**
 * Decodes the header and checks the table is internally consistent: the length field must cover the header and
 * fit in the bytes given. Extra bytes after `length` are ignored (acpidump output sometimes pads).
 */
export function decodeSdtHeader(bytes: Uint8Array, expected?: string[]): SdtHeader {
  if (bytes.length === 0) throw new AcpiError("ACPI_EMPTY", "empty input: no ACPI table");
  if (bytes.length < SDT_HEADER_SIZE) {
    throw new AcpiError("ACPI_TRUNCATED", `only ${bytes.length} bytes: an ACPI table header alone is 36`, 0);
  }
  const r = new ByteReader(bytes);
  const signature = r.ascii(0, 4);
  if (!/^[A-Z0-9_]{4}$/.test(signature)) {
    throw new AcpiError("ACPI_NOT_A_TABLE", "not an ACPI table: the first 4 bytes are not a table signature", 0,
      "give a raw table (e.g. /sys/firmware/acpi/tables/DMAR) or an acpidump text dump");
  }
  if (expected && !expected.includes(signature)) {
    throw new AcpiError("ACPI_UNSUPPORTED", `${signature} table: only ${expected.join(" and ")} are decoded here`, 0);
  }
  const length = r.u32(4);
  if (length < SDT_HEADER_SIZE) {
    throw new AcpiError("ACPI_BAD_LENGTH", `header length field is ${length}, smaller than the 36-byte header`, 4);
  }
  if (length > bytes.length) {
    throw new AcpiError("ACPI_TRUNCATED", `header says ${length} bytes but only ${bytes.length} are present`, bytes.length);
  }
  return {
    signature,
    length,
    revision: r.u8(8),
    checksum: r.u8(9),
    checksumValid: tableChecksumSum(bytes, length) === 0,
    oemId: r.ascii(10, 6),
    oemTableId: r.ascii(16, 8),
    oemRevision: r.u32(24),
    creatorId: r.ascii(28, 4),
    creatorRevision: r.u32(32),
  };
}

export type SdtHeaderFields = Omit<SdtHeader, "length" | "checksum" | "checksumValid">;

/** Writes a header with length and checksum zero; `finishTable` fills them in. */
export function writeSdtHeader(w: ByteWriter, h: SdtHeaderFields): void {
  w.ascii(h.signature, 4).u32(0).u8(h.revision).u8(0).ascii(h.oemId, 6).ascii(h.oemTableId, 8).u32(h.oemRevision);
  w.ascii(h.creatorId, 4).u32(h.creatorRevision);
}

/**
 * Sets the length field and the checksum so the table sums to zero. When `checksum` is given (re-encoding a
 * table whose stored checksum was wrong), that byte is written instead, reproducing the original exactly.
 */
export function finishTable(w: ByteWriter, checksum?: number): Uint8Array {
  w.patchU32(4, w.length);
  w.patchU8(9, 0);
  const bytes = w.toBytes();
  bytes[9] = checksum ?? (0x100 - tableChecksumSum(bytes)) & 0xff;
  return bytes;
}
