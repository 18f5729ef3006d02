/**
 * `iommu-kit/walk`: VT-d forensics over a memory dump (or any TableReader, such as a machine's memory), with the
 * same table code the hardware model translates with: one IOVA of one device through root, context and page
 * tables (walkIova), every mapping of a device's domain (listMappings), one interrupt request through the
 * interrupt remapping table (walkMsi).
 */
export {
  forensicCaps,
  listMappings,
  rootTableOf,
  walkIova,
  walkMsi,
  type AddressWidth,
  type CapsOptions,
  type ListOptions,
  type ListReport,
  type MappingRange,
  type MsiOptions,
  type MsiReport,
  type WalkIovaOptions,
  type WalkReport,
} from "../forensics/walk.js";
export { DumpReader, writeDumpFile } from "../forensics/dump.js";
export type { TableReader } from "../hw/vtd/walk.js";
