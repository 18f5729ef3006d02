/**
 * The hypervisor: a host kernel booted on the simulated machine, VMs whose RAM comes from the host's pages,
 * devices handed to them with VFIO, and their interrupts routed to their vCPUs. Everything it does to the IOMMU
 * goes through the host driver's MMIO writes and in-memory tables (context entries, page tables, interrupt
 * remapping entries, invalidation descriptors).
 *
 *   const hv = Hypervisor.boot();                         // q35, intel_iommu=on
 *   const vm = hv.createVm({ name: "vm1", memory: 32 * MiB, vcpus: 2 });
 *   hv.bindVfio("00:02.0");                               // driver_override, unbind, probe
 *   hv.assign(vm, "00:02.0");                             // group viability, container, GPA → HPA mappings
 *   vm.boot();                                            // the guest kernel probes the device, programs MSI-X
 *   hv.destroyVm(vm);                                     // quiesce, reset, unmap + invalidate, detach
 *
 * Teardown runs in the order that keeps a device away from memory that changes hands: interrupts off and the
 * device reset, then every mapping removed and the IOTLB invalidated, then the groups detached (context entries
 * cleared and invalidated), and only then the pages returned for reuse.
 */
import { IommuError } from "../core/errors.js";
import { formatRequesterId } from "../core/pci.js";
import { Machine } from "../hw/machine.js";
import type { MachineConfigInput } from "../hw/machine-config.js";
import { parseSize } from "../hw/pci/topology.js";
import { DMAR_GCMD_REG, DMAR_GSTS_REG, GCMD_CFI, GSTS_CFIS } from "../spec/vtd/registers.js";
import { Kernel } from "../os/kernel.js";
import { iommuCmdline } from "../os/cmdline.js";
import type { KPciDev } from "../os/pci.js";
import { AssignedDevice, requesterIdAtRoot, type DeviceModel } from "./assigned.js";
import { HostPagePool } from "./host-pages.js";
import { HostIrte, HostPort, InterruptRouter } from "./interrupts.js";
import { Vfio, VFIO_PCI, type UnmapPolicy } from "./vfio.js";
import { Vm } from "./vm.js";

export const MiB = 2 ** 20;

const PAGE = 4096;
const PCI_COMMAND = 0x04;
/**
 * Where guest BARs go in guest-physical space, above guest RAM. Below 2 GiB: the simulated kernel computes BAR
 * addresses with signed 32-bit masks, which turn addresses from 2 GiB up negative.
 */
const GUEST_MMIO_BASE = 0x70000000;

export interface HypervisorOptions {
  /** Machine preset or configuration; default q35. */
  machine?: string | MachineConfigInput;
  /**
   * Host kernel command line. Default: the IOMMU on as the machine's kind turns it on (iommuCmdline:
   * "intel_iommu=on" on VT-d; nothing on AMD-Vi, where it is on by default).
   */
  cmdline?: string;
  /** Container unmaps: strict (default) or lazy (IOTLB flushed up to 10 ms later). */
  unmap?: UnmapPolicy;
  /** False: VM teardown skips IOTLB and context-cache invalidations (a hypervisor bug, to show its effect). */
  invalidateOnTeardown?: boolean;
  /** Allow assignment without an IOMMU (vfio's enable_unsafe_noiommu_mode). */
  noiommu?: boolean;
  /** Set GCMD.CFI: compatibility-format interrupts bypass interrupt remapping. */
  compatibilityFormat?: boolean;
  /** Host interrupts wait until drainHost() (fault records then pile up). */
  deferHostInterrupts?: boolean;
  /** Seed for the scattering of guest pages. */
  seed?: number;
}

/** Something the hypervisor did, with the simulated time. */
export interface HvEvent {
  ns: number;
  text: string;
}

export interface CreateVmOptions {
  name: string;
  /** Bytes, or a size such as "32M". */
  memory: number | string;
  vcpus?: number;
}

export interface AssignOptions {
  /** Guest PCI slot (device number on guest bus 0); default 3, 4, … */
  slot?: number;
}

export class Hypervisor {
  readonly machine: Machine;
  /** The host kernel's command line. */
  readonly cmdline: string;
  readonly port: HostPort;
  readonly host: Kernel;
  readonly router: InterruptRouter;
  readonly irte: HostIrte;
  readonly vfio: Vfio;
  readonly pool: HostPagePool;
  readonly vms: Vm[] = [];
  /** Who else owns host pages (host processes, say), asked first by describeHpa: a name, or null. */
  readonly hpaOwners: ((hpa: number) => string | null)[] = [];
  readonly events: HvEvent[] = [];
  /** Host kernel log lines written by the boot itself (what the hypervisor adds comes after). */
  readonly bootLogLines: number;
  private readonly models = new Map<number, DeviceModel>();
  /** Host page frame → the VM page it backs. */
  private readonly owners = new Map<number, { vm: Vm; gpfn: number }>();

  private constructor(opts: HypervisorOptions) {
    const machine = opts.machine ?? "q35";
    this.machine = typeof machine === "string" ? Machine.load(machine) : new Machine(machine);
    this.port = new HostPort(this.machine);
    let host: Kernel | null = null;
    this.router = new InterruptRouter({
      now: () => host?.clock.ns ?? 0,
      hostHandler: () => this.port.handler,
      hostIrqs: () => host?.irqs ?? [],
    });
    this.router.deferHost = opts.deferHostInterrupts ?? false;
    this.machine.onInterrupt(this.router.handle);
    this.cmdline = opts.cmdline ?? iommuCmdline(this.machine.iommuKind, true);
    host = Kernel.boot(this.port, { cmdline: this.cmdline });
    this.host = host;
    this.bootLogLines = host.log.lines.length;
    this.irte = new HostIrte(host);
    this.pool = new HostPagePool(host.pages, this.machine.memory, opts.seed ?? 1);
    this.vfio = new Vfio(
      { k: host, port: this.port, irte: this.irte, resetModel: (d) => this.models.get(d.rid)?.reset() },
      { noiommu: opts.noiommu ?? false, unmap: opts.unmap ?? "strict", invalidateOnTeardown: opts.invalidateOnTeardown ?? true },
    );
    if (opts.compatibilityFormat === true) this.allowCompatibilityFormat();
  }

  static boot(opts: HypervisorOptions = {}): Hypervisor {
    return new Hypervisor(opts);
  }

  /**
   * What the IOMMUs did with the faults they met, as their counters say: recorded (a VT-d fault record written,
   * an AMD-Vi event written to the log), overflowed (no room: VT-d primary fault overflow, AMD-Vi event log
   * overflow), collapsed (VT-d: folded into a pending record with the same source id).
   */
  faultCounters(): { recorded: number; overflowed: number; collapsed: number } {
    let recorded = 0;
    let overflowed = 0;
    let collapsed = 0;
    for (const u of this.machine.iommus) {
      if (u.kind === "amd-vi") {
        recorded += u.unit.events.written;
        overflowed += u.unit.events.overflowed;
        continue;
      }
      const s = u.unit.faults.stats;
      recorded += s.recorded;
      overflowed += s.overflowed;
      collapsed += s.collapsed;
    }
    return { recorded, overflowed, collapsed };
  }

  /** Simulated time, ns (the host kernel's clock). */
  get now(): number {
    return this.host.clock.ns;
  }

  /** Moves time forward; timers (lazy flushes, devices' delayed work) fire. */
  advance(ns: number): void {
    this.host.advance(ns);
  }

  /** Called before an event is stamped, so a caller can first charge simulated time for the work done. */
  beforeLog: (() => void) | null = null;

  log(text: string): void {
    this.beforeLog?.();
    this.events.push({ ns: this.now, text });
  }

  /**
   * Sets GCMD.CFI on every unit with interrupt remapping on: compatibility-format interrupts then pass
   * untranslated. Linux never does this (it clears CFI and warns when it finds CFIS set).
   */
  private allowCompatibilityFormat(): void {
    if (this.machine.iommuKind !== "vtd") {
      throw new IommuError("HV_CONFIG", "compatibilityFormat is a VT-d setting (GCMD.CFI); this machine's IOMMU is " + (this.machine.iommuKind ?? "absent"));
    }
    for (const u of this.host.driver.units) {
      if (!u.irEnabled) continue;
      u.gcmd |= GCMD_CFI;
      this.port.mmioWrite(u.base + DMAR_GCMD_REG, 4, u.gcmd >>> 0);
      if ((this.port.mmioRead32(u.base + DMAR_GSTS_REG) & GSTS_CFIS) !== 0) {
        this.host.log.warn("Compatibility-format IRQs enabled despite intr remapping; you are vulnerable to IRQ injection.");
        this.log(`${u.name}: GCMD.CFI set: compatibility-format interrupts bypass remapping`);
      }
    }
  }

  // ---- Devices ----

  /** A host PCI device by "00:02.0". */
  dev(bdf: string): KPciDev {
    return this.host.pciDevice(bdf);
  }

  /** Attaches a device model (its registers and reset) to the function at `bdf`. */
  setModel(bdf: string, model: DeviceModel): void {
    this.models.set(this.dev(bdf).rid, model);
  }

  model(bdf: string): DeviceModel | null {
    return this.models.get(this.dev(bdf).rid) ?? null;
  }

  /** Hands the device to vfio-pci the way `iommu bind` does on a real host. */
  bindVfio(bdf: string): void {
    const d = this.dev(bdf);
    const was = d.driver;
    this.vfio.bind(bdf);
    this.log(`${d.name}: ${was ?? "no driver"} unbound, driver_override=vfio-pci, bound to vfio-pci`);
  }

  /** Function reset plus the configuration state a reset clears (decoding, bus mastering, MSI/MSI-X). */
  resetDevice(d: KPciDev): void {
    const p = this.port;
    this.models.get(d.rid)?.reset();
    p.configWrite(d.rid, PCI_COMMAND, 2, 0);
    if (d.msiCap !== 0) p.configWrite(d.rid, d.msiCap + 2, 2, p.configRead(d.rid, d.msiCap + 2, 2) & ~1);
    if (d.msixCap !== 0) p.configWrite(d.rid, d.msixCap + 2, 2, p.configRead(d.rid, d.msixCap + 2, 2) & ~0xc000);
  }

  // ---- VMs ----

  createVm(opts: CreateVmOptions): Vm {
    if (this.vms.some((v) => v.name === opts.name)) throw new IommuError("VM_EXISTS", `a VM named ${opts.name} exists`);
    let size: number;
    try {
      size = typeof opts.memory === "number" ? opts.memory : parseSize(opts.memory, "memory");
    } catch (e) {
      throw new IommuError("VM_CONFIG", `${opts.name}: ${(e as Error).message}`);
    }
    if (size % PAGE !== 0 || size <= 0 || size > GUEST_MMIO_BASE) {
      throw new IommuError("VM_CONFIG", `${opts.name}: guest RAM must be a multiple of 4 KiB up to ${GUEST_MMIO_BASE / MiB} MiB, got ${size}`);
    }
    const vm = new Vm({ name: opts.name, memory: size, vcpus: opts.vcpus ?? 1 }, this.machine.memory, this.machine.firmware.cpus);
    const pages = this.pool.alloc(size / PAGE);
    pages.forEach((h, g) => {
      vm.memory.back(g, h);
      this.owners.set(h, { vm, gpfn: g });
    });
    let runs = 1;
    for (let i = 1; i < pages.length; i++) if (pages[i] !== pages[i - 1]! + 1) runs++;
    this.vms.push(vm);
    this.log(`${vm.name}: ${size / MiB} MiB of guest RAM (GPA 0x0-0x${(size - 1).toString(16)}) on ${pages.length} host pages in ${runs} physically contiguous runs; ${vm.vcpus.length} vCPU(s)`);
    return vm;
  }

  /**
   * Gives the device (bound to vfio-pci) to the VM: its group joins the VM's container (viability checked),
   * the container maps all guest RAM GPA → HPA, the device is reset and appears on the guest's bus.
   */
  assign(vm: Vm, bdf: string, opts: AssignOptions = {}): AssignedDevice {
    const d = this.dev(bdf);
    if (vm.destroyed) throw new IommuError("VM_DESTROYED", `${vm.name} has been destroyed`);
    if (d.driver !== VFIO_PCI) {
      throw new IommuError("NOT_BOUND_TO_VFIO", `${d.name} is bound to ${d.driver ?? "no driver"}, not vfio-pci`, {
        hint: `bind it first (iommu bind ${d.name})`,
      });
    }
    for (const other of this.vms) {
      if (other.devices.some((x) => x.dev === d)) throw new IommuError("DEVICE_BUSY", `${d.name} is already assigned to ${other.name}`);
    }
    const group = this.vfio.groupOf(d);
    const fresh = vm.container === null;
    const c = vm.container ?? this.vfio.container(vm.name);
    c.setGroup(group, d);
    vm.container = c;
    if (fresh) {
      // VFIO_IOMMU_MAP_DMA for guest RAM: IOVA = GPA, pages as they back the guest.
      let start = -1;
      let run: number[] = [];
      const flush = () => {
        if (run.length > 0) c.map(start, run);
        run = [];
      };
      for (const [g, h] of vm.memory.entries()) {
        if (start + run.length !== g) {
          flush();
          start = g;
        }
        run.push(h);
      }
      flush();
      const did = c.domain === null ? "none (no IOMMU)" : c.domain.domainIds().join(",");
      this.log(`${vm.name}: container with an unmanaged domain (domain id ${did}); ${c.mappedPages} pages mapped IOVA = GPA -> HPA`);
    }
    // vfio_pci_core_enable: the device is reset before its new owner sees it.
    this.resetDevice(d);
    const slot = opts.slot ?? 3 + vm.devices.length;
    const fn = this.machine.topology.get(d.rid);
    const barSize = fn?.bars[0]?.size ?? PAGE;
    const span = Math.max(barSize, MiB);
    const bar0 = Math.ceil((GUEST_MMIO_BASE + vm.devices.length * span) / barSize) * barSize;
    const ad = new AssignedDevice(
      { k: this.host, port: this.port, router: this.router, irte: this.irte },
      vm,
      d,
      slot << 3,
      bar0,
      barSize,
      this.models.get(d.rid) ?? null,
    );
    vm.devices.push(ad);
    this.log(`${vm.name}: ${d.name} (group ${group?.id ?? "none"}, requester id ${formatRequesterId(requesterIdAtRoot(d))}) assigned as guest 00:${slot.toString(16).padStart(2, "0")}.0, BAR 0 at GPA 0x${bar0.toString(16)}`);
    return ad;
  }

  /**
   * Destroys a VM: vCPUs stop, each device's interrupts are torn down and the device reset, the container
   * unmaps everything (IOTLB invalidated), the groups go back to their default domains, and the VM's pages
   * return to the pool for the next VM.
   */
  destroyVm(vm: Vm): void {
    if (vm.destroyed) return;
    vm.running = false;
    for (const ad of vm.devices) {
      ad.disableInterrupts(true);
      this.resetDevice(ad.dev);
    }
    const freed = vm.container?.release() ?? [];
    const all = new Set<number>(freed);
    for (const [g, h] of [...vm.memory.entries()]) {
      vm.memory.unback(g);
      all.add(h);
    }
    for (const h of all) this.owners.delete(h);
    this.pool.release(all);
    vm.destroyed = true;
    const at = this.vms.indexOf(vm);
    if (at >= 0) this.vms.splice(at, 1);
    const entries = this.machine.iommuKind === "amd-vi" ? "DTE" : "context";
    const inv = this.vfio.invalidateOnTeardown ? `IOTLB and ${entries} caches invalidated` : "NO invalidation";
    this.log(`${vm.name}: destroyed; devices reset, ${freed.length} pages unmapped (${inv}), ${all.size} pages back in the pool`);
  }

  /**
   * Takes guest RAM [gpa, gpa + bytes) away from a running VM (a balloon inflating): unmapped from its
   * container (strict or lazy), unbacked, pages returned to the pool.
   */
  balloon(vm: Vm, gpa: number, bytes: number): number[] {
    const first = Math.floor(gpa / PAGE);
    const count = Math.ceil(bytes / PAGE);
    const fromIommu = vm.container?.unmap(first, count) ?? [];
    const released: number[] = [];
    for (let g = first; g < first + count; g++) {
      const h = vm.memory.unback(g);
      if (h >= 0) {
        released.push(h);
        this.owners.delete(h);
      }
    }
    this.pool.release(released);
    this.log(`${vm.name}: balloon took GPA 0x${gpa.toString(16)}-0x${(gpa + bytes - 1).toString(16)}: ${fromIommu.length} pages unmapped (${this.vfio.unmapPolicy}), ${released.length} pages back in the pool`);
    return released;
  }

  // ---- Whose memory is it ----

  /** Who owns the host page at `hpa` now. */
  ownerOf(hpa: number): { kind: "vm"; vm: Vm; gpa: number } | { kind: "pool" } | { kind: "host" } {
    const h = Math.floor(hpa / PAGE);
    const o = this.owners.get(h);
    if (o !== undefined) return { kind: "vm", vm: o.vm, gpa: o.gpfn * PAGE + (hpa % PAGE) };
    if (this.pool.isPooled(h)) return { kind: "pool" };
    return { kind: "host" };
  }

  /** "vm2 GPA 0x1234000", "host memory", "free (hypervisor pool)". */
  describeHpa(hpa: number): string {
    for (const owner of this.hpaOwners) {
      const name = owner(hpa);
      if (name !== null) return name;
    }
    const o = this.ownerOf(hpa);
    if (o.kind === "vm") return `${o.vm.name} GPA 0x${o.gpa.toString(16)}`;
    if (o.kind === "pool") return "free page (hypervisor pool)";
    if (hpa >= this.machine.ramTop) return "no RAM";
    return "host memory";
  }
}
