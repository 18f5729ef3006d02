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
import { CAP, decodeCap, decodeEcap, domainIdBits, ECAP, faultRecordCount, mgawBits, registerOffset, SAGAW_WIDTHS, sagawWidths, SLLPS_1G, SLLPS_2M } from "../spec/vtd/capability.js";
import type { FieldSpec } from "../spec/vtd/fields.js";

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

/** "39-bit (3-level)": an AGAW width and its table levels (SAGAW bit n: 30 + 9n bits, n + 2 levels). */
const sagawLabel = (width: number, n: number): string => `${width}-bit (${n + 2}-level)`;

/** Second-level large-page sizes by CAP.SLLPS bit. */
const LARGE_PAGES: readonly (readonly [number, string])[] = [
  [SLLPS_2M, "2M"],
  [SLLPS_1G, "1G"],
];
const largePageNames = (sllps: number): string[] => LARGE_PAGES.filter(([b]) => (sllps & b) !== 0).map(([, n]) => n);
const LARGE_PAGE_LABELS: Readonly<Record<string, string>> = { "2M": "2 MiB", "1G": "1 GiB" };

const VTD_CAP_FIELDS: FieldDef[] = [
  { ...CAP.ND, describe: (v) => `domains supported: ${2 ** domainIdBits(v)}` },
  specFlag(CAP.AFL, "advanced fault logging"),
  specFlag(CAP.RWBF, "required write-buffer flushing"),
  specFlag(CAP.PLMR, "protected low-memory region"),
  specFlag(CAP.PHMR, "protected high-memory region"),
  specFlag(CAP.CM, "caching mode (a virtual IOMMU: invalidations needed for not-present entries)"),
  {
    ...CAP.SAGAW,
    describe: (v) =>
      `guest address widths: ${sagawWidths(v).map((w) => sagawLabel(w, SAGAW_WIDTHS.indexOf(w))).join(", ") || "none"}`,
  },
  { ...CAP.MGAW, describe: (v) => `maximum guest address width: ${mgawBits(v)} bits` },
  specFlag(CAP.ZLR, "zero-length reads"),
  { ...CAP.FRO, describe: (v) => `fault-recording registers at offset 0x${registerOffset(v).toString(16)}` },
  {
    ...CAP.SLLPS,
    describe: (v) => `second-level large pages: ${largePageNames(v).map((n) => LARGE_PAGE_LABELS[n]).join(", ") || "none"}`,
  },
  specFlag(CAP.PSI, "page-selective invalidation"),
  { ...CAP.NFR, describe: (v) => `fault-recording registers: ${faultRecordCount(v)}` },
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
  { ...ECAP.IRO, describe: (v) => `IOTLB registers at offset 0x${registerOffset(v).toString(16)}` },
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

const amdBit = (raw: bigint, n: number): boolean => field(raw, n, 1) === 1;

export function decodeVtdCap(raw: bigint): DecodedRegister<VtdCapSummary> {
  const cap = decodeCap(raw);
  return {
    raw,
    fields: decode(raw, VTD_CAP_FIELDS),
    summary: {
      addressWidths: sagawWidths(cap.SAGAW),
      mgaw: mgawBits(cap.MGAW),
      cachingMode: cap.CM === 1,
      largePages: largePageNames(cap.SLLPS),
      postedInterrupts: cap.PI === 1,
    },
  };
}

export function decodeVtdEcap(raw: bigint): DecodedRegister<VtdEcapSummary> {
  const ecap = decodeEcap(raw);
  return {
    raw,
    fields: decode(raw, VTD_ECAP_FIELDS),
    summary: {
      queuedInvalidation: ecap.QI === 1,
      deviceTlb: ecap.DT === 1,
      interruptRemapping: ecap.IR === 1,
      x2apic: ecap.EIM === 1,
      passThrough: ecap.PT === 1,
      snoopControl: ecap.SC === 1,
      nested: ecap.NEST === 1,
      pasid: ecap.PASID === 1,
      scalableMode: ecap.SMTS === 1,
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
    summary: { iotlb: amdBit(raw, 24), npCache: amdBit(raw, 26), efrSupported: amdBit(raw, 27) },
  };
}

export function decodeAmdEfr(raw: bigint): DecodedRegister<AmdEfrSummary> {
  return {
    raw,
    fields: decode(raw, AMD_EFR_FIELDS),
    summary: {
      ppr: amdBit(raw, 1),
      x2apic: amdBit(raw, 2),
      guestTranslation: amdBit(raw, 4),
      guestVirtualApic: amdBit(raw, 7),
      snp: amdBit(raw, 63),
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
