/**
 * A machine: physical memory, a PCI bus, IOMMUs — VT-d remapping units or AMD-Vi units, both behind one
 * interface (hw/iommu-unit.ts), each covering some source ids as a DMAR DRHD's device scope or an IVHD's device
 * entries say — MMIO dispatch to their register windows, and an interrupt sink that receives every interrupt
 * message (device MSIs after remapping, and the units' own fault, event-log and invalidation interrupts).
 *
 * Devices reach memory only through `dmaRead` / `dmaWrite` / `msi`, which go through the unit covering their
 * requester id (or straight to memory when none does, like a platform without an IOMMU).
 */
import { PhysicalMemory, type MemoryRange } from "../core/memory.js";
import { requesterId, type PciAddress } from "../core/pci.js";
import type { InterruptMessage, InterruptSink } from "./interrupt-message.js";
import { PciBus, type PciDevice } from "./pci/bus.js";
import { VtdUnit, type DmaSegment, type TranslateResult } from "./vtd/unit.js";
import type { RequestAttributes } from "./vtd/request.js";
import type { VtdConfig } from "./vtd/config.js";
import type { TableReader } from "./vtd/walk.js";
import { decodeCompatMsi, isInterruptAddress } from "../spec/msi.js";
import type { PlatformUnit } from "./iommu-unit.js";
import { AmdViUnit, type AmdViConfig } from "./amdvi/unit.js";
import { AmdViPlatformUnit } from "./amdvi/platform-unit.js";
import type { UnitMemory } from "./amdvi/commands.js";

export type { InterruptMessage, InterruptSink } from "./interrupt-message.js";

/** Which requester ids a unit translates (DMAR DRHD device scope, or INCLUDE_PCI_ALL). */
export interface UnitScope {
  /** Catch-all unit for ids no other unit lists (at most one). */
  includeAll?: boolean;
  /** Requester ids. */
  sids?: number[];
  /** Inclusive bus ranges [first, last]. */
  buses?: [number, number][];
}

export interface PlatformOptions {
  memory?: PhysicalMemory;
  /**
   * Bytes of RAM from address 0. When given, table reads beyond it are access errors (faults 0x7, 0x8, 0x9,
   * 0x3, 0x23 as the spec names them) and DMA beyond it reads ones and drops writes. Default: all 2^52 bytes.
   */
  ramSize?: number;
  /**
   * The RAM ranges of the memory map (q35: below the PCI hole and from 4 GiB up). Everything else — the PCI hole
   * with device BARs and the remapping units' registers — is not memory: table reads there are access errors,
   * device reads there return all ones and writes are dropped (an unsupported request). Overrides `ramSize`.
   */
  ram?: RamRange[];
  /** Called for every interrupt message, after it is logged in `interrupts`. */
  interruptSink?: InterruptSink;
}

/** A range of RAM in the physical address space: [base, base + size). */
export type RamRange = MemoryRange;

interface MappedUnit {
  unit: PlatformUnit;
  base: number;
  scope: UnitScope;
}

export type DmaOutcome =
  | {
      ok: true;
      data?: Uint8Array;
      segments: DmaSegment[];
      /** Bytes that went to no RAM and no device (the PCI hole, a unit's registers, beyond memory): read as all ones, writes dropped. */
      unsupportedBytes: number;
      /** Parts that went to another device's memory BAR (peer-to-peer), in order. */
      peer?: PeerAccess[];
    }
  | { ok: false; result: TranslateResult };

/**
 * A function's memory BAR as the platform routes it: CPU accesses and device requests to [base, base + size) go to
 * that function. `read`/`write` serve ranges the device model handles itself (e.g. its MSI-X table) and return
 * false for the rest, which lands in the platform's BAR storage.
 */
export interface BarWindow {
  base: number;
  size: number;
  /** The function that owns it ("00:02.0"). */
  owner: string;
  /** BAR number in the function's header. */
  index: number;
  read?(addr: number, out: Uint8Array): boolean;
  write?(addr: number, bytes: Uint8Array): boolean;
}

/** A part of a DMA request that a peer device's BAR received. */
export interface PeerAccess {
  owner: string;
  bar: number;
  /** Bus address the request reached (after translation). */
  address: number;
  bytes: number;
}

/** Addresses past this are not exact as numbers (and lie beyond any RAM or BAR of the machine). */
const MAX_SAFE_ADDRESS = BigInt(Number.MAX_SAFE_INTEGER);

/** The default MMIO base of QEMU's q35 intel-iommu (Q35_HOST_BRIDGE_IOMMU_ADDR). */
export const QEMU_VTD_BASE = 0xfed90000;

export class Platform {
  readonly memory: PhysicalMemory;
  readonly pci = new PciBus();
  /** Every interrupt message delivered, oldest first. */
  readonly interrupts: InterruptMessage[] = [];
  readonly ramSize: number | null;
  /** RAM ranges, ascending; null = all 2^52 bytes. */
  readonly ram: readonly RamRange[] | null;
  private readonly units: MappedUnit[] = [];
  private readonly bars: BarWindow[] = [];
  /** What devices hold behind their memory BARs (registers, on-device memory), written by the CPU and by peers. */
  readonly barMemory = new PhysicalMemory();
  private readonly userSink: InterruptSink | undefined;
  /** Memory as the units' table walks read it: only RAM answers (a read elsewhere is an access error). */
  readonly reader: TableReader;

  constructor(opts: PlatformOptions = {}) {
    this.userSink = opts.interruptSink;
    this.ramSize = opts.ramSize ?? null;
    const ranges = opts.ram ?? (this.ramSize === null ? null : [{ base: 0, size: this.ramSize }]);
    this.ram = ranges === null ? null : [...ranges].filter((r) => r.size > 0).sort((a, b) => a.base - b.base);
    // RAM pages are found by index in the memory; everything else (the PCI hole, MMIO) is sparse.
    this.memory = opts.memory ?? new PhysicalMemory(this.ram === null ? {} : { ram: this.ram });
    const mem = this.memory;
    this.reader =
      this.ram === null
        ? mem
        : {
            // Outside RAM a table read fails: the walkers ask canRead first and fault with the access-error
            // reason the spec names (0x8 root table, 0x9 context table, 0x7 paging entry, 0x23 IRTE).
            read32: (a) => {
              const n = Number(a);
              if (!this.ramContains(n, 4)) throw new RangeError(`physical address 0x${n.toString(16)} is not RAM`);
              return mem.read32(n);
            },
            canRead: (a, n) => this.ramContains(a, n),
          };
  }

  /** Whether [addr, addr + length) lies in one RAM range. */
  ramContains(addr: number, length: number): boolean {
    if (!(addr >= 0)) return false;
    if (this.ram === null) return addr + length <= 2 ** 52;
    for (const r of this.ram) if (addr >= r.base && addr + length <= r.base + r.size) return true;
    return false;
  }

  /** Delivers an interrupt message to the sink (units call this; so can interrupt-raising device models). */
  readonly deliver: InterruptSink = (m) => {
    this.interrupts.push(m);
    this.userSink?.(m);
  };

  /** Creates a VT-d remapping unit with its registers at `base` covering `scope`. */
  addVtdUnit(opts: { base?: number; config?: Partial<VtdConfig>; scope?: UnitScope; name?: string } = {}): VtdUnit {
    const unit = new VtdUnit({
      memory: this.memory,
      config: opts.config ?? {},
      interruptSink: this.deliver,
      reader: this.reader,
      name: opts.name ?? `dmar${this.units.length}`,
    });
    this.addUnit(unit, opts.base ?? QEMU_VTD_BASE, opts.scope ?? { includeAll: true });
    return unit;
  }

  /**
   * Creates an AMD-Vi unit with its registers at `base` covering `scope`; its table reads outside RAM fail as the
   * spec's hardware-error events. `interruptRemapping: false` lets MSIs pass unchanged.
   */
  addAmdViUnit(opts: { base: number; name: string; scope?: UnitScope; config?: AmdViConfig; interruptRemapping?: boolean }): AmdViPlatformUnit {
    const unit = new AmdViUnit(this.memory, { ...opts.config, name: opts.name, ...(this.ram === null ? {} : { tableMemory: this.ramView() }) }, this.deliver);
    const p = new AmdViPlatformUnit(unit, opts.name, this.deliver, opts.interruptRemapping ?? true);
    this.addUnit(p, opts.base, opts.scope ?? { includeAll: true });
    return p;
  }

  /** Memory where only RAM answers: accesses elsewhere throw, which the AMD-Vi unit turns into the spec's events. */
  private ramView(): UnitMemory {
    const mem = this.memory;
    const check = (a: number | bigint): number => {
      const n = Number(a);
      if (!this.ramContains(n, 4)) throw new RangeError(`physical address 0x${n.toString(16)} is not RAM`);
      return n;
    };
    return { read32: (a) => mem.read32(check(a)), write32: (a, v) => mem.write32(check(a), v) };
  }

  /** Maps a unit's registers at `base` and routes the requester ids of `scope` to it. */
  addUnit(unit: PlatformUnit, base: number, scope: UnitScope): void {
    for (const u of this.units) {
      if (base < u.base + u.unit.mmioSize && u.base < base + unit.mmioSize) {
        throw new RangeError(`register window at 0x${base.toString(16)} overlaps ${u.unit.name} at 0x${u.base.toString(16)}`);
      }
      if (scope.includeAll === true && u.scope.includeAll === true) throw new RangeError(`${u.unit.name} already includes all devices`);
    }
    this.units.push({ unit, base, scope });
  }

  /** Routes a function's memory BAR. Overlapping another BAR, a unit's registers or RAM is refused. */
  addBarWindow(w: BarWindow): void {
    const clash = (base: number, size: number) => w.base < base + size && base < w.base + w.size;
    const other = this.bars.find((b) => clash(b.base, b.size));
    if (other !== undefined) throw new RangeError(`${w.owner} BAR ${w.index} at 0x${w.base.toString(16)} overlaps ${other.owner} BAR ${other.index}`);
    const unit = this.units.find((u) => clash(u.base, u.unit.mmioSize));
    if (unit !== undefined) throw new RangeError(`${w.owner} BAR ${w.index} at 0x${w.base.toString(16)} overlaps ${unit.unit.name}'s registers`);
    if (this.ram !== null && this.ram.some((r) => clash(r.base, r.size))) throw new RangeError(`${w.owner} BAR ${w.index} at 0x${w.base.toString(16)} overlaps RAM`);
    this.bars.push(w);
  }

  /** The BAR window that holds all of [addr, addr + length), or null. */
  barAt(addr: number, length: number): BarWindow | null {
    for (const b of this.bars) if (addr >= b.base && addr + length <= b.base + b.size) return b;
    return null;
  }

  private barRead(b: BarWindow, addr: number, out: Uint8Array): void {
    if (b.read?.(addr, out) !== true) out.set(this.barMemory.read(addr, out.length));
  }

  private barWrite(b: BarWindow, addr: number, bytes: Uint8Array): void {
    if (b.write?.(addr, bytes) !== true) this.barMemory.write(addr, bytes);
  }

  addDevice(device: PciDevice): void {
    this.pci.add(device);
  }

  /** The unit that translates requests from `sid`, or null when none covers it. */
  unitFor(sid: number): PlatformUnit | null {
    const s = sid & 0xffff;
    const bus = s >>> 8;
    let all: PlatformUnit | null = null;
    for (const u of this.units) {
      if (u.scope.sids?.includes(s) === true) return u.unit;
      if (u.scope.buses?.some(([a, b]) => bus >= a && bus <= b) === true) return u.unit;
      if (u.scope.includeAll === true) all = u.unit;
    }
    return all;
  }

  unitForDevice(address: PciAddress): PlatformUnit | null {
    return this.unitFor(requesterId(address));
  }

  // ---- MMIO ----

  private mmioTarget(addr: number, size: number): { unit: PlatformUnit; offset: number } | null {
    for (const u of this.units) {
      if (addr >= u.base && addr + size <= u.base + u.unit.mmioSize) return { unit: u.unit, offset: addr - u.base };
    }
    return null;
  }

  /** CPU MMIO read: a unit register, a device's BAR, or all ones where nothing is mapped. */
  mmioRead(addr: number, size: 4 | 8): bigint {
    const t = this.mmioTarget(addr, size);
    if (t !== null) return BigInt(t.unit.mmioRead(t.offset, size));
    const bar = this.barAt(addr, size);
    if (bar === null) return size === 8 ? 0xffffffffffffffffn : 0xffffffffn;
    const b = new Uint8Array(size);
    this.barRead(bar, addr, b);
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] ?? 0);
    return v;
  }

  mmioRead32(addr: number): number {
    return Number(this.mmioRead(addr, 4));
  }

  /** CPU MMIO write to a unit register or a device's BAR; writes where nothing is mapped are dropped. */
  mmioWrite(addr: number, size: 4 | 8, value: number | bigint): void {
    const t = this.mmioTarget(addr, size);
    if (t !== null) {
      t.unit.mmioWrite(t.offset, size, value);
      return;
    }
    const bar = this.barAt(addr, size);
    if (bar === null) return;
    let v = BigInt.asUintN(size * 8, BigInt(value));
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i++, v >>= 8n) b[i] = Number(v & 0xffn);
    this.barWrite(bar, addr, b);
  }

  // ---- DMA ----

  /** Translates a device request through its unit (identity when no unit covers it). */
  translate(sid: number, addr: number | bigint, length: number, write: boolean, data?: number, attrs?: RequestAttributes): TranslateResult {
    if (typeof addr === "number" && !(Number.isSafeInteger(addr) && addr >= 0)) {
      // Above 2^53 a number has lost the low bits: addresses there are bigints.
      throw new RangeError(`DMA address ${addr} is not a non-negative safe integer`);
    }
    const unit = this.unitFor(sid);
    if (unit !== null) return unit.translate({ sid, addr, length, write, ...(data !== undefined ? { data } : {}), ...attrs });
    const a = typeof addr === "bigint" ? addr : BigInt(addr);
    const lo = Number(a & 0xffffffffn);
    if (write && length === 4 && isInterruptAddress(lo, Number(a >> 32n))) {
      const d = (data ?? 0) >>> 0;
      const message: InterruptMessage = { addressLo: lo, addressHi: 0, data: d, origin: "device", sid: sid & 0xffff, remapped: false };
      this.deliver(message);
      return {
        ok: true,
        kind: "interrupt",
        remap: { ok: true, irq: decodeCompatMsi(lo, d), msi: { address: lo, addressHi: 0, data: d }, remapped: false },
        message,
      };
    }
    return { ok: true, kind: "dma", segments: [{ iova: a, hpa: a, length, pageSize: 4096, read: true, write: true }] };
  }

  /** A device reads `length` bytes at `addr`; on a fault nothing is read. */
  dmaRead(sid: number, addr: number | bigint, length: number, attrs?: RequestAttributes): DmaOutcome {
    const r = this.translate(sid, addr, length, false, undefined, attrs);
    if (!r.ok || r.kind !== "dma") return { ok: false, result: r };
    const out = new Uint8Array(length);
    let at = 0;
    let unsupportedBytes = 0;
    let peer: PeerAccess[] | undefined; // made only when a peer is reached
    for (const s of r.segments) {
      const n = Math.min(s.length, length - at);
      if (n <= 0) break;
      const dest = this.route(s.hpa, n);
      if (dest === "ram") out.set(this.memory.read(s.hpa, n), at);
      else if (dest !== null) {
        this.barRead(dest, Number(s.hpa), out.subarray(at, at + n));
        (peer ??= []).push({ owner: dest.owner, bar: dest.index, address: Number(s.hpa), bytes: n });
      } else {
        out.fill(0xff, at, at + n); // nothing there: an unsupported request, completed with all ones
        unsupportedBytes += n;
      }
      at += n;
    }
    return { ok: true, data: out, segments: r.segments, unsupportedBytes, ...(peer !== undefined ? { peer } : {}) };
  }

  /**
   * A device writes `data` at `addr`. Pages before a fault are written (the hardware processes the request
   * page by page); nothing is written from the faulting page on.
   */
  dmaWrite(sid: number, addr: number | bigint, data: Uint8Array, attrs?: RequestAttributes): DmaOutcome {
    const r = this.translate(sid, addr, data.length, true, data.length === 4 ? dword(data) : undefined, attrs);
    const segments = r.kind === "dma" ? r.segments : [];
    let at = 0;
    let unsupportedBytes = 0;
    let peer: PeerAccess[] | undefined; // made only when a peer is reached
    for (const s of segments) {
      const n = Math.min(s.length, data.length - at);
      if (n <= 0) break;
      const dest = this.route(s.hpa, n);
      if (dest === "ram") this.memory.write(s.hpa, data.subarray(at, at + n));
      else if (dest !== null) {
        this.barWrite(dest, Number(s.hpa), data.subarray(at, at + n));
        (peer ??= []).push({ owner: dest.owner, bar: dest.index, address: Number(s.hpa), bytes: n });
      } else unsupportedBytes += n; // nothing there (PCI hole, a unit's registers, beyond memory): dropped
      at += n;
    }
    if (!(r.ok && (r.kind === "dma" || r.kind === "interrupt"))) return { ok: false, result: r };
    return { ok: true, segments, unsupportedBytes, ...(peer !== undefined ? { peer } : {}) };
  }

  /** A device signals an MSI: a DWORD write of `data` to `address`. */
  msi(sid: number, address: number | bigint, data: number): TranslateResult {
    return this.translate(sid, address, 4, true, data >>> 0);
  }

  /** Where a request's bytes go: RAM, a device's memory BAR, or nowhere (null). */
  private route(hpa: bigint, n: number): "ram" | BarWindow | null {
    if (hpa > MAX_SAFE_ADDRESS) return null;
    const a = Number(hpa);
    if (this.ramContains(a, n)) return "ram";
    return this.barAt(a, n);
  }
}

function dword(b: Uint8Array): number {
  return ((b[0] ?? 0) | ((b[1] ?? 0) << 8) | ((b[2] ?? 0) << 16) | ((b[3] ?? 0) << 24)) >>> 0;
}
