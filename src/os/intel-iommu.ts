/**
 * The Intel VT-d driver of the simulated kernel, after Linux 6.1 (drivers/iommu/intel/{dmar.c,iommu.c,
 * irq_remapping.c}): parses the firmware's DMAR table with the acpi/ decoder, brings each unit up only through
 * MMIO register writes and tables it places in RAM with the kernel's page allocator (root table, context tables,
 * second-level page tables, the invalidation queue, the interrupt remapping table), handles fault interrupts by
 * reading the fault recording registers, and keeps domain ids the way Linux does (id 0 reserved, the lowest free
 * id on a domain's first attach to a unit).
 *
 * Register, table and descriptor formats come from spec/vtd (numbers, formats and their encoders; no hardware
 * objects). The unit's view is intel-unit.ts, queued invalidation intel-qi.ts, fault handling intel-faults.ts,
 * root and context entries intel-context.ts, and, in scalable mode (sm_supported: intel_iommu_sm and ECAP.SMTS),
 * the per-device PASID tables intel-pasid.ts: the root table is latched with RTADDR.TTM = 01b, context entries
 * name a PASID directory, and each device's RID_PASID entry selects pass-through, first-stage or second-stage
 * translation for its domain.
 */
import { decodeDmar, type DmarDeviceScope, type DmarTable } from "../acpi/dmar.js";
import { IommuError } from "../core/errors.js";
import { requesterId, ridBus, ridOf } from "../core/pci.js";
import { TWO32 } from "../core/u64.js";
import { encodeCompatMsi, MSI_ADDR_BASE, MSI_ADDR_LAST } from "../spec/msi.js";
import { awForLevels, awWidth } from "../spec/vtd/context.js";
import { fieldMax, withField } from "../spec/vtd/fields.js";
import { PC_G_GLOBAL } from "../spec/vtd/invalidation.js";
import { FLPT_DEFAULT_DID, PASID_MAX, RID_PASID_DEFAULT } from "../spec/vtd/scalable.js";
import { encodeIrta, encodeIrte, encodeRemappableMsi, irtaEntries, IRTE_SIZE, writeIrte, SVT_NO_VERIFY, SVT_VERIFY_BUS, SVT_VERIFY_SID_SQ } from "../spec/vtd/intremap.js";
import type { Descriptor } from "../spec/vtd/invalidation.js";
import { PAGE_SIZE_4K } from "../spec/vtd/paging.js";
import {
  DMAR_CAP_REG,
  DMAR_ECAP_REG,
  DMAR_FEADDR_REG,
  DMAR_FECTL_REG,
  DMAR_FEDATA_REG,
  DMAR_FEUADDR_REG,
  DMAR_GSTS_REG,
  DMAR_IRTA_REG,
  DMAR_PMEN_REG,
  DMAR_RTADDR_REG,
  DMAR_VER_REG,
  GCMD_CFI,
  GCMD_IRE,
  GCMD_SIRTP,
  GCMD_SRTP,
  GCMD_TE,
  GCMD_WBF,
  GSTS_IRES,
  GSTS_IRTPS,
  GSTS_RTPS,
  GSTS_TES,
  GSTS_WBFS,
  IRTA,
  RTADDR,
  TTM_SCALABLE,
} from "../spec/vtd/registers.js";
import type { DomainType } from "./default-domain.js";
import { handleFaults, type FaultRecord } from "./intel-faults.js";
import { PageTables } from "./intel-pgtable.js";
import { IommuDomain, type ReservedRegion } from "./iommu-domain.js";
import { isIsaBridge, ISA_DMA_LAST, relaxableDirect } from "./iommu.js";
import { IOMMU_READ, IOMMU_WRITE, type IommuOps } from "./iommu-ops.js";
import { QueuedInvalidation } from "./intel-qi.js";
import { ContextTables } from "./intel-context.js";
import { PasidTables } from "./intel-pasid.js";
import { DmarUnit, hx, UnitIo, type DriverContext } from "./intel-unit.js";
import { dmaAliases, pciMaxPasids, type KPciDev } from "./pci.js";

export { DMA_PTE_READ, DMA_PTE_WRITE } from "../spec/vtd/paging.js";
export { PageTables, type MapConflict } from "./intel-pgtable.js";
export { DMA_REMAP_FAULT_REASONS, IRQ_REMAP_FAULT_REASONS, type FaultRecord } from "./intel-faults.js";
export { QI_LENGTH } from "./intel-qi.js";
export { DmarUnit, type DriverContext, type InvalidationCounts } from "./intel-unit.js";
export { PasidTables, type PasidTable, type FirstStageOptions } from "./intel-pasid.js";

/** Interrupt remapping table: INTR_REMAP_TABLE_REG_SIZE = IRTA.S = 0xf, INTR_REMAP_TABLE_ENTRIES (65536) entries. */
const INTR_REMAP_TABLE_REG_SIZE = fieldMax(IRTA.S);
export const INTR_REMAP_TABLE_ENTRIES = irtaEntries(INTR_REMAP_TABLE_REG_SIZE);
/** The interrupt address range the driver reserves in every domain (IOAPIC_RANGE_START..END). */
export const IOAPIC_RANGE_START = MSI_ADDR_BASE;
export const IOAPIC_RANGE_END = MSI_ADDR_LAST;

const pad = (n: number, w: number): string => n.toString(16).padStart(w, "0");
const devfnOf = (device: number, fn: number): number => requesterId({ bus: 0, device, fn });
/** Physical addresses in the DMAR log lines are printed as 14 hex digits (%016llx less the 0x). */
const ADDR_DIGITS = 14;

export class IntelIommuDriver implements IommuOps<DmarUnit> {
  readonly kind = "intel";
  readonly units: DmarUnit[] = [];
  /** The static identity domain (si_domain), made on first use. */
  private siDomain: IommuDomain | null = null;
  table: DmarTable | null = null;
  readonly rmrrs: { base: number; end: number; devices: KPciDev[]; scopes: DmarDeviceScope[] }[] = [];
  readonly faults: FaultRecord[] = [];
  private readonly ctx: DriverContext;
  private readonly io: UnitIo;
  private readonly qi: QueuedInvalidation;
  private readonly ctxTables: ContextTables;
  /** Scalable mode: every device's PASID directory and tables. */
  readonly pasid: PasidTables;

  constructor(ctx: DriverContext) {
    this.ctx = ctx;
    this.io = new UnitIo(ctx);
    this.qi = new QueuedInvalidation(ctx, this.io);
    this.ctxTables = new ContextTables(ctx, this.qi);
    this.pasid = new PasidTables(ctx, {
      pasidCache: (u, g, did, pasid) => this.qi.pasidCache(u, g, did, pasid),
      piotlb: (u, did, pasid, pfn, pages) => this.qi.piotlb(u, did, pasid, pfn, pages),
      iotlbDomain: (u, did) => this.flushIotlbDomain(u, did),
      writeBufferFlush: (u) => this.flushWriteBuffer(u),
    });
  }

  private r32(u: DmarUnit, off: number): number {
    return this.io.r32(u, off);
  }

  private w32(u: DmarUnit, off: number, v: number): void {
    this.io.w32(u, off, v);
  }

  private gcmdWait(u: DmarUnit, value: number, status: number, set: boolean, what: string): void {
    this.io.gcmdWait(u, value, status, set, what);
  }

  // ---- DMAR table (dmar_table_init) ----

  /** Parses the DMAR, registers units (reading VER/CAP/ECAP through MMIO) and logs what Linux logs. */
  parseTable(bytes: Uint8Array): boolean {
    const { log } = this.ctx;
    let t: DmarTable;
    try {
      t = decodeDmar(bytes);
    } catch (e) {
      log.warn(`DMAR: [Firmware Bug]: ${(e as Error).message}`);
      return false;
    }
    this.table = t;
    log.info(`DMAR: Host address width ${t.hostAddressWidth}`);
    for (const s of t.structures) {
      if (s.type === "DRHD") {
        log.info(`DMAR: DRHD base: 0x${pad(Number(BigInt(s.registerBase)), ADDR_DIGITS)} flags: 0x${hx(s.flags.raw)}`);
        const u = new DmarUnit(this.units.length, Number(BigInt(s.registerBase)), s.flags.includePciAll, s.scopes);
        u.version = this.r32(u, DMAR_VER_REG);
        ({ lo: u.capLo, hi: u.capHi } = this.io.r64(u, DMAR_CAP_REG));
        ({ lo: u.ecapLo, hi: u.ecapHi } = this.io.r64(u, DMAR_ECAP_REG));
        if (u.capLo === 0xffffffff && u.capHi === 0xffffffff) {
          log.warn(`DMAR: [Firmware Bug]: ${u.name}: reading registers at ${hx(u.base)} returns all ones`);
          continue;
        }
        // alloc_iommu: sm_supported is known from here on, and the widths the unit's tables can use with it; a unit
        // whose first-stage widths and SAGAW have none in common is given up (iommu_calculate_agaw < 0).
        u.sm = (this.ctx.scalableMode ?? false) && u.hasSmts;
        if (u.usableSagaw === 0) {
          log.err(`DMAR: Cannot get a valid agaw for iommu (seq_id = ${u.seq})`);
          continue;
        }
        u.ioapicIds = s.scopes.filter((x) => x.type === "ioapic").map((x) => x.enumerationId);
        log.info(`DMAR: ${u.name}: reg_base_addr ${hx(u.base)} ver ${u.versionString} cap ${u.cap.toString(16)} ecap ${u.ecap.toString(16)}`);
        this.units.push(u);
      } else if (s.type === "RMRR") {
        const base = Number(BigInt(s.base));
        const end = Number(BigInt(s.limit));
        log.info(`DMAR: RMRR base: 0x${pad(base, ADDR_DIGITS)} end: 0x${pad(end, ADDR_DIGITS)}`);
        this.rmrrs.push({ base, end, devices: [], scopes: s.scopes });
      }
    }
    return this.units.length > 0;
  }

  /** Resolves every DRHD and RMRR device scope to the enumerated PCI devices (dmar_dev_scope_init). */
  resolveScopes(devices: KPciDev[]): void {
    const byRid = new Map(devices.map((d) => [d.rid, d]));
    const resolve = (sc: DmarDeviceScope): KPciDev | null => {
      if (sc.type !== "endpoint" && sc.type !== "bridge") return null;
      let bus = sc.startBus;
      let dev: KPciDev | undefined;
      for (let i = 0; i < sc.path.length; i++) {
        const p = sc.path[i]!;
        dev = byRid.get(ridOf(bus, devfnOf(p.device, p.function)));
        if (dev === undefined) return null;
        if (i < sc.path.length - 1) {
          if (dev.secondary === null) return null;
          bus = dev.secondary;
        }
      }
      return dev ?? null;
    };
    for (const u of this.units) u.scopeDevices = u.scopes.map(resolve).filter((d): d is KPciDev => d !== null);
    for (const r of this.rmrrs) r.devices = r.scopes.map(resolve).filter((d): d is KPciDev => d !== null);
  }

  /** device_to_iommu: a DRHD listing the device or a bridge above it, else the INCLUDE_PCI_ALL unit. */
  unitFor(dev: KPciDev): DmarUnit | null {
    for (const u of this.units) {
      for (const s of u.scopeDevices) {
        if (s === dev) return u;
        for (let up = dev.parent; up !== null; up = up.parent) if (up === s && s.secondary !== null) return u;
      }
      if (u.includeAll) return u;
    }
    return null;
  }

  // ---- Queued invalidation (intel-qi.ts) ----

  enableQi(u: DmarUnit): void {
    this.qi.enable(u);
  }

  /** Submits descriptors followed by a wait descriptor with status write, and polls for completion. */
  qiSubmit(u: DmarUnit, descs: readonly Descriptor[]): void {
    this.qi.submit(u, descs);
  }

  flushContextGlobal(u: DmarUnit): void {
    this.qi.contextGlobal(u);
  }

  flushContextDevice(u: DmarUnit, did: number, sid: number): void {
    this.qi.contextDevice(u, did, sid);
  }

  flushIotlbGlobal(u: DmarUnit): void {
    this.qi.iotlbGlobal(u);
  }

  flushIotlbDomain(u: DmarUnit, did: number): void {
    this.qi.iotlbDomain(u, did);
  }

  /** qi_flush_piotlb: the translations of (did, pasid) for `pages` pages from `pfn`, or all of them when null. */
  flushPiotlb(u: DmarUnit, did: number, pasid: number, pfn: number, pages: number | null): void {
    this.qi.piotlb(u, did, pasid, pfn, pages);
  }

  /** iommu_flush_iotlb_psi: page-selective with the covering power-of-two mask, or domain-selective. */
  flushIotlbPsi(u: DmarUnit, did: number, pfn: number, pages: number): void {
    this.qi.iotlbPsi(u, did, pfn, pages);
  }

  flushIecGlobal(u: DmarUnit): void {
    this.qi.iecGlobal(u);
  }

  /** Index-selective interrupt entry cache invalidation (qi_flush_iec). */
  flushIecIndex(u: DmarUnit, index: number): void {
    this.qi.iecIndex(u, index);
  }

  // ---- Interrupt remapping (intel_setup_irq_remapping, intel_enable_irq_remapping) ----

  /** Enables interrupt remapping on every unit that has it; returns false when some unit lacks it. */
  enableIrqRemapping(): boolean {
    const { log, pages } = this.ctx;
    if (this.units.length === 0 || !this.units.every((u) => u.hasIr)) return false;
    for (const u of this.units) {
      for (const id of u.ioapicIds) log.info(`DMAR-IR: IOAPIC id ${id} under DRHD base  0x${hx(u.base)} IOMMU ${u.seq}`);
    }
    const eim = false;
    for (const u of this.units) {
      u.irt = pages.alloc((INTR_REMAP_TABLE_ENTRIES * IRTE_SIZE) / PAGE_SIZE_4K, "any");
      this.enableQi(u);
      const irta = encodeIrta(u.irt, INTR_REMAP_TABLE_REG_SIZE, eim);
      this.io.w64(u, DMAR_IRTA_REG, irta.hi * TWO32 + irta.lo);
      this.gcmdWait(u, u.gcmd | GCMD_SIRTP, GSTS_IRTPS, true, "set interrupt remapping table pointer");
      this.flushIecGlobal(u);
      u.gcmd = (u.gcmd | GCMD_IRE) & ~GCMD_CFI;
      this.gcmdWait(u, u.gcmd, GSTS_IRES, true, "interrupt remapping enable");
      u.irEnabled = true;
    }
    log.info(`DMAR-IR: Enabled IRQ remapping in ${eim ? "x2apic" : "xapic"} mode`);
    return true;
  }

  /** Allocates an IRTE for an interrupt and returns the MSI address/data the device must use. */
  allocIrte(
    u: DmarUnit,
    vector: number,
    destApicId: number,
    source: { sid: number; svt: number; sq?: number },
  ): { index: number; address: number; data: number } {
    const index = u.irtNext++;
    if (index >= INTR_REMAP_TABLE_ENTRIES) throw new IommuError("DMAR_IRTE", `${u.name}: no free interrupt remapping table entry`);
    const words = encodeIrte({ vector, destination: destApicId, sid: source.sid, svt: source.svt, sq: source.sq ?? 0 }, false);
    writeIrte(this.ctx.port.memory, u.irt, index, words);
    const msi = encodeRemappableMsi(index, 0);
    return { index, address: msi.address, data: msi.data };
  }

  /** Source validation for a PCI device's MSIs (set_msi_sid): its id, or only the bus behind a PCIe-to-PCI bridge. */
  msiSourceFor(dev: KPciDev, noSid: boolean): { sid: number; svt: number } {
    if (noSid) return { sid: 0, svt: SVT_NO_VERIFY };
    const aliases = dmaAliases(dev);
    const last = aliases[aliases.length - 1]!;
    if (ridBus(last.rid) !== dev.bus) {
      // set_irte_verify_bus(alias bus, device bus): SID bits 15:8 start bus, 7:0 end bus.
      const bus = ridBus(last.rid);
      return { sid: ridOf(bus, bus), svt: SVT_VERIFY_BUS };
    }
    return { sid: dev.rid, svt: SVT_VERIFY_SID_SQ };
  }

  // ---- DMA remapping bring-up (init_dmars) ----

  /**
   * iommu_init_domains: domain id 0 reserved, and in scalable mode (sm_supported, decided here for the unit) also
   * FLPT_DEFAULT_DID, the id of first-stage and pass-through PASID entries.
   */
  initDomains(u: DmarUnit): void {
    u.sm = (this.ctx.scalableMode ?? false) && u.hasSmts;
    u.domainIds = new Uint8Array(u.ndoms);
    u.domainIds[0] = 1; // id 0: caching mode tags invalid entries with it, and it marks "no id"
    if (u.sm) u.domainIds[FLPT_DEFAULT_DID] = 1;
  }

  /**
   * Allocates the root table and latches it (iommu_alloc_root_entry, iommu_set_root_entry): RTADDR with TTM
   * 01b in scalable mode, then the context cache, in scalable mode the PASID cache, and the IOTLB, all global.
   */
  setRootEntry(u: DmarUnit): void {
    if (u.rootTable === 0) u.rootTable = this.ctx.pages.alloc(1, "any");
    this.io.w64(u, DMAR_RTADDR_REG, u.sm ? withField(BigInt(u.rootTable), RTADDR.TTM, TTM_SCALABLE) : u.rootTable);
    this.gcmdWait(u, u.gcmd | GCMD_SRTP, GSTS_RTPS, true, "set root table pointer");
    this.flushContextGlobal(u);
    if (u.sm) this.qi.pasidCache(u, PC_G_GLOBAL, 0, 0);
    this.flushIotlbGlobal(u);
  }

  /** iommu_flush_write_buffer: GCMD.WBF and a wait for GSTS.WBFS to clear, only on units with CAP.RWBF. */
  flushWriteBuffer(u: DmarUnit): void {
    if (!u.requiresWriteBufferFlush) return;
    this.gcmdWait(u, u.gcmd | GCMD_WBF, GSTS_WBFS, false, "write buffer flush");
  }

  /** Programs the fault event interrupt (dmar_set_interrupt) and unmasks it. */
  setFaultInterrupt(u: DmarUnit, vector: number, apicId: number): void {
    u.faultVector = vector;
    const msi = encodeCompatMsi({ vector, destination: apicId });
    this.w32(u, DMAR_FEDATA_REG, msi.data);
    this.w32(u, DMAR_FEADDR_REG, msi.address);
    this.w32(u, DMAR_FEUADDR_REG, msi.addressHi);
    this.w32(u, DMAR_FECTL_REG, 0);
    // Clear faults left from before (clear_primary_faults).
    this.handleFault(u, false);
  }

  enableTranslation(u: DmarUnit): void {
    u.gcmd |= GCMD_TE;
    this.gcmdWait(u, u.gcmd, GSTS_TES, true, "translation enable");
    u.translationEnabled = true;
    // iommu_disable_protect_mem_regions: PMEN off.
    this.w32(u, DMAR_PMEN_REG, 0);
  }

  /** dmar_fault: reads and clears every pending fault record, logging each as Linux does. */
  handleFault(u: DmarUnit, log = true): FaultRecord[] {
    return handleFaults(this.io, this.ctx.log, u, log, this.faults);
  }

  // ---- Context entries (intel-context.ts) ----

  /** Address of the context entry for `rid`, creating the context table (iommu_context_addr). */
  contextEntry(u: DmarUnit, rid: number): number {
    return this.ctxTables.entry(u, rid);
  }

  /**
   * domain_context_mapping_one: a present context entry for `rid` pointing at the domain (legacy: multi-level
   * with its page tables, or pass-through; scalable: the device's PASID directory). An entry already present is
   * left alone, as Linux does.
   */
  mapContext(u: DmarUnit, rid: number, did: number, passThrough: boolean, pgd: number, levels: number, dev: KPciDev | null = null): boolean {
    const table = u.sm && dev !== null ? this.pasid.table(dev) : null;
    return this.ctxTables.map(u, rid, { did, passThrough, pgd, levels, pasidTable: table, pdts: table === null ? 0 : this.pasid.pdts(table) });
  }

  /** Clears a context entry and invalidates it (domain_context_clear_one). */
  clearContext(u: DmarUnit, rid: number, did: number, hwPassThrough = false): void {
    this.ctxTables.clear(u, rid, did, hwPassThrough);
  }

  /** Writes zeros over the context entry of `rid` (context_clear_entry), without invalidating. */
  zeroContext(u: DmarUnit, rid: number): void {
    this.ctxTables.zero(u, rid);
  }

  /**
   * Scalable mode: lets the device issue requests with a PASID (PASIDE in the context entries of the device and
   * its aliases), for PASIDs whose entries are set with the `pasid` tables' setup calls. False in legacy mode.
   */
  enablePasid(dev: KPciDev, unit: DmarUnit, did: number): boolean {
    let ok = unit.sm;
    for (const a of dmaAliases(dev)) ok = this.ctxTables.enablePasid(unit, a.rid, did) && ok;
    return ok;
  }

  /** Lowest free domain id (domain_attach_iommu). */
  allocDid(u: DmarUnit): number {
    const i = u.domainIds.indexOf(0);
    if (i < 0) {
      this.ctx.log.err(`DMAR: ${u.name}: No free domain ids`);
      throw new IommuError("DMAR_NO_DID", `${u.name}: no free domain ids`);
    }
    u.domainIds[i] = 1;
    return i;
  }

  freeDid(u: DmarUnit, did: number): void {
    if (did > 0) u.domainIds[did] = 0;
  }

  /** Reads the GSTS of a unit (for sysfs and checks). */
  gsts(u: DmarUnit): number {
    return this.r32(u, DMAR_GSTS_REG);
  }

  // ---- IommuOps (intel_iommu_ops) ----

  sysfsName(u: DmarUnit): string {
    return u.name;
  }

  /**
   * first_level_by_default: legacy mode has second-level tables only; in scalable mode (every unit) the one stage
   * all units support, or, when they have both, first-stage for every domain but the unmanaged ones.
   */
  firstLevelByDefault(type: DomainType): boolean {
    if (this.units.length === 0 || !this.units.every((u) => u.sm)) return false;
    const fl = this.units.every((u) => u.hasFsts);
    const sl = this.units.every((u) => u.hasSsts);
    if (fl !== sl) return fl;
    return type !== "unmanaged";
  }

  /**
   * intel_iommu_domain_alloc: the identity domain is one shared si_domain (hardware pass-through when every unit
   * has it, else 1:1 page tables over usable RAM); DMA and unmanaged domains get page tables of the unit's levels,
   * first-stage tables when the domain uses first-level translation (its aperture then ends below the canonical
   * hole: one bit less).
   */
  domainAlloc(type: DomainType, unit: DmarUnit): IommuDomain {
    const { port, pages } = this.ctx;
    const firstLevel = this.firstLevelByDefault(type);
    if (type === "identity") {
      if (this.siDomain === null) {
        const hw = unit.hasPassThrough;
        const tables = hw ? null : new PageTables(port.memory, pages, unit.levels, firstLevel);
        this.siDomain = new IommuDomain("identity", tables, hw, 57);
        this.siDomain.firstLevel = tables !== null && firstLevel;
        if (tables !== null) {
          for (const r of port.firmware.e820) {
            if (r.type !== "usable") continue;
            tables.mapRange(r.base, r.base, r.end + 1 - r.base, IOMMU_READ | IOMMU_WRITE, this.ctx.superpage ?? true);
          }
        }
      }
      return this.siDomain;
    }
    const width = awWidth(awForLevels(unit.levels));
    const d = new IommuDomain(type, new PageTables(port.memory, pages, unit.levels, firstLevel), false, firstLevel ? width - 1 : width);
    d.firstLevel = firstLevel;
    return d;
  }

  /**
   * intel_iommu_probe_device: in scalable mode the device gets its PASID directory (intel_pasid_alloc_table),
   * sized for its PASIDs when both it (a PASID capability) and the unit (ECAP.PASID) take them.
   */
  probeDevice(dev: KPciDev, unit: DmarUnit): void {
    if (unit.sm) this.pasid.allocTable(dev, this.maxPasids(dev, unit));
  }

  /** min(pci_max_pasids, intel_pasid_max_id) for a device with PASID support (info->pasid_supported), else 0. */
  maxPasids(dev: KPciDev, unit: DmarUnit): number {
    if (!unit.sm || !unit.hasPasid) return 0;
    return Math.min(pciMaxPasids(this.ctx.port, dev), unit.pasidLimit, PASID_MAX);
  }

  /**
   * dmar_domain_attach_device: a domain id on the device's unit; in scalable mode the device's RID_PASID entry
   * (pass-through for the hardware pass-through identity domain, first-stage or second-stage after the domain);
   * then context entries for the device and its aliases.
   */
  attachDev(domain: IommuDomain, dev: KPciDev, unit: DmarUnit): void {
    let did = domain.dids.get(unit);
    if (did === undefined) {
      did = this.allocDid(unit);
      domain.dids.set(unit, did);
    }
    const levels = domain.tables?.levels ?? unit.levels;
    const pgd = domain.tables?.pgd ?? 0;
    if (unit.sm) {
      this.pasid.allocTable(dev, this.maxPasids(dev, unit));
      if (domain.passThrough) this.pasid.setupPassThrough(unit, dev, RID_PASID_DEFAULT);
      else if (domain.firstLevel) this.pasid.setupFirstStage(unit, dev, RID_PASID_DEFAULT, did, pgd, { levels });
      else this.pasid.setupSecondStage(unit, dev, RID_PASID_DEFAULT, did, pgd, levels);
    }
    for (const a of dmaAliases(dev)) this.mapContext(unit, a.rid, did, domain.passThrough, pgd, levels, dev);
  }

  /**
   * dmar_remove_one_dev_info: in scalable mode the RID_PASID entry torn down first (intel_pasid_tear_down_entry);
   * then domain_context_clear_one for the device and its aliases. With `flush`, the PASID entry's caches, the
   * context cache entry and the domain's IOTLB are invalidated; without, entries are only cleared.
   */
  detachDev(domain: IommuDomain, dev: KPciDev, unit: DmarUnit, flush: boolean): void {
    const did = domain.dids.get(unit) ?? 0;
    if (unit.sm) this.pasid.tearDown(unit, dev, RID_PASID_DEFAULT, { flush });
    for (const a of dmaAliases(dev)) {
      if (flush) this.clearContext(unit, a.rid, did, domain.passThrough);
      else this.zeroContext(unit, a.rid);
    }
    const at = domain.devices.indexOf(dev);
    if (at >= 0) domain.devices.splice(at, 1);
  }

  /** Blocks the device's DMA: context entries not present (requests fault), invalidated. */
  blockDev(dev: KPciDev, unit: DmarUnit, current: IommuDomain | null): void {
    if (current !== null) this.detachDev(current, dev, unit, true);
    else {
      if (unit.sm) this.pasid.tearDown(unit, dev, RID_PASID_DEFAULT);
      for (const a of dmaAliases(dev)) this.clearContext(unit, a.rid, 0);
    }
  }

  /** domain_exit: the domain ids back on every unit, the page tables freed (never the shared identity domain). */
  domainFree(domain: IommuDomain): void {
    if (domain === this.siDomain) return;
    for (const [u, did] of domain.dids) this.freeDid(u, did);
    domain.dids.clear();
    domain.tables?.free();
  }

  /** intel_flush_iotlb_all: PASID-selective PASID-based IOTLB invalidation for first-level domains. */
  flushIotlbAll(domain: IommuDomain): void {
    for (const [unit, did] of domain.dids) {
      if (domain.firstLevel) this.qi.piotlb(unit, did, RID_PASID_DEFAULT, 0, null);
      else this.flushIotlbDomain(unit, did);
    }
  }

  /** iommu_flush_iotlb_psi: page-selective within RID_PASID for first-level domains, else legacy IOTLB. */
  iotlbSync(domain: IommuDomain, pfn: number, pages: number): void {
    for (const [unit, did] of domain.dids) {
      if (domain.firstLevel) this.qi.piotlb(unit, did, RID_PASID_DEFAULT, pfn, Math.max(1, pages));
      else this.flushIotlbPsi(unit, did, pfn, pages);
    }
  }

  /**
   * __mapping_notify_one: caching mode makes a non-present to present change of a second-level table need an
   * invalidation too; otherwise (and for first-level tables) the write buffer flush.
   */
  iotlbSyncMap(domain: IommuDomain, pfn: number, pages: number): void {
    for (const [unit, did] of domain.dids) {
      if (unit.cachingMode && !domain.firstLevel) this.flushIotlbPsi(unit, did, pfn, pages);
      else if (unit.sm) this.flushWriteBuffer(unit);
    }
  }

  /** intel_iommu_get_resv_regions: RMRRs naming the device, the ISA bridge's floppy range, the interrupt window. */
  resvRegions(dev: KPciDev): ReservedRegion[] {
    const out: ReservedRegion[] = [];
    for (const r of this.rmrrs) {
      const hit = r.devices.some((d) => d === dev || (d.secondary !== null && isBelow(dev, d)));
      if (!hit) continue;
      out.push({ start: r.base, end: r.end, type: relaxableDirect(dev) ? "direct-relaxable" : "direct" });
    }
    if ((this.ctx.floppyWa ?? true) && isIsaBridge(dev)) {
      out.push({ start: 0, end: ISA_DMA_LAST, type: "direct-relaxable" });
    }
    out.push({ start: IOAPIC_RANGE_START, end: IOAPIC_RANGE_END, type: "msi" });
    return out;
  }
}

function isBelow(dev: KPciDev, bridge: KPciDev): boolean {
  for (let up = dev.parent; up !== null; up = up.parent) if (up === bridge) return true;
  return false;
}
