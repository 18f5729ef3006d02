import { test } from "node:test";
import assert from "node:assert/strict";
import { buildUi } from "./data.js";

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
