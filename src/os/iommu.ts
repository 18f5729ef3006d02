/**
 * The IOMMU core of the simulated kernel, after drivers/iommu/iommu.c in Linux 6.1: the default domain type
 * (iommu_subsys_init and its log lines), IOMMU groups by pci_device_group's rules (a device shares the group of its
 * DMA aliases; without ACS on the path up, it shares the group of the bridge above; multi-function devices
 * without ACS share one group), one default domain per group (identity, DMA or DMA-FQ, by the rules of
 * src/os/default-domain.ts), and each device's
 * reserved regions (intel_iommu_get_resv_regions: RMRRs, the ISA bridge's floppy range, the MSI window).
 */
import type { IovaDomain } from "../os/iova.js";
import type { KernelConfig, BootParams } from "./cmdline.js";
import { IOAPIC_RANGE_END, IOAPIC_RANGE_START, PageTables, type DmarUnit, type IntelIommuDriver, DMA_PTE_READ, DMA_PTE_WRITE } from "./intel-iommu.js";
import type { KernelLog } from "./log.js";
import type { PageAllocator } from "./pages.js";
import {
  acsEnabled,
  acsPathEnabled,
  dmaAliases,
  devsAreDmaAliases,
  type KPciDev,
} from "./pci.js";
import { PCI_BASE_CLASS_DISPLAY, PCI_CLASS_BRIDGE_ISA, PCI_CLASS_SERIAL_USB } from "../core/pci-regs.js";
import {
  domainTypeName,
  groupDefDomainType,
  initialGlobalDefault,
  setDmaStrict,
  subsysInitDefault,
  type DomainDevice,
  type DomainType,
  type GlobalDefault,
  type IdentMap,
} from "./default-domain.js";
import type { MachinePort } from "./port.js";

export type { DomainType } from "./default-domain.js";

/** iommu_domain_type_str */
export const domainTypeStr = domainTypeName;

/** What the default-domain rules read from a PCI function (no firmware marks a port external-facing here). */
export function domainDevice(d: KPciDev): DomainDevice {
  return { rid: d.rid, name: d.name, vendor: d.vendor, device: d.device, classCode: d.classCode, onRootBus: d.parent === null, untrusted: false };
}

export interface ReservedRegion {
  start: number;
  end: number;
  type: "direct" | "direct-relaxable" | "reserved" | "msi" | "sw-msi";
}

let domainSerial = 0;

export class IommuDomain {
  readonly serial = ++domainSerial;
  type: DomainType;
  /** Page tables (null for a hardware pass-through identity domain). */
  tables: PageTables | null;
  readonly passThrough: boolean;
  /** Domain id on each unit it is attached to. */
  readonly dids = new Map<DmarUnit, number>();
  readonly devices: KPciDev[] = [];
  /** Highest IOVA the domain translates (its address width). */
  readonly apertureEnd: number;
  /** The DMA layer's state for DMA / DMA-FQ domains (IOVA allocator, flush queue). */
  cookie: unknown = null;
  iova: IovaDomain | null = null;

  constructor(type: DomainType, tables: PageTables | null, passThrough: boolean, widthBits: number) {
    this.type = type;
    this.tables = tables;
    this.passThrough = passThrough;
    this.apertureEnd = 2 ** widthBits - 1;
  }

  get units(): DmarUnit[] {
    return [...this.dids.keys()];
  }
}

export class IommuGroup {
  readonly devices: KPciDev[] = [];
  domain: IommuDomain | null = null;
  constructor(readonly id: number) {}

  get type(): DomainType | null {
    return this.domain?.type ?? null;
  }
}

export interface CoreContext {
  port: MachinePort;
  log: KernelLog;
  pages: PageAllocator;
  params: BootParams;
  config: KernelConfig;
}

export class IommuCore {
  /** iommu_def_domain_type, iommu_dma_strict (src/os/default-domain.ts D1-D4). */
  private global: GlobalDefault;
  readonly groups: IommuGroup[] = [];
  private readonly groupOf = new Map<KPciDev, IommuGroup>();
  private siDomain: IommuDomain | null = null;
  readonly domains: IommuDomain[] = [];

  constructor(private readonly ctx: CoreContext) {
    const p = ctx.params;
    const passthroughCmdline = p.defaultDomainCmdline === null ? null : p.defaultDomainCmdline === "identity";
    this.global = initialGlobalDefault({ passthroughCmdline, strictCmdline: p.strictCmdline }, ctx.config);
  }

  /** iommu_def_domain_type */
  get defType(): DomainType {
    return this.global.type;
  }

  /** iommu_dma_strict */
  get strict(): boolean {
    return this.global.strict;
  }

  /** iommu_subsys_init: settle the default type and log it. */
  subsysInit(): void {
    const { global, lines } = subsysInitDefault(this.global);
    this.global = global;
    for (const l of lines) this.ctx.log.info(l);
  }

  /** iommu_set_dma_strict */
  setDmaStrict(): void {
    this.global = setDmaStrict(this.global);
  }

  groupFor(dev: KPciDev): IommuGroup | null {
    return this.groupOf.get(dev) ?? null;
  }

  // ---- Groups (pci_device_group) ----

  /**
   * Finds or makes the group of `dev`. `all` is every PCI device (for_each_pci_dev); only devices already
   * probed have groups.
   */
  pciDeviceGroup(dev: KPciDev, all: KPciDev[]): IommuGroup {
    const port = this.ctx.port;
    // The upstream DMA alias; a device aliased by topology cannot have a group of its own.
    let pdev = dev;
    for (const a of dmaAliases(dev)) {
      pdev = a.via;
      const g = this.groupOf.get(a.via);
      if (g !== undefined) return g;
    }
    // Continue upstream to where ACS protects from peer-to-peer DMA.
    for (let up = pdev.parent; up !== null; up = up.parent) {
      if (acsPathEnabled(port, up)) break;
      pdev = up;
      const g = this.groupOf.get(up);
      if (g !== undefined) return g;
    }
    const devfns = new Set<number>();
    const alias = this.aliasGroup(pdev, all, devfns);
    if (alias !== null) return alias;
    const fnAlias = this.functionAliasGroup(pdev, all, devfns);
    if (fnAlias !== null) return fnAlias;
    const g = new IommuGroup(this.groups.length);
    this.groups.push(g);
    return g;
  }

  /** get_pci_alias_group */
  private aliasGroup(pdev: KPciDev, all: KPciDev[], devfns: Set<number>): IommuGroup | null {
    if (devfns.has(pdev.devfn)) return null;
    devfns.add(pdev.devfn);
    const g = this.groupOf.get(pdev);
    if (g !== undefined) return g;
    for (const tmp of all) {
      if (tmp === pdev || tmp.bus !== pdev.bus) continue;
      if (devsAreDmaAliases(pdev, tmp)) {
        const a = this.aliasGroup(tmp, all, devfns) ?? this.functionAliasGroup(tmp, all, devfns);
        if (a !== null) return a;
      }
    }
    return null;
  }

  /** get_pci_function_alias_group: non-isolated functions of the same slot share a group. */
  private functionAliasGroup(pdev: KPciDev, all: KPciDev[], devfns: Set<number>): IommuGroup | null {
    const port = this.ctx.port;
    if (!pdev.multifunction || acsEnabled(port, pdev)) return null;
    for (const tmp of all) {
      if (tmp === pdev || tmp.bus !== pdev.bus || tmp.devfn >>> 3 !== pdev.devfn >>> 3 || acsEnabled(port, tmp)) continue;
      const g = this.aliasGroup(tmp, all, devfns);
      if (g !== null) return g;
    }
    return null;
  }

  addToGroup(dev: KPciDev, g: IommuGroup): void {
    g.devices.push(dev);
    this.groupOf.set(dev, g);
    this.ctx.log.info(`pci ${dev.name}: Adding to iommu group ${g.id}`);
  }

  // ---- Reserved regions (intel_iommu_get_resv_regions) ----

  reservedRegions(dev: KPciDev, driver: IntelIommuDriver): ReservedRegion[] {
    const out: ReservedRegion[] = [];
    for (const r of driver.rmrrs) {
      const hit = r.devices.some((d) => d === dev || (d.secondary !== null && isBelow(dev, d)));
      if (!hit) continue;
      const relaxable = dev.classCode >>> 8 === PCI_CLASS_SERIAL_USB || dev.classCode >>> 16 === PCI_BASE_CLASS_DISPLAY;
      out.push({ start: r.base, end: r.end, type: relaxable ? "direct-relaxable" : "direct" });
    }
    if (this.ctx.config.floppyWa && dev.classCode >>> 8 === PCI_CLASS_BRIDGE_ISA) {
      out.push({ start: 0, end: 16 * 2 ** 20 - 1, type: "direct-relaxable" });
    }
    out.push({ start: IOAPIC_RANGE_START, end: IOAPIC_RANGE_END, type: "msi" });
    return out;
  }

  /** The group's regions as sysfs lists them: every member's, sorted, equal ones once. */
  groupReservedRegions(g: IommuGroup, driver: IntelIommuDriver): ReservedRegion[] {
    const all = g.devices.flatMap((d) => this.reservedRegions(d, driver));
    const seen = new Set<string>();
    const out: ReservedRegion[] = [];
    for (const r of all.sort((a, b) => a.start - b.start || a.end - b.end)) {
      const k = `${r.start}-${r.end}-${r.type}`;
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(r);
    }
    return out;
  }

  // ---- Default domains ----

  /**
   * The IDENTMAP_* flags init_dmars left (src/os/default-domain.ts F1-F3); set by the kernel before the groups
   * get their default domains.
   */
  identMap: IdentMap = { gfx: false, intgpu: false, azalia: false };

  /** probe_alloc_default_domain for a group: the rules of src/os/default-domain.ts (G1, G2). */
  groupDomainType(g: IommuGroup): DomainType {
    const { type, warning } = groupDefDomainType(g.devices.map(domainDevice), this.identMap, this.defType);
    if (warning !== null) this.ctx.log.warn(`pci ${warning.device}: ${warning.text}`);
    return type;
  }

  /** Allocates the default domain of a group (intel_iommu_domain_alloc). */
  allocDomain(type: DomainType, unit: DmarUnit, driver: IntelIommuDriver): IommuDomain {
    if (type === "identity") {
      if (this.siDomain === null) {
        const hw = unit.hasPassThrough;
        const tables = hw ? null : new PageTables(this.ctx.port.memory, this.ctx.pages, unit.levels);
        this.siDomain = new IommuDomain("identity", tables, hw, 57);
        if (tables !== null) {
          // si_domain_init without hardware pass-through: map every usable RAM range 1:1.
          for (const r of this.ctx.port.firmware.e820) {
            if (r.type !== "usable") continue;
            tables.mapRange(r.base, r.base, r.end + 1 - r.base, DMA_PTE_READ | DMA_PTE_WRITE, this.ctx.params.superpage);
          }
        }
        this.domains.push(this.siDomain);
      }
      return this.siDomain;
    }
    void driver;
    const d = new IommuDomain(type, new PageTables(this.ctx.port.memory, this.ctx.pages, unit.levels), false, unit.levels * 9 + 12);
    this.domains.push(d);
    return d;
  }

  /** dmar_domain_attach_device: a domain id on the device's unit and context entries for all its aliases. */
  attach(domain: IommuDomain, dev: KPciDev, unit: DmarUnit, driver: IntelIommuDriver): void {
    let did = domain.dids.get(unit);
    if (did === undefined) {
      did = driver.allocDid(unit);
      domain.dids.set(unit, did);
    }
    domain.devices.push(dev);
    const levels = domain.tables?.levels ?? unit.levels;
    for (const a of dmaAliases(dev)) driver.mapContext(unit, a.rid, did, domain.passThrough, domain.tables?.pgd ?? 0, levels);
  }

  /** Identity-maps a group's direct regions in a translating domain (iommu_group_create_direct_mappings). */
  createDirectMappings(g: IommuGroup, driver: IntelIommuDriver): void {
    const d = g.domain;
    if (d === null || d.tables === null || d.type === "identity") return;
    for (const r of this.groupReservedRegions(g, driver)) {
      if (r.type !== "direct" && r.type !== "direct-relaxable") continue;
      const start = Math.floor(r.start / 4096) * 4096;
      const size = Math.ceil((r.end + 1) / 4096) * 4096 - start;
      d.tables.mapRange(start, start, size, DMA_PTE_READ | DMA_PTE_WRITE, false);
    }
  }
}

function isBelow(dev: KPciDev, bridge: KPciDev): boolean {
  for (let up = dev.parent; up !== null; up = up.parent) if (up === bridge) return true;
  return false;
}
