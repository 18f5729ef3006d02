import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { analyzeCmdline, parseCmdline } from "./cmdline.js";

const codes = (raw: string, vendor: "intel" | "amd" | "unknown" = "unknown") =>
  analyzeCmdline(raw, vendor).problems.map((p) => `${p.severity}:${p.code}`);

describe("parseCmdline", () => {
  it("splits on whitespace, keeps quoted values, stops at --", () => {
    assert.deepEqual(parseCmdline('root=/dev/sda1 ro acpi_osi="Windows 2020" vfio-pci.ids=10de:2504 -- single'), [
      { name: "root", value: "/dev/sda1" },
      { name: "ro", value: null },
      { name: "acpi_osi", value: "Windows 2020" },
      { name: "vfio_pci.ids", value: "10de:2504" },
    ]);
  });
});

describe("analyzeCmdline", () => {
  it("reads intel_iommu=on iommu=pt as a request for the IOMMU in pass-through", () => {
    const a = analyzeCmdline("BOOT_IMAGE=/vmlinuz ro intel_iommu=on iommu=pt", "intel");
    assert.deepEqual(a.intelIommu, ["on"]);
    assert.equal(a.iommuRequested, true);
    assert.equal(a.iommuPassthrough, true);
    assert.deepEqual(a.problems, []);
  });

  it("lets the last intel_iommu on/off win", () => {
    assert.equal(analyzeCmdline("intel_iommu=on intel_iommu=off", "intel").iommuRequested, false);
    assert.equal(analyzeCmdline("intel_iommu=off,igfx_off intel_iommu=on", "intel").iommuRequested, true);
  });

  it("flags amd_iommu=on as invalid (a warning, not an error)", () => {
    const a = analyzeCmdline("quiet amd_iommu=on", "amd");
    assert.deepEqual(a.problems.map((p) => [p.code, p.severity]), [["AMD_IOMMU_ON_INVALID", "warning"]]);
    assert.match(a.problems[0]?.message ?? "", /Unknown option - 'on'/);
    assert.equal(a.iommuRequested, null, "amd_iommu=on changes nothing");
  });

  it("turns the IOMMU off with iommu=off or amd_iommu=off", () => {
    assert.equal(analyzeCmdline("iommu=off", "intel").iommuRequested, false);
    assert.equal(analyzeCmdline("amd_iommu=off", "amd").iommuRequested, false);
  });

  it("reads strictness from iommu.strict and the deprecated spellings", () => {
    assert.equal(analyzeCmdline("iommu.strict=0").iommuStrict, false);
    assert.equal(analyzeCmdline("iommu.strict=1").iommuStrict, true);
    assert.equal(analyzeCmdline("intel_iommu=on,strict").iommuStrict, true);
    assert.equal(analyzeCmdline("amd_iommu=fullflush").iommuStrict, true);
    assert.equal(analyzeCmdline("quiet").iommuStrict, null);
  });

  it("detects intremap=off and nointremap", () => {
    assert.equal(analyzeCmdline("intremap=off").intremapRequested, false);
    assert.equal(analyzeCmdline("nointremap").intremapRequested, false);
    assert.deepEqual(analyzeCmdline("nointremap").intremap, ["off"]);
    assert.equal(analyzeCmdline("intremap=nosid").intremapRequested, null);
  });

  it("warns about unknown options and parameters for the other vendor", () => {
    assert.deepEqual(codes("intel_iommu=pt", "intel"), ["warning:INVALID_KERNEL_PARAMETER"]);
    assert.deepEqual(codes("iommu=on", "amd"), ["warning:INVALID_KERNEL_PARAMETER"]);
    assert.deepEqual(codes("intel_iommu=on", "amd"), ["info:WRONG_VENDOR_PARAMETER"]);
    assert.deepEqual(codes("intel_iommu=on,sm_on iommu=pt intremap=no_x2apic_optout", "intel"), []);
  });

  it("explains what pcie_acs_override costs", () => {
    const a = analyzeCmdline("pcie_acs_override=downstream,multifunction");
    assert.equal(a.pcieAcsOverride, "downstream,multifunction");
    assert.equal(a.problems[0]?.code, "ACS_OVERRIDE");
    assert.match(a.problems[0]?.hint ?? "", /peer-to-peer/);
  });

  it("collects vfio-pci.ids and allow_unsafe_interrupts", () => {
    const a = analyzeCmdline("vfio-pci.ids=10DE:2504,10de:228e vfio_iommu_type1.allow_unsafe_interrupts=1");
    assert.deepEqual(a.vfioPciIds, ["10de:2504", "10de:228e"]);
    assert.equal(a.allowUnsafeInterrupts, true);
  });
});
