/**
 * PCI devices and IOMMU groups as a Linux host shows them in sysfs:
 *   /sys/bus/pci/devices/DDDD:BB:DD.F -> ../../../devices/pci0000:00/…/DDDD:BB:DD.F  (vendor, device, class, …,
 *       driver -> …/drivers/NAME, iommu_group -> …/kernel/iommu_groups/N, iommu -> …/iommu/dmar0, config)
 *   /sys/kernel/iommu_groups/N/{devices/, type, reserved_regions}
 * Everything is read through a SysfsView, so the same code serves the live host, a root prefix and a snapshot.
 */
import { posix } from "node:path";
import { IommuError } from "../core/errors.js";
import { parseHexBig } from "../core/hex.js";
import { parsePciAddress, type PciAddress } from "../core/pci.js";
import { configFacts, type AcsInfo } from "./pci-config.js";
import type { SysfsView } from "./sysfs-view.js";

export const PCI_DEVICES_DIR = "/sys/bus/pci/devices";
export const IOMMU_GROUPS_DIR = "/sys/kernel/iommu_groups";

export interface PciDevice {
  /** "0000:01:00.0" */
  address: string;
  pci: PciAddress;
  /** Where the device lives in the device tree: /sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0 */
  sysfsPath: string;
  /** The upstream bridge's address, or null for a device on a root bus. */
  parent: string | null;
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number | null;
  subsystemDeviceId: number | null;
  /** 24-bit class code: base class, sub-class, programming interface (0x030000 is a VGA controller). */
  classCode: number;
  revision: number | null;
  /** Bound driver ("vfio-pci", "nvidia"), or null when no driver is bound. */
  driver: string | null;
  iommuGroup: number | null;
  /** The IOMMU unit translating for it ("dmar0", "ivhd0"), from the device's iommu link. */
  iommuUnit: string | null;
  /** Reset methods the kernel will try, in order ("flr", "pm", "bus", …); null when the kernel does not say. */
  resetMethods: string[] | null;
  /** A driver forced with driver_override, or null. */
  driverOverride: string | null;
  /** PCI-to-PCI or CardBus bridge (header type 1/2, or class 0x0604/0x0607). */
  isBridge: boolean;
  /** The firmware's boot display (boot_vga), or null when the kernel does not say (not a VGA device). */
  bootVga: boolean | null;
  /** PCIe port type ("root-port", "endpoint", …) or null for conventional PCI / unreadable. */
  pcieType: string | null;
  /** ACS capability; null when the device has none or it could not be read (see acsKnown). */
  acs: AcsInfo | null;
  /** False when extended config space was not readable (not root), so ACS is unknown rather than absent. */
  acsKnown: boolean;
  /** NUMA node, or null (-1 or absent). */
  numaNode: number | null;
  /** For an SR-IOV virtual function: the physical function's address. */
  physfn: string | null;
}

export interface ReservedRegion {
  start: bigint;
  end: bigint;
  /** "direct", "direct-relaxable", "reserved", "msi", "sw-msi" */
  type: string;
}

export interface IommuGroup {
  id: number;
  /** Default domain type as sysfs names it: "identity", "DMA", "DMA-FQ", "unmanaged", "blocked", … or null. */
  type: string | null;
  /** Member device addresses, sorted. */
  devices: string[];
  reservedRegions: ReservedRegion[];
}

const BDF_NAME = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i;

function hexAttr(view: SysfsView, path: string): number | null {
  const t = view.readText(path);
  if (t === null) return null;
  const v = parseHexBig(t);
  return v === null || v > 0xffffffffn ? null : Number(v);
}

function linkName(view: SysfsView, path: string): string | null {
  const t = view.readLink(path);
  return t === null ? null : posix.basename(t);
}

function trimmed(view: SysfsView, path: string): string | null {
  const t = view.readText(path);
  return t === null ? null : t.trim();
}

/** Reads an optional attribute; an unreadable one counts as absent (the caller reports what it can). */
function optional<T>(read: () => T): T | null {
  try {
    return read();
  } catch (e) {
    if (e instanceof IommuError) return null;
    throw e;
  }
}

function readConfig(view: SysfsView, dir: string): Uint8Array | null {
  return optional(() => view.readBytes(`${dir}/config`));
}

/** Reads one device; null when /sys/bus/pci/devices/ADDRESS does not exist. */
export function readPciDevice(view: SysfsView, address: string): PciDevice | null {
  const pci = parsePciAddress(address);
  const name = address.toLowerCase();
  const dir = `${PCI_DEVICES_DIR}/${name}`;
  if (!view.exists(dir)) return null;
  const target = view.readLink(dir);
  const sysfsPath = target === null ? dir : posix.resolve(PCI_DEVICES_DIR, target);
  const up = posix.basename(posix.dirname(sysfsPath));
  const cfgBytes = readConfig(view, dir);
  const cfg = configFacts(cfgBytes);
  const fromCfg16 = (o: number): number | null =>
    cfgBytes !== null && cfgBytes.length >= o + 2 ? (cfgBytes[o] ?? 0) | ((cfgBytes[o + 1] ?? 0) << 8) : null;

  const classCode = hexAttr(view, `${dir}/class`) ?? 0xffffff;
  const group = linkName(view, `${dir}/iommu_group`);
  const groupId = group !== null && /^\d+$/.test(group) ? Number(group) : null;
  const resetText = optional(() => trimmed(view, `${dir}/reset_method`));
  const override = trimmed(view, `${dir}/driver_override`);
  const bootVga = trimmed(view, `${dir}/boot_vga`);
  const numa = trimmed(view, `${dir}/numa_node`);
  const numaNode = numa !== null && /^\d+$/.test(numa) ? Number(numa) : null;
  const baseSub = classCode >>> 8;

  return {
    address: name,
    pci,
    sysfsPath,
    parent: BDF_NAME.test(up) ? up.toLowerCase() : null,
    vendorId: hexAttr(view, `${dir}/vendor`) ?? fromCfg16(0) ?? 0xffff,
    deviceId: hexAttr(view, `${dir}/device`) ?? fromCfg16(2) ?? 0xffff,
    subsystemVendorId: hexAttr(view, `${dir}/subsystem_vendor`),
    subsystemDeviceId: hexAttr(view, `${dir}/subsystem_device`),
    classCode,
    revision: hexAttr(view, `${dir}/revision`) ?? (cfgBytes !== null && cfgBytes.length > 8 ? (cfgBytes[8] ?? null) : null),
    driver: linkName(view, `${dir}/driver`),
    iommuGroup: groupId,
    iommuUnit: linkName(view, `${dir}/iommu`),
    resetMethods: resetText === null ? null : resetText.split(/\s+/).filter((s) => s !== ""),
    driverOverride: override === null || override === "(null)" || override === "" ? null : override,
    isBridge: cfg.headerType === 1 || cfg.headerType === 2 || baseSub === 0x0604 || baseSub === 0x0607,
    bootVga: bootVga === null ? null : bootVga === "1",
    pcieType: cfg.pcieType,
    acs: cfg.acs,
    acsKnown: cfg.extendedReadable,
    numaNode,
    physfn: linkName(view, `${dir}/physfn`),
  };
}

function compareAddress(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Every PCI device the host shows, sorted by address. An absent /sys/bus/pci/devices gives an empty list. */
export function listPciDevices(view: SysfsView): PciDevice[] {
  const names = (view.list(PCI_DEVICES_DIR) ?? []).filter((n) => BDF_NAME.test(n));
  const out: PciDevice[] = [];
  for (const n of names.sort(compareAddress)) {
    const d = readPciDevice(view, n);
    if (d !== null) out.push(d);
  }
  return out;
}

/** Parses reserved_regions lines: "0x00000000fee00000 0x00000000feefffff msi". Malformed lines are skipped. */
export function parseReservedRegions(text: string): ReservedRegion[] {
  const out: ReservedRegion[] = [];
  for (const line of text.split("\n")) {
    const [a, b, type] = line.trim().split(/\s+/);
    if (a === undefined || b === undefined) continue;
    const start = parseHexBig(a);
    const end = parseHexBig(b);
    if (start === null || end === null) continue;
    out.push({ start, end, type: type ?? "unknown" });
  }
  return out;
}

export function readIommuGroup(view: SysfsView, id: number): IommuGroup | null {
  const dir = `${IOMMU_GROUPS_DIR}/${id}`;
  if (!view.exists(dir)) return null;
  const devices = (view.list(`${dir}/devices`) ?? []).map((d) => d.toLowerCase()).sort(compareAddress);
  const rr = optional(() => view.readText(`${dir}/reserved_regions`));
  return {
    id,
    type: optional(() => trimmed(view, `${dir}/type`)),
    devices,
    reservedRegions: rr === null ? [] : parseReservedRegions(rr),
  };
}

/** Every IOMMU group, sorted numerically (ids may have gaps). Empty when the kernel made no groups. */
export function listIommuGroups(view: SysfsView): IommuGroup[] {
  const ids = (view.list(IOMMU_GROUPS_DIR) ?? []).filter((n) => /^\d+$/.test(n)).map(Number);
  ids.sort((a, b) => a - b);
  const out: IommuGroup[] = [];
  for (const id of ids) {
    const g = readIommuGroup(view, id);
    if (g !== null) out.push(g);
  }
  return out;
}

/** "10de:2504" as lspci -n and vfio-pci.ids write it. */
export function formatIds(d: Pick<PciDevice, "vendorId" | "deviceId">): string {
  return `${d.vendorId.toString(16).padStart(4, "0")}:${d.deviceId.toString(16).padStart(4, "0")}`;
}

/** "0300": base class and sub-class, as lspci prints them in brackets. */
export function formatClass(classCode: number): string {
  return (classCode >>> 8).toString(16).padStart(4, "0");
}
