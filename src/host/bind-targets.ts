/**
 * Which devices a pass-through command acts on: one device, or (with --group) every device of its IOMMU group
 * that can be given to a guest. Bridges stay with the host: PCI-to-PCI bridges and root/switch ports are managed
 * by pcieport (which Linux allows to stay bound while the group is used by VFIO), and host bridges are part of
 * the chipset.
 */
import { IommuError } from "../core/errors.js";
import { formatPciAddress, parsePciAddress } from "../core/pci.js";
import { readIommuGroup, readPciDevice, type IommuGroup, type PciDevice } from "./pci.js";
import type { SysfsView } from "./sysfs-view.js";
import { requireSysfs } from "./views/open.js";

/** Base class 0x06 (bridge), sub-class 0x00: a host bridge. */
export const isHostBridge = (d: Pick<PciDevice, "classCode">) => d.classCode >>> 8 === 0x0600;
/** A bridge of any kind: PCI-to-PCI/CardBus header, or base class 0x06 (host, ISA/LPC, PCI, … bridges). */
export const isAnyBridge = (d: Pick<PciDevice, "classCode" | "isBridge">) => d.isBridge || d.classCode >>> 16 === 0x06;

function bridgeKind(d: PciDevice): string {
  if (isHostBridge(d)) return "host bridge";
  if (d.isBridge) return "bridge (stays with pcieport)";
  return `bridge, class ${(d.classCode >>> 8).toString(16).padStart(4, "0")} (stays with the host)`;
}

export interface Targets {
  /** The device the user named. */
  device: PciDevice;
  group: IommuGroup | null;
  /** Devices to act on, in address order. */
  devices: PciDevice[];
  /** Group members left out, with why. */
  skipped: Array<{ address: string; reason: string }>;
  /** Other functions of a GPU's slot taken along with it (with `companions`). */
  companions: string[];
}

export interface TargetOptions {
  /** Take a GPU's other functions (HDMI/DP audio, USB-C), which go to a VM with it, whatever their group. */
  companions?: boolean;
}

/** A display controller (base class 0x03): a GPU. */
export const isGpu = (d: Pick<PciDevice, "classCode">) => d.classCode >>> 16 === 0x03;

/** The other functions of the device's slot (same segment, bus, device number), bridges left out. */
export function slotFunctions(view: SysfsView, d: PciDevice): PciDevice[] {
  const prefix = d.address.slice(0, -1);
  return (view.list("/sys/bus/pci/devices") ?? [])
    .map((n) => n.toLowerCase())
    .filter((n) => n.startsWith(prefix) && n !== d.address)
    .sort()
    .map((n) => readPciDevice(view, n))
    .filter((x): x is PciDevice => x !== null && !isAnyBridge(x));
}

function withCompanions(view: SysfsView, t: Omit<Targets, "companions">, on: boolean): Targets {
  if (!on || !isGpu(t.device)) return { ...t, companions: [] };
  const have = new Set(t.devices.map((d) => d.address));
  const extra = slotFunctions(view, t.device).filter((d) => !have.has(d.address));
  const devices = [...t.devices, ...extra].sort((a, b) => (a.address < b.address ? -1 : 1));
  return { ...t, devices, companions: extra.map((d) => d.address) };
}

/** Reads the named device; a malformed address or a device that does not exist is an IommuError (exit 2). */
export function requireDevice(view: SysfsView, bdfText: string): PciDevice {
  const address = formatPciAddress(parsePciAddress(bdfText));
  requireSysfs(view);
  const device = readPciDevice(view, address);
  if (device === null) {
    throw new IommuError("DEVICE_NOT_FOUND", `no PCI device ${address} in ${view.description}`, {
      hint: "list devices with 'lspci -D' or 'iommu groups'",
    });
  }
  return device;
}

export function resolveTargets(view: SysfsView, bdfText: string, wholeGroup: boolean, options: TargetOptions = {}): Targets {
  return withCompanions(view, resolveGroupTargets(view, bdfText, wholeGroup), options.companions === true);
}

function resolveGroupTargets(view: SysfsView, bdfText: string, wholeGroup: boolean): Omit<Targets, "companions"> {
  const device = requireDevice(view, bdfText);
  if (isAnyBridge(device)) {
    throw new IommuError("DEVICE_IS_BRIDGE", `${device.address} is a ${bridgeKind(device).split(" (")[0]}; bridges cannot be given to a guest`, {
      hint: "name an endpoint device (a GPU, NIC, NVMe drive, …)",
    });
  }
  const group = device.iommuGroup === null ? null : readIommuGroup(view, device.iommuGroup);
  if (!wholeGroup) return { device, group, devices: [device], skipped: [] };
  if (group === null) {
    throw new IommuError("NO_IOMMU_GROUP", `${device.address} is in no IOMMU group: the IOMMU is not active`, {
      hint: "enable VT-d/AMD-Vi in the firmware and see 'iommu bootargs'",
    });
  }
  const devices: PciDevice[] = [];
  const skipped: Targets["skipped"] = [];
  for (const addr of group.devices) {
    const d = addr === device.address ? device : readPciDevice(view, addr);
    if (d === null) skipped.push({ address: addr, reason: "listed in the group but not on the PCI bus" });
    else if (isAnyBridge(d)) skipped.push({ address: addr, reason: bridgeKind(d) });
    else devices.push(d);
  }
  return { device, group, devices, skipped };
}
