/**
 * A NIC-like device and the guest driver for it.
 *
 * The device keeps receive and transmit descriptor rings in the memory its driver gives it, with the register
 * and descriptor layout of Intel's e1000 legacy descriptors (RDBAL 0x2800 … TDT 0x3818; 16-byte descriptors:
 * buffer address, length, status with DD and EOP). Receiving a frame fetches the descriptor at the head, writes
 * the frame into its buffer, writes the descriptor back with DD set and signals MSI-X vector 0; a tail write
 * makes it transmit. All of it is DMA by the addresses the driver wrote, through the IOMMU. The control register
 * sits at 0x1000 here because this machine keeps the MSI-X table at BAR 0 offset 0.
 *
 * The guest driver runs on the guest kernel's DMA API (no IOMMU in the guest: DMA addresses are guest-physical)
 * and programs the registers through the guest's MMIO, which the hypervisor maps to the device.
 *
 * DeviceFirmware is the device turned hostile: whoever controls its firmware (a malicious guest, through a
 * firmware update or a debug interface) issues any DMA or interrupt message it likes, at any time. A function
 * reset does not stop it; only the IOMMU can.
 */
import { IommuError } from "../core/errors.js";
import type { DmaOutcome } from "../hw/platform.js";
import type { TranslateResult } from "../hw/vtd/unit.js";
import type { RequestAttributes } from "../hw/vtd/request.js";
import type { Clock } from "../os/log.js";
import type { DeviceModel } from "./assigned.js";
import type { DmaPort } from "./monitor.js";
import type { Vcpu, Vm } from "./vm.js";
import { TWO32 } from "../core/u64.js";
import { encodeCompatMsi } from "../spec/msi.js";

export const NIC_CTRL = 0x1000;
export const NIC_CTRL_RST = 1 << 26;
export const NIC_RDBAL = 0x2800;
export const NIC_RDBAH = 0x2804;
export const NIC_RDLEN = 0x2808;
export const NIC_RDH = 0x2810;
export const NIC_RDT = 0x2818;
export const NIC_TDBAL = 0x3800;
export const NIC_TDBAH = 0x3804;
export const NIC_TDLEN = 0x3808;
export const NIC_TDH = 0x3810;
export const NIC_TDT = 0x3818;
/** Descriptor status bits. */
export const DESC_DD = 1;
export const DESC_EOP = 2;
/** Transmit command bits. */
export const TXD_CMD_EOP = 1;
export const TXD_CMD_RS = 8;
const DESC = 16;

export interface NicStats {
  received: number;
  /** Frames dropped: no free descriptor, or the device not enabled. */
  dropped: number;
  transmitted: number;
  /** DMA requests the IOMMU refused. */
  dmaErrors: number;
  resets: number;
}

export class NicModel implements DeviceModel {
  private readonly regs = new Map<number, number>();
  /** Frames put on the wire, oldest first. */
  readonly wire: Uint8Array[] = [];
  readonly stats: NicStats = { received: 0, dropped: 0, transmitted: 0, dmaErrors: 0, resets: 0 };

  constructor(
    readonly port: DmaPort,
    /** Bus mastering enabled (the function's command register); the NIC issues no DMA without it. */
    private readonly busMaster: () => boolean,
  ) {}

  private reg(o: number): number {
    return this.regs.get(o) ?? 0;
  }

  mmioRead(offset: number): number {
    return this.reg(offset);
  }

  mmioWrite(offset: number, _size: 4 | 8, value: number): void {
    const v = value >>> 0;
    if (offset === NIC_CTRL && (v & NIC_CTRL_RST) !== 0) {
      this.reset();
      return;
    }
    this.regs.set(offset, v);
    if (offset === NIC_TDT) this.transmit();
  }

  reset(): void {
    this.regs.clear();
    this.stats.resets++;
  }

  private ring(lo: number, hi: number): number | bigint {
    return addr64(this.reg(lo), this.reg(hi));
  }

  private fail(o: DmaOutcome): boolean {
    if (o.ok) return false;
    this.stats.dmaErrors++;
    return true;
  }

  /** A frame arrives from the wire. */
  receive(frame: Uint8Array): boolean {
    const count = Math.floor(this.reg(NIC_RDLEN) / DESC);
    const head = this.reg(NIC_RDH);
    if (!this.busMaster() || count === 0 || head === this.reg(NIC_RDT)) {
      this.stats.dropped++;
      return false;
    }
    const at = plus(this.ring(NIC_RDBAL, NIC_RDBAH), head * DESC);
    const d = this.port.read(at, DESC, "RX descriptor fetch");
    if (this.fail(d) || !d.ok || d.data === undefined) return false;
    const v = new DataView(d.data.buffer, d.data.byteOffset, DESC);
    const buf = addr64(v.getUint32(0, true), v.getUint32(4, true));
    if (this.fail(this.port.write(buf, frame, "RX frame data"))) return false;
    const wb = new Uint8Array(DESC);
    wb.set(d.data.subarray(0, 8));
    new DataView(wb.buffer).setUint16(8, frame.length, true);
    wb[12] = DESC_DD | DESC_EOP;
    if (this.fail(this.port.write(at, wb, "RX descriptor write-back"))) return false;
    this.regs.set(NIC_RDH, (head + 1) % count);
    this.stats.received++;
    this.port.signal(0, "RX interrupt (MSI-X 0)");
    return true;
  }

  private transmit(): void {
    const count = Math.floor(this.reg(NIC_TDLEN) / DESC);
    if (!this.busMaster() || count === 0) return;
    let head = this.reg(NIC_TDH);
    let sent = 0;
    while (head !== this.reg(NIC_TDT) % count) {
      const at = plus(this.ring(NIC_TDBAL, NIC_TDBAH), head * DESC);
      const d = this.port.read(at, DESC, "TX descriptor fetch");
      if (this.fail(d) || !d.ok || d.data === undefined) break;
      const v = new DataView(d.data.buffer, d.data.byteOffset, DESC);
      const buf = addr64(v.getUint32(0, true), v.getUint32(4, true));
      const len = v.getUint16(8, true);
      const f = this.port.read(buf, len, "TX frame data");
      if (this.fail(f) || !f.ok || f.data === undefined) break;
      this.wire.push(f.data);
      const wb = d.data.slice();
      wb[12] = DESC_DD;
      if (this.fail(this.port.write(at, wb, "TX descriptor write-back"))) break;
      head = (head + 1) % count;
      this.regs.set(NIC_TDH, head);
      this.stats.transmitted++;
      sent++;
    }
    if (sent > 0) this.port.signal(1, "TX interrupt (MSI-X 1)");
  }
}

/** A 64-bit bus address from the guest's registers or descriptors: a number while exact, else a bigint. */
function addr64(lo: number, hi: number): number | bigint {
  return hi < 0x200000 ? hi * TWO32 + lo : (BigInt(hi) << 32n) | BigInt(lo);
}

function plus(a: number | bigint, n: number): number | bigint {
  if (typeof a === "number" && Number.isSafeInteger(a + n)) return a + n;
  return BigInt.asUintN(64, BigInt(a) + BigInt(n));
}

/** The device's firmware under an attacker's control: raw requests, now or later. A reset does not stop it. */
export class DeviceFirmware {
  readonly scheduled: { at: number; what: string }[] = [];
  constructor(
    readonly port: DmaPort,
    private readonly clock: Clock,
  ) {}

  /** DMA as the firmware issues it; `attrs` adds a PASID prefix. */
  write(addr: number, data: Uint8Array, purpose: string, attrs?: RequestAttributes): DmaOutcome {
    return this.port.write(addr, data, purpose, attrs);
  }

  read(addr: number, length: number, purpose: string, attrs?: RequestAttributes): DmaOutcome {
    return this.port.read(addr, length, purpose, attrs);
  }

  msi(address: number, data: number, purpose: string): TranslateResult {
    return this.port.msi(address, data, purpose);
  }

  /** A write the device will issue `delayNs` from now, whoever owns it by then. */
  writeLater(delayNs: number, addr: number, data: Uint8Array, purpose: string, done?: (o: DmaOutcome) => void, attrs?: RequestAttributes): void {
    this.scheduled.push({ at: this.clock.ns + delayNs, what: purpose });
    this.clock.schedule(delayNs, () => {
      const o = this.port.write(addr, data, purpose, attrs);
      done?.(o);
    });
  }
}

/** A received frame as the guest driver sees it. */
export interface RxFrame {
  /** Guest-physical address of the buffer the frame is in. */
  gpa: number;
  data: Uint8Array;
}

/** The guest's driver for NicModel: rings in guest memory, registers through the guest's MMIO. */
export class GuestNicDriver {
  readonly rxRing: number;
  readonly txRing: number;
  /** Guest-physical addresses of the receive buffers, by descriptor. */
  readonly rxBuffers: number[] = [];
  private rxNext = 0;
  private txTail = 0;
  private readonly bar0: number;
  private readonly rid: number;

  constructor(
    readonly vm: Vm,
    /** The device's guest BDF ("00:03.0"). */
    readonly guestBdf: string,
    readonly ringSize = 8,
    readonly bufferSize = 2048,
  ) {
    const k = vm.kernel;
    if (k === null) throw new IommuError("VM_NOT_BOOTED", `${vm.name} has not booted its kernel`);
    const dev = k.pciDevice(guestBdf);
    const dma = k.dma(guestBdf);
    this.rid = dev.rid;
    this.bar0 = (vm.port.configRead(dev.rid, 0x10, 4) & 0xfffffff0) >>> 0;
    // pci_set_master: memory decoding and bus mastering on.
    vm.port.configWrite(dev.rid, 0x04, 2, vm.port.configRead(dev.rid, 0x04, 2) | 0x6);
    const ram = vm.ram;
    const rx = dma.allocCoherent(ringSize * DESC);
    const tx = dma.allocCoherent(ringSize * DESC);
    if (rx === null || tx === null) throw new IommuError("OUT_OF_MEMORY", `${vm.name}: no memory for the NIC rings`);
    this.rxRing = rx.dma;
    this.txRing = tx.dma;
    for (let i = 0; i < ringSize; i++) {
      const page = k.pages.alloc(1);
      const a = dma.mapSingle(page, bufferSize, "from-device");
      this.rxBuffers.push(a);
      ram.write64(this.rxRing + i * DESC, BigInt(a));
      ram.write64(this.rxRing + i * DESC + 8, 0n);
    }
    this.w(NIC_RDBAL, this.rxRing % TWO32);
    this.w(NIC_RDBAH, Math.floor(this.rxRing / TWO32));
    this.w(NIC_RDLEN, ringSize * DESC);
    this.w(NIC_RDH, 0);
    this.w(NIC_RDT, ringSize - 1);
    this.w(NIC_TDBAL, this.txRing % TWO32);
    this.w(NIC_TDBAH, Math.floor(this.txRing / TWO32));
    this.w(NIC_TDLEN, ringSize * DESC);
    this.w(NIC_TDH, 0);
    this.w(NIC_TDT, 0);
  }

  private w(reg: number, v: number): void {
    this.vm.port.mmioWrite(this.bar0 + reg, 4, v);
  }

  /** Collects received frames (descriptors with DD set) and gives their descriptors back to the device. */
  poll(): RxFrame[] {
    const ram = this.vm.ram;
    const out: RxFrame[] = [];
    for (let n = 0; n < this.ringSize; n++) {
      const at = this.rxRing + this.rxNext * DESC;
      if ((ram.read8(at + 12) & DESC_DD) === 0) break;
      const len = ram.read16(at + 8);
      const gpa = this.rxBuffers[this.rxNext]!;
      out.push({ gpa, data: ram.read(gpa, len) });
      ram.write8(at + 12, 0);
      this.w(NIC_RDT, this.rxNext);
      this.rxNext = (this.rxNext + 1) % this.ringSize;
    }
    return out;
  }

  /** Queues a frame for transmission (a buffer mapped to-device, a descriptor, a tail write). */
  send(frame: Uint8Array): number {
    const k = this.vm.kernel!;
    const ram = this.vm.ram;
    const page = k.pages.alloc(1);
    ram.write(page, frame);
    const a = k.dma(this.guestBdf).mapSingle(page, frame.length, "to-device");
    const at = this.txRing + this.txTail * DESC;
    ram.write64(at, BigInt(a));
    ram.write16(at + 8, frame.length);
    ram.write8(at + 11, TXD_CMD_EOP | TXD_CMD_RS);
    ram.write8(at + 12, 0);
    this.txTail = (this.txTail + 1) % this.ringSize;
    this.w(NIC_TDT, this.txTail);
    return a;
  }

  /** The guest kernel's interrupt descriptors of this device, by MSI-X index. */
  irqs(): { irq: number; vector: number; count: number }[] {
    const k = this.vm.kernel!;
    return k.irqs.filter((q) => q.dev?.rid === this.rid).map((q) => ({ irq: q.irq, vector: q.vector, count: q.count }));
  }

  /**
   * Moves MSI-X vector `index` to `vcpu` (writing /proc/irq/N/smp_affinity): the entry is masked, its
   * destination rewritten, and unmasked, as Linux's MSI-X code does.
   */
  setAffinity(index: number, vcpu: Vcpu): void {
    const e = this.bar0 + 16 * index;
    const p = this.vm.port;
    const data = p.mmioRead32(e + 8);
    p.mmioWrite(e + 12, 4, 1);
    p.mmioWrite(e, 4, encodeCompatMsi({ vector: 0, destination: vcpu.apicId }).address);
    p.mmioWrite(e + 4, 4, 0);
    p.mmioWrite(e + 8, 4, data);
    p.mmioWrite(e + 12, 4, 0);
  }
}
