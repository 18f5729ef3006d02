/**
 * `iommu status --prometheus`: the verdict as Prometheus text exposition format (version 0.0.4) for
 * node_exporter's textfile collector. Every metric is a gauge with HELP and TYPE lines; label values are
 * escaped as the format requires (backslash, double quote, newline).
 */
import type { Severity } from "./problem.js";
import type { StatusReport } from "./status.js";

type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

class Exposition {
  private readonly lines: string[] = [];

  gauge(name: string, help: string, samples: [Labels, number][]): void {
    if (samples.length === 0) return;
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",");
      this.lines.push(`${name}${l ? `{${l}}` : ""} ${value}`);
    }
  }

  toString(): string {
    return this.lines.join("\n") + "\n";
  }
}

const b = (v: boolean): number => (v ? 1 : 0);

export function renderPrometheus(r: StatusReport): string {
  const e = new Exposition();
  const k = r.kernel;
  e.gauge("iommu_ready", "1 when a PCI device can be given to a VM with VFIO now (IOMMU active, interrupts remapped or allowed unsafe).", [[{}, b(r.ready)]]);
  e.gauge("iommu_active", "1 when the kernel registered IOMMU units and made IOMMU groups.", [[{}, b(k.iommuActive)]]);
  e.gauge("iommu_interrupt_remapping", "Interrupt remapping state: 1 for the current state, 0 for the others.",
    (["enabled", "disabled", "unknown"] as const).map((s) => [{ state: s }, b(k.interruptRemapping === s)]));
  if (k.allowUnsafeInterrupts !== null) {
    e.gauge("iommu_allow_unsafe_interrupts", "1 when vfio_iommu_type1 accepts devices without interrupt remapping.", [[{}, b(k.allowUnsafeInterrupts)]]);
  }
  e.gauge("iommu_firmware_table", "1 for the ACPI table the firmware publishes (DMAR for Intel VT-d, IVRS for AMD-Vi).",
    (["DMAR", "IVRS"] as const).map((t) => [{ table: t }, b(r.platform.firmwareTable === t)]));
  e.gauge("iommu_units", "IOMMU units the kernel registered in /sys/class/iommu.", [[{}, k.unitCount]]);
  e.gauge("iommu_groups", "IOMMU groups in /sys/kernel/iommu_groups.", [[{}, k.groupCount]]);
  e.gauge("iommu_groups_by_domain_type", "IOMMU groups by default domain type (identity, DMA, DMA-FQ, ...).",
    Object.entries(k.domainTypes).sort(([a], [b2]) => a.localeCompare(b2)).map(([t, n]) => [{ type: t }, n]));
  const severities: Severity[] = ["error", "warning", "info"];
  e.gauge("iommu_problems", "Problems found, by severity (error blocks device assignment).",
    severities.map((s) => [{ severity: s }, r.problems.filter((p) => p.severity === s).length]));
  const byCode = new Map<string, { code: string; severity: Severity; n: number }>();
  for (const p of r.problems) {
    const key = `${p.code}\0${p.severity}`;
    const cur = byCode.get(key);
    if (cur) cur.n++;
    else byCode.set(key, { code: p.code, severity: p.severity, n: 1 });
  }
  e.gauge("iommu_problem", "Problems found, by code; see 'iommu status' for messages and hints.",
    [...byCode.values()].map((p) => [{ code: p.code, severity: p.severity }, p.n]));
  e.gauge("iommu_info", "Facts about the IOMMU setup, as labels; the value is always 1.", [[{
    vendor: r.platform.vendor,
    firmware_table: r.platform.firmwareTable ?? "none",
    default_domain: k.defaultDomain ?? "none",
    dma_policy: k.dmaPolicy ?? "none",
    kernel: k.release ?? "unknown",
  }, 1]]);
  return e.toString();
}
