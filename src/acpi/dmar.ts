/**
 * The ACPI DMAR table (DMA Remapping Reporting, Intel VT-d specification chapter 8): decode firmware bytes into
 * plain JSON-able objects and encode them back, byte for byte. Reserved fields that firmware left nonzero, odd
 * path bytes, unknown structure types and bytes that trail the last structure are all kept, so
 * encodeDmar(decodeDmar(x), { keepChecksum: true }) reproduces x exactly.
 *
 * Decoding never loops forever and throws nothing but AcpiError: a length that is zero, too small for its
 * structure, or runs past the end of its container names the byte offset where it was found.
 */
import { hex, parseHexBig } from "../core/hex.js";
import { AcpiError, ByteReader, ByteWriter } from "./bytes.js";
import { decodeSdtHeader, finishTable, writeSdtHeader, type SdtHeader } from "./sdt.js";

export { renderDmarText } from "./dmar-text.js";

/** SDT header (36 bytes) + Host Address Width + Flags + 10 reserved bytes (VT-d spec §8.1). */
export const DMAR_HEADER_SIZE = 48;

/** DMAR Flags (VT-d spec §8.1). */
export const DMAR_INTR_REMAP = 1 << 0;
export const DMAR_X2APIC_OPT_OUT = 1 << 1;
export const DMA_CTRL_PLATFORM_OPT_IN_FLAG = 1 << 2;

/** Remapping structure types (VT-d spec §8.2). */
export const DMAR_TYPE_DRHD = 0;
export const DMAR_TYPE_RMRR = 1;
export const DMAR_TYPE_ATSR = 2;
export const DMAR_TYPE_RHSA = 3;
export const DMAR_TYPE_ANDD = 4;
export const DMAR_TYPE_SATC = 5;
export const DMAR_TYPE_SIDP = 6;

/** Size of each structure's fixed part, its 4-byte Type/Length header included (VT-d spec §8.3–§8.9). */
export const DRHD_FIXED_SIZE = 16;
export const RMRR_FIXED_SIZE = 24;
export const ATSR_FIXED_SIZE = 8;
export const RHSA_FIXED_SIZE = 20;
export const ANDD_FIXED_SIZE = 8;
export const SATC_FIXED_SIZE = 8;
export const SIDP_FIXED_SIZE = 8;

/** DRHD Flags bit 0 (VT-d spec §8.3): the unit covers every device of its segment not claimed by another. */
export const DRHD_INCLUDE_PCI_ALL = 1 << 0;
/** ATSR Flags bit 0 (VT-d spec §8.5): every root port of the segment supports ATS. */
export const ATSR_ALL_PORTS = 1 << 0;
/** SATC Flags bit 0 (VT-d spec §8.8): the devices listed must have ATS enabled. */
export const SATC_ATC_REQUIRED = 1 << 0;

/** Device scope entry types (VT-d spec §8.3.1). */
export const DMAR_SCOPE_ENDPOINT = 1;
export const DMAR_SCOPE_BRIDGE = 2;
export const DMAR_SCOPE_IOAPIC = 3;
export const DMAR_SCOPE_HPET = 4;
export const DMAR_SCOPE_ACPI_NAMESPACE = 5;
/** Type, Length, Flags, Reserved, Enumeration ID, Start Bus Number (VT-d spec §8.3.1). */
export const DMAR_SCOPE_FIXED_SIZE = 6;

/** Device scope Flags byte (offset 2; reserved before VT-d spec revision 4.0, §8.3.1). */
export const SCOPE_REQ_WO_PASID_NESTED_NOTALLOWED = 1 << 0;
export const SCOPE_REQ_WO_PASID_PWSNP_NOTALLOWED = 1 << 1;
export const SCOPE_REQ_WO_PASID_PGSNP_NOTALLOWED = 1 << 2;
export const SCOPE_ATC_HARDENED = 1 << 3;
export const SCOPE_ATC_REQUIRED = 1 << 4;

export type DmarScopeType = "endpoint" | "bridge" | "ioapic" | "hpet" | "acpi-namespace" | "unknown";

export interface DmarPathEntry {
  device: number;
  function: number;
}

export interface DmarScopeFlags {
  raw: number;
  reqWoPasidNestedNotAllowed: boolean;
  reqWoPasidPwsnpNotAllowed: boolean;
  reqWoPasidPgsnpNotAllowed: boolean;
  atcHardened: boolean;
  atcRequired: boolean;
}

export interface DmarDeviceScope {
  type: DmarScopeType;
  typeCode: number;
  /** Byte offset of the entry in the table (informational; encode recomputes it). */
  offset: number;
  /** Entry Length as stored (informational; encode recomputes it). */
  length: number;
  /** The Flags byte (offset 2), present only when nonzero. */
  flags?: DmarScopeFlags;
  /** The Reserved byte (offset 3), present only when nonzero. */
  reserved?: number;
  /** IOAPIC id, HPET number or ACPI namespace device number; reserved for PCI scopes. */
  enumerationId: number;
  startBus: number;
  /** Hierarchical path from the start bus: one (device, function) pair per bridge crossed. */
  path: DmarPathEntry[];
  /** A lone byte after the last path pair, when the entry length is odd. */
  pathTrailingByte?: number;
}

interface StructureBase {
  typeCode: number;
  /** Byte offset of the structure in the table (informational; encode recomputes it). */
  offset: number;
  /** Length as stored (informational; encode recomputes it). */
  length: number;
}

/** DMA Remapping Hardware Unit Definition (VT-d spec §8.3). */
export interface DmarDrhd extends StructureBase {
  type: "DRHD";
  flags: { raw: number; includePciAll: boolean };
  /** Size field: the register set spans 2^raw 4 KiB pages; `bytes` is that size (reserved, so 0, before rev 3). */
  size: { raw: number; bytes: string };
  segment: number;
  registerBase: string;
  scopes: DmarDeviceScope[];
}

/** Reserved Memory Region Reporting (VT-d spec §8.4). */
export interface DmarRmrr extends StructureBase {
  type: "RMRR";
  reserved?: number;
  segment: number;
  base: string;
  /** Last byte of the region (inclusive). */
  limit: string;
  scopes: DmarDeviceScope[];
}

/** Root Port ATS Capability Reporting (VT-d spec §8.5). */
export interface DmarAtsr extends StructureBase {
  type: "ATSR";
  flags: { raw: number; allPorts: boolean };
  reserved?: number;
  segment: number;
  scopes: DmarDeviceScope[];
}

/** Remapping Hardware Static Affinity (VT-d spec §8.6). */
export interface DmarRhsa extends StructureBase {
  type: "RHSA";
  reserved?: number;
  registerBase: string;
  proximityDomain: number;
  /** Bytes after the 20-byte structure, when its length says there are any (hex). */
  extra?: string;
}

/** ACPI Name-space Device Declaration (VT-d spec §8.7). */
export interface DmarAndd extends StructureBase {
  type: "ANDD";
  /** The three reserved bytes as one little-endian number, present only when nonzero. */
  reserved?: number;
  deviceNumber: number;
  /** ACPI object name, e.g. "\\_SB.PCI0.I2C0" (bytes before the first NUL). */
  name: string;
  /** Bytes after the name (hex), when they are anything but the single NUL terminator. */
  nameTail?: string;
}

/** SoC Integrated Address Translation Cache Reporting (VT-d spec §8.8). */
export interface DmarSatc extends StructureBase {
  type: "SATC";
  flags: { raw: number; atcRequired: boolean };
  reserved?: number;
  segment: number;
  scopes: DmarDeviceScope[];
}

/** SoC Integrated Device Property Reporting (VT-d spec §8.9). */
export interface DmarSidp extends StructureBase {
  type: "SIDP";
  reserved?: number;
  segment: number;
  scopes: DmarDeviceScope[];
}

/** A structure type this codec does not know: its body (after Type and Length) kept as hex. */
export interface DmarUnknown extends StructureBase {
  type: "unknown";
  data: string;
}

export type DmarStructure = DmarDrhd | DmarRmrr | DmarAtsr | DmarRhsa | DmarAndd | DmarSatc | DmarSidp | DmarUnknown;

export interface DmarFlags {
  raw: number;
  interruptRemapping: boolean;
  x2apicOptOut: boolean;
  dmaControlOptIn: boolean;
}

export interface DmarTable extends SdtHeader {
  signature: "DMAR";
  /** Maximum DMA physical addressability in bits (the stored field plus one). */
  hostAddressWidth: number;
  flags: DmarFlags;
  /** The 10 reserved bytes at offset 38 (hex), present only when nonzero. */
  reserved?: string;
  structures: DmarStructure[];
  /** 1–3 bytes after the last structure, too few to form one (hex). */
  trailing?: string;
}

export interface DmarEncodeOptions {
  /** Write the stored checksum byte instead of computing it (reproduces a table whose checksum was wrong). */
  keepChecksum?: boolean;
}

const STRUCTURE_CODES: Record<Exclude<DmarStructure["type"], "unknown">, number> = {
  DRHD: DMAR_TYPE_DRHD,
  RMRR: DMAR_TYPE_RMRR,
  ATSR: DMAR_TYPE_ATSR,
  RHSA: DMAR_TYPE_RHSA,
  ANDD: DMAR_TYPE_ANDD,
  SATC: DMAR_TYPE_SATC,
  SIDP: DMAR_TYPE_SIDP,
};

const SCOPE_CODES: Record<Exclude<DmarScopeType, "unknown">, number> = {
  endpoint: DMAR_SCOPE_ENDPOINT,
  bridge: DMAR_SCOPE_BRIDGE,
  ioapic: DMAR_SCOPE_IOAPIC,
  hpet: DMAR_SCOPE_HPET,
  "acpi-namespace": DMAR_SCOPE_ACPI_NAMESPACE,
};

export function scopeTypeName(code: number): DmarScopeType {
  for (const [name, c] of Object.entries(SCOPE_CODES)) if (c === code) return name as DmarScopeType;
  return "unknown";
}

const at = (offset: number) => `0x${offset.toString(16)}`;

function bytesToHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

function isZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Decode

export function decodeDmar(bytes: Uint8Array): DmarTable {
  const h = decodeSdtHeader(bytes, ["DMAR"]);
  if (h.length < DMAR_HEADER_SIZE) {
    throw new AcpiError("ACPI_TRUNCATED",
      `DMAR length field is ${h.length}: the DMAR header alone is ${DMAR_HEADER_SIZE} bytes`, 4);
  }
  const r = new ByteReader(bytes, h.length);
  const flags = r.u8(37, "DMAR Flags");
  const reserved = r.slice(38, 10, "DMAR Reserved");
  const structures: DmarStructure[] = [];
  let trailing: string | undefined;
  let o = DMAR_HEADER_SIZE;
  while (o < h.length) {
    const left = h.length - o;
    if (left < 4) {
      trailing = bytesToHex(r.slice(o, left));
      break;
    }
    const typeCode = r.u16(o, "structure Type");
    const length = r.u16(o + 2, "structure Length");
    if (length < 4) {
      throw new AcpiError("ACPI_BAD_SUBTABLE_LENGTH",
        `DMAR structure (type ${typeCode}) has length ${length}; a structure is at least 4 bytes`, o);
    }
    if (length > left) {
      throw new AcpiError("ACPI_BAD_SUBTABLE_LENGTH",
        `DMAR structure (type ${typeCode}) has length ${length} but only ${left} bytes of the table are left`, o);
    }
    structures.push(decodeStructure(r, o, typeCode, length));
    o += length;
  }
  return {
    signature: "DMAR",
    length: h.length,
    revision: h.revision,
    checksum: h.checksum,
    checksumValid: h.checksumValid,
    oemId: h.oemId,
    oemTableId: h.oemTableId,
    oemRevision: h.oemRevision,
    creatorId: h.creatorId,
    creatorRevision: h.creatorRevision,
    hostAddressWidth: r.u8(36, "Host Address Width") + 1,
    flags: {
      raw: flags,
      interruptRemapping: (flags & DMAR_INTR_REMAP) !== 0,
      x2apicOptOut: (flags & DMAR_X2APIC_OPT_OUT) !== 0,
      dmaControlOptIn: (flags & DMA_CTRL_PLATFORM_OPT_IN_FLAG) !== 0,
    },
    ...(isZero(reserved) ? {} : { reserved: bytesToHex(reserved) }),
    structures,
    ...(trailing === undefined ? {} : { trailing }),
  };
}

function needFixed(name: string, o: number, length: number, fixed: number): void {
  if (length < fixed) {
    throw new AcpiError("ACPI_BAD_SUBTABLE_LENGTH",
      `${name} structure has length ${length}, less than its ${fixed}-byte fixed part`, o);
  }
}

function decodeStructure(r: ByteReader, o: number, typeCode: number, length: number): DmarStructure {
  const base = { typeCode, offset: o, length };
  const end = o + length;
  switch (typeCode) {
    case DMAR_TYPE_DRHD: {
      needFixed("DRHD", o, length, DRHD_FIXED_SIZE);
      const f = r.u8(o + 4);
      const size = r.u8(o + 5);
      return {
        type: "DRHD",
        ...base,
        flags: { raw: f, includePciAll: (f & DRHD_INCLUDE_PCI_ALL) !== 0 },
        size: { raw: size, bytes: hex(1n << BigInt(size + 12)) },
        segment: r.u16(o + 6),
        registerBase: hex(r.u64(o + 8)),
        scopes: decodeScopes(r, o + DRHD_FIXED_SIZE, end, `DRHD at ${at(o)}`),
      };
    }
    case DMAR_TYPE_RMRR: {
      needFixed("RMRR", o, length, RMRR_FIXED_SIZE);
      const reserved = r.u16(o + 4);
      return {
        type: "RMRR",
        ...base,
        ...(reserved ? { reserved } : {}),
        segment: r.u16(o + 6),
        base: hex(r.u64(o + 8)),
        limit: hex(r.u64(o + 16)),
        scopes: decodeScopes(r, o + RMRR_FIXED_SIZE, end, `RMRR at ${at(o)}`),
      };
    }
    case DMAR_TYPE_ATSR:
    case DMAR_TYPE_SATC: {
      const isAtsr = typeCode === DMAR_TYPE_ATSR;
      const name = isAtsr ? "ATSR" : "SATC";
      needFixed(name, o, length, ATSR_FIXED_SIZE);
      const f = r.u8(o + 4);
      const reserved = r.u8(o + 5);
      const rest = {
        ...(reserved ? { reserved } : {}),
        segment: r.u16(o + 6),
        scopes: decodeScopes(r, o + ATSR_FIXED_SIZE, end, `${name} at ${at(o)}`),
      };
      return isAtsr
        ? { type: "ATSR", ...base, flags: { raw: f, allPorts: (f & ATSR_ALL_PORTS) !== 0 }, ...rest }
        : { type: "SATC", ...base, flags: { raw: f, atcRequired: (f & SATC_ATC_REQUIRED) !== 0 }, ...rest };
    }
    case DMAR_TYPE_RHSA: {
      needFixed("RHSA", o, length, RHSA_FIXED_SIZE);
      const reserved = r.u32(o + 4);
      return {
        type: "RHSA",
        ...base,
        ...(reserved ? { reserved } : {}),
        registerBase: hex(r.u64(o + 8)),
        proximityDomain: r.u32(o + 16),
        ...(length > RHSA_FIXED_SIZE ? { extra: bytesToHex(r.slice(o + RHSA_FIXED_SIZE, length - RHSA_FIXED_SIZE)) } : {}),
      };
    }
    case DMAR_TYPE_ANDD: {
      needFixed("ANDD", o, length, ANDD_FIXED_SIZE);
      const reserved = r.u8(o + 4) | (r.u8(o + 5) << 8) | (r.u8(o + 6) << 16);
      const nameBytes = r.slice(o + ANDD_FIXED_SIZE, length - ANDD_FIXED_SIZE);
      const nul = nameBytes.indexOf(0);
      const nameEnd = nul < 0 ? nameBytes.length : nul;
      const tail = nameBytes.subarray(nameEnd);
      return {
        type: "ANDD",
        ...base,
        ...(reserved ? { reserved } : {}),
        deviceNumber: r.u8(o + 7),
        name: String.fromCharCode(...nameBytes.subarray(0, nameEnd)),
        ...(tail.length === 1 && tail[0] === 0 ? {} : { nameTail: bytesToHex(tail) }),
      };
    }
    case DMAR_TYPE_SIDP: {
      needFixed("SIDP", o, length, SIDP_FIXED_SIZE);
      const reserved = r.u16(o + 4);
      return {
        type: "SIDP",
        ...base,
        ...(reserved ? { reserved } : {}),
        segment: r.u16(o + 6),
        scopes: decodeScopes(r, o + SIDP_FIXED_SIZE, end, `SIDP at ${at(o)}`),
      };
    }
    default:
      return { type: "unknown", ...base, data: bytesToHex(r.slice(o + 4, length - 4)) };
  }
}

function decodeScopeFlags(raw: number): DmarScopeFlags {
  return {
    raw,
    reqWoPasidNestedNotAllowed: (raw & SCOPE_REQ_WO_PASID_NESTED_NOTALLOWED) !== 0,
    reqWoPasidPwsnpNotAllowed: (raw & SCOPE_REQ_WO_PASID_PWSNP_NOTALLOWED) !== 0,
    reqWoPasidPgsnpNotAllowed: (raw & SCOPE_REQ_WO_PASID_PGSNP_NOTALLOWED) !== 0,
    atcHardened: (raw & SCOPE_ATC_HARDENED) !== 0,
    atcRequired: (raw & SCOPE_ATC_REQUIRED) !== 0,
  };
}

/** Device scope entries filling [start, end) of their structure (VT-d spec §8.3.1). */
function decodeScopes(r: ByteReader, start: number, end: number, owner: string): DmarDeviceScope[] {
  const scopes: DmarDeviceScope[] = [];
  let s = start;
  while (s < end) {
    const left = end - s;
    if (left < 2) {
      throw new AcpiError("ACPI_BAD_SCOPE_LENGTH",
        `device scope in ${owner}: 1 byte left before the structure ends; a device scope is at least 6 bytes`, s);
    }
    const typeCode = r.u8(s);
    const length = r.u8(s + 1);
    if (length < DMAR_SCOPE_FIXED_SIZE) {
      throw new AcpiError("ACPI_BAD_SCOPE_LENGTH",
        `device scope in ${owner} has length ${length}; a device scope is at least 6 bytes`, s);
    }
    if (length > left) {
      throw new AcpiError("ACPI_BAD_SCOPE_LENGTH",
        `device scope in ${owner} has length ${length} but only ${left} bytes of the structure are left`, s);
    }
    const flags = r.u8(s + 2);
    const reserved = r.u8(s + 3);
    const path: DmarPathEntry[] = [];
    let p = s + DMAR_SCOPE_FIXED_SIZE;
    for (; p + 2 <= s + length; p += 2) path.push({ device: r.u8(p), function: r.u8(p + 1) });
    scopes.push({
      type: scopeTypeName(typeCode),
      typeCode,
      offset: s,
      length,
      ...(flags ? { flags: decodeScopeFlags(flags) } : {}),
      ...(reserved ? { reserved } : {}),
      enumerationId: r.u8(s + 4),
      startBus: r.u8(s + 5),
      path,
      ...(p < s + length ? { pathTrailingByte: r.u8(p) } : {}),
    });
    s += length;
  }
  return scopes;
}

// ---------------------------------------------------------------------------------------------------------------
// Encode. Input may be hand-edited JSON, so every value is checked and a bad one is an AcpiError naming it.

function badValue(where: string, v: unknown, expected: string): AcpiError {
  return new AcpiError("ACPI_BAD_VALUE", `${where} is ${JSON.stringify(v) ?? String(v)}: expected ${expected}`);
}

function uint(v: unknown, bits: 8 | 16 | 24 | 32, where: string): number {
  const max = 2 ** bits - 1;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) throw badValue(where, v, `an integer 0..${max}`);
  return v;
}

/** True when every character code of `s` is in [min, 0xff]. */
function charsIn(s: string, min: number): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < min || c > 0xff) return false;
  }
  return true;
}

/** A fixed-width header text field: at most `width` single-byte characters. */
function text(v: unknown, width: number, where: string): string {
  if (typeof v !== "string" || v.length > width || !charsIn(v, 0)) {
    throw badValue(where, v, `text of at most ${width} single-byte characters`);
  }
  return v;
}

function optUint(v: unknown, bits: 8 | 16 | 24 | 32, where: string): number {
  return v === undefined ? 0 : uint(v, bits, where);
}

function u64Value(v: unknown, where: string): bigint {
  let n: bigint | null = null;
  if (typeof v === "string") n = parseHexBig(v);
  else if (typeof v === "bigint") n = v;
  else if (typeof v === "number" && Number.isSafeInteger(v)) n = BigInt(v);
  if (n === null || n < 0n || n > 0xffff_ffff_ffff_ffffn) throw badValue(where, typeof v === "bigint" ? hex(v) : v, 'a 64-bit "0x…" value');
  return n;
}

function hexBytes(v: unknown, where: string): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  if (Array.isArray(v)) return Uint8Array.from(v.map((x, i) => uint(x, 8, `${where}[${i}]`)));
  const t = typeof v === "string" ? v.replace(/\s+/g, "").replace(/^0x/i, "") : null;
  if (t === null || !/^([0-9a-fA-F]{2})*$/.test(t)) throw badValue(where, v, "hex bytes such as \"00ff10\"");
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(t.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A flags byte: `raw` gives every bit, then each named boolean that is present sets or clears its own bit. */
function flagsByte(raw: unknown, named: [boolean | undefined, number][], where: string): number {
  let f = optUint(raw, 8, `${where}.raw`);
  for (const [on, mask] of named) if (on !== undefined) f = on ? f | mask : f & ~mask;
  return f;
}

function structureCode(s: DmarStructure, where: string): number {
  if (s.type === "unknown") {
    const code = uint(s.typeCode, 16, `${where}.typeCode`);
    if (code <= DMAR_TYPE_SIDP) {
      throw new AcpiError("ACPI_BAD_VALUE", `${where}: an "unknown" structure cannot use type code ${code}, which is a known type`);
    }
    return code;
  }
  const code = STRUCTURE_CODES[s.type];
  if (code === undefined) throw badValue(`${where}.type`, (s as { type: unknown }).type, "DRHD, RMRR, ATSR, RHSA, ANDD, SATC, SIDP or unknown");
  return code;
}

export function encodeDmar(t: DmarTable, opts: DmarEncodeOptions = {}): Uint8Array {
  const w = new ByteWriter();
  writeSdtHeader(w, {
    signature: "DMAR",
    revision: uint(t.revision, 8, "revision"),
    oemId: text(t.oemId, 6, "oemId"),
    oemTableId: text(t.oemTableId, 8, "oemTableId"),
    oemRevision: uint(t.oemRevision, 32, "oemRevision"),
    creatorId: text(t.creatorId, 4, "creatorId"),
    creatorRevision: uint(t.creatorRevision, 32, "creatorRevision"),
  });
  const width = t.hostAddressWidth;
  if (typeof width !== "number" || !Number.isInteger(width) || width < 1 || width > 256) {
    throw badValue("hostAddressWidth", width, "a width in bits, 1..256");
  }
  w.u8(width - 1);
  const f: Partial<DmarFlags> = t.flags ?? {};
  w.u8(flagsByte(f.raw, [
    [f.interruptRemapping, DMAR_INTR_REMAP],
    [f.x2apicOptOut, DMAR_X2APIC_OPT_OUT],
    [f.dmaControlOptIn, DMA_CTRL_PLATFORM_OPT_IN_FLAG],
  ], "flags"));
  const reserved = hexBytes(t.reserved, "reserved");
  if (reserved.length !== 0 && reserved.length !== 10) throw badValue("reserved", t.reserved, "10 hex bytes");
  w.bytes(reserved.length === 10 ? reserved : new Uint8Array(10));
  if (!Array.isArray(t.structures)) throw badValue("structures", t.structures, "an array");
  t.structures.forEach((s, i) => encodeStructure(w, s, `structures[${i}] (${String(s?.type)})`));
  const trailing = hexBytes(t.trailing, "trailing");
  if (trailing.length > 3) {
    throw new AcpiError("ACPI_BAD_VALUE", `trailing holds ${trailing.length} bytes: 4 or more would be read as a structure`);
  }
  w.bytes(trailing);
  return finishTable(w, opts.keepChecksum ? uint(t.checksum, 8, "checksum") : undefined);
}

function encodeStructure(w: ByteWriter, s: DmarStructure, where: string): void {
  if (typeof s !== "object" || s === null) throw badValue(where, s, "a structure object");
  const start = w.length;
  w.u16(structureCode(s, where)).u16(0);
  switch (s.type) {
    case "DRHD":
      w.u8(flagsByte(s.flags?.raw, [[s.flags?.includePciAll, DRHD_INCLUDE_PCI_ALL]], `${where}.flags`));
      w.u8(optUint(s.size?.raw, 8, `${where}.size.raw`));
      w.u16(uint(s.segment, 16, `${where}.segment`));
      w.u64(u64Value(s.registerBase, `${where}.registerBase`));
      encodeScopes(w, s.scopes, where);
      break;
    case "RMRR":
      w.u16(optUint(s.reserved, 16, `${where}.reserved`));
      w.u16(uint(s.segment, 16, `${where}.segment`));
      w.u64(u64Value(s.base, `${where}.base`));
      w.u64(u64Value(s.limit, `${where}.limit`));
      encodeScopes(w, s.scopes, where);
      break;
    case "ATSR":
      w.u8(flagsByte(s.flags?.raw, [[s.flags?.allPorts, ATSR_ALL_PORTS]], `${where}.flags`));
      w.u8(optUint(s.reserved, 8, `${where}.reserved`));
      w.u16(uint(s.segment, 16, `${where}.segment`));
      encodeScopes(w, s.scopes, where);
      break;
    case "SATC":
      w.u8(flagsByte(s.flags?.raw, [[s.flags?.atcRequired, SATC_ATC_REQUIRED]], `${where}.flags`));
      w.u8(optUint(s.reserved, 8, `${where}.reserved`));
      w.u16(uint(s.segment, 16, `${where}.segment`));
      encodeScopes(w, s.scopes, where);
      break;
    case "SIDP":
      w.u16(optUint(s.reserved, 16, `${where}.reserved`));
      w.u16(uint(s.segment, 16, `${where}.segment`));
      encodeScopes(w, s.scopes, where);
      break;
    case "RHSA":
      w.u32(optUint(s.reserved, 32, `${where}.reserved`));
      w.u64(u64Value(s.registerBase, `${where}.registerBase`));
      w.u32(uint(s.proximityDomain, 32, `${where}.proximityDomain`));
      w.bytes(hexBytes(s.extra, `${where}.extra`));
      break;
    case "ANDD": {
      const reserved = optUint(s.reserved, 24, `${where}.reserved`);
      w.u8(reserved).u8(reserved >>> 8).u8(reserved >>> 16);
      w.u8(uint(s.deviceNumber, 8, `${where}.deviceNumber`));
      if (typeof s.name !== "string" || !charsIn(s.name, 1)) {
        throw badValue(`${where}.name`, s.name, "an ASCII name without NUL characters");
      }
      w.ascii(s.name, s.name.length);
      w.bytes(s.nameTail === undefined ? new Uint8Array(1) : hexBytes(s.nameTail, `${where}.nameTail`));
      break;
    }
    case "unknown":
      w.bytes(hexBytes(s.data, `${where}.data`));
      break;
  }
  const length = w.length - start;
  if (length > 0xffff) {
    throw new AcpiError("ACPI_ENCODE_TOO_LONG", `${where} would be ${length} bytes; a structure length is 16 bits`);
  }
  w.patchU16(start + 2, length);
}

function encodeScopes(w: ByteWriter, scopes: DmarDeviceScope[] | undefined, owner: string): void {
  if (scopes === undefined) return;
  if (!Array.isArray(scopes)) throw badValue(`${owner}.scopes`, scopes, "an array");
  scopes.forEach((sc, i) => {
    const where = `${owner}.scopes[${i}]`;
    if (typeof sc !== "object" || sc === null) throw badValue(where, sc, "a device scope object");
    let code: number;
    if (sc.type === "unknown") {
      code = uint(sc.typeCode, 8, `${where}.typeCode`);
      if (scopeTypeName(code) !== "unknown") {
        throw new AcpiError("ACPI_BAD_VALUE", `${where}: an "unknown" device scope cannot use type code ${code}, which is a known type`);
      }
    } else {
      const c = SCOPE_CODES[sc.type];
      if (c === undefined) throw badValue(`${where}.type`, sc.type, "endpoint, bridge, ioapic, hpet, acpi-namespace or unknown");
      code = c;
    }
    const start = w.length;
    w.u8(code).u8(0);
    const fl = sc.flags;
    w.u8(flagsByte(fl?.raw, [
      [fl?.reqWoPasidNestedNotAllowed, SCOPE_REQ_WO_PASID_NESTED_NOTALLOWED],
      [fl?.reqWoPasidPwsnpNotAllowed, SCOPE_REQ_WO_PASID_PWSNP_NOTALLOWED],
      [fl?.reqWoPasidPgsnpNotAllowed, SCOPE_REQ_WO_PASID_PGSNP_NOTALLOWED],
      [fl?.atcHardened, SCOPE_ATC_HARDENED],
      [fl?.atcRequired, SCOPE_ATC_REQUIRED],
    ], `${where}.flags`));
    w.u8(optUint(sc.reserved, 8, `${where}.reserved`));
    w.u8(uint(sc.enumerationId, 8, `${where}.enumerationId`));
    w.u8(uint(sc.startBus, 8, `${where}.startBus`));
    if (!Array.isArray(sc.path)) throw badValue(`${where}.path`, sc.path, "an array of {device, function}");
    sc.path.forEach((p, j) => {
      w.u8(uint(p?.device, 8, `${where}.path[${j}].device`));
      w.u8(uint(p?.function, 8, `${where}.path[${j}].function`));
    });
    if (sc.pathTrailingByte !== undefined) w.u8(uint(sc.pathTrailingByte, 8, `${where}.pathTrailingByte`));
    const length = w.length - start;
    if (length > 0xff) {
      throw new AcpiError("ACPI_ENCODE_TOO_LONG", `${where} would be ${length} bytes; a device scope length is 8 bits`);
    }
    w.patchU8(start + 1, length);
  });
}
