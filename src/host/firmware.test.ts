import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFirmware } from "./firmware.js";
import { RootView } from "./views/root-view.js";
import { SnapshotView } from "./views/snapshot-view.js";
import type { SnapshotEntry } from "./views/snapshot-format.js";

function viewWith(entries: Record<string, SnapshotEntry>): SnapshotView {
  return new SnapshotView({ format: "iommu-kit-snapshot", version: 1, createdBy: "test", host: {}, entries });
}

describe("readFirmware", () => {
  it("summarises a DMAR: flags, address width, DRHDs with their IOAPICs, RMRRs", () => {
    const f = readFirmware(new RootView("test/fixtures/hosts/intel-ready"));
    assert.equal(f.table, "DMAR");
    assert.equal(f.decoded, true);
    assert.equal(f.oemId, "LENOVO");
    assert.equal(f.addressWidth, 39);
    assert.deepEqual([f.interruptRemapping, f.x2apicOptOut, f.dmaControlOptIn], [true, false, true]);
    assert.deepEqual(f.units.map((u) => [u.registerBase, u.includePciAll, u.ioapics]), [
      ["0xfed90000", false, 0],
      ["0xfed91000", true, 1],
    ]);
    assert.equal(f.reservedRegions > 0, true);
    assert.deepEqual(f.problems, []);
  });

  it("summarises an IVRS, keeping the highest IVHD type per IOMMU (as Linux does)", () => {
    const f = readFirmware(new RootView("test/fixtures/hosts/amd-iommu-on"));
    assert.equal(f.table, "IVRS");
    assert.equal(f.efrSupported, true);
    assert.equal(f.units.length, 1, "the 10h and 11h blocks describe one IOMMU");
    assert.equal(f.units[0]?.ivhdType, "0x11");
    assert.equal(f.units[0]?.deviceId, "00:00.2");
    assert.equal(f.units[0]?.efr, "0x58f77ef22294ade");
    assert.equal(f.units[0]?.ioapics, 2);
    assert.equal(f.interruptRemapping, null);
  });

  it("reports no table as table: null, without problems", () => {
    const f = readFirmware(viewWith({ "/sys/firmware/acpi/tables": { kind: "dir", names: [] } }));
    assert.equal(f.table, null);
    assert.deepEqual(f.problems, []);
  });

  it("turns undecodable and unreadable tables into problems", () => {
    const junk = readFirmware(viewWith({ "/sys/firmware/acpi/tables/DMAR": { kind: "file", base64: Buffer.from("DMAR\x08\x00\x00\x00").toString("base64") } }));
    assert.equal(junk.decoded, false);
    assert.deepEqual(junk.problems.map((p) => p.code), ["FIRMWARE_TABLE_INVALID"]);
    const denied = readFirmware(viewWith({
      "/sys/firmware/acpi/tables/IVRS": { kind: "unreadable", code: "PERMISSION_DENIED", message: "/sys/firmware/acpi/tables/IVRS: permission denied" },
    }));
    assert.equal(denied.table, "IVRS");
    assert.deepEqual(denied.problems.map((p) => p.code), ["FIRMWARE_TABLE_UNREADABLE"]);
    assert.match(denied.problems[0]?.hint ?? "", /run as root/);
  });
});
