/**
 * `iommu-kit/vtd`: the simulated machine and its Intel VT-d remapping units. Build a machine from a preset or a
 * configuration, lay out root, context and page tables in its memory with VtdTables, program a unit through its
 * registers (registerWindow, gcmd, enableTranslation, InvalidationQueue), and let devices issue DMA and
 * interrupts (Machine.device). Faults land in the unit's fault recording registers, as the specification says.
 * Scalable mode (`config: { scalableMode: true }`): lay out scalable-mode context entries, PASID tables and
 * first-stage tables with ScalableTables and program RTADDR with smRtaddr(root) (TTM = 01b).
 */
export { PhysicalMemory, type PhysAddr } from "../core/memory.js";
export { pciAddress, formatBdf, parsePciAddress, requesterId, type PciAddress } from "../core/pci.js";
export { Machine, type DeviceBus, type MachineAmdViUnit, type MachineFirmware, type MachineIommu, type MachineUnit } from "../hw/machine.js";
export type { IommuKind, PlatformUnit } from "../hw/iommu-unit.js";
export type { MachineConfigInput } from "../hw/machine-config.js";
export { DEFAULT_MACHINE, PRESET_NAMES, machinePreset } from "../hw/machine-presets.js";
export { DmaTestDevice, type DmaCommand, type DmaCommandResult } from "../hw/devices/dma-test.js";
export { Platform, type DmaOutcome, type InterruptMessage, type InterruptSink, type PlatformOptions } from "../hw/platform.js";
export type { PciFunction, PciFunctionInput } from "../hw/pci/topology.js";
export {
  VtdUnit,
  type DmaRequest,
  type DmaSegment,
  type TranslateResult,
  type VtdStats,
  type VtdUnitOptions,
} from "../hw/vtd/unit.js";
export type { VtdConfig } from "../hw/vtd/config.js";
export {
  InvalidationQueue,
  VtdTables,
  desc,
  enableTranslation,
  gcmd,
  invalidateContext,
  invalidateIotlb,
  registerWindow,
  type ContextOptions,
  type Descriptor,
  type DomainTables,
  type MapOptions,
  type MmioSpace,
  type RegisterPort,
  type RegisterWindow,
} from "../hw/vtd/builder.js";
export { ScalableTables, smRtaddr, type FirstStageTables, type FsMapOptions, type SmContextOptions } from "../hw/vtd/sm-builder.js";
