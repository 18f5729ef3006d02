/**
 * Scenarios: device assignment on the simulated machine, and the attacks an IOMMU stops (Wojtczuk and
 * Rutkowska, "Following the White Rabbit: Software attacks against Intel VT-d technology", 2011; DMA that
 * outlives its owner). Each scenario runs twice or more on a freshly booted host, once with the protection and
 * once without (or with the hypervisor making the mistake), and every number in the report is read back from
 * the simulation: the requests devices issued, what the IOMMU translated or blocked, the fault records the host
 * kernel read (VT-d fault recording registers, AMD-Vi event log), the interrupts the router delivered, and the bytes in memory.
 *
 *   passthrough    a NIC in a VM does DMA with guest-physical addresses; the data lands in the VM's host pages
 *   isolation      a device in VM1 targets VM2's and the host's memory
 *   msi-injection  a device writes arbitrary interrupt messages (0xFEEx_xxxx)
 *   deferred-dma   a device reassigned from a destroyed VM issues a delayed write
 *   lazy-window    memory taken from a VM while the IOTLB still caches its translation
 *
 * and, on the host without VMs (HOST_SCENARIOS, each on its own default machine):
 *
 *   sva            a device shares processes' address spaces through PASIDs; stray PASIDs; a PASID outliving its process
 *
 * One file per scenario under scenarios/; what they share (the typed result, the run harness) is scenarios/run.ts.
 */
import { IommuError } from "../core/errors.js";
import { formatLine } from "../os/log.js";
import { deferredRun } from "./scenarios/deferred-dma.js";
import { isolationRun } from "./scenarios/isolation.js";
import { lazyRun } from "./scenarios/lazy-window.js";
import { msiRun, msiVariants } from "./scenarios/msi-injection.js";
import { passthroughRun } from "./scenarios/passthrough.js";
import { svaRun } from "./scenarios/sva.js";
import { machineIommuKind, type Scenario, type ScenarioOptions, type ScenarioReport } from "./scenarios/run.js";

export type { ScenarioFault, ScenarioInterrupt, ScenarioOptions, ScenarioReport, ScenarioRun } from "./scenarios/run.js";

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "passthrough",
    title: "A NIC in a VM does DMA with guest-physical addresses",
    summary: "the data lands in the VM's host pages; interrupts reach the right vCPU",
    run: (o) => [passthroughRun(o, true), passthroughRun(o, false)],
  },
  {
    name: "isolation",
    title: "A device assigned to vm1 targets vm2's and the host's memory",
    summary: "blocked, and the fault records name the device",
    run: (o) => [isolationRun(o, true), isolationRun(o, false)],
  },
  {
    name: "msi-injection",
    title: "A device writes interrupt messages of its choosing (0xFEEx_xxxx)",
    summary: "without interrupt remapping the host and other VMs receive them",
    run: (o) => msiVariants(machineIommuKind(o.machine)).map((v) => msiRun(o, v)),
  },
  {
    name: "deferred-dma",
    title: "A device reassigned from a destroyed VM issues a delayed write",
    summary: "blocked when teardown invalidates before pages are reused",
    run: (o) => [deferredRun(o, true), deferredRun(o, false)],
  },
  {
    name: "lazy-window",
    title: "Memory taken from a VM while the IOTLB still caches it",
    summary: "lazy unmap leaves a measurable window; strict leaves none",
    run: (o) => [lazyRun(o, "strict"), lazyRun(o, "lazy")],
  },
];

/** Scenarios of the host alone (no VM), each needing a machine of its own: run with that machine by default. */
export const HOST_SCENARIOS: readonly (Scenario & { machine: string })[] = [
  {
    name: "sva",
    title: "A device shares processes' address spaces through PASIDs (VT-d scalable mode)",
    summary: "one address, one process per PASID; stray PASIDs blocked; a write with an exited process's PASID blocked only when unbind invalidates",
    machine: "q35-sva",
    run: (o) => [svaRun(o, true), svaRun(o, false)],
  },
];

/** The VM scenarios (every machine with q35's layout runs them). */
export const SCENARIO_NAMES = SCENARIOS.map((s) => s.name);
/** Every scenario `iommu scenario` runs. */
export const ALL_SCENARIO_NAMES = [...SCENARIO_NAMES, ...HOST_SCENARIOS.map((s) => s.name)];

export function runScenario(name: string, opts: ScenarioOptions = {}): ScenarioReport {
  const s = SCENARIOS.find((x) => x.name === name) ?? HOST_SCENARIOS.find((x) => x.name === name);
  if (s === undefined) {
    throw new IommuError("UNKNOWN_SCENARIO", `no scenario named '${name}'`, { hint: `scenarios: ${ALL_SCENARIO_NAMES.join(", ")}` });
  }
  return { name: s.name, title: s.title, runs: s.run(opts) };
}

function time(ns: number): string {
  return formatLine({ ns, level: 6, text: "" }).trimEnd();
}

/** The story as text: each run's steps, requests, faults, interrupts and verdict, with the numbers. */
export function renderScenario(rep: ScenarioReport): string {
  const out: string[] = [`${rep.name}: ${rep.title}`, ""];
  rep.runs.forEach((run, i) => {
    out.push(`Run ${i + 1}: ${run.label}`);
    for (const s of run.steps) out.push(`  ${time(s.ns)} ${s.text}`);
    if (run.requests.length > 0) {
      out.push("  requests:");
      for (const q of run.requests) {
        const where =
          q.outcome === "blocked"
            ? `BLOCKED fault ${q.fault?.reason} ${q.fault?.name}${q.fault?.recorded === false ? " (not recorded)" : ""}`
            : q.interrupt !== undefined
              ? q.interrupt.deliveredTo.map((s) => s.split(" -> ")[1]).join("; ") || "delivered nowhere"
              : q.outcome === "unsupported"
                ? "unsupported request"
                : q.translations.map((t) => `${t.hpa} (${t.landed})`).join(", ");
        const data = q.data !== undefined ? ` data ${q.data}` : ` ${q.length} B`;
        const prefix = q.pasid === undefined ? "" : ` PASID ${q.pasid}${q.privileged === true ? " (privileged)" : ""}`;
        out.push(`    ${q.device}${prefix} ${q.op.padEnd(5)} ${q.addr.padStart(12)}${data}  ${q.purpose}  -> ${where}`);
      }
    }
    if (run.faults.length > 0) {
      const amd = run.faults.some((f) => f.origin === "amdvi-event");
      out.push(amd ? "  faults the host read from the AMD-Vi event log:" : "  faults the host read from the fault recording registers:");
      for (const f of run.faults) {
        // A VT-d interrupt-remapping fault record holds the table index; an AMD-Vi event the message address.
        const what = f.type === "INTR-REMAP" && f.origin === "vtd-fault-record" ? "index" : "addr";
        const why = f.origin === "amdvi-event" ? `event ${f.reason} ${f.name}` : `reason ${f.reason} ${f.name}`;
        const pasid = f.pasid === undefined ? "" : ` PASID ${f.pasid}`;
        out.push(`    [${f.type}] device ${f.source}${pasid} ${what} ${f.addr}: ${why} (${f.text})`);
      }
    }
    const fr = run.faultRecording;
    if (fr.overflowed + fr.collapsed > 0) out.push(`  fault recording: ${fr.recorded} recorded, ${fr.overflowed} overflowed, ${fr.collapsed} collapsed`);
    if (run.interrupts.length > 0) {
      out.push("  interrupts delivered:");
      for (const d of run.interrupts) out.push(`    ${d.source} ${d.posted ? "posted" : d.remapped ? "remapped" : "not remapped"}: vector ${d.vector} on CPU ${d.cpu} -> ${d.to}`);
    }
    out.push("  numbers:");
    for (const [k, v] of Object.entries(run.numbers)) out.push(`    ${k}: ${String(v)}`);
    out.push(`  verdict: ${run.verdict.protected ? "PROTECTED" : "NOT PROTECTED"} — ${run.verdict.summary}`);
    out.push("");
  });
  return out.join("\n");
}

/** One line per scenario, for `iommu scenario` without a name. */
export function listScenarios(): string {
  const all = [...SCENARIOS, ...HOST_SCENARIOS];
  const w = Math.max(...all.map((s) => s.name.length));
  const line = (s: Scenario, machine?: string): string => `  ${s.name.padEnd(w)}  ${s.title}: ${s.summary}${machine === undefined ? "" : ` (default machine ${machine})`}`;
  return [...SCENARIOS.map((s) => line(s)), ...HOST_SCENARIOS.map((s) => line(s, s.machine))].join("\n") + "\n";
}


