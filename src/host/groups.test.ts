import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "../../test/support/cli.js";
import { variant } from "../../test/support/status-trees.js";
import { gatherGroups, parseClassFilter, renderGroupsText } from "./groups.js";
import { loadPciIds } from "./pciids.js";
import { RootView } from "./views/root-view.js";

const INTEL = "test/fixtures/hosts/intel-ready";
const IDS = `${INTEL}/usr/share/misc/pci.ids`;
const ids = loadPciIds(IDS);

describe("gatherGroups", () => {
  it("names devices and sorts groups numerically with gaps", () => {
    const r = gatherGroups(new RootView(INTEL), { ids });
    assert.deepEqual(r.groups.map((g) => g.id), [0, 1, 2, 3, 12]);
    const gpu = r.groups.at(-1)?.devices[0];
    assert.equal(gpu?.name, "NVIDIA Corporation GA106 [GeForce RTX 3060 Lite Hash Rate]");
    assert.equal(gpu?.className, "VGA compatible controller");
    assert.equal(gpu?.class, "0300");
    assert.equal(gpu?.classCode, "0x030000");
    assert.equal(gpu?.revision, "a1");
    assert.deepEqual(r.ungrouped, []);
  });

  it("keeps whole groups that contain a device of the requested class", () => {
    const audio = gatherGroups(new RootView(INTEL), { ids, classFilters: [parseClassFilter("audio")] });
    assert.deepEqual(audio.groups.map((g) => [g.id, g.devices.length]), [[12, 2]]);
    const storage = gatherGroups(new RootView(INTEL), { ids, classFilters: [parseClassFilter("0x0108")] });
    assert.deepEqual(storage.groups.map((g) => g.id), [3]);
    const vgaOrBridge = gatherGroups(new RootView(INTEL), { ids, classFilters: [parseClassFilter("0300"), parseClassFilter("06")] });
    assert.deepEqual(vgaOrBridge.groups.map((g) => g.id), [0, 1, 2, 3, 12]);
  });

  it("rejects unknown class filters with a hint", () => {
    assert.throws(() => parseClassFilter("toaster"), /--class toaster: not a class code or name/);
  });
});

describe("renderGroupsText", () => {
  it("prints ls-iommu lines with tags and -k drivers", () => {
    const text = renderGroupsText(gatherGroups(new RootView(INTEL), { ids }), { drivers: true });
    const lines = text.split("\n");
    assert.equal(
      lines.find((l) => l.includes("0000:01:00.0")),
      "IOMMU Group 12: 0000:01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA106 [GeForce RTX 3060 Lite Hash Rate] [10de:2504] (rev a1)  reset=flr,bus",
    );
    assert.equal(
      lines.find((l) => l.includes("0000:00:1d.0")),
      "IOMMU Group  3: 0000:00:1d.0 PCI bridge [0604]: Intel Corporation Device 7ab0 [8086:7ab0] (rev 11)  bridge acs=not-isolating",
    );
    assert.match(text, /0000:00:02\.0 .*\(rev 0c\) {2}reset=flr,bus boot-vga\n\tKernel driver in use: i915\n/);
    assert.match(text, /IOMMU Group {2}0: 0000:00:00\.0 Host bridge \[0600\]: .* \(rev 02\)\n/, "no tags: ACS unknown on a non-bridge is not shown");
  });

  it("degrades to ids without pci.ids", () => {
    const text = renderGroupsText(gatherGroups(new RootView(INTEL), { ids: null }));
    assert.match(text, /0000:01:00\.0 Class \[0300\]: Vendor 10de Device 2504 \[10de:2504\] \(rev a1\)/);
  });
});

describe("iommu groups (CLI)", () => {
  it("prints JSON per the contract", async () => {
    const r = await cli(["groups", "--root", INTEL, "--json", "--pci-ids", IDS]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { groups: { id: number; type: string; devices: Record<string, unknown>[]; reservedRegions: unknown[] }[] };
    const g12 = j.groups.find((g) => g.id === 12);
    assert.equal(g12?.type, "identity");
    assert.deepEqual(g12?.reservedRegions, [{ start: "0xfee00000", end: "0xfeefffff", type: "msi" }]);
    const d = g12?.devices[0];
    assert.equal(d?.address, "0000:01:00.0");
    assert.equal(d?.vendorId, "10de");
    assert.equal(d?.deviceId, "2504");
    assert.equal(d?.class, "0300");
    assert.equal(d?.driver, "vfio-pci");
    assert.deepEqual(d?.resetMethods, ["flr", "bus"]);
    const rp = j.groups.find((g) => g.id === 2)?.devices[0];
    assert.deepEqual(rp?.acs, { capable: ["SV", "TB", "RR", "CR", "UF"], enabled: ["SV", "RR", "CR", "UF"], isolating: true });
    assert.equal(rp?.bridge, true);
  });

  it("filters by class from the command line", async () => {
    const r = await cli(["groups", "--root", INTEL, "--class", "gpu", "--pci-ids", IDS]);
    assert.equal(r.code, 0);
    assert.deepEqual(r.stdout.trim().split("\n").map((l) => l.slice(0, 15)), ["IOMMU Group  1:", "IOMMU Group 12:", "IOMMU Group 12:"]);
  });

  it("exits 1 with a reason when the host has no groups, listing devices as ungrouped", async () => {
    const v = variant("intel-ready", { "sys/kernel/iommu_groups": null, "sys/class/iommu": null });
    try {
      for (const d of ["0000:00:00.0", "0000:00:02.0"]) rmSync(join(v.root, "sys/devices/pci0000:00", d, "iommu_group"));
      const r = await cli(["groups", "--root", v.root, "--pci-ids", IDS]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no IOMMU groups in root .*: the IOMMU is not active/);
      assert.match(r.stdout, /^No IOMMU group: 0000:00:00\.0 Host bridge/);
    } finally {
      v.cleanup();
    }
  });

  it("fails with NO_SYSFS on a tree without /sys", async () => {
    const dir = mkdtempSync(join(tmpdir(), "iommu-empty-"));
    try {
      const r = await cli(["groups", "--root", dir]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^iommu: error: no \/sys in root .*\[NO_SYSFS\]\nhint: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a bad --class with exit 2", async () => {
    const r = await cli(["groups", "--root", INTEL, "--class", "nope"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^iommu: error: --class nope/);
  });
});
