/** Boot-loader detection: the first adapter (most specific first) whose files are present wins. */
import { IommuError } from "../../core/errors.js";
import type { SysfsView } from "../sysfs-view.js";
import { BOOTLOADER_IDS, type Bootloader, type BootloaderId } from "./types.js";
import { grub } from "./grub.js";
import { grubby } from "./grubby.js";
import { kernelstub } from "./kernelstub.js";
import { rpmOstree } from "./rpm-ostree.js";
import { systemdBoot } from "./systemd-boot.js";

export const BOOTLOADERS: Record<BootloaderId, Bootloader> = {
  "rpm-ostree": rpmOstree,
  kernelstub,
  grubby,
  "systemd-boot": systemdBoot,
  grub,
};

export interface Detected {
  loader: Bootloader;
  evidence: string[];
}

/** Detects the boot loader, or uses `forced` (from --bootloader) when given. */
export function detectBootloader(view: SysfsView, forced?: string): Detected {
  if (forced !== undefined) {
    if (!(BOOTLOADER_IDS as readonly string[]).includes(forced)) {
      throw new IommuError("USAGE", `unknown boot loader '${forced}'`, { hint: `use one of: ${BOOTLOADER_IDS.join(", ")}` });
    }
    const loader = BOOTLOADERS[forced as BootloaderId];
    return { loader, evidence: loader.detect(view) ?? [`--bootloader ${forced}`] };
  }
  for (const id of BOOTLOADER_IDS) {
    const loader = BOOTLOADERS[id];
    const evidence = loader.detect(view);
    if (evidence !== null) return { loader, evidence };
  }
  throw new IommuError("BOOTLOADER_UNKNOWN", `no supported boot loader found in ${view.description}`, {
    hint: "looked for /run/ostree-booted, /etc/kernelstub/configuration, grubby, loader/loader.conf and /etc/default/grub; choose one with --bootloader",
  });
}
