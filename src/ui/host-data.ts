/**
 * The browser view's data for a real host, read through a SysfsView (a snapshot recorded with `iommu snapshot`,
 * or any other view): the PCI devices of /sys/bus/pci/devices with their class, ids and the bridges above them
 * (from the resolved device paths), the IOMMU groups of /sys/kernel/iommu_groups and why their devices are
 * together, the units of /sys/class/iommu merged with the firmware's, the doctor's status problems for the host,
 * and each device's check (`iommu check BDF`) on the device it concerns. A recording holds no IOMMU tables, so
 * address spaces, walks, stories and scenarios are absent and `absent` says why.
 */
import { IommuError } from "../core/errors.js";
import { checkDevice, type CheckReport } from "../host/check.js";
import { gatherGroups, type GroupDevice } from "../host/groups.js";
import type { PciIds } from "../host/pciids.js";
import { PCI_DEVICES_DIR } from "../host/pci.js";
import { gatherStatus, type StatusReport } from "../host/status.js";
import type { SysfsView } from "../host/sysfs-view.js";
import { requireSysfs } from "../host/views/open.js";
import type { UiData, UiDevice, UiFinding, UiGroup, UiHost, UiUnit } from "./types.js";

/** What the recording says about itself (the snapshot file's header). */
export interface Recording {
  hostname?: string;
  kernel?: string;
  createdAt?: string;
  createdBy?: string;
}

export interface HostUiOptions {
  /** Device names (pci.ids); null shows vendor and device ids. */
  ids: PciIds | null;
  recording?: Recording;
}

/** Check items about the whole host rather than the device (they repeat the status problems). */
const HOST_WIDE = new Set(["IOMMU_ACTIVE", "INTERRUPT_REMAPPING", "VFIO_PCI_LOADED"]);

const slotOf = (address: string): string => address.slice(0, address.lastIndexOf("."));
const isBridgeLike = (d: GroupDevice): boolean => d.bridge || d.classCode.startsWith("0x06");

export type AcsState = "isolating" | "not isolating" | "none" | "unknown";

/**
 * ACS as the recording shows it. A conventional PCI function (its capability list readable, no PCIe
 * capability) has no extended config space and so no ACS; a PCIe function whose extended config space was not
 * recorded (not root) is unknown.
 */
export function acsState(view: SysfsView, d: GroupDevice): AcsState {
  if (d.acsKnown) return d.acs === null ? "none" : d.acs.isolating ? "isolating" : "not isolating";
  let bytes = 0;
  try {
    bytes = view.readBytes(`${PCI_DEVICES_DIR}/${d.address}/config`)?.length ?? 0;
  } catch (e) {
    if (!(e instanceof IommuError)) throw e;
  }
  return d.pcieType === null && bytes >= 0x100 ? "none" : "unknown";
}

/** Why the kernel put these devices in one group, from what the recording shows of the path above each. */
export function hostGroupReasons(members: GroupDevice[], byAddress: Map<string, GroupDevice>, acs: (d: GroupDevice) => AcsState): string[] {
  if (members.length < 2) return [];
  const why = new Set<string>();
  const up = (d: GroupDevice): GroupDevice | undefined => (d.parent === null ? undefined : byAddress.get(d.parent));
  for (const f of members) {
    const seen = new Set<string>();
    for (let p = up(f); p !== undefined && !seen.has(p.address); p = up(p)) {
      seen.add(p.address);
      const state = acs(p);
      if (p.pcieType === "pcie-to-pci-bridge") why.add(`PCIe-to-PCI bridge ${p.address}: devices behind it share its requester id (alias)`);
      else if (p.bridge && p.pcieType === null && state === "none") why.add(`conventional PCI bridge ${p.address}: devices behind it share its requester id (alias)`);
      else if (state === "unknown") why.add(`ACS at ${p.address} not known: its extended config space is not in the recording (record as root)`);
      else if (state !== "isolating") why.add(`no ACS on the path at ${p.address}`);
    }
    const slot = members.filter((g) => slotOf(g.address) === slotOf(f.address));
    const state = acs(f);
    if (slot.length > 1 && state !== "isolating") {
      why.add(`multifunction device ${slotOf(f.address)} ${state === "unknown" ? "(ACS not known: extended config space not recorded)" : "without ACS"}`);
    }
  }
  if (why.size === 0) why.add("the recording shows no reason (no PCIe-to-PCI bridge, bridge without ACS or multifunction slot among them)");
  return [...why];
}

function deviceCheck(view: SysfsView, address: string): NonNullable<UiDevice["check"]> {
  let r: CheckReport;
  try {
    r = checkDevice(view, address);
  } catch (e) {
    if (!(e instanceof IommuError)) throw e;
    return { ready: false, findings: [{ code: e.code, ok: false, severity: "error", message: e.message, hint: e.hint ?? "", scope: "device" }], nextSteps: [] };
  }
  const findings: UiFinding[] = r.checks.map((c) => ({ ...c, scope: HOST_WIDE.has(c.code) ? "host" : "device" }));
  return { ready: r.ready, findings, nextSteps: r.nextSteps };
}

function hostDevice(view: SysfsView, d: GroupDevice, group: number | null, all: GroupDevice[]): UiDevice {
  const multifunction = all.some((o) => o.address !== d.address && slotOf(o.address) === slotOf(d.address));
  const bridge = isBridgeLike(d);
  const acs = acsState(view, d);
  return {
    bdf: d.address,
    name: d.deviceName ?? d.name,
    type: d.pcieType ?? (d.bridge ? "pci-bridge" : d.classCode.startsWith("0x0600") ? "host-bridge" : "pci"),
    parent: d.parent,
    acs: acs === "unknown" ? (d.bridge || multifunction ? null : false) : acs === "isolating",
    multifunction,
    aliases: [],
    group,
    unit: d.iommuUnit,
    driver: d.driver,
    ids: `${d.vendorId}:${d.deviceId} [${d.class}]${d.className === null ? "" : ` ${d.className}`}`,
    check: bridge ? null : deviceCheck(view, d.address),
  };
}

function hostUnits(status: StatusReport, devices: UiDevice[]): UiUnit[] {
  const ir = status.kernel.interruptRemapping;
  return status.platform.units.map((u) => {
    const name = u.name ?? `${u.kind === "amd" ? "IVHD" : "DRHD"} (in the firmware table only)`;
    return {
      name,
      base: u.registerBase ?? "-",
      translation: u.inKernel && status.kernel.iommuActive,
      irqRemapping: u.capabilities.interruptRemapping === false || !u.inKernel ? false : ir === "enabled" ? true : ir === "disabled" ? false : null,
      scope: u.name === null ? [] : devices.filter((d) => d.unit === u.name).map((d) => d.bdf),
    };
  });
}

function hostFacts(view: SysfsView, status: StatusReport, rec: Recording): UiHost {
  return {
    source: view.description,
    hostname: rec.hostname ?? null,
    kernel: rec.kernel ?? status.kernel.release,
    recordedAt: rec.createdAt ?? null,
    recordedBy: rec.createdBy ?? null,
    ready: status.ready,
    iommuActive: status.kernel.iommuActive,
    interruptRemapping: status.kernel.interruptRemapping,
    dmaPolicy: status.kernel.dmaPolicy,
    problems: status.problems,
  };
}

/** The page's data for the host `view` shows. Throws NO_SYSFS when the view holds no /sys. */
export function buildHostUi(view: SysfsView, o: HostUiOptions): UiData {
  requireSysfs(view);
  const status = gatherStatus(view);
  const report = gatherGroups(view, { ids: o.ids });
  const grouped = report.groups.flatMap((g) => g.devices.map((d) => ({ d, group: g.id })));
  const listed = [...grouped, ...report.ungrouped.map((d) => ({ d, group: null }))].sort((a, b) => (a.d.address < b.d.address ? -1 : a.d.address > b.d.address ? 1 : 0));
  const all = listed.map((x) => x.d);
  const byAddress = new Map(all.map((d) => [d.address, d]));
  const devices = listed.map((x) => hostDevice(view, x.d, x.group, all));
  const groups: UiGroup[] = report.groups.map((g) => ({
    id: g.id,
    type: g.type,
    domainIds: null,
    devices: g.devices.map((d) => d.address),
    why: hostGroupReasons(g.devices, byAddress, (d) => acsState(view, d)),
    reserved: g.reservedRegions,
  }));
  const rec = o.recording ?? {};
  return {
    source: "snapshot",
    machine: rec.hostname ?? view.description,
    cmdline: status.kernel.cmdline.raw,
    devices,
    units: hostUnits(status, devices),
    groups,
    spaces: [],
    stories: [],
    scenarios: [],
    scenariosSkipped: null,
    host: hostFacts(view, status, rec),
    absent: `${view.description} holds what sysfs and /proc showed, not the IOMMU's tables in memory: address spaces, page walks, stories and scenarios need a simulated machine (iommu ui --machine NAME).`,
  };
}
