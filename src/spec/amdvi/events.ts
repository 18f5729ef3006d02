/**
 * Event log entries (spec #48882 section 2.5): 128 bits, EventCode in bits 63:60.
 */
import { field, type Field } from "./fields.js";

export const EVENT_BYTES = 16;
export const EVENT_CODE = field("EventCode", 60, 4, "2.5");
export const EVENT_DEVICE_ID = field("DeviceID", 0, 16, "2.5");

export const ILLEGAL_DEV_TABLE_ENTRY = 0x1; // 2.5.2
export const IO_PAGE_FAULT = 0x2; // 2.5.3
export const DEV_TAB_HARDWARE_ERROR = 0x3; // 2.5.4
export const PAGE_TAB_HARDWARE_ERROR = 0x4; // 2.5.5
export const ILLEGAL_COMMAND_ERROR = 0x5; // 2.5.6
export const COMMAND_HARDWARE_ERROR = 0x6; // 2.5.7
export const IOTLB_INV_TIMEOUT = 0x7; // 2.5.8
export const INVALID_DEVICE_REQUEST = 0x8; // 2.5.9

export const EVENT_NAMES: Readonly<Record<number, string>> = {
  [ILLEGAL_DEV_TABLE_ENTRY]: "ILLEGAL_DEV_TABLE_ENTRY",
  [IO_PAGE_FAULT]: "IO_PAGE_FAULT",
  [DEV_TAB_HARDWARE_ERROR]: "DEV_TAB_HARDWARE_ERROR",
  [PAGE_TAB_HARDWARE_ERROR]: "PAGE_TAB_HARDWARE_ERROR",
  [ILLEGAL_COMMAND_ERROR]: "ILLEGAL_COMMAND_ERROR",
  [COMMAND_HARDWARE_ERROR]: "COMMAND_HARDWARE_ERROR",
  [IOTLB_INV_TIMEOUT]: "IOTLB_INV_TIMEOUT",
  [INVALID_DEVICE_REQUEST]: "INVALID_DEVICE_REQUEST",
};

/** Flags of IO_PAGE_FAULT and ILLEGAL_DEV_TABLE_ENTRY events, bits 59:48 of the first qword (2.5.2, 2.5.3). */
export const EV_FLAGS = field("Flags", 48, 12, "2.5.3");
export const EVF_GN = 1 << 0;
export const EVF_NX = 1 << 1;
export const EVF_US = 1 << 2;
export const EVF_I = 1 << 3; // interrupt request
export const EVF_PR = 1 << 4; // translation was present
export const EVF_RW = 1 << 5; // write
export const EVF_PE = 1 << 6; // permission
export const EVF_RZ = 1 << 7; // reserved bit not zero
export const EVF_TR = 1 << 8; // translation request
/** DomainID (IO_PAGE_FAULT) in bits 47:32 (2.5.3). */
export const EV_DOMAIN_ID = field("DomainID", 32, 16, "2.5.3");

export const EVENT_FIELDS: readonly Field[] = [EVENT_DEVICE_ID, EV_DOMAIN_ID, EV_FLAGS, EVENT_CODE];

export interface AmdEvent {
  code: number;
  deviceId: number;
  domainId: number;
  flags: number;
  /** Address (or command/table entry address), bits 127:64. */
  addrLo: number;
  addrHi: number;
}

/** The four dwords of an event log entry. */
export function encodeEvent(e: AmdEvent, out = new Uint32Array(4)): Uint32Array {
  out[0] = e.deviceId & 0xffff;
  out[1] = ((e.domainId & 0xffff) | ((e.flags & 0xfff) << 16) | ((e.code & 0xf) << 28)) >>> 0;
  out[2] = e.addrLo >>> 0;
  out[3] = e.addrHi >>> 0;
  return out;
}

export function decodeEvent(dw: ArrayLike<number>): AmdEvent {
  const d1 = (dw[1] ?? 0) >>> 0;
  return {
    code: d1 >>> 28,
    deviceId: (dw[0] ?? 0) & 0xffff,
    domainId: d1 & 0xffff,
    flags: (d1 >>> 16) & 0xfff,
    addrLo: (dw[2] ?? 0) >>> 0,
    addrHi: (dw[3] ?? 0) >>> 0,
  };
}

export function eventName(code: number): string {
  return EVENT_NAMES[code] ?? `EVENT_${code.toString(16)}`;
}
