/**
 * The guest machines the lab boots. Every scenario is a q35 machine (kernel-irqchip=split) with the same PCI
 * devices at fixed addresses, so recorded trees and assertions can name BDFs:
 *
 *   00:02.0  e1000e                                 (the device `iommu bind` moves to vfio-pci)
 *   00:03.0  virtio-net-pci, iommu_platform=on, disable-legacy=on
 *   00:04.0  nvme (lab/work/nvme.img)
 *   00:05.0  pcie-root-port -> 01:00.0 pcie-pci-bridge -> 02:01.0 e1000 (conventional PCI behind a bridge)
 *   00:06.0  e1000, multifunction   00:06.1  e1000 (two functions of one slot)
 *   00:10.0, 00:11.0  virtio-9p-pci (the lab's host root and output shares, added by qemu.ts)
 *   02:02.0  e1000, a second device behind the bridge (scenario g only)
 *   plus q35's built-in 00:00.0 host bridge, 00:1f.* ICH9 LPC/SATA/SMBus, and with AMD-Vi its own PCI function.
 */
import { existsSync, openSync, closeSync, ftruncateSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { PciFunctionInput } from "../src/hw/pci/topology.js";
import { WORK_DIR } from "./qemu.js";

export type IommuKind = "intel" | "amd" | "none";

export interface Scenario {
  /** Short id: a … h (f is b with VFIO's allow_unsafe_interrupts; g and h are a with vfio-pci.ids= for the e1000e). */
  id: string;
  /** Directory name of the recorded tree under test/fixtures/hosts/. */
  fixture: string;
  title: string;
  iommu: IommuKind;
  /** The IOMMU -device argument, when there is one. */
  iommuDevice: string | null;
  cmdline: string;
  /** QEMU device arguments added after the standard devices. */
  extraDevices?: string[];
  /** The same devices for the simulated machine (the q35-lab preset of src/hw/machine-presets.ts). */
  simDevices?: PciFunctionInput[];
}

/** The e1000e's vendor:device, as vfio-pci.ids= names it. */
export const E1000E_IDS = "8086:10d3";
// g and h boot with no_timer_check (as the AMD-Vi oracle does): under TCG on a loaded machine Linux's check of
// the timer through the interrupt-remapped IO-APIC can time out and panic ("timer doesn't work through
// Interrupt-remapped IO-APIC") before anything runs.
/** The initramfs's module order (lab/mkinitrd.sh) with vfio_pci moved before the NIC and NVMe drivers. */
const VFIO_FIRST = "virtio_pci,virtio_net,9pnet_virtio,9p,vfio,vfio_iommu_type1,vfio_pci,e1000e,e1000,nvme";

export const SCENARIOS: Scenario[] = [
  {
    id: "a",
    fixture: "qemu-a-intel-pt-ir",
    title: "VT-d with interrupt remapping, intel_iommu=on iommu=pt",
    iommu: "intel",
    iommuDevice: "intel-iommu,intremap=on",
    cmdline: "intel_iommu=on iommu=pt",
  },
  {
    id: "b",
    fixture: "qemu-b-intel-noir",
    title: "VT-d without interrupt remapping, intel_iommu=on",
    iommu: "intel",
    iommuDevice: "intel-iommu,intremap=off",
    cmdline: "intel_iommu=on",
  },
  {
    id: "f",
    fixture: "qemu-f-intel-noir-unsafe",
    title: "VT-d without interrupt remapping, VFIO told to accept unsafe interrupts",
    iommu: "intel",
    iommuDevice: "intel-iommu,intremap=off",
    cmdline: "intel_iommu=on vfio_iommu_type1.allow_unsafe_interrupts=1",
  },
  {
    id: "c",
    fixture: "qemu-c-intel-off",
    title: "VT-d present but intel_iommu=off",
    iommu: "intel",
    iommuDevice: "intel-iommu,intremap=on",
    cmdline: "intel_iommu=off",
  },
  {
    id: "d",
    fixture: "qemu-d-noiommu",
    title: "no IOMMU",
    iommu: "none",
    iommuDevice: null,
    cmdline: "",
  },
  {
    id: "e",
    fixture: "qemu-e-amd-on",
    title: "AMD-Vi with interrupt remapping, amd_iommu=on",
    iommu: "amd",
    iommuDevice: "amd-iommu,intremap=on",
    cmdline: "amd_iommu=on",
  },
  {
    id: "g",
    fixture: "qemu-g-early-bind",
    title: "VT-d as in a, vfio-pci.ids= for the e1000e with vfio_pci loaded before the NIC drivers, and a second e1000 behind the PCIe-to-PCI bridge",
    iommu: "intel",
    iommuDevice: "intel-iommu,intremap=on",
    cmdline: `intel_iommu=on iommu=pt no_timer_check vfio-pci.ids=${E1000E_IDS} lab.modules=${VFIO_FIRST}`,
    extraDevices: ["-netdev", "user,id=n5", "-device", "e1000,netdev=n5,bus=br1,addr=0x2,romfile="],
    simDevices: [
      { bdf: "02:02.0", type: "pci", id: "8086:100e", class: "0x020000", name: "e1000", driver: "e1000", msi: "none", bars: [{ size: "128K" }, { kind: "io", size: 64 }] },
    ],
  },
  {
    id: "h",
    fixture: "qemu-h-early-bind-lost",
    title: "VT-d as in a, vfio-pci.ids= for the e1000e but e1000e loaded before vfio_pci (the initramfs's usual order)",
    iommu: "intel",
    iommuDevice: "intel-iommu,intremap=on",
    cmdline: `intel_iommu=on iommu=pt no_timer_check vfio-pci.ids=${E1000E_IDS}`,
  },
];

export function scenario(id: string): Scenario {
  const s = SCENARIOS.find((x) => x.id === id || x.fixture === id);
  if (!s) throw new Error(`unknown scenario '${id}' (one of ${SCENARIOS.map((x) => x.id).join(", ")})`);
  return s;
}

export const E1000E_BDF = "0000:00:02.0";
export const VIRTIO_NET_BDF = "0000:00:03.0";
export const NVME_BDF = "0000:00:04.0";

/** A 16 MiB raw disk for the NVMe controller, with a recognisable pattern in its first sectors. */
export function nvmeImage(): string {
  const path = join(WORK_DIR, "nvme.img");
  if (!existsSync(path)) {
    const fd = openSync(path, "w");
    ftruncateSync(fd, 16 << 20);
    const block = Buffer.alloc(1 << 20);
    for (let i = 0; i < block.length; i += 16) block.write("iommu-kit lab \n", i, "latin1");
    writeSync(fd, block, 0, block.length, 0);
    closeSync(fd);
  }
  return path;
}

/** The PCI devices every scenario has (see the table above). `net` attaches user-mode networking to the NICs. */
export function standardDevices(): string[] {
  return [
    "-netdev", "user,id=n0", "-device", "e1000e,netdev=n0,addr=0x2,romfile=",
    "-netdev", "user,id=n1",
    "-device", "virtio-net-pci,netdev=n1,addr=0x3,iommu_platform=on,disable-legacy=on,romfile=",
    "-drive", `file=${nvmeImage()},if=none,format=raw,id=d0`, "-device", "nvme,serial=lab0001,drive=d0,addr=0x4",
    "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=0x5",
    "-device", "pcie-pci-bridge,id=br1,bus=rp1",
    "-netdev", "user,id=n2", "-device", "e1000,netdev=n2,bus=br1,addr=0x1,romfile=",
    "-netdev", "user,id=n3", "-device", "e1000,netdev=n3,addr=0x6.0,multifunction=on,romfile=",
    "-netdev", "user,id=n4", "-device", "e1000,netdev=n4,addr=0x6.1,romfile=",
  ];
}

/** QEMU arguments for a scenario: the IOMMU first (QEMU wants it before the devices it translates for). */
export function machineArgs(s: Scenario): string[] {
  return [...(s.iommuDevice ? ["-device", s.iommuDevice] : []), ...standardDevices(), ...(s.extraDevices ?? [])];
}
