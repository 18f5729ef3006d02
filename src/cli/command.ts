/**
 * The CLI frame. A command declares its name, one-line summary, help text (with examples), options and a run
 * function that returns an exit code. Commands write through `ctx.out` / `ctx.err`; only main.ts touches the
 * process. That keeps every command testable: runCli(["acpi", "decode", f, "--json"]) returns code and output.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { IommuError } from "../core/errors.js";
import { normalizeOptions, OptionProblem } from "./options.js";

export interface Output {
  out(text: string): void;
  err(text: string): void;
  /** Raw bytes to standard output (`-o -` of binary files); absent where output is text only. */
  outBytes?(bytes: Uint8Array): void;
  /**
   * A transient status line on the terminal (standard error is a TTY), rewritten in place; "" clears it. Absent
   * when standard error is not a terminal, so piped and captured output never holds progress.
   */
  status?(text: string): void;
}

export interface Context extends Output {
  /** --debug: stack traces on errors, extra diagnostics. */
  debug: boolean;
  /** Process environment as seen by the command (tests substitute their own). */
  env: Record<string, string | undefined>;
}

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

export interface Command {
  name: string;
  summary: string;
  /** Full help: usage, options, examples. Printed by `iommu NAME --help`. */
  help: string;
  /** Sub-commands (e.g. `iommu acpi decode`). A command has either `subcommands` or `run`. */
  subcommands?: Command[];
  options?: OptionSpec;
  /** Positional arguments allowed: [min, max]. */
  positionals?: [number, number];
  run?(args: ParsedArgs, ctx: Context): Promise<number> | number;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

export function usageError(message: string, commandPath: string): IommuError {
  return new IommuError("USAGE", message, { hint: `see 'iommu ${commandPath} --help'` });
}

/** Parses argv against a command's options; unknown options and wrong positional counts are USAGE errors. */
export function parseCommandArgs(cmd: Command, argv: string[], path: string): ParsedArgs {
  let parsed: ParsedArgs;
  let args: string[];
  try {
    args = normalizeOptions(argv, cmd.options ?? {});
  } catch (e) {
    if (!(e instanceof OptionProblem)) throw e;
    throw new IommuError("USAGE", e.message, {
      hint: e.suggestion === undefined ? `see 'iommu ${path} --help'` : `did you mean '${e.suggestion}'? (see 'iommu ${path} --help')`,
    });
  }
  try {
    parsed = parseArgs({
      args,
      options: { ...(cmd.options ?? {}) },
      allowPositionals: true,
      strict: true,
    }) as ParsedArgs;
  } catch (e) {
    throw usageError((e as Error).message.split("\n")[0] ?? "bad arguments", path);
  }
  const [min, max] = cmd.positionals ?? [0, 0];
  const n = parsed.positionals.length;
  if (n < min) throw usageError(`missing argument (expected ${min === max ? min : `at least ${min}`})`, path);
  if (n > max) throw usageError(`unexpected argument '${parsed.positionals[max] ?? ""}'`, path);
  return parsed;
}

export function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === "string" ? v : undefined;
}

export function flag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

/**
 * Progress for a long step: a function that shows a line on the terminal, and `done` to clear it. Nothing is shown
 * with --json or when standard error is not a terminal.
 */
export function progress(ctx: Output, args: ParsedArgs): { show: (text: string) => void; done: () => void } {
  const status = flag(args, "json") ? undefined : ctx.status?.bind(ctx);
  let shown = false;
  return {
    show: (text) => {
      if (status === undefined) return;
      status(text);
      shown = true;
    },
    done: () => {
      if (shown && status !== undefined) status("");
      shown = false;
    },
  };
}

/** Pretty JSON with a trailing newline; bigint values become "0x…" strings. */
export function toJson(value: unknown): string {
  return (
    JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? "0x" + v.toString(16) : v), 2) + "\n"
  );
}

export const JSON_OPTION: OptionSpec = { json: { type: "boolean", short: "j" } };
