/**
 * Choosing the view a command reads: the live system, a root prefix (--root DIR), a recorded snapshot
 * (--snapshot FILE) or a simulated machine booted on the spot (--sim MACHINE [--sim-cmdline "…"]). Every host
 * command takes the same options and opens its view the same way.
 */
import { statSync } from "node:fs";
import { IommuError } from "../../core/errors.js";
import type { OptionSpec, ParsedArgs } from "../../cli/command.js";
import type { SysfsView, WritableSysfsView } from "../sysfs-view.js";
import { Machine } from "../../hw/machine.js";
import { Kernel } from "../../os/kernel.js";
import { kernelSysfsView } from "../../os/sysfs.js";
import { RootView } from "./root-view.js";
import { SnapshotView } from "./snapshot-view.js";

export interface ViewOptions {
  /** Read under this directory instead of "/". */
  root?: string | undefined;
  /** Answer from this snapshot file. */
  snapshot?: string | undefined;
  /** Boot the simulated kernel on this machine (preset name or JSON file) and examine it. */
  sim?: string | undefined;
  /** Kernel command line for --sim. */
  simCmdline?: string | undefined;
}

/** `--root DIR` and `--snapshot FILE`, shared by every host command. */
export const VIEW_OPTIONS: OptionSpec = {
  root: { type: "string" },
  snapshot: { type: "string" },
  sim: { type: "string" },
  "sim-cmdline": { type: "string" },
};

/** Help lines for VIEW_OPTIONS, to paste into a command's help text. */
export const VIEW_OPTIONS_HELP = `  --root DIR        examine the Linux system mounted at DIR instead of this one
  --snapshot FILE   examine a snapshot recorded with 'iommu snapshot -o FILE' (- reads standard input)
  --sim MACHINE     examine a simulated machine (a preset such as q35, or a machine JSON file) booted with
                    --sim-cmdline "…" (default "intel_iommu=on")`;

function checkRoot(root: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) {
    throw new IommuError("ROOT_NOT_FOUND", `--root ${root}: no such directory`, {
      hint: "give the directory where the other system's root file system is mounted",
    });
  }
}

export function openView(options: ViewOptions = {}): SysfsView {
  const sources = [options.root, options.snapshot, options.sim].filter((o) => o !== undefined).length;
  if (sources > 1) {
    throw new IommuError("USAGE", "--root, --snapshot and --sim cannot be used together", {
      hint: "each names a whole system to examine: pick one",
    });
  }
  if (options.simCmdline !== undefined && options.sim === undefined) {
    throw new IommuError("USAGE", "--sim-cmdline needs --sim MACHINE");
  }
  if (options.sim !== undefined) {
    const cmdline = options.simCmdline ?? "intel_iommu=on";
    const kernel = Kernel.boot(Machine.load(options.sim), { cmdline });
    return kernelSysfsView(kernel, `simulated machine ${options.sim} (${cmdline})`);
  }
  if (options.snapshot !== undefined) return SnapshotView.load(options.snapshot);
  if (options.root !== undefined) checkRoot(options.root);
  return new RootView(options.root ?? "/");
}

/** A view that can write (bind, bootargs --apply): live or a root prefix, never a snapshot. */
export function openWritableView(options: ViewOptions = {}): WritableSysfsView {
  if (options.snapshot !== undefined) {
    throw new IommuError("READ_ONLY_VIEW", `--snapshot ${options.snapshot}: a snapshot cannot be changed`, {
      hint: "run the command on the host itself, or with --root",
    });
  }
  if (options.sim !== undefined) {
    throw new IommuError("READ_ONLY_VIEW", `--sim ${options.sim}: the simulated machine's sysfs view is read-only`, {
      hint: "assign devices on a simulated machine with 'iommu scenario', or run this on a real host",
    });
  }
  if (options.root !== undefined) checkRoot(options.root);
  return new RootView(options.root ?? "/");
}

/** Reads --root and --snapshot from parsed command arguments. */
export function viewOptionsFrom(args: ParsedArgs): ViewOptions {
  const text = (name: string) => {
    const v = args.values[name];
    return typeof v === "string" ? v : undefined;
  };
  return { root: text("root"), snapshot: text("snapshot"), sim: text("sim"), simCmdline: text("sim-cmdline") };
}

export function viewFromArgs(args: ParsedArgs): SysfsView {
  return openView(viewOptionsFrom(args));
}

/**
 * Fails with a clear error when the view does not look like a Linux system with sysfs mounted: not Linux,
 * a wrong --root, or an empty snapshot.
 */
export function requireSysfs(view: SysfsView): void {
  if (view.exists("/sys/bus/pci") || view.exists("/sys/kernel") || view.exists("/sys/class")) return;
  throw new IommuError("NO_SYSFS", `no /sys in ${view.description}: not a Linux system with sysfs mounted`, {
    hint:
      view.description === "live system"
        ? "run this on Linux (sysfs mounted at /sys), or examine another system with --root DIR or --snapshot FILE"
        : "point --root at the root of a Linux file system with /sys and /proc mounted",
  });
}
