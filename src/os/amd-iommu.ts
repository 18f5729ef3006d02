/**
 * The AMD-Vi driver of the simulated kernel, after Linux 6.1 (drivers/iommu/amd/{init.c,iommu.c,io_pgtable.c}).
 * It reaches the units only through the IVRS (acpi/ decoder, amd-ivrs.ts), MMIO registers, the IOMMU's PCI
 * configuration space and tables it places in RAM with the kernel's page allocator:
 *
 *   earlyInit       early_amd_iommu_init: IVRS parse, "Using global IVHD EFR", units, device table with the IVHD
 *                   DTE settings, command buffer, event log and completion semaphore allocated; with interrupt
 *                   remapping asked for, check_ioapic_information (every MADT IOAPIC must be named, the
 *                   southbridge one at 00:14.0) and every DTE's IV bit (init_device_table)
 *   enableUnits     early_enable_iommus: per unit disable, flags (HtTunEn, 1 s invalidation timeout), device
 *                   table base, command buffer, event log, GAEn when 128-bit IRTEs, IOMMU enable, flush all
 *   initPci         iommu_init_pci: capability header from config space, EFR from MMIO when the IVHD had none,
 *                   NpCache ("Using strict mode due to virtualization"), PPR log; then every DTE valid and
 *                   translating with no permissions (init_device_table_dma) and the caches flushed
 *   probe/attach    setup_aliases (IVRS alias on the same bus → "Enabling fixed DMA alias to dd.f"), protection
 *                   domains with a global id (bit 0 reserved), DTEs (root, mode, IR/IW/V/TV, domain id) copied to
 *                   every DMA alias and the IVRS alias, INVALIDATE_DEVTAB_ENTRY for each, COMPLETION_WAIT
 *   printInfo       "Found IOMMU cap 0x40", "Extended features (…): …", "Interrupt remapping enabled"
 *   setupInterrupts the unit's MSI (irq "AMD-Vi", PCI-MSI) and Control.EventIntEn; events in amd-events.ts
 *
 * Interrupt remapping tables are amd-irq.ts; the v1 page tables amd-pgtable.ts; command I/O amd-unit.ts.
 */
import { IVHD_TYPE_10H } from "../acpi/ivrs-format.js";
import { IommuError } from "../core/errors.js";
import { encodeCompatMsi, MSI_ADDR_BASE, MSI_ADDR_LAST } from "../spec/msi.js";
import { CAP_HDR_EFR_SUP, CAP_HDR_NP_CACHE } from "../spec/amdvi/capability.js";
import {
  DTE_DOMAIN_ID, DTE_EINT_PASS, DTE_INIT_PASS, DTE_IR, DTE_IV, DTE_IW, DTE_LINT0_PASS, DTE_LINT1_PASS, DTE_MODE,
  DTE_NMI_PASS, DTE_PT_ROOT, DTE_SYSMGT, DTE_TV, DTE_V,
} from "../spec/amdvi/dte.js";
import { getField, setField, setFieldBig, type Field } from "../spec/amdvi/fields.js";
import {
  CTRL_CMD_BUF_EN, CTRL_COHERENT, CTRL_EVENT_INT_EN, CTRL_EVENT_LOG_EN, CTRL_GA_EN, CTRL_HT_TUN_EN, CTRL_INV_TIMEOUT,
  CTRL_IOMMU_EN, CTRL_PPR_EN, CTRL_PPR_LOG_EN, EFR_GA_SUP, EFR_GIO_SUP_BIT, EFR_IA_SUP, EFR_FIELDS, MMIO_CMD_BUF_BASE, MMIO_CMD_HEAD,
  MMIO_CMD_TAIL, MMIO_CONTROL, MMIO_DEV_TABLE_BASE, MMIO_EVENT_HEAD, MMIO_EVENT_LOG_BASE, MMIO_EVENT_TAIL, MMIO_EXT_FEATURE,
  MMIO_EXT_FEATURE2, MMIO_PPR_HEAD, MMIO_PPR_LOG_BASE, MMIO_PPR_TAIL, LOG_LEN,
} from "../spec/amdvi/registers.js";
import type { DomainType } from "./default-domain.js";
import { AmdEventLog, type AmdEventRecord } from "./amd-events.js";
import { AmdIrqRemap, type RemappedMsi } from "./amd-irq.js";
import { ivrsDevid, parseAmdIvrs, type AmdIvrs } from "./amd-ivrs.js";
import { AmdPageTable } from "./amd-pgtable.js";
import { AmdIo, AmdIommuUnit, CMD_BUFFER_SIZE, EVT_BUFFER_SIZE, LOG_LEN_512, type AmdDriverContext } from "./amd-unit.js";
import { IommuDomain, type ReservedRegion } from "./iommu-domain.js";
import type { IommuOps } from "./iommu-ops.js";
import { dmaAliases, pciName, type KPciDev } from "./pci.js";

export { AmdIommuUnit, type AmdDriverContext, type AmdCommandCounts } from "./amd-unit.js";
export type { AmdEventRecord } from "./amd-events.js";

/** amd_iommu_guest_ir: vAPIC (the default), legacy GA (128-bit entries, no vAPIC) or legacy (32-bit entries). */
export type GuestIrMode = "vapic" | "legacy-ga" | "legacy";

export interface AmdDriverOptions {
  guestIr: GuestIrMode;
  /** amd_iommu=pgtbl_v1|pgtbl_v2 */
  pgtable?: "v1" | "v2";
}

/** HT_RANGE_START..END: the HyperTransport reserved range every device gets as a reserved region. */
export const HT_RANGE_START = 0xfd_0000_0000;
export const HT_RANGE_END = 0xff_ffff_ffff;
/** IOAPIC_SB_DEVID: the southbridge IOAPIC's device id (00:14.0). */
export const IOAPIC_SB_DEVID = 0x00a0;
/** CTRL_INV_TO_1S */
const INV_TIMEOUT_1S = 4;
/** MAX_DOMAIN_ID */
const MAX_DOMAIN_ID = 65536;
const FW_BUG = "[Firmware Bug]: ";
/** print_iommu_info's feature names for EFR bits 0..9. */
const FEATURE_NAMES = ["PreF", "PPR", "X2APIC", "NX", "GT", "[5]", "IA", "GA", "HE", "PC"];
const efrField = (name: string): Field => EFR_FIELDS.find((f) => f.name === name)!;
const EFR_GT = efrField("GTSup").lsb;
const EFR_PPR = efrField("PPRSup").lsb;
const EFR_GAM = efrField("GAMSup");

const hx = (n: bigint | number): string => "0x" + n.toString(16);

export class AmdIommuDriver implements IommuOps<AmdIommuUnit> {
  readonly kind = "amd";
  readonly units: AmdIommuUnit[] = [];
  ivrs: AmdIvrs | null = null;
  readonly io: AmdIo;
  readonly irq: AmdIrqRemap;
  readonly events: AmdEventLog;
  guestIr: GuestIrMode;
  /** amd_iommu_irq_remap: interrupt remapping asked for and the IVRS names the IOAPICs. */
  irqRemap = false;
  /** irq_remapping_enabled */
  irEnabled = false;
  /** amd_iommu_np_cache: the unit caches non-present entries (QEMU), so maps are flushed too. */
  npCache = false;
  /** amd_iommu_v2_present */
  v2Present = false;
  /**
   * amd_iommu_pgtable. DMA domains always use v1 tables here: v2 (guest) tables for the DMA API are not
   * modelled, so "pgtbl_v2" only has the effect Linux gives it on units without GIoSup and GTSup (a fallback).
   */
  pgtable: "v1" | "v2";
  private devTable = 0;
  private devTableSize = 0;
  private readonly pdIds = new Uint8Array(MAX_DOMAIN_ID);
  /** dev_data: probed devices by device id. */
  private readonly probed = new Map<number, KPciDev>();
  /** domain->dev_iommu: the units each domain has devices behind. */
  private readonly domainUnits = new Map<IommuDomain, Set<AmdIommuUnit>>();
  /** dev_data->domain: the domain each attached device is in. */
  private readonly attached = new Map<KPciDev, IommuDomain>();
  /** The empty domain a group is parked in while its DMA changes owner (the core's blocking domain). */
  private blocking: IommuDomain | null = null;

  constructor(
    private readonly ctx: AmdDriverContext,
    opts: AmdDriverOptions,
  ) {
    this.guestIr = opts.guestIr;
    this.pgtable = opts.pgtable ?? "v1";
    this.io = new AmdIo(ctx);
    this.irq = new AmdIrqRemap(ctx, this.io, (d) => this.ivrs?.aliases.get(d) ?? d);
    this.events = new AmdEventLog(ctx, this.io, (d) => {
      const dev = this.probed.get(d);
      return dev === undefined ? null : `${dev.driver ?? "pci"} ${dev.name}`;
    });
    this.pdIds[0] = 1;
  }

  get faults(): AmdEventRecord[] {
    return this.events.records;
  }

  // ---- early_amd_iommu_init ----

  /** Parses the IVRS and sets the units up in memory; false (with Linux's message) when it cannot. */
  earlyInit(bytes: Uint8Array, irqRemap: boolean): boolean {
    const { log, pages, port } = this.ctx;
    let r: AmdIvrs;
    try {
      r = parseAmdIvrs(bytes);
    } catch (e) {
      log.err(`AMD-Vi: IVRS table error: ${(e as Error).message}`);
      return false;
    }
    this.ivrs = r;
    log.info(`AMD-Vi: Using global IVHD EFR:${hx(r.efr)}, EFR2:${hx(r.efr2)}`);
    const tableBytes = 32 * (r.lastBdf + 1);
    this.devTableSize = 4096 * 2 ** Math.ceil(Math.log2(Math.ceil(tableBytes / 4096)));
    this.devTable = pages.alloc(this.devTableSize / 4096, "any", this.devTableSize / 4096);
    for (const h of r.ivhds) {
      const u = new AmdIommuUnit(this.units.length, Number(BigInt(h.baseAddress)), ivrsDevid(h.deviceId), h.capabilityOffset, h.flags.raw);
      if (r.table.ivInfo.efrSupported && h.typeCode !== IVHD_TYPE_10H) [u.efr, u.efr2] = [BigInt(h.efr ?? "0"), BigInt(h.efr2 ?? "0")];
      const gaSup = h.typeCode === IVHD_TYPE_10H ? h.features?.gaSup === true : (BigInt(h.efr ?? "0") & BigInt(EFR_GA_SUP)) !== 0n;
      if (!gaSup) this.guestIr = "legacy";
      u.devTable = this.devTable;
      u.devTableSize = this.devTableSize;
      u.cmdBuf = pages.alloc(CMD_BUFFER_SIZE / 4096, "any", CMD_BUFFER_SIZE / 4096);
      u.evtBuf = pages.alloc(EVT_BUFFER_SIZE / 4096, "any", EVT_BUFFER_SIZE / 4096);
      u.cmdSem = pages.alloc(1, "any");
      this.units.push(u);
    }
    for (const [devid, d] of r.devices) this.setDevEntryFromAcpi(devid, d.setting);
    if (this.pgtable === "v2" && !this.units.every((u) => u.hasFeature(EFR_GIO_SUP_BIT) && u.hasFeature(EFR_GT))) {
      log.warn("AMD-Vi: Cannot enable v2 page table for DMA-API. Fallback to v1.");
      this.pgtable = "v1";
    }
    this.irqRemap = irqRemap && this.checkIoapicInformation(port.firmware.ioapics.map((a) => a.id));
    this.irq.ga = this.guestIr !== "legacy";
    if (this.irqRemap) for (let d = 0; d <= r.lastBdf; d++) this.updateDte(d, (dw) => setField(dw, DTE_IV, 1));
    return this.units.length > 0;
  }

  /** check_ioapic_information, with its messages. */
  private checkIoapicInformation(ids: number[]): boolean {
    const { log } = this.ctx;
    let ret = false;
    let hasSb = false;
    for (const id of ids) {
      const devid = this.ivrs!.ioapics.get(id);
      if (devid === undefined) {
        log.err(`AMD-Vi: ${FW_BUG}: IOAPIC[${id}] not in IVRS table`);
        ret = false;
      } else if (devid === IOAPIC_SB_DEVID) {
        hasSb = true;
        ret = true;
      }
    }
    if (!hasSb) log.err(`AMD-Vi: ${FW_BUG}: No southbridge IOAPIC found`);
    if (!ret) log.err("AMD-Vi: Disabling interrupt remapping");
    return ret;
  }

  /** Read-modify-write of a DTE's eight dwords. */
  private updateDte(devid: number, fn: (dw: Uint32Array) => void, write: readonly number[] = [7, 6, 5, 4, 3, 2, 1, 0]): void {
    const mem = this.ctx.port.memory;
    const at = this.devTable + devid * 32;
    const dw = new Uint32Array(8);
    for (let i = 0; i < 8; i++) dw[i] = mem.read32(at + 4 * i);
    fn(dw);
    for (const i of write) mem.write32(at + 4 * i, dw[i]!);
  }

  /** set_dev_entry_from_acpi: the IVHD entry's DTE setting byte into the DTE. */
  private setDevEntryFromAcpi(devid: number, setting: number): void {
    if (setting === 0) return;
    this.updateDte(devid, (dw) => {
      const bits: [number, Field][] = [[0, DTE_INIT_PASS], [1, DTE_EINT_PASS], [2, DTE_NMI_PASS], [6, DTE_LINT0_PASS], [7, DTE_LINT1_PASS]];
      for (const [bit, f] of bits) if ((setting >> bit) & 1) setField(dw, f, 1);
      const sysMgt = (setting >> 4) & 3;
      if (sysMgt !== 0) setField(dw, DTE_SYSMGT, sysMgt);
    });
  }

  /** The DTE of a device id as the unit reads it (for tests and forensics). */
  readDte(devid: number): Uint32Array {
    const dw = new Uint32Array(8);
    for (let i = 0; i < 8; i++) dw[i] = this.ctx.port.memory.read32(this.devTable + devid * 32 + 4 * i);
    return dw;
  }

  // ---- early_enable_iommus ----

  /** Programs and enables every unit (early_enable_iommu), then flushes all its caches. */
  enableUnits(): void {
    const io = this.io;
    for (const u of this.units) {
      io.control(u, CTRL_CMD_BUF_EN | CTRL_EVENT_INT_EN | CTRL_EVENT_LOG_EN | CTRL_IOMMU_EN, false);
      io.control(u, CTRL_HT_TUN_EN, (u.ivhdFlags & 1) !== 0);
      io.control(u, CTRL_COHERENT, (u.ivhdFlags & (1 << 5)) !== 0);
      const t = io.r64(u, MMIO_CONTROL) & ~(BigInt((1 << CTRL_INV_TIMEOUT.width) - 1) << BigInt(CTRL_INV_TIMEOUT.lsb));
      io.w64(u, MMIO_CONTROL, t | (BigInt(INV_TIMEOUT_1S) << BigInt(CTRL_INV_TIMEOUT.lsb)));
      io.w64(u, MMIO_DEV_TABLE_BASE, BigInt(u.devTable) | BigInt(u.devTableSize / 4096 - 1));
      io.w64(u, MMIO_CMD_BUF_BASE, BigInt(u.cmdBuf) | (BigInt(LOG_LEN_512) << BigInt(LOG_LEN.lsb)));
      io.w32(u, MMIO_CMD_HEAD, 0);
      io.w32(u, MMIO_CMD_TAIL, 0);
      u.cmdTail = 0;
      io.control(u, CTRL_CMD_BUF_EN, true);
      io.w64(u, MMIO_EVENT_LOG_BASE, BigInt(u.evtBuf) | (BigInt(LOG_LEN_512) << BigInt(LOG_LEN.lsb)));
      io.w32(u, MMIO_EVENT_HEAD, 0);
      io.w32(u, MMIO_EVENT_TAIL, 0);
      io.control(u, CTRL_EVENT_LOG_EN, true);
      if (this.guestIr !== "legacy") io.control(u, CTRL_GA_EN, true);
      io.control(u, CTRL_IOMMU_EN, true);
      u.enabled = true;
      this.flushAllCaches(u);
    }
  }

  /** iommu_flush_all_caches: INVALIDATE_IOMMU_ALL when the unit has it, else every DTE, IRT and domain. */
  flushAllCaches(u: AmdIommuUnit): void {
    const r = this.ivrs!;
    if (u.hasFeature(EFR_IA_SUP_BIT)) {
      this.io.flushAll(u);
      this.io.completionWait(u);
      return;
    }
    for (let d = 0; d <= r.lastBdf; d++) this.io.flushDte(u, d);
    this.io.completionWait(u);
    for (let d = 0; d <= r.lastBdf; d++) this.io.flushIrt(u, d);
    this.io.completionWait(u);
    // Linux walks every domain id (0..MAX_DOMAIN_ID-1); ids never allocated have nothing cached.
    for (let id = 0; id < MAX_DOMAIN_ID; id++) if (this.pdIds[id] === 1) this.io.flushPages(u, id, null, 0, true);
    this.io.completionWait(u);
  }

  // ---- amd_iommu_init_pci ----

  /** iommu_init_pci for every unit, then init_device_table_dma and a flush; returns false on a unit it cannot use. */
  initPci(): boolean {
    const { log, port } = this.ctx;
    for (const u of this.units) {
      u.cap = port.configRead(u.devid, u.capOffset, 4) >>> 0;
      if (getField([u.cap], CAP_HDR_EFR_SUP) === 1) {
        const efr = this.io.r64(u, MMIO_EXT_FEATURE);
        const efr2 = this.io.r64(u, MMIO_EXT_FEATURE2);
        if (u.efr === 0n) [u.efr, u.efr2] = [efr, efr2];
        else if (u.efr !== efr || u.efr2 !== efr2) {
          log.warn(`AMD-Vi: [Firmware Warn]: EFR mismatch. Use IVHD EFR (${hx(u.efr)} : ${hx(efr)}), EFR2 (${hx(u.efr2)} : ${hx(efr2)}).`);
        }
      }
      if (u.hasFeature(EFR_GT) && u.hasFeature(EFR_PPR)) this.v2Present = true;
      if (u.hasFeature(EFR_PPR)) u.pprLog = this.ctx.pages.alloc(2, "any", 2);
      if (getField([u.cap], CAP_HDR_NP_CACHE) === 1) {
        log.info("AMD-Vi: Using strict mode due to virtualization");
        this.npCache = true;
      }
    }
    // init_device_table_dma: every device id valid and translating, with no permissions (DMA blocked).
    for (let d = 0; d <= this.ivrs!.lastBdf; d++) {
      this.updateDte(d, (dw) => {
        setField(dw, DTE_V, 1);
        setField(dw, DTE_TV, 1);
      }, [0]);
    }
    for (const u of this.units) this.flushAllCaches(u);
    for (const u of this.units) this.enablePprLog(u);
    return true;
  }

  /** iommu_enable_ppr_log */
  private enablePprLog(u: AmdIommuUnit): void {
    if (u.pprLog === 0) return;
    this.io.control(u, CTRL_PPR_EN, true);
    this.io.w64(u, MMIO_PPR_LOG_BASE, BigInt(u.pprLog) | (BigInt(LOG_LEN_512) << BigInt(LOG_LEN.lsb)));
    this.io.w32(u, MMIO_PPR_HEAD, 0);
    this.io.w32(u, MMIO_PPR_TAIL, 0);
    this.io.control(u, CTRL_PPR_LOG_EN, true);
  }

  /** print_iommu_info */
  printInfo(): void {
    const { log } = this.ctx;
    for (const u of this.units) {
      log.info(`pci ${pciName(u.devid)}: AMD-Vi: Found IOMMU cap ${hx(u.capOffset)}`);
      if (getField([u.cap], CAP_HDR_EFR_SUP) === 1) {
        let line = `AMD-Vi: Extended features (${hx(u.efr)}, ${hx(u.efr2)}):`;
        FEATURE_NAMES.forEach((n, i) => {
          if (u.hasFeature(i)) line += ` ${n}`;
        });
        if (this.gamVapic(u)) line += " GA_vAPIC";
        log.info(line);
      }
    }
    if (this.irEnabled) log.info("AMD-Vi: Interrupt remapping enabled");
  }

  private gamVapic(u: AmdIommuUnit): boolean {
    return Number((u.efr >> BigInt(EFR_GAM.lsb)) & 7n) === 1;
  }

  /** enable_iommus_vapic: vAPIC only when every unit has GAMSup = 1, else legacy GA. */
  enableVapic(): void {
    if (this.guestIr !== "vapic") return;
    if (!this.units.every((u) => this.gamVapic(u))) {
      this.guestIr = "legacy-ga";
      return;
    }
    this.ctx.log.info("AMD-Vi: Virtual APIC enabled");
  }

  /** iommu_setup_msi + Control.EventIntEn: the unit's own interrupt through its PCI function's MSI capability. */
  setupInterrupt(u: AmdIommuUnit, msiCap: number, vector: number, apicId: number): void {
    const { port } = this.ctx;
    const m = encodeCompatMsi({ vector, destination: apicId });
    port.configWrite(u.devid, msiCap + 4, 4, m.address);
    port.configWrite(u.devid, msiCap + 8, 4, m.addressHi);
    port.configWrite(u.devid, msiCap + 12, 2, m.data);
    port.configWrite(u.devid, msiCap + 2, 2, port.configRead(u.devid, msiCap + 2, 2) | 1);
    u.vector = vector;
    this.io.control(u, CTRL_EVENT_INT_EN, true);
  }

  /** The unit's interrupt: read the event log. */
  handleInterrupt(u: AmdIommuUnit): AmdEventRecord[] {
    return this.events.interrupt(u);
  }

  // ---- probe (amd_iommu_probe_device, setup_aliases) ----

  unitFor(dev: KPciDev): AmdIommuUnit | null {
    const d = this.ivrs?.devices.get(dev.rid);
    if (d === undefined || dev.rid > this.ivrs!.lastBdf) return null;
    return this.units[d.unit] ?? null;
  }

  /** probe_device: the unit, and the IVRS alias made a PCI DMA alias when it is on the device's bus. */
  probeDevice(dev: KPciDev): AmdIommuUnit | null {
    const u = this.unitFor(dev);
    if (u === null) return null;
    if (!this.probed.has(dev.rid)) {
      const alias = this.ivrs!.aliases.get(dev.rid) ?? dev.rid;
      if (alias !== dev.rid && alias >>> 8 === dev.bus && !dev.dmaAliasDevfns.includes(alias & 0xff)) {
        dev.dmaAliasDevfns.push(alias & 0xff);
        this.ctx.log.info(`pci ${dev.name}: Enabling fixed DMA alias to ${((alias >>> 3) & 0x1f).toString(16).padStart(2, "0")}.${alias & 7}`);
      }
      this.probed.set(dev.rid, dev);
    }
    return u;
  }

  sysfsName(u: AmdIommuUnit): string {
    return u.name;
  }

  // ---- Domains (protection_domain_alloc, do_attach, set_dte_entry) ----

  private allocPdId(): number {
    const id = this.pdIds.indexOf(0);
    if (id <= 0) throw new IommuError("AMDVI_NO_DOMAIN_ID", "AMD-Vi: no free protection domain id");
    this.pdIds[id] = 1;
    return id;
  }

  domainAlloc(type: DomainType, unit: AmdIommuUnit): IommuDomain {
    void unit;
    const id = this.allocPdId();
    let d: IommuDomain;
    if (type === "identity") {
      d = new IommuDomain(type, null, true, 64);
    } else {
      const pt = new AmdPageTable(this.ctx.port.memory, this.ctx.pages, () => this.domainUpdate(d));
      d = new IommuDomain(type, pt, false, 64);
    }
    d.pdId = id;
    this.domainUnits.set(d, new Set());
    return d;
  }

  /** set_dte_entry: the low half (root, mode, permissions, V/TV) and the domain id; the domain id dword first. */
  private setDteEntry(devid: number, d: IommuDomain): void {
    this.updateDte(devid, (dw) => {
      setField(dw, DTE_DOMAIN_ID, d.pdId ?? 0);
      const pt = d.tables;
      setFieldBig(dw, DTE_PT_ROOT, pt === null ? 0n : BigInt(pt.pgd) >> 12n);
      setField(dw, DTE_MODE, pt === null ? 0 : pt.levels);
      for (const f of [DTE_IR, DTE_IW, DTE_V, DTE_TV]) setField(dw, f, 1);
    }, [2, 3, 1, 0]);
  }

  /** clone_aliases: the device's DTE copied to the IVRS alias and every PCI DMA alias. */
  private aliasIds(dev: KPciDev): number[] {
    const ids = [this.ivrs?.aliases.get(dev.rid) ?? dev.rid, ...dmaAliases(dev).map((a) => a.rid)];
    return ids.filter((id) => id !== dev.rid);
  }

  private cloneAliases(dev: KPciDev): void {
    const src = this.readDte(dev.rid);
    for (const a of this.aliasIds(dev)) {
      this.updateDte(a, (dw) => {
        for (let i = 0; i < 4; i++) dw[i] = src[i]!;
      }, [2, 3, 1, 0]);
    }
  }

  /** device_flush_dte: every PCI DMA alias, then the IVRS alias. */
  private flushDevice(u: AmdIommuUnit, dev: KPciDev): void {
    for (const a of dmaAliases(dev)) this.io.flushDte(u, a.rid);
    const alias = this.ivrs?.aliases.get(dev.rid) ?? dev.rid;
    if (alias !== dev.rid) this.io.flushDte(u, alias);
  }

  attachDev(domain: IommuDomain, dev: KPciDev, unit: AmdIommuUnit): void {
    this.probeDevice(dev);
    // attach_device: a device still in another domain leaves it first (do_detach).
    const was = this.attached.get(dev);
    if (was !== undefined && was !== domain) this.detachDev(was, dev, unit, true);
    this.attached.set(dev, domain);
    this.domainUnits.get(domain)?.add(unit);
    this.setDteEntry(dev.rid, domain);
    this.cloneAliases(dev);
    this.flushDevice(unit, dev);
    this.io.completionWait(unit);
  }

  /**
   * do_detach: the DTEs of the device and its aliases back to "valid, translation valid, no page table, no
   * access" (clear_dte_entry), so its DMA is refused; with `flush`, the DTEs are flushed and the domain's IOTLB
   * dropped with a completion wait.
   */
  detachDev(domain: IommuDomain, dev: KPciDev, unit: AmdIommuUnit, flush: boolean): void {
    if (this.attached.get(dev) === domain) this.attached.delete(dev);
    const at = domain.devices.indexOf(dev);
    if (at >= 0) domain.devices.splice(at, 1);
    for (const id of [dev.rid, ...this.aliasIds(dev)]) {
      this.updateDte(id, (dw) => {
        setField(dw, DTE_DOMAIN_ID, 0);
        setFieldBig(dw, DTE_PT_ROOT, 0n);
        for (const f of [DTE_MODE, DTE_IR, DTE_IW]) setField(dw, f, 0);
        for (const f of [DTE_V, DTE_TV]) setField(dw, f, 1);
      }, [2, 3, 1, 0]);
    }
    if (!flush) return;
    this.flushDevice(unit, dev);
    this.io.flushPages(unit, domain.pdId ?? 0, null, 0, true);
    this.io.completionWait(unit);
  }

  /** Parks the device in an empty domain: every DMA request is refused and logged as an IO_PAGE_FAULT. */
  blockDev(dev: KPciDev, unit: AmdIommuUnit): void {
    this.blocking ??= this.domainAlloc("unmanaged", unit);
    // attachDev detaches the device from its current domain first (do_detach, flushed).
    this.attachDev(this.blocking, dev, unit);
  }

  /** protection_domain_free: the domain id back, the page tables freed. */
  domainFree(domain: IommuDomain): void {
    if (domain === this.blocking) return;
    if (domain.pdId !== null && domain.pdId > 0) this.pdIds[domain.pdId] = 0;
    domain.pdId = null;
    domain.tables?.free();
    this.domainUnits.delete(domain);
  }

  /** amd_iommu_domain_update after the page table grew: DTEs rewritten, flushed, the domain's TLB dropped. */
  private domainUpdate(d: IommuDomain): void {
    for (const dev of d.devices) {
      const u = this.unitFor(dev);
      if (u === null) continue;
      this.setDteEntry(dev.rid, d);
      this.cloneAliases(dev);
      this.flushDevice(u, dev);
    }
    this.flushIotlbAll(d);
  }

  private unitsOf(d: IommuDomain): AmdIommuUnit[] {
    return [...(this.domainUnits.get(d) ?? [])];
  }

  /** amd_iommu_flush_iotlb_all: all pages with PDE, then a completion wait on each unit. */
  flushIotlbAll(domain: IommuDomain): void {
    for (const u of this.unitsOf(domain)) this.io.flushPages(u, domain.pdId ?? 0, null, 0, true);
    for (const u of this.unitsOf(domain)) this.io.completionWait(u);
  }

  /** amd_iommu_iotlb_sync: the unmapped range (with PDE), then completion. */
  iotlbSync(domain: IommuDomain, pfn: number, pages: number): void {
    for (const u of this.unitsOf(domain)) this.io.flushPages(u, domain.pdId ?? 0, pfn, pages, true);
    for (const u of this.unitsOf(domain)) this.io.completionWait(u);
  }

  /** domain_flush_np_cache: only units that cache non-present entries need a flush after a map. */
  iotlbSyncMap(domain: IommuDomain, pfn: number, pages: number): void {
    if (this.npCache) this.iotlbSync(domain, pfn, pages);
  }

  /** amd_iommu_get_resv_regions: IVMD unity ranges of the device, the MSI window, the HyperTransport range. */
  resvRegions(dev: KPciDev): ReservedRegion[] {
    const out: ReservedRegion[] = [];
    for (const m of this.ivrs?.unity ?? []) {
      if (dev.rid < m.first || dev.rid > m.last) continue;
      out.push({ start: m.start, end: m.end, type: "direct" });
    }
    out.push({ start: MSI_ADDR_BASE, end: MSI_ADDR_LAST, type: "msi" });
    out.push({ start: HT_RANGE_START, end: HT_RANGE_END, type: "reserved" });
    return out;
  }

  // ---- Interrupt remapping (amd-irq.ts) ----

  /** A remapped MSI for `dev`: an IRTE in its table, the MSI address/data that select it. */
  allocIrte(dev: KPciDev, vector: number, destApicId: number): RemappedMsi {
    const u = this.unitFor(dev);
    if (u === null || !this.irEnabled) throw new IommuError("AMDVI_IRTE", `${dev.name}: no interrupt remapping unit`);
    return this.irq.allocMsi(u, dev, vector, destApicId);
  }

  /** Points an allocated IRTE of `dev` at another vector / CPU (modify_irte_ga), invalidated before it returns. */
  modifyIrte(dev: KPciDev, index: number, vector: number, destApicId: number): void {
    const u = this.unitFor(dev);
    if (u === null) throw new IommuError("AMDVI_IRTE", `${dev.name}: no interrupt remapping unit`);
    this.irq.writeEntry(u, dev.rid, index, vector, destApicId);
  }

  /** Frees an IRTE of `dev` (free_irte): cleared and invalidated. */
  freeIrte(dev: KPciDev, index: number, invalidate = true): void {
    const u = this.unitFor(dev);
    if (u !== null) this.irq.free(u, dev.rid, index, invalidate);
  }

  /** The IOAPIC entries of the legacy pins (index = pin in the IOAPIC's table). */
  setupIoapicPins(ioapicId: number, pins: readonly { pin: number; vector: number; apic: number }[]): void {
    const devid = this.ivrs?.ioapics.get(ioapicId);
    const u = this.units[0];
    if (devid === undefined || u === undefined || !this.irEnabled) return;
    for (const p of pins) this.irq.setIoapicPin(u, devid, p.pin, p.vector, p.apic);
  }
}

/** EFR bit of IASup (INVALIDATE_IOMMU_ALL). */
const EFR_IA_SUP_BIT = Math.log2(EFR_IA_SUP);
