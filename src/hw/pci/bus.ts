/**
 * The PCI bus as the platform needs it today: which devices exist, by requester id. Topology (bridges, aliasing
 * of requester ids behind PCIe-to-PCI bridges, ACS) is not modelled yet; every device uses its own id.
 */
import { formatPciAddress, requesterId, type PciAddress } from "../../core/pci.js";

export interface PciDevice {
  readonly address: PciAddress;
  /** What it is, for people ("dma-test"). */
  readonly name: string;
}

export class PciBus {
  private readonly byRid = new Map<number, PciDevice>();

  /** Adds a device; a second device at the same address is a programming error (RangeError). */
  add(device: PciDevice): void {
    const rid = requesterId(device.address);
    const other = this.byRid.get(rid);
    if (other !== undefined) throw new RangeError(`PCI address ${formatPciAddress(device.address)} is taken by ${other.name}`);
    this.byRid.set(rid, device);
  }

  get(rid: number): PciDevice | undefined {
    return this.byRid.get(rid & 0xffff);
  }

  /** Devices in requester-id order. */
  devices(): PciDevice[] {
    return [...this.byRid.entries()].sort((a, b) => a[0] - b[0]).map(([, d]) => d);
  }
}
