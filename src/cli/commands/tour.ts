/** `iommu tour`: the stories of what an IOMMU changes, each run without and with it, measured in the simulation. */
import { DEFAULT_MACHINE, PRESET_NAMES } from "../../hw/machine-presets.js";
import { renderTour, runTour } from "../../os/tour.js";
import { vmStories } from "../../hv/tour.js";
import { flag, str, toJson, type Command } from "../command.js";

export const tourCommand: Command = {
  name: "tour",
  summary: "what an IOMMU changes, each story run without and with it (simulated, measured)",
  help: `Usage: iommu tour [--machine NAME|FILE] [--json]

Boots the simulated kernel on the machine twice per story and reports what happened, with numbers from the
simulation:
  (a) one contiguous DMA buffer from scattered pages   DMA segments vs one IOVA range
  (b) a 32-bit device with memory above 4 GiB          swiotlb bounces and bytes copied vs none
  (c) a buggy device writing outside its buffer         memory corrupted vs blocked (fault reason, address)
  (d) two devices, two address spaces                  same bus address, different physical pages
  (e) iommu=pt vs translated                            identity domain vs DMA-FQ
  (f) strict vs lazy unmap                              IOTLB invalidations per unmap, stale window
and then a device given to a virtual machine, each hypervisor scenario without and with the protection:
  (g) passthrough  (h) isolation  (i) msi-injection  (j) deferred-dma  (k) lazy-window

Options:
  -m, --machine NAME|FILE  a preset (${PRESET_NAMES.join(", ")}) or a JSON machine configuration; default ${DEFAULT_MACHINE}
  -j, --json               [{id, title, runs: [{label, cmdline, numbers, summary}]}]
      --no-vm              only the kernel stories (a)–(f)

Examples:
  iommu tour
  npm start
  iommu tour --json | jq '.[] | select(.id == "f") | .runs[].numbers'
`,
  options: { machine: { type: "string", short: "m" }, json: { type: "boolean", short: "j" }, "no-vm": { type: "boolean" } },
  run(args, ctx) {
    const machine = str(args, "machine") ?? DEFAULT_MACHINE;
    const stories = runTour({ machine });
    if (!flag(args, "no-vm")) stories.push(...vmStories(machine));
    if (flag(args, "json")) {
      ctx.out(toJson(stories));
    } else {
      ctx.out(
        `What an IOMMU changes, measured on the simulated machine '${machine}': each story runs without and with it.\n` +
          `(Details: 'iommu sim boot --machine ${machine}', 'iommu scenario NAME'; numbers: 'iommu tour --json'.)\n\n`,
      );
      ctx.out(renderTour(stories));
    }
    return 0;
  },
};
