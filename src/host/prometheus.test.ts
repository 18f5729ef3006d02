import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { renderPrometheus } from "./prometheus.js";
import { gatherStatus } from "./status.js";
import { RootView } from "./views/root-view.js";
import { interruptsText, variant } from "../../test/support/status-trees.js";

const PROMTOOL = "/usr/bin/promtool";
const haveProm = existsSync(PROMTOOL);

function samples(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

function notReadyReport() {
  const v = variant("intel-ready", {
    "proc/interrupts": interruptsText(""),
    "proc/cmdline": 'intel_iommu=on,bogus iommu=on acpi_osi="Windows \\"2020\\""\n',
  });
  try {
    return gatherStatus(new RootView(v.root));
  } finally {
    v.cleanup();
  }
}

describe("renderPrometheus", () => {
  it("exports the verdict, state and problem counts", () => {
    const m = samples(renderPrometheus(gatherStatus(new RootView("test/fixtures/hosts/intel-ready"))));
    assert.equal(m.get("iommu_ready"), 1);
    assert.equal(m.get("iommu_active"), 1);
    assert.equal(m.get('iommu_interrupt_remapping{state="enabled"}'), 1);
    assert.equal(m.get('iommu_interrupt_remapping{state="disabled"}'), 0);
    assert.equal(m.get("iommu_groups"), 5);
    assert.equal(m.get("iommu_units"), 2);
    assert.equal(m.get('iommu_groups_by_domain_type{type="identity"}'), 5);
    assert.equal(m.get('iommu_problems{severity="error"}'), 0);
    assert.equal(m.get('iommu_firmware_table{table="DMAR"}'), 1);
  });

  it("counts repeated problem codes in one series", () => {
    const m = samples(renderPrometheus(notReadyReport()));
    assert.equal(m.get("iommu_ready"), 0);
    assert.equal(m.get('iommu_problem{code="INVALID_KERNEL_PARAMETER",severity="warning"}'), 2);
    assert.equal(m.get('iommu_problem{code="INTERRUPT_REMAPPING_DISABLED",severity="error"}'), 1);
  });

  it("passes promtool check metrics", () => {
    assert.ok(haveProm, `${PROMTOOL} is missing: apt-get install -y prometheus (or bash scripts/test-tools.sh as root)`);
    for (const report of [gatherStatus(new RootView("test/fixtures/hosts/amd-iommu-on")), notReadyReport()]) {
      const r = spawnSync(PROMTOOL, ["check", "metrics"], { input: renderPrometheus(report), encoding: "utf8" });
      assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
    }
  });
});
