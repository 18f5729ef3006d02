/**
 * Runs the lab's end-to-end tests and prints `N passed, N failed` last. Exit status 1 when anything failed.
 *
 *   node --import tsx lab/run.ts                      every suite (doctor, oracle)
 *   node --import tsx lab/run.ts doctor --scenario a  one doctor scenario (a … f)
 *   node --import tsx lab/run.ts doctor --update-fixtures   also re-record test/fixtures/hosts/qemu-*
 *   node --import tsx lab/run.ts oracle               the VT-d oracle only (--update-fixtures: test/fixtures/vtd-oracle)
 *   node --import tsx lab/run.ts oracle --case sm     its scalable-mode variants only (or aw39, aw48, sm-aw39, sm-aw48, legacy)
 *   node --import tsx lab/run.ts amdvi                the AMD-Vi oracle (QEMU amd-iommu against iommu walk --dtb)
 *   node --import tsx lab/run.ts sim --case classes   the simulated-vs-real matrix (cases whose name contains it)
 *   node --import tsx lab/run.ts sim-sm               the simulated kernel's scalable-mode tables against the real
 *                                                     kernel's in the oracle's sm dumps (boots them when missing)
 * Options: --echo prints the guests' consoles; --timeout SEC per guest; --reuse (sim) compares existing captures.
 * Run `bash lab/setup.sh` first (lab/run-all.sh does both).
 */
import { parseArgs } from "node:util";
import { runDoctor } from "./doctor.js";
import { Report } from "./report.js";
import { SCENARIOS, scenario } from "./scenarios.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    scenario: { type: "string" },
    "update-fixtures": { type: "boolean" },
    echo: { type: "boolean" },
    timeout: { type: "string" },
    case: { type: "string" },
    reuse: { type: "boolean" },
  },
});
const SUITES = ["doctor", "oracle", "sim", "amdvi", "sim-sm"];
const suites = positionals.length ? positionals : SUITES;
for (const s of suites) {
  if (!SUITES.includes(s)) {
    console.error(`lab: unknown suite '${s}' (${SUITES.join(", ")})`);
    process.exit(2);
  }
}
const report = new Report();
const started = Date.now();
const timeoutSec = values.timeout ? Number(values.timeout) : undefined;

async function suite(name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    report.fail(name, "suite ran to the end", (e as Error).stack ?? String(e));
  }
}

if (suites.includes("doctor")) {
  await suite("doctor", async () => {
    const scenarios = values.scenario ? values.scenario.split(",").map(scenario) : SCENARIOS;
    await runDoctor(report, {
      scenarios,
      updateFixtures: values["update-fixtures"] === true,
      echo: values.echo === true,
      ...(timeoutSec ? { timeoutSec } : {}),
    });
  });
}
if (suites.includes("amdvi")) await suite("amdvi", async () => (await import("./amdvi-oracle.js")).runAmdOracle(report, { echo: values.echo === true, ...(timeoutSec ? { timeoutSec } : {}) }));
if (suites.includes("oracle")) {
  await suite("oracle", async () => {
    const { runOracle } = await import("./oracle.js");
    await runOracle(report, {
      echo: values.echo === true,
      ...(values.case ? { only: values.case.split(",") } : {}),
      updateFixtures: values["update-fixtures"] === true,
      ...(timeoutSec ? { timeoutSec } : {}),
    });
  });
}

if (suites.includes("sim")) {
  await suite("sim", async () => {
    const { runSimSuite } = await import("./sim-suite.js");
    await runSimSuite(report, {
      echo: values.echo === true,
      reuse: values.reuse === true,
      updateFixtures: values["update-fixtures"] === true,
      ...(values.case ? { only: values.case.split(",") } : {}),
      ...(timeoutSec ? { timeoutSec } : {}),
    });
  });
}

if (suites.includes("sim-sm")) {
  await suite("sim-sm", async () => (await import("./sim-sm.js")).runSimSm(report, { echo: values.echo === true, updateFixtures: values["update-fixtures"] === true, ...(timeoutSec ? { timeoutSec } : {}) }));
}

process.stdout.write(`\nlab: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
process.stdout.write(report.summary());
process.exitCode = report.count("fail") > 0 ? 1 : 0;
