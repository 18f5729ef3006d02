/**
 * Names for PCI ids from the pci.ids database (Debian's `pci.ids` package: /usr/share/misc/pci.ids). The file is
 * read once and searched on demand (a vendor line is "10de  NVIDIA Corporation", its devices follow as
 * "\t2504  GA106 [GeForce RTX 3060 Lite Hash Rate]", classes as "C 03  Display controller" / "\t00  VGA
 * compatible controller"), so a lookup costs one string search, not a parse of 36,000 lines.
 * Without the file every lookup answers null and callers print bare ids.
 */
import { readFileSync } from "node:fs";

export const PCI_IDS_PATHS = ["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids", "/usr/share/pci.ids"];

const h4 = (n: number) => n.toString(16).padStart(4, "0");
const h2 = (n: number) => n.toString(16).padStart(2, "0");

export class PciIds {
  readonly source: string;
  private readonly text: string;
  private readonly cache = new Map<string, string | null>();

  constructor(text: string, source = "pci.ids") {
    this.text = text.startsWith("\n") ? text : "\n" + text;
    this.source = source;
  }

  /** The line beginning with `prefix` at the start of a line: its text after the prefix and where it ends. */
  private find(prefix: string): { name: string; next: number } | null {
    const at = this.text.indexOf("\n" + prefix);
    if (at < 0) return null;
    const start = at + 1 + prefix.length;
    const end = this.text.indexOf("\n", start);
    const stop = end < 0 ? this.text.length : end;
    return { name: this.text.slice(start, stop).trim(), next: stop };
  }

  /** Searches the block after `from` for a line "\t<id>  Name"; the block ends at the next unindented line. */
  private child(from: number, id: string): string | null {
    const blockEnd = /\n[^\t#\n]/g;
    blockEnd.lastIndex = from;
    const stop = blockEnd.exec(this.text)?.index ?? this.text.length;
    const at = this.text.indexOf("\n\t" + id + "  ", from);
    if (at < 0 || at >= stop) return null;
    const start = at + 2 + id.length + 2;
    const end = this.text.indexOf("\n", start);
    return this.text.slice(start, end < 0 ? this.text.length : end).trim();
  }

  private memo(key: string, compute: () => string | null): string | null {
    if (this.cache.has(key)) return this.cache.get(key) ?? null;
    const v = compute();
    this.cache.set(key, v);
    return v;
  }

  vendorName(vendor: number): string | null {
    return this.memo(`v${vendor}`, () => this.find(h4(vendor) + "  ")?.name ?? null);
  }

  deviceName(vendor: number, device: number): string | null {
    return this.memo(`d${vendor}:${device}`, () => {
      const v = this.find(h4(vendor) + "  ");
      return v === null ? null : this.child(v.next, h4(device));
    });
  }

  /** Sub-class name ("VGA compatible controller") or, failing that, the base class name ("Display controller"). */
  className(classCode: number): string | null {
    const base = (classCode >>> 16) & 0xff;
    const sub = (classCode >>> 8) & 0xff;
    return this.memo(`c${base}:${sub}`, () => {
      const c = this.find(`C ${h2(base)}  `);
      if (c === null) return null;
      return this.child(c.next, h2(sub)) ?? c.name;
    });
  }

  /** Base class name only ("Display controller"). */
  baseClassName(base: number): string | null {
    return this.memo(`b${base}`, () => this.find(`C ${h2(base)}  `)?.name ?? null);
  }
}

let shared: PciIds | null | undefined;

/**
 * The database from `path`, or from the first standard location that exists; null when none does.
 * The default database is loaded once per process.
 */
export function loadPciIds(path?: string): PciIds | null {
  if (path === undefined && shared !== undefined) return shared;
  const candidates = path === undefined ? PCI_IDS_PATHS : [path];
  let found: PciIds | null = null;
  for (const p of candidates) {
    try {
      found = new PciIds(readFileSync(p, "latin1"), p);
      break;
    } catch {
      // try the next location
    }
  }
  if (path === undefined) shared = found;
  return found;
}

/** "NVIDIA Corporation GA106 [GeForce RTX 3060]" as lspci prints it, with "Device 2504" for unknown devices. */
export function deviceLabel(ids: PciIds | null, vendor: number, device: number): { vendorName: string | null; deviceName: string | null; label: string } {
  const vendorName = ids?.vendorName(vendor) ?? null;
  const deviceName = ids?.deviceName(vendor, device) ?? null;
  const v = vendorName ?? `Vendor ${h4(vendor)}`;
  const d = deviceName ?? `Device ${h4(device)}`;
  return { vendorName, deviceName, label: `${v} ${d}` };
}
