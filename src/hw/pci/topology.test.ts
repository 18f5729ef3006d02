import { test } from "node:test";
import assert from "node:assert/strict";
import { IommuError } from "../../core/errors.js";
import { configFacts } from "../../host/pci-config.js";
import { PciTopology, EXT_CAP_ACS_OFFSET, type PciFunctionInput } from "./topology.js";
import { PCI_ACS_CR, PCI_ACS_RR, PCI_ACS_SV, PCI_ACS_UF } from "../../core/pci-regs.js";

const LAB: PciFunctionInput[] = [
  { bdf: "00:00.0", type: "host-bridge" },
  { bdf: "00:02.0", type: "endpoint" },
  { bdf: "00:05.0", type: "root-port", secondaryBus: 1 },
  { bdf: "01:00.0", type: "pcie-pci-bridge", secondaryBus: 2 },
  { bdf: "02:01.0", type: "pci" },
  { bdf: "02:02.0", type: "pci-bridge", secondaryBus: 3 },
  { bdf: "03:04.0", type: "pci" },
  { bdf: "00:06.0", type: "pci" },
  { bdf: "00:06.1", type: "pci" },
];

function fails(inputs: PciFunctionInput[], message: RegExp): void {
  assert.throws(() => new PciTopology(inputs), (e: unknown) => e instanceof IommuError && e.code === "MACHINE_CONFIG" && message.test(e.message));
}

test("config space: header, PCIe port type and ACS read as the host doctor reads them", () => {
  const t = new PciTopology(LAB);
  const rp = t.byBdf("00:05.0")!;
  const facts = configFacts(rp.config);
  assert.equal(facts.headerType, 1);
  assert.equal(facts.pcieType, "root-port");
  assert.deepEqual(facts.acs?.capable, ["SV", "TB", "RR", "CR", "UF", "DT"]);
  assert.deepEqual(facts.acs?.enabled, [], "firmware leaves ACS control to the kernel");
  assert.equal(configFacts(t.byBdf("01:00.0")!.config).pcieType, "pcie-to-pci-bridge");
  assert.equal(configFacts(t.byBdf("00:02.0")!.config).pcieType, "rc-integrated-endpoint");
  assert.equal(configFacts(t.byBdf("02:01.0")!.config).pcieType, null);
  assert.equal(t.configRead(0x0519 >> 0 & 0xffff, 0, 4), 0xffffffff, "absent function reads all ones");
  assert.equal(t.configRead(rp.rid, 0x19, 1), 1, "secondary bus");
  assert.equal(t.configRead(rp.rid, 0x1a, 1), 3, "subordinate bus covers the buses below");
});

test("ACS control and command are writable, identity is not", () => {
  const t = new PciTopology(LAB);
  const rp = t.byBdf("00:05.0")!;
  const want = PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF;
  t.configWrite(rp.rid, EXT_CAP_ACS_OFFSET + 6, 2, want);
  t.configWrite(rp.rid, 0, 4, 0x12345678);
  assert.equal(t.configRead(rp.rid, EXT_CAP_ACS_OFFSET + 6, 2), want);
  assert.equal(t.configRead(rp.rid, 0, 2), 0x1b36);
  assert.deepEqual(configFacts(rp.config).acs?.enabled, ["SV", "RR", "CR", "UF"]);
});

test("multi-function slots are flagged in every function's header", () => {
  const t = new PciTopology(LAB);
  assert.equal(t.byBdf("00:06.0")!.multifunction, true);
  assert.equal(t.byBdf("00:06.1")!.multifunction, true);
  assert.equal(t.byBdf("00:02.0")!.multifunction, false);
  assert.equal(configFacts(t.byBdf("00:06.1")!.config).multifunction, true);
});

test("requester ids: PCIe-to-PCI bridges alias to (secondary bus, 00.0); conventional bridges to their own id", () => {
  const t = new PciTopology(LAB);
  const e1000 = t.byBdf("02:01.0")!;
  assert.deepEqual(t.dmaAliases(e1000).map((a) => [a.via.bdf, a.rid.toString(16)]), [["02:01.0", "208"], ["01:00.0", "200"]]);
  assert.equal(t.requesterIdAtRoot(e1000), 0x0200);
  const deep = t.byBdf("03:04.0")!;
  assert.deepEqual(t.dmaAliases(deep).map((a) => a.rid.toString(16)), ["320", "210", "200"]);
  assert.equal(t.requesterIdAtRoot(deep), 0x0200, "the topmost alias is what reaches the IOMMU");
  assert.equal(t.requesterIdAtRoot(t.byBdf("00:02.0")!), 0x0010, "root-bus devices use their own id");
});

test("enumeration order: a bus's functions, then each bridge's bus depth first", () => {
  const t = new PciTopology(LAB);
  assert.deepEqual(t.enumerationOrder().map((f) => f.bdf), [
    "00:00.0", "00:02.0", "00:05.0", "00:06.0", "00:06.1", "01:00.0", "02:01.0", "02:02.0", "03:04.0",
  ]);
});

test("bad topologies name the field", () => {
  fails([{ bdf: "00:02.0" }, { bdf: "00:03.0" }, { bdf: "00:04.0" }, { bdf: "00:02.0" }], /^devices\[3\]\.bdf: 00:02\.0 is used twice$/);
  fails([{ bdf: "01:00.0" }], /^devices\[0\]\.bdf: bus 01 is behind no bridge/);
  fails([{ bdf: "00:05.0", type: "root-port" }], /^devices\[0\]\.secondaryBus: a root-port needs/);
  fails([{ bdf: "00:05.0", type: "root-port", secondaryBus: 1 }, { bdf: "00:06.0", type: "root-port", secondaryBus: 1 }], /^devices\[1\]\.secondaryBus: bus 1 is already behind 00:05\.0/);
  fails([{ bdf: "00:05.0", type: "root-port", secondaryBus: 1 }, { bdf: "01:03.0" }], /^devices\[1\]\.bdf: a PCI Express link has one device/);
  fails([{ bdf: "00:06.1" }], /^devices\[0\]\.bdf: function 1 of a device without function 0/);
  fails([{ bdf: "00:06.0", type: "pci", acs: true }], /^devices\[0\]\.acs: a conventional PCI/);
  fails([{ bdf: "00:02.0", type: "gpu" }], /^devices\[0\]\.type: expected one of/);
  fails([{ bdf: "00:05.0", type: "root-port", secondaryBus: 1 }, { bdf: "01:00.0", type: "pcie-pci-bridge", secondaryBus: 2 }, { bdf: "02:01.0", type: "endpoint" }],
    /^devices\[2\]\.type: 02:01\.0 is behind pcie-pci-bridge 01:00\.0, a conventional PCI bus/);
  fails([{ bdf: "00:02.0", bars: [{ size: 100 }] }], /^devices\[0\]\.bars\[0\]\.size: 100 is not a power of two/);
  fails([
    { bdf: "00:05.0", type: "root-port", secondaryBus: 1 },
    { bdf: "01:00.0", type: "pcie-pci-bridge", secondaryBus: 3 },
    { bdf: "00:06.0", type: "root-port", secondaryBus: 2 },
    { bdf: "02:00.0", type: "pcie-pci-bridge", secondaryBus: 4 },
  ], /secondaryBus: bus 2 lies inside buses 1-3 behind 00:05\.0/);
});
