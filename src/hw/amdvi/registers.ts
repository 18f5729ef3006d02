/**
 * The AMD-Vi register file, declared once (spec #48882 section 3.4): reset values, writable masks and the
 * write-1-to-clear Status bits. Reset values follow QEMU 7.2's amd-iommu, the EFR comes from the configuration.
 */
import type { RegisterDecl } from "../vtd/regfile.js";
import {
  MMIO_CMD_BUF_BASE,
  MMIO_CMD_HEAD,
  MMIO_CMD_TAIL,
  MMIO_CONTROL,
  MMIO_DEV_TABLE_BASE,
  MMIO_EVENT_HEAD,
  MMIO_EVENT_LOG_BASE,
  MMIO_EVENT_TAIL,
  MMIO_EXCL_BASE,
  MMIO_EXCL_LIMIT,
  MMIO_EXT_FEATURE,
  MMIO_PPR_HEAD,
  MMIO_PPR_LOG_BASE,
  MMIO_PPR_TAIL,
  MMIO_STATUS,
  PTR_MASK,
  STATUS_W1C,
} from "../../spec/amdvi/registers.js";

export const EFFECT_NONE = 0;
export const EFFECT_CONTROL = 1;
export const EFFECT_CMD_TAIL = 2;
export const EFFECT_CMD_BASE = 3;
export const EFFECT_EVENT_BASE = 4;
export const EFFECT_DEV_TABLE = 5;

/** Bits 51:12 of a base register plus its length field (bits 59:56) or size field (8:0). */
const BASE_LEN = 0x0f0f_ffff_ffff_f000n;
const ADDR_51_12 = 0x000f_ffff_ffff_f000n;

function reg(name: string, offset: number, reset: bigint, writable: bigint, effect = EFFECT_NONE, w1c = 0n): RegisterDecl {
  return { name, offset, size: 8, reset, writable, w1c, writeOnly: 0n, effect };
}

/** Register declarations; `efr` is the Extended Feature Register value (read-only). */
export function declareAmdViRegisters(efr: bigint): RegisterDecl[] {
  return [
    reg("DEV_TABLE_BASE", MMIO_DEV_TABLE_BASE, 0n, ADDR_51_12 | 0x1ffn, EFFECT_DEV_TABLE),
    reg("CMD_BUF_BASE", MMIO_CMD_BUF_BASE, 0n, BASE_LEN, EFFECT_CMD_BASE),
    reg("EVENT_LOG_BASE", MMIO_EVENT_LOG_BASE, 0n, BASE_LEN, EFFECT_EVENT_BASE),
    // Control: bits 63:0 as implemented by QEMU 7.2 (it masks nothing); reserved bits keep what is written.
    reg("CONTROL", MMIO_CONTROL, 0n, 0xffff_ffff_ffff_ffffn, EFFECT_CONTROL),
    reg("EXCL_BASE", MMIO_EXCL_BASE, 0n, ADDR_51_12 | 0x3n),
    // Limit bits 11:0 read as ones (3.4.6).
    reg("EXCL_LIMIT", MMIO_EXCL_LIMIT, 0xfffn, ADDR_51_12),
    reg("EXT_FEATURE", MMIO_EXT_FEATURE, efr, 0n),
    reg("PPR_LOG_BASE", MMIO_PPR_LOG_BASE, 0n, BASE_LEN),
    reg("CMD_HEAD", MMIO_CMD_HEAD, 0n, BigInt(PTR_MASK)),
    reg("CMD_TAIL", MMIO_CMD_TAIL, 0n, BigInt(PTR_MASK), EFFECT_CMD_TAIL),
    reg("EVENT_HEAD", MMIO_EVENT_HEAD, 0n, BigInt(PTR_MASK)),
    reg("EVENT_TAIL", MMIO_EVENT_TAIL, 0n, BigInt(PTR_MASK)),
    reg("STATUS", MMIO_STATUS, 0n, 0n, EFFECT_NONE, BigInt(STATUS_W1C)),
    reg("PPR_HEAD", MMIO_PPR_HEAD, 0n, BigInt(PTR_MASK)),
    reg("PPR_TAIL", MMIO_PPR_TAIL, 0n, BigInt(PTR_MASK)),
  ];
}
