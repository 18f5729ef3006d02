/**
 * The IVRS of a simulated AMD machine, built as a decoded table for the acpi/ encoder, laid out as QEMU 7.2
 * builds it (hw/i386/acpi-build.c, build_amd_iommu):
 *   - header OEM "BOCHS "/"BXPC    ", revision 1; IVinfo with PAsize 40 (EFRSup added when an IVHD 11h/40h
 *     carries the EFR image);
 *   - per unit an IVHD 10h with flags HtTunEn and IotlbSup, plus PreFSup and PPRSup as its EFR says; Feature
 *     Reporting with GTSup and GASup from the EFR (QEMU's HATS/GATS shifts fall outside the 32-bit field, so
 *     those read 0); DeviceID the unit's own function, capability offset 40h, info 0;
 *   - device entries from a walk of the unit's functions in bus order: a select entry for each; behind a bridge
 *     to a PCI Express bus, the bus walked (or, for a leaf bus, one start/end range covering it); behind a bridge
 *     to a conventional bus, an alias range for all of its buses (aliased to secondary:00.0 for a PCIe-to-PCI
 *     bridge, to the bridge itself for a PCI-to-PCI bridge);
 *   - then configured alias entries, then the special entries (QEMU: the IOAPIC at 00:14.0 with intremap=on).
 * Beyond QEMU: IVHD 11h/40h copies of a unit (`ivhdTypes`), IVMD 21h unity blocks for `rmrrs`, IVMD exclusion
 * blocks (20h for a catch-all unit, 22h for the DeviceID range of the others).
 */
import { hex } from "../core/hex.js";
import { formatBdf } from "../core/pci.js";
import type { IvhdBlock, IvhdEntry, IvmdBlock, IvrsTable } from "../acpi/ivrs-format.js";
import {
  dataSettingOf, ivhdAttributesOf, ivhdFeaturesOf, ivhdFlagsOf, ivhdInfoOf, ivInfoOf, ivmdFlagsOf,
} from "../acpi/ivrs-fields.js";
import type { AmdViUnitConfig } from "./machine-config-amd.js";
import type { MachineConfig } from "./machine-config.js";
import type { PciFunction, PciTopology } from "./pci/topology.js";
import { QEMU_CAP_OFFSET } from "./amdvi/pci-function.js";

/** The header fields QEMU's ACPI tables carry (hw/acpi/aml-build.c acpi_table_begin: OEM "BOCHS "/"BXPC", revision 1 here); length and checksum are the encoder's. */
export const QEMU_SDT_HEADER = {
  length: 0,
  revision: 1,
  checksum: 0,
  checksumValid: true,
  oemId: "BOCHS ",
  oemTableId: "BXPC    ",
  oemRevision: 1,
  creatorId: "BXPC",
  creatorRevision: 1,
} as const;

/** IVinfo PAsize QEMU 7.2 reports (bits 14:8). */
const QEMU_PA_SIZE = 40;
// IVHD flags (5.2.2.1) QEMU sets, and the EFR bits that become IVHD flags / 10h feature bits.
const FLAG_HT_TUN_EN = 1 << 0;
const FLAG_IOTLB_SUP = 1 << 4;
const FLAG_PREF_SUP = 1 << 6;
const FLAG_PPR_SUP = 1 << 7;
const FEAT_GT_SUP = 1 << 2;
const FEAT_GA_SUP = 1 << 6;
const EFR_PREF = 1n << 0n;
const EFR_PPR = 1n << 1n;
const EFR_GT = 1n << 4n;
const EFR_GA = 1n << 7n;
// IVMD flags (5.2.3): Unity, IR, IW, ExclusionRange.
const IVMD_UNITY_RW = 0x07;
const IVMD_EXCLUSION = 0x08;

const rid = (bus: number, device: number, fn: number): number => (bus << 8) | (device << 3) | fn;
const id = (r: number): string => formatBdf({ bus: r >>> 8, device: (r >>> 3) & 0x1f, fn: r & 7 });

function entry(type: IvhdEntry["type"], typeCode: number, deviceId: number): IvhdEntry {
  return { type, typeCode, offset: 0, length: 0, deviceId: id(deviceId), dataSetting: dataSettingOf(0) } as IvhdEntry;
}

function aliasEntry(type: "alias-select" | "alias-range-start", deviceId: number, alias: number): IvhdEntry {
  return { type, typeCode: type === "alias-select" ? 0x42 : 0x43, offset: 0, length: 0, deviceId: id(deviceId), dataSetting: dataSettingOf(0), aliasId: id(alias) };
}

/** A requester id of the walk: a configured function, or a unit's own PCI function (no topology entry). */
type WalkItem = { rid: number; fn: PciFunction | null };

/** QEMU's insert_ivhd for one function: its select entry, then what its secondary bus needs. */
function walkFunction(item: WalkItem, t: PciTopology, out: IvhdEntry[]): void {
  out.push(entry("select", 0x02, item.rid));
  const fn = item.fn;
  if (fn === null || fn.secondaryBus === null) return;
  const sec = fn.secondaryBus;
  const sub = fn.subordinateBus ?? sec;
  const conventional = fn.type === "pcie-pci-bridge" || fn.type === "pci-bridge";
  if (!conventional) {
    if (sec === sub) {
      out.push(entry("range-start", 0x03, rid(sec, 0, 0)), entry("range-end", 0x04, rid(sub, 31, 7)));
      return;
    }
    const below = t.functions.filter((f) => f.address.bus === sec).sort((a, b) => a.rid - b.rid);
    for (const f of below) walkFunction({ rid: f.rid, fn: f }, t, out);
    return;
  }
  const a = rid(sec, 0, 0);
  // A PCIe-to-PCI bridge tags requests with secondary:00.0; a conventional PCI-to-PCI bridge with its own id.
  const b = fn.type === "pcie-pci-bridge" ? a : fn.rid;
  out.push(aliasEntry("alias-range-start", a, b), entry("range-end", 0x04, rid(sub, 31, 7)));
}

/** The functions of bus 00 a unit's IVHD starts from: its scope (or all not listed elsewhere) and itself. */
function unitRoots(u: AmdViUnitConfig, units: AmdViUnitConfig[], t: PciTopology): WalkItem[] {
  const byRid = (r: number): PciFunction | null => t.get(r) ?? null;
  let fns: PciFunction[];
  if (u.scope === "all") {
    const listed = new Set<PciFunction>();
    for (const o of units) if (o.scope !== "all") for (const s of o.scope) { const f = t.byBdf(s); if (f !== undefined) listed.add(f); }
    const covered = (f: PciFunction): boolean => { for (let x: PciFunction | null = f; x !== null; x = x.parent) if (listed.has(x)) return true; return false; };
    fns = t.functions.filter((f) => f.address.bus === 0 && !covered(f));
  } else {
    fns = u.scope.map((s) => t.byBdf(s)).filter((f): f is PciFunction => f !== undefined);
  }
  const own = parseRid(u.bdf);
  const items: WalkItem[] = fns.map((f) => ({ rid: f.rid, fn: byRid(f.rid) }));
  items.push({ rid: own, fn: null });
  return items.sort((a, b) => a.rid - b.rid);
}

function parseRid(bdf: string): number {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(bdf);
  if (m === null) return 0;
  return rid(parseInt(m[1] ?? "0", 16), parseInt(m[2] ?? "0", 16), parseInt(m[3] ?? "0", 10));
}

/** The device entries of a unit's IVHD. */
export function ivhdEntries(u: AmdViUnitConfig, units: AmdViUnitConfig[], t: PciTopology): IvhdEntry[] {
  const out: IvhdEntry[] = [];
  for (const item of unitRoots(u, units, t)) walkFunction(item, t, out);
  for (const a of u.aliases) {
    if (a.last === null) out.push(aliasEntry("alias-select", parseRid(a.first), parseRid(a.alias)));
    else out.push(aliasEntry("alias-range-start", parseRid(a.first), parseRid(a.alias)), entry("range-end", 0x04, parseRid(a.last)));
  }
  for (const s of u.special) {
    out.push({
      type: "special", typeCode: 0x48, offset: 0, length: 0, deviceId: "00:00.0", dataSetting: dataSettingOf(0),
      handle: s.id, sourceId: s.bdf, variety: s.kind === "ioapic" ? 1 : 2, varietyName: s.kind,
    });
  }
  return out;
}

function ivhdBlock(u: AmdViUnitConfig, typeCode: number, entries: IvhdEntry[]): IvhdBlock {
  const legacy = typeCode === 0x10;
  let flags = FLAG_HT_TUN_EN | FLAG_IOTLB_SUP;
  if (legacy && (u.efr & EFR_PREF) !== 0n) flags |= FLAG_PREF_SUP;
  if (legacy && (u.efr & EFR_PPR) !== 0n) flags |= FLAG_PPR_SUP;
  const features = ((u.efr & EFR_GT) !== 0n ? FEAT_GT_SUP : 0) | ((u.efr & EFR_GA) !== 0n ? FEAT_GA_SUP : 0);
  return {
    type: "IVHD",
    typeCode,
    offset: 0,
    flags: ivhdFlagsOf(flags),
    length: 0,
    deviceId: u.bdf,
    capabilityOffset: QEMU_CAP_OFFSET,
    baseAddress: hex(u.base),
    segment: 0,
    info: ivhdInfoOf(0),
    ...(legacy ? { features: ivhdFeaturesOf(features) } : { attributes: ivhdAttributesOf(0), efr: hex(u.efr), efr2: "0x0" }),
    entries,
  };
}

function ivmd(typeCode: number, flags: number, deviceId: number, auxData: number, base: number, size: number): IvmdBlock {
  return { type: "IVMD", typeCode, offset: 0, flags: ivmdFlagsOf(flags), length: 0, deviceId: id(deviceId), auxData, start: hex(base), memoryLength: hex(size) };
}

/** The IVRS as a decoded object (what `iommu acpi decode --json` prints for it). */
export function buildIvrsTable(c: MachineConfig, t: PciTopology): IvrsTable {
  const units = c.iommus.filter((u): u is AmdViUnitConfig => u.type === "amd-vi");
  const blocks: (IvhdBlock | IvmdBlock)[] = [];
  for (const u of units) {
    const entries = ivhdEntries(u, units, t);
    for (const type of u.ivhdTypes) blocks.push(ivhdBlock(u, type, entries.map((e) => ({ ...e }))));
  }
  for (const u of units) {
    if (u.exclusion === null) continue;
    if (u.scope === "all") blocks.push(ivmd(0x20, IVMD_EXCLUSION, 0, 0, u.exclusion.base, u.exclusion.size));
    else {
      const ids = ivhdEntries(u, units, t).filter((e) => e.type !== "special").map((e) => parseRid(e.deviceId));
      blocks.push(ivmd(0x22, IVMD_EXCLUSION, Math.min(...ids), Math.max(...ids), u.exclusion.base, u.exclusion.size));
    }
  }
  for (const r of c.rmrrs) {
    for (const d of r.devices) blocks.push(ivmd(0x21, IVMD_UNITY_RW, parseRid(t.byBdf(d)?.bdf ?? d), 0, r.base, r.end - r.base + 1));
  }
  const efrSup = units.some((u) => u.ivhdTypes.some((x) => x !== 0x10));
  return {
    signature: "IVRS",
    ...QEMU_SDT_HEADER,
    ivInfo: ivInfoOf((QEMU_PA_SIZE << 8) | (efrSup ? 1 : 0)),
    blocks,
  };
}
