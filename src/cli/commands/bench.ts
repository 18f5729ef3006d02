/** `iommu bench`: the benchmarks, each next to a baseline measured in the same run. */
import { readFileSync } from "node:fs";
import { dirname, relative } from "node:path";
import { IommuError, fsError } from "../../core/errors.js";
import { atomicWriteFile } from "../../core/fs.js";
import { renderExtras, renderTable } from "../../bench/harness.js";
import { benchCases, iovaPlot, runBench, updateReadme } from "../../bench/run.js";
import { flag, progress, str, toJson, type Command } from "../command.js";

export const benchCommand: Command = {
  name: "bench",
  summary: "run the benchmarks (each with a baseline measured in the same run)",
  help: `Usage: iommu bench [CASE ...] [--json] [--quick] [-o FILE] [--svg FILE] [--readme FILE [--note TEXT]]

Runs each case in a process of its own, after a warm-up, and prints median, p10, p90 (ns of CPU time per op), ops/s, the ratio to
a baseline measured in the same process on the same data (samples alternating with the case's), and the peak
resident memory of the case's process. Targets are reported, never asserted.

Cases:
${benchCases.map((c) => `  ${c.name.padEnd(16)} ${c.summary}`).join("\n")}

Options:
  -j, --json         print the JSON report: {machine, cases: [{name, unit, median, p10, p90, opsPerSec, baseline, ratio}]}
      --quick        a few iterations only (proves the cases run; numbers are meaningless)
  -o, --output FILE  also write the JSON report to FILE
      --svg FILE     write the IOVA cost plot (SVG)
      --readme FILE  replace the README section between <!-- bench:start --> and <!-- bench:end --> with this run
      --note TEXT    what the README line should say about the machine besides CPU and cores ("shared")

Examples:
  iommu bench iova
  npm run bench
`,
  options: {
    json: { type: "boolean", short: "j" },
    quick: { type: "boolean" },
    output: { type: "string", short: "o" },
    svg: { type: "string" },
    readme: { type: "string" },
    note: { type: "string" },
  },
  positionals: [0, 16],
  async run(args, ctx) {
    for (const n of args.positionals) {
      if (!benchCases.some((c) => c.name === n)) {
        throw new IommuError("USAGE", `unknown benchmark case '${n}'`, { hint: `cases: ${benchCases.map((c) => c.name).join(", ")}` });
      }
    }
    const p = progress(ctx, args);
    const report = await runBench(args.positionals, { quick: flag(args, "quick"), progress: (l) => p.show(`bench: ${l}`) });
    p.done();
    const out = str(args, "output");
    if (out) atomicWriteFile(out, toJson(report), { mkdirs: true });
    const svg = str(args, "svg");
    const plot = iovaPlot(report);
    if (svg && plot) atomicWriteFile(svg, plot, { mkdirs: true });
    const readme = str(args, "readme");
    if (readme) {
      let text: string;
      try {
        text = readFileSync(readme, "utf8");
      } catch (e) {
        throw fsError(e, readme);
      }
      atomicWriteFile(readme, updateReadme(text, report, svg && plot ? relative(dirname(readme), svg) : null, str(args, "note")));
    }
    ctx.out(flag(args, "json") ? toJson(report) : `${renderTable(report.cases)}\n${renderExtras(report.cases)}`);
    return 0;
  },
};
