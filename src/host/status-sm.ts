/**
 * Whether the kernel runs its VT-d units in scalable mode, as far as a host can tell. Linux 6.1 decides it once
 * (drivers/iommu/intel/iommu.c: sm_supported = intel_iommu_sm && ecap_smts): intel_iommu_sm starts at the build
 * option CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON and `intel_iommu=sm_on` / `sm_off` set it, the last one given
 * winning; a unit without ECAP.SMTS runs in legacy mode whatever is asked. The mode itself is visible only in
 * RTADDR_REG.TTM, which sysfs does not show (Debian builds no IOMMU debugfs), so the answer is always inferred
 * from ECAP, the command line and /boot/config; without a readable config and without sm_on / sm_off it is unknown.
 */
import type { CmdlineAnalysis } from "./cmdline.js";
import type { KernelConfig, KernelUnit } from "./status-kernel.js";

export interface ScalableModeJudgement {
  /** What the kernel does with its Intel units: "scalable", "legacy", or "unknown". */
  mode: "scalable" | "legacy" | "unknown";
  /** Always true: read from ECAP, the command line and the build config, not from the translation registers. */
  inferred: true;
  /** Why, in one sentence. */
  why: string;
}

/** The last sm_on / sm_off among the intel_iommu= options (the kernel matches them by prefix), or null. */
export function smOption(intelIommu: readonly string[] | null): boolean | null {
  let v: boolean | null = null;
  for (const o of intelIommu ?? []) {
    if (o.startsWith("sm_on")) v = true;
    else if (o.startsWith("sm_off")) v = false;
  }
  return v;
}

/** Null when the kernel has registered no Intel unit. */
export function judgeScalableMode(units: readonly KernelUnit[], cmd: Pick<CmdlineAnalysis, "intelIommu">, config: KernelConfig | null): ScalableModeJudgement | null {
  const intel = units.filter((u) => u.kind === "intel");
  if (intel.length === 0) return null;
  const smts = intel.map((u) => u.capabilities.scalableMode);
  if (smts.every((s) => s === false)) return { mode: "legacy", inferred: true, why: "no unit reports scalable-mode translation (ECAP.SMTS)" };
  if (smts.some((s) => s === null)) return { mode: "unknown", inferred: true, why: "the units' ECAP registers are not readable in sysfs" };
  const some = smts.some((s) => s === false) ? "units with ECAP.SMTS; the others run in legacy mode" : "ECAP.SMTS";
  const opt = smOption(cmd.intelIommu);
  if (opt !== null) {
    return opt
      ? { mode: "scalable", inferred: true, why: `intel_iommu=sm_on on the command line, and ${some}` }
      : { mode: "legacy", inferred: true, why: "intel_iommu=sm_off on the command line" };
  }
  const v = config?.values.CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON;
  if (config === null || v === undefined) {
    const what = config === null ? "the kernel's build config is not readable" : `${config.source} does not set CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON`;
    return { mode: "unknown", inferred: true, why: `${what} and the command line has neither sm_on nor sm_off, so the build default decides` };
  }
  return v === "y"
    ? { mode: "scalable", inferred: true, why: `CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON=y (${config.source}), no sm_off on the command line, and ${some}` }
    : { mode: "legacy", inferred: true, why: `CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON is not set (${config.source}) and the command line has no sm_on` };
}
