// The simulated kernel's AMD-Vi driver against Linux 6.1 booted under QEMU with `-device amd-iommu,intremap=on`
// (test/fixtures/hosts/qemu-e-amd-on: the guest's sysfs tree and dmesg). The simulated machine has the same
// devices (machine preset q35-lab), QEMU's AMD-Vi unit model and the IVRS recorded from that guest; it boots with
// the same command line. Groups, members, default domain types, reserved regions, the IOMMU class device and the
// AMD-Vi / iommu log lines must be the real kernel's, and the doctor must judge both alike.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { AmdMachine } from "../../test/support/amd-machine.js";
import type { SysfsView } from "../host/sysfs-view.js";
import { RootView } from "../host/views/root-view.js";
import { gatherStatus } from "../host/status.js";
import { Kernel } from "./kernel.js";
import { kernelSysfsView } from "./sysfs.js";

const REAL = "test/fixtures/hosts/qemu-e-amd-on";
const real = new RootView(REAL);
const cmdline = readFileSync(`${REAL}/proc/cmdline`, "utf8").trim();
const k = Kernel.boot(new AmdMachine(), { cmdline });
const sim = kernelSysfsView(k);

/** Lines of the AMD driver, the IOMMU core and the PCI quirks it triggers (text after the timestamp). */
const PATTERNS = [
  /^AMD-Vi: /,
  /^iommu: /,
  /^pci [0-9a-f:.]+: Adding to iommu group \d+$/,
  /^pci [0-9a-f:.]+: Enabling fixed DMA alias/,
  /^pci [0-9a-f:.]+: AMD-Vi: /,
  /^PCI-DMA: /,
  /^perf\/amd_iommu: /,
  /Event logged/,
];
const wanted = (l: string): boolean => PATTERNS.some((re) => re.test(l));

function groups(v: SysfsView): { id: string; devices: string[]; type: string | null; regions: string | null }[] {
  return (v.list("/sys/kernel/iommu_groups") ?? [])
    .sort((a, b) => Number(a) - Number(b))
    .map((id) => ({
      id,
      devices: v.list(`/sys/kernel/iommu_groups/${id}/devices`) ?? [],
      type: v.readText(`/sys/kernel/iommu_groups/${id}/type`),
      regions: v.readText(`/sys/kernel/iommu_groups/${id}/reserved_regions`),
    }));
}

test("same groups, members, default domain types and reserved regions as Linux 6.1", () => {
  const want = groups(real);
  assert.equal(want.length, 10, "the recorded tree has its ten groups");
  assert.deepEqual(groups(sim), want);
});

test("same AMD-Vi and iommu log lines, in the same order", () => {
  const realLines = readFileSync(`${REAL}/dmesg.txt`, "utf8")
    .split("\n")
    .map((l) => l.replace(/^\[[ \d.]+\] /, "").trimEnd())
    .filter(wanted);
  const simLines = k.log.lines.map((l) => l.text.trimEnd()).filter(wanted);
  assert.ok(realLines.length >= 20, `${realLines.length} lines in the real log`);
  assert.deepEqual(simLines, realLines);
});

test("the IOMMU class device: ivhd0 under the IOMMU's PCI function, cap, features and the devices it translates", () => {
  assert.deepEqual(sim.list("/sys/class/iommu"), real.list("/sys/class/iommu"));
  assert.equal(sim.readLink("/sys/class/iommu/ivhd0"), real.readLink("/sys/class/iommu/ivhd0"));
  const dir = "/sys/devices/pci0000:00/0000:00:01.0/iommu/ivhd0";
  for (const f of ["amd-iommu/cap", "amd-iommu/features"]) assert.equal(sim.readText(`${dir}/${f}`), real.readText(`${dir}/${f}`), f);
  assert.deepEqual(sim.list(`${dir}/devices`), real.list(`${dir}/devices`));
  for (const d of real.list("/sys/bus/pci/devices") ?? []) {
    const p = `/sys/bus/pci/devices/${d}/iommu`;
    assert.equal(sim.readLink(p) !== null, real.readLink(p) !== null, `${d}: iommu link`);
  }
  assert.equal(sim.readLink("/sys/bus/pci/devices/0000:00:02.0/iommu"), real.readLink("/sys/devices/pci0000:00/0000:00:02.0/iommu"));
});

test("the doctor judges the simulated kernel as it judges the real one", () => {
  const a = gatherStatus(real);
  const b = gatherStatus(sim);
  const pick = (r: ReturnType<typeof gatherStatus>) => ({
    ready: r.ready,
    vendor: r.platform.vendor,
    table: r.platform.firmwareTable,
    units: r.platform.units.map((u) => [u.name, u.efr]),
    active: r.kernel.iommuActive,
    dmaPolicy: r.kernel.dmaPolicy,
    ir: r.kernel.interruptRemapping,
    // The recorded kernel ran in a QEMU guest (CPU flag "hypervisor"); the simulated machine is not a guest.
    problems: r.problems.filter((p) => p.code !== "RUNNING_IN_VM").map((p) => `${p.severity} ${p.code}`).sort(),
  });
  assert.deepEqual(pick(b), pick(a));
});
