/**
 * The seam between the IOMMU core (groups, default domains, the DMA API) and the hardware driver, after Linux
 * 6.1's struct iommu_ops / iommu_domain_ops (include/linux/iommu.h): the core asks "the IOMMU driver" which unit
 * covers a device (probe_device), for a domain of a type (domain_alloc), to attach a device (attach_dev), to
 * flush what it unmapped (iotlb_sync, flush_iotlb_all) or mapped (iotlb_sync_map), and for a device's reserved
 * regions (get_resv_regions). The Intel VT-d driver (intel-iommu.ts) and the AMD-Vi driver (amd-iommu.ts)
 * implement it; the kernel picks one the way x86 does (DMAR first, then IVRS).
 *
 * Page tables of either format are reached through IoPageTable: the DMA API maps and unmaps pages with
 * IOMMU_READ / IOMMU_WRITE and never sees an entry.
 */
import type { DomainType } from "./default-domain.js";
import type { IommuDomain, ReservedRegion } from "./iommu-domain.js";
import type { KPciDev } from "./pci.js";

export { IOMMU_READ, IOMMU_WRITE, type IoPageTable } from "./io-pgtable.js";

/** One remapping unit (a DMAR DRHD, an AMD-Vi IVHD). */
export interface IommuUnit {
  readonly name: string;
  readonly seq: number;
}

/** The IOMMU driver as the core sees it. Methods (not function properties), so a driver of units U fits IommuOps. */
export interface IommuOps<U extends IommuUnit = IommuUnit> {
  /** "intel" or "amd". */
  readonly kind: "intel" | "amd";
  /** Units brought up (DMA remapping or interrupt remapping). */
  readonly units: readonly U[];
  /** The sysfs class device name of a unit (/sys/class/iommu/NAME). */
  sysfsName(u: U): string;
  /** probe_device: the unit translating `dev`, or null when no unit covers it. */
  unitFor(dev: KPciDev): U | null;
  /** domain_alloc: a domain of `type` for devices behind `unit`. */
  domainAlloc(type: DomainType, unit: U): IommuDomain;
  /** attach_dev: points the device (and its DMA aliases) at the domain. */
  attachDev(domain: IommuDomain, dev: KPciDev, unit: U): void;
  /**
   * Detaches a device from `domain` (its context entries / DTEs no longer point at the domain's tables); with
   * `flush`, the unit's cached copies of them and the domain's IOTLB are invalidated before this returns.
   */
  detachDev(domain: IommuDomain, dev: KPciDev, unit: U, flush: boolean): void;
  /** Blocks all DMA of the device (the core's blocking domain while a group changes owner), invalidated. */
  blockDev(dev: KPciDev, unit: U, current: IommuDomain | null): void;
  /** domain_free: the domain's hardware ids back and its page tables freed (it has no devices left). */
  domainFree(domain: IommuDomain): void;
  /** flush_iotlb_all: the domain's whole IOTLB on every unit it is attached to. */
  flushIotlbAll(domain: IommuDomain): void;
  /** iotlb_sync after unmapping `pages` pages at `pfn` (what strict mode waits for). */
  iotlbSync(domain: IommuDomain, pfn: number, pages: number): void;
  /** iotlb_sync_map after mapping (only units that cache non-present entries need it). */
  iotlbSyncMap(domain: IommuDomain, pfn: number, pages: number): void;
  /** get_resv_regions of a device, in the driver's order. */
  resvRegions(dev: KPciDev): ReservedRegion[];
}
