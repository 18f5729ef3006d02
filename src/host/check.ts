/**
 * `iommu check BDF`: can this device be given to a virtual machine with VFIO right now, and if not, what exactly
 * to do. Host-wide facts (IOMMU active, interrupt remapping) come from the status verdict; the rest is about the
 * device and its IOMMU group:
 *
 * - viability: VFIO takes a group only when every device in it is bound to vfio-pci (or a vfio variant driver),
 *   pci-stub, or nothing; bridges may stay on pcieport (since Linux 5.19 these are exactly the drivers that set
 *   driver_managed_dma). A group member the host needs makes the whole group unusable;
 * - the device itself must not be in use by the host (same rules as `iommu bind`);
 * - reset: /sys/bus/pci/devices/BDF/reset_method (Linux 5.15+) lists how the kernel can reset it between VM
 *   runs; without any, state can leak from one VM to the next and some devices fail to start a second time;
 * - reserved regions: firmware RMRRs (Intel) and unity maps (AMD) appear in the group's reserved_regions as
 *   "direct" or "direct-relaxable". Since Linux 5.3, USB and graphics RMRRs are "direct-relaxable" and do not
 *   block assignment; a "direct" region does: the kernel refuses to attach the device to a VFIO domain
 *   ("Device is ineligible for IOMMU domain attach due to platform RMRR requirement");
 * - what breaks pass-through in practice (passthrough/): the device answers config reads (not stuck in
 *   D3cold), its reset is usable (no FLR, a bus reset shared with other devices, the AMD reset bug), no boot
 *   framebuffer holds its BAR, vfio-pci's ids won it at boot, driver_override does not name another driver,
 *   a GPU's other functions go with it, and the locked-memory limit covers the guest's RAM.
 */
import { formatClass, formatIds, readIommuGroup, readPciDevice, type IommuGroup, type PciDevice } from "./pci.js";
import { gatherStatusWithFacts } from "./status.js";
import type { PassthroughFacts } from "./passthrough/facts.js";
import { deviceChecks } from "./passthrough/findings.js";
import { slotCompanions } from "./passthrough/binding-checks.js";
import { memlockCheck } from "./passthrough/host-checks.js";

/** Status findings after which vfio-pci cannot be loaded on this kernel. */
const VFIO_BLOCKERS = new Set(["VFIO_NOT_BUILT", "VFIO_PCI_NOT_BUILT", "VFIO_PCI_MODULE_MISSING", "MODULES_DISABLED"]);
import type { Severity } from "./problem.js";
import type { SysfsView } from "./sysfs-view.js";
import { isAnyBridge, isGpu, requireDevice } from "./bind-targets.js";
import { findHostUses, type HostUse } from "./host-use.js";
import { hex } from "../core/hex.js";

export interface CheckItem {
  code: string;
  ok: boolean;
  severity: Severity;
  message: string;
  hint: string;
}

export interface GroupMember {
  address: string;
  driver: string | null;
  bridge: boolean;
  /** True when this member does not stop VFIO from using the group. */
  viable: boolean;
}

export interface CheckReport {
  source: string;
  device: { address: string; ids: string; class: string; driver: string | null; group: number | null };
  group: { id: number; type: string | null; members: GroupMember[] } | null;
  checks: CheckItem[];
  ready: boolean;
  nextSteps: string[];
}

/** Drivers that leave a group usable by VFIO (they set driver_managed_dma). */
export function driverKeepsGroupViable(driver: string | null, bridge: boolean): boolean {
  if (driver === null || driver === "vfio-pci" || driver === "pci-stub" || /vfio/.test(driver)) return true;
  return bridge && driver === "pcieport";
}

const item = (code: string, ok: boolean, severity: Severity, message: string, hint = ""): CheckItem => ({ code, ok, severity, message, hint });

const IR_CODES = new Set(["INTERRUPT_REMAPPING_DISABLED", "INTERRUPT_REMAPPING_UNKNOWN", "UNSAFE_INTERRUPTS_ALLOWED"]);

function membersOf(view: SysfsView, group: IommuGroup, device: PciDevice): GroupMember[] {
  return group.devices.map((addr) => {
    const d = addr === device.address ? device : readPciDevice(view, addr);
    const bridge = d === null ? false : isAnyBridge(d);
    const driver = d?.driver ?? null;
    return { address: addr, driver, bridge, viable: driverKeepsGroupViable(driver, bridge) };
  });
}

export interface CheckOptions {
  /** Guest RAM in bytes, to compare with the locked-memory limit (check --guest-memory). */
  guestMemory?: number | null;
}

type Status = ReturnType<typeof gatherStatusWithFacts>["report"];

/** 1–2: the IOMMU is on and interrupts are remapped. */
function hostItems(status: Status, checks: CheckItem[], steps: string[]): void {
  if (status.kernel.iommuActive) {
    checks.push(item("IOMMU_ACTIVE", true, "info", `the IOMMU is active (${status.kernel.unitCount} unit(s), ${status.kernel.groupCount} group(s))`));
  } else {
    const why = status.problems.find((p) => p.severity === "error" && !IR_CODES.has(p.code));
    checks.push(item("IOMMU_ACTIVE", false, "error", `the IOMMU is not active${why ? `: ${why.message}` : ""}`, why?.hint ?? "see 'iommu status'"));
    if (why?.code === "IOMMU_DISABLED_BY_CMDLINE" || why?.code === "IOMMU_NOT_ENABLED") steps.push("sudo iommu bootargs --apply", "sudo reboot");
    else steps.push("iommu status   # says what keeps the IOMMU off");
    return;
  }
  const ir = status.problems.find((p) => IR_CODES.has(p.code));
  if (ir === undefined) checks.push(item("INTERRUPT_REMAPPING", true, "info", "interrupt remapping is on"));
  else {
    checks.push(item("INTERRUPT_REMAPPING", ir.severity !== "error", ir.severity, ir.message, ir.hint));
    if (ir.code === "INTERRUPT_REMAPPING_DISABLED" && status.kernel.cmdline.intremapRequested === false) steps.push("sudo iommu bootargs --apply", "sudo reboot");
  }
}

/** 3: the device itself: not a bridge, in a group, not used by the host, on vfio-pci. */
function deviceItems(view: SysfsView, device: PciDevice, group: IommuGroup | null, active: boolean, checks: CheckItem[]): { members: GroupMember[]; uses: (a: string) => HostUse[] } {
  const addr = device.address;
  const bridge = isAnyBridge(device);
  if (bridge) checks.push(item("DEVICE_IS_BRIDGE", false, "error", `${addr} is a bridge: bridges stay with the host`, "check the endpoint behind it instead"));
  if (group === null) {
    if (active) checks.push(item("IOMMU_GROUP", false, "error", `${addr} is in no IOMMU group`, "the IOMMU does not translate for it; see 'dmesg | grep -i iommu'"));
  } else {
    checks.push(item("IOMMU_GROUP", true, "info", `${addr} is in IOMMU group ${group.id} (${group.devices.length} device(s))`));
  }
  const members = group === null ? [] : membersOf(view, group, device);
  const memberDevices = (group?.devices ?? [addr]).map((a) => (a === addr ? device : readPciDevice(view, a))).filter((d): d is PciDevice => d !== null);
  const hostUse = findHostUses(view, memberDevices);
  const uses = (a: string) => (hostUse.uses.get(a) ?? []).filter((u) => u.kind !== "bridge");
  const own = uses(addr);
  if (own.length > 0) {
    checks.push(item("HOST_IN_USE", false, "error", `the host uses ${addr}: it ${own.map((u) => u.detail).join(" and ")}`, "pick another device, or move the host off it first"));
  } else {
    const unknown = hostUse.unknown.length > 0 ? ` (could not check ${hostUse.unknown.join("; ")})` : "";
    checks.push(item("HOST_IN_USE", true, unknown ? "warning" : "info", `the host does not use ${addr} for its display, storage or default route${unknown}`));
  }
  if (!bridge) {
    if (device.driver === "vfio-pci" || (device.driver !== null && /vfio/.test(device.driver))) {
      checks.push(item("DEVICE_DRIVER", true, "info", `${addr} is bound to ${device.driver}`));
    } else {
      checks.push(item("DEVICE_DRIVER", false, "warning", `${addr} is bound to ${device.driver ?? "no driver"}, not vfio-pci`,
        "bind it with 'iommu bind', or let libvirt do it (managed='yes')"));
    }
  }
  return { members, uses };
}

/** 4–5: the rest of the group can leave the host, and no firmware region pins it. */
function groupItems(group: IommuGroup, addr: string, members: GroupMember[], uses: (a: string) => HostUse[], checks: CheckItem[]): void {
  const others = members.filter((m) => m.address !== addr && !m.viable);
  const critical = members.filter((m) => m.address !== addr && uses(m.address).length > 0);
  if (critical.length > 0) {
    checks.push(item("GROUP_VIABLE", false, "error",
      `group ${group.id} also holds ${critical.map((m) => `${m.address} (${uses(m.address).map((u) => u.detail).join(", ")})`).join(", ")}: the whole group would have to leave the host`,
      "the devices cannot be separated without ACS between them; use another slot, or another device"));
  } else if (others.length > 0) {
    checks.push(item("GROUP_VIABLE", false, "warning",
      `group ${group.id} also holds ${others.map((m) => `${m.address} (${m.driver ?? "no driver"})`).join(", ")}, which must leave its host driver too`,
      "a VM can only use a whole group: bind them together with --group"));
  } else {
    checks.push(item("GROUP_VIABLE", true, "info", members.length > 1 ? `every other device of group ${group.id} is free for VFIO or a bridge` : `${addr} is alone in its group`));
  }
  const direct = group.reservedRegions.filter((r) => r.type === "direct");
  const relaxable = group.reservedRegions.filter((r) => r.type === "direct-relaxable");
  const range = (r: { start: bigint; end: bigint }) => `${hex(r.start, 8)}-${hex(r.end, 8)}`;
  if (direct.length > 0) {
    checks.push(item("RESERVED_REGIONS", false, "error",
      `group ${group.id} has firmware-mandated direct-mapped memory (RMRR / unity map ${direct.map(range).join(", ")}): Linux refuses to attach it to a VFIO domain`,
      "the firmware requires a 1:1 mapping for this device; a firmware update or another slot may help"));
  } else {
    checks.push(item("RESERVED_REGIONS", true, "info",
      relaxable.length > 0
        ? `group ${group.id} has relaxable direct regions (${relaxable.map(range).join(", ")}), which do not block assignment`
        : `no firmware direct-mapped regions in group ${group.id}`));
  }
}

/** 6: power, reset, boot framebuffer, early binding, driver_override, GPU companions (see passthrough/). */
function passthroughItems(view: SysfsView, facts: PassthroughFacts, device: PciDevice, checks: CheckItem[], steps: string[]): void {
  for (const c of deviceChecks(view, facts, device)) {
    checks.push(item(c.check, c.ok, c.severity, c.message, c.hint));
    if (c.finding?.code === "GPU_COMPANION_ON_HOST") {
      // A companion in the device's own group is bound with --group; one in another group needs its own bind.
      for (const comp of slotCompanions(facts, device)) {
        const onHost = comp.driver !== null && !/vfio/.test(comp.driver) && comp.driver !== "pci-stub";
        if (onHost && comp.iommuGroup !== device.iommuGroup) steps.push(`sudo iommu bind ${comp.address}`);
      }
    }
  }
}

/** The libvirt-xml command for the devices that go to the VM: the group (with --group) and a GPU's slot. */
function libvirtStep(facts: PassthroughFacts, device: PciDevice, members: GroupMember[], groupFlag: string): string {
  const take = new Set(groupFlag === "" ? [device.address] : members.filter((m) => !m.bridge).map((m) => m.address));
  if (isGpu(device)) for (const c of slotCompanions(facts, device)) take.add(c.address);
  const cmd = `iommu libvirt-xml ${device.address}${groupFlag}`;
  if (take.size === 1) return `${cmd}   # <hostdev> XML for virsh edit (or --qemu for QEMU arguments)`;
  return `${cmd} --out-dir hostdev/   # one <hostdev> file for each of the ${take.size} devices, for virsh attach-device (or --qemu for QEMU arguments)`;
}

export function checkDevice(view: SysfsView, bdf: string, options: CheckOptions = {}): CheckReport {
  const device = requireDevice(view, bdf);
  const { report: status, facts } = gatherStatusWithFacts(view);
  const checks: CheckItem[] = [];
  const steps: string[] = [];
  const addr = device.address;
  hostItems(status, checks, steps);
  const group = device.iommuGroup === null ? null : readIommuGroup(view, device.iommuGroup);
  const { members, uses } = deviceItems(view, device, group, status.kernel.iommuActive, checks);
  if (group !== null) groupItems(group, addr, members, uses, checks);
  passthroughItems(view, facts, device, checks, steps);

  // 7. vfio-pci loaded; 'modprobe vfio-pci' only where it can work: the status checks say when it cannot.
  const vfioLoaded = view.exists("/sys/bus/pci/drivers/vfio-pci") || view.exists("/sys/module/vfio_pci");
  const vfioBlocker = status.problems.find((p) => VFIO_BLOCKERS.has(p.code));
  if (vfioLoaded) checks.push(item("VFIO_PCI_LOADED", true, "info", "vfio-pci is loaded"));
  else if (vfioBlocker !== undefined) checks.push(item("VFIO_PCI_LOADED", false, "error", `vfio-pci cannot be loaded: ${vfioBlocker.message}`, vfioBlocker.hint));
  else checks.push(item("VFIO_PCI_LOADED", false, "warning", "vfio-pci is not loaded", "modprobe vfio-pci"));

  // 8. locked memory for the VM that will use it
  const mem = memlockCheck(facts, options.guestMemory ?? null);
  checks.push(item(mem.check, mem.ok, mem.severity, mem.message, mem.hint));

  const ready = checks.every((c) => c.ok || c.severity !== "error");
  const groupFlag = members.filter((m) => !m.bridge).length > 1 ? " --group" : "";
  if (ready) {
    if (!vfioLoaded && vfioBlocker === undefined) steps.unshift("sudo modprobe vfio-pci");
    if (checks.some((c) => (c.code === "DEVICE_DRIVER" || c.code === "GROUP_VIABLE") && !c.ok)) steps.push(`sudo iommu bind ${addr}${groupFlag}`);
    steps.push(libvirtStep(facts, device, members, groupFlag));
  } else if (steps.length === 0) {
    steps.push(`iommu check ${addr}   # again once the errors above are fixed`);
  }

  return {
    source: view.description,
    device: { address: addr, ids: formatIds(device), class: formatClass(device.classCode), driver: device.driver, group: device.iommuGroup },
    group: group === null ? null : { id: group.id, type: group.type, members },
    checks,
    ready,
    nextSteps: [...new Set(steps)],
  };
}

export function renderCheck(r: CheckReport): string {
  const d = r.device;
  let out = `${d.address}  ${d.ids} [${d.class}]  driver ${d.driver ?? "none"}  group ${d.group ?? "none"}\n`;
  if (r.group !== null && r.group.members.length > 1) {
    for (const m of r.group.members) out += `    ${m.address}  ${m.driver ?? "no driver"}${m.bridge ? " (bridge)" : ""}${m.viable ? "" : "  <- not on vfio-pci"}\n`;
  }
  out += "\n";
  for (const c of r.checks) {
    const mark = c.ok ? (c.severity === "warning" ? "warn" : " ok ") : c.severity === "error" ? "FAIL" : "todo";
    out += `  [${mark}] ${c.message}\n`;
    if ((!c.ok || c.severity === "warning") && c.hint) out += `         hint: ${c.hint}\n`;
  }
  const verdict = !r.ready
    ? "Not ready for pass-through."
    : r.nextSteps.length > 0
      ? "Ready for pass-through: nothing blocks it; the steps below prepare the device."
      : "Ready for pass-through.";
  out += `\n${verdict}\n`;
  if (r.nextSteps.length > 0) out += `\nNext steps:\n${r.nextSteps.map((s, i) => `  ${i + 1}. ${s}`).join("\n")}\n`;
  return out;
}

/** 0 ready, 1 not ready (bad input is thrown as an IommuError: exit 2). */
export function checkExitCode(r: CheckReport): number {
  return r.ready ? 0 : 1;
}
