/** `iommu status`: can this host give a PCI device to a VM right now, and if not, why not. */
import { atomicWriteFile } from "../../core/fs.js";
import { renderPrometheus } from "../../host/prometheus.js";
import { gatherStatus, statusExitCode } from "../../host/status.js";
import { renderStatusText } from "../../host/status-text.js";
import { VIEW_OPTIONS, VIEW_OPTIONS_HELP, requireSysfs, viewFromArgs } from "../../host/views/open.js";
import { flag, str, toJson, usageError, type Command } from "../command.js";

export const statusCommand: Command = {
  name: "status",
  summary: "is this host ready for PCI pass-through? firmware, CPU, kernel IOMMU, interrupt remapping, verdict",
  help: `Usage: iommu status [--json | --prometheus [-o FILE]] [-v] [--root DIR | --snapshot FILE]

Examines the firmware's IOMMU table (DMAR or IVRS), the CPU, the running kernel's IOMMU units and groups,
interrupt remapping, the kernel command line and the kernel's build defaults, and gives a verdict:
READY when a PCI device can be given to a VM with VFIO right now (the IOMMU is active, and interrupts are
remapped or vfio_iommu_type1.allow_unsafe_interrupts is set). Every reason it is not is listed as a problem
with a hint. Mistakes that do not block (amd_iommu=on, which is not a valid option) are warnings.
"DMAR: IOMMU enabled" in dmesg is not proof: it only means intel_iommu=on was parsed.
Reading the firmware table and PCI extended config space (ACS) needs root; without it the report says so.

Options:
  -j, --json          machine-readable report
      --prometheus    node_exporter textfile-collector metrics (iommu_ready, iommu_active, …) instead
  -o, --output FILE   with --prometheus: write FILE atomically (e.g. /var/lib/node_exporter/iommu.prom)
  -v, --verbose       every decoded CAP/ECAP (Intel) or cap/EFR (AMD) field of every unit
${VIEW_OPTIONS_HELP}

Exit status: 0 ready, 1 not ready, 2 error. With --prometheus: 0 once the metrics are written.

Examples:
  sudo iommu status
  iommu status --json | jq '.problems[] | select(.severity == "error")'
  sudo iommu status --prometheus -o /var/lib/node_exporter/textfile_collector/iommu.prom
  iommu status --snapshot host.json
`,
  options: {
    ...VIEW_OPTIONS,
    json: { type: "boolean", short: "j" },
    prometheus: { type: "boolean" },
    output: { type: "string", short: "o" },
    verbose: { type: "boolean", short: "v" },
  },
  positionals: [0, 0],
  run(args, ctx) {
    const prometheus = flag(args, "prometheus");
    const output = str(args, "output");
    if (prometheus && flag(args, "json")) throw usageError("--json and --prometheus cannot be used together", "status");
    if (output !== undefined && !prometheus) throw usageError("--output is for --prometheus metrics", "status");
    const view = viewFromArgs(args);
    requireSysfs(view);
    const report = gatherStatus(view);
    if (prometheus) {
      const text = renderPrometheus(report);
      if (output === undefined) ctx.out(text);
      else atomicWriteFile(output, text);
      return 0;
    }
    if (flag(args, "json")) ctx.out(toJson(report));
    else ctx.out(renderStatusText(report, { verbose: flag(args, "verbose") }));
    return statusExitCode(report);
  },
};
