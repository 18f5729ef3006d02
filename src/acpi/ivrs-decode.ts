/** IVRS decoding (AMD IOMMU specification 48882, §5.2). Throws nothing but AcpiError, naming the byte offset. */
import { formatRequesterId } from "../core/pci.js";
import { AcpiError, ByteReader } from "./bytes.js";
import { hex } from "../core/hex.js";
import { decodeSdtHeader } from "./sdt.js";
import {
  acpiIdOf, bytesToHex, dataSettingOf, entryTypeName, extendedSettingOf, isIvhdType, isIvmdType, ivInfoOf,
  ivhdAttributesOf, ivhdFeaturesOf, ivhdFlagsOf, ivhdInfoOf, ivmdFlagsOf, uidOf,
  typeHex,
} from "./ivrs-fields.js";
import {
  IVHD_ACPI_HID_FIXED_LENGTH, IVHD_DEV_ACPI_HID, IVHD_DEV_ALIAS, IVHD_DEV_ALIAS_RANGE, IVHD_DEV_ALL,
  IVHD_DEV_EXT_SELECT, IVHD_DEV_EXT_SELECT_RANGE, IVHD_DEV_PAD4, IVHD_DEV_PAD8, IVHD_DEV_RANGE_END, IVHD_DEV_SELECT,
  IVHD_DEV_SELECT_RANGE_START, IVHD_DEV_SPECIAL, IVHD_HEADER_LENGTH_10H, IVHD_HEADER_LENGTH_11H, IVHD_SPECIAL_HPET,
  IVHD_SPECIAL_IOAPIC, IVHD_TYPE_10H, IVMD_LENGTH, IVRS_BLOCK_HEADER_LENGTH, IVRS_HEADER_LENGTH, deviceEntryLength,
  type IvhdAliasEntry, type IvhdBlock, type IvhdEntry, type IvhdPad8Entry, type IvhdPlainEntry, type IvmdBlock,
  type IvrsBlock, type IvrsTable,
} from "./ivrs-format.js";



/** Decodes an IVRS table. Throws AcpiError (naming the byte offset) when its structure is broken. */
export function decodeIvrs(bytes: Uint8Array): IvrsTable {
  const h = decodeSdtHeader(bytes, ["IVRS"]);
  if (h.length < IVRS_HEADER_LENGTH) {
    throw new AcpiError("IVRS_TRUNCATED",
      `IVRS table is ${h.length} bytes, shorter than its ${IVRS_HEADER_LENGTH}-byte fixed part (header, IVinfo, reserved)`, h.length);
  }
  const r = new ByteReader(bytes, h.length);
  const table: IvrsTable = { ...h, signature: "IVRS", ivInfo: ivInfoOf(r.u32(36, "IVinfo")), blocks: [] };
  const reserved = r.u64(40, "IVRS reserved bytes");
  if (reserved !== 0n) table.reserved = hex(reserved);
  const blocks: IvrsBlock[] = [];
  let off = IVRS_HEADER_LENGTH;
  while (off < h.length) {
    const left = h.length - off;
    if (left < IVRS_BLOCK_HEADER_LENGTH) {
      table.trailing = bytesToHex(r.slice(off, left));
      break;
    }
    const typeCode = r.u8(off);
    const length = r.u16(off + 2);
    if (length < IVRS_BLOCK_HEADER_LENGTH) {
      throw new AcpiError("IVRS_BAD_LENGTH",
        `block type ${typeHex(typeCode)}: length field is ${length}, less than the ${IVRS_BLOCK_HEADER_LENGTH}-byte block header`, off);
    }
    if (length > left) {
      throw new AcpiError("IVRS_TRUNCATED",
        `block type ${typeHex(typeCode)}: length field says ${length} bytes but only ${left} are left in the table`, off);
    }
    if (isIvhdType(typeCode)) blocks.push(decodeIvhd(r, off, typeCode, length));
    else if (isIvmdType(typeCode)) blocks.push(decodeIvmd(r, off, typeCode, length));
    else blocks.push({ type: "unknown", typeCode, offset: off, length, raw: bytesToHex(r.slice(off, length)) });
    off += length;
  }
  table.blocks = blocks;
  return table;
}

function decodeIvhd(r: ByteReader, off: number, typeCode: number, length: number): IvhdBlock {
  const headerLength = typeCode === IVHD_TYPE_10H ? IVHD_HEADER_LENGTH_10H : IVHD_HEADER_LENGTH_11H;
  if (length < headerLength) {
    throw new AcpiError("IVRS_BAD_LENGTH",
      `IVHD type ${typeHex(typeCode)}: length field is ${length}, shorter than its ${headerLength}-byte header`, off);
  }
  const block: IvhdBlock = {
    type: "IVHD",
    typeCode,
    offset: off,
    flags: ivhdFlagsOf(r.u8(off + 1)),
    length,
    deviceId: formatRequesterId(r.u16(off + 4)),
    capabilityOffset: r.u16(off + 6),
    baseAddress: hex(r.u64(off + 8)),
    segment: r.u16(off + 16),
    info: ivhdInfoOf(r.u16(off + 18)),
    entries: [],
  };
  if (typeCode === IVHD_TYPE_10H) {
    block.features = ivhdFeaturesOf(r.u32(off + 20));
  } else {
    block.attributes = ivhdAttributesOf(r.u32(off + 20));
    block.efr = hex(r.u64(off + 24));
    block.efr2 = hex(r.u64(off + 32));
  }
  const end = off + length;
  let at = off + headerLength;
  while (at < end) {
    const entry = decodeEntry(r, at, end, off, typeCode);
    block.entries.push(entry);
    at += entry.length;
  }
  return block;
}

function decodeEntry(r: ByteReader, at: number, end: number, blockOff: number, blockType: number): IvhdEntry {
  const typeCode = r.u8(at);
  const left = end - at;
  const overrun = (length: number): AcpiError =>
    new AcpiError("IVRS_ENTRY_OVERRUN",
      `IVHD device entry type ${typeHex(typeCode)} is ${length} bytes but only ${left} are left in its IVHD ` +
        `(type ${typeHex(blockType)} at 0x${blockOff.toString(16)}, ending at 0x${end.toString(16)})`, at);
  if (left < 4) throw overrun(4);
  let length = deviceEntryLength(typeCode);
  if (typeCode === IVHD_DEV_ACPI_HID) {
    if (left < IVHD_ACPI_HID_FIXED_LENGTH) throw overrun(IVHD_ACPI_HID_FIXED_LENGTH);
    length = deviceEntryLength(typeCode, r.u8(at + 21));
  }
  if (length > left) throw overrun(length);
  const common = {
    typeCode,
    type: entryTypeName(typeCode),
    offset: at,
    length,
    deviceId: formatRequesterId(r.u16(at + 1)),
    dataSetting: dataSettingOf(r.u8(at + 3)),
  };
  switch (typeCode) {
    case IVHD_DEV_PAD4:
    case IVHD_DEV_ALL:
    case IVHD_DEV_SELECT:
    case IVHD_DEV_SELECT_RANGE_START:
    case IVHD_DEV_RANGE_END:
      return { ...common, type: entryTypeName(typeCode) as IvhdPlainEntry["type"] };
    case IVHD_DEV_PAD8: {
      const e: IvhdPad8Entry = { ...common, type: "pad8" };
      const rest = r.u32(at + 4);
      if (rest !== 0) e.reserved = hex(rest);
      return e;
    }
    case IVHD_DEV_ALIAS:
    case IVHD_DEV_ALIAS_RANGE: {
      const e: IvhdAliasEntry = {
        ...common,
        type: typeCode === IVHD_DEV_ALIAS ? "alias-select" : "alias-range-start",
        aliasId: formatRequesterId(r.u16(at + 5)),
      };
      const reserved = r.u8(at + 4) | (r.u8(at + 7) << 8);
      if (reserved !== 0) e.reserved = reserved;
      return e;
    }
    case IVHD_DEV_EXT_SELECT:
    case IVHD_DEV_EXT_SELECT_RANGE:
      return {
        ...common,
        type: typeCode === IVHD_DEV_EXT_SELECT ? "extended-select" : "extended-range-start",
        extendedSetting: extendedSettingOf(r.u32(at + 4)),
      };
    case IVHD_DEV_SPECIAL: {
      const variety = r.u8(at + 7);
      return {
        ...common,
        type: "special",
        handle: r.u8(at + 4),
        sourceId: formatRequesterId(r.u16(at + 5)),
        variety,
        varietyName: variety === IVHD_SPECIAL_IOAPIC ? "ioapic" : variety === IVHD_SPECIAL_HPET ? "hpet" : "reserved",
      };
    }
    case IVHD_DEV_ACPI_HID: {
      const uidFormat = r.u8(at + 20);
      return {
        ...common,
        type: "acpi-hid",
        hid: acpiIdOf(r.slice(at + 4, 8)),
        cid: acpiIdOf(r.slice(at + 12, 8)),
        uidFormat,
        uid: uidOf(uidFormat, r.slice(at + IVHD_ACPI_HID_FIXED_LENGTH, length - IVHD_ACPI_HID_FIXED_LENGTH)),
      };
    }
    default:
      return { ...common, type: "unknown", raw: bytesToHex(r.slice(at, length)) };
  }
}

function decodeIvmd(r: ByteReader, off: number, typeCode: number, length: number): IvmdBlock {
  if (length < IVMD_LENGTH) {
    throw new AcpiError("IVRS_BAD_LENGTH",
      `IVMD type ${typeHex(typeCode)}: length field is ${length}, shorter than the ${IVMD_LENGTH}-byte IVMD block`, off);
  }
  const block: IvmdBlock = {
    type: "IVMD",
    typeCode,
    offset: off,
    flags: ivmdFlagsOf(r.u8(off + 1)),
    length,
    deviceId: formatRequesterId(r.u16(off + 4)),
    auxData: r.u16(off + 6),
    start: hex(r.u64(off + 16)),
    memoryLength: hex(r.u64(off + 24)),
  };
  const reserved = r.u64(off + 8);
  if (reserved !== 0n) block.reserved = hex(reserved);
  if (length > IVMD_LENGTH) block.extra = bytesToHex(r.slice(off + IVMD_LENGTH, length - IVMD_LENGTH));
  return block;
}
