import { test } from "node:test";
import assert from "node:assert/strict";
import { SCENARIO_NAMES } from "../hv/scenarios.js";
import { buildUi, machineScenarios } from "./data.js";

test("groups say why they are shared, from the topology", () => {
  const { data } = buildUi({ machine: "q35", noStories: true });
  const behindBridge = data.groups.find((g) => g.devices.includes("02:01.0"));
  assert.ok(behindBridge !== undefined);
  assert.ok(behindBridge.why.some((w) => /PCIe-to-PCI bridge 01:00\.0/.test(w)), behindBridge.why.join("; "));
  const multi = data.groups.find((g) => g.devices.includes("00:1f.2"));
  assert.ok(multi?.why.some((w) => /multifunction device 00:1f/.test(w)));
  for (const g of data.groups) assert.equal(g.why.length === 0, g.devices.length === 1, `group ${g.id}`);
});

test("a device's space: the buffer's host pages are the ones its IOVAs reach, one walk faults", () => {
  const { data, walk } = buildUi({ machine: "q35", noStories: true });
  const s = data.spaces.find((x) => x.bdf === "00:02.0");
  assert.ok(s !== undefined && s.mappings.result === "ok");
  assert.deepEqual([...s.mappings.ranges.map((r) => r.hpa)].sort(), [...s.bufferPages].sort());
  assert.equal(s.walks.filter((w) => w.result === "fault").length, 1);
  const first = s.mappings.ranges[0];
  assert.ok(first !== undefined);
  const w = walk("00:02.0", first.iova);
  assert.ok(typeof w !== "string" && w.result === "ok" && w.hpa === first.hpa);
  assert.match(String(walk("00:02.0", "xyz")), /not a hexadecimal/);
  assert.match(String(walk("09:00.0", "0x1000")), /no PCI function/);
});

test("the scenarios run on the machine as the CLI runs them; a machine without their devices says why", () => {
  const { scenarios, skipped } = machineScenarios("q35");
  assert.equal(skipped, null);
  assert.deepEqual(scenarios.map((s) => s.name), SCENARIO_NAMES);
  for (const s of scenarios) {
    assert.ok(s.runs.length >= 2, s.name);
    assert.ok(s.runs.some((r) => r.verdict.protected) && s.runs.some((r) => !r.verdict.protected), `${s.name}: one run protected, one not`);
    for (const r of s.runs) assert.ok(r.steps.every((st, i) => i === 0 || st.ns >= (r.steps[i - 1]?.ns ?? 0)), `${s.name}: steps in simulated time`);
  }
  const other = machineScenarios("two-units");
  assert.deepEqual(other.scenarios, []);
  assert.match(other.skipped ?? "", /machine 'two-units' does not fit the scenarios/);
  const { data } = buildUi({ machine: "q35", noStories: true });
  assert.deepEqual([data.scenarios, data.scenariosSkipped, data.host, data.absent], [[], null, null, null]);
  assert.ok(data.groups.every((g) => g.reserved.some((r) => r.type === "msi")), "every group lists the MSI window");
});
