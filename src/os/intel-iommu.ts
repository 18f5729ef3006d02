/**
 * The Intel VT-d driver of the simulated kernel, after Linux 6.1 (drivers/iommu/intel/{dmar.c,iommu.c,
 * irq_remapping.c}): parses the firmware's DMAR table with the acpi/ decoder, brings each unit up only through
 * MMIO register writes and tables it places in RAM with the kernel's page allocator (root table, context tables,
 * second-level page tables, the invalidation queue, the interrupt remapping table), handles fault interrupts by
 * reading the fault recording registers, and keeps domain ids the way Linux does (id 0 reserved, the lowest free
 * id on a domain's first attach to a unit).
 *
 * Register and table formats come from the VT-d specification (constants from hw/vtd/spec.ts and the IRTE
 * encoders of hw/vtd/intremap-format.ts: numbers and formats, no hardware objects).
 */
import { decodeDmar, type DmarDeviceScope, type DmarTable } from "../acpi/dmar.js";
import { IommuError } from "../core/errors.js";
import { encodeIrta, encodeIrte, encodeRemappableMsi, writeIrte, SVT_NO_VERIFY, SVT_VERIFY_BUS, SVT_VERIFY_SID_SQ } from "../hw/vtd/intremap-format.js";
import {
  DMAR_CAP_REG,
  DMAR_ECAP_REG,
  DMAR_FEADDR_REG,
  DMAR_FECTL_REG,
  DMAR_FEDATA_REG,
  DMAR_FEUADDR_REG,
  DMAR_FSTS_REG,
  DMAR_GCMD_REG,
  DMAR_GSTS_REG,
  DMAR_IQA_REG,
  DMAR_IQT_REG,
  DMAR_IRTA_REG,
  DMAR_PMEN_REG,
  DMAR_RTADDR_REG,
  DMAR_VER_REG,
  FSTS_IQE,
  FSTS_PFO,
  FSTS_PPF,
  GCMD_CFI,
  GCMD_IRE,
  GCMD_QIE,
  GCMD_SIRTP,
  GCMD_SRTP,
  GCMD_TE,
  GSTS_IRES,
  GSTS_IRTPS,
  GSTS_QIES,
  GSTS_RTPS,
  GSTS_TES,
} from "../hw/vtd/spec.js";
import type { KernelLog } from "./log.js";
import type { PageAllocator } from "./pages.js";
import { dmaAliases, type KPciDev } from "./pci.js";
import type { MachinePort } from "./port.js";

const TWO32 = 0x1_0000_0000;
const PAGE = 4096;

/** Invalidation descriptor types and fields (VT-d spec 6.5.2; Linux's QI_* macros). */
const QI_CC_TYPE = 0x1;
const QI_IOTLB_TYPE = 0x2;
const QI_IEC_TYPE = 0x4;
const QI_IWD_TYPE = 0x5;
const QI_IWD_STATUS_WRITE = 1 << 5;
const QI_IN_USE = 1;
const QI_DONE = 2;
/** Descriptors in the queue: one 4 KiB page of 16-byte descriptors (IQA.QS = 0). */
export const QI_LENGTH = 256;
const QI_IOTLB_DW = 1 << 6;
const QI_IOTLB_DR = 1 << 7;
/** Granularities (G field, bits 5:4). */
export const GRAN_GLOBAL = 1;
export const GRAN_DOMAIN = 2;
export const GRAN_PAGE = 3;
/** Second-level PTE bits (VT-d spec 9.8). */
export const DMA_PTE_READ = 1;
export const DMA_PTE_WRITE = 2;
const DMA_PTE_LARGE_PAGE = 1 << 7;
/** Context entry translation types (9.3). */
const CONTEXT_TT_MULTI_LEVEL = 0;
const CONTEXT_TT_PASS_THROUGH = 2;
/** Interrupt remapping table: INTR_REMAP_TABLE_ENTRIES (65536), IRTA.S = 0xf. */
export const INTR_REMAP_TABLE_ENTRIES = 65536;
const INTR_REMAP_TABLE_REG_SIZE = 0xf;
/** The interrupt address range the driver reserves in every domain (IOAPIC_RANGE_START..END). */
export const IOAPIC_RANGE_START = 0xfee00000;
export const IOAPIC_RANGE_END = 0xfeefffff;

/** Fault reason texts of Linux's dma_remap_fault_reasons[] (drivers/iommu/intel/dmar.c). */
export const DMA_REMAP_FAULT_REASONS = [
  "Software",
  "Present bit in root entry is clear",
  "Present bit in context entry is clear",
  "Invalid context entry",
  "Access beyond MGAW",
  "PTE Write access is not set",
  "PTE Read access is not set",
  "Next page table ptr is invalid",
  "Root table address invalid",
  "Context table ptr is invalid",
  "non-zero reserved fields in RTP",
  "non-zero reserved fields in CTP",
  "non-zero reserved fields in PTE",
  "PCE for translation request specifies blocking",
];
/** irq_remap_fault_reasons[] for reasons 0x20.. */
export const IRQ_REMAP_FAULT_REASONS = [
  "Detected reserved fields in the decoded interrupt-remapped request",
  "Interrupt index exceeded the interrupt-remapping table size",
  "Present field in the IRTE entry is clear",
  "Error accessing interrupt-remapping table pointed by IRTA_REG",
  "Detected reserved fields in the IRTE entry",
  "Blocked a compatibility format interrupt request",
  "Blocked an interrupt request due to source-id verification failure",
];

export interface InvalidationCounts {
  contextGlobal: number;
  contextDevice: number;
  iotlbGlobal: number;
  iotlbDomain: number;
  iotlbPage: number;
  iec: number;
  waits: number;
}

export interface FaultRecord {
  unit: string;
  /** "DMA Read", "DMA Write" or "INTR-REMAP". */
  type: string;
  sourceId: number;
  /** Fault address (DMA) or interrupt index (remapping), as a number. */
  addr: number;
  reason: number;
  reasonText: string;
  ns: number;
}

/** One remapping unit as the driver knows it (Linux's struct intel_iommu + struct dmar_drhd_unit). */
export class DmarUnit {
  readonly seq: number;
  readonly name: string;
  readonly base: number;
  readonly includeAll: boolean;
  readonly scopes: DmarDeviceScope[];
  /** Devices the DRHD lists (resolved at device scope init); bridges cover their subtree. */
  scopeDevices: KPciDev[] = [];
  ioapicIds: number[] = [];
  capLo = 0;
  capHi = 0;
  ecapLo = 0;
  ecapHi = 0;
  version = 0;
  /** Soft copy of GCMD (the persistent command bits the driver has set). */
  gcmd = 0;
  rootTable = 0;
  readonly contextTables = new Map<number, number>();
  qiBase = 0;
  qiStatus = 0;
  qiTail = 0;
  irt = 0;
  irtNext = 0;
  irEnabled = false;
  translationEnabled = false;
  domainIds: Uint8Array = new Uint8Array(0);
  faultVector = 0;
  readonly inv: InvalidationCounts = { contextGlobal: 0, contextDevice: 0, iotlbGlobal: 0, iotlbDomain: 0, iotlbPage: 0, iec: 0, waits: 0 };

  constructor(seq: number, base: number, includeAll: boolean, scopes: DmarDeviceScope[]) {
    this.seq = seq;
    this.name = `dmar${seq}`;
    this.base = base;
    this.includeAll = includeAll;
    this.scopes = scopes;
  }

  get cap(): bigint {
    return (BigInt(this.capHi) << 32n) | BigInt(this.capLo);
  }

  get ecap(): bigint {
    return (BigInt(this.ecapHi) << 32n) | BigInt(this.ecapLo);
  }

  /** cap_ndoms: 2^(4 + 2 * ND). */
  get ndoms(): number {
    return 2 ** (4 + 2 * (this.capLo & 7));
  }

  get cachingMode(): boolean {
    return (this.capLo & (1 << 7)) !== 0;
  }

  get sagaw(): number {
    return (this.capLo >>> 8) & 0x1f;
  }

  /** MGAW + 1. */
  get mgaw(): number {
    return ((this.capLo >>> 16) & 0x3f) + 1;
  }

  get pageSelective(): boolean {
    return (this.capHi & (1 << 7)) !== 0; // bit 39
  }

  get maxAddressMask(): number {
    return (this.capHi >>> 16) & 0x3f; // bits 53:48
  }

  get drain(): boolean {
    return (this.capHi & (3 << 22)) !== 0; // DWD 54, DRD 55
  }

  get superpages(): number {
    return (this.capHi >>> 2) & 0xf; // bits 37:34
  }

  get hasQi(): boolean {
    return (this.ecapLo & 2) !== 0;
  }

  get hasIr(): boolean {
    return (this.ecapLo & 8) !== 0;
  }

  get hasEim(): boolean {
    return (this.ecapLo & 16) !== 0;
  }

  get hasPassThrough(): boolean {
    return (this.ecapLo & 64) !== 0;
  }

  /** Page-table levels of this unit's widest supported width up to 57 bits (iommu_calculate_agaw). */
  get levels(): number {
    for (const [bit, lv] of [[3, 5], [2, 4], [1, 3], [0, 2]] as const) if ((this.sagaw >>> bit) & 1) return lv;
    return 3;
  }

  /** Domain ids in use (bit 0 included, as Linux counts it for domains_used). */
  domainsUsed(): number {
    let n = 0;
    for (const b of this.domainIds) n += b;
    return n;
  }
}

export interface DriverContext {
  port: MachinePort;
  log: KernelLog;
  pages: PageAllocator;
  /** Time the hardware takes per invalidation wait (simulated), in ns. */
  qiWaitNs?: number;
  advance(ns: number): void;
}

const hx = (n: number): string => n.toString(16);
const pad = (n: number, w: number): string => n.toString(16).padStart(w, "0");

export class IntelIommuDriver {
  readonly units: DmarUnit[] = [];
  table: DmarTable | null = null;
  readonly rmrrs: { base: number; end: number; devices: KPciDev[]; scopes: DmarDeviceScope[] }[] = [];
  readonly faults: FaultRecord[] = [];
  private readonly ctx: DriverContext;

  constructor(ctx: DriverContext) {
    this.ctx = ctx;
  }

  private r32(u: DmarUnit, off: number): number {
    return this.ctx.port.mmioRead32(u.base + off) >>> 0;
  }

  private w32(u: DmarUnit, off: number, v: number): void {
    this.ctx.port.mmioWrite(u.base + off, 4, v >>> 0);
  }

  private w64(u: DmarUnit, off: number, v: number): void {
    this.ctx.port.mmioWrite(u.base + off, 8, v);
  }

  /** Writes GCMD and waits for the status bit (IOMMU_WAIT_OP); the model completes at once. */
  private gcmdWait(u: DmarUnit, value: number, status: number, set: boolean, what: string): void {
    this.w32(u, DMAR_GCMD_REG, value);
    for (let i = 0; i < 1000; i++) {
      const sts = this.r32(u, DMAR_GSTS_REG);
      if (((sts & status) !== 0) === set) return;
    }
    throw new IommuError("DMAR_HW", `${u.name}: ${what} did not complete (GSTS 0x${hx(this.r32(u, DMAR_GSTS_REG))})`);
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
        log.info(`DMAR: DRHD base: 0x${pad(Number(BigInt(s.registerBase)), 14)} flags: 0x${hx(s.flags.raw)}`);
        const u = new DmarUnit(this.units.length, Number(BigInt(s.registerBase)), s.flags.includePciAll, s.scopes);
        u.version = this.r32(u, DMAR_VER_REG);
        u.capLo = this.r32(u, DMAR_CAP_REG);
        u.capHi = this.r32(u, DMAR_CAP_REG + 4);
        u.ecapLo = this.r32(u, DMAR_ECAP_REG);
        u.ecapHi = this.r32(u, DMAR_ECAP_REG + 4);
        if (u.capLo === 0xffffffff && u.capHi === 0xffffffff) {
          log.warn(`DMAR: [Firmware Bug]: ${u.name}: reading registers at ${hx(u.base)} returns all ones`);
          continue;
        }
        u.ioapicIds = s.scopes.filter((x) => x.type === "ioapic").map((x) => x.enumerationId);
        log.info(`DMAR: ${u.name}: reg_base_addr ${hx(u.base)} ver ${(u.version >>> 4) & 0xf}:${u.version & 0xf} cap ${u.cap.toString(16)} ecap ${u.ecap.toString(16)}`);
        this.units.push(u);
      } else if (s.type === "RMRR") {
        const base = Number(BigInt(s.base));
        const end = Number(BigInt(s.limit));
        log.info(`DMAR: RMRR base: 0x${pad(base, 14)} end: 0x${pad(end, 14)}`);
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
        dev = byRid.get((bus << 8) | (p.device << 3) | p.function);
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

  // ---- Queued invalidation (dmar_enable_qi, qi_submit_sync) ----

  enableQi(u: DmarUnit): void {
    if (u.qiBase !== 0) return;
    const { pages } = this.ctx;
    u.qiBase = pages.alloc(1, "any");
    u.qiStatus = pages.alloc(1, "any");
    u.qiTail = 0;
    // Quiesce, program IQA with QS = 0 (256 descriptors), tail 0, then enable (__dmar_enable_qi).
    this.w32(u, DMAR_IQT_REG, 0);
    this.w64(u, DMAR_IQA_REG, u.qiBase);
    u.gcmd |= GCMD_QIE;
    this.gcmdWait(u, u.gcmd, GSTS_QIES, true, "queued invalidation enable");
  }

  /** Submits descriptors followed by a wait descriptor with status write, and polls for completion. */
  qiSubmit(u: DmarUnit, descs: number[]): void {
    const mem = this.ctx.port.memory;
    const n = descs.length / 4;
    for (let i = 0; i < n; i++) {
      const a = u.qiBase + u.qiTail * 16;
      mem.write32(a, descs[4 * i] ?? 0);
      mem.write32(a + 4, descs[4 * i + 1] ?? 0);
      mem.write32(a + 8, descs[4 * i + 2] ?? 0);
      mem.write32(a + 12, descs[4 * i + 3] ?? 0);
      u.qiTail = (u.qiTail + 1) % QI_LENGTH;
    }
    const slot = u.qiTail;
    const status = u.qiStatus + slot * 4;
    mem.write32(status, QI_IN_USE);
    const w = u.qiBase + u.qiTail * 16;
    mem.write32(w, QI_IWD_TYPE | QI_IWD_STATUS_WRITE);
    mem.write32(w + 4, QI_DONE);
    mem.write32(w + 8, status % TWO32);
    mem.write32(w + 12, Math.floor(status / TWO32));
    u.qiTail = (u.qiTail + 1) % QI_LENGTH;
    u.inv.waits++;
    this.w32(u, DMAR_IQT_REG, u.qiTail << 4);
    if (this.ctx.qiWaitNs) this.ctx.advance(this.ctx.qiWaitNs);
    if (mem.read32(status) !== QI_DONE) {
      const fsts = this.r32(u, DMAR_FSTS_REG);
      if ((fsts & FSTS_IQE) !== 0) {
        this.ctx.log.err(`DMAR: VT-d detected Invalidation Queue Error: Reason ${hx(this.r32(u, 0xb0))}`);
        this.w32(u, DMAR_FSTS_REG, FSTS_IQE);
      }
      throw new IommuError("DMAR_QI", `${u.name}: invalidation wait did not complete`);
    }
  }

  flushContextGlobal(u: DmarUnit): void {
    u.inv.contextGlobal++;
    this.qiSubmit(u, [QI_CC_TYPE | (GRAN_GLOBAL << 4), 0, 0, 0]);
  }

  flushContextDevice(u: DmarUnit, did: number, sid: number): void {
    u.inv.contextDevice++;
    this.qiSubmit(u, [(QI_CC_TYPE | (3 << 4) | (did << 16)) >>> 0, sid & 0xffff, 0, 0]);
  }

  private iotlbDesc(u: DmarUnit, gran: number, did: number, addrLo: number, addrHi: number, am: number): number[] {
    const drain = u.drain ? QI_IOTLB_DR | QI_IOTLB_DW : 0;
    return [(QI_IOTLB_TYPE | (gran << 4) | drain | (did << 16)) >>> 0, 0, (addrLo | am) >>> 0, addrHi >>> 0];
  }

  flushIotlbGlobal(u: DmarUnit): void {
    u.inv.iotlbGlobal++;
    this.qiSubmit(u, this.iotlbDesc(u, GRAN_GLOBAL, 0, 0, 0, 0));
  }

  flushIotlbDomain(u: DmarUnit, did: number): void {
    u.inv.iotlbDomain++;
    this.qiSubmit(u, this.iotlbDesc(u, GRAN_DOMAIN, did, 0, 0, 0));
  }

  /** iommu_flush_iotlb_psi: page-selective with the covering power-of-two mask, or domain-selective. */
  flushIotlbPsi(u: DmarUnit, did: number, pfn: number, pages: number): void {
    // The hardware invalidates the naturally aligned block of 2^mask pages that holds the address, so the mask
    // must make one aligned block cover the whole range, even when the range itself is not aligned.
    const last = pfn + Math.max(1, pages) - 1;
    let mask = 0;
    while (Math.floor(pfn / 2 ** mask) !== Math.floor(last / 2 ** mask)) mask++;
    if (!u.pageSelective || mask > u.maxAddressMask) {
      this.flushIotlbDomain(u, did);
      return;
    }
    u.inv.iotlbPage++;
    const addr = (pfn - (pfn % 2 ** mask)) * PAGE;
    this.qiSubmit(u, this.iotlbDesc(u, GRAN_PAGE, did, addr % TWO32, Math.floor(addr / TWO32), mask));
  }

  flushIecGlobal(u: DmarUnit): void {
    u.inv.iec++;
    this.qiSubmit(u, [QI_IEC_TYPE, 0, 0, 0]);
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
      u.irt = pages.alloc(INTR_REMAP_TABLE_ENTRIES * 16 / PAGE, "any");
      this.enableQi(u);
      const irta = encodeIrta(u.irt, INTR_REMAP_TABLE_REG_SIZE, eim);
      this.w64(u, DMAR_IRTA_REG, irta.hi * TWO32 + irta.lo);
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
    if (last.rid >>> 8 !== dev.bus) {
      const bus = last.rid >>> 8;
      return { sid: (bus << 8) | bus, svt: SVT_VERIFY_BUS };
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
    this.w64(u, DMAR_RTADDR_REG, u.rootTable);
    this.gcmdWait(u, u.gcmd | GCMD_SRTP, GSTS_RTPS, true, "set root table pointer");
    this.flushContextGlobal(u);
    this.flushIotlbGlobal(u);
  }

  /** Programs the fault event interrupt (dmar_set_interrupt) and unmasks it. */
  setFaultInterrupt(u: DmarUnit, vector: number, apicId: number): void {
    u.faultVector = vector;
    this.w32(u, DMAR_FEDATA_REG, vector);
    this.w32(u, DMAR_FEADDR_REG, (0xfee00000 | (apicId << 12)) >>> 0);
    this.w32(u, DMAR_FEUADDR_REG, 0);
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
    const out: FaultRecord[] = [];
    const fsts = this.r32(u, DMAR_FSTS_REG);
    if (fsts !== 0 && log) this.ctx.log.err(`DMAR: DRHD: handling fault status reg ${hx(fsts)}`);
    if ((fsts & FSTS_PPF) !== 0) {
      const nfr = ((u.capHi >>> 8) & 0xff) + 1;
      const fro = (((u.capHi & 0x3) << 8) | (u.capLo >>> 24)) * 16;
      let idx = (fsts >>> 8) & 0xff;
      for (let n = 0; n < nfr; n++) {
        const off = fro + idx * 16;
        const w3 = this.r32(u, off + 12);
        if ((w3 & 0x80000000) === 0) break;
        const w0 = this.r32(u, off);
        const w1 = this.r32(u, off + 4);
        const w2 = this.r32(u, off + 8);
        const reason = w3 & 0xff;
        const sid = w2 & 0xffff;
        const read = (w3 & (1 << 30)) !== 0;
        const isIr = reason >= 0x20 && reason < 0x20 + IRQ_REMAP_FAULT_REASONS.length;
        // Interrupt-remapping faults carry the IRTE index in bits 63:48 of the record (VT-d 10.4.14): exact from the high word.
        const addr = isIr ? w1 >>> 16 : w1 * TWO32 + ((w0 & 0xfffff000) >>> 0);
        const reasonText = isIr ? (IRQ_REMAP_FAULT_REASONS[reason - 0x20] ?? "Unknown") : (DMA_REMAP_FAULT_REASONS[reason] ?? "Unknown");
        const rec: FaultRecord = { unit: u.name, type: isIr ? "INTR-REMAP" : read ? "DMA Read" : "DMA Write", sourceId: sid, addr, reason, reasonText, ns: 0 };
        out.push(rec);
        if (log) {
          const who = `${pad(sid >>> 8, 2)}:${pad((sid >>> 3) & 0x1f, 2)}.${sid & 7}`;
          if (isIr) this.ctx.log.err(`DMAR: [INTR-REMAP] Request device [${who}] fault index 0x${hx(addr)} [fault reason 0x${pad(reason, 2)}] ${reasonText}`);
          else this.ctx.log.err(`DMAR: [${rec.type} NO_PASID] Request device [${who}] fault addr 0x${hx(addr)} [fault reason 0x${pad(reason, 2)}] ${reasonText}`);
          this.faults.push(rec);
        }
        this.w32(u, off + 12, 0x80000000); // clear F (write 1)
        idx = (idx + 1) % nfr;
      }
    }
    this.w32(u, DMAR_FSTS_REG, fsts & (FSTS_PFO | FSTS_IQE));
    return out;
  }

  // ---- Context entries ----

  /** Address of the context entry for (bus, devfn), creating the context table (iommu_context_addr). */
  contextEntry(u: DmarUnit, rid: number): number {
    const bus = rid >>> 8;
    let ct = u.contextTables.get(bus);
    const mem = this.ctx.port.memory;
    if (ct === undefined) {
      ct = this.ctx.pages.alloc(1, "any");
      u.contextTables.set(bus, ct);
      const re = u.rootTable + bus * 16;
      mem.write32(re, (ct % TWO32 | 1) >>> 0);
      mem.write32(re + 4, Math.floor(ct / TWO32));
    }
    return ct + (rid & 0xff) * 16;
  }

  /**
   * domain_context_mapping_one: a present context entry for `rid` pointing at the domain (multi-level with its
   * page tables, or pass-through). An entry already present is left alone, as Linux does.
   */
  mapContext(u: DmarUnit, rid: number, did: number, passThrough: boolean, pgd: number, levels: number): boolean {
    const mem = this.ctx.port.memory;
    const ce = this.contextEntry(u, rid);
    if ((mem.read32(ce) & 1) !== 0) return false;
    const aw = (passThrough ? u.levels : levels) - 2;
    const tt = passThrough ? CONTEXT_TT_PASS_THROUGH : CONTEXT_TT_MULTI_LEVEL;
    const root = passThrough ? 0 : pgd;
    mem.write32(ce + 8, (aw | (did << 8)) >>> 0);
    mem.write32(ce + 12, 0);
    mem.write32(ce + 4, Math.floor(root / TWO32));
    mem.write32(ce, ((root % TWO32) | (tt << 2) | 1) >>> 0);
    if (u.cachingMode) {
      this.flushContextDevice(u, 0, rid);
      this.flushIotlbDomain(u, did);
    }
    return true;
  }

  /** Clears a context entry and invalidates it (domain_context_clear_one). */
  clearContext(u: DmarUnit, rid: number, did: number): void {
    const mem = this.ctx.port.memory;
    const ce = this.contextEntry(u, rid);
    for (let i = 0; i < 16; i += 4) mem.write32(ce + i, 0);
    this.flushContextDevice(u, did, rid);
    this.flushIotlbDomain(u, did);
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
}

// ---- Second-level page tables (the domain's, in RAM) ----

/**
 * A domain's second-level page tables, written the way __domain_mapping writes them: intermediate entries
 * read/write, leaves with the mapping's permissions. Numbers only (no bigint) on this path; the last leaf table
 * is remembered so consecutive pages do not walk from the top.
 */
/** leafTable's answer when a superpage entry maps the pfn. */
const SUPERPAGE = -1;

/** A 4 KiB mapping refused because a superpage already maps the IOVA elsewhere (Linux: "DMA PTE … already set"). */
export interface MapConflict {
  iovaPfn: number;
  /** Where the superpage sends the IOVA (-1 if nowhere). */
  existing: number;
  wanted: number;
}

export class PageTables {
  readonly pgd: number;
  readonly levels: number;
  /** Mappings refused because a superpage was in the way, oldest first. */
  readonly conflicts: MapConflict[] = [];
  private lastTableKey = -1;
  private lastTable = 0;

  constructor(
    private readonly mem: MachinePort["memory"],
    private readonly pages: PageAllocator,
    levels: number,
  ) {
    this.levels = levels;
    this.pgd = pages.alloc(1, "any");
  }

  /**
   * Address of the level-1 table covering pfn, creating tables when `create`. 0 when absent; SUPERPAGE when a
   * large-page entry on the way already maps the pfn (no level-1 table exists under it).
   */
  private leafTable(pfn: number, create: boolean): number {
    const key = Math.floor(pfn / 512);
    if (key === this.lastTableKey) return this.lastTable;
    let table = this.pgd;
    for (let lv = this.levels; lv > 1; lv--) {
      const idx = Math.floor(pfn / 2 ** (9 * (lv - 1))) % 512;
      const ea = table + idx * 8;
      const lo = this.mem.read32(ea);
      if ((lo & 3) === 0) {
        if (!create) return 0;
        const t = this.pages.alloc(1, "any");
        this.mem.write32(ea + 4, Math.floor(t / TWO32));
        this.mem.write32(ea, ((t % TWO32) | DMA_PTE_READ | DMA_PTE_WRITE) >>> 0);
        table = t;
      } else {
        if ((lo & DMA_PTE_LARGE_PAGE) !== 0) return SUPERPAGE;
        table = this.mem.read32(ea + 4) * TWO32 + ((lo & 0xfffff000) >>> 0);
      }
    }
    this.lastTableKey = key;
    this.lastTable = table;
    return table;
  }

  /** The leaf entry mapping pfn (a 4 KiB entry or a 2 MiB / 1 GiB superpage) as [low word, physical address of pfn]. */
  private leaf(pfn: number): [lo: number, phys: number] | null {
    let table = this.pgd;
    for (let lv = this.levels; lv >= 1; lv--) {
      const shift = 9 * (lv - 1);
      const ea = table + (Math.floor(pfn / 2 ** shift) % 512) * 8;
      const lo = this.mem.read32(ea);
      if ((lo & 3) === 0) return null;
      const addr = this.mem.read32(ea + 4) * TWO32 + ((lo & 0xfffff000) >>> 0);
      if (lv === 1) return [lo, addr];
      if ((lo & DMA_PTE_LARGE_PAGE) !== 0) return [lo, addr + (pfn % 2 ** shift) * PAGE];
      table = addr;
    }
    return null;
  }

  /**
   * Maps `count` 4 KiB pages iova pfn → phys pfn with `prot` (DMA_PTE_READ | DMA_PTE_WRITE). A pfn inside an
   * existing superpage is not split: as Linux's __domain_mapping, the existing entry stays and the conflict is
   * recorded (unless the superpage already maps the pfn to the same page with at least `prot`).
   */
  map(iovaPfn: number, physPfn: number, count: number, prot: number): void {
    for (let i = 0; i < count; i++) {
      const pfn = iovaPfn + i;
      const phys = (physPfn + i) * PAGE;
      const t = this.leafTable(pfn, true);
      if (t === SUPERPAGE) {
        const [lo, at] = this.leaf(pfn) ?? [0, -1];
        if (at !== phys || (lo & prot) !== prot) this.conflicts.push({ iovaPfn: pfn, existing: at, wanted: phys });
        continue;
      }
      const ea = t + (pfn % 512) * 8;
      this.mem.write32(ea + 4, Math.floor(phys / TWO32));
      this.mem.write32(ea, ((phys % TWO32) | prot) >>> 0);
    }
  }

  /** Maps [iova, iova + size) to phys with 2 MiB pages where both are aligned (identity maps of RAM). */
  mapRange(iova: number, phys: number, size: number, prot: number, superpage: boolean): void {
    let at = 0;
    while (at < size) {
      const v = iova + at;
      const p = phys + at;
      if (superpage && this.levels >= 3 && v % 0x200000 === 0 && p % 0x200000 === 0 && size - at >= 0x200000) {
        const pfn = v / PAGE;
        let table = this.pgd;
        for (let lv = this.levels; lv > 2; lv--) {
          const idx = Math.floor(pfn / 2 ** (9 * (lv - 1))) % 512;
          const ea = table + idx * 8;
          const lo = this.mem.read32(ea);
          if ((lo & 3) === 0) {
            const t = this.pages.alloc(1, "any");
            this.mem.write32(ea + 4, Math.floor(t / TWO32));
            this.mem.write32(ea, ((t % TWO32) | 3) >>> 0);
            table = t;
          } else {
            table = this.mem.read32(ea + 4) * TWO32 + ((lo & 0xfffff000) >>> 0);
          }
        }
        const ea = table + (Math.floor(pfn / 512) % 512) * 8;
        this.mem.write32(ea + 4, Math.floor(p / TWO32));
        this.mem.write32(ea, ((p % TWO32) | prot | DMA_PTE_LARGE_PAGE) >>> 0);
        this.lastTableKey = -1; // a level-1 table cached for this range is no longer reachable
        at += 0x200000;
      } else {
        this.map(v / PAGE, p / PAGE, 1, prot);
        at += PAGE;
      }
    }
  }

  /** Clears the leaf entries of `count` pages (dma_pte_clear_range); tables stay, superpages are not split. */
  unmap(iovaPfn: number, count: number): void {
    for (let i = 0; i < count; i++) {
      const pfn = iovaPfn + i;
      const t = this.leafTable(pfn, false);
      if (t === 0 || t === SUPERPAGE) continue;
      const ea = t + (pfn % 512) * 8;
      this.mem.write32(ea, 0);
      this.mem.write32(ea + 4, 0);
    }
  }

  /** The physical address a pfn maps to, or null (for tests and the sysfs view). */
  lookup(iovaPfn: number): number | null {
    return this.leaf(iovaPfn)?.[1] ?? null;
  }
}
