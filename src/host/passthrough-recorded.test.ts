/**
 * Pass-through findings on trees recorded from Linux 6.1 under QEMU by the lab's scenarios g and h
 * (test/fixtures/hosts/README.md): vfio-pci.ids= on the command line with vfio_pci loaded before (g) and after
 * (h) e1000e, and in g a second e1000 behind the PCIe-to-PCI bridge. The expected reset findings are what VFIO
 * itself answered in that guest (lab/doctor-passthrough.ts): its RESET flag and the devices its hot reset covers.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { FIXTURE_HOSTS, variant } from "../../test/support/status-trees.js";
import { checkDevice } from "./check.js";
import { gatherGroups, renderGroupsText } from "./groups.js";
import { gatherStatus } from "./status.js";
import { RootView } from "./views/root-view.js";

const G = new RootView(`${FIXTURE_HOSTS}/qemu-g-early-bind`);
const H = new RootView(`${FIXTURE_HOSTS}/qemu-h-early-bind-lost`);

function findings(view: RootView): Map<string, string[]> {
  const groups = gatherGroups(view, { ids: null });
  return new Map(groups.groups.flatMap((g) => g.devices).map((d) => [d.address, d.findings.map((f) => f.code)]));
}

test("qemu-g: vfio-pci.ids= on the command line and vfio_pci loaded first: the e1000e is on vfio-pci, no EARLY_BIND_*", () => {
  const c = checkDevice(G, "00:02.0");
  assert.equal(c.device.driver, "vfio-pci");
  const early = c.checks.find((x) => x.code === "EARLY_BINDING");
  assert.equal(early?.ok, true);
  assert.match(early?.message ?? "", /^0000:00:02\.0 is claimed by vfio-pci at boot \(kernel command line \(vfio-pci\.ids=8086:10d3\)\)/);
  assert.ok(!gatherStatus(G).problems.some((p) => p.code.startsWith("EARLY_BIND_")));
  assert.ok(!(findings(G).get("0000:00:02.0") ?? []).some((f) => f.startsWith("EARLY_BIND_")));
});

test("qemu-h: vfio-pci.ids= on the command line but e1000e loaded first: EARLY_BIND_LOST with the softdep fix", () => {
  const lost = gatherStatus(H).problems.filter((p) => p.code === "EARLY_BIND_LOST");
  assert.deepEqual(lost.map((p) => p.message.slice(0, 12)), ["0000:00:02.0"]);
  assert.match(lost[0]?.message ?? "", /is listed for vfio-pci \(kernel command line \(vfio-pci\.ids=8086:10d3\)\) but e1000e claimed it first/);
  assert.match(lost[0]?.hint ?? "", /^1\. add the line 'softdep e1000e pre: vfio-pci' to \/etc\/modprobe\.d\/vfio\.conf/);
  assert.equal(checkDevice(H, "00:02.0").checks.find((x) => x.code === "EARLY_BINDING")?.ok, false);
  assert.ok((findings(H).get("0000:00:02.0") ?? []).includes("EARLY_BIND_LOST"));
});

test("qemu-g: each device's reset finding is what VFIO answered in that guest", () => {
  // resetFlag true -> none; hot reset of 02:01.0 + 02:02.0 -> RESET_BUS_ONLY; neither -> RESET_NONE.
  const vfio: Record<string, string | null> = {
    "0000:00:02.0": null, // reset_method pm, VFIO reset flag set
    "0000:00:03.0": "RESET_NONE", // no reset_method, no hot reset (root bus)
    "0000:00:04.0": null, // flr
    "0000:00:06.0": "RESET_NONE",
    "0000:00:06.1": "RESET_NONE",
    "0000:02:01.0": "RESET_BUS_ONLY", // reset_method "bus", but the reset fails while 02:02.0 is on the bus
    "0000:02:02.0": "RESET_BUS_ONLY", // no reset_method at all; VFIO's hot reset covers it with 02:01.0
  };
  const f = findings(G);
  for (const [bdf, want] of Object.entries(vfio)) {
    const got = (f.get(bdf) ?? []).filter((c) => c === "RESET_NONE" || c === "RESET_BUS_ONLY");
    assert.deepEqual(got, want === null ? [] : [want], bdf);
  }
  const first = checkDevice(G, "02:01.0").checks.find((x) => x.code === "RESET");
  assert.match(first?.message ?? "", /^the only reset of 0000:02:01\.0 is a secondary bus reset \(no FLR\), which also resets 0000:02:02\.0 \(e1000\)/);
  const second = checkDevice(G, "02:02.0").checks.find((x) => x.code === "RESET");
  assert.deepEqual([second?.ok, second?.severity], [false, "warning"]);
  assert.match(second?.message ?? "", /^0000:02:02\.0 has no reset of its own .* a secondary bus reset by 0000:01:00\.0 resets it together with 0000:02:01\.0 \(e1000\)/);
  assert.match(renderGroupsText(gatherGroups(G, { ids: null })), /0000:02:02\.0 .*bus-reset-shared/);
});

test("qemu-h with driver_override pci-stub and no driver: DRIVER_OVERRIDE_OTHER is the one finding, EARLY_BINDING names it", () => {
  const v = variant("qemu-h-early-bind-lost", {
    "sys/devices/pci0000:00/0000:00:02.0/driver": null,
    "sys/bus/pci/drivers/e1000e/0000:00:02.0": null,
    "sys/devices/pci0000:00/0000:00:02.0/driver_override": "pci-stub\n",
  });
  try {
    const view = new RootView(v.root);
    const about = gatherStatus(view).problems.filter((p) => p.message.includes("0000:00:02.0")).map((p) => p.code);
    assert.deepEqual(about, ["DRIVER_OVERRIDE_OTHER"], "not EARLY_BIND_UNCLAIMED: vfio-pci is loaded, the override keeps it out");
    const early = checkDevice(view, "00:02.0").checks.find((x) => x.code === "EARLY_BINDING");
    assert.equal(early?.ok, false);
    assert.match(early?.message ?? "", /but no driver has it: its driver_override "pci-stub" lets only pci-stub bind it/);
    // The lab saw e1000e, not vfio-pci, take the device when the override was cleared and it was probed.
    assert.match(early?.hint ?? "", /^give it to vfio-pci: echo vfio-pci \| sudo tee \/sys\/bus\/pci\/devices\/0000:00:02\.0\/driver_override && echo 0000:00:02\.0 \| sudo tee \/sys\/bus\/pci\/drivers_probe/);
  } finally {
    v.cleanup();
  }
});
