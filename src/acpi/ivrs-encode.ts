/** IVRS encoding (AMD IOMMU specification 48882, §5.2): the inverse of decodeIvrs, lengths and checksum computed. */
import { hex } from "../core/hex.js";
import { IommuError } from "../core/errors.js";
import { parsePciAddress, requesterId } from "../core/pci.js";
import { AcpiError, ByteWriter } from "./bytes.js";
import { finishTable, writeSdtHeader } from "./sdt.js";
import { entryTypeName, isIvhdType, isIvmdType, isPrintable, typeHex } from "./ivrs-fields.js";
import {
  IVHD_DEV_ACPI_HID, IVHD_DEV_ALIAS, IVHD_DEV_ALIAS_RANGE, IVHD_DEV_EXT_SELECT, IVHD_DEV_EXT_SELECT_RANGE,
  IVHD_DEV_PAD8, IVHD_DEV_SPECIAL, IVHD_TYPE_10H, IVRS_BLOCK_HEADER_LENGTH, deviceEntryLength, type IvrsTable,
} from "./ivrs-format.js";

// The input may come from hand-edited JSON: every field read is checked and a bad one is reported by
// its path ("blocks[1].entries[3].aliasId").

function bad(path: string, want: string, got: unknown): AcpiError {
  let shown: string;
  try {
    shown = got === undefined ? "nothing" : JSON.stringify(got, (_k, v: unknown) => (typeof v === "bigint" ? hex(v) : v)) ?? String(got);
  } catch {
    shown = String(got);
  }
  if (shown.length > 60) shown = shown.slice(0, 57) + "...";
  return new AcpiError("IVRS_BAD_FIELD", `IVRS ${path}: expected ${want}, got ${shown}`, undefined,
    "start from the output of 'iommu acpi decode --json' and keep each field's form");
}

function objAt(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad(path, "an object", v);
  return v as Record<string, unknown>;
}

function uint(v: unknown, path: string, bits: 8 | 16 | 32): number {
  const max = bits === 32 ? 0xffff_ffff : (1 << bits) - 1;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    throw bad(path, `an integer 0..${hex(max)}`, v);
  }
  return v;
}

function rawOf(v: unknown, path: string, bits: 8 | 16 | 32): number {
  return uint(objAt(v, path).raw, `${path}.raw`, bits);
}

function u64(v: unknown, path: string): bigint {
  let b: bigint | null = null;
  if (typeof v === "bigint") b = v;
  else if (typeof v === "number" && Number.isSafeInteger(v)) b = BigInt(v);
  else if (typeof v === "string" && /^0x[0-9a-f]{1,16}$/i.test(v)) b = BigInt(v);
  if (b === null || b < 0n || b > 0xffff_ffff_ffff_ffffn) throw bad(path, 'a 64-bit value as "0x…"', v);
  return b;
}

function deviceIdAt(v: unknown, path: string): number {
  if (typeof v === "string" && /^[0-9a-f]{1,2}:[0-9a-f]{1,2}\.[0-7]$/i.test(v.trim())) {
    try {
      return requesterId(parsePciAddress(v));
    } catch (e) {
      if (!(e instanceof IommuError)) throw e;
    }
  }
  throw bad(path, 'a requester id "bb:dd.f"', v);
}

function hexBytes(v: unknown, path: string): Uint8Array {
  if (typeof v !== "string" || !/^(?:[0-9a-f]{2})*$/i.test(v)) throw bad(path, "hex bytes (two digits per byte)", v);
  const out = new Uint8Array(v.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(v.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function optional<T>(v: unknown, read: (v: unknown) => T, fallback: T): T {
  return v === undefined || v === null ? fallback : read(v);
}

function textAt(v: unknown, path: string, width: number): string {
  if (typeof v !== "string" || v.length > width || [...v].some((c) => c.charCodeAt(0) > 0xff)) {
    throw bad(path, `text of at most ${width} characters`, v);
  }
  return v;
}

/** "0x…" → little-endian bytes (two digits per byte, odd counts padded); other text → its ASCII bytes. */
function idBytes(v: string, path: string, width?: number): Uint8Array {
  if (/^0x/i.test(v)) {
    let digits = v.slice(2);
    if (!/^[0-9a-f]+$/i.test(digits)) throw bad(path, '"0x" followed by hex digits', v);
    if (digits.length % 2 === 1) digits = "0" + digits;
    const n = digits.length / 2;
    if (width !== undefined && n > width) throw bad(path, `at most ${width} bytes`, v);
    const out = new Uint8Array(width ?? n);
    for (let i = 0; i < n; i++) out[i] = parseInt(digits.slice(digits.length - 2 * (i + 1), digits.length - 2 * i), 16);
    return out;
  }
  const chars = [...v].map((c) => c.charCodeAt(0));
  if (chars.some((c) => !isPrintable(c)) || (width !== undefined && chars.length > width)) {
    throw bad(path, `printable ASCII text${width === undefined ? "" : ` of at most ${width} characters`} or "0x…"`, v);
  }
  const out = new Uint8Array(width ?? chars.length);
  out.set(chars);
  return out;
}

/** An ACPI HID entry's HID/CID (`width` 8, zero-padded) or UID: null → zeros (no bytes for a UID). */
function idOrNull(v: unknown, path: string, width?: number): Uint8Array {
  if (v === null || v === undefined) return new Uint8Array(width ?? 0);
  if (typeof v !== "string") throw bad(path, 'text, "0x…" or null', v);
  return idBytes(v, path, width);
}

/** Encodes an IVRS table; lengths and the checksum are computed (or the stored checksum kept). */
export function encodeIvrs(t: IvrsTable, opts: { keepChecksum?: boolean } = {}): Uint8Array {
  const tab = objAt(t, "table");
  const w = new ByteWriter();
  writeSdtHeader(w, {
    signature: "IVRS",
    revision: uint(tab.revision, "revision", 8),
    oemId: textAt(tab.oemId, "oemId", 6),
    oemTableId: textAt(tab.oemTableId, "oemTableId", 8),
    oemRevision: uint(tab.oemRevision, "oemRevision", 32),
    creatorId: textAt(tab.creatorId, "creatorId", 4),
    creatorRevision: uint(tab.creatorRevision, "creatorRevision", 32),
  });
  w.u32(rawOf(tab.ivInfo, "ivInfo", 32));
  w.u64(optional(tab.reserved, (v) => u64(v, "reserved"), 0n));
  const blocks = tab.blocks;
  if (!Array.isArray(blocks)) throw bad("blocks", "an array", blocks);
  blocks.forEach((b, i) => encodeBlock(w, b, `blocks[${i}]`));
  if (tab.trailing !== undefined && tab.trailing !== null) {
    const trailing = hexBytes(tab.trailing, "trailing");
    if (trailing.length >= IVRS_BLOCK_HEADER_LENGTH) throw bad("trailing", "fewer than 8 bytes (more would form a block)", tab.trailing);
    w.bytes(trailing);
  }
  return finishTable(w, opts.keepChecksum ? uint(tab.checksum, "checksum", 8) : undefined);
}

function encodeBlock(w: ByteWriter, v: unknown, path: string): void {
  const b = objAt(v, path);
  const typeCode = uint(b.typeCode, `${path}.typeCode`, 8);
  const start = w.length;
  if (isIvhdType(typeCode)) encodeIvhd(w, b, typeCode, path);
  else if (isIvmdType(typeCode)) encodeIvmd(w, b, typeCode, path);
  else {
    const raw = hexBytes(b.raw, `${path}.raw`);
    if (raw.length < IVRS_BLOCK_HEADER_LENGTH || raw[0] !== typeCode || (raw[2] ?? 0) + ((raw[3] ?? 0) << 8) !== raw.length) {
      throw bad(`${path}.raw`, `the whole block: type ${typeHex(typeCode)} first and its length field equal to its size`,
        b.raw);
    }
    w.bytes(raw);
    return;
  }
  const length = w.length - start;
  if (length > 0xffff) throw bad(path, "a block of at most 65535 bytes", `${length} bytes`);
  w.patchU16(start + 2, length);
}

function encodeIvhd(w: ByteWriter, b: Record<string, unknown>, typeCode: number, path: string): void {
  w.u8(typeCode).u8(rawOf(b.flags, `${path}.flags`, 8)).u16(0);
  w.u16(deviceIdAt(b.deviceId, `${path}.deviceId`)).u16(uint(b.capabilityOffset, `${path}.capabilityOffset`, 16));
  w.u64(u64(b.baseAddress, `${path}.baseAddress`)).u16(uint(b.segment, `${path}.segment`, 16));
  w.u16(rawOf(b.info, `${path}.info`, 16));
  if (typeCode === IVHD_TYPE_10H) {
    w.u32(rawOf(b.features, `${path}.features`, 32));
  } else {
    w.u32(rawOf(b.attributes, `${path}.attributes`, 32)).u64(u64(b.efr, `${path}.efr`));
    w.u64(u64(b.efr2, `${path}.efr2`));
  }
  const entries = b.entries;
  if (!Array.isArray(entries)) throw bad(`${path}.entries`, "an array", entries);
  entries.forEach((e, i) => encodeEntry(w, e, `${path}.entries[${i}]`));
}

function encodeEntry(w: ByteWriter, v: unknown, path: string): void {
  const e = objAt(v, path);
  const typeCode = uint(e.typeCode, `${path}.typeCode`, 8);
  if (entryTypeName(typeCode) === "unknown") {
    const raw = hexBytes(e.raw, `${path}.raw`);
    const want = deviceEntryLength(typeCode);
    if (raw.length !== want || raw[0] !== typeCode) {
      throw bad(`${path}.raw`, `the whole ${want}-byte entry, type ${typeHex(typeCode)} first`, e.raw);
    }
    w.bytes(raw);
    return;
  }
  w.u8(typeCode).u16(deviceIdAt(e.deviceId, `${path}.deviceId`)).u8(rawOf(e.dataSetting, `${path}.dataSetting`, 8));
  switch (typeCode) {
    case IVHD_DEV_PAD8: {
      const reserved = optional(e.reserved, (x) => u64(x, `${path}.reserved`), 0n);
      if (reserved > 0xffff_ffffn) throw bad(`${path}.reserved`, "a 32-bit value (bytes 4–7)", e.reserved);
      w.u32(Number(reserved));
      return;
    }
    case IVHD_DEV_ALIAS:
    case IVHD_DEV_ALIAS_RANGE: {
      const reserved = optional(e.reserved, (x) => uint(x, `${path}.reserved`, 16), 0);
      w.u8(reserved & 0xff).u16(deviceIdAt(e.aliasId, `${path}.aliasId`)).u8(reserved >>> 8);
      return;
    }
    case IVHD_DEV_EXT_SELECT:
    case IVHD_DEV_EXT_SELECT_RANGE:
      w.u32(rawOf(e.extendedSetting, `${path}.extendedSetting`, 32));
      return;
    case IVHD_DEV_SPECIAL:
      w.u8(uint(e.handle, `${path}.handle`, 8)).u16(deviceIdAt(e.sourceId, `${path}.sourceId`));
      w.u8(uint(e.variety, `${path}.variety`, 8));
      return;
    case IVHD_DEV_ACPI_HID: {
      w.bytes(idOrNull(e.hid, `${path}.hid`, 8)).bytes(idOrNull(e.cid, `${path}.cid`, 8));
      const uid = idOrNull(e.uid, `${path}.uid`);
      if (uid.length > 0xff) throw bad(`${path}.uid`, "at most 255 bytes", e.uid);
      w.u8(uint(e.uidFormat, `${path}.uidFormat`, 8)).u8(uid.length).bytes(uid);
      return;
    }
    default:
      return; // 4-byte entries: type, device id and data setting only
  }
}

function encodeIvmd(w: ByteWriter, b: Record<string, unknown>, typeCode: number, path: string): void {
  w.u8(typeCode).u8(rawOf(b.flags, `${path}.flags`, 8)).u16(0);
  w.u16(deviceIdAt(b.deviceId, `${path}.deviceId`)).u16(uint(b.auxData, `${path}.auxData`, 16));
  w.u64(optional(b.reserved, (v) => u64(v, `${path}.reserved`), 0n));
  w.u64(u64(b.start, `${path}.start`)).u64(u64(b.memoryLength, `${path}.memoryLength`));
  if (b.extra !== undefined && b.extra !== null) w.bytes(hexBytes(b.extra, `${path}.extra`));
}
