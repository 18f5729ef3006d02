/**
 * Builds legacy-mode VT-d structures in physical memory (root table, context tables, second-level page tables)
 * and programs a unit through its registers the way a driver does: the test bench of the VT-d model, used by its
 * tests, the benchmarks, library users who drive a unit directly, and to make memory images for `iommu walk`.
 */
import type { PhysicalMemory } from "../../core/memory.js";
import {
  DMAR_CCMD_REG,
  DMAR_GCMD_REG,
  DMAR_GSTS_REG,
  DMAR_IQA_REG,
  DMAR_IQT_REG,
  DMAR_RTADDR_REG,
  GCMD_QIE,
  GCMD_SRTP,
  GCMD_TE,
  IQA_DW,
  SL_PS,
  SL_R,
  SL_W,
} from "../../spec/vtd/registers.js";

export interface DomainTables {
  did: number;
  /** 3, 4 or 5. */
  levels: number;
  /** Physical address of the top-level table. */
  top: number;
}

export interface ContextOptions {
  present?: boolean;
  fpd?: boolean;
  /** Translation type: 0 multi-level, 1 device-TLB, 2 pass-through. */
  tt?: number;
  /** AW field override (default levels - 2). */
  aw?: number;
}

export interface MapOptions {
  read?: boolean;
  write?: boolean;
  /** 4096 (default), 2 MiB or 1 GiB. */
  size?: number;
}

const PAGE = 4096;

/** An address as a bigint; a number must be a safe integer (above 2^53 only a bigint is exact). */
function exact(a: number | bigint): bigint {
  if (typeof a === "number" && !Number.isSafeInteger(a)) throw new RangeError(`address ${a} is not a safe integer: pass a bigint`);
  return BigInt(a);
}

export class VtdTables {
  readonly mem: PhysicalMemory;
  /** Physical address of the root table. */
  readonly root: number;
  private next: number;

  /** Tables are allocated upward from `base` (default 1 MiB). */
  constructor(mem: PhysicalMemory, base = 0x100000) {
    this.mem = mem;
    this.next = base;
    this.root = this.allocPage();
  }

  /** A zeroed 4 KiB page. */
  allocPage(): number {
    const a = this.next;
    this.next += PAGE;
    this.mem.fill(a, PAGE, 0);
    return a;
  }

  domain(did: number, levels = 3): DomainTables {
    return { did, levels, top: this.allocPage() };
  }

  /** Address of the context table for `bus`, created (and the root entry made present) on first use. */
  contextTable(bus: number): number {
    const re = this.root + bus * 16;
    const lo = this.mem.read32(re);
    if ((lo & 1) !== 0) return this.mem.read32(re + 4) * 0x1_0000_0000 + ((lo & 0xfffff000) >>> 0);
    const ct = this.allocPage();
    this.mem.write64(re, BigInt(ct) | 1n);
    this.mem.write64(re + 8, 0n);
    return ct;
  }

  /** Address of the context entry of requester id `sid`. */
  contextEntryAddress(sid: number): number {
    return this.contextTable(sid >>> 8) + (sid & 0xff) * 16;
  }

  /** Points `sid` at a domain (or writes a pass-through / special entry with `opts`). */
  attach(sid: number, d: DomainTables, opts: ContextOptions = {}): number {
    const ce = this.contextEntryAddress(sid);
    const present = opts.present ?? true;
    const tt = opts.tt ?? 0;
    const aw = opts.aw ?? d.levels - 2;
    const lo = BigInt(d.top) | (BigInt(tt & 3) << 2n) | (opts.fpd === true ? 2n : 0n) | (present ? 1n : 0n);
    const hi = BigInt(aw & 7) | (BigInt(d.did & 0xffff) << 8n);
    this.mem.write64(ce, lo);
    this.mem.write64(ce + 8, hi);
    return ce;
  }

  /** Maps iova -> hpa in a domain, creating intermediate tables (R/W on every level). Returns the leaf address. */
  map(d: DomainTables, iova: number | bigint, hpa: number | bigint, opts: MapOptions = {}): number {
    const size = opts.size ?? PAGE;
    const leafLevel = size === PAGE ? 1 : size === 0x200000 ? 2 : size === 0x40000000 ? 3 : -1;
    if (leafLevel < 0) throw new RangeError(`page size ${size} is not 4 KiB, 2 MiB or 1 GiB`);
    const v = exact(iova);
    let table = d.top;
    for (let lv = d.levels; lv > leafLevel; lv--) {
      const idx = Number((v >> BigInt(12 + 9 * (lv - 1))) & 0x1ffn);
      const ea = table + idx * 8;
      const e = this.mem.read64(ea);
      if ((e & 3n) === 0n) {
        const t = this.allocPage();
        this.mem.write64(ea, BigInt(t) | BigInt(SL_R | SL_W));
        table = t;
      } else {
        table = Number(e & 0x000ffffffffff000n);
      }
    }
    const idx = Number((v >> BigInt(12 + 9 * (leafLevel - 1))) & 0x1ffn);
    const ea = table + idx * 8;
    const perm = (opts.read ?? true ? SL_R : 0) | (opts.write ?? true ? SL_W : 0);
    this.mem.write64(ea, exact(hpa) | BigInt(perm) | (leafLevel > 1 ? BigInt(SL_PS) : 0n));
    return ea;
  }

  /** Address of the entry at `level` that translates iova (the tables must exist down to that level). */
  entryAddress(d: DomainTables, iova: number | bigint, level: number): number {
    const v = exact(iova);
    let table = d.top;
    for (let lv = d.levels; lv > level; lv--) {
      const idx = Number((v >> BigInt(12 + 9 * (lv - 1))) & 0x1ffn);
      table = Number(this.mem.read64(table + idx * 8) & 0x000ffffffffff000n);
    }
    return table + Number((v >> BigInt(12 + 9 * (level - 1))) & 0x1ffn) * 8;
  }
}

/** The register interface a driver needs (a VtdUnit, or a platform window at an offset). */
export interface RegisterPort {
  mmioRead(offset: number, size: 4): number;
  mmioWrite(offset: number, size: number, value: number | bigint): void;
}

/** A RegisterPort that also reads 64-bit registers (CCMD, IOTLB, CAP, fault records) as bigint. */
export interface RegisterWindow extends RegisterPort {
  mmioRead(offset: number, size: 4): number;
  mmioRead(offset: number, size: 8): bigint;
}

/** An MMIO space that reaches the units' registers: a Machine or a Platform. */
export interface MmioSpace {
  mmioRead(addr: number, size: 4 | 8): number | bigint;
  mmioWrite(addr: number, size: 4 | 8, value: number | bigint): void;
}

/** The registers of the unit mapped at `base` in `mmio`, addressed by offset the way the specification lists them. */
export function registerWindow(mmio: MmioSpace, base: number): RegisterWindow {
  function read(offset: number, size: 4): number;
  function read(offset: number, size: 8): bigint;
  function read(offset: number, size: 4 | 8): number | bigint {
    const v = mmio.mmioRead(base + offset, size);
    return size === 4 ? Number(v) : BigInt(v);
  }
  return {
    mmioRead: read,
    mmioWrite: (offset, size, value) => {
      if (size !== 4 && size !== 8) throw new RangeError(`VT-d registers are written 4 or 8 bytes at a time, not ${size}`);
      mmio.mmioWrite(base + offset, size, value);
    },
  };
}

/** Issues one GCMD command the way drivers do: current GSTS (less one-shot bits) plus or minus the bit. */
export function gcmd(unit: RegisterPort, bit: number, on = true): void {
  const sts = unit.mmioRead(DMAR_GSTS_REG, 4) & 0x96ffffff; // drop the one-shot status bits (RTPS, WBFS, IRTPS...)
  const v = on ? (sts | bit) >>> 0 : (sts & ~bit) >>> 0;
  unit.mmioWrite(DMAR_GCMD_REG, 4, v);
}

/** Sets the root table pointer and enables translation. */
export function enableTranslation(unit: RegisterPort, root: number): void {
  unit.mmioWrite(DMAR_RTADDR_REG, 8, BigInt(root));
  gcmd(unit, GCMD_SRTP);
  gcmd(unit, GCMD_TE);
}

/** Register-based context-cache invalidation (10.4.7): returns CAIG. */
export function invalidateContext(unit: RegisterPort & { mmioRead(offset: number, size: 8): bigint }, granularity: number, did = 0, sid = 0, fm = 0): number {
  const v = (1n << 63n) | (BigInt(granularity & 3) << 61n) | (BigInt(fm & 3) << 32n) | (BigInt(sid & 0xffff) << 16n) | BigInt(did & 0xffff);
  unit.mmioWrite(DMAR_CCMD_REG, 8, v);
  return Number((unit.mmioRead(DMAR_CCMD_REG, 8) >> 59n) & 3n);
}

/**
 * Register-based IOTLB invalidation (10.4.8): granularity 1 global, 2 domain, 3 page-selective (IVA = addr,
 * am, ih). `iro` is the IVA_REG offset (ECAP.IRO * 16). Returns IAIG.
 */
export function invalidateIotlb(
  unit: RegisterPort & { mmioRead(offset: number, size: 8): bigint },
  iro: number,
  granularity: number,
  did = 0,
  addr: number | bigint = 0,
  am = 0,
  ih = false,
): number {
  if (granularity === 3) unit.mmioWrite(iro, 8, (BigInt(addr) & ~0xfffn) | (ih ? 0x40n : 0n) | BigInt(am & 0x3f));
  unit.mmioWrite(iro + 8, 8, (1n << 63n) | (BigInt(granularity & 3) << 60n) | (BigInt(did & 0xffff) << 32n));
  return Number((unit.mmioRead(iro + 8, 8) >> 57n) & 3n);
}

/** 128-bit invalidation descriptors (6.5.2) as four dwords, low first. */
export type Descriptor = [number, number, number, number];

export const desc = {
  /** 6.5.2.1 context-cache: g 1 global, 2 domain, 3 device. */
  context(g: number, did = 0, sid = 0, fm = 0): Descriptor {
    return [(0x1 | ((g & 3) << 4) | ((did & 0xffff) << 16)) >>> 0, ((sid & 0xffff) | ((fm & 3) << 16)) >>> 0, 0, 0];
  },
  /** 6.5.2.3 IOTLB: g 1 global, 2 domain, 3 page-selective (addr, am, ih). */
  iotlb(g: number, did = 0, addr: number | bigint = 0, am = 0, ih = false): Descriptor {
    const a = BigInt(addr);
    return [(0x2 | ((g & 3) << 4) | ((did & 0xffff) << 16)) >>> 0, 0, (Number(a & 0xfffff000n) | (ih ? 0x40 : 0) | (am & 0x3f)) >>> 0, Number(a >> 32n) >>> 0];
  },
  /** 6.5.2.5 device-TLB. */
  deviceIotlb(sid: number, addr: number, size = false): Descriptor {
    return [0x3, sid & 0xffff, ((addr & 0xfffff000) | (size ? 1 : 0)) >>> 0, 0];
  },
  /** 6.5.2.7 interrupt entry cache: global, or `index` with index mask `im`. */
  iec(global: boolean, index = 0, im = 0): Descriptor {
    return [(0x4 | (global ? 0 : 0x10) | ((im & 0x1f) << 27)) >>> 0, index & 0xffff, 0, 0];
  },
  /** 6.5.2.8 invalidation wait. */
  wait(o: { sw?: boolean; iflag?: boolean; fence?: boolean; data?: number; addr?: number }): Descriptor {
    const lo = 0x5 | (o.iflag === true ? 0x10 : 0) | (o.sw === true ? 0x20 : 0) | (o.fence === true ? 0x40 : 0);
    const a = o.addr ?? 0;
    return [lo, (o.data ?? 0) >>> 0, (a % 0x1_0000_0000) >>> 0, Math.floor(a / 0x1_0000_0000) >>> 0];
  },
};

/**
 * A driver's view of the invalidation queue: descriptors are written at the tail and IQT is advanced.
 * `wide` uses 256-bit slots (the upper half written as zeros unless given).
 */
export class InvalidationQueue {
  private tail = 0;
  constructor(
    private readonly unit: RegisterPort,
    private readonly mem: PhysicalMemory,
    readonly base: number,
    readonly qs = 0,
    readonly wide = false,
  ) {}

  /** Programs IQA and enables queued invalidation. */
  enable(): void {
    this.unit.mmioWrite(DMAR_IQA_REG, 8, BigInt(this.base) | (this.wide ? BigInt(IQA_DW) : 0n) | BigInt(this.qs & 7));
    gcmd(this.unit, GCMD_QIE);
  }

  get size(): number {
    return (1 << this.qs) * (this.wide ? 128 : 256);
  }

  /** Writes descriptors at the tail and moves IQT past them (processing happens on the IQT write). */
  submit(...ds: (Descriptor | number[])[]): void {
    const bytes = this.wide ? 32 : 16;
    for (const d of ds) {
      const at = this.base + this.tail * bytes;
      for (let i = 0; i < bytes / 4; i++) this.mem.write32(at + 4 * i, d[i] ?? 0);
      this.tail = (this.tail + 1) % this.size;
    }
    this.unit.mmioWrite(DMAR_IQT_REG, 8, BigInt(this.tail << (this.wide ? 5 : 4)));
  }
}
