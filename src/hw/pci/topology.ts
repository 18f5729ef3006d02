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
import {
  PCI_VENDOR_ID,
  PCI_COMMAND,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_CLASS_REVISION,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_MFD,
  PCI_BASE_ADDRESS_0,
  PCI_PRIMARY_BUS,
  PCI_SECONDARY_BUS,
  PCI_SUBORDINATE_BUS,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_CAPABILITY_LIST,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_VNDR,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSIX,
  PCI_EXT_CAP_ID_ACS,
  PCI_EXP_TYPE_ENDPOINT,
  PCI_EXP_TYPE_ROOT_PORT,
  PCI_EXP_TYPE_UPSTREAM,
  PCI_EXP_TYPE_DOWNSTREAM,
  PCI_EXP_TYPE_PCI_BRIDGE,
  PCI_EXP_TYPE_RC_END,
  PCI_ACS_SV,
  PCI_ACS_TB,
  PCI_ACS_RR,
  PCI_ACS_CR,
  PCI_ACS_UF,
  PCI_ACS_DT,
} from "../../core/pci-regs.js";

export type PciFunctionType =
  | "host-bridge"
  | "endpoint"
  | "pci"
  | "root-port"
  | "upstream-port"
  | "downstream-port"
  | "pcie-pci-bridge"
  | "pci-bridge";

export const PCI_FUNCTION_TYPES: readonly PciFunctionType[] = [
  "host-bridge", "endpoint", "pci", "root-port", "upstream-port", "downstream-port", "pcie-pci-bridge", "pci-bridge",
];

export type MsiKind = "none" | "msi" | "msix";

/** One BAR as configured: a memory (32- or 64-bit) or I/O window. */
export interface BarSpec {
  kind: "mem32" | "mem64" | "io";
  size: number;
  /** Address; null lets the firmware place it. */
  base: number | null;
}

/** A function as the machine configuration declares it (before validation). */
export interface PciFunctionInput {
  bdf?: unknown;
  type?: unknown;
  /** "vvvv:dddd" */
  id?: unknown;
  /** 24-bit class code, "0x020000". */
  class?: unknown;
  name?: unknown;
  /** Driver the simulated kernel binds ("e1000e"), or null for none. */
  driver?: unknown;
  secondaryBus?: unknown;
  /** An ACS extended capability (ports and multi-function endpoints). */
  acs?: unknown;
  msi?: unknown;
  msiVectors?: unknown;
  /** Address bits the device can drive in DMA (its driver's DMA mask): 32..64. */
  dmaBits?: unknown;
  /** Largest DMA segment its driver accepts (dma_set_max_seg_size), bytes; Linux's PCI default is 64 KiB. */
  maxSegmentSize?: unknown;
  /** Quirk: other functions (device.function on the same bus) whose requester id it also uses. */
  dmaAliases?: unknown;
  multifunction?: unknown;
  bars?: unknown;
}

export interface PciFunction {
  readonly index: number;
  readonly address: PciAddress;
  readonly bdf: string;
  readonly rid: number;
  readonly type: PciFunctionType;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly classCode: number;
  readonly revision: number;
  readonly name: string;
  readonly driver: string | null;
  readonly secondaryBus: number | null;
  /** Highest bus number behind this bridge (computed). */
  subordinateBus: number | null;
  readonly acs: boolean;
  readonly msi: MsiKind;
  readonly msiVectors: number;
  readonly dmaBits: number;
  readonly maxSegmentSize: number;
  /** devfns on the same bus this function also issues requests as. */
  readonly dmaAliasDevfns: number[];
  multifunction: boolean;
  readonly bars: BarSpec[];
  /** Upstream bridge, null on bus 0. */
  parent: PciFunction | null;
  readonly children: PciFunction[];
  /** Configuration space (256 bytes conventional, 4096 PCI Express). */
  readonly config: Uint8Array;
}

// ---- Configuration space layout (PCI Local Bus 3.0 ch. 6, PCIe Base 6.0 ch. 7) ----

/** Offsets of the capabilities this model places. */
export const CAP_EXP_OFFSET = 0x40;
export const CAP_MSI_OFFSET = 0x80;
export const CAP_VNDR_OFFSET = 0xc0;
export const EXT_CAP_ACS_OFFSET = 0x100;
/**
 * The vendor-specific capability every simulated DMA-capable function carries (24 bytes): format 1 at +3, the
 * number of address bits the device drives in DMA at +4, log2 of its largest DMA segment at +5, and from +8 the
 * NUL-padded name of the driver that claims it. It stands for what a real kernel learns from the device id
 * (modules.alias, the driver's knowledge of its hardware; some devices report their reach in registers, like
 * AHCI's S64A).
 */
export const VNDR_DMA_FORMAT = 1;
export const VNDR_DMA_LENGTH = 24;

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

export function isBridgeType(t: PciFunctionType): boolean {
  return t === "root-port" || t === "upstream-port" || t === "downstream-port" || t === "pcie-pci-bridge" || t === "pci-bridge";
}

export function isPcieType(t: PciFunctionType): boolean {
  return t !== "pci" && t !== "pci-bridge" && t !== "host-bridge";
}

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

function writable(fn: PciFunction, at: number): boolean {
  if (at === PCI_COMMAND || at === PCI_COMMAND + 1) return true;
  if (fn.msi === "msi" && at >= CAP_MSI_OFFSET + 2 && at < CAP_MSI_OFFSET + 14) return true;
  if (fn.msi === "msix" && (at === CAP_MSI_OFFSET + 3)) return true; // enable / function mask
  if (fn.acs && (at === EXT_CAP_ACS_OFFSET + 6 || at === EXT_CAP_ACS_OFFSET + 7)) return true;
  return false;
}

function put8(c: Uint8Array, o: number, v: number): void {
  c[o] = v & 0xff;
}
function put16(c: Uint8Array, o: number, v: number): void {
  put8(c, o, v);
  put8(c, o + 1, v >>> 8);
}
function put32(c: Uint8Array, o: number, v: number): void {
  put16(c, o, v & 0xffff);
  put16(c, o + 2, (v >>> 16) & 0xffff);
}

function pcieTypeOf(fn: PciFunction): number | null {
  switch (fn.type) {
    case "endpoint":
      return fn.address.bus === 0 ? PCI_EXP_TYPE_RC_END : PCI_EXP_TYPE_ENDPOINT;
    case "root-port":
      return PCI_EXP_TYPE_ROOT_PORT;
    case "upstream-port":
      return PCI_EXP_TYPE_UPSTREAM;
    case "downstream-port":
      return PCI_EXP_TYPE_DOWNSTREAM;
    case "pcie-pci-bridge":
      return PCI_EXP_TYPE_PCI_BRIDGE;
    default:
      return null;
  }
}

/** Writes the configuration header and capabilities of a function (BAR addresses are written by firmware). */
function buildConfig(fn: PciFunction): void {
  const c = fn.config;
  put16(c, PCI_VENDOR_ID, fn.vendorId);
  put16(c, PCI_VENDOR_ID + 2, fn.deviceId);
  put8(c, PCI_CLASS_REVISION, fn.revision);
  put8(c, PCI_CLASS_REVISION + 1, fn.classCode & 0xff);
  put16(c, PCI_CLASS_REVISION + 2, (fn.classCode >>> 8) & 0xffff);
  const bridge = fn.secondaryBus !== null;
  put8(c, PCI_HEADER_TYPE, (bridge ? 1 : 0) | (fn.multifunction ? PCI_HEADER_TYPE_MFD : 0));
  if (bridge) {
    put8(c, PCI_PRIMARY_BUS, fn.address.bus);
    put8(c, PCI_SECONDARY_BUS, fn.secondaryBus ?? 0);
    put8(c, PCI_SUBORDINATE_BUS, fn.subordinateBus ?? 0);
  } else {
    put16(c, PCI_SUBSYSTEM_VENDOR_ID, fn.vendorId === 0x1b36 ? 0x1af4 : fn.vendorId);
    put16(c, PCI_SUBSYSTEM_VENDOR_ID + 2, 0x1100);
  }
  const caps: [number, (o: number) => void][] = [];
  const pt = pcieTypeOf(fn);
  if (pt !== null) {
    caps.push([CAP_EXP_OFFSET, (o) => {
      put8(c, o, PCI_CAP_ID_EXP);
      put16(c, o + 2, 0x2 | (pt << 4)); // capability version 2, device/port type
    }]);
  }
  if (fn.msi === "msi") {
    caps.push([CAP_MSI_OFFSET, (o) => {
      put8(c, o, PCI_CAP_ID_MSI);
      const mmc = Math.ceil(Math.log2(fn.msiVectors));
      put16(c, o + 2, 0x80 | (mmc << 1)); // 64-bit address capable, multiple message capable
    }]);
  } else if (fn.msi === "msix") {
    caps.push([CAP_MSI_OFFSET, (o) => {
      put8(c, o, PCI_CAP_ID_MSIX);
      put16(c, o + 2, (fn.msiVectors - 1) & 0x7ff);
      put32(c, o + 4, 0); // table at BAR 0, offset 0
      put32(c, o + 8, 0x800); // pending bit array at BAR 0, offset 0x800
    }]);
  }
  const dmaCapable = fn.type === "endpoint" || fn.type === "pci";
  if (dmaCapable) {
    caps.push([CAP_VNDR_OFFSET, (o) => {
      put8(c, o, PCI_CAP_ID_VNDR);
      put8(c, o + 2, VNDR_DMA_LENGTH);
      put8(c, o + 3, VNDR_DMA_FORMAT);
      put8(c, o + 4, fn.dmaBits);
      put8(c, o + 5, Math.round(Math.log2(fn.maxSegmentSize)));
      const drv = fn.driver ?? "";
      for (let i = 0; i < Math.min(drv.length, VNDR_DMA_LENGTH - 9); i++) put8(c, o + 8 + i, drv.charCodeAt(i));
    }]);
  }
  if (caps.length > 0) {
    put16(c, PCI_STATUS, PCI_STATUS_CAP_LIST);
    put8(c, PCI_CAPABILITY_LIST, caps[0]?.[0] ?? 0);
    caps.forEach(([o, write], i) => {
      write(o);
      put8(c, o + 1, caps[i + 1]?.[0] ?? 0);
    });
  }
  if (fn.acs) {
    const o = EXT_CAP_ACS_OFFSET;
    put32(c, o, PCI_EXT_CAP_ID_ACS | (1 << 16)); // version 1, last capability
    const portCaps = PCI_ACS_SV | PCI_ACS_TB | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF | PCI_ACS_DT; // as QEMU's ports
    put16(c, o + 4, fn.type === "endpoint" ? PCI_ACS_RR | PCI_ACS_CR : portCaps);
    put16(c, o + 6, 0); // control: the kernel enables what it wants
  }
}

/** Writes a BAR's address into configuration space (firmware's job). */
export function programBar(fn: PciFunction, index: number, bar: BarSpec, base: number): void {
  const o = PCI_BASE_ADDRESS_0 + 4 * index;
  const lo = bar.kind === "io" ? (base | 1) >>> 0 : (base | (bar.kind === "mem64" ? 0x4 : 0)) >>> 0;
  put32(fn.config, o, lo % 2 ** 32);
  if (bar.kind === "mem64") put32(fn.config, o + 4, Math.floor(base / 2 ** 32));
}
