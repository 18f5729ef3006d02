/**
 * Benchmark harness. A case measures an operation in batches ("samples") after a warm-up and reports ns/op
 * (of CPU time: see cpuNs) as median, p10 and p90 over the samples, next to a baseline measured in the same
 * process on the same data.
 * Where a case compares, the samples of the operation and its baseline alternate (`measureInterleaved`), so a
 * machine shared with other work slows both alike and the ratio stays honest. Each case runs in a process of
 * its own (see run.ts), which also gives each its own peak resident memory.
 * Nothing here asserts a time: targets are reported, and the reader judges.
 */
import { cpus, loadavg } from "node:os";
import { seededRandom } from "../core/random.js";

export interface Stats {
  median: number;
  p10: number;
  p90: number;
  opsPerSec: number;
}

export interface CaseResult extends Stats {
  name: string;
  unit: "ns/op" | "bytes" | "ms";
  baseline: { name: string; median: number } | null;
  ratio: number | null;
  /** What the case aims for, as text ("≤ 25 ns/op"), and whether this run met it. */
  target?: string;
  met?: boolean;
  /** Case-specific numbers (invalidations per unmap, live allocations, …). */
  extra?: Record<string, number | string>;
  /** Peak resident memory of the process that ran the case (each case runs in its own), bytes. */
  peakRssBytes?: number;
}

export interface BenchOptions {
  /** Few iterations: the smoke test in `npm test` uses this to prove each case runs. */
  quick: boolean;
  /** Progress lines go here (stderr in the CLI). */
  progress(line: string): void;
}

export interface BenchCase {
  name: string;
  summary: string;
  /** Parts measured in processes of their own (e.g. a memory measurement apart from a timing); default one. */
  parts?: readonly string[];
  run(opts: BenchOptions, part?: string): CaseResult[] | Promise<CaseResult[]>;
}

/**
 * The benchmark clock: CPU time this process has used, in ns (user + system, all threads). On a machine shared
 * with other work, the time a process waits for a core is not the cost of what it runs, and wall time counts it;
 * CPU time does not. (On an idle machine the two agree, but for work the garbage collector does on its own
 * threads, which CPU time counts too.)
 */
export function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.round((p / 100) * (sorted.length - 1))));
  return sorted[idx]!;
}

export function stats(samplesNsPerOp: number[]): Stats {
  const s = [...samplesNsPerOp].sort((a, b) => a - b);
  const median = percentile(s, 50);
  return { median, p10: percentile(s, 10), p90: percentile(s, 90), opsPerSec: median > 0 ? 1e9 / median : 0 };
}

/**
 * Times `batch(n)` (which must perform n operations) `samples` times after `warmup` untimed calls; returns ns/op
 * per sample. The batch returns a value that is accumulated into a sink so the work cannot be optimized away.
 */
export function measure(batch: (n: number) => number, opsPerSample: number, samples: number, warmup = 2): number[] {
  let sink = 0;
  for (let i = 0; i < warmup; i++) sink += batch(opsPerSample);
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = cpuNs();
    sink += batch(opsPerSample);
    out.push((cpuNs() - t0) / opsPerSample);
  }
  if (sink === 0.5) console.log(""); // keeps `sink` observable
  return out;
}

/**
 * Times several batch functions on alternating samples: sample i of every function runs before sample i + 1 of
 * any, after `warmup` untimed rounds. Returns ns/op per sample for each function, in the order given.
 */
export function measureInterleaved(batches: ((n: number) => number)[], opsPerSample: number, samples: number, warmup = 2): number[][] {
  let sink = 0;
  for (let i = 0; i < warmup; i++) for (const b of batches) sink += b(opsPerSample);
  const out = batches.map((): number[] => []);
  for (let i = 0; i < samples; i++) {
    batches.forEach((b, k) => {
      const t0 = cpuNs();
      sink += b(opsPerSample);
      out[k]!.push((cpuNs() - t0) / opsPerSample);
    });
  }
  if (sink === 0.5) console.log(""); // keeps `sink` observable
  return out;
}

/**
 * A row. The ratio to the baseline: for samples taken alternately (measureInterleaved, same count), the median
 * of the ratios of neighbouring samples — each pair ran under the same load, so a machine busy with other work
 * moves both; otherwise median over baseline median.
 */
export function result(
  name: string,
  samples: number[],
  baseline: { name: string; samples: number[]; interleaved?: boolean } | null,
  more: Partial<CaseResult> = {},
): CaseResult {
  const s = stats(samples);
  const b = baseline ? stats(baseline.samples) : null;
  let ratio = b && b.median > 0 ? s.median / b.median : null;
  if (baseline?.interleaved === true && baseline.samples.length === samples.length && samples.length > 0) {
    ratio = stats(samples.map((x, i) => x / (baseline.samples[i] ?? NaN))).median;
  }
  return {
    name,
    unit: "ns/op",
    ...s,
    baseline: b && baseline ? { name: baseline.name, median: b.median } : null,
    ratio,
    ...more,
  };
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  node: string;
  /** One-minute load average when the run started and when it ended (other work on the same cores). */
  loadAverage: [number, number];
}

/** The machine, with the load average at the start of the run given and now. */
export function machineInfo(loadAtStart = loadavg()[0] ?? 0): MachineInfo {
  const c = cpus();
  return { cpu: c[0]?.model ?? "unknown", cores: c.length, node: process.version, loadAverage: [loadAtStart, loadavg()[0] ?? 0] };
}

/** Benchmark data comes from a seeded generator, the same in every run. */
export const rng = seededRandom;

function fmt(n: number | null | undefined, digits = 1): string {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  if (Math.abs(n) >= 1e6) return n.toExponential(2);
  return n.toFixed(digits);
}

function fmtValue(n: number, unit: CaseResult["unit"]): string {
  return unit === "bytes" ? `${Math.round(n / 2 ** 20)} MiB` : fmt(n);
}

/** Case-specific numbers, one line per row that has any: what the table has no column for. */
export function renderExtras(results: CaseResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    const e = Object.entries(r.extra ?? {});
    if (e.length === 0) continue;
    lines.push(`${r.name}: ${e.map(([k, v]) => `${k} ${typeof v === "number" ? fmtExtra(v) : v}`).join(", ")}`);
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

function fmtExtra(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

/** The table `npm run bench` prints. */
export function renderTable(results: CaseResult[]): string {
  const rows = [["case", "unit", "median", "p10", "p90", "ops/s", "baseline", "ratio", "target", "peak RSS"]];
  for (const r of results) {
    rows.push([
      r.name,
      r.unit,
      fmtValue(r.median, r.unit),
      fmtValue(r.p10, r.unit),
      fmtValue(r.p90, r.unit),
      r.unit === "ns/op" ? fmt(r.opsPerSec, 0) : "–",
      r.baseline ? `${r.baseline.name} ${fmtValue(r.baseline.median, r.unit)}` : "–",
      r.ratio === null ? "–" : fmt(r.ratio, 2),
      r.target ? `${r.target} ${r.met === undefined ? "" : r.met ? "met" : "MISSED"}`.trim() : "",
      r.peakRssBytes === undefined ? "–" : `${Math.round(r.peakRssBytes / 2 ** 20)} MiB`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n") + "\n";
}
