/**
 * Shared shape of boot loaders whose configuration belongs to a tool (grubby, rpm-ostree, kernelstub): no file is
 * rewritten here; the change is one or more commands, and --undo runs the inverse commands.
 */
import type { SysfsView } from "../sysfs-view.js";
import { splitArgs } from "../bootargs-params.js";
import type { BootloaderId, BootloaderPlan, ParamEdit } from "./types.js";

export const PROC_CMDLINE = "/proc/cmdline";

/** Parameters of the running kernel (/proc/cmdline), for tools whose own state cannot be read from files. */
export function runningArgs(view: SysfsView): { source: string; args: string[] } {
  const text = view.readText(PROC_CMDLINE);
  return { source: PROC_CMDLINE, args: text === null ? [] : splitArgs(text) };
}

export function commandPlan(
  id: BootloaderId,
  name: string,
  evidence: string[],
  current: { source: string; args: string[] },
  commands: string[][],
  undoCommands: string[][],
  notes: string[] = [],
): BootloaderPlan {
  return {
    id,
    name,
    evidence,
    argsSource: current.source,
    currentArgs: current.args,
    fileEdits: [],
    commands,
    undoCommands,
    regenerate: null,
    notes,
  };
}

export const isEmptyEdit = (e: ParamEdit) => e.add.length === 0 && e.remove.length === 0;
