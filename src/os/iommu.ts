/**
 * The IOMMU core of the simulated kernel, after drivers/iommu/iommu.c in Linux 6.1: the default domain type
 * (iommu_subsys_init and its log lines), IOMMU groups by pci_device_group's rules (a device shares the group of its
 * DMA aliases; without ACS on the path up, it shares the group of the bridge above; multi-function devices
 * without ACS share one group), one default domain per group (identity, DMA or DMA-FQ, by the rules of
 * src/os/default-domain.ts), and each device's reserved regions. What depends on the hardware (domain
 * allocation, attaching, reserved regions, page-table format) is asked of the driver through IommuOps
 * (src/os/iommu-ops.ts).
 */
import type { KernelConfig, BootParams } from "./cmdline.js";
import { IOMMU_READ, IOMMU_WRITE, type IommuOps, type IommuUnit } from "./iommu-ops.js";
import type { IommuDomain, ReservedRegion } from "./iommu-domain.js";

export { IommuDomain, type ReservedRegion } from "./iommu-domain.js";
import type { KernelLog } from "./log.js";
import type { PageAllocator } from "./pages.js";
import { acsEnabled, acsPathEnabled, dmaAliases, devsAreDmaAliases, type KPciDev } from "./pci.js";
import { IommuError } from "../core/errors.js";
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

/** The ISA DMA range a floppy controller behind an ISA bridge reaches (0-16 MiB, last byte). */
export const ISA_DMA_LAST = 16 * 2 ** 20 - 1;

/** USB controllers and display devices: their firmware-declared direct ranges may be relaxed (device_rmrr_is_relaxable). */
export function relaxableDirect(dev: KPciDev): boolean {
  return dev.classCode >>> 8 === PCI_CLASS_SERIAL_USB || dev.classCode >>> 16 === PCI_BASE_CLASS_DISPLAY;
}

export function isIsaBridge(dev: KPciDev): boolean {
  return dev.classCode >>> 8 === PCI_CLASS_BRIDGE_ISA;
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
  readonly domains: IommuDomain[] = [];
  /** The IOMMU driver in charge (set when one has been initialized). */
  ops: IommuOps | null = null;

  constructor(private readonly ctx: CoreContext) {
    const p = ctx.params;
    const passthroughCmdline = p.defaultDomainCmdline === null ? null : p.defaultDomainCmdline === "identity";
    this.global = initialGlobalDefault({ passthroughCmdline, strictCmdline: p.strictCmdline, strictForced: p.strictForced }, ctx.config);
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

  // ---- Reserved regions (iommu_get_resv_regions) ----

  private driver(ops: IommuOps | undefined): IommuOps {
    const o = ops ?? this.ops;
    if (o === null) throw new IommuError("NO_IOMMU", "no IOMMU driver is active");
    return o;
  }

  /** The device's reserved regions, as the driver reports them (defaults to the active driver). */
  reservedRegions(dev: KPciDev, ops?: IommuOps): ReservedRegion[] {
    return this.driver(ops).resvRegions(dev);
  }

  /** The group's regions as sysfs lists them: every member's, sorted, equal ones once. */
  groupReservedRegions(g: IommuGroup, ops?: IommuOps): ReservedRegion[] {
    const all = g.devices.flatMap((d) => this.reservedRegions(d, ops));
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

  /** Allocates a domain through the driver (iommu_domain_alloc). */
  allocDomain(type: DomainType, unit: IommuUnit, ops?: IommuOps): IommuDomain {
    const d = this.driver(ops).domainAlloc(type, unit);
    if (!this.domains.includes(d)) this.domains.push(d);
    return d;
  }

  /** __iommu_attach_device: the driver points the device and its aliases at the domain. */
  attach(domain: IommuDomain, dev: KPciDev, unit: IommuUnit, ops?: IommuOps): void {
    domain.devices.push(dev);
    this.driver(ops).attachDev(domain, dev, unit);
  }

  /** Identity-maps a group's direct regions in a translating domain (iommu_group_create_direct_mappings). */
  createDirectMappings(g: IommuGroup, ops?: IommuOps): void {
    const d = g.domain;
    if (d === null || d.tables === null || d.type === "identity") return;
    for (const r of this.groupReservedRegions(g, ops)) {
      if (r.type !== "direct" && r.type !== "direct-relaxable") continue;
      const start = Math.floor(r.start / 4096) * 4096;
      const size = Math.ceil((r.end + 1) / 4096) * 4096 - start;
      d.tables.mapRange(start, start, size, IOMMU_READ | IOMMU_WRITE, false);
    }
  }
}
