import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { IommuError } from "../core/errors.js";
import { listIommuGroups, listPciDevices } from "../host/pci.js";
import { PciIds } from "../host/pciids.js";
import { recordSnapshot } from "../host/snapshot.js";
import { gatherStatus } from "../host/status.js";
import { RootView } from "../host/views/root-view.js";
import { SnapshotView } from "../host/views/snapshot-view.js";
import { FIXTURE_HOSTS } from "../../test/support/status-trees.js";
import { buildHostUi } from "./host-data.js";

const IDS = new PciIds("8086  Intel Corporation\n\t10d3  82574L Gigabit Network Connection\n", "test");
const root = (name: string): RootView => new RootView(join(FIXTURE_HOSTS, name));
const recorded = (name: string): SnapshotView => new SnapshotView(recordSnapshot(root(name), { createdBy: "test", dmesg: null }), `${name}.json`);

test("a recorded host: every PCI device and group of the recording, parents from the device paths, units", () => {
  for (const name of ["qemu-a-intel-pt-ir", "intel-ready", "amd-iommu-on"]) {
    const view = recorded(name);
    const d = buildHostUi(view, { ids: IDS });
    assert.equal(d.source, "snapshot");
    assert.deepEqual(d.devices.map((x) => x.bdf), listPciDevices(view).map((x) => x.address), name);
    assert.deepEqual(d.groups.map((g) => [g.id, g.devices]), listIommuGroups(view).map((g) => [g.id, g.devices]), name);
    for (const dev of d.devices) assert.equal(dev.group, d.groups.find((g) => g.devices.includes(dev.bdf))?.id ?? null, `${name} ${dev.bdf}`);
    assert.deepEqual(d.units.map((u) => u.name), gatherStatus(view).platform.units.map((u) => u.name ?? ""), name);
    assert.deepEqual([d.spaces, d.stories, d.scenarios], [[], [], []]);
    assert.match(d.absent ?? "", new RegExp(`^snapshot ${name}\\.json holds what sysfs and /proc showed, not the IOMMU's tables`));
  }
  const q = buildHostUi(recorded("qemu-a-intel-pt-ir"), { ids: IDS });
  assert.equal(q.devices.find((x) => x.bdf === "0000:02:01.0")?.parent, "0000:01:00.0");
  assert.equal(q.devices.find((x) => x.bdf === "0000:01:00.0")?.parent, "0000:00:05.0");
  assert.equal(q.devices.find((x) => x.bdf === "0000:00:02.0")?.name, "82574L Gigabit Network Connection", "named from pci.ids");
  assert.equal(q.devices.find((x) => x.bdf === "0000:00:03.0")?.name, "Vendor 1af4 Device 1041", "ids when pci.ids does not name it");
  assert.equal(q.devices.find((x) => x.bdf === "0000:00:02.0")?.ids, "8086:10d3 [0200]");
  assert.deepEqual(q.units.map((u) => [u.name, u.base, u.translation, u.irqRemapping, u.scope.length]), [["dmar0", "0xfed90000", true, true, 14]]);
});

test("a recorded host's groups say why they are shared, from bridges, ACS and multifunction slots", () => {
  const q = buildHostUi(recorded("qemu-a-intel-pt-ir"), { ids: null });
  const why = (bdf: string): string[] => q.groups.find((g) => g.devices.includes(bdf))?.why ?? [];
  assert.deepEqual(why("0000:02:01.0"), ["PCIe-to-PCI bridge 0000:01:00.0: devices behind it share its requester id (alias)"]);
  assert.deepEqual(why("0000:00:06.1"), ["multifunction device 0000:00:06 without ACS"], "conventional PCI functions have no ACS");
  assert.deepEqual(why("0000:00:02.0"), []);
  const intel = buildHostUi(root("intel-ready"), { ids: null });
  assert.deepEqual(intel.groups.find((g) => g.devices.includes("0000:02:00.0"))?.why, ["no ACS on the path at 0000:00:1d.0"]);
  assert.deepEqual(intel.groups.find((g) => g.devices.includes("0000:01:00.1"))?.why, ["multifunction device 0000:01:00 without ACS"]);
  for (const g of [...q.groups, ...intel.groups]) assert.equal(g.why.length === 0, g.devices.length === 1, `group ${g.id}`);
});

test("the doctor's problems: the host's in host, each device's check on the device it concerns", () => {
  const noir = buildHostUi(recorded("qemu-b-intel-noir"), { ids: null });
  assert.equal(noir.host?.ready, false);
  assert.deepEqual(noir.host?.problems.map((p) => p.code), ["INTERRUPT_REMAPPING_DISABLED", "RUNNING_IN_VM"]);
  const nic = noir.devices.find((x) => x.bdf === "0000:00:02.0");
  assert.equal(nic?.check?.ready, false);
  assert.deepEqual(nic?.check?.findings.filter((f) => !f.ok).map((f) => [f.code, f.scope]), [["INTERRUPT_REMAPPING", "host"], ["DEVICE_DRIVER", "device"]]);
  assert.equal(noir.devices.find((x) => x.bdf === "0000:01:00.0")?.check, null, "bridges stay with the host: not checked");
  const multi = noir.devices.find((x) => x.bdf === "0000:00:06.0")?.check?.findings.find((f) => f.code === "GROUP_VIABLE");
  assert.match(multi?.message ?? "", /group 5 also holds 0000:00:06\.1/);

  const intel = buildHostUi(root("intel-ready"), { ids: null });
  assert.equal(intel.host?.ready, true);
  const igpu = intel.devices.find((x) => x.bdf === "0000:00:02.0")?.check?.findings.find((f) => f.code === "HOST_IN_USE");
  assert.deepEqual([igpu?.ok, igpu?.severity, igpu?.scope], [false, "error", "device"], "the host's display is on 00:02.0");
  assert.equal(intel.devices.find((x) => x.bdf === "0000:01:00.0")?.check?.ready, true);
});

test("a host without an IOMMU: no groups, no units, every device in no group and the reason it is not ready", () => {
  const d = buildHostUi(recorded("qemu-d-noiommu"), { ids: null });
  assert.deepEqual([d.groups, d.units], [[], []]);
  assert.ok(d.devices.length > 10 && d.devices.every((x) => x.group === null));
  assert.equal(d.host?.problems[0]?.code, "NO_IOMMU_FIRMWARE");
  assert.ok(d.devices.filter((x) => x.check !== null).every((x) => x.check?.findings.some((f) => f.code === "IOMMU_ACTIVE" && !f.ok && f.scope === "host")));
});

test("a recording without /sys is refused with NO_SYSFS; the recording's own header names the host", () => {
  const empty = new SnapshotView({ format: "iommu-kit-snapshot", version: 1, createdBy: "test", host: {}, entries: {} }, "empty.json");
  assert.throws(() => buildHostUi(empty, { ids: null }), (e: unknown) => e instanceof IommuError && e.code === "NO_SYSFS");
  const d = buildHostUi(recorded("intel-ready"), { ids: null, recording: { hostname: "desk", kernel: "6.1.0-18-amd64", createdAt: "2024-05-01T10:00:00Z", createdBy: "iommu-kit 0.1.0" } });
  assert.deepEqual([d.machine, d.host?.hostname, d.host?.recordedAt, d.host?.source], ["desk", "desk", "2024-05-01T10:00:00Z", "snapshot intel-ready.json"]);
});

test("an IOMMU the command line turned off: the firmware's unit, off, and the problem that says why", () => {
  const d = buildHostUi(recorded("qemu-c-intel-off"), { ids: null });
  assert.deepEqual(d.units, [{ name: "DRHD (in the firmware table only)", base: "0xfed90000", translation: false, irqRemapping: false, scope: [] }]);
  assert.equal(d.host?.problems[0]?.code, "IOMMU_DISABLED_BY_CMDLINE");
  assert.deepEqual(d.groups, []);
});
