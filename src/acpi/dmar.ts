/**
 * The ACPI DMAR table (DMA Remapping Reporting, Intel VT-d specification chapter 8): decode firmware bytes into
 * plain JSON-able objects and encode them back, byte for byte. Reserved fields that firmware left nonzero, odd
 * path bytes, unknown structure types and bytes that trail the last structure are all kept, so
 * encodeDmar(decodeDmar(x), { keepChecksum: true }) reproduces x exactly.
 *
 * Decoding never loops forever and throws nothing but AcpiError: a length that is zero, too small for its
 * structure, or runs past the end of its container names the byte offset where it was found.
 */
export * from "./dmar-format.js";
export { decodeDmar } from "./dmar-decode.js";
export { encodeDmar } from "./dmar-encode.js";
export { renderDmarText } from "./dmar-text.js";
