// bind, check, bootargs and libvirt-xml on host trees recorded from Debian's 6.1 kernel under QEMU (see
// test/fixtures/hosts/README.md): same devices in every tree, different IOMMU setups.
import { test } from "node:test";
import assert from "node:assert/strict";
import { IommuError } from "../core/errors.js";
import { FakeHost } from "../../test/support/fake-host.js";
import { bindVfio, unbindVfio } from "./bind.js";
import { checkDevice, type CheckReport } from "./check.js";
import { resolveTargets } from "./bind-targets.js";
import { detectIommuVendor, kernelConfigInfo } from "./bootargs.js";
import { proposeParams } from "./bootargs-params.js";
import { splitArgs } from "./bootargs-params.js";
import { RootView } from "./views/root-view.js";

const HOSTS = "test/fixtures/hosts";
const A = `${HOSTS}/qemu-a-intel-pt-ir`;
const byCode = (r: CheckReport, code: string) => r.checks.find((c) => c.code === code);

test("qemu-a (VT-d + IR): the e1000e goes to vfio-pci, /dev/vfio/1 appears, unbind gives it back", () => {
  const h = FakeHost.fromTree(A);
  try {
    const r = bindVfio(h.view, "0000:00:02.0");
    assert.deepEqual(r.devices.map((d) => [d.before, d.after]), [["e1000e", "vfio-pci"]]);
    assert.equal(r.vfioDevice, "/dev/vfio/1");
    assert.equal(r.vfioDevicePresent, true);
    assert.equal(h.view.readText("/sys/bus/pci/devices/0000:00:02.0/driver_override"), "vfio-pci\n");
    const u = unbindVfio(h.view, "00:02.0");
    assert.deepEqual(u.devices.map((d) => [d.before, d.after]), [["vfio-pci", "e1000e"]]);
    assert.deepEqual(h.vfioNodes(), ["vfio"]);
  } finally {
    h.dispose();
  }
});

test("qemu-a: the e1000 behind the PCIe-to-PCI bridge binds with its group, the bridge stays", () => {
  const h = FakeHost.fromTree(A);
  try {
    const r = bindVfio(h.view, "02:01.0", { group: true });
    assert.deepEqual(r.devices.map((d) => d.address), ["0000:02:01.0"]);
    assert.deepEqual(r.skipped.map((s) => s.address), ["0000:01:00.0"]);
    assert.equal(r.vfioDevice, "/dev/vfio/9");
    const both = bindVfio(h.view, "00:06.1", { group: true });
    assert.deepEqual(both.devices.map((d) => [d.address, d.after]), [["0000:00:06.0", "vfio-pci"], ["0000:00:06.1", "vfio-pci"]]);
  } finally {
    h.dispose();
  }
});

test("qemu-a: check says ready for the e1000e, with bind then libvirt-xml as next steps", () => {
  const r = checkDevice(new RootView(A), "00:02.0");
  assert.equal(r.ready, true);
  assert.equal(byCode(r, "INTERRUPT_REMAPPING")?.ok, true);
  assert.equal(byCode(r, "RESET")?.message, "reset available: pm");
  assert.deepEqual(r.nextSteps, [
    "sudo iommu bind 0000:00:02.0",
    "iommu libvirt-xml 0000:00:02.0   # <hostdev> XML for virsh edit (or --qemu for QEMU arguments)",
  ]);
  const sata = checkDevice(new RootView(A), "00:1f.2");
  assert.match(byCode(sata, "RESERVED_REGIONS")?.message ?? "", /relaxable/, "q35's ISA RMRR is direct-relaxable");
  assert.deepEqual(resolveTargets(new RootView(A), "00:1f.2", true).skipped.map((s) => s.address), ["0000:00:1f.0"], "the LPC bridge stays");
});

test("qemu-b (no interrupt remapping): check fails on IR with the allow_unsafe_interrupts caveat", () => {
  const r = checkDevice(new RootView(`${HOSTS}/qemu-b-intel-noir`), "00:02.0");
  assert.equal(r.ready, false);
  const ir = byCode(r, "INTERRUPT_REMAPPING");
  assert.equal(ir?.ok, false);
  assert.equal(ir?.severity, "error");
  assert.match(ir?.hint ?? "", /allow_unsafe_interrupts/);
});

test("qemu-c (intel_iommu=off): check fails on the IOMMU, bootargs replaces intel_iommu=off", () => {
  const view = new RootView(`${HOSTS}/qemu-c-intel-off`);
  const r = checkDevice(view, "00:02.0");
  assert.equal(r.ready, false);
  assert.equal(byCode(r, "IOMMU_ACTIVE")?.ok, false);
  assert.equal(r.device.group, null);
  assert.equal(byCode(r, "GROUP_VIABLE"), undefined);
  assert.equal(detectIommuVendor(view).vendor, "intel");
  const p = proposeParams(splitArgs(view.readText("/proc/cmdline") ?? ""), {
    vendor: "intel",
    intelDefaultOn: kernelConfigInfo(view).intelDefaultOn,
    passthrough: false,
  });
  assert.deepEqual([p.add, p.remove], [["intel_iommu=on"], ["intel_iommu=off"]]);
  const h = FakeHost.fromTree(`${HOSTS}/qemu-c-intel-off`);
  try {
    assert.throws(() => bindVfio(h.view, "00:02.0"), (e: unknown) => e instanceof IommuError && e.code === "NO_IOMMU_GROUP");
    assert.deepEqual(h.writes, []);
  } finally {
    h.dispose();
  }
});

test("qemu-e (AMD-Vi, amd_iommu=on on the command line): the proposal removes it and adds nothing", () => {
  const view = new RootView(`${HOSTS}/qemu-e-amd-on`);
  assert.equal(detectIommuVendor(view).vendor, "amd");
  const args = splitArgs(view.readText("/proc/cmdline") ?? "");
  assert.ok(args.includes("amd_iommu=on"));
  const p = proposeParams(args, { vendor: "amd", intelDefaultOn: null, passthrough: false });
  assert.deepEqual([p.add, p.remove], [[], ["amd_iommu=on"]]);
});
