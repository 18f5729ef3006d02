import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeTable, encodeTable, type IvrsTable } from "../acpi/index.js";
import { gatherStatus, statusExitCode, type StatusReport } from "./status.js";
import { interruptsText, variant, type TreeEdits } from "../../test/support/status-trees.js";
import { RootView } from "./views/root-view.js";
import { RecordingView } from "./views/recording-view.js";
import { SnapshotView } from "./views/snapshot-view.js";
import { parseInterrupts } from "./status-kernel.js";
import { parseCpuinfo } from "./status-cpu.js";

const codes = (r: StatusReport) => r.problems.map((p) => `${p.severity}:${p.code}`);

function statusOf(base: string, edits: TreeEdits): StatusReport {
  const v = variant(base, edits);
  try {
    return gatherStatus(new RootView(v.root));
  } finally {
    v.cleanup();
  }
}

const NO_IR_ECAP: TreeEdits = {
  "sys/devices/virtual/iommu/dmar0/intel-iommu/ecap": "f050d2\n",
  "sys/devices/virtual/iommu/dmar1/intel-iommu/ecap": "f050d2\n",
  "proc/interrupts": interruptsText(""),
  "proc/cmdline": "BOOT_IMAGE=/boot/vmlinuz ro intel_iommu=on\n",
};

const NO_IOMMU: TreeEdits = {
  "sys/firmware/acpi/tables/DMAR": null,
  "sys/class/iommu": null,
  "sys/kernel/iommu_groups": null,
  "proc/interrupts": interruptsText(""),
  "proc/cmdline": "BOOT_IMAGE=/boot/vmlinuz ro quiet\n",
};

describe("gatherStatus", () => {
  it("(a) VT-d with interrupt remapping, intel_iommu=on iommu=pt: ready", () => {
    const r = gatherStatus(new RootView("test/fixtures/hosts/intel-ready"));
    assert.equal(r.ready, true);
    assert.deepEqual(codes(r), []);
    assert.equal(statusExitCode(r), 0);
    assert.equal(r.platform.vendor, "intel");
    assert.equal(r.platform.firmwareTable, "DMAR");
    assert.equal(r.platform.firmware.interruptRemapping, true);
    assert.equal(r.platform.firmware.dmaControlOptIn, true);
    assert.deepEqual(r.platform.units.map((u) => [u.name, u.registerBase, u.inFirmware, u.capabilities.interruptRemapping]), [
      ["dmar0", "0xfed90000", true, true],
      ["dmar1", "0xfed91000", true, true],
    ]);
    assert.equal(r.kernel.iommuActive, true);
    assert.equal(r.kernel.defaultDomain, "identity");
    assert.equal(r.kernel.dmaPolicy, "passthrough");
    assert.equal(r.kernel.interruptRemapping, "enabled");
    assert.deepEqual(r.kernel.interruptChips, ["IR-IO-APIC", "IR-PCI-MSI"]);
    assert.equal(r.kernel.config?.values.CONFIG_INTEL_IOMMU_DEFAULT_ON, "n");
    assert.deepEqual(r.groups.map((g) => g.id), [0, 1, 2, 3, 12]);
    assert.equal(r.platform.cpu.virtualization, "vmx");
  });

  it("(b) VT-d without interrupt remapping: not ready, and says the unit cannot remap", () => {
    const r = statusOf("intel-ready", NO_IR_ECAP);
    assert.equal(r.ready, false);
    assert.equal(r.kernel.iommuActive, true);
    assert.equal(r.kernel.interruptRemapping, "disabled");
    assert.deepEqual(codes(r), ["error:INTERRUPT_REMAPPING_DISABLED"]);
    assert.match(r.problems[0]?.message ?? "", /dmar0, dmar1 cannot remap interrupts \(ECAP\.IR=0\)/);
    assert.match(r.problems[0]?.hint ?? "", /allow_unsafe_interrupts=1/);
    assert.equal(statusExitCode(r), 1);
  });

  it("(b') …with allow_unsafe_interrupts=Y: ready, with a warning", () => {
    const r = statusOf("intel-ready", { ...NO_IR_ECAP, "sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts": "Y\n" });
    assert.equal(r.ready, true);
    assert.deepEqual(codes(r), ["warning:UNSAFE_INTERRUPTS_ALLOWED"]);
    assert.equal(r.kernel.allowUnsafeInterrupts, true);
  });

  it("blames intremap=off when the command line turns remapping off", () => {
    const r = statusOf("intel-ready", { "proc/interrupts": interruptsText(""), "proc/cmdline": "intel_iommu=on intremap=off\n" });
    assert.deepEqual(codes(r), ["error:INTERRUPT_REMAPPING_DISABLED"]);
    assert.match(r.problems[0]?.message ?? "", /intremap=off/);
  });

  it("(c) VT-d present but intel_iommu=off: not active, blames the parameter", () => {
    const r = statusOf("intel-ready", {
      "proc/cmdline": "BOOT_IMAGE=/boot/vmlinuz ro intel_iommu=off\n",
      "sys/class/iommu": null,
      "sys/kernel/iommu_groups": null,
    });
    assert.equal(r.kernel.iommuActive, false);
    assert.equal(r.ready, false);
    assert.deepEqual(codes(r), ["error:IOMMU_DISABLED_BY_CMDLINE"]);
    assert.match(r.problems[0]?.message ?? "", /intel_iommu=off/);
    assert.deepEqual(r.groups, []);
    assert.equal(r.kernel.dmaPolicy, null);
    assert.deepEqual(r.platform.units.map((u) => [u.name, u.inFirmware, u.inKernel]), [
      [null, true, false],
      [null, true, false],
    ]);
  });

  it("VT-d in firmware but intel_iommu=on missing on a default-off kernel: says to add it", () => {
    const r = statusOf("intel-ready", { "proc/cmdline": "ro quiet\n", "sys/class/iommu": null, "sys/kernel/iommu_groups": null });
    assert.deepEqual(codes(r), ["error:IOMMU_NOT_ENABLED"]);
    assert.match(r.problems[0]?.hint ?? "", /intel_iommu=on/);
  });

  it("(d) no IOMMU in a VM: names the firmware and suggests a virtual IOMMU", () => {
    const cpu = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: QEMU Virtual CPU version 2.5+\nflags\t\t: fpu apic hypervisor lm\n\n";
    const r = statusOf("intel-ready", { ...NO_IOMMU, "proc/cpuinfo": cpu });
    assert.equal(r.ready, false);
    assert.equal(r.platform.firmwareTable, null);
    assert.deepEqual(codes(r), ["error:NO_IOMMU_FIRMWARE", "warning:CPU_NO_VIRTUALIZATION", "info:RUNNING_IN_VM"]);
    assert.match(r.problems[0]?.hint ?? "", /-device intel-iommu,intremap=on/);
    assert.match(r.problems[1]?.hint ?? "", /nested virtualization/);
  });

  it("(e) AMD-Vi with amd_iommu=on: ready, with the invalid parameter as a warning", () => {
    const r = gatherStatus(new RootView("test/fixtures/hosts/amd-iommu-on"));
    assert.equal(r.ready, true);
    assert.equal(statusExitCode(r), 0);
    assert.deepEqual(codes(r), ["warning:AMD_IOMMU_ON_INVALID"]);
    assert.equal(r.platform.vendor, "amd");
    assert.equal(r.platform.firmwareTable, "IVRS");
    assert.equal(r.platform.firmware.efrSupported, true);
    assert.deepEqual(r.platform.units.map((u) => [u.name, u.registerBase, u.deviceId, u.efr]), [
      ["ivhd0", "0xfeb80000", "00:00.2", "0x58f77ef22294a5a"],
    ]);
    assert.equal(r.kernel.defaultDomain, "DMA-FQ");
    assert.equal(r.kernel.dmaPolicy, "lazy");
  });

  it("explains AMD-Vi remapping off when the IVRS names no IOAPIC", () => {
    const ivrs = new Uint8Array(readFileSync("test/fixtures/hosts/amd-iommu-on/sys/firmware/acpi/tables/IVRS"));
    const t = decodeTable(ivrs).table as IvrsTable;
    for (const b of t.blocks) if (b.type === "IVHD") b.entries = b.entries.filter((e) => e.type !== "special");
    const r = statusOf("amd-iommu-on", { "sys/firmware/acpi/tables/IVRS": encodeTable(t), "proc/interrupts": interruptsText("") });
    assert.deepEqual(codes(r), ["error:INTERRUPT_REMAPPING_DISABLED", "warning:AMD_IOMMU_ON_INVALID"]);
    assert.match(r.problems[0]?.message ?? "", /names no IOAPIC/);
  });

  it("cannot judge interrupt remapping without /proc/interrupts", () => {
    const r = statusOf("intel-ready", { "proc/interrupts": null });
    assert.equal(r.kernel.interruptRemapping, "unknown");
    assert.equal(r.ready, false);
    assert.deepEqual(codes(r), ["error:INTERRUPT_REMAPPING_UNKNOWN"]);
  });

  it("reports a corrupt firmware table as a problem instead of crashing", () => {
    const bad = new Uint8Array(60);
    bad.set([0x44, 0x4d, 0x41, 0x52, 200, 0, 0, 0]); // "DMAR", length 200 > 60 bytes
    const r = statusOf("intel-ready", { "sys/firmware/acpi/tables/DMAR": bad });
    assert.equal(r.platform.firmware.decoded, false);
    assert.deepEqual(codes(r), ["warning:FIRMWARE_TABLE_INVALID"]);
    assert.equal(r.ready, true, "the kernel's own state still decides readiness");
  });

  it("reports an unreadable firmware table (recorded without root) with a hint", () => {
    const rec = new RecordingView(new RootView("test/fixtures/hosts/intel-ready"));
    gatherStatus(rec);
    const snap = rec.toSnapshot("t", {});
    snap.entries["/sys/firmware/acpi/tables/DMAR"] = {
      kind: "unreadable", code: "PERMISSION_DENIED", message: "/sys/firmware/acpi/tables/DMAR: permission denied", hint: "run as root (sudo) to read this file",
    };
    const r = gatherStatus(new SnapshotView(snap));
    assert.deepEqual(codes(r), ["warning:FIRMWARE_TABLE_UNREADABLE"]);
    assert.match(r.problems[0]?.hint ?? "", /run as root/);
    assert.equal(r.platform.firmwareTable, "DMAR");
  });

  it("answers the same from a recorded snapshot as from the tree", () => {
    const rec = new RecordingView(new RootView("test/fixtures/hosts/amd-iommu-on"));
    const live = gatherStatus(rec);
    const replay = gatherStatus(new SnapshotView(rec.toSnapshot("t", {})));
    assert.deepEqual({ ...replay, source: "" }, { ...live, source: "" });
  });
});

describe("parseInterrupts", () => {
  it("recognises remapped chips of 6.1 and per-device MSI domains of later kernels", () => {
    assert.equal(parseInterrupts(interruptsText("IR-")).state, "enabled");
    assert.equal(parseInterrupts(interruptsText("")).state, "disabled");
    const newer = " 40:  0  0  IR-PCI-MSIX-0000:01:00.0    0-edge      nvme0q0\n";
    assert.deepEqual(parseInterrupts(newer).remappedChips, ["IR-PCI-MSIX"]);
    assert.equal(parseInterrupts("           CPU0\nNMI: 0 Non-maskable\n").state, "unknown");
    assert.equal(parseInterrupts(null).state, "unknown");
  });
});

describe("parseCpuinfo", () => {
  it("reads vendor, virtualization and the hypervisor flag", () => {
    const amd = parseCpuinfo("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: fpu svm hypervisor\n");
    assert.deepEqual([amd.vendor, amd.virtualization, amd.hypervisor], ["amd", "svm", true]);
    assert.equal(parseCpuinfo(null).known, false);
  });
});
