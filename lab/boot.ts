/**
 * Boots one guest by hand.
 *
 *   node --import tsx lab/boot.ts --scenario a --script lab/guest/shell-info.sh
 *   node --import tsx lab/boot.ts --qemu "-device intel-iommu,intremap=on -device e1000e" \
 *        --cmdline "intel_iommu=on" --exec "cat /proc/cmdline; ls /sys/class/iommu"
 *
 * Options:
 *   --scenario ID     a … f (lab/scenarios.ts): its IOMMU, devices and kernel command line
 *   --qemu ARGS       QEMU arguments (split on spaces) instead of, or added to, a scenario's
 *   --cmdline TEXT    kernel command line (added to the scenario's)
 *   --script FILE     shell script to run inside `chroot /host`
 *   --exec TEXT       shell text to run instead of --script
 *   --name NAME       run directory lab/work/runs/NAME (default: manual)
 *   --timeout SEC     hard limit (default 300)
 *   --mem MIB         guest RAM (default 1024)
 *   --quiet           do not echo the console
 * Exit status: the job's, or 1 when the guest did not finish.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { bootGuest, describeFailure } from "./qemu.js";
import { machineArgs, scenario } from "./scenarios.js";

const { values } = parseArgs({
  options: {
    scenario: { type: "string" },
    qemu: { type: "string" },
    cmdline: { type: "string" },
    script: { type: "string" },
    exec: { type: "string" },
    name: { type: "string" },
    timeout: { type: "string" },
    mem: { type: "string" },
    quiet: { type: "boolean" },
  },
});

const sc = values.scenario ? scenario(values.scenario) : null;
const script = values.exec ?? (values.script ? readFileSync(values.script, "utf8") : "uname -a; cat /proc/cmdline\n");
const result = await bootGuest({
  name: values.name ?? "manual",
  machineArgs: [...(sc ? machineArgs(sc) : []), ...(values.qemu ? values.qemu.split(/\s+/).filter(Boolean) : [])],
  cmdline: [sc?.cmdline ?? "", values.cmdline ?? ""].join(" ").trim(),
  script,
  timeoutSec: Number(values.timeout ?? 300),
  memMiB: Number(values.mem ?? 1024),
  echo: !values.quiet,
});
console.error(
  `\nlab boot: ${result.name}: job exit ${result.jobExit ?? "none"}, boot ${result.bootSec?.toFixed(1) ?? "?"} s, ` +
    `total ${result.elapsedSec.toFixed(1)} s, output in ${result.outDir}`,
);
if (result.jobExit !== 0) {
  if (values.quiet || result.jobExit === null) console.error(describeFailure(result));
  process.exitCode = result.jobExit ?? 1;
}
