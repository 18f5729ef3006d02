/** The CPU as /proc/cpuinfo shows it: vendor, model, hardware virtualization (vmx/svm) and the hypervisor flag. */
import type { CpuVendor } from "./cmdline.js";
import type { SysfsView } from "./sysfs-view.js";

export interface CpuInfo {
  vendor: CpuVendor;
  /** vendor_id as printed: "GenuineIntel", "AuthenticAMD", "HygonGenuine"; null when unknown. */
  vendorId: string | null;
  model: string | null;
  /** "vmx" (Intel VT-x), "svm" (AMD-V) or null when the CPU shows neither. */
  virtualization: "vmx" | "svm" | null;
  /** The "hypervisor" flag: this system is itself a virtual machine. */
  hypervisor: boolean;
  /** False when /proc/cpuinfo could not be read. */
  known: boolean;
}

const VENDORS: Record<string, CpuVendor> = {
  GenuineIntel: "intel",
  AuthenticAMD: "amd",
  HygonGenuine: "amd", // Hygon Dhyana: an AMD Zen design with AMD-Vi
};

/** Parses the first processor block of /proc/cpuinfo (x86 layout: "key\t: value"). */
export function parseCpuinfo(text: string | null): CpuInfo {
  if (text === null) return { vendor: "unknown", vendorId: null, model: null, virtualization: null, hypervisor: false, known: false };
  const first = text.split(/\n\s*\n/)[0] ?? "";
  const fields = new Map<string, string>();
  for (const line of first.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) fields.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const vendorId = fields.get("vendor_id") ?? null;
  const flags = new Set((fields.get("flags") ?? "").split(/\s+/));
  return {
    vendor: vendorId === null ? "unknown" : (VENDORS[vendorId] ?? "unknown"),
    vendorId,
    model: fields.get("model name") ?? null,
    virtualization: flags.has("vmx") ? "vmx" : flags.has("svm") ? "svm" : null,
    hypervisor: flags.has("hypervisor"),
    known: true,
  };
}

export function readCpu(view: SysfsView): CpuInfo {
  return parseCpuinfo(view.readText("/proc/cpuinfo"));
}
