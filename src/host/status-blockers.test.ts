/** Blockers the kernel's build, its module files, the command line and /dev show, on variants of a recorded host. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { FIXTURE_HOSTS, variant } from "../../test/support/status-trees.js";
import { checkDevice } from "./check.js";
import { gatherStatus } from "./status.js";
import { RootView } from "./views/root-view.js";

const BASE = "intel-ready";
const CONFIG = "boot/config-6.1.0-18-amd64";
const config = readFileSync(join(FIXTURE_HOSTS, BASE, CONFIG), "utf8");
const without = (...keys: string[]): string => keys.reduce((c, k) => c.replace(new RegExp(`^${k}=.*$`, "m"), `# ${k} is not set`), config);
/** The recorded host with vfio-pci not loaded (its driver directory and module gone from sysfs). */
const UNLOADED = { "sys/bus/pci/drivers/vfio-pci": null, "sys/module/vfio_pci": null };

function codes(edits: Record<string, string | null>): { status: string[]; check: ReturnType<typeof checkDevice> } {
  const v = variant(BASE, edits);
  try {
    const view = new RootView(v.root);
    return { status: gatherStatus(view).problems.map((p) => p.code), check: checkDevice(view, "02:00.0") };
  } finally {
    v.cleanup();
  }
}

test("a kernel built without VFIO: status names it, check does not suggest modprobe vfio-pci", () => {
  const r = codes({ ...UNLOADED, [CONFIG]: without("CONFIG_VFIO", "CONFIG_VFIO_PCI") });
  assert.ok(r.status.includes("VFIO_NOT_BUILT"), r.status.join(","));
  const vfio = r.check.checks.find((c) => c.code === "VFIO_PCI_LOADED")!;
  assert.equal(vfio.severity, "error");
  assert.match(vfio.message, /CONFIG_VFIO is not set/);
  assert.doesNotMatch(JSON.stringify(r.check), /modprobe vfio-pci/);
  // The same host with VFIO built as modules: loading it is the right step.
  const m = codes({ ...UNLOADED });
  assert.ok(!m.status.includes("VFIO_NOT_BUILT"));
  assert.match(JSON.stringify(m.check), /modprobe vfio-pci/);
});

test("vfio-pci as a module that is not installed, or with nomodule on the command line", () => {
  const missing = codes({ ...UNLOADED, "lib/modules/6.1.0-18-amd64/kernel/drivers/vfio/pci/vfio-pci-core.ko": "" });
  assert.ok(missing.status.includes("VFIO_PCI_MODULE_MISSING"), missing.status.join(","));
  const present = codes({ ...UNLOADED, "lib/modules/6.1.0-18-amd64/kernel/drivers/vfio/pci/vfio-pci.ko.xz": "" });
  assert.ok(!present.status.includes("VFIO_PCI_MODULE_MISSING"));
  const cmdline = readFileSync(join(FIXTURE_HOSTS, BASE, "proc/cmdline"), "utf8").trim();
  const nomod = codes({ ...UNLOADED, "proc/cmdline": `${cmdline} nomodule\n` });
  assert.ok(nomod.status.includes("MODULES_DISABLED"), nomod.status.join(","));
  assert.doesNotMatch(JSON.stringify(nomod.check), /modprobe vfio-pci/);
});

test("a kernel built without CONFIG_IRQ_REMAP: the interrupt-remapping problem names the build, not the command line", () => {
  const v = variant(BASE, { [CONFIG]: without("CONFIG_IRQ_REMAP"), "proc/interrupts": "           CPU0\n  0:  36  IO-APIC  2-edge  timer\n 24:  0  PCI-MSI 1-edge  nvme0q0\n" });
  try {
    const p = gatherStatus(new RootView(v.root)).problems.find((x) => x.code === "INTERRUPT_REMAPPING_DISABLED");
    assert.ok(p !== undefined);
    assert.match(p.message, /built without interrupt remapping \(CONFIG_IRQ_REMAP is not set\)/);
  } finally {
    v.cleanup();
  }
});

test("/dev/kvm without vmx/svm flags is KVM available, not 'KVM cannot run'", () => {
  const cpuinfo = readFileSync(join(FIXTURE_HOSTS, BASE, "proc/cpuinfo"), "utf8").replace(/ vmx/g, "");
  const noFlag = codes({ "proc/cpuinfo": cpuinfo });
  assert.ok(noFlag.status.includes("CPU_NO_VIRTUALIZATION"));
  const withKvm = codes({ "proc/cpuinfo": cpuinfo, "dev/kvm": "" });
  assert.ok(!withKvm.status.includes("CPU_NO_VIRTUALIZATION"), withKvm.status.join(","));
  assert.ok(withKvm.status.includes("KVM_WITHOUT_CPU_FLAG"));
});

test("no firmware table and a kernel without the VT-d driver: both are named, since fixing one is not enough", () => {
  const off = { "sys/class/iommu": null, "sys/kernel/iommu_groups": null, "sys/bus/pci/devices/0000:02:00.0/iommu_group": null, "sys/bus/pci/devices/0000:02:00.0/iommu": null };
  const both = codes({ ...off, "sys/firmware/acpi/tables/DMAR": null, [CONFIG]: without("CONFIG_INTEL_IOMMU") });
  assert.ok(both.status.includes("NO_IOMMU_FIRMWARE") && both.status.includes("IOMMU_NOT_BUILT"), both.status.join(","));
  // The firmware table alone missing: the driver is there, only the firmware is named.
  const fwOnly = codes({ ...off, "sys/firmware/acpi/tables/DMAR": null });
  assert.ok(fwOnly.status.includes("NO_IOMMU_FIRMWARE") && !fwOnly.status.includes("IOMMU_NOT_BUILT"), fwOnly.status.join(","));
  // The table present, the driver missing: the build is the blocker, and intel_iommu=on is not proposed.
  const buildOnly = codes({ ...off, [CONFIG]: without("CONFIG_INTEL_IOMMU") });
  assert.ok(buildOnly.status.includes("IOMMU_NOT_BUILT") && !buildOnly.status.includes("IOMMU_NOT_ENABLED"), buildOnly.status.join(","));
});
