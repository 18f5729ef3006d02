import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PciIds, deviceLabel, loadPciIds } from "./pciids.js";

const DB = `# comment
10de  NVIDIA Corporation
\t2504  GA106 [GeForce RTX 3060 Lite Hash Rate]
\t\t1458 4096  GA106 board
# a comment inside the block
\t228e  GA106 High Definition Audio Controller
10df  Emulex Corporation
\t2504  Not NVIDIA
8086  Intel Corporation
\t7ab8  Alder Lake-S PCH PCI Express Root Port #1

C 03  Display controller
\t00  VGA compatible controller
\t\t00  VGA controller
\t02  3D controller
C 04  Multimedia controller
\t03  Audio device
`;

describe("PciIds", () => {
  const ids = new PciIds(DB, "test");

  it("names vendors and devices, not confusing other vendors' device ids", () => {
    assert.equal(ids.vendorName(0x10de), "NVIDIA Corporation");
    assert.equal(ids.deviceName(0x10de, 0x2504), "GA106 [GeForce RTX 3060 Lite Hash Rate]");
    assert.equal(ids.deviceName(0x10de, 0x228e), "GA106 High Definition Audio Controller", "past subsystem and comment lines");
    assert.equal(ids.deviceName(0x10df, 0x2504), "Not NVIDIA");
    assert.equal(ids.deviceName(0x10de, 0x1458), null, "a subsystem id is not a device");
    assert.equal(ids.deviceName(0x10de, 0x7ab8), null, "a later vendor's device is not this vendor's");
    assert.equal(ids.vendorName(0x1234), null);
  });

  it("names classes by sub-class, falling back to the base class", () => {
    assert.equal(ids.className(0x030000), "VGA compatible controller");
    assert.equal(ids.className(0x030200), "3D controller");
    assert.equal(ids.className(0x038000), "Display controller");
    assert.equal(ids.className(0x040300), "Audio device");
    assert.equal(ids.className(0xff0000), null);
    assert.equal(ids.baseClassName(0x04), "Multimedia controller");
  });

  it("labels like lspci and degrades to ids", () => {
    assert.equal(deviceLabel(ids, 0x10de, 0x2504).label, "NVIDIA Corporation GA106 [GeForce RTX 3060 Lite Hash Rate]");
    assert.equal(deviceLabel(ids, 0x10de, 0x9999).label, "NVIDIA Corporation Device 9999");
    assert.equal(deviceLabel(null, 0x10de, 0x2504).label, "Vendor 10de Device 2504");
  });

  it("answers null when the database file is missing", () => {
    assert.equal(loadPciIds("/no/such/pci.ids"), null);
  });

  it("reads the system database (Debian pci.ids, installed by scripts/test-tools.sh)", () => {
    const sys = loadPciIds("/usr/share/misc/pci.ids");
    assert.equal(sys?.vendorName(0x8086), "Intel Corporation");
    assert.equal(sys?.className(0x020000), "Ethernet controller");
  });
});
