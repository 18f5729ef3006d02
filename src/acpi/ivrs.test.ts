import { test } from "node:test";
import assert from "node:assert/strict";
import { AcpiError } from "./bytes.js";
import { tableChecksumSum } from "./sdt.js";
import { corpusTables } from "../../test/support/iasl.js";
import {
  dataSettingOf,
  decodeIvrs,
  deviceEntryLength,
  encodeIvrs,
  entryTypeName,
  extendedSettingOf,
  ivhdAttributesOf,
  ivhdFeaturesOf,
  ivhdFlagsOf,
  ivhdInfoOf,
  ivInfoOf,
  ivmdFlagsOf,
  renderIvrsText,
  type IvhdBlock,
  type IvhdEntry,
  type IvmdBlock,
  type IvrsBlock,
  type IvrsTable,
} from "./ivrs.js";

// ---------------------------------------------------------------------------------------------------------------
// Builders for hand-made tables. Offsets and lengths are left 0: the encoder computes them.

const ds = dataSettingOf;
function entry(typeCode: number, deviceId: string, extra: Record<string, unknown> = {}, setting = 0): IvhdEntry {
  return { typeCode, type: entryTypeName(typeCode), offset: 0, length: 0, deviceId, dataSetting: ds(setting), ...extra } as IvhdEntry;
}
function ivhd(typeCode: number, extra: Partial<IvhdBlock>, entries: IvhdEntry[]): IvhdBlock {
  return {
    type: "IVHD", typeCode, offset: 0, flags: ivhdFlagsOf(0xb0), length: 0, deviceId: "00:00.2", capabilityOffset: 0x40,
    baseAddress: "0xfeb80000", segment: 0, info: ivhdInfoOf(0x1304), ...extra, entries,
  };
}
function ivmd(typeCode: number, extra: Partial<IvmdBlock>): IvmdBlock {
  return {
    type: "IVMD", typeCode, offset: 0, flags: ivmdFlagsOf(0x07), length: 0, deviceId: "00:00.0", auxData: 0,
    start: "0xbf000000", memoryLength: "0x100000", ...extra,
  };
}
function table(blocks: IvrsBlock[], extra: Partial<IvrsTable> = {}): IvrsTable {
  return {
    signature: "IVRS", length: 0, revision: 2, checksum: 0, checksumValid: true, oemId: "AMD", oemTableId: "IOMMUKIT",
    oemRevision: 1, creatorId: "TEST", creatorRevision: 0x20240101, ivInfo: ivInfoOf(0x00203043), blocks, ...extra,
  };
}

/** A table with every block type and every device entry type, plus nonzero reserved fields and trailing bytes. */
function everything(): IvrsTable {
  return table([
    ivhd(0x10, { features: ivhdFeaturesOf(0x80048f6f) }, [
      entry(0x01, "00:00.0"),
      entry(0x02, "00:14.0", {}, 0xd7),
      entry(0x03, "00:01.0"),
      entry(0x04, "00:1f.7"),
      entry(0x00, "00:00.0"),
      entry(0x40, "00:00.0", { reserved: "0xdeadbeef" }),
      entry(0x42, "01:00.0", { aliasId: "00:14.4", reserved: 0x0201 }),
      entry(0x43, "02:00.0", { aliasId: "00:15.0" }),
      entry(0x04, "02:1f.7"),
      entry(0x46, "03:00.0", { extendedSetting: extendedSettingOf(0x80000000) }),
      entry(0x47, "04:00.0", { extendedSetting: extendedSettingOf(0x1) }),
      entry(0x04, "04:1f.7"),
      entry(0x48, "00:00.0", { handle: 0x21, sourceId: "00:00.1", variety: 1, varietyName: "ioapic" }, 0xd7),
      entry(0x48, "00:00.0", { handle: 0x00, sourceId: "00:14.0", variety: 2, varietyName: "hpet" }),
    ]),
    ivhd(0x11, { flags: ivhdFlagsOf(0x30), attributes: ivhdAttributesOf(0x40200), efr: "0x246577efa2254afa", efr2: "0x1" },
      [entry(0x02, "05:00.0")]),
    ivhd(0x40, { attributes: ivhdAttributesOf(0x40200), efr: "0x246577efa2254afa", efr2: "0x5" }, [
      entry(0xf0, "00:14.5", { hid: "AMDI0020", cid: "PNP0C02", uidFormat: 2, uid: "\\_SB.FUR0" }, 0x40),
      entry(0xf0, "00:14.6", { hid: "0x000000000d0ad041", cid: null, uidFormat: 1, uid: "0x05" }),
      entry(0xf0, "00:14.7", { hid: "AMDI0040", cid: null, uidFormat: 0, uid: null }),
      // Unknown types: `raw` is what is encoded; device id and data setting are read from its bytes 1–3.
      entry(0x05, "bb:15.2", { raw: "05aabbcc" }, 0xcc),
      entry(0x41, "02:00.1", { raw: "4101020304050607" }, 0x03),
      entry(0x80, "11:02.1", { raw: "80" + "11".repeat(15) }, 0x11),
      entry(0xc0, "22:04.2", { raw: "c0" + "22".repeat(31) }, 0x22),
    ]),
    ivmd(0x20, {}),
    ivmd(0x21, { flags: ivmdFlagsOf(0x08), deviceId: "02:00.0", reserved: "0x99", start: "0x7132c000", memoryLength: "0x26000" }),
    ivmd(0x22, { flags: ivmdFlagsOf(0x03), deviceId: "03:00.0", auxData: 0x03ff, extra: "abcd" }),
    { type: "unknown", typeCode: 0x51, offset: 0, length: 0, raw: "51000c000002000011223344" },
  ], { reserved: "0x1122334455667788", trailing: "010203" });
}

/** Drops what the encoder computes (offsets, lengths, checksum) so a built table compares with its decode. */
function withoutComputed(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutComputed);
  if (typeof v !== "object" || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k !== "offset" && k !== "length" && k !== "checksum" && k !== "checksumValid") out[k] = withoutComputed(x);
  }
  return out;
}

const u16 = (b: Uint8Array, at: number): number => (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8);
const u32 = (b: Uint8Array, at: number): number => (u16(b, at) | (u16(b, at + 2) << 16)) >>> 0;
const slice = (b: Uint8Array, at: number, n: number): number[] => [...b.subarray(at, at + n)];
const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

function acpiError(fn: () => unknown, code: string, offset: number | undefined, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AcpiError, `expected AcpiError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.offset, offset, e.message);
    if (message) assert.match(e.message, message);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Field layouts (AMD IOMMU spec 48882 §5.2)

test("IVinfo (§5.2.1): EFRSup bit 0, DMA remap bit 1, GVAsize 7:5, PAsize 14:8, VAsize 21:15, HtAtsResv 22", () => {
  assert.deepEqual(ivInfoOf(0x00203043), {
    raw: 0x203043, efrSupported: true, dmaRemapSupported: true, guestVirtualAddressSize: 48,
    physicalAddressSize: 48, virtualAddressSize: 64, htAtsReserved: false,
  });
  const v1 = ivInfoOf(0x00203400);
  assert.equal(v1.efrSupported, false);
  assert.equal(v1.physicalAddressSize, 52);
  assert.equal(v1.guestVirtualAddressSize, null);
  assert.equal(ivInfoOf(0x60).guestVirtualAddressSize, 57);
  assert.equal(ivInfoOf(1 << 22).htAtsReserved, true);
});

test("IVHD device entry lengths (§5.2.2.2): Type[7:6] gives 4/8/16/32 bytes, F0h is 22 + UID length", () => {
  assert.deepEqual([0x00, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xff].map((t) => deviceEntryLength(t)), [4, 4, 8, 8, 16, 16, 32, 32]);
  assert.equal(deviceEntryLength(0xf0, 9), 31);
  assert.equal(deviceEntryLength(0xf0, 0), 22);
});

test("DTE data setting byte: INITPass 0, EIntPass 1, NMIPass 2, SysMgt 5:4, Lint0Pass 6, Lint1Pass 7", () => {
  assert.deepEqual(ds(0xd7), { raw: 0xd7, initPass: true, eIntPass: true, nmiPass: true, sysMgt: 1, lint0Pass: true, lint1Pass: true });
  assert.deepEqual(ds(0x20), { raw: 0x20, initPass: false, eIntPass: false, nmiPass: false, sysMgt: 2, lint0Pass: false, lint1Pass: false });
});

test("IVHD 10h Feature Reporting and 11h/40h Attributes bit fields", () => {
  const f = ivhdFeaturesOf(0x80048f6f);
  assert.deepEqual(
    [f.xtSup, f.nxSup, f.gtSup, f.glxSup, f.iaSup, f.gaSup, f.heSup, f.pasMax, f.pnCounters, f.pnBanks, f.msiNumPpr, f.gats, f.hats],
    [true, true, true, 1, true, true, false, 15, 4, 2, 0, 0, 2],
  );
  const a = ivhdAttributesOf(0x0f840201);
  assert.deepEqual([a.hatDis, a.pnCounters, a.pnBanks, a.msiNumPpr], [true, 0, 2, 0x1f]);
  assert.deepEqual(ivhdInfoOf(0x1304), { raw: 0x1304, msiNumber: 4, unitId: 0x13 });
  assert.deepEqual(ivhdFlagsOf(0xb0), {
    raw: 0xb0, htTunEn: false, passPw: false, resPassPw: false, isoc: false, iotlbSup: true, coherent: true, preFSup: false, pprSup: true,
  });
  assert.deepEqual(ivmdFlagsOf(0x0b), { raw: 0x0b, unity: true, read: true, write: false, exclusionRange: true });
});

// ---------------------------------------------------------------------------------------------------------------
// Hand-built tables

test("encode lays out every block and entry type at the spec's offsets, with lengths and checksum computed", () => {
  const b = encodeIvrs(everything());
  assert.equal(b.length, 489);
  assert.equal(u32(b, 4), 489, "table length");
  assert.equal(tableChecksumSum(b), 0, "bytes sum to zero");
  assert.deepEqual(slice(b, 0, 4), ascii("IVRS"));
  assert.equal(u32(b, 36), 0x203043, "IVinfo");
  assert.deepEqual(slice(b, 40, 8), [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], "reserved, little-endian");
  // IVHD 10h at 48: 24-byte header + 84 bytes of entries.
  assert.deepEqual(slice(b, 48, 6), [0x10, 0xb0, 108, 0, 0x02, 0x00]);
  assert.equal(u16(b, 54), 0x40);
  assert.deepEqual(slice(b, 56, 8), [0, 0, 0xb8, 0xfe, 0, 0, 0, 0]);
  assert.equal(u16(b, 66), 0x1304);
  assert.equal(u32(b, 68), 0x80048f6f);
  assert.deepEqual(slice(b, 72, 4), [0x01, 0, 0, 0], "all");
  assert.deepEqual(slice(b, 76, 4), [0x02, 0xa0, 0x00, 0xd7], "select 00:14.0");
  assert.deepEqual(slice(b, 92, 8), [0x40, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde], "pad8 keeps its reserved bytes");
  assert.deepEqual(slice(b, 100, 8), [0x42, 0x00, 0x01, 0x00, 0x01, 0xa4, 0x00, 0x02], "alias select 01:00.0 → 00:14.4");
  assert.deepEqual(slice(b, 120, 8), [0x46, 0x00, 0x03, 0x00, 0, 0, 0, 0x80], "extended select, ATS disabled");
  assert.deepEqual(slice(b, 140, 8), [0x48, 0, 0, 0xd7, 0x21, 0x01, 0x00, 0x01], "special IOAPIC 0x21 at 00:00.1");
  assert.deepEqual(slice(b, 148, 8), [0x48, 0, 0, 0, 0x00, 0xa0, 0x00, 0x02], "special HPET 0 at 00:14.0");
  // IVHD 11h at 156: 40-byte header + one select.
  assert.deepEqual(slice(b, 156, 4), [0x11, 0x30, 44, 0]);
  assert.equal(u32(b, 176), 0x40200);
  assert.deepEqual(slice(b, 180, 8), [0xfa, 0x4a, 0x25, 0xa2, 0xef, 0x77, 0x65, 0x24], "EFR image");
  assert.deepEqual(slice(b, 188, 8), [1, 0, 0, 0, 0, 0, 0, 0], "11h EFR2 image");
  // IVHD 40h at 200: 40-byte header, three F0h entries (31, 23, 22 bytes), unknown 4/8/16/32-byte entries.
  assert.deepEqual(slice(b, 200, 4), [0x40, 0xb0, 176, 0]);
  assert.deepEqual(slice(b, 232, 8), [5, 0, 0, 0, 0, 0, 0, 0], "EFR2 image");
  assert.deepEqual(slice(b, 240, 31), [
    0xf0, 0xa5, 0x00, 0x40, ...ascii("AMDI0020"), ...ascii("PNP0C02"), 0, 0x02, 0x09, ...ascii("\\_SB.FUR0"),
  ]);
  assert.deepEqual(slice(b, 271, 23), [0xf0, 0xa6, 0, 0, 0x41, 0xd0, 0x0a, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 5]);
  assert.deepEqual(slice(b, 294, 22), [0xf0, 0xa7, 0, 0, ...ascii("AMDI0040"), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(slice(b, 316, 4), [0x05, 0xaa, 0xbb, 0xcc]);
  assert.equal(b[320], 0x41);
  assert.equal(b[328], 0x80);
  assert.equal(b[344], 0xc0);
  // IVMD 20h at 376, 21h at 408, 22h (34 bytes with 2 extra) at 440; unknown 51h at 474; 3 trailing bytes.
  assert.deepEqual(slice(b, 376, 8), [0x20, 0x07, 32, 0, 0, 0, 0, 0]);
  assert.deepEqual(slice(b, 392, 16), [0, 0, 0, 0xbf, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0], "start, memory length");
  assert.deepEqual(slice(b, 408, 10), [0x21, 0x08, 32, 0, 0x00, 0x02, 0, 0, 0x99, 0]);
  assert.deepEqual(slice(b, 440, 8), [0x22, 0x03, 34, 0, 0x00, 0x03, 0xff, 0x03]);
  assert.deepEqual(slice(b, 472, 2), [0xab, 0xcd]);
  assert.deepEqual(slice(b, 474, 4), [0x51, 0x00, 0x0c, 0x00]);
  assert.deepEqual(slice(b, 486, 3), [1, 2, 3]);
});

test("decode of a hand-built table gives back every field, with true offsets and lengths", () => {
  const t = everything();
  const d = decodeIvrs(encodeIvrs(t));
  assert.deepEqual(withoutComputed(d), withoutComputed(t));
  assert.equal(d.checksumValid, true);
  assert.deepEqual(d.blocks.map((b) => [b.type, b.typeCode, b.offset, b.length]), [
    ["IVHD", 0x10, 48, 108], ["IVHD", 0x11, 156, 44], ["IVHD", 0x40, 200, 176], ["IVMD", 0x20, 376, 32],
    ["IVMD", 0x21, 408, 32], ["IVMD", 0x22, 440, 34], ["unknown", 0x51, 474, 12],
  ]);
  const hidEntries = (d.blocks[2] as IvhdBlock).entries;
  assert.deepEqual(hidEntries.map((e) => [e.type, e.offset, e.length]), [
    ["acpi-hid", 240, 31], ["acpi-hid", 271, 23], ["acpi-hid", 294, 22], ["unknown", 316, 4], ["unknown", 320, 8],
    ["unknown", 328, 16], ["unknown", 344, 32],
  ]);
  assert.equal((d.blocks[0] as IvhdBlock).entries.length, 14);
});

test("decode → JSON → encode reproduces a hand-built table byte for byte", () => {
  const bytes = encodeIvrs(everything());
  const json = JSON.parse(JSON.stringify(decodeIvrs(bytes))) as IvrsTable;
  assert.deepEqual(encodeIvrs(json), bytes);
});

test("ACPI HID entry (F0h): text, integer and absent HID/CID/UID forms", () => {
  const d = decodeIvrs(encodeIvrs(everything()));
  const [a, b, c] = (d.blocks[2] as IvhdBlock).entries;
  assert.deepEqual(a && a.type === "acpi-hid" && [a.hid, a.cid, a.uidFormat, a.uid], ["AMDI0020", "PNP0C02", 2, "\\_SB.FUR0"]);
  assert.deepEqual(b && b.type === "acpi-hid" && [b.hid, b.cid, b.uidFormat, b.uid], ["0x000000000d0ad041", null, 1, "0x05"]);
  assert.deepEqual(c && c.type === "acpi-hid" && [c.hid, c.cid, c.uidFormat, c.uid], ["AMDI0040", null, 0, null]);
});

test("wrong checksum decodes with checksumValid false; encode fixes it unless keepChecksum", () => {
  const good = encodeIvrs(everything());
  const badSum = Uint8Array.from(good);
  badSum[9] = (badSum[9]! + 1) & 0xff;
  const d = decodeIvrs(badSum);
  assert.equal(d.checksumValid, false);
  assert.equal(d.checksum, badSum[9]);
  assert.deepEqual(encodeIvrs(d, { keepChecksum: true }), badSum);
  assert.deepEqual(encodeIvrs(d), good);
});

test("bytes after the table's length are ignored; bytes after the last block are kept", () => {
  const b = encodeIvrs(table([ivmd(0x20, {})], { trailing: "0102030405060" + "7" }));
  assert.equal(b.length, 48 + 32 + 7);
  const d = decodeIvrs(Uint8Array.from([...b, 0xee, 0xee]));
  assert.equal(d.trailing, "01020304050607");
  assert.equal(d.length, b.length);
  assert.deepEqual(encodeIvrs(d, { keepChecksum: true }), b);
});

// ---------------------------------------------------------------------------------------------------------------
// Malformed tables: one AcpiError naming the byte offset, never anything else

/** Builds raw IVRS bytes (checksum fixed) from the part after the 48-byte fixed header. */
function rawTable(body: number[]): Uint8Array {
  const head = encodeIvrs(table([]));
  const b = Uint8Array.from([...head, ...body]);
  b[4] = b.length & 0xff;
  b[5] = b.length >> 8;
  b[9] = 0;
  b[9] = (0x100 - tableChecksumSum(b)) & 0xff;
  return b;
}

test("malformed: block length below the 8-byte block header → IVRS_BAD_LENGTH at the block", () => {
  acpiError(() => decodeIvrs(rawTable([0x10, 0, 4, 0, 0, 0, 0, 0])), "IVRS_BAD_LENGTH", 48, /length field is 4/);
  acpiError(() => decodeIvrs(rawTable([0x99, 0, 0, 0, 0, 0, 0, 0])), "IVRS_BAD_LENGTH", 48, /block type 99h/);
});

test("malformed: block running past the end of the table → IVRS_TRUNCATED at the block", () => {
  const b = encodeIvrs(table([ivmd(0x21, {}), ivmd(0x21, {})]));
  b[80 + 2] = 40; // second IVMD claims 40 bytes, 32 are left
  acpiError(() => decodeIvrs(b), "IVRS_TRUNCATED", 80, /says 40 bytes but only 32 are left/);
});

test("malformed: IVHD shorter than its header, IVMD shorter than 32 bytes → IVRS_BAD_LENGTH", () => {
  acpiError(() => decodeIvrs(rawTable([0x11, 0, 24, 0, ...new Array<number>(20).fill(0)])), "IVRS_BAD_LENGTH", 48, /40-byte header/);
  acpiError(() => decodeIvrs(rawTable([0x10, 0, 20, 0, ...new Array<number>(16).fill(0)])), "IVRS_BAD_LENGTH", 48, /24-byte header/);
  acpiError(() => decodeIvrs(rawTable([0x22, 0, 16, 0, ...new Array<number>(12).fill(0)])), "IVRS_BAD_LENGTH", 48, /32-byte IVMD/);
});

test("malformed: device entry running past its IVHD → IVRS_ENTRY_OVERRUN at the entry", () => {
  // IVHD 10h of 24 + 4 + 4 bytes whose last entry is an 8-byte special entry.
  const header = [0x10, 0, 32, 0, 2, 0, 0x40, 0, 0, 0, 0xb8, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  const withPad = rawTable([...header, 0x02, 0, 1, 0, 0x48, 0, 0, 0, 0, 0, 0, 0]);
  acpiError(() => decodeIvrs(withPad), "IVRS_ENTRY_OVERRUN", 76, /type 48h is 8 bytes but only 4 are left in its IVHD/);
  // An F0h entry whose UID length runs past the block.
  const b = encodeIvrs(table([ivhd(0x40, { attributes: ivhdAttributesOf(0), efr: "0x0", efr2: "0x0" },
    [entry(0xf0, "00:14.5", { hid: "AMDI0020", cid: null, uidFormat: 2, uid: "\\_SB.FUR0" })])]));
  b[48 + 40 + 21] = 10;
  acpiError(() => decodeIvrs(b), "IVRS_ENTRY_OVERRUN", 88, /type F0h is 32 bytes but only 31/);
  // Fewer than 22 bytes left for the fixed part of an F0h entry.
  const c = rawTable([0x40, 0, 48, 0, ...new Array<number>(36).fill(0), 0xf0, 0, 0, 0, 0, 0, 0, 0]);
  acpiError(() => decodeIvrs(c), "IVRS_ENTRY_OVERRUN", 88, /22 bytes but only 8/);
});

test("malformed: too short for the fixed part, empty, or not an IVRS table", () => {
  const short = encodeIvrs(table([])).subarray(0, 44);
  short[4] = 44;
  acpiError(() => decodeIvrs(short), "IVRS_TRUNCATED", 44, /48-byte fixed part/);
  acpiError(() => decodeIvrs(new Uint8Array(0)), "ACPI_EMPTY", undefined);
  const dmar = encodeIvrs(table([]));
  dmar.set(ascii("DMAR"), 0);
  acpiError(() => decodeIvrs(dmar), "ACPI_UNSUPPORTED", 0);
});

test("encode names the bad field of hand-edited JSON", () => {
  const t = everything();
  const e0 = (t.blocks[0] as IvhdBlock).entries[6] as unknown as Record<string, unknown>;
  e0.aliasId = "zz:00.0";
  acpiError(() => encodeIvrs(t), "IVRS_BAD_FIELD", undefined, /blocks\[0\]\.entries\[6\]\.aliasId: expected a requester id/);
  const t2 = everything();
  (t2.blocks[3] as unknown as Record<string, unknown>).start = 12.5;
  acpiError(() => encodeIvrs(t2), "IVRS_BAD_FIELD", undefined, /blocks\[3\]\.start/);
  const t3 = everything();
  ((t3.blocks[2] as IvhdBlock).entries[4] as unknown as Record<string, unknown>).raw = "4101";
  acpiError(() => encodeIvrs(t3), "IVRS_BAD_FIELD", undefined, /entries\[4\]\.raw: expected the whole 8-byte entry/);
  const t4 = everything();
  ((t4.blocks[2] as IvhdBlock).entries[0] as unknown as Record<string, unknown>).hid = "TOO-LONG-HID";
  acpiError(() => encodeIvrs(t4), "IVRS_BAD_FIELD", undefined, /entries\[0\]\.hid/);
  acpiError(() => encodeIvrs(table([], { trailing: "0102030405060708" })), "IVRS_BAD_FIELD", undefined, /trailing/);
  acpiError(() => encodeIvrs({ ...table([]), blocks: "none" } as unknown as IvrsTable), "IVRS_BAD_FIELD", undefined, /blocks: expected an array/);
});

// ---------------------------------------------------------------------------------------------------------------
// Real firmware

const corpus = corpusTables("ivrs");

test("corpus: every IVRS table decodes, and decode → encode({keepChecksum}) gives back identical bytes", () => {
  assert.ok(corpus.length >= 30, `corpus has ${corpus.length} IVRS tables`);
  for (const [name, bytes] of corpus) {
    const t = decodeIvrs(bytes);
    assert.deepEqual(encodeIvrs(t, { keepChecksum: true }), bytes, name);
    const viaJson = JSON.parse(JSON.stringify(t)) as IvrsTable;
    assert.deepEqual(encodeIvrs(viaJson, { keepChecksum: true }), bytes, `${name} via JSON`);
  }
});

test("corpus: Lenovo table with IVMD 21h exclusion range, IVHD 40h ACPI HID UARTs and an unknown block 51h", () => {
  const [, bytes] = corpus.find(([n]) => n.startsWith("435947a84e0e")) ?? assert.fail("corpus table 435947a84e0e missing");
  const t = decodeIvrs(bytes);
  assert.deepEqual(t.blocks.map((b) => `${b.type}:${b.typeCode.toString(16)}@${b.offset.toString(16)}`),
    ["IVHD:10@30", "IVHD:11@78", "IVMD:21@d0", "IVHD:40@f0", "unknown:51@1c4"]);
  const m = t.blocks[2] as IvmdBlock;
  assert.deepEqual([m.flags.exclusionRange, m.flags.unity, m.deviceId, m.auxData, m.start, m.memoryLength],
    [true, false, "02:00.0", 0, "0x7132c000", "0x26000"]);
  const h40 = t.blocks[3] as IvhdBlock;
  assert.equal(h40.baseAddress, "0xfe000000");
  assert.equal(h40.efr, "0x246577efa2254afa");
  const special = h40.entries.filter((e) => e.type === "special");
  assert.deepEqual(special.map((e) => e.type === "special" && [e.handle, e.sourceId, e.varietyName, e.dataSetting.raw]),
    [[0, "00:14.0", "hpet", 0], [0x20, "00:14.0", "ioapic", 0xd7], [0x21, "00:00.1", "ioapic", 0]]);
  const uarts = h40.entries.filter((e) => e.type === "acpi-hid");
  assert.deepEqual(uarts.map((e) => e.type === "acpi-hid" && [e.offset, e.deviceId, e.hid, e.cid, e.uidFormat, e.uid]), [
    [0x148, "00:14.5", "AMDI0020", null, 2, "\\_SB.FUR0"], [0x167, "00:14.5", "AMDI0020", null, 2, "\\_SB.FUR1"],
    [0x186, "00:14.5", "AMDI0020", null, 2, "\\_SB.FUR2"], [0x1a5, "00:14.5", "AMDI0020", null, 2, "\\_SB.FUR3"],
  ]);
  const u = t.blocks[4];
  assert.equal(u?.type === "unknown" && u.raw.slice(0, 16), "5108200000020000");
});

test("corpus: ACPI HID entry without CID or UID is 22 bytes and ends the table", () => {
  const [, bytes] = corpus.find(([n]) => n.startsWith("163feb10d80a")) ?? assert.fail("corpus table 163feb10d80a missing");
  const t = decodeIvrs(bytes);
  const last = (t.blocks.at(-1) as IvhdBlock).entries.at(-1);
  assert.deepEqual(last && last.type === "acpi-hid" && [last.offset + last.length, last.hid, last.cid, last.uid, last.dataSetting.raw],
    [bytes.length, "PNP0D40", null, null, 0xf7]);
});

test("text: iasl -d layout with names of block and entry types", () => {
  const [, bytes] = corpus.find(([n]) => n.startsWith("435947a84e0e")) ?? assert.fail("missing");
  const text = renderIvrsText(decodeIvrs(bytes));
  const lines = text.split("\n");
  assert.ok(lines.includes('[000h 0000   4]                    Signature : "IVRS"    [I/O Virtualization Reporting Structure]'));
  assert.ok(lines.includes("[0D0h 0208   1]                Subtable Type : 21 [Memory Definition Block (IVMD type 21h)]"));
  assert.ok(lines.includes("[0E0h 0224   8]                Start Address : 000000007132C000"));
  assert.ok(lines.includes("[148h 0328   1]                   Entry Type : F0 [ACPI HID Device]"));
  assert.ok(lines.includes('[15Eh 0350   9]                          UID : "\\_SB.FUR0"'));
  assert.ok(lines.includes("**** Unknown IVRS subtable type 0x51 (32 bytes, kept as they are)"));
  // A hand-built table renders with its encoded offsets, trailing bytes included.
  const built = renderIvrsText(everything()).split("\n");
  assert.ok(built.includes("[1DAh 0474   1]                Subtable Type : 51 [Unknown Subtable Type]"));
  assert.ok(built.includes("    01E6: 01 02 03"));
  assert.ok(built.includes("[1B8h 0440   1]                Subtable Type : 22 [Memory Definition Block (IVMD type 22h)]"));
  assert.ok(built.includes("[1BEh 0446   2]               Auxiliary Data : 03FF [end of range 03:1f.7]"));
});
