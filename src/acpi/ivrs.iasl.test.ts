/**
 * Every corpus IVRS table, field by field, against ACPICA's `iasl -d` (one iasl run for all tables).
 * iasl 20200925 decodes the IVRS header, IVHD types 10h and 11h with their device entries, and IVMD blocks; for
 * type 40h and unknown blocks it prints only the 8-byte block header and moves on. Our fields inside those are
 * counted as not comparable (and must be the only ones iasl does not print).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { parsePciAddress, requesterId } from "../core/pci.js";
import { corpusTables, disassembleMany, requireIasl, parseIaslFields, type IaslField } from "../../test/support/iasl.js";
import { decodeIvrs, renderIvrsText, type IvhdEntry, type IvrsTable } from "./ivrs.js";

interface Want {
  offset: number;
  name: string;
  value: bigint | string;
  /** What the field belongs to, for the report: "IVHD 10h", "entry 48h", … */
  group: string;
}

const rid = (id: string): bigint => BigInt(requesterId(parsePciAddress(id)));
const big = (v: number | string): bigint => BigInt(v);
const hx2 = (n: number): string => n.toString(16).toUpperCase().padStart(2, "0");

function entryFields(e: IvhdEntry, group: string): Want[] {
  const o = e.offset;
  const g = `${group} entry ${hx2(e.typeCode)}h`;
  const out: Want[] = [
    { offset: o, name: "Entry Type", value: big(e.typeCode), group: g },
    { offset: o + 1, name: "Device ID", value: rid(e.deviceId), group: g },
    { offset: o + 3, name: "Data Setting", value: big(e.dataSetting.raw), group: g },
  ];
  switch (e.type) {
    case "alias-select":
    case "alias-range-start":
      out.push(
        { offset: o + 4, name: "Reserved", value: big((e.reserved ?? 0) & 0xff), group: g },
        { offset: o + 5, name: "Source Used Device ID", value: rid(e.aliasId), group: g },
        { offset: o + 7, name: "Reserved", value: big((e.reserved ?? 0) >> 8), group: g },
      );
      break;
    case "special":
      out.push(
        { offset: o + 4, name: "Handle", value: big(e.handle), group: g },
        { offset: o + 5, name: "Source Used Device ID", value: rid(e.sourceId), group: g },
        { offset: o + 7, name: "Variety", value: big(e.variety), group: g },
      );
      break;
    case "extended-select":
    case "extended-range-start":
      out.push({ offset: o + 4, name: "Extended Data", value: big(e.extendedSetting.raw), group: g });
      break;
    case "acpi-hid":
      out.push(
        { offset: o + 4, name: "ACPI HID", value: e.hid ?? 0n, group: g },
        { offset: o + 12, name: "ACPI CID", value: e.cid ?? 0n, group: g },
        { offset: o + 20, name: "UID Format", value: big(e.uidFormat), group: g },
        { offset: o + 21, name: "UID Length", value: big(e.length - 22), group: g },
      );
      if (e.uid !== null) out.push({ offset: o + 22, name: "UID", value: e.uid, group: g });
      break;
    default:
      break;
  }
  return out;
}

/** Our decoded fields, as iasl names and places them. */
function wanted(t: IvrsTable): Want[] {
  const out: Want[] = [
    { offset: 0, name: "Signature", value: t.signature, group: "header" },
    { offset: 4, name: "Table Length", value: big(t.length), group: "header" },
    { offset: 8, name: "Revision", value: big(t.revision), group: "header" },
    { offset: 9, name: "Checksum", value: big(t.checksum), group: "header" },
    { offset: 10, name: "Oem ID", value: t.oemId, group: "header" },
    { offset: 16, name: "Oem Table ID", value: t.oemTableId, group: "header" },
    { offset: 24, name: "Oem Revision", value: big(t.oemRevision), group: "header" },
    { offset: 28, name: "Asl Compiler ID", value: t.creatorId, group: "header" },
    { offset: 32, name: "Asl Compiler Revision", value: big(t.creatorRevision), group: "header" },
    { offset: 36, name: "Virtualization Info", value: big(t.ivInfo.raw), group: "IVinfo" },
    { offset: 40, name: "Reserved", value: big(t.reserved ?? 0), group: "IVinfo" },
  ];
  for (const b of t.blocks) {
    const o = b.offset;
    const g = `${b.type === "unknown" ? "block" : b.type} ${hx2(b.typeCode)}h`;
    const deviceId = b.type === "unknown" ? BigInt(parseInt(b.raw.slice(10, 12) + b.raw.slice(8, 10), 16)) : rid(b.deviceId);
    const flags = b.type === "unknown" ? BigInt(parseInt(b.raw.slice(2, 4), 16)) : big(b.flags.raw);
    out.push(
      { offset: o, name: "Subtable Type", value: big(b.typeCode), group: g },
      { offset: o + 1, name: "Flags", value: flags, group: g },
      { offset: o + 2, name: "Length", value: big(b.length), group: g },
      { offset: o + 4, name: "DeviceId", value: deviceId, group: g },
    );
    if (b.type === "IVHD") {
      out.push(
        { offset: o + 6, name: "Capability Offset", value: big(b.capabilityOffset), group: g },
        { offset: o + 8, name: "Base Address", value: big(b.baseAddress), group: g },
        { offset: o + 16, name: "PCI Segment Group", value: big(b.segment), group: g },
        { offset: o + 18, name: "Virtualization Info", value: big(b.info.raw), group: g },
      );
      if (b.features) out.push({ offset: o + 20, name: "Feature Reporting", value: big(b.features.raw), group: g });
      if (b.attributes) {
        out.push(
          { offset: o + 20, name: "Attributes", value: big(b.attributes.raw), group: g },
          { offset: o + 24, name: "EFR Image", value: big(b.efr ?? 0), group: g },
          // iasl 20200925 calls the EFR2 image of type 11h "Reserved".
          { offset: o + 32, name: b.typeCode === 0x11 ? "Reserved" : "EFR2 Image", value: big(b.efr2 ?? 0), group: g },
        );
      }
      for (const e of b.entries) out.push(...entryFields(e, g));
    } else if (b.type === "IVMD") {
      out.push(
        { offset: o + 6, name: "Auxiliary Data", value: big(b.auxData), group: g },
        { offset: o + 8, name: "Reserved", value: big(b.reserved ?? 0), group: g },
        { offset: o + 16, name: "Start Address", value: big(b.start), group: g },
        { offset: o + 24, name: "Memory Length", value: big(b.memoryLength), group: g },
      );
    }
  }
  return out;
}

/** iasl's value as ours would be: quoted text → the text, else a hex integer. */
function iaslValue(f: IaslField): bigint | string {
  const q = /^"(.*)"$/.exec(f.value);
  if (q) return q[1] ?? "";
  if (!/^[0-9A-Fa-f]+$/.test(f.value)) return f.value;
  return BigInt("0x" + f.value);
}

const show = (v: bigint | string): string => (typeof v === "bigint" ? "0x" + v.toString(16) : JSON.stringify(v));
/** Blocks iasl 20200925 stops at after printing the 8-byte block header. */
const notDecodedByIasl = (group: string): boolean => group.startsWith("IVHD 40h") || group.startsWith("block ");

let cached: { name: string; table: IvrsTable; ours: string; iasl: IaslField[] }[] | null = null;
function disassembled(): NonNullable<typeof cached> {
  if (cached) return cached;
  requireIasl();
  const corpus = corpusTables("ivrs");
  const dsl = disassembleMany(corpus.map(([, b]) => b));
  cached = corpus.map(([name, bytes], i) => {
    const table = decodeIvrs(bytes);
    return { name, table, ours: renderIvrsText(table), iasl: parseIaslFields(dsl[i] ?? "") };
  });
  return cached;
}

test("every corpus IVRS field agrees with iasl -d (header, IVinfo, IVHD, device entries, IVMD)", (t: TestContext) => {
  const problems: string[] = [];
  const compared = new Map<string, number>();
  const notComparable = new Map<string, number>();
  let iaslFields = 0;
  for (const { name, table, iasl } of disassembled()) {
    assert.ok(iasl.length > 0, `${name}: iasl printed no fields`);
    iaslFields += iasl.length;
    const byKey = new Map(iasl.map((f) => [`${f.offset}|${f.name}`, f]));
    const matched = new Set<string>();
    for (const w of wanted(table)) {
      const key = `${w.offset}|${w.name}`;
      const f = byKey.get(key);
      if (!f) {
        notComparable.set(w.group.replace(/ entry .*/, " entries"), (notComparable.get(w.group.replace(/ entry .*/, " entries")) ?? 0) + 1);
        if (!notDecodedByIasl(w.group)) problems.push(`${name} @0x${w.offset.toString(16)} ${w.name}: ours ${show(w.value)}, iasl prints nothing there`);
        continue;
      }
      matched.add(key);
      compared.set(w.group.replace(/ entry .*/, " entries"), (compared.get(w.group.replace(/ entry .*/, " entries")) ?? 0) + 1);
      const theirs = iaslValue(f);
      if (theirs !== w.value) problems.push(`${name} @0x${w.offset.toString(16)} ${w.name}: ours ${show(w.value)}, iasl ${show(theirs)}`);
    }
    for (const f of iasl) {
      if (!matched.has(`${f.offset}|${f.name}`)) problems.push(`${name} @0x${f.offset.toString(16)} ${f.name}: iasl ${f.value}, we have no such field`);
    }
  }
  const total = [...compared.values()].reduce((a, b) => a + b, 0);
  const skipped = [...notComparable.values()].reduce((a, b) => a + b, 0);
  t.diagnostic(`compared ${total} fields (iasl printed ${iaslFields}): ${[...compared].map(([g, n]) => `${g} ${n}`).join(", ")}`);
  t.diagnostic(`not comparable (iasl 20200925 stops at these blocks): ${skipped} fields: ${[...notComparable].map(([g, n]) => `${g} ${n}`).join(", ")}`);
  assert.deepEqual(problems, [], `${problems.length} disagreements:\n${problems.slice(0, 40).join("\n")}`);
  assert.ok(total > 2000, `only ${total} fields compared`);
});

test("text rendering matches iasl -d line for line: offset, length, field name and value", (t: TestContext) => {
  const problems: string[] = [];
  let lines = 0;
  for (const { name, ours, iasl } of disassembled()) {
    const mine = new Map(parseIaslFields(ours).map((f) => [`${f.offset}|${f.name}`, f]));
    for (const f of iasl) {
      // Known rename: iasl 20200925 prints the EFR2 image of an IVHD 11h as "Reserved".
      const m = mine.get(`${f.offset}|${f.name}`) ?? (f.name === "Reserved" ? mine.get(`${f.offset}|EFR2 Image`) : undefined);
      lines++;
      if (!m) problems.push(`${name}: iasl line missing from ours: ${f.line}`);
      else if (m.length !== f.length || m.value !== f.value) problems.push(`${name}:\n  iasl: ${f.line}\n  ours: ${m.line}`);
    }
  }
  t.diagnostic(`${lines} iasl lines checked against our text`);
  assert.deepEqual(problems, [], problems.slice(0, 20).join("\n"));
});
