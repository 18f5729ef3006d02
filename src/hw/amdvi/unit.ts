/**
 * One AMD-Vi IOMMU (spec #48882): the register file, DMA translation through the device table and I/O page
 * tables with a DTE cache and an IOTLB, the exclusion range, the command buffer, the event log and interrupt
 * remapping. Nothing a guest writes to registers or memory makes it throw: every request ends as a
 * translation, an event in the log, or a status bit.
 */
import type { PhysicalMemory } from "../../core/memory.js";
import type { InterruptSink } from "../interrupt-message.js";
import { RegisterFile } from "../vtd/regfile.js";
import { DteCache, Iotlb } from "./caches.js";
import { CommandBuffer, type UnitMemory } from "./commands.js";
import { EventLog } from "./event-log.js";
import { remapMsi, type MsiOutcome } from "./intremap.js";
import { AmdViPciFunction, type AmdViPciOptions } from "./pci-function.js";
import { declareAmdViRegisters, EFFECT_CMD_TAIL, EFFECT_CONTROL } from "./registers.js";
import { deviceIdOf, QEMU_SOURCE_IDS, type RequestSource, type SourceIds } from "./sources.js";
import { dteInRange, readDte, walkDte, WalkOut } from "./translate.js";
import { getField } from "../../spec/amdvi/fields.js";
import { DTE_DOMAIN_ID, DTE_EX, DTE_I, DTE_V } from "../../spec/amdvi/dte.js";
import { DEV_TAB_HARDWARE_ERROR, EVF_RW, ILLEGAL_DEV_TABLE_ENTRY, INVALID_DEVICE_REQUEST, PAGE_TAB_HARDWARE_ERROR, type AmdEvent } from "../../spec/amdvi/events.js";
import {
  CTRL_CMD_BUF_EN,
  CTRL_EVENT_LOG_EN,
  CTRL_GA_EN,
  CTRL_IOMMU_EN,
  EXCL_ALLOW,
  EXCL_EN,
  hatsLevels,
  MMIO_CONTROL,
  MMIO_DEV_TABLE_BASE,
  MMIO_EXCL_BASE,
  MMIO_EXCL_LIMIT,
  MMIO_STATUS,
  MMIO_WINDOW_SIZE,
  QEMU_DEFAULT_EFR,
  STATUS_CMD_BUF_RUN,
  STATUS_EVENT_LOG_RUN,
} from "../../spec/amdvi/registers.js";
import { TWO32 } from "../../core/u64.js";


export interface AmdViConfig {
  /** Extended Feature Register value (default: QEMU 7.2's). */
  efr?: bigint;
  iotlbSize?: number;
  dteCacheSize?: number;
  /**
   * MSI address/data the unit's own interrupts (event log, completion wait) are sent with. Default: what
   * software programmed into the MSI capability of the unit's PCI function, and nothing while it is disabled.
   */
  msiAddress?: number;
  msiData?: number;
  /** The unit's own PCI function (default: QEMU 7.2's, capability block at 40h). */
  pci?: AmdViPciOptions;
  /** Which DeviceID IOAPICs, HPETs and aliased functions use (default: QEMU 7.2's q35; see sourceIdsFromIvhd). */
  sources?: SourceIds;
  name?: string;
  /**
   * Bytes of RAM: table and command reads at or above it end in the hardware-error event the spec names
   * (DEV_TAB_HARDWARE_ERROR, PAGE_TAB_HARDWARE_ERROR, COMMAND_HARDWARE_ERROR). Default: no limit.
   */
  ramSize?: number;
  /**
   * Memory as the unit's table reads, event-log and completion writes see it (a platform's view, where reads
   * outside RAM fail). Overrides `ramSize`.
   */
  tableMemory?: UnitMemory;
}

/** Memory as the unit's table reads see it: reads beyond RAM fail as a master abort would. */
class RamReader {
  constructor(
    private readonly mem: PhysicalMemory,
    private readonly limit: number,
  ) {}
  read32(addr: number | bigint): number {
    if (Number(addr) + 4 > this.limit) throw new RangeError("read beyond RAM");
    return this.mem.read32(addr);
  }
  write32(addr: number | bigint, v: number): void {
    if (Number(addr) + 4 > this.limit) throw new RangeError("write beyond RAM");
    this.mem.write32(addr, v);
  }
}

export type TranslateResult =
  | { result: "ok"; hpa: bigint; pageShift: number; read: boolean; write: boolean; untranslated: boolean }
  | { result: "fault"; event: number; flags: number };

export class AmdViUnit {
  readonly regs: RegisterFile;
  readonly iotlb: Iotlb;
  readonly dteCache: DteCache;
  readonly events: EventLog;
  readonly commands: CommandBuffer;
  readonly maxLevels: number;
  /** The IOMMU's PCI function: its capability block and the MSI capability of the unit's own interrupts. */
  readonly pci: AmdViPciFunction;
  readonly sources: SourceIds;
  /** Interrupts the unit raised itself. */
  raised = 0;
  readonly out = new WalkOut();
  private readonly dte = new Uint32Array(8);
  /** The DTE of the current request: a cache entry or `dte` (read only). */
  private cur: Uint32Array = this.dte;
  private readonly reader: RamReader | PhysicalMemory | UnitMemory;

  constructor(
    readonly mem: PhysicalMemory,
    readonly config: AmdViConfig = {},
    private readonly sink?: InterruptSink,
  ) {
    const efr = config.efr ?? QEMU_DEFAULT_EFR;
    this.maxLevels = hatsLevels(Number((efr >> 10n) & 3n));
    this.reader = config.tableMemory ?? (config.ramSize === undefined ? mem : new RamReader(mem, config.ramSize));
    this.regs = new RegisterFile(MMIO_WINDOW_SIZE, declareAmdViRegisters(efr));
    this.pci = new AmdViPciFunction(config.pci);
    this.sources = config.sources ?? QEMU_SOURCE_IDS;
    this.iotlb = new Iotlb(config.iotlbSize ?? 4096);
    this.dteCache = new DteCache(config.dteCacheSize ?? 256);
    const raise = (): void => this.raise();
    this.events = new EventLog(this.regs, this.reader, raise);
    this.commands = new CommandBuffer(this.regs, this.reader, {
      invalidateDte: (d) => this.dteCache.invalidate(d),
      invalidatePages: (dom, base, shift) => this.iotlb.invalidateRange(dom, base, shift),
      invalidateInterruptTable: (d) => this.dteCache.invalidate(d),
      invalidateAll: () => {
        this.iotlb.clear();
        this.dteCache.clear();
      },
      record: (e) => this.events.record(e),
      raiseCompletion: raise,
    });
  }

  private raise(): void {
    this.raised++;
    const unit = this.config.name ?? "amd-vi";
    if (this.config.msiAddress !== undefined) {
      this.sink?.({ addressLo: this.config.msiAddress, addressHi: 0, data: this.config.msiData ?? 0, origin: "fault-event", unit });
    } else if (this.pci.msiEnabled) {
      const m = this.pci.msiMessage();
      this.sink?.({ addressLo: m.addressLo, addressHi: m.addressHi, data: m.data, origin: "fault-event", unit });
    }
  }

  mmioRead32(offset: number): number {
    return this.regs.read32(offset);
  }

  mmioRead64(offset: number): bigint {
    return this.regs.read64(offset);
  }

  /** Software write of 4 or 8 bytes; side effects follow the bits that changed. */
  mmioWrite(offset: number, size: number, lo: number, hi = 0): void {
    const info = this.regs.write(offset, size, lo, hi);
    const d = info.decl;
    if (d === null) return;
    if (d.effect === EFFECT_CONTROL) this.controlChanged();
    else if (d.effect === EFFECT_CMD_TAIL) this.commands.run();
  }

  private controlChanged(): void {
    const ctrl = this.regs.get32(MMIO_CONTROL);
    const on = (ctrl & CTRL_IOMMU_EN) !== 0;
    const st = this.regs.get32(MMIO_STATUS);
    const cmdRun = on && (ctrl & CTRL_CMD_BUF_EN) !== 0;
    const evRun = on && (ctrl & CTRL_EVENT_LOG_EN) !== 0;
    const wasCmd = (st & STATUS_CMD_BUF_RUN) !== 0;
    let set = 0;
    let clear = 0;
    if (cmdRun && !wasCmd) set |= STATUS_CMD_BUF_RUN;
    if (!cmdRun) clear |= STATUS_CMD_BUF_RUN;
    if (evRun) set |= STATUS_EVENT_LOG_RUN;
    else clear |= STATUS_EVENT_LOG_RUN;
    this.regs.update32(MMIO_STATUS, set, clear);
    if (cmdRun && !wasCmd) this.commands.run();
  }

  private get enabled(): boolean {
    return (this.regs.get32(MMIO_CONTROL) & CTRL_IOMMU_EN) !== 0;
  }

  /** Loads the DTE of `devid` (cached). Returns 0 or the event code. */
  private loadDte(devid: number): number {
    const cached = this.dteCache.get(devid);
    if (cached !== undefined) {
      this.cur = cached;
      return 0;
    }
    this.cur = this.dte;
    const lo = this.regs.get32(MMIO_DEV_TABLE_BASE);
    const hi = this.regs.get32(MMIO_DEV_TABLE_BASE + 4);
    if (!dteInRange(devid, lo & 0x1ff)) return ILLEGAL_DEV_TABLE_ENTRY;
    const base = ((lo & 0xffff_f000) >>> 0) + (hi & 0xfffff) * TWO32;
    if (!readDte(this.reader, base, devid, this.dte)) return DEV_TAB_HARDWARE_ERROR;
    this.dteCache.put(devid, this.dte);
    return 0;
  }

  private dteAddr(devid: number): number {
    const lo = this.regs.get32(MMIO_DEV_TABLE_BASE);
    return ((lo & 0xffff_f000) >>> 0) + (this.regs.get32(MMIO_DEV_TABLE_BASE + 4) & 0xfffff) * TWO32 + (devid & 0xffff) * 32;
  }

  private inExclusion(lo: number, hi: number): boolean {
    const bLo = this.regs.get32(MMIO_EXCL_BASE);
    if ((bLo & EXCL_EN) === 0) return false;
    const a = hi * TWO32 + lo;
    const base = ((bLo & 0xffff_f000) >>> 0) + (this.regs.get32(MMIO_EXCL_BASE + 4) & 0xfffff) * TWO32;
    const limit = (this.regs.get32(MMIO_EXCL_LIMIT) >>> 0) + (this.regs.get32(MMIO_EXCL_LIMIT + 4) & 0xfffff) * TWO32;
    if (a < base || a > limit) return false;
    return (bLo & EXCL_ALLOW) !== 0 || getField(this.cur, DTE_EX) === 1;
  }

  /**
   * One 4 KiB page, no allocation: returns 0 with the page in out.outLo/outHi, or the event code (logged).
   */
  translateFast(devid: number, lo: number, hi: number, write: boolean): number {
    const o = this.out;
    if (!this.enabled) {
      o.outLo = (lo & 0xffff_f000) >>> 0;
      o.outHi = hi >>> 0;
      o.untranslated = true;
      return 0;
    }
    const ev = this.loadDte(devid & 0xffff);
    if (ev !== 0) return this.logFault(devid, 0, ev, write ? EVF_RW : 0, lo, hi, this.dteAddr(devid));
    if (getField(this.cur, DTE_V) === 1 && this.inExclusion(lo, hi)) {
      o.outLo = (lo & 0xffff_f000) >>> 0;
      o.outHi = hi >>> 0;
      o.untranslated = true;
      return 0;
    }
    const domain = getField(this.cur, DTE_DOMAIN_ID);
    const pfnLo = ((lo >>> 12) | (hi << 20)) >>> 0;
    const pfnHi = hi >>> 12;
    if (this.iotlb.lookup(domain, pfnLo, pfnHi) && (write ? this.iotlb.hit.write : this.iotlb.hit.read)) {
      const hit = this.iotlb.hit;
      o.outLo = hit.outLo;
      o.outHi = hit.outHi;
      o.shift = hit.shift;
      // A hit is a translated page: the outputs of an earlier untranslated request or walk must not leak into it.
      o.read = hit.read;
      o.write = hit.write;
      o.untranslated = false;
      return 0;
    }
    const r = walkDte(this.reader, this.cur, lo, hi, write, this.maxLevels, o);
    if (r !== 0) return this.logFault(devid, domain, r, o.flags, lo, hi, o.errAddr);
    if (!o.untranslated) this.iotlb.insert(domain, pfnLo, pfnHi, { outLo: o.outLo, outHi: o.outHi, shift: o.shift, read: o.read, write: o.write });
    return 0;
  }

  private logFault(devid: number, domain: number, code: number, flags: number, lo: number, hi: number, errAddr = 0): number {
    const hw = code === DEV_TAB_HARDWARE_ERROR || code === PAGE_TAB_HARDWARE_ERROR;
    const addrLo = hw ? errAddr % TWO32 >>> 0 : lo >>> 0;
    const addrHi = hw ? Math.floor(errAddr / TWO32) >>> 0 : hi >>> 0;
    const e: AmdEvent = { code, deviceId: devid & 0xffff, domainId: domain, flags, addrLo, addrHi };
    this.events.record(e);
    return code;
  }

  /** Friendly entry: a bigint IOVA, the full result. */
  translate(devid: number, iova: bigint, write: boolean): TranslateResult {
    const lo = Number(iova & 0xffff_ffffn);
    const hi = Number((iova >> 32n) & 0xffff_ffffn);
    const r = this.translateFast(devid, lo, hi, write);
    if (r !== 0) return { result: "fault", event: r, flags: this.out.flags };
    const o = this.out;
    const hpa = (BigInt(o.outHi) << 32n) | BigInt(o.outLo) | (iova & 0xfffn);
    return { result: "ok", hpa, pageShift: o.shift, read: o.read, write: o.write, untranslated: o.untranslated };
  }

  /**
   * A request carrying an already translated address (PCIe AT=10b). Allowed only when the DTE grants the
   * device an IOTLB (DTE.I=1); otherwise INVALID_DEVICE_REQUEST is logged and the request aborted (2.5.9).
   * Returns 0 or the event code.
   */
  translatedRequest(devid: number, lo: number, hi: number, write: boolean): number {
    if (!this.enabled) return 0;
    const ev = this.loadDte(devid & 0xffff);
    if (ev !== 0) return this.logFault(devid, 0, ev, write ? EVF_RW : 0, lo, hi);
    if (getField(this.cur, DTE_V) === 0 || getField(this.cur, DTE_I) === 1) return 0;
    return this.logFault(devid, getField(this.cur, DTE_DOMAIN_ID), INVALID_DEVICE_REQUEST, write ? EVF_RW : 0, lo, hi);
  }

  /** Remaps an MSI from `devid`; a fault is logged as its event. */
  remapMsi(devid: number, address: number, data: number): MsiOutcome {
    if (!this.enabled) return { kind: "passed", address, data, event: 0, flags: 0 };
    const ev = this.loadDte(devid & 0xffff);
    if (ev !== 0) {
      this.logFault(devid, 0, ev, 0x8, address, 0);
      return { kind: "fault", address, data, event: ev, flags: 0x8 };
    }
    const ga = (this.regs.get32(MMIO_CONTROL) & CTRL_GA_EN) !== 0;
    const r = remapMsi(this.reader, this.cur, address, data, ga);
    if (r.kind === "fault") this.logFault(devid, getField(this.cur, DTE_DOMAIN_ID), r.event, r.flags, address, 0, r.irteAddr ?? 0);
    return r;
  }

  /**
   * Remaps an interrupt by where it comes from: a PCI function (its requester id, or the alias the IVHD names),
   * an IOAPIC or an HPET (the DeviceID of its IVHD special-device entry). The outcome names the DeviceID whose
   * device table entry was used. A source this platform does not wire to the unit is a configuration error.
   */
  remapInterrupt(source: RequestSource, address: number, data: number): MsiOutcome & { deviceId: number } {
    const devid = deviceIdOf(this.sources, source);
    if (devid === null) {
      const what = source.kind === "ioapic" ? `IOAPIC ${source.id}` : source.kind === "hpet" ? `HPET ${source.id}` : "source";
      throw new RangeError(`${what} has no DeviceID on this unit (no IVHD special-device entry)`);
    }
    return { ...this.remapMsi(devid, address, data), deviceId: devid };
  }

  reset(): void {
    this.regs.reset();
    this.iotlb.clear();
    this.dteCache.clear();
  }
}
