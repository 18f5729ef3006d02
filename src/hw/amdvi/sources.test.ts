import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { PhysicalMemory } from "../../core/memory.js";
import { decodeIvrs, dataSettingOf, type IvhdBlock, type IvhdEntry } from "../../acpi/ivrs.js";
import { encodeFields } from "../../spec/amdvi/fields.js";
import { IRTE128_FIELDS } from "../../spec/amdvi/irte.js";
import { CTRL_GA_EN } from "../../spec/amdvi/registers.js";
import { enable, writeDte, writeDwords } from "./builder.js";
import { deviceIdOf, QEMU_SOURCE_IDS, sourceIdsFromIvhd, type SourceIds } from "./sources.js";
import { AmdViUnit } from "./unit.js";

/** QEMU 7.2's IVRS as a Linux 6.1 guest read it (q35, amd-iommu at 00:01.0, the AMD-Vi oracle's devices). */
const QEMU_IVRS =
  "495652537800000001e3424f43485320425850432020202001000000425850430100000000280000000000000000000010d14800" +
  "080040000000d8fe0000000000000000440000000200000002080000021000000218000002200000028000000288000002f80000" +
  "02fa000002fb00004800000000a00001";
/** A real AMD host's IVRS (test/fixtures/hosts/amd-iommu-on): IVHD 10h and 11h with the same entries. */
const HOST_IVRS = "test/fixtures/hosts/amd-iommu-on/sys/firmware/acpi/tables/IVRS";

function ivhds(bytes: Uint8Array): IvhdBlock[] {
  return decodeIvrs(bytes).blocks.filter((b): b is IvhdBlock => b.type === "IVHD");
}

function hostIds(): SourceIds {
  const [first] = ivhds(new Uint8Array(readFileSync(HOST_IVRS)));
  assert.ok(first);
  return sourceIdsFromIvhd(first);
}

function entry(typeCode: number, type: string, deviceId: string, extra: object = {}): IvhdEntry {
  return { typeCode, type, offset: 0, length: typeCode >= 0x40 ? 8 : 4, deviceId, dataSetting: dataSettingOf(0), ...extra } as IvhdEntry;
}

test("5.2.2.2 QEMU 7.2's IVHD names one special device, IOAPIC 0 at 00:14.0 — QEMU_SOURCE_IDS", () => {
  const [block] = ivhds(Buffer.from(QEMU_IVRS, "hex"));
  assert.ok(block);
  const ids = sourceIdsFromIvhd(block);
  assert.deepEqual([...ids.ioapic], [[0, 0xa0]]);
  assert.deepEqual([ids.hpet.size, ids.alias.size], [0, 0]);
  assert.deepEqual([...ids.ioapic], [...QEMU_SOURCE_IDS.ioapic]);
});

test("5.2.2.2 a real host's IVHD: IOAPIC 7 at 00:14.0, IOAPIC 8 at 00:00.1, HPET 0 at 00:14.0, ff:00.0–ff:1f.7 alias 00:14.4", () => {
  const ids = hostIds();
  assert.deepEqual([...ids.ioapic], [[7, 0xa0], [8, 0x01]]);
  assert.deepEqual([...ids.hpet], [[0, 0xa0]]);
  assert.equal(ids.alias.size, 256);
  assert.equal(deviceIdOf(ids, { kind: "pci", rid: 0xff08 }), 0xa4);
  assert.equal(deviceIdOf(ids, { kind: "pci", rid: 0x0010 }), 0x10, "a function without an alias uses its own id");
  assert.equal(deviceIdOf(ids, { kind: "ioapic", id: 9 }), null);
  const both = ivhds(new Uint8Array(readFileSync(HOST_IVRS))).map((b) => sourceIdsFromIvhd(b));
  assert.deepEqual([...(both[1]?.ioapic ?? [])], [...ids.ioapic], "the 11h block describes the same wiring");
});

test("5.2.2.2 42h alias select; a plain 03h…04h range adds no alias; a 04h without a start adds nothing", () => {
  const ids = sourceIdsFromIvhd({
    entries: [
      entry(0x42, "alias-select", "02:01.0", { aliasId: "01:00.0" }),
      entry(0x03, "range-start", "03:00.0"),
      entry(0x04, "range-end", "03:1f.7"),
      entry(0x04, "range-end", "04:1f.7"),
      entry(0x48, "special", "00:00.0", { handle: 2, sourceId: "00:14.7", variety: 3, varietyName: "reserved" }),
    ],
  });
  assert.deepEqual([...ids.alias], [[0x0208, 0x0100]]);
  assert.deepEqual([ids.ioapic.size, ids.hpet.size], [0, 0], "variety 3 is reserved");
});

const IRT_A = 0x40_0000;
const IRT_B = 0x41_0000;

/** Two interrupt tables with one GA IRTE each at index 2: vector 0x31 in A, 0x32 in B. */
function twoTables(): { mem: PhysicalMemory } {
  const mem = new PhysicalMemory();
  for (const [irt, vector] of [[IRT_A, 0x31], [IRT_B, 0x32]] as const) {
    writeDwords(mem, irt + 2 * 16, encodeFields(4, IRTE128_FIELDS, { RemapEn: 1, "Destination[23:0]": 1, Vector: vector }));
  }
  return { mem };
}

function irDte(mem: PhysicalMemory, devid: number, irt: number): void {
  writeDte(mem, devid, { V: 1, IV: 1, IntCtl: 2, IntTabLen: 4, IntTableRootPtr: BigInt(irt >>> 6) });
}

test("2.2.5 an IOAPIC's interrupts are looked up in the DTE of its IVHD special-device entry", () => {
  const { mem } = twoTables();
  irDte(mem, 0xa0, IRT_A); // 00:14.0: southbridge IOAPIC 7 and HPET 0
  irDte(mem, 0x01, IRT_B); // 00:00.1: northbridge IOAPIC 8
  const unit = new AmdViUnit(mem, { sources: hostIds() });
  enable(unit, CTRL_GA_EN);
  const sb = unit.remapInterrupt({ kind: "ioapic", id: 7 }, 0xfee0_0000, 2);
  const nb = unit.remapInterrupt({ kind: "ioapic", id: 8 }, 0xfee0_0000, 2);
  const hpet = unit.remapInterrupt({ kind: "hpet", id: 0 }, 0xfee0_0000, 2);
  assert.deepEqual([sb.deviceId, sb.kind, sb.data & 0xff], [0xa0, "remapped", 0x31]);
  assert.deepEqual([nb.deviceId, nb.kind, nb.data & 0xff], [0x01, "remapped", 0x32]);
  assert.deepEqual([hpet.deviceId, hpet.data & 0xff], [0xa0, 0x31], "the HPET shares the southbridge's DeviceID and table");
  assert.throws(() => unit.remapInterrupt({ kind: "ioapic", id: 0 }, 0xfee0_0000, 2), /IOAPIC 0 has no DeviceID/);
});

test("2.2.5 a function behind an alias is remapped through the alias's DTE (Linux installs the table there too)", () => {
  const { mem } = twoTables();
  irDte(mem, 0xa4, IRT_A); // 00:14.4, the PCI bridge the real host's IVHD names for bus ff
  irDte(mem, 0xff08, IRT_B); // what the function's own DTE would say
  const unit = new AmdViUnit(mem, { sources: hostIds() });
  enable(unit, CTRL_GA_EN, 0x1ff);
  const r = unit.remapInterrupt({ kind: "pci", rid: 0xff08 }, 0xfee0_0000, 2);
  assert.deepEqual([r.deviceId, r.data & 0xff], [0xa4, 0x31]);
});

test("QEMU 7.2: before software programs the unit, IOAPIC 0's interrupt passes unchanged; with RemapEn=0 it faults", () => {
  // The lab's first traced remap: IOAPIC 00:14.0, index 0, before any AMD-Vi register access.
  const mem = new PhysicalMemory();
  irDte(mem, 0xa0, IRT_A); // IRTE 0 left zero: RemapEn=0, as the dump at the pause shows
  const unit = new AmdViUnit(mem);
  const early = unit.remapInterrupt({ kind: "ioapic", id: 0 }, 0xfee0_0000, 0);
  assert.deepEqual([early.kind, early.address, early.data, early.deviceId], ["passed", 0xfee0_0000, 0, 0xa0]);
  enable(unit, CTRL_GA_EN);
  const late = unit.remapInterrupt({ kind: "ioapic", id: 0 }, 0xfee0_0000, 0);
  assert.deepEqual([late.kind, late.irteAddr], ["fault", IRT_A]);
});
