/**
 * Interrupt remapping (spec #48882 section 2.2.5): the MSI the device sends, the 32-bit IRTE (2.2.5.1, Table 20),
 * and the 128-bit guest-virtual-APIC (GA) IRTE used when Control.GAEn=1 (2.2.5.2, Table 22).
 */
import { encodeCompatMsi } from "../msi.js";
import { field, type Field } from "./fields.js";

/** The interrupt address range: MSI writes to 0xFEEx_xxxx are interrupt requests (2.2.5). */
export { MSI_ADDR_BASE } from "../msi.js";
export const MSI_ADDR_MASK = 0xfff0_0000;
/** MSI data: vector 7:0, delivery mode 10:8, trigger mode 15 (Intel format, 2.2.5). */
export const MSI_DATA_VECTOR = field("Vector", 0, 8, "2.2.5");
export const MSI_DATA_DM = field("DeliveryMode", 8, 3, "2.2.5");
/** The remapping index is MSI data bits 10:0 (2.2.5.1). */
export const MSI_DATA_INDEX_MASK = 0x7ff;

// Delivery modes (MSI data bits 10:8) and the DTE pass bits that govern them (2.2.5, Table 19).
export const DM_FIXED = 0;
export const DM_ARBITRATED = 1;
export const DM_SMI = 2;
export const DM_NMI = 4;
export const DM_INIT = 5;
export const DM_EXTINT = 7;

// 32-bit IRTE fields.
export const IRTE_REMAP_EN = field("RemapEn", 0, 1, "2.2.5.1");
export const IRTE_SUP_IOPF = field("SupIOPF", 1, 1, "2.2.5.1");
export const IRTE_INT_TYPE = field("IntType", 2, 3, "2.2.5.1");
export const IRTE_RQ_EOI = field("RqEoi", 5, 1, "2.2.5.1");
export const IRTE_DM = field("DM", 6, 1, "2.2.5.1");
export const IRTE_GUEST_MODE = field("GuestMode", 7, 1, "2.2.5.1");
export const IRTE_DESTINATION = field("Destination", 8, 8, "2.2.5.1");
export const IRTE_VECTOR = field("Vector", 16, 8, "2.2.5.1");
export const IRTE32_FIELDS: readonly Field[] = [IRTE_REMAP_EN, IRTE_SUP_IOPF, IRTE_INT_TYPE, IRTE_RQ_EOI, IRTE_DM, IRTE_GUEST_MODE, IRTE_DESTINATION, IRTE_VECTOR];

// 128-bit GA IRTE fields (guest mode 0, the remapped format).
export const GA_DESTINATION_LO = field("Destination[23:0]", 8, 24, "2.2.5.2");
export const GA_VECTOR = field("Vector", 64, 8, "2.2.5.2");
export const GA_DESTINATION_HI = field("Destination[31:24]", 120, 8, "2.2.5.2");
export const IRTE128_FIELDS: readonly Field[] = [IRTE_REMAP_EN, IRTE_SUP_IOPF, IRTE_INT_TYPE, IRTE_RQ_EOI, IRTE_DM, IRTE_GUEST_MODE, GA_DESTINATION_LO, GA_VECTOR, GA_DESTINATION_HI];

/** Bytes per IRTE: 4 in the legacy format, 16 with Control.GAEn (2.2.5). */
export function irteBytes(ga: boolean): number {
  return ga ? 16 : 4;
}

/** The decoded interrupt an IRTE produces. */
export interface RemappedInterrupt {
  vector: number;
  intType: number;
  destMode: number;
  destination: number;
}


/**
 * The MSI address and data of a remapped interrupt (xAPIC form; destination bits 7:0 in address 19:12), as the
 * interrupt message QEMU 7.2's amd-iommu hands to the APIC: vector, delivery mode (IntType) and level assert.
 */
export function remappedMsi(r: RemappedInterrupt): { address: number; data: number } {
  // QEMU 7.2 sets data bit 14 (level assert) on every remapped interrupt it delivers.
  const m = encodeCompatMsi({
    vector: r.vector,
    destination: r.destination & 0xff,
    destinationMode: (r.destMode & 1) !== 0 ? "logical" : "physical",
    deliveryMode: r.intType,
    levelAssert: true,
  });
  return { address: m.address, data: m.data };
}
