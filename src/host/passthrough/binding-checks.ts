/**
 * Per-device checks about who claims the device at boot and what goes with it: vfio-pci ids that lost the race
 * to the host driver (early binding), a driver_override naming another driver, and the other functions of a
 * GPU's slot (HDMI/DP audio, USB-C) that must go to the VM with it.
 */
import { posix } from "node:path";
import { formatIds, type PciDevice } from "../pci.js";
import type { SysfsView } from "../sysfs-view.js";
import { isGpu } from "../bind-targets.js";
import { isVfioDriver, matchingRules, type PassthroughFacts } from "./facts.js";
import { failed, noted, passed, type DeviceCheck } from "./finding.js";
import { initramfsModuleLine, VFIO_EARLY_MODULES, type InitramfsInfo } from "./initramfs.js";
import { softdepBefore } from "./modprobe.js";
import { linkSafe } from "./read.js";

/** The module a bound driver comes from (/sys/bus/pci/drivers/NAME/module), or null when built into the kernel. */
export function driverModule(view: SysfsView, driver: string): string | null {
  const t = linkSafe(view, `/sys/bus/pci/drivers/${driver}/module`);
  return t === null ? null : posix.basename(t);
}

/** The steps that get vfio-pci into the initramfs with the tool this system uses. */
function initramfsSteps(info: InitramfsInfo): string[] {
  if (info.tool === null) return ["if the initramfs loads the host driver, add vfio_pci to it and rebuild it (no initramfs-tools, dracut or mkinitcpio found)"];
  const have = new Set(info.modules.map((m) => m.module));
  const missing = VFIO_EARLY_MODULES.filter((m) => !have.has(m));
  const steps: string[] = [];
  if (missing.length > 0) {
    const line = info.tool === "mkinitcpio"
      ? `MODULES=(${[...missing, ...info.modules.filter((m) => m.at.file === "/etc/mkinitcpio.conf").map((m) => m.module)].join(" ")})`
      : initramfsModuleLine(info.tool, missing);
    steps.push(`put ${info.tool === "initramfs-tools" ? "these lines" : "this line"} in ${info.configFile ?? "the initramfs configuration"}: ${line.replace(/\n/g, ", ")}`);
  }
  if (info.tool === "mkinitcpio" && info.modconf === false) steps.push("add modconf to HOOKS in /etc/mkinitcpio.conf (it copies modprobe.d into the image)");
  steps.push(`rebuild the initramfs: sudo ${(info.regenerate ?? []).join(" ")}`);
  return steps;
}

/** vfio-pci is told to take the device at boot: did it? Null when no id rule names the device. */
export function earlyBindingCheck(view: SysfsView, facts: PassthroughFacts, d: PciDevice): DeviceCheck | null {
  const rules = matchingRules(facts, d);
  if (rules.length === 0) return null;
  const addr = d.address;
  const sources = [...new Set(rules.map((r) => r.source))].join("; ");
  if (isVfioDriver(d.driver)) return passed("EARLY_BINDING", `${addr} is claimed by ${d.driver ?? "vfio-pci"} at boot (${sources})`);
  if (d.driver === "pci-stub") return passed("EARLY_BINDING", `${addr} is listed for vfio-pci (${sources}) and held by pci-stub, which VFIO accepts`);
  if (d.driver === null && d.driverOverride !== null && !isVfioDriver(d.driverOverride)) {
    // Not a separate finding: DRIVER_OVERRIDE_OTHER reports the cause with its fix.
    const ov = d.driverOverride;
    return { ...failed("EARLY_BINDING", "DRIVER_OVERRIDE_OTHER", "warning",
      `${addr} is listed for vfio-pci (${sources}) but no driver has it: its driver_override "${ov}" lets only ${ov} bind it`,
      `give it to vfio-pci: echo vfio-pci | sudo tee /sys/bus/pci/devices/${addr}/driver_override && echo ${addr} | sudo tee /sys/bus/pci/drivers_probe ` +
        `(or 'sudo iommu bind ${addr}'); clearing the override instead lets the first matching driver, usually the host's, take it at the next probe`), finding: null };
  }
  if (d.driver === null) {
    return noted("EARLY_BINDING", "EARLY_BIND_UNCLAIMED", "warning",
      `${addr} is listed for vfio-pci (${sources}) but no driver has it: vfio-pci was not loaded when the device appeared`,
      `load vfio-pci at boot: echo vfio-pci | sudo tee /etc/modules-load.d/vfio-pci.conf (or put vfio_pci in the initramfs)`);
  }
  const message = `${addr} [${formatIds(d)}] is listed for vfio-pci (${sources}) but ${d.driver} claimed it first`;
  const ids = [...new Set(rules.map((r) => r.text))].join(",");
  if (facts.config?.values.CONFIG_VFIO_PCI === "y" && rules.every((r) => !r.fromCmdline)) {
    return failed("EARLY_BINDING", "EARLY_BIND_LOST", "warning", message,
      `vfio-pci is built into this kernel, so modprobe.d options never reach it: put vfio-pci.ids=${ids} on the kernel command line, then reboot`);
  }
  const mod = driverModule(view, d.driver);
  if (mod === null) {
    return failed("EARLY_BINDING", "EARLY_BIND_LOST", "warning", message,
      `${d.driver} is built into the kernel and binds before any module loads: keep the device with 'sudo iommu bind ${addr} --persist' (driver_override when it appears)`);
  }
  const steps: string[] = [];
  const dep = softdepBefore(facts.modprobe, mod, "vfio_pci");
  if (dep === null) steps.push(`add the line 'softdep ${mod} pre: vfio-pci' to /etc/modprobe.d/vfio.conf (vfio-pci then loads before ${mod})`);
  steps.push(...initramfsSteps(facts.initramfs), "reboot");
  return failed("EARLY_BINDING", "EARLY_BIND_LOST", "warning", message, steps.map((s, i) => `${i + 1}. ${s}`).join("; "));
}

/** driver_override names another driver: only that driver may bind the device. Null when not set or vfio-pci. */
export function driverOverrideCheck(facts: PassthroughFacts, d: PciDevice): DeviceCheck | null {
  const ov = d.driverOverride;
  if (ov === null || ov === "vfio-pci" || isVfioDriver(ov)) return null;
  const wanted = matchingRules(facts, d).length > 0;
  const message = `driver_override of ${d.address} is "${ov}": only ${ov} may bind it${wanted ? ", so vfio-pci's ids (vfio-pci.ids, options vfio-pci ids=) cannot take it" : ""}`;
  const hint = `clear it with: echo | sudo tee /sys/bus/pci/devices/${d.address}/driver_override, or give the device to vfio-pci with 'sudo iommu bind ${d.address}'`;
  return wanted ? failed("DRIVER_OVERRIDE", "DRIVER_OVERRIDE_OTHER", "warning", message, hint) : noted("DRIVER_OVERRIDE", "DRIVER_OVERRIDE_OTHER", "info", message, hint);
}

/** A short name for what a companion function is. */
export function functionKind(classCode: number): string {
  const c = classCode >>> 8;
  if (c === 0x0403) return "HDMI/DP audio";
  if (c === 0x0c03) return "USB controller";
  if (c === 0x0c80) return "USB-C controller";
  if (c >>> 8 === 0x03) return "display";
  return `class ${c.toString(16).padStart(4, "0")}`;
}

/** The other functions of a device's slot (same segment, bus and device number), bridges left out. */
export function slotCompanions(facts: PassthroughFacts, d: PciDevice): PciDevice[] {
  return facts.devices.filter(
    (o) => o.address !== d.address && o.pci.segment === d.pci.segment && o.pci.bus === d.pci.bus && o.pci.device === d.pci.device && !o.isBridge,
  );
}

/** A GPU's other functions go with it. Null for devices that are not display controllers or have none. */
export function companionsCheck(facts: PassthroughFacts, d: PciDevice): DeviceCheck | null {
  if (!isGpu(d)) return null;
  const comps = slotCompanions(facts, d);
  if (comps.length === 0) return null;
  const describe = (c: PciDevice) => `${c.address} (${functionKind(c.classCode)}, ${c.driver ?? "no driver"}${c.iommuGroup === d.iommuGroup ? "" : `, group ${c.iommuGroup ?? "none"}`})`;
  const list = comps.map(describe).join(", ");
  const onHost = comps.filter((c) => c.driver !== null && !isVfioDriver(c.driver) && c.driver !== "pci-stub");
  const together = `'iommu libvirt-xml ${d.address}' emits all of them`;
  if (onHost.length === 0) return passed("GPU_COMPANIONS", `the GPU's slot also holds ${list}: pass them to the VM together (${together})`);
  return failed("GPU_COMPANIONS", "GPU_COMPANION_ON_HOST", "warning",
    `${d.address} is a GPU whose slot also holds ${list}: the functions of one card go to the VM together, and ${onHost.map((c) => c.address).join(", ")} ${onHost.length > 1 ? "are" : "is"} still on a host driver`,
    `${onHost.map((c) => `sudo iommu bind ${c.address}`).join("; ")} (or list their ids ${[...new Set(onHost.map(formatIds))].join(",")} for vfio-pci too); ${together}`);
}
