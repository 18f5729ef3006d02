/** `iommu bind BDF` and `iommu unbind BDF`: move PCI devices to vfio-pci and back. */
import { IommuError } from "../../core/errors.js";
import { JSON_OPTION, flag, toJson, usageError, type Command, type Context, type ParsedArgs } from "../command.js";
import { bindVfio, renderBind, unbindVfio, type BindResult } from "../../host/bind.js";
import { updatePersist, type PersistResult } from "../../host/bind-persist.js";
import { EARLY_JOURNAL, planEarlyBind, type EarlyPlan } from "../../host/bind-early.js";
import { resolveTargets } from "../../host/bind-targets.js";
import { applyBootargs, undoBootargs, type ApplyResult } from "../../host/bootargs-apply.js";
import { commandLine } from "../../host/bootargs.js";
import { gatherStatusWithFacts } from "../../host/status.js";
import { VIEW_OPTIONS, VIEW_OPTIONS_HELP, openWritableView, viewOptionsFrom } from "../../host/views/open.js";
import { RootView } from "../../host/views/root-view.js";

interface Early {
  plan: EarlyPlan;
  applied: ApplyResult;
}

function renderApply(r: ApplyResult, verb: "changed" | "restored"): string {
  let out = "";
  for (const f of r.files) out += `early binding: ${verb} ${f.path}${verb === "changed" && f.backup !== "" ? ` (original kept in ${f.backup})` : ""}\n`;
  for (const c of r.ran) out += `early binding: ran ${commandLine(c)}\n`;
  if (r.pending.length > 0) out += `early binding: not run (--root examines another system), run inside it: ${r.pending.map(commandLine).join("; ")}\n`;
  return out;
}

function output(args: ParsedArgs, ctx: Context, r: BindResult, persist: PersistResult | null, early: Early | null = null): number {
  if (flag(args, "json")) {
    ctx.out(toJson({ ...r, persist, ...(early === null ? {} : { early: { ids: early.plan.ids, softdeps: early.plan.softdeps, initramfs: early.plan.initramfs, notes: early.plan.notes, applied: early.applied } }) }));
    return 0;
  }
  let text = renderBind(r);
  if (persist?.changed) {
    if (persist.added.length > 0) text += `persistent: ${persist.path} keeps ${persist.added.join(", ")} on vfio-pci at boot\n`;
    if (persist.removed.length > 0) text += `persistent: removed ${persist.removed.join(", ")} from ${persist.path}\n`;
  }
  if (early !== null) {
    text += renderApply(early.applied, "changed");
    if (!early.applied.changed && early.applied.pending.length === 0) text += "early binding: already configured\n";
    for (const n of early.plan.notes) text += `note: ${n}\n`;
    if (early.applied.journal !== null) text += `early binding: recorded in ${early.applied.journal}; '${EARLY_JOURNAL.undo}' reverts it\n`;
  }
  ctx.out(text);
  return 0;
}

/** `iommu bind --early --undo`: restores what --early changed, byte for byte. */
function undoEarly(args: ParsedArgs, ctx: Context): number {
  const opts = viewOptionsFrom(args);
  const view = rootOf(openWritableView(opts));
  const r = undoBootargs({ root: view, execute: opts.root === undefined, journal: EARLY_JOURNAL, force: flag(args, "force") });
  ctx.out(flag(args, "json") ? toJson({ undone: r }) : renderApply(r, "restored") || "early binding: nothing to restore\n");
  return 0;
}

function rootOf(view: unknown): RootView {
  if (view instanceof RootView) return view;
  throw new IommuError("READ_ONLY_VIEW", "this view cannot be changed");
}

export const bindCommand: Command = {
  name: "bind",
  summary: "bind a PCI device (or its IOMMU group) to vfio-pci for pass-through",
  help: `Usage: iommu bind BDF [--group] [--persist] [--force] [--json]

Gives a PCI device to vfio-pci, as driverctl does: writes vfio-pci to the device's driver_override,
unbinds its current driver, asks the kernel to probe it again (/sys/bus/pci/drivers_probe), and checks
that the driver link now points to vfio-pci. Prints /dev/vfio/GROUP, the node a VMM opens.

Refuses, unless --force, devices the host is using: the boot display (boot_vga), storage behind a mounted
file system or active swap, the network interface carrying the default route; bridges are never bound.
If vfio-pci does not take the device, it is handed back to its own driver.

Options:
      --group       bind every device of BDF's IOMMU group (bridges excepted): a VM can only use a whole group
      --persist     keep the device(s) on vfio-pci across reboots with a udev rule in
                    /etc/udev/rules.d/61-iommu-kit-vfio-pci.rules (per device address, as driverctl does;
                    unlike 'options vfio-pci ids=…' it does not capture every device with the same ids)
      --early       with --persist: also make vfio-pci claim them at boot, before their drivers:
                    /etc/modprobe.d/iommu-kit-vfio.conf (options vfio-pci ids=…, softdep DRIVER pre: vfio-pci),
                    the vfio modules in the initramfs (initramfs-tools, dracut or mkinitcpio, whichever this
                    system uses) and the initramfs rebuilt; recorded in ${EARLY_JOURNAL.path}
                    (under --root the rebuild command is printed, not run)
      --undo        with --early (no BDF): put back every file --early changed, byte for byte, and rebuild
      --force       bind even a device the host is using
  -j, --json        machine-readable output
${VIEW_OPTIONS_HELP}

Exit status: 0 bound, 2 error (nothing is left half-done: checks happen before the first write).

Examples:
  sudo modprobe vfio-pci && sudo iommu bind 0000:01:00.0 --group
  sudo iommu bind 03:00.0 --persist
  sudo iommu bind 01:00.0 --group --persist --early && sudo reboot
  sudo iommu bind --early --undo
`,
  options: {
    ...JSON_OPTION,
    ...VIEW_OPTIONS,
    group: { type: "boolean" },
    persist: { type: "boolean" },
    force: { type: "boolean" },
    early: { type: "boolean" },
    undo: { type: "boolean" },
  },
  positionals: [0, 1],
  run(args, ctx) {
    const bdf = args.positionals[0];
    if (flag(args, "undo")) {
      if (!flag(args, "early")) throw usageError("--undo is for --early: iommu bind --early --undo", "bind");
      if (bdf !== undefined) throw usageError("--early --undo takes no device: it restores every file --early changed", "bind");
      return undoEarly(args, ctx);
    }
    if (bdf === undefined) throw usageError("name the device: iommu bind BDF", "bind");
    if (flag(args, "early") && !flag(args, "persist")) throw usageError("--early needs --persist (the device stays on vfio-pci after boot too)", "bind");
    const opts = viewOptionsFrom(args);
    const view = openWritableView(opts);
    // Plan the early binding before the first write: its refusals (a built-in vfio-pci) leave nothing half-done.
    let early: EarlyPlan | null = null;
    if (flag(args, "early")) {
      const t = resolveTargets(view, bdf, flag(args, "group"));
      early = planEarlyBind(view, gatherStatusWithFacts(view).facts, t.devices.map((d) => ({ device: d, hostDriver: d.driver })));
    }
    const r = bindVfio(view, bdf, { group: flag(args, "group"), force: flag(args, "force") });
    const persist = flag(args, "persist") ? updatePersist(rootOf(view), r.devices.map((d) => d.address), []) : null;
    const applied = early === null ? null : applyBootargs(early.plan, { root: rootOf(view), execute: opts.root === undefined, journal: EARLY_JOURNAL });
    return output(args, ctx, r, persist, early === null || applied === null ? null : { plan: early, applied });
  },
};

export const unbindCommand: Command = {
  name: "unbind",
  summary: "give a PCI device back from vfio-pci to its own driver",
  help: `Usage: iommu unbind BDF [--group] [--json]

Clears the device's driver_override, unbinds it from vfio-pci and asks the kernel to probe it again, so its
own driver takes it back; checks that vfio-pci let go. Removes the device from the --persist udev rules.

Options:
      --group       every device of BDF's IOMMU group (bridges excepted)
  -j, --json        machine-readable output
${VIEW_OPTIONS_HELP}

Examples:
  sudo iommu unbind 0000:01:00.0 --group
`,
  options: { ...JSON_OPTION, ...VIEW_OPTIONS, group: { type: "boolean" } },
  positionals: [1, 1],
  run(args, ctx) {
    const view = openWritableView(viewOptionsFrom(args));
    const r = unbindVfio(view, args.positionals[0] ?? "", { group: flag(args, "group") });
    const persist = updatePersist(rootOf(view), [], r.devices.map((d) => d.address));
    return output(args, ctx, r, persist);
  },
};
