/** `iommu check BDF`: is this PCI device ready to be passed through to a VM, and what to do next. */
import { JSON_OPTION, flag, toJson, type Command } from "../command.js";
import { checkDevice, checkExitCode, renderCheck } from "../../host/check.js";
import { VIEW_OPTIONS, VIEW_OPTIONS_HELP, viewFromArgs } from "../../host/views/open.js";

export const checkCommand: Command = {
  name: "check",
  summary: "check whether a PCI device can be passed through to a VM, and say what to do next",
  help: `Usage: iommu check BDF [--json]

Checks one device for VFIO pass-through: the IOMMU is active; interrupt remapping is on (VFIO refuses to
attach devices without it unless allow_unsafe_interrupts is set); its IOMMU group is viable (every other
endpoint on vfio-pci, pci-stub or no driver; bridges may stay on pcieport); the host does not use it or a
group member (boot display, mounted storage, swap, default route); it can be reset; no firmware 'direct'
reserved region (RMRR) blocks it. Ends with the exact commands to run next.

Options:
  -j, --json        {device, group, checks: [{code, ok, severity, message, hint}], ready, nextSteps}
${VIEW_OPTIONS_HELP}

Exit status: 0 ready, 1 not ready, 2 error (bad address, device not found, unreadable sysfs).

Examples:
  iommu check 0000:01:00.0
  iommu check 03:00.0 --json | jq '.checks[] | select(.ok | not)'
`,
  options: { ...JSON_OPTION, ...VIEW_OPTIONS },
  positionals: [1, 1],
  run(args, ctx) {
    const report = checkDevice(viewFromArgs(args), args.positionals[0] ?? "");
    ctx.out(flag(args, "json") ? toJson(report) : renderCheck(report));
    return checkExitCode(report);
  },
};
