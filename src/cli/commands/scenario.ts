/** `iommu scenario NAME`: device assignment and the attacks an IOMMU stops, run on the simulated machine. */
import { DEFAULT_MACHINE, PRESET_NAMES } from "../../hw/machine-presets.js";
import { ALL_SCENARIO_NAMES, HOST_SCENARIOS, listScenarios, renderScenario, runScenario } from "../../hv/scenarios.js";
import { flag, str, toJson, usageError, type Command } from "../command.js";

export const scenarioCommand: Command = {
  name: "scenario",
  summary: "give a device to a VM on the simulated machine, and the attacks an IOMMU stops",
  help: `Usage: iommu scenario NAME [--machine NAME|FILE] [--json]

Boots a host kernel on the simulated machine, creates VMs whose RAM is scattered host pages, gives them PCI
devices the way VFIO does (vfio-pci, group viability, a container with an unmanaged domain mapping
guest-physical to host-physical addresses, interrupt remapping entries for the guest's MSIs), and runs one
story with and without the protection. Every number comes from the simulation.

Scenarios:
${listScenarios()}
Output: the steps, every request the device issued (address, what the IOMMU translated it to and whose memory
that is, or the fault reason), the fault records the host read, the interrupts delivered, and a verdict per run.

Options:
  -m, --machine NAME|FILE  a preset (${PRESET_NAMES.join(", ")}) or a JSON machine configuration (- reads it from standard input);
                           default ${DEFAULT_MACHINE}, or the scenario's own machine (listed above)
  -j, --json               {name, title, runs: [{label, settings, steps, requests, faults, faultRecording,
                           interrupts, hostLog, numbers, verdict}]}; addresses are "0x…" strings

Exit status: 0 when the scenario ran (whatever the verdicts), 2 on error.

Examples:
  iommu scenario passthrough
  iommu scenario msi-injection --json | jq '.runs[] | {label, verdict}'
  iommu scenario deferred-dma --json | jq '.runs[1].requests[] | select(.outcome == "ok") | .translations'
  iommu scenario sva --json | jq '.runs[] | {label, numbers}'
`,
  options: { machine: { type: "string", short: "m" }, json: { type: "boolean", short: "j" } },
  positionals: [0, 1],
  run(args, ctx) {
    const name = args.positionals[0];
    if (name === undefined) {
      ctx.out(`Scenarios (run 'iommu scenario NAME'):\n${listScenarios()}`);
      return 0;
    }
    if (!ALL_SCENARIO_NAMES.includes(name)) throw usageError(`unknown scenario '${name}' (one of ${ALL_SCENARIO_NAMES.join(", ")})`, "scenario");
    const own = HOST_SCENARIOS.find((s) => s.name === name)?.machine;
    const report = runScenario(name, { machine: str(args, "machine") ?? own ?? DEFAULT_MACHINE });
    ctx.out(flag(args, "json") ? toJson(report) : renderScenario(report));
    return 0;
  },
};
