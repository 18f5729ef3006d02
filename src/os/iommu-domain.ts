/**
 * An IOMMU domain as the core and the drivers share it (struct iommu_domain): its type, page tables, the
 * hardware domain ids it has (per VT-d unit, or one AMD-Vi protection domain id), the devices attached, and the
 * DMA layer's state. And the reserved regions a driver reports for a device.
 */
import type { DomainType } from "./default-domain.js";
import type { IoPageTable } from "./io-pgtable.js";
import type { IovaDomain } from "./iova.js";
import type { DmarUnit } from "./intel-unit.js";
import type { KPciDev } from "./pci.js";

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
  tables: IoPageTable | null;
  readonly passThrough: boolean;
  /** VT-d scalable mode: the domain translates through first-stage tables (Linux's domain->use_first_level). */
  firstLevel = false;
  /** VT-d: the domain id on each unit it is attached to. */
  readonly dids = new Map<DmarUnit, number>();
  /** AMD-Vi: the protection domain id, one for every unit (pd->id). */
  pdId: number | null = null;
  readonly devices: KPciDev[] = [];
  /** Highest IOVA the domain translates (its address width). */
  readonly apertureEnd: number;
  /** The DMA layer's state for DMA / DMA-FQ domains (IOVA allocator, flush queue). */
  cookie: unknown = null;
  iova: IovaDomain | null = null;

  constructor(type: DomainType, tables: IoPageTable | null, passThrough: boolean, widthBits: number) {
    this.type = type;
    this.tables = tables;
    this.passThrough = passThrough;
    this.apertureEnd = 2 ** widthBits - 1;
  }

  get units(): DmarUnit[] {
    return [...this.dids.keys()];
  }

  /** The hardware domain ids the domain has (one per VT-d unit, or the AMD-Vi protection domain id). */
  domainIds(): number[] {
    return this.pdId !== null ? [this.pdId] : [...this.dids.values()];
  }
}

