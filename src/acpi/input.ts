/**
 * Where ACPI tables come from: a raw table file (what /sys/firmware/acpi/tables/DMAR holds), a directory of
 * tables (the sysfs directory itself), or an `acpidump` text dump holding several tables.
 */
import { readdirSync, statSync } from "node:fs";
import { inputName, readInput, STDIN } from "../core/input.js";
import { join } from "node:path";
import { fsError } from "../core/errors.js";
import { AcpiError } from "./bytes.js";

export interface TableSource {
  signature: string;
  bytes: Uint8Array;
  /** Where it came from: a path, or "path (acpidump: DMAR @ 0x…)". */
  origin: string;
}

export const IOMMU_SIGNATURES = ["DMAR", "IVRS"];

const ACPIDUMP_HEADER = /^\s*([A-Z0-9_!]{4})\s*@\s*0x[0-9a-fA-F]+\s*$/;
const ACPIDUMP_LINE = /^\s*([0-9a-fA-F]{4,8}):((?:\s+[0-9a-fA-F]{2}){1,16})/;

/** True when the text looks like acpidump output (a "SIG @ 0x…" line followed by offset-prefixed hex rows). */
export function looksLikeAcpidump(text: string): boolean {
  return /^\s*[A-Z0-9_!]{4}\s*@\s*0x[0-9a-fA-F]+\s*$/m.test(text) && /^\s*0000:\s/m.test(text);
}

/** Parses every table in an acpidump text dump. Malformed hex rows are an error naming the line. */
export function parseAcpidump(text: string, origin = "acpidump"): TableSource[] {
  const tables: TableSource[] = [];
  let current: { sig: string; at: string; chunks: number[]; line: number } | null = null;
  const flush = () => {
    if (current && current.chunks.length > 0) {
      tables.push({ signature: current.sig, bytes: Uint8Array.from(current.chunks), origin: `${origin} (acpidump: ${current.at})` });
    }
    current = null;
  };
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const h = ACPIDUMP_HEADER.exec(line);
    if (h) {
      flush();
      current = { sig: h[1] ?? "", at: line.trim(), chunks: [], line: i + 1 };
      continue;
    }
    const m = ACPIDUMP_LINE.exec(line);
    if (m && current) {
      const c = current as { chunks: number[] };
      const off = parseInt(m[1] ?? "0", 16);
      if (off !== c.chunks.length) {
        throw new AcpiError("ACPIDUMP_BAD_ROW", `${origin}:${i + 1}: row offset 0x${off.toString(16)} but 0x${c.chunks.length.toString(16)} bytes read so far`);
      }
      for (const b of (m[2] ?? "").trim().split(/\s+/)) c.chunks.push(parseInt(b, 16));
    } else if (line.trim() === "") {
      // blank lines separate tables
    }
  }
  flush();
  return tables;
}

function readBytes(path: string): Uint8Array {
  try {
    const b = readInput(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw fsError(e, inputName(path));
  }
}

/**
 * Loads tables from a path: a raw table, an acpidump text file, or a directory (e.g. /sys/firmware/acpi/tables)
 * from which the IOMMU tables (DMAR*, IVRS*) are taken. Errors name the path.
 */
export function loadTables(path: string): TableSource[] {
  let st;
  try {
    st = path === STDIN ? null : statSync(path);
  } catch (e) {
    throw fsError(e, path);
  }
  if (st?.isDirectory() === true) {
    let names: string[];
    try {
      names = readdirSync(path);
    } catch (e) {
      throw fsError(e, path);
    }
    const picked = names.filter((n) => /^(DMAR|IVRS)\d*$/.test(n)).sort();
    if (picked.length === 0) {
      throw new AcpiError("ACPI_NO_IOMMU_TABLE", `${path}: no DMAR or IVRS table in this directory`, undefined,
        "the firmware publishes no IOMMU table: enable VT-d / AMD-Vi (IOMMU) in the firmware setup");
    }
    return picked.map((n) => ({ signature: n.slice(0, 4), bytes: readBytes(join(path, n)), origin: join(path, n) }));
  }
  const bytes = readBytes(path);
  const shown = inputName(path);
  if (bytes.length === 0) throw new AcpiError("ACPI_EMPTY", `${shown}: empty file, no ACPI table`);
  // Text? acpidump output is ASCII; a raw table starts with a 4-letter signature followed by binary length.
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, Math.min(bytes.length, 4096)));
  if (looksLikeAcpidump(head)) {
    const all = parseAcpidump(new TextDecoder("latin1").decode(bytes), shown);
    const iommu = all.filter((t) => IOMMU_SIGNATURES.includes(t.signature));
    if (iommu.length === 0) {
      throw new AcpiError("ACPI_NO_IOMMU_TABLE", `${shown}: acpidump holds ${all.length} tables (${[...new Set(all.map((t) => t.signature))].join(", ")}) but no DMAR or IVRS`);
    }
    return iommu;
  }
  const sig = String.fromCharCode(...bytes.subarray(0, 4));
  return [{ signature: sig, bytes, origin: shown }];
}
