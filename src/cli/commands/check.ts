/** `iommu check BDF`: is this PCI device ready to be passed through to a VM, and what to do next. */
import { JSON_OPTION, flag, str, toJson, usageError, type Command } from "../command.js";
import { parseSize } from "../../host/passthrough/memlock.js";
import { checkDevice, checkExitCode, renderCheck } from "../../host/check.js";
import { VIEW_OPTIONS, VIEW_OPTIONS_HELP, viewFromArgs } from "../../host/views/open.js";

export const checkCommand: Command = {
  name: "check",
  summary: "check whether a PCI device can be passed through to a VM, and say what to do next",
  help: `Usage: iommu check BDF [--json]

Checks one device for VFIO pass-through: the IOMMU is active; interrupt remapping is on (VFIO refuses to
attach devices without it unless allow_unsafe_interrupts is set); its IOMMU group is viable (every other
endpoint on vfio-pci, pci-stub or no driver; bridges may stay on pcieport); the host does not use it or a
group member (boot display, mounted storage, swap, default route); no firmware 'direct' reserved region
(RMRR) blocks it. Then what breaks pass-through in practice: the device answers (not stuck in D3cold); it can
be reset (no FLR, a bus reset shared with other devices, the AMD reset bug and vendor-reset); no boot
framebuffer holds its BAR (/proc/iomem); vfio-pci's ids (command line, modprobe.d) really won it at boot;
driver_override does not name another driver; a GPU's other functions (HDMI audio, USB-C) go with it; the
locked-memory limit covers the guest's RAM. Ends with the exact commands to run next.

Options:
      --guest-memory SIZE  the guest's RAM (16G, 8192M; MiB without a unit), checked against RLIMIT_MEMLOCK
  -j, --json        {device, group, checks: [{code, ok, severity, message, hint}], ready, nextSteps}
${VIEW_OPTIONS_HELP}

Exit status: 0 ready, 1 not ready, 2 error (bad address, device not found, unreadable sysfs).

Examples:
  iommu check 0000:01:00.0
  iommu check 03:00.0 --json | jq '.checks[] | select(.ok | not)'
  iommu check 01:00.0 --guest-memory 16G
`,
  options: { ...JSON_OPTION, ...VIEW_OPTIONS, "guest-memory": { type: "string" } },
  positionals: [1, 1],
  run(args, ctx) {
    const size = str(args, "guest-memory");
    const guestMemory = size === undefined ? null : parseSize(size);
    if (guestMemory === null && size !== undefined) throw usageError(`--guest-memory ${size}: not a size (give 16G, 8192M or 4096)`, "check");
    const report = checkDevice(viewFromArgs(args), args.positionals[0] ?? "", { guestMemory });
    ctx.out(flag(args, "json") ? toJson(report) : renderCheck(report));
    return checkExitCode(report);
  },
};
