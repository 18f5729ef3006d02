/** `iommu tour`: the stories of what an IOMMU changes, each run without and with it, measured in the simulation. */
import { DEFAULT_MACHINE, PRESET_NAMES } from "../../hw/machine-presets.js";
import { renderStory, runTour, type TourStory } from "../../os/tour.js";
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
  (c) a buggy device writing outside its buffer         memory corrupted vs blocked (the fault record or event)
  (d) two devices, two address spaces                  same bus address, different physical pages
  (e) iommu=pt vs translated                            identity domain vs DMA-FQ
  (f) strict vs lazy unmap                              IOTLB invalidations per unmap, stale window
and then a device given to a virtual machine, each hypervisor scenario without and with the protection:
  (g) passthrough  (h) isolation  (i) msi-injection  (j) deferred-dma  (k) lazy-window
The runs' command lines follow the machine's IOMMU: intel_iommu=off / intel_iommu=on on VT-d, amd_iommu=off /
no option on AMD-Vi (on by default); iommu=pt and iommu.strict= on both. Each story is printed as soon as it
has run. A run the machine cannot do (no IOMMU, no 32-bit device, not the scenarios' q35 layout) is left out
with the reason, in text ("skipped: …") and in JSON ("skipped").

Options:
  -m, --machine NAME|FILE  a preset (${PRESET_NAMES.join(", ")}) or a JSON machine configuration (- reads it from standard input); default ${DEFAULT_MACHINE}
  -j, --json               [{id, title, runs: [{label, cmdline, numbers, summary}], skipped?}]
      --no-vm              only the kernel stories (a)–(f)

Examples:
  iommu tour
  npm start
  iommu tour --json | jq '.[] | select(.id == "f") | .runs[].numbers'
`,
  options: { machine: { type: "string", short: "m" }, json: { type: "boolean", short: "j" }, "no-vm": { type: "boolean" } },
  run(args, ctx) {
    const machine = str(args, "machine") ?? DEFAULT_MACHINE;
    const json = flag(args, "json");
    if (!json) {
      ctx.out(
        `What an IOMMU changes, measured on the simulated machine '${machine}': each story runs without and with it.\n` +
          `(Details: 'iommu sim boot --machine ${machine}', 'iommu scenario NAME'; numbers: 'iommu tour --json'.)\n\n`,
      );
    }
    // Text is printed story by story as each finishes; JSON is one document at the end.
    const print = json ? undefined : (s: TourStory) => ctx.out(renderStory(s));
    const stories = runTour({ machine }, print);
    if (!flag(args, "no-vm")) stories.push(...vmStories(machine, print));
    if (json) ctx.out(toJson(stories));
    return 0;
  },
};
