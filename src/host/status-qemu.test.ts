/**
 * The doctor against trees recorded from real Linux 6.1 kernels under QEMU (test/fixtures/hosts/qemu-*, made by
 * the lab): the five acceptance scenarios, through the CLI with --json as users run it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { cli } from "../../test/support/cli.js";

const root = (name: string) => `test/fixtures/hosts/${name}`;

interface Problem {
  code: string;
  severity: string;
}

async function status(name: string) {
  const r = await cli(["status", "--json", "--root", root(name)]);
  assert.equal(r.stderr, "");
  return { code: r.code, json: JSON.parse(r.stdout) };
}

async function groups(name: string) {
  const r = await cli(["groups", "--json", "--root", root(name)]);
  return { code: r.code, json: JSON.parse(r.stdout) as { groups: { id: number; type: string; devices: { address: string; driver: string | null; resetMethods: string[] | null }[] }[]; ungrouped: { address: string }[] } };
}

const blocking = (problems: Problem[]) => problems.filter((p) => p.severity === "error").map((p) => p.code);
const warnings = (problems: Problem[]) => problems.filter((p) => p.severity === "warning").map((p) => p.code);

describe("recorded kernels", () => {
  it("(a) VT-d with intremap, intel_iommu=on iommu=pt: ready, identity domains", async () => {
    const { code, json } = await status("qemu-a-intel-pt-ir");
    assert.equal(code, 0);
    assert.equal(json.ready, true);
    assert.equal(json.platform.vendor, "intel");
    assert.equal(json.platform.firmwareTable, "DMAR");
    assert.equal(json.platform.firmware.oemId, "BOCHS");
    assert.equal(json.platform.units[0].name, "dmar0");
    assert.equal(json.platform.units[0].registerBase, "0xfed90000");
    assert.equal(json.platform.units[0].capabilities.interruptRemapping, true);
    assert.equal(json.kernel.iommuActive, true);
    assert.equal(json.kernel.defaultDomain, "identity");
    assert.equal(json.kernel.dmaPolicy, "passthrough");
    assert.equal(json.kernel.interruptRemapping, "enabled");
    assert.deepEqual(blocking(json.problems), []);
    assert.deepEqual(warnings(json.problems), []);
  });

  it("(a) groups: numeric order, the bridge's group, multifunction slot together", async () => {
    const { code, json } = await groups("qemu-a-intel-pt-ir");
    assert.equal(code, 0);
    assert.deepEqual(json.groups.map((g) => g.id), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const byDev = (a: string) => json.groups.find((g) => g.devices.some((d) => d.address === a));
    assert.deepEqual(byDev("0000:02:01.0")?.devices.map((d) => d.address), ["0000:01:00.0", "0000:02:01.0"]);
    assert.deepEqual(byDev("0000:00:06.1")?.devices.map((d) => d.address), ["0000:00:06.0", "0000:00:06.1"]);
    const e1000e = byDev("0000:00:02.0")?.devices[0];
    assert.equal(e1000e?.driver, "e1000e");
    assert.deepEqual(e1000e?.resetMethods, ["pm"]);
    assert.equal(byDev("0000:00:02.0")?.type, "identity");
  });

  it("(b) VT-d without intremap: not ready, interrupt remapping off because the unit lacks it", async () => {
    const { code, json } = await status("qemu-b-intel-noir");
    assert.equal(code, 1);
    assert.equal(json.ready, false);
    assert.equal(json.kernel.iommuActive, true);
    assert.equal(json.kernel.interruptRemapping, "disabled");
    assert.equal(json.platform.firmware.interruptRemapping, false);
    assert.deepEqual(blocking(json.problems), ["INTERRUPT_REMAPPING_DISABLED"]);
    assert.equal(json.kernel.defaultDomain, "DMA-FQ");
  });

  it("(c) VT-d present, intel_iommu=off: not active, blames the parameter", async () => {
    const { code, json } = await status("qemu-c-intel-off");
    assert.equal(code, 1);
    assert.equal(json.kernel.iommuActive, false);
    assert.equal(json.platform.firmwareTable, "DMAR");
    assert.deepEqual(blocking(json.problems), ["IOMMU_DISABLED_BY_CMDLINE"]);
    assert.deepEqual(json.groups, []);
    const g = await groups("qemu-c-intel-off");
    assert.equal(g.code, 1);
    assert.equal(g.json.ungrouped.length > 0, true);
  });

  it("(d) no IOMMU: not active, no firmware table, suggests a virtual IOMMU", async () => {
    const { code, json } = await status("qemu-d-noiommu");
    assert.equal(code, 1);
    assert.equal(json.platform.firmwareTable, null);
    assert.deepEqual(blocking(json.problems), ["NO_IOMMU_FIRMWARE"]);
    assert.match(json.problems[0].hint, /-device intel-iommu,intremap=on/);
    assert.equal(json.platform.cpu.hypervisor, true);
  });

  it("(e) AMD-Vi with amd_iommu=on: ready, the invalid parameter is a warning", async () => {
    const { code, json } = await status("qemu-e-amd-on");
    assert.equal(code, 0);
    assert.equal(json.ready, true);
    assert.equal(json.platform.vendor, "amd");
    assert.equal(json.platform.firmwareTable, "IVRS");
    assert.equal(json.platform.units[0].name, "ivhd0");
    assert.equal(json.platform.units[0].efr, "0x29d3", "features read as 'EFR2:EFR'");
    assert.equal(json.kernel.interruptRemapping, "enabled");
    assert.equal(json.kernel.dmaPolicy, "strict", "a virtual AMD-Vi forces strict mode");
    assert.deepEqual(blocking(json.problems), []);
    assert.deepEqual(warnings(json.problems), ["AMD_IOMMU_ON_INVALID"]);
  });
});
