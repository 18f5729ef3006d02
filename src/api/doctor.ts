/**
 * `iommu-kit/doctor`: judges a Linux host's IOMMU setup from what its /sys and /proc show, through a SysfsView:
 * the live system or a mounted root (RootView), a recorded snapshot (SnapshotView), or the simulated kernel
 * (kernelSysfsView from `iommu-kit/kernel`). gatherStatus answers "is DMA remapping and interrupt remapping on,
 * and if not, why"; checkDevice answers "can this device be given to a VM".
 */
export type { SysfsView, WritableSysfsView } from "../host/sysfs-view.js";
export { RootView, SnapshotView, loadSnapshotFile, openView, type SnapshotFile, type ViewOptions } from "../host/views/index.js";
export { gatherStatus, statusExitCode, type DmaPolicy, type StatusReport, type StatusUnit } from "../host/status.js";
export { checkDevice, checkExitCode, renderCheck, type CheckItem, type CheckReport } from "../host/check.js";
export type { Problem } from "../host/problem.js";
