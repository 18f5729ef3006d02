/**
 * Which default domain an IOMMU group gets, as Linux 6.1 decides it for Intel VT-d (Debian's build). Each rule
 * cites where it lives; names are Linux's.
 *
 * The global default (drivers/iommu/iommu.c):
 *   D1  iommu_def_domain_type starts as CONFIG_IOMMU_DEFAULT_PASSTHROUGH gives it (identity) or DMA, unless the
 *       command line chose: iommu=pt / iommu=nopt (arch/x86/kernel/pci-dma.c iommu_setup) and
 *       iommu.passthrough=<bool> (iommu_set_def_domain_type) set it and mark it "set via kernel command line".
 *   D2  iommu_dma_strict starts as CONFIG_IOMMU_DEFAULT_DMA_STRICT (Debian: lazy); iommu.strict=<bool>
 *       (iommu_dma_setup) and intel_iommu=strict (iommu_set_dma_strict) change it.
 *   D3  iommu_subsys_init: a default that is not identity becomes DMA-FQ unless strict.
 *   D4  iommu_set_dma_strict later (intel_iommu_init when CAP.CM is set: "IOMMU batching disallowed due to
 *       virtualization"; the Calpella quirk) turns a DMA-FQ default back into DMA.
 *
 * What a device needs (drivers/iommu/iommu.c iommu_get_def_domain_type, then the driver's def_domain_type,
 * drivers/iommu/intel/iommu.c device_def_domain_type):
 *   R1  an untrusted PCI device (behind an external-facing port, pci_set_untrusted) needs DMA;
 *   R2  with IDENTMAP_AZALIA, the Tylersburg Azalia (8086:3a3e) needs identity;
 *   R3  with IDENTMAP_GFX, every display-class device (class 0x03xxxx, on any bus, of any vendor) needs identity;
 *   R4  Debian only (features/x86/intel-iommu-add-option-to-exclude-integrated-gpu-only.patch): with
 *       IDENTMAP_INTGPU, a display-class device of vendor 0x8086 on the root bus needs identity;
 *   R5  any other device has no need (0): the group's type decides.
 *
 * Where the IDENTMAP flags come from (init_dmars, after the units' root entries are set):
 *   F1  IDENTMAP_GFX when dmar_map_gfx is 0: intel_iommu=igfx_off ("Disable GFX device mapping"), or the PCI
 *       header quirk quirk_iommu_igfx for the graphics of Q35 (8086:29b2), G4x/GM45, QM57/QS57 and Broadwell
 *       ("Disabling IOMMU for graphics on this chipset"), or quirk_calpella_no_shadow_gtt when the GGC register
 *       (config 0x52) has no VT-enabled shadow GTT; a device on an untrusted link is skipped (risky_device).
 *   F2  IDENTMAP_INTGPU when dmar_map_intgpu is 0 (Debian): its start value is CONFIG_INTEL_IOMMU_DEFAULT_ON
 *       (0 with Debian's CONFIG_INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF); intel_iommu=on sets it to 1,
 *       intel_iommu=intgpu_off to 0 ("Disable integrated GPU device mapping"), in command-line order.
 *   F3  IDENTMAP_AZALIA from check_tylersburg_isoch: an Azalia 8086:3a3e and a Tylersburg 8086:342e whose
 *       VTISOCHCTRL (config 0x188) routes Azalia to the isoch unit (bit 0 clear) with no TLB entries (bits 4:2 = 0).
 *   RMRRs do not choose a default type in 6.1: they become direct-mapped reserved regions of the device
 *   (intel_iommu_get_resv_regions; relaxable for USB and display devices, device_rmrr_is_relaxable) in whatever
 *   domain the group gets, and si_domain maps them too.
 *
 * The group (drivers/iommu/iommu.c probe_alloc_default_domain / probe_get_default_domain_type):
 *   G1  members are asked in group order; the first member with a need sets the type; a later member with a
 *       different need logs "Device needs domain type X, but device Y in the same iommu group requires type Z -
 *       using default" once and the group falls back to the global default (the first member keeps its place, so
 *       no second warning);
 *   G2  no member with a need: the global default (D1-D4).
 */
import { PCI_BASE_CLASS_DISPLAY } from "../core/pci-regs.js";

/** The kinds of domain a group can get (sysfs iommu_group/type spells them the same way). */
export type DomainType = "identity" | "DMA" | "DMA-FQ" | "blocked" | "unmanaged";

/** iommu_def_domain_type and iommu_dma_strict, and whether the command line set each. */
export interface GlobalDefault {
  type: DomainType;
  strict: boolean;
  typeFromCmdline: boolean;
  strictFromCmdline: boolean;
}

/** D1, D2: the start values, from the kernel configuration and the command line. */
export function initialGlobalDefault(
  o: { passthroughCmdline: boolean | null; strictCmdline: boolean | null; strictForced?: boolean },
  config: { defaultPassthrough: boolean; defaultStrict: boolean },
): GlobalDefault {
  const pt = o.passthroughCmdline ?? config.defaultPassthrough;
  return {
    type: pt ? "identity" : "DMA",
    // iommu.strict= is an early parameter; a driver's iommu_set_dma_strict() (intel_iommu=strict,
    // amd_iommu=fullflush) runs after it and wins.
    strict: o.strictForced === true || (o.strictCmdline ?? config.defaultStrict),
    typeFromCmdline: o.passthroughCmdline !== null,
    strictFromCmdline: o.strictCmdline !== null,
  };
}

/** D3: iommu_subsys_init, with the two lines it logs ("iommu: " prefix included). */
export function subsysInitDefault(g: GlobalDefault): { global: GlobalDefault; lines: string[] } {
  const type: DomainType = g.type !== "identity" && !g.strict ? "DMA-FQ" : g.type;
  const via = (b: boolean) => (b ? "(set via kernel command line)" : "");
  const lines = [`iommu: Default domain type: ${domainTypeName(type)} ${via(g.typeFromCmdline)}`];
  if (type !== "identity") lines.push(`iommu: DMA domain TLB invalidation policy: ${g.strict ? "strict" : "lazy"} mode ${via(g.strictFromCmdline)}`);
  return { global: { ...g, type }, lines };
}

/** D4: iommu_set_dma_strict. */
export function setDmaStrict(g: GlobalDefault): GlobalDefault {
  return { ...g, strict: true, type: g.type === "DMA-FQ" ? "DMA" : g.type };
}

/** The IDENTMAP_* flags of drivers/iommu/intel/iommu.c (IDENTMAP_INTGPU is Debian's). */
export interface IdentMap {
  gfx: boolean;
  intgpu: boolean;
  azalia: boolean;
}

/** What the rules look at in a PCI function. */
export interface DomainDevice {
  /** Requester id (bus << 8 | devfn), for the quirks' configuration reads. */
  rid: number;
  name: string;
  vendor: number;
  device: number;
  classCode: number;
  /** On the root bus (pci_is_root_bus(pdev->bus)): no bridge above it. */
  onRootBus: boolean;
  /** pdev->untrusted: behind a port firmware marks external-facing. */
  untrusted: boolean;
}

const INTEL = 0x8086;

/** IS_GFX_DEVICE */
export const isGfxDevice = (d: DomainDevice): boolean => d.classCode >>> 16 === PCI_BASE_CLASS_DISPLAY;
/** IS_INTGPU_DEVICE (Debian) */
export const isIntGpuDevice = (d: DomainDevice): boolean => isGfxDevice(d) && d.vendor === INTEL && d.onRootBus;
/** IS_AZALIA */
export const isAzalia = (d: DomainDevice): boolean => d.vendor === INTEL && d.device === 0x3a3e;

/** R1-R5: the type a device needs, or null (0 in Linux) when either works. */
export function deviceDefDomainType(d: DomainDevice, flags: IdentMap): DomainType | null {
  if (d.untrusted) return "DMA"; // R1
  if (flags.azalia && isAzalia(d)) return "identity"; // R2
  if (flags.gfx && isGfxDevice(d)) return "identity"; // R3
  if (flags.intgpu && isIntGpuDevice(d)) return "identity"; // R4
  return null; // R5
}

/** iommu_domain_type_str */
export function domainTypeName(t: DomainType): string {
  switch (t) {
    case "identity":
      return "Passthrough";
    case "blocked":
      return "Blocked";
    case "unmanaged":
      return "Unmanaged";
    default:
      return "Translated";
  }
}

/** G1/G2: the group's default domain type and the warning Linux logs for a conflict (at most one). */
export function groupDefDomainType(
  members: DomainDevice[],
  flags: IdentMap,
  globalDefault: DomainType,
): { type: DomainType; warning: { device: string; text: string } | null } {
  let first: { dev: DomainDevice; type: DomainType | null } | null = null;
  let warning: { device: string; text: string } | null = null;
  for (const dev of members) {
    const t = deviceDefDomainType(dev, flags);
    if (t === null) continue;
    if (first !== null && first.type !== null && first.type !== t) {
      warning = {
        device: dev.name,
        text: `Device needs domain type ${domainTypeName(t)}, but device ${first.dev.name} in the same iommu group requires type ${domainTypeName(first.type)} - using default`,
      };
      first = { dev: first.dev, type: null };
    }
    first ??= { dev, type: t };
  }
  return { type: first?.type ?? globalDefault, warning };
}

/** Intel graphics device ids quirk_iommu_igfx disables DMA remapping for (Q35, G4x/GM45, QM57/QS57, Broadwell). */
export const IGFX_QUIRK_IDS: ReadonlySet<number> = new Set([
  0x29b2, 0x2a40, 0x2e00, 0x2e10, 0x2e20, 0x2e30, 0x2e40, 0x2e90, 0x0044,
  0x1606, 0x160b, 0x160e, 0x1602, 0x160a, 0x160d, 0x1616, 0x161b, 0x161e, 0x1612, 0x161a, 0x161d,
  0x1626, 0x162b, 0x162e, 0x1622, 0x162a, 0x162d, 0x1636, 0x163b, 0x163e, 0x1632, 0x163a, 0x163d,
]);
/** Calpella host bridges whose GGC register quirk_calpella_no_shadow_gtt reads. */
export const CALPELLA_IDS: ReadonlySet<number> = new Set([0x0040, 0x0062, 0x006a]);
const GGC = 0x52;
const GGC_MEMORY_VT_ENABLED = 0x8 << 8;

export interface QuirkOutcome {
  /** dmar_map_gfx cleared by a quirk. */
  noGfxMapping: boolean;
  /** iommu_set_dma_strict called by a quirk. */
  strict: boolean;
  /** "pci NAME: …" lines the quirks print, in enumeration order. */
  messages: string[];
}

/** The PCI header quirks of drivers/iommu/intel/iommu.c that touch the default domain (F1, D4). */
export function intelIommuQuirks(
  devs: DomainDevice[],
  igfxOffCmdline: boolean,
  configRead16: (rid: number, off: number) => number,
): QuirkOutcome {
  const out: QuirkOutcome = { noGfxMapping: false, strict: false, messages: [] };
  const risky = (d: DomainDevice): boolean => {
    if (!d.untrusted) return false;
    const id = `${d.vendor.toString(16).toUpperCase().padStart(4, "0")}:${d.device.toString(16).toUpperCase().padStart(4, "0")}`;
    out.messages.push(`pci ${d.name}: Skipping IOMMU quirk for dev [${id}] on untrusted PCI link`);
    out.messages.push(`pci ${d.name}: Please check with your BIOS/Platform vendor about this`);
    return true;
  };
  for (const d of devs) {
    if (d.vendor !== INTEL) continue;
    if (IGFX_QUIRK_IDS.has(d.device) && !risky(d)) {
      out.messages.push(`pci ${d.name}: Disabling IOMMU for graphics on this chipset`);
      out.noGfxMapping = true;
    } else if (CALPELLA_IDS.has(d.device) && !risky(d)) {
      const ggc = configRead16(d.rid, GGC);
      if ((ggc & GGC_MEMORY_VT_ENABLED) === 0) {
        out.messages.push(`pci ${d.name}: BIOS has allocated no shadow GTT; disabling IOMMU for graphics`);
        out.noGfxMapping = true;
      } else if (!out.noGfxMapping && !igfxOffCmdline) {
        out.messages.push(`pci ${d.name}: Disabling batched IOTLB flush on Ironlake`);
        out.strict = true;
      }
    }
  }
  return out;
}

/** F3: check_tylersburg_isoch. */
export function tylersburgAzaliaIdentity(devs: DomainDevice[], configRead32: (rid: number, off: number) => number): boolean {
  const azalia = devs.find(isAzalia);
  if (azalia === undefined || azalia.untrusted) return false;
  const smr = devs.find((d) => d.vendor === INTEL && d.device === 0x342e);
  if (smr === undefined || smr.untrusted) return false;
  const ctl = configRead32(smr.rid, 0x188);
  if ((ctl & 1) !== 0) return false;
  return (ctl & 0x1c) === 0;
}

/** F1-F3 together: the flags init_dmars leaves in iommu_identity_mapping. */
export function identMapFlags(o: { igfxOffCmdline: boolean; quirks: QuirkOutcome; mapIntGpu: boolean; azalia: boolean }): IdentMap {
  return { gfx: o.igfxOffCmdline || o.quirks.noGfxMapping, intgpu: !o.mapIntGpu, azalia: o.azalia };
}
