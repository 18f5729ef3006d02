/**
 * The browser view's data for an AMD-Vi unit and the devices behind it, read the way a debugger would: the device
 * table base, Control and EFR from the unit's registers, the device table entries, I/O page tables and interrupt
 * remapping tables from RAM, walked with the AMD-Vi forensic walker (forensics/amdvi-walk.ts, the hardware model's
 * own walk code). Requests carry the DeviceID the unit sees for the requester (its IVHD alias, if any).
 */
import { IommuError } from "../core/errors.js";
import { hex } from "../core/hex.js";
import { hiOf, loOf } from "../core/u64.js";
import type { MachineAmdViUnit, Machine } from "../hw/machine.js";
import type { TableReader } from "../hw/vtd/walk.js";
import { listAmdMappings, readDteFromDump, walkAmdIova, walkAmdMsi } from "../forensics/amdvi-walk.js";
import type { ListReport, MsiReport, WalkReport } from "../forensics/walk.js";
import { DTE_INT_CTL, DTE_INT_TAB_LEN, DTE_IV, DTE_V, INTCTL_REMAP } from "../spec/amdvi/dte.js";
import { getField } from "../spec/amdvi/fields.js";
import { DM_ARBITRATED, DM_FIXED, MSI_DATA_DM } from "../spec/amdvi/irte.js";
import { CTRL_GA_EN, CTRL_IOMMU_EN, EFR_FIELDS, EFR_HATS, hatsLevels, MMIO_CONTROL, MMIO_DEV_TABLE_BASE, MMIO_EXT_FEATURE } from "../spec/amdvi/registers.js";
import { MSI_ADDR_BASE } from "../spec/msi.js";
import type { UiAmdVi } from "./types.js";

/** RAM of the machine as the unit reads its tables (the platform's reader): outside RAM a read is an error. */
export function ramReader(m: Machine): TableReader & { size: number } {
  const r = m.platform.reader;
  return { size: m.ramTop, read32: (a) => r.read32(a), ...(r.canRead === undefined ? {} : { canRead: (a: number, n: number) => r.canRead!(a, n) }) };
}

/** What the unit's registers say: the device table base register, Control and EFR. */
export interface AmdUnitRegisters {
  dtb: bigint;
  control: number;
  efr: bigint;
}

export function amdUnitRegisters(m: Machine, u: MachineAmdViUnit): AmdUnitRegisters {
  return {
    dtb: BigInt.asUintN(64, m.mmioRead(u.base + MMIO_DEV_TABLE_BASE, 8)),
    control: Number(BigInt.asUintN(32, m.mmioRead(u.base + MMIO_CONTROL, 4))),
    efr: BigInt.asUintN(64, m.mmioRead(u.base + MMIO_EXT_FEATURE, 8)),
  };
}

const efrWords = (efr: bigint): number[] => [loOf(efr), hiOf(efr)];

/** The unit's own PCI function, its EFR, and the one-bit features EFR reports (their spec names). */
export function amdViOf(regs: AmdUnitRegisters, bdf: string): UiAmdVi {
  const w = efrWords(regs.efr);
  const features = EFR_FIELDS.filter((f) => f.width === 1 && getField(w, f) === 1).map((f) => f.name);
  return { bdf, efr: hex(regs.efr), features, hostLevels: hatsLevels(getField(w, EFR_HATS)) };
}

/** IommuEn in the Control register: the unit translates (and remaps interrupts through the DTEs). */
export function amdTranslating(regs: AmdUnitRegisters): boolean {
  return (regs.control & CTRL_IOMMU_EN) !== 0;
}

/** The DeviceID the unit sees on a request from requester id `rid`. */
export function amdDeviceId(u: MachineAmdViUnit, rid: number): number {
  return u.port.deviceId(rid);
}

/** One address of a device, as the unit would translate it (reporting the event it would log). */
export function amdWalk(m: Machine, u: MachineAmdViUnit, rid: number, iova: bigint, access?: "read" | "write"): WalkReport {
  const regs = amdUnitRegisters(m, u);
  const maxLevels = hatsLevels(getField(efrWords(regs.efr), EFR_HATS));
  return walkAmdIova(ramReader(m), { dtb: regs.dtb, devid: amdDeviceId(u, rid), iova, maxLevels, ...(access !== undefined ? { access } : {}) });
}

/**
 * The MSI data words to walk for a device: index 0, and an index just past its interrupt remapping table (from
 * IntTabLen) when the DTE remaps and that index still has a fixed or arbitrated delivery mode (the index shares
 * data bits 10:8 with the delivery mode); otherwise the table's last entry. A DTE without a table: index 0 only,
 * which shows what the unit does with the device's interrupts (passes or blocks them).
 */
function msiIndices(dte: Uint32Array): number[] {
  if (getField(dte, DTE_V) === 0 || getField(dte, DTE_IV) === 0 || getField(dte, DTE_INT_CTL) !== INTCTL_REMAP) return [0];
  const entries = 2 ** getField(dte, DTE_INT_TAB_LEN);
  const remappable = (index: number): boolean => {
    const dm = getField([index], MSI_DATA_DM);
    return dm === DM_FIXED || dm === DM_ARBITRATED;
  };
  const past = [entries, entries - 1].find((i) => i > 0 && remappable(i));
  return past === undefined ? [0] : [0, past];
}

/** A device's mappings, page walks (the first address of each range, then one past the last, a write) and MSIs. */
export function amdSpaceWalks(m: Machine, u: MachineAmdViUnit, rid: number): { mappings: ListReport; walks: WalkReport[]; msi: MsiReport[] } {
  const reader = ramReader(m);
  const regs = amdUnitRegisters(m, u);
  const devid = amdDeviceId(u, rid);
  const mappings = listAmdMappings(reader, regs.dtb, devid);
  const walks: WalkReport[] = [];
  if (mappings.result === "ok") {
    for (const r of mappings.ranges.slice(0, 16)) walks.push(amdWalk(m, u, rid, BigInt(r.iova) + 0x10n));
    const last = mappings.ranges[mappings.ranges.length - 1];
    const past = last === undefined ? 0x1000n : BigInt(last.iova) + BigInt(last.size) + 0x1000n;
    walks.push(amdWalk(m, u, rid, past, "write"));
  } else {
    walks.push(amdWalk(m, u, rid, 0x1000n));
  }
  const ga = (regs.control & CTRL_GA_EN) !== 0;
  const dte = readDteFromDump(reader, regs.dtb, devid);
  const msi = msiIndices(dte).map((index) => walkAmdMsi(reader, { dtb: regs.dtb, devid, msiAddr: BigInt(MSI_ADDR_BASE), msiData: index, ga }));
  return { mappings, walks, msi };
}

/** The served page's walk of a typed address; a string says why there is none. */
export function amdTypedWalk(m: Machine, u: MachineAmdViUnit, rid: number, iova: bigint): WalkReport | string {
  try {
    return amdWalk(m, u, rid, iova);
  } catch (e) {
    if (e instanceof IommuError) return e.message;
    throw e;
  }
}
