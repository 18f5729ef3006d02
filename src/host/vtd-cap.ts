/**
 * Decoders for the capability registers the kernel publishes in sysfs:
 *   Intel: /sys/class/iommu/dmarN/intel-iommu/{cap,ecap}  (hex, "%llx")
 *   AMD:   /sys/class/iommu/ivhdN/amd-iommu/{cap,features} (cap: the PCI capability header, "%x";
 *          features: the Extended Feature Register, "%llx", or "EFR2:EFR" on newer kernels)
 * Field positions: Intel VT-d specification rev 4.x §11.4.2 (Capability Register) and §11.4.3 (Extended
 * Capability Register); AMD I/O Virtualization Technology specification (48882) §3.4.12 (Extended Feature
 * Register) and §3.7.1 (IOMMU Capability Header).
 */
import { parseHexBig } from "../core/hex.js";
import { CAP, ECAP, type FieldSpec } from "../spec/vtd/fields.js";

export interface RegField {
  /** Short name as the specification writes it: "SAGAW", "IR", "XTSup". */
  name: string;
  /** Numeric value of the field (0/1 for flags). */
  value: number;
  /** What it means here, e.g. "39-bit (3-level), 48-bit (4-level)". */
  meaning: string;
}

interface FieldDef {
  name: string;
  lsb: number;
  width: number;
  describe: (v: number) => string;
}

const flag = (name: string, bit: number, what: string): FieldDef => ({
  name,
  lsb: bit,
  width: 1,
  describe: (v) => `${what}: ${v ? "yes" : "no"}`,
});

/** A VT-d flag whose position comes from spec/vtd. */
const specFlag = (s: FieldSpec, what: string): FieldDef => ({
  name: s.name,
  lsb: s.lsb,
  width: 1,
  describe: (v) => `${what}: ${v ? "yes" : "no"}`,
});

function field(raw: bigint, lsb: number, width: number): number {
  return Number((raw >> BigInt(lsb)) & ((1n << BigInt(width)) - 1n));
}

function decode(raw: bigint, defs: FieldDef[]): RegField[] {
  return defs.map((d) => {
    const value = field(raw, d.lsb, d.width);
    return { name: d.name, value, meaning: d.describe(value) };
  });
}

const SAGAW_WIDTHS: [number, string][] = [
  [0, "30-bit (2-level)"],
  [1, "39-bit (3-level)"],
  [2, "48-bit (4-level)"],
  [3, "57-bit (5-level)"],
];

const VTD_CAP_FIELDS: FieldDef[] = [
  { ...CAP.ND, describe: (v) => `domains supported: ${2 ** (4 + 2 * v)}` },
  specFlag(CAP.AFL, "advanced fault logging"),
  specFlag(CAP.RWBF, "required write-buffer flushing"),
  specFlag(CAP.PLMR, "protected low-memory region"),
  specFlag(CAP.PHMR, "protected high-memory region"),
  specFlag(CAP.CM, "caching mode (a virtual IOMMU: invalidations needed for not-present entries)"),
  {
    ...CAP.SAGAW,
    describe: (v) =>
      `guest address widths: ${SAGAW_WIDTHS.filter(([b]) => (v >> b) & 1).map(([, s]) => s).join(", ") || "none"}`,
  },
  { ...CAP.MGAW, describe: (v) => `maximum guest address width: ${v + 1} bits` },
  specFlag(CAP.ZLR, "zero-length reads"),
  { ...CAP.FRO, describe: (v) => `fault-recording registers at offset 0x${(v * 16).toString(16)}` },
  {
    ...CAP.SLLPS,
    describe: (v) => `second-level large pages: ${[v & 1 ? "2 MiB" : "", v & 2 ? "1 GiB" : ""].filter(Boolean).join(", ") || "none"}`,
  },
  specFlag(CAP.PSI, "page-selective invalidation"),
  { ...CAP.NFR, describe: (v) => `fault-recording registers: ${v + 1}` },
  { ...CAP.MAMV, describe: (v) => `maximum address mask value: ${v}` },
  specFlag(CAP.DWD, "write draining"),
  specFlag(CAP.DRD, "read draining"),
  specFlag(CAP.FS1GP, "first-stage 1 GiB pages"),
  specFlag(CAP.PI, "posted interrupts"),
  specFlag(CAP.FS5LP, "first-stage 5-level paging"),
  specFlag(CAP.ESIRTPS, "IRTE cache invalidated on SIRTP"),
  specFlag(CAP.ESRTPS, "caches invalidated on SRTP"),
];

const VTD_ECAP_FIELDS: FieldDef[] = [
  specFlag(ECAP.C, "page-walk coherency"),
  specFlag(ECAP.QI, "queued invalidation"),
  specFlag(ECAP.DT, "device-TLB (ATS)"),
  specFlag(ECAP.IR, "interrupt remapping"),
  specFlag(ECAP.EIM, "extended interrupt mode (x2APIC)"),
  specFlag(ECAP.PT, "pass-through"),
  specFlag(ECAP.SC, "snoop control"),
  { ...ECAP.IRO, describe: (v) => `IOTLB registers at offset 0x${(v * 16).toString(16)}` },
  { ...ECAP.MHMV, describe: (v) => `maximum handle mask value: ${v}` },
  specFlag(ECAP.MTS, "memory type support"),
  specFlag(ECAP.NEST, "nested translation"),
  specFlag(ECAP.PRS, "page requests"),
  specFlag(ECAP.ERS, "execute requests"),
  specFlag(ECAP.SRS, "supervisor requests"),
  specFlag(ECAP.NWFS, "no write flag"),
  specFlag(ECAP.EAFS, "extended accessed flag"),
  { ...ECAP.PSS, describe: (v) => `PASID size: ${v === 0 ? 0 : v + 1} bits` },
  specFlag(ECAP.PASID, "process address space IDs"),
  specFlag(ECAP.DIT, "device-TLB invalidation throttling"),
  specFlag(ECAP.PDS, "page-request drain"),
  specFlag(ECAP.SMTS, "scalable-mode translation"),
  specFlag(ECAP.VCS, "virtual command"),
  specFlag(ECAP.SSADS, "second-stage accessed/dirty"),
  specFlag(ECAP.SSTS, "second-stage translation"),
  specFlag(ECAP.FSTS, "first-stage translation"),
  specFlag(ECAP.SMPWC, "scalable-mode page-walk coherency"),
  specFlag(ECAP.RPS, "RID_PASID"),
];

const AMD_CAP_FIELDS: FieldDef[] = [
  { name: "CapID", lsb: 0, width: 8, describe: (v) => `capability id 0x${v.toString(16)}${v === 0x0f ? " (secure device)" : ""}` },
  { name: "CapType", lsb: 16, width: 3, describe: (v) => `capability type ${v}${v === 3 ? " (IOMMU)" : ""}` },
  { name: "CapRev", lsb: 19, width: 5, describe: (v) => `revision ${v}` },
  flag("IotlbSup", 24, "IOTLB (ATS)"),
  flag("HtTunnel", 25, "HyperTransport tunnel"),
  flag("NpCache", 26, "caches not-present entries (a virtual IOMMU)"),
  flag("EFRSup", 27, "extended feature register"),
  flag("CapExt", 28, "miscellaneous information registers"),
];

const AMD_EFR_FIELDS: FieldDef[] = [
  flag("PreFSup", 0, "prefetch"),
  flag("PPRSup", 1, "peripheral page requests"),
  flag("XTSup", 2, "x2APIC interrupts"),
  flag("NXSup", 3, "no-execute"),
  flag("GTSup", 4, "guest translation"),
  flag("IASup", 6, "INVALIDATE_IOMMU_ALL"),
  flag("GASup", 7, "guest virtual APIC (posted interrupts)"),
  flag("HESup", 8, "hardware error registers"),
  flag("PCSup", 9, "performance counters"),
  { name: "HATS", lsb: 10, width: 2, describe: (v) => `host page-table levels: ${[4, 5, 6][v] ?? "reserved"}` },
  { name: "GATS", lsb: 12, width: 2, describe: (v) => `guest page-table levels: ${[4, 5][v] ?? "reserved"}` },
  { name: "GLXSup", lsb: 14, width: 2, describe: (v) => `guest CR3 table levels: ${v + 1}` },
  flag("GAMSup", 21, "guest virtual APIC modes"),
  { name: "PASmax", lsb: 32, width: 5, describe: (v) => `PASID size: ${v === 0 ? 0 : v + 1} bits` },
  flag("GIoSup", 48, "guest I/O protection"),
  flag("HASup", 49, "host access bit"),
  flag("EPHSup", 50, "enhanced PPR handling"),
  flag("HDSup", 52, "host dirty bit"),
  flag("SNPSup", 63, "SEV-SNP protection"),
];

/** The flags the doctor reasons about, picked out of the field lists. */
export interface VtdCapSummary {
  /** Supported guest address widths in bits, e.g. [39, 48]. */
  addressWidths: number[];
  mgaw: number;
  cachingMode: boolean;
  largePages: string[];
  postedInterrupts: boolean;
}

export interface VtdEcapSummary {
  queuedInvalidation: boolean;
  interruptRemapping: boolean;
  x2apic: boolean;
  passThrough: boolean;
  snoopControl: boolean;
  deviceTlb: boolean;
  pasid: boolean;
  scalableMode: boolean;
  nested: boolean;
}

export interface DecodedRegister<S> {
  raw: bigint;
  fields: RegField[];
  summary: S;
}

const bit = (raw: bigint, n: number): boolean => ((raw >> BigInt(n)) & 1n) === 1n;

export function decodeVtdCap(raw: bigint): DecodedRegister<VtdCapSummary> {
  const sagaw = field(raw, 8, 5);
  const sllps = field(raw, 34, 4);
  return {
    raw,
    fields: decode(raw, VTD_CAP_FIELDS),
    summary: {
      addressWidths: [30, 39, 48, 57].filter((_, i) => (sagaw >> i) & 1),
      mgaw: field(raw, 16, 6) + 1,
      cachingMode: bit(raw, 7),
      largePages: [sllps & 1 ? "2M" : "", sllps & 2 ? "1G" : ""].filter((s) => s !== ""),
      postedInterrupts: bit(raw, 59),
    },
  };
}

export function decodeVtdEcap(raw: bigint): DecodedRegister<VtdEcapSummary> {
  return {
    raw,
    fields: decode(raw, VTD_ECAP_FIELDS),
    summary: {
      queuedInvalidation: bit(raw, 1),
      deviceTlb: bit(raw, 2),
      interruptRemapping: bit(raw, 3),
      x2apic: bit(raw, 4),
      passThrough: bit(raw, 6),
      snoopControl: bit(raw, 7),
      nested: bit(raw, 26),
      pasid: bit(raw, 40),
      scalableMode: bit(raw, 43),
    },
  };
}

export interface AmdCapSummary {
  efrSupported: boolean;
  npCache: boolean;
  iotlb: boolean;
}

export interface AmdEfrSummary {
  x2apic: boolean;
  guestTranslation: boolean;
  guestVirtualApic: boolean;
  ppr: boolean;
  snp: boolean;
}

export function decodeAmdCap(raw: bigint): DecodedRegister<AmdCapSummary> {
  return {
    raw,
    fields: decode(raw, AMD_CAP_FIELDS),
    summary: { iotlb: bit(raw, 24), npCache: bit(raw, 26), efrSupported: bit(raw, 27) },
  };
}

export function decodeAmdEfr(raw: bigint): DecodedRegister<AmdEfrSummary> {
  return {
    raw,
    fields: decode(raw, AMD_EFR_FIELDS),
    summary: {
      ppr: bit(raw, 1),
      x2apic: bit(raw, 2),
      guestTranslation: bit(raw, 4),
      guestVirtualApic: bit(raw, 7),
      snp: bit(raw, 63),
    },
  };
}

/** Parses a sysfs register value ("d2008c40660462", "0x…"); null when it is not hex or wider than 64 bits. */
export function parseRegister(text: string | null): bigint | null {
  if (text === null) return null;
  const v = parseHexBig(text);
  return v === null || v > 0xffffffffffffffffn ? null : v;
}

/** Parses amd-iommu/features: "EFR" (older kernels) or "EFR2:EFR" (newer). */
export function parseAmdFeatures(text: string | null): { efr: bigint; efr2: bigint | null } | null {
  if (text === null) return null;
  const parts = text.trim().split(":");
  if (parts.length === 1) {
    const efr = parseRegister(parts[0] ?? "");
    return efr === null ? null : { efr, efr2: null };
  }
  const efr2 = parseRegister(parts[0] ?? "");
  const efr = parseRegister(parts[1] ?? "");
  return efr === null ? null : { efr, efr2 };
}
