/**
 * `iommu-kit/kernel`: a Linux-like kernel that boots on a simulated machine and drives its IOMMU only through
 * MMIO registers and tables in memory: command line, ACPI parsing, the VT-d driver (DMAR) or the AMD-Vi driver
 * (IVRS), IOMMU groups and domains, the DMA API. `kernelSysfsView` shows it the way a real kernel's /sys and /proc look, for the doctor.
 */
export { KERNEL_RELEASE, Kernel, type BootOptions } from "../os/kernel.js";
export { kernelSysfsView } from "../os/sysfs.js";
export type { MachinePort } from "../os/port.js";
export type { IommuOps, IommuUnit, IoPageTable } from "../os/iommu-ops.js";
