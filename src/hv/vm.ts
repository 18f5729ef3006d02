/**
 * A virtual machine: guest RAM (GPA → scattered host pages), vCPUs with their APIC ids (each pinned to a host
 * CPU), a virtual PCI bus with a host bridge and the assigned devices, and a guest kernel. The guest kernel is
 * the same simulated Linux-like kernel as the host's, booted on a MachinePort that gives it the guest's view:
 * loads and stores at GPAs, configuration space of the virtual bus, MMIO to the assigned devices' BARs (MSI-X
 * tables trapped), firmware tables with guest RAM and the vCPUs (no DMAR: the guest has no IOMMU of its own, so
 * its DMA API hands devices guest-physical addresses), and interrupts the hypervisor injects.
 */
import { IommuError } from "../core/errors.js";
import type { PhysicalMemory } from "../core/memory.js";
import { Kernel } from "../os/kernel.js";
import type { E820Range, IncomingInterrupt, MachinePort } from "../os/port.js";
import type { AssignedDevice } from "./assigned.js";
import { GuestMemoryMap, GuestPhysicalMemory } from "./guest-memory.js";
import { compatMsi, type Delivery, type InjectTarget } from "./interrupts.js";
import type { Container } from "./vfio.js";


/** An interrupt a vCPU received. */
export interface Injection {
  ns: number;
  vector: number;
  /** Requester id of the device whose interrupt it was (null for none). */
  sid: number | null;
}

export class Vcpu implements InjectTarget {
  readonly received: Injection[] = [];
  constructor(
    private readonly vm: Vm,
    readonly index: number,
    /** The guest's APIC id of this vCPU. */
    readonly apicId: number,
    /** APIC id of the host CPU it runs on. */
    readonly pApic: number,
  ) {}

  get vmName(): string {
    return this.vm.name;
  }

  get running(): boolean {
    return this.vm.running;
  }

  inject(vector: number, d: Delivery): void {
    this.received.push({ ns: d.ns, vector, sid: d.sid });
    if (this.received.length > 10_000) this.received.shift();
    this.vm.port.deliver(this.apicId, vector);
    for (const l of this.vm.listeners) l(this, vector);
  }
}

/** The guest kernel's machine: what a guest CPU reaches. */
export class GuestPort implements MachinePort {
  readonly memory: GuestPhysicalMemory;
  readonly firmware: MachinePort["firmware"];
  private handler: ((m: IncomingInterrupt) => void) | null = null;
  private readonly hostBridge = new Uint8Array(256);

  constructor(private readonly vm: Vm, hostMemory: PhysicalMemory) {
    this.memory = new GuestPhysicalMemory(hostMemory, vm.memory);
    const e820: E820Range[] = [{ base: 0, end: vm.memory.size - 1, type: "usable" }];
    this.firmware = { e820, acpi: {}, cpus: vm.vcpus.map((v) => ({ apicId: v.apicId })), ioapics: [] };
    // 00:00.0, a host bridge (the same ids QEMU's q35 shows).
    const hb = this.hostBridge;
    hb[0] = 0x86;
    hb[1] = 0x80;
    hb[2] = 0xc0;
    hb[3] = 0x29;
    hb[0x0a] = 0x00;
    hb[0x0b] = 0x06;
  }

  private deviceAt(addr: number, size: number): { d: AssignedDevice; off: number } | null {
    for (const d of this.vm.devices) {
      if (addr >= d.guestBar0 && addr + size <= d.guestBar0 + d.barSize) return { d, off: addr - d.guestBar0 };
    }
    return null;
  }

  mmioRead(addr: number, size: 4 | 8): bigint {
    const t = this.deviceAt(addr, size);
    if (t === null) return size === 8 ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn;
    return BigInt(t.d.mmioRead(t.off, size));
  }

  mmioRead32(addr: number): number {
    return Number(this.mmioRead(addr, 4));
  }

  mmioWrite(addr: number, size: 4 | 8, value: number | bigint): void {
    const t = this.deviceAt(addr, size);
    if (t !== null) t.d.mmioWrite(t.off, size, Number(value));
  }

  configRead(rid: number, offset: number, size: 1 | 2 | 4): number {
    if (rid === 0) {
      if (offset < 0 || offset + size > 256) return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.hostBridge[offset + i] ?? 0);
      return v >>> 0;
    }
    const d = this.vm.devices.find((x) => x.guestRid === rid);
    if (d === undefined) return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    return d.configRead(offset, size);
  }

  configWrite(rid: number, offset: number, size: 1 | 2 | 4, value: number): void {
    this.vm.devices.find((x) => x.guestRid === rid)?.configWrite(offset, size, value);
  }

  onInterrupt(handler: (m: IncomingInterrupt) => void): void {
    this.handler = handler;
  }

  /** Delivers `vector` to the guest's local APIC `apicId` (fixed delivery). */
  deliver(apicId: number, vector: number): void {
    this.handler?.({ addressLo: compatMsi(vector, apicId).address, addressHi: 0, data: vector & 0xff });
  }
}

export interface VmOptions {
  name: string;
  /** Guest RAM in bytes. */
  memory: number;
  /** Number of vCPUs (guest APIC ids 0..n-1). */
  vcpus?: number;
}

export class Vm {
  readonly name: string;
  readonly memory: GuestMemoryMap;
  readonly vcpus: Vcpu[] = [];
  readonly devices: AssignedDevice[] = [];
  readonly port: GuestPort;
  readonly listeners: ((vcpu: Vcpu, vector: number) => void)[] = [];
  container: Container | null = null;
  kernel: Kernel | null = null;
  running = true;
  destroyed = false;

  constructor(opts: VmOptions, hostMemory: PhysicalMemory, hostCpus: readonly { apicId: number }[]) {
    if (!/^[\w.-]+$/.test(opts.name)) throw new IommuError("VM_CONFIG", `VM name '${opts.name}' must be letters, digits, '.', '_' or '-'`);
    this.name = opts.name;
    this.memory = new GuestMemoryMap(opts.memory);
    const n = opts.vcpus ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 255) throw new IommuError("VM_CONFIG", `${opts.name}: vcpus must be 1..255, got ${n}`);
    for (let i = 0; i < n; i++) {
      const p = hostCpus.length > 0 ? hostCpus[i % hostCpus.length]!.apicId : 0;
      this.vcpus.push(new Vcpu(this, i, i, p));
    }
    this.port = new GuestPort(this, hostMemory);
  }

  /** The guest CPU's view of its RAM. */
  get ram(): GuestPhysicalMemory {
    return this.port.memory;
  }

  /** Boots the guest kernel; it enumerates the virtual bus, binds its drivers and programs their MSIs. */
  boot(cmdline = ""): Kernel {
    this.kernel = Kernel.boot(this.port, { cmdline });
    return this.kernel;
  }

  vcpuByApic(apicId: number): Vcpu | undefined {
    return this.vcpus.find((v) => v.apicId === apicId);
  }

  hpaOf(gpa: number): number | null {
    return this.memory.hpaOf(gpa);
  }

  /** The assigned device at guest `bdf` ("00:03.0"). */
  device(bdf: string): AssignedDevice {
    const d = this.devices.find((x) => x.bdf === bdf || guestBdf(x.guestRid) === bdf);
    if (d === undefined) throw new IommuError("NO_SUCH_DEVICE", `${this.name} has no device ${bdf}`);
    return d;
  }
}

/** "00:03.0" for a guest requester id. */
export function guestBdf(rid: number): string {
  const h = (n: number) => n.toString(16).padStart(2, "0");
  return `${h(rid >>> 8)}:${h((rid >>> 3) & 0x1f)}.${rid & 7}`;
}
