/** `iommu bootargs [--apply | --undo]`: the kernel parameters IOMMU pass-through needs, per boot loader. */
import { IommuError } from "../../core/errors.js";
import { JSON_OPTION, flag, str, toJson, usageError, type Command } from "../command.js";
import { commandLine, planBootargs, planBootargsEdits, renderBootargs } from "../../host/bootargs.js";
import { applyBootargs, undoBootargs, JOURNAL_PATH, type ApplyResult } from "../../host/bootargs-apply.js";
import { VIEW_OPTIONS, VIEW_OPTIONS_HELP, openView, openWritableView, viewOptionsFrom } from "../../host/views/open.js";
import { RootView } from "../../host/views/root-view.js";

function renderResult(r: ApplyResult, verb: "Applied" | "Restored"): string {
  let out = "";
  for (const f of r.files) out += verb === "Applied" ? `${verb}: ${f.path} (original kept in ${f.backup})\n` : `${verb}: ${f.path}\n`;
  for (const c of r.ran) out += `Ran: ${commandLine(c)}\n`;
  if (r.pending.length > 0) {
    out += "Not run (--root examines another system): run inside it:\n";
    for (const c of r.pending) out += `  ${commandLine(c)}\n`;
  }
  if (verb === "Applied" && r.journal !== null) out += `Recorded in ${r.journal}; 'iommu bootargs --undo' reverts. Reboot to use the new parameters.\n`;
  return out;
}

export const bootargsCommand: Command = {
  name: "bootargs",
  summary: "show (and with --apply, make) the kernel parameter changes IOMMU pass-through needs",
  help: `Usage: iommu bootargs [--apply | --undo] [--pt] [--bootloader NAME] [--json]

Finds the boot loader (rpm-ostree, kernelstub, grubby, systemd-boot, GRUB) and proposes kernel parameters
for this machine: intel_iommu=on on Intel unless the kernel is built with CONFIG_INTEL_IOMMU_DEFAULT_ON=y;
nothing on AMD (the AMD IOMMU is on by default; amd_iommu=on is not a valid value); iommu=pt with --pt.
Parameters that get in the way are removed: intel_iommu=off, amd_iommu=off, amd_iommu=on, iommu=off,
intremap=off, nointremap. Without --apply nothing is changed: the diff (or command) is shown.

--apply writes each file atomically (temporary file, fsync, rename) after saving the original next to it
as FILE.iommu-kit.bak and recording the change in ${JOURNAL_PATH}, then regenerates the boot menu
(update-grub, grub2-mkconfig, …). grubby, rpm-ostree and kernelstub are driven through their own commands.
With --root nothing is run: the commands are printed for you to run inside that system.
--undo restores the originals byte for byte (and runs the inverse commands), then regenerates.

Options:
      --apply              make the change
      --undo               revert the last applied change
      --pt                 also propose iommu=pt (identity-map devices the host keeps)
      --bootloader NAME    skip detection: grub, systemd-boot, kernelstub, grubby or rpm-ostree
      --force              with --undo: restore even a file that was edited since the apply
  -j, --json               machine-readable output
${VIEW_OPTIONS_HELP}

Examples:
  iommu bootargs
  sudo iommu bootargs --apply --pt && sudo reboot
  sudo iommu bootargs --undo
`,
  options: {
    ...JSON_OPTION,
    ...VIEW_OPTIONS,
    apply: { type: "boolean" },
    undo: { type: "boolean" },
    pt: { type: "boolean" },
    bootloader: { type: "string" },
    force: { type: "boolean" },
  },
  positionals: [0, 0],
  run(args, ctx) {
    const json = flag(args, "json");
    const opts = { passthrough: flag(args, "pt"), bootloader: str(args, "bootloader") };
    if (flag(args, "apply") && flag(args, "undo")) throw usageError("--apply and --undo cannot be used together", "bootargs");
    const viewOpts = viewOptionsFrom(args);
    if (!flag(args, "apply") && !flag(args, "undo")) {
      const report = planBootargs(openView(viewOpts), opts);
      ctx.out(json ? toJson(report) : renderBootargs(report));
      return 0;
    }
    const view = openWritableView(viewOpts);
    if (!(view instanceof RootView)) throw new IommuError("READ_ONLY_VIEW", "this view cannot be changed");
    const execute = viewOpts.root === undefined;
    if (flag(args, "undo")) {
      const r = undoBootargs({ root: view, execute, force: flag(args, "force") });
      ctx.out(json ? toJson({ undone: r }) : renderResult(r, "Restored"));
      return 0;
    }
    const { report, plan } = planBootargsEdits(view, opts);
    const r = applyBootargs(plan, { root: view, execute });
    if (json) ctx.out(toJson({ ...report, applied: r }));
    else ctx.out(renderBootargs(report) + (r.changed || r.pending.length > 0 ? "\n" + renderResult(r, "Applied") : ""));
    return 0;
  },
};
