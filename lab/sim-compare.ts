/**
 * The simulated kernel against the real one, on the same machine: for each Intel and no-IOMMU scenario the lab
 * boots, the simulated kernel boots the equivalent machine (the q35-lab preset, with interrupt remapping as the
 * QEMU device had it, or no unit at all) with the command line the real kernel saw, and must make the same IOMMU
 * groups, with the same members and types, and print the IOMMU lines the real kernel printed, in the same order.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Machine } from "../src/hw/machine.js";
import { machinePreset } from "../src/hw/machine-presets.js";
import { Kernel } from "../src/os/kernel.js";
import type { Report } from "./report.js";
import type { Scenario } from "./scenarios.js";

/** The kernel log lines the comparison covers (the ones Linux prints about DMA remapping and groups). */
const COMPARED = [
  /^DMAR: IOMMU enabled$/,
  /^DMAR: Host address width \d+$/,
  /^DMAR: DRHD base: /,
  /^DMAR: dmar\d+: reg_base_addr /,
  /^DMAR-IR: Enabled IRQ remapping in /,
  /^iommu: Default domain type: /,
  /^iommu: DMA domain TLB invalidation policy: /,
  /^pci [0-9a-f:.]+: Adding to iommu group \d+$/,
  /^DMAR: Intel\(R\) Virtualization Technology for Directed I\/O$/,
];

export function comparedLines(lines: string[]): string[] {
  return lines.map((l) => l.replace(/^\[[^\]]*\]\s*/, "").trimEnd()).filter((l) => COMPARED.some((re) => re.test(l)));
}

function firstDifference(a: string[], b: string[]): string | null {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `line ${i + 1}: real ${JSON.stringify(a[i] ?? "(none)")}, simulated ${JSON.stringify(b[i] ?? "(none)")}`;
  }
  return null;
}

export function simChecks(report: Report, suite: string, sc: Scenario, tree: string, realGroups: Map<number, string[]>): void {
  if (sc.iommu === "amd") {
    report.skip(suite, "sim: same groups and log lines as the real kernel", "the simulated machine has no AMD-Vi unit");
    return;
  }
  const read = (p: string) => (existsSync(join(tree, p)) ? readFileSync(join(tree, p), "utf8") : "");
  const cmdline = read("proc/cmdline").trim();
  const cfg = machinePreset("q35-lab");
  if (cfg === null) throw new Error("the q35-lab preset is missing");
  const iommus = (cfg.iommus ?? []) as Record<string, unknown>[];
  cfg.iommus = sc.iommu === "none" ? [] : iommus.map((u) => ({ ...u, interruptRemapping: /intremap=on/.test(sc.iommuDevice ?? "") }));
  const k = Kernel.boot(new Machine(cfg), { cmdline });

  const simGroups = new Map<number, string[]>(k.groups.map((g) => [g.id, g.devices.map((d) => d.name).sort()]));
  const fmt = (m: Map<number, string[]>) => [...m].sort((a, b) => a[0] - b[0]).map(([g, d]) => `${g}: ${d.join(" ")}`).join("; ");
  report.check(suite, `sim: same ${realGroups.size} groups and members as the real kernel`, fmt(simGroups) === fmt(realGroups),
    `real ${fmt(realGroups) || "none"} | simulated ${fmt(simGroups) || "none"}`);
  const realTypes = [...realGroups.keys()].sort((a, b) => a - b).map((g) => read(`sys/kernel/iommu_groups/${g}/type`).trim());
  const simTypes = [...k.groups].sort((a, b) => a.id - b.id).map((g) => g.type ?? "");
  report.check(suite, "sim: same group types", simTypes.join(",") === realTypes.join(","), `real ${realTypes.join(",")} | simulated ${simTypes.join(",")}`);

  const real = comparedLines(read("dmesg.txt").split("\n"));
  const sim = comparedLines(k.log.lines.map((l) => l.text));
  const diff = firstDifference(real, sim);
  report.check(suite, `sim: the ${real.length} DMAR/iommu/group lines, in order`, diff === null, diff ?? "");
}
