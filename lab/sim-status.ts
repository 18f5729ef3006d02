/**
 * The doctor's verdict on the real kernel against its verdict on the simulated kernel booted on the same machine
 * with the same command line: `iommu status --json` run inside the guest (lab/guest/sim-job.sh, capture/status.json)
 * against `iommu status --sim MACHINE --sim-cmdline "…" --json` on this host, once with the machine built from
 * the capture (lab/sim-machine.ts) and once with the named preset the README and the issue name (e.g. q35-amd).
 *
 * Compared facts: the verdict (`ready`), the problems as CODE/severity (sorted), and the kernel facts the
 * verdict is made from (IOMMU active, unit and group counts, default domain, DMA policy, interrupt remapping,
 * firmware table). Problems the doctor derives from /proc/cpuinfo (CPU_PROBLEMS) are set aside on both sides
 * and named in a note: the lab's guest runs on QEMU's virtual CPU (flag `hypervisor`), the simulated machine
 * describes a host CPU, and neither kernel has a say in them.
 */
import { readFileSync } from "node:fs";
import { loadCli } from "./dma-guest.js";
import { at } from "./json-path.js";
import type { Report } from "./report.js";

/** Problems computed from the CPU's flags (src/host/status.ts), not from the kernel or its IOMMU. */
export const CPU_PROBLEMS = new Set(["RUNNING_IN_VM", "CPU_NO_VIRTUALIZATION", "KVM_WITHOUT_CPU_FLAG"]);

const KERNEL_FACTS = ["iommuActive", "unitCount", "groupCount", "defaultDomain", "dmaPolicy", "interruptRemapping"];


/**
 * The compared facts of one `iommu status --json` document, and the CPU problems set aside. `sameMachine`: the
 * group count is a fact of the machine's devices too, so it is compared only against the machine built from the
 * capture, not against a preset with other devices.
 */
export function statusFacts(status: unknown, sameMachine = true): { facts: string[]; setAside: string[] } {
  const list = at(status, "problems");
  const problems = Array.isArray(list) ? list.map((p) => `${String(at(p, "code"))}/${String(at(p, "severity"))}`) : [];
  const setAside = problems.filter((p) => CPU_PROBLEMS.has(p.split("/")[0] ?? ""));
  const kept = problems.filter((p) => !setAside.includes(p)).sort();
  return {
    facts: [
      `ready: ${JSON.stringify(at(status, "ready"))}`,
      `problems: ${kept.join(", ") || "none"}`,
      `platform.firmwareTable: ${JSON.stringify(at(status, "platform.firmwareTable"))}`,
      ...KERNEL_FACTS.filter((k) => sameMachine || k !== "groupCount").map((k) => `kernel.${k}: ${JSON.stringify(at(status, `kernel.${k}`))}`),
    ],
    setAside,
  };
}

export interface StatusTotals {
  facts: number;
  differing: number;
}

/**
 * Compares the guest's `iommu status --json` (file) with `iommu status --sim SIM --sim-cmdline CMDLINE --json`,
 * one check per simulated machine. A missing or unparsable document on either side is a failure saying so.
 */
export async function compareStatus(
  report: Report, suite: string, guestStatusFile: string, sims: { label: string; machine: string; sameMachine: boolean }[], cmdline: string, t: StatusTotals,
): Promise<void> {
  let real: unknown;
  try {
    real = JSON.parse(readFileSync(guestStatusFile, "utf8"));
  } catch (e) {
    report.fail(suite, "status: the guest's `iommu status --json` is readable", `${guestStatusFile}: ${(e as Error).message}`);
    return;
  }
  const cli = await loadCli();
  if (cli === null) {
    report.fail(suite, "status: the built CLI loads", "dist/cli/main.js is missing or has no runCliReporting: run `npm run build`");
    return;
  }
  for (const sim of sims) {
    const r = statusFacts(real, sim.sameMachine);
    const what = `status: \`iommu status --sim ${sim.label} --sim-cmdline ${JSON.stringify(cmdline)}\``;
    const run = await cli(["status", "--sim", sim.machine, "--sim-cmdline", cmdline, "--json"]);
    let doc: unknown;
    try {
      doc = JSON.parse(run.out);
    } catch {
      report.fail(suite, `${what} gives a JSON report`, `exit ${run.code}: ${(run.err || run.out).trim().split("\n").slice(-3).join(" | ")}`);
      continue;
    }
    const s = statusFacts(doc, sim.sameMachine);
    const diffs: string[] = [];
    for (let i = 0; i < Math.max(r.facts.length, s.facts.length); i++) {
      if (r.facts[i] !== s.facts[i]) diffs.push(`real ${JSON.stringify(r.facts[i])}, simulated ${JSON.stringify(s.facts[i])}`);
    }
    t.facts += r.facts.length;
    t.differing += diffs.length;
    report.check(suite, `${what}: same verdict, problem codes and kernel facts (${r.facts.length}) as in the guest`, diffs.length === 0,
      `${diffs.length} differ: ${diffs.join("; ")}`);
    if (r.setAside.length + s.setAside.length > 0) {
      report.note(`${suite}: CPU problems not compared (${sim.label}): real ${r.setAside.join(", ") || "none"}, simulated ${s.setAside.join(", ") || "none"}`);
    }
  }
}
