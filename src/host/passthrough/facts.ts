/**
 * Everything the pass-through checks read, gathered once per command: the PCI devices, vfio-pci's id lists
 * (kernel command line and modprobe.d), the initramfs tool, /proc/iomem, loaded modules, Secure Boot, the
 * locked-memory limit and the VFIO backend. Reading it all up front also makes `iommu snapshot` record every
 * input of these checks, whether or not a finding needed it.
 */
import type { CmdlineAnalysis } from "../cmdline.js";
import { listPciDevices, type PciDevice } from "../pci.js";
import type { KernelConfig } from "../status-kernel.js";
import type { SysfsView } from "../sysfs-view.js";
import { VENDOR_RESET_MODULE } from "./amd-reset.js";
import { readInitramfs, type InitramfsInfo } from "./initramfs.js";
import { readIomem, type Iomem } from "./iomem.js";
import { readMemlock, type Memlock } from "./memlock.js";
import { atText, moduleOption, readModprobeConfig, type ModprobeConfig } from "./modprobe.js";
import { findModuleFiles, readLoadedModules, readSecureBoot, type LoadedModules, type ModuleFile, type SecureBoot } from "./modules.js";
import { readVfioBackend, type VfioBackend } from "./vfio-backend.js";

/** Out-of-tree modules pass-through setups load: vendor-reset (AMD GPU resets) and kvmfr (Looking Glass). */
export const PASSTHROUGH_MODULES = [VENDOR_RESET_MODULE, "kvmfr"];

/** One vfio-pci id rule: "vendor:device[:subvendor[:subdevice]]", hex, ffffffff meaning any (null here). */
export interface VfioIdRule {
  text: string;
  vendor: number | null;
  device: number | null;
  subvendor: number | null;
  subdevice: number | null;
  /** "kernel command line (vfio-pci.ids=…)" or "/etc/modprobe.d/vfio.conf:2". */
  source: string;
  fromCmdline: boolean;
}

export interface PassthroughFacts {
  release: string | null;
  config: KernelConfig | null;
  cmdline: CmdlineAnalysis;
  devices: PciDevice[];
  vfioIds: VfioIdRule[];
  modprobe: ModprobeConfig;
  initramfs: InitramfsInfo;
  iomem: Iomem;
  loaded: LoadedModules;
  secureBoot: SecureBoot;
  /** Files of PASSTHROUGH_MODULES under /lib/modules/RELEASE; empty when the release is unknown. */
  moduleFiles: ModuleFile[];
  memlock: Memlock;
  backend: VfioBackend;
}

const ANY = 0xffffffff;

function parseRule(text: string, source: string, fromCmdline: boolean): VfioIdRule | null {
  const parts = text.trim().toLowerCase().split(":");
  if (parts.length < 2 || !parts.slice(0, 4).every((p) => /^[0-9a-f]{1,8}$/.test(p))) return null;
  const num = (i: number): number | null => {
    const p = parts[i];
    if (p === undefined) return null;
    const v = parseInt(p, 16);
    return v === ANY ? null : v;
  };
  return { text, vendor: num(0), device: num(1), subvendor: num(2), subdevice: num(3), source, fromCmdline };
}

export function vfioIdRules(cmdline: CmdlineAnalysis, modprobe: ModprobeConfig): VfioIdRule[] {
  const out: VfioIdRule[] = [];
  for (const id of cmdline.vfioPciIds) {
    const r = parseRule(id, `kernel command line (vfio-pci.ids=${cmdline.vfioPciIds.join(",")})`, true);
    if (r !== null) out.push(r);
  }
  const opt = moduleOption(modprobe, "vfio_pci", "ids");
  if (opt !== null) {
    for (const id of opt.value.split(",")) {
      const r = parseRule(id, `${atText(opt.at)} (options vfio-pci ids=${opt.value})`, false);
      if (r !== null) out.push(r);
    }
  }
  return out;
}

/** The rules that match a device. */
export function matchingRules(facts: PassthroughFacts, d: PciDevice): VfioIdRule[] {
  return facts.vfioIds.filter(
    (r) =>
      (r.vendor === null || r.vendor === d.vendorId) &&
      (r.device === null || r.device === d.deviceId) &&
      (r.subvendor === null || r.subvendor === d.subsystemVendorId) &&
      (r.subdevice === null || r.subdevice === d.subsystemDeviceId),
  );
}

export interface FactsInput {
  release: string | null;
  config: KernelConfig | null;
  cmdline: CmdlineAnalysis;
  devices?: PciDevice[];
}

export function readPassthroughFacts(view: SysfsView, input: FactsInput): PassthroughFacts {
  const modprobe = readModprobeConfig(view);
  return {
    release: input.release,
    config: input.config,
    cmdline: input.cmdline,
    devices: input.devices ?? listPciDevices(view),
    vfioIds: vfioIdRules(input.cmdline, modprobe),
    modprobe,
    initramfs: readInitramfs(view),
    iomem: readIomem(view),
    loaded: readLoadedModules(view),
    secureBoot: readSecureBoot(view),
    moduleFiles: input.release === null ? [] : findModuleFiles(view, input.release, PASSTHROUGH_MODULES),
    memlock: readMemlock(view),
    backend: readVfioBackend(view, input.config),
  };
}

/** Drivers that hand a device to VFIO (vfio-pci and its variant drivers). */
export const isVfioDriver = (driver: string | null): boolean => driver !== null && /vfio/.test(driver);

/** Meant for a VM: on a VFIO driver, or driver_override names vfio-pci, or vfio-pci's ids list it. */
export function isPassthroughCandidate(facts: PassthroughFacts, d: PciDevice): boolean {
  return isVfioDriver(d.driver) || d.driverOverride === "vfio-pci" || matchingRules(facts, d).length > 0;
}
