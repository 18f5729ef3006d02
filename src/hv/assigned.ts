/**
 * A physical PCI function given to a VM, as the guest sees it and as the hypervisor drives it (what vfio-pci
 * and QEMU's vfio-pci device do together):
 *
 * - Configuration space: a copy of the device's, with BAR 0 moved to a guest-physical address, the header's
 *   multi-function bit cleared and the MSI / MSI-X capabilities virtualized. The command register passes
 *   through; MSI and MSI-X writes are trapped.
 * - BAR 0: the MSI-X table is emulated (the guest's entries are kept aside); the rest of the BAR reaches the
 *   device's registers directly, as a BAR mapped into the guest does.
 * - Interrupts: when the guest enables a vector (its vector, its vCPU's APIC id), the hypervisor takes a host
 *   vector on the physical CPU that runs that vCPU, allocates an interrupt remapping table entry for it (with
 *   the source-id check Linux sets) and writes the remappable-format message into the physical device's
 *   MSI / MSI-X registers; without interrupt remapping it writes a compatibility-format message. The router
 *   then injects the host vector's interrupts into the vCPU with the guest's vector. A guest moving the
 *   interrupt to another vCPU changes only the table entry (and invalidates its cached copy).
 */
import type { Kernel } from "../os/kernel.js";
import { dmaAliases, type KPciDev } from "../os/pci.js";
import type { MachinePort } from "../os/port.js";
import { compatMsi, type HostIrte, type IrUnit, type InjectTarget, type InterruptRouter } from "./interrupts.js";

/** A device's own registers in BAR 0 (outside the MSI-X table and pending-bit array). */
export interface DeviceModel {
  mmioRead(offset: number, size: 4 | 8): number;
  mmioWrite(offset: number, size: 4 | 8, value: number): void;
  /** Function-level reset: the device forgets everything it was told. */
  reset(): void;
}

export interface AssignHost {
  k: Kernel;
  port: MachinePort;
  router: InterruptRouter;
  irte: HostIrte;
}

/** A guest vCPU as device assignment sees it: where its interrupts go (vm.ts's Vcpu is one). */
export interface VcpuView extends InjectTarget {
  /** The guest's APIC id of this vCPU. */
  readonly apicId: number;
  /** APIC id of the host CPU it runs on. */
  readonly pApic: number;
}

export interface VmView {
  readonly name: string;
  readonly vcpus: readonly VcpuView[];
}

/** One guest interrupt vector as the host backs it. */
export interface HostVector {
  /** MSI-X table index (0 for MSI). */
  index: number;
  /** Host CPU (APIC id) and vector the device's interrupts arrive at. */
  apic: number;
  vector: number;
  /** Interrupt remapping table entry, or null without remapping. */
  irte: number | null;
  unit: IrUnit | null;
  /** What the device was programmed to send. */
  address: number;
  data: number;
  /** Where it is injected. */
  vcpu: number;
  guestVector: number;
  /** Posted-format entry: the device's interrupts are posted into the vCPU's descriptor, no host vector used. */
  posted: boolean;
}

const PCI_COMMAND = 0x04;
const PCI_HEADER_TYPE = 0x0e;
const PCI_BAR0 = 0x10;
const MSIX_ENTRY = 16;
const MSIX_CTRL_MASKBIT = 1;
const MSIX_FLAGS_ENABLE = 0x8000;
const MSIX_FLAGS_MASKALL = 0x4000;
const MSI_FLAGS_ENABLE = 1;

export class AssignedDevice {
  /** The guest's configuration space of the device. */
  readonly config: Uint8Array;
  /** The guest's MSI-X table (16 bytes per vector), or null for an MSI device. */
  readonly msixTable: Uint8Array | null;
  readonly vectorCount: number;
  readonly physBar0: number;
  private readonly vectors: (HostVector | null)[];
  /** Guest MSI-X table writes and MSI capability writes trapped. */
  trappedWrites = 0;

  constructor(
    private readonly host: AssignHost,
    readonly vm: VmView,
    readonly dev: KPciDev,
    readonly guestRid: number,
    readonly guestBar0: number,
    readonly barSize: number,
    readonly model: DeviceModel | null,
  ) {
    const port = host.port;
    const len = dev.pcieType !== null ? 4096 : 256;
    this.config = new Uint8Array(len);
    for (let o = 0; o < len; o += 4) put(this.config, o, 4, port.configRead(dev.rid, o, 4));
    this.physBar0 = (port.configRead(dev.rid, PCI_BAR0, 4) & 0xfffffff0) >>> 0;
    // Virtualized fields: single-function, BAR 0 at its guest address, other BARs hidden, decoding off,
    // MSI/MSI-X disabled with empty messages.
    this.config[PCI_HEADER_TYPE] = (this.config[PCI_HEADER_TYPE] ?? 0) & 0x7f;
    put(this.config, PCI_BAR0, 4, guestBar0 >>> 0);
    for (let b = 1; b < 6; b++) put(this.config, PCI_BAR0 + 4 * b, 4, 0);
    put(this.config, PCI_COMMAND, 2, 0);
    if (dev.msiCap !== 0) {
      put(this.config, dev.msiCap + 2, 2, get(this.config, dev.msiCap + 2, 2) & ~MSI_FLAGS_ENABLE);
      for (let o = 4; o < 14; o++) this.config[dev.msiCap + o] = 0;
    }
    if (dev.msixCap !== 0) put(this.config, dev.msixCap + 2, 2, get(this.config, dev.msixCap + 2, 2) & ~(MSIX_FLAGS_ENABLE | MSIX_FLAGS_MASKALL));
    this.vectorCount = dev.msixCap !== 0 ? dev.msiVectors : dev.msiCap !== 0 ? 1 : 0;
    this.msixTable = dev.msixCap !== 0 ? new Uint8Array(MSIX_ENTRY * this.vectorCount) : null;
    for (let i = 0; i < (this.msixTable === null ? 0 : this.vectorCount); i++) put(this.msixTable!, MSIX_ENTRY * i + 12, 4, MSIX_CTRL_MASKBIT);
    this.vectors = new Array<HostVector | null>(this.vectorCount).fill(null);
  }

  /** "00:02.0" */
  get bdf(): string {
    return this.dev.name.slice(5);
  }

  /** Host vectors backing the guest's enabled interrupts. */
  hostVectors(): HostVector[] {
    return this.vectors.filter((v): v is HostVector => v !== null);
  }

  // ---- Guest configuration space ----

  configRead(offset: number, size: 1 | 2 | 4): number {
    if (offset < 0 || offset + size > this.config.length) return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    return get(this.config, offset, size);
  }

  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    const d = this.dev;
    if (offset >= PCI_COMMAND && offset < PCI_COMMAND + 2) {
      put(this.config, offset, size, value);
      // Memory decoding and bus mastering pass through to the device.
      this.host.port.configWrite(d.rid, PCI_COMMAND, 2, get(this.config, PCI_COMMAND, 2) & 0x7);
      return;
    }
    if (d.msiCap !== 0 && offset >= d.msiCap + 2 && offset + size <= d.msiCap + 14) {
      this.trappedWrites++;
      const before = get(this.config, d.msiCap + 2, 2) & MSI_FLAGS_ENABLE;
      put(this.config, offset, size, value);
      const ctl = get(this.config, d.msiCap + 2, 2);
      if ((ctl & MSI_FLAGS_ENABLE) !== 0) this.program(0, get(this.config, d.msiCap + 4, 4), get(this.config, d.msiCap + 12, 2));
      else if (before !== 0) this.teardown(0, true);
      return;
    }
    if (d.msixCap !== 0 && offset <= d.msixCap + 3 && offset + size > d.msixCap + 2) {
      this.trappedWrites++;
      const before = get(this.config, d.msixCap + 2, 2);
      // Only the enable and function-mask bits are writable (bits 15:14 of Message Control).
      for (let i = 0; i < size; i++) {
        const at = offset + i;
        if (at === d.msixCap + 3) this.config[at] = ((this.config[at] ?? 0) & 0x3f) | ((value >>> (8 * i)) & 0xc0);
      }
      const ctl = get(this.config, d.msixCap + 2, 2);
      if (ctl !== before) this.msixControlChanged(ctl);
    }
  }

  private msixEnabled(): boolean {
    const ctl = get(this.config, this.dev.msixCap + 2, 2);
    return (ctl & MSIX_FLAGS_ENABLE) !== 0 && (ctl & MSIX_FLAGS_MASKALL) === 0;
  }

  private msixControlChanged(ctl: number): void {
    const port = this.host.port;
    const d = this.dev;
    if ((ctl & MSIX_FLAGS_ENABLE) === 0) {
      for (let i = 0; i < this.vectorCount; i++) this.teardown(i, true);
      port.configWrite(d.rid, d.msixCap + 2, 2, port.configRead(d.rid, d.msixCap + 2, 2) & ~MSIX_FLAGS_ENABLE);
      return;
    }
    for (let i = 0; i < this.vectorCount; i++) this.syncMsixEntry(i);
    const phys = port.configRead(d.rid, d.msixCap + 2, 2);
    port.configWrite(d.rid, d.msixCap + 2, 2, ((phys | MSIX_FLAGS_ENABLE) & ~MSIX_FLAGS_MASKALL) | (ctl & MSIX_FLAGS_MASKALL));
  }

  // ---- Guest BAR 0 ----

  mmioRead(offset: number, size: 4 | 8): number {
    const t = this.msixTable;
    if (t !== null && offset < t.length) return size === 4 ? get(t, offset, 4) : get(t, offset, 4) + get(t, offset + 4, 4) * 2 ** 32;
    if (t !== null && offset >= 0x800 && offset < 0x1000) return 0; // pending bits: none pending
    return this.model?.mmioRead(offset, size) ?? 0xffffffff;
  }

  mmioWrite(offset: number, size: 4 | 8, value: number): void {
    const t = this.msixTable;
    if (t !== null && offset < t.length) {
      this.trappedWrites++;
      put(t, offset, 4, value % 2 ** 32);
      if (size === 8) put(t, offset + 4, 4, Math.floor(value / 2 ** 32));
      this.syncMsixEntry(Math.floor(offset / MSIX_ENTRY));
      return;
    }
    if (t !== null && offset >= 0x800 && offset < 0x1000) return;
    this.model?.mmioWrite(offset, size, value);
  }

  /** Brings the physical entry in line with the guest's: programmed when enabled and unmasked, else masked. */
  private syncMsixEntry(i: number): void {
    const t = this.msixTable;
    if (t === null || i >= this.vectorCount) return;
    const o = MSIX_ENTRY * i;
    const masked = (get(t, o + 12, 4) & MSIX_CTRL_MASKBIT) !== 0;
    if (!this.msixEnabled()) return;
    if (masked) {
      if (this.vectors[i] !== null) this.host.port.mmioWrite(this.physBar0 + o + 12, 4, MSIX_CTRL_MASKBIT);
      return;
    }
    this.program(i, get(t, o, 4), get(t, o + 8, 4));
  }

  // ---- Host side ----

  /**
   * Backs guest vector `i` (guest message address/data) with a host vector on the vCPU's physical CPU and
   * programs the device with the message that reaches it.
   */
  private program(i: number, guestAddress: number, guestData: number): void {
    const { router, irte, port } = this.host;
    const gApic = (guestAddress >>> 12) & 0xff;
    const vcpu = this.vm.vcpus.find((v) => v.apicId === gApic) ?? this.vm.vcpus[0]!;
    const guestVector = guestData & 0xff;
    const d = this.dev;
    let hv = this.vectors[i] ?? null;
    const postUnit = irte.unitFor(d);
    if (hv === null && postUnit !== null && irte.postedSupported(postUnit)) {
      // Posted: the entry names the vCPU's descriptor and the guest's own vector.
      const e = irte.allocPosted(postUnit, d, guestVector, irte.pidFor(vcpu, router));
      hv = { index: i, apic: vcpu.pApic, vector: -1, irte: e.index, unit: postUnit, address: e.address, data: e.data, vcpu: vcpu.index, guestVector, posted: true };
      this.vectors[i] = hv;
    } else if (hv !== null && hv.posted && hv.unit !== null && hv.irte !== null && irte.postedSupported(hv.unit)) {
      // The guest moved the interrupt or changed its vector: only the entry changes.
      if (hv.vcpu !== vcpu.index || hv.guestVector !== guestVector) {
        irte.modifyPosted(hv.unit, d, hv.irte, guestVector, irte.pidFor(vcpu, router));
        hv.apic = vcpu.pApic;
      }
    } else if (hv !== null && hv.apic !== vcpu.pApic) {
      // Another physical CPU: a vector there, and the entry (or compatibility message) rewritten.
      const vector = router.allocVector(vcpu.pApic);
      router.freeVector(hv.apic, hv.vector);
      hv.apic = vcpu.pApic;
      hv.vector = vector;
      if (hv.irte !== null && hv.unit !== null) irte.modify(hv.unit, d, hv.irte, vector, vcpu.pApic);
      else Object.assign(hv, compatMsi(vector, vcpu.pApic));
    } else if (hv === null) {
      const vector = router.allocVector(vcpu.pApic);
      const unit = irte.unitFor(d);
      if (unit !== null) {
        const e = irte.alloc(unit, d, vector, vcpu.pApic);
        hv = { index: i, apic: vcpu.pApic, vector, irte: e.index, unit, address: e.address, data: e.data, vcpu: vcpu.index, guestVector, posted: false };
      } else {
        const m = compatMsi(vector, vcpu.pApic);
        hv = { index: i, apic: vcpu.pApic, vector, irte: null, unit: null, address: m.address, data: m.data, vcpu: vcpu.index, guestVector, posted: false };
      }
      this.vectors[i] = hv;
    }
    hv.vcpu = vcpu.index;
    hv.guestVector = guestVector;
    if (!hv.posted) router.setRoute(hv.apic, hv.vector, { target: vcpu, guestVector, sid: requesterIdAtRoot(d) });
    if (d.msixCap !== 0) {
      const a = this.physBar0 + MSIX_ENTRY * i;
      port.mmioWrite(a, 4, hv.address);
      port.mmioWrite(a + 4, 4, 0);
      port.mmioWrite(a + 8, 4, hv.data);
      port.mmioWrite(a + 12, 4, 0);
    } else if (d.msiCap !== 0) {
      port.configWrite(d.rid, d.msiCap + 4, 4, hv.address);
      port.configWrite(d.rid, d.msiCap + 8, 4, 0);
      port.configWrite(d.rid, d.msiCap + 12, 2, hv.data & 0xffff);
      port.configWrite(d.rid, d.msiCap + 2, 2, port.configRead(d.rid, d.msiCap + 2, 2) | MSI_FLAGS_ENABLE);
    }
  }

  /** Stops guest vector `i`: masked at the device, its table entry freed (invalidated unless told not to). */
  teardown(i: number, invalidate: boolean): void {
    const hv = this.vectors[i];
    if (hv === null || hv === undefined) return;
    const { router, irte, port } = this.host;
    const d = this.dev;
    if (d.msixCap !== 0) port.mmioWrite(this.physBar0 + MSIX_ENTRY * i + 12, 4, MSIX_CTRL_MASKBIT);
    else if (d.msiCap !== 0) port.configWrite(d.rid, d.msiCap + 2, 2, port.configRead(d.rid, d.msiCap + 2, 2) & ~MSI_FLAGS_ENABLE);
    if (hv.irte !== null && hv.unit !== null) irte.free(hv.unit, d, hv.irte, invalidate);
    if (!hv.posted) router.freeVector(hv.apic, hv.vector);
    this.vectors[i] = null;
  }

  /** Every vector torn down and MSI/MSI-X off at the device (vfio_pci_core_disable). */
  disableInterrupts(invalidate = true): void {
    for (let i = 0; i < this.vectorCount; i++) this.teardown(i, invalidate);
    const port = this.host.port;
    const d = this.dev;
    if (d.msixCap !== 0) port.configWrite(d.rid, d.msixCap + 2, 2, port.configRead(d.rid, d.msixCap + 2, 2) & ~MSIX_FLAGS_ENABLE);
  }
}

/** The requester id a device's requests carry at the root complex (its last DMA alias). */
export function requesterIdAtRoot(d: KPciDev): number {
  const a = dmaAliases(d);
  return a[a.length - 1]?.rid ?? d.rid;
}

function get(b: Uint8Array, o: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + (b[o + i] ?? 0);
  return v >>> 0;
}

function put(b: Uint8Array, o: number, n: number, v: number): void {
  for (let i = 0; i < n; i++) b[o + i] = (v >>> (8 * i)) & 0xff;
}

