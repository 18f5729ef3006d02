import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeDmar } from "../acpi/dmar.js";
import { IommuError } from "../core/errors.js";
import { Machine } from "./machine.js";
import { machinePreset, PRESET_NAMES } from "./machine-presets.js";
import { iommuKind, type MachineConfigInput } from "./machine-config.js";

function fails(input: MachineConfigInput, message: RegExp): void {
  assert.throws(() => new Machine(input), (e: unknown) => e instanceof IommuError && e.code === "MACHINE_CONFIG" && message.test(e.message), String(message));
}

test("every preset builds, and its DMAR decodes with the ACPI codec", () => {
  for (const name of PRESET_NAMES) {
    const m = Machine.load(name);
    const dmar = m.firmware.acpi.DMAR;
    if (iommuKind(m.config) === "amd-vi") {
      assert.ok(dmar === undefined && m.firmware.acpi.IVRS !== undefined, `${name}: an IVRS and no DMAR`);
      continue;
    }
    if (m.config.iommus.length === 0) {
      assert.equal(dmar, undefined, name);
      continue;
    }
    const t = decodeDmar(dmar!);
    assert.equal(t.checksumValid, true, name);
    const drhds = t.structures.filter((s) => s.type === "DRHD");
    assert.equal(drhds.length, m.config.iommus.length, name);
    // INCLUDE_PCI_ALL comes last (VT-d spec 8.3).
    const all = drhds.findIndex((d) => d.type === "DRHD" && d.flags.includePciAll);
    assert.ok(all === -1 || all === drhds.length - 1, name);
  }
});

test("default q35: one unit at 0xfed90000 including all devices, with the IOAPIC, 2 GiB below and 4 GiB above 4 GiB", () => {
  const m = Machine.load("q35");
  const t = decodeDmar(m.firmware.acpi.DMAR!);
  assert.equal(t.hostAddressWidth, 39);
  assert.equal(t.flags.interruptRemapping, true);
  const d = t.structures[0]!;
  assert.ok(d.type === "DRHD");
  assert.equal(d.registerBase, "0xfed90000");
  assert.equal(d.flags.includePciAll, true);
  assert.deepEqual(d.scopes.map((s) => [s.type, s.enumerationId, s.startBus]), [["ioapic", 0, 0xff]]);
  const usable = m.firmware.e820.filter((e) => e.type === "usable");
  assert.equal(usable.at(-1)!.base, 2 ** 32);
  assert.equal(usable.at(-1)!.end, 2 ** 32 + 4 * 2 ** 30 - 1);
  assert.equal(m.ramTop, 2 ** 32 + 4 * 2 ** 30);
});

test("q35-lab: the DMAR lists bus 0 the way QEMU does (flags 0, the root port as a bridge scope)", () => {
  const m = Machine.load("q35-lab");
  const d = decodeDmar(m.firmware.acpi.DMAR!).structures[0]!;
  assert.ok(d.type === "DRHD");
  assert.equal(d.flags.raw, 0);
  assert.deepEqual(
    d.scopes.map((s) => `${s.type} ${s.path.map((p) => `${p.device.toString(16)}.${p.function}`).join("/")}`),
    ["ioapic 0.0", "endpoint 0.0", "endpoint 2.0", "endpoint 3.0", "endpoint 4.0", "bridge 5.0", "endpoint 6.0", "endpoint 6.1",
      "endpoint 10.0", "endpoint 11.0", "endpoint 1f.0", "endpoint 1f.2", "endpoint 1f.3"],
  );
  assert.equal(m.firmware.acpi.DMAR!.length, 168, "same length as QEMU's table for this machine");
});

test("devices DMA through the unit with their requester id at the root complex", () => {
  const m = Machine.load("q35");
  const behind = m.device("02:01.0");
  assert.equal(behind.requesterId, 0x0200);
  // Translation is off after reset: DMA goes straight to memory.
  const r = behind.write(0x1000, new Uint8Array([1, 2, 3]));
  assert.equal(r.ok, true);
  assert.deepEqual([...m.memory.read(0x1000, 3)], [1, 2, 3]);
  assert.equal(m.units[0]!.unit.stats().translations, 1);
  // BARs got addresses in the PCI hole and are in configuration space.
  const e1000e = m.topology.byBdf("00:02.0")!;
  assert.ok((e1000e.bars[0]!.base ?? 0) >= 0x80000000);
  assert.equal(m.configRead(e1000e.rid, 0x10, 4), e1000e.bars[0]!.base);
});

test("bad machine configurations name the field", () => {
  const base = machinePreset("q35")!;
  fails({ ...base, devices: [{ bdf: "00:02.0" }, { bdf: "00:03.0" }, { bdf: "00:04.0" }, { bdf: "00:02.0" }] }, /^devices\[3\]\.bdf: 00:02\.0 is used twice$/);
  fails({ ram: { size: "16M" } }, /^ram\.size: 16 MiB is less than the .* MiB the kernel and the remapping tables \(dmar0\) need$/);
  fails({ ram: { size: "8M" }, iommus: [] }, /^ram\.size: 8 MiB is less than the 16 MiB the kernel needs$/);
  fails({ devices: [{ bdf: "00:02.0", bars: [{ base: "0xfe000000", size: "64K" }] }, { bdf: "00:03.0", bars: [{ base: "0xfe008000", size: "4K" }] }] },
    /^devices\[1\]\.bars\[0\]\.base: 0xfe008000-0xfe008fff overlaps devices\[0\]\.bars\[0\] \(00:02\.0\)$/);
  fails({ devices: [{ bdf: "00:02.0", bars: [{ base: "0xfed90000", size: "4K" }] }] }, /^devices\[0\]\.bars\[0\]\.base: .* overlaps iommus\[0\] \(dmar0\)$/);
  fails({ ram: { size: "2G" }, devices: [{ bdf: "00:02.0", bars: [{ base: "0x40000000", size: "4K" }] }] }, /overlaps RAM$/);
  fails({ devices: [{ bdf: "00:02.0" }, { bdf: "00:03.0" }], iommus: [{ scope: ["00:02.0"] }] }, /^devices\[1\]\.bdf: 00:03\.0 is outside every remapping unit's scope$/);
  fails({ devices: [{ bdf: "00:02.0" }], iommus: [{ scope: ["00:09.0"] }] }, /^iommus\[0\]\.scope\[0\]: 00:09\.0 is not among the devices$/);
  fails({ iommus: [{ scope: "all" }, { scope: "all" }] }, /^iommus\[1\]\.scope: only one unit may include all devices$/);
  fails({ iommus: [{ base: "0xfed90800" }] }, /^iommus\[0\]\.base: 0xfed90800 is not 4 KiB aligned$/);
  fails({ rmrrs: [{ base: "0xc0000000", size: "1M", devices: ["00:02.0"] }], devices: [{ bdf: "00:02.0" }] }, /^rmrrs\[0\]\.base: .* is not inside RAM$/);
  fails({ cpus: { apicIds: [0, 1, 1] } }, /^cpus\.apicIds\[2\]: APIC id 1 is used twice$/);
  fails({ ram: { size: "lots" } }, /^ram\.size: 'lots' is not a size/);
});

test("a device behind a bridge listed in a unit's scope is covered", () => {
  const m = new Machine({
    devices: [{ bdf: "00:05.0", type: "root-port", secondaryBus: 1 }, { bdf: "01:00.0" }],
    iommus: [{ scope: ["00:05.0"] }],
  });
  assert.equal(m.platform.unitFor(0x0100)?.name, "dmar0");
  const d = decodeDmar(m.firmware.acpi.DMAR!).structures[0]!;
  assert.ok(d.type === "DRHD");
  assert.deepEqual(d.scopes.map((s) => s.type), ["ioapic", "bridge"]);
});
