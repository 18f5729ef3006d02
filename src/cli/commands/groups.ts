/** `iommu groups`: IOMMU groups and their devices, like ls-iommu, with --json. */
import { gatherGroups, parseClassFilter, renderGroupsText } from "../../host/groups.js";
import { loadPciIds } from "../../host/pciids.js";
import { VIEW_OPTIONS, VIEW_OPTIONS_HELP, requireSysfs, viewFromArgs } from "../../host/views/open.js";
import { flag, str, toJson, type Command } from "../command.js";

export const groupsCommand: Command = {
  name: "groups",
  summary: "list IOMMU groups and their devices (like ls-iommu), with drivers, reset methods and ACS",
  help: `Usage: iommu groups [-k] [--class CLASS]... [--json] [--root DIR | --snapshot FILE]

Lists every IOMMU group with its PCI devices, one line per device, groups in numeric order:
  IOMMU Group 12: 0000:01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA106 [10de:2504] (rev a1)  reset=flr,bus
A device can only be given to a VM together with every other device in its group (bridges aside).
Tags at the end of a line: bridge, acs=isolating|not-isolating|none|unknown (ACS needs root to read),
reset=METHODS (what the kernel will use to reset the device; none means it cannot), boot-vga, override=DRIVER,
and pass-through findings (--json has them all, with messages and hints): d3cold, not-responding,
bus-reset-shared, amd-reset-bug, vendor-reset-unselected, bootfb-in-bar, vfio-ids-lost, vfio-ids-unclaimed,
companion-on-host. 'iommu check BDF' explains each.
Device names come from pci.ids (Debian package 'pci.ids'); without it, ids are shown.

Options:
  -k, --drivers         show the driver bound to each device
      --class CLASS     only groups with a device of this class: hex (03, 0300, 030000) or a name
                        (network, gpu, display, vga, storage, nvme, audio, usb, bridge); repeatable
      --pci-ids FILE    read device names from this pci.ids file
  -j, --json            machine-readable output
${VIEW_OPTIONS_HELP}

Exit status: 0 when the host has IOMMU groups, 1 when it has none (the IOMMU is not active), 2 on error.

Examples:
  iommu groups -k
  iommu groups --class gpu --class audio
  iommu groups --json | jq '.groups[] | select(.devices | length > 1) | .id'
`,
  options: {
    ...VIEW_OPTIONS,
    json: { type: "boolean", short: "j" },
    drivers: { type: "boolean", short: "k" },
    class: { type: "string", multiple: true },
    "pci-ids": { type: "string" },
  },
  positionals: [0, 0],
  run(args, ctx) {
    const classes = args.values.class;
    const classFilters = (Array.isArray(classes) ? classes : []).map((c) => parseClassFilter(String(c)));
    const view = viewFromArgs(args);
    requireSysfs(view);
    const ids = loadPciIds(str(args, "pci-ids"));
    const report = gatherGroups(view, { ids, classFilters });
    const noGroups = report.groups.length === 0;
    if (flag(args, "json")) {
      ctx.out(toJson(report));
    } else {
      ctx.out(renderGroupsText(report, { drivers: flag(args, "drivers") }));
    }
    if (noGroups && classFilters.length === 0) {
      ctx.err(`iommu: no IOMMU groups in ${report.source}: the IOMMU is not active (run 'iommu status' for why)\n`);
    } else if (noGroups) {
      ctx.err("iommu: no group has a device of the requested class\n");
    }
    return noGroups ? 1 : 0;
  },
};
