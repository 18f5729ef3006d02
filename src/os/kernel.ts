/**
 * A Linux-like kernel booting on a simulated machine (through a MachinePort only). Boot follows Linux 6.1's
 * order and prints its messages with their texts:
 *
 *   0 s      Command line, e820, "Kernel command line:", parameter messages (DMAR: IOMMU enabled, …)
 *   4 ms     interrupt remapping: DMAR table parsed (Host address width, DRHD base, dmarN: reg_base_addr),
 *            DMAR-IR: IOAPIC id … under DRHD base, DMAR-IR: Enabled IRQ remapping in xapic mode
 *   1.1 s    PCI enumeration (config space), ACS enabled when the IOMMU asked for it
 *   1.55 s   iommu: Default domain type / DMA domain TLB invalidation policy
 *   1.96 s   intel_iommu_init: No RMRR/ATSR/SATC found, dmarN: Using Queued invalidation, groups
 *            ("Adding to iommu group N"), default domains attached, translation enabled,
 *            "DMAR: Intel(R) Virtualization Technology for Directed I/O"; then the swiotlb report
 *   2.4 s    drivers bind: DMA masks, MSI / MSI-X vectors (through interrupt remapping entries when enabled)
 */
import { IommuError } from "../core/errors.js";
import { DEBIAN_6_1_CONFIG, IO_TLB_SHIFT, parseBootParams, type BootParams, type KernelConfig } from "./cmdline.js";
import { DmaCookie, DmaDevice, hostBridgeWindows, Swiotlb, type DmaEnv } from "./dma.js";
import { IntelIommuDriver, type DmarUnit } from "./intel-iommu.js";
import { AmdIommuDriver, type AmdIommuUnit } from "./amd-iommu.js";
import type { IommuOps } from "./iommu-ops.js";
import { fromAmdEvent, fromVtdFault, type KernelFault } from "./iommu-faults.js";
import { identMapFlags, intelIommuQuirks, tylersburgAzaliaIdentity } from "./default-domain.js";
import { domainDevice, IommuCore, type IommuGroup } from "./iommu.js";
import { Clock, KernelLog } from "./log.js";
import { PageAllocator } from "./pages.js";
import { enableAcs, scanPci, type KPciDev } from "./pci.js";
import type { IncomingInterrupt, MachinePort } from "./port.js";
import { TWO32 } from "../core/u64.js";
import { encodeCompatMsi } from "../spec/msi.js";

export interface BootOptions {
  cmdline?: string;
  config?: KernelConfig;
}

export interface IrqDesc {
  irq: number;
  chip: string;
  hwirq: number;
  name: string;
  count: number;
  /** The vector the CPU sees. */
  vector: number;
  /** APIC id of the CPU the interrupt is delivered to (vectors are per CPU). */
  apic: number;
  dev: KPciDev | null;
  /** Interrupt remapping table entry, when remapped. */
  irte: number | null;
}

const MS = 1e6;
/** x86 external interrupt vectors a device may get (after the ISA range, below the system vectors). */
const FIRST_DEVICE_VECTOR = 0x21;
const LAST_DEVICE_VECTOR = 0xeb;
export const KERNEL_RELEASE = "6.1.0-iommu-kit";

/** The legacy IRQs on IOAPIC pins (irq, pin) that /proc/interrupts lists, and ISA_IRQ_VECTOR(0). */
const LEGACY_IRQS: readonly [number, number][] = [[0, 2], [1, 1], [4, 4], [8, 8], [9, 9], [12, 12]];
const ISA_IRQ_VECTOR_BASE = 0x30;

const hx16 = (n: number) => "0x" + n.toString(16).padStart(16, "0");

export class Kernel {
  readonly port: MachinePort;
  readonly clock = new Clock();
  readonly log: KernelLog;
  readonly params: BootParams;
  readonly config: KernelConfig;
  readonly pages: PageAllocator;
  readonly devices: KPciDev[] = [];
  /** The VT-d driver (idle, with no units, on a machine without a DMAR). */
  readonly driver: IntelIommuDriver;
  /** The AMD-Vi driver (idle, with no units, on a machine without an IVRS). */
  readonly amd: AmdIommuDriver;
  readonly iommu: IommuCore;
  swiotlb: Swiotlb | null = null;
  /** True when DMA remapping is active (units translating, groups made). */
  dmaRemapping = false;
  irqRemapping = false;
  readonly irqs: IrqDesc[] = [];
  private readonly dmaDevices = new Map<KPciDev, DmaDevice>();
  private env!: DmaEnv;
  /** Device vectors allocated per CPU (index into firmware.cpus). */
  private readonly vectorsUsed: number[] = [];
  /** The AMD-Vi units' own interrupts. */
  private readonly amdIrqs = new Map<IrqDesc, AmdIommuUnit>();
  private nextIrq = 24;

  private constructor(port: MachinePort, opts: BootOptions) {
    this.port = port;
    this.log = new KernelLog(this.clock);
    this.config = opts.config ?? DEBIAN_6_1_CONFIG;
    this.params = parseBootParams(opts.cmdline ?? "", this.config);
    this.pages = new PageAllocator(port.memory, port.firmware.e820);
    this.driver = new IntelIommuDriver({
      port,
      log: this.log,
      pages: this.pages,
      advance: (ns) => this.clock.advance(ns),
      superpage: this.params.superpage,
      floppyWa: this.config.floppyWa,
      scalableMode: this.params.scalableMode,
    });
    this.amd = new AmdIommuDriver(
      { port, log: this.log, pages: this.pages, advance: (ns) => this.clock.advance(ns), now: () => this.clock.ns },
      { guestIr: this.params.amdIommuIntr, pgtable: this.params.amdIommuPgtable },
    );
    this.iommu = new IommuCore({ port, log: this.log, pages: this.pages, params: this.params, config: this.config });
  }

  /** The IOMMU driver in charge of DMA remapping, or null. */
  get ops(): IommuOps | null {
    return this.iommu.ops;
  }

  /** How many faults the kernel has read from its IOMMUs (VT-d fault records and AMD-Vi events). */
  get faultCount(): number {
    return this.driver.faults.length + this.amd.faults.length;
  }

  /** The faults read from the `from`-th on, oldest first, in one shape whichever IOMMU reported them. */
  faultsSince(from = 0): KernelFault[] {
    const nI = this.driver.faults.length;
    const out = this.driver.faults.slice(Math.min(from, nI)).map(fromVtdFault);
    for (const e of this.amd.faults.slice(Math.max(0, from - nI))) out.push(fromAmdEvent(e));
    return out;
  }

  /** Boots the kernel on `port` with `cmdline`. */
  static boot(port: MachinePort, opts: BootOptions = {}): Kernel {
    const k = new Kernel(port, opts);
    k.run();
    return k;
  }

  private step(ns = 50_000): void {
    this.clock.advance(ns);
  }

  private emit(m: { level: string; text: string }): void {
    if (m.level === "warn") this.log.warn(m.text);
    else if (m.level === "notice") this.log.notice(m.text);
    else if (m.level === "err") this.log.err(m.text);
    else this.log.info(m.text);
  }

  private run(): void {
    const { log, params, port } = this;
    port.onInterrupt((m) => this.interrupt(m));
    log.info(`Linux version ${KERNEL_RELEASE} (simulated) #1 SMP PREEMPT_DYNAMIC`);
    log.info(`Command line: ${params.raw}`);
    for (const e of port.firmware.e820) {
      log.info(`BIOS-e820: [mem ${hx16(e.base)}-${hx16(e.end)}] ${e.type}`);
    }
    for (const m of params.earlyMessages) this.emit(m);
    const dmar = port.firmware.acpi.DMAR;
    // pci_iommu_alloc: the Intel driver when there is a DMAR, else the AMD one when there is an IVRS.
    const ivrs = dmar === undefined && !params.noIommu ? port.firmware.acpi.IVRS : undefined;
    // detect_intel_iommu / detect_ivrs: a DMAR and an IOMMU not turned off, or any IVRS, make the PCI core enable ACS.
    const iommuDetected = (dmar !== undefined && !params.noIommu && !params.dmarDisabled) || ivrs !== undefined;
    // pci_swiotlb_detect: RAM above 4 GiB (and not iommu=off), or swiotlb=force.
    const wantSwiotlb = (!params.noIommu && this.pages.hasHighMemory) || params.swiotlbForce || params.iommuSoft;
    if (wantSwiotlb) {
      const slabs = params.swiotlbSlabs;
      const bytes = slabs << IO_TLB_SHIFT;
      const start = this.pages.allocTopDown(bytes / 4096, TWO32);
      if (start === null) log.warn(`software IO TLB: Cannot allocate buffer`);
      else this.swiotlb = new Swiotlb(port.memory, start, slabs);
    }
    log.info(`Kernel command line: ${params.raw}`);
    for (const m of params.setupMessages) this.emit(m);
    if (params.unknown.length > 0) {
      log.notice(`Unknown kernel command line parameters "${params.unknown.map((u) => u + " ").join("")}", will be passed to user space.`);
    }
    const pagesK = this.pages.totalPages * 4;
    log.info(`Memory: ${this.pages.free_pages * 4}K/${pagesK}K available`);

    // Interrupt remapping is set up with the APICs, early.
    this.clock.advanceTo(4 * MS);
    // dmar_table_init parses the table once and keeps the outcome, failure included (null: not parsed yet).
    let tableParsed: boolean | null = null;
    if (dmar !== undefined && !params.noIommu) {
      if (!params.intremapDisabled) {
        tableParsed = this.driver.parseTable(dmar);
        this.step();
        if (tableParsed) this.irqRemapping = this.driver.enableIrqRemapping();
      }
    }
    let amdEarly = false;
    if (ivrs !== undefined && !params.amdIommuOff && !params.intremapDisabled) {
      // amd_iommu_prepare / amd_iommu_enable: the driver's early init, and the units enabled when IR can be.
      amdEarly = true;
      if (this.amd.earlyInit(ivrs, true) && this.amd.irqRemap) this.amdEnableIr();
    }

    // PCI enumeration.
    this.clock.advanceTo(1100 * MS);
    this.devices.push(...scanPci(port));
    for (const d of this.devices) {
      log.info(`pci ${d.name}: [${d.vendor.toString(16).padStart(4, "0")}:${d.device.toString(16).padStart(4, "0")}] type ${d.headerType.toString(16).padStart(2, "0")} class 0x${d.classCode.toString(16).padStart(6, "0")}`);
      if (iommuDetected) enableAcs(port, d);
      this.step(20_000);
    }
    this.defaultDomainFlags();

    this.clock.advanceTo(1550 * MS);
    this.iommu.subsysInit();

    // pci_iommu_init -> intel_iommu_init
    this.clock.advanceTo(1960 * MS);
    if (dmar !== undefined && !params.noIommu) {
      tableParsed ??= this.driver.parseTable(dmar);
      if (tableParsed) {
        this.driver.resolveScopes(this.devices);
        if (!params.dmarDisabled) this.initDmars();
        else if (this.irqRemapping) for (const u of this.driver.units) this.setFaultIrq(u);
      }
    }
    if (ivrs !== undefined && !params.amdIommuOff) this.amdIommuInit(ivrs, amdEarly);
    this.env = {
      port,
      log,
      clock: this.clock,
      pages: this.pages,
      driver: this.iommu.ops ?? this.driver,
      swiotlb: this.swiotlb,
      swiotlbForce: params.swiotlbForce,
      forceDac: params.forceDac,
      cpus: port.firmware.cpus.length,
      windows: hostBridgeWindows(port.firmware.e820),
    };
    if (this.swiotlb !== null) {
      const s = this.swiotlb;
      log.info("PCI-DMA: Using software bounce buffering for IO (SWIOTLB)");
      log.info(`software IO TLB: mapped [mem ${hx16(s.start)}-${hx16(s.end)}] (${(s.nslabs << IO_TLB_SHIFT) >> 20}MB)`);
    }

    // Drivers bind.
    this.clock.advanceTo(2400 * MS);
    if (ivrs !== undefined) {
      // amd_iommu_v2_init (built in).
      if (this.amd.v2Present) log.info("AMD-Vi: AMD IOMMUv2 loaded and initialized");
      else log.info("AMD-Vi: AMD IOMMUv2 functionality not available on this system - This is not a bug.");
    }
    for (const d of this.devices) this.probeDriver(d);
  }

  /**
   * A (vector, CPU) pair for a device or unit interrupt, as x86's vector matrix hands them out: external vectors
   * 0x21..0xeb on each CPU, the CPU with the fewest allocated vectors first.
   */
  private allocVector(): { vector: number; apic: number } {
    const cpus = this.port.firmware.cpus.length > 0 ? this.port.firmware.cpus : [{ apicId: 0 }];
    while (this.vectorsUsed.length < cpus.length) this.vectorsUsed.push(0);
    let best = 0;
    for (let i = 1; i < cpus.length; i++) if (this.vectorsUsed[i]! < this.vectorsUsed[best]!) best = i;
    const used = this.vectorsUsed[best]!;
    if (FIRST_DEVICE_VECTOR + used > LAST_DEVICE_VECTOR) {
      throw new IommuError("NO_VECTOR", `no free interrupt vector on any of ${cpus.length} CPU(s)`, {
        hint: "give the machine more CPUs or fewer MSI-X vectors",
      });
    }
    this.vectorsUsed[best] = used + 1;
    return { vector: FIRST_DEVICE_VECTOR + used, apic: cpus[best]!.apicId };
  }

  private setFaultIrq(u: DmarUnit): void {
    const { vector, apic } = this.allocVector();
    this.irqs.push({ irq: this.nextIrq++, chip: "DMAR-MSI", hwirq: u.seq, name: u.name, count: 0, vector, apic, dev: null, irte: null });
    this.driver.setFaultInterrupt(u, vector, apic);
  }

  /**
   * The Intel driver's PCI header quirks (graphics mapping, Ironlake strict flushing) and the IDENTMAP flags
   * init_dmars sets from them and from the command line: the inputs of src/os/default-domain.ts.
   */
  private defaultDomainFlags(): void {
    const { port, params } = this;
    const devs = this.devices.map(domainDevice);
    const quirks = intelIommuQuirks(devs, params.igfxOff, (rid, off) => port.configRead(rid, off, 2));
    for (const m of quirks.messages) this.log.info(m);
    if (quirks.strict) this.iommu.setDmaStrict();
    const azalia = tylersburgAzaliaIdentity(devs, (rid, off) => port.configRead(rid, off, 4));
    this.iommu.identMap = identMapFlags({ igfxOffCmdline: params.igfxOff, quirks, mapIntGpu: params.mapIntGpu, azalia });
  }

  /** init_dmars and the rest of intel_iommu_init. */
  private initDmars(): void {
    const { driver, log, iommu } = this;
    if (driver.rmrrs.length === 0) log.info("DMAR: No RMRR found");
    log.info("DMAR: No ATSR found");
    log.info("DMAR: No SATC found");
    for (const u of driver.units) {
      driver.enableQi(u);
      log.info(`DMAR: ${u.name}: Using Queued invalidation`);
      driver.initDomains(u);
    }
    for (const u of driver.units) driver.setRootEntry(u);
    for (const u of driver.units) this.setFaultIrq(u);
    this.step();
    for (const u of driver.units) {
      if (u.cachingMode) {
        if (!log.grep("IOMMU batching disallowed").length) log.info("DMAR: IOMMU batching disallowed due to virtualization");
        iommu.setDmaStrict();
      }
    }
    iommu.ops = driver;
    // bus_set_iommu -> bus_iommu_probe: groups first, then default domains in group order.
    const probed: { dev: KPciDev; unit: DmarUnit }[] = [];
    for (const dev of this.devices) {
      const unit = driver.unitFor(dev);
      if (unit === null) continue;
      driver.probeDevice(dev, unit);
      const g = iommu.pciDeviceGroup(dev, this.devices);
      iommu.addToGroup(dev, g);
      probed.push({ dev, unit });
      this.step(5_000);
    }
    for (const g of iommu.groups) {
      const first = probed.find((p) => p.dev === g.devices[0]);
      if (first === undefined) continue;
      const type = iommu.groupDomainType(g);
      g.domain = iommu.allocDomain(type, first.unit, driver);
      iommu.createDirectMappings(g, driver);
      for (const dev of g.devices) {
        const unit = driver.unitFor(dev);
        if (unit !== null) iommu.attach(g.domain, dev, unit, driver);
      }
    }
    for (const u of driver.units) driver.enableTranslation(u);
    this.dmaRemapping = true;
    log.info("DMAR: Intel(R) Virtualization Technology for Directed I/O");
  }

  // ---- AMD-Vi (drivers/iommu/amd/init.c state machine) ----

  /** amd_iommu_enable: the units programmed and enabled early, interrupt remapping on, the IOAPIC's pins remapped. */
  private amdEnableIr(): void {
    this.amd.enableUnits();
    this.amd.irEnabled = true;
    this.irqRemapping = true;
    // The legacy IRQs /proc/interrupts lists, on IOAPIC pins with ISA vectors (0x30 + irq) to the boot CPU.
    const pins = LEGACY_IRQS.map(([irq, pin]) => ({ pin, vector: ISA_IRQ_VECTOR_BASE + irq, apic: this.port.firmware.cpus[0]?.apicId ?? 0 }));
    for (const a of this.port.firmware.ioapics) this.amd.setupIoapicPins(a.id, pins);
  }

  /** amd_iommu_init: the rest of the state machine (early init if not done, enable, PCI init, API, interrupts). */
  private amdIommuInit(ivrs: Uint8Array, early: boolean): void {
    const { amd, iommu, log } = this;
    if (!early && !amd.earlyInit(ivrs, false)) return;
    if (amd.units.length === 0) return;
    if (!amd.units[0]!.enabled) amd.enableUnits();
    amd.initPci();
    if (amd.npCache) iommu.setDmaStrict();
    // amd_iommu_init_api -> bus_set_iommu: groups, then default domains (no Intel IDENTMAP quirks apply).
    iommu.identMap = { gfx: false, intgpu: false, azalia: false };
    iommu.ops = amd;
    const probed = new Map<KPciDev, AmdIommuUnit>();
    for (const dev of this.devices) {
      const unit = amd.probeDevice(dev);
      if (unit === null) continue;
      iommu.addToGroup(dev, iommu.pciDeviceGroup(dev, this.devices));
      probed.set(dev, unit);
      this.step(5_000);
    }
    for (const g of iommu.groups) {
      const unit = probed.get(g.devices[0]!);
      if (unit === undefined) continue;
      g.domain = iommu.allocDomain(iommu.groupDomainType(g), unit);
      iommu.createDirectMappings(g);
      for (const dev of g.devices) iommu.attach(g.domain, dev, probed.get(dev) ?? unit);
    }
    this.dmaRemapping = true;
    amd.printInfo();
    amd.enableVapic();
    for (const u of amd.units) {
      const fn = this.devices.find((d) => d.rid === u.devid);
      if (fn === undefined || fn.msiCap === 0) {
        log.err(`AMD-Vi: ${u.name}: no MSI capability for the event interrupt`);
        continue;
      }
      const { vector, apic } = this.allocVector();
      const desc: IrqDesc = { irq: this.nextIrq++, chip: "PCI-MSI", hwirq: u.devid << 11, name: "AMD-Vi", count: 0, vector, apic, dev: null, irte: null };
      this.irqs.push(desc);
      this.amdIrqs.set(desc, u);
      amd.setupInterrupt(u, fn.msiCap, vector, apic);
    }
  }

  // ---- Drivers, DMA and interrupts ----

  private probeDriver(d: KPciDev): void {
    if (d.driver === null) return;
    const group = this.iommu.groupFor(d);
    const dma = new DmaDevice(d, group, this.env);
    dma.setMask(d.dmaBits ?? 32);
    if (d.maxSegLog !== null) dma.maxSegmentSize = 2 ** d.maxSegLog;
    const dom = group?.domain ?? null;
    if (dom !== null && (dom.type === "DMA" || dom.type === "DMA-FQ") && !(dom.cookie instanceof DmaCookie)) {
      const c = new DmaCookie(dom, this.env.cpus, this.env);
      c.reserve(this.iommu.groupReservedRegions(group!), this.env.windows);
      dom.cookie = c;
      dom.iova = c.iova;
    }
    this.dmaDevices.set(d, dma);
    this.setupMsi(d);
  }

  private setupMsi(d: KPciDev): void {
    if (d.msiCap === 0 && d.msixCap === 0) return;
    const port = this.port;
    const unit = this.driver.units.find((u) => u.irEnabled && this.driver.unitFor(d) === u) ?? null;
    const amdIr = this.amd.irEnabled && this.amd.unitFor(d) !== null;
    const n = d.msixCap !== 0 ? d.msiVectors : 1;
    const msgs: { address: number; data: number; irte: number | null; vector: number; apic: number }[] = [];
    for (let i = 0; i < n; i++) {
      const { vector, apic } = this.allocVector();
      if (amdIr) {
        const e = this.amd.allocIrte(d, vector, apic);
        msgs.push({ address: e.address, data: e.data, irte: e.index, vector, apic });
      } else if (unit !== null) {
        const src = this.driver.msiSourceFor(d, this.params.intremapNoSid);
        const e = this.driver.allocIrte(unit, vector, apic, src);
        msgs.push({ address: e.address, data: e.data, irte: e.index, vector, apic });
      } else {
        msgs.push({ address: encodeCompatMsi({ vector, destination: apic }).address, data: vector, irte: null, vector, apic });
      }
    }
    const chip = this.irqRemapping && (unit !== null || amdIr) ? "IR-PCI-MSI" : "PCI-MSI";
    msgs.forEach((m, i) => {
      this.irqs.push({
        irq: this.nextIrq++,
        chip,
        hwirq: (d.rid << 11) | i,
        name: n > 1 ? `${d.driver}-q${i}` : (d.driver ?? "pci"),
        count: 0,
        vector: m.vector,
        apic: m.apic,
        dev: d,
        irte: m.irte,
      });
    });
    if (d.msiCap !== 0) {
      const m = msgs[0]!;
      const c = d.msiCap;
      port.configWrite(d.rid, c + 4, 4, m.address);
      port.configWrite(d.rid, c + 8, 4, 0);
      port.configWrite(d.rid, c + 12, 2, m.data);
      const ctl = port.configRead(d.rid, c + 2, 2);
      port.configWrite(d.rid, c + 2, 2, ctl | 1);
    } else {
      const bar0 = (port.configRead(d.rid, 0x10, 4) & 0xfffffff0) >>> 0;
      msgs.forEach((m, i) => {
        port.mmioWrite(bar0 + 16 * i, 4, m.address);
        port.mmioWrite(bar0 + 16 * i + 4, 4, 0);
        port.mmioWrite(bar0 + 16 * i + 8, 4, m.data);
        port.mmioWrite(bar0 + 16 * i + 12, 4, 0);
      });
      const ctl = port.configRead(d.rid, d.msixCap + 2, 2);
      port.configWrite(d.rid, d.msixCap + 2, 2, (ctl | 0x8000) & ~0x4000);
    }
  }

  /** An interrupt message arrives at the local APICs. */
  private interrupt(m: IncomingInterrupt): void {
    // A compatibility-format message (remapped ones arrive translated): vector in data 7:0, destination APIC id
    // in address 19:12. The same vector number exists on every CPU, so both pick the descriptor.
    const vector = m.data & 0xff;
    const apic = (m.addressLo >>> 12) & 0xff;
    const d = this.irqs.find((q) => q.vector === vector && q.apic === apic);
    if (d === undefined) return;
    d.count++;
    if (d.chip === "DMAR-MSI") {
      const u = this.driver.units.find((x) => x.seq === d.hwirq);
      if (u !== undefined) this.driver.handleFault(u);
    }
    const amdUnit = this.amdIrqs.get(d);
    if (amdUnit !== undefined) this.amd.handleInterrupt(amdUnit);
  }

  /** Moves simulated time forward (fires the flush-queue timers that come due). */
  advance(ns: number): void {
    this.clock.advance(ns);
  }

  // ---- Lookups ----

  pciDevice(bdf: string): KPciDev {
    const name = bdf.length === 7 ? `0000:${bdf}` : bdf;
    const d = this.devices.find((x) => x.name === name.toLowerCase());
    if (d === undefined) throw new IommuError("NO_SUCH_DEVICE", `no PCI device ${bdf}`);
    return d;
  }

  /** The DMA handle of a device its driver uses (dma_map_*, dma_alloc_coherent). */
  dma(bdf: string): DmaDevice {
    const d = this.pciDevice(bdf);
    const h = this.dmaDevices.get(d);
    if (h === undefined) throw new IommuError("NO_DRIVER", `${d.name} has no driver bound, so no DMA`);
    return h;
  }

  get groups(): IommuGroup[] {
    return this.dmaRemapping ? this.iommu.groups : [];
  }
}
