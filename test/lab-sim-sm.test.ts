// The simulated kernel in scalable mode against Linux 6.1 without QEMU: test/fixtures/sim-sm/*.json hold what the
// lab read from the real kernel's tables in the VT-d oracle's scalable-mode dumps (lab/sim-sm.ts: root entry
// halves, scalable-mode context entries, PASID directory and RID_PASID entries of every function, RTADDR.TTM,
// GSTS, the IOMMU log lines). Re-record with `node --import tsx lab/run.ts sim-sm --update-fixtures`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { compareFacts, simFacts, type SmFixture } from "../lab/sim-sm.js";

const DIR = "test/fixtures/sim-sm";
const fixtures = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();

test("the scalable-mode fixtures cover both address widths, every function with a PASID entry", () => {
  const all = fixtures.map((f) => JSON.parse(readFileSync(join(DIR, f), "utf8")) as SmFixture);
  assert.deepEqual([...new Set(all.map((x) => x.awBits))].sort(), [39, 48]);
  assert.ok(all.some((x) => !x.cmdline.includes("sm_on")), "one run without sm_on: Debian's build default");
  for (const x of all) {
    assert.match(x.recorded.qemuArgs, /x-scalable-mode=on/);
    assert.equal(x.real.registers["RTADDR.TTM"], "1", "Linux ran the unit in scalable mode");
    assert.ok(Object.values(x.real.devices).every((d) => d["pasid.P"] === "1"));
  }
});

for (const f of fixtures) {
  test(`sim-sm ${f}: the simulated kernel writes the tables Linux 6.1 wrote`, () => {
    const x = JSON.parse(readFileSync(join(DIR, f), "utf8")) as SmFixture;
    const checks = compareFacts(x.real, simFacts(x.names, x.awBits, x.cmdline));
    const diffs = checks.flatMap((c) => c.differences.map((d) => `${c.name}: ${d}`));
    assert.deepEqual(diffs, []);
    assert.ok(checks.reduce((n, c) => n + c.facts, 0) > 200);
    // The comparison can fail: the same machine in legacy mode differs in TTM and in every function's entries.
    const legacy = compareFacts(x.real, simFacts(x.names, x.awBits, `${x.cmdline} intel_iommu=sm_off`));
    assert.ok(legacy.filter((c) => c.differences.length > 0).length > x.names.length);
  });
}
