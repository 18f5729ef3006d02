/**
 * Option checking before Node's parseArgs: unknown options get one clear line with the closest known option, a
 * string option's value may start with '-' (`--iova -5` reaches the command, which says why -5 is not an
 * address), and a missing value is named.
 */
import { closest } from "../core/words.js";
import type { ParseArgsConfig } from "node:util";

type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

export class OptionProblem extends Error {
  constructor(
    message: string,
    readonly suggestion?: string,
  ) {
    super(message);
  }
}

/**
 * Checks argv against the options and returns it with values that start with '-' attached (`--iova=-5`), so
 * parseArgs takes them as values. Throws OptionProblem for an unknown option or a missing value.
 */
export function normalizeOptions(argv: readonly string[], options: OptionSpec): string[] {
  const names = Object.keys(options);
  const byShort = new Map(Object.entries(options).flatMap(([n, o]) => (o.short === undefined ? [] : [[o.short, n] as const])));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === "--") {
      out.push(...argv.slice(i));
      break;
    }
    let name: string | undefined;
    let shown = t;
    if (t.startsWith("--")) {
      const n = t.slice(2).split("=")[0]!;
      if (!(n in options)) {
        const near = closest(n, names);
        throw new OptionProblem(`unknown option '--${n}'`, near === undefined ? undefined : `--${near}`);
      }
      if (t.includes("=")) {
        out.push(t);
        continue;
      }
      name = n;
    } else if (t.startsWith("-") && t.length > 1 && !/^-\d/.test(t)) {
      for (const c of t.slice(1)) {
        if (!byShort.has(c)) {
          // One letter is close to every letter: suggest only the same letter in the other case.
          const near = [...byShort.keys()].find((k) => k.toLowerCase() === c.toLowerCase());
          throw new OptionProblem(`unknown option '-${c}'${t.length > 2 ? ` (in '${t}')` : ""}`, near === undefined ? undefined : `-${near}`);
        }
      }
      if (t.length !== 2) {
        out.push(t);
        continue;
      }
      name = byShort.get(t[1]!);
      shown = t;
    } else {
      out.push(t);
      continue;
    }
    const spec = options[name!]!;
    if (spec.type !== "string") {
      out.push(t);
      continue;
    }
    const v = argv[i + 1];
    if (v === undefined) throw new OptionProblem(`option '${shown}' needs a value`);
    out.push(`--${name}=${v}`);
    i++;
  }
  return out;
}
