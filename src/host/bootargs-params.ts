/**
 * Kernel command-line parameters for IOMMU pass-through: which to add for this machine, which to remove, and a
 * text editor that changes a parameter list in place while keeping everything else (spacing, order, unrelated
 * parameters) exactly as it was.
 *
 * Facts the proposal rests on (Documentation/admin-guide/kernel-parameters.txt):
 * - intel_iommu= takes a comma-separated list ("on", "off", "igfx_off", "sm_on", …). Without "on" the Intel
 *   driver stays off unless the kernel was built with CONFIG_INTEL_IOMMU_DEFAULT_ON=y.
 * - amd_iommu= has no "on" value: the AMD driver is enabled by default and a 6.1 kernel prints
 *   "AMD-Vi: Unknown option - 'on'". "off" disables it.
 * - iommu=pt puts host-owned devices in an identity (pass-through) domain; optional, often chosen for speed.
 *   iommu=off turns the IOMMU off.
 * - intremap=off and the older nointremap disable interrupt remapping; VFIO then refuses to attach devices
 *   unless vfio_iommu_type1.allow_unsafe_interrupts=1.
 */
import { tokenizeCmdline, type CmdlineToken } from "../core/kernel-cmdline.js";

export type IommuVendor = "intel" | "amd" | "unknown";

/** One whitespace-separated parameter of a command line, with where it sits in the text (init's included). */
export type ArgToken = CmdlineToken;

/** Every parameter of a command line as written, for editing it in place. */
export function tokenizeArgs(text: string): ArgToken[] {
  return tokenizeCmdline(text);
}

export function splitArgs(text: string): string[] {
  return tokenizeArgs(text).map((t) => t.text);
}

function keyValue(arg: string): { key: string; value: string | null } {
  const eq = arg.indexOf("=");
  return eq < 0 ? { key: arg, value: null } : { key: arg.slice(0, eq), value: arg.slice(eq + 1) };
}

/** Why a parameter must go, or null when it is harmless. */
export function harmfulReason(arg: string): string | null {
  const { key, value } = keyValue(arg);
  const list = (value ?? "").split(",");
  if (key === "intel_iommu" && list.includes("off")) return "disables the Intel IOMMU";
  if (key === "amd_iommu" && list.includes("off")) return "disables the AMD IOMMU";
  if (key === "amd_iommu" && list.includes("on")) {
    return "is not a valid value (the AMD IOMMU is on by default; the kernel rejects amd_iommu=on)";
  }
  if (key === "iommu" && list.includes("off")) return "turns the IOMMU off";
  if (key === "intremap" && list.includes("off")) return "disables interrupt remapping, which VFIO requires";
  if (key === "nointremap" && value === null) return "disables interrupt remapping, which VFIO requires";
  return null;
}

export interface ProposalContext {
  vendor: IommuVendor;
  /** CONFIG_INTEL_IOMMU_DEFAULT_ON=y in the kernel's config; null when the config was not found. */
  intelDefaultOn: boolean | null;
  /** Also propose iommu=pt. */
  passthrough: boolean;
}

export interface ParamChange {
  param: string;
  action: "add" | "remove" | "keep";
  reason: string;
}

export interface ParamProposal {
  add: string[];
  remove: string[];
  changes: ParamChange[];
  notes: string[];
}

/** Decides what to add and remove, given the parameters a boot configuration currently passes. */
export function proposeParams(current: readonly string[], ctx: ProposalContext): ParamProposal {
  const changes: ParamChange[] = [];
  const notes: string[] = [];
  const remove: string[] = [];
  for (const arg of current) {
    const why = harmfulReason(arg);
    if (why !== null && !remove.includes(arg)) {
      remove.push(arg);
      changes.push({ param: arg, action: "remove", reason: why });
    }
  }
  const kept = current.filter((a) => !remove.includes(a));
  const has = (key: string, val: string) =>
    kept.some((a) => {
      const kv = keyValue(a);
      return kv.key === key && (kv.value ?? "").split(",").includes(val);
    });
  const add: string[] = [];
  if (ctx.vendor === "intel") {
    if (has("intel_iommu", "on")) {
      changes.push({ param: "intel_iommu=on", action: "keep", reason: "already present" });
    } else if (ctx.intelDefaultOn === true) {
      notes.push("intel_iommu=on is not needed: this kernel is built with CONFIG_INTEL_IOMMU_DEFAULT_ON=y");
    } else {
      add.push("intel_iommu=on");
      changes.push({
        param: "intel_iommu=on",
        action: "add",
        reason:
          ctx.intelDefaultOn === false
            ? "this kernel leaves the Intel IOMMU off by default (CONFIG_INTEL_IOMMU_DEFAULT_ON is not set)"
            : "enables the Intel IOMMU (the kernel config was not found, so the default is unknown)",
      });
    }
  } else if (ctx.vendor === "amd") {
    notes.push("nothing is needed to enable the AMD IOMMU: the kernel turns it on by default (never amd_iommu=on)");
  } else {
    notes.push("no Intel (DMAR) or AMD (IVRS) IOMMU was found; enable VT-d / AMD-Vi (IOMMU) in the firmware setup");
  }
  if (ctx.passthrough) {
    if (has("iommu", "pt")) changes.push({ param: "iommu=pt", action: "keep", reason: "already present" });
    else {
      add.push("iommu=pt");
      changes.push({ param: "iommu=pt", action: "add", reason: "identity-maps host-owned devices (optional, requested)" });
    }
  } else if (!has("iommu", "pt") && ctx.vendor !== "unknown") {
    notes.push("optional: iommu=pt (pass-through for host-owned devices) — add it with --pt");
  }
  return { add, remove, changes, notes };
}

/**
 * Edits a parameter list in place: drops every parameter in `remove` (with the whitespace before it, or after it
 * when it is first) and appends `add`, separated by one space. Everything else is left byte-for-byte.
 */
export function editArgsText(text: string, remove: readonly string[], add: readonly string[]): string {
  let out = text;
  const tokens = tokenizeArgs(text).filter((t) => remove.includes(t.text));
  for (const t of tokens.reverse()) {
    let s = t.start;
    let e = t.end;
    if (s > 0) {
      while (s > 0 && /[ \t]/.test(out[s - 1] ?? "")) s--;
    } else {
      while (e < out.length && /[ \t]/.test(out[e] ?? "")) e++;
    }
    out = out.slice(0, s) + out.slice(e);
  }
  if (add.length > 0) {
    const trail = /\s*$/.exec(out)?.[0] ?? "";
    const body = out.slice(0, out.length - trail.length);
    out = (body.length > 0 ? body + " " : "") + add.join(" ") + trail;
  }
  return out;
}
