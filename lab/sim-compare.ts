/**
 * The simulated kernel against the real one, on the same machine.
 *
 * - `simChecks` (doctor suite): for each scenario the lab boots, the simulated kernel boots the equivalent machine
 *   (the q35-lab preset, with interrupt remapping as the QEMU device had it, or no unit at all; q35-amd-lab for
 *   the AMD-Vi scenario) with the command line the real kernel saw.
 * - `compareCapture` (sim suite, lab/sim-suite.ts): the simulated machine is built from the guest's capture
 *   (lab/sim-machine.ts) and booted with the captured command line.
 *
 * Both compare the IOMMU groups with their members, each group's default domain type, each group's reserved
 * regions (compareCapture) and the kernel log lines about DMA remapping, in order (VT-d: COMPARED below; AMD-Vi:
 * AMD_COMPARED in sim-amd.ts).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { MachineConfigInput } from "../src/hw/machine-config.js";
import { Machine } from "../src/hw/machine.js";
import { machinePreset } from "../src/hw/machine-presets.js";
import { Kernel } from "../src/os/kernel.js";
import { kernelSysfsView } from "../src/os/sysfs.js";
import type { Report } from "./report.js";
import type { Scenario } from "./scenarios.js";
import {
  AMD_COMPARED, capturedFunctionFacts, capturedUnitMembers, capturedUnitRegisters, ivrsFacts, simulatedMachineFacts, simulatedUnitMembers,
  simulatedUnitRegisters,
} from "./sim-amd.js";
import { captureMachine } from "./sim-machine.js";

/** The kernel log lines the comparison covers (the ones Linux prints about DMA remapping and groups). */
export const COMPARED = [
  /^DMAR: IOMMU (enabled|disabled)$/,
  /^DMAR: Disable (GFX|integrated GPU) device mapping$/,
  /^DMAR: Host address width \d+$/,
  /^DMAR: DRHD base: /,
  /^DMAR: dmar\d+: reg_base_addr /,
  /^DMAR-IR: Enabled IRQ remapping in /,
  /^iommu: Default domain type: /,
  /^iommu: DMA domain TLB invalidation policy: /,
  /^DMAR: IOMMU batching disallowed due to virtualization$/,
  /^pci [0-9a-f:.]+: Adding to iommu group \d+$/,
  /^pci [0-9a-f:.]+: Device needs domain type /,
  /^DMAR: Intel\(R\) Virtualization Technology for Directed I\/O$/,
];

/** A printk continuation split into its own record: "[ts]  PreF PPR …" (the fragment's own leading space kept). */
const FRAGMENT = /^\[[^\]]*\] ( \S.*)$/;
/** How far back a fragment's unfinished line may be (another CPU's messages in between). */
const FRAGMENT_REACH = 3;

/**
 * The kernel's lines without timestamps, pr_cont fragments put back: when another CPU prints between a pr_info
 * that ends in ":" and its pr_cont text ("AMD-Vi: Extended features (…):" then " PreF PPR …"), dmesg shows the
 * text as a record of its own; it is appended to the nearest unfinished line before it.
 */
export function dmesgLines(lines: string[]): string[] {
  const out: string[] = [];
  for (const raw of lines) {
    const frag = FRAGMENT.exec(raw);
    if (frag !== null) {
      let j = out.length - 1;
      while (j >= Math.max(0, out.length - FRAGMENT_REACH) && !out[j]!.endsWith(":")) j--;
      if (j >= Math.max(0, out.length - FRAGMENT_REACH)) {
        out[j] += frag[1]!.trimEnd();
        continue;
      }
    }
    out.push(raw.replace(/^\[[^\]]*\]\s*/, "").trimEnd());
  }
  return out;
}

export function comparedLines(lines: string[], patterns: RegExp[] = COMPARED): string[] {
  return dmesgLines(lines).filter((l) => patterns.some((re) => re.test(l)));
}

function firstDifference(a: string[], b: string[]): string | null {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `line ${i + 1}: real ${JSON.stringify(a[i] ?? "(none)")}, simulated ${JSON.stringify(b[i] ?? "(none)")}`;
  }
  return null;
}

const fmtGroups = (m: Map<number, string[]>) => [...m].sort((a, b) => a[0] - b[0]).map(([g, d]) => `${g}: ${d.join(" ")}`).join("; ");

export function simChecks(report: Report, suite: string, sc: Scenario, tree: string, realGroups: Map<number, string[]>): void {
  const read = (p: string) => (existsSync(join(tree, p)) ? readFileSync(join(tree, p), "utf8") : "");
  const cmdline = read("proc/cmdline").trim();
  // The AMD scenario's machine is q35-amd-lab (the sim suite's lab-amd cases check that it is the guest's).
  const presetName = sc.iommu === "amd" ? "q35-amd-lab" : "q35-lab";
  const cfg = machinePreset(presetName);
  if (cfg === null) {
    report.fail(suite, `sim: the ${presetName} machine loads`, `src/hw/machine-presets.ts has no ${presetName} preset`);
    return;
  }
  if (sc.simDevices && Array.isArray(cfg.devices)) cfg.devices = [...(cfg.devices as unknown[]), ...sc.simDevices];
  if (sc.iommu !== "amd") {
    const iommus = (cfg.iommus ?? []) as Record<string, unknown>[];
    cfg.iommus = sc.iommu === "none" ? [] : iommus.map((u) => ({ ...u, interruptRemapping: /intremap=on/.test(sc.iommuDevice ?? "") }));
  }
  let k: Kernel;
  try {
    k = Kernel.boot(new Machine(cfg), { cmdline });
  } catch (e) {
    report.fail(suite, `sim: the simulated kernel boots ${presetName}`, (e as Error).message);
    return;
  }

  const simGroups = new Map<number, string[]>(k.groups.map((g) => [g.id, g.devices.map((d) => d.name).sort()]));
  report.check(suite, `sim: same ${realGroups.size} groups and members as the real kernel`, fmtGroups(simGroups) === fmtGroups(realGroups),
    `real ${fmtGroups(realGroups) || "none"} | simulated ${fmtGroups(simGroups) || "none"}`);
  const realTypes = [...realGroups.keys()].sort((a, b) => a - b).map((g) => read(`sys/kernel/iommu_groups/${g}/type`).trim());
  const simTypes = [...k.groups].sort((a, b) => a.id - b.id).map((g) => g.type ?? "");
  report.check(suite, "sim: same group types", simTypes.join(",") === realTypes.join(","), `real ${realTypes.join(",")} | simulated ${simTypes.join(",")}`);

  const patterns = sc.iommu === "amd" ? AMD_COMPARED : COMPARED;
  const real = comparedLines(read("dmesg.txt").split("\n"), patterns);
  const sim = comparedLines(k.log.lines.map((l) => l.text), patterns);
  const diff = firstDifference(real, sim);
  report.check(suite, `sim: the ${real.length} ${sc.iommu === "amd" ? "AMD-Vi" : "DMAR"}/iommu/group lines, in order`, diff === null, diff ?? "");
}

// ---- captures (sim suite) ----

export interface CompareTotals {
  cases: number;
  /** Individual facts compared: one per group (members), per group (type), per group (reserved regions), per log line. */
  facts: number;
  differing: number;
}

interface RealGroup {
  id: number;
  devices: string[];
  type: string;
  regions: string[];
}

function readGroups(dir: string): Map<number, RealGroup> | Error {
  const base = join(dir, "groups");
  const out = new Map<number, RealGroup>();
  if (!existsSync(base)) return out;
  for (const g of readdirSync(base)) {
    const f = (n: string) => join(base, g, n);
    if (!existsSync(f("devices")) || !existsSync(f("type")) || !existsSync(f("reserved_regions"))) {
      return new Error(`${join(base, g)} lacks devices, type or reserved_regions`);
    }
    const lines = (n: string) => readFileSync(f(n), "utf8").split("\n").map((l) => l.trim()).filter(Boolean);
    out.set(Number(g), { id: Number(g), devices: lines("devices").sort(), type: lines("type")[0] ?? "", regions: lines("reserved_regions") });
  }
  return out;
}

/** One fact list compared: a check naming how many facts, failing with the first differences. */
function factCheck(report: Report, suite: string, what: string, real: string[], sim: string[], t: CompareTotals): void {
  const n = Math.max(real.length, sim.length);
  const diffs: string[] = [];
  for (let i = 0; i < n; i++) if (real[i] !== sim[i]) diffs.push(`real ${JSON.stringify(real[i] ?? "(none)")}, simulated ${JSON.stringify(sim[i] ?? "(none)")}`);
  t.facts += n;
  t.differing += diffs.length;
  report.check(suite, `sim: ${n} ${what}`, diffs.length === 0, `${diffs.length} differ, e.g. ${diffs.slice(0, 3).join("; ")}`);
}

/** Which unit a captured guest had: from the QEMU device the case booted with. */
export type CaptureUnit = "intel" | "amd" | null;

export function captureUnit(iommuDevice: string | null): CaptureUnit {
  return iommuDevice === null ? null : iommuDevice.startsWith("amd-iommu") ? "amd" : "intel";
}

/** The firmware table each unit kind needs in a capture. */
const FIRMWARE: Record<"intel" | "amd", string> = { intel: "DMAR", amd: "IVRS" };

/**
 * A fact list that describes the machine, not the kernel (not counted in the totals). Facts are keyed by their
 * first word (a BDF, "block 0", …): a fact missing on one side is one difference, not a shift of all the rest.
 */
function machineCheck(report: Report, suite: string, what: string, real: string[], sim: string[]): void {
  const key = (f: string) => f.split(" ").slice(0, f.startsWith("block ") ? 4 : 1).join(" ");
  const byKey = (l: string[]) => new Map(l.map((f) => [key(f), f]));
  const r = byKey(real);
  const s = byKey(sim);
  const diffs: string[] = [];
  for (const k of [...new Set([...r.keys(), ...s.keys()])].sort()) {
    if (r.get(k) !== s.get(k)) diffs.push(`real ${JSON.stringify(r.get(k) ?? "(none)")}, simulated ${JSON.stringify(s.get(k) ?? "(none)")}`);
  }
  report.check(suite, `machine: ${what} (${real.length})`, diffs.length === 0, `${diffs.length} differ, e.g. ${diffs.slice(0, 3).join("; ")}`);
}

/**
 * The simulated machine is the captured one (AMD cases): the same PCI functions and the same IVRS, both for the
 * machine built from the capture and for the preset that stands for it.
 */
function amdMachineChecks(report: Report, suite: string, dir: string, machine: MachineConfigInput, presetName: string | undefined): void {
  const names = readdirSync(join(dir, "pci")).filter((f) => f.endsWith(".config")).map((f) => f.replace(/\.config$/, ""));
  const realFns = capturedFunctionFacts(dir, names);
  const realIvrs = ivrsFacts(readFileSync(join(dir, "IVRS")));
  const candidates: [string, MachineConfigInput | null][] = [["the machine built from the capture", machine]];
  if (presetName !== undefined) candidates.push([`preset ${presetName}`, machinePreset(presetName)]);
  for (const [label, cfg] of candidates) {
    if (cfg === null) {
      report.fail(suite, `machine: ${label} exists`, `src/hw/machine-presets.ts has no ${presetName} preset`);
      continue;
    }
    let sim: ReturnType<typeof simulatedMachineFacts>;
    try {
      sim = simulatedMachineFacts(cfg);
    } catch (e) {
      report.fail(suite, `machine: ${label} builds`, (e as Error).message);
      continue;
    }
    machineCheck(report, suite, `${label}: PCI functions as the guest's configuration spaces show them`, realFns, sim.functions);
    if (sim.ivrs === null) report.fail(suite, `machine: ${label}: IVRS`, "the simulated firmware has no IVRS table");
    else machineCheck(report, suite, `${label}: IVRS blocks and device entries`, realIvrs, ivrsFacts(sim.ivrs));
  }
}

/**
 * Builds the simulated machine from a capture directory (`iommuDevice`: the QEMU IOMMU device the guest had),
 * boots the simulated kernel with the captured command line and compares. A capture that is incomplete or a machine that cannot be built is a failure with the reason.
 */
export function compareCapture(report: Report, suite: string, dir: string, iommuDevice: string | null, t: CompareTotals, preset?: string): SimFixture | null {
  const unit = captureUnit(iommuDevice);
  const need = ["cmdline.txt", "dmesg.txt", "pci"].filter((f) => !existsSync(join(dir, f)));
  if (unit !== null && !existsSync(join(dir, FIRMWARE[unit]))) need.push(FIRMWARE[unit]);
  if (need.length > 0) {
    report.fail(suite, "sim: capture complete", `${dir} lacks ${need.join(", ")}`);
    return null;
  }
  const groups = readGroups(dir);
  if (groups instanceof Error) {
    report.fail(suite, "sim: capture complete", groups.message);
    return null;
  }
  let k: Kernel;
  const cmdline = readFileSync(join(dir, "cmdline.txt"), "utf8").trim();
  let machine: MachineConfigInput;
  try {
    machine = captureMachine(dir, /intremap=on/.test(iommuDevice ?? ""));
  } catch (e) {
    report.fail(suite, "sim: the simulated machine is built from the capture", (e as Error).message);
    return null;
  }
  if (unit === "amd") amdMachineChecks(report, suite, dir, machine, preset);
  try {
    k = Kernel.boot(new Machine(machine), { cmdline });
  } catch (e) {
    report.fail(suite, "sim: the captured machine boots in the simulator", (e as Error).message);
    return null;
  }
  t.cases++;
  const real = [...groups.values()].sort((a, b) => a.id - b.id);
  const sim = [...k.groups].sort((a, b) => a.id - b.id);
  factCheck(report, suite, "groups with the same members", real.map((g) => `${g.id}: ${g.devices.join(" ")}`),
    sim.map((g) => `${g.id}: ${g.devices.map((d) => d.name).sort().join(" ")}`), t);
  factCheck(report, suite, "group default domain types", real.map((g) => `${g.id}: ${g.type}`), sim.map((g) => `${g.id}: ${g.type ?? ""}`), t);
  // Read as the guest read them: the simulated kernel's /sys/kernel/iommu_groups/N/reserved_regions (the active
  // driver's regions, whichever driver it is).
  const view = kernelSysfsView(k);
  const simRegions = (id: number) => (view.readText(`/sys/kernel/iommu_groups/${id}/reserved_regions`) ?? "(absent)").split("\n").map((l) => l.trim()).filter(Boolean);
  factCheck(report, suite, "group reserved region lists", real.map((g) => `${g.id}: ${g.regions.join("; ")}`),
    sim.map((g) => `${g.id}: ${simRegions(g.id).join("; ")}`), t);
  const patterns = unit === "amd" ? AMD_COMPARED : COMPARED;
  const pick = (lines: string[]) => comparedLines(lines, patterns);
  const realLines = pick(readFileSync(join(dir, "dmesg.txt"), "utf8").split("\n"));
  factCheck(report, suite, `${unit === "amd" ? "AMD-Vi" : "DMAR"}/iommu/group log lines, in order`, realLines, pick(k.log.lines.map((l) => l.text)), t);
  if (unit === "amd") {
    const members = capturedUnitMembers(dir);
    // amd_iommu=off: no unit registers, so the guest has no ivhd0 and the list is empty on both sides.
    factCheck(report, suite, "functions of /sys/class/iommu/ivhd0/devices", members ?? [], simulatedUnitMembers(k), t);
    factCheck(report, suite, "ivhd0 amd-iommu/cap and features", capturedUnitRegisters(dir), simulatedUnitRegisters(k), t);
  }
  return {
    cmdline,
    machine: { ...machine, name: suite.replace(/^sim /, "") },
    groups: real.map((g) => ({ id: g.id, devices: g.devices, type: g.type, reservedRegions: g.regions })),
    linePatterns: patterns.map((re) => re.source),
    lines: realLines,
  };
}

/** What test/fixtures/sim-vs-real/*.json hold: a captured machine and what Linux 6.1 made of it. */
export interface SimFixture {
  cmdline: string;
  machine: MachineConfigInput;
  groups: { id: number; devices: string[]; type: string; reservedRegions: string[] }[];
  /** The log lines compared (regular expressions) and the real kernel's lines that match them, in order. */
  linePatterns: string[];
  lines: string[];
}
