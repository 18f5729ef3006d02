/**
 * The simulated kernel against Linux 6.1 on every topology and command line of lab/sim-topologies.ts: each case
 * boots the real kernel under QEMU with lab/guest/sim-job.sh (no node in the guest: a boot is the kernel's own
 * time), then builds the simulated machine from the captured configuration spaces (lab/sim-machine.ts), boots
 * the simulated kernel with the same command line and compares groups, members, group types, reserved regions
 * and the kernel log lines (lab/sim-compare.ts).
 *
 * With `--reuse`, a case whose capture already exists in lab/work/runs/sim-NAME/ is compared again without a
 * boot (for working on the simulated kernel; the full lab always boots). With `--update-fixtures`, each case's
 * machine and Linux's answers go to test/fixtures/sim-vs-real/NAME.json, which src/os/sim-vs-real.test.ts replays
 * in the unit tests.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bootGuest, describeFailure, kernelVersion, qemuVersion, REPO_DIR, WORK_DIR } from "./qemu.js";
import type { MachineConfigInput } from "../src/hw/machine-config.js";
import type { Report } from "./report.js";
import { compareCapture, type CompareTotals } from "./sim-compare.js";
import { compareStatus, type StatusTotals } from "./sim-status.js";
import { caseName, simCases, type SimCase } from "./sim-topologies.js";

export interface SimSuiteOptions {
  echo: boolean;
  timeoutSec?: number;
  /** Only the cases whose name contains one of these. */
  only?: string[];
  /** Compare existing captures without booting. */
  reuse?: boolean;
  /** Write test/fixtures/sim-vs-real/NAME.json for each case compared. */
  updateFixtures?: boolean;
}

export const SIM_FIXTURES_DIR = join(REPO_DIR, "test", "fixtures", "sim-vs-real");
/** The AMD-Vi cases' fixtures, replayed by test/sim-vs-real-amd.test.ts (regions read through sysfs). */
export const SIM_AMD_FIXTURES_DIR = join(REPO_DIR, "test", "fixtures", "sim-vs-real-amd");

async function capture(report: Report, suite: string, c: SimCase, o: SimSuiteOptions): Promise<string | null> {
  const name = `sim-${caseName(c)}`;
  const outDir = join(WORK_DIR, "runs", name);
  const dir = join(outDir, "capture");
  if (o.reuse && existsSync(join(dir, "dmesg.txt"))) {
    report.note(`${suite}: compared against the capture already in ${dir} (--reuse)`);
    return dir;
  }
  const r = await bootGuest({
    name,
    machineArgs: [...(c.iommuDevice ? ["-device", c.iommuDevice] : []), ...c.topology.devices()],
    cmdline: c.cmdline,
    // REPO makes the job run `iommu status --json` too (node starts in the guest only then).
    script: `${c.status ? `export REPO='${REPO_DIR}'\n` : ""}exec /bin/sh '${join(REPO_DIR, "lab", "guest", "sim-job.sh")}'\n`,
    timeoutSec: o.timeoutSec ?? (c.status ? 360 : 240),
    echo: o.echo,
  });
  if (r.jobExit !== 0) {
    report.fail(suite, "guest boots and captures", describeFailure(r));
    return null;
  }
  const tar = join(outDir, "capture.tar");
  const x = existsSync(tar) ? spawnSync("tar", ["-C", outDir, "-xf", tar]) : null;
  if (x === null || x.status !== 0 || !existsSync(join(dir, "dmesg.txt"))) {
    report.fail(suite, "guest boots and captures", `no usable capture.tar in ${outDir}`);
    return null;
  }
  report.pass(suite, "guest boots and captures", `boot ${r.bootSec?.toFixed(1) ?? "?"} s, total ${r.elapsedSec.toFixed(1)} s`);
  return dir;
}

/** The preset the issue names for `iommu status --sim` on an AMD machine: QEMU q35 with amd-iommu,intremap=on. */
export const AMD_STATUS_PRESET = "q35-amd";

/**
 * `iommu status` in the guest against `iommu status --sim` on the machine built from the capture (written next to
 * the capture as machine.json) and on the AMD_STATUS_PRESET preset, with the captured command line.
 */
async function statusChecks(report: Report, suite: string, dir: string, machine: MachineConfigInput | null, t: StatusTotals): Promise<void> {
  const cmdline = readFileSync(join(dir, "cmdline.txt"), "utf8").trim();
  const sims = [{ label: AMD_STATUS_PRESET, machine: AMD_STATUS_PRESET, sameMachine: false }];
  if (machine === null) report.fail(suite, "status: `iommu status --sim` on the captured machine", "the captured machine could not be built (above)");
  else {
    const file = join(dir, "..", "machine.json");
    writeFileSync(file, JSON.stringify(machine, null, 1) + "\n");
    sims.unshift({ label: file.slice(REPO_DIR.length + 1), machine: file, sameMachine: true });
  }
  await compareStatus(report, suite, join(dir, "status.json"), sims, cmdline, t);
}

export async function runSimSuite(report: Report, o: SimSuiteOptions): Promise<void> {
  const cases = simCases().filter((c) => !o.only || o.only.some((s) => caseName(c).includes(s)));
  if (cases.length === 0) {
    report.fail("sim", "cases selected", `no case name contains ${JSON.stringify(o.only)} (names: ${simCases().map(caseName).join(", ")})`);
    return;
  }
  const totals: CompareTotals = { cases: 0, facts: 0, differing: 0 };
  const status: StatusTotals = { facts: 0, differing: 0 };
  const topologies = new Set<string>();
  const cmdlines = new Set<string>();
  const started = Date.now();
  const written: string[] = [];
  for (const c of cases) {
    const suite = `sim ${caseName(c)}`;
    const dir = await capture(report, suite, c, o);
    if (dir === null) continue;
    topologies.add(c.topology.id);
    cmdlines.add(c.iommuDevice === null ? "(no IOMMU)" : c.cmdline);
    const fixture = compareCapture(report, suite, dir, c.iommuDevice, totals, c.preset);
    if (c.status) await statusChecks(report, suite, dir, fixture?.machine ?? null, status);
    if (fixture !== null && o.updateFixtures) {
      const recorded = { qemu: await qemuVersion(), kernel: kernelVersion(), qemuDevices: [...(c.iommuDevice ? ["-device", c.iommuDevice] : []), ...c.topology.devices()].join(" ").replace(/\/\S*\/lab\/work\//g, "lab/work/") };
      const fixtureDir = c.iommuDevice?.startsWith("amd-iommu") ? SIM_AMD_FIXTURES_DIR : SIM_FIXTURES_DIR;
      mkdirSync(fixtureDir, { recursive: true });
      const path = join(fixtureDir, `${caseName(c).replace(/[^\w.+=-]/g, "_")}.json`);
      writeFileSync(path, JSON.stringify({ recorded, ...fixture }, null, 1) + "\n");
      written.push(path);
    }
  }
  if (o.updateFixtures && !o.only) {
    // A full run owns the directory: fixtures of cases that no longer exist go.
    const keep = new Set(written);
    for (const d of [SIM_FIXTURES_DIR, SIM_AMD_FIXTURES_DIR]) {
      for (const f of existsSync(d) ? readdirSync(d) : []) if (f.endsWith(".json") && !keep.has(join(d, f))) rmSync(join(d, f));
    }
  }
  if (written.length) report.note(`sim: wrote ${written.length} fixtures: ${written.map((p) => p.slice(REPO_DIR.length + 1)).join(", ")}`);
  report.note(
    `sim: ${totals.cases} cases over ${topologies.size} topologies and ${cmdlines.size} distinct command lines (lab/sim-topologies.ts), ` +
      `${totals.facts} facts compared, ${totals.differing} differ; ` +
      (status.facts > 0 ? `\`iommu status\` in the guest against --sim: ${status.facts} facts compared, ${status.differing} differ; ` : "") +
      `${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
}
