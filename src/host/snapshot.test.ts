import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "../../test/support/cli.js";
import { planBootargs } from "./bootargs.js";
import { checkDevice } from "./check.js";
import { gatherGroups } from "./groups.js";
import { findHostUses } from "./host-use.js";
import { listPciDevices } from "./pci.js";
import { DMESG_PATH, recordSnapshot, snapshotDmesg } from "./snapshot.js";
import { gatherStatus } from "./status.js";
import { RootView } from "./views/root-view.js";
import { SnapshotView } from "./views/snapshot-view.js";

const INTEL = "test/fixtures/hosts/intel-ready";

const DMESG = [
  "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz intel_iommu=on",
  "[    0.010000] ACPI: DMAR 0x000000007A0F8000 000088 (v01 LENOVO TP-N3X)",
  "[    0.020000] usb 1-1: new high-speed USB device",
  "[    0.030000] DMAR-IR: Enabled IRQ remapping in x2apic mode",
  "[    0.040000] audit: type=2000 audit(1.0:1): state=initialized",
  "",
].join("\n");

describe("recordSnapshot", () => {
  const root = new RootView(INTEL);
  const snap = new SnapshotView(recordSnapshot(root, { createdBy: "test", dmesg: DMESG }));

  it("answers status, groups, bootargs and host-use reads exactly as the tree does", () => {
    assert.deepEqual({ ...gatherStatus(snap), source: "" }, { ...gatherStatus(root), source: "" });
    assert.deepEqual({ ...gatherGroups(snap, { ids: null }), source: "" }, { ...gatherGroups(root, { ids: null }), source: "" });
    assert.deepEqual(planBootargs(snap), planBootargs(root));
    assert.deepEqual(findHostUses(snap, listPciDevices(snap)), findHostUses(root, listPciDevices(root)));
    for (const d of ["0000:01:00.0", "0000:02:00.0"]) {
      assert.deepEqual({ ...checkDevice(snap, d), source: "" }, { ...checkDevice(root, d), source: "" });
    }
  });

  it("records host facts and bootloader files", () => {
    assert.deepEqual(snap.snapshot.host, { hostname: "fixture", kernel: "6.1.0-18-amd64", source: `root ${INTEL}` });
    assert.match(snap.readText("/etc/default/grub") ?? "", /GRUB_CMDLINE_LINUX_DEFAULT="quiet intel_iommu=on iommu=pt"/);
    assert.equal(snap.snapshot.entries["/etc/kernel/cmdline"]?.kind, "absent");
    assert.equal(snap.snapshot.version, 2);
  });

  it("keeps only IOMMU-related kernel log lines", () => {
    assert.deepEqual(snapshotDmesg(snap), [
      "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz intel_iommu=on",
      "[    0.010000] ACPI: DMAR 0x000000007A0F8000 000088 (v01 LENOVO TP-N3X)",
      "[    0.030000] DMAR-IR: Enabled IRQ remapping in x2apic mode",
    ]);
    const without = recordSnapshot(root, { createdBy: "test", dmesg: null });
    assert.equal(without.entries[DMESG_PATH], undefined);
  });

  it("records what a failing reader read before it failed, and reports the failure", () => {
    const failures: string[] = [];
    const s = recordSnapshot(root, {
      createdBy: "test",
      readers: [{ name: "half", read: (v) => { v.readText("/proc/cmdline"); throw new Error("boom"); } }],
      onReaderError: (name, e) => failures.push(`${name}: ${(e as Error).message}`),
    });
    assert.deepEqual(failures, ["half: boom"]);
    assert.equal(s.entries["/proc/cmdline"]?.kind, "file");
  });
});

describe("iommu snapshot (CLI)", () => {
  it("writes a file the other commands answer from identically", async () => {
    const dir = mkdtempSync(join(tmpdir(), "iommu-snapcli-"));
    try {
      const f = join(dir, "host.json");
      const w = await cli(["snapshot", "--root", INTEL, "-o", f]);
      assert.equal(w.code, 0, w.stderr);
      assert.match(w.stderr, /wrote .*host\.json: \d+ entries/);
      assert.equal(JSON.parse(readFileSync(f, "utf8")).format, "iommu-kit-snapshot");
      for (const cmd of [["status", "--json"], ["groups", "--json"]]) {
        const a = await cli([...cmd, "--root", INTEL]);
        const b = await cli([...cmd, "--snapshot", f]);
        assert.equal(b.code, a.code);
        assert.deepEqual({ ...JSON.parse(b.stdout), source: "" }, { ...JSON.parse(a.stdout), source: "" });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("requires -o", async () => {
    const r = await cli(["snapshot", "--root", INTEL]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing -o FILE/);
  });
});
