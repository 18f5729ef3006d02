/**
 * grubby (Fedora, RHEL, CentOS Stream, Oracle Linux). With BLS entries in /boot/loader/entries, editing
 * /etc/default/grub alone does not reach existing entries; `grubby --update-kernel=ALL --args=… --remove-args=…`
 * changes every installed kernel's entry (an argument that exists is replaced by the new value).
 */
import { findProgram, type Bootloader } from "./types.js";
import { commandPlan, isEmptyEdit, runningArgs } from "./command-based.js";

function grubbyCommand(add: readonly string[], remove: readonly string[]): string[] {
  const cmd = ["grubby", "--update-kernel=ALL"];
  if (add.length > 0) cmd.push(`--args=${add.join(" ")}`);
  if (remove.length > 0) cmd.push(`--remove-args=${remove.join(" ")}`);
  return cmd;
}

export const grubby: Bootloader = {
  id: "grubby",
  detect(view) {
    const prog = findProgram(view, "grubby");
    return prog === null ? null : [prog];
  },
  currentArgs: runningArgs,
  plan(view, edit, evidence) {
    const empty = isEmptyEdit(edit);
    return commandPlan(
      "grubby",
      "grubby (BLS entries)",
      evidence,
      runningArgs(view),
      empty ? [] : [grubbyCommand(edit.add, edit.remove)],
      empty ? [] : [grubbyCommand(edit.remove, edit.add)],
      ["the current parameters are those of the running kernel (/proc/cmdline); 'grubby --info=ALL' lists every entry"],
    );
  },
};
