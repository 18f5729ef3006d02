/**
 * The IVRS table's layout (AMD IOMMU specification 48882, §5.2): block and device-entry type codes, fixed
 * lengths, and the decoded form that decodeIvrs returns and encodeIvrs takes.
 */
import type { SdtHeader } from "./sdt.js";

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
