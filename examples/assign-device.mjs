// Give a device to a VM: the hypervisor maps the VM's memory (guest-physical → host-physical) in the IOMMU
// domain of the device's VFIO container, so the device, programmed by the guest with guest-physical addresses,
// reaches the VM's pages and nothing else.
import { Hypervisor } from "iommu-kit/hypervisor";

const hv = Hypervisor.boot({ machine: "q35", cmdline: "intel_iommu=on" });
const vm = hv.createVm({ name: "vm1", memory: "32M" });
hv.bindVfio("00:04.0"); // unbind nvme, bind vfio-pci (as `iommu bind` does on a real host)
hv.assign(vm, "00:04.0");
const device = hv.machine.device("00:04.0"); // the device as it issues requests on the host's bus

const gpa = 0x10_0000; // 1 MiB into guest memory
const hpa = vm.hpaOf(gpa);
const out = device.write(gpa, new Uint8Array([0xca, 0xfe, 0xf0, 0x0d]));
const landed = out.ok ? Number(out.segments[0].hpa) : null;
console.log(`GPA 0x${gpa.toString(16)} is HPA 0x${hpa.toString(16)}; the device's write landed at ${landed === null ? "nothing" : `0x${landed.toString(16)}`} (${hv.describeHpa(landed ?? hpa)})`);
console.log(`host memory there holds 0x${hv.machine.memory.read32(hpa).toString(16)}`);

const outside = 64 * 2 ** 20; // beyond the VM's 32 MiB
const stray = device.write(outside, new Uint8Array(4));
console.log(`write to GPA 0x${outside.toString(16)}: ${stray.ok ? "reached memory" : `blocked, fault reason 0x${stray.result.reason.toString(16).padStart(2, "0")}`}`);
const fault = hv.host.driver.faults.at(-1);
const bdf = (rid) => `${(rid >> 8).toString(16).padStart(2, "0")}:${((rid >> 3) & 0x1f).toString(16).padStart(2, "0")}.${rid & 7}`;
console.log(`host kernel: ${fault === undefined ? "no fault" : `${fault.type} fault from ${bdf(fault.sourceId)} at 0x${fault.addr.toString(16)}, reason 0x${fault.reason.toString(16).padStart(2, "0")}`}`);
