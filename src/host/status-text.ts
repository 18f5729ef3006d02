/** The `iommu status` report as text: verdict first, then platform, kernel and the problems with their hints. */
import type { Problem } from "./problem.js";
import type { StatusReport, StatusUnit } from "./status.js";

const yn = (v: boolean | null | undefined): string => (v === true ? "yes" : v === false ? "no" : "?");

function row(label: string, value: string): string {
  return `  ${label.padEnd(22)}${value}`;
}

function cpuLine(r: StatusReport): string {
  const c = r.platform.cpu;
  if (!c.known) return "unknown (/proc/cpuinfo not readable)";
  const parts = [
    c.model ?? c.vendorId ?? "unknown CPU",
    c.virtualization === null ? "no vmx/svm" : c.virtualization,
    c.hypervisor ? "virtual machine" : "bare metal",
  ];
  return parts.join(", ");
}

function firmwareLine(r: StatusReport): string {
  const f = r.platform.firmware;
  if (f.table === null) return "no DMAR or IVRS table (no IOMMU reported by the firmware)";
  if (!f.decoded) return `${f.table} present, not decoded (see problems)`;
  const head = `${f.table} rev ${f.revision ?? "?"} (${[f.oemId, f.oemTableId].filter(Boolean).join(" ")}), ${r.platform.units.filter((u) => u.inFirmware).length} unit(s)`;
  if (f.table === "DMAR") {
    return `${head}, address width ${f.addressWidth ?? "?"} bits, interrupt remapping ${yn(f.interruptRemapping)}, ` +
      `x2APIC opt-out ${yn(f.x2apicOptOut)}, DMA-control opt-in ${yn(f.dmaControlOptIn)}`;
  }
  return `${head}, address width ${f.addressWidth ?? "?"} bits, EFR images ${yn(f.efrSupported)}, pre-boot DMA protection ${yn(f.preBootDmaProtection)}`;
}

function unitLine(u: StatusUnit): string {
  const where = [u.name ?? "(not registered by the kernel)", u.registerBase ?? "", u.deviceId ? `at ${u.deviceId}` : ""].filter(Boolean).join("  ");
  const c = u.capabilities;
  const caps: string[] = [];
  if (u.kind === "intel" && u.inKernel) {
    caps.push(`IR ${yn(c.interruptRemapping)}`, `x2APIC ${yn(c.x2apic)}`, `PT ${yn(c.passThrough)}`, `QI ${yn(c.queuedInvalidation)}`);
    if (c.addressWidths !== null) caps.push(`SAGAW ${c.addressWidths.join("/") || "none"}-bit`);
    if (c.mgaw !== null) caps.push(`MGAW ${c.mgaw}`);
    if (c.scalableMode) caps.push("scalable-mode capable (SMTS)");
    if (c.cachingMode) caps.push("caching mode (virtual IOMMU)");
  } else if (u.kind === "amd") {
    if (u.efr !== null) caps.push(`EFR ${u.efr}`, `x2APIC ${yn(c.x2apic)}`, `guest vAPIC ${yn(c.postedInterrupts)}`);
    if (c.cachingMode) caps.push("NpCache (virtual IOMMU)");
  }
  return `${where}${caps.length > 0 ? "  " + caps.join(", ") : ""}`;
}

function problemLines(p: Problem): string[] {
  return [`  ${p.severity.padEnd(8)} ${p.code}: ${p.message}`, `           hint: ${p.hint}`];
}

export interface StatusTextOptions {
  /** Every decoded CAP/ECAP (or cap/EFR) field of every unit. */
  verbose?: boolean;
}

export function renderStatusText(r: StatusReport, options: StatusTextOptions = {}): string {
  const k = r.kernel;
  const blocking = r.problems.filter((p) => p.severity === "error").length;
  const out: string[] = [];
  out.push(`iommu status: ${r.source}${k.release ? `, kernel ${k.release}` : ""}`);
  out.push("");
  out.push(r.ready
    ? "Verdict: READY: PCI devices can be given to VMs with VFIO"
    : `Verdict: NOT READY: ${blocking} problem${blocking === 1 ? "" : "s"} block${blocking === 1 ? "s" : ""} device assignment`);
  out.push("");
  out.push("Platform");
  const cv = r.platform.cpu.vendor;
  out.push(row("CPU", `${cv === "unknown" ? "unknown vendor" : cv === "intel" ? "Intel" : "AMD"}: ${cpuLine(r)}`));
  const found = r.platform.firmwareTable !== null || r.kernel.unitCount > 0;
  out.push(row("IOMMU", !found ? "none found" : r.platform.vendor === "intel" ? "Intel VT-d" : r.platform.vendor === "amd" ? "AMD-Vi" : "unknown kind"));
  out.push(row("Firmware", firmwareLine(r)));
  r.platform.units.forEach((u, i) => out.push(row(i === 0 ? "IOMMU units" : "", unitLine(u))));
  if (options.verbose) {
    for (const u of r.platform.units) {
      for (const [reg, fields] of [[u.kind === "amd" ? "cap" : "CAP", u.fields.cap], [u.kind === "amd" ? "EFR" : "ECAP", u.fields.ecap]] as const) {
        if (fields.length === 0) continue;
        out.push(`    ${u.name ?? "?"} ${reg} ${reg === "CAP" || reg === "cap" ? u.cap ?? "" : (u.ecap ?? u.efr ?? "")}`);
        for (const f of fields) out.push(`      ${f.name.padEnd(9)} ${String(f.value).padStart(4)}  ${f.meaning}`);
      }
    }
  }
  out.push("");
  out.push("Kernel");
  out.push(row("IOMMU", k.iommuActive ? `active: ${k.unitCount} unit(s), ${k.groupCount} group(s)` : `not active (${k.unitCount} unit(s), ${k.groupCount} group(s))`));
  if (k.defaultDomain !== null) {
    const mix = Object.entries(k.domainTypes).map(([t, n]) => `${n} ${t}`).join(", ");
    out.push(row("Default domain", `${k.defaultDomain} (${mix})`));
  }
  if (k.dmaPolicy !== null) out.push(row("DMA policy", k.dmaPolicy));
  if (k.scalableMode !== null) out.push(row("VT-d mode", `${k.scalableMode.mode} (inferred: ${k.scalableMode.why})`));
  out.push(row("Interrupt remapping", `${k.interruptRemapping}${k.interruptChips.length > 0 ? ` (${k.interruptChips.join(", ")} in /proc/interrupts)` : ""}`));
  out.push(row("Unsafe interrupts", k.allowUnsafeInterrupts === null ? "vfio_iommu_type1 not loaded" : k.allowUnsafeInterrupts ? "allowed (allow_unsafe_interrupts=Y)" : "refused (allow_unsafe_interrupts=N)"));
  const v = k.vfio;
  const backends = [
    v.container === null ? "VFIO container provider unknown" : `container /dev/vfio/vfio from ${v.container}`,
    v.iommufd ? `iommufd (/dev/iommu${v.deviceCdev ? ", /dev/vfio/devices" : ""})` : "no /dev/iommu",
  ];
  out.push(row("VFIO backends", backends.join("; ")));
  const c = k.cmdline;
  const relevant = [
    c.intelIommu && `intel_iommu=${c.intelIommu.join(",")}`,
    c.amdIommu && `amd_iommu=${c.amdIommu.join(",")}`,
    c.iommu && `iommu=${c.iommu.join(",")}`,
    c.iommuStrict !== null && `strict=${c.iommuStrict ? "1" : "0"}`,
    c.intremap && `intremap=${c.intremap.join(",")}`,
    c.pcieAcsOverride !== null && `pcie_acs_override=${c.pcieAcsOverride}`,
    c.vfioPciIds.length > 0 && `vfio-pci.ids=${c.vfioPciIds.join(",")}`,
  ].filter((s): s is string => typeof s === "string");
  out.push(row("Command line", relevant.length > 0 ? relevant.join(" ") : "no IOMMU parameters"));
  if (k.config !== null) {
    const v = k.config.values;
    const defaults = [
      v.CONFIG_INTEL_IOMMU_DEFAULT_ON !== undefined && `INTEL_IOMMU_DEFAULT_ON=${v.CONFIG_INTEL_IOMMU_DEFAULT_ON}`,
      v.CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON !== undefined && `INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON=${v.CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON}`,
      v.CONFIG_IOMMU_DEFAULT_PASSTHROUGH === "y" && "default passthrough",
      v.CONFIG_IOMMU_DEFAULT_DMA_STRICT === "y" && "default strict",
      v.CONFIG_IOMMU_DEFAULT_DMA_LAZY === "y" && "default lazy",
      v.CONFIG_IRQ_REMAP !== undefined && `IRQ_REMAP=${v.CONFIG_IRQ_REMAP}`,
    ].filter((s): s is string => typeof s === "string");
    out.push(row("Kernel config", `${defaults.join(", ") || "no IOMMU options"} (${k.config.source})`));
  }
  out.push("");
  if (r.problems.length === 0) {
    out.push("No problems found.");
  } else {
    out.push("Problems");
    for (const p of r.problems) out.push(...problemLines(p));
  }
  return out.join("\n") + "\n";
}
