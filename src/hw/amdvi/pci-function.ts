/**
 * The AMD-Vi IOMMU's own PCI function, laid out as QEMU 7.2's amd-iommu presents it: AMD's vendor id, class
 * 0806h (system peripheral, IOMMU), the IOMMU capability block (spec #48882 section 3.2) at the offset the IVHD
 * names, and after it, in QEMU's allocation order, a 4-byte MSI capability stub, a 4-byte HyperTransport
 * capability stub and the 64-bit MSI capability the unit signals its event-log and completion-wait interrupts
 * with. The capability list runs MSI → HyperTransport → MSI stub → IOMMU block, as QEMU links capabilities (each
 * added one becomes the head). The IOMMU block is read-only, as in QEMU; software writes the command register
 * and the MSI capability.
 */
import { PCI_CAPABILITY_LIST, PCI_CAP_ID_MSI, PCI_COMMAND, PCI_STATUS, PCI_STATUS_CAP_LIST } from "../../core/pci-regs.js";
import { CAP_BLOCK_BYTES, decodeCapability, encodeCapability, QEMU_CAPABILITY, type CapabilityBlock } from "../../spec/amdvi/capability.js";

export const AMD_VENDOR_ID = 0x1022;
/** Class code 08h/06h/00h: base system peripheral, IOMMU. */
export const IOMMU_CLASS_CODE = 0x08_0600;
/** QEMU 7.2 places the capability block at the first free offset after the header. */
export const QEMU_CAP_OFFSET = 0x40;
/** QEMU gives every function subsystem vendor 1AF4h, subsystem 1100h. */
const QEMU_SUBSYSTEM = [0x1af4, 0x1100] as const;
const PCI_CAP_ID_HT = 0x08;
/** Command bits QEMU lets software write: I/O, memory, bus master, parity, SERR, INTx disable. */
const COMMAND_WMASK = 0x0547;
// MSI capability registers (PCI Local Bus 3.0 section 6.8.1), 64-bit form.
const MSI_FLAGS = 2;
const MSI_ADDRESS_LO = 4;
const MSI_ADDRESS_HI = 8;
const MSI_DATA = 12;
const MSI_FLAGS_64BIT = 0x0080;
const MSI_FLAGS_ENABLE = 0x0001;
/** Multiple Message Enable (6:4) and MSI Enable (0) are what QEMU lets software write. */
const MSI_FLAGS_WMASK = 0x0071;

export interface AmdViPciOptions {
  /** Device id; QEMU 7.2 uses the function's devfn (0008h at 00:01.0). */
  deviceId?: number;
  /** Offset of the capability block (IVHD bytes 6–7). Default 40h. */
  capOffset?: number;
  /** The block's values. Default: QEMU 7.2's. */
  capability?: CapabilityBlock;
}

export class AmdViPciFunction {
  /** 256 bytes of conventional configuration space. */
  readonly config = new Uint8Array(256);
  readonly capOffset: number;
  /** Offset of the MSI capability the unit uses. */
  readonly msiOffset: number;
  private readonly wmask = new Uint8Array(256);
  private readonly view: DataView;

  constructor(opts: AmdViPciOptions = {}) {
    this.view = new DataView(this.config.buffer);
    const cap = opts.capOffset ?? QEMU_CAP_OFFSET;
    if (!Number.isInteger(cap) || cap < 0x40 || cap % 4 !== 0 || cap + CAP_BLOCK_BYTES + 0x38 > 0x100) {
      throw new RangeError(`capability offset 0x${cap.toString(16)} does not leave room for the block and the MSI capability`);
    }
    this.capOffset = cap;
    const stub = cap + CAP_BLOCK_BYTES;
    const ht = stub + 4;
    this.msiOffset = ht + 4;
    this.reset(opts.deviceId ?? 0x0008, opts.capability ?? QEMU_CAPABILITY, stub, ht);
  }

  private reset(deviceId: number, block: CapabilityBlock, stub: number, ht: number): void {
    const v = this.view;
    v.setUint16(0, AMD_VENDOR_ID, true);
    v.setUint16(2, deviceId & 0xffff, true);
    v.setUint16(PCI_STATUS, PCI_STATUS_CAP_LIST, true);
    v.setUint8(0x09, IOMMU_CLASS_CODE & 0xff);
    v.setUint16(0x0a, IOMMU_CLASS_CODE >>> 8, true);
    v.setUint16(0x2c, QEMU_SUBSYSTEM[0], true);
    v.setUint16(0x2e, QEMU_SUBSYSTEM[1], true);
    v.setUint8(PCI_CAPABILITY_LIST, this.msiOffset);
    encodeCapability(block, 0).forEach((dw, i) => v.setUint32(this.capOffset + i * 4, dw, true));
    v.setUint16(stub, PCI_CAP_ID_MSI | (this.capOffset << 8), true);
    v.setUint16(ht, PCI_CAP_ID_HT | (stub << 8), true);
    v.setUint16(this.msiOffset, PCI_CAP_ID_MSI | (ht << 8), true);
    v.setUint16(this.msiOffset + MSI_FLAGS, MSI_FLAGS_64BIT, true);
    const w = new DataView(this.wmask.buffer);
    w.setUint16(PCI_COMMAND, COMMAND_WMASK, true);
    w.setUint8(0x0c, 0xff); // cache line size
    w.setUint8(0x3c, 0xff); // interrupt line
    w.setUint16(this.msiOffset + MSI_FLAGS, MSI_FLAGS_WMASK, true);
    w.setUint32(this.msiOffset + MSI_ADDRESS_LO, 0xffff_fffc, true);
    w.setUint32(this.msiOffset + MSI_ADDRESS_HI, 0xffff_ffff, true);
    w.setUint16(this.msiOffset + MSI_DATA, 0xffff, true);
  }

  /** A configuration read of 1, 2 or 4 bytes; outside the 256 bytes it reads all ones. */
  read(offset: number, size: 1 | 2 | 4): number {
    if (!(offset >= 0 && offset + size <= 256)) return size === 4 ? 0xffff_ffff : (1 << (size * 8)) - 1;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.config[offset + i] ?? 0);
    return v >>> 0;
  }

  /** A configuration write: only the bits software may write change. */
  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (!(offset >= 0 && offset + size <= 256)) return;
    for (let i = 0; i < size; i++) {
      const m = this.wmask[offset + i] ?? 0;
      const b = (value >>> (8 * i)) & 0xff;
      this.config[offset + i] = ((this.config[offset + i] ?? 0) & ~m) | (b & m);
    }
  }

  /** The capability block as the spec names its fields. */
  capability(): ReturnType<typeof decodeCapability> {
    const dw = new Uint32Array(CAP_BLOCK_BYTES / 4);
    for (let i = 0; i < dw.length; i++) dw[i] = this.view.getUint32(this.capOffset + i * 4, true);
    return decodeCapability(dw);
  }

  get msiEnabled(): boolean {
    return (this.view.getUint16(this.msiOffset + MSI_FLAGS, true) & MSI_FLAGS_ENABLE) !== 0;
  }

  /** The message software programmed into the MSI capability. */
  msiMessage(): { addressLo: number; addressHi: number; data: number } {
    const v = this.view;
    return {
      addressLo: v.getUint32(this.msiOffset + MSI_ADDRESS_LO, true),
      addressHi: v.getUint32(this.msiOffset + MSI_ADDRESS_HI, true),
      data: v.getUint16(this.msiOffset + MSI_DATA, true),
    };
  }
}
