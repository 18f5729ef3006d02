/**
 * Command buffer entries (spec #48882 section 2.4): 128 bits, opcode in bits 63:60.
 */
import { field, type Field } from "./fields.js";

export const CMD_BYTES = 16;
export const CMD_OPCODE = field("Opcode", 60, 4, "2.4");

export const CMD_COMPLETION_WAIT = 0x1; // 2.4.1
export const CMD_INVALIDATE_DEVTAB_ENTRY = 0x2; // 2.4.2
export const CMD_INVALIDATE_IOMMU_PAGES = 0x3; // 2.4.3
export const CMD_INVALIDATE_IOTLB_PAGES = 0x4; // 2.4.4
export const CMD_INVALIDATE_INTERRUPT_TABLE = 0x5; // 2.4.5
export const CMD_PREFETCH_IOMMU_PAGES = 0x6; // 2.4.6
export const CMD_COMPLETE_PPR_REQUEST = 0x7; // 2.4.7
export const CMD_INVALIDATE_IOMMU_ALL = 0x8; // 2.4.8

export const COMMAND_NAMES: Readonly<Record<number, string>> = {
  [CMD_COMPLETION_WAIT]: "COMPLETION_WAIT",
  [CMD_INVALIDATE_DEVTAB_ENTRY]: "INVALIDATE_DEVTAB_ENTRY",
  [CMD_INVALIDATE_IOMMU_PAGES]: "INVALIDATE_IOMMU_PAGES",
  [CMD_INVALIDATE_IOTLB_PAGES]: "INVALIDATE_IOTLB_PAGES",
  [CMD_INVALIDATE_INTERRUPT_TABLE]: "INVALIDATE_INTERRUPT_TABLE",
  [CMD_PREFETCH_IOMMU_PAGES]: "PREFETCH_IOMMU_PAGES",
  [CMD_COMPLETE_PPR_REQUEST]: "COMPLETE_PPR_REQUEST",
  [CMD_INVALIDATE_IOMMU_ALL]: "INVALIDATE_IOMMU_ALL",
};

// 2.4.1 COMPLETION_WAIT: S bit 0, I bit 1, F bit 2, store address bits 51:3 in bits 51:3, data in bits 127:64.
export const CW_S = field("S", 0, 1, "2.4.1");
export const CW_I = field("I", 1, 1, "2.4.1");
export const CW_F = field("F", 2, 1, "2.4.1");
export const CW_STORE_ADDR = field("StoreAddress", 3, 49, "2.4.1");
// 2.4.2 / 2.4.5: DeviceID bits 15:0.
export const CMD_DEVICE_ID = field("DeviceID", 0, 16, "2.4.2");
// 2.4.3 INVALIDATE_IOMMU_PAGES: PASID 19:0, DomainID 47:32, S bit 64, PDE bit 65, GN bit 66, address 127:76.
export const IP_PASID = field("PASID", 0, 20, "2.4.3");
export const IP_DOMAIN_ID = field("DomainID", 32, 16, "2.4.3");
export const IP_S = field("S", 64, 1, "2.4.3");
export const IP_PDE = field("PDE", 65, 1, "2.4.3");
export const IP_GN = field("GN", 66, 1, "2.4.3");
/**
 * The address that, with S=1, names every page of a domain (2.4.3: bits 62:12 set, bit 63 clear; Linux's
 * CMD_INV_IOMMU_ALL_PAGES_ADDRESS), as the command's address dwords.
 */
export const IP_ALL_PAGES_LO = 0xffff_f000;
export const IP_ALL_PAGES_HI = 0x7fff_ffff;

/**
 * Reserved bits per opcode, as four dword masks that must be zero (2.4.1–2.4.8). PREFETCH_IOMMU_PAGES and
 * COMPLETE_PPR_REQUEST are legal only when the EFR reports PreFSup and PPRSup (3.4.7).
 */
export const CMD_RESERVED: Readonly<Record<number, readonly [number, number, number, number]>> = {
  [CMD_COMPLETION_WAIT]: [0x0000_0000, 0x0ff0_0000, 0, 0],
  [CMD_INVALIDATE_DEVTAB_ENTRY]: [0xffff_0000, 0x0fff_ffff, 0xffff_ffff, 0xffff_ffff],
  [CMD_INVALIDATE_IOMMU_PAGES]: [0xfff0_0000, 0x0fff_0000, 0x0000_0ff8, 0],
  [CMD_INVALIDATE_IOTLB_PAGES]: [0, 0, 0x0000_0ff2, 0],
  [CMD_INVALIDATE_INTERRUPT_TABLE]: [0xffff_0000, 0x0fff_ffff, 0xffff_ffff, 0xffff_ffff],
  // 2.4.6: DeviceID 15:0, PFCount 31:24, PASID 51:32, S bit 64, GN bit 66, Inval bit 68, address 127:76.
  [CMD_PREFETCH_IOMMU_PAGES]: [0x00ff_0000, 0x0ff0_0000, 0x0000_0fea, 0],
  // 2.4.7: DeviceID 15:0, PASID 51:32, GN bit 66, CompletionTag 111:96.
  [CMD_COMPLETE_PPR_REQUEST]: [0xffff_0000, 0x0ff0_0000, 0xffff_fffb, 0xffff_0000],
  [CMD_INVALIDATE_IOMMU_ALL]: [0xffff_ffff, 0x0fff_ffff, 0xffff_ffff, 0xffff_ffff],
};

export const COMMAND_FIELDS: readonly Field[] = [CMD_OPCODE];

/**
 * The range an INVALIDATE_IOMMU_PAGES or INVALIDATE_IOTLB_PAGES address names (2.4.3, Table 21): with S=0 one
 * 4 KiB page; with S=1 the count n of 1 bits from bit 12 upward gives a 2^(13+n)-byte range; all ones = all.
 * Returns [page-aligned base as bigint, log2 size] with size 64 meaning everything.
 */
export function invalidationRange(addr: bigint, s: boolean): [bigint, number] {
  if (!s) return [addr & ~0xfffn, 12];
  let n = 0;
  for (let b = 12n; b < 64n; b++) {
    if (((addr >> b) & 1n) === 0n) {
      const shift = 13 + n;
      return [addr & ~((1n << BigInt(shift)) - 1n), shift];
    }
    n++;
  }
  return [0n, 64];
}

/** Builds a command from its four dwords' fields (test and driver edge). */
export function encodeCommand(opcode: number, dw0 = 0, dw1 = 0, dw2 = 0, dw3 = 0): Uint32Array {
  return Uint32Array.of(dw0 >>> 0, ((dw1 & 0x0fff_ffff) | (opcode << 28)) >>> 0, dw2 >>> 0, dw3 >>> 0);
}
