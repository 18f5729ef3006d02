import { test } from "node:test";
import assert from "node:assert/strict";
import { Machine } from "../hw/machine.js";
import { machinePreset } from "../hw/machine-presets.js";
import { PCI_EXT_CAP_ID_ACS, PCI_EXT_CAP_ID_PASID } from "../core/pci-regs.js";
import { pciEnablePasid, pciMaxPasids, pciPasidEnabled, scanPci } from "./pci.js";

const ACCEL = { bdf: "00:08.0", type: "endpoint", id: "8086:0b25", class: "0x088000", name: "accel", driver: "accel", msi: "msix", bars: [{ size: "64K" }] };

function machine(extra: Record<string, unknown>): Machine {
  const base = machinePreset("q35")!;
  return new Machine({ ...base, devices: [...(base.devices as object[]), { ...ACCEL, ...extra }] });
}

test("a PASID capability is found in extended space, after ACS when both are there; its width and enable are read and set as Linux does", () => {
  for (const acs of [false, true]) {
    const m = machine({ pasidBits: 20, acs });
    const dev = scanPci(m).find((d) => d.name === "0000:00:08.0")!;
    assert.ok(dev.pasidCap >= 0x100);
    assert.equal(m.configRead(dev.rid, dev.pasidCap, 2), PCI_EXT_CAP_ID_PASID);
    if (acs) {
      assert.equal(dev.acsCap, 0x100);
      assert.equal(m.configRead(dev.rid, dev.acsCap, 2), PCI_EXT_CAP_ID_ACS);
      assert.ok(dev.pasidCap > dev.acsCap, "the ACS header links on to the PASID capability");
    }
    assert.equal(pciMaxPasids(m, dev), 2 ** 20);
    assert.equal(pciPasidEnabled(m, dev), false);
    assert.ok(pciEnablePasid(m, dev));
    assert.equal(pciPasidEnabled(m, dev), true);
  }
  const none = machine({});
  const d = scanPci(none).find((x) => x.name === "0000:00:08.0")!;
  assert.equal(d.pasidCap, 0);
  assert.equal(pciMaxPasids(none, d), 0);
  assert.equal(pciEnablePasid(none, d), false);
});

test("pasidBits is checked: 0..20, endpoints only", () => {
  assert.throws(() => machine({ pasidBits: 21 }), /pasidBits/);
  assert.throws(() => machine({ pasidBits: 8, type: "pci" }), /PASID capability needs a PCI Express endpoint/);
});
