/**
 * /proc/iomem: the physical address map, one resource per line, children indented by two spaces:
 *
 *   4000000000-400fffffff : PCI Bus 0000:01
 *     4000000000-400fffffff : 0000:01:00.0
 *       4000000000-40002fffff : BOOTFB
 *
 * A PCI device's BARs appear under its address; a boot framebuffer claims part of the display's BAR under the
 * name of whoever took it: BOOTFB (sysfb's simple-framebuffer device, since Linux 5.15 the usual case), efifb,
 * vesafb, simplefb, simpledrm, efidrm, vesadrm. While that claim stands, vfio-pci cannot reserve the BAR
 * ("vfio-pci 0000:01:00.0: BAR 0: can't reserve [mem …]") and the VM fails to start. Unprivileged readers see
 * every address as 0, so the map is only useful when read as root.
 */
import type { SysfsView } from "../sysfs-view.js";
import { readTextSafe, type TextRead } from "./read.js";

export interface IomemEntry {
  start: bigint;
  end: bigint;
  name: string;
  depth: number;
}

export interface Iomem {
  read: TextRead;
  entries: IomemEntry[];
  /** True when every address reads 0: the reader was not root. */
  zeroed: boolean;
}

export function parseIomem(text: string): IomemEntry[] {
  const out: IomemEntry[] = [];
  for (const line of text.split("\n")) {
    const m = /^( *)([0-9a-fA-F]+)-([0-9a-fA-F]+) : (.*)$/.exec(line);
    if (!m) continue;
    out.push({ depth: Math.floor((m[1] ?? "").length / 2), start: BigInt("0x" + m[2]), end: BigInt("0x" + m[3]), name: (m[4] ?? "").trim() });
  }
  return out;
}

export function readIomem(view: SysfsView): Iomem {
  const read = readTextSafe(view, "/proc/iomem");
  const entries = read.text === null ? [] : parseIomem(read.text);
  return { read, entries, zeroed: entries.length > 0 && entries.every((e) => e.start === 0n && e.end === 0n) };
}

/** Names under which a boot framebuffer holds memory, and the kernel parameter that keeps each away. */
export const FRAMEBUFFER_FIXES: Record<string, string> = {
  BOOTFB: "initcall_blacklist=sysfb_init",
  simplefb: "initcall_blacklist=sysfb_init",
  simpledrm: "initcall_blacklist=sysfb_init",
  efidrm: "initcall_blacklist=sysfb_init",
  vesadrm: "initcall_blacklist=sysfb_init",
  efifb: "video=efifb:off",
  vesafb: "video=vesafb:off",
};

export interface FramebufferInBar {
  framebuffer: IomemEntry;
  bar: IomemEntry;
  /** The BAR's number from the device's sysfs resource file; null when not found there. */
  barIndex: number | null;
}

const overlaps = (a: IomemEntry, b: { start: bigint; end: bigint }) => a.start <= b.end && b.start <= a.end;

/** BAR numbers by start address, from /sys/bus/pci/devices/BDF/resource (line N is BAR N for N ≤ 5). */
export function barIndexes(view: SysfsView, address: string): Map<bigint, number> {
  const out = new Map<bigint, number>();
  const t = readTextSafe(view, `/sys/bus/pci/devices/${address}/resource`).text;
  (t ?? "").split("\n").slice(0, 6).forEach((line, i) => {
    const start = /^0x([0-9a-fA-F]+)\s/.exec(line)?.[1];
    if (start !== undefined && BigInt("0x" + start) !== 0n) out.set(BigInt("0x" + start), i);
  });
  return out;
}

/** Framebuffer claims inside the memory ranges /proc/iomem lists under `address`. */
export function framebuffersInBars(iomem: Iomem, address: string, bars: Map<bigint, number>): FramebufferInBar[] {
  if (iomem.zeroed) return [];
  const own = iomem.entries.filter((e) => e.name.toLowerCase() === address.toLowerCase());
  const fbs = iomem.entries.filter((e) => FRAMEBUFFER_FIXES[e.name] !== undefined);
  const out: FramebufferInBar[] = [];
  for (const bar of own) {
    for (const fb of fbs) if (overlaps(fb, bar)) out.push({ framebuffer: fb, bar, barIndex: bars.get(bar.start) ?? null });
  }
  return out;
}
