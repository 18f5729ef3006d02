/**
 * Binding PCI devices to vfio-pci and giving them back, the way driverctl does it, through sysfs:
 *
 *   bind:   echo vfio-pci > /sys/bus/pci/devices/BDF/driver_override   (only vfio-pci may now claim it)
 *           echo BDF > /sys/bus/pci/drivers/CURRENT/unbind              (the host driver lets go)
 *           echo BDF > /sys/bus/pci/drivers_probe                       (the kernel offers it to drivers)
 *           then /sys/bus/pci/devices/BDF/driver must point at vfio-pci, and /dev/vfio/GROUP appears.
 *   unbind: echo > driver_override (cleared), unbind from vfio-pci, drivers_probe: its own driver takes it back.
 *
 * Before writing anything the device is checked: it must exist, not be a bridge, be in an IOMMU group (vfio-pci
 * refuses devices without one), vfio-pci must be loaded (otherwise the device would be left with no driver), and
 * the host must not be using it (boot display, mounted storage, default route) unless forced. If vfio-pci does
 * not take the device, the override is cleared and the device is offered back to its own driver.
 */
import { posix } from "node:path";
import { IommuError } from "../core/errors.js";
import { readPciDevice, type PciDevice } from "./pci.js";
import type { WritableSysfsView } from "./sysfs-view.js";
import { isAnyBridge, resolveTargets, type Targets } from "./bind-targets.js";
import { findHostUses, type HostUse } from "./host-use.js";

export const VFIO_DRIVER = "vfio-pci";
export const DRIVERS_PROBE = "/sys/bus/pci/drivers_probe";

export interface DeviceChange {
  address: string;
  before: string | null;
  after: string | null;
  changed: boolean;
  /** sysfs writes made for this device, in order: "PATH <- VALUE". */
  writes: string[];
}

export interface BindResult {
  action: "bind" | "unbind";
  device: string;
  group: number | null;
  /** /dev/vfio/GROUP, the character device a VMM opens; null when the device has no group. */
  vfioDevice: string | null;
  vfioDevicePresent: boolean;
  devices: DeviceChange[];
  skipped: Array<{ address: string; reason: string }>;
  /** Host uses that were overridden with --force. */
  forced: Array<{ address: string; uses: HostUse[] }>;
  notes: string[];
}

export interface BindOptions {
  group?: boolean;
  force?: boolean;
}

const driverOf = (view: WritableSysfsView, address: string): string | null => {
  const t = view.readLink(`/sys/bus/pci/devices/${address}/driver`);
  return t === null ? null : posix.basename(t);
};

function write(view: WritableSysfsView, log: string[], path: string, value: string): void {
  view.writeText(path, value);
  log.push(`${path} <- ${JSON.stringify(value)}`);
}

/** Fails when the host needs one of the devices (unless forced); returns what was overridden. */
function refuseHostDevices(view: WritableSysfsView, t: Targets, force: boolean): BindResult["forced"] {
  const { uses } = findHostUses(view, t.devices);
  const critical = t.devices
    .map((d) => ({ address: d.address, uses: (uses.get(d.address) ?? []).filter((u) => u.kind !== "bridge") }))
    .filter((x) => x.uses.length > 0);
  if (critical.length > 0 && !force) {
    const first = critical[0]!;
    throw new IommuError(
      "HOST_DEVICE",
      `refusing to take ${first.address} from the host: it ${first.uses.map((u) => u.detail).join(" and ")}` +
        (critical.length > 1 ? ` (and ${critical.length - 1} more device(s) in use)` : ""),
      { hint: "the host would lose it (display, disk or network); use --force only if you know what you are doing" },
    );
  }
  return critical;
}

function groupNotes(view: WritableSysfsView, t: Targets, action: "bind" | "unbind"): string[] {
  if (t.group === null || action === "unbind") return [];
  const chosen = new Set(t.devices.map((d) => d.address));
  const others = t.group.devices
    .filter((a) => !chosen.has(a) && !t.skipped.some((s) => s.address === a))
    .map((a) => readPciDevice(view, a))
    .filter((d): d is PciDevice => d !== null && !isAnyBridge(d) && d.driver !== null && d.driver !== VFIO_DRIVER && d.driver !== "pci-stub");
  if (others.length === 0) return [];
  return [
    `IOMMU group ${t.group.id} also holds ${others.map((d) => `${d.address} (${d.driver ?? "no driver"})`).join(", ")}: ` +
      "a VM can use the group only when all of them are on vfio-pci (run again with --group)",
  ];
}

function bindOne(view: WritableSysfsView, d: PciDevice): DeviceChange {
  const dir = `/sys/bus/pci/devices/${d.address}`;
  const before = driverOf(view, d.address);
  const writes: string[] = [];
  if (before === VFIO_DRIVER) return { address: d.address, before, after: before, changed: false, writes };
  if (!view.exists(`${dir}/driver_override`)) {
    throw new IommuError("NO_DRIVER_OVERRIDE", `${d.address}: the kernel has no driver_override for it (Linux 3.16 or later is needed)`);
  }
  write(view, writes, `${dir}/driver_override`, `${VFIO_DRIVER}\n`);
  // give the device back rather than leave it with no driver or a stale override
  const handBack = () => {
    try {
      write(view, writes, `${dir}/driver_override`, d.driverOverride === null ? "\n" : `${d.driverOverride}\n`);
      if (driverOf(view, d.address) === null) write(view, writes, DRIVERS_PROBE, d.address);
    } catch {
      // the error reported to the caller says what happened; the hand-back is best effort
    }
  };
  try {
    if (before !== null) write(view, writes, `/sys/bus/pci/drivers/${before}/unbind`, d.address);
    write(view, writes, DRIVERS_PROBE, d.address);
  } catch (e) {
    handBack();
    throw e;
  }
  const after = driverOf(view, d.address);
  if (after !== VFIO_DRIVER) {
    handBack();
    throw new IommuError("BIND_FAILED", `${d.address}: vfio-pci did not take the device (driver is now ${driverOf(view, d.address) ?? "none"})`, {
      hint: "see 'dmesg | tail' for the vfio-pci probe error",
    });
  }
  return { address: d.address, before, after, changed: before !== after, writes };
}

function unbindOne(view: WritableSysfsView, d: PciDevice): DeviceChange {
  const dir = `/sys/bus/pci/devices/${d.address}`;
  const before = driverOf(view, d.address);
  const writes: string[] = [];
  if (before !== VFIO_DRIVER && d.driverOverride !== VFIO_DRIVER) return { address: d.address, before, after: before, changed: false, writes };
  if (d.driverOverride !== null) write(view, writes, `${dir}/driver_override`, "\n");
  if (before === VFIO_DRIVER) write(view, writes, `/sys/bus/pci/drivers/${VFIO_DRIVER}/unbind`, d.address);
  if (before === VFIO_DRIVER || before === null) write(view, writes, DRIVERS_PROBE, d.address);
  const after = driverOf(view, d.address);
  if (after === VFIO_DRIVER) {
    throw new IommuError("UNBIND_FAILED", `${d.address}: still bound to vfio-pci`, { hint: "is a VM still using it? stop it and try again" });
  }
  return { address: d.address, before, after, changed: before !== after || writes.length > 0, writes };
}

function vfioNode(view: WritableSysfsView, group: number | null): { vfioDevice: string | null; vfioDevicePresent: boolean } {
  if (group === null) return { vfioDevice: null, vfioDevicePresent: false };
  const path = `/dev/vfio/${group}`;
  return { vfioDevice: path, vfioDevicePresent: view.exists(path) };
}

export function bindVfio(view: WritableSysfsView, bdf: string, opts: BindOptions = {}): BindResult {
  const t = resolveTargets(view, bdf, opts.group === true);
  if (t.device.iommuGroup === null) {
    throw new IommuError("NO_IOMMU_GROUP", `${t.device.address} is in no IOMMU group: the IOMMU is not active, and vfio-pci refuses such devices`, {
      hint: "turn the IOMMU on ('iommu bootargs' shows how), reboot, and check with 'iommu status'",
    });
  }
  if (!view.exists(`/sys/bus/pci/drivers/${VFIO_DRIVER}`)) {
    throw new IommuError("VFIO_PCI_NOT_LOADED", "the vfio-pci driver is not loaded", { hint: "run 'modprobe vfio-pci' and try again" });
  }
  const forced = refuseHostDevices(view, t, opts.force === true);
  const notes = groupNotes(view, t, "bind");
  const devices = t.devices.map((d) => bindOne(view, d));
  return { action: "bind", device: t.device.address, group: t.device.iommuGroup, ...vfioNode(view, t.device.iommuGroup), devices, skipped: t.skipped, forced, notes };
}

export function unbindVfio(view: WritableSysfsView, bdf: string, opts: BindOptions = {}): BindResult {
  const t = resolveTargets(view, bdf, opts.group === true);
  const devices = t.devices.map((d) => unbindOne(view, d));
  const notes = devices
    .filter((c) => c.changed && c.after === null)
    .map((c) => `${c.address} has no driver now: load its driver (modprobe …) or write the address to ${DRIVERS_PROBE} once it is loaded`);
  return { action: "unbind", device: t.device.address, group: t.device.iommuGroup, ...vfioNode(view, t.device.iommuGroup), devices, skipped: t.skipped, forced: [], notes };
}

export function renderBind(r: BindResult): string {
  let out = "";
  for (const c of r.devices) {
    if (!c.changed) out += `${c.address}: already ${r.action === "bind" ? "on vfio-pci" : `off vfio-pci (${c.after ?? "no driver"})`}\n`;
    else out += `${c.address}: ${c.before ?? "no driver"} -> ${c.after ?? "no driver"}\n`;
  }
  for (const s of r.skipped) out += `${s.address}: left alone (${s.reason})\n`;
  for (const f of r.forced) out += `warning: forced: ${f.address} ${f.uses.map((u) => u.detail).join(", ")}\n`;
  if (r.action === "bind" && r.vfioDevice !== null) {
    out += r.vfioDevicePresent ? `VFIO group device: ${r.vfioDevice}\n` : `VFIO group device: ${r.vfioDevice} (not visible here yet)\n`;
  }
  for (const n of r.notes) out += `note: ${n}\n`;
  return out;
}
