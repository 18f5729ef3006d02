/**
 * PCI configuration space layout: header offsets, capability ids, PCIe port types, ACS bits (PCI Local Bus 3.0,
 * PCIe Base 6.0). One list for every layer — the simulated hardware writes these registers, the simulated kernel
 * and the host doctor read them — with Linux's names (include/uapi/linux/pci_regs.h).
 */
export const PCI_VENDOR_ID = 0x00;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_CLASS_REVISION = 0x08;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_HEADER_TYPE_MFD = 0x80;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_PRIMARY_BUS = 0x18;
export const PCI_SECONDARY_BUS = 0x19;
export const PCI_SUBORDINATE_BUS = 0x1a;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_CAP_ID_MSI = 0x05;
export const PCI_CAP_ID_VNDR = 0x09;
export const PCI_CAP_ID_EXP = 0x10;
export const PCI_CAP_ID_MSIX = 0x11;
export const PCI_EXT_CAP_ID_ACS = 0x000d;
/** Process Address Space ID extended capability (PCIe Base 6.0 §7.8.8). */
export const PCI_EXT_CAP_ID_PASID = 0x001b;
/** Offsets in the PASID capability: PASID Capability register, PASID Control register. */
export const PCI_PASID_CAP = 0x04;
export const PCI_PASID_CTRL = 0x06;
/** PASID Capability: Execute and Privileged Mode supported, Max PASID Width (bits 12:8). */
export const PCI_PASID_CAP_EXEC = 0x02;
export const PCI_PASID_CAP_PRIV = 0x04;
export const PCI_PASID_CAP_WIDTH_SHIFT = 8;
export const PCI_PASID_CAP_WIDTH_MASK = 0x1f00;
/** PASID Control: PASID Enable, Execute Permission Enable, Privileged Mode Enable. */
export const PCI_PASID_CTRL_ENABLE = 0x01;
export const PCI_PASID_CTRL_EXEC = 0x02;
export const PCI_PASID_CTRL_PRIV = 0x04;
/** Extended capabilities start at 0x100; each header holds its id (15:0), version (19:16), next offset (31:20). */
export const PCI_CFG_SPACE_SIZE = 0x100;
export const PCI_EXT_CAP_VER_SHIFT = 16;
export const PCI_EXT_CAP_NEXT_SHIFT = 20;
/** An extended capability header's id, and the offset of the next one (dword aligned; 0 ends the list). */
export function pciExtCapId(header: number): number {
  return header & 0xffff;
}
export function pciExtCapNext(header: number): number {
  return (header >>> PCI_EXT_CAP_NEXT_SHIFT) & 0xffc;
}
/** PCI Express Capabilities register, Device/Port Type (PCIe Base 6.0 §7.5.3.2). */
export const PCI_EXP_TYPE_ENDPOINT = 0x0;
export const PCI_EXP_TYPE_LEG_END = 0x1;
export const PCI_EXP_TYPE_ROOT_PORT = 0x4;
export const PCI_EXP_TYPE_UPSTREAM = 0x5;
export const PCI_EXP_TYPE_DOWNSTREAM = 0x6;
export const PCI_EXP_TYPE_PCI_BRIDGE = 0x7;
export const PCI_EXP_TYPE_PCIE_BRIDGE = 0x8;
export const PCI_EXP_TYPE_RC_END = 0x9;
export const PCI_EXP_TYPE_RC_EC = 0xa;
/** ACS Capability/Control bits (PCIe Base 6.0 §7.7.11). */
export const PCI_ACS_SV = 0x01;
export const PCI_ACS_TB = 0x02;
export const PCI_ACS_RR = 0x04;
export const PCI_ACS_CR = 0x08;
export const PCI_ACS_UF = 0x10;
export const PCI_ACS_EC = 0x20;
export const PCI_ACS_DT = 0x40;
/** The ACS controls Linux requires on a path for isolation (REQ_ACS_FLAGS in drivers/pci/pci.c). */
export const REQ_ACS_FLAGS = PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF;
/** Class codes (base class << 8 | subclass) the kernel treats specially. */
export const PCI_CLASS_BRIDGE_ISA = 0x0601;
export const PCI_CLASS_SERIAL_USB = 0x0c03;
export const PCI_BASE_CLASS_DISPLAY = 0x03;
