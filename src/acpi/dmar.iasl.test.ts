/**
 * Cross-check against ACPICA's disassembler: every DMAR table of the corpus (plus a few hand-built ones that
 * reach fields the corpus does not) is disassembled with `iasl -d`, and every field iasl prints must agree with
 * our decoded object, and every field we expect iasl to print must be there.
 *
 * iasl 20200925 does not know structure types 5 (SATC) and 6 (SIDP): it prints their Type and Length as an
 * "Unknown Subtable Type" and stops disassembling the table. Those two fields are compared; what follows them is
 * counted as not printed by iasl rather than compared.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { hexDigits, parseHexBig } from "../core/hex.js";
import { decodeDmar, encodeDmar, renderDmarText, type DmarDeviceScope, type DmarStructure, type DmarTable } from "./dmar.js";
import { DMAR_SCOPE_NAMES, DMAR_STRUCTURE_NAMES } from "./dmar-text.js";
import { corpusTables, disassembleMany, requireIasl, parseIaslFields, type IaslField } from "../../test/support/iasl.js";

interface Expected {
  offset: number;
  name: string;
  value: string;
  /** The note iasl should print (type names); compared when set. */
  note?: string;
  /** Compare only the start of iasl's value (a lone trailing path byte, which iasl pairs with the next byte). */
  prefix?: boolean;
}

/** How iasl shows a fixed-width text field: up to the first NUL, other control and non-ASCII bytes as spaces. */
function iaslText(s: string): string {
  const nul = s.indexOf("\0");
  return `"${(nul < 0 ? s : s.slice(0, nul)).replace(/[^\x20-\x7e]/g, " ")}"`;
}

const H = (v: number, bytes: number) => hexDigits(v >>> 0, bytes * 2);
const H64 = (v: string) => hexDigits(parseHexBig(v) ?? 0n, 16);

function byteList(hex: string | undefined, count: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push((hex ?? "").slice(2 * i, 2 * i + 2).toUpperCase() || "00");
  return out.join(" ");
}

/** Structure types and scope types iasl 20200925 names; ours must carry the same names. */
const IASL_KNOWS_STRUCTURE = new Set(["DRHD", "RMRR", "ATSR", "RHSA", "ANDD"]);

function expectedFields(t: DmarTable): Expected[] {
  const e: Expected[] = [
    { offset: 0, name: "Signature", value: `"${t.signature}"` },
    { offset: 4, name: "Table Length", value: H(t.length, 4) },
    { offset: 8, name: "Revision", value: H(t.revision, 1) },
    { offset: 9, name: "Checksum", value: H(t.checksum, 1) },
    { offset: 10, name: "Oem ID", value: iaslText(t.oemId) },
    { offset: 16, name: "Oem Table ID", value: iaslText(t.oemTableId) },
    { offset: 24, name: "Oem Revision", value: H(t.oemRevision, 4) },
    { offset: 28, name: "Asl Compiler ID", value: iaslText(t.creatorId) },
    { offset: 32, name: "Asl Compiler Revision", value: H(t.creatorRevision, 4) },
    // iasl prints the stored field; the decoded width in bits is one more
    { offset: 36, name: "Host Address Width", value: H(t.hostAddressWidth - 1, 1) },
    { offset: 37, name: "Flags", value: H(t.flags.raw, 1) },
    { offset: 38, name: "Reserved", value: byteList(t.reserved, 10) },
  ];
  for (const s of t.structures) e.push(...structureFields(s));
  return e;
}

function structureFields(s: DmarStructure): Expected[] {
  const o = s.offset;
  const e: Expected[] = [
    {
      offset: o, name: "Subtable Type", value: H(s.typeCode, 2),
      note: IASL_KNOWS_STRUCTURE.has(s.type) ? DMAR_STRUCTURE_NAMES[s.type] : undefined,
    },
    { offset: o + 2, name: "Length", value: H(s.length, 2) },
  ];
  const add = (at: number, name: string, value: string) => e.push({ offset: o + at, name, value });
  switch (s.type) {
    case "DRHD":
      add(4, "Flags", H(s.flags.raw, 1));
      add(5, "Reserved", H(s.size.raw, 1)); // the Size field, reserved when iasl 20200925 was written
      add(6, "PCI Segment Number", H(s.segment, 2));
      add(8, "Register Base Address", H64(s.registerBase));
      break;
    case "RMRR":
      add(4, "Reserved", H(s.reserved ?? 0, 2));
      add(6, "PCI Segment Number", H(s.segment, 2));
      add(8, "Base Address", H64(s.base));
      add(16, "End Address (limit)", H64(s.limit));
      break;
    case "ATSR":
    case "SATC":
      add(4, "Flags", H(s.flags.raw, 1));
      add(5, "Reserved", H(s.reserved ?? 0, 1));
      add(6, "PCI Segment Number", H(s.segment, 2));
      break;
    case "SIDP":
      add(4, "Reserved", H(s.reserved ?? 0, 2));
      add(6, "PCI Segment Number", H(s.segment, 2));
      break;
    case "RHSA":
      add(4, "Reserved", H(s.reserved ?? 0, 4));
      add(8, "Base Address", H64(s.registerBase));
      add(16, "Proximity Domain", H(s.proximityDomain, 4));
      break;
    case "ANDD":
      add(4, "Reserved", H(s.reserved ?? 0, 3));
      add(7, "Device Number", H(s.deviceNumber, 1));
      add(8, "Device Name", `"${s.name}"`);
      break;
    case "unknown":
      break;
  }
  if ("scopes" in s) for (const sc of s.scopes) e.push(...scopeFields(sc));
  return e;
}

function scopeFields(sc: DmarDeviceScope): Expected[] {
  const s = sc.offset;
  const e: Expected[] = [
    { offset: s, name: "Device Scope Type", value: H(sc.typeCode, 1), note: sc.type === "unknown" ? undefined : DMAR_SCOPE_NAMES[sc.type] },
    { offset: s + 1, name: "Entry Length", value: H(sc.length, 1) },
    // iasl 20200925 prints bytes 2..3 as one 16-bit Reserved field: our Flags byte low, Reserved byte high
    { offset: s + 2, name: "Reserved", value: H((sc.flags?.raw ?? 0) | ((sc.reserved ?? 0) << 8), 2) },
    { offset: s + 4, name: "Enumeration ID", value: H(sc.enumerationId, 1) },
    { offset: s + 5, name: "PCI Bus Number", value: H(sc.startBus, 1) },
  ];
  sc.path.forEach((p, i) => e.push({ offset: s + 6 + 2 * i, name: "PCI Path", value: `${H(p.device, 1)},${H(p.function, 1)}` }));
  if (sc.pathTrailingByte !== undefined) {
    e.push({ offset: s + 6 + 2 * sc.path.length, name: "PCI Path", value: `${H(sc.pathTrailingByte, 1)},`, prefix: true });
  }
  return e;
}

interface Disagreement {
  table: string;
  offset: number;
  field: string;
  ours: string;
  iasl: string;
}

interface Tally {
  compared: number;
  notPrinted: number;
  disagreements: Disagreement[];
}

const key = (offset: number, name: string) => `${offset}:${name}`;

function compareTable(name: string, t: DmarTable, dsl: string, tally: Tally): void {
  const fields = parseIaslFields(dsl);
  const byKey = new Map<string, IaslField>(fields.map((f) => [key(f.offset, f.name), f]));
  // iasl stops at the first structure type it does not know
  const stop = fields.find((f) => f.name === "Subtable Type" && f.note === "Unknown Subtable Type");
  const stopAfter = stop ? stop.offset + 4 : Infinity;
  const expected = expectedFields(t);
  const used = new Set<string>();
  const differ = (offset: number, field: string, ours: string, iasl: string) =>
    tally.disagreements.push({ table: name, offset, field, ours, iasl });
  for (const x of expected) {
    const k = key(x.offset, x.name);
    const f = byKey.get(k);
    if (x.offset >= stopAfter) {
      tally.notPrinted++;
      if (f) used.add(k);
      continue;
    }
    if (!f) {
      differ(x.offset, x.name, x.value, "(not printed)");
      continue;
    }
    used.add(k);
    tally.compared++;
    const same = x.prefix ? f.value.startsWith(x.value) : f.value === x.value;
    if (!same) differ(x.offset, x.name, x.value, f.value);
    if (x.note !== undefined) {
      tally.compared++;
      if (f.note !== x.note) differ(x.offset, `${x.name} (name)`, x.note, f.note ?? "(none)");
    }
  }
  for (const f of fields) {
    if (!used.has(key(f.offset, f.name)) && f.offset < stopAfter) differ(f.offset, f.name, "(no such field)", f.value);
  }
}

/** Where our text rendering prints a field under iasl's name, offset and width, the value must be iasl's. */
function compareText(name: string, t: DmarTable, dsl: string, tally: Tally): void {
  const ours = new Map(parseIaslFields(renderDmarText(t)).map((f) => [key(f.offset, f.name), f]));
  for (const f of parseIaslFields(dsl)) {
    const o = ours.get(key(f.offset, f.name));
    if (!o || o.length !== f.length) continue;
    tally.compared++;
    if (o.value !== f.value) tally.disagreements.push({ table: name, offset: f.offset, field: `text: ${f.name}`, ours: o.value, iasl: f.value });
  }
}

function report(tally: Tally): string {
  const lines = tally.disagreements.slice(0, 60).map((d) =>
    `  ${d.table} @0x${d.offset.toString(16)} ${d.field}: ours ${d.ours}, iasl ${d.iasl}`);
  const more = tally.disagreements.length > 60 ? `\n  … and ${tally.disagreements.length - 60} more` : "";
  return `${tally.disagreements.length} disagreements in ${tally.compared} comparisons:\n${lines.join("\n")}${more}`;
}

/** Hand-built tables reaching fields the corpus leaves at zero or never uses (iasl-known types only). */
function syntheticTables(): [string, Uint8Array][] {
  const sc = (type: DmarDeviceScope["type"], typeCode: number, path: [number, number][], more: Partial<DmarDeviceScope> = {}): DmarDeviceScope => ({
    type, typeCode, offset: 0, length: 0, enumerationId: 0, startBus: 0,
    path: path.map(([device, fn]) => ({ device, function: fn })), ...more,
  });
  const t: DmarTable = {
    signature: "DMAR", length: 0, revision: 1, checksum: 0, checksumValid: true, oemId: "IOMMUK", oemTableId: "SYNTH",
    oemRevision: 0x12345678, creatorId: "IOMK", creatorRevision: 3, hostAddressWidth: 48,
    flags: { raw: 7, interruptRemapping: true, x2apicOptOut: true, dmaControlOptIn: true },
    reserved: "00010203040506070809",
    structures: [
      {
        type: "DRHD", typeCode: 0, offset: 0, length: 0, flags: { raw: 1, includePciAll: true },
        size: { raw: 2, bytes: "0x4000" }, segment: 3, registerBase: "0x1fed90000",
        scopes: [
          sc("bridge", 2, [[0x1c, 0], [0, 1], [3, 7]], { startBus: 0x40 }),
          sc("ioapic", 3, [[0x1e, 7]], { enumerationId: 8, startBus: 0xf0, reserved: 1 }),
          sc("endpoint", 1, [[2, 0]], { flags: {
            raw: 0x18, reqWoPasidNestedNotAllowed: false, reqWoPasidPwsnpNotAllowed: false,
            reqWoPasidPgsnpNotAllowed: false, atcHardened: true, atcRequired: true,
          } }),
          sc("unknown", 9, [[1, 2]], { enumerationId: 4, startBus: 1 }),
        ],
      },
      {
        type: "RMRR", typeCode: 1, offset: 0, length: 0, reserved: 0x0102, segment: 3,
        base: "0xfedcba9876540000", limit: "0xfedcba987654ffff", scopes: [sc("endpoint", 1, [[0x14, 0]])],
      },
      {
        type: "ATSR", typeCode: 2, offset: 0, length: 0, flags: { raw: 0x81, allPorts: true }, reserved: 0x22,
        segment: 3, scopes: [],
      },
      { type: "RHSA", typeCode: 3, offset: 0, length: 0, reserved: 9, registerBase: "0x1fed90000", proximityDomain: 0x80000001 },
      { type: "ANDD", typeCode: 4, offset: 0, length: 0, reserved: 0x030201, deviceNumber: 7, name: "\\_SB.PC00.UA00", nameTail: "000000" },
      { type: "ANDD", typeCode: 4, offset: 0, length: 0, deviceNumber: 8, name: "\\_SB.PC00.I2C1" },
    ],
  };
  return [["synthetic:all-fields", encodeDmar(t)]];
}

describe("DMAR decode agrees with iasl -d", () => {
  const tables = [...corpusTables("dmar"), ...syntheticTables()];
  let dsl: string[] = [];
  before(() => {
    requireIasl();
    dsl = disassembleMany(tables.map(([, b]) => b));
  });

  it("iasl disassembled every table", () => {
    const missing = tables.filter((_, i) => !(dsl[i] ?? "").includes("Signature")).map(([n]) => n);
    assert.deepEqual(missing, []);
  });

  it("every field iasl prints matches our decoded object, and every field we expect is printed", (t) => {
    const tally: Tally = { compared: 0, notPrinted: 0, disagreements: [] };
    let structures = 0;
    let scopes = 0;
    let stopped = 0;
    tables.forEach(([name, bytes], i) => {
      const d = decodeDmar(bytes);
      structures += d.structures.length;
      for (const s of d.structures) if ("scopes" in s) scopes += s.scopes.length;
      const before = tally.notPrinted;
      compareTable(name, d, dsl[i] ?? "", tally);
      if (tally.notPrinted > before) stopped++;
    });
    t.diagnostic(`${tables.length} tables, ${structures} structures, ${scopes} device scopes: ${tally.compared} field comparisons, ` +
      `${tally.notPrinted} fields after a SATC/SIDP that iasl does not print (${stopped} tables)`);
    assert.equal(tally.disagreements.length, 0, report(tally));
    assert.ok(tally.compared > 5000, `only ${tally.compared} comparisons`);
  });

  it("our text rendering prints the values iasl prints for the fields both print", (t) => {
    const tally: Tally = { compared: 0, notPrinted: 0, disagreements: [] };
    tables.forEach(([name, bytes], i) => compareText(name, decodeDmar(bytes), dsl[i] ?? "", tally));
    t.diagnostic(`${tally.compared} rendered lines compared with iasl's`);
    assert.equal(tally.disagreements.length, 0, report(tally));
    assert.ok(tally.compared > 5000, `only ${tally.compared} comparisons`);
  });
});
