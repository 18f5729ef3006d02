/**
 * The process one benchmark case runs in. `runBench` forks this module with the case name, the part and
 * `--quick`; the child runs the case, then sends its results and its own peak resident memory, so each case's
 * memory is its own and no case runs on a heap another left behind.
 */
import { fileURLToPath } from "node:url";
import type { CaseResult } from "./harness.js";
import { benchCases } from "./registry.js";

/** Where runBench forks: this module. */
export const childModulePath = fileURLToPath(import.meta.url);

/** Messages from the child to runBench. */
export type ChildMessage =
  | { kind: "progress"; line: string }
  | { kind: "done"; cases: CaseResult[]; peakRssBytes: number }
  | { kind: "failed"; message: string };

function send(m: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) resolve();
    else process.send(m, undefined, {}, () => resolve());
  });
}

async function main(argv: string[]): Promise<void> {
  const [name, part, flag] = argv;
  const c = benchCases.find((x) => x.name === name);
  try {
    if (c === undefined) throw new Error(`unknown benchmark case '${name ?? ""}'`);
    const opts = { quick: flag === "--quick", progress: (line: string) => void send({ kind: "progress", line }) };
    const cases = await c.run(opts, part === "" ? undefined : part);
    await send({ kind: "done", cases, peakRssBytes: process.resourceUsage().maxRSS * 1024 });
  } catch (e) {
    await send({ kind: "failed", message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    process.exitCode = 1;
  }
  process.disconnect?.();
}

if (process.send !== undefined && process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  void main(process.argv.slice(2));
}
