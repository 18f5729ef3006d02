/**
 * The AMD-Vi part of the machine configuration: an `iommus[]` entry with `"type": "amd-vi"`, validated with the
 * same one-line MACHINE_CONFIG errors as the rest.
 *
 *   { "type": "amd-vi",
 *     "base": "0xfed80000",            // MMIO registers (16 KiB window); default 0xfed80000 + 0x4000 per unit
 *     "bdf": "00:01.0",                 // the IOMMU's own PCI function; default: the first free slot of bus 00
 *     "scope": "all",                   // or listed functions, as for VT-d
 *     "efr": "0x29d3",                  // Extended Feature Register; default QEMU 7.2's
 *     "levels": 6,                      // host page-table levels (EFR.HATS): 4, 5 or 6
 *     "interruptRemapping": true,
 *     "npCache": true,                  // capability header NpCache: the unit caches non-present entries (QEMU's
 *                                       //   emulated IOMMU does; real AMD IOMMUs do not), so maps must be flushed too
 *     "irMode": "ga",                   // "ga" (EFR.GASup set: 128-bit IRTEs possible) or "legacy"
 *     "exclusion": { "base": "0x7e000000", "size": "1M" },   // an IVMD exclusion range
 *     "ivhdTypes": [16],                // which IVHD types describe the unit: 0x10, 0x11, 0x40
 *     "aliases": [{ "first": "03:00.0", "last": "03:1f.7", "alias": "00:14.4" }],   // IVHD alias entries
 *     "special": [{ "kind": "ioapic", "id": 0, "bdf": "00:14.0" }] }                 // IOAPIC/HPET DeviceIDs
 */
import { formatBdf, parsePciAddress } from "../core/pci.js";
import { checkKeys, configError, hexNum, isObj, boolField } from "./config-check.js";
import { parseSize, type PciTopology } from "./pci/topology.js";
import { EFR_GA_SUP, EFR_HATS, hatsLevels, MMIO_WINDOW_SIZE, QEMU_DEFAULT_EFR } from "../spec/amdvi/registers.js";
import { IVHD_TYPE_10H, IVHD_TYPE_11H, IVHD_TYPE_40H } from "../acpi/ivrs-format.js";

/** Where QEMU 7.2 maps the amd-iommu registers (AMDVI_BASE_ADDR). */
export const QEMU_AMDVI_BASE = 0xfed80000;
/** The DeviceID QEMU's IVRS gives the IOAPIC (IOAPIC_SB_DEVID, the southbridge at 00:14.0). */
export const QEMU_IOAPIC_DEVID = "00:14.0";
export const AMDVI_WINDOW = MMIO_WINDOW_SIZE;

export type IvhdType = 0x10 | 0x11 | 0x40;

export interface AmdViAlias {
  /** First function of the range (or the only one, for an alias select entry). */
  first: string;
  /** Last function of the range; null for an alias select entry (42h). */
  last: string | null;
  /** The DeviceID the requests carry. */
  alias: string;
}

export interface AmdViSpecial {
  kind: "ioapic" | "hpet";
  /** IOAPIC id or HPET number. */
  id: number;
  /** The DeviceID its interrupts carry. */
  bdf: string;
}

export interface AmdViUnitConfig {
  type: "amd-vi";
  name: string;
  base: number;
  /** The unit's own PCI function ("00:01.0"); filled in by normalizeMachineConfig. */
  bdf: string;
  scope: "all" | string[];
  efr: bigint;
  /** Host page-table levels (EFR.HATS). */
  levels: number;
  interruptRemapping: boolean;
  /** Capability header NpCache (QEMU 7.2: set). */
  npCache: boolean;
  irMode: "legacy" | "ga";
  exclusion: { base: number; size: number } | null;
  ivhdTypes: IvhdType[];
  aliases: AmdViAlias[];
  special: AmdViSpecial[];
}

export const AMD_KEYS = ["type", "base", "bdf", "scope", "efr", "levels", "interruptRemapping", "npCache", "irMode", "exclusion", "ivhdTypes", "aliases", "special"] as const;
const ALIAS_KEYS = ["first", "last", "alias"] as const;
const SPECIAL_KEYS = ["kind", "id", "bdf"] as const;
const RANGE_KEYS = ["base", "size"] as const;

function bdfField(v: unknown, field: string): string {
  if (typeof v !== "string") throw configError(field, `expected "bus:device.function" such as "00:14.0", got ${JSON.stringify(v)}`);
  try {
    const a = parsePciAddress(v);
    if (a.segment !== 0) throw configError(field, "only PCI segment 0 is modelled");
    return formatBdf(a);
  } catch (e) {
    if ((e as { code?: string }).code === "MACHINE_CONFIG") throw e;
    throw configError(field, `'${v}' is not a PCI address`);
  }
}

const ridOf = (bdf: string): number => {
  const a = parsePciAddress(bdf);
  return (a.bus << 8) | (a.device << 3) | a.fn;
};

function parseEfr(v: unknown, field: string): bigint {
  if (typeof v === "string" && /^0x[0-9a-f]{1,16}$/i.test(v.trim())) return BigInt(v.trim());
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  throw configError(field, `expected a 64-bit value as "0x…" such as "0x29d3", got ${JSON.stringify(v)}`);
}

/** EFR, levels and IR mode: explicit values must agree with an explicit EFR; otherwise they set its bits. */
function parseFeatures(x: Record<string, unknown>, f: string): { efr: bigint; levels: number; irMode: "legacy" | "ga" } {
  let efr = x.efr === undefined ? QEMU_DEFAULT_EFR : parseEfr(x.efr, `${f}.efr`);
  const hatsShift = BigInt(EFR_HATS.lsb);
  const efrLevels = hatsLevels(Number((efr >> hatsShift) & 3n));
  let levels = efrLevels;
  if (x.levels !== undefined) {
    if (x.levels !== 4 && x.levels !== 5 && x.levels !== 6) throw configError(`${f}.levels`, "expected 4, 5 or 6 (EFR.HATS)");
    if (x.efr !== undefined && x.levels !== efrLevels) throw configError(`${f}.levels`, `${x.levels} disagrees with efr, whose HATS field says ${efrLevels} levels`);
    levels = x.levels;
    efr = (efr & ~(3n << hatsShift)) | (BigInt(levels - 4) << hatsShift);
  }
  const ga = (efr & BigInt(EFR_GA_SUP)) !== 0n;
  let irMode: "legacy" | "ga" = ga ? "ga" : "legacy";
  if (x.irMode !== undefined) {
    if (x.irMode !== "legacy" && x.irMode !== "ga") throw configError(`${f}.irMode`, `expected "legacy" or "ga", got ${JSON.stringify(x.irMode)}`);
    if (x.efr !== undefined && x.irMode !== irMode) throw configError(`${f}.irMode`, `"${x.irMode}" disagrees with efr, whose GASup bit is ${ga ? 1 : 0}`);
    irMode = x.irMode;
    efr = irMode === "ga" ? efr | BigInt(EFR_GA_SUP) : efr & ~BigInt(EFR_GA_SUP);
  }
  return { efr, levels, irMode };
}

function parseIvhdTypes(v: unknown, f: string): IvhdType[] {
  if (v === undefined) return [IVHD_TYPE_10H];
  const known = [IVHD_TYPE_10H, IVHD_TYPE_11H, IVHD_TYPE_40H];
  if (!Array.isArray(v) || v.length === 0) throw configError(f, 'expected a non-empty list of IVHD types such as [16] or ["0x10", "0x11"]');
  const out: IvhdType[] = [];
  v.forEach((t: unknown, j) => {
    const n = typeof t === "string" && /^0x[0-9a-f]+$/i.test(t) ? parseInt(t, 16) : t;
    if (typeof n !== "number" || !known.includes(n)) throw configError(`${f}[${j}]`, `expected 0x10, 0x11 or 0x40, got ${JSON.stringify(t)}`);
    if (out.includes(n as IvhdType)) throw configError(`${f}[${j}]`, `type ${hexNum(n)} is listed twice`);
    out.push(n as IvhdType);
  });
  return out;
}

function parseAliases(v: unknown, f: string): AmdViAlias[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw configError(f, 'expected a list of {"first", "last", "alias"}');
  return v.map((a: unknown, j) => {
    const g = `${f}[${j}]`;
    if (!isObj(a)) throw configError(g, 'expected {"first": "03:00.0", "last": "03:1f.7", "alias": "00:14.4"}');
    checkKeys(a, ALIAS_KEYS, g);
    const first = bdfField(a.first, `${g}.first`);
    const last = a.last === undefined ? null : bdfField(a.last, `${g}.last`);
    if (last !== null && ridOf(last) < ridOf(first)) throw configError(`${g}.last`, `${last} comes before ${first}`);
    return { first, last, alias: bdfField(a.alias, `${g}.alias`) };
  });
}

function parseSpecial(v: unknown, f: string): AmdViSpecial[] | null {
  if (v === undefined) return null;
  if (!Array.isArray(v)) throw configError(f, 'expected a list of {"kind": "ioapic" or "hpet", "id", "bdf"}');
  return v.map((s: unknown, j) => {
    const g = `${f}[${j}]`;
    if (!isObj(s)) throw configError(g, 'expected {"kind": "ioapic", "id": 0, "bdf": "00:14.0"}');
    checkKeys(s, SPECIAL_KEYS, g);
    if (s.kind !== "ioapic" && s.kind !== "hpet") throw configError(`${g}.kind`, `expected "ioapic" or "hpet", got ${JSON.stringify(s.kind)}`);
    if (typeof s.id !== "number" || !Number.isInteger(s.id) || s.id < 0 || s.id > 255) throw configError(`${g}.id`, "expected 0..255");
    return { kind: s.kind, id: s.id, bdf: bdfField(s.bdf, `${g}.bdf`) };
  });
}

function parseExclusion(v: unknown, f: string): { base: number; size: number } | null {
  if (v === undefined || v === null) return null;
  if (!isObj(v)) throw configError(f, 'expected {"base", "size"}');
  checkKeys(v, RANGE_KEYS, f);
  const base = parseSize(v.base, `${f}.base`);
  const size = parseSize(v.size, `${f}.size`);
  if (base % 4096 !== 0 || size % 4096 !== 0 || size === 0) throw configError(f, "base and size must be non-zero multiples of 4 KiB");
  return { base, size };
}

/** One `iommus[i]` entry of type "amd-vi" (keys already known to be AMD's). */
export function parseAmdUnit(x: Record<string, unknown>, i: number, amdIndex: number): AmdViUnitConfig & { explicitSpecial: boolean } {
  const f = `iommus[${i}]`;
  checkKeys(x, AMD_KEYS, f);
  const base = x.base === undefined ? QEMU_AMDVI_BASE + AMDVI_WINDOW * amdIndex : parseSize(x.base, `${f}.base`);
  if (base % AMDVI_WINDOW !== 0) throw configError(`${f}.base`, `${hexNum(base)} is not 16 KiB aligned (the AMD-Vi register window)`);
  if (base + AMDVI_WINDOW > 2 ** 32) throw configError(`${f}.base`, "the register window must lie below 4 GiB");
  const scope = x.scope ?? "all";
  if (scope !== "all" && !(Array.isArray(scope) && scope.every((s) => typeof s === "string"))) {
    throw configError(`${f}.scope`, 'expected "all" or a list of functions such as ["00:02.0"]');
  }
  const special = parseSpecial(x.special, `${f}.special`);
  return {
    type: "amd-vi",
    name: `ivhd${amdIndex}`,
    base,
    bdf: x.bdf === undefined ? "" : bdfField(x.bdf, `${f}.bdf`),
    scope: scope === "all" ? "all" : [...(scope as string[])],
    ...parseFeatures(x, f),
    interruptRemapping: boolField(x, "interruptRemapping", f, true),
    npCache: boolField(x, "npCache", f, true),
    exclusion: parseExclusion(x.exclusion, `${f}.exclusion`),
    ivhdTypes: parseIvhdTypes(x.ivhdTypes, `${f}.ivhdTypes`),
    aliases: parseAliases(x.aliases, `${f}.aliases`),
    special: special ?? [],
    explicitSpecial: special !== null,
  };
}

/**
 * The IOAPICs' DeviceIDs when no unit names them: QEMU's one IOAPIC at 00:14.0, on the catch-all unit (or the
 * first), and only with interrupt remapping (QEMU adds the entry only then). More IOAPICs need explicit entries.
 */
export function defaultSpecials(units: (AmdViUnitConfig & { explicitSpecial: boolean })[], indexOf: (u: AmdViUnitConfig) => number, ioapics: { id: number }[]): void {
  if (units.some((u) => u.explicitSpecial)) return;
  const owner = units.find((u) => u.scope === "all") ?? units[0];
  if (owner === undefined || !owner.interruptRemapping || ioapics.length === 0) return;
  if (ioapics.length > 1) {
    throw configError(`iommus[${indexOf(owner)}].special`, `the machine has ${ioapics.length} IOAPICs: name each one's DeviceID, e.g. [{"kind": "ioapic", "id": ${ioapics[0]?.id ?? 0}, "bdf": "00:14.0"}]`);
  }
  owner.special = [{ kind: "ioapic", id: ioapics[0]?.id ?? 0, bdf: QEMU_IOAPIC_DEVID }];
}

/** Checks the special entries against the machine's IOAPICs; each IOAPIC and HPET is named once. */
export function checkSpecials(units: AmdViUnitConfig[], indexOf: (u: AmdViUnitConfig) => number, ioapics: { id: number }[]): void {
  const seen = new Map<string, string>();
  for (const u of units) {
    u.special.forEach((s, j) => {
      const f = `iommus[${indexOf(u)}].special[${j}]`;
      if (s.kind === "ioapic" && !ioapics.some((a) => a.id === s.id)) {
        throw configError(`${f}.id`, `no IOAPIC has id ${s.id} (ioapics: ${ioapics.map((a) => a.id).join(", ") || "none"})`);
      }
      const key = `${s.kind} ${s.id}`;
      const prev = seen.get(key);
      if (prev !== undefined) throw configError(f, `${s.kind === "ioapic" ? "IOAPIC" : "HPET"} ${s.id} is already named in ${prev}`);
      seen.set(key, f);
    });
  }
}

/**
 * Gives every unit without a `bdf` the first free slot of bus 00 (as QEMU places a -device without addr), and
 * checks the given ones: not a configured device's address, and findable (function 0 of its slot exists, or the
 * unit is function 0).
 */
export function placeAmdFunctions(units: AmdViUnitConfig[], indexOf: (u: AmdViUnitConfig) => number, t: PciTopology): void {
  const taken = new Set(t.functions.map((fn) => fn.rid));
  for (const u of units) {
    if (u.bdf === "") continue;
    const f = `iommus[${indexOf(u)}].bdf`;
    const rid = ridOf(u.bdf);
    if (taken.has(rid)) throw configError(f, `${u.bdf} is already a device of the machine`);
    if ((rid & 7) !== 0 && !taken.has(rid & ~7)) throw configError(f, `function ${rid & 7} of a device without function 0 is never found by enumeration`);
    taken.add(rid);
  }
  for (const u of units) {
    if (u.bdf !== "") continue;
    let slot = 1;
    while (slot < 32 && [0, 1, 2, 3, 4, 5, 6, 7].some((fn) => taken.has((slot << 3) | fn))) slot++;
    if (slot === 32) throw configError(`iommus[${indexOf(u)}].bdf`, "bus 00 has no free slot for the IOMMU's PCI function");
    u.bdf = formatBdf({ bus: 0, device: slot, fn: 0 });
    taken.add(slot << 3);
  }
}

/** Bytes the kernel's AMD-Vi tables may take per unit: a full device table, command buffer and event log. */
export const AMD_TABLE_BYTES = 65536 * 32 + 2 * 8192;
