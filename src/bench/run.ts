/** Runs benchmark cases and renders their results: table, JSON, the IOVA plot, and the README section. */
import { machineInfo, renderTable, type BenchCase, type BenchOptions, type CaseResult } from "./harness.js";
import { lineChart } from "./svg.js";
import { iovaCase } from "./cases/iova.js";
import { translateHitCase, translateWalkCase } from "./cases/translate.js";
import { dumpWalkCase } from "./cases/dump-walk.js";
import { dmaMapSgCase, scaleCase } from "./cases/dma.js";
import { amdTranslateHitCase, amdTranslateWalkCase } from "./cases/amdvi-translate.js";

export const benchCases: BenchCase[] = [translateHitCase, translateWalkCase, iovaCase, dmaMapSgCase, dumpWalkCase, scaleCase, amdTranslateHitCase, amdTranslateWalkCase];

export interface BenchReport {
  machine: { cpu: string; cores: number; node: string };
  cases: CaseResult[];
}

export async function runBench(names: string[], opts: BenchOptions): Promise<BenchReport> {
  const chosen = names.length === 0 ? benchCases : benchCases.filter((c) => names.includes(c.name));
  const cases: CaseResult[] = [];
  for (const c of chosen) {
    const t0 = Date.now();
    opts.progress(`${c.name}: ${c.summary}`);
    cases.push(...(await c.run(opts)));
    opts.progress(`${c.name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  return { machine: machineInfo(), cases };
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

/** Replaces the marked benchmark section of a README with this run's table. */
export function updateReadme(readme: string, report: BenchReport, svgPath: string | null): string {
  const i = readme.indexOf(README_START);
  const j = readme.indexOf(README_END);
  if (i < 0 || j < i) return readme;
  const m = report.machine;
  const body = [
    README_START,
    "",
    `Measured by \`npm run bench\` on ${m.cpu} (${m.cores} cores), Node.js ${m.node}. ns/op unless noted; ratio = median / baseline median.`,
    "",
    "```",
    renderTable(report.cases).trimEnd(),
    "```",
    ...(svgPath ? ["", `![IOVA cost against live allocations](${svgPath})`] : []),
    "",
    README_END,
  ].join("\n");
  return readme.slice(0, i) + body + readme.slice(j + README_END.length);
}
