/**
 * The ACPI codec's front door: decode any supported IOMMU table (DMAR, IVRS) from bytes, encode it back, render
 * it as text. Decoded tables are plain JSON-able objects (64-bit values as "0x…" strings, device ids "bb:dd.f"),
 * so `iommu acpi decode --json` output can be edited and fed back to the encoder.
 */
import { AcpiError } from "./bytes.js";
import { decodeSdtHeader } from "./sdt.js";
import { decodeDmar, encodeDmar, renderDmarText, type DmarTable } from "./dmar.js";
import { decodeIvrs, encodeIvrs, renderIvrsText, type IvrsTable } from "./ivrs.js";

export type IommuTable = DmarTable | IvrsTable;

export interface DecodeResult {
  table: IommuTable;
  /** Problems that do not stop decoding (a wrong checksum: Linux warns and uses the table). */
  warnings: string[];
}

export interface EncodeOptions {
  /** Write the stored checksum byte instead of computing it (reproduces a table whose checksum was wrong). */
  keepChecksum?: boolean;
}

export function decodeTable(bytes: Uint8Array): DecodeResult {
  const h = decodeSdtHeader(bytes, ["DMAR", "IVRS"]);
  const table = h.signature === "DMAR" ? decodeDmar(bytes) : decodeIvrs(bytes);
  const warnings: string[] = [];
  if (!h.checksumValid) {
    const want = (h.checksum - sumWithout(bytes, h.length)) & 0xff;
    warnings.push(
      `${h.signature}: checksum 0x${h.checksum.toString(16).padStart(2, "0")} is wrong, the bytes need 0x${want.toString(16).padStart(2, "0")} (decoded anyway, as Linux does)`,
    );
  }
  if (bytes.length > h.length) warnings.push(`${h.signature}: ${bytes.length - h.length} bytes after the table's length ignored`);
  return { table, warnings };
}

function sumWithout(bytes: Uint8Array, length: number): number {
  let sum = 0;
  for (let i = 0; i < length; i++) sum = (sum + (bytes[i] ?? 0)) & 0xff;
  return sum;
}

export function encodeTable(table: IommuTable, options: EncodeOptions = {}): Uint8Array {
  if (table.signature === "DMAR") return encodeDmar(table, options);
  if (table.signature === "IVRS") return encodeIvrs(table, options);
  throw new AcpiError("ACPI_UNSUPPORTED", `cannot encode a '${String((table as { signature?: unknown }).signature)}' table`);
}

export function renderTableText(table: IommuTable): string {
  return table.signature === "DMAR" ? renderDmarText(table) : renderIvrsText(table);
}

export { AcpiError } from "./bytes.js";
export { loadTables, parseAcpidump, type TableSource } from "./input.js";
export type { DmarTable } from "./dmar.js";
export type { IvrsTable } from "./ivrs.js";
