/**
 * IVRS, the I/O Virtualization Reporting Structure: how AMD firmware describes its IOMMUs (AMD-Vi) to the
 * operating system. Layout from the AMD I/O Virtualization Technology (IOMMU) Specification, publication 48882,
 * §5.2 "IVRS": a 48-byte fixed part (ACPI header, IVinfo, 8 reserved bytes) followed by blocks, each starting
 * with type (1 byte), flags (1), length (2) and a device id (2):
 *   IVHD (I/O Virtualization Hardware Definition, types 10h, 11h, 40h): one IOMMU and the device entries
 *        saying which requester ids it translates;
 *   IVMD (I/O Virtualization Memory Definition, types 20h, 21h, 22h): memory that must stay mapped (unity) or
 *        be excluded from translation for some devices.
 *
 * The decoded form is plain JSON (64-bit values as "0x…" strings, requester ids as "bb:dd.f"). Encoding follows
 * one rule: a bit field (`flags`, `info`, `dataSetting`, `ivInfo`, …) is written from its `raw`, the named bits
 * beside it are for reading; every other field is written as it stands. `offset` and `length` fields are
 * informational: the encoder computes lengths and the checksum. Decode → encode gives back the same bytes,
 * including reserved fields (kept when nonzero), unknown block and entry types (kept as raw bytes) and bytes
 * after the last block too short to be one.
 */
import { decodeIvrs } from "./ivrs-decode.js";
import { encodeIvrs } from "./ivrs-encode.js";
import type { IvrsTable } from "./ivrs-format.js";
import { renderDecodedIvrs } from "./ivrs-text.js";

export * from "./ivrs-format.js";
export {
  bytesToHex, dataSettingOf, entryTypeName, extendedSettingOf, isIvhdType, isIvmdType, ivhdAttributesOf,
  ivhdFeaturesOf, ivhdFlagsOf, ivhdInfoOf, ivInfoOf, ivmdFlagsOf,
} from "./ivrs-fields.js";
export { decodeIvrs, encodeIvrs };

/**
 * The table as text laid out like `iasl -d`: "[hex offset, decimal offset, length]  Field Name : value [note]".
 * Offsets and lengths are those of the encoded table (the table is encoded and decoded again first, so a table
 * built by hand renders with true offsets).
 */
export function renderIvrsText(t: IvrsTable): string {
  return renderDecodedIvrs(decodeIvrs(encodeIvrs(t, { keepChecksum: true })));
}
