/**
 * A decoded DMAR table as text, laid out the way `iasl -d` prints it: one line per field,
 * "[HexOffset DecimalOffset ByteLength]  Field Name : Value [note]", with notes that decode flags, sizes and
 * device addresses. Offsets are recomputed from the structure contents, so an edited table renders at the
 * positions its encoding would have.
 */
import { hexDigits } from "../core/hex.js";
import { parseHexBig } from "../core/hex.js";
import { formatBdf } from "../core/pci.js";
import {
  ANDD_FIXED_SIZE, ATSR_FIXED_SIZE, DMAR_HEADER_SIZE, DMAR_SCOPE_FIXED_SIZE, DRHD_FIXED_SIZE, RHSA_FIXED_SIZE,
  RMRR_FIXED_SIZE, SIDP_FIXED_SIZE,
  type DmarDeviceScope, type DmarStructure, type DmarTable,
} from "./dmar-format.js";

/** Structure type names as the VT-d specification (and iasl) call them (VT-d spec §8.2). */
export const DMAR_STRUCTURE_NAMES: Record<DmarStructure["type"], string> = {
  DRHD: "Hardware Unit Definition",
  RMRR: "Reserved Memory Region",
  ATSR: "Root Port ATS Capability",
  RHSA: "Remapping Hardware Static Affinity",
  ANDD: "ACPI Namespace Device Declaration",
  SATC: "SoC Integrated Address Translation Cache",
  SIDP: "SoC Integrated Device Property",
  unknown: "Unknown Subtable Type",
};

/** Device scope type names (VT-d spec §8.3.1). */
export const DMAR_SCOPE_NAMES: Record<DmarDeviceScope["type"], string> = {
  endpoint: "PCI Endpoint Device",
  bridge: "PCI Bridge Device",
  ioapic: "IOAPIC Device",
  hpet: "Message-capable HPET Device",
  "acpi-namespace": "Namespace Device",
  unknown: "Reserved Device Scope Type",
};

const NAME_WIDTH = 29;

class Out {
  readonly lines: string[] = [];

  field(offset: number, length: number, name: string, value: string, note?: string): void {
    const head = `[${hexDigits(offset, 3)}h ${String(offset).padStart(4, "0")} ${String(length).padStart(3)}]`;
    this.lines.push(`${head}${name.padStart(NAME_WIDTH)} : ${value}${note ? ` [${note}]` : ""}`);
  }

  /** A decoded detail under the field above it, without an offset prefix. */
  detail(name: string, value: string): void {
    this.lines.push(`${" ".repeat(15)}${name.padStart(NAME_WIDTH)} : ${value}`);
  }

  blank(): void {
    this.lines.push("");
  }
}

const h = (v: number, bytes: number) => hexDigits(v >>> 0, bytes * 2);

function h64(v: string): string {
  const n = parseHexBig(v);
  return n === null ? v : hexDigits(n, 16);
}

/**
 * A text field the way iasl shows it (up to the first NUL, other control and non-ASCII bytes as spaces), with a
 * note listing the bytes when that display hides any of them.
 */
function quoted(s: string): [string, string | undefined] {
  const nul = s.indexOf("\0");
  const shown = `"${(nul < 0 ? s : s.slice(0, nul)).replace(/[^\x20-\x7e]/g, " ")}"`;
  if (shown === `"${s}"`) return [shown, undefined];
  return [shown, `bytes ${byteList([...s].map((c) => c.charCodeAt(0) & 0xff))}`];
}

function byteList(b: number[]): string {
  return b.map((x) => hexDigits(x, 2)).join(" ");
}

function hexToBytes(s: string | undefined): number[] {
  const t = (s ?? "").replace(/\s+/g, "");
  const out: number[] = [];
  for (let i = 0; i + 2 <= t.length; i += 2) out.push(parseInt(t.slice(i, i + 2), 16));
  return out;
}

/** Lines of up to 16 bytes, the way iasl prints a raw buffer. */
function rawLines(out: Out, offset: number, bytes: number[], name: string): void {
  for (let i = 0; i < bytes.length; i += 16) {
    const chunk = bytes.slice(i, i + 16);
    out.field(offset + i, chunk.length, name, byteList(chunk));
  }
}

function flagNames(raw: number, names: [number, string][]): string {
  const set = names.filter(([mask]) => (raw & mask) !== 0).map(([, n]) => n);
  const unknown = names.reduce((m, [mask]) => m & ~mask, raw);
  if (unknown) set.push(`reserved bits 0x${unknown.toString(16)}`);
  return set.length ? set.join(", ") : "none";
}

function sizeText(bytes: bigint): string {
  const units: [bigint, string][] = [[1n << 40n, "TiB"], [1n << 30n, "GiB"], [1n << 20n, "MiB"], [1n << 10n, "KiB"]];
  for (const [u, n] of units) if (bytes >= u && bytes % u === 0n) return `${bytes / u} ${n}`;
  return `${bytes} bytes`;
}

export function renderDmarText(t: DmarTable): string {
  const out = new Out();
  const counts = new Map<string, number>();
  for (const s of t.structures) counts.set(s.type, (counts.get(s.type) ?? 0) + 1);
  out.lines.push(
    "/*",
    " * DMAR: DMA Remapping Reporting table (Intel VT-d specification, chapter 8)",
    ` * ${[...counts].map(([k, n]) => `${n} ${k}`).join(", ") || "no remapping structures"}`,
    " *",
    " * Format: [HexOffset DecimalOffset ByteLength]  FieldName : FieldValue [note]",
    " */",
    "",
  );
  renderHeader(out, t);
  let o = DMAR_HEADER_SIZE;
  for (const s of t.structures) o = renderStructure(out, s, o);
  const trailing = hexToBytes(t.trailing);
  if (trailing.length) {
    out.blank();
    out.field(o, trailing.length, "Trailing Bytes", byteList(trailing), "too short to form a structure");
  }
  return out.lines.join("\n") + "\n";
}

function renderHeader(out: Out, t: DmarTable): void {
  out.field(0, 4, "Signature", `"${t.signature}"`, "DMA Remapping table");
  out.field(4, 4, "Table Length", h(t.length, 4), `${t.length} bytes`);
  out.field(8, 1, "Revision", h(t.revision, 1));
  out.field(9, 1, "Checksum", h(t.checksum, 1), t.checksumValid ? undefined : "wrong: the table does not sum to zero");
  out.field(10, 6, "Oem ID", ...quoted(t.oemId));
  out.field(16, 8, "Oem Table ID", ...quoted(t.oemTableId));
  out.field(24, 4, "Oem Revision", h(t.oemRevision, 4));
  out.field(28, 4, "Asl Compiler ID", ...quoted(t.creatorId));
  out.field(32, 4, "Asl Compiler Revision", h(t.creatorRevision, 4));
  out.blank();
  out.field(36, 1, "Host Address Width", h(t.hostAddressWidth - 1, 1), `${t.hostAddressWidth}-bit DMA addresses`);
  out.field(37, 1, "Flags", h(t.flags.raw, 1), flagNames(t.flags.raw, [
    [1, "INTR_REMAP: interrupt remapping supported"],
    [2, "X2APIC_OPT_OUT"],
    [4, "DMA_CTRL_PLATFORM_OPT_IN"],
  ]));
  const reserved = hexToBytes(t.reserved);
  out.field(38, 10, "Reserved", byteList(reserved.length === 10 ? reserved : new Array<number>(10).fill(0)));
}

/** Renders one structure starting at byte `o`; returns the offset after it. */
function renderStructure(out: Out, s: DmarStructure, o: number): number {
  out.blank();
  const header = (length: number) => {
    out.field(o, 2, "Subtable Type", h(s.type === "unknown" ? s.typeCode : STRUCTURE_CODE[s.type], 2), DMAR_STRUCTURE_NAMES[s.type]);
    out.field(o + 2, 2, "Length", h(length, 2));
    out.blank();
  };
  switch (s.type) {
    case "DRHD": {
      const length = DRHD_FIXED_SIZE + scopesLength(s.scopes);
      header(length);
      out.field(o + 4, 1, "Flags", h(s.flags.raw, 1), flagNames(s.flags.raw, [[1, "INCLUDE_PCI_ALL: every device of the segment"]]));
      const bytes = 1n << BigInt(s.size.raw + 12);
      out.field(o + 5, 1, "Size", h(s.size.raw, 1), `register set ${sizeText(bytes)}`);
      out.field(o + 6, 2, "PCI Segment Number", h(s.segment, 2));
      out.field(o + 8, 8, "Register Base Address", h64(s.registerBase));
      renderScopes(out, s.scopes, o + DRHD_FIXED_SIZE);
      return o + length;
    }
    case "RMRR": {
      const length = RMRR_FIXED_SIZE + scopesLength(s.scopes);
      header(length);
      out.field(o + 4, 2, "Reserved", h(s.reserved ?? 0, 2));
      out.field(o + 6, 2, "PCI Segment Number", h(s.segment, 2));
      out.field(o + 8, 8, "Base Address", h64(s.base));
      const base = parseHexBig(s.base);
      const limit = parseHexBig(s.limit);
      const note = base === null || limit === null ? undefined
        : limit >= base ? `${sizeText(limit - base + 1n)} region` : "limit below base: empty region";
      out.field(o + 16, 8, "End Address (limit)", h64(s.limit), note);
      renderScopes(out, s.scopes, o + RMRR_FIXED_SIZE);
      return o + length;
    }
    case "ATSR":
    case "SATC": {
      const length = ATSR_FIXED_SIZE + scopesLength(s.scopes);
      header(length);
      const names: [number, string][] = s.type === "ATSR"
        ? [[1, "ALL_PORTS: every root port supports ATS"]]
        : [[1, "ATC_REQUIRED: listed devices must enable ATS"]];
      out.field(o + 4, 1, "Flags", h(s.flags.raw, 1), flagNames(s.flags.raw, names));
      out.field(o + 5, 1, "Reserved", h(s.reserved ?? 0, 1));
      out.field(o + 6, 2, "PCI Segment Number", h(s.segment, 2));
      renderScopes(out, s.scopes, o + ATSR_FIXED_SIZE);
      return o + length;
    }
    case "SIDP": {
      const length = SIDP_FIXED_SIZE + scopesLength(s.scopes);
      header(length);
      out.field(o + 4, 2, "Reserved", h(s.reserved ?? 0, 2));
      out.field(o + 6, 2, "PCI Segment Number", h(s.segment, 2));
      renderScopes(out, s.scopes, o + SIDP_FIXED_SIZE);
      return o + length;
    }
    case "RHSA": {
      const extra = hexToBytes(s.extra);
      const length = RHSA_FIXED_SIZE + extra.length;
      header(length);
      out.field(o + 4, 4, "Reserved", h(s.reserved ?? 0, 4));
      out.field(o + 8, 8, "Base Address", h64(s.registerBase));
      out.field(o + 16, 4, "Proximity Domain", h(s.proximityDomain, 4));
      if (extra.length) rawLines(out, o + RHSA_FIXED_SIZE, extra, "Extra Bytes");
      return o + length;
    }
    case "ANDD": {
      const tail = s.nameTail === undefined ? [0] : hexToBytes(s.nameTail);
      const length = ANDD_FIXED_SIZE + s.name.length + tail.length;
      header(length);
      out.field(o + 4, 3, "Reserved", h(s.reserved ?? 0, 3));
      out.field(o + 7, 1, "Device Number", h(s.deviceNumber, 1));
      const terminated = tail[0] === 0 ? 1 : 0;
      out.field(o + 8, s.name.length + terminated, "Device Name", ...quoted(s.name));
      const padding = tail.slice(terminated);
      if (padding.length) rawLines(out, o + 8 + s.name.length + terminated, padding, "Name Padding");
      return o + length;
    }
    case "unknown": {
      const data = hexToBytes(s.data);
      header(4 + data.length);
      rawLines(out, o + 4, data, "Raw Data");
      return o + 4 + data.length;
    }
  }
}

const STRUCTURE_CODE: Record<Exclude<DmarStructure["type"], "unknown">, number> = {
  DRHD: 0, RMRR: 1, ATSR: 2, RHSA: 3, ANDD: 4, SATC: 5, SIDP: 6,
};

function scopeLength(sc: DmarDeviceScope): number {
  return DMAR_SCOPE_FIXED_SIZE + 2 * sc.path.length + (sc.pathTrailingByte === undefined ? 0 : 1);
}

function scopesLength(scopes: DmarDeviceScope[]): number {
  return scopes.reduce((n, sc) => n + scopeLength(sc), 0);
}

function renderScopes(out: Out, scopes: DmarDeviceScope[], o: number): void {
  for (const sc of scopes) {
    out.blank();
    const flags = sc.flags?.raw ?? 0;
    out.field(o, 1, "Device Scope Type", h(sc.typeCode, 1), DMAR_SCOPE_NAMES[sc.type]);
    out.field(o + 1, 1, "Entry Length", h(scopeLength(sc), 1));
    out.field(o + 2, 1, "Flags", h(flags, 1), flags ? flagNames(flags, [
      [1, "REQ_WO_PASID_NESTED_NOTALLOWED"],
      [2, "REQ_WO_PASID_PWSNP_NOTALLOWED"],
      [4, "REQ_WO_PASID_PGSNP_NOTALLOWED"],
      [8, "ATC_HARDENED"],
      [16, "ATC_REQUIRED"],
    ]) : undefined);
    out.field(o + 3, 1, "Reserved", h(sc.reserved ?? 0, 1));
    const idNote = sc.type === "ioapic" ? "IOAPIC id" : sc.type === "hpet" ? "HPET number"
      : sc.type === "acpi-namespace" ? "ANDD device number" : undefined;
    out.field(o + 4, 1, "Enumeration ID", h(sc.enumerationId, 1), idNote);
    out.field(o + 5, 1, "PCI Bus Number", h(sc.startBus, 1));
    let p = o + DMAR_SCOPE_FIXED_SIZE;
    sc.path.forEach((e, i) => {
      const note = i === 0
        ? `${formatBdf({ bus: sc.startBus, device: e.device & 0x1f, fn: e.function & 7 })}${e.device > 0x1f || e.function > 7 ? ": device or function out of range" : ""}`
        : "behind the bridge above";
      out.field(p, 2, "PCI Path", `${h(e.device, 1)},${h(e.function, 1)}`, note);
      p += 2;
    });
    if (sc.pathTrailingByte !== undefined) {
      out.field(p, 1, "Path Trailing Byte", h(sc.pathTrailingByte, 1), "odd entry length");
    }
    o += scopeLength(sc);
  }
}
