/**
 * `iommu-kit/hypervisor`: a hypervisor on the simulated machine. VMs with guest-physical memory backed by host
 * pages, devices assigned through a VFIO-like container, MSI interception and interrupt remapping, and a
 * randomized isolation check (runStress) that counts every DMA or interrupt that escaped its VM.
 */
export {
  Hypervisor,
  type AssignOptions,
  type CreateVmOptions,
  type HypervisorOptions,
} from "../hv/hypervisor.js";
export { Vm, type VmOptions } from "../hv/vm.js";
export type { AssignedDevice } from "../hv/assigned.js";
export type { UnmapPolicy } from "../hv/vfio.js";
export { runStress, type StressOptions, type StressResult } from "../hv/stress.js";
