/**
 * `iommu-kit`: every entry point in one import. The subpaths (`iommu-kit/acpi`, `/vtd`, `/kernel`,
 * `/hypervisor`, `/doctor`, `/walk`) export the same names grouped by layer.
 */
export * from "./acpi.js";
export * from "./vtd.js";
export * from "./kernel.js";
export * from "./hypervisor.js";
export * from "./doctor.js";
export * from "./walk.js";
export { IommuError, isIommuError, type IommuErrorOptions } from "../core/errors.js";
