import { test } from "node:test";
import assert from "node:assert/strict";
import { Machine } from "../hw/machine.js";
import { DEBIAN_6_1_CONFIG } from "../os/cmdline.js";
import { Kernel } from "../os/kernel.js";
import { kernelSysfsView } from "../os/sysfs.js";
import { analyzeCmdline } from "./cmdline.js";
import { gatherStatus } from "./status.js";
import { readKernelUnits } from "./status-kernel.js";
import { judgeScalableMode, smOption } from "./status-sm.js";

test("the doctor's inferred VT-d mode matches what the simulated kernel did, for each ECAP, command line and build default", () => {
  const cases: [string, string, boolean][] = [
    ["q35-sm", "intel_iommu=on", true],
    ["q35-sm", "intel_iommu=on,sm_off", true],
    ["q35-sm", "intel_iommu=on", false],
    ["q35-sm", "intel_iommu=sm_off intel_iommu=sm_on", false],
    ["q35", "intel_iommu=on,sm_on", true],
  ];
  for (const [machine, cmdline, defaultOn] of cases) {
    const k = Kernel.boot(Machine.load(machine), { cmdline, config: { ...DEBIAN_6_1_CONFIG, scalableModeDefaultOn: defaultOn } });
    const r = gatherStatus(kernelSysfsView(k));
    const j = r.kernel.scalableMode!;
    const what = `${machine} "${cmdline}" default ${defaultOn ? "on" : "off"}`;
    assert.equal(j.mode, k.driver.units[0]!.sm ? "scalable" : "legacy", what);
    assert.equal(j.inferred, true);
  }
});

test("without a readable build config and without sm_on / sm_off the doctor says unknown; ECAP without SMTS is legacy", () => {
  const view = kernelSysfsView(Kernel.boot(Machine.load("q35-sm"), { cmdline: "intel_iommu=on" }));
  const units = readKernelUnits(view);
  const unknown = judgeScalableMode(units, analyzeCmdline("intel_iommu=on", "intel"), null)!;
  assert.equal(unknown.mode, "unknown");
  assert.match(unknown.why, /build config is not readable/);
  assert.equal(judgeScalableMode(units, analyzeCmdline("intel_iommu=on,sm_on", "intel"), null)!.mode, "scalable", "sm_on decides without the config");
  const legacyHw = readKernelUnits(kernelSysfsView(Kernel.boot(Machine.load("q35"), { cmdline: "intel_iommu=sm_on" })));
  assert.equal(judgeScalableMode(legacyHw, analyzeCmdline("intel_iommu=sm_on", "intel"), null)!.mode, "legacy");
  assert.equal(judgeScalableMode([], analyzeCmdline("", "intel"), null), null);
  assert.equal(smOption(["on", "sm_on", "sm_off"]), false, "the last one wins");
  assert.equal(smOption(["on"]), null);
});
