import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AcpiError } from "./bytes.js";
import {
  decodeDmar, encodeDmar, renderDmarText,
  type DmarDeviceScope, type DmarScopeType, type DmarStructure, type DmarTable,
} from "./dmar.js";
import { tableChecksumSum } from "./sdt.js";
import { corpusTables, parseIaslFields } from "../../test/support/iasl.js";

// ---- builders for hand-made tables ------------------------------------------------------------------------------

function table(structures: DmarStructure[], extra: Partial<DmarTable> = {}): DmarTable {
  return {
    signature: "DMAR", length: 0, revision: 1, checksum: 0, checksumValid: true,
    oemId: "IOMMUK", oemTableId: "TESTTBL1", oemRevision: 7, creatorId: "TEST", creatorRevision: 0x20240101,
    hostAddressWidth: 39,
    flags: { raw: 0, interruptRemapping: true, x2apicOptOut: false, dmaControlOptIn: false },
    structures,
    ...extra,
  };
}

const CODES: Record<DmarScopeType, number> = {
  endpoint: 1, bridge: 2, ioapic: 3, hpet: 4, "acpi-namespace": 5, unknown: 0,
};

function scope(type: DmarScopeType, startBus: number, path: [number, number][], more: Partial<DmarDeviceScope> = {}): DmarDeviceScope {
  return {
    type, typeCode: CODES[type], offset: 0, length: 0, enumerationId: 0, startBus,
    path: path.map(([device, fn]) => ({ device, function: fn })), ...more,
  };
}

function drhd(registerBase: string, scopes: DmarDeviceScope[], includePciAll = false, segment = 0): DmarStructure {
  return {
    type: "DRHD", typeCode: 0, offset: 0, length: 0, flags: { raw: 0, includePciAll },
    size: { raw: 0, bytes: "0x1000" }, segment, registerBase, scopes,
  };
}

function expectAcpiError(fn: () => unknown, code: string, message?: RegExp): AcpiError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof AcpiError, `expected AcpiError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected AcpiError ${code}, nothing was thrown`);
}

/** Decodes, re-encodes with the stored checksum, and checks the bytes come back identical. */
function roundTrip(bytes: Uint8Array): DmarTable {
  const t = decodeDmar(bytes);
  const again = encodeDmar(t, { keepChecksum: true });
  assert.deepEqual(again, bytes.subarray(0, t.length));
  return t;
}

const u16 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);

/** A minimal table (header + one 24-byte DRHD with one endpoint scope) as raw bytes to corrupt. */
function sampleBytes(): Uint8Array {
  return encodeDmar(table([drhd("0xfed90000", [scope("endpoint", 0, [[2, 0]])])]));
}

function withLength(bytes: Uint8Array, at: number, length: number, size: 1 | 2 = 2): Uint8Array {
  const b = bytes.slice();
  b[at] = length & 0xff;
  if (size === 2) b[at + 1] = length >> 8;
  return b;
}

// ---- hand-built tables ----------------------------------------------------------------------------------------

describe("DMAR header (VT-d spec §8.1)", () => {
  it("stores host address width minus one and decodes the three flags", () => {
    const t = table([], {
      hostAddressWidth: 46,
      flags: { raw: 0, interruptRemapping: true, x2apicOptOut: false, dmaControlOptIn: true },
    });
    const b = encodeDmar(t);
    assert.equal(b.length, 48);
    assert.equal(String.fromCharCode(...b.subarray(0, 4)), "DMAR");
    assert.equal(b[36], 45);
    assert.equal(b[37], 0b101);
    assert.equal(tableChecksumSum(b), 0);
    const d = roundTrip(b);
    assert.equal(d.hostAddressWidth, 46);
    assert.deepEqual(d.flags, { raw: 5, interruptRemapping: true, x2apicOptOut: false, dmaControlOptIn: true });
    assert.equal(d.length, 48);
    assert.equal(d.checksumValid, true);
    assert.equal(d.oemTableId, "TESTTBL1");
    assert.equal(d.creatorRevision, 0x20240101);
    assert.deepEqual(d.structures, []);
    assert.equal(d.reserved, undefined);
  });

  it("x2APIC opt-out is bit 1; a named flag overrides raw, unknown raw bits are kept", () => {
    const b = encodeDmar(table([], { flags: { raw: 0x81, interruptRemapping: false, x2apicOptOut: true, dmaControlOptIn: false } }));
    assert.equal(b[37], 0x82);
    assert.deepEqual(decodeDmar(b).flags, { raw: 0x82, interruptRemapping: false, x2apicOptOut: true, dmaControlOptIn: false });
  });

  it("keeps nonzero reserved bytes and trailing bytes too short for a structure", () => {
    const b = encodeDmar(table([], { reserved: "00000000000000000001", trailing: "abcd" }));
    assert.equal(b.length, 50);
    assert.equal(b[47], 1);
    assert.deepEqual([...b.subarray(48)], [0xab, 0xcd]);
    const d = roundTrip(b);
    assert.equal(d.reserved, "00000000000000000001");
    assert.equal(d.trailing, "abcd");
  });

  it("keepChecksum writes the stored checksum byte; otherwise the checksum is computed", () => {
    const t = table([]);
    const good = encodeDmar(t);
    const stored = (good[9]! + 1) & 0xff;
    const bad = encodeDmar({ ...t, checksum: stored }, { keepChecksum: true });
    assert.equal(bad[9], stored);
    const d = decodeDmar(bad);
    assert.equal(d.checksumValid, false);
    assert.equal(d.checksum, stored);
    assert.equal(encodeDmar(d)[9], good[9]);
  });
});

describe("DRHD (VT-d spec §8.3)", () => {
  it("decodes INCLUDE_PCI_ALL, the size field as 2^(size+12) bytes, segment and a 64-bit register base", () => {
    const unit = drhd("0xfffffffffffff000", [], true, 0x12);
    if (unit.type === "DRHD") unit.size = { raw: 2, bytes: "ignored on encode" };
    const b = encodeDmar(table([unit]));
    assert.equal(b.length, 64);
    assert.equal(u16(b, 48), 0);
    assert.equal(u16(b, 50), 16);
    assert.equal(b[52], 1);
    assert.equal(b[53], 2);
    assert.equal(u16(b, 54), 0x12);
    assert.deepEqual([...b.subarray(56, 64)], [0x00, 0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    const [s] = roundTrip(b).structures;
    assert.deepEqual(s, {
      type: "DRHD", typeCode: 0, offset: 48, length: 16, flags: { raw: 1, includePciAll: true },
      size: { raw: 2, bytes: "0x4000" }, segment: 0x12, registerBase: "0xfffffffffffff000", scopes: [],
    });
  });
});

describe("device scopes (VT-d spec §8.3.1)", () => {
  it("decodes every scope type, multi-level paths, an odd trailing byte, flags and reserved bytes", () => {
    const scopes = [
      scope("endpoint", 0, [[2, 0]]),
      scope("bridge", 0, [[0x1c, 0], [0, 0]]),
      scope("ioapic", 0xf0, [[0x1f, 0]], { enumerationId: 2 }),
      scope("hpet", 0, [[0x1f, 0]], { enumerationId: 0 }),
      scope("acpi-namespace", 0, [[0x15, 1]], { enumerationId: 3 }),
      scope("unknown", 3, [[1, 2]], { typeCode: 9, reserved: 7, pathTrailingByte: 0xee }),
      scope("endpoint", 0, [[0x10, 0]], {
        flags: {
          raw: 0x18, reqWoPasidNestedNotAllowed: false, reqWoPasidPwsnpNotAllowed: false,
          reqWoPasidPgsnpNotAllowed: false, atcHardened: true, atcRequired: true,
        },
      }),
    ];
    const b = encodeDmar(table([drhd("0xfed91000", scopes, true)]));
    // 8 + 10 + 8 + 8 + 8 + 9 + 8 bytes of scopes after the 16-byte DRHD fixed part
    assert.equal(u16(b, 50), 16 + 59);
    assert.deepEqual([...b.subarray(72, 82)], [2, 10, 0, 0, 0, 0, 0x1c, 0, 0, 0]);
    const unknownAt = 48 + 16 + 8 + 10 + 8 + 8 + 8;
    assert.deepEqual([...b.subarray(unknownAt, unknownAt + 9)], [9, 9, 0, 7, 0, 3, 1, 2, 0xee]);
    const d = roundTrip(b);
    const s = d.structures[0];
    assert.ok(s?.type === "DRHD");
    assert.deepEqual(s.scopes.map((x) => [x.type, x.typeCode, x.offset, x.length]), [
      ["endpoint", 1, 64, 8], ["bridge", 2, 72, 10], ["ioapic", 3, 82, 8], ["hpet", 4, 90, 8],
      ["acpi-namespace", 5, 98, 8], ["unknown", 9, 106, 9], ["endpoint", 1, 115, 8],
    ]);
    assert.deepEqual(s.scopes[1]?.path, [{ device: 0x1c, function: 0 }, { device: 0, function: 0 }]);
    assert.equal(s.scopes[2]?.enumerationId, 2);
    assert.equal(s.scopes[2]?.startBus, 0xf0);
    assert.equal(s.scopes[5]?.reserved, 7);
    assert.equal(s.scopes[5]?.pathTrailingByte, 0xee);
    assert.equal(s.scopes[0]?.flags, undefined);
    assert.equal(s.scopes[6]?.flags?.raw, 0x18);
    assert.equal(s.scopes[6]?.flags?.atcHardened, true);
    assert.equal(s.scopes[6]?.flags?.atcRequired, true);
    assert.equal(s.scopes[6]?.flags?.reqWoPasidNestedNotAllowed, false);
  });
});

describe("RMRR, ATSR, RHSA, ANDD, SATC, SIDP (VT-d spec §8.4–§8.9)", () => {
  const structures: DmarStructure[] = [
    {
      type: "RMRR", typeCode: 1, offset: 0, length: 0, segment: 1, base: "0x76000000", limit: "0x7affffff",
      scopes: [scope("endpoint", 0, [[0x14, 0]])],
    },
    { type: "ATSR", typeCode: 2, offset: 0, length: 0, flags: { raw: 0, allPorts: true }, segment: 0, scopes: [] },
    {
      type: "ATSR", typeCode: 2, offset: 0, length: 0, flags: { raw: 0, allPorts: false }, segment: 0,
      scopes: [scope("bridge", 0, [[1, 0]]), scope("bridge", 0, [[3, 0]])],
    },
    { type: "RHSA", typeCode: 3, offset: 0, length: 0, registerBase: "0xdfffc000", proximityDomain: 1 },
    { type: "ANDD", typeCode: 4, offset: 0, length: 0, deviceNumber: 1, name: "\\_SB.PCI0.I2C0" },
    { type: "ANDD", typeCode: 4, offset: 0, length: 0, deviceNumber: 2, name: "\\_SB.UAR1", nameTail: "000000" },
    {
      type: "SATC", typeCode: 5, offset: 0, length: 0, flags: { raw: 0, atcRequired: true }, segment: 0,
      scopes: [scope("endpoint", 0, [[2, 0]])],
    },
    {
      type: "SIDP", typeCode: 6, offset: 0, length: 0, segment: 0,
      scopes: [scope("endpoint", 0, [[0xb, 0]], { flags: {
        raw: 0x1f, reqWoPasidNestedNotAllowed: true, reqWoPasidPwsnpNotAllowed: true,
        reqWoPasidPgsnpNotAllowed: true, atcHardened: true, atcRequired: true,
      } })],
    },
  ];
  const b = encodeDmar(table(structures));
  const d = roundTrip(b);

  it("lays every structure out with computed offsets and lengths", () => {
    assert.deepEqual(d.structures.map((s) => [s.type, s.typeCode, s.offset, s.length]), [
      ["RMRR", 1, 48, 32], ["ATSR", 2, 80, 8], ["ATSR", 2, 88, 24], ["RHSA", 3, 112, 20], ["ANDD", 4, 132, 23],
      ["ANDD", 4, 155, 20], ["SATC", 5, 175, 16], ["SIDP", 6, 191, 16],
    ]);
    assert.equal(d.length, 207);
    assert.equal(b.length, 207);
  });

  it("RMRR (§8.4): segment, base and inclusive limit", () => {
    const s = d.structures[0];
    assert.ok(s?.type === "RMRR");
    assert.equal(s.segment, 1);
    assert.equal(s.base, "0x76000000");
    assert.equal(s.limit, "0x7affffff");
    assert.equal(s.reserved, undefined);
    assert.deepEqual([...b.subarray(64, 72)], [0xff, 0xff, 0xff, 0x7a, 0, 0, 0, 0]);
  });

  it("ATSR (§8.5): ALL_PORTS flag and root-port scopes", () => {
    const [a, c] = [d.structures[1], d.structures[2]];
    assert.ok(a?.type === "ATSR" && c?.type === "ATSR");
    assert.deepEqual(a.flags, { raw: 1, allPorts: true });
    assert.deepEqual(c.flags, { raw: 0, allPorts: false });
    assert.deepEqual(c.scopes.map((x) => x.path[0]?.device), [1, 3]);
  });

  it("RHSA (§8.6): register base and proximity domain", () => {
    const s = d.structures[3];
    assert.ok(s?.type === "RHSA");
    assert.equal(s.registerBase, "0xdfffc000");
    assert.equal(s.proximityDomain, 1);
    assert.equal(s.extra, undefined);
  });

  it("ANDD (§8.7): device number and NUL-terminated name; padding after the NUL is kept", () => {
    const [a, c] = [d.structures[4], d.structures[5]];
    assert.ok(a?.type === "ANDD" && c?.type === "ANDD");
    assert.equal(a.deviceNumber, 1);
    assert.equal(a.name, "\\_SB.PCI0.I2C0");
    assert.equal(a.nameTail, undefined);
    assert.equal(b[132 + 8 + 14], 0);
    assert.equal(c.name, "\\_SB.UAR1");
    assert.equal(c.nameTail, "000000");
  });

  it("SATC (§8.8): ATC_REQUIRED flag and segment", () => {
    const s = d.structures[6];
    assert.ok(s?.type === "SATC");
    assert.deepEqual(s.flags, { raw: 1, atcRequired: true });
    assert.equal(s.scopes[0]?.path[0]?.device, 2);
  });

  it("SIDP (§8.9): segment and scopes whose flags byte is set", () => {
    const s = d.structures[7];
    assert.ok(s?.type === "SIDP");
    assert.equal(s.segment, 0);
    assert.equal(s.scopes[0]?.flags?.raw, 0x1f);
    assert.equal(b[191 + 8 + 2], 0x1f);
  });

  it("text rendering names every structure and scope type", () => {
    const text = renderDmarText(d);
    for (const name of [
      "Reserved Memory Region", "Root Port ATS Capability", "Remapping Hardware Static Affinity",
      "ACPI Namespace Device Declaration", "SoC Integrated Address Translation Cache",
      "SoC Integrated Device Property", "PCI Endpoint Device", "PCI Bridge Device",
    ]) assert.ok(text.includes(`[${name}]`), name);
    assert.match(text, /End Address \(limit\) : 000000007AFFFFFF \[80 MiB region\]/);
    assert.match(text, /\[054h 0084 {3}1\] +Flags : 01 \[ALL_PORTS/);
    assert.match(text, /Device Name : "\\_SB\.PCI0\.I2C0"/);
  });
});

describe("unknown and irregular content round-trips", () => {
  it("an unknown structure type keeps its body", () => {
    const b = encodeDmar(table([
      { type: "unknown", typeCode: 0x20, offset: 0, length: 0, data: "0102030405" },
      drhd("0xfed90000", [], true),
    ]));
    assert.deepEqual([...b.subarray(48, 57)], [0x20, 0, 9, 0, 1, 2, 3, 4, 5]);
    const d = roundTrip(b);
    assert.deepEqual(d.structures[0], { type: "unknown", typeCode: 0x20, offset: 48, length: 9, data: "0102030405" });
    assert.equal(d.structures[1]?.offset, 57);
    assert.match(renderDmarText(d), /Subtable Type : 0020 \[Unknown Subtable Type\]/);
  });

  it("nonzero reserved fields, RHSA extra bytes and an unterminated ANDD name survive", () => {
    const b = encodeDmar(table([
      { type: "RMRR", typeCode: 1, offset: 0, length: 0, reserved: 0xbeef, segment: 0, base: "0x0", limit: "0xfff", scopes: [] },
      { type: "ATSR", typeCode: 2, offset: 0, length: 0, flags: { raw: 0x80, allPorts: false }, reserved: 3, segment: 2, scopes: [] },
      { type: "RHSA", typeCode: 3, offset: 0, length: 0, reserved: 0x11223344, registerBase: "0x1000", proximityDomain: 0xffffffff, extra: "aabb" },
      { type: "ANDD", typeCode: 4, offset: 0, length: 0, reserved: 0x010203, deviceNumber: 9, name: "XYZ", nameTail: "" },
      { type: "SIDP", typeCode: 6, offset: 0, length: 0, reserved: 0x55, segment: 1, scopes: [] },
    ]));
    const d = roundTrip(b);
    const [r, a, h, n, s] = d.structures;
    assert.ok(r?.type === "RMRR" && a?.type === "ATSR" && h?.type === "RHSA" && n?.type === "ANDD" && s?.type === "SIDP");
    assert.equal(r.reserved, 0xbeef);
    assert.deepEqual([a.flags.raw, a.reserved], [0x80, 3]);
    assert.deepEqual([h.reserved, h.proximityDomain, h.extra, h.length], [0x11223344, 0xffffffff, "aabb", 22]);
    assert.deepEqual([n.reserved, n.name, n.nameTail, n.length], [0x010203, "XYZ", "", 11]);
    assert.equal(s.reserved, 0x55);
  });

  it("the decoded form survives JSON and encodes to the same bytes", () => {
    const b = encodeDmar(table([drhd("0x8000000000", [scope("endpoint", 1, [[0, 0]])])]));
    const t = JSON.parse(JSON.stringify(decodeDmar(b))) as DmarTable;
    assert.deepEqual(encodeDmar(t), b);
  });
});

describe("malformed input gives an AcpiError naming the offset", () => {
  it("empty input, a short file, not a table, the wrong table", () => {
    expectAcpiError(() => decodeDmar(new Uint8Array(0)), "ACPI_EMPTY");
    expectAcpiError(() => decodeDmar(sampleBytes().subarray(0, 20)), "ACPI_TRUNCATED", /only 20 bytes/);
    expectAcpiError(() => decodeDmar(new TextEncoder().encode("hello, this is a text file and not a table")), "ACPI_NOT_A_TABLE");
    const ivrs = sampleBytes();
    ivrs.set([0x49, 0x56, 0x52, 0x53], 0);
    expectAcpiError(() => decodeDmar(ivrs), "ACPI_UNSUPPORTED", /IVRS/);
  });

  it("header length larger than the file, or smaller than the DMAR header", () => {
    const b = sampleBytes();
    expectAcpiError(() => decodeDmar(withLength(b, 4, b.length + 1)), "ACPI_TRUNCATED", /header says 73 bytes but only 72/);
    expectAcpiError(() => decodeDmar(withLength(b, 4, 40).subarray(0, 40)), "ACPI_TRUNCATED", /header alone is 48 bytes/);
  });

  it("structure length 0 or below 4", () => {
    for (const len of [0, 3]) {
      const e = expectAcpiError(() => decodeDmar(withLength(sampleBytes(), 50, len)), "ACPI_BAD_SUBTABLE_LENGTH",
        new RegExp(`length ${len}; .*at byte offset 0x30`));
      assert.equal(e.offset, 0x30);
    }
  });

  it("structure length past the end of the table names the structure's offset", () => {
    const e = expectAcpiError(() => decodeDmar(withLength(sampleBytes(), 50, 0x40)), "ACPI_BAD_SUBTABLE_LENGTH",
      /length 64 but only 24 bytes .*at byte offset 0x30/);
    assert.equal(e.offset, 0x30);
  });

  it("a structure shorter than its fixed part", () => {
    const b = withLength(sampleBytes(), 50, 12);
    // 12 bytes of DRHD then 12 bytes that would be read as a structure: the DRHD check comes first
    expectAcpiError(() => decodeDmar(b), "ACPI_BAD_SUBTABLE_LENGTH", /DRHD structure has length 12, less than its 16-byte/);
  });

  it("scope length past the end of its structure, below 6, or a lone byte", () => {
    const past = expectAcpiError(() => decodeDmar(withLength(sampleBytes(), 65, 10, 1)), "ACPI_BAD_SCOPE_LENGTH",
      /DRHD at 0x30 has length 10 but only 8 bytes .*at byte offset 0x40/);
    assert.equal(past.offset, 0x40);
    for (const len of [0, 5]) {
      expectAcpiError(() => decodeDmar(withLength(sampleBytes(), 65, len, 1)), "ACPI_BAD_SCOPE_LENGTH",
        new RegExp(`length ${len}; a device scope is at least 6 bytes .*0x40`));
    }
    // DRHD one byte longer than its content, table grown by a byte to hold it
    const b = encodeDmar(table([drhd("0xfed90000", [scope("endpoint", 0, [[2, 0]])])], { trailing: "00" }));
    expectAcpiError(() => decodeDmar(withLength(b, 50, 25)), "ACPI_BAD_SCOPE_LENGTH", /1 byte left.*0x48/);
  });
});

describe("encode rejects values that do not fit", () => {
  const base = () => table([drhd("0xfed90000", [scope("endpoint", 0, [[2, 0]])])]);

  it("names the field of a bad value", () => {
    const t = base();
    const s = t.structures[0];
    assert.ok(s?.type === "DRHD");
    s.registerBase = "not hex";
    expectAcpiError(() => encodeDmar(t), "ACPI_BAD_VALUE", /structures\[0\] \(DRHD\)\.registerBase/);
    s.registerBase = "0x10000000000000000";
    expectAcpiError(() => encodeDmar(t), "ACPI_BAD_VALUE", /registerBase/);
    s.registerBase = "0x1000";
    s.segment = 0x10000;
    expectAcpiError(() => encodeDmar(t), "ACPI_BAD_VALUE", /segment is 65536: expected an integer 0\.\.65535/);
    s.segment = 0;
    const sc = s.scopes[0];
    assert.ok(sc);
    sc.path = [{ device: 256, function: 0 }];
    expectAcpiError(() => encodeDmar(t), "ACPI_BAD_VALUE", /scopes\[0\]\.path\[0\]\.device/);
  });

  it("refuses host address width 0, 4+ trailing bytes, and unknown types that reuse a known code", () => {
    expectAcpiError(() => encodeDmar({ ...base(), hostAddressWidth: 0 }), "ACPI_BAD_VALUE", /hostAddressWidth/);
    expectAcpiError(() => encodeDmar({ ...base(), trailing: "00000000" }), "ACPI_BAD_VALUE", /trailing/);
    expectAcpiError(() => encodeDmar(table([{ type: "unknown", typeCode: 1, offset: 0, length: 0, data: "" }])),
      "ACPI_BAD_VALUE", /type code 1/);
  });

  it("a device scope longer than 255 bytes", () => {
    const path = Array.from({ length: 125 }, (): [number, number] => [0, 0]);
    expectAcpiError(() => encodeDmar(table([drhd("0x1000", [scope("bridge", 0, path)])])), "ACPI_ENCODE_TOO_LONG", /256 bytes/);
  });
});

// ---- real firmware tables ---------------------------------------------------------------------------------------

/** Every rendered field line, in offset order, must cover the table byte for byte. */
function assertTextCoversTable(name: string, t: DmarTable): void {
  const fields = parseIaslFields(renderDmarText(t));
  let next = 0;
  for (const f of fields) {
    assert.equal(f.offset, next, `${name}: field '${f.name}' at ${f.offset}, expected the next field at ${next}: ${f.line}`);
    next += f.length;
  }
  assert.equal(next, t.length, `${name}: rendered fields end at ${next}, table length ${t.length}`);
}

describe("corpus of real DMAR tables", () => {
  const tables = corpusTables("dmar");

  it("has tables to check", () => {
    assert.ok(tables.length >= 50, `only ${tables.length} corpus tables`);
  });

  it("every table decodes and re-encodes (keepChecksum) to identical bytes", () => {
    let structures = 0;
    for (const [name, bytes] of tables) {
      let t: DmarTable;
      try {
        t = roundTrip(bytes);
      } catch (e) {
        throw new Error(`${name}: ${(e as Error).message}`, { cause: e });
      }
      structures += t.structures.length;
      const json = JSON.parse(JSON.stringify(t)) as DmarTable;
      assert.deepEqual(encodeDmar(json, { keepChecksum: true }), bytes.subarray(0, t.length), `${name}: via JSON`);
      if (t.checksumValid) assert.deepEqual(encodeDmar(t), bytes.subarray(0, t.length), `${name}: computed checksum`);
    }
    assert.ok(structures > tables.length, `only ${structures} structures in ${tables.length} tables`);
  });

  it("64-bit values are lower-case 0x strings", () => {
    for (const [name, bytes] of tables) {
      for (const s of decodeDmar(bytes).structures) {
        const values = s.type === "DRHD" || s.type === "RHSA" ? [s.registerBase] : s.type === "RMRR" ? [s.base, s.limit] : [];
        for (const v of values) assert.match(v, /^0x[0-9a-f]+$/, `${name} @${s.offset}`);
      }
    }
  });

  it("text rendering accounts for every byte of every table, in order", () => {
    for (const [name, bytes] of tables) assertTextCoversTable(name, decodeDmar(bytes));
  });
});
