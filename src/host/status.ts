/**
 * `iommu status`: is this host ready to give a PCI device to a VM with VFIO? Gathers firmware, CPU, kernel and
 * group facts through a SysfsView and judges them. Ready means: the kernel's IOMMU is active (units in
 * /sys/class/iommu and groups in /sys/kernel/iommu_groups), and interrupt remapping is on or VFIO was told to
 * accept unsafe interrupts. Every reason it is not ready is a problem of severity "error" with a hint.
 */
import { judgeScalableMode, type ScalableModeJudgement } from "./status-sm.js";
import { analyzeCmdline, type CmdlineAnalysis, type CpuVendor } from "./cmdline.js";
import { readFirmware, type FirmwareInfo } from "./firmware.js";
import { listIommuGroups, type IommuGroup } from "./pci.js";
import { problem, sortProblems, type Problem } from "./problem.js";
import { readCpu, type CpuInfo } from "./status-cpu.js";
import {
  readAllowUnsafe,
  readInterrupts,
  readKernelConfig,
  readKernelUnits,
  readRelease,
  type InterruptEvidence,
  type KernelConfig,
  type KernelUnit,
} from "./status-kernel.js";
import type { SysfsView } from "./sysfs-view.js";
import { readPassthroughFacts, type PassthroughFacts } from "./passthrough/facts.js";
import { statusPassthroughProblems } from "./passthrough/findings.js";
import type { VfioBackend } from "./passthrough/vfio-backend.js";

export type DmaPolicy = "strict" | "lazy" | "passthrough" | "unknown";

/** One IOMMU unit as firmware and kernel describe it together. */
export interface StatusUnit extends Omit<KernelUnit, "name" | "kind" | "registerBase"> {
  /** Kernel name ("dmar0"); null when only the firmware lists it (the kernel did not register it). */
  name: string | null;
  kind: "intel" | "amd" | "other";
  registerBase: string | null;
  segment: number | null;
  inFirmware: boolean;
  inKernel: boolean;
  /** Firmware: DRHD with INCLUDE_PCI_ALL, IOAPICs it remaps, IVHD requester id. */
  includePciAll?: boolean;
  ioapics?: number;
  deviceId?: string;
}

export interface StatusReport {
  source: string;
  platform: {
    /** Whose IOMMU: from the firmware table, else the kernel's units, else the CPU vendor. */
    vendor: CpuVendor;
    cpu: CpuInfo;
    firmwareTable: "DMAR" | "IVRS" | null;
    firmware: Omit<FirmwareInfo, "problems" | "units">;
    units: StatusUnit[];
  };
  kernel: {
    release: string | null;
    iommuActive: boolean;
    unitCount: number;
    groupCount: number;
    /** The default domain type most groups have; null without groups. */
    defaultDomain: string | null;
    /** How many groups have each default domain type. */
    domainTypes: Record<string, number>;
    dmaPolicy: DmaPolicy | null;
    interruptRemapping: InterruptEvidence["state"];
    interruptChips: string[];
    allowUnsafeInterrupts: boolean | null;
    /** Who provides VFIO's container (/dev/vfio/vfio) and whether iommufd (/dev/iommu) is there. */
    vfio: VfioBackend;
    cmdline: Omit<CmdlineAnalysis, "problems">;
    config: KernelConfig | null;
    /** Intel VT-d: scalable or legacy mode, inferred (status-sm.ts); null without Intel units. */
    scalableMode: ScalableModeJudgement | null;
  };
  groups: { id: number; type: string | null; devices: string[] }[];
  problems: Problem[];
  ready: boolean;
}

function mergeUnits(fw: FirmwareInfo, kernel: KernelUnit[]): StatusUnit[] {
  const out: StatusUnit[] = [];
  const used = new Set<number>();
  const fwUnits = fw.units;
  for (const k of kernel) {
    // Intel units match the DRHD with the same register base; AMD units (no address in sysfs) match IVHDs in order.
    let j = k.registerBase === null ? -1 : fwUnits.findIndex((u, n) => !used.has(n) && u.registerBase === k.registerBase);
    if (j < 0 && k.kind === "amd") j = fwUnits.findIndex((u, n) => !used.has(n) && u.kind === "IVHD");
    const f = j >= 0 ? fwUnits[j] : undefined;
    if (j >= 0) used.add(j);
    out.push({
      ...k,
      registerBase: k.registerBase ?? f?.registerBase ?? null,
      efr: k.efr ?? f?.efr ?? null,
      segment: f?.segment ?? null,
      inFirmware: f !== undefined,
      inKernel: true,
      ...(f?.includePciAll === undefined ? {} : { includePciAll: f.includePciAll }),
      ...(f === undefined ? {} : { ioapics: f.ioapics }),
      ...(f?.deviceId === undefined ? {} : { deviceId: f.deviceId }),
    });
  }
  fwUnits.forEach((f, n) => {
    if (used.has(n)) return;
    out.push({
      name: null,
      kind: f.kind === "DRHD" ? "intel" : "amd",
      registerBase: f.registerBase,
      segment: f.segment,
      version: null,
      cap: null,
      ecap: null,
      efr: f.efr ?? null,
      efr2: null,
      capabilities: {
        interruptRemapping: null, x2apic: f.efrSummary?.x2apic ?? null, passThrough: null, queuedInvalidation: null,
        cachingMode: null, scalableMode: null, addressWidths: null, mgaw: null,
        postedInterrupts: f.efrSummary?.guestVirtualApic ?? null,
      },
      fields: { cap: [], ecap: [] },
      inFirmware: true,
      inKernel: false,
      ...(f.includePciAll === undefined ? {} : { includePciAll: f.includePciAll }),
      ioapics: f.ioapics,
      ...(f.deviceId === undefined ? {} : { deviceId: f.deviceId }),
    });
  });
  return out;
}

function domainSummary(groups: IommuGroup[]): { defaultDomain: string | null; domainTypes: Record<string, number> } {
  const counts: Record<string, number> = {};
  for (const g of groups) {
    const t = g.type ?? "unknown";
    counts[t] = (counts[t] ?? 0) + 1;
  }
  let best: string | null = null;
  for (const [t, n] of Object.entries(counts)) if (best === null || n > (counts[best] ?? 0)) best = t;
  return { defaultDomain: best, domainTypes: counts };
}

function dmaPolicyOf(defaultDomain: string | null, cmd: CmdlineAnalysis, config: KernelConfig | null, active: boolean): DmaPolicy | null {
  if (!active) return null;
  if (defaultDomain === "DMA") return "strict";
  if (defaultDomain === "DMA-FQ") return "lazy";
  if (defaultDomain === "identity") return "passthrough";
  if (cmd.iommuPassthrough === true) return "passthrough";
  if (cmd.iommuStrict !== null) return cmd.iommuStrict ? "strict" : "lazy";
  const v = config?.values;
  if (v?.CONFIG_IOMMU_DEFAULT_PASSTHROUGH === "y") return "passthrough";
  if (v?.CONFIG_IOMMU_DEFAULT_DMA_STRICT === "y") return "strict";
  if (v?.CONFIG_IOMMU_DEFAULT_DMA_LAZY === "y") return "lazy";
  return "unknown";
}

const VM_IOMMU_HINT =
  "this system runs under a hypervisor: give the VM a virtual IOMMU (QEMU: -machine q35,kernel-irqchip=split " +
  "-device intel-iommu,intremap=on, or -device amd-iommu,intremap=on)";

/** The kernel lacks the driver for this platform's IOMMU (by its firmware table, else the CPU vendor). */
function driverNotBuilt(fw: FirmwareInfo, vendor: CpuVendor, config: KernelConfig | null): Problem | null {
  const intel = fw.table === "DMAR" || (fw.table === null && vendor === "intel");
  const amd = fw.table === "IVRS" || (fw.table === null && vendor === "amd");
  if (intel && config?.values.CONFIG_INTEL_IOMMU === "n") {
    return problem("IOMMU_NOT_BUILT", "error", "this kernel is built without VT-d support (CONFIG_INTEL_IOMMU is not set)",
      "boot a kernel built with CONFIG_INTEL_IOMMU=y (every mainstream distribution kernel has it)");
  }
  if (amd && config?.values.CONFIG_AMD_IOMMU === "n") {
    return problem("IOMMU_NOT_BUILT", "error", "this kernel is built without AMD-Vi support (CONFIG_AMD_IOMMU is not set)",
      "boot a kernel built with CONFIG_AMD_IOMMU=y (every mainstream distribution kernel has it)");
  }
  return null;
}

/**
 * Why the IOMMU is not active: every blocking cause the evidence shows. A kernel without the driver is named
 * beside a missing firmware table or an 'off' on the command line, since fixing one alone is not enough.
 */
function inactiveProblems(fw: FirmwareInfo, cpu: CpuInfo, vendor: CpuVendor, cmd: CmdlineAnalysis, config: KernelConfig | null, units: KernelUnit[]): Problem[] {
  const notBuilt = driverNotBuilt(fw, vendor, config);
  const withDriver = (p: Problem): Problem[] => (notBuilt === null ? [p] : [p, notBuilt]);
  if (fw.table === null && units.length === 0) {
    return withDriver(problem("NO_IOMMU_FIRMWARE", "error",
      "the firmware publishes no DMAR or IVRS table: no IOMMU is enabled on this platform",
      cpu.hypervisor ? VM_IOMMU_HINT
        : `enable ${vendor === "amd" ? "IOMMU / AMD-Vi (often under 'AMD CBS' or 'NBIO')" : vendor === "intel" ? "VT-d (often under 'System Agent' or 'Chipset')" : "VT-d or AMD-Vi (IOMMU)"} in the firmware setup, then boot again`));
  }
  if (cmd.iommuRequested === false) {
    const what = (cmd.iommu ?? []).includes("off") ? "iommu=off" : vendor === "amd" ? "amd_iommu=off" : "intel_iommu=off";
    return withDriver(problem("IOMMU_DISABLED_BY_CMDLINE", "error",
      `the kernel command line turns the IOMMU off (${what})`,
      `remove ${what} from the kernel command line ('iommu bootargs' shows the change), then reboot`));
  }
  if (units.length > 0) {
    return [problem("IOMMU_NO_GROUPS", "error",
      `the kernel registered ${units.length} IOMMU unit(s) but made no IOMMU groups`,
      "check 'dmesg | grep -i -e DMAR -e AMD-Vi -e iommu' for errors; the IOMMU may have failed to initialise")];
  }
  if (notBuilt !== null) return [notBuilt];
  const intel = fw.table === "DMAR" || vendor === "intel";
  if (intel && cmd.iommuRequested !== true && config?.values.CONFIG_INTEL_IOMMU_DEFAULT_ON !== "y") {
    return [problem("IOMMU_NOT_ENABLED", "error",
      "the firmware has VT-d (DMAR table) but the kernel did not turn it on: intel_iommu=on is missing" +
        (config === null ? "" : " and this kernel is built with VT-d off by default"),
      "add intel_iommu=on to the kernel command line ('iommu bootargs --apply'), then reboot")];
  }
  return [problem("IOMMU_INACTIVE", "error",
    `the firmware publishes ${fw.table ?? "an IOMMU table"} but the kernel registered no IOMMU unit`,
    "check 'dmesg | grep -i -e DMAR -e AMD-Vi -e iommu' for the reason (a firmware bug, or a parameter turning it off)")];
}

/** Why interrupt remapping is off, as precisely as the evidence allows. */
function irDisabledReason(fw: FirmwareInfo, cmd: CmdlineAnalysis, units: KernelUnit[], cpu: CpuInfo, config: KernelConfig | null): { why: string; hint: string } {
  if (config?.values.CONFIG_IRQ_REMAP === "n") {
    return { why: "this kernel is built without interrupt remapping (CONFIG_IRQ_REMAP is not set)", hint: "boot a kernel built with CONFIG_IRQ_REMAP=y (every mainstream distribution kernel has it)" };
  }
  if (cmd.intremapRequested === false) {
    return { why: "the kernel command line turns it off (intremap=off / nointremap)", hint: "remove intremap=off / nointremap from the kernel command line, then reboot" };
  }
  const noIr = units.filter((u) => u.capabilities.interruptRemapping === false).map((u) => u.name);
  if (noIr.length > 0) {
    return {
      why: `IOMMU unit${noIr.length > 1 ? "s" : ""} ${noIr.join(", ")} cannot remap interrupts (ECAP.IR=0)`,
      hint: cpu.hypervisor ? "give the VM's virtual IOMMU interrupt remapping (QEMU: -device intel-iommu,intremap=on with -machine kernel-irqchip=split)" : "this hardware cannot remap interrupts",
    };
  }
  if (fw.table === "IVRS" && fw.decoded && fw.units.length > 0 && fw.units.every((u) => u.ioapics === 0)) {
    return {
      why: "the IVRS table names no IOAPIC, so Linux turns AMD-Vi interrupt remapping off (a firmware bug)",
      hint: "update the firmware; some boards need the IOAPIC mapping given with ivrs_ioapic[ID]=BDF on the kernel command line",
    };
  }
  if (fw.table === "DMAR" && fw.interruptRemapping === false) {
    return { why: "the firmware does not report interrupt remapping (DMAR flag INTR_REMAP is clear)", hint: "enable interrupt remapping / VT-d fully in the firmware setup, or update the firmware" };
  }
  return { why: "the kernel did not enable it", hint: "check 'dmesg | grep -i remapping' for the reason" };
}

/**
 * Whose IOMMU this is: the firmware table says (DMAR: Intel VT-d, IVRS: AMD-Vi), then the kernel's units, and
 * only then the CPU vendor. A VM's CPU vendor need not match its virtual IOMMU (QEMU's TCG CPU is
 * AuthenticAMD even with an emulated VT-d), and intel_iommu= configures VT-d whatever the CPU.
 */
function iommuVendor(fw: FirmwareInfo, units: KernelUnit[], cpu: CpuInfo): CpuVendor {
  if (fw.table === "DMAR") return "intel";
  if (fw.table === "IVRS") return "amd";
  if (units.some((u) => u.kind === "intel")) return "intel";
  if (units.some((u) => u.kind === "amd")) return "amd";
  return cpu.vendor;
}

/**
 * What stops VFIO from working at all, from the kernel's build configuration, its module files, the command line
 * and /dev: facts that make 'modprobe vfio-pci' useless, reported before anyone suggests it.
 */
function vfioProblems(view: SysfsView, config: KernelConfig | null, release: string | null, cmd: CmdlineAnalysis): Problem[] {
  const out: Problem[] = [];
  const v = config?.values;
  const loaded = view.exists("/sys/bus/pci/drivers/vfio-pci") || view.exists("/sys/module/vfio_pci");
  if (v?.CONFIG_VFIO === "n") {
    out.push(problem("VFIO_NOT_BUILT", "error", "this kernel is built without VFIO (CONFIG_VFIO is not set): no device can be given to a VM",
      "boot a kernel built with CONFIG_VFIO and CONFIG_VFIO_PCI (y or m); every mainstream distribution kernel has them"));
  } else if (v?.CONFIG_VFIO_PCI === "n") {
    out.push(problem("VFIO_PCI_NOT_BUILT", "error", "this kernel is built without vfio-pci (CONFIG_VFIO_PCI is not set)",
      "boot a kernel built with CONFIG_VFIO_PCI=y or =m"));
  } else if (v?.CONFIG_VFIO_PCI === "m" && !loaded) {
    const dir = release === null ? null : view.list(`/lib/modules/${release}/kernel/drivers/vfio/pci`);
    if (dir !== null && !dir.some((f) => /^vfio-pci\.ko/.test(f))) {
      out.push(problem("VFIO_PCI_MODULE_MISSING", "error", `vfio-pci is built as a module but /lib/modules/${release}/kernel/drivers/vfio/pci has no vfio-pci.ko`,
        "install the kernel's modules package (Debian/Ubuntu: linux-modules-extra or linux-image for this release)"));
    } else if (/(^|\s)nomodule(\s|$)/.test(cmd.raw)) {
      out.push(problem("MODULES_DISABLED", "error", "vfio-pci is a module but the command line has 'nomodule': it cannot be loaded",
        "remove nomodule from the kernel command line, then reboot"));
    }
  }
  if (loaded && !view.exists("/dev/vfio/vfio") && view.exists("/dev/vfio")) {
    out.push(problem("VFIO_DEVICE_NODE_MISSING", "warning", "vfio-pci is loaded but /dev/vfio/vfio does not exist",
      "check that devtmpfs is mounted on /dev and udev is running (a container may hide /dev/vfio)"));
  }
  return out;
}

/**
 * Whether VFIO accepts devices without interrupt remapping: vfio_iommu_type1's switch, or iommufd's when this
 * kernel's VFIO container is iommufd (then vfio_iommu_type1 does not exist).
 */
function allowUnsafeInterrupts(facts: PassthroughFacts, type1Sysfs: boolean | null): boolean | null {
  if (facts.backend.container === "iommufd") return facts.backend.iommufdAllowUnsafe ?? facts.cmdline.iommufdAllowUnsafeInterrupts;
  return type1Sysfs ?? facts.cmdline.allowUnsafeInterrupts;
}

export function gatherStatus(view: SysfsView): StatusReport {
  return gatherStatusWithFacts(view).report;
}

/** The status report and the pass-through facts it was judged from (check reuses them). */
export function gatherStatusWithFacts(view: SysfsView): { report: StatusReport; facts: PassthroughFacts } {
  const cpu = readCpu(view);
  const fw = readFirmware(view);
  const kunits = readKernelUnits(view);
  const vendor = iommuVendor(fw, kunits, cpu);
  const release = readRelease(view);
  const cmd = analyzeCmdline(view.readText("/proc/cmdline") ?? "", vendor);
  const groups = listIommuGroups(view);
  const irq = readInterrupts(view);
  const allowUnsafeSysfs = readAllowUnsafe(view);
  const config = readKernelConfig(view, release);
  const facts = readPassthroughFacts(view, { release, config, cmdline: cmd });
  const allowUnsafe = allowUnsafeInterrupts(facts, allowUnsafeSysfs);
  const active = kunits.length > 0 && groups.length > 0;
  const { defaultDomain, domainTypes } = domainSummary(groups);
  const problems: Problem[] = [...fw.problems];

  if (!active) problems.push(...inactiveProblems(fw, cpu, vendor, cmd, config, kunits));

  let ir = irq.state;
  if (ir === "unknown" && cmd.intremapRequested === false) ir = "disabled";
  if (active) {
    if (ir === "disabled") {
      const { why, hint } = irDisabledReason(fw, cmd, kunits, cpu, config);
      if (allowUnsafe === true) {
        problems.push(problem("UNSAFE_INTERRUPTS_ALLOWED", "warning",
          `interrupt remapping is off (${why}); VFIO accepts devices only because allow_unsafe_interrupts is set`,
          "a VM can then forge MSI writes to inject interrupts into the host; turn interrupt remapping on if you can"));
      } else {
        problems.push(problem("INTERRUPT_REMAPPING_DISABLED", "error",
          `interrupt remapping is off: ${why}; VFIO refuses to assign devices without it`,
          `${hint}. As a last resort (unsafe: a VM can inject host interrupts), vfio_iommu_type1.allow_unsafe_interrupts=1`));
      }
    } else if (ir === "unknown" && allowUnsafe !== true) {
      problems.push(problem("INTERRUPT_REMAPPING_UNKNOWN", "error",
        "cannot tell whether interrupt remapping is on: /proc/interrupts is not available",
        "run on the host itself (or a snapshot of it) so /proc/interrupts can be read"));
    }
  }

  problems.push(...cmd.problems);

  problems.push(...vfioProblems(view, config, release, cmd));
  problems.push(...statusPassthroughProblems(view, facts, { type1AllowUnsafe: allowUnsafeSysfs ?? cmd.allowUnsafeInterrupts, interruptRemapping: ir }));

  // /dev/kvm is KVM's own answer; the flags can be hidden (some nested setups) while KVM works.
  const kvm = view.exists("/dev/kvm");
  if (cpu.known && cpu.virtualization === null && kvm) {
    problems.push(problem("KVM_WITHOUT_CPU_FLAG", "info", "the CPU shows no vmx/svm flag, but /dev/kvm exists: KVM is available",
      "nothing to do; nested virtualization provides KVM here"));
  }
  if (cpu.known && cpu.virtualization === null && !kvm) {
    problems.push(problem("CPU_NO_VIRTUALIZATION", "warning",
      `the CPU shows no ${cpu.vendor === "amd" ? "svm (AMD-V)" : cpu.vendor === "intel" ? "vmx (VT-x)" : "vmx/svm"} flag: KVM cannot run virtual machines here`,
      cpu.hypervisor ? "this is a VM: enable nested virtualization on its host" : "enable VT-x / AMD-V (SVM) in the firmware setup"));
  }
  if (cpu.hypervisor) {
    problems.push(problem("RUNNING_IN_VM", "info", "this system is a virtual machine (CPU flag 'hypervisor')",
      "devices it passes on are themselves virtual or assigned; nested assignment needs a virtual IOMMU"));
  }
  if (fw.x2apicOptOut === true) {
    problems.push(problem("X2APIC_OPT_OUT", "info", "the firmware asks the OS not to use x2APIC (DMAR X2APIC_OPT_OUT)",
      "harmless for pass-through; interrupt remapping runs in xAPIC mode"));
  }
  if (active && fw.table !== null && !fw.decoded && fw.problems.length === 0) {
    problems.push(problem("FIRMWARE_TABLE_EMPTY", "warning", `${fw.path ?? fw.table} is empty`, "check the firmware"));
  }

  const sorted = sortProblems(problems);
  const { problems: _p, units: _u, ...fwRest } = fw;
  const { problems: _c, ...cmdRest } = cmd;
  const report: StatusReport = {
    source: view.description,
    platform: { vendor, cpu, firmwareTable: fw.table, firmware: fwRest, units: mergeUnits(fw, kunits) },
    kernel: {
      release,
      iommuActive: active,
      unitCount: kunits.length,
      groupCount: groups.length,
      defaultDomain,
      domainTypes,
      dmaPolicy: dmaPolicyOf(defaultDomain, cmd, config, active),
      interruptRemapping: ir,
      interruptChips: irq.remappedChips.length > 0 ? irq.remappedChips : irq.plainChips,
      allowUnsafeInterrupts: allowUnsafe,
      vfio: facts.backend,
      cmdline: cmdRest,
      config,
      scalableMode: judgeScalableMode(kunits, cmd, config),
    },
    groups: groups.map((g) => ({ id: g.id, type: g.type, devices: g.devices })),
    problems: sorted,
    ready: active && (ir === "enabled" || allowUnsafe === true),
  };
  return { report, facts };
}

/** 0 ready, 1 not ready. */
export function statusExitCode(r: StatusReport): number {
  return r.ready ? 0 : 1;
}
