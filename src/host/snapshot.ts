/**
 * `iommu snapshot`: record everything the doctor's commands read from this host into one JSON file. The
 * recording runs the commands' own read paths (status, groups, the bootargs plan, the host-use checks of
 * bind/check) through a RecordingView, so the snapshot answers them completely; then it adds files people
 * ask about when debugging pass-through (bootloader configuration, modprobe options, vfio module parameters)
 * and the IOMMU-related kernel log lines. Status, groups and check read every input of the pass-through checks
 * up front (passthrough/facts.ts), so those are recorded too: /proc/iomem, modprobe.d, the initramfs
 * configuration, efivars and module signing, vendor-reset/kvmfr module files, /proc/self/limits, iommufd.
 */
import { planBootargs } from "./bootargs.js";
import { checkDevice } from "./check.js";
import { gatherGroups } from "./groups.js";
import { findHostUses } from "./host-use.js";
import { listPciDevices, PCI_DEVICES_DIR } from "./pci.js";
import { gatherStatus } from "./status.js";
import type { SysfsView } from "./sysfs-view.js";
import { RecordingView } from "./views/recording-view.js";
import type { SnapshotFile } from "./views/snapshot-format.js";

/**
 * Where a snapshot keeps the kernel log lines: a path no real system has, so nothing mistakes it for a file
 * that was read. Only IOMMU-related lines are kept.
 */
export const DMESG_PATH = "/.iommu-kit/dmesg";

/** Kernel log lines worth keeping: IOMMU drivers, interrupt remapping, VFIO, ACS, the command line. */
export const DMESG_FILTER = /DMAR|IOMMU|iommu|AMD-Vi|IVRS|IVHD|remapping|x2apic|x2APIC|vfio|VFIO|ACS|Command line|pci 0000/;

export interface SnapshotReader {
  name: string;
  read(view: SysfsView): void;
}

/** Device attributes beyond those `iommu groups` reads, which check and bind look at. */
const DEVICE_EXTRAS = ["enable", "irq", "power_state", "d3cold_allowed", "sriov_totalvfs", "sriov_numvfs", "modalias", "local_cpulist"];

function listAndCapture(rec: RecordingView, dir: string, match: RegExp): void {
  for (const name of rec.list(dir) ?? []) if (match.test(name)) rec.capture(`${dir}/${name}`);
}

/** The reads each command makes, plus the extras; each runs on its own so one failing does not stop the rest. */
export const DEFAULT_READERS: SnapshotReader[] = [
  { name: "status", read: (v) => void gatherStatus(v) },
  { name: "groups", read: (v) => void gatherGroups(v, { ids: null }) },
  { name: "bootargs", read: (v) => void planBootargs(v) },
  { name: "host use (bind, check)", read: (v) => void findHostUses(v, listPciDevices(v)) },
  {
    name: "check",
    read: (v) => {
      for (const d of listPciDevices(v)) checkDevice(v, d.address);
    },
  },
  {
    name: "device details",
    read: (v) => {
      for (const d of v.list(PCI_DEVICES_DIR) ?? []) {
        for (const a of DEVICE_EXTRAS) v.readText(`${PCI_DEVICES_DIR}/${d}/${a}`);
        v.readLink(`${PCI_DEVICES_DIR}/${d}/physfn`);
      }
      for (const drv of v.list("/sys/bus/pci/drivers") ?? []) v.list(`/sys/bus/pci/drivers/${drv}`);
    },
  },
];

function extraFiles(rec: RecordingView): void {
  for (const f of [
    "/etc/os-release", "/etc/default/grub", "/etc/kernel/cmdline", "/etc/kernelstub/configuration",
    "/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/boot/loader/loader.conf", "/proc/modules",
    "/proc/sys/kernel/hostname", "/proc/sys/kernel/osrelease",
  ]) rec.capture(f);
  listAndCapture(rec, "/etc/default/grub.d", /\.cfg$/);
  listAndCapture(rec, "/etc/modprobe.d", /\.conf$/);
  for (const dir of ["/boot/loader/entries", "/boot/efi/loader/entries", "/efi/loader/entries"]) {
    listAndCapture(rec, dir, /\.conf$/);
  }
  for (const mod of rec.list("/sys/module") ?? []) {
    if (!/^vfio/.test(mod)) continue;
    rec.capture(`/sys/module/${mod}/initstate`);
    listAndCapture(rec, `/sys/module/${mod}/parameters`, /./);
  }
}

export interface RecordOptions {
  createdBy: string;
  readers?: SnapshotReader[];
  /** The kernel log (dmesg output), or null when it could not be read. */
  dmesg?: string | null;
  /** Called with a short message before each step. */
  progress?: (message: string) => void;
  /** Called when a reader fails; the snapshot still records what it read. */
  onReaderError?: (reader: string, error: unknown) => void;
}

export function recordSnapshot(view: SysfsView, options: RecordOptions): SnapshotFile {
  const rec = new RecordingView(view);
  for (const r of options.readers ?? DEFAULT_READERS) {
    options.progress?.(`reading what '${r.name}' needs`);
    try {
      r.read(rec);
    } catch (e) {
      options.onReaderError?.(r.name, e);
    }
  }
  options.progress?.("reading bootloader, modprobe and vfio files");
  extraFiles(rec);
  if (options.dmesg !== undefined && options.dmesg !== null) {
    const lines = options.dmesg.split("\n").filter((l) => DMESG_FILTER.test(l));
    rec.addEntry(DMESG_PATH, { kind: "file", text: lines.join("\n") + (lines.length > 0 ? "\n" : "") });
  }
  const hostname = safeText(rec, "/proc/sys/kernel/hostname");
  const kernel = safeText(rec, "/proc/sys/kernel/osrelease");
  return rec.toSnapshot(options.createdBy, {
    ...(hostname === null ? {} : { hostname }),
    ...(kernel === null ? {} : { kernel }),
    source: view.description,
  });
}

function safeText(view: SysfsView, path: string): string | null {
  try {
    return view.readText(path)?.trim() ?? null;
  } catch {
    return null;
  }
}

/** The kernel log lines a snapshot kept, or null when it has none. */
export function snapshotDmesg(view: SysfsView): string[] | null {
  const t = safeText(view, DMESG_PATH);
  return t === null ? null : t.split("\n").filter((l) => l !== "");
}
