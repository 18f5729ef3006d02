/**
 * `iommu groups`: every IOMMU group and its devices, named from pci.ids, in the layout people know from
 * ls-iommu / lspci -nn, with what matters for pass-through marked: bridges, ACS, reset methods, boot VGA.
 */
import { IommuError } from "../core/errors.js";
import { hex } from "../core/hex.js";
import { formatClass, listIommuGroups, listPciDevices, type PciDevice } from "./pci.js";
import { deviceLabel, type PciIds } from "./pciids.js";
import type { SysfsView } from "./sysfs-view.js";
import { analyzeCmdline } from "./cmdline.js";
import type { Problem } from "./problem.js";
import { readKernelConfig, readRelease } from "./status-kernel.js";
import { readPassthroughFacts } from "./passthrough/facts.js";
import { deviceFindings } from "./passthrough/findings.js";
import { readTextSafe } from "./passthrough/read.js";

export interface GroupDevice {
  address: string;
  vendorId: string;
  deviceId: string;
  subsystemVendorId: string | null;
  subsystemDeviceId: string | null;
  /** Base class and sub-class, "0300". */
  class: string;
  /** Full 24-bit class code, "0x030000". */
  classCode: string;
  className: string | null;
  vendorName: string | null;
  deviceName: string | null;
  /** "NVIDIA Corporation GA106 [GeForce RTX 3060]", or "Vendor 10de Device 2504" without pci.ids. */
  name: string;
  revision: string | null;
  driver: string | null;
  driverOverride: string | null;
  resetMethods: string[] | null;
  bridge: boolean;
  pcieType: string | null;
  acs: { capable: string[]; enabled: string[]; isolating: boolean } | null;
  /** False when ACS could not be read (extended config space needs root). */
  acsKnown: boolean;
  bootVga: boolean | null;
  iommuUnit: string | null;
  parent: string | null;
  /** Pass-through findings for this device (the codes `iommu check` and `iommu status` report). */
  findings: Problem[];
}

export interface GroupEntry {
  id: number;
  type: string | null;
  devices: GroupDevice[];
  reservedRegions: { start: string; end: string; type: string }[];
}

export interface GroupsReport {
  source: string;
  groups: GroupEntry[];
  /** Devices in no IOMMU group (all of them when the IOMMU is not active). */
  ungrouped: GroupDevice[];
}

const h2 = (n: number) => n.toString(16).padStart(2, "0");
const h4 = (n: number) => n.toString(16).padStart(4, "0");

export function groupDevice(d: PciDevice, ids: PciIds | null, findings: Problem[] = []): GroupDevice {
  const label = deviceLabel(ids, d.vendorId, d.deviceId);
  return {
    address: d.address,
    vendorId: h4(d.vendorId),
    deviceId: h4(d.deviceId),
    subsystemVendorId: d.subsystemVendorId === null ? null : h4(d.subsystemVendorId),
    subsystemDeviceId: d.subsystemDeviceId === null ? null : h4(d.subsystemDeviceId),
    class: formatClass(d.classCode),
    classCode: hex(d.classCode, 6),
    className: ids?.className(d.classCode) ?? null,
    vendorName: label.vendorName,
    deviceName: label.deviceName,
    name: label.label,
    revision: d.revision === null ? null : h2(d.revision),
    driver: d.driver,
    driverOverride: d.driverOverride,
    resetMethods: d.resetMethods,
    bridge: d.isBridge,
    pcieType: d.pcieType,
    acs: d.acs === null ? null : { capable: d.acs.capable, enabled: d.acs.enabled, isolating: d.acs.isolating },
    acsKnown: d.acsKnown,
    bootVga: d.bootVga,
    iommuUnit: d.iommuUnit,
    parent: d.parent,
    findings,
  };
}

/** Named classes for --class (PCI Code and ID Assignment specification class codes). */
const CLASS_NAMES: Record<string, string[]> = {
  storage: ["01"],
  nvme: ["0108"],
  network: ["02"],
  net: ["02"],
  ethernet: ["0200"],
  display: ["03"],
  gpu: ["03"],
  vga: ["0300"],
  multimedia: ["04"],
  audio: ["0401", "0403"],
  bridge: ["06"],
  usb: ["0c03"],
  serial: ["0c"],
};

export type ClassFilter = (classCode: number) => boolean;

/** Parses one --class value: a name (network, gpu, usb, …) or hex "03", "0300", "030000" (0x allowed). */
export function parseClassFilter(text: string): ClassFilter {
  const t = text.trim().toLowerCase().replace(/^0x/, "");
  const named = CLASS_NAMES[t];
  const prefixes = named ?? (/^([0-9a-f]{2}|[0-9a-f]{4}|[0-9a-f]{6})$/.test(t) ? [t] : null);
  if (prefixes === null) {
    throw new IommuError("USAGE", `--class ${text}: not a class code or name`, {
      hint: `give hex (03, 0300, 030000) or one of: ${Object.keys(CLASS_NAMES).join(", ")}`,
    });
  }
  return (code) => {
    const full = code.toString(16).padStart(6, "0");
    return prefixes.some((p) => full.startsWith(p));
  };
}

export interface GroupsOptions {
  ids: PciIds | null;
  /** Keep only groups with at least one device matching any filter (whole groups are shown). */
  classFilters?: ClassFilter[];
}

export function gatherGroups(view: SysfsView, options: GroupsOptions): GroupsReport {
  const devices = listPciDevices(view);
  const release = readRelease(view);
  const cmdline = analyzeCmdline(readTextSafe(view, "/proc/cmdline").text ?? "");
  const facts = readPassthroughFacts(view, { release, config: readKernelConfig(view, release), cmdline, devices });
  const entry = (d: PciDevice) => groupDevice(d, options.ids, deviceFindings(view, facts, d));
  const byAddress = new Map(devices.map((d) => [d.address, d]));
  const filters = options.classFilters ?? [];
  const matches = (d: PciDevice) => filters.length === 0 || filters.some((f) => f(d.classCode));
  const inGroup = new Set<string>();
  const groups: GroupEntry[] = [];
  for (const g of listIommuGroups(view)) {
    const members = g.devices.map((a) => byAddress.get(a)).filter((d): d is PciDevice => d !== undefined);
    for (const a of g.devices) inGroup.add(a);
    if (!members.some(matches)) continue;
    groups.push({
      id: g.id,
      type: g.type,
      devices: members.map(entry),
      reservedRegions: g.reservedRegions.map((r) => ({ start: hex(r.start), end: hex(r.end), type: r.type })),
    });
  }
  const ungrouped = devices.filter((d) => !inGroup.has(d.address) && matches(d));
  return { source: view.description, groups, ungrouped: ungrouped.map(entry) };
}

function acsTag(d: GroupDevice): string | null {
  if (!d.acsKnown) return d.bridge ? "acs=unknown" : null;
  if (d.acs === null) return d.bridge ? "acs=none" : null;
  return d.acs.isolating ? "acs=isolating" : "acs=not-isolating";
}

/** Line tags for pass-through findings (CHECK_INCOMPLETE and those other tags already show are left out). */
export const FINDING_TAGS: Record<string, string> = {
  DEVICE_IN_D3COLD: "d3cold",
  DEVICE_NOT_RESPONDING: "not-responding",
  RESET_BUS_ONLY: "bus-reset-shared",
  AMD_GPU_RESET_BUG: "amd-reset-bug",
  VENDOR_RESET_NOT_SELECTED: "vendor-reset-unselected",
  BOOT_FRAMEBUFFER_IN_BAR: "bootfb-in-bar",
  EARLY_BIND_LOST: "vfio-ids-lost",
  EARLY_BIND_UNCLAIMED: "vfio-ids-unclaimed",
  GPU_COMPANION_ON_HOST: "companion-on-host",
};

function tags(d: GroupDevice): string[] {
  const t: string[] = [];
  if (d.bridge) t.push("bridge");
  const acs = acsTag(d);
  if (acs !== null) t.push(acs);
  if (d.resetMethods !== null && !d.bridge) t.push(`reset=${d.resetMethods.length > 0 ? d.resetMethods.join(",") : "none"}`);
  if (d.bootVga === true) t.push("boot-vga");
  if (d.driverOverride !== null) t.push(`override=${d.driverOverride}`);
  for (const f of d.findings) {
    const tag = FINDING_TAGS[f.code];
    if (tag !== undefined && !t.includes(tag)) t.push(tag);
  }
  return t;
}

/** "0000:01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA106 [10de:2504] (rev a1)" */
export function deviceLine(d: GroupDevice): string {
  const cls = d.className ?? "Class";
  const rev = d.revision !== null && d.revision !== "00" ? ` (rev ${d.revision})` : "";
  return `${d.address} ${cls} [${d.class}]: ${d.name} [${d.vendorId}:${d.deviceId}]${rev}`;
}

export interface RenderGroupsOptions {
  /** -k: the bound driver on its own line, as lspci -k shows it. */
  drivers?: boolean;
}

export function renderGroupsText(r: GroupsReport, options: RenderGroupsOptions = {}): string {
  const width = Math.max(2, ...r.groups.map((g) => String(g.id).length));
  const lines: string[] = [];
  const emit = (prefix: string, d: GroupDevice) => {
    const t = tags(d);
    lines.push(`${prefix}${deviceLine(d)}${t.length > 0 ? "  " + t.join(" ") : ""}`);
    if (options.drivers && d.driver !== null) lines.push(`\tKernel driver in use: ${d.driver}`);
  };
  for (const g of r.groups) for (const d of g.devices) emit(`IOMMU Group ${String(g.id).padStart(width)}: `, d);
  for (const d of r.ungrouped) emit("No IOMMU group: ", d);
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}
