/**
 * One VT-d remapping unit as the simulated kernel's driver knows it (Linux's struct intel_iommu + struct
 * dmar_drhd_unit): the capabilities it read, the tables it placed, the domain ids it handed out; and the
 * driver's way to its registers (dmar_readl/dmar_writel/dmar_writeq, IOMMU_WAIT_OP), MMIO only.
 */
import type { DmarDeviceScope } from "../acpi/dmar.js";
import { IommuError } from "../core/errors.js";
import { CAP, domainIdBits, ECAP, mgawBits, pssPasids, sagawBit } from "../spec/vtd/capability.js";
import { AW_39, AW_48, AW_57, awLevels, awWidth, sagawSupportsAw } from "../spec/vtd/context.js";
import { fieldOf, joinHalves } from "../spec/vtd/fields.js";
import { DMAR_GCMD_REG, DMAR_GSTS_REG, REG_HI, VER } from "../spec/vtd/registers.js";
import type { KernelLog } from "./log.js";
import type { PageAllocator } from "./pages.js";
import type { KPciDev } from "./pci.js";
import type { MachinePort } from "./port.js";

export interface InvalidationCounts {
  contextGlobal: number;
  contextDevice: number;
  iotlbGlobal: number;
  iotlbDomain: number;
  iotlbPage: number;
  iec: number;
  waits: number;
  /** Scalable mode: PASID-cache (6.5.2.2) and PASID-based IOTLB (6.5.2.4) invalidations. */
  pasidCache: number;
  piotlb: number;
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
  /** Context tables by bus (in scalable mode the lower ones, devfn 0-127). */
  readonly contextTables = new Map<number, number>();
  /** Scalable mode: the upper context tables (devfn 128-255) by bus. */
  readonly upperContextTables = new Map<number, number>();
  /** sm_supported(): intel_iommu_sm and ECAP.SMTS; set when the driver initialises the unit's domains. */
  sm = false;
  qiBase = 0;
  /** 256-bit descriptors (IQA.DW), as Linux uses them whenever ECAP.SMTS is set. */
  qiWide = false;
  qiStatus = 0;
  qiTail = 0;
  irt = 0;
  irtNext = 0;
  irEnabled = false;
  translationEnabled = false;
  domainIds: Uint8Array = new Uint8Array(0);
  faultVector = 0;
  readonly inv: InvalidationCounts = { contextGlobal: 0, contextDevice: 0, iotlbGlobal: 0, iotlbDomain: 0, iotlbPage: 0, iec: 0, waits: 0, pasidCache: 0, piotlb: 0 };

  constructor(seq: number, base: number, includeAll: boolean, scopes: DmarDeviceScope[]) {
    this.seq = seq;
    this.name = `dmar${seq}`;
    this.base = base;
    this.includeAll = includeAll;
    this.scopes = scopes;
  }

  /** VER_REG as Linux prints it: "MAX:MIN". */
  get versionString(): string {
    return `${fieldOf(this.version, 0, VER.MAX)}:${fieldOf(this.version, 0, VER.MIN)}`;
  }

  get cap(): bigint {
    return joinHalves(this.capLo, this.capHi);
  }

  get ecap(): bigint {
    return joinHalves(this.ecapLo, this.ecapHi);
  }

  private capField(f: (typeof CAP)[keyof typeof CAP]): number {
    return fieldOf(this.capLo, this.capHi, f);
  }

  private ecapFlag(f: (typeof ECAP)[keyof typeof ECAP]): boolean {
    return fieldOf(this.ecapLo, this.ecapHi, f) === 1;
  }

  /** cap_ndoms: 2^(4 + 2 * ND). */
  get ndoms(): number {
    return 2 ** domainIdBits(this.capField(CAP.ND));
  }

  get cachingMode(): boolean {
    return this.capField(CAP.CM) === 1;
  }

  get sagaw(): number {
    return this.capField(CAP.SAGAW);
  }

  /** MGAW + 1. */
  get mgaw(): number {
    return mgawBits(this.capField(CAP.MGAW));
  }

  get pageSelective(): boolean {
    return this.capField(CAP.PSI) === 1;
  }

  get maxAddressMask(): number {
    return this.capField(CAP.MAMV);
  }

  get drain(): boolean {
    return this.capField(CAP.DWD) === 1 || this.capField(CAP.DRD) === 1;
  }

  get superpages(): number {
    return this.capField(CAP.SLLPS);
  }

  /** CAP.NFR + 1 fault recording registers at CAP.FRO * 16. */
  get faultRecordField(): { nfr: number; fro: number } {
    return { nfr: this.capField(CAP.NFR), fro: this.capField(CAP.FRO) };
  }

  get postedInterrupts(): boolean {
    return this.capField(CAP.PI) === 1;
  }

  get hasQi(): boolean {
    return this.ecapFlag(ECAP.QI);
  }

  get hasIr(): boolean {
    return this.ecapFlag(ECAP.IR);
  }

  get hasEim(): boolean {
    return this.ecapFlag(ECAP.EIM);
  }

  get hasPassThrough(): boolean {
    return this.ecapFlag(ECAP.PT);
  }

  /** ECAP.SMTS: scalable-mode translation. */
  get hasSmts(): boolean {
    return this.ecapFlag(ECAP.SMTS);
  }

  /** ECAP.FSTS (Linux: ecap_flts) and ECAP.SSTS (ecap_slts): first- and second-stage translation. */
  get hasFsts(): boolean {
    return this.ecapFlag(ECAP.FSTS);
  }

  get hasSsts(): boolean {
    return this.ecapFlag(ECAP.SSTS);
  }

  /** ECAP.PASID: requests with a PASID (Linux: pasid_supported, with scalable mode). */
  get hasPasid(): boolean {
    return this.ecapFlag(ECAP.PASID);
  }

  /** PASIDs the unit takes: 2 << ECAP.PSS (the PSS field is the PASID width less one). */
  get pasidLimit(): number {
    return pssPasids(fieldOf(this.ecapLo, this.ecapHi, ECAP.PSS));
  }

  /** ECAP.SRS: supervisor requests. */
  get hasSrs(): boolean {
    return this.ecapFlag(ECAP.SRS);
  }

  /** ECAP.SMPWC: scalable-mode page-walk coherency (Linux sets PWSNP in PASID entries from it). */
  get hasSmpwc(): boolean {
    return this.ecapFlag(ECAP.SMPWC);
  }

  /** CAP.RWBF: the write buffer must be flushed after table updates. */
  get requiresWriteBufferFlush(): boolean {
    return this.capField(CAP.RWBF) === 1;
  }

  /** CAP.FS5LP: 5-level first-stage paging. */
  get firstStage5Level(): boolean {
    return this.capField(CAP.FS5LP) === 1;
  }

  /**
   * The widths the driver may use (__iommu_calculate_sagaw): SAGAW in legacy mode or without first-stage
   * support; in scalable mode with first-stage, 48-bit (and 57-bit with CAP.FS5LP) first-stage widths, and of
   * those only the ones SAGAW also has when second-stage translation exists too.
   */
  get usableSagaw(): number {
    if (!this.sm || !this.hasFsts) return this.sagaw;
    const fl = sagawBit(awWidth(AW_48)) | (this.firstStage5Level ? sagawBit(awWidth(AW_57)) : 0);
    return this.hasSsts ? fl & this.sagaw : fl;
  }

  /** Page-table levels of this unit's widest usable width up to 57 bits (iommu_calculate_agaw). */
  get levels(): number {
    const sagaw = this.usableSagaw;
    for (let aw = AW_57; aw >= 0; aw--) if (sagawSupportsAw(sagaw, aw)) return awLevels(aw);
    return awLevels(AW_39);
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
  /** intel_iommu_sm: scalable mode wanted (kernel config default, intel_iommu=sm_on / sm_off); default false. */
  scalableMode?: boolean;
  /** Large pages allowed in the identity map (intel_iommu=sp_off clears it); default true. */
  superpage?: boolean;
  /** CONFIG_INTEL_IOMMU_FLOPPY_WA: ISA bridges get 0-16 MiB as a relaxable direct region; default true. */
  floppyWa?: boolean;
  advance(ns: number): void;
}

export const hx = (n: number): string => n.toString(16);

/** How long the driver polls GSTS for a command to complete (IOMMU_WAIT_OP; the model completes at once). */
const WAIT_POLLS = 1000;

/** The driver's register access: 32-bit reads and writes, 64-bit writes, and GCMD commands with their wait. */
export class UnitIo {
  constructor(private readonly ctx: DriverContext) {}

  r32(u: DmarUnit, off: number): number {
    return this.ctx.port.mmioRead32(u.base + off) >>> 0;
  }

  /** A 64-bit register read as two 32-bit reads, low half first. */
  r64(u: DmarUnit, off: number): { lo: number; hi: number } {
    return { lo: this.r32(u, off), hi: this.r32(u, off + REG_HI) };
  }

  w32(u: DmarUnit, off: number, v: number): void {
    this.ctx.port.mmioWrite(u.base + off, 4, v >>> 0);
  }

  w64(u: DmarUnit, off: number, v: number | bigint): void {
    this.ctx.port.mmioWrite(u.base + off, 8, v);
  }

  /** Writes GCMD and waits for the status bit (IOMMU_WAIT_OP); the model completes at once. */
  gcmdWait(u: DmarUnit, value: number, status: number, set: boolean, what: string): void {
    this.w32(u, DMAR_GCMD_REG, value);
    for (let i = 0; i < WAIT_POLLS; i++) {
      const sts = this.r32(u, DMAR_GSTS_REG);
      if (((sts & status) !== 0) === set) return;
    }
    throw new IommuError("DMAR_HW", `${u.name}: ${what} did not complete (GSTS 0x${hx(this.r32(u, DMAR_GSTS_REG))})`);
  }
}
