/**
 * IVRS as text, laid out like ACPICA's `iasl -d`: one line per field,
 *   [hex offset h decimal offset length] Field Name : value [note]
 * with iasl's field names where iasl decodes the field, so the two can be compared line by line. Notes name the
 * block and entry types and the bits that are set. Fields iasl 20200925 does not print (type 40h block bodies,
 * ACPI HID entries, the EFR2 image it calls "Reserved", extended entries absent from the corpus) use names
 * close to the spec's.
 */
import { hexDigits } from "../core/hex.js";
import { formatRequesterId, parsePciAddress, requesterId } from "../core/pci.js";
import type {
  DataSetting,
  IvhdBlock,
  IvhdEntry,
  IvmdBlock,
  IvrsTable,
  IvrsUnknownBlock,
} from "./ivrs-format.js";

function fieldLine(offset: number, length: number, name: string, value: string, note?: string): string {
  const where = `[${hexDigits(offset, 3)}h ${String(offset).padStart(4, "0")}${String(length).padStart(4)}]`;
  return `${where} ${name.padStart(28)} : ${value}${note ? ` [${note}]` : ""}`;
}

/** Upper-case hex of a "0x…" string or number, zero-padded to `bytes` bytes, as iasl prints integers. */
function hx(v: number | string, bytes: number): string {
  return hexDigits(typeof v === "string" ? BigInt(v) : v, bytes * 2);
}

const quoted = (s: string): string => `"${s}"`;

function rawRows(hexText: string, baseOffset: number): string[] {
  const rows: string[] = [];
  for (let i = 0; i < hexText.length; i += 32) {
    const chunk = hexText.slice(i, i + 32).toUpperCase().match(/../g) ?? [];
    rows.push(`    ${hexDigits(baseOffset + i / 2, 4)}: ${chunk.join(" ")}`);
  }
  return rows;
}

function setBits(flags: object, names: [string, string][]): string | undefined {
  const rec = flags as Record<string, unknown>;
  const on = names.filter(([k]) => rec[k] === true).map(([, label]) => label);
  return on.length > 0 ? on.join(" ") : undefined;
}

const IVHD_FLAG_NAMES: [string, string][] = [
  ["htTunEn", "HtTunEn"], ["passPw", "PassPW"], ["resPassPw", "ResPassPW"], ["isoc", "Isoc"],
  ["iotlbSup", "IotlbSup"], ["coherent", "Coherent"], ["preFSup", "PreFSup"], ["pprSup", "PPRSup"],
];
const IVMD_FLAG_NAMES: [string, string][] = [
  ["unity", "Unity"], ["read", "IR"], ["write", "IW"], ["exclusionRange", "ExclusionRange"],
];

function dataSettingNote(d: DataSetting): string | undefined {
  const parts = [
    d.initPass && "INITPass", d.eIntPass && "EIntPass", d.nmiPass && "NMIPass",
    d.sysMgt !== 0 && `SysMgt=${d.sysMgt}`, d.lint0Pass && "Lint0Pass", d.lint1Pass && "Lint1Pass",
  ].filter((x): x is string => typeof x === "string");
  return parts.length > 0 ? parts.join(" ") : undefined;
}

const ENTRY_LABELS: Record<string, string> = {
  pad4: "Padding (4 bytes)", all: "All Devices", select: "Select", "range-start": "Start of Range",
  "range-end": "End of Range", pad8: "Padding (8 bytes)", "alias-select": "Alias Select",
  "alias-range-start": "Alias Start of Range", "extended-select": "Extended Select",
  "extended-range-start": "Extended Start of Range", special: "Special Device", "acpi-hid": "ACPI HID Device",
  unknown: "Unknown Entry Type",
};

function header(t: IvrsTable): string[] {
  const i = t.ivInfo;
  const info = [
    i.efrSupported && "EFRSup", i.dmaRemapSupported && "DMA remap", `PAsize ${i.physicalAddressSize}`,
    `VAsize ${i.virtualAddressSize}`, i.guestVirtualAddressSize !== null && `GVAsize ${i.guestVirtualAddressSize}`,
    i.htAtsReserved && "HtAtsResv",
  ].filter((x): x is string => typeof x === "string");
  return [
    `${fieldLine(0, 4, "Signature", quoted(t.signature))}    [I/O Virtualization Reporting Structure]`,
    fieldLine(4, 4, "Table Length", hx(t.length, 4)),
    fieldLine(8, 1, "Revision", hx(t.revision, 1)),
    fieldLine(9, 1, "Checksum", hx(t.checksum, 1), t.checksumValid ? undefined : "wrong: the bytes do not sum to zero"),
    fieldLine(10, 6, "Oem ID", quoted(t.oemId)),
    fieldLine(16, 8, "Oem Table ID", quoted(t.oemTableId)),
    fieldLine(24, 4, "Oem Revision", hx(t.oemRevision, 4)),
    fieldLine(28, 4, "Asl Compiler ID", quoted(t.creatorId)),
    fieldLine(32, 4, "Asl Compiler Revision", hx(t.creatorRevision, 4)),
    "",
    fieldLine(36, 4, "Virtualization Info", hx(i.raw, 4), info.join(", ")),
    fieldLine(40, 8, "Reserved", hx(t.reserved ?? 0, 8)),
  ];
}

function blockHeader(o: number, typeCode: number, label: string, flags: number, flagNote: string | undefined,
  length: number, deviceId: string): string[] {
  return [
    "",
    fieldLine(o, 1, "Subtable Type", hx(typeCode, 1), label),
    fieldLine(o + 1, 1, "Flags", hx(flags, 1), flagNote),
    fieldLine(o + 2, 2, "Length", hx(length, 2)),
    fieldLine(o + 4, 2, "DeviceId", hx(rid(deviceId), 2), deviceId),
    "",
  ];
}

/** "bb:dd.f" → 16-bit requester id (the form is guaranteed by the decoder). */
const rid = (id: string): number => requesterId(parsePciAddress(id));

function ivhd(b: IvhdBlock): string[] {
  const o = b.offset;
  const out = blockHeader(o, b.typeCode, `Hardware Definition Block (IVHD type ${hx(b.typeCode, 1)}h)`, b.flags.raw,
    setBits(b.flags, IVHD_FLAG_NAMES), b.length, b.deviceId);
  out.push(
    fieldLine(o + 6, 2, "Capability Offset", hx(b.capabilityOffset, 2)),
    fieldLine(o + 8, 8, "Base Address", hx(b.baseAddress, 8)),
    fieldLine(o + 16, 2, "PCI Segment Group", hx(b.segment, 2)),
    fieldLine(o + 18, 2, "Virtualization Info", hx(b.info.raw, 2), `MSI ${b.info.msiNumber}, unit ${b.info.unitId}`),
  );
  if (b.features) {
    const f = b.features;
    const note = [
      f.xtSup && "XTSup", f.nxSup && "NXSup", f.gtSup && "GTSup", `GLXSup=${f.glxSup}`, f.iaSup && "IASup",
      f.gaSup && "GASup", f.heSup && "HESup", `PASmax=${f.pasMax}`, `PNCounters=${f.pnCounters}`,
      `PNBanks=${f.pnBanks}`, `MSINumPPR=${f.msiNumPpr}`, `GATS=${f.gats}`, `HATS=${f.hats}`,
    ].filter((x): x is string => typeof x === "string");
    out.push(fieldLine(o + 20, 4, "Feature Reporting", hx(f.raw, 4), note.join(" ")));
  }
  if (b.attributes) {
    const a = b.attributes;
    out.push(fieldLine(o + 20, 4, "Attributes", hx(a.raw, 4),
      `${a.hatDis ? "HATDis " : ""}PNCounters=${a.pnCounters} PNBanks=${a.pnBanks} MSINumPPR=${a.msiNumPpr}`));
    out.push(fieldLine(o + 24, 8, "EFR Image", hx(b.efr ?? 0, 8)), fieldLine(o + 32, 8, "EFR2 Image", hx(b.efr2 ?? 0, 8)));
  }
  for (const e of b.entries) out.push("", ...entry(e));
  return out;
}

function idValue(v: string | null): string {
  return v === null ? hx(0, 8) : v.startsWith("0x") ? hx(v, 8) : quoted(v);
}

function entry(e: IvhdEntry): string[] {
  const o = e.offset;
  const out = [
    fieldLine(o, 1, "Entry Type", hx(e.typeCode, 1), ENTRY_LABELS[e.type]),
    fieldLine(o + 1, 2, "Device ID", hx(rid(e.deviceId), 2), e.deviceId),
    fieldLine(o + 3, 1, "Data Setting", hx(e.dataSetting.raw, 1), dataSettingNote(e.dataSetting)),
  ];
  switch (e.type) {
    case "pad8":
      out.push(fieldLine(o + 4, 4, "Reserved", hx(e.reserved ?? 0, 4)));
      break;
    case "alias-select":
    case "alias-range-start":
      out.push(
        fieldLine(o + 4, 1, "Reserved", hx((e.reserved ?? 0) & 0xff, 1)),
        fieldLine(o + 5, 2, "Source Used Device ID", hx(rid(e.aliasId), 2), e.aliasId),
        fieldLine(o + 7, 1, "Reserved", hx((e.reserved ?? 0) >>> 8, 1)),
      );
      break;
    case "extended-select":
    case "extended-range-start":
      out.push(fieldLine(o + 4, 4, "Extended Data", hx(e.extendedSetting.raw, 4),
        e.extendedSetting.atsDisabled ? "ATS disabled" : undefined));
      break;
    case "special":
      out.push(
        fieldLine(o + 4, 1, "Handle", hx(e.handle, 1)),
        fieldLine(o + 5, 2, "Source Used Device ID", hx(rid(e.sourceId), 2), e.sourceId),
        fieldLine(o + 7, 1, "Variety", hx(e.variety, 1),
          e.varietyName === "ioapic" ? "IOAPIC" : e.varietyName === "hpet" ? "HPET" : "reserved"),
      );
      break;
    case "acpi-hid": {
      const uidLength = e.length - 22;
      out.push(
        fieldLine(o + 4, 8, "ACPI HID", idValue(e.hid)),
        fieldLine(o + 12, 8, "ACPI CID", idValue(e.cid)),
        fieldLine(o + 20, 1, "UID Format", hx(e.uidFormat, 1),
          ["UID not present", "integer", "string"][e.uidFormat] ?? "reserved"),
        fieldLine(o + 21, 1, "UID Length", hx(uidLength, 1)),
      );
      if (e.uid !== null) {
        out.push(fieldLine(o + 22, uidLength, "UID", e.uid.startsWith("0x") ? e.uid.slice(2).toUpperCase() : quoted(e.uid)));
      }
      break;
    }
    case "unknown":
      out.push(`**** Unknown IVRS device entry type 0x${hx(e.typeCode, 1)} (${e.length} bytes, kept as they are)`);
      out.push(...rawRows(e.raw, o));
      break;
    default:
      break;
  }
  return out;
}

function ivmd(b: IvmdBlock): string[] {
  const o = b.offset;
  const out = blockHeader(o, b.typeCode, `Memory Definition Block (IVMD type ${hx(b.typeCode, 1)}h)`, b.flags.raw,
    setBits(b.flags, IVMD_FLAG_NAMES), b.length, b.deviceId);
  const aux = b.typeCode === 0x22 /* IVMD peripheral range */ ? `end of range ${formatRequesterId(b.auxData)}` : undefined;
  out.push(
    fieldLine(o + 6, 2, "Auxiliary Data", hx(b.auxData, 2), aux),
    fieldLine(o + 8, 8, "Reserved", hx(b.reserved ?? 0, 8)),
    fieldLine(o + 16, 8, "Start Address", hx(b.start, 8)),
    fieldLine(o + 24, 8, "Memory Length", hx(b.memoryLength, 8)),
  );
  if (b.extra !== undefined) {
    out.push(`**** ${b.extra.length / 2} bytes after the 32-byte IVMD, kept as they are`, ...rawRows(b.extra, o + 32));
  }
  return out;
}

function unknownBlock(b: IvrsUnknownBlock): string[] {
  const byte = (i: number): number => parseInt(b.raw.slice(2 * i, 2 * i + 2), 16);
  const deviceId = formatRequesterId(byte(4) | (byte(5) << 8));
  return [
    ...blockHeader(b.offset, b.typeCode, "Unknown Subtable Type", byte(1), undefined, b.length, deviceId),
    `**** Unknown IVRS subtable type 0x${hx(b.typeCode, 1)} (${b.length} bytes, kept as they are)`,
    ...rawRows(b.raw, b.offset),
  ];
}

/** Renders a decoded table whose offsets are those of its bytes (see renderIvrsText in ivrs.ts). */
export function renderDecodedIvrs(t: IvrsTable): string {
  const out = header(t);
  for (const b of t.blocks) {
    if (b.type === "IVHD") out.push(...ivhd(b));
    else if (b.type === "IVMD") out.push(...ivmd(b));
    else out.push(...unknownBlock(b));
  }
  if (t.trailing !== undefined) {
    const at = t.length - t.trailing.length / 2;
    out.push("", `**** ${t.trailing.length / 2} bytes after the last subtable, too few for one (kept as they are)`,
      ...rawRows(t.trailing, at));
  }
  return out.join("\n") + "\n";
}
