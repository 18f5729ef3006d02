/**
 * What a VT-d remapping unit is built with, and the CAP_REG / ECAP_REG values (VT-d spec 10.4.2, 10.4.3) that
 * follow from it. The default reproduces QEMU 7.2's `-device intel-iommu,intremap=on,caching-mode=on` on q35:
 * CAP 0x00d2008c22260286, ECAP 0xf00f4a (measured on QEMU). `qemuVtdConfig({ awBits: 48 })` gives QEMU's
 * aw-bits=48 unit (SAGAW 39+48, MGAW 47: CAP 0x00d2008c222f0686). Beyond QEMU: 57-bit / 5-level tables,
 * several fault recording registers, caching mode off, no pass-through, other large-page sets, and the
 * geometry of every cache. `scalableMode: true` is QEMU 7.2's `x-scalable-mode=on` (ECAP gains SMTS, SSTS and
 * SRS: 0x480080f00f4a at aw-bits=48, as measured); first-stage, nested and PASID support go beyond it.
 */
import { IommuError } from "../../core/errors.js";
import { hiOf, loOf } from "../../core/u64.js";
import {
  CAP,
  domainIdBits,
  ECAP,
  encodeCap,
  encodeEcap,
  MAX_REGISTER_OFFSET,
  faultRecordCount,
  ndForDomainIdBits,
  nfrForCount,
  OFFSET_UNIT,
  offsetField,
  sagawBit,
  SLLPS_1G,
  SLLPS_2M,
} from "../../spec/vtd/capability.js";
import { FIXED_REGISTERS_END, IOTLB_REGS_SIZE } from "../../spec/vtd/registers.js";
import { FRCD_SIZE } from "../../spec/vtd/faults.js";
import { AW_39, AW_48, AW_57, awWidth, CONTEXT_ENTRY, contextEntryReserved, hawHiMask, rootEntryReserved } from "../../spec/vtd/context.js";
import { fieldMax, type FieldSpec } from "../../spec/vtd/fields.js";
import { secondLevelReserved } from "../../spec/vtd/paging.js";

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
  /**
   * ECAP.SMTS with ECAP.SSTS and ECAP.SRS: scalable-mode translation (RTADDR.TTM = 01b), second-stage and
   * supervisor requests — QEMU 7.2's `x-scalable-mode=on`, which also implies 256-bit descriptors.
   */
  scalableMode: boolean;
  /** ECAP.FSTS: first-stage translation (PASID entries with PGTT 001b); needs scalableMode. QEMU 7.2: no. */
  firstStage: boolean;
  /** ECAP.NEST: nested translation (PGTT 011b); needs firstStage. QEMU 7.2: no. */
  nested: boolean;
  /** ECAP.PASID and ECAP.PSS: PASID width of requests with a PASID (1..20), 0 for none. QEMU 7.2: none. */
  pasidBits: number;
  /** CAP.FS5LP and CAP.FS1GP: 5-level first-stage paging and 1 GiB first-stage pages. */
  firstStage5Level: boolean;
  firstStage1G: boolean;
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
  scalableMode: false,
  firstStage: false,
  nested: false,
  pasidBits: 0,
  firstStage5Level: false,
  firstStage1G: false,
});

/** A configuration starting from QEMU 7.2's default; `awBits` also sets `hawBits` unless given. */
export function qemuVtdConfig(overrides: Partial<VtdConfig> = {}): VtdConfig {
  const aw = overrides.awBits ?? QEMU_7_2_DEFAULT.awBits;
  // x-scalable-mode=on: Linux then writes 256-bit descriptors (IQA.DW), which the unit must read as such.
  const wide = overrides.scalableMode === true ? { wideDescriptors: true } : {};
  const cfg: VtdConfig = { ...QEMU_7_2_DEFAULT, hawBits: Math.min(aw, 52), ...wide, ...overrides };
  validateConfig(cfg);
  return cfg;
}

function bad(field: string, message: string): IommuError {
  return new IommuError("VTD_CONFIG", `VT-d configuration: ${field} ${message}`);
}

/** The largest cache geometry the model builds. */
const MAX_SETS = 65536;
const MAX_WAYS = 64;

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function validateGeometry(name: string, g: CacheGeometry): void {
  if (!isPow2(g.sets) || g.sets > MAX_SETS) throw bad(`${name}.sets`, `must be a power of two up to ${MAX_SETS}, got ${g.sets}`);
  if (!Number.isInteger(g.ways) || g.ways < 1 || g.ways > MAX_WAYS) throw bad(`${name}.ways`, `must be 1..${MAX_WAYS}, got ${g.ways}`);
  if (g.policy !== "lru" && g.policy !== "fifo" && g.policy !== "random") throw bad(`${name}.policy`, `must be lru, fifo or random`);
}

/** CAP.ND 6 gives 16-bit domain ids, the most there are (7 is reserved). */
const MAX_ND = ndForDomainIdBits(CONTEXT_ENTRY.DID.width);

function inField(v: number, s: FieldSpec): boolean {
  return Number.isInteger(v) && v >= 0 && v <= fieldMax(s);
}

/** A register offset CAP.FRO or ECAP.IRO can report, above the registers at fixed offsets. */
function validOffset(off: number): boolean {
  return Number.isInteger(off) && off % OFFSET_UNIT === 0 && off >= FIXED_REGISTERS_END && off <= MAX_REGISTER_OFFSET;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Throws VTD_CONFIG for a configuration no hardware could report. Configurations are not guest input. */
export function validateConfig(c: VtdConfig): void {
  if (!SUPPORTED_WIDTHS.includes(c.awBits)) throw bad("awBits", `must be ${SUPPORTED_WIDTHS.slice(0, -1).join(", ")} or ${SUPPORTED_WIDTHS.at(-1)}, got ${String(c.awBits)}`);
  if (!Number.isInteger(c.hawBits) || c.hawBits < 32 || c.hawBits > 52) throw bad("hawBits", `must be 32..52, got ${c.hawBits}`);
  const maxRecords = faultRecordCount(fieldMax(CAP.NFR));
  if (!Number.isInteger(c.faultRecords) || c.faultRecords < 1 || c.faultRecords > maxRecords) throw bad("faultRecords", `must be 1..${maxRecords}, got ${c.faultRecords}`);
  if (!Number.isInteger(c.largePages) || c.largePages < 0 || c.largePages > (SLLPS_2M | SLLPS_1G)) throw bad("largePages", `must be a 2-bit mask, got ${c.largePages}`);
  if (!inField(c.maxAddressMask, CAP.MAMV)) throw bad("maxAddressMask", `must be 0..${fieldMax(CAP.MAMV)}`);
  if (!Number.isInteger(c.domainIdField) || c.domainIdField < 0 || c.domainIdField > MAX_ND) throw bad("domainIdField", `must be 0..${MAX_ND}`);
  if (!inField(c.maxHandleMask, ECAP.MHMV)) throw bad("maxHandleMask", `must be 0..${fieldMax(ECAP.MHMV)}`);
  const fro = c.faultRecordOffset;
  if (!validOffset(fro)) throw bad("faultRecordOffset", `must be a multiple of ${OFFSET_UNIT} in ${hex(FIXED_REGISTERS_END)}..${hex(MAX_REGISTER_OFFSET)}`);
  const iro = c.iotlbRegOffset;
  if (!validOffset(iro)) throw bad("iotlbRegOffset", `must be a multiple of ${OFFSET_UNIT} in ${hex(FIXED_REGISTERS_END)}..${hex(MAX_REGISTER_OFFSET)}`);
  const froEnd = fro + FRCD_SIZE * c.faultRecords;
  if (iro + IOTLB_REGS_SIZE > fro && iro < froEnd) throw bad("iotlbRegOffset", `${hex(iro)} overlaps the fault recording registers`);
  if (c.extendedInterruptMode && !c.interruptRemapping) throw bad("extendedInterruptMode", "needs interruptRemapping");
  if (c.postedInterrupts && !c.interruptRemapping) throw bad("postedInterrupts", "needs interruptRemapping");
  if ((c.firstStage || c.nested || c.pasidBits !== 0) && !c.scalableMode) throw bad(c.firstStage ? "firstStage" : c.nested ? "nested" : "pasidBits", "needs scalableMode");
  if (c.nested && !c.firstStage) throw bad("nested", "needs firstStage");
  if (!Number.isInteger(c.pasidBits) || c.pasidBits < 0 || c.pasidBits > 20) throw bad("pasidBits", `must be 0..20, got ${c.pasidBits}`);
  validateGeometry("iotlb", c.iotlb);
  validateGeometry("contextCache", c.contextCache);
  if (c.pagingStructureCache !== null) validateGeometry("pagingStructureCache", c.pagingStructureCache);
  if (!Number.isInteger(c.interruptEntryCache) || c.interruptEntryCache < 0) throw bad("interruptEntryCache", "must be a non-negative integer");
}

/** CAP.SAGAW for a guest address width: every width up to it (QEMU always reports 39-bit). */
export function sagawFor(awBits: number): number {
  return SUPPORTED_WIDTHS.filter((w) => w <= awBits).reduce((sagaw, w) => sagaw | sagawBit(w), 0);
}

/** The widths the model supports: 39-bit (3-level), 48-bit (4-level) and 57-bit (5-level) tables. */
const SUPPORTED_WIDTHS = [awWidth(AW_39), awWidth(AW_48), awWidth(AW_57)];

/** CAP_REG (10.4.2) as a bigint. */
export function buildCap(c: VtdConfig): bigint {
  return encodeCap({
    ND: c.domainIdField,
    RWBF: c.requiredWriteBufferFlush,
    CM: c.cachingMode,
    SAGAW: sagawFor(c.awBits),
    MGAW: c.awBits - 1,
    FRO: offsetField(c.faultRecordOffset),
    SLLPS: c.largePages,
    PSI: c.pageSelectiveInvalidation,
    NFR: nfrForCount(c.faultRecords),
    MAMV: c.maxAddressMask,
    DWD: c.draining,
    DRD: c.draining,
    PI: c.postedInterrupts,
    FS1GP: c.firstStage && c.firstStage1G,
    FS5LP: c.firstStage && c.firstStage5Level,
  });
}

/** ECAP_REG (10.4.3) as a bigint. */
export function buildEcap(c: VtdConfig): bigint {
  return encodeEcap({
    QI: c.queuedInvalidation,
    DT: c.deviceTlb,
    IR: c.interruptRemapping,
    EIM: c.extendedInterruptMode,
    PT: c.passThrough,
    SC: c.snoopControl,
    IRO: offsetField(c.iotlbRegOffset),
    MHMV: c.interruptRemapping ? c.maxHandleMask : 0,
    SRS: c.scalableMode,
    SMTS: c.scalableMode,
    SSTS: c.scalableMode,
    FSTS: c.firstStage,
    NEST: c.nested,
    PASID: c.pasidBits > 0,
    PSS: c.pasidBits > 0 ? c.pasidBits - 1 : 0,
  });
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
  /** Reserved bits of a present root entry and of a present context entry, as dword masks (9.1, 9.3). */
  rootRsvd: readonly number[];
  contextRsvd: readonly number[];
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
  return {
    mgawBits: opts.mgawBits,
    hawBits: haw,
    sagaw: opts.sagaw,
    largePages: opts.largePages,
    passThrough: opts.passThrough,
    deviceTlb: opts.deviceTlb,
    snoopControl: opts.snoopControl,
    domainIdBits: opts.domainIdBits,
    addrHiMask: hawHiMask(haw),
    ...secondLevelReserved(opts),
    rootRsvd: Object.freeze(rootEntryReserved(haw)),
    contextRsvd: Object.freeze(contextEntryReserved(haw, opts.domainIdBits)),
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
    domainIdBits: domainIdBits(c.domainIdField),
  });
}

/** CAP/ECAP as lo/hi halves, for the register file. */
export function capHalves(c: VtdConfig): { capLo: number; capHi: number; ecapLo: number; ecapHi: number } {
  const cap = buildCap(c);
  const ecap = buildEcap(c);
  return { capLo: loOf(cap), capHi: hiOf(cap), ecapLo: loOf(ecap), ecapHi: hiOf(ecap) };
}
