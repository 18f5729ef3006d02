/**
 * Named machines. `q35` is the default: shaped like QEMU's q35 with `-device intel-iommu,intremap=on` and the
 * devices of the lab's scenarios, with 6 GiB of RAM so that memory above 4 GiB exists (2 GiB below, 4 GiB above,
 * as QEMU splits it) and a 32-bit-only DMA device at 00:07.0. `q35-lab` is the machine the lab boots a real
 * Debian 6.1 kernel on (lab/scenarios.ts), with QEMU's DMAR listing every device; `q35-noiommu` is `q35` without
 * a remapping unit; `q35-pi` is `q35` with a unit that posts interrupts (CAP.PI, which QEMU 7.2's unit lacks);
 * `q35-sm` is `q35` whose unit is QEMU 7.2's `intel-iommu,intremap=on,x-scalable-mode=on` (ECAP.SMTS, SSTS and
 * SRS, no first-stage translation, caching mode off as in `q35`), which Debian's 6.1 kernel runs in scalable mode;
 * `q35-sva` is `q35` with a scalable-mode unit that also has first-stage translation and 20-bit PASIDs (as Intel's
 * server IOMMUs since Sapphire Rapids; beyond QEMU 7.2) and an accelerator at 00:08.0 with a PASID capability,
 * for shared virtual addressing;
 * `two-units` has a graphics unit and a catch-all unit with an RMRR; `switch` has a PCIe switch whose second
 * downstream port lacks ACS.
 *
 * AMD-Vi: `q35-amd` is `q35` with QEMU's `-device amd-iommu,intremap=on` instead of intel-iommu (registers at
 * 0xfed80000, the IOMMU's PCI function at 00:01.0, the first free slot, as QEMU places it; IVRS with one IVHD
 * 10h and the IOAPIC at 00:14.0); `q35-amd-lab` is the lab's AMD machine (lab/scenarios.ts scenario e), whose
 * IVRS is byte for byte the one QEMU 7.2 built for it; `amd-server` is server-like: three IOMMUs, each with its
 * own PCI function (00:00.2, 00:03.2, 00:07.2) and its own root ports and buses, a PCIe-to-PCI bridge whose
 * buses the IVHD aliases, IVHD types 10h and 11h, an IVMD unity range for its xHCI controller, two IOAPICs and
 * an HPET, and units that do not cache non-present entries (NpCache clear, as on AMD's own IOMMUs; QEMU's sets it,
 * which makes Linux keep every DMA domain strict).
 */
import type { MachineConfigInput } from "./machine-config.js";
import type { PciFunctionInput } from "./pci/topology.js";

/** The PCI functions the lab's QEMU scenarios have (lab/scenarios.ts), without the 9p shares. */
function labDevices(): PciFunctionInput[] {
  return [
    { bdf: "00:00.0", type: "host-bridge", id: "8086:29c0", class: "0x060000", name: "q35 host bridge" },
    { bdf: "00:02.0", type: "endpoint", id: "8086:10d3", class: "0x020000", name: "e1000e", driver: "e1000e", msi: "msix", msiVectors: 5,
      bars: [{ size: "128K" }, { size: "128K" }, { kind: "io", size: 32 }, { size: "16K" }] },
    { bdf: "00:03.0", type: "pci", id: "1af4:1041", class: "0x020000", name: "virtio-net", driver: "virtio-pci", msi: "msix", msiVectors: 3 },
    { bdf: "00:04.0", type: "endpoint", id: "1b36:0010", class: "0x010802", name: "nvme", driver: "nvme", msi: "msix", msiVectors: 3, maxSegmentSize: "4G" },
    { bdf: "00:05.0", type: "root-port", id: "1b36:000c", class: "0x060400", secondaryBus: 1, acs: true, name: "pcie-root-port" },
    { bdf: "01:00.0", type: "pcie-pci-bridge", id: "1b36:000e", class: "0x060400", secondaryBus: 2, name: "pcie-pci-bridge" },
    { bdf: "02:01.0", type: "pci", id: "8086:100e", class: "0x020000", name: "e1000", driver: "e1000", msi: "none", bars: [{ size: "128K" }, { kind: "io", size: 64 }] },
    { bdf: "00:06.0", type: "pci", id: "8086:100e", class: "0x020000", name: "e1000", driver: "e1000", msi: "none", bars: [{ size: "128K" }, { kind: "io", size: 64 }] },
    { bdf: "00:06.1", type: "pci", id: "8086:100e", class: "0x020000", name: "e1000", driver: "e1000", msi: "none", bars: [{ size: "128K" }, { kind: "io", size: 64 }] },
  ];
}

function ich9(): PciFunctionInput[] {
  return [
    { bdf: "00:1f.0", type: "pci", id: "8086:2918", class: "0x060100", name: "ICH9 LPC", msi: "none" },
    { bdf: "00:1f.2", type: "pci", id: "8086:2922", class: "0x010601", name: "ICH9 AHCI", driver: "ahci", msi: "msi", bars: [{ size: "4K" }] },
    { bdf: "00:1f.3", type: "pci", id: "8086:2930", class: "0x0c0500", name: "ICH9 SMBus", driver: "i801_smbus", msi: "none" },
  ];
}

export const PRESETS: Record<string, () => MachineConfigInput> = {
  q35: () => ({
    name: "q35",
    ram: { size: "6G" },
    cpus: 2,
    devices: [
      ...labDevices(),
      { bdf: "00:07.0", type: "pci", id: "1b36:0005", class: "0x00ff00", name: "dma32", driver: "dma32", dmaBits: 32, msi: "msi", bars: [{ size: "4K" }] },
      ...ich9(),
    ],
    iommus: [{ base: "0xfed90000", scope: "all", interruptRemapping: true, cachingMode: false }],
  }),
  "q35-noiommu": () => ({ ...PRESETS.q35!(), name: "q35-noiommu", iommus: [] }),
  "q35-pi": () => ({
    ...PRESETS.q35!(),
    name: "q35-pi",
    iommus: [{ base: "0xfed90000", scope: "all", interruptRemapping: true, cachingMode: false, postedInterrupts: true }],
  }),
  "q35-sm": () => ({
    ...PRESETS.q35!(),
    name: "q35-sm",
    iommus: [{ base: "0xfed90000", scope: "all", interruptRemapping: true, cachingMode: false, scalableMode: true }],
  }),
  "q35-sva": () => {
    const q35 = PRESETS.q35!();
    const accel = { bdf: "00:08.0", type: "endpoint", id: "8086:0b25", class: "0x088000", name: "accelerator", driver: "idxd", msi: "msix", msiVectors: 2, pasidBits: 20, bars: [{ size: "64K" }] };
    return {
      ...q35,
      name: "q35-sva",
      devices: [...(q35.devices as PciFunctionInput[]), accel],
      iommus: [{ base: "0xfed90000", scope: "all", interruptRemapping: true, cachingMode: false, awBits: 48, scalableMode: true, firstStage: true, pasidBits: 20 }],
    };
  },
  "q35-lab": () => {
    const devices = [
      ...labDevices(),
      { bdf: "00:10.0", type: "pci", id: "1af4:1009", class: "0x000200", name: "virtio-9p", driver: "virtio-pci", msi: "msix", msiVectors: 2 },
      { bdf: "00:11.0", type: "pci", id: "1af4:1009", class: "0x000200", name: "virtio-9p", driver: "virtio-pci", msi: "msix", msiVectors: 2 },
      ...ich9(),
    ] as PciFunctionInput[];
    // QEMU 7.2+ lists every function of bus 0 in the DRHD scope (root ports as bridges) instead of INCLUDE_PCI_ALL.
    const scope = devices.map((d) => String(d.bdf)).filter((b) => b.startsWith("00:"));
    return { name: "q35-lab", ram: { size: "1G" }, cpus: 2, devices, iommus: [{ base: "0xfed90000", scope, interruptRemapping: true }] };
  },
  "two-units": () => ({
    name: "two-units",
    ram: { size: "8G", reserved: [] },
    cpus: 4,
    devices: [
      { bdf: "00:00.0", type: "host-bridge" },
      { bdf: "00:02.0", type: "endpoint", id: "8086:4680", class: "0x030000", name: "igpu", driver: "i915" },
      { bdf: "00:14.0", type: "endpoint", id: "8086:7ae0", class: "0x0c0330", name: "xhci", driver: "xhci_hcd", dmaBits: 64 },
      { bdf: "00:1c.0", type: "root-port", secondaryBus: 1, acs: true },
      { bdf: "01:00.0", type: "endpoint", id: "10de:2504", class: "0x030000", name: "gpu", driver: "nouveau" },
      { bdf: "01:00.1", type: "endpoint", id: "10de:228e", class: "0x040300", name: "gpu-audio", driver: "snd_hda_intel" },
    ],
    iommus: [
      { base: "0xfed90000", scope: ["00:02.0"] },
      { base: "0xfed91000", scope: "all" },
    ],
    rmrrs: [{ base: "0x7c000000", size: "1M", devices: ["00:14.0"] }],
  }),
  switch: () => ({
    name: "switch",
    ram: { size: "4G" },
    cpus: 2,
    devices: [
      { bdf: "00:00.0", type: "host-bridge" },
      { bdf: "00:01.0", type: "root-port", secondaryBus: 1, acs: true },
      { bdf: "01:00.0", type: "upstream-port", secondaryBus: 2 },
      { bdf: "02:00.0", type: "downstream-port", secondaryBus: 3, acs: true },
      { bdf: "02:01.0", type: "downstream-port", secondaryBus: 4, acs: false },
      { bdf: "03:00.0", type: "endpoint", name: "nic-a", driver: "e1000e" },
      { bdf: "04:00.0", type: "endpoint", name: "nic-b", driver: "e1000e" },
    ],
  }),
};

/** The lab's machine and q35's devices behind QEMU's amd-iommu (see the header). */
function amdPresets(): Record<string, () => MachineConfigInput> {
  const amd = { type: "amd-vi", scope: "all", interruptRemapping: true };
  return {
    "q35-amd": () => ({ ...PRESETS.q35!(), name: "q35-amd", iommus: [{ ...amd }] }),
    "q35-amd-lab": () => ({ ...PRESETS["q35-lab"]!(), name: "q35-amd-lab", iommus: [{ ...amd }] }),
    "amd-server": amdServer,
  };
}

function amdServer(): MachineConfigInput {
  const e1000 = (bdf: string): PciFunctionInput => ({ bdf, type: "pci", id: "8086:100e", class: "0x020000", name: "e1000", driver: "e1000", msi: "none", bars: [{ size: "128K" }, { kind: "io", size: 64 }] });
  const port = (bdf: string, bus: number): PciFunctionInput => ({ bdf, type: "root-port", id: "1022:1483", class: "0x060400", secondaryBus: bus, acs: true, name: "gpp bridge" });
  const dummy = (bdf: string): PciFunctionInput => ({ bdf, type: "host-bridge", id: "1022:1482", class: "0x060000", name: "dummy host bridge" });
  const x710 = (bdf: string): PciFunctionInput => ({ bdf, type: "endpoint", id: "8086:1572", class: "0x020000", name: "x710", driver: "i40e", msi: "msix", msiVectors: 8, acs: true });
  return {
    name: "amd-server",
    ram: { size: "8G" },
    cpus: 8,
    ioapics: [{ id: 0, base: "0xfec00000" }, { id: 1, base: "0xfec01000" }],
    devices: [
      { bdf: "00:00.0", type: "host-bridge", id: "1022:1480", class: "0x060000", name: "root complex" },
      dummy("00:01.0"),
      port("00:01.1", 1),
      { bdf: "01:00.0", type: "endpoint", id: "144d:a808", class: "0x010802", name: "nvme", driver: "nvme", msi: "msix", msiVectors: 8, maxSegmentSize: "4G" },
      port("00:01.2", 2),
      { bdf: "02:00.0", type: "pcie-pci-bridge", id: "1b21:1080", class: "0x060400", secondaryBus: 3, name: "pcie-pci-bridge" },
      e1000("03:00.0"),
      e1000("03:01.0"),
      dummy("00:03.0"),
      port("00:03.1", 4),
      x710("04:00.0"),
      x710("04:00.1"),
      dummy("00:07.0"),
      port("00:07.1", 5),
      { bdf: "05:00.0", type: "endpoint", id: "1022:149c", class: "0x0c0330", name: "xhci", driver: "xhci_hcd" },
      { bdf: "00:14.0", type: "pci", id: "1022:790b", class: "0x0c0500", name: "SMBus", driver: "piix4_smbus", msi: "none" },
      { bdf: "00:14.3", type: "pci", id: "1022:790e", class: "0x060100", name: "LPC", msi: "none" },
    ],
    iommus: [
      {
        type: "amd-vi", base: "0xfed80000", bdf: "00:00.2", ivhdTypes: [0x10, 0x11], npCache: false,
        scope: ["00:00.0", "00:01.0", "00:01.1", "00:01.2", "00:14.0", "00:14.3"],
        special: [{ kind: "ioapic", id: 0, bdf: "00:14.0" }, { kind: "ioapic", id: 1, bdf: "00:00.1" }, { kind: "hpet", id: 0, bdf: "00:14.0" }],
      },
      { type: "amd-vi", base: "0xfed84000", bdf: "00:03.2", ivhdTypes: [0x10, 0x11], npCache: false, scope: ["00:03.0", "00:03.1"] },
      { type: "amd-vi", base: "0xfed88000", bdf: "00:07.2", ivhdTypes: [0x10, 0x11], npCache: false, scope: ["00:07.0", "00:07.1"] },
    ],
    unity: [{ base: "0x7c000000", size: "1M", devices: ["05:00.0"] }],
  };
}

Object.assign(PRESETS, amdPresets());

export const PRESET_NAMES = Object.keys(PRESETS);
export const DEFAULT_MACHINE = "q35";

/** A fresh copy of a preset's configuration, or null when no preset has that name. */
export function machinePreset(name: string): MachineConfigInput | null {
  const f = PRESETS[name];
  return f === undefined ? null : f();
}
