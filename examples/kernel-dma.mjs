// Boot the simulated Linux-like kernel on a machine, map a buffer for a device through the DMA API, let the
// device write into it, and run the host doctor over the kernel's /sys and /proc.
// Usage: node kernel-dma.mjs [KERNEL_COMMAND_LINE]   (default: intel_iommu=on)
import { Machine } from "iommu-kit/vtd";
import { Kernel, kernelSysfsView } from "iommu-kit/kernel";
import { gatherStatus } from "iommu-kit/doctor";

const cmdline = process.argv[2] ?? "intel_iommu=on";
const machine = Machine.load("q35");
const kernel = Kernel.boot(machine, { cmdline });

const bdf = "00:04.0";
const dma = kernel.dma(bdf);
const buffer = kernel.pages.alloc(1); // physical address of one page of kernel memory
const handle = dma.mapSingle(buffer, 4096, "from-device");
console.log(`${dma.label}: buffer at physical 0x${buffer.toString(16)} mapped at DMA address 0x${handle.toString(16)} (${dma.translated ? "through the IOMMU" : "untranslated"})`);

const out = machine.device(bdf).write(handle, new Uint8Array([1, 2, 3, 4]));
console.log(`device write: ${out.ok ? `landed, buffer holds 0x${machine.memory.read32(buffer).toString(16)}` : `blocked (${out.result.kind})`}`);
dma.unmapSingle(handle, 4096, "from-device");

const status = gatherStatus(kernelSysfsView(kernel));
console.log(`doctor: DMA remapping ${status.kernel.iommuActive ? "on" : "off"}, interrupt remapping ${status.kernel.interruptRemapping}, default domain ${status.kernel.defaultDomain ?? "none"}`);
console.log(`verdict: ${status.ready ? "ready for device assignment" : "not ready"}`);
