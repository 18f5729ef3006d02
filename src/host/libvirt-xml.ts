/**
 * libvirt and QEMU snippets for assigning host PCI devices. The <hostdev> element follows libvirt's domain
 * schema (domaincommon.rng, "hostdevsubsyspci"): mode='subsystem' type='pci', managed='yes' so libvirt detaches
 * the device from its host driver when the guest starts and gives it back when it stops, and a <source> whose
 * <address> carries domain (4 hex digits), bus (2), slot (2) and function (1).
 */
import { create } from "xmlbuilder2";
import { formatPciAddress, type PciAddress } from "../core/pci.js";
import { hex } from "../core/hex.js";

export interface HostdevOptions {
  /** managed='yes' (default) lets libvirt bind vfio-pci itself; 'no' expects the device already bound. */
  managed?: boolean;
}

/** One <hostdev> element per device, pretty-printed, without an XML declaration. */
export function hostdevXml(devices: readonly PciAddress[], opts: HostdevOptions = {}): string {
  return devices
    .map((a) => {
      const doc = create()
        .ele("hostdev", { mode: "subsystem", type: "pci", managed: opts.managed === false ? "no" : "yes" })
        .ele("source")
        .ele("address", {
          domain: hex(a.segment, 4),
          bus: hex(a.bus, 2),
          slot: hex(a.device, 2),
          function: hex(a.fn, 1),
        })
        .doc();
      return doc.end({ headless: true, prettyPrint: true, indent: "  " }) + "\n";
    })
    .join("");
}

/** QEMU command-line arguments: ["-device", "vfio-pci,host=0000:01:00.0"] per device. */
export function qemuArgs(devices: readonly PciAddress[]): string[][] {
  return devices.map((a) => ["-device", `vfio-pci,host=${formatPciAddress(a)}`]);
}
