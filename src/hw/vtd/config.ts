/**
 * What a VT-d remapping unit is built with, and the CAP_REG / ECAP_REG values (VT-d spec 10.4.2, 10.4.3) that
 * follow from it. The default reproduces QEMU 7.2's `-device intel-iommu,intremap=on,caching-mode=on` on q35:
 * CAP 0x00d2008c22260286, ECAP 0xf00f4a (measured on QEMU). `qemuVtdConfig({ awBits: 48 })` gives QEMU's
 * aw-bits=48 unit (SAGAW 39+48, MGAW 47: CAP 0x00d2008c222f0686). Beyond QEMU: 57-bit / 5-level tables,
 * several fault recording registers, caching mode off, no pass-through, other large-page sets, and the
 * geometry of every cache.
 */
import { IommuError } from "../../core/errors.js";
import { hiOf, loOf } from "../../core/u64.js";
import { SAGAW_39, SAGAW_48, SAGAW_57, SLLPS_1G, SLLPS_2M } from "../../spec/vtd/registers.js";

export type ReplacementPolicy = "lru" | "fifo" | "random";

/** A set-associative cache: `sets * ways` entries; `sets` is a power of two. */
export interface CacheGeometry {
  sets: number;
  ways: number;
  policy: ReplacementPolicy;
  /** Seed of the random policy's generator (runs are reproducible). */
  seed?: number;
}

export interface VtdConfig {
  /** Guest address width: MGAW = awBits - 1, SAGAW = every supported width up to awBits. 39, 48 or 57. */
  awBits: 39 | 48 | 57;
  /** Host address width (table pointers and output addresses): default awBits, at most 52. */
  hawBits: number;
  /** Number of fault recording registers (CAP.NFR + 1), 1..256. */
  faultRecords: number;
  /** CAP.CM: hardware may cache not-present and erroneous entries; software must invalidate those too. */
  cachingMode: boolean;
  /** ECAP.PT: context entries may select pass-through (TT = 10b). */
  passThrough: boolean;
  /** ECAP.IR: interrupt remapping. */
  interruptRemapping: boolean;
  /** ECAP.EIM: x2APIC (32-bit destination) interrupt remapping; makes FEUADDR/IEUADDR writable. */
  extendedInterruptMode: boolean;
  /** ECAP.QI: queued invalidation. */
  queuedInvalidation: boolean;
  /** ECAP.DT: device-TLBs (ATS); allows TT = 01b and device-IOTLB invalidation descriptors. */
  deviceTlb: boolean;
  /** ECAP.SC: snoop control (makes SNP, bit 11 of leaf entries, valid instead of reserved). */
  snoopControl: boolean;
  /** CAP.SLLPS bitmask: bit 0 = 2 MiB pages, bit 1 = 1 GiB pages. */
  largePages: number;
  /** CAP.PSI: page-selective IOTLB invalidation (else performed as domain-selective). */
  pageSelectiveInvalidation: boolean;
  /** CAP.MAMV: largest address mask of a page-selective invalidation. */
  maxAddressMask: number;
  /** CAP.DRD and CAP.DWD: read and write draining. */
  draining: boolean;
  /** CAP.RWBF: software must flush the write buffer (GCMD.WBF). */
  requiredWriteBufferFlush: boolean;
  /** CAP.ND: number of domain-id bits = 4 + 2 * ND (ND 6 = 16 bits). */
  domainIdField: number;
  /** CAP.FRO * 16: byte offset of the fault recording registers. */
  faultRecordOffset: number;
  /** ECAP.IRO * 16: byte offset of IVA_REG (IOTLB_REG follows at +8). */
  iotlbRegOffset: number;
  /** ECAP.MHMV: handle mask of interrupt entry cache invalidation (reported when IR). */
  maxHandleMask: number;
  /** 256-bit invalidation descriptors (IQA.DW). The spec ties them to scalable mode; QEMU 7.2 ignores DW. */
  wideDescriptors: boolean;
  /** Collapse further faults from a source id that already has a pending record (7.2.1 allows it; QEMU does). */
  collapseFaults: boolean;
  iotlb: CacheGeometry;
  contextCache: CacheGeometry;
  /** Paging-structure cache of non-leaf second-level entries; null = none (QEMU has none). */
  pagingStructureCache: CacheGeometry | null;
  /** Interrupt entry cache size in IRTEs (0 = no cache). */
  interruptEntryCache: number;
  /** CAP.PI (bit 59): posted interrupts, IRTEs with IM set are posted-format entries. QEMU 7.2 has none. */
  postedInterrupts: boolean;
}

/** QEMU 7.2, q35, `-device intel-iommu,intremap=on,caching-mode=on` (aw-bits 39 by default). */
export const QEMU_7_2_DEFAULT: Readonly<VtdConfig> = Object.freeze({
  awBits: 39,
  hawBits: 39,
  faultRecords: 1,
  cachingMode: true,
  passThrough: true,
  interruptRemapping: true,
  extendedInterruptMode: false,
  queuedInvalidation: true,
  deviceTlb: false,
  snoopControl: false,
  largePages: SLLPS_2M | SLLPS_1G,
  pageSelectiveInvalidation: true,
  maxAddressMask: 18,
  draining: true,
  requiredWriteBufferFlush: false,
  domainIdField: 6,
  faultRecordOffset: 0x220,
  iotlbRegOffset: 0xf0,
  maxHandleMask: 0xf,
  wideDescriptors: false,
  collapseFaults: true,
  iotlb: Object.freeze({ sets: 128, ways: 8, policy: "lru" as const }),
  contextCache: Object.freeze({ sets: 32, ways: 8, policy: "lru" as const }),
  pagingStructureCache: null,
  interruptEntryCache: 256,
  postedInterrupts: false,
});

/** A configuration starting from QEMU 7.2's default; `awBits` also sets `hawBits` unless given. */
export function qemuVtdConfig(overrides: Partial<VtdConfig> = {}): VtdConfig {
  const aw = overrides.awBits ?? QEMU_7_2_DEFAULT.awBits;
  const cfg: VtdConfig = { ...QEMU_7_2_DEFAULT, hawBits: Math.min(aw, 52), ...overrides };
  validateConfig(cfg);
  return cfg;
}

function bad(field: string, message: string): IommuError {
  return new IommuError("VTD_CONFIG", `VT-d configuration: ${field} ${message}`);
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function validateGeometry(name: string, g: CacheGeometry): void {
  if (!isPow2(g.sets) || g.sets > 1 << 16) throw bad(`${name}.sets`, `must be a power of two up to 65536, got ${g.sets}`);
  if (!Number.isInteger(g.ways) || g.ways < 1 || g.ways > 64) throw bad(`${name}.ways`, `must be 1..64, got ${g.ways}`);
  if (g.policy !== "lru" && g.policy !== "fifo" && g.policy !== "random") throw bad(`${name}.policy`, `must be lru, fifo or random`);
}

/** Throws VTD_CONFIG for a configuration no hardware could report. Configurations are not guest input. */
export function validateConfig(c: VtdConfig): void {
  if (c.awBits !== 39 && c.awBits !== 48 && c.awBits !== 57) throw bad("awBits", `must be 39, 48 or 57, got ${String(c.awBits)}`);
  if (!Number.isInteger(c.hawBits) || c.hawBits < 32 || c.hawBits > 52) throw bad("hawBits", `must be 32..52, got ${c.hawBits}`);
  if (!Number.isInteger(c.faultRecords) || c.faultRecords < 1 || c.faultRecords > 256) throw bad("faultRecords", `must be 1..256, got ${c.faultRecords}`);
  if (!Number.isInteger(c.largePages) || c.largePages < 0 || c.largePages > 3) throw bad("largePages", `must be a 2-bit mask, got ${c.largePages}`);
  if (!Number.isInteger(c.maxAddressMask) || c.maxAddressMask < 0 || c.maxAddressMask > 63) throw bad("maxAddressMask", `must be 0..63`);
  if (!Number.isInteger(c.domainIdField) || c.domainIdField < 0 || c.domainIdField > 6) throw bad("domainIdField", `must be 0..6`);
  if (!Number.isInteger(c.maxHandleMask) || c.maxHandleMask < 0 || c.maxHandleMask > 15) throw bad("maxHandleMask", `must be 0..15`);
  const fro = c.faultRecordOffset;
  if (!Number.isInteger(fro) || fro % 16 !== 0 || fro < 0x100 || fro > 0x3ff0) throw bad("faultRecordOffset", `must be a multiple of 16 in 0x100..0x3ff0`);
  const iro = c.iotlbRegOffset;
  if (!Number.isInteger(iro) || iro % 16 !== 0 || iro < 0xc0 || iro > 0x3ff0) throw bad("iotlbRegOffset", `must be a multiple of 16 in 0xc0..0x3ff0`);
  const froEnd = fro + 16 * c.faultRecords;
  if (iro + 16 > fro && iro < froEnd) throw bad("iotlbRegOffset", `0x${iro.toString(16)} overlaps the fault recording registers`);
  if (c.extendedInterruptMode && !c.interruptRemapping) throw bad("extendedInterruptMode", "needs interruptRemapping");
  if (c.postedInterrupts && !c.interruptRemapping) throw bad("postedInterrupts", "needs interruptRemapping");
  validateGeometry("iotlb", c.iotlb);
  validateGeometry("contextCache", c.contextCache);
  if (c.pagingStructureCache !== null) validateGeometry("pagingStructureCache", c.pagingStructureCache);
  if (!Number.isInteger(c.interruptEntryCache) || c.interruptEntryCache < 0) throw bad("interruptEntryCache", "must be a non-negative integer");
}

/** CAP.SAGAW for a guest address width: every width up to it (QEMU always reports 39-bit). */
export function sagawFor(awBits: number): number {
  return SAGAW_39 | (awBits >= 48 ? SAGAW_48 : 0) | (awBits >= 57 ? SAGAW_57 : 0);
}

/** CAP_REG (10.4.2) as a bigint. */
export function buildCap(c: VtdConfig): bigint {
  let cap = BigInt(c.domainIdField & 7); // ND, bits 2:0
  if (c.requiredWriteBufferFlush) cap |= 1n << 4n; // RWBF
  if (c.cachingMode) cap |= 1n << 7n; // CM
  cap |= BigInt(sagawFor(c.awBits)) << 8n; // SAGAW, bits 12:8
  cap |= BigInt((c.awBits - 1) & 0x3f) << 16n; // MGAW, bits 21:16
  cap |= BigInt((c.faultRecordOffset >> 4) & 0x3ff) << 24n; // FRO, bits 33:24
  cap |= BigInt(c.largePages & 0xf) << 34n; // SLLPS, bits 37:34
  if (c.pageSelectiveInvalidation) cap |= 1n << 39n; // PSI
  cap |= BigInt((c.faultRecords - 1) & 0xff) << 40n; // NFR, bits 47:40
  cap |= BigInt(c.maxAddressMask & 0x3f) << 48n; // MAMV, bits 53:48
  if (c.draining) cap |= (1n << 54n) | (1n << 55n); // DWD, DRD
  if (c.postedInterrupts) cap |= 1n << 59n; // PI
  return cap;
}

/** ECAP_REG (10.4.3) as a bigint. */
export function buildEcap(c: VtdConfig): bigint {
  let ecap = 0n;
  if (c.queuedInvalidation) ecap |= 1n << 1n; // QI
  if (c.deviceTlb) ecap |= 1n << 2n; // DT
  if (c.interruptRemapping) ecap |= 1n << 3n; // IR
  if (c.extendedInterruptMode) ecap |= 1n << 4n; // EIM
  if (c.passThrough) ecap |= 1n << 6n; // PT
  if (c.snoopControl) ecap |= 1n << 7n; // SC
  ecap |= BigInt((c.iotlbRegOffset >> 4) & 0x3ff) << 8n; // IRO, bits 17:8
  if (c.interruptRemapping) ecap |= BigInt(c.maxHandleMask & 0xf) << 20n; // MHMV, bits 23:20
  return ecap;
}

/**
 * What the translation walk needs to know about the hardware. Built once from a config (or, for forensics,
 * from an address width), with the reserved-bit masks of each level precomputed as 32-bit halves.
 */
export interface WalkCaps {
  /** MGAW + 1. */
  mgawBits: number;
  hawBits: number;
  /** CAP.SAGAW bitmask. */
  sagaw: number;
  /** CAP.SLLPS bitmask. */
  largePages: number;
  passThrough: boolean;
  deviceTlb: boolean;
  snoopControl: boolean;
  /** Domain id bits (4 + 2 * ND). */
  domainIdBits: number;
  /** Mask of the address bits of a table pointer in the high dword (bits HAW-1:32). */
  addrHiMask: number;
  /** Reserved bits of a present non-leaf / 4 KiB entry at each level (index = level 1..5). */
  rsvdLo: Uint32Array;
  rsvdHi: Uint32Array;
  /** Reserved bits of a large-page entry at level 2 (2 MiB) and 3 (1 GiB). */
  rsvdLargeLo: Uint32Array;
  rsvdLargeHi: Uint32Array;
}

/** Mask of bits [from, 32) of a dword, i.e. the bits at and above `from` (0 when from >= 32). */
function bitsFrom(from: number): number {
  if (from >= 32) return 0;
  if (from <= 0) return 0xffffffff;
  return (0xffffffff << from) >>> 0;
}

export function walkCaps(opts: {
  mgawBits: number;
  hawBits: number;
  sagaw: number;
  largePages: number;
  passThrough: boolean;
  deviceTlb: boolean;
  snoopControl: boolean;
  domainIdBits: number;
}): WalkCaps {
  const haw = opts.hawBits;
  // Address bits 51:HAW are reserved in every entry; bits 63 and 61:52 are ignored; bit 62 (TM) is reserved
  // unless device-TLBs are supported (9.8, and QEMU's VTD_SPTE_*_RSVD_MASK).
  const aboveHaw = (bitsFrom(haw - 32) & 0x000fffff) >>> 0;
  const hiCommon = (aboveHaw | (opts.deviceTlb ? 0 : 0x40000000)) >>> 0;
  const hiNonLeaf = (aboveHaw | 0x40000000) >>> 0; // TM has no meaning in non-leaf entries
  const snp = opts.snoopControl ? 0 : 0x800;
  const rsvdLo = new Uint32Array(6);
  const rsvdHi = new Uint32Array(6);
  const rsvdLargeLo = new Uint32Array(6);
  const rsvdLargeHi = new Uint32Array(6);
  // Level 1 (SL-PTE): SNP reserved without SC.
  rsvdLo[1] = snp;
  rsvdHi[1] = hiCommon;
  // Levels 2 and 3, non-leaf: bit 11 reserved; PS reserved where that page size is unsupported.
  rsvdLo[2] = 0x800 | (opts.largePages & SLLPS_2M ? 0 : 0x80);
  rsvdHi[2] = hiNonLeaf;
  rsvdLo[3] = 0x800 | (opts.largePages & SLLPS_1G ? 0 : 0x80);
  rsvdHi[3] = hiNonLeaf;
  // Levels 4 and 5: PS (bit 7) and bit 11 reserved.
  rsvdLo[4] = 0x880;
  rsvdHi[4] = hiNonLeaf;
  rsvdLo[5] = 0x880;
  rsvdHi[5] = hiNonLeaf;
  // Large pages: the address bits below the page size are reserved (2 MiB: 20:12, 1 GiB: 29:12).
  rsvdLargeLo[2] = (0x1ff000 | snp) >>> 0;
  rsvdLargeHi[2] = hiCommon;
  rsvdLargeLo[3] = (0x3ffff000 | snp) >>> 0;
  rsvdLargeHi[3] = hiCommon;
  return {
    mgawBits: opts.mgawBits,
    hawBits: haw,
    sagaw: opts.sagaw,
    largePages: opts.largePages,
    passThrough: opts.passThrough,
    deviceTlb: opts.deviceTlb,
    snoopControl: opts.snoopControl,
    domainIdBits: opts.domainIdBits,
    addrHiMask: haw <= 32 ? 0 : (bitsFrom(0) >>> (64 - haw)) >>> 0,
    rsvdLo,
    rsvdHi,
    rsvdLargeLo,
    rsvdLargeHi,
  };
}

export function walkCapsFromConfig(c: VtdConfig): WalkCaps {
  return walkCaps({
    mgawBits: c.awBits,
    hawBits: c.hawBits,
    sagaw: sagawFor(c.awBits),
    largePages: c.largePages,
    passThrough: c.passThrough,
    deviceTlb: c.deviceTlb,
    snoopControl: c.snoopControl,
    domainIdBits: 4 + 2 * c.domainIdField,
  });
}

/** CAP/ECAP as lo/hi halves, for the register file. */
export function capHalves(c: VtdConfig): { capLo: number; capHi: number; ecapLo: number; ecapHi: number } {
  const cap = buildCap(c);
  const ecap = buildEcap(c);
  return { capLo: loOf(cap), capHi: hiOf(cap), ecapLo: loOf(ecap), ecapHi: hiOf(ecap) };
}
