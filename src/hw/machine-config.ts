/**
 * The declarative machine configuration: what a machine is made of, as a JSON file or a TypeScript object, and
 * its validation. Every mistake is one IommuError (code MACHINE_CONFIG) whose message starts with the field,
 * e.g. `devices[3].bdf: 00:02.0 is used twice` or `ram.size: 16 MiB is less than the 17 MiB …`.
 *
 *   {
 *     "name": "my-box",
 *     "ram": { "size": "6G", "below4g": "2G", "reserved": [{ "base": "0x7f000000", "size": "1M" }] },
 *     "cpus": 2,                                       // or { "apicIds": [0, 2] }
 *     "ioapics": [{ "id": 0, "base": "0xfec00000" }],
 *     "devices": [{ "bdf": "00:02.0", "type": "endpoint", "id": "8086:10d3", "class": "0x020000",
 *                   "driver": "e1000e", "dmaBits": 64, "msi": "msix", "bars": [{ "size": "128K" }] }, …],
 *     "iommus": [{ "base": "0xfed90000", "scope": "all", "interruptRemapping": true, "cachingMode": false,
 *                  "scalableMode": false }],                 // also awBits, passThrough, postedInterrupts,
 *                                                             // firstStage, nested, pasidBits
 *     "rmrrs": [{ "base": "0x7f000000", "size": "1M", "devices": ["00:14.0"] }]
 *   }
 */
import { checkKeys, configError, hexNum, isObj } from "./config-check.js";

export { configError } from "./config-check.js";
import { parsePciAddress, formatBdf } from "../core/pci.js";
import { PciTopology, parseSize, type BarSpec, type PciFunction, type PciFunctionInput } from "./pci/topology.js";
import { QEMU_VTD_BASE } from "./platform.js";
import { fieldMax } from "../spec/vtd/fields.js";
import { irtaEntries, IRTE_SIZE } from "../spec/vtd/intremap.js";
import { IRTA } from "../spec/vtd/registers.js";
import { AMD_KEYS, AMD_TABLE_BYTES, AMDVI_WINDOW, checkSpecials, defaultSpecials, parseAmdUnit, placeAmdFunctions, type AmdViUnitConfig } from "./machine-config-amd.js";
import { closest } from "../core/words.js";

export type { AmdViUnitConfig } from "./machine-config-amd.js";

export interface MachineConfigInput {
  name?: unknown;
  ram?: unknown;
  cpus?: unknown;
  ioapics?: unknown;
  devices?: unknown;
  iommus?: unknown;
  rmrrs?: unknown;
  /** Another name for `rmrrs` (AMD-Vi firmware calls them IVMD unity ranges). */
  unity?: unknown;
}

export interface RamConfig {
  /** Total RAM in bytes. */
  size: number;
  /** RAM placed below 4 GiB (the rest goes above 4 GiB, after the PCI hole). */
  below4g: number;
  /** Ranges inside RAM that firmware reports as reserved (e820 type 2). */
  reserved: { base: number; size: number }[];
}

/** A VT-d remapping unit (a DMAR DRHD). */
export interface VtdUnitConfig {
  type: "vtd";
  name: string;
  base: number;
  /** "all": DRHD INCLUDE_PCI_ALL; otherwise the listed functions (a bridge covers everything behind it). */
  scope: "all" | string[];
  interruptRemapping: boolean;
  cachingMode: boolean;
  awBits: 39 | 48 | 57;
  passThrough: boolean;
  /** Posted interrupts (CAP.PI); QEMU 7.2's unit has none. */
  postedInterrupts: boolean;
  /** Scalable-mode translation (ECAP.SMTS, SSTS, SRS): QEMU 7.2's `x-scalable-mode=on`. */
  scalableMode: boolean;
  /** First-stage translation (ECAP.FSTS); needs scalableMode. QEMU 7.2 has none. */
  firstStage: boolean;
  /** Nested translation (ECAP.NEST); needs firstStage. */
  nested: boolean;
  /** PASID width of requests with a PASID (ECAP.PASID, PSS): 0 (none) or 1..20; needs scalableMode. */
  pasidBits: number;
  /** IOAPIC ids in this unit's scope. */
  ioapics: number[];
}

/** One remapping unit: VT-d or AMD-Vi (a machine has units of one kind only). */
export type IommuUnitConfig = VtdUnitConfig | AmdViUnitConfig;

/** The kind of the machine's IOMMUs, or null without any. */
export function iommuKind(c: Pick<MachineConfig, "iommus">): "vtd" | "amd-vi" | null {
  return c.iommus[0]?.type ?? null;
}

/** Bytes of a unit's register window. */
export function unitWindowSize(u: IommuUnitConfig): number {
  return u.type === "amd-vi" ? AMDVI_WINDOW : 4096;
}

export interface RmrrConfig {
  base: number;
  /** Last byte (inclusive). */
  end: number;
  devices: string[];
}

export interface MachineConfig {
  name: string;
  ram: RamConfig;
  cpus: { apicId: number }[];
  ioapics: { id: number; base: number }[];
  devices: PciFunctionInput[];
  iommus: IommuUnitConfig[];
  rmrrs: RmrrConfig[];
}

export const GiB = 2 ** 30;
export const MiB = 2 ** 20;
const FOUR_G = 2 ** 32;
/** QEMU q35 puts 2 GiB below 4 GiB when RAM reaches 0xb0000000, otherwise all of it (hw/i386/pc_q35.c). */
export const Q35_LOWMEM_LIMIT = 0xb0000000;
export const Q35_LOWMEM_SPLIT = 0x80000000;
/** What the kernel image, its early allocations and the low megabyte take before any table is placed. */
export const KERNEL_RESERVED_BYTES = 16 * MiB;
/** Interrupt remapping table of Linux: INTR_REMAP_TABLE_ENTRIES (65536) entries of 16 bytes. */
export const IR_TABLE_BYTES = irtaEntries(fieldMax(IRTA.S)) * IRTE_SIZE;
/** The I/O APIC / local APIC / interrupt-message region no BAR may overlap. */
const APIC_REGION: [number, number] = [0xfec00000, 0xfeefffff];

/** Keys each object of a machine configuration may have; anything else is a mistake worth naming. */
const KEYS = {
  machine: ["name", "ram", "cpus", "ioapics", "devices", "iommus", "rmrrs", "unity"],
  ram: ["size", "below4g", "reserved"],
  range: ["base", "size"],
  cpus: ["apicIds"],
  ioapic: ["id", "base"],
  iommu: ["type", "base", "scope", "interruptRemapping", "cachingMode", "awBits", "passThrough", "postedInterrupts", "scalableMode", "firstStage", "nested", "pasidBits"],
  rmrr: ["base", "end", "size", "devices"],
  device: ["bdf", "type", "id", "class", "name", "driver", "secondaryBus", "acs", "msi", "msiVectors", "dmaBits", "pasidBits", "maxSegmentSize", "dmaAliases", "multifunction", "bars"],
} as const;

const fmtMiB = (n: number): string => (n % MiB === 0 ? `${n / MiB} MiB` : `${(n / MiB).toFixed(1)} MiB`);
const h = hexNum;

function parseRam(v: unknown): RamConfig {
  const r = v === undefined ? { size: "6G" } : v;
  if (!isObj(r)) throw configError("ram", 'expected an object such as {"size": "6G"}');
  checkKeys(r, KEYS.ram, "ram");
  const size = parseSize(r.size ?? "6G", "ram.size");
  if (size % 4096 !== 0) throw configError("ram.size", `${size} is not a multiple of 4 KiB`);
  const dflt = size >= Q35_LOWMEM_LIMIT ? Q35_LOWMEM_SPLIT : size;
  const below4g = r.below4g === undefined ? dflt : parseSize(r.below4g, "ram.below4g");
  if (below4g > size) throw configError("ram.below4g", `${fmtMiB(below4g)} is more than ram.size`);
  if (below4g > Q35_LOWMEM_LIMIT) throw configError("ram.below4g", `${h(below4g)} runs into the PCI hole at ${h(Q35_LOWMEM_LIMIT)}`);
  if (below4g % 4096 !== 0) throw configError("ram.below4g", "is not a multiple of 4 KiB");
  const resIn = r.reserved ?? [];
  if (!Array.isArray(resIn)) throw configError("ram.reserved", "expected a list of {base, size}");
  const reserved = resIn.map((x: unknown, i) => {
    const f = `ram.reserved[${i}]`;
    if (!isObj(x)) throw configError(f, "expected {base, size}");
    checkKeys(x, KEYS.range, f);
    const base = parseSize(x.base, `${f}.base`);
    const sz = parseSize(x.size, `${f}.size`);
    if (base % 4096 !== 0 || sz % 4096 !== 0 || sz === 0) throw configError(f, "base and size must be non-zero multiples of 4 KiB");
    return { base, size: sz };
  });
  return { size, below4g, reserved };
}

function parseCpus(v: unknown): { apicId: number }[] {
  if (v === undefined) return [{ apicId: 0 }, { apicId: 1 }];
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 1 || v > 255) throw configError("cpus", `expected 1..255 CPUs, got ${v}`);
    return Array.from({ length: v }, (_, i) => ({ apicId: i }));
  }
  if (!isObj(v) || !Array.isArray(v.apicIds) || v.apicIds.length === 0) throw configError("cpus", 'expected a count or {"apicIds": [0, 1]}');
  checkKeys(v, KEYS.cpus, "cpus");
  const seen = new Set<number>();
  return v.apicIds.map((id: unknown, i) => {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 254) throw configError(`cpus.apicIds[${i}]`, "expected an APIC id 0..254");
    if (seen.has(id)) throw configError(`cpus.apicIds[${i}]`, `APIC id ${id} is used twice`);
    seen.add(id);
    return { apicId: id };
  });
}

function parseIoapics(v: unknown): { id: number; base: number }[] {
  if (v === undefined) return [{ id: 0, base: 0xfec00000 }];
  if (!Array.isArray(v)) throw configError("ioapics", "expected a list of {id, base}");
  const seen = new Set<number>();
  return v.map((x: unknown, i) => {
    const f = `ioapics[${i}]`;
    if (!isObj(x)) throw configError(f, "expected {id, base}");
    checkKeys(x, KEYS.ioapic, f);
    const id = x.id;
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 255) throw configError(`${f}.id`, "expected 0..255");
    if (seen.has(id)) throw configError(`${f}.id`, `IOAPIC id ${id} is used twice`);
    seen.add(id);
    return { id, base: x.base === undefined ? 0xfec00000 + 0x1000 * i : parseSize(x.base, `${f}.base`) };
  });
}

const UNIT_TYPES = ["vtd", "amd-vi"] as const;

/** The `type` of iommus[i]; every unit of a machine must have the same. */
function unitType(x: Record<string, unknown>, i: number, first: string | null): "vtd" | "amd-vi" {
  const t = x.type ?? "vtd";
  if (t !== "vtd" && t !== "amd-vi") {
    const near = typeof t === "string" ? closest(t, UNIT_TYPES) : undefined;
    throw configError(`iommus[${i}].type`, `expected "vtd" or "amd-vi", got ${JSON.stringify(t)}${near === undefined ? "" : ` (did you mean '${near}'?)`}`);
  }
  if (first !== null && t !== first) throw configError(`iommus[${i}].type`, `"${t}" cannot be mixed with "${first}" units (iommus[0]) in one machine`);
  return t;
}

function parseIommus(v: unknown, ioapics: { id: number }[]): IommuUnitConfig[] {
  const list = v === undefined ? [{}] : v;
  if (!Array.isArray(list)) throw configError("iommus", "expected a list of remapping units ([] for a machine without an IOMMU)");
  let first: "vtd" | "amd-vi" | null = null;
  const amd: (AmdViUnitConfig & { explicitSpecial: boolean })[] = [];
  const units = list.map((x: unknown, i): IommuUnitConfig => {
    const f = `iommus[${i}]`;
    if (!isObj(x)) throw configError(f, 'expected an object such as {"base": "0xfed90000", "scope": "all"}');
    first = unitType(x, i, first);
    if (first === "amd-vi") {
      const u = parseAmdUnit(x, i, amd.length);
      amd.push(u);
      return u;
    }
    const amdKey = Object.keys(x).find((k) => !(KEYS.iommu as readonly string[]).includes(k) && (AMD_KEYS as readonly string[]).includes(k));
    if (amdKey !== undefined) throw configError(`${f}.${amdKey}`, 'is a key of AMD-Vi units, and this unit is VT-d (add "type": "amd-vi")');
    checkKeys(x, KEYS.iommu, f);
    const base = x.base === undefined ? QEMU_VTD_BASE + 0x1000 * i : parseSize(x.base, `${f}.base`);
    if (base % 4096 !== 0) throw configError(`${f}.base`, `${h(base)} is not 4 KiB aligned`);
    if (base + 4096 > FOUR_G) throw configError(`${f}.base`, "the register window must lie below 4 GiB");
    const scope = x.scope ?? "all";
    if (scope !== "all" && !(Array.isArray(scope) && scope.every((s) => typeof s === "string"))) {
      throw configError(`${f}.scope`, 'expected "all" (INCLUDE_PCI_ALL) or a list of functions such as ["00:02.0"]');
    }
    const b = (k: string, d: boolean): boolean => {
      const val = x[k];
      if (val === undefined) return d;
      if (typeof val !== "boolean") throw configError(`${f}.${k}`, "expected true or false");
      return val;
    };
    const aw = x.awBits ?? 39;
    if (aw !== 39 && aw !== 48 && aw !== 57) throw configError(`${f}.awBits`, "expected 39, 48 or 57");
    if (b("postedInterrupts", false) && !b("interruptRemapping", true)) {
      throw configError(`${f}.postedInterrupts`, "posted interrupts need interruptRemapping");
    }
    const pasidBits = x.pasidBits ?? 0;
    if (typeof pasidBits !== "number" || !Number.isInteger(pasidBits) || pasidBits < 0 || pasidBits > 20) throw configError(`${f}.pasidBits`, "expected 0 (no PASID support) or 1..20");
    if (!b("scalableMode", false)) {
      const needy = ["firstStage", "nested"].find((k) => b(k, false)) ?? (pasidBits > 0 ? "pasidBits" : undefined);
      if (needy !== undefined) throw configError(`${f}.${needy}`, "needs scalableMode");
    }
    if (b("nested", false) && !b("firstStage", false)) throw configError(`${f}.nested`, "needs firstStage");
    return {
      type: "vtd",
      name: `dmar${i}`,
      base,
      scope: scope === "all" ? "all" : (scope as string[]).map((s) => s),
      interruptRemapping: b("interruptRemapping", true),
      cachingMode: b("cachingMode", false),
      awBits: aw,
      passThrough: b("passThrough", true),
      postedInterrupts: b("postedInterrupts", false),
      scalableMode: b("scalableMode", false),
      firstStage: b("firstStage", false),
      nested: b("nested", false),
      pasidBits,
      ioapics: [],
    };
  });
  const all = units.filter((u) => u.scope === "all");
  if (all.length > 1) throw configError(`iommus[${units.indexOf(all[1] as IommuUnitConfig)}].scope`, "only one unit may include all devices");
  units.forEach((u, i) => {
    units.forEach((o, j) => {
      if (j <= i) return;
      if (u.base < o.base + unitWindowSize(o) && o.base < u.base + unitWindowSize(u)) throw configError(`iommus[${j}].base`, `${h(o.base)} overlaps iommus[${i}] at ${h(u.base)}`);
    });
  });
  if (amd.length > 0) {
    // Strip the parse-time marker once the defaults are decided.
    defaultSpecials(amd, (u) => units.indexOf(u), ioapics);
    checkSpecials(amd, (u) => units.indexOf(u), ioapics);
    for (const u of amd) delete (u as { explicitSpecial?: boolean }).explicitSpecial;
    return units;
  }
  // IOAPICs belong to the include-all unit, or the first one (QEMU lists its IOAPIC under its only DRHD).
  const owner = all[0] ?? units[0];
  if (owner !== undefined && owner.type === "vtd") owner.ioapics = ioapics.map((a) => a.id);
  return units;
}

/** `rmrrs` (or `unity`): reserved memory the listed devices keep mapped — RMRRs on VT-d, IVMD unity ranges on AMD-Vi. */
function parseRmrrs(v: unknown, key: "rmrrs" | "unity"): RmrrConfig[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw configError(key, "expected a list of {base, size, devices}");
  return v.map((x: unknown, i) => {
    const f = `${key}[${i}]`;
    if (!isObj(x)) throw configError(f, "expected {base, size, devices}");
    checkKeys(x, KEYS.rmrr, f);
    const base = parseSize(x.base, `${f}.base`);
    const size = x.size !== undefined ? parseSize(x.size, `${f}.size`) : x.end !== undefined ? parseSize(x.end, `${f}.end`) - base + 1 : 0;
    if (base % 4096 !== 0 || size % 4096 !== 0 || size <= 0) throw configError(f, "base and size must be non-zero multiples of 4 KiB");
    if (!Array.isArray(x.devices) || x.devices.length === 0 || !x.devices.every((d) => typeof d === "string")) {
      throw configError(`${f}.devices`, 'expected a list of functions such as ["00:14.0"]');
    }
    return { base, end: base + size - 1, devices: x.devices as string[] };
  });
}

/** Validates a configuration and fills in defaults. The topology it builds is returned along. */
export function normalizeMachineConfig(input: MachineConfigInput): { config: MachineConfig; topology: PciTopology } {
  if (!isObj(input)) throw configError("machine", `expected a JSON object, not ${input === null ? "null" : Array.isArray(input) ? "a list" : typeof input}`);
  checkKeys(input, KEYS.machine, "");
  const name = input.name ?? "custom";
  if (typeof name !== "string") throw configError("name", "expected a string");
  const ram = parseRam(input.ram);
  const cpus = parseCpus(input.cpus);
  const ioapics = parseIoapics(input.ioapics);
  const devicesIn = input.devices ?? [];
  if (!Array.isArray(devicesIn)) throw configError("devices", "expected a list of PCI functions");
  devicesIn.forEach((d: unknown, i) => {
    if (isObj(d)) checkKeys(d, KEYS.device, `devices[${i}]`);
  });
  const topology = new PciTopology(devicesIn as PciFunctionInput[], "devices");
  const iommus = parseIommus(input.iommus, ioapics);
  if (input.rmrrs !== undefined && input.unity !== undefined) throw configError("unity", "is another name for rmrrs: give one of them");
  const rmrrs = parseRmrrs(input.unity ?? input.rmrrs, input.unity !== undefined ? "unity" : "rmrrs");
  const config: MachineConfig = { name, ram, cpus, ioapics, devices: devicesIn as PciFunctionInput[], iommus, rmrrs };
  const amd = iommus.filter((u): u is AmdViUnitConfig => u.type === "amd-vi");
  placeAmdFunctions(amd, (u) => iommus.indexOf(u), topology);
  checkScopes(config, topology);
  const rmrrKey = input.unity !== undefined ? "unity" : "rmrrs";
  rmrrs.forEach((r, i) => r.devices.forEach((d, j) => lookupDevice(topology, d, `${rmrrKey}[${i}].devices[${j}]`)));
  checkRam(config, topology);
  placeBars(config, topology);
  return { config, topology };
}

function lookupDevice(topology: PciTopology, text: string, field: string): PciFunction {
  let fn: PciFunction | undefined;
  try {
    fn = topology.byBdf(text);
  } catch {
    throw configError(field, `'${text}' is not a PCI address`);
  }
  if (fn === undefined) throw configError(field, `${formatBdf(parsePciAddress(text))} is not among the devices`);
  return fn;
}

/** True when `fn` is `scoped` or sits behind it (a bridge in a scope covers its subtree). */
function covers(scoped: PciFunction, fn: PciFunction): boolean {
  for (let f: PciFunction | null = fn; f !== null; f = f.parent) if (f === scoped) return true;
  return false;
}

function checkScopes(c: MachineConfig, t: PciTopology): void {
  if (c.iommus.length === 0) return;
  const listed = new Map<PciFunction, number>();
  c.iommus.forEach((u, i) => {
    if (u.scope === "all") return;
    u.scope.forEach((s, j) => {
      const fn = lookupDevice(t, s, `iommus[${i}].scope[${j}]`);
      const prev = listed.get(fn);
      if (prev !== undefined) throw configError(`iommus[${i}].scope[${j}]`, `${fn.bdf} is already in iommus[${prev}].scope`);
      listed.set(fn, i);
    });
  });
  if (c.iommus.some((u) => u.scope === "all")) return;
  for (const fn of t.functions) {
    const inScope = [...listed.keys()].some((s) => covers(s, fn));
    if (!inScope) {
      throw configError(`devices[${fn.index}].bdf`, `${fn.bdf} is outside every remapping unit's scope`, );
    }
  }
}

/** Bytes the kernel needs before it can run: its image and low memory, then every unit's tables. */
export function tablesNeed(c: MachineConfig, t: PciTopology): number {
  const buses = new Set(t.functions.map((f) => f.address.bus)).size || 1;
  let n = KERNEL_RESERVED_BYTES;
  for (const u of c.iommus) {
    if (u.type === "amd-vi") {
      n += AMD_TABLE_BYTES;
      continue;
    }
    n += 4096 /* root table */ + 4096 /* invalidation queue */ + buses * 4096 + (u.interruptRemapping ? IR_TABLE_BYTES : 0);
  }
  return n;
}

function checkRam(c: MachineConfig, t: PciTopology): void {
  const need = tablesNeed(c, t);
  if (c.ram.below4g < need) {
    const what = c.iommus.length === 0 ? "the kernel needs" : `the kernel and the remapping tables (${c.iommus.map((u) => u.name).join(", ")}) need`;
    throw configError(c.ram.below4g < c.ram.size ? "ram.below4g" : "ram.size", `${fmtMiB(c.ram.below4g)} is less than the ${fmtMiB(need)} ${what}`);
  }
  c.ram.reserved.forEach((r, i) => {
    if (!ramContains(c.ram, r.base, r.size)) throw configError(`ram.reserved[${i}]`, `${h(r.base)}+${h(r.size)} is not inside RAM`);
  });
  c.iommus.forEach((u, i) => {
    if (u.type === "amd-vi" && u.exclusion !== null && !ramContains(c.ram, u.exclusion.base, u.exclusion.size)) {
      throw configError(`iommus[${i}].exclusion`, `${h(u.exclusion.base)}+${h(u.exclusion.size)} is not inside RAM`);
    }
  });
  c.rmrrs.forEach((r, i) => {
    if (!ramContains(c.ram, r.base, r.end - r.base + 1)) throw configError(`rmrrs[${i}].base`, `${h(r.base)}-${h(r.end)} is not inside RAM`);
  });
}

export function ramContains(ram: RamConfig, base: number, size: number): boolean {
  const end = base + size;
  if (end <= ram.below4g) return true;
  const hi = ram.size - ram.below4g;
  return base >= FOUR_G && end <= FOUR_G + hi;
}

interface Placed {
  start: number;
  end: number;
  what: string;
}

/** Checks given BAR addresses and gives the others one, from the top of the 32-bit PCI hole downwards. */
function placeBars(c: MachineConfig, t: PciTopology): void {
  const taken: Placed[] = [];
  c.iommus.forEach((u, i) => taken.push({ start: u.base, end: u.base + unitWindowSize(u) - 1, what: `iommus[${i}] (${u.name})` }));
  taken.push({ start: APIC_REGION[0], end: APIC_REGION[1], what: "the IOAPIC/interrupt address range 0xfec00000-0xfeefffff" });
  taken.push({ start: 0, end: c.ram.below4g - 1, what: "RAM" });
  const overlap = (s: number, e: number): Placed | undefined => taken.find((p) => s <= p.end && p.start <= e);
  const ioTaken: Placed[] = [];
  const pending: { fn: PciFunction; slot: number; bar: BarSpec; field: string }[] = [];
  for (const fn of t.functions) {
    let slot = 0;
    const maxSlots = fn.secondaryBus !== null ? 2 : 6;
    fn.bars.forEach((bar, i) => {
      const field = `devices[${fn.index}].bars[${i}]`;
      if (slot + (bar.kind === "mem64" ? 2 : 1) > maxSlots) throw configError(field, `no BAR register left (a ${fn.type} has ${maxSlots})`);
      pending.push({ fn, slot, bar, field });
      slot += bar.kind === "mem64" ? 2 : 1;
    });
  }
  for (const p of pending) {
    if (p.bar.base === null) continue;
    const list = p.bar.kind === "io" ? ioTaken : taken;
    const s = p.bar.base;
    const e = s + p.bar.size - 1;
    const hit = p.bar.kind === "io" ? list.find((q) => s <= q.end && q.start <= e) : overlap(s, e);
    if (hit !== undefined) throw configError(`${p.field}.base`, `${h(s)}-${h(e)} overlaps ${hit.what}`);
    list.push({ start: s, end: e, what: `${p.field} (${p.fn.bdf})` });
  }
  let memTop = 0xfebfffff + 1;
  let ioTop = 0x10000;
  for (const p of pending) {
    if (p.bar.base !== null) continue;
    const size = p.bar.size;
    if (p.bar.kind === "io") {
      let s = Math.floor((ioTop - size) / size) * size;
      while (s >= 0x1000 && ioTaken.some((q) => s <= q.end && q.start <= s + size - 1)) s -= size;
      if (s < 0x1000) throw configError(`${p.field}.size`, "no room left in the I/O port window");
      ioTaken.push({ start: s, end: s + size - 1, what: `${p.field} (${p.fn.bdf})` });
      p.bar.base = s;
      ioTop = s;
    } else {
      let s = Math.floor((memTop - size) / size) * size;
      while (s >= c.ram.below4g && overlap(s, s + size - 1) !== undefined) s -= size;
      if (s < c.ram.below4g) throw configError(`${p.field}.size`, "no room left in the 32-bit PCI memory window");
      taken.push({ start: s, end: s + size - 1, what: `${p.field} (${p.fn.bdf})` });
      p.bar.base = s;
      memTop = s;
    }
  }
}

/** BAR register slots of a function's BARs (a 64-bit BAR takes two). */
export function barSlots(fn: PciFunction): number[] {
  const out: number[] = [];
  let slot = 0;
  for (const b of fn.bars) {
    out.push(slot);
    slot += b.kind === "mem64" ? 2 : 1;
  }
  return out;
}
