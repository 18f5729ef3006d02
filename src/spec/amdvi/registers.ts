/**
 * AMD-Vi MMIO registers (spec #48882 section 3.4): offsets, Control and Status register bits, and the
 * Extended Feature Register (3.4.12, 3.4.13 for MMIO offset 0x0030).
 */
import { TWO32 } from "../../core/u64.js";
import { field, getField, type Field } from "./fields.js";

// 3.4.1–3.4.6: base registers.
export const MMIO_DEV_TABLE_BASE = 0x0000; // 3.4.1 Device Table Base Address Register
export const MMIO_CMD_BUF_BASE = 0x0008; // 3.4.2 Command Buffer Base Address Register
export const MMIO_EVENT_LOG_BASE = 0x0010; // 3.4.3 Event Log Base Address Register
export const MMIO_CONTROL = 0x0018; // 3.4.4 IOMMU Control Register
export const MMIO_EXCL_BASE = 0x0020; // 3.4.5 IOMMU Exclusion Base Register
export const MMIO_EXCL_LIMIT = 0x0028; // 3.4.6 IOMMU Exclusion Range Limit Register
export const MMIO_EXT_FEATURE = 0x0030; // 3.4.7 IOMMU Extended Feature Register
export const MMIO_PPR_LOG_BASE = 0x0038; // 3.4.8 PPR Log Base Address Register
export const MMIO_EXT_FEATURE2 = 0x01a0; // 3.4.13 IOMMU Extended Feature 2 Register
export const MMIO_CMD_HEAD = 0x2000; // 3.4.10 Command Buffer Head Pointer Register
export const MMIO_CMD_TAIL = 0x2008; // 3.4.10 Command Buffer Tail Pointer Register
export const MMIO_EVENT_HEAD = 0x2010; // 3.4.10 Event Log Head Pointer Register
export const MMIO_EVENT_TAIL = 0x2018; // 3.4.10 Event Log Tail Pointer Register
export const MMIO_STATUS = 0x2020; // 3.4.11 IOMMU Status Register
export const MMIO_PPR_HEAD = 0x2030; // 3.4.10 PPR Log Head Pointer Register
export const MMIO_PPR_TAIL = 0x2038; // 3.4.10 PPR Log Tail Pointer Register
/** Size of the MMIO window QEMU 7.2 maps (AMDVI_MMIO_SIZE). */
export const MMIO_WINDOW_SIZE = 0x4000;

/** Base registers: address bits 51:12 and a length field (3.4.1–3.4.3). */
export const BASE_ADDR_MASK_LO = 0xffff_f000;
export const BASE_ADDR_MASK_HI = 0x000f_ffff;
/** Device table size: bits 8:0, (size + 1) * 4 KiB (3.4.1). */
export const DEV_TABLE_SIZE = field("Size", 0, 9, "3.4.1");
/** Command buffer ComLen / event log EventLen: bits 59:56, 2^n entries, n >= 8 (3.4.2, 3.4.3). */
export const LOG_LEN = field("Len", 56, 4, "3.4.2");
/** The smallest ComLen / EventLen: 2^8 entries (3.4.2, 3.4.3). */
export const LOG_LEN_MIN = 8;

/** The address a base register (3.4.1–3.4.3) holds, from its two dwords: bits 51:12. */
export function baseRegAddress(lo: number, hi: number): number {
  return ((lo & BASE_ADDR_MASK_LO) >>> 0) + (hi & BASE_ADDR_MASK_HI) * TWO32;
}

/** Bytes of a command buffer or event log from its base register's two dwords (ComLen / EventLen, 3.4.2, 3.4.3). */
export function logBytes(lo: number, hi: number, entryBytes: number): number {
  return 2 ** Math.max(LOG_LEN_MIN, getField([lo, hi], LOG_LEN)) * entryBytes;
}

/** Head and tail pointers: bits 18:4, a byte offset into the buffer (3.4.10). */
export const PTR_MASK = 0x0007_fff0;

// 3.4.4 Control Register bits (low dword).
export const CTRL_IOMMU_EN = 1 << 0;
export const CTRL_HT_TUN_EN = 1 << 1;
export const CTRL_EVENT_LOG_EN = 1 << 2;
export const CTRL_EVENT_INT_EN = 1 << 3;
export const CTRL_COM_WAIT_INT_EN = 1 << 4;
export const CTRL_INV_TIMEOUT = field("InvTimeOut", 5, 3, "3.4.4");
export const CTRL_PASS_PW = 1 << 8;
export const CTRL_RES_PASS_PW = 1 << 9;
export const CTRL_COHERENT = 1 << 10;
export const CTRL_ISOC = 1 << 11;
export const CTRL_CMD_BUF_EN = 1 << 12;
export const CTRL_PPR_LOG_EN = 1 << 13;
export const CTRL_PPR_INT_EN = 1 << 14;
export const CTRL_PPR_EN = 1 << 15;
export const CTRL_GT_EN = 1 << 16;
export const CTRL_GA_EN = 1 << 17;
export const CTRL_XT_EN = 1 << 22;

// 3.4.11 Status Register bits.
export const STATUS_EVENT_OVERFLOW = 1 << 0; // RW1C
export const STATUS_EVENT_LOG_INT = 1 << 1; // RW1C
export const STATUS_COM_WAIT_INT = 1 << 2; // RW1C
export const STATUS_EVENT_LOG_RUN = 1 << 3; // RO
export const STATUS_CMD_BUF_RUN = 1 << 4; // RO
export const STATUS_PPR_OVERFLOW = 1 << 5; // RW1C
export const STATUS_PPR_INT = 1 << 6; // RW1C
export const STATUS_PPR_LOG_RUN = 1 << 7; // RO
export const STATUS_W1C = STATUS_EVENT_OVERFLOW | STATUS_EVENT_LOG_INT | STATUS_COM_WAIT_INT | STATUS_PPR_OVERFLOW | STATUS_PPR_INT;

// 3.4.5 Exclusion base: ExEn bit 0, Allow bit 1; base bits 51:12. 3.4.6: limit bits 51:12, bits 11:0 read as 1s.
export const EXCL_EN = 1 << 0;
export const EXCL_ALLOW = 1 << 1;

// 3.4.7 Extended Feature Register.
export const EFR_FIELDS: readonly Field[] = [
  field("PreFSup", 0, 1, "3.4.7"),
  field("PPRSup", 1, 1, "3.4.7"),
  field("XTSup", 2, 1, "3.4.7"),
  field("NXSup", 3, 1, "3.4.7"),
  field("GTSup", 4, 1, "3.4.7"),
  field("IASup", 6, 1, "3.4.7"),
  field("GASup", 7, 1, "3.4.7"),
  field("HESup", 8, 1, "3.4.7"),
  field("PCSup", 9, 1, "3.4.7"),
  field("HATS", 10, 2, "3.4.7"),
  field("GATS", 12, 2, "3.4.7"),
  field("GLXSup", 14, 2, "3.4.7"),
  field("SmiFSup", 16, 2, "3.4.7"),
  field("SmiFRC", 18, 3, "3.4.7"),
  field("GAMSup", 21, 3, "3.4.7"),
  field("PASmax", 32, 5, "3.4.7"),
];
export const EFR_PREF_SUP = 1 << 0;
export const EFR_PPR_SUP = 1 << 1;
export const EFR_IA_SUP = 1 << 6;
export const EFR_GA_SUP = 1 << 7;
export const EFR_HATS = EFR_FIELDS[9] as Field;
/** GIoSup, bit 48: guest I/O protection, which the v2 (guest) page tables for host DMA need (3.4.7). */
export const EFR_GIO_SUP_BIT = 48;

/** HATS: maximum host page-table levels, 00b = 4, 01b = 5, 10b = 6 (3.4.7). */
export function hatsLevels(hats: number): number {
  return hats === 0 ? 4 : hats === 1 ? 5 : 6;
}

/**
 * QEMU 7.2's amd-iommu extended features (hw/i386/amd_iommu.h AMDVI_DEFAULT_EXT_FEATURES): PreF, PPR, GT, IA,
 * GA, HE, HATS = 10b, GATS = 10b.
 */
export const QEMU_DEFAULT_EFR = (1n << 0n) | (1n << 1n) | (1n << 4n) | (1n << 6n) | (1n << 7n) | (1n << 8n) | (2n << 10n) | (2n << 12n);
