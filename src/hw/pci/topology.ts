/**
 * PCI topology of a simulated machine: host bridge, PCI Express root ports, switches (upstream and downstream
 * ports), PCIe-to-PCI bridges, conventional PCI-to-PCI bridges, endpoints and conventional devices, single- or
 * multi-function, with or without an ACS capability. Functions are declared flat, each with its bus:device.function
 * address; a bridge names the bus behind it (`secondaryBus`), which is how the tree is linked, exactly as firmware
 * leaves bus numbers programmed for the kernel to find.
 *
 * What the topology answers:
 * - configuration space bytes of every function (header, capability list with PCI Express, MSI/MSI-X and a
 *   vendor-specific DMA descriptor, extended capabilities with ACS), readable and partly writable the way a
 *   kernel uses them (command register, ACS control, MSI/MSI-X message registers);
 * - the DMA aliases of a function in the order Linux's pci_for_each_dma_alias visits them, and from them the
 *   requester id its transactions carry when they reach the root complex: behind a PCIe-to-PCI bridge it is the
 *   bridge's secondary bus with device 0 function 0 (PCI Express to PCI/PCI-X Bridge specification 1.0, 2.3);
 *   behind a conventional PCI-to-PCI bridge it is the bridge's own id;
 * - the enumeration order Linux adds devices in (every function of a bus, then each bridge's bus in turn).
 */
import { IommuError } from "../../core/errors.js";
import { formatBdf, parsePciAddress, type PciAddress } from "../../core/pci.js";
import { buildConfig, writable } from "./config-space.js";
import {
  PCI_FUNCTION_TYPES, isBridgeType, isPcieType,
  type BarSpec, type PciFunction, type PciFunctionInput, type PciFunctionType,
} from "./function.js";

export * from "./function.js";
export {
  CAP_EXP_OFFSET, CAP_MSI_OFFSET, CAP_VNDR_OFFSET, EXT_CAP_ACS_OFFSET, VNDR_DMA_FORMAT, VNDR_DMA_LENGTH, programBar,
} from "./config-space.js";

/** Default identities, as QEMU's models report them. */
const DEFAULT_IDS: Record<PciFunctionType, [number, number, number]> = {
  "host-bridge": [0x8086, 0x29c0, 0x060000],
  endpoint: [0x1b36, 0x0005, 0x00ff00],
  pci: [0x1b36, 0x0005, 0x00ff00],
  "root-port": [0x1b36, 0x000c, 0x060400],
  "upstream-port": [0x104c, 0x8232, 0x060400],
  "downstream-port": [0x104c, 0x8233, 0x060400],
  "pcie-pci-bridge": [0x1b36, 0x000e, 0x060400],
  "pci-bridge": [0x1b36, 0x0001, 0x060400],
};

function bad(field: string, message: string): IommuError {
  return new IommuError("MACHINE_CONFIG", `${field}: ${message}`, {
    hint: "see the machine configuration format in the README (iommu sim boot --machine FILE)",
  });
}

/** Parses a size or address: a number, "0x…", decimal, or with a K/M/G/T suffix (KiB, MiB, … binary). */
export function parseSize(v: unknown, field: string): number {
  if (typeof v === "number") {
    if (Number.isSafeInteger(v) && v >= 0) return v;
    throw bad(field, `${v} is not a non-negative integer`);
  }
  if (typeof v !== "string") throw bad(field, `expected a number or a string such as "0x1000" or "4G", got ${JSON.stringify(v)}`);
  const t = v.trim().replace(/_/g, "");
  const m = /^(0x[0-9a-f]+|\d+)\s*([kmgt])?(i?b)?$/i.exec(t);
  if (!m) throw bad(field, `'${v}' is not a size or address (write "0x1000", "4096", "64M" or "4GiB")`);
  const base = Number(BigInt(m[1] ?? "0"));
  const unit = (m[2] ?? "").toLowerCase();
  const mult = unit === "k" ? 2 ** 10 : unit === "m" ? 2 ** 20 : unit === "g" ? 2 ** 30 : unit === "t" ? 2 ** 40 : 1;
  const n = base * mult;
  if (!Number.isSafeInteger(n)) throw bad(field, `'${v}' is too large`);
  return n;
}

function parseId(v: unknown, field: string): [number, number] | null {
  if (v === undefined) return null;
  if (typeof v !== "string" || !/^[0-9a-f]{4}:[0-9a-f]{4}$/i.test(v.trim())) {
    throw bad(field, `expected "vendor:device" in hex, such as "8086:10d3", got ${JSON.stringify(v)}`);
  }
  const [a, b] = v.trim().split(":");
  return [parseInt(a ?? "0", 16), parseInt(b ?? "0", 16)];
}

function parseClass(v: unknown, field: string): number | null {
  if (v === undefined) return null;
  const n = typeof v === "number" ? v : typeof v === "string" && /^(0x)?[0-9a-f]{1,6}$/i.test(v.trim()) ? parseInt(v.trim().replace(/^0x/i, ""), 16) : -1;
  if (!Number.isInteger(n) || n < 0 || n > 0xffffff) throw bad(field, `expected a 24-bit class code such as "0x020000", got ${JSON.stringify(v)}`);
  return n;
}

function optBool(v: unknown, field: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== "boolean") throw bad(field, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function optInt(v: unknown, field: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw bad(field, `expected an integer ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}

function parseBars(v: unknown, field: string): BarSpec[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw bad(field, "expected a list of BARs");
  if (v.length > 6) throw bad(field, "a function has at most 6 BARs");
  return v.map((b: unknown, i) => {
    const f = `${field}[${i}]`;
    if (typeof b !== "object" || b === null) throw bad(f, "expected an object such as {\"size\": \"128K\"}");
    const o = b as Record<string, unknown>;
    const kind = o.kind ?? "mem32";
    if (kind !== "mem32" && kind !== "mem64" && kind !== "io") throw bad(`${f}.kind`, `expected mem32, mem64 or io, got ${JSON.stringify(kind)}`);
    const size = parseSize(o.size, `${f}.size`);
    const min = kind === "io" ? 4 : 16;
    if (size < min || (size & (size - 1)) !== 0 && size < 2 ** 31) throw bad(`${f}.size`, `${size} is not a power of two of at least ${min}`);
    if (size >= 2 ** 31 && Math.log2(size) % 1 !== 0) throw bad(`${f}.size`, `${size} is not a power of two`);
    const base = o.base === undefined ? null : parseSize(o.base, `${f}.base`);
    if (base !== null && base % size !== 0) throw bad(`${f}.base`, `0x${base.toString(16)} is not aligned to the BAR size 0x${size.toString(16)}`);
    if (base !== null && kind === "mem32" && base + size > 2 ** 32) throw bad(`${f}.base`, `a 32-bit BAR must lie below 4 GiB`);
    return { kind, size, base };
  });
}

const TYPES = new Set<string>(PCI_FUNCTION_TYPES);

/** Size of the BAR an MSI-X function gets for its vector table when the configuration gives it no BAR. */
export const MSIX_TABLE_BAR_SIZE = 0x4000;

/** MSI-X functions keep their vector table at offset 0 of BAR 0 (added when the configuration has none). */
function withMsixTable(bars: BarSpec[], msi: string): BarSpec[] {
  if (msi === "msix" && bars.length === 0) return [{ kind: "mem32", size: MSIX_TABLE_BAR_SIZE, base: null }];
  return bars;
}

export class PciTopology {
  /** Every function, in the order the configuration lists them. */
  readonly functions: PciFunction[] = [];
  private readonly byRid = new Map<number, PciFunction>();
  private readonly bridgeBySecondary = new Map<number, PciFunction>();

  /** Builds and validates a topology; errors name the field, e.g. `devices[3].bdf: 00:02.0 is used twice`. */
  constructor(inputs: PciFunctionInput[], field = "devices") {
    inputs.forEach((d, i) => this.add(d, i, `${field}[${i}]`));
    this.link(field);
    this.finishConfigSpaces();
  }

  private add(d: PciFunctionInput, index: number, f: string): void {
    if (typeof d !== "object" || d === null) throw bad(f, "expected an object with at least a bdf");
    if (typeof d.bdf !== "string") throw bad(`${f}.bdf`, `expected "bus:device.function" such as "00:02.0", got ${JSON.stringify(d.bdf)}`);
    let address: PciAddress;
    try {
      address = parsePciAddress(d.bdf);
    } catch (e) {
      throw bad(`${f}.bdf`, (e as Error).message);
    }
    if (address.segment !== 0) throw bad(`${f}.bdf`, "only PCI segment 0 is modelled");
    const bdf = formatBdf(address);
    const rid = (address.bus << 8) | (address.device << 3) | address.fn;
    if (this.byRid.has(rid)) throw bad(`${f}.bdf`, `${bdf} is used twice`);
    const typeRaw = d.type ?? "endpoint";
    if (typeof typeRaw !== "string" || !TYPES.has(typeRaw)) {
      throw bad(`${f}.type`, `expected one of ${PCI_FUNCTION_TYPES.join(", ")}, got ${JSON.stringify(typeRaw)}`);
    }
    const type = typeRaw as PciFunctionType;
    const ids = parseId(d.id, `${f}.id`);
    const cls = parseClass(d.class, `${f}.class`);
    const [dv, dd, dc] = DEFAULT_IDS[type];
    const bridge = isBridgeType(type);
    let secondaryBus: number | null = null;
    if (bridge) {
      if (d.secondaryBus === undefined) throw bad(`${f}.secondaryBus`, `a ${type} needs the number of the bus behind it`);
      secondaryBus = optInt(d.secondaryBus, `${f}.secondaryBus`, 0, 1, 255);
      if (secondaryBus <= address.bus) throw bad(`${f}.secondaryBus`, `${secondaryBus} must be above the bridge's own bus ${address.bus}`);
      const other = this.bridgeBySecondary.get(secondaryBus);
      if (other !== undefined) throw bad(`${f}.secondaryBus`, `bus ${secondaryBus} is already behind ${other.bdf}`);
    } else if (d.secondaryBus !== undefined) {
      throw bad(`${f}.secondaryBus`, `a ${type} is not a bridge`);
    }
    if (type === "root-port" && address.bus !== 0) throw bad(`${f}.bdf`, "a root port sits on bus 00");
    if (type === "host-bridge" && address.bus !== 0) throw bad(`${f}.bdf`, "the host bridge sits on bus 00");
    const msiRaw = d.msi ?? (type === "host-bridge" || type === "pcie-pci-bridge" || type === "pci-bridge" ? "none" : "msi");
    if (msiRaw !== "none" && msiRaw !== "msi" && msiRaw !== "msix") throw bad(`${f}.msi`, `expected none, msi or msix, got ${JSON.stringify(msiRaw)}`);
    const acsDefault = type === "root-port" || type === "downstream-port";
    const acs = optBool(d.acs, `${f}.acs`, acsDefault);
    if (acs && !isPcieType(type)) throw bad(`${f}.acs`, `a conventional PCI ${type} has no extended capabilities, so no ACS`);
    const pasidBits = optInt(d.pasidBits, `${f}.pasidBits`, 0, 0, 20);
    if (pasidBits > 0 && type !== "endpoint") throw bad(`${f}.pasidBits`, `a PASID capability needs a PCI Express endpoint, not a ${type}`);
    const aliases = d.dmaAliases === undefined ? [] : d.dmaAliases;
    if (!Array.isArray(aliases)) throw bad(`${f}.dmaAliases`, 'expected a list of "device.function" such as ["00.1"]');
    const dmaAliasDevfns = aliases.map((a: unknown, j) => {
      const m = typeof a === "string" ? /^([0-9a-f]{1,2})\.([0-7])$/i.exec(a.trim()) : null;
      const dev = m ? parseInt(m[1] ?? "", 16) : 99;
      if (!m || dev > 0x1f) throw bad(`${f}.dmaAliases[${j}]`, `expected "device.function" such as "00.1", got ${JSON.stringify(a)}`);
      return (dev << 3) | parseInt(m[2] ?? "0", 10);
    });
    const name = d.name === undefined ? type : d.name;
    if (typeof name !== "string") throw bad(`${f}.name`, "expected a string");
    const driverDefault = type === "root-port" || type === "downstream-port" || type === "upstream-port" ? "pcieport" : null;
    const driver = d.driver === undefined ? driverDefault : d.driver;
    if (driver !== null && (typeof driver !== "string" || !/^[\w-]+$/.test(driver))) throw bad(`${f}.driver`, `expected a driver name or null, got ${JSON.stringify(driver)}`);
    const maxSeg = d.maxSegmentSize === undefined ? 65536 : parseSize(d.maxSegmentSize, `${f}.maxSegmentSize`);
    if (maxSeg < 4096 || (Math.log2(maxSeg) % 1 !== 0 && maxSeg !== 0xffffffff)) throw bad(`${f}.maxSegmentSize`, "expected a power of two of at least 4096");
    const fn: PciFunction = {
      index,
      address,
      bdf,
      rid,
      type,
      vendorId: ids?.[0] ?? dv,
      deviceId: ids?.[1] ?? dd,
      classCode: cls ?? dc,
      revision: 0,
      name,
      driver,
      secondaryBus,
      subordinateBus: secondaryBus,
      acs,
      msi: msiRaw,
      msiVectors: optInt(d.msiVectors, `${f}.msiVectors`, msiRaw === "msix" ? 3 : 1, 1, msiRaw === "msix" ? 128 : 32),
      dmaBits: optInt(d.dmaBits, `${f}.dmaBits`, 64, 24, 64),
      pasidBits,
      maxSegmentSize: Math.min(maxSeg, 2 ** 31),
      dmaAliasDevfns,
      multifunction: optBool(d.multifunction, `${f}.multifunction`, false),
      bars: withMsixTable(parseBars(d.bars, `${f}.bars`), msiRaw),
      parent: null,
      children: [],
      config: new Uint8Array(isPcieType(type) ? 4096 : 256),
    };
    this.functions.push(fn);
    this.byRid.set(rid, fn);
    if (secondaryBus !== null) this.bridgeBySecondary.set(secondaryBus, fn);
  }

  private link(field: string): void {
    for (const fn of this.functions) {
      const f = `${field}[${fn.index}]`;
      const bus = fn.address.bus;
      if (bus !== 0) {
        const up = this.bridgeBySecondary.get(bus);
        if (up === undefined) throw bad(`${f}.bdf`, `bus ${bus.toString(16).padStart(2, "0")} is behind no bridge (give a bridge "secondaryBus": ${bus})`);
        fn.parent = up;
        up.children.push(fn);
        if ((up.type === "root-port" || up.type === "downstream-port") && fn.address.device !== 0) {
          throw bad(`${f}.bdf`, `a PCI Express link has one device, number 00: ${fn.bdf} cannot sit below ${up.bdf}`);
        }
        if (up.type === "upstream-port" && fn.type !== "downstream-port") throw bad(`${f}.type`, `below a switch upstream port only downstream ports sit, not a ${fn.type}`);
        if (fn.type === "downstream-port" && up.type !== "upstream-port") throw bad(`${f}.type`, "a downstream port sits below a switch upstream port");
        if (fn.type === "root-port") throw bad(`${f}.bdf`, "a root port sits on bus 00");
        if ((up.type === "pcie-pci-bridge" || up.type === "pci-bridge") && isPcieType(fn.type)) {
          throw bad(`${f}.type`, `${fn.bdf} is behind ${up.type} ${up.bdf}, a conventional PCI bus: use type "pci" or "pci-bridge"`);
        }
      } else if (fn.type === "downstream-port") {
        throw bad(`${f}.type`, "a downstream port sits below a switch upstream port");
      } else if (fn.type === "upstream-port") {
        throw bad(`${f}.type`, "a switch upstream port sits below a root or downstream port");
      }
      if (fn.address.fn !== 0) {
        const f0 = this.byRid.get(fn.rid & ~7);
        if (f0 === undefined) throw bad(`${f}.bdf`, `function ${fn.address.fn} of a device without function 0 is never found by enumeration`);
      }
    }
    // Loops are impossible (secondary > bus); compute subordinate buses bottom-up and check sibling ranges.
    const sub = (b: PciFunction): number => {
      let m = b.secondaryBus ?? 0;
      for (const c of b.children) if (c.secondaryBus !== null) m = Math.max(m, sub(c));
      b.subordinateBus = m;
      return m;
    };
    const bridges = this.functions.filter((b) => b.secondaryBus !== null);
    for (const b of bridges) if (b.parent === null) sub(b);
    for (const a of bridges) {
      for (const b of bridges) {
        if (a === b || a.parent !== b.parent) continue;
        const [a0, a1, b0] = [a.secondaryBus ?? 0, a.subordinateBus ?? 0, b.secondaryBus ?? 0];
        if (b0 >= a0 && b0 <= a1) {
          throw bad(`${field}[${b.index}].secondaryBus`, `bus ${b0} lies inside buses ${a0}-${a1} behind ${a.bdf}`);
        }
      }
    }
    // Multi-function slots: every function of a slot with more than one reports it in its header type.
    for (const fn of this.functions) {
      const slot = fn.rid & ~7;
      let n = 0;
      for (let i = 0; i < 8; i++) if (this.byRid.has(slot | i)) n++;
      if (n > 1) fn.multifunction = true;
    }
    for (const fn of this.functions) {
      const f0 = this.byRid.get(fn.rid & ~7);
      if (f0 !== undefined && f0.multifunction) fn.multifunction = true;
    }
  }

  get(rid: number): PciFunction | undefined {
    return this.byRid.get(rid & 0xffff);
  }

  byBdf(bdf: string): PciFunction | undefined {
    const a = parsePciAddress(bdf);
    return this.byRid.get((a.bus << 8) | (a.device << 3) | a.fn);
  }

  /** The bridge whose secondary bus is `bus`, or null for bus 0 / an unknown bus. */
  bridgeFor(bus: number): PciFunction | null {
    return this.bridgeBySecondary.get(bus) ?? null;
  }

  /** Functions in the order Linux adds them: a bus's functions by devfn, then each bridge's bus, depth first. */
  enumerationOrder(): PciFunction[] {
    const out: PciFunction[] = [];
    const scan = (bus: number): void => {
      const here = this.functions.filter((f) => f.address.bus === bus).sort((a, b) => a.rid - b.rid);
      out.push(...here);
      for (const b of here) if (b.secondaryBus !== null) scan(b.secondaryBus);
    };
    scan(0);
    return out;
  }

  /**
   * The DMA aliases of a function in the order pci_for_each_dma_alias visits them: its own id, its quirk
   * aliases, then for each bridge on the way up, what that bridge makes of the request. Each entry names the
   * function Linux passes along with the alias.
   */
  dmaAliases(fn: PciFunction): { via: PciFunction; rid: number }[] {
    const out: { via: PciFunction; rid: number }[] = [{ via: fn, rid: fn.rid }];
    for (const devfn of fn.dmaAliasDevfns) out.push({ via: fn, rid: (fn.address.bus << 8) | devfn });
    for (let up = fn.parent; up !== null; up = up.parent) {
      switch (up.type) {
        case "root-port":
        case "upstream-port":
        case "downstream-port":
          continue;
        case "pcie-pci-bridge":
          out.push({ via: up, rid: (up.secondaryBus ?? 0) << 8 });
          continue;
        default:
          // A conventional PCI-to-PCI bridge takes ownership of the transaction with its own id.
          out.push({ via: up, rid: up.rid });
      }
    }
    return out;
  }

  /** The requester id a function's DMA carries at the root complex (the last alias on its way up). */
  requesterIdAtRoot(fn: PciFunction): number {
    const aliases = this.dmaAliases(fn).filter((a) => a.via !== fn || a.rid === fn.rid);
    return aliases[aliases.length - 1]?.rid ?? fn.rid;
  }

  // ---- Configuration space ----

  private finishConfigSpaces(): void {
    for (const fn of this.functions) buildConfig(fn);
  }

  /** Config read of 1, 2 or 4 bytes; absent functions read all ones, as a master abort does. */
  configRead(rid: number, offset: number, size: 1 | 2 | 4): number {
    const fn = this.byRid.get(rid & 0xffff);
    if (fn === undefined || offset < 0 || offset + size > fn.config.length) return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    const c = fn.config;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (c[offset + i] ?? 0);
    return v >>> 0;
  }

  /**
   * Config write. Only what the model lets software change is written: the command register, the bus numbers of
   * bridges, the ACS control register, the MSI and MSI-X message registers. Everything else is read-only.
   */
  configWrite(rid: number, offset: number, size: 1 | 2 | 4, value: number): void {
    const fn = this.byRid.get(rid & 0xffff);
    if (fn === undefined) return;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      if (!writable(fn, at)) continue;
      fn.config[at] = (value >>> (8 * i)) & 0xff;
    }
  }
}
