/**
 * kernelstub (Pop!_OS): copies the kernel to the ESP and writes the systemd-boot entry itself, keeping its
 * options in /etc/kernelstub/configuration (JSON: "user" → "kernel_options"). Options are changed with
 * `kernelstub --add-options "…"` and `kernelstub --delete-options "…"`, which rewrite the entry right away.
 */
import type { SysfsView } from "../sysfs-view.js";
import { splitArgs } from "../bootargs-params.js";
import type { Bootloader } from "./types.js";
import { commandPlan, runningArgs } from "./command-based.js";

export const KERNELSTUB_CONFIG = "/etc/kernelstub/configuration";

/** kernel_options of the "user" section (a list, or a string in old versions); null when unreadable. */
export function kernelstubOptions(text: string): string[] | null {
  try {
    const cfg = JSON.parse(text) as { user?: { kernel_options?: unknown } };
    const opts = cfg.user?.kernel_options;
    if (Array.isArray(opts)) return opts.filter((o): o is string => typeof o === "string");
    if (typeof opts === "string") return splitArgs(opts);
    return null;
  } catch {
    return null;
  }
}

function current(view: SysfsView): { source: string; args: string[] } {
  const text = view.readText(KERNELSTUB_CONFIG);
  const opts = text === null ? null : kernelstubOptions(text);
  return opts === null ? runningArgs(view) : { source: KERNELSTUB_CONFIG, args: opts };
}

function steps(add: readonly string[], del: readonly string[]): string[][] {
  const out: string[][] = [];
  if (del.length > 0) out.push(["kernelstub", "--delete-options", del.join(" ")]);
  if (add.length > 0) out.push(["kernelstub", "--add-options", add.join(" ")]);
  return out;
}

export const kernelstub: Bootloader = {
  id: "kernelstub",
  detect(view) {
    return view.exists(KERNELSTUB_CONFIG) ? [KERNELSTUB_CONFIG] : null;
  },
  currentArgs: current,
  plan(view, edit, evidence) {
    const cur = current(view);
    const notes = cur.source === KERNELSTUB_CONFIG ? [] : [`${KERNELSTUB_CONFIG} could not be parsed; showing /proc/cmdline`];
    return commandPlan("kernelstub", "kernelstub (Pop!_OS)", evidence, cur, steps(edit.add, edit.remove), steps(edit.remove, edit.add), notes);
  },
};
