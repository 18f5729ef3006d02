/**
 * Runs benchmark cases, each in a process of its own, and renders their results: table, JSON, the IOVA plot,
 * and the README section.
 */
import { fork } from "node:child_process";
import { loadavg } from "node:os";
import { machineInfo, renderExtras, renderTable, type BenchCase, type BenchOptions, type CaseResult, type MachineInfo } from "./harness.js";
import { lineChart } from "./svg.js";
import { benchCases } from "./registry.js";
import { childModulePath, type ChildMessage } from "./child.js";

export { benchCases };

export interface BenchReport {
  machine: MachineInfo;
  cases: CaseResult[];
}

export async function runBench(names: string[], opts: BenchOptions): Promise<BenchReport> {
  const chosen = names.length === 0 ? benchCases : benchCases.filter((c) => names.includes(c.name));
  const loadAtStart = loadavg()[0] ?? 0;
  const cases: CaseResult[] = [];
  for (const c of chosen) {
    const t0 = Date.now();
    opts.progress(`${c.name}: ${c.summary}`);
    for (const part of c.parts ?? [undefined]) cases.push(...(await runInChild(c, part, opts)));
    opts.progress(`${c.name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  return { machine: machineInfo(loadAtStart), cases };
}

/** Runs one case (or one part of it) in a fresh process; its rows carry that process's peak resident memory. */
function runInChild(c: BenchCase, part: string | undefined, opts: BenchOptions): Promise<CaseResult[]> {
  // The child runs the way this process does (with a TypeScript loader under the tests), minus test flags.
  const execArgv = process.execArgv.filter((a) => !a.startsWith("--test") && !a.startsWith("--cpu-prof") && !a.startsWith("--inspect"));
  const child = fork(childModulePath, [c.name, part ?? "", opts.quick ? "--quick" : ""], { execArgv, stdio: ["ignore", "pipe", "inherit", "ipc"] });
  child.stdout?.on("data", (d: Buffer) => {
    for (const line of d.toString("utf8").split("\n")) if (line.trim() !== "") opts.progress(`${c.name}: ${line}`);
  });
  return new Promise((resolve, reject) => {
    let outcome: ChildMessage | null = null;
    child.on("message", (m: ChildMessage) => {
      if (m.kind === "progress") opts.progress(m.line);
      else outcome = m;
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      const o = outcome as ChildMessage | null;
      if (o?.kind === "done") resolve(o.cases.map((r) => ({ ...r, peakRssBytes: o.peakRssBytes })));
      else if (o?.kind === "failed") reject(new Error(`benchmark ${c.name}${part ? `@${part}` : ""} failed: ${o.message}`));
      else reject(new Error(`benchmark ${c.name}${part ? `@${part}` : ""} ended (${signal ?? `exit ${code}`}) without a result`));
    });
  });
}

export function iovaPlot(report: BenchReport): string | null {
  const pts = report.cases.filter((c) => c.name.startsWith("iova@"));
  if (pts.length < 2) return null;
  const live = (c: CaseResult) => Number(c.extra?.live ?? 0);
  return lineChart("IOVA alloc+free cost against live allocations", "live allocations", "ns per alloc+free pair", [
    { name: "with per-CPU range caches", color: "#1f77b4", points: pts.map((c) => ({ x: live(c), y: c.median })) },
    {
      name: "tree only (baseline)",
      color: "#d62728",
      points: pts.filter((c) => c.baseline).map((c) => ({ x: live(c), y: c.baseline!.median })),
    },
  ]);
}

export const README_START = "<!-- bench:start -->";
export const README_END = "<!-- bench:end -->";

/**
 * Replaces the marked benchmark section of a README with this run's table. `note` describes the machine beyond
 * what the report knows (e.g. "shared with other work").
 */
export function updateReadme(readme: string, report: BenchReport, svgPath: string | null, note?: string): string {
  const i = readme.indexOf(README_START);
  const j = readme.indexOf(README_END);
  if (i < 0 || j < i) return readme;
  const m = report.machine;
  const load = `load average ${m.loadAverage[0].toFixed(1)} at the start, ${m.loadAverage[1].toFixed(1)} at the end`;
  const body = [
    README_START,
    "",
    `Measured by \`npm run bench\` on ${m.cpu} (${m.cores} cores${note ? `, ${note}` : ""}; ${load}), Node.js ${m.node}. Times are CPU time of the process, ns/op unless noted; ratio = median of the ratios of neighbouring samples of the case and its baseline (taken alternately).`,
    "",
    "```",
    renderTable(report.cases).trimEnd(),
    "```",
    "",
    "```",
    renderExtras(report.cases).trimEnd(),
    "```",
    ...(svgPath ? ["", `![IOVA cost against live allocations](${svgPath})`] : []),
    "",
    README_END,
  ].join("\n");
  return readme.slice(0, i) + body + readme.slice(j + README_END.length);
}
