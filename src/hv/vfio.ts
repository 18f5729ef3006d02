/**
 * VFIO-like device assignment on the simulated host, after Linux 6.1 (drivers/vfio/{vfio_main,container}.c,
 * vfio_iommu_type1.c, drivers/iommu/iommu.c's DMA ownership):
 *
 * - Binding: `driver_override` names vfio-pci, the host driver is unbound (its remove path frees its
 *   interrupts: remapping table entries cleared and the interrupt entry cache invalidated, MSI/MSI-X and bus
 *   mastering off), and the PCI core probes again. vfio-pci refuses bridges (header type other than 0) and
 *   devices without an IOMMU group (unless no-IOMMU mode is enabled), with error -22 as Linux logs it.
 * - Group viability: a container may claim a group's DMA only when no device of the group is bound to a driver
 *   that uses the kernel's DMA API. Drivers that manage DMA themselves (vfio-pci, pci-stub, pcieport: the
 *   `driver_managed_dma` ones) and unbound devices are fine; so bridges left to pcieport or to no driver do
 *   not spoil a group. Otherwise VFIO_GROUP_SET_CONTAINER fails with EPERM (iommu_group_claim_dma_owner).
 * - Container (type1): claiming a group blocks its DMA (context entries cleared and invalidated), then the
 *   container's unmanaged domain is attached (new domain id, context entries pointing at its page tables).
 *   MAP_DMA writes second-level entries IOVA (= guest-physical address) → host page; UNMAP_DMA clears them and
 *   invalidates the IOTLB before the pages may be reused (strict) — or, as a contrast, later (lazy). Releasing a
 *   container unmaps everything, detaches the groups (context entries cleared and invalidated, default domain
 *   back), and frees the domain and its domain id.
 *
 * Everything reaches the hardware through the host driver's MMIO and in-memory tables: context entries, page
 * tables and invalidation descriptors.
 */
import { IommuError } from "../core/errors.js";
import { IOVA_FQ_TIMEOUT_MS } from "../os/dma.js";
import { IOMMU_READ, IOMMU_WRITE, type IommuOps } from "../os/iommu-ops.js";
import type { IommuDomain, IommuGroup } from "../os/iommu.js";
import type { Kernel } from "../os/kernel.js";
import type { KPciDev } from "../os/pci.js";
import type { MachinePort } from "../os/port.js";
import type { HostIrte } from "./interrupts.js";

export const VFIO_PCI = "vfio-pci";
/** Drivers with driver_managed_dma set: binding them does not take the group's DMA (Linux 5.19+). */
export const DRIVER_MANAGED_DMA: ReadonlySet<string> = new Set([VFIO_PCI, "pci-stub", "pcieport"]);
const PAGE = 4096;
const PCI_COMMAND = 0x04;
const PCI_COMMAND_MASTER = 0x4;
const EINVAL = 22;

export type UnmapPolicy = "strict" | "lazy";

export interface VfioOptions {
  /** enable_unsafe_noiommu_mode: assignment without an IOMMU (no isolation at all). */
  noiommu?: boolean;
  /** What container unmaps do with the IOTLB. */
  unmap?: UnmapPolicy;
  /** False: the hypervisor skips IOTLB and context-cache invalidations when it tears a container down. */
  invalidateOnTeardown?: boolean;
}

/** What the VFIO layer needs from the host. */
export interface VfioHost {
  k: Kernel;
  port: MachinePort;
  irte: HostIrte;
  /** Function-level reset of the device model at `bdf` (no-op when the device has none). */
  resetModel(dev: KPciDev): void;
}

/** A pending lazy IOTLB flush (what the DMA API's flush queue holds). */
export interface LazyFlush {
  iovaPfn: number;
  pages: number;
  queuedNs: number;
  flushedNs: number | null;
}

export class Vfio {
  readonly noiommu: boolean;
  readonly unmapPolicy: UnmapPolicy;
  readonly invalidateOnTeardown: boolean;
  private readonly overrides = new Map<KPciDev, string>();
  /** Groups a container holds (one owner per group). */
  readonly owners = new Map<IommuGroup, Container>();

  constructor(
    readonly host: VfioHost,
    opts: VfioOptions = {},
  ) {
    this.noiommu = opts.noiommu ?? false;
    this.unmapPolicy = opts.unmap ?? "strict";
    this.invalidateOnTeardown = opts.invalidateOnTeardown ?? true;
  }

  private get k(): Kernel {
    return this.host.k;
  }

  dev(bdf: string): KPciDev {
    return this.k.pciDevice(bdf);
  }

  /** echo DRIVER > /sys/bus/pci/devices/BDF/driver_override */
  setDriverOverride(bdf: string, driver: string | null): void {
    const d = this.dev(bdf);
    if (driver === null || driver === "") this.overrides.delete(d);
    else this.overrides.set(d, driver);
  }

  driverOverride(bdf: string): string | null {
    return this.overrides.get(this.dev(bdf)) ?? null;
  }

  /**
   * echo BDF > /sys/bus/pci/devices/BDF/driver/unbind: the host driver's remove path. Its interrupts are freed
   * (each remapping table entry cleared and invalidated), MSI/MSI-X and bus mastering turned off.
   */
  unbind(bdf: string): void {
    const d = this.dev(bdf);
    if (d.driver === null) return;
    const { k, port } = this.host;
    const unit = this.host.irte.unitFor(d);
    for (let i = k.irqs.length - 1; i >= 0; i--) {
      const q = k.irqs[i]!;
      if (q.dev !== d) continue;
      if (q.irte !== null && unit !== null) this.host.irte.free(unit, d, q.irte);
      k.irqs.splice(i, 1);
    }
    if (d.msiCap !== 0) port.configWrite(d.rid, d.msiCap + 2, 2, port.configRead(d.rid, d.msiCap + 2, 2) & ~1);
    if (d.msixCap !== 0) port.configWrite(d.rid, d.msixCap + 2, 2, port.configRead(d.rid, d.msixCap + 2, 2) & ~0x8000);
    port.configWrite(d.rid, PCI_COMMAND, 2, port.configRead(d.rid, PCI_COMMAND, 2) & ~PCI_COMMAND_MASTER);
    d.driver = null;
  }

  /** echo BDF > /sys/bus/pci/drivers_probe: binds the driver_override driver (only vfio-pci is modelled). */
  probe(bdf: string): void {
    const d = this.dev(bdf);
    if (d.driver !== null) return;
    const want = this.overrides.get(d);
    if (want === undefined) return;
    if (want !== VFIO_PCI) throw new IommuError("NO_SUCH_DRIVER", `${d.name}: driver_override names '${want}', which the simulated host does not have`);
    const fail = (why: string, hint: string): never => {
      this.k.log.warn(`vfio-pci: probe of ${d.name} failed with error -${EINVAL}`);
      throw new IommuError("VFIO_PROBE_FAILED", `vfio-pci: probe of ${d.name} failed with error -${EINVAL}: ${why}`, { hint });
    };
    if (d.headerType !== 0) fail(`it is a bridge (header type ${d.headerType}); vfio-pci takes only normal functions`, "assign the devices behind the bridge instead");
    if (this.k.iommu.groupFor(d) === null && !this.noiommu) {
      const on = this.k.port.firmware.acpi.IVRS !== undefined && this.k.port.firmware.acpi.DMAR === undefined ? "without amd_iommu=off (AMD-Vi is on by default)" : "with intel_iommu=on";
      fail("it is in no IOMMU group (the IOMMU is off)", `boot the host ${on}, or (unsafe) enable vfio's no-IOMMU mode`);
    }
    d.driver = VFIO_PCI;
  }

  /** driver_override + unbind + drivers_probe: what `iommu bind` does on a real host. */
  bind(bdf: string): void {
    this.setDriverOverride(bdf, VFIO_PCI);
    this.unbind(bdf);
    this.probe(bdf);
  }

  /** The IOMMU group of a device, or null (no IOMMU). */
  groupOf(dev: KPciDev): IommuGroup | null {
    return this.k.iommu.groupFor(dev);
  }

  /**
   * The viability rule of VFIO_GROUP_SET_CONTAINER (iommu_group_claim_dma_owner): throws naming the first device
   * bound to a driver that uses the DMA API.
   */
  checkViable(group: IommuGroup): void {
    for (const d of group.devices) {
      if (d.driver === null || DRIVER_MANAGED_DMA.has(d.driver)) continue;
      throw new IommuError(
        "VFIO_GROUP_NOT_VIABLE",
        `iommu group ${group.id} is not viable: ${d.name} is bound to ${d.driver} (VFIO_GROUP_SET_CONTAINER: EPERM)`,
        { hint: `bind every device of group ${group.id} to vfio-pci or unbind it (bridges may stay with pcieport): ${group.devices.map((x) => x.name).join(" ")}` },
      );
    }
    const owner = this.owners.get(group);
    if (owner !== undefined) throw new IommuError("VFIO_GROUP_BUSY", `iommu group ${group.id} is already in use by ${owner.name} (EBUSY)`);
  }

  /** A new container (open /dev/vfio/vfio); its IOMMU model is set when the first group joins. */
  container(name: string): Container {
    return new Container(this, name);
  }
}

/** A group attached to a container, with what to restore when it leaves. */
interface Attached {
  group: IommuGroup;
  /** The group's default domain (restored on release). */
  defaultDomain: IommuDomain | null;
}

/** A VFIO type1 container: one unmanaged domain shared by its groups. */
export class Container {
  domain: IommuDomain | null = null;
  readonly attached: Attached[] = [];
  /** IOVA page → host page, as mapped (vfio_dma entries). */
  private readonly mapped = new Map<number, number>();
  readonly lazyFlushes: LazyFlush[] = [];
  /** IOTLB invalidations this container issued (page-selective or domain-wide). */
  invalidations = 0;
  released = false;

  constructor(
    private readonly vfio: Vfio,
    readonly name: string,
  ) {}

  private get k(): Kernel {
    return this.vfio.host.k;
  }

  /** True when the container translates (false in no-IOMMU mode). */
  get translating(): boolean {
    return this.domain !== null;
  }

  /** Pages mapped. */
  get mappedPages(): number {
    return this.mapped.size;
  }

  /** The host page IOVA page `iovaPfn` maps to, or -1. */
  lookup(iovaPfn: number): number {
    return this.mapped.get(iovaPfn) ?? -1;
  }

  /**
   * VFIO_GROUP_SET_CONTAINER (+ VFIO_SET_IOMMU for the first group): checks viability, claims the group's DMA
   * (blocked while it changes hands) and attaches the container's unmanaged domain to every device.
   */
  setGroup(group: IommuGroup | null, dev: KPciDev): void {
    const { k } = this;
    if (group === null) {
      // No-IOMMU mode: nothing to program, and nothing isolates the device.
      if (!this.vfio.noiommu) throw new IommuError("NO_IOMMU_GROUP", `${dev.name} is in no IOMMU group`);
      return;
    }
    if (this.attached.some((a) => a.group === group)) return;
    this.vfio.checkViable(group);
    const ops = this.ops;
    if (this.domain === null) {
      const unit = group.devices.map((d) => ops.unitFor(d)).find((u) => u !== null) ?? null;
      if (unit === null) throw new IommuError("NO_IOMMU_GROUP", `${dev.name}: no remapping unit covers group ${group.id}`);
      this.domain = k.iommu.allocDomain("unmanaged", unit, ops);
    }
    const dom = this.domain;
    const def = group.domain;
    // Claim: block the group's DMA before anything else points it elsewhere.
    for (const d of group.devices) {
      const u = ops.unitFor(d);
      if (u !== null) ops.blockDev(d, u, def);
    }
    for (const d of group.devices) {
      const u = ops.unitFor(d);
      if (u !== null) k.iommu.attach(dom, d, u, ops);
    }
    // Mappings made before this group joined are already in the shared page tables.
    this.attached.push({ group, defaultDomain: def });
    this.vfio.owners.set(group, this);
  }

  /** The host's IOMMU driver (VT-d or AMD-Vi), which every container operation goes through. */
  private get ops(): IommuOps {
    const ops = this.k.ops;
    if (ops === null) throw new IommuError("NO_IOMMU_GROUP", `${this.name}: the host has no IOMMU driver in charge of DMA remapping`);
    return ops;
  }

  /**
   * VFIO_IOMMU_MAP_DMA: IOVA pages from `iovaPfn` → the given host pages. Refuses IOVAs in the group's reserved
   * regions (the interrupt window) and beyond the domain's aperture, as type1 does.
   */
  map(iovaPfn: number, hpfns: readonly number[], write = true): void {
    const dom = this.domain;
    const last = iovaPfn + hpfns.length - 1;
    if (dom !== null) {
      if (last * PAGE > dom.apertureEnd) {
        throw new IommuError("VFIO_MAP_DMA", `${this.name}: IOVA 0x${(last * PAGE).toString(16)} is beyond the domain's aperture 0x${dom.apertureEnd.toString(16)} (EINVAL)`);
      }
      for (const a of this.attached) {
        for (const r of this.k.iommu.groupReservedRegions(a.group, this.ops)) {
          if (r.type !== "msi" && r.type !== "reserved") continue;
          if (iovaPfn * PAGE <= r.end && last * PAGE + PAGE - 1 >= r.start) {
            throw new IommuError("VFIO_MAP_DMA", `${this.name}: IOVA range 0x${(iovaPfn * PAGE).toString(16)}-0x${(last * PAGE + PAGE - 1).toString(16)} overlaps reserved region 0x${r.start.toString(16)}-0x${r.end.toString(16)} (${r.type}) (EINVAL)`);
          }
        }
      }
    }
    const prot = IOMMU_READ | (write ? IOMMU_WRITE : 0);
    for (let i = 0; i < hpfns.length; i++) {
      const h = hpfns[i]!;
      this.mapped.set(iovaPfn + i, h);
      dom?.tables?.map(iovaPfn + i, h, 1, prot);
    }
    // Units that cache non-present entries (VT-d caching mode, AMD-Vi NpCache) need the new entries invalidated too.
    if (dom !== null) this.ops.iotlbSyncMap(dom, iovaPfn, hpfns.length);
  }

  /**
   * VFIO_IOMMU_UNMAP_DMA: clears the entries of `count` IOVA pages and returns the host pages they mapped.
   * Strict: the IOTLB is invalidated before this returns, so the pages are safe to reuse. Lazy: the
   * invalidation is queued and happens IOVA_FQ_TIMEOUT_MS later; until then a cached translation still
   * reaches the pages. `invalidate` false skips the invalidation altogether.
   */
  unmap(iovaPfn: number, count: number, invalidate = true): number[] {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const h = this.mapped.get(iovaPfn + i);
      if (h === undefined) continue;
      out.push(h);
      this.mapped.delete(iovaPfn + i);
    }
    const dom = this.domain;
    if (dom === null || out.length === 0) return out;
    // Table pages the unmap emptied go back to the host only once no IOTLB can still hold them.
    const emptied = dom.tables?.unmap(iovaPfn, count) ?? [];
    const freeEmptied = (): void => {
      for (const t of emptied) this.k.pages.freeRange(t, 1);
    };
    if (!invalidate) return out;
    if (this.vfio.unmapPolicy === "strict") {
      this.invalidations++;
      this.ops.iotlbSync(dom, iovaPfn, count);
      freeEmptied();
      return out;
    }
    const f: LazyFlush = { iovaPfn, pages: count, queuedNs: this.k.clock.ns, flushedNs: null };
    this.lazyFlushes.push(f);
    this.k.clock.schedule(IOVA_FQ_TIMEOUT_MS * 1e6, () => {
      if (this.domain === null) return;
      this.invalidations++;
      this.ops.flushIotlbAll(this.domain);
      freeEmptied();
      f.flushedNs = this.k.clock.ns;
    });
    return out;
  }

  /**
   * Releases the container (VM teardown): unmaps everything (pages returned), detaches every group (its
   * default domain back), frees the domain's id and page tables. With `invalidateOnTeardown` false the
   * hypervisor skips the IOTLB and context-cache invalidations.
   */
  release(): number[] {
    if (this.released) return [];
    this.released = true;
    const inv = this.vfio.invalidateOnTeardown;
    const pfns = [...this.mapped.keys()].sort((a, b) => a - b);
    const pages: number[] = [];
    // One UNMAP_DMA per contiguous IOVA run.
    let i = 0;
    while (i < pfns.length) {
      let j = i;
      while (j + 1 < pfns.length && pfns[j + 1] === pfns[j]! + 1) j++;
      pages.push(...this.unmap(pfns[i]!, j - i + 1, inv));
      i = j + 1;
    }
    const dom = this.domain;
    const ops = this.ops;
    for (const a of this.attached) {
      for (const d of a.group.devices) {
        const u = ops.unitFor(d);
        if (u === null || dom === null) continue;
        ops.detachDev(dom, d, u, inv);
        if (a.defaultDomain !== null) this.k.iommu.attach(a.defaultDomain, d, u, ops);
      }
      this.vfio.owners.delete(a.group);
    }
    this.attached.length = 0;
    if (dom !== null) {
      ops.domainFree(dom);
      const at = this.k.iommu.domains.indexOf(dom);
      if (at >= 0) this.k.iommu.domains.splice(at, 1);
      this.domain = null;
    }
    return pages;
  }
}
