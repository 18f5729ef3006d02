/**
 * The machines and kernel command lines of the simulated-vs-real comparison (lab/sim-suite.ts). Each topology is
 * one QEMU q35 machine with `-device intel-iommu,intremap=on`; the simulated machine is built from what the guest
 * saw of the same machine (lab/sim-machine.ts), so the two kernels meet the same PCI functions.
 *
 *   classes   every device class QEMU 7.2 offers on the root bus: display (VGA, bochs-display, virtio-gpu),
 *             audio (ich9-intel-hda and intel-hda with an hda-duplex codec), USB (qemu-xhci, an ich9 EHCI + UHCI
 *             multifunction slot), storage (ahci, nvme, virtio-blk, megasas, megasas-gen2, lsi53c895a), network
 *             (e1000e, virtio-net, rtl8139)
 *   switches  a PCIe switch (x3130-upstream, two xio3130-downstream ports) behind a root port, a root port with
 *             ACS switched off (disable-acs=on), a multifunction pair of root ports, a multifunction endpoint
 *             behind a root port
 *   bridges   conventional bridge chains: root port -> pcie-pci-bridge -> pci-bridge, a display device behind the
 *             pcie-pci-bridge (not on the root bus: igfx_off takes it, and with it its whole group), a pci-bridge
 *             and a DMI-to-PCI bridge (i82801b11) on the root bus, a multifunction conventional device on the root bus
 *   lab       the doctor scenarios' machine (lab/scenarios.ts): e1000e, virtio-net, NVMe, a root port ->
 *             pcie-pci-bridge -> e1000, a multifunction e1000 pair; booted with `-device amd-iommu,intremap=on`
 *             under every AMD command line of AMD_CMDLINES, and `iommu status` runs in the guest too. (The other
 *             topologies cannot take amd-iommu as they are: QEMU 7.2 puts the unit's PCI function in the first
 *             free slot of bus 0, 00:01.0, which they use.)
 */
import { nvmeImage, standardDevices } from "./scenarios.js";

export interface SimTopology {
  id: string;
  title: string;
  /** QEMU arguments for the PCI devices (the IOMMU is added by the suite). */
  devices(): string[];
}

const nic = (model: string, where: string): string[] => ["-device", `${model},${where}romfile=`];

export const SIM_TOPOLOGIES: SimTopology[] = [
  {
    id: "classes",
    title: "display, audio, USB, storage and network controllers on the root bus",
    devices: () => [
      "-device", "VGA,addr=0x1,romfile=",
      "-device", "bochs-display,addr=0x2,romfile=",
      "-device", "virtio-gpu-pci,addr=0x3,romfile=",
      "-device", "ich9-intel-hda,id=hda0,addr=0x4", "-device", "hda-duplex,bus=hda0.0",
      "-device", "intel-hda,id=hda1,addr=0x5", "-device", "hda-duplex,bus=hda1.0",
      "-device", "qemu-xhci,addr=0x6",
      "-device", "ich9-usb-ehci1,addr=0x7.0,multifunction=on", "-device", "ich9-usb-uhci1,addr=0x7.1",
      "-device", "ich9-ahci,addr=0x8",
      "-drive", `file=${nvmeImage()},if=none,format=raw,id=d0,readonly=on`, "-device", "nvme,serial=sim0001,drive=d0,addr=0x9",
      "-drive", `file=${nvmeImage()},if=none,format=raw,id=d1,readonly=on`, "-device", "virtio-blk-pci,drive=d1,addr=0xa",
      "-device", "megasas,addr=0xb,romfile=",
      "-device", "megasas-gen2,addr=0xc,romfile=",
      "-device", "lsi53c895a,addr=0xd,romfile=",
      ...nic("e1000e", "addr=0xe,"),
      ...nic("virtio-net-pci", "addr=0xf,"),
      ...nic("rtl8139", "addr=0x12,"),
    ],
  },
  {
    id: "switches",
    title: "a PCIe switch, root ports with and without ACS, multifunction root ports and endpoints",
    devices: () => [
      "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=0x1",
      "-device", "x3130-upstream,id=up1,bus=rp1",
      "-device", "xio3130-downstream,id=dn1,bus=up1,chassis=2,slot=1,addr=0x0",
      "-device", "xio3130-downstream,id=dn2,bus=up1,chassis=3,slot=2,addr=0x1",
      ...nic("e1000e", "bus=dn1,"),
      ...nic("virtio-net-pci", "bus=dn2,"),
      "-device", "pcie-root-port,id=rp2,bus=pcie.0,chassis=4,addr=0x2,disable-acs=on",
      ...nic("e1000e", "bus=rp2,"),
      "-device", "pcie-root-port,id=rp3,bus=pcie.0,chassis=5,addr=0x3.0,multifunction=on",
      "-device", "pcie-root-port,id=rp4,bus=pcie.0,chassis=6,addr=0x3.1",
      ...nic("e1000e", "bus=rp3,"),
      ...nic("e1000e", "bus=rp4,"),
      "-device", "pcie-root-port,id=rp5,bus=pcie.0,chassis=7,addr=0x4",
      ...nic("e1000e", "bus=rp5,addr=0x0.0,multifunction=on,"),
      ...nic("e1000e", "bus=rp5,addr=0x0.1,"),
    ],
  },
  {
    id: "bridges",
    title: "conventional PCI behind bridge chains and a multifunction conventional device",
    devices: () => [
      "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=0x1",
      "-device", "pcie-pci-bridge,id=pb1,bus=rp1",
      ...nic("rtl8139", "bus=pb1,addr=0x1,"),
      "-device", "bochs-display,bus=pb1,addr=0x3,romfile=",
      "-device", "pci-bridge,id=br2,bus=pb1,chassis_nr=2,addr=0x2",
      ...nic("e1000", "bus=br2,addr=0x1,"),
      ...nic("e1000", "bus=br2,addr=0x2,"),
      "-device", "pci-bridge,id=br3,bus=pcie.0,chassis_nr=3,addr=0x2",
      "-device", "lsi53c895a,bus=br3,addr=0x1,romfile=",
      "-device", "i82801b11-bridge,id=dmi,bus=pcie.0,addr=0x3",
      ...nic("e1000", "bus=dmi,addr=0x1,"),
      ...nic("rtl8139", "addr=0x4.0,multifunction=on,"),
      ...nic("rtl8139", "addr=0x4.1,"),
    ],
  },
  {
    id: "lab",
    title: "the doctor scenarios' machine: NICs, NVMe, conventional PCI behind a bridge, a multifunction pair",
    devices: standardDevices,
  },
];

export interface SimCase {
  topology: SimTopology;
  /** Kernel command line (after the lab's console=ttyS0 panic=-1 loglevel=6). */
  cmdline: string;
  /** `-device intel-iommu,…`, `-device amd-iommu,…` or null for a machine without an IOMMU. */
  iommuDevice: string | null;
  /** Also run `iommu status --json` in the guest (starts node: ≈ 5–15 s more) and compare it with `--sim`. */
  status?: boolean;
  /** A machine preset that stands for this machine: checked to give the guest's PCI functions and IVRS. */
  preset?: string;
}

/** The AMD-Vi unit of the AMD cases: QEMU 7.2's amd-iommu with interrupt remapping (lab/README.md). */
export const AMD_IOMMU = "amd-iommu,intremap=on";

/**
 * Linux 6.1's AMD-Vi command lines (Documentation/admin-guide/kernel-parameters.txt): the default (on when the
 * IVRS is there), the invalid `amd_iommu=on` (logged as an unknown option, the IOMMU stays on), passthrough, strict
 * invalidation, off, `fullflush` (the old spelling of strict) and legacy interrupt remapping entries.
 */
export const AMD_CMDLINES = ["", "amd_iommu=on", "iommu=pt", "iommu.strict=1", "amd_iommu=off", "amd_iommu=fullflush", "amd_iommu_intr=legacy"];

/** Debian's default (on, integrated GPU excluded) and the command lines that change groups or domain types. */
export const CLASS_CMDLINES = [
  "",
  "intel_iommu=on",
  "intel_iommu=on iommu=pt",
  "intel_iommu=on iommu.strict=1",
  "intel_iommu=off",
  "intel_iommu=on,igfx_off",
  "intel_iommu=on,intgpu_off",
  "iommu.passthrough=1 iommu.strict=0",
];

const topo = (id: string): SimTopology => {
  const t = SIM_TOPOLOGIES.find((x) => x.id === id);
  if (t === undefined) throw new Error(`no topology ${id}`);
  return t;
};

/** Every (topology, command line) the suite boots: all command lines on the device classes, two on the others. */
export function simCases(): SimCase[] {
  const IOMMU = "intel-iommu,intremap=on";
  return [
    ...CLASS_CMDLINES.map((cmdline) => ({ topology: topo("classes"), cmdline, iommuDevice: IOMMU })),
    { topology: topo("classes"), cmdline: "", iommuDevice: null },
    { topology: topo("classes"), cmdline: "", iommuDevice: `${IOMMU},caching-mode=on` },
    // QEMU's scalable-mode unit: Debian's kernel uses scalable mode without sm_on (SCALABLE_MODE_DEFAULT_ON=y).
    { topology: topo("classes"), cmdline: "intel_iommu=on", iommuDevice: `${IOMMU},x-scalable-mode=on` },
    { topology: topo("classes"), cmdline: "intel_iommu=on iommu=pt", iommuDevice: `${IOMMU},x-scalable-mode=on` },
    { topology: topo("switches"), cmdline: "intel_iommu=on", iommuDevice: IOMMU },
    { topology: topo("switches"), cmdline: "intel_iommu=on iommu=pt", iommuDevice: IOMMU },
    { topology: topo("bridges"), cmdline: "intel_iommu=on", iommuDevice: IOMMU },
    { topology: topo("bridges"), cmdline: "intel_iommu=on,igfx_off iommu.strict=1", iommuDevice: IOMMU },
    ...AMD_CMDLINES.map((cmdline) => ({ topology: topo("lab"), cmdline, iommuDevice: AMD_IOMMU, status: true, preset: "q35-amd-lab" })),
  ];
}

/**
 * A short stable name for a case, usable as a directory name in QEMU's -fsdev (no commas): topology and command
 * line, e.g. `classes-intel_iommu=on:igfx_off`.
 */
export function caseName(c: SimCase): string {
  const cl = c.cmdline.trim() === "" ? "default" : c.cmdline.trim().replace(/\s+/g, "+").replace(/,/g, ":");
  const unit =
    c.iommuDevice === null ? "noiommu"
    : /caching-mode=on/.test(c.iommuDevice) ? `cm-${cl}`
    : /x-scalable-mode=on/.test(c.iommuDevice) ? `sm-${cl}`
    : c.iommuDevice.startsWith("amd-iommu") ? `amd-${cl}`
    : cl;
  return `${c.topology.id}-${unit}`;
}
