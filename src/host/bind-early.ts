/**
 * `iommu bind --persist --early`: make vfio-pci claim the devices at boot, before their own drivers, the way
 * people do it by hand:
 *
 *   /etc/modprobe.d/iommu-kit-vfio.conf   options vfio-pci ids=VENDOR:DEVICE,…   (vfio-pci takes these ids)
 *                                         softdep DRIVER pre: vfio-pci           (vfio-pci loads before DRIVER)
 *   the initramfs                         vfio, vfio_iommu_type1 and vfio_pci in it, in the syntax of the tool
 *                                         this system uses (initramfs-tools, dracut, mkinitcpio), then rebuilt
 *
 * The change goes through the same journal machinery as `iommu bootargs --apply`: every file is replaced
 * atomically after its original is saved next to it (a new file is recorded as created), the journal
 * /var/lib/iommu-kit/early-bind-journal.json lists them with hashes, and `iommu bind --early --undo` puts every
 * byte back (and removes created files), then rebuilds the initramfs again. Under --root nothing is run: the
 * rebuild command is printed.
 *
 * ids match every device with the same vendor and device id, not one address: other devices with those ids are
 * named in the notes. A vfio-pci built into the kernel never sees modprobe.d, so that case is refused with the
 * kernel command line that works instead.
 */
import { IommuError } from "../core/errors.js";
import type { ChangePlan, JournalKind } from "./bootargs-apply.js";
import { formatIds, type PciDevice } from "./pci.js";
import { driverModule } from "./passthrough/binding-checks.js";
import type { PassthroughFacts } from "./passthrough/facts.js";
import { readInitramfs, VFIO_EARLY_MODULES, type InitramfsInfo } from "./passthrough/initramfs.js";
import { parseModprobeFile, type ModprobeConfig } from "./passthrough/modprobe.js";
import { readTextSafe } from "./passthrough/read.js";
import type { SysfsView } from "./sysfs-view.js";

export const EARLY_MODPROBE_PATH = "/etc/modprobe.d/iommu-kit-vfio.conf";
export const EARLY_JOURNAL: JournalKind = { path: "/var/lib/iommu-kit/early-bind-journal.json", undo: "iommu bind --early --undo" };
const DRACUT_FILE = "/etc/dracut.conf.d/10-iommu-kit-vfio.conf";

export interface EarlyTarget {
  device: PciDevice;
  /** The driver the device had before it went to vfio-pci (null: none, or unknown because it already was). */
  hostDriver: string | null;
}

export interface EarlyPlan {
  plan: ChangePlan;
  ids: string[];
  /** Modules vfio-pci now loads before. */
  softdeps: string[];
  initramfs: InitramfsInfo["tool"];
  notes: string[];
}

const HEADER =
  "# Written by 'iommu bind --persist --early': vfio-pci claims these devices at boot, before their drivers.\n" +
  `# '${EARLY_JOURNAL.undo}' restores the files this changed.\n`;

function modprobeText(ids: string[], softdeps: string[]): string {
  return HEADER + `options vfio-pci ids=${ids.join(",")}\n` + softdeps.map((m) => `softdep ${m} pre: vfio-pci\n`).join("");
}

/** The initramfs file edit that loads the vfio modules early, or null when nothing is missing. */
function initramfsEdit(view: SysfsView, info: InitramfsInfo): { path: string; before: string | null; after: string } | null {
  const have = new Set(info.modules.map((m) => m.module));
  const missing = VFIO_EARLY_MODULES.filter((m) => !have.has(m));
  if (info.tool === null || missing.length === 0) return null;
  if (info.tool === "dracut") {
    const before = readTextSafe(view, DRACUT_FILE).text;
    return { path: DRACUT_FILE, before, after: (before ?? "") + `force_drivers+=" ${missing.join(" ")} "\n` };
  }
  if (info.tool === "initramfs-tools") {
    const path = "/etc/initramfs-tools/modules";
    const before = readTextSafe(view, path).text;
    const base = before === null || before === "" || before.endsWith("\n") ? (before ?? "") : before + "\n";
    return { path, before, after: base + missing.map((m) => `${m}\n`).join("") };
  }
  const path = "/etc/mkinitcpio.conf";
  const before = readTextSafe(view, path).text;
  if (before === null) return null;
  const re = /^(\s*MODULES=\()([^)]*)\)/m;
  const after = re.test(before)
    ? before.replace(re, (_m, head: string, list: string) => `${head}${[...missing, ...list.split(/\s+/).filter((w) => w !== "")].join(" ")})`)
    : `${before}${before.endsWith("\n") ? "" : "\n"}MODULES=(${missing.join(" ")})\n`;
  return { path, before, after };
}

/** What our own modprobe file already holds: ids and softdeps to keep. */
function existing(view: SysfsView): { text: string | null; ids: string[]; softdeps: string[] } {
  const text = readTextSafe(view, EARLY_MODPROBE_PATH).text;
  if (text === null) return { text, ids: [], softdeps: [] };
  const cfg: ModprobeConfig = { files: [], options: [], softdeps: [], blacklist: [], unreadable: [] };
  parseModprobeFile(EARLY_MODPROBE_PATH, text, cfg);
  const ids = cfg.options.filter((o) => o.module === "vfio_pci").flatMap((o) => o.options.filter((x) => x.startsWith("ids=")).flatMap((x) => x.slice(4).split(",")));
  return { text, ids, softdeps: cfg.softdeps.filter((d) => d.pre.includes("vfio_pci")).map((d) => d.module) };
}

export function planEarlyBind(view: SysfsView, facts: PassthroughFacts, targets: EarlyTarget[]): EarlyPlan {
  const ids = targets.map((t) => formatIds(t.device));
  if (facts.config?.values.CONFIG_VFIO_PCI === "y") {
    throw new IommuError("VFIO_PCI_BUILTIN", "vfio-pci is built into this kernel (CONFIG_VFIO_PCI=y): modprobe.d options never reach it, so --early cannot work", {
      hint: `put vfio-pci.ids=${[...new Set(ids)].join(",")} on the kernel command line instead (edit it as 'iommu bootargs' shows), then reboot`,
    });
  }
  const notes: string[] = [];
  const softdeps: string[] = [];
  for (const t of targets) {
    if (t.hostDriver === null || /vfio/.test(t.hostDriver) || t.hostDriver === "pci-stub") {
      if (t.hostDriver !== "pci-stub") notes.push(`${t.device.address} had no host driver to order vfio-pci before${t.hostDriver === null ? "" : ` (it was already on ${t.hostDriver})`}: if one takes it at boot, add 'softdep DRIVER pre: vfio-pci' to ${EARLY_MODPROBE_PATH}`);
      continue;
    }
    const mod = driverModule(view, t.hostDriver);
    if (mod === null) notes.push(`${t.hostDriver} (the host driver of ${t.device.address}) is built into the kernel: a softdep cannot order it; the udev rule of --persist takes the device back after boot`);
    else softdeps.push(mod);
  }
  const prev = existing(view);
  const allIds = [...new Set([...prev.ids, ...ids])];
  const allDeps = [...new Set([...prev.softdeps, ...softdeps])];
  const chosen = new Set(targets.map((t) => t.device.address));
  const alsoTaken = facts.devices.filter((d) => !chosen.has(d.address) && ids.includes(formatIds(d)));
  if (alsoTaken.length > 0) notes.push(`vfio-pci ids match by vendor and device id: ${alsoTaken.map((d) => `${d.address} (${formatIds(d)}, ${d.driver ?? "no driver"})`).join(", ")} will go to vfio-pci at boot too`);
  const info = readInitramfs(view);
  if (info.tool === null) notes.push("no initramfs tool found (initramfs-tools, dracut, mkinitcpio): if the initramfs loads the host driver, add vfio_pci to it by hand");
  if (info.tool === "mkinitcpio" && info.modconf === false) notes.push("HOOKS in /etc/mkinitcpio.conf lacks modconf: add it, or modprobe.d does not reach the initramfs");
  const fileEdits: ChangePlan["fileEdits"][number][] = [];
  const text = modprobeText(allIds, allDeps);
  if (prev.text !== text) fileEdits.push({ path: EARLY_MODPROBE_PATH, before: prev.text, after: text });
  const ir = initramfsEdit(view, info);
  if (ir !== null) fileEdits.push(ir);
  return {
    plan: { id: "early-bind", fileEdits, commands: [], undoCommands: [], regenerate: info.regenerate },
    ids: allIds,
    softdeps: allDeps,
    initramfs: info.tool,
    notes,
  };
}
