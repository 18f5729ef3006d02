/**
 * AMD-Vi machines: configuration checks, and the IVRS their firmware carries — for the lab's machine, the bytes
 * QEMU 7.2 built (recorded from the guest in test/fixtures/hosts/qemu-e-amd-on), and for every AMD preset what
 * ACPICA's disassembler reads in it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { IommuError } from "../core/errors.js";
import { decodeIvrs, type IvhdBlock, type IvrsTable } from "../acpi/ivrs.js";
import { disassembleMany, parseIaslFields, requireIasl } from "../../test/support/iasl.js";
import { Machine } from "./machine.js";
import { machinePreset } from "./machine-presets.js";
import type { MachineConfigInput } from "./machine-config.js";

const QEMU_IVRS = new URL("../../test/fixtures/hosts/qemu-e-amd-on/sys/firmware/acpi/tables/IVRS", import.meta.url);
const AMD_PRESETS = ["q35-amd", "q35-amd-lab", "amd-server"];

function fails(input: MachineConfigInput, message: RegExp): void {
  assert.throws(() => new Machine(input), (e: unknown) => e instanceof IommuError && e.code === "MACHINE_CONFIG" && message.test(e.message), String(message));
}

const amd = (unit: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): MachineConfigInput => ({
  ...machinePreset("q35-amd")!,
  iommus: [{ type: "amd-vi", ...unit }],
  ...extra,
});

const ivrsOf = (m: Machine): IvrsTable => decodeIvrs(m.firmware.acpi.IVRS!);
const ivhds = (t: IvrsTable): IvhdBlock[] => t.blocks.filter((b): b is IvhdBlock => b.type === "IVHD");

test("q35-amd-lab: the IVRS is byte for byte the one QEMU 7.2 built for the lab's machine", () => {
  const m = Machine.load("q35-amd-lab");
  const qemu = new Uint8Array(readFileSync(QEMU_IVRS));
  assert.equal(m.firmware.acpi.DMAR, undefined, "an AMD machine has no DMAR");
  assert.deepEqual(Buffer.from(m.firmware.acpi.IVRS!).toString("hex"), Buffer.from(qemu).toString("hex"));
});

test("an AMD unit with interrupt remapping off: QEMU's IVRS without the IOAPIC special entry", () => {
  const on = ivhds(ivrsOf(new Machine(amd())))[0]!;
  const off = ivhds(ivrsOf(new Machine(amd({ interruptRemapping: false }))))[0]!;
  assert.deepEqual(on.entries.filter((e) => e.type === "special").map((e) => e.type === "special" && [e.handle, e.sourceId, e.varietyName]), [[0, "00:14.0", "ioapic"]]);
  assert.deepEqual(off.entries.filter((e) => e.type === "special"), []);
  assert.equal(off.entries.length, on.entries.length - 1);
});

test("every AMD preset's IVRS reads the same in ACPICA's disassembler", () => {
  requireIasl();
  const tables = AMD_PRESETS.map((n) => Machine.load(n).firmware.acpi.IVRS!);
  const dsl = disassembleMany(tables);
  AMD_PRESETS.forEach((name, i) => {
    const t = decodeIvrs(tables[i]!);
    const fields = parseIaslFields(dsl[i]!);
    assert.ok(fields.length > 20, `${name}: iasl printed ${fields.length} fields`);
    const at = (offset: number, field: string): string => fields.find((f) => f.offset === offset && f.name === field)?.value ?? "(missing)";
    assert.equal(BigInt("0x" + at(36, "Virtualization Info")), BigInt(t.ivInfo.raw), name);
    for (const b of t.blocks) {
      assert.equal(parseInt(at(b.offset, "Subtable Type"), 16), b.typeCode, `${name} block at ${b.offset}`);
      assert.equal(parseInt(at(b.offset + 2, "Length"), 16), b.length, `${name} block at ${b.offset}`);
      if (b.type === "IVHD") {
        assert.equal(BigInt("0x" + at(b.offset + 8, "Base Address")), BigInt(b.baseAddress), name);
        for (const e of b.entries) assert.equal(parseInt(at(e.offset, "Entry Type"), 16), e.typeCode, `${name} entry at ${e.offset}`);
      } else if (b.type === "IVMD") {
        assert.equal(BigInt("0x" + at(b.offset + 16, "Start Address")), BigInt(b.start), name);
        assert.equal(BigInt("0x" + at(b.offset + 24, "Memory Length")), BigInt(b.memoryLength), name);
      }
    }
  });
});

test("amd-server: three units with their own functions and buses, an alias range, IVMD unity, two IOAPICs and an HPET", () => {
  const m = Machine.load("amd-server");
  const t = ivrsOf(m);
  const blocks = ivhds(t);
  assert.deepEqual(blocks.map((b) => [b.typeCode, b.deviceId, b.baseAddress]), [
    [0x10, "00:00.2", "0xfed80000"], [0x11, "00:00.2", "0xfed80000"],
    [0x10, "00:03.2", "0xfed84000"], [0x11, "00:03.2", "0xfed84000"],
    [0x10, "00:07.2", "0xfed88000"], [0x11, "00:07.2", "0xfed88000"],
  ]);
  assert.equal(t.ivInfo.efrSupported, true, "IVHD 11h carries the EFR image");
  const first = blocks[0]!.entries;
  assert.deepEqual(first.filter((e) => e.type === "alias-range-start").map((e) => e.type === "alias-range-start" && [e.deviceId, e.aliasId]), [["03:00.0", "03:00.0"]]);
  assert.deepEqual(first.filter((e) => e.type === "special").map((e) => e.type === "special" && `${e.varietyName} ${e.handle} ${e.sourceId}`), ["ioapic 0 00:14.0", "ioapic 1 00:00.1", "hpet 0 00:14.0"]);
  const unity = t.blocks.filter((b) => b.type === "IVMD");
  assert.deepEqual(unity.map((b) => b.type === "IVMD" && [b.typeCode, b.deviceId, b.flags.unity, b.start, b.memoryLength]), [[0x21, "05:00.0", true, "0x7c000000", "0x100000"]]);
  assert.ok(m.firmware.e820.some((e) => e.type === "reserved" && e.base === 0x7c000000 && e.end === 0x7c0fffff), "the unity range is reserved in e820");
});

test("AMD unit fields set the EFR, the IVHD types, aliases, exclusion and special entries", () => {
  const m = new Machine(amd({
    levels: 4, irMode: "legacy", ivhdTypes: ["0x10", "0x40"], bdf: "00:08.0", base: "0xfed84000",
    aliases: [{ first: "00:1f.3", alias: "00:1f.0" }], exclusion: { base: "0x7e000000", size: "1M" },
    special: [{ kind: "ioapic", id: 0, bdf: "00:14.0" }, { kind: "hpet", id: 0, bdf: "00:14.0" }],
  }));
  const u = m.config.iommus[0]!;
  assert.ok(u.type === "amd-vi");
  assert.equal(u.efr, 0x29d3n & ~(3n << 10n) & ~(1n << 7n), "HATS 0 (4 levels), GASup clear");
  const t = ivrsOf(m);
  const [b10, b40] = ivhds(t);
  assert.deepEqual([b10!.typeCode, b40!.typeCode, b10!.deviceId, b40!.efr], [0x10, 0x40, "00:08.0", "0x2153"]);
  assert.equal(b10!.features!.gaSup, false);
  assert.ok(b10!.entries.some((e) => e.type === "alias-select" && e.deviceId === "00:1f.3" && e.aliasId === "00:1f.0"));
  assert.deepEqual(t.blocks.filter((b) => b.type === "IVMD").map((b) => b.type === "IVMD" && [b.typeCode, b.flags.exclusionRange, b.start]), [[0x20, true, "0x7e000000"]]);
  assert.ok(m.firmware.e820.some((e) => e.type === "reserved" && e.base === 0x7e000000));
});

test("AMD configuration mistakes are one line naming the field", () => {
  fails(amd({ type: "amd-iv" }), /^iommus\[0\]\.type: expected "vtd" or "amd-vi", got "amd-iv" \(did you mean 'amd-vi'\?\)$/);
  fails({ ...machinePreset("q35")!, iommus: [{ scope: ["00:02.0"] }, { type: "amd-vi" }] }, /^iommus\[1\]\.type: "amd-vi" cannot be mixed with "vtd" units \(iommus\[0\]\) in one machine$/);
  fails(amd({ efrr: "0x1" }), /^iommus\[0\]\.efrr: unknown key \(did you mean 'efr'\?\)$/);
  fails(amd({ cachingMode: true }), /^iommus\[0\]\.cachingMode: unknown key/);
  fails({ ...machinePreset("q35")!, iommus: [{ efr: "0x1" }] }, /^iommus\[0\]\.efr: is a key of AMD-Vi units, and this unit is VT-d \(add "type": "amd-vi"\)$/);
  fails(amd({ efr: "29d3" }), /^iommus\[0\]\.efr: expected a 64-bit value as "0x…"/);
  fails(amd({ levels: 3 }), /^iommus\[0\]\.levels: expected 4, 5 or 6/);
  fails(amd({ efr: "0x29d3", levels: 4 }), /^iommus\[0\]\.levels: 4 disagrees with efr, whose HATS field says 6 levels$/);
  fails(amd({ efr: "0x2953", irMode: "ga" }), /^iommus\[0\]\.irMode: "ga" disagrees with efr, whose GASup bit is 0$/);
  fails(amd({ irMode: "vapic" }), /^iommus\[0\]\.irMode: expected "legacy" or "ga"/);
  fails(amd({ ivhdTypes: [0x10, 0x12] }), /^iommus\[0\]\.ivhdTypes\[1\]: expected 0x10, 0x11 or 0x40, got 18$/);
  fails(amd({ ivhdTypes: [0x11, "0x11"] }), /^iommus\[0\]\.ivhdTypes\[1\]: type 0x11 is listed twice$/);
  fails(amd({ base: "0xfed81000" }), /^iommus\[0\]\.base: 0xfed81000 is not 16 KiB aligned/);
  fails(amd({ bdf: "00:02.0" }), /^iommus\[0\]\.bdf: 00:02\.0 is already a device of the machine$/);
  fails(amd({ bdf: "00:09.2" }), /^iommus\[0\]\.bdf: function 2 of a device without function 0 is never found by enumeration$/);
  fails(amd({ bdf: "zz" }), /^iommus\[0\]\.bdf: 'zz' is not a PCI address$/);
  fails(amd({ aliases: [{ first: "03:00.0", last: "02:00.0", alias: "00:14.4" }] }), /^iommus\[0\]\.aliases\[0\]\.last: 02:00\.0 comes before 03:00\.0$/);
  fails(amd({ aliases: [{ from: "03:00.0", alias: "00:14.4" }] }), /^iommus\[0\]\.aliases\[0\]\.from: unknown key/);
  fails(amd({ special: [{ kind: "ioapic", id: 5, bdf: "00:14.0" }] }), /^iommus\[0\]\.special\[0\]\.id: no IOAPIC has id 5 \(ioapics: 0\)$/);
  fails(amd({ special: [{ kind: "hpet", id: 0, bdf: "00:14.0" }, { kind: "hpet", id: 0, bdf: "00:14.1" }] }), /^iommus\[0\]\.special\[1\]: HPET 0 is already named in iommus\[0\]\.special\[0\]$/);
  fails(amd({ special: [{ kind: "pic", id: 0, bdf: "00:14.0" }] }), /^iommus\[0\]\.special\[0\]\.kind: expected "ioapic" or "hpet"/);
  fails(amd({ exclusion: { base: "0x1000", size: "100" } }), /^iommus\[0\]\.exclusion: base and size must be non-zero multiples of 4 KiB$/);
  fails(amd({ exclusion: { base: "0x100000000000", size: "1M" } }), /^iommus\[0\]\.exclusion: 0x100000000000\+0x100000 is not inside RAM$/);
  fails(amd({}, { ioapics: [{ id: 0 }, { id: 1 }] }), /^iommus\[0\]\.special: the machine has 2 IOAPICs: name each one's DeviceID/);
  fails(amd({}, { unity: [], rmrrs: [] }), /^unity: is another name for rmrrs: give one of them$/);
  fails(amd({}, { unity: [{ base: "0x7c000000", size: "1M", devices: ["00:09.0"] }] }), /^unity\[0\]\.devices\[0\]: 00:09\.0 is not among the devices$/);
  fails(
    { ...machinePreset("q35-amd")!, iommus: [{ type: "amd-vi" }, { type: "amd-vi", base: "0xfed80000", scope: ["00:02.0"] }] },
    /^iommus\[1\]\.base: 0xfed80000 overlaps iommus\[0\] at 0xfed80000$/,
  );
});
