/**
 * Which kernel interface a VMM uses to reach VFIO devices, and where its knobs are.
 *
 * - The VFIO container /dev/vfio/vfio with /dev/vfio/GROUP: implemented by vfio_iommu_type1, or, in kernels built
 *   with CONFIG_IOMMUFD_VFIO_CONTAINER=y, emulated by iommufd (then vfio_iommu_type1 does not exist and its
 *   parameters, vfio_iommu_type1.allow_unsafe_interrupts among them, do nothing).
 * - iommufd: /dev/iommu (CONFIG_IOMMUFD), with per-device nodes /dev/vfio/devices/vfioN (CONFIG_VFIO_DEVICE_CDEV,
 *   Linux 6.6). QEMU uses it with -object iommufd. It has its own allow_unsafe_interrupts
 *   (/sys/module/iommufd/parameters/allow_unsafe_interrupts, iommufd.allow_unsafe_interrupts=1 on the command line).
 */
import { kstrtobool } from "../../core/kernel-cmdline.js";
import type { SysfsView } from "../sysfs-view.js";
import type { KernelConfig } from "../status-kernel.js";
import { existsSafe, readTextSafe } from "./read.js";

export const IOMMUFD_UNSAFE_PATH = "/sys/module/iommufd/parameters/allow_unsafe_interrupts";

export interface VfioBackend {
  /** Who implements /dev/vfio/vfio: "vfio_iommu_type1", "iommufd", or null when it cannot be told. */
  container: "vfio_iommu_type1" | "iommufd" | null;
  /** /dev/iommu exists. */
  iommufd: boolean;
  /** /dev/vfio/devices exists (VFIO device nodes for iommufd). */
  deviceCdev: boolean;
  /** iommufd's allow_unsafe_interrupts from sysfs; null when the module is not loaded or unreadable. */
  iommufdAllowUnsafe: boolean | null;
}

export function readVfioBackend(view: SysfsView, config: KernelConfig | null): VfioBackend {
  const v = config?.values;
  let container: VfioBackend["container"] = null;
  if (v?.CONFIG_IOMMUFD_VFIO_CONTAINER === "y") container = "iommufd";
  else if (existsSafe(view, "/sys/module/vfio_iommu_type1") || v?.CONFIG_VFIO_CONTAINER === "y" || v?.CONFIG_VFIO_IOMMU_TYPE1 !== undefined) {
    container = v?.CONFIG_VFIO_IOMMU_TYPE1 === "n" ? null : "vfio_iommu_type1";
  }
  return {
    container,
    iommufd: existsSafe(view, "/dev/iommu"),
    deviceCdev: existsSafe(view, "/dev/vfio/devices"),
    iommufdAllowUnsafe: kstrtobool(readTextSafe(view, IOMMUFD_UNSAFE_PATH).text),
  };
}
