/**
 * The Intel VT-d driver of the simulated kernel, after Linux 6.1 (drivers/iommu/intel/{dmar.c,iommu.c,
 * irq_remapping.c}): parses the firmware's DMAR table with the acpi/ decoder, brings each unit up only through
 * MMIO register writes and tables it places in RAM with the kernel's page allocator (root table, context tables,
 * second-level page tables, the invalidation queue, the interrupt remapping table), handles fault interrupts by
 * reading the fault recording registers, and keeps domain ids the way Linux does (id 0 reserved, the lowest free
 * id on a domain's first attach to a unit).
 *
 * Register, table and descriptor formats come from spec/vtd (numbers, formats and their encoders; no hardware
 * objects). The unit's view is intel-unit.ts, queued invalidation intel-qi.ts, fault handling intel-faults.ts.
 */
import { decodeDmar, type DmarDeviceScope, type DmarTable } from "../acpi/dmar.js";
import { IommuError } from "../core/errors.js";
import { requesterId, ridBus, ridDevfn, ridOf } from "../core/pci.js";
import { HI_DWORD_OFFSET, TWO32 } from "../core/u64.js";
import { encodeCompatMsi, MSI_ADDR_BASE, MSI_ADDR_LAST } from "../spec/msi.js";
import { awForLevels, awWidth, CONTEXT_ENTRY_SIZE, contextEntryOffset, encodeContextEntry, encodeRootEntry, ENTRY_P, rootEntryOffset, TT_MULTI_LEVEL, TT_PASS_THROUGH } from "../spec/vtd/context.js";
import { fieldMax } from "../spec/vtd/fields.js";
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
  GSTS_IRES,
  GSTS_IRTPS,
  GSTS_RTPS,
  GSTS_TES,
  IRTA,
} from "../spec/vtd/registers.js";
import type { DomainType } from "./default-domain.js";
import { handleFaults, type FaultRecord } from "./intel-faults.js";
import { PageTables } from "./intel-pgtable.js";
import { IommuDomain, type ReservedRegion } from "./iommu-domain.js";
import { isIsaBridge, ISA_DMA_LAST, relaxableDirect } from "./iommu.js";
import { IOMMU_READ, IOMMU_WRITE, type IommuOps } from "./iommu-ops.js";
import { QueuedInvalidation } from "./intel-qi.js";
import { DmarUnit, hx, UnitIo, type DriverContext } from "./intel-unit.js";
import { dmaAliases, type KPciDev } from "./pci.js";

export { DMA_PTE_READ, DMA_PTE_WRITE } from "../spec/vtd/paging.js";
export { PageTables, type MapConflict } from "./intel-pgtable.js";
export { DMA_REMAP_FAULT_REASONS, IRQ_REMAP_FAULT_REASONS, type FaultRecord } from "./intel-faults.js";
export { QI_LENGTH } from "./intel-qi.js";
export { DmarUnit, type DriverContext, type InvalidationCounts } from "./intel-unit.js";

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

  constructor(ctx: DriverContext) {
    this.ctx = ctx;
    this.io = new UnitIo(ctx);
    this.qi = new QueuedInvalidation(ctx, this.io);
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

  initDomains(u: DmarUnit): void {
    u.domainIds = new Uint8Array(u.ndoms);
    u.domainIds[0] = 1; // id 0: caching mode tags invalid entries with it, and it marks "no id"
  }

  /** Allocates the root table and latches it (iommu_alloc_root_entry, iommu_set_root_entry). */
  setRootEntry(u: DmarUnit): void {
    if (u.rootTable === 0) u.rootTable = this.ctx.pages.alloc(1, "any");
    this.io.w64(u, DMAR_RTADDR_REG, u.rootTable);
    this.gcmdWait(u, u.gcmd | GCMD_SRTP, GSTS_RTPS, true, "set root table pointer");
    this.flushContextGlobal(u);
    this.flushIotlbGlobal(u);
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

  // ---- Context entries ----

  /** Address of the context entry for (bus, devfn), creating the context table (iommu_context_addr). */
  contextEntry(u: DmarUnit, rid: number): number {
    const bus = ridBus(rid);
    let ct = u.contextTables.get(bus);
    const mem = this.ctx.port.memory;
    if (ct === undefined) {
      ct = this.ctx.pages.alloc(1, "any");
      u.contextTables.set(bus, ct);
      // Linux writes the low quad of the root entry only (the upper one is reserved and zero).
      const [lo = 0, hi = 0] = encodeRootEntry({ present: true, contextTable: ct });
      const re = u.rootTable + rootEntryOffset(bus);
      mem.write32(re, lo);
      mem.write32(re + HI_DWORD_OFFSET, hi);
    }
    return ct + contextEntryOffset(ridDevfn(rid));
  }

  /**
   * domain_context_mapping_one: a present context entry for `rid` pointing at the domain (multi-level with its
   * page tables, or pass-through). An entry already present is left alone, as Linux does.
   */
  mapContext(u: DmarUnit, rid: number, did: number, passThrough: boolean, pgd: number, levels: number): boolean {
    const mem = this.ctx.port.memory;
    const ce = this.contextEntry(u, rid);
    if ((mem.read32(ce) & ENTRY_P) !== 0) return false;
    const words = encodeContextEntry({
      present: true,
      fpd: false,
      tt: passThrough ? TT_PASS_THROUGH : TT_MULTI_LEVEL,
      pageTable: passThrough ? 0 : pgd,
      aw: awForLevels(passThrough ? u.levels : levels),
      did,
    });
    // The upper quad first, the low dword (with the present bit) last.
    for (const i of [2, 3, 1, 0] as const) mem.write32(ce + 4 * i, words[i]);
    if (u.cachingMode) {
      this.flushContextDevice(u, 0, rid);
      this.flushIotlbDomain(u, did);
    }
    return true;
  }

  /** Clears a context entry and invalidates it (domain_context_clear_one). */
  clearContext(u: DmarUnit, rid: number, did: number): void {
    this.zeroContext(u, rid);
    this.flushContextDevice(u, did, rid);
    this.flushIotlbDomain(u, did);
  }

  /** Writes zeros over the context entry of `rid` (context_clear_entry), without invalidating. */
  zeroContext(u: DmarUnit, rid: number): void {
    const mem = this.ctx.port.memory;
    const ce = this.contextEntry(u, rid);
    for (let i = 0; i < CONTEXT_ENTRY_SIZE; i += 4) mem.write32(ce + i, 0);
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
   * intel_iommu_domain_alloc: the identity domain is one shared si_domain (hardware pass-through when every unit
   * has it, else 1:1 page tables over usable RAM); DMA and unmanaged domains get page tables of the unit's levels.
   */
  domainAlloc(type: DomainType, unit: DmarUnit): IommuDomain {
    const { port, pages } = this.ctx;
    if (type === "identity") {
      if (this.siDomain === null) {
        const hw = unit.hasPassThrough;
        const tables = hw ? null : new PageTables(port.memory, pages, unit.levels);
        this.siDomain = new IommuDomain("identity", tables, hw, 57);
        if (tables !== null) {
          for (const r of port.firmware.e820) {
            if (r.type !== "usable") continue;
            tables.mapRange(r.base, r.base, r.end + 1 - r.base, IOMMU_READ | IOMMU_WRITE, this.ctx.superpage ?? true);
          }
        }
      }
      return this.siDomain;
    }
    return new IommuDomain(type, new PageTables(port.memory, pages, unit.levels), false, awWidth(awForLevels(unit.levels)));
  }

  /** dmar_domain_attach_device: a domain id on the device's unit and context entries for all its aliases. */
  attachDev(domain: IommuDomain, dev: KPciDev, unit: DmarUnit): void {
    let did = domain.dids.get(unit);
    if (did === undefined) {
      did = this.allocDid(unit);
      domain.dids.set(unit, did);
    }
    const levels = domain.tables?.levels ?? unit.levels;
    for (const a of dmaAliases(dev)) this.mapContext(unit, a.rid, did, domain.passThrough, domain.tables?.pgd ?? 0, levels);
  }

  /**
   * domain_context_clear_one for the device and its aliases: context entries cleared; with `flush`, the context
   * cache entry and the domain's IOTLB invalidated.
   */
  detachDev(domain: IommuDomain, dev: KPciDev, unit: DmarUnit, flush: boolean): void {
    const did = domain.dids.get(unit) ?? 0;
    for (const a of dmaAliases(dev)) {
      if (flush) this.clearContext(unit, a.rid, did);
      else this.zeroContext(unit, a.rid);
    }
    const at = domain.devices.indexOf(dev);
    if (at >= 0) domain.devices.splice(at, 1);
  }

  /** Blocks the device's DMA: context entries not present (requests fault with reason 0x2), invalidated. */
  blockDev(dev: KPciDev, unit: DmarUnit, current: IommuDomain | null): void {
    if (current !== null) this.detachDev(current, dev, unit, true);
    else for (const a of dmaAliases(dev)) this.clearContext(unit, a.rid, 0);
  }

  /** domain_exit: the domain ids back on every unit, the page tables freed (never the shared identity domain). */
  domainFree(domain: IommuDomain): void {
    if (domain === this.siDomain) return;
    for (const [u, did] of domain.dids) this.freeDid(u, did);
    domain.dids.clear();
    domain.tables?.free();
  }

  flushIotlbAll(domain: IommuDomain): void {
    for (const [unit, did] of domain.dids) this.flushIotlbDomain(unit, did);
  }

  iotlbSync(domain: IommuDomain, pfn: number, pages: number): void {
    for (const [unit, did] of domain.dids) this.flushIotlbPsi(unit, did, pfn, pages);
  }

  /** Caching mode: a non-present to present change must be invalidated too. */
  iotlbSyncMap(domain: IommuDomain, pfn: number, pages: number): void {
    for (const [unit, did] of domain.dids) if (unit.cachingMode) this.flushIotlbPsi(unit, did, pfn, pages);
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
