/**
 * `iommu bootargs`: what the boot configuration should pass to the kernel for IOMMU pass-through on this
 * machine, and the exact change (diff or command) per boot loader. This module only reads (through a SysfsView);
 * bootargs-apply.ts performs the change.
 */
import type { SysfsView } from "./sysfs-view.js";
import { proposeParams, type IommuVendor, type ParamProposal } from "./bootargs-params.js";
import { unifiedDiff } from "./bootargs-diff.js";
import { detectBootloader } from "./bootloaders/index.js";
import type { BootloaderPlan } from "./bootloaders/types.js";
import { readKernelConfig, readRelease } from "./status-kernel.js";

export interface KernelConfigInfo {
  release: string | null;
  /** File the config was read from, or null. */
  configPath: string | null;
  intelDefaultOn: boolean | null;
}

export interface BootargsReport {
  bootloader: { id: string; name: string; evidence: string[]; argsSource: string };
  vendor: IommuVendor;
  vendorEvidence: string;
  kernel: KernelConfigInfo;
  currentArgs: string[];
  proposal: ParamProposal;
  files: Array<{ path: string; diff: string }>;
  commands: string[][];
  undoCommands: string[][];
  regenerate: string[] | null;
  notes: string[];
  /** True when applying would change something. */
  changed: boolean;
}

/**
 * The IOMMU vendor from firmware tables first (DMAR = Intel VT-d, IVRS = AMD-Vi; present even when the kernel
 * has the IOMMU switched off), then from the running IOMMU units, then from the CPU vendor.
 */
export function detectIommuVendor(view: SysfsView): { vendor: IommuVendor; evidence: string } {
  if (view.exists("/sys/firmware/acpi/tables/DMAR")) return { vendor: "intel", evidence: "ACPI DMAR table" };
  if (view.exists("/sys/firmware/acpi/tables/IVRS")) return { vendor: "amd", evidence: "ACPI IVRS table" };
  const units = view.list("/sys/class/iommu") ?? [];
  if (units.some((u) => u.startsWith("dmar"))) return { vendor: "intel", evidence: "/sys/class/iommu/dmar*" };
  if (units.some((u) => u.startsWith("ivhd"))) return { vendor: "amd", evidence: "/sys/class/iommu/ivhd*" };
  const cpu = view.readText("/proc/cpuinfo") ?? "";
  if (/^vendor_id\s*:\s*GenuineIntel/m.test(cpu)) return { vendor: "intel", evidence: "CPU vendor GenuineIntel (no DMAR table)" };
  if (/^vendor_id\s*:\s*AuthenticAMD/m.test(cpu)) return { vendor: "amd", evidence: "CPU vendor AuthenticAMD (no IVRS table)" };
  return { vendor: "unknown", evidence: "no DMAR or IVRS table, no IOMMU units, CPU vendor unknown" };
}

/**
 * The running kernel's build config (the status module's reader: /boot/config-RELEASE, else /proc/config.gz).
 * A mounted image has no /proc: then the newest /boot/config-* stands for the kernel it will boot.
 */
export function kernelConfigInfo(view: SysfsView): KernelConfigInfo {
  let release = readRelease(view);
  let config = readKernelConfig(view, release);
  if (config === null && release === null) {
    const configs = (view.list("/boot") ?? []).filter((n) => n.startsWith("config-"));
    configs.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
    const newest = configs[configs.length - 1];
    if (newest !== undefined) {
      release = newest.slice("config-".length);
      config = readKernelConfig(view, release);
    }
  }
  return {
    release,
    configPath: config?.source ?? null,
    intelDefaultOn: config === null ? null : config.values.CONFIG_INTEL_IOMMU_DEFAULT_ON === "y",
  };
}

export interface BootargsOptions {
  /** Also propose iommu=pt. */
  passthrough?: boolean;
  /** Skip detection and use this boot loader. */
  bootloader?: string;
}

/** The report plus the edits themselves (full before/after text), which bootargs-apply needs. */
export function planBootargsEdits(view: SysfsView, opts: BootargsOptions = {}): { report: BootargsReport; plan: BootloaderPlan } {
  const detected = detectBootloader(view, opts.bootloader);
  const vendor = detectIommuVendor(view);
  const kernel = kernelConfigInfo(view);
  const current = detected.loader.currentArgs(view);
  const proposal = proposeParams(current.args, {
    vendor: vendor.vendor,
    intelDefaultOn: kernel.intelDefaultOn,
    passthrough: opts.passthrough === true,
  });
  const plan = detected.loader.plan(view, proposal, detected.evidence);
  const files = plan.fileEdits.map((e) => ({ path: e.path, diff: unifiedDiff(e.path, e.before, e.after) }));
  const report: BootargsReport = {
    bootloader: { id: plan.id, name: plan.name, evidence: plan.evidence, argsSource: plan.argsSource },
    vendor: vendor.vendor,
    vendorEvidence: vendor.evidence,
    kernel,
    currentArgs: plan.currentArgs,
    proposal,
    files,
    commands: plan.commands,
    undoCommands: plan.undoCommands,
    regenerate: plan.fileEdits.length > 0 ? plan.regenerate : null,
    notes: plan.notes,
    changed: plan.fileEdits.length > 0 || plan.commands.length > 0,
  };
  return { report, plan };
}

export function planBootargs(view: SysfsView, opts: BootargsOptions = {}): BootargsReport {
  return planBootargsEdits(view, opts).report;
}

/** Quotes one argument for display as a shell command. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export const commandLine = (argv: readonly string[]) => argv.map(shellQuote).join(" ");

export function renderBootargs(r: BootargsReport): string {
  let out = `Boot loader: ${r.bootloader.name} — found ${r.bootloader.evidence.join(", ")}\n`;
  out += `IOMMU: ${r.vendor === "unknown" ? "unknown vendor" : r.vendor === "intel" ? "Intel VT-d" : "AMD-Vi"} (${r.vendorEvidence})\n`;
  if (r.vendor === "intel") {
    const cfg = r.kernel.configPath ?? "kernel config not found";
    const state = r.kernel.intelDefaultOn === null ? "" : r.kernel.intelDefaultOn ? ": CONFIG_INTEL_IOMMU_DEFAULT_ON=y" : ": Intel IOMMU off by default";
    out += `Kernel: ${r.kernel.release ?? "release unknown"} (${cfg}${state})\n`;
  }
  out += `Current parameters (${r.bootloader.argsSource}): ${r.currentArgs.join(" ") || "(none)"}\n\n`;
  for (const c of r.proposal.changes) {
    const sign = c.action === "add" ? "+" : c.action === "remove" ? "-" : "=";
    out += `  ${sign} ${c.param}  ${c.reason}\n`;
  }
  for (const n of [...r.proposal.notes, ...r.notes]) out += `  note: ${n}\n`;
  if (!r.changed) return out + "\nNothing to change.\n";
  out += "\n";
  for (const f of r.files) out += f.diff;
  if (r.commands.length > 0) {
    out += `${r.files.length > 0 ? "\n" : ""}Commands:\n`;
    for (const c of r.commands) out += `  ${commandLine(c)}\n`;
  }
  if (r.regenerate) out += `\nThen regenerate the boot menu: ${commandLine(r.regenerate)}\n`;
  return out;
}
