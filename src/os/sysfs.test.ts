import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { Machine } from "../hw/machine.js";
import { machinePreset } from "../hw/machine-presets.js";
import type { MachineConfigInput } from "../hw/machine-config.js";
import { listIommuGroups, listPciDevices } from "../host/pci.js";
import { readInterrupts, readKernelUnits } from "../host/status-kernel.js";
import { gatherStatus } from "../host/status.js";
import { Kernel } from "./kernel.js";
import { kernelSysfsView } from "./sysfs.js";

const FIXTURES = "test/fixtures/hosts";

/** The lab's scenarios as machine configurations (lab/scenarios.ts): q35-lab with the scenario's IOMMU. */
function labMachine(scenario: string): Machine {
  const base = machinePreset("q35-lab")!;
  const unit = (base.iommus as Record<string, unknown>[])[0]!;
  const cfg: MachineConfigInput =
    scenario === "qemu-b-intel-noir" ? { ...base, iommus: [{ ...unit, interruptRemapping: false }] }
      : scenario === "qemu-d-noiommu" ? { ...base, iommus: [] }
        : base;
  return new Machine(cfg);
}

/** The IOMMU lines of a log, without timestamps (the AMD IOMMUv2 module's note is not modelled). */
function iommuLines(lines: string[]): string[] {
  return lines.filter((l) => /^(DMAR|DMAR-IR|iommu): |^pci [0-9a-f:.]+: Adding to iommu group/.test(l));
}

for (const scenario of ["qemu-a-intel-pt-ir", "qemu-b-intel-noir", "qemu-c-intel-off", "qemu-d-noiommu"]) {
  const dir = join(FIXTURES, scenario);
  test(`${scenario}: groups, group types, reserved regions and IOMMU log lines equal the recorded 6.1 kernel's`, () => {
    const cmdline = readFileSync(join(dir, "proc/cmdline"), "utf8").trim();
    const k = Kernel.boot(labMachine(scenario), { cmdline });
    const view = kernelSysfsView(k);
    const groupsDir = join(dir, "sys/kernel/iommu_groups");
    const real = existsSync(groupsDir)
      ? readdirSync(groupsDir).map(Number).sort((a, b) => a - b).map((id) => ({
          id,
          type: readFileSync(join(groupsDir, String(id), "type"), "utf8").trim(),
          devices: readdirSync(join(groupsDir, String(id), "devices")).sort(),
          regions: readFileSync(join(groupsDir, String(id), "reserved_regions"), "utf8"),
        }))
      : [];
    const sim = listIommuGroups(view).map((g) => ({
      id: g.id,
      type: g.type,
      devices: g.devices,
      regions: view.readText(`/sys/kernel/iommu_groups/${g.id}/reserved_regions`),
    }));
    assert.deepEqual(sim, real);
    const realLog = readFileSync(join(dir, "dmesg.txt"), "utf8").split("\n").map((l) => l.replace(/^\[[ \d.]+\] /, ""));
    assert.deepEqual(iommuLines(k.log.lines.map((l) => l.text)), iommuLines(realLog));
    // The device links the doctor follows.
    for (const d of listPciDevices(view)) {
      const p = join(dir, "sys/bus/pci/devices", d.address);
      if (!existsSync(p)) continue;
      assert.equal(view.readLink(`/sys/bus/pci/devices/${d.address}`), readlinkSync(p), d.address);
      assert.equal(d.iommuGroup, existsSync(join(p, "iommu_group")) ? Number(readlinkSync(join(p, "iommu_group")).split("/").pop()) : null);
    }
  });
}

test("the doctor reads the simulated kernel: units, interrupt remapping, status", () => {
  const k = Kernel.boot(Machine.load("q35"), { cmdline: "intel_iommu=on" });
  const view = kernelSysfsView(k);
  const units = readKernelUnits(view);
  assert.equal(units.length, 1);
  assert.equal(units[0]!.registerBase, "0xfed90000");
  assert.equal(units[0]!.capabilities.interruptRemapping, true);
  assert.equal(view.readText("/sys/class/iommu/dmar0/intel-iommu/domains_used"), `${k.groups.length + 1}\n`);
  assert.equal(readInterrupts(view).state, "enabled");
  const status = gatherStatus(view);
  assert.equal(status.kernel.iommuActive, true);
  assert.equal(status.kernel.groupCount, k.groups.length);
  assert.equal(status.kernel.defaultDomain, "DMA-FQ");
  const off = kernelSysfsView(Kernel.boot(Machine.load("q35"), { cmdline: "intel_iommu=off intremap=off" }));
  assert.equal(gatherStatus(off).kernel.iommuActive, false);
  assert.equal(readInterrupts(off).state, "disabled");
});
