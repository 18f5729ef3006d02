/**
 * IVRS, the I/O Virtualization Reporting Structure: how AMD firmware describes its IOMMUs (AMD-Vi) to the
 * operating system. Layout from the AMD I/O Virtualization Technology (IOMMU) Specification, publication 48882,
 * §5.2 "IVRS": a 48-byte fixed part (ACPI header, IVinfo, 8 reserved bytes) followed by blocks, each starting
 * with type (1 byte), flags (1), length (2) and a device id (2):
 *   IVHD (I/O Virtualization Hardware Definition, types 10h, 11h, 40h): one IOMMU and the device entries
 *        saying which requester ids it translates;
 *   IVMD (I/O Virtualization Memory Definition, types 20h, 21h, 22h): memory that must stay mapped (unity) or
 *        be excluded from translation for some devices.
 *
 * The decoded form is plain JSON (64-bit values as "0x…" strings, requester ids as "bb:dd.f"). Encoding follows
 * one rule: a bit field (`flags`, `info`, `dataSetting`, `ivInfo`, …) is written from its `raw`, the named bits
 * beside it are for reading; every other field is written as it stands. `offset` and `length` fields are
 * informational: the encoder computes lengths and the checksum. Decode → encode gives back the same bytes,
 * including reserved fields (kept when nonzero), unknown block and entry types (kept as raw bytes) and bytes
 * after the last block too short to be one.
 */
import { hex } from "../core/hex.js";
import { IommuError } from "../core/errors.js";
import { formatRequesterId, parsePciAddress, requesterId } from "../core/pci.js";
import { AcpiError, ByteReader, ByteWriter } from "./bytes.js";
import { decodeSdtHeader, finishTable, writeSdtHeader, type SdtHeader } from "./sdt.js";
import { renderDecodedIvrs } from "./ivrs-text.js";

// ---------------------------------------------------------------------------------------------------------------
// Spec constants (AMD IOMMU spec 48882, §5.2)

/** Bytes before the first block: ACPI header (36), IVinfo (4), reserved (8). */
export const IVRS_HEADER_LENGTH = 48;
/** Every block starts with type, flags, length and device id. */
export const IVRS_BLOCK_HEADER_LENGTH = 8;

/** Block types (§5.2.2 IVHD, §5.2.3 IVMD). */
export const IVHD_TYPE_10H = 0x10; // IVHD, legacy fixed format with the IOMMU Feature Reporting field
export const IVHD_TYPE_11H = 0x11; // IVHD with attributes and the EFR/EFR2 register images
export const IVHD_TYPE_40H = 0x40; // like 11h, and may hold variable-length (ACPI HID) device entries
export const IVMD_TYPE_ALL = 0x20; // IVMD for all peripherals
export const IVMD_TYPE_SELECT = 0x21; // IVMD for the specified peripheral
export const IVMD_TYPE_RANGE = 0x22; // IVMD for a peripheral range (device id .. auxiliary data)

/** IVHD block header sizes: type 10h ends after the 4-byte Feature Reporting field, 11h/40h after EFR2. */
export const IVHD_HEADER_LENGTH_10H = 24;
export const IVHD_HEADER_LENGTH_11H = 40;
/** IVMD blocks are 32 bytes. */
export const IVMD_LENGTH = 32;

/** IVHD device entry type codes (§5.2.2.2, "IVHD device entry type codes"). */
export const IVHD_DEV_PAD4 = 0x00;
export const IVHD_DEV_ALL = 0x01;
export const IVHD_DEV_SELECT = 0x02;
export const IVHD_DEV_SELECT_RANGE_START = 0x03;
export const IVHD_DEV_RANGE_END = 0x04;
export const IVHD_DEV_PAD8 = 0x40;
export const IVHD_DEV_ALIAS = 0x42;
export const IVHD_DEV_ALIAS_RANGE = 0x43;
export const IVHD_DEV_EXT_SELECT = 0x46;
export const IVHD_DEV_EXT_SELECT_RANGE = 0x47;
export const IVHD_DEV_SPECIAL = 0x48;
export const IVHD_DEV_ACPI_HID = 0xf0;
/** Fixed part of an ACPI HID (F0h) entry; byte 21 holds the UID length and the UID follows. */
export const IVHD_ACPI_HID_FIXED_LENGTH = 22;

/** Special device (48h) variety codes. */
export const IVHD_SPECIAL_IOAPIC = 1;
export const IVHD_SPECIAL_HPET = 2;

/** ACPI HID (F0h) entry UID format codes. */
export const UID_NOT_PRESENT = 0;
export const UID_IS_INTEGER = 1;
export const UID_IS_CHARACTER = 2;

/**
 * Length of a device entry from its type code (§5.2.2.2): Type[7:6] encodes 4 << Type[7:6] bytes (00b 4,
 * 01b 8, 10b 16, 11b 32), except the ACPI HID entry F0h, which is 22 bytes plus the UID length in byte 21.
 * `uidLength` is only read for F0h.
 */
export function deviceEntryLength(typeCode: number, uidLength = 0): number {
  if (typeCode === IVHD_DEV_ACPI_HID) return IVHD_ACPI_HID_FIXED_LENGTH + uidLength;
  return 4 << (typeCode >> 6);
}

// ---------------------------------------------------------------------------------------------------------------
// Decoded form

/** IVinfo (§5.2.1): what the platform's IOMMUs support as a whole. */
export interface IvInfo {
  raw: number;
  /** Bit 0 EFRSup: the IVHD EFR images (types 11h/40h) are valid. */
  efrSupported: boolean;
  /** Bit 1: the firmware used the IOMMU for DMA protection before the OS (pre-boot DMA remapping). */
  dmaRemapSupported: boolean;
  /** Bits 7:5 GVAsize in bits: 010b 48, 011b 57; null for other (reserved) codes. */
  guestVirtualAddressSize: number | null;
  /** Bits 14:8 PAsize: physical address bits. */
  physicalAddressSize: number;
  /** Bits 21:15 VAsize: virtual address bits. */
  virtualAddressSize: number;
  /** Bit 22 HtAtsResv: the HyperTransport ATS address range is reserved. */
  htAtsReserved: boolean;
}

/** IVHD flags byte (§5.2.2.1). PreFSup and PPRSup are defined for type 10h only (11h/40h report them in EFR). */
export interface IvhdFlags {
  raw: number;
  htTunEn: boolean; // bit 0
  passPw: boolean; // bit 1
  resPassPw: boolean; // bit 2
  isoc: boolean; // bit 3
  iotlbSup: boolean; // bit 4
  coherent: boolean; // bit 5
  preFSup: boolean; // bit 6
  pprSup: boolean; // bit 7
}

/** IVHD IOMMU Info (16 bits): MSI number of the IOMMU's event interrupt and its HyperTransport unit id. */
export interface IvhdInfo {
  raw: number;
  /** Bits 4:0 MSInum. */
  msiNumber: number;
  /** Bits 12:8 UnitID. */
  unitId: number;
}

/** IOMMU Feature Reporting field of a type 10h IVHD. */
export interface IvhdFeatures {
  raw: number;
  xtSup: boolean; // bit 0
  nxSup: boolean; // bit 1
  gtSup: boolean; // bit 2
  glxSup: number; // bits 4:3
  iaSup: boolean; // bit 5
  gaSup: boolean; // bit 6
  heSup: boolean; // bit 7
  pasMax: number; // bits 12:8
  pnCounters: number; // bits 16:13
  pnBanks: number; // bits 22:17
  msiNumPpr: number; // bits 27:23
  gats: number; // bits 29:28
  hats: number; // bits 31:30
}

/** IOMMU Attributes field of a type 11h/40h IVHD. */
export interface IvhdAttributes {
  raw: number;
  hatDis: boolean; // bit 0: host (v1) page tables not supported
  pnCounters: number; // bits 16:13
  pnBanks: number; // bits 22:17
  msiNumPpr: number; // bits 27:23
}

/** Device entry DTE setting byte: what the IOMMU lets through for these devices. */
export interface DataSetting {
  raw: number;
  initPass: boolean; // bit 0
  eIntPass: boolean; // bit 1
  nmiPass: boolean; // bit 2
  /** Bits 5:4 SysMgt: 0 blocked, 1 forwarded untranslated, 2 INTx forwarded untranslated, 3 translated. */
  sysMgt: number;
  lint0Pass: boolean; // bit 6
  lint1Pass: boolean; // bit 7
}

/** Extended DTE setting of entries 46h/47h. */
export interface ExtendedSetting {
  raw: number;
  /** Bit 31: ATS requests from these devices are blocked. */
  atsDisabled: boolean;
}

export type IvhdEntryType =
  | "pad4"
  | "all"
  | "select"
  | "range-start"
  | "range-end"
  | "pad8"
  | "alias-select"
  | "alias-range-start"
  | "extended-select"
  | "extended-range-start"
  | "special"
  | "acpi-hid"
  | "unknown";

interface EntryCommon {
  typeCode: number;
  offset: number;
  /** Entry length in bytes (computed on encode). */
  length: number;
  /** Bytes 1–2. Reserved (usually 00:00.0) in pad, "all" and special entries. */
  deviceId: string;
  /** Byte 3. */
  dataSetting: DataSetting;
}

/** 00h pad, 01h all devices, 02h select, 03h start of range, 04h end of range. */
export interface IvhdPlainEntry extends EntryCommon {
  type: "pad4" | "all" | "select" | "range-start" | "range-end";
}

/** 40h: 8-byte pad. */
export interface IvhdPad8Entry extends EntryCommon {
  type: "pad8";
  /** Bytes 4–7 as a little-endian 32-bit value, when nonzero. */
  reserved?: string;
}

/** 42h alias select, 43h alias start of range: the device(s) use `aliasId` as their requester id. */
export interface IvhdAliasEntry extends EntryCommon {
  type: "alias-select" | "alias-range-start";
  /** Bytes 5–6: the requester id the IOMMU sees for these devices. */
  aliasId: string;
  /** Reserved bytes 4 and 7 as byte4 | byte7 << 8, when nonzero. */
  reserved?: number;
}

/** 46h extended select, 47h extended start of range. */
export interface IvhdExtendedEntry extends EntryCommon {
  type: "extended-select" | "extended-range-start";
  extendedSetting: ExtendedSetting;
}

/** 48h: an IOAPIC or HPET, which has no PCI function of its own, and the requester id its interrupts carry. */
export interface IvhdSpecialEntry extends EntryCommon {
  type: "special";
  /** Byte 4: the IOAPIC id or HPET number. */
  handle: number;
  /** Bytes 5–6: the requester id of the IOAPIC/HPET. */
  sourceId: string;
  /** Byte 7: 1 IOAPIC, 2 HPET. */
  variety: number;
  varietyName: "ioapic" | "hpet" | "reserved";
}

/**
 * F0h: a device named by its ACPI _HID/_CID/_UID (e.g. AMDI0020 UARTs). `hid`/`cid` are the 8-byte fields as
 * text when they hold printable ASCII, else "0x" + 16 hex digits of the little-endian value; null when all zero.
 * `uid` is the UID as text (printable ASCII, format not integer), else "0x" + hex digits of its bytes read as
 * a little-endian integer, two per byte (so the length survives); null when the UID length is 0.
 */
export interface IvhdAcpiHidEntry extends EntryCommon {
  type: "acpi-hid";
  hid: string | null;
  cid: string | null;
  /** 0 not present, 1 integer, 2 character string. */
  uidFormat: number;
  uid: string | null;
}

/** A type code this decoder does not know: kept whole. `raw` (hex, type byte included) is what gets encoded. */
export interface IvhdUnknownEntry extends EntryCommon {
  type: "unknown";
  raw: string;
}

export type IvhdEntry =
  | IvhdPlainEntry
  | IvhdPad8Entry
  | IvhdAliasEntry
  | IvhdExtendedEntry
  | IvhdSpecialEntry
  | IvhdAcpiHidEntry
  | IvhdUnknownEntry;

export interface IvhdBlock {
  type: "IVHD";
  typeCode: number;
  offset: number;
  flags: IvhdFlags;
  /** Block length in bytes, header and entries (computed on encode). */
  length: number;
  /** The IOMMU's own requester id. */
  deviceId: string;
  /** Offset of the IOMMU's capability block in its PCI configuration space. */
  capabilityOffset: number;
  /** Physical address of the IOMMU's MMIO registers. */
  baseAddress: string;
  /** PCI segment group. */
  segment: number;
  info: IvhdInfo;
  /** Type 10h only. */
  features?: IvhdFeatures;
  /** Types 11h and 40h. */
  attributes?: IvhdAttributes;
  /** Types 11h and 40h: image of the Extended Feature Register. */
  efr?: string;
  /**
   * Types 11h and 40h: image of Extended Feature Register 2. Early revisions of the spec (and iasl 20200925)
   * call these 8 bytes of type 11h "Reserved"; Linux reads them as EFR2 for both types.
   */
  efr2?: string;
  entries: IvhdEntry[];
}

/** IVMD flags (§5.2.3). */
export interface IvmdFlags {
  raw: number;
  unity: boolean; // bit 0: identity-map the range
  read: boolean; // bit 1 IR
  write: boolean; // bit 2 IW
  exclusionRange: boolean; // bit 3: the range bypasses translation
}

export interface IvmdBlock {
  type: "IVMD";
  typeCode: number;
  offset: number;
  flags: IvmdFlags;
  /** Block length in bytes (32; computed on encode). */
  length: number;
  /** Type 21h: the device; 22h: first device of the range; 20h: reserved. */
  deviceId: string;
  /** Type 22h: requester id of the last device of the range; reserved otherwise. */
  auxData: number;
  /** Bytes 8–15, when nonzero. */
  reserved?: string;
  /** Physical start address of the memory range. */
  start: string;
  /** IVMD Memory Block Length: the size of the memory range in bytes (not the block's length). */
  memoryLength: string;
  /** Bytes after the 32 defined ones when the block's length field is larger (hex). */
  extra?: string;
}

/** A block type this decoder does not know: kept whole. `raw` (hex, header included) is what gets encoded. */
export interface IvrsUnknownBlock {
  type: "unknown";
  typeCode: number;
  offset: number;
  length: number;
  raw: string;
}

export type IvrsBlock = IvhdBlock | IvmdBlock | IvrsUnknownBlock;

export interface IvrsTable extends Omit<SdtHeader, "signature"> {
  signature: "IVRS";
  ivInfo: IvInfo;
  /** The 8 reserved bytes after IVinfo (little-endian), when nonzero. */
  reserved?: string;
  blocks: IvrsBlock[];
  /** Bytes after the last block, too few to form one (hex). */
  trailing?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Bit fields: raw value → named bits. Exported so code that builds tables can fill the decoded form.

const bit = (v: number, n: number): boolean => ((v >>> n) & 1) === 1;
const field = (v: number, lsb: number, width: number): number => (v >>> lsb) & ((1 << width) - 1);

export function ivInfoOf(raw: number): IvInfo {
  const gva = field(raw, 5, 3);
  return {
    raw: raw >>> 0,
    efrSupported: bit(raw, 0),
    dmaRemapSupported: bit(raw, 1),
    guestVirtualAddressSize: gva === 2 ? 48 : gva === 3 ? 57 : null,
    physicalAddressSize: field(raw, 8, 7),
    virtualAddressSize: field(raw, 15, 7),
    htAtsReserved: bit(raw, 22),
  };
}

export function ivhdFlagsOf(raw: number): IvhdFlags {
  return {
    raw: raw & 0xff,
    htTunEn: bit(raw, 0),
    passPw: bit(raw, 1),
    resPassPw: bit(raw, 2),
    isoc: bit(raw, 3),
    iotlbSup: bit(raw, 4),
    coherent: bit(raw, 5),
    preFSup: bit(raw, 6),
    pprSup: bit(raw, 7),
  };
}

export function ivhdInfoOf(raw: number): IvhdInfo {
  return { raw: raw & 0xffff, msiNumber: field(raw, 0, 5), unitId: field(raw, 8, 5) };
}

export function ivhdFeaturesOf(raw: number): IvhdFeatures {
  return {
    raw: raw >>> 0,
    xtSup: bit(raw, 0),
    nxSup: bit(raw, 1),
    gtSup: bit(raw, 2),
    glxSup: field(raw, 3, 2),
    iaSup: bit(raw, 5),
    gaSup: bit(raw, 6),
    heSup: bit(raw, 7),
    pasMax: field(raw, 8, 5),
    pnCounters: field(raw, 13, 4),
    pnBanks: field(raw, 17, 6),
    msiNumPpr: field(raw, 23, 5),
    gats: field(raw, 28, 2),
    hats: field(raw, 30, 2),
  };
}

export function ivhdAttributesOf(raw: number): IvhdAttributes {
  return {
    raw: raw >>> 0,
    hatDis: bit(raw, 0),
    pnCounters: field(raw, 13, 4),
    pnBanks: field(raw, 17, 6),
    msiNumPpr: field(raw, 23, 5),
  };
}

export function dataSettingOf(raw: number): DataSetting {
  return {
    raw: raw & 0xff,
    initPass: bit(raw, 0),
    eIntPass: bit(raw, 1),
    nmiPass: bit(raw, 2),
    sysMgt: field(raw, 4, 2),
    lint0Pass: bit(raw, 6),
    lint1Pass: bit(raw, 7),
  };
}

export function extendedSettingOf(raw: number): ExtendedSetting {
  return { raw: raw >>> 0, atsDisabled: bit(raw, 31) };
}

export function ivmdFlagsOf(raw: number): IvmdFlags {
  return { raw: raw & 0xff, unity: bit(raw, 0), read: bit(raw, 1), write: bit(raw, 2), exclusionRange: bit(raw, 3) };
}

const ENTRY_TYPE_NAMES: Record<number, IvhdEntryType> = {
  [IVHD_DEV_PAD4]: "pad4",
  [IVHD_DEV_ALL]: "all",
  [IVHD_DEV_SELECT]: "select",
  [IVHD_DEV_SELECT_RANGE_START]: "range-start",
  [IVHD_DEV_RANGE_END]: "range-end",
  [IVHD_DEV_PAD8]: "pad8",
  [IVHD_DEV_ALIAS]: "alias-select",
  [IVHD_DEV_ALIAS_RANGE]: "alias-range-start",
  [IVHD_DEV_EXT_SELECT]: "extended-select",
  [IVHD_DEV_EXT_SELECT_RANGE]: "extended-range-start",
  [IVHD_DEV_SPECIAL]: "special",
  [IVHD_DEV_ACPI_HID]: "acpi-hid",
};

/** The name of a device entry type code ("select", "alias-range-start", …; "unknown" for others). */
export function entryTypeName(typeCode: number): IvhdEntryType {
  return ENTRY_TYPE_NAMES[typeCode] ?? "unknown";
}

export function isIvhdType(typeCode: number): boolean {
  return typeCode === IVHD_TYPE_10H || typeCode === IVHD_TYPE_11H || typeCode === IVHD_TYPE_40H;
}

export function isIvmdType(typeCode: number): boolean {
  return typeCode === IVMD_TYPE_ALL || typeCode === IVMD_TYPE_SELECT || typeCode === IVMD_TYPE_RANGE;
}

const h2 = (n: number): string => n.toString(16).padStart(2, "0");

export function bytesToHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += h2(x);
  return s;
}

const isPrintable = (b: number): boolean => b >= 0x20 && b <= 0x7e;
const latin1 = (b: Uint8Array): string => String.fromCharCode(...b);
const startsWith0x = (b: Uint8Array): boolean => b[0] === 0x30 && (b[1] === 0x78 || b[1] === 0x58);

/** Hex of bytes read as a little-endian integer, two digits per byte. */
function leHex(b: Uint8Array): string {
  let s = "";
  for (let i = b.length - 1; i >= 0; i--) s += h2(b[i] ?? 0);
  return "0x" + s;
}

/** An 8-byte ACPI _HID/_CID field: text, "0x…" (16 digits, little-endian) or null when all zero. */
function acpiIdOf(b: Uint8Array): string | null {
  if (b.every((x) => x === 0)) return null;
  let end = b.indexOf(0);
  if (end < 0) end = b.length;
  const text = b.subarray(0, end);
  if (end > 0 && b.subarray(end).every((x) => x === 0) && text.every(isPrintable) && !startsWith0x(text)) {
    return latin1(text);
  }
  return leHex(b);
}

function uidOf(format: number, b: Uint8Array): string | null {
  if (b.length === 0) return null;
  if (format !== UID_IS_INTEGER && b.every(isPrintable) && !startsWith0x(b)) return latin1(b);
  return leHex(b);
}

// ---------------------------------------------------------------------------------------------------------------
// Decode

const typeHex = (t: number): string => `${t.toString(16).toUpperCase().padStart(2, "0")}h`;

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

// ---------------------------------------------------------------------------------------------------------------
// Encode. The input may come from hand-edited JSON: every field read is checked and a bad one is reported by
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

// ---------------------------------------------------------------------------------------------------------------
// Text

/**
 * The table as text laid out like `iasl -d`: "[hex offset, decimal offset, length]  Field Name : value [note]".
 * Offsets and lengths are those of the encoded table (the table is encoded and decoded again first, so a table
 * built by hand renders with true offsets).
 */
export function renderIvrsText(t: IvrsTable): string {
  return renderDecodedIvrs(decodeIvrs(encodeIvrs(t, { keepChecksum: true })));
}
