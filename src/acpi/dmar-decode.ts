/**
 * DMAR decoding (VT-d spec chapter 8). Never loops forever and throws nothing but AcpiError: a length that is
 * zero, too small for its structure, or runs past the end of its container names the byte offset where it was found.
 */
import { hex } from "../core/hex.js";
import { AcpiError, ByteReader } from "./bytes.js";
import { decodeSdtHeader } from "./sdt.js";
import {
  ANDD_FIXED_SIZE, ATSR_ALL_PORTS, ATSR_FIXED_SIZE, DMAR_HEADER_SIZE, DMAR_INTR_REMAP, DMAR_SCOPE_FIXED_SIZE,
  DMAR_TYPE_ANDD, DMAR_TYPE_ATSR, DMAR_TYPE_DRHD, DMAR_TYPE_RHSA, DMAR_TYPE_RMRR, DMAR_TYPE_SATC, DMAR_TYPE_SIDP,
  DMAR_X2APIC_OPT_OUT, DMA_CTRL_PLATFORM_OPT_IN_FLAG, DRHD_FIXED_SIZE, DRHD_INCLUDE_PCI_ALL, RHSA_FIXED_SIZE,
  RMRR_FIXED_SIZE, SATC_ATC_REQUIRED, SCOPE_ATC_HARDENED, SCOPE_ATC_REQUIRED, SCOPE_REQ_WO_PASID_NESTED_NOTALLOWED,
  SCOPE_REQ_WO_PASID_PGSNP_NOTALLOWED, SCOPE_REQ_WO_PASID_PWSNP_NOTALLOWED, SIDP_FIXED_SIZE, bytesToHex,
  scopeTypeName, type DmarDeviceScope, type DmarPathEntry, type DmarScopeFlags, type DmarStructure, type DmarTable,
} from "./dmar-format.js";

const at = (offset: number) => `0x${offset.toString(16)}`;

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
