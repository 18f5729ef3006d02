/** `iommu bind BDF` and `iommu unbind BDF`: move PCI devices to vfio-pci and back. */
import { IommuError } from "../../core/errors.js";
import { JSON_OPTION, flag, toJson, type Command, type Context, type ParsedArgs } from "../command.js";
import { bindVfio, renderBind, unbindVfio, type BindResult } from "../../host/bind.js";
import { updatePersist, type PersistResult } from "../../host/bind-persist.js";
import { VIEW_OPTIONS, VIEW_OPTIONS_HELP, openWritableView, viewOptionsFrom } from "../../host/views/open.js";
import { RootView } from "../../host/views/root-view.js";

function output(args: ParsedArgs, ctx: Context, r: BindResult, persist: PersistResult | null): number {
  if (flag(args, "json")) {
    ctx.out(toJson({ ...r, persist }));
    return 0;
  }
  let text = renderBind(r);
  if (persist?.changed) {
    if (persist.added.length > 0) text += `persistent: ${persist.path} keeps ${persist.added.join(", ")} on vfio-pci at boot\n`;
    if (persist.removed.length > 0) text += `persistent: removed ${persist.removed.join(", ")} from ${persist.path}\n`;
  }
  ctx.out(text);
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
      --force       bind even a device the host is using
  -j, --json        machine-readable output
${VIEW_OPTIONS_HELP}

Exit status: 0 bound, 2 error (nothing is left half-done: checks happen before the first write).

Examples:
  sudo modprobe vfio-pci && sudo iommu bind 0000:01:00.0 --group
  sudo iommu bind 03:00.0 --persist
`,
  options: { ...JSON_OPTION, ...VIEW_OPTIONS, group: { type: "boolean" }, persist: { type: "boolean" }, force: { type: "boolean" } },
  positionals: [1, 1],
  run(args, ctx) {
    const view = openWritableView(viewOptionsFrom(args));
    const r = bindVfio(view, args.positionals[0] ?? "", { group: flag(args, "group"), force: flag(args, "force") });
    const persist = flag(args, "persist") ? updatePersist(rootOf(view), r.devices.map((d) => d.address), []) : null;
    return output(args, ctx, r, persist);
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
