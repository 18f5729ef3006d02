/**
 * Per-device pass-through checks that concern the device itself: does it answer (D3cold), can it be reset
 * between VM runs (no FLR, bus reset only, the AMD reset bug), and is its memory free for vfio-pci (a boot
 * framebuffer inside a BAR).
 */
import { hex } from "../../core/hex.js";
import { isGpu } from "../bind-targets.js";
import type { PciDevice } from "../pci.js";
import type { SysfsView } from "../sysfs-view.js";
import { amdResetBugFamily, VENDOR_RESET_MODULE } from "./amd-reset.js";
import type { PassthroughFacts } from "./facts.js";
import { failed, incomplete, passed, type DeviceCheck } from "./finding.js";
import { barIndexes, FRAMEBUFFER_FIXES, framebuffersInBars } from "./iomem.js";
import { moduleLoaded } from "./modules.js";
import { readBytesSafe, readTextSafe } from "./read.js";

const devDir = (address: string) => `/sys/bus/pci/devices/${address}`;

/** Does the device answer config reads? All-ones means it is powered off (D3cold) or gone from the bus. */
export function powerCheck(view: SysfsView, d: PciDevice): DeviceCheck {
  const addr = d.address;
  const cfg = readBytesSafe(view, `${devDir(addr)}/config`);
  const state = readTextSafe(view, `${devDir(addr)}/power_state`).text?.trim() ?? null;
  if (cfg.bytes === null || cfg.bytes.length < 4) {
    const why = cfg.error ?? `${devDir(addr)}/config is not available`;
    return incomplete("DEVICE_POWER", `could not read ${addr}'s config space (${why}) to see whether it answers`, "run as root on the host itself");
  }
  const dead = cfg.bytes[0] === 0xff && cfg.bytes[1] === 0xff && cfg.bytes[2] === 0xff && cfg.bytes[3] === 0xff;
  if (!dead) return passed("DEVICE_POWER", `${addr} answers config reads${state === null ? "" : ` (power state ${state})`}`);
  const cmds =
    `to stop it entering D3cold: echo 0 | sudo tee ${devDir(addr)}/d3cold_allowed; to get it back now: ` +
    `echo 1 | sudo tee ${devDir(addr)}/remove && echo 1 | sudo tee /sys/bus/pci/rescan (or reboot)`;
  if (state === "D3cold") {
    return failed("DEVICE_POWER", "DEVICE_IN_D3COLD", "error",
      `${addr} is in D3cold and does not answer: its config space reads all ones (lspci: "Unknown header type 7f"); a VM cannot use it`,
      `${cmds}; if vfio-pci powered it down while idle, load it with disable_idle_d3=1`);
  }
  return failed("DEVICE_POWER", "DEVICE_NOT_RESPONDING", "error",
    `${addr} does not answer: its config space reads all ones (lspci: "Unknown header type 7f")${state === null ? "" : ` while the kernel thinks it is in ${state}`}`,
    `the device or its link is down; ${cmds}`);
}

function busSiblings(facts: PassthroughFacts, d: PciDevice): PciDevice[] {
  if (d.parent === null) return [];
  return facts.devices.filter((o) => o.address !== d.address && o.parent === d.parent);
}

/**
 * How the kernel can reset the device between VM runs. Linux 6.1 resets a function through its bridge's secondary
 * bus only while it is alone on that bus; with two e1000 behind QEMU's PCIe-to-PCI bridge (lab scenario g) the
 * first lists `bus` (and its reset fails: the second is there) and the second lists nothing. VFIO still resets
 * both with one bus reset when the VM owns every device on the bus (its hot reset lists both), so a device below
 * a bridge with neighbours has a bus reset shared with them, whatever its own list says.
 */
export function resetCheck(view: SysfsView, facts: PassthroughFacts, d: PciDevice): DeviceCheck {
  const addr = d.address;
  const methods = d.resetMethods;
  if (methods === null && view.exists(`${devDir(addr)}/reset`)) return passed("RESET", "reset available (the kernel does not say which method)");
  const none = methods === null || methods.length === 0;
  const busOnly = none || methods.every((m) => m === "bus" || m === "cxl_bus");
  const siblings = busOnly ? busSiblings(facts, d) : [];
  if (siblings.length > 0) {
    const list = siblings.map((s) => `${s.address} (${s.driver ?? "no driver"})`).join(", ");
    const what = none
      ? `${addr} has no reset of its own (the kernel lists no reset method); a secondary bus reset by ${d.parent ?? "its bridge"} resets it together with ${list}`
      : `the only reset of ${addr} is a secondary bus reset (no FLR), which also resets ${list}`;
    return failed("RESET", "RESET_BUS_ONLY", "warning",
      `${what}: VFIO resets it only when the VM owns every device on that bus`,
      `give ${[addr, ...siblings.map((s) => s.address)].join(", ")} to the same VM, or use a slot where ${addr} is alone`);
  }
  if (none) {
    return failed("RESET", "RESET_NONE", "warning",
      `${addr} has no reset method: state may leak between VM runs and it may fail to start twice`,
      "reboot the host between uses, or choose a device with FLR");
  }
  return passed("RESET", `reset available: ${methods.join(", ")}`);
}

function vendorResetFile(facts: PassthroughFacts) {
  return facts.moduleFiles.find((f) => f.module === VENDOR_RESET_MODULE) ?? null;
}

/** The AMD reset bug: does vendor-reset cover this GPU? Null for devices it does not concern. */
export function amdResetCheck(view: SysfsView, facts: PassthroughFacts, d: PciDevice): DeviceCheck | null {
  const fam = amdResetBugFamily(d.vendorId, d.deviceId);
  if (fam === null) return null;
  const addr = d.address;
  const what = `${addr} is an AMD ${fam.family} GPU (${fam.products}), which does not come back from a bus or PM reset (the AMD reset bug)`;
  const select = `echo device_specific | sudo tee ${devDir(addr)}/reset_method`;
  const loaded = moduleLoaded(view, facts.loaded, VENDOR_RESET_MODULE);
  if (loaded === true) {
    const methods = d.resetMethods;
    if (methods === null || methods[0] === "device_specific") {
      return passed("GPU_RESET", `${what}; vendor-reset is loaded${methods === null ? "" : " and reset_method starts with device_specific"}`);
    }
    return failed("GPU_RESET", "VENDOR_RESET_NOT_SELECTED", "warning",
      `${what}; vendor-reset is loaded but reset_method is "${methods.join(" ")}", so the kernel uses ${methods[0] ?? "no reset"} instead of vendor-reset's reset`,
      `${select} (vendor-reset's udev rule 99-vendor-reset.rules does this at every boot)`);
  }
  if (loaded === null) {
    return incomplete("GPU_RESET", `${what}; could not tell whether vendor-reset is loaded (${facts.loaded.error ?? "no /proc/modules"})`, "run on the host itself");
  }
  const file = vendorResetFile(facts);
  const load = `sudo modprobe vendor-reset && ${select}; to load it at every boot: echo vendor-reset | sudo tee /etc/modules-load.d/vendor-reset.conf`;
  if (file !== null) {
    const sb = facts.secureBoot;
    const refused = file.signed === false && sb.state === "enabled" && sb.enforcing !== false;
    return failed("GPU_RESET", "AMD_GPU_RESET_BUG", "warning",
      `${what}; vendor-reset is installed (${file.path}) but not loaded` +
        (refused ? `, and it is not signed while Secure Boot is on: loading it fails with "Key was rejected by service"` : ""),
      refused ? `sign it with a key enrolled as a MOK (see SECURE_BOOT_UNSIGNED_MODULE in 'iommu status'), then ${load}` : load);
  }
  const where = facts.release === null ? "(the kernel release is unknown, so /lib/modules was not searched)" : `for kernel ${facts.release}`;
  return failed("GPU_RESET", "AMD_GPU_RESET_BUG", "warning",
    `${what}; the vendor-reset module is not installed ${where}`,
    `install vendor-reset (https://github.com/gnif/vendor-reset, with dkms), then ${load}`);
}

const range = (s: bigint, e: bigint) => `${hex(s)}-${hex(e)}`;

/** A boot framebuffer claiming part of the device's BARs. Null for a device that is not a display controller and has none. */
export function framebufferCheck(view: SysfsView, facts: PassthroughFacts, d: PciDevice): DeviceCheck | null {
  const addr = d.address;
  const iomem = facts.iomem;
  if (iomem.read.text === null) {
    if (!isGpu(d)) return null;
    const why = iomem.read.error === null ? "/proc/iomem does not exist here" : `could not read /proc/iomem (${iomem.read.error})`;
    return incomplete("BOOT_FRAMEBUFFER", `could not check whether a boot framebuffer holds ${addr}'s memory: ${why}`, "run on the host itself");
  }
  if (iomem.zeroed) {
    if (!isGpu(d)) return null;
    return incomplete("BOOT_FRAMEBUFFER", `could not check whether a boot framebuffer holds ${addr}'s memory: /proc/iomem shows every address as 0 to non-root readers`, "run as root (sudo)");
  }
  const hits = framebuffersInBars(iomem, addr, barIndexes(view, addr));
  if (hits.length === 0) return isGpu(d) ? passed("BOOT_FRAMEBUFFER", `no boot framebuffer holds memory inside ${addr}'s BARs (/proc/iomem)`) : null;
  const h = hits[0]!;
  const bar = h.barIndex === null ? "a BAR" : `BAR ${h.barIndex}`;
  const params = [...new Set(hits.map((x) => FRAMEBUFFER_FIXES[x.framebuffer.name] ?? ""))].join(" ");
  return failed("BOOT_FRAMEBUFFER", "BOOT_FRAMEBUFFER_IN_BAR", "error",
    `${h.framebuffer.name} (${range(h.framebuffer.start, h.framebuffer.end)}) holds memory inside ${bar} (${range(h.bar.start, h.bar.end)}) of ${addr}: ` +
      `vfio-pci cannot reserve it ("vfio-pci ${addr}: ${h.barIndex === null ? "BAR n" : bar}: can't reserve") and the VM fails to start`,
    `add ${params} to the kernel command line and reboot, or make another GPU the boot display in the firmware setup`);
}
