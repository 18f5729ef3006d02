/**
 * The browser view's data for a simulated machine, built from the same library results the CLI prints: the
 * machine's PCI topology and IOMMU units, the kernel's groups and domains after boot, each translated device's
 * mappings with page walks (one that translates, one that faults), interrupt-remapping walks, the tour's
 * stories and the scenarios (the typed runs `iommu scenario` renders). A recorded host's data is host-data.ts.
 * VT-d units are read here; an AMD-Vi unit and the devices behind it in amdvi-data.ts.
 */
import { Machine, type MachineAmdViUnit } from "../hw/machine.js";
import type { PciFunction } from "../hw/pci/topology.js";
import { Kernel } from "../os/kernel.js";
import { iommuCmdline } from "../os/cmdline.js";
import type { MachineConfigInput } from "../hw/machine-config.js";
import { runTour, type TourStory } from "../os/tour.js";
import { scenarioStory, scenarioStoryId, skippedScenarioStory } from "../hv/tour.js";
import { SCENARIOS } from "../hv/scenarios.js";
import type { ScenarioReport } from "../hv/scenarios/run.js";
import { IommuError } from "../core/errors.js";
import { forensicCaps, listMappings, walkIova, walkMsi, type MsiReport, type WalkReport } from "../forensics/walk.js";
import { encodeRemappableMsi, MSI_ADDR_HANDLE_MASK } from "../spec/vtd/intremap.js";
import { DMAR_CAP_REG, DMAR_IRTA_REG, DMAR_RTADDR_REG } from "../spec/vtd/registers.js";
import type { UiData, UiDevice, UiGroup, UiSpace, UiUnit } from "./types.js";
import { amdSpaceWalks, amdTranslating, amdTypedWalk, amdUnitRegisters, amdViOf } from "./amdvi-data.js";

/** The largest handle the address's 15-bit handle field holds without bit 15: past any table the tours build. */
const LAST_HANDLE = MSI_ADDR_HANDLE_MASK;

export type { UiAmdVi, UiData, UiDevice, UiFinding, UiGroup, UiHost, UiSpace, UiUnit } from "./types.js";

const PAGE = 4096;
const hx = (n: number | bigint): string => "0x" + n.toString(16);

/** Why the kernel put these functions in one group, from the topology: the reasons pci_device_group follows. */
export function groupReasons(fns: PciFunction[]): string[] {
  if (fns.length < 2) return [];
  const why = new Set<string>();
  for (const f of fns) {
    if (f.dmaAliasDevfns.length > 0) why.add(`${f.bdf} also issues requests as another devfn (DMA alias)`);
    for (let p = f.parent; p !== null; p = p.parent) {
      if (p.type === "pcie-pci-bridge" || p.type === "pci-bridge") why.add(`PCIe-to-PCI bridge ${p.bdf}: devices behind it share its requester id (alias)`);
      else if (!p.acs && p.type !== "host-bridge") why.add(`no ACS on the path at ${p.bdf}`);
    }
    const slot = fns.filter((g) => g.address.bus === f.address.bus && g.address.device === f.address.device);
    if (f.multifunction && slot.length > 1 && !f.acs) why.add(`multifunction device ${f.bdf.slice(0, -2)} without ACS`);
  }
  if (why.size === 0) why.add("devices share an upstream port without isolation");
  return [...why];
}

function unitOf(m: Machine, fn: PciFunction): string | null {
  for (const u of m.config.iommus) {
    if (u.scope === "all") continue;
    for (const s of u.scope) {
      const d = m.topology.byBdf(s);
      if (d === undefined) continue;
      if (d.rid === fn.rid) return u.name;
      const sec = d.secondaryBus;
      if (sec !== null && fn.address.bus >= sec && fn.address.bus <= (d.subordinateBus ?? sec)) return u.name;
    }
  }
  return m.config.iommus.find((u) => u.scope === "all")?.name ?? null;
}

/**
 * Maps a buffer of four host pages, each one apart, through the DMA API for the device (not in an identity
 * domain, and only with a driver bound): returns the host pages.
 */
function mapDemoBuffer(k: Kernel, bdf: string, fn: PciFunction | undefined, domainType: string | null): string[] {
  const bufferPages: string[] = [];
  if (domainType !== "identity" && fn?.driver !== null) {
    const dma = k.dma(bdf);
    const pages: number[] = [];
    for (let i = 0; i < 4; i++) {
      pages.push(k.pages.alloc(1));
      k.pages.alloc(1); // a page of someone else in between: the buffer is scattered in host memory
    }
    dma.maxSegmentSize = 2 ** 31;
    dma.mapSg(pages.map((p) => ({ phys: p, length: PAGE })), "to-device");
    bufferPages.push(...pages.map(hx));
  }
  return bufferPages;
}

function reservedOf(k: Kernel, bdf: string): UiSpace["reserved"] {
  const kdev = k.devices.find((d) => d.name === bdf);
  return kdev === undefined ? [] : k.iommu.reservedRegions(kdev).map((r) => ({ start: hx(r.start), end: hx(r.end), type: r.type }));
}

function space(m: Machine, k: Kernel, bdf: string, domainType: string | null, rtaddr: bigint, irta: bigint): UiSpace {
  const fn = m.topology.byBdf(bdf);
  const sid = fn?.rid ?? 0;
  const unit = m.units.find((u) => fn !== undefined && u.name === unitOf(m, fn)) ?? m.units[0];
  const caps = forensicCaps({ cap: unit === undefined ? undefined : BigInt.asUintN(64, m.mmioRead(unit.base + DMAR_CAP_REG, 8)) });
  const bufferPages = mapDemoBuffer(k, bdf, fn, domainType);
  const mappings = listMappings(m.memory, { rtaddr, sid, caps });
  const walks: WalkReport[] = [];
  if (mappings.result === "ok") {
    for (const r of mappings.ranges.slice(0, 16)) walks.push(walkIova(m.memory, { rtaddr, sid, iova: BigInt(r.iova) + 0x10n, caps }));
    const last = mappings.ranges[mappings.ranges.length - 1];
    const past = last === undefined ? 0x1000n : BigInt(last.iova) + BigInt(last.size) + 0x1000n;
    walks.push(walkIova(m.memory, { rtaddr, sid, iova: past, caps, access: "write" }));
  } else {
    walks.push(walkIova(m.memory, { rtaddr, sid, iova: 0x1000n, caps }));
  }
  const msi: MsiReport[] = [];
  if (irta !== 0n) {
    // Remappable-format MSI address (bit 4), handle 0; then a handle past the table's end.
    for (const handle of [0, LAST_HANDLE]) msi.push(walkMsi(m.memory, { irta, sid, msiAddr: BigInt(encodeRemappableMsi(handle).address), msiData: 0 }));
  }
  return { bdf: fn?.bdf ?? bdf, domainType, bufferPages, mappings, reserved: reservedOf(k, bdf), walks, msi };
}

/** The AMD-Vi unit that translates `fn`'s requests. */
function amdUnitOf(m: Machine, fn: PciFunction): MachineAmdViUnit | undefined {
  const amd = m.iommus.filter((u): u is MachineAmdViUnit => u.kind === "amd-vi");
  return amd.find((u) => u.name === unitOf(m, fn)) ?? amd[0];
}

/** A device's address space behind an AMD-Vi unit: the same buffer, walked through the unit's device table. */
function amdSpace(m: Machine, k: Kernel, bdf: string, domainType: string | null, fn: PciFunction, unit: MachineAmdViUnit): UiSpace {
  const bufferPages = mapDemoBuffer(k, bdf, fn, domainType);
  const { mappings, walks, msi } = amdSpaceWalks(m, unit, fn.rid);
  return { bdf: fn.bdf, domainType, bufferPages, mappings, reserved: reservedOf(k, bdf), walks, msi };
}

export interface UiOptions {
  machine: string;
  /** Leave out the tour's stories and the scenarios (faster; for tests of the machine view). */
  noStories?: boolean;
}

/** The page's data and, for the served page, walks of any address the reader types. */
export interface UiSession {
  data: UiData;
  /** Walks `iova` for the device (bdf as shown in the page); a string names what is wrong with the input. */
  walk(bdf: string, iova: string): WalkReport | string;
  /** The machine and the kernel booted on it that the page shows (to check the page against them). */
  machine: Machine;
  kernel: Kernel;
}

/** Boots the kernel on the machine and gathers everything the page shows. */
export function buildUiData(o: UiOptions): UiData {
  return buildUi(o).data;
}

function walker(m: Machine): UiSession["walk"] {
  return (bdf, text) => {
    const fn = m.topology.byBdf(bdf);
    if (fn === undefined) return `no PCI function ${bdf} on this machine`;
    if (!/^(0x)?[0-9a-f]{1,16}$/i.test(text.trim())) return `'${text}' is not a hexadecimal address`;
    if (m.iommuKind === "amd-vi") {
      const amd = amdUnitOf(m, fn);
      if (amd === undefined) return "this machine has no IOMMU unit";
      const t = text.trim();
      return amdTypedWalk(m, amd, fn.rid, BigInt(/^0x/i.test(t) ? t : "0x" + t));
    }
    const unit = m.units.find((u) => u.name === unitOf(m, fn)) ?? m.units[0];
    if (unit === undefined) return "this machine has no IOMMU unit";
    const rtaddr = BigInt.asUintN(64, m.mmioRead(unit.base + DMAR_RTADDR_REG, 8));
    const caps = forensicCaps({ cap: BigInt.asUintN(64, m.mmioRead(unit.base + DMAR_CAP_REG, 8)) });
    const t = text.trim();
    return walkIova(m.memory, { rtaddr, sid: fn.rid, iova: BigInt(/^0x/i.test(t) ? t : "0x" + t), caps });
  };
}

function machineDevices(m: Machine, k: Kernel): UiDevice[] {
  const groupOfBdf = new Map<string, number>();
  for (const g of k.groups) for (const d of g.devices) groupOfBdf.set(m.topology.byBdf(d.name)?.bdf ?? d.name, g.id);
  return m.topology.functions.map((f) => ({
    bdf: f.bdf,
    name: f.name,
    type: f.type,
    parent: f.parent?.bdf ?? null,
    acs: f.acs,
    multifunction: f.multifunction,
    aliases: f.dmaAliasDevfns,
    group: groupOfBdf.get(f.bdf) ?? null,
    unit: unitOf(m, f),
    driver: f.driver,
    ids: null,
    check: null,
  }));
}

function machineGroups(m: Machine, k: Kernel): UiGroup[] {
  const short = (kernelName: string): string => m.topology.byBdf(kernelName)?.bdf ?? kernelName;
  return k.groups.map((g) => {
    const fns = g.devices.map((d) => m.topology.byBdf(d.name)).filter((f): f is PciFunction => f !== undefined);
    const reserved = k.iommu.groupReservedRegions(g).map((r) => ({ start: hx(r.start), end: hx(r.end), type: r.type }));
    return { id: g.id, type: g.type, domainIds: g.domain?.domainIds() ?? [], devices: g.devices.map((d) => short(d.name)), why: groupReasons(fns), reserved };
  });
}

function machineUnits(m: Machine, k: Kernel, devices: UiDevice[]): UiUnit[] {
  return m.iommus.map((u): UiUnit => {
    const scope = devices.filter((d) => d.unit === u.name).map((d) => d.bdf);
    if (u.kind === "amd-vi") {
      // Translation as Control.IommuEn says; interrupt remapping has no unit-wide switch on AMD-Vi (each DTE's
      // IV bit), so it is what the driver enabled (irq_remapping_enabled).
      const regs = amdUnitRegisters(m, u);
      return { name: u.name, base: hx(u.base), translation: amdTranslating(regs), irqRemapping: k.amd.irEnabled, scope, amdVi: amdViOf(regs, u.bdf) };
    }
    const driverUnit = k.driver.units.find((d) => d.name === u.name);
    return { name: u.name, base: hx(u.base), translation: driverUnit?.translationEnabled ?? false, irqRemapping: driverUnit?.irEnabled ?? false, scope };
  });
}

/**
 * The five scenarios on the machine, each run without and with the protection, and the tour's stories that
 * tell them (the same runs). A machine without the devices they need (q35's layout) runs none; the reason is
 * returned instead, and the stories say it.
 */
export function machineScenarios(machine: string | MachineConfigInput): { scenarios: ScenarioReport[]; skipped: string | null; stories: TourStory[] } {
  const scenarios: ScenarioReport[] = [];
  for (const s of SCENARIOS) {
    try {
      scenarios.push({ name: s.name, title: s.title, runs: s.run({ machine }) });
    } catch (e) {
      if (!(e instanceof IommuError) || e.code !== "SCENARIO_MACHINE") throw e;
      return { scenarios: [], skipped: e.message, stories: SCENARIOS.map((x, i) => skippedScenarioStory(x.name, scenarioStoryId(i), e.message)) };
    }
  }
  return { scenarios, skipped: null, stories: scenarios.map((r, i) => scenarioStory(r, scenarioStoryId(i))) };
}

export function buildUi(o: UiOptions): UiSession {
  const m = Machine.load(o.machine);
  const cmdline = iommuCmdline(m.iommuKind, true);
  const k = Kernel.boot(m, { cmdline });
  const devices = machineDevices(m, k);
  const groups = machineGroups(m, k);
  const units = machineUnits(m, k, devices);
  const spaces: UiSpace[] = [];
  for (const g of groups) {
    for (const bdf of g.devices) {
      const d = devices.find((x) => x.bdf === bdf);
      if (d === undefined || d.type !== "endpoint" && d.type !== "pci") continue;
      const kname = k.devices.find((x) => (m.topology.byBdf(x.name)?.bdf ?? x.name) === bdf)?.name ?? bdf;
      if (m.iommuKind === "amd-vi") {
        const fn = m.topology.byBdf(bdf);
        const amd = fn === undefined ? undefined : amdUnitOf(m, fn);
        if (fn !== undefined && amd !== undefined) spaces.push(amdSpace(m, k, kname, g.type, fn, amd));
        continue;
      }
      const unit = m.units.find((u) => u.name === d.unit) ?? m.units[0];
      if (unit === undefined) continue;
      const rtaddr = BigInt.asUintN(64, m.mmioRead(unit.base + DMAR_RTADDR_REG, 8));
      const irta = BigInt.asUintN(64, m.mmioRead(unit.base + DMAR_IRTA_REG, 8));
      spaces.push(space(m, k, kname, g.type, rtaddr, irta));
    }
  }
  const sc = o.noStories === true ? { scenarios: [], skipped: null, stories: [] } : machineScenarios(o.machine);
  const stories = o.noStories === true ? [] : [...runTour({ machine: o.machine }), ...sc.stories];
  const data: UiData = {
    source: "machine",
    machine: m.config.name,
    cmdline,
    devices,
    units,
    groups,
    spaces,
    stories,
    scenarios: sc.scenarios,
    scenariosSkipped: sc.skipped,
    host: null,
    absent: null,
  };
  return { data, walk: walker(m), machine: m, kernel: k };
}
