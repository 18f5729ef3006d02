/** PCI addresses: segment:bus:device.function, and the 16-bit requester (source) id bus<<8 | dev<<3 | fn. */
import { IommuError } from "./errors.js";

export interface PciAddress {
  readonly segment: number;
  readonly bus: number;
  readonly device: number;
  readonly fn: number;
}

const FULL = /^([0-9a-f]{1,4}):([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$/i;
const SHORT = /^([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$/i;

/** Parses `0000:00:1f.3` or `00:1f.3` (segment 0). Throws BAD_BDF with the offending text. */
export function parsePciAddress(text: string): PciAddress {
  const t = text.trim();
  const m = FULL.exec(t);
  const s = m ? null : SHORT.exec(t);
  const parts = m ? [m[1], m[2], m[3], m[4]] : s ? ["0", s[1], s[2], s[3]] : null;
  if (parts === null) {
    throw new IommuError("BAD_BDF", `'${text}' is not a PCI address`, {
      hint: "write it as DDDD:BB:DD.F or BB:DD.F, e.g. 0000:01:00.0 or 01:00.0 (as lspci -D prints it)",
    });
  }
  const [seg, bus, dev, fn] = parts.map((p) => parseInt(p ?? "", 16)) as [number, number, number, number];
  if (dev > 0x1f) {
    throw new IommuError("BAD_BDF", `'${text}': device number 0x${dev.toString(16)} is above 0x1f`);
  }
  return { segment: seg, bus, device: dev, fn };
}

export function pciAddress(bus: number, device: number, fn: number, segment = 0): PciAddress {
  return { segment, bus: bus & 0xff, device: device & 0x1f, fn: fn & 7 };
}

const h2 = (n: number) => n.toString(16).padStart(2, "0");

/** `0000:00:1f.3` */
export function formatPciAddress(a: PciAddress): string {
  return `${a.segment.toString(16).padStart(4, "0")}:${formatBdf(a)}`;
}

/** `00:1f.3` (no segment) */
export function formatBdf(a: Pick<PciAddress, "bus" | "device" | "fn">): string {
  return `${h2(a.bus)}:${h2(a.device)}.${a.fn.toString(16)}`;
}

/** The 16-bit requester id a device's transactions carry: bus<<8 | device<<3 | function. */
export function requesterId(a: Pick<PciAddress, "bus" | "device" | "fn">): number {
  return ((a.bus & 0xff) << 8) | ((a.device & 0x1f) << 3) | (a.fn & 7);
}

export function fromRequesterId(rid: number, segment = 0): PciAddress {
  return { segment, bus: (rid >>> 8) & 0xff, device: (rid >>> 3) & 0x1f, fn: rid & 7 };
}

/** `bb:dd.f` for a 16-bit requester id. */
export function formatRequesterId(rid: number): string {
  return formatBdf(fromRequesterId(rid));
}

/** Requester ids are 16 bits: bus 15:8, devfn 7:0 (device 7:3, function 2:0). */
export const RID_MASK = 0xffff;

/** The bus number of a requester id. */
export function ridBus(rid: number): number {
  return (rid >>> 8) & 0xff;
}

/** The devfn (device << 3 | function) of a requester id. */
export function ridDevfn(rid: number): number {
  return rid & 0xff;
}

/** The requester id of (bus, devfn). */
export function ridOf(bus: number, devfn: number): number {
  return ((bus & 0xff) << 8) | (devfn & 0xff);
}
