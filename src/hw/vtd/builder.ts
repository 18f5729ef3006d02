/**
 * Builds legacy-mode VT-d structures in physical memory (root table, context tables, second-level page tables)
 * and programs a unit through its registers the way a driver does: the test bench of the VT-d model, used by its
 * tests, the benchmarks, library users who drive a unit directly, and to make memory images for `iommu walk`.
 */
import type { PhysicalMemory } from "../../core/memory.js";
import { ridBus, ridDevfn } from "../../core/pci.js";
import {
  awForLevels,
  contextEntryOffset,
  decodeRootEntry,
  encodeContextEntry,
  encodeRootEntry,
  rootEntryOffset,
  TT_MULTI_LEVEL,
  type EntryWords,
} from "../../spec/vtd/context.js";
import { fieldOfBig, maskOf, withField } from "../../spec/vtd/fields.js";
import {
  encodeContextCacheDesc,
  encodeDeviceTlbDesc,
  encodeIqa,
  encodeIecDesc,
  encodeIotlbDesc,
  encodeWaitDesc,
  descriptorBytes,
  queueEntries,
  queueOffset,
  type Descriptor,
} from "../../spec/vtd/invalidation.js";
import { leafLevelForSize, levelIndex, PAGE_SIZE_4K, SL_ENTRY, SL_ENTRY_SIZE, SL_PRESENT, SL_PS, SL_R, SL_W } from "../../spec/vtd/paging.js";
import {
  CCMD,
  DMAR_CCMD_REG,
  DMAR_GCMD_REG,
  DMAR_GSTS_REG,
  DMAR_IQA_REG,
  DMAR_IQT_REG,
  DMAR_RTADDR_REG,
  GCMD_QIE,
  GCMD_SRTP,
  GCMD_TE,
  GSTS_ONE_SHOT,
  INV_PAGE,
  IOTLB,
  IOTLB_REG_FROM_IVA,
  IVA,
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

const PAGE = PAGE_SIZE_4K;
/** Where a builder puts its tables unless told otherwise: from 1 MiB up. */
const DEFAULT_TABLE_BASE = 0x100000;

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
  constructor(mem: PhysicalMemory, base = DEFAULT_TABLE_BASE) {
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
    const re = this.root + rootEntryOffset(bus);
    const entry = decodeRootEntry(this.readEntry(re));
    if (entry.present) return entry.contextTable;
    const ct = this.allocPage();
    this.writeEntry(re, encodeRootEntry({ present: true, contextTable: ct }));
    return ct;
  }

  /** Address of the context entry of requester id `sid`. */
  contextEntryAddress(sid: number): number {
    return this.contextTable(ridBus(sid)) + contextEntryOffset(ridDevfn(sid));
  }

  /** Points `sid` at a domain (or writes a pass-through / special entry with `opts`). */
  attach(sid: number, d: DomainTables, opts: ContextOptions = {}): number {
    const ce = this.contextEntryAddress(sid);
    this.writeEntry(
      ce,
      encodeContextEntry({
        present: opts.present ?? true,
        fpd: opts.fpd === true,
        tt: opts.tt ?? TT_MULTI_LEVEL,
        pageTable: d.top,
        aw: opts.aw ?? awForLevels(d.levels),
        did: d.did,
      }),
    );
    return ce;
  }

  private readEntry(addr: number): EntryWords {
    return [0, 1, 2, 3].map((i) => this.mem.read32(addr + 4 * i)) as EntryWords;
  }

  private writeEntry(addr: number, words: readonly number[]): void {
    words.forEach((w, i) => this.mem.write32(addr + 4 * i, w));
  }

  /** Maps iova -> hpa in a domain, creating intermediate tables (R/W on every level). Returns the leaf address. */
  map(d: DomainTables, iova: number | bigint, hpa: number | bigint, opts: MapOptions = {}): number {
    const size = opts.size ?? PAGE;
    const leafLevel = leafLevelForSize(size);
    if (leafLevel === 0) throw new RangeError(`page size ${size} is not 4 KiB, 2 MiB or 1 GiB`);
    let table = d.top;
    for (let lv = d.levels; lv > leafLevel; lv--) {
      const ea = table + indexAt(iova, lv) * SL_ENTRY_SIZE;
      const e = this.mem.read64(ea);
      if ((e & BigInt(SL_PRESENT)) === 0n) {
        const t = this.allocPage();
        this.mem.write64(ea, BigInt(t) | BigInt(SL_R | SL_W));
        table = t;
      } else {
        table = Number(e & SL_ADDR_MASK);
      }
    }
    const ea = table + indexAt(iova, leafLevel) * SL_ENTRY_SIZE;
    const perm = (opts.read ?? true ? SL_R : 0) | (opts.write ?? true ? SL_W : 0);
    this.mem.write64(ea, exact(hpa) | BigInt(perm) | (leafLevel > 1 ? BigInt(SL_PS) : 0n));
    return ea;
  }

  /** Address of the entry at `level` that translates iova (the tables must exist down to that level). */
  entryAddress(d: DomainTables, iova: number | bigint, level: number): number {
    let table = d.top;
    for (let lv = d.levels; lv > level; lv--) {
      table = Number(this.mem.read64(table + indexAt(iova, lv) * SL_ENTRY_SIZE) & SL_ADDR_MASK);
    }
    return table + indexAt(iova, level) * SL_ENTRY_SIZE;
  }
}

/** The address bits of a second-level entry (51:12). */
const SL_ADDR_MASK = maskOf(SL_ENTRY.ADDR);

/** The entry index at `level` for an address given as a number or bigint. */
function indexAt(iova: number | bigint, level: number): number {
  const v = BigInt.asUintN(64, exact(iova));
  return levelIndex(Number(v & 0xffffffffn), Number(v >> 32n), level);
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
  const sts = unit.mmioRead(DMAR_GSTS_REG, 4) & ~GSTS_ONE_SHOT; // drop the one-shot status bits (RTPS, WBFS, IRTPS...)
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
  let v = withField(0n, CCMD.ICC, 1);
  v = withField(v, CCMD.CIRG, granularity);
  v = withField(v, CCMD.FM, fm);
  v = withField(v, CCMD.SID, sid);
  v = withField(v, CCMD.DID, did);
  unit.mmioWrite(DMAR_CCMD_REG, 8, v);
  return fieldOfBig(unit.mmioRead(DMAR_CCMD_REG, 8), CCMD.CAIG);
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
  if (granularity === INV_PAGE) {
    const iva = withField(withField(BigInt(addr) & maskOf(IVA.ADDR), IVA.IH, ih), IVA.AM, am);
    unit.mmioWrite(iro, 8, iva);
  }
  const v = withField(withField(withField(0n, IOTLB.IVT, 1), IOTLB.IIRG, granularity), IOTLB.DID, did);
  unit.mmioWrite(iro + IOTLB_REG_FROM_IVA, 8, v);
  return fieldOfBig(unit.mmioRead(iro + IOTLB_REG_FROM_IVA, 8), IOTLB.IAIG);
}

/** 128-bit invalidation descriptors (6.5.2) as four dwords, low first. */
export type { Descriptor };

export const desc = {
  /** 6.5.2.1 context-cache: g 1 global, 2 domain, 3 device. */
  context(g: number, did = 0, sid = 0, fm = 0): Descriptor {
    return encodeContextCacheDesc({ g, did, sid, fm });
  },
  /** 6.5.2.3 IOTLB: g 1 global, 2 domain, 3 page-selective (addr, am, ih). */
  iotlb(g: number, did = 0, addr: number | bigint = 0, am = 0, ih = false): Descriptor {
    return encodeIotlbDesc({ g, did, addr, am, ih });
  },
  /** 6.5.2.5 device-TLB. */
  deviceIotlb(sid: number, addr: number, size = false): Descriptor {
    return encodeDeviceTlbDesc({ sid, addr, size });
  },
  /** 6.5.2.7 interrupt entry cache: global, or `index` with index mask `im`. */
  iec(global: boolean, index = 0, im = 0): Descriptor {
    return encodeIecDesc({ global, index, im });
  },
  /** 6.5.2.8 invalidation wait. */
  wait(o: { sw?: boolean; iflag?: boolean; fence?: boolean; data?: number; addr?: number }): Descriptor {
    return encodeWaitDesc(o);
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
    this.unit.mmioWrite(DMAR_IQA_REG, 8, encodeIqa(this.base, this.qs, this.wide));
    gcmd(this.unit, GCMD_QIE);
  }

  get size(): number {
    return queueEntries(this.qs, this.wide);
  }

  /** Writes descriptors at the tail and moves IQT past them (processing happens on the IQT write). */
  submit(...ds: (Descriptor | number[])[]): void {
    const bytes = descriptorBytes(this.wide);
    for (const d of ds) {
      const at = this.base + this.tail * bytes;
      for (let i = 0; i < bytes / 4; i++) this.mem.write32(at + 4 * i, d[i] ?? 0);
      this.tail = (this.tail + 1) % this.size;
    }
    this.unit.mmioWrite(DMAR_IQT_REG, 8, BigInt(queueOffset(this.tail, this.wide)));
  }
}
