/** DMAR encoding (VT-d spec chapter 8), byte for byte the inverse of decodeDmar, checksum included. */
import { hex, parseHexBig } from "../core/hex.js";
import { AcpiError, ByteWriter } from "./bytes.js";
import { finishTable, writeSdtHeader } from "./sdt.js";
import {
  ATSR_ALL_PORTS, DMAR_INTR_REMAP, DMAR_SCOPE_CODES, DMAR_STRUCTURE_CODES, DMAR_TYPE_SIDP, DMAR_X2APIC_OPT_OUT,
  DMA_CTRL_PLATFORM_OPT_IN_FLAG, DRHD_INCLUDE_PCI_ALL, SATC_ATC_REQUIRED, SCOPE_ATC_HARDENED, SCOPE_ATC_REQUIRED,
  SCOPE_REQ_WO_PASID_NESTED_NOTALLOWED, SCOPE_REQ_WO_PASID_PGSNP_NOTALLOWED, SCOPE_REQ_WO_PASID_PWSNP_NOTALLOWED,
  scopeTypeName, type DmarDeviceScope, type DmarEncodeOptions, type DmarFlags, type DmarStructure, type DmarTable,
} from "./dmar-format.js";

// Input may be hand-edited JSON, so every value is checked and a bad one is an AcpiError naming it.

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
  const code = DMAR_STRUCTURE_CODES[s.type];
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
      const c = DMAR_SCOPE_CODES[sc.type];
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
