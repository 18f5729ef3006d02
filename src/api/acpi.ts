/**
 * `iommu-kit/acpi`: the ACPI codec for IOMMU tables. DMAR (Intel VT-d, chapter 8) and IVRS (AMD IOMMU
 * specification 48882, §5.2) decoded from firmware bytes into plain JSON-able objects and encoded back byte for
 * byte, checksum included; text laid out like `iasl -d`; acpidump output parsed.
 */
export {
  AcpiError,
  decodeTable,
  encodeTable,
  loadTables,
  parseAcpidump,
  renderTableText,
  type DecodeResult,
  type EncodeOptions,
  type IommuTable,
  type TableSource,
} from "../acpi/index.js";
export {
  decodeDmar,
  encodeDmar,
  renderDmarText,
  type DmarAndd,
  type DmarAtsr,
  type DmarDeviceScope,
  type DmarDrhd,
  type DmarEncodeOptions,
  type DmarRhsa,
  type DmarRmrr,
  type DmarSatc,
  type DmarScopeType,
  type DmarSidp,
  type DmarStructure,
  type DmarTable,
} from "../acpi/dmar.js";
export {
  decodeIvrs,
  encodeIvrs,
  renderIvrsText,
  type IvhdBlock,
  type IvhdEntry,
  type IvmdBlock,
  type IvrsBlock,
  type IvrsTable,
} from "../acpi/ivrs.js";
