/**
 * AMD-Vi interrupt remapping as Linux 6.1 does it (drivers/iommu/amd/iommu.c, the irq_remapping part):
 * - One remapping table per device id, MAX_IRQS_PER_TABLE (256) entries, made on the device's first interrupt
 *   (alloc_irq_table). Its address goes into the DTE of the device, of every DMA alias and of the IVRS alias
 *   (set_dte_irq_entry: IntTableRootPtr, IntTabLen 8 = 2^8 entries, IntCtl = remap, IV), each DTE flushed, then a
 *   completion wait. A device whose alias already has a table shares it.
 * - IOAPIC tables keep their first 32 entries for the pins (index = pin).
 * - The entry format follows amd_iommu_guest_ir: 128-bit GA entries when the unit runs with Control.GAEn (the
 *   IVHD/EFR report GASup and amd_iommu_intr is not forced to legacy), 32-bit entries otherwise.
 * - An entry is written (the upper half first for GA), then INVALIDATE_INTERRUPT_TABLE for the device id and a
 *   completion wait (iommu_flush_irt_and_complete). The device's MSI then carries address 0xfee00000 and the
 *   entry's index as data (fill_msi_msg).
 *
 * Formats come from spec/amdvi/irte.ts and spec/amdvi/dte.ts.
 */
import { IommuError } from "../core/errors.js";
import { DTE_BYTES, DTE_DWORDS, DTE_INT_CTL, DTE_IRQ_FIRST_DWORD, DTE_INT_TAB_LEN, DTE_INT_TABLE_ROOT, DTE_IV, INTCTL_REMAP, INT_TABLE_ROOT_SHIFT } from "../spec/amdvi/dte.js";
import { getField, setField, setFieldBig } from "../spec/amdvi/fields.js";
import {
  GA_DESTINATION_HI,
  GA_DESTINATION_LO,
  GA_VECTOR,
  IRTE_DESTINATION,
  IRTE_DM,
  IRTE_INT_TYPE,
  IRTE_REMAP_EN,
  IRTE_VECTOR,
  MSI_ADDR_BASE,
  irteBytes,
} from "../spec/amdvi/irte.js";
import { AmdIo, type AmdDriverContext, type AmdIommuUnit } from "./amd-unit.js";
import { dmaAliases, type KPciDev } from "./pci.js";

/** MAX_IRQS_PER_TABLE, and the IntTabLen that says so (log2). */
export const MAX_IRQS_PER_TABLE = 256;
const INT_TAB_LEN = Math.log2(MAX_IRQS_PER_TABLE);
/** IOAPIC tables: entries below this are the pins. */
const IOAPIC_RESERVED = 32;

export interface IrqTable {
  addr: number;
  used: Uint8Array;
}

export interface RemappedMsi {
  index: number;
  address: number;
  data: number;
}

export class AmdIrqRemap {
  /** irq_lookup_table: device id → its table. */
  readonly tables = new Map<number, IrqTable>();
  /** 128-bit (GA) entries, or 32-bit ones. */
  ga = true;

  constructor(
    private readonly ctx: AmdDriverContext,
    private readonly io: AmdIo,
    private readonly aliasOf: (devid: number) => number,
  ) {}

  /** Rewrites the interrupt half of a DTE to point at `t` (set_dte_irq_entry) and flushes it. */
  private setRemapEntry(u: AmdIommuUnit, devid: number, t: IrqTable): void {
    const mem = this.ctx.port.memory;
    const at = u.devTable + devid * DTE_BYTES;
    const dw = new Uint32Array(8);
    for (let i = DTE_IRQ_FIRST_DWORD; i < DTE_DWORDS; i++) dw[i] = mem.read32(at + 4 * i);
    setField(dw, DTE_IV, 1);
    setField(dw, DTE_INT_TAB_LEN, INT_TAB_LEN);
    setFieldBig(dw, DTE_INT_TABLE_ROOT, BigInt(t.addr) >> BigInt(INT_TABLE_ROOT_SHIFT));
    setField(dw, DTE_INT_CTL, INTCTL_REMAP);
    for (let i = DTE_IRQ_FIRST_DWORD; i < DTE_DWORDS; i++) mem.write32(at + 4 * i, dw[i]!);
    this.tables.set(devid, t);
    this.io.flushDte(u, devid);
  }

  /** alloc_irq_table: the device's table, made (and installed in its aliases' DTEs) when missing. */
  table(u: AmdIommuUnit, devid: number, dev: KPciDev | null, ioapic: boolean): IrqTable {
    const have = this.tables.get(devid);
    if (have !== undefined) return have;
    const alias = this.aliasOf(devid);
    const shared = this.tables.get(alias);
    if (shared !== undefined) {
      this.setRemapEntry(u, devid, shared);
      this.io.completionWait(u);
      return shared;
    }
    const bytes = MAX_IRQS_PER_TABLE * irteBytes(this.ga);
    const t: IrqTable = { addr: this.ctx.pages.alloc(Math.ceil(bytes / 4096), "any"), used: new Uint8Array(MAX_IRQS_PER_TABLE) };
    if (ioapic) t.used.fill(1, 0, IOAPIC_RESERVED);
    if (dev !== null) for (const a of dmaAliases(dev)) this.setRemapEntry(u, a.rid, t);
    else this.setRemapEntry(u, devid, t);
    if (alias !== devid) this.setRemapEntry(u, alias, t);
    this.io.completionWait(u);
    return t;
  }

  /** Writes entry `index` of `devid`'s table and invalidates it (modify_irte / modify_irte_ga). */
  writeEntry(u: AmdIommuUnit, devid: number, index: number, vector: number, destApicId: number): void {
    const t = this.tables.get(devid);
    if (t === undefined) throw new IommuError("AMDVI_IRTE", `${u.name}: no interrupt remapping table for device id 0x${devid.toString(16)}`);
    const mem = this.ctx.port.memory;
    const at = t.addr + index * irteBytes(this.ga);
    if (this.ga) {
      const dw = new Uint32Array(4);
      setField(dw, IRTE_REMAP_EN, 1);
      setField(dw, IRTE_INT_TYPE, 0);
      setField(dw, IRTE_DM, 0);
      setField(dw, GA_DESTINATION_LO, destApicId);
      setField(dw, GA_VECTOR, vector);
      setField(dw, GA_DESTINATION_HI, destApicId >>> GA_DESTINATION_LO.width);
      for (const i of [3, 2, 1, 0]) mem.write32(at + 4 * i, dw[i]!);
    } else {
      const dw = new Uint32Array(1);
      setField(dw, IRTE_REMAP_EN, 1);
      setField(dw, IRTE_DESTINATION, destApicId);
      setField(dw, IRTE_VECTOR, vector);
      mem.write32(at, dw[0]!);
    }
    this.io.flushIrt(u, devid);
    this.io.completionWait(u);
  }

  /** alloc_irq_index + the entry: a remapped MSI for a PCI device (index = first free entry). */
  allocMsi(u: AmdIommuUnit, dev: KPciDev, vector: number, destApicId: number): RemappedMsi {
    const t = this.table(u, dev.rid, dev, false);
    const index = t.used.indexOf(0);
    if (index < 0) throw new IommuError("AMDVI_IRTE", `${u.name}: no free interrupt remapping entry for ${dev.name}`);
    t.used[index] = 1;
    this.writeEntry(u, dev.rid, index, vector, destApicId);
    return { index, address: MSI_ADDR_BASE, data: index };
  }

  /** An IOAPIC pin's entry (index = pin) in the IOAPIC's table. */
  setIoapicPin(u: AmdIommuUnit, devid: number, pin: number, vector: number, destApicId: number): void {
    this.table(u, devid, null, true);
    this.writeEntry(u, devid, pin, vector, destApicId);
  }

  /** Clears an entry and invalidates it (free_irte); `invalidate` false leaves the unit's cached copy usable. */
  free(u: AmdIommuUnit, devid: number, index: number, invalidate = true): void {
    const t = this.tables.get(devid);
    if (t === undefined) return;
    const n = irteBytes(this.ga);
    for (let i = 0; i < n; i += 4) this.ctx.port.memory.write32(t.addr + index * n + i, 0);
    t.used[index] = 0;
    if (!invalidate) return;
    this.io.flushIrt(u, devid);
    this.io.completionWait(u);
  }

  /** Reads back the vector and destination of an entry (for tests and the hypervisor). */
  readEntry(devid: number, index: number): { remapEn: boolean; vector: number; destination: number } | null {
    const t = this.tables.get(devid);
    if (t === undefined) return null;
    const n = irteBytes(this.ga);
    const dw = new Uint32Array(n / 4);
    for (let i = 0; i < dw.length; i++) dw[i] = this.ctx.port.memory.read32(t.addr + index * n + 4 * i);
    if (this.ga) {
      return { remapEn: getField(dw, IRTE_REMAP_EN) === 1, vector: getField(dw, GA_VECTOR), destination: getField(dw, GA_DESTINATION_LO) | (getField(dw, GA_DESTINATION_HI) << GA_DESTINATION_LO.width) };
    }
    return { remapEn: getField(dw, IRTE_REMAP_EN) === 1, vector: getField(dw, IRTE_VECTOR), destination: getField(dw, IRTE_DESTINATION) };
  }
}
