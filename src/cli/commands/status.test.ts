import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "../../../test/support/cli.js";
import { interruptsText, variant } from "../../../test/support/status-trees.js";

const INTEL = "test/fixtures/hosts/intel-ready";
const AMD = "test/fixtures/hosts/amd-iommu-on";

describe("iommu status", () => {
  it("prints a READY report and exits 0", async () => {
    const r = await cli(["status", "--root", INTEL]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Verdict: READY/m);
    assert.match(r.stdout, /dmar0 {2}0xfed90000 {2}IR yes, x2APIC yes, PT yes, QI yes, SAGAW 48-bit, MGAW 39/);
    assert.match(r.stdout, /No problems found\./);
  });

  it("shows every CAP/ECAP field with --verbose", async () => {
    const r = await cli(["status", "--root", INTEL, "-v"]);
    assert.match(r.stdout, /dmar0 ECAP 0xf050da\n/);
    assert.match(r.stdout, / {6}IR {11}1 {2}interrupt remapping: yes\n/);
  });

  it("JSON follows the contract", async () => {
    const r = await cli(["status", "--root", AMD, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.platform.vendor, "amd");
    assert.equal(j.platform.firmwareTable, "IVRS");
    assert.equal(j.platform.units.length, 1);
    assert.equal(j.kernel.iommuActive, true);
    assert.equal(j.kernel.defaultDomain, "DMA-FQ");
    assert.equal(j.kernel.dmaPolicy, "lazy");
    assert.equal(j.kernel.interruptRemapping, "enabled");
    assert.deepEqual(j.kernel.cmdline.amdIommu, ["on"]);
    assert.deepEqual(j.groups.map((g: { id: number }) => g.id), [0, 1, 7]);
    assert.deepEqual(j.problems.map((p: { code: string; severity: string }) => [p.code, p.severity]), [["AMD_IOMMU_ON_INVALID", "warning"]]);
    assert.equal(typeof j.problems[0].hint, "string");
    assert.equal(j.ready, true);
  });

  it("exits 1 with the blocking problem when not ready", async () => {
    const v = variant("intel-ready", { "proc/interrupts": interruptsText(""), "sys/devices/virtual/iommu/dmar0/intel-iommu/ecap": "f050d2\n" });
    try {
      const r = await cli(["status", "--root", v.root]);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /^Verdict: NOT READY: 1 problem blocks device assignment/m);
      assert.match(r.stdout, /error {4}INTERRUPT_REMAPPING_DISABLED: interrupt remapping is off: IOMMU unit dmar0 cannot remap/);
      assert.match(r.stdout, /hint: /);
    } finally {
      v.cleanup();
    }
  });

  it("writes Prometheus metrics atomically with -o and exits 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "iommu-prom-"));
    try {
      const out = join(dir, "iommu.prom");
      writeFileSync(out, "old");
      const r = await cli(["status", "--root", INTEL, "--prometheus", "-o", out]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "");
      assert.match(readFileSync(out, "utf8"), /^# HELP iommu_ready /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects conflicting options", async () => {
    assert.equal((await cli(["status", "--root", INTEL, "--json", "--prometheus"])).code, 2);
    const r = await cli(["status", "--root", INTEL, "-o", "x.prom"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--output is for --prometheus/);
  });

  it("fails with PERMISSION_DENIED and exit 2 when a file it needs is unreadable", async () => {
    const dir = mkdtempSync(join(tmpdir(), "iommu-snap-"));
    try {
      const f = join(dir, "denied.json");
      const entries = {
        "/sys/bus/pci/devices": { kind: "dir", names: [] },
        "/proc/cmdline": { kind: "unreadable", code: "PERMISSION_DENIED", message: "/proc/cmdline: permission denied", hint: "run as root (sudo) to read this file" },
      };
      writeFileSync(f, JSON.stringify({ format: "iommu-kit-snapshot", version: 1, createdBy: "test", host: {}, entries }));
      const r = await cli(["status", "--snapshot", f]);
      assert.equal(r.code, 2);
      assert.equal(r.stderr, "iommu: error: /proc/cmdline: permission denied [PERMISSION_DENIED]\nhint: run as root (sudo) to read this file\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives clear one-line errors: missing root, snapshot from a newer version", async () => {
    const missing = await cli(["status", "--root", "/no/such/root"]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr.split("\n")[0], "iommu: error: --root /no/such/root: no such directory [ROOT_NOT_FOUND]");
    const dir = mkdtempSync(join(tmpdir(), "iommu-snap-"));
    try {
      const f = join(dir, "new.json");
      writeFileSync(f, JSON.stringify({ format: "iommu-kit-snapshot", version: 99, createdBy: "future", host: {}, entries: {} }));
      const r = await cli(["status", "--snapshot", f]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /snapshot format version 99 is newer than this iommu-kit reads \(up to 2\) \[SNAPSHOT_VERSION\]/);
      assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, "no stack trace");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
