/**
 * `iommu bind --persist`: keeps a device on vfio-pci across reboots with a udev rule, per device (by address),
 * the same mechanism driverctl uses:
 *
 *   ACTION=="add", SUBSYSTEM=="pci", KERNEL=="0000:01:00.0", ATTR{driver_override}="vfio-pci", RUN+="…"
 *
 * When the device appears (at boot, udev replays "add" for every device), the rule writes vfio-pci into its
 * driver_override, so the native driver's module, loaded later for the same event, cannot claim it; the RUN
 * part loads vfio-pci and, if a driver built into the kernel or loaded in the initramfs already took the device,
 * unbinds it and asks the kernel to probe again, which now binds vfio-pci.
 *
 * The alternative this does not use, modprobe.d "options vfio-pci ids=VENDOR:DEVICE" plus "softdep DRIVER pre:
 * vfio-pci", matches every device with those ids (two identical NICs cannot be split) and needs the initramfs
 * rebuilt when the native driver is in it. `iommu unbind` removes the device's line again.
 */
import { mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { fsError } from "../core/errors.js";
import { atomicWriteFile } from "./bootargs-apply.js";
import type { RootView } from "./views/root-view.js";

export const UDEV_RULES_PATH = "/etc/udev/rules.d/61-iommu-kit-vfio-pci.rules";

const HEADER =
  "# Written by 'iommu bind --persist': these PCI devices are bound to vfio-pci when they appear.\n" +
  "# 'iommu unbind BDF' removes a device's line. udev picks up changes to this file by itself.\n";

export function udevRuleLine(address: string): string {
  const rebind =
    "modprobe -q vfio-pci; " +
    'if [ -e /sys$devpath/driver ] && [ "$$(basename $$(readlink /sys$devpath/driver))" != vfio-pci ]; ' +
    "then echo $kernel > /sys$devpath/driver/unbind; fi; echo $kernel > /sys/bus/pci/drivers_probe";
  return `ACTION=="add", SUBSYSTEM=="pci", KERNEL=="${address}", ATTR{driver_override}="vfio-pci", RUN+="/bin/sh -c '${rebind}'"`;
}

/** Device addresses the rules file keeps on vfio-pci. */
export function persistedAddresses(text: string): string[] {
  return [...text.matchAll(/KERNEL=="([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])"/g)].map((m) => m[1] ?? "");
}

export interface PersistResult {
  path: string;
  added: string[];
  removed: string[];
  /** False when the file did not need to change. */
  changed: boolean;
}

function write(root: RootView, text: string | null): void {
  const real = root.hostPath(UDEV_RULES_PATH);
  try {
    if (text === null) {
      unlinkSync(real);
      return;
    }
    mkdirSync(dirname(real), { recursive: true });
  } catch (e) {
    throw fsError(e, text === null ? UDEV_RULES_PATH : dirname(UDEV_RULES_PATH), text === null ? "remove" : "create");
  }
  atomicWriteFile(real, Buffer.from(text, "utf8"), { mode: 0o644, shown: UDEV_RULES_PATH });
}

/** Adds (or, with `remove`, drops) devices from the rules file; rewrites it atomically. */
export function updatePersist(root: RootView, add: readonly string[], remove: readonly string[]): PersistResult {
  const current = root.readText(UDEV_RULES_PATH);
  const lines = (current ?? HEADER).split("\n").filter((l) => l !== "");
  const have = new Set(persistedAddresses(current ?? ""));
  const added = add.filter((a) => !have.has(a));
  const removed = remove.filter((a) => have.has(a));
  if (added.length === 0 && removed.length === 0) return { path: UDEV_RULES_PATH, added, removed, changed: false };
  const kept = lines.filter((l) => !removed.some((a) => l.includes(`KERNEL=="${a}"`)));
  const next = [...kept, ...added.map(udevRuleLine)];
  const rules = next.filter((l) => !l.startsWith("#"));
  write(root, rules.length === 0 ? null : next.join("\n") + "\n");
  return { path: UDEV_RULES_PATH, added, removed, changed: true };
}
