/** The `iommu` command: dispatch, help, version, and the one place errors are rendered and exit codes set. */
import { IommuError } from "../core/errors.js";
import { parseCommandArgs, type Command, type Context } from "./command.js";
import { commandSections, commands } from "./commands/index.js";
import { version } from "./version.js";

export { version };

function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const sections = commandSections
    .map((s) => `${s.title}:\n${s.commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}`)
    .join("\n\n");
  return `iommu — the IOMMU made real: firmware tables, a VT-d model, and a doctor for Linux hosts

Usage: iommu <command> [options]

${sections}

Global options:
  -h, --help     show help for iommu or a command
  -V, --version  print the version
      --debug    print stack traces and internal detail on errors

Examples:
  iommu status                          is this host ready to give a PCI device to a VM?
  iommu groups -k                       IOMMU groups with their devices and drivers
  iommu check 0000:01:00.0              can this device be passed through, and what to do next
  iommu tour                            what an IOMMU changes, measured on a simulated machine
  iommu status --sim q35 --sim-cmdline "intel_iommu=on intremap=off"
  iommu acpi decode /sys/firmware/acpi/tables/DMAR

Run 'iommu <command> --help' for a command's options and examples.
`;
}

function subHelp(cmd: Command, path: string): string {
  const subs = cmd.subcommands ?? [];
  const width = Math.max(0, ...subs.map((c) => c.name.length));
  const list = subs.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n");
  return `${cmd.help.trimEnd()}\n${subs.length ? `\nCommands:\n${list}\n\nRun 'iommu ${path} <command> --help' for details.\n` : ""}`;
}

/** Runs the CLI with explicit output sinks; returns the exit code. */
export async function runCli(argv: string[], ctx: Context): Promise<number> {
  const args = argv.filter((a) => a !== "--debug");
  if (args.length === 0 || args[0] === "--help" || args[0] === "-h" || args[0] === "help") {
    ctx.out(topHelp());
    return args.length === 0 ? 2 : 0;
  }
  if (args[0] === "--version" || args[0] === "-V") {
    ctx.out(`iommu-kit ${version()}\n`);
    return 0;
  }
  let list = commands;
  let path = "";
  let i = 0;
  for (;;) {
    const name = args[i];
    const cmd = list.find((c) => c.name === name);
    if (cmd === undefined) {
      const where = path ? `'iommu ${path}'` : "iommu";
      throw new IommuError("USAGE", `unknown command '${name ?? ""}' for ${where}`, {
        hint: `run 'iommu ${path ? path + " " : ""}--help' to list commands`,
      });
    }
    path = path ? `${path} ${cmd.name}` : cmd.name;
    i++;
    const rest = args.slice(i);
    if (rest.includes("--help") || rest.includes("-h")) {
      if (!cmd.subcommands || rest[0] === "--help" || rest[0] === "-h" || !cmd.subcommands.some((c) => c.name === rest[0])) {
        ctx.out(subHelp(cmd, path));
        return 0;
      }
    }
    if (cmd.subcommands) {
      if (rest.length === 0) {
        ctx.out(subHelp(cmd, path));
        return 2;
      }
      list = cmd.subcommands;
      continue;
    }
    const parsed = parseCommandArgs(cmd, rest, path);
    return await cmd.run!(parsed, ctx);
  }
}

/**
 * Runs the CLI and renders any error as one line (plus a hint), with a stack trace only in debug mode.
 * Returns the exit code: the command's own, the error's (2 for bad input), or 70 for an internal error.
 */
export async function runCliReporting(argv: string[], ctx: Context): Promise<number> {
  try {
    return await runCli(argv, ctx);
  } catch (e) {
    if (e instanceof IommuError) {
      ctx.err(`iommu: error: ${e.message} [${e.code}]\n`);
      if (e.hint) ctx.err(`hint: ${e.hint}\n`);
      if (ctx.debug && e.stack) ctx.err(e.stack + "\n");
      return e.exitCode;
    }
    const err = e as Error;
    ctx.err(`iommu: internal error: ${err?.message ?? String(e)}\n`);
    if (ctx.debug) ctx.err((err?.stack ?? "") + "\n");
    else ctx.err("hint: rerun with --debug for a stack trace, and report it\n");
    return 70;
  }
}

/**
 * Ends the process quietly when the reader of stdout goes away (`iommu tour | head -2`): what was asked for has
 * been read, there is nobody to tell otherwise. Exit status 141 is what a shell reports for SIGPIPE.
 */
function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(141);
    throw e;
  });
}

/** Process entry point. */
export async function main(argv: string[]): Promise<number> {
  quietOnClosedPipe(process.stdout);
  return runCliReporting(argv, {
    debug: argv.includes("--debug") || process.env.IOMMU_DEBUG === "1",
    env: process.env,
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    outBytes: (b) => void process.stdout.write(b),
    ...(process.stderr.isTTY ? { status: (t: string) => void process.stderr.write(`\r\x1b[K${t}`) } : {}),
  });
}
