import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RootView } from "./views/root-view.js";
import { RecordingView } from "./views/recording-view.js";
import { SnapshotView } from "./views/snapshot-view.js";
import { formatClass, formatIds, listIommuGroups, listPciDevices, parseReservedRegions, readPciDevice } from "./pci.js";
import { configFacts } from "./pci-config.js";

const intel = new RootView("test/fixtures/hosts/intel-ready");
const amd = new RootView("test/fixtures/hosts/amd-iommu-on");

describe("listPciDevices", () => {
  it("enumerates every device with ids, class, driver, group and unit", () => {
    const devs = listPciDevices(intel);
    assert.deepEqual(
      devs.map((d) => d.address),
      ["0000:00:00.0", "0000:00:02.0", "0000:00:1c.0", "0000:00:1d.0", "0000:01:00.0", "0000:01:00.1", "0000:02:00.0"],
    );
    const gpu = devs.find((d) => d.address === "0000:01:00.0");
    assert.ok(gpu);
    assert.equal(formatIds(gpu), "10de:2504");
    assert.equal(formatClass(gpu.classCode), "0300");
    assert.equal(gpu.revision, 0xa1);
    assert.equal(gpu.subsystemVendorId, 0x1458);
    assert.equal(gpu.driver, "vfio-pci");
    assert.equal(gpu.iommuGroup, 12);
    assert.equal(gpu.iommuUnit, "dmar1");
    assert.deepEqual(gpu.resetMethods, ["flr", "bus"]);
    assert.equal(gpu.driverOverride, null);
    assert.equal(gpu.bootVga, false);
    assert.equal(gpu.isBridge, false);
    assert.equal(gpu.parent, "0000:00:1c.0");
    assert.equal(gpu.sysfsPath, "/sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.0");
    assert.equal(gpu.pcieType, "endpoint");
    assert.equal(gpu.acsKnown, true);
    assert.equal(gpu.acs, null, "the endpoint has no ACS capability");
  });

  it("marks bridges and decodes their ACS controls", () => {
    const rp = readPciDevice(intel, "0000:00:1c.0");
    assert.ok(rp);
    assert.equal(rp.isBridge, true);
    assert.equal(rp.pcieType, "root-port");
    assert.equal(rp.parent, null);
    assert.deepEqual(rp.acs, { offset: 0x100, capable: ["SV", "TB", "RR", "CR", "UF"], enabled: ["SV", "RR", "CR", "UF"], isolating: true });
    const off = readPciDevice(intel, "0000:00:1d.0");
    assert.equal(off?.acs?.isolating, false, "ACS present but disabled does not isolate");
  });

  it("knows ACS is unknown when only the 256-byte header is readable", () => {
    const host = readPciDevice(intel, "0000:00:00.0");
    assert.equal(host?.acsKnown, false);
    assert.equal(host?.driver, null);
    assert.equal(host?.resetMethods, null, "no reset_method attribute");
  });

  it("reads boot_vga and the integrated GPU's unit", () => {
    const igpu = readPciDevice(intel, "0000:00:02.0");
    assert.equal(igpu?.bootVga, true);
    assert.equal(igpu?.iommuUnit, "dmar0");
    assert.equal(igpu?.pcieType, "rc-integrated-endpoint");
  });

  it("returns null for an absent device and [] for a host without PCI", () => {
    assert.equal(readPciDevice(intel, "0000:09:00.0"), null);
    const empty = new SnapshotView({ format: "iommu-kit-snapshot", version: 1, createdBy: "t", host: {}, entries: {} });
    assert.deepEqual(listPciDevices(empty), []);
    assert.deepEqual(listIommuGroups(empty), []);
  });

  it("gives the same answer through a recorded snapshot", () => {
    const rec = new RecordingView(intel);
    const live = listPciDevices(rec);
    listIommuGroups(rec);
    const snap = new SnapshotView(rec.toSnapshot("t", {}));
    assert.deepEqual(listPciDevices(snap), live);
    assert.deepEqual(listIommuGroups(snap), listIommuGroups(intel));
  });
});

describe("listIommuGroups", () => {
  it("sorts numerically with gaps and reads type, devices and reserved regions", () => {
    const groups = listIommuGroups(intel);
    assert.deepEqual(groups.map((g) => g.id), [0, 1, 2, 3, 12]);
    const g12 = groups.at(-1);
    assert.deepEqual(g12?.devices, ["0000:01:00.0", "0000:01:00.1"]);
    assert.equal(g12?.type, "identity");
    assert.deepEqual(g12?.reservedRegions, [{ start: 0xfee00000n, end: 0xfeefffffn, type: "msi" }]);
    assert.deepEqual(listIommuGroups(amd).map((g) => [g.id, g.type]), [[0, "DMA-FQ"], [1, "DMA-FQ"], [7, "DMA-FQ"]]);
  });

  it("parses reserved_regions and skips malformed lines", () => {
    assert.deepEqual(
      parseReservedRegions("0x00000000fee00000 0x00000000feefffff msi\ngarbage\n0x000000fd00000000 0x000000ffffffffff reserved\n"),
      [
        { start: 0xfee00000n, end: 0xfeefffffn, type: "msi" },
        { start: 0xfd00000000n, end: 0xffffffffffn, type: "reserved" },
      ],
    );
  });
});

describe("configFacts", () => {
  it("never throws on short or looping config space", () => {
    assert.equal(configFacts(null).headerType, null);
    assert.equal(configFacts(new Uint8Array(4)).headerType, null);
    const loop = new Uint8Array(4096);
    loop[0x06] = 0x10;
    loop[0x34] = 0x40;
    loop[0x40] = 0x01;
    loop[0x41] = 0x40; // points at itself
    loop[0x100] = 0x01; // ext cap id 1, next = 0x100 (itself)
    loop[0x103] = 0x10;
    const f = configFacts(loop);
    assert.equal(f.pcieType, null);
    assert.equal(f.acs, null);
  });
});
