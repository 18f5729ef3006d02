/**
 * The simulated kernel as a SysfsView: the same paths and contents a real 6.1 kernel shows, so the host doctor
 * (status, groups, …) reads a simulated machine exactly as it reads a real one.
 *
 *   /proc/cmdline, /proc/interrupts (IR-PCI-MSI / PCI-MSI, IR-IO-APIC / IO-APIC, DMAR-MSI chips),
 *   /proc/cpuinfo, /proc/sys/kernel/osrelease
 *   /sys/firmware/acpi/tables/DMAR
 *   /sys/firmware/acpi/tables/IVRS
 *   /sys/class/iommu/dmarN -> ../../devices/virtual/iommu/dmarN  (intel-iommu/{version,address,cap,ecap,
 *       domains_supported,domains_used}) when DMA remapping is on
 *   /sys/class/iommu/ivhdN -> ../../devices/pci0000:00/<IOMMU function>/iommu/ivhdN (amd-iommu/{cap,features},
 *       devices/) on AMD-Vi, the IOMMU's own PCI function being the class device's parent
 *   /sys/devices/pci0000:00/…/DDDD:BB:DD.F/{vendor,device,class,revision,subsystem_*,config,driver,iommu,iommu_group}
 *   /sys/bus/pci/devices/DDDD:BB:DD.F -> ../../../devices/pci0000:00/…, /sys/bus/pci/drivers/NAME/DDDD:BB:DD.F
 *   /sys/kernel/iommu_groups/N/{devices/,type,reserved_regions}
 *
 * The view is a snapshot of the kernel's state when it is made (take a new one after changing the kernel).
 */
import { posix } from "node:path";
import type { SysfsView } from "../host/sysfs-view.js";
import { SnapshotView } from "../host/views/snapshot-view.js";
import { SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type SnapshotEntry } from "../host/views/snapshot-format.js";
import { KERNEL_RELEASE, type Kernel } from "./kernel.js";
import type { KPciDev } from "./pci.js";

const hex = (n: number, w: number) => "0x" + n.toString(16).padStart(w, "0");

function devicePath(d: KPciDev): string {
  const chain: KPciDev[] = [];
  for (let x: KPciDev | null = d; x !== null; x = x.parent) chain.unshift(x);
  return "/sys/devices/pci0000:00/" + chain.map((x) => x.name).join("/");
}

function rel(from: string, to: string): string {
  return posix.relative(posix.dirname(from), to);
}

/** /proc/interrupts as show_interrupts prints it. */
export function procInterrupts(k: Kernel): string {
  const cpus = k.port.firmware.cpus.length;
  const lines = ["    " + Array.from({ length: cpus }, (_, i) => `CPU${i}`.padEnd(11)).join("")];
  const ioapic = k.irqRemapping ? "IR-IO-APIC" : "IO-APIC";
  const legacy: [number, number, string, string][] = [
    [0, 2, "edge", "timer"], [1, 1, "edge", "i8042"], [4, 4, "edge", "ttyS0"], [8, 8, "edge", "rtc0"], [9, 9, "fasteoi", "acpi"], [12, 12, "edge", "i8042"],
  ];
  const row = (irq: number, count: number, chip: string, hwirq: number, flow: string, name: string) =>
    `${String(irq).padStart(3)}: ` + Array.from({ length: cpus }, (_, i) => `${String(i === 0 ? count : 0).padStart(10)} `).join("") +
    ` ${chip.padStart(8)} ${String(hwirq).padStart(3)}-${flow.padEnd(8)}  ${name}`;
  for (const [irq, pin, flow, name] of legacy) lines.push(row(irq, 0, ioapic, pin, flow, name));
  for (const q of k.irqs) lines.push(row(q.irq, q.count, q.chip, q.hwirq, "edge", q.name));
  lines.push(`NMI: ${Array.from({ length: cpus }, () => "0".padStart(10) + " ").join("")}  Non-maskable interrupts`);
  return lines.join("\n") + "\n";
}

/**
 * The AMD-Vi class devices (iommu_device_sysfs_add "ivhd%d" under the IOMMU's PCI function): amd-iommu/cap is the
 * capability header ("%x"), amd-iommu/features "EFR2:EFR" ("%llx:%llx"), devices/ the functions it translates.
 */
function amdUnits(
  k: Kernel,
  file: (p: string, text: string) => void,
  link: (p: string, target: string) => void,
  unitDir: Map<KPciDev, string>,
): void {
  const names: string[] = [];
  for (const u of k.amd.units) {
    const fn = k.devices.find((d) => d.rid === u.devid);
    if (fn === undefined) continue;
    const dir = `${devicePath(fn)}/iommu/${u.name}`;
    names.push(u.name);
    link(`/sys/class/iommu/${u.name}`, dir);
    file(`${dir}/amd-iommu/cap`, `${u.cap.toString(16)}\n`);
    file(`${dir}/amd-iommu/features`, `${u.efr2.toString(16)}:${u.efr.toString(16)}\n`);
    const members = k.devices.filter((d) => k.iommu.groupFor(d) !== null && k.amd.unitFor(d) === u);
    for (const d of members) {
      unitDir.set(d, dir);
      link(`${dir}/devices/${d.name}`, devicePath(d));
    }
  }
}

/**
 * The IOMMU and VFIO lines of the kernel's build config, as /boot/config-RELEASE has them: the options the
 * simulated kernel models follow its KernelConfig; the others are Debian 6.1's (config-6.1.0-57-amd64).
 */
function kernelConfigText(c: Kernel["config"]): string {
  const opt = (key: string, on: boolean): string => (on ? `CONFIG_${key}=y` : `# CONFIG_${key} is not set`);
  return [
    "CONFIG_IOMMU_SUPPORT=y",
    "CONFIG_INTEL_IOMMU=y",
    opt("INTEL_IOMMU_DEFAULT_ON", c.intelIommuDefaultOn && !c.intgpuOff),
    opt("INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF", c.intelIommuDefaultOn && c.intgpuOff),
    opt("INTEL_IOMMU_DEFAULT_OFF", !c.intelIommuDefaultOn),
    opt("INTEL_IOMMU_FLOPPY_WA", c.floppyWa),
    opt("INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON", c.scalableModeDefaultOn),
    "CONFIG_IRQ_REMAP=y",
    "CONFIG_AMD_IOMMU=y",
    opt("IOMMU_DEFAULT_DMA_STRICT", !c.defaultPassthrough && c.defaultStrict),
    opt("IOMMU_DEFAULT_DMA_LAZY", !c.defaultPassthrough && !c.defaultStrict),
    opt("IOMMU_DEFAULT_PASSTHROUGH", c.defaultPassthrough),
    "CONFIG_VFIO=m",
    "CONFIG_VFIO_PCI=m",
    "CONFIG_VFIO_IOMMU_TYPE1=m",
    "",
  ].join("\n");
}

/** Builds the view of a booted kernel. */
export function kernelSysfsView(k: Kernel, description = "simulated kernel"): SysfsView {
  const e: Record<string, SnapshotEntry> = {};
  const file = (p: string, text: string) => (e[p] = { kind: "file", text });
  const link = (p: string, target: string) => (e[p] = { kind: "link", target: rel(p, target) });
  const port = k.port;
  file("/proc/cmdline", k.params.raw + "\n");
  file("/proc/sys/kernel/osrelease", KERNEL_RELEASE + "\n");
  file(`/boot/config-${KERNEL_RELEASE}`, kernelConfigText(k.config));
  file("/proc/sys/kernel/hostname", "sim\n");
  // An AMD platform (IVRS and no DMAR) has AMD CPUs with SVM; otherwise Intel CPUs with VMX.
  const amdCpu = port.firmware.acpi.IVRS !== undefined && port.firmware.acpi.DMAR === undefined;
  const cpu = amdCpu ? { vendor: "AuthenticAMD", virt: "svm" } : { vendor: "GenuineIntel", virt: "vmx" };
  file(
    "/proc/cpuinfo",
    port.firmware.cpus
      .map((c, i) => `processor\t: ${i}\nvendor_id\t: ${cpu.vendor}\nmodel name\t: Simulated CPU\napicid\t\t: ${c.apicId}\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx lm ${cpu.virt} x2apic\n`)
      .join("\n"),
  );
  file("/proc/interrupts", procInterrupts(k));
  for (const sig of ["DMAR", "IVRS"]) {
    const t = port.firmware.acpi[sig];
    if (t !== undefined) e[`/sys/firmware/acpi/tables/${sig}`] = { kind: "file", base64: Buffer.from(t).toString("base64") };
  }
  /** The class device directory each grouped device's iommu link points at. */
  const unitDir = new Map<KPciDev, string>();
  e["/sys/module/vfio_iommu_type1"] = { kind: "absent" };
  if (k.dmaRemapping && k.ops?.kind === "amd") {
    amdUnits(k, file, link, unitDir);
  } else if (k.dmaRemapping) {
    for (const u of k.driver.units) {
      const dir = `/sys/devices/virtual/iommu/${u.name}`;
      link(`/sys/class/iommu/${u.name}`, dir);
      file(`${dir}/intel-iommu/version`, `${u.versionString}\n`);
      file(`${dir}/intel-iommu/address`, `${u.base.toString(16)}\n`);
      file(`${dir}/intel-iommu/cap`, `${u.cap.toString(16)}\n`);
      file(`${dir}/intel-iommu/ecap`, `${u.ecap.toString(16)}\n`);
      file(`${dir}/intel-iommu/domains_supported`, `${u.ndoms}\n`);
      file(`${dir}/intel-iommu/domains_used`, `${u.domainsUsed()}\n`);
    }
  } else {
    e["/sys/class/iommu"] = { kind: "dir", names: [] };
  }
  e["/sys/kernel/iommu_groups"] = { kind: "dir", names: k.groups.map((g) => String(g.id)) };
  for (const g of k.groups) {
    const dir = `/sys/kernel/iommu_groups/${g.id}`;
    file(`${dir}/type`, `${g.type ?? "unmanaged"}\n`);
    const regions = k.iommu.groupReservedRegions(g);
    file(`${dir}/reserved_regions`, regions.map((r) => `${hex(r.start, 16)} ${hex(r.end, 16)} ${r.type}\n`).join(""));
    e[`${dir}/devices`] = { kind: "dir", names: g.devices.map((d) => d.name) };
    for (const d of g.devices) link(`${dir}/devices/${d.name}`, devicePath(d));
  }
  const drivers = new Map<string, string[]>();
  e["/sys/bus/pci/devices"] = { kind: "dir", names: k.devices.map((d) => d.name) };
  for (const d of k.devices) {
    const p = devicePath(d);
    link(`/sys/bus/pci/devices/${d.name}`, p);
    file(`${p}/vendor`, `${hex(d.vendor, 4)}\n`);
    file(`${p}/device`, `${hex(d.device, 4)}\n`);
    file(`${p}/class`, `${hex(d.classCode, 6)}\n`);
    file(`${p}/revision`, `${hex(d.revision, 2)}\n`);
    if (d.headerType === 0) {
      file(`${p}/subsystem_vendor`, `${hex(port.configRead(d.rid, 0x2c, 2), 4)}\n`);
      file(`${p}/subsystem_device`, `${hex(port.configRead(d.rid, 0x2e, 2), 4)}\n`);
    }
    const size = d.pcieType !== null ? 4096 : 256;
    const cfg = Buffer.alloc(size);
    for (let o = 0; o < size; o += 4) cfg.writeUInt32LE(port.configRead(d.rid, o, 4) >>> 0, o);
    e[`${p}/config`] = { kind: "file", base64: cfg.toString("base64") };
    const g = k.iommu.groupFor(d);
    if (g !== null && k.dmaRemapping) {
      link(`${p}/iommu_group`, `/sys/kernel/iommu_groups/${g.id}`);
      const dir = unitDir.get(d);
      if (dir !== undefined) link(`${p}/iommu`, dir);
      else {
        const u = k.driver.unitFor(d);
        if (u !== null) link(`${p}/iommu`, `/sys/devices/virtual/iommu/${u.name}`);
      }
    }
    if (d.driver !== null) {
      link(`${p}/driver`, `/sys/bus/pci/drivers/${d.driver}`);
      drivers.set(d.driver, [...(drivers.get(d.driver) ?? []), d.name]);
    }
  }
  for (const [drv, devs] of drivers) {
    for (const name of devs) link(`/sys/bus/pci/drivers/${drv}/${name}`, devicePath(k.pciDevice(name)));
  }
  return new SnapshotView(
    { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, createdBy: "iommu-kit simulated kernel", host: { hostname: "sim", kernel: KERNEL_RELEASE, source: description }, entries: e },
    description,
    description,
  );
}
