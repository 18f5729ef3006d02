/**
 * Interrupts on a host that runs VMs. Every interrupt message the machine's local APICs receive goes through
 * the router: a (CPU, vector) pair the hypervisor allocated for an assigned device's MSI is injected into the
 * vCPU of the VM that programmed it (what VFIO's interrupt handler and KVM's irqfd do together); everything else
 * goes to the host kernel's handler, as it would without a hypervisor. Host handling may be deferred (as an
 * interrupt waits while a CPU has interrupts off) to let fault records pile up.
 *
 * Interrupt remapping table entries for assigned devices are allocated with the host driver's allocator and
 * changed or freed by writing the entry in the table in RAM and invalidating the interrupt entry cache through
 * the invalidation queue (VT-d spec 6.5.2.7), the way Linux's modify_irte and free_irte do.
 *
 * Where the unit reports posted interrupts (CAP.PI), each vCPU gets a posted-interrupt descriptor in host memory
 * and assigned devices' MSIs get posted-format entries naming it: the unit sets the guest vector's bit in the
 * descriptor's PIR and sends one notification (POSTED_INTR_VECTOR) to the vCPU's host CPU; the router then moves
 * the pending vectors into the vCPU, as KVM's posted-interrupt handling does. No host vector is used for them.
 * Without CAP.PI every VM interrupt takes the remapped-then-injected path.
 */
import { IommuError } from "../core/errors.js";
import { formatRequesterId } from "../core/pci.js";
import type { InterruptMessage } from "../hw/platform.js";
import {
  encodeIrte,
  encodePidControl,
  encodePidDestination,
  encodePostedIrte,
  encodeRemappableMsi,
  PID_CONTROL_OFFSET,
  PID_NDST_OFFSET,
  PID_ON,
  PID_SIZE,
  PIR_DWORDS,
  pirBit,
  pirOffset,
  pirVector,
  writeIrte,
} from "../spec/vtd/intremap.js";
import { isPostedNotification } from "../hw/vtd/unit.js";
import type { DmarUnit } from "../os/intel-iommu.js";
import { AmdIommuUnit } from "../os/amd-unit.js";
import type { IrqDesc, Kernel } from "../os/kernel.js";
import type { KPciDev } from "../os/pci.js";
import type { IncomingInterrupt, MachinePort } from "../os/port.js";
import { decodeCompatMsi, encodeCompatMsi } from "../spec/msi.js";

/** x86 vectors a device interrupt may use (the simulated kernel hands them out from the bottom). */
export const FIRST_DEVICE_VECTOR = 0x21;
export const LAST_DEVICE_VECTOR = 0xeb;
/** The notification vector of posted interrupts, a system vector outside the device range (Linux: 0xf2). */
export const POSTED_INTR_VECTOR = 0xf2;

/** Where a delivered interrupt went. */
export type DeliveryTarget =
  | { kind: "vm"; vm: string; vcpu: number; guestVector: number }
  | { kind: "host"; irq: number | null; name: string | null }
  | { kind: "dropped"; why: string };

export interface Delivery {
  seq: number;
  /** Simulated time, ns. */
  ns: number;
  origin: InterruptMessage["origin"];
  /** Requester id of the device that sent it (device interrupts). */
  sid: number | null;
  /** Whether interrupt remapping translated it. */
  remapped: boolean;
  /** Whether it was posted (a posted-format entry set the vector in a vCPU's descriptor) rather than remapped to a host vector. */
  posted: boolean;
  /** The vector and destination APIC id as the host's local APICs saw them. */
  vector: number;
  apic: number;
  deliveryMode: number;
  target: DeliveryTarget;
}

/** A vCPU (or anything) an interrupt can be injected into. */
export interface InjectTarget {
  readonly vmName: string;
  readonly index: number;
  readonly running: boolean;
  inject(vector: number, d: Delivery): void;
}

export interface Route {
  target: InjectTarget;
  guestVector: number;
  /** Requester id of the device the route was made for. */
  sid: number;
}

/** x86 has 256 interrupt vectors per local APIC: routes are keyed by (APIC id, vector). */
const VECTORS = 256;
const key = (apic: number, vector: number) => apic * VECTORS + vector;

export interface RouterOptions {
  now: () => number;
  /** The host kernel's interrupt handler and its interrupt descriptors (for naming the host irq hit). */
  hostHandler: () => ((m: IncomingInterrupt) => void) | null;
  hostIrqs: () => readonly IrqDesc[];
}

export class InterruptRouter {
  readonly deliveries: Delivery[] = [];
  /** When true, interrupts for the host wait in `pending` until drainHost(). */
  deferHost = false;
  readonly pending: InterruptMessage[] = [];
  /** Keep at most this many deliveries in `deliveries` (older ones are dropped). */
  keep = 10_000;
  private readonly routes = new Map<number, Route>();
  /** Posted-interrupt descriptors by address: the vCPU each belongs to, and where to read it. */
  private readonly pids = new Map<number, { target: InjectTarget; memory: MachinePort["memory"] }>();
  private readonly used = new Map<number, Set<number>>();
  private seq = 0;

  constructor(private readonly opts: RouterOptions) {}

  /** A free vector on the CPU with APIC id `apic`, from the top of the device range (the host uses the bottom). */
  allocVector(apic: number): number {
    const used = this.used.get(apic) ?? new Set<number>();
    this.used.set(apic, used);
    const host = new Set(this.opts.hostIrqs().map((q) => q.vector));
    for (let v = LAST_DEVICE_VECTOR; v >= FIRST_DEVICE_VECTOR; v--) {
      if (!used.has(v) && !host.has(v)) {
        used.add(v);
        return v;
      }
    }
    throw new IommuError("NO_VECTOR", `no free interrupt vector on the CPU with APIC id ${apic}`);
  }

  freeVector(apic: number, vector: number): void {
    this.used.get(apic)?.delete(vector);
    this.routes.delete(key(apic, vector));
  }

  setRoute(apic: number, vector: number, route: Route): void {
    this.routes.set(key(apic, vector), route);
  }

  route(apic: number, vector: number): Route | undefined {
    return this.routes.get(key(apic, vector));
  }

  /** Makes notifications for the descriptor at `pid` deliver its pending vectors to `target`. */
  registerPid(pid: number, target: InjectTarget, memory: MachinePort["memory"]): void {
    this.pids.set(pid, { target, memory });
  }

  /**
   * A posting notification: clear ON, then take every pending vector out of the descriptor's PIR (lowest
   * first) and inject it into the vCPU that owns the descriptor.
   */
  private drainPid(pid: number, d: Delivery): void {
    const owner = this.pids.get(pid);
    if (owner === undefined) {
      d.target = { kind: "host", irq: null, name: null };
      this.record(d);
      return;
    }
    const mem = owner.memory;
    mem.write32(pid + PID_CONTROL_OFFSET, (mem.read32(pid + PID_CONTROL_OFFSET) & ~PID_ON) >>> 0);
    for (let w = 0; w < PIR_DWORDS; w++) {
      const at = pid + pirOffset(pirVector(w, 0));
      const bits = mem.read32(at) >>> 0;
      if (bits === 0) continue;
      mem.write32(at, 0);
      for (let b = 0; 2 ** b <= bits; b++) {
        const guestVector = pirVector(w, b);
        if ((bits & pirBit(guestVector)) === 0) continue;
        const each: Delivery = { ...d, seq: ++this.seq, target: { kind: "vm", vm: owner.target.vmName, vcpu: owner.target.index, guestVector } };
        if (!owner.target.running) each.target = { kind: "dropped", why: `${owner.target.vmName} is not running` };
        this.record(each);
        if (owner.target.running) owner.target.inject(guestVector, each);
      }
    }
  }

  /** The machine's interrupt handler. */
  readonly handle = (m: InterruptMessage): void => {
    const compat = m.irq ?? decodeCompatMsi(m.addressLo, m.data);
    const vector = compat.vector;
    const apic = compat.destination;
    const d: Delivery = {
      seq: ++this.seq,
      ns: this.opts.now(),
      origin: m.origin,
      sid: m.sid ?? null,
      remapped: m.remapped === true,
      posted: isPostedNotification(m),
      vector,
      apic,
      deliveryMode: compat.deliveryMode,
      target: { kind: "dropped", why: "" },
    };
    if (isPostedNotification(m)) {
      this.drainPid(Number(m.posted.descriptor), d);
      return;
    }
    const r = m.origin === "device" && d.deliveryMode === 0 ? this.routes.get(key(apic, vector)) : undefined;
    if (r !== undefined) {
      if (r.target.running) {
        d.target = { kind: "vm", vm: r.target.vmName, vcpu: r.target.index, guestVector: r.guestVector };
        this.record(d);
        r.target.inject(r.guestVector, d);
      } else {
        d.target = { kind: "dropped", why: `${r.target.vmName} is not running` };
        this.record(d);
      }
      return;
    }
    const q = this.opts.hostIrqs().find((x) => x.vector === vector);
    d.target = { kind: "host", irq: q?.irq ?? null, name: q?.name ?? null };
    this.record(d);
    if (this.deferHost) this.pending.push(m);
    else this.opts.hostHandler()?.(m);
  };

  /** Runs the host handler for every deferred interrupt, oldest first. */
  drainHost(): number {
    let n = 0;
    while (this.pending.length > 0) {
      const m = this.pending.shift()!;
      this.opts.hostHandler()?.(m);
      n++;
    }
    return n;
  }

  private record(d: Delivery): void {
    this.deliveries.push(d);
    if (this.deliveries.length > this.keep) this.deliveries.splice(0, this.deliveries.length - this.keep);
  }
}

/** How the router describes a delivery in one line. */
export function describeDelivery(d: Delivery): string {
  const src = d.sid === null ? d.origin : formatRequesterId(d.sid);
  const how = d.origin !== "device" ? "" : d.remapped ? " (remapped)" : " (not remapped)";
  const at = `vector 0x${d.vector.toString(16)} on CPU ${d.apic}`;
  switch (d.target.kind) {
    case "vm":
      return `${src}${how}: ${at} -> ${d.target.vm} vCPU ${d.target.vcpu} vector 0x${d.target.guestVector.toString(16)}`;
    case "host":
      return `${src}${how}: ${at} -> host${d.target.irq !== null ? ` irq ${d.target.irq} (${d.target.name})` : " (no handler: spurious)"}`;
    default:
      return `${src}${how}: ${at} -> dropped: ${d.target.why}`;
  }
}

/** A unit that remaps a device's interrupts: a VT-d DRHD (one table per unit) or an AMD-Vi IVHD (one per device). */
export type IrUnit = DmarUnit | AmdIommuUnit;

/**
 * The host's interrupt-remapping table entries for assigned devices: allocated by the host driver, modified and
 * freed here with the unit's cache invalidated (VT-d: interrupt entry cache invalidation through the queue; AMD-Vi:
 * INVALIDATE_INTERRUPT_TABLE for the device and a completion wait). Posted interrupts are VT-d's (CAP.PI); AMD's
 * guest virtual APIC mode is not modelled, so VM interrupts on AMD-Vi are remapped to host vectors and injected.
 */
export class HostIrte {
  private readonly pids = new Map<InjectTarget, number>();
  constructor(private readonly k: Kernel) {}

  private static isAmd(u: IrUnit): u is AmdIommuUnit {
    return u instanceof AmdIommuUnit;
  }

  /** The unit whose interrupt remapping covers `dev`, or null (remapping off, or no unit). */
  unitFor(dev: KPciDev): IrUnit | null {
    if (this.k.amd.irEnabled) return this.k.amd.unitFor(dev);
    const u = this.k.driver.unitFor(dev);
    return u !== null && u.irEnabled ? u : null;
  }

  /** A new entry delivering `vector` to `apic`; on VT-d with the source-id check Linux sets for `dev` (set_msi_sid). */
  alloc(u: IrUnit, dev: KPciDev, vector: number, apic: number): { index: number; address: number; data: number } {
    if (HostIrte.isAmd(u)) return this.k.amd.allocIrte(dev, vector, apic);
    const src = this.k.driver.msiSourceFor(dev, this.k.params.intremapNoSid);
    return this.k.driver.allocIrte(u, vector, apic, src);
  }

  /** Rewrites entry `index` to deliver `vector` to `apic` (modify_irte) and invalidates its cached copy. */
  modify(u: IrUnit, dev: KPciDev, index: number, vector: number, apic: number): void {
    if (HostIrte.isAmd(u)) {
      this.k.amd.modifyIrte(dev, index, vector, apic);
      return;
    }
    const src = this.k.driver.msiSourceFor(dev, this.k.params.intremapNoSid);
    writeIrte(this.k.port.memory, u.irt, index, encodeIrte({ vector, destination: apic, sid: src.sid, svt: src.svt, sq: 0 }, false));
    this.flush(u, index);
  }

  /** Clears entry `index` of `dev` (free_irte); `invalidate` false leaves the cached copy usable. */
  free(u: IrUnit, dev: KPciDev, index: number, invalidate = true): void {
    if (HostIrte.isAmd(u)) {
      this.k.amd.freeIrte(dev, index, invalidate);
      return;
    }
    writeIrte(this.k.port.memory, u.irt, index, [0, 0, 0, 0]);
    if (invalidate) this.flush(u, index);
  }

  /** Whether the unit can post interrupts into a vCPU's descriptor (VT-d CAP.PI). */
  postedSupported(u: IrUnit): u is DmarUnit {
    return !HostIrte.isAmd(u) && u.postedInterrupts;
  }

  /**
   * The vCPU's posted-interrupt descriptor (a zeroed 64-byte block in a host page, created on first use):
   * notifications go to POSTED_INTR_VECTOR on the vCPU's host CPU.
   */
  pidFor(vcpu: InjectTarget & { readonly pApic: number }, router: InterruptRouter): number {
    let pid = this.pids.get(vcpu);
    if (pid === undefined) {
      pid = this.k.pages.alloc(1);
      const mem = this.k.port.memory;
      mem.fill(pid, PID_SIZE, 0);
      mem.write32(pid + PID_CONTROL_OFFSET, encodePidControl(POSTED_INTR_VECTOR));
      mem.write32(pid + PID_NDST_OFFSET, encodePidDestination(vcpu.pApic, false));
      this.pids.set(vcpu, pid);
      router.registerPid(pid, vcpu, mem);
    }
    return pid;
  }

  /** A posted-format entry posting `guestVector` into the descriptor at `pid`, with Linux's source-id check. */
  allocPosted(u: DmarUnit, dev: KPciDev, guestVector: number, pid: number): { index: number; address: number; data: number } {
    const e = this.alloc(u, dev, POSTED_INTR_VECTOR, 0);
    this.modifyPosted(u, dev, e.index, guestVector, pid);
    return e;
  }

  /** Rewrites entry `index` to post `guestVector` into `pid` and invalidates its cached copy. */
  modifyPosted(u: DmarUnit, dev: KPciDev, index: number, guestVector: number, pid: number): void {
    const src = this.k.driver.msiSourceFor(dev, this.k.params.intremapNoSid);
    writeIrte(this.k.port.memory, u.irt, index, encodePostedIrte({ vector: guestVector, descriptor: pid, sid: src.sid, svt: src.svt, sq: 0 }));
    this.flush(u, index);
  }

  /** Index-selective interrupt entry cache invalidation (qi_flush_iec). */
  private flush(u: DmarUnit, index: number): void {
    this.k.driver.flushIecIndex(u, index);
  }

  /** The MSI a device must send for entry `index` (VT-d remappable format, sub-handle 0 as Linux programs it). */
  static message(index: number): { address: number; data: number } {
    return encodeRemappableMsi(index, 0);
  }
}

/** A compatibility-format MSI (no remapping) for `vector` on the CPU with APIC id `apic`, fixed delivery. */
export function compatMsi(vector: number, apic: number): { address: number; data: number } {
  const { address, data } = encodeCompatMsi({ vector, destination: apic });
  return { address, data };
}

/**
 * The host port the host kernel boots on: the machine, except that the kernel's interrupt handler is kept aside
 * so the router sees every interrupt first.
 */
export class HostPort implements MachinePort {
  handler: ((m: IncomingInterrupt) => void) | null = null;
  constructor(private readonly inner: MachinePort) {}
  get memory() {
    return this.inner.memory;
  }
  get firmware() {
    return this.inner.firmware;
  }
  mmioRead(addr: number, size: 4 | 8): bigint {
    return this.inner.mmioRead(addr, size);
  }
  mmioRead32(addr: number): number {
    return this.inner.mmioRead32(addr);
  }
  mmioWrite(addr: number, size: 4 | 8, value: number | bigint): void {
    this.inner.mmioWrite(addr, size, value);
  }
  configRead(rid: number, offset: number, size: 1 | 2 | 4): number {
    return this.inner.configRead(rid, offset, size);
  }
  configWrite(rid: number, offset: number, size: 1 | 2 | 4, value: number): void {
    this.inner.configWrite(rid, offset, size, value);
  }
  onInterrupt(handler: (m: IncomingInterrupt) => void): void {
    this.handler = handler;
  }
}
