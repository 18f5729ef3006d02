/**
 * Shared virtual addressing on the simulated kernel's VT-d driver, after Linux 6.1 (drivers/iommu/intel/svm.c,
 * iommu.c intel_iommu_enable_sva / intel_iommu_enable_pasid, drivers/iommu/iommu-sva-lib.c): a device bound to a
 * process gets the process's PASID (one per address space, from a global allocator, 1 and up), and its PASID
 * entry is a first-stage entry whose table pointer is the process's own page tables (mm->pgd) with domain id
 * FLPT_DEFAULT_DID, user requests only. An mmu notifier keeps the IOTLB in step with the CPU: after pages are
 * unmapped, a PASID-based IOTLB invalidation for them (intel_invalidate_range); when the address space goes away
 * with the device still bound, the entry is torn down (intel_mm_release). Unbind tears the entry down with its
 * PASID-cache and PASID-based IOTLB invalidations (intel_pasid_tear_down_entry).
 *
 * Left out: Linux also needs ATS and PRI on the device (page requests let a device fault pages in); the simulated
 * devices have neither, so a request to a page the process has not mapped is a fault, never a page request.
 */
import { IommuError } from "../core/errors.js";
import { hex } from "../core/hex.js";
import { PAGE_SIZE_4K } from "../spec/vtd/paging.js";
import { FLPT_DEFAULT_DID, PASID_TABLE_ENTRIES, PGTT_NAMES, RID_PASID_DEFAULT } from "../spec/vtd/scalable.js";
import type { DmarUnit } from "./intel-unit.js";
import type { Kernel } from "./kernel.js";
import type { Mm, MmNotifier } from "./mm.js";
import { pciEnablePasid, pciMaxPasids, type KPciDev } from "./pci.js";

/** PASID_MIN: the first PASID handed out; the one below is RID_PASID, the DMA API's. */
const PASID_MIN = RID_PASID_DEFAULT + 1;

/** A device bound to an address space (struct iommu_sva / intel_svm_dev). */
export interface SvaBond {
  readonly dev: KPciDev;
  readonly mm: Mm;
  readonly unit: DmarUnit;
  readonly pasid: number;
  /** Domain id of the PASID entry (FLPT_DEFAULT_DID). */
  readonly did: number;
  /** The notifier registered on the address space. */
  readonly notifier: MmNotifier;
}

export class IntelSvm {
  /** PASIDs in use, by the address space they were given to (the global PASID allocator). */
  private readonly allocated = new Set<number>();
  private readonly bonds: SvaBond[] = [];

  constructor(private readonly kernel: Kernel) {}

  private unitOf(dev: KPciDev): DmarUnit {
    const u = this.kernel.driver.unitFor(dev);
    if (u === null || !this.kernel.dmaRemapping) throw new IommuError("SVA", `${dev.name}: not behind a VT-d unit that translates`);
    return u;
  }

  /**
   * iommu_dev_enable_feature(IOMMU_DEV_FEAT_SVA) -> intel_iommu_enable_sva: the unit must run in scalable mode
   * with PASID support and first-stage translation (VTD_FLAG_SVM_CAPABLE); PASID is enabled in the device's
   * PASID capability and PASIDE set in its context entry, with a device-selective context-cache invalidation.
   */
  enable(dev: KPciDev): void {
    const u = this.unitOf(dev);
    if (!u.sm) throw new IommuError("SVA", `${u.name} does not run in scalable mode: no PASIDs`);
    if (!u.hasPasid) throw new IommuError("SVA", `${u.name}: ECAP.PASID is clear: no requests with PASID`);
    if (!u.hasFsts) throw new IommuError("SVA", `${u.name}: ECAP.FSTS is clear: no first-stage translation for process page tables`);
    if (!pciEnablePasid(this.kernel.port, dev)) throw new IommuError("SVA", `${dev.name} has no PASID capability`);
    const did = this.kernel.iommu.groupFor(dev)?.domain?.dids.get(u) ?? 0;
    if (!this.kernel.driver.enablePasid(dev, u, did)) throw new IommuError("SVA", `${dev.name}: no present context entry to enable PASIDs in`);
  }

  /** iommu_sva_bind_device: the address space's PASID (allocated on its first bind) set up for the device. */
  bind(dev: KPciDev, mm: Mm): SvaBond {
    const u = this.unitOf(dev);
    const have = this.bonds.find((b) => b.dev === dev && b.mm === mm);
    if (have !== undefined) return have;
    const max = pciMaxPasids(this.kernel.port, dev);
    if (mm.pasid === null) {
      let p = PASID_MIN;
      while (this.allocated.has(p)) p++;
      if (p >= max) throw new IommuError("SVA", `${dev.name}: no free PASID below ${max}`);
      this.allocated.add(p);
      mm.pasid = p;
      // mm_pasid_drop: the PASID goes back when the address space does, not on unbind.
      mm.notifiers.push({ invalidate: () => undefined, release: () => this.allocated.delete(p) });
    } else if (mm.pasid >= max) {
      throw new IommuError("SVA", `${dev.name}: PASID ${mm.pasid} of pid ${mm.pid} is beyond the device's ${max}`);
    }
    const pasid = mm.pasid;
    // intel_svm_bind_mm: a first-stage entry over the process's tables, user requests only (no SRE).
    this.kernel.driver.pasid.setupFirstStage(u, dev, pasid, FLPT_DEFAULT_DID, mm.pgd, { levels: mm.levels });
    const notifier: MmNotifier = {
      invalidate: (va, pages) => this.kernel.driver.flushPiotlb(u, FLPT_DEFAULT_DID, pasid, Math.floor(va / PAGE_SIZE_4K), pages),
      // intel_mm_release: the entry torn down (with its invalidations) while the device is still bound.
      release: () => {
        this.kernel.driver.pasid.tearDown(u, dev, pasid, { faultIgnore: true });
        const at = this.bonds.indexOf(bond);
        if (at >= 0) this.bonds.splice(at, 1);
      },
    };
    mm.notifiers.push(notifier);
    const bond: SvaBond = { dev, mm, unit: u, pasid, did: FLPT_DEFAULT_DID, notifier };
    this.bonds.push(bond);
    return bond;
  }

  /**
   * iommu_sva_unbind_device -> intel_svm_unbind_mm: the notifier unregistered and the PASID entry torn down with
   * its invalidations. `flush: false` clears the entry without invalidating anything: a driver that forgets the
   * caches (the scenario's unprotected run).
   */
  unbind(bond: SvaBond, opts: { flush: boolean } = { flush: true }): void {
    const at = this.bonds.indexOf(bond);
    if (at < 0) return;
    this.bonds.splice(at, 1);
    const n = bond.mm.notifiers.indexOf(bond.notifier);
    if (n >= 0) bond.mm.notifiers.splice(n, 1);
    this.kernel.driver.pasid.tearDown(bond.unit, bond.dev, bond.pasid, { flush: opts.flush });
  }

  /** The unit's translation mode as its registers read, for a report. */
  describeUnit(bond: SvaBond): string {
    const u = bond.unit;
    return `${u.name} in ${u.sm ? "scalable" : "legacy"} mode (ECAP ${hex(u.ecap)})`;
  }

  /** The PASID entry as the hardware will read it from memory. */
  describeEntry(bond: SvaBond): string {
    const e = this.kernel.driver.pasid.readEntry(bond.dev, bond.pasid);
    if (e === null || !e.present) return `PASID ${bond.pasid}: no entry`;
    return `PASID ${bond.pasid} entry of ${bond.dev.name}: ${PGTT_NAMES[e.pgtt] ?? e.pgtt}, first-stage table ${hex(e.fsptptr)} (pid ${bond.mm.pid}'s page tables at ${hex(bond.mm.pgd)}), domain id ${e.did}, supervisor requests ${e.sre ? "allowed" : "refused"}`;
  }

  /** The first PASID past every PASID table the device's directory points at (its directory entry is not present). */
  pasidBeyondTable(bond: SvaBond): number {
    let p = 0;
    while (this.kernel.driver.pasid.entryAddress(bond.dev, p, false) !== null) p += PASID_TABLE_ENTRIES;
    return p;
  }
}
