/**
 * Kernel command line analysis: what the IOMMU-related parameters on /proc/cmdline mean, and which of them are
 * mistakes. Facts (Documentation/admin-guide/kernel-parameters.txt and the parsers in the 6.x kernel):
 * - intel_iommu= is a comma list; each item is matched by prefix: on, off, igfx_off, forcedac, strict, sp_off,
 *   sm_on, sm_off, tboot_noforce. Anything else logs "DMAR: Unknown option - '…'" and is ignored.
 * - amd_iommu= knows fullflush, force_enable, off, force_isolation, pgtbl_v1, pgtbl_v2, irtcachedis,
 *   nohugepages, v2_pgsizes_only. There is no "on": the AMD driver is on by default, and 6.1 logs
 *   "AMD-Vi: Unknown option - 'on'".
 * - iommu= (x86): off, force, noforce, soft, pt, nopt, … ; iommu=off disables both Intel and AMD drivers.
 * - iommu.strict=0|1 chooses lazy (flush queue, DMA-FQ) or strict (DMA) invalidation; iommu.passthrough=1 makes
 *   identity the default domain.
 * - intremap= on, off, nosid, no_x2apic_optout, nopost; nointremap is the old spelling of intremap=off.
 * - pcie_acs_override= comes from an out-of-tree patch (Proxmox, linux-zen, …): it makes the kernel pretend
 *   devices have ACS, splitting IOMMU groups that the hardware does not isolate.
 */
import { kernelParams, kstrtobool, normalizedName } from "../core/kernel-cmdline.js";
import { problem, type Problem } from "./problem.js";

export type CpuVendor = "intel" | "amd" | "unknown";

export interface CmdlineParam {
  /** Name with "-" read as "_" (the kernel treats them alike in parameter names). */
  name: string;
  /** Text after the first "=", unquoted; null for a bare flag. */
  value: string | null;
}

export interface CmdlineAnalysis {
  raw: string;
  /** intel_iommu= options in order (all occurrences), or null when absent. */
  intelIommu: string[] | null;
  amdIommu: string[] | null;
  iommu: string[] | null;
  /** iommu.strict: true (strict), false (lazy), null when not given. */
  iommuStrict: boolean | null;
  /** iommu.passthrough or iommu=pt / nopt: true, false, or null when not given. */
  iommuPassthrough: boolean | null;
  intremap: string[] | null;
  pcieAcsOverride: string | null;
  /** vfio-pci.ids: "vendor:device" strings. */
  vfioPciIds: string[];
  /** vfio_iommu_type1.allow_unsafe_interrupts on the command line. */
  allowUnsafeInterrupts: boolean | null;
  /** iommufd.allow_unsafe_interrupts on the command line (the iommufd backend's own switch). */
  iommufdAllowUnsafeInterrupts: boolean | null;
  /** What the command line asks for: true (on), false (off), null (kernel default). */
  iommuRequested: boolean | null;
  /** What it says about interrupt remapping: false when intremap=off/nointremap, else null. */
  intremapRequested: boolean | null;
  problems: Problem[];
}

/** The kernel's parameters of a command line, names compared as the kernel does ('-' equals '_'). */
export function parseCmdline(text: string): CmdlineParam[] {
  return kernelParams(text).map(({ name, value }) => ({ name: normalizedName(name), value }));
}

const INTEL_OPTIONS = ["on", "off", "igfx_off", "forcedac", "strict", "sp_off", "sm_on", "sm_off", "tboot_noforce"];
const AMD_OPTIONS = [
  "fullflush", "force_enable", "off", "force_isolation", "pgtbl_v1", "pgtbl_v2", "irtcachedis", "nohugepages",
  "v2_pgsizes_only",
];
const IOMMU_OPTIONS = [
  "off", "force", "noforce", "biomerge", "panic", "nopanic", "merge", "nomerge", "soft", "pt", "nopt", "usedac",
  "allowed", "memaper", "fullflush", "nofullflush", "noagp", "noaperture", "calgary", "forcesac", "allowdac", "nodac",
];
const INTREMAP_OPTIONS = ["on", "off", "nosid", "no_x2apic_optout", "nopost"];

function options(params: CmdlineParam[], name: string): string[] | null {
  const hits = params.filter((p) => p.name === name);
  if (hits.length === 0) return null;
  return hits.flatMap((p) => (p.value ?? "").split(",").filter((s) => s !== ""));
}

function lastValue(params: CmdlineParam[], name: string): string | null | undefined {
  const hits = params.filter((p) => p.name === name);
  return hits.length === 0 ? undefined : (hits.at(-1)?.value ?? null);
}

/** Options the parser does not know; the Intel parser matches by prefix, the others exactly. */
function unknownOptions(given: string[], known: string[], byPrefix: boolean): string[] {
  return given.filter((o) => !known.some((k) => (byPrefix ? o.startsWith(k) : o === k)));
}

export function analyzeCmdline(raw: string, vendor: CpuVendor = "unknown"): CmdlineAnalysis {
  const params = parseCmdline(raw);
  const intelIommu = options(params, "intel_iommu");
  const amdIommu = options(params, "amd_iommu");
  const iommu = options(params, "iommu");
  const intremap = options(params, "intremap");
  const nointremap = params.some((p) => p.name === "nointremap");
  const acs = lastValue(params, "pcie_acs_override");
  const problems: Problem[] = [];

  // Intel: the last on/off wins.
  const intelOnOff = (intelIommu ?? []).filter((o) => o.startsWith("on") || o.startsWith("off")).at(-1);
  const amdOff = (amdIommu ?? []).includes("off");
  const iommuOff = (iommu ?? []).includes("off");
  let iommuRequested: boolean | null = null;
  if (vendor === "intel" && intelOnOff !== undefined) iommuRequested = intelOnOff.startsWith("on");
  if (vendor === "amd" && amdOff) iommuRequested = false;
  if (iommuOff) iommuRequested = false;

  let passthrough = kstrtobool(lastValue(params, "iommu.passthrough"));
  if (passthrough === null && iommu !== null) {
    const pt = iommu.filter((o) => o === "pt" || o === "nopt").at(-1);
    if (pt !== undefined) passthrough = pt === "pt";
  }
  let strict = kstrtobool(lastValue(params, "iommu.strict"));
  if (strict === null && ((intelIommu ?? []).some((o) => o.startsWith("strict")) || (amdIommu ?? []).includes("fullflush"))) {
    strict = true;
  }

  const intremapOff = nointremap || (intremap ?? []).includes("off");

  if (amdIommu?.includes("on")) {
    problems.push(problem("AMD_IOMMU_ON_INVALID", "warning",
      "amd_iommu=on is not a valid option: the kernel ignores it and logs \"AMD-Vi: Unknown option - 'on'\"",
      "remove amd_iommu=on; the AMD IOMMU is on by default when the firmware enables it (use amd_iommu=off only to turn it off)"));
  }
  const amdUnknown = unknownOptions(amdIommu ?? [], AMD_OPTIONS, false).filter((o) => o !== "on");
  if (amdUnknown.length > 0) {
    problems.push(problem("INVALID_KERNEL_PARAMETER", "warning",
      `amd_iommu=${amdUnknown.join(",")}: unknown option${amdUnknown.length > 1 ? "s" : ""}, ignored by the kernel`,
      `valid options: ${AMD_OPTIONS.join(", ")}`));
  }
  const intelUnknown = unknownOptions(intelIommu ?? [], INTEL_OPTIONS, true);
  if (intelUnknown.length > 0) {
    problems.push(problem("INVALID_KERNEL_PARAMETER", "warning",
      `intel_iommu=${intelUnknown.join(",")}: unknown option${intelUnknown.length > 1 ? "s" : ""}, ignored by the kernel (it logs "DMAR: Unknown option")`,
      intelUnknown.includes("pt") ? "pass-through is iommu=pt, a separate parameter" : `valid options: ${INTEL_OPTIONS.join(", ")}`));
  }
  const iommuUnknown = unknownOptions(iommu ?? [], IOMMU_OPTIONS, false);
  if (iommuUnknown.length > 0) {
    problems.push(problem("INVALID_KERNEL_PARAMETER", "warning",
      `iommu=${iommuUnknown.join(",")}: not an option the x86 kernel knows; it has no effect`,
      iommuUnknown.includes("on")
        ? "to turn the IOMMU on use intel_iommu=on (Intel); AMD needs nothing. iommu=pt is the usual companion"
        : `common values: pt (pass-through for host devices), off`));
  }
  const intremapUnknown = unknownOptions(intremap ?? [], INTREMAP_OPTIONS, false);
  if (intremapUnknown.length > 0) {
    problems.push(problem("INVALID_KERNEL_PARAMETER", "warning",
      `intremap=${intremapUnknown.join(",")}: unknown option, ignored`, `valid options: ${INTREMAP_OPTIONS.join(", ")}`));
  }
  if (vendor === "amd" && intelIommu !== null) {
    problems.push(problem("WRONG_VENDOR_PARAMETER", "info",
      `intel_iommu=${intelIommu.join(",")} has no effect on an AMD CPU`, "remove it; it only configures Intel VT-d"));
  }
  if (vendor === "intel" && amdIommu !== null) {
    problems.push(problem("WRONG_VENDOR_PARAMETER", "info",
      `amd_iommu=${amdIommu.join(",")} has no effect on an Intel CPU`, "remove it; it only configures AMD-Vi"));
  }
  if (acs !== undefined) {
    problems.push(problem("ACS_OVERRIDE", "warning",
      `pcie_acs_override=${acs ?? ""} is set: IOMMU groups no longer show real isolation`,
      "devices split into separate groups by the override can still reach each other with peer-to-peer DMA; a VM " +
        "given one of them may read or corrupt the others' memory traffic. Use it only if you accept that risk"));
  }

  const vfioIds = params
    .filter((p) => p.name === "vfio_pci.ids")
    .flatMap((p) => (p.value ?? "").split(","))
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== "");

  return {
    raw: raw.trim(),
    intelIommu,
    amdIommu,
    iommu,
    iommuStrict: strict,
    iommuPassthrough: passthrough,
    intremap: nointremap ? [...(intremap ?? []), "off"] : intremap,
    pcieAcsOverride: acs === undefined ? null : (acs ?? ""),
    vfioPciIds: vfioIds,
    allowUnsafeInterrupts: kstrtobool(lastValue(params, "vfio_iommu_type1.allow_unsafe_interrupts")),
    iommufdAllowUnsafeInterrupts: kstrtobool(lastValue(params, "iommufd.allow_unsafe_interrupts")),
    iommuRequested,
    intremapRequested: intremapOff ? false : null,
    problems,
  };
}
