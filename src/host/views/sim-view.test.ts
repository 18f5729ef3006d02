import { test } from "node:test";
import assert from "node:assert/strict";
import { cli } from "../../../test/support/cli.js";

interface StatusJson {
  ready: boolean;
  kernel: { iommuActive: boolean; defaultDomain: string; interruptRemapping: string };
  problems: { code: string }[];
}

async function status(args: string[]): Promise<{ code: number; json: StatusJson }> {
  const r = await cli(["status", "--json", ...args]);
  return { code: r.code, json: JSON.parse(r.stdout) as StatusJson };
}

test("the doctor examines a simulated machine through the same view: verdicts follow the simulated command line", async () => {
  const on = await status(["--sim", "q35"]);
  assert.equal(on.code, 0);
  assert.equal(on.json.ready, true);
  assert.equal(on.json.kernel.defaultDomain, "DMA-FQ");
  const pt = await status(["--sim", "q35", "--sim-cmdline", "intel_iommu=on iommu=pt"]);
  assert.equal(pt.json.kernel.defaultDomain, "identity");
  const noir = await status(["--sim", "q35", "--sim-cmdline", "intel_iommu=on intremap=off"]);
  assert.equal(noir.code, 1);
  assert.equal(noir.json.kernel.interruptRemapping, "disabled");
  assert.ok(noir.json.problems.some((p) => p.code === "INTERRUPT_REMAPPING_DISABLED"));
  const off = await status(["--sim", "q35", "--sim-cmdline", "intel_iommu=off"]);
  assert.equal(off.json.kernel.iommuActive, false);
  const none = await status(["--sim", "q35-noiommu"]);
  assert.ok(none.json.problems.some((p) => p.code === "NO_IOMMU_FIRMWARE"));
});

test("groups of a simulated machine; bad --sim use is a usage error", async () => {
  const g = await cli(["groups", "--sim", "switch", "--json"]);
  assert.equal(g.code, 0, g.stderr);
  const groups = (JSON.parse(g.stdout) as { groups: { devices: { address: string }[] }[] }).groups;
  const nicGroups = groups.filter((x) => x.devices.some((d) => d.address === "0000:03:00.0" || d.address === "0000:04:00.0"));
  assert.equal(nicGroups.length, 2, "the ACS port isolates nic-a from nic-b's non-ACS port");
  const both = await cli(["status", "--sim", "q35", "--root", "/"]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /cannot be used together/);
  const lone = await cli(["status", "--sim-cmdline", "iommu=pt"]);
  assert.equal(lone.code, 2);
  const bind = await cli(["bind", "00:02.0", "--sim", "q35"]);
  assert.equal(bind.code, 2);
  assert.match(bind.stderr, /read-only/);
});
